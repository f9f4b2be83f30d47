/* No-reference quality measure. See quality.h.
 *
 * Everything except blockiness works on the luma of the image reduced to at
 * most JOUST_QUALITY_SIDE pixels on the long side. Sharpness is measured on
 * a 3x3-median-filtered luma so that noise does not pass for detail, noise
 * on the residual in the flattest part of the image so that edges and
 * texture do not pass for noise. */
#include "quality.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

typedef struct {
    int w, h;
    float *p;
} plane_t;

static plane_t plane_new(int w, int h)
{
    return (plane_t){w, h, xmalloc(sizeof(float) * (size_t)w * (size_t)h)};
}

static float at(const plane_t *pl, int x, int y)
{
    x = x < 0 ? 0 : x >= pl->w ? pl->w - 1 : x;
    y = y < 0 ? 0 : y >= pl->h ? pl->h - 1 : y;
    return pl->p[(size_t)y * pl->w + x];
}

/* Rec. 601 luma of a window of img. */
static plane_t luma(const joust_image *img, int x0, int y0, int w, int h)
{
    plane_t l = plane_new(w, h);
    for (int y = 0; y < h; y++) {
        const unsigned char *s = img->rgb + 3 * ((size_t)(y + y0) * img->w + x0);
        float *d = l.p + (size_t)y * w;
        for (int x = 0; x < w; x++, s += 3)
            d[x] = 0.299f * s[0] + 0.587f * s[1] + 0.114f * s[2];
    }
    return l;
}

#define SORT2(a, b) do { if ((a) > (b)) { float t_ = (a); (a) = (b); (b) = t_; } } while (0)

/* 3x3 median (the 19-exchange network of Devillard's opt_med9), edges
 * replicated. */
static plane_t median3(const plane_t *in)
{
    plane_t out = plane_new(in->w, in->h);
    for (int y = 0; y < in->h; y++)
        for (int x = 0; x < in->w; x++) {
            float p0 = at(in, x - 1, y - 1), p1 = at(in, x, y - 1), p2 = at(in, x + 1, y - 1);
            float p3 = at(in, x - 1, y), p4 = at(in, x, y), p5 = at(in, x + 1, y);
            float p6 = at(in, x - 1, y + 1), p7 = at(in, x, y + 1), p8 = at(in, x + 1, y + 1);
            SORT2(p1, p2); SORT2(p4, p5); SORT2(p7, p8); SORT2(p0, p1); SORT2(p3, p4);
            SORT2(p6, p7); SORT2(p1, p2); SORT2(p4, p5); SORT2(p7, p8); SORT2(p0, p3);
            SORT2(p5, p8); SORT2(p4, p7); SORT2(p3, p6); SORT2(p1, p4); SORT2(p2, p5);
            SORT2(p4, p7); SORT2(p4, p2); SORT2(p6, p4); SORT2(p4, p2);
            out.p[(size_t)y * in->w + x] = p4;
        }
    return out;
}

/* Rearranges a[0..n) so that a[k] holds the k-th smallest value, nothing
 * smaller after it and nothing larger before it (Hoare's selection with a
 * median-of-three pivot): O(n), where sorting would be O(n log n). */
static float select_kth(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        float x = a[lo], y = a[mid], z = a[hi];
        float pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return a[k];
}

/* ---- the measures ---- */

typedef struct {
    double sharp, noise, ev, sd, clip_lo, clip_hi, colour, block;
} features_t;

/* Sharpness and noise from the luma plane.
 * Sharpness: RMS Sobel gradient (per pixel) over the strongest 10% of the
 * median-filtered luma's gradients, i.e. how steep the real edges are; blur
 * flattens them, noise barely moves them once the median has removed it.
 * Noise: Immerkaer's estimator, sigma = sqrt(pi/2)/6 * mean |L * N| with N
 * the difference of two Laplacians (blind to linear ramps), taken only over
 * the half of the pixels with the weakest median-filtered gradient so that
 * edges and texture count as little as possible. */
