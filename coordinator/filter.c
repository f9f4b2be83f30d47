/* joust filter; see filter.h. */
#include "filter.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "buf.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "manifest_src.h"
#include "output.h"
#include "records.h"
#include "run.h"
#include "scoring.h"
#include "u64map.h"
#include "uri.h"
#include "xalloc.h"

typedef enum {
    N_SCORE, N_RANK, N_WINS, N_COMPARISONS, N_PERCENTILE, N_GLOBAL, N_STATUS, N_ERROR,
    N_DUPLICATE, N_RANKED, N_WIDTH, N_HEIGHT, N_ASPECT, N_BYTES, N_FIELD
} name_kind;

static const struct {
    const char *name;
    name_kind kind;
    int bare;  /* 1: a condition by itself (error); 0: needs OP VALUE */
    int store; /* needs the store */
} names[] = {
    {"score", N_SCORE, 0, 1},           {"rank", N_RANK, 0, 1},
    {"wins", N_WINS, 0, 1},             {"comparisons", N_COMPARISONS, 0, 1},
    {"percentile", N_PERCENTILE, 0, 1}, {"global_percentile", N_GLOBAL, 0, 1},
    {"status", N_STATUS, 0, 1},         {"error", N_ERROR, 1, 1},
    {"duplicate", N_DUPLICATE, 1, 1},   {"ranked", N_RANKED, 1, 1},
    {"width", N_WIDTH, 0, 0},           {"height", N_HEIGHT, 0, 0},
    {"aspect", N_ASPECT, 0, 0},         {"bytes", N_BYTES, 0, 1},
};

typedef enum { OP_BARE, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } op_kind;

typedef struct {
    joust_filter_verb verb;
    name_kind kind;
    op_kind op;
    char *field; /* N_FIELD: the manifest field */
    char *text;  /* the value as written (quotes taken off) */
    double num;
    int is_num;
    char *expr;  /* "keep score>0.5" */
    /* global_percentile: the line holds iff score > threshold (k-th smallest
     * ranked score), always (always_true) or never (never_true); negated
     * for < and <= */
    double threshold;
    int always_true, never_true, negate;
} pred;

struct joust_filter {
    pred *p;
    size_t n, cap;
    uint64_t *by_pred;
};

joust_filter_t *joust_filter_new(void) { return xcalloc(1, sizeof(joust_filter_t)); }

void joust_filter_destroy(joust_filter_t **self_p)
{
    joust_filter_t *f = *self_p;
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->p[i].field);
        free(f->p[i].text);
        free(f->p[i].expr);
    }
    free(f->p);
    free(f->by_pred);
    free(f);
    *self_p = NULL;
}

const char *joust_filter_pred_text(const joust_filter_t *f, size_t i)
{
    return i < f->n ? f->p[i].expr : "";
}

static const char *verb_name(joust_filter_verb v)
{
    return v == JOUST_FILTER_DROP ? "drop" : v == JOUST_FILTER_WHERE ? "where" : "keep";
}

static char *trim(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= 2 && ((s[0] == '"' && s[n - 1] == '"') || (s[0] == '\'' && s[n - 1] == '\'')))
        s++, n -= 2;
    return xstrndup(s, n);
}

static int parse_number(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && !*end && errno == 0 && isfinite(*v);
}

