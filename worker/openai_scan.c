/* The openai judge's forward-only JSON scanner; see openai_scan.h. */
#include "openai_scan.h"

#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static const char *blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* p at the opening quote: the position after the closing one, or NULL. A
 * quote ends the string when an even number of backslashes precede it. */
static const char *skip_string(const char *p, const char *end)
{
    const char *from = ++p;
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        const char *b = q;
        while (b > from && b[-1] == '\\')
            b--;
        if (((q - b) & 1) == 0)
            return q + 1;
        p = q + 1;
    }
}

/* Bytes that matter while skipping a container; everything else is passed
 * over by one table lookup per byte. */
static const unsigned char special[256] = {['"'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1};

/* The container's bytes after p, from state (depth, in a string or not):
 * one table lookup per byte, strings walked inline. */
static const char *skip_bytes(const char *p, const char *end, long depth, int in_str)
{
    while (p < end) {
        unsigned char c = (unsigned char)*p++;
        if (in_str) {
            if (c == '"')
                in_str = 0;
            else if (c == '\\' && p++ >= end)
                return NULL;
            continue;
        }
        if (!special[c])
            continue;
        if (c == '"') {
            in_str = 1;
            continue;
        }
        depth += c == '{' || c == '[' ? 1 : -1;
        if (depth == 0)
            return p;
        if (depth < 0)
            return NULL;
    }
    return NULL;
}

#if defined(__SSE2__)
/* The hot loop of a large reply (0.5 MB of logprobs): 16 bytes at a time,
 * a mask of the bytes that matter ('"', '\\', brackets), visited in order. */
static const char *skip_container(const char *p, const char *end)
{
    long depth = 0;
    int in_str = 0;
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), o1 = _mm_set1_epi8('{'),
                  c1 = _mm_set1_epi8('}'), o2 = _mm_set1_epi8('['), c2 = _mm_set1_epi8(']');
    while (end - p >= 17) { /* 16 and the byte an escape at the last may skip */
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)),
                                 _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, o1), _mm_cmpeq_epi8(v, c1)),
                                              _mm_or_si128(_mm_cmpeq_epi8(v, o2), _mm_cmpeq_epi8(v, c2))));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        int step = 16;
        while (mask) {
            int i = __builtin_ctz(mask);
            char c = p[i];
            mask &= mask - 1;
            if (in_str) {
                if (c == '"') {
                    in_str = 0;
                } else if (c == '\\') { /* the next byte is escaped */
                    if (i == 15)
                        step = 17;
                    else
                        mask &= ~(1u << (i + 1));
                }
            } else if (c == '"') {
                in_str = 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return p + i + 1;
                if (depth < 0)
                    return NULL;
            }
        }
        p += step;
    }
    return skip_bytes(p, end, depth, in_str);
}
#else
static const char *skip_container(const char *p, const char *end) { return skip_bytes(p, end, 0, 0); }
#endif

const char *joust_js_skip(const char *p, const char *end)
{
    p = blanks(p, end);
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[')
        return skip_container(p, end);
    /* A scalar: a number or a literal, up to the next delimiter. */
    const char *s = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
           *p != '\r' && *p != '\t' && *p != ':' && *p != '"' && *p != '{' && *p != '[')
        p++;
    if (p == s)
        return NULL;
    if (p == end) /* a scalar must be followed by something inside a container */
        return NULL;
    return p;
}

static int begin(joust_js_iter *it, joust_js_span v, char open, char close)
{
    const char *p = blanks(v.p, v.end);
    if (p >= v.end || *p != open)
        return -1;
    *it = (joust_js_iter){.p = p + 1, .end = v.end, .n = 0, .close = close};
    return 0;
}

int joust_js_object(joust_js_iter *it, joust_js_span v) { return begin(it, v, '{', '}'); }
int joust_js_array(joust_js_iter *it, joust_js_span v) { return begin(it, v, '[', ']'); }

