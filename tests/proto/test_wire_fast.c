/* The fast decoders (proto/wire_result.c, wire_job.c) against protobuf-c
 * on the same bytes: random RESULTs and JOBs packed by protobuf-c (every
 * optional field present or not, strings with NULs and of many lengths,
 * 0..300 entries, extreme integers, with and without the entries the fast
 * paths leave to protobuf-c: signatures; MatchJobs and sign entries), then
 * the same bytes cut short, with bytes flipped or inserted, and with
 * fields hand-encoded in forms protobuf-c accepts but joust never sends
 * (unknown fields, repeated singular fields, long varints). Whenever a fast
 * path decodes, protobuf-c decodes too, to the same values; when protobuf-c
 * refuses, the fast path refuses; and the fast path takes every message
 * joust's own packing produces in the form it handles. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rng.h"
#include "wire.h"

static int str_same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static int same_result(const Joust__MatchResult *a, const Joust__MatchResult *b)
{
    return a->match_id == b->match_id && a->attempt == b->attempt && a->status == b->status &&
           a->has_p_first == b->has_p_first && !memcmp(&a->p_first, &b->p_first, sizeof a->p_first) &&
           a->has_answer == b->has_answer && a->answer == b->answer && str_same(a->reason, b->reason) &&
           str_same(a->error, b->error) && a->has_failed_image_id == b->has_failed_image_id &&
           a->failed_image_id == b->failed_image_id && a->has_latency_us == b->has_latency_us &&
           a->latency_us == b->latency_us && a->has_tokens == b->has_tokens && a->tokens == b->tokens &&
           a->has_kind == b->has_kind && a->kind == b->kind && a->base.n_unknown_fields == 0 &&
           b->base.n_unknown_fields == 0;
}

static int same_result_msg(const ProtobufCMessage *ma, const ProtobufCMessage *mb)
{
    const Joust__Result *a = (const Joust__Result *)ma, *b = (const Joust__Result *)mb;
    if (a->run_id != b->run_id || a->n_results != b->n_results || !str_same(a->judge, b->judge) ||
        !str_same(a->model, b->model) || a->n_signatures != b->n_signatures ||
        a->base.n_unknown_fields || b->base.n_unknown_fields)
        return 0;
    for (size_t i = 0; i < a->n_results; i++)
        if (!same_result(a->results[i], b->results[i]))
            return 0;
    return 1;
}

static int same_image(const Joust__ImageRef *a, const Joust__ImageRef *b)
{
    return a->image_id == b->image_id && str_same(a->uri, b->uri) && a->has_latent == b->has_latent &&
           !memcmp(&a->latent, &b->latent, sizeof a->latent) && str_same(a->caption, b->caption) &&
           !a->base.n_unknown_fields && !b->base.n_unknown_fields;
}

static int same_job_msg(const ProtobufCMessage *ma, const ProtobufCMessage *mb)
{
    const Joust__Job *a = (const Joust__Job *)ma, *b = (const Joust__Job *)mb;
    if (a->run_id != b->run_id || a->lease_ms != b->lease_ms || a->n_matches != b->n_matches ||
        a->n_sign != b->n_sign || a->n_prompts != b->n_prompts || a->n_images != b->n_images ||
        a->n_pairs != b->n_pairs || a->base.n_unknown_fields || b->base.n_unknown_fields)
        return 0;
    for (size_t i = 0; i < a->n_prompts; i++)
        if (a->prompts[i]->prompt_id != b->prompts[i]->prompt_id ||
            !str_same(a->prompts[i]->text, b->prompts[i]->text) ||
            a->prompts[i]->base.n_unknown_fields || b->prompts[i]->base.n_unknown_fields)
            return 0;
    for (size_t i = 0; i < a->n_images; i++)
        if (!same_image(a->images[i], b->images[i]))
            return 0;
    for (size_t i = 0; i < a->n_pairs; i++) {
        const Joust__PairJob *x = a->pairs[i], *y = b->pairs[i];
        if (x->match_id != y->match_id || x->attempt != y->attempt || x->prompt != y->prompt ||
            x->first != y->first || x->second != y->second || x->base.n_unknown_fields ||
            y->base.n_unknown_fields)
            return 0;
    }
    return 1;
}

/* A fast decoder and what it is checked with. */
typedef struct {
    const ProtobufCMessageDescriptor *desc;
    int (*fast)(const void *data, size_t len, ProtobufCMessage **out);
    int (*same)(const ProtobufCMessage *a, const ProtobufCMessage *b);
    uint64_t taken, declined, both_refused;
} codec;

