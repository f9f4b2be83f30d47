/* Demo data generator: procedural scenes (palettes, gradients, value-noise
 * textures, stripes and checks, anti-aliased shapes and lines) and graded
 * degradations with a known quality order. See demo_data.h. */
#include "demo_data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "rng.h"
#include "xalloc.h"

#define S JOUST_DEMO_SIDE
#define TAU 6.283185307179586

typedef struct { float r, g, b; } rgbf;

static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
static float smooth01(float t) { t = clampf(t, 0, 1); return t * t * (3 - 2 * t); }
static rgbf mix(rgbf a, rgbf b, float t)
{
    return (rgbf){a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}
static rgbf scale(rgbf a, float k) { return (rgbf){a.r * k, a.g * k, a.b * k}; }

static rgbf hsv(float h, float s, float v)
{
    h = (float)(h - floor(h)) * 6;
    int i = (int)h;
    float f = h - (float)i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    switch (i % 6) {
    case 0: return (rgbf){v, t, p};
    case 1: return (rgbf){q, v, p};
    case 2: return (rgbf){p, v, t};
    case 3: return (rgbf){p, q, v};
    case 4: return (rgbf){t, p, v};
    default: return (rgbf){v, p, q};
    }
}

static double uni(joust_rng_t *r, double lo, double hi) { return lo + (hi - lo) * joust_rng_uniform(r); }
static int pick(joust_rng_t *r, int n) { return (int)joust_rng_below(r, (uint64_t)n); }

static uint64_t mix64(uint64_t a, uint64_t b)
{
    uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- value noise: a random lattice per octave, smooth interpolation ---- */

#define OCTAVES 5
typedef struct {
    int cells[OCTAVES];
    float *v[OCTAVES];
    float amp[OCTAVES];
} fractal_t;

static void fractal_init(fractal_t *f, joust_rng_t *r, int base_cells, float persistence)
{
    float a = 1, total = 0;
    for (int o = 0; o < OCTAVES; o++) {
        int c = base_cells << o;
        size_t n = (size_t)(c + 1) * (size_t)(c + 1);
        f->cells[o] = c;
        f->v[o] = xmalloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            f->v[o][i] = (float)joust_rng_uniform(r) * 2 - 1;
        f->amp[o] = a;
        total += a;
        a *= persistence;
    }
    for (int o = 0; o < OCTAVES; o++)
        f->amp[o] /= total;
}

static void fractal_free(fractal_t *f)
{
    for (int o = 0; o < OCTAVES; o++)
        free(f->v[o]);
}

/* u, v in [0, 1]; result roughly in [-1, 1]. */
static float fractal_at(const fractal_t *f, float u, float v)
{
    float sum = 0;
    for (int o = 0; o < OCTAVES; o++) {
        int c = f->cells[o];
        float x = u * (float)c, y = v * (float)c;
        int i = (int)x, j = (int)y;
        if (i >= c) i = c - 1;
        if (j >= c) j = c - 1;
        float fx = smooth01(x - (float)i), fy = smooth01(y - (float)j);
        const float *g = f->v[o];
        int w = c + 1;
        float a = g[j * w + i], b = g[j * w + i + 1], cc = g[(j + 1) * w + i],
              d = g[(j + 1) * w + i + 1];
        sum += f->amp[o] * ((a + (b - a) * fx) * (1 - fy) + (cc + (d - cc) * fx) * fy);
    }
    return sum;
}

/* ---- scene description ---- */

enum { SH_CIRCLE, SH_RING, SH_BOX, SH_TRIANGLE, SH_ELLIPSE, SH_KINDS };
enum { FILL_SOLID, FILL_STRIPES, FILL_CHECKS, FILL_GRADIENT, FILL_KINDS };
static const char *shape_names[SH_KINDS] = {"circle", "ring", "rectangle", "triangle", "ellipse"};
static const char *fill_names[FILL_KINDS] = {"", "striped ", "checkered ", "shaded "};

typedef struct {
    int kind, fill, outline;
    float cx, cy, a, b, angle; /* a, b: radii / half sides / ring width */
    rgbf c1, c2;
    float freq, fangle;
    float tx[3], ty[3]; /* triangle */
} shape_t;

typedef struct {
    rgbf pal[5];
    int bg_kind; /* 0 linear, 1 radial, 2 four-corner */
    float bg_angle, bg_cx, bg_cy;
    int tex_kind; /* 0 clouds, 1 marble, 2 rings, 3 grain */
    float tex_amp, tex_freq;
    fractal_t noise;
    int band; /* 0 none, 1 stripes, 2 checks */
    float band_lo, band_hi, band_freq, band_angle;
    int nshapes;
    shape_t sh[9];
    int nlines;
    float lx0[4], ly0[4], lx1[4], ly1[4], lw[4];
} scene_t;

static const char *hue_name(float h)
{
    float d = (float)(h - floor(h)) * 360;
    return d < 15 ? "red" : d < 45 ? "orange" : d < 70 ? "yellow" : d < 160 ? "green"
         : d < 200 ? "teal" : d < 255 ? "blue" : d < 290 ? "purple" : d < 335 ? "magenta" : "red";
}

static void scene_make(joust_rng_t *r, scene_t *sc, char *desc, size_t desclen, int prompt)
{
    static const char *schemes[] = {"vivid", "muted", "pastel", "deep", "contrasting"};
    int scheme = pick(r, 5);
    float h0 = (float)joust_rng_uniform(r);
    /* Values are spread over the scheme's range (in shuffled order) so that
     * every scene has real luminance contrast, not only hue contrast. */
    static const float vrange[5][2] = {{0.35f, 0.92f}, {0.25f, 0.85f}, {0.5f, 0.92f},
                                       {0.15f, 0.75f}, {0.3f, 0.92f}};
    int rank[5] = {0, 1, 2, 3, 4};
    for (int i = 4; i > 0; i--) {
        int j = pick(r, i + 1), t = rank[i];
        rank[i] = rank[j];
        rank[j] = t;
    }
    for (int i = 0; i < 5; i++) {
        float h = h0, s;
        float v = vrange[scheme][0] + (vrange[scheme][1] - vrange[scheme][0]) * (float)rank[i] / 4 +
                  (float)uni(r, -0.04, 0.04);
        switch (scheme) {
        case 0: h += (float)uni(r, -0.08, 0.08) + 0.07f * (float)i; s = (float)uni(r, 0.7, 0.95); break;
        case 1: h += (float)uni(r, -0.12, 0.12); s = (float)uni(r, 0.2, 0.45); break;
        case 2: h += (float)uni(r, -0.3, 0.3); s = (float)uni(r, 0.2, 0.4); break;
        case 3: h += (float)uni(r, -0.1, 0.1) + (float)(i & 1) * 0.5f; s = (float)uni(r, 0.6, 0.95); break;
        default: h += (float)i * 0.33f + (float)uni(r, -0.03, 0.03); s = (float)uni(r, 0.5, 0.95); break;
        }
        sc->pal[i] = hsv(h, s, clampf(v, 0.05f, 0.95f));
    }
    sc->bg_kind = pick(r, 3);
    sc->bg_angle = (float)uni(r, 0, TAU);
    sc->bg_cx = (float)uni(r, 0.2, 0.8);
    sc->bg_cy = (float)uni(r, 0.2, 0.8);
    sc->tex_kind = pick(r, 4);
    sc->tex_amp = (float)uni(r, 0.08, 0.22);
    sc->tex_freq = (float)uni(r, 4, 14);
    fractal_init(&sc->noise, r, 2 + pick(r, 3), (float)uni(r, 0.45, 0.65));
    sc->band = pick(r, 3);
    sc->band_lo = (float)uni(r, 0.05, 0.55);
    sc->band_hi = sc->band_lo + (float)uni(r, 0.15, 0.4);
    sc->band_freq = (float)uni(r, 10, 28);
    sc->band_angle = (float)uni(r, 0, TAU);
    sc->nshapes = 3 + pick(r, 7);
    int counts[SH_KINDS] = {0};
    for (int i = 0; i < sc->nshapes; i++) {
        shape_t *s = &sc->sh[i];
        s->kind = pick(r, SH_KINDS);
        counts[s->kind]++;
        s->fill = pick(r, 6);
        if (s->fill >= FILL_KINDS)
            s->fill = FILL_SOLID;
        s->outline = pick(r, 3) == 0;
        s->cx = (float)uni(r, 0.1, 0.9) * S;
        s->cy = (float)uni(r, 0.1, 0.9) * S;
        s->a = (float)uni(r, 0.05, 0.2) * S;
        s->b = s->kind == SH_RING ? (float)uni(r, 3, 12) : (float)uni(r, 0.04, 0.18) * S;
        s->angle = (float)uni(r, 0, TAU);
        s->c1 = sc->pal[pick(r, 5)];
        s->c2 = sc->pal[pick(r, 5)];
        if (pick(r, 3) == 0)
            s->c2 = scale(s->c2, 0.35f);
        s->freq = (float)uni(r, 0.15, 0.6);
        s->fangle = (float)uni(r, 0, TAU);
        for (int k = 0; k < 3; k++) {
            double ang = s->angle + k * TAU / 3 + uni(r, -0.4, 0.4), rad = s->a * uni(r, 0.8, 1.4);
            s->tx[k] = s->cx + (float)(rad * cos(ang));
            s->ty[k] = s->cy + (float)(rad * sin(ang));
        }
    }
    sc->nlines = pick(r, 5);
    for (int i = 0; i < sc->nlines; i++) {
        sc->lx0[i] = (float)uni(r, 0, S);
        sc->ly0[i] = (float)uni(r, 0, S);
        sc->lx1[i] = (float)uni(r, 0, S);
        sc->ly1[i] = (float)uni(r, 0, S);
        sc->lw[i] = (float)uni(r, 0.8, 2.5);
    }
    if (!desc)
        return;
    static const char *bgs[] = {"a linear gradient", "a radial glow", "a four-corner blend"};
    static const char *texs[] = {"cloudy", "marbled", "ring-grained", "speckled"};
    static const char *bands[] = {"", ", crossed by a band of fine stripes",
                                  ", crossed by a checkerboard band"};
    joust_buf_t b = {0};
    joust_buf_printf(&b, "Scene %d: %s %s palette, %s with a %s texture; ", prompt,
                     schemes[scheme], hue_name(h0), bgs[sc->bg_kind], texs[sc->tex_kind]);
    int first = 1;
    for (int k = 0; k < SH_KINDS; k++) {
        if (!counts[k])
            continue;
        /* the fill is named only when every shape of the kind has it */
        int fill = -1;
        for (int i = 0; i < sc->nshapes; i++)
            if (sc->sh[i].kind == k)
                fill = fill == -1 || fill == sc->sh[i].fill ? sc->sh[i].fill : FILL_SOLID;
        joust_buf_printf(&b, "%s%d %s%s%s", first ? "" : ", ", counts[k], fill_names[fill],
                         shape_names[k], counts[k] > 1 ? "s" : "");
        first = 0;
    }
    joust_buf_puts(&b, bands[sc->band]);
    if (sc->nlines)
        joust_buf_printf(&b, " and %d thin line%s", sc->nlines, sc->nlines > 1 ? "s" : "");
    snprintf(desc, desclen, "%s", b.data);
    joust_buf_free(&b);
}

/* Signed distance (pixels, negative inside) from (x, y) to shape s. */
static float shape_sdf(const shape_t *s, float x, float y)
{
    float dx = x - s->cx, dy = y - s->cy;
    float c = cosf(s->angle), sn = sinf(s->angle);
    float u = c * dx + sn * dy, v = -sn * dx + c * dy;
    switch (s->kind) {
    case SH_CIRCLE: return sqrtf(dx * dx + dy * dy) - s->a;
    case SH_RING: return fabsf(sqrtf(dx * dx + dy * dy) - s->a) - s->b * 0.5f;
    case SH_BOX: {
        float qx = fabsf(u) - s->a, qy = fabsf(v) - s->b;
        float ox = qx > 0 ? qx : 0, oy = qy > 0 ? qy : 0;
        float in = qx > qy ? qx : qy;
        return sqrtf(ox * ox + oy * oy) + (in < 0 ? in : 0);
    }
    case SH_ELLIPSE: {
        float m = s->a < s->b ? s->a : s->b;
        return (sqrtf((u / s->a) * (u / s->a) + (v / s->b) * (v / s->b)) - 1) * m;
    }
    default: { /* triangle: max of signed distances to the edge lines */
        float area = (s->tx[1] - s->tx[0]) * (s->ty[2] - s->ty[0]) -
                     (s->ty[1] - s->ty[0]) * (s->tx[2] - s->tx[0]);
        float sign = area < 0 ? -1.0f : 1.0f, d = -1e9f;
        for (int k = 0; k < 3; k++) {
            float ax = s->tx[k], ay = s->ty[k], bx = s->tx[(k + 1) % 3], by = s->ty[(k + 1) % 3];
            float ex = bx - ax, ey = by - ay, len = sqrtf(ex * ex + ey * ey) + 1e-6f;
            float e = -sign * (ex * (y - ay) - ey * (x - ax)) / len;
            if (e > d)
                d = e;
        }
        return d;
    }
    }
}

static float pattern(int kind, float x, float y, float freq, float angle)
{
    float p = (x * cosf(angle) + y * sinf(angle)) * freq;
    if (kind == FILL_CHECKS) {
        float q = (-x * sinf(angle) + y * cosf(angle)) * freq;
        return smooth01(0.5f + 2.5f * sinf(p) * sinf(q));
    }
    return smooth01(0.5f + 1.5f * sinf(p)); /* soft-edged square wave */
}

static rgbf render_pixel(const scene_t *sc, float x, float y)
{
    float u = x / S, v = y / S;
    rgbf c;
    switch (sc->bg_kind) {
    case 0: {
        float t = 0.5f + (u - 0.5f) * cosf(sc->bg_angle) + (v - 0.5f) * sinf(sc->bg_angle);
        c = mix(sc->pal[0], sc->pal[1], smooth01(t));
        break;
    }
    case 1: {
        float d = sqrtf((u - sc->bg_cx) * (u - sc->bg_cx) + (v - sc->bg_cy) * (v - sc->bg_cy));
        c = mix(sc->pal[1], sc->pal[0], smooth01(d * 1.4f));
        break;
    }
    default:
        c = mix(mix(sc->pal[0], sc->pal[1], u), mix(sc->pal[2], sc->pal[3], u), v);
        break;
    }
    float n = fractal_at(&sc->noise, u, v), t;
    switch (sc->tex_kind) {
    case 0: t = n; break;
    case 1: t = sinf((u + v) * sc->tex_freq + 6 * n); break;
    case 2: t = sinf(sqrtf((u - 0.5f) * (u - 0.5f) + (v - 0.3f) * (v - 0.3f)) * sc->tex_freq * 4 + 3 * n); break;
    default: t = n + 0.6f * fractal_at(&sc->noise, v * 0.5f + 0.25f, u * 0.5f + 0.25f); break;
    }
    c = scale(c, 1 + sc->tex_amp * t);
    if (sc->band) {
        float w = u * cosf(sc->band_angle * 0.25f) + v * sinf(sc->band_angle * 0.25f);
        float in = smooth01((w - sc->band_lo) * S) * smooth01((sc->band_hi - w) * S);
        if (in > 0) {
            float p = pattern(sc->band == 2 ? FILL_CHECKS : FILL_STRIPES, x, y,
                              sc->band_freq / S * (float)TAU, sc->band_angle);
            c = mix(c, mix(sc->pal[4], scale(sc->pal[2], 0.6f), p), in * 0.85f);
        }
    }
    for (int i = 0; i < sc->nshapes; i++) {
        const shape_t *s = &sc->sh[i];
        float d = shape_sdf(s, x, y);
        float cov = clampf(0.5f - d, 0, 1);
        if (cov > 0) {
            rgbf f = s->c1;
            if (s->fill == FILL_STRIPES || s->fill == FILL_CHECKS)
                f = mix(s->c1, s->c2, pattern(s->fill, x, y, s->freq, s->fangle));
            else if (s->fill == FILL_GRADIENT)
                f = mix(s->c1, s->c2, smooth01(0.5f - d / (2 * s->a)));
            c = mix(c, f, cov);
        }
        if (s->outline) {
            float oc = clampf(1.5f - fabsf(d), 0, 1);
            c = mix(c, scale(s->c2, 0.2f), oc);
        }
    }
    for (int i = 0; i < sc->nlines; i++) {
        float ex = sc->lx1[i] - sc->lx0[i], ey = sc->ly1[i] - sc->ly0[i];
        float len2 = ex * ex + ey * ey + 1e-6f;
        float t2 = clampf(((x - sc->lx0[i]) * ex + (y - sc->ly0[i]) * ey) / len2, 0, 1);
        float px = sc->lx0[i] + t2 * ex - x, py = sc->ly0[i] + t2 * ey - y;
        float cov = clampf(sc->lw[i] * 0.5f + 0.5f - sqrtf(px * px + py * py), 0, 1);
        c = mix(c, scale(sc->pal[(i + 3) % 5], 0.25f), cov);
    }
    return c;
}

static double srgb_to_lin(double v)
{
    return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}

static double lin_to_srgb(double v)
{
    return v <= 0.0031308 ? v * 12.92 : 1.055 * pow(v, 1 / 2.4) - 0.055;
}

/* The exposure curve: a power, then kept off pure black and white so that
 * a pristine image has neither crushed shadows nor clipped highlights. */
static double toe(double v, double gamma)
{
    return 0.02 + 0.96 * pow(v, gamma);
}

static double key_of(const float *buf, size_t npix, double gamma)
{
    double logsum = 0;
    size_t n = 0;
    for (size_t i = 0; i < npix; i += 13, n++) { /* a subsample is plenty */
        const float *p = buf + 3 * i;
        double l = 0.2126 * srgb_to_lin(toe(p[0], gamma)) + 0.7152 * srgb_to_lin(toe(p[1], gamma)) +
                   0.0722 * srgb_to_lin(toe(p[2], gamma));
        logsum += log(l + 0.005);
    }
    return exp(logsum / (double)n);
}

/* Puts the log-average luminance (the "key") at middle grey, 0.18: the
 * photographic meaning of a correct exposure. A power curve on [0, 1] rather
 * than a gain, so that getting there never clips anything; the key falls as
 * the exponent grows, so bisection finds it. */
static void expose_to_middle_grey(float *buf, size_t npix)
{
    double lo = 0.25, hi = 4;
    for (int it = 0; it < 16; it++) {
        double mid = sqrt(lo * hi);
        if (key_of(buf, npix, mid) > 0.18)
            lo = mid;
        else
            hi = mid;
    }
    double gamma = sqrt(lo * hi);
    for (size_t i = 0; i < 3 * npix; i++)
        buf[i] = (float)toe(buf[i], gamma);
}

static uint64_t prompt_seed(uint64_t seed, int prompt) { return mix64(seed, (uint64_t)prompt * 2 + 1); }

void joust_demo_base(uint64_t seed, int prompt, joust_image *out, char *desc, size_t desclen)
{
    joust_rng_t r;
    joust_rng_seed(&r, prompt_seed(seed, prompt));
    scene_t sc;
    memset(&sc, 0, sizeof sc);
    scene_make(&r, &sc, desc, desclen, prompt);
    size_t n = (size_t)S * S;
    float *buf = xmalloc(n * 3 * sizeof(float));
    double sum = 0, sum2 = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            rgbf c = render_pixel(&sc, (float)x + 0.5f, (float)y + 0.5f);
            float *p = buf + 3 * ((size_t)y * S + x);
            p[0] = c.r, p[1] = c.g, p[2] = c.b;
            double l = 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
            sum += l;
            sum2 += l * l;
        }
    fractal_free(&sc.noise);
    /* Normalise to a well exposed, well contrasted pristine image, so that
     * every degradation (including exposure in either direction) is a clear
     * step down from it. */
    double mean = sum / (double)n, sd = sqrt(fmax(sum2 / (double)n - mean * mean, 1e-6));
    double tsd = uni(&r, 0.17, 0.23);
    double k = tsd / sd;
    if (k > 10)
        k = 10;
    /* A soft shoulder and toe instead of clamping: a pristine image has no
     * clipped areas, so the clipping the exposure errors cause is theirs. */
    for (size_t i = 0; i < n * 3; i++)
        buf[i] = (float)(0.5 + 0.47 * tanh((((double)buf[i] - mean) * k - 0.03) / 0.47));
    expose_to_middle_grey(buf, n);
    out->w = out->h = S;
    out->rgb = xmalloc(n * 3);
    for (size_t i = 0; i < n * 3; i++)
        out->rgb[i] = (unsigned char)lrintf(buf[i] * 255);
    free(buf);
}

/* ---- degradations ---- */

const char *joust_degrade_name(joust_degrade_kind kind)
{
    static const char *names[JOUST_DEGRADE_COUNT] = {"blur", "noise", "jpeg", "underexposure",
                                                     "overexposure"};
    return (unsigned)kind < JOUST_DEGRADE_COUNT ? names[kind] : "?";
}

static void gaussian_blur(joust_image *img, double sigma)
{
    int rad = (int)ceil(3 * sigma);
    if (rad < 1)
        rad = 1;
    float *k = xmalloc(sizeof(float) * (size_t)(2 * rad + 1));
    double tot = 0;
    for (int i = -rad; i <= rad; i++)
        tot += k[i + rad] = (float)exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * rad; i++)
        k[i] = (float)(k[i] / tot);
    int w = img->w, h = img->h;
    float *tmp = xmalloc(sizeof(float) * (size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float a = 0;
                for (int i = -rad; i <= rad; i++) {
                    int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                    a += k[i + rad] * img->rgb[3 * ((size_t)y * w + xx) + c];
                }
                tmp[3 * ((size_t)y * w + x) + c] = a;
            }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float a = 0;
                for (int i = -rad; i <= rad; i++) {
                    int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                    a += k[i + rad] * tmp[3 * ((size_t)yy * w + x) + c];
                }
                img->rgb[3 * ((size_t)y * w + x) + c] = (unsigned char)lrintf(clampf(a, 0, 255));
            }
    free(tmp);
    free(k);
}

