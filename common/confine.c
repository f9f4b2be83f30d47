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

void joust_confine_cache_free(joust_confine_cache *c)
{
    free(c->dir);
    free(c->real);
    free(c->missing_why);
    c->dir = c->real = c->missing_why = NULL;
    c->missing_rc = 0;
}

int joust_path_confine_cached(const joust_path_roots *r, joust_confine_cache *c, const char *path,
                              char **resolved, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : NULL;
    if (!r || r->n == 0 || !slash || slash == path || !*base || !strcmp(base, ".") ||
        !strcmp(base, ".."))
        return joust_path_confine(r, path, resolved, err, errlen);
    size_t dlen = (size_t)(slash - path);
    if (!c->dir || strlen(c->dir) != dlen || memcmp(c->dir, path, dlen)) {
        joust_confine_cache_free(c);
        c->dir = xstrndup(path, dlen);
        c->real = realpath(c->dir, NULL);
        c->missing_rc = 0;
        if (!c->real && errno == ENOENT) {
            /* a folder that does not exist: every path in it is placed by
             * the same nearest existing ancestor, with the same verdict */
            size_t plen = strlen(path), wlen = plen + 256;
            char *why = xmalloc(wlen);
            c->missing_rc = confine_missing(r, path, why, wlen);
            /* the reason after "<path>: " */
            c->missing_why = xstrdup(strlen(why) > plen + 2 ? why + plen + 2 : why);
            free(why);
        }
    }
    if (c->missing_rc) {
        *resolved = NULL;
        return joust_errf(err, errlen, c->missing_rc, "%s: %s", path, c->missing_why);
    }
    if (!c->real)
        return joust_path_confine(r, path, resolved, err, errlen);
    size_t rlen = strlen(c->real), blen = strlen(base);
    char *cand = xmalloc(rlen + blen + 2);
    memcpy(cand, c->real, rlen);
    cand[rlen] = '/';
    memcpy(cand + rlen + 1, base, blen + 1);
    if (rlen == 1) /* the folder is "/" */
        memmove(cand + 1, cand + 2, blen + 1);
    struct stat st;
    int rc;
    *resolved = NULL;
    if (lstat(cand, &st) != 0) {
        int e = errno;
        if (e == ENOENT) /* placed by its folder, as confine_missing does */
            rc = in_roots(r, c->real)
                   ? joust_errf(err, errlen, JOUST_ENOTFOUND, "%s: %s", path, strerror(ENOENT))
                   : outside(r, path, err, errlen);
        else
            rc = joust_path_confine(r, path, resolved, err, errlen);
    } else if (S_ISLNK(st.st_mode)) {
        rc = joust_path_confine(r, path, resolved, err, errlen);
    } else if (in_roots(r, cand)) {
        *resolved = cand;
        return 0;
    } else {
        rc = outside(r, path, err, errlen);
    }
    free(cand);
    return rc;
}
