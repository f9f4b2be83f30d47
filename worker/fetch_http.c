/* HTTP(S) fetches; see fetch_http.h. */
#include "fetch_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "rng.h"
#include "xalloc.h"

#define BACKOFF_CAP_MS 4000
#define ERROR_BODY_MAX 4096 /* bytes of an error reply kept for its reason */

struct joust_http {
    joust_http_opts o;
    CURL *easy;
    CURLSH *share;
    joust_rng_t rng;
    joust_http_stats stats;
};

void joust_http_opts_defaults(joust_http_opts *o)
{
    o->connect_timeout_ms = 5000;
    o->timeout_ms = 30000;
    o->tries = 3;
    o->backoff_ms = 250;
    o->max_redirects = 5;
}

joust_http_t *joust_http_new(const joust_http_opts *o)
{
    static int inited;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = 1;
    }
    joust_http_t *h = xcalloc(1, sizeof *h);
    joust_http_opts_defaults(&h->o);
    if (o) {
        if (o->connect_timeout_ms > 0) h->o.connect_timeout_ms = o->connect_timeout_ms;
        if (o->timeout_ms > 0) h->o.timeout_ms = o->timeout_ms;
        if (o->tries > 0) h->o.tries = o->tries;
        if (o->backoff_ms > 0) h->o.backoff_ms = o->backoff_ms;
        if (o->max_redirects > 0) h->o.max_redirects = o->max_redirects;
    }
    h->easy = curl_easy_init();
    h->share = curl_share_init();
    if (!h->easy || !h->share) {
        log_error("libcurl could not create a handle");
        abort(); /* out of memory inside libcurl */
    }
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    joust_rng_seed(&h->rng, (uint64_t)joust_now_us() ^ (uint64_t)getpid());
    return h;
}

void joust_http_destroy(joust_http_t **self_p)
{
    joust_http_t *h = *self_p;
    if (!h)
        return;
    curl_easy_cleanup(h->easy);
    curl_share_cleanup(h->share);
    free(h);
    *self_p = NULL;
}

void joust_http_stats_get(const joust_http_t *h, joust_http_stats *out)
{
    *out = h->stats;
}

typedef struct {
    joust_buf_t body;
    size_t cap;      /* 0: none */
    int over;        /* the body passed cap */
    int ranged;      /* a Range was asked for: only a 206 is the body */
    int no_range;    /* the server answered 200 to it */
    CURL *easy;
} sink_t;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    sink_t *s = ud;
    size_t len = sz * n;
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    if (s->ranged && code == 200) { /* the whole object is coming: stop now */
        s->no_range = 1;
        return 0;
    }
    if (code >= 300 || code < 200) { /* an error reply: keep its start for the reason */
        size_t room = s->body.len < ERROR_BODY_MAX ? ERROR_BODY_MAX - s->body.len : 0;
        joust_buf_append(&s->body, p, len < room ? len : room);
        return len;
    }
    if (s->cap && s->body.len + len > s->cap) {
        s->over = 1;
        return 0; /* CURLE_WRITE_ERROR: stop now */
    }
    joust_buf_append(&s->body, p, len);
    return len;
}

/* "<Code>X</Code>" and "<Message>Y</Message>" of an S3 error body, or its
 * first line, into out. */
static void error_words(const joust_buf_t *b, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!b->len)
        return;
    const char *text = b->data;
    const char *tags[2] = {"Code", "Message"};
    size_t k = 0;
    for (int t = 0; t < 2; t++) {
        char open[16], close[16];
        snprintf(open, sizeof open, "<%s>", tags[t]);
        snprintf(close, sizeof close, "</%s>", tags[t]);
        const char *a = strstr(text, open), *z = a ? strstr(a, close) : NULL;
        if (a && z && k < outlen) {
            a += strlen(open);
            k += (size_t)snprintf(out + k, outlen - k, "%s%.*s", k ? ": " : "", (int)(z - a), a);
        }
    }
    if (!k) { /* not S3: the first line, printable bytes only */
        size_t i = 0;
        for (; text[i] && text[i] != '\n' && i + 1 < outlen && i < 200; i++)
            out[i] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
        out[i] = '\0';
    }
}

