#include "ingest.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "confine.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "manifest_src.h"
#include "records.h"
#include "safe_open.h"
#include "u64map.h"
#include "tar_member.h"
#include "uri.h"
#include "xalloc.h"

#define COMMIT_LINES 10000
#define MAX_REPORTED 20
/* Lines handed to a parser thread at a time, and at most this many bytes
 * of them (a longer line goes alone). */
#define CHUNK_LINES 2048
#define CHUNK_BYTES (1 << 20)
#define MAX_PARSERS 8
/* Index entries kept in memory across commits (the store has them too): a
 * prompt's next image, an id seen again, need no store read. Cleared when
 * larger, so memory stays bounded. */
#define INDEX_CACHE_MAX (1u << 18)
/* Index entries kept in memory before they are loaded (see commit). */
#define INDEX_LOAD_MAX (1u << 19)

typedef struct {
    uint64_t kind, hash, value;
} index_entry;

typedef struct {
    joust_store_t *st;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    joust_batch_t *batch; /* being loaded, or NULL */
    int rc, stop, started;
} batch_writer;


/* Index lookups see the store plus what the open batch has added. */
typedef struct {
    joust_store_t *st;
    joust_batch_t *batch;
    joust_u64map_t pending[3]; /* by index kind: the open batch's entries and a cache */
    uint64_t next_image, next_prompt;
    uint64_t last_group_hash, last_prompt; /* the prompt of the line added last */
    int last_prompt_set;
    char *dir;                 /* manifest folder, for relative paths */
    const char *path;
    joust_ingest_stats *stats;
    joust_ingest_opts opts;
    FILE *bad;                 /* the bad-lines temp file, or NULL */
    joust_path_roots roots;    /* images must lie inside; none: --allow-any-path */
    joust_buf_t bad_line;
    uint64_t *filter, filter_mask; /* the keys the indexes hold (Bloom), mask of its words */
    uint64_t store_reads;          /* index reads the filter did not spare */
    index_entry *puts;             /* the open batch's index entries, put at commit */
    size_t n_puts, puts_cap;
    joust_batch_t *spare;          /* the batch the writer gave back */
    batch_writer writer;
} ingest;

enum { IDX_PROMPT_KEY, IDX_CONTENT, IDX_CALLER_ID };
static const joust_rec_index idx_of[3] = {JOUST_INDEX_GROUP, JOUST_INDEX_CONTENT,
                                          JOUST_INDEX_CALLER_ID};

/* A Bloom filter of every index key the store holds (loaded with one
 * iterator per index at the start) and every key this ingest adds: a key
 * it does not hold is absent for sure, so the common case — a new id, a
 * new file, a new prompt — needs neither a look in the maps nor a store
 * read (a read of an absent key costs a probe of every level-0 file, more
 * as the store grows). Blocked: a key's three bits lie in one 64-bit word,
 * so a lookup costs one cache miss, not three. Its size is fixed at the
 * start (at most 16 MiB): with more keys than planned it answers "maybe"
 * more often and ingest reads the store more, never wrongly. */
#define FILTER_MAX_BITS (1ull << 27)

static uint64_t filter_mix(int kind, uint64_t h)
{
    h ^= (uint64_t)(kind + 1) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* The key's word (high bits) and its three bits there (low bits). */
static uint64_t *filter_word(const ingest *in, int kind, uint64_t h, uint64_t *bits)
{
    uint64_t x = filter_mix(kind, h);
    *bits = 1ull << (x & 63) | 1ull << (x >> 6 & 63) | 1ull << (x >> 12 & 63);
    return &in->filter[(x >> 24) & in->filter_mask];
}

static void filter_add(ingest *in, int kind, uint64_t h)
{
    uint64_t bits, *w = filter_word(in, kind, h, &bits);
    *w |= bits;
}

static int filter_maybe(const ingest *in, int kind, uint64_t h)
{
    uint64_t bits, *w = filter_word(in, kind, h, &bits);
    return (*w & bits) == bits;
}

typedef struct {
    ingest *in;
    int kind;
} filter_load;

static void filter_load_one(uint64_t hash, uint64_t value, void *arg)
{
    filter_load *fl = arg;
    (void)value;
    filter_add(fl->in, fl->kind, hash);
}

/* Sized for the keys the store holds and those the manifest may add (about
 * one line per 40 bytes, an id and a content hash per line): 16 bits per
 * key, a power of two between 2^16 and FILTER_MAX_BITS. */
static int filter_init(ingest *in, size_t manifest_bytes)
{
    uint64_t keys = 2 * (in->next_image + manifest_bytes / 40) + in->next_prompt, bits = 1u << 16;
    while (bits < 16 * keys && bits < FILTER_MAX_BITS)
        bits <<= 1;
    in->filter = xcalloc(bits / 64, sizeof *in->filter);
    in->filter_mask = bits / 64 - 1; /* of the words */
    int rc = 0;
    for (int k = 0; k < 3 && rc == 0; k++) {
        filter_load fl = {in, k};
        rc = joust_rec_index_each(in->st, idx_of[k], filter_load_one, &fl);
    }
    return rc;
}

/* The filter first: it holds every key of the maps too. */
static int index_get(ingest *in, int kind, uint64_t h, uint64_t *out)
{
    if (!filter_maybe(in, kind, h))
        return 0;
    if (joust_u64map_get(&in->pending[kind], h ? h : 1, out))
        return 1;
    in->store_reads++;
    return joust_rec_index_get(in->st, idx_of[kind], h, out) == 0;
}

/* Index entries are listed here and in the maps, and go into a batch at a
 * commit that loads them (joust_store_load sorts each family's keys). */
static void index_put(ingest *in, int kind, uint64_t h, uint64_t id)
{
    joust_u64map_put(&in->pending[kind], h ? h : 1, id);
    filter_add(in, kind, h);
    xgrow((void **)&in->puts, &in->puts_cap, in->n_puts + 1, sizeof *in->puts);
    in->puts[in->n_puts++] = (index_entry){(uint64_t)kind, h, id};
}

static void index_flush(ingest *in)
{
    for (size_t i = 0; i < in->n_puts; i++)
        joust_rec_index_put(in->batch, idx_of[in->puts[i].kind], in->puts[i].hash,
                            in->puts[i].value);
}

/* ---- the writer thread ---------------------------------------------------
 * A full batch is bulk-loaded (store.h joust_store_load: sorted SST files,
 * no WAL, no memtable) by a thread of its own while the next one is built:
 * the caller hands it over (waiting while the previous one is still being
 * loaded) and takes the spare. The first failed load is kept and returned
 * by every later commit. */

static void *writer_main(void *arg)
{
    batch_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && !w->batch)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->batch)
            break;
        joust_batch_t *b = w->batch;
        pthread_mutex_unlock(&w->mu);
        int rc = w->rc == 0 ? joust_store_load(w->st, b) : w->rc;
        joust_batch_clear(b);
        pthread_mutex_lock(&w->mu);
        if (rc < 0 && w->rc == 0)
            w->rc = rc;
        w->batch = NULL;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Waits until the batch handed over last is written; its result. */
