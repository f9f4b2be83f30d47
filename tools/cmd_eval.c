/* joust eval: a judge's agreement with human labels (docs/judges.md,
 * "Evaluating a judge"). The labelled pairs become a run of their own:
 * every pair the humans did not tie is a two-image prompt group in the
 * store, so a round robin judges exactly that pair (both orders by
 * default) through the normal coordinator and local workers; a second
 * command on the same store resumes the run and re-uses its outcomes.
 * Several judge configurations (--judge-config) are runs over the same
 * pairs, compared pair for pair. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <wordexp.h>

#include "cli.h"
#include "err.h"
#include "eval.h"
#include "hash.h"
#include "labels.h"
#include "log.h"
#include "output.h"
#include "safe_open.h"
#include "pipeline.h"
#include "records.h"
#include "run.h"
#include "tally.h"
#include "u64map.h"
#include "xalloc.h"

#define EVAL_MAX_CONFIGS 16

typedef struct {
    const char *format, *calibration_out;
    const char *configs[EVAL_MAX_CONFIGS];
    int n_configs, db_given, fit_bias;
    unsigned rounds;
} eval_args;

/* What one judge configuration gave. */
typedef struct {
    cli_opts o;                 /* its options (o.jcfg points into it: never moved) */
    wordexp_t words;
    int have_words;
    char **argv;                /* the argv o was parsed from (o points into it) */
    char run[96];
    joust_eval_pair *pairs;     /* one per labelled pair */
    joust_eval_sums *sums;      /* per prompt, the format's protocol */
    uint64_t calls, ok, failed, attempts, tokens, kinds[4];
    uint64_t unjudged;          /* judged pairs (not human ties) without any answer */
    int rc;                     /* the run's result */
} eval_config;

/* Pulls eval's own options out of argv (the rest goes to cli_begin). */
static int split_args(int argc, char **argv, eval_args *ea, char **rest, int *n_rest)
{
    *n_rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--format") || !strcmp(a, "--judge-config") ||
                    !strcmp(a, "--bootstrap") || !strcmp(a, "--calibration-out");
        if (takes && !v) {
            fprintf(stderr, "joust eval: %s needs a value\n", a);
            return JOUST_EINVAL;
        }
        if (!strcmp(a, "--format")) {
            ea->format = v;
        } else if (!strcmp(a, "--judge-config")) {
            if (ea->n_configs == EVAL_MAX_CONFIGS) {
                fprintf(stderr, "joust eval: at most %d --judge-config options\n", EVAL_MAX_CONFIGS);
                return JOUST_EINVAL;
            }
            ea->configs[ea->n_configs++] = v;
        } else if (!strcmp(a, "--bootstrap")) {
            char *end;
            unsigned long r = strtoul(v, &end, 10);
            if (*end || !*v || r < 10 || r > 100000) {
                fprintf(stderr, "joust eval: --bootstrap must be 10..100000\n");
                return JOUST_EINVAL;
            }
            ea->rounds = (unsigned)r;
        } else if (!strcmp(a, "--calibration-out")) {
            ea->calibration_out = v;
        } else if (!strcmp(a, "--fit-bias")) {
            ea->fit_bias = 1;
            continue;
        } else {
            if (!strcmp(a, "--db") || !strncmp(a, "--db=", 5))
                ea->db_given = 1;
            rest[(*n_rest)++] = argv[i];
            continue;
        }
        i++;
    }
    rest[*n_rest] = NULL;
    return 0;
}

/* Image ids in the store are "e<labels hash>:<pair>:<a|b>". */
static void image_id(char *buf, size_t len, uint64_t lhash, size_t pair, int side)
{
    snprintf(buf, len, "e%016" PRIx64 ":%zu:%c", lhash, pair, side ? 'b' : 'a');
}

