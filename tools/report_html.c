/* report.html: one self-contained page, plots as inline SVG (report.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "output.h"
#include "report.h"
#include "xalloc.h"

void rep_html_esc(joust_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': joust_buf_puts(b, "&lt;"); break;
        case '>': joust_buf_puts(b, "&gt;"); break;
        case '&': joust_buf_puts(b, "&amp;"); break;
        case '"': joust_buf_puts(b, "&quot;"); break;
        case '\'': joust_buf_puts(b, "&#39;"); break;
        default: joust_buf_append(b, s, 1);
        }
    }
}

/* A number printed as pre "%+.<digits>f" post, or a dash for NaN. */
static void numf(joust_buf_t *b, double x, const char *pre, int digits, const char *post)
{
    if (isnan(x))
        joust_buf_puts(b, "&ndash;");
    else
        joust_buf_printf(b, "%s%+.*f%s", pre, digits, x, post);
}

/* Models in descending score order. */
static const joust_model_score *order_scores;
static int cmp_desc(const void *a, const void *b)
{
    double x = order_scores[*(const uint32_t *)a].theta, y = order_scores[*(const uint32_t *)b].theta;
    if (x != y)
        return x > y ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static uint32_t *model_order(const rep_night *n)
{
    uint32_t *ord = xmalloc(sizeof *ord * (n->n_models + 1));
    for (uint32_t m = 0; m < n->n_models; m++)
        ord[m] = m;
    order_scores = n->score;
    qsort(ord, n->n_models, sizeof *ord, cmp_desc);
    return ord;
}

/* A colour for a win rate: blue (0) .. white (0.5) .. red (1). */
static void rate_colour(joust_buf_t *b, double r)
{
    static const double lo[3] = {33, 102, 172}, mid[3] = {247, 247, 247}, hi[3] = {178, 24, 43};
    if (isnan(r)) {
        joust_buf_puts(b, "#ddd");
        return;
    }
    const double *from = r < 0.5 ? lo : mid, *to = r < 0.5 ? mid : hi;
    double t = r < 0.5 ? r / 0.5 : (r - 0.5) / 0.5;
    joust_buf_printf(b, "rgb(%d,%d,%d)", (int)(from[0] + t * (to[0] - from[0])),
                     (int)(from[1] + t * (to[1] - from[1])), (int)(from[2] + t * (to[2] - from[2])));
}

typedef struct {
    double lo, hi;
    int x0, w;
} axis;

static double ax(const axis *a, double v)
{
    return a->x0 + (v - a->lo) / (a->hi - a->lo) * a->w;
}

static void axis_fit(axis *a, const double *v, size_t n)
{
    a->lo = 0, a->hi = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) {
            a->lo = v[i] < a->lo ? v[i] : a->lo;
            a->hi = v[i] > a->hi ? v[i] : a->hi;
        }
    if (a->hi - a->lo < 1e-9)
        a->lo -= 1, a->hi += 1;
    double pad = 0.05 * (a->hi - a->lo);
    a->lo -= pad, a->hi += pad;
}

static void axis_ticks(joust_buf_t *b, const axis *a, int y0, int y1)
{
    double span = a->hi - a->lo, step = pow(10, floor(log10(span / 4)));
    if (span / step > 8)
        step *= 2;
    if (span / step > 8)
        step *= 2.5;
    for (double t = ceil(a->lo / step) * step; t <= a->hi; t += step) {
        double x = ax(a, t);
        joust_buf_printf(b,
                         "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>"
                         "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%.2g</text>",
                         x, y0, x, y1, fabs(t) < step / 2 ? "#888" : "#eee", x, y1 + 12,
                         fabs(t) < step / 2 ? 0.0 : t);
    }
}

