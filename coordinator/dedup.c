/* Near-duplicate clusters from stored signatures; see dedup.h. */
#include "dedup.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "output.h"
#include "records.h"
#include "run.h"
#include "xalloc.h"

static const char *const scope_names[] = {"prompt", "model", "global"};

void joust_dedup_opts_defaults(joust_dedup_opts *o)
{
    memset(o, 0, sizeof *o);
    o->radius = JOUST_NEARDUP_DEFAULT_RADIUS;
    o->scope = JOUST_DEDUP_PROMPT;
    o->threads = 1;
    o->use_scores = 1;
}

int joust_dedup_scope_parse(const char *s, joust_dedup_scope *out)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, scope_names[i])) {
            *out = (joust_dedup_scope)i;
            return 0;
        }
    return JOUST_EINVAL;
}

const char *joust_dedup_scope_name(joust_dedup_scope s)
{
    return (unsigned)s < 3 ? scope_names[s] : "?";
}

void joust_dedup_result_free(joust_dedup_result *r)
{
    if (!r)
        return;
    free(r->ids);
    free(r->w);
    free(r->h);
    free(r->has_score);
    joust_neardup_result_free(&r->nd);
    memset(r, 0, sizeof *r);
}

/* The growing columns of the search. */
typedef struct {
    size_t n, cap;
    uint64_t *ids, *sig, *scope, *area;
    uint32_t *w, *h;
    double *score;
    uint8_t *has_score;
} columns;

static void columns_add(columns *c, uint64_t id, uint64_t sig, uint64_t scope, uint32_t w,
                        uint32_t h, double score)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->ids = xrealloc(c->ids, c->cap * sizeof *c->ids);
        c->sig = xrealloc(c->sig, c->cap * sizeof *c->sig);
        c->scope = xrealloc(c->scope, c->cap * sizeof *c->scope);
        c->area = xrealloc(c->area, c->cap * sizeof *c->area);
        c->w = xrealloc(c->w, c->cap * sizeof *c->w);
        c->h = xrealloc(c->h, c->cap * sizeof *c->h);
        c->score = xrealloc(c->score, c->cap * sizeof *c->score);
        c->has_score = xrealloc(c->has_score, c->cap * sizeof *c->has_score);
    }
    size_t i = c->n++;
    c->ids[i] = id, c->sig[i] = sig, c->scope[i] = scope;
    c->area[i] = (uint64_t)w * h, c->w[i] = w, c->h[i] = h;
    c->score[i] = score;
    c->has_score[i] = !isnan(score);
}

static uint64_t scope_key(joust_dedup_scope s, const Joust__ImageRecord *ir)
{
    if (s == JOUST_DEDUP_PROMPT)
        return ir->prompt_id;
    if (s == JOUST_DEDUP_MODEL)
        return ir->model ? joust_hash64(ir->model, strlen(ir->model)) | 1 : 0;
    return 0;
}

typedef struct {
    joust_store_t *st;
    const Joust__RunRecord *run;
    const joust_dedup_opts *o;
    columns *c;
    joust_dedup_result *out;
} load_ctx;

/* The image's signature and its score in the run (NaN when none). */
static int load_one(const Joust__ImageRecord *ir, void *arg)
{
    load_ctx *l = arg;
    joust_store_t *st = l->st;
    const Joust__RunRecord *run = l->run;
    const joust_dedup_opts *o = l->o;
    columns *c = l->c;
    joust_dedup_result *out = l->out;
    out->images++;
    Joust__SignatureRecord *sr;
    int rc = joust_rec_signature_get(st, ir->image_id, &sr);
    if (rc == JOUST_ENOTFOUND) {
        out->unsigned_n++;
        return 0;
    }
    if (rc < 0)
        return rc;
    if (sr->status != JOUST__OUTCOME_STATUS__OK || !sr->has_phash) {
        if (out->unsigned_n++ < 20) /* the reason names the file */
            log_warn("image %s: no signature: %s", ir->caller_id ? ir->caller_id : ir->uri,
                     sr->error ? sr->error : "it could not be read");
        joust_rec_free(sr);
        return 0;
    }
    double score = NAN;
    Joust__ScoreRecord *sc;
    if (run && o->use_scores && (rc = joust_rec_score_get(st, run->run_id, ir->image_id, &sc)) == 0) {
        if (sc->has_score)
            score = sc->score;
        joust_rec_free(sc);
    } else if (rc < 0 && rc != JOUST_ENOTFOUND) {
        joust_rec_free(sr);
        return rc;
    }
    out->scored += !isnan(score);
    columns_add(c, ir->image_id, sr->phash, scope_key(o->scope, ir), sr->width, sr->height, score);
    joust_rec_free(sr);
    return 0;
}

