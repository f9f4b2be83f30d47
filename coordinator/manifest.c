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

/* Length of the longest prefix of s[0..len) of at most max bytes that does
 * not cut a UTF-8 sequence. */
static int utf8_prefix(const char *s, int len, int max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/* Name of a control character for messages. */
static const char *ctl_name(unsigned c)
{
    switch (c) {
    case 0x00: return "NUL";
    case 0x0b: return "vertical tab";
    case 0x0c: return "form feed";
    case 0x1b: return "escape";
    default: return "control character";
    }
}

static int is_json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The lexical rules cJSON does not enforce, checked on the raw line before
 * it is parsed: between tokens only JSON's whitespace (space, tab, CR, LF;
 * cJSON skips every byte <= 0x20, so a form feed or a vertical tab would
 * pass), no raw control character inside a string, and no string that
 * decodes to a NUL (\u0000 is the only way to write one): the parsed value
 * is a C string, so a NUL would silently cut it (a path to another file, a
 * prompt to its first byte). Errors name the top-level field concerned. */
static int check_lexical(const char *line, size_t len, char *err, size_t errlen)
{
    int depth = 0, in_str = 0, key_next = 0, str_is_key = 0;
    const char *key = NULL, *str = NULL; /* current top-level key, current string */
    int keylen = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (!in_str) {
            if (is_json_space(c))
                continue;
            if (c < 0x20 || c == 0x7f) {
                snprintf(err, errlen, "%s (0x%02x) at byte %zu, outside a string: JSON allows only "
                         "space, tab, CR and LF there", ctl_name(c), c, i + 1);
                return JOUST_EINVAL;
            }
            if (c >= 0x80) {
                snprintf(err, errlen, "non-ASCII character at byte %zu, outside a string: JSON "
                         "allows only space, tab, CR and LF there", i + 1);
                return JOUST_EINVAL;
            }
            if (c == '"') {
                in_str = 1;
                str = line + i + 1;
                str_is_key = depth == 1 && key_next;
            } else if (c == '{' || c == '[') {
                depth++;
                key_next = c == '{' && depth == 1;
            } else if (c == '}' || c == ']') {
                depth--;
            } else if (c == ',' && depth == 1) {
                key_next = 1;
            } else if (c == ':' && depth == 1) {
                key_next = 0;
            }
            continue;
        }
        if (c == '"') {
            in_str = 0;
            if (str_is_key) {
                key = str;
                keylen = (int)(line + i - str);
            }
        } else if (c < 0x20) {
            snprintf(err, errlen, "%s (0x%02x) inside a string at byte %zu: JSON needs it escaped",
                     ctl_name(c), c, i + 1);
            return JOUST_EINVAL;
        } else if (c == '\\' && i + 1 < len) {
            i++;
            if (line[i] == 'u' && len - i > 4 && !memcmp(line + i + 1, "0000", 4)) {
                if (str_is_key)
                    snprintf(err, errlen, "a field name contains NUL (\\u0000)");
                else if (key)
                    snprintf(err, errlen, "field \"%.*s\": contains NUL (\\u0000)",
                             utf8_prefix(key, keylen, 64), key);
                else
                    snprintf(err, errlen, "a string contains NUL (\\u0000)");
                return JOUST_EINVAL;
            }
        }
    }
    return 0;
}

int manifest_id_reserved(const char *id)
{
    return id[0] == '#' && id[1] && strspn(id + 1, "0123456789") == strlen(id + 1);
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
    if (check_lexical(line, len, err, errlen) < 0)
        return JOUST_EINVAL;
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (obj && end) {
        while (end < line + len && is_json_space((unsigned char)*end))
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
    if (item->id && !item->id[0]) {
        fail(err, errlen, "id", "must not be empty");
        goto out;
    }
    if (item->id && manifest_id_reserved(item->id)) {
        fail(err, errlen, "id", "ids of the form #N are reserved for images without an id");
        goto out;
    }
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
