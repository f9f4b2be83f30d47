/* A growable byte/text buffer (always NUL-terminated). Owned by the caller:
 * joust_buf_free() releases the data. Aborts on out-of-memory. */
#ifndef JOUST_BUF_H
#define JOUST_BUF_H
#include <stddef.h>

typedef struct {
    char *data;
    size_t len, cap;
} joust_buf_t;

void joust_buf_append(joust_buf_t *b, const void *data, size_t len);
void joust_buf_puts(joust_buf_t *b, const char *s);
void joust_buf_printf(joust_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included (control bytes as
 * \uXXXX, other bytes as they are). */
void joust_buf_json_str(joust_buf_t *b, const char *s);
/* Appends s as a CSV field, quoted when it holds a comma, quote or newline. */
void joust_buf_csv_str(joust_buf_t *b, const char *s);
/* The same for the len bytes at s (no NUL needed; a NUL byte is a control
 * byte, \u0000, in JSON and written as it is in CSV). */
void joust_buf_json_strn(joust_buf_t *b, const char *s, size_t len);
void joust_buf_csv_strn(joust_buf_t *b, const char *s, size_t len);
void joust_buf_reset(joust_buf_t *b);
void joust_buf_free(joust_buf_t *b);

#endif
