/* Image preparation for the openai judge, on the image stage
 * (worker/imgsrc.h: resolve, confine, read, decode, LRU by image id): fit
 * the Qwen2.5-VL pixel budget (sides multiples of 28, aspect kept, min/max
 * pixels as smart_resize; aspect at most JOUST_OA_MAX_ASPECT; a large JPEG
 * decoded at a reduced scale that still covers the budget), re-encode as
 * JPEG and keep the base64 data URL,
 * so an image used in many matches is prepared once per worker. Failures
 * are cached too: a broken image is read once.
 *
 * Ownership: get fills *out by value; its url is borrowed from the cache and
 * stays valid until the second next call to get (the two most recently used
 * entries are never evicted, so both images of a match can be held).
 * Threads: not thread-safe; one cache per judge.
 * Errors: get returns 0 or the image's error (JOUST_ENOTFOUND, JOUST_EIO,
 * JOUST_ECORRUPT, JOUST_EFORMAT, JOUST_ETOOBIG, JOUST_EUNSUPPORTED,
 * JOUST_EDENIED: outside the allowed roots) with a
 * reason naming the file in err, or JOUST_EAGAIN when a remote store was
 * unreachable (joust_imgsrc_outage: not cached, not the image's fault). */
#ifndef JOUST_OPENAI_PREP_H
#define JOUST_OPENAI_PREP_H
#include <stddef.h>
#include <stdint.h>

#include "confine.h"
#include "imgsrc.h"

typedef struct {
    long long min_pixels, max_pixels; /* Qwen2.5-VL defaults 3136 and the judge's budget */
    int factor;                       /* 28: one Qwen2.5-VL token per 28x28 px */
    int jpeg_quality;                 /* 90, 4:4:4 */
    size_t max_entries;               /* >= 2 */
    size_t max_bytes;                 /* data URLs held at most */
    const char *image_root;           /* relative paths resolve under it */
    const joust_path_roots *roots;    /* --allow-root confinement; borrowed, may be NULL */
    double max_aspect;                /* longest side / shortest at most; 0: JOUST_OA_MAX_ASPECT */
    int full_decode;                  /* 1: no scaled JPEG decoding (benchmarks) */
    joust_imgsrc_fetch_fn fetch_remote; /* remote images (worker/fetch.h); NULL: refused */
    void *fetch_ctx;
} joust_oa_prep_config;

/* Qwen2.5-VL refuses images whose sides differ by more than 200 times
 * (smart_resize's MAX_RATIO); wider ones are squeezed to it (image.h). */
#define JOUST_OA_MAX_ASPECT 200.0

typedef struct {
    const char *url;   /* "data:image/jpeg;base64,..." */
    size_t url_len;
    int w, h;          /* as sent */
    int src_w, src_h;  /* as decoded */
} joust_oa_image;

typedef struct joust_oa_prep joust_oa_prep_t;

joust_oa_prep_t *joust_oa_prep_new(const joust_oa_prep_config *cfg);
void joust_oa_prep_destroy(joust_oa_prep_t **self_p);
int joust_oa_prep_get(joust_oa_prep_t *p, uint64_t id, const char *uri, joust_oa_image *out,
                      char *err, size_t errlen);
void joust_oa_prep_stats(const joust_oa_prep_t *p, uint64_t *hits, uint64_t *misses,
                         size_t *bytes);
/* Images decoded at a reduced scale (large JPEGs; see imgsrc.h). */
uint64_t joust_oa_prep_scaled_decodes(const joust_oa_prep_t *p);

/* Standard base64 with padding into out (room for 4*ceil(n/3) bytes);
 * returns the length written (no NUL added). */
size_t joust_base64_encode(const unsigned char *in, size_t n, char *out);

#endif
