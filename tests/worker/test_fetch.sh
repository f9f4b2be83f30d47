#!/usr/bin/env bash
# Remote fetches against real servers on 127.0.0.1 (see test_fetch.c):
# the HTTP fault fixture and moto's S3 server with signatures enforced.
set -euo pipefail
TEST_FETCH=${TEST_FETCH:?path to test_fetch}
WORK=$(mktemp -d /tmp/joust-fetch.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
. "$(dirname "$0")/../fixtures/remote_servers.sh"
mkdir -p "$WORK/img"
python3 "$(dirname "$0")/../fixtures/make_pngs.py" "$WORK/img" 4
start_remote_servers "$WORK/img" "$WORK"
IMG_DIR=$WORK/img WORK=$WORK "$TEST_FETCH"
