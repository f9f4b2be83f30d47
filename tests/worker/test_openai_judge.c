/* The openai judge against the stand-in OpenAI-compatible server
 * (tests/fixtures/openai_server.py), driven through the judge interface
 * as the worker drives it: every fault mode ends with every match answered
 * (no match lost), retries honour Retry-After, a worker holds 64 requests
 * in flight, a dead endpoint is set aside while a live one takes the load,
 * images that cannot be read fail as IMAGE_ERROR, soft p equals the
 * server's, and the server never sees an invalid request. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "err.h"
#include "image.h"
#include "judge.h"
#include "judge_openai.h"

extern char **environ;

#define NIMG 8

static char dir[] = "/tmp/joust-oa-judge.XXXXXX";
static char img_path[NIMG][128];

typedef struct {
    pid_t pid;
    int port;
    char url[64];
} server;

static int server_start(server *s, const char *const *extra)
{
    char portfile[160];
    snprintf(portfile, sizeof portfile, "%s/port.%d", dir, rand());
    const char *args[48] = {"python3", OPENAI_SERVER, "--port-file", portfile, "--max-pixels",
                            "200704", "--expect", "Text prompt:", "--bias", "0.2"};
    int k = 10;
    for (int i = 0; extra && extra[i] && k < 46; i++)
        args[k++] = extra[i];
    args[k] = NULL;
    if (posix_spawnp(&s->pid, "python3", NULL, NULL, (char **)args, environ) != 0)
        return -1;
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            unlink(portfile);
            if (ok) {
                snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/v1", s->port);
                return 0;
            }
        }
        usleep(25000);
    }
    return -1;
}

static void server_stop(server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    size_t len = size * n;
    char *buf = arg;
    size_t have = strlen(buf);
    if (have + len < 8191) {
        memcpy(buf + have, data, len);
        buf[have + len] = '\0';
    }
    return len;
}

/* GET /_stats, or POST /_control with body; returns the JSON reply. */
static cJSON *admin(const server *s, const char *body)
{
    char url[128], buf[8192] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", s->port, body ? "_control" : "_stats");
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)buf);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    return cJSON_Parse(buf);
}

static double stat_num(const server *s, const char *name)
{
    cJSON *st = admin(s, NULL);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, name);
    double x = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(st);
    return x;
}

static void control(const server *s, const char *fault, int times, int delay_ms)
{
    char body[160];
    snprintf(body, sizeof body, "{\"fault\":\"%s\",\"times\":%d,\"delay_ms\":%d,\"retry_after\":1}",
             fault, times, delay_ms);
    cJSON_Delete(admin(s, body));
}

typedef struct {
    int n, ok, image_errors, judge_errors, unparseable, soft_match, soft, hard, reasons;
    int infra, config, kinds[4];
    char last_error[512];
    uint64_t failed_image;
} outcome;

/* Submits n matches over the test images (pairs in both orders, so many
 * share an image) and polls as the worker does until all are back. */
static void judge_matches(joust_judge_t *j, int n, const char *bad_uri, outcome *o)
{
    memset(o, 0, sizeof *o);
    for (int m = 0; m < n; m++) {
        int a = m % NIMG, b = (m / NIMG + 1 + a) % NIMG;
        joust_judge_req req = {.match_id = (uint64_t)m + 1, .attempt = 1, .prompt_id = 1,
                               .prompt = "a \"quoted\" test scene",
                               .first = {(uint64_t)a + 1, img_path[a], 0, 0},
                               .second = {(uint64_t)b + 1, img_path[b], 0, 0}};
        if (bad_uri && m == 0)
            req.second = (joust_judge_image){100, bad_uri, 0, 0};
        CHECK(joust_judge_submit(j, &req) == 0);
    }
    /* A safety net, not a timing check: a match held while the endpoint
     * is down comes back only after the judge's 30 s unavailable hold. */
    int64_t deadline = joust_now_ms() + 75000;
    joust_judge_res res[64];
    while (o->n < n && joust_now_ms() < deadline) {
        int k = joust_judge_poll(j, res, 64, 5);
        for (int i = 0; i < k; i++) {
            joust_judge_res *r = &res[i];
            o->n++;
            switch (r->status) {
            case JOUST_STATUS_OK: {
                o->ok++;
                o->kinds[r->kind >= 1 && r->kind <= 3 ? r->kind : 0]++;
                const char *pf = r->reason ? strstr(r->reason, "p_first=") : NULL;
                o->reasons += r->reason != NULL;
                if (r->p_first == 0.0 || r->p_first == 1.0)
                    o->hard++;
                else
                    o->soft++;
                if (pf && fabs(atof(pf + 8) - r->p_first) < 1e-6)
                    o->soft_match++;
                break;
            }
            case JOUST_STATUS_IMAGE_ERROR: o->image_errors++; o->failed_image = r->failed_image_id; break;
            case JOUST_STATUS_INFRA_ERROR: o->infra++; o->judge_errors++; break;
            case JOUST_STATUS_CONFIG_ERROR: o->config++; o->judge_errors++; break;
            case JOUST_STATUS_JUDGE_ERROR: o->judge_errors++; break;
            case JOUST_STATUS_UNPARSEABLE: o->unparseable++; break;
            }
            if (r->error)
                snprintf(o->last_error, sizeof o->last_error, "%s", r->error);
            joust_judge_res_clear(r);
        }
    }
    CHECK(joust_judge_inflight(j) == 0);
}

