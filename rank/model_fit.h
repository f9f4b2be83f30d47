/* Model-level Bradley-Terry: scores of generator models (or checkpoints)
 * from cross-model image comparisons, with confidence intervals from a
 * cluster bootstrap over prompts (docs/ranking.md §1.6).
 *
 * Outcomes are first summed into cells (model a, model b, prompt) with
 * a < b: soft wins of a and the number of comparisons, as FastChat does.
 * The fit is joust_bt_fit over one edge per cell (s = wins / count, weight =
 * count). Bootstrap: each round draws multinomial weights over the prompts
 * (P draws with replacement from the P prompts), multiplies every cell's
 * weight by its prompt's count and refits; only the weights change between
 * rounds. CIs are percentile intervals of the rounds. Each round's draws come
 * from the seed alone (the generator's state at each round is fixed before
 * any round runs), so `threads` changes the speed, never the numbers. A
 * round costs O(cells of the prompts it drew) plus a fit over one edge per
 * model pair.
 * Gauge: scores are comparable only inside a connected component of the
 * comparison graph (docs/ranking.md §1.5). Each component is shifted so that its
 * anchor model scores 0 (when the anchor is in it) or else so that its
 * members' mean is 0; bootstrap rounds are shifted the same way, so a CI is
 * the uncertainty relative to that reference.
 * Pure functions over caller-owned arrays; thread-safe (the bootstrap starts
 * opts.threads - 1 threads of its own and joins them before returning; one
 * that cannot start leaves its rounds to the caller's thread); deterministic
 * for a seed. Errors: 0 or JOUST_EINVAL; memory from xmalloc (aborts on OOM). */
#ifndef JOUST_MODEL_FIT_H
#define JOUST_MODEL_FIT_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t prompt;                    /* any id: the bootstrap's cluster */
    uint32_t model_first, model_second; /* model indices < n_models */
    double p_first;                     /* judge's P(first image preferred), in [0,1] */
} joust_model_outcome;

typedef struct {
    uint64_t prompt;
    uint32_t a, b;   /* a < b */
    double wins_a;   /* soft wins of a over b in this prompt */
    double count;    /* comparisons (wins of b = count - wins_a) */
} joust_model_cell;

/* Sums outcomes into cells, sorted by (prompt, a, b), in a new array *cells
 * (xmalloc; caller frees; NULL when there are none). Outcomes between two
 * images of the same model carry nothing about the models and are skipped.
 * @return 0, or JOUST_EINVAL (outputs untouched) for a model index >=
 *   n_models or p_first not finite or outside [0,1]. */
int joust_model_cells(uint32_t n_models, const joust_model_outcome *o, size_t m,
                      joust_model_cell **cells, size_t *n_cells);

typedef struct {
    double prior_games; /* joust_bt_fit's dummy-player prior; default 1 */
    int rounds;         /* bootstrap rounds; default 200; 0 = no intervals */
    double level;       /* interval level in (0,1); default 0.95 */
    uint64_t seed;      /* bootstrap draws; default 1 */
    int64_t anchor;     /* model index pinned to 0 in its component; -1 (default):
                           every component centred on its mean */
    int threads;        /* threads for the bootstrap rounds (default 1) */
} joust_model_fit_opts;

void joust_model_fit_opts_defaults(joust_model_fit_opts *o);

typedef struct {
    double theta;       /* point estimate, in the component's gauge */
    double lo, hi;      /* percentile interval; NaN without rounds or without data */
    double sd;          /* bootstrap standard deviation; NaN likewise */
    double comparisons; /* comparisons that involve the model */
    uint32_t component; /* numbered 0.. in order of the lowest model index */
} joust_model_score;

/* Fits n_models scores from nc cells (cells with count 0 are ignored; cells
 * need not be sorted). out[n_models] is caller-allocated. *n_components
 * (nullable) gets the number of components; a model without comparisons is a
 * component of its own with theta 0.
 * @return 0, or JOUST_EINVAL (outputs untouched) for invalid opts, a cell
 *   with a >= b or b >= n_models, count not finite or < 0, or wins_a outside
 *   [0, count]. */
int joust_model_fit(uint32_t n_models, const joust_model_cell *cells, size_t nc,
                    const joust_model_fit_opts *o, joust_model_score *out,
                    uint32_t *n_components);

/* joust_model_fit, and the bootstrap's percentile intervals of the pairwise
 * soft win rates: rate_lo/rate_hi[n_models * n_models] (caller-allocated;
 * row i, column j: model i's share of the soft wins (unclipped) over its
 * comparisons with j, in the prompts a round drew; NaN on the diagonal,
 * for pairs never compared and without rounds). */
int joust_model_fit_rates(uint32_t n_models, const joust_model_cell *cells, size_t nc,
                          const joust_model_fit_opts *o, joust_model_score *out,
                          uint32_t *n_components, double *rate_lo, double *rate_hi);

/* One side of a paired bootstrap. */
typedef struct {
    uint32_t n_models;
    const joust_model_cell *cells; /* prompt: a shared prompt index < n_prompts */
    size_t n_cells;
    int64_t anchor;                /* as joust_model_fit_opts.anchor (whose own is ignored) */
    joust_model_score *score;      /* out [n_models]: as joust_model_fit's */
    double *boot;                  /* out [rounds * n_models], round r at r * n_models
                                      (gauged); NULL: not kept */
} joust_model_paired;

/* Two fits over the same n_prompts prompts (say two nights of one prompt
 * set) with a paired bootstrap: every round draws one sample of the prompts
 * and refits both sides with it, so x->boot[r] - y->boot[r] is a round of
 * the difference. A side is fitted as joust_model_fit does (the same draws
 * for the same seed and n_prompts).
 * @return 0, or JOUST_EINVAL (outputs untouched) as joust_model_fit, or for
 *   a cell whose prompt is >= n_prompts. */
int joust_model_fit_paired(uint32_t n_prompts, joust_model_paired *x, joust_model_paired *y,
                           const joust_model_fit_opts *o);

#endif
