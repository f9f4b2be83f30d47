/* Remote images; see fetch.h. */
#include "fetch.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fetch_cache.h"
#include "fetch_s3.h"
#include "log.h"
#include "safe_open.h"
#include "xalloc.h"

#define STREAM_CHUNK (1 << 16)

struct joust_fetch {
    char *s3_endpoint, *cache_dir;
    size_t cache_bytes;
    joust_http_opts http_opts;
    int ready;               /* set up (once, at the first remote fetch) */
    joust_http_t *http;
    joust_fetch_cache_t *cache;
    int s3_rc;               /* the credentials' problem, if any */
    char s3_err[384];
    joust_s3_config s3;
    unsigned long long fetched, hits, bytes, ranged, streamed;
};

static char *default_cache_dir(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    joust_buf_t b = {0};
    if (xdg && *xdg)
        joust_buf_printf(&b, "%s/joust/fetch", xdg);
    else if (home && *home)
        joust_buf_printf(&b, "%s/.cache/joust/fetch", home);
    return b.data;
}

joust_fetch_t *joust_fetch_new(const joust_fetch_config *cfg)
{
    joust_fetch_t *f = xcalloc(1, sizeof *f);
    joust_http_opts_defaults(&f->http_opts);
    f->cache_bytes = (size_t)JOUST_FETCH_CACHE_MB_DEFAULT << 20;
    if (cfg) {
        f->s3_endpoint = cfg->s3_endpoint ? xstrdup(cfg->s3_endpoint) : NULL;
        if (cfg->cache_dir)
            f->cache_dir = *cfg->cache_dir && strcmp(cfg->cache_dir, "none") != 0
                             ? xstrdup(cfg->cache_dir) : NULL;
        else
            f->cache_dir = default_cache_dir();
        if (cfg->cache_mb)
            f->cache_bytes = cfg->cache_mb << 20;
        f->http_opts = cfg->http; /* joust_http_new takes zeros as defaults */
    } else {
        f->cache_dir = default_cache_dir();
    }
    return f;
}

void joust_fetch_destroy(joust_fetch_t **self_p)
{
    joust_fetch_t *f = *self_p;
    if (!f)
        return;
    joust_http_destroy(&f->http);
    joust_fetch_cache_close(&f->cache);
    joust_s3_config_clear(&f->s3);
    free(f->s3_endpoint);
    free(f->cache_dir);
    free(f);
    *self_p = NULL;
}

static void setup(joust_fetch_t *f)
{
    if (f->ready)
        return;
    f->ready = 1;
    f->http = joust_http_new(&f->http_opts);
    f->s3_rc = joust_s3_config_load(&f->s3, f->s3_endpoint, f->s3_err, sizeof f->s3_err);
    if (f->s3_rc)
        log_error("s3 credentials: %s", f->s3_err);
    if (f->cache_dir) {
        char why[512];
        if (joust_fetch_cache_open(f->cache_dir, f->cache_bytes, &f->cache, why, sizeof why) < 0)
            log_warn("%s; fetching without a disk cache", why);
    }
}

/* The request for uri: its URL (malloc'd) and, for s3, the signature. */
static int request_for(joust_fetch_t *f, const char *uri, int s3, joust_http_req *req,
                       char **url, char *err, size_t errlen)
{
    memset(req, 0, sizeof *req);
    *url = NULL;
    if (!s3) {
        req->url = uri;
        return 0;
    }
    if (f->s3_rc)
        return joust_errf(err, errlen, f->s3_rc, "%s: %s", uri, f->s3_err);
    int rc = joust_s3_url(&f->s3, uri, url, err, errlen);
    if (rc)
        return rc;
    req->url = *url;
    req->sigv4 = f->s3.sigv4;
    req->userpwd = f->s3.userpwd;
    req->session_token = f->s3.session_token;
    return 0;
}

/* Names the reference in the reason when the URL differs (s3). */
static void name_ref(const char *uri, const char *url, char *err, size_t errlen)
{
    if (!url || !err || !errlen)
        return;
    char *copy = xstrdup(err);
    snprintf(err, errlen, "%s: %s", uri, copy);
    free(copy);
}

/* GETs what req names (ranged when it says so) for the reference named uri. */
static int get(joust_fetch_t *f, const char *uri, int s3, const joust_http_req *base,
               size_t max_bytes, unsigned char **data, size_t *len, char *err, size_t errlen)
{
    joust_http_req req;
    char *url;
    int rc = request_for(f, uri, s3, &req, &url, err, errlen);
    if (rc == 0) {
        req.range_off = base ? base->range_off : 0;
        req.range_len = base ? base->range_len : 0;
        rc = joust_http_get(f->http, &req, max_bytes, data, len, err, errlen);
        if (rc)
            name_ref(uri, url, err, errlen);
    }
    free(url);
    return rc;
}

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *ext[] = {".jpg", ".jpeg", ".png", ".webp"};
    for (size_t i = 0; dot && i < sizeof ext / sizeof *ext; i++)
        if (strcasecmp(dot, ext[i]) == 0)
            return 1;
    return 0;
}

