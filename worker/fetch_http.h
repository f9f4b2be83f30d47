/* HTTP(S) GETs and HEADs for the image stage's remote fetches (libcurl,
 * synchronous, bounded).
 *
 * What it promises, per request:
 *   - connection reuse: one kept easy handle plus a CURL share (connections,
 *     DNS, TLS sessions), so consecutive fetches from one host reuse the
 *     connection;
 *   - bounded time: a connect timeout and a total timeout per try;
 *   - bounded size: a body over max_bytes is refused before it completes
 *     (a larger Content-Length stops it at the headers, a write-callback
 *     counter stops a body without one, or one that lies);
 *   - bounded retries: up to `tries` tries with exponential backoff (plus
 *     jitter) on an outage: connection refused or reset, timeouts, a
 *     truncated body, 5xx and 429;
 *   - redirects: at most max_redirects, and only to http:// or https://
 *     (CURLOPT_REDIR_PROTOCOLS_STR); a redirect to file:// or any other
 *     scheme is refused, never followed;
 *   - AWS Signature V4 when req->sigv4 is set (CURLOPT_AWS_SIGV4, the key
 *     pair in CURLOPT_USERPWD, a session token as X-Amz-Security-Token);
 *   - ranged reads: with req->range_len, one request for bytes
 *     [range_off, range_off + range_len) (a Range header; signed like any
 *     request); the reply must be 206 with exactly that many bytes: a
 *     server that ignores Range (200) is stopped at its headers and the
 *     fetch fails with that reason instead of downloading the object.
 *
 * Streams (joust_http_stream_*) read a large object (a tar shard) in one
 * pass, pulled by the caller through curl multi: no more than what one
 * turn of curl's socket reads delivers is held in memory, never the whole
 * object. They are not retried (a restart would re-read what the caller
 * consumed); a stalled transfer (no byte for timeout_ms) fails it.
 *
 * Failure classes (the code says which; the reason names the URL and the
 * server's words, the S3 <Code> and <Message> when the body has them):
 *   JOUST_ENOTFOUND  404 / 410: the object is missing (final)
 *   JOUST_EDENIED    401 / 403, or a redirect to a refused scheme (final)
 *   JOUST_ETOOBIG    the body is larger than max_bytes (final)
 *   JOUST_EIO        another 4xx, too many redirects, a malformed URL (final)
 *   JOUST_EAGAIN     an outage that outlasted the retries: the caller must
 *                    treat it as an infrastructure failure (not final)
 *
 * Ownership: *data is malloc'd and the caller's. Threads: one joust_http_t
 * per thread (the share has no locks). */
#ifndef JOUST_FETCH_HTTP_H
#define JOUST_FETCH_HTTP_H
#include <stddef.h>

typedef struct {
    int connect_timeout_ms; /* default 5000 */
    int timeout_ms;         /* per try, whole transfer; default 30000 */
    int tries;              /* default 3 */
    int backoff_ms;         /* first retry's wait, doubled per retry, capped at 4 s; default 250 */
    int max_redirects;      /* default 5 */
} joust_http_opts; /* a field <= 0: its default */

void joust_http_opts_defaults(joust_http_opts *o);

typedef struct {
    const char *url;
    int head;                 /* 1: HEAD (nothing read but the headers) */
    const char *sigv4;        /* "aws:amz:REGION:s3" or NULL: unsigned */
    const char *userpwd;      /* "KEY:SECRET" with sigv4 */
    const char *session_token; /* sent as X-Amz-Security-Token; may be NULL */
    unsigned long long range_off, range_len; /* range_len > 0: a ranged GET */
} joust_http_req;

typedef struct joust_http joust_http_t;

/* o NULL: the defaults. */
joust_http_t *joust_http_new(const joust_http_opts *o);
void joust_http_destroy(joust_http_t **self_p);

/* Fetches req->url; on 0 a GET's body is in *data (*len bytes, followed by
 * a NUL byte not counted), a HEAD's *data is NULL and *len is the
 * Content-Length (0 when the server sent none). max_bytes 0: no cap. */
int joust_http_get(joust_http_t *h, const joust_http_req *req, size_t max_bytes,
                   unsigned char **data, size_t *len, char *err, size_t errlen);

typedef struct {
    unsigned long long requests, retries, connects; /* connects: new connections opened */
} joust_http_stats;

void joust_http_stats_get(const joust_http_t *h, joust_http_stats *out);

typedef struct joust_http_stream joust_http_stream_t;

/* Starts a GET of req->url (not HEAD, not ranged) with h's options; the
 * status is checked at the first read. */
joust_http_stream_t *joust_http_stream_open(joust_http_t *h, const joust_http_req *req);
/* Up to cap bytes of the body into buf; *n 0 at its end. Errors as
 * joust_http_get (JOUST_EAGAIN also for a transfer cut or stalled midway). */
int joust_http_stream_read(joust_http_stream_t *s, unsigned char *buf, size_t cap, size_t *n,
                           char *err, size_t errlen);
void joust_http_stream_close(joust_http_stream_t **self_p);

#endif
