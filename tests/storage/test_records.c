/* Tests of the typed records (storage/records.h) on a fresh store in a
 * mkdtemp directory: id counters and ingest indexes, runs (create, get, each,
 * corrupt bytes), prompts and members (walk bounds and early stop), images,
 * a run's matches / outcomes / rationales / scores kept apart from another
 * run's, cursors (order, seek, typed unpack), score deletion, and the outcome
 * counts kept in the run record (written in the outcome's batch, replaced
 * outcomes, the scan for runs without counts, the class list). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "check.h"
#include "err.h"
#include "records.h"
#include "store.h"
#include "storage/storetest.h"

static void test_counters_and_indexes(joust_store_t *st)
{
    uint64_t v = 0;
    CHECK_RC(joust_rec_counter_get(st, JOUST_NEXT_IMAGE, &v));
    CHECK(v == 1); /* never written */
    joust_batch_t *b = joust_batch_new();
    joust_rec_counter_put(b, JOUST_NEXT_IMAGE, 42);
    joust_rec_counter_put(b, JOUST_NEXT_PROMPT, 7);
    joust_rec_index_put(b, JOUST_INDEX_GROUP, 99, 5);
    joust_rec_index_put(b, JOUST_INDEX_CONTENT, 99, 6);
    joust_rec_index_put(b, JOUST_INDEX_CALLER_ID, 99, 7);
    joust_rec_index_put(b, JOUST_INDEX_MANIFEST, UINT64_MAX, 8);
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);
    CHECK_RC(joust_rec_counter_get(st, JOUST_NEXT_IMAGE, &v));
    CHECK(v == 42);
    CHECK_RC(joust_rec_counter_get(st, JOUST_NEXT_PROMPT, &v));
    CHECK(v == 7);
    CHECK_RC(joust_rec_counter_get(st, JOUST_NEXT_RUN, &v));
    CHECK(v == 1);
    /* The same hash in different indexes does not collide. */
    CHECK(joust_rec_index_get(st, JOUST_INDEX_GROUP, 99, &v) == 0 && v == 5);
    CHECK(joust_rec_index_get(st, JOUST_INDEX_CONTENT, 99, &v) == 0 && v == 6);
    CHECK(joust_rec_index_get(st, JOUST_INDEX_CALLER_ID, 99, &v) == 0 && v == 7);
    CHECK(joust_rec_index_get(st, JOUST_INDEX_MANIFEST, UINT64_MAX, &v) == 0 && v == 8);
    CHECK(joust_rec_index_get(st, JOUST_INDEX_MANIFEST, 99, &v) == JOUST_ENOTFOUND);
    /* The layout of docs/storage.md: counter names and tag ‖ be64 keys. */
    CHECK_RC(joust_store_put(st, JOUST_CF_META, "next_run_id", 11, "abc", 3));
    CHECK(joust_rec_counter_get(st, JOUST_NEXT_RUN, &v) == JOUST_ECORRUPT);
    CHECK_RC(joust_store_put(st, JOUST_CF_META, "next_run_id", 11, "\0\0\0\0\0\0\0\x03", 8));
    CHECK(joust_rec_counter_get(st, JOUST_NEXT_RUN, &v) == 0 && v == 3);
    CHECK_RC(joust_store_put(st, JOUST_CF_META, "h\0\0\0\0\0\0\0\x01", 9, "short", 5));
    CHECK(joust_rec_index_get(st, JOUST_INDEX_CONTENT, 1, &v) == JOUST_ECORRUPT);
}

static void collect(const Joust__RunRecord *run, void *arg)
{
    char *names = arg;
    strcat(names, run->name);
    strcat(names, ",");
}