/* The member ref names in its compressed shard, streaming the shard; the
 * image members met on the way go to the cache (fetch.h). */
static int member_streamed(joust_fetch_t *f, const joust_uri *ref, size_t max_bytes,
                           unsigned char **data, size_t *len, char *err, size_t errlen)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    joust_fetch_stream_t *st = NULL;
    int fd = -1, rc = 0, r;
    size_t fsize;
    if (ref->shard == JOUST_URI_LOCAL) {
        if ((rc = joust_open_regular(ref->path, 0, 0, &fd, &fsize, err, errlen)) == 0 &&
            archive_read_open_fd(a, fd, STREAM_CHUNK) != ARCHIVE_OK)
            rc = joust_errf(err, errlen, JOUST_ECORRUPT, "%s: %s", ref->path,
                            archive_error_string(a) ? archive_error_string(a) : "not a tar");
    } else if ((rc = joust_fetch_stream_open(f, ref->path, &st, err, errlen)) == 0 &&
               joust_fetch_stream_archive(a, st) != ARCHIVE_OK) {
        const char *why;
        rc = joust_fetch_stream_error(st, &why);
        rc = joust_errf(err, errlen, rc ? rc : JOUST_ECORRUPT, "%s: %s", ref->path,
                        rc ? why : archive_error_string(a) ? archive_error_string(a)
                                                           : "not a tar");
    }
    f->streamed += rc == 0;
    struct archive_entry *e;
    unsigned char *found = NULL;
    joust_uri key = *ref;
    while (rc == 0 && ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)) {
        const char *name = archive_entry_pathname(e);
        if (!name || archive_entry_filetype(e) != AE_IFREG)
            continue;
        unsigned long long off = (unsigned long long)archive_filter_bytes(a, 0);
        unsigned long long size = (unsigned long long)archive_entry_size(e);
        int want = off == ref->offset && size == ref->size;
        if (want && max_bytes && size > max_bytes) {
            rc = joust_errf(err, errlen, JOUST_ETOOBIG, "%s: member %s is %llu bytes, over the "
                            "limit of %zu", ref->path, ref->member, size, max_bytes);
            break;
        }
        if (!want && !(f->cache && is_image_name(name) && size <= f->cache_bytes / 8))
            continue; /* libarchive skips its data */
        unsigned char *buf = xmalloc((size_t)size + 1);
        la_ssize_t got = archive_read_data(a, buf, (size_t)size);
        if (got != (la_ssize_t)size) {
            free(buf);
            const char *why = NULL;
            int src = st ? joust_fetch_stream_error(st, &why) : 0;
            rc = joust_errf(err, errlen, src ? src : JOUST_ECORRUPT, "%s: member %s: %s",
                            ref->path, name, src ? why : got < 0 && archive_error_string(a)
                                                       ? archive_error_string(a)
                                                       : "shorter than its header says");
            break;
        }
        buf[size] = '\0';
        if (f->cache && is_image_name(name)) {
            key.offset = off;
            key.size = size;
            key.member = (char *)name;
            char *k = joust_uri_format_member(&key);
            joust_fetch_cache_put(f->cache, k, buf, (size_t)size);
            free(k);
        }
        if (!want) {
            free(buf);
            continue;
        }
        found = buf;
        if (!f->cache)
            break;
    }
    if (rc == 0 && !found) {
        const char *why = NULL;
        int src = st ? joust_fetch_stream_error(st, &why) : 0;
        rc = src ? joust_errf(err, errlen, src, "%s", why)
                 : joust_errf(err, errlen, JOUST_ECORRUPT, "%s: no member %s at byte %llu of "
                              "the decompressed shard (replaced or truncated since ingest?)",
                              ref->path, ref->member, ref->offset);
    }
    archive_read_free(a);
    joust_fetch_stream_close(&st);
    if (fd >= 0)
        close(fd);
    if (rc) {
        free(found);
        return rc;
    }
    *data = found;
    *len = (size_t)ref->size;
    return 0;
}

int joust_fetch_remote(void *ctx, const joust_uri *ref, size_t max_bytes, unsigned char **data,
                       size_t *len, char *err, size_t errlen)
{
    joust_fetch_t *f = ctx;
    *data = NULL;
    *len = 0;
    int tar = ref->scheme == JOUST_URI_TAR;
    if (!joust_uri_is_remote(ref) && !(tar && ref->compressed))
        return joust_errf(err, errlen, JOUST_EINVAL, "%s: not a remote reference", ref->path);
    if (tar && max_bytes && ref->size > max_bytes)
        return joust_errf(err, errlen, JOUST_ETOOBIG, "%s: member %s is %llu bytes, over the "
                          "limit of %zu", ref->path, ref->member, ref->size, max_bytes);
    setup(f);
    char *key = tar ? joust_uri_format_member(ref) : xstrdup(ref->path);
    int rc;
    if (f->cache && joust_fetch_cache_get(f->cache, key, max_bytes, data, len) == 0) {
        f->hits++;
        free(key);
        return 0;
    }
    if (tar && ref->compressed) {
        rc = member_streamed(f, ref, max_bytes, data, len, err, errlen);
    } else {
        joust_http_req range = {.range_off = ref->offset, .range_len = tar ? ref->size : 0};
        rc = get(f, ref->path, (tar ? ref->shard : ref->scheme) == JOUST_URI_S3, &range,
                 max_bytes, data, len, err, errlen);
        f->ranged += rc == 0 && tar;
    }
    if (rc == 0) {
        f->fetched++;
        f->bytes += *len;
        if (f->cache && !(tar && ref->compressed)) /* streamed members are put already */
            joust_fetch_cache_put(f->cache, key, *data, *len);
    }
    free(key);
    return rc;
}

