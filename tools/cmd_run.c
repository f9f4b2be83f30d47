/* Subcommands that judge: run, coordinator, worker, demo. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "demo_data.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "records.h"
#include "run.h"
#include "worker.h"
#include "xalloc.h"

#define RUN_OPTIONS                                                                          \
    "  --db PATH            the store (default joust.db)\n"                                  \
    "  --run NAME           run name (default \"default\"); an existing run resumes\n"      \
    "  --judge NAME         quality (CPU, default) | openai (VLM server) | sim (tests)\n"    \
    "  --order POLICY       both (default) | random | fixed: presentation order of pairs\n" \
    "  --strategy NAME      round-robin (default) | k-regular | swiss | adaptive | top-k |\n"  \
    "                       cross-model: which pairs are judged (docs/ranking.md)\n"       \
    "  --budget X           at most X judge calls per image of a prompt (0: no cap)\n"       \
    "  --budget-calls N     at most N judge calls per prompt (0: no cap)\n"                  \
    "  --confidence X       adaptive, top-k: stop a prompt once settled at X (default 0.95)\n"\
    "  --k N                k-regular: opponents per image; top-k: how many best/worst\n"    \
    "  --seed N             seed for orders and simulated noise (default 1)\n"              \
    "  --max-attempts N     attempts per match for retryable failures (default 3)\n"        \
    "  --lease-ms N         re-dispatch a match not answered within N ms (default 60000)\n" \
    "  --window N           planned matches held in memory (default 65536)\n"               \
    "  --job-matches N      matches per JOB message (default 64)\n"                         \
    "  --duplicate-ids P    a manifest line whose id an earlier image has: error (default;\n"\
    "                       the line is skipped and listed in bad_lines.jsonl under --out)\n"\
    "                       | warn (kept under a generated id #N)\n"                      \
    "  --max-failed N|P%    failed matches that still exit 0 (default 0: any failure\n"    \
    "                       exits 1, after the scores are written)\n"                     \
    "  --retry-failed       judge a finished run's failed matches again, once\n"

#define OPENAI_OPTIONS                                                                       \
    "openai judge (a VLM behind an OpenAI-compatible server; see docs/judges.md):\n"         \
    "  --endpoint URL       base URL, e.g. http://127.0.0.1:8000/v1 (repeatable; load is\n"  \
    "                       spread, a failing endpoint is set aside and retried later)\n"   \
    "  --model NAME         model name in requests\n"                                      \
    "                       (default alexgambashidze/qwen2.5vl_image_preference_reasoner)\n" \
    "  --mode MODE          reason (think, then answer; default) | direct (one token)\n"    \
    "  --template FILE      prompt template ([system]/[user]/[assistant], {prompt},\n"     \
    "                       {image1}, {image2}); default: the mode's built-in one\n"       \
    "  --temperature X      sampling temperature (default 0)\n"                            \
    "  --max-tokens N       reply length cap (default reason 1024, direct 1)\n"            \
    "  --top-logprobs N     alternatives per token for the soft reward (default 10)\n"     \
    "  --inflight N         HTTP requests in flight per worker (default 64; --slots\n"     \
    "                       defaults to twice this)\n"                                     \
    "  --request-timeout-ms N  per request (default 120000)\n"                             \
    "  --max-retries N      retries of 429, 5xx, timeouts per match (default 5)\n"         \
    "  --unparseable-retries N  re-asks after a reply without an answer (default 2)\n"     \
    "  --no-hard-fallback   a reply without logprobs is unparseable, not a hard 0/1\n"     \
    "  --wait-ready SECONDS  a worker waits this long for an endpoint to answer\n"       \
    "                       (GET /models listing the model) before asking for work\n"   \
    "                       (default 600; 0: do not wait)\n"                            \
    "  --api-key-env NAME   environment variable with the API key (default OPENAI_API_KEY)\n" \
    "  --judge-stats FILE   write the judge's statistics (JSON) there at the end\n"

#define JUDGE_OPTIONS                                                                        \
    "  --slots N            matches a worker holds at once (default 32)\n"                  \
    "  --sim-noise X        sim judge: logit noise sd (default 0)\n"                        \
    "  --sim-bias X         sim judge: first-position bias in logits (default 0)\n"         \
    "  --sim-temperature X  sim judge: p = sigmoid((u1-u2)/X) (default 1)\n"                \
    "  --sim-latency-ms N   sim judge: answer each match N ms after it arrives (default 0)\n"\
    "  --max-pixels N       image budget for image-reading judges (default 401408)\n"       \
    "  --image-root DIR     resolve relative image paths under DIR\n"                      \
    "  --allow-root DIR     read only images whose real path is inside DIR (repeatable;\n" \
    "                       default with a manifest: its folder); others fail with\n"     \
    "                       \"outside the allowed roots\"\n"                              \
    "  --allow-any-path     no confinement: read images wherever they are\n"               \
    "  --s3-endpoint URL    S3-compatible store for s3:// images, path-style (default:\n"  \
    "                       AWS_ENDPOINT_URL, else AWS); credentials: AWS_* variables\n" \
    "                       or ~/.aws/credentials\n"                                     \
    "  --fetch-cache DIR    on-disk cache of remote images (default\n"                   \
    "                       ~/.cache/joust/fetch; none: off)\n"                          \
    "  --fetch-cache-mb N   its size cap (default 2048)\n"                              \
    "  --check-remote       ingest: a HEAD request per remote image; a 404/403 is a\n"   \
    "                       bad line (nothing is downloaded)\n" OPENAI_OPTIONS

/* run and coordinator: the pipeline on the store, as an exit status
 * (130 when interrupted). */
