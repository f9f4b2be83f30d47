/* Tests of runs (coordinator/run.h) and their outcome counts: a new run
 * starts with counts of 0 stored in its record, and a run written before
 * the counts existed is counted once when opened, so the counts the
 * coordinator carries on from are exact. */
#include <string.h>

#include "check.h"
#include "err.h"
#include "records.h"
#include "run.h"
#include "storage/storetest.h"

static void put_outcome(joust_batch_t *b, Joust__RunRecord *run, uint64_t id,
                        Joust__OutcomeStatus status)
{
    Joust__OutcomeRecord o = JOUST__OUTCOME_RECORD__INIT;
    o.prompt_id = 1;
    o.first = 1;
    o.second = 2;
    o.status = status;
    o.has_p_first = status == JOUST__OUTCOME_STATUS__OK;
    o.p_first = 0.6;
    joust_rec_outcome_put(b, run, id, &o, NULL, NULL);
}

int main(void)
{
    if (storetest_begin() < 0)
        return 1;
    joust_store_t *st = NULL;
    CHECK_RC(joust_store_open(storetest_path("db"), JOUST_STORE_CREATE, &st));
    if (!st)
        return test_report();
    joust_run_spec spec = {.strategy = "round-robin", .judge = "sim", .order = "both", .seed = 1};
    Joust__RunRecord *run = NULL;
    CHECK_RC(joust_run_open(st, "fresh", &spec, &run));
    joust_run_counts n = {1, 1, 1, 1, 1, 1, 1};
    if (run) {
        CHECK(run->has_outcomes_ok && run->run_id == 1);
        CHECK_RC(joust_rec_run_counts(st, run, &n));
        CHECK(n.ok == 0 && n.failed == 0 && n.abandoned == 0);
    }
    joust_rec_free(run);

    /* A run record from before the counts, with outcomes already stored. */
    Joust__RunRecord old = JOUST__RUN_RECORD__INIT;
    old.run_id = 7;
    old.name = "old";
    old.strategy = "round-robin";
    old.judge = "sim";
    old.order = "both";
    Joust__RunRecord scratch = old;
    joust_batch_t *b = joust_batch_new();
    put_outcome(b, &scratch, 1, JOUST__OUTCOME_STATUS__OK);
    put_outcome(b, &scratch, 2, JOUST__OUTCOME_STATUS__ABANDONED);
    put_outcome(b, &scratch, 3, JOUST__OUTCOME_STATUS__OK);
    joust_rec_run_put(b, &old); /* without counts */
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);
    CHECK_RC(joust_run_open(st, "old", NULL, &run));
    if (run) {
        CHECK(run->has_outcomes_ok && run->outcomes_ok == 2 && run->outcomes_failed == 1 &&
              run->failed_abandoned == 1);
        /* Carried on by the next outcome and written with it. */
        b = joust_batch_new();
        put_outcome(b, run, 4, JOUST__OUTCOME_STATUS__IMAGE_ERROR);
        joust_rec_run_put(b, run);
        CHECK_RC(joust_store_write(st, b, 1));
        joust_batch_destroy(&b);
        joust_rec_free(run);
    }
    run = NULL;
    CHECK_RC(joust_rec_run_get(st, "old", &run));
    joust_run_counts scanned;
    CHECK_RC(joust_rec_run_counts_scan(st, 7, &scanned));
    if (run) {
        CHECK_RC(joust_rec_run_counts(st, run, &n));
        CHECK(n.ok == 2 && n.failed == 2 && n.image_error == 1 && n.abandoned == 1);
        CHECK(!memcmp(&n, &scanned, sizeof n));
    }
    joust_rec_free(run);
    joust_store_destroy(&st);
    storetest_end();
    return test_report();
}
