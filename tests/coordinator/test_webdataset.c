/* WebDataset shards (coordinator/webdataset.h) and tar member references
 * (common/uri.h, common/tar_member.h): shards written here with libarchive
 * (ustar and pax, long names), every reference reads back exactly the
 * member's bytes with one ranged read, grouping by key, the .json/.txt
 * rule, bad samples, a truncated shard, gzip and zstd shards (members read
 * back through worker/fetch.h: streamed, then cached), remote shard
 * references, brace ranges. */
#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "fetch.h"
#include "tar_member.h"
#include "uri.h"
#include "webdataset.h"

static unsigned char img_a[3000], img_b[700];

static void add(struct archive *a, const char *name, const void *data, size_t n)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)n);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, data, n);
    archive_entry_free(e);
}

enum { PLAIN, GZIP, ZSTD };

static void make_shard(const char *path, int pax, int filter)
{
    struct archive *a = archive_write_new();
    if (pax)
        archive_write_set_format_pax_restricted(a);
    else
        archive_write_set_format_ustar(a);
    if (filter == GZIP)
        archive_write_add_filter_gzip(a);
    else if (filter == ZSTD)
        archive_write_add_filter_zstd(a);
    archive_write_open_filename(a, path);
    char longname[200];
    memset(longname, 'k', 150);
    strcpy(longname + 150, ".jpg");
    add(a, "d/a.jpg", img_a, sizeof img_a);
    add(a, "d/a.txt", "a caption", 9);
    add(a, "d/b.png", img_b, sizeof img_b);
    add(a, "d/b.json", "{\"prompt\":\"json prompt\",\"model\":\"m1\",\"id\":\"bee\",\"seed\":7}", 57);
    add(a, "d/b.txt", "loses", 5);
    add(a, "d/c.jpg", img_b, sizeof img_b);       /* no caption */
    add(a, "d/e.gif", "GIF", 3);                  /* unknown extension */
    if (pax) {
        add(a, longname, img_b, sizeof img_b);
        longname[150] = '\0';
        strcat(longname, ".txt");
        add(a, longname, "long", 4);
    }
    archive_write_close(a);
    archive_write_free(a);
}

/* Runs the manifest writer over one shard; returns the lines (a cJSON array). */
static cJSON *manifest_of(const char *shard, joust_wds_stats *st)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char *list[1] = {(char *)shard}, err[256];
    CHECK_RC(joust_wds_write_manifest(list, 1, NULL, f, st, err, sizeof err));
    fclose(f);
    cJSON *arr = cJSON_CreateArray();
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        cJSON_AddItemToArray(arr, cJSON_Parse(line));
    free(buf);
    return arr;
}

static const cJSON *by_id(const cJSON *arr, const char *id)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) {
        const cJSON *i = cJSON_GetObjectItem(x, "id");
        if (cJSON_IsString(i) && strcmp(i->valuestring, id) == 0)
            return x;
    }
    return NULL;
}

/* The reference of line reads back exactly want (one member read). */
static void check_ref(const cJSON *line, const unsigned char *want, size_t n)
{
    CHECK(line != NULL);
    if (!line)
        return;
    const char *img = cJSON_GetObjectItem(line, "image")->valuestring;
    joust_uri u;
    char err[256];
    CHECK_RC(joust_uri_parse(img, NULL, &u, err, sizeof err));
    CHECK(u.scheme == JOUST_URI_TAR && u.size == n);
    uint64_t r0, b0, r1, b1;
    joust_tar_member_counts(&r0, &b0);
    unsigned char *data;
    size_t len;
    CHECK_RC(joust_tar_member_read(&u, u.path, 0, 0, &data, &len, err, sizeof err));
    joust_tar_member_counts(&r1, &b1);
    CHECK(len == n && memcmp(data, want, n) == 0);
    CHECK(r1 == r0 + 1 && b1 == b0 + n); /* the member's bytes, not the shard */
    free(data);
    joust_uri_clear(&u);
}

