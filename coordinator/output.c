/* Output: files and the terminal report of a scored run (output.h). */
#define _GNU_SOURCE /* sync_file_range, copy_file_range */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bt.h"
#include "buf.h"
#include "err.h"
#include "grouping.h"
#include "clock.h"
#include "log.h"
#include "numfmt.h"
#include "records.h"
#include "run.h"
#include "u64map.h"
#include "xalloc.h"

/* ----------------------------------------------------- atomic files --- */

struct joust_outfile {
    FILE *f;
    char *path, *tmp;
    int err; /* errno of the first failure; 0 while all is well */
    off_t written, flushed; /* bytes handed to the file; those whose writeback was started */
    int side;               /* a side file (appended to another, then removed): no writeback */
};

/* Writeback is started every OUTFILE_WRITEBACK bytes (sync_file_range), so
 * the disk writes while the rest is made instead of all at the fsync. */
enum { OUTFILE_WRITEBACK = 8 << 20 };

int joust_outfile_open(const char *path, joust_outfile_t **out)
{
    *out = NULL;
    size_t n = strlen(path) + 32;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    /* A leftover of a crashed process with the same pid is overwritten;
     * O_NOFOLLOW: a symlink planted under the temporary name is refused;
     * O_RDWR: a side file is read back (outfile_append). */
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        log_error("cannot write %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return JOUST_EIO;
    }
    joust_outfile_t *o = xcalloc(1, sizeof *o);
    o->f = f;
    o->path = xstrdup(path);
    o->tmp = tmp;
    *out = o;
    return 0;
}

/* Starts the writeback of what was written since the last start. */
static void outfile_writeback(joust_outfile_t *f)
{
    if (f->err || f->written == f->flushed)
        return;
    if (fflush(f->f) != 0) {
        f->err = errno ? errno : EIO;
        return;
    }
    /* Advice only: a file system without it writes at the fsync. */
    (void)sync_file_range(fileno(f->f), f->flushed, f->written - f->flushed,
                          SYNC_FILE_RANGE_WRITE);
    f->flushed = f->written;
}

void joust_outfile_write(joust_outfile_t *f, const void *data, size_t len)
{
    if (!f->err && len && fwrite(data, 1, len, f->f) != len)
        f->err = errno ? errno : EIO;
    f->written += (off_t)len;
    if (!f->side && f->written - f->flushed >= OUTFILE_WRITEBACK)
        outfile_writeback(f);
}

/* Appends what src holds to dst (in the kernel when it can:
 * copy_file_range), then removes src (a side file of the same folder). A
 * failure of either is dst's, reported at its commit. */
static void outfile_append(joust_outfile_t *dst, joust_outfile_t **src_p)
{
    joust_outfile_t *src = *src_p;
    if (!dst->err && src->err)
        dst->err = src->err;
    if (!dst->err && (fflush(src->f) != 0 || fflush(dst->f) != 0))
        dst->err = errno ? errno : EIO;
    int in = fileno(src->f), out = fileno(dst->f);
    off_t at = 0;
    while (!dst->err && at < src->written) {
        ssize_t n = copy_file_range(in, &at, out, NULL, (size_t)(src->written - at), 0);
        if (n > 0)
            continue;
        if (n == 0) {
            dst->err = EIO;
            break;
        }
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
            dst->err = errno;
            break;
        }
        char buf[1 << 16]; /* no copy_file_range here: through a buffer */
        ssize_t r = pread(in, buf, sizeof buf, at);
        if (r <= 0 || write(out, buf, (size_t)r) != r)
            dst->err = r < 0 ? errno : EIO;
        else
            at += r;
    }
    dst->written += src->written;
    outfile_writeback(dst);
    joust_outfile_abort(src_p);
}

static void outfile_free(joust_outfile_t *f)
{
    free(f->path);
    free(f->tmp);
    free(f);
}

/* fsync of the folder that holds path, so the rename itself is durable. */
static int sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return rc == EINVAL ? 0 : rc; /* some file systems cannot sync folders */
}

int joust_outfile_commit(joust_outfile_t **f_p)
{
    joust_outfile_t *f = *f_p;
    if (!f)
        return 0;
    *f_p = NULL;
    int err = f->err;
    if (!err && fflush(f->f) != 0)
        err = errno ? errno : EIO;
    if (!err && fsync(fileno(f->f)) != 0)
        err = errno;
    if (fclose(f->f) != 0 && !err)
        err = errno ? errno : EIO;
    if (!err && rename(f->tmp, f->path) != 0)
        err = errno;
    if (err) {
        unlink(f->tmp);
        log_error("writing %s failed: %s", f->path, strerror(err));
        outfile_free(f);
        return JOUST_EIO;
    }
    if ((err = sync_dir_of(f->path)) != 0)
        log_warn("%s: syncing its folder failed: %s", f->path, strerror(err));
    outfile_free(f);
    return 0;
}

int joust_outfile_write_all(const char *path, const void *data, size_t len)
{
    joust_outfile_t *f;
    int rc = joust_outfile_open(path, &f);
    if (rc == 0) {
        joust_outfile_write(f, data, len);
        rc = joust_outfile_commit(&f);
    }
    return rc;
}

void joust_outfile_abort(joust_outfile_t **f_p)
{
    joust_outfile_t *f = *f_p;
    if (!f)
        return;
    *f_p = NULL;
    fclose(f->f);
    unlink(f->tmp);
    outfile_free(f);
}

/* ------------------------------------------------------ scored walk --- */

typedef joust_scored_image scored_image;
typedef joust_scored_prompt scored_prompt;

