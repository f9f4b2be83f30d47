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
    const char *group_by;      /* tournament groups (grouping.h): a manifest field, */
    int group_all;             /* or the whole run; NULL/0: the prompt */
} joust_run_spec;

/* Opens run `name`; creates it from spec when absent (spec may be NULL to
 * require an existing run: JOUST_ENOTFOUND). An existing run whose frozen
 * configuration differs from spec is JOUST_EEXIST, with the difference
 * logged. *out: free with joust_rec_free. The record's get/put are in
 * storage/records.h (joust_rec_run_*). */
int joust_run_open(joust_store_t *st, const char *name, const joust_run_spec *spec,
                   Joust__RunRecord **out);

/* ---- what a run covers (docs/storage.md "Runs and manifests") ----
 * A run covers the images of the manifests added to it; a run with none
 * (created without a manifest) covers every image in the store. Adding a
 * manifest to a run that already has one starts a planning pass that plans
 * the pairs the new images bring (planning.c). */
typedef enum {
    JOUST_RUN_MANIFEST_FIRST = 1, /* the run's first manifest */
    JOUST_RUN_MANIFEST_EXTENDS,   /* a further manifest: a new planning pass */
    JOUST_RUN_MANIFEST_KNOWN,     /* already one of the run's manifests: no change */
} joust_run_manifest_added;
/* Adds the manifest (hash, its images first <= id < end, path for
 * messages; just_ingested: this command ingested it) to run and writes the
 * record (synced) when it changed. A started run without manifests covered
 * the whole store: it first gets an entry for what it covered (the images
 * below `first`, or all of them when the manifest was in the store before).
 * *how says what happened. JOUST_EINVAL when the range is unknown (first == end == 0:
 * a manifest ingested by an older joust, message logged). */
int joust_run_add_manifest(joust_store_t *st, Joust__RunRecord *run, uint64_t hash, uint64_t first,
                           uint64_t end, int just_ingested, const char *path,
                           joust_run_manifest_added *how);
/* The planning pass that brought image_id into run, or -1 when run does
 * not cover it. */
int joust_run_image_pass(const Joust__RunRecord *run, uint64_t image_id);
/* 1 when run covers image_id. */
static inline int joust_run_covers(const Joust__RunRecord *run, uint64_t image_id)
{
    return joust_run_image_pass(run, image_id) >= 0;
}
/* Calls fn with every image record run covers (run NULL: every image in
 * the store) in image id order; the record is borrowed for the call. fn
 * returns < 0 to stop with that error. A record that does not unpack is
 * JOUST_ECORRUPT (logged). */
int joust_run_images_each(joust_store_t *st, const Joust__RunRecord *run,
                          int (*fn)(const Joust__ImageRecord *ir, void *arg), void *arg);
/* The last pass before the current one that planned prompt_id, or -1 when
 * none did (its images are all new to planning). */
int joust_run_prompt_pass(const Joust__RunRecord *run, uint64_t prompt_id);
/* The prompt id below which every prompt planned in any pass lies (the
 * bound for walking a run's prompts). */
uint64_t joust_run_prompt_bound(const Joust__RunRecord *run);

#endif