static int writer_wait(batch_writer *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->batch)
        pthread_cond_wait(&w->cv, &w->mu);
    int rc = w->rc;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Hands *b over and gives back the spare batch in its place. */
static void writer_put(batch_writer *w, joust_batch_t **b, joust_batch_t **spare)
{
    if (!w->started) { /* no thread: load here */
        int rc = w->rc == 0 ? joust_store_load(w->st, *b) : w->rc;
        joust_batch_clear(*b);
        if (rc < 0 && w->rc == 0)
            w->rc = rc;
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->batch = *b;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    joust_batch_t *t = *b;
    *b = *spare;
    *spare = t;
}

static void writer_start(batch_writer *w, joust_store_t *st)
{
    *w = (batch_writer){.st = st};
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->started = pthread_create(&w->th, NULL, writer_main, w) == 0;
}

static void writer_stop(batch_writer *w)
{
    if (w->started) {
        writer_wait(w);
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* Hands the open batch to the writer (last: and waits until it is loaded).
 * The counters are not in it: they move in the final write.
 * Index entries wait in the maps (where lookups find them) until
 * INDEX_LOAD_MAX of them, or the last batch, go with a batch: their keys
 * are random, so each load of them is a level-0 file that overlaps every
 * other, and fewer, larger ones cost less compaction than one per batch.
 * Once loaded, the maps stay as a cache of what is in the store (one
 * ingest per store at a time, so nothing else changes the indexes),
 * cleared when larger than INDEX_CACHE_MAX.
 * Returns the first load error so far. */
static int commit(ingest *in, int last)
{
    int with_index = last || in->n_puts >= INDEX_LOAD_MAX;
    if (with_index)
        index_flush(in);
    int rc = writer_wait(&in->writer);
    if (rc == 0)
        writer_put(&in->writer, &in->batch, &in->spare);
    if (rc == 0 && with_index) {
        rc = writer_wait(&in->writer);
        in->n_puts = 0;
        for (int i = 0; i < 3; i++)
            if (in->pending[i].len > INDEX_CACHE_MAX)
                joust_u64map_clear(&in->pending[i]);
    }
    return rc;
}

void joust_ingest_opts_defaults(joust_ingest_opts *o)
{
    *o = (joust_ingest_opts){.duplicate_ids = JOUST_DUP_IDS_ERROR, .max_logged = MAX_REPORTED,
                             .max_image_bytes = JOUST_INGEST_MAX_IMAGE_BYTES};
}

/* Every bad line goes to the bad-lines file; the log shows the first
 * max_logged of them, or all of them when there is no file. */
static void line_error(ingest *in, uint64_t line, const char *why)
{
    uint64_t n = ++in->stats->errors;
    if (!in->bad || n <= in->opts.max_logged)
        log_warn("%s:%llu: %s (line skipped)", in->path, (unsigned long long)line, why);
    if (in->bad) {
        joust_buf_t *b = &in->bad_line;
        joust_buf_reset(b);
        joust_buf_puts(b, "{\"manifest\":");
        joust_buf_json_str(b, in->path);
        joust_buf_printf(b, ",\"line\":%llu,\"error\":", (unsigned long long)line);
        joust_buf_json_str(b, why);
        joust_buf_puts(b, "}\n");
        fwrite(b->data, 1, b->len, in->bad);
    }
}

/* The bad-lines file is written under a temporary name and renamed when
 * complete, so a file under the final name always lists every bad line. */
static char *bad_tmp_path(const char *path)
{
    joust_buf_t b = {0};
    joust_buf_printf(&b, "%s.tmp", path);
    return b.data;
}

static int bad_lines_finish(ingest *in, int ok)
{
    if (!in->bad)
        return 0;
    char *tmp = bad_tmp_path(in->opts.bad_lines_path);
    int rc = fclose(in->bad) == 0 && ok ? 0 : JOUST_EIO;
    in->bad = NULL;
    if (rc == 0 && in->stats->errors == 0) {
        /* no bad lines: no file, and none left from an earlier ingest */
        unlink(tmp);
        if (unlink(in->opts.bad_lines_path) != 0 && errno != ENOENT)
            rc = JOUST_EIO;
    } else if (rc == 0 && rename(tmp, in->opts.bad_lines_path) != 0) {
        rc = JOUST_EIO;
    }
    if (rc < 0) {
        if (ok)
            log_error("cannot write %s: %s", in->opts.bad_lines_path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* ---- the parser threads --------------------------------------------------
 * Lines go to the parser threads in chunks; a thread parses each line,
 * resolves, confines and hashes its image (the file system work, which is
 * what parallel threads pay for) and hashes its keys; the main thread takes
 * the chunks back in order and does everything that depends on earlier
 * lines (ids, prompts, duplicates, the remote check, messages) and the
 * writes. A parsed line's strings lie in its chunk's arena (no allocation
 * per line, nothing freed by another thread). Memory: at most RING chunks
 * of CHUNK_LINES lines are in flight. */

/* A bump allocator of blocks kept for reuse: reset gives every byte back. */
#define ARENA_BLOCK ((size_t)1 << 20)

typedef struct arena_block {
    struct arena_block *next;
    size_t cap, len;
    char data[];
} arena_block;

typedef struct {
    arena_block *head, *cur;
} arena;

/* n bytes of room at the arena's end (taken with arena_commit). */
static char *arena_reserve(arena *a, size_t n)
{
    if (a->cur && a->cur->cap - a->cur->len >= n)
        return a->cur->data + a->cur->len;
    arena_block *b = a->cur ? a->cur->next : a->head;
    if (!b || b->cap < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        arena_block *nb = xmalloc(sizeof *nb + cap);
        nb->cap = cap;
        nb->next = b;
        if (a->cur)
            a->cur->next = nb;
        else
            a->head = nb;
        b = nb;
    }
    b->len = 0;
    a->cur = b;
    return b->data;
}

static void arena_commit(arena *a, size_t n) { a->cur->len += n; }

static char *arena_strdup(arena *a, const char *str)
{
    size_t n = strlen(str) + 1;
    char *d = arena_reserve(a, n);
    memcpy(d, str, n);
    arena_commit(a, n);
    return d;
}

static void arena_reset(arena *a) { a->cur = NULL; }

static void arena_free(arena *a)
{
    for (arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = a->cur = NULL;
}

typedef struct {
    uint64_t lineno;
    int bad;      /* skipped: why is the reason */
    int remote;   /* a remote reference: check_remote is asked in order */
    int missing;  /* a local file that is missing or unreadable: why says so, or NULL
                   * for a file in a folder that does not exist ("<uri>: ENOENT") */
    int hashed;
    uint64_t hash;
    uint64_t group_hash, id_hash; /* the prompt's index key; the id's (0 without one) */
    manifest_item item;
    char *uri;    /* the reference stored */
    char *remote_path; /* a remote shard member's shard (else uri) for check_remote */
    char *why;
} parsed_line;

typedef struct {
    size_t off, len;
    uint64_t no;
} line_ref;

enum { CHUNK_EMPTY, CHUNK_FILLED, CHUNK_PARSING, CHUNK_PARSED };

typedef struct {
    char *text;
    size_t len, cap;
    line_ref *lines;
    parsed_line *out;
    size_t n;
    int state;
    arena strings; /* of the parsed lines */
} chunk;

typedef struct {
    const ingest *in; /* read-only for the threads: dir, roots, opts */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    chunk *ring;
    size_t nring;
    uint64_t parse_next, fill_next;
    int stop;
} parse_pool;

static char *image_why(const manifest_item *it, const char *why)
{
    joust_buf_t b = {0};
    joust_buf_printf(&b, "image \"%.*s\": %s", 200, it->image, why);
    return b.data;
}

static char *image_why_in(arena *a, const manifest_item *it, const char *why)
{
    char *w = image_why(it, why), *d = arena_strdup(a, w);
    free(w);
    return d;
}

/* The canonical forms of folders seen (common/confine.h), DIR_CACHE of
 * them per thread (128 KiB), a folder's slot picked by its hash: a manifest that
 * cycles through many folders still finds each one's verdict (one realpath
 * per folder, not per change of folder). */
#define DIR_CACHE 4096

typedef struct {
    joust_confine_cache slot[DIR_CACHE];
} dir_cache;

static void dir_cache_free(dir_cache *d)
{
    for (size_t i = 0; i < DIR_CACHE; i++)
        joust_confine_cache_free(&d->slot[i]);
}

/* The cache for path's folder; *missing: the folder is one the cache knows
 * does not exist (inside the roots), so the file is missing and confining
 * it would only say so (joust_path_confine_cached's verdict for it). */
static joust_confine_cache *dir_cache_for(dir_cache *d, const char *path, int *missing)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    joust_confine_cache *c = &d->slot[joust_hash64(path, dlen) % DIR_CACHE];
    *missing = slash && slash != path && slash[1] && strcmp(slash + 1, ".") &&
               strcmp(slash + 1, "..") && c->dir && c->missing_rc == JOUST_ENOTFOUND &&
               !c->real && !strncmp(c->dir, path, dlen) && c->dir[dlen] == '\0';
    return c;
}

/* The image reference as the worker will read it (common/uri.h, the
 * parser the worker's image stage uses): a local path, relative ones joined
 * to the manifest's folder. A remote reference is kept as given (checked
 * later, in order, with opts.check_remote when set; never downloaded). The
 * file is hashed through common/safe_open.h, so a FIFO, a device, a
 * directory or a socket is a bad line at once (never opened for reading,
 * never read); a file that does not exist (yet) or that the coordinator
 * may not read is kept with a warning, because the workers may see it. */
static void resolve_image(const ingest *in, dir_cache *dirs, arena *a, parsed_line *pl)
{
    const manifest_item *it = &pl->item;
    joust_uri ref;
    char why[512];
    int rc = joust_uri_parse(it->image, in->dir, &ref, why, sizeof why);
    if (rc) {
        pl->bad = 1;
        pl->why = image_why_in(a, it, why);
        return;
    }
    if (joust_uri_is_remote(&ref)) {
        pl->remote = 1;
        if (ref.scheme == JOUST_URI_TAR) { /* a member of a remote shard, kept whole */
            char *m = joust_uri_format_member(&ref);
            pl->uri = arena_strdup(a, m);
            free(m);
            /* the shard is what check_remote asks about */
            pl->remote_path = arena_strdup(a, ref.path);
        } else {
            pl->uri = arena_strdup(a, ref.path);
        }
        joust_uri_clear(&ref);
        return;
    }
    /* Confined before anything is opened: a file outside is never hashed
     * (its content could otherwise be probed by the duplicate warning). */
    char *real = NULL;
    int known_missing = 0;
    joust_confine_cache *cache = dir_cache_for(dirs, ref.path, &known_missing);
    if (known_missing && ref.scheme != JOUST_URI_TAR) { /* the reason is made if it is shown */
        pl->missing = 1;
        pl->uri = arena_strdup(a, ref.path);
        joust_uri_clear(&ref);
        return;
    }
    rc = joust_path_confine_cached(&in->roots, cache, ref.path, &real, why, sizeof why);
    if (rc && rc != JOUST_ENOTFOUND) {
        pl->bad = 1;
        pl->why = image_why_in(a, it, why);
        joust_uri_clear(&ref);
        return;
    }
    if (rc == 0 && ref.scheme == JOUST_URI_TAR && ref.compressed) {
        /* a member of a compressed shard: reading it costs decompressing
         * the shard up to it, so it is not hashed (like a remote image) */
    } else if (rc == 0 && ref.scheme == JOUST_URI_TAR) { /* a shard member: hash just its bytes */
        unsigned char *data;
        size_t len;
        rc = joust_tar_member_read(&ref, real, 0, in->opts.max_image_bytes, &data, &len, why,
                                   sizeof why);
        if (rc == 0)
            pl->hash = joust_hash64(data, len);
        free(data);
    } else if (rc == 0) {
        rc = joust_hash_file(real, in->opts.max_image_bytes, &pl->hash, why, sizeof why);
    }
    free(real);
    if (rc == JOUST_ENOTFOUND || rc == JOUST_EDENIED) {
        pl->missing = 1;
        pl->why = arena_strdup(a, why);
    } else if (rc) {
        pl->bad = 1;
        pl->why = image_why_in(a, it, why);
        joust_uri_clear(&ref);
        return;
    } else {
        pl->hashed = !(ref.scheme == JOUST_URI_TAR && ref.compressed);
    }
    if (ref.scheme == JOUST_URI_TAR) { /* stored as the full reference, shard path resolved */
        char *m = joust_uri_format_member(&ref);
        pl->uri = arena_strdup(a, m);
        free(m);
    } else {
        pl->uri = arena_strdup(a, ref.path);
    }
    joust_uri_clear(&ref);
}

static void parse_chunk(const ingest *in, dir_cache *dirs, chunk *c)
{
    char why[512];
    arena *a = &c->strings;
    arena_reset(a);
    for (size_t i = 0; i < c->n; i++) {
        parsed_line *pl = &c->out[i];
        memset(pl, 0, sizeof *pl);
        pl->lineno = c->lines[i].no;
        size_t len = c->lines[i].len, used;
        if (len > MANIFEST_MAX_LINE) { /* not kept: reported by its length */
            pl->bad = 1;
            snprintf(why, sizeof why, "line longer than %d bytes", MANIFEST_MAX_LINE);
            pl->why = arena_strdup(a, why);
            continue;
        }
        char *buf = arena_reserve(a, MANIFEST_BUF_BYTES(len));
        if (manifest_parse_line_buf(c->text + c->lines[i].off, len, buf, &used, &pl->item, why,
                                    sizeof why) < 0) {
            pl->bad = 1;
            pl->why = arena_strdup(a, why);
            continue;
        }
        arena_commit(a, used);
        const manifest_item *it = &pl->item;
        pl->group_hash = joust_hash64(it->group_key, strlen(it->group_key));
        pl->id_hash = it->id ? joust_hash64(it->id, strlen(it->id)) : 0;
        resolve_image(in, dirs, a, pl);
    }
}

static void *parser_main(void *arg)
{
    parse_pool *pp = arg;
    dir_cache *dirs = xcalloc(1, sizeof *dirs);
    pthread_mutex_lock(&pp->mu);
    for (;;) {
        while (!pp->stop && pp->parse_next == pp->fill_next)
            pthread_cond_wait(&pp->cv, &pp->mu);
        if (pp->parse_next == pp->fill_next)
            break; /* stopped and nothing left */
        chunk *c = &pp->ring[pp->parse_next++ % pp->nring];
        c->state = CHUNK_PARSING;
        pthread_mutex_unlock(&pp->mu);
        parse_chunk(pp->in, dirs, c);
        pthread_mutex_lock(&pp->mu);
        c->state = CHUNK_PARSED;
        pthread_cond_broadcast(&pp->cv);
    }
    pthread_mutex_unlock(&pp->mu);
    dir_cache_free(dirs);
    free(dirs);
    return NULL;
}

/* The rest lies in the chunk's arena (reset when it is parsed again). */
static void chunk_release(chunk *c)
{
    for (size_t i = 0; i < c->n && c->state == CHUNK_PARSED; i++)
        manifest_item_clear(&c->out[i].item); /* lines read by cJSON */
    c->n = c->len = 0;
    c->state = CHUNK_EMPTY;
}

/* Adds a line to the chunk (a line over MANIFEST_MAX_LINE is not copied:
 * its length says what is wrong with it). 1 when the chunk is full. */
static int chunk_add(chunk *c, const char *line, size_t n, uint64_t no)
{
    size_t keep = n > MANIFEST_MAX_LINE ? 0 : n;
    if (c->len + keep + 1 > c->cap) {
        c->cap = c->len + keep + 1 > 2 * c->cap ? c->len + keep + 1 : 2 * c->cap;
        c->text = xrealloc(c->text, c->cap);
    }
    memcpy(c->text + c->len, line, keep);
    c->text[c->len + keep] = '\0';
    c->lines[c->n++] = (line_ref){c->len, n, no};
    c->len += keep + 1;
    return c->n == CHUNK_LINES || c->len >= CHUNK_BYTES;
}

static uint64_t prompt_for(ingest *in, const parsed_line *pl)
{
    const manifest_item *it = &pl->item;
    uint64_t h = pl->group_hash, id;
    if (in->last_prompt_set && h == in->last_group_hash) /* the line before's prompt */
        return in->last_prompt;
    in->last_prompt_set = 1;
    in->last_group_hash = h;
    if (index_get(in, IDX_PROMPT_KEY, h, &id))
        return in->last_prompt = id;
    in->last_prompt = id = in->next_prompt++;
    index_put(in, IDX_PROMPT_KEY, h, id);
    Joust__PromptRecord p = JOUST__PROMPT_RECORD__INIT;
    p.prompt_id = id;
    p.text = it->prompt;
    p.caller_id = it->prompt_id;
    joust_rec_prompt_put(in->batch, &p);
    in->stats->prompts++;
    return id;
}

/* An ImageRecord's protobuf encoding (proto/joust.proto), as protobuf-c
 * packs it: fields in number order, optional ones when set (strings when
 * not NULL), without protobuf-c's two strlen passes over every string.
 * test_ingest_same checks every record ingest writes against protobuf-c. */
static unsigned char *pb_varint(unsigned char *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *o++ = (unsigned char)v;
    return o;
}

static unsigned char *pb_string(unsigned char *o, unsigned tag, const char *str, size_t n)
{
    *o++ = (unsigned char)tag;
    o = pb_varint(o, n);
    memcpy(o, str, n);
    return o + n;
}

/* Bytes image_pack may write for strings of these lengths. */
#define IMAGE_PACK_MAX(strings) ((strings) + 8 * 11 + 9)

static size_t image_pack(unsigned char *out, const Joust__ImageRecord *r, size_t ulen, size_t mlen,
                         size_t clen, size_t jlen)
{
    unsigned char *o = out;
    *o++ = 0x08;
    o = pb_varint(o, r->image_id);
    *o++ = 0x10;
    o = pb_varint(o, r->prompt_id);
    o = pb_string(o, 0x1a, r->uri, ulen);
    if (r->model)
        o = pb_string(o, 0x22, r->model, mlen);
    if (r->caller_id)
        o = pb_string(o, 0x2a, r->caller_id, clen);
    if (r->has_content_hash) {
        *o++ = 0x30;
        o = pb_varint(o, r->content_hash);
    }
    if (r->has_latent) {
        *o++ = 0x39;
        memcpy(o, &r->latent, 8); /* little-endian, as the wire format */
        o += 8;
    }
    if (r->meta_json)
        o = pb_string(o, 0x42, r->meta_json, jlen);
    if (r->has_line) {
        *o++ = 0x48;
        o = pb_varint(o, r->line);
    }
    return (size_t)(o - out);
}

/* "#<id>" (MANIFEST_GENERATED_ID_FMT) without printf. */
static void generated_id(char *buf, uint64_t id)
{
    char digits[24];
    int n = 0;
    do
        digits[n++] = (char)('0' + id % 10);
    while ((id /= 10) != 0);
    *buf++ = '#';
    while (n)
        *buf++ = digits[--n];
    *buf = '\0';
}

/* A parsed line in manifest order: the checks that depend on earlier lines,
 * then the records. */
static void add_line(ingest *in, parsed_line *pl)
{
    uint64_t line = pl->lineno;
    const manifest_item *it = &pl->item;
    if (pl->bad) {
        line_error(in, line, pl->why);
        return;
    }
    char why[512];
    int rc;
    if (pl->remote && in->opts.check_remote &&
        (rc = in->opts.check_remote(in->opts.check_remote_ctx,
                                    pl->remote_path ? pl->remote_path : pl->uri, why,
                                    sizeof why))) {
        if (rc != JOUST_EAGAIN) {
            char *msg = image_why(it, why);
            line_error(in, line, msg);
            free(msg);
            return;
        }
        if (++in->stats->unchecked <= MAX_REPORTED)
            log_warn("%s:%llu: image %s (not checked; workers will try)", in->path,
                     (unsigned long long)line, why);
    }
    if (pl->missing && ++in->stats->missing <= MAX_REPORTED) {
        if (pl->why)
            snprintf(why, sizeof why, "%s", pl->why);
        else /* what joust_path_confine_cached says in a folder that does not exist */
            snprintf(why, sizeof why, "%s: %s", pl->uri, strerror(ENOENT));
        log_warn("%s:%llu: image %s (judges that read it will fail its matches)", in->path,
                 (unsigned long long)line, why);
    }
    uint64_t id_hash = pl->id_hash, other;
    int caller_id = it->id != NULL;
    if (it->id && index_get(in, IDX_CALLER_ID, id_hash, &other)) {
        char dup[MANIFEST_MAX_NAME + 96];
        snprintf(dup, sizeof dup, "duplicate id \"%s\" (already image %llu)", it->id,
                 (unsigned long long)other);
        if (in->opts.duplicate_ids == JOUST_DUP_IDS_ERROR) {
            line_error(in, line, dup);
            return;
        }
        caller_id = 0;
        in->stats->renamed_ids++;
        log_warn("%s:%llu: %s; this image is reported as #%llu", in->path,
                 (unsigned long long)line, dup, (unsigned long long)in->next_image);
    }
    Joust__ImageRecord r = JOUST__IMAGE_RECORD__INIT;
    r.image_id = in->next_image++;
    r.prompt_id = prompt_for(in, pl);
    r.uri = pl->uri;
    r.model = it->model;
    /* Without a caller id the image is "#<image id>": manifest.h refuses
     * that form as a caller id, so the two cannot collide. */
    char gen_id[32];
    generated_id(gen_id, r.image_id);
    r.caller_id = caller_id ? it->id : gen_id;
    r.has_latent = it->has_latent;
    r.latent = it->latent;
    r.meta_json = it->meta_json;
    r.has_line = 1;
    r.line = line;
    if (pl->hashed) {
        r.has_content_hash = 1;
        r.content_hash = pl->hash;
        if (index_get(in, IDX_CONTENT, pl->hash, &other)) {
            if (++in->stats->duplicates <= MAX_REPORTED)
                log_warn("%s:%llu: image %s has the same content as image %llu", in->path,
                         (unsigned long long)line, it->image, (unsigned long long)other);
        } else {
            index_put(in, IDX_CONTENT, pl->hash, r.image_id);
        }
    }
    if (caller_id)
        index_put(in, IDX_CALLER_ID, id_hash, r.image_id);
    size_t ulen = strlen(r.uri), mlen = r.model ? strlen(r.model) : 0,
           clen = strlen(r.caller_id), jlen = r.meta_json ? strlen(r.meta_json) : 0;
    size_t max = IMAGE_PACK_MAX(ulen + mlen + clen + jlen);
    unsigned char stackbuf[2048], *rec = max <= sizeof stackbuf ? stackbuf : xmalloc(max);
    joust_rec_image_put_packed(in->batch, r.image_id, rec,
                               image_pack(rec, &r, ulen, mlen, clen, jlen));
    if (rec != stackbuf)
        free(rec);
    joust_rec_prompt_add_image(in->batch, r.prompt_id, r.image_id);
    in->stats->images++;
}

/* The memory a line's id will touch in add_line (its filter word, its
 * slot in the id map), asked for a few lines ahead: both are random
 * accesses into large tables, a cache miss each. */
#define PREFETCH_AHEAD 8

static void prefetch_line(const ingest *in, const parsed_line *pl)
{
    if (!pl->id_hash)
        return;
    uint64_t bits;
    __builtin_prefetch(filter_word(in, IDX_CALLER_ID, pl->id_hash, &bits), 1);
    joust_u64map_prefetch(&in->pending[IDX_CALLER_ID], pl->id_hash);
}

/* Parser threads: opts.threads, else one per CPU, at most MAX_PARSERS. */
static unsigned parser_count(const joust_ingest_opts *o)
{
    long n = o->threads ? (long)o->threads : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_PARSERS ? MAX_PARSERS : (unsigned)n;
}

/* Reads the lines, has them parsed by the pool and adds them in order. */
static int ingest_lines(ingest *in, FILE *f, size_t size)
{
    unsigned nthreads = parser_count(&in->opts);
    parse_pool pp = {.in = in, .nring = 2 * (size_t)nthreads + 2};
    pp.ring = xcalloc(pp.nring, sizeof *pp.ring);
    for (size_t i = 0; i < pp.nring; i++) {
        pp.ring[i].lines = xmalloc(CHUNK_LINES * sizeof *pp.ring[i].lines);
        pp.ring[i].out = xmalloc(CHUNK_LINES * sizeof *pp.ring[i].out);
    }
    pthread_mutex_init(&pp.mu, NULL);
    pthread_cond_init(&pp.cv, NULL);
    pthread_t th[MAX_PARSERS];
    dir_cache *dirs = NULL; /* the main thread's, when no thread starts */
    for (unsigned i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, parser_main, &pp) != 0) {
            log_warn("ingest: cannot start a parser thread: %s", strerror(errno));
            nthreads = i;
            break;
        }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0, consumed = 0, write_next = 0;
    int eof = 0, rc = 0;
    while (rc == 0) {
        /* fill every free chunk */
        while (!eof && pp.fill_next - write_next < pp.nring) {
            chunk *c = &pp.ring[pp.fill_next % pp.nring];
            while (!eof) {
                if ((n = getline(&line, &cap, f)) < 0) {
                    eof = 1;
                    break;
                }
                lineno++;
                if ((consumed += (uint64_t)n) > size) {
                    log_warn("%s: the manifest grew while it was read; lines from %llu on "
                             "(after its first %zu bytes) are not ingested", in->path,
                             (unsigned long long)lineno, size);
                    eof = 1;
                    break;
                }
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                    line[--n] = '\0';
                size_t lead = strspn(line, " \t");
                if ((size_t)n == lead)
                    continue; /* blank lines are allowed */
                in->stats->lines++;
                if (chunk_add(c, line, (size_t)n, lineno))
                    break;
            }
            if (c->n == 0)
                break;
            pthread_mutex_lock(&pp.mu);
            c->state = CHUNK_FILLED;
            pp.fill_next++;
            pthread_cond_broadcast(&pp.cv);
            pthread_mutex_unlock(&pp.mu);
        }
        if (write_next == pp.fill_next)
            break; /* every line read is added */
        chunk *c = &pp.ring[write_next % pp.nring];
        if (nthreads == 0) {
            if (!dirs)
                dirs = xcalloc(1, sizeof *dirs);
            parse_chunk(in, dirs, c);
            c->state = CHUNK_PARSED;
        }
        pthread_mutex_lock(&pp.mu);
        while (c->state != CHUNK_PARSED)
            pthread_cond_wait(&pp.cv, &pp.mu);
        pthread_mutex_unlock(&pp.mu);
        for (size_t i = 0; i < c->n && rc == 0; i++) {
            if (i + PREFETCH_AHEAD < c->n)
                prefetch_line(in, &c->out[i + PREFETCH_AHEAD]);
            add_line(in, &c->out[i]);
            if (joust_batch_count(in->batch) >=
                3 * (size_t)(in->opts.batch_lines ? in->opts.batch_lines : COMMIT_LINES))
                rc = commit(in, 0);
        }
        chunk_release(c);
        write_next++;
    }
    free(line);
    /* stop the threads: they finish the chunks handed out, then leave */
    pthread_mutex_lock(&pp.mu);
    pp.stop = 1;
    pthread_cond_broadcast(&pp.cv);
    pthread_mutex_unlock(&pp.mu);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    for (size_t i = 0; i < pp.nring; i++) {
        chunk_release(&pp.ring[i]);
        free(pp.ring[i].text);
        free(pp.ring[i].lines);
        free(pp.ring[i].out);
        arena_free(&pp.ring[i].strings);
    }
    free(pp.ring);
    if (dirs) {
        dir_cache_free(dirs);
        free(dirs);
    }
    pthread_mutex_destroy(&pp.mu);
    pthread_cond_destroy(&pp.cv);
    if (rc == 0 && ferror(f))
        rc = JOUST_EIO;
    return rc;
}

/* An ingest that stopped part-way (a crash, a failed load) left its mark
 * and some of its records: they are taken back, so that the store is as
 * before it and the same ingest, run again, does exactly what it would
 * have done. */
int joust_ingest_recover(joust_store_t *st)
{
    uint64_t first_image, first_prompt;
    int rc = joust_rec_ingest_mark_get(st, &first_image, &first_prompt);
    if (rc == JOUST_ENOTFOUND)
        return 0;
    if (rc == 0) {
        log_warn("an earlier ingest into this store stopped part-way; taking back what it wrote "
                 "(images from %llu, prompts from %llu)", (unsigned long long)first_image,
                 (unsigned long long)first_prompt);
        rc = joust_rec_ingest_rollback(st, first_image, first_prompt);
    }
    if (rc < 0)
        log_error("cannot take back an unfinished ingest: %s", joust_strerror(rc));
    return rc;
}

static char *folder_of(const char *path)
{
    char *copy = xstrdup(path), *slash = strrchr(copy, '/');
    if (slash)
        *slash = '\0';
    char resolved[PATH_MAX];
    char *dir = realpath(slash ? (copy[0] ? copy : "/") : ".", resolved) ? xstrdup(resolved)
                                                                          : xstrdup(".");
    free(copy);
    return dir;
}

int joust_ingest(joust_store_t *st, const char *path, joust_ingest_stats *stats)
{
    return joust_ingest_with(st, path, NULL, stats);
}

int joust_ingest_with(joust_store_t *st, const char *path, const joust_ingest_opts *opts,
                      joust_ingest_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    /* One descriptor for the hash and the lines: a regular file only (a
     * FIFO or /dev/zero is refused at once), read up to its size at open;
     * gzip, zstd and stdin ("-") arrive decoded in a temporary file
     * (manifest_src.h), so line numbers are those of the plain text. */
    uint64_t file_hash;
    int fd;
    size_t size;
    char why[512];
    int rc = joust_manifest_open(path, 0, &fd, &size, NULL, why, sizeof why);
    if (rc == 0 && (rc = joust_hash_fd(fd, size, &file_hash)) != 0)
        snprintf(why, sizeof why, "%s: read error", path);
    if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0)
        rc = joust_errf(why, sizeof why, JOUST_EIO, "%s: %s", path, strerror(errno));
    if (rc < 0) {
        log_error("manifest %s", why);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    uint64_t added, first;
    stats->manifest_hash = file_hash;
    if ((rc = joust_ingest_recover(st)) < 0) {
        close(fd);
        return rc;
    }
    if (joust_rec_index_get(st, JOUST_INDEX_MANIFEST, file_hash, &added) == 0) {
        stats->already_ingested = 1;
        if (joust_rec_index_get(st, JOUST_INDEX_MANIFEST_FIRST, file_hash, &first) == 0) {
            stats->first_image = first;
            stats->end_image = first + added;
        }
        log_info("manifest %s is already in the store; not ingesting it again", path);
        close(fd);
        return 0;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return JOUST_EIO;
    }
    ingest in = {.st = st, .path = path, .stats = stats};
    if (opts)
        in.opts = *opts;
    else
        joust_ingest_opts_defaults(&in.opts);
    if (in.opts.bad_lines_path) {
        char *tmp = bad_tmp_path(in.opts.bad_lines_path);
        in.bad = fopen(tmp, "w");
        if (!in.bad)
            log_error("cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        if (!in.bad) {
            fclose(f);
            return JOUST_EIO;
        }
    }
    in.batch = joust_batch_new();
    in.spare = joust_batch_new();
    writer_start(&in.writer, st);
    for (int i = 0; i < 3; i++)
        joust_u64map_init(&in.pending[i]);
    in.dir = folder_of(path);
    if (!in.opts.allow_any_path) {
        const char *own[1] = {in.dir};
        int given = in.opts.n_allow_roots > 0;
        rc = joust_path_roots_init(&in.roots, given ? in.opts.allow_roots : own,
                                   given ? in.opts.n_allow_roots : 1, why, sizeof why);
        if (rc < 0) {
            log_error("%s", why);
            goto out;
        }
    }
    if ((rc = joust_rec_counter_get(st, JOUST_NEXT_IMAGE, &in.next_image)) < 0 ||
        (rc = joust_rec_counter_get(st, JOUST_NEXT_PROMPT, &in.next_prompt)) < 0)
        goto out;
    stats->first_image = in.next_image;
    if ((rc = filter_init(&in, size)) < 0)
        goto out;
    /* The mark first (synced): from here on a crash leaves records that the
     * next ingest finds and takes back (recover). */
    joust_rec_ingest_mark_put(in.batch, in.next_image, in.next_prompt);
    if ((rc = joust_store_write(st, in.batch, 1)) < 0)
        goto out;
    joust_batch_clear(in.batch);
    rc = ingest_lines(&in, f, size);
    if (rc == 0)
        rc = commit(&in, 1); /* every record loaded (durable), then: */
    if (rc == 0) {
        /* One synced write makes the ingest count: the counters, the
         * manifest's range and the mark's removal. Ids given (renamed
         * duplicates included) are consecutive from first_image: the range
         * is what a run naming this manifest covers. */
        stats->end_image = in.next_image;
        joust_rec_counter_put(in.batch, JOUST_NEXT_IMAGE, in.next_image);
        joust_rec_counter_put(in.batch, JOUST_NEXT_PROMPT, in.next_prompt);
        joust_rec_index_put(in.batch, JOUST_INDEX_MANIFEST, file_hash,
                            stats->end_image - stats->first_image);
        joust_rec_index_put(in.batch, JOUST_INDEX_MANIFEST_FIRST, file_hash, stats->first_image);
        joust_rec_ingest_mark_delete(in.batch);
        rc = joust_store_write(st, in.batch, 1);
    }
out:
    if (bad_lines_finish(&in, rc == 0) < 0 && rc == 0)
        rc = JOUST_EIO;
    if (rc == 0 && in.opts.bad_lines_path && stats->errors > in.opts.max_logged)
        log_warn("%s: %llu more bad lines not shown; all %llu are in %s", path,
                 (unsigned long long)(stats->errors - in.opts.max_logged),
                 (unsigned long long)stats->errors, in.opts.bad_lines_path);
    joust_buf_free(&in.bad_line);
    fclose(f);
    for (int i = 0; i < 3; i++)
        joust_u64map_free(&in.pending[i]);
    writer_stop(&in.writer);
    joust_batch_destroy(&in.batch);
    joust_batch_destroy(&in.spare);
    free(in.filter);
    free(in.puts);
    free(in.dir);
    joust_path_roots_free(&in.roots);
    return rc;
}
