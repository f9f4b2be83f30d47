/* The RocksDB store: one database with a column family per kind of record.
 * This is the only part that includes rocksdb/c.h; it knows keys and values
 * only as bytes (record schemas live in proto/joust.proto, key layouts in
 * docs/storage.md). A batch is applied atomically across column families.
 *
 * Ownership: the caller owns what it passes in (keys, values, batches) and
 * what it gets back (a get's value, an iterator); joust_batch_put copies
 * the key and value, so they may be reused as soon as it returns.
 * Threads: one joust_store_t may be shared by threads for get/write/iterate
 * (RocksDB is thread-safe); a batch or an iterator belongs to one thread.
 * Errors: functions return 0 or a negative JOUST_E* code; RocksDB's message
 * is logged. Nothing here aborts on bad data or on a failing disk: a write
 * that fails (JOUST_ENOSPC when the disk is full, else JOUST_ESTORE) makes
 * the store refuse every later write with the same code, and close then
 * leaves the WAL alone; reopen the store once the disk is fixed. */
#ifndef JOUST_STORE_H
#define JOUST_STORE_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    JOUST_CF_META = 0,   /* "default": schema version, counters, indexes */
    JOUST_CF_RUNS,       /* run name -> run record */
    JOUST_CF_PROMPTS,    /* be64 prompt_id [-> be64 image_id] */
    JOUST_CF_IMAGES,     /* be64 image_id -> image record */
    JOUST_CF_MATCHES,    /* be32 run ‖ be64 match_id -> match record */
    JOUST_CF_OUTCOMES,   /* be32 run ‖ be64 match_id -> outcome record */
    JOUST_CF_RATIONALES, /* be32 run ‖ be64 match_id -> reasoning text */
    JOUST_CF_SCORES,     /* be32 run ‖ be64 image_id -> score record */
    JOUST_CF_OUTCOME_LOG, /* be32 run ‖ be64 seq -> the outcome puts and deletes of one
                           * write (storage/records.h "outcome log") */
    JOUST_CF_COUNT
} joust_cf;

typedef struct joust_store joust_store_t;
typedef struct joust_batch joust_batch_t;
typedef struct joust_iter joust_iter_t;

enum {
    JOUST_STORE_EXISTING = 0, /* open an existing store for reading and writing */
    JOUST_STORE_CREATE = 1,   /* the same, creating it when absent */
    JOUST_STORE_READONLY = 2, /* read-only, beside a process that holds it open for
                               * writing (takes no LOCK, writes no file); sees the
                               * store as it was at open. Writes: JOUST_EUNSUPPORTED */
};
/* Opens the database at path with every column family. JOUST_ENOTFOUND
 * when it does not exist (unless mode is JOUST_STORE_CREATE); JOUST_ENOSPC
 * when its disk is full; JOUST_ESTORE for other RocksDB errors (a LOCK held
 * by another writer, corruption). */
int joust_store_open(const char *path, int mode, joust_store_t **out);
/* Closes the database (column family handles first) and NULLs *self_p. */
void joust_store_destroy(joust_store_t **self_p);

/* Point lookup. On success *val is a malloc'd copy (free() it) of *vlen
 * bytes, with a NUL byte after the end for convenience.
 * JOUST_ENOTFOUND when the key is absent. */
int joust_store_get(joust_store_t *self, joust_cf cf, const void *key, size_t klen, void **val,
                    size_t *vlen);
/* Single put/delete, each its own write (not synced). */
int joust_store_put(joust_store_t *self, joust_cf cf, const void *key, size_t klen,
                    const void *val, size_t vlen);

joust_batch_t *joust_batch_new(void);
void joust_batch_destroy(joust_batch_t **self_p);
/* Adds a put (a delete) to the batch, copying key and value. Cannot fail:
 * a bad family or a key/value over 4 GiB fails the batch's write. */
void joust_batch_put(joust_batch_t *b, joust_cf cf, const void *key, size_t klen, const void *val,
                     size_t vlen);
void joust_batch_delete(joust_batch_t *b, joust_cf cf, const void *key, size_t klen);
size_t joust_batch_count(const joust_batch_t *b);
/* Bytes of the keys and values added so far (with a little framing). */
size_t joust_batch_bytes(const joust_batch_t *b);
void joust_batch_clear(joust_batch_t *b);
/* A batch's side buffers, kept per 32-bit key (a run id) for an owner
 * that gathers bytes while the batch is built and adds them as one put
 * before it is written (records.c's outcome log). joust_store_write and
 * joust_store_load refuse a batch whose side buffer still holds bytes
 * (JOUST_EINVAL, logged, and an assert): a programmer error. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    uint64_t last; /* the owner's: records.c keeps the last match id appended */
} joust_batch_side;
/* key's buffer, created empty at its first use; the pointer stays valid
 * until the batch is destroyed. joust_batch_clear empties every buffer. */
joust_batch_side *joust_batch_side_of(joust_batch_t *b, uint32_t key);
/* key's buffer, or NULL when it was never used. */
joust_batch_side *joust_batch_side_find(joust_batch_t *b, uint32_t key);