/* Writes the manifest of the judged pairs (not tied by the humans). */
static int write_manifest(const joust_labels *l, uint64_t lhash, const char *path, size_t *judged)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_error("cannot write %s: %s", path, strerror(errno));
        return JOUST_EIO;
    }
    *judged = 0;
    for (size_t k = 0; k < l->n_pairs; k++) {
        const joust_label_pair *p = &l->pairs[k];
        if (p->human == 0.5)
            continue;
        (*judged)++;
        char group[64], id[64];
        snprintf(group, sizeof group, "e%016" PRIx64 ":%zu", lhash, k);
        for (int side = 0; side < 2; side++) {
            cJSON *o = cJSON_CreateObject();
            image_id(id, sizeof id, lhash, k, side);
            cJSON_AddStringToObject(o, "image", l->images[side ? p->b : p->a]);
            cJSON_AddStringToObject(o, "prompt", l->prompts[p->prompt].text);
            cJSON_AddStringToObject(o, "prompt_id", group);
            cJSON_AddStringToObject(o, "id", id);
            char *line = cJSON_PrintUnformatted(o);
            fprintf(f, "%s\n", line);
            free(line);
            cJSON_Delete(o);
        }
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        log_error("cannot write %s", path);
        return JOUST_EIO;
    }
    return 0;
}

/* store image id -> pair * 2 + side, for this label set's images. */
static int map_images(joust_store_t *st, uint64_t lhash, size_t n_pairs, joust_u64map_t *map)
{
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "e%016" PRIx64 ":", lhash);
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new(st, JOUST_REC_IMAGES, 0, &c);
    if (rc < 0)
        return rc;
    for (; joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        Joust__ImageRecord *ir = joust_rec_cursor_image(c);
        size_t k;
        char side;
        if (ir && ir->caller_id && !strncmp(ir->caller_id, prefix, (size_t)plen) &&
            sscanf(ir->caller_id + plen, "%zu:%c", &k, &side) == 2 && k < n_pairs &&
            (side == 'a' || side == 'b'))
            joust_u64map_put(map, ir->image_id, 2 * k + (side == 'b'));
        joust_rec_free(ir);
    }
    rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    return rc;
}

/* Reads the run's outcomes into ec->pairs and the counts. */
static int read_outcomes(joust_store_t *st, const joust_u64map_t *map, eval_config *ec)
{
    Joust__RunRecord *run;
    int rc = joust_run_open(st, ec->run, NULL, &run);
    if (rc < 0)
        return rc;
    joust_rec_cursor_t *c;
    if ((rc = joust_rec_cursor_new(st, JOUST_REC_OUTCOMES, run->run_id, &c)) < 0) {
        joust_rec_free(run);
        return rc;
    }
    for (; joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        Joust__OutcomeRecord *o = joust_rec_cursor_outcome(c);
        uint64_t fa, fb;
        if (!o || !joust_u64map_get(map, o->first, &fa) || !joust_u64map_get(map, o->second, &fb) ||
            fa / 2 != fb / 2) {
            joust_rec_free(o);
            continue; /* not one of this label set's pairs */
        }
        ec->calls++;
        ec->attempts += o->has_attempt ? o->attempt : 1;
        ec->tokens += o->has_tokens ? o->tokens : 0;
        if (o->status == JOUST__OUTCOME_STATUS__OK && o->has_p_first) {
            ec->ok++;
            int kind = o->has_kind && o->kind >= 1 && o->kind <= 3 ? (int)o->kind : 1;
            ec->kinds[kind]++;
            joust_eval_pair *x = &ec->pairs[fa / 2];
            if (fa % 2 == 0)
                x->p_ab = o->p_first; /* a shown first */
            else
                x->p_ba = o->p_first;
        } else {
            ec->failed++;
        }
        joust_rec_free(o);
    }
    rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    joust_rec_free(run);
    return rc;
}

/* ------------------------------------------------------------ report --- */

typedef struct {
    const joust_labels *l;
    int held_out; /* 1: prompts whose key hash is odd */
} split_arg;

static int in_split(const joust_eval_pair *x, void *arg)
{
    const split_arg *s = arg;
    const char *key = s->l->prompts[x->prompt].key;
    return (int)(joust_hash64(key, strlen(key)) & 1) == s->held_out;
}

