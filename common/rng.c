#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void joust_rng_seed(joust_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t joust_rng_u64(joust_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

double joust_rng_uniform(joust_rng_t *r)
{
    return (double)(joust_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t joust_rng_below(joust_rng_t *r, uint64_t n)
{
    /* Lemire's multiply-shift with rejection: unbiased. */
    for (;;) {
        unsigned __int128 m = (unsigned __int128)joust_rng_u64(r) * n;
        uint64_t lo = (uint64_t)m;
        if (lo >= n || lo >= (0 - n) % n)
            return (uint64_t)(m >> 64);
    }
}

double joust_rng_normal(joust_rng_t *r)
{
    double u1 = joust_rng_uniform(r), u2 = joust_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