/* Horizontal intervals: one row per label. */
static void forest(joust_buf_t *b, const char *title, char **labels, const uint32_t *ord, uint32_t n,
                   const double *mid, const double *lo, const double *hi, const int *flag)
{
    double *all = xmalloc(sizeof *all * (3 * n + 1));
    for (uint32_t i = 0; i < n; i++)
        all[3 * i] = mid[i], all[3 * i + 1] = lo[i], all[3 * i + 2] = hi[i];
    axis a = {0, 0, 170, 440};
    axis_fit(&a, all, 3 * n);
    free(all);
    int rowh = 22, h = (int)n * rowh + 30;
    joust_buf_printf(b, "<svg class=\"plot\" role=\"img\" aria-label=\"");
    rep_html_esc(b, title);
    joust_buf_printf(b, "\" width=\"640\" height=\"%d\" viewBox=\"0 0 640 %d\">", h, h);
    axis_ticks(b, &a, 4, h - 22);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = ord[k];
        int y = 14 + (int)k * rowh;
        joust_buf_printf(b, "<text x=\"164\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", y + 4);
        rep_html_esc(b, labels[i]);
        joust_buf_puts(b, "</text>");
        if (!isfinite(mid[i]))
            continue;
        const char *col = flag && flag[i] ? "#b2182b" : "#2166ac";
        if (isfinite(lo[i]) && isfinite(hi[i]))
            joust_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>",
                             ax(&a, lo[i]), y, ax(&a, hi[i]), y, col);
        joust_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%d\" r=\"4\" fill=\"%s\"/>", ax(&a, mid[i]), y, col);
    }
    joust_buf_puts(b, "</svg>\n");
}

static void section(joust_buf_t *b, const char *id, const char *title)
{
    joust_buf_printf(b, "<section id=\"%s\"><h2>%s</h2>\n", id, title);
}

static void scores(joust_buf_t *b, const rep_report *r, const uint32_t *ord)
{
    const rep_night *n = r->today;
    section(b, "scores", "Model scores");
    joust_buf_puts(b, "<p class=\"note\">Bradley&ndash;Terry scores of the models from their images' "
                      "matches on the same prompt; ");
    if (n->baseline >= 0) {
        joust_buf_puts(b, "anchored to the baseline <b>");
        rep_html_esc(b, n->models[n->baseline]);
        joust_buf_puts(b, "</b> (0 every night)");
    } else
        joust_buf_puts(b, "centred on the models' mean (no <code>--baseline-model</code>)");
    joust_buf_puts(b, "; 95&nbsp;% bootstrap intervals over prompts.</p>\n");
    double *mid = xmalloc(sizeof(double) * (n->n_models + 1)), *lo = xmalloc(sizeof(double) * (n->n_models + 1)),
           *hi = xmalloc(sizeof(double) * (n->n_models + 1));
    for (uint32_t m = 0; m < n->n_models; m++)
        mid[m] = n->score[m].theta, lo[m] = n->score[m].lo, hi[m] = n->score[m].hi;
    forest(b, "model scores with 95% intervals", n->models, ord, n->n_models, mid, lo, hi, NULL);
    free(mid);
    free(lo);
    free(hi);
    joust_buf_puts(b, "<table><tr><th>#</th><th>model</th><th>score</th><th>95&nbsp;% interval</th>"
                      "<th>comparisons</th></tr>\n");
    for (uint32_t k = 0; k < n->n_models; k++) {
        uint32_t m = ord[k];
        joust_buf_printf(b, "<tr><td>%u</td><td>", k + 1);
        rep_html_esc(b, n->models[m]);
        joust_buf_puts(b, (int32_t)m == n->baseline ? " <span class=\"tag\">baseline</span>" : "");
        joust_buf_puts(b, "</td><td>");
        numf(b, n->score[m].theta, "", 3, "");
        joust_buf_puts(b, "</td><td>");
        numf(b, n->score[m].lo, "[", 3, ", ");
        numf(b, n->score[m].hi, "", 3, "]");
        joust_buf_printf(b, "</td><td>%.0f</td></tr>\n", n->score[m].comparisons);
    }
    joust_buf_puts(b, "</table></section>\n");
}