static cJSON *num(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *calibration_json(const joust_eval_calibration *k)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "calls", num((double)k->n));
    cJSON_AddItemToObject(o, "ece", num(k->ece));
    cJSON_AddItemToObject(o, "brier", num(k->brier));
    cJSON_AddItemToObject(o, "log_loss", num(k->log_loss));
    cJSON *bins = cJSON_AddArrayToObject(o, "reliability");
    for (int b = 0; b < JOUST_EVAL_BINS; b++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "p_from", num(b / (double)JOUST_EVAL_BINS));
        cJSON_AddItemToObject(e, "calls", num((double)k->bin_n[b]));
        cJSON_AddItemToObject(e, "mean_p", num(k->bin_p[b]));
        cJSON_AddItemToObject(e, "observed", num(k->bin_y[b]));
        cJSON_AddItemToArray(bins, e);
    }
    return o;
}

static void interval(cJSON *o, const char *name, double v, double lo, double hi)
{
    cJSON *a = cJSON_AddObjectToObject(o, name);
    cJSON_AddItemToObject(a, "value", num(v));
    cJSON_AddItemToObject(a, "lo", num(lo));
    cJSON_AddItemToObject(a, "hi", num(hi));
}

/* o printed as path (temporary file, fsync, rename: no half-written file). */
static int write_json(const char *path, const cJSON *o)
{
    char *text = cJSON_Print(o);
    size_t len = strlen(text);
    text = xrealloc(text, len + 2);
    text[len++] = '\n';
    int rc = joust_outfile_write_all(path, text, len);
    free(text);
    return rc;
}

static int write_calibration_file(const char *path, const joust_calibration *c, const char *run,
                                  uint64_t calls)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "temperature", c->temperature);
    cJSON_AddNumberToObject(o, "first_bias", c->first_bias);
    cJSON_AddStringToObject(o, "fitted_on_run", run);
    cJSON_AddNumberToObject(o, "fitted_on_calls", (double)calls);
    int rc = write_json(path, o);
    cJSON_Delete(o);
    return rc;
}

int cli_calibration_read(const char *path, joust_calibration *out)
{
    /* safe_open: a FIFO or device given as the file fails at once, never blocks */
    unsigned char *buf = NULL;
    size_t n = 0;
    char why[512];
    if (joust_read_regular(path, 0, 4095, &buf, &n, why, sizeof why) < 0) {
        fprintf(stderr, "joust: --calibration %s\n", why);
        return JOUST_EIO;
    }
    cJSON *o = cJSON_Parse((const char *)buf);
    free(buf);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "temperature");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "first_bias");
    int ok = cJSON_IsNumber(t) && t->valuedouble > 0 && isfinite(t->valuedouble) &&
             (!b || (cJSON_IsNumber(b) && isfinite(b->valuedouble)));
    if (ok)
        *out = (joust_calibration){t->valuedouble, b ? b->valuedouble : 0};
    else
        fprintf(stderr, "joust: --calibration %s: not a calibration file (a JSON object with "
                        "\"temperature\" > 0 and an optional \"first_bias\")\n", path);
    cJSON_Delete(o);
    return ok ? 0 : JOUST_EINVAL;
}

/* Every number of one configuration into eval.json's entry and a short
 * summary on stdout. */