/* A camera exposure error: scale linear light by 2^ev, clip at white. */
static void exposure(joust_image *img, double ev)
{
    unsigned char lut[256];
    double g = pow(2, ev);
    for (int i = 0; i < 256; i++) {
        double v = lin_to_srgb(fmin(srgb_to_lin(i / 255.0) * g, 1));
        lut[i] = (unsigned char)lrint(v * 255);
    }
    for (size_t i = 0; i < (size_t)img->w * img->h * 3; i++)
        img->rgb[i] = lut[img->rgb[i]];
}

static void add_noise(joust_image *img, double sigma, uint64_t seed)
{
    joust_rng_t r;
    joust_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)img->w * img->h * 3; i++) {
        double v = img->rgb[i] + sigma * joust_rng_normal(&r);
        img->rgb[i] = (unsigned char)lrint(fmin(fmax(v, 0), 255));
    }
}

static void jpeg_roundtrip(joust_image *img, int quality)
{
    unsigned char *data;
    size_t len;
    joust_image dec;
    if (joust_image_encode_jpeg(img, quality, 0, &data, &len) != 0)
        return;
    if (joust_image_decode(data, len, NULL, &dec, NULL, 0) == 0 && dec.w == img->w &&
        dec.h == img->h) {
        joust_image_free(img);
        *img = dec;
    } else {
        joust_image_free(&dec);
    }
    free(data);
}

