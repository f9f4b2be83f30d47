/* Image I/O: round trips through JPEG, PNG and WebP; hostile inputs
 * (truncated, corrupt, empty, text, decompression-bomb headers) give the
 * right error code and a message, never a crash; the Qwen2.5-VL budget;
 * resampling. */
#include <math.h>
#include <spng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <webp/encode.h>

#include "check.h"
#include "err.h"
#include "image.h"

static char tmpdir[] = "/tmp/joust_test_image_XXXXXX";

/* A 64x48 test card: gradients, a disc and a checker, so codecs have edges. */
static joust_image card(void)
{
    joust_image img = {64, 48, malloc(64 * 48 * 3)};
    for (int y = 0; y < img.h; y++)
        for (int x = 0; x < img.w; x++) {
            unsigned char *p = img.rgb + 3 * (y * img.w + x);
            int disc = (x - 40) * (x - 40) + (y - 24) * (y - 24) < 150;
            int check = ((x / 8) + (y / 8)) % 2;
            p[0] = (unsigned char)(disc ? 230 : x * 4);
            p[1] = (unsigned char)(check ? 200 : y * 5);
            p[2] = (unsigned char)(disc ? 40 : 120);
        }
    return img;
}

static double mean_abs_diff(const joust_image *a, const joust_image *b)
{
    double s = 0;
    size_t n = (size_t)a->w * a->h * 3;
    for (size_t i = 0; i < n; i++)
        s += abs((int)a->rgb[i] - (int)b->rgb[i]);
    return s / (double)n;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    return fclose(f) == 0 && w == len ? 0 : -1;
}

static char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

/* Decoding data must fail with want and a non-empty message. */
static void expect_decode_error(const char *what, const void *data, size_t len,
                                const joust_image_limits *lim, int want)
{
    joust_image out = {0};
    char err[256] = "";
    int rc = joust_image_decode(data, len, lim, &out, err, sizeof err);
    if (rc != want)
        fprintf(stderr, "%s: got %d (%s), want %d\n", what, rc, err, want);
    CHECK(rc == want);
    CHECK(err[0] != '\0');
    CHECK(out.rgb == NULL && out.w == 0 && out.h == 0);
    joust_image_free(&out);
}

static void test_jpeg_roundtrip(void)
{
    joust_image img = card(), dec = {0};
    unsigned char *data = NULL;
    size_t len = 0;
    CHECK_RC(joust_image_encode_jpeg(&img, 95, 1, &data, &len));
    CHECK(len > 100 && data[0] == 0xff && data[1] == 0xd8);
    char err[256];
    CHECK_RC(joust_image_decode(data, len, NULL, &dec, err, sizeof err));
    CHECK(dec.w == 64 && dec.h == 48);
    CHECK(dec.rgb && mean_abs_diff(&img, &dec) < 3);
    joust_image_free(&dec);
    free(data);
    /* 4:2:0 at low quality still decodes to the same size */
    CHECK_RC(joust_image_encode_jpeg(&img, 20, 0, &data, &len));
    CHECK_RC(joust_image_decode(data, len, NULL, &dec, err, sizeof err));
    CHECK(dec.w == 64 && dec.h == 48);
    joust_image_free(&dec);
    free(data);
    /* save + load through a file */
    CHECK_RC(joust_image_save_jpeg(tmp_path("card.jpg"), &img, 90));
    CHECK_RC(joust_image_load(tmp_path("card.jpg"), NULL, &dec, err, sizeof err));
    CHECK(dec.w == 64 && dec.h == 48 && mean_abs_diff(&img, &dec) < 4);
    joust_image_free(&dec);
    joust_image_free(&img);
}

static void test_png_roundtrip(void)
{
    joust_image img = card(), dec = {0};
    unsigned char *data = NULL;
    size_t len = 0;
    CHECK_RC(joust_image_encode_png(&img, &data, &len));
    CHECK(len > 8 && memcmp(data, "\x89PNG", 4) == 0);
    CHECK_RC(joust_image_decode(data, len, NULL, &dec, NULL, 0));
    CHECK(dec.w == 64 && dec.h == 48);
    CHECK(dec.rgb && memcmp(dec.rgb, img.rgb, 64 * 48 * 3) == 0); /* lossless */
    joust_image_free(&dec);
    free(data);
    CHECK_RC(joust_image_save_png(tmp_path("card.png"), &img));
    CHECK_RC(joust_image_load(tmp_path("card.png"), NULL, &dec, NULL, 0));
    CHECK(dec.w == 64 && dec.h == 48 && memcmp(dec.rgb, img.rgb, 64 * 48 * 3) == 0);
    joust_image_free(&dec);
    joust_image_free(&img);
}

