/* Option parsing, signals and the run pipeline shared by the subcommands. */
#include "cli.h"
#include "fetch.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "curve.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "records.h"
#include "run.h"

extern char **environ;
volatile sig_atomic_t cli_stop;

static void on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

void cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

enum {
    O_DB = 256, O_OUT, O_RUN, O_JUDGE, O_ORDER, O_STRATEGY, O_SEED, O_WORKERS, O_SLOTS, O_BIND,
    O_CONNECT, O_NAME, O_MAX_ATTEMPTS, O_LEASE, O_WINDOW, O_JOB_MATCHES, O_SIM_NOISE, O_SIM_BIAS,
    O_SIM_T, O_MAX_PIXELS, O_IMAGE_ROOT, O_TOP, O_MIN_MARGIN, O_NO_PROGRESS, O_PROMPTS,
    O_PER_PROMPT, O_IMAGES, O_SIM_LATENCY, O_CURVE_SECRET, O_ALLOW, O_SERVER_KEY, O_ALLOW_ROOT, O_ALLOW_ANY_PATH,
    O_ENDPOINT, O_MODEL, O_MODE, O_TEMPLATE, O_TEMPERATURE, O_MAX_TOKENS, O_TOP_LOGPROBS,
    O_INFLIGHT, O_REQ_TIMEOUT, O_API_KEY_ENV, O_MAX_RETRIES, O_UNPARSEABLE_RETRIES,
    O_NO_HARD_FALLBACK, O_JUDGE_STATS, O_WAIT_READY, O_BUDGET, O_BUDGET_CALLS, O_CONFIDENCE, O_K, O_DUP_IDS,
    O_MAX_FAILED, O_RETRY_FAILED, O_S3_ENDPOINT, O_FETCH_CACHE, O_FETCH_CACHE_MB, O_CHECK_REMOTE, O_DEVICE, O_HARD_WEIGHT, O_MIN_KIND, O_HELP
};

static const struct option long_opts[] = {
    {"db", required_argument, 0, O_DB},
    {"out", required_argument, 0, O_OUT},
    {"run", required_argument, 0, O_RUN},
    {"judge", required_argument, 0, O_JUDGE},
    {"order", required_argument, 0, O_ORDER},
    {"strategy", required_argument, 0, O_STRATEGY},
    {"seed", required_argument, 0, O_SEED},
    {"workers", required_argument, 0, O_WORKERS},
    {"slots", required_argument, 0, O_SLOTS},
    {"bind", required_argument, 0, O_BIND},
    {"connect", required_argument, 0, O_CONNECT},
    {"name", required_argument, 0, O_NAME},
    {"max-attempts", required_argument, 0, O_MAX_ATTEMPTS},
    {"lease-ms", required_argument, 0, O_LEASE},
    {"window", required_argument, 0, O_WINDOW},
    {"job-matches", required_argument, 0, O_JOB_MATCHES},
    {"sim-noise", required_argument, 0, O_SIM_NOISE},
    {"sim-bias", required_argument, 0, O_SIM_BIAS},
    {"sim-temperature", required_argument, 0, O_SIM_T},
    {"max-pixels", required_argument, 0, O_MAX_PIXELS},
    {"image-root", required_argument, 0, O_IMAGE_ROOT},
    {"s3-endpoint", required_argument, 0, O_S3_ENDPOINT},
    {"fetch-cache", required_argument, 0, O_FETCH_CACHE},
    {"fetch-cache-mb", required_argument, 0, O_FETCH_CACHE_MB},
    {"check-remote", no_argument, 0, O_CHECK_REMOTE},
    {"top", required_argument, 0, O_TOP},
    {"min-margin", required_argument, 0, O_MIN_MARGIN},
    {"no-progress", no_argument, 0, O_NO_PROGRESS},
    {"prompts", required_argument, 0, O_PROMPTS},
    {"per-prompt", required_argument, 0, O_PER_PROMPT},
    {"images", required_argument, 0, O_IMAGES},
    {"sim-latency-ms", required_argument, 0, O_SIM_LATENCY},
    {"curve-secret", required_argument, 0, O_CURVE_SECRET},
    {"allow", required_argument, 0, O_ALLOW},
    {"server-key", required_argument, 0, O_SERVER_KEY},
    {"allow-root", required_argument, 0, O_ALLOW_ROOT},
    {"allow-any-path", no_argument, 0, O_ALLOW_ANY_PATH},
    {"endpoint", required_argument, 0, O_ENDPOINT},
    {"model", required_argument, 0, O_MODEL},
    {"mode", required_argument, 0, O_MODE},
    {"template", required_argument, 0, O_TEMPLATE},
    {"temperature", required_argument, 0, O_TEMPERATURE},
    {"max-tokens", required_argument, 0, O_MAX_TOKENS},
    {"top-logprobs", required_argument, 0, O_TOP_LOGPROBS},
    {"inflight", required_argument, 0, O_INFLIGHT},
    {"request-timeout-ms", required_argument, 0, O_REQ_TIMEOUT},
    {"api-key-env", required_argument, 0, O_API_KEY_ENV},
    {"max-retries", required_argument, 0, O_MAX_RETRIES},
    {"unparseable-retries", required_argument, 0, O_UNPARSEABLE_RETRIES},
    {"no-hard-fallback", no_argument, 0, O_NO_HARD_FALLBACK},
    {"wait-ready", required_argument, 0, O_WAIT_READY},
    {"judge-stats", required_argument, 0, O_JUDGE_STATS},
    {"budget", required_argument, 0, O_BUDGET},
    {"budget-calls", required_argument, 0, O_BUDGET_CALLS},
    {"confidence", required_argument, 0, O_CONFIDENCE},
    {"k", required_argument, 0, O_K},
    {"duplicate-ids", required_argument, 0, O_DUP_IDS},
    {"max-failed", required_argument, 0, O_MAX_FAILED},
    {"retry-failed", no_argument, 0, O_RETRY_FAILED},
    {"device", required_argument, 0, O_DEVICE},
    {"hard-weight", required_argument, 0, O_HARD_WEIGHT},
    {"min-kind", required_argument, 0, O_MIN_KIND},
    {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0},
};

