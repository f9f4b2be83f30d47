/* Tests of the group committer (coordinator/committer.h) on a real store:
 * submit swaps in an empty batch, a second submit while busy is refused,
 * the descriptor turns readable when the write is done and reap drains it,
 * results land synced, many rounds in a row, a failed write (the store's
 * fault seam) comes back through reap and stays failed, and destroy waits
 * for a write in flight; the group-commit rule's cases. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "committer.h"
#include "err.h"
#include "store.h"
#include "storage/storetest.h"


static int readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void test_round_trip(joust_store_t *st)
{
    joust_committer_t *c = NULL;
    CHECK_RC(joust_committer_new(st, &c));
    if (!c)
        return;
    int rc = 1;
    CHECK(!joust_committer_busy(c) && joust_committer_reap(c, 0, &rc) == 0 && rc == 1);
    CHECK(joust_committer_reap(c, 1, &rc) == 0); /* nothing in flight: no wait */
    joust_batch_t *b = joust_batch_new(), *mine = b;
    joust_batch_put(b, JOUST_CF_OUTCOMES, "a", 1, "1", 1);
    joust_batch_put(b, JOUST_CF_OUTCOMES, "b", 1, "2", 1);
    CHECK_RC(joust_committer_submit(c, &b));
    CHECK(b != mine && joust_batch_count(b) == 0);
    CHECK(joust_committer_busy(c));
    joust_batch_put(b, JOUST_CF_OUTCOMES, "c", 1, "3", 1);
    joust_batch_t *held = b;
    CHECK(joust_committer_submit(c, &b) == JOUST_EAGAIN); /* one write at a time */
    CHECK(b == held && joust_batch_count(b) == 1);
    CHECK(readable(joust_committer_fd(c), 5000));
    CHECK(joust_committer_reap(c, 0, &rc) == 1 && rc == 0);
    CHECK(!joust_committer_busy(c));
    CHECK(!readable(joust_committer_fd(c), 0)); /* drained */
    CHECK(storetest_has(st, "a") && storetest_has(st, "b") && !storetest_has(st, "c"));
    CHECK_RC(joust_committer_submit(c, &b));
    CHECK(joust_committer_reap(c, 1, &rc) == 1 && rc == 0 && storetest_has(st, "c"));
    /* Many rounds: the two batches keep swapping. */
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof key, "r%03d", i);
        joust_batch_put(b, JOUST_CF_OUTCOMES, key, strlen(key), "v", 1);
        bad += joust_committer_submit(c, &b) != 0;
        bad += joust_committer_reap(c, 1, &rc) != 1 || rc != 0;
        bad += !storetest_has(st, key);
    }
    CHECK(bad == 0);
    joust_batch_destroy(&b);
    joust_committer_destroy(&c);
    CHECK(c == NULL);
    joust_committer_destroy(&c); /* a no-op */
}

static void test_failed_write(joust_store_t *st)
{
    joust_committer_t *c = NULL;
    CHECK_RC(joust_committer_new(st, &c));
    if (!c)
        return;
    joust_store_fault(st, JOUST_FAULT_WRITE, 0);
    joust_batch_t *b = joust_batch_new();
    joust_batch_put(b, JOUST_CF_OUTCOMES, "f1", 2, "v", 1);
    int rc = 0;
    CHECK_RC(joust_committer_submit(c, &b));
    CHECK(joust_committer_reap(c, 1, &rc) == 1 && rc == JOUST_ENOSPC);
    CHECK(!storetest_has(st, "f1"));
    joust_batch_put(b, JOUST_CF_OUTCOMES, "f2", 2, "v", 1);
    CHECK_RC(joust_committer_submit(c, &b));
    CHECK(joust_committer_reap(c, 1, &rc) == 1 && rc == JOUST_ENOSPC); /* stays failed */
    CHECK(!storetest_has(st, "f2"));
    joust_batch_destroy(&b);
    joust_committer_destroy(&c);
}

static void test_destroy_waits(const char *path)
{
    joust_store_t *st = NULL;
    CHECK_RC(joust_store_open(path, JOUST_STORE_CREATE, &st));
    if (!st)
        return;
    joust_committer_t *c = NULL;
    CHECK_RC(joust_committer_new(st, &c));
    joust_batch_t *b = joust_batch_new();
    for (int i = 0; i < 5000; i++) {
        char key[16];
        snprintf(key, sizeof key, "d%05d", i);
        joust_batch_put(b, JOUST_CF_OUTCOMES, key, strlen(key), "v", 1);
    }
    CHECK_RC(joust_committer_submit(c, &b));
    joust_committer_destroy(&c); /* in flight: waits for it */
    CHECK(storetest_has(st, "d00000") && storetest_has(st, "d04999"));
    joust_batch_destroy(&b);
    joust_store_destroy(&st);
}

/* joust_commit_due / _full: full at max results or max_bytes; due when
 * full, when the writer is idle and min are staged, or after ms; never
 * with nothing staged. */
static void test_rule(void)
{
    joust_commit_rule r;
    joust_commit_rule_defaults(&r);
    CHECK(r.min == 1024 && r.max == 16384 && r.max_bytes == 8u << 20 && r.ms == 50);
    r = (joust_commit_rule){.min = 4, .max = 10, .max_bytes = 100, .ms = 50};
    CHECK(!joust_commit_full(&r, 9, 99) && joust_commit_full(&r, 10, 0) &&
          joust_commit_full(&r, 1, 100));
    CHECK(!joust_commit_due(&r, 0, 0, 1000, 0));  /* nothing staged */
    CHECK(!joust_commit_due(&r, 3, 10, 49, 0));   /* idle, under min, not old */
    CHECK(joust_commit_due(&r, 4, 10, 0, 0));     /* idle at min */
    CHECK(!joust_commit_due(&r, 9, 10, 49, 1));   /* a write in flight */
    CHECK(joust_commit_due(&r, 10, 10, 0, 1));    /* full */
    CHECK(joust_commit_due(&r, 1, 200, 0, 1));    /* full by bytes */
    CHECK(joust_commit_due(&r, 1, 10, 50, 1));    /* old */
    r.max_bytes = 0;                              /* no byte limit */
    CHECK(!joust_commit_full(&r, 1, (size_t)1 << 40));
}

int main(void)
{
    test_rule();
    if (storetest_begin() < 0)
        return 1;
    joust_store_t *st = NULL;
    CHECK_RC(joust_store_open(storetest_path("db"), JOUST_STORE_CREATE, &st));
    if (st) {
        test_round_trip(st);
        test_failed_write(st);
        joust_store_destroy(&st);
    }
    test_destroy_waits(storetest_path("db2"));
    storetest_end();
    return test_report();
}
