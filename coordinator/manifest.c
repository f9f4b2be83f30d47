#include "manifest.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

int utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        /* ASCII eight bytes at a time (most lines are ASCII throughout) */
        while (end - s >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            if (w & 0x8080808080808080ull)
                break;
            s += 8;
        }
        if (s >= end)
            break;
        unsigned c = *s++;
        int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (extra < 0 || end - s < extra)
            return 0;
        unsigned cp = c & (0x3f >> extra);
        for (int i = 0; i < extra; i++, s++) {
            if ((*s & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (*s & 0x3f);
        }
        /* reject overlong forms, surrogates and values past U+10FFFF */
        static const unsigned min_cp[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[extra] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
    }
    return 1;
}

/* Length of the longest prefix of s[0..len) of at most max bytes that does
 * not cut a UTF-8 sequence. */
static int utf8_prefix(const char *s, int len, int max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/* Name of a control character for messages. */
static const char *ctl_name(unsigned c)
{
    switch (c) {
    case 0x00: return "NUL";
    case 0x0b: return "vertical tab";
    case 0x0c: return "form feed";
    case 0x1b: return "escape";
    default: return "control character";
    }
}

static int is_json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The lexical rules cJSON does not enforce, checked on the raw line before
 * it is parsed: between tokens only JSON's whitespace (space, tab, CR, LF;
 * cJSON skips every byte <= 0x20, so a form feed or a vertical tab would
 * pass), no raw control character inside a string, and no string that
 * decodes to a NUL (\u0000 is the only way to write one): the parsed value
 * is a C string, so a NUL would silently cut it (a path to another file, a
 * prompt to its first byte). Errors name the top-level field concerned. */
static int check_lexical(const char *line, size_t len, char *err, size_t errlen)
{
    int depth = 0, in_str = 0, key_next = 0, str_is_key = 0;
    const char *key = NULL, *str = NULL; /* current top-level key, current string */
    int keylen = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (!in_str) {
            if (is_json_space(c))
                continue;
            if (c < 0x20 || c == 0x7f) {
                snprintf(err, errlen, "%s (0x%02x) at byte %zu, outside a string: JSON allows only "
                         "space, tab, CR and LF there", ctl_name(c), c, i + 1);
                return JOUST_EINVAL;
            }
            if (c >= 0x80) {
                snprintf(err, errlen, "non-ASCII character at byte %zu, outside a string: JSON "
                         "allows only space, tab, CR and LF there", i + 1);
                return JOUST_EINVAL;
            }
            if (c == '"') {
                in_str = 1;
                str = line + i + 1;
                str_is_key = depth == 1 && key_next;
            } else if (c == '{' || c == '[') {
                depth++;
                key_next = c == '{' && depth == 1;
            } else if (c == '}' || c == ']') {
                depth--;
            } else if (c == ',' && depth == 1) {
                key_next = 1;
            } else if (c == ':' && depth == 1) {
                key_next = 0;
            }
            continue;
        }
        if (c == '"') {
            in_str = 0;
            if (str_is_key) {
                key = str;
                keylen = (int)(line + i - str);
            }
        } else if (c < 0x20) {
            snprintf(err, errlen, "%s (0x%02x) inside a string at byte %zu: JSON needs it escaped",
                     ctl_name(c), c, i + 1);
            return JOUST_EINVAL;
        } else if (c == '\\' && i + 1 < len) {
            i++;
            if (line[i] == 'u' && len - i > 4 && !memcmp(line + i + 1, "0000", 4)) {
                if (str_is_key)
                    snprintf(err, errlen, "a field name contains NUL (\\u0000)");
                else if (key)
                    snprintf(err, errlen, "field \"%.*s\": contains NUL (\\u0000)",
                             utf8_prefix(key, keylen, 64), key);
                else
                    snprintf(err, errlen, "a string contains NUL (\\u0000)");
                return JOUST_EINVAL;
            }
        }
    }
    return 0;
}

