/* Image I/O: untrusted JPEG/PNG/WebP decoding with size limits checked on
 * the header, separable resampling, the Qwen2.5-VL pixel budget, encoding.
 * See image.h for the contract. */
#include "image.h"

#include <math.h>
#include <spng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <webp/decode.h>

#include "err.h"
#include "safe_open.h"
#include "xalloc.h"

/* Ancillary PNG chunks (text, ICC profiles, unknown chunks) are metadata we
 * never use; cap what libspng may buffer for them so a PNG made of huge
 * tEXt chunks cannot exhaust memory. Image data (IDAT) is streamed and not
 * subject to these limits. */
#define PNG_CHUNK_SIZE_LIMIT (16u << 20)
#define PNG_CHUNK_CACHE_LIMIT (32u << 20)

void joust_image_limits_defaults(joust_image_limits *lim)
{
    lim->max_side = 16384;
    lim->max_pixels = 64ll << 20;
    lim->max_bytes = (size_t)256 << 20;
}

void joust_image_free(joust_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

/* The one check every decoder runs on the header's dimensions, before it
 * allocates anything: this is what stops decompression bombs. */
static int check_dims(const char *fmt, long long w, long long h, const joust_image_limits *lim,
                      char *err, size_t errlen)
{
    if (w <= 0 || h <= 0)
        return joust_errf(err, errlen, JOUST_ECORRUPT,
                          "%s header declares an empty image (%lldx%lld)",
                          fmt, w, h);
    if (w > lim->max_side || h > lim->max_side || w * h > lim->max_pixels)
        return joust_errf(err, errlen, JOUST_ETOOBIG,
                          "%s is %lldx%lld, over the limit (%d per side, %lld pixels)", fmt, w, h,
                          lim->max_side, lim->max_pixels);
    return 0;
}

/* Composites packed RGBA onto JOUST_IMAGE_BACKGROUND, writing packed RGB to
 * the start of the same buffer (3 bytes out per 4 read never overtakes the
 * reader), then shrinks the buffer. Shared by PNG and WebP so both formats
 * treat transparency identically. */
static unsigned char *composite_rgba(unsigned char *buf, size_t npix)
{
    const unsigned bg = JOUST_IMAGE_BACKGROUND;
    for (size_t i = 0; i < npix; i++) {
        const unsigned char *s = buf + 4 * i;
        unsigned a = s[3];
        unsigned char r = s[0], g = s[1], b = s[2];
        unsigned char *d = buf + 3 * i;
        d[0] = (unsigned char)((r * a + bg * (255 - a) + 127) / 255);
        d[1] = (unsigned char)((g * a + bg * (255 - a) + 127) / 255);
        d[2] = (unsigned char)((b * a + bg * (255 - a) + 127) / 255);
    }
    return xrealloc(buf, npix * 3);
}

/* ---- JPEG (TurboJPEG) ---- */

static const unsigned char jpeg_magic[3] = {0xff, 0xd8, 0xff};

/* The smallest of TurboJPEG's reducing scales (n/8, n < 8) whose result is
 * still at least want's size in both sides; w x h itself when none is. */
static void jpeg_scaled_size(int w, int h, const joust_image_want *want, int *dw, int *dh)
{
    *dw = w;
    *dh = h;
    if (!want || !want->fn)
        return;
    int mw = w, mh = h, n = 0;
    want->fn(want->ctx, w, h, &mw, &mh);
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num >= sf[i].denom)
            continue;
        int sw = TJSCALED(w, sf[i]), sh = TJSCALED(h, sf[i]);
        if (sw >= mw && sh >= mh && (long long)sw * sh < (long long)*dw * *dh) {
            *dw = sw;
            *dh = sh;
        }
    }
}

/* Reads the header, checks its dimensions against the limits (before any
 * pixel buffer exists) and picks the decode size: the header's part of
 * every JPEG decode. */
static int jpeg_header(tjhandle tj, const unsigned char *p, size_t len,
                       const joust_image_limits *lim, const joust_image_want *want, int *w,
                       int *h, int *cs, int *dw, int *dh, char *err, size_t errlen)
{
    int subsamp = 0;
    if (tjDecompressHeader3(tj, p, (unsigned long)len, w, h, &subsamp, cs) != 0)
        return joust_errf(err, errlen, JOUST_ECORRUPT, "corrupt JPEG header: %s",
                          tjGetErrorStr2(tj));
    int rc = check_dims("JPEG", *w, *h, lim, err, errlen);
    if (rc == 0)
        jpeg_scaled_size(*w, *h, want, dw, dh);
    return rc;
}

