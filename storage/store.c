/* The RocksDB store (see store.h): one database, one column family per kind
 * of record, a shared WAL so that a batch is atomic across families.
 * Promises: every RocksDB error is logged with its column family and key and
 * returned as JOUST_ESTORE; nothing here aborts on data read from disk (only
 * on programmer errors via assert, and on OOM via xalloc). The C API traps of
 * RocksDB 7.8.3 (shared/notes/dependencies.md section 3) are handled here:
 * errptr is NULL-initialised and freed after each failure, CF handles are
 * destroyed before close, iterate bounds live as long as the iterator. */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "err.h"
#include "log.h"
#include "xalloc.h"

/* Memory budget: the write buffers of all families together are capped by
 * db_write_buffer_size, so 8 families never hold 8 x 2 x 64 MiB. */
#define STORE_WRITE_BUFFER (64u << 20)       /* busy families */
#define STORE_SMALL_WRITE_BUFFER (8u << 20)  /* meta, runs, prompts, images */
#define STORE_DB_WRITE_BUFFER (256u << 20)   /* all memtables together */
#define STORE_BLOCK_CACHE (32u << 20)        /* shared by all families */
#define STORE_CACHE_SHARD_BITS 2             /* 4 shards of 8 MiB */
#define STORE_MAX_WAL (512ull << 20)         /* forces flushes of idle families */
#define STORE_BYTES_PER_SYNC (1u << 20)
#define STORE_SCAN_READAHEAD (2u << 20)      /* joust_iter_new_scan */
/* Free space below which a store is not opened for writing: opening writes
 * the info LOG header (~80 KiB), an OPTIONS file (~36 KiB), a WAL and a
 * MANIFEST, and RocksDB 7.8 asserts when the LOG header cannot be written. */
#define STORE_MIN_FREE (1ull << 20)

static const char *const cf_names[JOUST_CF_COUNT] = {
    "default", "runs", "prompts", "images", "matches", "outcomes", "rationales", "scores",
    "outcome_log",
};

struct joust_store {
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[JOUST_CF_COUNT];
    rocksdb_options_t *db_opts;
    rocksdb_options_t *cf_opts[JOUST_CF_COUNT];
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo_sync;   /* sync=1: callers ACK only after this */
    rocksdb_writeoptions_t *wo_nosync; /* sync=0: survives a process crash only */
    rocksdb_readoptions_t *ro;         /* shared by point lookups, read-only */
    rocksdb_options_t *load_opts[JOUST_CF_COUNT]; /* joust_store_load's, made at its first use */
    char *path;
    int readonly;
    /* Sticky: the code of the first failed write (accessed atomically; the
     * committer thread writes). After it every write is refused, and close
     * does not touch the WAL again (RocksDB 7.8 asserts on a WAL writer
     * that has seen an error). */
    int failed;
    /* Test seam (joust_store_fault): fail the write after fault_after
     * more successful ones, the way fault_mode says. */
    long fault_after;
    int fault_mode;
};

/* A batch cannot hold rocksdb_writebatch_put_cf calls before it knows the
 * store's CF handles, so it records operations in a log that
 * joust_store_write replays into a rocksdb_writebatch_t.
 * Entry: op (1 byte), cf (1 byte), klen (size_t), vlen (size_t), key, value. */
enum { OP_PUT = 1, OP_DELETE = 2, OP_DELETE_RANGE = 3 /* key: begin, value: end */ };

struct joust_batch {
    unsigned char *buf;
    size_t len, cap;
    size_t count;
    struct batch_side_slot {
        uint32_t key;
        joust_batch_side *side;
    } *sides; /* joust_batch_side_of: few (one per run written) */
    size_t nsides, sides_cap;
    int invalid; /* JOUST_ETOOBIG (key/value over RocksDB's 4 GiB limit) or
                  * JOUST_EINVAL (bad family) from an add; fails the write */
};

struct joust_iter {
    joust_store_t *store;
    joust_cf cf;
    rocksdb_iterator_t *it;
    /* RocksDB keeps pointers to the read options' bound slices, which point
     * into lower/upper: all three must outlive it. */
    rocksdb_readoptions_t *ro;
    unsigned char *lower; /* the prefix */
    size_t plen;
    unsigned char *upper; /* prefix + 1, or NULL for no upper bound */
    size_t ulen;
    int err;
};

/* A family out of range is JOUST_EINVAL, not an assert: it would index
 * past the handle array, and asserts vanish under NDEBUG. */
static int valid_cf(joust_cf cf)
{
    return (int)cf >= 0 && cf < JOUST_CF_COUNT;
}

const char *joust_cf_name(joust_cf cf)
{
    return valid_cf(cf) ? cf_names[cf] : "?";
}

/* Formats up to 32 bytes of a key as hex for log lines. */
static const char *hexkey(char out[80], const void *key, size_t klen)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *k = key;
    size_t n = klen > 32 ? 32 : klen, o = 0;
    for (size_t i = 0; i < n; i++) {
        out[o++] = digits[k[i] >> 4];
        out[o++] = digits[k[i] & 15];
    }
    if (n < klen) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    if (o == 0)
        out[o++] = '-';
    out[o] = '\0';
    return out;
}

/* Logs and frees a RocksDB error; returns JOUST_ENOSPC when the disk is
 * full, else JOUST_ESTORE. */
static int store_fail(char **err, const char *what, joust_cf cf, const void *key, size_t klen)
{
    char hex[80];
    log_error("store: %s (cf %s, key %s): %s", what, joust_cf_name(cf), hexkey(hex, key, klen),
              *err ? *err : "unknown error");
    int rc = *err && (strstr(*err, "No space left") || strstr(*err, "Disk quota"))
                 ? JOUST_ENOSPC
                 : JOUST_ESTORE;
    rocksdb_free(*err);
    *err = NULL;
    return rc;
}

/* The exclusive upper bound of keys starting with prefix: drop trailing 0xff
 * bytes and increment the last remaining one. Returns 0 (no bound) when the
 * prefix is empty or all 0xff, because then every key >= prefix has it. */
