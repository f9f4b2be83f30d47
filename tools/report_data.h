/* The numbers of one run for `joust report` (docs/report.md): what the
 * store holds about the run (its OK outcomes, the images and prompts they
 * involve, the stored per-image scores, the failure counts) summarised into
 * model scores anchored to a baseline model with bootstrap intervals over
 * prompts (rank/model_fit.h), the pairwise win-rate matrix, per-category
 * fits, judge-health figures, and the comparison of two runs (a paired
 * bootstrap over the prompts they share) — everything the writers
 * (report_html.h, report_write.h) print. Never fits per-image scores itself.
 *
 * Ownership: a rep_night owns all its arrays (rep_night_clear); strings in
 * rep_opts are borrowed. Threads: none started; one caller per rep_night.
 * Errors: 0 or a negative JOUST_E* code: JOUST_ENOTFOUND (no such run),
 * the store's errors, JOUST_EINVAL (a baseline model the run lacks; logged).
 * Out of memory aborts (xmalloc). Nothing aborts on stored bytes. */
#ifndef JOUST_REPORT_DATA_H
#define JOUST_REPORT_DATA_H
#include <stddef.h>
#include <stdint.h>

#include "model_fit.h"
#include "records.h"
#include "store.h"

typedef struct {
    const char *baseline;   /* model pinned to 0; NULL: models' mean is 0 */
    const char *by;         /* manifest metadata field for categories; NULL: none */
    int rounds;             /* bootstrap rounds (default 200) */
    uint64_t seed;
    int prompt_keys;        /* read the prompt records for prompt_key (--compare needs them) */
    int cells_only;         /* stop at the cells: no fits, win rates, categories or judge
                               health (score, cats, win* stay NULL), no stored scores
                               (img_score NaN): what rep_compare_nights needs of the run
                               compared with */
    const struct rep_night *known; /* a night of the same store whose image records (model,
                               prompt) are taken instead of read again; NULL: none. Not
                               with `by` */
} rep_opts;

typedef struct {
    uint64_t match_id;
    uint32_t prompt;        /* dense prompt index */
    uint32_t first, second; /* dense image indices */
    double p_first;
    uint8_t kind;           /* 1 soft, 2 bounded, 3 hard (absent = soft) */
    int64_t latency_us;     /* -1: unknown */
    uint32_t tokens;
} rep_outcome;

typedef struct {
    char *name;
    uint32_t n_models;
    joust_model_score *score;
    double *prompts;        /* per model: prompts in this category where it was compared */
} rep_category;

typedef struct rep_night {
    char *run_name;
    uint32_t run_id;
    int complete;
    int64_t created_ms;
    uint64_t planned;       /* matches planned so far */
    char judge[64];
    joust_run_counts counts;
    uint64_t reused;          /* outcomes copied from earlier runs, not judged (RunRecord.outcomes_reused) */

    uint32_t n_models;
    char **models;
    int32_t baseline;       /* model index or -1 */
    joust_model_score *score;
    uint32_t components;
    double *win, *games;    /* n_models^2: soft wins of row over column, comparisons */
    double *win_lo, *win_hi; /* n_models^2: 95 % bootstrap interval (over prompts, the rounds
                               of the score intervals) of the row's win rate; NaN: none */

    size_t n_images;
    uint64_t *img_id;       /* ascending */
    uint32_t *img_model;    /* UINT32_MAX: no model */
    uint32_t *img_prompt;   /* dense prompt index */
    double *img_score;      /* stored score, NaN when none */

    size_t n_prompts;
    uint64_t *prompt_id;    /* ascending */
    uint64_t *prompt_key;   /* hash of the caller's prompt id, else of the text; 0 unless
                               rep_opts.prompt_keys */
    uint32_t *prompt_cat;   /* category index, UINT32_MAX: none */

    uint32_t n_cats;
    rep_category *cats;

    size_t n_out;
    rep_outcome *out;       /* OK outcomes in match order */
    joust_model_cell *cells; /* prompt = dense prompt index */
    size_t n_cells;

    /* judge health */
    uint64_t kinds[4];      /* [1] soft, [2] bounded, [3] hard */
    double p_first_mean;    /* position bias: 0.5 when none */
    uint64_t both_orders, agree; /* pairs judged in both orders; same winner in both */
    double lat_ms[3];       /* p50, p90, p99; NaN when unknown */
    uint64_t tokens_total, tokens_n;

    double read_s, fit_s;   /* seconds spent reading the store and fitting (the rest) */
} rep_night;

void rep_opts_defaults(rep_opts *o);
/* Loads run `name` from st and computes everything above. */
int rep_night_load(joust_store_t *st, const char *name, const rep_opts *o, rep_night *out);
void rep_night_clear(rep_night *n);
/* Dense index of image_id, or SIZE_MAX. */
size_t rep_night_image(const rep_night *n, uint64_t image_id);
/* Dense index of prompt_id, or SIZE_MAX. */
size_t rep_night_prompt(const rep_night *n, uint64_t prompt_id);

/* Night-to-night delta of each model of `today` also in `before`: both
 * fitted on the prompts they share (matched by prompt key), anchored the
 * same way, with a paired bootstrap over those prompts
 * (joust_model_fit_paired: each round draws the same prompts for both). */
typedef struct {
    uint32_t n;             /* = today->n_models */
    int32_t *before_idx;    /* model index in before, -1: absent */
    double *delta, *lo, *hi; /* today - before; NaN when absent */
    int *significant;       /* interval excludes 0 */
    size_t shared_prompts;
} rep_compare;

int rep_compare_nights(const rep_night *today, const rep_night *before, const rep_opts *o,
                       rep_compare *out);
void rep_compare_clear(rep_compare *c);

#endif
