/* The quality measure against the demo data's known truth (Kendall tau-b
 * per prompt), each degradation alone, the probability/reason helpers, and
 * the "quality" judge through submit/poll: image errors name the file,
 * results for good images point the right way, the cache counts hits. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "demo_data.h"
#include "err.h"
#include "image.h"
#include "judge.h"
#include "quality.h"

#define PROMPTS 16
#define PER 8
#define SEED 42

static char dir[] = "/tmp/joust_test_quality_XXXXXX";

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x)(n0 - ties_y)). */
static double kendall_tau_b(const double *x, const double *y, int n)
{
    long conc = 0, disc = 0, tx = 0, ty = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double a = x[i] - x[j], b = y[i] - y[j];
            if (a == 0 && b == 0)
                continue;
            if (a == 0)
                tx++;
            else if (b == 0)
                ty++;
            else if ((a > 0) == (b > 0))
                conc++;
            else
                disc++;
        }
    double den = sqrt((double)(conc + disc + tx) * (double)(conc + disc + ty));
    return den > 0 ? (double)(conc - disc) / den : 0;
}

static void test_tau_helper(void)
{
    double a[] = {1, 2, 3, 4}, b[] = {10, 20, 30, 40}, c[] = {4, 3, 2, 1}, d[] = {1, 1, 2, 2};
    CHECK_NEAR(kendall_tau_b(a, b, 4), 1, 1e-12);
    CHECK_NEAR(kendall_tau_b(a, c, 4), -1, 1e-12);
    /* 4 concordant, 2 tied in x: 4 / sqrt(4 * 6) */
    CHECK_NEAR(kendall_tau_b(d, a, 4), 4 / sqrt(24.0), 1e-12);
}

static char *image_path(int p, int k)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/p%d_v%d.jpg", dir, p, k);
    return buf;
}

static void test_manifest(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[2048];
    int lines = 0, ok = 0, shuffled = 0, prev_k = -1; /* shuffled: a descent within a prompt */
    int seen[PROMPTS][PER] = {{0}};
    while (fgets(line, sizeof line, f)) {
        int p = -1, k = -1, truth = -1;
        const char *id = strstr(line, "\"id\": \"p");
        const char *tr = strstr(line, "\"truth\": ");
        lines++;
        if (id && sscanf(id, "\"id\": \"p%d_v%d\"", &p, &k) == 2 && tr &&
            sscanf(tr, "\"truth\": %d", &truth) == 1 && p >= 0 && p < PROMPTS && k >= 0 &&
            k < PER && truth == PER - 1 - k && strstr(line, "\"image\": \"/") &&
            strstr(line, "\"prompt\": \"Scene ") && strstr(line, "\"model\": \"")) {
            ok++;
            seen[p][k]++;
            if ((lines - 1) % PER != 0 && k < prev_k)
                shuffled = 1;
            prev_k = k;
        }
    }
    fclose(f);
    CHECK(lines == PROMPTS * PER);
    CHECK(ok == PROMPTS * PER);
    int once = 1;
    for (int p = 0; p < PROMPTS; p++)
        for (int k = 0; k < PER; k++)
            once &= seen[p][k] == 1;
    CHECK(once);
    CHECK(shuffled); /* the ingest order does not follow the levels */
}

static void test_tau_on_demo(void)
{
    double tau_sum = 0, tau_min = 1;
    double t0 = seconds();
    for (int p = 0; p < PROMPTS; p++) {
        double score[PER], truth[PER];
        for (int k = 0; k < PER; k++) {
            joust_image img;
            joust_quality_stats st;
            char err[512];
            int rc = joust_image_load(image_path(p, k), NULL, &img, err, sizeof err);
            CHECK_RC(rc);
            if (rc)
                return;
            CHECK_RC(joust_quality_measure(&img, &st));
            CHECK(isfinite(st.score));
            score[k] = st.score;
            truth[k] = PER - 1 - k;
            joust_image_free(&img);
        }
        double tau = kendall_tau_b(score, truth, PER);
        tau_sum += tau;
        if (tau < tau_min)
            tau_min = tau;
    }
    double mean = tau_sum / PROMPTS;
    printf("quality vs truth: mean Kendall tau-b %.4f (min %.3f) over %d prompts x %d, "
           "%.1f ms per image\n",
           mean, tau_min, PROMPTS, PER, (seconds() - t0) * 1000 / (PROMPTS * PER));
    CHECK(mean >= 0.85);
    CHECK(mean >= 0.9); /* the target the measure was tuned to */
}

