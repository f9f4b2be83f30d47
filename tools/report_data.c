/* The numbers of one run for `joust report` (report_data.h). */
#include "report_data.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "rng.h"
#include "u64map.h"
#include "xalloc.h"

void rep_opts_defaults(rep_opts *o)
{
    memset(o, 0, sizeof *o);
    o->rounds = 200;
    o->seed = 1;
}

typedef struct {
    uint64_t match_id, prompt_id, first, second;
    double p;
    uint8_t kind;
    int64_t latency_us;
    uint32_t tokens;
} raw_outcome;

typedef struct {
    uint64_t id;
    double score;
} raw_score;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t find_u64(const uint64_t *v, size_t n, uint64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x ? lo : SIZE_MAX;
}

size_t rep_night_image(const rep_night *n, uint64_t image_id)
{
    return find_u64(n->img_id, n->n_images, image_id);
}

size_t rep_night_prompt(const rep_night *n, uint64_t prompt_id)
{
    return find_u64(n->prompt_id, n->n_prompts, prompt_id);
}

/* Index of a name in a growing table (names hashed into map; hash 0 is
 * remapped since the map reserves it). */
static uint32_t intern_n(joust_u64map_t *map, char ***names, uint32_t *n, const char *s,
                         size_t len)
{
    uint64_t h = joust_hash64(s, len);
    h = h ? h : 1;
    for (uint64_t v; joust_u64map_get(map, h, &v); h = h * 0x9E3779B97F4A7C15ull + 1)
        if (!strncmp((*names)[v], s, len) && !(*names)[v][len])
            return (uint32_t)v;
    *names = xrealloc(*names, sizeof **names * (*n + 1));
    (*names)[*n] = xstrndup(s, len);
    joust_u64map_put(map, h ? h : 1, *n);
    return (*n)++;
}

static uint32_t intern(joust_u64map_t *map, char ***names, uint32_t *n, const char *s)
{
    return intern_n(map, names, n, s, strlen(s));
}

/* The value of field in a manifest's metadata JSON as text (strings as
 * they are, numbers and booleans printed), or NULL. */
static char *meta_field(const char *json, const char *field)
{
    if (!json || !*json)
        return NULL;
    cJSON *root = cJSON_Parse(json);
    if (!root)
        return NULL;
    char *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, field);
    if (cJSON_IsString(v) && v->valuestring)
        out = xstrdup(v->valuestring);
    else if (v && (cJSON_IsNumber(v) || cJSON_IsBool(v)))
        out = cJSON_PrintUnformatted(v);
    cJSON_Delete(root);
    return out;
}

/* The model fit's options of a report: the bootstrap in two threads (the
 * machine's two cores). */
static void fit_opts(joust_model_fit_opts *fo, int32_t anchor, int rounds, uint64_t seed)
{
    joust_model_fit_opts_defaults(fo);
    fo->rounds = rounds;
    fo->seed = seed;
    fo->anchor = anchor;
    fo->threads = 2;
}

static int fit(uint32_t n_models, const joust_model_cell *cells, size_t nc, int32_t anchor,
               int rounds, uint64_t seed, joust_model_score *out, uint32_t *components)
{
    joust_model_fit_opts fo;
    fit_opts(&fo, anchor, rounds, seed);
    return joust_model_fit(n_models, cells, nc, &fo, out, components);
}

/* The OK outcomes of matches [from, until) (until 0: no bound) in match
 * order, and their tokens. One reader per half of the run (two cores). */
typedef struct {
    joust_store_t *st;
    uint32_t run_id;
    uint64_t from, until;
    raw_outcome *v;
    size_t len;
    uint64_t tokens_total, tokens_n;
    int rc;
} outcome_job;

static void *load_outcomes(void *arg)
{
    outcome_job *j = arg;
    joust_rec_cursor_t *c;
    if ((j->rc = joust_rec_cursor_new_scan(j->st, JOUST_REC_OUTCOMES, j->run_id, &c)) < 0)
        return NULL;
    if (j->from > 1)
        joust_rec_cursor_seek(c, j->from);
    size_t cap = 0;
    for (; joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        uint64_t id = joust_rec_cursor_id(c);
        if (j->until && id >= j->until)
            break;
        size_t blen;
        const void *bytes = joust_rec_cursor_bytes(c, &blen);
        joust_outcome_view o;
        if (joust_rec_outcome_view(bytes, blen, &o) < 0)
            continue;
        if (o.status == JOUST__OUTCOME_STATUS__OK && o.has_p_first && isfinite(o.p_first) &&
            o.p_first >= 0 && o.p_first <= 1) {
            if (j->len == cap) {
                cap = cap ? 2 * cap : 4096;
                j->v = xrealloc(j->v, sizeof *j->v * cap);
            }
            raw_outcome *r = &j->v[j->len++];
            r->match_id = id;
            r->prompt_id = o.prompt_id;
            r->first = o.first;
            r->second = o.second;
            r->p = o.p_first;
            r->kind = o.has_kind && o.kind >= 1 && o.kind <= 3 ? (uint8_t)o.kind : 1;
            r->latency_us = o.has_latency_us ? o.latency_us : -1;
            r->tokens = o.has_tokens ? o.tokens : 0;
            j->tokens_total += r->tokens;
            j->tokens_n += o.has_tokens;
        }
    }
    j->rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    return NULL;
}

