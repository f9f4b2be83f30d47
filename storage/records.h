/* Typed records over the store: the only place that knows key layouts
 * (docs/storage.md) and which column family holds which protobuf record
 * (proto/joust.proto). Nothing outside storage/ builds a key by hand.
 *
 * Ownership: a getter's *out is a heap tree owned by the caller; free it
 * with joust_rec_free. A putter packs (copies) its record into the batch, so
 * the record may be freed or changed as soon as the call returns; the write
 * happens at joust_store_write. Records and ids passed in are borrowed.
 * Threads: as store.h: the store may be shared, a batch or a cursor belongs
 * to one thread.
 * Errors: 0 or a negative JOUST_E* code: JOUST_ENOTFOUND when a record is
 * absent, JOUST_ECORRUPT when stored bytes do not unpack, JOUST_ESTORE
 * from RocksDB (message logged by store.c). Putters cannot fail: a bad add
 * fails the batch's write (store.h). Nothing aborts on stored bytes. */
#ifndef JOUST_RECORDS_H
#define JOUST_RECORDS_H
#include <stddef.h>
#include <stdint.h>

#include "joust.pb-c.h"
#include "store.h"

#define JOUST_SCHEMA_VERSION 1

/* Frees a record returned by a getter or a cursor; NULL is a no-op. */
void joust_rec_free(void *msg);

/* ---- id counters (next id to assign; ids start at 1) ---- */
typedef enum { JOUST_NEXT_IMAGE, JOUST_NEXT_PROMPT, JOUST_NEXT_RUN } joust_rec_counter;
/* *out = the counter's value, 1 when it was never written. */
int joust_rec_counter_get(joust_store_t *st, joust_rec_counter which, uint64_t *out);
void joust_rec_counter_put(joust_batch_t *b, joust_rec_counter which, uint64_t v);

/* ---- ingest indexes: a 64-bit hash -> a 64-bit value ---- */
typedef enum {
    JOUST_INDEX_GROUP,     /* XXH3(group key) -> prompt_id */
    JOUST_INDEX_CONTENT,   /* content hash -> first image_id with it */
    JOUST_INDEX_CALLER_ID, /* XXH3(manifest id) -> image_id */
    JOUST_INDEX_MANIFEST,  /* XXH3(manifest file) -> images it added */
    JOUST_INDEX_MANIFEST_FIRST, /* XXH3(manifest file) -> its first image id (its
                                   images have consecutive ids from there) */
} joust_rec_index;
/* JOUST_ENOTFOUND when absent, JOUST_ECORRUPT when not 8 bytes. */
int joust_rec_index_get(joust_store_t *st, joust_rec_index index, uint64_t hash, uint64_t *out);
void joust_rec_index_put(joust_batch_t *b, joust_rec_index index, uint64_t hash, uint64_t value);
/* Calls fn for every entry of the index, in hash order (one iterator). */
int joust_rec_index_each(joust_store_t *st, joust_rec_index index,
                         void (*fn)(uint64_t hash, uint64_t value, void *arg), void *arg);

/* ---- an unfinished ingest (coordinator/ingest.c) ----
 * An ingest bulk-loads its records (store.h joust_store_load: durable but
 * not atomic across families) after a synced write of this mark, and
 * deletes the mark in its last, synced write with the counters. A mark
 * found means an ingest stopped part-way: what it wrote has image ids >=
 * first_image and prompt ids >= first_prompt (the counters' values at its
 * start, which it did not advance). */
/* JOUST_ENOTFOUND when there is none. */
int joust_rec_ingest_mark_get(joust_store_t *st, uint64_t *first_image, uint64_t *first_prompt);
void joust_rec_ingest_mark_put(joust_batch_t *b, uint64_t first_image, uint64_t first_prompt);
void joust_rec_ingest_mark_delete(joust_batch_t *b);
/* Deletes what an unfinished ingest with this mark may have written — its
 * images, its new prompts, the member keys it gave older prompts, the
 * group, content and caller-id index entries that point at them — and
 * the mark, in one synced write: the store is as before that ingest. Reads
 * the index entries and the older prompts' member keys once (one iterator
 * each). */
int joust_rec_ingest_rollback(joust_store_t *st, uint64_t first_image, uint64_t first_prompt);

/* ---- the outcome reuse index: a 64-bit key (coordinator/reuse.h) -> the
 * run and match of an OK outcome with it ---- */
