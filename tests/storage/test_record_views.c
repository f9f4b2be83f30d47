/* Tests of the record views (storage/records.h): for outcome, image and
 * prompt records packed by protobuf-c (all fields, few fields, strings with
 * an embedded NUL, unknown fields), a view gives the values protobuf-c
 * unpacks; and over every prefix and thousands of random byte changes of
 * them, a view fails exactly when protobuf-c refuses the bytes and
 * otherwise agrees with it field by field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "records.h"

/* The view's string equals the unpacked C string (NULL: absent). */
static int str_eq(joust_str_view v, const char *s)
{
    if (!s)
        return v.s == NULL && v.len == 0;
    return v.s && v.len == strlen(s) && !memcmp(v.s, s, v.len);
}

static int outcome_agrees(const unsigned char *buf, size_t len)
{
    joust_outcome_view v;
    int rc = joust_rec_outcome_view(buf, len, &v);
    Joust__OutcomeRecord *o = joust__outcome_record__unpack(NULL, len, buf);
    int ok;
    if (!o)
        ok = rc == JOUST_ECORRUPT;
    else
        ok = rc == 0 && v.prompt_id == o->prompt_id && v.first == o->first &&
             v.second == o->second && v.status == (int)o->status &&
             v.has_p_first == (int)o->has_p_first &&
             (!o->has_p_first || !memcmp(&v.p_first, &o->p_first, sizeof v.p_first)) &&
             v.has_kind == (int)o->has_kind && (!o->has_kind || v.kind == (int)o->kind) &&
             v.failed_image_id == (o->has_failed_image_id ? o->failed_image_id : 0) &&
             v.has_latency_us == (int)o->has_latency_us &&
             (!o->has_latency_us || v.latency_us == o->latency_us) &&
             v.has_tokens == (int)o->has_tokens && (!o->has_tokens || v.tokens == o->tokens) &&
             str_eq(v.error, o->error);
    if (o)
        joust__outcome_record__free_unpacked(o, NULL);
    return ok;
}

static int image_agrees(const unsigned char *buf, size_t len)
{
    joust_image_view v;
    int rc = joust_rec_image_view(buf, len, &v);
    Joust__ImageRecord *o = joust__image_record__unpack(NULL, len, buf);
    int ok;
    if (!o)
        ok = rc == JOUST_ECORRUPT;
    else
        ok = rc == 0 && v.image_id == o->image_id && v.prompt_id == o->prompt_id &&
             str_eq(v.uri, o->uri) && str_eq(v.model, o->model) &&
             str_eq(v.caller_id, o->caller_id);
    if (o)
        joust__image_record__free_unpacked(o, NULL);
    return ok;
}

static int prompt_agrees(const unsigned char *buf, size_t len)
{
    joust_prompt_view v;
    int rc = joust_rec_prompt_view(buf, len, &v);
    Joust__PromptRecord *o = joust__prompt_record__unpack(NULL, len, buf);
    int ok;
    if (!o)
        ok = rc == JOUST_ECORRUPT;
    else
        ok = rc == 0 && v.prompt_id == o->prompt_id && str_eq(v.text, o->text) &&
             str_eq(v.caller_id, o->caller_id);
    if (o)
        joust__prompt_record__free_unpacked(o, NULL);
    return ok;
}

/* Every prefix and many random single-byte changes of buf agree. */
static void mutations_agree(const unsigned char *buf, size_t len,
                            int (*agrees)(const unsigned char *, size_t), unsigned seed)
{
    unsigned char *m = malloc(len + 1);
    int bad = 0;
    for (size_t n = 0; n <= len; n++)
        bad += !agrees(buf, n);
    srand(seed);
    for (int t = 0; t < 4000 && len; t++) {
        memcpy(m, buf, len);
        int changes = 1 + rand() % 3;
        for (int c = 0; c < changes; c++)
            m[(size_t)rand() % len] = (unsigned char)rand();
        if (!agrees(m, len) && bad++ == 0) { /* show the first one */
            for (size_t q = 0; q < len; q++)
                fprintf(stderr, "%02x ", m[q]);
            fprintf(stderr, "(seed %u) disagrees\n", seed);
        }
    }
    CHECK(bad == 0);
    if (bad)
        fprintf(stderr, "  %d mutations disagree with protobuf-c\n", bad);
    free(m);
}

