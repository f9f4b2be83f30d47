/* Path confinement; see confine.h. */
#include "confine.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "xalloc.h"

int joust_path_roots_init(joust_path_roots *r, const char *const *dirs, size_t n, char *err,
                          size_t errlen)
{
    r->dirs = NULL;
    r->n = 0;
    if (n == 0)
        return 0;
    r->dirs = xcalloc(n, sizeof *r->dirs);
    for (size_t i = 0; i < n; i++) {
        char *real = dirs[i] && *dirs[i] ? realpath(dirs[i], NULL) : NULL;
        struct stat st;
        if (!real || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
            int rc = !real && errno == ENOENT ? JOUST_ENOTFOUND : JOUST_EINVAL;
            if (err && errlen)
                snprintf(err, errlen, "allowed root '%s': %s", dirs[i] ? dirs[i] : "",
                         real ? "not a directory" : strerror(errno));
            free(real);
            joust_path_roots_free(r);
            return rc;
        }
        r->dirs[r->n++] = real;
    }
    return 0;
}

void joust_path_roots_free(joust_path_roots *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->dirs[i]);
    free(r->dirs);
    r->dirs = NULL;
    r->n = 0;
}

/* root and path are canonical: no "..", no "//", no trailing '/' except
 * for "/" itself. */
static int inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(root, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int joust_path_confine(const joust_path_roots *r, const char *path, char **resolved, char *err,
                       size_t errlen)
{
    *resolved = NULL;
    if (!r || r->n == 0) {
        *resolved = xstrdup(path);
        return 0;
    }
    char *real = realpath(path, NULL);
    if (!real) {
        int e = errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT || e == ENOTDIR ? JOUST_ENOTFOUND : JOUST_EIO;
    }
    for (size_t i = 0; i < r->n; i++)
        if (inside(r->dirs[i], real)) {
            *resolved = real;
            return 0;
        }
    free(real);
    if (err && errlen)
        snprintf(err, errlen, "%s: outside the allowed roots", path);
    return JOUST_EDENIED;
}