static int by_rank(const void *x, const void *y)
{
    const scored_image *a = x, *b = y;
    uint32_t ra = a->score && a->score->has_rank ? a->score->rank : UINT32_MAX;
    uint32_t rb = b->score && b->score->has_rank ? b->score->rank : UINT32_MAX;
    if (ra != rb)
        return ra < rb ? -1 : 1;
    return a->img->image_id < b->img->image_id ? -1 : 1;
}

static void scored_prompt_clear(scored_prompt *sp)
{
    for (size_t i = 0; i < sp->n; i++) {
        joust_rec_free(sp->items[i].img);
        joust_rec_free(sp->items[i].score);
    }
    free(sp->items);
    joust_rec_free(sp->prompt);
    memset(sp, 0, sizeof *sp);
}

typedef int (*scored_fn)(const scored_prompt *sp, void *arg);

typedef struct {
    joust_store_t *st;
    uint32_t run_id;
    scored_fn fn;
    void *arg;
    joust_rec_cursor_t *images, *scores; /* members come in ascending id order */
    const Joust__RunRecord *run;
} scored_walk;

/* Loads a prompt's images with their scores, best rank first. */
static int scored_prompt_load(scored_walk *w, uint64_t pid, const uint64_t *ids, size_t n,
                              scored_prompt *sp)
{
    memset(sp, 0, sizeof *sp);
    int rc = joust_rec_prompt_get(w->st, pid, &sp->prompt);
    if (rc < 0)
        return rc;
    sp->items = xcalloc(n ? n : 1, sizeof *sp->items);
    for (size_t i = 0; i < n && rc == 0; i++) {
        int found = joust_cursor_find(w->images, ids[i]);
        sp->items[i].img = found ? joust_rec_cursor_image(w->images) : NULL;
        if (!sp->items[i].img) {
            log_error("image %" PRIu64 " of prompt %" PRIu64 ": %s", ids[i], pid,
                      found ? "record does not unpack" : "no record");
            rc = found ? JOUST_ECORRUPT : JOUST_ENOTFOUND;
            break;
        }
        sp->n++;
        if (!joust_cursor_find(w->scores, ids[i]))
            continue; /* not scored yet */
        sp->items[i].score = joust_rec_cursor_score(w->scores);
        if (!sp->items[i].score) {
            log_error("score of image %" PRIu64 ": record does not unpack", ids[i]);
            rc = JOUST_ECORRUPT;
        }
    }
    if (rc < 0)
        scored_prompt_clear(sp);
    else
        qsort(sp->items, sp->n, sizeof *sp->items, by_rank);
    return rc;
}

static int walk_one(uint64_t pid, const uint64_t *ids, size_t n, void *arg)
{
    scored_walk *w = arg;
    uint64_t *mine = xmalloc((n ? n : 1) * sizeof *mine);
    size_t kept = 0; /* the run's images: another run's may share the prompt */
    for (size_t i = 0; i < n; i++)
        if (joust_run_covers(w->run, ids[i]))
            mine[kept++] = ids[i];
    scored_prompt sp;
    int rc = kept ? scored_prompt_load(w, pid, mine, kept, &sp) : 0;
    free(mine);
    if (!kept)
        return rc;
    if (rc < 0)
        return rc;
    rc = w->fn(&sp, w->arg);
    scored_prompt_clear(&sp);
    return rc;
}

int joust_scores_walk(joust_store_t *st, const Joust__RunRecord *run, scored_fn fn, void *arg)
{
    scored_walk w = {st, run->run_id, fn, arg, NULL, NULL, run};
    int rc = joust_rec_cursor_new(st, JOUST_REC_IMAGES, 0, &w.images);
    if (rc == 0)
        rc = joust_rec_cursor_new(st, JOUST_REC_SCORES, run->run_id, &w.scores);
    if (rc == 0)
        /* A grouped run's prompt ids are not its plan's (grouping.h): every
         * prompt of its images. */
        rc = joust_rec_prompt_walk(st, 1, joust_run_grouped(run) ? 0 : joust_run_prompt_bound(run),
                                   walk_one, &w, NULL);
    if (rc > 0)
        rc = 0;
    if (rc == 0)
        rc = joust_rec_cursor_error(w.images);
    if (rc == 0)
        rc = joust_rec_cursor_error(w.scores);
    joust_rec_cursor_destroy(&w.images);
    joust_rec_cursor_destroy(&w.scores);
    return rc;
}

const char *joust_image_label(const Joust__ImageRecord *img, char *buf, size_t len)
{
    if (img->caller_id)
        return img->caller_id;
    /* Stores ingested before ids were always set: the id ingest gives an
     * image without one today (manifest.h, "#N"), which no caller id takes. */
    snprintf(buf, len, "#%" PRIu64, img->image_id);
    return buf;
}

/* ------------------------------------------------------------ exports --- */

void joust_json_prompt_id(joust_buf_t *b, const Joust__PromptRecord *p)
{
    if (p->caller_id)
        joust_buf_json_str(b, p->caller_id);
    else
        joust_buf_printf(b, "%" PRIu64, p->prompt_id);
}

/* One row of scores.jsonl / scores.csv, from the store's records or from a
 * fit's table. Strings are borrowed. */
typedef struct {
    joust_str_view label, uri, model; /* model.s NULL: none */
    int ranked;                       /* a score, a stderr and a rank */
    double score, stderr, wins;
    uint32_t rank, cmp;
    int has_pct, has_comp;            /* a percentile; a component (sparse fits) */
    double pct;
    uint32_t comp;
    joust_str_view error;  /* s NULL: none */
    joust_str_view dup_of; /* a collapsed near-duplicate (run --dedup): its
                              representative's label, whose numbers it shows; s NULL: none */
} out_row;

