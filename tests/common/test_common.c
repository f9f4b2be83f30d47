#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "buf.h"
#include "bytes.h"
#include "check.h"
#include "err.h"
#include "hash.h"
#include "idmap.h"
#include "rng.h"
#include "u64map.h"
#include "xalloc.h"

static void test_bytes(void)
{
    unsigned char k[8];
    joust_put_be64(k, 0x0102030405060708ull);
    CHECK(k[0] == 1 && k[7] == 8);
    CHECK(joust_get_be64(k) == 0x0102030405060708ull);
    unsigned char a[8], b[8];
    joust_put_be64(a, 255);
    joust_put_be64(b, 256);
    CHECK(memcmp(a, b, 8) < 0); /* big-endian keys sort numerically */
}

static void test_rng(void)
{
    /* Pinned: xoshiro256** seeded by splitmix64 (values from an independent
     * implementation of both). Stored runs depend on them: a seed must give
     * the same tournaments on every machine and in every version. */
    joust_rng_t r1;
    joust_rng_seed(&r1, 0);
    CHECK(joust_rng_u64(&r1) == 0x99ec5f36cb75f2b4ull);
    CHECK(joust_rng_u64(&r1) == 0xbf6e1f784956452aull);
    joust_rng_seed(&r1, 42);
    CHECK(joust_rng_u64(&r1) == 0x15780b2e0c2ec716ull);
    CHECK(joust_rng_u64(&r1) == 0x6104d9866d113a7eull);
    CHECK(joust_rng_u64(&r1) == 0xae17533239e499a1ull);
    double sum = 0, sq = 0;
    int n = 100000;
    for (int i = 0; i < n; i++) {
        double x = joust_rng_normal(&r1);
        sum += x;
        sq += x * x;
    }
    CHECK_NEAR(sum / n, 0.0, 0.02);
    CHECK_NEAR(sq / n, 1.0, 0.03);
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++)
        hist[joust_rng_below(&r1, 7)]++;
    for (int i = 0; i < 7; i++)
        CHECK(hist[i] > 9000 && hist[i] < 11000);
}

static void test_buf(void)
{
    joust_buf_t b = {0};
    joust_buf_json_str(&b, "a\"b\\c\n\x01");
    CHECK(strcmp(b.data, "\"a\\\"b\\\\c\\n\\u0001\"") == 0);
    joust_buf_reset(&b);
    joust_buf_csv_str(&b, "x,\"y\"");
    CHECK(strcmp(b.data, "\"x,\"\"y\"\"\"") == 0);
    joust_buf_reset(&b);
    /* Lengths instead of a NUL: every control byte escaped, the text
     * between escapes copied in runs; tabs, \r, 0x1f and 0x7f. */
    joust_buf_json_strn(&b, "p\tq\0r\x1f\x7f\"", 7);
    CHECK(b.len == 20 && memcmp(b.data, "\"p\\tq\\u0000r\\u001f\x7f\"", 20) == 0);
    joust_buf_reset(&b);
    joust_buf_json_strn(&b, "plain text", 5);
    CHECK(strcmp(b.data, "\"plain\"") == 0);
    joust_buf_reset(&b);
    joust_buf_csv_strn(&b, "a\"b\"\"c,d", 8);
    CHECK(strcmp(b.data, "\"a\"\"b\"\"\"\"c,d\"") == 0);
    joust_buf_reset(&b);
    joust_buf_csv_strn(&b, "ab\rc", 2);
    CHECK(strcmp(b.data, "ab") == 0);
    joust_buf_reset(&b);
    joust_buf_csv_strn(&b, "ab\rc", 4);
    CHECK(strcmp(b.data, "\"ab\rc\"") == 0);
    joust_buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        joust_buf_printf(&b, "%d,", i);
    CHECK(b.len > 3000 && strncmp(b.data, "0,1,2,", 6) == 0);
    joust_buf_free(&b);
    CHECK(b.data == NULL);
}

