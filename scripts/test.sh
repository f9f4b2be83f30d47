#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the whole test suite (ctest:
# unit tests per part and integration tests with real processes on
# 127.0.0.1); then builds again into build-asan with AddressSanitizer and
# UndefinedBehaviorSanitizer (JOUST_SANITIZE=ON) and runs the unit tests
# there (ctest label `unit`). JOUST_TEST_ASAN=0 skips the second build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)")
if [ "${JOUST_TEST_ASAN:-1}" != 0 ]; then
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJOUST_SANITIZE=ON \
        -DJOUST_CUDA=OFF > /dev/null
    cmake --build build-asan -j"$(nproc)"
    # a leak, an invalid access or undefined behaviour fails the test
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
    (cd build-asan && ctest -L unit --output-on-failure -j"$(nproc)")
fi