static joust_judge_t *make_judge(const char *const *urls, int n, void (*tweak)(joust_judge_config *))
{
    joust_judge_config cfg;
    joust_judge_config_defaults(&cfg);
    cfg.max_pixels = 200704;
    for (int i = 0; i < n; i++)
        cfg.endpoints[i] = urls[i];
    cfg.n_endpoints = n;
    cfg.model = "standin-model";
    cfg.timeout_ms = 5000;
    if (tweak)
        tweak(&cfg);
    joust_judge_t *j = NULL;
    CHECK(joust_judge_new("openai", &cfg, &j) == 0);
    return j;
}

static void short_timeout(joust_judge_config *c) { c->timeout_ms = 600; }
static void strict(joust_judge_config *c) { c->max_retries = 2; c->hard_fallback = 0; }
static void direct(joust_judge_config *c) { c->mode = "direct"; }
static void keyed(joust_judge_config *c) { c->api_key_env = "JOUST_TEST_KEY"; }

/* 64 requests in flight from one judge against a server that takes 500 ms. */
static void test_inflight(void)
{
    const char *extra[] = {"--always-delay-ms", "500", NULL};
    server s;
    CHECK_RC(server_start(&s, extra));
    const char *u[] = {s.url};
    joust_judge_t *j = make_judge(u, 1, NULL);
    outcome o;
    int64_t t0 = joust_now_ms();
    judge_matches(j, 192, NULL, &o);
    int64_t ms = joust_now_ms() - t0;
    joust_oa_stats st;
    CHECK_RC(joust_judge_openai_stats(j, &st));
    printf("inflight: %d matches in %lld ms, judge max in flight %llu, server max concurrent %.0f\n",
           o.n, (long long)ms, (unsigned long long)st.max_inflight, stat_num(&s, "max_concurrent"));
    CHECK(o.ok == 192 && o.soft_match == 192 && o.reasons == 192);
    CHECK(st.max_inflight == 64);
    CHECK(stat_num(&s, "max_concurrent") >= 64);
    CHECK(ms < 6000); /* 3 waves of 500 ms, not 192 */
    CHECK(st.cache_misses == NIMG && st.cache_hits == 2 * 192 - NIMG);
    CHECK(stat_num(&s, "invalid") == 0);
    joust_judge_destroy(&j);
    server_stop(&s);
}

