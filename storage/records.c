/* Typed records (records.h): key layouts and protobuf values. Keys are
 * big-endian so RocksDB iterates in id order:
 *   runs       name
 *   prompts    be64 prompt_id [‖ be64 image_id for a member]
 *   images     be64 image_id
 *   matches, outcomes, rationales, scores   be32 run_id ‖ be64 id
 *   outcome_log                             be32 run_id ‖ be64 seq
 *   META       counter names, or a tag byte ‖ be64 hash for the indexes */
#include "records.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "bytes.h"
#include "err.h"
#include "log.h"
#include "xalloc.h"

#define RUN_KEY_LEN 12 /* be32 run_id ‖ be64 id */

static void run_key(unsigned char key[RUN_KEY_LEN], uint32_t run_id, uint64_t id)
{
    joust_put_be32(key, run_id);
    joust_put_be64(key + 4, id);
}

/* Packs msg and adds a put to the batch. */
static void record_put(joust_batch_t *b, joust_cf cf, const void *key, size_t klen,
                       const ProtobufCMessage *msg)
{
    /* Most records (matches, outcomes) are small: pack them on the stack,
     * since the batch copies the bytes anyway. */
    unsigned char stackbuf[512];
    size_t len = protobuf_c_message_get_packed_size(msg);
    unsigned char *buf = len <= sizeof stackbuf ? stackbuf : xmalloc(len);
    protobuf_c_message_pack(msg, buf);
    joust_batch_put(b, cf, key, klen, buf, len);
    if (buf != stackbuf)
        free(buf);
}

static ProtobufCMessage *record_unpack(const ProtobufCMessageDescriptor *d, const void *val,
                                       size_t len)
{
    return protobuf_c_message_unpack(d, NULL, len, val);
}

/* Gets and unpacks one record. */
static int record_get(joust_store_t *st, joust_cf cf, const void *key, size_t klen,
                      const ProtobufCMessageDescriptor *d, void *out)
{
    void *val;
    size_t len;
    ProtobufCMessage **msg = out;
    *msg = NULL;
    int rc = joust_store_get(st, cf, key, klen, &val, &len);
    if (rc < 0)
        return rc;
    *msg = record_unpack(d, val, len);
    free(val);
    if (!*msg) {
        log_error("store: a %s record does not unpack", joust_cf_name(cf));
        return JOUST_ECORRUPT;
    }
    return 0;
}