static size_t prefix_successor(const void *prefix, size_t plen, unsigned char **out)
{
    const unsigned char *p = prefix;
    size_t n = plen;
    while (n > 0 && p[n - 1] == 0xff)
        n--;
    *out = NULL;
    if (n == 0)
        return 0;
    unsigned char *u = xmalloc(n);
    memcpy(u, p, n);
    u[n - 1]++;
    *out = u;
    return n;
}

/* The run's record families: written once per match, read back only by
 * whole-run scans (scoring, recovery, export) and the odd point lookup. */
static int run_record_family(joust_cf cf)
{
    return cf == JOUST_CF_MATCHES || cf == JOUST_CF_OUTCOMES || cf == JOUST_CF_RATIONALES ||
           cf == JOUST_CF_OUTCOME_LOG;
}

/* Table options of one family. Point-lookup families (meta, prompts,
 * images, runs, scores) keep bloom filters, their index and filter blocks
 * in the block cache with high priority (L0's pinned). The run record
 * families have no filter (nobody asks them "is this key here?" often
 * enough to pay for building filters at every flush and compaction) and
 * LZ4 down to the bottom level instead of ZSTD: with dynamic level bytes
 * each flushed byte goes to the bottom level at its first compaction, and
 * ZSTD there was the largest part of the coordinator's compaction time.
 * set_filter_policy takes ownership of the policy; the table factory
 * copies the options. */
static void set_table_options(rocksdb_options_t *o, rocksdb_cache_t *cache, joust_cf cf)
{
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, cache);
    if (!run_record_family(cf))
        rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(t, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
    rocksdb_options_set_block_based_table_factory(o, t);
    rocksdb_block_based_options_destroy(t);
    if (run_record_family(cf))
        rocksdb_options_set_bottommost_compression(o, rocksdb_lz4_compression);
}

static rocksdb_options_t *make_cf_options(rocksdb_options_t *base, size_t write_buffer)
{
    rocksdb_options_t *o = rocksdb_options_create_copy(base);
    rocksdb_options_set_write_buffer_size(o, write_buffer);
    return o;
}

/* JOUST_TEST_STORE_FAULT=write:N or sync:N arms the fault seam at open, so
 * integration tests can make a real joust process's store fail. */
static void fault_from_env(joust_store_t *s)
{
    const char *f = getenv("JOUST_TEST_STORE_FAULT");
    if (!f || !*f)
        return;
    int mode = !strncmp(f, "write:", 6) ? JOUST_FAULT_WRITE
               : !strncmp(f, "sync:", 5) ? JOUST_FAULT_SYNC
               : !strncmp(f, "kill:", 5) ? JOUST_FAULT_KILL
                                         : 0;
    char *end;
    const char *n = strchr(f, ':');
    long after = n ? strtol(n + 1, &end, 10) : -1;
    if (!mode || after < 0 || *end) {
        log_warn("store: JOUST_TEST_STORE_FAULT=%s ignored (want write:N, sync:N or kill:N)", f);
        return;
    }
    log_warn("store: test fault armed: write %ld from now fails (%s)", after + 1, f);
    joust_store_fault(s, mode, after);
}

/* JOUST_ENOSPC (logged) when the filesystem holding dir (or, before it is
 * created, its parent) has less than STORE_MIN_FREE bytes free. */
static int check_free_space(const char *path)
{
    struct statvfs v;
    int rc = statvfs(path, &v);
    if (rc != 0) {
        char *parent = xstrdup(path), *slash = strrchr(parent, '/');
        if (slash)
            *(slash == parent ? slash + 1 : slash) = '\0';
        rc = statvfs(slash ? parent : ".", &v);
        free(parent);
    }
    if (rc != 0)
        return 0; /* RocksDB will say what is wrong with the path */
    unsigned long long avail = (unsigned long long)v.f_bavail * v.f_frsize;
    if (avail >= STORE_MIN_FREE)
        return 0;
    log_error("store: the disk holding %s is full (%llu KiB free, %llu KiB needed to open it "
              "for writing); free space and run again (`joust status` still works)",
              path, avail >> 10, STORE_MIN_FREE >> 10);
    return JOUST_ENOSPC;
}

/* Opens read-only the families the store has: one written by an older
 * joust may lack a newer family (a read-write open creates it), which
 * then has no handle and reads as empty. */
static rocksdb_t *open_read_only(joust_store_t *s, rocksdb_options_t *o, const char *path,
                                 char **err)
{
    size_t nlisted = 0;
    char **listed = rocksdb_list_column_families(o, path, &nlisted, err);
    if (*err)
        return NULL;
    const char *names[JOUST_CF_COUNT];
    const rocksdb_options_t *opts[JOUST_CF_COUNT];
    rocksdb_column_family_handle_t *h[JOUST_CF_COUNT] = {0};
    int at[JOUST_CF_COUNT], n = 0;
    for (int i = 0; i < JOUST_CF_COUNT; i++)
        for (size_t j = 0; j < nlisted; j++)
            if (!strcmp(listed[j], cf_names[i])) {
                names[n] = cf_names[i];
                opts[n] = s->cf_opts[i];
                at[n++] = i;
                break;
            }
    rocksdb_list_column_families_destroy(listed, nlisted);
    rocksdb_t *db = rocksdb_open_for_read_only_column_families(o, path, n, names, opts, h, 0, err);
    for (int k = 0; db && k < n; k++)
        s->cf[at[k]] = h[k];
    return db;
}

