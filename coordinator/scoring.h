/* Scoring: fits soft Bradley–Terry to a run's committed outcomes (the store
 * alone) and writes the `scores` column family; the files and the terminal
 * report are coordinator/output.h.
 *
 * How: one pass over the run's outcomes — its outcome log when it has one
 * (storage/records.h: few large records, replayed into one slot per match
 * id and walked in id order), else its outcome records — read through
 * records.h's views (no protobuf-c unpacking; hashed as they are read, in
 * parallel over seq or match id ranges), put in the order (prompt id, match id) — decided once,
 * whatever order they were committed in (docs/storage.md) — then every
 * planned prompt fitted by the bulk fitter (rank/bt_bulk.h; on the CPU in
 * blocks of prompts, opts.fit_block; the CUDA fitter rank/cuda/bt_cuda.h in
 * one call when built and chosen), then the model-level fit with its
 * bootstrap (coordinator/models.h). Memory: ~17 bytes an OK outcome
 * (given back block by block as they are tallied and fitted) and ~60 an
 * image, plus one block's edges.
 * Results: the scores of a prompt equal joust_prompt_fit on its outcomes to
 * within the Newton tolerance (1e-9 in tests/coordinator/test_scoring.c):
 * the bulk fitter reads p as a float, so a p that is not one is passed as
 * two edges that carry its rounding error (scoring.c, build_edges). Images
 * whose scores tie exactly in one fit may come out in either order in the
 * other (the last bits differ). The CPU path is deterministic: the same store and
 * options give byte-identical scores. Images whose matches failed because
 * of the image itself carry an error and no score; the others of their
 * prompt are fitted without them.
 * Currency: the scores are written with a marker (RunRecord.scores_from,
 * docs/storage.md) naming what they were fitted from — a digest of the run's outcome records, the
 * planned prompts, the images, and the weights the options gave each kind
 * of outcome — so joust_scores_ensure can reuse them instead of fitting and
 * writing again.
 * Ownership: nothing is retained between calls; a summary owns its model
 * report (joust_score_summary_clear).
 * Threads: a call reads the outcomes on up to `threads` threads (16 match
 * id ranges, each along its own cursor) and fits on the bulk fitter's own
 * threads, all joined before it returns; the store must not be written by
 * anyone else during a call (the CLI holds the store's lock).
 * Errors: 0; JOUST_EINVAL for bad options; JOUST_EUNSUPPORTED when CUDA is
 * asked for and not built or no device is usable (the message says which);
 * JOUST_ESTORE from the store. Corrupt outcome records are logged and
 * skipped. Out of memory aborts (xmalloc). */
#ifndef JOUST_SCORING_H
#define JOUST_SCORING_H
#include <stdint.h>

#include "eval.h"
#include "joust.pb-c.h"
#include "models.h"
#include "prompt_fit.h"
#include "records.h"
#include "store.h"

/* Where the image-level fit runs. AUTO: CUDA when built and a device is
 * usable, else the CPU. */
typedef enum { JOUST_DEVICE_AUTO = 0, JOUST_DEVICE_CPU, JOUST_DEVICE_CUDA } joust_device;

/* "auto" | "cpu" | "cuda"; JOUST_EINVAL otherwise. */
int joust_device_parse(const char *s, joust_device *out);
const char *joust_device_name(joust_device d);

/* Outcome kinds (proto OutcomeKind, absent = SOFT) by strength of
 * evidence: SOFT (p from logprobs) > BOUNDED (logprobs of one side only) >
 * HARD (the text alone). "soft" | "bounded" | "hard" -> the enum value;
 * JOUST_EINVAL otherwise. */
int joust_kind_parse(const char *s, int *kind);
/* "soft", "bounded", "hard", or "unknown". */
const char *joust_kind_name(int kind);

typedef struct {
    joust_device device; /* default AUTO */
    double hard_weight;  /* weight of a HARD outcome in the image fit, >= 0 (used as a
                            float); 0 leaves them out everywhere, like min_kind;
                            default 1 (every outcome weighs 1). Wins, comparisons,
                            the position bias and the model fit count a kept
                            outcome once whatever its weight */
    int min_kind;        /* weakest kind used (JOUST__OUTCOME_KIND__*); weaker OK
                            outcomes are left out; default HARD (all) */
    int threads;         /* fitter threads; 0 (default): one per online CPU */
    const joust_calibration *calibration; /* NULL (default): p as judged; else every OK
                            outcome's p_first is replaced by joust_calibration_apply's
                            p' (rank/eval.h) before the fit (`joust run --calibration`) */
    size_t fit_block;    /* outcomes per call of the CPU fitter (prompts are never
                            cut; the edges of one block are all that exists of them
                            at a time); 0 (default): 2^21. The scores are the same
                            bits for any block */
    int outcomes;        /* where the outcomes are read from: JOUST_OUTCOMES_AUTO
                            (default): a run's outcome log when it has one
                            (storage/records.h), else the scan of its outcome
                            records; _SCAN: always the scan; _LOG: the log, and
                            JOUST_EINVAL for a run without one. The same scores,
                            bit for bit; the marker's digest differs (so a fit
                            read one way is not current for the other) */
} joust_score_opts;

enum { JOUST_OUTCOMES_AUTO = 0, JOUST_OUTCOMES_SCAN, JOUST_OUTCOMES_LOG };
/* "auto" | "scan" | "log"; JOUST_EINVAL otherwise. */
int joust_outcomes_parse(const char *s, int *out);

