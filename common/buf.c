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

void joust_buf_json_str(joust_buf_t *b, const char *s)
{
    joust_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': joust_buf_append(b, "\\\"", 2); break;
        case '\\': joust_buf_append(b, "\\\\", 2); break;
        case '\n': joust_buf_append(b, "\\n", 2); break;
        case '\r': joust_buf_append(b, "\\r", 2); break;
        case '\t': joust_buf_append(b, "\\t", 2); break;
        default:
            if (*p < 0x20)
                joust_buf_printf(b, "\\u%04x", *p);
            else
                joust_buf_append(b, p, 1);
        }
    }
    joust_buf_append(b, "\"", 1);
}

void joust_buf_csv_str(joust_buf_t *b, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        joust_buf_puts(b, s);
        return;
    }
    joust_buf_append(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            joust_buf_append(b, "\"", 1);
        joust_buf_append(b, p, 1);
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
