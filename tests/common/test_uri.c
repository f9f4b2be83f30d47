/* Tests of the image reference parser shared by ingest and the worker
 * (common/uri.h): plain paths, file:// URIs (localhost, percent-decoding,
 * every malformed form refused with a reason), remote schemes recognised,
 * other schemes refused. */
#include <string.h>

#include "check.h"
#include "err.h"
#include "uri.h"

static void ok(const char *ref, const char *base, joust_uri_scheme want_s, const char *want,
               int line)
{
    joust_uri u;
    char err[256] = "";
    int rc = joust_uri_parse(ref, base, &u, err, sizeof err);
    if (rc != 0 || u.scheme != want_s || !u.path || strcmp(u.path, want) != 0) {
        fprintf(stderr, "line %d: '%s' -> rc %d (%s) path '%s', want '%s'\n", line, ref, rc, err,
                u.path ? u.path : "(null)", want);
        CHECK(0);
    } else {
        CHECK(1);
    }
    joust_uri_clear(&u);
    joust_uri_clear(&u); /* twice is safe */
}

static void bad(const char *ref, int want_rc, const char *why, int line)
{
    joust_uri u;
    char err[256] = "";
    int rc = joust_uri_parse(ref, "/base", &u, err, sizeof err);
    if (rc != want_rc || !strstr(err, why) || u.path) {
        fprintf(stderr, "line %d: '%s' -> rc %d (%s), want %d with '%s'\n", line, ref ? ref : "",
                rc, err, want_rc, why);
        CHECK(0);
    } else {
        CHECK(1);
    }
    joust_uri_clear(&u);
}

#define OK(r, b, s, w) ok(r, b, s, w, __LINE__)
#define BAD(r, rc, why) bad(r, rc, why, __LINE__)

int main(void)
{
    /* plain paths: literal, relative ones joined to the base */
    OK("/data/a.jpg", "/base", JOUST_URI_LOCAL, "/data/a.jpg");
    OK("img/a.jpg", "/base", JOUST_URI_LOCAL, "/base/img/a.jpg");
    OK("img/a.jpg", NULL, JOUST_URI_LOCAL, "img/a.jpg");
    OK("img/a.jpg", "", JOUST_URI_LOCAL, "img/a.jpg");
    OK("a%20b.jpg", "/base", JOUST_URI_LOCAL, "/base/a%20b.jpg");
    OK("../up.jpg", "/base", JOUST_URI_LOCAL, "/base/../up.jpg");
    OK("C:/x.jpg", "/base", JOUST_URI_LOCAL, "/base/C:/x.jpg"); /* no "//": not a URI */
    OK("a:b.jpg", "/base", JOUST_URI_LOCAL, "/base/a:b.jpg");
    /* file URIs: decoded, host empty or localhost */
    OK("file:///data/img%20dir/a.jpg", "/base", JOUST_URI_LOCAL, "/data/img dir/a.jpg");
    OK("file://localhost/data/b.jpg", "/base", JOUST_URI_LOCAL, "/data/b.jpg");
    OK("FILE://LocalHost/data/b.jpg", "/base", JOUST_URI_LOCAL, "/data/b.jpg");
    OK("file:/data/c.jpg", "/base", JOUST_URI_LOCAL, "/data/c.jpg");
    OK("file:///data/%2e%2e/etc/x", "/base", JOUST_URI_LOCAL, "/data/../etc/x");
    OK("file:///d/%C3%A9t%c3%a9.png", NULL, JOUST_URI_LOCAL, "/d/\xc3\xa9t\xc3\xa9.png");
    OK("file:///d/100%25.png", NULL, JOUST_URI_LOCAL, "/d/100%.png");
    OK("file:///d/a%3Fb%23c.png", NULL, JOUST_URI_LOCAL, "/d/a?b#c.png");
    /* remote: recognised, kept as given */
    OK("http://h/x.png", "/base", JOUST_URI_HTTP, "http://h/x.png");
    OK("https://h/x.png", "/base", JOUST_URI_HTTPS, "https://h/x.png");
    OK("s3://bucket/k.png", "/base", JOUST_URI_S3, "s3://bucket/k.png");
    /* refused */
    BAD(NULL, JOUST_EINVAL, "empty");
    BAD("", JOUST_EINVAL, "empty");
    BAD("file://otherhost/data/a.jpg", JOUST_EINVAL, "host \"otherhost\"");
    BAD("file://img/h.bin", JOUST_EINVAL, "host \"img\"");
    BAD("file://", JOUST_EINVAL, "empty path");
    BAD("file://localhost", JOUST_EINVAL, "empty path");
    BAD("file:", JOUST_EINVAL, "empty path");
    BAD("file:rel/a.jpg", JOUST_EINVAL, "relative path");
    BAD("file:///d/a%2Fb.jpg", JOUST_EINVAL, "encoded '/'");
    BAD("file:///d/a%2fb.jpg", JOUST_EINVAL, "encoded '/'");
    BAD("file:///d/a%00b.jpg", JOUST_EINVAL, "NUL");
    BAD("file:///d/a%zzb.jpg", JOUST_EINVAL, "bad percent escape");
    BAD("file:///d/a%2", JOUST_EINVAL, "bad percent escape");
    BAD("file:///d/a%", JOUST_EINVAL, "bad percent escape");
    BAD("file:///d/a.jpg?v=1", JOUST_EINVAL, "query");
    BAD("file:///d/a.jpg#frag", JOUST_EINVAL, "fragment");
    BAD("gopher://h/x", JOUST_EUNSUPPORTED, "\"gopher\"");
    BAD("ftp://h/x", JOUST_EUNSUPPORTED, "unsupported URI scheme");
    CHECK(!strcmp(joust_uri_scheme_name(JOUST_URI_S3), "s3"));
    CHECK(!strcmp(joust_uri_scheme_name(JOUST_URI_LOCAL), "file"));
    return test_report();
}
