/* The coordinator's Prometheus metrics (common/prom.h): the main loop
 * publishes its counters and gauges here (atomically) and the /metrics
 * thread (common/prom_http.h) renders them; nothing here touches the
 * socket or the store. Metric names are listed in docs/operations.md and
 * used by cluster/grafana-dashboard.json.
 *
 * Ownership: the registry is the caller's; joust_coord_metrics only keeps
 * handles into it. Threads: init before the registry is served; the hooks
 * (coordinator.c) are called from the coordinator's thread only. */
#ifndef JOUST_COORD_METRICS_H
#define JOUST_COORD_METRICS_H
#include <stdint.h>

#include "prom.h"
#include "prom_judge.h"

typedef struct joust_coord_metrics {
    joust_prom_judge judge; /* joust_coord_results_total{status}, latency, tokens */
    joust_prom_metric *planned, *expired, *retried, *infra_retries, *rejected, *drained;
    joust_prom_metric *in_flight, *queue, *workers, *workers_available, *committing;
    joust_prom_metric *prompts_planned, *prompts_total, *paused;
    joust_prom_metric *commit_latency, *commit_results;
    int64_t commit_started_us; /* the coordinator's thread only */
} joust_coord_metrics;

void joust_coord_metrics_init(joust_coord_metrics *m, joust_prom_t *reg);

#endif
