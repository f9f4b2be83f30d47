/* Image signatures: scaled decode, 32x32 luma grid, DCT perceptual hash.
 * See signature.h for the contract. */
#include "signature.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "err.h"
#include "xalloc.h"

#define G JOUST_SIGNATURE_GRID
#define K 8 /* the hash keeps the K x K lowest DCT frequencies */

/* Output cell i of an axis of src pixels covers [i*src, (i+1)*src) in units
 * of 1/G pixel; source pixel k covers [k*G, (k+1)*G). The overlaps are exact
 * integers and sum to src for every cell. */
static int overlap(int src, int i, int k)
{
    long a = (long)i * src, b = (long)(i + 1) * src;
    long lo = (long)k * G > a ? (long)k * G : a;
    long hi = (long)(k + 1) * G < b ? (long)(k + 1) * G : b;
    return hi > lo ? (int)(hi - lo) : 0;
}

/* Area-averages a luma plane (channels 1) or an RGB plane (channels 3,
 * converted with the JPEG luma weights) to the G x G grid. */
static void to_grid(const unsigned char *px, int w, int h, size_t stride, int channels,
                    double grid[G][G])
{
    double *rows = xcalloc((size_t)h * G, sizeof *rows); /* h x G, horizontally averaged */
    double *luma = xmalloc((size_t)w * sizeof *luma);
    for (int y = 0; y < h; y++) {
        const unsigned char *r = px + (size_t)y * stride;
        if (channels == 1)
            for (int x = 0; x < w; x++)
                luma[x] = r[x];
        else
            for (int x = 0; x < w; x++)
                luma[x] = 0.299 * r[3 * x] + 0.587 * r[3 * x + 1] + 0.114 * r[3 * x + 2];
        for (int i = 0; i < G; i++) {
            int k0 = (int)((long)i * w / G), k1 = (int)(((long)(i + 1) * w + G - 1) / G);
            double s = 0;
            for (int k = k0; k < k1 && k < w; k++)
                s += overlap(w, i, k) * luma[k];
            rows[(size_t)y * G + i] = s;
        }
    }
    for (int j = 0; j < G; j++) {
        int k0 = (int)((long)j * h / G), k1 = (int)(((long)(j + 1) * h + G - 1) / G);
        for (int i = 0; i < G; i++)
            grid[j][i] = 0;
        for (int k = k0; k < k1 && k < h; k++) {
            double wgt = overlap(h, j, k);
            for (int i = 0; i < G; i++)
                grid[j][i] += wgt * rows[(size_t)k * G + i];
        }
        for (int i = 0; i < G; i++)
            grid[j][i] /= (double)w * h;
    }
    free(luma);
    free(rows);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* DCT-II basis, unnormalised, filled once (pthread_once: reentrant). */
static double t[K][G];
static pthread_once_t t_once = PTHREAD_ONCE_INIT;

static void t_init(void)
{
    for (int u = 0; u < K; u++)
        for (int x = 0; x < G; x++)
            t[u][x] = cos(M_PI * (2 * x + 1) * u / (2.0 * G));
}

static uint64_t phash_of_grid(double grid[G][G])
{
    pthread_once(&t_once, t_init);
    double r[G][K];
    for (int y = 0; y < G; y++)
        for (int v = 0; v < K; v++) {
            double s = 0;
            for (int x = 0; x < G; x++)
                s += grid[y][x] * t[v][x];
            r[y][v] = s;
        }
    double f[K * K], ac[K * K - 1];
    for (int u = 0; u < K; u++)
        for (int v = 0; v < K; v++) {
            double s = 0;
            for (int y = 0; y < G; y++)
                s += t[u][y] * r[y][v];
            f[u * K + v] = s;
        }
    memcpy(ac, f + 1, sizeof ac);
    qsort(ac, K * K - 1, sizeof *ac, cmp_double);
    double median = ac[(K * K - 1) / 2];
    uint64_t h = 0;
    for (int i = 0; i < K * K; i++)
        if (f[i] >= median)
            h |= 1ull << (63 - i);
    return h;
}

int joust_signature_phash_gray(const unsigned char *y, int w, int h, size_t stride,
                               uint64_t *phash)
{
    if (!y || !phash || w <= 0 || h <= 0 || stride < (size_t)w)
        return JOUST_EINVAL;
    double grid[G][G];
    to_grid(y, w, h, stride, 1, grid);
    *phash = phash_of_grid(grid);
    return 0;
}

int joust_signature_of_image(const joust_image *img, joust_signature *out)
{
    if (!img || !out || !img->rgb || img->w <= 0 || img->h <= 0)
        return JOUST_EINVAL;
    double grid[G][G];
    to_grid(img->rgb, img->w, img->h, (size_t)img->w * 3, 3, grid);
    out->phash = phash_of_grid(grid);
    out->w = (uint32_t)img->w;
    out->h = (uint32_t)img->h;
    return 0;
}

/* The smallest TurboJPEG scaling factor that keeps the short side >= G
 * (1/1 when the image is smaller than that already). */
static tjscalingfactor pick_scale(int w, int h)
{
    int n = 0, s = w < h ? w : h;
    tjscalingfactor best = {1, 1};
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n; i++)
        if (TJSCALED(s, sf[i]) >= G && (long)sf[i].num * best.denom < (long)best.num * sf[i].denom)
            best = sf[i];
    return best;
}

