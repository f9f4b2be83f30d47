#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int joust_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

const char *joust_strerror(int rc)
{
    switch (rc) {
    case JOUST_OK: return "ok";
    case JOUST_EINVAL: return "invalid input";
    case JOUST_ENOTFOUND: return "not found";
    case JOUST_EIO: return "i/o error";
    case JOUST_ECORRUPT: return "corrupt data";
    case JOUST_EFORMAT: return "unsupported or undecodable format";
    case JOUST_ETOOBIG: return "exceeds limit";
    case JOUST_EAGAIN: return "try again";
    case JOUST_ETIMEOUT: return "timed out";
    case JOUST_ESTORE: return "store error";
    case JOUST_ENOSPC: return "no space left on the store's disk";
    case JOUST_EPROTO: return "protocol error";
    case JOUST_EEXIST: return "already exists";
    case JOUST_EJUDGE: return "judge error";
    case JOUST_EUNSUPPORTED: return "unsupported";
    case JOUST_EDENIED: return "access denied";
    default: return "unknown error";
    }
}