static void compare(joust_buf_t *b, const rep_report *r, const uint32_t *ord)
{
    const rep_night *n = r->today;
    const rep_compare *c = r->cmp;
    section(b, "compare", "Against the previous run");
    joust_buf_puts(b, "<p class=\"note\">Today (<b>");
    rep_html_esc(b, n->run_name);
    joust_buf_puts(b, "</b>) minus <b>");
    rep_html_esc(b, r->before_label);
    joust_buf_printf(b, "</b>, both fitted on the %zu prompts they share, paired bootstrap over those "
                        "prompts; <span class=\"bad\">red</span> = significant (95&nbsp;%% interval "
                        "excludes 0).</p>\n",
                     c->shared_prompts);
    forest(b, "score change against the previous run", n->models, ord, n->n_models, c->delta, c->lo,
           c->hi, c->significant);
    joust_buf_puts(b, "<table><tr><th>model</th><th>change</th><th>95&nbsp;% interval</th><th></th></tr>\n");
    for (uint32_t k = 0; k < n->n_models; k++) {
        uint32_t m = ord[k];
        joust_buf_puts(b, "<tr><td>");
        rep_html_esc(b, n->models[m]);
        joust_buf_puts(b, "</td><td>");
        numf(b, c->delta[m], "", 3, "");
        joust_buf_puts(b, "</td><td>");
        numf(b, c->lo[m], "[", 3, ", ");
        numf(b, c->hi[m], "", 3, "]");
        joust_buf_puts(b, "</td><td>");
        if (c->before_idx[m] < 0)
            joust_buf_puts(b, "new");
        else if (r->regressed && r->regressed[m])
            joust_buf_puts(b, "<span class=\"bad\">regression</span>");
        else if (c->significant[m])
            joust_buf_puts(b, c->delta[m] > 0 ? "<span class=\"good\">better</span>"
                                              : "<span class=\"bad\">worse</span>");
        joust_buf_puts(b, "</td></tr>\n");
    }
    joust_buf_puts(b, "</table></section>\n");
}

static const char *palette[] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                                "#e6ab02", "#a6761d", "#666666", "#1f78b4", "#b15928"};

static void trend(joust_buf_t *b, const rep_report *r)
{
    const rep_night *n = r->today;
    section(b, "trend", "Trend");
    joust_buf_puts(b, "<p class=\"note\">Anchored scores over the last runs of the series <b>");
    rep_html_esc(b, r->series);
    joust_buf_puts(b, "</b>.</p>\n");
    size_t T = r->n_trend;
    double *all = xmalloc(sizeof *all * (T * n->n_models + 1));
    for (size_t t = 0; t < T; t++)
        for (uint32_t m = 0; m < n->n_models; m++)
            all[t * n->n_models + m] = r->trend[t].theta[m];
    axis y = {0, 0, 0, 200};
    axis_fit(&y, all, T * n->n_models);
    free(all);
    int W = 640, H = 260, x0 = 50, x1 = 480;
    joust_buf_printf(b, "<svg class=\"plot\" role=\"img\" aria-label=\"trend\" width=\"%d\" height=\"%d\" "
                        "viewBox=\"0 0 %d %d\">", W, H, W, H);
#define TY(v) (220 - ((v) - y.lo) / (y.hi - y.lo) * 200)
#define TX(t) (T > 1 ? x0 + (double)(t) * (x1 - x0) / (double)(T - 1) : (x0 + x1) / 2.0)
    joust_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#888\"/>", x0, TY(0), x1,
                     TY(0));
    for (size_t t = 0; t < T; t++) {
        joust_buf_printf(b, "<text x=\"%.1f\" y=\"240\" font-size=\"9\" text-anchor=\"middle\">", TX(t));
        rep_html_esc(b, r->trend[t].run);
        joust_buf_puts(b, r->trend[t].complete ? "" : " (partial)");
        joust_buf_puts(b, "</text>");
    }
    joust_buf_printf(b, "<text x=\"4\" y=\"%.1f\" font-size=\"10\">%+.2g</text><text x=\"4\" y=\"%.1f\" "
                        "font-size=\"10\">%+.2g</text>", TY(y.hi) + 10, y.hi, TY(y.lo), y.lo);
    for (uint32_t m = 0; m < n->n_models; m++) {
        const char *col = palette[m % 10];
        joust_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (size_t t = 0; t < T; t++)
            if (isfinite(r->trend[t].theta[m]))
                joust_buf_printf(b, "%.1f,%.1f ", TX(t), TY(r->trend[t].theta[m]));
        joust_buf_puts(b, "\"/>");
        for (size_t t = 0; t < T; t++)
            if (isfinite(r->trend[t].theta[m]))
                joust_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", TX(t),
                                 TY(r->trend[t].theta[m]), col);
        joust_buf_printf(b, "<rect x=\"495\" y=\"%u\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                            "<text x=\"510\" y=\"%u\" font-size=\"11\">", 10 + 16 * m, col, 19 + 16 * m);
        rep_html_esc(b, n->models[m]);
        joust_buf_puts(b, "</text>");
    }
