/* Tests of the RocksDB store (storage/store.h): open/create, point reads and
 * writes in every column family, batches across families, durability across
 * reopen and across a crashed writer, prefix iteration (0xff edges), seek,
 * prefix deletion, big-endian key order and a 100k-record batch.
 * Everything happens in a fresh mkdtemp directory removed at the end. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bytes.h"
#include "check.h"
#include "testfs.h"
#include "err.h"
#include "store.h"

static char tmpdir[] = "/tmp/joust-storage-XXXXXX";

static char *path_in(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static int has(joust_store_t *s, joust_cf cf, const void *k, size_t klen, const void *v,
               size_t vlen)
{
    void *got = NULL;
    size_t glen = 0;
    int rc = joust_store_get(s, cf, k, klen, &got, &glen);
    int ok = rc == 0 && glen == vlen && memcmp(got, v, vlen) == 0 && ((char *)got)[vlen] == 0;
    free(got);
    return ok;
}

static int absent(joust_store_t *s, joust_cf cf, const void *k, size_t klen)
{
    void *got = (void *)1;
    size_t glen = 7;
    int rc = joust_store_get(s, cf, k, klen, &got, &glen);
    return rc == JOUST_ENOTFOUND && got == NULL && glen == 0;
}

/* Collects the keys of a prefix scan as "hex,hex,..." for easy comparison. */
static void scan_hex(joust_store_t *s, joust_cf cf, const void *prefix, size_t plen,
                     const void *from, size_t flen, char *out, size_t outsz)
{
    joust_iter_t *it = NULL;
    out[0] = 0;
    if (joust_iter_new(s, cf, prefix, plen, &it) != 0) {
        snprintf(out, outsz, "ERR");
        return;
    }
    if (from)
        joust_iter_seek(it, from, flen);
    size_t o = 0;
    for (; joust_iter_valid(it); joust_iter_next(it)) {
        size_t klen;
        const unsigned char *k = joust_iter_key(it, &klen);
        if (o && o + 1 < outsz)
            out[o++] = ',';
        for (size_t i = 0; i < klen && o + 3 < outsz; i++)
            o += (size_t)snprintf(out + o, outsz - o, "%02x", k[i]);
    }
    out[o] = 0;
    if (joust_iter_error(it))
        snprintf(out, outsz, "ITERERR");
    joust_iter_destroy(&it);
}

/* ---- crash safety (runs first, before this process touches RocksDB, so
 * the forked children never inherit RocksDB threads or locks) ---- */

enum { CRASH_N = 300 };

static void put_be64_key(joust_batch_t *b, joust_cf cf, uint64_t id, const char *val)
{
    unsigned char k[8];
    joust_put_be64(k, id);
    joust_batch_put(b, cf, k, sizeof k, val, strlen(val));
}

/* Child: N synced batches (two families each), then _exit without closing. */
static void crash_child_exit(const char *dir)
{
    joust_store_t *s = NULL;
    if (joust_store_open(dir, 1, &s) != 0)
        _exit(2);
    joust_batch_t *b = joust_batch_new();
    for (uint64_t i = 0; i < CRASH_N; i++) {
        joust_batch_clear(b);
        put_be64_key(b, JOUST_CF_OUTCOMES, i, "outcome");
        put_be64_key(b, JOUST_CF_MATCHES, i, "match");
        if (joust_store_write(s, b, 1) != 0)
            _exit(3);
    }
    _exit(0); /* no close, no flush: like a kill after the last ACK */
}

/* Child: synced batches forever, "ACKing" each id on the pipe after the
 * write returns; the parent SIGKILLs it mid-stream. */
static void crash_child_kill(const char *dir, int wfd)
{
    joust_store_t *s = NULL;
    if (joust_store_open(dir, 1, &s) != 0)
        _exit(2);
    joust_batch_t *b = joust_batch_new();
    for (uint64_t i = 0;; i++) {
        joust_batch_clear(b);
        put_be64_key(b, JOUST_CF_OUTCOMES, i, "outcome");
        put_be64_key(b, JOUST_CF_RATIONALES, i, "because");
        if (joust_store_write(s, b, 1) != 0)
            _exit(3);
        if (write(wfd, &i, sizeof i) != (ssize_t)sizeof i)
            _exit(4);
    }
}

