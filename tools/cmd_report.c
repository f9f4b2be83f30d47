/* `joust report`: the model-quality report of a run (docs/report.md). */
#include <fnmatch.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "report.h"
#include "xalloc.h"

#define EXIT_REGRESSION 3

static const char usage[] =
    "usage: joust report [--run NAME] [--db DB] --out DIR [options]\n"
    "Writes DIR/report.html (self-contained: inline SVG plots, embedded thumbnails, no\n"
    "network), DIR/report.json (every number) and DIR/report.md (a short summary) for a\n"
    "finished run or one in progress (marked partial). docs/report.md.\n\n"
    "  --run NAME               the run (default \"default\"); --db/--store DB (default joust.db)\n"
    "  --baseline-model NAME    anchor: this model scores 0 every night\n"
    "  --by FIELD               per-category scores by a manifest metadata field\n"
    "  --rounds N               bootstrap rounds (default 200; 0 = no intervals)\n"
    "  --seed N                 bootstrap seed (default 1)\n"
    "  --compare RUN|STORE:RUN  the run to compare with (another store opened read-only)\n"
    "  --series PATTERN         trend over the runs whose names start with PATTERN (or match\n"
    "                           it as a glob when it has * ? [)\n"
    "  --last N                 trend: the last N runs of the series (default 10)\n"
    "  --fail-on-regression[=MARGIN]  exit 3 when a watched model is significantly worse than\n"
    "                           in --compare by more than MARGIN (default 0)\n"
    "  --watch MODEL            a model the gate watches (repeatable; default every model but\n"
    "                           the baseline)\n"
    "  --gallery N              closest and most decisive matches per model pair (default 2)\n"
    "  --gallery-pair A,B       show only these model pairs' matches (repeatable; default all)\n"
    "  --gallery-prompts N      prompts shown with all their images in rank order (default 3)\n"
    "  --gallery-prompt ID      show this prompt (the manifest's prompt_id, else its text)\n"
    "                           instead of the first N (repeatable)\n"
    "  --thumb-side PX          thumbnail size (default 96)\n"
    "  --image-root DIR         relative image paths resolve under DIR\n"
    "  --eval FILE              embed a judge evaluation (the eval.json of `joust eval`)\n"
    "  --timings                print the seconds of each phase to stderr (joust bench report)\n";