/* Round trip through JPEG q95 4:4:4 as joust_demo_generate writes images. */
static void q95(joust_image *img)
{
    unsigned char *data;
    size_t len;
    joust_image dec;
    if (joust_image_encode_jpeg(img, 95, 1, &data, &len) != 0)
        return;
    if (joust_image_decode(data, len, NULL, &dec, NULL, 0) == 0) {
        joust_image_free(img);
        *img = dec;
    }
    free(data);
}

static void test_each_degradation(void)
{
    for (int p = 0; p < 4; p++) {
        joust_image base;
        joust_demo_base(SEED, 100 + p, &base, NULL, 0);
        joust_image ref = {base.w, base.h, malloc((size_t)base.w * base.h * 3)};
        memcpy(ref.rgb, base.rgb, (size_t)base.w * base.h * 3);
        q95(&ref);
        joust_quality_stats s0, s7;
        CHECK_RC(joust_quality_measure(&ref, &s0));
        for (int kind = 0; kind < JOUST_DEGRADE_COUNT; kind++) {
            joust_image v = {base.w, base.h, malloc((size_t)base.w * base.h * 3)};
            memcpy(v.rgb, base.rgb, (size_t)base.w * base.h * 3);
            joust_demo_degrade(&v, (joust_degrade_kind)kind, 1.0, 7);
            q95(&v);
            CHECK_RC(joust_quality_measure(&v, &s7));
            if (!(s7.score < s0.score))
                fprintf(stderr, "base %d, %s: level 7 score %.3f >= level 0 %.3f\n", p,
                        joust_degrade_name((joust_degrade_kind)kind), s7.score, s0.score);
            CHECK(s7.score < s0.score);
            /* and the aspect that should notice it does */
            switch (kind) {
            case JOUST_DEGRADE_BLUR: CHECK(s7.sharpness < s0.sharpness * 0.6); break;
            case JOUST_DEGRADE_NOISE: CHECK(s7.noise > s0.noise + 5); break;
            case JOUST_DEGRADE_JPEG: CHECK(s7.blockiness > s0.blockiness + 0.3); break;
            default: CHECK(s7.exposure < s0.exposure * 0.5); break;
            }
            joust_image_free(&v);
        }
        joust_image_free(&ref);
        joust_image_free(&base);
    }
}

static void test_prob_and_reason(void)
{
    joust_quality_stats a = {.sharpness = 30, .noise = 0.5, .exposure = 0.95, .contrast = 0.2,
                             .colourfulness = 60, .blockiness = 0.01};
    joust_quality_stats b = a;
    b.noise = 12;
    b.sharpness = 12;
    a.score = 2.0; /* normally set by joust_quality_measure */
    b.score = 1.2;
    CHECK_NEAR(joust_quality_prob(&a, &a), 0.5, 1e-12);
    CHECK(joust_quality_prob(&a, &b) > 0.9);
    CHECK_NEAR(joust_quality_prob(&a, &b) + joust_quality_prob(&b, &a), 1, 1e-12);
    char reason[256];
    joust_quality_reason(&a, &b, reason, sizeof reason);
    CHECK(strstr(reason, "image 1 is sharper") != NULL);
    CHECK(strstr(reason, "image 2 is noisier") != NULL);
    joust_quality_reason(&b, &a, reason, sizeof reason);
    CHECK(strstr(reason, "image 2 is sharper") != NULL);
    joust_quality_reason(&a, &a, reason, sizeof reason);
    CHECK(strstr(reason, "similar") != NULL);
    char tiny[10];
    joust_quality_reason(&a, &b, tiny, sizeof tiny);
    CHECK(strlen(tiny) == sizeof tiny - 1);
    joust_quality_stats st;
    joust_image small = {4, 4, calloc(48, 1)};
    CHECK(joust_quality_measure(&small, &st) == JOUST_EINVAL);
    joust_image_free(&small);
}

