/* Deterministic pseudo-random numbers (xoshiro256** seeded by splitmix64):
 * the same seed gives the same tournaments, noise and demo images on every
 * machine. Not thread-safe; one state per thread. */
#ifndef JOUST_RNG_H
#define JOUST_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } joust_rng_t;

void joust_rng_seed(joust_rng_t *r, uint64_t seed);
uint64_t joust_rng_u64(joust_rng_t *r);
double joust_rng_uniform(joust_rng_t *r);        /* [0, 1) */
uint64_t joust_rng_below(joust_rng_t *r, uint64_t n); /* [0, n), n > 0 */
double joust_rng_normal(joust_rng_t *r);         /* N(0, 1) */

#endif
