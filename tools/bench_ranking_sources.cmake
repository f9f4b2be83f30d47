# Sources of `joust bench ranking` (tools/bench_ranking.h:
# joust_bench_ranking_main). They link only joust_rank and joust_common;
# include this file from tools/CMakeLists.txt and add
# ${JOUST_BENCH_RANKING_SOURCES} to joust_tools.
set(JOUST_BENCH_RANKING_SOURCES ${CMAKE_CURRENT_LIST_DIR}/bench_ranking.c)
