#!/usr/bin/env bash
# joust filter (coordinator/filter.h) on a judged demo set: per-prompt and
# global percentiles against scores.jsonl, errors (a missing image), exact
# duplicates, size and manifest fields, unparseable lines; every rejected
# line listed with its reason; kept lines byte for byte; gzip and zstd in
# and out; bad predicates refused; the kept manifest runs through joust
# again without a bad line.
. "$(dirname "$0")/lib.sh"
"$JOUST" demo --out "$WORK/demo" --prompts 3 --per-prompt 4 --workers 1 --no-progress \
    > /dev/null 2>&1 || fail "demo data"
cd "$WORK/demo"
python3 - <<'PY'
import json
lines = [json.loads(l) for l in open("manifest.jsonl") if l.strip()]
out = []
for i, d in enumerate(lines):
    d["width"], d["height"] = (512, 512) if i % 2 else (768, 512)
    d["split"] = "train" if i % 3 else "test"
    out.append(json.dumps(d))
dup = dict(lines[0]); dup["id"] = "copy-of-first"; dup.pop("width", None); dup.pop("height", None)
out.append(json.dumps(dup))                     # same file: an exact duplicate
miss = dict(lines[1]); miss["id"] = "missing"; miss["image"] = "no-such.png"
out.append(json.dumps(miss))                    # fails when judged: an image error
out.insert(5, '{"image": "broken.png", "prompt": ')  # not JSON: line 6
with open("m.jsonl", "w") as f:
    f.write("\n".join(out) + "\n")
PY
st=0; "$JOUST" run m.jsonl --db "$WORK/db" --out "$WORK/out" --workers 1 --no-progress \
    --judge quality > "$WORK/run.out" 2>&1 || st=$?
[ -s "$WORK/out/scores.jsonl" ] || { cat "$WORK/run.out"; fail "run: no scores"; }
grep -q '"status":"error"' "$WORK/out/scores.jsonl" || fail "the missing image is not an error"

filter() { "$JOUST" filter m.jsonl --db "$WORK/db" "$@"; }
# what each percentile should keep, from scores.jsonl
python3 - "$WORK/out/scores.jsonl" > "$WORK/want.txt" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ranked = [r for r in rows if r["rank"] is not None]
scores = sorted(r["score"] for r in ranked)
def gpct(s): return 100.0 * (sum(1 for x in scores if x < s) + 0.5) / len(scores)
per = sorted(r["id"] for r in ranked if r["percentile"] >= 50)
glo = sorted(r["id"] for r in ranked if gpct(r["score"]) >= 60)
print(" ".join(per)); print(" ".join(glo))
PY
ids() { python3 -c 'import json,sys; print(" ".join(sorted(json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip())))' "$1"; }

filter --out "$WORK/p.jsonl" --keep 'percentile>=50' > "$WORK/f.out" || { cat "$WORK/f.out"; fail "filter percentile"; }
[ "$(ids "$WORK/p.jsonl")" = "$(sed -n 1p "$WORK/want.txt")" ] || { ids "$WORK/p.jsonl"; sed -n 1p "$WORK/want.txt"; fail "per-prompt percentile keeps the wrong images"; }
filter --out "$WORK/g.jsonl" --keep 'global_percentile>=60' > "$WORK/f.out" || fail "filter global"
[ "$(ids "$WORK/g.jsonl")" = "$(sed -n 2p "$WORK/want.txt")" ] || { ids "$WORK/g.jsonl"; sed -n 2p "$WORK/want.txt"; fail "global percentile keeps the wrong images"; }
[ "$(ids "$WORK/g.jsonl")" != "$(ids "$WORK/p.jsonl")" ] || fail "per-prompt and global percentiles agree on this set (test data too weak)"
# rejected list: the unjudged/unscored and the broken line, each with its reason
grep -q '"line":6,"id":null,"image":null,"reason":"not a valid manifest line' "$WORK/rejected.jsonl" || { cat "$WORK/rejected.jsonl"; fail "broken line not listed"; }
grep -q '"id":"missing".*"reason":"keep global_percentile>=60: no score (an image error)"' "$WORK/rejected.jsonl" || { cat "$WORK/rejected.jsonl"; fail "error reason"; }
grep -q 'kept .* of 15 lines' "$WORK/f.out" || { cat "$WORK/f.out"; fail "summary"; }