int joust_store_open(const char *path, int mode, joust_store_t **out)
{
    assert(path && out);
    assert(mode == JOUST_STORE_EXISTING || mode == JOUST_STORE_CREATE ||
           mode == JOUST_STORE_READONLY);
    *out = NULL;
    int create = mode == JOUST_STORE_CREATE;
    if (!create) {
        /* RocksDB would report a missing database as a generic
         * InvalidArgument; look for CURRENT to return ENOTFOUND instead. */
        size_t n = strlen(path);
        char *current = xmalloc(n + sizeof "/CURRENT");
        memcpy(current, path, n);
        memcpy(current + n, "/CURRENT", sizeof "/CURRENT");
        struct stat st;
        int rc = stat(current, &st);
        int e = errno;
        free(current);
        if (rc != 0) {
            if (e == ENOENT || e == ENOTDIR)
                return JOUST_ENOTFOUND;
            log_error("store: cannot stat %s/CURRENT: %s", path, strerror(e));
            return JOUST_EIO;
        }
    }

    if (mode != JOUST_STORE_READONLY) {
        int rc = check_free_space(path);
        if (rc < 0)
            return rc;
    }
    joust_store_t *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);

    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_increase_parallelism(o, 2);
    rocksdb_options_set_create_if_missing(o, create ? 1 : 0);
    /* Always: a database written by an older joust that lacks a newer
     * family gains it (empty) instead of failing to open. */
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_compression(o, rocksdb_lz4_compression);
    rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
    rocksdb_options_set_bytes_per_sync(o, STORE_BYTES_PER_SYNC);
    rocksdb_options_set_wal_bytes_per_sync(o, STORE_BYTES_PER_SYNC);
    rocksdb_options_set_write_buffer_size(o, STORE_WRITE_BUFFER);
    rocksdb_options_set_max_write_buffer_number(o, 2);
    rocksdb_options_set_db_write_buffer_size(o, STORE_DB_WRITE_BUFFER);
    /* Families share the WAL; a rarely written family would otherwise pin
     * old WAL files forever. */
    rocksdb_options_set_max_total_wal_size(o, STORE_MAX_WAL);
    /* The info LOG shares the store's disk. When that disk fills, RocksDB
     * 7.8 logs the write error to a LOG writer that has already failed and
     * asserts (WritableFileWriter::AssertFalseAndGetStatusForPrevError), so
     * only header and fatal lines are logged: the errors that matter reach
     * joust's own log through the returned statuses. */
    rocksdb_options_set_info_log_level(o, 4 /* FATAL_LEVEL */);
    rocksdb_options_set_keep_log_file_num(o, 5);
    rocksdb_options_set_max_log_file_size(o, 16u << 20);

    /* One small LRU cache for all families, in few shards (a 32 MiB cache
     * in RocksDB's default 64 shards holds half a MiB per shard, and index
     * and filter blocks kept getting evicted and read again). */
    rocksdb_lru_cache_options_t *co = rocksdb_lru_cache_options_create();
    rocksdb_lru_cache_options_set_capacity(co, STORE_BLOCK_CACHE);
    rocksdb_lru_cache_options_set_num_shard_bits(co, STORE_CACHE_SHARD_BITS);
    s->cache = rocksdb_cache_create_lru_opts(co);
    rocksdb_lru_cache_options_destroy(co);
    s->db_opts = o;

    for (int i = 0; i < JOUST_CF_COUNT; i++) {
        int busy = i == JOUST_CF_MATCHES || i == JOUST_CF_OUTCOMES || i == JOUST_CF_RATIONALES ||
                   i == JOUST_CF_SCORES || i == JOUST_CF_OUTCOME_LOG;
        s->cf_opts[i] = make_cf_options(o, busy ? STORE_WRITE_BUFFER : STORE_SMALL_WRITE_BUFFER);
        set_table_options(s->cf_opts[i], s->cache, (joust_cf)i);
    }

    char *err = NULL;
    s->readonly = mode == JOUST_STORE_READONLY;
    if (s->readonly) {
        /* No LOCK, no new files: beside a running writer. That writer may
         * delete a WAL or MANIFEST file between the listing and the open
         * (after a flush); then the open fails with a missing file and is
         * tried again. */
        for (int attempt = 0;; attempt++) {
            s->db = open_read_only(s, o, path, &err);
            if (s->db || !err || attempt == 4 || !strstr(err, "No such file"))
                break;
            rocksdb_free(err);
            err = NULL;
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        }
    } else
        s->db = rocksdb_open_column_families(o, path, JOUST_CF_COUNT, cf_names,
                                             (const rocksdb_options_t *const *)s->cf_opts, s->cf,
                                             &err);
    if (!s->db || err) {
        int rc = err && strstr(err, "No space left") ? JOUST_ENOSPC : JOUST_ESTORE;
        log_error("store: open %s%s: %s", path, s->readonly ? " (read-only)" : "",
                  err ? err : "failed");
        rocksdb_free(err);
        /* The C API returns NULL and no handles on error; joust_store_destroy
         * would still clean up anything it did return. */
        joust_store_destroy(&s);
        return rc;
    }

    s->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wo_sync, 1);
    s->wo_nosync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wo_nosync, 0);
    s->ro = rocksdb_readoptions_create();
    if (!s->readonly)
        fault_from_env(s);
    *out = s;
    return 0;
}

/* Writes every family's memtable to SST files at a clean close, so that the
 * next open (a read-only `joust report` above all) has no WAL to replay into
 * memtables: without it each open re-reads up to STORE_DB_WRITE_BUFFER of
 * WAL. A failure only costs that replay; it is logged. */
static void flush_memtables(joust_store_t *s)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    for (int i = 0; i < JOUST_CF_COUNT; i++) {
        char *err = NULL;
        rocksdb_flush_cf(s->db, fo, s->cf[i], &err);
        if (err) {
            log_warn("store: flush of %s: %s", cf_names[i], err);
            rocksdb_free(err);
            break;
        }
    }
    rocksdb_flushoptions_destroy(fo);
}

void joust_store_flush(joust_store_t *self)
{
    if (!self->readonly && !__atomic_load_n(&self->failed, __ATOMIC_ACQUIRE))
        flush_memtables(self);
}

