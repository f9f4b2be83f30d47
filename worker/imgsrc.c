/* The image stage; see imgsrc.h. */
#include "imgsrc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "safe_open.h"
#include "tar_member.h"
#include "u64map.h"
#include "xalloc.h"

#define NIL UINT32_MAX
#define DEFAULT_ENTRIES 4096

typedef struct {
    uint64_t id;
    int rc;              /* 0, or the image's error */
    void *value;         /* rc == 0: what use.prepare made */
    char *error;         /* rc != 0: the reason */
    size_t bytes;        /* counted against max_bytes */
    uint32_t prev, next; /* LRU list, most recent first */
} entry_t;

struct joust_imgsrc {
    joust_imgsrc_config cfg;
    char *root, *log_name;
    entry_t *ent;
    size_t cap, used;    /* slots allocated / ever handed out */
    uint32_t *free_ids;
    size_t nfree, free_cap;
    joust_u64map_t index; /* image id -> slot */
    uint32_t head, tail;
    size_t count, bytes;
    uint64_t hits, misses, scaled;
};

joust_imgsrc_t *joust_imgsrc_new(const joust_imgsrc_config *cfg)
{
    joust_imgsrc_t *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    if (!s->cfg.max_entries)
        s->cfg.max_entries = DEFAULT_ENTRIES;
    if (s->cfg.max_entries < 2)
        s->cfg.max_entries = 2;
    if (s->cfg.max_entries > NIL / 2)
        s->cfg.max_entries = NIL / 2;
    if (!s->cfg.lim.max_side && !s->cfg.lim.max_pixels && !s->cfg.lim.max_bytes)
        joust_image_limits_defaults(&s->cfg.lim);
    if (cfg->image_root && *cfg->image_root)
        s->root = xstrdup(cfg->image_root);
    s->log_name = xstrdup(cfg->log_name ? cfg->log_name : "image stage");
    s->cfg.image_root = s->root;
    s->cfg.log_name = s->log_name;
    s->head = s->tail = NIL;
    joust_u64map_init(&s->index);
    return s;
}

static void entry_free(joust_imgsrc_t *s, entry_t *e)
{
    if (e->value) {
        if (s->cfg.use.release)
            s->cfg.use.release(s->cfg.use.ctx, e->value);
        else
            free(e->value);
    }
    free(e->error);
    e->value = NULL;
    e->error = NULL;
}

void joust_imgsrc_destroy(joust_imgsrc_t **self_p)
{
    joust_imgsrc_t *s = *self_p;
    if (!s)
        return;
    for (uint32_t i = s->head; i != NIL; i = s->ent[i].next)
        entry_free(s, &s->ent[i]);
    free(s->ent);
    free(s->free_ids);
    free(s->root);
    free(s->log_name);
    joust_u64map_free(&s->index);
    free(s);
    *self_p = NULL;
}

/* ---- the LRU ---- */

static void unlink_entry(joust_imgsrc_t *s, uint32_t i)
{
    entry_t *e = &s->ent[i];
    if (e->prev != NIL) s->ent[e->prev].next = e->next; else s->head = e->next;
    if (e->next != NIL) s->ent[e->next].prev = e->prev; else s->tail = e->prev;
}

static void push_front(joust_imgsrc_t *s, uint32_t i)
{
    entry_t *e = &s->ent[i];
    e->prev = NIL;
    e->next = s->head;
    if (s->head != NIL)
        s->ent[s->head].prev = i;
    s->head = i;
    if (s->tail == NIL)
        s->tail = i;
}

/* Evicts from the tail while over budget, sparing the two most recent. */
static void evict(joust_imgsrc_t *s)
{
    while (s->count > 2 && (s->count > s->cfg.max_entries ||
                            (s->cfg.max_bytes && s->bytes > s->cfg.max_bytes))) {
        uint32_t i = s->tail;
        unlink_entry(s, i);
        if (s->ent[i].id)
            joust_u64map_del(&s->index, s->ent[i].id);
        s->bytes -= s->ent[i].bytes;
        entry_free(s, &s->ent[i]);
        s->count--;
        xgrow((void **)&s->free_ids, &s->free_cap, s->nfree + 1, sizeof *s->free_ids);
        s->free_ids[s->nfree++] = i;
    }
}

static uint32_t new_slot(joust_imgsrc_t *s)
{
    if (s->nfree)
        return s->free_ids[--s->nfree];
    xgrow((void **)&s->ent, &s->cap, s->used + 1, sizeof *s->ent);
    return (uint32_t)s->used++;
}