typedef struct {
    const char *run, *db, *out, *compare, *series, *image_root, *eval;
    int last, gate, timings;
    double margin;
    char **watch;
    int n_watch;
    const char **gal_pairs, **gal_prompts;
    rep_opts ro;
    rep_gallery_opts go;
} report_args;

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "joust report: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* 0, 1 for --help (printed), or 2 for a usage error (printed). */
static int parse(int argc, char **argv, report_args *a)
{
    enum { O_RUN = 256, O_DB, O_OUT, O_BASE, O_BY, O_ROUNDS, O_SEED, O_CMP, O_SERIES, O_LAST,
           O_GATE, O_WATCH, O_GAL, O_GALP, O_THUMB, O_ROOT, O_EVAL, O_TIMINGS, O_HELP,
           O_GPAIR, O_GPROMPT };
    static const struct option opts[] = {
        {"run", required_argument, 0, O_RUN},        {"db", required_argument, 0, O_DB},
        {"store", required_argument, 0, O_DB},       {"out", required_argument, 0, O_OUT},
        {"baseline-model", required_argument, 0, O_BASE}, {"by", required_argument, 0, O_BY},
        {"rounds", required_argument, 0, O_ROUNDS},  {"seed", required_argument, 0, O_SEED},
        {"compare", required_argument, 0, O_CMP},    {"series", required_argument, 0, O_SERIES},
        {"last", required_argument, 0, O_LAST},      {"fail-on-regression", optional_argument, 0, O_GATE},
        {"watch", required_argument, 0, O_WATCH},    {"gallery", required_argument, 0, O_GAL},
        {"gallery-prompts", required_argument, 0, O_GALP}, {"thumb-side", required_argument, 0, O_THUMB},
        {"image-root", required_argument, 0, O_ROOT}, {"eval", required_argument, 0, O_EVAL},
        {"timings", no_argument, 0, O_TIMINGS}, {"help", no_argument, 0, O_HELP},
        {"gallery-pair", required_argument, 0, O_GPAIR},
        {"gallery-prompt", required_argument, 0, O_GPROMPT},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->run = "default";
    a->db = "joust.db";
    a->last = 10;
    rep_opts_defaults(&a->ro);
    a->go = (rep_gallery_opts){.per_pair = 2, .prompts = 3, .thumb_side = 96, .thumb_quality = 75,
                             .thumb_budget = 4u << 20};
    optind = 1;
    opterr = 1;
    double v;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case O_RUN: a->run = optarg; break;
        case O_DB: a->db = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_BASE: a->ro.baseline = optarg; break;
        case O_BY: a->ro.by = optarg; break;
        case O_CMP: a->compare = optarg; break;
        case O_SERIES: a->series = optarg; break;
        case O_ROOT: a->go.image_root = optarg; break;
        case O_EVAL: a->eval = optarg; break;
        case O_TIMINGS: a->timings = 1; break;
        case O_WATCH:
            a->watch = xrealloc(a->watch, sizeof *a->watch * (size_t)(a->n_watch + 1));
            a->watch[a->n_watch++] = optarg;
            break;
        case O_GPAIR:
            if (!strchr(optarg, ',')) {
                fprintf(stderr, "joust report: --gallery-pair '%s' is not two models A,B\n", optarg);
                return 2;
            }
            a->gal_pairs = xrealloc(a->gal_pairs, sizeof *a->gal_pairs * (a->go.n_pair_sel + 1));
            a->gal_pairs[a->go.n_pair_sel++] = optarg;
            a->go.pair_sel = a->gal_pairs;
            break;
        case O_GPROMPT:
            a->gal_prompts = xrealloc(a->gal_prompts, sizeof *a->gal_prompts * (a->go.n_prompt_sel + 1));
            a->gal_prompts[a->go.n_prompt_sel++] = optarg;
            a->go.prompt_sel = a->gal_prompts;
            break;
        case O_GATE:
            a->gate = 1;
            if (optarg && parse_num("--fail-on-regression", optarg, 0, 1e6, &a->margin) < 0)
                return 2;
            break;
        case O_ROUNDS:
            if (parse_num("--rounds", optarg, 0, 100000, &v) < 0)
                return 2;
            a->ro.rounds = (int)v;
            break;
        case O_SEED:
            if (parse_num("--seed", optarg, 0, 1e18, &v) < 0)
                return 2;
            a->ro.seed = (uint64_t)v;
            break;
        case O_LAST:
            if (parse_num("--last", optarg, 1, 10000, &v) < 0)
                return 2;
            a->last = (int)v;
            break;
        case O_GAL:
            if (parse_num("--gallery", optarg, 0, 1000, &v) < 0)
                return 2;
            a->go.per_pair = (size_t)v;
            break;
        case O_GALP:
            if (parse_num("--gallery-prompts", optarg, 0, 10000, &v) < 0)
                return 2;
            a->go.prompts = (size_t)v;
            break;
        case O_THUMB:
            if (parse_num("--thumb-side", optarg, 16, 1024, &v) < 0)
                return 2;
            a->go.thumb_side = (int)v;
            break;
        case O_HELP: fputs(usage, stdout); return 1;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "joust report: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    if (!a->out) {
        fprintf(stderr, "joust report: --out DIR is required\n%s", usage);
        return 2;
    }
    if (a->gate && !a->compare) {
        fprintf(stderr, "joust report: --fail-on-regression needs --compare RUN\n");
        return 2;
    }
    return 0;
}

typedef struct {
    const char *pattern;
    char **names;
    int64_t *created;
    size_t n;
} series_list;

static void series_add(const Joust__RunRecord *run, void *arg)
{
    series_list *s = arg;
    int glob = strpbrk(s->pattern, "*?[") != NULL;
    if (glob ? fnmatch(s->pattern, run->name, 0) != 0
             : strncmp(run->name, s->pattern, strlen(s->pattern)) != 0)
        return;
    s->names = xrealloc(s->names, sizeof *s->names * (s->n + 1));
    s->created = xrealloc(s->created, sizeof *s->created * (s->n + 1));
    s->names[s->n] = xstrdup(run->name);
    s->created[s->n++] = run->has_created_ms ? run->created_ms : 0;
}

/* The trend: the last N runs of the series (by creation time), each fitted
 * as today's night is and mapped onto today's models by name. */
