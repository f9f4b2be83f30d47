/* Scoring: fits soft Bradley–Terry per prompt from a run's committed
 * outcomes (the store alone), writes the scores column family, and exports
 * scores.jsonl / scores.csv, the top images per prompt and DPO pairs.
 * Deterministic: the same store gives byte-identical files.
 * Images whose matches failed because of the image itself carry an error and
 * no score; the other images of their prompt are fitted without them. */
#ifndef JOUST_SCORING_H
#define JOUST_SCORING_H
#include <stdint.h>
#include <stdio.h>

#include "joust.pb-c.h"
#include "models.h"
#include "prompt_fit.h"
#include "store.h"

typedef struct {
    uint64_t prompts, images, scored, image_errors;
    uint64_t outcomes_ok, outcomes_failed;
    joust_position_bias bias; /* pooled over all prompts of the run */
    joust_model_report models; /* generator models, when images name two or more */
} joust_score_summary;

/* Frees what a summary owns (the model report). */
void joust_score_summary_clear(joust_score_summary *sum);

/* One prompt's images with their scores (score NULL when not scored yet),
 * best rank first, images with errors last. Borrowed for the callback. */
typedef struct {
    Joust__ImageRecord *img;
    Joust__ScoreRecord *score;
} joust_scored_image;

typedef struct {
    Joust__PromptRecord *prompt;
    joust_scored_image *items;
    size_t n;
} joust_scored_prompt;

/* Calls fn for every planned prompt of the run in prompt order; a non-zero
 * return from fn stops the walk (a positive one is not an error). */
int joust_scores_walk(joust_store_t *st, const Joust__RunRecord *run,
                      int (*fn)(const joust_scored_prompt *sp, void *arg), void *arg);

/* Fits every planned prompt of the run and rewrites its scores. */
int joust_scores_compute(joust_store_t *st, const Joust__RunRecord *run, joust_score_summary *sum);
/* Writes the run's scores as JSONL and/or CSV (either path may be NULL). */
int joust_scores_export(joust_store_t *st, const Joust__RunRecord *run, const char *jsonl_path,
                        const char *csv_path);
/* Prints the best `top` images of the first `max_prompts` prompts. */
int joust_scores_print_top(joust_store_t *st, const Joust__RunRecord *run, FILE *out,
                           int max_prompts, int top);
/* Prints up to `max` failed images with their reasons. */
int joust_scores_print_errors(joust_store_t *st, const Joust__RunRecord *run, FILE *out, int max);
/* Writes best-vs-worst per prompt as chosen/rejected JSONL; skips prompts
 * whose score margin is below min_margin. *pairs: lines written. */
int joust_export_dpo(joust_store_t *st, const Joust__RunRecord *run, const char *path,
                     double min_margin, uint64_t *pairs);

#endif
