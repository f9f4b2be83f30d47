/* Tests of the outcome log (storage/records.h "outcome log"): a run created
 * by joust_rec_run_create keeps one; puts, replacements and deletes (the
 * paths of the committer, reuse and retry-failed) over several batches
 * replay to exactly the outcome family (joust_rec_outlog_verify, and an
 * independent replay here); a run without the flag writes none; a batch
 * with an unflushed log is refused; a deleted run loses its log; malformed
 * log bytes are refused entry by entry and never read past the value; an
 * older store without the family opens read-only and read-write. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "bytes.h"
#include "check.h"
#include "err.h"
#include "records.h"
#include "rng.h"
#include "store.h"
#include "storage/storetest.h"

/* A random outcome of match id (statuses of every kind, strings the log
 * drops, an IMAGE_ERROR's error it keeps). */
static void random_outcome(joust_rng_t *rng, uint64_t id, Joust__OutcomeRecord *o)
{
    static const int statuses[] = {JOUST__OUTCOME_STATUS__OK, JOUST__OUTCOME_STATUS__OK,
                                   JOUST__OUTCOME_STATUS__OK, JOUST__OUTCOME_STATUS__IMAGE_ERROR,
                                   JOUST__OUTCOME_STATUS__UNPARSEABLE,
                                   JOUST__OUTCOME_STATUS__INFRA_ERROR};
    *o = (Joust__OutcomeRecord)JOUST__OUTCOME_RECORD__INIT;
    o->prompt_id = 1 + id / 8;
    o->first = 100 + id;
    o->second = 200 + id;
    o->status = statuses[joust_rng_u64(rng) % 6];
    o->judge = "sim";
    o->worker = "w1";
    o->has_committed_ms = 1;
    o->committed_ms = 1700000000000 + (int64_t)id;
    if (o->status == JOUST__OUTCOME_STATUS__OK) {
        o->has_p_first = 1;
        o->p_first = (double)(joust_rng_u64(rng) % 1000) / 999.0;
        o->has_kind = joust_rng_u64(rng) % 2;
        o->kind = JOUST__OUTCOME_KIND__HARD;
    } else {
        o->error = o->status == JOUST__OUTCOME_STATUS__IMAGE_ERROR ? "cannot decode" : "bad";
        o->has_failed_image_id = o->status == JOUST__OUTCOME_STATUS__IMAGE_ERROR;
        o->failed_image_id = o->first;
    }
}

/* Replays the run's log independently of joust_rec_outlog_verify: per match
 * id (< n) the status, p_first and first of its last entry (status -1: none). */
typedef struct {
    int status;
    double p;
    uint64_t first;
} seen;

typedef struct {
    seen *s;
    size_t n;
    uint64_t records;
} replay_ctx;

static int replay_entry(uint64_t seq, const joust_outlog_entry *e, void *arg)
{
    replay_ctx *r = arg;
    r->records = seq + 1;
    CHECK(e->match_id < r->n);
    if (e->match_id >= r->n)
        return 0;
    if (!e->put) {
        r->s[e->match_id].status = -1;
        return 0;
    }
    joust_outcome_view o;
    CHECK_RC(joust_rec_outcome_view(e->bytes, e->len, &o));
    CHECK(!o.has_latency_us && !o.has_tokens); /* only what scoring reads */
    r->s[e->match_id] = (seen){o.status, o.p_first, o.first};
    return 0;
}

static uint64_t replay(joust_store_t *st, uint32_t run_id, seen *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s[i].status = -1;
    replay_ctx r = {s, n, 0};
    uint64_t malformed = 1;
    CHECK_RC(joust_rec_outlog_each(st, run_id, replay_entry, &r, &malformed));
    CHECK(malformed == 0); /* seq 0, 1, 2, ... and every record read to its end */
    return r.records;
}

/* The outcome family of the run equals the replay. */
static void check_replay(joust_store_t *st, const Joust__RunRecord *run, size_t n)
{
    seen *s = calloc(n, sizeof *s);
    replay(st, run->run_id, s, n);
    for (uint64_t id = 0; id < n; id++) {
        Joust__OutcomeRecord *o = NULL;
        int rc = joust_rec_outcome_get(st, run->run_id, id, &o);
        if (rc == JOUST_ENOTFOUND) {
            CHECK(s[id].status == -1);
            continue;
        }
        CHECK_RC(rc);
        CHECK(o && s[id].status == (int)o->status && s[id].first == o->first &&
              (!o->has_p_first || s[id].p == o->p_first));
        joust_rec_free(o);
    }
    free(s);
    uint64_t differ = 1;
    CHECK_RC(joust_rec_outlog_verify(st, run, &differ));
    CHECK(differ == 0);
}

enum { N = 400 };

