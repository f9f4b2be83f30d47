/* Chat-completions requests for the openai judge: prompt templates and the
 * JSON body.
 *
 * A template is text with optional section lines "[system]", "[user]" and
 * "[assistant]" (without them the whole text is the user message) and the
 * placeholders {prompt} (the match's text prompt, in any section),
 * {image1} and {image2} (the images in presentation order; each exactly
 * once, in the user message, {image1} first), and {caption1} and
 * {caption2} (each image's own caption, in any section; both or neither).
 * A template uses {prompt}, or the captions, or both. The user message becomes
 * text and image parts in template order; keeping {prompt} and {image1}
 * before {image2} makes the prefix shared by every match with the same
 * prompt and first image real (vLLM/SGLang prefix caching). An [assistant]
 * section is a prefill the model continues (vLLM/SGLang
 * continue_final_message), e.g. "<answer>" for one-token direct answers.
 *
 * Ownership: a template owns its text; build appends to the caller's buffer.
 * Threads: templates are immutable after parsing; share them freely.
 * Errors: parse/load return 0, JOUST_EINVAL (reason in err) or JOUST_EIO. */
#ifndef JOUST_OPENAI_REQUEST_H
#define JOUST_OPENAI_REQUEST_H
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum { JOUST_OA_REASON = 0, JOUST_OA_DIRECT = 1 } joust_oa_mode;

typedef struct joust_oa_template joust_oa_template_t;

/* The built-in template of a mode (reason: think, then answer in tags;
 * direct: the answer digit only, after an "<answer>" prefill). */
const char *joust_oa_template_default(joust_oa_mode mode);
int joust_oa_template_parse(const char *text, joust_oa_template_t **out, char *err, size_t errlen);
/* Reads and parses a template file (at most 1 MiB). */
int joust_oa_template_load(const char *path, joust_oa_template_t **out, char *err, size_t errlen);
void joust_oa_template_destroy(joust_oa_template_t **self_p);
/* 1 when {prompt} comes before {image1}, so matches share a prefix. */
int joust_oa_template_prefix_shared(const joust_oa_template_t *t);
/* The built-in caption template of a mode: each image shown with its own
 * caption ({caption1}, {caption2}; no {prompt}), for runs whose groups are
 * not the prompt (joust run --group / --group-by). */
const char *joust_oa_template_caption_default(joust_oa_mode mode);
/* 1 when the template uses {caption1} and {caption2}. */
int joust_oa_template_captions(const joust_oa_template_t *t);

typedef struct {
    const char *model;
    double temperature;
    int max_tokens;
    int top_logprobs;  /* 0: no logprobs asked for */
    int64_t seed;      /* < 0: none sent */
} joust_oa_params;

/* Appends the request body: the system message (when the template has
 * one), the user message with the prompt text and both data URLs, the
 * prefill (when any), then the sampling parameters. */
void joust_oa_request_build(const joust_oa_template_t *t, const joust_oa_params *prm,
                            const char *prompt, const char *url1, size_t len1, const char *url2,
                            size_t len2, joust_buf_t *out);
/* The same with each image's caption for {caption1} and {caption2}
 * (NULL: ""). */
void joust_oa_request_build_captions(const joust_oa_template_t *t, const joust_oa_params *prm,
                                     const char *prompt, const char *caption1,
                                     const char *caption2, const char *url1, size_t len1,
                                     const char *url2, size_t len2, joust_buf_t *out);

#endif