static void test_crash_safety(void)
{
    const char *dir1 = path_in("crash-exit");
    const char *dir2 = path_in("crash-kill");

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        crash_child_exit(dir1);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    int fds[2];
    CHECK(pipe(fds) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child_kill(dir2, fds[1]);
    }
    close(fds[1]);
    uint64_t last = UINT64_MAX, got;
    int killed = 0;
    ssize_t n;
    while ((n = read(fds[0], &got, sizeof got)) == (ssize_t)sizeof got) {
        last = got;
        if (!killed && got >= 200) {
            kill(pid, SIGKILL);
            killed = 1;
        }
    }
    close(fds[0]);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(last != UINT64_MAX && last >= 200);

    joust_store_t *s = NULL;
    CHECK_RC(joust_store_open(dir1, 0, &s));
    if (s) {
        int missing = 0;
        for (uint64_t i = 0; i < CRASH_N; i++) {
            unsigned char k[8];
            joust_put_be64(k, i);
            missing += !has(s, JOUST_CF_OUTCOMES, k, 8, "outcome", 7);
            missing += !has(s, JOUST_CF_MATCHES, k, 8, "match", 5);
        }
        CHECK(missing == 0);
        joust_store_destroy(&s);
    }
    CHECK_RC(joust_store_open(dir2, 0, &s));
    if (s && last != UINT64_MAX) {
        int missing = 0;
        for (uint64_t i = 0; i <= last; i++) {
            unsigned char k[8];
            joust_put_be64(k, i);
            missing += !has(s, JOUST_CF_OUTCOMES, k, 8, "outcome", 7);
            missing += !has(s, JOUST_CF_RATIONALES, k, 8, "because", 7);
        }
        CHECK(missing == 0);
        /* Atomic across families: every outcome has its rationale. */
        joust_iter_t *it = NULL;
        size_t outcomes = 0, rationales = 0;
        CHECK_RC(joust_iter_new(s, JOUST_CF_OUTCOMES, NULL, 0, &it));
        for (; joust_iter_valid(it); joust_iter_next(it))
            outcomes++;
        joust_iter_destroy(&it);
        CHECK_RC(joust_iter_new(s, JOUST_CF_RATIONALES, NULL, 0, &it));
        for (; joust_iter_valid(it); joust_iter_next(it))
            rationales++;
        joust_iter_destroy(&it);
        CHECK(outcomes == rationales && outcomes >= last + 1);
    }
    joust_store_destroy(&s);
    CHECK(s == NULL);
}

/* ---- open ---- */

static void test_open(void)
{
    joust_store_t *s = (joust_store_t *)1;
    CHECK(joust_store_open(path_in("missing"), 0, &s) == JOUST_ENOTFOUND);
    CHECK(s == NULL);
    CHECK(joust_store_open("/nonexistent-joust-dir/x/y", 0, &s) == JOUST_ENOTFOUND);

    /* A regular file where the database should be. */
    const char *file = path_in("plainfile");
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK(joust_store_open(file, 0, &s) == JOUST_ENOTFOUND);
    CHECK(joust_store_open(file, 1, &s) == JOUST_ESTORE);
    CHECK(s == NULL);

    CHECK_RC(joust_store_open(path_in("db"), 1, &s));
    CHECK(s != NULL);
    /* A second open of the same database fails on RocksDB's lock. */
    joust_store_t *s2 = NULL;
    CHECK(joust_store_open(path_in("db"), 1, &s2) == JOUST_ESTORE);
    CHECK(s2 == NULL);
    joust_store_destroy(&s);
    CHECK(s == NULL);
    joust_store_destroy(&s); /* NULL is fine */

    /* Existing database opens without create. */
    CHECK_RC(joust_store_open(path_in("db"), 0, &s));
    joust_store_destroy(&s);

    CHECK(!strcmp(joust_cf_name(JOUST_CF_META), "default"));
    CHECK(!strcmp(joust_cf_name(JOUST_CF_RUNS), "runs"));
    CHECK(!strcmp(joust_cf_name(JOUST_CF_SCORES), "scores"));
    CHECK(!strcmp(joust_cf_name(JOUST_CF_RATIONALES), "rationales"));
}

/* ---- point reads and writes ---- */

