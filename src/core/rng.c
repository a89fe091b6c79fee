/* rng.c: xoshiro256** seeded by splitmix64 (Blackman & Vigna), with unbiased
 * bounded integers and normals; streams derived per thread from one seed. */
#include "shelf/core.h"
#include "core/assert_int.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void shelf_rng_seed(shelf_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void shelf_rng_split(shelf_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
    uint64_t mixed = splitmix64(&x);
    shelf_rng_seed(r, mixed);
}

uint64_t shelf_rng_u64(shelf_rng *r)
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

uint32_t shelf_rng_below(shelf_rng *r, uint32_t n)
{
    /* Lemire's multiply-shift with rejection */
    SHELF_ASSERT(n > 0);
    uint64_t m = (uint64_t)(uint32_t)(shelf_rng_u64(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(shelf_rng_u64(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double shelf_rng_uniform(shelf_rng *r)
{
    return (double)(shelf_rng_u64(r) >> 11) * 0x1.0p-53;
}

double shelf_rng_normal(shelf_rng *r)
{
    double u1 = shelf_rng_uniform(r);
    double u2 = shelf_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
