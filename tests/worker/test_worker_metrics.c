/* The worker's per-endpoint health metrics (worker/worker_metrics.h): the
 * events the openai judge sends through on_endpoint, rendered in the
 * Prometheus text format with the endpoint label (escaped): up, consecutive
 * failures that an answer resets, the last good answer's time, requests by
 * result and their latency histogram; an unknown endpoint index is ignored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "judge.h"
#include "prom.h"
#include "worker_metrics.h"

static joust_buf_t text;

/* The value of the series line that starts with head, or -1. */
static double value_of(joust_prom_t *reg, const char *head)
{
    text.len = 0;
    joust_prom_render(reg, &text);
    joust_buf_append(&text, "", 1);
    for (char *l = text.data; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, head, strlen(head)) == 0 && l[strlen(head)] == ' ')
            return strtod(l + strlen(head) + 1, NULL);
    return -1;
}

int main(void)
{
    joust_prom_t *reg = joust_prom_new();
    joust_worker_metrics m;
    char *urls[] = {"http://a:8000/v1", "http://b\"q:8000/v1"};
    joust_worker_metrics_init(&m, reg, urls, 2);
    const char *a = "{endpoint=\"http://a:8000/v1\"}";
    char h[256];
#define V(name, labels) (snprintf(h, sizeof h, "%s%s", name, labels), value_of(reg, h))
    CHECK(V("joust_worker_endpoint_up", a) == 0);
    CHECK(V("joust_worker_endpoint_last_success_timestamp_seconds", a) == 0);
    /* the second endpoint's label has its quote escaped */
    CHECK(V("joust_worker_endpoint_up", "{endpoint=\"http://b\\\"q:8000/v1\"}") == 0);

    joust_judge_ep_event probe = {.e = 0, .request = 0, .ok = 1, .up = 1};
    joust_worker_metrics_endpoint(&m, &probe);
    CHECK(V("joust_worker_endpoint_up", a) == 1);
    CHECK(V("joust_worker_endpoint_request_seconds_count", a) == 0); /* a probe is no request */
    time_t t0 = time(NULL);
    joust_judge_ep_event fail = {.e = 0, .request = 1, .ok = 0, .elapsed_us = 2000000, .up = 1,
                                 .fails = 1};
    joust_worker_metrics_endpoint(&m, &fail);
    fail.fails = 2;
    fail.up = 0;
    joust_worker_metrics_endpoint(&m, &fail);
    CHECK(V("joust_worker_endpoint_consecutive_failures", a) == 2);
    CHECK(V("joust_worker_endpoint_up", a) == 0);
    CHECK(V("joust_worker_endpoint_requests_total",
            "{endpoint=\"http://a:8000/v1\",result=\"failed\"}") == 2);
    joust_judge_ep_event ok = {.e = 0, .request = 1, .ok = 1, .elapsed_us = 80000, .up = 1};
    joust_worker_metrics_endpoint(&m, &ok);
    CHECK(V("joust_worker_endpoint_consecutive_failures", a) == 0);
    CHECK(V("joust_worker_endpoint_requests_total",
            "{endpoint=\"http://a:8000/v1\",result=\"ok\"}") == 1);
    double last = V("joust_worker_endpoint_last_success_timestamp_seconds", a);
    CHECK(last >= (double)t0 && last <= (double)time(NULL));
    CHECK(V("joust_worker_endpoint_request_seconds_count", a) == 3);
    CHECK(V("joust_worker_endpoint_request_seconds_bucket",
            "{endpoint=\"http://a:8000/v1\",le=\"0.1\"}") == 1);
    CHECK(V("joust_worker_endpoint_request_seconds_bucket",
            "{endpoint=\"http://a:8000/v1\",le=\"2.5\"}") == 3);
    /* the other endpoint saw nothing; an index out of range changes nothing */
    joust_judge_ep_event bad = {.e = 7, .request = 1, .ok = 1, .up = 1};
    joust_worker_metrics_endpoint(&m, &bad);
    CHECK(V("joust_worker_endpoint_requests_total",
            "{endpoint=\"http://b\\\"q:8000/v1\",result=\"ok\"}") == 0);
    joust_worker_metrics_clear(&m);
    joust_prom_destroy(&reg);
    joust_buf_free(&text);
    return test_report();
}
