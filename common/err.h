/* Error codes shared by every part of joust.
 * Functions return 0 on success or one of these negative codes; results go
 * through out-parameters. joust_strerror() never returns NULL. */
#ifndef JOUST_ERR_H
#define JOUST_ERR_H

enum {
    JOUST_OK = 0,
    JOUST_EINVAL = -1,      /* invalid argument or malformed input */
    JOUST_ENOTFOUND = -2,   /* key, file or item does not exist */
    JOUST_EIO = -3,         /* read/write failure of a file or socket */
    JOUST_ECORRUPT = -4,    /* stored or received data fails validation */
    JOUST_EFORMAT = -5,     /* unsupported or undecodable image format */
    JOUST_ETOOBIG = -6,     /* exceeds a configured limit (pixels, bytes) */
    JOUST_EAGAIN = -7,      /* try again later (would block, backpressure) */
    JOUST_ETIMEOUT = -8,    /* deadline passed */
    JOUST_ESTORE = -9,      /* RocksDB reported an error */
    JOUST_EPROTO = -10,     /* wire protocol violation */
    JOUST_EEXIST = -11,     /* already exists */
    JOUST_EJUDGE = -12,     /* judge failed to produce an outcome */
    JOUST_EUNSUPPORTED = -13,
    JOUST_EDENIED = -14,    /* path outside allowed roots, permission */
    JOUST_ENOSPC = -15      /* the store's disk is full */
};

const char *joust_strerror(int rc);

#include <stddef.h>
/* Writes the printf-style reason into err (when err and errlen are set)
 * and returns rc: `return joust_errf(err, errlen, JOUST_EIO, "%s: ...", p);` */
__attribute__((format(printf, 4, 5)))
int joust_errf(char *err, size_t errlen, int rc, const char *fmt, ...);

#endif