static void test_history(joust_store_t *st)
{
    Joust__RunRecord r = storetest_run("logged");
    CHECK_RC(joust_rec_run_create(st, &r));
    CHECK(joust_rec_run_has_log(&r));
    Joust__RunRecord *run;
    CHECK_RC(joust_rec_run_get(st, "logged", &run));
    CHECK(joust_rec_run_has_log(run) && run->outcome_log_next == 0);
    joust_rng_t rng;
    joust_rng_seed(&rng, 7);
    Joust__OutcomeRecord cur[N];
    int has[N] = {0};
    joust_batch_t *b = joust_batch_new();
    /* Commits in random id order (as results arrive), a few per batch. */
    for (int round = 0; round < 3 * N; round++) {
        uint64_t id = 1 + joust_rng_u64(&rng) % (N - 1);
        uint64_t op = joust_rng_u64(&rng) % 10;
        if (has[id] && op == 0) { /* retry-failed's delete */
            joust_rec_outcome_delete(b, run, id, &cur[id]);
            has[id] = 0;
        } else if (has[id] && op > 2) {
            continue;
        } else {
            Joust__OutcomeRecord o;
            random_outcome(&rng, id, &o);
            joust_rec_outcome_put(b, run, id, &o, "why", has[id] ? &cur[id] : NULL);
            cur[id] = o;
            has[id] = 1;
        }
        if (joust_rng_u64(&rng) % 16 == 0) {
            joust_rec_run_put(b, run);
            CHECK_RC(joust_store_write(st, b, 0));
            joust_batch_clear(b);
        }
    }
    joust_rec_run_put(b, run);
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_clear(b);
    CHECK(run->outcome_log_next > 10 && run->outcome_log_rewrites > 0);
    check_replay(st, run, N);

    /* The committed run record names the next seq (a later process goes on). */
    Joust__RunRecord *again;
    CHECK_RC(joust_rec_run_get(st, "logged", &again));
    CHECK(again->outcome_log_next == run->outcome_log_next);
    joust_rec_free(again);

    /* A batch written without the run's record: refused, nothing written. */
#ifdef NDEBUG
    Joust__OutcomeRecord o;
    random_outcome(&rng, 1, &o);
    joust_rec_outcome_put(b, run, N - 1, &o, NULL, has[N - 1] ? &cur[N - 1] : NULL);
    CHECK(joust_store_write(st, b, 1) == JOUST_EINVAL);
    CHECK(joust_store_load(st, b) == JOUST_EINVAL);
    joust_batch_clear(b); /* empties the log too: the next write goes */
    CHECK_RC(joust_store_write(st, b, 1));
#endif
    check_replay(st, run, N);

    /* A mismatch is found: an outcome written around the log. */
    unsigned char key[12];
    joust_put_be32(key, run->run_id);
    joust_put_be64(key + 4, N - 1);
    CHECK_RC(joust_store_put(st, JOUST_CF_OUTCOMES, key, sizeof key, "\x08\x01", 2));
    uint64_t differ = 0;
    CHECK_RC(joust_rec_outlog_verify(st, run, &differ));
    CHECK(differ == 1);

    /* Deleting the run deletes its log. */
    CHECK_RC(joust_rec_run_delete(st, run));
    joust_rec_cursor_t *c;
    CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_OUTCOME_LOG, run->run_id, &c));
    CHECK(c && !joust_rec_cursor_valid(c));
    joust_rec_cursor_destroy(&c);
    joust_batch_destroy(&b);
    joust_rec_free(run);
}

/* A run record without the flag (an older joust's run): no log, and
 * verify says so. */
static void test_unlogged(joust_store_t *st)
{
    Joust__RunRecord old = storetest_run("old");
    old.run_id = 77;
    Joust__OutcomeRecord o = JOUST__OUTCOME_RECORD__INIT;
    o.prompt_id = 1, o.first = 2, o.second = 3, o.status = JOUST__OUTCOME_STATUS__OK;
    joust_batch_t *b = joust_batch_new();
    joust_rec_outcome_put(b, &old, 1, &o, NULL, NULL);
    joust_rec_outcome_delete(b, &old, 1, &o);
    CHECK(joust_batch_side_find(b, 77) == NULL);
    joust_rec_run_put(b, &old);
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);
    CHECK(!old.has_outcome_log_next && !old.has_outcome_log_rewrites);
    uint64_t differ;
    CHECK(joust_rec_outlog_verify(st, &old, &differ) == JOUST_EINVAL);
}

/* Malformed values: every prefix and every one-byte change of a good value
 * is read entry by entry without reading past it; truncation is refused. */