/* ---- resolve, confine, fetch, decode ---- */

/* "SHARD#MEMBER", malloc'd, naming a member in messages. */
static char *member_where(const char *shard, const char *member)
{
    size_t n = strlen(shard) + strlen(member) + 2;
    char *w = xmalloc(n);
    snprintf(w, n, "%s#%s", shard, member);
    return w;
}

/* The encoded bytes uri names; *where gets the path or URI to name in
 * messages (malloc'd, also on failure when known). */
static int fetch(const joust_imgsrc_t *s, const char *uri, unsigned char **data, size_t *len,
                 char **where, char *err, size_t errlen)
{
    *where = NULL;
    joust_uri ref;
    char why[384];
    int rc = joust_uri_parse(uri, s->root, &ref, why, sizeof why);
    if (rc) {
        snprintf(err, errlen, "%s: %s", uri, why);
        return rc;
    }
    if (joust_uri_is_remote(&ref)) {
        *where = ref.scheme == JOUST_URI_TAR ? member_where(ref.path, ref.member)
                                             : xstrdup(ref.path);
        if (s->cfg.fetch_remote)
            rc = s->cfg.fetch_remote(s->cfg.fetch_ctx, &ref, s->cfg.lim.max_bytes, data, len, err,
                                     errlen);
        else
            rc = (snprintf(err, errlen, "%s: %s:// images are not supported yet (only local "
                           "paths and file:// URIs are read)", ref.path,
                           joust_uri_scheme_name(ref.scheme)), JOUST_EUNSUPPORTED);
        joust_uri_clear(&ref);
        return rc;
    }
    /* Confined: read the canonical path, and refuse a last component that
     * became a link since realpath looked (O_NOFOLLOW). */
    int flags = 0;
    char *path = ref.path;
    ref.path = NULL;
    if (s->cfg.roots && s->cfg.roots->n) {
        char *real;
        if ((rc = joust_path_confine(s->cfg.roots, path, &real, err, errlen)) != 0) {
            *where = path;
            return rc;
        }
        free(path);
        path = real;
        flags = JOUST_OPEN_NOFOLLOW;
    }
    if (ref.scheme == JOUST_URI_TAR) {
        *where = member_where(path, ref.member);
        if (!ref.compressed) { /* one ranged read of the member (tar_member.h) */
            rc = joust_tar_member_read(&ref, path, flags, s->cfg.lim.max_bytes, data, len, err,
                                       errlen);
        } else if (s->cfg.fetch_remote) { /* streamed and cached (worker/fetch.h) */
            free(ref.path);
            ref.path = path;
            path = NULL;
            rc = s->cfg.fetch_remote(s->cfg.fetch_ctx, &ref, s->cfg.lim.max_bytes, data, len,
                                     err, errlen);
        } else {
            rc = joust_errf(err, errlen, JOUST_EUNSUPPORTED, "%s: a member of a compressed "
                            "shard is read through the fetcher, and this stage has none", *where);
        }
        free(path);
        joust_uri_clear(&ref);
        return rc;
    }
    *where = path;
    return joust_read_regular(path, flags, s->cfg.lim.max_bytes, data, len, err, errlen);
}

/* The judge's want, noting the full size the decoder saw. */
typedef struct {
    const joust_imgsrc_t *s;
    int w, h;
} want_ctx;

static void want_full_size(void *ctx, int w, int h, int *min_w, int *min_h)
{
    want_ctx *c = ctx;
    c->w = w;
    c->h = h;
    c->s->cfg.use.want(c->s->cfg.use.ctx, w, h, min_w, min_h);
}

/* Fetches and decodes uri; with want (may be NULL), *src_w x *src_h get
 * the full size, which out is smaller than when it was decoded scaled. */
static int load(const joust_imgsrc_t *s, const char *uri, int scaled_ok, joust_image *out,
                int *src_w, int *src_h, size_t *src_bytes, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    unsigned char *data = NULL;
    size_t len = 0;
    char *where = NULL;
    want_ctx wc = {s, 0, 0};
    joust_image_want want = {want_full_size, &wc};
    int use_want = scaled_ok && s->cfg.use.want && !s->cfg.full_decode;
    int rc = fetch(s, uri ? uri : "", &data, &len, &where, err, errlen);
    if (!rc) {
        char why[384];
        rc = joust_image_decode_for(data, len, &s->cfg.lim, use_want ? &want : NULL, out, why,
                                    sizeof why);
        if (rc)
            snprintf(err, errlen, "%s: %s", where, why);
    }
    *src_w = wc.w ? wc.w : out->w;
    *src_h = wc.h ? wc.h : out->h;
    *src_bytes = len;
    free(data);
    free(where);
    return rc;
}

