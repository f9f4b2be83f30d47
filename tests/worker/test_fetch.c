/* Remote fetches (worker/fetch*.h) against real servers on 127.0.0.1, which
 * test_fetch.sh starts: tests/fixtures/http_images.py (HTTP_BASE) and moto's
 * S3 server with signatures enforced (S3_ENDPOINT, S3_BUCKET, S3_KEY,
 * S3_SECRET). IMG_DIR holds the served files (a0.png ...), WORK a scratch
 * folder. Each failure class is checked by its code and its reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "err.h"
#include "fetch.h"
#include "fetch_cache.h"
#include "fetch_s3.h"
#include "safe_open.h"

static const char *http_base, *img_dir, *work;
static char s3_endpoint[256], bucket[128];

static const char *need(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "test_fetch: %s is not set (run test_fetch.sh)\n", name);
        exit(2);
    }
    return v;
}

static int same_as_file(const unsigned char *data, size_t len, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", img_dir, name);
    unsigned char *want;
    size_t wlen;
    if (joust_read_regular(path, 0, 0, &want, &wlen, NULL, 0) != 0)
        return 0;
    int same = wlen == len && memcmp(want, data, len) == 0;
    free(want);
    return same;
}

/* Fetches uri with f; returns the code, err gets the reason. */
static int get(joust_fetch_t *f, const char *uri, size_t max, unsigned char **data, size_t *len,
               char *err, size_t errlen)
{
    joust_uri ref;
    int rc = joust_uri_parse(uri, NULL, &ref, err, errlen);
    if (rc)
        return rc;
    rc = joust_fetch_remote(f, &ref, max, data, len, err, errlen);
    joust_uri_clear(&ref);
    return rc;
}

/* Expects code want and a reason containing words. */
static void expect(joust_fetch_t *f, const char *uri, size_t max, int want, const char *words)
{
    unsigned char *data = NULL;
    size_t len;
    char err[1024] = "";
    int rc = get(f, uri, max, &data, &len, err, sizeof err);
    free(data);
    if (rc != want || (words && !strstr(err, words))) {
        fprintf(stderr, "  %s: rc %d (%s), want %d with \"%s\"\n", uri, rc, err, want,
                words ? words : "");
        test_failed++;
    } else {
        test_passed++;
    }
}

static joust_fetch_t *fetcher(const char *cache, int tries, int timeout_ms)
{
    joust_fetch_config c = {.s3_endpoint = s3_endpoint, .cache_dir = cache ? cache : "none",
                            .http = {.tries = tries, .backoff_ms = 20, .timeout_ms = timeout_ms,
                                     .connect_timeout_ms = 2000}};
    return joust_fetch_new(&c);
}

static void test_http(void)
{
    char uri[512], err[1024];
    joust_fetch_t *f = fetcher(NULL, 3, 10000);
    unsigned char *data;
    size_t len;
    /* a plain GET, and connection reuse over three */
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "a%d.png", i);
        snprintf(uri, sizeof uri, "%s/img/%s", http_base, name);
        CHECK_RC(get(f, uri, 1 << 20, &data, &len, err, sizeof err));
        CHECK(data && same_as_file(data, len, name));
        free(data);
    }
    joust_fetch_stats st;
    joust_fetch_stats_get(f, &st);
    CHECK(st.requests == 3 && st.connects == 1); /* one connection for all three */
    snprintf(uri, sizeof uri, "%s/redirect/a1.png", http_base);
    CHECK_RC(get(f, uri, 1 << 20, &data, &len, err, sizeof err));
    CHECK(data && same_as_file(data, len, "a1.png"));
    free(data);
    /* refused and final */
    snprintf(uri, sizeof uri, "%s/redirect-file", http_base);
    expect(f, uri, 1 << 20, JOUST_EDENIED, "refused a redirect");
    snprintf(uri, sizeof uri, "%s/redirect-loop", http_base);
    expect(f, uri, 1 << 20, JOUST_EIO, "redirects");
    snprintf(uri, sizeof uri, "%s/missing/x.png", http_base);
    expect(f, uri, 1 << 20, JOUST_ENOTFOUND, "HTTP 404");
    snprintf(uri, sizeof uri, "%s/forbidden/x.png", http_base);
    expect(f, uri, 1 << 20, JOUST_EDENIED, "HTTP 403");
    /* oversized: stopped at the header, and without a Content-Length by the counter */
    int64_t t0 = joust_now_ms();
    snprintf(uri, sizeof uri, "%s/big", http_base);
    expect(f, uri, 1 << 20, JOUST_ETOOBIG, "limit");
    snprintf(uri, sizeof uri, "%s/big-chunked", http_base);
    expect(f, uri, 1 << 20, JOUST_ETOOBIG, "limit");
    CHECK(joust_now_ms() - t0 < 5000); /* 1 GiB was never read */
    /* outages: retried, then EAGAIN */
    snprintf(uri, sizeof uri, "%s/truncated/a0.png", http_base);
    expect(f, uri, 1 << 20, JOUST_EAGAIN, "after 3 tries");
    snprintf(uri, sizeof uri, "%s/down/a0.png", http_base);
    expect(f, uri, 1 << 20, JOUST_EAGAIN, "HTTP 503");
    expect(f, "http://127.0.0.1:1/img/a0.png", 1 << 20, JOUST_EAGAIN, "after 3 tries");
    /* 503 twice, then the image: retried, not failed */
    joust_fetch_stats_get(f, &st);
    unsigned long long retries = st.retries;
    snprintf(uri, sizeof uri, "%s/flaky/a2.png", http_base);
    CHECK_RC(get(f, uri, 1 << 20, &data, &len, err, sizeof err));
    CHECK(data && same_as_file(data, len, "a2.png"));
    free(data);
    joust_fetch_stats_get(f, &st);
    CHECK(st.retries == retries + 2);
    joust_fetch_destroy(&f);
    /* slow: the total timeout per try bounds it */
    f = fetcher(NULL, 2, 500);
    t0 = joust_now_ms();
    snprintf(uri, sizeof uri, "%s/slow/a0.png", http_base);
    expect(f, uri, 1 << 20, JOUST_EAGAIN, "after 2 tries");
    CHECK(joust_now_ms() - t0 < 2500);
    /* HEAD: the size, no body */
    snprintf(uri, sizeof uri, "%s/img/a3.png", http_base);
    CHECK_RC(joust_fetch_head(f, uri, &len, err, sizeof err));
    struct stat sb;
    char path[512];
    snprintf(path, sizeof path, "%s/a3.png", img_dir);
    CHECK(stat(path, &sb) == 0 && len == (size_t)sb.st_size);
    snprintf(uri, sizeof uri, "%s/missing/a3.png", http_base);
    CHECK(joust_fetch_head(f, uri, &len, err, sizeof err) == JOUST_ENOTFOUND);
    joust_fetch_destroy(&f);
}