void joust_store_destroy(joust_store_t **self_p)
{
    assert(self_p);
    joust_store_t *s = *self_p;
    if (!s)
        return;
    if (s->db) {
        /* Make a clean shutdown durable against power loss too (not after
         * a failed write: the WAL writer must not be touched again), then
         * stop compactions instead of waiting for them. */
        char *err = NULL;
        if (!s->readonly && !__atomic_load_n(&s->failed, __ATOMIC_ACQUIRE)) {
            rocksdb_flush_wal(s->db, 1, &err);
            if (err)
                store_fail(&err, "sync WAL at close", JOUST_CF_META, "", 0);
            else
                flush_memtables(s);
        }
        rocksdb_cancel_all_background_work(s->db, 1);
        /* CF handles must go before the database. */
        for (int i = 0; i < JOUST_CF_COUNT; i++)
            if (s->cf[i])
                rocksdb_column_family_handle_destroy(s->cf[i]);
        rocksdb_close(s->db);
    }
    if (s->wo_sync)
        rocksdb_writeoptions_destroy(s->wo_sync);
    if (s->wo_nosync)
        rocksdb_writeoptions_destroy(s->wo_nosync);
    if (s->ro)
        rocksdb_readoptions_destroy(s->ro);
    for (int i = 0; i < JOUST_CF_COUNT; i++) {
        if (s->cf_opts[i])
            rocksdb_options_destroy(s->cf_opts[i]);
        if (s->load_opts[i])
            rocksdb_options_destroy(s->load_opts[i]);
    }
    if (s->db_opts)
        rocksdb_options_destroy(s->db_opts);
    if (s->cache)
        rocksdb_cache_destroy(s->cache);
    free(s->path);
    free(s);
    *self_p = NULL;
}

int joust_store_get(joust_store_t *self, joust_cf cf, const void *key, size_t klen, void **val,
                    size_t *vlen)
{
    assert(self && (key || klen == 0) && val && vlen);
    *val = NULL;
    *vlen = 0;
    if (!valid_cf(cf))
        return JOUST_EINVAL;
    if (!self->cf[cf])
        return JOUST_ENOTFOUND; /* a family an older store lacks, opened read-only */
    char *err = NULL;
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned_cf(self->db, self->ro, self->cf[cf], key, klen, &err);
    if (err) {
        if (ps)
            rocksdb_pinnableslice_destroy(ps);
        return store_fail(&err, "get", cf, key, klen);
    }
    if (!ps)
        return JOUST_ENOTFOUND;
    size_t n = 0;
    const char *v = rocksdb_pinnableslice_value(ps, &n);
    unsigned char *copy = xmalloc(n + 1);
    if (n)
        memcpy(copy, v, n);
    copy[n] = '\0';
    rocksdb_pinnableslice_destroy(ps);
    *val = copy;
    *vlen = n;
    return 0;
}

/* Every write goes through here: refused after an earlier failure, failed
 * on purpose by the fault seam, and a failure makes the store refuse the
 * writes after it. */
/* Before a write: its refusal (an earlier failure, a read-only store), or 0
 * and in *fault the fault the seam injects into this write (0: none). */
static int write_begin(joust_store_t *self, const char *what, int *fault)
{
    int rc = __atomic_load_n(&self->failed, __ATOMIC_ACQUIRE);
    if (rc) {
        log_error("store: %s refused: an earlier write failed (%s)", what, joust_strerror(rc));
        return rc;
    }
    if (self->readonly) {
        log_error("store: %s: the store is open read-only", what);
        return JOUST_EUNSUPPORTED;
    }
    *fault = 0;
    if (__atomic_load_n(&self->fault_mode, __ATOMIC_ACQUIRE) &&
        __atomic_sub_fetch(&self->fault_after, 1, __ATOMIC_ACQ_REL) == -1)
        *fault = __atomic_exchange_n(&self->fault_mode, 0, __ATOMIC_ACQ_REL);
    return 0;
}

/* After a write: err is RocksDB's error (or NULL); the injected fault
 * applies. A failure makes the store refuse every later write. */
static int write_end(joust_store_t *self, char *err, int fault, const char *what, joust_cf cf,
                     const void *key, size_t klen)
{
    if (!err && fault == JOUST_FAULT_SYNC)
        err = xstrdup("IO error: No space left on device (injected: written, not synced)");
    if (!err && fault == JOUST_FAULT_KILL) {
        log_warn("store: test fault: killed after %s", what);
        raise(SIGKILL);
    }
    if (!err)
        return 0;
    int rc = store_fail(&err, what, cf, key, klen);
    if (rc == JOUST_ENOSPC)
        log_error("store: the disk holding %s is full; this process writes nothing more to it. "
                  "Free space, then run the same command again: what was not written is "
                  "done again, nothing is counted twice", self->path);
    __atomic_store_n(&self->failed, rc, __ATOMIC_RELEASE);
    return rc;
}

static int write_batch(joust_store_t *self, rocksdb_writebatch_t *wb, int sync, const char *what,
                       joust_cf cf, const void *key, size_t klen)
{
    int fault, rc = write_begin(self, what, &fault);
    if (rc)
        return rc;
    char *err = NULL;
    if (fault == JOUST_FAULT_WRITE)
        err = xstrdup("IO error: No space left on device (injected: nothing written)");
    else
        rocksdb_write(self->db, sync ? self->wo_sync : self->wo_nosync, wb, &err);
    return write_end(self, err, fault, what, cf, key, klen);
}

void joust_store_fault(joust_store_t *self, int mode, long after)
{
    assert(self && (mode == 0 || mode == JOUST_FAULT_WRITE || mode == JOUST_FAULT_SYNC ||
                    mode == JOUST_FAULT_KILL) &&
           after >= 0);
    __atomic_store_n(&self->fault_after, after, __ATOMIC_RELEASE);
    __atomic_store_n(&self->fault_mode, mode, __ATOMIC_RELEASE);
}

int joust_store_failed(joust_store_t *self)
{
    assert(self);
    return __atomic_load_n(&self->failed, __ATOMIC_ACQUIRE);
}

int joust_store_put(joust_store_t *self, joust_cf cf, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    assert(self && (key || klen == 0) && (val || vlen == 0));
    if (!valid_cf(cf))
        return JOUST_EINVAL;
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return JOUST_ETOOBIG;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(wb, self->cf[cf], key, klen, val ? val : "", vlen);
    int rc = write_batch(self, wb, 0, "put", cf, key, klen);
    rocksdb_writebatch_destroy(wb);
    return rc;
}

