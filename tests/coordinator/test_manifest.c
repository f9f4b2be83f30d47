/* Tests of the manifest line parser (coordinator/manifest.h): valid lines
 * with every field, ids as strings and integers, extra fields kept as a JSON
 * object, group keys, and every rejected case with its reason; utf8_valid
 * on its own (overlong forms, surrogates, truncated sequences, limits);
 * NUL (\u0000 or a raw byte) in every kind of string, each kind of
 * non-JSON whitespace, reserved and empty ids. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "manifest.h"

static char err[256];

static int parse(const char *line, manifest_item *it)
{
    err[0] = '\0';
    return manifest_parse_line(line, strlen(line), it, err, sizeof err);
}

/* The line is rejected and the reason contains `why`. */
static void expect_bad(const char *line, size_t len, const char *why, int lineno)
{
    manifest_item it;
    err[0] = '\0';
    int rc = manifest_parse_line(line, len, &it, err, sizeof err);
    if (rc != JOUST_EINVAL || !strstr(err, why)) {
        test_failed++;
        fprintf(stderr, "%s:%d: expected rejection containing \"%s\", got rc %d err \"%s\"\n",
                __FILE__, lineno, why, rc, err);
        if (rc == 0)
            manifest_item_clear(&it);
        return;
    }
    test_passed++;
    /* a rejected item is left cleared */
    CHECK(it.image == NULL && it.prompt == NULL && it.group_key == NULL && it.meta_json == NULL);
}
#define BAD(line, why) expect_bad(line, strlen(line), why, __LINE__)
#define BADN(line, len, why) expect_bad(line, len, why, __LINE__)

static int streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static void test_valid_all_fields(void)
{
    manifest_item it;
    CHECK_RC(parse("{\"image\":\"a/b.png\",\"prompt\":\"a red fox\",\"prompt_id\":\"p-7\","
                   "\"model\":\"sdxl\",\"id\":\"img-1\",\"latent\":-1.25,"
                   "\"seed\":42,\"tags\":[\"x\",\"y\"],\"cfg\":{\"steps\":30}}",
                   &it));
    CHECK(streq(it.image, "a/b.png"));
    CHECK(streq(it.prompt, "a red fox"));
    CHECK(streq(it.prompt_id, "p-7"));
    CHECK(streq(it.model, "sdxl"));
    CHECK(streq(it.id, "img-1"));
    CHECK(it.has_latent == 1);
    CHECK_NEAR(it.latent, -1.25, 0);
    CHECK(streq(it.group_key, "id:p-7"));
    /* extra fields only, as one JSON object, values intact */
    CHECK(it.meta_json != NULL);
    cJSON *meta = it.meta_json ? cJSON_Parse(it.meta_json) : NULL;
    CHECK(meta && cJSON_IsObject(meta));
    if (meta) {
        CHECK(cJSON_GetArraySize(meta) == 3);
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(meta, "seed");
        CHECK(seed && cJSON_IsNumber(seed) && seed->valuedouble == 42);
        const cJSON *tags = cJSON_GetObjectItemCaseSensitive(meta, "tags");
        CHECK(tags && cJSON_IsArray(tags) && cJSON_GetArraySize(tags) == 2);
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(meta, "cfg");
        const cJSON *steps = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "steps") : NULL;
        CHECK(steps && steps->valuedouble == 30);
        /* known fields are not metadata */
        CHECK(cJSON_GetObjectItemCaseSensitive(meta, "image") == NULL);
        CHECK(cJSON_GetObjectItemCaseSensitive(meta, "prompt") == NULL);
        CHECK(cJSON_GetObjectItemCaseSensitive(meta, "latent") == NULL);
        CHECK(cJSON_GetObjectItemCaseSensitive(meta, "id") == NULL);
        cJSON_Delete(meta);
    }
    manifest_item_clear(&it);
    CHECK(it.image == NULL && it.meta_json == NULL);
    manifest_item_clear(&it); /* clearing twice is harmless */
}

