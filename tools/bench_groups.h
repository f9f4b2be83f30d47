/* `joust bench groups`: the path of one large group (a caption corpus
 * under `joust run --group all`) without the store or the judge: the
 * streamed k-regular plan (rank/sparse_plan.h), soft outcomes from latent
 * utilities, the scoring hook's sparse fit with its components
 * (coordinator/global_fit.h) and the percentiles (rank/metrics.h). As the
 * reference it times one pass of the BT gradient over the same edges (the
 * least any fit of them costs) and prints the fit in such passes. Prints
 * the figures, then one markdown table row. Exit status: 0, 1 (the fit did
 * not converge or tau is implausible), 2 (usage). Memory: about 36 bytes
 * per comparison and 80 per image; xmalloc aborts on out-of-memory. */
#ifndef JOUST_BENCH_GROUPS_H
#define JOUST_BENCH_GROUPS_H

/* argv[0] is "groups"; options: --images N (default 1000000), --k K
 * (default 20: with order fixed, n k / 2 comparisons), --seed S (1). */
int joust_bench_groups_main(int argc, char **argv);

#endif