static void test_disk_cache(void)
{
    char dir[512], uri[512], err[1024];
    snprintf(dir, sizeof dir, "%s/cache/nested", work);
    unsigned char *data;
    size_t len;
    /* cold: fetched and put; warm (a new fetcher, as another judge): read back */
    snprintf(uri, sizeof uri, "%s/img/a3.png", http_base);
    joust_fetch_t *f = fetcher(dir, 3, 10000);
    CHECK_RC(get(f, uri, 1 << 20, &data, &len, err, sizeof err));
    free(data);
    joust_fetch_stats st;
    joust_fetch_stats_get(f, &st);
    CHECK(st.fetched == 1 && st.cache_hits == 0);
    joust_fetch_destroy(&f);
    f = fetcher(dir, 3, 10000);
    CHECK_RC(get(f, uri, 1 << 20, &data, &len, err, sizeof err));
    CHECK(data && same_as_file(data, len, "a3.png"));
    free(data);
    joust_fetch_stats_get(f, &st);
    CHECK(st.fetched == 0 && st.cache_hits == 1 && st.requests == 0);
    /* a failure is never cached */
    snprintf(uri, sizeof uri, "%s/missing/z.png", http_base);
    expect(f, uri, 1 << 20, JOUST_ENOTFOUND, "404");
    expect(f, uri, 1 << 20, JOUST_ENOTFOUND, "404");
    joust_fetch_stats_get(f, &st);
    CHECK(st.requests == 2);
    joust_fetch_destroy(&f);

    /* bounded, LRU by mtime: 1000-byte entries, cap 3500 bytes */
    snprintf(dir, sizeof dir, "%s/lru", work);
    joust_fetch_cache_t *c;
    CHECK_RC(joust_fetch_cache_open(dir, 3500, &c, err, sizeof err));
    unsigned char blob[1000];
    memset(blob, 7, sizeof blob);
    const char *keys[5] = {"k0", "k1", "k2", "k3", "k4"};
    /* mtimes a second apart, whatever the filesystem's granularity */
    joust_fetch_cache_put(c, keys[0], blob, sizeof blob);
    joust_fetch_cache_put(c, keys[1], blob, sizeof blob);
    sleep(1);
    joust_fetch_cache_put(c, keys[2], blob, sizeof blob);
    sleep(1);
    CHECK_RC(joust_fetch_cache_get(c, keys[0], 0, &data, &len)); /* k0 is now the newest */
    free(data);
    sleep(1);
    joust_fetch_cache_put(c, keys[3], blob, sizeof blob); /* 4000 > 3500: evict to <= 3150 */
    CHECK(joust_fetch_cache_get(c, keys[1], 0, &data, &len) == JOUST_ENOTFOUND);
    CHECK_RC(joust_fetch_cache_get(c, keys[0], 0, &data, &len));
    free(data);
    CHECK_RC(joust_fetch_cache_get(c, keys[3], 0, &data, &len));
    free(data);
    joust_fetch_cache_stats cs;
    joust_fetch_cache_stats_get(c, &cs);
    CHECK(cs.evicted == 1);
    joust_fetch_cache_close(&c);
}

