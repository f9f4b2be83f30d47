/* Chat-completions responses for the openai judge; see openai_parse.h.
 * cJSON's getters are case-insensitive by default: only the
 * ...CaseSensitive ones are used, and every value's type is checked. */
#include "openai_parse.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "xalloc.h"

#define SENTINEL_LOGPROB (-9999.0) /* vLLM: unavailable / -inf */

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *get_str(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int joust_oa_choice_of(const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= 5 && (!strncmp(s, "Image", 5) || !strncmp(s, "image", 5) || !strncmp(s, "IMAGE", 5))) {
        s += 5, len -= 5;
        while (len && (isspace((unsigned char)*s) || *s == '#' || *s == ':'))
            s++, len--;
    }
    while (len > 1 && (s[len - 1] == '.' || s[len - 1] == ')'))
        len--;
    if (len == 1 && (*s == '1' || *s == '2'))
        return *s - '0';
    return 0;
}

static char *trimmed_dup(const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    return len ? xstrndup(s, len) : NULL;
}

/* The last occurrence of needle in [s, s+len), or NULL. */
static const char *last_of(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = len >= n ? len - n + 1 : 0; i-- > 0;)
        if (!memcmp(s + i, needle, n))
            return s + i;
    return NULL;
}

static void put_reasoning(joust_oa_reply *r, const char *a, const char *b, size_t blen)
{
    char *x = a ? trimmed_dup(a, strlen(a)) : NULL;
    char *y = b ? trimmed_dup(b, blen) : NULL;
    if (x && y) {
        size_t n = strlen(x) + strlen(y) + 2;
        r->reasoning = xmalloc(n);
        snprintf(r->reasoning, n, "%s\n%s", x, y);
        free(x);
        free(y);
    } else {
        r->reasoning = x ? x : y;
    }
}

/* Finds the hard answer in content; the reasoning goes to r. */
static int read_answer(joust_oa_reply *r, const char *rc_text, const char *content, char *err,
                       size_t errlen)
{
    size_t len = content ? strlen(content) : 0;
    const char *open = content ? strstr(content, "<think>") : NULL;
    const char *close = content ? strstr(content, "</think>") : NULL;
    const char *after = content;
    if (close) {
        const char *from = open && open < close ? open + 7 : content;
        put_reasoning(r, rc_text, from, (size_t)(close - from));
        after = close + 8;
    } else {
        put_reasoning(r, rc_text, NULL, 0);
        if (open) {
            snprintf(err, errlen, "the reasoning never ended (no </think>; finish_reason %s)",
                     r->finish_reason[0] ? r->finish_reason : "unknown");
            return JOUST_EFORMAT;
        }
    }
    if (!content) {
        snprintf(err, errlen, "the reply has no content");
        return JOUST_EFORMAT;
    }
    size_t alen = len - (size_t)(after - content);
    const char *tag = last_of(after, alen, "<answer>");
    const char *inner = tag ? tag + 8 : after;
    const char *end = strstr(inner, "</answer>");
    size_t ilen = end ? (size_t)(end - inner) : strlen(inner);
    int c = joust_oa_choice_of(inner, ilen);
    if (c) {
        r->answer = c;
        r->p_first = c == 1 ? 1.0 : 0.0;
        return 0;
    }
    char shown[96];
    snprintf(shown, sizeof shown, "%.*s", (int)(ilen < 80 ? ilen : 80), inner);
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    if (tag || end)
        snprintf(err, errlen, "the answer '%s' is not 1 or 2", shown);
    else
        snprintf(err, errlen, "no <answer> tag in the reply: '%s'", shown);
    return JOUST_EFORMAT;
}

static double lse(double a, double b)
{
    if (a == -INFINITY)
        return b;
    if (b == -INFINITY)
        return a;
    double m = a > b ? a : b;
    return m + log(exp(a - m) + exp(b - m));
}

static double logprob_of(const cJSON *e)
{
    const cJSON *v = get(e, "logprob");
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble <= SENTINEL_LOGPROB)
        return -INFINITY;
    return v->valuedouble > 0 ? 0 : v->valuedouble;
}

/* Blanks, or the word "Image" that may come before the digit. */
static int filler(const char *p, size_t l)
{
    while (l && isspace((unsigned char)*p))
        p++, l--;
    while (l && isspace((unsigned char)p[l - 1]))
        l--;
    return l == 0 || (l == 5 && (!strncmp(p, "Image", 5) || !strncmp(p, "image", 5)));
}

/* The index of the answer token in logprobs.content, or -1: the first token
 * after the last "<answer>" (else after "</think>") that reads 1 or 2, with
 * only blanks or "Image" before it. */
static int answer_token(const cJSON *toks)
{
    joust_buf_t all = {0};
    int n = cJSON_GetArraySize(toks);
    size_t *start = xmalloc((size_t)(n + 1) * sizeof *start);
    for (int i = 0; i < n; i++) {
        start[i] = all.len;
        const char *t = get_str(cJSON_GetArrayItem(toks, i), "token");
        if (t)
            joust_buf_puts(&all, t);
    }
    start[n] = all.len;
    size_t from = 0;
    const char *text = all.data ? all.data : "";
    const char *a = last_of(text, all.len, "<answer>"), *c = last_of(text, all.len, "</think>");
    if (a)
        from = (size_t)(a - text) + 8;
    else if (c)
        from = (size_t)(c - text) + 8;
    int found = -1;
    for (int i = 0; i < n && found < 0; i++) {
        if (start[i + 1] <= from)
            continue;
        size_t s = start[i] > from ? start[i] : from, l = start[i + 1] - s;
        const char *p = text + s;
        if (joust_oa_choice_of(p, l))
            found = i;
        else if (!filler(p, l))
            break; /* the answer is not the next word: give up */
    }
    free(start);
    joust_buf_free(&all);
    return found;
}

