/* Ingest writes the same store, byte for byte, as the ingest it replaced:
 * two generated manifests (every field kind, ids and none, duplicate ids
 * under both policies, prompt_id as text and as a number, latents written
 * many ways, metadata of every JSON type with escapes and non-ASCII text,
 * nested metadata (the cJSON path), real files with repeated content,
 * missing files in missing and existing folders, remote URIs, bad lines)
 * are ingested into a fresh store in small batches, and a digest of every
 * key and value of every family is compared with the one the previous
 * ingest (before the issue 14.4 speed work, d225cbd) gave for the same
 * manifests. Image URIs hold the test's temporary folder, so the digest
 * reads each image record, puts "<root>" in place of that folder and packs
 * it again with protobuf-c; that each stored record is exactly what
 * protobuf-c packs for its fields is checked separately, so together the
 * bytes are those the old ingest wrote.
 * When the ingest is changed on purpose, run with --print to see the new
 * digest, and say in the commit why the store's contents changed. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "hash.h"
#include "ingest.h"
#include "joust.pb-c.h"
#include "log.h"
#include "records.h"
#include "store.h"
#include "testfs.h"

/* The digests of the old ingest (d225cbd) for these manifests. */
#define WANT_DIGEST_A 0xe357d8a7f22e7f7eull
#define WANT_DIGEST_B 0x7e36142e1587fe1dull

static char tmpdir[] = "/tmp/joust-ingest-same-XXXXXX";
static char root[PATH_MAX / 2];

static char *path_in(const char *name) { return path_under(root, name); }

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static const char *latents[] = {"0", "-0", "1", "-1.5", "0.1234", "-0.0001", "3.14159265358979",
                                "1e3", "1E-7", "-2.5e+2", "123456789012345", "0.30000000000000004",
                                "1.7976931348623157e308", "5e-324", "null", "12345678901234567890",
                                "0.1e1", "9007199254740993", "-123.456789e-3", "2.2250738585072014e-308"};
static const char *metas[] = {
    "",
    ",\"seed\":42,\"cfg\":7.5",
    ",\"seed\":-17,\"ok\":true,\"bad\":false,\"none\":null",
    ",\"tag\":\"caf\\u00e9 \\\"q\\\" \\\\ \\/ \\n\\t\"",
    ",\"t\":\"日本語 ✓\",\"n\":1e-9",
    ",\"nested\":{\"a\":[1,2,{\"b\":null}]},\"s\":\"x\"",
    ",\"list\":[\"a\",\"b\"]",
    ",\"w\":1.0,\"h\":2.50,\"big\":1e400",
    ",\"emoji\":\"\\ud83d\\ude00\"",
    ",\"esc\\u0041key\":1",
};

