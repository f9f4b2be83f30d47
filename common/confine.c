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

static int outside(const joust_path_roots *r, const char *path, char *err, size_t errlen)
{
    return joust_errf(err, errlen, JOUST_EDENIED, "%s: outside the allowed roots", path);
}

static int in_roots(const joust_path_roots *r, const char *real)
{
    for (size_t i = 0; i < r->n; i++)
        if (inside(r->dirs[i], real))
            return 1;
    return 0;
}

/* A path that does not exist (yet) is placed by its nearest existing
 * ancestor: canonical ancestor + the rest, which holds no link because it
 * does not exist. A ".." in that rest cannot be placed and is refused. */
static int confine_missing(const joust_path_roots *r, const char *path, char *err, size_t errlen)
{
    char *copy = xstrdup(path), *real = NULL, *slash;
    while (!real && (slash = strrchr(copy, '/')) != NULL) {
        *slash = '\0';
        real = realpath(copy[0] ? copy : "/", NULL);
    }
    if (!real)
        real = realpath(".", NULL);
    const char *rest = path + strlen(copy);
    int rc;
    if (strstr(rest, "/../") || (strlen(rest) >= 3 && !strcmp(rest + strlen(rest) - 3, "/..")))
        rc = joust_errf(err, errlen, JOUST_EDENIED,
                        "%s: outside the allowed roots ('..' under a folder that does not exist)",
                        path);
    else if (real && in_roots(r, real))
        rc = joust_errf(err, errlen, JOUST_ENOTFOUND, "%s: %s", path, strerror(ENOENT));
    else
        rc = outside(r, path, err, errlen);
    free(real);
    free(copy);
    return rc;
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
        if (e == ENOENT)
            return confine_missing(r, path, err, errlen);
        return joust_errf(err, errlen, e == ENOTDIR ? JOUST_ENOTFOUND : JOUST_EIO, "%s: %s", path,
                          strerror(e));
    }
    if (in_roots(r, real)) {
        *resolved = real;
        return 0;
    }
    free(real);
    return outside(r, path, err, errlen);
}
