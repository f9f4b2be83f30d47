/* What a run's outcomes add up to, and what to do about its failures:
 * counts by final status with one example reason each (for the summary,
 * the exit status and `joust status`), the --max-failed threshold, and
 * --retry-failed (judge a finished run's failed matches again, once).
 * Reads and writes the store (storage/); one thread at a time per store.
 * Errors: 0 or a negative JOUST_E* code from the store. */
#ifndef JOUST_TALLY_H
#define JOUST_TALLY_H
#include <stdint.h>
#include <stdio.h>

#include "joust.pb-c.h"
#include "records.h"
#include "store.h"

/* The failure classes of joust_run_counts (storage/records.h), in order. */
enum {
    JOUST_FAIL_IMAGE_ERROR,
    JOUST_FAIL_UNPARSEABLE,
    JOUST_FAIL_INFRA_ERROR,
    JOUST_FAIL_CONFIG_ERROR,
    JOUST_FAIL_ABANDONED,
    JOUST_FAIL_CLASSES
};

typedef struct {
    uint64_t planned;                /* the run's planned matches */
    joust_run_counts counts;         /* its outcomes by class (kept in the run record) */
    char example[JOUST_FAIL_CLASSES][240]; /* one error text per failure class */
} joust_coord_tally;

/* The run's counts (storage/records.h) and, when some failed, one example
 * reason per failure class (a scan of its outcomes that stops once every
 * failed class has one). */
int joust_coord_tally_read(joust_store_t *st, const Joust__RunRecord *run, joust_coord_tally *t);
/* Final failures: outcomes in any class but ok. */
uint64_t joust_coord_tally_failed(const joust_coord_tally *t);
/* One line per failure class, "  unparseable: 3 (e.g. <reason>)". */
void joust_coord_tally_print(const joust_coord_tally *t, FILE *f);
/* The class's count in t and its name ("image_error", ...). */
uint64_t joust_coord_tally_class(const joust_coord_tally *t, int cls, const char **name);

/* A failure threshold: at most `count` matches, or `percent` % of the
 * planned ones. */
typedef struct {
    uint64_t count;
    double percent;
    int is_percent;
} joust_max_failed;
/* Parses "N" or "P%" (0 <= P <= 100); NULL or "" is 0 (no failure
 * allowed). JOUST_EINVAL when malformed. */
int joust_max_failed_parse(const char *s, joust_max_failed *out);
/* 1 when the tally's failures are more than the threshold allows. */
int joust_max_failed_exceeded(const joust_max_failed *mf, const joust_coord_tally *t);

/* Makes run `run_name`'s failed matches (any final status but OK) be judged
 * again, exactly once: their outcomes (and rationales) are deleted and the
 * run record is marked incomplete in one synced write, so the next
 * coordinator on the run dispatches exactly those matches, under the same
 * match ids (docs/storage.md). A crash before the write changes nothing; a
 * crash after it leaves a run that resumes like any other. *n: how many. */
int joust_coord_retry_failed(joust_store_t *st, const char *run_name, uint64_t *n);

#endif