/* n lines; seed picks the mix. */
static void make_manifest(const char *name, int n, uint64_t seed, int idbase)
{
    joust_buf_t b = {0};
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        uint64_t r = rnd(&s);
        if (r % 97 == 5) {
            static const char *bad[] = {
                "{\"image\":\"imgs/1.bin\",\"prompt\":", "[1,2]", "{\"prompt\":\"p\"}",
                "{\"image\":\"x.png\"}", "{\"image\":\"x.png\",\"prompt\":\"a\",\"latent\":\"x\"}",
                "{\"image\":\"x.png\",\"prompt\":\"a\",\"id\":\"#12\"}",
                "{\"image\":\"../../etc/passwd\",\"prompt\":\"a\"}",
                "{\"image\":\"x.png\",\"prompt\":\"a\",\"id\":\"\"}",
                "{\"image\":\"x.png\",\"prompt\":\"a\\u0000\"}",
                "{\"image\":\"x.png\",\"prompt\":\"a\",\"model\":7}",
                "\xff\xfe",
                "{\"image\":\"x.png\",\"prompt\":\"a\"} x",
            };
            joust_buf_printf(&b, "%s\n", bad[rnd(&s) % (sizeof bad / sizeof *bad)]);
            continue;
        }
        if (r % 53 == 3) {
            joust_buf_puts(&b, r % 2 ? "\n" : "   \t\n"); /* blank */
            continue;
        }
        joust_buf_puts(&b, "{");
        unsigned kind = (unsigned)(rnd(&s) % 10);
        if (kind < 5)
            joust_buf_printf(&b, "\"id\":\"x%d\",", idbase + i);
        else if (kind == 5)
            joust_buf_printf(&b, "\"id\":%d,", idbase + i);
        else if (kind == 6) /* an id seen before (maybe in the other manifest) */
            joust_buf_printf(&b, "\"id\":\"x%d\",", (int)(rnd(&s) % (uint64_t)(idbase + i + 1)));
        uint64_t img = rnd(&s) % 10;
        if (img < 4)
            joust_buf_printf(&b, "\"image\":\"imgs/%d.bin\"", (int)(rnd(&s) % 60));
        else if (img < 6)
            joust_buf_printf(&b, "\"image\":\"gone/%d/%d.png\"", (int)(rnd(&s) % 7), i);
        else if (img < 7)
            joust_buf_printf(&b, "\"image\":\"imgs/missing-%d.png\"", i);
        else if (img < 8)
            joust_buf_printf(&b, "\"image\":\"https://example.com/im%%20g/%d.jpg\"", i);
        else if (img < 9)
            joust_buf_printf(&b, "\"image\":\"s3://bucket/k/%d.webp\"", i);
        else
            joust_buf_printf(&b, "\"image\":\"%simgs/%d.bin\"", rnd(&s) % 2 ? "./" : "imgs/../",
                             (int)(rnd(&s) % 60));
        uint64_t pk = rnd(&s) % 6, p = rnd(&s) % 300;
        if (pk < 3)
            joust_buf_printf(&b, ",\"prompt\":\"prompt number %d, a cat\"", (int)p);
        else if (pk == 3)
            joust_buf_printf(&b, ",\"prompt_id\":%d", (int)p);
        else if (pk == 4)
            joust_buf_printf(&b, ",\"prompt_id\":\"g%d\",\"prompt\":\"text %d \\u00e9\"", (int)p,
                             (int)p);
        else
            joust_buf_printf(&b, ",\"prompt\":\"p\\\"%d\\\\ \\t\"", (int)(p % 20));
        if (rnd(&s) % 3)
            joust_buf_printf(&b, ",\"model\":\"model-%d\"", (int)(rnd(&s) % 5));
        if (rnd(&s) % 2)
            joust_buf_printf(&b, ", \"latent\" : %s",
                             latents[rnd(&s) % (sizeof latents / sizeof *latents)]);
        joust_buf_puts(&b, metas[rnd(&s) % (sizeof metas / sizeof *metas)]);
        joust_buf_puts(&b, rnd(&s) % 7 ? "}\n" : " }\r\n");
    }
    write_str(path_in(name), b.data);
    joust_buf_free(&b);
}

/* XXH3 of the keys and values of every family d225cbd had (meta to
 * scores), image URIs with "<root>"; families added since must be empty.
 * Also counts records that are not what protobuf-c packs for their fields. */
static uint64_t digest(joust_store_t *st, int *noncanonical)
{
    joust_buf_t all = {0};
    size_t rlen = strlen(root);
    for (int cf = 0; cf < JOUST_CF_COUNT; cf++) {
        joust_iter_t *it;
        if (joust_iter_new(st, (joust_cf)cf, NULL, 0, &it) < 0)
            return 0;
        if (cf > JOUST_CF_SCORES) {
            if (joust_iter_valid(it))
                (*noncanonical)++;
            joust_iter_destroy(&it);
            continue;
        }
        joust_buf_printf(&all, "[%s]", joust_cf_name((joust_cf)cf));
        for (; joust_iter_valid(it); joust_iter_next(it)) {
            size_t kl, vl;
            const unsigned char *k = joust_iter_key(it, &kl), *v = joust_iter_value(it, &vl);
            joust_buf_printf(&all, "%zu:", kl);
            joust_buf_append(&all, k, kl);
            if (cf != JOUST_CF_IMAGES) {
                joust_buf_printf(&all, "%zu:", vl);
                joust_buf_append(&all, v, vl);
                continue;
            }
            Joust__ImageRecord *r = joust__image_record__unpack(NULL, vl, v);
            if (!r) {
                (*noncanonical)++;
                continue;
            }
            unsigned char *re = malloc(vl + 1);
            size_t n = joust__image_record__pack(r, re);
            if (n != vl || memcmp(re, v, vl))
                (*noncanonical)++;
            free(re);
            char *uri = r->uri, *norm = NULL;
            if (!strncmp(uri, root, rlen)) {
                joust_buf_t u = {0};
                joust_buf_printf(&u, "<root>%s", uri + rlen);
                norm = u.data;
                r->uri = norm;
            }
            re = malloc(joust__image_record__get_packed_size(r) + 1);
            n = joust__image_record__pack(r, re);
            joust_buf_printf(&all, "%zu:", n);
            joust_buf_append(&all, re, n);
            free(re);
            r->uri = uri;
            free(norm);
            joust__image_record__free_unpacked(r, NULL);
        }
        joust_iter_destroy(&it);
    }
    uint64_t h = joust_hash64(all.data, all.len);
    joust_buf_free(&all);
    return h;
}