static void set_options(joust_http_t *h, CURL *e, const joust_http_req *req, size_t max_bytes,
                        sink_t *sink, struct curl_slist **hdrs, char *curl_err)
{
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_SHARE, h->share);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, h->o.max_redirects > 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)h->o.max_redirects);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "joust");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
    if (max_bytes)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
    if (req->head)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    char range[64];
    if (req->range_len) {
        snprintf(range, sizeof range, "%llu-%llu", req->range_off,
                 req->range_off + req->range_len - 1);
        curl_easy_setopt(e, CURLOPT_RANGE, range); /* copied by libcurl */
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sink);
    if (req->sigv4) {
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, req->sigv4);
        curl_easy_setopt(e, CURLOPT_USERPWD, req->userpwd);
        /* S3 wants the payload hash; a GET has none to sign. */
        *hdrs = curl_slist_append(*hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        if (req->session_token && *req->session_token) {
            size_t n = strlen(req->session_token) + 32;
            char *line = xmalloc(n);
            snprintf(line, n, "X-Amz-Security-Token: %s", req->session_token);
            *hdrs = curl_slist_append(*hdrs, line);
            free(line);
        }
    }
    if (*hdrs)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
}

/* Is this curl failure an outage (worth another try)? */
static int transient(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT: case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING: case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* The error for a non-2xx reply (body: its start); *again for an outage. */
static int status_error(long code, const joust_buf_t *body, const char *url, int *again,
                        char *err, size_t errlen)
{
    char words[320];
    error_words(body, words, sizeof words);
    *again = code >= 500 || code == 429;
    int rc = *again ? JOUST_EAGAIN
           : code == 404 || code == 410 ? JOUST_ENOTFOUND
           : code == 401 || code == 403 ? JOUST_EDENIED : JOUST_EIO;
    return joust_errf(err, errlen, rc, "%s: HTTP %ld%s%s", url, code, words[0] ? ": " : "",
                      words);
}

/* The error for a failed transfer (c != CURLE_OK); *again for an outage. */
static int transfer_error(const joust_http_t *h, CURLcode c, int over, const char *url,
                          size_t max_bytes, const char *curl_err, int *again, char *err,
                          size_t errlen)
{
    *again = 0;
    if (c == CURLE_FILESIZE_EXCEEDED || (c == CURLE_WRITE_ERROR && over))
        return joust_errf(err, errlen, JOUST_ETOOBIG, "%s: larger than the %zu-byte limit", url,
                          max_bytes);
    if (c == CURLE_UNSUPPORTED_PROTOCOL)
        return joust_errf(err, errlen, JOUST_EDENIED,
                          "%s: refused a redirect to a scheme other than http(s) (%s)", url,
                          curl_err[0] ? curl_err : curl_easy_strerror(c));
    if (c == CURLE_TOO_MANY_REDIRECTS)
        return joust_errf(err, errlen, JOUST_EIO, "%s: more than %d redirects", url,
                          h->o.max_redirects);
    *again = transient(c);
    return joust_errf(err, errlen, *again ? JOUST_EAGAIN : JOUST_EIO, "%s: %s", url,
                      curl_err[0] ? curl_err : curl_easy_strerror(c));
}

/* One try. *again says whether an error is an outage. */
static int try_once(joust_http_t *h, const joust_http_req *req, size_t max_bytes,
                    unsigned char **data, size_t *len, int *again, char *err, size_t errlen)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    sink_t sink = {.cap = max_bytes, .easy = h->easy, .ranged = req->range_len > 0};
    struct curl_slist *hdrs = NULL;
    set_options(h, h->easy, req, max_bytes, &sink, &hdrs, curl_err);
    CURLcode c = curl_easy_perform(h->easy);
    long code = 0, conns = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &conns);
    h->stats.requests++;
    h->stats.connects += (unsigned long long)conns;
    curl_slist_free_all(hdrs);
    *again = 0;
    int rc = 0;
    if (sink.no_range)
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: the server ignored the Range request "
                        "(HTTP 200, not 206): a member cannot be read without the whole object",
                        req->url);
    else if (c != CURLE_OK)
        rc = transfer_error(h, c, sink.over, req->url, max_bytes, curl_err, again, err, errlen);
    else if (code < 200 || code >= 300)
        rc = status_error(code, &sink.body, req->url, again, err, errlen);
    else if (req->range_len && (code != 206 || sink.body.len != req->range_len))
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: asked for %llu bytes at %llu, got %zu "
                        "(HTTP %ld); the object is shorter than the reference says (replaced "
                        "since ingest?)", req->url, req->range_len, req->range_off,
                        sink.body.len, code);
    if (rc == 0) {
        if (req->head) {
            curl_off_t cl = -1;
            curl_easy_getinfo(h->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            *data = NULL;
            *len = cl > 0 ? (size_t)cl : 0;
            joust_buf_free(&sink.body);
        } else {
            *len = sink.body.len; /* the buffer keeps a NUL after them */
            *data = sink.body.data ? (unsigned char *)sink.body.data : xcalloc(1, 1);
        }
        return 0;
    }
    joust_buf_free(&sink.body);
    return rc;
}

