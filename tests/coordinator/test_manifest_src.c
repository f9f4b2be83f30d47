/* Compressed and stdin manifests (coordinator/manifest_src.h) and their
 * ingest: gzip and zstd told by magic bytes (whatever the name), several
 * gzip members and zstd frames, truncated and corrupt data, the decoded
 * size cap, "-" for stdin, and a bad line's number inside a .gz and a .zst
 * manifest. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "check.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "manifest_src.h"
#include "store.h"

static char tmpdir[] = "/tmp/joust-msrc-XXXXXX";

static char *path_in(const char *name)
{
    static char buf[8][PATH_MAX];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

/* gzip of data as one member (gzip wrapper through deflateInit2). */
static size_t gzip_of(const char *data, size_t len, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

/* Decodes path and compares with want. */
static void expect_text(const char *path, const char *want, joust_manifest_kind want_kind)
{
    int fd;
    size_t size;
    joust_manifest_kind kind;
    char err[512];
    int rc = joust_manifest_open(path, 0, &fd, &size, &kind, err, sizeof err);
    CHECK_RC(rc);
    if (rc) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    char *got = malloc(size + 1);
    CHECK(read(fd, got, size) == (ssize_t)size);
    got[size] = '\0';
    CHECK(size == strlen(want) && memcmp(got, want, size) == 0 && kind == want_kind);
    free(got);
    close(fd);
}

static const char *text =
    "{\"image\":\"a.png\",\"prompt\":\"p\"}\n"
    "{\"image\":\"b.png\",\"prompt\":\"p\"}\n"
    "{\"image\":\"c.png\",\"prompt\":\"p\"\n" /* line 3: bad JSON */
    "{\"image\":\"d.png\",\"prompt\":\"p\"}\n";

static void test_open(void)
{
    size_t len = strlen(text);
    unsigned char gz[4096], zst[4096];
    size_t ngz = gzip_of(text, len, gz, sizeof gz);
    size_t nzst = ZSTD_compress(zst, sizeof zst, text, len, 3);
    CHECK(!ZSTD_isError(nzst));
    write_file(path_in("plain.jsonl"), text, len);
    write_file(path_in("m.jsonl.gz"), gz, ngz);
    write_file(path_in("m.jsonl.zst"), zst, nzst);
    write_file(path_in("gz-named.jsonl"), gz, ngz); /* magic bytes, not the name */
    expect_text(path_in("plain.jsonl"), text, JOUST_MANIFEST_PLAIN);
    expect_text(path_in("m.jsonl.gz"), text, JOUST_MANIFEST_GZIP);
    expect_text(path_in("m.jsonl.zst"), text, JOUST_MANIFEST_ZSTD);
    expect_text(path_in("gz-named.jsonl"), text, JOUST_MANIFEST_GZIP);
    /* two gzip members, two zstd frames: one stream each, like zcat */
    unsigned char two[8192];
    size_t h = len / 2, n1 = gzip_of(text, h, two, sizeof two);
    size_t n2 = gzip_of(text + h, len - h, two + n1, sizeof two - n1);
    write_file(path_in("two.gz"), two, n1 + n2);
    expect_text(path_in("two.gz"), text, JOUST_MANIFEST_GZIP);
    n1 = ZSTD_compress(two, sizeof two, text, h, 1);
    n2 = ZSTD_compress(two + n1, sizeof two - n1, text + h, len - h, 1);
    write_file(path_in("two.zst"), two, n1 + n2);
    expect_text(path_in("two.zst"), text, JOUST_MANIFEST_ZSTD);
    /* truncated and corrupt: an error naming the file, never a partial manifest */
    int fd;
    size_t size;
    char err[512];
    write_file(path_in("cut.gz"), gz, ngz - 12);
    CHECK(joust_manifest_open(path_in("cut.gz"), 0, &fd, &size, NULL, err, sizeof err) ==
          JOUST_ECORRUPT);
    CHECK(strstr(err, "cut.gz") && strstr(err, "truncated"));
    write_file(path_in("cut.zst"), zst, nzst - 5);
    CHECK(joust_manifest_open(path_in("cut.zst"), 0, &fd, &size, NULL, err, sizeof err) ==
          JOUST_ECORRUPT);
    CHECK(strstr(err, "cut.zst") && strstr(err, "truncated"));
    unsigned char bad[4096];
    memcpy(bad, gz, ngz);
    for (size_t i = 12; i < ngz - 8; i++)
        bad[i] ^= 0x5a;
    write_file(path_in("bad.gz"), bad, ngz);
    CHECK(joust_manifest_open(path_in("bad.gz"), 0, &fd, &size, NULL, err, sizeof err) ==
          JOUST_ECORRUPT);
    memcpy(bad, zst, nzst);
    for (size_t i = 6; i < nzst; i++)
        bad[i] ^= 0x5a;
    write_file(path_in("bad.zst"), bad, nzst);
    CHECK(joust_manifest_open(path_in("bad.zst"), 0, &fd, &size, NULL, err, sizeof err) ==
          JOUST_ECORRUPT);
    /* a decompression bomb stops at the cap */
    CHECK(joust_manifest_open(path_in("m.jsonl.gz"), 40, &fd, &size, NULL, err, sizeof err) ==
          JOUST_ETOOBIG);
    CHECK(strstr(err, "more than 40 bytes") != NULL);
    /* a special file is still refused at once */
    CHECK(joust_manifest_open("/dev/zero", 0, &fd, &size, NULL, err, sizeof err) == JOUST_EIO);
    /* stdin, itself compressed */
    int saved = dup(STDIN_FILENO);
    int in = open(path_in("m.jsonl.zst"), O_RDONLY);
    dup2(in, STDIN_FILENO);
    close(in);
    expect_text("-", text, JOUST_MANIFEST_ZSTD);
    dup2(saved, STDIN_FILENO);
    close(saved);
}

/* Ingest of each kind: the bad line is line 3 in every one; a .gz of a
 * manifest already ingested is the same manifest. */
static void test_ingest_lines(void)
{
    const char *names[3] = {"m.jsonl.gz", "m.jsonl.zst", "plain.jsonl"};
    for (int i = 0; i < 3; i++) {
        char db[64], bad[PATH_MAX];
        snprintf(db, sizeof db, "db%d", i);
        snprintf(bad, sizeof bad, "%s", path_in("bad_lines.jsonl"));
        joust_store_t *st = NULL;
        CHECK_RC(joust_store_open(path_in(db), 1, &st));
        if (!st)
            return;
        joust_ingest_opts o;
        joust_ingest_opts_defaults(&o);
        o.bad_lines_path = bad;
        o.allow_any_path = 1;
        joust_ingest_stats s;
        CHECK_RC(joust_ingest_with(st, path_in(names[i]), &o, &s));
        CHECK(s.lines == 4 && s.images == 3 && s.errors == 1);
        FILE *f = fopen(bad, "r");
        char line[1024] = "";
        CHECK(f && fgets(line, sizeof line, f));
        if (f)
            fclose(f);
        CHECK(strstr(line, "\"line\":3") != NULL);
        if (!strstr(line, "\"line\":3"))
            fprintf(stderr, "  %s: %s\n", names[i], line);
        /* the plain text of the same manifest: already ingested */
        if (i == 0) {
            CHECK_RC(joust_ingest_with(st, path_in("plain.jsonl"), &o, &s));
            CHECK(s.already_ingested == 1);
        }
        joust_store_destroy(&st);
    }
}

int main(void)
{
    joust_log_set_level(JOUST_LOG_ERROR);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_open();
    test_ingest_lines();
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_report();
}