static void test_runs(joust_store_t *st)
{
    Joust__RunRecord *got = (Joust__RunRecord *)1;
    CHECK(joust_rec_run_get(st, "beta", &got) == JOUST_ENOTFOUND && got == NULL);
    Joust__RunRecord b = storetest_run("beta"), a = storetest_run("alpha");
    CHECK_RC(joust_rec_run_create(st, &b));
    CHECK(b.run_id == 3); /* the counter test left next_run_id at 3 */
    CHECK_RC(joust_rec_run_create(st, &a));
    CHECK(a.run_id == 4);
    uint64_t v;
    CHECK(joust_rec_counter_get(st, JOUST_NEXT_RUN, &v) == 0 && v == 5);
    CHECK_RC(joust_rec_run_get(st, "beta", &got));
    CHECK(got && got->run_id == 3 && !strcmp(got->judge, "sim") && !got->has_outcomes_ok);
    joust_rec_free(got);
    char names[64] = "";
    CHECK_RC(joust_rec_run_each(st, collect, names));
    CHECK(!strcmp(names, "alpha,beta,"));
    /* Bytes that do not unpack: get says so, each skips the record. */
    CHECK_RC(joust_store_put(st, JOUST_CF_RUNS, "broken", 6, "\xff\xff\xff", 3));
    CHECK(joust_rec_run_get(st, "broken", &got) == JOUST_ECORRUPT && got == NULL);
    names[0] = '\0';
    CHECK_RC(joust_rec_run_each(st, collect, names));
    CHECK(!strcmp(names, "alpha,beta,"));
    joust_rec_free(NULL); /* a no-op */
}

typedef struct {
    char seen[128];
    uint64_t stop_at;
} walk_ctx;

static int walk_fn(uint64_t pid, const uint64_t *ids, size_t n, void *arg)
{
    walk_ctx *w = arg;
    char one[32];
    snprintf(one, sizeof one, "%llu:", (unsigned long long)pid);
    strcat(w->seen, one);
    for (size_t i = 0; i < n; i++) {
        snprintf(one, sizeof one, "%llu.", (unsigned long long)ids[i]);
        strcat(w->seen, one);
    }
    strcat(w->seen, " ");
    return pid == w->stop_at;
}

static void test_prompts_and_images(joust_store_t *st)
{
    joust_batch_t *b = joust_batch_new();
    for (uint64_t pid = 1; pid <= 3; pid++) {
        Joust__PromptRecord p = JOUST__PROMPT_RECORD__INIT;
        p.prompt_id = pid;
        p.text = pid == 2 ? "second" : "other";
        joust_rec_prompt_put(b, &p);
    }
    uint64_t members[][2] = {{1, 10}, {1, 11}, {2, 300}, {2, 20}, {3, 30}};
    for (size_t i = 0; i < 5; i++)
        joust_rec_prompt_add_image(b, members[i][0], members[i][1]);
    Joust__ImageRecord img = JOUST__IMAGE_RECORD__INIT;
    img.image_id = 20;
    img.prompt_id = 2;
    img.uri = "/data/a b.jpg";
    joust_rec_image_put(b, &img);
    CHECK_RC(joust_store_write(st, b, 0));
    joust_batch_destroy(&b);

    Joust__PromptRecord *p = NULL;
    CHECK_RC(joust_rec_prompt_get(st, 2, &p));
    CHECK(p && p->prompt_id == 2 && !strcmp(p->text, "second"));
    joust_rec_free(p);
    CHECK(joust_rec_prompt_get(st, 4, &p) == JOUST_ENOTFOUND);
    uint64_t *ids;
    size_t n;
    CHECK_RC(joust_rec_prompt_members(st, 2, &ids, &n));
    CHECK(n == 2 && ids[0] == 20 && ids[1] == 300); /* id order */
    free(ids);
    CHECK_RC(joust_rec_prompt_members(st, 9, &ids, &n));
    CHECK(n == 0 && ids == NULL);

    walk_ctx w = {"", 0};
    uint64_t next = 0;
    CHECK(joust_rec_prompt_walk(st, 1, 0, walk_fn, &w, &next) == 0);
    CHECK(!strcmp(w.seen, "1:10.11. 2:20.300. 3:30. ") && next == 4);
    w = (walk_ctx){"", 0};
    CHECK(joust_rec_prompt_walk(st, 2, 3, walk_fn, &w, &next) == 0);
    CHECK(!strcmp(w.seen, "2:20.300. ") && next == 3);
    w = (walk_ctx){"", 1};
    CHECK(joust_rec_prompt_walk(st, 1, 0, walk_fn, &w, &next) == 1);
    CHECK(!strcmp(w.seen, "1:10.11. ") && next == 2);

    /* the prompt cursor: the three records in id order, members skipped */
    joust_rec_cursor_t *cur;
    CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_PROMPTS, 0, &cur));
    uint64_t want = 1;
    for (; joust_rec_cursor_valid(cur); joust_rec_cursor_next(cur), want++) {
        CHECK(joust_rec_cursor_id(cur) == want);
        size_t len;
        const void *bytes = joust_rec_cursor_bytes(cur, &len);
        joust_prompt_view pv;
        CHECK(bytes && joust_rec_prompt_view(bytes, len, &pv) == 0 && pv.prompt_id == want);
        CHECK(pv.text.len == (want == 2 ? 6u : 5u) &&
              !memcmp(pv.text.s, want == 2 ? "second" : "other", pv.text.len));
        Joust__PromptRecord *pr = joust_rec_cursor_prompt(cur);
        CHECK(pr && pr->prompt_id == want);
        joust_rec_free(pr);
    }
    CHECK(want == 4 && joust_rec_cursor_error(cur) == 0);
    joust_rec_cursor_seek(cur, 2);
    CHECK(joust_rec_cursor_valid(cur) && joust_rec_cursor_id(cur) == 2);
    joust_rec_cursor_next(cur); /* onto 2's members: skipped to 3 */
    CHECK(joust_rec_cursor_valid(cur) && joust_rec_cursor_id(cur) == 3);
    joust_rec_cursor_destroy(&cur);
    /* the scan cursor (a whole-family reader's options) walks the same */
    CHECK_RC(joust_rec_cursor_new_scan(st, JOUST_REC_PROMPTS, 0, &cur));
    for (want = 1; joust_rec_cursor_valid(cur); joust_rec_cursor_next(cur), want++)
        CHECK(joust_rec_cursor_id(cur) == want);
    CHECK(want == 4);
    joust_rec_cursor_destroy(&cur);

    Joust__ImageRecord *got = NULL;
    CHECK_RC(joust_rec_image_get(st, 20, &got));
    CHECK(got && got->prompt_id == 2 && !strcmp(got->uri, "/data/a b.jpg"));
    joust_rec_free(got);
    CHECK(joust_rec_image_get(st, 21, &got) == JOUST_ENOTFOUND);
}

