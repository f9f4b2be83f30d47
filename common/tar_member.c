/* Tar member reads; see tar_member.h. */
#include "tar_member.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "safe_open.h"
#include "xalloc.h"

static atomic_uint_least64_t n_reads, n_bytes;

int joust_tar_member_read(const joust_uri *ref, const char *path, int flags, size_t max_bytes,
                          unsigned char **data, size_t *len, char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    if (ref->compressed || ref->shard != JOUST_URI_LOCAL)
        return joust_errf(err, errlen, JOUST_EUNSUPPORTED, "%s: member %s is in a %s shard: "
                          "it is read through worker/fetch.h, not by pread", path, ref->member,
                          ref->compressed ? "compressed" : "remote");
    if (max_bytes && ref->size > max_bytes)
        return joust_errf(err, errlen, JOUST_ETOOBIG,
                          "%s: member %s is %llu bytes, over the limit of %zu", path, ref->member,
                          ref->size, max_bytes);
    int fd;
    size_t fsize;
    int rc = joust_open_regular(path, flags, 0, &fd, &fsize, err, errlen);
    if (rc)
        return rc;
    if (ref->offset > fsize || ref->size > fsize - ref->offset) {
        close(fd);
        return joust_errf(err, errlen, JOUST_ECORRUPT,
                          "%s: member %s (bytes %llu..%llu) lies past the end of the shard "
                          "(%zu bytes; truncated or replaced since ingest?)",
                          path, ref->member, ref->offset, ref->offset + ref->size, fsize);
    }
    size_t n = (size_t)ref->size, got = 0;
    unsigned char *buf = xmalloc(n + 1);
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)(ref->offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = errno;
            close(fd);
            free(buf);
            return joust_errf(err, errlen, r < 0 ? JOUST_EIO : JOUST_ECORRUPT,
                              "%s: member %s: %s", path, ref->member,
                              r < 0 ? strerror(e) : "short read (shard truncated?)");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    atomic_fetch_add(&n_reads, 1);
    atomic_fetch_add(&n_bytes, n);
    *data = buf;
    *len = n;
    return 0;
}

void joust_tar_member_counts(uint64_t *reads, uint64_t *bytes)
{
    *reads = atomic_load(&n_reads);
    *bytes = atomic_load(&n_bytes);
}
