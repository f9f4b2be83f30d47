#!/usr/bin/env bash
# Remote WebDataset shards (coordinator/webdataset.h, worker/fetch.h)
# against real servers on 127.0.0.1: the HTTP fixture (which honours Range
# and logs every shard GET with its Range header and the bytes it sent) and
# moto's S3 server (signatures enforced).
#  1. `joust run 'http://.../{00000..00001}.tar'`: ingest reads each shard
#     in ONE unranged pass; every other request is a worker's ranged GET of
#     exactly one member (bytes sent = the member's size); 6 images ranked.
#  2. the same shards from s3:// (signed ranged GETs): the disk cache holds
#     each member, at the member's size; a denied shard (403) is reported
#     with the server's words.
#  3. a gzip shard over HTTP: ingest streams it once, the one worker
#     streams it once and caches every member (2 GETs in all).
#  4. `joust ingest` takes a shard pattern like a manifest (manifest_src.h),
#     local and remote.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../fixtures/remote_servers.sh"
"$JOUST" demo --out "$WORK/demo" --prompts 2 --per-prompt 3 --workers 1 --no-progress \
    > /dev/null 2>&1 || fail "demo data"
mkdir -p "$WORK/srv"
python3 - "$WORK/demo/manifest.jsonl" "$WORK/srv" <<'PY'
import io, json, sys, tarfile
man, out = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(man)]
def add(t, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
for s, mode, ext in ((0, "w", "tar"), (1, "w", "tar"), (2, "w:gz", "tar.gz")):
    with tarfile.open(f"{out}/{s:05d}.{ext}", mode) as t:
        for l in (x for x in lines if x["id"].startswith(f"p{s % 2}")):
            add(t, f"{l['id']}.jpg", open(l["image"], "rb").read())
            add(t, f"{l['id']}.txt", l["prompt"].encode())
            add(t, f"{l['id']}.json", json.dumps({"model": l["model"]}).encode())
PY
start_remote_servers "$WORK/srv" "$WORK"
export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET HOME=$WORK
unset AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE AWS_ENDPOINT_URL
run() {
    "$JOUST" run "$@" --judge quality --workers 1 --no-progress --s3-endpoint "$S3_ENDPOINT"
}
# The members' sizes, from the shards themselves.
python3 - "$WORK/srv" > "$WORK/sizes.json" <<'PY'
import json, os, sys, tarfile
d = sys.argv[1]
print(json.dumps({f: {m.name: m.size for m in tarfile.open(os.path.join(d, f)) if m.name.endswith(".jpg")}
                  for f in sorted(os.listdir(d))}))
PY

# 1: HTTP, ranged member reads
run "$HTTP_BASE/shard/{00000..00001}.tar" --db "$WORK/db1" --out "$WORK/out1" --fetch-cache none \
    > "$WORK/run1.out" 2> "$WORK/run1.err" || { cat "$WORK/run1.err"; fail "HTTP shards run"; }
grep -q "shards: 2 read, 0 refused or damaged; 6 samples" "$WORK/run1.out" \
    || { cat "$WORK/run1.out"; fail "HTTP shard counts"; }
curl -sf "$HTTP_BASE/ranges" > "$WORK/ranges1.json" || fail "the fixture's log"
python3 - "$WORK/ranges1.json" "$WORK/sizes.json" "$WORK/out1/scores.jsonl" <<'PY' || fail "HTTP: ranged reads"
import json, sys
log, sizes = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rows = [json.loads(l) for l in open(sys.argv[3])]
assert len(rows) == 6 and all(r["rank"] and r["comparisons"] > 0 for r in rows), rows
assert all(r["image"].startswith("tar:http://") for r in rows), rows[0]["image"]
whole = [e for e in log if e[1] is None]
ranged = [e for e in log if e[1] is not None]
assert sorted(e[0] for e in whole) == ["/shard/00000.tar", "/shard/00001.tar"], whole
member_sizes = sorted(v for f in ("00000.tar", "00001.tar") for v in sizes[f].values())
assert sorted(e[2] for e in ranged) == member_sizes, (ranged, member_sizes)
for path, rng, sent in ranged:
    a, b = map(int, rng[len("bytes="):].split("-"))
    assert b - a + 1 == sent, (path, rng, sent)
print(f"HTTP: ingest {len(whole)} whole-shard passes, workers {len(ranged)} ranged GETs "
      f"({sum(e[2] for e in ranged)} bytes of {sum(e[2] for e in whole)})")
PY

# 2: S3, signed ranged reads into the disk cache; a denied shard
run "s3://$S3_BUCKET/img/{00000..00001}.tar" --db "$WORK/db2" --out "$WORK/out2" \
    --fetch-cache "$WORK/cache2" > "$WORK/run2.out" 2> "$WORK/run2.err" \
    || { cat "$WORK/run2.err"; fail "S3 shards run"; }
[ "$(wc -l < "$WORK/out2/scores.jsonl")" = 6 ] || fail "S3: not 6 scores"
python3 - "$WORK/cache2" "$WORK/sizes.json" <<'PY' || fail "S3: the cache holds members"
import json, os, sys
d, sizes = sys.argv[1], json.load(open(sys.argv[2]))
got = sorted(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if len(f) == 32)
want = sorted(v for f in ("00000.tar", "00001.tar") for v in sizes[f].values())
assert got == want, (got, want)
PY
st=0
run "s3://$S3_BUCKET/secret/00000.tar" --db "$WORK/db3" --out "$WORK/out3" \
    > "$WORK/run3.out" 2> "$WORK/run3.err" || st=$?
[ $st != 0 ] || fail "a denied shard was accepted"
grep -q "secret/00000.tar: .*\(AccessDenied\|HTTP 403\)" "$WORK/run3.err" \
    || { cat "$WORK/run3.err"; fail "the denied shard's reason"; }

# 3: a gzip shard over HTTP: one pass at ingest, one in the worker
before=$(curl -sf "$HTTP_BASE/ranges" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
run "$HTTP_BASE/shard/00002.tar.gz" --db "$WORK/db4" --out "$WORK/out4" --fetch-cache "$WORK/cache4" \
    > "$WORK/run4.out" 2> "$WORK/run4.err" || { cat "$WORK/run4.err"; fail "gzip shard run"; }
[ "$(wc -l < "$WORK/out4/scores.jsonl")" = 3 ] || fail "gzip: not 3 scores"
grep -q '"image":"tar:http://[^"]*00002.tar.gz#compressed=1&offset=' "$WORK/out4/scores.jsonl" \
    || fail "gzip: references"
curl -sf "$HTTP_BASE/ranges" | python3 -c '
import json, sys
log = json.load(sys.stdin)[int(sys.argv[1]):]
assert [e[0] for e in log] == ["/shard/00002.tar.gz"] * 2, log
assert all(e[1] is None for e in log), log' "$before" || fail "gzip: not one pass each"
[ "$(find "$WORK/cache4" -type f | wc -l)" = 3 ] || fail "gzip: the cache does not hold the 3 members"

# 4: joust ingest takes shard patterns (local and remote)
"$JOUST" ingest "$WORK/srv/{00000..00001}.tar" --db "$WORK/db5" --out "$WORK" \
    > "$WORK/ing.out" 2>&1 || { cat "$WORK/ing.out"; fail "ingest of local shards"; }
grep -q "6 images" "$WORK/ing.out" || { cat "$WORK/ing.out"; fail "ingest: 6 images"; }
"$JOUST" ingest "$HTTP_BASE/shard/00002.tar.gz" --db "$WORK/db5" --out "$WORK" \
    > "$WORK/ing2.out" 2>&1 || { cat "$WORK/ing2.out"; fail "ingest of a remote shard"; }
grep -q "3 images" "$WORK/ing2.out" || { cat "$WORK/ing2.out"; fail "ingest: 3 images"; }
echo "test_webdataset_remote: ok"
