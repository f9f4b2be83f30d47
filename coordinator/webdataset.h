/* WebDataset input: turns tar shards into a JSONL manifest that ingest
 * (coordinator/ingest.h) reads like any other, one line per sample.
 *
 * Samples are grouped by key, as WebDataset does: a member's name up to
 * the first '.' of its basename (folder included). A sample has one image
 * (.jpg, .jpeg, .png or .webp) and a caption (.txt: the whole text, the
 * prompt) and/or a .json object whose fields are mapped like a manifest
 * line (prompt, prompt_id, model, id, latent, others as metadata). The
 * rule when both give a prompt: the .json's "prompt" wins; the .txt is
 * used only when the .json has none. A sample without an id gets
 * "<shard basename>/<key>". The line's image is the member reference
 * tar:<shard>#[compressed=1&]offset=N&size=M&member=NAME (common/uri.h)
 * with the shard's absolute path or its URL: offset is the member's data
 * offset in the shard's tar stream (from libarchive's consumed-byte count
 * after its header).
 *
 * A shard is a local path or an http(s):// or s3:// URL (s3 signed and
 * addressed as worker/fetch_s3.h says: AWS_* variables, AWS_ENDPOINT_URL).
 * Every shard is read in ONE pass: a remote one streamed through libcurl
 * into libarchive (worker/fetch.h streams), never stored on disk or held
 * whole in memory; only captions and .json members are kept, image data
 * is skipped. An uncompressed shard's member is then read by the worker
 * with one pread (local, common/tar_member.h) or one ranged GET (remote),
 * never the whole shard. A compressed shard (gzip, zstd, xz, bzip2: told
 * by content, not name) is accepted; its references say compressed=1 and
 * the worker streams the shard to reach a member, caching every image
 * member on the way (worker/fetch.h; docs/storage.md gives the cost). A
 * shard that is not a tar is refused with the reason. Bad samples are reported on stderr as
 * "SHARD: MEMBER: reason" (no image, two images, no prompt, an unknown
 * extension, a non-regular member, a caption or JSON that is too long or
 * not an object) and counted; a corrupt or truncated shard keeps the
 * samples read before the damage and reports the damage. Nothing else is
 * lost.
 * Threads: reentrant. Errors: 0, JOUST_EIO when out cannot be written,
 * JOUST_EINVAL for a bad brace pattern (reason in err). */
#ifndef JOUST_WEBDATASET_H
#define JOUST_WEBDATASET_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint64_t shards;      /* shards read (whole or in part) */
    uint64_t bad_shards;  /* shards refused or damaged */
    uint64_t samples;     /* manifest lines written */
    uint64_t bad_samples; /* samples or members reported */
} joust_wds_stats;

/* 1 when arg names WebDataset shards: it ends in .tar, .tar.gz or .tgz
 * (a brace range may be part of it). */
int joust_wds_is_shards(const char *arg);

/* Expands the brace ranges {A..B} (decimal, zero padding kept when A is
 * padded; several ranges multiply) of pattern into *out (malloc'd array of
 * malloc'd strings, *n of them; joust_wds_free_list frees it). A pattern
 * without braces gives itself. At most 1,000,000 names. */
int joust_wds_expand(const char *pattern, char ***out, size_t *n, char *err, size_t errlen);
void joust_wds_free_list(char **list, size_t n);

/* Writes one JSONL manifest line per good sample of the n shards to out.
 * s3_endpoint (may be NULL: AWS_ENDPOINT_URL) is --s3-endpoint. */
int joust_wds_write_manifest(char *const *shards, size_t n, const char *s3_endpoint, FILE *out,
                             joust_wds_stats *stats, char *err, size_t errlen);

#endif
