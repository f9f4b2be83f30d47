/* Image references; see uri.h. */
#include "uri.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "xalloc.h"

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Length of the RFC 3986 scheme at s ("ALPHA *( ALPHA / DIGIT / + / - / . )")
 * when it is followed by ':', else 0. */
static size_t scheme_len(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    size_t n = 1;
    while (isalnum((unsigned char)s[n]) || s[n] == '+' || s[n] == '-' || s[n] == '.')
        n++;
    return s[n] == ':' ? n : 0;
}

/* Percent-decodes the path of a file URI into a new string. */
static int decode_path(const char *s, char **out, char *err, size_t errlen)
{
    size_t n = strlen(s), k = 0;
    char *p = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '?' || s[i] == '#') {
            free(p);
            return joust_errf(err, errlen, JOUST_EINVAL,
                              "file URI has a %s ('%c'); write a literal '%c' in a file name as %s",
                              s[i] == '?' ? "query" : "fragment", s[i], s[i],
                              s[i] == '?' ? "%3F" : "%23");
        }
        if (s[i] != '%') {
            p[k++] = s[i];
            continue;
        }
        int hi = hexval((unsigned char)s[i + 1]);
        int lo = hi < 0 ? -1 : hexval((unsigned char)s[i + 2]);
        if (hi < 0 || lo < 0) {
            free(p);
            return joust_errf(err, errlen, JOUST_EINVAL,
                              "file URI has a bad percent escape at \"%.3s\" ('%%' must be "
                              "followed by two hex digits)", s + i);
        }
        int c = hi * 16 + lo;
        if (c == 0 || c == '/') {
            free(p);
            return joust_errf(err, errlen, JOUST_EINVAL,
                              "file URI has %%%c%c (%s)", s[i + 1], s[i + 2],
                              c ? "an encoded '/' cannot be part of a file name"
                                : "a NUL byte cannot be part of a path");
        }
        p[k++] = (char)c;
        i += 2;
    }
    p[k] = '\0';
    *out = p;
    return 0;
}

static int parse_file_uri(const char *ref, const char *rest, joust_uri *out, char *err,
                          size_t errlen)
{
    const char *path = rest;
    if (rest[0] == '/' && rest[1] == '/') {
        const char *host = rest + 2, *slash = strchr(host, '/');
        size_t hlen = slash ? (size_t)(slash - host) : strlen(host);
        if (hlen && !(hlen == 9 && strncasecmp(host, "localhost", 9) == 0))
            return joust_errf(err, errlen, JOUST_EINVAL,
                              "file URI names host \"%.*s\"; only local files (file:///path "
                              "or file://localhost/path) are read",
                              (int)(hlen > 200 ? 200 : hlen), host);
        path = host + hlen;
    }
    if (path[0] != '/')
        return joust_errf(err, errlen, JOUST_EINVAL, "file URI \"%s\" has %s", ref,
                          path[0] ? "a relative path (file URIs name absolute paths)"
                                  : "an empty path");
    out->scheme = JOUST_URI_LOCAL;
    return decode_path(path, &out->path, err, errlen);
}

/* Decimal digits at *s up to the next '&' or the end, into *v. */
static int parse_num(const char **s, unsigned long long *v)
{
    const char *p = *s;
    unsigned long long x = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (x > (~0ULL - 9) / 10)
            return -1;
        x = x * 10 + (unsigned long long)(*p - '0');
    }
    *s = p;
    *v = x;
    return 0;
}

