/* Ingest: streams a JSONL manifest into the store (prompts, images and the
 * indexes in META), writing a batch every few thousand lines, so memory does
 * not grow with the manifest. Parser threads parse the lines and resolve,
 * confine and hash their images in chunks; the calling thread adds them in
 * manifest order; a writer thread writes each batch while the next is
 * built. Batches are bulk-loaded as sorted SST files (store.h
 * joust_store_load: no WAL, no memtable); the counters move, and the
 * manifest counts as ingested, only in one synced write after the last
 * one. An ingest that stops part-way (a crash, a failed write) leaves a
 * mark: the next ingest into the store first takes back what it wrote, so
 * running the same ingest again gives the store a clean ingest gives
 * (docs/storage.md, "Bulk load"). Relative image paths resolve against the
 * manifest's folder. A bad line (manifest.h says what is bad) is skipped and
 * reported with its line number and reason; nothing else is lost. Every bad
 * line is reported: with a bad-lines file all of them are written there and
 * the first max_logged are logged, without one all of them are logged.
 * A manifest whose content was already ingested into this store is skipped
 * as a whole.
 *
 * Image ids: a line's "id" is unique in the store. A line without one gets
 * "#<image number>", a form manifest.h refuses as a caller's id, so the
 * two never collide. A line whose id an earlier image already has is a bad
 * line (JOUST_DUP_IDS_ERROR, the default) or is kept under its generated id
 * with a warning (JOUST_DUP_IDS_WARN); either way no two images share an id.
 * Confinement: by default every image must lie inside the manifest's
 * folder (or the allowed roots given): a ".." escape, an absolute path
 * outside, or a symlink that leaves the root is a bad line ("outside the
 * allowed roots"), checked on the canonical path before anything is
 * opened, so ingest never opens, hashes or reports on a file outside
 * (the duplicate-content warning cannot reveal one).
 * Files: the manifest and every image are opened through common/safe_open.h:
 * a manifest that is not a regular file is an error at once; an image that
 * is a FIFO, a device, a directory, a socket or larger than max_image_bytes
 * is a bad line naming the kind; none of them is read or waited for.
 * A manifest may be gzip or zstd compressed (told by its first bytes) or
 * "-" for standard input (coordinator/manifest_src.h); relative image paths
 * of a stdin manifest resolve against the current folder.
 * Not thread-safe: one ingest per store at a time. */
#ifndef JOUST_INGEST_H
#define JOUST_INGEST_H
#include <stdint.h>

#include "store.h"

typedef enum { JOUST_DUP_IDS_ERROR = 0, JOUST_DUP_IDS_WARN } joust_dup_ids;

typedef struct {
    joust_dup_ids duplicate_ids;
    const char *bad_lines_path; /* JSONL, one {"manifest","line","error"} per bad line,
                                   written complete (temp file + rename); removed when
                                   the manifest has no bad line; NULL: none */
    unsigned max_logged;        /* bad lines logged when the file is written */
    size_t max_image_bytes;     /* larger image files are bad lines (0: no limit) */
    /* Confinement (common/confine.h): images must lie inside one of these
     * folders; none given: the manifest's folder. allow_any_path: no
     * confinement (absolute paths anywhere). */
    const char *const *allow_roots;
    size_t n_allow_roots;
    int allow_any_path;
    /* Remote images (http(s)://, s3://bucket/key) are kept as given: they
     * are not paths, confinement does not apply, and ingest never downloads
     * them. check_remote (NULL: no check) is asked about each one (a HEAD
     * request, `--check-remote`): an error other than JOUST_EAGAIN makes
     * the line bad with its reason (a 404, a 403); JOUST_EAGAIN (the store
     * is unreachable) keeps the image with a warning. */
    int (*check_remote)(void *ctx, const char *uri, char *err, size_t errlen);
    void *check_remote_ctx;
    /* Threads that parse lines and resolve, confine and hash their local
     * images while the calling thread adds them in manifest order and
     * writes (0: one per CPU, at most 8). check_remote is called from the
     * calling thread only. */
    unsigned threads;
    /* Lines per bulk-loaded batch (0: the default, 10000); tests make it
     * small to have many batches. */
    unsigned batch_lines;
} joust_ingest_opts;

/* The worker's default limit (worker/image.h): a larger file could never be judged. */
#define JOUST_INGEST_MAX_IMAGE_BYTES ((size_t)256 << 20)

/* Defaults: duplicate ids are errors, no bad-lines file, 20 logged,
 * image files up to JOUST_INGEST_MAX_IMAGE_BYTES. */
void joust_ingest_opts_defaults(joust_ingest_opts *o);

typedef struct {
    uint64_t lines;        /* non-empty lines read */
    uint64_t images;       /* images added */
    uint64_t errors;       /* lines rejected */
    uint64_t renamed_ids;  /* duplicate ids kept under their generated id (WARN) */
    uint64_t duplicates;   /* images whose content equals an earlier image */
    uint64_t missing;      /* local files that do not exist (yet) */
    uint64_t unchecked;    /* remote images check_remote could not reach */
    uint64_t prompts;      /* new prompt groups */
    int already_ingested;  /* the same manifest content was ingested before */
    /* The manifest's images, also when it was ingested before: ids
     * first_image <= id < end_image (0, 0 for a manifest ingested by a
     * joust from before these ranges were kept). manifest_hash: XXH3 of the
     * file, how runs name it (run.h joust_run_add_manifest). */
    uint64_t manifest_hash, first_image, end_image;
} joust_ingest_stats;

/* Returns 0, JOUST_ENOTFOUND / JOUST_EIO for an unreadable manifest,
 * JOUST_ENOTFOUND / JOUST_EINVAL for an allowed root that is missing or not
 * a folder,
 * JOUST_EIO when the bad-lines file cannot be written, or a store error.
 * Per-line problems are counted in stats, not returned. opts NULL: the
 * defaults. */
int joust_ingest_with(joust_store_t *st, const char *manifest_path, const joust_ingest_opts *opts,
                      joust_ingest_stats *stats);
/* joust_ingest_with with the defaults. */
int joust_ingest(joust_store_t *st, const char *manifest_path, joust_ingest_stats *stats);
/* Takes back what an ingest that stopped part-way (kill -9, a failed load)
 * wrote, so the store is as before it (docs/storage.md, "Bulk load"). Every
 * ingest does it first; every other writer calls it after opening the store,
 * so no run sees a crashed ingest's images. 0 when there was nothing to take
 * back or it was taken back (logged), else a store error. */
int joust_ingest_recover(joust_store_t *st);

#endif
