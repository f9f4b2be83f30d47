/* Tests of common/safe_open.h: every kind of file that is not a regular
 * file (FIFO, character device, directory, socket, and a symlink to each)
 * is refused at once with a reason naming the kind, never opened for a
 * blocking read; a file over the maximum is refused before it is read;
 * NOFOLLOW refuses a link; reads stop at the size the file had at open.
 * ctest's TIMEOUT bounds the run: a blocking open or an endless read would
 * fail it instead of hanging. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "hash.h"
#include "safe_open.h"
#include "testfs.h"

static char tmpdir[] = "/tmp/joust-safeopen-XXXXXX";

static char *path_in(const char *name) { return path_under(tmpdir, name); }

/* Every entry point refuses path with rc and a reason containing why. */
static void refused(const char *path, int flags, size_t max, int rc, const char *why, int line)
{
    char err[512] = "";
    int fd = 7;
    size_t size = 9;
    int got = joust_open_regular(path, flags, max, &fd, &size, err, sizeof err);
    int ok = got == rc && fd == -1 && size == 0 && strstr(err, why) && strstr(err, path);
    FILE *f = (FILE *)1;
    ok = ok && joust_fopen_regular(path, flags, max, &f, NULL, err, sizeof err) == rc && !f;
    unsigned char *data = (unsigned char *)1;
    size_t len = 1;
    ok = ok && joust_read_regular(path, flags, max, &data, &len, err, sizeof err) == rc && !data &&
         len == 0 && strstr(err, why);
    uint64_t h;
    ok = ok && (flags || joust_hash_file(path, max, &h, err, sizeof err) == rc);
    if (!ok)
        fprintf(stderr, "line %d: %s: got %d (%s), want %d with '%s'\n", line, path, got, err, rc,
                why);
    CHECK(ok);
}
#define REFUSED(p, fl, max, rc, why) refused(p, fl, max, rc, why, __LINE__)

static void test_special_files(void)
{
    int s = make_special_files(tmpdir, "");
    CHECK(s >= 0);
    REFUSED(path_in("fifo"), 0, 0, JOUST_EIO, "is a FIFO (named pipe), not a regular file");
    REFUSED("/dev/zero", 0, 0, JOUST_EIO, "is a character device");
    REFUSED("/dev/null", 0, 0, JOUST_EIO, "is a character device");
    REFUSED(path_in("dir"), 0, 0, JOUST_EIO, "is a directory");
    REFUSED(path_in("sock"), 0, 0, JOUST_EIO, "is a socket");
    REFUSED(path_in("to-fifo"), 0, 0, JOUST_EIO, "is a FIFO");
    REFUSED(path_in("to-zero"), 0, 0, JOUST_EIO, "is a character device");
    REFUSED(path_in("to-dir"), 0, 0, JOUST_EIO, "is a directory");
    REFUSED(path_in("to-sock"), 0, 0, JOUST_EIO, "is a socket");
    REFUSED(path_in("missing"), 0, 0, JOUST_ENOTFOUND, "No such file");
    REFUSED("", 0, 0, JOUST_EINVAL, "");
    close(s);
}

static void test_regular_files(void)
{
    FILE *w = fopen(path_in("a.txt"), "w");
    CHECK(w && fputs("hello world", w) >= 0 && fclose(w) == 0);
    CHECK(symlink(path_in("a.txt"), path_in("to-a")) == 0);
    unsigned char *data;
    size_t len;
    char err[256];
    CHECK_RC(joust_read_regular(path_in("a.txt"), 0, 0, &data, &len, err, sizeof err));
    CHECK(len == 11 && !memcmp(data, "hello world", 12)); /* NUL after the bytes */
    free(data);
    /* a link to a regular file is followed, unless NOFOLLOW */
    CHECK_RC(joust_read_regular(path_in("to-a"), 0, 0, &data, &len, err, sizeof err));
    free(data);
    REFUSED(path_in("to-a"), JOUST_OPEN_NOFOLLOW, 0, JOUST_EIO, "is a symbolic link");
    CHECK_RC(joust_read_regular(path_in("a.txt"), JOUST_OPEN_NOFOLLOW, 11, &data, &len, err,
                                sizeof err));
    free(data);
    /* larger than the maximum: refused before reading */
    REFUSED(path_in("a.txt"), 0, 10, JOUST_ETOOBIG, "file is 11 bytes, over the limit of 10");
    /* a sparse file far over the limit costs nothing to refuse */
    int fd = open(path_in("huge"), O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)1 << 40) == 0);
    close(fd);
    REFUSED(path_in("huge"), 0, (size_t)256 << 20, JOUST_ETOOBIG, "over the limit");
    /* the descriptor is blocking again after the checks */
    size_t size;
    CHECK_RC(joust_open_regular(path_in("a.txt"), 0, 0, &fd, &size, err, sizeof err));
    CHECK(size == 11 && !(fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
    /* reads stop at the size at open, even when the file grows */
    w = fopen(path_in("a.txt"), "a");
    CHECK(w && fputs(" and more", w) >= 0 && fclose(w) == 0);
    uint64_t h1, h2;
    CHECK_RC(joust_hash_fd(fd, size, &h1));
    CHECK(h1 == joust_hash64("hello world", 11));
    CHECK_RC(joust_hash_file(path_in("a.txt"), 0, &h2, err, sizeof err));
    CHECK(h2 == joust_hash64("hello world and more", 20));
    close(fd);
}

int main(void)
{
    CHECK(mkdtemp(tmpdir) != NULL);
    test_special_files();
    test_regular_files();
    rm_rf(tmpdir);
    return test_report();
}