static const char *opt_name(int val)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == val)
            return o->name;
    return "";
}

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        fprintf(stderr, "joust: --%s: '%s' is not an integer in 0..%" PRIu64 "\n", opt, s, max);
        return JOUST_EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "joust: --%s: '%s' is not a number\n", opt, s);
        return JOUST_EINVAL;
    }
    *out = v;
    return 0;
}

int cli_parse(int argc, char **argv, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->db = "joust.db";
    o->out = ".";
    o->run = "default";
    o->judge = "quality";
    o->order = "both";
    o->strategy = "round-robin";
    o->bind = "tcp://127.0.0.1:5555";
    o->seed = 1;
    o->workers = 2;
    o->slots = 32;
    o->top = 3;
    o->progress = isatty(2);
    o->max_attempts = 3;
    o->lease_ms = 60000;
    o->wait_ready_s = -1;
    joust_coord_config cc;
    joust_coord_config_defaults(&cc);
    o->window = cc.window;
    o->job_matches = cc.job_matches;
    joust_judge_config_defaults(&o->jcfg);
    joust_score_opts_defaults(&o->score);
    optind = 1;
    opterr = 1;
    int c, rc = 0, slots_given = 0;
    uint64_t v = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        const char *name = opt_name(c);
        switch (c) {
        case O_DB: o->db = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_RUN: o->run = optarg; break;
        case O_JUDGE: o->judge = optarg; break;
        case O_ORDER: o->order = optarg; break;
        case O_STRATEGY: o->strategy = optarg; break;
        case O_BIND: o->bind = optarg; break;
        case O_CONNECT: o->connect = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_IMAGE_ROOT: o->jcfg.image_root = optarg; break;
        case O_S3_ENDPOINT: o->jcfg.s3_endpoint = optarg; break;
        case O_FETCH_CACHE: o->jcfg.fetch_cache_dir = optarg; break;
        case O_FETCH_CACHE_MB: rc = parse_u64(name, optarg, 1u << 24, &v); o->jcfg.fetch_cache_mb = (size_t)v; break;
        case O_CHECK_REMOTE: o->check_remote = 1; break;
        case O_SEED: rc = parse_u64(name, optarg, UINT64_MAX, &o->seed); break;
        case O_WORKERS: rc = parse_u64(name, optarg, 256, &v); o->workers = (int)v; break;
        case O_SLOTS: rc = parse_u64(name, optarg, 65536, &v); o->slots = (int)v; slots_given = 1; break;
        case O_MAX_ATTEMPTS: rc = parse_u64(name, optarg, 1000, &v); o->max_attempts = (uint32_t)v; break;
        case O_LEASE: rc = parse_u64(name, optarg, 86400000, &v); o->lease_ms = (uint32_t)v; break;
        case O_WINDOW: rc = parse_u64(name, optarg, 1u << 30, &v); o->window = (uint32_t)v; break;
        case O_JOB_MATCHES: rc = parse_u64(name, optarg, 1024, &v); o->job_matches = (uint32_t)v; break;
        case O_TOP: rc = parse_u64(name, optarg, 1000, &v); o->top = (int)v; break;
        case O_MAX_PIXELS: rc = parse_u64(name, optarg, 1ull << 32, &v); o->jcfg.max_pixels = (long long)v; break;
        case O_SIM_NOISE: rc = parse_double(name, optarg, &o->jcfg.sim_noise); break;
        case O_SIM_BIAS: rc = parse_double(name, optarg, &o->jcfg.sim_bias); break;
        case O_SIM_T: rc = parse_double(name, optarg, &o->jcfg.sim_temperature); break;
        case O_MIN_MARGIN: rc = parse_double(name, optarg, &o->min_margin); break;
        case O_NO_PROGRESS: o->progress = 0; break;
        case O_BUDGET: rc = parse_double(name, optarg, &o->budget_per_image); break;
        case O_BUDGET_CALLS: rc = parse_u64(name, optarg, UINT64_MAX, &o->budget_calls); break;
        case O_CONFIDENCE: rc = parse_double(name, optarg, &o->confidence); break;
        case O_K: rc = parse_u64(name, optarg, 4096, &v); o->k = (uint32_t)v; break;
        case O_MAX_FAILED:
            if ((rc = joust_max_failed_parse(optarg, &o->max_failed)) < 0)
                fprintf(stderr, "joust: --max-failed: '%s' is not a count N or a percentage P%%\n", optarg);
            break;
        case O_RETRY_FAILED: o->retry_failed = 1; break;
        case O_PROMPTS: rc = parse_u64(name, optarg, 1000000, &v); o->prompts = (int)v; break;
        case O_PER_PROMPT: rc = parse_u64(name, optarg, 4096, &v); o->per_prompt = (int)v; break;
        case O_SIM_LATENCY: rc = parse_u64(name, optarg, 600000, &v); o->jcfg.sim_latency_ms = (int)v; break;
        case O_IMAGES: rc = parse_u64(name, optarg, 1ull << 40, &o->images); break;
        case O_CURVE_SECRET: o->curve_secret = optarg; break;
        case O_ALLOW: o->curve_allow = optarg; break;
        case O_SERVER_KEY: o->server_key = optarg; break;
        case O_ALLOW_ROOT:
            if (o->n_allow_roots >= CLI_MAX_ALLOW_ROOTS) {
                fprintf(stderr, "joust: at most %d --allow-root options\n", CLI_MAX_ALLOW_ROOTS);
                rc = JOUST_EINVAL;
            } else {
                o->allow_roots[o->n_allow_roots++] = optarg;
            }
            break;
        case O_ALLOW_ANY_PATH: o->allow_any_path = 1; break;
        case O_ENDPOINT:
            if (o->jcfg.n_endpoints >= JOUST_JUDGE_MAX_ENDPOINTS) {
                fprintf(stderr, "joust: at most %d --endpoint options\n", JOUST_JUDGE_MAX_ENDPOINTS);
                rc = JOUST_EINVAL;
            } else {
                o->jcfg.endpoints[o->jcfg.n_endpoints++] = optarg;
            }
            break;
        case O_MODEL: o->jcfg.model = optarg; break;
        case O_MODE:
            o->jcfg.mode = optarg;
            if (strcmp(optarg, "reason") && strcmp(optarg, "direct")) {
                fprintf(stderr, "joust: --mode: '%s' is not reason or direct\n", optarg);
                rc = JOUST_EINVAL;
            }
            break;
        case O_TEMPLATE: o->jcfg.template_path = optarg; break;
        case O_TEMPERATURE: rc = parse_double(name, optarg, &o->jcfg.temperature); break;
        case O_MAX_TOKENS: rc = parse_u64(name, optarg, 1 << 20, &v); o->jcfg.max_tokens = (int)v; break;
        case O_TOP_LOGPROBS: rc = parse_u64(name, optarg, 1000, &v); o->jcfg.top_logprobs = (int)v; break;
        case O_INFLIGHT: rc = parse_u64(name, optarg, 4096, &v); o->jcfg.inflight = (int)v; break;
        case O_REQ_TIMEOUT: rc = parse_u64(name, optarg, 86400000, &v); o->jcfg.timeout_ms = (int)v; break;
        case O_API_KEY_ENV: o->jcfg.api_key_env = optarg; break;
        case O_MAX_RETRIES: rc = parse_u64(name, optarg, 1000, &v); o->jcfg.max_retries = (int)v; break;
        case O_UNPARSEABLE_RETRIES: rc = parse_u64(name, optarg, 1000, &v); o->jcfg.max_unparseable = (int)v; break;
        case O_NO_HARD_FALLBACK: o->jcfg.hard_fallback = 0; break;
        case O_WAIT_READY: rc = parse_u64(name, optarg, 86400, &v); o->wait_ready_s = (int)v; break;
        case O_JUDGE_STATS: o->jcfg.stats_path = optarg; break;
        case O_DUP_IDS:
            o->duplicate_ids = !strcmp(optarg, "warn") ? JOUST_DUP_IDS_WARN : JOUST_DUP_IDS_ERROR;
            if (strcmp(optarg, "warn") && strcmp(optarg, "error")) {
                fprintf(stderr, "joust: --duplicate-ids: '%s' is not error or warn\n", optarg);
                rc = JOUST_EINVAL;
            }
            break;
        case O_DEVICE:
            if ((rc = joust_device_parse(optarg, &o->score.device)) < 0)
                fprintf(stderr, "joust: --device: '%s' is not auto, cpu or cuda\n", optarg);
            break;
        case O_HARD_WEIGHT:
            if ((rc = parse_double(name, optarg, &o->score.hard_weight)) == 0 &&
                !(o->score.hard_weight >= 0 && isfinite(o->score.hard_weight))) {
                fprintf(stderr, "joust: --hard-weight must be a number >= 0\n");
                rc = JOUST_EINVAL;
            }
            break;
        case O_MIN_KIND:
            if ((rc = joust_kind_parse(optarg, &o->min_kind)) < 0)
                fprintf(stderr, "joust: --min-kind: '%s' is not soft, bounded or hard\n", optarg);
            break;
        case 'h':
        case O_HELP: o->help = 1; break;
        default: rc = JOUST_EINVAL; break; /* getopt printed why */
        }
    }
    if (rc == 0 && (o->jcfg.inflight < 1 || o->jcfg.timeout_ms < 1)) {
        fprintf(stderr, "joust: --inflight and --request-timeout-ms must be >= 1\n");
        rc = JOUST_EINVAL;
    }
    /* The openai judge keeps --inflight requests at the server and as many
     * matches queued behind them, so that the server never waits for us. */
    if (!slots_given && !strcmp(o->judge, "openai"))
        o->slots = 2 * o->jcfg.inflight;
    if (rc == 0 && (o->slots < 1 || o->max_attempts < 1 || o->lease_ms < 100 || o->window < 1)) {
        fprintf(stderr, "joust: --slots, --max-attempts and --window must be >= 1, --lease-ms >= 100\n");
        rc = JOUST_EINVAL;
    }
    o->jcfg.seed = o->seed;
    o->jcfg.allow_roots = o->allow_roots;
    o->jcfg.n_allow_roots = (size_t)o->n_allow_roots;
    o->argc = argc - optind;
    o->argv = argv + optind;
    return rc;
}

