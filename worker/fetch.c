/* Remote images; see fetch.h. */
#include "fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "fetch_cache.h"
#include "fetch_s3.h"
#include "log.h"
#include "xalloc.h"

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
    unsigned long long fetched, hits, bytes;
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

int joust_fetch_remote(void *ctx, const joust_uri *ref, size_t max_bytes, unsigned char **data,
                       size_t *len, char *err, size_t errlen)
{
    joust_fetch_t *f = ctx;
    *data = NULL;
    *len = 0;
    if (ref->scheme == JOUST_URI_LOCAL)
        return joust_errf(err, errlen, JOUST_EINVAL, "%s: not a remote reference", ref->path);
    setup(f);
    if (f->cache && joust_fetch_cache_get(f->cache, ref->path, max_bytes, data, len) == 0) {
        f->hits++;
        return 0;
    }
    joust_http_req req;
    char *url;
    int rc = request_for(f, ref->path, ref->scheme == JOUST_URI_S3, &req, &url, err, errlen);
    if (rc == 0) {
        rc = joust_http_get(f->http, &req, max_bytes, data, len, err, errlen);
        if (rc)
            name_ref(ref->path, url, err, errlen);
    }
    free(url);
    if (rc == 0) {
        f->fetched++;
        f->bytes += *len;
        if (f->cache)
            joust_fetch_cache_put(f->cache, ref->path, *data, *len);
    }
    return rc;
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
    if (f->http) {
        joust_http_stats h;
        joust_http_stats_get(f->http, &h);
        out->requests = h.requests;
        out->retries = h.retries;
        out->connects = h.connects;
    }
}