static int result_fast(const void *data, size_t len, ProtobufCMessage **out)
{
    Joust__Result *r;
    int took = joust_wire_result_fast(data, len, &r);
    *out = r ? &r->base : NULL;
    return took;
}

static int job_fast(const void *data, size_t len, ProtobufCMessage **out)
{
    Joust__Job *j;
    int took = joust_wire_job_fast(data, len, &j);
    *out = j ? &j->base : NULL;
    return took;
}

static codec RESULT = {&joust__result__descriptor, result_fast, same_result_msg, 0, 0, 0};
static codec JOB = {&joust__job__descriptor, job_fast, same_job_msg, 0, 0, 0};

/* One body through both decoders; returns 0 when they disagree. */
static int compare(codec *c, const uint8_t *buf, size_t len)
{
    ProtobufCMessage *fast;
    int took = c->fast(buf, len, &fast);
    ProtobufCMessage *ref = protobuf_c_message_unpack(c->desc, NULL, len, buf);
    int ok = 1;
    if (took) {
        c->taken++;
        ok = ref && c->same(fast, ref);
        free(fast);
    } else {
        ok = fast == NULL;
        c->declined += ref != NULL;
        c->both_refused += ref == NULL;
    }
    if (ref)
        protobuf_c_message_free_unpacked(ref, NULL);
    return ok;
}

static char *random_text(joust_rng_t *g)
{
    size_t n = joust_rng_below(g, 4) == 0 ? joust_rng_below(g, 300) : joust_rng_below(g, 12);
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(joust_rng_below(g, 10) == 0 ? joust_rng_below(g, 256) : 'a' + joust_rng_below(g, 26));
    s[n] = '\0';
    return s;
}

static uint64_t random_u64(joust_rng_t *g)
{
    switch (joust_rng_below(g, 4)) {
    case 0: return joust_rng_below(g, 200);
    case 1: return joust_rng_u64(g);
    case 2: return UINT64_MAX - joust_rng_below(g, 3);
    default: return joust_rng_u64(g) >> joust_rng_below(g, 64);
    }
}

/* A random RESULT packed by protobuf-c into buf (cap bytes); its length.
 * *plain: without signatures (the form the fast path takes). */
static size_t random_result(joust_rng_t *g, uint8_t *buf, size_t cap, int *plain)
{
    Joust__Result r = JOUST__RESULT__INIT;
    r.run_id = (uint32_t)random_u64(g);
    r.n_results = joust_rng_below(g, 8) == 0 ? joust_rng_below(g, 300) : joust_rng_below(g, 5);
    Joust__MatchResult *xs = calloc(r.n_results + 1, sizeof *xs);
    r.results = calloc(r.n_results + 1, sizeof *r.results);
    for (size_t i = 0; i < r.n_results; i++) {
        Joust__MatchResult *x = &xs[i];
        joust__match_result__init(x);
        x->match_id = random_u64(g);
        x->attempt = (uint32_t)random_u64(g);
        x->status = (Joust__OutcomeStatus)joust_rng_below(g, 8);
        if ((x->has_p_first = joust_rng_below(g, 2)))
            x->p_first = joust_rng_below(g, 10) ? joust_rng_uniform(g) : -1e300;
        if ((x->has_answer = joust_rng_below(g, 2)))
            x->answer = (uint32_t)random_u64(g);
        x->reason = joust_rng_below(g, 3) == 0 ? random_text(g) : NULL;
        x->error = joust_rng_below(g, 3) == 0 ? random_text(g) : NULL;
        if ((x->has_failed_image_id = joust_rng_below(g, 2)))
            x->failed_image_id = random_u64(g);
        if ((x->has_latency_us = joust_rng_below(g, 2)))
            x->latency_us = (int64_t)random_u64(g);
        if ((x->has_tokens = joust_rng_below(g, 2)))
            x->tokens = (uint32_t)random_u64(g);
        if ((x->has_kind = joust_rng_below(g, 2)))
            x->kind = (Joust__OutcomeKind)joust_rng_below(g, 4);
        r.results[i] = x;
    }
    r.judge = joust_rng_below(g, 2) ? random_text(g) : NULL;
    r.model = joust_rng_below(g, 2) ? random_text(g) : NULL;
    Joust__Signature sig = JOUST__SIGNATURE__INIT, *sigp = &sig;
    *plain = joust_rng_below(g, 10) != 0;
    if (!*plain) {
        sig.image_id = 1 + joust_rng_below(g, 99);
        sig.status = JOUST__OUTCOME_STATUS__OK;
        r.n_signatures = 1;
        r.signatures = &sigp;
    }
    size_t n = protobuf_c_message_get_packed_size(&r.base);
    CHECK(n <= cap);
    protobuf_c_message_pack(&r.base, buf);
    for (size_t i = 0; i < r.n_results; i++) {
        free(xs[i].reason);
        free(xs[i].error);
    }
    free(r.judge);
    free(r.model);
    free(xs);
    free(r.results);
    return n;
}