# the other score fields against scores.jsonl (the copy-of-first line is judged too)
for pred in 'rank<=2' 'score>0' 'wins>=1' 'comparisons>=3' 'status=ranked' 'ranked' 'status!=error'; do
    filter --out "$WORK/s.jsonl" --keep "$pred" > /dev/null || fail "filter --keep $pred"
    want=$(python3 - "$WORK/out/scores.jsonl" "$pred" <<'PY'
import json, sys, re
rows = [json.loads(l) for l in open(sys.argv[1])]
m = re.match(r"(\w+)(<=|>=|!=|=|<|>)?(.*)", sys.argv[2]); name, op, val = m.groups()
def ok(r):
    if name == "ranked": return r["rank"] is not None
    v = r[name]
    if v is None: return False
    if name != "status": val2 = float(val)
    else: val2 = val
    return {"<=": v <= val2 if name != "status" else None, ">=": v >= val2 if name != "status" else None,
            "<": v < val2 if name != "status" else None, ">": v > val2 if name != "status" else None,
            "=": v == val2, "!=": v != val2}[op]
print(" ".join(sorted(r["id"] for r in rows if ok(r))))
PY
)
    [ "$(ids "$WORK/s.jsonl")" = "$want" ] || { ids "$WORK/s.jsonl"; echo "$want"; fail "--keep $pred keeps the wrong images"; }
done
# --where reads the line's own fields, even under a built-in name; numbers as numbers
filter --out "$WORK/h.jsonl" --where 'height=512.0' --where 'width!=512' > /dev/null || fail "where height/width"
[ "$(wc -l < "$WORK/h.jsonl")" = 6 ] || fail "where height=512.0 and width!=512: not the 6 wide images"

# errors and duplicates, with the reasons
filter --out "$WORK/e.jsonl" --rejected "$WORK/e-rej.jsonl" --drop error --drop duplicate > "$WORK/f.out" || fail "filter error/duplicate"
grep -q '"id":"missing".*"reason":"drop error: holds"' "$WORK/e-rej.jsonl" || { cat "$WORK/e-rej.jsonl"; fail "error not dropped"; }
grep -q '"id":"copy-of-first".*"reason":"drop duplicate: holds"' "$WORK/e-rej.jsonl" || { cat "$WORK/e-rej.jsonl"; fail "duplicate not dropped"; }
[ "$(wc -l < "$WORK/e-rej.jsonl")" = 3 ] || { cat "$WORK/e-rej.jsonl"; fail "error/duplicate: more rejected than the error, the copy and the broken line"; }
[ "$(wc -l < "$WORK/e.jsonl")" = 12 ] || fail "error/duplicate: not 12 kept"
# kept lines are the input's, byte for byte and in order
python3 - m.jsonl "$WORK/e.jsonl" <<'PY' || fail "kept lines differ from the input's"
import sys
src = open(sys.argv[1], "rb").read().splitlines(keepends=True)
it = iter(src)
for line in open(sys.argv[2], "rb").read().splitlines(keepends=True):
    assert any(line == s for s in it), line
PY

# size and fields (no store needed): width, aspect, a field, bytes
"$JOUST" filter m.jsonl --db "$WORK/nowhere" --out "$WORK/w.jsonl" --keep 'width>=700' --where split=train > "$WORK/f.out" || { cat "$WORK/f.out"; fail "width/where without a store"; }
python3 - m.jsonl "$WORK/w.jsonl" <<'PY' || fail "width/where keeps the wrong lines"
import json, sys
want = []
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except ValueError: continue
    if d.get("width", 0) >= 700 and d.get("split") == "train": want.append(d["id"])
got = [json.loads(l)["id"] for l in open(sys.argv[2])]
assert got == want and got, (got, want)
PY
grep -q '"id":"copy-of-first".*"reason":"keep width>=700: no width' "$WORK/rejected.jsonl" || fail "unknown width reason"
filter --out "$WORK/a.jsonl" --keep 'aspect<=1.2' --keep 'bytes>100' > "$WORK/f.out" || fail "aspect/bytes"
[ "$(wc -l < "$WORK/a.jsonl")" = 6 ] || { cat "$WORK/f.out"; fail "aspect<=1.2 and bytes>100: not the 6 square images"; }

