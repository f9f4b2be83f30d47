/* The `openai` judge: a VLM (the paper's reasoner, or any chat model that
 * sees images) behind the OpenAI-compatible chat API of vLLM, SGLang or
 * llama.cpp, with the soft reward read from the answer token's logprobs.
 *
 * The parts, one job each:
 *   openai_prep    decode once, fit the pixel budget, JPEG, base64, cache
 *   openai_request template and request body
 *   openai_http    libcurl multi: K requests in flight, keep-alive
 *   openai_route   endpoint load, health (set aside, probe), image affinity
 *   openai_parse   reasoning, answer, soft p from top_logprobs
 * This file holds the matches: a pending queue grouped by first image (so
 * requests sharing a prefix go out back to back, to the same endpoint), the
 * retry policy, and the results.
 *
 * Failure classes (docs/judges.md):
 *   about the match, final: IMAGE_ERROR (an image that cannot be read, or
 *     a 400/413 whose body says an image or the prompt is too large),
 *     UNPARSEABLE (no usable answer after max_unparseable re-asks);
 *   about the infrastructure, never final: connection errors, timeouts,
 *     5xx, 408, 429 and bodies that are not a chat completion are retried
 *     with backoff; a failure counts against the match's max_retries only
 *     while its endpoint is up (it answers others), so an outage never
 *     uses them up. Counted out: INFRA_ERROR. An outage is handled by
 *     endpoint health: with no endpoint up the judge is unavailable
 *     (health op), holds its matches for unavailable_hold_ms (a short outage costs
 *     nothing), then returns them as INFRA_ERROR;
 *   configuration, stops the run: 401/403, 404 (model or path not found)
 *     and /models without the model make an endpoint broken; when every
 *     endpoint is broken each match ends CONFIG_ERROR with the endpoint
 *     and the server's words. Any other 4xx (a request shape the server
 *     refuses) is CONFIG_ERROR at once.
 * Health: every endpoint starts down and is probed (GET /models, the model
 * must be listed) before it gets requests; see openai_route.h.
 *
 * Everything runs in poll, which never blocks when its timeout is 0: image
 * preparation is bounded per call so that the worker keeps heartbeating. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "fetch.h"
#include "judge.h"
#include "judge_openai.h"
#include "log.h"
#include "openai_http.h"
#include "openai_parse.h"
#include "openai_prep.h"
#include "openai_request.h"
#include "openai_route.h"
#include "rng.h"
#include "u64map.h"
#include "xalloc.h"

#define QUEUE_MAX (1u << 20)        /* submit answers JOUST_EAGAIN beyond this */
#define PREP_BUDGET_US 50000        /* image preparation per poll call */
#define BACKOFF_BASE_MS 250
#define BACKOFF_MAX_MS 10000
#define FAIL_THRESHOLD 3            /* consecutive failures that set an endpoint aside */
#define AFFINITY_WINDOW 32
#define CACHE_BYTES (256u << 20)
#define MIN_PIXELS 3136             /* Qwen2.5-VL: 4 tokens of 28x28 */

typedef struct oa_match {
    uint64_t match_id, id[2];
    uint32_t attempt;
    char *uri[2], *prompt;
    char *caption[2]; /* both or neither: then the caption template */
    int transient, unparseable, waits, endpoint;
    int64_t submit_us, not_before_ms;
    char *last_error;
    struct oa_match *prev, *next;
} oa_match;

typedef struct {
    oa_match *head, *tail;
    size_t len;
} mlist;

typedef struct {
    joust_judge_config cfg;
    char **urls;
    int nurls;
    joust_oa_http_t *http;
    joust_oa_route_t *route;
    joust_oa_prep_t *prep;
    joust_fetch_t *fetch;    /* remote images for prep */
    joust_oa_template_t *tmpl;
    joust_oa_template_t *tmpl_caption; /* for matches with captions: the mode's caption
                                          template; NULL when tmpl uses the captions */
    joust_oa_params params;
    mlist pending, flying;
    joust_u64map_t group;     /* first image id -> last pending match with it */
    joust_judge_res *ready;   /* FIFO of finished results */
    size_t rhead, rlen, rcap;
    joust_rng_t rng;
    joust_oa_stats st;
    char *model, *stats_path; /* owned copies */
    joust_path_roots roots;   /* --allow-root confinement */
    char (*why)[400];         /* per endpoint: why it is down or broken */
    joust_oa_ep_state *state; /* per endpoint: as last logged */
    char *probe_tag;          /* per endpoint: the user pointer of its probes */
    int64_t *logged_ms;       /* per endpoint: when its state was last logged */
    int64_t unavail_since_ms; /* no endpoint up since then; 0 when one is */
    int was_up;               /* an endpoint has been up */
} oa_judge;

/* ---- match lists ---- */

static void list_unlink(mlist *l, oa_match *m)
{
    if (m->prev) m->prev->next = m->next; else l->head = m->next;
    if (m->next) m->next->prev = m->prev; else l->tail = m->prev;
    m->prev = m->next = NULL;
    l->len--;
}

static void list_insert_after(mlist *l, oa_match *after, oa_match *m)
{
    m->prev = after;
    m->next = after ? after->next : NULL;
    if (!after) { /* at the tail */
        m->prev = l->tail;
        if (l->tail) l->tail->next = m; else l->head = m;
        l->tail = m;
    } else {
        if (after->next) after->next->prev = m; else l->tail = m;
        after->next = m;
    }
    l->len++;
}