void joust_rec_free(void *msg)
{
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- META: counters and indexes ---- */

static const char *const counter_names[] = {"next_image_id", "next_prompt_id", "next_run_id"};

int joust_rec_counter_get(joust_store_t *st, joust_rec_counter which, uint64_t *out)
{
    assert((unsigned)which < sizeof counter_names / sizeof *counter_names);
    const char *name = counter_names[which];
    void *val;
    size_t len;
    int rc = joust_store_get(st, JOUST_CF_META, name, strlen(name), &val, &len);
    if (rc == JOUST_ENOTFOUND) {
        *out = 1;
        return 0;
    }
    if (rc < 0)
        return rc;
    rc = len == 8 ? 0 : JOUST_ECORRUPT;
    if (rc == 0)
        *out = joust_get_be64(val);
    else
        log_error("store: counter %s is %zu bytes, not 8", name, len);
    free(val);
    return rc;
}

void joust_rec_counter_put(joust_batch_t *b, joust_rec_counter which, uint64_t v)
{
    assert((unsigned)which < sizeof counter_names / sizeof *counter_names);
    const char *name = counter_names[which];
    unsigned char buf[8];
    joust_put_be64(buf, v);
    joust_batch_put(b, JOUST_CF_META, name, strlen(name), buf, 8);
}

static const char index_tags[] = {'k', 'h', 'i', 'm', 'f'};
#define REUSE_TAG 'o'

int joust_rec_reuse_get(joust_store_t *st, uint64_t key, uint32_t *run_id, uint64_t *match_id)
{
    unsigned char k[9];
    k[0] = REUSE_TAG;
    joust_put_be64(k + 1, key);
    void *val;
    size_t len;
    int rc = joust_store_get(st, JOUST_CF_META, k, sizeof k, &val, &len);
    if (rc < 0)
        return rc;
    if (len != 12) {
        free(val);
        return JOUST_ECORRUPT;
    }
    *run_id = joust_get_be32(val);
    *match_id = joust_get_be64((unsigned char *)val + 4);
    free(val);
    return 0;
}

void joust_rec_reuse_put(joust_batch_t *b, uint64_t key, uint32_t run_id, uint64_t match_id)
{
    unsigned char k[9], v[12];
    k[0] = REUSE_TAG;
    joust_put_be64(k + 1, key);
    joust_put_be32(v, run_id);
    joust_put_be64(v + 4, match_id);
    joust_batch_put(b, JOUST_CF_META, k, sizeof k, v, sizeof v);
}

static void index_key(unsigned char key[9], joust_rec_index index, uint64_t hash)
{
    assert((unsigned)index < sizeof index_tags);
    key[0] = (unsigned char)index_tags[index];
    joust_put_be64(key + 1, hash);
}

int joust_rec_index_get(joust_store_t *st, joust_rec_index index, uint64_t hash, uint64_t *out)
{
    unsigned char key[9];
    index_key(key, index, hash);
    void *val;
    size_t len;
    int rc = joust_store_get(st, JOUST_CF_META, key, sizeof key, &val, &len);
    if (rc < 0)
        return rc;
    rc = len == 8 ? 0 : JOUST_ECORRUPT;
    if (rc == 0)
        *out = joust_get_be64(val);
    free(val);
    return rc;
}

void joust_rec_index_put(joust_batch_t *b, joust_rec_index index, uint64_t hash, uint64_t value)
{
    unsigned char key[9], val[8];
    index_key(key, index, hash);
    joust_put_be64(val, value);
    joust_batch_put(b, JOUST_CF_META, key, sizeof key, val, sizeof val);
}

/* ---- signatures and collapsed duplicates ---- */

#define SIG_TAG 'g'
#define SIG_CONTENT_TAG 'G'
#define DUP_TAG 'd'

static void tag_key(unsigned char key[9], char tag, uint64_t id)
{
    key[0] = (unsigned char)tag;
    joust_put_be64(key + 1, id);
}

int joust_rec_signature_get(joust_store_t *st, uint64_t image_id, Joust__SignatureRecord **out)
{
    unsigned char key[9];
    tag_key(key, SIG_TAG, image_id);
    return record_get(st, JOUST_CF_META, key, sizeof key, &joust__signature_record__descriptor, out);
}

int joust_rec_signature_by_content(joust_store_t *st, uint64_t content_hash,
                                   Joust__SignatureRecord **out)
{
    unsigned char key[9];
    tag_key(key, SIG_CONTENT_TAG, content_hash);
    return record_get(st, JOUST_CF_META, key, sizeof key, &joust__signature_record__descriptor, out);
}

void joust_rec_signature_put(joust_batch_t *b, uint64_t image_id, int has_content,
                             uint64_t content_hash, const Joust__SignatureRecord *s)
{
    unsigned char key[9];
    tag_key(key, SIG_TAG, image_id);
    record_put(b, JOUST_CF_META, key, sizeof key, &s->base);
    if (has_content) {
        tag_key(key, SIG_CONTENT_TAG, content_hash);
        record_put(b, JOUST_CF_META, key, sizeof key, &s->base);
    }
}

void joust_rec_duplicate_put(joust_batch_t *b, uint32_t run_id, uint64_t image_id,
                             const Joust__DuplicateRecord *d)
{
    unsigned char key[1 + RUN_KEY_LEN];
    key[0] = DUP_TAG;
    run_key(key + 1, run_id, image_id);
    record_put(b, JOUST_CF_META, key, sizeof key, &d->base);
}

int joust_rec_duplicate_each(joust_store_t *st, uint32_t run_id,
                             int (*fn)(uint64_t image_id, const Joust__DuplicateRecord *d, void *arg),
                             void *arg)
{
    unsigned char prefix[5];
    prefix[0] = DUP_TAG;
    joust_put_be32(prefix + 1, run_id);
    joust_iter_t *it;
    int rc = joust_iter_new(st, JOUST_CF_META, prefix, sizeof prefix, &it);
    if (rc < 0)
        return rc;
    for (; rc == 0 && joust_iter_valid(it); joust_iter_next(it)) {
        size_t klen, vlen;
        const unsigned char *k = joust_iter_key(it, &klen);
        const void *v = joust_iter_value(it, &vlen);
        if (klen != 1 + RUN_KEY_LEN)
            continue;
        Joust__DuplicateRecord *d = (Joust__DuplicateRecord *)record_unpack(
            &joust__duplicate_record__descriptor, v, vlen);
        if (!d) {
            log_error("store: a duplicate record of run %u does not unpack", run_id);
            rc = JOUST_ECORRUPT;
            break;
        }
        rc = fn(joust_get_be64(k + 5), d, arg);
        joust_rec_free(d);
    }
    if (rc == 0)
        rc = joust_iter_error(it);
    joust_iter_destroy(&it);
    return rc;
}

/* ---- runs ---- */

int joust_rec_run_get(joust_store_t *st, const char *name, Joust__RunRecord **out)
{
    return record_get(st, JOUST_CF_RUNS, name, strlen(name), &joust__run_record__descriptor, out);
}

static void outlog_flush(joust_batch_t *b, Joust__RunRecord *run);

void joust_rec_run_put(joust_batch_t *b, Joust__RunRecord *run)
{
    outlog_flush(b, run);
    record_put(b, JOUST_CF_RUNS, run->name, strlen(run->name), &run->base);
}

int joust_rec_run_create(joust_store_t *st, Joust__RunRecord *run)
{
    uint64_t next_run;
    int rc = joust_rec_counter_get(st, JOUST_NEXT_RUN, &next_run);
    if (rc < 0)
        return rc;
    if (next_run > UINT32_MAX)
        return JOUST_ETOOBIG;
    run->run_id = (uint32_t)next_run;
    run->has_outcome_log = run->outcome_log = 1; /* its log is complete from the start */
    joust_batch_t *b = joust_batch_new();
    joust_rec_run_put(b, run);
    joust_rec_counter_put(b, JOUST_NEXT_RUN, next_run + 1);
    rc = joust_store_write(st, b, 1);
    joust_batch_destroy(&b);
    return rc;
}

int joust_rec_run_each(joust_store_t *st, void (*fn)(const Joust__RunRecord *run, void *arg),
                       void *arg)
{
    joust_iter_t *it;
    int rc = joust_iter_new(st, JOUST_CF_RUNS, NULL, 0, &it);
    if (rc < 0)
        return rc;
    for (; joust_iter_valid(it); joust_iter_next(it)) {
        size_t len;
        const void *v = joust_iter_value(it, &len);
        Joust__RunRecord *r =
            (Joust__RunRecord *)record_unpack(&joust__run_record__descriptor, v, len);
        if (r)
            fn(r, arg);
        else
            log_warn("store: a run record does not unpack; skipped");
        joust_rec_free(r);
    }
    rc = joust_iter_error(it);
    joust_iter_destroy(&it);
    return rc;
}

/* ---- outcome counts ---- */

static void counts_of(const Joust__RunRecord *r, joust_run_counts *c)
{
    *c = (joust_run_counts){r->outcomes_ok,        r->outcomes_failed,   r->failed_image_error,
                            r->failed_unparseable, r->failed_infra,      r->failed_config,
                            r->failed_abandoned};
}

void joust_run_counts_set(Joust__RunRecord *r, const joust_run_counts *c)
{
    r->has_outcomes_ok = r->has_outcomes_failed = r->has_failed_image_error = 1;
    r->has_failed_unparseable = r->has_failed_infra = r->has_failed_config = 1;
    r->has_failed_abandoned = 1;
    r->outcomes_ok = c->ok;
    r->outcomes_failed = c->failed;
    r->failed_image_error = c->image_error;
    r->failed_unparseable = c->unparseable;
    r->failed_infra = c->infra_error;
    r->failed_config = c->config_error;
    r->failed_abandoned = c->abandoned;
}

void joust_run_counts_add(joust_run_counts *c, const Joust__OutcomeRecord *o, int sign)
{
    assert(sign == 1 || sign == -1);
    uint64_t *n;
    switch (o->status) {
    case JOUST__OUTCOME_STATUS__OK: n = o->has_p_first ? &c->ok : &c->unparseable; break;
    case JOUST__OUTCOME_STATUS__IMAGE_ERROR: n = &c->image_error; break;
    case JOUST__OUTCOME_STATUS__UNPARSEABLE: n = &c->unparseable; break;
    case JOUST__OUTCOME_STATUS__CONFIG_ERROR: n = &c->config_error; break;
    case JOUST__OUTCOME_STATUS__ABANDONED: n = &c->abandoned; break;
    default: n = &c->infra_error; break; /* INFRA_ERROR, JUDGE_ERROR, unknown */
    }
    *n += (uint64_t)(int64_t)sign; /* -1 wraps to a decrement */
    if (n != &c->ok)
        c->failed += (uint64_t)(int64_t)sign;
}

size_t joust_run_counts_format(const joust_run_counts *c, char *buf, size_t size)
{
    const struct {
        const char *name;
        uint64_t n;
    } classes[] = {{"image_error", c->image_error},   {"unparseable", c->unparseable},
                   {"infra_error", c->infra_error},   {"config_error", c->config_error},
                   {"abandoned", c->abandoned}};
    size_t len = 0;
    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof classes / sizeof *classes; i++) {
        if (!classes[i].n)
            continue;
        int w = snprintf(len < size ? buf + len : NULL, len < size ? size - len : 0, "%s%llu %s",
                         len ? ", " : "", (unsigned long long)classes[i].n, classes[i].name);
        len += w > 0 ? (size_t)w : 0;
    }
    if (len == 0) {
        int w = snprintf(buf, size, "none");
        len = w > 0 ? (size_t)w : 0;
    }
    return len;
}

int joust_rec_run_counts(joust_store_t *st, const Joust__RunRecord *run, joust_run_counts *out)
{
    if (!run->has_outcomes_ok)
        return joust_rec_run_counts_scan(st, run->run_id, out);
    counts_of(run, out);
    return 0;
}