int manifest_id_reserved(const char *id)
{
    return id[0] == '#' && id[1] && strspn(id + 1, "0123456789") == strlen(id + 1);
}

static int fail(char *err, size_t errlen, const char *field, const char *why)
{
    snprintf(err, errlen, "field \"%s\": %s", field, why);
    return JOUST_EINVAL;
}

/* A string field, or an integer written as a number (ids). */
static int get_text(const cJSON *obj, const char *field, int allow_int, size_t max, char **out,
                    char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if (n > max)
            return fail(err, errlen, field, "too long");
        *out = xstrndup(v->valuestring, n);
        return 0;
    }
    if (allow_int && cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
        fabs(v->valuedouble) < 9.007199254740992e15) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.0f", v->valuedouble);
        *out = xstrdup(buf);
        return 0;
    }
    return fail(err, errlen, field, allow_int ? "must be a string or an integer" : "must be a string");
}

static const char *known_fields[] = {"image", "prompt", "prompt_id", "model", "id", "latent"};

static char *extra_fields_json(cJSON *obj)
{
    cJSON *meta = cJSON_CreateObject();
    int n = 0;
    for (cJSON *c = obj->child; c; c = c->next) {
        int known = 0;
        for (size_t i = 0; i < sizeof known_fields / sizeof *known_fields; i++)
            known |= c->string && !strcmp(c->string, known_fields[i]);
        if (!known && c->string) {
            cJSON_AddItemToObject(meta, c->string, cJSON_Duplicate(c, 1));
            n++;
        }
    }
    char *out = NULL;
    if (n) {
        char *s = cJSON_PrintUnformatted(meta);
        out = xstrdup(s);
        cJSON_free(s);
    }
    cJSON_Delete(meta);
    return out;
}

/* ---- the fast path ------------------------------------------------------
 * Most manifest lines are one flat object whose values are strings, numbers,
 * true, false or null. Those are read here in one pass, without cJSON and
 * with one allocation (item->block holds every string). Anything else (a
 * nested value, a key with escapes, a known field given twice or with the
 * wrong type, a surrogate escape, a syntax error, ...) returns FAST_NO and
 * the line goes through cJSON below, which accepts or rejects it with the
 * reason exactly as before: the fast path never rejects a line itself, and
 * what it accepts it reads as cJSON does (test_manifest compares the two on
 * every line of its corpus). */
enum { FAST_NO = 1 };

typedef struct {
    const char *p, *end;
    char *out; /* the next free byte of the item's block */
} fast_in;