static void test_put_get(joust_store_t *s)
{
    for (int cf = 0; cf < JOUST_CF_COUNT; cf++) {
        char key[32], val[64];
        snprintf(key, sizeof key, "key-%d", cf);
        snprintf(val, sizeof val, "value in %s", joust_cf_name((joust_cf)cf));
        CHECK_RC(joust_store_put(s, (joust_cf)cf, key, strlen(key), val, strlen(val)));
    }
    for (int cf = 0; cf < JOUST_CF_COUNT; cf++) {
        char key[32], val[64];
        snprintf(key, sizeof key, "key-%d", cf);
        snprintf(val, sizeof val, "value in %s", joust_cf_name((joust_cf)cf));
        CHECK(has(s, (joust_cf)cf, key, strlen(key), val, strlen(val)));
        /* Families are separate key spaces. */
        int other = (cf + 1) % JOUST_CF_COUNT;
        CHECK(absent(s, (joust_cf)other, key, strlen(key)));
    }
    CHECK(absent(s, JOUST_CF_OUTCOMES, "nope", 4));

    /* The copy is NUL-terminated for string values. */
    void *v = NULL;
    size_t vlen = 0;
    CHECK_RC(joust_store_get(s, JOUST_CF_RUNS, "key-1", 5, &v, &vlen));
    CHECK(v && !strcmp(v, "value in runs") && vlen == 13);
    free(v);

    /* Embedded zeros in keys and values. */
    const unsigned char k1[] = {0, 0, 1, 0}, k2[] = {0, 0, 1}, k3[] = {0};
    const unsigned char v1[] = {'a', 0, 'b', 0};
    CHECK_RC(joust_store_put(s, JOUST_CF_IMAGES, k1, sizeof k1, v1, sizeof v1));
    CHECK_RC(joust_store_put(s, JOUST_CF_IMAGES, k2, sizeof k2, "two", 3));
    CHECK(has(s, JOUST_CF_IMAGES, k1, sizeof k1, v1, sizeof v1));
    CHECK(has(s, JOUST_CF_IMAGES, k2, sizeof k2, "two", 3));
    CHECK(absent(s, JOUST_CF_IMAGES, k3, sizeof k3));

    /* Empty value and empty key. */
    CHECK_RC(joust_store_put(s, JOUST_CF_PROMPTS, "empty", 5, NULL, 0));
    CHECK(has(s, JOUST_CF_PROMPTS, "empty", 5, "", 0));
    CHECK_RC(joust_store_put(s, JOUST_CF_PROMPTS, "", 0, "ek", 2));
    CHECK(has(s, JOUST_CF_PROMPTS, "", 0, "ek", 2));

    /* A family out of range is an error, not a crash. */
    joust_cf bad = JOUST_CF_COUNT;
    CHECK(joust_store_put(s, bad, "k", 1, "v", 1) == JOUST_EINVAL);
    CHECK(joust_store_get(s, bad, "k", 1, &v, &vlen) == JOUST_EINVAL && v == NULL);
    joust_iter_t *it = (joust_iter_t *)1;
    CHECK(joust_iter_new(s, bad, NULL, 0, &it) == JOUST_EINVAL && it == NULL);
    CHECK(joust_store_delete_prefix(s, bad, "k", 1) == JOUST_EINVAL);
    CHECK(!strcmp(joust_cf_name(bad), "?"));
    joust_batch_t *b = joust_batch_new();
    joust_batch_put(b, JOUST_CF_RUNS, "good", 4, "v", 1);
    joust_batch_put(b, bad, "k", 1, "v", 1);
    CHECK(joust_store_write(s, b, 0) == JOUST_EINVAL);
    CHECK(absent(s, JOUST_CF_RUNS, "good", 4)); /* nothing of a failed batch */
    joust_batch_clear(b);
    joust_batch_put(b, JOUST_CF_RUNS, "good", 4, "v", 1);
    CHECK_RC(joust_store_write(s, b, 0));
    CHECK(has(s, JOUST_CF_RUNS, "good", 4, "v", 1));
    joust_batch_destroy(&b);

    /* Overwrite. */
    CHECK_RC(joust_store_put(s, JOUST_CF_PROMPTS, "empty", 5, "now full", 8));
    CHECK(has(s, JOUST_CF_PROMPTS, "empty", 5, "now full", 8));
}

/* ---- batches ---- */

