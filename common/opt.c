/* Option tables: parse, default, check, hand on, print. See opt.h. */
#include "opt.h"

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

#define FIELD(obj, off, type) ((type *)((char *)(obj) + (off)))
#define CFIELD(obj, off, type) ((const type *)((const char *)(obj) + (off)))

static int bad(char *err, size_t errlen, const joust_opt *o, const char *val, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "--%s: '%s' %s", o->name, val ? val : "", why);
    return JOUST_EINVAL;
}

static int choice_ok(const char *choices, const char *val)
{
    size_t len = strlen(val);
    for (const char *c = choices; c && *c;) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (n == len && !strncmp(c, val, n))
            return 1;
        c = bar ? bar + 1 : c + n;
    }
    return 0;
}

static int set_int(const joust_opt *o, void *obj, const char *val, char *err, size_t errlen)
{
    /* The type's own bounds, narrowed by the table's. */
    long long lo = 0;
    unsigned long long hi = 0;
    switch (o->type) {
    case JOUST_OPT_INT: lo = INT_MIN; hi = INT_MAX; break;
    case JOUST_OPT_U32: hi = UINT32_MAX; break;
    case JOUST_OPT_U64: hi = UINT64_MAX; break;
    default: lo = LLONG_MIN; hi = LLONG_MAX; break;
    }
    if (o->min > (double)lo)
        lo = (long long)o->min;
    if (o->max != 0 && o->max < (double)hi)
        hi = (unsigned long long)o->max;
    char why[96];
    if (hi > (unsigned long long)LLONG_MAX)
        snprintf(why, sizeof why, "is not an integer in %lld..%llu", lo, hi);
    else
        snprintf(why, sizeof why, "is not an integer in %lld..%lld", lo, (long long)hi);
    char *end;
    errno = 0;
    if (val[0] == '-') {
        long long v = strtoll(val, &end, 10);
        if (errno || end == val || *end || v < lo || v > (long long)hi)
            return bad(err, errlen, o, val, why);
        if (o->type == JOUST_OPT_INT)
            *FIELD(obj, o->offset, int) = (int)v;
        else
            *FIELD(obj, o->offset, long long) = v;
        return 0;
    }
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || end == val || *end || v > hi || (lo > 0 && v < (unsigned long long)lo))
        return bad(err, errlen, o, val, why);
    switch (o->type) {
    case JOUST_OPT_INT: *FIELD(obj, o->offset, int) = (int)v; break;
    case JOUST_OPT_U32: *FIELD(obj, o->offset, uint32_t) = (uint32_t)v; break;
    case JOUST_OPT_U64: *FIELD(obj, o->offset, uint64_t) = (uint64_t)v; break;
    default: *FIELD(obj, o->offset, long long) = (long long)v; break;
    }
    return 0;
}

int joust_opt_set(const joust_opt *o, void *obj, const char *val, char *err, size_t errlen)
{
    if (o->type == JOUST_OPT_FLAG || o->type == JOUST_OPT_UNFLAG) {
        *FIELD(obj, o->offset, int) = o->type == JOUST_OPT_FLAG;
        return 0;
    }
    if (!val)
        return bad(err, errlen, o, val, "needs a value");
    switch (o->type) {
    case JOUST_OPT_STR: *FIELD(obj, o->offset, const char *) = val; return 0;
    case JOUST_OPT_CHOICE: {
        if (!choice_ok(o->choices, val)) {
            /* "a|b|c" -> "is not a, b or c" */
            char why[256] = "is not ";
            size_t k = strlen(why);
            for (const char *c = o->choices; *c && k + 4 < sizeof why; c++) {
                if (*c != '|') {
                    why[k++] = *c;
                    continue;
                }
                const char *sep = strchr(c + 1, '|') ? ", " : " or ";
                for (; *sep && k + 1 < sizeof why; sep++)
                    why[k++] = *sep;
            }
            why[k] = '\0';
            return bad(err, errlen, o, val, why);
        }
        *FIELD(obj, o->offset, const char *) = val;
        return 0;
    }
    case JOUST_OPT_LIST: {
        int *count = FIELD(obj, o->count_offset, int);
        if (*count >= o->max_count) {
            if (err && errlen)
                snprintf(err, errlen, "--%s: at most %d of them", o->name, o->max_count);
            return JOUST_EINVAL;
        }
        FIELD(obj, o->offset, const char *)[(*count)++] = val;
        return 0;
    }
    case JOUST_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(val, &end);
        int ranged = o->min != 0 || o->max != 0;
        if (errno || end == val || *end || !isfinite(v) || (ranged && (v < o->min || v > o->max))) {
            char why[96];
            if (!ranged)
                snprintf(why, sizeof why, "is not a number");
            else if (isinf(o->max))
                snprintf(why, sizeof why, "is not a number >= %g", o->min);
            else
                snprintf(why, sizeof why, "is not a number in [%g, %g]", o->min, o->max);
            return bad(err, errlen, o, val, why);
        }
        *FIELD(obj, o->offset, double) = v;
        return 0;
    }
    default: return set_int(o, obj, val, err, errlen);
    }
}