int joust_dedup_find(joust_store_t *st, const Joust__RunRecord *run, const joust_dedup_opts *o,
                     joust_dedup_result *out)
{
    memset(out, 0, sizeof *out);
    if (o->radius > 63 || (unsigned)o->scope > JOUST_DEDUP_GLOBAL)
        return JOUST_EINVAL;
    out->opts = *o;
    out->run_id = run ? run->run_id : 0;
    int64_t t0 = joust_now_us();
    columns c = {0};
    load_ctx l = {st, run, o, &c, out};
    int rc = joust_run_images_each(st, run, load_one, &l);
    out->load_s = (double)(joust_now_us() - t0) / 1e6;
    if (rc == 0) {
        joust_neardup_opts no;
        joust_neardup_opts_defaults(&no);
        no.radius = o->radius;
        no.threads = o->threads ? o->threads : 1;
        t0 = joust_now_us();
        rc = joust_neardup_search(c.sig, o->scope == JOUST_DEDUP_GLOBAL ? NULL : c.scope, c.n,
                                  c.score, c.area, &no, &out->nd);
        out->search_s = (double)(joust_now_us() - t0) / 1e6;
    }
    out->ids = c.ids, out->w = c.w, out->h = c.h, out->has_score = c.has_score;
    free(c.sig);
    free(c.scope);
    free(c.area);
    free(c.score);
    if (rc < 0) {
        log_error("near-duplicate search failed: %s", joust_strerror(rc));
        joust_dedup_result_free(out);
    }
    return rc;
}

/* Appends one cluster's line. */
static int cluster_line(joust_store_t *st, const joust_dedup_result *r, size_t k, joust_buf_t *b)
{
    const joust_neardup_result *nd = &r->nd;
    size_t lo = nd->start[k], hi = nd->start[k + 1];
    Joust__ImageRecord **imgs = xcalloc(hi - lo, sizeof *imgs);
    int rc = 0;
    for (size_t i = lo; i < hi && rc == 0; i++)
        rc = joust_rec_image_get(st, r->ids[nd->member[i]], &imgs[i - lo]);
    if (rc == 0) {
        char idbuf[32];
        joust_buf_printf(b, "{\"cluster\":%zu,\"size\":%zu,\"representative\":", k + 1, hi - lo);
        joust_buf_json_str(b, joust_image_label(imgs[0], idbuf, sizeof idbuf));
        joust_buf_puts(b, ",\"members\":[");
        for (size_t i = 0; i < hi - lo; i++) {
            joust_buf_puts(b, i ? "," : "");
            joust_buf_json_str(b, joust_image_label(imgs[i], idbuf, sizeof idbuf));
        }
        joust_buf_puts(b, "],\"images\":[");
        for (size_t i = 0; i < hi - lo; i++) {
            joust_buf_puts(b, i ? "," : "");
            joust_buf_json_str(b, imgs[i]->uri);
        }
        joust_buf_puts(b, "],\"distances\":[");
        for (size_t i = lo; i < hi; i++)
            joust_buf_printf(b, "%s%u", i > lo ? "," : "", nd->dist[i]);
        uint32_t rep = nd->member[lo];
        joust_buf_printf(b, "],\"width\":%u,\"height\":%u,\"chosen_by\":\"%s\",\"prompt_id\":",
                         r->w[rep], r->h[rep], r->has_score[rep] ? "score" : "size");
        Joust__PromptRecord *pr;
        if (joust_rec_prompt_get(st, imgs[0]->prompt_id, &pr) == 0) {
            joust_json_prompt_id(b, pr);
            joust_rec_free(pr);
        } else {
            joust_buf_puts(b, "null");
        }
        joust_buf_puts(b, ",\"model\":");
        if (imgs[0]->model)
            joust_buf_json_str(b, imgs[0]->model);
        else
            joust_buf_puts(b, "null");
        joust_buf_puts(b, "}\n");
    } else {
        log_error("cluster %zu: cannot read an image record: %s", k + 1, joust_strerror(rc));
    }
    for (size_t i = 0; i < hi - lo; i++)
        joust_rec_free(imgs[i]);
    free(imgs);
    return rc;
}

