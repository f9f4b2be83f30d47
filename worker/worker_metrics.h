/* A worker's Prometheus metrics (common/prom.h), served on the worker's own
 * port by `joust worker --metrics`: results by status, judge latency and
 * tokens (common/prom_judge.h), matches in the judge, results waiting for
 * their ACK, and whether the judge has a healthy endpoint; with the openai
 * judge, each endpoint's health under the label endpoint="URL": up (1/0),
 * consecutive failures, the time of its last good answer, its requests by
 * result and their latency (fed by joust_judge_config.on_endpoint). Names
 * are listed in docs/operations.md.
 *
 * Ownership: the registry is the caller's; this keeps handles into it.
 * Threads: init before the registry is served; the hooks are called from
 * the worker's thread (worker.c) and accept NULL (metrics off). */
#ifndef JOUST_WORKER_METRICS_H
#define JOUST_WORKER_METRICS_H
#include <stddef.h>
#include <stdint.h>

#include "prom.h"
#include "prom_judge.h"

typedef struct {
    joust_prom_metric *up, *fails, *last_ok, *ok, *failed, *latency;
} joust_worker_ep_metrics;

typedef struct joust_worker_metrics {
    joust_prom_judge judge;
    joust_prom_metric *inflight, *outbox, *available, *acked;
    joust_worker_ep_metrics *ep; /* n_ep of them, by endpoint index */
    int n_ep;
} joust_worker_metrics;

struct joust_judge_ep_event;

/* urls: the judge's endpoints once split (joust_judge_split_endpoints);
 * n 0 for judges without endpoints. */
void joust_worker_metrics_init(joust_worker_metrics *m, joust_prom_t *reg,
                               char *const *urls, int n);
/* Frees what init allocated (not the registry's metrics). */
void joust_worker_metrics_clear(joust_worker_metrics *m);
/* A joust_judge_config.on_endpoint: ctx is the joust_worker_metrics. */
void joust_worker_metrics_endpoint(void *ctx, const struct joust_judge_ep_event *ev);
/* Once per turn of the worker's loop. */
void joust_worker_metrics_tick(joust_worker_metrics *m, size_t inflight, size_t outbox,
                               int available, uint64_t acked);

#endif
