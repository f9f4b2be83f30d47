/* A crash during ingest (docs/storage.md, "Bulk load"): the ingest of a
 * second manifest is killed (SIGKILL, the store's kill fault) after each of
 * its writes in turn — after the mark, after each bulk-loaded batch, after
 * the final write — in a child process; then the same ingest is run again
 * and the store must equal, family by family and key by key, a store that
 * ingested both manifests without a crash, with the same counts. The second
 * manifest adds images to prompts of the first and new prompts, repeats
 * contents and ids (of both manifests), has lines without an id and bad
 * lines, so every index and the member keys of old prompts are exercised. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "records.h"
#include "store.h"
#include "testfs.h"

#define BATCH_LINES 400

static char tmpdir[] = "/tmp/joust-ingest-crash-XXXXXX";
static char root[PATH_MAX / 2];

static char *path_in(const char *name)
{
    static char buf[8][PATH_MAX];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", root, name);
    return p;
}

static void opts(joust_ingest_opts *o)
{
    joust_ingest_opts_defaults(o);
    o->batch_lines = BATCH_LINES;
}

static int ingest(const char *db, const char *manifest, joust_ingest_stats *s)
{
    joust_store_t *st;
    int rc = joust_store_open(path_in(db), JOUST_STORE_CREATE, &st);
    if (rc < 0)
        return rc;
    joust_ingest_opts o;
    opts(&o);
    rc = joust_ingest_with(st, path_in(manifest), &o, s);
    joust_store_destroy(&st);
    return rc;
}

static void make_manifests(void)
{
    mkdir(path_in("imgs"), 0755);
    for (int i = 0; i < 40; i++) {
        char name[64], body[32];
        snprintf(name, sizeof name, "imgs/%d.bin", i);
        snprintf(body, sizeof body, "content %d", i % 29); /* 29..39 repeat 0..10 */
        write_str(path_in(name), body);
    }
    joust_buf_t a = {0}, b = {0};
    for (int i = 0; i < 1500; i++)
        joust_buf_printf(&a, "{\"id\":\"a%d\",\"image\":\"imgs/%d.bin\",\"prompt\":\"p%d\"}\n", i,
                         i % 40, i / 12);
    for (int i = 0; i < 4000; i++) {
        if (i % 501 == 7)
            joust_buf_puts(&b, "{\"image\":\"imgs/1.bin\",\"prompt\":\n"); /* bad JSON */
        else if (i % 3 == 0) /* no id; an old prompt or a new one */
            joust_buf_printf(&b, "{\"image\":\"imgs/%d.bin\",\"prompt\":\"p%d\"}\n", i % 40,
                             i % 2 ? i % 125 : 1000 + i / 10);
        else if (i % 250 == 1) /* an id of the first manifest: a duplicate */
            joust_buf_printf(&b, "{\"id\":\"a%d\",\"image\":\"imgs/2.bin\",\"prompt\":\"p1\"}\n", i);
        else if (i % 250 == 2) /* an id of this manifest again */
            joust_buf_printf(&b, "{\"id\":\"b1\",\"image\":\"imgs/3.bin\",\"prompt\":\"q\"}\n");
        else
            joust_buf_printf(&b, "{\"id\":\"b%d\",\"image\":\"%s/%d.bin\",\"prompt\":\"p%d\"}\n",
                             i, i % 17 ? "imgs" : "gone", i % 40, i % 5 ? 1000 + i / 10 : i % 125);
    }
    write_str(path_in("a.jsonl"), a.data);
    write_str(path_in("c.jsonl"), "{\"id\":\"c1\",\"image\":\"imgs/5.bin\",\"prompt\":\"p3\"}\n"
                                  "{\"id\":\"b2\",\"image\":\"imgs/6.bin\",\"prompt\":\"c\"}\n");
    write_str(path_in("b.jsonl"), b.data);
    joust_buf_free(&a);
    joust_buf_free(&b);
}

/* 1 when both stores hold the same keys and values in every family. */
static int same_store(const char *db1, const char *db2)
{
    joust_store_t *s1, *s2;
    if (joust_store_open(path_in(db1), JOUST_STORE_EXISTING, &s1) < 0)
        return 0;
    if (joust_store_open(path_in(db2), JOUST_STORE_EXISTING, &s2) < 0) {
        joust_store_destroy(&s1);
        return 0;
    }
    int same = 1;
    for (int cf = 0; cf < JOUST_CF_COUNT && same; cf++) {
        joust_iter_t *i1, *i2;
        if (joust_iter_new(s1, (joust_cf)cf, NULL, 0, &i1) < 0 ||
            joust_iter_new(s2, (joust_cf)cf, NULL, 0, &i2) < 0)
            return 0;
        uint64_t n = 0;
        for (; joust_iter_valid(i1) && joust_iter_valid(i2) && same;
             joust_iter_next(i1), joust_iter_next(i2), n++) {
            size_t k1, k2, v1, v2;
            const void *a = joust_iter_key(i1, &k1), *b = joust_iter_key(i2, &k2);
            const void *x = joust_iter_value(i1, &v1), *y = joust_iter_value(i2, &v2);
            same = k1 == k2 && v1 == v2 && !memcmp(a, b, k1) && (!v1 || !memcmp(x, y, v1));
        }
        if (same && (joust_iter_valid(i1) || joust_iter_valid(i2)))
            same = 0;
        if (!same)
            fprintf(stderr, "%s and %s differ in %s after %llu keys\n", db1, db2,
                    joust_cf_name((joust_cf)cf), (unsigned long long)n);
        joust_iter_destroy(&i1);
        joust_iter_destroy(&i2);
    }
    joust_store_destroy(&s1);
    joust_store_destroy(&s2);
    return same;
}

