/* Image signatures: scaled decode, 32x32 luma grid, DCT perceptual hash.
 * See signature.h for the contract. */
#include "signature.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

/* joust_image_decode_for's want: records the full size and asks for the
 * grid's side on both axes (or the whole image when it is smaller). */
static void want_grid(void *ctx, int w, int h, int *min_w, int *min_h)
{
    joust_signature *s = ctx;
    s->w = (uint32_t)w;
    s->h = (uint32_t)h;
    *min_w = w < G ? w : G;
    *min_h = h < G ? h : G;
}

int joust_signature_of_bytes(const void *data, size_t len, const joust_image_limits *lim,
                             joust_signature *out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!data || !out)
        return joust_errf(err, errlen, JOUST_EINVAL, "no input data or output");
    memset(out, 0, sizeof *out);
    joust_signature full = {0, 0, 0};
    joust_image_want want = {want_grid, &full};
    joust_image img;
    int rc = joust_image_decode_for(data, len, lim, &want, &img, err, errlen);
    if (rc != 0)
        return rc;
    rc = joust_signature_of_image(&img, out);
    if (rc == 0 && full.w) { /* scaled JPEG: the size from its header */
        out->w = full.w;
        out->h = full.h;
    }
    joust_image_free(&img);
    return rc;
}
