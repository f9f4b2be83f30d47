/* Unit tests of the openai judge's parts, without a server: base64, the
 * answer and soft-p parser (tokenisation variants, reasoning_content,
 * missing logprobs, bounds, broken bodies), templates and request bodies,
 * endpoint routing (affinity, load, set aside, 429 pause), and the
 * prepared-image cache (pixel budget, hits, cached failures, eviction). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "image.h"
#include "openai_parse.h"
#include "openai_prep.h"
#include "openai_request.h"
#include "openai_route.h"
#include "openai_scan.h"

static void test_base64(void)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        size_t n = joust_base64_encode((const unsigned char *)in[i], strlen(in[i]), out);
        CHECK(n == strlen(want[i]) && !memcmp(out, want[i], n));
    }
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char out[400];
    size_t n = joust_base64_encode(all, 256, out);
    CHECK(n == 344 && out[342] == '=' && out[343] == '=' && !memcmp(out, "AAECAwQF", 8));
}

static void test_choice(void)
{
    CHECK(joust_oa_choice_of("1", 1) == 1);
    CHECK(joust_oa_choice_of(" 2", 2) == 2);
    CHECK(joust_oa_choice_of("Image 1", 7) == 1);
    CHECK(joust_oa_choice_of("image 2.", 8) == 2);
    CHECK(joust_oa_choice_of("\n Image: 2 \n", 12) == 2);
    CHECK(joust_oa_choice_of("Image1", 6) == 1);
    CHECK(joust_oa_choice_of("3", 1) == 0);
    CHECK(joust_oa_choice_of("12", 2) == 0);
    CHECK(joust_oa_choice_of("", 0) == 0);
    CHECK(joust_oa_choice_of("The first", 9) == 0);
}

/* A chat completion with the given content and logprobs JSON (may be "null"). */
static char *completion(const char *content_json, const char *extra_msg, const char *logprobs)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
             "\"message\":{\"role\":\"assistant\",\"content\":%s%s},\"logprobs\":%s,"
             "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":700,"
             "\"completion_tokens\":60,\"total_tokens\":760}}",
             content_json, extra_msg ? extra_msg : "", logprobs);
    return buf;
}

static int parse(const char *body, joust_oa_reply *r, char *err)
{
    return joust_oa_parse_reply(body, strlen(body), r, err, 256);
}

