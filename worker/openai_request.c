/* Templates and chat-completions bodies for the openai judge; see
 * openai_request.h. Bodies are written by hand (the images are base64, which
 * needs no escaping; only the prompt and template text are escaped): this is
 * ~30x faster than building a cJSON tree for two large data URLs. */
#include "openai_request.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "safe_open.h"
#include "xalloc.h"

enum { SEG_TEXT, SEG_PROMPT, SEG_IMAGE1, SEG_IMAGE2, SEG_CAPTION1, SEG_CAPTION2, SEG_KINDS };
enum { SEC_SYSTEM, SEC_USER, SEC_ASSISTANT, SEC_COUNT };

typedef struct {
    int kind;
    const char *text; /* SEG_TEXT: into the section's copy */
    size_t len;
} seg_t;

typedef struct {
    char *text;       /* NULL when the section is absent */
    seg_t *seg;
    size_t nseg, cap;
} section_t;

struct joust_oa_template {
    section_t sec[SEC_COUNT];
    int prefix_shared;
    int captions; /* uses {caption1} and {caption2} */
};

static const char *const sec_names[SEC_COUNT] = {"system", "user", "assistant"};

static const char reason_template[] =
    "[system]\n"
    "You are an expert judge of images generated from text prompts. You compare two images made "
    "for the same prompt and decide which one people would prefer, considering how faithfully "
    "each follows the prompt, its visual quality and its aesthetics.\n"
    "[user]\n"
    "Text prompt: {prompt}\n"
    "Image 1:\n"
    "{image1}\n"
    "Image 2:\n"
    "{image2}\n"
    "Which image would people prefer for this prompt? First reason about it inside <think> </think> "
    "tags, then give the final answer, 1 or 2, inside <answer> </answer> tags, for example "
    "<think> ... </think><answer>1</answer>.\n";

static const char direct_template[] =
    "[system]\n"
    "You are an expert judge of images generated from text prompts. You compare two images made "
    "for the same prompt and decide which one people would prefer, considering how faithfully "
    "each follows the prompt, its visual quality and its aesthetics.\n"
    "[user]\n"
    "Text prompt: {prompt}\n"
    "Image 1:\n"
    "{image1}\n"
    "Image 2:\n"
    "{image2}\n"
    "Which image would people prefer for this prompt? Answer with the number of the preferred "
    "image only, 1 or 2, inside <answer> </answer> tags.\n"
    "[assistant]\n"
    "<answer>";

/* One image per caption (a grouped run): each image with its own caption. */
#define CAPTION_SYSTEM                                                                            \
    "[system]\n"                                                                                  \
    "You are an expert judge of images and their captions. You compare two images, each shown "   \
    "with its own caption, and decide which one people would prefer, considering how faithfully " \
    "each image follows its own caption, its visual quality and its aesthetics.\n"                \
    "[user]\n"                                                                                    \
    "Image 1, captioned: {caption1}\n"                                                            \
    "{image1}\n"                                                                                  \
    "Image 2, captioned: {caption2}\n"                                                            \
    "{image2}\n"                                                                                  \
    "Which image would people prefer, each judged against its own caption? "

static const char reason_caption_template[] =
    CAPTION_SYSTEM
    "First reason about it inside <think> </think> tags, then give the final answer, 1 or 2, "
    "inside <answer> </answer> tags, for example <think> ... </think><answer>1</answer>.\n";

static const char direct_caption_template[] =
    CAPTION_SYSTEM
    "Answer with the number of the preferred image only, 1 or 2, inside <answer> </answer> "
    "tags.\n"
    "[assistant]\n"
    "<answer>";

const char *joust_oa_template_caption_default(joust_oa_mode mode)
{
    return mode == JOUST_OA_DIRECT ? direct_caption_template : reason_caption_template;
}

int joust_oa_template_captions(const joust_oa_template_t *t) { return t->captions; }

const char *joust_oa_template_default(joust_oa_mode mode)
{
    return mode == JOUST_OA_DIRECT ? direct_template : reason_template;
}

