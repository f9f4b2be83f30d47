/* The openai judge's HTTP client: one libcurl multi handle that keeps up to
 * max_inflight POSTs to /chat/completions (and GETs of health probes) in
 * flight over pooled keep-alive connections, spread over several endpoints
 * chosen by the caller.
 *
 * Ownership: start takes the request body (freed when the transfer ends).
 * A finished transfer is handed to the callback as a borrowed joust_oa_done,
 * valid only during the callback (its body buffer is reused).
 * Threads: not thread-safe; one pool per thread. curl_global_init must have
 * run (joust_oa_http_new does it once, before any thread is started by us).
 * Errors: functions return 0 or a negative JOUST_E* code; a failed transfer
 * is not a call error, it is reported through the callback. */
#ifndef JOUST_OPENAI_HTTP_H
#define JOUST_OPENAI_HTTP_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *const *urls;  /* base URLs, e.g. http://host:8000/v1 */
    int n_urls;               /* 1..JOUST_OA_MAX_ENDPOINTS */
    const char *api_key;      /* NULL or "": no Authorization header */
    int timeout_ms;           /* whole request, connect included */
    int connect_timeout_ms;
    int max_inflight;         /* transfers at once, over all endpoints */
    size_t max_body;          /* larger responses fail (curl write error) */
} joust_oa_http_config;

#define JOUST_OA_MAX_ENDPOINTS 64

typedef struct {
    void *user;               /* as given to start */
    int endpoint;
    long status;              /* HTTP status; 0 when no response arrived */
    int curl_code;            /* 0, or the CURLcode that ended the transfer */
    int timed_out;            /* curl_code is CURLE_OPERATION_TIMEDOUT */
    const char *error;        /* curl's message when curl_code != 0 */
    const char *body;         /* NUL-terminated response body (may be "") */
    size_t body_len;
    int retry_after_ms;       /* Retry-After (seconds or HTTP date); -1 absent */
    int64_t elapsed_us;
} joust_oa_done;

typedef void (*joust_oa_done_fn)(void *arg, const joust_oa_done *d);

typedef struct joust_oa_http joust_oa_http_t;

/* JOUST_EINVAL for a bad config, JOUST_EIO when libcurl cannot start. */
int joust_oa_http_new(const joust_oa_http_config *cfg, joust_oa_http_t **out);
void joust_oa_http_destroy(joust_oa_http_t **self_p);

/* Starts a POST of body (len bytes, JSON) to endpoint e, taking ownership
 * of body in every case. JOUST_EAGAIN when max_inflight are in flight,
 * JOUST_EINVAL for a bad endpoint index, JOUST_EIO when curl refuses. */
int joust_oa_http_start(joust_oa_http_t *h, int e, char *body, size_t len, void *user);

/* Starts a GET of the endpoint's base URL + path (e.g. "/models"); the
 * same errors as start. */
int joust_oa_http_get(joust_oa_http_t *h, int e, const char *path, void *user);

/* Moves the transfers on (curl_multi_perform, then drains
 * curl_multi_info_read, in that order) and calls fn for each finished one.
 * When none finished and timeout_ms > 0, waits up to timeout_ms for
 * activity (also with nothing in flight, and on the wake fd) and moves
 * them on once more. Returns the number finished. */
int joust_oa_http_poll(joust_oa_http_t *h, int timeout_ms, joust_oa_done_fn fn, void *arg);

/* A descriptor whose readability ends poll's wait early (the worker's
 * ZeroMQ socket, so that waiting for replies costs no CPU); -1: none. */
void joust_oa_http_set_wake_fd(joust_oa_http_t *h, int fd);
/* 1 when the last poll's wait ended because the wake fd was readable. */
int joust_oa_http_woken(const joust_oa_http_t *h);

size_t joust_oa_http_inflight(const joust_oa_http_t *h);
/* The full request URL of endpoint e (base + /chat/completions); its
 * base URL. */
const char *joust_oa_http_base(const joust_oa_http_t *h, int e);
const char *joust_oa_http_url(const joust_oa_http_t *h, int e);

#endif
