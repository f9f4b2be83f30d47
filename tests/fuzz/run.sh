#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined)
# in their own build tree and runs each for a bounded time, all three in
# parallel, from seed corpora written by fuzz_make_seeds. Exit 0 when no
# target found anything, 1 on a finding (the crashing input is kept under
# $FUZZ_BUILD/artifacts and its reproduction command printed), 77 (ctest:
# skipped) when clang or its libFuzzer runtime is missing.
#
# Environment:
#   FUZZ_SECONDS  time per target (default 20)
#   FUZZ_BUILD    build tree (default <repo>/build-fuzz); its corpus/ keeps
#                 growing across runs
#   FUZZ_CC       the compiler (default: clang on PATH)
#   FUZZ_TARGETS  which targets (default "fuzz_wire fuzz_manifest fuzz_image")
#
# Reproduce a finding: $FUZZ_BUILD/tests/fuzz/fuzz_X ARTIFACT
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${FUZZ_SECONDS:-20}
BUILD=${FUZZ_BUILD:-$SRC/build-fuzz}
TARGETS=${FUZZ_TARGETS:-fuzz_wire fuzz_manifest fuzz_image}
CC_FUZZ=${FUZZ_CC:-$(command -v clang || true)}
skip() { echo "SKIPPED: $*"; exit 77; }
[ -n "$CC_FUZZ" ] || skip "clang not found (Debian: apt-get install clang)"

mkdir -p "$BUILD"
probe="$BUILD/probe"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe.c"
"$CC_FUZZ" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" > /dev/null 2>&1 \
    || skip "$CC_FUZZ cannot link libFuzzer (-fsanitize=fuzzer)"

# JOUST_WERROR=OFF: clang's warnings in code other parts own must not stop
# the fuzzing; the fuzz targets themselves are warning-clean under gcc and clang.
echo "configuring $BUILD with $CC_FUZZ ..."
cmake -S "$SRC" -B "$BUILD" -DCMAKE_C_COMPILER="$CC_FUZZ" -DJOUST_FUZZ=ON -DJOUST_WERROR=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$BUILD/configure.log" 2>&1 \
    || { tail -20 "$BUILD/configure.log"; echo "FAIL: configure"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target $TARGETS fuzz_make_seeds > "$BUILD/build.log" 2>&1 \
    || { grep -E "error|Error" "$BUILD/build.log" | head -20; echo "FAIL: build"; exit 1; }
BIN="$BUILD/tests/fuzz"
CORPUS="$BUILD/corpus"
SEEDS="$BUILD/seeds"
"$BIN/fuzz_make_seeds" "$SEEDS"
mkdir -p "$BUILD/artifacts"

declare -A pid
for t in $TARGETS; do
    kind=${t#fuzz_}
    mkdir -p "$CORPUS/$kind"
    extra=()
    [ "$kind" = manifest ] && extra+=(-dict="$SRC/tests/fuzz/manifest.dict")
    # -rss_limit_mb: with the small limits in fuzz_image, more is a finding.
    "$BIN/$t" "$CORPUS/$kind" "$SEEDS/$kind" -max_total_time="$SECS" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$BUILD/artifacts/$kind-" "${extra[@]}" > "$BUILD/$t.log" 2>&1 &
    pid[$t]=$!
done
failed=0
for t in $TARGETS; do
    if wait "${pid[$t]}"; then
        runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$BUILD/$t.log" | grep -Eo '[0-9]+$' || echo '?')
        cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$BUILD/$t.log" | tail -1)
        echo "$t: no findings in ${SECS}s ($runs inputs; $cov)"
    else
        failed=1
        echo "FAIL: $t found a problem; log $BUILD/$t.log:"
        grep -E "ERROR|SUMMARY|Test unit written|==[0-9]+==" "$BUILD/$t.log" | head -20
        echo "reproduce: $BIN/$t $BUILD/artifacts/${t#fuzz_}-<file>"
    fi
done
[ $failed -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $failed
