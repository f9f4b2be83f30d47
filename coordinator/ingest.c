#include "ingest.h"

#include <errno.h>
#include <limits.h>
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

/* Index lookups see the store plus what the open batch has added. */
typedef struct {
    joust_store_t *st;
    joust_batch_t *batch;
    joust_u64map_t pending[3]; /* by index kind */
    uint64_t next_image, next_prompt;
    char *dir;                 /* manifest folder, for relative paths */
    const char *path;
    joust_ingest_stats *stats;
    joust_ingest_opts opts;
    FILE *bad;                 /* the bad-lines temp file, or NULL */
    joust_path_roots roots;    /* images must lie inside; none: --allow-any-path */
    joust_buf_t bad_line;
} ingest;

enum { IDX_PROMPT_KEY, IDX_CONTENT, IDX_CALLER_ID };
static const joust_rec_index idx_of[3] = {JOUST_INDEX_GROUP, JOUST_INDEX_CONTENT,
                                          JOUST_INDEX_CALLER_ID};

static int index_get(ingest *in, int kind, uint64_t h, uint64_t *out)
{
    if (joust_u64map_get(&in->pending[kind], h ? h : 1, out))
        return 1;
    return joust_rec_index_get(in->st, idx_of[kind], h, out) == 0;
}

static void index_put(ingest *in, int kind, uint64_t h, uint64_t id)
{
    joust_u64map_put(&in->pending[kind], h ? h : 1, id);
    joust_rec_index_put(in->batch, idx_of[kind], h, id);
}