/* A row's status: ranked (a score and a rank), error (an image error:
 * no rank), unjudged (no comparison yet, or not scored yet: no rank). */
static const char *row_status(const out_row *r)
{
    return r->error.s ? "error" : r->ranked ? "ranked" : "unjudged";
}

static joust_str_view view_of(const char *s)
{
    return (joust_str_view){s, s ? strlen(s) : 0};
}

/* The prompt's columns, escaped once for all its images: JSON
 * ,"prompt_id":ID,"prompt":TEXT and CSV ,ID,TEXT, */
static void prompt_columns(joust_buf_t *pj, joust_buf_t *pc, uint64_t prompt_id,
                           joust_str_view caller_id, joust_str_view text)
{
    char num[JOUST_FMT_MAX];
    size_t nlen = joust_fmt_u64(num, prompt_id);
    joust_buf_reset(pj);
    joust_buf_puts(pj, ",\"prompt_id\":");
    if (caller_id.s)
        joust_buf_json_strn(pj, caller_id.s, caller_id.len);
    else
        joust_buf_append(pj, num, nlen);
    joust_buf_puts(pj, ",\"prompt\":");
    joust_buf_json_strn(pj, text.s, text.len);
    joust_buf_reset(pc);
    joust_buf_puts(pc, ",");
    if (caller_id.s)
        joust_buf_csv_strn(pc, caller_id.s, caller_id.len);
    else
        joust_buf_append(pc, num, nlen);
    joust_buf_puts(pc, ",");
    joust_buf_csv_strn(pc, text.s, text.len);
    joust_buf_puts(pc, ",");
}

/* A string literal appended without strlen. */
#define PUT_LIT(b, lit) joust_buf_append((b), (lit), sizeof(lit) - 1)

/* A number as text, formatted once for both files. */
typedef struct {
    char s[JOUST_FMT_MAX];
    size_t n;
} num_text;

/* A row's numbers as both files write them: score, stderr and wins as
 * "%.9g", the percentile as "%.6g", the rest as "%u" (only those the row
 * has are filled). */
typedef struct {
    num_text score, stderr, rank, pct, comp, wins, cmp;
} row_text;

static void row_format(const out_row *r, row_text *t)
{
    if (r->ranked) {
        t->score.n = joust_fmt_g(t->score.s, 9, r->score);
        t->stderr.n = joust_fmt_g(t->stderr.s, 9, r->stderr);
        t->rank.n = joust_fmt_u64(t->rank.s, r->rank);
    }
    if (r->has_pct)
        t->pct.n = joust_fmt_g(t->pct.s, 6, r->pct);
    if (r->has_comp)
        t->comp.n = joust_fmt_u64(t->comp.s, r->comp);
    t->wins.n = joust_fmt_g(t->wins.s, 9, r->wins);
    t->cmp.n = joust_fmt_u64(t->cmp.s, r->cmp);
}

static void put_num(joust_buf_t *b, const num_text *n) { joust_buf_append(b, n->s, n->n); }

static void row_jsonl(joust_buf_t *b, const joust_buf_t *pj, const out_row *r, const row_text *t)
{
    PUT_LIT(b, "{\"id\":");
    joust_buf_json_strn(b, r->label.s, r->label.len);
    PUT_LIT(b, ",\"image\":");
    joust_buf_json_strn(b, r->uri.s, r->uri.len);
    joust_buf_append(b, pj->data, pj->len);
    PUT_LIT(b, ",\"model\":");
    if (r->model.s)
        joust_buf_json_strn(b, r->model.s, r->model.len);
    else
        PUT_LIT(b, "null");
    if (r->ranked) {
        PUT_LIT(b, ",\"score\":");
        put_num(b, &t->score);
        PUT_LIT(b, ",\"stderr\":");
        put_num(b, &t->stderr);
        PUT_LIT(b, ",\"rank\":");
        put_num(b, &t->rank);
    } else {
        PUT_LIT(b, ",\"score\":null,\"stderr\":null,\"rank\":null");
    }
    PUT_LIT(b, ",\"percentile\":");
    if (r->has_pct)
        put_num(b, &t->pct);
    else
        PUT_LIT(b, "null");
    if (r->has_comp) {
        PUT_LIT(b, ",\"component\":");
        put_num(b, &t->comp);
    }
    PUT_LIT(b, ",\"wins\":");
    put_num(b, &t->wins);
    PUT_LIT(b, ",\"comparisons\":");
    put_num(b, &t->cmp);
    PUT_LIT(b, ",\"status\":\"");
    joust_buf_puts(b, row_status(r));
    PUT_LIT(b, "\"");
    if (r->error.s) {
        PUT_LIT(b, ",\"error\":");
        joust_buf_json_strn(b, r->error.s, r->error.len);
    }
    PUT_LIT(b, ",\"duplicate_of\":");
    if (r->dup_of.s)
        joust_buf_json_strn(b, r->dup_of.s, r->dup_of.len);
    else
        PUT_LIT(b, "null");
    PUT_LIT(b, "}\n");
}

