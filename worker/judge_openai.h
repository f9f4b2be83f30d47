/* The openai judge's statistics: what a worker's judge did, for the run
 * summary (`joust run` collects them from its local workers through the
 * files named by joust_judge_config.stats_path), logs and benchmarks.
 * Threads: the accessors read a judge owned by the calling thread. */
#ifndef JOUST_JUDGE_OPENAI_H
#define JOUST_JUDGE_OPENAI_H
#include <stdint.h>
#include <stdio.h>

#include "judge.h"
#include "openai_route.h"

typedef struct {
    uint64_t matches, ok, image_errors, judge_errors, unparseable; /* results by status */
    uint64_t requests;          /* HTTP requests sent */
    uint64_t retries;           /* requests that repeated an earlier one of the same match */
    uint64_t http_429, http_5xx, http_4xx, timeouts, conn_errors, bad_bodies;
    uint64_t unparseable_replies; /* 200s without a usable answer (each retried or final) */
    uint64_t hard_fallbacks;    /* answers without logprobs at the answer token */
    uint64_t bounded;           /* soft p with one choice missing from top_logprobs */
    uint64_t cache_hits, cache_misses; /* prepared-image cache */
    uint64_t image_sends, image_repeats; /* repeats: to an endpoint that had just seen it */
    uint64_t affinity_window;   /* "just seen": within that endpoint's last N requests */
    uint64_t max_inflight;      /* most HTTP requests in flight at once */
    uint64_t prompt_tokens, completion_tokens; /* of the accepted replies */
    uint64_t workers;           /* judges summed into this record */
} joust_oa_stats;

/* JOUST_EINVAL when j is not an openai judge. */
int joust_judge_openai_stats(joust_judge_t *j, joust_oa_stats *out);
/* Endpoint e's request counts; JOUST_EINVAL when j is not an openai judge
 * or e is out of range. */
int joust_judge_openai_ep_stats(joust_judge_t *j, int e, joust_oa_ep_stats *out);

/* Writes s as one JSON object (field names as above). 0 or JOUST_EIO. */
int joust_oa_stats_write(const joust_oa_stats *s, const char *path);
/* Reads a file written by joust_oa_stats_write and adds it to *sum.
 * 0, JOUST_ENOTFOUND or JOUST_ECORRUPT. */
int joust_oa_stats_add_file(joust_oa_stats *sum, const char *path);
/* A few lines for people: requests and retries by cause, cache hit rate,
 * the share of images sent to an endpoint that had just seen them. */
void joust_oa_stats_print(const joust_oa_stats *s, FILE *out);

#endif