/* JOUST_ENOTFOUND when absent, JOUST_ECORRUPT when not 12 bytes. */
int joust_rec_reuse_get(joust_store_t *st, uint64_t key, uint32_t *run_id, uint64_t *match_id);
void joust_rec_reuse_put(joust_batch_t *b, uint64_t key, uint32_t run_id, uint64_t match_id);

/* ---- runs (keyed by name) ---- */
int joust_rec_run_get(joust_store_t *st, const char *name, Joust__RunRecord **out);
/* Adds the run record to the batch, after the outcome log entries gathered
 * in it for the run (below, "outcome log"), which advances
 * run->outcome_log_next. */
void joust_rec_run_put(joust_batch_t *b, Joust__RunRecord *run);
/* Gives run a new id (the JOUST_NEXT_RUN counter) and writes it with the
 * advanced counter in one synced write; the run keeps an outcome log from
 * its first outcome (outcome_log set). The caller checks first that the
 * name is free (not atomic against another process creating it). */
int joust_rec_run_create(joust_store_t *st, Joust__RunRecord *run);
/* Calls fn for every run in name order (the record is borrowed for the
 * call); a record that does not unpack is skipped with a warning. */
int joust_rec_run_each(joust_store_t *st, void (*fn)(const Joust__RunRecord *run, void *arg),
                       void *arg);

/* ---- a run's outcome counts, kept in its record ---- */
typedef struct {
    uint64_t ok;           /* OK with p_first */
    uint64_t failed;       /* every other outcome: the sum of the classes below */
    uint64_t image_error;  /* IMAGE_ERROR: an image could not be read or was refused */
    uint64_t unparseable;  /* UNPARSEABLE (and an OK without p_first) */
    uint64_t infra_error;  /* INFRA_ERROR, legacy JUDGE_ERROR, unknown statuses */
    uint64_t config_error; /* CONFIG_ERROR */
    uint64_t abandoned;    /* ABANDONED: gave up after max attempts */
} joust_run_counts;
/* The counts stored in run's record. A run written before counts existed
 * has none: then they are counted from its outcomes (one scan), so *out is
 * always exact. */
int joust_rec_run_counts(joust_store_t *st, const Joust__RunRecord *run, joust_run_counts *out);
/* Counts the run's outcomes by scanning them (what the stored counts must
 * equal; a check for tests and for runs from before the counts). */
int joust_rec_run_counts_scan(joust_store_t *st, uint32_t run_id, joust_run_counts *out);
/* Adds one outcome to c (sign 1) or takes it off (sign -1). */
void joust_run_counts_add(joust_run_counts *c, const Joust__OutcomeRecord *o, int sign);
/* Writes the failure classes that are not 0 as "2 image_error, 1
 * unparseable" (the class names of docs/storage.md) into buf, truncated to
 * size; "none" when nothing failed. Returns the length it needed. */
size_t joust_run_counts_format(const joust_run_counts *c, char *buf, size_t size);
/* Stores c in run's record (in memory; put the record to write it). */
void joust_run_counts_set(Joust__RunRecord *run, const joust_run_counts *c);

/* Deletes the run: its matches, outcomes, outcome log, rationales and scores, then its
 * record (synced). Its id is never given again. The store's prompts and
 * images stay. Not atomic across families: after a crash, delete again. */
int joust_rec_run_delete(joust_store_t *st, const Joust__RunRecord *run);

/* ---- prompts and their members ---- */
int joust_rec_prompt_get(joust_store_t *st, uint64_t prompt_id, Joust__PromptRecord **out);
void joust_rec_prompt_put(joust_batch_t *b, const Joust__PromptRecord *p);
/* Records image_id as a member of prompt_id. */
void joust_rec_prompt_add_image(joust_batch_t *b, uint64_t prompt_id, uint64_t image_id);
/* The image ids of a prompt, in id order; *ids is malloc'd (free it). */
int joust_rec_prompt_members(joust_store_t *st, uint64_t prompt_id, uint64_t **ids, size_t *n);
/* Called with a prompt id and its image ids (borrowed for the call).
 * Returns < 0 to fail the walk, 0 to go on, > 0 to stop after this prompt. */
typedef int (*joust_rec_prompt_fn)(uint64_t pid, const uint64_t *ids, size_t n, void *arg);
/* Walks the prompts with from <= id < until (until 0: no bound) in id order.
 * Returns 0 when it walked them all, 1 when fn stopped it, or a negative
 * error. *next (may be NULL) becomes the id after the last prompt given to
 * fn. */
