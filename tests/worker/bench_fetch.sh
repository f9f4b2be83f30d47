#!/usr/bin/env bash
# Remote fetch throughput (docs/benchmarks.md): N images (default 300, PNG,
# SIZE px square, default 512) from moto's S3 server and from the HTTP
# fixture, both on 127.0.0.1, fetched by one fetcher (one worker's judge)
# with an empty disk cache (cold) and again from the cache (warm); then the
# same images as members of one WebDataset shard: a .tar read member by
# member with ranged GETs (S3 and HTTP), and a .tar.gz streamed once.
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
# One shard of the N images (plain and gzip) and each member's offset and size.
python3 - "$WORK/img" "$N" > "$WORK/members.txt" <<'PY'
import sys, tarfile
d, n = sys.argv[1], int(sys.argv[2])
for name, mode in (("shard.tar", "w"), ("shard.tar.gz", "w:gz")):
    with tarfile.open(f"{d}/{name}", mode, format=tarfile.USTAR_FORMAT) as t:
        for i in range(n):
            t.add(f"{d}/a{i}.png", arcname=f"a{i}.png")
for m in tarfile.open(f"{d}/shard.tar"):
    print(m.offset_data, m.size, m.name)
PY
start_remote_servers "$WORK/img" "$WORK"
export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET
for ((i = 0; i < N; i++)); do echo "s3://$S3_BUCKET/img/a$i.png"; done > "$WORK/s3.txt"
for ((i = 0; i < N; i++)); do echo "$HTTP_BASE/img/a$i.png"; done > "$WORK/http.txt"
echo "S3 (moto_server, SigV4):"
"$BUILD/tests/worker/bench_fetch" "$WORK/s3.txt" "$WORK/cache-s3" "$S3_ENDPOINT"
echo "HTTP fixture:"
"$BUILD/tests/worker/bench_fetch" "$WORK/http.txt" "$WORK/cache-http"
refs() { while read -r off size name; do echo "tar:$1#$2offset=$off&size=$size&member=$name"; done \
    < "$WORK/members.txt"; }
refs "s3://$S3_BUCKET/img/shard.tar" "" > "$WORK/s3-members.txt"
refs "$HTTP_BASE/shard/shard.tar" "" > "$WORK/http-members.txt"
refs "$HTTP_BASE/shard/shard.tar.gz" "compressed=1&" > "$WORK/gz-members.txt"
echo "shard members, S3 .tar (one signed ranged GET each):"
"$BUILD/tests/worker/bench_fetch" "$WORK/s3-members.txt" "$WORK/cache-s3m" "$S3_ENDPOINT"
echo "shard members, HTTP .tar (one ranged GET each):"
"$BUILD/tests/worker/bench_fetch" "$WORK/http-members.txt" "$WORK/cache-httpm"
echo "shard members, HTTP .tar.gz (streamed once, every member cached on the way):"
"$BUILD/tests/worker/bench_fetch" "$WORK/gz-members.txt" "$WORK/cache-gz"