static void test_batch(joust_store_t *s)
{
    joust_batch_t *b = joust_batch_new();
    CHECK(joust_batch_count(b) == 0);
    CHECK_RC(joust_store_write(s, b, 0)); /* empty batch */
    CHECK_RC(joust_store_write(s, b, 1)); /* empty synced batch */

    joust_batch_put(b, JOUST_CF_MATCHES, "m1", 2, "match", 5);
    joust_batch_put(b, JOUST_CF_OUTCOMES, "m1", 2, "outcome", 7);
    joust_batch_put(b, JOUST_CF_RATIONALES, "m1", 2, "reason", 6);
    joust_batch_put(b, JOUST_CF_META, "counter", 7, "1", 1);
    joust_batch_delete(b, JOUST_CF_RUNS, "key-1", 5);
    CHECK(joust_batch_count(b) == 5);
    CHECK(joust_batch_bytes(b) >= 2 + 5 + 2 + 7 + 2 + 6 + 7 + 1 + 5);
    /* Nothing is visible before the write. */
    CHECK(absent(s, JOUST_CF_MATCHES, "m1", 2));
    CHECK(has(s, JOUST_CF_RUNS, "key-1", 5, "value in runs", 13));
    CHECK_RC(joust_store_write(s, b, 1));
    CHECK(has(s, JOUST_CF_MATCHES, "m1", 2, "match", 5));
    CHECK(has(s, JOUST_CF_OUTCOMES, "m1", 2, "outcome", 7));
    CHECK(has(s, JOUST_CF_RATIONALES, "m1", 2, "reason", 6));
    CHECK(has(s, JOUST_CF_META, "counter", 7, "1", 1));
    CHECK(absent(s, JOUST_CF_RUNS, "key-1", 5));

    /* Later operations in a batch win over earlier ones on the same key. */
    joust_batch_clear(b);
    CHECK(joust_batch_count(b) == 0);
    joust_batch_put(b, JOUST_CF_META, "counter", 7, "2", 1);
    joust_batch_delete(b, JOUST_CF_META, "counter", 7);
    joust_batch_put(b, JOUST_CF_META, "counter", 7, "3", 1);
    unsigned char zk[] = {0, 'z', 0};
    joust_batch_put(b, JOUST_CF_META, zk, sizeof zk, "", 0);
    CHECK_RC(joust_store_write(s, b, 0));
    CHECK(has(s, JOUST_CF_META, "counter", 7, "3", 1));
    CHECK(has(s, JOUST_CF_META, zk, sizeof zk, "", 0));

    /* A batch is reusable after a write without clear (same content). */
    CHECK_RC(joust_store_write(s, b, 1));
    CHECK(joust_batch_count(b) == 4);
    joust_batch_destroy(&b);
    CHECK(b == NULL);
    joust_batch_destroy(&b);
}

/* ---- durability across reopen ---- */

static void test_reopen(joust_store_t **sp)
{
    const char *dir = path_in("db");
    joust_store_destroy(sp);
    CHECK_RC(joust_store_open(dir, 0, sp));
    joust_store_t *s = *sp;
    if (!s)
        return;
    CHECK(has(s, JOUST_CF_MATCHES, "m1", 2, "match", 5));
    CHECK(has(s, JOUST_CF_META, "counter", 7, "3", 1));
    CHECK(has(s, JOUST_CF_PROMPTS, "empty", 5, "now full", 8));
    CHECK(has(s, JOUST_CF_SCORES, "key-7", 5, "value in scores", 15));
    CHECK(absent(s, JOUST_CF_RUNS, "key-1", 5));
}

/* Bytes of the WAL files (*.log) in dir. */
static long long wal_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    long long total = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        struct stat st;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".log") && stat(path, &st) == 0)
            total += st.st_size;
    }
    closedir(d);
    return total;
}

/* ---- iteration ---- */