int joust_rec_run_counts_scan(joust_store_t *st, uint32_t run_id, joust_run_counts *out)
{
    memset(out, 0, sizeof *out);
    joust_rec_cursor_t *it;
    int rc = joust_rec_cursor_new(st, JOUST_REC_OUTCOMES, run_id, &it);
    if (rc < 0)
        return rc;
    for (; joust_rec_cursor_valid(it); joust_rec_cursor_next(it)) {
        Joust__OutcomeRecord *o = joust_rec_cursor_outcome(it);
        if (o)
            joust_run_counts_add(out, o, 1);
        else
            log_warn("run %u: outcome %llu does not unpack; not counted", run_id,
                     (unsigned long long)joust_rec_cursor_id(it));
        joust_rec_free(o);
    }
    rc = joust_rec_cursor_error(it);
    joust_rec_cursor_destroy(&it);
    return rc;
}

/* ---- prompts ---- */

int joust_rec_prompt_get(joust_store_t *st, uint64_t prompt_id, Joust__PromptRecord **out)
{
    unsigned char key[8];
    joust_put_be64(key, prompt_id);
    return record_get(st, JOUST_CF_PROMPTS, key, 8, &joust__prompt_record__descriptor, out);
}

void joust_rec_prompt_put(joust_batch_t *b, const Joust__PromptRecord *p)
{
    unsigned char key[8];
    joust_put_be64(key, p->prompt_id);
    record_put(b, JOUST_CF_PROMPTS, key, 8, &p->base);
}

void joust_rec_prompt_add_image(joust_batch_t *b, uint64_t prompt_id, uint64_t image_id)
{
    unsigned char key[16];
    joust_put_be64(key, prompt_id);
    joust_put_be64(key + 8, image_id);
    joust_batch_put(b, JOUST_CF_PROMPTS, key, 16, "", 0);
}

int joust_rec_prompt_members(joust_store_t *st, uint64_t prompt_id, uint64_t **ids, size_t *n)
{
    unsigned char prefix[8];
    joust_put_be64(prefix, prompt_id);
    joust_iter_t *it;
    *ids = NULL;
    *n = 0;
    int rc = joust_iter_new(st, JOUST_CF_PROMPTS, prefix, 8, &it);
    if (rc < 0)
        return rc;
    size_t cap = 0;
    for (; joust_iter_valid(it); joust_iter_next(it)) {
        size_t klen;
        const unsigned char *k = joust_iter_key(it, &klen);
        if (klen != 16)
            continue; /* the prompt's own record */
        xgrow((void **)ids, &cap, *n + 1, sizeof **ids);
        (*ids)[(*n)++] = joust_get_be64(k + 8);
    }
    rc = joust_iter_error(it);
    joust_iter_destroy(&it);
    return rc;
}

int joust_rec_prompt_walk(joust_store_t *st, uint64_t from, uint64_t until, joust_rec_prompt_fn fn,
                          void *arg, uint64_t *next)
{
    joust_iter_t *it;
    int rc = joust_iter_new(st, JOUST_CF_PROMPTS, NULL, 0, &it);
    if (rc < 0)
        return rc;
    unsigned char start[8];
    joust_put_be64(start, from);
    joust_iter_seek(it, start, 8);
    uint64_t pid = 0, *ids = NULL;
    size_t n = 0, cap = 0;
    /* Keys: be64 prompt id (the record), then be64 prompt ‖ be64 image for
     * each member, so a prompt is complete when the next record starts. */
    for (;;) {
        int valid = joust_iter_valid(it);
        size_t klen = 0;
        const unsigned char *k = valid ? joust_iter_key(it, &klen) : NULL;
        if (valid && klen == 16 && pid && joust_get_be64(k) == pid) {
            xgrow((void **)&ids, &cap, n + 1, sizeof *ids);
            ids[n++] = joust_get_be64(k + 8);
            joust_iter_next(it);
            continue;
        }
        if (pid) {
            rc = fn(pid, ids, n, arg);
            if (next)
                *next = pid + 1;
            pid = 0;
            if (rc != 0)
                break;
        }
        if (!valid)
            break;
        if (klen == 8) {
            pid = joust_get_be64(k);
            n = 0;
            if (until && pid >= until)
                break;
        }
        joust_iter_next(it);
    }
    if (rc == 0)
        rc = joust_iter_error(it);
    else if (rc > 0)
        rc = 1;
    joust_iter_destroy(&it);
    free(ids);
    return rc;
}

/* ---- images ---- */

int joust_rec_image_get(joust_store_t *st, uint64_t image_id, Joust__ImageRecord **out)
{
    unsigned char key[8];
    joust_put_be64(key, image_id);
    return record_get(st, JOUST_CF_IMAGES, key, 8, &joust__image_record__descriptor, out);
}

void joust_rec_image_put(joust_batch_t *b, const Joust__ImageRecord *img)
{
    unsigned char key[8];
    joust_put_be64(key, img->image_id);
    record_put(b, JOUST_CF_IMAGES, key, 8, &img->base);
}

void joust_rec_image_put_packed(joust_batch_t *b, uint64_t image_id, const void *rec, size_t len)
{
    unsigned char key[8];
    joust_put_be64(key, image_id);
    joust_batch_put(b, JOUST_CF_IMAGES, key, 8, rec, len);
}

/* ---- a run's records ---- */

void joust_rec_match_put(joust_batch_t *b, uint32_t run_id, uint64_t match_id,
                         const Joust__MatchRecord *m)
{
    const uint64_t pair[1][2] = {{m->first, m->second}};
    joust_rec_matches_put(b, run_id, match_id, m->prompt_id, pair, 1);
}

void joust_rec_matches_put(joust_batch_t *b, uint32_t run_id, uint64_t first_id,
                           uint64_t prompt_id, const uint64_t (*pairs)[2], size_t n)
{
    assert(n >= 1 && n <= UINT32_MAX);
    Joust__MatchRecord r = JOUST__MATCH_RECORD__INIT;
    r.prompt_id = prompt_id;
    r.first = pairs[0][0];
    r.second = pairs[0][1];
    int64_t stackbuf[2 * 255], *d = n <= 256 ? stackbuf : xmalloc(2 * (n - 1) * sizeof *d);
    if (n > 1) { /* a single match is stored as before plan records */
        r.has_count = 1;
        r.count = (uint32_t)n;
        r.n_pairs = 2 * (n - 1);
        r.pairs = d;
        for (size_t i = 1; i < n; i++) {
            d[2 * (i - 1)] = (int64_t)(pairs[i][0] - r.first);
            d[2 * (i - 1) + 1] = (int64_t)(pairs[i][1] - r.first);
        }
    }
    unsigned char key[RUN_KEY_LEN];
    run_key(key, run_id, first_id + n - 1); /* keyed by its last id */
    record_put(b, JOUST_CF_MATCHES, key, sizeof key, &r.base);
    if (d != stackbuf)
        free(d);
}

/* The ids a stored match record covers, last_id - count + 1 .. last_id:
 * *first_id. JOUST_ECORRUPT when its count and pairs disagree. */
static int match_span(const Joust__MatchRecord *r, uint64_t last_id, uint64_t *first_id)
{
    uint64_t n = r->has_count ? r->count : 1;
    if (n == 0 || n - 1 > last_id || r->n_pairs != 2 * (n - 1))
        return JOUST_ECORRUPT;
    *first_id = last_id - (n - 1);
    return 0;
}