static joust_judge_req req(uint64_t match, uint64_t id1, const char *uri1, uint64_t id2,
                           const char *uri2)
{
    joust_judge_req r = {.match_id = match, .attempt = 1, .prompt_id = 1, .prompt = "demo"};
    r.first = (joust_judge_image){.image_id = id1, .uri = uri1};
    r.second = (joust_judge_image){.image_id = id2, .uri = uri2};
    return r;
}

static void test_judge(void)
{
    /* a truncated copy of a good image */
    char corrupt[600], good_abs[600], missing[600];
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.jpg", dir);
    snprintf(good_abs, sizeof good_abs, "file://%s", image_path(0, 7));
    snprintf(missing, sizeof missing, "%s/missing.jpg", dir);
    FILE *in = fopen(image_path(0, 3), "rb");
    FILE *out = fopen(corrupt, "wb");
    CHECK(in && out);
    if (!in || !out)
        return;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n / 2, out);
    fclose(in);
    fclose(out);

    joust_judge_config cfg;
    joust_judge_config_defaults(&cfg);
    cfg.image_root = dir;
    cfg.cache_entries = 16;
    joust_judge_t *j = NULL;
    CHECK_RC(joust_judge_quality_new(&cfg, &j));
    if (!j)
        return;
    CHECK(strcmp(joust_judge_name(j), "quality") == 0);

    joust_judge_req r[6];
    r[0] = req(1, 10, "p0_v0.jpg", 17, good_abs);       /* relative vs file:// */
    r[1] = req(2, 17, good_abs, 10, "p0_v0.jpg");       /* swapped */
    r[2] = req(3, 99, "corrupt.jpg", 10, "p0_v0.jpg");  /* first is corrupt */
    r[3] = req(4, 10, "p0_v0.jpg", 99, corrupt);        /* second, cached failure */
    r[4] = req(5, 10, "p0_v0.jpg", 55, missing);        /* missing file */
    r[5] = req(6, 10, "p0_v0.jpg", 17, good_abs);       /* all cached */
    for (int i = 0; i < 6; i++)
        CHECK_RC(joust_judge_submit(j, &r[i]));
    CHECK(joust_judge_inflight(j) == 6);
    joust_judge_req bad = req(7, 1, NULL, 2, "x.jpg");
    CHECK(joust_judge_submit(j, &bad) == JOUST_EINVAL);

    joust_judge_res res[6];
    memset(res, 0, sizeof res);
    int got = joust_judge_poll(j, res, 2, 0);
    CHECK(got == 2);
    CHECK(joust_judge_inflight(j) == 4);
    got += joust_judge_poll(j, res + 2, 10, 0);
    CHECK(got == 6);
    CHECK(joust_judge_inflight(j) == 0);
    CHECK(joust_judge_poll(j, res, 6, 0) == 0); /* nothing left: returns at once */

    CHECK(res[0].match_id == 1 && res[0].attempt == 1);
    CHECK(res[0].status == JOUST_STATUS_OK && res[0].p_first > 0.9 && res[0].answer == 1);
    CHECK(res[0].reason && strstr(res[0].reason, "image 1") && res[0].error == NULL);
    /* decoding and scoring two images takes measurable time: latency is set */
    CHECK(res[0].failed_image_id == 0 && res[0].latency_us > 0 && res[0].latency_us < 60000000);
    CHECK(res[1].status == JOUST_STATUS_OK && res[1].p_first < 0.1 && res[1].answer == 2);
    CHECK_NEAR(res[0].p_first + res[1].p_first, 1, 1e-9);
    for (int i = 2; i <= 4; i++) {
        CHECK(res[i].status == JOUST_STATUS_IMAGE_ERROR);
        CHECK(res[i].error != NULL && res[i].answer == 0);
    }
    CHECK(res[2].failed_image_id == 99 && res[3].failed_image_id == 99);
    CHECK(res[2].error && strstr(res[2].error, "image 99 (corrupt.jpg): ") == res[2].error);
    CHECK(res[2].error && strstr(res[2].error, "corrupt or truncated JPEG"));
    CHECK(res[3].error && strstr(res[3].error, corrupt));
    CHECK(res[4].failed_image_id == 55 && res[4].error && strstr(res[4].error, "missing.jpg"));
    CHECK(res[5].status == JOUST_STATUS_OK && res[5].answer == 1);
    printf("judge: p=%.3f reason \"%s\"; error \"%s\"\n", res[0].p_first,
           res[0].reason ? res[0].reason : "", res[2].error ? res[2].error : "");

    /* 4 distinct images, each read once (the corrupt one too); 11 lookups,
     * since r[2] stops at its failed first image */
    uint64_t hits = 0, misses = 0;
    joust_judge_quality_cache_stats(j, &hits, &misses);
    CHECK(misses == 4);
    CHECK(hits == 7);
    for (int i = 0; i < 6; i++)
        joust_judge_res_clear(&res[i]);
    joust_judge_destroy(&j);
    CHECK(j == NULL);
}