/* ---- batches ---- */

joust_batch_t *joust_batch_new(void)
{
    return xcalloc(1, sizeof(joust_batch_t));
}

void joust_batch_destroy(joust_batch_t **self_p)
{
    assert(self_p);
    if (!*self_p)
        return;
    joust_batch_t *b = *self_p;
    for (size_t i = 0; i < b->nsides; i++) {
        free(b->sides[i].side->p);
        free(b->sides[i].side);
    }
    free(b->sides);
    free(b->buf);
    free(b);
    *self_p = NULL;
}

joust_batch_side *joust_batch_side_find(joust_batch_t *b, uint32_t key)
{
    assert(b);
    for (size_t i = 0; i < b->nsides; i++)
        if (b->sides[i].key == key)
            return b->sides[i].side;
    return NULL;
}

joust_batch_side *joust_batch_side_of(joust_batch_t *b, uint32_t key)
{
    joust_batch_side *s = joust_batch_side_find(b, key);
    if (s)
        return s;
    xgrow((void **)&b->sides, &b->sides_cap, b->nsides + 1, sizeof *b->sides);
    s = xcalloc(1, sizeof *s);
    b->sides[b->nsides++] = (struct batch_side_slot){key, s};
    return s;
}

/* JOUST_EINVAL (logged) when a side buffer still holds bytes. */
static int sides_flushed(const joust_batch_t *b)
{
    for (size_t i = 0; i < b->nsides; i++)
        if (b->sides[i].side->n) {
            log_error("store: batch not written: side buffer %u holds %zu bytes not added "
                      "(a programmer error: records.c's outcome log was not flushed)",
                      b->sides[i].key, b->sides[i].side->n);
            assert(!"a batch written with an unflushed side buffer");
            return JOUST_EINVAL;
        }
    return 0;
}

static void batch_add(joust_batch_t *b, int op, joust_cf cf, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    assert(b && (key || klen == 0) && (val || vlen == 0));
    if (!valid_cf(cf)) {
        b->invalid = JOUST_EINVAL;
        return;
    }
    if (klen > UINT32_MAX || vlen > UINT32_MAX) {
        b->invalid = JOUST_ETOOBIG;
        return;
    }
    size_t need = 2 + 2 * sizeof(size_t) + klen + vlen;
    if (b->cap - b->len < need) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < need)
            cap *= 2;
        b->buf = xrealloc(b->buf, cap);
        b->cap = cap;
    }
    unsigned char *p = b->buf + b->len;
    p[0] = (unsigned char)op;
    p[1] = (unsigned char)cf;
    memcpy(p + 2, &klen, sizeof klen);
    memcpy(p + 2 + sizeof klen, &vlen, sizeof vlen);
    p += 2 + 2 * sizeof(size_t);
    if (klen)
        memcpy(p, key, klen);
    if (vlen)
        memcpy(p + klen, val, vlen);
    b->len += need;
    b->count++;
}

void joust_batch_put(joust_batch_t *b, joust_cf cf, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    batch_add(b, OP_PUT, cf, key, klen, val, vlen);
}

void joust_batch_delete(joust_batch_t *b, joust_cf cf, const void *key, size_t klen)
{
    batch_add(b, OP_DELETE, cf, key, klen, NULL, 0);
}

void joust_batch_delete_range(joust_batch_t *b, joust_cf cf, const void *begin, size_t blen,
                              const void *end, size_t elen)
{
    batch_add(b, OP_DELETE_RANGE, cf, begin, blen, end, elen);
}

size_t joust_batch_count(const joust_batch_t *b)
{
    assert(b);
    return b->count;
}

size_t joust_batch_bytes(const joust_batch_t *b)
{
    assert(b);
    return b->len;
}

void joust_batch_clear(joust_batch_t *b)
{
    assert(b);
    b->len = 0;
    b->count = 0;
    b->invalid = 0;
    for (size_t i = 0; i < b->nsides; i++) {
        b->sides[i].side->n = 0;
        b->sides[i].side->last = 0;
    }
}

int joust_store_write(joust_store_t *self, joust_batch_t *b, int sync)
{
    assert(self && b);
    if (b->invalid) {
        log_error("store: batch not written: an add failed (%s)", joust_strerror(b->invalid));
        return b->invalid;
    }
    int side_rc = sides_flushed(b);
    if (side_rc < 0)
        return side_rc;
    if (b->count == 0 && !sync)
        return 0;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    const unsigned char *p = b->buf, *end = b->buf + b->len;
    joust_cf first_cf = JOUST_CF_META;
    const void *first_key = "";
    size_t first_klen = 0;
    while (p < end) {
        int op = p[0];
        joust_cf cf = (joust_cf)p[1];
        size_t klen, vlen;
        memcpy(&klen, p + 2, sizeof klen);
        memcpy(&vlen, p + 2 + sizeof klen, sizeof vlen);
        const char *key = (const char *)p + 2 + 2 * sizeof(size_t);
        if (p == b->buf) {
            first_cf = cf;
            first_key = key;
            first_klen = klen;
        }
        if (op == OP_PUT)
            rocksdb_writebatch_put_cf(wb, self->cf[cf], key, klen, key + klen, vlen);
        else if (op == OP_DELETE_RANGE)
            rocksdb_writebatch_delete_range_cf(wb, self->cf[cf], key, klen, key + klen, vlen);
        else
            rocksdb_writebatch_delete_cf(wb, self->cf[cf], key, klen);
        p = (const unsigned char *)key + klen + vlen;
    }
    /* An empty synced write still syncs the WAL: a caller may rely on it to
     * make earlier unsynced writes durable. */
    int rc = write_batch(self, wb, sync, "write batch (first op shown)", first_cf, first_key,
                         first_klen);
    rocksdb_writebatch_destroy(wb);
    return rc;
}

/* ---- bulk load ---- */