static void fast_ws(fast_in *f)
{
    while (f->p < f->end && is_json_space((unsigned char)*f->p))
        f->p++;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The bytes that end a run of plain string bytes: the quote, the
 * backslash and the control characters. */
static int str_stop(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

/* A string at f->p (after its opening quote): decoded into the block when
 * dec is set (NUL-terminated there, *out its start, *n its length), else
 * only checked. *esc says whether it had an escape. */
static int fast_string(fast_in *f, int dec, char **out, size_t *n, int *esc)
{
    char *o = f->out;
    *esc = 0;
    while (f->p < f->end) {
        /* a run of plain bytes, copied at once */
        const char *run = f->p;
        while (run < f->end && !str_stop((unsigned char)*run))
            run++;
        if (run != f->p) {
            if (dec) {
                memcpy(o, f->p, (size_t)(run - f->p));
                o += run - f->p;
            }
            f->p = run;
            if (run >= f->end)
                break;
        }
        unsigned char c = (unsigned char)*f->p++;
        if (c == '"') {
            if (dec) {
                *out = f->out;
                *n = (size_t)(o - f->out);
                *o++ = '\0';
                f->out = o;
            }
            return 0;
        }
        if (c < 0x20)
            return FAST_NO;
        if (c != '\\') {
            if (dec)
                *o++ = (char)c;
            continue;
        }
        *esc = 1;
        if (f->p >= f->end)
            return FAST_NO;
        c = (unsigned char)*f->p++;
        char d;
        switch (c) {
        case '"': d = '"'; break;
        case '\\': d = '\\'; break;
        case '/': d = '/'; break;
        case 'b': d = '\b'; break;
        case 'f': d = '\f'; break;
        case 'n': d = '\n'; break;
        case 'r': d = '\r'; break;
        case 't': d = '\t'; break;
        case 'u': {
            if (f->end - f->p < 4)
                return FAST_NO;
            unsigned cp = 0;
            for (int i = 0; i < 4; i++) {
                int h = hexval((unsigned char)f->p[i]);
                if (h < 0)
                    return FAST_NO;
                cp = cp << 4 | (unsigned)h;
            }
            f->p += 4;
            if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                return FAST_NO; /* NUL and surrogates: cJSON's path says why */
            if (dec) {
                if (cp < 0x80) {
                    *o++ = (char)cp;
                } else if (cp < 0x800) {
                    *o++ = (char)(0xc0 | cp >> 6);
                    *o++ = (char)(0x80 | (cp & 0x3f));
                } else {
                    *o++ = (char)(0xe0 | cp >> 12);
                    *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                    *o++ = (char)(0x80 | (cp & 0x3f));
                }
            }
            continue;
        }
        default: return FAST_NO;
        }
        if (dec)
            *o++ = d;
    }
    return FAST_NO;
}

/* Powers of ten that a double holds exactly. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number (strict grammar) at f->p; *v its value when v is set
 * (metadata is only checked: it is copied as written). The value is
 * strtod's (what cJSON gives): computed directly when the digits make an
 * integer m <= 2^53 and the power of ten e is within +-22, since m and 10^e
 * are then exact doubles and one multiplication or division rounds
 * correctly (Clinger's fast path); by strtod otherwise. */
static int fast_number(fast_in *f, double *v)
{
    const char *s = f->p, *p = s;
    uint64_t m = 0;
    int digits = 0, scale = 0; /* significant digits in m; value = m * 10^-scale */
    if (p < f->end && *p == '-')
        p++;
    if (p >= f->end || *p < '0' || *p > '9')
        return FAST_NO;
    if (*p == '0') {
        p++;
    } else {
        for (; p < f->end && *p >= '0' && *p <= '9'; p++)
            if (digits < 19)
                m = m * 10 + (uint64_t)(*p - '0'), digits++;
            else
                digits = 99; /* more digits than m holds: strtod */
    }
    if (p < f->end && *p == '.') {
        if (++p >= f->end || *p < '0' || *p > '9')
            return FAST_NO;
        for (; p < f->end && *p >= '0' && *p <= '9'; p++) {
            if (m == 0 && *p == '0') { /* a leading zero: only the scale */
                scale++;
                continue;
            }
            if (digits < 19)
                m = m * 10 + (uint64_t)(*p - '0'), digits++, scale++;
            else
                digits = 99;
        }
    }
    int exp = 0, big_exp = 0;
    if (p < f->end && (*p == 'e' || *p == 'E')) {
        p++;
        int neg = 0;
        if (p < f->end && (*p == '+' || *p == '-'))
            neg = *p++ == '-';
        if (p >= f->end || *p < '0' || *p > '9')
            return FAST_NO;
        for (; p < f->end && *p >= '0' && *p <= '9'; p++)
            if (exp < 10000)
                exp = exp * 10 + (*p - '0');
            else
                big_exp = 1;
        if (neg)
            exp = -exp;
    }
    char buf[64];
    if (p - s >= (ptrdiff_t)sizeof buf)
        return FAST_NO; /* cJSON's path reads it (and writes metadata as cJSON prints it) */
    if (!v) {
        f->p = p;
        return 0;
    }
    int e10 = exp - scale;
    if (digits <= 19 && !big_exp && m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double x = (double)m;
        x = m == 0 ? 0.0 : e10 < 0 ? x / exact_pow10[-e10] : x * exact_pow10[e10];
        *v = *s == '-' ? -x : x;
        f->p = p;
        return 0;
    }
    memcpy(buf, s, (size_t)(p - s));
    buf[p - s] = '\0';
    *v = strtod(buf, NULL);
    f->p = p;
    return 0;
}

static int fast_literal(fast_in *f, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, word, n))
        return FAST_NO;
    f->p += n;
    return 0;
}