static int load_scores(joust_store_t *st, uint32_t run_id, raw_score **out, size_t *nout)
{
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new_scan(st, JOUST_REC_SCORES, run_id, &c);
    if (rc < 0)
        return rc;
    size_t cap = 0, len = 0;
    raw_score *v = NULL;
    for (; joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        Joust__ScoreRecord *s = joust_rec_cursor_score(c);
        if (!s)
            continue;
        if (len == cap) {
            cap = cap ? 2 * cap : 4096;
            v = xrealloc(v, sizeof *v * cap);
        }
        v[len].id = joust_rec_cursor_id(c);
        v[len++].score = s->has_score ? s->score : NAN;
        joust_rec_free(s);
    }
    rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    *out = v;
    *nout = len;
    return rc;
}

/* Moves c to the record with id `want` for a merge over ascending ids: on
 * with next across a small gap, a seek across a larger one (or back).
 * 1 when c is there, 0 when there is no such record. */
static int cursor_to(joust_rec_cursor_t *c, uint64_t want)
{
    if (!joust_rec_cursor_valid(c) || joust_rec_cursor_id(c) + 32 < want ||
        joust_rec_cursor_id(c) > want)
        joust_rec_cursor_seek(c, want);
    while (joust_rec_cursor_valid(c) && joust_rec_cursor_id(c) < want)
        joust_rec_cursor_next(c);
    return joust_rec_cursor_valid(c) && joust_rec_cursor_id(c) == want;
}

/* The key that matches a prompt across runs: the hash of the caller's
 * prompt id, else of the prompt's text (0 when the record does not unpack). */
static uint64_t prompt_key(const void *bytes, size_t len)
{
    joust_prompt_view pv;
    if (joust_rec_prompt_view(bytes, len, &pv) < 0)
        return 0;
    int by_id = pv.caller_id.len > 0;
    joust_str_view s = by_id ? pv.caller_id : pv.text;
    return joust_hash64(s.s ? s.s : "", s.len) ^ (by_id ? 0x6361ull : 0x7478ull);
}

/* n->prompt_key of every prompt of n->prompt_id (ascending): one merge with
 * the prompt cursor (a seek only across a gap), not a point read each. */
static int load_prompt_keys(joust_store_t *st, rep_night *n)
{
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new_scan(st, JOUST_REC_PROMPTS, 0, &c);
    if (rc < 0)
        return rc;
    for (size_t p = 0; p < n->n_prompts; p++) {
        if (cursor_to(c, n->prompt_id[p])) {
            size_t len;
            const void *bytes = joust_rec_cursor_bytes(c, &len);
            n->prompt_key[p] = prompt_key(bytes, len);
        }
    }
    rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    return rc;
}

/* What the image records of a run say, for ids[n_ids] (ascending): each
 * image's model (interned into models), prompt and --by value. */
typedef struct {
    const rep_opts *o;
    const char *run_name;
    joust_u64map_t names;
    char **models;
    uint32_t n_models;
} image_reader;

/* Image records of ids[n] (a merge with the image cursor) into the
 * caller's arrays of n. */
static int load_images(joust_store_t *st, image_reader *ir, const uint64_t *ids, size_t n,
                       uint32_t *img_model, uint64_t *img_pid, char **img_cat)
{
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new_scan(st, JOUST_REC_IMAGES, 0, &c);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        img_model[i] = UINT32_MAX;
        img_pid[i] = 0;
        if (img_cat)
            img_cat[i] = NULL;
        if (!cursor_to(c, ids[i])) {
            log_warn("report: image %llu of run %s has no image record",
                     (unsigned long long)ids[i], ir->run_name);
            continue;
        }
        if (img_cat) { /* the metadata JSON: the whole record */
            Joust__ImageRecord *img = joust_rec_cursor_image(c);
            if (!img)
                continue;
            img_pid[i] = img->prompt_id;
            if (img->model && *img->model)
                img_model[i] = intern(&ir->names, &ir->models, &ir->n_models, img->model);
            img_cat[i] = meta_field(img->meta_json, ir->o->by);
            joust_rec_free(img);
            continue;
        }
        size_t len;
        const void *bytes = joust_rec_cursor_bytes(c, &len);
        joust_image_view v;
        if (joust_rec_image_view(bytes, len, &v) < 0)
            continue;
        img_pid[i] = v.prompt_id;
        if (v.model.len)
            img_model[i] = intern_n(&ir->names, &ir->models, &ir->n_models, v.model.s, v.model.len);
    }
    rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    return rc;
}

/* The second reader, beside the outcomes: the run's score records, then
 * the image records of the scored images (every image of a run that has
 * been scored). */
