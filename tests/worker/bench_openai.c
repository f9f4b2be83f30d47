/* Benchmark (not a test): how many requests per second one openai judge
 * sustains against stand-in servers that answer at once, and its CPU time
 * per request. It drives the judge as the worker loop does: submit up to
 * `slots` matches, poll with timeout 0, and sleep 1 ms when nothing came
 * back (zmq_poll's timeout in worker.c), or with --block, let the judge
 * wait in curl_multi_poll instead.
 *
 * usage: bench_openai URL[,URL...] [--requests N] [--inflight K]
 *        [--images M] [--side PX] [--mode reason|direct] [--block]
 *        [--reason-tokens T] [--top-logprobs K] [--idle S]
 * Images are prepared before the clock starts (the cache is warm), so the
 * figures are the HTTP/JSON path: request body, libcurl, reply parsing.
 *
 * --reason-tokens T first times the reply parse alone on a vLLM-shaped
 * reason reply of T tokens with top_logprobs 20 on every token, side by
 * side: a whole cJSON tree of the body (what the parser built before) and
 * joust_oa_parse_reply (which scans the logprobs in place). Start the
 * stand-in with the same --reason-tokens for the end-to-end figure.
 *
 * --idle S measures the CPU a worker spends per second while it waits for
 * replies: `inflight` matches against a server that does not answer for
 * long (start it with --always-delay-ms 600000), S seconds each with the
 * old worker loop (poll 0, then a 1 ms sleep: worker.c's zmq_poll before)
 * and with the judge sleeping in its own poll (worker.c now). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <math.h>

#include "buf.h"
#include "clock.h"
#include "image.h"
#include "judge.h"
#include "judge_openai.h"
#include "openai_parse.h"

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* A reason-mode reply as vLLM shapes it: reasoning, answer, and for every
 * token its logprob, bytes and top_logprobs entries (k alternatives). */
static void vllm_reply(int tokens, int k, joust_buf_t *b)
{
    joust_buf_t content = {0}, lp = {0};
    joust_buf_puts(&content, "<think>");
    joust_buf_puts(&lp, "{\"content\":[");
    for (int i = 0; i < tokens; i++) {
        const char *t = i == 0 ? "<think>" : i == tokens - 4 ? "</think>" : i == tokens - 3 ? "<answer>"
                        : i == tokens - 2 ? "1" : i == tokens - 1 ? "</answer>" : " word";
        if (i > 0)
            joust_buf_puts(&content, t);
        joust_buf_printf(&lp, "%s{\"token\":\"%s\",\"logprob\":-0.0123456789,\"bytes\":[", i ? "," : "", t);
        for (const char *c = t; *c; c++)
            joust_buf_printf(&lp, "%s%d", c == t ? "" : ",", (unsigned char)*c);
        joust_buf_puts(&lp, "],\"top_logprobs\":[");
        for (int a = 0; a < k; a++) {
            const char *alt = a == 0 ? t : i == tokens - 2 && a == 1 ? "2" : i == tokens - 2 && a == 2 ? " 1" : " alt";
            joust_buf_printf(&lp, "%s{\"token\":\"%s\",\"logprob\":%.10f,\"bytes\":[32,97,108,116]}",
                             a ? "," : "", alt, a == 0 ? -0.0123456789 : -1.5 - a * 0.731);
        }
        joust_buf_puts(&lp, "]}");
    }
    joust_buf_puts(&lp, "]}");
    joust_buf_puts(b, "{\"id\":\"chatcmpl-x\",\"object\":\"chat.completion\",\"created\":1,"
                      "\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                      "\"assistant\",\"reasoning_content\":null,\"content\":");
    joust_buf_json_str(b, content.data);
    joust_buf_puts(b, ",\"tool_calls\":[]},\"logprobs\":");
    joust_buf_append(b, lp.data, lp.len);
    joust_buf_printf(b, ",\"finish_reason\":\"stop\",\"stop_reason\":null}],\"usage\":{"
                        "\"prompt_tokens\":900,\"total_tokens\":%d,\"completion_tokens\":%d}}",
                     900 + tokens, tokens);
    joust_buf_free(&content);
    joust_buf_free(&lp);
}

