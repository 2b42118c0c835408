/* simd_avx512.h — AVX-512 pieces the kernels of this folder share. Only
 * for files built for x86-64 with GCC or clang (they include it under
 * their own check); the functions carry their target attribute, so the
 * files need no -mavx512f. */
#ifndef CNN_SIMD_AVX512_H
#define CNN_SIMD_AVX512_H

#include <immintrin.h>

/* 16 x 16 transpose in registers: r[i] holds row i on entry, column i on
 * exit. Three shuffle stages: 2x2 within 128-bit lanes, 4x4 within lanes,
 * then 4x4 of lanes. */
static inline __attribute__((always_inline, target("avx512f"))) void
cnn_transpose16_avx512(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) { /* per 128-bit lane: a0 b0 a1 b1 / a2 b2 a3 b3 */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* r[4i+k], lane L: rows 4i..4i+3 of column 4L+k */
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m512 a = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
        __m512 b = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
        __m512 c = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
        __m512 d = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
        t[k] = _mm512_shuffle_f32x4(a, b, 0x88);
        t[8 + k] = _mm512_shuffle_f32x4(a, b, 0xDD);
        t[4 + k] = _mm512_shuffle_f32x4(c, d, 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(c, d, 0xDD);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) r[j] = t[j];
}

#endif