#undef TY
#undef TX
    joust_buf_puts(b, "</svg></section>\n");
}

static void heatmap(joust_buf_t *b, const rep_night *n, const uint32_t *ord)
{
    section(b, "winrate", "Pairwise win rates");
    joust_buf_puts(b, "<p class=\"note\">Row model's share of (soft) wins against the column model; "
                      "under it the 95&nbsp;% bootstrap interval over prompts (the same rounds as the score "
                      "intervals); hover a cell for the number of comparisons.</p>\n");
    uint32_t m = n->n_models;
    int cell = m > 12 ? 30 : 46, left = 160, top = 130;
    int W = left + (int)m * cell + 110, H = top + (int)m * cell + 10;
    joust_buf_printf(b, "<svg class=\"plot\" role=\"img\" aria-label=\"win-rate heatmap\" width=\"%d\" "
                        "height=\"%d\" viewBox=\"0 0 %d %d\">", W, H, W, H);
    for (uint32_t k = 0; k < m; k++) {
        joust_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">", left - 6,
                         top + (int)k * cell + cell / 2 + 4);
        rep_html_esc(b, n->models[ord[k]]);
        joust_buf_printf(b, "</text><text font-size=\"11\" transform=\"translate(%d,%d) rotate(-45)\">",
                         left + (int)k * cell + cell / 2, top - 6);
        rep_html_esc(b, n->models[ord[k]]);
        joust_buf_puts(b, "</text>");
    }
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < m; j++) {
            uint32_t a = ord[i], c = ord[j];
            double g = n->games[a * m + c], w = n->win[a * m + c], rate = g > 0 ? w / g : NAN;
            double lo = n->win_lo[a * m + c], hi = n->win_hi[a * m + c];
            joust_buf_printf(b, "<g><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"",
                             left + (int)j * cell, top + (int)i * cell, cell - 1, cell - 1);
            rate_colour(b, a == c ? NAN : rate);
            joust_buf_puts(b, "\"><title>");
            rep_html_esc(b, n->models[a]);
            joust_buf_puts(b, " vs ");
            rep_html_esc(b, n->models[c]);
            if (g > 0 && !isnan(lo))
                joust_buf_printf(b, ": %.1f%% [%.1f, %.1f], %.0f comparisons", 100 * rate, 100 * lo,
                                 100 * hi, g);
            else if (g > 0)
                joust_buf_printf(b, ": %.1f%%, %.0f comparisons", 100 * rate, g);
            joust_buf_puts(b, "</title></rect>");
            int two = cell > 40 && !isnan(lo); /* room for the interval under the rate */
            if (g > 0 && a != c)
                joust_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"%d\" text-anchor=\"middle\">%.0f</text>",
                                 left + (int)j * cell + cell / 2,
                                 top + (int)i * cell + cell / 2 + (two ? 0 : 4), cell > 40 ? 11 : 9,
                                 100 * rate);
            if (g > 0 && a != c && two)
                joust_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"8\" text-anchor=\"middle\">"
                                    "%.0f&#8211;%.0f</text>",
                                 left + (int)j * cell + cell / 2, top + (int)i * cell + cell / 2 + 12,
                                 100 * lo, 100 * hi);
            joust_buf_puts(b, "</g>");
        }
    joust_buf_puts(b, "</svg></section>\n");
}

