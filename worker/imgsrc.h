/* The image stage: every judge that reads images gets them here.
 *
 * One call, joust_imgsrc_get(id, uri), does the whole path once per image:
 *   resolve   the reference (common/uri.h: plain path or file:// URI;
 *             relative paths under image_root),
 *   confine   it to the allowed roots (common/confine.h),
 *   fetch     the encoded bytes (local files through common/safe_open.h:
 *             regular files only, bounded by lim.max_bytes; remote
 *             references through the fetch_remote seam),
 *   decode    them (worker/image.h, limits checked on the header; a JPEG
 *             far above what the judge will use at a reduced scale),
 *   prepare   what the judge keeps (its `use.prepare`: statistics for the
 *             quality judge, a base64 JPEG for the openai judge),
 * and keeps the result in an LRU keyed by image id, failures included (a
 * broken image costs one read, not one per match). Hits and misses are
 * counted (joust_imgsrc_stats_get).
 *
 * Remote fetching plugs in at fetch_remote: it gets the parsed reference
 * (scheme http, https or s3) and returns the encoded bytes; everything after
 * (decode, prepare, cache) is shared. Without it a remote reference fails
 * with JOUST_EUNSUPPORTED and a reason. The judges plug in worker/fetch.h,
 * which fetches synchronously inside get, bounded by its timeouts and
 * retries (at most 3 x 30 s plus backoff by default): the stage runs
 * inline in the single-threaded worker loop and curl multi would make every
 * judge asynchronous about its images; fetch.h says more.
 *
 * Ownership: the stage owns the values that prepare returns and frees them
 * with use.release when they are evicted or at destroy. get hands out a
 * borrowed pointer that stays valid until the second next get: the two
 * most recently used entries are never evicted, so both images of a match
 * can be held at once. roots are borrowed and must outlive the stage;
 * image_root is copied.
 * Threads: not thread-safe; one stage per judge (per thread).
 * Errors: get returns 0 or the image's error with a reason naming the file
 * in err: JOUST_EINVAL (malformed reference), JOUST_EUNSUPPORTED (remote
 * without a fetcher, unknown scheme), JOUST_ENOTFOUND,
 * JOUST_EDENIED (outside the allowed roots, permission), JOUST_EIO (not a
 * regular file, unreadable),
 * JOUST_ECORRUPT, JOUST_EFORMAT, JOUST_ETOOBIG, or what prepare returned.
 * The same error comes back for the same id while it stays cached.
 * JOUST_EAGAIN (joust_imgsrc_outage) is the one error that is not cached
 * and not the image's: the remote store was unreachable (refused, timeout,
 * 5xx after the fetcher's retries); the judge reports INFRA_ERROR and the
 * next get tries again. The remote fetcher is worker/fetch.h. */
#ifndef JOUST_IMGSRC_H
#define JOUST_IMGSRC_H
#include <stddef.h>
#include <stdint.h>

#include "confine.h"
#include "err.h"
#include "image.h"
#include "uri.h"

/* What a judge keeps per image. prepare turns the decoded image into
 * *value (owned by the stage from then on) and says how many bytes it holds
 * (*bytes, counted against max_bytes); it returns 0 or a negative JOUST_E*
 * code with the reason in err (cached like any other failure). src_w x
 * src_h is the image's full size, which img is smaller than when it was
 * decoded at a reduced scale. release frees a value (NULL: free()).
 * want (optional) says how much of a w x h image the judge will use (at
 * least *min_w x *min_h, e.g. its pixel budget): a JPEG far larger is
 * decoded at a reduced scale (image.h, joust_image_decode_for), several
 * times faster. Without want, images are decoded at full size. */
typedef struct {
    int (*prepare)(void *ctx, const joust_image *img, int src_w, int src_h, void **value,
                   size_t *bytes, char *err, size_t errlen);
    void (*release)(void *ctx, void *value);
    void (*want)(void *ctx, int w, int h, int *min_w, int *min_h);
    /* (optional) told the encoded size of the image about to be prepared,
     * just before prepare. */
    void (*encoded)(void *ctx, size_t bytes);
    /* (optional) prepares from the encoded bytes instead: the stage
     * resolves, confines and fetches, then hands the bytes (borrowed for
     * the call) and its limits over without decoding them, for a judge
     * that decodes its own way (signatures decode a JPEG straight to luma,
     * worker/signature.h). prepare, want and encoded are then unused; the
     * contract is prepare's. Its decodes are not counted as scaled. */
    int (*prepare_encoded)(void *ctx, const unsigned char *data, size_t len,
                           const joust_image_limits *lim, void **value, size_t *bytes, char *err,
                           size_t errlen);
    void *ctx;
} joust_imgsrc_use;

/* The fetch seam: puts the encoded bytes named by ref (a remote scheme)
 * into a malloc'd *data of *len bytes, at most max_bytes, or returns a
 * negative JOUST_E* code with the reason in err. */
typedef int (*joust_imgsrc_fetch_fn)(void *ctx, const joust_uri *ref, size_t max_bytes,
                                     unsigned char **data, size_t *len, char *err, size_t errlen);

typedef struct {
    const char *image_root;         /* relative plain paths resolve under it; may be NULL */
    const joust_path_roots *roots;  /* allowed roots; NULL or none: any path */
    joust_image_limits lim;         /* all zero: joust_image_limits_defaults */
    size_t max_entries;             /* images kept; 0: 4096; at least 2 */
    size_t max_bytes;               /* value bytes kept; 0: no bound but max_entries */
    joust_imgsrc_use use;
    joust_imgsrc_fetch_fn fetch_remote; /* NULL: remote references are refused */
    void *fetch_ctx;
    const char *log_name;           /* prefix of the warning logged per failed image */
    int full_decode;                /* 1: never a reduced scale (comparisons, benchmarks) */
} joust_imgsrc_config;

typedef struct {
    uint64_t hits, misses;  /* get calls answered from the cache / by loading */
    uint64_t scaled;        /* images decoded at a reduced scale */
    size_t entries, bytes;  /* held now */
} joust_imgsrc_stats;

typedef struct joust_imgsrc joust_imgsrc_t;

/* 1 when get's error is an outage (INFRA_ERROR), 0 when it is the image's. */
static inline int joust_imgsrc_outage(int rc)
{
    return rc == JOUST_EAGAIN;
}

joust_imgsrc_t *joust_imgsrc_new(const joust_imgsrc_config *cfg);
/* Frees every value and the stage; sets *self_p to NULL; accepts NULL. */
void joust_imgsrc_destroy(joust_imgsrc_t **self_p);

/* The prepared value of image id (uri names it on a miss), borrowed as
 * described above. id 0 is never cached. On failure *value is NULL. */
int joust_imgsrc_get(joust_imgsrc_t *s, uint64_t id, const char *uri, const void **value,
                     char *err, size_t errlen);

/* Resolves, confines, fetches and decodes uri (at full size) without
 * caching or preparing; *out is owned by the caller (joust_image_free). */
int joust_imgsrc_load(const joust_imgsrc_t *s, const char *uri, joust_image *out, char *err,
                      size_t errlen);

void joust_imgsrc_stats_get(const joust_imgsrc_t *s, joust_imgsrc_stats *out);

#endif
