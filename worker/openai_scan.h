/* A forward-only JSON scanner for the openai judge's large replies.
 *
 * A reason-mode reply with top_logprobs carries 20 alternatives for every
 * token (about 0.5 MB for 400 tokens); building a cJSON tree of it costs
 * milliseconds. The scanner walks objects and arrays in place and skips
 * the values nobody reads without allocating, so that only the few small
 * values the parser needs are decoded.
 *
 * It is lenient where it skips (a skipped value is checked for balanced
 * brackets and closed strings, not for full JSON grammar) and strict where
 * it reads. Spans point into the caller's buffer and live as long as it.
 * Threads: reentrant. Never reads outside [p, end); never recurses. */
#ifndef JOUST_OPENAI_SCAN_H
#define JOUST_OPENAI_SCAN_H
#include <stddef.h>

typedef struct {
    const char *p, *end; /* a value's bytes; for a key, the bytes inside the quotes */
} joust_js_span;

typedef struct {
    const char *p, *end;
    int n;      /* members or items read so far */
    char close; /* '}' or ']' */
} joust_js_iter;

/* The position after the value that starts at p (leading blanks allowed),
 * or NULL when there is none or it is cut off. */
const char *joust_js_skip(const char *p, const char *end);

/* Starts iterating v, which must be an object (resp. array): 0, or -1. */
int joust_js_object(joust_js_iter *it, joust_js_span v);
int joust_js_array(joust_js_iter *it, joust_js_span v);
/* The next member (key, value) or item (value): 1, 0 at the end, -1 when
 * the text is malformed. */
int joust_js_member(joust_js_iter *it, joust_js_span *key, joust_js_span *val);
int joust_js_item(joust_js_iter *it, joust_js_span *val);

/* Walking into a value instead of skipping it (each skip reads the whole
 * value, so nesting skips would read a large reply many times):
 * joust_js_key reads the next member's key and stops at its value;
 * joust_js_next stops at the next item. The caller then consumes the value
 * with joust_js_value (skip it, getting its span) or with joust_js_enter
 * (object 1: it must be an object, 0: an array; 0 or -1), reading the
 * child to its end (until member/item return 0), then joust_js_leave. */
int joust_js_key(joust_js_iter *it, joust_js_span *key);
int joust_js_next(joust_js_iter *it);
int joust_js_value(joust_js_iter *it, joust_js_span *val);
int joust_js_enter(joust_js_iter *it, joust_js_iter *child, int object);
void joust_js_leave(joust_js_iter *it, const joust_js_iter *child);
/* The first byte of the value it stops at ('{', '[', '"', 'n', ...), 0 at the end. */
char joust_js_peek(const joust_js_iter *it);

/* 1 when key's raw bytes are exactly lit. */
int joust_js_key_is(joust_js_span key, const char *lit);
/* 1 when v is the literal null (or empty: absent). */
int joust_js_is_null(joust_js_span v);
/* A string value, unescaped, appended to *out (malloc'd, NUL-terminated,
 * *len updated). 0, or -1 when v is not a valid string. */
int joust_js_string(joust_js_span v, char **out, size_t *len, size_t *cap);
/* A number value: 0, or -1 when v is not a number. */
int joust_js_number(joust_js_span v, double *out);

#endif