void joust_demo_degrade(joust_image *img, joust_degrade_kind kind, double severity,
                        uint64_t noise_seed)
{
    if (severity <= 0)
        return;
    if (severity > 1)
        severity = 1;
    switch (kind) {
    case JOUST_DEGRADE_BLUR: gaussian_blur(img, 3.2 * severity); break;
    case JOUST_DEGRADE_NOISE: add_noise(img, 30 * severity, noise_seed); break;
    /* geometric in quality: each step costs about as much visually */
    case JOUST_DEGRADE_JPEG: jpeg_roundtrip(img, (int)lrint(92 * pow(6.0 / 92, severity))); break;
    case JOUST_DEGRADE_UNDER: exposure(img, -2.2 * severity); break;
    case JOUST_DEGRADE_OVER: exposure(img, 2.2 * severity); break;
    default: break;
    }
}

void joust_demo_plan(uint64_t seed, int prompt, int *primary, int *secondary)
{
    joust_rng_t r;
    joust_rng_seed(&r, mix64(prompt_seed(seed, prompt), 0x706c616e));
    *primary = prompt % JOUST_DEGRADE_COUNT;
    *secondary = -1;
    if (pick(&r, 3) == 0) {
        int s = pick(&r, JOUST_DEGRADE_COUNT);
        int exposures = (s == JOUST_DEGRADE_UNDER || s == JOUST_DEGRADE_OVER) &&
                        (*primary == JOUST_DEGRADE_UNDER || *primary == JOUST_DEGRADE_OVER);
        if (s != *primary && !exposures)
            *secondary = s;
    }
}