static void test_iter(joust_store_t *s)
{
    /* Keys around 0xff edges in the scores family (empty so far except key-7). */
    static const unsigned char keys[][4] = {
        {0x01, 0xfe, 0, 0},    {0x01, 0xfe, 0xff, 0}, {0x01, 0xff, 0, 0},
        {0x01, 0xff, 0x00, 0}, {0x01, 0xff, 0xff, 0}, {0x01, 0xff, 0xff, 0xff},
        {0x02, 0, 0, 0},       {0xff, 0xfe, 0, 0},    {0xff, 0xff, 0, 0},
        {0xff, 0xff, 0xff, 0}, {0xff, 0xff, 0x01, 0},
    };
    static const size_t lens[] = {2, 3, 2, 3, 3, 4, 1, 2, 2, 3, 3};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        CHECK_RC(joust_store_put(s, JOUST_CF_OUTCOMES, keys[i], lens[i], "v", 1));
    /* Also in outcomes: "key-5" (6b65792d35) and "m1" (6d31). */

    char out[512];
    scan_hex(s, JOUST_CF_OUTCOMES, "\x01\xff", 2, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "01ff,01ff00,01ffff,01ffffff"));
    scan_hex(s, JOUST_CF_OUTCOMES, "\x01\xff\xff", 3, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "01ffff,01ffffff"));
    scan_hex(s, JOUST_CF_OUTCOMES, "\x01", 1, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "01fe,01feff,01ff,01ff00,01ffff,01ffffff"));
    scan_hex(s, JOUST_CF_OUTCOMES, "\x01\xfe", 2, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "01fe,01feff"));
    /* All-0xff prefixes have no upper bound but still stop at the prefix. */
    scan_hex(s, JOUST_CF_OUTCOMES, "\xff\xff", 2, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "ffff,ffff01,ffffff"));
    scan_hex(s, JOUST_CF_OUTCOMES, "\xff", 1, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "fffe,ffff,ffff01,ffffff"));
    scan_hex(s, JOUST_CF_OUTCOMES, "\x03", 1, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, ""));
    /* Whole family. */
    scan_hex(s, JOUST_CF_OUTCOMES, NULL, 0, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "01fe,01feff,01ff,01ff00,01ffff,01ffffff,02,6b65792d35,6d31,fffe,ffff,ffff01,ffffff"));

    /* Seek within a prefix. */
    scan_hex(s, JOUST_CF_OUTCOMES, "\x01", 1, "\xff", 1, out, sizeof out);
    CHECK(!strcmp(out, "01ff,01ff00,01ffff,01ffffff"));
    scan_hex(s, JOUST_CF_OUTCOMES, "\x01", 1, "\xff\x01", 2, out, sizeof out);
    CHECK(!strcmp(out, "01ffff,01ffffff"));
    scan_hex(s, JOUST_CF_OUTCOMES, "\x01", 1, "\xff\xff\xff\xff", 4, out, sizeof out);
    CHECK(!strcmp(out, ""));
    scan_hex(s, JOUST_CF_OUTCOMES, "\xff\xff", 2, "\x00", 1, out, sizeof out);
    CHECK(!strcmp(out, "ffff01,ffffff"));
    scan_hex(s, JOUST_CF_OUTCOMES, NULL, 0, "\x6d", 1, out, sizeof out);
    CHECK(!strcmp(out, "6d31,fffe,ffff,ffff01,ffffff"));

    /* Values, re-seek backwards on the same iterator, and an exhausted
     * iterator stays safely invalid. */
    joust_iter_t *it = NULL;
    CHECK_RC(joust_iter_new(s, JOUST_CF_OUTCOMES, "\x01\xff", 2, &it));
    size_t vlen = 0, klen = 0;
    const char *v = joust_iter_value(it, &vlen);
    CHECK(v && vlen == 1 && v[0] == 'v');
    int n = 0;
    while (joust_iter_valid(it)) {
        joust_iter_next(it);
        n++;
    }
    CHECK(n == 4);
    joust_iter_next(it);
    CHECK(!joust_iter_valid(it));
    CHECK(joust_iter_key(it, &klen) == NULL && klen == 0);
    CHECK(joust_iter_error(it) == 0);
    joust_iter_seek(it, "\xff", 1);
    const unsigned char *k = joust_iter_key(it, &klen);
    CHECK(k && klen == 3 && k[2] == 0xff);
    joust_iter_seek(it, NULL, 0);
    k = joust_iter_key(it, &klen);
    CHECK(k && klen == 2);
    joust_iter_destroy(&it);
    CHECK(it == NULL);
}

static void test_delete_prefix(joust_store_t *s)
{
    char out[512];
    CHECK_RC(joust_store_delete_prefix(s, JOUST_CF_OUTCOMES, "\x01\xff", 2));
    scan_hex(s, JOUST_CF_OUTCOMES, NULL, 0, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "01fe,01feff,02,6b65792d35,6d31,fffe,ffff,ffff01,ffffff"));
    /* All-0xff prefix (no range end): key-by-key path. */
    CHECK_RC(joust_store_delete_prefix(s, JOUST_CF_OUTCOMES, "\xff\xff", 2));
    scan_hex(s, JOUST_CF_OUTCOMES, NULL, 0, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "01fe,01feff,02,6b65792d35,6d31,fffe"));
    /* A prefix with nothing under it. */
    CHECK_RC(joust_store_delete_prefix(s, JOUST_CF_OUTCOMES, "\x05", 1));
    scan_hex(s, JOUST_CF_OUTCOMES, NULL, 0, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, "01fe,01feff,02,6b65792d35,6d31,fffe"));
    CHECK(has(s, JOUST_CF_OUTCOMES, "\x01\xfe", 2, "v", 1));
    /* Other families untouched. */
    CHECK(has(s, JOUST_CF_MATCHES, "m1", 2, "match", 5));
    /* The whole family (empty prefix). */
    CHECK_RC(joust_store_delete_prefix(s, JOUST_CF_OUTCOMES, NULL, 0));
    scan_hex(s, JOUST_CF_OUTCOMES, NULL, 0, NULL, 0, out, sizeof out);
    CHECK(!strcmp(out, ""));
    CHECK(has(s, JOUST_CF_RATIONALES, "m1", 2, "reason", 6));

    /* Run-scoped layout: be32 run ‖ be64 id; deleting run 7 keeps runs 6, 8. */
    joust_batch_t *b = joust_batch_new();
    for (uint32_t run = 6; run <= 8; run++)
        for (uint64_t id = 0; id < 10; id++) {
            unsigned char k[12];
            joust_put_be32(k, run);
            joust_put_be64(k + 4, id);
            joust_batch_put(b, JOUST_CF_SCORES, k, sizeof k, "s", 1);
        }
    CHECK_RC(joust_store_write(s, b, 0));
    joust_batch_destroy(&b);
    unsigned char p7[4];
    joust_put_be32(p7, 7);
    CHECK_RC(joust_store_delete_prefix(s, JOUST_CF_SCORES, p7, 4));
    int per_run[3] = {0, 0, 0};
    joust_iter_t *it = NULL;
    CHECK_RC(joust_iter_new(s, JOUST_CF_SCORES, NULL, 0, &it));
    for (; joust_iter_valid(it); joust_iter_next(it)) {
        size_t klen;
        const unsigned char *k = joust_iter_key(it, &klen);
        if (klen == 12 && joust_get_be32(k) >= 6 && joust_get_be32(k) <= 8)
            per_run[joust_get_be32(k) - 6]++;
    }
    joust_iter_destroy(&it);
    CHECK(per_run[0] == 10 && per_run[1] == 0 && per_run[2] == 10);
}