typedef struct { /* 24 bytes: a load holds one per put */
    uint64_t k8;              /* the key's first 8 bytes, big-endian (zero-padded) */
    const unsigned char *key; /* the value follows it in the batch */
    uint32_t klen, vlen;      /* batch_add keeps both under 4 GiB */
} load_entry;

/* Key order as RocksDB's bytewise comparator; equal keys in batch order. */
static int load_cmp(const void *a, const void *b)
{
    const load_entry *x = a, *y = b;
    if (x->k8 != y->k8)
        return x->k8 < y->k8 ? -1 : 1;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = n > 8 ? memcmp(x->key + 8, y->key + 8, n - 8) : 0;
    if (c)
        return c;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key; /* batch order */
}

static uint64_t key_k8(const unsigned char *key, size_t klen)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (i < klen ? key[i] : 0);
    return v;
}

/* Writes one family's entries (sorted here) to path and ingests it. */
/* Sorts e by load_cmp: a stable radix sort on the keys' first 8 bytes
 * (a byte every entry shares takes no pass), then each run of entries with
 * the same first 8 bytes by load_cmp. Random keys (ingest's index hashes)
 * sorted by qsort were a quarter of a load's time. */
static void load_sort(load_entry *e, size_t n)
{
    load_entry *tmp = xmalloc(n * sizeof *e), *src = e, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[256] = {0}, pos = 0;
        for (size_t i = 0; i < n; i++)
            count[src[i].k8 >> shift & 255]++;
        if (count[src[0].k8 >> shift & 255] == n)
            continue;
        for (int b = 0; b < 256; b++) {
            size_t c = count[b];
            count[b] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[src[i].k8 >> shift & 255]++] = src[i];
        load_entry *t = src;
        src = dst;
        dst = t;
    }
    if (src != e)
        memcpy(e, src, n * sizeof *e);
    free(tmp);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && e[j].k8 == e[i].k8; j++)
            ;
        size_t k = i + 1;
        while (k < j && load_cmp(&e[k - 1], &e[k]) < 0)
            k++;
        if (k < j && j - i > 16) {
            qsort(e + i, j - i, sizeof *e, load_cmp);
            continue;
        }
        for (; k < j; k++) /* insertion: a short run */
            for (size_t m = k; m > i && load_cmp(&e[m - 1], &e[m]) > 0; m--) {
                load_entry t = e[m];
                e[m] = e[m - 1];
                e[m - 1] = t;
            }
    }
}

#define LOAD_PREFETCH 8

static int load_family(joust_store_t *self, joust_cf cf, load_entry *e, size_t n,
                       const char *path)
{
    size_t sorted = 1;
    while (sorted < n && load_cmp(&e[sorted - 1], &e[sorted]) < 0)
        sorted++;
    if (sorted < n) /* image keys, and most prompt keys, come in order */
        load_sort(e, n);
    char *err = NULL;
    if (!self->load_opts[cf]) {
        /* The family's options, but LZ4 where they have ZSTD for the
         * bottom level: a loaded file usually goes straight there, and
         * ZSTD was the largest cost of writing it. No filter in the files
         * of families whose keys are read only when they are there (an
         * image, a prompt and its members, by id: a filter answers "maybe"
         * to those, so it is built and never spares a read); a compaction
         * builds it with the family's own options. */
        self->load_opts[cf] = rocksdb_options_create_copy(self->cf_opts[cf]);
        rocksdb_options_set_bottommost_compression(self->load_opts[cf], rocksdb_lz4_compression);
        if (cf == JOUST_CF_IMAGES || cf == JOUST_CF_PROMPTS) {
            rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
            rocksdb_block_based_options_set_block_cache(t, self->cache);
            rocksdb_options_set_block_based_table_factory(self->load_opts[cf], t);
            rocksdb_block_based_options_destroy(t);
        }
    }
    rocksdb_envoptions_t *env = rocksdb_envoptions_create();
    rocksdb_sstfilewriter_t *w = rocksdb_sstfilewriter_create(env, self->load_opts[cf]);
    rocksdb_sstfilewriter_open(w, path, &err);
    for (size_t i = 0; i < n && !err; i++) {
        if (i + LOAD_PREFETCH < n) /* the batch is larger than the caches: ask ahead */
            __builtin_prefetch(e[i + LOAD_PREFETCH].key);
        if (i + 1 == n || e[i].k8 != e[i + 1].k8 || e[i].klen != e[i + 1].klen ||
            (e[i].klen > 8 && memcmp(e[i].key + 8, e[i + 1].key + 8, e[i].klen - 8) != 0))
            /* the last put of a key */
            rocksdb_sstfilewriter_put(w, (const char *)e[i].key, e[i].klen,
                                      (const char *)e[i].key + e[i].klen, e[i].vlen, &err);
    }
    if (!err)
        rocksdb_sstfilewriter_finish(w, &err);
    rocksdb_sstfilewriter_destroy(w);
    rocksdb_envoptions_destroy(env);
    if (!err) {
        rocksdb_ingestexternalfileoptions_t *io = rocksdb_ingestexternalfileoptions_create();
        rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
        const char *files[1] = {path};
        rocksdb_ingest_external_file_cf(self->db, self->cf[cf], files, 1, io, &err);
        rocksdb_ingestexternalfileoptions_destroy(io);
    }
    if (err)
        unlink(path); /* moved in on success */
    return err ? store_fail(&err, "bulk load", cf, e[0].key, e[0].klen) : 0;
}

/* One family's load on a thread of its own. */
typedef struct {
    joust_store_t *self;
    joust_cf cf;
    load_entry *e;
    size_t n;
    char *path;
    int rc;
} load_job;

static void *load_job_main(void *arg)
{
    load_job *j = arg;
    j->rc = load_family(j->self, j->cf, j->e, j->n, j->path);
    return NULL;
}

