/* Remote images for the image stage (worker/imgsrc.h's fetch_remote seam):
 * http(s):// through fetch_http.h, s3://bucket/key through fetch_s3.h
 * (signed with SigV4 when credentials are found), both through the shared
 * on-disk cache (fetch_cache.h) when one is configured.
 *
 * Tar members (common/uri.h, WebDataset shards):
 *   - of an uncompressed remote shard: ONE ranged GET of exactly the
 *     member's bytes (signed for s3), cached under the member reference;
 *   - of a compressed shard (local or remote, compressed=1): a member
 *     cannot be reached without decompressing what precedes it, so the
 *     shard is streamed once (libarchive over the file or an HTTP stream)
 *     and every image member met on the way (.jpg .jpeg .png .webp) is put
 *     in the disk cache under its own reference: the other members of the
 *     shard are then cache hits, and the shard is decompressed once per
 *     cache folder (shared by a machine's workers) while the cache has
 *     room for it. Without a cache the stream stops at the member, so
 *     each member costs decompressing the shard up to it.
 * Streams (joust_fetch_stream_*) read a whole remote object once in
 * order, for ingest to list a remote shard's members without storing it.
 *
 *   joust_fetch_t *f = joust_fetch_new(&cfg);
 *   joust_imgsrc_config sc = {..., .fetch_remote = joust_fetch_remote, .fetch_ctx = f};
 *   ...
 *   joust_fetch_destroy(&f);   // after the stage
 *
 * Synchronous by design: the worker loop runs the image stage inline
 * (the quality judge judges inside poll; the openai judge prepares both
 * images before it queues the request), so a fetch blocks the loop for at
 * most tries x (connect + total timeout) plus the backoff between tries
 * (defaults: 3 x 30 s + 0.75 s worst case; a healthy fetch from a nearby
 * store takes milliseconds and a cached one a file read). The coordinator's
 * lease on the match covers that; heartbeats wait meanwhile. curl multi
 * would not block, but every judge would have to become asynchronous about
 * its images; the bounded synchronous fetch keeps them simple.
 *
 * Lazy: nothing (curl handle, credentials, cache folder) is set up until
 * the first remote fetch, so a run of local images never touches them. A
 * credentials problem found then fails each remote image with the reason.
 *
 * Errors (fetch_remote, head): those of joust_http_get (fetch_http.h):
 * JOUST_ENOTFOUND, JOUST_EDENIED, JOUST_ETOOBIG, JOUST_EIO are about the
 * image (final: IMAGE_ERROR); JOUST_EAGAIN is an outage (INFRA_ERROR, the
 * match goes back to the queue); JOUST_EINVAL for a malformed s3 reference
 * or unusable credentials file.
 * Threads: one joust_fetch_t per judge (per thread); the cache folder may
 * be shared by any number of them and of processes. */
#ifndef JOUST_FETCH_H
#define JOUST_FETCH_H
#include <stddef.h>

#include "fetch_http.h"

struct archive;
#include "uri.h"

#define JOUST_FETCH_CACHE_MB_DEFAULT 2048

typedef struct {
    const char *s3_endpoint; /* NULL: AWS_ENDPOINT_URL, else AWS itself */
    /* The on-disk cache folder. NULL: $XDG_CACHE_HOME/joust/fetch, else
     * $HOME/.cache/joust/fetch; "" or "none": no disk cache. */
    const char *cache_dir;
    size_t cache_mb;         /* 0: JOUST_FETCH_CACHE_MB_DEFAULT */
    joust_http_opts http;    /* zeros: the defaults */
} joust_fetch_config;

typedef struct joust_fetch joust_fetch_t;

/* cfg NULL: every default. Strings are copied. */
joust_fetch_t *joust_fetch_new(const joust_fetch_config *cfg);
void joust_fetch_destroy(joust_fetch_t **self_p);

/* A joust_imgsrc_fetch_fn: the bytes ref names (http, https or s3), at
 * most max_bytes (0: no cap), from the disk cache when it has them. */
int joust_fetch_remote(void *ctx, const joust_uri *ref, size_t max_bytes, unsigned char **data,
                       size_t *len, char *err, size_t errlen);

/* A HEAD request for uri (http(s):// or s3://): 0 when the object is there
 * (*len its Content-Length, 0 when unknown), else the codes above. Nothing
 * is downloaded or cached. */
int joust_fetch_head(joust_fetch_t *f, const char *uri, size_t *len, char *err, size_t errlen);

/* A pass over the remote object uri (http(s):// or s3://). */
typedef struct joust_fetch_stream joust_fetch_stream_t;
int joust_fetch_stream_open(joust_fetch_t *f, const char *uri, joust_fetch_stream_t **out,
                            char *err, size_t errlen);
int joust_fetch_stream_read(joust_fetch_stream_t *s, unsigned char *buf, size_t cap, size_t *n,
                            char *err, size_t errlen);
/* Opens the new archive a (formats and filters already chosen) on s;
 * ARCHIVE_OK or libarchive's error. s must outlive a (close it after
 * archive_read_free). joust_fetch_stream_error says why a read failed. */
int joust_fetch_stream_archive(struct archive *a, joust_fetch_stream_t *s);
/* The last read error of s (0 and "" when none). */
int joust_fetch_stream_error(const joust_fetch_stream_t *s, const char **why);
void joust_fetch_stream_close(joust_fetch_stream_t **self_p);

typedef struct {
    unsigned long long fetched, cache_hits, bytes, requests, retries, connects;
    unsigned long long ranged;   /* members read with one ranged GET */
    unsigned long long streamed; /* compressed shards streamed for a member */
} joust_fetch_stats;
void joust_fetch_stats_get(const joust_fetch_t *f, joust_fetch_stats *out);

#endif
