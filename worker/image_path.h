/* Confinement of image paths to configured roots (`joust worker
 * --allow-root DIR`, repeatable).
 *
 * What it promises: with roots configured, a path is accepted only when its
 * canonical form (realpath(3): every symlink and every ".." followed first)
 * lies inside the canonical form of one of the roots, compared component by
 * component ("/data/img" does not contain "/data/imgs"). The file must exist
 * to be checked. Without roots every path is accepted unchanged.
 *
 * How a judge uses it (judge_quality.c does this; the openai judge must do
 * the same for local files and file:// URIs, after turning the URI into a
 * path and applying image_root, before reading anything):
 *
 *     joust_path_roots roots;       // once, in the judge's constructor
 *     rc = joust_path_roots_init(&roots, cfg->allow_roots, cfg->n_allow_roots, err, errlen);
 *     ...
 *     char *real;                   // per image
 *     rc = joust_path_confine(&roots, path, &real, err, errlen);
 *     // rc == JOUST_EDENIED: fail this image with IMAGE_ERROR; err says
 *     //   "<path>: outside the allowed roots"
 *     // rc == 0: read `real` (the canonical path), then free(real)
 *     joust_path_roots_free(&roots); // in the judge's destroy
 *
 * Limits: the check and the later open are two steps; someone who can
 * rename directories inside a root while the worker runs could race them.
 * Roots keep a manifest from pointing a worker at files outside them; they
 * are not a defence against a local attacker with write access to a root.
 * Remote URIs (http, https) are not paths and are not checked here.
 * Threads: a joust_path_roots is read-only after init; share it freely. */
#ifndef JOUST_IMAGE_PATH_H
#define JOUST_IMAGE_PATH_H
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
 *         (no such file, so it cannot be checked); JOUST_EIO (realpath
 *         failed otherwise, e.g. a loop of symlinks or no permission). */
int joust_path_confine(const joust_path_roots *r, const char *path, char **resolved, char *err,
                       size_t errlen);

#endif