int joust_rec_prompt_walk(joust_store_t *st, uint64_t from, uint64_t until, joust_rec_prompt_fn fn,
                          void *arg, uint64_t *next);

/* ---- images ---- */
int joust_rec_image_get(joust_store_t *st, uint64_t image_id, Joust__ImageRecord **out);
void joust_rec_image_put(joust_batch_t *b, const Joust__ImageRecord *img);
/* The same with the record already packed (an ImageRecord's protobuf
 * bytes, as ingest encodes them without protobuf-c; test_ingest_same checks
 * they are protobuf-c's). */
void joust_rec_image_put_packed(joust_batch_t *b, uint64_t image_id, const void *rec, size_t len);

/* ---- a run's matches, outcomes (with rationales) and scores ----
 * Matches are stored one record per planning step (docs/storage.md "Match
 * records"); every reader below sees one MatchRecord per match (prompt_id,
 * first, second; count and pairs unset), for old stores too. */
int joust_rec_match_get(joust_store_t *st, uint32_t run_id, uint64_t match_id,
                        Joust__MatchRecord **out);
/* One match: m's prompt_id, first and second (count and pairs ignored). */
void joust_rec_match_put(joust_batch_t *b, uint32_t run_id, uint64_t match_id,
                         const Joust__MatchRecord *m);
/* n >= 1 matches of prompt_id with ids first_id .. first_id + n - 1, whose
 * image ids are pairs[i][0] (first) and pairs[i][1] (second): one record. */
void joust_rec_matches_put(joust_batch_t *b, uint32_t run_id, uint64_t first_id,
                           uint64_t prompt_id, const uint64_t (*pairs)[2], size_t n);
int joust_rec_outcome_get(joust_store_t *st, uint32_t run_id, uint64_t match_id,
                          Joust__OutcomeRecord **out);
/* Adds the outcome of match_id and, when reason is non-empty, its
 * rationale to the batch, and counts it in run's counts (in memory). The
 * caller puts run (joust_rec_run_put) into the same batch before writing
 * it, so that the counts and the outcomes they count are durable together
 * (exactly once across crashes). replaced: the outcome this one replaces,
 * whose count is taken off (and whose rationale goes when this one has
 * none), or NULL for a match's first outcome. */
void joust_rec_outcome_put(joust_batch_t *b, Joust__RunRecord *run, uint64_t match_id,
                           const Joust__OutcomeRecord *o, const char *reason,
                           const Joust__OutcomeRecord *replaced);
/* The outcome's packed bytes, written by a direct encoder (the record is
 * put once per match): exactly protobuf_c_message_pack's bytes (checked by
 * test_records on random records). o has no unknown fields; out holds at
 * least joust_rec_outcome_packed_max(o) bytes. Returns the length. */
size_t joust_rec_outcome_packed_max(const Joust__OutcomeRecord *o);
size_t joust_rec_outcome_pack(const Joust__OutcomeRecord *o, unsigned char *out);
/* Deletes match_id's outcome `old` and its rationale, and takes old off
 * run's counts (in memory; put run into the same batch): a failed match
 * to be judged again. */
void joust_rec_outcome_delete(joust_batch_t *b, Joust__RunRecord *run, uint64_t match_id,
                              const Joust__OutcomeRecord *old);
/* ---- the outcome log (docs/storage.md "Outcome log") ----
 * A run whose record has outcome_log set (joust_rec_run_create sets it) has,
 * besides one record per match in JOUST_CF_OUTCOMES, a log of them in
 * JOUST_CF_OUTCOME_LOG: be32 run ‖ be64 seq -> the entries of every outcome
 * put and delete one batch made for the run, in the order they were made.
 * joust_rec_outcome_put and _delete gather the entries in the batch (a
 * store.h side buffer per run); joust_rec_run_put adds them as one record
 * with seq run->outcome_log_next and advances it. So every batch that puts
 * or deletes a log run's outcomes puts its run record too (as the counts
 * already ask); a batch written with entries not flushed is refused
 * (store.h). Replaying the log in seq order (the last entry of a match
 * wins, a delete removes it) gives exactly the outcome family's records
 * of the run, reduced to what scoring reads.
 * An entry: varint zigzag(match id - the previous entry's in the record; 0
 * before the first) ‖ varint(len << 1 | put) ‖ len bytes: for a put an
 * OutcomeRecord holding prompt_id, first, second, status, p_first, kind
 * and, for IMAGE_ERROR, failed_image_id and error (read it with
 * joust_rec_outcome_view); a delete has no bytes. */
