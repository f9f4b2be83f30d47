#include "manifest.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

int utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        unsigned c = *s++;
        int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (extra < 0 || end - s < extra)
            return 0;
        unsigned cp = c & (0x3f >> extra);
        for (int i = 0; i < extra; i++, s++) {
            if ((*s & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (*s & 0x3f);
        }
        /* reject overlong forms, surrogates and values past U+10FFFF */
        static const unsigned min_cp[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[extra] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
    }
    return 1;
}

static int fail(char *err, size_t errlen, const char *field, const char *why)
{
    snprintf(err, errlen, "field \"%s\": %s", field, why);
    return JOUST_EINVAL;
}

/* A string field, or an integer written as a number (ids). */
static int get_text(const cJSON *obj, const char *field, int allow_int, size_t max, char **out,
                    char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if (n > max)
            return fail(err, errlen, field, "too long");
        *out = xstrndup(v->valuestring, n);
        return 0;
    }
    if (allow_int && cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
        fabs(v->valuedouble) < 9.007199254740992e15) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.0f", v->valuedouble);
        *out = xstrdup(buf);
        return 0;
    }
    return fail(err, errlen, field, allow_int ? "must be a string or an integer" : "must be a string");
}

static const char *known_fields[] = {"image", "prompt", "prompt_id", "model", "id", "latent"};

static char *extra_fields_json(cJSON *obj)
{
    cJSON *meta = cJSON_CreateObject();
    int n = 0;
    for (cJSON *c = obj->child; c; c = c->next) {
        int known = 0;
        for (size_t i = 0; i < sizeof known_fields / sizeof *known_fields; i++)
            known |= c->string && !strcmp(c->string, known_fields[i]);
        if (!known && c->string) {
            cJSON_AddItemToObject(meta, c->string, cJSON_Duplicate(c, 1));
            n++;
        }
    }
    char *out = NULL;
    if (n) {
        char *s = cJSON_PrintUnformatted(meta);
        out = xstrdup(s);
        cJSON_free(s);
    }
    cJSON_Delete(meta);
    return out;
}

int manifest_parse_line(const char *line, size_t len, manifest_item *item, char *err, size_t errlen)
{
    memset(item, 0, sizeof *item);
    if (len > MANIFEST_MAX_LINE) {
        snprintf(err, errlen, "line longer than %d bytes", MANIFEST_MAX_LINE);
        return JOUST_EINVAL;
    }
    if (!utf8_valid(line, len)) {
        snprintf(err, errlen, "not valid UTF-8");
        return JOUST_EINVAL;
    }
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (obj && end) {
        while (end < line + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (end != line + len) {
            snprintf(err, errlen, "invalid JSON: unexpected text after the object");
            cJSON_Delete(obj);
            return JOUST_EINVAL;
        }
    }
    if (!obj || !cJSON_IsObject(obj)) {
        snprintf(err, errlen, obj ? "not a JSON object" : "invalid JSON");
        cJSON_Delete(obj);
        return JOUST_EINVAL;
    }
    int rc;
    if ((rc = get_text(obj, "image", 0, MANIFEST_MAX_URI, &item->image, err, errlen)) < 0 ||
        (rc = get_text(obj, "prompt", 0, MANIFEST_MAX_PROMPT, &item->prompt, err, errlen)) < 0 ||
        (rc = get_text(obj, "prompt_id", 1, MANIFEST_MAX_NAME, &item->prompt_id, err, errlen)) < 0 ||
        (rc = get_text(obj, "model", 0, MANIFEST_MAX_NAME, &item->model, err, errlen)) < 0 ||
        (rc = get_text(obj, "id", 1, MANIFEST_MAX_NAME, &item->id, err, errlen)) < 0)
        goto out;
    rc = JOUST_EINVAL;
    if (!item->image || !item->image[0]) {
        fail(err, errlen, "image", "required (a path or URI)");
        goto out;
    }
    if (!item->prompt && !item->prompt_id) {
        snprintf(err, errlen, "needs \"prompt\" or \"prompt_id\"");
        goto out;
    }
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(obj, "latent");
    if (lat && !cJSON_IsNull(lat)) {
        if (!cJSON_IsNumber(lat) || !isfinite(lat->valuedouble)) {
            fail(err, errlen, "latent", "must be a finite number");
            goto out;
        }
        item->latent = lat->valuedouble;
        item->has_latent = 1;
    }
    if (!item->prompt)
        item->prompt = xstrdup("");
    size_t klen = 5 + strlen(item->prompt_id ? item->prompt_id : item->prompt);
    item->group_key = xmalloc(klen + 1);
    snprintf(item->group_key, klen + 1, "%s%s", item->prompt_id ? "id:" : "text:",
             item->prompt_id ? item->prompt_id : item->prompt);
    item->meta_json = extra_fields_json(obj);
    rc = 0;
out:
    cJSON_Delete(obj);
    if (rc < 0)
        manifest_item_clear(item);
    return rc;
}

void manifest_item_clear(manifest_item *item)
{
    free(item->image);
    free(item->prompt);
    free(item->prompt_id);
    free(item->model);
    free(item->id);
    free(item->meta_json);
    free(item->group_key);
    memset(item, 0, sizeof *item);
}