enum { K_IMAGE, K_PROMPT, K_PROMPT_ID, K_MODEL, K_ID, K_LATENT, K_NONE };

static int known_key(const char *k, size_t n)
{
    static const size_t klen[K_NONE] = {5, 6, 9, 5, 2, 6};
    for (int i = 0; i < K_NONE; i++)
        if (klen[i] == n && !memcmp(k, known_fields[i], n))
            return i;
    return K_NONE;
}

/* A known text field's value as get_text reads it; FAST_NO for whatever
 * get_text would refuse. */
static int fast_text(fast_in *f, int allow_int, size_t max, char **out)
{
    size_t n;
    int esc;
    if (*f->p == '"') {
        f->p++;
        if (fast_string(f, 1, out, &n, &esc))
            return FAST_NO;
        return n > max ? FAST_NO : 0;
    }
    if (*f->p == 'n')
        return fast_literal(f, "null"); /* absent */
    double v;
    const char *start = f->p;
    if (!allow_int || fast_number(f, &v) || v != floor(v) || !(fabs(v) < 9.007199254740992e15))
        return FAST_NO;
    *out = f->out;
    size_t tn = (size_t)(f->p - start), digits = tn - (*start == '-'), plain = 0;
    /* bounded by the number's own bytes: the line has no NUL after it */
    for (const char *d = start + (*start == '-'); d < f->p && *d >= '0' && *d <= '9'; d++)
        plain++;
    if (digits <= 15 && plain == digits) {
        memcpy(f->out, start, tn); /* what "%.0f" writes for a plain integer */
        f->out[tn] = '\0';
        f->out += tn + 1;
    } else {
        f->out += snprintf(f->out, 32, "%.0f", v) + 1;
    }
    return 0;
}

