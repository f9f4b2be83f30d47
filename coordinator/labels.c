/* Readers of human preference labels (labels.h). */
#include "labels.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "safe_open.h"
#include "u64map.h"
#include "uri.h"
#include "xalloc.h"

#define LABELS_MAX_BYTES ((size_t)1 << 31)

static const char *const format_names[] = {"auto", "imagereward", "hpdv2", "pickapic", "pairs"};

const char *joust_labels_format_name(joust_labels_format f)
{
    return (unsigned)f < sizeof format_names / sizeof *format_names ? format_names[f] : "?";
}

int joust_labels_format_parse(const char *name, joust_labels_format *out)
{
    for (unsigned i = 0; i < sizeof format_names / sizeof *format_names; i++)
        if (!strcmp(name, format_names[i])) {
            *out = (joust_labels_format)i;
            return 0;
        }
    return JOUST_EINVAL;
}

typedef struct {
    joust_labels *l;
    const char *dir;
    int jsonl;                /* records are lines (else array entries) */
    size_t cap_images, cap_prompts, cap_pairs, cap_errors, cap_cats;
    joust_u64map_t by_key;    /* pair formats: hash of the prompt key -> index + 1 */
    joust_u64map_t by_cat;    /* hash of a category -> index */
} reader;

static void add_error(reader *r, uint64_t where, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    joust_labels *l = r->l;
    if (l->n_errors == r->cap_errors) {
        r->cap_errors = r->cap_errors ? 2 * r->cap_errors : 16;
        l->errors = xrealloc(l->errors, r->cap_errors * sizeof *l->errors);
    }
    size_t len = strlen(msg) + 32;
    l->errors[l->n_errors] = xmalloc(len);
    snprintf(l->errors[l->n_errors++], len, "%s %llu: %s", r->jsonl ? "line" : "entry",
             (unsigned long long)where, msg);
}

/* A string field; NULL (with the reason in why) when absent or not a
 * string, or when empty and required non-empty. */
static const char *str_field(const cJSON *o, const char *name, int nonempty, char *why, size_t wl)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v) {
        snprintf(why, wl, "\"%s\" is missing", name);
        return NULL;
    }
    if (!cJSON_IsString(v) || !v->valuestring) {
        snprintf(why, wl, "\"%s\" is not a string", name);
        return NULL;
    }
    if (nonempty && !v->valuestring[0]) {
        snprintf(why, wl, "\"%s\" is empty", name);
        return NULL;
    }
    return v->valuestring;
}

/* An optional id (string or integer) as text into buf; 0 when absent, -1
 * when present but of another type. */
static int id_field(const cJSON *o, const char *name, char *buf, size_t bl)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v)
        return 0;
    if (cJSON_IsString(v) && v->valuestring && v->valuestring[0]) {
        snprintf(buf, bl, "%s", v->valuestring);
        return 1;
    }
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9e15) {
        snprintf(buf, bl, "%.0f", v->valuedouble);
        return 1;
    }
    return -1;
}

/* Category index of the record: JOUST_LABELS_NO_CATEGORY without one;
 * -1 (reason in why) when "category" is not a string. */
static int64_t category_of(reader *r, const cJSON *o, char *why, size_t wl)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "category");
    if (!v || cJSON_IsNull(v))
        return JOUST_LABELS_NO_CATEGORY;
    if (!cJSON_IsString(v) || !v->valuestring || !v->valuestring[0]) {
        snprintf(why, wl, "\"category\" is not a non-empty string");
        return -1;
    }
    joust_labels *l = r->l;
    uint64_t h = joust_hash64(v->valuestring, strlen(v->valuestring)), idx;
    if (joust_u64map_get(&r->by_cat, h, &idx) && !strcmp(l->categories[idx], v->valuestring))
        return (int64_t)idx;
    for (size_t i = 0; i < l->n_categories; i++) /* a hash collision: rare */
        if (!strcmp(l->categories[i], v->valuestring))
            return (int64_t)i;
    if (l->n_categories == r->cap_cats) {
        r->cap_cats = r->cap_cats ? 2 * r->cap_cats : 8;
        l->categories = xrealloc(l->categories, r->cap_cats * sizeof *l->categories);
    }
    joust_u64map_put(&r->by_cat, h, l->n_categories);
    l->categories[l->n_categories] = xstrdup(v->valuestring);
    return (int64_t)l->n_categories++;
}