/* ---- streams ---- */

struct joust_fetch_stream {
    joust_http_stream_t *http;
    char *uri, *url;
    unsigned char *buf;
    int rc;
    char why[512];
};

int joust_fetch_stream_open(joust_fetch_t *f, const char *uri, joust_fetch_stream_t **out,
                            char *err, size_t errlen)
{
    *out = NULL;
    joust_uri ref;
    int rc = joust_uri_parse(uri, NULL, &ref, err, errlen);
    if (rc)
        return rc;
    int remote = joust_uri_is_remote(&ref) && ref.scheme != JOUST_URI_TAR;
    int s3 = ref.scheme == JOUST_URI_S3;
    joust_uri_clear(&ref);
    if (!remote)
        return joust_errf(err, errlen, JOUST_EINVAL, "%s: not an http(s):// or s3:// URL", uri);
    setup(f);
    joust_http_req req;
    char *url;
    if ((rc = request_for(f, uri, s3, &req, &url, err, errlen)) != 0)
        return rc;
    joust_fetch_stream_t *s = xcalloc(1, sizeof *s);
    s->http = joust_http_stream_open(f->http, &req);
    s->uri = xstrdup(uri);
    s->url = url;
    s->buf = xmalloc(STREAM_CHUNK);
    *out = s;
    return 0;
}

int joust_fetch_stream_read(joust_fetch_stream_t *s, unsigned char *buf, size_t cap, size_t *n,
                            char *err, size_t errlen)
{
    int rc = joust_http_stream_read(s->http, buf, cap, n, err, errlen);
    if (rc)
        name_ref(s->uri, s->url, err, errlen);
    return rc;
}

static la_ssize_t archive_read_cb(struct archive *a, void *ud, const void **out)
{
    joust_fetch_stream_t *s = ud;
    size_t n;
    *out = s->buf;
    s->rc = joust_fetch_stream_read(s, s->buf, STREAM_CHUNK, &n, s->why, sizeof s->why);
    if (s->rc) {
        archive_set_error(a, EIO, "%s", s->why);
        return -1;
    }
    return (la_ssize_t)n;
}

int joust_fetch_stream_archive(struct archive *a, joust_fetch_stream_t *s)
{
    return archive_read_open(a, s, NULL, archive_read_cb, NULL);
}

int joust_fetch_stream_error(const joust_fetch_stream_t *s, const char **why)
{
    *why = s->rc ? s->why : "";
    return s->rc;
}

void joust_fetch_stream_close(joust_fetch_stream_t **self_p)
{
    joust_fetch_stream_t *s = *self_p;
    if (!s)
        return;
    joust_http_stream_close(&s->http);
    free(s->uri);
    free(s->url);
    free(s->buf);
    free(s);
    *self_p = NULL;
}

int joust_fetch_head(joust_fetch_t *f, const char *uri, size_t *len, char *err, size_t errlen)
{
    *len = 0;
    joust_uri ref;
    int rc = joust_uri_parse(uri, NULL, &ref, err, errlen);
    if (rc)
        return rc;
    if (ref.scheme == JOUST_URI_LOCAL) {
        joust_uri_clear(&ref);
        return joust_errf(err, errlen, JOUST_EINVAL, "%s: not a remote reference", uri);
    }
    setup(f);
    joust_http_req req;
    char *url;
    rc = request_for(f, uri, ref.scheme == JOUST_URI_S3, &req, &url, err, errlen);
    if (rc == 0) {
        unsigned char *none;
        req.head = 1;
        rc = joust_http_get(f->http, &req, 0, &none, len, err, errlen);
        if (rc)
            name_ref(uri, url, err, errlen);
    }
    free(url);
    joust_uri_clear(&ref);
    return rc;
}

void joust_fetch_stats_get(const joust_fetch_t *f, joust_fetch_stats *out)
{
    memset(out, 0, sizeof *out);
    out->fetched = f->fetched;
    out->cache_hits = f->hits;
    out->bytes = f->bytes;
    out->ranged = f->ranged;
    out->streamed = f->streamed;
    if (f->http) {
        joust_http_stats h;
        joust_http_stats_get(f->http, &h);
        out->requests = h.requests;
        out->retries = h.retries;
        out->connects = h.connects;
    }
}