static void test_parse(void)
{
    joust_oa_reply r;
    char err[256];
    /* Reason mode; the answer token's mass is split over "1" and " 1". */
    double p = 0.8;
    char lp[2048];
    snprintf(lp, sizeof lp,
             "{\"content\":[{\"token\":\"<think>\",\"logprob\":-0.1,\"top_logprobs\":[]},"
             "{\"token\":\" sharper\",\"logprob\":-0.1,\"top_logprobs\":[]},"
             "{\"token\":\"</think>\",\"logprob\":0,\"top_logprobs\":[]},"
             "{\"token\":\"<answer>\",\"logprob\":0,\"top_logprobs\":[]},"
             "{\"token\":\"1\",\"logprob\":%.17g,\"top_logprobs\":["
             "{\"token\":\"1\",\"logprob\":%.17g},{\"token\":\"2\",\"logprob\":%.17g},"
             "{\"token\":\" 1\",\"logprob\":%.17g},{\"token\":\" 2\",\"logprob\":%.17g},"
             "{\"token\":\"The\",\"logprob\":-25}]},"
             "{\"token\":\"</answer>\",\"logprob\":0,\"top_logprobs\":[]}]}",
             log(0.7 * p), log(0.7 * p), log(0.7 * (1 - p)), log(0.3 * p), log(0.3 * (1 - p)));
    CHECK(parse(completion("\"<think> sharper</think><answer>1</answer>\"", NULL, lp), &r, err) == 0);
    CHECK(r.answer == 1 && r.soft && !r.bounded);
    CHECK_NEAR(r.p_first, p, 1e-9);
    CHECK(r.reasoning && !strcmp(r.reasoning, "sharper"));
    CHECK(r.prompt_tokens == 700 && r.completion_tokens == 60);
    joust_oa_reply_clear(&r);

    /* Only the chosen side listed: bounded by the smallest entry. */
    CHECK(parse(completion("\"<answer>2</answer>\"", NULL,
                           "{\"content\":[{\"token\":\"<answer>\",\"logprob\":0},"
                           "{\"token\":\"2\",\"logprob\":-0.05,\"top_logprobs\":["
                           "{\"token\":\"2\",\"logprob\":-0.05},{\"token\":\"x\",\"logprob\":-4}]}]}"),
                &r, err) == 0);
    CHECK(r.answer == 2 && r.soft && r.bounded);
    /* The missing 1 is at most min(-4, log(1 - e^-0.05 - e^-4)) = -4. */
    CHECK_NEAR(r.p_first, 1.0 / (1.0 + exp(-0.05 + 4)), 1e-9);
    joust_oa_reply_clear(&r);

    /* "Image 1" as tokens "Image" " 1"; the sentinel -9999 means -inf. */
    CHECK(parse(completion("\"<think>a</think>\\n<answer>Image 1</answer>\"", NULL,
                           "{\"content\":[{\"token\":\"</think>\",\"logprob\":0},"
                           "{\"token\":\"<answer>\",\"logprob\":0},{\"token\":\"Image\",\"logprob\":0},"
                           "{\"token\":\" 1\",\"logprob\":-0.01,\"top_logprobs\":["
                           "{\"token\":\" 1\",\"logprob\":-0.01},{\"token\":\" 2\",\"logprob\":-9999.0}]}]}"),
                &r, err) == 0);
    CHECK(r.answer == 1 && r.soft);
    CHECK_NEAR(r.p_first, 1.0, 1e-12);
    joust_oa_reply_clear(&r);

    /* vLLM's reasoning parser: the reasoning in reasoning_content. */
    CHECK(parse(completion("\"<answer>2</answer>\"", ",\"reasoning_content\":\" image 2 is sharper \"",
                           "null"), &r, err) == 0);
    CHECK(r.answer == 2 && !r.soft && r.p_first == 0.0);
    CHECK(r.reasoning && !strcmp(r.reasoning, "image 2 is sharper"));
    joust_oa_reply_clear(&r);
    CHECK(parse(completion("\"\\n\\n<answer>1</answer>\"", ",\"reasoning\":\"newer field\"", "null"), &r,
                err) == 0);
    CHECK(r.answer == 1 && r.reasoning && !strcmp(r.reasoning, "newer field"));
    joust_oa_reply_clear(&r);

    /* Direct mode: a bare digit after an "<answer>" prefill. */
    CHECK(parse(completion("\"2\"", NULL,
                           "{\"content\":[{\"token\":\"2\",\"logprob\":-0.2,\"top_logprobs\":["
                           "{\"token\":\"2\",\"logprob\":-0.2},{\"token\":\"1\",\"logprob\":-1.7}]}]}"),
                &r, err) == 0);
    CHECK(r.answer == 2 && r.soft && !r.reasoning);
    CHECK_NEAR(r.p_first, 1.0 / (1.0 + exp(-0.2 + 1.7)), 1e-12);
    joust_oa_reply_clear(&r);
    CHECK(parse(completion("\"1</answer>\"", NULL, "null"), &r, err) == 0 && r.answer == 1);
    joust_oa_reply_clear(&r);

    /* No usable answer: EFORMAT with a reason. */
    CHECK(parse(completion("\"<think>hm</think>The first image is better.\"", NULL, "null"), &r, err) ==
          JOUST_EFORMAT);
    CHECK(strstr(err, "no <answer> tag") != NULL);
    CHECK(r.content && r.reasoning && !strcmp(r.reasoning, "hm"));
    joust_oa_reply_clear(&r);
    CHECK(parse(completion("\"<answer>3</answer>\"", NULL, "null"), &r, err) == JOUST_EFORMAT);
    CHECK(strstr(err, "not 1 or 2") != NULL);
    joust_oa_reply_clear(&r);
    CHECK(parse(completion("\"<think>long long\"", NULL, "null"), &r, err) == JOUST_EFORMAT);
    CHECK(strstr(err, "never ended") != NULL);
    joust_oa_reply_clear(&r);
    CHECK(parse(completion("null", NULL, "null"), &r, err) == JOUST_EFORMAT);
    joust_oa_reply_clear(&r);

    /* Not a chat completion: ECORRUPT, never a crash. */
    const char *good = completion("\"<answer>1</answer>\"", NULL, "null");
    size_t n = strlen(good);
    for (size_t cut = 0; cut < n; cut += 7) {
        joust_oa_reply x;
        int rc = joust_oa_parse_reply(good, cut, &x, err, sizeof err);
        joust_oa_reply_clear(&x);
        if (rc != JOUST_ECORRUPT) {
            CHECK(rc == JOUST_ECORRUPT);
            break;
        }
    }
    CHECK(parse("<html>502 Bad Gateway</html>", &r, err) == JOUST_ECORRUPT);
    CHECK(parse("{\"error\":{\"message\":\"boom\"}}", &r, err) == JOUST_ECORRUPT);
    CHECK(parse("{\"choices\":[]}", &r, err) == JOUST_ECORRUPT);
    CHECK(parse("{\"choices\":[{\"message\":\"str\"}]}", &r, err) == JOUST_ECORRUPT);
    CHECK(joust_oa_parse_reply(NULL, 0, &r, err, sizeof err) == JOUST_ECORRUPT);
    char deep[5000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    CHECK(parse(deep, &r, err) == JOUST_ECORRUPT);
    /* Wrong types inside a valid completion are not trusted: logprobs came
     * but nothing usable is at the answer token, so no silent hard answer. */
    CHECK(parse(completion("\"<answer>1</answer>\"", NULL,
                           "{\"content\":[{\"token\":5},{\"token\":\"1\",\"logprob\":\"x\","
                           "\"top_logprobs\":{\"a\":1}}]}"), &r, err) == JOUST_EFORMAT);
    CHECK(strstr(err, "'1'") != NULL);
    joust_oa_reply_clear(&r);

    char msg[128];
    const char *e1 = "{\"error\":{\"message\":\"too many images\",\"type\":\"BadRequestError\"}}";
    joust_oa_error_message(e1, strlen(e1), msg, sizeof msg);
    CHECK(!strcmp(msg, "too many images"));
    const char *e2 = "{\"object\":\"error\",\"message\":\"old style\"}";
    joust_oa_error_message(e2, strlen(e2), msg, sizeof msg);
    CHECK(!strcmp(msg, "old style"));
    joust_oa_error_message("Bad\nGateway", 11, msg, sizeof msg);
    CHECK(!strcmp(msg, "Bad Gateway"));
}

/* A random JSON value: nested arrays and objects, strings full of quotes,
 * backslashes and brackets, numbers. */
static cJSON *random_json(unsigned *seed, int depth)
{
    int kind = depth > 3 ? rand_r(seed) % 3 : rand_r(seed) % 5;
    if (kind == 0)
        return cJSON_CreateNumber((double)(rand_r(seed) % 100000) / 7.0 - 5000);
    if (kind == 1 || kind == 2) {
        char str[40];
        const char alphabet[] = "ab\"\\[]{},: \n1>*";
        int n = rand_r(seed) % 30;
        for (int i = 0; i < n; i++)
            str[i] = alphabet[rand_r(seed) % (sizeof alphabet - 1)];
        str[n] = '\0';
        return cJSON_CreateString(str);
    }
    cJSON *c = kind == 3 ? cJSON_CreateArray() : cJSON_CreateObject();
    int n = rand_r(seed) % 6;
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "k\"%d]", i);
        if (kind == 3)
            cJSON_AddItemToArray(c, random_json(seed, depth + 1));
        else
            cJSON_AddItemToObject(c, key, random_json(seed, depth + 1));
    }
    return c;
}

