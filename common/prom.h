/* Prometheus metrics: a registry of counters, gauges and histograms that
 * one thread (a main loop) updates and another (the HTTP thread of
 * prom_http.h) renders in the Prometheus text exposition format 0.0.4.
 *
 * Threads: register every metric before the registry is shared (before
 * joust_prom_http_start); after that the registry's shape is frozen and
 * only values change. Updates are C11 atomics (relaxed), so any thread may
 * update and render at once; a rendered histogram may be one observation
 * behind between its buckets, _sum and _count, which Prometheus tolerates.
 *
 * Ownership: the registry owns every metric; handles stay valid until
 * joust_prom_destroy. Names and label texts are copied. Errors: none at
 * run time; a malformed name or label text is a programmer error (assert). */
#ifndef JOUST_PROM_H
#define JOUST_PROM_H
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct joust_prom joust_prom_t;
typedef struct joust_prom_metric joust_prom_metric;

joust_prom_t *joust_prom_new(void);
void joust_prom_destroy(joust_prom_t **reg);

/* labels: NULL, or the label pairs without braces, e.g. "status=\"ok\"".
 * Series of one name share its HELP and TYPE lines (the first one's). */
joust_prom_metric *joust_prom_counter(joust_prom_t *reg, const char *name, const char *help,
                                      const char *labels);
joust_prom_metric *joust_prom_gauge(joust_prom_t *reg, const char *name, const char *help,
                                    const char *labels);
/* bounds: n strictly increasing upper bounds (the +Inf bucket is added). */
joust_prom_metric *joust_prom_histogram(joust_prom_t *reg, const char *name, const char *help,
                                        const char *labels, const double *bounds, size_t n);

/* A table of plain counters and gauges without labels, registered into a
 * struct of handles: each row's handle goes to base + off. */
typedef struct {
    size_t off;   /* offsetof(the struct, its joust_prom_metric * field) */
    int gauge;    /* 0: counter, 1: gauge */
    const char *name, *help;
} joust_prom_def;
void joust_prom_register(joust_prom_t *reg, void *base, const joust_prom_def *defs, size_t n);

/* Counters: add, or set to a total the caller keeps (never lower than the
 * last one). Gauges: set (add also works). Histograms: observe.
 * Each accepts NULL (metrics off) and does nothing then. */
void joust_prom_add(joust_prom_metric *m, uint64_t v);
void joust_prom_set(joust_prom_metric *m, double v);
void joust_prom_observe(joust_prom_metric *m, double v);

/* Appends the exposition text of every metric to out. */
void joust_prom_render(joust_prom_t *reg, joust_buf_t *out);

#endif