/* The i-th match of a step record as a record of its own. */
static Joust__MatchRecord *match_nth(const Joust__MatchRecord *r, uint64_t i)
{
    Joust__MatchRecord *m = xmalloc(sizeof *m);
    joust__match_record__init(m);
    m->prompt_id = r->prompt_id;
    m->first = i ? r->first + (uint64_t)r->pairs[2 * (i - 1)] : r->first;
    m->second = i ? r->first + (uint64_t)r->pairs[2 * (i - 1) + 1] : r->second;
    return m;
}

int joust_rec_outcome_get(joust_store_t *st, uint32_t run_id, uint64_t match_id,
                          Joust__OutcomeRecord **out)
{
    unsigned char key[RUN_KEY_LEN];
    run_key(key, run_id, match_id);
    return record_get(st, JOUST_CF_OUTCOMES, key, sizeof key, &joust__outcome_record__descriptor,
                      out);
}

/* ---- the outcome record's encoder: protobuf-c's bytes, field by field
 * in number order, without its reflection (the record is written once per
 * match; see records.h) ---- */

static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* A varint field; protobuf-c sign-extends a negative int32 (an enum) to
 * ten bytes, as it does a negative int64. */
static unsigned char *put_vfield(unsigned char *p, uint32_t field, uint64_t v)
{
    return put_varint(put_varint(p, (uint64_t)field << 3), v);
}

static unsigned char *put_sfield(unsigned char *p, uint32_t field, const char *s)
{
    size_t n = strlen(s);
    p = put_varint(put_varint(p, (uint64_t)field << 3 | 2), n);
    memcpy(p, s, n);
    return p + n;
}

size_t joust_rec_outcome_packed_max(const Joust__OutcomeRecord *o)
{
    /* 18 fields of at most a 2-byte key and a 10-byte varint (the double:
     * 1 + 8), and each string's bytes. */
    size_t n = 18 * 12;
    const char *const strs[] = {o->judge, o->model, o->worker, o->error};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        n += strs[i] ? strlen(strs[i]) : 0;
    return n;
}

size_t joust_rec_outcome_pack(const Joust__OutcomeRecord *o, unsigned char *out)
{
    assert(o->base.n_unknown_fields == 0);
    unsigned char *p = out;
    p = put_vfield(p, 1, o->prompt_id);
    p = put_vfield(p, 2, o->first);
    p = put_vfield(p, 3, o->second);
    p = put_vfield(p, 4, (uint64_t)(int64_t)(int32_t)o->status);
    if (o->has_p_first) {
        uint64_t bits;
        memcpy(&bits, &o->p_first, sizeof bits);
        *p++ = 5 << 3 | 1;
        for (int i = 0; i < 8; i++)
            *p++ = (unsigned char)(bits >> (8 * i));
    }
    if (o->has_answer)
        p = put_vfield(p, 6, o->answer);
    if (o->judge)
        p = put_sfield(p, 7, o->judge);
    if (o->model)
        p = put_sfield(p, 8, o->model);
    if (o->worker)
        p = put_sfield(p, 9, o->worker);
    if (o->has_attempt)
        p = put_vfield(p, 10, o->attempt);
    if (o->has_latency_us)
        p = put_vfield(p, 11, (uint64_t)o->latency_us);
    if (o->has_tokens)
        p = put_vfield(p, 12, o->tokens);
    if (o->error)
        p = put_sfield(p, 13, o->error);
    if (o->has_failed_image_id)
        p = put_vfield(p, 14, o->failed_image_id);
    if (o->has_committed_ms)
        p = put_vfield(p, 15, (uint64_t)o->committed_ms);
    if (o->has_kind)
        p = put_vfield(p, 16, (uint64_t)(int64_t)(int32_t)o->kind);
    if (o->has_reused_run)
        p = put_vfield(p, 17, o->reused_run);
    if (o->has_reused_match)
        p = put_vfield(p, 18, o->reused_match);
    return (size_t)(p - out);
}

/* ---- the outcome log (records.h) ---- */