static void edges_and_noise(const plane_t *y, features_t *f)
{
    plane_t m = median3(y);
    size_t n = (size_t)y->w * y->h, k = 0;
    float *g2 = xmalloc(sizeof(float) * n), *sorted = xmalloc(sizeof(float) * n);
    float *res = xmalloc(sizeof(float) * n);
    for (int yy = 0; yy < y->h; yy++)
        for (int x = 0; x < y->w; x++, k++) {
            float gx = (at(&m, x + 1, yy - 1) + 2 * at(&m, x + 1, yy) + at(&m, x + 1, yy + 1) -
                        at(&m, x - 1, yy - 1) - 2 * at(&m, x - 1, yy) - at(&m, x - 1, yy + 1)) / 8;
            float gy = (at(&m, x - 1, yy + 1) + 2 * at(&m, x, yy + 1) + at(&m, x + 1, yy + 1) -
                        at(&m, x - 1, yy - 1) - 2 * at(&m, x, yy - 1) - at(&m, x + 1, yy - 1)) / 8;
            g2[k] = gx * gx + gy * gy;
            float r = at(y, x - 1, yy - 1) - 2 * at(y, x, yy - 1) + at(y, x + 1, yy - 1) -
                      2 * at(y, x - 1, yy) + 4 * at(y, x, yy) - 2 * at(y, x + 1, yy) +
                      at(y, x - 1, yy + 1) - 2 * at(y, x, yy + 1) + at(y, x + 1, yy + 1);
            res[k] = fabsf(r);
        }
    memcpy(sorted, g2, sizeof(float) * n);
    size_t top = n / 10 ? n / 10 : 1;
    select_kth(sorted, n, n - top);
    double acc = 0;
    for (size_t i = n - top; i < n; i++)
        acc += sorted[i];
    f->sharp = sqrt(acc / (double)top);
    /* the median lies in the lower part, already partitioned */
    float flat = select_kth(sorted, n - top, n / 2);
    double racc = 0;
    size_t rn = 0;
    for (size_t i = 0; i < n; i++)
        if (g2[i] <= flat) {
            racc += res[i];
            rn++;
        }
    f->noise = rn ? sqrt(M_PI / 2) / 6 * racc / (double)rn : 0;
    free(g2);
    free(sorted);
    free(res);
    free(m.p);
}

/* Middle grey: a well exposed scene's log-average luminance ("key",
 * Reinhard et al. 2002) sits near 18% of white. */
#define KEY_TARGET 0.18
#define KEY_DELTA 0.005 /* keeps log() finite on black pixels */

/* Exposure from the RGB pixels: how many stops the key is off middle grey,
 * and the fractions of clipped highlights (channel samples at 254+, with a
 * ramp below) and crushed shadows (pixels with every channel at 2 or less). Contrast from the luma plane. */
static void exposure_stats(const joust_image *img, const plane_t *y, features_t *f)
{
    float lin[256]; /* sRGB decoding; rebuilt per call (microseconds) to stay reentrant */
    for (int i = 0; i < 256; i++) {
        double v = i / 255.0;
        lin[i] = (float)(v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4));
    }
    /* Highlights per channel and with a ramp from 235 to 254, so the measure
     * keeps growing while an over-exposed image washes out channel by
     * channel, instead of saturating once every pixel has one clipped. */
    float hiclip[256];
    for (int i = 0; i < 256; i++)
        hiclip[i] = i >= 254 ? 1.0f : i <= 235 ? 0.0f : (float)(i - 235) / 19;
    size_t n = (size_t)img->w * img->h, lo = 0;
    double logsum = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = img->rgb + 3 * i;
        double l = 0.2126 * lin[p[0]] + 0.7152 * lin[p[1]] + 0.0722 * lin[p[2]];
        logsum += log(l + KEY_DELTA);
        unsigned mx = p[0] > p[1] ? p[0] : p[1];
        mx = mx > p[2] ? mx : p[2];
        lo += mx <= 2;
        hi += hiclip[p[0]] + hiclip[p[1]] + hiclip[p[2]];
    }
    f->ev = log2(exp(logsum / (double)n) / KEY_TARGET);
    f->clip_lo = (double)lo / (double)n;
    f->clip_hi = hi / (3.0 * (double)n);
    double s = 0, s2 = 0;
    size_t m = (size_t)y->w * y->h;
    for (size_t i = 0; i < m; i++) {
        s += y->p[i];
        s2 += (double)y->p[i] * y->p[i];
    }
    f->sd = sqrt(fmax(s2 / (double)m - (s / (double)m) * (s / (double)m), 0)) / 255;
}

/* Hasler & Suesstrunk (2003): M = sigma_rgyb + 0.3 mu_rgyb, on a thumbnail
 * (long side <= 64) so that per-pixel colour noise averages out and only
 * the image's colours count. */
