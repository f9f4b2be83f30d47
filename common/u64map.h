/* An open-addressing hash map from u64 keys (never 0) to u64 values, for
 * the fixed-size in-memory indexes of the coordinator and worker (match id
 * -> slot, hash -> id). Aborts on out-of-memory; not thread-safe. */
#ifndef JOUST_U64MAP_H
#define JOUST_U64MAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *keys, *vals; /* key 0 marks an empty slot */
    size_t cap, len;
} joust_u64map_t;

void joust_u64map_init(joust_u64map_t *m);
void joust_u64map_free(joust_u64map_t *m);
/* Inserts or replaces. key must not be 0. */
void joust_u64map_put(joust_u64map_t *m, uint64_t key, uint64_t val);
/* Returns 1 and sets *val when present, else 0. val may be NULL. */
int joust_u64map_get(const joust_u64map_t *m, uint64_t key, uint64_t *val);
/* Asks the CPU to bring key's slot into the cache (a later put or get of
 * it then waits less); changes nothing. */
void joust_u64map_prefetch(const joust_u64map_t *m, uint64_t key);
/* Returns 1 when a key was removed. */
int joust_u64map_del(joust_u64map_t *m, uint64_t key);
void joust_u64map_clear(joust_u64map_t *m);
size_t joust_u64map_bytes(const joust_u64map_t *m);

#endif
