/* Benchmark, not a test (docs/benchmarks.md): remote image fetch throughput
 * of one worker's fetcher (worker/fetch.h), cold (empty disk cache: every
 * image over HTTP) and warm (a new fetcher on the same cache folder, as
 * another judge or worker on the machine would see it).
 *
 *   bench_fetch URI_LIST CACHE_DIR [S3_ENDPOINT]
 *
 * URI_LIST has one http(s):// or s3:// URI, or tar member reference of a
 * remote or compressed shard (common/uri.h), per line; credentials come
 * from the AWS_* variables. bench_fetch.sh starts the local servers and runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "fetch.h"

static int pass(const char *label, char **uris, size_t n, const char *cache, const char *endpoint)
{
    joust_fetch_config c = {.s3_endpoint = endpoint, .cache_dir = cache};
    joust_fetch_t *f = joust_fetch_new(&c);
    size_t bytes = 0;
    int64_t t0 = joust_now_us();
    for (size_t i = 0; i < n; i++) {
        joust_uri ref;
        char err[1024];
        unsigned char *data;
        size_t len;
        int rc = joust_uri_parse(uris[i], NULL, &ref, err, sizeof err);
        if (rc == 0)
            rc = joust_fetch_remote(f, &ref, 0, &data, &len, err, sizeof err);
        joust_uri_clear(&ref);
        if (rc) {
            fprintf(stderr, "bench_fetch: %s\n", err);
            joust_fetch_destroy(&f);
            return 1;
        }
        bytes += len;
        free(data);
    }
    double s = (double)(joust_now_us() - t0) / 1e6;
    joust_fetch_stats st;
    joust_fetch_stats_get(f, &st);
    printf("%-6s %zu images, %.1f MB in %.3f s: %.0f images/s, %.1f MB/s "
           "(fetched %llu, disk-cache hits %llu, connections %llu, ranged %llu, "
           "shards streamed %llu)\n",
           label, n, (double)bytes / 1e6, s, (double)n / s, (double)bytes / 1e6 / s,
           st.fetched, st.cache_hits, st.connects, st.ranged, st.streamed);
    joust_fetch_destroy(&f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_fetch URI_LIST CACHE_DIR [S3_ENDPOINT]\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 2;
    }
    char **uris = NULL, *line = NULL;
    size_t n = 0, cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len)
            continue;
        uris = realloc(uris, (n + 1) * sizeof *uris);
        uris[n++] = strdup(line);
    }
    free(line);
    fclose(in);
    const char *endpoint = argc > 3 ? argv[3] : NULL;
    int rc = pass("cold", uris, n, argv[2], endpoint) || pass("warm", uris, n, argv[2], endpoint);
    for (size_t i = 0; i < n; i++)
        free(uris[i]);
    free(uris);
    return rc;
}