static void row_csv(joust_buf_t *b, const joust_buf_t *pc, const out_row *r, const row_text *t)
{
    joust_buf_csv_strn(b, r->label.s, r->label.len);
    PUT_LIT(b, ",");
    joust_buf_csv_strn(b, r->uri.s, r->uri.len);
    joust_buf_append(b, pc->data, pc->len);
    if (r->model.s)
        joust_buf_csv_strn(b, r->model.s, r->model.len);
    if (r->ranked) {
        PUT_LIT(b, ",");
        put_num(b, &t->score);
        PUT_LIT(b, ",");
        put_num(b, &t->stderr);
        PUT_LIT(b, ",");
        put_num(b, &t->rank);
    } else {
        PUT_LIT(b, ",,,");
    }
    PUT_LIT(b, ",");
    put_num(b, &t->wins);
    PUT_LIT(b, ",");
    put_num(b, &t->cmp);
    PUT_LIT(b, ",");
    joust_buf_puts(b, row_status(r));
    PUT_LIT(b, ",");
    if (r->error.s)
        joust_buf_csv_strn(b, r->error.s, r->error.len);
    PUT_LIT(b, ",");
    if (r->has_pct)
        put_num(b, &t->pct);
    PUT_LIT(b, ",");
    if (r->has_comp)
        put_num(b, &t->comp);
    PUT_LIT(b, ",");
    if (r->dup_of.s)
        joust_buf_csv_strn(b, r->dup_of.s, r->dup_of.len);
    PUT_LIT(b, "\n");
}

/* The two files being written: rows are gathered in a buffer per file and
 * handed to the file in large writes. */
typedef struct {
    joust_outfile_t *jsonl, *csv;
    joust_buf_t bj, bc, pj, pc;
    joust_u64map_t dup_map; /* collapsed near-duplicate -> representative (run --dedup) */
    const joust_u64map_t *dups; /* dup_map, or a part's: the whole export's */
} export_ctx;

enum { EXPORT_FLUSH = 1 << 20 };

static void export_flush(export_ctx *e, size_t at_least)
{
    if (e->jsonl && e->bj.len >= at_least) {
        joust_outfile_write(e->jsonl, e->bj.data, e->bj.len);
        joust_buf_reset(&e->bj);
    }
    if (e->csv && e->bc.len >= at_least) {
        joust_outfile_write(e->csv, e->bc.data, e->bc.len);
        joust_buf_reset(&e->bc);
    }
}

static void export_row(export_ctx *e, const out_row *r)
{
    row_text t;
    row_format(r, &t);
    if (e->jsonl)
        row_jsonl(&e->bj, &e->pj, r, &t);
    if (e->csv)
        row_csv(&e->bc, &e->pc, r, &t);
}

static int dup_put(uint64_t image_id, const Joust__DuplicateRecord *d, void *arg)
{
    joust_u64map_put(arg, image_id, d->representative);
    return 0;
}

static int export_open(export_ctx *e, joust_store_t *st, uint32_t run_id, const char *jsonl_path,
                       const char *csv_path)
{
    static const char header[] =
        "id,image,prompt_id,prompt,model,score,stderr,rank,wins,comparisons,status,error,"
        "percentile,component,duplicate_of\n";
    memset(e, 0, sizeof *e);
    joust_u64map_init(&e->dup_map);
    e->dups = &e->dup_map;
    int rc = joust_rec_duplicate_each(st, run_id, dup_put, &e->dup_map);
    if (rc == 0 && jsonl_path)
        rc = joust_outfile_open(jsonl_path, &e->jsonl);
    if (rc == 0 && csv_path && (rc = joust_outfile_open(csv_path, &e->csv)) == 0)
        joust_buf_puts(&e->bc, header);
    return rc;
}

/* Commits both files when rc is 0, else (or when a commit fails) removes
 * what is left; frees the buffers. */
static int export_close(export_ctx *e, int rc)
{
    if (rc == 0) {
        export_flush(e, 0);
        rc = joust_outfile_commit(&e->jsonl);
    }
    if (rc == 0)
        rc = joust_outfile_commit(&e->csv);
    joust_outfile_abort(&e->jsonl);
    joust_outfile_abort(&e->csv);
    joust_buf_free(&e->bj);
    joust_buf_free(&e->bc);
    joust_buf_free(&e->pj);
    joust_buf_free(&e->pc);
    joust_u64map_free(&e->dup_map);
    return rc;
}

/* From the store: a walk of the run's images with their score records. */
static int export_one(const scored_prompt *sp, void *arg)
{
    export_ctx *e = arg;
    const Joust__PromptRecord *p = sp->prompt;
    prompt_columns(&e->pj, &e->pc, p->prompt_id, view_of(p->caller_id), view_of(p->text));
    for (size_t i = 0; i < sp->n; i++) {
        const Joust__ImageRecord *img = sp->items[i].img;
        const Joust__ScoreRecord *s = sp->items[i].score;
        char idbuf[32], repbuf[32];
        /* A collapsed near-duplicate (run --dedup) was not judged: it takes
         * its representative's score and says whose. */
        const char *dup_of = NULL;
        uint64_t rep;
        if (e->dups->len && joust_u64map_get(e->dups, img->image_id, &rep))
            for (size_t j = 0; j < sp->n; j++)
                if (sp->items[j].img->image_id == rep) {
                    s = sp->items[j].score;
                    dup_of = joust_image_label(sp->items[j].img, repbuf, sizeof repbuf);
                }
        out_row r = {.label = view_of(joust_image_label(img, idbuf, sizeof idbuf)),
                     .uri = view_of(img->uri),
                     .model = view_of(img->model),
                     .ranked = s && s->has_rank,
                     .score = s ? s->score : 0,
                     .stderr = s ? s->stderr : 0,
                     .wins = s ? s->wins : 0.0,
                     .rank = s ? s->rank : 0,
                     .cmp = s ? s->comparisons : 0,
                     .has_pct = s && s->has_percentile,
                     .pct = s ? s->percentile : 0,
                     .has_comp = s && s->has_component,
                     .comp = s ? s->component : 0,
                     .error = view_of(s ? s->error : NULL),
                     .dup_of = view_of(dup_of)};
        export_row(e, &r);
    }
    export_flush(e, EXPORT_FLUSH);
    return 0;
}