/* Resolves an image reference like a manifest's; NULL with why. */
static char *resolve(reader *r, const char *ref, char *why, size_t wl)
{
    joust_uri u;
    char err[256];
    if (joust_uri_parse(ref, r->dir, &u, err, sizeof err) < 0) {
        snprintf(why, wl, "image \"%.200s\": %s", ref, err);
        return NULL;
    }
    char *out = u.path;
    u.path = NULL;
    joust_uri_clear(&u);
    return out;
}

static uint32_t add_image(reader *r, char *resolved)
{
    joust_labels *l = r->l;
    if (l->n_images == r->cap_images) {
        r->cap_images = r->cap_images ? 2 * r->cap_images : 64;
        l->images = xrealloc(l->images, r->cap_images * sizeof *l->images);
    }
    l->images[l->n_images] = resolved;
    return (uint32_t)l->n_images++;
}

static uint32_t add_prompt(reader *r, const char *key, const char *text)
{
    joust_labels *l = r->l;
    if (l->n_prompts == r->cap_prompts) {
        r->cap_prompts = r->cap_prompts ? 2 * r->cap_prompts : 64;
        l->prompts = xrealloc(l->prompts, r->cap_prompts * sizeof *l->prompts);
    }
    l->prompts[l->n_prompts] = (joust_label_prompt){xstrdup(key), xstrdup(text)};
    return (uint32_t)l->n_prompts++;
}

/* Pair formats: the prompt with this key, made on first sight. */
static uint32_t prompt_by_key(reader *r, const char *key, const char *text)
{
    joust_labels *l = r->l;
    uint64_t h = joust_hash64(key, strlen(key)), idx;
    if (joust_u64map_get(&r->by_key, h, &idx) && !strcmp(l->prompts[idx].key, key))
        return (uint32_t)idx;
    for (size_t i = 0; i < l->n_prompts; i++) /* a hash collision: rare */
        if (!strcmp(l->prompts[i].key, key))
            return (uint32_t)i;
    uint32_t p = add_prompt(r, key, text);
    joust_u64map_put(&r->by_key, h, p);
    return p;
}

static void add_pair(reader *r, uint32_t prompt, uint32_t a, uint32_t b, double human,
                     uint32_t category, uint64_t where)
{
    joust_labels *l = r->l;
    if (l->n_pairs == r->cap_pairs) {
        r->cap_pairs = r->cap_pairs ? 2 * r->cap_pairs : 256;
        l->pairs = xrealloc(l->pairs, r->cap_pairs * sizeof *l->pairs);
    }
    l->pairs[l->n_pairs++] = (joust_label_pair){prompt, a, b, human, category, where};
}

/* imagereward and hpdv2: one prompt with its images and ranks. */
static void ranked_record(reader *r, const cJSON *o, uint64_t where)
{
    int ir = r->l->format == JOUST_LABELS_IMAGEREWARD;
    const char *imgs_name = ir ? "generations" : "image_path", *rank_name = ir ? "ranking" : "rank";
    char why[512], key[256];
    const char *text = str_field(o, "prompt", 0, why, sizeof why);
    if (!text) {
        add_error(r, where, "%s", why);
        return;
    }
    int has_id = id_field(o, "prompt_id", key, sizeof key);
    if (has_id == 0)
        has_id = id_field(o, "id", key, sizeof key);
    if (has_id < 0) {
        add_error(r, where, "the prompt id is not a string or an integer");
        return;
    }
    const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(o, imgs_name);
    const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(o, rank_name);
    if (!cJSON_IsArray(imgs) || !cJSON_IsArray(ranks)) {
        add_error(r, where, "\"%s\" and \"%s\" must be lists", imgs_name, rank_name);
        return;
    }
    int n = cJSON_GetArraySize(imgs);
    if (n != cJSON_GetArraySize(ranks) || n < 1) {
        add_error(r, where, "\"%s\" has %d items and \"%s\" %d (they must match, at least 1)",
                  imgs_name, n, rank_name, cJSON_GetArraySize(ranks));
        return;
    }
    int64_t cat = category_of(r, o, why, sizeof why);
    if (cat < 0) {
        add_error(r, where, "%s", why);
        return;
    }
    char **res = xcalloc((size_t)n, sizeof *res);
    double *rk = xcalloc((size_t)n, sizeof *rk);
    int i = 0, bad = 0;
    for (const cJSON *a = imgs->child, *b = ranks->child; a && b && !bad; a = a->next, b = b->next, i++) {
        if (!cJSON_IsString(a) || !a->valuestring[0]) {
            add_error(r, where, "\"%s\"[%d] is not a non-empty string", imgs_name, i);
            bad = 1;
        } else if (!cJSON_IsNumber(b) || !isfinite(b->valuedouble)) {
            add_error(r, where, "\"%s\"[%d] is not a number", rank_name, i);
            bad = 1;
        } else if (!(res[i] = resolve(r, a->valuestring, why, sizeof why))) {
            add_error(r, where, "%s", why);
            bad = 1;
        } else {
            rk[i] = b->valuedouble;
        }
    }
    if (!bad) {
        uint32_t p = add_prompt(r, has_id ? key : text, text);
        uint32_t first = (uint32_t)r->l->n_images;
        for (int k = 0; k < n; k++)
            add_image(r, res[k]);
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++)
                add_pair(r, p, first + (uint32_t)a, first + (uint32_t)b,
                         rk[a] < rk[b] ? 1.0 : rk[a] > rk[b] ? 0.0 : 0.5, (uint32_t)cat, where);
    } else {
        for (int k = 0; k < n; k++)
            free(res[k]);
    }
    free(res);
    free(rk);
}

