#!/usr/bin/env bash
# Remote fetch throughput (docs/benchmarks.md): N images (default 300, PNG,
# SIZE px square, default 512) from moto's S3 server and from the HTTP
# fixture, both on 127.0.0.1, fetched by one fetcher (one worker's judge)
# with an empty disk cache (cold) and again from the cache (warm).
#   tests/worker/bench_fetch.sh BUILD_DIR [N] [SIZE]
set -euo pipefail
BUILD=${1:?build folder}; N=${2:-300}; SIZE=${3:-512}
WORK=$(mktemp -d /tmp/joust-bench-fetch.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../fixtures/remote_servers.sh"
mkdir -p "$WORK/img"
python3 "$HERE/../fixtures/make_pngs.py" "$WORK/img" "$N" "$SIZE"
start_remote_servers "$WORK/img" "$WORK"
export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET
for ((i = 0; i < N; i++)); do echo "s3://$S3_BUCKET/img/a$i.png"; done > "$WORK/s3.txt"
for ((i = 0; i < N; i++)); do echo "$HTTP_BASE/img/a$i.png"; done > "$WORK/http.txt"
echo "S3 (moto_server, SigV4):"
"$BUILD/tests/worker/bench_fetch" "$WORK/s3.txt" "$WORK/cache-s3" "$S3_ENDPOINT"
echo "HTTP fixture:"
"$BUILD/tests/worker/bench_fetch" "$WORK/http.txt" "$WORK/cache-http"
