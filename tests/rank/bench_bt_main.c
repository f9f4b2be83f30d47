/* Stand-alone `joust bench bt` for the smoke test (ctest passes --check) and
 * for running the benchmark before the joust binary wires it in. */
#include "bench_bt.h"

int main(int argc, char **argv) { return joust_bench_bt_main(argc, argv); }