int joust_scores_export(joust_store_t *st, const Joust__RunRecord *run, const char *jsonl_path,
                        const char *csv_path)
{
    export_ctx e;
    int rc = export_open(&e, st, run->run_id, jsonl_path, csv_path);
    if (rc == 0)
        rc = joust_scores_walk(st, run, export_one, &e);
    return export_close(&e, rc);
}

/* From a fit's table: one pass along the prompt records, one along the image
 * records, the numbers from memory. */
typedef struct {
    uint32_t key; /* rank, UINT32_MAX when none: unranked images go last */
    uint32_t i;   /* the item within the prompt (image id order) */
} rank_key;

static int by_key(const void *x, const void *y)
{
    const rank_key *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* An image's strings, copied out of its record into text: offsets. */
typedef struct {
    size_t label, uri, model; /* model SIZE_MAX: none */
    uint32_t label_len, uri_len, model_len;
} image_strs;

static int table_prompt(joust_rec_cursor_t *prompts, joust_rec_cursor_t *images,
                        const joust_score_table *t, size_t p, export_ctx *e, joust_buf_t *text,
                        image_strs **strs, size_t *strs_cap, rank_key **keys, size_t *keys_cap)
{
    /* Along a cursor, not a Get per prompt: a Get looks through the filter
     * and index blocks of every level (through a 32 MiB cache); the cursor
     * reads each block of the prompts once. */
    if (!joust_cursor_find(prompts, t->pid[p])) {
        log_error("prompt %" PRIu64 ": no record", t->pid[p]);
        return JOUST_ENOTFOUND;
    }
    size_t plen;
    const void *pbytes = joust_rec_cursor_bytes(prompts, &plen);
    joust_prompt_view pv;
    int rc = joust_rec_prompt_view(pbytes, plen, &pv);
    if (rc < 0) {
        log_error("store: the record of prompt %" PRIu64 " does not unpack", t->pid[p]);
        return rc;
    }
    prompt_columns(&e->pj, &e->pc, t->pid[p], pv.caller_id, pv.text);
    uint64_t i0 = t->item_off[p];
    size_t n = t->item_off[p + 1] - i0;
    xgrow((void **)strs, strs_cap, n, sizeof **strs);
    xgrow((void **)keys, keys_cap, n, sizeof **keys);
    joust_buf_reset(text);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = t->ids[i0 + i];
        int found = joust_cursor_find(images, id);
        size_t vlen = 0;
        const void *v = found ? joust_rec_cursor_bytes(images, &vlen) : NULL;
        joust_image_view iv;
        if (!found || joust_rec_image_view(v, vlen, &iv) < 0) {
            log_error("image %" PRIu64 " of prompt %" PRIu64 ": %s", id, t->pid[p],
                      found ? "record does not unpack" : "no record");
            return found ? JOUST_ECORRUPT : JOUST_ENOTFOUND;
        }
        image_strs *s = &(*strs)[i];
        char idbuf[1 + JOUST_FMT_MAX];
        joust_str_view label = iv.caller_id;
        if (!label.s) {
            idbuf[0] = '#';
            label = (joust_str_view){idbuf, 1 + joust_fmt_u64(idbuf + 1, id)};
        }
        s->label = text->len;
        s->label_len = (uint32_t)label.len;
        joust_buf_append(text, label.s, label.len);
        s->uri = text->len;
        s->uri_len = (uint32_t)iv.uri.len;
        joust_buf_append(text, iv.uri.s, iv.uri.len);
        s->model = iv.model.s ? text->len : SIZE_MAX;
        s->model_len = (uint32_t)iv.model.len;
        joust_buf_append(text, iv.model.s, iv.model.len);
        uint32_t rank = t->rank[i0 + i];
        (*keys)[i] = (rank_key){rank ? rank : UINT32_MAX, (uint32_t)i};
    }
    qsort(*keys, n, sizeof **keys, by_key);
    for (size_t k = 0; k < n; k++) {
        uint32_t i = (*keys)[k].i;
        uint64_t g = i0 + i;
        const image_strs *s = &(*strs)[i];
        /* A collapsed near-duplicate: its representative's numbers (as the
         * store path, export_one). */
        joust_str_view dup_of = {NULL, 0};
        uint64_t rep;
        if (e->dups->len && joust_u64map_get(e->dups, t->ids[g], &rep))
            for (size_t j = 0; j < n; j++)
                if (t->ids[i0 + j] == rep) {
                    g = i0 + j;
                    dup_of = (joust_str_view){text->data + (*strs)[j].label, (*strs)[j].label_len};
                }
        uint32_t err = t->error[g];
        out_row r = {.label = {text->data + s->label, s->label_len},
                     .uri = {text->data + s->uri, s->uri_len},
                     .model = {s->model == SIZE_MAX ? NULL : text->data + s->model, s->model_len},
                     .ranked = t->rank[g] != 0,
                     .score = t->score[g],
                     .stderr = t->stderr[g],
                     .wins = t->wins[g],
                     .rank = t->rank[g],
                     .cmp = t->cmp[g],
                     .has_pct = t->rank[g] != 0,
                     .pct = t->pct[g],
                     .has_comp = t->ncomp[p] > 0,
                     .comp = t->comp[g],
                     .error = err ? view_of(t->errors[err - 1]) : (joust_str_view){NULL, 0},
                     .dup_of = dup_of};
        export_row(e, &r);
    }
    export_flush(e, EXPORT_FLUSH);
    return 0;
}