/* Soft p from the top_logprobs at the answer token. */
static void read_logprobs(joust_oa_reply *r, const cJSON *choice)
{
    const cJSON *toks = get(get(choice, "logprobs"), "content");
    if (!cJSON_IsArray(toks))
        return;
    int k = answer_token(toks);
    if (k < 0)
        return;
    const cJSON *tok = cJSON_GetArrayItem(toks, k);
    const cJSON *top = get(tok, "top_logprobs");
    double l[3] = {-INFINITY, -INFINITY, -INFINITY}, min_l = 0, mass = 0;
    int seen[3] = {0}, listed = 0, has_sampled = 0;
    const char *sampled = get_str(tok, "token");
    const cJSON *e, *list = cJSON_IsArray(top) ? top : NULL;
    cJSON_ArrayForEach(e, list) {
        const char *t = get_str(e, "token");
        if (!t)
            continue;
        double lp = logprob_of(e);
        int c = joust_oa_choice_of(t, strlen(t));
        l[c] = lse(l[c], lp);
        seen[c] = 1;
        min_l = listed++ ? fmin(min_l, lp) : lp;
        mass += exp(lp);
        if (sampled && !strcmp(sampled, t))
            has_sampled = 1;
    }
    if (sampled && !has_sampled) { /* servers list it, but do not rely on it */
        double lp = logprob_of(tok);
        int c = joust_oa_choice_of(sampled, strlen(sampled));
        l[c] = lse(l[c], lp);
        seen[c] = 1;
        min_l = listed++ ? fmin(min_l, lp) : lp;
        mass += exp(lp);
    }
    if (!seen[1] && !seen[2])
        return;
    if (seen[1] != seen[2]) {
        /* The missing choice is at most the smallest listed entry and at
         * most the mass that the list leaves over. */
        double rest = mass < 1 ? log(1 - mass) : -INFINITY;
        l[seen[1] ? 2 : 1] = fmin(min_l, rest);
        r->bounded = 1;
    }
    if (l[1] == -INFINITY && l[2] == -INFINITY)
        return;
    r->p_first = l[2] == -INFINITY ? 1.0 : l[1] == -INFINITY ? 0.0 : 1.0 / (1.0 + exp(l[2] - l[1]));
    r->soft = 1;
}

int joust_oa_parse_reply(const char *body, size_t len, joust_oa_reply *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *choices = get(root, "choices");
    const cJSON *choice = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    const cJSON *msg = get(choice, "message");
    if (!cJSON_IsObject(msg)) {
        const char *what = !root ? "the body is not valid JSON (truncated?)"
                           : get(root, "error") ? "the body is an error object"
                                                : "the body has no choices[0].message";
        snprintf(err, errlen, "%s", what);
        cJSON_Delete(root);
        return JOUST_ECORRUPT;
    }
    const char *fr = get_str(choice, "finish_reason");
    snprintf(out->finish_reason, sizeof out->finish_reason, "%s", fr ? fr : "");
    const cJSON *usage = get(root, "usage");
    const cJSON *pt = get(usage, "prompt_tokens"), *ct = get(usage, "completion_tokens");
    if (cJSON_IsNumber(pt) && pt->valuedouble >= 0 && pt->valuedouble < 4e9)
        out->prompt_tokens = (uint32_t)pt->valuedouble;
    if (cJSON_IsNumber(ct) && ct->valuedouble >= 0 && ct->valuedouble < 4e9)
        out->completion_tokens = (uint32_t)ct->valuedouble;
    const char *content = get_str(msg, "content");
    const char *rc_text = get_str(msg, "reasoning_content");
    if (!rc_text)
        rc_text = get_str(msg, "reasoning");
    if (content)
        out->content = xstrdup(content);
    int rc = read_answer(out, rc_text, content, err, errlen);
    if (rc == 0)
        read_logprobs(out, choice);
    cJSON_Delete(root);
    return rc;
}

void joust_oa_reply_clear(joust_oa_reply *r)
{
    free(r->reasoning);
    free(r->content);
    r->reasoning = r->content = NULL;
}

void joust_oa_error_message(const char *body, size_t len, char *out, size_t outlen)
{
    if (!outlen)
        return;
    out[0] = '\0';
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    const char *m = get_str(get(root, "error"), "message");
    if (!m)
        m = get_str(root, "message");
    if (!m)
        m = get_str(root, "detail");
    if (m) {
        snprintf(out, outlen, "%s", m);
    } else if (body) {
        size_t n = len < outlen - 1 ? len : outlen - 1;
        if (n > 200)
            n = 200;
        for (size_t i = 0; i < n; i++)
            out[i] = (unsigned char)body[i] < 0x20 ? ' ' : body[i];
        out[n] = '\0';
    }
    cJSON_Delete(root);
}