int cli_begin(int argc, char **argv, const char *usage, int min_args, int max_args, cli_opts *o,
              int *exit_code)
{
    *exit_code = 2;
    if (cli_parse(argc, argv, o) < 0)
        return 0;
    if (o->help) {
        fputs(usage, stdout);
        *exit_code = 0;
        return 0;
    }
    if (o->argc < min_args || o->argc > max_args) {
        /* the usage line only, not the whole help */
        fprintf(stderr, "%.*s (see --help)\n", (int)(strchr(usage, '\n') - usage), usage);
        return 0;
    }
    return 1;
}

int cli_check_keys(const cli_opts *o)
{
    char err[PATH_MAX + 128];
    int rc = 0;
    if (o->curve_secret) {
        joust_curve_keypair kp;
        if ((rc = joust_curve_read_secret(o->curve_secret, &kp, err, sizeof err)) < 0)
            fprintf(stderr, "joust: --curve-secret: %s\n", err);
        joust_curve_wipe(&kp, sizeof kp);
    }
    if (rc == 0 && o->server_key) {
        char pub[JOUST_CURVE_Z85_LEN + 1];
        if ((rc = joust_curve_read_public(o->server_key, pub, err, sizeof err)) < 0)
            fprintf(stderr, "joust: --server-key: %s\n", err);
    }
    if (rc == 0 && o->curve_allow) {
        joust_curve_allow_t *allow = NULL;
        if ((rc = joust_curve_allow_load(o->curve_allow, &allow, err, sizeof err)) < 0)
            fprintf(stderr, "joust: --allow: %s\n", err);
        joust_curve_allow_destroy(&allow);
    }
    return rc;
}

