/* WebDataset shards into a manifest; see webdataset.h. */
#include "webdataset.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "fetch.h"
#include "uri.h"
#include "xalloc.h"

#define MAX_TEXT ((size_t)1 << 20) /* a caption or JSON member larger is a bad sample */
#define MAX_NAMES 1000000

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcasecmp(s + n - m, suf) == 0;
}

int joust_wds_is_shards(const char *arg)
{
    return ends_with(arg, ".tar") || ends_with(arg, ".tar.gz") || ends_with(arg, ".tgz");
}

void joust_wds_free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* Appends every expansion of pat (prefix already in done) to the list. */
static int expand(const char *done, const char *pat, char ***out, size_t *n, size_t *cap,
                  char *err, size_t errlen)
{
    const char *lb = strchr(pat, '{');
    if (!lb) {
        if (*n >= MAX_NAMES)
            return joust_errf(err, errlen, JOUST_EINVAL, "brace pattern names over %d shards",
                              MAX_NAMES);
        size_t len = strlen(done) + strlen(pat) + 1;
        char *s = xmalloc(len);
        snprintf(s, len, "%s%s", done, pat);
        xgrow((void **)out, cap, *n + 1, sizeof **out);
        (*out)[(*n)++] = s;
        return 0;
    }
    char *end;
    const char *a = lb + 1;
    unsigned long lo = strtoul(a, &end, 10), hi;
    const char *dots = end;
    if (end == a || strncmp(dots, "..", 2) != 0)
        return joust_errf(err, errlen, JOUST_EINVAL,
                          "bad brace range at \"%.40s\" (expected {A..B}, decimal)", lb);
    const char *b = dots + 2;
    hi = strtoul(b, &end, 10);
    if (end == b || *end != '}' || hi < lo || hi - lo >= MAX_NAMES)
        return joust_errf(err, errlen, JOUST_EINVAL,
                          "bad brace range at \"%.40s\" (expected {A..B}, A <= B, decimal)", lb);
    int width = a[0] == '0' && dots - a > 1 ? (int)(dots - a) : 0;
    size_t plen = strlen(done) + (size_t)(lb - pat) + 32;
    char *prefix = xmalloc(plen);
    for (unsigned long v = lo; v <= hi; v++) {
        snprintf(prefix, plen, "%s%.*s%0*lu", done, (int)(lb - pat), pat, width, v);
        int rc = expand(prefix, end + 1, out, n, cap, err, errlen);
        if (rc) {
            free(prefix);
            return rc;
        }
    }
    free(prefix);
    return 0;
}