static void categories(joust_buf_t *b, const rep_night *n, const char *by, const uint32_t *ord)
{
    section(b, "categories", "By category");
    joust_buf_puts(b, "<p class=\"note\">Scores fitted per value of the manifest field <b>");
    rep_html_esc(b, by);
    joust_buf_puts(b, "</b>, anchored as above, with 95&nbsp;% intervals.</p>\n<table><tr><th>");
    rep_html_esc(b, by);
    joust_buf_puts(b, "</th>");
    for (uint32_t k = 0; k < n->n_models; k++) {
        joust_buf_puts(b, "<th>");
        rep_html_esc(b, n->models[ord[k]]);
        joust_buf_puts(b, "</th>");
    }
    joust_buf_puts(b, "</tr>\n");
    for (uint32_t c = 0; c < n->n_cats; c++) {
        joust_buf_puts(b, "<tr><td>");
        rep_html_esc(b, n->cats[c].name);
        joust_buf_puts(b, "</td>");
        for (uint32_t k = 0; k < n->n_models; k++) {
            const joust_model_score *s = &n->cats[c].score[ord[k]];
            joust_buf_puts(b, "<td>");
            if (s->comparisons > 0) {
                numf(b, s->theta, "", 2, "");
                numf(b, s->lo, " <small>[", 2, ", ");
                numf(b, s->hi, "", 2, "]</small>");
            } else
                joust_buf_puts(b, "&ndash;");
            joust_buf_puts(b, "</td>");
        }
        joust_buf_puts(b, "</tr>\n");
    }
    joust_buf_puts(b, "</table></section>\n");
}

