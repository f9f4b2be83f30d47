/* Scoring: one pass over a run's outcomes, one bulk fit, one write
 * (scoring.h). */
#include "scoring.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "bt_bulk.h"
#include "global_fit.h"
#include "grouping.h"
#include "bytes.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "records.h"
#include "run.h"
#include "u64map.h"
#include "xalloc.h"
#ifdef JOUST_HAVE_CUDA
#include "bt_cuda.h"
#endif

/* The marker, kept in the run record (scores_from). */
#define MARKER_MAGIC "JSM1"
#define MARKER_LEN (4 + 8 * 3 + 8 * 3)
_Static_assert(MARKER_LEN == sizeof ((joust_score_table *)0)->from, "the table holds the marker");

/* Tables of at least this many scores are stored by bulk load, in parts of
 * SCORES_LOAD_PART records (~100 bytes each while loaded). */
#define SCORES_LOAD_MIN 16384
#define SCORES_LOAD_PART (1u << 20)

/* ------------------------------------------------------------- options --- */

/* The index of s among the three names, or -1. */
static int name_index(const char *s, const char *const names[3])
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, names[i]))
            return i;
    return -1;
}

int joust_device_parse(const char *s, joust_device *out)
{
    static const char *const names[] = {"auto", "cpu", "cuda"};
    int i = name_index(s, names);
    if (i < 0)
        return JOUST_EINVAL;
    *out = (joust_device)i;
    return 0;
}

int joust_outcomes_parse(const char *s, int *out)
{
    static const char *const names[] = {"auto", "scan", "log"};
    int i = name_index(s, names);
    if (i < 0)
        return JOUST_EINVAL;
    *out = i;
    return 0;
}

const char *joust_device_name(joust_device d)
{
    return d == JOUST_DEVICE_CUDA ? "cuda" : d == JOUST_DEVICE_CPU ? "cpu" : "auto";
}

int joust_kind_parse(const char *s, int *kind)
{
    for (int k = JOUST__OUTCOME_KIND__SOFT; k <= JOUST__OUTCOME_KIND__HARD; k++)
        if (s && !strcmp(s, joust_kind_name(k))) {
            *kind = k;
            return 0;
        }
    return JOUST_EINVAL;
}

const char *joust_kind_name(int kind)
{
    switch (kind) {
    case JOUST__OUTCOME_KIND__SOFT: return "soft";
    case JOUST__OUTCOME_KIND__BOUNDED: return "bounded";
    case JOUST__OUTCOME_KIND__HARD: return "hard";
    default: return "unknown";
    }
}

void joust_score_opts_defaults(joust_score_opts *o)
{
    *o = (joust_score_opts){JOUST_DEVICE_AUTO, 1.0, JOUST__OUTCOME_KIND__HARD, 0, NULL, 0,
                            JOUST_OUTCOMES_AUTO};
}

/* o, or the defaults written into *buf when o is NULL. */
static const joust_score_opts *opts_or_defaults(const joust_score_opts *o, joust_score_opts *buf)
{
    if (o)
        return o;
    joust_score_opts_defaults(buf);
    return buf;
}

static int opts_check(const joust_score_opts *o)
{
    if (!(isfinite(o->hard_weight) && o->hard_weight >= 0) || o->threads < 0 ||
        o->min_kind < JOUST__OUTCOME_KIND__SOFT || o->min_kind > JOUST__OUTCOME_KIND__HARD ||
        (unsigned)o->device > JOUST_DEVICE_CUDA || (unsigned)o->outcomes > JOUST_OUTCOMES_LOG) {
        log_error("scoring: bad options (hard weight %g must be >= 0, min kind %d, threads %d)",
                  o->hard_weight, o->min_kind, o->threads);
        return JOUST_EINVAL;
    }
    return 0;
}

/* The kind an OK outcome counts as: absent or unspecified = SOFT (older
 * records); a value this joust does not know counts as the weakest. */
static int kind_of(const joust_outcome_view *o)
{
    if (!o->has_kind || o->kind == JOUST__OUTCOME_KIND__OUTCOME_KIND_UNSPECIFIED)
        return JOUST__OUTCOME_KIND__SOFT;
    if ((int)o->kind > JOUST__OUTCOME_KIND__HARD)
        return JOUST__OUTCOME_KIND__HARD;
    return (int)o->kind;
}

/* The weight o gives an OK outcome of a kind; 0 leaves it out. */
static double kind_weight(const joust_score_opts *o, int kind)
{
    if (kind > o->min_kind)
        return 0;
    return kind == JOUST__OUTCOME_KIND__HARD ? o->hard_weight : 1.0;
}

/* ------------------------------------------------------------- marker --- */

/* What a fit was made from: the outcomes' digest, the planned prompts, the
 * images, and per kind the weight its outcomes had (-1 when the run had
 * none of that kind, so options that differ only for absent kinds agree). */
typedef struct {
    uint64_t digest, plan_cursor, next_image;
    double weight[3];
} marker;

static void marker_pack(const marker *m, unsigned char out[MARKER_LEN])
{
    memcpy(out, MARKER_MAGIC, 4);
    joust_put_be64(out + 4, m->digest);
    joust_put_be64(out + 12, m->plan_cursor);
    joust_put_be64(out + 20, m->next_image);
    for (int k = 0; k < 3; k++) {
        uint64_t bits;
        memcpy(&bits, &m->weight[k], sizeof bits);
        joust_put_be64(out + 28 + 8 * k, bits);
    }
}

static void marker_weights(marker *m, const joust_score_opts *o, const uint64_t kinds[4])
{
    for (int k = 0; k < 3; k++)
        m->weight[k] = kinds[k + 1] ? kind_weight(o, k + 1) : -1;
}

/* ------------------------------------------------------------ prompts --- */

/* The planned prompts: prompt p owns the items [item_off[p], item_off[p+1])
 * whose image ids ids[] are in id order: the images the run covers
 * (run.h). */
typedef struct {
    uint64_t *pid, *item_off, *ids;
    size_t np, pid_cap, off_cap, ni, ni_cap;
    const Joust__RunRecord *run;
} prompt_set;

static int collect_prompt(uint64_t pid, const uint64_t *ids, size_t n, void *arg)
{
    prompt_set *ps = arg;
    xgrow((void **)&ps->pid, &ps->pid_cap, ps->np + 1, sizeof *ps->pid);
    xgrow((void **)&ps->item_off, &ps->off_cap, ps->np + 2, sizeof *ps->item_off);
    xgrow((void **)&ps->ids, &ps->ni_cap, ps->ni + n, sizeof *ps->ids);
    ps->pid[ps->np] = pid;
    ps->item_off[ps->np] = ps->ni;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (joust_run_covers(ps->run, ids[i]))
            ps->ids[ps->ni + kept++] = ids[i];
    if (!kept)
        return 0; /* another run's prompt */
    ps->ni += kept;
    ps->np++;
    ps->item_off[ps->np] = ps->ni;
    return 0;
}

/* Index of id in the sorted v[0..n); UINT32_MAX when absent. */
static uint32_t index_of(const uint64_t *v, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == id ? (uint32_t)lo : UINT32_MAX;
}

static void prompt_set_free(prompt_set *ps)
{
    free(ps->pid);
    free(ps->item_off);
    free(ps->ids);
}

/* ----------------------------------------------------------- outcomes --- */

/* A run of outcomes of one prompt, in the order they were read. */
typedef struct {
    uint32_t p, n;
} prompt_run;

/* The OK outcomes that enter the fit, in columns: the outcome with
 * prompt-local image indices and its kind (which gives its weight:
 * weights_of), 17 bytes an outcome; their prompt indices as runs (outcomes
 * come grouped by prompt: 8 bytes a run), until order_by_prompt turns them
 * into offsets. */
typedef struct {
    prompt_run *runs;
    size_t nruns, runs_cap;
    joust_outcome *o;
    uint8_t *kind;
    size_t n, cap;
    int weighted; /* some weight != 1 */
    joust_u64map_t error_of; /* image id -> index in errors + 1 */
    char **errors;
    uint64_t *error_ids;     /* errors[i] is image error_ids[i]'s */
    size_t nerrors, errors_cap;
} outcome_set;

static void note_image_error(outcome_set *os, uint64_t image_id, joust_str_view error)
{
    if (!image_id || joust_u64map_get(&os->error_of, image_id, NULL))
        return;
    size_t cap = os->errors_cap;
    xgrow((void **)&os->error_ids, &cap, os->nerrors + 1, sizeof *os->error_ids);
    xgrow((void **)&os->errors, &os->errors_cap, os->nerrors + 1, sizeof *os->errors);
    os->error_ids[os->nerrors] = image_id;
    os->errors[os->nerrors++] = error.len ? xstrndup(error.s, error.len)
                                          : xstrdup("image could not be judged");
    joust_u64map_put(&os->error_of, image_id, os->nerrors);
}