/* Past the separator before the next entry: 1 with an entry, 0 at the end. */
static int next_entry(joust_js_iter *it)
{
    const char *p = blanks(it->p, it->end);
    if (p >= it->end)
        return -1;
    if (*p == it->close) {
        it->p = p + 1;
        return 0;
    }
    if (it->n > 0) {
        if (*p != ',')
            return -1;
        p = blanks(p + 1, it->end);
    }
    it->p = p;
    return 1;
}

int joust_js_value(joust_js_iter *it, joust_js_span *val)
{
    const char *s = blanks(it->p, it->end);
    const char *e = joust_js_skip(s, it->end);
    if (!e)
        return -1;
    *val = (joust_js_span){s, e};
    it->p = e;
    it->n++;
    return 1;
}

int joust_js_key(joust_js_iter *it, joust_js_span *key)
{
    int rc = next_entry(it);
    if (rc <= 0)
        return rc;
    const char *p = it->p;
    if (*p != '"')
        return -1;
    const char *e = skip_string(p, it->end);
    if (!e)
        return -1;
    *key = (joust_js_span){p + 1, e - 1};
    p = blanks(e, it->end);
    if (p >= it->end || *p != ':')
        return -1;
    it->p = p + 1;
    return 1;
}

int joust_js_next(joust_js_iter *it) { return next_entry(it); }

char joust_js_peek(const joust_js_iter *it)
{
    const char *p = blanks(it->p, it->end);
    return p < it->end ? *p : 0;
}

int joust_js_enter(joust_js_iter *it, joust_js_iter *child, int object)
{
    return begin(child, (joust_js_span){it->p, it->end}, object ? '{' : '[', object ? '}' : ']');
}

void joust_js_leave(joust_js_iter *it, const joust_js_iter *child)
{
    it->p = child->p;
    it->n++;
}

int joust_js_member(joust_js_iter *it, joust_js_span *key, joust_js_span *val)
{
    int rc = joust_js_key(it, key);
    return rc <= 0 ? rc : joust_js_value(it, val);
}

int joust_js_item(joust_js_iter *it, joust_js_span *val)
{
    int rc = next_entry(it);
    return rc <= 0 ? rc : joust_js_value(it, val);
}

int joust_js_key_is(joust_js_span key, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(key.end - key.p) == n && memcmp(key.p, lit, n) == 0;
}

int joust_js_is_null(joust_js_span v)
{
    const char *p = blanks(v.p, v.end);
    return p >= v.end || (v.end - p >= 4 && memcmp(p, "null", 4) == 0);
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(char *o, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        o[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*n)++] = (char)(0xc0 | cp >> 6);
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xe0 | cp >> 12);
        o[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        o[(*n)++] = (char)(0xf0 | cp >> 18);
        o[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

int joust_js_string(joust_js_span v, char **out, size_t *len, size_t *cap)
{
    const char *p = blanks(v.p, v.end), *end = v.end;
    if (p >= end || *p != '"')
        return -1;
    const char *close = skip_string(p, end);
    if (!close)
        return -1;
    p++;
    end = close - 1;
    /* Unescaped text is never longer than its escaped form. */
    xgrow((void **)out, cap, *len + (size_t)(end - p) + 1, 1);
    char *o = *out;
    size_t n = *len;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        const char *stop = bs ? bs : end;
        memcpy(o + n, p, (size_t)(stop - p));
        n += (size_t)(stop - p);
        p = stop;
        if (!bs)
            break;
        if (end - p < 2)
            return -1;
        char c = p[1];
        p += 2;
        switch (c) {
        case '"': case '\\': case '/': o[n++] = c; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(p, end, &cp) < 0)
                return -1;
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                hex4(p + 2, end, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd; /* a lone surrogate */
            }
            put_utf8(o, &n, cp); /* at most 4 bytes for 6 or 12 escaped */
            break;
        }
        default: return -1;
        }
    }
    o[n] = '\0';
    *len = n;
    return 0;
}

int joust_js_number(joust_js_span v, double *out)
{
    const char *p = blanks(v.p, v.end);
    char tmp[64];
    size_t n = (size_t)(v.end - p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof tmp || !(*p == '-' || (*p >= '0' && *p <= '9')))
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *e;
    double d = strtod(tmp, &e);
    if (*e)
        return -1;
    *out = d;
    return 0;
}