/* Into block (MANIFEST_BUF_BYTES(len) bytes); *used: the bytes taken. */
static int fast_parse(const char *line, size_t len, manifest_item *item, char *block, size_t *used)
{
    /* Two regions while parsing: decoded strings (<= len, plus <= 32 per
     * integer id and 1 for a missing prompt) and the metadata object
     * (<= len + 2); then the metadata is moved down after the strings and
     * the group key (<= len + 6) follows it. */
    fast_in f = {line, line + len, block};
    char *meta = NULL, *mo = block + len + 128;
    char **known[K_NONE] = {&item->image, &item->prompt, &item->prompt_id, &item->model, &item->id};
    static const size_t max[K_NONE] = {MANIFEST_MAX_URI, MANIFEST_MAX_PROMPT, MANIFEST_MAX_NAME,
                                       MANIFEST_MAX_NAME, MANIFEST_MAX_NAME};
    unsigned seen = 0;
    fast_ws(&f);
    if (f.p >= f.end || *f.p++ != '{')
        goto no;
    fast_ws(&f);
    if (f.p < f.end && *f.p == '}')
        goto no; /* no image: cJSON's path says so */
    for (;;) {
        if (f.p >= f.end || *f.p != '"')
            goto no;
        const char *kstart = f.p++;
        char *k;
        size_t kn;
        int esc;
        if (fast_string(&f, 0, &k, &kn, &esc) || esc)
            goto no;
        int key = known_key(kstart + 1, (size_t)(f.p - kstart - 2));
        fast_ws(&f);
        if (f.p >= f.end || *f.p++ != ':')
            goto no;
        fast_ws(&f);
        if (f.p >= f.end)
            goto no;
        if (key != K_NONE) {
            if (seen & 1u << key)
                goto no; /* a repeated known field */
            seen |= 1u << key;
            if (key == K_LATENT) {
                double v;
                if (*f.p == 'n') {
                    if (fast_literal(&f, "null"))
                        goto no;
                } else if (fast_number(&f, &v) || !isfinite(v)) {
                    goto no;
                } else {
                    item->latent = v;
                    item->has_latent = 1;
                }
            } else if (fast_text(&f, key == K_PROMPT_ID || key == K_ID, max[key], known[key])) {
                goto no;
            }
        } else {
            /* metadata: the member copied as written */
            int rc = *f.p == '"' ? (f.p++, fast_string(&f, 0, &k, &kn, &esc))
                   : *f.p == 't' ? fast_literal(&f, "true")
                   : *f.p == 'f' ? fast_literal(&f, "false")
                   : *f.p == 'n' ? fast_literal(&f, "null")
                                 : fast_number(&f, NULL);
            if (rc)
                goto no;
            if (!meta) {
                meta = mo;
                *mo++ = '{';
            } else {
                *mo++ = ',';
            }
            memcpy(mo, kstart, (size_t)(f.p - kstart)); /* "key": value */
            mo += f.p - kstart;
        }
        fast_ws(&f);
        if (f.p >= f.end)
            goto no;
        if (*f.p == '}') {
            f.p++;
            break;
        }
        if (*f.p++ != ',')
            goto no;
        fast_ws(&f);
    }
    fast_ws(&f);
    if (f.p != f.end)
        goto no;
    if (meta) {
        *mo++ = '}';
        *mo = '\0';
    }
    /* what cJSON's path refuses goes there for its reason */
    if (!item->image || !item->image[0] || (!item->prompt && !item->prompt_id) ||
        (item->id && (!item->id[0] || manifest_id_reserved(item->id))))
        goto no;
    if (!item->prompt) {
        item->prompt = f.out;
        *f.out++ = '\0';
    }
    char *w = f.out;
    if (meta) {
        size_t ml = (size_t)(mo - meta) + 1;
        memmove(w, meta, ml);
        meta = w;
        w += ml;
    }
    item->meta_json = meta;
    item->group_key = w;
    const char *kind = item->prompt_id ? "id:" : "text:";
    const char *key = item->prompt_id ? item->prompt_id : item->prompt;
    size_t kl = strlen(kind), vl = strlen(key);
    memcpy(w, kind, kl);
    memcpy(w + kl, key, vl + 1);
    *used = (size_t)(w + kl + vl + 1 - block);
    return 0;
no:
    memset(item, 0, sizeof *item);
    return FAST_NO;
}

/* The checks every line passes before either parser reads it. */
static int line_precheck(const char *line, size_t len, manifest_item *item, char *err, size_t errlen)
{
    memset(item, 0, sizeof *item);
    if (len > MANIFEST_MAX_LINE) {
        snprintf(err, errlen, "line longer than %d bytes", MANIFEST_MAX_LINE);
        return JOUST_EINVAL;
    }
    if (!utf8_valid(line, len)) {
        snprintf(err, errlen, "not valid UTF-8");
        return JOUST_EINVAL;
    }
    return 0;
}

int manifest_parse_line(const char *line, size_t len, manifest_item *item, char *err, size_t errlen)
{
    if (line_precheck(line, len, item, err, errlen) < 0)
        return JOUST_EINVAL;
    char *block = xmalloc(MANIFEST_BUF_BYTES(len));
    size_t used;
    if (fast_parse(line, len, item, block, &used) == 0) {
        item->block = block;
        return 0;
    }
    free(block);
    return manifest_parse_line_cjson(line, len, item, err, errlen);
}