static void outcome_set_free(outcome_set *os)
{
    for (size_t i = 0; i < os->nerrors; i++)
        free(os->errors[i]);
    free(os->errors);
    free(os->error_ids);
    free(os->runs);
    free(os->o);
    free(os->kind);
    joust_u64map_free(&os->error_of);
}

/* Counts of a scan (or of one part of it). */
typedef struct {
    uint64_t ok, failed, kinds[4], left_out, corrupt, stray, bad_p;
} scan_counts;

/* Reads one part of the outcomes into its own set and counts. */
typedef struct {
    const joust_score_opts *opts;
    const prompt_set *ps;
    outcome_set os;
    scan_counts n;
    uint64_t last_pid;
    uint32_t last_p;
} reader;

/* What an outcome is to the fit (classify): nothing (ST_NONE), failed
 * (ST_FAILED, or ST_IMAGE_ERROR naming an image), or OK of kind 1..3
 * (the low bits) that enters the fit (no flag), or is left out by the
 * options (ST_LEFT_OUT), has a p outside [0, 1] (ST_BAD_P) or names an
 * image outside its prompt (ST_STRAY). One byte. */
enum {
    ST_NONE = 0,
    ST_KIND = 3,
    ST_FAILED = 4,
    ST_IMAGE_ERROR = 5,
    ST_LEFT_OUT = 8,
    ST_BAD_P = 16,
    ST_STRAY = 32
};

/* Classifies o; for one that enters the fit, *p is its prompt and *out
 * its prompt-local items and p (calibrated). */
static int classify(reader *r, const joust_outcome_view *o, uint32_t *p, joust_outcome *out)
{
    if (o->status != JOUST__OUTCOME_STATUS__OK || !o->has_p_first)
        return o->status == JOUST__OUTCOME_STATUS__IMAGE_ERROR ? ST_IMAGE_ERROR : ST_FAILED;
    int kind = kind_of(o);
    if (kind_weight(r->opts, kind) == 0)
        return kind | ST_LEFT_OUT;
    if (!(isfinite(o->p_first) && o->p_first >= 0 && o->p_first <= 1))
        return kind | ST_BAD_P;
    const prompt_set *ps = r->ps;
    if (o->prompt_id != r->last_pid) { /* outcomes come grouped by prompt: look up on change */
        r->last_p = index_of(ps->pid, ps->np, o->prompt_id);
        r->last_pid = o->prompt_id;
    }
    uint32_t a = UINT32_MAX, b = UINT32_MAX;
    *p = r->last_p;
    if (*p != UINT32_MAX) {
        const uint64_t *ids = ps->ids + ps->item_off[*p];
        size_t n = ps->item_off[*p + 1] - ps->item_off[*p];
        a = index_of(ids, n, o->first);
        b = index_of(ids, n, o->second);
    }
    if (a == UINT32_MAX || b == UINT32_MAX || a == b)
        return kind | ST_STRAY;
    double pf = r->opts->calibration ? joust_calibration_apply(r->opts->calibration, o->p_first)
                                     : o->p_first;
    *out = (joust_outcome){a, b, pf};
    return kind;
}

/* Counts an outcome of class st. */
static void count_state(scan_counts *n, int st)
{
    if (st == ST_FAILED || st == ST_IMAGE_ERROR) {
        n->failed++;
        return;
    }
    n->ok++;
    n->kinds[st & ST_KIND]++;
    n->left_out += (st & ST_LEFT_OUT) != 0;
    n->bad_p += (st & ST_BAD_P) != 0;
    n->stray += (st & ST_STRAY) != 0;
}

/* Puts an outcome at os->n of columns that have room for it. */
static void put_outcome(outcome_set *os, const joust_score_opts *opts, uint32_t p,
                        const joust_outcome *o, int kind)
{
    if (!os->nruns || os->runs[os->nruns - 1].p != p || os->runs[os->nruns - 1].n == UINT32_MAX) {
        xgrow((void **)&os->runs, &os->runs_cap, os->nruns + 1, sizeof *os->runs);
        os->runs[os->nruns++] = (prompt_run){p, 0};
    }
    os->runs[os->nruns - 1].n++;
    os->o[os->n] = *o;
    os->kind[os->n] = (uint8_t)kind;
    os->weighted |= kind_weight(opts, kind) != 1.0;
    os->n++;
}

/* Appends an outcome that enters the fit (kind, prompt p, its items and p)
 * to the columns. */
static void append_outcome(outcome_set *os, const joust_score_opts *opts, uint32_t p,
                           const joust_outcome *o, int kind)
{
    if (os->n == os->cap) {
        size_t c = os->cap;
        xgrow((void **)&os->kind, &c, os->n + 1, sizeof *os->kind);
        xgrow((void **)&os->o, &os->cap, os->n + 1, sizeof *os->o);
    }
    put_outcome(os, opts, p, o, kind);
}

/* Takes one decoded outcome into the set (or only into the counts). */
static void take_outcome(void *arg, const joust_outcome_view *o)
{
    reader *r = arg;
    uint32_t p = UINT32_MAX;
    joust_outcome oc;
    int st = classify(r, o, &p, &oc);
    count_state(&r->n, st);
    if (st == ST_IMAGE_ERROR)
        note_image_error(&r->os, o->failed_image_id, o->error);
    else if (st >= 1 && st <= ST_KIND)
        append_outcome(&r->os, r->opts, p, &oc, st);
}

/* The scan: the run's match ids are cut into SCAN_PARTS ranges, read by
 * up to `threads` threads, each range in key (match id) order along its
 * own cursor; fn gets each decoded record (borrowed for the call) with its
 * range's arg. The digest is the sum of XXH3-64(record bytes, seed = match
 * id) over the records: it does not depend on the cut or the threads. */
enum { SCAN_PARTS = 16 };

typedef struct {
    joust_store_t *st;
    uint32_t run_id;
    uint64_t lo[SCAN_PARTS], hi[SCAN_PARTS];
    void (*fn)(void *arg, const joust_outcome_view *o);
    void **args;
    uint64_t digest[SCAN_PARTS], corrupt[SCAN_PARTS];
    int rc[SCAN_PARTS];
    atomic_int next;
} scan_job;

static void scan_part(scan_job *j, int part)
{
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new_scan(j->st, JOUST_REC_OUTCOMES, j->run_id, &c);
    if (rc < 0) {
        j->rc[part] = rc;
        return;
    }
    uint64_t digest = 0, corrupt = 0;
    joust_rec_cursor_seek(c, j->lo[part]);
    for (; joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        uint64_t id = joust_rec_cursor_id(c);
        if (id >= j->hi[part])
            break;
        size_t vlen;
        const void *v = joust_rec_cursor_bytes(c, &vlen);
        digest += XXH3_64bits_withSeed(v, vlen, id);
        joust_outcome_view o;
        if (joust_rec_outcome_view(v, vlen, &o) == 0)
            j->fn(j->args[part], &o);
        else
            corrupt++;
    }
    j->rc[part] = joust_rec_cursor_error(c);
    j->digest[part] = digest;
    j->corrupt[part] = corrupt;
    joust_rec_cursor_destroy(&c);
}

static void *scan_thread(void *arg)
{
    scan_job *j = arg;
    for (int part; (part = atomic_fetch_add(&j->next, 1)) < SCAN_PARTS;)
        scan_part(j, part);
    return NULL;
}

static int scan_outcomes(joust_store_t *st, const Joust__RunRecord *run, int threads,
                         void (*fn)(void *arg, const joust_outcome_view *o), void **args,
                         uint64_t *digest, uint64_t *corrupt)
{
    scan_job j = {.st = st, .run_id = run->run_id, .fn = fn, .args = args};
    atomic_init(&j.next, 0);
    uint64_t span = run->next_match_id > 1 ? run->next_match_id - 1 : 1;
    for (int i = 0; i < SCAN_PARTS; i++) {
        j.lo[i] = 1 + span * (uint64_t)i / SCAN_PARTS;
        j.hi[i] = i + 1 < SCAN_PARTS ? 1 + span * (uint64_t)(i + 1) / SCAN_PARTS : UINT64_MAX;
    }
    j.lo[0] = 0;
    if (threads > SCAN_PARTS)
        threads = SCAN_PARTS;
    pthread_t tid[SCAN_PARTS];
    int started = 0;
    for (int t = 1; t < threads; t++)
        if (pthread_create(&tid[started], NULL, scan_thread, &j) == 0)
            started++;
    scan_thread(&j); /* this thread works too; fewer threads started is only slower */
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    int rc = 0;
    *digest = 0;
    for (int i = 0; i < SCAN_PARTS; i++) {
        *digest += j.digest[i];
        *corrupt += j.corrupt[i];
        if (j.rc[i] < 0 && rc == 0)
            rc = j.rc[i];
    }
    return rc;
}

