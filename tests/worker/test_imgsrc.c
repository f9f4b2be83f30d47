/* Tests of the image stage (worker/imgsrc.h): one path from reference to
 * prepared value, an LRU by image id with hits counted, failures cached
 * with their reason, id 0 never cached, and the fetch seam that remote
 * fetching plugs into. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "image.h"
#include "imgsrc.h"
#include "openai_prep.h"
#include "testfs.h"

static char tmpdir[] = "/tmp/joust-imgsrc-XXXXXX";
static int prepared; /* how many times prepare ran */

static char *path_in(const char *name) { return path_under(tmpdir, name); }

static joust_image solid(int w, int h, unsigned char v)
{
    joust_image img = {w, h, malloc((size_t)w * h * 3)};
    memset(img.rgb, v, (size_t)w * h * 3);
    return img;
}

static void write_png(const char *path, int w, int h, unsigned char v)
{
    joust_image img = solid(w, h, v);
    CHECK_RC(joust_image_save_png(path, &img));
    joust_image_free(&img);
}

/* The value kept per image: its size as "WxH". */
static int prepare(void *ctx, const joust_image *img, int src_w, int src_h, void **value,
                   size_t *bytes, char *err, size_t errlen)
{
    (void)ctx;
    CHECK(src_w == img->w && src_h == img->h); /* no want here: full size */
    prepared++;
    if (img->w == 3) {
        snprintf(err, errlen, "three pixels wide is refused");
        return JOUST_EINVAL;
    }
    char *s = malloc(32);
    snprintf(s, 32, "%dx%d", img->w, img->h);
    *value = s;
    *bytes = strlen(s);
    return 0;
}

/* A stand-in remote fetcher: serves one PNG for any https reference. */
static int fetches;
static int fetch(void *ctx, const joust_uri *ref, size_t max_bytes, unsigned char **data,
                 size_t *len, char *err, size_t errlen)
{
    (void)max_bytes;
    fetches++;
    if (strstr(ref->path, "outage") && fetches % 2) { /* every other try: the store is down */
        snprintf(err, errlen, "%s: HTTP 503 (after 3 tries)", ref->path);
        return JOUST_EAGAIN;
    }
    if (ref->scheme != JOUST_URI_HTTPS) {
        snprintf(err, errlen, "%s: only https here", ref->path);
        return JOUST_EUNSUPPORTED;
    }
    joust_image img = solid(7, 5, 40);
    int rc = joust_image_encode_png(&img, data, len);
    joust_image_free(&img);
    CHECK(strstr(ref->path, "https://") == ref->path && ctx == &fetches);
    return rc;
}

