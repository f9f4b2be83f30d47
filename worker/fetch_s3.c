/* s3:// addressing and credentials; see fetch_s3.h. */
#include "fetch_s3.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "xalloc.h"
#include "safe_open.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* The three keys of [profile] in the INI file at path. 1 when the section
 * was found, 0 when not, JOUST_ENOTFOUND when the file is missing. */
static int read_profile(const char *path, const char *profile, char **id, char **secret,
                        char **token)
{
    FILE *f = NULL; /* safe_open: a FIFO or device named here fails, never blocks */
    if (joust_fopen_regular(path, 0, 1 << 20, &f, NULL, NULL, 0) < 0)
        return JOUST_ENOTFOUND;
    char *line = NULL;
    size_t cap = 0;
    int in = 0, found = 0;
    while (getline(&line, &cap, f) >= 0) {
        char *s = trim(line);
        if (s[0] == '#' || s[0] == ';' || !s[0])
            continue;
        if (s[0] == '[') {
            char *end = strchr(s, ']');
            if (end)
                *end = '\0';
            in = strcmp(trim(s + 1), profile) == 0;
            found |= in;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || !eq)
            continue;
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        char **dst = strcmp(k, "aws_access_key_id") == 0       ? id
                   : strcmp(k, "aws_secret_access_key") == 0 ? secret
                   : strcmp(k, "aws_session_token") == 0     ? token : NULL;
        if (dst) {
            free(*dst);
            *dst = xstrdup(v);
        }
    }
    free(line);
    fclose(f);
    return found;
}

int joust_s3_config_load(joust_s3_config *c, const char *endpoint, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    const char *ep = endpoint && *endpoint ? endpoint : env("AWS_ENDPOINT_URL");
    if (ep) {
        size_t n = strlen(ep);
        while (n && ep[n - 1] == '/')
            n--;
        c->endpoint = xstrndup(ep, n);
    }
    const char *region = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
    c->region = xstrdup(region ? region : "us-east-1");
    char *id = NULL, *secret = NULL, *token = NULL;
    if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
        id = xstrdup(env("AWS_ACCESS_KEY_ID"));
        secret = xstrdup(env("AWS_SECRET_ACCESS_KEY"));
        token = env("AWS_SESSION_TOKEN") ? xstrdup(env("AWS_SESSION_TOKEN")) : NULL;
        c->source = xstrdup("the environment (AWS_ACCESS_KEY_ID)");
    } else {
        const char *file = env("AWS_SHARED_CREDENTIALS_FILE"), *home = env("HOME");
        const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
        joust_buf_t path = {0};
        if (file)
            joust_buf_puts(&path, file);
        else if (home)
            joust_buf_printf(&path, "%s/.aws/credentials", home);
        int found = path.len ? read_profile(path.data, profile, &id, &secret, &token) : 0;
        int named = file || env("AWS_PROFILE");
        const char *pname = path.len ? path.data : "~/.aws/credentials";
        int rc = 0;
        if (named && found < 0)
            rc = joust_errf(err, errlen, JOUST_EINVAL, "%s: cannot be read", pname);
        else if (named && found == 0)
            rc = joust_errf(err, errlen, JOUST_EINVAL, "%s: no [%s] profile", pname, profile);
        else if (found > 0 && (!id || !secret))
            rc = joust_errf(err, errlen, JOUST_EINVAL, "%s: profile [%s] lacks "
                            "aws_access_key_id or aws_secret_access_key", pname, profile);
        if (rc) {
            joust_buf_free(&path);
            free(id), free(secret), free(token);
            joust_s3_config_clear(c);
            return rc;
        }
        if (found > 0) {
            joust_buf_t src = {0};
            joust_buf_printf(&src, "%s [%s]", path.data, profile);
            c->source = src.data;
        }
        joust_buf_free(&path);
    }
    if (id && secret) {
        joust_buf_t b = {0};
        joust_buf_printf(&b, "%s:%s", id, secret);
        c->userpwd = b.data;
        joust_buf_t s = {0};
        joust_buf_printf(&s, "aws:amz:%s:s3", c->region);
        c->sigv4 = s.data;
        c->session_token = token;
        token = NULL;
    }
    free(id);
    free(secret);
    free(token);
    return 0;
}

void joust_s3_config_clear(joust_s3_config *c)
{
    free(c->endpoint);
    free(c->region);
    free(c->sigv4);
    free(c->userpwd);
    free(c->session_token);
    free(c->source);
    memset(c, 0, sizeof *c);
}

/* Appends s percent-encoded (RFC 3986 unreserved and '/' kept). */
static void encode_key(joust_buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '/')
            joust_buf_append(b, s, 1);
        else
            joust_buf_printf(b, "%%%02X", ch);
    }
}

int joust_s3_url(const joust_s3_config *c, const char *ref, char **url, char *err, size_t errlen)
{
    *url = NULL;
    const char *p = strstr(ref, "://");
    p = p ? p + 3 : ref;
    const char *slash = strchr(p, '/');
    if (slash == p || !*p)
        return joust_errf(err, errlen, JOUST_EINVAL, "%s: no bucket (s3://bucket/key)", ref);
    if (!slash || !slash[1])
        return joust_errf(err, errlen, JOUST_EINVAL, "%s: no object key (s3://bucket/key)", ref);
    int blen = (int)(slash - p);
    for (int i = 0; i < blen; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '-' || p[i] == '.' || p[i] == '_'))
            return joust_errf(err, errlen, JOUST_EINVAL, "%s: the bucket name has a '%c'", ref,
                              p[i]);
    joust_buf_t b = {0};
    if (c->endpoint)
        joust_buf_printf(&b, "%s/%.*s/", c->endpoint, blen, p);
    else
        joust_buf_printf(&b, "https://%.*s.s3.%s.amazonaws.com/", blen, p, c->region);
    encode_key(&b, slash + 1);
    *url = b.data;
    return 0;
}
