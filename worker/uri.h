/* Image references to local paths, shared by the judges that read files.
 * Ownership: *path is malloc'd and owned by the caller.
 * Threads: reentrant. */
#ifndef JOUST_URI_H
#define JOUST_URI_H
#include <stddef.h>

/* Plain paths are taken literally (a relative one is joined to root when
 * root is set; root is a convenience, not a sandbox); file:// URIs are
 * percent-decoded (file://localhost/ too).
 * @return 0; JOUST_EUNSUPPORTED for other schemes (http(s)://, s3://),
 *         with the reason in err; JOUST_EINVAL for NULL or empty uri. */
int joust_uri_to_path(const char *uri, const char *root, char **path, char *err, size_t errlen);

#endif