/* ---- big-endian ids iterate in numeric order ---- */

static void test_be64_order(joust_store_t *s)
{
    static const uint64_t ids[] = {255, 256, 1, 0, UINT64_MAX, 65535, 65536, (uint64_t)1 << 32,
                                   ((uint64_t)1 << 32) - 1, 1000000007, UINT64_MAX - 1, 2};
    enum { N = sizeof ids / sizeof ids[0] };
    joust_batch_t *b = joust_batch_new();
    unsigned char run[4];
    joust_put_be32(run, 42);
    for (size_t i = 0; i < N; i++) {
        unsigned char k[12];
        memcpy(k, run, 4);
        joust_put_be64(k + 4, ids[i]);
        joust_batch_put(b, JOUST_CF_MATCHES, k, sizeof k, &ids[i], sizeof ids[i]);
    }
    CHECK_RC(joust_store_write(s, b, 0));
    joust_batch_destroy(&b);

    joust_iter_t *it = NULL;
    CHECK_RC(joust_iter_new(s, JOUST_CF_MATCHES, run, 4, &it));
    size_t n = 0;
    int sorted = 1, values_ok = 1;
    uint64_t prev = 0;
    for (; joust_iter_valid(it); joust_iter_next(it), n++) {
        size_t klen, vlen;
        const unsigned char *k = joust_iter_key(it, &klen);
        const void *v = joust_iter_value(it, &vlen);
        uint64_t id = klen == 12 ? joust_get_be64(k + 4) : 0;
        uint64_t vid;
        if (vlen != 8)
            values_ok = 0;
        else {
            memcpy(&vid, v, 8);
            values_ok &= vid == id;
        }
        if (n && id <= prev)
            sorted = 0;
        prev = id;
    }
    CHECK(n == N);
    CHECK(sorted);
    CHECK(values_ok);
    CHECK(prev == UINT64_MAX);
    /* Seek to an id within the run. */
    unsigned char from[8];
    joust_put_be64(from, 257);
    joust_iter_seek(it, from, 8);
    size_t klen;
    const unsigned char *k = joust_iter_key(it, &klen);
    CHECK(k && klen == 12 && joust_get_be64(k + 4) == 65535);
    joust_iter_destroy(&it);
}

/* ---- a 100k-record batch and a full scan ---- */

