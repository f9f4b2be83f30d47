/* The on-disk fetch cache; see fetch_cache.h. */
#define _GNU_SOURCE
#include "fetch_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "safe_open.h"
#include "xalloc.h"

#define NAME_LEN 32
#define TMP_PREFIX ".tmp-"
#define STALE_TMP_S 3600 /* a temp file this old was left by a crash */

struct joust_fetch_cache {
    char *dir;
    size_t max_bytes, estimate;
    int warned;
    joust_fetch_cache_stats st;
};

static int mkdirs(const char *dir)
{
    char *p = xstrdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static int is_entry_name(const char *n)
{
    if (strlen(n) != NAME_LEN)
        return 0;
    for (int i = 0; i < NAME_LEN; i++)
        if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
            return 0;
    return 1;
}

typedef struct {
    char name[NAME_LEN + 1];
    time_t mtime;
    long mtime_ns;
    size_t size;
} file_t;

static int older_first(const void *a, const void *b)
{
    const file_t *x = a, *y = b;
    if (x->mtime != y->mtime)
        return x->mtime < y->mtime ? -1 : 1;
    return (x->mtime_ns > y->mtime_ns) - (x->mtime_ns < y->mtime_ns);
}

/* Scans the folder: sums the entries (into c->estimate), removes stale
 * temp files, and with evict removes the oldest entries down to 90 %. */
static void scan(joust_fetch_cache_t *c, int evict)
{
    DIR *d = opendir(c->dir);
    if (!d)
        return;
    int dfd = dirfd(d);
    file_t *f = NULL;
    size_t n = 0, cap = 0, total = 0;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            if (now - sb.st_mtime > STALE_TMP_S)
                unlinkat(dfd, de->d_name, 0);
            continue;
        }
        if (!is_entry_name(de->d_name))
            continue;
        xgrow((void **)&f, &cap, n + 1, sizeof *f);
        memcpy(f[n].name, de->d_name, NAME_LEN + 1);
        f[n].mtime = sb.st_mtim.tv_sec;
        f[n].mtime_ns = sb.st_mtim.tv_nsec;
        f[n].size = (size_t)sb.st_size;
        total += f[n].size;
        n++;
    }
    if (evict && total > c->max_bytes) {
        qsort(f, n, sizeof *f, older_first);
        size_t goal = c->max_bytes / 10 * 9;
        for (size_t i = 0; i < n && total > goal; i++)
            if (unlinkat(dfd, f[i].name, 0) == 0) {
                total -= f[i].size;
                c->st.evicted++;
            }
    }
    closedir(d);
    free(f);
    c->estimate = total;
}

int joust_fetch_cache_open(const char *dir, size_t max_bytes, joust_fetch_cache_t **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    struct stat sb;
    if (mkdirs(dir) != 0 || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
        access(dir, W_OK | X_OK) != 0)
        return joust_errf(err, errlen, JOUST_EIO, "fetch cache %s: %s", dir,
                          errno ? strerror(errno) : "not a writable folder");
    joust_fetch_cache_t *c = xcalloc(1, sizeof *c);
    c->dir = xstrdup(dir);
    c->max_bytes = max_bytes;
    scan(c, 1);
    *out = c;
    return 0;
}

void joust_fetch_cache_close(joust_fetch_cache_t **self_p)
{
    joust_fetch_cache_t *c = *self_p;
    if (!c)
        return;
    free(c->dir);
    free(c);
    *self_p = NULL;
}

static char *entry_path(const joust_fetch_cache_t *c, const char *uri)
{
    XXH128_hash_t h = XXH3_128bits(uri, strlen(uri));
    size_t n = strlen(c->dir) + NAME_LEN + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%016llx%016llx", c->dir, (unsigned long long)h.high64,
             (unsigned long long)h.low64);
    return p;
}

int joust_fetch_cache_get(joust_fetch_cache_t *c, const char *uri, size_t max_bytes,
                          unsigned char **data, size_t *len)
{
    char *p = entry_path(c, uri), why[64];
    int rc = joust_read_regular(p, JOUST_OPEN_NOFOLLOW, max_bytes, data, len, why, sizeof why);
    if (rc == 0) {
        utimensat(AT_FDCWD, p, NULL, 0); /* now: most recently used */
        c->st.hits++;
    } else {
        c->st.misses++;
        rc = JOUST_ENOTFOUND;
    }
    free(p);
    return rc;
}

void joust_fetch_cache_put(joust_fetch_cache_t *c, const char *uri, const unsigned char *data,
                           size_t len)
{
    if (len > c->max_bytes)
        return;
    char *p = entry_path(c, uri);
    size_t n = strlen(c->dir) + 64;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s/" TMP_PREFIX "%d-%llx", c->dir, (int)getpid(),
             (unsigned long long)joust_now_us());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int ok = fd >= 0;
    for (size_t off = 0; ok && off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (ok && rename(tmp, p) != 0)
        ok = 0;
    if (!ok) {
        if (!c->warned++)
            log_warn("fetch cache %s: cannot write (%s); fetching without it", c->dir,
                     strerror(errno));
        unlink(tmp);
    } else {
        c->st.puts++;
        if ((c->estimate += len) > c->max_bytes)
            scan(c, 1);
    }
    free(tmp);
    free(p);
}

void joust_fetch_cache_stats_get(const joust_fetch_cache_t *c, joust_fetch_cache_stats *out)
{
    *out = c->st;
}
