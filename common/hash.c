#include "hash.h"

#include <errno.h>
#include <stdio.h>
#include <xxhash.h>

#include "err.h"

uint64_t joust_hash64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

int joust_hash_file(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? JOUST_ENOTFOUND : JOUST_EIO;
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        XXH3_64bits_update(st, buf, n);
    int rc = ferror(f) ? JOUST_EIO : 0;
    fclose(f);
    *out = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return rc;
}