static int build_trend(joust_store_t *st, const report_args *a, const rep_night *today, rep_report *r)
{
    series_list s = {a->series, NULL, NULL, 0};
    int rc = joust_rec_run_each(st, series_add, &s);
    for (size_t i = 1; i < s.n; i++) /* insertion sort by (created, name) */
        for (size_t j = i; j > 0 && (s.created[j] < s.created[j - 1] ||
                                     (s.created[j] == s.created[j - 1] &&
                                      strcmp(s.names[j], s.names[j - 1]) < 0));
             j--) {
            char *t = s.names[j];
            s.names[j] = s.names[j - 1], s.names[j - 1] = t;
            int64_t c = s.created[j];
            s.created[j] = s.created[j - 1], s.created[j - 1] = c;
        }
    size_t from = s.n > (size_t)a->last ? s.n - (size_t)a->last : 0;
    r->trend = xcalloc(s.n - from + 1, sizeof *r->trend);
    rep_opts ro = a->ro;
    ro.by = NULL;
    for (size_t i = from; i < s.n && rc == 0; i++) {
        rep_night n;
        int lr = rep_night_load(st, s.names[i], &ro, &n);
        if (lr == 0) {
            rep_trend_point *t = &r->trend[r->n_trend++];
            t->run = xstrdup(s.names[i]);
            t->complete = n.complete;
            t->theta = xmalloc(sizeof(double) * (today->n_models + 1));
            t->lo = xmalloc(sizeof(double) * (today->n_models + 1));
            t->hi = xmalloc(sizeof(double) * (today->n_models + 1));
            for (uint32_t m = 0; m < today->n_models; m++) {
                t->theta[m] = t->lo[m] = t->hi[m] = NAN;
                for (uint32_t j = 0; j < n.n_models; j++)
                    if (!strcmp(n.models[j], today->models[m]) && n.score[j].comparisons > 0) {
                        t->theta[m] = n.score[j].theta;
                        t->lo[m] = n.score[j].lo;
                        t->hi[m] = n.score[j].hi;
                    }
            }
        } else
            log_warn("report: the trend leaves out run '%s': %s", s.names[i], joust_strerror(lr));
        rep_night_clear(&n);
    }
    for (size_t i = 0; i < s.n; i++)
        free(s.names[i]);
    free(s.names);
    free(s.created);
    return rc;
}

/* --compare RUN or STORE:RUN (STORE an existing directory; a part before
 * the colon with a '/' that is not one is an error, else the whole is a run
 * name). */
static int open_compare(const char *spec, const char *db, joust_store_t *st, joust_store_t **other,
                        const char **run)
{
    const char *colon = strchr(spec, ':');
    *other = NULL;
    *run = spec;
    if (!colon)
        return 0;
    char *path = xstrdup(spec);
    path[colon - spec] = '\0';
    struct stat sb;
    int rc = 0;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        *run = colon + 1;
        if (strcmp(path, db) != 0) {
            rc = joust_store_open(path, JOUST_STORE_READONLY, other);
            if (rc < 0)
                log_error("report: cannot open the store %s for --compare: %s", path, joust_strerror(rc));
        }
    } else if (strchr(path, '/')) { /* meant as STORE:RUN (a run name has no '/') */
        log_error("report: --compare %s: no joust store at %s", spec, path);
        rc = JOUST_ENOTFOUND;
    }
    (void)st;
    free(path);
    return rc;
}

static void gate(const report_args *a, const rep_night *today, rep_report *r)
{
    uint32_t nm = today->n_models;
    r->gate = a->gate;
    r->margin = a->margin;
    r->watched = xcalloc(nm + 1, sizeof *r->watched);
    r->regressed = xcalloc(nm + 1, sizeof *r->regressed);
    for (uint32_t m = 0; m < nm; m++) {
        if (a->n_watch) {
            for (int w = 0; w < a->n_watch; w++)
                r->watched[m] |= !strcmp(a->watch[w], today->models[m]);
        } else
            r->watched[m] = (int32_t)m != today->baseline;
        if (a->gate && r->watched[m] && r->cmp->significant[m] && r->cmp->delta[m] < -a->margin &&
            r->cmp->hi[m] < -a->margin) {
            r->regressed[m] = 1;
            r->n_regressed++;
        }
    }
    for (int w = 0; w < a->n_watch; w++) {
        int found = 0;
        for (uint32_t m = 0; m < nm; m++)
            found |= !strcmp(a->watch[w], today->models[m]);
        if (!found)
            log_warn("report: --watch %s: the run has no such model", a->watch[w]);
    }
}

