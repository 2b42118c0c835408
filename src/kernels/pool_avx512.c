/* pool_avx512.c — the AVX-512 loops of 2x2 stride-2 pooling (max and
 * average; src/layers/pool.c chooses them, and runs its portable C loops
 * on other CPUs, with the same results bit for bit).
 *
 * 16 windows per vector. A row of up to 16 windows is loaded as two
 * vectors per input row and split into its even (a, c) and odd (b, d)
 * cells with one two-source permute each. Rows of at most 8 windows
 * (W <= 16: the 14x14, 10x10 planes) are packed two to a vector, the
 * second row's cells drawn from two input rows further down by the same
 * permute, so a 5- or 7-wide row does not leave most lanes idle. Edges are
 * masked loads and stores: nothing outside the rows is touched. */
#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,avx512bw")))

static inline __mmask16 lanes(int n) { return (__mmask16)((1u << n) - 1); }

/* Lane j of the packed layout: window j of row r for j < wo, window
 * j - wo of row r + 1 for wo <= j < 2 wo. `second` is where row r + 1's
 * source starts in the permute's 32-float table (16: the second vector). */
AVX512 static __m512i packed_index(int wo, int step, int add, int second)
{
    int32_t t[16];
    for (int j = 0; j < 16; j++)
        t[j] = j < wo ? step * j + add : j < 2 * wo ? second + step * (j - wo) + add : 0;
    return _mm512_loadu_si512(t);
}

/* Where best stays against v, i.e. not beats(v, best): v is not a NaN and
 * not greater. One compare masked by another, no separate mask OR: a
 * per-vector NaN test won on packed rows but lost more on wide ones
 * (bench/NOTES.md, pooling). */
AVX512 static inline __mmask16 keeps16(__m512 best, __m512 v)
{
    return _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v, best, _CMP_NGT_UQ);
}

/* The winner of each lane's window a b / c d and its code 0..3 in byte
 * lanes, reduced as (a vs b) vs (c vs d) for shorter dependency chains.
 * That equals the reference's scan-order chain under beats(): both give
 * the last NaN if there is one, else the first of the largest values, and
 * "the later one takes over if it beats" is associative. */
AVX512 static inline __m512 max4(__m512 a, __m512 b, __m512 c, __m512 d, __m128i *code)
{
    const __mmask16 ka = keeps16(a, b), kc = keeps16(c, d);
    const __m512 ab = _mm512_mask_blend_ps(ka, b, a), cd = _mm512_mask_blend_ps(kc, d, c);
    const __mmask16 kab = keeps16(ab, cd);
    const __m128i cab = _mm_mask_blend_epi8(ka, _mm_set1_epi8(1), _mm_setzero_si128()),
                  ccd = _mm_mask_blend_epi8(kc, _mm_set1_epi8(3), _mm_set1_epi8(2));
    *code = _mm_mask_blend_epi8(kab, ccd, cab);
    return _mm512_mask_blend_ps(kab, cd, ab);
}

/* max (is_max) or average of 16 windows; the code only for the max */
AVX512 static inline __m512 pool4(int is_max, __m512 a, __m512 b, __m512 c, __m512 d,
                                  __m128i *code)
{
    if (is_max) return max4(a, b, c, d, code);
    return _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), c), d),
                         _mm512_set1_ps(0.25f));
}

/* Output rows r, r + 1 of a layer with W <= 16, packed in one vector from
 * input rows p, p + w (row r) and p + 2w, p + 3w (row r + 1). */
AVX512 static inline void packed_fwd(int is_max, const float *p, int w, __m512i ia, __m512i ib,
                                     __mmask16 kin, __mmask16 kout, float *y, uint8_t *win)
{
    __m128i code = _mm_setzero_si128();
    const __m512 l0 = _mm512_maskz_loadu_ps(kin, p), l1 = _mm512_maskz_loadu_ps(kin, p + w),
                 l2 = _mm512_maskz_loadu_ps(kin, p + 2 * w),
                 l3 = _mm512_maskz_loadu_ps(kin, p + 3 * w);
    const __m512 v = pool4(is_max, _mm512_permutex2var_ps(l0, ia, l2),
                           _mm512_permutex2var_ps(l0, ib, l2), _mm512_permutex2var_ps(l1, ia, l3),
                           _mm512_permutex2var_ps(l1, ib, l3), &code);
    _mm512_mask_storeu_ps(y, kout, v);
    if (is_max) _mm_mask_storeu_epi8(win, kout, code);
}

