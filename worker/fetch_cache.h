/* The on-disk cache of remote images, shared by every judge and every
 * worker process that names the same folder.
 *
 * What it promises:
 *   - one file per URI, named by its 128-bit XXH3 hash in hex (32 chars,
 *     no other name in the folder is ever touched but our own temp files);
 *   - a file appears complete or not at all: written to a temp file in
 *     the same folder, then renamed over the name (readers in other
 *     processes never see half a file);
 *   - bounded: after a put pushes this process's estimate of the folder's
 *     size over max_bytes, the folder is scanned and the least recently used
 *     files (by mtime; a hit touches its file) are removed until it holds at
 *     most 90 % of max_bytes. Several processes sharing a folder each
 *     estimate and evict on their own, so the folder can briefly exceed the
 *     cap by what the others wrote since their last scan;
 *   - a cache failure (full disk, permission) never fails a fetch: a put
 *     that cannot write logs once and is skipped.
 * Only complete, successful fetches are put; the caller decides.
 *
 * Ownership: get's *data is malloc'd and the caller's. Threads: one
 * joust_fetch_cache_t per thread; processes share the folder safely. */
#ifndef JOUST_FETCH_CACHE_H
#define JOUST_FETCH_CACHE_H
#include <stddef.h>

typedef struct joust_fetch_cache joust_fetch_cache_t;

/* Creates dir (and its parents) when missing. @return 0, or JOUST_EIO with
 * the reason when dir cannot be made or is not a writable folder. */
int joust_fetch_cache_open(const char *dir, size_t max_bytes, joust_fetch_cache_t **out,
                           char *err, size_t errlen);
void joust_fetch_cache_close(joust_fetch_cache_t **self_p);

/* 0 and the bytes on a hit (at most max_bytes, else a miss);
 * JOUST_ENOTFOUND on a miss. */
int joust_fetch_cache_get(joust_fetch_cache_t *c, const char *uri, size_t max_bytes,
                          unsigned char **data, size_t *len);
void joust_fetch_cache_put(joust_fetch_cache_t *c, const char *uri, const unsigned char *data,
                           size_t len);

typedef struct {
    unsigned long long hits, misses, puts, evicted;
} joust_fetch_cache_stats;
void joust_fetch_cache_stats_get(const joust_fetch_cache_t *c, joust_fetch_cache_stats *out);

#endif