static size_t entries(joust_rng_t *g)
{
    return joust_rng_below(g, 8) == 0 ? joust_rng_below(g, 300) : joust_rng_below(g, 5);
}

static void random_image(joust_rng_t *g, Joust__ImageRef *im)
{
    joust__image_ref__init(im);
    im->image_id = random_u64(g);
    im->uri = random_text(g);
    if ((im->has_latent = joust_rng_below(g, 2)))
        im->latent = joust_rng_below(g, 10) ? joust_rng_uniform(g) * 8 - 4 : -0.0;
    im->caption = joust_rng_below(g, 4) == 0 ? random_text(g) : NULL;
}

/* A random JOB packed by protobuf-c into buf (cap bytes); its length.
 * *plain: only the tables (the form the fast path takes), else with a
 * MatchJob or a sign entry too. */
static size_t random_job(joust_rng_t *g, uint8_t *buf, size_t cap, int *plain)
{
    Joust__Job j = JOUST__JOB__INIT;
    j.run_id = (uint32_t)random_u64(g);
    j.lease_ms = (uint32_t)random_u64(g);
    j.n_prompts = entries(g);
    j.n_images = entries(g);
    j.n_pairs = entries(g);
    Joust__PromptRef *ps = calloc(j.n_prompts + 1, sizeof *ps);
    Joust__ImageRef *is = calloc(j.n_images + 3, sizeof *is);
    Joust__PairJob *xs = calloc(j.n_pairs + 1, sizeof *xs);
    j.prompts = calloc(j.n_prompts + 1, sizeof *j.prompts);
    j.images = calloc(j.n_images + 1, sizeof *j.images);
    j.pairs = calloc(j.n_pairs + 1, sizeof *j.pairs);
    for (size_t i = 0; i < j.n_prompts; i++) {
        joust__prompt_ref__init(&ps[i]);
        ps[i].prompt_id = random_u64(g);
        ps[i].text = random_text(g);
        j.prompts[i] = &ps[i];
    }
    for (size_t i = 0; i < j.n_images; i++) {
        random_image(g, &is[i]);
        j.images[i] = &is[i];
    }
    for (size_t i = 0; i < j.n_pairs; i++) {
        joust__pair_job__init(&xs[i]);
        xs[i].match_id = random_u64(g);
        xs[i].attempt = (uint32_t)random_u64(g);
        xs[i].prompt = (uint32_t)random_u64(g);
        xs[i].first = (uint32_t)random_u64(g);
        xs[i].second = (uint32_t)random_u64(g);
        j.pairs[i] = &xs[i];
    }
    Joust__MatchJob mj = JOUST__MATCH_JOB__INIT, *mjp = &mj;
    Joust__ImageRef *signp = &is[j.n_images];
    unsigned extra = (unsigned)joust_rng_below(g, 10);
    *plain = extra > 1;
    random_image(g, &is[j.n_images]);
    random_image(g, &is[j.n_images + 1]);
    if (extra == 0) { /* a MatchJob: the form before tables */
        mj.match_id = random_u64(g);
        mj.prompt = random_text(g);
        mj.first = &is[j.n_images];
        mj.second = &is[j.n_images + 1];
        j.n_matches = 1;
        j.matches = &mjp;
    } else if (extra == 1) {
        j.n_sign = 1;
        j.sign = &signp;
    }
    size_t n = protobuf_c_message_get_packed_size(&j.base);
    CHECK(n <= cap);
    protobuf_c_message_pack(&j.base, buf);
    for (size_t i = 0; i < j.n_prompts; i++)
        free(ps[i].text);
    for (size_t i = 0; i < j.n_images + 2; i++) {
        free(is[i].uri);
        free(is[i].caption);
    }
    free(mj.prompt);
    free(ps), free(is), free(xs), free(j.prompts), free(j.images), free(j.pairs);
    return n;
}