static Joust__OutcomeRecord outcome(Joust__OutcomeStatus status, int has_p)
{
    Joust__OutcomeRecord o = JOUST__OUTCOME_RECORD__INIT;
    o.prompt_id = 1;
    o.first = 10;
    o.second = 11;
    o.status = status;
    o.has_p_first = has_p;
    o.p_first = 0.75;
    return o;
}

static void test_run_records(joust_store_t *st)
{
    /* Two runs whose keys share everything but the run id. */
    Joust__RunRecord r3 = storetest_run("beta"), r4 = storetest_run("alpha");
    r3.run_id = 3;
    r4.run_id = 4;
    joust_run_counts zero = {0}, c;
    joust_run_counts_set(&r3, &zero);
    joust_run_counts_set(&r4, &zero);
    joust_batch_t *b = joust_batch_new();
    for (uint64_t id = 1; id <= 5; id++) {
        Joust__MatchRecord m = JOUST__MATCH_RECORD__INIT;
        m.prompt_id = 1;
        m.first = 10 + id;
        m.second = 20 + id;
        joust_rec_match_put(b, 3, id, &m);
        if (id <= 2)
            joust_rec_match_put(b, 4, id, &m);
    }
    Joust__OutcomeRecord ok = outcome(JOUST__OUTCOME_STATUS__OK, 1);
    Joust__OutcomeRecord bad = outcome(JOUST__OUTCOME_STATUS__IMAGE_ERROR, 0);
    Joust__OutcomeRecord garbled = outcome(JOUST__OUTCOME_STATUS__UNPARSEABLE, 0);
    joust_rec_outcome_put(b, &r3, 2, &ok, "sharper", NULL);
    joust_rec_outcome_put(b, &r3, 4, &bad, "", NULL);
    joust_rec_outcome_put(b, &r3, 5, &garbled, NULL, NULL);
    joust_rec_outcome_put(b, &r4, 1, &ok, NULL, NULL);
    joust_rec_run_put(b, &r3);
    joust_rec_run_put(b, &r4);
    Joust__ScoreRecord s = JOUST__SCORE_RECORD__INIT;
    s.prompt_id = 1;
    s.has_score = 1;
    s.score = 1.5;
    s.comparisons = 4;
    joust_rec_score_put(b, 3, 10, &s);
    joust_rec_score_put(b, 3, 11, &s);
    joust_rec_score_put(b, 4, 10, &s);
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);

    Joust__MatchRecord *m = NULL;
    CHECK_RC(joust_rec_match_get(st, 3, 4, &m));
    CHECK(m && m->first == 14 && m->second == 24);
    joust_rec_free(m);
    CHECK(joust_rec_match_get(st, 4, 4, &m) == JOUST_ENOTFOUND);
    Joust__OutcomeRecord *o = NULL;
    CHECK_RC(joust_rec_outcome_get(st, 3, 2, &o));
    CHECK(o && o->status == JOUST__OUTCOME_STATUS__OK && o->p_first == 0.75);
    joust_rec_free(o);
    CHECK(joust_rec_outcome_get(st, 4, 2, &o) == JOUST_ENOTFOUND);
    char *text = NULL;
    size_t len = 0;
    CHECK_RC(joust_rec_rationale_get(st, 3, 2, &text, &len));
    CHECK(text && len == 7 && !strcmp(text, "sharper"));
    free(text);
    CHECK(joust_rec_rationale_get(st, 3, 4, &text, &len) == JOUST_ENOTFOUND && !text);

    /* Cursors: a run's records only, in id order, typed. */
    joust_rec_cursor_t *cur;
    CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_MATCHES, 3, &cur));
    uint64_t want = 1, seen = 0;
    for (; joust_rec_cursor_valid(cur); joust_rec_cursor_next(cur), want++, seen++) {
        Joust__MatchRecord *mr = joust_rec_cursor_match(cur);
        CHECK(joust_rec_cursor_id(cur) == want && mr && mr->first == 10 + want);
        joust_rec_free(mr);
    }
    CHECK(seen == 5 && joust_rec_cursor_error(cur) == 0);
    CHECK(joust_rec_cursor_id(cur) == 0 && joust_rec_cursor_match(cur) == NULL);
    joust_rec_cursor_seek(cur, 3);
    CHECK(joust_rec_cursor_valid(cur) && joust_rec_cursor_id(cur) == 3);
    joust_rec_cursor_seek(cur, 6);
    CHECK(!joust_rec_cursor_valid(cur));
    joust_rec_cursor_destroy(&cur);
    CHECK(cur == NULL);
    CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_OUTCOMES, 3, &cur));
    char ids[64] = "";
    for (; joust_rec_cursor_valid(cur); joust_rec_cursor_next(cur)) {
        Joust__OutcomeRecord *x = joust_rec_cursor_outcome(cur);
        char one[16];
        snprintf(one, sizeof one, "%llu=%d ", (unsigned long long)joust_rec_cursor_id(cur),
                 x ? (int)x->status : -1);
        strcat(ids, one);
        joust_rec_free(x);
    }
    CHECK(!strcmp(ids, "2=1 4=2 5=4 "));
    joust_rec_cursor_destroy(&cur);

    /* Scores: deleting one run's leaves the other's. */
    Joust__ScoreRecord *sr = NULL;
    CHECK_RC(joust_rec_score_get(st, 3, 11, &sr));
    CHECK(sr && sr->score == 1.5 && sr->comparisons == 4);
    joust_rec_free(sr);
    CHECK_RC(joust_rec_scores_delete(st, 3));
    CHECK(joust_rec_score_get(st, 3, 10, &sr) == JOUST_ENOTFOUND);
    CHECK_RC(joust_rec_score_get(st, 4, 10, &sr));
    joust_rec_free(sr);
    CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_SCORES, 4, &cur));
    Joust__ScoreRecord *cs = joust_rec_cursor_valid(cur) ? joust_rec_cursor_score(cur) : NULL;
    CHECK(cs && joust_rec_cursor_id(cur) == 10 && cs->score == 1.5);
    joust_rec_free(cs);
    joust_rec_cursor_destroy(&cur);

    /* Counts: stored with the outcomes they count. */
    Joust__RunRecord *got = NULL;
    CHECK_RC(joust_rec_run_get(st, "beta", &got));
    CHECK(got && got->has_outcomes_ok);
    CHECK_RC(joust_rec_run_counts(st, got, &c));
    CHECK(c.ok == 1 && c.failed == 2 && c.image_error == 1 && c.unparseable == 1 &&
          c.infra_error == 0 && c.config_error == 0 && c.abandoned == 0);
    joust_run_counts scanned;
    CHECK_RC(joust_rec_run_counts_scan(st, 3, &scanned));
    CHECK(!memcmp(&c, &scanned, sizeof c));

    /* A replaced outcome: its count goes, and so does its rationale when
     * the new one has none. */
    b = joust_batch_new();
    Joust__OutcomeRecord infra = outcome(JOUST__OUTCOME_STATUS__INFRA_ERROR, 0);
    joust_rec_outcome_put(b, got, 2, &infra, NULL, &ok);
    joust_rec_outcome_put(b, got, 4, &ok, "retried", &bad);
    joust_rec_run_put(b, got);
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);
    joust_rec_free(got);
    CHECK(joust_rec_rationale_get(st, 3, 2, &text, &len) == JOUST_ENOTFOUND);
    CHECK_RC(joust_rec_rationale_get(st, 3, 4, &text, &len));
    free(text);
    CHECK_RC(joust_rec_run_get(st, "beta", &got));
    CHECK_RC(joust_rec_run_counts(st, got, &c));
    CHECK(c.ok == 1 && c.failed == 2 && c.image_error == 0 && c.unparseable == 1 &&
          c.infra_error == 1);
    CHECK_RC(joust_rec_run_counts_scan(st, 3, &scanned));
    CHECK(!memcmp(&c, &scanned, sizeof c));
    joust_rec_free(got);

    /* A deleted outcome (a failed match planned again) leaves the counts. */
    CHECK_RC(joust_rec_run_get(st, "beta", &got));
    Joust__OutcomeRecord *old = NULL;
    CHECK_RC(joust_rec_outcome_get(st, 3, 5, &old));
    b = joust_batch_new();
    if (got && old) {
        joust_rec_outcome_delete(b, got, 5, old);
        joust_rec_run_put(b, got);
    }
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);
    joust_rec_free(old);
    joust_rec_free(got);
    CHECK(joust_rec_outcome_get(st, 3, 5, &old) == JOUST_ENOTFOUND);
    CHECK_RC(joust_rec_run_get(st, "beta", &got));
    CHECK_RC(joust_rec_run_counts(st, got, &c));
    CHECK(c.ok == 1 && c.failed == 1 && c.unparseable == 0 && c.infra_error == 1);
    CHECK_RC(joust_rec_run_counts_scan(st, 3, &scanned));
    CHECK(!memcmp(&c, &scanned, sizeof c));
    joust_rec_free(got);

    /* A run written before the counts existed is counted by a scan. */
    Joust__RunRecord legacy = storetest_run("legacy");
    legacy.run_id = 3; /* shares run 3's outcomes */
    b = joust_batch_new();
    joust_rec_run_put(b, &legacy);
    CHECK_RC(joust_store_write(st, b, 0));
    joust_batch_destroy(&b);
    CHECK_RC(joust_rec_run_get(st, "legacy", &got));
    CHECK(got && !got->has_outcomes_ok);
    CHECK_RC(joust_rec_run_counts(st, got, &c));
    CHECK(!memcmp(&c, &scanned, sizeof c));
    joust_rec_free(got);
}