static void test_shard(const char *dir, int pax)
{
    char path[512];
    snprintf(path, sizeof path, "%s/s%d.tar", dir, pax);
    make_shard(path, pax, 0);
    joust_wds_stats st;
    cJSON *arr = manifest_of(path, &st);
    CHECK(st.shards == 1 && st.bad_shards == 0);
    CHECK(st.samples == (pax ? 3u : 2u));
    CHECK(st.bad_samples == 2); /* c: no prompt; e.gif: unknown extension */
    const char *base = pax ? "s1.tar/d/a" : "s0.tar/d/a";
    const cJSON *a = by_id(arr, base), *b = by_id(arr, "bee");
    check_ref(a, img_a, sizeof img_a);
    check_ref(b, img_b, sizeof img_b);
    CHECK(a && strcmp(cJSON_GetObjectItem(a, "prompt")->valuestring, "a caption") == 0);
    /* .json wins over .txt; its other fields are kept (metadata, model) */
    CHECK(b && strcmp(cJSON_GetObjectItem(b, "prompt")->valuestring, "json prompt") == 0);
    CHECK(b && strcmp(cJSON_GetObjectItem(b, "model")->valuestring, "m1") == 0);
    CHECK(b && cJSON_GetObjectItem(b, "seed")->valueint == 7);
    cJSON_Delete(arr);

    /* truncated inside b.png: a is kept, the damage is reported */
    FILE *f = fopen(path, "r+b");
    CHECK(f && ftruncate(fileno(f), 512 * 3 + 3000 + 100) == 0);
    fclose(f);
    arr = manifest_of(path, &st);
    CHECK(st.bad_shards == 1 && by_id(arr, base) != NULL && by_id(arr, "bee") == NULL);
    cJSON_Delete(arr);
}

/* The member line names in a compressed shard, read through the fetcher. */
static int fetch_member(joust_fetch_t *f, const cJSON *line, const unsigned char *want, size_t n)
{
    CHECK(line != NULL);
    if (!line)
        return -1;
    joust_uri u;
    char err[256];
    CHECK_RC(joust_uri_parse(cJSON_GetObjectItem(line, "image")->valuestring, NULL, &u, err,
                             sizeof err));
    CHECK(u.scheme == JOUST_URI_TAR && u.compressed && u.shard == JOUST_URI_LOCAL);
    unsigned char *data = NULL;
    size_t len = 0;
    /* pread cannot reach it: tar_member refuses, the fetcher streams */
    CHECK(joust_tar_member_read(&u, u.path, 0, 0, &data, &len, err, sizeof err) ==
          JOUST_EUNSUPPORTED);
    int rc = joust_fetch_remote(f, &u, 0, &data, &len, err, sizeof err);
    CHECK_RC(rc);
    CHECK(rc || (len == n && memcmp(data, want, n) == 0));
    free(data);
    joust_uri_clear(&u);
    return rc;
}

/* A compressed shard is accepted: its references say compressed=1 and
 * read back through worker/fetch.h, streamed once per cache. */
