/* Checked allocation: every function aborts the process on out-of-memory,
 * so callers never test for NULL (the Redis/CZMQ convention). */
#ifndef JOUST_XALLOC_H
#define JOUST_XALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Grows *arr (element size elem) so that it holds at least need elements. */
void xgrow(void **arr, size_t *cap, size_t need, size_t elem);
/* The bytes [lo, hi) of the block at p will not be read again before it
 * is freed: the whole pages among them go back to the kernel now (they
 * read as zeros if they are). For the consumed part of a large array
 * that is walked once and freed as a whole later. Never fails. */
void xdiscard(void *p, size_t lo, size_t hi);

#endif