char *joust_dedup_summary_json(const joust_dedup_result *r)
{
    size_t in_clusters = r->nd.n_clusters ? r->nd.start[r->nd.n_clusters] : 0;
    joust_buf_t b = {0};
    joust_buf_printf(&b,
                     "{\"images\":%zu,\"signed\":%zu,\"unsigned\":%zu,\"clusters\":%zu,"
                     "\"images_in_clusters\":%zu,\"duplicates\":%zu,\"pairs\":%" PRIu64
                     ",\"radius\":%u,\"scope\":\"%s\",\"scored\":%zu,"
                     "\"signing\":{\"signed_now\":%" PRIu64 ",\"failed\":%" PRIu64
                     ",\"copied_by_content\":%" PRIu64 ",\"signed_before\":%" PRIu64
                     ",\"given_up\":%" PRIu64 ",\"seconds\":%.3f},"
                     "\"load_seconds\":%.3f,\"search_seconds\":%.3f}\n",
                     r->images, r->nd.n, r->unsigned_n, r->nd.n_clusters, in_clusters,
                     in_clusters - r->nd.n_clusters, r->nd.pairs, r->opts.radius,
                     joust_dedup_scope_name(r->opts.scope), r->scored, r->signed_now,
                     r->sign_failed, r->sign_copied, r->sign_known, r->sign_given_up, r->sign_s,
                     r->load_s, r->search_s);
    return b.data;
}

int joust_dedup_write(joust_store_t *st, const joust_dedup_result *r, const char *clusters_path,
                      const char *summary_path)
{
    int rc = 0;
    if (clusters_path) {
        joust_outfile_t *f;
        if ((rc = joust_outfile_open(clusters_path, &f)) < 0)
            return rc;
        joust_buf_t b = {0};
        for (size_t k = 0; k < r->nd.n_clusters && rc == 0; k++) {
            joust_buf_reset(&b);
            if ((rc = cluster_line(st, r, k, &b)) == 0)
                joust_outfile_write(f, b.data, b.len);
        }
        joust_buf_free(&b);
        if (rc == 0)
            rc = joust_outfile_commit(&f);
        joust_outfile_abort(&f);
    }
    if (rc == 0 && summary_path) {
        char *s = joust_dedup_summary_json(r);
        rc = joust_outfile_write_all(summary_path, s, strlen(s));
        free(s);
    }
    return rc;
}

int joust_dedup_collapse(joust_store_t *st, const Joust__RunRecord *run, void *radius_p)
{
    joust_dedup_opts o;
    joust_dedup_opts_defaults(&o);
    o.radius = *(const uint32_t *)radius_p;
    o.use_scores = 0; /* nothing is judged yet: the largest image, else the first */
    joust_dedup_result r;
    int rc = joust_dedup_find(st, run, &o, &r);
    if (rc < 0)
        return rc;
    /* Only prompts no planning pass has reached: a planned image keeps
     * its matches. */
    uint64_t bound = joust_run_prompt_bound(run);
    joust_batch_t *b = joust_batch_new();
    size_t collapsed = 0, clusters = 0;
    for (size_t k = 0; k < r.nd.n_clusters && rc == 0; k++) {
        size_t lo = r.nd.start[k], hi = r.nd.start[k + 1];
        Joust__ImageRecord *ir;
        if ((rc = joust_rec_image_get(st, r.ids[r.nd.member[lo]], &ir)) < 0)
            break;
        int open = ir->prompt_id >= bound;
        joust_rec_free(ir);
        if (!open)
            continue;
        clusters++;
        for (size_t i = lo + 1; i < hi; i++) {
            Joust__DuplicateRecord d = JOUST__DUPLICATE_RECORD__INIT;
            d.representative = r.ids[r.nd.member[lo]];
            d.has_distance = 1;
            d.distance = r.nd.dist[i];
            joust_rec_duplicate_put(b, run->run_id, r.ids[r.nd.member[i]], &d);
            collapsed++;
        }
    }
    if (rc == 0 && joust_batch_count(b))
        rc = joust_store_write(st, b, 1);
    joust_batch_destroy(&b);
    if (rc == 0)
        log_info("run '%s': --dedup collapsed %zu near-duplicates into %zu representatives "
                 "(radius %u, within prompts; %zu images without a signature)",
                 run->name, collapsed, clusters, o.radius, r.unsigned_n);
    else
        log_error("run '%s': cannot record its near-duplicates: %s", run->name, joust_strerror(rc));
    joust_dedup_result_free(&r);
    return rc;
}
