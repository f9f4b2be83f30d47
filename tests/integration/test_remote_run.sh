#!/usr/bin/env bash
# Remote images end to end, against real servers on 127.0.0.1 (moto's S3
# server with signatures enforced, and the HTTP fault fixture):
#  1. `joust run` whose images all live in the S3 server ranks them with the
#     quality judge: exit 0, every image ranked with comparisons, the disk
#     cache holds each image once;
#  2. a missing key (404) and a denied one (403) fail their images' matches
#     with the server's words (image_error, exit 1), the rest is judged;
#  3. an outage (503 more times than a worker retries) goes back to the
#     queue as an infrastructure error and is judged later: exit 0;
#  4. `joust ingest --check-remote` makes a missing object a bad line with a
#     HEAD request, downloading nothing;
#  5. the openai judge reads s3:// images through the same fetcher (against
#     the stand-in OpenAI-compatible server): every match ok.
. "$(dirname "$0")/lib.sh"
export HTTP_FLAKY=4   # > the fetcher's 3 tries: the first match of it fails as infra
. "$(dirname "$0")/../fixtures/remote_servers.sh"
mkdir -p "$WORK/img"
python3 "$(dirname "$0")/../fixtures/make_pngs.py" "$WORK/img" 8 96
python3 "$(dirname "$0")/../fixtures/openai_images.py" "$WORK/oa" 1 4 7 200704
cp "$WORK"/oa/img/*.png "$WORK/img/"
start_remote_servers "$WORK/img" "$WORK"
export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET HOME=$WORK
unset AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE AWS_ENDPOINT_URL
run() {
    local m=$1; shift
    "$JOUST" run "$m" --judge quality --workers 2 --no-progress --s3-endpoint "$S3_ENDPOINT" "$@"
}
# 1: all in S3
for p in 0 1; do for k in 0 1 2 3; do
    printf '{"image":"s3://%s/img/a%d.png","prompt":"prompt %d","id":"s%d_%d"}\n' \
        "$S3_BUCKET" $((p * 4 + k)) "$p" "$p" "$k"
done; done > "$WORK/s3.jsonl"
run "$WORK/s3.jsonl" --db "$WORK/db1" --out "$WORK/out1" --fetch-cache "$WORK/cache" \
    > "$WORK/run1.out" 2> "$WORK/run1.err" || { cat "$WORK/run1.err"; fail "the S3 run failed"; }
python3 - "$WORK/out1/scores.jsonl" <<'PY' || fail "S3 run: scores"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 8, rows
assert all(r["rank"] and r["comparisons"] > 0 for r in rows), rows
assert all(r["image"].startswith("s3://") for r in rows)
assert len({r["score"] for r in rows}) > 2, "the judge told the images apart"
PY
n=$(find "$WORK/cache" -type f | wc -l)
[ "$n" = 8 ] || fail "the disk cache holds $n files, not 8"
# 2: a missing key and a denied key fail their matches with the reason
{
    for k in 0 1 2; do printf '{"image":"s3://%s/img/a%d.png","prompt":"p"}\n' "$S3_BUCKET" "$k"; done
    printf '{"image":"s3://%s/img/nope.png","prompt":"p"}\n' "$S3_BUCKET"
    printf '{"image":"s3://%s/secret/a1.png","prompt":"p"}\n' "$S3_BUCKET"
} > "$WORK/bad.jsonl"
st=0
run "$WORK/bad.jsonl" --db "$WORK/db2" --out "$WORK/out2" --fetch-cache none \
    > "$WORK/run2.out" 2> "$WORK/run2.err" || st=$?
[ $st = 1 ] || { cat "$WORK/run2.err"; fail "a run with missing images exited $st, not 1"; }
grep -q "image_error: 14 (e.g. .*\(NoSuchKey\|AccessDenied\|HTTP 403\)" "$WORK/run2.err" \
    || { cat "$WORK/run2.err"; fail "no image_error with the server's words"; }
# 3: an outage is retried, not failed
{
    printf '{"image":"%s/flaky/a0.png","prompt":"p"}\n' "$HTTP_BASE"
    for k in 1 2 3; do printf '{"image":"%s/img/a%d.png","prompt":"p"}\n' "$HTTP_BASE" "$k"; done
} > "$WORK/flaky.jsonl"
run "$WORK/flaky.jsonl" --db "$WORK/db3" --out "$WORK/out3" --fetch-cache none --workers 1 \
    > "$WORK/run3.out" 2> "$WORK/run3.err" || { cat "$WORK/run3.err"; fail "an outage failed the run"; }
grep -q "[1-9][0-9]* infrastructure errors sent back to the queue" "$WORK/run3.out" \
    || { cat "$WORK/run3.out"; fail "the outage was not an infrastructure error"; }
# 4: --check-remote: HEAD only, a missing object is a bad line
{
    printf '{"image":"%s/img/a0.png","prompt":"p"}\n' "$HTTP_BASE"
    printf '{"image":"%s/missing/a9.png","prompt":"p"}\n' "$HTTP_BASE"
    printf '{"image":"s3://%s/img/nope.png","prompt":"p"}\n' "$S3_BUCKET"
    printf '{"image":"s3://%s/img/a5.png","prompt":"p"}\n' "$S3_BUCKET"
} > "$WORK/check.jsonl"
"$JOUST" ingest "$WORK/check.jsonl" --db "$WORK/db4" --out "$WORK/out4" --check-remote \
    --s3-endpoint "$S3_ENDPOINT" > "$WORK/ingest.out" 2>&1 || { cat "$WORK/ingest.out"; fail "ingest"; }
grep -q "2 images in 1 new prompts; 2 bad lines" "$WORK/ingest.out" || { cat "$WORK/ingest.out"; fail "check-remote counts"; }
grep -q '"line":2.*HTTP 404' "$WORK/out4/bad_lines.jsonl" || fail "no 404 bad line"
grep -q '"line":3.*NoSuchKey\|"line":3.*404' "$WORK/out4/bad_lines.jsonl" || { cat "$WORK/out4/bad_lines.jsonl"; fail "no S3 404 bad line"; }
curl -s "$HTTP_BASE/counts" > "$WORK/counts.json"
python3 - "$WORK/counts.json" <<'PY' || { cat "$WORK/counts.json"; fail "--check-remote downloaded"; }
import json, sys
c = json.load(open(sys.argv[1]))
assert c.get("HEAD /img/a0.png") == 1 and c.get("HEAD /missing/a9.png") == 1, c
assert "GET /missing/a9.png" not in c, c
PY
# 5: the openai judge on s3:// images
. "$(dirname "$0")/openai_lib.sh"
standin_start a --max-pixels 200704 --expect "<answer>"
sed "s#\"img/#\"s3://$S3_BUCKET/img/#" "$WORK/oa/manifest.jsonl" > "$WORK/oa.jsonl"
run "$WORK/oa.jsonl" --db "$WORK/db5" --out "$WORK/out5" --fetch-cache "$WORK/cache5" \
    --judge openai --endpoint "$SRV_URL_a" --max-pixels 200704 > "$WORK/run5.out" 2> "$WORK/run5.err" \
    || { cat "$WORK/run5.err"; fail "openai judge on s3:// images"; }
grep -q "judged 12 matches .*: 12 ok, 0 failed" "$WORK/run5.out" || { cat "$WORK/run5.out"; fail "openai: not all 12 matches ok"; }
[ "$(standin_get "$SRV_PORT_a" invalid)" = 0 ] || fail "openai: the server saw invalid requests"
[ "$(find "$WORK/cache5" -type f | wc -l)" = 4 ] || fail "openai: the disk cache does not hold the 4 images"
echo "1 passed, 0 failed"
