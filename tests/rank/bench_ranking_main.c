/* Stand-alone `joust bench ranking` for the smoke test (ctest passes
 * --quick --check) and for running the benchmark without the joust binary. */
#include "bench_ranking.h"

int main(int argc, char **argv) { return joust_bench_ranking_main(argc, argv); }
