/* Content hashing (XXH3-64): dedup of images and cache keys. Not a MAC. */
#ifndef JOUST_HASH_H
#define JOUST_HASH_H
#include <stddef.h>
#include <stdint.h>

uint64_t joust_hash64(const void *data, size_t len);
/* Hashes a whole file. Returns 0 or JOUST_ENOTFOUND / JOUST_EIO. */
int joust_hash_file(const char *path, uint64_t *out);

#endif