static int ingest(joust_store_t *st, const char *manifest, joust_dup_ids dup, unsigned threads,
                  joust_ingest_stats *s)
{
    joust_ingest_opts o;
    joust_ingest_opts_defaults(&o);
    o.batch_lines = 700;
    o.threads = threads;
    o.duplicate_ids = dup;
    return joust_ingest_with(st, path_in(manifest), &o, s);
}

int main(int argc, char **argv)
{
    int print = argc > 1 && !strcmp(argv[1], "--print");
    joust_log_set_level(JOUST_LOG_ERROR);
    if (make_test_root(tmpdir, root, sizeof root) < 0)
        return 2;
    mkdir(path_in("imgs"), 0755);
    for (int i = 0; i < 60; i++) {
        char name[64], body[32];
        snprintf(name, sizeof name, "imgs/%d.bin", i);
        snprintf(body, sizeof body, "content %d", i % 45); /* 45..59 repeat 0..14 */
        write_str(path_in(name), body);
    }
    make_manifest("a.jsonl", 6000, 1, 0);
    make_manifest("b.jsonl", 9000, 2, 6000);
    /* a, then b with duplicate ids kept (renamed), with 1 parser thread and
     * with 3: the same store either way */
    uint64_t da[2], db[2];
    int noncanon = 0;
    joust_ingest_stats sa, sb;
    for (int t = 0; t < 2; t++) {
        char name[32];
        snprintf(name, sizeof name, "db%d", t);
        joust_store_t *st;
        CHECK_RC(joust_store_open(path_in(name), JOUST_STORE_CREATE, &st));
        if (!st)
            return test_report();
        CHECK_RC(ingest(st, "a.jsonl", JOUST_DUP_IDS_ERROR, t ? 3 : 1, &sa));
        da[t] = digest(st, &noncanon);
        CHECK_RC(ingest(st, "b.jsonl", JOUST_DUP_IDS_WARN, t ? 3 : 1, &sb));
        db[t] = digest(st, &noncanon);
        joust_store_destroy(&st);
    }
    CHECK(sa.errors > 30 && sa.images > 5000 && sa.duplicates > 100 && sa.missing > 1000);
    CHECK(sb.renamed_ids > 100 && sb.prompts > 0 && sa.prompts > 500);
    CHECK(noncanon == 0);
    CHECK(da[0] == da[1] && db[0] == db[1]);
    if (print)
        printf("#define WANT_DIGEST_A 0x%016llxull\n#define WANT_DIGEST_B 0x%016llxull\n"
               "a: %llu images %llu errors %llu prompts; b: %llu images %llu renamed\n",
               (unsigned long long)da[0], (unsigned long long)db[0],
               (unsigned long long)sa.images, (unsigned long long)sa.errors,
               (unsigned long long)sa.prompts, (unsigned long long)sb.images,
               (unsigned long long)sb.renamed_ids);
    CHECK(da[0] == WANT_DIGEST_A);
    CHECK(db[0] == WANT_DIGEST_B);
    rm_rf(tmpdir);
    return test_report();
}