/* A one-entry cache still answers right: the image stage keeps at least
 * the two images of the current match (imgsrc.h), so each is read once. */
static void test_judge_eviction(void)
{
    joust_judge_config cfg;
    joust_judge_config_defaults(&cfg);
    cfg.cache_entries = 1;
    joust_judge_t *j = NULL;
    CHECK_RC(joust_judge_quality_new(&cfg, &j));
    if (!j)
        return;
    char a[600], b[600];
    snprintf(a, sizeof a, "%s", image_path(1, 1));
    snprintf(b, sizeof b, "%s", image_path(1, 6));
    for (int i = 0; i < 4; i++) {
        joust_judge_req r = i % 2 ? req((uint64_t)i, 2, b, 1, a) : req((uint64_t)i, 1, a, 2, b);
        CHECK_RC(joust_judge_submit(j, &r));
    }
    joust_judge_res res[4];
    CHECK(joust_judge_poll(j, res, 4, 0) == 4);
    for (int i = 0; i < 4; i++) {
        CHECK(res[i].status == JOUST_STATUS_OK);
        CHECK(res[i].answer == (i % 2 ? 2 : 1));
        joust_judge_res_clear(&res[i]);
    }
    uint64_t hits, misses;
    joust_judge_quality_cache_stats(j, &hits, &misses);
    CHECK(hits + misses == 8 && misses == 2);
    /* requests still queued at destroy are released */
    joust_judge_req r = req(9, 1, a, 2, b);
    CHECK_RC(joust_judge_submit(j, &r));
    joust_judge_destroy(&j);
    joust_judge_quality_cache_stats(NULL, &hits, &misses);
    CHECK(hits == 0 && misses == 0);
}

static void test_generate_errors(void)
{
    CHECK(joust_demo_generate(dir, 0, 8, 1, NULL) == JOUST_EINVAL);
    CHECK(joust_demo_generate(dir, 1, 1, 1, NULL) == JOUST_EINVAL);
    CHECK(joust_demo_generate("/proc/no/such/dir", 1, 2, 1, NULL) == JOUST_EIO);
}

static void cleanup(void)
{
    char path[600];
    for (int p = 0; p < PROMPTS; p++)
        for (int k = 0; k < PER; k++)
            unlink(image_path(p, k));
    static const char *files[] = {"manifest.jsonl", "corrupt.jpg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_tau_helper();
    double t0 = seconds();
    int rc = joust_demo_generate(dir, PROMPTS, PER, SEED, NULL);
    CHECK_RC(rc);
    printf("demo data: %d prompts x %d images in %.2f s\n", PROMPTS, PER, seconds() - t0);
    if (rc == 0) {
        test_manifest();
        test_tau_on_demo();
        test_judge();
        test_judge_eviction();
    }
    test_each_degradation();
    test_prob_and_reason();
    test_generate_errors();
    cleanup();
    return test_report();
}