static cJSON *report_config(const eval_args *ea, const joust_labels *l, joust_protocol proto,
                            eval_config *ec, int idx, int n_configs, const eval_config *base)
{
    size_t np = l->n_prompts ? l->n_prompts : 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "run", ec->run);
    cJSON_AddStringToObject(o, "judge", ec->o.judge);
    cJSON_AddStringToObject(o, "config", ea->n_configs ? ea->configs[idx] : ec->o.judge);
    double acc = joust_eval_combine(ec->sums, NULL, l->n_prompts), lo, hi;
    joust_eval_bootstrap(ec->sums, NULL, l->n_prompts, ea->rounds, 1, 0.95, &lo, &hi);
    interval(o, "accuracy", acc, lo, hi);
    cJSON *cnt = cJSON_AddObjectToObject(o, "counts");
    cJSON_AddNumberToObject(cnt, "calls", (double)ec->calls);
    cJSON_AddNumberToObject(cnt, "ok", (double)ec->ok);
    cJSON_AddNumberToObject(cnt, "failed", (double)ec->failed);
    cJSON_AddNumberToObject(cnt, "attempts", (double)ec->attempts);
    cJSON_AddNumberToObject(cnt, "tokens", (double)ec->tokens);
    cJSON_AddNumberToObject(cnt, "soft", (double)ec->kinds[1]);
    cJSON_AddNumberToObject(cnt, "bounded", (double)ec->kinds[2]);
    cJSON_AddNumberToObject(cnt, "hard", (double)ec->kinds[3]);
    cJSON_AddNumberToObject(cnt, "pairs_without_answer", (double)ec->unjudged);
    if (base && base != ec) {
        double dlo, dhi;
        joust_eval_bootstrap(ec->sums, base->sums, l->n_prompts, ea->rounds, 1, 0.95, &dlo, &dhi);
        interval(o, "difference_to_first",
                 acc - joust_eval_combine(base->sums, NULL, l->n_prompts), dlo, dhi);
    }
    if (l->n_categories) {
        cJSON *cats = cJSON_AddObjectToObject(o, "categories");
        joust_eval_sums *s = xcalloc(np, sizeof *s);
        for (size_t c = 0; c < l->n_categories; c++) {
            joust_eval_sums_compute(proto, ec->pairs, l->n_pairs, (uint32_t)c, s, l->n_prompts);
            double clo, chi;
            joust_eval_bootstrap(s, NULL, l->n_prompts, ea->rounds, 1, 0.95, &clo, &chi);
            interval(cats, l->categories[c], joust_eval_combine(s, NULL, l->n_prompts), clo, chi);
        }
        free(s);
    }
    joust_eval_calibration all, before, after;
    joust_eval_calibrate(ec->pairs, l->n_pairs, NULL, NULL, NULL, &all);
    cJSON_AddItemToObject(o, "calibration", calibration_json(&all));
    joust_eval_margin m;
    joust_eval_by_margin(ec->pairs, l->n_pairs, &m);
    cJSON *ma = cJSON_AddArrayToObject(o, "accuracy_by_margin");
    for (int b = 0; b < JOUST_EVAL_BINS; b++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "pairs", num((double)m.n[b]));
        cJSON_AddItemToObject(e, "margin_lo", num(m.lo[b]));
        cJSON_AddItemToObject(e, "margin_hi", num(m.hi[b]));
        cJSON_AddItemToObject(e, "accuracy", num(m.accuracy[b]));
        cJSON_AddItemToArray(ma, e);
    }
    joust_eval_order ord;
    joust_eval_order_stats(ec->pairs, l->n_pairs, &ord);
    cJSON *oj = cJSON_AddObjectToObject(o, "order");
    cJSON_AddItemToObject(oj, "pairs_both_orders", num((double)ord.both));
    cJSON_AddItemToObject(oj, "consistency", num(ord.consistency));
    cJSON_AddItemToObject(oj, "mean_delta", num(ord.mean_delta));
    cJSON_AddItemToObject(oj, "first_position_wins", num(ord.first_wins));
    /* Temperature: fitted on the prompts with an even key hash, judged on
     * the others. */
    split_arg fit = {l, 0}, held = {l, 1};
    joust_calibration cal;
    cJSON *tj = cJSON_AddObjectToObject(o, "temperature");
    int frc = joust_eval_fit_temperature(ec->pairs, l->n_pairs, ea->fit_bias, in_split, &fit, &cal);
    joust_eval_calibrate(ec->pairs, l->n_pairs, NULL, in_split, &held, &before);
    if (frc == 0) {
        joust_eval_calibrate(ec->pairs, l->n_pairs, &cal, in_split, &held, &after);
        cJSON_AddNumberToObject(tj, "temperature", cal.temperature);
        cJSON_AddNumberToObject(tj, "first_bias", cal.first_bias);
        cJSON_AddItemToObject(tj, "held_out_before", calibration_json(&before));
        cJSON_AddItemToObject(tj, "held_out_after", calibration_json(&after));
        if (ea->calibration_out) {
            char path[PATH_MAX];
            if (n_configs > 1)
                snprintf(path, sizeof path, "%s.%d", ea->calibration_out, idx + 1);
            else
                snprintf(path, sizeof path, "%s", ea->calibration_out);
            joust_eval_calibration on_fit;
            joust_eval_calibrate(ec->pairs, l->n_pairs, NULL, in_split, &fit, &on_fit);
            if (write_calibration_file(path, &cal, ec->run, on_fit.n) == 0)
                cJSON_AddStringToObject(tj, "file", path);
        }
    } else {
        cJSON_AddStringToObject(tj, "error", "no finite fit (too few calls on the fit half, or a "
                                             "judge that disagrees with the humans)");
    }
    /* The summary. */
    printf("\n[%d] %s  (run %s)\n", idx + 1, ea->n_configs ? ea->configs[idx] : ec->o.judge, ec->run);
    printf("  accuracy %.1f%%  [%.1f, %.1f] 95%% bootstrap over %zu prompts\n", 100 * acc,
           100 * lo, 100 * hi, l->n_prompts);
    if (base && base != ec) {
        cJSON *d = cJSON_GetObjectItem(o, "difference_to_first");
        printf("  vs [1]: %+.1f points [%+.1f, %+.1f]\n",
               100 * cJSON_GetNumberValue(cJSON_GetObjectItem(d, "value")),
               100 * cJSON_GetNumberValue(cJSON_GetObjectItem(d, "lo")),
               100 * cJSON_GetNumberValue(cJSON_GetObjectItem(d, "hi")));
    }
    printf("  calls %" PRIu64 " (%" PRIu64 " ok: %" PRIu64 " soft, %" PRIu64 " bounded, %" PRIu64
           " hard; %" PRIu64 " failed), tokens %" PRIu64 "; %" PRIu64
           " labelled pairs without an answer\n",
           ec->calls, ec->ok, ec->kinds[1], ec->kinds[2], ec->kinds[3], ec->failed, ec->tokens,
           ec->unjudged);
    printf("  calibration: ECE %.3f  Brier %.3f  log loss %.3f  (%" PRIu64 " calls)\n", all.ece,
           all.brier, all.log_loss, all.n);
    printf("  order: %" PRIu64 " pairs in both orders, %.1f%% consistent, mean first-position "
           "delta %+.3f\n", ord.both, 100 * ord.consistency, ord.mean_delta);
    if (frc == 0)
        printf("  temperature %.3f, first bias %+.3f: held-out ECE %.3f -> %.3f, log loss %.3f -> "
               "%.3f\n", cal.temperature, cal.first_bias, before.ece, after.ece, before.log_loss,
               after.log_loss);
    else
        printf("  temperature: no finite fit on the fit half of the prompts\n");
    const cJSON *file = cJSON_GetObjectItem(tj, "file");
    if (file)
        printf("  calibration file %s\n", file->valuestring);
    return o;
}

