#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the whole test suite (ctest:
# unit tests per part and integration tests with real processes on
# 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)"