/* Applies the batch atomically. sync != 0 syncs the WAL before returning:
 * callers acknowledge results to workers only after a synced write. */
int joust_store_write(joust_store_t *self, joust_batch_t *b, int sync);

/* Adds a range delete of the keys begin <= key < end of cf (one tombstone). */
void joust_batch_delete_range(joust_batch_t *b, joust_cf cf, const void *begin, size_t blen,
                              const void *end, size_t elen);

/* Bulk load (ingest): writes the batch's puts as SST files, one per family
 * it touches, each sorted by key (a key put twice keeps its last value, as
 * in a write), and ingests them into the store (rocksdb_sstfilewriter +
 * IngestExternalFile, the files moved in): no WAL, no memtable, no flush.
 * Each family's file is durable when the call returns, but the batch is NOT
 * atomic across families: a crash during the call may keep the files of
 * some families and not of others (ingest.c says how it recovers). Files
 * are built as <store>/load-<family>.sst.tmp, so one load at a time per
 * store; with two families or more, the largest one's file is written by a
 * thread of its own (started and joined within the call) while the calling
 * thread writes the others. Loaded images and prompts files have no Bloom
 * filter (their keys are read only when present). A batch with a delete is refused (JOUST_EINVAL, nothing written);
 * failures are those of joust_store_write, and count for the fault seam. */
int joust_store_load(joust_store_t *self, joust_batch_t *b);

/* Iterates keys of cf that start with prefix (plen may be 0: whole family),
 * in key order. Key/value pointers are borrowed until the next move. */
int joust_iter_new(joust_store_t *self, joust_cf cf, const void *prefix, size_t plen,
                   joust_iter_t **out);
/* The same for a reader that goes through the whole range once (a run's
 * outcomes, every image): its blocks do not enter the block cache, files
 * are read ahead in large reads, and block checksums are not verified. */
int joust_iter_new_scan(joust_store_t *self, joust_cf cf, const void *prefix, size_t plen,
                        joust_iter_t **out);
/* Positions at the first key >= prefix ‖ from (within the prefix). */
void joust_iter_seek(joust_iter_t *it, const void *from, size_t flen);
int joust_iter_valid(joust_iter_t *it);
void joust_iter_next(joust_iter_t *it);
const void *joust_iter_key(joust_iter_t *it, size_t *klen);
const void *joust_iter_value(joust_iter_t *it, size_t *vlen);
/* 0, or JOUST_ESTORE if iteration stopped because of an error. */
int joust_iter_error(joust_iter_t *it);
void joust_iter_destroy(joust_iter_t **self_p);

/* Deletes every key of cf in [prefix, prefix+1) in one write (e.g. a run's
 * scores before they are written again). */
int joust_store_delete_prefix(joust_store_t *self, joust_cf cf, const void *prefix, size_t plen);

/* 0 while every write has succeeded, else the code of the first one that
 * failed (every later write is refused with it). */
int joust_store_failed(joust_store_t *self);

/* Test seam: the write after `after` more successful ones (joust_store_write,
 * joust_store_put, joust_store_delete_prefix) fails with JOUST_ENOSPC as if
 * the disk had filled: JOUST_FAULT_WRITE writes nothing, JOUST_FAULT_SYNC
 * applies the write but reports that its sync failed (as a failed fsync
 * does: the batch may survive a restart though the caller saw an error).
 * The store then behaves as after any failed write. JOUST_FAULT_KILL
 * applies the write and then kills the process with SIGKILL (a crash at a
 * chosen point, for crash-recovery tests). mode 0 disarms it.
 * A process arms it at open with JOUST_TEST_STORE_FAULT=write:N, sync:N or
 * kill:N. */
enum { JOUST_FAULT_WRITE = 1, JOUST_FAULT_SYNC = 2, JOUST_FAULT_KILL = 3 };
void joust_store_fault(joust_store_t *self, int mode, long after);

/* Writes every family's memtable to SST files now and waits, so that the
 * memtables' memory goes back (e.g. once judging is over, before the fit's
 * peak). Best effort: a failure is logged and changes nothing else. No-op
 * on a read-only store or after a failed write. */
void joust_store_flush(joust_store_t *self);
/* Compacts every family down to its bottom level (flushing the memtables
 * first), e.g. before measuring a store's size. */
int joust_store_compact(joust_store_t *self);
/* Bytes of cf's SST files (RocksDB's total-sst-files-size); 0 if unknown. */
uint64_t joust_store_sst_bytes(joust_store_t *self, joust_cf cf);
/* RocksDB's own memory now: every family's memtables, what the block cache
 * holds, and the table readers' index and filter memory outside it. */
typedef struct {
    uint64_t memtables, block_cache, table_readers;
} joust_store_mem;
void joust_store_memory(joust_store_t *self, joust_store_mem *out);

/* Name of a column family as stored in RocksDB ("default", "runs", ...). */
const char *joust_cf_name(joust_cf cf);

#endif