/* 1 when the JPEG was hashed here (rc in *rc), 0 when the caller should
 * take the full decode path instead (header unreadable: the full decoder
 * words the error; CMYK, which TurboJPEG cannot decode to luma). */
static int scaled_jpeg(const unsigned char *p, size_t len, const joust_image_limits *lim,
                       joust_signature *out, char *err, size_t errlen, int *rc)
{
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return 0;
    int w = 0, h = 0, subsamp = 0, cs = 0, handled = 0;
    unsigned char *buf = NULL;
    if (tjDecompressHeader3(tj, p, (unsigned long)len, &w, &h, &subsamp, &cs) != 0 || w <= 0 ||
        h <= 0 || cs == TJCS_CMYK || cs == TJCS_YCCK)
        goto done;
    handled = 1;
    if (w > lim->max_side || h > lim->max_side || (long long)w * h > lim->max_pixels) {
        *rc = joust_errf(err, errlen, JOUST_ETOOBIG,
                         "JPEG is %dx%d, over the limit (%d per side, %lld pixels)", w, h,
                         lim->max_side, lim->max_pixels);
        goto done;
    }
    tjscalingfactor sf = pick_scale(w, h);
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    buf = xmalloc((size_t)sw * (size_t)sh);
    /* As in image.c: any non-zero return, warnings included, is corruption. */
    if (tjDecompress2(tj, p, (unsigned long)len, buf, sw, sw, sh, TJPF_GRAY, TJFLAG_LIMITSCANS) !=
        0) {
        int warning = tjGetErrorCode(tj) == TJERR_WARNING;
        *rc = joust_errf(err, errlen, JOUST_ECORRUPT, "%s JPEG: %s",
                         warning ? "corrupt or truncated" : "undecodable", tjGetErrorStr2(tj));
        goto done;
    }
    *rc = joust_signature_phash_gray(buf, sw, sh, (size_t)sw, &out->phash);
    out->w = (uint32_t)w;
    out->h = (uint32_t)h;
done:
    free(buf);
    tjDestroy(tj);
    return handled;
}

int joust_signature_of_bytes(const void *data, size_t len, const joust_image_limits *lim,
                             joust_signature *out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!data || !out)
        return joust_errf(err, errlen, JOUST_EINVAL, "no input data or output");
    memset(out, 0, sizeof *out);
    joust_image_limits def;
    if (!lim) {
        joust_image_limits_defaults(&def);
        lim = &def;
    }
    const unsigned char *p = data;
    int rc = 0;
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff &&
        scaled_jpeg(p, len, lim, out, err, errlen, &rc)) {
        if (rc)
            memset(out, 0, sizeof *out);
        return rc;
    }
    joust_image img;
    if ((rc = joust_image_decode(data, len, lim, &img, err, errlen)) != 0)
        return rc;
    rc = joust_signature_of_image(&img, out);
    joust_image_free(&img);
    return rc;
}