static void test_counts_classes(void)
{
    joust_run_counts c = {0};
    char buf[128];
    CHECK(joust_run_counts_format(&c, buf, sizeof buf) == 4 && !strcmp(buf, "none"));
    Joust__OutcomeStatus st[] = {
        JOUST__OUTCOME_STATUS__OK,           JOUST__OUTCOME_STATUS__IMAGE_ERROR,
        JOUST__OUTCOME_STATUS__JUDGE_ERROR,  JOUST__OUTCOME_STATUS__UNPARSEABLE,
        JOUST__OUTCOME_STATUS__ABANDONED,    JOUST__OUTCOME_STATUS__INFRA_ERROR,
        JOUST__OUTCOME_STATUS__CONFIG_ERROR, JOUST__OUTCOME_STATUS__IMAGE_ERROR,
        JOUST__OUTCOME_STATUS__OUTCOME_STATUS_UNSPECIFIED,
    };
    for (size_t i = 0; i < sizeof st / sizeof *st; i++) {
        Joust__OutcomeRecord o = outcome(st[i], st[i] == JOUST__OUTCOME_STATUS__OK);
        joust_run_counts_add(&c, &o, 1);
    }
    Joust__OutcomeRecord ok_without_p = outcome(JOUST__OUTCOME_STATUS__OK, 0);
    joust_run_counts_add(&c, &ok_without_p, 1);
    CHECK(c.ok == 1 && c.failed == 9 && c.image_error == 2 && c.unparseable == 2 &&
          c.infra_error == 3 && c.config_error == 1 && c.abandoned == 1);
    size_t need = joust_run_counts_format(&c, buf, sizeof buf);
    CHECK(!strcmp(buf, "2 image_error, 2 unparseable, 3 infra_error, 1 config_error, 1 abandoned"));
    CHECK(need == strlen(buf));
    char small[8];
    CHECK(joust_run_counts_format(&c, small, sizeof small) == need && !strcmp(small, "2 image"));
    joust_run_counts_add(&c, &ok_without_p, -1);
    CHECK(c.unparseable == 1 && c.failed == 8);
}