int joust_rec_run_has_log(const Joust__RunRecord *run)
{
    return run->has_outcome_log && run->outcome_log;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

/* What the log keeps of o: the fields scoring reads (borrows o's error). */
static void outlog_strip(const Joust__OutcomeRecord *o, Joust__OutcomeRecord *e)
{
    *e = (Joust__OutcomeRecord)JOUST__OUTCOME_RECORD__INIT;
    e->prompt_id = o->prompt_id;
    e->first = o->first;
    e->second = o->second;
    e->status = o->status;
    e->has_p_first = o->has_p_first;
    e->p_first = o->p_first;
    e->has_kind = o->has_kind;
    e->kind = o->kind;
    if (o->status == JOUST__OUTCOME_STATUS__IMAGE_ERROR) {
        e->has_failed_image_id = o->has_failed_image_id;
        e->failed_image_id = o->failed_image_id;
        e->error = o->error;
    }
}

/* Appends match_id's entry to the run's side buffer in the batch: o's
 * scoring fields, or a delete (o NULL). rewrite: it deletes or replaces
 * an outcome (counted in the run, so a reader knows whether a match id can
 * appear twice). */
static void outlog_append(joust_batch_t *b, Joust__RunRecord *run, uint64_t match_id,
                          const Joust__OutcomeRecord *o, int rewrite)
{
    if (!joust_rec_run_has_log(run))
        return;
    Joust__OutcomeRecord e;
    size_t max = 0;
    if (o) {
        outlog_strip(o, &e);
        max = joust_rec_outcome_packed_max(&e);
    }
    joust_batch_side *side = joust_batch_side_of(b, run->run_id);
    xgrow((void **)&side->p, &side->cap, side->n + 20 + max, 1);
    unsigned char *p = side->p + side->n, *at;
    p = put_varint(p, zigzag((int64_t)(match_id - side->last)));
    at = p + 10; /* the record after room for its length's varint */
    size_t len = o ? joust_rec_outcome_pack(&e, at) : 0;
    p = put_varint(p, (uint64_t)len << 1 | (o != NULL));
    memmove(p, at, len);
    side->n = (size_t)(p + len - side->p);
    side->last = match_id;
    if (rewrite) {
        run->has_outcome_log_rewrites = 1;
        run->outcome_log_rewrites++;
    }
}

/* Adds the run's gathered entries, if any, as its next log record. */
static void outlog_flush(joust_batch_t *b, Joust__RunRecord *run)
{
    joust_batch_side *side = joust_batch_side_find(b, run->run_id);
    if (!side || !side->n)
        return;
    unsigned char key[RUN_KEY_LEN];
    run_key(key, run->run_id, run->outcome_log_next);
    joust_batch_put(b, JOUST_CF_OUTCOME_LOG, key, sizeof key, side->p, side->n);
    run->has_outcome_log_next = 1;
    run->outcome_log_next++;
    side->n = 0;
    side->last = 0;
}

/* XXH3 of the entry bytes o would have in the log (0 for none). */
static uint64_t outlog_hash_of(const Joust__OutcomeRecord *o)
{
    Joust__OutcomeRecord e;
    outlog_strip(o, &e);
    unsigned char *buf = xmalloc(joust_rec_outcome_packed_max(&e));
    uint64_t h = XXH3_64bits(buf, joust_rec_outcome_pack(&e, buf)) | 1;
    free(buf);
    return h;
}

int joust_rec_outlog_each(joust_store_t *st, uint32_t run_id, joust_outlog_fn fn, void *arg,
                          uint64_t *malformed)
{
    *malformed = 0;
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new_scan(st, JOUST_REC_OUTCOME_LOG, run_id, &c);
    for (uint64_t seq = 0; rc == 0 && joust_rec_cursor_valid(c); joust_rec_cursor_next(c), seq++) {
        if (joust_rec_cursor_id(c) != seq) /* a record missing or out of place */
            ++*malformed, seq = joust_rec_cursor_id(c);
        size_t vlen, pos = 0;
        const void *v = joust_rec_cursor_bytes(c, &vlen);
        uint64_t prev = 0;
        joust_outlog_entry e;
        int got = 0;
        while (rc == 0 && (got = joust_rec_outlog_next(v, vlen, &pos, &prev, &e)) > 0)
            rc = fn(seq, &e, arg);
        *malformed += rc == 0 && got < 0;
    }
    if (rc == 0)
        rc = joust_rec_cursor_error(c);
    joust_rec_cursor_destroy(&c);
    return rc;
}

typedef struct {
    uint64_t *want; /* per match id: the hash of its last entry, 0 when none */
    size_t n, cap;
    uint64_t bad;
} verify_ctx;

static int verify_entry(uint64_t seq, const joust_outlog_entry *e, void *arg)
{
    (void)seq;
    verify_ctx *v = arg;
    if (e->match_id >= (uint64_t)1 << 40) { /* not an id joust gives */
        v->bad++;
        return 0;
    }
    if (e->match_id >= v->n) {
        size_t old = v->cap;
        xgrow((void **)&v->want, &v->cap, e->match_id + 1, sizeof *v->want);
        memset(v->want + old, 0, (v->cap - old) * sizeof *v->want);
        v->n = e->match_id + 1;
    }
    v->want[e->match_id] = e->put ? XXH3_64bits(e->bytes, e->len) | 1 : 0;
    return 0;
}

int joust_rec_outlog_verify(joust_store_t *st, const Joust__RunRecord *run, uint64_t *differ)
{
    *differ = 0;
    if (!joust_rec_run_has_log(run))
        return JOUST_EINVAL;
    verify_ctx v = {0};
    int rc = joust_rec_outlog_each(st, run->run_id, verify_entry, &v, differ);
    uint64_t *want = v.want;
    size_t n = v.n;
    *differ += v.bad;
    joust_rec_cursor_t *c = NULL;
    if (rc == 0)
        rc = joust_rec_cursor_new_scan(st, JOUST_REC_OUTCOMES, run->run_id, &c);
    for (; rc == 0 && joust_rec_cursor_valid(c); joust_rec_cursor_next(c)) {
        uint64_t id = joust_rec_cursor_id(c);
        Joust__OutcomeRecord *o = joust_rec_cursor_outcome(c);
        if (!o || id >= n || want[id] != outlog_hash_of(o))
            ++*differ;
        if (id < n)
            want[id] = 0;
        joust_rec_free(o);
    }
    if (rc == 0 && (rc = joust_rec_cursor_error(c)) == 0)
        for (size_t i = 0; i < n; i++)
            *differ += want[i] != 0; /* in the log, not in the family */
    joust_rec_cursor_destroy(&c);
    free(want);
    return rc;
}

void joust_rec_outcome_put(joust_batch_t *b, Joust__RunRecord *run, uint64_t match_id,
                           const Joust__OutcomeRecord *o, const char *reason,
                           const Joust__OutcomeRecord *replaced)
{
    unsigned char key[RUN_KEY_LEN];
    run_key(key, run->run_id, match_id);
    if (o->base.n_unknown_fields) { /* kept from a newer joust: protobuf-c packs them */
        record_put(b, JOUST_CF_OUTCOMES, key, sizeof key, &o->base);
    } else {
        unsigned char stackbuf[512];
        size_t max = joust_rec_outcome_packed_max(o);
        unsigned char *buf = max <= sizeof stackbuf ? stackbuf : xmalloc(max);
        joust_batch_put(b, JOUST_CF_OUTCOMES, key, sizeof key, buf, joust_rec_outcome_pack(o, buf));
        if (buf != stackbuf)
            free(buf);
    }
    outlog_append(b, run, match_id, o, replaced != NULL);
    if (reason && reason[0])
        joust_batch_put(b, JOUST_CF_RATIONALES, key, sizeof key, reason, strlen(reason));
    else if (replaced)
        joust_batch_delete(b, JOUST_CF_RATIONALES, key, sizeof key);
    joust_run_counts c;
    counts_of(run, &c);
    if (replaced)
        joust_run_counts_add(&c, replaced, -1);
    joust_run_counts_add(&c, o, 1);
    joust_run_counts_set(run, &c);
}

void joust_rec_outcome_delete(joust_batch_t *b, Joust__RunRecord *run, uint64_t match_id,
                              const Joust__OutcomeRecord *old)
{
    joust_run_counts c;
    counts_of(run, &c);
    joust_run_counts_add(&c, old, -1);
    joust_run_counts_set(run, &c);
    unsigned char key[RUN_KEY_LEN];
    run_key(key, run->run_id, match_id);
    joust_batch_delete(b, JOUST_CF_OUTCOMES, key, sizeof key);
    joust_batch_delete(b, JOUST_CF_RATIONALES, key, sizeof key);
    outlog_append(b, run, match_id, NULL, 1);
}

int joust_rec_rationale_get(joust_store_t *st, uint32_t run_id, uint64_t match_id, char **text,
                            size_t *len)
{
    unsigned char key[RUN_KEY_LEN];
    run_key(key, run_id, match_id);
    void *val;
    int rc = joust_store_get(st, JOUST_CF_RATIONALES, key, sizeof key, &val, len);
    *text = rc == 0 ? val : NULL;
    return rc;
}

int joust_rec_score_get(joust_store_t *st, uint32_t run_id, uint64_t image_id,
                        Joust__ScoreRecord **out)
{
    unsigned char key[RUN_KEY_LEN];
    run_key(key, run_id, image_id);
    return record_get(st, JOUST_CF_SCORES, key, sizeof key, &joust__score_record__descriptor, out);
}

void joust_rec_score_put(joust_batch_t *b, uint32_t run_id, uint64_t image_id,
                         const Joust__ScoreRecord *s)
{
    unsigned char key[RUN_KEY_LEN];
    run_key(key, run_id, image_id);
    record_put(b, JOUST_CF_SCORES, key, sizeof key, &s->base);
}

int joust_rec_scores_delete(joust_store_t *st, uint32_t run_id)
{
    unsigned char prefix[4];
    joust_put_be32(prefix, run_id);
    return joust_store_delete_prefix(st, JOUST_CF_SCORES, prefix, sizeof prefix);
}

int joust_rec_run_delete(joust_store_t *st, const Joust__RunRecord *run)
{
    /* The run's records first, its name last: a crash in between leaves
     * the run listed, and deleting it again finishes the job. */
    static const joust_cf cfs[] = {JOUST_CF_SCORES, JOUST_CF_OUTCOMES, JOUST_CF_OUTCOME_LOG,
                                   JOUST_CF_RATIONALES, JOUST_CF_MATCHES};
    unsigned char prefix[4];
    joust_put_be32(prefix, run->run_id);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof cfs / sizeof *cfs; i++)
        rc = joust_store_delete_prefix(st, cfs[i], prefix, sizeof prefix);
    unsigned char dups[5] = {DUP_TAG}; /* its collapsed duplicates */
    memcpy(dups + 1, prefix, sizeof prefix);
    if (rc == 0)
        rc = joust_store_delete_prefix(st, JOUST_CF_META, dups, sizeof dups);
    if (rc < 0)
        return rc;
    joust_batch_t *b = joust_batch_new();
    joust_batch_delete(b, JOUST_CF_RUNS, run->name, strlen(run->name));
    rc = joust_store_write(st, b, 1);
    joust_batch_destroy(&b);
    return rc;
}