static void test_valid_minimal(void)
{
    manifest_item it;
    /* prompt only: group by text, no metadata, absent fields NULL */
    CHECK_RC(parse("{\"image\":\"/abs/x.jpg\",\"prompt\":\"a cat\"}", &it));
    CHECK(streq(it.group_key, "text:a cat"));
    CHECK(it.prompt_id == NULL && it.model == NULL && it.id == NULL);
    CHECK(it.meta_json == NULL);
    CHECK(it.has_latent == 0);
    manifest_item_clear(&it);

    /* prompt_id only: prompt becomes "" and the group is by id */
    CHECK_RC(parse("{\"image\":\"x.jpg\",\"prompt_id\":\"g1\"}", &it));
    CHECK(streq(it.prompt, ""));
    CHECK(streq(it.group_key, "id:g1"));
    manifest_item_clear(&it);

    /* prompt_id as an integer, id as an integer */
    CHECK_RC(parse("{\"image\":\"x.jpg\",\"prompt\":\"p\",\"prompt_id\":17,\"id\":123456789}", &it));
    CHECK(streq(it.prompt_id, "17"));
    CHECK(streq(it.id, "123456789"));
    CHECK(streq(it.group_key, "id:17"));
    manifest_item_clear(&it);

    /* integer 17 and string "17" name the same group */
    CHECK_RC(parse("{\"image\":\"x.jpg\",\"prompt_id\":\"17\"}", &it));
    CHECK(streq(it.group_key, "id:17"));
    manifest_item_clear(&it);

    /* an integral number written with a fraction part is an integer */
    CHECK_RC(parse("{\"image\":\"x.jpg\",\"prompt_id\":5.0}", &it));
    CHECK(streq(it.prompt_id, "5"));
    manifest_item_clear(&it);

    /* null counts as absent */
    CHECK_RC(parse("{\"image\":\"x.jpg\",\"prompt\":\"p\",\"model\":null,\"latent\":null,"
                   "\"prompt_id\":null}", &it));
    CHECK(it.model == NULL && it.has_latent == 0 && it.prompt_id == NULL);
    CHECK(streq(it.group_key, "text:p"));
    manifest_item_clear(&it);

    /* latent 0 and integers */
    CHECK_RC(parse("{\"image\":\"x.jpg\",\"prompt\":\"p\",\"latent\":3}", &it));
    CHECK(it.has_latent == 1 && it.latent == 3.0);
    manifest_item_clear(&it);

    /* UTF-8 text and whitespace around the object */
    CHECK_RC(parse("  {\"image\":\"\xc3\xa9t\xc3\xa9.png\",\"prompt\":\"\xe6\x97\xa5\xe6\x9c\xac "
                   "\xf0\x9f\xa6\x8a\"}  ", &it));
    CHECK(streq(it.image, "\xc3\xa9t\xc3\xa9.png"));
    CHECK(streq(it.group_key, "text:\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\xa6\x8a"));
    manifest_item_clear(&it);

    /* an empty prompt string is a prompt (group "text:") */
    CHECK_RC(parse("{\"image\":\"x.jpg\",\"prompt\":\"\"}", &it));
    CHECK(streq(it.group_key, "text:"));
    manifest_item_clear(&it);

    /* the length argument bounds the parse: bytes after len are not read */
    const char *two = "{\"image\":\"x.jpg\",\"prompt\":\"p\"}GARBAGE";
    CHECK(manifest_parse_line(two, strlen(two) - 7, &it, err, sizeof err) == 0);
    manifest_item_clear(&it);
}