static void colourfulness(const joust_image *img, features_t *f)
{
    joust_image th = {0};
    const joust_image *src = img;
    int side = img->w > img->h ? img->w : img->h;
    if (side > 64) {
        int tw = (int)((long long)img->w * 64 / side), thh = (int)((long long)img->h * 64 / side);
        if (joust_image_resize(img, tw < 1 ? 1 : tw, thh < 1 ? 1 : thh, &th) == 0)
            src = &th;
    }
    size_t n = (size_t)src->w * src->h;
    double srg = 0, srg2 = 0, syb = 0, syb2 = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = src->rgb + 3 * i;
        double rg = (double)p[0] - p[1], yb = 0.5 * ((double)p[0] + p[1]) - p[2];
        srg += rg;
        srg2 += rg * rg;
        syb += yb;
        syb2 += yb * yb;
    }
    double mrg = srg / (double)n, myb = syb / (double)n;
    double vrg = fmax(srg2 / (double)n - mrg * mrg, 0), vyb = fmax(syb2 / (double)n - myb * myb, 0);
    f->colour = sqrt(vrg + vyb) + 0.3 * sqrt(mrg * mrg + myb * myb);
    joust_image_free(&th);
}

/* JPEG blocking: mean absolute luma step across 8x8 block boundaries over
 * the mean step elsewhere, minus 1 (0 for an unblocked image). Measured on
 * original pixels, because the grid is only there before any resize; a
 * crop of at most 1024x1024 starting on the grid bounds the cost. */
static void blockiness(const joust_image *img, features_t *f)
{
    int w = img->w < 1024 ? img->w : 1024, h = img->h < 1024 ? img->h : 1024;
    int x0 = ((img->w - w) / 2) & ~7, y0 = ((img->h - h) / 2) & ~7;
    plane_t l = luma(img, x0, y0, w, h);
    double on = 0, off = 0;
    size_t non = 0, noff = 0;
    for (int y = 0; y < h; y++)
        for (int x = 1; x < w; x++) {
            double d = fabs(l.p[(size_t)y * w + x] - l.p[(size_t)y * w + x - 1]);
            if (x % 8 == 0) on += d, non++;
            else off += d, noff++;
        }
    for (int y = 1; y < h; y++)
        for (int x = 0; x < w; x++) {
            double d = fabs(l.p[(size_t)y * w + x] - l.p[(size_t)(y - 1) * w + x]);
            if (y % 8 == 0) on += d, non++;
            else off += d, noff++;
        }
    free(l.p);
    if (!non || !noff) {
        f->block = 0;
        return;
    }
    /* 0.5 luma units of slack keeps flat images from dividing noise by 0 */
    double ratio = (on / (double)non + 0.5) / (off / (double)noff + 0.5);
    f->block = ratio > 1 ? ratio - 1 : 0;
}

/* ---- combining ---- */

/* exp(-badness) in (0, 1]: badness is the stops off middle grey plus the
 * clipped area beyond a 1% allowance (thin black lines and specular
 * highlights are normal; large clipped areas are not). */
static double exposure_score(const features_t *f)
{
    double clip = fmax(f->clip_hi - 0.01, 0) + fmax(f->clip_lo - 0.01, 0);
    return exp(-(fabs(f->ev) + 4 * clip));
}

/* Log terms: equal ratios count equally whatever the image's own level.
 * Noise uses log(1 + (s/2)^2)/2, flat below ~1 (the codec's own) and like
 * log(s) above. Exposure enters as log(exposure) = -badness, so brightening
 * a well exposed image by a third of a stop costs more than the sharpness
 * and contrast it seems to add. */
static double combine(const joust_quality_stats *s)
{
    double nz = s->noise / 2;
    return 1.0 * log(1 + s->sharpness / 4) - 0.8 * 0.5 * log(1 + nz * nz) +
           1.5 * log(fmax(s->exposure, 1e-9)) + 0.8 * log(1 + s->contrast / 0.05) +
           0.2 * log(1 + s->colourfulness / 20) - 2.0 * s->blockiness;
}

