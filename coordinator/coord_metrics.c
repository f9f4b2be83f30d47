#include "coord_metrics.h"

#include <stddef.h>

#include "coord_state.h"

#define C(field, name, help) {offsetof(joust_coord_metrics, field), 0, name, help}
#define G(field, name, help) {offsetof(joust_coord_metrics, field), 1, name, help}
static const joust_prom_def defs[] = {
    C(planned, "joust_coord_matches_planned_total",
      "matches planned for the run (this session knows of)"),
    C(expired, "joust_coord_leases_expired_total", "leases that expired before a result came"),
    C(retried, "joust_coord_matches_requeued_total",
      "matches put back in the queue (lost lease, infra error)"),
    C(infra_retries, "joust_coord_infra_retries_total", "INFRA_ERROR results re-queued"),
    C(rejected, "joust_coord_messages_rejected_total", "malformed or unexpected messages dropped"),
    C(drained, "joust_coord_workers_drained_total",
      "times a worker was drained (leases kept expiring)"),
    G(in_flight, "joust_coord_matches_in_flight", "matches leased to workers now"),
    G(queue, "joust_coord_queue_depth", "planned matches waiting for a worker"),
    G(committing, "joust_coord_matches_committing", "results staged or being written to the store"),
    G(workers, "joust_coord_workers_connected", "workers connected"),
    G(workers_available, "joust_coord_workers_available", "connected workers that take work"),
    G(prompts_planned, "joust_coord_prompts_planned", "prompt groups planned so far"),
    G(prompts_total, "joust_coord_prompts", "prompt groups in the run"),
    G(paused, "joust_coord_paused", "1 while no connected worker can take work"),
    C(commit_results, "joust_coord_store_commits_total", "group commits written"),
};

void joust_coord_metrics_init(joust_coord_metrics *m, joust_prom_t *reg)
{
    static const double commit_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,   0.1,   0.25,   0.5,   1,    2.5};
    joust_prom_judge_init(&m->judge, reg, "joust_coord", "final outcomes recorded");
    joust_prom_register(reg, m, defs, sizeof defs / sizeof *defs);
    m->commit_latency = joust_prom_histogram(reg, "joust_coord_store_commit_seconds",
                                             "one group commit: synced store write, submit to done",
                                             NULL, commit_bounds,
                                             sizeof commit_bounds / sizeof *commit_bounds);
}

void coord_metrics_tick(coord *c)
{
    joust_coord_metrics *m = c->cfg->metrics;
    if (!m)
        return;
    joust_prom_set(m->planned, (double)c->sum->planned);
    joust_prom_set(m->expired, (double)c->sum->expired);
    joust_prom_set(m->retried, (double)c->sum->retried);
    joust_prom_set(m->infra_retries, (double)c->sum->infra_retries);
    joust_prom_set(m->rejected, (double)c->sum->rejected);
    joust_prom_set(m->drained, (double)c->sum->drained);
    uint64_t leased = 0, workers = 0, available = 0;
    for (size_t i = 0; i < c->npeers; i++) {
        const peer *p = &c->peers[i];
        if (!p->alive)
            continue;
        workers++;
        leased += p->outstanding;
        available += p->registered && !p->unavailable && !p->drained;
    }
    joust_prom_set(m->in_flight, (double)leased);
    /* The queue ring may hold stale entries: count what is neither leased
     * nor being committed instead. */
    size_t busy = leased + c->ncommitting + c->nflight;
    joust_prom_set(m->queue, c->active.len > busy ? (double)(c->active.len - busy) : 0.0);
    joust_prom_set(m->committing, (double)(c->ncommitting + c->nflight));
    joust_prom_set(m->workers, (double)workers);
    joust_prom_set(m->workers_available, (double)available);
    joust_prom_set(m->prompts_planned, (double)c->prompts_planned);
    joust_prom_set(m->prompts_total, (double)c->prompts_total);
    joust_prom_set(m->paused, c->paused ? 1.0 : 0.0);
}