typedef struct {
    joust_store_t *st;
    uint32_t run_id;
    image_reader *ir;
    raw_score *sc;
    size_t nsc;
    uint64_t *ids;          /* the scored images, ascending */
    size_t n;
    uint32_t *model;
    uint64_t *pid;
    char **cat;
    int rc;
} score_job;

static void *scores_thread(void *arg)
{
    score_job *j = arg;
    if (j->ir->o->cells_only)
        return NULL; /* no scores; the images of the outcomes are read after them */
    if ((j->rc = load_scores(j->st, j->run_id, &j->sc, &j->nsc)) < 0)
        return NULL;
    j->ids = xmalloc(sizeof *j->ids * (j->nsc + 1));
    for (size_t i = 0; i < j->nsc; i++)
        if (j->sc[i].id)
            j->ids[j->n++] = j->sc[i].id;
    qsort(j->ids, j->n, sizeof *j->ids, cmp_u64);
    size_t w = 0;
    for (size_t i = 0; i < j->n; i++)
        if (!w || j->ids[w - 1] != j->ids[i])
            j->ids[w++] = j->ids[i];
    j->n = w;
    j->model = xmalloc(sizeof *j->model * (w + 1));
    j->pid = xmalloc(sizeof *j->pid * (w + 1));
    j->cat = j->ir->o->by ? xmalloc(sizeof *j->cat * (w + 1)) : NULL;
    j->rc = load_images(j->st, j->ir, j->ids, w, j->model, j->pid, j->cat);
    return NULL;
}

/* The images of n->img_id: from the scores job when it read them, else
 * from rep_opts.known (the same store's night), the others (outcomes of
 * images not scored yet: a run in progress) read now. */
static int gather_images(joust_store_t *st, score_job *j, rep_night *n, uint64_t **img_pid,
                         char ***img_cat)
{
    size_t ni = n->n_images;
    n->img_model = xmalloc(sizeof *n->img_model * (ni + 1));
    *img_pid = xcalloc(ni + 1, sizeof **img_pid);
    *img_cat = j->cat ? xcalloc(ni + 1, sizeof **img_cat) : NULL;
    uint64_t *miss = xmalloc(sizeof *miss * (ni + 1));
    size_t *miss_at = xmalloc(sizeof *miss_at * (ni + 1)), nm = 0;
    const rep_night *kn = j->ir->o->by ? NULL : j->ir->o->known;
    uint32_t *kmodel = NULL; /* known's model index -> ours, UINT32_MAX: not yet interned */
    if (kn) {
        kmodel = xmalloc(sizeof *kmodel * (kn->n_models + 1));
        memset(kmodel, 0xff, sizeof *kmodel * (kn->n_models + 1));
    }
    for (size_t i = 0; i < ni; i++) {
        size_t k = find_u64(j->ids, j->n, n->img_id[i]);
        size_t kk = k == SIZE_MAX && kn ? rep_night_image(kn, n->img_id[i]) : SIZE_MAX;
        if (kk != SIZE_MAX && kn->img_prompt[kk] < kn->n_prompts) {
            uint32_t km = kn->img_model[kk];
            if (km != UINT32_MAX && kmodel[km] == UINT32_MAX)
                kmodel[km] = intern(&j->ir->names, &j->ir->models, &j->ir->n_models, kn->models[km]);
            n->img_model[i] = km == UINT32_MAX ? UINT32_MAX : kmodel[km];
            (*img_pid)[i] = kn->prompt_id[kn->img_prompt[kk]];
            continue;
        }
        if (k == SIZE_MAX) {
            miss_at[nm] = i;
            miss[nm++] = n->img_id[i];
            continue;
        }
        n->img_model[i] = j->model[k];
        (*img_pid)[i] = j->pid[k];
        if (j->cat) {
            (*img_cat)[i] = j->cat[k];
            j->cat[k] = NULL;
        }
    }
    int rc = 0;
    if (nm) {
        uint32_t *mm = xmalloc(sizeof *mm * nm);
        uint64_t *mp = xmalloc(sizeof *mp * nm);
        char **mc = j->cat ? xmalloc(sizeof *mc * nm) : NULL;
        rc = load_images(st, j->ir, miss, nm, mm, mp, mc);
        for (size_t k = 0; k < nm; k++) {
            n->img_model[miss_at[k]] = mm[k];
            (*img_pid)[miss_at[k]] = mp[k];
            if (mc)
                (*img_cat)[miss_at[k]] = mc[k];
        }
        free(mm), free(mp), free(mc);
    }
    free(miss), free(miss_at), free(kmodel);
    return rc;
}

static void score_job_clear(score_job *j)
{
    if (j->cat)
        for (size_t i = 0; i < j->n; i++)
            free(j->cat[i]);
    free(j->cat), free(j->model), free(j->pid), free(j->ids), free(j->sc);
}

typedef struct {
    uint32_t lo, hi, i; /* images (lo < hi), the outcome's index */
    uint8_t first_is_lo;
    double p;
} pk;