static int run_on_store(const cli_opts *o, const char *manifest)
{
    cli_install_signals();
    joust_store_t *st;
    if (cli_open_store(o->db, 1, &st) < 0)
        return 1;
    int rc = cli_pipeline(o, manifest, st);
    joust_store_destroy(&st);
    return rc == 0 ? 0 : rc == 130 ? 130 : 1;
}

int cmd_run(int argc, char **argv)
{
    cli_opts o;
    int code;
    if (!cli_begin(argc, argv,
                   "usage: joust run MANIFEST [options]\n"
                      "Ingests MANIFEST (JSONL: image, prompt, prompt_id, model, id, ...), starts a\n"
                      "coordinator and local workers, judges every planned pair, fits soft\n"
                      "Bradley-Terry scores per prompt and writes scores.jsonl and scores.csv.\n\n"
                      "  --out DIR            where to write the scores (default .)\n"
                      "  --workers N          local worker processes (default 2)\n"
                      "  --no-progress        no progress line\n" RUN_OPTIONS JUDGE_OPTIONS,
                   1, 1, &o, &code))
        return code;
    if (o.workers < 1) {
        fprintf(stderr, "joust run: --workers must be >= 1\n");
        return 2;
    }
    if (o.curve_secret || o.curve_allow || o.server_key) {
        fprintf(stderr, "joust run: its workers are local (loopback); CURVE options belong to\n"
                        "`joust coordinator` and `joust worker`\n");
        return 2;
    }
    if (cli_image_roots(&o, o.argv[0]) < 0)
        return 2;
    return run_on_store(&o, o.argv[0]);
}

int cmd_coordinator(int argc, char **argv)
{
    cli_opts o;
    int code;
    if (!cli_begin(argc, argv,
                   "usage: joust coordinator [MANIFEST] [options]\n"
                      "Serves a run to workers started elsewhere (`joust worker --connect`),\n"
                      "ingesting MANIFEST first when given. When every match has an outcome it\n"
                      "fits the scores and writes scores.jsonl/.csv under --out.\n\n"
                      "  --bind ENDPOINT      where workers connect (default tcp://127.0.0.1:5555)\n"
                      "  --out DIR            where to write the scores (default .)\n"
                      "  --curve-secret FILE  CURVE: this coordinator's secret key (joust keygen)\n"
                      "  --allow FILE         CURVE: allow-list, lines \"name public-key\"; only\n"
                      "                       these workers get in, named by their key\n" RUN_OPTIONS,
                   0, 1, &o, &code))
        return code;
    o.workers = 0;
    if (cli_check_keys(&o) < 0 || (o.argc && cli_image_roots(&o, o.argv[0]) < 0))
        return 2;
    return run_on_store(&o, o.argc ? o.argv[0] : NULL);
}

int cmd_worker(int argc, char **argv)
{
    cli_opts o;
    int code;
    if (!cli_begin(argc, argv,
                   "usage: joust worker --connect ENDPOINT [options]\n"
                      "Judges matches for a coordinator; exits when the run is complete.\n\n"
                      "  --connect ENDPOINT   the coordinator, e.g. tcp://10.0.0.5:5555\n"
                      "  --judge NAME         quality (default) | openai | sim\n"
                      "  --name NAME          worker name in logs (default w-HOST-PID)\n"
                      "  --seed N             sim judge noise seed (use the run's seed)\n"
                      "  --curve-secret FILE  CURVE: this worker's secret key (joust keygen)\n"
                      "  --server-key KEY     CURVE: the coordinator's public key: a .pub file, or the\n"
                      "                       Z85 key itself when no file has that name\n" JUDGE_OPTIONS,
                   0, 0, &o, &code))
        return code;
    if (!o.connect) {
        fprintf(stderr, "joust worker: --connect ENDPOINT is required (see --help)\n");
        return 2;
    }
    if (cli_check_keys(&o) < 0 || cli_image_roots(&o, NULL) < 0)
        return 2;
    cli_install_signals();
    joust_worker_config wc;
    joust_worker_config_defaults(&wc);
    wc.endpoint = o.connect;
    wc.name = o.name;
    wc.judge = o.judge;
    wc.judge_cfg = o.jcfg;
    wc.slots = o.slots;
    wc.stop = &cli_stop;
    wc.curve_secret = o.curve_secret;
    wc.server_key = o.server_key;
    if (o.wait_ready_s >= 0)
        wc.wait_ready_ms = o.wait_ready_s * 1000;
    char tag[64];
    snprintf(tag, sizeof tag, "%s", o.name ? o.name : "worker");
    joust_log_set_tag(tag);
    int rc = joust_worker_run(&wc);
    return rc == 0 ? 0 : 1;
}