int cli_open_store(const char *path, int create, joust_store_t **st)
{
    int rc = joust_store_open(path, create, st);
    if (rc == JOUST_ENOTFOUND)
        log_error("no joust store at %s (run `joust run MANIFEST --db %s` first)", path, path);
    else if (rc < 0)
        log_error("cannot open the store at %s: %s", path, joust_strerror(rc));
    return rc;
}

/* ------------------------------------------------------- local workers --- */

typedef struct {
    const cli_opts *o;
    pid_t pids[256];
    int n;
    uint64_t seed;
    char stats_dir[64];  /* openai: where local workers leave their statistics */
} local_workers;

static void spawn_workers(const char *endpoint, void *arg)
{
    local_workers *lw = arg;
    const cli_opts *o = lw->o;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        log_error("cannot find my own executable to start workers");
        return;
    }
    exe[len] = '\0';
    char slots[16], seed[24], noise[32], bias[32], temp[32], pixels[24], name[32], lat[16];
    snprintf(slots, sizeof slots, "%d", o->slots);
    snprintf(seed, sizeof seed, "%" PRIu64, lw->seed);
    snprintf(noise, sizeof noise, "%.17g", o->jcfg.sim_noise);
    snprintf(bias, sizeof bias, "%.17g", o->jcfg.sim_bias);
    snprintf(temp, sizeof temp, "%.17g", o->jcfg.sim_temperature);
    snprintf(pixels, sizeof pixels, "%lld", o->jcfg.max_pixels);
    snprintf(lat, sizeof lat, "%d", o->jcfg.sim_latency_ms);
    if (!getenv("JOUST_LOG"))
        setenv("JOUST_LOG", "warn", 1); /* keep the progress line readable */
    for (int i = 0; i < o->workers; i++) {
        snprintf(name, sizeof name, "local-%d", i + 1);
        char *args[112] = {exe, "worker", "--connect", (char *)endpoint, "--judge", (char *)o->judge,
                          "--slots", slots, "--seed", seed, "--sim-noise", noise, "--sim-bias", bias,
                          "--sim-temperature", temp, "--max-pixels", pixels, "--name", name,
                          "--sim-latency-ms", lat};
        int k = 22;
        if (o->jcfg.image_root) {
            args[k++] = "--image-root";
            args[k++] = (char *)o->jcfg.image_root;
        }
        for (int r = 0; r < o->n_allow_roots && k + 2 < (int)(sizeof args / sizeof *args); r++) {
            args[k++] = "--allow-root";
            args[k++] = (char *)o->allow_roots[r];
        }
        if (o->allow_any_path)
            args[k++] = "--allow-any-path";
        char cache_mb[24];
        snprintf(cache_mb, sizeof cache_mb, "%zu", o->jcfg.fetch_cache_mb);
        const char *fetch_args[3][2] = {{"--s3-endpoint", o->jcfg.s3_endpoint},
                                        {"--fetch-cache", o->jcfg.fetch_cache_dir},
                                        {"--fetch-cache-mb", o->jcfg.fetch_cache_mb ? cache_mb : NULL}};
        for (int f = 0; f < 3 && k + 2 < (int)(sizeof args / sizeof *args); f++)
            if (fetch_args[f][1]) {
                args[k++] = (char *)fetch_args[f][0];
                args[k++] = (char *)fetch_args[f][1];
            }
        if (o->local_curve_secret && k + 4 < (int)(sizeof args / sizeof *args)) {
            args[k++] = "--curve-secret";
            args[k++] = (char *)o->local_curve_secret;
            args[k++] = "--server-key";
            args[k++] = (char *)o->server_key;
        }
        cli_openai_args oa;
        if (!strcmp(o->judge, "openai"))
            k = cli_openai_worker_args(o, lw->stats_dir, i, &oa, args, k,
                                       (int)(sizeof args / sizeof *args));
        args[k] = NULL;
        /* posix_spawn execs at once: the child never touches our ZeroMQ
         * context, which must not be used across fork. */
        int err = posix_spawn(&lw->pids[lw->n], exe, NULL, NULL, args, environ);
        if (err)
            log_error("cannot start worker %d: %s", i + 1, strerror(err));
        else
            lw->n++;
    }
}

