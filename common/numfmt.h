/* Number formatting for large outputs (score files): printf's "%.Pg" and
 * "%u" without printf. joust_fmt_g writes exactly what
 * snprintf(buf, JOUST_FMT_MAX, "%.*g", P, x) writes, for every double and
 * precision: a fast path takes the values whose correctly rounded digits
 * it can prove from one correctly rounded scaling (P <= 9, scale within
 * 10^+-22, not within 1e-6 of a rounding tie), snprintf the rest. Pure
 * functions: thread-safe, no allocation, no locale (the C locale's '.'). */
#ifndef JOUST_NUMFMT_H
#define JOUST_NUMFMT_H
#include <stddef.h>
#include <stdint.h>

#define JOUST_FMT_MAX 32

/* Writes x as "%.Pg" into buf (NUL-terminated); returns its length. */
size_t joust_fmt_g(char buf[JOUST_FMT_MAX], int precision, double x);
/* Writes v in decimal into buf (NUL-terminated); returns its length. */
size_t joust_fmt_u64(char buf[JOUST_FMT_MAX], uint64_t v);

#endif
