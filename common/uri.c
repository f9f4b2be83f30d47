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

int joust_uri_parse(const char *ref, const char *base_dir, joust_uri *out, char *err,
                    size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    memset(out, 0, sizeof *out);
    if (!ref || !*ref)
        return joust_errf(err, errlen, JOUST_EINVAL, "empty image reference");
    size_t sl = scheme_len(ref);
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
    if (ref[0] != '/' && base_dir && *base_dir) {
        size_t n = strlen(base_dir) + strlen(ref) + 2;
        out->path = xmalloc(n);
        snprintf(out->path, n, "%s/%s", base_dir, ref);
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
    u->path = NULL;
    u->scheme = JOUST_URI_LOCAL;
}

const char *joust_uri_scheme_name(joust_uri_scheme s)
{
    switch (s) {
    case JOUST_URI_HTTP: return "http";
    case JOUST_URI_HTTPS: return "https";
    case JOUST_URI_S3: return "s3";
    default: return "file";
    }
}
