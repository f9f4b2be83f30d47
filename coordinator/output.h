/* Output: what a run's scores become outside the store — scores.jsonl,
 * scores.csv, models.jsonl, the DPO export — and the terminal report.
 * Reads the `scores` column family written by coordinator/scoring.h (and
 * the prompt and image records), or takes the scores from the table of the
 * fit that wrote them; never fits.
 *
 * Files are written whole or not at all: into a temporary file beside the
 * final name (NAME.tmp-PID), flushed, fsynced, then renamed over NAME and
 * the folder fsynced. A failed write (ENOSPC, EFBIG, EIO, ...) removes the
 * temporary file, leaves an existing NAME as it was, logs "writing NAME
 * failed: <reason>" and returns JOUST_EIO. The final name is never opened,
 * so a FIFO or device in its place is replaced, not written to.
 * Deterministic: the same store gives byte-identical files.
 * Ownership: records handed to a walk callback are borrowed for the call;
 * a joust_outfile_t is owned by its opener until commit or abort.
 * Threads: joust_scores_export_table writes the second half of the files
 * on a thread of its own (into side files NAME.part2.tmp-PID, appended to
 * the first half and removed; joined before it returns); otherwise none.
 * Not thread-safe (one caller at a time per store).
 * Errors: 0, JOUST_EIO (a file), or the store's error; a walk callback's
 * negative return is passed through. */
#ifndef JOUST_OUTPUT_H
#define JOUST_OUTPUT_H
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "joust.pb-c.h"
#include "models.h"
#include "scoring.h"
#include "store.h"

/* ----------------------------------------------------- atomic files --- */

typedef struct joust_outfile joust_outfile_t;

/* Creates the temporary file for path. JOUST_EIO (logged) when it cannot. */
int joust_outfile_open(const char *path, joust_outfile_t **out);
/* Appends len bytes; a failure is remembered and reported at commit. */
void joust_outfile_write(joust_outfile_t *f, const void *data, size_t len);
/* Flushes, fsyncs and renames over the final name; on any failure removes
 * the temporary file and returns JOUST_EIO (logged with the name and the
 * reason). Consumes *f_p and sets it to NULL (NULL is a no-op). */
int joust_outfile_commit(joust_outfile_t **f_p);
/* The whole of data as path, through open/write/commit above. 0 or JOUST_EIO (logged). */
int joust_outfile_write_all(const char *path, const void *data, size_t len);
/* Removes the temporary file; the final name is untouched. NULL-safe. */
void joust_outfile_abort(joust_outfile_t **f_p);

/* ------------------------------------------------------ scored walk --- */

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
 * return from fn stops the walk (a positive one is not an error, and the
 * walk then returns 0). Image and score records are read along one
 * iterator each. */
int joust_scores_walk(joust_store_t *st, const Joust__RunRecord *run,
                      int (*fn)(const joust_scored_prompt *sp, void *arg), void *arg);

/* ---------------------------------------------------------- exports --- */

/* Writes the run's scores as JSONL and/or CSV (either path may be NULL). */
int joust_scores_export(joust_store_t *st, const Joust__RunRecord *run, const char *jsonl_path,
                        const char *csv_path);
/* The same files from the table of the fit that wrote the scores
 * (scoring.h), byte for byte: the numbers come from memory, the prompt and
 * image records are read once each (a cursor along each per half: tables
 * of 64 images or more are written in two halves at once), nothing
 * else. */
int joust_scores_export_table(joust_store_t *st, const Joust__RunRecord *run,
                              const joust_score_table *table, const char *jsonl_path,
                              const char *csv_path);
/* The DPO export is coordinator/export_dpo.h. */
/* An image's caller id, else its numeric id written into buf. */
const char *joust_image_label(const Joust__ImageRecord *img, char *buf, size_t len);
/* Appends a prompt's caller id as a JSON string, else its numeric id. */
void joust_json_prompt_id(joust_buf_t *b, const Joust__PromptRecord *p);
/* Writes the model report as JSONL (model, score, lo, hi, comparisons,
 * component), best first within each component. */
int joust_model_report_write(const joust_model_report *r, const char *path);

/* --------------------------------------------------------- terminal --- */

/* Prints the best `top` images of the first `max_prompts` prompts. */
int joust_scores_print_top(joust_store_t *st, const Joust__RunRecord *run, FILE *out,
                           int max_prompts, int top);
/* Prints up to `max` failed images with their reasons. */
int joust_scores_print_errors(joust_store_t *st, const Joust__RunRecord *run, FILE *out, int max);
void joust_model_report_print(const joust_model_report *r, FILE *out);

/* The outputs of a scored run: out_dir (created when missing)/scores.jsonl,
 * scores.csv and, when sum names two or more models, models.jsonl; then,
 * when report is not NULL, the summary, position bias, failed images, top
 * images and models printed to it. Stops at the first file that fails.
 * table: the fit's (joust_scores_compute_table), or NULL to read the
 * scores from the store (a grouped run's files always are: they list the
 * images by prompt, not by group). */
int joust_output_scores(joust_store_t *st, const Joust__RunRecord *run,
                        const joust_score_summary *sum, const joust_score_table *table,
                        const char *out_dir, FILE *report);
/* Its two halves: the files (a table's export reads no score record, so
 * joust_scores_store may be writing them meanwhile), and the report
 * (which reads the stored scores: after they are written). */
int joust_output_files(joust_store_t *st, const Joust__RunRecord *run,
                       const joust_score_summary *sum, const joust_score_table *table,
                       const char *out_dir);
void joust_output_report(joust_store_t *st, const Joust__RunRecord *run,
                         const joust_score_summary *sum, const char *out_dir, FILE *report);

#endif
