/* The judge interface: asynchronous submit/poll, so that a remote VLM judge
 * with many requests in flight fits the same worker loop as the CPU judges.
 *
 * Ownership: a request's strings are borrowed only for the duration of
 * submit (the judge copies what it keeps). A result's reason/error/model
 * strings are owned by the result: release them with joust_judge_res_clear.
 * Threads: a judge belongs to one thread (the worker loop).
 * Errors: submit returns 0, JOUST_EAGAIN when the judge is full, or
 * JOUST_EINVAL for a request it can never judge. A failed judgement is not a
 * call error: it comes back from poll as a result whose status says why. */
#ifndef JOUST_JUDGE_H
#define JOUST_JUDGE_H
#include <stddef.h>
#include <stdint.h>

#include "opt.h"

/* Values match joust.proto's OutcomeStatus. */
typedef enum {
    JOUST_STATUS_OK = 1,
    JOUST_STATUS_IMAGE_ERROR = 2,  /* an image was missing, unreadable or corrupt */
    JOUST_STATUS_JUDGE_ERROR = 3,  /* legacy; read like INFRA_ERROR */
    JOUST_STATUS_UNPARSEABLE = 4,  /* the judge answered without a usable answer */
    JOUST_STATUS_INFRA_ERROR = 6,  /* refused, timeout, 5xx, 429: never final */
    JOUST_STATUS_CONFIG_ERROR = 7  /* 401/403, model not found, bad request shape: stops the run */
} joust_status;

/* Values match joust.proto's OutcomeKind. */
typedef enum {
    JOUST_KIND_SOFT = 1,    /* logprobs of both choices */
    JOUST_KIND_BOUNDED = 2, /* logprobs where only one choice was visible */
    JOUST_KIND_HARD = 3     /* the answer text alone */
} joust_outcome_kind;

typedef struct {
    uint64_t image_id;
    const char *uri;   /* path or file:// / http(s):// URI */
    double latent;     /* latent utility from the manifest (sim judge only) */
    int has_latent;
} joust_judge_image;

typedef struct {
    uint64_t match_id;
    uint32_t attempt;
    uint64_t prompt_id;
    const char *prompt;
    joust_judge_image first, second; /* presentation order */
    /* Each image's own caption, first then second, when the run's groups
     * are not the prompt (prompt is then ""); NULL otherwise. The openai
     * judge then shows each image with its caption (docs/judges.md). */
    const char *caption[2];
} joust_judge_req;

typedef struct {
    uint64_t match_id;
    uint32_t attempt;
    joust_status status;
    double p_first;   /* P(first preferred) in [0,1]; meaningful when status is OK */
    int answer;       /* hard answer: 1 (first) or 2 (second); 0 when none */
    char *reason;     /* short reasoning text, may be NULL */
    char *error;      /* why it failed, naming the item; NULL when OK */
    uint64_t failed_image_id; /* the image that caused IMAGE_ERROR, else 0 */
    int64_t latency_us;
    uint32_t tokens;
    joust_outcome_kind kind; /* where p_first came from when OK; 0: not said (read as SOFT) */
} joust_judge_res;

#define JOUST_JUDGE_MAX_ENDPOINTS 16

/* What joust_judge_config.on_endpoint gets. e is the endpoint's index in
 * the list the endpoints give once split at commas
 * (joust_judge_split_endpoints). */
typedef struct joust_judge_ep_event {
    int e;
    int request;        /* 1: a request ended (elapsed_us is its time); 0: a probe answered */
    int ok;             /* it answered usefully (not 5xx, 429, a timeout, a refusal) */
    int64_t elapsed_us;
    int up;             /* the endpoint's state after it: 1 up, 0 down or broken */
    int fails;          /* its consecutive failures now */
} joust_judge_ep_event;

typedef struct {
    /* sim: p = sigmoid((u1 - u2)/temperature + bias + noise * N(0,1)) */
    double sim_temperature;
    double sim_noise;
    double sim_bias;
    int sim_latency_ms;        /* sim: each result is ready this long after submit */
    uint64_t seed;
    /* image-reading judges */
    long long max_pixels;      /* resize budget before judging */
    size_t cache_entries;      /* per-worker cache of prepared images */
    const char *image_root;    /* when set, relative paths resolve under it */
    /* When n_allow_roots > 0, local image paths must resolve (realpath)
     * inside one of these directories, else the image fails with
     * IMAGE_ERROR "outside the allowed roots" (common/confine.h). */
    const char *const *allow_roots;
    size_t n_allow_roots;
    /* Remote images (worker/fetch.h): --s3-endpoint (NULL: AWS_ENDPOINT_URL
     * or AWS), --fetch-cache DIR (NULL: the default folder; "none": off),
     * --fetch-cache-mb (0: the default). Borrowed. */
    const char *s3_endpoint;
    const char *fetch_cache_dir;
    size_t fetch_cache_mb;
    /* openai: a VLM behind the OpenAI-compatible chat API (judge_openai.c).
     * Strings are borrowed; the judge copies what it keeps. */
    const char *endpoints[JOUST_JUDGE_MAX_ENDPOINTS]; /* base URLs, e.g. http://h:8000/v1;
                                                         an entry may list several, comma-separated */
    int n_endpoints;
    const char *api_key_env;   /* variable holding the API key (OPENAI_API_KEY); unset: no auth */
    const char *template_path; /* NULL: the mode's built-in template */
    const char *mode;          /* "reason" (think, then answer; default) | "direct" (one token) */
    const char *model;         /* model name sent with each request */
    double temperature;        /* default 0 */
    int max_tokens;            /* 0: the mode's default (reason 1024, direct 1) */
    int top_logprobs;          /* default 10; 0 asks for none (hard answers only) */
    int inflight;              /* HTTP requests in flight per worker (default 64) */
    int timeout_ms;            /* per HTTP request (default 120000) */
    int max_retries;           /* retries of 429/5xx/timeouts/bad bodies per match (default 5) */
    int max_unparseable;       /* re-asks after an unparseable answer (default 2) */
    int unavailable_hold_ms;   /* with no endpoint up, matches wait this long, then
                                  INFRA_ERROR (default 30000; 0: at once) */
    int hard_fallback;         /* 1 (default): without logprobs p = the hard answer;
                                  0: such a reply counts as unparseable */
    const char *stats_path;    /* when set, the judge writes its statistics there (JSON) at exit */
    /* Endpoint health for the worker's metrics (worker_metrics.h): the
     * openai judge calls it, on its thread, when a request to an endpoint
     * ends and when a probe of one answers. NULL: not called. */
    void (*on_endpoint)(void *ctx, const struct joust_judge_ep_event *ev);
    void *on_endpoint_ctx;
} joust_judge_config;