/* Forward over `rows` output rows; win is written only for the max. */
AVX512 void cnn_pool2x2_rows_avx512(int is_max, const float *x, int w, int wo, size_t rows,
                                    float *y, uint8_t *win)
{
    __m128i code = _mm_setzero_si128();
    if (w <= 16) {
        const __m512i ia = packed_index(wo, 2, 0, 16), ib = packed_index(wo, 2, 1, 16);
        const __mmask16 kin = lanes(2 * wo), kout2 = lanes(2 * wo), kout1 = lanes(wo);
        size_t r = 0;
        /* Masked loads and stores only: whole-vector ones that run into the
         * next rows (safe while more rows follow) were slower. */
        for (; r + 2 <= rows; r += 2)
            packed_fwd(is_max, x + 2 * r * w, w, ia, ib, kin, kout2, y + r * wo,
                       win ? win + r * wo : NULL);
        if (r < rows) {
            const float *p = x + 2 * r * w;
            const __m512 l0 = _mm512_maskz_loadu_ps(kin, p), l1 = _mm512_maskz_loadu_ps(kin, p + w),
                         z = _mm512_setzero_ps();
            const __m512 v = pool4(is_max, _mm512_permutex2var_ps(l0, ia, z),
                                   _mm512_permutex2var_ps(l0, ib, z),
                                   _mm512_permutex2var_ps(l1, ia, z),
                                   _mm512_permutex2var_ps(l1, ib, z), &code);
            _mm512_mask_storeu_ps(y + r * wo, kout1, v);
            if (is_max) _mm_mask_storeu_epi8(win + r * wo, kout1, code);
        }
        return;
    }
    /* whole blocks of 16 windows with plain loads and stores, then the
     * row's last m windows masked; the masks are per layer, not per row
     * (the variants tried: bench/NOTES.md, pooling) */
    const __m512i ev = packed_index(8, 2, 0, 16), od = packed_index(8, 2, 1, 16);
    const int blocks = wo / 16, m = wo % 16;
    const __mmask16 klo = lanes(m >= 8 ? 16 : 2 * m), khi = lanes(m > 8 ? 2 * m - 16 : 0),
                    kout = lanes(m);
    for (size_t r = 0; r < rows; r++) {
        const float *r0 = x + 2 * r * w, *r1 = r0 + w;
        float *yr = y + r * wo;
        uint8_t *cr = is_max ? win + r * wo : NULL;
        for (int b = 0; b < blocks; b++) {
            const int j = 16 * b;
            const __m512 a0 = _mm512_loadu_ps(r0 + 2 * j), a1 = _mm512_loadu_ps(r0 + 2 * j + 16),
                         c0 = _mm512_loadu_ps(r1 + 2 * j), c1 = _mm512_loadu_ps(r1 + 2 * j + 16);
            const __m512 v = pool4(is_max, _mm512_permutex2var_ps(a0, ev, a1),
                                   _mm512_permutex2var_ps(a0, od, a1),
                                   _mm512_permutex2var_ps(c0, ev, c1),
                                   _mm512_permutex2var_ps(c0, od, c1), &code);
            _mm512_storeu_ps(yr + j, v);
            if (is_max) _mm_storeu_si128((__m128i *)(cr + j), code);
        }
        if (m) {
            const int j = 16 * blocks;
            const __m512 a0 = _mm512_maskz_loadu_ps(klo, r0 + 2 * j),
                         a1 = _mm512_maskz_loadu_ps(khi, r0 + 2 * j + 16),
                         c0 = _mm512_maskz_loadu_ps(klo, r1 + 2 * j),
                         c1 = _mm512_maskz_loadu_ps(khi, r1 + 2 * j + 16);
            const __m512 v = pool4(is_max, _mm512_permutex2var_ps(a0, ev, a1),
                                   _mm512_permutex2var_ps(a0, od, a1),
                                   _mm512_permutex2var_ps(c0, ev, c1),
                                   _mm512_permutex2var_ps(c0, od, c1), &code);
            _mm512_mask_storeu_ps(yr + j, kout, v);
            if (is_max) _mm_mask_storeu_epi8(cr + j, kout, code);
        }
    }
}

/* The four dx cells of 16 windows from dy: for the max, cell k gets dy
 * where the code is k and 0 elsewhere; for the average every cell gets
 * dy / 4 (dy * 0.25f, the same bits). */
AVX512 static inline void unpool4(int is_max, __m512 d, __m128i code, __m512 e[4])
{
    if (!is_max) {
        e[0] = e[1] = e[2] = e[3] = _mm512_mul_ps(d, _mm512_set1_ps(0.25f));
        return;
    }
    for (int k = 0; k < 4; k++)
        e[k] = _mm512_maskz_mov_ps(_mm_cmpeq_epi8_mask(code, _mm_set1_epi8((char)k)), d);
}

/* The dx cells of 16 windows of a row: whole (part 1), or the row's last
 * m windows (kin) with m >= 8 (part 0: the second output vectors masked by
 * kout) or m < 8 (part -1: the first ones masked by kout, no second). */