/* Decodes into buf (dw x dh pixels of format pf, packed). Any non-zero
 * return is a rejection, warnings included: a warning means corrupt or
 * truncated data and a partly grey image (LIMITSCANS stops progressive scan
 * bombs). TurboJPEG's own error handler longjmps back into it, so nothing
 * in the data can end the process. */
static int jpeg_pixels(tjhandle tj, const unsigned char *p, size_t len, unsigned char *buf,
                       int dw, int dh, int pf, char *err, size_t errlen)
{
    if (tjDecompress2(tj, p, (unsigned long)len, buf, dw, 0, dh, pf, TJFLAG_LIMITSCANS) == 0)
        return 0;
    int warning = tjGetErrorCode(tj) == TJERR_WARNING;
    return joust_errf(err, errlen, JOUST_ECORRUPT, "%s JPEG: %s",
                      warning ? "corrupt or truncated" : "undecodable", tjGetErrorStr2(tj));
}

static int decode_jpeg(const unsigned char *p, size_t len, const joust_image_limits *lim,
                       const joust_image_want *want, joust_image *out, char *err, size_t errlen)
{
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return joust_errf(err, errlen, JOUST_EFORMAT,
                          "TurboJPEG init failed: %s", tjGetErrorStr2(NULL));
    int w = 0, h = 0, cs = 0, dw = 0, dh = 0, rc;
    unsigned char *buf = NULL;
    /* DCT scaling: an image far above what the caller needs is decoded at
     * 1/2, 1/4 or 1/8 (or n/8) of its size, skipping most of the IDCT and
     * colour conversion, instead of at full size and thrown away by the
     * resize. */
    if ((rc = jpeg_header(tj, p, len, lim, want, &w, &h, &cs, &dw, &dh, err, errlen)) != 0)
        goto done;
    /* TurboJPEG decodes CMYK/YCCK only to CMYK; converted below. */
    int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
    size_t npix = (size_t)dw * (size_t)dh;
    buf = xmalloc(npix * (size_t)tjPixelSize[pf]);
    if ((rc = jpeg_pixels(tj, p, len, buf, dw, dh, pf, err, errlen)) != 0)
        goto done;
    if (cmyk) {
        /* Without colour management; libjpeg-turbo's own convention (its
         * cmyk.h): stored values are inverted ink as Adobe writes them, so
         * R = C*K/255. Good enough to judge an image, not to print it. */
        for (size_t i = 0; i < npix; i++) {
            const unsigned char *s = buf + 4 * i;
            unsigned c = s[0], m = s[1], y = s[2], k = s[3];
            unsigned char *d = buf + 3 * i;
            d[0] = (unsigned char)((c * k + 127) / 255);
            d[1] = (unsigned char)((m * k + 127) / 255);
            d[2] = (unsigned char)((y * k + 127) / 255);
        }
        buf = xrealloc(buf, npix * 3);
    }
    out->w = dw;
    out->h = dh;
    out->rgb = buf;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    tjDestroy(tj);
    return rc;
}

/* ---- JPEG straight to luma, with a kept handle ---- */

struct joust_jpeg_luma {
    tjhandle tj;        /* created on first use, kept */
    unsigned char *buf; /* the last decode's luma */
    size_t cap;
};

joust_jpeg_luma_t *joust_jpeg_luma_new(void)
{
    return xcalloc(1, sizeof(joust_jpeg_luma_t));
}

void joust_jpeg_luma_destroy(joust_jpeg_luma_t **self_p)
{
    joust_jpeg_luma_t *d = self_p ? *self_p : NULL;
    if (!d)
        return;
    if (d->tj)
        tjDestroy(d->tj);
    free(d->buf);
    free(d);
    *self_p = NULL;
}

