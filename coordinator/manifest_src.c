/* Plain, gzip, zstd and stdin manifests; see manifest_src.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp */
#endif
#include "manifest_src.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "err.h"
#include "safe_open.h"
#include "webdataset.h"
#include "xalloc.h"

#define CHUNK (256 * 1024)

/* The bytes to decode: first what was peeked, then the descriptor. */
typedef struct {
    int fd;
    unsigned char peek[4];
    size_t npeek, peek_off;
} source_t;

static int src_read(source_t *s, unsigned char *buf, size_t cap, size_t *n)
{
    if (s->peek_off < s->npeek) {
        size_t k = s->npeek - s->peek_off;
        k = k < cap ? k : cap;
        memcpy(buf, s->peek + s->peek_off, k);
        s->peek_off += k;
        *n = k;
        return 0;
    }
    return joust_read_fd(s->fd, buf, cap, n);
}

typedef struct {
    int fd;
    size_t written, max;
    const char *name;
} sink_t;

static int sink_write(sink_t *k, const unsigned char *p, size_t n, char *err, size_t errlen)
{
    if (k->written + n > k->max)
        return joust_errf(err, errlen, JOUST_ETOOBIG,
                          "%s: decodes to more than %zu bytes; not read further", k->name, k->max);
    while (n) {
        ssize_t w = write(k->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return joust_errf(err, errlen, JOUST_EIO, "%s: cannot write the decoded manifest "
                              "to a temporary file: %s", k->name, strerror(errno));
        p += w;
        n -= (size_t)w;
        k->written += (size_t)w;
    }
    return 0;
}

static int copy_plain(source_t *s, sink_t *k, char *err, size_t errlen)
{
    unsigned char *buf = xmalloc(CHUNK);
    size_t n;
    int rc;
    while ((rc = src_read(s, buf, CHUNK, &n)) == 0 && n > 0)
        if ((rc = sink_write(k, buf, n, err, errlen)) != 0)
            break;
    if (rc == JOUST_EIO && !err[0])
        joust_errf(err, errlen, rc, "%s: read error", k->name);
    free(buf);
    return rc;
}

static int inflate_gzip(source_t *s, sink_t *k, char *err, size_t errlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return joust_errf(err, errlen, JOUST_EIO, "%s: zlib could not start", k->name);
    unsigned char *in = xmalloc(CHUNK), *out = xmalloc(CHUNK);
    int rc = 0, zr = Z_OK, in_stream = 1;
    size_t n = 0;
    for (;;) {
        if (z.avail_in == 0) {
            if ((rc = src_read(s, in, CHUNK, &n)) != 0) {
                joust_errf(err, errlen, rc, "%s: read error", k->name);
                break;
            }
            if (n == 0)
                break;
            z.next_in = in;
            z.avail_in = (uInt)n;
        }
        if (!in_stream) { /* another gzip member follows the last one */
            inflateReset(&z);
            in_stream = 1;
        }
        z.next_out = out;
        z.avail_out = CHUNK;
        zr = inflate(&z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            rc = joust_errf(err, errlen, JOUST_ECORRUPT, "%s: gzip data is corrupt (%s)",
                            k->name, z.msg ? z.msg : "zlib error");
            break;
        }
        if ((rc = sink_write(k, out, CHUNK - z.avail_out, err, errlen)) != 0)
            break;
        if (zr == Z_STREAM_END)
            in_stream = 0;
    }
    if (rc == 0 && in_stream)
        rc = joust_errf(err, errlen, JOUST_ECORRUPT,
                        "%s: ends in the middle of a gzip stream (truncated)", k->name);
    inflateEnd(&z);
    free(in);
    free(out);
    return rc;
}

static int decompress_zstd(source_t *s, sink_t *k, char *err, size_t errlen)
{
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    if (!dc)
        return joust_errf(err, errlen, JOUST_EIO, "%s: zstd could not start", k->name);
    size_t in_cap = ZSTD_DStreamInSize(), out_cap = ZSTD_DStreamOutSize();
    unsigned char *in = xmalloc(in_cap), *out = xmalloc(out_cap);
    int rc = 0;
    size_t pending = 0, n; /* pending: 0 once a frame is complete */
    while ((rc = src_read(s, in, in_cap, &n)) == 0 && n > 0) {
        ZSTD_inBuffer ib = {in, n, 0};
        while (ib.pos < ib.size && rc == 0) {
            ZSTD_outBuffer ob = {out, out_cap, 0};
            pending = ZSTD_decompressStream(dc, &ob, &ib);
            if (ZSTD_isError(pending))
                rc = joust_errf(err, errlen, JOUST_ECORRUPT, "%s: zstd data is corrupt (%s)",
                                k->name, ZSTD_getErrorName(pending));
            else
                rc = sink_write(k, out, ob.pos, err, errlen);
        }
        if (rc)
            break;
    }
    if (rc == JOUST_EIO && !err[0])
        joust_errf(err, errlen, rc, "%s: read error", k->name);
    if (rc == 0 && pending != 0)
        rc = joust_errf(err, errlen, JOUST_ECORRUPT,
                        "%s: ends in the middle of a zstd frame (truncated)", k->name);
    ZSTD_freeDCtx(dc);
    free(in);
    free(out);
    return rc;
}

/* An unlinked temporary file. */
static int temp_fd(const char *name, char *err, size_t errlen, int *fd)
{
    const char *dir = getenv("TMPDIR");
    size_t n = strlen(dir && *dir ? dir : "/tmp") + 32;
    char *path = xmalloc(n);
    snprintf(path, n, "%s/joust-manifest-XXXXXX", dir && *dir ? dir : "/tmp");
    *fd = mkostemp(path, O_CLOEXEC);
    int rc = 0;
    if (*fd < 0)
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: cannot create a temporary file in %s: %s",
                        name, dir && *dir ? dir : "/tmp", strerror(errno));
    else
        unlink(path);
    free(path);
    return rc;
}

