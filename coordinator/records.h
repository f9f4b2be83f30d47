/* Record codecs for the store: key layouts (docs/storage.md) and protobuf
 * values (proto/joust.proto). Keys are big-endian so RocksDB iterates in id
 * order. Values returned by the getters are heap trees owned by the caller:
 * free them with protobuf_c_message_free_unpacked(&x->base, NULL). */
#ifndef JOUST_RECORDS_H
#define JOUST_RECORDS_H
#include <stddef.h>
#include <stdint.h>

#include "joust.pb-c.h"
#include "store.h"

#define RUN_KEY_LEN 12 /* be32 run_id ‖ be64 id */

/* META keys: counters and indexes written by ingest. */
#define META_NEXT_IMAGE "next_image_id"
#define META_NEXT_PROMPT "next_prompt_id"
#define META_NEXT_RUN "next_run_id"
#define META_SCHEMA "schema_version"
#define JOUST_SCHEMA_VERSION 1

void run_key(unsigned char key[RUN_KEY_LEN], uint32_t run_id, uint64_t id);
void run_prefix(unsigned char key[4], uint32_t run_id);

/* Packs msg into a malloc'd buffer. */
void *record_pack(const ProtobufCMessage *msg, size_t *len);
/* Packs msg and adds a put to the batch. */
void record_put(joust_batch_t *b, joust_cf cf, const void *key, size_t klen,
                const ProtobufCMessage *msg);
/* Gets and unpacks one record. JOUST_ENOTFOUND, or JOUST_ECORRUPT when the
 * stored bytes do not unpack. */
int record_get(joust_store_t *st, joust_cf cf, const void *key, size_t klen,
               const ProtobufCMessageDescriptor *d, ProtobufCMessage **out);
/* Unpacks bytes read from an iterator; NULL when corrupt. */
ProtobufCMessage *record_unpack(const ProtobufCMessageDescriptor *d, const void *val, size_t len);
void record_free(void *msg);

/* A u64 counter in META: *out = current value (default when absent). */
int meta_get_u64(joust_store_t *st, const char *name, uint64_t dflt, uint64_t *out);
void meta_put_u64(joust_batch_t *b, const char *name, uint64_t v);

int image_get(joust_store_t *st, uint64_t image_id, Joust__ImageRecord **out);
int prompt_get(joust_store_t *st, uint64_t prompt_id, Joust__PromptRecord **out);
/* Called with a prompt id and its image ids (borrowed for the call).
 * Returns < 0 to fail the walk, 0 to go on, > 0 to stop after this prompt. */
typedef int (*prompt_fn)(uint64_t pid, const uint64_t *ids, size_t n, void *arg);
/* Walks the prompts with from <= id < until (until 0: no bound) in id order.
 * Returns 0 when it walked them all, 1 when fn stopped it, or a negative
 * error. *next (may be NULL) becomes the id after the last prompt given to
 * fn. */
int prompt_walk(joust_store_t *st, uint64_t from, uint64_t until, prompt_fn fn, void *arg,
                uint64_t *next);
/* The image ids of a prompt, in id order; *ids is malloc'd. */
int prompt_members(joust_store_t *st, uint64_t prompt_id, uint64_t **ids, size_t *n);

#endif