/* Applies level k's degradations to a copy of the base, in camera order:
 * optics (blur), exposure, sensor noise, then compression. */
static void apply_level(joust_image *img, uint64_t seed, int prompt, int k, int per_prompt)
{
    int primary, secondary;
    joust_demo_plan(seed, prompt, &primary, &secondary);
    double t = per_prompt > 1 ? (double)k / (per_prompt - 1) : 0;
    static const joust_degrade_kind order[] = {JOUST_DEGRADE_BLUR, JOUST_DEGRADE_UNDER,
                                               JOUST_DEGRADE_OVER, JOUST_DEGRADE_NOISE,
                                               JOUST_DEGRADE_JPEG};
    uint64_t ns = mix64(prompt_seed(seed, prompt), (uint64_t)k + 1000);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if ((int)order[i] == primary)
            joust_demo_degrade(img, order[i], t, ns);
        else if ((int)order[i] == secondary)
            joust_demo_degrade(img, order[i], 0.5 * t, ns);
    }
}

static void image_copy(const joust_image *src, joust_image *dst)
{
    size_t n = (size_t)src->w * src->h * 3;
    dst->w = src->w;
    dst->h = src->h;
    dst->rgb = xmalloc(n);
    memcpy(dst->rgb, src->rgb, n);
}