static void test_limits_ok(void)
{
    manifest_item it;
    /* exactly at each limit is accepted */
    size_t n = MANIFEST_MAX_URI + MANIFEST_MAX_PROMPT + MANIFEST_MAX_NAME * 3 + 256;
    char *line = malloc(n);
    char *uri = malloc(MANIFEST_MAX_URI + 1), *prompt = malloc(MANIFEST_MAX_PROMPT + 1),
         *name = malloc(MANIFEST_MAX_NAME + 1);
    memset(uri, 'u', MANIFEST_MAX_URI);
    uri[MANIFEST_MAX_URI] = '\0';
    memset(prompt, 'p', MANIFEST_MAX_PROMPT);
    prompt[MANIFEST_MAX_PROMPT] = '\0';
    memset(name, 'n', MANIFEST_MAX_NAME);
    name[MANIFEST_MAX_NAME] = '\0';
    snprintf(line, n, "{\"image\":\"%s\",\"prompt\":\"%s\",\"prompt_id\":\"%s\",\"model\":\"%s\",\"id\":\"%s\"}",
             uri, prompt, name, name, name);
    CHECK_RC(parse(line, &it));
    CHECK(it.image && strlen(it.image) == MANIFEST_MAX_URI);
    CHECK(it.prompt && strlen(it.prompt) == MANIFEST_MAX_PROMPT);
    manifest_item_clear(&it);

    /* one byte over each limit names the field */
    char *uri_long = malloc(MANIFEST_MAX_URI + 2);
    memset(uri_long, 'u', MANIFEST_MAX_URI + 1);
    uri_long[MANIFEST_MAX_URI + 1] = '\0';
    snprintf(line, n, "{\"image\":\"%s\",\"prompt\":\"p\"}", uri_long);
    BAD(line, "field \"image\": too long");

    char *prompt_long = malloc(MANIFEST_MAX_PROMPT + 2);
    memset(prompt_long, 'p', MANIFEST_MAX_PROMPT + 1);
    prompt_long[MANIFEST_MAX_PROMPT + 1] = '\0';
    snprintf(line, n, "{\"image\":\"x\",\"prompt\":\"%s\"}", prompt_long);
    BAD(line, "field \"prompt\": too long");

    char *name_long = malloc(MANIFEST_MAX_NAME + 2);
    memset(name_long, 'n', MANIFEST_MAX_NAME + 1);
    name_long[MANIFEST_MAX_NAME + 1] = '\0';
    snprintf(line, n, "{\"image\":\"x\",\"prompt_id\":\"%s\"}", name_long);
    BAD(line, "field \"prompt_id\": too long");
    snprintf(line, n, "{\"image\":\"x\",\"prompt\":\"p\",\"model\":\"%s\"}", name_long);
    BAD(line, "field \"model\": too long");
    snprintf(line, n, "{\"image\":\"x\",\"prompt\":\"p\",\"id\":\"%s\"}", name_long);
    BAD(line, "field \"id\": too long");

    free(line);
    free(uri);
    free(prompt);
    free(name);
    free(uri_long);
    free(prompt_long);
    free(name_long);
}

static void test_line_limit(void)
{
    /* A line over MANIFEST_MAX_LINE is rejected before it is parsed. */
    size_t len = MANIFEST_MAX_LINE + 1;
    char *line = malloc(len + 1);
    memset(line, ' ', len);
    memcpy(line, "{\"image\":\"x\",\"prompt\":\"p\"}", 26);
    line[len] = '\0';
    BADN(line, len, "line longer than");
    /* the same bytes at exactly the limit are fine (trailing spaces) */
    manifest_item it;
    CHECK(manifest_parse_line(line, MANIFEST_MAX_LINE, &it, err, sizeof err) == 0);
    manifest_item_clear(&it);
    free(line);
}

