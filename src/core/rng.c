/* rng.c — xoshiro256** (Blackman & Vigna), seeded through splitmix64.
 * Our own generator, so a seed gives the same model on every platform. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void cnn_rng_seed(cnn_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t cnn_rng_next(cnn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float cnn_rng_uniform(cnn_rng *r)
{
    /* the top 24 bits: every value is exactly representable, and < 1 */
    return (float)(cnn_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

float cnn_rng_normal(cnn_rng *r)
{
    /* Box-Muller on doubles; one draw per call keeps the state simple to
     * save in a checkpoint (no cached second value). */
    double u1 = ((cnn_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
    double u2 = (cnn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t cnn_rng_below(cnn_rng *r, uint32_t n)
{
    if (n == 0) return 0;
    /* Lemire's multiply-and-reject: unbiased without a division per draw */
    uint64_t m = (uint64_t)(uint32_t)(cnn_rng_next(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(cnn_rng_next(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void cnn_rng_to_hex(const cnn_rng *r, char out[65])
{
    for (int i = 0; i < 4; i++) snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)r->s[i]);
}

int cnn_rng_from_hex(const char *hex, cnn_rng *r)
{
    cnn_rng t;
    if (!hex || strlen(hex) != 64) return -1;
    for (int i = 0; i < 4; i++) {
        char part[17], *end;
        memcpy(part, hex + 16 * i, 16);
        part[16] = '\0';
        t.s[i] = strtoull(part, &end, 16);
        if (*end) return -1;
    }
    *r = t;
    return 0;
}