/* The scanner skips exactly what cJSON prints (16-byte blocks and the
 * bytes after them, escapes across block edges), and nothing cut off. */
static void test_scan(void)
{
    unsigned seed = 12345;
    int checked = 0;
    for (int t = 0; t < 400; t++) {
        cJSON *v = cJSON_CreateArray();
        cJSON_AddItemToArray(v, random_json(&seed, 0));
        cJSON_AddItemToArray(v, random_json(&seed, 0));
        char *text = cJSON_PrintUnformatted(v);
        size_t len = strlen(text);
        char *padded = malloc(len + 8);
        memcpy(padded, text, len);
        memcpy(padded + len, " ,1]", 5);
        const char *e = joust_js_skip(padded, padded + len + 4);
        CHECK(e == padded + len);
        for (size_t cut = 0; cut < len; cut += 1 + len / 40)
            if (joust_js_skip(text, text + cut) != NULL) {
                CHECK(joust_js_skip(text, text + cut) == NULL);
                break;
            }
        checked++;
        free(padded);
        free(text);
        cJSON_Delete(v);
    }
    CHECK(checked == 400);
    const char *tricky = "[\"aaaaaaaaaaaaaa\\\\\",\"bbbbbbbbbbbbbbbbbbbbbbb\\\"]]]]]]]]]]]]]]]\"]";
    CHECK(joust_js_skip(tricky, tricky + strlen(tricky)) == tricky + strlen(tricky));
}

/* logprobs.content for the given tokens; the alternatives (token, p) go to
 * the token at index at (NULL-terminated list). */
static char *token_stream(const char *const *toks, int at, const char *const *alts, const double *ps)
{
    static char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof buf, "{\"content\":[");
    for (int i = 0; toks[i]; i++) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{\"token\":\"%s\",\"logprob\":%s,"
                              "\"bytes\":[1,2],\"top_logprobs\":[", i ? "," : "", toks[i],
                              i == at ? "-0.3" : "-0.01");
        for (int k = 0; i == at && alts[k]; k++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{\"token\":\"%s\",\"logprob\":%.17g,"
                                  "\"bytes\":[]}", k ? "," : "", alts[k], log(ps[k]));
        n += (size_t)snprintf(buf + n, sizeof buf - n, "]}");
    }
    snprintf(buf + n, sizeof buf - n, "]}");
    return buf;
}

/* The answer token found by its position, every spelling of a choice
 * summed, and no silent hard answer when logprobs came (issue 9.7). */