static void test_bad_lines(void)
{
    BAD("", "invalid JSON");
    BAD("{", "invalid JSON");
    BAD("{\"image\":\"x\",\"prompt\":\"p\"", "invalid JSON");
    BAD("{image:\"x\"}", "invalid JSON");
    BAD("not json at all", "invalid JSON");

    BAD("[1,2,3]", "not a JSON object");
    BAD("\"image\"", "not a JSON object");
    BAD("42", "not a JSON object");
    BAD("null", "not a JSON object");

    /* invalid UTF-8 is rejected before JSON parsing */
    BAD("{\"image\":\"x\",\"prompt\":\"\xc0\xaf\"}", "not valid UTF-8");           /* overlong '/' */
    BAD("{\"image\":\"x\",\"prompt\":\"\xe0\x80\xaf\"}", "not valid UTF-8");       /* overlong, 3 bytes */
    BAD("{\"image\":\"x\",\"prompt\":\"\xf0\x80\x80\xaf\"}", "not valid UTF-8");   /* overlong, 4 bytes */
    BAD("{\"image\":\"x\",\"prompt\":\"\xed\xa0\x80\"}", "not valid UTF-8");       /* surrogate U+D800 */
    BAD("{\"image\":\"x\",\"prompt\":\"\xed\xbf\xbf\"}", "not valid UTF-8");       /* surrogate U+DFFF */
    BAD("{\"image\":\"x\",\"prompt\":\"\xe6\x97\"}", "not valid UTF-8");           /* truncated */
    BAD("{\"image\":\"x\",\"prompt\":\"\xff\"}", "not valid UTF-8");               /* never valid */
    BADN("{\"image\":\"x\",\"prompt\":\"p\"}\xe6", 27, "not valid UTF-8");         /* truncated at end */

    BAD("{\"prompt\":\"p\"}", "field \"image\": required");
    BAD("{\"image\":null,\"prompt\":\"p\"}", "field \"image\": required");
    BAD("{\"image\":\"\",\"prompt\":\"p\"}", "field \"image\": required");
    BAD("{\"image\":5,\"prompt\":\"p\"}", "field \"image\": must be a string");
    BAD("{\"image\":[\"a\"],\"prompt\":\"p\"}", "field \"image\": must be a string");
    BAD("{\"image\":{\"path\":\"a\"},\"prompt\":\"p\"}", "field \"image\": must be a string");

    BAD("{\"image\":\"x\"}", "needs \"prompt\" or \"prompt_id\"");
    BAD("{\"image\":\"x\",\"prompt\":null,\"prompt_id\":null}", "needs \"prompt\" or \"prompt_id\"");
    BAD("{\"image\":\"x\",\"caption\":\"p\"}", "needs \"prompt\" or \"prompt_id\"");

    BAD("{\"image\":\"x\",\"prompt\":7}", "field \"prompt\": must be a string");
    BAD("{\"image\":\"x\",\"prompt\":\"p\",\"model\":1}", "field \"model\": must be a string");
    BAD("{\"image\":\"x\",\"prompt_id\":1.5}", "field \"prompt_id\": must be a string or an integer");
    BAD("{\"image\":\"x\",\"prompt_id\":true}", "field \"prompt_id\": must be a string or an integer");
    BAD("{\"image\":\"x\",\"prompt\":\"p\",\"id\":[1]}", "field \"id\": must be a string or an integer");
    /* integers past 2^53 cannot be represented exactly: rejected */
    BAD("{\"image\":\"x\",\"prompt\":\"p\",\"id\":18446744073709551615}",
        "field \"id\": must be a string or an integer");

    BAD("{\"image\":\"x\",\"prompt\":\"p\",\"latent\":\"1.5\"}", "field \"latent\": must be a finite number");
    BAD("{\"image\":\"x\",\"prompt\":\"p\",\"latent\":true}", "field \"latent\": must be a finite number");
    BAD("{\"image\":\"x\",\"prompt\":\"p\",\"latent\":[1]}", "field \"latent\": must be a finite number");
    BAD("{\"image\":\"x\",\"prompt\":\"p\",\"latent\":1e999}", "field \"latent\": must be a finite number");
    BAD("{\"image\":\"x\",\"prompt\":\"p\",\"latent\":-1e999}", "field \"latent\": must be a finite number");
}

/* BUG (coordinator/manifest.c, manifest_parse_line): cJSON_ParseWithLength
 * accepts trailing bytes after the first JSON value, so two objects glued on
 * one line (a common result of concatenating files without a final newline)
 * parse as the first one and the second image is silently lost, and any
 * trailing garbage is ignored. Expected: the line is rejected. */
static void test_trailing_garbage_rejected(void)
{
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\"}{\"image\":\"b.png\",\"prompt\":\"p\"}", "JSON");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\"} trailing", "JSON");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\"},", "JSON");
}

/* A NUL (\u0000) in any string on the line is an error naming the field,
 * never a value cut at the NUL (a path to another file, a prompt to its
 * first byte). */