static void test_faults(void)
{
    server s;
    CHECK_RC(server_start(&s, NULL));
    const char *u[] = {s.url};
    struct {
        const char *fault;
        int delay_ms;
        void (*tweak)(joust_judge_config *);
    } modes[] = {{"none", 0, NULL},        {"http500", 0, NULL},   {"http429", 0, NULL},
                 {"slow", 1500, short_timeout}, {"truncated", 0, NULL}, {"nologprobs", 0, NULL},
                 {"notags", 0, NULL},      {"split", 0, NULL},     {"reset", 0, NULL}};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        control(&s, modes[i].fault, 1, modes[i].delay_ms);
        joust_judge_t *j = make_judge(u, 1, modes[i].tweak);
        outcome o;
        int64_t t0 = joust_now_ms();
        judge_matches(j, 16, NULL, &o);
        joust_oa_stats st;
        joust_judge_openai_stats(j, &st);
        printf("fault %-10s: %d/16 ok in %4lld ms; %llu requests, %llu retries, hard %d, "
               "429 %llu, 5xx %llu, timeouts %llu, conn %llu, bad bodies %llu, unparseable %llu\n",
               modes[i].fault, o.ok, (long long)(joust_now_ms() - t0),
               (unsigned long long)st.requests, (unsigned long long)st.retries, o.hard,
               (unsigned long long)st.http_429, (unsigned long long)st.http_5xx,
               (unsigned long long)st.timeouts, (unsigned long long)st.conn_errors,
               (unsigned long long)st.bad_bodies, (unsigned long long)st.unparseable_replies);
        CHECK(o.n == 16 && o.ok == 16); /* no match lost, none failed */
        const char *f = modes[i].fault;
        int faulted = strcmp(f, "none") && strcmp(f, "nologprobs") && strcmp(f, "split");
        /* libcurl itself resends a request once when a kept-alive
         * connection turns out closed ("reset"), so that one may not reach
         * the judge as an error. */
        if (strcmp(f, "reset"))
            CHECK(st.requests == (faulted ? 32u : 16u));
        if (!strcmp(f, "nologprobs"))
            CHECK(o.hard == 16 && st.hard_fallbacks == 16 && o.kinds[JOUST_KIND_HARD] == 16);
        else
            CHECK(o.soft_match == 16 && o.kinds[JOUST_KIND_SOFT] == 16);
        if (!strcmp(f, "split") || !strcmp(f, "none"))
            CHECK(o.reasons == 16);
        if (!strcmp(f, "http500"))
            CHECK(st.http_5xx == 16);
        if (!strcmp(f, "http429")) {
            CHECK(st.http_429 == 16);
            CHECK(stat_num(&s, "min_retry_gap_ms") >= 1000); /* Retry-After: 1 */
        }
        if (!strcmp(f, "slow"))
            CHECK(st.timeouts == 16);
        if (!strcmp(f, "truncated"))
            CHECK(st.bad_bodies == 16);
        if (!strcmp(f, "notags"))
            CHECK(st.unparseable_replies == 16);
        if (!strcmp(f, "reset"))
            CHECK(st.conn_errors + st.requests >= 16);
        joust_judge_destroy(&j);
    }
    /* Faults that never pass: every match still comes back, failed with
     * the right class. */
    struct {
        const char *fault;
        joust_status want;
    } hard[] = {{"http500", JOUST_STATUS_INFRA_ERROR},
                {"notags", JOUST_STATUS_UNPARSEABLE},
                {"nologprobs", JOUST_STATUS_UNPARSEABLE}};
    for (size_t i = 0; i < sizeof hard / sizeof *hard; i++) {
        control(&s, hard[i].fault, -1, 0);
        joust_judge_t *j = make_judge(u, 1, strict);
        outcome o;
        judge_matches(j, 8, NULL, &o);
        printf("always %-10s: %d judge errors, %d unparseable; e.g. %s\n", hard[i].fault,
               o.judge_errors, o.unparseable, o.last_error);
        CHECK(o.n == 8);
        CHECK((hard[i].want == JOUST_STATUS_INFRA_ERROR ? o.judge_errors : o.unparseable) == 8);
        CHECK(hard[i].want != JOUST_STATUS_INFRA_ERROR || o.infra == 8);
        joust_oa_stats st;
        joust_judge_openai_stats(j, &st);
        /* 1 + 2 retries each; a 500 counts only while the endpoint is up
         * (it goes down after 3 in a row and a probe brings it back). */
        if (hard[i].want == JOUST_STATUS_INFRA_ERROR)
            CHECK(st.requests >= 8u * 3);
        else
            CHECK(st.requests == 8u * 3);
        joust_judge_destroy(&j);
    }
    control(&s, "none", 1, 0);
    CHECK(stat_num(&s, "invalid") == 0);
    server_stop(&s);
}

/* A dead endpoint is set aside; the live one judges everything. Two names
 * for the live server share the load, and matches sharing an image mostly
 * go to the endpoint that saw it last. */