/* Random bodies of one kind, each also cut short, with a bit flipped and
 * with a byte inserted: both decoders agree on all of them, and the fast
 * path takes every plain one. */
static void fuzz(codec *c, size_t (*random_body)(joust_rng_t *, uint8_t *, size_t, int *),
                 uint8_t *buf, uint8_t *mut, size_t cap, joust_rng_t *g)
{
    int bad = 0;
    uint64_t plain = 0, plain_taken = 0;
    for (int it = 0; it < 10000 && !bad; it++) {
        int is_plain;
        size_t n = random_body(g, buf, cap, &is_plain);
        uint64_t before = c->taken;
        bad += !compare(c, buf, n);
        if (is_plain) {
            plain++;
            plain_taken += c->taken - before;
        }
        for (int k = 0; k < 6 && !bad; k++) { /* cut, flipped, inserted */
            size_t m = n;
            memcpy(mut, buf, n);
            switch (k % 3) {
            case 0: m = n ? joust_rng_below(g, n) : 0; break;
            case 1:
                if (n)
                    mut[joust_rng_below(g, n)] ^= (uint8_t)(1u << joust_rng_below(g, 8));
                break;
            default: {
                size_t at = joust_rng_below(g, n + 1);
                memmove(mut + at + 1, mut + at, n - at);
                mut[at] = (uint8_t)joust_rng_u64(g);
                m = n + 1;
            }
            }
            bad += !compare(c, mut, m);
        }
    }
    CHECK(bad == 0);
    CHECK(plain > 1000 && plain_taken == plain);
    CHECK(c->declined > 0 && c->both_refused > 0);
}

