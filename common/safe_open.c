/* Opening user-named files safely; see safe_open.h. */
#include "safe_open.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "xalloc.h"

static const char *kind_of(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO (named pipe)" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISDIR(m) ? "a directory"
         : S_ISSOCK(m) ? "a socket" : S_ISLNK(m) ? "a symbolic link" : "not a plain file";
}

static int errno_rc(int e)
{
    return e == ENOENT || e == ENOTDIR ? JOUST_ENOTFOUND : e == EACCES || e == EPERM ? JOUST_EDENIED
                                                                                     : JOUST_EIO;
}

static int check_stat(const char *path, const struct stat *st, size_t max_bytes, char *err,
                      size_t errlen)
{
    if (!S_ISREG(st->st_mode))
        return joust_errf(err, errlen, JOUST_EIO, "%s: is %s, not a regular file", path,
                          kind_of(st->st_mode));
    if (max_bytes && (unsigned long long)st->st_size > max_bytes)
        return joust_errf(err, errlen, JOUST_ETOOBIG,
                          "%s: file is %lld bytes, over the limit of %zu",
                          path, (long long)st->st_size, max_bytes);
    return 0;
}

int joust_open_regular(const char *path, int flags, size_t max_bytes, int *fd, size_t *size,
                       char *err, size_t errlen)
{
    *fd = -1;
    if (size)
        *size = 0;
    if (!path || !*path)
        return joust_errf(err, errlen, JOUST_EINVAL, "empty path");
    int nofollow = flags & JOUST_OPEN_NOFOLLOW;
    struct stat before, st;
    if ((nofollow ? lstat(path, &before) : stat(path, &before)) != 0) {
        int e = errno;
        return joust_errf(err, errlen, errno_rc(e), "%s: %s", path, strerror(e));
    }
    int rc = check_stat(path, &before, max_bytes, err, errlen);
    if (rc)
        return rc;
    int d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0));
    if (d < 0) {
        int e = errno;
        if (e == ELOOP && nofollow)
            return joust_errf(err, errlen, JOUST_EIO, "%s: is a symbolic link", path);
        return joust_errf(err, errlen, errno_rc(e), "%s: %s", path, strerror(e));
    }
    if (fstat(d, &st) != 0) {
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: %s", path, strerror(errno));
    } else if ((rc = check_stat(path, &st, max_bytes, err, errlen)) == 0 &&
               (st.st_dev != before.st_dev || st.st_ino != before.st_ino)) {
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: replaced while it was being opened", path);
    }
    int fl = rc ? 0 : fcntl(d, F_GETFL);
    if (!rc && (fl < 0 || fcntl(d, F_SETFL, fl & ~O_NONBLOCK) < 0))
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: %s", path, strerror(errno));
    if (rc) {
        close(d);
        return rc;
    }
    *fd = d;
    if (size)
        *size = (size_t)st.st_size;
    return 0;
}

int joust_fopen_regular(const char *path, int flags, size_t max_bytes, FILE **f, size_t *size,
                        char *err, size_t errlen)
{
    *f = NULL;
    int fd;
    int rc = joust_open_regular(path, flags, max_bytes, &fd, size, err, errlen);
    if (rc)
        return rc;
    if (!(*f = fdopen(fd, "r"))) {
        int e = errno;
        close(fd);
        return joust_errf(err, errlen, JOUST_EIO, "%s: %s", path, strerror(e));
    }
    return 0;
}

int joust_read_fd(int fd, void *buf, size_t cap, size_t *n)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, (char *)buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *n = got;
            return JOUST_EIO;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    *n = got;
    return 0;
}

int joust_read_regular(const char *path, int flags, size_t max_bytes, unsigned char **data,
                       size_t *len, char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    int fd;
    size_t size;
    int rc = joust_open_regular(path, flags, max_bytes, &fd, &size, err, errlen);
    if (rc)
        return rc;
    unsigned char *buf = xmalloc(size + 1);
    size_t n;
    if (joust_read_fd(fd, buf, size, &n) != 0) {
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: %s", path, strerror(errno));
        free(buf);
    } else {
        buf[n] = '\0';
        *data = buf;
        *len = n;
    }
    close(fd);
    return rc;
}