int joust_quality_measure(const joust_image *img, joust_quality_stats *out)
{
    if (!out)
        return JOUST_EINVAL;
    memset(out, 0, sizeof *out);
    if (!img || !img->rgb || img->w < 8 || img->h < 8)
        return JOUST_EINVAL;
    features_t f = {0};
    blockiness(img, &f);
    joust_image small = {0};
    const joust_image *src = img;
    int side = img->w > img->h ? img->w : img->h;
    if (side > JOUST_QUALITY_SIDE) {
        int w = (int)((long long)img->w * JOUST_QUALITY_SIDE / side);
        int h = (int)((long long)img->h * JOUST_QUALITY_SIDE / side);
        if (joust_image_resize(img, w < 8 ? 8 : w, h < 8 ? 8 : h, &small) == 0)
            src = &small;
    }
    plane_t y = luma(src, 0, 0, src->w, src->h);
    edges_and_noise(&y, &f);
    exposure_stats(src, &y, &f);
    colourfulness(src, &f);
    free(y.p);
    joust_image_free(&small);
    out->sharpness = f.sharp;
    out->noise = f.noise;
    out->exposure = exposure_score(&f);
    out->contrast = f.sd;
    out->colourfulness = f.colour;
    out->blockiness = f.block;
    out->score = combine(out);
    return 0;
}

double joust_quality_prob(const joust_quality_stats *a, const joust_quality_stats *b)
{
    double z = (a->score - b->score) / JOUST_QUALITY_TEMPERATURE;
    if (z > 40)
        return 1;
    if (z < -40)
        return 0;
    return 1 / (1 + exp(-z));
}

/* ---- reasons ---- */

/* Every aspect raises or lowers the score monotonically, so the image with
 * the larger value is the one the phrase names ("image 2 is noisier"). */
static const struct {
    size_t off;
    const char *phrase, *label;
    int digits;
} aspects[] = {
    {offsetof(joust_quality_stats, sharpness), "is sharper", "sharpness", 1},
    {offsetof(joust_quality_stats, noise), "is noisier", "noise", 1},
    {offsetof(joust_quality_stats, exposure), "is better exposed", "exposure", 2},
    {offsetof(joust_quality_stats, contrast), "has more contrast", "contrast", 2},
    {offsetof(joust_quality_stats, colourfulness), "is more colourful", "colourfulness", 0},
    {offsetof(joust_quality_stats, blockiness), "shows more JPEG blocking", "blockiness", 2},
};
#define N_ASPECTS (sizeof aspects / sizeof aspects[0])

static double field(const joust_quality_stats *s, size_t off)
{
    return *(const double *)((const char *)s + off);
}

void joust_quality_reason(const joust_quality_stats *a, const joust_quality_stats *b, char *out,
                          size_t outlen)
{
    if (!out || !outlen)
        return;
    /* An aspect's share of the score difference: how much the score of a
     * changes when that one value is replaced by b's. */
    double share[N_ASPECTS];
    for (size_t i = 0; i < N_ASPECTS; i++) {
        joust_quality_stats t = *a;
        *(double *)((char *)&t + aspects[i].off) = field(b, aspects[i].off);
        share[i] = fabs(combine(a) - combine(&t));
    }
    size_t best[2] = {N_ASPECTS, N_ASPECTS};
    for (size_t i = 0; i < N_ASPECTS; i++) {
        if (share[i] < 0.02)
            continue;
        if (best[0] == N_ASPECTS || share[i] > share[best[0]]) {
            best[1] = best[0];
            best[0] = i;
        } else if (best[1] == N_ASPECTS || share[i] > share[best[1]]) {
            best[1] = i;
        }
    }
    if (best[0] == N_ASPECTS) {
        snprintf(out, outlen, "similar quality (score %.2f vs %.2f)", a->score, b->score);
        return;
    }
    int len = snprintf(out, outlen, "image %d scores higher (%.2f vs %.2f): ",
                       a->score >= b->score ? 1 : 2, a->score, b->score);
    for (int k = 0; k < 2 && best[k] != N_ASPECTS && len >= 0 && (size_t)len < outlen; k++) {
        size_t i = best[k];
        double va = field(a, aspects[i].off), vb = field(b, aspects[i].off);
        int first = va >= vb;
        len += snprintf(out + len, outlen - (size_t)len, "%simage %d %s (%s %.*f vs %.*f)",
                        k ? ", " : "", first ? 1 : 2, aspects[i].phrase, aspects[i].label,
                        aspects[i].digits, first ? va : vb, aspects[i].digits, first ? vb : va);
    }
}
