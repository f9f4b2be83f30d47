/* Image preparation cache for the openai judge; see openai_prep.h. */
#include "openai_prep.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "image.h"
#include "log.h"
#include "u64map.h"
#include "uri.h"
#include "xalloc.h"

#define NIL UINT32_MAX
#define URL_PREFIX "data:image/jpeg;base64,"

typedef struct {
    uint64_t id;
    int rc;                 /* 0, or the image's error */
    char *text;             /* the data URL, or the error message */
    size_t len;
    joust_oa_image img;
    uint32_t prev, next;    /* LRU list, most recent first */
} entry_t;

struct joust_oa_prep {
    joust_oa_prep_config cfg;
    char *root;
    entry_t *ent;
    uint32_t *free_ids;
    size_t nfree, free_cap, cap;
    joust_u64map_t index;   /* image id -> entry index */
    uint32_t head, tail;
    size_t count, bytes;
    uint64_t hits, misses;
    joust_image_limits lim;
};

size_t joust_base64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    return (size_t)(o - out);
}

joust_oa_prep_t *joust_oa_prep_new(const joust_oa_prep_config *cfg)
{
    joust_oa_prep_t *p = xcalloc(1, sizeof *p);
    p->cfg = *cfg;
    if (p->cfg.max_entries < 2)
        p->cfg.max_entries = 2;
    if (p->cfg.max_entries > NIL / 2)
        p->cfg.max_entries = NIL / 2;
    if (p->cfg.factor < 1)
        p->cfg.factor = 28;
    if (p->cfg.jpeg_quality < 1 || p->cfg.jpeg_quality > 100)
        p->cfg.jpeg_quality = 90;
    if (cfg->image_root && *cfg->image_root)
        p->root = xstrdup(cfg->image_root);
    p->cfg.image_root = p->root;
    p->head = p->tail = NIL;
    joust_u64map_init(&p->index);
    joust_image_limits_defaults(&p->lim);
    return p;
}

void joust_oa_prep_destroy(joust_oa_prep_t **self_p)
{
    joust_oa_prep_t *p = *self_p;
    if (!p)
        return;
    for (uint32_t i = p->head; i != NIL; i = p->ent[i].next)
        free(p->ent[i].text);
    free(p->ent);
    free(p->free_ids);
    free(p->root);
    joust_u64map_free(&p->index);
    free(p);
    *self_p = NULL;
}

static void unlink_entry(joust_oa_prep_t *p, uint32_t i)
{
    entry_t *e = &p->ent[i];
    if (e->prev != NIL) p->ent[e->prev].next = e->next; else p->head = e->next;
    if (e->next != NIL) p->ent[e->next].prev = e->prev; else p->tail = e->prev;
}

static void push_front(joust_oa_prep_t *p, uint32_t i)
{
    entry_t *e = &p->ent[i];
    e->prev = NIL;
    e->next = p->head;
    if (p->head != NIL)
        p->ent[p->head].prev = i;
    p->head = i;
    if (p->tail == NIL)
        p->tail = i;
}

/* Evicts from the tail while over budget, sparing the two most recent. */
static void evict(joust_oa_prep_t *p)
{
    while (p->count > 2 && (p->count > p->cfg.max_entries ||
                            (p->cfg.max_bytes && p->bytes > p->cfg.max_bytes))) {
        uint32_t i = p->tail;
        unlink_entry(p, i);
        if (p->ent[i].id)
            joust_u64map_del(&p->index, p->ent[i].id);
        p->bytes -= p->ent[i].len;
        free(p->ent[i].text);
        p->ent[i].text = NULL;
        p->count--;
        xgrow((void **)&p->free_ids, &p->free_cap, p->nfree + 1, sizeof *p->free_ids);
        p->free_ids[p->nfree++] = i;
    }
}

