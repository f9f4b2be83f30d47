#!/usr/bin/env bash
# The hostile-path set (make_hostile.sh) at ingest and through the workers.
# Ingest: every hostile line is a bad line whose reason names the problem,
# nothing blocks (a FIFO, /dev/zero), nothing outside the manifest's folder
# is opened or reported (its copy of a good image is not called a
# duplicate), and the good images are still ranked.
# Workers: special files and links out of the root swapped in after ingest
# (so ingest saw regular files inside) fail their images with the reason;
# nothing blocks. `timeout` turns a hang into a failure. Also: a standalone
# worker with an image judge needs --allow-root or --allow-any-path, and
# --allow-any-path reads an absolute path outside.
. "$(dirname "$0")/lib.sh"
"$JOUST" demo --out "$WORK/demo" --prompts 1 --per-prompt 3 --workers 1 --no-progress > /dev/null 2>&1 \
    || fail "demo data"
bash "$(dirname "$0")/make_hostile.sh" "$WORK/set" "$WORK/demo"
root=$WORK/set/root

# ---- at ingest
rc=0
timeout -k 5 60 "$JOUST" run "$root/hostile.jsonl" --db "$WORK/db" --out "$WORK/out" --workers 1 \
    --no-progress > "$WORK/run.out" 2> "$WORK/run.err" || rc=$?
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "ingest hung on the hostile set"
[ "$rc" -eq 0 ] || { cat "$WORK/run.err"; fail "run failed ($rc)"; }
python3 - "$WORK/out/bad_lines.jsonl" "$root/expect.tsv" "$root/hostile.jsonl" <<'PY' || fail "ingest reasons"
import json, re, sys
rows = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    rows[r["line"]] = r["error"]
def ident(line):  # lines with non-JSON whitespace do not parse: read the id as text
    try:
        return json.loads(line)["id"].replace("\0", "\\u0000")
    except ValueError:
        return re.search(r'"id":"([^"]*)"', line).group(1)
lines = [ident(l) for l in open(sys.argv[3], encoding="utf-8")]
expect = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[2]))
for n, key in enumerate(lines, 1):
    if key in expect:
        assert n in rows, (n, key, "not a bad line")
        assert expect[key] in rows[n], (key, rows[n])
    else:
        assert n not in rows, (n, rows[n])
assert len(rows) == len(expect), rows
PY
grep -q "same content" "$WORK/run.err" && fail "ingest reported on a file outside the root"
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
worker_cases="fifo dir sock to-fifo to-zero to-dir to-sock huge out-link out-dir"
for id in $worker_cases; do
    mkdir -p "$w/d-$id"
    cp "$WORK/demo/$(ls "$WORK/demo" | grep jpg | head -1)" "$w/d-$id/$id.jpg"
    printf '{"image":"d-%s/%s.jpg","prompt":"w","id":"%s"}\n' "$id" "$id" "$id" >> "$w/m.jsonl"
done
"$JOUST" ingest "$w/m.jsonl" --db "$WORK/dbw" > /dev/null 2>&1 || fail "ingest of the worker set"
sp=$root/special
for id in $worker_cases; do
    f=$w/d-$id/$id.jpg
    rm -f "$f"
    case $id in
        fifo) mkfifo "$f" ;;
        dir) mkdir "$f" ;;
        sock) python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$f" ;;
        huge) truncate -s 300M "$f" ;;
        to-fifo) mkfifo "$w/t-fifo"; ln -s "$w/t-fifo" "$f" ;;
        to-dir) mkdir "$w/t-dir"; ln -s "$w/t-dir" "$f" ;;
        to-sock) python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$w/t-sock"
                 ln -s "$w/t-sock" "$f" ;;
        to-zero|out-link) cp -P "$sp/$id.jpg" "$f" ;;
        out-dir) rm -rf "$w/d-$id"; ln -s "$WORK/set/outside" "$w/d-$id"; cp "$WORK/set/outside/secret.jpg" "$f" ;;
        *) fail "no worker case for $id" ;;
    esac
done
rc=0
timeout -k 5 60 "$JOUST" run "$w/m.jsonl" --db "$WORK/dbw" --out "$WORK/outw" --workers 1 \
    --no-progress > "$WORK/runw.out" 2> "$WORK/runw.err" || rc=$?
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "a worker hung on the hostile set"
python3 - "$WORK/outw/scores.jsonl" "$root/expect.tsv" "$worker_cases" <<'PY' || { cat "$WORK/runw.err"; fail "worker reasons"; }
import json, sys
rows = {r["id"]: r for r in map(json.loads, open(sys.argv[1]))}
expect = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[2]))
expect = {k: v for k, v in expect.items() if k in sys.argv[3].split()}
assert len(expect) == 10, expect
for id, why in expect.items():
    r = rows[id]
    assert r["score"] is None and r["error"] and why in r["error"], (id, r)
good = [r for k, r in rows.items() if k.startswith("good-")]
assert len(good) == 3 and all(r["score"] is not None for r in good), good
print({id: rows[id]["error"] for id in expect})
PY

# ---- the options
if "$JOUST" worker --connect tcp://127.0.0.1:1 --judge quality > /dev/null 2> "$WORK/wk.err"; then
    fail "a quality worker without --allow-root started"
fi
grep -q "give --allow-root DIR" "$WORK/wk.err" || fail "worker: no reason given"
if "$JOUST" run "$root/hostile.jsonl" --allow-root "$root" --allow-any-path --db "$WORK/dbx" \
    > /dev/null 2> "$WORK/both.err"; then fail "--allow-root with --allow-any-path accepted"; fi
grep -q "exclude each other" "$WORK/both.err" || fail "both options: no reason"
mkdir -p "$WORK/any"
printf '{"image":"%s","prompt":"any","id":"s"}\n{"image":"%s","prompt":"any","id":"g"}\n' \
    "$WORK/set/outside/secret.jpg" "$(ls "$root"/good/*.jpg | sed -n 2p)" > "$WORK/any/m.jsonl"
printf '{"image":"/dev/zero","prompt":"any","id":"z"}\n{"image":"%s","prompt":"any","id":"f"}\n' \
    "$root/special/fifo.jpg" >> "$WORK/any/m.jsonl"
timeout -k 5 60 "$JOUST" run "$WORK/any/m.jsonl" --allow-any-path --db "$WORK/dbany" --out "$WORK/outany" \
    --workers 1 --no-progress > /dev/null 2> "$WORK/any.err" || { cat "$WORK/any.err"; fail "--allow-any-path run"; }
python3 - "$WORK/outany/scores.jsonl" <<'PY' || fail "--allow-any-path: outside image not judged"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and all(r["score"] is not None for r in rows), rows
PY
grep -q '"line":3,.*/dev/zero: is a character device, not a regular file' "$WORK/outany/bad_lines.jsonl" \
    || fail "--allow-any-path: /dev/zero not refused as a device"
grep -q '"line":4,.*is a FIFO' "$WORK/outany/bad_lines.jsonl" || fail "--allow-any-path: FIFO"
echo "1 passed, 0 failed"