void joust_oa_template_destroy(joust_oa_template_t **self_p)
{
    joust_oa_template_t *t = *self_p;
    if (!t)
        return;
    for (int s = 0; s < SEC_COUNT; s++) {
        free(t->sec[s].text);
        free(t->sec[s].seg);
    }
    free(t);
    *self_p = NULL;
}

int joust_oa_template_prefix_shared(const joust_oa_template_t *t) { return t->prefix_shared; }

static void add_seg(section_t *s, int kind, const char *text, size_t len)
{
    if (kind == SEG_TEXT && len == 0)
        return;
    xgrow((void **)&s->seg, &s->cap, s->nseg + 1, sizeof *s->seg);
    s->seg[s->nseg++] = (seg_t){kind, text, len};
}

static void split_section(section_t *s)
{
    static const struct { const char *tok; int kind; } ph[] = {
        {"{prompt}", SEG_PROMPT}, {"{image1}", SEG_IMAGE1}, {"{image2}", SEG_IMAGE2},
        {"{caption1}", SEG_CAPTION1}, {"{caption2}", SEG_CAPTION2}};
    const char *p = s->text, *lit = p;
    while (*p) {
        int hit = -1;
        if (*p == '{')
            for (size_t k = 0; k < sizeof ph / sizeof ph[0] && hit < 0; k++)
                if (!strncmp(p, ph[k].tok, strlen(ph[k].tok)))
                    hit = k;
        if (hit < 0) {
            p++;
            continue;
        }
        add_seg(s, SEG_TEXT, lit, (size_t)(p - lit));
        add_seg(s, ph[hit].kind, NULL, 0);
        p += strlen(ph[hit].tok);
        lit = p;
    }
    add_seg(s, SEG_TEXT, lit, (size_t)(p - lit));
}

/* A line that is only "[name]" (blanks around allowed) names a section. */
static int header_of(const char *line, size_t len)
{
    while (len && isspace((unsigned char)line[len - 1]))
        len--;
    while (len && isspace((unsigned char)*line))
        line++, len--;
    for (int s = 0; s < SEC_COUNT; s++) {
        size_t n = strlen(sec_names[s]);
        if (len == n + 2 && line[0] == '[' && line[len - 1] == ']' && !memcmp(line + 1, sec_names[s], n))
            return s;
    }
    return -1;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

static int validate(joust_oa_template_t *t, char *err, size_t errlen)
{
    int count[SEG_KINDS] = {0}, pos[SEG_KINDS];
    for (int k = 0; k < SEG_KINDS; k++)
        pos[k] = -1;
    const section_t *u = &t->sec[SEC_USER];
    if (!u->text) {
        snprintf(err, errlen, "the template has no [user] section");
        return JOUST_EINVAL;
    }
    for (int s = 0; s < SEC_COUNT; s++)
        for (size_t i = 0; i < t->sec[s].nseg; i++) {
            int k = t->sec[s].seg[i].kind;
            if ((k == SEG_IMAGE1 || k == SEG_IMAGE2) && s != SEC_USER) {
                snprintf(err, errlen, "{image%d} is only allowed in the user message",
                         k == SEG_IMAGE1 ? 1 : 2);
                return JOUST_EINVAL;
            }
            count[k]++;
            if (pos[k] < 0)
                pos[k] = s == SEC_SYSTEM ? -2 : s == SEC_USER ? (int)i : 1 << 20;
        }
    if (count[SEG_IMAGE1] != 1 || count[SEG_IMAGE2] != 1) {
        snprintf(err, errlen, "{image1} and {image2} must each appear exactly once (found %d and %d)",
                 count[SEG_IMAGE1], count[SEG_IMAGE2]);
        return JOUST_EINVAL;
    }
    if (pos[SEG_IMAGE1] > pos[SEG_IMAGE2]) {
        snprintf(err, errlen, "{image1} must come before {image2} (presentation order)");
        return JOUST_EINVAL;
    }
    if (!count[SEG_CAPTION1] != !count[SEG_CAPTION2]) {
        snprintf(err, errlen, "{caption1} and {caption2} go together (each image's own caption)");
        return JOUST_EINVAL;
    }
    t->captions = count[SEG_CAPTION1] > 0;
    if (!count[SEG_PROMPT] && !t->captions) {
        snprintf(err, errlen, "the template never uses {prompt} (or {caption1} and {caption2})");
        return JOUST_EINVAL;
    }
    t->prefix_shared = pos[SEG_PROMPT] < pos[SEG_IMAGE1];
    return 0;
}

int joust_oa_template_parse(const char *text, joust_oa_template_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!text) {
        snprintf(err, errlen, "no template text");
        return JOUST_EINVAL;
    }
    joust_oa_template_t *t = xcalloc(1, sizeof *t);
    int cur = -1, any_header = 0, rc = 0;
    const char *body = text; /* start of the current section's text */
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        int h = header_of(line, len);
        if (h >= 0) {
            if (cur >= 0) {
                free(t->sec[cur].text);
                t->sec[cur].text = xstrndup(body, (size_t)(line - body));
            }
            else if (!blank(text, (size_t)(line - text))) {
                snprintf(err, errlen, "text before the first section line ([system], [user], [assistant])");
                rc = JOUST_EINVAL;
                break;
            }
            if (t->sec[h].text) {
                snprintf(err, errlen, "section [%s] appears twice", sec_names[h]);
                rc = JOUST_EINVAL;
                break;
            }
            any_header = 1;
            cur = h;
            t->sec[h].text = xstrdup(""); /* marks it present until its end is known */
            body = nl ? nl + 1 : line + len;
        }
        line = nl ? nl + 1 : line + len;
    }
    if (rc == 0) {
        if (!any_header) {
            t->sec[SEC_USER].text = xstrdup(text);
        } else {
            free(t->sec[cur].text);
            t->sec[cur].text = xstrdup(body);
        }
        /* The newline before a section line belongs to the layout, not to
         * the section; a prefill keeps its text exactly otherwise. */
        for (int s = 0; s < SEC_COUNT; s++) {
            char *x = t->sec[s].text;
            size_t n = x ? strlen(x) : 0;
            if (n && x[n - 1] == '\n' && any_header)
                x[n - 1] = '\0';
            if (x)
                split_section(&t->sec[s]);
        }
        rc = validate(t, err, errlen);
    }
    if (rc < 0) {
        joust_oa_template_destroy(&t);
        return rc;
    }
    *out = t;
    return 0;
}