static void set_creds(const char *key, const char *secret)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    setenv("HOME", work, 1); /* no ~/.aws/credentials there */
    if (key) {
        setenv("AWS_ACCESS_KEY_ID", key, 1);
        setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    }
}

static void test_s3(void)
{
    const char *key = need("S3_KEY"), *secret = need("S3_SECRET");
    char uri[512], err[1024];
    unsigned char *data;
    size_t len;
    set_creds(key, secret);
    joust_fetch_t *f = fetcher(NULL, 2, 10000);
    snprintf(uri, sizeof uri, "s3://%s/img/a0.png", bucket);
    CHECK_RC(get(f, uri, 1 << 20, &data, &len, err, sizeof err));
    if (err[0])
        fprintf(stderr, "  %s\n", err);
    CHECK(data && same_as_file(data, len, "a0.png"));
    free(data);
    CHECK_RC(joust_fetch_head(f, uri, &len, err, sizeof err));
    CHECK(len > 0);
    snprintf(uri, sizeof uri, "s3://%s/img/nope.png", bucket);
    expect(f, uri, 1 << 20, JOUST_ENOTFOUND, "NoSuchKey");
    CHECK(joust_fetch_head(f, uri, &len, err, sizeof err) == JOUST_ENOTFOUND);
    snprintf(uri, sizeof uri, "s3://%s/secret/a0.png", bucket);
    expect(f, uri, 1 << 20, JOUST_EDENIED, "403");
    expect(f, "s3://bucket-only", 1 << 20, JOUST_EINVAL, "no object key");
    joust_fetch_destroy(&f);
    /* a wrong secret and no signature at all are refused */
    snprintf(uri, sizeof uri, "s3://%s/img/a0.png", bucket);
    set_creds(key, "wrong-secret");
    f = fetcher(NULL, 2, 10000);
    expect(f, uri, 1 << 20, JOUST_EDENIED, "SignatureDoesNotMatch");
    joust_fetch_destroy(&f);
    set_creds(NULL, NULL);
    f = fetcher(NULL, 2, 10000);
    expect(f, uri, 1 << 20, JOUST_EDENIED, "403");
    joust_fetch_destroy(&f);
    /* the credentials file, by profile */
    char path[512];
    snprintf(path, sizeof path, "%s/credentials", work);
    FILE *cf = fopen(path, "w");
    fprintf(cf, "[default]\naws_access_key_id = nobody\naws_secret_access_key = x\n\n"
                "[joust]\naws_access_key_id = %s\naws_secret_access_key = %s\n", key, secret);
    fclose(cf);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    setenv("AWS_PROFILE", "joust", 1);
    f = fetcher(NULL, 2, 10000);
    CHECK_RC(get(f, uri, 1 << 20, &data, &len, err, sizeof err));
    free(data);
    joust_fetch_destroy(&f);
    setenv("AWS_PROFILE", "absent", 1);
    f = fetcher(NULL, 2, 10000);
    expect(f, uri, 1 << 20, JOUST_EINVAL, "no [absent] profile");
    joust_fetch_destroy(&f);
    set_creds(key, secret);
}

static void test_s3_urls(void)
{
    joust_s3_config c;
    char err[256], *url;
    unsetenv("AWS_ENDPOINT_URL");
    setenv("AWS_REGION", "eu-west-1", 1);
    CHECK_RC(joust_s3_config_load(&c, NULL, err, sizeof err));
    CHECK_RC(joust_s3_url(&c, "s3://b/dir/a b+c.png", &url, err, sizeof err));
    CHECK(url && strcmp(url, "https://b.s3.eu-west-1.amazonaws.com/dir/a%20b%2Bc.png") == 0);
    free(url);
    joust_s3_config_clear(&c);
    CHECK_RC(joust_s3_config_load(&c, "https://storage.googleapis.com/", err, sizeof err));
    CHECK_RC(joust_s3_url(&c, "s3://bkt/k.jpg", &url, err, sizeof err));
    CHECK(url && strcmp(url, "https://storage.googleapis.com/bkt/k.jpg") == 0);
    CHECK(c.sigv4 && strcmp(c.sigv4, "aws:amz:eu-west-1:s3") == 0);
    free(url);
    CHECK(joust_s3_url(&c, "s3:///k.jpg", &url, err, sizeof err) == JOUST_EINVAL);
    joust_s3_config_clear(&c);
    unsetenv("AWS_REGION");
}

int main(void)
{
    http_base = need("HTTP_BASE");
    img_dir = need("IMG_DIR");
    work = need("WORK");
    snprintf(s3_endpoint, sizeof s3_endpoint, "%s", need("S3_ENDPOINT"));
    snprintf(bucket, sizeof bucket, "%s", need("S3_BUCKET"));
    test_http();
    test_disk_cache();
    test_s3();
    test_s3_urls();
    return test_report();
}
