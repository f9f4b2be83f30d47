/* Image references to local paths; see uri.h. */
#include "uri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int joust_uri_to_path(const char *uri, const char *root, char **path, char *err, size_t errlen)
{
    *path = NULL;
    if (!uri || !*uri) {
        snprintf(err, errlen, "empty image reference");
        return JOUST_EINVAL;
    }
    char *p;
    if (strncmp(uri, "file://", 7) == 0) {
        const char *s = uri + 7;
        if (strncmp(s, "localhost/", 10) == 0)
            s += 9;
        p = xmalloc(strlen(s) + 1);
        size_t n = 0;
        for (; *s; s++) {
            int hi, lo;
            if (*s == '%' && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
                p[n++] = (char)(hi * 16 + lo);
                s += 2;
            } else {
                p[n++] = *s;
            }
        }
        p[n] = '\0';
    } else if (strstr(uri, "://")) {
        snprintf(err, errlen, "unsupported URI scheme (only local paths and file:// are read)");
        return JOUST_EUNSUPPORTED;
    } else {
        p = xstrdup(uri);
    }
    if (p[0] != '/' && root && *root) {
        size_t n = strlen(root) + strlen(p) + 2;
        char *full = xmalloc(n);
        snprintf(full, n, "%s/%s", root, p);
        free(p);
        p = full;
    }
    *path = p;
    return 0;
}
