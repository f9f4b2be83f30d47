/* The openai judge's HTTP client over libcurl's multi interface.
 * See openai_http.h for the contract. Each in-flight slot owns one easy
 * handle that is reused for every request it carries (its options are set
 * once); connections live in the multi handle's pool and are kept alive. */
#include "openai_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "xalloc.h"

#define RETRY_AFTER_CAP_MS 300000

typedef struct {
    CURL *easy;
    int busy;
    int endpoint;
    void *user;
    char *body;            /* request body; POSTFIELDS points here (not copied) */
    char *resp;            /* response buffer, reused */
    size_t resp_len, resp_cap;
    int overflow;          /* response larger than max_body */
    int retry_after_ms;
    char errbuf[CURL_ERROR_SIZE];
    struct joust_oa_http *h;
} slot_t;

struct joust_oa_http {
    CURLM *multi;
    slot_t *slots;
    int nslots, nbusy;
    int *free_list, nfree;
    char **urls, **bases;
    int nurls;
    int wake_fd;
    int woken;             /* the last wait ended on the wake fd */
    struct curl_slist *headers;
    size_t max_body;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    slot_t *s = arg;
    size_t len = size * n;
    if (s->resp_len + len > s->h->max_body) {
        s->overflow = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (s->resp_len + len + 1 > s->resp_cap)
        xgrow((void **)&s->resp, &s->resp_cap, s->resp_len + len + 1, 1);
    memcpy(s->resp + s->resp_len, data, len);
    s->resp_len += len;
    s->resp[s->resp_len] = '\0';
    return len;
}

/* Retry-After is delta-seconds or an HTTP date (RFC 9110 10.2.3). */
static int parse_retry_after(const char *v, size_t len)
{
    char tmp[128];
    while (len && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
        len--;
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    char *end;
    long secs = strtol(tmp, &end, 10);
    long long ms;
    if (end != tmp && *end == '\0') {
        ms = secs < 0 ? 0 : (long long)secs * 1000;
    } else {
        time_t t = curl_getdate(tmp, NULL);
        if (t < 0)
            return -1;
        ms = ((long long)t - (long long)time(NULL)) * 1000;
        if (ms < 0)
            ms = 0;
    }
    return ms > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : (int)ms;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    slot_t *s = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0)
        s->retry_after_ms = -1; /* a new response (e.g. after 100 Continue) */
    else if (len > 12 && strncasecmp(line, "retry-after:", 12) == 0)
        s->retry_after_ms = parse_retry_after(line + 12, len - 12);
    return len;
}

static int setup_slot(joust_oa_http_t *h, slot_t *s, const joust_oa_http_config *cfg)
{
    s->h = h;
    s->easy = curl_easy_init();
    if (!s->easy)
        return JOUST_EIO;
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* A reason reply with logprobs is ~0.5 MB: fewer, larger reads. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    /* Servers compress nothing we send; accept compressed answers. */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    return 0;
}

int joust_oa_http_new(const joust_oa_http_config *cfg, joust_oa_http_t **out)
{
    if (!cfg || !out || cfg->n_urls < 1 || cfg->n_urls > JOUST_OA_MAX_ENDPOINTS ||
        cfg->max_inflight < 1 || cfg->timeout_ms < 1)
        return JOUST_EINVAL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return JOUST_EIO;
    joust_oa_http_t *h = xcalloc(1, sizeof *h);
    h->max_body = cfg->max_body ? cfg->max_body : 8u << 20;
    h->nurls = cfg->n_urls;
    h->urls = xcalloc((size_t)h->nurls, sizeof *h->urls);
    h->bases = xcalloc((size_t)h->nurls, sizeof *h->bases);
    h->wake_fd = -1;
    for (int i = 0; i < h->nurls; i++) {
        const char *u = cfg->urls[i];
        size_t n = strlen(u);
        while (n && u[n - 1] == '/')
            n--;
        const char *suffix = "/chat/completions";
        size_t sl = strlen(suffix);
        int has = n >= sl && memcmp(u + n - sl, suffix, sl) == 0;
        h->urls[i] = xmalloc(n + sl + 1);
        memcpy(h->urls[i], u, n);
        memcpy(h->urls[i] + n, has ? "" : suffix, has ? 1 : sl + 1);
        h->bases[i] = xstrndup(u, has ? n - sl : n);
    }
    struct curl_slist *hd = NULL;
    hd = curl_slist_append(hd, "Content-Type: application/json");
    /* No "Expect: 100-continue" for large bodies: it costs up to 1 s each. */
    hd = curl_slist_append(hd, "Expect:");
    if (cfg->api_key && cfg->api_key[0]) {
        size_t n = strlen(cfg->api_key) + 32;
        char *line = xmalloc(n);
        snprintf(line, n, "Authorization: Bearer %s", cfg->api_key);
        hd = curl_slist_append(hd, line);
        memset(line, 0, n);
        free(line);
    }
    h->headers = hd;
    h->multi = curl_multi_init();
    if (!h->multi || !hd) {
        joust_oa_http_destroy(&h);
        return JOUST_EIO;
    }
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->max_inflight);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)cfg->max_inflight + 8);
    h->nslots = cfg->max_inflight;
    h->slots = xcalloc((size_t)h->nslots, sizeof *h->slots);
    h->free_list = xmalloc((size_t)h->nslots * sizeof *h->free_list);
    for (int i = h->nslots - 1; i >= 0; i--) {
        if (setup_slot(h, &h->slots[i], cfg) < 0) {
            joust_oa_http_destroy(&h);
            return JOUST_EIO;
        }
        h->free_list[h->nfree++] = i;
    }
    *out = h;
    return 0;
}