static void test_big_batch(joust_store_t *s)
{
    enum { N = 100000 };
    joust_batch_t *b = joust_batch_new();
    char val[64];
    for (uint64_t i = 0; i < N; i++) {
        unsigned char k[12];
        joust_put_be32(k, 1);
        joust_put_be64(k + 4, i * 7919 % N); /* not in key order */
        int len = snprintf(val, sizeof val, "outcome %llu", (unsigned long long)i);
        joust_batch_put(b, JOUST_CF_OUTCOMES, k, sizeof k, val, (size_t)len);
    }
    CHECK(joust_batch_count(b) == N);
    CHECK_RC(joust_store_write(s, b, 1));
    joust_batch_destroy(&b);

    joust_iter_t *it = NULL;
    CHECK_RC(joust_iter_new(s, JOUST_CF_OUTCOMES, NULL, 0, &it));
    size_t n = 0;
    int in_order = 1;
    for (; joust_iter_valid(it); joust_iter_next(it), n++) {
        size_t klen;
        const unsigned char *k = joust_iter_key(it, &klen);
        if (klen != 12 || joust_get_be64(k + 4) != n)
            in_order = 0;
    }
    CHECK(joust_iter_error(it) == 0);
    joust_iter_destroy(&it);
    CHECK(n == N);
    CHECK(in_order);

    /* Point lookup among them. */
    unsigned char k[12];
    joust_put_be32(k, 1);
    joust_put_be64(k + 4, 99999);
    void *v = NULL;
    size_t vlen = 0;
    CHECK_RC(joust_store_get(s, JOUST_CF_OUTCOMES, k, sizeof k, &v, &vlen));
    CHECK(v && !strncmp(v, "outcome ", 8));
    free(v);

    /* Sizes: the memtables hold the batch, a compaction moves it to SST
     * files (LZ4: fewer bytes than the ~1.9 MB written), and the point
     * lookup still finds its key (the outcomes family has no filter). */
    joust_store_mem mem;
    joust_store_memory(s, &mem);
    CHECK(mem.memtables > 0);
    /* A flush writes the memtables to SST files and gives their memory back. */
    uint64_t in_memtables = mem.memtables, flushed = joust_store_sst_bytes(s, JOUST_CF_OUTCOMES);
    joust_store_flush(s);
    joust_store_memory(s, &mem);
    CHECK(mem.memtables < in_memtables / 2);
    CHECK(joust_store_sst_bytes(s, JOUST_CF_OUTCOMES) > flushed);
    CHECK_RC(joust_store_compact(s));
    uint64_t sst = joust_store_sst_bytes(s, JOUST_CF_OUTCOMES);
    CHECK(sst > 100000 && sst < (uint64_t)N * (12 + 14));
    joust_store_memory(s, &mem);
    CHECK(mem.block_cache < (64u << 20));
    v = NULL;
    CHECK_RC(joust_store_get(s, JOUST_CF_OUTCOMES, k, sizeof k, &v, &vlen));
    free(v);
}

/* joust_store_load: puts in any order, keys of every length around the 8
 * bytes the sort looks at first, a key put twice (the last value wins),
 * several families in one batch, keys that overlap what the memtable and
 * earlier loads hold; a batch with a delete is refused; a range delete. */