AVX512 static inline __attribute__((always_inline)) void
wide_back(int is_max, int part, const float *dy, const uint8_t *win, __m512i il, __m512i ih,
          __mmask16 kin, __mmask16 kout, float *r0, float *r1)
{
    __m512 e[4];
    __m512 d;
    __m128i code = _mm_setzero_si128();
    if (part == 1) {
        d = _mm512_loadu_ps(dy);
        if (is_max) code = _mm_loadu_si128((const __m128i *)win);
    } else {
        d = _mm512_maskz_loadu_ps(kin, dy);
        if (is_max) code = _mm_maskz_loadu_epi8(kin, win);
    }
    unpool4(is_max, d, code, e);
    const __m512 lo0 = _mm512_permutex2var_ps(e[0], il, e[1]),
                 lo1 = _mm512_permutex2var_ps(e[2], il, e[3]);
    if (part >= 0) {
        _mm512_storeu_ps(r0, lo0);
        _mm512_storeu_ps(r1, lo1);
        const __m512 hi0 = _mm512_permutex2var_ps(e[0], ih, e[1]),
                     hi1 = _mm512_permutex2var_ps(e[2], ih, e[3]);
        if (part) {
            _mm512_storeu_ps(r0 + 16, hi0);
            _mm512_storeu_ps(r1 + 16, hi1);
        } else {
            _mm512_mask_storeu_ps(r0 + 16, kout, hi0);
            _mm512_mask_storeu_ps(r1 + 16, kout, hi1);
        }
    } else {
        _mm512_mask_storeu_ps(r0, kout, lo0);
        _mm512_mask_storeu_ps(r1, kout, lo1);
    }
}

/* Backward over `rows` output rows: writes the 2 * rows dx rows under them
 * whole (an odd W's last column, in no window, gets 0). */
AVX512 void cnn_pool2x2_back_rows_avx512(int is_max, const float *dy, const uint8_t *win, int w,
                                         int wo, size_t rows, float *dx)
{
    __m512 e[4];
    __m128i code = _mm_setzero_si128();
    if (w <= 16) {
        /* dx row 2r: lane 2j from e[0] (or e[2] for row 2r+1), lane 2j+1
         * from e[1] (e[3]); rows 2r+2, 2r+3 the same from lane wo on. */
        int32_t t0[16], t1[16];
        for (int j = 0; j < 16; j++) {
            t0[j] = (j & 1) * 16 + j / 2;
            t1[j] = t0[j] + wo;
        }
        const __m512i i0 = _mm512_loadu_si512(t0), i1 = _mm512_loadu_si512(t1);
        const __mmask16 kcells = lanes(2 * wo), krow = lanes(w), kin2 = lanes(2 * wo),
                        kin1 = lanes(wo);
        size_t r = 0;
        for (; r < rows; r += 2) {
            const int two = r + 2 <= rows;
            const __mmask16 kin = two ? kin2 : kin1;
            const __m512 d = _mm512_maskz_loadu_ps(kin, dy + r * wo);
            if (is_max) code = _mm_maskz_loadu_epi8(kin, win + r * wo);
            unpool4(is_max, d, code, e);
            float *p = dx + 2 * r * w;
            _mm512_mask_storeu_ps(p, krow, _mm512_maskz_permutex2var_ps(kcells, e[0], i0, e[1]));
            _mm512_mask_storeu_ps(p + w, krow, _mm512_maskz_permutex2var_ps(kcells, e[2], i0, e[3]));
            if (two) {
                _mm512_mask_storeu_ps(p + 2 * w, krow,
                                      _mm512_maskz_permutex2var_ps(kcells, e[0], i1, e[1]));
                _mm512_mask_storeu_ps(p + 3 * w, krow,
                                      _mm512_maskz_permutex2var_ps(kcells, e[2], i1, e[3]));
            }
        }
        return;
    }
    int32_t tl[16], th[16];
    for (int j = 0; j < 16; j++) {
        tl[j] = (j & 1) * 16 + j / 2;
        th[j] = tl[j] + 8;
    }
    const __m512i il = _mm512_loadu_si512(tl), ih = _mm512_loadu_si512(th);
    const int blocks = wo / 16, m = wo % 16;
    const __mmask16 khi = lanes(m > 8 ? 2 * m - 16 : 0), kin = lanes(m);
    for (size_t r = 0; r < rows; r++) {
        float *r0 = dx + 2 * r * w, *r1 = r0 + w;
        const float *d = dy + r * wo;
        const uint8_t *c = is_max ? win + r * wo : NULL;
        for (int b = 0; b < blocks; b++)
            wide_back(is_max, 1, d + 16 * b, c ? c + 16 * b : NULL, il, ih, 0, 0, r0 + 32 * b,
                      r1 + 32 * b);
        const int j = 16 * blocks;
        if (m >= 8)
            wide_back(is_max, 0, d + j, c ? c + j : NULL, il, ih, kin, khi, r0 + 2 * j, r1 + 2 * j);
        else if (m)
            wide_back(is_max, -1, d + j, c ? c + j : NULL, il, ih, kin, lanes(2 * m), r0 + 2 * j,
                      r1 + 2 * j);
        if (w & 1) r0[w - 1] = r1[w - 1] = 0.0f;
    }
}

#else /* not x86-64 GCC/clang: never called (no AVX-512BW) */

void cnn_pool2x2_rows_avx512(int is_max, const float *x, int w, int wo, size_t rows, float *y,
                             uint8_t *win)
{
    (void)is_max, (void)x, (void)w, (void)wo, (void)rows, (void)y, (void)win;
}

void cnn_pool2x2_back_rows_avx512(int is_max, const float *dy, const uint8_t *win, int w,
                                  int wo, size_t rows, float *dx)
{
    (void)is_max, (void)dy, (void)win, (void)w, (void)wo, (void)rows, (void)dx;
}

#endif