static void reap_workers(local_workers *lw)
{
    int64_t deadline = joust_now_ms() + 3000;
    int left = lw->n;
    while (left > 0) {
        for (int i = 0; i < lw->n; i++)
            if (lw->pids[i] > 0 && waitpid(lw->pids[i], NULL, WNOHANG) == lw->pids[i]) {
                lw->pids[i] = 0;
                left--;
            }
        if (left == 0)
            break;
        if (joust_now_ms() > deadline || cli_stop) {
            for (int i = 0; i < lw->n; i++)
                if (lw->pids[i] > 0) {
                    kill(lw->pids[i], SIGTERM);
                    waitpid(lw->pids[i], NULL, 0);
                    lw->pids[i] = 0;
                }
            break;
        }
        usleep(20000);
    }
}

/* ------------------------------------------------------------ pipeline --- */

int cli_write_scores(joust_store_t *st, const char *run_name, const char *out_dir,
                     const joust_score_opts *so, joust_score_summary *sum, int quiet)
{
    Joust__RunRecord *run;
    int rc = joust_run_open(st, run_name, NULL, &run);
    if (rc < 0) {
        log_error("run '%s': %s", run_name, joust_strerror(rc));
        return rc;
    }
    if ((rc = joust_scores_compute(st, run, so, sum)) == 0)
        rc = joust_output_scores(st, run, sum, out_dir, quiet ? NULL : stdout);
    joust_score_summary_clear(sum); /* callers use the counts only */
    if (rc < 0)
        log_error("run '%s': scoring failed: %s", run->name, joust_strerror(rc));
    joust_rec_free(run);
    return rc;
}