typedef struct {
    uint64_t match_id;
    int put;             /* 0: a delete */
    const void *bytes;   /* a put's record, borrowed from the value */
    size_t len;
} joust_outlog_entry;
/* Reads the entry at *pos of a log record's value and moves *pos past it;
 * *prev_id is the previous entry's match id (0 at the record's start).
 * Returns 1 with *e filled, 0 at the end of the value, JOUST_ECORRUPT when
 * the bytes are malformed (the rest of the value cannot be read). */
int joust_rec_outlog_next(const void *val, size_t vlen, size_t *pos, uint64_t *prev_id,
                          joust_outlog_entry *e);
/* Calls fn for every entry of the run's log in order (seq, then position
 * in the record; e borrowed for the call); fn returns < 0 to stop with that
 * error. *malformed: records out of seq order and records whose rest could
 * not be read. */
typedef int (*joust_outlog_fn)(uint64_t seq, const joust_outlog_entry *e, void *arg);
int joust_rec_outlog_each(joust_store_t *st, uint32_t run_id, joust_outlog_fn fn, void *arg,
                          uint64_t *malformed);
/* Whether run keeps an outcome log (a run created by this joust). */
int joust_rec_run_has_log(const Joust__RunRecord *run);
/* A check for tests and tools: replays run's log and compares it with the
 * run's records in the outcome family. *differ: the match ids whose last
 * entry is not what their record reduces to (or that only one side has),
 * log records out of seq order, and malformed entries; 0 when they agree.
 * JOUST_EINVAL for a run without a log. Memory: 8 bytes per match id. */
int joust_rec_outlog_verify(joust_store_t *st, const Joust__RunRecord *run, uint64_t *differ);

/* The rationale text (malloc'd, NUL-terminated, *len bytes before the NUL). */
int joust_rec_rationale_get(joust_store_t *st, uint32_t run_id, uint64_t match_id, char **text,
                            size_t *len);
int joust_rec_score_get(joust_store_t *st, uint32_t run_id, uint64_t image_id,
                        Joust__ScoreRecord **out);
void joust_rec_score_put(joust_batch_t *b, uint32_t run_id, uint64_t image_id,
                         const Joust__ScoreRecord *s);
/* Deletes every score of the run in one (unsynced) write. */
int joust_rec_scores_delete(joust_store_t *st, uint32_t run_id);

/* ---- image signatures (near-duplicate detection, docs/dedup.md), in META:
 * 'g' ‖ be64 image_id and 'G' ‖ be64 content hash -> SignatureRecord ---- */
/* The signature stored for image_id; JOUST_ENOTFOUND when none. */
int joust_rec_signature_get(joust_store_t *st, uint64_t image_id, Joust__SignatureRecord **out);
/* The signature stored for any image with this content hash. */
int joust_rec_signature_by_content(joust_store_t *st, uint64_t content_hash,
                                   Joust__SignatureRecord **out);
/* Stores s for image_id and, when has_content, under content_hash too. */
void joust_rec_signature_put(joust_batch_t *b, uint64_t image_id, int has_content,
                             uint64_t content_hash, const Joust__SignatureRecord *s);

/* ---- a run's collapsed near-duplicates (`joust run --dedup`), in META:
 * 'd' ‖ be32 run_id ‖ be64 image_id -> DuplicateRecord ---- */
void joust_rec_duplicate_put(joust_batch_t *b, uint32_t run_id, uint64_t image_id,
                             const Joust__DuplicateRecord *d);
/* Calls fn for every collapsed image of the run in image id order (d is
 * borrowed for the call); fn returns < 0 to stop with that error. A record
 * that does not unpack is JOUST_ECORRUPT. */
/* The record of image_id in the run; JOUST_ENOTFOUND when it was not collapsed. */
int joust_rec_duplicate_get(joust_store_t *st, uint32_t run_id, uint64_t image_id,
                            Joust__DuplicateRecord **out);
int joust_rec_duplicate_each(joust_store_t *st, uint32_t run_id,
                             int (*fn)(uint64_t image_id, const Joust__DuplicateRecord *d, void *arg),
                             void *arg);

/* A cursor over one run's matches, outcomes or scores in id order (match id;
 * image id for scores), over all images (JOUST_REC_IMAGES: image id order)
 * or over all prompt records (JOUST_REC_PROMPTS: prompt id order, the
 * member entries skipped; read them with joust_rec_cursor_bytes and
 * joust_rec_prompt_view, or joust_rec_cursor_prompt); run_id is ignored
 * for those two. It reads a snapshot taken at _new; keep it short. */