/* Prompts [p0, p1) of the table into e's buffers and files, along a
 * cursor of its own over the prompt records and one over the images. */
typedef struct {
    joust_store_t *st;
    const joust_score_table *t;
    size_t p0, p1;
    export_ctx *e;
    int rc;
} table_part;

static void *table_part_run(void *arg)
{
    table_part *tp = arg;
    joust_rec_cursor_t *images = NULL, *prompts = NULL;
    int rc = joust_rec_cursor_new_scan(tp->st, JOUST_REC_IMAGES, 0, &images);
    if (rc == 0)
        rc = joust_rec_cursor_new_scan(tp->st, JOUST_REC_PROMPTS, 0, &prompts);
    joust_buf_t text = {0};
    image_strs *strs = NULL;
    rank_key *keys = NULL;
    size_t strs_cap = 0, keys_cap = 0;
    for (size_t p = tp->p0; rc == 0 && p < tp->p1; p++)
        rc = table_prompt(prompts, images, tp->t, p, tp->e, &text, &strs, &strs_cap, &keys,
                          &keys_cap);
    if (rc == 0 && images)
        rc = joust_rec_cursor_error(images);
    if (rc == 0 && prompts)
        rc = joust_rec_cursor_error(prompts);
    if (rc == 0)
        export_flush(tp->e, 0);
    joust_rec_cursor_destroy(&images);
    joust_rec_cursor_destroy(&prompts);
    joust_buf_free(&text);
    free(strs);
    free(keys);
    tp->rc = rc;
    return NULL;
}

/* Tables of at least this many images are written in two halves at once:
 * the second half into side files on a thread of its own, appended to the
 * first when both are done (the same bytes as one pass). */
enum { EXPORT_SPLIT_MIN = 64 };

/* A side file for the second half of path (NULL when path is). */
static int side_open(const char *path, joust_outfile_t **out)
{
    *out = NULL;
    if (!path)
        return 0;
    size_t n = strlen(path) + 8;
    char *side = xmalloc(n);
    snprintf(side, n, "%s.part2", path);
    int rc = joust_outfile_open(side, out);
    free(side);
    if (rc == 0) /* its bytes go to disk once, in the file it is appended to */
        (*out)->side = 1;
    return rc;
}

int joust_scores_export_table(joust_store_t *st, const Joust__RunRecord *run,
                              const joust_score_table *t, const char *jsonl_path,
                              const char *csv_path)
{
    export_ctx e, e2;
    memset(&e2, 0, sizeof e2);
    int rc = export_open(&e, st, run->run_id, jsonl_path, csv_path);
    table_part first = {st, t, 0, t->np, &e, 0}, second = {st, t, t->np, t->np, &e2, 0};
    if (rc == 0 && t->ni >= EXPORT_SPLIT_MIN) { /* the halves: by images, whole prompts */
        size_t mid = 0;
        while (mid < t->np && t->item_off[mid] < t->ni / 2)
            mid++;
        first.p1 = second.p0 = mid;
        e2.dups = e.dups;
        rc = side_open(jsonl_path, &e2.jsonl);
        if (rc == 0)
            rc = side_open(csv_path, &e2.csv);
    }
    pthread_t tid;
    int threaded = 0;
    if (rc == 0 && second.p0 < second.p1)
        threaded = pthread_create(&tid, NULL, table_part_run, &second) == 0;
    if (rc == 0)
        table_part_run(&first);
    if (threaded)
        pthread_join(tid, NULL);
    else if (rc == 0 && first.rc == 0 && second.p0 < second.p1) /* no thread: here, after */
        table_part_run(&second);
    if (rc == 0)
        rc = first.rc ? first.rc : second.rc;
    if (rc == 0 && e2.jsonl)
        outfile_append(e.jsonl, &e2.jsonl);
    if (rc == 0 && e2.csv)
        outfile_append(e.csv, &e2.csv);
    export_close(&e2, -1); /* what is left of the side files: removed */
    return export_close(&e, rc);
}

typedef struct {
    FILE *out;
    int max_prompts, top, shown;
} top_ctx;

static int top_one(const scored_prompt *sp, void *arg)
{
    top_ctx *t = arg;
    if (t->shown >= t->max_prompts)
        return 1; /* stop walking */
    t->shown++;
    fprintf(t->out, "prompt %.70s%s (%zu images)\n", sp->prompt->text,
            strlen(sp->prompt->text) > 70 ? "..." : "", sp->n);
    for (size_t i = 0; i < sp->n && (int)i < t->top; i++) {
        const scored_image *it = &sp->items[i];
        char idbuf[32];
        if (it->score && it->score->has_score)
            fprintf(t->out, "  %u. %-24s score %+.3f ± %.3f  wins %.1f/%u\n", it->score->rank,
                    joust_image_label(it->img, idbuf, sizeof idbuf), it->score->score, it->score->stderr,
                    it->score->wins, it->score->comparisons);
    }
    return 0;
}

/* A grouped run (grouping.h): the best `top` of its first groups, from
 * the score records (one scan), each image with its caption. */
typedef struct {
    uint64_t group, image;
    uint32_t rank;
    double score, se, wins;
    uint32_t cmp;
} top_row;