int cli_image_roots(cli_opts *o, const char *manifest)
{
    if (o->allow_any_path && o->n_allow_roots) {
        fprintf(stderr, "joust: --allow-root and --allow-any-path exclude each other\n");
        return JOUST_EINVAL;
    }
    if (o->allow_any_path || o->n_allow_roots)
        return 0;
    if (!manifest) {
        if (strcmp(o->judge, "sim") == 0)
            return 0; /* reads no image */
        fprintf(stderr, "joust: the %s judge reads images: give --allow-root DIR (the folder they "
                        "are in; repeatable) or --allow-any-path\n", o->judge);
        return JOUST_EINVAL;
    }
    char copy[sizeof o->manifest_root];
    snprintf(copy, sizeof copy, "%s", manifest);
    if (!realpath(dirname(copy), o->manifest_root)) {
        fprintf(stderr, "joust: %s: %s\n", manifest, strerror(errno));
        return JOUST_EINVAL;
    }
    o->allow_roots[o->n_allow_roots++] = o->manifest_root;
    o->jcfg.n_allow_roots = (size_t)o->n_allow_roots;
    return 0;
}

/* --check-remote: a HEAD request per remote image, never a download. */
static int head_remote(void *ctx, const char *uri, char *err, size_t errlen)
{
    size_t len;
    return joust_fetch_head(ctx, uri, &len, err, errlen);
}

