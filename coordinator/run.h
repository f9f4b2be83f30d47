/* Runs: a named tournament over the store's prompts with a configuration
 * frozen at creation (strategy, judge, order policy, seed, attempts).
 * One database holds many runs; run ids prefix the run's records. This part
 * compares a requested configuration with the frozen one; the record itself
 * is read and written through storage/records.h (joust_rec_run_*).
 * Threads: one caller per store at a time when creating (the name check
 * and the create are two steps). Errors: 0 or a negative JOUST_E* code. */
#ifndef JOUST_RUN_H
#define JOUST_RUN_H
#include <stdint.h>

#include "joust.pb-c.h"
#include "records.h"

typedef struct {
    const char *strategy;      /* "round-robin" */
    const char *judge;         /* "sim", "quality" */
    const char *order;         /* "both" | "random" | "fixed" */
    uint64_t seed;
    uint32_t max_attempts;     /* per match, for retryable failures */
    uint32_t lease_ms;
    const char *judge_options; /* frozen judge settings, informational */
    double budget_per_image;   /* judge calls per image of a prompt; 0 = no cap */
    uint64_t budget_calls;     /* judge calls per prompt; 0 = no cap */
    double confidence;         /* adaptive/top-k stop level; 0 = the planner's default */
    uint32_t k;                /* k-regular degree; top-k: how many best/worst */
} joust_run_spec;

/* Opens run `name`; creates it from spec when absent (spec may be NULL to
 * require an existing run: JOUST_ENOTFOUND). An existing run whose frozen
 * configuration differs from spec is JOUST_EEXIST, with the difference
 * logged. *out: free with joust_rec_free. The record's get/put are in
 * storage/records.h (joust_rec_run_*). */
int joust_run_open(joust_store_t *st, const char *name, const joust_run_spec *spec,
                   Joust__RunRecord **out);

#endif