static int by_group_rank(const void *x, const void *y)
{
    const top_row *a = x, *b = y;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

static int print_top_grouped(joust_store_t *st, const Joust__RunRecord *run, FILE *out,
                             int max_groups, int top)
{
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new(st, JOUST_REC_SCORES, run->run_id, &c);
    if (rc < 0)
        return rc;
    top_row *v = NULL;
    size_t n = 0, cap = 0;
    for (; joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        Joust__ScoreRecord *s = joust_rec_cursor_score(c);
        if (s && s->has_rank && s->rank <= (uint32_t)top) {
            xgrow((void **)&v, &cap, n + 1, sizeof *v);
            v[n++] = (top_row){s->prompt_id, joust_rec_cursor_id(c), s->rank, s->score, s->stderr,
                               s->wins, s->comparisons};
        }
        joust_rec_free(s);
    }
    rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    qsort(v, n, sizeof *v, by_group_rank);
    int groups = 0;
    char how[160], idbuf[32];
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i == 0 || v[i].group != v[i - 1].group) {
            if (groups++ == max_groups)
                break;
            fprintf(out, "group %" PRIu64 " (groups: %s)\n", v[i].group,
                    joust_run_grouping(run, how, sizeof how));
        }
        Joust__ImageRecord *img = NULL;
        Joust__PromptRecord *p = NULL;
        if (joust_rec_image_get(st, v[i].image, &img) < 0)
            continue;
        const char *cap_text = joust_rec_prompt_get(st, img->prompt_id, &p) == 0 ? p->text : "";
        fprintf(out, "  %u. %-24s score %+.3f ± %.3f  wins %.1f/%u  %.50s%s\n", v[i].rank,
                joust_image_label(img, idbuf, sizeof idbuf), v[i].score, v[i].se, v[i].wins,
                v[i].cmp, cap_text, strlen(cap_text) > 50 ? "..." : "");
        joust_rec_free(p);
        joust_rec_free(img);
    }
    free(v);
    return rc;
}

int joust_scores_print_top(joust_store_t *st, const Joust__RunRecord *run, FILE *out,
                           int max_prompts, int top)
{
    if (joust_run_grouped(run))
        return print_top_grouped(st, run, out, max_prompts, top);
    top_ctx t = {out, max_prompts, top, 0};
    int rc = joust_scores_walk(st, run, top_one, &t);
    return rc > 0 ? 0 : rc;
}

typedef struct {
    FILE *out;
    int max, shown;
    uint64_t total;
} err_ctx;

static int errors_one(const scored_prompt *sp, void *arg)
{
    err_ctx *e = arg;
    for (size_t i = 0; i < sp->n; i++) {
        const scored_image *it = &sp->items[i];
        if (!it->score || !it->score->error)
            continue;
        if (e->shown++ < e->max)
            fprintf(e->out, "  %s\n", it->score->error);
        e->total++;
    }
    return 0;
}

int joust_scores_print_errors(joust_store_t *st, const Joust__RunRecord *run, FILE *out, int max)
{
    err_ctx e = {out, max, 0, 0};
    int rc = joust_scores_walk(st, run, errors_one, &e);
    if (e.total > (uint64_t)max)
        fprintf(out, "  ... and %" PRIu64 " more\n", e.total - (uint64_t)max);
    return rc;
}

/* ------------------------------------------------------------ models --- */