static void test_answer_token(void)
{
    joust_oa_reply r;
    char err[256], lp[4096];
    const double ps[] = {0.5, 0.2, 0.12, 0.08, 0.05, 0.05};
    /* 1: 0.5 + 0.12 (+0.05); 2: 0.2 + 0.08 (+0.05) when the third pair counts */
    struct {
        const char *name, *content;
        const char *toks[8];
        int at;
        const char *alts[7];
        double want;
    } cases[] = {
        {">1 after a split tag", "<answer>1</answer>", {"<", "answer", ">1", "</answer>", NULL}, 2,
         {">1", ">2", "1", "2", NULL}, 0.62 / 0.90},
        {"**1**", "<answer>**1**</answer>", {"<answer>", "**", "1", "**", "</answer>", NULL}, 2,
         {"1", "2", "**1", "**2", NULL}, 0.62 / 0.90},
        {"bold in one token", "<answer>**2**</answer>", {"<answer>", "**2", "**", NULL}, 1,
         {"**1", "**2", "1", "2", NULL}, 0.62 / 0.90},
        {"quoted", "<answer>\\\"1\\\"</answer>", {"<answer>", "\\\"1", "\\\"", NULL}, 1,
         {"\\\"1", "\\\"2", " 1", " 2", "\\\"Image", NULL}, 0.62 / 0.90},
        {" 1", "<answer> 1</answer>", {"<answer>", " 1", "</answer>", NULL}, 1,
         {" 1", " 2", "1", "2", "\\n", NULL}, 0.62 / 0.90},
        {"Image 1", "<answer>Image 1</answer>", {"<answer>", "Image", " 1", "</answer>", NULL}, 2,
         {" 1", " 2", "1", "2", " one", NULL}, 0.62 / 0.90},
        {"image 2", "<answer>image 2</answer>", {"<answer>", "image", " 2", NULL}, 2,
         {" 1", " 2", "1", "2", "Image 1", "image 2", NULL}, 0.67 / 1.0},
        {"<answer> split three ways", "<answer>2</answer>", {"<ans", "wer", ">", "2", "</", "answer>", NULL}, 3,
         {"1", "2", " 1", " 2", NULL}, 0.62 / 0.90},
        {"no <answer> (prefilled)", "1", {"1", NULL}, 0, {"1", "2", " 1", " 2", NULL}, 0.62 / 0.90},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(lp, sizeof lp, "%s", token_stream(cases[i].toks, cases[i].at, cases[i].alts, ps));
        char content[256];
        snprintf(content, sizeof content, "\"%s\"", cases[i].content);
        int rc = parse(completion(content, NULL, lp), &r, err);
        if (rc != 0 || !r.soft || fabs(r.p_first - cases[i].want) > 1e-9)
            printf("answer token case '%s': rc %d (%s), soft %d, p %.6f, want %.6f\n", cases[i].name,
                   rc, err, r.soft, r.p_first, cases[i].want);
        CHECK(rc == 0 && r.soft && !r.bounded);
        CHECK_NEAR(r.p_first, cases[i].want, 1e-9);
        joust_oa_reply_clear(&r);
    }
    /* The last <answer> of the stream, not the first. */
    const char *t2[] = {"<think>", "say ", "<answer>", "2", "</think>", "<answer>", "1", "</answer>", NULL};
    const char *a2[] = {"1", "2", NULL};
    const double p2[] = {0.75, 0.25};
    snprintf(lp, sizeof lp, "%s", token_stream(t2, 6, a2, p2));
    CHECK(parse(completion("\"<think>say <answer>2</think><answer>1</answer>\"", NULL, lp), &r, err) == 0);
    CHECK(r.answer == 1 && r.soft);
    CHECK_NEAR(r.p_first, 0.75, 1e-9);
    joust_oa_reply_clear(&r);
    /* Logprobs came, but no alternative at the answer position reads 1 or
     * 2: unparseable with the token text, never a silent hard answer. */
    const char *t3[] = {"<answer>", "first", "</answer>", NULL};
    const char *a3[] = {"first", "second", NULL};
    snprintf(lp, sizeof lp, "%s", token_stream(t3, 1, a3, p2));
    CHECK(parse(completion("\"<answer>1</answer>\"", NULL, lp), &r, err) == JOUST_EFORMAT);
    CHECK(strstr(err, "'first'") && strstr(err, "'second'"));
    joust_oa_reply_clear(&r);
    const char *t4[] = {"<answer>", "</answer>", NULL};
    snprintf(lp, sizeof lp, "%s", token_stream(t4, -1, a3, p2));
    CHECK(parse(completion("\"<answer>1</answer>\"", NULL, lp), &r, err) == JOUST_EFORMAT);
    CHECK(strstr(err, "'</answer>'") != NULL);
    joust_oa_reply_clear(&r);
    /* Logprobs absent (null, or an empty list): a hard answer, said so. */
    CHECK(parse(completion("\"<answer>**2**</answer>\"", NULL, "null"), &r, err) == 0);
    CHECK(r.answer == 2 && !r.soft && r.p_first == 0.0);
    joust_oa_reply_clear(&r);
    CHECK(parse(completion("\"<answer>1</answer>\"", NULL, "{\"content\":[]}"), &r, err) == 0);
    CHECK(r.answer == 1 && !r.soft);
    joust_oa_reply_clear(&r);
    /* Direct mode behind a reasoning parser: the digit in reasoning_content
     * (or reasoning) with content null, finish_reason "length". */
    const char *t5[] = {"2", NULL};
    snprintf(lp, sizeof lp, "%s", token_stream(t5, 0, a2, p2));
    char body[8192];
    snprintf(body, sizeof body,
             "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
             "\"reasoning_content\":\"2\"},\"logprobs\":%s,\"finish_reason\":\"length\"}]}", lp);
    CHECK(parse(body, &r, err) == 0);
    CHECK(r.answer == 2 && r.soft && !r.reasoning && !strcmp(r.finish_reason, "length"));
    CHECK_NEAR(r.p_first, 0.75, 1e-9);
    joust_oa_reply_clear(&r);
    CHECK(parse("{\"choices\":[{\"message\":{\"content\":\"\",\"reasoning\":\" 1\"},"
                "\"finish_reason\":\"length\"}]}", &r, err) == 0);
    CHECK(r.answer == 1 && !r.soft);
    joust_oa_reply_clear(&r);
    /* Escapes in tokens are decoded before they are read. */
    const char *t6[] = {"\\u003canswer\\u003e", "\\u0031", NULL};
    const char *a6[] = {"\\u0031", "\\u0032", NULL};
    snprintf(lp, sizeof lp, "%s", token_stream(t6, 1, a6, p2));
    CHECK(parse(completion("\"<answer>1\"", NULL, lp), &r, err) == 0 && r.soft);
    CHECK_NEAR(r.p_first, 0.75, 1e-9);
    joust_oa_reply_clear(&r);
}

