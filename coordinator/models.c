#include "models.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "u64map.h"
#include "xalloc.h"

struct models {
    joust_u64map_t index; /* hash of the name -> name id + 1 */
    char **names;          /* by name id */
    uint32_t *model_of;    /* name id -> model index; UINT32_MAX until it takes part */
    uint32_t *name_of;     /* model index -> name id */
    size_t nnames, names_cap, n;
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
    for (size_t i = 0; i < m->nnames; i++)
        free(m->names[i]);
    free(m->names);
    free(m->model_of);
    free(m->name_of);
    free(m->cells);
    joust_u64map_free(&m->index);
    free(m);
    *self_p = NULL;
}

uint32_t models_intern(models_t *m, const char *name)
{
    uint64_t h = joust_hash64(name, strlen(name)) | 1, idx;
    if (joust_u64map_get(&m->index, h, &idx))
        return (uint32_t)idx - 1;
    size_t cap = m->names_cap;
    xgrow((void **)&m->model_of, &cap, m->nnames + 1, sizeof *m->model_of);
    cap = m->names_cap;
    xgrow((void **)&m->name_of, &cap, m->nnames + 1, sizeof *m->name_of);
    xgrow((void **)&m->names, &m->names_cap, m->nnames + 1, sizeof *m->names);
    m->names[m->nnames] = xstrdup(name);
    m->model_of[m->nnames] = UINT32_MAX;
    joust_u64map_put(&m->index, h, ++m->nnames);
    return (uint32_t)m->nnames - 1;
}

/* The model index of a name id, given on its first use in a prompt. */
static uint32_t model_index(models_t *m, uint32_t name)
{
    if (m->model_of[name] == UINT32_MAX) {
        m->name_of[m->n] = name;
        m->model_of[name] = (uint32_t)m->n++;
    }
    return m->model_of[name];
}

void models_add_prompt(models_t *m, uint64_t pid, uint32_t n, const uint32_t *model,
                       const joust_outcome *o, size_t k)
{
    joust_model_outcome *mo = xmalloc((k ? k : 1) * sizeof *mo);
    uint32_t *idx = xmalloc((n ? n : 1) * sizeof *idx);
    for (uint32_t i = 0; i < n; i++)
        idx[i] = model[i] != UINT32_MAX ? model_index(m, model[i]) : UINT32_MAX;
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
        r->names[i] = xstrdup(m->names[m->name_of[i]]);
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