static void test_endpoints(void)
{
    server s;
    CHECK_RC(server_start(&s, NULL));
    char other[64];
    snprintf(other, sizeof other, "http://localhost:%d/v1/", s.port);
    const char *u[] = {"http://127.0.0.1:9/v1", s.url, other}; /* port 9: nothing listens */
    joust_judge_t *j = make_judge(u, 3, NULL);
    outcome o;
    judge_matches(j, 64, NULL, &o);
    joust_oa_stats st;
    joust_judge_openai_stats(j, &st);
    printf("endpoints: %d/64 ok, %llu connection errors, %llu requests, affinity %.0f%% of %llu\n",
           o.ok, (unsigned long long)st.conn_errors, (unsigned long long)st.requests,
           100.0 * (double)st.image_repeats / (double)st.image_sends,
           (unsigned long long)st.image_sends);
    CHECK(o.ok == 64);
    /* The dead endpoint never gets a request: its probe (GET /models)
     * fails first, and it is only probed again, with backoff. */
    CHECK(st.conn_errors == 0);
    joust_oa_ep_stats es;
    CHECK(joust_judge_openai_ep_stats(j, 0, &es) == 0 && es.sent == 0);
    CHECK(st.image_repeats * 2 > st.image_sends);
    joust_judge_destroy(&j);
    CHECK(stat_num(&s, "invalid") == 0);
    server_stop(&s);
}

static void test_images_and_modes(void)
{
    const char *extra[] = {"--api-key", "sekrit", "--expect", "CUSTOM-MARKER", NULL};
    server s;
    CHECK_RC(server_start(&s, extra));
    const char *u[] = {s.url};
    char tpl[160];
    snprintf(tpl, sizeof tpl, "%s/template.txt", dir);
    FILE *f = fopen(tpl, "w");
    fputs("[system]\nCUSTOM-MARKER judge.\n[user]\nText prompt: {prompt}\n{image1}\n{image2}\n"
          "Answer in <answer></answer>.\n[assistant]\n<answer>\n", f);
    fclose(f);
    /* Without the key: the probe gets 401, the only endpoint is broken and
     * every match ends CONFIG_ERROR with the endpoint and the server's words. */
    unsetenv("JOUST_TEST_KEY");
    joust_judge_t *j = make_judge(u, 1, keyed);
    outcome o;
    judge_matches(j, 4, NULL, &o);
    printf("no key: %d config errors: %s\n", o.config, o.last_error);
    CHECK(o.config == 4 && strstr(o.last_error, "HTTP 401") && strstr(o.last_error, s.url) &&
          strstr(o.last_error, "invalid API key"));
    joust_judge_destroy(&j);
    setenv("JOUST_TEST_KEY", "sekrit", 1);
    CHECK(stat_num(&s, "invalid") == 0);
    /* The key, a template file and direct mode (prefill "<answer>"). */
    joust_judge_config cfg;
    joust_judge_config_defaults(&cfg);
    cfg.max_pixels = 200704;
    cfg.endpoints[0] = s.url;
    cfg.n_endpoints = 1;
    cfg.template_path = tpl;
    cfg.api_key_env = "JOUST_TEST_KEY";
    direct(&cfg);
    CHECK(joust_judge_new("openai", &cfg, &j) == 0);
    char corrupt[160];
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.png", dir);
    f = fopen(corrupt, "w");
    fputs("\x89PNG\r\n\x1a\nnot really", f);
    fclose(f);
    judge_matches(j, 16, corrupt, &o);
    printf("direct + template + key: %d ok, %d image errors (%s)\n", o.ok, o.image_errors, o.last_error);
    CHECK(o.ok == 15 && o.soft == 15 && o.reasons == 0);
    CHECK(o.image_errors == 1 && o.failed_image == 100 && strstr(o.last_error, "corrupt.png"));
    CHECK(stat_num(&s, "direct") == 15 && stat_num(&s, "invalid") == 0);
    joust_judge_destroy(&j);
    /* A missing file, and a bad configuration. */
    j = make_judge(u, 1, keyed);
    judge_matches(j, 2, "/nonexistent/x.jpg", &o);
    CHECK(o.image_errors == 1 && o.failed_image == 100);
    joust_judge_destroy(&j);
    cfg.template_path = "/nonexistent/template";
    CHECK(joust_judge_new("openai", &cfg, &j) == JOUST_EIO);
    cfg.template_path = NULL;
    cfg.n_endpoints = 0;
    CHECK(joust_judge_new("openai", &cfg, &j) == JOUST_EINVAL);
    server_stop(&s);
    unlink(tpl);
    unlink(corrupt);
}