/* Percent-decodes n bytes of s into a new string (NULs refused). */
static int decode_member(const char *s, size_t n, char **out)
{
    char *p = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            p[k++] = s[i];
            continue;
        }
        int hi = i + 2 < n + 1 ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = hi < 0 ? -1 : hexval((unsigned char)s[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(p);
            return -1;
        }
        p[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    p[k] = '\0';
    *out = p;
    return 0;
}

static int parse_tar(const char *ref, const char *base_dir, joust_uri *out, char *err,
                     size_t errlen)
{
    const char *body = ref + 4, *hash = strchr(body, '#');
    size_t sl = scheme_len(body);
    joust_uri_scheme shard = JOUST_URI_LOCAL;
    if (sl && strncmp(body + sl, "://", 3) == 0) {
        if (sl == 4 && strncasecmp(body, "http", 4) == 0)
            shard = JOUST_URI_HTTP;
        else if (sl == 5 && strncasecmp(body, "https", 5) == 0)
            shard = JOUST_URI_HTTPS;
        else if (sl == 2 && strncasecmp(body, "s3", 2) == 0)
            shard = JOUST_URI_S3;
        else
            return joust_errf(err, errlen, JOUST_EUNSUPPORTED,
                              "tar member reference \"%.200s\": a shard is a local path, "
                              "http(s):// or s3://", ref);
    }
    if (!hash || hash == body)
        return joust_errf(err, errlen, JOUST_EINVAL,
                          "tar member reference \"%.200s\" needs tar:SHARD#offset=N&size=M&"
                          "member=NAME", ref);
    const char *p = hash + 1;
    unsigned long long off, size;
    if (strncmp(p, "compressed=1&", 13) == 0) {
        out->compressed = 1;
        p += 13;
    }
    if (strncmp(p, "offset=", 7) != 0 || (p += 7, parse_num(&p, &off)) ||
        strncmp(p, "&size=", 6) != 0 || (p += 6, parse_num(&p, &size)) || size == 0 ||
        strncmp(p, "&member=", 8) != 0 || !p[8] ||
        decode_member(p + 8, strlen(p + 8), &out->member))
        return joust_errf(err, errlen, JOUST_EINVAL,
                          "tar member reference \"%.200s\": expected #[compressed=1&]offset=N&"
                          "size=M&member=NAME (decimal N, M >= 1, a percent-encoded NAME)", ref);
    size_t plen = (size_t)(hash - body);
    if (shard == JOUST_URI_LOCAL && body[0] != '/' && base_dir && *base_dir) {
        size_t n = strlen(base_dir) + plen + 2;
        out->path = xmalloc(n);
        snprintf(out->path, n, "%s/%.*s", base_dir, (int)plen, body);
    } else {
        out->path = xmalloc(plen + 1);
        memcpy(out->path, body, plen);
        out->path[plen] = '\0';
    }
    out->scheme = JOUST_URI_TAR;
    out->shard = shard;
    out->offset = off;
    out->size = size;
    return 0;
}

static char *format_tar(const char *shard, int compressed, unsigned long long offset,
                        unsigned long long size, const char *member)
{
    size_t n = strlen(shard) + 3 * strlen(member) + 96, k;
    char *s = xmalloc(n);
    k = (size_t)snprintf(s, n, "tar:%s#%soffset=%llu&size=%llu&member=", shard,
                         compressed ? "compressed=1&" : "", offset, size);
    for (const unsigned char *m = (const unsigned char *)member; *m; m++)
        if (*m < 0x21 || *m == '%' || *m == '&' || *m == '#' || *m >= 0x7f)
            k += (size_t)snprintf(s + k, n - k, "%%%02X", *m);
        else
            s[k++] = (char)*m;
    s[k] = '\0';
    return s;
}

char *joust_uri_format_tar(const char *shard, unsigned long long offset, unsigned long long size,
                           const char *member)
{
    return format_tar(shard, 0, offset, size, member);
}

char *joust_uri_format_member(const joust_uri *u)
{
    return format_tar(u->path, u->compressed, u->offset, u->size, u->member ? u->member : "");
}

int joust_uri_parse(const char *ref, const char *base_dir, joust_uri *out, char *err,
                    size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    memset(out, 0, sizeof *out);
    if (!ref || !*ref)
        return joust_errf(err, errlen, JOUST_EINVAL, "empty image reference");
    size_t sl = scheme_len(ref);
    if (sl == 3 && strncmp(ref, "tar:", 4) == 0) {
        int rc = parse_tar(ref, base_dir, out, err, errlen);
        if (rc)
            joust_uri_clear(out);
        return rc;
    }
    int is_file = sl == 4 && strncasecmp(ref, "file", 4) == 0;
    if (sl && (is_file || strncmp(ref + sl, "://", 3) == 0)) {
        if (is_file)
            return parse_file_uri(ref, ref + 5, out, err, errlen);
        static const struct {
            const char *name;
            joust_uri_scheme s;
        } remote[] = {{"http", JOUST_URI_HTTP}, {"https", JOUST_URI_HTTPS}, {"s3", JOUST_URI_S3}};
        for (size_t i = 0; i < sizeof remote / sizeof *remote; i++)
            if (strlen(remote[i].name) == sl && strncasecmp(ref, remote[i].name, sl) == 0) {
                out->scheme = remote[i].s;
                out->path = xstrdup(ref);
                return 0;
            }
        return joust_errf(err, errlen, JOUST_EUNSUPPORTED,
                          "unsupported URI scheme \"%.*s\" (local paths, file://, http(s):// and "
                          "s3:// are recognised)", (int)(sl > 32 ? 32 : sl), ref);
    }
    if (ref[0] != '/' && base_dir && *base_dir) { /* base_dir/ref (per image at ingest: no printf) */
        size_t bl = strlen(base_dir), rl = strlen(ref);
        out->path = xmalloc(bl + rl + 2);
        memcpy(out->path, base_dir, bl);
        out->path[bl] = '/';
        memcpy(out->path + bl + 1, ref, rl + 1);
    } else {
        out->path = xstrdup(ref);
    }
    out->scheme = JOUST_URI_LOCAL;
    return 0;
}

void joust_uri_clear(joust_uri *u)
{
    if (!u)
        return;
    free(u->path);
    free(u->member);
    u->path = NULL;
    u->member = NULL;
    u->offset = u->size = 0;
    u->compressed = 0;
    u->scheme = u->shard = JOUST_URI_LOCAL;
}

const char *joust_uri_scheme_name(joust_uri_scheme s)
{
    switch (s) {
    case JOUST_URI_HTTP: return "http";
    case JOUST_URI_HTTPS: return "https";
    case JOUST_URI_S3: return "s3";
    case JOUST_URI_TAR: return "tar";
    default: return "file";
    }
}
