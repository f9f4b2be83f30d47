#include "prom.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

enum { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

struct joust_prom_metric {
    int type;
    char *name, *help, *labels;
    _Atomic uint64_t count;  /* counter value; histogram count */
    _Atomic uint64_t bits;   /* gauge value; histogram sum (double bits) */
    double *bounds;
    _Atomic uint64_t *buckets; /* non-cumulative, n + 1 (the last: +Inf) */
    size_t n;
};

struct joust_prom {
    joust_prom_metric **v;
    size_t len, cap;
};

joust_prom_t *joust_prom_new(void) { return xcalloc(1, sizeof(joust_prom_t)); }

void joust_prom_destroy(joust_prom_t **reg)
{
    if (!*reg)
        return;
    for (size_t i = 0; i < (*reg)->len; i++) {
        joust_prom_metric *m = (*reg)->v[i];
        free(m->name);
        free(m->help);
        free(m->labels);
        free(m->bounds);
        free((void *)m->buckets);
        free(m);
    }
    free((*reg)->v);
    free(*reg);
    *reg = NULL;
}

static inline int valid_name(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != ':')
            return 0;
    return 1;
}

static joust_prom_metric *add(joust_prom_t *reg, int type, const char *name, const char *help,
                              const char *labels)
{
    assert(valid_name(name) && help && !strchr(help, '\n'));
    joust_prom_metric *m = xcalloc(1, sizeof *m);
    m->type = type;
    m->name = xstrdup(name);
    m->help = xstrdup(help);
    m->labels = labels && *labels ? xstrdup(labels) : NULL;
    xgrow((void **)&reg->v, &reg->cap, reg->len + 1, sizeof *reg->v);
    reg->v[reg->len++] = m;
    return m;
}

joust_prom_metric *joust_prom_counter(joust_prom_t *reg, const char *name, const char *help,
                                      const char *labels)
{
    return add(reg, PROM_COUNTER, name, help, labels);
}

joust_prom_metric *joust_prom_gauge(joust_prom_t *reg, const char *name, const char *help,
                                    const char *labels)
{
    return add(reg, PROM_GAUGE, name, help, labels);
}

void joust_prom_register(joust_prom_t *reg, void *base, const joust_prom_def *defs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *(joust_prom_metric **)((char *)base + defs[i].off) =
            add(reg, defs[i].gauge ? PROM_GAUGE : PROM_COUNTER, defs[i].name, defs[i].help, NULL);
}

joust_prom_metric *joust_prom_histogram(joust_prom_t *reg, const char *name, const char *help,
                                        const char *labels, const double *bounds, size_t n)
{
    for (size_t i = 1; i < n; i++)
        assert(bounds[i] > bounds[i - 1]);
    joust_prom_metric *m = add(reg, PROM_HISTOGRAM, name, help, labels);
    m->n = n;
    m->bounds = xmalloc((n ? n : 1) * sizeof *m->bounds);
    memcpy(m->bounds, bounds, n * sizeof *bounds);
    m->buckets = xcalloc(n + 1, sizeof *m->buckets);
    for (size_t i = 0; i <= n; i++)
        atomic_init(&m->buckets[i], 0);
    return m;
}

static double bits_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static void add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, double_bits(bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void joust_prom_add(joust_prom_metric *m, uint64_t v)
{
    if (!m)
        return;
    if (m->type == PROM_GAUGE)
        add_double(&m->bits, (double)v);
    else
        atomic_fetch_add_explicit(&m->count, v, memory_order_relaxed);
}

void joust_prom_set(joust_prom_metric *m, double v)
{
    if (!m)
        return;
    assert(m->type != PROM_HISTOGRAM);
    if (m->type == PROM_COUNTER)
        atomic_store_explicit(&m->count, v > 0 ? (uint64_t)v : 0, memory_order_relaxed);
    else
        atomic_store_explicit(&m->bits, double_bits(v), memory_order_relaxed);
}

void joust_prom_observe(joust_prom_metric *m, double v)
{
    if (!m)
        return;
    assert(m->type == PROM_HISTOGRAM);
    size_t i = 0;
    while (i < m->n && !(v <= m->bounds[i]))
        i++;
    atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
    add_double(&m->bits, v);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

static void put_value(joust_buf_t *out, double v)
{
    if (isinf(v))
        joust_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        joust_buf_puts(out, "NaN");
    else
        joust_buf_printf(out, "%.17g", v);
}

/* name{labels,extra} — either part may be absent. */
static void put_series(joust_buf_t *out, const char *name, const char *suffix, const char *labels,
                       const char *extra)
{
    joust_buf_printf(out, "%s%s", name, suffix);
    if (labels || extra)
        joust_buf_printf(out, "{%s%s%s}", labels ? labels : "", labels && extra ? "," : "",
                         extra ? extra : "");
    joust_buf_puts(out, " ");
}

static void render_one(const joust_prom_metric *m, joust_buf_t *out)
{
    if (m->type == PROM_COUNTER) {
        put_series(out, m->name, "", m->labels, NULL);
        joust_buf_printf(out, "%llu\n",
                         (unsigned long long)atomic_load_explicit(&m->count, memory_order_relaxed));
        return;
    }
    if (m->type == PROM_GAUGE) {
        put_series(out, m->name, "", m->labels, NULL);
        put_value(out, bits_double(atomic_load_explicit(&m->bits, memory_order_relaxed)));
        joust_buf_puts(out, "\n");
        return;
    }
    uint64_t cum = 0;
    for (size_t i = 0; i <= m->n; i++) {
        cum += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        char le[64] = "le=\"+Inf\"";
        if (i < m->n) /* the shortest form that reads back the same: 0.1, not 0.1000...01 */
            for (int prec = 15; prec <= 17; prec++)
                if (snprintf(le, sizeof le, "le=\"%.*g\"", prec, m->bounds[i]) > 0 &&
                    strtod(le + 4, NULL) == m->bounds[i])
                    break;
        put_series(out, m->name, "_bucket", m->labels, le);
        joust_buf_printf(out, "%llu\n", (unsigned long long)cum);
    }
    put_series(out, m->name, "_sum", m->labels, NULL);
    put_value(out, bits_double(atomic_load_explicit(&m->bits, memory_order_relaxed)));
    joust_buf_puts(out, "\n");
    /* _count equals the +Inf bucket, so a scrape never sees them differ. */
    put_series(out, m->name, "_count", m->labels, NULL);
    joust_buf_printf(out, "%llu\n", (unsigned long long)cum);
}

void joust_prom_render(joust_prom_t *reg, joust_buf_t *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    char *done = xcalloc(reg->len ? reg->len : 1, 1);
    /* Families: every series of one name together, after one HELP/TYPE. */
    for (size_t i = 0; i < reg->len; i++) {
        if (done[i])
            continue;
        const joust_prom_metric *m = reg->v[i];
        joust_buf_printf(out, "# HELP %s ", m->name);
        for (const char *h = m->help; *h; h++)
            joust_buf_puts(out, *h == '\\' ? "\\\\" : (char[2]){*h, 0});
        joust_buf_printf(out, "\n# TYPE %s %s\n", m->name, types[m->type]);
        for (size_t j = i; j < reg->len; j++)
            if (!done[j] && !strcmp(reg->v[j]->name, m->name)) {
                assert(reg->v[j]->type == m->type);
                render_one(reg->v[j], out);
                done[j] = 1;
            }
    }
    free(done);
}