static void test_load(joust_store_t *s)
{
    enum { N = 20000 };
    CHECK_RC(joust_store_delete_prefix(s, JOUST_CF_SCORES, "", 0)); /* earlier tests' keys */
    joust_batch_t *b = joust_batch_new();
    char key[32], val[32];
    for (int i = 0; i < N; i++) {
        int r = (int)((unsigned)i * 7919u % N);
        /* lengths 1..20: "k" + the number, padded to r % 20 + 1 with '.' */
        int klen = snprintf(key, sizeof key, "%d", r);
        while (klen < r % 20 + 1)
            key[klen++] = '.';
        int vlen = snprintf(val, sizeof val, "v%d", r);
        joust_batch_put(b, JOUST_CF_SCORES, key, (size_t)klen, val, (size_t)vlen);
        if (r % 1000 == 0) /* put again: the later value wins */
            joust_batch_put(b, JOUST_CF_SCORES, key, (size_t)klen, "again", 5);
    }
    joust_batch_put(b, JOUST_CF_RUNS, "load-b", 6, "2", 1);
    joust_batch_put(b, JOUST_CF_RUNS, "load-a", 6, "1", 1);
    CHECK_RC(joust_store_put(s, JOUST_CF_RUNS, "load-a", 6, "memtable", 8));
    CHECK_RC(joust_store_load(s, b));
    joust_batch_destroy(&b);
    void *v = NULL;
    size_t vlen = 0;
    CHECK_RC(joust_store_get(s, JOUST_CF_RUNS, "load-a", 6, &v, &vlen));
    CHECK(vlen == 1 && !memcmp(v, "1", 1)); /* the load is newer than the memtable */
    free(v);
    joust_iter_t *it = NULL;
    CHECK_RC(joust_iter_new(s, JOUST_CF_SCORES, NULL, 0, &it));
    size_t n = 0, again = 0;
    int ordered = 1;
    char last[33] = "";
    size_t last_len = 0;
    for (; joust_iter_valid(it); joust_iter_next(it), n++) {
        size_t klen, vl;
        const char *k = joust_iter_key(it, &klen);
        const char *x = joust_iter_value(it, &vl);
        size_t m = klen < last_len ? klen : last_len;
        int c = memcmp(last, k, m);
        if (n && (c > 0 || (c == 0 && last_len >= klen)))
            ordered = 0;
        memcpy(last, k, klen);
        last_len = klen;
        last[klen] = '\0';
        int r = atoi(last);
        again += vl == 5 && !memcmp(x, "again", 5);
        if (r % 1000 != 0 && (vl < 2 || x[0] != 'v' || atoi(x + 1) != r))
            ordered = 0;
    }
    joust_iter_destroy(&it);
    CHECK(n == N && ordered && again == N / 1000);
    /* a delete in a load batch: refused, nothing written */
    b = joust_batch_new();
    joust_batch_put(b, JOUST_CF_RUNS, "load-c", 6, "3", 1);
    joust_batch_delete(b, JOUST_CF_RUNS, "load-a", 6);
    CHECK(joust_store_load(s, b) == JOUST_EINVAL);
    CHECK(joust_store_get(s, JOUST_CF_RUNS, "load-c", 6, &v, &vlen) == JOUST_ENOTFOUND);
    joust_batch_clear(b);
    /* a range delete through a write removes loaded keys: [1, 2) */
    joust_batch_delete_range(b, JOUST_CF_SCORES, "1", 1, "2", 1);
    CHECK_RC(joust_store_write(s, b, 1));
    joust_batch_destroy(&b);
    CHECK(joust_store_get(s, JOUST_CF_SCORES, "1.", 2, &v, &vlen) == JOUST_ENOTFOUND);
    CHECK_RC(joust_store_get(s, JOUST_CF_SCORES, "2..", 3, &v, &vlen)); /* r = 2 */
    free(v);
    CHECK_RC(joust_store_delete_prefix(s, JOUST_CF_SCORES, "", 0));
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_crash_safety();
    test_open();

    joust_store_t *s = NULL;
    CHECK_RC(joust_store_open(path_in("db"), 1, &s));
    if (s) {
        test_put_get(s);
        test_batch(s);
        test_reopen(&s);
    }
    if (s) {
        test_iter(s);
        test_delete_prefix(s);
        test_be64_order(s);
        test_big_batch(s);
        test_load(s);
        /* a record only in the memtable and the WAL */
        CHECK_RC(joust_store_put(s, JOUST_CF_RUNS, "wal-check", 9, "in the WAL", 10));
        CHECK(wal_bytes(path_in("db")) > 0);
        joust_store_destroy(&s);
        /* A clean close wrote the memtables out: no WAL for the next open
         * to replay. */
        CHECK(wal_bytes(path_in("db")) == 0);
        CHECK_RC(joust_store_open(path_in("db"), JOUST_STORE_READONLY, &s));
        CHECK(s && has(s, JOUST_CF_RUNS, "wal-check", 9, "in the WAL", 10));
        joust_store_destroy(&s);
        /* Full scan count survives a reopen too, read-only beside nothing,
         * and a scan iterator (its own read options) sees the same keys. */
        CHECK_RC(joust_store_open(path_in("db"), JOUST_STORE_READONLY, &s));
        size_t n = 0, nscan = 0, same = 1;
        joust_iter_t *it = NULL, *sc = NULL;
        if (s && joust_iter_new(s, JOUST_CF_OUTCOMES, NULL, 0, &it) == 0 &&
            joust_iter_new_scan(s, JOUST_CF_OUTCOMES, NULL, 0, &sc) == 0) {
            for (; joust_iter_valid(it); joust_iter_next(it), joust_iter_next(sc), n++) {
                size_t a, b;
                const void *ka = joust_iter_key(it, &a), *kb = joust_iter_key(sc, &b);
                same &= kb && a == b && !memcmp(ka, kb, a);
            }
            for (joust_iter_seek(sc, NULL, 0); joust_iter_valid(sc); joust_iter_next(sc))
                nscan++;
        }
        joust_iter_destroy(&it);
        joust_iter_destroy(&sc);
        CHECK(n == 100000 && nscan == n && same);
        if (s && joust_iter_new_scan(s, JOUST_CF_OUTCOMES, "\0\0\0\1", 4, &sc) == 0) {
            for (nscan = 0; joust_iter_valid(sc); joust_iter_next(sc))
                nscan++;
            CHECK(nscan == 100000); /* a prefix bounds it as joust_iter_new's */
        }
        joust_iter_destroy(&sc);
        joust_store_destroy(&s);
    }
    rm_rf(tmpdir);
    return test_report();
}
