/* Benchmarks of the corpus-hygiene parts (issue 12), on data generated in
 * memory from a seed; figures and commands in docs/benchmarks.md.
 *
 *   joust bench signature [--count N] [--distinct D] [--side S] [--quality Q]
 *                         [--noise SIGMA]
 *       image signatures (worker/signature.h) of D distinct S x S JPEGs
 *       (demo scenes plus Gaussian pixel noise of SIGMA levels, default 6,
 *       which sets the file size as a photograph's texture does; default
 *       1024 = 1 Mpix, q90 4:2:0), hashed N times in all on one core with
 *       one kept joust_signature_ctx_t, in alternating batches with the
 *       bare limit (TurboJPEG's 1/8 decode to luma and to RGB, one handle,
 *       no hash), and, for reference, by a full decode; prints images per
 *       CPU second of the thread (and wall time: the machine may be
 *       shared).
 *
 *   joust bench neardup [--n N] [--radius R] [--threads T] [--dup-pct P]
 *                       [--scopes S] [--blocks M] [--seed S]
 *       near-duplicate search (rank/neardup.h) over N random signatures of
 *       which P % (default 10) are planted copies of an earlier one at a
 *       distance drawn from 0..R, in S scopes (default 1: global); default
 *       10M, radius JOUST_NEARDUP_DEFAULT_RADIUS, 2 threads, blocks chosen
 *       by the cost model. Fails unless every planted copy ends up in its
 *       original's cluster.
 *
 *   joust bench bt-global [--images N] [--comparisons M] [--seed S]
 *                         [--tau-sample K]
 *       the global sparse Bradley-Terry fit (rank/bt_sparse.h) of N images
 *       (default 1M) from M soft comparisons (default 10M) drawn as random
 *       perfect matchings over the whole set (one component, 2M/N
 *       opponents per image), true theta ~ N(0,1), judge noise 1 logit;
 *       prints time, CPU, peak RSS, Newton/CG iterations, the final
 *       gradient and Kendall tau against the truth on a K-image sample
 *       (default 20000). Fails unless the gradient reaches 1e-9.
 *
 * Errors: the main returns a process exit status (0 ok, 1 failed run,
 * 2 usage); messages go to stderr. Threads: single-threaded unless said.
 * Memory: xmalloc aborts on out-of-memory. */
#ifndef JOUST_BENCH_DEDUP_H
#define JOUST_BENCH_DEDUP_H

/* 1 when name (argv[1] of `joust bench`) is one of the benchmarks above. */
int joust_bench_dedup_handles(const char *name);

/* argv[0] is the benchmark's name, options follow. */
int joust_bench_dedup_main(int argc, char **argv);

#endif