/* CPU per parse of one T-token reply: the whole cJSON tree vs the scan. */
static int bench_parse(int tokens)
{
    joust_buf_t b = {0};
    vllm_reply(tokens, 20, &b);
    joust_oa_reply r;
    char err[256];
    if (joust_oa_parse_reply(b.data, b.len, &r, err, sizeof err) != 0 || !r.soft || r.answer != 1) {
        fprintf(stderr, "bench_parse: the synthetic reply does not parse: %s\n", err);
        return 1;
    }
    joust_oa_reply_clear(&r);
    int iters = 200;
    double c0 = cpu_s();
    for (int i = 0; i < iters; i++)
        cJSON_Delete(cJSON_ParseWithLength(b.data, b.len));
    double tree = (cpu_s() - c0) / iters;
    c0 = cpu_s();
    for (int i = 0; i < iters; i++) {
        joust_oa_parse_reply(b.data, b.len, &r, err, sizeof err);
        joust_oa_reply_clear(&r);
    }
    double scan = (cpu_s() - c0) / iters;
    printf("reply parse, %d-token reason reply with top_logprobs 20 (%zu bytes): whole cJSON tree "
           "(before) %.0f us CPU, joust_oa_parse_reply (after) %.0f us CPU\n",
           tokens, b.len, tree * 1e6, scan * 1e6);
    joust_buf_free(&b);
    return 0;
}

/* CPU per second while `inflight` requests wait for replies that do not
 * come: the old worker loop vs a judge that sleeps in its poll. */
