/* The judge registry (each judge's constructor and option table) and the
 * calls that dispatch through a judge's ops. */
#include "judge.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define CFG(f) offsetof(joust_judge_config, f)

const joust_opt joust_judge_image_opts[] = {
    {"max-pixels", JOUST_OPT_LL, CFG(max_pixels), .max = 1ull << 32, .dflt = "401408", .arg = "N",
     .help = "image budget for image-reading judges (default 401408:\n512 Qwen2.5-VL tokens of 28x28 px)"},
    {"image-root", JOUST_OPT_STR, CFG(image_root), .arg = "DIR",
     .help = "resolve relative image paths under DIR"},
    {"s3-endpoint", JOUST_OPT_STR, CFG(s3_endpoint), .arg = "URL",
     .help = "S3-compatible store for s3:// images, path-style (default:\n"
             "AWS_ENDPOINT_URL, else AWS); credentials: AWS_* variables\n"
             "or ~/.aws/credentials"},
    {"fetch-cache", JOUST_OPT_STR, CFG(fetch_cache_dir), .arg = "DIR",
     .help = "on-disk cache of remote images (default\n~/.cache/joust/fetch; none: off)"},
    {"fetch-cache-mb", JOUST_OPT_U64, CFG(fetch_cache_mb), .max = 1u << 24, .arg = "N",
     .help = "its size cap (default 2048)"},
};
const size_t joust_judge_n_image_opts = sizeof joust_judge_image_opts / sizeof *joust_judge_image_opts;

static const joust_opt sim_opts[] = {
    {"sim-noise", JOUST_OPT_DOUBLE, CFG(sim_noise), .min = 0, .max = HUGE_VAL, .dflt = "0", .arg = "X",
     .help = "sim judge: logit noise sd"},
    {"sim-bias", JOUST_OPT_DOUBLE, CFG(sim_bias), .dflt = "0", .arg = "X",
     .help = "sim judge: first-position bias in logits"},
    {"sim-temperature", JOUST_OPT_DOUBLE, CFG(sim_temperature), .min = 1e-9, .max = HUGE_VAL,
     .dflt = "1", .arg = "X", .help = "sim judge: p = sigmoid((u1-u2)/X)"},
    {"sim-latency-ms", JOUST_OPT_INT, CFG(sim_latency_ms), .max = 600000, .dflt = "0", .arg = "N",
     .help = "sim judge: answer each match N ms after it arrives"},
};

static const joust_opt openai_opts[] = {
    {"endpoint", JOUST_OPT_LIST, CFG(endpoints), CFG(n_endpoints), JOUST_JUDGE_MAX_ENDPOINTS,
     .arg = "URL", .flags = JOUST_OPT_REQUIRED,
     .help = "base URL, e.g. http://127.0.0.1:8000/v1 (repeatable; load is\n"
             "spread, a failing endpoint is set aside and retried later)"},
    {"model", JOUST_OPT_STR, CFG(model), .dflt = "alexgambashidze/qwen2.5vl_image_preference_reasoner",
     .arg = "NAME", .help = "model name in requests\n"
                            "(default alexgambashidze/qwen2.5vl_image_preference_reasoner)"},
    {"mode", JOUST_OPT_CHOICE, CFG(mode), .dflt = "reason", .choices = "reason|direct", .arg = "MODE",
     .help = "reason (think, then answer) | direct (one token)"},
    {"template", JOUST_OPT_STR, CFG(template_path), .arg = "FILE",
     .help = "prompt template ([system]/[user]/[assistant], {prompt},\n"
             "{image1}, {image2}); default: the mode's built-in one"},
    {"temperature", JOUST_OPT_DOUBLE, CFG(temperature), .min = 0, .max = 100, .dflt = "0", .arg = "X",
     .help = "sampling temperature"},
    {"max-tokens", JOUST_OPT_INT, CFG(max_tokens), .max = 1 << 20, .dflt = "0", .arg = "N",
     .help = "reply length cap (default reason 1024, direct 1)"},
    /* 10: docs/benchmarks.md, 400-token reason replies */
    {"top-logprobs", JOUST_OPT_INT, CFG(top_logprobs), .max = 1000, .dflt = "10", .arg = "N",
     .help = "alternatives per token for the soft reward"},
    {"inflight", JOUST_OPT_INT, CFG(inflight), .min = 1, .max = 4096, .dflt = "64", .arg = "N",
     .help = "HTTP requests in flight per worker (default 64; --slots\ndefaults to twice this)"},
    {"request-timeout-ms", JOUST_OPT_INT, CFG(timeout_ms), .min = 1, .max = 86400000, .dflt = "120000",
     .arg = "N", .help = "per request"},
    {"max-retries", JOUST_OPT_INT, CFG(max_retries), .max = 1000, .dflt = "5", .arg = "N",
     .help = "retries of 429, 5xx, timeouts per match"},
    {"unparseable-retries", JOUST_OPT_INT, CFG(max_unparseable), .max = 1000, .dflt = "2", .arg = "N",
     .help = "re-asks after a reply without an answer"},
    {"no-hard-fallback", JOUST_OPT_UNFLAG, CFG(hard_fallback),
     .help = "a reply without logprobs is unparseable, not a hard 0/1"},
    {"api-key-env", JOUST_OPT_STR, CFG(api_key_env), .dflt = "OPENAI_API_KEY", .arg = "NAME",
     .help = "environment variable with the API key"},
    /* Each local worker of `joust run` gets its own file instead. */
    {"judge-stats", JOUST_OPT_STR, CFG(stats_path), .arg = "FILE", .flags = JOUST_OPT_LOCAL,
     .help = "write the judge's statistics (JSON) there at the end"},
};

