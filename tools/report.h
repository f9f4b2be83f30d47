/* `joust report`: everything one report shows, gathered from one or two
 * stores (report_data.h for the numbers), and its three writers: a
 * self-contained report.html (inline SVG plots, base64 JPEG thumbnails, a
 * Content-Security-Policy that forbids any network request), report.json
 * (every number) and report.md (a short summary). docs/report.md.
 *
 * Ownership: a rep_report owns its gallery, trend and strings
 * (rep_report_clear) but borrows its nights and comparison.
 * Threads: none; one caller.
 * Errors: writers return 0 or JOUST_EIO (logged, the file left as it was:
 * coordinator/output.h's atomic files); the gallery returns the store's
 * errors. An image that cannot be read gets no thumbnail, with its reason. */
#ifndef JOUST_REPORT_H
#define JOUST_REPORT_H
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "report_data.h"

typedef struct {
    uint64_t match_id;
    uint32_t first, second; /* dense image indices of the night */
    double p_first;
    char *reason;           /* excerpt, NULL when none */
} rep_match;

typedef struct {
    uint32_t a, b;          /* model indices */
    rep_match *closest, *decisive;
    size_t n_closest, n_decisive;
} rep_pair_gallery;

typedef struct {
    uint32_t prompt;        /* dense prompt index */
    char *caller_id;        /* the manifest's prompt_id, NULL when none */
    char *text;
    uint32_t *images;       /* dense image indices, best score first */
    size_t n;
} rep_prompt_gallery;

typedef struct {
    char *run;
    int complete;
    double *theta, *lo, *hi; /* per model of today's night (NaN: absent) */
} rep_trend_point;

typedef struct {
    const rep_night *today;
    const rep_night *before;   /* NULL without --compare */
    const rep_compare *cmp;    /* NULL without --compare */
    char *before_label;        /* "RUN" or "STORE:RUN" */
    const char *baseline;      /* NULL: models' mean is 0 */
    const char *by;            /* --by FIELD, NULL: none */
    rep_pair_gallery *pairs;
    size_t n_pairs;
    rep_prompt_gallery *prompts;
    size_t n_prompts;
    char **thumbs;             /* per image of today: "data:image/jpeg;base64,..." or NULL */
    char **thumb_err;          /* why an image has no thumbnail, or NULL */
    size_t thumb_bytes;        /* base64 bytes of all thumbnails */
    size_t thumb_failed;       /* images that got no thumbnail */
    rep_trend_point *trend;
    size_t n_trend;
    const char *series;
    double margin;             /* --fail-on-regression margin */
    int gate;                  /* --fail-on-regression given */
    int *watched;              /* per model: 1 when the gate watches it */
    int *regressed;            /* per model: significantly worse by more than margin */
    int n_regressed;
    cJSON *eval;               /* --eval: a `joust eval` eval.json, owned; NULL: none */
    const char *eval_path;
} rep_report;

typedef struct {
    size_t per_pair;           /* closest and decisive matches per model pair */
    size_t prompts;            /* prompts shown with all their images */
    int thumb_side;            /* longest side of a thumbnail, px */
    int thumb_quality;         /* JPEG quality */
    size_t thumb_budget;       /* thumbnails stop once their base64 bytes pass it (4 MiB) */
    const char *image_root;    /* relative image paths resolve under it; NULL: cwd */
    const char *const *pair_sel; /* --gallery-pair "A,B": only these model pairs; none: all */
    size_t n_pair_sel;
    const char *const *prompt_sel; /* --gallery-prompt ID: these prompts (by the manifest's
                                      prompt_id, else by text) instead of the first `prompts` */
    size_t n_prompt_sel;
} rep_gallery_opts;

/* Picks the gallery's matches and prompts, reads their rationales and
 * makes the thumbnails of the images they show. A selected pair naming a
 * model the run lacks (or a model twice), or a selected prompt the run
 * lacks, is JOUST_EINVAL, logged with the selection and the reason. */
int rep_gallery_build(joust_store_t *st, uint32_t run_id, const rep_gallery_opts *o,
                      rep_report *r);
void rep_report_clear(rep_report *r);

int rep_write_html(const rep_report *r, const char *path);
int rep_write_json(const rep_report *r, const char *path);
int rep_write_md(const rep_report *r, const char *path);

/* HTML text with <, >, &, " and ' escaped. */
void rep_html_esc(joust_buf_t *b, const char *s);

/* report_eval.c, `--eval FILE`: reads and checks an eval.json of `joust
 * eval` (0; JOUST_EINVAL, or safe_open's errors, logged with the file's
 * name and the reason); its section of report.html and its lines of
 * report.md. report.json embeds the file as it is under "eval". */
int rep_eval_load(const char *path, cJSON **out);
void rep_eval_html(joust_buf_t *b, const cJSON *ev, const char *path);
void rep_eval_md(joust_buf_t *b, const cJSON *ev);

#endif
