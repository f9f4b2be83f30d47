#include "worker_metrics.h"

#include <stddef.h>

static const joust_prom_def defs[] = {
    {offsetof(joust_worker_metrics, inflight), 1, "joust_worker_matches_in_judge",
     "matches handed to the judge, not finished yet"},
    {offsetof(joust_worker_metrics, outbox), 1, "joust_worker_outbox",
     "results sent, waiting for the coordinator's ACK"},
    {offsetof(joust_worker_metrics, available), 1, "joust_worker_judge_available",
     "1 when the judge has a healthy endpoint, else 0"},
    {offsetof(joust_worker_metrics, acked), 0, "joust_worker_results_acked_total",
     "results the coordinator acknowledged (durable)"},
};

void joust_worker_metrics_init(joust_worker_metrics *m, joust_prom_t *reg)
{
    joust_prom_judge_init(&m->judge, reg, "joust_worker", "results the judge produced");
    joust_prom_register(reg, m, defs, sizeof defs / sizeof *defs);
}

void joust_worker_metrics_tick(joust_worker_metrics *m, size_t inflight, size_t outbox,
                               int available, uint64_t acked)
{
    if (!m)
        return;
    joust_prom_set(m->inflight, (double)inflight);
    joust_prom_set(m->outbox, (double)outbox);
    joust_prom_set(m->available, available ? 1.0 : 0.0);
    joust_prom_set(m->acked, (double)acked);
}
