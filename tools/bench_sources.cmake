# Sources of `joust bench bt` (tools/bench_bt.h: joust_bench_bt_main). They
# link only joust_rank and joust_common; include this file from
# tools/CMakeLists.txt and add ${JOUST_BENCH_BT_SOURCES} to the joust target.
set(JOUST_BENCH_BT_SOURCES ${CMAKE_CURRENT_LIST_DIR}/bench_bt.c)