static double quant(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    return i + 1 < n ? v[i] + (pos - (double)i) * (v[i + 1] - v[i]) : v[i];
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void distributions(joust_buf_t *b, const rep_night *n, const uint32_t *ord)
{
    section(b, "distributions", "Score distributions");
    joust_buf_puts(b, "<p class=\"note\">Per-image scores (within-prompt Bradley&ndash;Terry, as stored "
                      "by the run) of each model's images: box = quartiles, whiskers = 5&ndash;95&nbsp;%, "
                      "dots = up to 120 images.</p>\n");
    uint32_t m = n->n_models;
    double **v = xcalloc(m + 1, sizeof *v);
    size_t *k = xcalloc(m + 1, sizeof *k);
    for (size_t i = 0; i < n->n_images; i++)
        if (n->img_model[i] != UINT32_MAX && isfinite(n->img_score[i]))
            k[n->img_model[i]]++;
    for (uint32_t j = 0; j < m; j++)
        v[j] = xmalloc(sizeof **v * (k[j] + 1)), k[j] = 0;
    for (size_t i = 0; i < n->n_images; i++)
        if (n->img_model[i] != UINT32_MAX && isfinite(n->img_score[i]))
            v[n->img_model[i]][k[n->img_model[i]]++] = n->img_score[i];
    double lohi[2] = {0, 0};
    for (uint32_t j = 0; j < m; j++) {
        qsort(v[j], k[j], sizeof **v, cmp_d);
        if (k[j]) {
            lohi[0] = v[j][0] < lohi[0] ? v[j][0] : lohi[0];
            lohi[1] = v[j][k[j] - 1] > lohi[1] ? v[j][k[j] - 1] : lohi[1];
        }
    }
    axis a = {0, 0, 170, 440};
    axis_fit(&a, lohi, 2);
    int rowh = 28, H = (int)m * rowh + 30;
    joust_buf_printf(b, "<svg class=\"plot\" role=\"img\" aria-label=\"score distributions\" width=\"640\" "
                        "height=\"%d\" viewBox=\"0 0 640 %d\">", H, H);
    axis_ticks(b, &a, 4, H - 22);
    for (uint32_t r = 0; r < m; r++) {
        uint32_t j = ord[r];
        int y = 16 + (int)r * rowh;
        joust_buf_printf(b, "<text x=\"164\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", y + 4);
        rep_html_esc(b, n->models[j]);
        joust_buf_printf(b, " (%zu)</text>", k[j]);
        if (!k[j])
            continue;
        double q05 = quant(v[j], k[j], .05), q25 = quant(v[j], k[j], .25), q50 = quant(v[j], k[j], .5),
               q75 = quant(v[j], k[j], .75), q95 = quant(v[j], k[j], .95);
        const char *col = palette[j % 10];
        joust_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#555\"/>", ax(&a, q05),
                         y, ax(&a, q95), y);
        joust_buf_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"14\" fill=\"%s\" "
                            "fill-opacity=\"0.35\" stroke=\"%s\"/>",
                         ax(&a, q25), y - 7, ax(&a, q75) - ax(&a, q25), col, col);
        joust_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\" stroke-width=\"2\"/>",
                         ax(&a, q50), y - 7, ax(&a, q50), y + 7);
        size_t step = k[j] > 120 ? k[j] / 120 : 1;
        for (size_t i = 0; i < k[j]; i += step)
            joust_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.6\" fill=\"%s\" fill-opacity=\"0.6\"/>",
                             ax(&a, v[j][i]), y - 9 + (double)((i * 7919) % 19) * 1.0, col);
    }
    joust_buf_puts(b, "</svg></section>\n");
    for (uint32_t j = 0; j < m; j++)
        free(v[j]);
    free(v);
    free(k);
}

static void health(joust_buf_t *b, const rep_night *n)
{
    section(b, "health", "Judge health");
    const joust_run_counts *c = &n->counts;
    char fail[256];
    joust_run_counts_format(c, fail, sizeof fail);
    uint64_t ok = n->kinds[1] + n->kinds[2] + n->kinds[3];
    joust_buf_puts(b, "<table>");
    joust_buf_printf(b, "<tr><th>outcomes</th><td>%llu OK, %llu failed (%s)</td></tr>\n",
                     (unsigned long long)c->ok, (unsigned long long)c->failed, fail);
    joust_buf_printf(b, "<tr><th>reused outcomes</th><td>%llu of the OK outcomes copied from earlier "
                        "runs (same judge settings, prompt and image contents), not judged again"
                        "</td></tr>\n", (unsigned long long)n->reused);
    joust_buf_printf(b, "<tr><th>position bias</th><td>mean P(first preferred) = %.3f "
                        "(0.5 = none)%s</td></tr>\n", n->p_first_mean,
                     fabs(n->p_first_mean - 0.5) > 0.1 && ok > 50 ? " <span class=\"bad\">strong</span>" : "");
    if (n->both_orders)
        joust_buf_printf(b, "<tr><th>order consistency</th><td>%.1f%% of %llu pairs judged in both orders "
                            "got the same winner</td></tr>\n",
                         100.0 * (double)n->agree / (double)n->both_orders, (unsigned long long)n->both_orders);
    else
        joust_buf_puts(b, "<tr><th>order consistency</th><td>no pair judged in both orders</td></tr>\n");
    joust_buf_printf(b, "<tr><th>outcome kinds</th><td>%llu soft, %llu bounded, %llu hard</td></tr>\n",
                     (unsigned long long)n->kinds[1], (unsigned long long)n->kinds[2],
                     (unsigned long long)n->kinds[3]);
    joust_buf_puts(b, "<tr><th>latency</th><td>");
    if (isnan(n->lat_ms[0]))
        joust_buf_puts(b, "not recorded");
    else
        joust_buf_printf(b, "p50 %.1f ms, p90 %.1f ms, p99 %.1f ms", n->lat_ms[0], n->lat_ms[1], n->lat_ms[2]);
    joust_buf_puts(b, "</td></tr>\n<tr><th>tokens</th><td>");
    if (n->tokens_n)
        joust_buf_printf(b, "%llu in all, %.1f per judged match", (unsigned long long)n->tokens_total,
                         (double)n->tokens_total / (double)n->tokens_n);
    else
        joust_buf_puts(b, "not recorded (the judge reports none)");
    joust_buf_puts(b, "</td></tr></table></section>\n");
}