int joust_store_load(joust_store_t *self, joust_batch_t *b)
{
    assert(self && b);
    if (b->invalid) {
        log_error("store: batch not loaded: an add failed (%s)", joust_strerror(b->invalid));
        return b->invalid;
    }
    if (sides_flushed(b) < 0)
        return JOUST_EINVAL;
    if (b->count == 0)
        return 0;
    load_entry *e = xmalloc(b->count * sizeof *e);
    size_t per_cf[JOUST_CF_COUNT] = {0}, at[JOUST_CF_COUNT], n = 0;
    size_t bytes[JOUST_CF_COUNT] = {0};
    for (const unsigned char *p = b->buf, *end = b->buf + b->len; p < end;) {
        size_t klen, vlen;
        memcpy(&klen, p + 2, sizeof klen);
        memcpy(&vlen, p + 2 + sizeof klen, sizeof vlen);
        if (p[0] != OP_PUT) {
            free(e);
            log_error("store: bulk load of a batch with a delete (cf %s)",
                      joust_cf_name((joust_cf)p[1]));
            return JOUST_EINVAL;
        }
        per_cf[p[1]]++;
        bytes[p[1]] += klen + vlen + 16; /* ~ the work of writing it */
        p += 2 + 2 * sizeof(size_t) + klen + vlen;
    }
    /* entries grouped by family, in batch order within each */
    for (int c = 0; c < JOUST_CF_COUNT; n += per_cf[c++])
        at[c] = n;
    for (const unsigned char *p = b->buf, *end = b->buf + b->len; p < end;) {
        size_t klen, vlen;
        memcpy(&klen, p + 2, sizeof klen);
        memcpy(&vlen, p + 2 + sizeof klen, sizeof vlen);
        const unsigned char *key = p + 2 + 2 * sizeof(size_t);
        e[at[p[1]]++] = (load_entry){key_k8(key, klen), key, (uint32_t)klen, (uint32_t)vlen};
        p = key + klen + vlen;
    }
    int fault = 0, rc = write_begin(self, "bulk load", &fault);
    char *err = NULL;
    if (rc == 0 && fault == JOUST_FAULT_WRITE)
        err = xstrdup("IO error: No space left on device (injected: nothing written)");
    /* With two families or more, the one with the most bytes is written by
     * a thread of its own while this one writes the others (each family
     * has its own file name, and ingesting files is thread-safe). */
    int largest = -1, families = 0;
    for (int c = 0; c < JOUST_CF_COUNT; c++)
        if (per_cf[c]) {
            families++;
            if (largest < 0 || bytes[c] > bytes[largest])
                largest = c;
        }
    size_t path_len = strlen(self->path) + 64;
    char *path = xmalloc(path_len);
    load_job job = {.self = self, .cf = (joust_cf)largest}, *jp = NULL;
    pthread_t th;
    if (rc == 0 && !err && families > 1) {
        job.e = e + at[largest] - per_cf[largest];
        job.n = per_cf[largest];
        job.path = xmalloc(path_len);
        snprintf(job.path, path_len, "%s/load-%s.sst.tmp", self->path, cf_names[largest]);
        if (pthread_create(&th, NULL, load_job_main, &job) == 0)
            jp = &job;
    }
    for (int c = 0, from = 0; rc == 0 && !err && c < JOUST_CF_COUNT; from += (int)per_cf[c++]) {
        if (!per_cf[c] || (jp && c == largest))
            continue;
        snprintf(path, path_len, "%s/load-%s.sst.tmp", self->path, cf_names[c]);
        rc = load_family(self, (joust_cf)c, e + from, per_cf[c], path);
    }
    if (jp) {
        pthread_join(th, NULL);
        if (rc == 0)
            rc = job.rc;
    }
    free(job.path);
    free(path);
    free(e);
    if (rc < 0) { /* logged; the store refuses later writes as after a failed write */
        __atomic_store_n(&self->failed, rc, __ATOMIC_RELEASE);
        return rc;
    }
    return rc == 0 ? write_end(self, err, fault, "bulk load", JOUST_CF_META, "", 0) : rc;
}

/* ---- iteration ---- */

static void iter_check_end(joust_iter_t *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (err) {
        store_fail(&err, "iterate", it->cf, it->lower, it->plen);
        it->err = JOUST_ESTORE;
    }
}

static int iter_open(joust_store_t *self, joust_cf cf, const void *prefix, size_t plen, int scan,
                     joust_iter_t **out);

int joust_iter_new(joust_store_t *self, joust_cf cf, const void *prefix, size_t plen,
                   joust_iter_t **out)
{
    return iter_open(self, cf, prefix, plen, 0, out);
}

int joust_iter_new_scan(joust_store_t *self, joust_cf cf, const void *prefix, size_t plen,
                        joust_iter_t **out)
{
    return iter_open(self, cf, prefix, plen, 1, out);
}

static int iter_open(joust_store_t *self, joust_cf cf, const void *prefix, size_t plen, int scan,
                     joust_iter_t **out)
{
    assert(self && (prefix || plen == 0) && out);
    *out = NULL;
    if (!valid_cf(cf))
        return JOUST_EINVAL;
    joust_iter_t *it = xcalloc(1, sizeof *it);
    it->store = self;
    it->cf = cf;
    it->plen = plen;
    it->lower = xmalloc(plen ? plen : 1);
    if (plen)
        memcpy(it->lower, prefix, plen);
    it->ulen = prefix_successor(prefix, plen, &it->upper);
    it->ro = rocksdb_readoptions_create();
    if (plen) {
        rocksdb_readoptions_set_iterate_lower_bound(it->ro, (const char *)it->lower, plen);
        if (it->upper)
            rocksdb_readoptions_set_iterate_upper_bound(it->ro, (const char *)it->upper,
                                                        it->ulen);
    }
    if (!plen || scan) {
        /* A whole-family scan (e.g. a BT fit) would only evict hot blocks. */
        rocksdb_readoptions_set_fill_cache(it->ro, 0);
    }
    if (scan) {
        /* Read once, front to back: large reads ahead, and no block
         * checksums (a damaged record still fails to unpack). */
        rocksdb_readoptions_set_readahead_size(it->ro, STORE_SCAN_READAHEAD);
        rocksdb_readoptions_set_verify_checksums(it->ro, 0);
    }
    /* A family an older store lacks (opened read-only): no iterator, no key. */
    it->it = self->cf[cf] ? rocksdb_create_iterator_cf(self->db, it->ro, self->cf[cf]) : NULL;
    joust_iter_seek(it, NULL, 0);
    *out = it;
    return it->err;
}

