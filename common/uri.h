/* Image references: the one parser that ingest and the worker share, so that
 * both read a manifest's `image` the same way.
 *
 * A reference is either a plain path or a URI. It is a URI when it starts
 * with a scheme followed by "://" (RFC 3986 scheme characters), or with
 * "file:/". Everything else is a plain path, taken literally: no
 * percent-decoding ("a%20b.jpg" names a file with a '%' in it).
 *
 * file URIs (RFC 8089): the host must be empty or "localhost"
 * ("file://otherhost/x" is refused: it names another machine); the path
 * must be absolute and non-empty and is percent-decoded. Refused: a '%' not
 * followed by two hex digits, %00 (a NUL cannot be in a path), %2F (an
 * encoded '/' cannot be part of a POSIX file name), and a query ('?') or
 * fragment ('#'): write a literal '?' or '#' as %3F or %23.
 * http://, https:// and s3:// are recognised as remote references (the
 * parser does not fetch; callers decide what to do with them). Other
 * schemes are refused.
 *
 * Tar members (WebDataset shards, coordinator/webdataset.h):
 *   tar:SHARD#[compressed=1&]offset=N&size=M&member=NAME
 * names the M bytes at byte N of the tar stream of SHARD: a plain path
 * (relative ones joined to base_dir like any path; confined like any image
 * path) or an http(s):// or s3:// URL (kept as given, never joined).
 * Without compressed=1, SHARD is an uncompressed tar and N is a byte
 * offset in it (one ranged read gets the member); with it, SHARD is a
 * compressed tar (gzip, zstd, xz, bzip2) and N is the offset in its
 * decompressed stream (the member is read by streaming the shard,
 * worker/fetch.h). NAME (the member's name, percent-encoded: '%', '&', '#'
 * and bytes below 0x21) is for messages only; offset and size are what is
 * read. All three keys are required, in this order; offset and size are
 * decimal, size at least 1. joust_uri_format_member writes the form back.
 * A shard path with a '#' in it cannot be named (refused at ingest).
 *
 * Ownership: a parsed joust_uri owns its path; joust_uri_clear frees it and
 * is safe on a zeroed or already cleared value.
 * Threads: reentrant.
 * Errors: 0; JOUST_EINVAL for a malformed reference (the reason, naming
 * the problem, goes to err); JOUST_EUNSUPPORTED for an unknown scheme. */
#ifndef JOUST_URI_H
#define JOUST_URI_H
#include <stddef.h>

typedef enum {
    JOUST_URI_LOCAL = 0, /* a plain path or a file:// URI */
    JOUST_URI_HTTP,
    JOUST_URI_HTTPS,
    JOUST_URI_S3,
    JOUST_URI_TAR, /* a member of a tar shard (local or remote, see shard) */
} joust_uri_scheme;

typedef struct {
    joust_uri_scheme scheme;
    /* LOCAL: the decoded path; a relative plain path is joined to base_dir
     * when one is given. Remote: a copy of the reference as given. */
    char *path;
    /* TAR only: the member's data offset and size in the shard at path,
     * and its decoded name (owned, freed by joust_uri_clear). */
    unsigned long long offset, size;
    char *member;
    joust_uri_scheme shard; /* TAR: LOCAL (path is a file) or HTTP, HTTPS, S3 (a URL) */
    int compressed;         /* TAR: 1 when the shard is compressed (read by streaming) */
} joust_uri;

/* 1 when u names bytes that are not on this machine: an http(s) or s3
 * reference, or a member of a remote shard. */
static inline int joust_uri_is_remote(const joust_uri *u)
{
    return u->scheme == JOUST_URI_HTTP || u->scheme == JOUST_URI_HTTPS ||
           u->scheme == JOUST_URI_S3 || (u->scheme == JOUST_URI_TAR && u->shard != JOUST_URI_LOCAL);
}

/* Parses ref. base_dir (may be NULL or "") is the folder relative plain
 * paths are joined to (the manifest's folder at ingest, --image-root in
 * the worker). On failure *out is zeroed. */
int joust_uri_parse(const char *ref, const char *base_dir, joust_uri *out, char *err,
                    size_t errlen);
void joust_uri_clear(joust_uri *u);

/* The reference "tar:<shard>#offset=N&size=M&member=<encoded name>" of
 * an uncompressed shard, malloc'd. */
char *joust_uri_format_tar(const char *shard, unsigned long long offset, unsigned long long size,
                           const char *member);
/* The reference of the TAR u (path, compressed, offset, size, member), malloc'd. */
char *joust_uri_format_member(const joust_uri *u);

/* "file", "http", "https", "s3", "tar". */
const char *joust_uri_scheme_name(joust_uri_scheme s);

#endif