/* The user message's parts as a string of kinds: t = text, i = image. */
static void parts_of(const cJSON *msg, char *out)
{
    const cJSON *part;
    size_t n = 0;
    cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(msg, "content"))
        out[n++] = !strcmp(cJSON_GetObjectItemCaseSensitive(part, "type")->valuestring, "text") ? 't' : 'i';
    out[n] = '\0';
}

/* Each image with its own caption (grouped runs): the built-in caption
 * templates render both captions next to their images; {caption1} without
 * {caption2} is refused; a template may use the captions instead of
 * {prompt}. */
static void test_caption_template(void)
{
    joust_oa_template_t *t;
    char err[256];
    joust_oa_params prm = {"m", 0.0, 1024, 20, -1};
    for (int mode = JOUST_OA_REASON; mode <= JOUST_OA_DIRECT; mode++) {
        CHECK_RC(joust_oa_template_parse(joust_oa_template_caption_default((joust_oa_mode)mode), &t,
                                         err, sizeof err));
        CHECK(joust_oa_template_captions(t));
        joust_buf_t b = {0};
        joust_oa_request_build_captions(t, &prm, "", "a red \"fox\"", "two cats", "u1", 2, "u2", 2, &b);
        cJSON *req = cJSON_Parse(b.data);
        CHECK(req != NULL);
        const cJSON *user = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(req, "messages"), 1);
        char kinds[16];
        parts_of(user, kinds);
        CHECK(!strcmp(kinds, "titit"));
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(user, "content");
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(c, 0), "text")->valuestring,
                      "Image 1, captioned: a red \"fox\""));
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(c, 2), "text")->valuestring,
                      "Image 2, captioned: two cats"));
        CHECK(!strstr(b.data, "Text prompt"));
        cJSON_Delete(req);
        joust_buf_free(&b);
        joust_oa_template_destroy(&t);
    }
    CHECK(joust_oa_template_parse("{caption1} {image1} {image2}", &t, err, sizeof err) == JOUST_EINVAL);
    CHECK(strstr(err, "{caption2}") != NULL);
    CHECK(joust_oa_template_parse("{image1} {image2}", &t, err, sizeof err) == JOUST_EINVAL);
    CHECK_RC(joust_oa_template_parse("{prompt}: {caption1} {image1} {caption2} {image2}", &t, err, sizeof err));
    CHECK(joust_oa_template_captions(t));
    joust_oa_template_destroy(&t);
    CHECK_RC(joust_oa_template_parse(joust_oa_template_default(JOUST_OA_REASON), &t, err, sizeof err));
    CHECK(!joust_oa_template_captions(t));
    joust_oa_template_destroy(&t);
}