int joust_oa_template_load(const char *path, joust_oa_template_t **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f;
    if (joust_fopen_regular(path, 0, 0, &f, NULL, err, errlen) != 0)
        return JOUST_EIO; /* err names the path and why (missing, a FIFO, ...) */
    size_t cap = 1u << 20, n;
    char *text = xmalloc(cap + 1);
    n = fread(text, 1, cap + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > cap) {
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "template larger than 1 MiB");
        free(text);
        return bad ? JOUST_EIO : JOUST_EINVAL;
    }
    text[n] = '\0';
    if (strlen(text) != n) {
        snprintf(err, errlen, "%s: the template holds a NUL byte", path);
        free(text);
        return JOUST_EINVAL;
    }
    char why[256];
    int rc = joust_oa_template_parse(text, out, why, sizeof why);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", path, why);
    free(text);
    return rc;
}

/* Composes a section's text segments (with the prompt and captions:
 * text[0..2]) into scratch. */
static void compose(const section_t *s, size_t from, size_t to, const char *const *text,
                    joust_buf_t *scratch)
{
    joust_buf_reset(scratch);
    for (size_t i = from; i < to; i++) {
        int k = s->seg[i].kind;
        if (k == SEG_TEXT)
            joust_buf_append(scratch, s->seg[i].text, s->seg[i].len);
        else if (k == SEG_PROMPT)
            joust_buf_puts(scratch, text[0]);
        else if (k == SEG_CAPTION1 || k == SEG_CAPTION2)
            joust_buf_puts(scratch, text[k == SEG_CAPTION1 ? 1 : 2]);
    }
}

