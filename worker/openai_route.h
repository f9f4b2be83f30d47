/* Endpoint choice for the openai judge: load spread, health and image
 * affinity.
 *
 * - Load: an endpoint takes at most its fair share of the worker's
 *   in-flight requests plus some slack; otherwise the least loaded wins.
 * - Health: after fail_threshold consecutive failures (5xx, timeouts,
 *   connection errors, bad bodies) an endpoint is set aside for a cooldown
 *   (1 s, doubling per set-aside up to 30 s), then probed with one request
 *   at a time until a success restores it. When every endpoint is set aside
 *   they are all used anyway ("panic", paced by each match's backoff). A
 *   429 pauses an endpoint for Retry-After without counting as a failure;
 *   when all are paused, pick answers -1 and the caller waits.
 * - Affinity: a request goes where its first (else second) image was last
 *   sent, while that endpoint is healthy and under its share, so a VLM
 *   server sees the same image back to back (encoder and prefix caches).
 *   An image "repeat" is a send to an endpoint that received the same image
 *   within its last `window` requests; the share of repeats is reported.
 *
 * Threads: not thread-safe; one router per judge. Never fails: bad input
 * (endpoint index out of range) is ignored. */
#ifndef JOUST_OPENAI_ROUTE_H
#define JOUST_OPENAI_ROUTE_H
#include <stdint.h>

typedef enum {
    JOUST_OA_EP_OK,        /* the endpoint answered (any HTTP status but 5xx/429) */
    JOUST_OA_EP_FAILED,    /* 5xx, timeout, connection error, unusable body */
    JOUST_OA_EP_THROTTLED  /* 429: pause for retry_after_ms */
} joust_oa_ep_outcome;

typedef struct {
    uint64_t sent, failed, throttled, set_aside;
    int inflight;
} joust_oa_ep_stats;

typedef struct joust_oa_route joust_oa_route_t;

/* n endpoints (>= 1), max_inflight over all of them, failures before an
 * endpoint is set aside (>= 1), affinity window in requests (>= 1). */
joust_oa_route_t *joust_oa_route_new(int n, int max_inflight, int fail_threshold, int window);
void joust_oa_route_destroy(joust_oa_route_t **self_p);

/* The endpoint for a request with images a, b (0 = none), or -1 when no
 * endpoint can take one now (all paused by 429). */
int joust_oa_route_pick(joust_oa_route_t *r, uint64_t a, uint64_t b, int64_t now_ms);
/* Records that a request with images a, b went to e. */
void joust_oa_route_sent(joust_oa_route_t *r, int e, uint64_t a, uint64_t b);
/* Records how a request to e ended; retry_after_ms applies to THROTTLED. */
void joust_oa_route_done(joust_oa_route_t *r, int e, joust_oa_ep_outcome o, int retry_after_ms,
                         int64_t now_ms);
/* The earliest time after now_ms that an endpoint set aside or paused comes
 * back (INT64_MAX when none is away). */
int64_t joust_oa_route_next_change_ms(const joust_oa_route_t *r, int64_t now_ms);

void joust_oa_route_ep_stats(const joust_oa_route_t *r, int e, joust_oa_ep_stats *out);
/* Image sends and, of those, repeats to an endpoint that had just seen the image. */
void joust_oa_route_affinity(const joust_oa_route_t *r, uint64_t *sends, uint64_t *repeats);
int joust_oa_route_window(const joust_oa_route_t *r);

#endif