/* Pending matches with the same first image stay next to each other. */
static void pending_add(oa_judge *j, oa_match *m)
{
    uint64_t v;
    oa_match *after = NULL;
    if (m->id[0] && joust_u64map_get(&j->group, m->id[0], &v))
        after = (oa_match *)(uintptr_t)v;
    list_insert_after(&j->pending, after, m);
    if (m->id[0])
        joust_u64map_put(&j->group, m->id[0], (uint64_t)(uintptr_t)m);
}

static void pending_remove(oa_judge *j, oa_match *m)
{
    uint64_t v;
    if (m->id[0] && joust_u64map_get(&j->group, m->id[0], &v) && v == (uint64_t)(uintptr_t)m) {
        if (m->prev && m->prev->id[0] == m->id[0])
            joust_u64map_put(&j->group, m->id[0], (uint64_t)(uintptr_t)m->prev);
        else
            joust_u64map_del(&j->group, m->id[0]);
    }
    list_unlink(&j->pending, m);
}

static void match_free(oa_match *m)
{
    free(m->uri[0]);
    free(m->uri[1]);
    free(m->prompt);
    free(m->caption[0]);
    free(m->caption[1]);
    free(m->last_error);
    free(m);
}

/* ---- results ---- */

static void push_result(oa_judge *j, oa_match *m, joust_status status, double p, int answer,
                        char *reason, char *error, uint64_t failed_image, uint32_t tokens,
                        joust_outcome_kind kind)
{
    if (j->rhead > 0 && j->rhead == j->rlen)
        j->rhead = j->rlen = 0;
    xgrow((void **)&j->ready, &j->rcap, j->rlen + 1, sizeof *j->ready);
    j->ready[j->rlen++] = (joust_judge_res){
        .match_id = m->match_id, .attempt = m->attempt, .status = status,
        .p_first = status == JOUST_STATUS_OK ? p : 0.5, .answer = answer, .reason = reason,
        .error = error, .failed_image_id = failed_image,
        .latency_us = joust_now_us() - m->submit_us, .tokens = tokens,
        .kind = status == JOUST_STATUS_OK ? kind : 0};
    j->st.matches++;
    switch (status) {
    case JOUST_STATUS_OK: j->st.ok++; break;
    case JOUST_STATUS_IMAGE_ERROR: j->st.image_errors++; break;
    case JOUST_STATUS_JUDGE_ERROR:
    case JOUST_STATUS_INFRA_ERROR:
    case JOUST_STATUS_CONFIG_ERROR: j->st.judge_errors++; break;
    case JOUST_STATUS_UNPARSEABLE: j->st.unparseable++; break;
    }
    match_free(m);
}

/* A formatted, malloc'd message (cut at 1 KiB; the wire allows 4). */
static char *fmt_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_dup(const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return xstrdup(tmp);
}