/* pickapic and pairs: one labelled pair. */
static void pair_record(reader *r, const cJSON *o, uint64_t where)
{
    int pp = r->l->format == JOUST_LABELS_PICKAPIC;
    char why[512], key[256];
    const char *text = str_field(o, pp ? "caption" : "prompt", 0, why, sizeof why);
    const char *ia = text ? str_field(o, pp ? "jpg_0" : "image_a", 1, why, sizeof why) : NULL;
    const char *ib = ia ? str_field(o, pp ? "jpg_1" : "image_b", 1, why, sizeof why) : NULL;
    if (!ib) {
        add_error(r, where, "%s", why);
        return;
    }
    double human = NAN;
    if (pp) {
        const cJSON *l0 = cJSON_GetObjectItemCaseSensitive(o, "label_0");
        const cJSON *l1 = cJSON_GetObjectItemCaseSensitive(o, "label_1");
        if (cJSON_IsNumber(l0) && cJSON_IsNumber(l1)) {
            double a = l0->valuedouble, b = l1->valuedouble;
            human = a == 1 && b == 0 ? 1.0 : a == 0 && b == 1 ? 0.0 : a == 0.5 && b == 0.5 ? 0.5 : NAN;
        }
        if (isnan(human)) {
            add_error(r, where, "\"label_0\", \"label_1\" must be 1, 0 or 0, 1 or 0.5, 0.5");
            return;
        }
    } else {
        const char *pref = str_field(o, "preferred", 1, why, sizeof why);
        human = !pref ? NAN : !strcmp(pref, "a") ? 1.0 : !strcmp(pref, "b") ? 0.0
                : !strcmp(pref, "tie") ? 0.5 : NAN;
        if (isnan(human)) {
            add_error(r, where, "%s", pref ? "\"preferred\" must be \"a\", \"b\" or \"tie\"" : why);
            return;
        }
    }
    int has_id = id_field(o, "prompt_id", key, sizeof key);
    if (has_id < 0) {
        add_error(r, where, "\"prompt_id\" is not a string or an integer");
        return;
    }
    int64_t cat = category_of(r, o, why, sizeof why);
    if (cat < 0) {
        add_error(r, where, "%s", why);
        return;
    }
    char *ra = resolve(r, ia, why, sizeof why), *rb = ra ? resolve(r, ib, why, sizeof why) : NULL;
    if (!rb) {
        free(ra);
        add_error(r, where, "%s", why);
        return;
    }
    uint32_t p = prompt_by_key(r, has_id ? key : text, text);
    uint32_t a = add_image(r, ra), b = add_image(r, rb);
    add_pair(r, p, a, b, human, (uint32_t)cat, where);
}

static int detect(const cJSON *o, joust_labels_format *f)
{
    static const struct {
        const char *field;
        joust_labels_format f;
    } by[] = {{"generations", JOUST_LABELS_IMAGEREWARD},
              {"image_path", JOUST_LABELS_HPDV2},
              {"jpg_0", JOUST_LABELS_PICKAPIC},
              {"image_a", JOUST_LABELS_PAIRS}};
    for (size_t i = 0; i < sizeof by / sizeof *by; i++)
        if (cJSON_GetObjectItemCaseSensitive(o, by[i].field)) {
            *f = by[i].f;
            return 0;
        }
    return JOUST_EINVAL;
}

