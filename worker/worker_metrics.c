#include "worker_metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "buf.h"
#include "judge.h"
#include "xalloc.h"

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

/* endpoint="URL" (escaped as the exposition format wants), plus more. */
static char *ep_labels(const char *url, const char *more)
{
    joust_buf_t b = {0};
    joust_buf_puts(&b, "endpoint=\"");
    for (const char *p = url; *p; p++) {
        if (*p == '\\' || *p == '"')
            joust_buf_printf(&b, "\\%c", *p);
        else if (*p == '\n')
            joust_buf_puts(&b, "\\n");
        else
            joust_buf_printf(&b, "%c", *p);
    }
    joust_buf_printf(&b, "\"%s%s", more ? "," : "", more ? more : "");
    return b.data;
}

void joust_worker_metrics_init(joust_worker_metrics *m, joust_prom_t *reg,
                               char *const *urls, int n)
{
    static const double bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
    joust_prom_judge_init(&m->judge, reg, "joust_worker", "results the judge produced");
    joust_prom_register(reg, m, defs, sizeof defs / sizeof *defs);
    m->n_ep = n > 0 ? n : 0;
    m->ep = m->n_ep ? xcalloc((size_t)m->n_ep, sizeof *m->ep) : NULL;
    for (int e = 0; e < m->n_ep; e++) {
        joust_worker_ep_metrics *x = &m->ep[e];
        char *l = ep_labels(urls[e], NULL), *lok = ep_labels(urls[e], "result=\"ok\""),
             *lf = ep_labels(urls[e], "result=\"failed\"");
        x->up = joust_prom_gauge(reg, "joust_worker_endpoint_up",
                                 "1 when the endpoint takes requests, 0 when down or broken", l);
        x->fails = joust_prom_gauge(reg, "joust_worker_endpoint_consecutive_failures",
                                    "failures of the endpoint since its last good answer", l);
        x->last_ok = joust_prom_gauge(reg, "joust_worker_endpoint_last_success_timestamp_seconds",
                                      "Unix time of the endpoint's last good answer (0: none)", l);
        static const char req_help[] = "requests to the endpoint by result (failed: 5xx, 429, "
                                       "timeouts, connection errors, refusals)";
        x->ok = joust_prom_counter(reg, "joust_worker_endpoint_requests_total", req_help, lok);
        x->failed = joust_prom_counter(reg, "joust_worker_endpoint_requests_total", req_help, lf);
        x->latency = joust_prom_histogram(reg, "joust_worker_endpoint_request_seconds",
                                          "time one request to the endpoint took", l, bounds,
                                          sizeof bounds / sizeof *bounds);
        free(l);
        free(lok);
        free(lf);
    }
}

void joust_worker_metrics_clear(joust_worker_metrics *m)
{
    free(m->ep);
    m->ep = NULL;
    m->n_ep = 0;
}

void joust_worker_metrics_endpoint(void *ctx, const joust_judge_ep_event *ev)
{
    joust_worker_metrics *m = ctx;
    if (!m || ev->e < 0 || ev->e >= m->n_ep)
        return;
    joust_worker_ep_metrics *x = &m->ep[ev->e];
    joust_prom_set(x->up, ev->up ? 1.0 : 0.0);
    joust_prom_set(x->fails, (double)ev->fails);
    if (ev->ok)
        joust_prom_set(x->last_ok, (double)time(NULL));
    if (ev->request) {
        joust_prom_add(ev->ok ? x->ok : x->failed, 1);
        joust_prom_observe(x->latency, (double)ev->elapsed_us / 1e6);
    }
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
