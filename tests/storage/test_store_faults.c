/* Tests of the store's failure behaviour (storage/store.h): the fault seam
 * in both modes (nothing written / written but not synced), the sticky
 * failed state that refuses every later write while reads go on, a clean
 * close after a failed write (no RocksDB assertion) and a healthy reopen,
 * the JOUST_TEST_STORE_FAULT variable, and the read-only open beside a
 * writer that holds the store (what `joust status` uses). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "store.h"
#include "storage/storetest.h"


static int put_synced(joust_store_t *s, const char *key)
{
    joust_batch_t *b = joust_batch_new();
    joust_batch_put(b, JOUST_CF_OUTCOMES, key, strlen(key), "v", 1);
    int rc = joust_store_write(s, b, 1);
    joust_batch_destroy(&b);
    return rc;
}

static void test_fault_write(void)
{
    joust_store_t *s = NULL;
    CHECK_RC(joust_store_open(storetest_path("w"), JOUST_STORE_CREATE, &s));
    if (!s)
        return;
    joust_store_fault(s, JOUST_FAULT_WRITE, 1);
    CHECK_RC(put_synced(s, "k1"));
    CHECK(joust_store_failed(s) == 0);
    CHECK(put_synced(s, "k2") == JOUST_ENOSPC);
    CHECK(joust_store_failed(s) == JOUST_ENOSPC);
    /* Sticky: every later write is refused, whatever its kind. */
    CHECK(put_synced(s, "k3") == JOUST_ENOSPC);
    CHECK(joust_store_put(s, JOUST_CF_OUTCOMES, "k4", 2, "v", 1) == JOUST_ENOSPC);
    CHECK(joust_store_delete_prefix(s, JOUST_CF_OUTCOMES, "k", 1) == JOUST_ENOSPC);
    joust_batch_t *empty = joust_batch_new();
    CHECK(joust_store_write(s, empty, 1) == JOUST_ENOSPC);
    joust_batch_destroy(&empty);
    /* Reads go on. */
    CHECK(storetest_has(s, "k1") && !storetest_has(s, "k2") && !storetest_has(s, "k3") && !storetest_has(s, "k4"));
    joust_store_destroy(&s); /* must not abort */
    CHECK(s == NULL);
    CHECK_RC(joust_store_open(storetest_path("w"), JOUST_STORE_EXISTING, &s));
    if (!s)
        return;
    CHECK(joust_store_failed(s) == 0);
    CHECK(storetest_has(s, "k1") && !storetest_has(s, "k2"));
    CHECK_RC(put_synced(s, "k5"));
    CHECK(storetest_has(s, "k5"));
    joust_store_destroy(&s);
}

static void test_fault_sync(void)
{
    joust_store_t *s = NULL;
    CHECK_RC(joust_store_open(storetest_path("s"), JOUST_STORE_CREATE, &s));
    if (!s)
        return;
    joust_store_fault(s, JOUST_FAULT_SYNC, 0);
    CHECK(put_synced(s, "k1") == JOUST_ENOSPC);
    CHECK(put_synced(s, "k2") == JOUST_ENOSPC);
    joust_store_destroy(&s);
    CHECK_RC(joust_store_open(storetest_path("s"), JOUST_STORE_EXISTING, &s));
    if (!s)
        return;
    /* The write whose sync "failed" reached the WAL: it survives. */
    CHECK(storetest_has(s, "k1") && !storetest_has(s, "k2"));
    /* Disarmed (mode 0): nothing fails. */
    joust_store_fault(s, JOUST_FAULT_WRITE, 0);
    joust_store_fault(s, 0, 0);
    CHECK_RC(put_synced(s, "k3"));
    joust_store_destroy(&s);
}

static void test_fault_env(void)
{
    joust_store_t *s = NULL;
    setenv("JOUST_TEST_STORE_FAULT", "write:0", 1);
    CHECK_RC(joust_store_open(storetest_path("e"), JOUST_STORE_CREATE, &s));
    if (s) {
        CHECK(put_synced(s, "k1") == JOUST_ENOSPC);
        joust_store_destroy(&s);
    }
    setenv("JOUST_TEST_STORE_FAULT", "write:x", 1); /* malformed: ignored */
    CHECK_RC(joust_store_open(storetest_path("e"), JOUST_STORE_EXISTING, &s));
    if (s) {
        CHECK_RC(put_synced(s, "k1"));
        joust_store_destroy(&s);
    }
    unsetenv("JOUST_TEST_STORE_FAULT");
}

static void test_readonly(void)
{
    joust_store_t *w = NULL, *r = NULL, *w2 = NULL;
    CHECK(joust_store_open(storetest_path("none"), JOUST_STORE_READONLY, &r) == JOUST_ENOTFOUND);
    CHECK_RC(joust_store_open(storetest_path("ro"), JOUST_STORE_CREATE, &w));
    if (!w)
        return;
    CHECK_RC(put_synced(w, "a"));
    CHECK_RC(joust_store_put(w, JOUST_CF_OUTCOMES, "b", 1, "v", 1)); /* unsynced */
    /* The writer holds the LOCK: a second writer is refused... */
    CHECK(joust_store_open(storetest_path("ro"), JOUST_STORE_EXISTING, &w2) == JOUST_ESTORE && !w2);
    /* ...a reader is not, and sees what was written before it opened. */
    CHECK_RC(joust_store_open(storetest_path("ro"), JOUST_STORE_READONLY, &r));
    if (r) {
        CHECK(storetest_has(r, "a") && storetest_has(r, "b"));
        joust_iter_t *it = NULL;
        size_t n = 0;
        CHECK_RC(joust_iter_new(r, JOUST_CF_OUTCOMES, NULL, 0, &it));
        for (; it && joust_iter_valid(it); joust_iter_next(it))
            n++;
        joust_iter_destroy(&it);
        CHECK(n == 2);
        CHECK(put_synced(r, "c") == JOUST_EUNSUPPORTED);
        CHECK(joust_store_put(r, JOUST_CF_OUTCOMES, "c", 1, "v", 1) == JOUST_EUNSUPPORTED);
        CHECK(joust_store_failed(r) == 0 && !storetest_has(r, "c"));
        joust_store_destroy(&r);
    }
    /* The writer is unaffected; a new reader sees its later writes. */
    CHECK_RC(put_synced(w, "d"));
    CHECK_RC(joust_store_open(storetest_path("ro"), JOUST_STORE_READONLY, &r));
    if (r) {
        CHECK(storetest_has(r, "d"));
        joust_store_destroy(&r);
    }
    joust_store_destroy(&w);
}

int main(void)
{
    if (storetest_begin() < 0)
        return 1;
    test_fault_write();
    test_fault_sync();
    test_fault_env();
    test_readonly();
    storetest_end();
    return test_report();
}