int cli_ingest(const cli_opts *o, joust_store_t *st, const char *manifest)
{
    joust_ingest_opts io;
    joust_ingest_opts_defaults(&io);
    joust_fetch_config fc = {.s3_endpoint = o->jcfg.s3_endpoint, .cache_dir = "none"};
    joust_fetch_t *fetch = o->check_remote ? joust_fetch_new(&fc) : NULL;
    io.check_remote = fetch ? head_remote : NULL;
    io.check_remote_ctx = fetch;
    io.duplicate_ids = (joust_dup_ids)o->duplicate_ids;
    io.allow_roots = o->allow_roots;
    io.n_allow_roots = (size_t)o->n_allow_roots;
    io.allow_any_path = o->allow_any_path;
    char bad[PATH_MAX];
    snprintf(bad, sizeof bad, "%s/bad_lines.jsonl", o->out);
    io.bad_lines_path = bad;
    mkdir(o->out, 0755);
    joust_ingest_stats is;
    int rc = joust_ingest_with(st, manifest, &io, &is);
    joust_fetch_destroy(&fetch);
    if (rc < 0) {
        log_error("cannot ingest %s: %s", manifest, joust_strerror(rc));
        return rc;
    }
    if (!is.already_ingested)
        printf("ingested %s: %" PRIu64 " images in %" PRIu64 " new prompts; %" PRIu64
               " bad lines%s%s%s, %" PRIu64 " duplicate ids renamed, %" PRIu64
               " duplicates, %" PRIu64 " missing files\n",
               manifest, is.images, is.prompts, is.errors, is.errors ? " (all in " : "",
               is.errors ? bad : "", is.errors ? ")" : "", is.renamed_ids, is.duplicates,
               is.missing);
    uint64_t next_image;
    joust_rec_counter_get(st, JOUST_NEXT_IMAGE, &next_image);
    if (next_image == 1) {
        log_error("%s has no valid images: nothing to rank", manifest);
        return JOUST_EINVAL;
    }
    return 0;
}

