/* Chat-completions responses for the openai judge: the reasoning, the final
 * answer and the soft probability of the first image.
 *
 * The reasoning comes from message.reasoning_content / message.reasoning
 * (where vLLM's and SGLang's reasoning parsers put it) and from
 * <think>...</think> in message.content. The answer is the last
 * <answer>...</answer> after the reasoning, or a bare reply such as "1",
 * " 2" or "Image 1" (direct mode). The soft p comes from the top_logprobs
 * at the answer token: the entries whose text reads 1 or 2 ("1", " 1",
 * "Image 1", ...) are summed per choice (logsumexp) and renormalised over
 * the two choices. When only the chosen side is listed, the other is bounded
 * by the smallest listed logprob and by the probability mass left over, and
 * the reply is flagged `bounded`.
 *
 * Ownership: a reply's strings are malloc'd; joust_oa_reply_clear frees them.
 * Threads: reentrant. Never aborts on a bad body. */
#ifndef JOUST_OPENAI_PARSE_H
#define JOUST_OPENAI_PARSE_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int answer;               /* 1 or 2 */
    double p_first;           /* soft when `soft`, else 1.0 or 0.0 from the answer */
    int soft;                 /* p_first comes from logprobs */
    int bounded;              /* one choice was missing from top_logprobs */
    char *reasoning;          /* NULL when there is none */
    char *content;            /* message.content as received; NULL when absent */
    uint32_t prompt_tokens, completion_tokens;
    char finish_reason[16];
} joust_oa_reply;

/* Parses a 200 response.
 * @return 0 with the answer; JOUST_ECORRUPT when the body is not a chat
 *         completion (invalid or truncated JSON, no choices[0].message);
 *         JOUST_EFORMAT when it is one without a usable answer (no answer
 *         tags, an answer that is not 1 or 2, reasoning cut off). The
 *         reason goes to err; *out holds what was found in every case. */
int joust_oa_parse_reply(const char *body, size_t len, joust_oa_reply *out, char *err,
                         size_t errlen);
void joust_oa_reply_clear(joust_oa_reply *r);

/* The message of an error body ({"error":{"message":...}} or
 * {"message":...}), else the body's first bytes, printable. */
void joust_oa_error_message(const char *body, size_t len, char *out, size_t outlen);

/* 1 or 2 when s (len bytes) reads as that choice: blanks, a leading
 * "Image"/"image", and a trailing '.' or ')' are ignored; else 0. */
int joust_oa_choice_of(const char *s, size_t len);

#endif