# compressed in and out: the same lines
gzip -c m.jsonl > m.jsonl.gz
"$JOUST" filter m.jsonl.gz --db "$WORK/db" --out "$WORK/e.jsonl.gz" --drop error --drop duplicate > /dev/null || fail "gz filter"
[ "$(head -c 2 "$WORK/e.jsonl.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ] || fail "output not gzip"
zcat "$WORK/e.jsonl.gz" | cmp - "$WORK/e.jsonl" || fail "gz output differs"
"$JOUST" filter m.jsonl.gz --db "$WORK/db" --out "$WORK/e.jsonl.zst" --drop error --drop duplicate > /dev/null || fail "zst filter"
zstd -q -d -c "$WORK/e.jsonl.zst" | cmp - "$WORK/e.jsonl" || fail "zst output differs"

# bad predicates: exit 2 and the reason
for bad in 'score>abc' 'score' 'error>1' 'percentile>=150' 'status=maybe' 'global_percentile=50' 'sco re>1' '>3'; do
    st=0; filter --out "$WORK/x.jsonl" --keep "$bad" > "$WORK/bad.out" 2>&1 || st=$?
    [ $st = 2 ] && grep -q "joust filter: --keep '" "$WORK/bad.out" || { cat "$WORK/bad.out"; fail "bad predicate '$bad' not refused"; }
done
# a manifest the store never saw
head -3 m.jsonl > other.jsonl
st=0; "$JOUST" filter other.jsonl --db "$WORK/db" --out "$WORK/x.jsonl" --keep 'score>0' > "$WORK/bad.out" 2>&1 || st=$?
[ $st = 1 ] && grep -q "was not ingested into this store" "$WORK/bad.out" || { cat "$WORK/bad.out"; fail "unknown manifest"; }

# the kept manifest runs again: no bad line, every image judged
cp "$WORK/e.jsonl" kept.jsonl
"$JOUST" run kept.jsonl --db "$WORK/db2" --out "$WORK/out2" --workers 1 --no-progress \
    --judge quality > "$WORK/run2.out" 2>&1 || { cat "$WORK/run2.out"; fail "re-run of the kept manifest"; }
grep -q "ingested kept.jsonl: 12 images in 3 new prompts; 0 bad lines" "$WORK/run2.out" || { cat "$WORK/run2.out"; fail "re-ingest counts"; }
# near-duplicates collapsed by `joust run --dedup` (duplicate_of), and sizes
# from the images' signatures when the lines have none
MAKE_DEDUP_SET=${MAKE_DEDUP_SET:?path to make_dedup_set}
mkdir -p "$WORK/set"
"$MAKE_DEDUP_SET" "$WORK/set" 1 || fail "dedup fixture"
D="$WORK/set/manifest.jsonl"
"$JOUST" run "$D" --db "$WORK/ddb" --out "$WORK/dd.o" --workers 1 --no-progress --dedup \
    > "$WORK/dd.out" 2>&1 || { cat "$WORK/dd.out"; fail "run --dedup"; }
"$JOUST" filter "$D" --db "$WORK/ddb" --out "$WORK/nd.jsonl" --rejected "$WORK/nd-rej.jsonl" \
    --drop duplicate > /dev/null || fail "filter near-duplicates"
python3 - "$WORK/dd.o/scores.jsonl" "$WORK/nd-rej.jsonl" <<'PY' || fail "--drop duplicate is not scores.jsonl's duplicate_of"
import json, sys
want = sorted(r["id"] for r in map(json.loads, open(sys.argv[1])) if r.get("duplicate_of"))
got = sorted(r["id"] for r in map(json.loads, open(sys.argv[2])) if r["reason"] == "drop duplicate: holds")
assert want == got and len(want) == 8, (want, got)
PY
"$JOUST" filter "$D" --db "$WORK/ddb" --out "$WORK/wd.jsonl" --rejected "$WORK/wd-rej.jsonl" \
    --keep 'width>=512' --keep 'aspect>1.3' > /dev/null || fail "filter by signature sizes"
python3 - "$D" "$WORK/wd-rej.jsonl" <<'PY' || fail "signature widths: the resized and cropped images are not the rejected ones"
import json, sys
kind = {r["id"]: r["kind"] for r in map(json.loads, open(sys.argv[1]))}
rej = [json.loads(l) for l in open(sys.argv[2])]
assert sorted(kind[r["id"]] for r in rej) == ["crop", "resize"], rej
assert all(r["reason"] == "keep width>=512: does not hold" for r in rej), rej
PY
echo "1 passed, 0 failed"
