/* The report's gallery: matches per model pair, prompts in rank order, and
 * their thumbnails (report.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "image.h"
#include "log.h"
#include "openai_prep.h"
#include "records.h"
#include "report.h"
#include "xalloc.h"

#define REASON_MAX 400

typedef struct {
    double key;
    size_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static char *excerpt(joust_store_t *st, uint32_t run_id, uint64_t match_id)
{
    char *text = NULL;
    size_t len = 0;
    if (joust_rec_rationale_get(st, run_id, match_id, &text, &len) < 0)
        return NULL;
    if (len > REASON_MAX) {
        size_t cut = REASON_MAX;
        while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
            cut--; /* do not split a UTF-8 sequence */
        memcpy(text + cut, "\xE2\x80\xA6", 4);
    }
    return text;
}

static void pick(joust_store_t *st, const rep_night *n, uint32_t run_id, ranked *v, size_t k,
                 size_t want, rep_match **out, size_t *nout)
{
    *nout = k < want ? k : want;
    if (want <= 16) { /* the few smallest by selection: O(k * want), no full sort */
        for (size_t j = 0; j < *nout; j++) {
            size_t best = j;
            for (size_t t = j + 1; t < k; t++)
                if (cmp_ranked(&v[t], &v[best]) < 0)
                    best = t;
            ranked tmp = v[j];
            v[j] = v[best], v[best] = tmp;
        }
    } else
        qsort(v, k, sizeof *v, cmp_ranked);
    *out = xcalloc(*nout + 1, sizeof **out);
    for (size_t j = 0; j < *nout; j++) {
        const rep_outcome *o = &n->out[v[j].i];
        (*out)[j] = (rep_match){o->match_id, o->first, o->second, o->p_first,
                                excerpt(st, run_id, o->match_id)};
    }
}


static const double *sort_scores;

