/* Tests of ingest (coordinator/ingest.h), the record codecs it writes
 * (records.h) and runs (run.h), on a fresh store in a mkdtemp directory with
 * small real image files (any bytes: ingest only hashes them).
 * Covers grouping by prompt_id vs prompt text, relative paths resolved
 * against the manifest's folder, bad lines skipped while the others land,
 * duplicate caller ids, duplicate content, missing files, re-ingest of the
 * same manifest, a second manifest appending, counters, empty manifests,
 * and run creation / reopening / conflicts / listing; generated ids that
 * cannot collide with a caller's, duplicate ids under both policies, and
 * every bad line listed in the bad-lines file (thousands of them). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "check.h"
#include "testfs.h"
#include "err.h"
#include "hash.h"
#include "ingest.h"
#include "log.h"
#include "records.h"
#include "run.h"
#include "store.h"

static char tmpdir[] = "/tmp/joust-ingest-XXXXXX";
static char root[PATH_MAX / 2]; /* realpath of tmpdir */

static char *path_in(const char *name)
{
    static char buf[16][PATH_MAX];
    static int slot;
    char *p = buf[slot++ % 16];
    snprintf(p, sizeof buf[0], "%s/%s", root, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    if (len)
        fwrite(data, 1, len, f);
    fclose(f);
}

static int streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static Joust__ImageRecord *img(joust_store_t *st, uint64_t id)
{
    Joust__ImageRecord *r = NULL;
    int rc = joust_rec_image_get(st, id, &r);
    if (rc < 0) {
        fprintf(stderr, "image %llu: %s\n", (unsigned long long)id, joust_strerror(rc));
        return NULL;
    }
    return r;
}

static int members_are(joust_store_t *st, uint64_t pid, const uint64_t *want, size_t nwant)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    int ok = joust_rec_prompt_members(st, pid, &ids, &n) == 0 && n == nwant;
    for (size_t i = 0; ok && i < n; i++)
        ok = ids[i] == want[i];
    if (!ok) {
        fprintf(stderr, "prompt %llu members:", (unsigned long long)pid);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %llu", (unsigned long long)ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}

static uint64_t meta(joust_store_t *st, joust_rec_counter name)
{
    uint64_t v = 0;
    CHECK_RC(joust_rec_counter_get(st, name, &v));
    return v;
}

/* Manifest 1, in m1/ with images in m1/img/. */
static void make_manifest1(void)
{
    mkdir(path_in("m1"), 0755);
    mkdir(path_in("m1/img"), 0755);
    mkdir(path_in("m1/abs"), 0755);
    write_str(path_in("m1/img/a.bin"), "image A bytes");
    write_str(path_in("m1/img/b.bin"), "image B bytes");
    write_str(path_in("m1/img/c.bin"), "image C bytes");
    write_str(path_in("m1/img/d.bin"), "image A bytes"); /* same content as a.bin */
    write_str(path_in("m1/img/e.bin"), "image E bytes");
    write_str(path_in("m1/img/g.bin"), "image G bytes");
    mkdir(path_in("m1/img dir"), 0755);
    write_str(path_in("m1/img dir/x.bin"), "image X bytes");
    write_str(path_in("m1/img/h.bin"), "image H bytes");
    write_str(path_in("m1/abs/f.bin"), "image F bytes");

    char buf[8192];
    int n = snprintf(buf, sizeof buf,
        /* 1 */ "{\"image\":\"img/a.bin\",\"prompt\":\"fox\",\"model\":\"m1\",\"id\":\"a\",\"latent\":0.5,\"seed\":1}\n"
        /* 2 */ "{\"image\":\"img/b.bin\",\"prompt\":\"fox\",\"id\":7}\n"
        /* 3 */ "\n"
        /* 4 */ "{bad json\n"
        /* 5 */ "{\"image\":\"img/c.bin\",\"prompt_id\":\"g\",\"prompt\":\"fox\"}\n"
        /* 6 */ "{\"image\":\"img/d.bin\",\"prompt_id\":\"g\"}\n"
        /* 7 */ "{\"image\":\"img/missing.bin\",\"prompt\":\"cat\"}\n"
        /* 8 */ "{\"image\":\"img/e.bin\",\"prompt\":\"cat\",\"id\":\"a\"}\n"
        /* 9 */ "{\"image\":\"%s\",\"prompt\":\"cat\"}\n"
        /* 10 */ "{\"image\":\"file://%s/m1/img%%20dir/x.bin\",\"prompt\":\"cat\"}\n"
        /* 11 */ "{\"image\":\"img/g.bin\",\"prompt\":\"cat\"}\r\n"
        /* 12 */ "{\"image\":\"file://localhost%s/m1/img/h.bin\",\"prompt\":\"cat\"}\n"
        /* 13 */ "  \t \n"
        /* 14 */ "{\"image\":\"img/e.bin\",\"prompt\":\"cat\"}",
        path_in("m1/abs/f.bin"), root, root);
    /* line 14 gets a NUL byte in the middle, then a newline */
    memcpy(buf + n, "\0x\n", 3);
    write_file(path_in("m1/manifest.jsonl"), buf, (size_t)n + 3);
}

static void test_ingest_manifest1(joust_store_t *st)
{
    make_manifest1();
    joust_ingest_stats s;
    CHECK_RC(joust_ingest(st, path_in("m1/manifest.jsonl"), &s));
    CHECK(s.already_ingested == 0);
    CHECK(s.first_image == 1 && s.end_image == 10); /* its 9 images: what a run covers */
    CHECK(s.lines == 12);
    CHECK(s.images == 9);
    CHECK(s.errors == 3);      /* bad JSON, duplicate id "a", NUL byte */
    CHECK(s.duplicates == 1);  /* d.bin == a.bin */
    CHECK(s.missing == 1);     /* missing.bin */
    CHECK(s.prompts == 3);     /* text:fox, id:g, text:cat */
    if (s.images != 9)
        fprintf(stderr, "stats: lines %llu images %llu errors %llu dup %llu missing %llu prompts %llu\n",
                (unsigned long long)s.lines, (unsigned long long)s.images,
                (unsigned long long)s.errors, (unsigned long long)s.duplicates,
                (unsigned long long)s.missing, (unsigned long long)s.prompts);

    CHECK(meta(st, JOUST_NEXT_IMAGE) == 10);
    CHECK(meta(st, JOUST_NEXT_PROMPT) == 4);

    /* image 1: every field */
    Joust__ImageRecord *r = img(st, 1);
    CHECK(r != NULL);
    if (r) {
        CHECK(r->image_id == 1 && r->prompt_id == 1);
        CHECK(streq(r->uri, path_in("m1/img/a.bin")));
        CHECK(r->uri && r->uri[0] == '/');
        CHECK(streq(r->model, "m1"));
        CHECK(streq(r->caller_id, "a"));
        CHECK(r->has_latent && r->latent == 0.5);
        CHECK(streq(r->meta_json, "{\"seed\":1}"));
        CHECK(r->has_line && r->line == 1);
        uint64_t h;
        CHECK_RC(joust_hash_file(path_in("m1/img/a.bin"), 0, &h, NULL, 0));
        CHECK(r->has_content_hash && r->content_hash == h);
        joust_rec_free(r);
    }
    /* image 2: integer id stored as text, no model, no metadata */
    if ((r = img(st, 2))) {
        CHECK(r->prompt_id == 1);
        CHECK(streq(r->caller_id, "7"));
        CHECK(r->model == NULL && r->meta_json == NULL && !r->has_latent);
        CHECK(r->line == 2);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    /* images 3, 4: grouped by prompt_id although image 3 has the text "fox" */
    Joust__ImageRecord *r3 = img(st, 3), *r4 = img(st, 4), *r1 = img(st, 1);
    CHECK(r3 && r4 && r1);
    if (r3 && r4 && r1) {
        CHECK(r3->prompt_id == 2 && r4->prompt_id == 2);
        CHECK(r3->line == 5 && r4->line == 6);
        /* duplicate content: kept, same hash */
        CHECK(r4->has_content_hash && r4->content_hash == r1->content_hash);
        CHECK(r3->content_hash != r1->content_hash);
    }
    joust_rec_free(r1);
    joust_rec_free(r3);
    joust_rec_free(r4);
    /* image 5: missing file kept, no content hash */
    if ((r = img(st, 5))) {
        CHECK(r->prompt_id == 3);
        CHECK(streq(r->uri, path_in("m1/img/missing.bin")));
        CHECK(!r->has_content_hash);
        CHECK(r->line == 7);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    /* image 6: absolute path kept as is (line 8 was the duplicate id) */
    if ((r = img(st, 6))) {
        CHECK(streq(r->uri, path_in("m1/abs/f.bin")));
        CHECK(r->line == 9);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    /* image 7: a file:/// URI is percent-decoded, as the worker decodes it */
    if ((r = img(st, 7))) {
        CHECK(streq(r->uri, path_in("m1/img dir/x.bin")));
        CHECK(r->has_content_hash);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    /* image 8: CRLF line */
    if ((r = img(st, 8))) {
        CHECK(streq(r->uri, path_in("m1/img/g.bin")));
        CHECK(r->line == 11);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    /* image 9: file://localhost/ names a local absolute path (not a folder
     * "localhost" under the manifest's) */
    if ((r = img(st, 9))) {
        CHECK(streq(r->uri, path_in("m1/img/h.bin")));
        CHECK(r->has_content_hash);
        CHECK(r->line == 12);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    /* no image 10 */
    Joust__ImageRecord *none = NULL;
    CHECK(joust_rec_image_get(st, 10, &none) == JOUST_ENOTFOUND);

    /* prompts */
    Joust__PromptRecord *p = NULL;
    CHECK_RC(joust_rec_prompt_get(st, 1, &p));
    if (p) {
        CHECK(p->prompt_id == 1 && streq(p->text, "fox") && p->caller_id == NULL);
        joust_rec_free(p);
    }
    p = NULL;
    CHECK_RC(joust_rec_prompt_get(st, 2, &p));
    if (p) {
        CHECK(streq(p->text, "fox") && streq(p->caller_id, "g"));
        joust_rec_free(p);
    }
    p = NULL;
    CHECK_RC(joust_rec_prompt_get(st, 3, &p));
    if (p) {
        CHECK(streq(p->text, "cat") && p->caller_id == NULL);
        joust_rec_free(p);
    }
    p = NULL;
    CHECK(joust_rec_prompt_get(st, 4, &p) == JOUST_ENOTFOUND);

    CHECK(members_are(st, 1, (uint64_t[]){1, 2}, 2));
    CHECK(members_are(st, 2, (uint64_t[]){3, 4}, 2));
    CHECK(members_are(st, 3, (uint64_t[]){5, 6, 7, 8, 9}, 5));
    CHECK(members_are(st, 4, NULL, 0));

    /* the same manifest again: skipped as a whole */
    CHECK_RC(joust_ingest(st, path_in("m1/manifest.jsonl"), &s));
    CHECK(s.already_ingested == 1);
    CHECK(s.images == 0 && s.lines == 0 && s.prompts == 0 && s.errors == 0);
    CHECK(s.first_image == 1 && s.end_image == 10); /* the same range, read back */
    CHECK(meta(st, JOUST_NEXT_IMAGE) == 10);
    CHECK(meta(st, JOUST_NEXT_PROMPT) == 4);

    /* a copy of the same bytes under another name is the same manifest */
    const char *copy = path_in("m1/copy.jsonl");
    FILE *in = fopen(path_in("m1/manifest.jsonl"), "rb"), *out = fopen(copy, "wb");
    int ch;
    while (in && out && (ch = fgetc(in)) != EOF)
        fputc(ch, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    CHECK_RC(joust_ingest(st, copy, &s));
    CHECK(s.already_ingested == 1 && s.images == 0);
}

/* A second, different manifest appends with fresh ids and joins groups. */
static void test_ingest_second(joust_store_t *st)
{
    mkdir(path_in("m2"), 0755);
    write_str(path_in("m2/n1.bin"), "image N1 bytes");
    write_str(path_in("m2/n2.bin"), "image A bytes"); /* same content as m1/img/a.bin */
    write_str(path_in("m2/n3.bin"), "image N3 bytes");
    write_str(path_in("m2/list.jsonl"),
              "{\"image\":\"n1.bin\",\"prompt\":\"fox\",\"id\":\"n1\"}\n"        /* joins text:fox */
              "{\"image\":\"n2.bin\",\"prompt\":\"owl\",\"prompt_id\":\"g\"}\n"  /* joins id:g */
              "{\"image\":\"n3.bin\",\"prompt\":\"fox\",\"id\":\"a\"}\n"         /* id "a" taken */
              "{\"image\":\"n3.bin\",\"prompt\":\"owl\"}\n");                    /* new text:owl */
    joust_ingest_stats s;
    CHECK_RC(joust_ingest(st, path_in("m2/list.jsonl"), &s));
    CHECK(s.already_ingested == 0);
    CHECK(s.lines == 4 && s.images == 3 && s.errors == 1);
    CHECK(s.first_image == 10 && s.end_image == 13);
    CHECK(s.duplicates == 1); /* n2.bin equals an image of the first manifest */
    CHECK(s.missing == 0);
    CHECK(s.prompts == 1);
    CHECK(meta(st, JOUST_NEXT_IMAGE) == 13);
    CHECK(meta(st, JOUST_NEXT_PROMPT) == 5);

    Joust__ImageRecord *r = img(st, 10);
    if (r) {
        CHECK(r->prompt_id == 1 && streq(r->uri, path_in("m2/n1.bin")) && r->line == 1);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    if ((r = img(st, 11))) {
        CHECK(r->prompt_id == 2);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    if ((r = img(st, 12))) {
        CHECK(r->prompt_id == 4 && r->line == 4);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    CHECK(members_are(st, 1, (uint64_t[]){1, 2, 10}, 3));
    CHECK(members_are(st, 2, (uint64_t[]){3, 4, 11}, 3));
    CHECK(members_are(st, 4, (uint64_t[]){12}, 1));
    Joust__PromptRecord *p = NULL;
    CHECK_RC(joust_rec_prompt_get(st, 4, &p));
    if (p) {
        CHECK(streq(p->text, "owl"));
        joust_rec_free(p);
    }
    /* the prompt_id group keeps the text of its first line */
    p = NULL;
    CHECK_RC(joust_rec_prompt_get(st, 2, &p));
    if (p) {
        CHECK(streq(p->text, "fox"));
        joust_rec_free(p);
    }
}

static void test_ingest_edge(joust_store_t *st)
{
    joust_ingest_stats s;
    /* an empty manifest: 0 images, nothing fails */
    write_str(path_in("empty.jsonl"), "");
    CHECK_RC(joust_ingest(st, path_in("empty.jsonl"), &s));
    CHECK(s.images == 0 && s.lines == 0 && s.errors == 0 && s.prompts == 0);
    CHECK(s.already_ingested == 0);
    /* blank lines only */
    write_str(path_in("blank.jsonl"), "\n\n   \n\t\n");
    CHECK_RC(joust_ingest(st, path_in("blank.jsonl"), &s));
    CHECK(s.images == 0 && s.lines == 0 && s.errors == 0);
    /* only bad lines */
    write_str(path_in("bad.jsonl"), "[]\n{\"image\":\"x\"}\n{\"prompt\":\"p\"}\n");
    CHECK_RC(joust_ingest(st, path_in("bad.jsonl"), &s));
    CHECK(s.images == 0 && s.lines == 3 && s.errors == 3 && s.prompts == 0);
    CHECK(meta(st, JOUST_NEXT_IMAGE) == 13);
    CHECK(meta(st, JOUST_NEXT_PROMPT) == 5);

    /* a missing manifest */
    CHECK(joust_ingest(st, path_in("no-such.jsonl"), &s) == JOUST_ENOTFOUND);
    /* a manifest that is not a regular file is refused at once, never read
     * (a FIFO would block the open, /dev/zero would be read forever) */
    CHECK(mkfifo(path_in("fifo.jsonl"), 0600) == 0);
    CHECK(joust_ingest(st, path_in("fifo.jsonl"), &s) == JOUST_EIO);
    CHECK(joust_ingest(st, "/dev/zero", &s) == JOUST_EIO);
    CHECK(joust_ingest(st, root, &s) == JOUST_EIO);

    /* a manifest named relative to the current directory */
    mkdir(path_in("m3"), 0755);
    write_str(path_in("m3/i.bin"), "image I bytes");
    write_str(path_in("m3/x.jsonl"), "{\"image\":\"i.bin\",\"prompt_id\":99}\n");
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(root) == 0);
    CHECK_RC(joust_ingest(st, "m3/x.jsonl", &s));
    CHECK(chdir(cwd) == 0);
    CHECK(s.images == 1 && s.prompts == 1 && s.missing == 0);
    Joust__ImageRecord *r = img(st, 13);
    if (r) {
        CHECK(streq(r->uri, path_in("m3/i.bin")));
        CHECK(r->prompt_id == 5);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    Joust__PromptRecord *p = NULL;
    CHECK_RC(joust_rec_prompt_get(st, 5, &p));
    if (p) {
        CHECK(streq(p->text, "") && streq(p->caller_id, "99"));
        joust_rec_free(p);
    }
}

/* Counters and records survive closing and reopening the store. */
static void test_reopen(joust_store_t **st)
{
    joust_store_destroy(st);
    CHECK(*st == NULL);
    CHECK_RC(joust_store_open(path_in("db"), 0, st));
    if (!*st)
        exit(1);
    CHECK(meta(*st, JOUST_NEXT_IMAGE) == 14);
    CHECK(meta(*st, JOUST_NEXT_PROMPT) == 6);
    CHECK(members_are(*st, 1, (uint64_t[]){1, 2, 10}, 3));
    joust_ingest_stats s;
    CHECK_RC(joust_ingest(*st, path_in("m2/list.jsonl"), &s));
    CHECK(s.already_ingested == 1);
}

/* ---------------------------------------------------------------- runs -- */

static void collect_run(const Joust__RunRecord *r, void *arg)
{
    char *names = arg;
    size_t len = strlen(names);
    snprintf(names + len, 256 - len, "%s%s=%u", len ? "," : "", r->name, r->run_id);
}

static void test_runs(joust_store_t **st)
{
    joust_run_spec spec = {.strategy = "round-robin", .judge = "sim", .order = "both",
                           .seed = 42, .max_attempts = 3, .lease_ms = 30000,
                           .judge_options = "noise=0.1"};
    Joust__RunRecord *r = NULL;
    CHECK(joust_run_open(*st, "alpha", NULL, &r) == JOUST_ENOTFOUND);
    CHECK(r == NULL);

    CHECK_RC(joust_run_open(*st, "alpha", &spec, &r));
    CHECK(r != NULL);
    uint32_t alpha_id = r ? r->run_id : 0;
    if (r) {
        CHECK(r->run_id == 1);
        CHECK(streq(r->name, "alpha") && streq(r->strategy, "round-robin"));
        CHECK(streq(r->judge, "sim") && streq(r->order, "both"));
        CHECK(r->seed == 42);
        CHECK(r->has_max_attempts && r->max_attempts == 3);
        CHECK(r->has_lease_ms && r->lease_ms == 30000);
        CHECK(streq(r->judge_options, "noise=0.1"));
        CHECK(r->has_next_match_id && r->next_match_id == 1);
        CHECK(r->has_plan_cursor && r->plan_cursor == 1);
        CHECK(r->has_created_ms && r->created_ms > 0);
        CHECK(!r->planning_done && !r->complete);
        joust_rec_free(r);
    }
    CHECK(meta(*st, JOUST_NEXT_RUN) == 2);

    /* reopened with the same spec, or with none: the same run */
    r = NULL;
    CHECK_RC(joust_run_open(*st, "alpha", &spec, &r));
    CHECK(r && r->run_id == alpha_id);
    joust_rec_free(r);
    r = NULL;
    CHECK_RC(joust_run_open(*st, "alpha", NULL, &r));
    CHECK(r && r->run_id == alpha_id && r->seed == 42);
    joust_rec_free(r);
    CHECK(meta(*st, JOUST_NEXT_RUN) == 2);

    /* a different seed or lease keeps the frozen values */
    joust_run_spec other = spec;
    other.seed = 7;
    other.lease_ms = 5;
    r = NULL;
    CHECK_RC(joust_run_open(*st, "alpha", &other, &r));
    CHECK(r && r->seed == 42 && r->lease_ms == 30000);
    joust_rec_free(r);

    /* a different judge, order or strategy is a conflict */
    other = spec;
    other.judge = "quality";
    r = (Joust__RunRecord *)1;
    CHECK(joust_run_open(*st, "alpha", &other, &r) == JOUST_EEXIST);
    CHECK(r == NULL);
    other = spec;
    other.order = "random";
    CHECK(joust_run_open(*st, "alpha", &other, &r) == JOUST_EEXIST);
    other = spec;
    other.strategy = "swiss";
    CHECK(joust_run_open(*st, "alpha", &other, &r) == JOUST_EEXIST);
    CHECK(meta(*st, JOUST_NEXT_RUN) == 2);

    /* ids increase; listing is in name order */
    r = NULL;
    CHECK_RC(joust_run_open(*st, "Zeta", &spec, &r));
    CHECK(r && r->run_id == 2);
    joust_rec_free(r);
    r = NULL;
    other = spec;
    other.judge_options = NULL;
    CHECK_RC(joust_run_open(*st, "beta", &other, &r));
    CHECK(r && r->run_id == 3 && r->judge_options == NULL);
    joust_rec_free(r);

    char names[256] = "";
    CHECK_RC(joust_rec_run_each(*st, collect_run, names));
    CHECK(streq(names, "Zeta=2,alpha=1,beta=3"));
    if (!streq(names, "Zeta=2,alpha=1,beta=3"))
        fprintf(stderr, "runs: %s\n", names);

    /* persisted: after a reopen the next run gets id 4 */
    joust_store_destroy(st);
    CHECK_RC(joust_store_open(path_in("db"), 0, st));
    if (!*st)
        exit(1);
    r = NULL;
    CHECK_RC(joust_run_open(*st, "beta", NULL, &r));
    CHECK(r && r->run_id == 3);
    joust_rec_free(r);
    r = NULL;
    CHECK_RC(joust_run_open(*st, "gamma", &spec, &r));
    CHECK(r && r->run_id == 4);
    joust_rec_free(r);
}

/* A store with no runs lists nothing. */
static void count_run(const Joust__RunRecord *r, void *arg) { (*(int *)arg)++; }

/* ------------------------------------------ strict ids and bad lines -- */

/* Counts the lines of path that contain needle (all lines when NULL). */
static size_t count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return (size_t)-1;
    char *line = NULL;
    size_t cap = 0, n = 0;
    while (getline(&line, &cap, f) >= 0)
        n += !needle || strstr(line, needle);
    free(line);
    fclose(f);
    return n;
}

/* Runs ingest with stderr (the log) captured into log_path. */
static int ingest_logged(joust_store_t *st, const char *manifest, const joust_ingest_opts *o,
                         joust_ingest_stats *s, const char *log_path)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *lf = fopen(log_path, "w");
    dup2(fileno(lf), 2);
    joust_log_set_level(JOUST_LOG_WARN);
    int rc = joust_ingest_with(st, manifest, o, s);
    joust_log_set_level(JOUST_LOG_ERROR);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(lf);
    return rc;
}

/* The id each image is reported under, and that no two are equal. */
static void check_ids(joust_store_t *st, uint64_t first, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Joust__ImageRecord *r = img(st, first + i);
        CHECK(r && streq(r->caller_id, want[i]));
        if (r && !streq(r->caller_id, want[i]))
            fprintf(stderr, "image %llu: id %s, expected %s\n", (unsigned long long)(first + i),
                    r->caller_id ? r->caller_id : "(none)", want[i]);
        joust_rec_free(r);
    }
}

static void test_ingest_strict(void)
{
    joust_store_t *st = NULL;
    CHECK_RC(joust_store_open(path_in("db-strict"), 1, &st));
    if (!st)
        return;
    mkdir(path_in("m4"), 0755);
    write_str(path_in("m4/a.bin"), "strict A");
    write_str(path_in("m4/b.bin"), "strict B");
    write_str(path_in("m4/manifest.jsonl"),
        /* 1 */ "{\"image\":\"a.bin\",\"prompt\":\"p\",\"id\":\"x\"}\n"
        /* 2 */ "{\"image\":\"b.bin\",\"prompt\":\"p\"}\n"
        /* 3 */ "{\"image\":\"b.bin\",\"prompt\":\"p\",\"id\":\"#2\"}\n"
        /* 4 */ "{\"image\":\"b.bin\",\"prompt\":\"p\",\"id\":\"x\"}\n"
        /* 5 */ "{\"image\":\"a.bin\\u0000/../b.bin\",\"prompt\":\"p\"}\n"
        /* 6 */ "\f{\"image\":\"b.bin\",\"prompt\":\"p\"}\n"
        /* 7 */ "{\"image\":\"b.bin\",\"prompt\":\"p\",\"id\":2}\n"
        /* 8 */ "{\"image\":\"b.bin\",\"prompt\":\"p\\u0000 and more\"}\n");
    joust_ingest_opts o;
    joust_ingest_opts_defaults(&o);
    CHECK(o.duplicate_ids == JOUST_DUP_IDS_ERROR && o.bad_lines_path == NULL && o.max_logged == 20);
    char bad_path[PATH_MAX]; /* path_in's buffers rotate */
    snprintf(bad_path, sizeof bad_path, "%s", path_in("m4/bad_lines.jsonl"));
    o.bad_lines_path = bad_path;
    joust_ingest_stats s;
    CHECK_RC(ingest_logged(st, path_in("m4/manifest.jsonl"), &o, &s, path_in("m4/log")));
    CHECK(s.lines == 8 && s.images == 3 && s.errors == 5 && s.renamed_ids == 0);
    /* the image without an id is "#2"; the caller's integer id 2 stays "2" */
    check_ids(st, 1, (const char *const[]){"x", "#2", "2"}, 3);
    Joust__ImageRecord *none = NULL;
    CHECK(joust_rec_image_get(st, 4, &none) == JOUST_ENOTFOUND);

    /* bad_lines.jsonl: every bad line, in order, with its number and reason */
    const char *want[][2] = {{"3", "field \"id\": ids of the form #N are reserved"},
                             {"4", "duplicate id \"x\" (already image 1)"},
                             {"5", "field \"image\": contains NUL (\\u0000)"},
                             {"6", "form feed (0x0c) at byte 1, outside a string"},
                             {"8", "field \"prompt\": contains NUL (\\u0000)"}};
    FILE *f = fopen(path_in("m4/bad_lines.jsonl"), "r");
    CHECK(f != NULL);
    char *line = NULL;
    size_t cap = 0, k = 0;
    while (f && getline(&line, &cap, f) >= 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *ln = cJSON_GetObjectItemCaseSensitive(j, "line");
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *mf = cJSON_GetObjectItemCaseSensitive(j, "manifest");
        int ok = k < 5 && cJSON_IsNumber(ln) && ln->valuedouble == atof(want[k][0]) &&
                 cJSON_IsString(er) && strstr(er->valuestring, want[k][1]) && cJSON_IsString(mf) &&
                 streq(mf->valuestring, path_in("m4/manifest.jsonl"));
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "bad_lines.jsonl entry %zu: %s", k, line);
        cJSON_Delete(j);
        k++;
    }
    CHECK(k == 5);
    if (f)
        fclose(f);
    free(line);
    CHECK(access(path_in("m4/bad_lines.jsonl.tmp"), F_OK) != 0);
    CHECK(count_lines(path_in("m4/log"), "(line skipped)") == 5);

    /* --duplicate-ids warn: the line is kept under its generated id */
    write_str(path_in("m4/warn.jsonl"),
              "{\"image\":\"a.bin\",\"prompt\":\"q\",\"id\":\"x\"}\n"   /* taken by image 1 */
              "{\"image\":\"b.bin\",\"prompt\":\"q\",\"id\":\"y\"}\n"
              "{\"image\":\"b.bin\",\"prompt\":\"q\",\"id\":\"y\"}\n"); /* taken by the line above */
    o.duplicate_ids = JOUST_DUP_IDS_WARN;
    CHECK_RC(ingest_logged(st, path_in("m4/warn.jsonl"), &o, &s, path_in("m4/log")));
    CHECK(s.images == 3 && s.errors == 0 && s.renamed_ids == 2);
    check_ids(st, 4, (const char *const[]){"#4", "y", "#6"}, 3);
    CHECK(count_lines(path_in("m4/log"), "is reported as #") == 2);
    /* no bad lines: no file, not a stale list from the manifest before */
    CHECK(access(bad_path, F_OK) != 0 && errno == ENOENT);

    /* thousands of bad lines: all of them in the file, the first few logged */
    enum { N = 6000 };
    joust_buf_t b = {0};
    for (int i = 1; i <= N; i++) {
        if (i % 3 == 0)
            joust_buf_printf(&b, "{\"image\":\"a.bin\",\"prompt\":\"big\",\"n\":%d}\n", i);
        else if (i % 3 == 1)
            joust_buf_printf(&b, "{\"image\":\"a.bin\",\"prompt\":\"big\",\"id\":\"\\u0000%d\"}\n", i);
        else
            joust_buf_printf(&b, "{\"image\":\"a.bin\",\"prompt\":\"big\"}\v\n");
    }
    write_str(path_in("m4/big.jsonl"), b.data);
    joust_buf_free(&b);
    o.duplicate_ids = JOUST_DUP_IDS_ERROR;
    o.max_logged = 3;
    CHECK_RC(ingest_logged(st, path_in("m4/big.jsonl"), &o, &s, path_in("m4/log")));
    CHECK(s.lines == N && s.images == N / 3 && s.errors == N - N / 3);
    CHECK(count_lines(path_in("m4/bad_lines.jsonl"), NULL) == N - N / 3);
    CHECK(count_lines(path_in("m4/bad_lines.jsonl"), "contains NUL") == N / 3);
    CHECK(count_lines(path_in("m4/bad_lines.jsonl"), "vertical tab") == N / 3);
    CHECK(count_lines(path_in("m4/bad_lines.jsonl"), "\"line\":5999,") == 1);
    CHECK(count_lines(path_in("m4/log"), "(line skipped)") == 3);
    CHECK(count_lines(path_in("m4/log"), "3997 more bad lines not shown; all 4000 are in") == 1);

    /* without a bad-lines file every bad line is logged: no cap */
    write_str(path_in("m4/big2.jsonl"), "{\"image\":\"a.bin\",\"prompt\":\"big2\"}\n");
    FILE *bf = fopen(path_in("m4/big2.jsonl"), "a");
    for (int i = 0; i < 100; i++)
        fputs("{\"image\":\"a.bin\",\"prompt\":\"big2\",\"id\":\"#1\"}\n", bf);
    fclose(bf);
    CHECK_RC(ingest_logged(st, path_in("m4/big2.jsonl"), NULL, &s, path_in("m4/log")));
    CHECK(s.errors == 100 && s.images == 1);
    CHECK(count_lines(path_in("m4/log"), "(line skipped)") == 100);

    /* a bad-lines file that cannot be created: an error before anything lands */
    write_str(path_in("m4/late.jsonl"), "{\"image\":\"a.bin\",\"prompt\":\"late\"}\n");
    o.bad_lines_path = path_in("no-such-dir/bad_lines.jsonl");
    CHECK(ingest_logged(st, path_in("m4/late.jsonl"), &o, &s, path_in("m4/log")) == JOUST_EIO);
    CHECK(s.images == 0);
    joust_store_destroy(&st);
}

/* Image references are read by the parser the worker uses (common/uri.h):
 * every malformed or remote reference is a bad line with a reason, and
 * the well-formed ones land with the path the worker will open. */
static void test_ingest_uris(void)
{
    joust_store_t *st = NULL;
    CHECK_RC(joust_store_open(path_in("dbu"), 1, &st));
    if (!st)
        return;
    mkdir(path_in("mu"), 0755);
    write_str(path_in("mu/a.bin"), "image UA bytes");
    write_str(path_in("mu/a%20b.bin"), "image UB bytes");
    char buf[8192];
    snprintf(buf, sizeof buf,
             /* 1 */ "{\"image\":\"file://%s/mu/a%%2Fb.bin\",\"prompt\":\"u\"}\n"
             /* 2 */ "{\"image\":\"file://%s/mu/bad%%zz.bin\",\"prompt\":\"u\"}\n"
             /* 3 */ "{\"image\":\"file://otherhost%s/mu/a.bin\",\"prompt\":\"u\"}\n"
             /* 4 */ "{\"image\":\"file://\",\"prompt\":\"u\"}\n"
             /* 5 */ "{\"image\":\"file://%s/mu/a.bin?x=1\",\"prompt\":\"u\"}\n"
             /* 6 */ "{\"image\":\"file://%s/mu/a.bin#f\",\"prompt\":\"u\"}\n"
             /* 7 */ "{\"image\":\"https://example.com/x.png\",\"prompt\":\"u\"}\n"
             /* 8 */ "{\"image\":\"http://example.com/x.png\",\"prompt\":\"u\"}\n"
             /* 9 */ "{\"image\":\"s3://bucket/x.png\",\"prompt\":\"u\"}\n"
             /* 10 */ "{\"image\":\"gopher://host/x.png\",\"prompt\":\"u\"}\n"
             /* 11 */ "{\"image\":\"file://%s/mu/a%%00.bin\",\"prompt\":\"u\"}\n"
             /* 12 */ "{\"image\":\"file://%s/mu/a.bin\",\"prompt\":\"u\"}\n"
             /* 13 */ "{\"image\":\"a%%20b.bin\",\"prompt\":\"u\"}\n",
             root, root, root, root, root, root, root);
    write_str(path_in("mu/list.jsonl"), buf);
    joust_ingest_stats s;
    CHECK_RC(joust_ingest(st, path_in("mu/list.jsonl"), &s));
    /* remote references are kept as given (lines 7-9), never hashed */
    CHECK(s.lines == 13 && s.errors == 8 && s.images == 5 && s.missing == 0);
    Joust__ImageRecord *r = img(st, 3);
    if (r) {
        CHECK(streq(r->uri, "s3://bucket/x.png") && r->line == 9 && !r->has_content_hash);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    r = img(st, 4);
    if (r) {
        CHECK(streq(r->uri, path_in("mu/a.bin")) && r->line == 12);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    /* a plain path is literal: "%20" is three characters of the name */
    if ((r = img(st, 5))) {
        CHECK(streq(r->uri, path_in("mu/a%20b.bin")) && r->has_content_hash);
        joust_rec_free(r);
    } else {
        CHECK(0);
    }
    joust_store_destroy(&st);
}

/* --check-remote's hook: a 404 is a bad line with its reason, an outage
 * keeps the image (counted as unchecked), a good one is kept. */
static int fake_head(void *ctx, const char *uri, char *err, size_t errlen)
{
    ++*(int *)ctx;
    if (strstr(uri, "gone"))
        return joust_errf(err, errlen, JOUST_ENOTFOUND, "%s: HTTP 404", uri);
    if (strstr(uri, "down"))
        return joust_errf(err, errlen, JOUST_EAGAIN, "%s: HTTP 503 (after 3 tries)", uri);
    return 0;
}

static void test_ingest_check_remote(void)
{
    joust_store_t *st = NULL;
    CHECK_RC(joust_store_open(path_in("dbr"), 1, &st));
    if (!st)
        return;
    mkdir(path_in("mr"), 0755);
    write_str(path_in("mr/list.jsonl"),
              "{\"image\":\"https://h/ok.png\",\"prompt\":\"u\"}\n"
              "{\"image\":\"s3://b/gone.png\",\"prompt\":\"u\"}\n"
              "{\"image\":\"http://h/down.png\",\"prompt\":\"u\"}\n");
    joust_ingest_opts o;
    joust_ingest_opts_defaults(&o);
    int calls = 0;
    o.check_remote = fake_head;
    o.check_remote_ctx = &calls;
    char bad[PATH_MAX];
    snprintf(bad, sizeof bad, "%s", path_in("mr/bad.jsonl"));
    o.bad_lines_path = bad;
    joust_ingest_stats s;
    CHECK_RC(joust_ingest_with(st, path_in("mr/list.jsonl"), &o, &s));
    CHECK(calls == 3 && s.images == 2 && s.errors == 1 && s.unchecked == 1);
    CHECK(count_lines(bad, "HTTP 404") == 1 && count_lines(bad, "\"line\":2") == 1);
    joust_store_destroy(&st);
}

/* Confinement: by default images must lie inside the manifest's folder.
 * Every escape is a bad line, and a file outside is never hashed: it
 * cannot show up as "the same content as" an image inside. */
static void test_ingest_confine(void)
{
    joust_store_t *st = NULL;
    CHECK_RC(joust_store_open(path_in("dbc"), 1, &st));
    if (!st)
        return;
    mkdir(path_in("mc"), 0755);
    mkdir(path_in("mc/sub"), 0755);
    mkdir(path_in("oc"), 0755);
    write_str(path_in("mc/in.bin"), "same bytes");
    write_str(path_in("oc/secret.bin"), "same bytes"); /* outside, same content */
    CHECK(symlink(path_in("oc/secret.bin"), path_in("mc/link.bin")) == 0);
    CHECK(symlink(path_in("oc"), path_in("mc/linkdir")) == 0);
    char buf[4096];
    snprintf(buf, sizeof buf,
             /* 1 */ "{\"image\":\"in.bin\",\"prompt\":\"c\"}\n"
             /* 2 */ "{\"image\":\"../oc/secret.bin\",\"prompt\":\"c\"}\n"
             /* 3 */ "{\"image\":\"%s\",\"prompt\":\"c\"}\n"
             /* 4 */ "{\"image\":\"link.bin\",\"prompt\":\"c\"}\n"
             /* 5 */ "{\"image\":\"file://%s/mc/%%2e%%2e/oc/secret.bin\",\"prompt\":\"c\"}\n"
             /* 6 */ "{\"image\":\"sub/../in.bin\",\"prompt\":\"c\"}\n"
             /* 7 */ "{\"image\":\"nodir/../../oc/x.bin\",\"prompt\":\"c\"}\n"
             /* 8 */ "{\"image\":\"missing.bin\",\"prompt\":\"c\"}\n"
             /* 9 */ "{\"image\":\"linkdir/secret.bin\",\"prompt\":\"c\"}\n"
             /* 10 */ "{\"image\":\"/etc/passwd\",\"prompt\":\"c\"}\n",
             path_in("oc/secret.bin"), root);
    write_str(path_in("mc/one.jsonl"), buf);
    joust_ingest_stats s;
    joust_ingest_opts o;
    joust_ingest_opts_defaults(&o);
    o.bad_lines_path = path_in("mc/bad.jsonl");
    CHECK_RC(joust_ingest_with(st, path_in("mc/one.jsonl"), &o, &s));
    CHECK(s.lines == 10 && s.errors == 7 && s.images == 3);
    CHECK(s.duplicates == 1 && s.missing == 1); /* line 6 is line 1's file */
    FILE *f = fopen(path_in("mc/bad.jsonl"), "r");
    char row[1024];
    int outside = 0;
    while (f && fgets(row, sizeof row, f))
        outside += strstr(row, "outside the allowed roots") != NULL;
    if (f)
        fclose(f);
    CHECK(outside == 7);
    /* wider roots: the outside folder is allowed, and its file is now seen */
    const char *roots[] = {path_in("mc"), path_in("oc")};
    o.allow_roots = roots;
    o.n_allow_roots = 2;
    write_str(path_in("mc/two.jsonl"), "{\"image\":\"../oc/secret.bin\",\"prompt\":\"c\"}\n");
    CHECK_RC(joust_ingest_with(st, path_in("mc/two.jsonl"), &o, &s));
    CHECK(s.errors == 0 && s.images == 1 && s.duplicates == 1);
    /* any path */
    o.n_allow_roots = 0;
    o.allow_any_path = 1;
    snprintf(buf, sizeof buf, "{\"image\":\"%s\",\"prompt\":\"c\"}\n", path_in("oc/secret.bin"));
    write_str(path_in("mc/three.jsonl"), buf);
    CHECK_RC(joust_ingest_with(st, path_in("mc/three.jsonl"), &o, &s));
    CHECK(s.errors == 0 && s.images == 1);
    /* a root that does not exist is an error before anything lands */
    const char *missing[] = {path_in("no-such-root")};
    o.allow_any_path = 0;
    o.allow_roots = missing;
    o.n_allow_roots = 1;
    write_str(path_in("mc/four.jsonl"), "{\"image\":\"in.bin\",\"prompt\":\"c\"}\n");
    CHECK(joust_ingest_with(st, path_in("mc/four.jsonl"), &o, &s) == JOUST_ENOTFOUND);
    CHECK(s.images == 0);
    joust_store_destroy(&st);
}

/* Lines are parsed by threads in chunks and added in order: one thread and
 * several give the same store, line for line, over a manifest of many
 * chunks with duplicate ids and contents across chunk boundaries, missing
 * files in folders that exist and that do not, bad lines and a line over
 * the length limit; an id from an earlier manifest is still a duplicate. */
static void test_ingest_threads(void)
{
    mkdir(path_in("m5"), 0755);
    mkdir(path_in("m5/imgs"), 0755);
    for (int i = 0; i < 10; i++) {
        char name[64], body[32];
        snprintf(name, sizeof name, "m5/imgs/%d.bin", i);
        snprintf(body, sizeof body, "content %d", i % 7); /* 7 and 8, 9 repeat 0..2 */
        write_str(path_in(name), body);
    }
    enum { N = 9000 };
    joust_buf_t b = {0};
    for (int i = 1; i <= N; i++) {
        if (i == 4500) { /* longer than MANIFEST_MAX_LINE */
            joust_buf_puts(&b, "{\"image\":\"imgs/1.bin\",\"prompt\":\"");
            for (int k = 0; k < (1 << 20); k++)
                joust_buf_puts(&b, "x");
            joust_buf_puts(&b, "\"}\n");
        } else if (i % 997 == 0) {
            joust_buf_puts(&b, "{\"image\":\"imgs/1.bin\"}\n"); /* no prompt */
        } else {
            joust_buf_printf(&b, "{\"image\":\"%s/%d.bin\",\"prompt_id\":%d,\"id\":\"i%d\"}\n",
                             i % 5 == 0 ? "nowhere" : "imgs", i % 10, i / 16,
                             i % 1000 == 1 ? 1 : i); /* id i1 again every 1000 lines */
        }
    }
    write_str(path_in("m5/manifest.jsonl"), b.data);
    joust_buf_free(&b);
    write_str(path_in("m5/second.jsonl"), "{\"image\":\"imgs/2.bin\",\"prompt\":\"p\",\"id\":\"i7\"}\n"
                                          "{\"image\":\"imgs/2.bin\",\"prompt\":\"p\",\"id\":\"new\"}\n");
    joust_store_t *st[2] = {NULL, NULL};
    joust_ingest_stats s[2], s2;
    for (int t = 0; t < 2; t++) {
        char db[32];
        snprintf(db, sizeof db, "db-threads-%d", t);
        CHECK_RC(joust_store_open(path_in(db), 1, &st[t]));
        if (!st[t])
            return;
        joust_ingest_opts o;
        joust_ingest_opts_defaults(&o);
        o.threads = t ? 4 : 1;
        CHECK_RC(joust_ingest_with(st[t], path_in("m5/manifest.jsonl"), &o, &s[t]));
        CHECK_RC(joust_ingest_with(st[t], path_in("m5/second.jsonl"), &o, &s2));
        CHECK(s2.images == 1 && s2.errors == 1); /* "i7" is taken */
    }
    CHECK(s[0].lines == N && s[1].lines == N);
    CHECK(s[0].images == s[1].images && s[0].errors == s[1].errors &&
          s[0].duplicates == s[1].duplicates && s[0].missing == s[1].missing &&
          s[0].prompts == s[1].prompts);
    /* bad: the long line, N/997 without a prompt, 8 repeats of id i1 */
    CHECK(s[0].errors == 1 + N / 997 + 8);
    /* missing: the lines in nowhere/ (every 5th) but the long one and 4985 (no prompt) */
    CHECK(s[0].missing == N / 5 - 2);
    CHECK(s[0].duplicates > 0);
    for (uint64_t id = s[0].first_image; id < s[0].end_image + 1; id++) {
        Joust__ImageRecord *x = img(st[0], id), *y = img(st[1], id);
        CHECK(x && y && streq(x->uri, y->uri) && streq(x->caller_id, y->caller_id) &&
              x->prompt_id == y->prompt_id && x->line == y->line &&
              x->has_content_hash == y->has_content_hash && x->content_hash == y->content_hash);
        joust_rec_free(x);
        joust_rec_free(y);
    }
    joust_store_destroy(&st[0]);
    joust_store_destroy(&st[1]);
}

int main(void)
{
    joust_log_set_level(JOUST_LOG_ERROR);
    char resolved[PATH_MAX];
    if (!mkdtemp(tmpdir) || !realpath(tmpdir, resolved) || strlen(resolved) >= sizeof root) {
        perror("mkdtemp");
        return 2;
    }
    memcpy(root, resolved, strlen(resolved) + 1);
    joust_store_t *st = NULL;
    CHECK(joust_store_open(path_in("db"), 0, &st) == JOUST_ENOTFOUND);
    CHECK_RC(joust_store_open(path_in("db"), 1, &st));
    if (!st)
        return 1;
    int nruns = 0;
    CHECK_RC(joust_rec_run_each(st, count_run, &nruns));
    CHECK(nruns == 0);
    CHECK(meta(st, JOUST_NEXT_IMAGE) == 1); /* the default when absent */

    test_ingest_manifest1(st);
    test_ingest_second(st);
    test_ingest_edge(st);
    test_reopen(&st);
    test_runs(&st);
    test_ingest_strict();
    test_ingest_uris();
    test_ingest_check_remote();
    test_ingest_confine();
    test_ingest_threads();

    joust_store_destroy(&st);
    rm_rf(tmpdir);
    return test_report();
}