static void test_template(void)
{
    joust_oa_template_t *t;
    char err[256];
    CHECK_RC(joust_oa_template_parse(joust_oa_template_default(JOUST_OA_REASON), &t, err, sizeof err));
    CHECK(joust_oa_template_prefix_shared(t));
    joust_oa_params prm = {"m/x", 0.0, 1024, 20, 42};
    joust_buf_t b = {0};
    joust_oa_request_build(t, &prm, "a \"cat\"\non a sofa", "data:image/jpeg;base64,AAAA", 27,
                           "data:image/jpeg;base64,BBBB", 27, &b);
    cJSON *req = cJSON_Parse(b.data);
    CHECK(req != NULL);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    CHECK(cJSON_GetArraySize(msgs) == 2);
    const cJSON *sys = cJSON_GetArrayItem(msgs, 0), *user = cJSON_GetArrayItem(msgs, 1);
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(sys, "role")->valuestring, "system"));
    char kinds[16];
    parts_of(user, kinds);
    CHECK(!strcmp(kinds, "titit"));
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(user, "content"), 0);
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(p0, "text")->valuestring,
                  "Text prompt: a \"cat\"\non a sofa\nImage 1:"));
    const cJSON *p1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(user, "content"), 1);
    char *p1s = cJSON_PrintUnformatted(p1);
    CHECK(!strcmp(p1s, "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,AAAA\"}}"));
    free(p1s);
    CHECK(cJSON_GetObjectItemCaseSensitive(req, "top_logprobs")->valueint == 20);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "logprobs")));
    CHECK(cJSON_GetObjectItemCaseSensitive(req, "seed")->valueint == 42);
    CHECK(cJSON_GetObjectItemCaseSensitive(req, "max_tokens")->valueint == 1024);
    CHECK(!cJSON_GetObjectItemCaseSensitive(req, "continue_final_message"));
    cJSON_Delete(req);
    joust_oa_template_destroy(&t);

    /* Direct: an assistant prefill, continued. */
    CHECK_RC(joust_oa_template_parse(joust_oa_template_default(JOUST_OA_DIRECT), &t, err, sizeof err));
    joust_buf_reset(&b);
    prm.max_tokens = 1;
    prm.top_logprobs = 0;
    prm.seed = -1;
    joust_oa_request_build(t, &prm, "p", "u1", 2, "u2", 2, &b);
    req = cJSON_Parse(b.data);
    msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    CHECK(cJSON_GetArraySize(msgs) == 3);
    const cJSON *asst = cJSON_GetArrayItem(msgs, 2);
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(asst, "content")->valuestring, "<answer>"));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "continue_final_message")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(req, "add_generation_prompt")));
    CHECK(!cJSON_GetObjectItemCaseSensitive(req, "logprobs") && !cJSON_GetObjectItemCaseSensitive(req, "seed"));
    cJSON_Delete(req);
    joust_oa_template_destroy(&t);

    /* No sections: all of it is the user message. */
    CHECK_RC(joust_oa_template_parse("Prompt {prompt} {image1} vs {image2} which?", &t, err, sizeof err));
    joust_buf_reset(&b);
    joust_oa_request_build(t, &prm, "x", "u1", 2, "u2", 2, &b);
    req = cJSON_Parse(b.data);
    msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    CHECK(cJSON_GetArraySize(msgs) == 1);
    parts_of(cJSON_GetArrayItem(msgs, 0), kinds);
    CHECK(!strcmp(kinds, "titit"));
    cJSON_Delete(req);
    joust_oa_template_destroy(&t);
    /* {prompt} after the images: accepted, but no shared prefix. */
    CHECK_RC(joust_oa_template_parse("{image1}{image2} {prompt}", &t, err, sizeof err));
    CHECK(!joust_oa_template_prefix_shared(t));
    joust_oa_template_destroy(&t);

    const char *bad[] = {"{prompt} {image2} {image1}", "{prompt} {image1}", "{image1} {image2}",
                         "{prompt} {image1} {image1} {image2}",
                         "[system]\n{image1}\n[user]\n{prompt}{image2}", "junk\n[user]\n{prompt}{image1}{image2}",
                         "[user]\n{prompt}{image1}{image2}\n[user]\nx", "[system]\nonly a system prompt\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = joust_oa_template_parse(bad[i], &t, err, sizeof err);
        CHECK(rc == JOUST_EINVAL && t == NULL && err[0]);
    }
    CHECK(joust_oa_template_load("/nonexistent/template.txt", &t, err, sizeof err) == JOUST_EIO);
    joust_buf_free(&b);
}