static void test_hash(void)
{
    /* Pinned XXH3-64 (seed 0) values, as `xxhsum -H3` prints them: content
     * hashes and manifest keys in existing stores depend on them. */
    CHECK(joust_hash64("", 0) == 0x2d06800538d394c2ull);
    CHECK(joust_hash64("abc", 3) == 0x78af5f94892f3950ull);
    CHECK(joust_hash64("hello world", 11) == 0xd447b1ea40e6988bull);
    CHECK(joust_hash64("abc", 3) != joust_hash64("abd", 3));
    uint64_t h;
    char err[256];
    CHECK(joust_hash_file("/nonexistent/joust", 0, &h, err, sizeof err) == JOUST_ENOTFOUND);
    CHECK(strstr(err, "/nonexistent/joust") != NULL);
    CHECK(strcmp(joust_strerror(JOUST_ENOTFOUND), "not found") == 0);
}

static void test_u64map(void)
{
    joust_u64map_t m;
    joust_u64map_init(&m);
    for (uint64_t k = 1; k <= 10000; k++)
        joust_u64map_put(&m, k * 7919, k);
    CHECK(m.len == 10000);
    int ok = 1;
    for (uint64_t k = 1; k <= 10000; k++) {
        uint64_t v = 0;
        ok &= joust_u64map_get(&m, k * 7919, &v) && v == k;
    }
    CHECK(ok);
    for (uint64_t k = 1; k <= 10000; k += 2)
        joust_u64map_del(&m, k * 7919);
    CHECK(m.len == 5000);
    CHECK(!joust_u64map_get(&m, 7919, NULL));
    CHECK(joust_u64map_get(&m, 2 * 7919, NULL));
    joust_u64map_put(&m, 2 * 7919, 99);
    uint64_t v = 0;
    CHECK(joust_u64map_get(&m, 2 * 7919, &v) && v == 99);
    /* churn through tombstones without growing without bound */
    for (uint64_t k = 1; k <= 100000; k++) {
        joust_u64map_put(&m, 100000000 + k, k);
        joust_u64map_del(&m, 100000000 + k);
    }
    CHECK(m.len == 5000 && m.cap <= 65536);
    joust_u64map_free(&m);

    /* random puts, deletes and gets against a plain array: backward-shift
     * deletion must never lose or resurrect a key */
    enum { KEYS = 50000 };
    static unsigned char present[KEYS];
    static uint64_t value[KEYS];
    joust_rng_t rng;
    joust_rng_seed(&rng, 7);
    joust_u64map_init(&m);
    int wrong = 0;
    for (int it = 0; it < 1000000; it++) {
        uint64_t k = 1 + joust_rng_below(&rng, KEYS - 1), got;
        switch (joust_rng_below(&rng, 3)) {
        case 0: joust_u64map_put(&m, k, (uint64_t)it); present[k] = 1; value[k] = (uint64_t)it; break;
        case 1: wrong += joust_u64map_del(&m, k) != present[k]; present[k] = 0; break;
        default: wrong += joust_u64map_get(&m, k, &got) != present[k] || (present[k] && got != value[k]);
        }
    }
    size_t live = 0;
    for (int k = 0; k < KEYS; k++)
        live += present[k];
    CHECK(wrong == 0);
    CHECK(m.len == live);
    joust_u64map_free(&m);
}

/* The id map against a plain array: a sliding window of ids (puts at the
 * front, deletes mostly near the back) with stragglers kept far behind, ids
 * that share their low bits (into the overflow), replaced values, gets and
 * deletes of absent ids; and its size stays bounded by the live ids. */