static int dup_seen(uint64_t image_id, const Joust__DuplicateRecord *d, void *arg)
{
    uint64_t *acc = arg;
    acc[0]++;
    acc[1] += image_id * 1000 + d->representative;
    return 0;
}

/* Signatures by image id and by content hash; a run's duplicate records,
 * listed per run and deleted with it. */
static void test_signatures(joust_store_t *st)
{
    Joust__SignatureRecord s = JOUST__SIGNATURE_RECORD__INIT, *got = NULL;
    s.status = JOUST__OUTCOME_STATUS__OK;
    s.has_phash = s.has_width = s.has_height = 1;
    s.phash = 0xfedcba9876543210ull;
    s.width = 512;
    s.height = 384;
    CHECK(joust_rec_signature_get(st, 41, &got) == JOUST_ENOTFOUND && !got);
    joust_batch_t *b = joust_batch_new();
    joust_rec_signature_put(b, 41, 1, 0xabcull, &s);
    joust_rec_signature_put(b, 42, 0, 0, &s); /* no content hash: by id only */
    CHECK_RC(joust_store_write(st, b, 1));
    CHECK_RC(joust_rec_signature_get(st, 41, &got));
    CHECK(got && got->phash == s.phash && got->width == 512 && got->height == 384);
    joust_rec_free(got);
    CHECK_RC(joust_rec_signature_by_content(st, 0xabcull, &got));
    CHECK(got && got->phash == s.phash);
    joust_rec_free(got);
    got = NULL;
    CHECK(joust_rec_signature_by_content(st, 0, &got) == JOUST_ENOTFOUND && !got);

    Joust__DuplicateRecord d = JOUST__DUPLICATE_RECORD__INIT;
    d.representative = 5;
    joust_rec_duplicate_put(b, 9, 6, &d);
    joust_rec_duplicate_put(b, 9, 7, &d);
    joust_rec_duplicate_put(b, 10, 8, &d); /* another run's */
    CHECK_RC(joust_store_write(st, b, 1));
    uint64_t acc[2] = {0, 0};
    CHECK_RC(joust_rec_duplicate_each(st, 9, dup_seen, acc));
    CHECK(acc[0] == 2 && acc[1] == 6005 + 7005);
    Joust__RunRecord run = JOUST__RUN_RECORD__INIT;
    run.run_id = 9;
    run.name = "dups";
    CHECK_RC(joust_rec_run_delete(st, &run));
    acc[0] = acc[1] = 0;
    CHECK_RC(joust_rec_duplicate_each(st, 9, dup_seen, acc));
    CHECK(acc[0] == 0);
    CHECK_RC(joust_rec_duplicate_each(st, 10, dup_seen, acc));
    CHECK(acc[0] == 1 && acc[1] == 8005);
    joust_batch_destroy(&b);
}