/* The match's last failure, for the error it ends with if retries run out. */
static void set_error(oa_match *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(oa_match *m, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    free(m->last_error);
    m->last_error = xstrdup(tmp);
}

/* ---- retries ---- */

static int backoff_ms(oa_judge *j, int n)
{
    int64_t d = BACKOFF_BASE_MS;
    for (int i = 1; i < n && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    /* "equal jitter": half fixed, half random, so that workers that failed
     * together do not come back together. */
    return (int)(d / 2 + (int64_t)(joust_rng_uniform(&j->rng) * (double)(d / 2)));
}

/* A failure that may pass: try again later. It counts against the match
 * only while its endpoint is up (answering other requests); past
 * max_retries the match ends INFRA_ERROR, never final at the coordinator. */
static void retry_later(oa_judge *j, oa_match *m, int e, int retry_after_ms)
{
    int counted = joust_oa_route_state(j->route, e) == JOUST_OA_UP;
    if (counted && ++m->transient > j->cfg.max_retries) {
        char *err = fmt_dup("gave up after %d tries while the endpoint answered others: %s",
                            m->transient, m->last_error ? m->last_error : "judge error");
        log_debug("openai judge: match %" PRIu64 ": %s", m->match_id, err);
        push_result(j, m, JOUST_STATUS_INFRA_ERROR, 0.5, 0, NULL, err, 0, 0, 0);
        return;
    }
    m->waits += !counted;
    int delay = retry_after_ms >= 0
                    ? retry_after_ms + (int)(joust_rng_uniform(&j->rng) * retry_after_ms / 10.0)
                    : backoff_ms(j, m->transient + m->waits);
    m->not_before_ms = joust_now_ms() + delay;
    pending_add(j, m);
}

/* Back to the queue at once, not counted (its endpoint was at fault). */
static void requeue(oa_judge *j, oa_match *m)
{
    m->not_before_ms = 0;
    pending_add(j, m);
}

/* Logs an endpoint's change of state (and of reason), once. */
static void note_state(oa_judge *j, int e, joust_oa_ep_state s, const char *why)
{
    int64_t now = joust_now_ms();
    /* A new state is logged at once; a new reason for the same state (an
     * outage alternates refused probes and failed requests) every 30 s. */
    if (s == j->state[e] &&
        (s == JOUST_OA_UP || !strcmp(why, j->why[e]) || now - j->logged_ms[e] < 30000))
        return;
    j->logged_ms[e] = now;
    const char *base = joust_oa_http_base(j->http, e);
    if (s == JOUST_OA_UP)
        log_info("openai judge: endpoint %s is up", base);
    else if (s == JOUST_OA_DOWN)
        log_warn("openai judge: endpoint %s is down: %s", base, why);
    else
        log_error("openai judge: endpoint %s refuses this configuration: %s", base, why);
    j->state[e] = s;
    snprintf(j->why[e], sizeof j->why[e], "%s", s == JOUST_OA_UP ? "" : why);
}

static void ask_again(oa_judge *j, oa_match *m, const char *why, char *content)
{
    if (++m->unparseable > j->cfg.max_unparseable) {
        char *err = fmt_dup("unparseable answer after %d tries: %s", m->unparseable, why);
        /* The raw reply goes where the reasoning would, for `joust show`. */
        push_result(j, m, JOUST_STATUS_UNPARSEABLE, 0.5, 0, content, err, 0, 0, 0);
        return;
    }
    free(content);
    set_error(m, "%s", why);
    m->not_before_ms = 0;
    pending_add(j, m);
}

/* ---- completions ---- */

/* The health event of endpoint e for cfg.on_endpoint. */
static void tell_endpoint(oa_judge *j, int e, int request, int ok, int64_t elapsed_us)
{
    if (!j->cfg.on_endpoint)
        return;
    joust_oa_ep_stats es;
    joust_oa_route_ep_stats(j->route, e, &es);
    joust_judge_ep_event ev = {.e = e, .request = request, .ok = ok, .elapsed_us = elapsed_us,
                               .up = joust_oa_route_state(j->route, e) == JOUST_OA_UP,
                               .fails = es.fails};
    j->cfg.on_endpoint(j->cfg.on_endpoint_ctx, &ev);
}

/* How the request d ended, to the router and the health event. */
static void ep_done(oa_judge *j, const joust_oa_done *d, joust_oa_ep_outcome o, int retry_after_ms,
                    int64_t now_ms)
{
    joust_oa_route_done(j->route, d->endpoint, o, retry_after_ms, now_ms);
    tell_endpoint(j, d->endpoint, 1, o == JOUST_OA_EP_OK, d->elapsed_us);
}

static void on_reply(oa_judge *j, oa_match *m, const joust_oa_done *d)
{
    joust_oa_reply r;
    char why[512];
    int rc = joust_oa_parse_reply(d->body, d->body_len, &r, why, sizeof why);
    if (rc == JOUST_ECORRUPT) {
        j->st.bad_bodies++;
        ep_done(j, d, JOUST_OA_EP_FAILED, -1, joust_now_ms());
        set_error(m, "%s: HTTP 200 but %s", joust_oa_http_url(j->http, d->endpoint), why);
        joust_oa_reply_clear(&r);
        retry_later(j, m, d->endpoint, -1);
        return;
    }
    ep_done(j, d, JOUST_OA_EP_OK, -1, joust_now_ms());
    if (rc == 0 && !r.soft && !j->cfg.hard_fallback) {
        rc = JOUST_EFORMAT;
        snprintf(why, sizeof why, "no logprobs at the answer token (hard fallback is off)");
    }
    if (rc < 0) {
        j->st.unparseable_replies++;
        char *content = r.content;
        r.content = NULL;
        joust_oa_reply_clear(&r);
        ask_again(j, m, why, content);
        return;
    }
    if (!r.soft)
        j->st.hard_fallbacks++;
    j->st.bounded += (uint64_t)r.bounded;
    j->st.prompt_tokens += r.prompt_tokens;
    j->st.completion_tokens += r.completion_tokens;
    double p = isfinite(r.p_first) ? fmin(1.0, fmax(0.0, r.p_first)) : (r.answer == 1 ? 1.0 : 0.0);
    char *reason = r.reasoning;
    r.reasoning = NULL;
    uint64_t tok = (uint64_t)r.prompt_tokens + r.completion_tokens;
    joust_oa_reply_clear(&r);
    push_result(j, m, JOUST_STATUS_OK, p, r.answer, reason, NULL, 0,
                tok > UINT32_MAX ? UINT32_MAX : (uint32_t)tok,
                !r.soft ? JOUST_KIND_HARD : r.bounded ? JOUST_KIND_BOUNDED : JOUST_KIND_SOFT);
}

/* 1 when an error body says that the images (or the prompt they make) are
 * too large for the model: a fact about this match, not the setup. */
static int too_large(const char *msg)
{
    static const char *const says[] = {"too large", "too big", "too long", "aspect ratio",
                                       "exceeds", "maximum context length", "max_pixels",
                                       "too many tokens", "longer than"};
    char low[400];
    size_t n = 0;
    for (; msg[n] && n < sizeof low - 1; n++)
        low[n] = (char)((msg[n] >= 'A' && msg[n] <= 'Z') ? msg[n] + 32 : msg[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof says / sizeof *says; i++)
        if (strstr(low, says[i]))
            return 1;
    return 0;
}

/* Which image a message names ("image 2 ..."), else 0. */
static uint64_t named_image(const oa_match *m, const char *msg)
{
    const char *p = strstr(msg, "mage ");
    if (p && (p[5] == '1' || p[5] == '2') && (p[6] < '0' || p[6] > '9'))
        return m->id[p[5] - '1'];
    return 0;
}

/* A health probe (GET /models) came back: up, down or broken. */
static void on_probe(oa_judge *j, int e, const joust_oa_done *d)
{
    char why[400], msg[320];
    const char *base = joust_oa_http_base(j->http, e);
    joust_oa_ep_state st = JOUST_OA_DOWN;
    if (d->curl_code) {
        snprintf(why, sizeof why, "GET %s/models: %s", base, d->error ? d->error : "failed");
    } else if (d->status == 200) {
        st = JOUST_OA_UP;
        why[0] = '\0';
        cJSON *root = cJSON_ParseWithLength(d->body, d->body_len);
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data"), *it;
        const cJSON *list = cJSON_IsArray(data) ? data : NULL;
        char served[200] = "";
        int listed = 0;
        cJSON_ArrayForEach(it, list) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
            if (!cJSON_IsString(id))
                continue;
            listed |= j->model && !strcmp(id->valuestring, j->model);
            size_t have = strlen(served);
            if (have + strlen(id->valuestring) + 5 < sizeof served) {
                int w = snprintf(served + have, sizeof served - have, "%s'%s'",
                                 have ? ", " : "", id->valuestring);
                (void)w;
            }
        }
        if (!cJSON_IsArray(data)) {
            st = JOUST_OA_DOWN;
            snprintf(why, sizeof why, "GET %s/models: HTTP 200 but not a model list", base);
        } else if (j->model && !listed) {
            st = JOUST_OA_BROKEN;
            snprintf(why, sizeof why, "the model '%.100s' is not served there (GET %s/models lists %s)",
                     j->model, base, served[0] ? served : "none");
        }
        cJSON_Delete(root);
    } else {
        joust_oa_error_message(d->body, d->body_len, msg, sizeof msg);
        st = d->status == 401 || d->status == 403 || d->status == 404 ? JOUST_OA_BROKEN : JOUST_OA_DOWN;
        snprintf(why, sizeof why, "GET %s/models: HTTP %ld: %s", base, d->status, msg);
    }
    joust_oa_route_probe_done(j->route, e, st, joust_now_ms());
    note_state(j, e, st, why);
    tell_endpoint(j, e, 0, st == JOUST_OA_UP, d->elapsed_us);
}

static void on_done(void *arg, const joust_oa_done *d)
{
    oa_judge *j = arg;
    if ((char *)d->user >= j->probe_tag && (char *)d->user < j->probe_tag + j->nurls) {
        on_probe(j, (int)((char *)d->user - j->probe_tag), d);
        return;
    }
    oa_match *m = d->user;
    list_unlink(&j->flying, m);
    const char *url = joust_oa_http_url(j->http, d->endpoint);
    int64_t now = joust_now_ms();
    if (d->curl_code) {
        if (d->timed_out)
            j->st.timeouts++;
        else
            j->st.conn_errors++;
        ep_done(j, d, JOUST_OA_EP_FAILED, -1, now);
        set_error(m, "%s: %s", url, d->error ? d->error : "transfer failed");
        if (joust_oa_route_state(j->route, d->endpoint) != JOUST_OA_UP)
            note_state(j, d->endpoint, JOUST_OA_DOWN, m->last_error);
        retry_later(j, m, d->endpoint, -1);
        return;
    }
    if (d->status == 200) {
        on_reply(j, m, d);
        return;
    }
    char msg[320];
    joust_oa_error_message(d->body, d->body_len, msg, sizeof msg);
    set_error(m, "%s: HTTP %ld: %s", url, d->status, msg);
    if (d->status == 429) {
        j->st.http_429++;
        int ra = d->retry_after_ms >= 0 ? d->retry_after_ms : -1;
        ep_done(j, d, JOUST_OA_EP_THROTTLED,
                            ra >= 0 ? ra : BACKOFF_BASE_MS, now);
        retry_later(j, m, d->endpoint, ra);
    } else if (d->status >= 500 || d->status == 408) {
        j->st.http_5xx++;
        ep_done(j, d, JOUST_OA_EP_FAILED, -1, now);
        if (joust_oa_route_state(j->route, d->endpoint) != JOUST_OA_UP)
            note_state(j, d->endpoint, JOUST_OA_DOWN, m->last_error);
        retry_later(j, m, d->endpoint, d->retry_after_ms);
    } else if (d->status == 401 || d->status == 403 || d->status == 404) {
        /* Key or model: this endpoint refuses us. Another may not; when
         * none is left the matches end CONFIG_ERROR (settle). */
        j->st.http_4xx++;
        ep_done(j, d, JOUST_OA_EP_BROKEN, -1, now);
        note_state(j, d->endpoint, JOUST_OA_BROKEN, m->last_error);
        requeue(j, m);
    } else if ((d->status == 400 || d->status == 413 || d->status == 422) && too_large(msg)) {
        j->st.http_4xx++;
        ep_done(j, d, JOUST_OA_EP_OK, -1, now);
        push_result(j, m, JOUST_STATUS_IMAGE_ERROR, 0.5, 0, NULL,
                    fmt_dup("the server rejects the images as too large: %s", m->last_error),
                    named_image(m, msg), 0, 0);
    } else { /* 400 and other 4xx: the request's shape is refused */
        j->st.http_4xx++;
        ep_done(j, d, JOUST_OA_EP_OK, -1, now);
        push_result(j, m, JOUST_STATUS_CONFIG_ERROR, 0.5, 0, NULL,
                    fmt_dup("the server refuses the request: %s", m->last_error), 0, 0, 0);
    }
}

/* ---- sending ---- */

static int64_t seed_for(const oa_judge *j, const oa_match *m)
{
    uint64_t x = j->cfg.seed * 0x9e3779b97f4a7c15ull ^ m->match_id;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    /* Another seed for each re-ask: a sampled reply may parse next time. */
    return (int64_t)((x + (uint64_t)m->unparseable) & 0x7fffffff);
}

/* Prepares both images and starts the request to endpoint e. */
static void send_match(oa_judge *j, oa_match *m, int e)
{
    joust_oa_image im[2];
    for (int k = 0; k < 2; k++) {
        char why[600];
        int rc = joust_oa_prep_get(j->prep, m->id[k], m->uri[k], &im[k], why, sizeof why);
        if (rc != 0) {
            char *err = fmt_dup("image %" PRIu64 " (%.300s): %s", m->id[k], m->uri[k], why);
            if (joust_imgsrc_outage(rc)) /* the image store is down: back to the queue */
                push_result(j, m, JOUST_STATUS_INFRA_ERROR, 0.5, 0, NULL, err, 0, 0, 0);
            else
                push_result(j, m, JOUST_STATUS_IMAGE_ERROR, 0.5, 0, NULL, err, m->id[k], 0, 0);
            return;
        }
    }
    joust_buf_t body = {0};
    j->params.seed = seed_for(j, m);
    joust_oa_request_build_captions(m->caption[0] && j->tmpl_caption ? j->tmpl_caption : j->tmpl,
                                    &j->params,
                                    m->prompt, m->caption[0], m->caption[1], im[0].url,
                                    im[0].url_len, im[1].url, im[1].url_len, &body);
    int rc = joust_oa_http_start(j->http, e, body.data, body.len, m);
    if (rc < 0) { /* cannot happen while inflight is checked; keep the match */
        set_error(m, "cannot start a request: %s", joust_strerror(rc));
        m->not_before_ms = joust_now_ms() + backoff_ms(j, 1);
        pending_add(j, m);
        return;
    }
    m->endpoint = e;
    list_insert_after(&j->flying, NULL, m);
    joust_oa_route_sent(j->route, e, m->id[0], m->id[1]);
    j->st.requests++;
    if (m->transient || m->unparseable || m->waits)
        j->st.retries++;
    size_t fl = joust_oa_http_inflight(j->http);
    if (fl > j->st.max_inflight)
        j->st.max_inflight = fl;
}

/* Starts due pending matches, in queue order, while there is room. */
static int dispatch(oa_judge *j)
{
    int64_t t0 = joust_now_us(), now = t0 / 1000;
    int sent = 0;
    oa_match *m = j->pending.head, *next;
    for (; m && j->flying.len < (size_t)j->cfg.inflight; m = next) {
        next = m->next;
        if (m->not_before_ms > now)
            continue;
        int e = joust_oa_route_pick(j->route, m->id[0], m->id[1], now);
        if (e < 0)
            break; /* no endpoint is up, or all are paused or full */
        pending_remove(j, m);
        send_match(j, m, e);
        sent++;
        if (joust_now_us() - t0 > PREP_BUDGET_US)
            break; /* keep the worker loop (heartbeats) moving */
    }
    return sent;
}

/* ---- the judge ---- */

static int oa_submit(void *impl, const joust_judge_req *req)
{
    oa_judge *j = impl;
    if (!req || !req->first.uri || !req->second.uri)
        return JOUST_EINVAL;
    if (j->pending.len + j->flying.len >= QUEUE_MAX)
        return JOUST_EAGAIN;
    oa_match *m = xcalloc(1, sizeof *m);
    m->match_id = req->match_id;
    m->attempt = req->attempt;
    m->id[0] = req->first.image_id;
    m->id[1] = req->second.image_id;
    m->uri[0] = xstrdup(req->first.uri);
    m->uri[1] = xstrdup(req->second.uri);
    m->prompt = xstrdup(req->prompt ? req->prompt : "");
    if (req->caption[0] && req->caption[1]) {
        m->caption[0] = xstrdup(req->caption[0]);
        m->caption[1] = xstrdup(req->caption[1]);
    }
    m->endpoint = -1;
    m->submit_us = joust_now_us();
    pending_add(j, m);
    return 0;
}

static size_t results_ready(const oa_judge *j) { return j->rlen - j->rhead; }

/* Ends every pending match with status and a message. */
static void fail_pending(oa_judge *j, joust_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_pending(oa_judge *j, joust_status status, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    while (j->pending.head) {
        oa_match *m = j->pending.head;
        pending_remove(j, m);
        push_result(j, m, status, 0.5, 0, NULL, xstrdup(tmp), 0, 0, 0);
    }
}

/* "URL: why; URL: why" over the endpoints that are not up. */
static void summary(const oa_judge *j, char *out, size_t outlen)
{
    out[0] = '\0';
    for (int e = 0; e < j->nurls; e++) {
        if (joust_oa_route_state(j->route, e) == JOUST_OA_UP)
            continue;
        size_t n = strlen(out);
        snprintf(out + n, outlen - n, "%s%s", n ? "; " : "",
                 j->why[e][0] ? j->why[e] : joust_oa_http_base(j->http, e));
        if (!j->why[e][0] && strlen(out) + 20 < outlen)
            strcat(out, ": not probed yet");
    }
}

/* Health: starts due probes; with no endpoint up, holds the matches for
 * unavailable_hold_ms and then returns them; with every endpoint broken, ends them
 * CONFIG_ERROR. */
static void settle(oa_judge *j, int64_t now)
{
    int e;
    while (joust_oa_http_inflight(j->http) < (size_t)(j->cfg.inflight + j->nurls) &&
           (e = joust_oa_route_probe_due(j->route, now)) >= 0)
        if (joust_oa_http_get(j->http, e, "/models", &j->probe_tag[e]) < 0)
            joust_oa_route_probe_done(j->route, e, JOUST_OA_DOWN, now);
    char why[1024];
    if (joust_oa_route_count(j->route, JOUST_OA_UP) > 0) {
        if (j->unavail_since_ms && j->was_up)
            log_info("openai judge: an endpoint is up again after %.1f s",
                     (double)(now - j->unavail_since_ms) / 1000.0);
        j->unavail_since_ms = 0;
        j->was_up = 1;
        return;
    }
    if (joust_oa_route_count(j->route, JOUST_OA_BROKEN) == j->nurls) {
        j->unavail_since_ms = 0;
        if (j->pending.len) {
            summary(j, why, sizeof why);
            fail_pending(j, JOUST_STATUS_CONFIG_ERROR, "every endpoint refuses this configuration: %s", why);
        }
        return;
    }
    if (!j->unavail_since_ms)
        j->unavail_since_ms = now;
    if (j->pending.len && now - j->unavail_since_ms >= j->cfg.unavailable_hold_ms) {
        summary(j, why, sizeof why);
        fail_pending(j, JOUST_STATUS_INFRA_ERROR, "no endpoint answered for %.1f s: %s",
                     (double)(now - j->unavail_since_ms) / 1000.0, why);
    }
}

static void step(oa_judge *j)
{
    joust_oa_http_poll(j->http, 0, on_done, j);
    settle(j, joust_now_ms());
    if (dispatch(j))
        joust_oa_http_poll(j->http, 0, on_done, j); /* sends them now */
}

/* When poll must look again without any transfer waking it: a backoff
 * ends, a paused endpoint resumes, a probe is due, the hold runs out. */
static int64_t next_timer_ms(const oa_judge *j, int64_t now)
{
    int64_t t = joust_oa_route_next_change_ms(j->route, now);
    if (joust_oa_route_count(j->route, JOUST_OA_UP) > 0 &&
        j->flying.len < (size_t)j->cfg.inflight)
        for (const oa_match *m = j->pending.head; m; m = m->next)
            if (m->not_before_ms < t)
                t = m->not_before_ms;
    if (j->unavail_since_ms && j->pending.len && j->unavail_since_ms + j->cfg.unavailable_hold_ms < t)
        t = j->unavail_since_ms + j->cfg.unavailable_hold_ms;
    return t;
}

static int oa_poll(void *impl, joust_judge_res *out, int max, int timeout_ms)
{
    oa_judge *j = impl;
    if (max < 0 || (max > 0 && !out))
        return JOUST_EINVAL;
    int64_t deadline = joust_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    step(j);
    /* Sleeps in curl_multi_poll until a transfer moves, a timer is due or
     * the wake fd (the worker's socket) is readable: no spinning. */
    while (!results_ready(j) && timeout_ms > 0) {
        int64_t now = joust_now_ms(), until = next_timer_ms(j, now);
        if (until > deadline)
            until = deadline;
        if (deadline - now <= 0)
            break;
        int w = until - now < 1 ? 1 : (int)(until - now);
        joust_oa_http_poll(j->http, w, on_done, j);
        step(j);
        if (joust_oa_http_woken(j->http))
            break;
    }
    int n = 0;
    while (n < max && results_ready(j))
        out[n++] = j->ready[j->rhead++];
    return n;
}

static int oa_health(void *impl, char *why, size_t whylen)
{
    oa_judge *j = impl;
    if (joust_oa_route_count(j->route, JOUST_OA_UP) > 0 ||
        joust_oa_route_count(j->route, JOUST_OA_BROKEN) == j->nurls)
        return 0; /* all broken: "ready" to report CONFIG_ERROR for each match */
    char s[1024];
    summary(j, s, sizeof s);
    snprintf(why, whylen, "no endpoint answers: %s", s);
    return 1;
}

static void oa_set_wake_fd(void *impl, int fd)
{
    oa_judge *j = impl;
    joust_oa_http_set_wake_fd(j->http, fd);
}

static size_t oa_inflight(void *impl)
{
    oa_judge *j = impl;
    return j->pending.len + j->flying.len + results_ready(j);
}

static void collect_stats(oa_judge *j, joust_oa_stats *out)
{
    *out = j->st;
    joust_oa_prep_stats(j->prep, &out->cache_hits, &out->cache_misses, NULL);
    joust_oa_route_affinity(j->route, &out->image_sends, &out->image_repeats);
    out->affinity_window = (uint64_t)joust_oa_route_window(j->route);
    out->workers = 1;
}

static void oa_destroy(void *impl)
{
    oa_judge *j = impl;
    if (!j)
        return;
    if (j->http) {
        joust_oa_stats s;
        collect_stats(j, &s);
        if (s.requests) {
            uint64_t hit = s.cache_hits + s.cache_misses;
            log_info("openai judge: %" PRIu64 " requests, %" PRIu64 " retries, %" PRIu64
                     " results (%" PRIu64 " ok); image cache hit rate %.1f%%; images to an "
                     "endpoint that had just seen them %.1f%%",
                     s.requests, s.retries, s.matches, s.ok,
                     hit ? 100.0 * (double)s.cache_hits / (double)hit : 0.0,
                     s.image_sends ? 100.0 * (double)s.image_repeats / (double)s.image_sends : 0.0);
            for (int e = 0; e < j->nurls; e++) {
                joust_oa_ep_stats es;
                joust_oa_route_ep_stats(j->route, e, &es);
                log_info("openai judge: endpoint %s: %" PRIu64 " requests, %" PRIu64
                         " failed, %" PRIu64 " throttled, set aside %" PRIu64 " times",
                         j->urls[e], es.sent, es.failed, es.throttled, es.set_aside);
            }
        }
        if (j->stats_path && joust_oa_stats_write(&s, j->stats_path) < 0)
            log_warn("openai judge: cannot write statistics to %s", j->stats_path);
    }
    if (j->pending.len || j->flying.len)
        log_warn("openai judge: %zu matches still queued and %zu in flight at exit", j->pending.len,
                 j->flying.len);
    for (oa_match *m = j->pending.head; m; m = m->next)
        log_debug("openai judge: left queued: match %" PRIu64 " attempt %u, not before %lld (now %lld)",
                  m->match_id, m->attempt, (long long)m->not_before_ms, (long long)joust_now_ms());
    joust_oa_http_destroy(&j->http); /* before the matches it points to */
    mlist *lists[2] = {&j->pending, &j->flying};
    for (int k = 0; k < 2; k++)
        while (lists[k]->head) {
            oa_match *m = lists[k]->head;
            list_unlink(lists[k], m);
            match_free(m);
        }
    for (size_t i = j->rhead; i < j->rlen; i++)
        joust_judge_res_clear(&j->ready[i]);
    free(j->ready);
    joust_u64map_free(&j->group);
    joust_oa_route_destroy(&j->route);
    joust_oa_prep_destroy(&j->prep);
    joust_fetch_destroy(&j->fetch);
    joust_oa_template_destroy(&j->tmpl);
    joust_oa_template_destroy(&j->tmpl_caption);
    joust_path_roots_free(&j->roots);
    for (int i = 0; i < j->nurls; i++)
        free(j->urls[i]);
    free(j->urls);
    free(j->model);
    free(j->stats_path);
    free(j->why);
    free(j->state);
    free(j->probe_tag);
    free(j->logged_ms);
    free(j);
}

static const joust_judge_ops openai_ops = {
    .name = "openai",
    .submit = oa_submit,
    .poll = oa_poll,
    .inflight = oa_inflight,
    .destroy = oa_destroy,
    .health = oa_health,
    .set_wake_fd = oa_set_wake_fd,
};

int joust_judge_openai_stats(joust_judge_t *jd, joust_oa_stats *out)
{
    if (!jd || jd->ops != &openai_ops)
        return JOUST_EINVAL;
    collect_stats(jd->impl, out);
    return 0;
}

int joust_judge_openai_ep_stats(joust_judge_t *jd, int e, joust_oa_ep_stats *out)
{
    if (!jd || jd->ops != &openai_ops)
        return JOUST_EINVAL;
    oa_judge *j = jd->impl;
    if (e < 0 || e >= j->nurls)
        return JOUST_EINVAL;
    joust_oa_route_ep_stats(j->route, e, out);
    return 0;
}

/* Endpoint entries may each hold a comma-separated list. */
static void split_endpoints(oa_judge *j, const joust_judge_config *cfg)
{
    j->nurls = joust_judge_split_endpoints(cfg, &j->urls);
}

int joust_judge_split_endpoints(const joust_judge_config *cfg, char ***urls)
{
    int n = 0;
    *urls = NULL;
    for (int i = 0; i < cfg->n_endpoints && i < JOUST_JUDGE_MAX_ENDPOINTS; i++) {
        const char *s = cfg->endpoints[i];
        while (s && *s) {
            size_t k = strcspn(s, ",");
            const char *a = s;
            size_t l = k;
            while (l && (*a == ' ' || *a == '\t'))
                a++, l--;
            while (l && (a[l - 1] == ' ' || a[l - 1] == '\t'))
                l--;
            if (l && n < JOUST_OA_MAX_ENDPOINTS) {
                *urls = xrealloc(*urls, (size_t)(n + 1) * sizeof **urls);
                (*urls)[n++] = xstrndup(a, l);
            }
            s += k + (s[k] == ',');
        }
    }
    return n;
}

int joust_judge_openai_new(const joust_judge_config *cfg, joust_judge_t **out)
{
    if (!cfg || !out)
        return JOUST_EINVAL;
    oa_judge *j = xcalloc(1, sizeof *j);
    j->cfg = *cfg;
    /* The config's strings are borrowed: keep only what poll needs. */
    j->cfg.template_path = j->cfg.image_root = j->cfg.api_key_env = NULL;
    j->cfg.model = j->cfg.mode = j->cfg.stats_path = NULL;
    j->cfg.allow_roots = NULL;
    j->cfg.n_allow_roots = 0;
    j->cfg.n_endpoints = 0;
    int rc = 0;
    char why[512] = "";
    joust_oa_mode mode = JOUST_OA_REASON;
    split_endpoints(j, cfg);
    if (j->cfg.inflight < 1)
        j->cfg.inflight = 64;
    if (j->cfg.timeout_ms < 1)
        j->cfg.timeout_ms = 120000;
    if (j->cfg.max_retries < 0)
        j->cfg.max_retries = 0;
    if (j->cfg.max_unparseable < 0)
        j->cfg.max_unparseable = 0;
    if (j->cfg.unavailable_hold_ms < 0)
        j->cfg.unavailable_hold_ms = 0;
    if (j->nurls == 0) {
        snprintf(why, sizeof why, "no endpoint (--endpoint http://HOST:PORT/v1)");
        rc = JOUST_EINVAL;
    } else if (cfg->mode && strcmp(cfg->mode, "reason") && strcmp(cfg->mode, "direct")) {
        snprintf(why, sizeof why, "unknown mode '%s' (reason | direct)", cfg->mode);
        rc = JOUST_EINVAL;
    }
    if (rc == 0)
        rc = joust_path_roots_init(&j->roots, cfg->allow_roots, cfg->n_allow_roots, why, sizeof why);
    if (rc == 0) {
        mode = cfg->mode && !strcmp(cfg->mode, "direct") ? JOUST_OA_DIRECT : JOUST_OA_REASON;
        rc = cfg->template_path && *cfg->template_path
                 ? joust_oa_template_load(cfg->template_path, &j->tmpl, why, sizeof why)
                 : joust_oa_template_parse(joust_oa_template_default(mode), &j->tmpl, why, sizeof why);
    }
    if (rc == 0 && !joust_oa_template_captions(j->tmpl)) /* else tmpl serves both */
        rc = joust_oa_template_parse(joust_oa_template_caption_default(mode), &j->tmpl_caption,
                                     why, sizeof why);
    if (rc == 0) {
        if (!joust_oa_template_prefix_shared(j->tmpl))
            log_warn("openai judge: the template puts {image1} before {prompt}: matches share "
                     "no prefix, the server's prefix cache cannot help");
        const char *key_env = cfg->api_key_env && *cfg->api_key_env ? cfg->api_key_env : "OPENAI_API_KEY";
        const char *key = getenv(key_env);
        joust_oa_http_config hc = {
            .urls = (const char *const *)j->urls, .n_urls = j->nurls, .api_key = key,
            .timeout_ms = j->cfg.timeout_ms,
            .connect_timeout_ms = j->cfg.timeout_ms < 10000 ? j->cfg.timeout_ms : 10000,
            .max_inflight = j->cfg.inflight + j->nurls, /* a probe slot per endpoint */
            .max_body = 16u << 20};
        if ((rc = joust_oa_http_new(&hc, &j->http)) < 0)
            snprintf(why, sizeof why, "cannot start libcurl");
    }
    if (rc < 0) {
        log_error("openai judge: %s", why);
        oa_destroy(j);
        return rc;
    }
    j->model = cfg->model ? xstrdup(cfg->model) : NULL;
    j->params = (joust_oa_params){
        .model = j->model,
        .temperature = cfg->temperature,
        .max_tokens = cfg->max_tokens > 0 ? cfg->max_tokens : mode == JOUST_OA_DIRECT ? 1 : 1024,
        .top_logprobs = cfg->top_logprobs > 0 ? cfg->top_logprobs : 0};
    j->route = joust_oa_route_new(j->nurls, j->cfg.inflight, FAIL_THRESHOLD, AFFINITY_WINDOW);
    j->why = xcalloc((size_t)j->nurls, sizeof *j->why);
    j->state = xcalloc((size_t)j->nurls, sizeof *j->state);
    j->probe_tag = xcalloc((size_t)j->nurls, 1);
    j->logged_ms = xcalloc((size_t)j->nurls, sizeof *j->logged_ms);
    int64_t now = joust_now_ms();
    for (int e = 0; e < j->nurls; e++) { /* nothing is sent before a probe says up */
        joust_oa_route_set_down(j->route, e, now);
        j->state[e] = JOUST_OA_DOWN;
    }
    j->unavail_since_ms = now;
    joust_oa_prep_config pc = {.min_pixels = MIN_PIXELS, .max_pixels = cfg->max_pixels,
                               .factor = 28, .jpeg_quality = 90,
                               .max_entries = cfg->cache_entries ? cfg->cache_entries : 4096,
                               .max_bytes = CACHE_BYTES, .image_root = cfg->image_root,
                               .roots = &j->roots};
    joust_fetch_config fc = {.s3_endpoint = cfg->s3_endpoint, .cache_dir = cfg->fetch_cache_dir,
                             .cache_mb = cfg->fetch_cache_mb};
    j->fetch = joust_fetch_new(&fc);
    pc.fetch_remote = joust_fetch_remote;
    pc.fetch_ctx = j->fetch;
    j->prep = joust_oa_prep_new(&pc);
    joust_u64map_init(&j->group);
    joust_rng_seed(&j->rng, cfg->seed ^ (uint64_t)getpid());
    if (cfg->stats_path && *cfg->stats_path)
        j->stats_path = xstrdup(cfg->stats_path);
    log_info("openai judge: %d endpoint%s, model %s, %s mode, %d in flight", j->nurls,
             j->nurls == 1 ? "" : "s", j->params.model ? j->params.model : "(none)",
             mode == JOUST_OA_DIRECT ? "direct" : "reason", j->cfg.inflight);
    joust_judge_t *jd = xmalloc(sizeof *jd);
    jd->ops = &openai_ops;
    jd->impl = j;
    *out = jd;
    return 0;
}