/* WebDataset shards (webdataset.h): their manifest lines into sink. */
static int write_shards(const char *pattern, sink_t *k, char *err, size_t errlen)
{
    char **list;
    size_t n;
    int rc = joust_wds_expand(pattern, &list, &n, err, errlen);
    if (rc) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        return joust_errf(err, errlen, rc, "%s: %s", pattern, why);
    }
    int dupfd = dup(k->fd);
    FILE *out = dupfd < 0 ? NULL : fdopen(dupfd, "w");
    if (!out) {
        if (dupfd >= 0)
            close(dupfd);
        joust_wds_free_list(list, n);
        return joust_errf(err, errlen, JOUST_EIO, "%s: %s", pattern, strerror(errno));
    }
    joust_wds_stats ws;
    rc = joust_wds_write_manifest(list, n, NULL, out, &ws, err, errlen);
    if (fclose(out) != 0 && rc == 0)
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: cannot write the shards' manifest", pattern);
    joust_wds_free_list(list, n);
    if (rc == 0 && ws.samples == 0)
        rc = joust_errf(err, errlen, JOUST_EINVAL, "%s: the shards hold no usable sample "
                        "(%llu read, %llu refused or damaged; reasons above)", pattern,
                        (unsigned long long)ws.shards, (unsigned long long)ws.bad_shards);
    off_t end = rc == 0 ? lseek(k->fd, 0, SEEK_END) : -1;
    if (rc == 0 && end < 0)
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: %s", pattern, strerror(errno));
    k->written = end > 0 ? (size_t)end : 0;
    return rc;
}

int joust_manifest_open(const char *path, size_t max_bytes, int *fd, size_t *size,
                        joust_manifest_kind *kind, char *err, size_t errlen)
{
    *fd = -1;
    *size = 0;
    if (err && errlen)
        err[0] = '\0';
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "stdin" : path;
    if (!is_stdin && joust_wds_is_shards(path)) {
        if (kind)
            *kind = JOUST_MANIFEST_SHARDS;
        sink_t sink = {.max = JOUST_MANIFEST_MAX_DECODED, .name = name};
        int rc = temp_fd(name, err, errlen, &sink.fd);
        if (rc == 0 && (rc = write_shards(path, &sink, err, errlen)) == 0 &&
            lseek(sink.fd, 0, SEEK_SET) != 0)
            rc = joust_errf(err, errlen, JOUST_EIO, "%s: %s", name, strerror(errno));
        if (rc) {
            if (sink.fd >= 0)
                close(sink.fd);
            return rc;
        }
        *fd = sink.fd;
        *size = sink.written;
        return 0;
    }
    source_t s = {.fd = STDIN_FILENO};
    size_t file_size = 0;
    int rc;
    if (!is_stdin && (rc = joust_open_regular(path, 0, 0, &s.fd, &file_size, err, errlen)) != 0)
        return rc;
    /* the magic bytes */
    if ((rc = joust_read_fd(s.fd, s.peek, sizeof s.peek, &s.npeek)) != 0) {
        if (!is_stdin)
            close(s.fd);
        return joust_errf(err, errlen, rc, "%s: read error", name);
    }
    joust_manifest_kind k = s.npeek >= 2 && s.peek[0] == 0x1f && s.peek[1] == 0x8b
                              ? JOUST_MANIFEST_GZIP
                          : s.npeek == 4 && s.peek[0] == 0x28 && s.peek[1] == 0xb5 &&
                                    s.peek[2] == 0x2f && s.peek[3] == 0xfd
                              ? JOUST_MANIFEST_ZSTD
                              : JOUST_MANIFEST_PLAIN;
    if (kind)
        *kind = k;
    if (k == JOUST_MANIFEST_PLAIN && !is_stdin) { /* the file itself */
        if (lseek(s.fd, 0, SEEK_SET) != 0) {
            close(s.fd);
            return joust_errf(err, errlen, JOUST_EIO, "%s: %s", name, strerror(errno));
        }
        *fd = s.fd;
        *size = file_size;
        return 0;
    }
    sink_t sink = {.max = max_bytes ? max_bytes : JOUST_MANIFEST_MAX_DECODED, .name = name};
    if ((rc = temp_fd(name, err, errlen, &sink.fd)) == 0) {
        rc = k == JOUST_MANIFEST_GZIP   ? inflate_gzip(&s, &sink, err, errlen)
           : k == JOUST_MANIFEST_ZSTD ? decompress_zstd(&s, &sink, err, errlen)
                                        : copy_plain(&s, &sink, err, errlen);
        if (rc == 0 && lseek(sink.fd, 0, SEEK_SET) != 0)
            rc = joust_errf(err, errlen, JOUST_EIO, "%s: %s", name, strerror(errno));
        if (rc)
            close(sink.fd);
    }
    if (!is_stdin)
        close(s.fd);
    if (rc)
        return rc;
    *fd = sink.fd;
    *size = sink.written;
    return 0;
}
