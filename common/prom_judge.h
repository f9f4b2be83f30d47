/* The judge-result metrics the coordinator and the worker both expose
 * (prom.h), under a prefix ("joust_coord", "joust_worker"):
 *   PREFIX_results_total{status="ok|image_error|..."}  counter
 *   PREFIX_judge_latency_seconds                      histogram
 *   PREFIX_tokens_total                               counter
 * status is a proto OutcomeStatus number (proto/joust.proto; 1..7); others
 * count as "unknown". Threads and errors: as prom.h. */
#ifndef JOUST_PROM_JUDGE_H
#define JOUST_PROM_JUDGE_H
#include <stdint.h>

#include "prom.h"

#define JOUST_PROM_STATUSES 8 /* 0 (unknown) .. 7 */

typedef struct {
    joust_prom_metric *by_status[JOUST_PROM_STATUSES];
    joust_prom_metric *latency, *tokens;
} joust_prom_judge;

/* Registers the metrics in reg. what: "final outcomes recorded" or such,
 * the start of the results counter's HELP. */
void joust_prom_judge_init(joust_prom_judge *j, joust_prom_t *reg, const char *prefix,
                           const char *what);
/* One result; j may be NULL (metrics off). */
void joust_prom_judge_record(joust_prom_judge *j, int status, uint64_t latency_us,
                             uint64_t tokens);
/* The status's label value, e.g. "ok". */
const char *joust_prom_status_name(int status);

#endif
