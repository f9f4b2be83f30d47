/* Tests of runs (coordinator/run.h): what a run covers (its manifests and
 * planning passes), and their outcome counts: a new run
 * starts with counts of 0 stored in its record, and a run written before
 * the counts existed is counted once when opened, so the counts the
 * coordinator carries on from are exact. */
#include <string.h>

#include "check.h"
#include "err.h"
#include "records.h"
#include "reuse.h"
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

/* What a run covers: its first manifest, a further one (a new planning
 * pass, with the reach of the one it ends), one it has already; a started
 * run without manifests keeps what it covered. Re-read from the store. */
static void test_manifests(joust_store_t *st)
{
    joust_run_spec spec = {.strategy = "round-robin", .judge = "sim", .order = "both", .seed = 1};
    Joust__RunRecord *run = NULL;
    joust_run_manifest_added how = 0;
    CHECK_RC(joust_run_open(st, "cover", &spec, &run));
    if (!run)
        return;
    CHECK(joust_run_covers(run, 99)); /* no manifest: the whole store */
    CHECK(joust_run_add_manifest(st, run, 7, 0, 0, 1, "old.jsonl", &how) == JOUST_EINVAL);
    CHECK_RC(joust_run_add_manifest(st, run, 11, 5, 9, 1, "a.jsonl", &how));
    CHECK(how == JOUST_RUN_MANIFEST_FIRST && run->plan_pass == 0);
    CHECK(!joust_run_covers(run, 4) && joust_run_image_pass(run, 5) == 0 && !joust_run_covers(run, 9));
    run->plan_cursor = 3; /* pass 0 planned prompts 1 and 2, then stopped */
    run->next_match_id = 10;
    CHECK_RC(joust_run_add_manifest(st, run, 11, 5, 9, 0, "a.jsonl", &how));
    CHECK(how == JOUST_RUN_MANIFEST_KNOWN && run->plan_pass == 0);
    CHECK_RC(joust_run_add_manifest(st, run, 12, 20, 22, 1, "b.jsonl", &how));
    CHECK(how == JOUST_RUN_MANIFEST_EXTENDS && run->plan_pass == 1 && run->plan_cursor == 1);
    CHECK(!run->planning_done && !run->complete);
    joust_rec_free(run);
    run = NULL;
    CHECK_RC(joust_rec_run_get(st, "cover", &run));
    if (!run)
        return;
    CHECK(run->n_manifests == 2 && run->plan_pass == 1 && run->n_pass_reach == 1);
    CHECK(joust_run_image_pass(run, 8) == 0 && joust_run_image_pass(run, 21) == 1);
    CHECK(joust_run_image_pass(run, 15) == -1);
    CHECK(joust_run_prompt_pass(run, 2) == 0 && joust_run_prompt_pass(run, 3) == -1);
    CHECK(joust_run_prompt_bound(run) == 3);
    joust_rec_free(run);

    /* a started run without manifests covered the store: it keeps that */
    run = NULL;
    CHECK_RC(joust_run_open(st, "legacy", &spec, &run));
    if (!run)
        return;
    run->next_match_id = 5;
    CHECK_RC(joust_run_add_manifest(st, run, 13, 30, 40, 1, "c.jsonl", &how));
    CHECK(how == JOUST_RUN_MANIFEST_EXTENDS && run->n_manifests == 2);
    CHECK(joust_run_image_pass(run, 1) == 0 && joust_run_image_pass(run, 29) == 0);
    CHECK(joust_run_image_pass(run, 30) == 1 && !joust_run_covers(run, 40));
    joust_rec_free(run);
}

/* Reuse keys (reuse.h): operational judge options do not change the salt,
 * the others do; the key depends on the prompt and on the image order. The
 * index round-trips through the store. */
static void test_reuse(joust_store_t *st)
{
    Joust__RunRecord a = JOUST__RUN_RECORD__INIT, b = a;
    a.judge = b.judge = "openai";
    a.judge_options = "max-pixels=401408 endpoint=http://h1:8000/v1 model=q mode=direct inflight=8";
    b.judge_options = "max-pixels=401408 endpoint=http://h2:9000/v1 model=q mode=direct inflight=64";
    uint64_t s = joust_reuse_salt(&a);
    CHECK(s == joust_reuse_salt(&b));
    b.judge_options = "max-pixels=401408 endpoint=http://h1:8000/v1 model=q mode=reason inflight=8";
    CHECK(s != joust_reuse_salt(&b));
    b.judge_options = a.judge_options;
    b.judge = "quality";
    CHECK(s != joust_reuse_salt(&b));
    uint64_t k = joust_reuse_key(s, "a cat", 1, 2);
    CHECK(k == joust_reuse_key(s, "a cat", 1, 2) && k != joust_reuse_key(s, "a cat", 2, 1));
    CHECK(k != joust_reuse_key(s, "a dog", 1, 2));
    joust_batch_t *bt = joust_batch_new();
    joust_rec_reuse_put(bt, k, 3, 1ull << 40);
    CHECK_RC(joust_store_write(st, bt, 1));
    joust_batch_destroy(&bt);
    uint32_t run = 0;
    uint64_t match = 0;
    CHECK_RC(joust_rec_reuse_get(st, k, &run, &match));
    CHECK(run == 3 && match == 1ull << 40);
    CHECK(joust_rec_reuse_get(st, k + 1, &run, &match) == JOUST_ENOTFOUND);
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
    test_manifests(st);
    test_reuse(st);
    joust_store_destroy(&st);
    storetest_end();
    return test_report();
}
