/* `joust bench bt`: times joust_bt_fit_bulk (rank/bt_bulk.h) on a synthetic
 * problem generated in memory: latent theta ~ N(0,1) per image, images in
 * prompts of --per-prompt, random within-prompt pairs, soft outcomes
 * s = sigma(theta_a - theta_b + noise * N(0,1)). Prints the fit's wall time,
 * peak RSS, final step, Newton iterations and the mean within-prompt Kendall
 * tau against the latent scores, then one markdown table row.
 * Threads: generation and fit use --threads pthreads; the data depend only on
 * the seed and sizes, never on the thread count.
 * Errors: returns a process exit status (0 ok, 1 failed check or fit, 2
 * usage); messages go to stderr. Memory: about 12 bytes per comparison plus
 * 24 (32 with --se) per image; xmalloc aborts on out-of-memory. */
#ifndef JOUST_BENCH_BT_H
#define JOUST_BENCH_BT_H

/* argv[0] is the command's own name (e.g. "bt"); options follow:
 *   --images N       images (default 10000000; k/M/G suffixes allowed)
 *   --per-prompt K   images per prompt (default 16; the last prompt may be
 *                    smaller)
 *   --comparisons M  soft comparisons in all, spread evenly over prompts
 *                    (default 100000000)
 *   --threads T      default 2
 *   --seed S         default 1
 *   --noise X        judge noise in logit units (default 1)
 *   --tol X          Newton stop: max |delta theta| below X (default 1e-6)
 *   --se             also compute per-image standard errors
 *   --repeat R       time R cold fits, report best and median (default 1)
 *   --warm           then re-judge every 10th comparison and time a fit
 *                    warm-started from the previous scores
 *   --check          small self-test (4,000 images): thread counts agree
 *                    bit for bit, prompts match joust_bt_fit, tau is sane
 */
int joust_bench_bt_main(int argc, char **argv);

#endif