int joust_jpeg_luma_decode(joust_jpeg_luma_t *d, const void *data, size_t len,
                           const joust_image_limits *lim, const joust_image_want *want,
                           joust_luma *out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!d || !out || (!data && len))
        return joust_errf(err, errlen, JOUST_EINVAL, "no decoder, input data or output");
    memset(out, 0, sizeof *out);
    const unsigned char *p = data;
    if (len < sizeof jpeg_magic || memcmp(p, jpeg_magic, sizeof jpeg_magic) != 0)
        return joust_errf(err, errlen, JOUST_EFORMAT, "not a JPEG (%zu bytes)", len);
    joust_image_limits def;
    if (!lim) {
        joust_image_limits_defaults(&def);
        lim = &def;
    }
    if (!d->tj && !(d->tj = tjInitDecompress()))
        return joust_errf(err, errlen, JOUST_EFORMAT, "TurboJPEG init failed: %s",
                          tjGetErrorStr2(NULL));
    int w = 0, h = 0, cs = 0, dw = 0, dh = 0;
    int rc = jpeg_header(d->tj, p, len, lim, want, &w, &h, &cs, &dw, &dh, err, errlen);
    if (rc == 0 && (cs == TJCS_CMYK || cs == TJCS_YCCK)) /* libjpeg has no CMYK -> grey */
        rc = joust_errf(err, errlen, JOUST_EUNSUPPORTED, "CMYK JPEG has no luma plane");
    size_t need = (size_t)dw * (size_t)dh;
    if (rc == 0 && need > d->cap) {
        free(d->buf);
        d->buf = xmalloc(need);
        d->cap = need;
    }
    if (rc == 0)
        rc = jpeg_pixels(d->tj, p, len, d->buf, dw, dh, TJPF_GRAY, err, errlen);
    if (rc) {
        /* TurboJPEG 2.1 leaves a handle whose header read failed in the
         * middle of that header (no jpeg_abort), and the next image's
         * markers would be read on top of it: a failed image costs the
         * handle, never the next image. */
        tjDestroy(d->tj);
        d->tj = NULL;
        return rc;
    }
    out->y = d->buf;
    out->w = dw;
    out->h = dh;
    out->src_w = w;
    out->src_h = h;
    return 0;
}

/* ---- PNG (libspng) ---- */

static int decode_png(const unsigned char *p, size_t len, const joust_image_limits *lim,
                      const joust_image_want *want, joust_image *out, char *err, size_t errlen)
{
    (void)want; /* libspng has no scaled decoding */
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx)
        return joust_errf(err, errlen, JOUST_EFORMAT, "libspng: cannot create a decoder");
    unsigned char *buf = NULL;
    int rc, r;
    uint32_t side = lim->max_side > 0 ? (uint32_t)lim->max_side : 1;
    spng_set_image_limits(ctx, side, side);
    spng_set_chunk_limits(ctx, PNG_CHUNK_SIZE_LIMIT, PNG_CHUNK_CACHE_LIMIT);
    if ((r = spng_set_png_buffer(ctx, p, len)) != 0) {
        rc = joust_errf(err, errlen, JOUST_ECORRUPT, "corrupt PNG: %s", spng_strerror(r));
        goto done;
    }
    struct spng_ihdr ihdr;
    r = spng_get_ihdr(ctx, &ihdr);
    if (r == SPNG_EUSER_WIDTH || r == SPNG_EUSER_HEIGHT) {
        rc = joust_errf(err, errlen, JOUST_ETOOBIG, "PNG is %s than the limit of %d pixels",
                        r == SPNG_EUSER_WIDTH ? "wider" : "taller", lim->max_side);
        goto done;
    }
    if (r != 0) {
        rc = joust_errf(err, errlen, JOUST_ECORRUPT, "corrupt PNG header: %s", spng_strerror(r));
        goto done;
    }
    if ((rc = check_dims("PNG", ihdr.width, ihdr.height, lim, err, errlen)) != 0)
        goto done;
    size_t size = 0;
    if ((r = spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &size)) != 0) {
        rc = joust_errf(err, errlen, JOUST_ECORRUPT, "corrupt PNG: %s", spng_strerror(r));
        goto done;
    }
    buf = xmalloc(size);
    /* RGBA8 for every colour type and depth, tRNS applied, then composited:
     * one path for palette, grey, 16-bit and alpha images alike. */
    if ((r = spng_decode_image(ctx, buf, size, SPNG_FMT_RGBA8, SPNG_DECODE_TRNS)) != 0) {
        rc = joust_errf(err, errlen, JOUST_ECORRUPT,
                        "corrupt or truncated PNG: %s", spng_strerror(r));
        goto done;
    }
    out->w = (int)ihdr.width;
    out->h = (int)ihdr.height;
    out->rgb = composite_rgba(buf, (size_t)ihdr.width * ihdr.height);
    buf = NULL;
    rc = 0;