static unsigned char *pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    unsigned char *buf = malloc(*len ? *len : 1);
    protobuf_c_message_pack(msg, buf);
    return buf;
}

static void test_outcomes(void)
{
    Joust__OutcomeRecord o = JOUST__OUTCOME_RECORD__INIT;
    o.prompt_id = 1234567890123ull;
    o.first = 7;
    o.second = UINT64_MAX;
    o.status = JOUST__OUTCOME_STATUS__OK;
    o.has_p_first = 1;
    o.p_first = 0.123456789012345;
    o.judge = "sim";
    o.worker = "local-1";
    o.has_attempt = 1;
    o.attempt = 2;
    o.has_latency_us = 1;
    o.latency_us = -5;
    o.has_committed_ms = 1;
    o.committed_ms = 1733000000000;
    o.has_kind = 1;
    o.kind = JOUST__OUTCOME_KIND__HARD;
    o.has_reused_match = 1;
    o.reused_match = 99;
    size_t len;
    unsigned char *buf = pack(&o.base, &len);
    joust_outcome_view v;
    CHECK_RC(joust_rec_outcome_view(buf, len, &v));
    CHECK(v.prompt_id == o.prompt_id && v.first == 7 && v.second == UINT64_MAX);
    CHECK(v.status == JOUST__OUTCOME_STATUS__OK && v.has_p_first && v.p_first == o.p_first);
    CHECK(v.has_kind && v.kind == JOUST__OUTCOME_KIND__HARD && !v.error.s);
    CHECK(v.has_latency_us && v.latency_us == -5 && !v.has_tokens);
    CHECK(outcome_agrees(buf, len));
    mutations_agree(buf, len, outcome_agrees, 1);
    free(buf);

    /* A failed one: an error text with an embedded NUL, an image. */
    Joust__OutcomeRecord f = JOUST__OUTCOME_RECORD__INIT;
    f.prompt_id = 3;
    f.first = 4;
    f.second = 5;
    f.status = JOUST__OUTCOME_STATUS__IMAGE_ERROR;
    f.has_failed_image_id = 1;
    f.failed_image_id = 5;
    f.error = "cannot decode";
    f.has_tokens = 1;
    f.tokens = 4000000000u;
    buf = pack(&f.base, &len);
    char *nul = memchr(buf, 'd', len); /* "cannot \0ecode": C sees "cannot " */
    CHECK(nul != NULL);
    if (nul)
        *nul = 0;
    CHECK_RC(joust_rec_outcome_view(buf, len, &v));
    CHECK(v.status == JOUST__OUTCOME_STATUS__IMAGE_ERROR && !v.has_p_first);
    CHECK(v.failed_image_id == 5 && v.error.len == 7 && !memcmp(v.error.s, "cannot ", 7));
    CHECK(v.has_tokens && v.tokens == 4000000000u && !v.has_latency_us);
    CHECK(outcome_agrees(buf, len));
    mutations_agree(buf, len, outcome_agrees, 2);
    free(buf);

    /* A required field missing: corrupt. */
    Joust__OutcomeRecord m = JOUST__OUTCOME_RECORD__INIT;
    m.prompt_id = 1;
    m.first = 2;
    m.second = 3;
    m.status = JOUST__OUTCOME_STATUS__OK;
    buf = pack(&m.base, &len);
    CHECK_RC(joust_rec_outcome_view(buf, len, &v));
    CHECK(joust_rec_outcome_view(buf, len - 2, &v) == JOUST_ECORRUPT); /* no status */
    free(buf);

    /* A field this joust does not know (number 99, each wire type) is
     * skipped; a group is refused, as protobuf-c does. */
    static const unsigned char unknown[] = {
        0x08, 0x01, 0x10, 0x02, 0x18, 0x03, 0x20, 0x00,  /* fields 1-4 */
        0x98, 0x06, 0x96, 0x01,                          /* 99 varint 150 */
        0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8,              /* 99 fixed64 */
        0x9a, 0x06, 0x02, 'h', 'i',                      /* 99 length-delimited */
        0x9d, 0x06, 1, 2, 3, 4,                          /* 99 fixed32 */
    };
    CHECK_RC(joust_rec_outcome_view(unknown, sizeof unknown, &v));
    CHECK(v.prompt_id == 1 && v.first == 2 && v.second == 3 && v.status == 0);
    CHECK(outcome_agrees(unknown, sizeof unknown));
    static const unsigned char group[] = {0x08, 0x01, 0x10, 0x02, 0x18, 0x03,
                                          0x20, 0x00, 0x9b, 0x06, 0x9c, 0x06};
    CHECK(joust_rec_outcome_view(group, sizeof group, &v) == JOUST_ECORRUPT);
    CHECK(outcome_agrees(group, sizeof group));
    /* A known field with the wrong wire type (p_first as a varint). */
    static const unsigned char wrong[] = {0x08, 0x01, 0x10, 0x02, 0x18, 0x03,
                                          0x20, 0x00, 0x28, 0x01};
    CHECK(joust_rec_outcome_view(wrong, sizeof wrong, &v) == JOUST_ECORRUPT);
    CHECK(outcome_agrees(wrong, sizeof wrong));
}

