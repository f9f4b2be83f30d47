/* Near-duplicate clusters of a run's (or the store's) images from their
 * stored signatures (docs/dedup.md): rank/neardup.h searches the 64-bit
 * perceptual hashes within a Hamming radius and a scope (within a prompt,
 * within a generator model, or global); this part loads the signatures,
 * picks each cluster's representative, writes clusters.jsonl and the
 * summary, and records the collapsed duplicates of `joust run --dedup`.
 *
 *   joust_dedup_opts o;
 *   joust_dedup_opts_defaults(&o);             // radius 8, scope prompt
 *   joust_dedup_result r;
 *   joust_dedup_find(st, run, &o, &r);         // run NULL: every image
 *   joust_dedup_write(st, &r, "out/clusters.jsonl", "out/dedup_summary.json");
 *   joust_dedup_result_free(&r);
 *
 * Representative: the best-scored member when the run has scores (its
 * score records), else the largest image (width x height), else the first
 * (lowest image id).
 * Ownership: the result owns its arrays (free it); st and run are
 * borrowed for the call. Threads: the caller's, plus o.threads search
 * threads inside joust_dedup_find. Errors: 0 or a negative JOUST_E* code
 * from the store (logged), JOUST_EINVAL for options out of range, JOUST_EIO
 * when a file cannot be written (logged; output.h's atomic files). */
#ifndef JOUST_DEDUP_H
#define JOUST_DEDUP_H
#include <stddef.h>
#include <stdint.h>

#include "joust.pb-c.h"
#include "neardup.h"
#include "store.h"

typedef enum { JOUST_DEDUP_PROMPT = 0, JOUST_DEDUP_MODEL, JOUST_DEDUP_GLOBAL } joust_dedup_scope;

typedef struct {
    uint32_t radius;         /* default JOUST_NEARDUP_DEFAULT_RADIUS (8) */
    joust_dedup_scope scope; /* default JOUST_DEDUP_PROMPT */
    uint32_t threads;        /* search threads, default 1 */
    int use_scores;          /* 1 (default): representatives by the run's scores */
} joust_dedup_opts;

typedef struct {
    size_t images;        /* images considered (the run's, or the store's) */
    size_t unsigned_n;    /* of those, without a usable signature (could not be read) */
    size_t scored;        /* of the signed, with a score of the run */
    double load_s, search_s;
    /* The search over the signed images (index i is ids[i]): */
    uint64_t *ids;
    uint32_t *w, *h;
    uint8_t *has_score;
    joust_neardup_result nd;
    joust_dedup_opts opts;
    uint32_t run_id;      /* 0: the whole store */
    /* Set by the caller for the summary: the signing session's figures
     * (coordinator.h joust_coord_summary) and its time. */
    uint64_t signed_now, sign_failed, sign_copied, sign_known, sign_given_up;
    double sign_s;
} joust_dedup_result;

void joust_dedup_opts_defaults(joust_dedup_opts *o);
/* "prompt" | "model" | "global"; JOUST_EINVAL otherwise. */
int joust_dedup_scope_parse(const char *s, joust_dedup_scope *out);
const char *joust_dedup_scope_name(joust_dedup_scope s);

/* Loads the signatures of run's images (NULL: every image in the store)
 * and searches them. Fills *out (free with joust_dedup_result_free). */
int joust_dedup_find(joust_store_t *st, const Joust__RunRecord *run, const joust_dedup_opts *o,
                     joust_dedup_result *out);
/* Writes one JSON object per cluster to clusters_path (NULL: none):
 *   {"cluster":N,"size":K,"representative":ID,"members":[ID...],
 *    "images":[URI...],"distances":[D...],"prompt_id":P|null,"model":M|null}
 * members[0] is the representative (distance 0); distances are to it; ID
 * is the manifest's id (or "#<image id>"); prompt_id and model are the
 * representative's. And the summary as one JSON object to summary_path
 * (NULL: none). */
int joust_dedup_write(joust_store_t *st, const joust_dedup_result *r, const char *clusters_path,
                      const char *summary_path);
/* The summary object (as in summary_path) into a malloc'd string. */
char *joust_dedup_summary_json(const joust_dedup_result *r);
void joust_dedup_result_free(joust_dedup_result *r);

/* `joust run --dedup`: the run's near-duplicates within each prompt (radius
 * from *radius_p, a uint32_t), recorded as the run's duplicate records
 * (storage/records.h) for the prompts the run has not planned yet, so the
 * coordinator plans only representatives. Usable as the coordinator's
 * after_signing callback. */
int joust_dedup_collapse(joust_store_t *st, const Joust__RunRecord *run, void *radius_p);

#endif