static void test_cache(void)
{
    write_png(path_in("a.png"), 10, 6, 100);
    write_png(path_in("b.png"), 12, 8, 150);
    write_png(path_in("thin.png"), 3, 9, 20);
    joust_imgsrc_config cfg = {.image_root = tmpdir, .max_entries = 3,
                               .use = {.prepare = prepare}, .log_name = "test"};
    joust_imgsrc_t *s = joust_imgsrc_new(&cfg);
    const void *v;
    char err[512];
    CHECK_RC(joust_imgsrc_get(s, 1, "a.png", &v, err, sizeof err));
    CHECK(v && !strcmp(v, "10x6"));
    CHECK_RC(joust_imgsrc_get(s, 2, "b.png", &v, err, sizeof err));
    CHECK(v && !strcmp(v, "12x8"));
    CHECK_RC(joust_imgsrc_get(s, 1, "a.png", &v, err, sizeof err));
    CHECK(prepared == 2);
    joust_imgsrc_stats st;
    joust_imgsrc_stats_get(s, &st);
    CHECK(st.hits == 1 && st.misses == 2 && st.entries == 2 && st.bytes == 8);
    /* a failure of prepare is cached with its reason, as a read failure is */
    CHECK(joust_imgsrc_get(s, 3, "thin.png", &v, err, sizeof err) == JOUST_EINVAL);
    CHECK(v == NULL && strstr(err, "three pixels") && strstr(err, "thin.png"));
    CHECK(joust_imgsrc_get(s, 3, "thin.png", &v, err, sizeof err) == JOUST_EINVAL);
    CHECK(prepared == 3);
    CHECK(joust_imgsrc_get(s, 4, "nope.png", &v, err, sizeof err) == JOUST_ENOTFOUND);
    CHECK(strstr(err, path_in("nope.png")) != NULL);
    /* three entries at most: image 2 (least recent) was evicted */
    CHECK_RC(joust_imgsrc_get(s, 2, "b.png", &v, err, sizeof err));
    CHECK(prepared == 4);
    /* id 0 is never cached */
    CHECK_RC(joust_imgsrc_get(s, 0, "a.png", &v, err, sizeof err));
    CHECK_RC(joust_imgsrc_get(s, 0, "a.png", &v, err, sizeof err));
    CHECK(prepared == 6);
    /* without a fetcher, remote references fail with the reason */
    CHECK(joust_imgsrc_get(s, 9, "https://h/x.png", &v, err, sizeof err) == JOUST_EUNSUPPORTED);
    CHECK(strstr(err, "https://h/x.png") && strstr(err, "not supported"));
    CHECK(joust_imgsrc_get(s, 10, "file://h/x.png", &v, err, sizeof err) == JOUST_EINVAL);
    CHECK(strstr(err, "host") != NULL);
    joust_imgsrc_destroy(&s);
    CHECK(s == NULL);
    joust_imgsrc_destroy(&s);
}

static void test_fetch_seam(void)
{
    joust_imgsrc_config cfg = {.use = {.prepare = prepare}, .fetch_remote = fetch,
                               .fetch_ctx = &fetches};
    joust_imgsrc_t *s = joust_imgsrc_new(&cfg);
    const void *v;
    char err[512];
    CHECK_RC(joust_imgsrc_get(s, 1, "https://images.example/x.png", &v, err, sizeof err));
    CHECK(v && !strcmp(v, "7x5"));
    CHECK_RC(joust_imgsrc_get(s, 1, "https://images.example/x.png", &v, err, sizeof err));
    CHECK(fetches == 1);
    CHECK(joust_imgsrc_get(s, 2, "s3://b/k.png", &v, err, sizeof err) == JOUST_EUNSUPPORTED);
    CHECK(strstr(err, "only https") != NULL && fetches == 2);
    /* an outage is not the image's fault: not cached, the next get fetches again */
    fetches = 0;
    CHECK(joust_imgsrc_get(s, 3, "https://outage/z.png", &v, err, sizeof err) == JOUST_EAGAIN);
    CHECK(v == NULL && strstr(err, "503") && joust_imgsrc_outage(JOUST_EAGAIN));
    CHECK(!joust_imgsrc_outage(JOUST_ENOTFOUND));
    CHECK_RC(joust_imgsrc_get(s, 3, "https://outage/z.png", &v, err, sizeof err));
    CHECK(v && !strcmp(v, "7x5") && fetches == 2);
    /* uncached load: the decoded image itself */
    joust_image img;
    CHECK_RC(joust_imgsrc_load(s, "https://images.example/y.png", &img, err, sizeof err));
    CHECK(img.w == 7 && img.h == 5 && img.rgb && img.rgb[0] == 40);
    joust_image_free(&img);
    joust_imgsrc_destroy(&s);
}

/* Special files never block the worker: each is refused at once with the
 * kind named (ctest's TIMEOUT catches a hang); so is a file over the limit. */