static void test_nul_in_strings(void)
{
    BAD("{\"image\":\"a.png\\u0000../b.png\",\"prompt\":\"p\"}", "field \"image\": contains NUL");
    BAD("{\"image\":\"a.png\",\"prompt\":\"x\\u0000 long prompt\"}", "field \"prompt\": contains NUL");
    BAD("{\"image\":\"a.png\",\"prompt_id\":\"g\\u0000\"}", "field \"prompt_id\": contains NUL");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"model\":\"\\u0000sdxl\"}", "field \"model\": contains NUL");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"id\":\"a\\u0000b\"}", "field \"id\": contains NUL");
    /* metadata: a value, a nested value, an array element, a key */
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"seed\":\"1\\u00002\"}", "field \"seed\": contains NUL");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"cfg\":{\"s\":\"x\\u0000\"}}", "field \"cfg\": contains NUL");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"tags\":[\"ok\",\"\\u0000\"]}", "field \"tags\": contains NUL");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"k\\u0000\":1}", "a field name contains NUL");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"cfg\":{\"\\u0000\":1}}", "field \"cfg\": contains NUL");
    /* a raw NUL byte, inside or outside a string */
    BADN("{\"image\":\"a.png\0b\",\"prompt\":\"p\"}", 32, "NUL (0x00) inside a string");
    BADN("{\"image\":\"a.png\",\"prompt\":\"p\"}\0", 31, "NUL (0x00) at byte 31, outside a string");
    /* an escaped backslash followed by the text u0000 is not a NUL */
    manifest_item it;
    CHECK_RC(parse("{\"image\":\"a\\\\u0000.png\",\"prompt\":\"p\"}", &it));
    CHECK(streq(it.image, "a\\u0000.png"));
    manifest_item_clear(&it);
    /* other escapes, including \u0001 and a surrogate pair, are fine */
    CHECK_RC(parse("{\"image\":\"a.png\",\"prompt\":\"\\u0001\\ud83e\\udd8a\\n\"}", &it));
    CHECK(it.prompt && strlen(it.prompt) == 6 && it.prompt[0] == 1);
    manifest_item_clear(&it);
}

/* Between tokens JSON allows space, tab, CR and LF and nothing else. */
static void test_whitespace(void)
{
    manifest_item it;
    CHECK_RC(parse(" \t\r{ \"image\" :\t\"a.png\" ,\r\"prompt\"\n:\"p\" } \t\r\n", &it));
    CHECK(streq(it.image, "a.png"));
    manifest_item_clear(&it);

    BAD("\f{\"image\":\"a.png\",\"prompt\":\"p\"}", "form feed (0x0c) at byte 1, outside a string");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\"}\f", "form feed (0x0c)");
    BAD("{\"image\":\f\"a.png\",\"prompt\":\"p\"}", "form feed (0x0c)");
    BAD("\v{\"image\":\"a.png\",\"prompt\":\"p\"}", "vertical tab (0x0b)");
    BAD("{\"image\":\"a.png\",\v\"prompt\":\"p\"}", "vertical tab (0x0b)");
    BAD("\x1c{\"image\":\"a.png\",\"prompt\":\"p\"}", "control character (0x1c)");
    BAD("\x7f{\"image\":\"a.png\",\"prompt\":\"p\"}", "control character (0x7f)");
    /* non-ASCII spaces: no-break space, U+2028, ideographic space, a BOM */
    BAD("\xc2\xa0{\"image\":\"a.png\",\"prompt\":\"p\"}", "non-ASCII character at byte 1");
    BAD("{\"image\":\"a.png\",\xc2\xa0\"prompt\":\"p\"}", "non-ASCII character");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\"}\xe2\x80\xa8", "non-ASCII character");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\"}\xe3\x80\x80", "non-ASCII character");
    BAD("\xef\xbb\xbf{\"image\":\"a.png\",\"prompt\":\"p\"}", "non-ASCII character");
    /* raw control characters inside a string must be escaped (tab included) */
    BAD("{\"image\":\"a.png\",\"prompt\":\"a\tb\"}", "(0x09) inside a string");
    BAD("{\"image\":\"a.png\",\"prompt\":\"a\fb\"}", "form feed (0x0c) inside a string");
    BAD("{\"image\":\"a.png\",\"prompt\":\"a\rb\"}", "(0x0d) inside a string");
    /* non-ASCII inside strings is text, not whitespace */
    CHECK_RC(parse("{\"image\":\"a.png\",\"prompt\":\"\xc2\xa0nbsp\"}", &it));
    manifest_item_clear(&it);
}