/* ------------------------------------------------------------ command --- */

/* Judges the configuration's run through the pipeline (judge only: no
 * fit, no files), then reads its outcomes. */
static int run_config(eval_config *ec, joust_store_t *st, const char *manifest,
                      const joust_u64map_t *map, const joust_labels *l, joust_protocol proto)
{
    cli_run r;
    joust_pipeline_config pc;
    joust_pipeline_result res;
    int rc = cli_pipeline_setup(&ec->o, manifest, &r, &pc);
    if (rc == 0) {
        pc.out_dir = NULL;
        rc = joust_pipeline_run(st, &pc, &res);
    }
    if (rc == JOUST_EEXIST)
        log_error("run '%s' exists with another configuration: choose another --run NAME, or "
                  "remove it: joust runs rm %s --db %s", ec->run, ec->run, ec->o.db);
    free((char *)pc.spec.judge_options);
    cli_run_clear(&r);
    ec->pairs = xcalloc(l->n_pairs ? l->n_pairs : 1, sizeof *ec->pairs);
    for (size_t k = 0; k < l->n_pairs; k++)
        ec->pairs[k] = (joust_eval_pair){l->pairs[k].prompt, l->pairs[k].category,
                                         l->pairs[k].human, NAN, NAN};
    /* Whatever the store holds, also after a run that stopped early. */
    int rrc = read_outcomes(st, map, ec);
    if (rc == 0)
        rc = rrc;
    for (size_t k = 0; k < l->n_pairs; k++)
        if (l->pairs[k].human != 0.5 && isnan(joust_eval_pair_p(&ec->pairs[k])))
            ec->unjudged++;
    ec->sums = xcalloc(l->n_prompts ? l->n_prompts : 1, sizeof *ec->sums);
    joust_eval_sums_compute(proto, ec->pairs, l->n_pairs, JOUST_EVAL_NO_CATEGORY, ec->sums,
                            l->n_prompts);
    if (rc == 0 && joust_max_failed_exceeded(&ec->o.max_failed, &res.judged.run)) {
        fprintf(stderr, "joust eval: run '%s': %" PRIu64 " failed matches, more than --max-failed "
                        "allows (they are counted in the report)\n",
                ec->run, joust_coord_tally_failed(&res.judged.run));
        rc = JOUST_EJUDGE;
    }
    return rc;
}