void joust_opt_defaults(const joust_opt *tab, size_t n, void *obj)
{
    for (size_t i = 0; i < n; i++) {
        const joust_opt *o = &tab[i];
        switch (o->type) {
        case JOUST_OPT_LIST: *FIELD(obj, o->count_offset, int) = 0; break;
        case JOUST_OPT_STR:
        case JOUST_OPT_CHOICE: *FIELD(obj, o->offset, const char *) = o->dflt; break;
        case JOUST_OPT_FLAG:
        case JOUST_OPT_UNFLAG: *FIELD(obj, o->offset, int) = o->type == JOUST_OPT_UNFLAG; break;
        default: {
            /* Numbers: zero, then the default through the parser (a table
             * whose default is out of its own range is a programmer error). */
            joust_opt z = *o;
            z.min = z.max = 0;
            int rc = joust_opt_set(&z, obj, o->dflt ? o->dflt : "0", NULL, 0);
            (void)rc;
            if (o->type == JOUST_OPT_DOUBLE && !o->dflt)
                *FIELD(obj, o->offset, double) = 0;
            break;
        }
        }
    }
}

const joust_opt *joust_opt_find(const joust_opt *tab, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i].name, name))
            return &tab[i];
    return NULL;
}

int joust_opt_check(const joust_opt *tab, size_t n, const void *obj, const char *what, char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const joust_opt *o = &tab[i];
        if (!(o->flags & JOUST_OPT_REQUIRED))
            continue;
        int set = o->type == JOUST_OPT_LIST ? *CFIELD(obj, o->count_offset, int) > 0
                                            : *CFIELD(obj, o->offset, const char *) != NULL;
        if (!set) {
            if (err && errlen)
                snprintf(err, errlen, "%s needs --%s %s", what, o->name, o->arg ? o->arg : "");
            return JOUST_EINVAL;
        }
    }
    return 0;
}

void joust_argv_add(joust_argv *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? 2 * a->cap : 32;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = xstrdup(s);
    a->v[a->n] = NULL;
}

void joust_argv_free(joust_argv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

static void add_pair(joust_argv *a, const char *name, const char *val)
{
    char opt[128];
    snprintf(opt, sizeof opt, "--%s", name);
    joust_argv_add(a, opt);
    if (val)
        joust_argv_add(a, val);
}

void joust_opt_to_argv(const joust_opt *o, const void *obj, joust_argv *a)
{
    if (o->flags & JOUST_OPT_LOCAL)
        return;
    char num[48];
    switch (o->type) {
    case JOUST_OPT_STR:
    case JOUST_OPT_CHOICE: {
        const char *s = *CFIELD(obj, o->offset, const char *);
        if (s)
            add_pair(a, o->name, s);
        return;
    }
    case JOUST_OPT_LIST: {
        int n = *CFIELD(obj, o->count_offset, int);
        for (int i = 0; i < n; i++)
            add_pair(a, o->name, CFIELD(obj, o->offset, const char *)[i]);
        return;
    }
    case JOUST_OPT_FLAG:
    case JOUST_OPT_UNFLAG:
        if (*CFIELD(obj, o->offset, int) != (o->type == JOUST_OPT_UNFLAG))
            add_pair(a, o->name, NULL);
        return;
    case JOUST_OPT_INT: snprintf(num, sizeof num, "%d", *CFIELD(obj, o->offset, int)); break;
    case JOUST_OPT_U32: snprintf(num, sizeof num, "%" PRIu32, *CFIELD(obj, o->offset, uint32_t)); break;
    case JOUST_OPT_U64: snprintf(num, sizeof num, "%" PRIu64, *CFIELD(obj, o->offset, uint64_t)); break;
    case JOUST_OPT_LL: snprintf(num, sizeof num, "%lld", *CFIELD(obj, o->offset, long long)); break;
    case JOUST_OPT_DOUBLE: snprintf(num, sizeof num, "%.17g", *CFIELD(obj, o->offset, double)); break;
    }
    add_pair(a, o->name, num);
}

void joust_opt_help(const joust_opt *tab, size_t n, unsigned mask, FILE *f)
{
    for (size_t i = 0; i < n; i++) {
        const joust_opt *o = &tab[i];
        if (mask && !(o->mask & mask))
            continue;
        char head[64];
        int len = snprintf(head, sizeof head, "  --%s%s%s", o->name, o->arg ? " " : "",
                           o->arg ? o->arg : "");
        fprintf(f, "%-23s%s", head, len >= 23 ? " " : "");
        const char *h = o->help ? o->help : "";
        int shown_default = !o->dflt || strstr(h, "(default") != NULL;
        for (;;) {
            const char *nl = strchr(h, '\n');
            int n_ = nl ? (int)(nl - h) : (int)strlen(h);
            fprintf(f, "%.*s", n_, h);
            if (!nl)
                break;
            fprintf(f, "\n%23s", "");
            h = nl + 1;
        }
        if (!shown_default)
            fprintf(f, " (default %s)", o->dflt);
        fputc('\n', f);
    }
}
