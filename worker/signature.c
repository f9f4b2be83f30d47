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

/* The source pixels of each cell along one axis and their overlaps,
 * computed once per image rather than once per row. */
typedef struct {
    int first[G], count[G];
    size_t off[G]; /* cell i's overlaps start at weight[off[i]] */
    int *weight;
} axis_t;

static void axis_make(int src, axis_t *a)
{
    size_t total = 0;
    for (int i = 0; i < G; i++) {
        int k0 = (int)((long)i * src / G), k1 = (int)(((long)(i + 1) * src + G - 1) / G);
        a->first[i] = k0;
        a->count[i] = (k1 < src ? k1 : src) - k0;
        a->off[i] = total;
        total += (size_t)a->count[i];
    }
    a->weight = xmalloc(total * sizeof *a->weight);
    for (int i = 0; i < G; i++)
        for (int k = 0; k < a->count[i]; k++)
            a->weight[a->off[i] + (size_t)k] = overlap(src, i, a->first[i] + k);
}

/* Area-averages a luma plane (channels 1) or an RGB plane (channels 3,
 * converted with the JPEG luma weights) to the G x G grid. Every sum runs
 * over exact integer overlaps in source order. */
static void to_grid(const unsigned char *px, int w, int h, size_t stride, int channels,
                    double grid[G][G])
{
    axis_t ax, ay;
    axis_make(w, &ax);
    axis_make(h, &ay);
    double *rows = xcalloc((size_t)h * G, sizeof *rows); /* h x G, horizontally averaged */
    double *luma = channels == 1 ? NULL : xmalloc((size_t)w * sizeof *luma);
    for (int y = 0; y < h; y++) {
        const unsigned char *r = px + (size_t)y * stride;
        double *out = rows + (size_t)y * G;
        if (luma)
            for (int x = 0; x < w; x++)
                luma[x] = 0.299 * r[3 * x] + 0.587 * r[3 * x + 1] + 0.114 * r[3 * x + 2];
        for (int i = 0; i < G; i++) {
            const int *wt = ax.weight + ax.off[i];
            int k0 = ax.first[i];
            if (luma) {
                double s = 0;
                for (int k = 0; k < ax.count[i]; k++)
                    s += wt[k] * luma[k0 + k];
                out[i] = (double)s;
            } else { /* integers: the sum (<= 255 * w) is exact either way */
                long long s = 0;
                for (int k = 0; k < ax.count[i]; k++)
                    s += wt[k] * r[k0 + k];
                out[i] = (double)s;
            }
        }
    }
    for (int j = 0; j < G; j++) {
        for (int i = 0; i < G; i++)
            grid[j][i] = 0;
        for (int k = 0; k < ay.count[j]; k++) {
            double wgt = ay.weight[ay.off[j] + (size_t)k];
            const double *row = rows + (size_t)(ay.first[j] + k) * G;
            for (int i = 0; i < G; i++)
                grid[j][i] += wgt * row[i];
        }
        for (int i = 0; i < G; i++)
            grid[j][i] /= (double)w * h;
    }
    free(luma);
    free(rows);
    free(ax.weight);
    free(ay.weight);
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

struct joust_signature_ctx {
    joust_jpeg_luma_t *jpeg;
};

joust_signature_ctx_t *joust_signature_ctx_new(void)
{
    joust_signature_ctx_t *c = xmalloc(sizeof *c);
    c->jpeg = joust_jpeg_luma_new();
    return c;
}

void joust_signature_ctx_destroy(joust_signature_ctx_t **self_p)
{
    joust_signature_ctx_t *c = self_p ? *self_p : NULL;
    if (!c)
        return;
    joust_jpeg_luma_destroy(&c->jpeg);
    free(c);
    *self_p = NULL;
}

/* The decode's want: the grid's side on both axes (or the whole image when
 * it is smaller); ctx, when given, gets the full size (int[2]). */
static void want_grid(void *ctx, int w, int h, int *min_w, int *min_h)
{
    if (ctx) {
        ((int *)ctx)[0] = w;
        ((int *)ctx)[1] = h;
    }
    *min_w = w < G ? w : G;
    *min_h = h < G ? h : G;
}

static const joust_image_want grid_want = {want_grid, NULL};

/* A JPEG straight to luma at the smallest scale that covers the grid. */
static int of_jpeg(joust_jpeg_luma_t *dec, const void *data, size_t len,
                   const joust_image_limits *lim, joust_signature *out, char *err, size_t errlen)
{
    joust_luma l;
    int rc = joust_jpeg_luma_decode(dec, data, len, lim, &grid_want, &l, err, errlen);
    if (rc == 0)
        rc = joust_signature_phash_gray(l.y, l.w, l.h, (size_t)l.w, &out->phash);
    out->w = (uint32_t)l.src_w;
    out->h = (uint32_t)l.src_h;
    return rc;
}

/* Any format through the image stage's decoder to RGB (a JPEG scaled). */
static int of_rgb(const void *data, size_t len, const joust_image_limits *lim,
                  joust_signature *out, char *err, size_t errlen)
{
    int full[2] = {0, 0};
    joust_image_want want = {want_grid, full};
    joust_image img;
    int rc = joust_image_decode_for(data, len, lim, &want, &img, err, errlen);
    if (rc != 0)
        return rc;
    rc = joust_signature_of_image(&img, out);
    if (rc == 0 && full[0]) { /* scaled JPEG: the size from its header */
        out->w = (uint32_t)full[0];
        out->h = (uint32_t)full[1];
    }
    joust_image_free(&img);
    return rc;
}

int joust_signature_of_bytes(joust_signature_ctx_t *ctx, const void *data, size_t len,
                             const joust_image_limits *lim, joust_signature *out, char *err,
                             size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!data || !out)
        return joust_errf(err, errlen, JOUST_EINVAL, "no input data or output");
    memset(out, 0, sizeof *out);
    static const unsigned char soi[3] = {0xff, 0xd8, 0xff};
    int rc = JOUST_EUNSUPPORTED;
    if (len >= sizeof soi && memcmp(data, soi, sizeof soi) == 0) {
        joust_signature_ctx_t *own = ctx ? NULL : joust_signature_ctx_new();
        rc = of_jpeg((ctx ? ctx : own)->jpeg, data, len, lim, out, err, errlen);
        joust_signature_ctx_destroy(&own);
    }
    if (rc == JOUST_EUNSUPPORTED) /* PNG, WebP, a CMYK JPEG */
        rc = of_rgb(data, len, lim, out, err, errlen);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}