#define EVAL_USAGE                                                                            \
    "usage: joust eval LABELS [--judge NAME | --judge-config 'NAME [OPTIONS]' ...] [options]\n" \
    "Judges exactly the labelled pairs of LABELS (both orders by default) with local\n"       \
    "workers and reports the agreement with the humans under the format's protocol\n"         \
    "(docs/judges.md, \"Evaluating a judge\"); writes eval.json under --out.\n\n"              \
    "  --format F           auto (default) | imagereward | hpdv2 | pickapic | pairs\n"         \
    "  --judge-config CFG   a judge configuration, e.g. 'openai --mode direct --endpoint\n"     \
    "                       URL' (repeatable: each is its own run over the same pairs,\n"     \
    "                       compared with the first)\n"                                       \
    "  --out DIR            eval.json, the pairs' manifest, bad lines (default .)\n"            \
    "  --db PATH            the store (default DIR/eval.db)\n"                                \
    "  --run NAME           run name (default eval-<labels>-<config> hashes); a second\n"      \
    "                       command with the same runs re-uses their outcomes\n"              \
    "  --bootstrap N        bootstrap rounds over prompts (default 1000)\n"                    \
    "  --calibration-out FILE  the fitted temperature (JSON) for `joust run --calibration`\n"   \
    "                       (FILE.N for configuration N when there are several)\n"            \
    "  --fit-bias           fit a first-position bias along with the temperature\n"           \
    "  --order fixed shows image a first, one call a pair; the options of `joust run`:\n"