static void test_special_files(void)
{
    int sk = make_special_files(tmpdir, ".png");
    CHECK(sk >= 0);
    write_png(path_in("big.png"), 64, 64, 10);
    joust_imgsrc_config cfg = {.image_root = tmpdir, .use = {.prepare = prepare}};
    joust_image_limits_defaults(&cfg.lim);
    cfg.lim.max_bytes = 64;
    const struct {
        const char *name, *why;
        int rc;
    } cases[] = {
        {"fifo.png", "is a FIFO (named pipe), not a regular file", JOUST_EIO},
        {"dir.png", "is a directory", JOUST_EIO},
        {"sock.png", "is a socket", JOUST_EIO},
        {"to-zero.png", "is a character device", JOUST_EIO},
        {"/dev/zero", "is a character device", JOUST_EIO},
        {"to-fifo.png", "is a FIFO", JOUST_EIO},
        {"to-dir.png", "is a directory", JOUST_EIO},
        {"to-sock.png", "is a socket", JOUST_EIO},
        {"big.png", "over the limit of 64", JOUST_ETOOBIG},
    };
    for (int confined = 0; confined < 2; confined++) {
        /* the same answers with the folder as the allowed root, where the
         * canonical path is opened with O_NOFOLLOW */
        joust_path_roots roots = {0};
        const char *dirs[] = {tmpdir, "/dev"};
        char err[512];
        if (confined)
            CHECK_RC(joust_path_roots_init(&roots, dirs, 2, err, sizeof err));
        cfg.roots = &roots;
        joust_imgsrc_t *s = joust_imgsrc_new(&cfg);
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            const void *v = NULL;
            int rc = joust_imgsrc_get(s, i + 1, cases[i].name, &v, err, sizeof err);
            if (rc != cases[i].rc || !strstr(err, cases[i].why) || v)
                fprintf(stderr, "%s (confined %d): got %d (%s)\n", cases[i].name, confined, rc,
                        err);
            CHECK(rc == cases[i].rc && strstr(err, cases[i].why) && !v);
        }
        joust_imgsrc_destroy(&s);
        joust_path_roots_free(&roots);
    }
    close(sk);
}

/* The openai judge's preparation on the stage: a large JPEG is decoded at
 * a reduced scale (counted) and sent at exactly the size a full decode
 * gives; an extreme shape stays within the budget and the aspect limit. */
static void test_openai_prep(void)
{
    joust_image img = solid(2000, 1500, 90);
    for (size_t i = 0; i < (size_t)2000 * 1500 * 3; i += 7)
        img.rgb[i] = (unsigned char)i;
    CHECK_RC(joust_image_save_jpeg(path_in("photo.jpg"), &img, 90));
    joust_image_free(&img);
    write_png(path_in("strip.png"), 16384, 16, 128);
    joust_oa_image im[2];
    char err[512];
    for (int full = 0; full < 2; full++) {
        joust_oa_prep_config pc = {.min_pixels = 3136, .max_pixels = 401408, .factor = 28,
                                   .jpeg_quality = 90, .max_entries = 8, .image_root = tmpdir,
                                   .full_decode = full};
        joust_oa_prep_t *p = joust_oa_prep_new(&pc);
        CHECK_RC(joust_oa_prep_get(p, 1, "photo.jpg", &im[full], err, sizeof err));
        CHECK(joust_oa_prep_scaled_decodes(p) == (full ? 0u : 1u));
        joust_oa_image strip;
        CHECK_RC(joust_oa_prep_get(p, 2, "strip.png", &strip, err, sizeof err));
        CHECK(strip.src_w == 16384 && strip.src_h == 16);
        CHECK(strip.w == 5600 && strip.h == 28 && (long long)strip.w * strip.h <= 401408);
        CHECK(joust_oa_prep_scaled_decodes(p) == (full ? 0u : 1u)); /* PNG: full size */
        joust_oa_prep_destroy(&p);
    }
    /* 2000x1500 -> 728x532 either way (1/2 = 1000x750 covers it) */
    CHECK(im[0].w == im[1].w && im[0].h == im[1].h && im[0].w == 728 && im[0].h == 532);
    CHECK(im[0].src_w == 2000 && im[0].src_h == 1500);
}

int main(void)
{
    CHECK(mkdtemp(tmpdir) != NULL);
    test_cache();
    test_fetch_seam();
    test_special_files();
    test_openai_prep();
    rm_rf(tmpdir);
    return test_report();
}