static size_t put_varint(uint8_t *p, uint64_t v, int pad)
{
    size_t n = 0;
    while (v >= 0x80 || pad > 0) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
        pad--;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* b (n bytes) with a varint field appended: both decoders agree, and the
 * fast path declines it (a repeated singular field, an unknown one). */
static int declines_appended(codec *c, const uint8_t *b, size_t n, uint32_t field, uint64_t value)
{
    uint8_t v[128];
    memcpy(v, b, n);
    size_t m = n + put_varint(v + n, field << 3 | 0, 0);
    m += put_varint(v + m, value, 0);
    uint64_t taken = c->taken;
    return compare(c, v, m) && c->taken == taken;
}

enum { JOB_PROMPTS = 16, JOB_IMAGES = 17 }; /* Job's table fields */

int main(void)
{
    enum { CAP = 1 << 20 };
    uint8_t *buf = malloc(CAP), *mut = malloc(CAP + 16);
    joust_rng_t g;
    joust_rng_seed(&g, 2026);
    fuzz(&RESULT, random_result, buf, mut, CAP, &g);
    fuzz(&JOB, random_job, buf, mut, CAP, &g);

    /* Hand-made forms protobuf-c accepts and the worker never sends: the
     * fast path either gives protobuf-c's values or declines. */
    uint8_t b[64];
    size_t n = 0;
    n += put_varint(b + n, 1 << 3 | 0, 0), n += put_varint(b + n, 7, 0);       /* run_id 7 */
    size_t inner = n + 2;                                                       /* a MatchResult */
    b[n++] = 2 << 3 | 2, b[n++] = 0;
    size_t start = n;
    n += put_varint(b + n, 1 << 3 | 0, 0), n += put_varint(b + n, 42, 0);      /* match_id */
    n += put_varint(b + n, 2 << 3 | 0, 0), n += put_varint(b + n, 1, 0);       /* attempt */
    n += put_varint(b + n, 3 << 3 | 0, 0), n += put_varint(b + n, 1, 0);       /* status OK */
    b[inner - 1] = (uint8_t)(n - start);
    CHECK(compare(&RESULT, b, n));
    Joust__Result *fast = NULL;
    CHECK(joust_wire_result_fast(b, n, &fast) && fast->n_results == 1 && fast->run_id == 7 &&
          fast->results[0]->match_id == 42);
    free(fast);
    uint8_t v[80];
    CHECK(declines_appended(&RESULT, b, n, 1, 9));            /* run_id twice (last wins) */
    CHECK(declines_appended(&RESULT, b, n, 15, 1));           /* an unknown field */
    size_t m = put_varint(v, 1 << 3 | 0, 0);                         /* run_id as a padded varint */
    m += put_varint(v + m, 7, 6);
    memcpy(v + m, b + 2, n - 2);
    m += n - 2;
    CHECK(compare(&RESULT, v, m) && !joust_wire_result_fast(v, m, &fast));
    CHECK(compare(&RESULT, b + 2, n - 2) && !joust_wire_result_fast(b + 2, n - 2, &fast)); /* no run_id */
    memcpy(v, b, n);                                          /* status 99: undeclared */
    v[n - 1] = 99;
    CHECK(compare(&RESULT, v, n) && !joust_wire_result_fast(v, n, &fast));

    /* JOB: run_id 7, lease_ms 9, one pair {42, 1, 0, 0, 1}; then the same
     * with its second index left out, lease_ms twice, an unknown field
     * (declined or refused by both), and match_id as a padded varint. */
    uint8_t pair[32];
    size_t pn = 0;
    for (uint32_t f = 1; f <= 5; f++)
        pn += put_varint(pair + pn, f << 3 | 0, 0), pn += put_varint(pair + pn, f == 1 ? 42 : f == 2 || f == 5, 0);
    size_t jn = 0;
    jn += put_varint(b + jn, 1 << 3 | 0, 0), jn += put_varint(b + jn, 7, 0);
    jn += put_varint(b + jn, 2 << 3 | 0, 0), jn += put_varint(b + jn, 9, 0);
    size_t job_head = jn;
    jn += put_varint(b + jn, 18 << 3 | 2, 0), jn += put_varint(b + jn, pn, 0);
    memcpy(b + jn, pair, pn);
    jn += pn;
    Joust__Job *job = NULL;
    CHECK(compare(&JOB, b, jn) && joust_wire_job_fast(b, jn, &job) && job->run_id == 7 &&
          job->lease_ms == 9 && job->n_pairs == 1 && job->pairs[0]->match_id == 42 &&
          job->pairs[0]->second == 1);
    free(job);
    memcpy(v, b, jn - 2);                                     /* no second: both refuse */
    v[job_head + 1] = (uint8_t)(pn - 2);
    CHECK(compare(&JOB, v, jn - 2) && JOB.both_refused > 0 && !joust_wire_job_fast(v, jn - 2, &job));
    CHECK(declines_appended(&JOB, b, jn, 2, 11));             /* lease_ms twice (last wins) */
    CHECK(declines_appended(&JOB, b, jn, 5, 1));              /* an unknown field */
    /* A prompt without its text, an image without its uri: both refuse. */
    for (uint32_t table = JOB_PROMPTS; table <= JOB_IMAGES; table++) {
        memcpy(v, b, job_head);
        m = job_head + put_varint(v + job_head, table << 3 | 2, 0);
        m += put_varint(v + m, 2, 0);
        m += put_varint(v + m, 1 << 3 | 0, 0), m += put_varint(v + m, 5, 0);
        uint64_t refused = JOB.both_refused;
        CHECK(compare(&JOB, v, m) && JOB.both_refused == refused + 1);
    }
    memcpy(v, b, job_head);                                   /* match_id padded: the same 42 */
    m = job_head + put_varint(v + job_head, 18 << 3 | 2, 0);
    m += put_varint(v + m, pn + 3, 0);
    m += put_varint(v + m, 1 << 3 | 0, 0);
    m += put_varint(v + m, 42, 3);
    memcpy(v + m, pair + 2, pn - 2);
    m += pn - 2;
    CHECK(compare(&JOB, v, m));
    free(buf);
    free(mut);
    return test_report();
}
