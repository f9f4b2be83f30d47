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

#include "openai_scan.h"
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

/* Bytes around a choice that do not change it: blanks, markup and
 * punctuation (">1" after a split "<answer" tag, "**1**", "\"1\"", "1.", "(2)"). */
static int strippable(unsigned char c)
{
    return isspace(c) || strchr(">\"'*`.,;:!)(][#_", c) != NULL;
}

/* s[*a, *b) without strippable bytes at either end. */
static void strip(const char *s, size_t *a, size_t *b)
{
    while (*a < *b && strippable((unsigned char)s[*a]))
        (*a)++;
    while (*b > *a && strippable((unsigned char)s[*b - 1]))
        (*b)--;
}

int joust_oa_choice_of(const char *s, size_t len)
{
    size_t a = 0, b = len;
    strip(s, &a, &b);
    if (b - a >= 5 && (!strncmp(s + a, "Image", 5) || !strncmp(s + a, "image", 5) ||
                       !strncmp(s + a, "IMAGE", 5))) {
        a += 5;
        strip(s, &a, &b);
    }
    if (b - a == 1 && (s[a] == '1' || s[a] == '2'))
        return s[a] - '0';
    return 0;
}

/* 1 when s reads as nothing at all once stripped ("", " ", "**", "Image"). */
static int filler(const char *s, size_t len)
{
    size_t a = 0, b = len;
    strip(s, &a, &b);
    if (b - a == 5 && (!strncmp(s + a, "Image", 5) || !strncmp(s + a, "image", 5) ||
                       !strncmp(s + a, "IMAGE", 5)))
        return 1;
    return a == b;
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

static int blank(const char *s)
{
    if (!s)
        return 1;
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
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

static double clean_logprob(double v)
{
    if (!isfinite(v) || v <= SENTINEL_LOGPROB)
        return -INFINITY;
    return v > 0 ? 0 : v;
}

/* The token stream of logprobs.content: every token's text, concatenated,
 * with where each starts, and the spans of its logprob and alternatives. */
typedef struct {
    char *text;
    size_t len, cap;
    size_t *start;          /* n + 1 entries */
    joust_js_span *lp, *top;
    int n, room;
    int bad; /* logprobs (or its content) of the wrong type */
} tokens_t;

static void tokens_free(tokens_t *t)
{
    free(t->text);
    free(t->start);
    free(t->lp);
    free(t->top);
}

/* Reads the token entries of an array of them (it at '['). 0 or -1. */
static int read_entries(joust_js_iter *it, tokens_t *t)
{
    joust_js_iter arr, ent;
    joust_js_span k, v;
    int rc;
    if (joust_js_enter(it, &arr, 0) < 0)
        return -1;
    while ((rc = joust_js_next(&arr)) == 1) {
        if (t->n + 2 > t->room) {
            t->room = t->room ? 2 * t->room : 512;
            t->start = xrealloc(t->start, (size_t)t->room * sizeof *t->start);
            t->lp = xrealloc(t->lp, (size_t)t->room * sizeof *t->lp);
            t->top = xrealloc(t->top, (size_t)t->room * sizeof *t->top);
        }
        int i = t->n++;
        t->start[i] = t->len;
        t->lp[i] = t->top[i] = (joust_js_span){0};
        if (joust_js_peek(&arr) != '{') { /* not an entry: an empty token */
            if (joust_js_value(&arr, &v) < 0)
                return -1;
            continue;
        }
        if (joust_js_enter(&arr, &ent, 1) < 0)
            return -1;
        while ((rc = joust_js_key(&ent, &k)) == 1) {
            if (joust_js_value(&ent, &v) < 0)
                return -1;
            if (joust_js_key_is(k, "token")) {
                size_t before = t->len;
                if (joust_js_string(v, &t->text, &t->len, &t->cap) < 0)
                    t->len = before;
            } else if (joust_js_key_is(k, "logprob")) {
                t->lp[i] = v;
            } else if (joust_js_key_is(k, "top_logprobs")) {
                t->top[i] = v;
            }
        }
        if (rc < 0)
            return -1;
        joust_js_leave(&arr, &ent);
    }
    if (rc < 0)
        return -1;
    joust_js_leave(it, &arr);
    if (t->n)
        t->start[t->n] = t->len;
    return 0;
}

/* Reads choices[0].logprobs (it at its value) in one pass, without
 * decoding the alternatives (most of the bytes): only each token's text
 * and where its logprob and alternatives are. 0, or -1 when malformed. */
static int read_tokens(joust_js_iter *it, tokens_t *t)
{
    joust_js_iter lp;
    joust_js_span k, v;
    int rc;
    if (joust_js_peek(it) != '{') {
        t->bad = joust_js_peek(it) != 'n'; /* null: none */
        return joust_js_value(it, &v) < 0 ? -1 : 0;
    }
    if (joust_js_enter(it, &lp, 1) < 0)
        return -1;
    while ((rc = joust_js_key(&lp, &k)) == 1) {
        if (joust_js_key_is(k, "content") && joust_js_peek(&lp) == '[') {
            if (read_entries(&lp, t) < 0)
                return -1;
        } else {
            if (joust_js_value(&lp, &v) < 0)
                return -1;
            t->bad |= joust_js_key_is(k, "content") && !joust_js_is_null(v);
        }
    }
    if (rc < 0)
        return -1;
    joust_js_leave(it, &lp);
    return 0;
}

/* Printable, for error messages. */
static void shown(char *out, size_t outlen, const char *s, size_t len)
{
    snprintf(out, outlen, "%.*s", (int)(len < 40 ? len : 40), s);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

/* The index of the answer token: the first token after the last "<answer>"
 * (else after "</think>", else from the start) that is more than filler;
 * -1 when there is none. *pre is how many bytes of it belong to the tag. */
static int answer_token(const tokens_t *t, size_t *pre)
{
    const char *text = t->text ? t->text : "";
    const char *a = last_of(text, t->len, "<answer>"), *c = last_of(text, t->len, "</think>");
    size_t from = a ? (size_t)(a - text) + 8 : c ? (size_t)(c - text) + 8 : 0;
    for (int i = 0; i < t->n; i++) {
        if (t->start[i + 1] <= from)
            continue;
        size_t s = t->start[i] > from ? t->start[i] : from;
        if (filler(text + s, t->start[i + 1] - s))
            continue;
        *pre = s - t->start[i];
        return i;
    }
    return -1;
}

/* Soft p from the alternatives at the answer token. 0 with soft/bounded
 * set, 0 with neither when the reply carries no logprobs (a hard answer),
 * or JOUST_EFORMAT when logprobs came but no alternative reads 1 or 2. */
static int read_logprobs(joust_oa_reply *r, const tokens_t *tp, char *err, size_t errlen)
{
    const tokens_t t = *tp;
    if (t.bad) {
        snprintf(err, errlen, "the logprobs are not a list of tokens");
        return JOUST_EFORMAT;
    }
    if (t.n == 0)
        return 0; /* none: a hard answer */
    size_t pre = 0;
    int k = answer_token(&t, &pre);
    char tok[64];
    if (k < 0) {
        shown(tok, sizeof tok, t.text + (t.len > 40 ? t.len - 40 : 0), t.len > 40 ? 40 : t.len);
        snprintf(err, errlen, "logprobs: no answer token after <answer> (the tokens end '%s')", tok);
        return JOUST_EFORMAT;
    }
    const char *sampled = t.text + t.start[k];
    size_t slen = t.start[k + 1] - t.start[k];
    double l[3] = {-INFINITY, -INFINITY, -INFINITY}, min_l = 0, mass = 0;
    int seen[3] = {0}, listed = 0, has_sampled = 0;
    char *alt = NULL;
    size_t alen = 0, acap = 0;
    char others[160] = "";
    joust_js_iter it, ent;
    joust_js_span key, v, e;
    if (t.top[k].p && joust_js_array(&it, t.top[k]) == 0) {
        while (joust_js_item(&it, &e) == 1) {
            double lp = -INFINITY;
            int have_tok = 0;
            alen = 0;
            if (joust_js_object(&ent, e) < 0)
                continue;
            while (joust_js_member(&ent, &key, &v) == 1) {
                if (joust_js_key_is(key, "token"))
                    have_tok = joust_js_string(v, &alt, &alen, &acap) == 0;
                else if (joust_js_key_is(key, "logprob") && joust_js_number(v, &lp) == 0)
                    lp = clean_logprob(lp);
            }
            if (!have_tok)
                continue;
            /* The part of the token that belongs to the tag (">" of a
             * split "<answer" ">1") is not part of the choice. */
            size_t off = pre && alen >= pre && !memcmp(alt, sampled, pre) ? pre : 0;
            int c = joust_oa_choice_of(alt + off, alen - off);
            if (c) {
                l[c] = lse(l[c], lp);
                seen[c] = 1;
            } else if (strlen(others) < 100) {
                char s[48];
                shown(s, sizeof s, alt, alen);
                snprintf(others + strlen(others), sizeof others - strlen(others), "%s'%s'",
                         others[0] ? ", " : "", s);
            }
            if (lp > -INFINITY) {
                min_l = listed++ ? fmin(min_l, lp) : lp;
                mass += exp(lp);
            }
            if (alen == slen && !memcmp(alt, sampled, slen))
                has_sampled = 1;
        }
    }
    double slp;
    if (!has_sampled && t.lp[k].p && joust_js_number(t.lp[k], &slp) == 0 &&
        (slp = clean_logprob(slp)) > -INFINITY) { /* servers list it, but do not rely on it */
        int c = joust_oa_choice_of(sampled + pre, slen - pre);
        if (c) {
            l[c] = lse(l[c], slp);
            seen[c] = 1;
        }
        min_l = listed++ ? fmin(min_l, slp) : slp;
        mass += exp(slp);
    }
    free(alt);
    if (!seen[1] && !seen[2]) {
        shown(tok, sizeof tok, sampled, slen);
        snprintf(err, errlen, "logprobs: no alternative at the answer token '%s' reads 1 or 2 (%s)",
                 tok, others[0] ? others : "none listed");
        return JOUST_EFORMAT;
    }
    if (seen[1] != seen[2]) {
        /* The missing choice is at most the smallest listed entry and at
         * most the mass that the list leaves over. */
        double rest = mass < 1 ? log(1 - mass) : -INFINITY;
        l[seen[1] ? 2 : 1] = fmin(min_l, rest);
        r->bounded = 1;
    }
    r->p_first = l[2] == -INFINITY ? 1.0 : l[1] == -INFINITY ? 0.0 : 1.0 / (1.0 + exp(l[2] - l[1]));
    r->soft = 1;
    return 0;
}

static cJSON *parse_span(joust_js_span v)
{
    return v.p ? cJSON_ParseWithLength(v.p, (size_t)(v.end - v.p)) : NULL;
}

int joust_oa_parse_reply(const char *body, size_t len, joust_oa_reply *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof *out);
    char dummy[1];
    if (!err || !errlen)
        err = dummy, errlen = sizeof dummy;
    err[0] = '\0';
    joust_js_iter root, arr, ch;
    joust_js_span k, v, usage = {0}, msg = {0}, fr = {0};
    tokens_t toks = {0};
    int rc = -1, has_error = 0;
    const char *end = body ? body + len : NULL;
    /* One pass over the body: choices[0] is walked into, everything else
     * skipped once. */
    if (body && joust_js_object(&root, (joust_js_span){body, end}) == 0) {
        while ((rc = joust_js_key(&root, &k)) == 1) {
            if (!joust_js_key_is(k, "choices") || joust_js_peek(&root) != '[') {
                if ((rc = joust_js_value(&root, &v)) < 0)
                    break;
                if (joust_js_key_is(k, "usage"))
                    usage = v;
                has_error |= joust_js_key_is(k, "error");
                continue;
            }
            if ((rc = joust_js_enter(&root, &arr, 0)) < 0)
                break;
            while ((rc = joust_js_next(&arr)) == 1) {
                if (arr.n > 0 || joust_js_peek(&arr) != '{') {
                    if ((rc = joust_js_value(&arr, &v)) < 0)
                        break;
                    continue;
                }
                if ((rc = joust_js_enter(&arr, &ch, 1)) < 0)
                    break;
                while ((rc = joust_js_key(&ch, &k)) == 1) {
                    if (joust_js_key_is(k, "logprobs")) {
                        if ((rc = read_tokens(&ch, &toks)) < 0)
                            break;
                        continue;
                    }
                    if ((rc = joust_js_value(&ch, &v)) < 0)
                        break;
                    if (joust_js_key_is(k, "message"))
                        msg = v;
                    else if (joust_js_key_is(k, "finish_reason"))
                        fr = v;
                }
                if (rc < 0)
                    break;
                joust_js_leave(&arr, &ch);
            }
            if (rc < 0)
                break;
            joust_js_leave(&root, &arr);
        }
        const char *p = root.p;
        while (rc == 0 && p < end && isspace((unsigned char)*p))
            p++;
        if (rc == 0 && p != end)
            rc = -1; /* something after the object */
    }
    if (rc < 0) {
        tokens_free(&toks);
        snprintf(err, errlen, "the body is not valid JSON (truncated?)");
        return JOUST_ECORRUPT;
    }
    cJSON *m = parse_span(msg);
    if (!cJSON_IsObject(m)) {
        snprintf(err, errlen, "%s", has_error ? "the body is an error object"
                                              : "the body has no choices[0].message");
        cJSON_Delete(m);
        tokens_free(&toks);
        return JOUST_ECORRUPT;
    }
    char *s = NULL;
    size_t sl = 0, sc = 0;
    if (fr.p && joust_js_string(fr, &s, &sl, &sc) == 0)
        snprintf(out->finish_reason, sizeof out->finish_reason, "%s", s);
    free(s);
    cJSON *u = parse_span(usage);
    const cJSON *pt = get(u, "prompt_tokens"), *ct = get(u, "completion_tokens");
    if (cJSON_IsNumber(pt) && pt->valuedouble >= 0 && pt->valuedouble < 4e9)
        out->prompt_tokens = (uint32_t)pt->valuedouble;
    if (cJSON_IsNumber(ct) && ct->valuedouble >= 0 && ct->valuedouble < 4e9)
        out->completion_tokens = (uint32_t)ct->valuedouble;
    cJSON_Delete(u);
    const char *content = get_str(m, "content");
    const char *rc_text = get_str(m, "reasoning_content");
    if (!rc_text)
        rc_text = get_str(m, "reasoning");
    if (blank(content) && !blank(rc_text)) {
        /* A reasoning parser took the whole continuation (a direct-mode
         * digit, or a reply whose </think> never came): read it there. */
        content = rc_text;
        rc_text = NULL;
    }
    if (content)
        out->content = xstrdup(content);
    rc = read_answer(out, rc_text, content, err, errlen);
    if (rc == 0)
        rc = read_logprobs(out, &toks, err, errlen);
    tokens_free(&toks);
    cJSON_Delete(m);
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