static void hold_retries(joust_judge_config *c) { c->max_retries = 2; }
static void short_hold(joust_judge_config *c) { c->unavailable_hold_ms = 500; }

/* n matches on a judge against a fresh server started with extra options;
 * url gets the server's base URL. */
static void judge_on_new_server(const char *const *extra, int n, outcome *o, char url[64])
{
    server s;
    CHECK_RC(server_start(&s, extra));
    snprintf(url, 64, "%s", s.url);
    const char *u[] = {s.url};
    joust_judge_t *j = make_judge(u, 1, NULL);
    judge_matches(j, n, NULL, o);
    joust_judge_destroy(&j);
    server_stop(&s);
}

/* Endpoint health (issue 9.2) and failure classes (9.1): a server that
 * starts late, one that goes down for a while, one of two endpoints that
 * answers 401, a request the server refuses (CONFIG_ERROR), and images
 * the server rejects as too large (IMAGE_ERROR). */
static void test_health(void)
{
    char why[512];
    outcome o;
    /* Starts 2 s late: unavailable ("connection refused") until then; the
     * matches wait and none fails. */
    const char *late[] = {"--start-after", "2", NULL};
    server s;
    CHECK_RC(server_start(&s, late));
    const char *u[] = {s.url};
    joust_judge_t *j = make_judge(u, 1, NULL);
    joust_judge_poll(j, NULL, 0, 300);
    CHECK(joust_judge_health(j, why, sizeof why) == 1);
    printf("late start: %s\n", why);
    CHECK(strstr(why, "refused") != NULL || strstr(why, "connect") != NULL);
    int64_t t0 = joust_now_ms();
    judge_matches(j, 16, NULL, &o);
    printf("late start: %d/16 ok after %lld ms\n", o.ok, (long long)(joust_now_ms() - t0));
    CHECK(o.ok == 16 && joust_judge_health(j, why, sizeof why) == 0);
    /* Down for 1.5 s ("Empty reply from server") while 32 matches are in
     * flight, with max_retries 2: no match fails, none is given up. */
    control(&s, "slow", -1, 300);
    const char *body = "{\"down_for\": 1.5}";
    joust_judge_t *k = make_judge(u, 1, hold_retries);
    for (int m = 0; m < 32; m++) {
        int a = m % NIMG, b = (a + 1 + m / NIMG) % NIMG;
        joust_judge_req req = {.match_id = (uint64_t)m + 1, .attempt = 1, .prompt = "p",
                               .first = {(uint64_t)a + 1, img_path[a], 0, 0},
                               .second = {(uint64_t)b + 1, img_path[b], 0, 0}};
        CHECK(joust_judge_submit(k, &req) == 0);
    }
    joust_judge_res res[64];
    int got = 0, ok = 0, saw_unavailable = 0;
    for (int64_t end = joust_now_ms() + 30000; got < 32 && joust_now_ms() < end;) {
        if (got == 0 && joust_judge_inflight(k) == 32 && !saw_unavailable && stat_num(&s, "concurrent") > 0)
            cJSON_Delete(admin(&s, body)), saw_unavailable = -1;
        int n = joust_judge_poll(k, res, 64, 50);
        for (int i = 0; i < n; i++) {
            ok += res[i].status == JOUST_STATUS_OK;
            if (res[i].status != JOUST_STATUS_OK)
                printf("down: match %llu: %s\n", (unsigned long long)res[i].match_id, res[i].error);
            joust_judge_res_clear(&res[i]);
        }
        got += n;
        if (saw_unavailable == -1 && joust_judge_health(k, why, sizeof why) == 1) {
            saw_unavailable = 1;
            printf("down: %s\n", why);
        }
    }
    printf("down for 1.5 s: %d/32 ok, %.0f requests dropped\n", ok, stat_num(&s, "dropped"));
    CHECK(got == 32 && ok == 32 && saw_unavailable == 1 && stat_num(&s, "dropped") > 0);
    joust_judge_destroy(&k);
    /* Down for longer than the hold (here 500 ms): the held matches come
     * back INFRA_ERROR, never a final class, saying why. */
    k = make_judge(u, 1, short_hold);
    outcome held;
    memset(&held, 0, sizeof held);
    joust_judge_poll(k, NULL, 0, 200); /* the probe finds it up */
    cJSON_Delete(admin(&s, "{\"down_for\": 3}"));
    int64_t t1 = joust_now_ms();
    judge_matches(k, 8, NULL, &held);
    printf("down past the hold: %d infra errors after %lld ms: %s\n", held.infra,
           (long long)(joust_now_ms() - t1), held.last_error);
    CHECK(held.infra == 8 && strstr(held.last_error, "no endpoint answered for"));
    CHECK(joust_now_ms() - t1 < 2500); /* returned after the hold, not after the outage */
    joust_judge_destroy(&k);
    usleep(3000 * 1000); /* let the outage end */
    joust_judge_destroy(&j);
    control(&s, "none", 1, 0);
    /* One of two endpoints answers 401: it is left out, the other judges. */
    const char *keyed_srv[] = {"--api-key", "other-key", NULL};
    server bad;
    CHECK_RC(server_start(&bad, keyed_srv));
    const char *two[] = {bad.url, s.url};
    j = make_judge(two, 2, NULL);
    judge_matches(j, 16, NULL, &o);
    joust_oa_ep_stats es;
    CHECK(o.ok == 16 && joust_judge_openai_ep_stats(j, 0, &es) == 0 && es.sent == 0);
    CHECK(joust_judge_health(j, why, sizeof why) == 0);
    joust_judge_destroy(&j);
    server_stop(&bad);
    /* The model is not served: the endpoint is broken; matches end
     * CONFIG_ERROR naming it. */
    char url[64];
    const char *other_model[] = {"--model", "someone-else", NULL};
    judge_on_new_server(other_model, 2, &o, url);
    printf("model not served: %s\n", o.last_error);
    CHECK(o.config == 2 && strstr(o.last_error, "standin-model") && strstr(o.last_error, "someone-else"));
    /* A request the server refuses (its template check): CONFIG_ERROR
     * with the endpoint and the server's words. */
    const char *strict_srv[] = {"--expect", "NOT-IN-THE-TEMPLATE", NULL};
    judge_on_new_server(strict_srv, 2, &o, url);
    printf("refused request: %s\n", o.last_error);
    CHECK(o.config == 2 && strstr(o.last_error, "HTTP 400") && strstr(o.last_error, "template not applied") &&
          strstr(o.last_error, url));
    /* Images over the server's pixel budget: IMAGE_ERROR naming the image. */
    const char *small_budget[] = {"--max-pixels", "50000", NULL};
    judge_on_new_server(small_budget, 8, &o, url);
    printf("too large: %d image errors, %d ok: %s\n", o.image_errors, o.ok, o.last_error);
    CHECK(o.image_errors > 0 && o.image_errors + o.ok == 8 && o.judge_errors == 0);
    CHECK(o.failed_image != 0 && strstr(o.last_error, "too large"));
    server_stop(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir))
        return 1;
    for (int i = 0; i < NIMG; i++) {
        int w = 120 + 60 * i, h = 90 + 45 * ((i * 3) % NIMG); /* some over the budget */
        joust_image img = {w, h, malloc((size_t)w * h * 3)};
        for (int k = 0; k < w * h * 3; k++)
            img.rgb[k] = (unsigned char)((k * (i + 3)) ^ (k / 3 / w));
        snprintf(img_path[i], sizeof img_path[i], "%s/img%d.%s", dir, i, i % 2 ? "jpg" : "png");
        CHECK_RC(i % 2 ? joust_image_save_jpeg(img_path[i], &img, 85)
                       : joust_image_save_png(img_path[i], &img));
        joust_image_free(&img);
    }
    test_inflight();
    test_faults();
    test_endpoints();
    test_images_and_modes();
    test_health();
    for (int i = 0; i < NIMG; i++)
        unlink(img_path[i]);
    rmdir(dir);
    return test_report();
}