/* ---- cursors ---- */

struct joust_rec_cursor {
    joust_iter_t *it;
    joust_rec_family family;
    /* JOUST_REC_MATCHES: the step record at the iterator, read once per
     * position (NULL when it does not unpack or its count and pairs
     * disagree: then it counts as one match, its key's), the ids it covers
     * and the current one. */
    Joust__MatchRecord *step;
    uint64_t first_id, last_id, at;
    int loaded;
};

static void step_drop(joust_rec_cursor_t *c)
{
    joust_rec_free(c->step);
    c->step = NULL;
    c->loaded = 0;
}

/* Reads the step record at the iterator (valid, a run key). */
static void step_load(joust_rec_cursor_t *c)
{
    size_t klen, len;
    const unsigned char *k = joust_iter_key(c->it, &klen);
    const void *v = joust_iter_value(c->it, &len);
    c->last_id = joust_get_be64(k + klen - 8);
    c->step = (Joust__MatchRecord *)record_unpack(&joust__match_record__descriptor, v, len);
    if (c->step && match_span(c->step, c->last_id, &c->first_id) < 0)
        step_drop(c);
    if (!c->step)
        c->first_id = c->last_id;
    c->at = c->first_id;
    c->loaded = 1;
}

static const joust_cf family_cf[] = {JOUST_CF_MATCHES, JOUST_CF_OUTCOMES, JOUST_CF_SCORES,
                                     JOUST_CF_IMAGES, JOUST_CF_PROMPTS, JOUST_CF_OUTCOME_LOG};

/* Whether a family is store-wide (keyed by its own id, not by run ‖ id). */
static int family_global(joust_rec_family f)
{
    return f == JOUST_REC_IMAGES || f == JOUST_REC_PROMPTS;
}

/* Key length of a family: images are be64 image_id, prompt records be64
 * prompt_id (a prompt's members, be64 prompt ‖ be64 image, are longer and
 * so skipped), the others run ‖ id. */
static size_t family_klen(joust_rec_family f) { return family_global(f) ? 8 : RUN_KEY_LEN; }

static int cursor_open(joust_store_t *st, joust_rec_family family, uint32_t run_id, int scan,
                       joust_rec_cursor_t **out)
{
    assert((unsigned)family < sizeof family_cf / sizeof *family_cf);
    *out = NULL;
    unsigned char prefix[4];
    joust_put_be32(prefix, run_id);
    joust_iter_t *it;
    int rc = (scan ? joust_iter_new_scan : joust_iter_new)(
        st, family_cf[family], prefix, family_global(family) ? 0 : sizeof prefix, &it);
    if (rc < 0) {
        joust_iter_destroy(&it);
        return rc;
    }
    joust_rec_cursor_t *c = xcalloc(1, sizeof *c);
    c->it = it;
    c->family = family;
    *out = c;
    return 0;
}

int joust_rec_cursor_new(joust_store_t *st, joust_rec_family family, uint32_t run_id,
                         joust_rec_cursor_t **out)
{
    return cursor_open(st, family, run_id, 0, out);
}

int joust_rec_cursor_new_scan(joust_store_t *st, joust_rec_family family, uint32_t run_id,
                              joust_rec_cursor_t **out)
{
    return cursor_open(st, family, run_id, 1, out);
}

void joust_rec_cursor_destroy(joust_rec_cursor_t **self_p)
{
    assert(self_p);
    if (!*self_p)
        return;
    step_drop(*self_p);
    joust_iter_destroy(&(*self_p)->it);
    free(*self_p);
    *self_p = NULL;
}

int joust_rec_cursor_valid(joust_rec_cursor_t *c)
{
    /* A key that is not run ‖ id (never written by joust) ends nothing:
     * it is skipped. */
    while (joust_iter_valid(c->it)) {
        size_t klen;
        joust_iter_key(c->it, &klen);
        if (klen == family_klen(c->family)) {
            if (c->family == JOUST_REC_MATCHES && !c->loaded)
                step_load(c);
            return 1;
        }
        joust_iter_next(c->it);
    }
    return 0;
}

void joust_rec_cursor_next(joust_rec_cursor_t *c)
{
    if (c->loaded && c->at < c->last_id) { /* the step's next match */
        c->at++;
        return;
    }
    step_drop(c);
    joust_iter_next(c->it);
}

void joust_rec_cursor_seek(joust_rec_cursor_t *c, uint64_t id)
{
    unsigned char from[8];
    joust_put_be64(from, id);
    step_drop(c);
    joust_iter_seek(c->it, from, sizeof from);
    /* A step record that starts before id covers it (its key is >= id). */
    if (c->family == JOUST_REC_MATCHES && joust_rec_cursor_valid(c) && c->at < id)
        c->at = id;
}

uint64_t joust_rec_cursor_id(joust_rec_cursor_t *c)
{
    if (!joust_rec_cursor_valid(c))
        return 0;
    if (c->family == JOUST_REC_MATCHES)
        return c->at;
    size_t klen;
    const unsigned char *k = joust_iter_key(c->it, &klen);
    return joust_get_be64(k + klen - 8);
}

static void *cursor_unpack(joust_rec_cursor_t *c, joust_rec_family family,
                           const ProtobufCMessageDescriptor *d)
{
    assert(c->family == family);
    if (!joust_rec_cursor_valid(c))
        return NULL;
    size_t len;
    const void *v = joust_iter_value(c->it, &len);
    return record_unpack(d, v, len);
}

Joust__MatchRecord *joust_rec_cursor_match(joust_rec_cursor_t *c)
{
    assert(c->family == JOUST_REC_MATCHES);
    if (!joust_rec_cursor_valid(c) || !c->step)
        return NULL;
    return match_nth(c->step, c->at - c->first_id);
}

/* The first stored key >= match_id is the step record that covers it, if
 * any does (records are keyed by their last id). */
int joust_rec_match_get(joust_store_t *st, uint32_t run_id, uint64_t match_id,
                        Joust__MatchRecord **out)
{
    *out = NULL;
    joust_rec_cursor_t *c;
    int rc = joust_rec_cursor_new(st, JOUST_REC_MATCHES, run_id, &c);
    if (rc < 0)
        return rc;
    joust_rec_cursor_seek(c, match_id);
    if (!joust_rec_cursor_valid(c))
        rc = joust_rec_cursor_error(c) < 0 ? joust_rec_cursor_error(c) : JOUST_ENOTFOUND;
    else if (!c->step)
        rc = JOUST_ECORRUPT;
    else if (c->at != match_id)
        rc = JOUST_ENOTFOUND;
    else
        *out = joust_rec_cursor_match(c);
    joust_rec_cursor_destroy(&c);
    return rc;
}

