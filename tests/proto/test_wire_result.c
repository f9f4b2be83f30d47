/* The RESULT fast decoder (joust_wire_result_fast, proto/wire_result.c)
 * against protobuf-c on the same bytes: random RESULTs packed by protobuf-c
 * (every optional field present or not, strings with NULs and of many
 * lengths, 0..300 results, extreme integers, with and without signatures),
 * then the same bytes cut short, with bytes flipped or inserted, and with
 * fields hand-encoded in forms protobuf-c accepts but the worker never
 * sends (unknown fields, repeated singular fields, long varints). Whenever
 * the fast path decodes, protobuf-c decodes too, to the same values; when
 * protobuf-c refuses, the fast path refuses; and the fast path takes every
 * message the worker's own packing produces without signatures. */
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

static int same(const Joust__Result *a, const Joust__Result *b)
{
    if (a->run_id != b->run_id || a->n_results != b->n_results || !str_same(a->judge, b->judge) ||
        !str_same(a->model, b->model) || a->n_signatures != b->n_signatures ||
        a->base.n_unknown_fields || b->base.n_unknown_fields)
        return 0;
    for (size_t i = 0; i < a->n_results; i++)
        if (!same_result(a->results[i], b->results[i]))
            return 0;
    return 1;
}

static uint64_t fast_taken, fast_declined, both_refused;

/* One body through both decoders; returns 0 when they disagree. */
static int compare(const uint8_t *buf, size_t len)
{
    Joust__Result *fast;
    int took = joust_wire_result_fast(buf, len, &fast);
    Joust__Result *ref =
        (Joust__Result *)protobuf_c_message_unpack(&joust__result__descriptor, NULL, len, buf);
    int ok = 1;
    if (took) {
        fast_taken++;
        ok = ref && same(fast, ref);
        free(fast);
    } else {
        ok = fast == NULL;
        fast_declined += ref != NULL;
        both_refused += ref == NULL;
    }
    if (ref)
        protobuf_c_message_free_unpacked(&ref->base, NULL);
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

/* A random RESULT packed by protobuf-c into buf (cap bytes); its length. */
static size_t random_body(joust_rng_t *g, uint8_t *buf, size_t cap, int *with_sig)
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
    *with_sig = joust_rng_below(g, 10) == 0;
    if (*with_sig) {
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

int main(void)
{
    enum { CAP = 1 << 20 };
    uint8_t *buf = malloc(CAP), *mut = malloc(CAP + 16);
    joust_rng_t g;
    joust_rng_seed(&g, 2026);
    int bad = 0;
    uint64_t plain = 0, plain_taken = 0;
    for (int it = 0; it < 20000 && !bad; it++) {
        int with_sig;
        size_t n = random_body(&g, buf, CAP, &with_sig);
        uint64_t before = fast_taken;
        bad += !compare(buf, n);
        if (!with_sig) { /* the worker's own packing: always the fast path */
            plain++;
            plain_taken += fast_taken - before;
        }
        for (int k = 0; k < 6 && !bad; k++) { /* cut, flipped, inserted */
            size_t m = n;
            memcpy(mut, buf, n);
            switch (k % 3) {
            case 0: m = n ? joust_rng_below(&g, n) : 0; break;
            case 1:
                if (n)
                    mut[joust_rng_below(&g, n)] ^= (uint8_t)(1u << joust_rng_below(&g, 8));
                break;
            default: {
                size_t at = joust_rng_below(&g, n + 1);
                memmove(mut + at + 1, mut + at, n - at);
                mut[at] = (uint8_t)joust_rng_u64(&g);
                m = n + 1;
            }
            }
            bad += !compare(mut, m);
        }
    }
    CHECK(bad == 0);
    CHECK(plain > 1000 && plain_taken == plain);
    CHECK(fast_declined > 0 && both_refused > 0);

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
    CHECK(compare(b, n));
    Joust__Result *fast = NULL;
    CHECK(joust_wire_result_fast(b, n, &fast) && fast->n_results == 1 && fast->run_id == 7 &&
          fast->results[0]->match_id == 42);
    free(fast);
    uint8_t v[80];
    memcpy(v, b, n);                                          /* run_id twice (last wins) */
    size_t m = n + put_varint(v + n, 1 << 3 | 0, 0);
    m += put_varint(v + m, 9, 0);
    CHECK(compare(v, m) && !joust_wire_result_fast(v, m, &fast));
    memcpy(v, b, n);                                          /* an unknown field */
    m = n + put_varint(v + n, 15 << 3 | 0, 0);
    m += put_varint(v + m, 1, 0);
    CHECK(compare(v, m) && !joust_wire_result_fast(v, m, &fast));
    m = put_varint(v, 1 << 3 | 0, 0);                         /* run_id as a padded varint */
    m += put_varint(v + m, 7, 6);
    memcpy(v + m, b + 2, n - 2);
    m += n - 2;
    CHECK(compare(v, m) && !joust_wire_result_fast(v, m, &fast));
    CHECK(compare(b + 2, n - 2) && !joust_wire_result_fast(b + 2, n - 2, &fast)); /* no run_id */
    memcpy(v, b, n);                                          /* status 99: undeclared */
    v[n - 1] = 99;
    CHECK(compare(v, n) && !joust_wire_result_fast(v, n, &fast));
    free(buf);
    free(mut);
    return test_report();
}