static void test_route(void)
{
    joust_oa_route_t *r = joust_oa_route_new(2, 8, 3, 4);
    int64_t now = 1000;
    /* Unknown images spread by load. */
    int e0 = joust_oa_route_pick(r, 11, 12, now);
    joust_oa_route_sent(r, e0, 11, 12);
    int e1 = joust_oa_route_pick(r, 13, 14, now);
    CHECK(e0 >= 0 && e1 >= 0 && e0 != e1);
    joust_oa_route_sent(r, e1, 13, 14);
    /* A request sharing image 11 goes where 11 went, and counts a repeat. */
    CHECK(joust_oa_route_pick(r, 11, 99, now) == e0);
    joust_oa_route_sent(r, e0, 11, 99);
    CHECK(joust_oa_route_pick(r, 98, 14, now) == e1);
    uint64_t sends, repeats;
    joust_oa_route_affinity(r, &sends, &repeats);
    CHECK(sends == 6 && repeats == 1);
    /* Affinity gives way to load: share 4 + slack 1. */
    for (int i = 0; i < 3; i++)
        joust_oa_route_sent(r, e0, 11, 100 + (uint64_t)i);
    CHECK(joust_oa_route_pick(r, 11, 200, now) == e1);
    for (int i = 0; i < 5; i++)
        joust_oa_route_done(r, e0, JOUST_OA_EP_OK, -1, now);
    /* Three failures in a row take e1 down; it is probed at once, then
     * with backoff, and only a probe brings it back. */
    joust_oa_route_done(r, e1, JOUST_OA_EP_OK, -1, now); /* the (13, 14) request */
    for (int i = 0; i < 3; i++)
        joust_oa_route_sent(r, e1, 300 + (uint64_t)i, 0);
    for (int i = 0; i < 3; i++)
        joust_oa_route_done(r, e1, JOUST_OA_EP_FAILED, -1, now);
    joust_oa_ep_stats st;
    joust_oa_route_ep_stats(r, e1, &st);
    CHECK(st.set_aside == 1 && st.failed == 3);
    CHECK(joust_oa_route_state(r, e1) == JOUST_OA_DOWN && joust_oa_route_count(r, JOUST_OA_UP) == 1);
    CHECK(joust_oa_route_pick(r, 13, 0, now + 10) == e0);
    CHECK(joust_oa_route_next_change_ms(r, now + 10) == now + 10); /* a probe is due */
    CHECK(joust_oa_route_probe_due(r, now + 10) == e1);
    CHECK(joust_oa_route_probe_due(r, now + 10) == -1); /* one probe at a time */
    joust_oa_route_probe_done(r, e1, JOUST_OA_DOWN, now + 20);
    CHECK(joust_oa_route_next_change_ms(r, now + 20) == now + 20 + 500);
    CHECK(joust_oa_route_probe_due(r, now + 100) == -1);
    CHECK(joust_oa_route_probe_due(r, now + 520) == e1);
    joust_oa_route_probe_done(r, e1, JOUST_OA_DOWN, now + 530); /* backoff doubles: 1 s */
    CHECK(joust_oa_route_next_change_ms(r, now + 530) == now + 1530);
    CHECK(joust_oa_route_pick(r, 13, 0, now + 2000) == e0);
    CHECK(joust_oa_route_probe_due(r, now + 2000) == e1);
    joust_oa_route_probe_done(r, e1, JOUST_OA_UP, now + 2010);
    CHECK(joust_oa_route_pick(r, 13, 0, now + 3200) == e1);
    /* A 401 makes an endpoint broken; it stays out until a probe finds it up. */
    joust_oa_route_done(r, e1, JOUST_OA_EP_BROKEN, -1, now + 3300);
    CHECK(joust_oa_route_state(r, e1) == JOUST_OA_BROKEN && joust_oa_route_pick(r, 13, 0, now + 3300) == e0);
    CHECK(joust_oa_route_probe_due(r, now + 3400) == -1);
    CHECK(joust_oa_route_probe_due(r, now + 8300) == e1);
    joust_oa_route_probe_done(r, e1, JOUST_OA_UP, now + 8300);
    /* 429 pauses an endpoint for Retry-After, without counting a failure. */
    joust_oa_route_sent(r, e0, 1, 2);
    joust_oa_route_done(r, e0, JOUST_OA_EP_THROTTLED, 1500, now + 4000);
    CHECK(joust_oa_route_pick(r, 1, 2, now + 4001) == e1);
    CHECK(joust_oa_route_pick(r, 1, 2, now + 5501) == e0);
    /* No endpoint up: -1, and the caller waits for a probe; all paused: -1. */
    joust_oa_route_t *one = joust_oa_route_new(1, 4, 1, 4);
    joust_oa_route_sent(one, 0, 1, 2);
    joust_oa_route_done(one, 0, JOUST_OA_EP_FAILED, -1, now);
    CHECK(joust_oa_route_pick(one, 1, 2, now) == -1);
    CHECK(joust_oa_route_probe_due(one, now) == 0);
    joust_oa_route_probe_done(one, 0, JOUST_OA_UP, now);
    CHECK(joust_oa_route_pick(one, 1, 2, now) == 0);
    joust_oa_route_sent(one, 0, 1, 2);
    joust_oa_route_done(one, 0, JOUST_OA_EP_THROTTLED, 500, now);
    CHECK(joust_oa_route_pick(one, 1, 2, now + 10) == -1);
    CHECK(joust_oa_route_next_change_ms(one, now + 10) == now + 500);
    CHECK(joust_oa_route_pick(one, 1, 2, now + 500) == 0);
    joust_oa_route_destroy(&one);
    joust_oa_route_destroy(&r);
    CHECK(r == NULL);
}