done:
    free(buf);
    spng_ctx_free(ctx);
    return rc;
}

/* ---- WebP (libwebp) ---- */

static int decode_webp(const unsigned char *p, size_t len, const joust_image_limits *lim,
                       const joust_image_want *want, joust_image *out, char *err, size_t errlen)
{
    (void)want; /* decoded at full size */
    WebPBitstreamFeatures f;
    VP8StatusCode s = WebPGetFeatures(p, len, &f);
    if (s == VP8_STATUS_NOT_ENOUGH_DATA)
        return joust_errf(err, errlen, JOUST_ECORRUPT, "truncated WebP header");
    if (s == VP8_STATUS_UNSUPPORTED_FEATURE)
        return joust_errf(err, errlen, JOUST_EFORMAT, "unsupported WebP feature");
    if (s != VP8_STATUS_OK)
        return joust_errf(err, errlen, JOUST_ECORRUPT,
                          "corrupt WebP header (libwebp status %d)", (int)s);
    if (f.has_animation)
        return joust_errf(err, errlen, JOUST_EFORMAT, "animated WebP is not supported");
    int rc = check_dims("WebP", f.width, f.height, lim, err, errlen);
    if (rc)
        return rc;
    size_t npix = (size_t)f.width * (size_t)f.height;
    int bpp = f.has_alpha ? 4 : 3;
    unsigned char *buf = xmalloc(npix * (size_t)bpp);
    size_t stride = (size_t)f.width * (size_t)bpp;
    const uint8_t *ok = f.has_alpha ? WebPDecodeRGBAInto(p, len, buf, npix * 4, (int)stride)
                                    : WebPDecodeRGBInto(p, len, buf, npix * 3, (int)stride);
    if (!ok) {
        free(buf);
        return joust_errf(err, errlen, JOUST_ECORRUPT, "corrupt or truncated WebP data");
    }
    out->w = f.width;
    out->h = f.height;
    out->rgb = f.has_alpha ? composite_rgba(buf, npix) : buf;
    return 0;
}

/* ---- format detection ---- */

typedef int (*decode_fn)(const unsigned char *, size_t, const joust_image_limits *,
                         const joust_image_want *, joust_image *, char *, size_t);

static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* A short input that is a prefix of a known magic is a truncated file of
 * that format (ECORRUPT), not an unknown format. */
static int prefix_of(const unsigned char *p, size_t len, const unsigned char *magic, size_t mlen)
{
    return memcmp(p, magic, len < mlen ? len : mlen) == 0;
}

int joust_image_decode(const void *data, size_t len, const joust_image_limits *lim,
                       joust_image *out, char *err, size_t errlen)
{
    return joust_image_decode_for(data, len, lim, NULL, out, err, errlen);
}

