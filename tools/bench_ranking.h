/* `joust bench ranking`: pairing strategies (rank/planner.h) against a
 * simulated judge, at equal numbers of judge calls. Results and the command
 * that produces them: docs/benchmarks.md, "Pairing strategies".
 *
 * Per prompt of n images: latent quality theta ~ N(0,1). The sim judge is a
 * deterministic function of (prompt, first, second), like a temperature-0
 * VLM, in one of three noise models, each calibrated so that a hard answer
 * drawn from its p agrees with the latent order on 65 % of random pairs:
 *   calibrated  p = sigma(delta/T)
 *   noisy       p = sigma(delta/T + e), e ~ N(0,1) per ordered pair
 *   hard        vote 1 with probability sigma(delta/T), else 0
 * (delta = theta_first - theta_second, plus --bias on the logit). Each
 * strategy gets a budget of 12.5, 25, 40, 50 and 100 % of the calls of a
 * full round robin in both orders (n(n-1)); the outcomes are fitted with
 * joust_prompt_fit and compared with the latent order: Kendall tau-b, top-1
 * and bottom-1 accuracy. Prompts are independent; threads split them, and
 * the printed numbers do not depend on the thread count.
 * Errors: returns a process exit status (0 ok, 1 failed --check, 2 usage). */
#ifndef JOUST_BENCH_RANKING_H
#define JOUST_BENCH_RANKING_H

/* argv[0] is the command's own name ("ranking"); options:
 *   --sizes LIST    prompt sizes (default 4,9,16,64)
 *   --reps LIST     prompts per size (default 2000,800,400,64)
 *   --threads T     default 2
 *   --seed S        default 1
 *   --bias X        first-position bias in logits (default 0; the doc also
 *                   shows 0.3)
 *   --quick         a few prompts per size: the ctest smoke test
 *   --check         with --quick: exit 1 unless the tables are sane
 */
int joust_bench_ranking_main(int argc, char **argv);

#endif
