#!/usr/bin/env bash
# The hostile-path set (make_hostile.sh) at ingest and through the workers.
# Ingest: every hostile line is a bad line whose reason names the problem,
# nothing blocks (a FIFO, /dev/zero) and the good images are still ranked.
# Workers: the same files swapped in after ingest (so ingest saw regular
# files) fail their images with the reason; nothing blocks. `timeout` turns
# a hang into a failure.
. "$(dirname "$0")/lib.sh"
"$JOUST" demo --out "$WORK/demo" --prompts 1 --per-prompt 3 --workers 1 --no-progress > /dev/null 2>&1 \
    || fail "demo data"
bash "$(dirname "$0")/make_hostile.sh" "$WORK/set" "$WORK/demo"
root=$WORK/set/root

# ---- at ingest
rc=0
timeout 60 "$JOUST" run "$root/hostile.jsonl" --db "$WORK/db" --out "$WORK/out" --workers 1 \
    --no-progress > "$WORK/run.out" 2> "$WORK/run.err" || rc=$?
[ "$rc" -ne 124 ] || fail "ingest hung on the hostile set"
[ "$rc" -eq 0 ] || { cat "$WORK/run.err"; fail "run failed ($rc)"; }
python3 - "$WORK/out/bad_lines.jsonl" "$root/expect.tsv" "$root/hostile.jsonl" <<'PY' || fail "ingest reasons"
import json, sys
rows = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    rows[r["line"]] = r["error"]
lines = [json.loads(l) for l in open(sys.argv[3])]
expect = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[2]))
for n, item in enumerate(lines, 1):
    if item["id"] in expect:
        assert n in rows, (n, item, "not a bad line")
        assert expect[item["id"]] in rows[n], (item["id"], rows[n])
    else:
        assert n not in rows, (n, rows[n])
assert len(rows) == len(expect), rows
PY
python3 - "$WORK/out/scores.jsonl" <<'PY' || fail "good images not ranked"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 3 and sorted(r["rank"] for r in rows) == [1, 2, 3], rows
PY

# ---- through the workers: regular files at ingest, swapped afterwards
w=$WORK/w
mkdir -p "$w"
: > "$w/m.jsonl"
for f in "$WORK"/demo/*.jpg; do
    cp "$f" "$w/"; printf '{"image":"%s","prompt":"w","id":"%s"}\n' "$(basename "$f")" \
        "good-$(basename "$f" .jpg)" >> "$w/m.jsonl"
done
cut -f1 "$root/expect.tsv" | while read -r id; do
    cp "$WORK/demo/$(ls "$WORK/demo" | grep jpg | head -1)" "$w/$id.jpg"
    printf '{"image":"%s.jpg","prompt":"w","id":"%s"}\n' "$id" "$id" >> "$w/m.jsonl"
done
"$JOUST" ingest "$w/m.jsonl" --db "$WORK/dbw" > /dev/null 2>&1 || fail "ingest of the worker set"
sp=$root/special
while IFS=$'\t' read -r id why; do
    rm -f "$w/$id.jpg"
    case $id in
        fifo) mkfifo "$w/$id.jpg" ;;
        dir) mkdir "$w/$id.jpg" ;;
        sock) python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$w/$id.jpg" ;;
        huge) truncate -s 300M "$w/$id.jpg" ;;
        to-*) cp -P "$sp/$id.jpg" "$w/$id.jpg" ;;
        *) fail "no worker case for $id" ;;
    esac
done < "$root/expect.tsv"
rc=0
timeout 60 "$JOUST" run "$w/m.jsonl" --db "$WORK/dbw" --out "$WORK/outw" --workers 1 \
    --no-progress > "$WORK/runw.out" 2> "$WORK/runw.err" || rc=$?
[ "$rc" -ne 124 ] || fail "a worker hung on the hostile set"
python3 - "$WORK/outw/scores.jsonl" "$root/expect.tsv" <<'PY' || { cat "$WORK/runw.err"; fail "worker reasons"; }
import json, sys
rows = {r["id"]: r for r in map(json.loads, open(sys.argv[1]))}
expect = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[2]))
for id, why in expect.items():
    r = rows[id]
    assert r["score"] is None and r["error"] and why in r["error"], (id, r)
good = [r for k, r in rows.items() if k.startswith("good-")]
assert len(good) == 3 and all(r["score"] is not None for r in good), good
print({id: rows[id]["error"] for id in expect})
PY
echo "1 passed, 0 failed"