int joust_image_decode_for(const void *data, size_t len, const joust_image_limits *lim,
                           const joust_image_want *want, joust_image *out, char *err,
                           size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return joust_errf(err, errlen, JOUST_EINVAL, "no output image");
    memset(out, 0, sizeof *out);
    if (!data && len)
        return joust_errf(err, errlen, JOUST_EINVAL, "no input data");
    if (len == 0)
        return joust_errf(err, errlen, JOUST_ECORRUPT, "empty image data (0 bytes)");
    joust_image_limits def;
    if (!lim) {
        joust_image_limits_defaults(&def);
        lim = &def;
    }
    const unsigned char *p = data;
    const char *name = NULL;
    size_t need = 0;
    decode_fn fn = NULL;
    if (prefix_of(p, len, jpeg_magic, sizeof jpeg_magic)) {
        name = "JPEG", need = sizeof jpeg_magic, fn = decode_jpeg;
    } else if (prefix_of(p, len, png_magic, sizeof png_magic)) {
        name = "PNG", need = sizeof png_magic, fn = decode_png;
    } else if (prefix_of(p, len, (const unsigned char *)"RIFF", 4) &&
               (len <= 8 || prefix_of(p + 8, len - 8, (const unsigned char *)"WEBP", 4))) {
        name = "WebP", need = 12, fn = decode_webp;
    }
    if (!fn) {
        char hex[16] = "";
        for (size_t i = 0; i < len && i < 4; i++)
            snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02x ", p[i]);
        hex[strlen(hex) - 1] = '\0';
        return joust_errf(err, errlen, JOUST_EFORMAT,
                          "unknown image format (not JPEG, PNG or WebP; starts with %s)", hex);
    }
    if (len < need)
        return joust_errf(err, errlen, JOUST_ECORRUPT, "truncated %s (%zu bytes)", name, len);
    int rc = fn(p, len, lim, want, out, err, errlen);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

int joust_image_load(const char *path, const joust_image_limits *lim, joust_image *out, char *err,
                     size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!path || !out)
        return joust_errf(err, errlen, JOUST_EINVAL, "no path or output image");
    memset(out, 0, sizeof *out);
    joust_image_limits def;
    if (!lim) {
        joust_image_limits_defaults(&def);
        lim = &def;
    }
    unsigned char *buf = NULL;
    size_t n = 0;
    int rc = joust_read_regular(path, 0, lim->max_bytes, &buf, &n, err, errlen);
    if (rc)
        return rc;
    char reason[256];
    rc = joust_image_decode(buf, n, lim, out, reason, sizeof reason);
    if (rc)
        joust_errf(err, errlen, rc, "%s: %s", path, reason);
    free(buf);
    return rc;
}

/* ---- resampling ---- */

/* Per output sample along one axis: the source samples and their weights
 * (summing to 1), at most maxtaps of them. */
typedef struct {
    int *first, *count;
    float *weight; /* [dst * maxtaps] */
    int maxtaps;
} taps_t;

static void taps_make(int src, int dst, taps_t *t)
{
    double scale = (double)src / dst;
    t->maxtaps = dst < src ? (int)ceil(scale) + 1 : 2;
    t->first = xmalloc(sizeof(int) * (size_t)dst);
    t->count = xmalloc(sizeof(int) * (size_t)dst);
    t->weight = xcalloc((size_t)dst * (size_t)t->maxtaps, sizeof(float));
    for (int i = 0; i < dst; i++) {
        float *w = t->weight + (size_t)i * (size_t)t->maxtaps;
        if (dst < src) {
            /* Area: output i covers source interval [x0, x1). */
            double x0 = i * scale, x1 = (i + 1) * scale;
            int j0 = (int)floor(x0), j1 = (int)ceil(x1) - 1;
            if (j1 > src - 1)
                j1 = src - 1;
            double sum = 0;
            t->first[i] = j0;
            t->count[i] = j1 - j0 + 1;
            for (int j = j0; j <= j1; j++) {
                double lo = j > x0 ? j : x0, hi = j + 1 < x1 ? j + 1 : x1;
                w[j - j0] = (float)(hi > lo ? hi - lo : 0);
                sum += w[j - j0];
            }
            for (int k = 0; k < t->count[i]; k++)
                w[k] = (float)(w[k] / sum);
        } else {
            /* Bilinear with pixel centres aligned (identity when src == dst). */
            double x = (i + 0.5) * scale - 0.5;
            if (x < 0)
                x = 0;
            if (x > src - 1)
                x = src - 1;
            int j0 = (int)floor(x);
            double f = x - j0;
            t->first[i] = j0;
            t->count[i] = j0 + 1 < src && f > 0 ? 2 : 1;
            w[0] = (float)(t->count[i] == 2 ? 1 - f : 1);
            w[1] = (float)(t->count[i] == 2 ? f : 0);
        }
    }
}

static void taps_free(taps_t *t)
{
    free(t->first);
    free(t->count);
    free(t->weight);
}

static unsigned char to_u8(float v)
{
    return v <= 0 ? 0 : v >= 255 ? 255 : (unsigned char)(v + 0.5f);
}

