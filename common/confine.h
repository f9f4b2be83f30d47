/* Confinement of image paths to allowed roots, shared by ingest (the
 * manifest's folder by default, or `--allow-root DIR`, repeatable) and the
 * worker's image stage (worker/imgsrc.h).
 *
 * What it promises: with roots configured, a path is accepted only when its
 * canonical form (realpath(3): every symlink and every ".." followed first)
 * lies inside the canonical form of one of the roots, compared component by
 * component ("/data/img" does not contain "/data/imgs"). A path that does
 * not exist is placed by its nearest existing ancestor (canonical) plus the
 * rest, so a missing file inside a root is reported missing (JOUST_ENOTFOUND)
 * and one outside is refused (JOUST_EDENIED) without touching it. Without
 * roots (n == 0: `--allow-any-path`) every path is
 * accepted unchanged; the caller decides when that is allowed.
 *
 * Usage:
 *     joust_path_roots roots;       // once
 *     rc = joust_path_roots_init(&roots, dirs, n, err, errlen);
 *     char *real;                   // per image
 *     rc = joust_path_confine(&roots, path, &real, err, errlen);
 *     // rc == JOUST_EDENIED: err says "<path>: outside the allowed roots"
 *     // rc == 0: open `real` (the canonical path), then free(real)
 *     joust_path_roots_free(&roots);
 *
 * Limits: the check and the later open are two steps; the image stage opens
 * the canonical path with O_NOFOLLOW, so a last component swapped for a
 * link is refused, but someone who can rename directories inside a root
 * while the worker runs could still race them. Roots keep a manifest from
 * pointing at files outside them; they are not a defence against a local
 * attacker with write access to a root. Remote URIs are not paths and are
 * not checked here.
 * Threads: a joust_path_roots is read-only after init; share it freely. */
#ifndef JOUST_CONFINE_H
#define JOUST_CONFINE_H
#include <stddef.h>

typedef struct {
    char **dirs; /* canonical root directories, owned */
    size_t n;
} joust_path_roots;

/* Canonicalises the roots. A root that does not exist or is not a
 * directory is an error (a typo must not silently deny every image).
 * @return 0, JOUST_ENOTFOUND or JOUST_EINVAL, with the root named in err. */
int joust_path_roots_init(joust_path_roots *r, const char *const *dirs, size_t n, char *err,
                          size_t errlen);
void joust_path_roots_free(joust_path_roots *r);

/* Checks path against the roots (r NULL or without roots: no
 * confinement). On 0, *resolved is a malloc'd path to read (canonical when
 * roots are set, else a copy of path); the caller frees it. On failure
 * *resolved is NULL and err names path.
 * @return 0; JOUST_EDENIED ("outside the allowed roots"); JOUST_ENOTFOUND
 *         (no such file, inside a root); JOUST_EIO (realpath failed
 *         otherwise, e.g. a loop of symlinks or no permission). */
int joust_path_confine(const joust_path_roots *r, const char *path, char **resolved, char *err,
                       size_t errlen);

/* joust_path_confine for many paths in few folders (ingest): the
 * canonical form of the last folder seen is kept, so a path whose folder
 * is the last one's costs one lstat instead of a realpath per component.
 * The result is the same as joust_path_confine's (a last component that is
 * a link, ".", "..", or a folder that does not resolve takes the full
 * path); the folder's canonical form is as old as the cache, which widens
 * the check-then-open window of "Limits" above to the cache's life, so
 * keep one cache per pass over a manifest. One cache per thread. */
typedef struct {
    char *dir;  /* the folder as written, or NULL */
    char *real; /* its canonical form; NULL when it did not resolve */
    int missing_rc;    /* a folder that does not exist: the verdict for every */
    char *missing_why; /* path in it, and the reason after "<path>: " */
} joust_confine_cache;
int joust_path_confine_cached(const joust_path_roots *r, joust_confine_cache *c, const char *path,
                              char **resolved, char *err, size_t errlen);
void joust_confine_cache_free(joust_confine_cache *c);

#endif
