/* report.json (every number) and report.md (a short summary) (report.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "output.h"
#include "report.h"
#include "xalloc.h"

/* NaN becomes null (cJSON prints non-finite numbers as null). */
static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *score_obj(const char *name, const joust_model_score *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", name);
    add_num(o, "score", s->theta);
    add_num(o, "lo", s->lo);
    add_num(o, "hi", s->hi);
    add_num(o, "sd", s->sd);
    cJSON_AddNumberToObject(o, "comparisons", s->comparisons);
    cJSON_AddNumberToObject(o, "component", s->component);
    return o;
}

static cJSON *match_obj(const rep_report *r, const rep_match *m)
{
    const rep_night *n = r->today;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "match", (double)m->match_id);
    cJSON_AddNumberToObject(o, "first_image", (double)n->img_id[m->first]);
    cJSON_AddNumberToObject(o, "second_image", (double)n->img_id[m->second]);
    cJSON_AddNumberToObject(o, "p_first", m->p_first);
    if (m->reason)
        cJSON_AddStringToObject(o, "reason", m->reason);
    else
        cJSON_AddNullToObject(o, "reason");
    return o;
}

int rep_write_json(const rep_report *r, const char *path)
{
    const rep_night *n = r->today;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "run", n->run_name);
    cJSON_AddStringToObject(root, "judge", n->judge);
    cJSON_AddBoolToObject(root, "partial", !n->complete);
    cJSON_AddNumberToObject(root, "created_ms", (double)n->created_ms);
    cJSON_AddNumberToObject(root, "planned_matches", (double)n->planned);
    cJSON_AddNumberToObject(root, "prompts", (double)n->n_prompts);
    cJSON_AddNumberToObject(root, "images", (double)n->n_images);
    if (n->baseline >= 0)
        cJSON_AddStringToObject(root, "baseline", n->models[n->baseline]);
    else
        cJSON_AddNullToObject(root, "baseline");
    cJSON_AddNumberToObject(root, "components", n->components);
    cJSON *models = cJSON_AddArrayToObject(root, "models");
    for (uint32_t m = 0; m < n->n_models; m++)
        cJSON_AddItemToArray(models, score_obj(n->models[m], &n->score[m]));

    cJSON *wm = cJSON_AddObjectToObject(root, "win_rates");
    cJSON *rows = cJSON_AddArrayToObject(wm, "rows");
    for (uint32_t a = 0; a < n->n_models; a++)
        for (uint32_t b = 0; b < n->n_models; b++) {
            double g = n->games[a * n->n_models + b], w = n->win[a * n->n_models + b];
            double lo = n->win_lo[a * n->n_models + b], hi = n->win_hi[a * n->n_models + b];
            if (a == b || !(g > 0))
                continue;
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "model", n->models[a]);
            cJSON_AddStringToObject(c, "against", n->models[b]);
            cJSON_AddNumberToObject(c, "wins", w);
            cJSON_AddNumberToObject(c, "comparisons", g);
            add_num(c, "rate", w / g);
            add_num(c, "lo", lo);
            add_num(c, "hi", hi);
            cJSON_AddItemToArray(rows, c);
        }
    cJSON_AddStringToObject(wm, "interval", "95% percentile bootstrap over prompts (the score intervals' rounds)");

    if (r->by) {
        cJSON *cats = cJSON_AddObjectToObject(root, "categories");
        cJSON_AddStringToObject(cats, "field", r->by);
        cJSON *vals = cJSON_AddArrayToObject(cats, "values");
        for (uint32_t c = 0; c < n->n_cats; c++) {
            cJSON *v = cJSON_CreateObject();
            cJSON_AddStringToObject(v, "value", n->cats[c].name);
            cJSON *ms = cJSON_AddArrayToObject(v, "models");
            for (uint32_t m = 0; m < n->n_models; m++) {
                cJSON *s = score_obj(n->models[m], &n->cats[c].score[m]);
                cJSON_AddNumberToObject(s, "prompts", n->cats[c].prompts[m]);
                cJSON_AddItemToArray(ms, s);
            }
            cJSON_AddItemToArray(vals, v);
        }
    }

    cJSON *h = cJSON_AddObjectToObject(root, "judge_health");
    const joust_run_counts *c = &n->counts;
    cJSON_AddNumberToObject(h, "ok", (double)c->ok);
    cJSON_AddNumberToObject(h, "failed", (double)c->failed);
    cJSON_AddNumberToObject(h, "image_error", (double)c->image_error);
    cJSON_AddNumberToObject(h, "unparseable", (double)c->unparseable);
    cJSON_AddNumberToObject(h, "infra_error", (double)c->infra_error);
    cJSON_AddNumberToObject(h, "config_error", (double)c->config_error);
    cJSON_AddNumberToObject(h, "abandoned", (double)c->abandoned);
    cJSON_AddNumberToObject(h, "p_first_mean", n->p_first_mean);
    cJSON_AddNumberToObject(h, "pairs_both_orders", (double)n->both_orders);
    cJSON_AddNumberToObject(h, "pairs_same_winner", (double)n->agree);
    add_num(h, "order_consistency", n->both_orders ? (double)n->agree / (double)n->both_orders : NAN);
    cJSON_AddNumberToObject(h, "soft", (double)n->kinds[1]);
    cJSON_AddNumberToObject(h, "bounded", (double)n->kinds[2]);
    cJSON_AddNumberToObject(h, "hard", (double)n->kinds[3]);
    add_num(h, "latency_ms_p50", n->lat_ms[0]);
    add_num(h, "latency_ms_p90", n->lat_ms[1]);
    add_num(h, "latency_ms_p99", n->lat_ms[2]);
    cJSON_AddNumberToObject(h, "tokens_total", (double)n->tokens_total);
    cJSON_AddNumberToObject(h, "outcomes_with_tokens", (double)n->tokens_n);
    cJSON_AddNumberToObject(h, "outcomes_reused", (double)n->reused);

    if (r->cmp) {
        cJSON *cmp = cJSON_AddObjectToObject(root, "compare");
        cJSON_AddStringToObject(cmp, "against", r->before_label);
        cJSON_AddNumberToObject(cmp, "shared_prompts", (double)r->cmp->shared_prompts);
        cJSON *ms = cJSON_AddArrayToObject(cmp, "models");
        for (uint32_t m = 0; m < n->n_models; m++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "model", n->models[m]);
            cJSON_AddBoolToObject(o, "in_both", r->cmp->before_idx[m] >= 0);
            add_num(o, "delta", r->cmp->delta[m]);
            add_num(o, "lo", r->cmp->lo[m]);
            add_num(o, "hi", r->cmp->hi[m]);
            cJSON_AddBoolToObject(o, "significant", r->cmp->significant[m]);
            if (r->gate) {
                cJSON_AddBoolToObject(o, "watched", r->watched[m]);
                cJSON_AddBoolToObject(o, "regressed", r->regressed[m]);
            }
            cJSON_AddItemToArray(ms, o);
        }
    }
    if (r->gate) {
        cJSON *g = cJSON_AddObjectToObject(root, "regression_gate");
        cJSON_AddNumberToObject(g, "margin", r->margin);
        cJSON_AddNumberToObject(g, "regressed", r->n_regressed);
    }
    if (r->n_trend) {
        cJSON *t = cJSON_AddObjectToObject(root, "trend");
        cJSON_AddStringToObject(t, "series", r->series);
        cJSON *runs = cJSON_AddArrayToObject(t, "runs");
        for (size_t i = 0; i < r->n_trend; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "run", r->trend[i].run);
            cJSON_AddBoolToObject(o, "partial", !r->trend[i].complete);
            cJSON *ms = cJSON_AddArrayToObject(o, "models");
            for (uint32_t m = 0; m < n->n_models; m++) {
                cJSON *s = cJSON_CreateObject();
                cJSON_AddStringToObject(s, "model", n->models[m]);
                add_num(s, "score", r->trend[i].theta[m]);
                add_num(s, "lo", r->trend[i].lo[m]);
                add_num(s, "hi", r->trend[i].hi[m]);
                cJSON_AddItemToArray(ms, s);
            }
            cJSON_AddItemToArray(runs, o);
        }
    }
    cJSON *gal = cJSON_AddArrayToObject(root, "gallery");
    for (size_t p = 0; p < r->n_pairs; p++) {
        const rep_pair_gallery *g = &r->pairs[p];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model_a", n->models[g->a]);
        cJSON_AddStringToObject(o, "model_b", n->models[g->b]);
        cJSON *d = cJSON_AddArrayToObject(o, "decisive"), *cl = cJSON_AddArrayToObject(o, "closest");
        for (size_t j = 0; j < g->n_decisive; j++)
            cJSON_AddItemToArray(d, match_obj(r, &g->decisive[j]));
        for (size_t j = 0; j < g->n_closest; j++)
            cJSON_AddItemToArray(cl, match_obj(r, &g->closest[j]));
        cJSON_AddItemToArray(gal, o);
    }
    cJSON *gp = cJSON_AddArrayToObject(root, "gallery_prompts");
    for (size_t p = 0; p < r->n_prompts; p++) {
        const rep_prompt_gallery *g = &r->prompts[p];
        cJSON *o = cJSON_CreateObject();
        if (g->caller_id)
            cJSON_AddStringToObject(o, "prompt_id", g->caller_id);
        else
            cJSON_AddNullToObject(o, "prompt_id");
        cJSON_AddStringToObject(o, "prompt", g->text ? g->text : "");
        cJSON *im = cJSON_AddArrayToObject(o, "images"); /* best score first */
        for (size_t j = 0; j < g->n; j++) {
            uint32_t i = g->images[j];
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "image", (double)n->img_id[i]);
            cJSON_AddStringToObject(x, "model",
                                    n->img_model[i] == UINT32_MAX ? "" : n->models[n->img_model[i]]);
            add_num(x, "score", n->img_score[i]);
            cJSON_AddItemToArray(im, x);
        }
        cJSON_AddItemToArray(gp, o);
    }
    if (r->eval)
        cJSON_AddItemToObject(root, "eval", cJSON_Duplicate(r->eval, 1));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) { /* cJSON allocates with malloc: out of memory, as xmalloc */
        fputs("joust: out of memory\n", stderr);
        abort();
    }
    size_t len = strlen(text);
    text[len] = '\0';
    joust_buf_t b = {0};
    joust_buf_append(&b, text, len);
    joust_buf_puts(&b, "\n");
    free(text);
    int rc = joust_outfile_write_all(path, b.data, b.len);
    joust_buf_free(&b);
    return rc;
}