/* Ids: non-empty, and "#N" is reserved for images without an id. */
static void test_ids(void)
{
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"id\":\"\"}", "field \"id\": must not be empty");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"id\":\"#1\"}", "field \"id\": ids of the form #N are reserved");
    BAD("{\"image\":\"a.png\",\"prompt\":\"p\",\"id\":\"#0042\"}", "reserved");
    CHECK(manifest_id_reserved("#7") == 1);
    CHECK(manifest_id_reserved("#18446744073709551615") == 1);
    CHECK(manifest_id_reserved("#") == 0);
    CHECK(manifest_id_reserved("#7a") == 0);
    CHECK(manifest_id_reserved("7") == 0);
    CHECK(manifest_id_reserved("a#7") == 0);
    const char *ok[] = {"{\"image\":\"a.png\",\"prompt\":\"p\",\"id\":\"#\"}",
                        "{\"image\":\"a.png\",\"prompt\":\"p\",\"id\":\"#7a\"}",
                        "{\"image\":\"a.png\",\"prompt\":\"p\",\"id\":7}"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        manifest_item it;
        CHECK_RC(parse(ok[i], &it));
        manifest_item_clear(&it);
    }
    /* the generated form is what manifest_id_reserved recognises */
    char gen[32];
    snprintf(gen, sizeof gen, MANIFEST_GENERATED_ID_FMT, 123ULL);
    CHECK(streq(gen, "#123") && manifest_id_reserved(gen));
}

static int u8(const char *s) { return utf8_valid(s, strlen(s)); }

static void test_utf8(void)
{
    CHECK(utf8_valid("", 0) == 1);
    CHECK(u8("plain ascii") == 1);
    CHECK(utf8_valid("a\0b", 3) == 1); /* NUL is a valid code point */
    CHECK(u8("\xc2\x80") == 1);         /* U+0080, smallest 2-byte */
    CHECK(u8("\xdf\xbf") == 1);         /* U+07FF */
    CHECK(u8("\xe0\xa0\x80") == 1);     /* U+0800, smallest 3-byte */
    CHECK(u8("\xed\x9f\xbf") == 1);     /* U+D7FF, just below surrogates */
    CHECK(u8("\xee\x80\x80") == 1);     /* U+E000, just above */
    CHECK(u8("\xef\xbf\xbf") == 1);     /* U+FFFF */
    CHECK(u8("\xf0\x90\x80\x80") == 1); /* U+10000 */
    CHECK(u8("\xf4\x8f\xbf\xbf") == 1); /* U+10FFFF, the last */

    CHECK(u8("\x80") == 0);             /* lone continuation byte */
    CHECK(u8("\xbf") == 0);
    CHECK(u8("\xc0\x80") == 0);         /* overlong NUL */
    CHECK(u8("\xc1\xbf") == 0);         /* overlong U+007F */
    CHECK(u8("\xe0\x9f\xbf") == 0);     /* overlong U+07FF */
    CHECK(u8("\xf0\x8f\xbf\xbf") == 0); /* overlong U+FFFF */
    CHECK(u8("\xed\xa0\x80") == 0);     /* U+D800 */
    CHECK(u8("\xed\xbf\xbf") == 0);     /* U+DFFF */
    CHECK(u8("\xf4\x90\x80\x80") == 0); /* U+110000 */
    CHECK(u8("\xf5\x80\x80\x80") == 0);
    CHECK(u8("\xf8\x88\x80\x80\x80") == 0); /* 5-byte form */
    CHECK(u8("\xfe") == 0);
    CHECK(u8("\xff") == 0);
    CHECK(u8("\xc3") == 0);             /* truncated 2-byte */
    CHECK(u8("\xe6\x97") == 0);         /* truncated 3-byte */
    CHECK(u8("\xf0\x9f\xa6") == 0);     /* truncated 4-byte */
    CHECK(u8("\xc3(") == 0);            /* bad continuation */
    CHECK(u8("\xe6(\x97") == 0);
    /* the length bounds the check: a sequence cut by len is truncated */
    CHECK(utf8_valid("\xc3\xa9", 1) == 0);
    CHECK(utf8_valid("ab\xc3\xa9", 2) == 1);
}

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

/* manifest_parse_line reads common lines on a fast path of its own and the
 * rest through cJSON: on every line here (each shape the fast path takes,
 * each it hands on) both give the same result, field by field, and the
 * same reason for a rejected line. */
