/* The openai judge in the `joust` command: the options `joust run` passes
 * to its local workers, and the statistics those workers leave behind for
 * the run summary (request and retry counts, in-flight high-water mark,
 * image cache hit rate, the share of images sent to an endpoint that had
 * just seen them). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "judge_openai.h"
#include "log.h"

int cli_openai_worker_args(const cli_opts *o, const char *stats_dir, int i, cli_openai_args *b,
                           char **args, int k, int max)
{
    const joust_judge_config *c = &o->jcfg;
    snprintf(b->temp, sizeof b->temp, "%.17g", c->temperature);
    snprintf(b->max_tokens, sizeof b->max_tokens, "%d", c->max_tokens);
    snprintf(b->top, sizeof b->top, "%d", c->top_logprobs);
    snprintf(b->inflight, sizeof b->inflight, "%d", c->inflight);
    snprintf(b->timeout, sizeof b->timeout, "%d", c->timeout_ms);
    snprintf(b->retries, sizeof b->retries, "%d", c->max_retries);
    snprintf(b->unparse, sizeof b->unparse, "%d", c->max_unparseable);
    snprintf(b->wait_ready, sizeof b->wait_ready, "%d", o->wait_ready_s);
    const char *pairs[][2] = {
        {"--model", c->model}, {"--mode", c->mode}, {"--template", c->template_path},
        {"--temperature", b->temp}, {"--max-tokens", b->max_tokens}, {"--top-logprobs", b->top},
        {"--inflight", b->inflight}, {"--request-timeout-ms", b->timeout},
        {"--api-key-env", c->api_key_env}, {"--max-retries", b->retries},
        {"--unparseable-retries", b->unparse},
        {"--wait-ready", o->wait_ready_s >= 0 ? b->wait_ready : NULL}};
    for (int e = 0; e < c->n_endpoints && k + 3 < max; e++) {
        args[k++] = "--endpoint";
        args[k++] = (char *)c->endpoints[e];
    }
    for (size_t p = 0; p < sizeof pairs / sizeof *pairs && k + 3 < max; p++)
        if (pairs[p][1]) {
            args[k++] = (char *)pairs[p][0];
            args[k++] = (char *)pairs[p][1];
        }
    if (!c->hard_fallback && k + 2 < max)
        args[k++] = "--no-hard-fallback";
    if (stats_dir && stats_dir[0] && k + 3 < max) {
        snprintf(b->stats, sizeof b->stats, "%s/worker-%d.json", stats_dir, i + 1);
        args[k++] = "--judge-stats";
        args[k++] = b->stats;
    }
    return k;
}

void cli_openai_describe(const cli_opts *o, char *out, size_t outlen)
{
    const joust_judge_config *c = &o->jcfg;
    snprintf(out, outlen, " model=%.200s mode=%s temperature=%g top_logprobs=%d template=%.200s",
             c->model ? c->model : "", c->mode ? c->mode : "reason", c->temperature,
             c->top_logprobs, c->template_path ? c->template_path : "(built-in)");
}

void cli_openai_stats_dir(char *out, size_t outlen)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, outlen, "%s/joust-stats.XXXXXX", tmp && *tmp && strlen(tmp) < outlen - 24 ? tmp : "/tmp");
    if (!mkdtemp(out)) {
        log_warn("cannot make a directory for the workers' statistics (%s)", out);
        out[0] = '\0';
    }
}

void cli_openai_report(const cli_opts *o, const char *dir, int nworkers, int print)
{
    joust_oa_stats sum = {0};
    int found = 0;
    char path[512];
    for (int i = 0; i < nworkers; i++) {
        snprintf(path, sizeof path, "%s/worker-%d.json", dir, i + 1);
        if (joust_oa_stats_add_file(&sum, path) == 0)
            found++;
        unlink(path);
    }
    /* Anything else left there (a .tmp of a killed worker) goes too. */
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
    if (!found)
        return;
    if (print)
        joust_oa_stats_print(&sum, stdout);
    if (o->jcfg.stats_path && joust_oa_stats_write(&sum, o->jcfg.stats_path) < 0)
        log_warn("cannot write the judge statistics to %s", o->jcfg.stats_path);
}
