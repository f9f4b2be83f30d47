/* The fast path of joust_wire_decode for RESULT bodies (wire.h): the
 * coordinator unpacks one RESULT per JOB, and protobuf-c's table-driven
 * unpacker with a malloc per result and per string was the largest part of
 * its loop after the in-flight map. This decodes the canonical form the
 * worker sends into one allocation, and declines everything else, which
 * then goes through protobuf-c as before: so whatever it accepts, protobuf-c
 * accepts with the same values, and what protobuf-c refuses it never
 * accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "wire_rd.h"
#include "xalloc.h"

static int match_result(rd r, Joust__MatchResult *x, char **strs)
{
    joust__match_result__init(x);
    uint32_t seen = 0, field;
    int wt;
    while (r.p < r.end) {
        if (!tag(&r, &field, &wt) || field > 11 || (seen >> field & 1))
            return 0; /* unknown, repeated or malformed: protobuf-c's call */
        seen |= 1u << field;
        uint64_t v = 0;
        int n, e = 0, ok;
        switch (field) {
        case 1: ok = wt == 0 && varint(&r, &x->match_id, &n); break;
        case 2: ok = wt == 0 && u32(&r, &x->attempt); break;
        case 3:
            ok = wt == 0 && enum_of(&r, &joust__outcome_status__descriptor, &e);
            x->status = (Joust__OutcomeStatus)e;
            break;
        case 4: ok = wt == 1 && f64(&r, &x->p_first) && (x->has_p_first = 1); break;
        case 5: ok = wt == 0 && u32(&r, &x->answer) && (x->has_answer = 1); break;
        case 6: ok = wt == 2 && string(&r, strs, &x->reason); break;
        case 7: ok = wt == 2 && string(&r, strs, &x->error); break;
        case 8: ok = wt == 0 && varint(&r, &x->failed_image_id, &n) && (x->has_failed_image_id = 1); break;
        case 9:
            ok = wt == 0 && varint(&r, &v, &n) && (x->has_latency_us = 1);
            x->latency_us = (int64_t)v;
            break;
        case 10: ok = wt == 0 && u32(&r, &x->tokens) && (x->has_tokens = 1); break;
        default:
            ok = wt == 0 && enum_of(&r, &joust__outcome_kind__descriptor, &e) && (x->has_kind = 1);
            x->kind = (Joust__OutcomeKind)e;
            break;
        }
        if (!ok)
            return 0;
    }
    return (seen & 0xe) == 0xe; /* match_id, attempt and status are required */
}

int joust_wire_result_fast(const void *data, size_t len, Joust__Result **out)
{
    *out = NULL;
    /* First pass: the top level's shape and how many results. */
    rd r = {data, (const uint8_t *)data + len}, f;
    size_t n = 0;
    uint32_t seen = 0, field;
    int wt;
    while (r.p < r.end) {
        if (!tag(&r, &field, &wt) || field > 4 || (field != 2 && (seen >> field & 1)))
            return 0; /* signatures, unknown fields, repeated ones: protobuf-c */
        seen |= 1u << field;
        uint32_t v;
        if (field == 1 ? wt != 0 || !u32(&r, &v) : wt != 2 || !bytes(&r, &f))
            return 0;
        n += field == 2;
    }
    if (!(seen & 2))
        return 0; /* run_id is required */
    /* One block: the message, the result pointers, the results, then the
     * strings (each at most its field's bytes on the wire, NUL included). */
    size_t head = sizeof(Joust__Result) + n * sizeof(Joust__MatchResult *);
    head = (head + 15) & ~(size_t)15;
    unsigned char *block = xmalloc(head + n * sizeof(Joust__MatchResult) + len + 1);
    Joust__Result *res = (Joust__Result *)block;
    joust__result__init(res);
    res->results = n ? (Joust__MatchResult **)(block + sizeof *res) : NULL;
    Joust__MatchResult *items = (Joust__MatchResult *)(block + head);
    char *strs = (char *)(items + n);
    r.p = data;
    while (r.p < r.end) {
        tag(&r, &field, &wt);
        int ok = 1;
        if (field == 1)
            u32(&r, &res->run_id);
        else if (field == 2 && (ok = bytes(&r, &f) && match_result(f, &items[res->n_results], &strs)))
            res->results[res->n_results] = &items[res->n_results], res->n_results++;
        else if (field != 2)
            ok = string(&r, &strs, field == 3 ? &res->judge : &res->model);
        if (!ok) {
            free(block);
            return 0;
        }
    }
    *out = res;
    return 1;
}