/* Along rows: h rows of sw pixels -> h rows of dw pixels. */
static void resample_rows(const unsigned char *src, int sw, int h, unsigned char *dst, int dw,
                          const taps_t *t)
{
    for (int y = 0; y < h; y++) {
        const unsigned char *s = src + (size_t)y * sw * 3;
        unsigned char *d = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++) {
            const float *w = t->weight + (size_t)x * t->maxtaps;
            const unsigned char *p = s + (size_t)t->first[x] * 3;
            float r = 0, g = 0, b = 0;
            for (int k = 0; k < t->count[x]; k++, p += 3) {
                r += w[k] * p[0];
                g += w[k] * p[1];
                b += w[k] * p[2];
            }
            d[3 * x] = to_u8(r);
            d[3 * x + 1] = to_u8(g);
            d[3 * x + 2] = to_u8(b);
        }
    }
}

/* Along columns: sh rows -> dh rows of w pixels. Whole rows are accumulated
 * so memory is walked in order rather than down columns. */
static void resample_cols(const unsigned char *src, int w, int sh, unsigned char *dst, int dh,
                          const taps_t *t)
{
    (void)sh;
    size_t n = (size_t)w * 3;
    float *acc = xmalloc(n * sizeof(float));
    for (int y = 0; y < dh; y++) {
        const float *wt = t->weight + (size_t)y * t->maxtaps;
        memset(acc, 0, n * sizeof(float));
        for (int k = 0; k < t->count[y]; k++) {
            const unsigned char *s = src + (size_t)(t->first[y] + k) * n;
            for (size_t i = 0; i < n; i++)
                acc[i] += wt[k] * s[i];
        }
        unsigned char *d = dst + (size_t)y * n;
        for (size_t i = 0; i < n; i++)
            d[i] = to_u8(acc[i]);
    }
    free(acc);
}

int joust_image_resize(const joust_image *src, int w, int h, joust_image *out)
{
    if (!out)
        return JOUST_EINVAL;
    memset(out, 0, sizeof *out);
    if (!src || !src->rgb || src->w <= 0 || src->h <= 0 || w <= 0 || h <= 0)
        return JOUST_EINVAL;
    taps_t tx, ty;
    taps_make(src->w, w, &tx);
    taps_make(src->h, h, &ty);
    /* Two passes through an 8-bit intermediate (as Pillow does); run the pass
     * that gives the smaller intermediate first. */
    unsigned char *dst = xmalloc((size_t)w * h * 3);
    if ((long long)src->h * w <= (long long)h * src->w) {
        unsigned char *mid = xmalloc((size_t)w * src->h * 3);
        resample_rows(src->rgb, src->w, src->h, mid, w, &tx);
        resample_cols(mid, w, src->h, dst, h, &ty);
        free(mid);
    } else {
        unsigned char *mid = xmalloc((size_t)src->w * h * 3);
        resample_cols(src->rgb, src->w, src->h, mid, h, &ty);
        resample_rows(mid, src->w, h, dst, w, &tx);
        free(mid);
    }
    taps_free(&tx);
    taps_free(&ty);
    out->w = w;
    out->h = h;
    out->rgb = dst;
    return 0;
}

/* ---- the Qwen2.5-VL budget ---- */

void joust_image_fit_budget(int w, int h, long long min_pixels, long long max_pixels, int factor,
                            double max_aspect, int *ow, int *oh)
{
    if (w <= 0 || h <= 0 || factor <= 0) {
        *ow = *oh = 0;
        return;
    }
    double f = factor;
    /* nearbyint rounds half to even in the default mode, like Python's round. */
    double hb = fmax(f, nearbyint(h / f) * f), wb = fmax(f, nearbyint(w / f) * f);
    if (max_pixels > 0 && hb * wb > (double)max_pixels) {
        double beta = sqrt((double)h * w / (double)max_pixels);
        hb = fmax(f, floor(h / beta / f) * f);
        wb = fmax(f, floor(w / beta / f) * f);
    } else if (min_pixels > 0 && hb * wb < (double)min_pixels) {
        double beta = sqrt((double)min_pixels / ((double)h * w));
        hb = ceil(h * beta / f) * f;
        wb = ceil(w * beta / f) * f;
    }
    /* Beyond the model's aspect limit: squeeze the long side (smart_resize
     * would raise an error and the server would refuse the image). */
    if (max_aspect >= 1) {
        double cap_w = fmax(f, floor(hb * max_aspect / f) * f);
        double cap_h = fmax(f, floor(wb * max_aspect / f) * f);
        wb = fmin(wb, cap_w);
        hb = fmin(hb, cap_h);
    }
    /* A side held up at factor (16384 x 16) can leave the area over the
     * budget: the long side gives way. */
    if (max_pixels > 0 && hb * wb > (double)max_pixels) {
        if (wb >= hb)
            wb = fmax(f, floor((double)max_pixels / hb / f) * f);
        else
            hb = fmax(f, floor((double)max_pixels / wb / f) * f);
    }
    *ow = (int)wb;
    *oh = (int)hb;
}