int joust_http_get(joust_http_t *h, const joust_http_req *req, size_t max_bytes,
                   unsigned char **data, size_t *len, char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    int wait = h->o.backoff_ms, rc = 0;
    for (int t = 1; t <= h->o.tries; t++) {
        int again = 0;
        rc = try_once(h, req, max_bytes, data, len, &again, err, errlen);
        if (rc == 0 || !again)
            return rc;
        if (t == h->o.tries)
            break;
        h->stats.retries++;
        int jitter = wait > 1 ? (int)joust_rng_below(&h->rng, (uint64_t)wait / 2 + 1) : 0;
        sleep_ms(wait + jitter);
        wait = wait * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : wait * 2;
    }
    /* The reason already names the URL; say that it outlasted the retries. */
    size_t n = strlen(err);
    if (n + 1 < errlen)
        snprintf(err + n, errlen - n, " (after %d tries)", h->o.tries);
    return JOUST_EAGAIN;
}

/* ---- streams ---- */

struct joust_http_stream {
    joust_http_t *h;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdrs;
    sink_t sink;       /* the bytes delivered and not read yet (from pos) */
    size_t pos;
    int done;          /* the transfer ended (result says how) */
    CURLcode result;
    char *url;
    char curl_err[CURL_ERROR_SIZE];
};

joust_http_stream_t *joust_http_stream_open(joust_http_t *h, const joust_http_req *req)
{
    joust_http_stream_t *s = xcalloc(1, sizeof *s);
    s->h = h;
    s->url = xstrdup(req->url);
    s->easy = curl_easy_init();
    s->multi = curl_multi_init();
    if (!s->easy || !s->multi)
        abort(); /* out of memory inside libcurl */
    s->sink.easy = s->easy;
    joust_http_req r = *req;
    r.head = 0;
    r.range_len = 0;
    set_options(h, s->easy, &r, 0, &s->sink, &s->hdrs, s->curl_err);
    /* A shard can take long: no total timeout, but a stall of timeout_ms fails it. */
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(s->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    long stall = h->o.timeout_ms / 1000;
    curl_easy_setopt(s->easy, CURLOPT_LOW_SPEED_TIME, stall > 0 ? stall : 1L);
    curl_multi_add_handle(s->multi, s->easy);
    h->stats.requests++;
    return s;
}

/* One turn of the transfer: what the sockets hold goes to the sink. */
static void step(joust_http_stream_t *s)
{
    int running = 0;
    size_t before = s->sink.body.len;
    curl_multi_perform(s->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s->multi, &left)) != NULL)
        if (m->msg == CURLMSG_DONE) {
            s->done = 1;
            s->result = m->data.result;
        }
    if (!running)
        s->done = 1;
    if (!s->done && s->sink.body.len == before)
        curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
}

/* Drives the transfer until bytes are pending or it ended. */
static void pump(joust_http_stream_t *s)
{
    while (!s->done && s->sink.body.len == s->pos) {
        s->sink.body.len = s->pos = 0; /* everything read: reuse the buffer */
        step(s);
    }
}

int joust_http_stream_read(joust_http_stream_t *s, unsigned char *buf, size_t cap, size_t *n,
                           char *err, size_t errlen)
{
    *n = 0;
    pump(s);
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    int again = 0;
    if (code && (code < 200 || code >= 300)) {
        while (!s->done) /* the rest of the error body, for the reason */
            step(s);
        return status_error(code, &s->sink.body, s->url, &again, err, errlen);
    }
    if (s->pos < s->sink.body.len) {
        size_t k = s->sink.body.len - s->pos;
        k = k < cap ? k : cap;
        memcpy(buf, s->sink.body.data + s->pos, k);
        s->pos += k;
        *n = k;
        return 0;
    }
    if (s->result != CURLE_OK) {
        long conns = 0;
        curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &conns);
        s->h->stats.connects += (unsigned long long)conns;
        return transfer_error(s->h, s->result, 0, s->url, 0, s->curl_err, &again, err, errlen);
    }
    return 0; /* the end */
}

void joust_http_stream_close(joust_http_stream_t **self_p)
{
    joust_http_stream_t *s = *self_p;
    if (!s)
        return;
    curl_multi_remove_handle(s->multi, s->easy);
    curl_easy_cleanup(s->easy);
    curl_multi_cleanup(s->multi);
    curl_slist_free_all(s->hdrs);
    joust_buf_free(&s->sink.body);
    free(s->url);
    free(s);
    *self_p = NULL;
}