int joust_wds_expand(const char *pattern, char ***out, size_t *n, char *err, size_t errlen)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    int rc = expand("", pattern, out, n, &cap, err, errlen);
    if (rc) {
        joust_wds_free_list(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- one shard ---- */

typedef enum { M_IMAGE, M_TXT, M_JSON, M_OTHER } kind_t;

typedef struct {
    char *name, *key;
    kind_t kind;
    unsigned long long off, size;
    char *text;  /* M_TXT, M_JSON: the contents */
    char *bad;   /* a reason already known (too long) */
    size_t order;
} member_t;

static kind_t kind_of(const char *ext)
{
    static const char *images[] = {"jpg", "jpeg", "png", "webp"};
    for (size_t i = 0; i < 4; i++)
        if (strcasecmp(ext, images[i]) == 0)
            return M_IMAGE;
    return strcasecmp(ext, "txt") == 0 ? M_TXT : strcasecmp(ext, "json") == 0 ? M_JSON : M_OTHER;
}

static int by_key(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static void report(joust_wds_stats *st, const char *shard, const char *member, const char *why)
{
    st->bad_samples++;
    fprintf(stderr, "joust: %s: %s: %s\n", shard, member, why);
}

/* Writes the sample members[0..k) (one key) as a manifest line. */
static int write_sample(const char *shard, const char *shard_base, int compressed, member_t *m,
                        size_t k, FILE *out, joust_wds_stats *st)
{
    member_t *img = NULL, *txt = NULL, *json = NULL;
    for (size_t i = 0; i < k; i++) {
        member_t *x = &m[i];
        if (x->bad) {
            report(st, shard, x->name, x->bad);
            return 0;
        }
        member_t **slot = x->kind == M_IMAGE ? &img : x->kind == M_TXT ? &txt
                        : x->kind == M_JSON ? &json : NULL;
        if (!slot) {
            report(st, shard, x->name, "unknown extension (images: .jpg .jpeg .png .webp; "
                                       ".txt caption; .json fields); member skipped");
            continue;
        }
        if (*slot) {
            report(st, shard, x->name, "a second member of the same kind in one sample");
            return 0;
        }
        *slot = x;
    }
    if (!img && !txt && !json)
        return 0; /* only unknown members, each reported */
    if (!img) {
        report(st, shard, m[0].key, "sample has no image (.jpg .jpeg .png .webp)");
        return 0;
    }
    cJSON *line = NULL;
    if (json) {
        line = cJSON_Parse(json->text);
        if (!cJSON_IsObject(line)) {
            cJSON_Delete(line);
            report(st, shard, json->name, "not a JSON object");
            return 0;
        }
    } else {
        line = cJSON_CreateObject();
    }
    if (!cJSON_HasObjectItem(line, "prompt")) {
        if (!txt) {
            cJSON_Delete(line);
            report(st, shard, img->name, "sample has no prompt (no .txt caption, no \"prompt\" "
                                         "in its .json)");
            return 0;
        }
        cJSON_AddStringToObject(line, "prompt", txt->text);
    }
    joust_uri u = {.scheme = JOUST_URI_TAR, .path = (char *)shard, .offset = img->off,
                   .size = img->size, .member = img->name, .compressed = compressed};
    char *ref = joust_uri_format_member(&u);
    cJSON_DeleteItemFromObject(line, "image");
    cJSON_AddStringToObject(line, "image", ref);
    free(ref);
    if (!cJSON_HasObjectItem(line, "id")) {
        size_t n = strlen(shard_base) + strlen(img->key) + 2;
        char *id = xmalloc(n);
        snprintf(id, n, "%s/%s", shard_base, img->key);
        cJSON_AddStringToObject(line, "id", id);
        free(id);
    }
    char *s = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    if (!s)
        abort(); /* cJSON failed to allocate */
    int ok = fprintf(out, "%s\n", s) > 0;
    free(s);
    if (!ok)
        return JOUST_EIO;
    st->samples++;
    return 0;
}

/* Reads a text member into a malloc'd string (m->bad when too long). */
static void read_text(struct archive *a, member_t *m)
{
    if (m->size > MAX_TEXT) {
        m->bad = xstrdup("caption or JSON member over 1 MiB");
        return;
    }
    m->text = xmalloc((size_t)m->size + 1);
    la_ssize_t got = archive_read_data(a, m->text, (size_t)m->size);
    if (got != (la_ssize_t)m->size) {
        m->bad = xstrdup(got < 0 ? archive_error_string(a) ? archive_error_string(a) : "read error"
                                 : "member shorter than its header says (truncated shard)");
        return;
    }
    m->text[m->size] = '\0';
    if (strlen(m->text) != m->size)
        m->bad = xstrdup("caption or JSON member has a NUL byte");
}

/* Opens a on the shard given (a path or an http(s)/s3 URL) into shard[]
 * (the absolute path, or the URL); *stream is set for a remote one. */
static int open_shard(const char *given, const char *s3_endpoint, joust_fetch_t **fetch,
                      struct archive *a, char *shard, size_t shard_len,
                      joust_fetch_stream_t **stream, joust_wds_stats *st)
{
    joust_uri ref;
    char why[512];
    int remote = joust_uri_parse(given, NULL, &ref, why, sizeof why) == 0 &&
                 joust_uri_is_remote(&ref) && ref.scheme != JOUST_URI_TAR;
    joust_uri_clear(&ref);
    if (remote) {
        snprintf(shard, shard_len, "%s", given);
    } else if (!realpath(given, shard)) {
        st->bad_shards++;
        fprintf(stderr, "joust: %s: cannot read shard: %s\n", given, strerror(errno));
        return -1;
    }
    if (strchr(shard, '#')) {
        st->bad_shards++;
        fprintf(stderr, "joust: %s: a shard path with '#' cannot be named in a member "
                        "reference; rename it\n", shard);
        return -1;
    }
    int ok;
    if (remote) {
        if (!*fetch) {
            /* nothing kept: one pass */
            joust_fetch_config fc = {.s3_endpoint = s3_endpoint, .cache_dir = "none"};
            *fetch = joust_fetch_new(&fc);
        }
        if (joust_fetch_stream_open(*fetch, shard, stream, why, sizeof why) != 0) {
            st->bad_shards++;
            fprintf(stderr, "joust: %s: cannot read shard: %s\n", shard, why);
            return -1;
        }
        ok = joust_fetch_stream_archive(a, *stream) == ARCHIVE_OK;
    } else {
        ok = archive_read_open_filename(a, shard, 1 << 16) == ARCHIVE_OK;
    }
    if (!ok) {
        const char *w = NULL;
        st->bad_shards++;
        fprintf(stderr, "joust: %s: not a readable tar shard: %s\n", shard,
                *stream && joust_fetch_stream_error(*stream, &w) ? w
                : archive_error_string(a) ? archive_error_string(a) : "unknown error");
        return -1;
    }
    return 0;
}

static int read_shard(const char *given, const char *s3_endpoint, joust_fetch_t **fetch, FILE *out,
                      joust_wds_stats *st)
{
    char shard[PATH_MAX + 1024];
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    joust_fetch_stream_t *stream = NULL;
    if (open_shard(given, s3_endpoint, fetch, a, shard, sizeof shard, &stream, st) != 0) {
        archive_read_free(a);
        joust_fetch_stream_close(&stream);
        return 0;
    }
    const char *base = strrchr(shard, '/') ? strrchr(shard, '/') + 1 : shard;
    member_t *m = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct archive_entry *e;
    int r, compressed = 0;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        compressed = archive_filter_count(a) > 1 || archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE;
        const char *name = archive_entry_pathname(e);
        if (!name)
            continue;
        if (archive_entry_filetype(e) != AE_IFREG) {
            if (archive_entry_filetype(e) != AE_IFDIR)
                report(st, shard, name, "not a regular file member; skipped");
            continue;
        }
        if (archive_entry_sparse_count(e) > 0) {
            report(st, shard, name, "sparse member; skipped");
            continue;
        }
        const char *slash = strrchr(name, '/'), *b = slash ? slash + 1 : name;
        const char *dot = strchr(b, '.');
        if (!dot || dot == b) {
            report(st, shard, name, "no extension (members are KEY.EXT); skipped");
            continue;
        }
        xgrow((void **)&m, &cap, n + 1, sizeof *m);
        member_t *x = &m[n];
        memset(x, 0, sizeof *x);
        x->order = n++;
        x->name = xstrdup(name);
        x->key = xstrdup(name);
        x->key[dot - name] = '\0';
        const char *ext = strrchr(b, '.') + 1;
        x->kind = kind_of(ext);
        x->off = (unsigned long long)archive_filter_bytes(a, 0); /* decompressed offset */
        x->size = (unsigned long long)archive_entry_size(e);
        if (x->kind == M_TXT || x->kind == M_JSON)
            read_text(a, x);
    }
    if (r != ARCHIVE_EOF && r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        const char *w = NULL;
        st->bad_shards++;
        fprintf(stderr, "joust: %s: damaged after %zu members (%s); the samples before it are "
                        "kept\n", shard, n,
                stream && joust_fetch_stream_error(stream, &w) ? w
                : archive_error_string(a) ? archive_error_string(a) : "read error");
        /* the last member may be cut: drop its sample when its bytes are missing */
    }
    archive_read_free(a);
    joust_fetch_stream_close(&stream);
    st->shards++;
    if (n > 1)
        qsort(m, n, sizeof *m, by_key); /* m is NULL when the shard had no members */
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i + 1;
        while (j < n && strcmp(m[j].key, m[i].key) == 0)
            j++;
        rc = write_sample(shard, base, compressed, m + i, j - i, out, st);
        i = j;
    }
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].key);
        free(m[i].text);
        free(m[i].bad);
    }
    free(m);
    return rc;
}

int joust_wds_write_manifest(char *const *shards, size_t n, const char *s3_endpoint, FILE *out,
                             joust_wds_stats *stats, char *err, size_t errlen)
{
    memset(stats, 0, sizeof *stats);
    joust_fetch_t *fetch = NULL; /* made at the first remote shard */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = read_shard(shards[i], s3_endpoint, &fetch, out, stats);
    joust_fetch_destroy(&fetch);
    if (rc)
        return joust_errf(err, errlen, JOUST_EIO, "cannot write the shards' manifest");
    if (fflush(out) != 0 || ferror(out))
        return joust_errf(err, errlen, JOUST_EIO, "cannot write the shards' manifest");
    return 0;
}