static void test_corrupt_bytes(void)
{
    Joust__RunRecord run = storetest_run("x");
    run.run_id = 5;
    run.has_outcome_log = run.outcome_log = 1;
    joust_batch_t *b = joust_batch_new();
    joust_rng_t rng;
    joust_rng_seed(&rng, 3);
    for (uint64_t id = 9; id > 0; id--) {
        Joust__OutcomeRecord o;
        random_outcome(&rng, id * 1000, &o);
        joust_rec_outcome_put(b, &run, id * 1000, &o, NULL, NULL);
    }
    joust_batch_side *side = joust_batch_side_find(b, 5);
    CHECK(side && side->n > 0);
    size_t n = side ? side->n : 0;
    unsigned char *good = malloc(n + 1);
    memcpy(good, side->p, n);
    joust_batch_clear(b); /* not written */
    joust_batch_destroy(&b);
    for (size_t cut = 0; cut <= n; cut++) {
        unsigned char *v = malloc(cut ? cut : 1); /* exact size: ASan sees an overread */
        memcpy(v, good, cut);
        size_t pos = 0;
        uint64_t prev = 0;
        joust_outlog_entry e;
        int got, entries = 0;
        while ((got = joust_rec_outlog_next(v, cut, &pos, &prev, &e)) > 0) {
            CHECK(pos <= cut && (const unsigned char *)e.bytes + e.len <= v + cut);
            entries++;
        }
        CHECK(got == 0 || got == JOUST_ECORRUPT);
        if (cut == n)
            CHECK(got == 0 && entries == 9);
        free(v);
    }
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            unsigned char *v = malloc(n);
            memcpy(v, good, n);
            v[i] ^= (unsigned char)(1u << bit);
            size_t pos = 0;
            uint64_t prev = 0;
            joust_outlog_entry e;
            int got;
            while ((got = joust_rec_outlog_next(v, n, &pos, &prev, &e)) > 0) {
                CHECK(pos <= n);
                joust_outcome_view ov;
                (void)joust_rec_outcome_view(e.bytes, e.len, &ov); /* refused or read, no crash */
            }
            free(v);
        }
    free(good);
}

/* A store made by a joust before the log: the eight older families. */
static void test_old_layout(void)
{
    static const char *const names[] = {"default", "runs",       "prompts", "images",
                                        "matches", "outcomes", "rationales", "scores"};
    const char *path = storetest_path("old");
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    const rocksdb_options_t *opts[8] = {o, o, o, o, o, o, o, o};
    rocksdb_column_family_handle_t *h[8];
    char *err = NULL;
    rocksdb_t *db = rocksdb_open_column_families(o, path, 8, names, opts, h, &err);
    CHECK(db && !err);
    rocksdb_free(err);
    if (db) {
        for (int i = 0; i < 8; i++)
            rocksdb_column_family_handle_destroy(h[i]);
        rocksdb_close(db);
    }
    rocksdb_options_destroy(o);

    joust_store_t *st = NULL;
    CHECK_RC(joust_store_open(path, JOUST_STORE_READONLY, &st));
    if (st) {
        void *v;
        size_t n;
        CHECK(joust_store_get(st, JOUST_CF_OUTCOME_LOG, "k", 1, &v, &n) == JOUST_ENOTFOUND);
        joust_rec_cursor_t *c;
        CHECK_RC(joust_rec_cursor_new_scan(st, JOUST_REC_OUTCOME_LOG, 1, &c));
        CHECK(c && !joust_rec_cursor_valid(c) && joust_rec_cursor_error(c) == 0);
        joust_rec_cursor_seek(c, 5);
        joust_rec_cursor_next(c);
        CHECK(!joust_rec_cursor_valid(c));
        joust_rec_cursor_destroy(&c);
        CHECK(joust_store_sst_bytes(st, JOUST_CF_OUTCOME_LOG) == 0);
        joust_store_destroy(&st);
    }
    /* Read-write gains the family; read-only then sees it. */
    CHECK_RC(joust_store_open(path, JOUST_STORE_EXISTING, &st));
    if (st) {
        CHECK_RC(joust_store_put(st, JOUST_CF_OUTCOME_LOG, "k", 1, "v", 1));
        joust_store_destroy(&st);
    }
    CHECK_RC(joust_store_open(path, JOUST_STORE_READONLY, &st));
    if (st) {
        void *v = NULL;
        size_t n;
        CHECK(joust_store_get(st, JOUST_CF_OUTCOME_LOG, "k", 1, &v, &n) == 0 && n == 1);
        free(v);
        joust_store_destroy(&st);
    }
}

int main(void)
{
    joust_store_t *st = NULL;
    if (storetest_open(&st) < 0)
        return 1;
    test_history(st);
    test_unlogged(st);
    joust_store_destroy(&st);
    test_corrupt_bytes();
    test_old_layout();
    storetest_end();
    return test_report();
}
