/* Filter: keeps or drops a manifest's lines by what joust knows about their
 * images (scores, ranks, percentiles, failures, duplicates, sizes) and by
 * the lines' own fields, and writes the kept lines — byte for byte, so the
 * result is a manifest of the same format for training or another run —
 * plus a rejected list with the reason for every line left out
 * (`joust filter`, docs/filter.md).
 *
 * Predicates, one per --keep (a line is kept only when every --keep holds),
 * --drop (a line is dropped when any --drop holds) or --where (a --keep on
 * the line's own fields): NAME, or NAME OP VALUE with OP one of = != < <= >
 * >=. NAME is one of
 *   score, rank, wins, comparisons      the run's stored score record
 *   percentile                          scoring's, within the image's group
 *                                       (its prompt unless the run groups
 *                                       otherwise): the mid-rank, 100 * (images
 *                                       scored lower + 1/2) / n
 *   global_percentile                   the same over every ranked image of
 *                                       the run (only < <= > >=)
 *   status                              ranked, error or unjudged
 *   error, duplicate, ranked            bare: the image failed (an image
 *                                       error); its content is the same as
 *                                       an earlier image's, or `run --dedup`
 *                                       collapsed it (duplicate_of); it has
 *                                       a rank
 *   width, height, aspect (= w / h)     the line's "width" and "height",
 *                                       else the image's signature (joust
 *                                       dedup) when the store has one
 *   bytes                               the image file's size (signature,
 *                                       else the local file or tar member)
 * or any other name: the line's top-level field of that name (with --where
 * every name is a field). A number compares as a number when both sides are
 * numbers, else as text (= and != only). A predicate whose value is unknown
 * for a line (no score, no width) does not hold: a --keep rejects the line
 * saying so, a --drop keeps it. A line that is not a valid manifest line is
 * rejected with its reason.
 *
 * The store is read only when a predicate needs it; the manifest must then
 * have been ingested into it (its lines are matched to images through the
 * line numbers ingest kept) and the run's scores are refitted first when
 * they are not current. Memory: constant in the manifest's length (the
 * store is read along one image cursor and one score cursor; a global
 * percentile costs a few passes over the run's scores, no sorted copy).
 * Output: the kept manifest compressed as its name says (.gz gzip, .zst or
 * .zstd zstd, else plain), whatever the input was; the rejected list as
 * JSONL {"line","id","image","reason"}; both written whole or not at all
 * (output.h's atomic files).
 * Errors: 0 or a negative JOUST_E* code; a bad predicate is JOUST_EINVAL
 * with err naming it and the reason. Threads: one filter per thread. */
#ifndef JOUST_FILTER_H
#define JOUST_FILTER_H
#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct joust_filter joust_filter_t;

typedef enum { JOUST_FILTER_KEEP, JOUST_FILTER_DROP, JOUST_FILTER_WHERE } joust_filter_verb;

joust_filter_t *joust_filter_new(void);
void joust_filter_destroy(joust_filter_t **self_p);
/* Parses one predicate. JOUST_EINVAL with the reason in err. */
int joust_filter_add(joust_filter_t *f, joust_filter_verb verb, const char *expr, char *err,
                     size_t errlen);
/* 1 when a predicate needs the store (scores, duplicates, bytes). */
int joust_filter_needs_store(const joust_filter_t *f);
/* 1 when a predicate needs it or can use it: width, height and aspect come
 * from the line's fields, else from the image's signature (joust dedup)
 * when the store holds the manifest. */
int joust_filter_uses_store(const joust_filter_t *f);

typedef struct {
    const char *manifest;  /* a path or "-" (manifest_src.h: plain, gz, zst, shards) */
    const char *out;       /* the kept lines */
    const char *rejected;  /* the rejected list */
    joust_store_t *st;     /* NULL unless needs_store */
    const char *run;       /* the run whose scores count */
} joust_filter_io;

typedef struct {
    uint64_t lines, kept, rejected;
    uint64_t *by_pred; /* rejections per predicate, in the order added (owned by f) */
    size_t n_preds;
} joust_filter_stats;

/* Filters io->manifest. JOUST_ENOTFOUND when the store does not hold the
 * manifest or the run; JOUST_EIO when an output cannot be written. */
int joust_filter_run(joust_filter_t *f, const joust_filter_io *io, joust_filter_stats *stats);
/* The predicate as given ("keep score>0.5"), for summaries. */
const char *joust_filter_pred_text(const joust_filter_t *f, size_t i);

#endif
