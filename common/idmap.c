#include "idmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void joust_idmap_init(joust_idmap_t *m)
{
    memset(m, 0, sizeof *m);
    joust_u64map_init(&m->over);
}

void joust_idmap_free(joust_idmap_t *m)
{
    free(m->slots);
    joust_u64map_free(&m->over);
    joust_idmap_init(m);
}

/* Places an id known to be absent. */
static void place(joust_idmap_t *m, uint64_t id, uint64_t val)
{
    joust_idmap_slot *s = &m->slots[id & m->mask];
    if (s->id == 0) {
        s->id = id;
        s->val = val;
    } else {
        joust_u64map_put(&m->over, id, val);
    }
    m->len++;
}

static void grow(joust_idmap_t *m, size_t nslots)
{
    joust_idmap_slot *old = m->slots;
    size_t n = m->mask ? m->mask + 1 : 0;
    joust_u64map_t over = m->over;
    m->slots = xcalloc(nslots, sizeof *m->slots);
    m->mask = nslots - 1;
    m->len = 0;
    joust_u64map_init(&m->over);
    for (size_t i = 0; i < n; i++)
        if (old[i].id)
            place(m, old[i].id, old[i].val);
    for (size_t i = 0; i < over.cap; i++)
        if (over.keys[i])
            place(m, over.keys[i], over.vals[i]);
    free(old);
    joust_u64map_free(&over);
}

void joust_idmap_put(joust_idmap_t *m, uint64_t id, uint64_t val)
{
    assert(id != 0);
    if (m->mask) {
        joust_idmap_slot *s = &m->slots[id & m->mask];
        if (s->id == id) {
            s->val = val;
            return;
        }
        if (m->over.len && joust_u64map_get(&m->over, id, NULL)) {
            joust_u64map_put(&m->over, id, val);
            return;
        }
    }
    /* Under two slots an id, or an overflow past an eighth of the slots
     * (while under 16 slots an id, so ids that share low bits whatever the
     * size cannot grow it without bound): the window outgrew the table. */
    size_t n = m->mask ? m->mask + 1 : 0;
    if ((m->len + 1) * 2 > n || (m->over.len * 8 > n && n < (m->len + 1) * 16))
        grow(m, n < 1024 ? 1024 : n * 2);
    place(m, id, val);
}

int joust_idmap_del(joust_idmap_t *m, uint64_t id)
{
    if (!m->mask || !id)
        return 0;
    joust_idmap_slot *s = &m->slots[id & m->mask];
    if (s->id == id) {
        s->id = 0;
        m->len--;
        return 1;
    }
    if (m->over.len && joust_u64map_del(&m->over, id)) {
        m->len--;
        return 1;
    }
    return 0;
}

size_t joust_idmap_bytes(const joust_idmap_t *m)
{
    return (m->mask ? m->mask + 1 : 0) * sizeof *m->slots + joust_u64map_bytes(&m->over);
}