void joust_score_opts_defaults(joust_score_opts *o);

typedef struct {
    uint64_t prompts, images, scored, image_errors;
    uint64_t unjudged;          /* images without a comparison: no score, no rank */
    uint64_t outcomes_ok, outcomes_failed;
    uint64_t kinds[4];          /* OK outcomes by kind (index: the enum value; 0 unused) */
    uint64_t outcomes_left_out; /* OK outcomes below min_kind, or HARD with weight 0 */
    joust_position_bias bias;   /* pooled over all prompts of the run */
    joust_model_report models;  /* generator models, when images name two or more */
    joust_device device;        /* where the fit ran: CPU or CUDA */
    double read_s, fit_s, write_s; /* wall time: reading, fitting (images and models), writing */
} joust_score_summary;

/* Frees what a summary owns (the model report). */
void joust_score_summary_clear(joust_score_summary *sum);

/* What a fit gave the run's images, kept in memory so that the files
 * (output.h) are written without reading the scores back: prompt p (ids
 * pid[p], ascending) owns the items [item_off[p], item_off[p+1]), whose
 * image ids ids[] are in id order; per item the values of its score record.
 * About 56 bytes per image. */
typedef struct {
    size_t np, ni;
    uint64_t *pid, *item_off, *ids;
    double *score, *stderr, *wins; /* score, stderr: only with a rank */
    uint32_t *cmp;
    uint32_t *rank;  /* 1 = best within the prompt; 0: no rank, no score (an
                        image error, or no comparison) */
    uint32_t *error; /* 0, or 1 + the index of the image's error in errors */
    double *pct;     /* percentile within the prompt (group), with a rank */
    uint32_t *comp;  /* component of the sparse fit, when ncomp[p] > 0 */
    uint32_t *ncomp; /* per prompt: its components (0: not a sparse fit) */
    char **errors;
    size_t nerrors;
    unsigned char from[52]; /* the marker: what the fit was made from */
} joust_score_table;

/* Frees a table and sets *t_p to NULL; NULL is a no-op. */
void joust_score_table_destroy(joust_score_table **t_p);

/* Fits every planned prompt of the run and rewrites its scores and the
 * marker (o NULL: defaults). *sum is overwritten. */
int joust_scores_compute(joust_store_t *st, const Joust__RunRecord *run,
                         const joust_score_opts *o, joust_score_summary *sum);
/* The same, and *table (nullable; NULL on failure) gets what was written,
 * owned by the caller. */
int joust_scores_compute_table(joust_store_t *st, const Joust__RunRecord *run,
                               const joust_score_opts *o, joust_score_summary *sum,
                               joust_score_table **table);

/* The two halves of joust_scores_compute_table. _fit reads, fits and
 * ranks into *table (NULL on failure) and writes nothing; _store writes the
 * table's scores and, last and synced, the marker (*seconds, nullable: how
 * long it took). _store only reads the table, so it may run on another
 * thread while the files are written from the same table (the files read
 * the prompt and image records, never the scores). */
int joust_scores_fit(joust_store_t *st, const Joust__RunRecord *run, const joust_score_opts *o,
                     joust_score_summary *sum, joust_score_table **table);
int joust_scores_store(joust_store_t *st, const Joust__RunRecord *run, const joust_score_table *t,
                       double *seconds);
/* joust_scores_store with the way the score records are written chosen:
 * AUTO (joust_scores_store's) loads tables of 16384 scores or more and
 * puts smaller ones; PUT writes them in batches through the memtable;
 * LOAD writes them as SST files (store.h joust_store_load: no WAL, no
 * memtable, no flush), a file per 2^20 records in image id order. The
 * records, the marker and what readers see afterwards are the same bytes
 * either way; either way the old marker is removed first and the new one
 * written last and synced, so a crash half-way leaves no marker. */
typedef enum { JOUST_SCORES_AUTO = 0, JOUST_SCORES_PUT, JOUST_SCORES_LOAD } joust_scores_write;
int joust_scores_store_how(joust_store_t *st, const Joust__RunRecord *run,
                           const joust_score_table *t, joust_scores_write how, double *seconds);
/* joust_scores_store on a thread of its own (here, when no thread can be
 * started); _join waits for it and returns its result. The table and the
 * run must outlive the join. */
typedef struct joust_scores_storer joust_scores_storer_t;
void joust_scores_store_start(joust_store_t *st, const Joust__RunRecord *run,
                              const joust_score_table *t, joust_scores_storer_t **out);
int joust_scores_store_join(joust_scores_storer_t **w, double *seconds);

/* *current = 1 when the stored scores were fitted from the run's present
 * outcomes, prompts and images with options that weigh them the same way
 * as o (the device and threads do not count). Reads the outcomes' raw
 * bytes once; decodes nothing. */
int joust_scores_current(joust_store_t *st, const Joust__RunRecord *run,
                         const joust_score_opts *o, int *current);

/* Positions c on the record with this id: stays when it is already there,
 * else seeks, so records read in ascending id order cost a step each.
 * 1 when that record exists, else 0. */
int joust_cursor_find(joust_rec_cursor_t *c, uint64_t id);

/* joust_scores_compute unless the stored scores are current for o.
 * *refitted (nullable) says which; when they were current *sum holds only
 * zeros (and an empty model report). */
int joust_scores_ensure(joust_store_t *st, const Joust__RunRecord *run,
                        const joust_score_opts *o, joust_score_summary *sum, int *refitted);

#endif