#define OPTS(t) t, sizeof t / sizeof *t

/* The first row is the default judge. */
static const joust_judge_info registry[] = {
    {"quality", "CPU, no model: sharpness, exposure, contrast, noise, colour (default)",
     joust_judge_quality_new, NULL, 0, 1},
    {"openai", "a VLM behind an OpenAI-compatible server (docs/judges.md)", joust_judge_openai_new,
     OPTS(openai_opts), 1},
    {"sim", "simulated from the manifest's latent utilities (tests, benchmarks)", joust_judge_sim_new,
     OPTS(sim_opts), 0},
};

const joust_judge_info *joust_judge_info_at(size_t i)
{
    return i < sizeof registry / sizeof *registry ? &registry[i] : NULL;
}

const joust_judge_info *joust_judge_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof registry / sizeof *registry; i++)
        if (!strcmp(registry[i].name, name))
            return &registry[i];
    return NULL;
}

void joust_judge_config_defaults(joust_judge_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    joust_opt_defaults(joust_judge_image_opts, joust_judge_n_image_opts, cfg);
    for (size_t i = 0; i < sizeof registry / sizeof *registry; i++)
        joust_opt_defaults(registry[i].opts, registry[i].n_opts, cfg);
    cfg->seed = 1;
    cfg->cache_entries = 4096;
    cfg->unavailable_hold_ms = 30000;
}

int joust_judge_check(const char *name, const joust_judge_config *cfg, char *err, size_t errlen)
{
    const joust_judge_info *j = joust_judge_find(name);
    if (!j) {
        int k = snprintf(err, errlen, "--judge: '%s' is not a judge (", name ? name : "");
        for (size_t i = 0; i < sizeof registry / sizeof *registry && k > 0 && (size_t)k < errlen; i++)
            k += snprintf(err + k, errlen - (size_t)k, "%s%s", i ? " | " : "", registry[i].name);
        if (k > 0 && (size_t)k < errlen)
            snprintf(err + k, errlen - (size_t)k, ")");
        return JOUST_ENOTFOUND;
    }
    char what[64];
    snprintf(what, sizeof what, "the %s judge", j->name);
    return joust_opt_check(j->opts, j->n_opts, cfg, what, err, errlen);
}

void joust_judge_to_argv(const char *name, const joust_judge_config *cfg, joust_argv *a)
{
    const joust_judge_info *j = joust_judge_find(name);
    if (!j)
        return;
    for (size_t i = 0; j->reads_images && i < joust_judge_n_image_opts; i++)
        joust_opt_to_argv(&joust_judge_image_opts[i], cfg, a);
    for (size_t i = 0; i < j->n_opts; i++)
        joust_opt_to_argv(&j->opts[i], cfg, a);
}

int joust_judge_new(const char *name, const joust_judge_config *cfg, joust_judge_t **out)
{
    const joust_judge_info *j = joust_judge_find(name);
    return j ? j->create(cfg, out) : JOUST_ENOTFOUND;
}

void joust_judge_destroy(joust_judge_t **self_p)
{
    if (!*self_p)
        return;
    (*self_p)->ops->destroy((*self_p)->impl);
    free(*self_p);
    *self_p = NULL;
}

int joust_judge_submit(joust_judge_t *j, const joust_judge_req *req)
{
    return j->ops->submit(j->impl, req);
}

int joust_judge_poll(joust_judge_t *j, joust_judge_res *out, int max, int timeout_ms)
{
    return j->ops->poll(j->impl, out, max, timeout_ms);
}

size_t joust_judge_inflight(joust_judge_t *j) { return j->ops->inflight(j->impl); }

int joust_judge_health(joust_judge_t *j, char *why, size_t whylen)
{
    if (whylen)
        why[0] = '\0';
    return j->ops->health ? j->ops->health(j->impl, why, whylen) : 0;
}

int joust_judge_set_wake_fd(joust_judge_t *j, int fd)
{
    if (!j->ops->set_wake_fd)
        return JOUST_EUNSUPPORTED;
    j->ops->set_wake_fd(j->impl, fd);
    return 0;
}

const char *joust_judge_name(const joust_judge_t *j) { return j->ops->name; }

void joust_judge_res_clear(joust_judge_res *res)
{
    free(res->reason);
    free(res->error);
    res->reason = res->error = NULL;
}