int cli_coordinate(const cli_opts *o, joust_store_t *st, joust_coord_summary *cs)
{
    char opts[640];
    int on = snprintf(opts, sizeof opts, "sim_noise=%g sim_bias=%g sim_temperature=%g max_pixels=%lld",
                      o->jcfg.sim_noise, o->jcfg.sim_bias, o->jcfg.sim_temperature, o->jcfg.max_pixels);
    if (!strcmp(o->judge, "openai") && on > 0 && (size_t)on < sizeof opts)
        cli_openai_describe(o, opts + on, sizeof opts - (size_t)on);
    joust_run_spec spec = {o->strategy, o->judge, o->order, o->seed, o->max_attempts, o->lease_ms,
                           opts, o->budget_per_image, o->budget_calls, o->confidence, o->k};
    Joust__RunRecord *run;
    int rc = joust_run_open(st, o->run, &spec, &run);
    if (rc < 0)
        return rc;
    local_workers lw = {.o = o, .seed = run->seed};
    joust_rec_free(run);
    uint64_t again = 0;
    if (o->retry_failed && (rc = joust_coord_retry_failed(st, o->run, &again)) < 0) {
        log_error("run '%s': cannot re-plan its failed matches: %s", o->run, joust_strerror(rc));
        return rc;
    }
    if (o->retry_failed)
        printf("run '%s': %" PRIu64 " failed matches to judge again\n", o->run, again);
    joust_coord_config cc;
    joust_coord_config_defaults(&cc);
    cc.bind = o->workers ? "tcp://127.0.0.1:*" : o->bind;
    cc.window = o->window;
    cc.job_matches = o->job_matches;
    cc.progress = o->progress;
    cc.stop = &cli_stop;
    cc.drain_ms = o->workers ? 0 : cc.drain_ms; /* local workers are reaped instead */
    if (!o->workers || o->local_curve_secret) { /* local workers: loopback, no CURVE unless asked */
        cc.curve_secret = o->curve_secret;
        cc.curve_allow = o->curve_allow;
    }
    if (o->workers) {
        cc.on_bound = spawn_workers;
        cc.on_bound_arg = &lw;
        if (!strcmp(o->judge, "openai"))
            cli_openai_stats_dir(lw.stats_dir, sizeof lw.stats_dir);
    }
    rc = joust_coordinator_run(st, o->run, &cc, cs);
    reap_workers(&lw);
    int done = rc >= 0 && cs->complete;
    if (done)
        printf("judged %" PRIu64 " matches in %.1f s (%.0f/s): %" PRIu64 " ok, %" PRIu64
               " failed, %" PRIu64 " retried, %" PRIu64 " leases expired\n",
               cs->ok + cs->failed, cs->seconds,
               cs->seconds > 0 ? (double)(cs->ok + cs->failed) / cs->seconds : 0, cs->ok,
               cs->failed, cs->retried, cs->expired);
    if (done && (cs->drained || cs->forged || cs->infra_retries))
        printf("  %" PRIu64 " infrastructure errors sent back to the queue, %" PRIu64
               " workers drained (leases kept expiring), %" PRIu64
               " results dropped from peers that never held the lease\n",
               cs->infra_retries, cs->drained, cs->forged);
    if (lw.stats_dir[0]) /* the workers' judge statistics, after their exit */
        cli_openai_report(o, lw.stats_dir, lw.n, done);
    if (rc == JOUST_EJUDGE && cs->stopped[0])
        fprintf(stderr, "joust: run '%s' stopped: %s\n  fix the judge's configuration, then run the "
                        "same command again to resume\n", o->run, cs->stopped);
    if (rc < 0)
        return rc;
    if (!cs->complete) {
        log_warn("run '%s' stopped before completion: %" PRIu64 " of %" PRIu64
                 " planned matches have no outcome yet; run the same command again to resume",
                 o->run, cs->run.planned - cs->run.counts.ok - cs->run.counts.failed, cs->run.planned);
        return cli_stop ? 130 : JOUST_EAGAIN;
    }
    return 0;
}

/* A finished run with failed matches: says which classes on stderr, and
 * fails the command when there are more than --max-failed allows. */
static int failure_verdict(const cli_opts *o, const joust_coord_tally *t)
{
    uint64_t failed = joust_coord_tally_failed(t);
    if (!failed)
        return 0;
    int over = joust_max_failed_exceeded(&o->max_failed, t);
    fprintf(stderr, "joust: run '%s': %" PRIu64 " of %" PRIu64 " matches failed:\n", o->run, failed,
            t->planned);
    joust_coord_tally_print(t, stderr);
    fprintf(stderr, "  %s; the same command with --retry-failed judges exactly these again\n",
            over ? "more than --max-failed allows: exit status 1" : "within --max-failed");
    return over ? JOUST_EJUDGE : 0;
}

int cli_pipeline(const cli_opts *o, const char *manifest, joust_store_t *st)
{
    int rc = manifest ? cli_ingest(o, st, manifest) : 0;
    joust_coord_summary cs;
    if (rc == 0)
        rc = cli_coordinate(o, st, &cs);
    joust_score_summary ss;
    if (rc == 0)
        rc = cli_write_scores(st, o->run, o->out, &o->score, &ss, 0);
    return rc ? rc : failure_verdict(o, &cs.run);
}
