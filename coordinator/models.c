#include "models.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "hash.h"
#include "u64map.h"
#include "xalloc.h"

struct models {
    joust_u64map_t index; /* hash of the name -> index + 1 */
    char **names;
    size_t n, names_cap;
    joust_model_cell *cells;
    size_t ncells, cells_cap;
};

models_t *models_new(void)
{
    models_t *m = xcalloc(1, sizeof *m);
    joust_u64map_init(&m->index);
    return m;
}

void models_destroy(models_t **self_p)
{
    models_t *m = *self_p;
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->names[i]);
    free(m->names);
    free(m->cells);
    joust_u64map_free(&m->index);
    free(m);
    *self_p = NULL;
}

static uint32_t model_index(models_t *m, const char *name)
{
    uint64_t h = joust_hash64(name, strlen(name)) | 1, idx;
    if (joust_u64map_get(&m->index, h, &idx))
        return (uint32_t)idx - 1;
    xgrow((void **)&m->names, &m->names_cap, m->n + 1, sizeof *m->names);
    m->names[m->n] = xstrdup(name);
    joust_u64map_put(&m->index, h, ++m->n);
    return (uint32_t)m->n - 1;
}

void models_add_prompt(models_t *m, uint64_t pid, uint32_t n, const char *const *model,
                       const joust_outcome *o, size_t k)
{
    joust_model_outcome *mo = xmalloc((k ? k : 1) * sizeof *mo);
    uint32_t *idx = xmalloc((n ? n : 1) * sizeof *idx);
    for (uint32_t i = 0; i < n; i++)
        idx[i] = model[i] ? model_index(m, model[i]) : UINT32_MAX;
    size_t j = 0;
    for (size_t i = 0; i < k; i++)
        if (idx[o[i].first] != UINT32_MAX && idx[o[i].second] != UINT32_MAX)
            mo[j++] = (joust_model_outcome){pid, idx[o[i].first], idx[o[i].second], o[i].p_first};
    joust_model_cell *cells = NULL;
    size_t nc = 0;
    if (j && joust_model_cells((uint32_t)m->n, mo, j, &cells, &nc) == 0 && nc) {
        xgrow((void **)&m->cells, &m->cells_cap, m->ncells + nc, sizeof *m->cells);
        memcpy(m->cells + m->ncells, cells, nc * sizeof *cells);
        m->ncells += nc;
    }
    free(cells);
    free(mo);
    free(idx);
}

int models_fit(models_t *m, joust_model_report *r)
{
    memset(r, 0, sizeof *r);
    if (m->n < 2 || !m->ncells)
        return 0;
    joust_model_fit_opts o;
    joust_model_fit_opts_defaults(&o);
    r->score = xcalloc(m->n, sizeof *r->score);
    int rc = joust_model_fit((uint32_t)m->n, m->cells, m->ncells, &o, r->score, &r->components);
    if (rc < 0) {
        free(r->score);
        memset(r, 0, sizeof *r);
        return rc;
    }
    r->n = (uint32_t)m->n;
    r->names = xmalloc(m->n * sizeof *r->names);
    for (size_t i = 0; i < m->n; i++)
        r->names[i] = xstrdup(m->names[i]);
    return 0;
}

void joust_model_report_clear(joust_model_report *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        free(r->names[i]);
    free(r->names);
    free(r->score);
    memset(r, 0, sizeof *r);
}

/* Models in descending score, within each component. */
static uint32_t *order_of(const joust_model_report *r)
{
    uint32_t *ord = xmalloc((r->n ? r->n : 1) * sizeof *ord);
    for (uint32_t i = 0; i < r->n; i++)
        ord[i] = i;
    for (uint32_t i = 1; i < r->n; i++) /* insertion sort: a handful of models */
        for (uint32_t j = i; j > 0; j--) {
            const joust_model_score *a = &r->score[ord[j - 1]], *b = &r->score[ord[j]];
            if (a->component < b->component || (a->component == b->component && a->theta >= b->theta))
                break;
            uint32_t t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    return ord;
}

static void json_num(joust_buf_t *b, const char *key, double v)
{
    if (isfinite(v))
        joust_buf_printf(b, ",\"%s\":%.6g", key, v);
    else
        joust_buf_printf(b, ",\"%s\":null", key);
}

int joust_model_report_write(const joust_model_report *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return JOUST_EIO;
    uint32_t *ord = order_of(r);
    joust_buf_t b = {0};
    for (uint32_t k = 0; k < r->n; k++) {
        const joust_model_score *s = &r->score[ord[k]];
        joust_buf_reset(&b);
        joust_buf_puts(&b, "{\"model\":");
        joust_buf_json_str(&b, r->names[ord[k]]);
        json_num(&b, "score", s->theta);
        json_num(&b, "lo", s->lo);
        json_num(&b, "hi", s->hi);
        json_num(&b, "comparisons", s->comparisons);
        joust_buf_printf(&b, ",\"component\":%u}\n", s->component);
        fwrite(b.data, 1, b.len, f);
    }
    joust_buf_free(&b);
    free(ord);
    return fclose(f) == 0 ? 0 : JOUST_EIO;
}

void joust_model_report_print(const joust_model_report *r, FILE *out)
{
    if (!r->n)
        return;
    uint32_t *ord = order_of(r);
    fprintf(out, "\nmodels (Bradley-Terry over cross-model comparisons, 95%% bootstrap CI over prompts%s):\n",
            r->components > 1 ? "; scores compare only within a component" : "");
    for (uint32_t k = 0; k < r->n; k++) {
        const joust_model_score *s = &r->score[ord[k]];
        fprintf(out, "  %-24s %+.3f  [%+.3f, %+.3f]  %.0f comparisons", r->names[ord[k]], s->theta,
                s->lo, s->hi, s->comparisons);
        if (r->components > 1)
            fprintf(out, "  component %u", s->component);
        fputc('\n', out);
    }
    free(ord);
}