static void test_fast_path_equals_cjson(void)
{
    static const char *lines[] = {
        "{\"image\":\"a.jpg\",\"prompt\":\"p\"}",
        " { \"image\" : \"a.jpg\" , \"prompt_id\" : 17 , \"model\":\"m\" } ",
        "{\"id\":\"x-1\",\"image\":\"img/0/0.jpg\",\"prompt\":\"a \\\"quoted\\\" \\u00e9t\\u00e9 \\n \\/ \\\\\",\"model\":\"m\",\"latent\":-1.5e-3,\"seed\":12,\"cfg\":7.5,\"ok\":true,\"no\":false,\"nil\":null,\"s\":\"\\u20ac\"}",
        "{\"image\":\"a.jpg\",\"prompt_id\":-0,\"id\":123456789012345}",
        "{\"image\":\"a.jpg\",\"prompt_id\":1e3,\"id\":5.0}",
        "{\"image\":\"a.jpg\",\"prompt_id\":12345678901234567}",
        "{\"image\":\"a.jpg\",\"prompt\":null,\"prompt_id\":\"g\",\"latent\":null,\"model\":null}",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"dup\":1,\"dup\":2}",
        /* handed to cJSON: nested values, repeated known fields, escapes in keys, surrogates */
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"tags\":[1,2],\"cfg\":{\"steps\":30}}",
        "{\"image\":\"a.jpg\",\"image\":\"b.jpg\",\"prompt\":\"p\"}",
        "{\"im\\u0061ge\":\"a.jpg\",\"prompt\":\"p\"}",
        "{\"image\":\"a.jpg\",\"prompt\":\"\\ud83d\\ude00\"}",
        /* rejected: the reasons come from the cJSON path */
        "{}", "[]", "", "{\"image\":\"a.jpg\"}", "{\"image\":1,\"prompt\":\"p\"}",
        "{\"image\":\"\",\"prompt\":\"p\"}", "{\"image\":\"a.jpg\",\"prompt\":\"p\"} x",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",}", "{\"image\":\"a.jpg\",\"prompt\":\"p\"",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"latent\":\"x\"}",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"id\":\"#12\"}",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"id\":\"\"}",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"id\":1.5}",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"x\":01}",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"x\":\"\\u0000\"}",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"x\":tru}",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"x\":\"\\q\"}",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\"\f}",
        "{\"image\":\"a.jpg\",\"prompt\":\"tab\there\"}",
        /* a line that ends inside a number (read within len: no NUL follows) */
        "{\"image\":\"/abs/b.jpg\",\"prompt_id\":900719920948",
        "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"id\":-12",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        manifest_item a, b;
        char ea[256] = "", eb[256] = "";
        size_t len = strlen(lines[i]);
        /* an exact-size copy without a NUL: under ASan a read past len fails */
        char *line = malloc(len ? len : 1);
        memcpy(line, lines[i], len);
        int ra = manifest_parse_line(line, len, &a, ea, sizeof ea);
        int rb = manifest_parse_line_cjson(line, len, &b, eb, sizeof eb);
        /* into a caller's buffer: the same item as manifest_parse_line's */
        manifest_item c;
        char ec[256] = "", *buf = malloc(MANIFEST_BUF_BYTES(len));
        size_t used;
        int rc = manifest_parse_line_buf(line, len, buf, &used, &c, ec, sizeof ec);
        CHECK(rc == ra && !strcmp(ec, ea) && used <= MANIFEST_BUF_BYTES(len));
        if (rc == 0 && ra == 0) {
            CHECK(same_str(a.image, c.image) && same_str(a.prompt, c.prompt) &&
                  same_str(a.prompt_id, c.prompt_id) && same_str(a.model, c.model) &&
                  same_str(a.id, c.id) && same_str(a.group_key, c.group_key) &&
                  same_str(a.meta_json, c.meta_json) && a.has_latent == c.has_latent &&
                  a.latent == c.latent);
            CHECK(c.block == NULL && c.borrowed == (used > 0));
        }
        if (rc == 0)
            manifest_item_clear(&c);
        free(buf);
        free(line);
        int same = ra == rb && (ra != 0 || (same_str(a.image, b.image) &&
                                            same_str(a.prompt, b.prompt) &&
                                            same_str(a.prompt_id, b.prompt_id) &&
                                            same_str(a.model, b.model) && same_str(a.id, b.id) &&
                                            same_str(a.group_key, b.group_key) &&
                                            a.has_latent == b.has_latent && a.latent == b.latent));
        if (ra != 0)
            same = same && !strcmp(ea, eb);
        if (same && ra == 0) { /* metadata: the same JSON (the fast path keeps it as written) */
            cJSON *ja = a.meta_json ? cJSON_Parse(a.meta_json) : NULL;
            cJSON *jb = b.meta_json ? cJSON_Parse(b.meta_json) : NULL;
            same = same_str(a.meta_json, b.meta_json) || (ja && jb && cJSON_Compare(ja, jb, 1));
            cJSON_Delete(ja);
            cJSON_Delete(jb);
        }
        if (!same)
            fprintf(stderr, "line %zu differs: %s\n  fast rc %d \"%s\" meta %s\n  cjson rc %d \"%s\" meta %s\n",
                    i, lines[i], ra, ea, ra == 0 && a.meta_json ? a.meta_json : "-", rb, eb,
                    rb == 0 && b.meta_json ? b.meta_json : "-");
        CHECK(same);
        if (ra == 0)
            manifest_item_clear(&a);
        if (rb == 0)
            manifest_item_clear(&b);
    }
}