static void test_idmap(void)
{
    enum { IDS = 1 << 20 };
    static unsigned char present[IDS];
    static uint64_t value[IDS];
    joust_idmap_t m;
    joust_idmap_init(&m);
    CHECK(!joust_idmap_get(&m, 5, NULL) && !joust_idmap_del(&m, 5));
    joust_rng_t rng;
    joust_rng_seed(&rng, 11);
    uint64_t front = 1, back = 1, got;
    int wrong = 0;
    size_t live = 0, most = 0, biggest = 0;
    for (int it = 0; it < 2000000; it++) {
        uint64_t r = joust_rng_below(&rng, 100), k;
        if (r < 40 && front < IDS) { /* a new id at the front */
            k = front++;
            joust_idmap_put(&m, k, k * 3);
            present[k] = 1, value[k] = k * 3, live++;
        } else if (r < 75 && back < front) { /* the back finishes, a few stay */
            k = back++;
            if (present[k] && joust_rng_below(&rng, 500)) {
                wrong += !joust_idmap_del(&m, k);
                present[k] = 0, live--;
            }
        } else if (r < 80 && front > 1) { /* a straggler or a far id finishes */
            k = 1 + joust_rng_below(&rng, front - 1);
            wrong += joust_idmap_del(&m, k) != present[k];
            live -= present[k], present[k] = 0;
        } else if (r < 85 && front > 1) { /* replaced */
            k = 1 + joust_rng_below(&rng, front - 1);
            if (present[k]) {
                joust_idmap_put(&m, k, (uint64_t)it);
                value[k] = (uint64_t)it;
            }
        } else { /* present, absent, or sharing low bits with the front */
            k = r < 95 && front > 1 ? 1 + joust_rng_below(&rng, front - 1)
                                    : (front + ((uint64_t)1 << (10 + joust_rng_below(&rng, 9)))) % IDS;
            if (k)
                wrong += joust_idmap_get(&m, k, &got) != present[k] || (present[k] && got != value[k]);
        }
        most = live > most ? live : most;
        biggest = joust_idmap_bytes(&m) > biggest ? joust_idmap_bytes(&m) : biggest;
        if (wrong)
            break;
    }
    for (uint64_t k = 1; k < front && !wrong; k++)
        wrong += joust_idmap_get(&m, k, &got) != present[k] || (present[k] && got != value[k]);
    CHECK(wrong == 0);
    CHECK(m.len == live);
    CHECK(biggest <= most * 16 * 2 * sizeof(joust_idmap_slot) + (1u << 20));
    joust_idmap_free(&m);
    /* ids that all share their low bits go to the overflow without
     * growing the table past 32 slots an id */
    joust_idmap_init(&m);
    for (uint64_t k = 1; k <= 1000; k++)
        joust_idmap_put(&m, k << 24, k);
    int ok = m.len == 1000 && joust_idmap_bytes(&m) < 1000 * 32 * sizeof(joust_idmap_slot) + (1u << 16);
    for (uint64_t k = 1; k <= 1000; k++)
        ok &= joust_idmap_get(&m, k << 24, &got) && got == k;
    CHECK(ok);
    joust_idmap_free(&m);
}

/* xdiscard: the whole pages inside the range go (not resident, read as
 * zeros), the bytes around them and outside the range stay. */
static void test_xdiscard(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 64 * page;
    unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    memset(p, 7, n);
    size_t lo = 3 * page + 100, hi = 40 * page - 5;
    xdiscard(p, lo, hi);
    unsigned char res[64];
    CHECK(mincore(p, n, res) == 0);
    int ok = 1;
    for (size_t i = 0; i < 64; i++) {
        int inside = i >= 4 && i < 39; /* the whole pages in [lo, hi) */
        ok &= (res[i] & 1) != inside;
    }
    CHECK(ok);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += p[i] != (i >= 4 * page && i < 39 * page ? 0 : 7);
    CHECK(bad == 0);
    xdiscard(p, 10, 20);       /* inside one page: nothing */
    xdiscard(p, page, page);   /* empty */
    CHECK(p[10] == 7 && p[page] == 7);
    munmap(p, n);
}

int main(void)
{
    test_u64map();
    test_idmap();
    test_bytes();
    test_rng();
    test_buf();
    test_hash();
    test_xdiscard();
    return test_report();
}
