/* Content hashing (XXH3-64): dedup of images and cache keys. Not a MAC.
 * Threads: reentrant. */
#ifndef JOUST_HASH_H
#define JOUST_HASH_H
#include <stddef.h>
#include <stdint.h>

uint64_t joust_hash64(const void *data, size_t len);

/* Hashes the next size bytes of fd (fewer if the file ends first).
 * @return 0 or JOUST_EIO. */
int joust_hash_fd(int fd, size_t size, uint64_t *out);

/* Hashes a whole file, opened with joust_open_regular (common/safe_open.h):
 * regular files only (a FIFO, a device, a directory or a socket is refused
 * at once, never read), at most max_bytes when > 0, and never more than the
 * size the file had when it was opened. err (may be NULL) gets the reason.
 * @return 0 or the codes of joust_open_regular. */
int joust_hash_file(const char *path, size_t max_bytes, uint64_t *out, char *err, size_t errlen);

#endif