static void image_cell(joust_buf_t *b, const rep_report *r, uint32_t i, const char *caption)
{
    const rep_night *n = r->today;
    joust_buf_puts(b, "<figure>");
    if (r->thumbs[i])
        joust_buf_printf(b, "<img src=\"%s\" alt=\"image %llu\">", r->thumbs[i],
                         (unsigned long long)n->img_id[i]);
    else {
        joust_buf_puts(b, "<div class=\"noimg\">");
        rep_html_esc(b, r->thumb_err[i] ? r->thumb_err[i] : "no thumbnail");
        joust_buf_puts(b, "</div>");
    }
    joust_buf_puts(b, "<figcaption>");
    rep_html_esc(b, n->img_model[i] != UINT32_MAX ? n->models[n->img_model[i]] : "(no model)");
    if (caption)
        rep_html_esc(b, caption);
    joust_buf_puts(b, "</figcaption></figure>");
}

static void match_row(joust_buf_t *b, const rep_report *r, const rep_match *mt)
{
    joust_buf_puts(b, "<div class=\"match\">");
    image_cell(b, r, mt->first, " (first)");
    image_cell(b, r, mt->second, " (second)");
    joust_buf_printf(b, "<div class=\"why\"><b>P(first) = %.2f</b> &middot; match %llu<br>", mt->p_first,
                     (unsigned long long)mt->match_id);
    rep_html_esc(b, mt->reason ? mt->reason : "(the judge gave no reasoning)");
    joust_buf_puts(b, "</div></div>\n");
}

static void gallery(joust_buf_t *b, const rep_report *r)
{
    const rep_night *n = r->today;
    section(b, "gallery", "Why: matches and images");
    for (size_t p = 0; p < r->n_pairs; p++) {
        const rep_pair_gallery *g = &r->pairs[p];
        joust_buf_puts(b, p == 0 ? "<details open><summary>" : "<details><summary>");
        rep_html_esc(b, n->models[g->a]);
        joust_buf_puts(b, " vs ");
        rep_html_esc(b, n->models[g->b]);
        joust_buf_puts(b, "</summary>\n<h4>most decisive</h4>\n");
        for (size_t j = 0; j < g->n_decisive; j++)
            match_row(b, r, &g->decisive[j]);
        joust_buf_puts(b, "<h4>closest</h4>\n");
        for (size_t j = 0; j < g->n_closest; j++)
            match_row(b, r, &g->closest[j]);
        joust_buf_puts(b, "</details>\n");
    }
    for (size_t p = 0; p < r->n_prompts; p++) {
        const rep_prompt_gallery *g = &r->prompts[p];
        joust_buf_puts(b, "<h3>Prompt: ");
        rep_html_esc(b, g->text ? g->text : "(no text)");
        joust_buf_puts(b, "</h3><div class=\"strip\">");
        for (size_t j = 0; j < g->n; j++) {
            char cap[64];
            if (isfinite(n->img_score[g->images[j]]))
                snprintf(cap, sizeof cap, " #%zu %+.2f", j + 1, n->img_score[g->images[j]]);
            else
                snprintf(cap, sizeof cap, " #%zu", j + 1);
            image_cell(b, r, g->images[j], cap);
        }
        joust_buf_puts(b, "</div>\n");
    }
    joust_buf_puts(b, "</section>\n");
}