static void test_images_and_prompts(void)
{
    Joust__ImageRecord img = JOUST__IMAGE_RECORD__INIT;
    img.image_id = 300;
    img.prompt_id = 20;
    img.uri = "file:///data/a \"quoted\".png";
    img.model = "sdxl";
    img.caller_id = "img-300";
    img.has_content_hash = 1;
    img.content_hash = 0xfeedfacecafebeefull;
    img.has_latent = 1;
    img.latent = -1.5;
    img.meta_json = "{\"seed\":1}";
    img.has_line = 1;
    img.line = 12;
    size_t len;
    unsigned char *buf = pack(&img.base, &len);
    joust_image_view v;
    CHECK_RC(joust_rec_image_view(buf, len, &v));
    CHECK(v.image_id == 300 && v.prompt_id == 20);
    CHECK(str_eq(v.uri, img.uri) && str_eq(v.model, "sdxl") && str_eq(v.caller_id, "img-300"));
    mutations_agree(buf, len, image_agrees, 3);
    free(buf);
    img.model = NULL;
    img.caller_id = NULL;
    buf = pack(&img.base, &len);
    CHECK_RC(joust_rec_image_view(buf, len, &v));
    CHECK(!v.model.s && !v.caller_id.s && str_eq(v.uri, img.uri));
    mutations_agree(buf, len, image_agrees, 4);
    free(buf);

    Joust__PromptRecord p = JOUST__PROMPT_RECORD__INIT;
    p.prompt_id = 20;
    p.text = "a cat, \"in\" a hat";
    p.caller_id = "p20";
    p.has_image_count = 1;
    p.image_count = 16;
    buf = pack(&p.base, &len);
    joust_prompt_view pv;
    CHECK_RC(joust_rec_prompt_view(buf, len, &pv));
    CHECK(pv.prompt_id == 20 && str_eq(pv.text, p.text) && str_eq(pv.caller_id, "p20"));
    mutations_agree(buf, len, prompt_agrees, 5);
    free(buf);
}

int main(void)
{
    test_outcomes();
    test_images_and_prompts();
    return test_report();
}