int joust_filter_add(joust_filter_t *f, joust_filter_verb verb, const char *expr, char *err,
                     size_t errlen)
{
    pred p = {.verb = verb};
    /* the operator: the first of = ! < > outside the name */
    size_t at = strcspn(expr, "=!<>");
    char *name = trim(expr, at);
    const char *rest = expr + at;
    if (!*rest)
        p.op = OP_BARE;
    else if (!strncmp(rest, "!=", 2))
        p.op = OP_NE, rest += 2;
    else if (!strncmp(rest, "<=", 2))
        p.op = OP_LE, rest += 2;
    else if (!strncmp(rest, ">=", 2))
        p.op = OP_GE, rest += 2;
    else if (*rest == '=')
        p.op = OP_EQ, rest += rest[1] == '=' ? 2 : 1;
    else if (*rest == '<')
        p.op = OP_LT, rest += 1;
    else if (*rest == '>')
        p.op = OP_GT, rest += 1;
    else {
        free(name);
        return joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': '%c' is not an operator "
                          "(= != < <= > >=)", verb_name(verb), expr, *rest);
    }
    int rc = 0;
    if (!name[0]) {
        rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': no field name before the "
                        "operator", verb_name(verb), expr);
        goto out;
    }
    if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
        strlen(name)) {
        rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': \"%s\" is not a field name "
                        "(letters, digits, _ . -)", verb_name(verb), expr, name);
        goto out;
    }
    p.kind = N_FIELD;
    int bare = 0;
    for (size_t i = 0; verb != JOUST_FILTER_WHERE && i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i].name)) {
            p.kind = names[i].kind;
            bare = names[i].bare;
        }
    if (p.op == OP_BARE && !bare) {
        rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': needs an operator and a value "
                        "(e.g. %s>=0.5)%s", verb_name(verb), expr, name,
                        p.kind == N_FIELD ? "; error, duplicate and ranked stand alone" : "");
        goto out;
    }
    if (p.op != OP_BARE && bare) {
        rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': %s stands alone (no operator; "
                        "--drop %s or --keep %s)", verb_name(verb), expr, name, name, name);
        goto out;
    }
    if (p.op != OP_BARE) {
        p.text = trim(rest, strlen(rest));
        p.is_num = parse_number(p.text, &p.num);
        int numeric = p.kind != N_FIELD && p.kind != N_STATUS;
        if (!p.text[0]) {
            rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': no value after the operator",
                            verb_name(verb), expr);
            goto out;
        }
        if (numeric && !p.is_num) {
            rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': %s compares with a number, "
                            "not \"%s\"", verb_name(verb), expr, name, p.text);
            goto out;
        }
        if (p.kind == N_STATUS && (p.op != OP_EQ && p.op != OP_NE)) {
            rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': status takes = or !=",
                            verb_name(verb), expr);
            goto out;
        }
        if (p.kind == N_STATUS && strcmp(p.text, "ranked") && strcmp(p.text, "error") &&
            strcmp(p.text, "unjudged")) {
            rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': a status is ranked, error or "
                            "unjudged, not \"%s\"", verb_name(verb), expr, p.text);
            goto out;
        }
        if (p.kind == N_GLOBAL && (p.op == OP_EQ || p.op == OP_NE)) {
            rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': global_percentile takes < <= "
                            "> or >=", verb_name(verb), expr);
            goto out;
        }
        if ((p.kind == N_PERCENTILE || p.kind == N_GLOBAL) && (p.num < 0 || p.num > 100)) {
            rc = joust_errf(err, errlen, JOUST_EINVAL, "--%s '%s': a percentile is between 0 "
                            "and 100", verb_name(verb), expr);
            goto out;
        }
    }
    if (p.kind == N_FIELD)
        p.field = xstrdup(name);
    joust_buf_t b = {0};
    joust_buf_printf(&b, "%s %s", verb_name(verb), expr);
    p.expr = b.data;
    xgrow((void **)&f->p, &f->cap, f->n + 1, sizeof *f->p);
    f->p[f->n++] = p;
    free(name);
    return 0;
out:
    free(name);
    free(p.text);
    return rc;
}

static int kind_needs_store(name_kind k)
{
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].kind == k)
            return names[i].store;
    return 0;
}

static int uses_sizes(const joust_filter_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->p[i].kind == N_WIDTH || f->p[i].kind == N_HEIGHT || f->p[i].kind == N_ASPECT)
            return 1;
    return 0;
}