/* Match records of planning steps (docs/storage.md "Match records"): one
 * record for consecutive ids, read back one match at a time by the
 * cursor, a seek into the middle and a point lookup, beside records of the
 * old one-per-match form; a step whose pairs disagree with its count is
 * refused. */
static void test_match_steps(joust_store_t *st)
{
    joust_batch_t *b = joust_batch_new();
    Joust__MatchRecord one = JOUST__MATCH_RECORD__INIT;
    one.prompt_id = 7;
    one.first = 100;
    one.second = 101;
    joust_rec_match_put(b, 9, 1, &one); /* the old form: id 1 alone */
    uint64_t pairs[300][2];
    for (size_t i = 0; i < 300; i++) { /* ids 2..301; image ids below and above the first */
        pairs[i][0] = 1000 + i % 17;
        pairs[i][1] = 990 + (i * 7) % 23;
    }
    joust_rec_matches_put(b, 9, 2, 8, pairs, 300);
    joust_rec_matches_put(b, 9, 302, 8, pairs, 1);
    /* Ids 400..402 claimed by a record whose pairs are one short. */
    Joust__MatchRecord bad = JOUST__MATCH_RECORD__INIT;
    int64_t d[3] = {1, 2, 3};
    bad.prompt_id = 8;
    bad.has_count = 1;
    bad.count = 3;
    bad.n_pairs = 3;
    bad.pairs = d;
    unsigned char key[12];
    joust_put_be32(key, 9);
    joust_put_be64(key + 4, 402);
    size_t len = protobuf_c_message_get_packed_size(&bad.base);
    unsigned char buf[64];
    CHECK(len <= sizeof buf);
    protobuf_c_message_pack(&bad.base, buf);
    joust_batch_put(b, JOUST_CF_MATCHES, key, sizeof key, buf, len);
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);

    joust_rec_cursor_t *cur;
    CHECK_RC(joust_rec_cursor_new(st, JOUST_REC_MATCHES, 9, &cur));
    uint64_t want = 1, seen = 0, wrong = 0;
    for (; joust_rec_cursor_valid(cur) && want <= 302; joust_rec_cursor_next(cur), want++, seen++) {
        Joust__MatchRecord *m = joust_rec_cursor_match(cur);
        uint64_t f = want == 1 ? 100 : pairs[want == 302 ? 0 : want - 2][0];
        uint64_t s = want == 1 ? 101 : pairs[want == 302 ? 0 : want - 2][1];
        wrong += !m || joust_rec_cursor_id(cur) != want || m->first != f || m->second != s ||
                 m->prompt_id != (want == 1 ? 7u : 8u) || m->has_count || m->n_pairs;
        joust_rec_free(m);
    }
    CHECK(seen == 302 && wrong == 0);
    /* The bad record: one position, its key's id, no record. */
    CHECK(joust_rec_cursor_valid(cur) && joust_rec_cursor_id(cur) == 402 &&
          joust_rec_cursor_match(cur) == NULL);
    joust_rec_cursor_next(cur);
    CHECK(!joust_rec_cursor_valid(cur) && joust_rec_cursor_error(cur) == 0);
    joust_rec_cursor_seek(cur, 150); /* into the middle of the step */
    Joust__MatchRecord *m = joust_rec_cursor_match(cur);
    CHECK(joust_rec_cursor_id(cur) == 150 && m && m->first == pairs[148][0] &&
          m->second == pairs[148][1]);
    joust_rec_free(m);
    joust_rec_cursor_next(cur);
    CHECK(joust_rec_cursor_id(cur) == 151);
    joust_rec_cursor_seek(cur, 303); /* past the steps, onto the bad record */
    CHECK(joust_rec_cursor_id(cur) == 402);
    joust_rec_cursor_destroy(&cur);

    m = NULL;
    CHECK_RC(joust_rec_match_get(st, 9, 301, &m));
    CHECK(m && m->first == pairs[299][0] && m->second == pairs[299][1] && m->prompt_id == 8);
    joust_rec_free(m);
    CHECK_RC(joust_rec_match_get(st, 9, 1, &m));
    CHECK(m && m->first == 100 && m->second == 101);
    joust_rec_free(m);
    CHECK(joust_rec_match_get(st, 9, 303, &m) == JOUST_ECORRUPT && !m); /* the bad one's range */
    CHECK(joust_rec_match_get(st, 9, 403, &m) == JOUST_ENOTFOUND && !m);
    CHECK(joust_rec_match_get(st, 10, 5, &m) == JOUST_ENOTFOUND && !m);
}