static int commit(ingest *in)
{
    joust_rec_counter_put(in->batch, JOUST_NEXT_IMAGE, in->next_image);
    joust_rec_counter_put(in->batch, JOUST_NEXT_PROMPT, in->next_prompt);
    int rc = joust_store_write(in->st, in->batch, 1);
    joust_batch_clear(in->batch);
    for (int i = 0; i < 3; i++)
        joust_u64map_clear(&in->pending[i]);
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

static void image_error(ingest *in, uint64_t line, const manifest_item *it, const char *why)
{
    char msg[MANIFEST_MAX_NAME + 600];
    snprintf(msg, sizeof msg, "image \"%.*s\": %s", 200, it->image, why);
    line_error(in, line, msg);
}

/* The image reference as the worker will read it (common/uri.h, the
 * parser the worker's image stage uses): a local path, relative ones joined
 * to the manifest's folder. A remote reference is kept as given (checked
 * with opts.check_remote when set, never downloaded). The file is hashed through
 * common/safe_open.h, so a FIFO, a device, a directory or a socket is a bad
 * line at once (never opened for reading, never read); a file that does not
 * exist (yet) or that the coordinator may not read is kept with a warning,
 * because the workers may see it. *hashed says whether *h is set. */
static int check_image(ingest *in, uint64_t line, const manifest_item *it, char **path,
                       uint64_t *h, int *hashed)
{
    joust_uri ref;
    char why[512];
    *hashed = 0;
    int rc = joust_uri_parse(it->image, in->dir, &ref, why, sizeof why);
    if (rc == 0 && joust_uri_is_remote(&ref)) {
        if (in->opts.check_remote &&
            (rc = in->opts.check_remote(in->opts.check_remote_ctx, ref.path, why, sizeof why))) {
            if (rc != JOUST_EAGAIN) {
                image_error(in, line, it, why);
                joust_uri_clear(&ref);
                return rc;
            }
            if (++in->stats->unchecked <= MAX_REPORTED)
                log_warn("%s:%llu: image %s (not checked; workers will try)", in->path,
                         (unsigned long long)line, why);
        }
        if (ref.scheme == JOUST_URI_TAR) { /* a member of a remote shard, kept whole */
            *path = joust_uri_format_member(&ref);
            joust_uri_clear(&ref);
        } else {
            *path = ref.path;
        }
        return 0;
    }
    if (rc) {
        image_error(in, line, it, why);
        return rc;
    }
    /* Confined before anything is opened: a file outside is never hashed
     * (its content could otherwise be probed by the duplicate warning). */
    char *real = NULL;
    rc = joust_path_confine(&in->roots, ref.path, &real, why, sizeof why);
    if (rc && rc != JOUST_ENOTFOUND) {
        image_error(in, line, it, why);
        joust_uri_clear(&ref);
        return rc;
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
            *h = joust_hash64(data, len);
        free(data);
    } else if (rc == 0) {
        rc = joust_hash_file(real, in->opts.max_image_bytes, h, why, sizeof why);
    }
    free(real);
    if (rc == JOUST_ENOTFOUND || rc == JOUST_EDENIED) {
        if (++in->stats->missing <= MAX_REPORTED)
            log_warn("%s:%llu: image %s (judges that read it will fail its matches)", in->path,
                     (unsigned long long)line, why);
    } else if (rc) {
        image_error(in, line, it, why);
        joust_uri_clear(&ref);
        return rc;
    } else {
        *hashed = !(ref.scheme == JOUST_URI_TAR && ref.compressed);
    }
    if (ref.scheme == JOUST_URI_TAR) { /* stored as the full reference, shard path resolved */
        *path = joust_uri_format_member(&ref);
        joust_uri_clear(&ref);
        return 0;
    }
    *path = ref.path;
    return 0;
}

static uint64_t prompt_for(ingest *in, const manifest_item *it)
{
    uint64_t h = joust_hash64(it->group_key, strlen(it->group_key)), id;
    if (index_get(in, IDX_PROMPT_KEY, h, &id))
        return id;
    id = in->next_prompt++;
    index_put(in, IDX_PROMPT_KEY, h, id);
    Joust__PromptRecord p = JOUST__PROMPT_RECORD__INIT;
    p.prompt_id = id;
    p.text = it->prompt;
    p.caller_id = it->prompt_id;
    joust_rec_prompt_put(in->batch, &p);
    in->stats->prompts++;
    return id;
}

static void add_image(ingest *in, uint64_t line, const manifest_item *it)
{
    char *uri = NULL;
    uint64_t h;
    int hashed;
    if (check_image(in, line, it, &uri, &h, &hashed) < 0)
        return;
    uint64_t id_hash = it->id ? joust_hash64(it->id, strlen(it->id)) : 0, other;
    int caller_id = it->id != NULL;
    if (it->id && index_get(in, IDX_CALLER_ID, id_hash, &other)) {
        char why[MANIFEST_MAX_NAME + 96];
        snprintf(why, sizeof why, "duplicate id \"%s\" (already image %llu)", it->id,
                 (unsigned long long)other);
        if (in->opts.duplicate_ids == JOUST_DUP_IDS_ERROR) {
            line_error(in, line, why);
            free(uri);
            return;
        }
        caller_id = 0;
        in->stats->renamed_ids++;
        log_warn("%s:%llu: %s; this image is reported as #%llu", in->path,
                 (unsigned long long)line, why, (unsigned long long)in->next_image);
    }
    Joust__ImageRecord r = JOUST__IMAGE_RECORD__INIT;
    r.image_id = in->next_image++;
    r.prompt_id = prompt_for(in, it);
    r.uri = uri;
    r.model = it->model;
    /* Without a caller id the image is "#<image id>": manifest.h refuses
     * that form as a caller id, so the two cannot collide. */
    char gen_id[32];
    snprintf(gen_id, sizeof gen_id, MANIFEST_GENERATED_ID_FMT, (unsigned long long)r.image_id);
    r.caller_id = caller_id ? it->id : gen_id;
    r.has_latent = it->has_latent;
    r.latent = it->latent;
    r.meta_json = it->meta_json;
    r.has_line = 1;
    r.line = line;
    if (hashed) {
        r.has_content_hash = 1;
        r.content_hash = h;
        if (index_get(in, IDX_CONTENT, h, &other)) {
            if (++in->stats->duplicates <= MAX_REPORTED)
                log_warn("%s:%llu: image %s has the same content as image %llu", in->path,
                         (unsigned long long)line, it->image, (unsigned long long)other);
        } else {
            index_put(in, IDX_CONTENT, h, r.image_id);
        }
    }
    if (caller_id)
        index_put(in, IDX_CALLER_ID, id_hash, r.image_id);
    joust_rec_image_put(in->batch, &r);
    joust_rec_prompt_add_image(in->batch, r.prompt_id, r.image_id);
    in->stats->images++;
    free(uri);
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
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0, consumed = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((consumed += (uint64_t)n) > size) {
            log_warn("%s: the manifest grew while it was read; lines from %llu on (after its "
                     "first %zu bytes) are not ingested", path, (unsigned long long)lineno, size);
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        size_t lead = strspn(line, " \t");
        if ((size_t)n == lead)
            continue; /* blank lines are allowed */
        stats->lines++;
        manifest_item item;
        if (manifest_parse_line(line, (size_t)n, &item, why, sizeof why) < 0)
            line_error(&in, lineno, why);
        else {
            add_image(&in, lineno, &item);
            manifest_item_clear(&item);
        }
        if (joust_batch_count(in.batch) >= COMMIT_LINES * 3 && (rc = commit(&in)) < 0)
            break;
    }
    free(line);
    if (rc == 0 && ferror(f))
        rc = JOUST_EIO;
    if (rc == 0) {
        /* Ids given (renamed duplicates included) are consecutive from
         * first_image: the range is what a run naming this manifest covers. */
        stats->end_image = in.next_image;
        joust_rec_index_put(in.batch, JOUST_INDEX_MANIFEST, file_hash,
                            stats->end_image - stats->first_image);
        joust_rec_index_put(in.batch, JOUST_INDEX_MANIFEST_FIRST, file_hash, stats->first_image);
        rc = commit(&in);
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
    joust_batch_destroy(&in.batch);
    free(in.dir);
    joust_path_roots_free(&in.roots);
    return rc;
}