/* The outcome log (storage/records.h): the run's log records are read in
 * seq order (in SCAN_PARTS seq ranges on up to `threads` threads when no
 * entry ever deleted or replaced an outcome, so every match id appears
 * once; else in one pass), each entry classified (classify) into one
 * slot per match id below the run's next_match_id, the last entry of a
 * match winning and a delete emptying it. Walking the slots in id order
 * then gives the outcome set the scan gives, in the same order: the
 * same fit, bit for bit. A slot is the outcome's items as indexes into the
 * prompt set's ids (so its prompt is found from them) and its class byte:
 * 17 bytes a match id, and the slots become the outcome columns in place.
 * The digest is the sum of XXH3-64(record bytes, seed = seq) over the
 * records: it changes with every put or delete. */
typedef struct {
    uint64_t match_id, order; /* later order wins for one match id */
    uint64_t image_id;
    char *error; /* NULL: none given */
} log_note;

typedef struct {
    joust_store_t *st;
    uint32_t run_id;
    uint64_t nslots;
    joust_outcome *o; /* per match id, what enters the fit; NULL: classes only */
    uint8_t *state;   /* per match id, its class */
    reader *r;        /* per part (NULL: classes only: OK kind or failed) */
    uint64_t lo[SCAN_PARTS], hi[SCAN_PARTS];
    int parts;
    log_note *notes[SCAN_PARTS];
    size_t nnotes[SCAN_PARTS], notes_cap[SCAN_PARTS];
    uint64_t digest[SCAN_PARTS], corrupt[SCAN_PARTS], beyond[SCAN_PARTS];
    int rc[SCAN_PARTS];
    atomic_int next;
} log_job;

/* One entry into its slot. */
static void log_entry(log_job *j, int part, const joust_outlog_entry *e, uint64_t *corrupt)
{
    joust_outcome_view ov;
    int st = ST_NONE;
    if (e->put && joust_rec_outcome_view(e->bytes, e->len, &ov) < 0) {
        ++*corrupt; /* unreadable, as a record that does not unpack: skipped */
    } else if (e->put && !j->r) {
        st = ov.status == JOUST__OUTCOME_STATUS__OK && ov.has_p_first ? kind_of(&ov) : ST_FAILED;
    } else if (e->put) {
        reader *r = &j->r[part];
        uint32_t p = UINT32_MAX;
        joust_outcome oc;
        st = classify(r, &ov, &p, &oc);
        if (st >= 1 && st <= ST_KIND) {
            uint64_t base = r->ps->item_off[p];
            j->o[e->match_id] = (joust_outcome){(uint32_t)(base + oc.first),
                                                (uint32_t)(base + oc.second), oc.p_first};
        } else if (st == ST_IMAGE_ERROR && ov.failed_image_id) {
            xgrow((void **)&j->notes[part], &j->notes_cap[part], j->nnotes[part] + 1,
                  sizeof *j->notes[part]);
            j->notes[part][j->nnotes[part]] = (log_note){
                e->match_id, (uint64_t)part << 48 | j->nnotes[part], ov.failed_image_id,
                ov.error.len ? xstrndup(ov.error.s, ov.error.len) : NULL};
            j->nnotes[part]++;
        }
    }
    j->state[e->match_id] = (uint8_t)st;
}

static void log_part(log_job *j, int part)
{
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new_scan(j->st, JOUST_REC_OUTCOME_LOG, j->run_id, &c);
    if (rc < 0) {
        j->rc[part] = rc;
        return;
    }
    uint64_t digest = 0, corrupt = 0, beyond = 0;
    joust_rec_cursor_seek(c, j->lo[part]);
    for (; joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        uint64_t seq = joust_rec_cursor_id(c);
        if (seq >= j->hi[part])
            break;
        size_t vlen, pos = 0;
        const void *v = joust_rec_cursor_bytes(c, &vlen);
        digest += XXH3_64bits_withSeed(v, vlen, seq);
        uint64_t prev = 0;
        joust_outlog_entry e;
        int got;
        while ((got = joust_rec_outlog_next(v, vlen, &pos, &prev, &e)) > 0) {
            if (e.match_id >= j->nslots)
                beyond++;
            else
                log_entry(j, part, &e, &corrupt);
        }
        corrupt += got < 0; /* the rest of this record cannot be read */
    }
    j->rc[part] = joust_rec_cursor_error(c);
    j->digest[part] = digest;
    j->corrupt[part] = corrupt;
    j->beyond[part] = beyond;
    joust_rec_cursor_destroy(&c);
}

static void *log_thread(void *arg)
{
    log_job *j = arg;
    for (int part; (part = atomic_fetch_add(&j->next, 1)) < j->parts;)
        log_part(j, part);
    return NULL;
}