/* Numbers: the fast path computes simple ones itself (manifest.c
 * fast_number) and must give exactly strtod's double, as cJSON's path
 * does, for numbers of every shape: integers, fractions with leading and
 * trailing zeros, exponents, 15 to 25 significant digits, values near the
 * limits of the fast computation. */
static void test_numbers_exact(void)
{
    unsigned long long st = 12345;
    int bad = 0, fast = 0;
    for (int i = 0; i < 200000; i++) {
        char num[96], line[192];
        int n = 0;
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        unsigned long long r = st >> 11;
        if (r & 1)
            num[n++] = '-';
        int ndig = 1 + (int)((r >> 1) % 25), point = (int)((r >> 6) % (unsigned)(ndig + 1));
        for (int d = 0; d < ndig; d++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            int digit = (int)((st >> 33) % 10);
            if (d == 0 && digit == 0 && point != 1)
                digit = 1 + (int)((st >> 40) % 9); /* no leading zero before the point */
            if (d == point && d > 0)
                num[n++] = '.';
            num[n++] = (char)('0' + digit);
        }
        if ((r >> 12) % 3 == 0)
            n += snprintf(num + n, sizeof num - (size_t)n, "e%s%d", (r >> 14) & 1 ? "-" : "",
                          (int)((r >> 15) % 40));
        num[n] = '\0';
        snprintf(line, sizeof line, "{\"image\":\"a.jpg\",\"prompt\":\"p\",\"latent\":%s}", num);
        manifest_item a, b;
        char ea[256], eb[256];
        int ra = manifest_parse_line(line, strlen(line), &a, ea, sizeof ea);
        int rb = manifest_parse_line_cjson(line, strlen(line), &b, eb, sizeof eb);
        double want = strtod(num, NULL);
        if (ra != rb || (ra == 0 && (memcmp(&a.latent, &want, sizeof want) ||
                                     memcmp(&b.latent, &want, sizeof want)))) {
            if (bad++ < 5)
                fprintf(stderr, "number %s: fast %.17g (rc %d), cJSON %.17g (rc %d), strtod %.17g\n",
                        num, ra == 0 ? a.latent : 0, ra, rb == 0 ? b.latent : 0, rb, want);
        }
        fast += ra == 0 && a.block != NULL;
        if (ra == 0)
            manifest_item_clear(&a);
        if (rb == 0)
            manifest_item_clear(&b);
    }
    CHECK(bad == 0);
    CHECK(fast > 100000); /* most went through the fast path */
}

int main(void)
{
    test_valid_all_fields();
    test_valid_minimal();
    test_limits_ok();
    test_line_limit();
    test_bad_lines();
    test_utf8();
    test_trailing_garbage_rejected();
    test_nul_in_strings();
    test_whitespace();
    test_ids();
    test_fast_path_equals_cjson();
    test_numbers_exact();
    return test_report();
}
