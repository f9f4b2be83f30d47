/* Writes the seed corpora for the fuzz targets into OUT/{wire,manifest,image}:
 * one valid message per wire command (header + body), typical and odd
 * manifest lines, and small images in every format and variant the decoder
 * handles (baseline/progressive JPEG, 4:2:0/4:4:4, grayscale JPEG; PNG
 * gray, gray+alpha, RGB 8/16-bit, palette with tRNS, RGBA, interlaced; WebP
 * lossy, lossless, with alpha). Seeds start the fuzzers deep inside the
 * formats instead of at "find the magic bytes".
 * usage: fuzz_make_seeds OUT */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <webp/encode.h>
#include <zlib.h>

#include "image.h"
#include "wire.h"

static const char *out_dir;

static void put(const char *sub, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* ---- wire ---- */

static void wire(const char *name, int cmd, const ProtobufCMessage *body)
{
    size_t n = protobuf_c_message_get_packed_size(body);
    unsigned char *buf = malloc(5 + n);
    memcpy(buf, "JST", 3);
    buf[3] = JOUST_WIRE_VERSION;
    buf[4] = (unsigned char)cmd;
    protobuf_c_message_pack(body, buf + 5);
    put("wire", name, buf, 5 + n);
    free(buf);
}

static void wire_seeds(void)
{
    Joust__Ready r = JOUST__READY__INIT;
    r.worker_name = "w-host-1";
    r.slots = 32;
    r.judge = "quality";
    r.build = "joust 0.1.0";
    wire("ready", JOUST_CMD_READY, &r.base);

    Joust__ImageRef a = JOUST__IMAGE_REF__INIT, b = JOUST__IMAGE_REF__INIT;
    a.image_id = 1;
    a.uri = "/data/a.png";
    a.has_latent = 1;
    a.latent = 0.5;
    b.image_id = 2;
    b.uri = "https://example.org/b.jpg";
    Joust__MatchJob m1 = JOUST__MATCH_JOB__INIT, m2 = JOUST__MATCH_JOB__INIT;
    m1.match_id = 7;
    m1.attempt = 1;
    m1.prompt_id = 3;
    m1.prompt = "a red bicycle";
    m1.first = &a;
    m1.second = &b;
    m2 = m1;
    m2.match_id = 8;
    m2.first = &b;
    m2.second = &a;
    Joust__MatchJob *mm[] = {&m1, &m2};
    Joust__Job j = JOUST__JOB__INIT;
    j.run_id = 1;
    j.lease_ms = 60000;
    j.n_matches = 2;
    j.matches = mm;
    wire("job", JOUST_CMD_JOB, &j.base);

    Joust__MatchResult x1 = JOUST__MATCH_RESULT__INIT, x2 = JOUST__MATCH_RESULT__INIT;
    x1.match_id = 7;
    x1.attempt = 1;
    x1.status = JOUST__OUTCOME_STATUS__OK;
    x1.has_p_first = 1;
    x1.p_first = 0.73;
    x1.has_answer = 1;
    x1.answer = 1;
    x1.reason = "sharper";
    x1.has_latency_us = 1;
    x1.latency_us = 1234;
    x2.match_id = 8;
    x2.attempt = 2;
    x2.status = JOUST__OUTCOME_STATUS__IMAGE_ERROR;
    x2.error = "image 2: corrupt";
    x2.has_failed_image_id = 1;
    x2.failed_image_id = 2;
    Joust__MatchResult *xx[] = {&x1, &x2};
    Joust__Result res = JOUST__RESULT__INIT;
    res.run_id = 1;
    res.n_results = 2;
    res.results = xx;
    res.judge = "quality";
    wire("result", JOUST_CMD_RESULT, &res.base);

    uint64_t ids[] = {7, 8, 0};
    Joust__Ack ack = JOUST__ACK__INIT;
    ack.run_id = 1;
    ack.n_match_ids = 3;
    ack.match_ids = ids;
    wire("ack", JOUST_CMD_ACK, &ack.base);

    Joust__Heartbeat hb = JOUST__HEARTBEAT__INIT;
    hb.has_inflight = 1;
    hb.inflight = 5;
    wire("heartbeat", JOUST_CMD_HEARTBEAT, &hb.base);

    Joust__Disconnect d = JOUST__DISCONNECT__INIT;
    d.reason = "run complete";
    d.has_run_complete = 1;
    d.run_complete = 1;
    wire("disconnect", JOUST_CMD_DISCONNECT, &d.base);
}

/* ---- manifest ---- */

static void manifest_seeds(void)
{
    static const char *lines[] = {
        "{\"image\":\"img/a.png\",\"prompt\":\"a cat\",\"model\":\"sdxl\",\"id\":\"a1\"}",
        "{\"image\":\"/abs/b.jpg\",\"prompt_id\":42,\"latent\":-1.25,\"seed\":7,\"tags\":[\"x\",{\"y\":null}]}",
        "{\"image\":\"https://h/x.webp\",\"prompt\":\"caf\\u00e9 \\ud83d\\ude00\",\"id\":12345678901234}",
        "{\"image\":\"\",\"prompt\":\"p\"}",
        "{\"prompt\":\"no image\"}",
        "{\"image\":\"x\",\"prompt\":\"p\"} trailing",
        "[1,2,3]",
        "{\"image\":\"x\",\"prompt\":\"\\u0000nul\",\"latent\":1e999}",
        "{\"image\":\"/abs/b.jpg\",\"prompt_id\":900719920948", /* ends inside a number */
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        char name[32];
        snprintf(name, sizeof name, "line%zu", i);
        put("manifest", name, lines[i], strlen(lines[i]));
    }
}

/* ---- images ---- */

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

typedef struct {
    unsigned char *p;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void chunk(buf_t *b, const char *type, const unsigned char *data, uint32_t n)
{
    unsigned char h[8];
    be32(h, n);
    memcpy(h + 4, type, 4);
    buf_add(b, h, 8);
    if (n)
        buf_add(b, data, n);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    crc = crc32(crc, data, n);
    be32(h, (uint32_t)crc);
    buf_add(b, h, 4);
}

/* A w x h PNG of colour type ct and bit depth bd, filter 0, optionally
 * Adam7-interlaced, with a gradient for pixels. */
static void png(const char *name, int w, int h, int ct, int bd, int interlace)
{
    int channels = ct == 0 ? 1 : ct == 2 ? 3 : ct == 3 ? 1 : ct == 4 ? 2 : 4;
    size_t bpp_bits = (size_t)channels * (size_t)bd;
    buf_t raw = {0}, out = {0};
    static const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
    static const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    for (int pass = 0; pass < (interlace ? 7 : 1); pass++) {
        int px = interlace ? x0[pass] : 0, py = interlace ? y0[pass] : 0;
        int sx = interlace ? dx[pass] : 1, sy = interlace ? dy[pass] : 1;
        int pw = (w - px + sx - 1) / sx, ph = (h - py + sy - 1) / sy;
        if (pw <= 0 || ph <= 0)
            continue;
        size_t row = (bpp_bits * (size_t)pw + 7) / 8;
        unsigned char *line = calloc(1, row + 1);
        for (int y = 0; y < ph; y++) {
            line[0] = 0;
            for (size_t k = 0; k < row; k++)
                line[1 + k] = (unsigned char)(k * 13 + (size_t)y * 29 + (size_t)pass * 7);
            buf_add(&raw, line, row + 1);
        }
        free(line);
    }
    uLongf zlen = compressBound(raw.len);
    unsigned char *z = malloc(zlen);
    compress(z, &zlen, raw.p, raw.len);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    buf_add(&out, sig, 8);
    unsigned char ihdr[13];
    be32(ihdr, (uint32_t)w);
    be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = (unsigned char)bd;
    ihdr[9] = (unsigned char)ct;
    ihdr[10] = ihdr[11] = 0;
    ihdr[12] = (unsigned char)interlace;
    chunk(&out, "IHDR", ihdr, 13);
    if (ct == 3) {
        unsigned char plte[3 * 256], trns[256];
        int n = 1 << bd;
        for (int i = 0; i < n; i++) {
            plte[3 * i] = (unsigned char)(i * 37);
            plte[3 * i + 1] = (unsigned char)(i * 91);
            plte[3 * i + 2] = (unsigned char)(255 - i);
            trns[i] = (unsigned char)(i * 53);
        }
        chunk(&out, "PLTE", plte, (uint32_t)(3 * n));
        chunk(&out, "tRNS", trns, (uint32_t)(n > 8 ? 8 : n));
    }
    chunk(&out, "IDAT", z, (uint32_t)zlen);
    chunk(&out, "IEND", NULL, 0);
    put("image", name, out.p, out.len);
    free(z);
    free(raw.p);
    free(out.p);
}

static void image_seeds(void)
{
    enum { W = 24, H = 17 };
    unsigned char rgb[W * H * 3], rgba[W * H * 4], gray[W * H];
    for (int i = 0; i < W * H; i++) {
        rgb[3 * i] = (unsigned char)(i * 3);
        rgb[3 * i + 1] = (unsigned char)(i * 7);
        rgb[3 * i + 2] = (unsigned char)(255 - i);
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = (unsigned char)(i * 11);
        gray[i] = (unsigned char)(i * 5);
    }
    joust_image img = {W, H, rgb};
    unsigned char *data;
    size_t len;
    if (joust_image_encode_jpeg(&img, 90, 1, &data, &len) == 0) {
        put("image", "jpeg444.jpg", data, len);
        free(data);
    }
    if (joust_image_encode_jpeg(&img, 40, 0, &data, &len) == 0) {
        put("image", "jpeg420.jpg", data, len);
        free(data);
    }
    if (joust_image_encode_png(&img, &data, &len) == 0) {
        put("image", "rgb8.png", data, len);
        free(data);
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jb = NULL;
    unsigned long jl = 0;
    if (tj && tjCompress2(tj, rgb, W, 0, H, TJPF_RGB, &jb, &jl, TJSAMP_422, 75, TJFLAG_PROGRESSIVE) == 0)
        put("image", "progressive.jpg", jb, jl);
    tjFree(jb);
    jb = NULL;
    if (tj && tjCompress2(tj, gray, W, 0, H, TJPF_GRAY, &jb, &jl, TJSAMP_GRAY, 75, 0) == 0)
        put("image", "gray.jpg", jb, jl);
    tjFree(jb);
    if (tj)
        tjDestroy(tj);
    uint8_t *wb = NULL;
    size_t wl = WebPEncodeRGB(rgb, W, H, W * 3, 80, &wb);
    if (wl)
        put("image", "lossy.webp", wb, wl);
    WebPFree(wb);
    wl = WebPEncodeLosslessRGB(rgb, W, H, W * 3, &wb);
    if (wl)
        put("image", "lossless.webp", wb, wl);
    WebPFree(wb);
    wl = WebPEncodeRGBA(rgba, W, H, W * 4, 80, &wb);
    if (wl)
        put("image", "alpha.webp", wb, wl);
    WebPFree(wb);
    png("gray8.png", W, H, 0, 8, 0);
    png("gray1.png", W, H, 0, 1, 0);
    png("rgb16.png", W, H, 2, 16, 0);
    png("palette4.png", W, H, 3, 4, 0);
    png("graya8.png", W, H, 4, 8, 0);
    png("rgba8.png", W, H, 6, 8, 0);
    png("rgba16.png", W, H, 6, 16, 0);
    png("interlaced.png", W, H, 2, 8, 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_make_seeds OUT\n");
        return 2;
    }
    out_dir = argv[1];
    const char *subs[] = {"", "/wire", "/manifest", "/image"};
    for (size_t i = 0; i < 4; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s%s", out_dir, subs[i]);
        mkdir(p, 0755);
    }
    wire_seeds();
    manifest_seeds();
    image_seeds();
    return 0;
}
