#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "xalloc.h"

static void reserve(joust_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need > b->cap)
        xgrow((void **)&b->data, &b->cap, need, 1);
}

void joust_buf_append(joust_buf_t *b, const void *data, size_t len)
{
    reserve(b, len);
    if (len) /* data may be NULL for an empty piece (an absent field's view) */
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void joust_buf_puts(joust_buf_t *b, const char *s) { joust_buf_append(b, s, strlen(s)); }

void joust_buf_printf(joust_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        joust_buf_append(b, tmp, (size_t)n);
        return;
    }
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void joust_buf_json_str(joust_buf_t *b, const char *s) { joust_buf_json_strn(b, s, strlen(s)); }

void joust_buf_json_strn(joust_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    reserve(b, len + 2);
    b->data[b->len++] = '"';
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        const unsigned char *run = p; /* bytes that go as they are */
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        joust_buf_append(b, run, (size_t)(p - run));
        if (p == end)
            break;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (*p) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        joust_buf_append(b, esc, n);
        p++;
    }
    joust_buf_append(b, "\"", 1);
}

void joust_buf_csv_str(joust_buf_t *b, const char *s) { joust_buf_csv_strn(b, s, strlen(s)); }

void joust_buf_csv_strn(joust_buf_t *b, const char *s, size_t len)
{
    int quote = 0;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        joust_buf_append(b, s, len);
        return;
    }
    joust_buf_append(b, "\"", 1);
    const char *end = s + len;
    while (s < end) {
        const char *q = memchr(s, '"', (size_t)(end - s));
        const char *stop = q ? q + 1 : end; /* a quote is written twice */
        joust_buf_append(b, s, (size_t)(stop - s));
        if (q)
            joust_buf_append(b, "\"", 1);
        s = stop;
    }
    joust_buf_append(b, "\"", 1);
}

void joust_buf_reset(joust_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void joust_buf_free(joust_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