/* ----------------------------------------------------------------- demo -- */

typedef struct {
    double tau_sum, top1, bottom1;
    int prompts;
} demo_eval;

static int eval_prompt(const joust_scored_prompt *sp, void *arg)
{
    demo_eval *e = arg;
    size_t n = 0;
    double *score = xmalloc((sp->n ? sp->n : 1) * sizeof *score);
    double *truth = xmalloc((sp->n ? sp->n : 1) * sizeof *truth);
    for (size_t i = 0; i < sp->n; i++) {
        const joust_scored_image *it = &sp->items[i];
        cJSON *meta = it->img->meta_json ? cJSON_Parse(it->img->meta_json) : NULL;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(meta, "truth");
        if (cJSON_IsNumber(t) && it->score && it->score->has_score) {
            score[n] = it->score->score;
            truth[n++] = t->valuedouble;
        }
        cJSON_Delete(meta);
    }
    if (n >= 2) {
        e->tau_sum += joust_kendall_tau(n, score, truth);
        e->top1 += joust_top1_match(n, score, truth);
        e->bottom1 += joust_bottom1_match(n, score, truth);
        e->prompts++;
    }
    free(score);
    free(truth);
    return 0;
}

int cmd_demo(int argc, char **argv)
{
    cli_opts o;
    int code;
    if (!cli_begin(argc, argv,
                   "usage: joust demo [--out DIR] [--prompts N] [--per-prompt K] [options]\n"
                      "Generates N base images (default 24) with K graded degradations each\n"
                      "(default 8: blur, noise, JPEG artefacts, exposure), so the true quality\n"
                      "order per prompt is known; ranks them with the quality judge and prints\n"
                      "Kendall tau against that truth. Writes into DIR (default joust-demo).\n\n"
                      "  --workers N          local worker processes (default 2)\n" JUDGE_OPTIONS,
                   0, 0, &o, &code))
        return code;
    int prompts = o.prompts ? o.prompts : 24, per_prompt = o.per_prompt ? o.per_prompt : 8;
    if (prompts < 1 || per_prompt < 2 || prompts > 10000 || per_prompt > 64) {
        fprintf(stderr, "joust demo: prompts must be 1..10000 and per-prompt 2..64\n");
        return 2;
    }
    cli_install_signals();
    char dir[PATH_MAX - 64], db[PATH_MAX], manifest[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", strcmp(o.out, ".") ? o.out : "joust-demo");
    snprintf(db, sizeof db, "%s/joust.db", dir);
    snprintf(manifest, sizeof manifest, "%s/manifest.jsonl", dir);
    printf("generating %d prompts x %d images with graded degradations in %s ...\n", prompts,
           per_prompt, dir);
    int rc = joust_demo_generate(dir, prompts, per_prompt, o.seed, manifest);
    if (rc < 0) {
        log_error("cannot generate the demo set in %s: %s", dir, joust_strerror(rc));
        return 1;
    }
    o.db = db;
    o.out = dir;
    joust_store_t *st;
    if (cli_image_roots(&o, manifest) < 0 || cli_open_store(o.db, 1, &st) < 0)
        return 1;
    rc = cli_pipeline(&o, manifest, st);
    Joust__RunRecord *run = NULL;
    demo_eval e = {0};
    if (rc == 0 && (rc = joust_run_open(st, o.run, NULL, &run)) == 0)
        rc = joust_scores_walk(st, run, eval_prompt, &e);
    if (rc == 0 && e.prompts) {
        printf("\nagainst the known quality order (%d prompts):\n", e.prompts);
        printf("  Kendall tau (mean per prompt): %.3f\n", e.tau_sum / e.prompts);
        printf("  best image found:  %.1f%%   worst image found: %.1f%%\n",
               100.0 * e.top1 / e.prompts, 100.0 * e.bottom1 / e.prompts);
    }
    joust_rec_free(run);
    joust_store_destroy(&st);
    return rc == 0 ? 0 : 1;
}
