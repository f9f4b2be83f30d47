/* Opening a file that a user named (a manifest, a key file, a template, an
 * image): never block, never read forever.
 *
 * What it promises: the path is opened for reading only when it is a
 * regular file. It is checked with stat(2) before the open (so a device
 * node is never opened: opening one can have side effects), opened with
 * O_NONBLOCK (a FIFO that slips in between cannot block the open) and
 * O_CLOEXEC, checked again with fstat(2) on the descriptor (the same
 * inode, still regular), and then O_NONBLOCK is cleared. FIFOs, character
 * and block devices (/dev/zero), directories and sockets are refused with a
 * reason that names the kind; so is a symbolic link when JOUST_OPEN_NOFOLLOW
 * is given (O_NOFOLLOW: the last component must not be a link; used on
 * paths that were already canonicalised, where a link means a swap). A
 * file larger than max_bytes (when > 0) is refused before anything is
 * read, and reads stop at the size fstat reported, so a file that grows
 * meanwhile cannot make a read unbounded.
 *
 * Ownership: *fd, *f and *data belong to the caller (close, fclose, free).
 * Threads: reentrant.
 * Errors: 0; JOUST_ENOTFOUND (no such file); JOUST_EDENIED (permission);
 * JOUST_ETOOBIG (over max_bytes); JOUST_EIO (not a regular file, a link
 * under NOFOLLOW, or another open/read failure).
 * err gets "<path>: <reason>". */
#ifndef JOUST_SAFE_OPEN_H
#define JOUST_SAFE_OPEN_H
#include <stddef.h>
#include <stdio.h>

enum { JOUST_OPEN_NOFOLLOW = 1 };

/* Opens path as described above; *size is its size at open. */
int joust_open_regular(const char *path, int flags, size_t max_bytes, int *fd, size_t *size,
                       char *err, size_t errlen);

/* The same, as a read-only stream (for line-by-line readers). */
int joust_fopen_regular(const char *path, int flags, size_t max_bytes, FILE **f, size_t *size,
                        char *err, size_t errlen);

/* Reads the whole file (at most its size at open) into a malloc'd buffer
 * with a NUL byte after the *len bytes read (not counted in *len). */
int joust_read_regular(const char *path, int flags, size_t max_bytes, unsigned char **data,
                       size_t *len, char *err, size_t errlen);

/* Reads up to cap bytes from fd into buf, retrying on EINTR; *n gets the
 * count (short only at end of file). @return 0 or JOUST_EIO. */
int joust_read_fd(int fd, void *buf, size_t cap, size_t *n);

#endif