static const char css[] =
    "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;"
    "font-size:13px;text-align:left}th{background:#f4f4f4}.note{color:#555;font-size:13px}"
    ".tag{background:#eee;border-radius:3px;padding:0 4px;font-size:11px}.bad{color:#b2182b;"
    "font-weight:bold}.good{color:#1a9850;font-weight:bold}.partial{background:#fff3cd;border:1px "
    "solid #e0c060;padding:8px;border-radius:4px}figure{display:inline-block;margin:4px;text-align:"
    "center;font-size:11px;vertical-align:top}figure img{display:block;border:1px solid #ccc}"
    ".noimg{width:96px;height:96px;background:#eee;font-size:10px;overflow:hidden}.match{display:flex;"
    "gap:8px;align-items:flex-start;margin:6px 0}.why{font-size:12px;max-width:520px;white-space:"
    "pre-wrap}summary{cursor:pointer;font-weight:bold;margin:6px 0}svg.plot{display:block;margin:6px 0}";

int rep_write_html(const rep_report *r, const char *path)
{
    const rep_night *n = r->today;
    joust_buf_t b = {0};
    joust_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                       "img-src data:; style-src 'unsafe-inline'\">\n<title>joust report: ");
    rep_html_esc(&b, n->run_name);
    joust_buf_printf(&b, "</title><style>%s</style></head><body>\n<h1>joust report: ", css);
    rep_html_esc(&b, n->run_name);
    joust_buf_puts(&b, "</h1>\n<p class=\"note\">judge <b>");
    rep_html_esc(&b, n->judge);
    joust_buf_printf(&b, "</b> &middot; %u models &middot; %zu prompts &middot; %zu images &middot; "
                         "%llu OK outcomes of %llu planned matches</p>\n",
                     n->n_models, n->n_prompts, n->n_images, (unsigned long long)n->counts.ok,
                     (unsigned long long)n->planned);
    if (!n->complete)
        joust_buf_puts(&b, "<p class=\"partial\" id=\"partial\"><b>Partial:</b> this run is still in "
                           "progress (or was stopped); the numbers cover the outcomes so far.</p>\n");
    if (r->gate && r->n_regressed)
        joust_buf_printf(&b, "<p class=\"partial bad\">%d watched model(s) regressed by more than %.3f.</p>\n",
                         r->n_regressed, r->margin);
    uint32_t *ord = model_order(n);
    if (n->n_models < 2)
        joust_buf_puts(&b, "<p>Fewer than two models were compared; there are no model scores.</p>\n");
    else {
        scores(&b, r, ord);
        if (r->cmp)
            compare(&b, r, ord);
        if (r->n_trend)
            trend(&b, r);
        heatmap(&b, n, ord);
        if (n->n_cats)
            categories(&b, n, r->by ? r->by : "", ord);
        distributions(&b, n, ord);
    }
    health(&b, n);
    if (r->eval)
        rep_eval_html(&b, r->eval, r->eval_path);
    gallery(&b, r);
    joust_buf_puts(&b, "<p class=\"note\">Every number is in report.json beside this file.</p>\n</body></html>\n");
    free(ord);
    joust_outfile_t *f;
    int rc = joust_outfile_open(path, &f);
    if (rc == 0) {
        joust_outfile_write(f, b.data, b.len);
        rc = joust_outfile_commit(&f);
    }
    joust_buf_free(&b);
    return rc;
}
