/* Tournament groups from a manifest field or the whole run (grouping.h). */
#include "grouping.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "log.h"
#include "run.h"
#include "u64map.h"
#include "xalloc.h"

int joust_run_grouped(const Joust__RunRecord *run)
{
    return run->group_all || (run->group_by && run->group_by[0]);
}

const char *joust_run_grouping(const Joust__RunRecord *run, char *buf, size_t len)
{
    if (run->group_all)
        snprintf(buf, len, "all");
    else if (run->group_by && run->group_by[0])
        snprintf(buf, len, "field %s", run->group_by);
    else
        snprintf(buf, len, "prompt");
    return buf;
}

void joust_groups_free(joust_groups *g)
{
    free(g->gid);
    free(g->off);
    free(g->ids);
    memset(g, 0, sizeof *g);
}

/* The group key of an image: 1 and the hash of its value, 0 when it has no
 * such field. */
static int key_of(const Joust__RunRecord *run, const Joust__ImageRecord *img, uint64_t *key)
{
    if (run->group_all) {
        *key = 1;
        return 1;
    }
    const char *f = run->group_by;
    if (!strcmp(f, "model")) {
        if (!img->model)
            return 0;
        *key = joust_hash64(img->model, strlen(img->model));
        return 1;
    }
    cJSON *meta = img->meta_json ? cJSON_Parse(img->meta_json) : NULL;
    const cJSON *v = meta ? cJSON_GetObjectItemCaseSensitive(meta, f) : NULL;
    int found = v != NULL;
    if (found && cJSON_IsString(v)) {
        *key = joust_hash64(v->valuestring, strlen(v->valuestring));
    } else if (found) {
        char *text = cJSON_PrintUnformatted(v);
        /* "s" and the number s must differ: a non-string's text is hashed
         * with a leading NUL, which no string value holds. */
        size_t len = strlen(text);
        char *tagged = xmalloc(len + 1);
        tagged[0] = '\0';
        memcpy(tagged + 1, text, len);
        *key = joust_hash64(tagged, len + 1);
        free(tagged);
        cJSON_free(text);
    }
    cJSON_Delete(meta);
    return found;
}

/* What joust_groups_load gathers while it walks the run's images. */
typedef struct {
    const Joust__RunRecord *run;
    joust_groups *out;
    joust_u64map_t index; /* key hash -> group index + 1 */
    uint64_t *img, *grp, *count;
    size_t ni, icap, gcap, ccap, ng;
} groups_walk;

static int add_image(const Joust__ImageRecord *ir, void *arg)
{
    groups_walk *w = arg;
    uint64_t key, g, id = ir->image_id;
    if (!key_of(w->run, ir, &key)) {
        log_error("--group-by %s: image %s (manifest line %" PRIu64 ") has no field \"%s\"; "
                  "every image of the run needs it", w->run->group_by,
                  ir->caller_id ? ir->caller_id : ir->uri, ir->line, w->run->group_by);
        return JOUST_EINVAL;
    }
    key = key ? key : 1; /* 0 is the map's empty key */
    if (!joust_u64map_get(&w->index, key, &g)) {
        size_t cc = w->ccap;
        xgrow((void **)&w->out->gid, &w->gcap, w->ng + 1, sizeof *w->out->gid);
        xgrow((void **)&w->count, &cc, w->ng + 1, sizeof *w->count);
        w->ccap = cc;
        w->out->gid[w->ng] = id; /* images come in id order: the first is the smallest */
        w->count[w->ng] = 0;
        g = ++w->ng;
        joust_u64map_put(&w->index, key, g);
    }
    w->count[g - 1]++;
    size_t ic = w->icap;
    xgrow((void **)&w->img, &ic, w->ni + 1, sizeof *w->img);
    xgrow((void **)&w->grp, &w->icap, w->ni + 1, sizeof *w->grp);
    w->img[w->ni] = id;
    w->grp[w->ni++] = g - 1;
    return 0;
}

int joust_groups_load(joust_store_t *st, const Joust__RunRecord *run, joust_groups *out)
{
    memset(out, 0, sizeof *out);
    groups_walk w = {.run = run, .out = out};
    joust_u64map_init(&w.index);
    int rc = joust_run_images_each(st, run, add_image, &w);
    joust_u64map_free(&w.index);
    uint64_t *img = w.img, *grp = w.grp, *count = w.count;
    size_t ni = w.ni, ng = w.ng;
    if (rc == 0) {
        /* Groups are numbered in the order of their first image: gid is
         * ascending already. A counting sort keeps members in id order. */
        out->ng = ng;
        out->off = xcalloc(ng + 1, sizeof *out->off);
        for (size_t g = 0; g < ng; g++)
            out->off[g + 1] = out->off[g] + count[g];
        out->ids = xmalloc((ni ? ni : 1) * sizeof *out->ids);
        for (size_t g = 0; g < ng; g++)
            count[g] = out->off[g];
        for (size_t i = 0; i < ni; i++)
            out->ids[count[grp[i]]++] = img[i];
    }
    free(img);
    free(grp);
    free(count);
    if (rc < 0)
        joust_groups_free(out);
    return rc;
}

/* Index of the first group with gid >= id. */
static size_t lower_bound(const joust_groups *g, uint64_t id)
{
    size_t lo = 0, hi = g->ng;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->gid[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int joust_groups_walk(const joust_groups *g, uint64_t from, uint64_t until, joust_rec_prompt_fn fn,
                      void *arg, uint64_t *next)
{
    size_t i = lower_bound(g, from);
    if (next)
        *next = from;
    for (; i < g->ng && (!until || g->gid[i] < until); i++) {
        int rc = fn(g->gid[i], g->ids + g->off[i], g->off[i + 1] - g->off[i], arg);
        if (rc < 0)
            return rc;
        if (next)
            *next = g->gid[i] + 1;
        if (rc > 0)
            return 1;
    }
    return 0;
}

int joust_groups_find(const joust_groups *g, uint64_t gid, const uint64_t **ids, size_t *n)
{
    size_t i = lower_bound(g, gid);
    if (i == g->ng || g->gid[i] != gid)
        return JOUST_ENOTFOUND;
    *ids = g->ids + g->off[i];
    *n = g->off[i + 1] - g->off[i];
    return 0;
}

int joust_run_group_walk(joust_store_t *st, const Joust__RunRecord *run, uint64_t from,
                         uint64_t until, joust_rec_prompt_fn fn, void *arg, uint64_t *next)
{
    if (!joust_run_grouped(run))
        return joust_rec_prompt_walk(st, from, until, fn, arg, next);
    /* A group streamed part of the way (its id is the cursor) is planned. */
    if (until && run->group_issued > 0 && until <= run->plan_cursor)
        until = run->plan_cursor + 1;
    joust_groups g;
    int rc = joust_groups_load(st, run, &g);
    if (rc == 0)
        rc = joust_groups_walk(&g, from, until, fn, arg, next);
    joust_groups_free(&g);
    return rc;
}