int cmd_eval(int argc, char **argv)
{
    eval_args ea = {.rounds = 1000};
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int n_rest, code = 2;
    eval_config *cfg = NULL;
    int n_cfg = 0;
    joust_labels *l = NULL;
    joust_store_t *st = NULL;
    joust_u64map_t map;
    joust_u64map_init(&map);
    cJSON *report = NULL;
    if (split_args(argc, argv, &ea, rest, &n_rest) < 0)
        goto out;
    n_cfg = ea.n_configs ? ea.n_configs : 1;
    cfg = xcalloc((size_t)n_cfg, sizeof *cfg);
    char **av = xcalloc((size_t)n_rest + 256, sizeof *av);
    for (int i = 0; i < n_cfg; i++) {
        eval_config *ec = &cfg[i];
        int n = 0;
        for (int k = 0; k < n_rest; k++)
            av[n++] = rest[k];
        if (ea.n_configs) {
            if (wordexp(ea.configs[i], &ec->words, WRDE_NOCMD | WRDE_UNDEF) != 0) {
                fprintf(stderr, "joust eval: --judge-config '%s': cannot split it into words\n",
                        ea.configs[i]);
                free(av);
                goto out;
            }
            ec->have_words = 1;
            for (size_t w = 0; w < ec->words.we_wordc && n < n_rest + 250; w++) {
                if (w == 0 && ec->words.we_wordv[0][0] != '-')
                    av[n++] = "--judge"; /* a leading bare word names the judge */
                av[n++] = ec->words.we_wordv[w];
            }
        }
        av[n] = NULL;
        char **copy = xcalloc((size_t)n + 1, sizeof *copy); /* getopt permutes; o keeps pointers */
        memcpy(copy, av, (size_t)n * sizeof *copy);
        ec->argv = copy;
        if (!cli_begin_opts(n, copy, EVAL_USAGE, CLI_RUN | CLI_JUDGES, 1, 1, &ec->o, &code)) {
            free(av);
            goto out;
        }
    }
    free(av);
    const char *labels_path = cfg[0].o.argv[0];
    joust_labels_format fmt = JOUST_LABELS_AUTO;
    if (ea.format && joust_labels_format_parse(ea.format, &fmt) < 0) {
        fprintf(stderr, "joust eval: --format: '%s' is not auto, imagereward, hpdv2, pickapic or "
                        "pairs\n", ea.format);
        goto out;
    }
    for (int i = 0; i < n_cfg; i++)
        if (cli_image_roots(&cfg[i].o, labels_path) < 0)
            goto out;
    code = 1;
    char err[1024];
    if (joust_labels_read(labels_path, fmt, NULL, &l, err, sizeof err) < 0) {
        fprintf(stderr, "joust eval: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < l->n_errors; i++)
        if (i < 20)
            fprintf(stderr, "%s: %s\n", labels_path, l->errors[i]);
    if (l->n_errors > 20)
        fprintf(stderr, "%s: ... %zu more bad records (all listed in eval.json)\n", labels_path,
                l->n_errors - 20);
    joust_protocol proto =
        l->format == JOUST_LABELS_HPDV2 ? JOUST_PROTOCOL_PER_PROMPT : JOUST_PROTOCOL_POOLED;
    printf("%s: %s labels, %zu prompts, %zu images, %zu pairs (%zu records, %zu bad)\n",
           labels_path, joust_labels_format_name(l->format), l->n_prompts, l->n_images,
           l->n_pairs, (size_t)l->records, l->n_errors);
    /* The label set's identity: its resolved pairs. */
    uint64_t lhash = 0x6a6f757374ull;
    for (size_t k = 0; k < l->n_pairs; k++) {
        const joust_label_pair *p = &l->pairs[k];
        uint64_t h[4] = {lhash, joust_hash64(l->images[p->a], strlen(l->images[p->a])),
                         joust_hash64(l->images[p->b], strlen(l->images[p->b])),
                         joust_hash64(l->prompts[p->prompt].text, strlen(l->prompts[p->prompt].text))};
        lhash = joust_hash64(h, sizeof h);
    }
    const char *out_dir = cfg[0].o.out;
    mkdir(out_dir, 0755);
    char manifest[PATH_MAX], db[PATH_MAX];
    snprintf(manifest, sizeof manifest, "%s/eval_pairs.jsonl", out_dir);
    snprintf(db, sizeof db, "%s/eval.db", out_dir);
    size_t judged = 0;
    if (write_manifest(l, lhash, manifest, &judged) < 0)
        goto out;
    if (!judged) {
        fprintf(stderr, "joust eval: %s has no pair the humans did not tie: nothing to judge\n",
                labels_path);
        goto out;
    }
    for (int i = 0; i < n_cfg; i++) {
        eval_config *ec = &cfg[i];
        if (!ea.db_given)
            ec->o.db = db;
        if (strcmp(ec->o.strategy, "round-robin")) {
            fprintf(stderr, "joust eval: --strategy: eval judges every labelled pair "
                            "(round-robin within each pair)\n");
            code = 2;
            goto out;
        }
        if (strcmp(ec->o.run, "default"))
            snprintf(ec->run, sizeof ec->run, n_cfg > 1 ? "%s-%d" : "%s", ec->o.run, i + 1);
        else {
            const char *c = ea.n_configs ? ea.configs[i] : ec->o.judge;
            snprintf(ec->run, sizeof ec->run, "eval-%08" PRIx64 "-%08" PRIx64, lhash >> 32,
                     joust_hash64(c, strlen(c)) >> 32);
        }
        ec->o.run = ec->run;
    }
    if (cli_open_store(cfg[0].o.db, 1, &st) < 0)
        goto out;
    cli_install_signals();
    /* Ingest once; every configuration judges the same images. */
    if (cli_ingest(&cfg[0].o, st, manifest) < 0)
        goto out;
    int rc = map_images(st, lhash, l->n_pairs, &map);
    if (rc < 0) {
        log_error("cannot read the store's images: %s", joust_strerror(rc));
        goto out;
    }
    if (map.len < 2 * judged)
        fprintf(stderr, "joust eval: %zu of the %zu images of judged pairs are not in the store "
                        "(bad lines: %s/bad_lines.jsonl); their pairs count as without an answer\n",
                2 * judged - map.len, 2 * judged, out_dir);
    int failed = 0;
    for (int i = 0; i < n_cfg && !cli_stop; i++) {
        eval_config *ec = &cfg[i];
        printf("\n== judge configuration %d of %d: %s (run %s)\n", i + 1, n_cfg,
               ea.n_configs ? ea.configs[i] : ec->o.judge, ec->run);
        ec->rc = run_config(ec, st, manifest, &map, l, proto);
        if (ec->rc < 0)
            failed = 1;
    }
    if (cli_stop) {
        code = 130;
        goto out;
    }
    report = cJSON_CreateObject();
    cJSON_AddStringToObject(report, "labels", labels_path);
    cJSON_AddStringToObject(report, "format", joust_labels_format_name(l->format));
    cJSON_AddStringToObject(report, "protocol",
                            proto == JOUST_PROTOCOL_PER_PROMPT
                                ? "per-prompt (HPDv2 inversion score, mean over prompts)"
                                : "pooled over pairs, human ties left out");
    cJSON_AddNumberToObject(report, "prompts", (double)l->n_prompts);
    cJSON_AddNumberToObject(report, "pairs", (double)l->n_pairs);
    cJSON_AddNumberToObject(report, "pairs_judged", (double)judged);
    cJSON_AddNumberToObject(report, "pairs_tied_by_humans", (double)(l->n_pairs - judged));
    cJSON_AddNumberToObject(report, "bootstrap_rounds", ea.rounds);
    cJSON_AddStringToObject(report, "judge_tie_rule", "p = 0.5 exactly counts as half right");
    cJSON *errs = cJSON_AddArrayToObject(report, "label_errors");
    for (size_t i = 0; i < l->n_errors; i++)
        cJSON_AddItemToArray(errs, cJSON_CreateString(l->errors[i]));
    cJSON *judges = cJSON_AddArrayToObject(report, "judges");
    for (int i = 0; i < n_cfg; i++) {
        cJSON *j = report_config(&ea, l, proto, &cfg[i], i, n_cfg, &cfg[0]);
        if (cfg[i].rc < 0)
            cJSON_AddStringToObject(j, "error", joust_strerror(cfg[i].rc));
        cJSON_AddItemToArray(judges, j);
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/eval.json", out_dir);
    if (write_json(path, report) < 0)
        goto out;
    printf("\nwrote %s\n", path);
    code = failed ? 1 : 0;
out:
    cJSON_Delete(report);
    joust_store_destroy(&st);
    joust_labels_destroy(&l);
    joust_u64map_free(&map);
    for (int i = 0; i < n_cfg && cfg; i++) {
        free(cfg[i].pairs);
        free(cfg[i].sums);
        if (cfg[i].have_words)
            wordfree(&cfg[i].words);
        free(cfg[i].argv);
    }
    free(cfg);
    free(rest);
    return code;
}
