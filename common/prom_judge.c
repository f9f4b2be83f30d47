#include "prom_judge.h"

#include <stdio.h>

/* Mirrors enum OutcomeStatus in proto/joust.proto. */
static const char *const names[JOUST_PROM_STATUSES] = {
    "unknown", "ok", "image_error", "judge_error", "unparseable", "abandoned", "infra_error",
    "config_error"};

const char *joust_prom_status_name(int status)
{
    return status > 0 && status < JOUST_PROM_STATUSES ? names[status] : names[0];
}

void joust_prom_judge_init(joust_prom_judge *j, joust_prom_t *reg, const char *prefix,
                           const char *what)
{
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    char name[128], help[256], label[64];
    snprintf(name, sizeof name, "%s_results_total", prefix);
    snprintf(help, sizeof help, "%s, by outcome status", what);
    for (int s = 0; s < JOUST_PROM_STATUSES; s++) {
        snprintf(label, sizeof label, "status=\"%s\"", names[s]);
        j->by_status[s] = joust_prom_counter(reg, name, help, label);
    }
    snprintf(name, sizeof name, "%s_judge_latency_seconds", prefix);
    j->latency = joust_prom_histogram(reg, name, "time the judge took for one match", NULL, bounds,
                                      sizeof bounds / sizeof *bounds);
    snprintf(name, sizeof name, "%s_tokens_total", prefix);
    j->tokens = joust_prom_counter(reg, name, "tokens the judge reported (VLM judges)", NULL);
}

void joust_prom_judge_record(joust_prom_judge *j, int status, uint64_t latency_us,
                             uint64_t tokens)
{
    if (!j)
        return;
    joust_prom_add(j->by_status[status > 0 && status < JOUST_PROM_STATUSES ? status : 0], 1);
    joust_prom_observe(j->latency, (double)latency_us / 1e6);
    joust_prom_add(j->tokens, tokens);
}
