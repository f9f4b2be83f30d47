/* Image preparation for the openai judge; see openai_prep.h. */
#include "openai_prep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "image.h"
#include "imgsrc.h"
#include "xalloc.h"

#define URL_PREFIX "data:image/jpeg;base64,"

struct joust_oa_prep {
    joust_oa_prep_config cfg;
    joust_imgsrc_t *src;
};

/* What the stage keeps per image: the description and its data URL. */
typedef struct {
    joust_oa_image img;
    char url[];
} prepared_t;

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

/* The size the budget asks for: what scaled decoding must still cover. */
static void want(void *ctx, int w, int h, int *min_w, int *min_h)
{
    const joust_oa_prep_config *cfg = ctx;
    joust_image_fit_budget(w, h, cfg->min_pixels, cfg->max_pixels, cfg->factor, cfg->max_aspect,
                           min_w, min_h);
}

/* Fits, encodes and base64s one decoded image (the stage's prepare). The
 * budget is computed on the full size, so a scaled decode sends exactly
 * the size a full one would. */
static int prepare(void *ctx, const joust_image *src, int src_w, int src_h, void **value,
                   size_t *bytes, char *err, size_t errlen)
{
    const joust_oa_prep_config *cfg = ctx;
    int w = 0, h = 0, rc = 0;
    joust_image fit = {0};
    unsigned char *jpg = NULL;
    size_t jlen = 0;
    want(ctx, src_w, src_h, &w, &h);
    const joust_image *use = src;
    if (w != src->w || h != src->h) {
        if ((rc = joust_image_resize(src, w, h, &fit)) != 0)
            snprintf(err, errlen, "cannot resize %dx%d to %dx%d", src->w, src->h, w, h);
        use = &fit;
    }
    if (!rc && (rc = joust_image_encode_jpeg(use, cfg->jpeg_quality, 1, &jpg, &jlen)) != 0)
        snprintf(err, errlen, "cannot encode %dx%d as JPEG", w, h);
    if (!rc) {
        size_t pre = strlen(URL_PREFIX);
        prepared_t *p = xmalloc(sizeof *p + pre + 4 * ((jlen + 2) / 3) + 1);
        memcpy(p->url, URL_PREFIX, pre);
        size_t len = pre + joust_base64_encode(jpg, jlen, p->url + pre);
        p->url[len] = '\0';
        p->img = (joust_oa_image){p->url, len, w, h, src_w, src_h};
        *value = p;
        *bytes = len;
    }
    free(jpg);
    joust_image_free(&fit);
    return rc;
}

joust_oa_prep_t *joust_oa_prep_new(const joust_oa_prep_config *cfg)
{
    joust_oa_prep_t *p = xcalloc(1, sizeof *p);
    p->cfg = *cfg;
    if (p->cfg.factor < 1)
        p->cfg.factor = 28;
    if (p->cfg.jpeg_quality < 1 || p->cfg.jpeg_quality > 100)
        p->cfg.jpeg_quality = 90;
    if (p->cfg.max_aspect <= 0)
        p->cfg.max_aspect = JOUST_OA_MAX_ASPECT;
    joust_imgsrc_config sc = {.image_root = cfg->image_root, .roots = cfg->roots,
                              .max_entries = cfg->max_entries ? cfg->max_entries : 2,
                              .max_bytes = cfg->max_bytes,
                              .use = {.prepare = prepare, .want = want, .ctx = &p->cfg},
                              .log_name = "openai judge", .full_decode = cfg->full_decode,
                              .fetch_remote = cfg->fetch_remote, .fetch_ctx = cfg->fetch_ctx};
    p->cfg.image_root = NULL; /* copied by the stage */
    p->src = joust_imgsrc_new(&sc);
    return p;
}

void joust_oa_prep_destroy(joust_oa_prep_t **self_p)
{
    joust_oa_prep_t *p = *self_p;
    if (!p)
        return;
    joust_imgsrc_destroy(&p->src);
    free(p);
    *self_p = NULL;
}

int joust_oa_prep_get(joust_oa_prep_t *p, uint64_t id, const char *uri, joust_oa_image *out,
                      char *err, size_t errlen)
{
    const void *v;
    int rc = joust_imgsrc_get(p->src, id, uri, &v, err, errlen);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    *out = ((const prepared_t *)v)->img;
    return 0;
}

uint64_t joust_oa_prep_scaled_decodes(const joust_oa_prep_t *p)
{
    joust_imgsrc_stats st;
    joust_imgsrc_stats_get(p->src, &st);
    return st.scaled;
}

void joust_oa_prep_stats(const joust_oa_prep_t *p, uint64_t *hits, uint64_t *misses, size_t *bytes)
{
    joust_imgsrc_stats st;
    joust_imgsrc_stats_get(p->src, &st);
    if (hits)
        *hits = st.hits;
    if (misses)
        *misses = st.misses;
    if (bytes)
        *bytes = st.bytes;
}
