/* Near-duplicate search over 64-bit image signatures (issue 12.2): every
 * pair of items within Hamming distance `radius` that share a scope key,
 * exactly, and the clusters they form (union-find: near-duplicate is taken
 * as transitive).
 *
 *   joust_neardup_opts o;
 *   joust_neardup_opts_defaults(&o);            // radius 8, auto blocks
 *   joust_neardup_result r;
 *   joust_neardup_search(sig, scope, n, score, area, &o, &r);
 *   for (size_t c = 0; c < r.n_clusters; c++)   // clusters of >= 2 items
 *       for (size_t k = r.start[c]; k < r.start[c + 1]; k++)
 *           ... r.member[k], r.dist[k]         // member[start[c]] is the representative
 *   joust_neardup_result_free(&r);
 *
 * Method (exact, generalised pigeonhole / multi-index hashing): the 64 bits
 * are cut into m contiguous blocks (m > radius); two hashes within distance
 * r differ in at most r blocks, so they agree exactly on at least t = m - r
 * of them. The search walks a trie of t-subsets of blocks, in ascending
 * block order: the items of a scope are partitioned (counting sort) on a
 * first block, each part of >= 2 items on each block that can come next,
 * and so on to depth t, where every pair of a part is verified with a
 * popcount (AVX2, four pairs at once, where the CPU has it); a small part is
 * verified pair by pair at once. One-item parts drop out, so the deep levels
 * cost little; the partitions run in cache below the first level. A pair is
 * reported once: under the path of its first t agreeing blocks (a pair
 * agreeing on a block below the path's last one that is not on the path is
 * left to that other path). m = r + 1 (t = 1) is the classic substring
 * scheme; a larger m makes the keys longer and the parts smaller at the
 * price of more paths, and m is chosen per scope by a cost model
 * (partitions versus expected pairs, assuming spread-out hashes) unless
 * opts.blocks fixes it. A scope small enough that all its pairs cost less
 * is compared pair by pair. Scope: items are compared only with items of
 * equal scope key (scope NULL: one global scope); use e.g. a prompt id, a
 * model id, or 0.
 *
 * Cost: about C(m, t) * s^2 / 2^(64 t / m + 1) popcounts plus the
 * partitions (docs/benchmarks.md has the figures: 10 M spread-out hashes at
 * radius 8, m = 11); the cost grows steeply with the radius.
 * Hashes that are not spread out (many near-equal images) make parts, and
 * the time, larger: a part of k equal hashes costs k^2/2 popcounts per
 * path. Memory: 12 bytes per item (scope order and signatures; 16 more
 * while sorting scope keys), 12 per item of the largest scope per thread
 * (the first level's parts; deeper levels take what their parts need),
 * 12 per item for the result and 12 per pair found.
 *
 * Representative of a cluster: the member with a score (score[i] not NaN)
 * over one without, then the higher score, then the larger area (area[i],
 * e.g. width x height), then the lower index. score and area may be NULL.
 * dist[k] is the distance of member k to the representative; it can exceed
 * the radius (clusters are transitive closures: a~b~c with a, c 2r apart).
 *
 * Threads: opts.threads workers split the (scope, first block) work; results do
 * not depend on the thread count (pairs are sorted before they are merged
 * and reported). opts.on_pair, when set, is called on the calling thread
 * once per pair (i < j, ascending), after the search.
 * Errors: 0 or JOUST_EINVAL (n over JOUST_NEARDUP_MAX_N, radius > 63, blocks
 * not in (radius, 64], sig NULL with n > 0, out NULL); nothing is written
 * to out on error. Memory comes from xmalloc (aborts on out-of-memory). */
#ifndef JOUST_NEARDUP_H
#define JOUST_NEARDUP_H
#include <stddef.h>
#include <stdint.h>

/* The default radius: every edit measured in tests/worker/test_signature.c
 * (re-encodes, resizes, 2 % crops, brightness) stays within 8, and distinct
 * scenes are >= 18 apart (docs/ranking.md §8). */
#define JOUST_NEARDUP_DEFAULT_RADIUS 8u
#define JOUST_NEARDUP_MAX_N 0xfffffff0u

typedef struct {
    uint32_t radius;  /* largest Hamming distance of a near-duplicate pair */
    uint32_t blocks;  /* m; 0: chosen per scope by the cost model */
    uint32_t threads; /* worker threads, >= 1; default 1 */
    /* Called once per pair found (i < j in scope order of ascending i, then
     * j), with their distance; nullable. */
    void (*on_pair)(void *ctx, uint32_t i, uint32_t j, uint32_t d);
    void *pair_ctx;
} joust_neardup_opts;

typedef struct {
    size_t n;          /* items searched */
    uint32_t *rep;     /* n: representative of each item's cluster (itself when alone) */
    size_t n_clusters; /* clusters of >= 2 items, by ascending representative index */
    size_t *start;     /* n_clusters + 1 offsets into member and dist */
    uint32_t *member;  /* per cluster: the representative, then the others ascending */
    uint8_t *dist;     /* distance of member[k] to its cluster's representative */
    uint64_t pairs;    /* pairs within the radius */
    uint32_t blocks;   /* m used for the largest scope (0: compared pair by pair) */
} joust_neardup_result;

void joust_neardup_opts_defaults(joust_neardup_opts *o);

/* Searches n signatures (sig[n]; scope[n], score[n], area[n] nullable, see
 * above); o NULL means the defaults. Fills *out (caller frees it with
 * joust_neardup_result_free). */
int joust_neardup_search(const uint64_t *sig, const uint64_t *scope, size_t n,
                         const double *score, const uint64_t *area,
                         const joust_neardup_opts *o, joust_neardup_result *out);

/* Frees what search allocated and zeroes *r; accepts NULL and a zeroed r. */
void joust_neardup_result_free(joust_neardup_result *r);

#endif
