#include "hash.h"

#include <unistd.h>
#include <xxhash.h>

#include "err.h"
#include "safe_open.h"

uint64_t joust_hash64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

int joust_hash_fd(int fd, size_t size, uint64_t *out)
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    char buf[1 << 16];
    int rc = 0;
    while (size > 0) {
        size_t want = size < sizeof buf ? size : sizeof buf, n;
        rc = joust_read_fd(fd, buf, want, &n);
        XXH3_64bits_update(st, buf, n);
        if (rc || n < want)
            break;
        size -= n;
    }
    *out = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return rc;
}

int joust_hash_file(const char *path, size_t max_bytes, uint64_t *out, char *err, size_t errlen)
{
    int fd;
    size_t size;
    int rc = joust_open_regular(path, 0, max_bytes, &fd, &size, err, errlen);
    if (rc)
        return rc;
    if ((rc = joust_hash_fd(fd, size, out)) != 0)
        joust_errf(err, errlen, rc, "%s: read error", path);
    close(fd);
    return rc;
}
