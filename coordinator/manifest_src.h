/* Where ingest reads a manifest's lines from: a plain JSONL file, a gzip or
 * zstd compressed one, or standard input ("-"), told apart by their first
 * bytes (1f 8b: gzip, 28 b5 2f fd: zstd), never by the file's name; or
 * WebDataset shards: a path that ends in .tar, .tar.gz or .tgz, local or
 * an http(s):// or s3:// URL, with brace ranges ('s/{00000..00127}.tar'),
 * whose samples become the lines (coordinator/webdataset.h; s3 through
 * the AWS_* variables, AWS_ENDPOINT_URL for another store). Bad samples
 * and shards are reported on stderr; shards with no usable sample are an
 * error (JOUST_EINVAL).
 *
 * What it promises: *fd is a regular-file descriptor at offset 0 holding
 * the manifest's plain text, and *size is its length, so ingest hashes and
 * reads every kind the same way and its line numbers are those of the
 * plain text. A plain file is the file itself (opened through
 * common/safe_open.h: regular files only). Compressed input, shards and
 * stdin are decoded into an unlinked temporary file in $TMPDIR (default /tmp) first:
 * memory does not grow with the manifest, and the decoded content is what
 * "already ingested" compares (a manifest and its .gz are the same
 * manifest). Concatenated gzip members and several zstd frames are read
 * as one stream (what `zcat` and `zstdcat` do). At most max_bytes of plain
 * text (0: JOUST_MANIFEST_MAX_DECODED) are written, so a decompression
 * bomb stops with an error instead of filling the disk.
 *
 * Ownership: *fd is the caller's (close). Threads: reentrant.
 * Errors: 0; those of joust_open_regular for a path; JOUST_ECORRUPT for
 * compressed data that is corrupt or ends in the middle of a stream;
 * JOUST_ETOOBIG over max_bytes; JOUST_EIO for a read or temp-file failure.
 * err gets "<path>: <reason>" ("stdin" for "-"). */
#ifndef JOUST_MANIFEST_SRC_H
#define JOUST_MANIFEST_SRC_H
#include <stddef.h>

#define JOUST_MANIFEST_MAX_DECODED ((size_t)64 << 30)

typedef enum {
    JOUST_MANIFEST_PLAIN = 0,
    JOUST_MANIFEST_GZIP,
    JOUST_MANIFEST_ZSTD,
    JOUST_MANIFEST_SHARDS
} joust_manifest_kind;

/* kind (may be NULL) says what was found. */
int joust_manifest_open(const char *path, size_t max_bytes, int *fd, size_t *size,
                        joust_manifest_kind *kind, char *err, size_t errlen);

#endif