static uint32_t new_entry(joust_oa_prep_t *p)
{
    if (p->nfree)
        return p->free_ids[--p->nfree];
    xgrow((void **)&p->ent, &p->cap, p->count + 1, sizeof *p->ent);
    return (uint32_t)p->count;
}

/* Decodes, fits and encodes one image into e (text = data URL or error). */
static void prepare(joust_oa_prep_t *p, entry_t *e, const char *uri)
{
    char reason[512] = "";
    char *path = NULL;
    joust_image src = {0}, fit = {0};
    unsigned char *jpg = NULL;
    size_t jlen = 0;
    int rc = joust_uri_to_path(uri, p->root, &path, reason, sizeof reason);
    if (!rc && p->cfg.roots && p->cfg.roots->n) {
        char *real = NULL;
        if ((rc = joust_path_confine(p->cfg.roots, path, &real, reason, sizeof reason)) == 0) {
            free(path);
            path = real;
        }
    }
    if (!rc)
        rc = joust_image_load(path, &p->lim, &src, reason, sizeof reason);
    int w = 0, h = 0;
    if (!rc) {
        joust_image_fit_budget(src.w, src.h, p->cfg.min_pixels, p->cfg.max_pixels, p->cfg.factor,
                               &w, &h);
        const joust_image *use = &src;
        if (w != src.w || h != src.h) {
            rc = joust_image_resize(&src, w, h, &fit);
            use = &fit;
            if (rc)
                snprintf(reason, sizeof reason, "%s: cannot resize %dx%d to %dx%d", path, src.w,
                         src.h, w, h);
        }
        if (!rc && (rc = joust_image_encode_jpeg(use, p->cfg.jpeg_quality, 1, &jpg, &jlen)) != 0)
            snprintf(reason, sizeof reason, "%s: cannot encode %dx%d as JPEG", path, w, h);
    }
    e->rc = rc;
    if (rc == 0) {
        size_t pre = strlen(URL_PREFIX);
        e->text = xmalloc(pre + 4 * ((jlen + 2) / 3) + 1);
        memcpy(e->text, URL_PREFIX, pre);
        e->len = pre + joust_base64_encode(jpg, jlen, e->text + pre);
        e->text[e->len] = '\0';
        e->img = (joust_oa_image){e->text, e->len, w, h, src.w, src.h};
    } else {
        if (!reason[0])
            snprintf(reason, sizeof reason, "%s: %s", path ? path : uri, joust_strerror(rc));
        e->text = xstrdup(reason);
        e->len = strlen(e->text);
        log_warn("openai judge: image %" PRIu64 " (%s): %s", e->id, uri, reason);
    }
    free(jpg);
    free(path);
    joust_image_free(&src);
    joust_image_free(&fit);
}

int joust_oa_prep_get(joust_oa_prep_t *p, uint64_t id, const char *uri, joust_oa_image *out,
                      char *err, size_t errlen)
{
    uint64_t v;
    uint32_t i;
    if (id && joust_u64map_get(&p->index, id, &v)) {
        i = (uint32_t)v;
        p->hits++;
        unlink_entry(p, i);
        push_front(p, i);
    } else {
        p->misses++;
        i = new_entry(p);
        entry_t *e = &p->ent[i];
        memset(e, 0, sizeof *e);
        e->id = id;
        prepare(p, e, uri ? uri : "");
        p->count++;
        p->bytes += e->len;
        push_front(p, i);
        if (id)
            joust_u64map_put(&p->index, id, i);
        evict(p);
    }
    const entry_t *e = &p->ent[i];
    if (e->rc) {
        snprintf(err, errlen, "%s", e->text);
        memset(out, 0, sizeof *out);
        return e->rc;
    }
    *out = e->img;
    return 0;
}

void joust_oa_prep_stats(const joust_oa_prep_t *p, uint64_t *hits, uint64_t *misses, size_t *bytes)
{
    if (hits)
        *hits = p->hits;
    if (misses)
        *misses = p->misses;
    if (bytes)
        *bytes = p->bytes;
}