void joust_iter_seek(joust_iter_t *it, const void *from, size_t flen)
{
    assert(it && (from || flen == 0));
    if (it->err || !it->it)
        return;
    if (it->plen == 0 && flen == 0) {
        rocksdb_iter_seek_to_first(it->it);
    } else if (flen == 0) {
        rocksdb_iter_seek(it->it, (const char *)it->lower, it->plen);
    } else {
        unsigned char stackbuf[256];
        size_t n = it->plen + flen;
        unsigned char *k = n <= sizeof stackbuf ? stackbuf : xmalloc(n);
        if (it->plen)
            memcpy(k, it->lower, it->plen);
        memcpy(k + it->plen, from, flen);
        rocksdb_iter_seek(it->it, (const char *)k, n); /* the target is not kept */
        if (k != stackbuf)
            free(k);
    }
    if (!rocksdb_iter_valid(it->it))
        iter_check_end(it);
}

int joust_iter_valid(joust_iter_t *it)
{
    assert(it);
    if (it->err || !it->it || !rocksdb_iter_valid(it->it))
        return 0;
    /* The bounds already guarantee this; checked anyway because it is
     * cheap and the all-0xff prefix has no upper bound. */
    size_t klen = 0;
    const char *k = rocksdb_iter_key(it->it, &klen);
    return klen >= it->plen && memcmp(k, it->lower, it->plen) == 0;
}

void joust_iter_next(joust_iter_t *it)
{
    assert(it);
    /* Next on an invalid RocksDB iterator is undefined behaviour. */
    if (it->err || !it->it || !rocksdb_iter_valid(it->it))
        return;
    rocksdb_iter_next(it->it);
    if (!rocksdb_iter_valid(it->it))
        iter_check_end(it);
}

const void *joust_iter_key(joust_iter_t *it, size_t *klen)
{
    assert(it && klen);
    if (!joust_iter_valid(it)) {
        *klen = 0;
        return NULL;
    }
    return rocksdb_iter_key(it->it, klen);
}

const void *joust_iter_value(joust_iter_t *it, size_t *vlen)
{
    assert(it && vlen);
    if (!joust_iter_valid(it)) {
        *vlen = 0;
        return NULL;
    }
    return rocksdb_iter_value(it->it, vlen);
}

int joust_iter_error(joust_iter_t *it)
{
    assert(it);
    return it->err;
}

void joust_iter_destroy(joust_iter_t **self_p)
{
    assert(self_p);
    joust_iter_t *it = *self_p;
    if (!it)
        return;
    /* Iterator first: it points into ro, which points into lower/upper. */
    if (it->it)
        rocksdb_iter_destroy(it->it);
    if (it->ro)
        rocksdb_readoptions_destroy(it->ro);
    free(it->lower);
    free(it->upper);
    free(it);
    *self_p = NULL;
}

/* ---- range deletion ---- */

int joust_store_delete_prefix(joust_store_t *self, joust_cf cf, const void *prefix, size_t plen)
{
    assert(self && (prefix || plen == 0));
    if (!valid_cf(cf))
        return JOUST_EINVAL;
    unsigned char *upper = NULL;
    size_t ulen = prefix_successor(prefix, plen, &upper);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    int rc = 0;
    if (upper) {
        /* One range tombstone instead of a tombstone per key. */
        rocksdb_writebatch_delete_range_cf(wb, self->cf[cf], plen ? prefix : "", plen,
                                           (const char *)upper, ulen);
    } else {
        /* Empty or all-0xff prefix: no exclusive end key exists, so delete
         * key by key (still one atomic write). */
        joust_iter_t *it = NULL;
        rc = joust_iter_new(self, cf, prefix, plen, &it);
        for (; rc == 0 && joust_iter_valid(it); joust_iter_next(it)) {
            size_t klen;
            const void *k = joust_iter_key(it, &klen);
            rocksdb_writebatch_delete_cf(wb, self->cf[cf], k, klen);
        }
        if (rc == 0)
            rc = joust_iter_error(it);
        joust_iter_destroy(&it);
    }
    if (rc == 0)
        rc = write_batch(self, wb, 0, "delete prefix", cf, plen ? prefix : "", plen);
    rocksdb_writebatch_destroy(wb);
    free(upper);
    return rc;
}

/* ---- maintenance and sizes ---- */

int joust_store_compact(joust_store_t *self)
{
    assert(self);
    if (self->readonly)
        return JOUST_EUNSUPPORTED;
    for (int i = 0; i < JOUST_CF_COUNT; i++)
        rocksdb_compact_range_cf(self->db, self->cf[i], NULL, 0, NULL, 0);
    return 0;
}

static uint64_t cf_property(joust_store_t *self, joust_cf cf, const char *name)
{
    uint64_t v = 0;
    return self->cf[cf] && rocksdb_property_int_cf(self->db, self->cf[cf], name, &v) == 0 ? v : 0;
}

uint64_t joust_store_sst_bytes(joust_store_t *self, joust_cf cf)
{
    assert(self && valid_cf(cf));
    return cf_property(self, cf, "rocksdb.total-sst-files-size");
}

void joust_store_memory(joust_store_t *self, joust_store_mem *out)
{
    assert(self && out);
    memset(out, 0, sizeof *out);
    for (int i = 0; i < JOUST_CF_COUNT; i++) {
        out->memtables += cf_property(self, (joust_cf)i, "rocksdb.cur-size-all-mem-tables");
        out->table_readers += cf_property(self, (joust_cf)i, "rocksdb.estimate-table-readers-mem");
    }
    out->block_cache = rocksdb_cache_get_usage(self->cache);
}
