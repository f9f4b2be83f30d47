/* The openai judge's statistics as JSON and as text; see judge_openai.h.
 * One table of fields drives writing, reading and summing. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "judge_openai.h"

static const struct {
    const char *name;
    size_t off;
    int is_max; /* combined by max, not by sum */
} fields[] = {
#define F(x) {#x, offsetof(joust_oa_stats, x), 0}
    F(matches), F(ok), F(image_errors), F(judge_errors), F(unparseable), F(requests), F(retries),
    F(http_429), F(http_5xx), F(http_4xx), F(timeouts), F(conn_errors), F(bad_bodies),
    F(unparseable_replies), F(hard_fallbacks), F(bounded), F(cache_hits), F(cache_misses),
    F(image_sends), F(image_repeats), F(prompt_tokens), F(completion_tokens), F(workers),
#undef F
    {"affinity_window", offsetof(joust_oa_stats, affinity_window), 1},
    {"max_inflight", offsetof(joust_oa_stats, max_inflight), 1},
};

#define NFIELDS (sizeof fields / sizeof *fields)

static uint64_t *field(joust_oa_stats *s, size_t i) { return (uint64_t *)((char *)s + fields[i].off); }

int joust_oa_stats_write(const joust_oa_stats *s, const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return JOUST_EIO;
    joust_oa_stats c = *s;
    fputc('{', f);
    for (size_t i = 0; i < NFIELDS; i++)
        fprintf(f, "%s\"%s\":%llu", i ? "," : "", fields[i].name,
                (unsigned long long)*field(&c, i));
    fputs("}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        remove(tmp);
        return JOUST_EIO;
    }
    return 0;
}

int joust_oa_stats_add_file(joust_oa_stats *sum, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return JOUST_ENOTFOUND;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return JOUST_ECORRUPT;
    }
    for (size_t i = 0; i < NFIELDS; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, fields[i].name);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0)
            continue;
        uint64_t x = (uint64_t)v->valuedouble, *d = field(sum, i);
        *d = fields[i].is_max ? (x > *d ? x : *d) : *d + x;
    }
    cJSON_Delete(root);
    return 0;
}

static double pct(uint64_t a, uint64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

void joust_oa_stats_print(const joust_oa_stats *s, FILE *out)
{
    fprintf(out,
            "openai judge (%llu worker%s): %llu requests for %llu matches, %llu retried "
            "(429: %llu, 5xx: %llu, timeouts: %llu, connection: %llu, bad bodies: %llu, "
            "unparseable: %llu); most in flight at once: %llu\n",
            (unsigned long long)s->workers, s->workers == 1 ? "" : "s",
            (unsigned long long)s->requests, (unsigned long long)s->matches,
            (unsigned long long)s->retries, (unsigned long long)s->http_429,
            (unsigned long long)s->http_5xx, (unsigned long long)s->timeouts,
            (unsigned long long)s->conn_errors, (unsigned long long)s->bad_bodies,
            (unsigned long long)s->unparseable_replies, (unsigned long long)s->max_inflight);
    fprintf(out,
            "  outcomes: %llu ok (%llu hard answers without logprobs, %llu bounded), %llu image "
            "errors, %llu judge errors, %llu unparseable; tokens %llu prompt + %llu completion\n",
            (unsigned long long)s->ok, (unsigned long long)s->hard_fallbacks,
            (unsigned long long)s->bounded, (unsigned long long)s->image_errors,
            (unsigned long long)s->judge_errors, (unsigned long long)s->unparseable,
            (unsigned long long)s->prompt_tokens, (unsigned long long)s->completion_tokens);
    fprintf(out,
            "  image cache hit rate %.1f%% (%llu hits, %llu prepared); images sent to an endpoint "
            "that had just seen them (within its last %llu requests): %.1f%% of %llu\n",
            pct(s->cache_hits, s->cache_hits + s->cache_misses), (unsigned long long)s->cache_hits,
            (unsigned long long)s->cache_misses, (unsigned long long)s->affinity_window,
            pct(s->image_repeats, s->image_sends), (unsigned long long)s->image_sends);
}
