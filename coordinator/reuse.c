#include "reuse.h"

#include <string.h>

#include "buf.h"
#include "hash.h"

/* Settings that change how a judgement is fetched, never what it says. */
static const char *const operational[] = {
    "endpoint", "image-root", "fetch-cache", "fetch-cache-mb", "sim-latency-ms", "inflight",
    "request-timeout-ms", "max-retries", "api-key-env", "judge-stats"};

static int is_operational(const char *tok, size_t len)
{
    size_t name = 0;
    while (name < len && tok[name] != '=')
        name++;
    for (size_t i = 0; i < sizeof operational / sizeof *operational; i++)
        if (strlen(operational[i]) == name && !strncmp(tok, operational[i], name))
            return 1;
    return 0;
}

uint64_t joust_reuse_salt(const Joust__RunRecord *run)
{
    joust_buf_t b = {0};
    joust_buf_puts(&b, run->judge);
    joust_buf_puts(&b, "\n");
    const char *s = run->judge_options ? run->judge_options : "";
    while (*s) {
        size_t len = strcspn(s, " ");
        if (len && !is_operational(s, len)) {
            joust_buf_printf(&b, "%.*s\n", (int)len, s);
        }
        s += len;
        s += *s == ' ';
    }
    uint64_t h = joust_hash64(b.data, b.len);
    joust_buf_free(&b);
    return h;
}

uint64_t joust_reuse_key(uint64_t salt, const char *prompt, uint64_t first_content,
                         uint64_t second_content)
{
    uint64_t parts[4] = {salt, joust_hash64(prompt, strlen(prompt)), first_content,
                         second_content};
    return joust_hash64(parts, sizeof parts);
}