static void test_webp_roundtrip(void)
{
    joust_image img = card(), dec = {0};
    uint8_t *data = NULL;
    size_t len = WebPEncodeRGB(img.rgb, img.w, img.h, img.w * 3, 92, &data);
    CHECK(len > 0);
    char err[256];
    CHECK_RC(joust_image_decode(data, len, NULL, &dec, err, sizeof err));
    CHECK(dec.w == 64 && dec.h == 48);
    CHECK(dec.rgb && mean_abs_diff(&img, &dec) < 8);
    joust_image_free(&dec);

    /* truncated WebP, and one over a tight limit */
    expect_decode_error("truncated webp", data, len / 2, NULL, JOUST_ECORRUPT);
    expect_decode_error("short webp", data, 10, NULL, JOUST_ECORRUPT);
    joust_image_limits lim;
    joust_image_limits_defaults(&lim);
    lim.max_side = 32;
    expect_decode_error("webp over max_side", data, len, &lim, JOUST_ETOOBIG);
    WebPFree(data);
    joust_image_free(&img);
}

/* The same RGBA pixels as PNG (libspng) and lossless WebP decode to the same
 * RGB: transparency composited onto the same background. */
static void test_alpha_compositing(void)
{
    enum { W = 4, H = 2 };
    unsigned char rgba[W * H * 4] = {
        255, 0, 0, 255,   0, 255, 0, 0,     0, 0, 255, 128,   10, 20, 30, 255,
        0, 0, 0, 0,       255, 255, 255, 64, 100, 50, 0, 200, 0, 0, 0, 255,
    };
    /* PNG with alpha via libspng */
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ihdr = {.width = W, .height = H, .bit_depth = 8,
                             .color_type = SPNG_COLOR_TYPE_TRUECOLOR_ALPHA};
    spng_set_ihdr(ctx, &ihdr);
    int r = spng_encode_image(ctx, rgba, sizeof rgba, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    CHECK(r == 0);
    size_t plen = 0;
    unsigned char *png = spng_get_png_buffer(ctx, &plen, &r);
    spng_ctx_free(ctx);
    CHECK(png != NULL);
    uint8_t *webp = NULL;
    size_t wlen = WebPEncodeLosslessRGBA(rgba, W, H, W * 4, &webp);
    CHECK(wlen > 0);

    joust_image a = {0}, b = {0};
    CHECK_RC(joust_image_decode(png, plen, NULL, &a, NULL, 0));
    CHECK_RC(joust_image_decode(webp, wlen, NULL, &b, NULL, 0));
    CHECK(a.w == W && a.h == H && b.w == W && b.h == H);
    if (a.rgb && b.rgb) {
        CHECK(memcmp(a.rgb, b.rgb, W * H * 3) == 0);
        const int bg = JOUST_IMAGE_BACKGROUND;
        CHECK(a.rgb[0] == 255 && a.rgb[1] == 0 && a.rgb[2] == 0);   /* opaque kept */
        CHECK(a.rgb[3] == bg && a.rgb[4] == bg && a.rgb[5] == bg);  /* transparent -> bg */
        CHECK(abs(a.rgb[8] - (255 * 128 + bg * 127) / 255) <= 1);   /* half alpha blends */
        CHECK(abs(a.rgb[6] - bg * 127 / 255) <= 1);
    }
    joust_image_free(&a);
    joust_image_free(&b);
    free(png);
    WebPFree(webp);
}

/* CMYK (YCCK) JPEGs decode through TurboJPEG's CMYK output and a conversion
 * that inverts libjpeg-turbo's own RGB->CMYK convention. */
static void test_cmyk_jpeg(void)
{
    joust_image img = card();
    size_t n = (size_t)img.w * img.h;
    unsigned char *cmyk = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = img.rgb + 3 * i;
        int k = p[0] > p[1] ? p[0] : p[1];
        k = k > p[2] ? k : p[2];
        unsigned char *q = cmyk + 4 * i;
        for (int c = 0; c < 3; c++)
            q[c] = (unsigned char)(k ? (p[c] * 255 + k / 2) / k : 0);
        q[3] = (unsigned char)k;
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long jlen = 0;
    int rc = tjCompress2(tj, cmyk, img.w, 0, img.h, TJPF_CMYK, &jpg, &jlen, TJSAMP_444, 100, 0);
    CHECK(rc == 0);
    joust_image dec = {0};
    char err[256];
    CHECK_RC(joust_image_decode(jpg, jlen, NULL, &dec, err, sizeof err));
    CHECK(dec.w == img.w && dec.h == img.h);
    if (dec.rgb)
        CHECK(mean_abs_diff(&img, &dec) < 4);
    joust_image_free(&dec);
    tjFree(jpg);
    tjDestroy(tj);
    free(cmyk);
    joust_image_free(&img);
}

/* Greyscale JPEG and 16-bit PNG come out as RGB8 like everything else. */
static void test_other_layouts(void)
{
    enum { W = 24, H = 16 };
    unsigned char grey[W * H];
    for (int i = 0; i < W * H; i++)
        grey[i] = (unsigned char)(i % W * 10);
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long jlen = 0;
    CHECK(tjCompress2(tj, grey, W, 0, H, TJPF_GRAY, &jpg, &jlen, TJSAMP_GRAY, 100, 0) == 0);
    joust_image dec = {0};
    CHECK_RC(joust_image_decode(jpg, jlen, NULL, &dec, NULL, 0));
    CHECK(dec.w == W && dec.h == H);
    int ok = dec.rgb != NULL;
    for (int i = 0; ok && i < W * H; i++)
        ok = dec.rgb[3 * i] == dec.rgb[3 * i + 1] && dec.rgb[3 * i + 1] == dec.rgb[3 * i + 2] &&
             abs(dec.rgb[3 * i] - grey[i]) <= 3;
    CHECK(ok);
    joust_image_free(&dec);
    tjFree(jpg);
    tjDestroy(tj);

    uint16_t rgb16[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        rgb16[i] = (uint16_t)(i * 97 % 65536);
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ihdr = {.width = W, .height = H, .bit_depth = 16,
                             .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
    spng_set_ihdr(ctx, &ihdr);
    /* SPNG_FMT_PNG takes samples in host order and writes them big-endian */
    int r = spng_encode_image(ctx, rgb16, sizeof rgb16, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    CHECK(r == 0);
    size_t plen = 0;
    unsigned char *png = spng_get_png_buffer(ctx, &plen, &r);
    spng_ctx_free(ctx);
    CHECK_RC(joust_image_decode(png, plen, NULL, &dec, NULL, 0));
    CHECK(dec.w == W && dec.h == H);
    ok = dec.rgb != NULL;
    for (int i = 0; ok && i < W * H * 3; i++)
        ok = abs(dec.rgb[i] - (rgb16[i] >> 8)) <= 1;
    CHECK(ok);
    joust_image_free(&dec);
    free(png);
}

static uint32_t crc32_bytes(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void test_hostile_inputs(void)
{
    joust_image img = card();
    unsigned char *jpg, *png;
    size_t jlen, plen;
    CHECK_RC(joust_image_encode_jpeg(&img, 90, 0, &jpg, &jlen));
    CHECK_RC(joust_image_encode_png(&img, &png, &plen));

    expect_decode_error("empty", "", 0, NULL, JOUST_ECORRUPT);
    expect_decode_error("jpeg magic only", jpg, 2, NULL, JOUST_ECORRUPT);
    expect_decode_error("truncated jpeg", jpg, jlen / 2, NULL, JOUST_ECORRUPT);
    expect_decode_error("jpeg header only", jpg, 300, NULL, JOUST_ECORRUPT);
    expect_decode_error("truncated png", png, plen / 2, NULL, JOUST_ECORRUPT);
    expect_decode_error("png signature only", png, 8, NULL, JOUST_ECORRUPT);
    const char *text = "hello, this is not an image\n";
    expect_decode_error("text", text, strlen(text), NULL, JOUST_EFORMAT);
    expect_decode_error("riff wave", "RIFF\x24\0\0\0WAVEfmt ", 16, NULL, JOUST_EFORMAT);

    /* corrupt bytes: a PNG byte flip in IDAT breaks its CRC */
    unsigned char *bad = malloc(plen);
    memcpy(bad, png, plen);
    bad[plen - 20] ^= 0x55;
    expect_decode_error("corrupt png", bad, plen, NULL, JOUST_ECORRUPT);
    free(bad);
    /* JPEG entropy data overwritten with garbage up to the end (EOI lost) */
    bad = malloc(jlen);
    memcpy(bad, jpg, jlen);
    for (size_t i = jlen / 3; i < jlen; i++)
        bad[i] = (unsigned char)(i * 37 + 11);
    expect_decode_error("corrupt jpeg", bad, jlen, NULL, JOUST_ECORRUPT);
    /* a broken marker segment in the header */
    memcpy(bad, jpg, jlen);
    memset(bad + 2, 0xff, 40);
    bad[41] = 0x01;
    expect_decode_error("corrupt jpeg header", bad, jlen, NULL, JOUST_ECORRUPT);
    free(bad);

    /* decompression bombs: headers that declare huge images are refused
     * before any pixel memory is allocated */
    unsigned char bomb[8 + 25 + 12];
    memcpy(bomb, "\x89PNG\r\n\x1a\n", 8);
    put_be32(bomb + 8, 13);
    memcpy(bomb + 12, "IHDR", 4);
    put_be32(bomb + 16, 100000);
    put_be32(bomb + 20, 100000);
    bomb[24] = 8, bomb[25] = 2, bomb[26] = 0, bomb[27] = 0, bomb[28] = 0;
    put_be32(bomb + 29, crc32_bytes(bomb + 12, 17));
    put_be32(bomb + 33, 0);
    memcpy(bomb + 37, "IDAT", 4);
    put_be32(bomb + 41, crc32_bytes(bomb + 37, 4));
    expect_decode_error("png 100000x100000", bomb, sizeof bomb, NULL, JOUST_ETOOBIG);

    /* JPEG sizes are 16-bit: 60000x60000 (3.6 Gpix) in the SOF of a real
     * file; TurboJPEG reads the header fine, the limit must refuse it. */
    bad = malloc(jlen);
    memcpy(bad, jpg, jlen);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < jlen; i++)
        if (bad[i] == 0xff && (bad[i + 1] == 0xc0 || bad[i + 1] == 0xc2)) {
            sof = i;
            break;
        }
    CHECK(sof > 0);
    if (sof) {
        bad[sof + 5] = 60000 >> 8, bad[sof + 6] = 60000 & 0xff; /* height */
        bad[sof + 7] = 60000 >> 8, bad[sof + 8] = 60000 & 0xff; /* width */
        expect_decode_error("jpeg 60000x60000", bad, jlen, NULL, JOUST_ETOOBIG);
    }
    free(bad);
    /* within the side limit but over the pixel budget */
    joust_image_limits lim;
    joust_image_limits_defaults(&lim);
    lim.max_pixels = 1000;
    expect_decode_error("jpeg over max_pixels", jpg, jlen, &lim, JOUST_ETOOBIG);
    expect_decode_error("png over max_pixels", png, plen, &lim, JOUST_ETOOBIG);

    /* no output or no error buffer: no crash */
    joust_image out;
    CHECK(joust_image_decode(jpg, jlen, NULL, NULL, NULL, 0) == JOUST_EINVAL);
    CHECK(joust_image_decode(jpg, jlen / 2, NULL, &out, NULL, 0) == JOUST_ECORRUPT);
    char tiny[8];
    CHECK(joust_image_decode(text, strlen(text), NULL, &out, tiny, sizeof tiny) == JOUST_EFORMAT);
    CHECK(strlen(tiny) == sizeof tiny - 1);
    free(jpg);
    free(png);
    joust_image_free(&img);
}

static void expect_load_error(const char *path, const joust_image_limits *lim, int want)
{
    joust_image out = {0};
    char err[512] = "";
    int rc = joust_image_load(path, lim, &out, err, sizeof err);
    if (rc != want)
        fprintf(stderr, "load %s: got %d (%s), want %d\n", path, rc, err, want);
    CHECK(rc == want);
    CHECK(strstr(err, path) != NULL); /* the message names the file */
    CHECK(out.rgb == NULL);
}

static void test_load_errors(void)
{
    expect_load_error(tmp_path("no-such-file.jpg"), NULL, JOUST_ENOTFOUND);
    expect_load_error("/nonexistent-dir/x.png", NULL, JOUST_ENOTFOUND);
    CHECK(write_file(tmp_path("empty.jpg"), "", 0) == 0);
    expect_load_error(tmp_path("empty.jpg"), NULL, JOUST_ECORRUPT);
    const char *text = "name,score\na,1\n";
    CHECK(write_file(tmp_path("notes.png"), text, strlen(text)) == 0);
    expect_load_error(tmp_path("notes.png"), NULL, JOUST_EFORMAT);
    expect_load_error(tmpdir, NULL, JOUST_EIO); /* a directory */
    joust_image img = card();
    CHECK_RC(joust_image_save_jpeg(tmp_path("big.jpg"), &img, 95));
    joust_image_free(&img);
    joust_image_limits lim;
    joust_image_limits_defaults(&lim);
    lim.max_bytes = 100;
    expect_load_error(tmp_path("big.jpg"), &lim, JOUST_ETOOBIG);
    /* truncated on disk */
    unsigned char *jpg;
    size_t jlen;
    img = card();
    CHECK_RC(joust_image_encode_jpeg(&img, 90, 1, &jpg, &jlen));
    CHECK(write_file(tmp_path("cut.jpg"), jpg, jlen * 2 / 3) == 0);
    expect_load_error(tmp_path("cut.jpg"), NULL, JOUST_ECORRUPT);
    free(jpg);
    joust_image_free(&img);
}

static void test_fit_budget(void)
{
    int w, h;
    joust_image_fit_budget(512, 512, 3136, 401408, 28, 0, &w, &h);
    CHECK(w == 504 && h == 504);
    joust_image_fit_budget(1024, 1024, 3136, 401408, 28, 0, &w, &h);
    CHECK(w == 616 && h == 616);
    /* Qwen2.5-VL's own defaults: 1024 rounds up to 37 patches */
    joust_image_fit_budget(1024, 1024, 3136, 12845056, 28, 0, &w, &h);
    CHECK(w == 1036 && h == 1036);
    /* tiny images are scaled up to min_pixels */
    joust_image_fit_budget(10, 10, 3136, 401408, 28, 0, &w, &h);
    CHECK(w == 56 && h == 56);
    joust_image_fit_budget(30, 20, 3136, 401408, 28, 0, &w, &h);
    CHECK(w % 28 == 0 && h % 28 == 0 && (long long)w * h >= 3136);
    /* aspect ratio kept within one factor step; always multiples of 28 */
    static const int sizes[][2] = {{1000, 500}, {333, 1999}, {4000, 3000}, {1920, 1080},
                                   {640, 480}, {100, 2000}, {2048, 1536}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int sw = sizes[i][0], sh = sizes[i][1];
        joust_image_fit_budget(sw, sh, 3136, 401408, 28, 0, &w, &h);
        CHECK(w > 0 && h > 0 && w % 28 == 0 && h % 28 == 0);
        CHECK((long long)w * h <= 401408 && (long long)w * h >= 3136);
        /* relative aspect error at most one step on each side */
        double aspect = (double)w / h, want = (double)sw / sh;
        CHECK(fabs(aspect / want - 1) <= 28.0 / w + 28.0 / h);
    }
    joust_image_fit_budget(0, 10, 3136, 401408, 28, 0, &w, &h);
    CHECK(w == 0 && h == 0);
    /* 16384 x 16 used to come out as 20272 x 28 = 567,616 px, over the
     * budget: the side held at 28 now makes the other give way (14336 =
     * 512 patches), and the aspect limit squeezes it to 200:1; within the
     * limit (5600 x 28 is exactly 200) the aspect is left alone */
    static const struct {
        int w, h;
        double aspect;
        int ow, oh;
    } extreme[] = {{16384, 16, 0, 14336, 28}, {16384, 16, 200, 5600, 28},
                   {16, 16384, 200, 28, 5600}, {5600, 28, 200, 5600, 28}};
    for (size_t i = 0; i < sizeof extreme / sizeof *extreme; i++) {
        joust_image_fit_budget(extreme[i].w, extreme[i].h, 3136, 401408, 28, extreme[i].aspect,
                               &w, &h);
        CHECK(w == extreme[i].ow && h == extreme[i].oh);
    }
}

/* The budget over a sweep of shapes, from 1 px to the 16384 px limit per
 * side and every aspect between: each result is within the pixel budget,
 * has sides that are positive multiples of 28 and an aspect ratio within
 * the limit. */
static void test_fit_budget_sweep(void)
{
    static const int sides[] = {1,    2,    3,    7,    13,   16,   27,   28,    29,    55,
                                56,   57,   100,  224,  333,  480,  512,  1000,  1080,  1920,
                                2048, 3000, 4000, 5599, 5600, 5601, 8192, 10000, 16383, 16384};
    static const long long budgets[] = {3136 * 4, 200704, 401408, 1003520, 12845056};
    static const double aspects[] = {200, 50, 1};
    size_t n = sizeof sides / sizeof *sides, bad = 0, total = 0;
    for (size_t b = 0; b < sizeof budgets / sizeof *budgets; b++)
        for (size_t a = 0; a < sizeof aspects / sizeof *aspects; a++)
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                    int w = 0, h = 0;
                    joust_image_fit_budget(sides[i], sides[j], 3136, budgets[b], 28, aspects[a],
                                           &w, &h);
                    double r = w > h ? (double)w / h : (double)h / w;
                    int ok = w >= 28 && h >= 28 && w % 28 == 0 && h % 28 == 0 &&
                             (long long)w * h <= budgets[b] && r <= aspects[a] + 1e-9;
                    if (!ok && bad++ < 5)
                        fprintf(stderr, "%dx%d budget %lld aspect %g -> %dx%d\n", sides[i],
                                sides[j], budgets[b], aspects[a], w, h);
                    total++;
                }
    CHECK(bad == 0 && total == 5 * 3 * 30 * 30);
}

/* Large JPEGs are decoded at a reduced scale that still covers what the
 * caller wants; the decoded size says which scale was used. */
static void want_fixed(void *ctx, int w, int h, int *min_w, int *min_h)
{
    const int *m = ctx;
    CHECK(w == 2000 && h == 1500); /* want sees the full size */
    *min_w = m[0];
    *min_h = m[1];
}

static void test_scaled_decode(void)
{
    joust_image big = {2000, 1500, malloc((size_t)2000 * 1500 * 3)};
    for (size_t i = 0; i < (size_t)2000 * 1500 * 3; i++)
        big.rgb[i] = (unsigned char)(i * 7 / 3);
    unsigned char *jpg, *png;
    size_t jlen, plen;
    CHECK_RC(joust_image_encode_jpeg(&big, 90, 0, &jpg, &jlen));
    CHECK_RC(joust_image_encode_png(&big, &png, &plen));
    static const struct {
        int min_w, min_h, w, h;
    } cases[] = {
        {500, 375, 500, 375},    /* 1/4 */
        {250, 100, 250, 188},    /* 1/8: the smallest scale */
        {501, 375, 750, 563},    /* 3/8: 1/4 would be one pixel short */
        {728, 532, 750, 563},    /* a 512-token budget of a 4:3 image */
        {1999, 10, 2000, 1500},  /* nothing smaller covers it */
        {4000, 3000, 2000, 1500}, /* more than there is: full size */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int m[2] = {cases[i].min_w, cases[i].min_h};
        joust_image_want want = {want_fixed, m};
        joust_image out;
        CHECK_RC(joust_image_decode_for(jpg, jlen, NULL, &want, &out, NULL, 0));
        if (out.w != cases[i].w || out.h != cases[i].h)
            fprintf(stderr, "want %dx%d: decoded %dx%d\n", m[0], m[1], out.w, out.h);
        CHECK(out.w == cases[i].w && out.h == cases[i].h && out.rgb);
        joust_image_free(&out);
    }
    /* without want, and for PNG, the full size */
    int m[2] = {100, 100};
    joust_image_want want = {want_fixed, m};
    joust_image out;
    CHECK_RC(joust_image_decode_for(jpg, jlen, NULL, NULL, &out, NULL, 0));
    CHECK(out.w == 2000 && out.h == 1500);
    joust_image_free(&out);
    CHECK_RC(joust_image_decode_for(png, plen, NULL, &want, &out, NULL, 0));
    CHECK(out.w == 2000 && out.h == 1500);
    joust_image_free(&out);
    /* the limits apply to the full size even when the decode would be small */
    joust_image_limits lim;
    joust_image_limits_defaults(&lim);
    lim.max_side = 1999;
    CHECK(joust_image_decode_for(jpg, jlen, &lim, &want, &out, NULL, 0) == JOUST_ETOOBIG);
    free(jpg);
    free(png);
    joust_image_free(&big);
}

/* The kept luma decoder (image.h joust_jpeg_luma_t): JPEG's own luma at
 * the scale asked for, every layout, and clean errors on hostile bytes
 * that leave the decoder usable for the next image. */
static double luma_of(const unsigned char *p)
{
    return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
}

static void expect_luma_error(joust_jpeg_luma_t *d, const char *what, const void *data,
                              size_t len, const joust_image_limits *lim, int want)
{
    joust_luma l;
    memset(&l, 0x5a, sizeof l);
    char err[256] = "";
    int rc = joust_jpeg_luma_decode(d, data, len, lim, NULL, &l, err, sizeof err);
    if (rc != want)
        fprintf(stderr, "luma %s: got %d (%s), want %d\n", what, rc, err, want);
    CHECK(rc == want);
    CHECK(err[0] != '\0');
    CHECK(l.y == NULL && l.w == 0 && l.h == 0 && l.src_w == 0 && l.src_h == 0);
}

static void want_min(void *ctx, int w, int h, int *min_w, int *min_h)
{
    (void)w, (void)h;
    *min_w = ((const int *)ctx)[0];
    *min_h = ((const int *)ctx)[1];
}

static void test_jpeg_luma(void)
{
    joust_image img = card(), big, rgb;
    CHECK_RC(joust_image_resize(&img, 640, 480, &big));
    unsigned char *jpg, *png;
    size_t jlen, plen;
    CHECK_RC(joust_image_encode_jpeg(&big, 90, 0, &jpg, &jlen));
    CHECK_RC(joust_image_encode_png(&img, &png, &plen));
    joust_jpeg_luma_t *d = joust_jpeg_luma_new();
    joust_luma l;
    /* full size: the RGB decode's luma within rounding */
    CHECK_RC(joust_jpeg_luma_decode(d, jpg, jlen, NULL, NULL, &l, NULL, 0));
    CHECK(l.w == 640 && l.h == 480 && l.src_w == 640 && l.src_h == 480);
    CHECK_RC(joust_image_decode(jpg, jlen, NULL, &rgb, NULL, 0));
    double diff = 0;
    for (size_t i = 0; i < (size_t)640 * 480; i++)
        diff += fabs(l.y[i] - luma_of(rgb.rgb + 3 * i));
    CHECK(diff / (640.0 * 480) < 1.5);
    joust_image_free(&rgb);
    /* scaled: the smallest n/8 that keeps 60 x 60 is 1/8 (80 x 60) */
    int min[2] = {60, 60};
    joust_image_want want = {want_min, min};
    CHECK_RC(joust_jpeg_luma_decode(d, jpg, jlen, NULL, &want, &l, NULL, 0));
    CHECK(l.w == 80 && l.h == 60 && l.src_w == 640 && l.src_h == 480);
    unsigned long sum8 = 0;
    for (size_t i = 0; i < (size_t)80 * 60; i++)
        sum8 += l.y[i];
    /* a greyscale JPEG: its one plane */
    unsigned char grey[64 * 48];
    for (int i = 0; i < 64 * 48; i++)
        grey[i] = (unsigned char)luma_of(img.rgb + 3 * i);
    tjhandle tj = tjInitCompress();
    unsigned char *gj = NULL;
    unsigned long gjlen = 0;
    CHECK(tjCompress2(tj, grey, 64, 0, 48, TJPF_GRAY, &gj, &gjlen, TJSAMP_GRAY, 100, 0) == 0);
    CHECK_RC(joust_jpeg_luma_decode(d, gj, gjlen, NULL, NULL, &l, NULL, 0));
    CHECK(l.w == 64 && l.h == 48);
    int worst = 0;
    for (int i = 0; i < 64 * 48; i++)
        worst = abs(l.y[i] - grey[i]) > worst ? abs(l.y[i] - grey[i]) : worst;
    CHECK(worst <= 3);
    /* CMYK has no luma plane: the caller decodes it to RGB instead */
    unsigned char cmyk[64 * 48 * 4];
    for (int i = 0; i < 64 * 48 * 4; i++)
        cmyk[i] = (unsigned char)(i * 7);
    unsigned char *cj = NULL;
    unsigned long cjlen = 0;
    CHECK(tjCompress2(tj, cmyk, 64, 0, 48, TJPF_CMYK, &cj, &cjlen, TJSAMP_444, 90, 0) == 0);
    expect_luma_error(d, "cmyk", cj, cjlen, NULL, JOUST_EUNSUPPORTED);
    /* hostile bytes: errors, never a crash */
    expect_luma_error(d, "png", png, plen, NULL, JOUST_EFORMAT);
    expect_luma_error(d, "empty", "", 0, NULL, JOUST_EFORMAT);
    expect_luma_error(d, "magic only", jpg, 3, NULL, JOUST_ECORRUPT);
    expect_luma_error(d, "truncated", jpg, jlen / 2, NULL, JOUST_ECORRUPT);
    expect_luma_error(d, "header only", jpg, 300, NULL, JOUST_ECORRUPT);
    unsigned char *bad = malloc(jlen);
    memcpy(bad, jpg, jlen);
    for (size_t i = jlen / 3; i < jlen; i++)
        bad[i] = (unsigned char)(i * 37 + 11);
    expect_luma_error(d, "garbage entropy data", bad, jlen, NULL, JOUST_ECORRUPT);
    memcpy(bad, jpg, jlen);
    for (size_t i = 2; i + 9 < jlen; i++)
        if (bad[i] == 0xff && bad[i + 1] == 0xc0) {
            bad[i + 5] = bad[i + 7] = 60000 >> 8, bad[i + 6] = bad[i + 8] = 60000 & 0xff;
            break;
        }
    expect_luma_error(d, "60000x60000", bad, jlen, NULL, JOUST_ETOOBIG);
    joust_image_limits lim;
    joust_image_limits_defaults(&lim);
    lim.max_pixels = 1000;
    expect_luma_error(d, "over max_pixels", jpg, jlen, &lim, JOUST_ETOOBIG);
    CHECK(joust_jpeg_luma_decode(NULL, jpg, jlen, NULL, NULL, &l, NULL, 0) == JOUST_EINVAL);
    CHECK(joust_jpeg_luma_decode(d, jpg, jlen, NULL, NULL, NULL, NULL, 0) == JOUST_EINVAL);
    /* 600 mutations (bit flips, truncations) through the one kept decoder */
    uint64_t state = 777;
    int clean = 1, decoded = 0;
    for (int iter = 0; iter < 600; iter++) {
        memcpy(bad, jpg, jlen);
        size_t n = jlen;
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        for (int k = 0; k < 1 + (int)((state >> 33) % 4); k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            bad[(state >> 20) % n] ^= (unsigned char)(1u << ((state >> 50) % 8));
        }
        if (iter % 3 == 0)
            n = 1 + (size_t)((state >> 7) % n);
        char err[256] = "";
        int rc = joust_jpeg_luma_decode(d, bad, n, NULL, &want, &l, err, sizeof err);
        if (rc == 0) {
            decoded++;
            clean &= l.y != NULL && l.w > 0 && l.h > 0 && l.src_w <= 16384 && l.src_h <= 16384;
        } else {
            clean &= (rc == JOUST_ECORRUPT || rc == JOUST_EFORMAT || rc == JOUST_ETOOBIG ||
                      rc == JOUST_EUNSUPPORTED) && err[0] != '\0' && l.y == NULL;
        }
    }
    CHECK(clean);
    CHECK(decoded < 400);
    /* after all those errors the kept decoder still decodes exactly */
    CHECK_RC(joust_jpeg_luma_decode(d, jpg, jlen, NULL, &want, &l, NULL, 0));
    unsigned long again = 0;
    for (size_t i = 0; i < (size_t)l.w * l.h; i++)
        again += l.y[i];
    CHECK(l.w == 80 && l.h == 60 && again == sum8);
    joust_jpeg_luma_destroy(&d);
    CHECK(d == NULL);
    joust_jpeg_luma_destroy(&d); /* accepts NULL */
    free(bad);
    tjFree(gj);
    tjFree(cj);
    tjDestroy(tj);
    free(jpg);
    free(png);
    joust_image_free(&big);
    joust_image_free(&img);
}

static void test_resize(void)
{
    joust_image c = {37, 23, malloc(37 * 23 * 3)};
    for (int i = 0; i < 37 * 23; i++)
        c.rgb[3 * i] = 123, c.rgb[3 * i + 1] = 45, c.rgb[3 * i + 2] = 200;
    static const int sizes[][2] = {{100, 50}, {10, 7}, {50, 10}, {5, 60}, {1, 1}, {37, 23}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        joust_image r = {0};
        CHECK_RC(joust_image_resize(&c, sizes[i][0], sizes[i][1], &r));
        CHECK(r.w == sizes[i][0] && r.h == sizes[i][1]);
        int same = 1;
        for (int k = 0; r.rgb && k < r.w * r.h; k++)
            same &= r.rgb[3 * k] == 123 && r.rgb[3 * k + 1] == 45 && r.rgb[3 * k + 2] == 200;
        CHECK(same);
        joust_image_free(&r);
    }
    joust_image_free(&c);
    /* area averaging: a 4x1 black/white pattern halves to mid grey */
    unsigned char px[12] = {0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255};
    joust_image s = {4, 1, px}, d = {0};
    CHECK_RC(joust_image_resize(&s, 2, 1, &d));
    CHECK(d.rgb && d.rgb[0] == 128 && d.rgb[3] == 128);
    joust_image_free(&d);
    /* bilinear upscale of a ramp stays monotone */
    unsigned char ramp[6] = {0, 0, 0, 200, 200, 200};
    joust_image rs = {2, 1, ramp};
    CHECK_RC(joust_image_resize(&rs, 8, 1, &d));
    int mono = 1;
    for (int k = 1; d.rgb && k < 8; k++)
        mono &= d.rgb[3 * k] >= d.rgb[3 * (k - 1)];
    CHECK(mono && d.rgb[0] == 0 && d.rgb[21] == 200);
    joust_image_free(&d);
    CHECK(joust_image_resize(&rs, 0, 5, &d) == JOUST_EINVAL);
}

/* Deterministic mutation fuzzing: random byte flips and truncations of
 * valid files must decode or fail cleanly (run under ASan to mean much). */
static void test_mutations(void)
{
    joust_image img = card();
    unsigned char *enc[3];
    size_t len[3];
    CHECK_RC(joust_image_encode_jpeg(&img, 85, 0, &enc[0], &len[0]));
    CHECK_RC(joust_image_encode_png(&img, &enc[1], &len[1]));
    uint8_t *webp = NULL;
    len[2] = WebPEncodeRGB(img.rgb, img.w, img.h, img.w * 3, 80, &webp);
    enc[2] = malloc(len[2]);
    memcpy(enc[2], webp, len[2]);
    WebPFree(webp);
    uint64_t state = 12345;
    int clean = 1, decoded = 0;
    for (int f = 0; f < 3; f++) {
        unsigned char *buf = malloc(len[f]);
        for (int iter = 0; iter < 300; iter++) {
            memcpy(buf, enc[f], len[f]);
            size_t n = len[f];
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            int flips = 1 + (int)((state >> 33) % 4);
            for (int k = 0; k < flips; k++) {
                state = state * 6364136223846793005ull + 1442695040888963407ull;
                buf[(state >> 20) % n] ^= (unsigned char)(1u << ((state >> 50) % 8));
            }
            if (iter % 3 == 0)
                n = 1 + (size_t)((state >> 7) % n);
            joust_image out = {0};
            char err[256] = "";
            int rc = joust_image_decode(buf, n, NULL, &out, err, sizeof err);
            if (rc == 0) {
                decoded++;
                clean &= out.rgb != NULL && out.w > 0 && out.h > 0 && out.w <= 16384;
            } else {
                clean &= (rc == JOUST_ECORRUPT || rc == JOUST_EFORMAT || rc == JOUST_ETOOBIG) &&
                         err[0] != '\0' && out.rgb == NULL;
            }
            joust_image_free(&out);
        }
        free(buf);
        free(enc[f]);
    }
    CHECK(clean);
    CHECK(decoded < 900); /* most mutations must be caught */
    joust_image_free(&img);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_jpeg_roundtrip();
    test_png_roundtrip();
    test_webp_roundtrip();
    test_alpha_compositing();
    test_cmyk_jpeg();
    test_other_layouts();
    test_hostile_inputs();
    test_load_errors();
    test_fit_budget();
    test_fit_budget_sweep();
    test_scaled_decode();
    test_jpeg_luma();
    test_resize();
    test_mutations();
    static const char *files[] = {"card.jpg", "card.png", "empty.jpg", "notes.png", "big.jpg",
                                  "cut.jpg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(tmp_path(files[i]));
    rmdir(tmpdir);
    return test_report();
}