Joust__OutcomeRecord *joust_rec_cursor_outcome(joust_rec_cursor_t *c)
{
    return cursor_unpack(c, JOUST_REC_OUTCOMES, &joust__outcome_record__descriptor);
}

Joust__ScoreRecord *joust_rec_cursor_score(joust_rec_cursor_t *c)
{
    return cursor_unpack(c, JOUST_REC_SCORES, &joust__score_record__descriptor);
}

Joust__ImageRecord *joust_rec_cursor_image(joust_rec_cursor_t *c)
{
    return cursor_unpack(c, JOUST_REC_IMAGES, &joust__image_record__descriptor);
}

Joust__PromptRecord *joust_rec_cursor_prompt(joust_rec_cursor_t *c)
{
    return cursor_unpack(c, JOUST_REC_PROMPTS, &joust__prompt_record__descriptor);
}

const void *joust_rec_cursor_bytes(joust_rec_cursor_t *c, size_t *len)
{
    *len = 0;
    return joust_rec_cursor_valid(c) ? joust_iter_value(c->it, len) : NULL;
}

int joust_rec_cursor_error(joust_rec_cursor_t *c) { return joust_iter_error(c->it); }

/* ---- ingest indexes, walked (appended for ingest's filter of known keys) ---- */

int joust_rec_index_each(joust_store_t *st, joust_rec_index index,
                         void (*fn)(uint64_t hash, uint64_t value, void *arg), void *arg)
{
    unsigned char prefix[1];
    assert((unsigned)index < sizeof index_tags);
    prefix[0] = (unsigned char)index_tags[index];
    joust_iter_t *it;
    int rc = joust_iter_new(st, JOUST_CF_META, prefix, 1, &it);
    if (rc < 0)
        return rc;
    for (; joust_iter_valid(it); joust_iter_next(it)) {
        size_t klen, vlen;
        const unsigned char *k = joust_iter_key(it, &klen);
        const unsigned char *v = joust_iter_value(it, &vlen);
        if (klen == 9 && vlen == 8)
            fn(joust_get_be64(k + 1), joust_get_be64(v), arg);
    }
    rc = joust_iter_error(it);
    joust_iter_destroy(&it);
    return rc;
}

/* ---- an unfinished ingest ---- */

#define INGEST_MARK "unfinished_ingest" /* no index tag starts it */

int joust_rec_ingest_mark_get(joust_store_t *st, uint64_t *first_image, uint64_t *first_prompt)
{
    void *val;
    size_t len;
    int rc = joust_store_get(st, JOUST_CF_META, INGEST_MARK, strlen(INGEST_MARK), &val, &len);
    if (rc < 0)
        return rc;
    rc = len == 16 ? 0 : JOUST_ECORRUPT;
    if (rc == 0) {
        *first_image = joust_get_be64(val);
        *first_prompt = joust_get_be64((unsigned char *)val + 8);
    } else {
        log_error("store: the unfinished-ingest mark is %zu bytes, not 16", len);
    }
    free(val);
    return rc;
}

void joust_rec_ingest_mark_put(joust_batch_t *b, uint64_t first_image, uint64_t first_prompt)
{
    unsigned char v[16];
    joust_put_be64(v, first_image);
    joust_put_be64(v + 8, first_prompt);
    joust_batch_put(b, JOUST_CF_META, INGEST_MARK, strlen(INGEST_MARK), v, sizeof v);
}

void joust_rec_ingest_mark_delete(joust_batch_t *b)
{
    joust_batch_delete(b, JOUST_CF_META, INGEST_MARK, strlen(INGEST_MARK));
}

typedef struct {
    joust_batch_t *b;
    joust_rec_index index;
    uint64_t from; /* entries with values >= from are the unfinished ingest's */
} rollback_index;

static void rollback_index_one(uint64_t hash, uint64_t value, void *arg)
{
    rollback_index *r = arg;
    unsigned char key[9];
    if (value >= r->from) {
        index_key(key, r->index, hash);
        joust_batch_delete(r->b, JOUST_CF_META, key, sizeof key);
    }
}

int joust_rec_ingest_rollback(joust_store_t *st, uint64_t first_image, uint64_t first_prompt)
{
    static const unsigned char all_ff[9] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    unsigned char from[8];
    joust_batch_t *b = joust_batch_new();
    /* images and new prompts (with their members): every key from the
     * first id on (keys are 8 or 16 bytes, all below nine 0xff bytes) */
    joust_put_be64(from, first_image);
    joust_batch_delete_range(b, JOUST_CF_IMAGES, from, 8, all_ff, sizeof all_ff);
    joust_put_be64(from, first_prompt);
    joust_batch_delete_range(b, JOUST_CF_PROMPTS, from, 8, all_ff, sizeof all_ff);
    /* older prompts' new members */
    joust_iter_t *it;
    int rc = joust_iter_new(st, JOUST_CF_PROMPTS, NULL, 0, &it);
    for (; rc == 0 && joust_iter_valid(it); joust_iter_next(it)) {
        size_t klen;
        const unsigned char *k = joust_iter_key(it, &klen);
        if (klen >= 8 && joust_get_be64(k) >= first_prompt)
            break;
        if (klen == 16 && joust_get_be64(k + 8) >= first_image)
            joust_batch_delete(b, JOUST_CF_PROMPTS, k, klen);
    }
    if (rc == 0)
        rc = joust_iter_error(it);
    joust_iter_destroy(&it);
    static const struct {
        joust_rec_index index;
        int of_prompt;
    } idx[] = {{JOUST_INDEX_GROUP, 1}, {JOUST_INDEX_CONTENT, 0}, {JOUST_INDEX_CALLER_ID, 0}};
    for (size_t i = 0; rc == 0 && i < sizeof idx / sizeof *idx; i++) {
        rollback_index r = {b, idx[i].index, idx[i].of_prompt ? first_prompt : first_image};
        rc = joust_rec_index_each(st, idx[i].index, rollback_index_one, &r);
    }
    joust_rec_ingest_mark_delete(b);
    if (rc == 0)
        rc = joust_store_write(st, b, 1);
    joust_batch_destroy(&b);
    return rc;
}

/* ---- a run's collapsed near-duplicate, one (appended for joust filter) ---- */

int joust_rec_duplicate_get(joust_store_t *st, uint32_t run_id, uint64_t image_id,
                            Joust__DuplicateRecord **out)
{
    unsigned char key[1 + RUN_KEY_LEN];
    key[0] = DUP_TAG;
    run_key(key + 1, run_id, image_id);
    return record_get(st, JOUST_CF_META, key, sizeof key, &joust__duplicate_record__descriptor,
                      out);
}

/* ---- views (records.h): a protobuf wire reader for the few fields bulk
 * readers need ---- */

/* A reader over one record's bytes and the field it read last: its
 * number, wire type and value (varint, fixed 64 or 32 bits in v; a
 * length-delimited one in s, slen). */
typedef struct {
    const unsigned char *p, *end;
    uint32_t field;
    int wt;
    uint64_t v;
    const unsigned char *s;
    size_t slen;
} wire_rd;