int rep_write_md(const rep_report *r, const char *path)
{
    const rep_night *n = r->today;
    joust_buf_t b = {0};
    joust_buf_printf(&b, "## joust report: %s%s\n\n", n->run_name, n->complete ? "" : " (partial)");
    joust_buf_printf(&b, "judge `%s`, %u models, %zu prompts, %zu images, %llu OK outcomes",
                     n->judge, n->n_models, n->n_prompts, n->n_images, (unsigned long long)n->counts.ok);
    if (n->counts.failed)
        joust_buf_printf(&b, ", %llu failed", (unsigned long long)n->counts.failed);
    joust_buf_puts(&b, ".\n");
    if (n->baseline >= 0)
        joust_buf_printf(&b, "Scores anchored to `%s` (= 0), 95 %% bootstrap intervals over prompts.\n",
                         n->models[n->baseline]);
    else
        joust_buf_puts(&b, "Scores centred on the models' mean, 95 % bootstrap intervals over prompts.\n");
    if (r->cmp)
        joust_buf_printf(&b, "Change against `%s` over %zu shared prompts (paired bootstrap).\n",
                         r->before_label, r->cmp->shared_prompts);
    joust_buf_puts(&b, "\n| model | score | 95 % interval |");
    if (r->cmp)
        joust_buf_puts(&b, " change | 95 % interval | |");
    joust_buf_puts(&b, "\n|---|---:|---|");
    if (r->cmp)
        joust_buf_puts(&b, "---:|---|---|");
    joust_buf_puts(&b, "\n");
    uint32_t *ord = xmalloc(sizeof *ord * (n->n_models + 1));
    for (uint32_t m = 0; m < n->n_models; m++)
        ord[m] = m;
    for (uint32_t i = 1; i < n->n_models; i++) /* insertion sort by score, descending */
        for (uint32_t j = i; j > 0 && n->score[ord[j]].theta > n->score[ord[j - 1]].theta; j--) {
            uint32_t t = ord[j];
            ord[j] = ord[j - 1], ord[j - 1] = t;
        }
    for (uint32_t k = 0; k < n->n_models; k++) {
        uint32_t m = ord[k];
        const joust_model_score *s = &n->score[m];
        joust_buf_printf(&b, "| %s%s | %+.3f | ", n->models[m], (int32_t)m == n->baseline ? " (baseline)" : "",
                         s->theta);
        if (isfinite(s->lo))
            joust_buf_printf(&b, "[%+.3f, %+.3f] |", s->lo, s->hi);
        else
            joust_buf_puts(&b, "– |");
        if (r->cmp) {
            const rep_compare *c = r->cmp;
            if (isfinite(c->delta[m]))
                joust_buf_printf(&b, " %+.3f | [%+.3f, %+.3f] | %s |", c->delta[m], c->lo[m], c->hi[m],
                                 r->regressed && r->regressed[m] ? "**regression**"
                                 : c->significant[m]             ? (c->delta[m] > 0 ? "better" : "worse")
                                                                 : "");
            else
                joust_buf_puts(&b, " – | – | new |");
        }
        joust_buf_puts(&b, "\n");
    }
    free(ord);
    if (r->gate)
        joust_buf_printf(&b, "\nRegression gate (margin %.3f): %d watched model(s) regressed.\n", r->margin,
                         r->n_regressed);
    joust_buf_printf(&b, "\nJudge: position bias %.3f (mean P(first)), ", n->p_first_mean);
    if (n->both_orders)
        joust_buf_printf(&b, "order consistency %.1f %%, ", 100.0 * (double)n->agree / (double)n->both_orders);
    joust_buf_printf(&b, "kinds %llu soft / %llu bounded / %llu hard.\n", (unsigned long long)n->kinds[1],
                     (unsigned long long)n->kinds[2], (unsigned long long)n->kinds[3]);
    if (n->reused)
        joust_buf_printf(&b, "%llu outcomes reused from earlier runs (same judge settings and image contents), not judged again.\n",
                         (unsigned long long)n->reused);
    if (r->eval)
        rep_eval_md(&b, r->eval);
    int rc = joust_outfile_write_all(path, b.data, b.len);
    joust_buf_free(&b);
    return rc;
}