typedef enum {
    JOUST_REC_MATCHES,
    JOUST_REC_OUTCOMES,
    JOUST_REC_SCORES,
    JOUST_REC_IMAGES,
    JOUST_REC_PROMPTS,
    JOUST_REC_OUTCOME_LOG /* a run's outcome log records, in seq order (id: the seq) */
} joust_rec_family;
typedef struct joust_rec_cursor joust_rec_cursor_t;
int joust_rec_cursor_new(joust_store_t *st, joust_rec_family family, uint32_t run_id,
                         joust_rec_cursor_t **out);
/* The same for a reader of the whole family or run, front to back (a
 * report, a fit): joust_iter_new_scan's read options. */
int joust_rec_cursor_new_scan(joust_store_t *st, joust_rec_family family, uint32_t run_id,
                              joust_rec_cursor_t **out);
void joust_rec_cursor_destroy(joust_rec_cursor_t **self_p);
/* 0 at the end or on error (tell them apart with joust_rec_cursor_error). */
int joust_rec_cursor_valid(joust_rec_cursor_t *c);
void joust_rec_cursor_next(joust_rec_cursor_t *c);
/* Positions at the first record with id >= id. */
void joust_rec_cursor_seek(joust_rec_cursor_t *c, uint64_t id);
/* The current record's id; 0 when not valid. */
uint64_t joust_rec_cursor_id(joust_rec_cursor_t *c);
/* The current record unpacked (free with joust_rec_free); NULL when the
 * cursor is not valid or the bytes do not unpack. The family must match. */
Joust__MatchRecord *joust_rec_cursor_match(joust_rec_cursor_t *c);
Joust__OutcomeRecord *joust_rec_cursor_outcome(joust_rec_cursor_t *c);
Joust__ScoreRecord *joust_rec_cursor_score(joust_rec_cursor_t *c);
Joust__ImageRecord *joust_rec_cursor_image(joust_rec_cursor_t *c);
Joust__PromptRecord *joust_rec_cursor_prompt(joust_rec_cursor_t *c);
/* The current record's packed bytes (borrowed until the cursor moves; for
 * JOUST_REC_MATCHES the stored record of the whole planning step), for
 * a caller that hashes them or unpacks them with its own allocator; NULL
 * (*len 0) when the cursor is not valid. */
const void *joust_rec_cursor_bytes(joust_rec_cursor_t *c, size_t *len);
/* 0, or JOUST_ESTORE if the cursor stopped because of an error. */
int joust_rec_cursor_error(joust_rec_cursor_t *c);

/* ---- views: the fields a bulk reader needs, straight from packed bytes ----
 * For readers of many records (scoring, the score files): no allocation,
 * no protobuf-c tree. A view's strings point into the bytes (borrowed
 * while they are) and are not NUL-terminated; their length stops at an
 * embedded NUL, as the C string of an unpacked record would. A string
 * field that is absent has s NULL and len 0. The same bytes unpack with
 * joust_rec_free-able getters to the same values; bytes that would not
 * unpack there (truncated, a wire type that does not fit a known field, a
 * required field missing) give JOUST_ECORRUPT here. */
typedef struct {
    const char *s;
    size_t len;
} joust_str_view;

typedef struct {
    uint64_t prompt_id, first, second, failed_image_id;
    int status;         /* OutcomeStatus */
    int has_p_first;
    double p_first;
    int has_kind, kind; /* OutcomeKind */
    int has_latency_us, has_tokens;
    int64_t latency_us;
    uint32_t tokens;
    joust_str_view error;
} joust_outcome_view;
int joust_rec_outcome_view(const void *bytes, size_t len, joust_outcome_view *out);

typedef struct {
    uint64_t image_id, prompt_id;
    joust_str_view uri, model, caller_id;
} joust_image_view;
int joust_rec_image_view(const void *bytes, size_t len, joust_image_view *out);

typedef struct {
    uint64_t prompt_id;
    joust_str_view text, caller_id;
} joust_prompt_view;
int joust_rec_prompt_view(const void *bytes, size_t len, joust_prompt_view *out);
/* A prompt's packed record bytes (malloc'd, *len of them; free them), for
 * joust_rec_prompt_view. JOUST_ENOTFOUND when absent. */
int joust_rec_prompt_bytes(joust_store_t *st, uint64_t prompt_id, void **bytes, size_t *len);

#endif
