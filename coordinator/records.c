#include "records.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "xalloc.h"

void run_key(unsigned char key[RUN_KEY_LEN], uint32_t run_id, uint64_t id)
{
    joust_put_be32(key, run_id);
    joust_put_be64(key + 4, id);
}

void run_prefix(unsigned char key[4], uint32_t run_id) { joust_put_be32(key, run_id); }

void *record_pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    void *buf = xmalloc(*len);
    protobuf_c_message_pack(msg, buf);
    return buf;
}

void record_put(joust_batch_t *b, joust_cf cf, const void *key, size_t klen,
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

ProtobufCMessage *record_unpack(const ProtobufCMessageDescriptor *d, const void *val, size_t len)
{
    return protobuf_c_message_unpack(d, NULL, len, val);
}

int record_get(joust_store_t *st, joust_cf cf, const void *key, size_t klen,
               const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
    void *val;
    size_t len;
    int rc = joust_store_get(st, cf, key, klen, &val, &len);
    if (rc < 0)
        return rc;
    *out = record_unpack(d, val, len);
    free(val);
    return *out ? 0 : JOUST_ECORRUPT;
}

void record_free(void *msg)
{
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
}

int meta_get_u64(joust_store_t *st, const char *name, uint64_t dflt, uint64_t *out)
{
    void *val;
    size_t len;
    int rc = joust_store_get(st, JOUST_CF_META, name, strlen(name), &val, &len);
    if (rc == JOUST_ENOTFOUND) {
        *out = dflt;
        return 0;
    }
    if (rc < 0)
        return rc;
    rc = len == 8 ? 0 : JOUST_ECORRUPT;
    if (rc == 0)
        *out = joust_get_be64(val);
    free(val);
    return rc;
}

void meta_put_u64(joust_batch_t *b, const char *name, uint64_t v)
{
    unsigned char buf[8];
    joust_put_be64(buf, v);
    joust_batch_put(b, JOUST_CF_META, name, strlen(name), buf, 8);
}

int image_get(joust_store_t *st, uint64_t image_id, Joust__ImageRecord **out)
{
    unsigned char key[8];
    joust_put_be64(key, image_id);
    return record_get(st, JOUST_CF_IMAGES, key, 8, &joust__image_record__descriptor,
                      (ProtobufCMessage **)out);
}

int prompt_get(joust_store_t *st, uint64_t prompt_id, Joust__PromptRecord **out)
{
    unsigned char key[8];
    joust_put_be64(key, prompt_id);
    return record_get(st, JOUST_CF_PROMPTS, key, 8, &joust__prompt_record__descriptor,
                      (ProtobufCMessage **)out);
}

int prompt_members(joust_store_t *st, uint64_t prompt_id, uint64_t **ids, size_t *n)
{
    unsigned char prefix[8];
    joust_put_be64(prefix, prompt_id);
    joust_iter_t *it;
    int rc = joust_iter_new(st, JOUST_CF_PROMPTS, prefix, 8, &it);
    if (rc < 0)
        return rc;
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
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

int prompt_walk(joust_store_t *st, uint64_t from, uint64_t until, prompt_fn fn, void *arg,
                uint64_t *next)
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