/* The endpoint URLs of cfg split at commas, blanks trimmed, at most 64:
 * a malloc'd array of malloc'd strings (free each, then the array); the
 * count is returned. */
int joust_judge_split_endpoints(const joust_judge_config *cfg, char ***urls);

/* Every field at its default: the registry's option defaults, plus
 * seed 1 and cache_entries 4096. */
void joust_judge_config_defaults(joust_judge_config *cfg);

typedef struct joust_judge joust_judge_t;

typedef struct {
    const char *name;
    int (*submit)(void *impl, const joust_judge_req *req);
    /* Moves up to max finished results into out; waits at most timeout_ms
     * for the first one. Returns the count (>= 0) or a negative error. */
    int (*poll)(void *impl, joust_judge_res *out, int max, int timeout_ms);
    size_t (*inflight)(void *impl);
    void (*destroy)(void *impl);
    /* Optional (NULL: always ready). 0 when the judge can judge now; 1 when
     * it cannot (no backend answers), with the reason in why. A judge that
     * becomes unavailable returns the matches it holds (INFRA_ERROR)
     * through poll, which must keep being called: it also probes. */
    int (*health)(void *impl, char *why, size_t whylen);
    /* Optional: poll's wait also ends as soon as fd is readable. */
    void (*set_wake_fd)(void *impl, int fd);
} joust_judge_ops;

struct joust_judge {
    const joust_judge_ops *ops;
    void *impl;
};

/* ---- the registry (worker/judge.c; docs/extending.md adds a judge) ----
 * Every judge is one row: its name, a line for --help, its constructor and
 * the options only it reads, declared once (joust_opt: name, type, field of
 * joust_judge_config, range, default, help). That table drives the
 * command's parsing, its --help, the defaults of joust_judge_config and the
 * argv `joust run` hands to its local workers. */
typedef struct {
    const char *name;
    const char *what;          /* one line for --help */
    int (*create)(const joust_judge_config *cfg, joust_judge_t **out);
    const joust_opt *opts;     /* options of this judge alone */
    size_t n_opts;
    int reads_images;          /* also reads joust_judge_image_opts */
} joust_judge_info;

/* The i-th judge in --help order (the first is the default); NULL past the
 * end. */
const joust_judge_info *joust_judge_info_at(size_t i);
/* The judge called name, or NULL. */
const joust_judge_info *joust_judge_find(const char *name);
/* Options of every image-reading judge (the pixel budget, the image root). */
extern const joust_opt joust_judge_image_opts[];
extern const size_t joust_judge_n_image_opts;
/* Checks, without creating anything, that name is a judge and that cfg
 * holds its required options. @return 0, JOUST_ENOTFOUND (unknown judge) or
 * JOUST_EINVAL, with the reason (naming the option, listing the judges) in
 * err. */
int joust_judge_check(const char *name, const joust_judge_config *cfg, char *err, size_t errlen);
/* Appends the options judge name reads (image options first) to a, as
 * joust_opt_to_argv writes them. */
void joust_judge_to_argv(const char *name, const joust_judge_config *cfg, joust_argv *a);

/* Creates the judge called name (a registry row). JOUST_ENOTFOUND for an
 * unknown name, JOUST_EINVAL for a configuration it cannot use (the reason
 * is logged). */
int joust_judge_new(const char *name, const joust_judge_config *cfg, joust_judge_t **out);
void joust_judge_destroy(joust_judge_t **self_p);
int joust_judge_submit(joust_judge_t *j, const joust_judge_req *req);
int joust_judge_poll(joust_judge_t *j, joust_judge_res *out, int max, int timeout_ms);
size_t joust_judge_inflight(joust_judge_t *j);
/* See joust_judge_ops.health; why gets "" when ready. */
int joust_judge_health(joust_judge_t *j, char *why, size_t whylen);
/* 0, or JOUST_EUNSUPPORTED when the judge cannot wait on fd (the caller
 * then polls it with short timeouts). */
int joust_judge_set_wake_fd(joust_judge_t *j, int fd);
const char *joust_judge_name(const joust_judge_t *j);
void joust_judge_res_clear(joust_judge_res *res);

/* Constructors of the built-in judges (used by joust_judge_new). */
int joust_judge_sim_new(const joust_judge_config *cfg, joust_judge_t **out);
int joust_judge_quality_new(const joust_judge_config *cfg, joust_judge_t **out);
int joust_judge_openai_new(const joust_judge_config *cfg, joust_judge_t **out);

#endif