int cmd_report(int argc, char **argv)
{
    report_args a;
    int code = parse(argc, argv, &a);
    if (code) {
        free(a.watch), free(a.gal_pairs), free(a.gal_prompts);
        return code == 1 ? 0 : 2;
    }
    joust_store_t *st = NULL, *other = NULL;
    rep_night today = {0}, before = {0};
    rep_compare cmp = {0};
    rep_report r = {0};
    int have_before = 0, rc;
    int64_t t[6] = {joust_now_us()}; /* phase ends: open, today, compare, trend, gallery */
    if ((rc = joust_store_open(a.db, JOUST_STORE_READONLY, &st)) < 0) {
        if (rc == JOUST_ENOTFOUND)
            log_error("report: no joust store at %s", a.db);
        else
            log_error("report: cannot open the store at %s: %s", a.db, joust_strerror(rc));
        free(a.watch), free(a.gal_pairs), free(a.gal_prompts);
        return 1;
    }
    a.ro.prompt_keys = a.compare != NULL;
    if (a.eval && (rc = rep_eval_load(a.eval, &r.eval)) < 0)
        goto done;
    r.eval_path = a.eval;
    t[1] = joust_now_us();
    if ((rc = rep_night_load(st, a.run, &a.ro, &today)) < 0)
        goto done;
    t[2] = joust_now_us();
    r.today = &today;
    r.baseline = a.ro.baseline;
    r.by = a.ro.by;
    r.series = a.series;
    if (a.compare) {
        const char *brun;
        if ((rc = open_compare(a.compare, a.db, st, &other, &brun)) < 0)
            goto done;
        rep_opts bo = a.ro;
        bo.by = NULL;
        bo.cells_only = 1; /* only its cells are compared; its own fit is not shown */
        bo.known = other ? NULL : &today; /* the same store: today's image records serve */
        if ((rc = rep_night_load(other ? other : st, brun, &bo, &before)) < 0)
            goto done;
        have_before = 1;
        if ((rc = rep_compare_nights(&today, &before, &a.ro, &cmp)) < 0)
            goto done;
        if (cmp.shared_prompts == 0)
            log_warn("report: runs '%s' and '%s' share no prompt; no change can be measured", a.run,
                     a.compare);
        r.before = &before;
        r.cmp = &cmp;
        r.before_label = xstrdup(a.compare);
    }
    t[3] = joust_now_us();
    gate(&a, &today, &r);
    if (a.series && (rc = build_trend(st, &a, &today, &r)) < 0)
        goto done;
    t[4] = joust_now_us();
    if ((rc = rep_gallery_build(st, today.run_id, &a.go, &r)) < 0)
        goto done;
    t[5] = joust_now_us();
    if (mkdir(a.out, 0777) != 0) {
        struct stat sb;
        if (stat(a.out, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            log_error("report: cannot create the folder %s", a.out);
            rc = JOUST_EIO;
            goto done;
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/report.html", a.out);
    if ((rc = rep_write_html(&r, path)) < 0)
        goto done;
    snprintf(path, sizeof path, "%s/report.json", a.out);
    if ((rc = rep_write_json(&r, path)) < 0)
        goto done;
    snprintf(path, sizeof path, "%s/report.md", a.out);
    if ((rc = rep_write_md(&r, path)) < 0)
        goto done;
    if (a.timings) {
        int64_t end = joust_now_us();
        fprintf(stderr,
                "timings (s): open %.2f, read %.2f, fit %.2f, compare %.2f, trend %.2f, gallery %.2f, "
                "write %.2f, total %.2f\n",
                (double)(t[1] - t[0]) / 1e6, today.read_s, today.fit_s, (double)(t[3] - t[2]) / 1e6,
                (double)(t[4] - t[3]) / 1e6, (double)(t[5] - t[4]) / 1e6, (double)(end - t[5]) / 1e6,
                (double)(end - t[0]) / 1e6);
    }
    printf("report of run %s%s: %u models, %zu prompts, %llu OK outcomes -> %s/report.{html,json,md}\n",
           today.run_name, today.complete ? "" : " (partial)", today.n_models, today.n_prompts,
           (unsigned long long)today.counts.ok, a.out);
    if (a.gate && r.n_regressed) {
        for (uint32_t m = 0; m < today.n_models; m++)
            if (r.regressed[m])
                printf("REGRESSION: %s %+.3f [%+.3f, %+.3f] against %s (margin %.3f)\n", today.models[m],
                       cmp.delta[m], cmp.lo[m], cmp.hi[m], a.compare, a.margin);
    }
done:
    code = rc < 0 ? 1 : a.gate && r.n_regressed ? EXIT_REGRESSION : 0;
    rep_report_clear(&r);
    rep_compare_clear(&cmp);
    if (have_before || before.run_name)
        rep_night_clear(&before);
    rep_night_clear(&today);
    joust_store_destroy(&other);
    joust_store_destroy(&st);
    free(a.watch), free(a.gal_pairs), free(a.gal_prompts);
    return code;
}