int manifest_parse_line_buf(const char *line, size_t len, char *buf, size_t *used,
                            manifest_item *item, char *err, size_t errlen)
{
    *used = 0;
    if (line_precheck(line, len, item, err, errlen) < 0)
        return JOUST_EINVAL;
    if (fast_parse(line, len, item, buf, used) == 0) {
        item->borrowed = 1;
        return 0;
    }
    *used = 0;
    return manifest_parse_line_cjson(line, len, item, err, errlen);
}

int manifest_parse_line_cjson(const char *line, size_t len, manifest_item *item, char *err,
                              size_t errlen)
{
    if (line_precheck(line, len, item, err, errlen) < 0)
        return JOUST_EINVAL;
    if (check_lexical(line, len, err, errlen) < 0)
        return JOUST_EINVAL;
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (obj && end) {
        while (end < line + len && is_json_space((unsigned char)*end))
            end++;
        if (end != line + len) {
            snprintf(err, errlen, "invalid JSON: unexpected text after the object");
            cJSON_Delete(obj);
            return JOUST_EINVAL;
        }
    }
    if (!obj || !cJSON_IsObject(obj)) {
        snprintf(err, errlen, obj ? "not a JSON object" : "invalid JSON");
        cJSON_Delete(obj);
        return JOUST_EINVAL;
    }
    int rc;
    if ((rc = get_text(obj, "image", 0, MANIFEST_MAX_URI, &item->image, err, errlen)) < 0 ||
        (rc = get_text(obj, "prompt", 0, MANIFEST_MAX_PROMPT, &item->prompt, err, errlen)) < 0 ||
        (rc = get_text(obj, "prompt_id", 1, MANIFEST_MAX_NAME, &item->prompt_id, err, errlen)) < 0 ||
        (rc = get_text(obj, "model", 0, MANIFEST_MAX_NAME, &item->model, err, errlen)) < 0 ||
        (rc = get_text(obj, "id", 1, MANIFEST_MAX_NAME, &item->id, err, errlen)) < 0)
        goto out;
    rc = JOUST_EINVAL;
    if (item->id && !item->id[0]) {
        fail(err, errlen, "id", "must not be empty");
        goto out;
    }
    if (item->id && manifest_id_reserved(item->id)) {
        fail(err, errlen, "id", "ids of the form #N are reserved for images without an id");
        goto out;
    }
    if (!item->image || !item->image[0]) {
        fail(err, errlen, "image", "required (a path or URI)");
        goto out;
    }
    if (!item->prompt && !item->prompt_id) {
        snprintf(err, errlen, "needs \"prompt\" or \"prompt_id\"");
        goto out;
    }
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(obj, "latent");
    if (lat && !cJSON_IsNull(lat)) {
        if (!cJSON_IsNumber(lat) || !isfinite(lat->valuedouble)) {
            fail(err, errlen, "latent", "must be a finite number");
            goto out;
        }
        item->latent = lat->valuedouble;
        item->has_latent = 1;
    }
    if (!item->prompt)
        item->prompt = xstrdup("");
    size_t klen = 5 + strlen(item->prompt_id ? item->prompt_id : item->prompt);
    item->group_key = xmalloc(klen + 1);
    snprintf(item->group_key, klen + 1, "%s%s", item->prompt_id ? "id:" : "text:",
             item->prompt_id ? item->prompt_id : item->prompt);
    item->meta_json = extra_fields_json(obj);
    rc = 0;
out:
    cJSON_Delete(obj);
    if (rc < 0)
        manifest_item_clear(item);
    return rc;
}

void manifest_item_clear(manifest_item *item)
{
    if (item->block || item->borrowed) { /* the fast path: every string lies in one block */
        free(item->block);
        memset(item, 0, sizeof *item);
        return;
    }
    free(item->image);
    free(item->prompt);
    free(item->prompt_id);
    free(item->model);
    free(item->id);
    free(item->meta_json);
    free(item->group_key);
    memset(item, 0, sizeof *item);
}
