/* Model-level scores of a run: the generator models (manifest "model") are
 * compared through the outcomes of their images on the same prompt, fitted
 * with Bradley–Terry and given bootstrap confidence intervals over prompts
 * (rank/model_fit.h). Fed one prompt at a time while scoring; memory is one
 * cell per (prompt, model pair). The report is written and printed by
 * coordinator/output.h.
 * Ownership: a models_t owns its names; a report owns its arrays
 * (joust_model_report_clear). Threads: not thread-safe; one per caller.
 * Errors: models_fit returns 0 or JOUST_EINVAL from the fit; out of memory
 * aborts (xmalloc). */
#ifndef JOUST_MODELS_H
#define JOUST_MODELS_H
#include <stddef.h>
#include <stdint.h>

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
/* A small id for a model name (the same name, the same id). A name
 * becomes one of the report's models when a prompt with outcomes uses it,
 * numbered in the order of that first use. */
uint32_t models_intern(models_t *m, const char *name);
/* Adds one prompt: model[i] is image i's name id from models_intern
 * (UINT32_MAX: none), o its OK outcomes (local indices). Images without a
 * model take no part. */
void models_add_prompt(models_t *m, uint64_t pid, uint32_t n, const uint32_t *model,
                       const joust_outcome *o, size_t k);
/* Fits the models (report->n == 0 when fewer than two models compared). */
int models_fit(models_t *m, joust_model_report *report);
void joust_model_report_clear(joust_model_report *r);

#endif