static void test_compressed(const char *dir, int filter, const char *name)
{
    char path[512], cache[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    make_shard(path, 0, filter);
    joust_wds_stats st;
    cJSON *arr = manifest_of(path, &st);
    CHECK(st.shards == 1 && st.bad_shards == 0 && st.samples == 2 && st.bad_samples == 2);
    const cJSON *a = by_id(arr, filter == GZIP ? "z.tar.gz/d/a" : "z.tar.zst/d/a");
    const cJSON *b = by_id(arr, "bee");
    CHECK(a && strstr(cJSON_GetObjectItem(a, "image")->valuestring, "#compressed=1&offset="));
    /* without a cache each member streams the shard up to it */
    joust_fetch_config fc = {.cache_dir = "none"};
    joust_fetch_t *f = joust_fetch_new(&fc);
    fetch_member(f, b, img_b, sizeof img_b);
    fetch_member(f, a, img_a, sizeof img_a);
    joust_fetch_stats fs;
    joust_fetch_stats_get(f, &fs);
    CHECK(fs.streamed == 2 && fs.cache_hits == 0);
    joust_fetch_destroy(&f);
    /* with one, the first member's pass caches the others: one stream */
    snprintf(cache, sizeof cache, "%s/cache-%d", dir, filter);
    fc.cache_dir = cache;
    f = joust_fetch_new(&fc);
    fetch_member(f, b, img_b, sizeof img_b);
    fetch_member(f, a, img_a, sizeof img_a);
    fetch_member(f, b, img_b, sizeof img_b);
    joust_fetch_stats_get(f, &fs);
    CHECK(fs.streamed == 1 && fs.cache_hits == 2);
    joust_fetch_destroy(&f);
    cJSON_Delete(arr);
}

int main(void)
{
    for (size_t i = 0; i < sizeof img_a; i++)
        img_a[i] = (unsigned char)(i * 31 + 7);
    for (size_t i = 0; i < sizeof img_b; i++)
        img_b[i] = (unsigned char)(i * 17 + 3);
    char dir[] = "/tmp/joust-wds.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    test_shard(dir, 0);
    test_shard(dir, 1);

    test_compressed(dir, GZIP, "z.tar.gz");
    test_compressed(dir, ZSTD, "z.tar.zst");

    /* references: round trip, base folder, malformed ones */
    char *ref = joust_uri_format_tar("sh/x.tar", 1536, 10, "a b&c#%.jpg");
    CHECK(strcmp(ref, "tar:sh/x.tar#offset=1536&size=10&member=a%20b%26c%23%25.jpg") == 0);
    joust_uri u;
    char err[256];
    CHECK_RC(joust_uri_parse(ref, "/base", &u, err, sizeof err));
    CHECK(strcmp(u.path, "/base/sh/x.tar") == 0 && u.offset == 1536 && u.size == 10 &&
          strcmp(u.member, "a b&c#%.jpg") == 0);
    joust_uri_clear(&u);
    free(ref);
    /* a remote shard's member: the URL is kept, never joined to a folder */
    CHECK_RC(joust_uri_parse("tar:https://h/s/0.tar#compressed=1&offset=512&size=3&member=a.jpg",
                             "/base", &u, err, sizeof err));
    CHECK(u.shard == JOUST_URI_HTTPS && u.compressed && joust_uri_is_remote(&u) &&
          strcmp(u.path, "https://h/s/0.tar") == 0);
    ref = joust_uri_format_member(&u);
    CHECK(strcmp(ref, "tar:https://h/s/0.tar#compressed=1&offset=512&size=3&member=a.jpg") == 0);
    free(ref);
    joust_uri_clear(&u);
    CHECK_RC(joust_uri_parse("tar:s3://b/k/0.tar#offset=0&size=3&member=a.jpg", NULL, &u, err,
                             sizeof err));
    CHECK(u.shard == JOUST_URI_S3 && !u.compressed);
    joust_uri_clear(&u);
    CHECK(joust_uri_parse("tar:ftp://h/0.tar#offset=0&size=3&member=a.jpg", NULL, &u, err,
                          sizeof err) == JOUST_EUNSUPPORTED);
    static const char *bad[] = {"tar:x.tar", "tar:#offset=1&size=1&member=a",
                                "tar:x.tar#offset=1&size=0&member=a",
                                "tar:x.tar#size=1&offset=1&member=a",
                                "tar:x.tar#offset=1&size=1&member=",
                                "tar:x.tar#offset=99999999999999999999&size=1&member=a",
                                "tar:x.tar#offset=1&size=1&member=%00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(joust_uri_parse(bad[i], NULL, &u, err, sizeof err) == JOUST_EINVAL &&
              u.path == NULL);

    /* a member past the end of the shard */
    char sh[512];
    snprintf(sh, sizeof sh, "tar:%s/s0.tar#offset=100000&size=5&member=x.jpg", dir);
    CHECK_RC(joust_uri_parse(sh, NULL, &u, err, sizeof err));
    unsigned char *data;
    size_t len;
    CHECK(joust_tar_member_read(&u, u.path, 0, 0, &data, &len, err, sizeof err) ==
          JOUST_ECORRUPT && strstr(err, "x.jpg"));
    joust_uri_clear(&u);

    /* brace ranges */
    char **list;
    size_t n;
    CHECK_RC(joust_wds_expand("s/{00008..00011}-{1..2}.tar", &list, &n, err, sizeof err));
    CHECK(n == 8 && strcmp(list[0], "s/00008-1.tar") == 0 &&
          strcmp(list[7], "s/00011-2.tar") == 0);
    joust_wds_free_list(list, n);
    CHECK(joust_wds_expand("s/{3..1}.tar", &list, &n, err, sizeof err) == JOUST_EINVAL);
    CHECK(joust_wds_expand("s/{a..b}.tar", &list, &n, err, sizeof err) == JOUST_EINVAL);
    CHECK(joust_wds_is_shards("a.tar") && joust_wds_is_shards("a.TGZ") &&
          !joust_wds_is_shards("m.jsonl"));

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_report();
}
