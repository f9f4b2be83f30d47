/* Model-level scores of a run: the generator models (manifest "model") are
 * compared through the outcomes of their images on the same prompt, fitted
 * with Bradley–Terry and given bootstrap confidence intervals over prompts
 * (rank/model_fit.h). Fed one prompt at a time while scoring; memory is one
 * cell per (prompt, model pair). Not thread-safe. */
#ifndef JOUST_MODELS_H
#define JOUST_MODELS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model_fit.h"
#include "prompt_fit.h"

typedef struct models models_t;

typedef struct {
    uint32_t n;               /* models seen */
    char **names;             /* n names */
    joust_model_score *score; /* n scores; theta in BT units, 0 = component mean */
    uint32_t components;
} joust_model_report;

models_t *models_new(void);
void models_destroy(models_t **self_p);
/* Adds one prompt: model[i] is image i's model name (NULL: none), o its OK
 * outcomes (local indices). Images without a model take no part. */
void models_add_prompt(models_t *m, uint64_t pid, uint32_t n, const char *const *model,
                       const joust_outcome *o, size_t k);
/* Fits the models (report->n == 0 when fewer than two models compared). */
int models_fit(models_t *m, joust_model_report *report);
void joust_model_report_clear(joust_model_report *r);
/* Writes the report as JSONL (model, score, lo, hi, comparisons, component). */
int joust_model_report_write(const joust_model_report *r, const char *path);
void joust_model_report_print(const joust_model_report *r, FILE *out);

#endif