static int note_cmp(const void *x, const void *y)
{
    const log_note *a = x, *b = y;
    if (a->match_id != b->match_id)
        return a->match_id < b->match_id ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

/* The log job's notes of every part in one array sorted by (match id,
 * order); *n of them. */
static log_note *log_notes(log_job *j, size_t *n)
{
    *n = 0;
    for (int i = 0; i < j->parts; i++)
        *n += j->nnotes[i];
    log_note *all = xmalloc((*n ? *n : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < j->parts; i++) {
        if (j->nnotes[i])
            memcpy(all + k, j->notes[i], j->nnotes[i] * sizeof *all);
        k += j->nnotes[i];
        free(j->notes[i]);
        j->notes[i] = NULL;
        j->nnotes[i] = j->notes_cap[i] = 0;
    }
    qsort(all, *n, sizeof *all, note_cmp);
    return all;
}

/* The prompt that owns item g (item_off[p] <= g < item_off[p + 1]). */
static uint32_t prompt_of_item(const prompt_set *ps, uint64_t g)
{
    size_t lo = 0, hi = ps->np;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (ps->item_off[mid] <= g)
            lo = mid;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

/* Reads the run's log into j's slots (allocated here: j->nslots of
 * them, with o when j->r is set). *usable 0 when an entry names a match
 * id at or beyond next_match_id: the log cannot stand for the outcomes
 * (logged; the caller scans). */
static int log_read(log_job *j, const Joust__RunRecord *run, int threads, uint64_t *digest,
                    uint64_t *corrupt, int *usable)
{
    j->run_id = run->run_id;
    j->nslots = run->next_match_id > 0 ? run->next_match_id : 1;
    j->state = xcalloc(j->nslots, 1);
    if (j->r)
        j->o = xmalloc(j->nslots * sizeof *j->o);
    /* Parts only when every match id appears once: then no two threads
     * write one slot, and the order between parts does not matter. */
    j->parts = run->outcome_log_rewrites || threads <= 1 ? 1 : SCAN_PARTS;
    uint64_t span = run->outcome_log_next ? run->outcome_log_next : 1;
    for (int i = 0; i < j->parts; i++) {
        j->lo[i] = span * (uint64_t)i / (uint64_t)j->parts;
        j->hi[i] = i + 1 < j->parts ? span * (uint64_t)(i + 1) / (uint64_t)j->parts : UINT64_MAX;
    }
    atomic_init(&j->next, 0);
    if (threads > j->parts)
        threads = j->parts;
    pthread_t tid[SCAN_PARTS];
    int started = 0;
    for (int t = 1; t < threads; t++)
        if (pthread_create(&tid[started], NULL, log_thread, j) == 0)
            started++;
    log_thread(j);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    int rc = 0;
    uint64_t beyond = 0;
    *digest = 0;
    for (int i = 0; i < j->parts; i++) {
        *digest += j->digest[i];
        *corrupt += j->corrupt[i];
        beyond += j->beyond[i];
        if (j->rc[i] < 0 && rc == 0)
            rc = j->rc[i];
    }
    *usable = beyond == 0;
    if (beyond)
        log_warn("run %u: %" PRIu64 " outcome log entries name a match id at or beyond the "
                 "run's next (%" PRIu64 "); the outcomes are scanned instead", run->run_id, beyond,
                 j->nslots);
    return rc;
}

/* Walks the slots in match id order into os and the counts: the slots'
 * columns become os's (compacted in place). */
static void log_walk(log_job *j, const prompt_set *ps, const joust_score_opts *opts,
                     outcome_set *os, scan_counts *n)
{
    size_t nn, k = 0;
    log_note *notes = log_notes(j, &nn);
    os->o = j->o;
    os->kind = j->state;
    os->n = 0;
    os->cap = j->nslots;
    j->o = NULL;
    j->state = NULL;
    uint32_t p = 0;
    for (uint64_t id = 0; id < j->nslots; id++) {
        int st = os->kind[id];
        if (st == ST_NONE)
            continue;
        count_state(n, st);
        if (st == ST_IMAGE_ERROR) {
            size_t last = SIZE_MAX;
            while (k < nn && notes[k].match_id < id)
                k++;
            while (k < nn && notes[k].match_id == id)
                last = k++;
            if (last != SIZE_MAX) {
                const char *e = notes[last].error;
                note_image_error(os, notes[last].image_id,
                                 (joust_str_view){e, e ? strlen(e) : 0});
            }
        } else if (st <= ST_KIND) {
            joust_outcome g = os->o[id];
            if (!(g.first >= ps->item_off[p] && g.first < ps->item_off[p + 1]))
                p = prompt_of_item(ps, g.first);
            uint64_t base = ps->item_off[p];
            joust_outcome local = {(uint32_t)(g.first - base), (uint32_t)(g.second - base),
                                   g.p_first};
            put_outcome(os, opts, p, &local, st); /* at os->n <= id: read already */
        }
    }
    for (size_t i = 0; i < nn; i++)
        free(notes[i].error);
    free(notes);
    if (os->n < os->cap) { /* give back the slots of failed and missing matches */
        os->cap = os->n ? os->n : 1;
        os->o = xrealloc(os->o, os->cap * sizeof *os->o);
        os->kind = xrealloc(os->kind, os->cap);
    }
}

/* Whether the outcomes are read from the run's log (else scanned). */
static int use_log(const Joust__RunRecord *run, const joust_score_opts *o)
{
    return o->outcomes != JOUST_OUTCOMES_SCAN && joust_rec_run_has_log(run);
}

/* Appends a part's outcomes and errors to the whole (parts come in match
 * id order; the first error noted for an image wins, as in one pass). */
static void merge_part(outcome_set *all, scan_counts *n, reader *r)
{
    outcome_set *p = &r->os;
    size_t need = all->n + p->n, cap = all->cap;
    xgrow((void **)&all->kind, &cap, need, sizeof *all->kind);
    xgrow((void **)&all->o, &all->cap, need, sizeof *all->o);
    xgrow((void **)&all->runs, &all->runs_cap, all->nruns + p->nruns, sizeof *all->runs);
    if (p->nruns)
        memcpy(all->runs + all->nruns, p->runs, p->nruns * sizeof *p->runs);
    all->nruns += p->nruns;
    if (p->n) {
        memcpy(all->kind + all->n, p->kind, p->n * sizeof *p->kind);
        memcpy(all->o + all->n, p->o, p->n * sizeof *p->o);
    }
    all->n = need;
    all->weighted |= p->weighted;
    for (size_t i = 0; i < p->nerrors; i++)
        note_image_error(all, p->error_ids[i], (joust_str_view){p->errors[i], strlen(p->errors[i])});
    n->ok += r->n.ok;
    n->failed += r->n.failed;
    for (int k = 0; k < 4; k++)
        n->kinds[k] += r->n.kinds[k];
    n->left_out += r->n.left_out;
    n->stray += r->n.stray;
    n->bad_p += r->n.bad_p;
    outcome_set_free(p);
}

static int scan_into(joust_store_t *st, const Joust__RunRecord *run, const joust_score_opts *opts,
                     const prompt_set *ps, int threads, outcome_set *os, scan_counts *counts,
                     uint64_t *digest);

static void log_job_free(log_job *j)
{
    free(j->o);
    free(j->state);
    for (int i = 0; i < SCAN_PARTS; i++) {
        for (size_t k = 0; k < j->nnotes[i]; k++)
            free(j->notes[i][k].error);
        free(j->notes[i]);
    }
}

/* The run's record as stored (the caller's copy may be older) when it is
 * the same run, else the caller's (*fresh: free it with joust_rec_free). */
static const Joust__RunRecord *stored_run(joust_store_t *st, const Joust__RunRecord *run,
                                          Joust__RunRecord **fresh)
{
    *fresh = NULL;
    if (joust_rec_run_get(st, run->name, fresh) == 0 && (*fresh)->run_id == run->run_id)
        return *fresh;
    joust_rec_free(*fresh);
    *fresh = NULL;
    return run;
}

/* Reads the run's log into os (log_read, log_walk); *usable 0 when it
 * cannot stand for the outcomes (then os is untouched). */
static int read_outcomes_log(joust_store_t *st, const Joust__RunRecord *run,
                             const joust_score_opts *opts, const prompt_set *ps, int threads,
                             outcome_set *os, scan_counts *n, uint64_t *digest, int *usable)
{
    reader *r = xcalloc(SCAN_PARTS, sizeof *r);
    for (int i = 0; i < SCAN_PARTS; i++)
        r[i] = (reader){.opts = opts, .ps = ps, .last_p = UINT32_MAX};
    log_job j = {.st = st, .r = r};
    int rc = log_read(&j, run, threads, digest, &n->corrupt, usable);
    if (rc == 0 && *usable)
        log_walk(&j, ps, opts, os, n);
    else
        n->corrupt = 0;
    log_job_free(&j);
    free(r);
    return rc;
}

/* Reads the run's outcomes once into os, counting them into sum: from its
 * log when it has one (and opts do not ask for the scan), else by the scan. */
static int read_outcomes(joust_store_t *st, const Joust__RunRecord *run, const joust_score_opts *opts,
                         const prompt_set *ps, int threads, outcome_set *os,
                         joust_score_summary *sum, uint64_t *digest)
{
    scan_counts n = {0};
    int rc = 0, logged = 0;
    Joust__RunRecord *fresh;
    const Joust__RunRecord *cur = stored_run(st, run, &fresh);
    if (opts->outcomes == JOUST_OUTCOMES_LOG && !joust_rec_run_has_log(cur)) {
        log_error("run '%s' has no outcome log (it was created by an older joust): score it "
                  "with --outcomes scan or auto", run->name);
        rc = JOUST_EINVAL;
    } else if (use_log(cur, opts))
        rc = read_outcomes_log(st, cur, opts, ps, threads, os, &n, digest, &logged);
    joust_rec_free(fresh);
    if (rc == 0 && !logged)
        rc = scan_into(st, run, opts, ps, threads, os, &n, digest);
    sum->outcomes_ok = n.ok;
    sum->outcomes_failed = n.failed;
    memcpy(sum->kinds, n.kinds, sizeof sum->kinds);
    sum->outcomes_left_out = n.left_out;
    if (n.corrupt)
        log_warn("run %u: %" PRIu64 " outcome records do not unpack; skipped", run->run_id,
                 n.corrupt);
    if (n.stray)
        log_warn("run %u: %" PRIu64 " OK outcomes name an image outside their planned prompt; "
                 "skipped", run->run_id, n.stray);
    if (n.bad_p)
        log_warn("run %u: %" PRIu64 " OK outcomes have p_first outside [0,1]; skipped",
                 run->run_id, n.bad_p);
    return rc;
}

/* The scan (scan_outcomes) into os and the counts n. */
static int scan_into(joust_store_t *st, const Joust__RunRecord *run, const joust_score_opts *opts,
                     const prompt_set *ps, int threads, outcome_set *os, scan_counts *counts,
                     uint64_t *digest)
{
    reader *r = xcalloc(SCAN_PARTS, sizeof *r);
    void *args[SCAN_PARTS];
    for (int i = 0; i < SCAN_PARTS; i++) {
        r[i] = (reader){.opts = opts, .ps = ps, .last_p = UINT32_MAX};
        joust_u64map_init(&r[i].os.error_of);
        args[i] = &r[i];
    }
    scan_counts n = {0};
    int rc = scan_outcomes(st, run, threads, take_outcome, args, digest, &n.corrupt);
    size_t total = 0;
    for (int i = 0; i < SCAN_PARTS; i++)
        total += r[i].os.n;
    /* The whole grows out of the first part's columns (realloc of a large
     * block moves no pages) and every other part is freed as soon as it is
     * appended: the peak is the outcomes and one part, not twice them. */
    outcome_set *p0 = &r[0].os;
    os->runs = p0->runs;
    os->nruns = p0->nruns;
    os->runs_cap = p0->runs_cap;
    os->kind = p0->kind;
    os->o = p0->o;
    os->n = os->cap = p0->n;
    os->weighted = p0->weighted;
    p0->runs = NULL;
    p0->nruns = p0->runs_cap = 0;
    p0->kind = NULL;
    p0->o = NULL;
    p0->n = 0;
    if (total > os->cap) {
        os->kind = xrealloc(os->kind, total * sizeof *os->kind);
        os->o = xrealloc(os->o, total * sizeof *os->o);
        os->cap = total;
    }
    for (int i = 0; i < SCAN_PARTS; i++)
        merge_part(os, &n, &r[i]);
    free(r);
    *counts = n;
    return rc;
}

/* Puts the outcomes in the order (prompt, match id): they were read in
 * match id order, so a stable counting sort by prompt does it, and nothing
 * moves when they already are (static strategies). off[np + 1]: out, the
 * CSR offsets. */
static void order_by_prompt(outcome_set *os, size_t np, uint64_t *off)
{
    memset(off, 0, (np + 1) * sizeof *off);
    const prompt_run *runs = os->runs;
    int sorted = 1;
    for (size_t r = 0; r < os->nruns; r++) {
        off[runs[r].p + 1] += runs[r].n;
        sorted &= r == 0 || runs[r].p >= runs[r - 1].p;
    }
    for (size_t p = 0; p < np; p++)
        off[p + 1] += off[p];
    if (!sorted) {
        uint64_t *next = xmalloc((np ? np : 1) * sizeof *next);
        memcpy(next, off, np * sizeof *next);
        joust_outcome *o = xmalloc((os->n ? os->n : 1) * sizeof *o);
        uint8_t *kind = xmalloc((os->n ? os->n : 1) * sizeof *kind);
        size_t i = 0;
        for (size_t r = 0; r < os->nruns; r++)
            for (uint32_t k = 0; k < runs[r].n; k++, i++) {
                uint64_t j = next[runs[r].p]++;
                o[j] = os->o[i];
                kind[j] = os->kind[i];
            }
        free(os->o);
        free(os->kind);
        os->o = o;
        os->kind = kind;
        free(next);
    }
    free(os->runs);
    os->runs = NULL;
    os->nruns = os->runs_cap = 0;
}

/* -------------------------------------------------------------- models --- */

int joust_cursor_find(joust_rec_cursor_t *c, uint64_t id)
{
    uint64_t at = joust_rec_cursor_id(c);
    if (at && at < id) { /* the next one is most often the one wanted: a step, not a seek */
        joust_rec_cursor_next(c);
        at = joust_rec_cursor_id(c);
    }
    if (at != id)
        joust_rec_cursor_seek(c, id);
    return joust_rec_cursor_valid(c) && joust_rec_cursor_id(c) == id;
}

/* The model index of every item (UINT32_MAX: none), read from the image
 * records along one iterator (image ids of a prompt are usually adjacent,
 * so this is mostly a sequential scan). */
static int item_models(joust_store_t *st, const prompt_set *ps, models_t *models, uint32_t *model)
{
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new_scan(st, JOUST_REC_IMAGES, 0, &c);
    if (rc < 0)
        return rc;
    /* Images of a prompt mostly share a model: the last name is kept to
     * skip interning it again. */
    char *last = NULL;
    size_t last_len = 0, last_cap = 0;
    uint32_t last_id = UINT32_MAX;
    for (size_t i = 0; i < ps->ni; i++) {
        model[i] = UINT32_MAX;
        if (!joust_cursor_find(c, ps->ids[i]))
            continue; /* no record: no model */
        size_t vlen;
        const void *v = joust_rec_cursor_bytes(c, &vlen);
        joust_image_view img;
        if (joust_rec_image_view(v, vlen, &img) < 0 || !img.model.s)
            continue;
        if (last_id == UINT32_MAX || img.model.len != last_len ||
            memcmp(img.model.s, last, last_len)) {
            xgrow((void **)&last, &last_cap, img.model.len + 1, 1);
            memcpy(last, img.model.s, img.model.len);
            last[img.model.len] = 0;
            last_len = img.model.len;
            last_id = models_intern(models, last);
        }
        model[i] = last_id;
    }
    rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    free(last);
    return rc;
}

/* item_models on a thread of its own beside the outcome read: both only
 * read the prompt set, and each has its own cursor. */
typedef struct {
    joust_store_t *st;
    const prompt_set *ps;
    models_t *models;
    uint32_t *model;
    int rc;
} models_job;

static void *models_thread(void *arg)
{
    models_job *j = arg;
    j->rc = item_models(j->st, j->ps, j->models, j->model);
    return NULL;
}

/* ----------------------------------------------------------------- fit --- */

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Picks the device for o->device; JOUST_EUNSUPPORTED with the reason
 * logged when CUDA is asked for and cannot be used. */
static int pick_device(joust_device want, joust_device *got)
{
#ifdef JOUST_HAVE_CUDA
    int usable = joust_bt_cuda_available();
#else
    int usable = 0;
#endif
    if (want == JOUST_DEVICE_CUDA && !usable) {
#ifdef JOUST_HAVE_CUDA
        log_error("--device cuda: no usable CUDA device (driver missing or no GPU); "
                  "use --device cpu or auto");
#else
        log_error("--device cuda: this joust was built without CUDA (rank/cuda needs nvcc at "
                  "build time); use --device cpu or auto");
#endif
        return JOUST_EUNSUPPORTED;
    }
    *got = want == JOUST_DEVICE_CPU || !usable ? JOUST_DEVICE_CPU : JOUST_DEVICE_CUDA;
    return 0;
}

static int fit_images(const joust_bt_problem *pb, joust_device dev, int threads, double *theta,
                      double *se)
{
    joust_bt_bulk_stats bs;
    int rc;
#ifdef JOUST_HAVE_CUDA
    if (dev == JOUST_DEVICE_CUDA)
        rc = joust_bt_fit_bulk_cuda(pb, NULL, 0, theta, se, &bs);
    else
#endif
        rc = joust_bt_fit_bulk(pb, NULL, threads, 0, theta, se, &bs);
    (void)dev;
    if (rc == JOUST_EINVAL && bs.prompts_bad)
        log_warn("%" PRIu64 " prompts could not be fitted (first: prompt index %u); their "
                 "scores are 0", bs.prompts_bad, bs.first_bad);
    else if (rc < 0)
        return rc;
    if (bs.prompts_capped)
        log_warn("%" PRIu64 " prompts stopped at the iteration cap", bs.prompts_capped);
    return 0;
}

/* The bulk fitter reads p as a float (rank/bt_bulk.h, 12-byte edges). So
 * that the scores equal the per-prompt fit in double, an outcome whose p
 * is not a float becomes two edges of the same pair: p rounded to a float,
 * weight 1 - 2^-10, and a second edge, weight 2^-10, whose p carries the
 * rounding error scaled by 2^10. The fitter clips each edge's p to
 * [clip, 1 - clip] and sums weight x p per pair in double, so the pair's
 * soft wins become p_clipped exactly up to 2^-10 x the float rounding of
 * the second edge (below 1e-10), and its weight stays 1 exactly. A p that
 * is a float (0, 0.5, 1, k/2^m) stays one edge and is clipped in double as
 * in joust_bt_fit. Edges with another weight (hard outcomes under
 * --hard-weight) stay single. */
#define SPLIT_W 0x1p-10

/* The edges of a block of prompts, in a buffer reused from block to
 * block. */
typedef struct {
    joust_bt_edge32 *e;
    float *w;      /* per edge, when has_w */
    uint64_t *off; /* per prompt of the block, into e */
    size_t e_cap, w_cap, off_cap;
    int has_w;     /* 0: every edge of the block weighs 1 */
} fit_edges;

/* 1 and the second edge's p when o needs two edges, else 0. */
static int split_of(const joust_outcome *o, float w, double clip, float *s1, float *s2)
{
    *s1 = (float)o->p_first;
    if ((double)*s1 == o->p_first || w != 1.0f)
        return 0;
    double sc = fmin(fmax(o->p_first, clip), 1 - clip);
    *s1 = (float)sc;
    double d1 = fmin(fmax((double)*s1, clip), 1 - clip); /* what the fitter will use */
    double r = sc - d1;
    if (r == 0)
        return 0;
    *s2 = (float)(d1 + r / SPLIT_W);
    return (double)*s2 >= clip && (double)*s2 <= 1 - clip; /* else one edge: off by < 1e-7 */
}

/* The weight of each kind as the fitter reads it (a float). */
static void weights_of(const joust_score_opts *o, float wt[4])
{
    for (int k = 0; k < 4; k++)
        wt[k] = (float)kind_weight(o, k ? k : JOUST__OUTCOME_KIND__SOFT);
}

/* Builds the edges of the prompts [p0, p1) (outcomes [off[p0], off[p1])). */
static void build_edges(const outcome_set *os, const float wt[4], size_t p0, size_t p1,
                        const uint64_t *off, fit_edges *fe)
{
    joust_bt_opts bo;
    joust_bt_opts_defaults(&bo);
    size_t extra = 0;
    float s1, s2;
    for (uint64_t i = off[p0]; i < off[p1]; i++)
        extra += (size_t)split_of(&os->o[i], wt[os->kind[i]], bo.clip, &s1, &s2);
    size_t m = (size_t)(off[p1] - off[p0]) + extra;
    xgrow((void **)&fe->e, &fe->e_cap, m ? m : 1, sizeof *fe->e);
    fe->has_w = os->weighted || extra;
    if (fe->has_w)
        xgrow((void **)&fe->w, &fe->w_cap, m ? m : 1, sizeof *fe->w);
    xgrow((void **)&fe->off, &fe->off_cap, p1 - p0 + 1, sizeof *fe->off);
    float *w = fe->has_w ? fe->w : NULL;
    size_t k = 0;
    for (size_t p = p0; p < p1; p++) {
        fe->off[p - p0] = k;
        for (uint64_t i = off[p]; i < off[p + 1]; i++) {
            const joust_outcome *o = &os->o[i];
            float wi = wt[os->kind[i]];
            int two = split_of(o, wi, bo.clip, &s1, &s2);
            fe->e[k] = (joust_bt_edge32){o->first, o->second, s1};
            if (w)
                w[k] = two ? (float)(1 - SPLIT_W) : wi;
            k++;
            if (two) {
                fe->e[k] = (joust_bt_edge32){o->first, o->second, s2};
                w[k++] = (float)SPLIT_W;
            }
        }
    }
    fe->off[p1 - p0] = k;
}

static void fit_edges_free(fit_edges *fe)
{
    free(fe->e);
    free(fe->w);
    free(fe->off);
}

/* Everything a fit produces, per item (global index); comp and ncomp (per
 * prompt, 0 when not known) come from the sparse fit of large groups. */
typedef struct {
    double *theta, *se, *wins;
    uint32_t *cmp, *comp, *ncomp;
} fit_out;

static void merge_bias(joust_position_bias *all, const joust_position_bias *b)
{
    double total = (double)(all->outcomes + b->outcomes);
    if (total > 0)
        all->mean_p_first = (all->mean_p_first * (double)all->outcomes +
                             b->mean_p_first * (double)b->outcomes) / total;
    all->outcomes += b->outcomes;
    double pairs = (double)(all->both_order_pairs + b->both_order_pairs);
    if (pairs > 0)
        all->mean_delta = (all->mean_delta * (double)all->both_order_pairs +
                           b->mean_delta * (double)b->both_order_pairs) / pairs;
    all->both_order_pairs += b->both_order_pairs;
    all->consistent_pairs += b->consistent_pairs;
    all->position_bias = all->mean_p_first - 0.5;
    all->consistency = all->both_order_pairs
                           ? (double)all->consistent_pairs / (double)all->both_order_pairs : 0;
}

/* Groups of more than JOUST_GLOBAL_FIT_MIN images go to the sparse solver
 * (global_fit.h); the runs of smaller prompts between them to the bulk
 * fitter. */
static int fit_groups(const joust_bt_problem *pb, joust_device dev, int threads, fit_out *f)
{
    int rc = 0;
    for (uint32_t p = 0, q; rc == 0 && p < pb->n_prompts; p = q) {
        for (q = p; q < pb->n_prompts && pb->item_off[q + 1] - pb->item_off[q] <= JOUST_GLOBAL_FIT_MIN;)
            q++;
        if (q > p) {
            joust_bt_problem sub = {q - p, pb->item_off + p, pb->edge_off + p, pb->edges, pb->w};
            rc = fit_images(&sub, dev, threads, f->theta, f->se);
            continue;
        }
        uint64_t i0 = pb->item_off[p], e0 = pb->edge_off[p];
        rc = joust_global_fit((uint32_t)(pb->item_off[p + 1] - i0), pb->edges + e0,
                              pb->w ? pb->w + e0 : NULL, pb->edge_off[p + 1] - e0, f->theta + i0,
                              f->se + i0, f->comp + i0, &f->ncomp[p]);
        q = p + 1;
    }
    return rc;
}

/* Outcomes per block of prompts fitted in one call of the CPU fitter: the
 * edges of a block (16-32 bytes an outcome) are all that exists of them
 * at a time. A prompt's result does not depend on its company in a call
 * (bt_bulk.h), so the blocks give the scores one call would. */
#define FIT_BLOCK (1u << 21)

/* Tallies, position bias and the model cells of the prompts [p0, p1),
 * from the ordered outcomes. */
static void tally(const prompt_set *ps, const outcome_set *os, const uint64_t *off, size_t p0,
                  size_t p1, const uint32_t *model, models_t *models, fit_out *f,
                  joust_score_summary *sum)
{
    for (size_t p = p0; p < p1; p++) {
        uint64_t i0 = ps->item_off[p];
        uint32_t n = (uint32_t)(ps->item_off[p + 1] - i0);
        const joust_outcome *o = os->o + off[p];
        size_t k = off[p + 1] - off[p];
        joust_outcome_tally(n, o, k, f->wins + i0, f->cmp + i0);
        joust_position_bias b;
        if (k && joust_position_bias_summary(n, o, k, &b) == 0)
            merge_bias(&sum->bias, &b);
        if (k)
            models_add_prompt(models, ps->pid[p], n, model + i0, o, k);
    }
}

/* Tallies and fits every prompt, in blocks on the CPU, in one call on
 * CUDA (the device wants the whole problem at once). A block's outcomes
 * are read for the last time when its edges are built: their pages go
 * back then, so the tallies and the fit's arrays grow as the outcomes
 * shrink (CUDA's one block holds all edges beside them). After this,
 * os->o and os->kind are only freed. */
static int fit_all(const prompt_set *ps, outcome_set *os, const uint64_t *off,
                   const joust_score_opts *opts, joust_device dev, int threads,
                   const uint32_t *model, models_t *models, fit_out *f, joust_score_summary *sum)
{
    float wt[4];
    weights_of(opts, wt);
    uint64_t block = opts->fit_block ? opts->fit_block : FIT_BLOCK;
    fit_edges fe = {0};
    int rc = 0;
    for (size_t p0 = 0; rc == 0 && p0 < ps->np;) {
        size_t p1 = p0 + 1;
        if (dev == JOUST_DEVICE_CUDA)
            p1 = ps->np;
        else
            while (p1 < ps->np && off[p1 + 1] - off[p0] <= block)
                p1++;
        tally(ps, os, off, p0, p1, model, models, f, sum);
        build_edges(os, wt, p0, p1, off, &fe);
        xdiscard(os->o, off[p0] * sizeof *os->o, off[p1] * sizeof *os->o);
        xdiscard(os->kind, off[p0], off[p1]);
        joust_bt_problem pb = {(uint32_t)(p1 - p0), ps->item_off + p0, fe.off, fe.e,
                               fe.has_w ? fe.w : NULL};
        fit_out fb = *f; /* items are global; ncomp is per prompt of the block */
        fb.ncomp = f->ncomp + p0;
        rc = fit_groups(&pb, dev, threads, &fb);
        p0 = p1;
    }
    fit_edges_free(&fe);
    return rc;
}


/* Ranks and percentiles of every item into the table (rank 0: no rank),
 * its error, and the counts of the summary. */
static void rank_items(const prompt_set *ps, const outcome_set *os, const fit_out *f,
                       joust_score_summary *sum, joust_score_table *t)
{
    size_t cap = 0;
    double *ranked = NULL;
    for (size_t p = 0; p < ps->np; p++) {
        uint64_t i0 = ps->item_off[p];
        size_t n = ps->item_off[p + 1] - i0;
        xgrow((void **)&ranked, &cap, n, sizeof *ranked);
        /* Images with errors and images without a comparison (unjudged)
         * take no rank and no score: rank the others among themselves. */
        for (size_t i = 0; i < n; i++) {
            uint64_t e = 0;
            t->error[i0 + i] = os->nerrors && joust_u64map_get(&os->error_of, ps->ids[i0 + i], &e)
                                   ? (uint32_t)e : 0;
            ranked[i] = t->error[i0 + i] || f->cmp[i0 + i] == 0 ? -INFINITY : f->theta[i0 + i];
        }
        joust_rank_desc(n, ranked, t->rank + i0);
        joust_percentiles(n, ranked, t->pct + i0);
        for (size_t i = 0; i < n; i++) {
            int ranked_i = !t->error[i0 + i] && f->cmp[i0 + i] > 0;
            if (!ranked_i)
                t->rank[i0 + i] = 0;
            sum->images++;
            if (t->error[i0 + i])
                sum->image_errors++;
            else if (ranked_i)
                sum->scored++;
            else
                sum->unjudged++;
        }
        sum->prompts++;
    }
    free(ranked);
}

/* One item's score record (item g of prompt p) into b. */
static void score_put(joust_batch_t *b, uint32_t run_id, const joust_score_table *t, size_t p,
                      uint64_t g)
{
    Joust__ScoreRecord s = JOUST__SCORE_RECORD__INIT;
    s.prompt_id = t->pid[p];
    s.has_score = s.has_stderr = s.has_rank = t->rank[g] != 0;
    s.score = t->score[g];
    s.stderr = t->stderr[g];
    s.rank = t->rank[g];
    s.has_percentile = s.has_score;
    s.percentile = t->pct[g];
    s.has_component = s.has_components = t->ncomp[p] > 0;
    s.component = t->comp[g];
    s.components = t->ncomp[p];
    s.wins = t->wins[g];
    s.comparisons = t->cmp[g];
    s.error = t->error[g] ? t->errors[t->error[g] - 1] : NULL;
    joust_rec_score_put(b, run_id, t->ids[g], &s);
}

/* The items in image id order, as slots: slot[i] = 1 + the item of id
 * base + i, 0 for an id no item has (*nslot slots). NULL when the table
 * is in id order already (prompt by prompt, no overlap: items are then
 * walked as they stand) or when the ids are too sparse for slots (then
 * too, in table order; each load sorts its own part). */
static uint32_t *id_slots(const joust_score_table *t, uint64_t *base, size_t *nslot)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    int sorted = 1;
    for (size_t g = 0; g < t->ni; g++) {
        sorted &= g == 0 || t->ids[g - 1] < t->ids[g];
        lo = t->ids[g] < lo ? t->ids[g] : lo;
        hi = t->ids[g] > hi ? t->ids[g] : hi;
    }
    if (sorted || t->ni >= UINT32_MAX || hi - lo >= 4 * (uint64_t)t->ni + 4096)
        return NULL;
    uint32_t *slot = xcalloc(hi - lo + 1, sizeof *slot);
    for (size_t g = 0; g < t->ni; g++)
        slot[t->ids[g] - lo] = (uint32_t)g + 1;
    *base = lo;
    *nslot = hi - lo + 1;
    return slot;
}

/* The score records by bulk load (store.h joust_store_load), in parts of
 * SCORES_LOAD_PART records, in image id order so that the parts' files do
 * not overlap. */
static int load_scores(joust_store_t *st, uint32_t run_id, const joust_score_table *t,
                       joust_batch_t *b)
{
    uint64_t base = 0;
    size_t nslot = 0;
    uint32_t *slot = id_slots(t, &base, &nslot);
    uint32_t *prompt_of = NULL;
    if (slot) {
        prompt_of = xmalloc((t->ni ? t->ni : 1) * sizeof *prompt_of);
        for (size_t p = 0; p < t->np; p++)
            for (uint64_t g = t->item_off[p]; g < t->item_off[p + 1]; g++)
                prompt_of[g] = (uint32_t)p;
    }
    int rc = 0;
    size_t p = 0;
    for (size_t i = 0, n = slot ? nslot : t->ni; rc == 0 && i < n; i++) {
        uint64_t g = i;
        if (slot) {
            if (!slot[i])
                continue;
            g = slot[i] - 1;
            p = prompt_of[g];
        } else {
            while (g >= t->item_off[p + 1])
                p++;
        }
        score_put(b, run_id, t, p, g);
        if (joust_batch_count(b) >= SCORES_LOAD_PART) {
            rc = joust_store_load(st, b);
            joust_batch_clear(b);
        }
    }
    if (rc == 0)
        rc = joust_store_load(st, b);
    joust_batch_clear(b);
    free(slot);
    free(prompt_of);
    return rc;
}

/* 1 when the run has a score record. */
static int has_scores(joust_store_t *st, uint32_t run_id, int *any)
{
    unsigned char prefix[4];
    joust_put_be32(prefix, run_id);
    joust_iter_t *it = NULL;
    int rc = joust_iter_new(st, JOUST_CF_SCORES, prefix, sizeof prefix, &it);
    if (rc == 0) {
        *any = joust_iter_valid(it);
        rc = joust_iter_error(it);
    }
    joust_iter_destroy(&it);
    return rc;
}

/* Writes every item's score and, last and synced, the marker in the run
 * record. The old marker goes first (the store keeps the order of writes
 * across a crash; before a load the write is synced, as a loaded file does
 * not wait for the WAL), then the run's old scores (all of them, so none of
 * an image that is no longer scored survives), so a scoring that stops
 * half-way leaves no marker. */
static int store_table(joust_store_t *st, const Joust__RunRecord *run, const joust_score_table *t,
                       joust_scores_write how)
{
    if (how == JOUST_SCORES_AUTO)
        how = t->ni >= SCORES_LOAD_MIN ? JOUST_SCORES_LOAD : JOUST_SCORES_PUT;
    uint32_t run_id = run->run_id;
    Joust__RunRecord *rec = NULL;
    joust_batch_t *b = joust_batch_new();
    int rc = joust_rec_run_get(st, run->name, &rec);
    if (rc == 0 && rec->has_scores_from) {
        rec->has_scores_from = 0;
        joust_rec_run_put(b, rec);
        rc = joust_store_write(st, b, how == JOUST_SCORES_LOAD);
        joust_batch_clear(b);
    }
    int stale = 1; /* a load over no old scores goes to the bottom level, no tombstone above */
    if (rc == 0 && how == JOUST_SCORES_LOAD)
        rc = has_scores(st, run_id, &stale);
    if (rc == 0 && stale)
        rc = joust_rec_scores_delete(st, run_id);
    if (rc == 0 && how == JOUST_SCORES_LOAD)
        rc = load_scores(st, run_id, t, b);
    for (size_t p = 0; rc == 0 && how == JOUST_SCORES_PUT && p < t->np; p++) {
        for (uint64_t g = t->item_off[p]; g < t->item_off[p + 1]; g++)
            score_put(b, run_id, t, p, g);
        if (joust_batch_count(b) >= 10000) {
            rc = joust_store_write(st, b, 0);
            joust_batch_clear(b);
        }
    }
    if (rc == 0) {
        ProtobufCBinaryData old = rec->scores_from;
        rec->has_scores_from = 1;
        rec->scores_from = (ProtobufCBinaryData){sizeof t->from, (uint8_t *)t->from};
        joust_rec_run_put(b, rec); /* packs a copy */
        rec->scores_from = old;    /* the record frees its own bytes */
        rc = joust_store_write(st, b, 1);
    }
    joust_rec_free(rec);
    joust_batch_destroy(&b);
    return rc;
}

void joust_score_summary_clear(joust_score_summary *sum)
{
    joust_model_report_clear(&sum->models);
}

void joust_score_table_destroy(joust_score_table **t_p)
{
    joust_score_table *t = *t_p;
    if (!t)
        return;
    *t_p = NULL;
    free(t->pid);
    free(t->item_off);
    free(t->ids);
    free(t->score);
    free(t->stderr);
    free(t->wins);
    free(t->cmp);
    free(t->rank);
    free(t->error);
    free(t->pct);
    free(t->comp);
    free(t->ncomp);
    for (size_t i = 0; i < t->nerrors; i++)
        free(t->errors[i]);
    free(t->errors);
    free(t);
}

/* Moves the prompts, the fit and the errors into a table (rank and error
 * were filled by rank_items); ps, f and os lose them. */
static void table_take(joust_score_table *t, prompt_set *ps, fit_out *f, outcome_set *os)
{
    t->np = ps->np;
    t->ni = ps->ni;
    t->pid = ps->pid;
    t->item_off = ps->item_off;
    t->ids = ps->ids;
    ps->pid = ps->item_off = ps->ids = NULL;
    t->score = f->theta;
    t->stderr = f->se;
    t->wins = f->wins;
    t->cmp = f->cmp;
    t->comp = f->comp;
    t->ncomp = f->ncomp;
    memset(f, 0, sizeof *f);
    t->errors = os->errors;
    t->nerrors = os->nerrors;
    os->errors = NULL;
    os->nerrors = 0;
}

/* Reads, fits and ranks into a new table (*out; NULL on failure); the
 * store is not written. */
static int fit_table(joust_store_t *st, const Joust__RunRecord *run, const joust_score_opts *opts,
                     joust_score_summary *sum, joust_score_table **out)
{
    int64_t t0 = joust_now_us();
    prompt_set ps = {.run = run};
    outcome_set os = {0};
    joust_u64map_init(&os.error_of);
    models_t *models = models_new();
    marker mk = {.plan_cursor = run->plan_cursor};
    int rc = joust_run_group_walk(st, run, 1, joust_run_prompt_bound(run), collect_prompt, &ps, NULL);
    if (rc > 0)
        rc = 0;
    if (!ps.item_off)
        ps.item_off = xcalloc(1, sizeof *ps.item_off); /* no prompts planned yet */
    if (rc == 0)
        rc = joust_rec_counter_get(st, JOUST_NEXT_IMAGE, &mk.next_image);
    int threads = opts->threads ? opts->threads : online_cpus();
    size_t ni = ps.ni;
    uint32_t *model = xmalloc((ni ? ni : 1) * sizeof *model);
    models_job mj = {st, &ps, models, model, 0};
    pthread_t mt;
    int beside = rc == 0 && threads > 1 && pthread_create(&mt, NULL, models_thread, &mj) == 0;
    int64_t tp = joust_now_us();
    if (rc == 0)
        rc = read_outcomes(st, run, opts, &ps, threads, &os, sum, &mk.digest);
    int64_t to = joust_now_us();
    if (beside)
        pthread_join(mt, NULL);
    else if (rc == 0)
        models_thread(&mj);
    if (rc == 0)
        rc = mj.rc;
    marker_weights(&mk, opts, sum->kinds);
    uint64_t *off = xmalloc((ps.np + 1) * sizeof *off);
    fit_out f = {xcalloc(ni ? ni : 1, sizeof *f.theta), xcalloc(ni ? ni : 1, sizeof *f.se),
                 xcalloc(ni ? ni : 1, sizeof *f.wins), xcalloc(ni ? ni : 1, sizeof *f.cmp),
                 xcalloc(ni ? ni : 1, sizeof *f.comp), xcalloc(ps.np + 1, sizeof *f.ncomp)};
    int64_t t1 = joust_now_us();
    log_debug("read: prompts %.2f s, outcomes %.2f s, then image models (%s) %.2f s more",
              (double)(tp - t0) / 1e6, (double)(to - tp) / 1e6, beside ? "beside" : "after",
              (double)(t1 - to) / 1e6);
    if (rc == 0) {
        order_by_prompt(&os, ps.np, off);
        rc = fit_all(&ps, &os, off, opts, sum->device, threads, model, models, &f, sum);
    }
    if (rc == 0)
        rc = models_fit(models, &sum->models);
    /* The outcomes are done with: their columns go before the table's
     * grow (the peak of memory is the fit's). */
    free(os.runs);
    free(os.o);
    free(os.kind);
    os.runs = NULL, os.o = NULL, os.kind = NULL;
    free(off);
    free(model);
    models_destroy(&models);
    joust_score_table *t = NULL;
    if (rc == 0) {
        t = xcalloc(1, sizeof *t);
        t->rank = xmalloc((ni ? ni : 1) * sizeof *t->rank);
        t->error = xmalloc((ni ? ni : 1) * sizeof *t->error);
        t->pct = xmalloc((ni ? ni : 1) * sizeof *t->pct);
        rank_items(&ps, &os, &f, sum, t);
        marker_pack(&mk, t->from);
        table_take(t, &ps, &f, &os);
    }
    int64_t t2 = joust_now_us();
    sum->read_s = (double)(t1 - t0) / 1e6;
    sum->fit_s = (double)(t2 - t1) / 1e6;
    log_info("run '%s': fitted %" PRIu64 " images from %" PRIu64 " outcomes on the %s in %.2f s "
             "(read %.2f, fit %.2f)", run->name, sum->images,
             sum->outcomes_ok + sum->outcomes_failed, joust_device_name(sum->device),
             (double)(t2 - t0) / 1e6, sum->read_s, sum->fit_s);
    if (rc < 0)
        joust_model_report_clear(&sum->models);
    free(f.theta); free(f.se); free(f.wins); free(f.cmp); free(f.comp); free(f.ncomp);
    outcome_set_free(&os);
    prompt_set_free(&ps);
    *out = t;
    return rc;
}

int joust_scores_fit(joust_store_t *st, const Joust__RunRecord *run, const joust_score_opts *opts,
                     joust_score_summary *sum, joust_score_table **table)
{
    *table = NULL;
    joust_score_opts dflt;
    opts = opts_or_defaults(opts, &dflt);
    memset(sum, 0, sizeof *sum);
    sum->bias.mean_p_first = 0.5;
    int rc = opts_check(opts);
    if (rc == 0)
        rc = pick_device(opts->device, &sum->device);
    if (rc == 0)
        rc = fit_table(st, run, opts, sum, table);
    return rc;
}

int joust_scores_store(joust_store_t *st, const Joust__RunRecord *run, const joust_score_table *t,
                       double *seconds)
{
    return joust_scores_store_how(st, run, t, JOUST_SCORES_AUTO, seconds);
}

int joust_scores_store_how(joust_store_t *st, const Joust__RunRecord *run,
                           const joust_score_table *t, joust_scores_write how, double *seconds)
{
    int64_t t0 = joust_now_us(), c0 = joust_thread_cpu_us();
    int rc = store_table(st, run, t, how);
    double s = (double)(joust_now_us() - t0) / 1e6;
    if (seconds)
        *seconds = s;
    if (rc == 0)
        log_info("run '%s': stored %zu scores in %.2f s (this thread's CPU %.2f s)", run->name,
                 t->ni, s, (double)(joust_thread_cpu_us() - c0) / 1e6);
    return rc;
}

/* The store's write on a thread of its own. */
struct joust_scores_storer {
    joust_store_t *st;
    const Joust__RunRecord *run;
    const joust_score_table *t;
    double seconds;
    int rc, started;
    pthread_t tid;
};

static void *storer_main(void *arg)
{
    joust_scores_storer_t *w = arg;
    w->rc = joust_scores_store(w->st, w->run, w->t, &w->seconds);
    return NULL;
}

void joust_scores_store_start(joust_store_t *st, const Joust__RunRecord *run,
                              const joust_score_table *t, joust_scores_storer_t **out)
{
    joust_scores_storer_t *w = xcalloc(1, sizeof *w);
    *w = (joust_scores_storer_t){.st = st, .run = run, .t = t};
    w->started = pthread_create(&w->tid, NULL, storer_main, w) == 0;
    if (!w->started) /* no thread: the same write, here */
        storer_main(w);
    *out = w;
}

int joust_scores_store_join(joust_scores_storer_t **w_p, double *seconds)
{
    joust_scores_storer_t *w = *w_p;
    *w_p = NULL;
    if (w->started)
        pthread_join(w->tid, NULL);
    int rc = w->rc;
    if (seconds)
        *seconds = w->seconds;
    free(w);
    return rc;
}

int joust_scores_compute(joust_store_t *st, const Joust__RunRecord *run,
                         const joust_score_opts *opts, joust_score_summary *sum)
{
    return joust_scores_compute_table(st, run, opts, sum, NULL);
}

int joust_scores_compute_table(joust_store_t *st, const Joust__RunRecord *run,
                               const joust_score_opts *opts, joust_score_summary *sum,
                               joust_score_table **table)
{
    if (table)
        *table = NULL;
    joust_score_table *t;
    int rc = joust_scores_fit(st, run, opts, sum, &t);
    if (rc == 0)
        rc = joust_scores_store(st, run, t, &sum->write_s);
    if (rc < 0)
        joust_model_report_clear(&sum->models);
    if (rc == 0 && table)
        *table = t;
    else
        joust_score_table_destroy(&t);
    return rc;
}

/* ------------------------------------------------------------ currency --- */

static void count_kind(void *arg, const joust_outcome_view *o)
{
    uint64_t *kinds = arg; /* this part's row of 4 */
    if (o->status == JOUST__OUTCOME_STATUS__OK && o->has_p_first)
        kinds[kind_of(o)]++;
}

int joust_scores_current(joust_store_t *st, const Joust__RunRecord *run,
                         const joust_score_opts *opts, int *current)
{
    joust_score_opts dflt;
    opts = opts_or_defaults(opts, &dflt);
    *current = 0;
    int rc = opts_check(opts);
    if (rc < 0)
        return rc;
    Joust__RunRecord *rec = NULL; /* the stored record: the caller's copy may be older */
    if ((rc = joust_rec_run_get(st, run->name, &rec)) < 0)
        return rc;
    marker mk = {.plan_cursor = rec->plan_cursor};
    uint64_t part_kinds[SCAN_PARTS][4] = {{0}}, kinds[4] = {0}, corrupt = 0;
    void *args[SCAN_PARTS];
    for (int i = 0; i < SCAN_PARTS; i++)
        args[i] = part_kinds[i];
    int threads = opts->threads ? opts->threads : online_cpus();
    int logged = 0;
    if (rec->has_scores_from && /* else never scored, or a scoring that did not finish */
        (rc = joust_rec_counter_get(st, JOUST_NEXT_IMAGE, &mk.next_image)) == 0 &&
        use_log(rec, opts)) {
        log_job j = {.st = st}; /* classes only: the kinds of the OK outcomes */
        if ((rc = log_read(&j, rec, threads, &mk.digest, &corrupt, &logged)) == 0 && logged)
            for (uint64_t id = 0; id < j.nslots; id++)
                if (j.state[id] != ST_NONE && j.state[id] != ST_FAILED)
                    kinds[j.state[id] & ST_KIND]++;
        log_job_free(&j);
    }
    if (rec->has_scores_from && rc == 0 && !logged)
        rc = scan_outcomes(st, rec, threads, count_kind, args, &mk.digest, &corrupt);
    if (rec->has_scores_from && rc == 0) {
        for (int i = 0; i < SCAN_PARTS; i++)
            for (int k = 0; k < 4; k++)
                kinds[k] += part_kinds[i][k];
        marker_weights(&mk, opts, kinds);
        unsigned char want[MARKER_LEN];
        marker_pack(&mk, want);
        *current = rec->scores_from.len == sizeof want &&
                   !memcmp(rec->scores_from.data, want, sizeof want);
    }
    joust_rec_free(rec);
    return rc;
}

int joust_scores_ensure(joust_store_t *st, const Joust__RunRecord *run,
                        const joust_score_opts *o, joust_score_summary *sum, int *refitted)
{
    int current = 0;
    int rc = joust_scores_current(st, run, o, &current);
    if (refitted)
        *refitted = !current;
    if (rc < 0)
        return rc;
    if (current) {
        memset(sum, 0, sizeof *sum);
        sum->bias.mean_p_first = 0.5;
        return 0;
    }
    return joust_scores_compute(st, run, o, sum);
}