static int bench_idle(joust_judge_t *j, char (*paths)[128], int nimg, int inflight, int secs)
{
    for (int m = 0; m < inflight; m++) {
        int a = m % nimg, b = (a + 1) % nimg;
        joust_judge_req req = {.match_id = (uint64_t)m + 1, .attempt = 1, .prompt = "idle",
                               .first = {(uint64_t)a + 1, paths[a], 0, 0},
                               .second = {(uint64_t)b + 1, paths[b], 0, 0}};
        joust_judge_submit(j, &req);
    }
    joust_judge_res res[64];
    for (int64_t end = joust_now_ms() + 2000; joust_now_ms() < end;) /* send them */
        joust_judge_poll(j, res, 64, 10);
    double per_s[2];
    for (int mode = 0; mode < 2; mode++) {
        double c0 = cpu_s();
        int64_t t0 = joust_now_us();
        while (joust_now_us() - t0 < (int64_t)secs * 1000000) {
            int n = joust_judge_poll(j, res, 64, mode ? 250 : 0);
            for (int i = 0; i < n; i++)
                joust_judge_res_clear(&res[i]);
            if (!mode && n == 0)
                usleep(1000);
        }
        per_s[mode] = (cpu_s() - c0) / ((double)(joust_now_us() - t0) / 1e6);
    }
    printf("waiting for %d replies: %.1f ms CPU per second with the 1 ms loop (before), "
           "%.2f ms CPU per second sleeping in the judge's poll (after)\n",
           inflight, per_s[0] * 1e3, per_s[1] * 1e3);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_openai URL[,URL...] [--requests N] [--inflight K] "
                        "[--images M] [--side PX] [--mode reason|direct] [--block]\n");
        return 2;
    }
    int requests = 20000, inflight = 64, nimg = 64, side = 112, block = 0, reason_tokens = 0;
    int idle = 0, top = 20;
    const char *mode = "reason";
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--block"))
            block = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--requests"))
            requests = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--inflight"))
            inflight = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--images"))
            nimg = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--side"))
            side = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--mode"))
            mode = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--reason-tokens"))
            reason_tokens = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--top-logprobs"))
            top = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--idle"))
            idle = atoi(argv[++i]);
    }
    if (reason_tokens > 0 && bench_parse(reason_tokens) != 0)
        return 1;
    char dir[] = "/tmp/joust-bench-oa.XXXXXX";
    if (!mkdtemp(dir) || nimg < 2)
        return 1;
    char(*paths)[128] = calloc((size_t)nimg, sizeof *paths);
    for (int i = 0; i < nimg; i++) {
        joust_image img = {side, side, malloc((size_t)side * side * 3)};
        for (int k = 0; k < side * side * 3; k++)
            img.rgb[k] = (unsigned char)(k * (i + 1) + (k / 3 / side) * 5);
        snprintf(paths[i], sizeof paths[i], "%s/%d.jpg", dir, i);
        joust_image_save_jpeg(paths[i], &img, 90);
        joust_image_free(&img);
    }
    joust_judge_config cfg;
    joust_judge_config_defaults(&cfg);
    cfg.endpoints[0] = argv[1];
    cfg.n_endpoints = 1;
    cfg.inflight = inflight;
    cfg.model = "bench";
    cfg.mode = mode;
    cfg.timeout_ms = 30000;
    cfg.top_logprobs = top;
    joust_judge_t *j;
    if (joust_judge_new("openai", &cfg, &j) != 0)
        return 1;
    joust_judge_res res[256];
    uint64_t next = 1, done = 0, ok = 0;
    if (idle > 0) {
        bench_idle(j, paths, nimg, inflight, idle);
        goto out;
    }
    int slots = 2 * inflight;
    int warm = nimg; /* the first matches prepare every image */
    double c0 = 0;
    int64_t t0 = 0;
    while (done < (uint64_t)(requests + warm)) {
        while (joust_judge_inflight(j) < (size_t)slots && next <= (uint64_t)(requests + warm)) {
            int a = (int)(next % (uint64_t)nimg), b = (int)((next / (uint64_t)nimg + 1 + (uint64_t)a) % (uint64_t)nimg);
            if (a == b)
                b = (b + 1) % nimg;
            joust_judge_req req = {.match_id = next, .attempt = 1, .prompt_id = 1,
                                   .prompt = "a benchmark prompt about a red bicycle",
                                   .first = {(uint64_t)a + 1, paths[a], 0, 0},
                                   .second = {(uint64_t)b + 1, paths[b], 0, 0}};
            joust_judge_submit(j, &req);
            next++;
        }
        int n = joust_judge_poll(j, res, 256, block ? 100 : 0);
        for (int i = 0; i < n; i++) {
            ok += res[i].status == JOUST_STATUS_OK;
            joust_judge_res_clear(&res[i]);
        }
        done += (uint64_t)(n > 0 ? n : 0);
        if (!t0 && done >= (uint64_t)warm) {
            t0 = joust_now_us();
            c0 = cpu_s();
        }
        if (n == 0 && !block)
            usleep(1000);
    }
    double wall = (double)(joust_now_us() - t0) / 1e6, cpu = cpu_s() - c0;
    joust_oa_stats st;
    joust_judge_openai_stats(j, &st);
    printf("%d requests (%s mode, %d in flight, %s, %dx%d JPEG images): %.0f req/s wall, %.1f us CPU per "
           "request (%.0f req/s per client core), %llu ok, %llu retries, max in flight %llu\n",
           requests, mode, inflight, block ? "curl_multi_poll waits" : "worker-style 1 ms loop", side,
           side, (double)requests / wall, 1e6 * cpu / requests, requests / cpu,
           (unsigned long long)ok, (unsigned long long)st.retries,
           (unsigned long long)st.max_inflight);
out:
    joust_judge_destroy(&j);
    for (int i = 0; i < nimg; i++)
        unlink(paths[i]);
    rmdir(dir);
    free(paths);
    return idle > 0 || ok == (uint64_t)(requests + warm) ? 0 : 1;
}