/* Models in descending score, within each component. */
static uint32_t *order_of(const joust_model_report *r)
{
    uint32_t *ord = xmalloc((r->n ? r->n : 1) * sizeof *ord);
    for (uint32_t i = 0; i < r->n; i++)
        ord[i] = i;
    for (uint32_t i = 1; i < r->n; i++) /* insertion sort: a handful of models */
        for (uint32_t j = i; j > 0; j--) {
            const joust_model_score *a = &r->score[ord[j - 1]], *b = &r->score[ord[j]];
            if (a->component < b->component || (a->component == b->component && a->theta >= b->theta))
                break;
            uint32_t t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    return ord;
}

static void json_num(joust_buf_t *b, const char *key, double v)
{
    if (isfinite(v))
        joust_buf_printf(b, ",\"%s\":%.6g", key, v);
    else
        joust_buf_printf(b, ",\"%s\":null", key);
}

int joust_model_report_write(const joust_model_report *r, const char *path)
{
    joust_outfile_t *f;
    int rc = joust_outfile_open(path, &f);
    if (rc < 0)
        return rc;
    uint32_t *ord = order_of(r);
    joust_buf_t b = {0};
    for (uint32_t k = 0; k < r->n; k++) {
        const joust_model_score *s = &r->score[ord[k]];
        joust_buf_reset(&b);
        joust_buf_puts(&b, "{\"model\":");
        joust_buf_json_str(&b, r->names[ord[k]]);
        json_num(&b, "score", s->theta);
        json_num(&b, "lo", s->lo);
        json_num(&b, "hi", s->hi);
        json_num(&b, "comparisons", s->comparisons);
        joust_buf_printf(&b, ",\"component\":%u}\n", s->component);
        joust_outfile_write(f, b.data, b.len);
    }
    joust_buf_free(&b);
    free(ord);
    return joust_outfile_commit(&f);
}

void joust_model_report_print(const joust_model_report *r, FILE *out)
{
    if (!r->n)
        return;
    uint32_t *ord = order_of(r);
    fprintf(out, "\nmodels (Bradley-Terry over cross-model comparisons, 95%% bootstrap CI over prompts%s):\n",
            r->components > 1 ? "; scores compare only within a component" : "");
    for (uint32_t k = 0; k < r->n; k++) {
        const joust_model_score *s = &r->score[ord[k]];
        fprintf(out, "  %-24s %+.3f  [%+.3f, %+.3f]  %.0f comparisons", r->names[ord[k]], s->theta,
                s->lo, s->hi, s->comparisons);
        if (r->components > 1)
            fprintf(out, "  component %u", s->component);
        fputc('\n', out);
    }
    free(ord);
}

/* ---------------------------------------------------------- the lot --- */

static void print_summary(joust_store_t *st, const Joust__RunRecord *run,
                          const joust_score_summary *sum, FILE *out)
{
    fprintf(out, "\nrun '%s': %" PRIu64 " %s, %" PRIu64 " images scored, %" PRIu64
            " with errors, %" PRIu64 " unjudged (no comparison: no rank); %" PRIu64
            " outcomes ok, %" PRIu64 " failed\n",
            run->name, sum->prompts, joust_run_grouped(run) ? "groups" : "prompts", sum->scored,
            sum->image_errors, sum->unjudged,
            sum->outcomes_ok, sum->outcomes_failed);
    joust_u64map_t dups;
    joust_u64map_init(&dups);
    if (joust_rec_duplicate_each(st, run->run_id, dup_put, &dups) == 0 && dups.len)
        fprintf(out, "%zu of the unjudged are near-duplicates collapsed by --dedup: they take "
                     "their representative's score (duplicate_of)\n", dups.len);
    joust_u64map_free(&dups);
    if (sum->kinds[JOUST__OUTCOME_KIND__BOUNDED] || sum->kinds[JOUST__OUTCOME_KIND__HARD])
        fprintf(out, "outcome kinds: %" PRIu64 " soft, %" PRIu64 " bounded, %" PRIu64 " hard\n",
                sum->kinds[JOUST__OUTCOME_KIND__SOFT], sum->kinds[JOUST__OUTCOME_KIND__BOUNDED],
                sum->kinds[JOUST__OUTCOME_KIND__HARD]);
    if (sum->outcomes_left_out)
        fprintf(out, "%" PRIu64 " ok outcomes left out of the fit by --min-kind/--hard-weight\n",
                sum->outcomes_left_out);
    fprintf(out, "position bias (judge %s): mean p_first - 0.5 = %+.4f", run->judge,
            sum->bias.position_bias);
    if (sum->bias.both_order_pairs)
        fprintf(out, "; order consistency %.3f over %zu pairs judged in both orders",
                sum->bias.consistency, sum->bias.both_order_pairs);
    fprintf(out, "\n");
    if (sum->image_errors) {
        fprintf(out, "images that could not be judged:\n");
        joust_scores_print_errors(st, run, out, 20);
    }
    fprintf(out, "\ntop images:\n");
    joust_scores_print_top(st, run, out, 5, 3);
    joust_model_report_print(&sum->models, out);
}

/* DIR/NAME into buf; JOUST_EINVAL (logged) when it does not fit. */
static int out_path(char *buf, size_t len, const char *out_dir, const char *name)
{
    if (snprintf(buf, len, "%s/%s", out_dir, name) >= (int)len) {
        log_error("output folder name too long: %s", out_dir);
        return JOUST_EINVAL;
    }
    return 0;
}

int joust_output_files(joust_store_t *st, const Joust__RunRecord *run,
                       const joust_score_summary *sum, const joust_score_table *table,
                       const char *out_dir)
{
    char jsonl[PATH_MAX], csv[PATH_MAX], models[PATH_MAX];
    int rc = out_path(models, sizeof models, out_dir, "models.jsonl");
    if (rc == 0)
        rc = out_path(jsonl, sizeof jsonl, out_dir, "scores.jsonl");
    if (rc == 0)
        rc = out_path(csv, sizeof csv, out_dir, "scores.csv");
    if (rc < 0)
        return rc;
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        log_error("cannot create %s: %s", out_dir, strerror(errno));
        return JOUST_EIO;
    }
    int64_t t0 = joust_now_us(), c0 = joust_thread_cpu_us();
    /* A grouped run's files list images by prompt, not by group: from the
     * store. */
    rc = table && !joust_run_grouped(run) ? joust_scores_export_table(st, run, table, jsonl, csv)
                                          : joust_scores_export(st, run, jsonl, csv);
    log_info("run '%s': wrote %s and %s in %.2f s (this thread's CPU %.2f s)", run->name, jsonl,
             csv, (double)(joust_now_us() - t0) / 1e6, (double)(joust_thread_cpu_us() - c0) / 1e6);
    if (rc == 0 && sum->models.n)
        rc = joust_model_report_write(&sum->models, models);
    return rc;
}

void joust_output_report(joust_store_t *st, const Joust__RunRecord *run,
                         const joust_score_summary *sum, const char *out_dir, FILE *report)
{
    print_summary(st, run, sum, report);
    fprintf(report, "\nwrote %s/scores.jsonl and %s/scores.csv%s%s%s\n", out_dir, out_dir,
            sum->models.n ? " and " : "", sum->models.n ? out_dir : "",
            sum->models.n ? "/models.jsonl" : "");
}

int joust_output_scores(joust_store_t *st, const Joust__RunRecord *run,
                        const joust_score_summary *sum, const joust_score_table *table,
                        const char *out_dir, FILE *report)
{
    int rc = joust_output_files(st, run, sum, table, out_dir);
    if (rc == 0 && report)
        joust_output_report(st, run, sum, out_dir, report);
    return rc;
}