int joust_filter_uses_store(const joust_filter_t *f)
{
    return joust_filter_needs_store(f) || uses_sizes(f);
}

int joust_filter_needs_store(const joust_filter_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (kind_needs_store(f->p[i].kind))
            return 1;
    return 0;
}

static int cmp_num(op_kind op, double a, double b)
{
    switch (op) {
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_GT: return a > b;
    case OP_GE: return a >= b;
    default: return 0;
    }
}

/* ---- global percentiles: the k-th smallest ranked score, exactly, in
 * passes over the run's scores (16 bits of an order-preserving key per
 * pass), with 65536 counters ---- */

static uint64_t order_key(double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return u >> 63 ? ~u : u | 1ull << 63;
}

static double key_value(uint64_t u)
{
    u = u >> 63 ? u & ~(1ull << 63) : ~u;
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static int ranked_score(const Joust__ScoreRecord *s, double *v)
{
    if (!s || !s->has_rank || !s->has_score || s->error)
        return 0;
    *v = s->score;
    return 1;
}

/* Counts of the ranked scores whose key has `prefix` in its top `bits`
 * bits, by their next 16 bits; *n the ranked scores in all. */
static int score_histogram(joust_store_t *st, uint32_t run_id, uint64_t prefix, int bits,
                           uint64_t *hist, uint64_t *n)
{
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new(st, JOUST_REC_SCORES, run_id, &c);
    if (rc < 0)
        return rc;
    memset(hist, 0, 65536 * sizeof *hist);
    *n = 0;
    for (; joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        Joust__ScoreRecord *s = joust_rec_cursor_score(c);
        double v;
        if (ranked_score(s, &v)) {
            uint64_t k = order_key(v);
            (*n)++;
            if (bits == 0 || k >> (64 - bits) == prefix)
                hist[(k >> (48 - bits)) & 0xffff]++;
        }
        joust_rec_free(s);
    }
    rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    return rc;
}

static int kth_score(joust_store_t *st, uint32_t run_id, uint64_t k, double *out)
{
    uint64_t *hist = xmalloc(65536 * sizeof *hist), prefix = 0, n;
    int rc = 0;
    for (int bits = 0; bits < 64 && rc == 0; bits += 16) {
        if ((rc = score_histogram(st, run_id, prefix, bits, hist, &n)) < 0)
            break;
        size_t b = 0;
        while (b < 65535 && k >= hist[b])
            k -= hist[b++];
        prefix = prefix << 16 | b;
    }
    free(hist);
    *out = key_value(prefix);
    return rc;
}

static int ranked_count(joust_store_t *st, uint32_t run_id, uint64_t *n)
{
    uint64_t *hist = xmalloc(65536 * sizeof *hist);
    int rc = score_histogram(st, run_id, 0, 0, hist, n);
    free(hist);
    return rc;
}

/* global_percentile OP P: percentile = 100 * (below + 1/2) / N, where
 * below is the number of ranked scores lower than the image's. below >= k
 * holds iff k <= 0 or score > a[k - 1] (a: the scores, ascending). */
static int global_thresholds(joust_filter_t *f, joust_store_t *st, uint32_t run_id)
{
    uint64_t n = 0;
    int rc = 0, counted = 0;
    for (size_t i = 0; i < f->n && rc == 0; i++) {
        pred *p = &f->p[i];
        if (p->kind != N_GLOBAL)
            continue;
        if (!counted && (rc = ranked_count(st, run_id, &n)) < 0)
            break;
        counted = 1;
        if (n == 0) {
            p->never_true = 1;
            continue;
        }
        /* percentile = 100 * (below + 1/2) / n (the mid-rank, as scoring's) */
        double c = p->num / 100.0 * (double)n - 0.5;
        /* >= P: below >= ceil(c); > P: below >= floor(c) + 1; < and <= negate those */
        double need = p->op == OP_GE || p->op == OP_LT ? ceil(c - 1e-9) : floor(c + 1e-9) + 1;
        p->negate = p->op == OP_LT || p->op == OP_LE;
        if (need <= 0)
            p->always_true = 1;
        else if (need > (double)(n ? n - 1 : 0))
            p->never_true = 1;
        else
            rc = kth_score(st, run_id, (uint64_t)need - 1, &p->threshold);
    }
    return rc;
}

/* ---- the output: plain, gzip or zstd by the name ---- */

typedef struct {
    joust_outfile_t *f;
    int kind; /* 0 plain, 1 gzip, 2 zstd */
    z_stream z;
    ZSTD_CCtx *zc;
    unsigned char *buf;
    size_t cap;
} sink;

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int sink_open(sink *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->kind = ends_with(path, ".gz") ? 1 : ends_with(path, ".zst") || ends_with(path, ".zstd") ? 2 : 0;
    int rc = joust_outfile_open(path, &s->f);
    if (rc < 0)
        return rc;
    s->cap = 1 << 17;
    s->buf = xmalloc(s->cap);
    if (s->kind == 1 && deflateInit2(&s->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return JOUST_EIO;
    if (s->kind == 2 && !(s->zc = ZSTD_createCCtx()))
        return JOUST_EIO;
    return 0;
}

static int sink_put(sink *s, const void *data, size_t len, int end)
{
    if (s->kind == 0) {
        joust_outfile_write(s->f, data, len);
        return 0;
    }
    if (s->kind == 1) {
        s->z.next_in = (Bytef *)(uintptr_t)data;
        s->z.avail_in = (uInt)len;
        int zr;
        do {
            s->z.next_out = s->buf;
            s->z.avail_out = (uInt)s->cap;
            zr = deflate(&s->z, end ? Z_FINISH : Z_NO_FLUSH);
            if (zr == Z_STREAM_ERROR)
                return JOUST_EIO;
            joust_outfile_write(s->f, s->buf, s->cap - s->z.avail_out);
        } while (s->z.avail_out == 0 || (end && zr != Z_STREAM_END));
        return 0;
    }
    ZSTD_inBuffer in = {data, len, 0};
    size_t left;
    do {
        ZSTD_outBuffer out = {s->buf, s->cap, 0};
        left = ZSTD_compressStream2(s->zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left))
            return JOUST_EIO;
        joust_outfile_write(s->f, s->buf, out.pos);
    } while (end ? left != 0 : in.pos < in.size);
    return 0;
}

static int sink_close(sink *s, int ok)
{
    int rc = ok ? sink_put(s, "", 0, 1) : JOUST_EIO;
    if (s->kind == 1)
        deflateEnd(&s->z);
    ZSTD_freeCCtx(s->zc);
    free(s->buf);
    if (rc == 0)
        rc = joust_outfile_commit(&s->f);
    joust_outfile_abort(&s->f);
    return rc;
}

/* ---- per line ---- */

typedef struct {
    joust_store_t *st;
    Joust__RunRecord *run;
    joust_rec_cursor_t *images, *scores;
    uint64_t first, end;      /* the manifest's images in the store */
    joust_u64map_t prompt_n;  /* prompt id -> ranked images + 1 (a cache) */
    joust_filter_t *f;
} ctx;

typedef struct {
    uint64_t lineno;
    manifest_item item;
    int parsed;               /* item is valid */
    cJSON *json;              /* the line's fields, when a predicate reads them */
    Joust__ImageRecord *img;  /* NULL: not in the store */
    Joust__ScoreRecord *score;
    int looked_up;
    Joust__SignatureRecord *sig; /* joust dedup's signature: sizes */
    int sig_read;
} line_facts;

/* The image ingest made of this line, if any: the images are read along
 * one cursor in id order, which is line order. */
static Joust__ImageRecord *image_of_line(ctx *c, uint64_t lineno)
{
    while (joust_rec_cursor_valid(c->images) && joust_rec_cursor_id(c->images) < c->end) {
        Joust__ImageRecord *img = joust_rec_cursor_image(c->images);
        if (!img) {
            joust_rec_cursor_next(c->images);
            continue;
        }
        if (img->has_line && img->line == lineno) {
            joust_rec_cursor_next(c->images);
            return img;
        }
        if (img->has_line && img->line > lineno) {
            joust_rec_free(img);
            return NULL;
        }
        joust_rec_free(img);
        joust_rec_cursor_next(c->images);
    }
    return NULL;
}

static void lookup(ctx *c, line_facts *lf)
{
    if (lf->looked_up || !c->st)
        return;
    lf->looked_up = 1;
    lf->img = image_of_line(c, lf->lineno);
    if (lf->img && c->scores && joust_cursor_find(c->scores, lf->img->image_id))
        lf->score = joust_rec_cursor_score(c->scores);
}

/* The image's signature (width, height, bytes) when joust dedup or run
 * --dedup computed one and the image could be read; NULL otherwise. */
static const Joust__SignatureRecord *signature(ctx *c, line_facts *lf)
{
    if (!lf->sig_read && c->st) {
        lf->sig_read = 1;
        lookup(c, lf);
        if (lf->img && joust_rec_signature_get(c->st, lf->img->image_id, &lf->sig) == 0 &&
            lf->sig->status != JOUST__OUTCOME_STATUS__OK) {
            joust_rec_free(lf->sig);
            lf->sig = NULL;
        }
    }
    return lf->sig;
}

/* Ranked images of the prompt (cached). */
static uint64_t prompt_ranked(ctx *c, uint64_t pid)
{
    uint64_t v;
    if (joust_u64map_get(&c->prompt_n, pid + 1, &v))
        return v - 1;
    uint64_t *ids = NULL, n = 0;
    size_t k = 0;
    if (joust_rec_prompt_members(c->st, pid, &ids, &k) == 0)
        for (size_t i = 0; i < k; i++) {
            Joust__ScoreRecord *s = NULL;
            double x;
            if (joust_rec_score_get(c->st, c->run->run_id, ids[i], &s) == 0 && ranked_score(s, &x))
                n++;
            joust_rec_free(s);
        }
    free(ids);
    if (c->prompt_n.len > (1u << 20))
        joust_u64map_clear(&c->prompt_n);
    joust_u64map_put(&c->prompt_n, pid + 1, n + 1);
    return n;
}

static int field_num(line_facts *lf, const char *name, double *v)
{
    const cJSON *j = lf->json ? cJSON_GetObjectItemCaseSensitive(lf->json, name) : NULL;
    if (!cJSON_IsNumber(j))
        return 0;
    *v = j->valuedouble;
    return 1;
}

/* 1 holds, 0 does not, -1 unknown (why says what is missing). */
static int eval(ctx *c, const pred *p, line_facts *lf, joust_buf_t *why)
{
    double v = 0, w = 0;
    const Joust__ScoreRecord *s = NULL;
    if (kind_needs_store(p->kind)) {
        lookup(c, lf);
        if (!lf->img) {
            joust_buf_puts(why, "not in the store (the line was not ingested)");
            return -1;
        }
        s = lf->score;
    }
    switch (p->kind) {
    case N_ERROR: return s && s->error;
    case N_RANKED: return ranked_score(s, &v);
    case N_STATUS: {
        const char *st = s && s->error ? "error" : ranked_score(s, &v) ? "ranked" : "unjudged";
        return (strcmp(st, p->text) == 0) == (p->op == OP_EQ);
    }
    case N_DUPLICATE: {
        uint64_t first;
        if (lf->img->has_content_hash &&
            joust_rec_index_get(c->st, JOUST_INDEX_CONTENT, lf->img->content_hash, &first) == 0 &&
            first != lf->img->image_id)
            return 1; /* an exact copy of an earlier image */
        Joust__DuplicateRecord *d = NULL; /* a near-duplicate `run --dedup` collapsed */
        int near = joust_rec_duplicate_get(c->st, c->run->run_id, lf->img->image_id, &d) == 0;
        joust_rec_free(d);
        return near;
    }
    case N_SCORE:
    case N_RANK:
    case N_PERCENTILE:
    case N_GLOBAL:
        if (!ranked_score(s, &v)) {
            joust_buf_puts(why, s && s->error ? "no score (an image error)" : "no score (unjudged)");
            return -1;
        }
        if (p->kind == N_RANK)
            v = s->rank;
        if (p->kind == N_PERCENTILE) {
            if (s->has_percentile) { /* scoring's, within the image's group */
                v = s->percentile;
            } else { /* scores from before percentiles were stored: the same mid-rank */
                uint64_t n = prompt_ranked(c, s->prompt_id);
                v = n ? 100.0 * ((double)(n - s->rank) + 0.5) / (double)n : 50;
            }
        }
        if (p->kind == N_GLOBAL) {
            int holds = p->always_true || (!p->never_true && s->score > p->threshold);
            return p->negate ? !holds : holds;
        }
        return cmp_num(p->op, v, p->num);
    case N_WINS:
        if (!s) {
            joust_buf_puts(why, "no score record");
            return -1;
        }
        return cmp_num(p->op, s->wins, p->num);
    case N_COMPARISONS: return cmp_num(p->op, s ? s->comparisons : 0, p->num);
    case N_WIDTH:
    case N_HEIGHT:
    case N_ASPECT: {
        int hw = field_num(lf, "width", &v), hh = field_num(lf, "height", &w);
        const Joust__SignatureRecord *sig = (!hw || !hh) ? signature(c, lf) : NULL;
        if (!hw && sig && sig->has_width)
            v = sig->width, hw = 1;
        if (!hh && sig && sig->has_height)
            w = sig->height, hh = 1;
        if (p->kind == N_WIDTH && !hw) {
            joust_buf_puts(why, "no width (no numeric \"width\" on the line, no signature)");
            return -1;
        }
        if (p->kind == N_HEIGHT && !hh) {
            joust_buf_puts(why, "no height (no numeric \"height\" on the line, no signature)");
            return -1;
        }
        if (p->kind == N_ASPECT && (!hw || !hh || w <= 0)) {
            joust_buf_puts(why, "no aspect ratio (no width and height on the line, no signature)");
            return -1;
        }
        return cmp_num(p->op, p->kind == N_WIDTH ? v : p->kind == N_HEIGHT ? w : v / w, p->num);
    }
    case N_BYTES: {
        joust_uri ref;
        char e[256];
        struct stat sb;
        const Joust__SignatureRecord *sig = signature(c, lf);
        if (sig && sig->has_bytes)
            return cmp_num(p->op, (double)sig->bytes, p->num);
        int ok = joust_uri_parse(lf->img->uri, NULL, &ref, e, sizeof e) == 0;
        if (ok && ref.scheme == JOUST_URI_TAR)
            v = (double)ref.size;
        else
            ok = ok && ref.scheme == JOUST_URI_LOCAL && stat(ref.path, &sb) == 0 &&
                 S_ISREG(sb.st_mode) && ((v = (double)sb.st_size), 1);
        joust_uri_clear(&ref);
        if (!ok) {
            joust_buf_puts(why, "size unknown (not a local file joust can see)");
            return -1;
        }
        return cmp_num(p->op, v, p->num);
    }
    case N_FIELD: {
        const cJSON *j = lf->json ? cJSON_GetObjectItemCaseSensitive(lf->json, p->field) : NULL;
        if (!j || cJSON_IsNull(j)) {
            joust_buf_printf(why, "no field \"%s\"", p->field);
            return -1;
        }
        if (cJSON_IsNumber(j) && p->is_num)
            return cmp_num(p->op, j->valuedouble, p->num);
        const char *t = cJSON_IsString(j) ? j->valuestring
                      : cJSON_IsTrue(j)   ? "true"
                      : cJSON_IsFalse(j)  ? "false"
                                          : NULL;
        if (!t || (p->op != OP_EQ && p->op != OP_NE)) {
            joust_buf_printf(why, "field \"%s\" is not a number", p->field);
            return -1;
        }
        return (strcmp(t, p->text) == 0) == (p->op == OP_EQ);
    }
    }
    return -1;
}

static void reject(joust_buf_t *out, const line_facts *lf, const char *reason)
{
    joust_buf_printf(out, "{\"line\":%" PRIu64 ",\"id\":", lf->lineno);
    if (lf->parsed && lf->item.id)
        joust_buf_json_str(out, lf->item.id);
    else if (lf->img && lf->img->caller_id)
        joust_buf_json_str(out, lf->img->caller_id);
    else
        joust_buf_puts(out, "null");
    joust_buf_puts(out, ",\"image\":");
    if (lf->parsed)
        joust_buf_json_str(out, lf->item.image);
    else
        joust_buf_puts(out, "null");
    joust_buf_puts(out, ",\"reason\":");
    joust_buf_json_str(out, reason);
    joust_buf_puts(out, "}\n");
}

/* The reason a line is rejected (appended to why), or none: returns the
 * predicate's index, or -1 when the line is kept. */
static long judge_line(ctx *c, line_facts *lf, joust_buf_t *why)
{
    joust_filter_t *f = c->f;
    for (size_t i = 0; i < f->n; i++) {
        const pred *p = &f->p[i];
        size_t mark = why->len;
        joust_buf_puts(why, p->expr);
        joust_buf_puts(why, ": ");
        size_t before = why->len;
        int r = eval(c, p, lf, why);
        if (p->verb != JOUST_FILTER_DROP && r != 1) {
            if (why->len == before)
                joust_buf_puts(why, "does not hold");
            return (long)i;
        }
        if (p->verb == JOUST_FILTER_DROP && r == 1) {
            joust_buf_puts(why, "holds");
            return (long)i;
        }
        why->len = mark;
        if (why->data)
            why->data[mark] = '\0';
    }
    return -1;
}

static int needs_json(const joust_filter_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->p[i].kind == N_FIELD || f->p[i].kind == N_WIDTH || f->p[i].kind == N_HEIGHT ||
            f->p[i].kind == N_ASPECT)
            return 1;
    return 0;
}

static int open_store_side(ctx *c, const joust_filter_io *io, uint64_t file_hash)
{
    uint64_t added, first;
    if (joust_rec_index_get(io->st, JOUST_INDEX_MANIFEST, file_hash, &added) != 0 ||
        joust_rec_index_get(io->st, JOUST_INDEX_MANIFEST_FIRST, file_hash, &first) != 0) {
        if (!joust_filter_needs_store(c->f)) { /* sizes: the line's fields alone */
            c->st = NULL;
            return 0;
        }
        log_error("filter: %s was not ingested into this store (run joust ingest or joust run "
                  "on it first, with the same --db)", io->manifest);
        return JOUST_ENOTFOUND;
    }
    c->first = first;
    c->end = first + added;
    int rc = joust_rec_cursor_new(io->st, JOUST_REC_IMAGES, 0, &c->images);
    if (rc < 0)
        return rc;
    joust_rec_cursor_seek(c->images, first);
    if (!joust_filter_needs_store(c->f))
        return 0; /* sizes from signatures only: no run */
    rc = joust_run_open(io->st, io->run, NULL, &c->run);
    if (rc < 0) {
        log_error("filter: run '%s': %s", io->run, joust_strerror(rc));
        return rc;
    }
    joust_score_summary sum;
    int refitted = 0;
    if ((rc = joust_scores_ensure(io->st, c->run, NULL, &sum, &refitted)) < 0) {
        log_error("filter: run '%s': cannot fit its scores: %s", io->run, joust_strerror(rc));
        return rc;
    }
    joust_score_summary_clear(&sum);
    if (refitted)
        log_info("filter: run '%s': scores were not current; fitted again", io->run);
    if ((rc = global_thresholds(c->f, io->st, c->run->run_id)) < 0 ||
        (rc = joust_rec_cursor_new(io->st, JOUST_REC_SCORES, c->run->run_id, &c->scores)) < 0)
        return rc;
    return 0;
}

int joust_filter_run(joust_filter_t *f, const joust_filter_io *io, joust_filter_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    free(f->by_pred);
    f->by_pred = xcalloc(f->n + 1, sizeof *f->by_pred);
    stats->by_pred = f->by_pred;
    stats->n_preds = f->n;
    int fd;
    size_t size;
    char why[512];
    uint64_t file_hash = 0;
    int rc = joust_manifest_open(io->manifest, 0, &fd, &size, NULL, why, sizeof why);
    if (rc == 0 && (rc = joust_hash_fd(fd, size, &file_hash)) == 0 && lseek(fd, 0, SEEK_SET) != 0)
        rc = JOUST_EIO;
    if (rc < 0) {
        log_error("filter: manifest %s", why[0] ? why : io->manifest);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    FILE *in = fdopen(fd, "r");
    if (!in) {
        close(fd);
        return JOUST_EIO;
    }
    ctx c = {.f = f, .st = joust_filter_needs_store(f) || uses_sizes(f) ? io->st : NULL};
    joust_u64map_init(&c.prompt_n);
    sink kept = {0}, rej = {0};
    if (c.st)
        rc = open_store_side(&c, io, file_hash);
    if (rc == 0 && (rc = sink_open(&kept, io->out)) == 0)
        rc = sink_open(&rej, io->rejected);
    int json = needs_json(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0, consumed = 0;
    joust_buf_t reason = {0}, out = {0};
    while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if ((consumed += (uint64_t)n) > size)
            break; /* grown while read: what was hashed is what counts */
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (strspn(line, " \t") >= len) { /* blank: no image; kept as it was */
            sink_put(&kept, line, (size_t)n, 0);
            continue;
        }
        stats->lines++;
        line_facts lf = {.lineno = lineno};
        joust_buf_reset(&reason);
        long which = -1;
        if (manifest_parse_line(line, len, &lf.item, why, sizeof why) < 0) {
            joust_buf_printf(&reason, "not a valid manifest line: %s", why);
            which = (long)f->n;
        } else {
            lf.parsed = 1;
            if (json)
                lf.json = cJSON_ParseWithLength(line, len);
            which = judge_line(&c, &lf, &reason);
        }
        if (which < 0) {
            stats->kept++;
            rc = sink_put(&kept, line, (size_t)n, 0);
        } else {
            stats->rejected++;
            f->by_pred[which]++;
            joust_buf_reset(&out);
            reject(&out, &lf, reason.data);
            rc = sink_put(&rej, out.data, out.len, 0);
        }
        if (lf.parsed)
            manifest_item_clear(&lf.item);
        cJSON_Delete(lf.json);
        joust_rec_free(lf.img);
        joust_rec_free(lf.score);
        joust_rec_free(lf.sig);
    }
    if (rc == 0 && ferror(in))
        rc = JOUST_EIO;
    free(line);
    fclose(in);
    joust_buf_free(&reason);
    joust_buf_free(&out);
    int rk = kept.f ? sink_close(&kept, rc == 0) : 0;
    int rr = rej.f ? sink_close(&rej, rc == 0 && rk == 0) : 0;
    if (rc == 0)
        rc = rk ? rk : rr;
    joust_rec_cursor_destroy(&c.images);
    joust_rec_cursor_destroy(&c.scores);
    joust_rec_free(c.run);
    joust_u64map_free(&c.prompt_n);
    return rc;
}