void joust_demo_variant(uint64_t seed, int prompt, int k, int per_prompt, joust_image *out)
{
    joust_demo_base(seed, prompt, out, NULL, 0);
    apply_level(out, seed, prompt, k, per_prompt);
}

/* ---- files ---- */

static int mkdir_p(const char *dir)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = JOUST_EIO;
        *s = c;
        if (c == '\0' || rc)
            break;
    }
    struct stat st;
    if (!rc && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = JOUST_EIO;
    free(p);
    return rc;
}

static const char *model_names[] = {"aurora-xl", "brushwork-2", "canvas-diffusion", "dreamforge-1.5",
                                    "etchling", "fauve-mini", "glaze-0.9", "halftone-lite"};
#define N_MODELS (int)(sizeof model_names / sizeof model_names[0])

int joust_demo_generate(const char *dir, int prompts, int per_prompt, uint64_t seed,
                        const char *manifest_path)
{
    if (!dir || !*dir || prompts < 1 || per_prompt < 2 || per_prompt > 100)
        return JOUST_EINVAL;
    if (mkdir_p(dir) != 0)
        return JOUST_EIO;
    char *absdir = realpath(dir, NULL);
    if (!absdir)
        return JOUST_EIO;
    joust_buf_t path = {0}, tmpname = {0}, lines = {0};
    if (manifest_path)
        joust_buf_puts(&tmpname, manifest_path);
    else
        joust_buf_printf(&tmpname, "%s/manifest.jsonl", absdir);
    char *final = xstrdup(tmpname.data);
    joust_buf_puts(&tmpname, ".tmp");
    int rc = 0;
    FILE *mf = fopen(tmpname.data, "w");
    if (!mf) {
        rc = JOUST_EIO;
        goto done;
    }
    int *order = xmalloc(sizeof(int) * (size_t)per_prompt);
    char desc[512];
    for (int p = 0; p < prompts && !rc; p++) {
        joust_image base;
        joust_demo_base(seed, p, &base, desc, sizeof desc);
        for (int k = 0; k < per_prompt && !rc; k++) {
            joust_image v;
            image_copy(&base, &v);
            apply_level(&v, seed, p, k, per_prompt);
            joust_buf_reset(&path);
            joust_buf_printf(&path, "%s/p%d_v%d.jpg", absdir, p, k);
            rc = joust_image_save_jpeg(path.data, &v, 95);
            joust_image_free(&v);
        }
        joust_image_free(&base);
        /* Shuffle the lines of this prompt so ingest order leaks nothing. */
        joust_rng_t r;
        joust_rng_seed(&r, mix64(prompt_seed(seed, p), 0x73687566));
        for (int i = 0; i < per_prompt; i++)
            order[i] = i;
        for (int i = per_prompt - 1; i > 0; i--) {
            int j = pick(&r, i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < per_prompt && !rc; i++) {
            int k = order[i];
            joust_buf_reset(&path);
            joust_buf_printf(&path, "%s/p%d_v%d.jpg", absdir, p, k);
            joust_buf_reset(&lines);
            joust_buf_puts(&lines, "{\"image\": ");
            joust_buf_json_str(&lines, path.data);
            joust_buf_puts(&lines, ", \"prompt\": ");
            joust_buf_json_str(&lines, desc);
            if (k < N_MODELS)
                joust_buf_printf(&lines, ", \"model\": \"%s\"", model_names[k]);
            else
                joust_buf_printf(&lines, ", \"model\": \"%s-r%d\"", model_names[k % N_MODELS],
                                 k / N_MODELS);
            joust_buf_printf(&lines, ", \"id\": \"p%d_v%d\", \"truth\": %d}\n", p, k,
                             per_prompt - 1 - k);
            if (fwrite(lines.data, 1, lines.len, mf) != lines.len)
                rc = JOUST_EIO;
        }
    }
    free(order);
    if (fclose(mf) != 0)
        rc = JOUST_EIO;
    if (!rc && rename(tmpname.data, final) != 0)
        rc = JOUST_EIO;
    if (rc)
        unlink(tmpname.data);
done:
    free(final);
    free(absdir);
    joust_buf_free(&path);
    joust_buf_free(&tmpname);
    joust_buf_free(&lines);
    return rc;
}