/* One record; 0, or JOUST_EINVAL when AUTO cannot tell the format from
 * the first object. */
static int record(reader *r, const cJSON *o, uint64_t where)
{
    r->l->records++;
    if (!cJSON_IsObject(o)) {
        add_error(r, where, "not a JSON object");
        return 0;
    }
    if (r->l->format == JOUST_LABELS_AUTO && detect(o, &r->l->format) < 0)
        return JOUST_EINVAL;
    if (r->l->format == JOUST_LABELS_IMAGEREWARD || r->l->format == JOUST_LABELS_HPDV2)
        ranked_record(r, o, where);
    else
        pair_record(r, o, where);
    return 0;
}

int joust_labels_read(const char *path, joust_labels_format format, const char *base_dir,
                      joust_labels **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    char *buf = NULL;
    size_t len = 0;
    /* safe_open: a FIFO or device named as the label file fails at once, never blocks */
    int rc = joust_read_regular(path, 0, LABELS_MAX_BYTES, (unsigned char **)&buf, &len, err, errlen);
    if (rc < 0)
        return rc;
    joust_labels *l = xcalloc(1, sizeof *l);
    l->format = format;
    char *copy = xstrdup(path), *real = base_dir ? NULL : realpath(dirname(copy), NULL);
    char *dir = xstrdup(base_dir ? base_dir : real ? real : ".");
    free(real);
    free(copy);
    reader r = {.l = l, .dir = dir};
    joust_u64map_init(&r.by_key);
    joust_u64map_init(&r.by_cat);
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i < len && buf[i] == '[') {
        cJSON *arr = cJSON_ParseWithLength(buf, len);
        if (!arr || !cJSON_IsArray(arr)) {
            const char *at = cJSON_GetErrorPtr();
            rc = joust_errf(err, errlen, JOUST_EINVAL, "%s: not a valid JSON array (near byte %lld)",
                            path, at && at >= buf && at <= buf + len ? (long long)(at - buf) : -1LL);
        }
        uint64_t entry = 0;
        for (const cJSON *o = arr ? arr->child : NULL; o && rc == 0; o = o->next)
            rc = record(&r, o, ++entry);
        cJSON_Delete(arr);
    } else {
        r.jsonl = 1;
        uint64_t line = 0;
        for (size_t s = 0; s < len && rc == 0;) {
            size_t e = s;
            while (e < len && buf[e] != '\n')
                e++;
            line++;
            size_t k = s;
            while (k < e && (buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\r'))
                k++;
            if (k < e) {
                cJSON *o = cJSON_ParseWithLength(buf + s, e - s);
                if (!o) {
                    l->records++;
                    add_error(&r, line, "not valid JSON");
                } else {
                    rc = record(&r, o, line);
                }
                cJSON_Delete(o);
            }
            s = e + 1;
        }
    }
    if (rc == JOUST_EINVAL && !err[0])
        joust_errf(err, errlen, rc, "%s: cannot tell the label format from the first record (no "
                   "\"generations\", \"image_path\", \"jpg_0\" or \"image_a\"); give --format", path);
    free(buf);
    free(dir);
    joust_u64map_free(&r.by_key);
    joust_u64map_free(&r.by_cat);
    if (rc < 0) {
        joust_labels_destroy(&l);
        return rc;
    }
    if (l->format == JOUST_LABELS_AUTO) /* no object record at all */
        l->format = JOUST_LABELS_PAIRS;
    *out = l;
    return 0;
}

void joust_labels_destroy(joust_labels **self_p)
{
    joust_labels *l = self_p ? *self_p : NULL;
    if (!l)
        return;
    for (size_t i = 0; i < l->n_images; i++)
        free(l->images[i]);
    for (size_t i = 0; i < l->n_prompts; i++) {
        free(l->prompts[i].key);
        free(l->prompts[i].text);
    }
    for (size_t i = 0; i < l->n_categories; i++)
        free(l->categories[i]);
    for (size_t i = 0; i < l->n_errors; i++)
        free(l->errors[i]);
    free(l->images);
    free(l->prompts);
    free(l->pairs);
    free(l->categories);
    free(l->errors);
    free(l);
    *self_p = NULL;
}
