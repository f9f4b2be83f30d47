#include "u64map.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define TOMB UINT64_MAX /* deleted slot; real keys are never all-ones */

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
    m->len = m->tombs = 0;
    for (size_t i = 0; i < ocap; i++)
        if (ok[i] && ok[i] != TOMB)
            joust_u64map_put(m, ok[i], ov[i]);
    free(ok);
    free(ov);
}

void joust_u64map_put(joust_u64map_t *m, uint64_t key, uint64_t val)
{
    assert(key != 0 && key != TOMB);
    if ((m->len + m->tombs + 1) * 4 >= m->cap * 3)
        rehash(m, m->cap < 16 ? 16 : (m->len * 2 >= m->cap ? m->cap * 2 : m->cap));
    size_t i = slot_of(key, m->cap), tomb = SIZE_MAX;
    for (;; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return;
        }
        if (m->keys[i] == TOMB && tomb == SIZE_MAX)
            tomb = i;
        if (m->keys[i] == 0)
            break;
    }
    if (tomb != SIZE_MAX) {
        i = tomb;
        m->tombs--;
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

int joust_u64map_del(joust_u64map_t *m, uint64_t key)
{
    size_t i = find(m, key);
    if (i == SIZE_MAX)
        return 0;
    m->keys[i] = TOMB;
    m->len--;
    m->tombs++;
    return 1;
}

void joust_u64map_clear(joust_u64map_t *m)
{
    if (m->cap)
        memset(m->keys, 0, m->cap * sizeof *m->keys);
    m->len = m->tombs = 0;
}

size_t joust_u64map_bytes(const joust_u64map_t *m) { return m->cap * 2 * sizeof(uint64_t); }