/* The outcome encoder writes protobuf-c's own bytes: random records with
 * every field present or absent, values of every size (negative latencies,
 * times and enums: ten-byte varints), strings empty, long or absent. */
static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static uint64_t rnd_value(uint64_t *x)
{
    return rnd(x) >> (rnd(x) % 64); /* every magnitude */
}

static char *rnd_string(uint64_t *x, char *buf, size_t cap)
{
    if (rnd(x) % 3 == 0)
        return NULL;
    size_t n = rnd(x) % 4 ? rnd(x) % 12 : rnd(x) % (cap - 1);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(1 + rnd(x) % 255);
    buf[n] = 0;
    return buf;
}

static void test_outcome_encoder(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    static char s1[400], s2[400], s3[400], s4[400];
    unsigned char want[2048], got[2048];
    int wrong = 0, over = 0;
    for (int it = 0; it < 200000; it++) {
        Joust__OutcomeRecord o = JOUST__OUTCOME_RECORD__INIT;
        o.prompt_id = rnd_value(&x);
        o.first = rnd_value(&x);
        o.second = rnd_value(&x);
        o.status = (Joust__OutcomeStatus)(int32_t)rnd_value(&x);
        uint64_t has = rnd(&x);
        o.has_p_first = has & 1;
        uint64_t bits = rnd(&x);
        memcpy(&o.p_first, &bits, sizeof bits);
        o.has_answer = has >> 1 & 1;
        o.answer = (uint32_t)rnd_value(&x);
        o.judge = rnd_string(&x, s1, sizeof s1);
        o.model = rnd_string(&x, s2, sizeof s2);
        o.worker = rnd_string(&x, s3, sizeof s3);
        o.has_attempt = has >> 2 & 1;
        o.attempt = (uint32_t)rnd_value(&x);
        o.has_latency_us = has >> 3 & 1;
        o.latency_us = (int64_t)rnd_value(&x) * (has >> 20 & 1 ? -1 : 1);
        o.has_tokens = has >> 4 & 1;
        o.tokens = (uint32_t)rnd_value(&x);
        o.error = rnd_string(&x, s4, sizeof s4);
        o.has_failed_image_id = has >> 5 & 1;
        o.failed_image_id = rnd_value(&x);
        o.has_committed_ms = has >> 6 & 1;
        o.committed_ms = (int64_t)rnd_value(&x) * (has >> 21 & 1 ? -1 : 1);
        o.has_kind = has >> 7 & 1;
        o.kind = (Joust__OutcomeKind)(int32_t)rnd_value(&x);
        o.has_reused_run = has >> 8 & 1;
        o.reused_run = (uint32_t)rnd_value(&x);
        o.has_reused_match = has >> 9 & 1;
        o.reused_match = rnd_value(&x);
        size_t n = protobuf_c_message_pack(&o.base, want);
        size_t max = joust_rec_outcome_packed_max(&o);
        over += n > max || max > sizeof got;
        size_t m = joust_rec_outcome_pack(&o, got);
        wrong += m != n || memcmp(want, got, n) != 0;
    }
    CHECK(wrong == 0 && over == 0);
}

int main(void)
{
    if (storetest_begin() < 0)
        return 1;
    joust_store_t *st = NULL;
    CHECK_RC(joust_store_open(storetest_path("db"), JOUST_STORE_CREATE, &st));
    if (st) {
        test_counters_and_indexes(st);
        test_runs(st);
        test_prompts_and_images(st);
        test_run_records(st);
        test_signatures(st);
        test_match_steps(st);
        joust_store_destroy(&st);
    }
    test_counts_classes();
    test_outcome_encoder();
    storetest_end();
    return test_report();
}