int joust_imgsrc_load(const joust_imgsrc_t *s, const char *uri, joust_image *out, char *err,
                      size_t errlen)
{
    int w, h;
    size_t bytes;
    return load(s, uri, 0, out, &w, &h, &bytes, err, errlen);
}

/* Fetches uri and prepares e from its encoded bytes (use.prepare_encoded);
 * a failure's reason names the file. */
static int prepare_encoded(joust_imgsrc_t *s, entry_t *e, const char *uri, char *reason,
                           size_t rlen)
{
    unsigned char *data = NULL;
    size_t len = 0;
    char *where = NULL, why[384] = "";
    int rc = fetch(s, uri ? uri : "", &data, &len, &where, reason, rlen);
    if (!rc && (rc = s->cfg.use.prepare_encoded(s->cfg.use.ctx, data, len, &s->cfg.lim,
                                                &e->value, &e->bytes, why, sizeof why)) != 0) {
        snprintf(reason, rlen, "%s: %s", where, why[0] ? why : joust_strerror(rc));
        e->value = NULL;
        e->bytes = 0;
    }
    free(data);
    free(where);
    return rc;
}

/* Loads and prepares one image into e. */
static void fill(joust_imgsrc_t *s, entry_t *e, const char *uri)
{
    char reason[512] = "";
    joust_image img = {0};
    int src_w = 0, src_h = 0;
    size_t src_bytes = 0;
    int enc = s->cfg.use.prepare_encoded != NULL;
    int rc = enc ? prepare_encoded(s, e, uri, reason, sizeof reason)
                 : load(s, uri, 1, &img, &src_w, &src_h, &src_bytes, reason, sizeof reason);
    if (!rc && !enc && (img.w != src_w || img.h != src_h))
        s->scaled++;
    if (!rc && !enc) {
        char why[384] = "";
        if (s->cfg.use.encoded)
            s->cfg.use.encoded(s->cfg.use.ctx, src_bytes);
        rc = s->cfg.use.prepare(s->cfg.use.ctx, &img, src_w, src_h, &e->value, &e->bytes, why,
                                sizeof why);
        if (rc) {
            snprintf(reason, sizeof reason, "%s: %s", uri, why[0] ? why : joust_strerror(rc));
            e->value = NULL;
            e->bytes = 0;
        }
    }
    joust_image_free(&img);
    e->rc = rc;
    if (rc) {
        if (!reason[0])
            snprintf(reason, sizeof reason, "%s: %s", uri, joust_strerror(rc));
        e->error = xstrdup(reason);
        e->bytes = strlen(reason);
        log_warn("%s: image %" PRIu64 " (%s): %s", s->log_name, e->id, uri, reason);
    }
}

int joust_imgsrc_get(joust_imgsrc_t *s, uint64_t id, const char *uri, const void **value,
                     char *err, size_t errlen)
{
    uint64_t v;
    uint32_t i;
    if (id && joust_u64map_get(&s->index, id, &v)) {
        i = (uint32_t)v;
        s->hits++;
        unlink_entry(s, i);
        push_front(s, i);
    } else {
        s->misses++;
        i = new_slot(s);
        entry_t *e = &s->ent[i];
        memset(e, 0, sizeof *e);
        e->id = id;
        fill(s, e, uri ? uri : "");
        if (e->rc == JOUST_EAGAIN) { /* an outage: not the image's fault, not cached */
            int rc = e->rc;
            if (err && errlen)
                snprintf(err, errlen, "%s", e->error);
            entry_free(s, e);
            xgrow((void **)&s->free_ids, &s->free_cap, s->nfree + 1, sizeof *s->free_ids);
            s->free_ids[s->nfree++] = i;
            *value = NULL;
            return rc;
        }
        s->count++;
        s->bytes += e->bytes;
        push_front(s, i);
        if (id)
            joust_u64map_put(&s->index, id, i);
        evict(s);
    }
    const entry_t *e = &s->ent[i];
    *value = e->rc ? NULL : e->value;
    if (e->rc && err && errlen)
        snprintf(err, errlen, "%s", e->error);
    return e->rc;
}

void joust_imgsrc_stats_get(const joust_imgsrc_t *s, joust_imgsrc_stats *out)
{
    out->hits = s->hits;
    out->misses = s->misses;
    out->scaled = s->scaled;
    out->entries = s->count;
    out->bytes = s->bytes;
}
