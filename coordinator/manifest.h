/* Parses one manifest line (JSON object, one image per line):
 *   image (string, required), prompt (string), prompt_id (string or
 *   integer), model (string), id (string or integer), latent (number);
 * any other field is kept as metadata. A line needs "prompt" or
 * "prompt_id"; images with the same prompt_id, or else the same prompt
 * text, form one group. Errors name the field and the reason.
 *
 * Strict where JSON is strict: between tokens only space, tab, CR and LF
 * (a form feed, a vertical tab or a no-break space is an error); no raw
 * control character inside a string; no string anywhere on the line (a
 * known field, a metadata key or value) that decodes to NUL (\u0000), since
 * the values are C strings and a NUL would cut them. An `id` is non-empty
 * and not of the form "#N" (digits), which names images without an id
 * (see manifest_generated_id). Pure functions; thread-safe. */
#ifndef JOUST_MANIFEST_H
#define JOUST_MANIFEST_H
#include <stddef.h>

#define MANIFEST_MAX_LINE (1 << 20)
#define MANIFEST_MAX_URI 4096
#define MANIFEST_MAX_PROMPT 65536
#define MANIFEST_MAX_NAME 1024

typedef struct {
    char *image;      /* path or URI */
    char *prompt;     /* "" when absent */
    char *prompt_id;  /* caller's group id; NULL when absent */
    char *model;      /* NULL when absent */
    char *id;         /* caller's image id; NULL when absent */
    double latent;
    int has_latent;
    char *meta_json;  /* other fields as a JSON object; NULL when none */
    char *group_key;  /* "id:<prompt_id>" or "text:<prompt>" */
    char *block;      /* when set, every string above lies in it (one allocation) */
    int borrowed;     /* every string above lies in the caller's buffer (manifest_parse_line_buf) */
} manifest_item;

/* Returns 0 and fills item (free with manifest_item_clear), or JOUST_EINVAL
 * with a reason in err. */
int manifest_parse_line(const char *line, size_t len, manifest_item *item, char *err, size_t errlen);
void manifest_item_clear(manifest_item *item);
/* Bytes of buf manifest_parse_line_buf needs for a line of len bytes. */
#define MANIFEST_BUF_BYTES(len) (3 * (size_t)(len) + 256)
/* manifest_parse_line, writing the strings of a line of the common shape
 * (see manifest_parse_line_cjson) into buf (MANIFEST_BUF_BYTES(len) bytes)
 * instead of a block of their own: no allocation. *used says how many bytes
 * of buf they took (usually a little over len; 0 when the line went through
 * cJSON, whose strings are allocated as manifest_parse_line's). The item is
 * valid while buf is; manifest_item_clear frees only what was allocated. */
int manifest_parse_line_buf(const char *line, size_t len, char *buf, size_t *used,
                            manifest_item *item, char *err, size_t errlen);
/* The same parse through cJSON alone. manifest_parse_line reads the common
 * shape (a flat object of strings, numbers, booleans and nulls) in one pass
 * of its own and hands every other line to this one, so the two accept the
 * same lines with the same values; tests compare them. */
int manifest_parse_line_cjson(const char *line, size_t len, manifest_item *item, char *err,
                              size_t errlen);
/* 1 when id has the form "#N" (N decimal digits): reserved for the ids
 * ingest gives to images whose line has no "id", so that a generated id
 * never equals a caller's. */
int manifest_id_reserved(const char *id);
/* The id reported for an image without a caller id: "#<image_id>". */
#define MANIFEST_GENERATED_ID_FMT "#%llu"
/* 1 when s[0..len) is valid UTF-8. */
int utf8_valid(const char *s, size_t len);

#endif
