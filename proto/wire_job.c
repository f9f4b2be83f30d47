/* The fast path of joust_wire_decode for JOB bodies (wire.h): a worker
 * unpacks one JOB per 256 matches or so, and protobuf-c's table-driven
 * unpacker, a malloc per match, image and string, was the largest part of
 * a sim worker's CPU. This decodes the tabled form the coordinator sends
 * (docs/protocol.md: prompts, images and pairs) into one allocation and
 * declines everything else — MatchJob entries, sign entries, unknown or
 * repeated singular fields, non-canonical varints, missing required
 * fields — which then goes through protobuf-c as before: whatever it
 * accepts, protobuf-c accepts with the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "wire_rd.h"
#include "xalloc.h"

/* Each decoder reads one submessage; `seen` bits are field numbers. */
static int prompt_ref(rd r, Joust__PromptRef *x, char **strs)
{
    joust__prompt_ref__init(x);
    uint32_t seen = 0, field;
    int wt, n;
    while (r.p < r.end) {
        if (!tag(&r, &field, &wt) || field > 2 || (seen >> field & 1))
            return 0;
        seen |= 1u << field;
        if (!(field == 1 ? wt == 0 && varint(&r, &x->prompt_id, &n)
                         : wt == 2 && string(&r, strs, &x->text)))
            return 0;
    }
    return seen == 0x6;
}

static int image_ref(rd r, Joust__ImageRef *x, char **strs)
{
    joust__image_ref__init(x);
    uint32_t seen = 0, field;
    int wt, n, ok;
    while (r.p < r.end) {
        if (!tag(&r, &field, &wt) || field > 4 || (seen >> field & 1))
            return 0;
        seen |= 1u << field;
        switch (field) {
        case 1: ok = wt == 0 && varint(&r, &x->image_id, &n); break;
        case 2: ok = wt == 2 && string(&r, strs, &x->uri); break;
        case 3: ok = wt == 1 && f64(&r, &x->latent) && (x->has_latent = 1); break;
        default: ok = wt == 2 && string(&r, strs, &x->caption); break;
        }
        if (!ok)
            return 0;
    }
    return (seen & 0x6) == 0x6;
}

static int pair_job(rd r, Joust__PairJob *x)
{
    joust__pair_job__init(x);
    uint32_t seen = 0, field, *u[6] = {NULL, NULL, &x->attempt, &x->prompt, &x->first, &x->second};
    int wt, n;
    while (r.p < r.end) {
        if (!tag(&r, &field, &wt) || field > 5 || (seen >> field & 1) || wt != 0)
            return 0;
        seen |= 1u << field;
        if (!(field == 1 ? varint(&r, &x->match_id, &n) : u32(&r, u[field])))
            return 0;
    }
    return seen == 0x3e;
}

enum { F_PROMPTS = 16, F_IMAGES = 17, F_PAIRS = 18 };

int joust_wire_job_fast(const void *data, size_t len, Joust__Job **out)
{
    *out = NULL;
    /* First pass: the top level's shape and the tables' sizes. */
    rd r = {data, (const uint8_t *)data + len}, f = {NULL, NULL};
    size_t np = 0, ni = 0, nm = 0;
    uint32_t seen = 0, field, v;
    int wt;
    while (r.p < r.end) {
        if (!tag(&r, &field, &wt) || (field != 1 && field != 2 && field < F_PROMPTS) ||
            field > F_PAIRS || (field <= 2 && (seen >> field & 1)))
            return 0; /* MatchJobs, sign entries, unknown or repeated fields: protobuf-c */
        seen |= 1u << field;
        if (field <= 2 ? wt != 0 || !u32(&r, &v) : wt != 2 || !bytes(&r, &f))
            return 0;
        np += field == F_PROMPTS;
        ni += field == F_IMAGES;
        nm += field == F_PAIRS;
    }
    if ((seen & 0x6) != 0x6)
        return 0; /* run_id and lease_ms are required */
    /* One block: the message, the three pointer arrays, the three tables,
     * then the strings (each at most its field's bytes on the wire, NUL
     * included). */
    size_t head = sizeof(Joust__Job) + (np + ni + nm) * sizeof(void *);
    head = (head + 15) & ~(size_t)15;
    size_t tables = np * sizeof(Joust__PromptRef) + ni * sizeof(Joust__ImageRef) +
                    nm * sizeof(Joust__PairJob);
    unsigned char *block = xmalloc(head + tables + len + 1);
    Joust__Job *job = (Joust__Job *)block;
    joust__job__init(job);
    void **ptrs = (void **)(block + sizeof *job);
    job->prompts = np ? (Joust__PromptRef **)ptrs : NULL;
    job->images = ni ? (Joust__ImageRef **)(ptrs + np) : NULL;
    job->pairs = nm ? (Joust__PairJob **)(ptrs + np + ni) : NULL;
    Joust__PromptRef *prompts = (Joust__PromptRef *)(block + head);
    Joust__ImageRef *images = (Joust__ImageRef *)(prompts + np);
    Joust__PairJob *pairs = (Joust__PairJob *)(images + ni);
    char *strs = (char *)(pairs + nm);
    r.p = data;
    int ok = 1;
    while (ok && r.p < r.end) {
        tag(&r, &field, &wt);
        if (field <= 2) {
            u32(&r, field == 1 ? &job->run_id : &job->lease_ms);
            continue;
        }
        bytes(&r, &f);
        if (field == F_PROMPTS && (ok = prompt_ref(f, &prompts[job->n_prompts], &strs)))
            job->prompts[job->n_prompts] = &prompts[job->n_prompts], job->n_prompts++;
        else if (field == F_IMAGES && (ok = image_ref(f, &images[job->n_images], &strs)))
            job->images[job->n_images] = &images[job->n_images], job->n_images++;
        else if (field == F_PAIRS && (ok = pair_job(f, &pairs[job->n_pairs])))
            job->pairs[job->n_pairs] = &pairs[job->n_pairs], job->n_pairs++;
    }
    if (!ok) {
        free(block);
        return 0;
    }
    *out = job;
    return 1;
}