static int write_png(const char *path, int w, int h)
{
    joust_image img = {w, h, malloc((size_t)w * h * 3)};
    for (int i = 0; i < w * h * 3; i++)
        img.rgb[i] = (unsigned char)(i * 7 + i / 3);
    int rc = joust_image_save_png(path, &img);
    joust_image_free(&img);
    return rc;
}

/* Width and height from a base64 JPEG data URL (SOF0..2). */
static int jpeg_dims(const char *url, int *w, int *h)
{
    const char *b = strchr(url, ',') + 1;
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(b), k = 0;
    unsigned char *d = malloc(n);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && b[i] != '='; i++) {
        acc = acc << 6 | (uint32_t)(strchr(tab, b[i]) - tab);
        if ((bits += 6) >= 8)
            d[k++] = (unsigned char)(acc >> (bits -= 8));
    }
    int ok = 0;
    for (size_t i = 2; i + 9 < k; i++)
        if (d[i] == 0xff && (d[i + 1] == 0xc0 || d[i + 1] == 0xc2)) {
            *h = d[i + 5] << 8 | d[i + 6];
            *w = d[i + 7] << 8 | d[i + 8];
            ok = 1;
            break;
        }
    free(d);
    return ok;
}

static void test_prep(void)
{
    char dir[] = "/tmp/joust-oa-prep.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char big[128], small[128];
    snprintf(big, sizeof big, "%s/big.png", dir);
    snprintf(small, sizeof small, "%s/small.png", dir);
    CHECK_RC(write_png(big, 1000, 700));
    CHECK_RC(write_png(small, 50, 30));
    joust_oa_prep_config pc = {.min_pixels = 3136, .max_pixels = 401408, .factor = 28,
                               .jpeg_quality = 90, .max_entries = 4, .max_bytes = 0,
                               .image_root = dir};
    joust_oa_prep_t *p = joust_oa_prep_new(&pc);
    joust_oa_image im;
    char err[512];
    CHECK_RC(joust_oa_prep_get(p, 1, "big.png", &im, err, sizeof err));
    /* smart_resize(1000x700, max 401408): floor to multiples of 28 under the cap. */
    CHECK(im.src_w == 1000 && im.src_h == 700 && im.w == 756 && im.h == 504);
    CHECK(!strncmp(im.url, "data:image/jpeg;base64,", 23) && strlen(im.url) == im.url_len);
    int w = 0, h = 0;
    CHECK(jpeg_dims(im.url, &w, &h) && w == 756 && h == 504);
    char file_uri[256];
    snprintf(file_uri, sizeof file_uri, "file://%s", small);
    CHECK_RC(joust_oa_prep_get(p, 2, file_uri, &im, err, sizeof err));
    CHECK(im.w == 84 && im.h == 56 && im.w * im.h >= 3136); /* min_pixels scales up */
    CHECK_RC(joust_oa_prep_get(p, 1, "big.png", &im, err, sizeof err));
    uint64_t hits, misses;
    size_t bytes;
    joust_oa_prep_stats(p, &hits, &misses, &bytes);
    CHECK(hits == 1 && misses == 2 && bytes > 0);
    /* Failures are cached too, with the reason naming the file. */
    CHECK(joust_oa_prep_get(p, 3, "missing.png", &im, err, sizeof err) == JOUST_ENOTFOUND);
    CHECK(strstr(err, "missing.png") != NULL && im.url == NULL);
    CHECK(joust_oa_prep_get(p, 3, "missing.png", &im, err, sizeof err) == JOUST_ENOTFOUND);
    CHECK(joust_oa_prep_get(p, 4, "https://example.com/x.png", &im, err, sizeof err) ==
          JOUST_EUNSUPPORTED);
    joust_oa_prep_stats(p, &hits, &misses, NULL);
    CHECK(hits == 2 && misses == 4);
    /* Four entries at most: the least recently used (image 2) went first. */
    CHECK_RC(joust_oa_prep_get(p, 5, "big.png", &im, err, sizeof err));
    CHECK_RC(joust_oa_prep_get(p, 2, file_uri, &im, err, sizeof err));
    joust_oa_prep_stats(p, &hits, &misses, NULL);
    CHECK(misses == 6);
    joust_oa_prep_destroy(&p);
    /* A byte budget smaller than one image still keeps the last two. */
    pc.max_bytes = 10;
    p = joust_oa_prep_new(&pc);
    joust_oa_image a, b2;
    CHECK_RC(joust_oa_prep_get(p, 1, "big.png", &a, err, sizeof err));
    CHECK_RC(joust_oa_prep_get(p, 2, "small.png", &b2, err, sizeof err));
    CHECK(!strncmp(a.url, "data:image/jpeg;base64,", 23)); /* still valid */
    joust_oa_prep_destroy(&p);
    unlink(big);
    unlink(small);
    rmdir(dir);
}

int main(void)
{
    test_base64();
    test_choice();
    test_parse();
    test_answer_token();
    test_scan();
    test_template();
    test_caption_template();
    test_route();
    test_prep();
    return test_report();
}