/* Appends one text part of the user message, trimmed; nothing when blank. */
static void text_part(joust_buf_t *out, joust_buf_t *scratch, int *first)
{
    if (!scratch->data)
        return;
    char *s = scratch->data;
    size_t n = scratch->len;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    s[n] = '\0';
    while (*s && isspace((unsigned char)*s))
        s++;
    if (!*s)
        return;
    joust_buf_puts(out, *first ? "{\"type\":\"text\",\"text\":" : ",{\"type\":\"text\",\"text\":");
    joust_buf_json_str(out, s);
    joust_buf_puts(out, "}");
    *first = 0;
}

static void image_part(joust_buf_t *out, const char *url, size_t len, int *first)
{
    joust_buf_puts(out, *first ? "{\"type\":\"image_url\",\"image_url\":{\"url\":\""
                               : ",{\"type\":\"image_url\",\"image_url\":{\"url\":\"");
    joust_buf_append(out, url, len);
    joust_buf_puts(out, "\"}}");
    *first = 0;
}

void joust_oa_request_build(const joust_oa_template_t *t, const joust_oa_params *prm,
                            const char *prompt, const char *url1, size_t len1, const char *url2,
                            size_t len2, joust_buf_t *out)
{
    joust_oa_request_build_captions(t, prm, prompt, NULL, NULL, url1, len1, url2, len2, out);
}

void joust_oa_request_build_captions(const joust_oa_template_t *t, const joust_oa_params *prm,
                                     const char *prompt, const char *caption1,
                                     const char *caption2, const char *url1, size_t len1,
                                     const char *url2, size_t len2, joust_buf_t *out)
{
    joust_buf_t scratch = {0};
    const char *const prompt_text[3] = {prompt ? prompt : "", caption1 ? caption1 : "",
                                        caption2 ? caption2 : ""};
    const char *const *text = prompt_text;
    joust_buf_puts(out, "{\"model\":");
    joust_buf_json_str(out, prm->model ? prm->model : "");
    joust_buf_puts(out, ",\"messages\":[");
    const section_t *sys = &t->sec[SEC_SYSTEM];
    if (sys->text) {
        compose(sys, 0, sys->nseg, text, &scratch);
        if (!blank(scratch.data ? scratch.data : "", scratch.len)) {
            joust_buf_puts(out, "{\"role\":\"system\",\"content\":");
            joust_buf_json_str(out, scratch.data);
            joust_buf_puts(out, "},");
        }
    }
    joust_buf_puts(out, "{\"role\":\"user\",\"content\":[");
    const section_t *u = &t->sec[SEC_USER];
    int first = 1;
    size_t from = 0;
    for (size_t i = 0; i <= u->nseg; i++) {
        int k = i < u->nseg ? u->seg[i].kind : -1;
        if (k == SEG_IMAGE1 || k == SEG_IMAGE2 || k < 0) {
            compose(u, from, i, text, &scratch);
            text_part(out, &scratch, &first);
            if (k == SEG_IMAGE1)
                image_part(out, url1, len1, &first);
            else if (k == SEG_IMAGE2)
                image_part(out, url2, len2, &first);
            from = i + 1;
        }
    }
    joust_buf_puts(out, "]}");
    const section_t *a = &t->sec[SEC_ASSISTANT];
    if (a->text) {
        compose(a, 0, a->nseg, text, &scratch);
        joust_buf_puts(out, ",{\"role\":\"assistant\",\"content\":");
        joust_buf_json_str(out, scratch.data ? scratch.data : "");
        joust_buf_puts(out, "}");
    }
    joust_buf_printf(out, "],\"max_tokens\":%d,\"temperature\":%.6g", prm->max_tokens,
                     prm->temperature);
    if (prm->top_logprobs > 0)
        joust_buf_printf(out, ",\"logprobs\":true,\"top_logprobs\":%d", prm->top_logprobs);
    if (prm->seed >= 0)
        joust_buf_printf(out, ",\"seed\":%lld", (long long)prm->seed);
    if (a->text) /* vLLM and SGLang: continue the prefill, no new turn */
        joust_buf_puts(out, ",\"continue_final_message\":true,\"add_generation_prompt\":false");
    joust_buf_puts(out, "}");
    joust_buf_free(&scratch);
}
