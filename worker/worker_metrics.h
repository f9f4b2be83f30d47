/* A worker's Prometheus metrics (common/prom.h), served on the worker's own
 * port by `joust worker --metrics`: results by status, judge latency and
 * tokens (common/prom_judge.h), matches in the judge, results waiting for
 * their ACK, and whether the judge has a healthy endpoint. Names are listed
 * in docs/operations.md.
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

typedef struct joust_worker_metrics {
    joust_prom_judge judge;
    joust_prom_metric *inflight, *outbox, *available, *acked;
} joust_worker_metrics;

void joust_worker_metrics_init(joust_worker_metrics *m, joust_prom_t *reg);
/* Once per turn of the worker's loop. */
void joust_worker_metrics_tick(joust_worker_metrics *m, size_t inflight, size_t outbox,
                               int available, uint64_t acked);

#endif