/* The child: the second manifest's ingest, killed after `after` more writes.
 * Exits 3 when it was not killed (the ingest had fewer writes). */
static int child(const char *db, const char *after)
{
    joust_store_t *st;
    if (joust_store_open(db, JOUST_STORE_EXISTING, &st) < 0)
        return 2;
    joust_store_fault(st, JOUST_FAULT_KILL, atol(after));
    joust_ingest_opts o;
    opts(&o);
    joust_ingest_stats s;
    int rc = joust_ingest_with(st, path_in("b.jsonl"), &o, &s);
    joust_store_destroy(&st);
    return rc == 0 ? 3 : 2;
}

int main(int argc, char **argv)
{
    joust_log_set_level(JOUST_LOG_ERROR);
    if (argc == 5 && !strcmp(argv[1], "--child")) {
        snprintf(root, sizeof root, "%s", argv[4]);
        return child(argv[2], argv[3]);
    }
    if (make_test_root(tmpdir, root, sizeof root) < 0)
        return 2;
    make_manifests();
    joust_ingest_stats ca, cb;
    CHECK_RC(ingest("clean", "a.jsonl", &ca));
    CHECK_RC(ingest("clean", "b.jsonl", &cb));
    CHECK(cb.images > 2000 && cb.errors > 20 && cb.duplicates > 100 && cb.missing > 100);
    /* after a crash another manifest may come first: a, c, then b */
    joust_ingest_stats c2b, other;
    CHECK_RC(ingest("clean-c", "a.jsonl", &other));
    CHECK_RC(ingest("clean-c", "c.jsonl", &other));
    CHECK_RC(ingest("clean-c", "b.jsonl", &c2b));
    int killed = 0, killed_marked = 0;
    for (long after = 0; after < 100; after++) {
        char db[32];
        snprintf(db, sizeof db, "crash-%ld", after);
        joust_ingest_stats s;
        CHECK_RC(ingest(db, "a.jsonl", &s));
        char after_s[24];
        snprintf(after_s, sizeof after_s, "%ld", after);
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "--child", path_in(db), after_s, root, (char *)NULL);
            _exit(2);
        }
        int status = 0;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
            break; /* the whole ingest ran: every write has been a kill point */
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        killed++;
        /* the mark stays until the final write */
        joust_store_t *st;
        uint64_t f1, f2;
        int marked = 0;
        CHECK_RC(joust_store_open(path_in(db), JOUST_STORE_EXISTING, &st));
        if (st) {
            marked = joust_rec_ingest_mark_get(st, &f1, &f2) == 0;
            CHECK(!marked || (f1 == cb.first_image && f2 == ca.prompts + 1));
            joust_store_destroy(&st);
        }
        killed_marked += marked;
        if (marked && after % 3 == 2) { /* another manifest first, then this one */
            CHECK_RC(ingest(db, "c.jsonl", &s));
            CHECK(s.images == 2 && s.errors == 0);
            CHECK_RC(ingest(db, "b.jsonl", &s));
            CHECK(s.images == c2b.images && s.errors == c2b.errors && s.prompts == c2b.prompts);
            CHECK(same_store("clean-c", db));
            rm_rf(path_in(db));
            continue;
        }
        /* the same ingest again */
        CHECK_RC(ingest(db, "b.jsonl", &s));
        if (!s.already_ingested) /* else killed after its last write */
            CHECK(s.images == cb.images && s.errors == cb.errors && s.prompts == cb.prompts &&
                  s.duplicates == cb.duplicates && s.missing == cb.missing &&
                  s.renamed_ids == cb.renamed_ids);
        CHECK(s.first_image == cb.first_image && s.end_image == cb.end_image);
        CHECK(same_store("clean", db));
        rm_rf(path_in(db));
    }
    /* the mark, at least three loads (4000 lines of ~3 keys in batches of
     * BATCH_LINES), the final write */
    CHECK(killed >= 5 && killed_marked == killed - 1);
    rm_rf(tmpdir);
    return test_report();
}
