#include "u64map.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Linear probing with backward-shift deletion: no tombstones, so a map
 * with constant churn (the coordinator inserts and deletes every match)
 * keeps short probe sequences. */

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

void joust_u64map_init(joust_u64map_t *m) { memset(m, 0, sizeof *m); }

void joust_u64map_free(joust_u64map_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static void rehash(joust_u64map_t *m, size_t cap)
{
    uint64_t *ok = m->keys, *ov = m->vals;
    size_t ocap = m->cap;
    m->keys = xcalloc(cap, sizeof *m->keys);
    m->vals = xmalloc(cap * sizeof *m->vals);
    m->cap = cap;
    m->len = 0;
    for (size_t i = 0; i < ocap; i++)
        if (ok[i])
            joust_u64map_put(m, ok[i], ov[i]);
    free(ok);
    free(ov);
}

void joust_u64map_put(joust_u64map_t *m, uint64_t key, uint64_t val)
{
    assert(key != 0);
    if ((m->len + 1) * 10 >= m->cap * 7)
        rehash(m, m->cap < 16 ? 16 : m->cap * 2);
    size_t i = slot_of(key, m->cap);
    for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return;
        }
    m->keys[i] = key;
    m->vals[i] = val;
    m->len++;
}

static size_t find(const joust_u64map_t *m, uint64_t key)
{
    if (!m->cap)
        return SIZE_MAX;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return i;
        if (m->keys[i] == 0)
            return SIZE_MAX;
    }
}

int joust_u64map_get(const joust_u64map_t *m, uint64_t key, uint64_t *val)
{
    size_t i = find(m, key);
    if (i == SIZE_MAX)
        return 0;
    if (val)
        *val = m->vals[i];
    return 1;
}

void joust_u64map_prefetch(const joust_u64map_t *m, uint64_t key)
{
    if (!m->cap)
        return;
    size_t i = slot_of(key, m->cap);
    __builtin_prefetch(&m->keys[i], 1);
    __builtin_prefetch(&m->vals[i], 1);
}

int joust_u64map_del(joust_u64map_t *m, uint64_t key)
{
    size_t i = find(m, key);
    if (i == SIZE_MAX)
        return 0;
    size_t mask = m->cap - 1;
    /* Move later entries of the cluster back into the hole when the hole
     * lies on their probe path (between their home slot and them). */
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], m->cap);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->len--;
    return 1;
}

void joust_u64map_clear(joust_u64map_t *m)
{
    if (m->cap)
        memset(m->keys, 0, m->cap * sizeof *m->keys);
    m->len = 0;
}

size_t joust_u64map_bytes(const joust_u64map_t *m) { return m->cap * 2 * sizeof(uint64_t); }