static int cmp_pk(const void *a, const void *b)
{
    const pk *x = a, *y = b;
    if (x->hi != y->hi)
        return x->hi < y->hi ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorts v[n] (one lower image) by higher image, then outcome order. */
static void sort_bucket(pk *v, size_t n)
{
    if (n > 32) {
        qsort(v, n, sizeof *v, cmp_pk);
        return;
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort: stable, and buckets are small */
        pk x = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1].hi > x.hi; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/* The k-th smallest of v[n] (k < n), moving v's elements (quickselect). */
static double kth_smallest(double *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, want = (ptrdiff_t)k;
    while (lo < hi) {
        double a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi];
        double pivot = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
        ptrdiff_t i = lo, j = hi;
        while (i <= j) { /* Hoare: [lo, j] <= pivot <= [i, hi] */
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (want <= j)
            hi = j;
        else if (want >= i)
            lo = i;
        else
            return v[want]; /* between j and i: equal to the pivot */
    }
    return v[want];
}

static void health(rep_night *n)
{
    double psum = 0;
    size_t nl = 0;
    double *lat = xmalloc(sizeof *lat * (n->n_out + 1));
    /* pairs in both orders: the outcomes bucketed by their lower image (a
     * counting sort), each bucket sorted by the higher one */
    size_t *start = xcalloc(n->n_images + 2, sizeof *start);
    for (size_t i = 0; i < n->n_out; i++) {
        const rep_outcome *r = &n->out[i];
        psum += r->p_first;
        n->kinds[r->kind]++;
        if (r->latency_us >= 0)
            lat[nl++] = (double)r->latency_us / 1000.0;
        start[(r->first < r->second ? r->first : r->second) + 1]++;
    }
    for (size_t l = 0; l < n->n_images; l++)
        start[l + 1] += start[l];
    pk *k = xmalloc(sizeof *k * (n->n_out + 1));
    size_t *fill = xmalloc(sizeof *fill * (n->n_images + 1));
    memcpy(fill, start, sizeof *fill * (n->n_images + 1));
    for (size_t i = 0; i < n->n_out; i++) {
        const rep_outcome *r = &n->out[i];
        uint32_t lo = r->first < r->second ? r->first : r->second;
        k[fill[lo]++] = (pk){lo, r->first < r->second ? r->second : r->first, (uint32_t)i,
                             r->first < r->second, r->p_first};
    }
    free(fill);
    for (size_t l = 0; l < n->n_images; l++)
        sort_bucket(k + start[l], start[l + 1] - start[l]);
    free(start);
    n->p_first_mean = n->n_out ? psum / (double)n->n_out : 0.5;
    static const double q[3] = {0.5, 0.9, 0.99};
    size_t from = 0; /* each quantile is past the one before: select in what is left */
    for (int j = 0; j < 3; j++) {
        size_t at = (size_t)(q[j] * (double)(nl - 1) + 0.5);
        n->lat_ms[j] = nl ? kth_smallest(lat + from, nl - from, at - from) : NAN;
        from = nl ? at : 0;
    }
    free(lat);
    for (size_t i = 0; i < n->n_out;) {
        size_t j = i;
        int seen[2] = {0, 0};
        double p_lo[2] = {0, 0}; /* P(lo preferred) for each order */
        while (j < n->n_out && k[j].lo == k[i].lo && k[j].hi == k[i].hi) {
            int ord = k[j].first_is_lo;
            seen[ord] = 1;
            p_lo[ord] = ord ? k[j].p : 1.0 - k[j].p;
            j++;
        }
        if (seen[0] && seen[1]) {
            n->both_orders++;
            n->agree += (p_lo[0] > 0.5) == (p_lo[1] > 0.5);
        }
        i = j;
    }
    free(k);
}

static void win_matrix(rep_night *n)
{
    size_t m = n->n_models;
    n->win = xcalloc(m * m + 1, sizeof *n->win);
    n->games = xcalloc(m * m + 1, sizeof *n->games);
    for (size_t i = 0; i < n->n_cells; i++) {
        const joust_model_cell *c = &n->cells[i];
        n->win[c->a * m + c->b] += c->wins_a;
        n->win[c->b * m + c->a] += c->count - c->wins_a;
        n->games[c->a * m + c->b] += c->count;
        n->games[c->b * m + c->a] += c->count;
    }
}

static int categories(rep_night *n, char **img_cat, const rep_opts *o)
{
    joust_u64map_t map;
    joust_u64map_init(&map);
    char **names = NULL;
    n->prompt_cat = xmalloc(sizeof *n->prompt_cat * (n->n_prompts + 1));
    for (size_t p = 0; p < n->n_prompts; p++)
        n->prompt_cat[p] = UINT32_MAX;
    for (size_t i = 0; i < n->n_images; i++)
        if (img_cat && img_cat[i] && n->prompt_cat[n->img_prompt[i]] == UINT32_MAX)
            n->prompt_cat[n->img_prompt[i]] = intern(&map, &names, &n->n_cats, img_cat[i]);
    joust_u64map_free(&map);
    n->cats = xcalloc(n->n_cats + 1, sizeof *n->cats);
    joust_model_cell *sub = xmalloc(sizeof *sub * (n->n_cells + 1));
    int rc = 0;
    for (uint32_t c = 0; c < n->n_cats && !rc; c++) {
        rep_category *cat = &n->cats[c];
        cat->name = names[c];
        cat->n_models = n->n_models;
        cat->score = xcalloc(n->n_models + 1, sizeof *cat->score);
        cat->prompts = xcalloc(n->n_models + 1, sizeof *cat->prompts);
        size_t ns = 0;
        for (size_t i = 0; i < n->n_cells; i++)
            if (n->prompt_cat[n->cells[i].prompt] == c)
                sub[ns++] = n->cells[i];
        /* prompts per model: cells are sorted by prompt */
        for (size_t i = 0; i < ns;) {
            size_t j = i;
            char *seen = xcalloc(n->n_models + 1, 1);
            while (j < ns && sub[j].prompt == sub[i].prompt) {
                seen[sub[j].a] = seen[sub[j].b] = 1;
                j++;
            }
            for (uint32_t mi = 0; mi < n->n_models; mi++)
                cat->prompts[mi] += seen[mi];
            free(seen);
            i = j;
        }
        rc = fit(n->n_models, sub, ns, n->baseline, o->rounds, o->seed, cat->score, NULL);
    }
    free(names);
    free(sub);
    return rc;
}

typedef struct {
    rep_night *n;
    char **img_cat;
    const rep_opts *o;
    int rc;
} cat_job;

static void *categories_thread(void *arg)
{
    cat_job *j = arg;
    j->rc = categories(j->n, j->img_cat, j->o);
    return NULL;
}

/* Image id -> dense index of a night's images: a table over [base, base +
 * span) when the ids are dense (ingest gives consecutive ids, so they
 * usually are), else a hash map. */
typedef struct {
    uint64_t base;
    size_t span;
    uint32_t *tab; /* UINT32_MAX: not an image of the run */
    joust_u64map_t map;
    int mapped;
} id_index;

/* The i-th image id of the outcomes and scores (0: none). */
static uint64_t nth_id(const raw_outcome *raw, size_t nraw, const raw_score *sc, size_t i)
{
    return i < 2 * nraw ? (i & 1 ? raw[i / 2].second : raw[i / 2].first) : sc[i - 2 * nraw].id;
}

/* Indexes the images of raw[nraw] and sc[nsc]; *ids (ascending, malloc'd)
 * and *n are the night's images. */
static void id_index_build(id_index *x, const raw_outcome *raw, size_t nraw, const raw_score *sc,
                           size_t nsc, uint64_t **ids, size_t *n)
{
    size_t total = 2 * nraw + nsc;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < total; i++) {
        uint64_t id = nth_id(raw, nraw, sc, i);
        if (id) {
            lo = id < lo ? id : lo;
            hi = id > hi ? id : hi;
        }
    }
    *n = 0;
    if (lo <= hi && hi - lo < total + 1024) {
        x->base = lo;
        x->span = (size_t)(hi - lo + 1);
        x->tab = xmalloc(sizeof *x->tab * x->span);
        memset(x->tab, 0xff, sizeof *x->tab * x->span);
        for (size_t i = 0; i < total; i++) {
            uint64_t id = nth_id(raw, nraw, sc, i);
            if (id)
                x->tab[id - lo] = 0;
        }
        *ids = xmalloc(sizeof **ids * (x->span + 1));
        for (size_t k = 0; k < x->span; k++)
            if (x->tab[k] == 0) {
                x->tab[k] = (uint32_t)*n;
                (*ids)[(*n)++] = lo + k;
            }
        return;
    }
    x->mapped = 1;
    joust_u64map_init(&x->map);
    size_t cap = 1024;
    *ids = xmalloc(sizeof **ids * cap);
    for (size_t i = 0; i < total; i++) {
        uint64_t id = nth_id(raw, nraw, sc, i);
        if (!id || joust_u64map_get(&x->map, id, NULL))
            continue;
        joust_u64map_put(&x->map, id, 0);
        if (*n == cap)
            *ids = xrealloc(*ids, sizeof **ids * (cap *= 2));
        (*ids)[(*n)++] = id;
    }
    qsort(*ids, *n, sizeof **ids, cmp_u64);
    for (size_t i = 0; i < *n; i++)
        joust_u64map_put(&x->map, (*ids)[i], i);
}

/* 1 and *v = the dense index of id, or 0 when id is not indexed. */
static int id_index_get(const id_index *x, uint64_t id, uint64_t *v)
{
    if (x->mapped)
        return joust_u64map_get(&x->map, id, v);
    if (id < x->base || id - x->base >= x->span || x->tab[id - x->base] == UINT32_MAX)
        return 0;
    *v = x->tab[id - x->base];
    return 1;
}

static void id_index_free(id_index *x)
{
    if (x->mapped)
        joust_u64map_free(&x->map);
    free(x->tab);
    memset(x, 0, sizeof *x);
}

int rep_night_load(joust_store_t *st, const char *name, const rep_opts *o, rep_night *n)
{
    int64_t t0 = joust_now_us();
    memset(n, 0, sizeof *n);
    n->baseline = -1;
    n->run_name = xstrdup(name);
    Joust__RunRecord *run = NULL;
    int rc = joust_rec_run_get(st, name, &run);
    if (rc < 0) {
        if (rc == JOUST_ENOTFOUND)
            log_error("report: no run named '%s' in the store", name);
        return rc;
    }
    n->complete = run->has_complete && run->complete;
    n->created_ms = run->has_created_ms ? run->created_ms : 0;
    n->planned = run->has_next_match_id && run->next_match_id ? run->next_match_id - 1 : 0;
    snprintf(n->judge, sizeof n->judge, "%s", run->judge ? run->judge : "");
    uint32_t run_id = n->run_id = run->run_id;
    n->reused = run->has_outcomes_reused ? run->outcomes_reused : 0;
    rc = joust_rec_run_counts(st, run, &n->counts);
    joust_rec_free(run);
    if (rc < 0)
        return rc;

    raw_outcome *raw = NULL;
    raw_score *sc = NULL;
    size_t nraw = 0, nsc = 0;
    uint64_t *img_pid = NULL;
    char **img_cat = NULL;
    id_index idx = {0}; /* image id -> dense index (ids start at 1, never 0) */
    /* the outcomes here, the scores and their images in a second thread */
    image_reader ir = {.o = o, .run_name = n->run_name};
    joust_u64map_init(&ir.names);
    score_job sj = {.st = st, .run_id = run_id, .ir = &ir};
    pthread_t sth;
    int sthreaded = pthread_create(&sth, NULL, scores_thread, &sj) == 0;
    if (!sthreaded)
        scores_thread(&sj);
    /* the outcomes in two halves by match id, the second in a thread */
    uint64_t mid = n->planned >= 2 ? n->planned / 2 + 1 : 0;
    outcome_job oj[2] = {{st, run_id, 1, mid, NULL, 0, 0, 0, 0},
                         {st, run_id, mid, 0, NULL, 0, 0, 0, 0}};
    pthread_t oth;
    int othreaded = mid && pthread_create(&oth, NULL, load_outcomes, &oj[1]) == 0;
    load_outcomes(&oj[0]);
    if (mid && !othreaded)
        load_outcomes(&oj[1]);
    if (othreaded)
        pthread_join(oth, NULL);
    nraw = oj[0].len + oj[1].len;
    raw = oj[0].v;
    if (oj[1].len) {
        raw = xrealloc(raw, sizeof *raw * nraw);
        memcpy(raw + oj[0].len, oj[1].v, sizeof *raw * oj[1].len);
    }
    free(oj[1].v);
    n->tokens_total = oj[0].tokens_total + oj[1].tokens_total;
    n->tokens_n = oj[0].tokens_n + oj[1].tokens_n;
    rc = oj[0].rc < 0 ? oj[0].rc : oj[1].rc;
    if (sthreaded)
        pthread_join(sth, NULL);
    sc = sj.sc, nsc = sj.nsc;
    if (rc < 0 || (rc = sj.rc) < 0)
        goto done;
    /* the run's images: those in its outcomes and scores */
    id_index_build(&idx, raw, nraw, sc, nsc, &n->img_id, &n->n_images);
    rc = gather_images(st, &sj, n, &img_pid, &img_cat);
    n->models = ir.models;
    n->n_models = ir.n_models;
    ir.models = NULL;
    if (rc < 0)
        goto done;
    /* dense prompts */
    n->prompt_id = xmalloc(sizeof *n->prompt_id * (n->n_images + 1));
    for (size_t i = 0; i < n->n_images; i++)
        n->prompt_id[i] = img_pid[i];
    qsort(n->prompt_id, n->n_images, sizeof *n->prompt_id, cmp_u64);
    for (size_t i = 0; i < n->n_images; i++)
        if (!n->n_prompts || n->prompt_id[n->n_prompts - 1] != n->prompt_id[i])
            n->prompt_id[n->n_prompts++] = n->prompt_id[i];
    n->img_prompt = xmalloc(sizeof *n->img_prompt * (n->n_images + 1));
    for (size_t i = 0; i < n->n_images; i++)
        n->img_prompt[i] = (uint32_t)find_u64(n->prompt_id, n->n_prompts, img_pid[i]);
    n->prompt_key = xcalloc(n->n_prompts + 1, sizeof *n->prompt_key);
    if (o->prompt_keys && (rc = load_prompt_keys(st, n)) < 0)
        goto done;
    uint64_t v = 0;
    n->img_score = xmalloc(sizeof *n->img_score * (n->n_images + 1));
    for (size_t i = 0; i < n->n_images; i++)
        n->img_score[i] = NAN;
    for (size_t i = 0; i < nsc; i++)
        if (id_index_get(&idx, sc[i].id, &v))
            n->img_score[v] = sc[i].score;
    /* outcomes, dense */
    n->out = xmalloc(sizeof *n->out * (nraw + 1));
    joust_model_outcome *mo = xmalloc(sizeof *mo * (nraw + 1));
    size_t nmo = 0;
    for (size_t i = 0; i < nraw; i++) {
        rep_outcome *r = &n->out[n->n_out++];
        r->match_id = raw[i].match_id;
        id_index_get(&idx, raw[i].first, &v);
        r->first = (uint32_t)v;
        id_index_get(&idx, raw[i].second, &v);
        r->second = (uint32_t)v;
        r->prompt = n->img_prompt[r->first];
        r->p_first = raw[i].p;
        r->kind = raw[i].kind;
        r->latency_us = raw[i].latency_us;
        r->tokens = raw[i].tokens;
        uint32_t ma = n->img_model[r->first], mb = n->img_model[r->second];
        if (ma != UINT32_MAX && mb != UINT32_MAX)
            mo[nmo++] = (joust_model_outcome){r->prompt, ma, mb, r->p_first};
    }
    if (o->baseline) {
        for (uint32_t m = 0; m < n->n_models; m++)
            if (!strcmp(n->models[m], o->baseline))
                n->baseline = (int32_t)m;
        if (n->baseline < 0) {
            log_error("report: run '%s' has no model named '%s' (--baseline-model)", name,
                      o->baseline);
            free(mo);
            rc = JOUST_EINVAL;
            goto done;
        }
    }
    int64_t t1 = joust_now_us();
    n->read_s = (double)(t1 - t0) / 1e6;
    rc = joust_model_cells(n->n_models, mo, nmo, &n->cells, &n->n_cells);
    free(mo);
    if (rc < 0 || o->cells_only)
        goto done;
    n->score = xcalloc(n->n_models + 1, sizeof *n->score);
    /* the per-category fits run beside the main fit (the two cores) */
    cat_job job = {n, img_cat, o, 0};
    pthread_t th;
    int threaded = pthread_create(&th, NULL, categories_thread, &job) == 0;
    if (!threaded)
        categories_thread(&job);
    joust_model_fit_opts fo;
    fit_opts(&fo, n->baseline, o->rounds, o->seed);
    size_t mm = (size_t)n->n_models * n->n_models;
    n->win_lo = xmalloc(sizeof *n->win_lo * (mm + 1));
    n->win_hi = xmalloc(sizeof *n->win_hi * (mm + 1));
    rc = joust_model_fit_rates(n->n_models, n->cells, n->n_cells, &fo, n->score, &n->components,
                               n->win_lo, n->win_hi);
    if (threaded)
        pthread_join(th, NULL);
    if (rc < 0 || (rc = job.rc) < 0)
        goto done;
    win_matrix(n);
    health(n);
    n->fit_s = (double)(joust_now_us() - t1) / 1e6;
done:
    if (ir.models) { /* a failure before they moved into n */
        for (uint32_t m = 0; m < ir.n_models; m++)
            free(ir.models[m]);
        free(ir.models);
    }
    joust_u64map_free(&ir.names);
    sj.sc = NULL; /* freed below as sc */
    score_job_clear(&sj);
    id_index_free(&idx);
    if (img_cat)
        for (size_t i = 0; i < n->n_images; i++)
            free(img_cat[i]);
    free(img_cat);
    free(img_pid);
    free(raw);
    free(sc);
    return rc;
}

void rep_night_clear(rep_night *n)
{
    for (uint32_t m = 0; m < n->n_models; m++)
        free(n->models[m]);
    for (uint32_t c = 0; c < n->n_cats; c++) {
        free(n->cats[c].name);
        free(n->cats[c].score);
        free(n->cats[c].prompts);
    }
    free(n->cats);
    free(n->models);
    free(n->run_name);
    free(n->score);
    free(n->win);
    free(n->games);
    free(n->win_lo);
    free(n->win_hi);
    free(n->img_id);
    free(n->img_model);
    free(n->img_prompt);
    free(n->img_score);
    free(n->prompt_id);
    free(n->prompt_key);
    free(n->prompt_cat);
    free(n->out);
    free(n->cells);
    memset(n, 0, sizeof *n);
}

/* ---------------------------------------------------- night to night --- */

typedef struct {
    uint64_t key;
    uint32_t idx;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* A night's cells restricted to the shared prompts (prompt = shared index). */
static joust_model_cell *shared_cells(const rep_night *n, const uint32_t *shared_of, size_t *nc)
{
    joust_model_cell *v = xmalloc(sizeof *v * (n->n_cells + 1));
    size_t k = 0;
    for (size_t i = 0; i < n->n_cells; i++)
        if (shared_of[n->cells[i].prompt] != UINT32_MAX) {
            v[k] = n->cells[i];
            v[k++].prompt = shared_of[n->cells[i].prompt];
        }
    *nc = k;
    return v;
}

int rep_compare_nights(const rep_night *t, const rep_night *b, const rep_opts *o, rep_compare *out)
{
    memset(out, 0, sizeof *out);
    uint32_t nm = t->n_models;
    out->n = nm;
    out->before_idx = xmalloc(sizeof *out->before_idx * (nm + 1));
    out->delta = xmalloc(sizeof(double) * (nm + 1));
    out->lo = xmalloc(sizeof(double) * (nm + 1));
    out->hi = xmalloc(sizeof(double) * (nm + 1));
    out->significant = xcalloc(nm + 1, sizeof *out->significant);
    for (uint32_t m = 0; m < nm; m++) {
        out->before_idx[m] = -1;
        out->delta[m] = out->lo[m] = out->hi[m] = NAN;
        for (uint32_t j = 0; j < b->n_models; j++)
            if (!strcmp(t->models[m], b->models[j]))
                out->before_idx[m] = (int32_t)j;
    }
    /* shared prompts by key */
    keyed *kt = xmalloc(sizeof *kt * (t->n_prompts + 1)), *kb = xmalloc(sizeof *kb * (b->n_prompts + 1));
    for (size_t p = 0; p < t->n_prompts; p++)
        kt[p] = (keyed){t->prompt_key[p], (uint32_t)p};
    for (size_t p = 0; p < b->n_prompts; p++)
        kb[p] = (keyed){b->prompt_key[p], (uint32_t)p};
    qsort(kt, t->n_prompts, sizeof *kt, cmp_keyed);
    qsort(kb, b->n_prompts, sizeof *kb, cmp_keyed);
    uint32_t *st = xmalloc(sizeof *st * (t->n_prompts + 1)), *sb = xmalloc(sizeof *sb * (b->n_prompts + 1));
    for (size_t p = 0; p < t->n_prompts; p++)
        st[p] = UINT32_MAX;
    for (size_t p = 0; p < b->n_prompts; p++)
        sb[p] = UINT32_MAX;
    size_t ns = 0;
    for (size_t i = 0, j = 0; i < t->n_prompts && j < b->n_prompts;) {
        if (kt[i].key < kb[j].key)
            i++;
        else if (kt[i].key > kb[j].key)
            j++;
        else {
            if (kt[i].key && st[kt[i].idx] == UINT32_MAX && sb[kb[j].idx] == UINT32_MAX) {
                st[kt[i].idx] = (uint32_t)ns;
                sb[kb[j].idx] = (uint32_t)ns++;
            }
            i++, j++;
        }
    }
    free(kt);
    free(kb);
    out->shared_prompts = ns;
    int32_t ab = -1;
    if (t->baseline >= 0)
        ab = out->before_idx[t->baseline];
    size_t nct, ncb;
    joust_model_cell *ct = shared_cells(t, st, &nct), *cb = shared_cells(b, sb, &ncb);
    free(st);
    free(sb);
    joust_model_score *s_t = xcalloc(nm + 1, sizeof *s_t);
    joust_model_score *s_b = xcalloc(b->n_models + 1, sizeof *s_b);
    int rc = 0, R = o->rounds;
    double *bt = NULL, *bb = NULL;
    if (ns == 0)
        goto done;
    bt = xmalloc(sizeof *bt * ((size_t)R * nm + 1));
    bb = xmalloc(sizeof *bb * ((size_t)R * b->n_models + 1));
    joust_model_paired x = {nm, ct, nct, t->baseline, s_t, bt};
    joust_model_paired y = {b->n_models, cb, ncb, ab, s_b, bb};
    joust_model_fit_opts fo;
    fit_opts(&fo, -1, R, o->seed ^ 0x636f6d70ull);
    if ((rc = joust_model_fit_paired((uint32_t)ns, &x, &y, &fo)) < 0)
        goto done;
    double *d = xmalloc(sizeof *d * ((size_t)R + 1));
    for (uint32_t m = 0; m < nm; m++) {
        int32_t j = out->before_idx[m];
        if (j < 0 || !(s_t[m].comparisons > 0) || !(s_b[j].comparisons > 0))
            continue;
        out->delta[m] = s_t[m].theta - s_b[j].theta;
        if (R <= 0)
            continue;
        for (int r = 0; r < R; r++)
            d[r] = bt[(size_t)r * nm + m] - bb[(size_t)r * b->n_models + (uint32_t)j];
        qsort(d, (size_t)R, sizeof *d, cmp_double);
        out->lo[m] = d[(size_t)(0.025 * (R - 1) + 0.5)];
        out->hi[m] = d[(size_t)(0.975 * (R - 1) + 0.5)];
        out->significant[m] = out->lo[m] > 0 || out->hi[m] < 0;
    }
    free(d);
done:
    free(bt);
    free(bb);
    free(ct);
    free(cb);
    free(s_t);
    free(s_b);
    return rc;
}

void rep_compare_clear(rep_compare *c)
{
    free(c->before_idx);
    free(c->delta);
    free(c->lo);
    free(c->hi);
    free(c->significant);
    memset(c, 0, sizeof *c);
}
