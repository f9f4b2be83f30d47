/* Reading one member of a local uncompressed tar shard (a WebDataset
 * sample's image) by its reference (common/uri.h, JOUST_URI_TAR): one
 * pread of [offset, offset+size) of the shard, never the whole shard.
 *
 * The shard is opened through common/safe_open.h (a regular file only;
 * flags as there). A member that does not lie inside the shard (offset +
 * size past its size: a truncated or replaced shard) or is larger than
 * max_bytes (when > 0) is refused before anything is read.
 * Ownership: *data is malloc'd, the caller's; it has a NUL after *len.
 * Threads: reentrant. A process-wide counter of member reads and bytes
 * (joust_tar_member_counts) lets tests check that only members were read.
 * Members of compressed or remote shards are not read here
 * (JOUST_EUNSUPPORTED): worker/fetch.h reads them.
 * Errors: 0; those of joust_open_regular; JOUST_ETOOBIG (over max_bytes);
 * JOUST_ECORRUPT (outside the shard, or a short read); err names the
 * shard and the member. */
#ifndef JOUST_TAR_MEMBER_H
#define JOUST_TAR_MEMBER_H
#include <stddef.h>
#include <stdint.h>

#include "uri.h"

/* ref->scheme must be JOUST_URI_TAR; path is the shard to open (ref->path
 * or its confined form). */
int joust_tar_member_read(const joust_uri *ref, const char *path, int flags, size_t max_bytes,
                          unsigned char **data, size_t *len, char *err, size_t errlen);

/* Member reads done by this process and the bytes they read. */
void joust_tar_member_counts(uint64_t *reads, uint64_t *bytes);

#endif