static wire_rd wire_rd_of(const void *bytes, size_t len)
{
    return (wire_rd){.p = bytes, .end = (const unsigned char *)bytes + len};
}

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* One varint; 0 or -1 when truncated or longer than 10 bytes. */
static int wire_varint(wire_rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70 && r->p < r->end; shift += 7) {
        unsigned char b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* The outcome log's entries (records.h) are read with the views' varint
 * reader. */
int joust_rec_outlog_next(const void *val, size_t vlen, size_t *pos, uint64_t *prev_id,
                          joust_outlog_entry *e)
{
    if (*pos >= vlen)
        return 0;
    wire_rd r = wire_rd_of((const unsigned char *)val + *pos, vlen - *pos);
    uint64_t delta_zz, head;
    if (wire_varint(&r, &delta_zz) < 0 || wire_varint(&r, &head) < 0)
        return JOUST_ECORRUPT;
    uint64_t len = head >> 1;
    if (len > (uint64_t)(r.end - r.p) || (!(head & 1) && len))
        return JOUST_ECORRUPT;
    int64_t delta = (int64_t)(delta_zz >> 1) ^ -(int64_t)(delta_zz & 1);
    e->match_id = *prev_id + (uint64_t)delta;
    e->put = (int)(head & 1);
    e->bytes = r.p;
    e->len = (size_t)len;
    *prev_id = e->match_id;
    *pos = (size_t)(r.p + len - (const unsigned char *)val);
    return 1;
}

/* Reads the next field into r->field, wt, v / s, slen. 1 when one was
 * read, 0 at the end, -1 when the bytes are malformed. */
static int wire_field(wire_rd *r)
{
    if (r->p == r->end)
        return 0;
    /* A tag as protobuf-c reads it: at most 5 bytes, and a first byte
     * that names no field is refused (a longer tag for field 0 is an
     * unknown field there). */
    uint64_t tag;
    const unsigned char *start = r->p;
    if ((*r->p & 0xf8) == 0 || wire_varint(r, &tag) < 0 || r->p - start > 5)
        return -1;
    r->field = (uint32_t)(tag >> 3);
    r->wt = (int)(tag & 7);
    switch (r->wt) {
    case WT_VARINT:
        return wire_varint(r, &r->v) < 0 ? -1 : 1;
    case WT_I64:
        if (r->end - r->p < 8)
            return -1;
        r->v = get_le(r->p, 8);
        r->p += 8;
        return 1;
    case WT_I32:
        if (r->end - r->p < 4)
            return -1;
        r->v = get_le(r->p, 4);
        r->p += 4;
        return 1;
    case WT_LEN:
        if (wire_varint(r, &r->v) < 0 || r->v > (uint64_t)(r->end - r->p))
            return -1;
        r->s = r->p;
        r->slen = (size_t)r->v;
        r->p += r->slen;
        return 1;
    default: /* groups (3, 4) and the undefined 6, 7: not in joust's records */
        return -1;
    }
}

static joust_str_view str_view(const unsigned char *s, size_t len)
{
    const void *nul = memchr(s, 0, len);
    return (joust_str_view){(const char *)s, nul ? (size_t)((const unsigned char *)nul - s) : len};
}

static double f64_of(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* A known field with a wire type that does not fit it: protobuf-c refuses
 * the record, and so does a view. */
#define WANT(t)                                                                                    \
    do {                                                                                           \
        if (r.wt != (t))                                                                           \
            return JOUST_ECORRUPT;                                                                 \
    } while (0)

int joust_rec_outcome_view(const void *bytes, size_t len, joust_outcome_view *out)
{
    memset(out, 0, sizeof *out);
    wire_rd r = wire_rd_of(bytes, len);
    uint32_t seen = 0;
    int got;
    while ((got = wire_field(&r)) > 0) {
        switch (r.field) {
        case 1: WANT(WT_VARINT); out->prompt_id = r.v; break;
        case 2: WANT(WT_VARINT); out->first = r.v; break;
        case 3: WANT(WT_VARINT); out->second = r.v; break;
        case 4: WANT(WT_VARINT); out->status = (int32_t)(uint32_t)r.v; break;
        case 5: WANT(WT_I64); out->p_first = f64_of(r.v); out->has_p_first = 1; break;
        case 13: WANT(WT_LEN); out->error = str_view(r.s, r.slen); break;
        case 14: WANT(WT_VARINT); out->failed_image_id = r.v; break;
        case 16: WANT(WT_VARINT); out->kind = (int32_t)(uint32_t)r.v; out->has_kind = 1; break;
        case 11: WANT(WT_VARINT); out->latency_us = (int64_t)r.v; out->has_latency_us = 1; break;
        case 12: WANT(WT_VARINT); out->tokens = (uint32_t)r.v; out->has_tokens = 1; break;
        case 7: case 8: case 9: WANT(WT_LEN); break;
        case 6: case 10: case 15: case 17: case 18: WANT(WT_VARINT); break;
        default: break; /* a field this joust does not know */
        }
        if (r.field <= 4)
            seen |= 1u << r.field;
    }
    return got < 0 || (seen & 0x1e) != 0x1e ? JOUST_ECORRUPT : 0;
}

int joust_rec_image_view(const void *bytes, size_t len, joust_image_view *out)
{
    memset(out, 0, sizeof *out);
    wire_rd r = wire_rd_of(bytes, len);
    uint32_t seen = 0;
    int got;
    while ((got = wire_field(&r)) > 0) {
        switch (r.field) {
        case 1: WANT(WT_VARINT); out->image_id = r.v; break;
        case 2: WANT(WT_VARINT); out->prompt_id = r.v; break;
        case 3: WANT(WT_LEN); out->uri = str_view(r.s, r.slen); break;
        case 4: WANT(WT_LEN); out->model = str_view(r.s, r.slen); break;
        case 5: WANT(WT_LEN); out->caller_id = str_view(r.s, r.slen); break;
        case 6: case 9: WANT(WT_VARINT); break;
        case 7: WANT(WT_I64); break;
        case 8: WANT(WT_LEN); break;
        default: break;
        }
        if (r.field <= 3)
            seen |= 1u << r.field;
    }
    return got < 0 || (seen & 0xe) != 0xe ? JOUST_ECORRUPT : 0;
}

int joust_rec_prompt_view(const void *bytes, size_t len, joust_prompt_view *out)
{
    memset(out, 0, sizeof *out);
    wire_rd r = wire_rd_of(bytes, len);
    uint32_t seen = 0;
    int got;
    while ((got = wire_field(&r)) > 0) {
        switch (r.field) {
        case 1: WANT(WT_VARINT); out->prompt_id = r.v; break;
        case 2: WANT(WT_LEN); out->text = str_view(r.s, r.slen); break;
        case 3: WANT(WT_LEN); out->caller_id = str_view(r.s, r.slen); break;
        case 4: WANT(WT_VARINT); break;
        default: break;
        }
        if (r.field <= 2)
            seen |= 1u << r.field;
    }
    return got < 0 || (seen & 0x6) != 0x6 ? JOUST_ECORRUPT : 0;
}

#undef WANT

int joust_rec_prompt_bytes(joust_store_t *st, uint64_t prompt_id, void **bytes, size_t *len)
{
    unsigned char key[8];
    joust_put_be64(key, prompt_id);
    return joust_store_get(st, JOUST_CF_PROMPTS, key, 8, bytes, len);
}
