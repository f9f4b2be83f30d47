/* A map from u64 ids (never 0) to u64 values for ids that live in a
 * sliding window of mostly consecutive numbers: the match ids in flight in
 * the coordinator, the unacknowledged results in a worker. An id goes to
 * the slot its low bits name, so consecutive ids touch consecutive memory
 * and a lookup is one compare; an id whose slot a live id already holds (a
 * straggler one table length away) goes to an overflow u64map. The table
 * doubles while the ids outgrow it; absent ids cost one compare (plus an
 * overflow probe when it is not empty).
 * Aborts on out-of-memory; not thread-safe. */
#ifndef JOUST_IDMAP_H
#define JOUST_IDMAP_H
#include <stddef.h>
#include <stdint.h>

#include "u64map.h"

typedef struct {
    uint64_t id, val; /* id 0: empty */
} joust_idmap_slot;

typedef struct {
    joust_idmap_slot *slots;
    size_t mask;         /* slots - 1; 0 before the first put */
    size_t len;          /* ids held, in slots and overflow */
    joust_u64map_t over; /* ids whose slot another id holds */
} joust_idmap_t;

void joust_idmap_init(joust_idmap_t *m);
void joust_idmap_free(joust_idmap_t *m);
/* Inserts or replaces. id must not be 0. */
void joust_idmap_put(joust_idmap_t *m, uint64_t id, uint64_t val);
/* Returns 1 and sets *val (val may be NULL) when present, else 0. */
static inline int joust_idmap_get(const joust_idmap_t *m, uint64_t id, uint64_t *val)
{
    const joust_idmap_slot *s = m->mask ? &m->slots[id & m->mask] : NULL;
    if (s && s->id == id && id) {
        if (val)
            *val = s->val;
        return 1;
    }
    return m->over.len ? joust_u64map_get(&m->over, id, val) : 0;
}
/* Returns 1 when an id was removed. */
int joust_idmap_del(joust_idmap_t *m, uint64_t id);
size_t joust_idmap_bytes(const joust_idmap_t *m);

#endif