void joust_oa_http_destroy(joust_oa_http_t **self_p)
{
    joust_oa_http_t *h = *self_p;
    if (!h)
        return;
    for (int i = 0; i < h->nslots; i++) {
        slot_t *s = &h->slots[i];
        if (s->busy)
            curl_multi_remove_handle(h->multi, s->easy);
        if (s->easy)
            curl_easy_cleanup(s->easy);
        free(s->body);
        free(s->resp);
    }
    if (h->multi)
        curl_multi_cleanup(h->multi);
    curl_slist_free_all(h->headers);
    for (int i = 0; i < h->nurls; i++) {
        free(h->urls[i]);
        free(h->bases[i]);
    }
    free(h->urls);
    free(h->bases);
    free(h->slots);
    free(h->free_list);
    free(h);
    *self_p = NULL;
}

/* Takes a free slot for endpoint e: the slot, or NULL (body freed). */
static slot_t *take_slot(joust_oa_http_t *h, int e, char *body, void *user)
{
    if (e < 0 || e >= h->nurls || h->nfree == 0) {
        free(body);
        return NULL;
    }
    slot_t *s = &h->slots[h->free_list[h->nfree - 1]];
    s->body = body;
    s->endpoint = e;
    s->user = user;
    s->resp_len = 0;
    if (s->resp)
        s->resp[0] = '\0';
    s->overflow = 0;
    s->retry_after_ms = -1;
    s->errbuf[0] = '\0';
    return s;
}

static int add_slot(joust_oa_http_t *h, slot_t *s)
{
    if (curl_multi_add_handle(h->multi, s->easy) != CURLM_OK) {
        free(s->body);
        s->body = NULL;
        return JOUST_EIO;
    }
    s->busy = 1;
    h->nfree--;
    h->nbusy++;
    return 0;
}

int joust_oa_http_start(joust_oa_http_t *h, int e, char *body, size_t len, void *user)
{
    int bad = e < 0 || e >= h->nurls;
    slot_t *s = take_slot(h, e, body, user);
    if (!s)
        return bad ? JOUST_EINVAL : JOUST_EAGAIN;
    curl_easy_setopt(s->easy, CURLOPT_URL, h->urls[e]);
    curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    return add_slot(h, s);
}

int joust_oa_http_get(joust_oa_http_t *h, int e, const char *path, void *user)
{
    int bad = e < 0 || e >= h->nurls;
    slot_t *s = take_slot(h, e, NULL, user);
    if (!s)
        return bad ? JOUST_EINVAL : JOUST_EAGAIN;
    size_t n = strlen(h->bases[e]) + strlen(path) + 1;
    s->body = xmalloc(n); /* the URL; curl copies it, freed with the transfer */
    snprintf(s->body, n, "%s%s", h->bases[e], path);
    curl_easy_setopt(s->easy, CURLOPT_URL, s->body);
    curl_easy_setopt(s->easy, CURLOPT_HTTPGET, 1L);
    return add_slot(h, s);
}

static int drain(joust_oa_http_t *h, joust_oa_done_fn fn, void *arg)
{
    int n = 0, left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode cc = msg->data.result;
        slot_t *s = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
        joust_oa_done d = {.user = s->user, .endpoint = s->endpoint, .curl_code = (int)cc,
                           .retry_after_ms = s->retry_after_ms};
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &d.status);
        curl_off_t t = 0;
        curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &t);
        d.elapsed_us = (int64_t)t;
        d.timed_out = cc == CURLE_OPERATION_TIMEDOUT;
        if (cc != CURLE_OK)
            d.error = s->overflow ? "response larger than the limit"
                      : s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc);
        d.body = s->resp ? s->resp : "";
        d.body_len = s->resp_len;
        curl_multi_remove_handle(h->multi, e);
        free(s->body);
        s->body = NULL;
        s->busy = 0;
        h->nbusy--;
        h->free_list[h->nfree++] = (int)(s - h->slots);
        fn(arg, &d);
        n++;
    }
    return n;
}

int joust_oa_http_poll(joust_oa_http_t *h, int timeout_ms, joust_oa_done_fn fn, void *arg)
{
    int running, n = 0;
    h->woken = 0;
    /* perform, then drain info_read, and only then wait: waiting first
     * costs a whole timeout per request. */
    if (h->nbusy > 0) {
        curl_multi_perform(h->multi, &running);
        n = drain(h, fn, arg);
    }
    if (n == 0 && timeout_ms > 0) {
        /* curl_multi_poll also waits with nothing in flight, on the wake fd. */
        struct curl_waitfd wake = {.fd = h->wake_fd, .events = CURL_WAIT_POLLIN};
        curl_multi_poll(h->multi, h->wake_fd >= 0 ? &wake : NULL, h->wake_fd >= 0 ? 1 : 0,
                        timeout_ms, NULL);
        h->woken = wake.revents != 0;
        if (h->nbusy > 0) {
            curl_multi_perform(h->multi, &running);
            n = drain(h, fn, arg);
        }
    }
    return n;
}

void joust_oa_http_set_wake_fd(joust_oa_http_t *h, int fd) { h->wake_fd = fd; }

int joust_oa_http_woken(const joust_oa_http_t *h) { return h->woken; }

const char *joust_oa_http_base(const joust_oa_http_t *h, int e)
{
    return e >= 0 && e < h->nurls ? h->bases[e] : "";
}

size_t joust_oa_http_inflight(const joust_oa_http_t *h) { return (size_t)h->nbusy; }

const char *joust_oa_http_url(const joust_oa_http_t *h, int e)
{
    return e >= 0 && e < h->nurls ? h->urls[e] : "";
}