static int cmp_by_score(const void *a, const void *b)
{
    double x = sort_scores[*(const uint32_t *)a], y = sort_scores[*(const uint32_t *)b];
    if (isnan(x) != isnan(y))
        return isnan(x) ? 1 : -1;
    if (x != y)
        return x > y ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static void thumb(joust_store_t *st, const rep_night *n, size_t i, const rep_gallery_opts *o,
                  rep_report *r)
{
    if (r->thumbs[i] || r->thumb_err[i])
        return;
    Joust__ImageRecord *img = NULL;
    char err[256] = "";
    if (r->thumb_bytes >= o->thumb_budget) {
        snprintf(err, sizeof err, "left out: the page's thumbnail budget (%zu bytes) is spent",
                 o->thumb_budget);
        r->thumb_err[i] = xstrdup(err);
        return;
    }
    int rc = joust_rec_image_get(st, n->img_id[i], &img);
    if (rc < 0) {
        snprintf(err, sizeof err, "no image record: %s", joust_strerror(rc));
        goto fail;
    }
    char path[4096];
    if (img->uri[0] != '/' && o->image_root && !strstr(img->uri, "://"))
        snprintf(path, sizeof path, "%s/%s", o->image_root, img->uri);
    else
        snprintf(path, sizeof path, "%s", img->uri);
    joust_image_limits lim;
    joust_image_limits_defaults(&lim);
    joust_image full = {0}, small = {0};
    if ((rc = joust_image_load(path, &lim, &full, err, sizeof err)) < 0)
        goto fail;
    int side = o->thumb_side, w = full.w, h = full.h;
    if (w >= h && w > side) {
        h = (int)((double)h * side / w + 0.5), w = side;
    } else if (h > w && h > side) {
        w = (int)((double)w * side / h + 0.5), h = side;
    }
    w = w < 1 ? 1 : w;
    h = h < 1 ? 1 : h;
    unsigned char *jpg = NULL;
    size_t jlen = 0;
    rc = joust_image_resize(&full, w, h, &small);
    joust_image_free(&full);
    if (rc == 0)
        rc = joust_image_encode_jpeg(&small, o->thumb_quality, 0, &jpg, &jlen);
    joust_image_free(&small);
    if (rc < 0) {
        snprintf(err, sizeof err, "cannot make a thumbnail: %s", joust_strerror(rc));
        goto fail;
    }
    static const char prefix[] = "data:image/jpeg;base64,";
    char *url = xmalloc(sizeof prefix + 4 * ((jlen + 2) / 3) + 1);
    memcpy(url, prefix, sizeof prefix - 1);
    size_t len = joust_base64_encode(jpg, jlen, url + sizeof prefix - 1);
    url[sizeof prefix - 1 + len] = '\0';
    free(jpg);
    r->thumbs[i] = url;
    r->thumb_bytes += len;
    joust_rec_free(img);
    return;
fail:
    if (!r->thumb_failed++) /* the first reason; the count is logged at the end */
        log_warn("report: no thumbnail for image %llu: %s", (unsigned long long)n->img_id[i], err);
    r->thumb_err[i] = xstrdup(err);
    joust_rec_free(img);
}

/* Index of the model named by s[0..len), or -1. */
static int32_t model_named(const rep_night *n, const char *s, size_t len)
{
    for (uint32_t m = 0; m < n->n_models; m++)
        if (strlen(n->models[m]) == len && !memcmp(n->models[m], s, len))
            return (int32_t)m;
    return -1;
}

/* Index of model pair a < b among the m(m-1)/2 pairs. */
static size_t pair_index(uint32_t m, uint32_t a, uint32_t b)
{
    return (size_t)a * m - (size_t)a * (a + 1) / 2 + (b - a - 1);
}

/* Marks in want[] the pairs of --gallery-pair "A,B" (split at the comma
 * where both sides name a model, so a name may hold a comma). */
static int select_pairs(const rep_night *n, const rep_gallery_opts *o, char *want)
{
    for (size_t k = 0; k < o->n_pair_sel; k++) {
        const char *spec = o->pair_sel[k], *comma = strchr(spec, ',');
        int32_t a = -1, b = -1;
        for (const char *c = comma; c && (a < 0 || b < 0); c = strchr(c + 1, ',')) {
            a = model_named(n, spec, (size_t)(c - spec));
            b = model_named(n, c + 1, strlen(c + 1));
        }
        if (a < 0 || b < 0) {
            joust_buf_t names = {0};
            for (uint32_t m = 0; m < n->n_models; m++)
                joust_buf_printf(&names, "%s%s", m ? ", " : "", n->models[m]);
            if (!comma)
                log_error("report: --gallery-pair '%s' is not two models A,B", spec);
            else if (model_named(n, spec, (size_t)(comma - spec)) < 0)
                log_error("report: --gallery-pair '%s': run '%s' has no model named '%.*s' (its "
                          "models: %s)", spec, n->run_name, (int)(comma - spec), spec,
                          names.len ? names.data : "none");
            else
                log_error("report: --gallery-pair '%s': run '%s' has no model named '%s' (its "
                          "models: %s)", spec, n->run_name, comma + 1, names.len ? names.data : "none");
            joust_buf_free(&names);
            return JOUST_EINVAL;
        }
        if (a == b) {
            log_error("report: --gallery-pair '%s' names model '%s' twice", spec, n->models[a]);
            return JOUST_EINVAL;
        }
        want[a < b ? pair_index(n->n_models, (uint32_t)a, (uint32_t)b)
                   : pair_index(n->n_models, (uint32_t)b, (uint32_t)a)] = 1;
    }
    return 0;
}

static int view_is(joust_str_view v, const char *s)
{
    return v.len == strlen(s) && (!v.len || !memcmp(v.s, s, v.len));
}

/* The dense prompts of --gallery-prompt ID (a prompt's manifest prompt_id,
 * or its text when it has none), in the order given, each once: one walk
 * over the store's prompt records. */
static int select_prompts(joust_store_t *st, const rep_night *n, const rep_gallery_opts *o,
                          uint32_t *out, size_t *nout)
{
    size_t ns = o->n_prompt_sel;
    uint32_t *idx = xmalloc(sizeof *idx * (ns + 1));
    for (size_t k = 0; k < ns; k++)
        idx[k] = UINT32_MAX;
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new_scan(st, JOUST_REC_PROMPTS, 0, &c);
    for (; rc == 0 && joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        size_t p = rep_night_prompt(n, joust_rec_cursor_id(c)), len;
        if (p == SIZE_MAX)
            continue; /* not a prompt of this run */
        const void *bytes = joust_rec_cursor_bytes(c, &len);
        joust_prompt_view pv;
        if (joust_rec_prompt_view(bytes, len, &pv) < 0)
            continue;
        for (size_t k = 0; k < ns; k++)
            if (idx[k] == UINT32_MAX &&
                view_is(pv.caller_id.len ? pv.caller_id : pv.text, o->prompt_sel[k]))
                idx[k] = (uint32_t)p;
    }
    if (rc == 0) {
        rc = joust_rec_cursor_error(c);
        joust_rec_cursor_destroy(&c);
    }
    *nout = 0;
    for (size_t k = 0; k < ns && rc == 0; k++) {
        if (idx[k] == UINT32_MAX) {
            log_error("report: --gallery-prompt '%s': run '%s' has no prompt with that prompt_id "
                      "(or, for a prompt without one, that text)", o->prompt_sel[k], n->run_name);
            rc = JOUST_EINVAL;
            break;
        }
        int dup = 0;
        for (size_t j = 0; j < *nout; j++)
            dup |= out[j] == idx[k];
        if (!dup)
            out[(*nout)++] = idx[k];
    }
    free(idx);
    return rc;
}

int rep_gallery_build(joust_store_t *st, uint32_t run_id, const rep_gallery_opts *o, rep_report *r)
{
    const rep_night *n = r->today;
    uint32_t m = n->n_models;
    r->thumbs = xcalloc(n->n_images + 1, sizeof *r->thumbs);
    r->thumb_err = xcalloc(n->n_images + 1, sizeof *r->thumb_err);
    char *want = NULL; /* per model pair: shown (only with --gallery-pair) */
    if (o->n_pair_sel) {
        want = xcalloc(m * (size_t)m / 2 + 1, 1);
        if (select_pairs(n, o, want) < 0) {
            free(want);
            return JOUST_EINVAL;
        }
    }
    uint32_t *shown = xmalloc(sizeof *shown * (o->n_prompt_sel + 1));
    size_t nshown = 0;
    if (o->n_prompt_sel) {
        int rc = select_prompts(st, n, o, shown, &nshown);
        if (rc < 0) {
            free(want);
            free(shown);
            return rc;
        }
    }
    if (o->per_pair > 0 && m >= 2) {
        /* outcomes per model pair: one pass bucketing by pair */
        size_t np = (size_t)m * (m - 1) / 2;
        size_t *count = xcalloc(np + 1, sizeof *count), *start = xcalloc(np + 2, sizeof *start);
        size_t *pair_of = xmalloc(sizeof *pair_of * (n->n_out + 1));
        for (size_t i = 0; i < n->n_out; i++) {
            uint32_t a = n->img_model[n->out[i].first], b = n->img_model[n->out[i].second];
            pair_of[i] = SIZE_MAX;
            if (a == UINT32_MAX || b == UINT32_MAX || a == b)
                continue;
            if (a > b) {
                uint32_t t = a;
                a = b, b = t;
            }
            pair_of[i] = pair_index(m, a, b);
            count[pair_of[i]]++;
        }
        for (size_t p = 0; p < np; p++)
            start[p + 1] = start[p] + count[p];
        ranked *v = xmalloc(sizeof *v * (n->n_out + 1)), *w = xmalloc(sizeof *w * (n->n_out + 1));
        size_t *fill = xcalloc(np + 1, sizeof *fill);
        for (size_t i = 0; i < n->n_out; i++)
            if (pair_of[i] != SIZE_MAX)
                v[start[pair_of[i]] + fill[pair_of[i]]++] = (ranked){0, i};
        r->pairs = xcalloc(np + 1, sizeof *r->pairs);
        for (uint32_t a = 0; a < m; a++)
            for (uint32_t b = a + 1; b < m; b++) {
                size_t p = pair_index(m, a, b), k = count[p];
                if (!k || (want && !want[p]))
                    continue;
                rep_pair_gallery *g = &r->pairs[r->n_pairs++];
                g->a = a;
                g->b = b;
                ranked *seg = v + start[p];
                for (size_t j = 0; j < k; j++) {
                    double d = fabs(n->out[seg[j].i].p_first - 0.5);
                    seg[j].key = d;
                    w[j] = (ranked){-d, seg[j].i};
                }
                pick(st, n, run_id, seg, k, o->per_pair, &g->closest, &g->n_closest);
                pick(st, n, run_id, w, k, o->per_pair, &g->decisive, &g->n_decisive);
                for (size_t j = 0; j < g->n_closest; j++) {
                    thumb(st, n, g->closest[j].first, o, r);
                    thumb(st, n, g->closest[j].second, o, r);
                }
                for (size_t j = 0; j < g->n_decisive; j++) {
                    thumb(st, n, g->decisive[j].first, o, r);
                    thumb(st, n, g->decisive[j].second, o, r);
                }
            }
        free(v);
        free(w);
        free(fill);
        free(count);
        free(start);
        free(pair_of);
    }
    /* the selected prompts, else the first `prompts` by id */
    size_t np = o->n_prompt_sel ? nshown : o->prompts < n->n_prompts ? o->prompts : n->n_prompts;
    r->prompts = xcalloc(np + 1, sizeof *r->prompts);
    if (np) {
        for (size_t k = 0; k < np; k++) {
            uint32_t p = o->n_prompt_sel ? shown[k] : (uint32_t)k;
            rep_prompt_gallery *g = &r->prompts[r->n_prompts++];
            g->prompt = p;
            g->images = xmalloc(sizeof *g->images * (n->n_images + 1));
            for (size_t i = 0; i < n->n_images; i++)
                if (n->img_prompt[i] == p)
                    g->images[g->n++] = (uint32_t)i;
            sort_scores = n->img_score;
            qsort(g->images, g->n, sizeof *g->images, cmp_by_score);
            Joust__PromptRecord *pr = NULL;
            if (joust_rec_prompt_get(st, n->prompt_id[p], &pr) == 0) {
                g->text = xstrdup(pr->text);
                if (pr->caller_id && *pr->caller_id)
                    g->caller_id = xstrdup(pr->caller_id);
                joust_rec_free(pr);
            }
            for (size_t j = 0; j < g->n; j++)
                thumb(st, n, g->images[j], o, r);
        }
    }
    if (r->thumb_failed > 1)
        log_warn("report: %zu images have no thumbnail (each shows its reason in the page)",
                 r->thumb_failed);
    free(want);
    free(shown);
    return 0;
}

void rep_report_clear(rep_report *r)
{
    for (size_t p = 0; p < r->n_pairs; p++) {
        for (size_t j = 0; j < r->pairs[p].n_closest; j++)
            free(r->pairs[p].closest[j].reason);
        for (size_t j = 0; j < r->pairs[p].n_decisive; j++)
            free(r->pairs[p].decisive[j].reason);
        free(r->pairs[p].closest);
        free(r->pairs[p].decisive);
    }
    free(r->pairs);
    for (size_t p = 0; p < r->n_prompts; p++) {
        free(r->prompts[p].text);
        free(r->prompts[p].caller_id);
        free(r->prompts[p].images);
    }
    free(r->prompts);
    if (r->today && r->thumbs)
        for (size_t i = 0; i < r->today->n_images; i++) {
            free(r->thumbs[i]);
            free(r->thumb_err[i]);
        }
    free(r->thumbs);
    free(r->thumb_err);
    for (size_t t = 0; t < r->n_trend; t++) {
        free(r->trend[t].run);
        free(r->trend[t].theta);
        free(r->trend[t].lo);
        free(r->trend[t].hi);
    }
    free(r->trend);
    free(r->before_label);
    free(r->watched);
    free(r->regressed);
    cJSON_Delete(r->eval);
    memset(r, 0, sizeof *r);
}