/* ---- encoding ---- */

static int valid_image(const joust_image *img)
{
    return img && img->rgb && img->w > 0 && img->h > 0;
}

int joust_image_encode_jpeg(const joust_image *img, int quality, int subsamp444,
                            unsigned char **out, size_t *outlen)
{
    if (!valid_image(img) || !out || !outlen)
        return JOUST_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (quality < 1)
        quality = 1;
    if (quality > 100)
        quality = 100;
    tjhandle tj = tjInitCompress();
    if (!tj)
        return JOUST_EFORMAT;
    unsigned char *jbuf = NULL;
    unsigned long jlen = 0;
    int rc = JOUST_EFORMAT;
    if (tjCompress2(tj, img->rgb, img->w, 0, img->h, TJPF_RGB, &jbuf, &jlen,
                    subsamp444 ? TJSAMP_444 : TJSAMP_420, quality, 0) == 0) {
        /* Copy so the caller frees with free(), never tjFree(). */
        *out = xmalloc(jlen);
        memcpy(*out, jbuf, jlen);
        *outlen = jlen;
        rc = 0;
    }
    tjFree(jbuf);
    tjDestroy(tj);
    return rc;
}

int joust_image_encode_png(const joust_image *img, unsigned char **out, size_t *outlen)
{
    if (!valid_image(img) || !out || !outlen)
        return JOUST_EINVAL;
    *out = NULL;
    *outlen = 0;
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx)
        return JOUST_EFORMAT;
    int rc = JOUST_EFORMAT, r;
    struct spng_ihdr ihdr = {
        .width = (uint32_t)img->w,
        .height = (uint32_t)img->h,
        .bit_depth = 8,
        .color_type = SPNG_COLOR_TYPE_TRUECOLOR,
    };
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    if (spng_set_ihdr(ctx, &ihdr) == 0 &&
        spng_encode_image(ctx, img->rgb, (size_t)img->w * img->h * 3, SPNG_FMT_PNG,
                          SPNG_ENCODE_FINALIZE) == 0) {
        size_t len = 0;
        /* The buffer comes from libspng's default allocator (malloc) and is
         * now ours: the caller frees it with free(). */
        unsigned char *png = spng_get_png_buffer(ctx, &len, &r);
        if (png && r == 0) {
            *out = png;
            *outlen = len;
            rc = 0;
        } else {
            free(png);
        }
    }
    spng_ctx_free(ctx);
    return rc;
}

/* Writes under a temporary name then renames, so a reader (or a crash)
 * never leaves half an image at path. */
static int write_file_atomic(const char *path, const unsigned char *data, size_t len)
{
    size_t n = strlen(path) + 32;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int rc = JOUST_EIO;
    FILE *f = fopen(tmp, "wb");
    if (f) {
        size_t w = fwrite(data, 1, len, f);
        int closed = fclose(f);
        if (w == len && closed == 0 && rename(tmp, path) == 0)
            rc = 0;
        else
            unlink(tmp);
    }
    free(tmp);
    return rc;
}

int joust_image_save_jpeg(const char *path, const joust_image *img, int quality)
{
    if (!path)
        return JOUST_EINVAL;
    unsigned char *data;
    size_t len;
    int rc = joust_image_encode_jpeg(img, quality, 1, &data, &len);
    if (rc)
        return rc;
    rc = write_file_atomic(path, data, len);
    free(data);
    return rc;
}

int joust_image_save_png(const char *path, const joust_image *img)
{
    if (!path)
        return JOUST_EINVAL;
    unsigned char *data;
    size_t len;
    int rc = joust_image_encode_png(img, &data, &len);
    if (rc)
        return rc;
    rc = write_file_atomic(path, data, len);
    free(data);
    return rc;
}
