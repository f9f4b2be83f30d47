#!/usr/bin/env bash
# Bad input fails only what needs it: corrupt, truncated, zero-byte, non-image
# and missing images fail the matches that use them (reason stored and shown
# in the summary and in scores.jsonl; the run exits 1 and names them), malformed manifest lines are reported
# with their line numbers and listed, all of them, in bad_lines.jsonl beside
# the scores (a NUL in a string, non-JSON whitespace, a duplicate or
# reserved id among them), ids in scores.jsonl are unique (a line without an
# id is "#N"), and every other image is still scored. An empty manifest, or
# one with only bad lines, fails with a clear error.
. "$(dirname "$0")/lib.sh"
"$JOUST" demo --out "$WORK/demo" --prompts 1 --per-prompt 4 --workers 1 --no-progress > /dev/null 2>&1 \
    || fail "demo data"
img=$(ls "$WORK"/demo/p0_v*.jpg | head -1)
img2=$(ls "$WORK"/demo/p0_v*.jpg | sed -n 2p)
head -c 100000 /dev/urandom > "$WORK/corrupt.jpg"; printf '\xff\xd8\xff' | dd of="$WORK/corrupt.jpg" conv=notrunc 2>/dev/null
head -c 3000 "$img" > "$WORK/truncated.jpg"
: > "$WORK/zero.png"
echo "not an image" > "$WORK/text.webp"
{
    for f in "$WORK"/demo/p0_v*.jpg; do
        printf '{"image":"%s","prompt":"good and bad","id":"%s"}\n' "$f" "$(basename "$f" .jpg)"
    done
    for f in corrupt.jpg truncated.jpg zero.png text.webp missing.jpg; do
        printf '{"image":"%s","prompt":"good and bad","id":"%s"}\n' "$f" "$f"
    done
    echo '{"image": "x.jpg", "prompt": '            # line 10: invalid JSON
    echo '{"prompt": "no image here"}'               # line 11: missing image
    printf '{"image":"%s","prompt":"alone","id":"single"}\n' "$img"
    printf '{"image":"%s\\u0000.gone","prompt":"alone","id":"nul"}\n' "$img2"   # 13: NUL
    printf '\f{"image":"%s","prompt":"alone","id":"ff"}\n' "$img2"              # 14: form feed
    printf '{"image":"%s","prompt":"alone","id":"single"}\n' "$img2"            # 15: duplicate id
    printf '{"image":"%s","prompt":"alone"}\n' "$img2"                          # 16: no id
    printf '{"image":"%s","prompt":"alone","id":"#16"}\n' "$img2"               # 17: reserved id
} > "$WORK/m.jsonl"
# The matches with a bad image fail: the scores are written, the failures
# are named on stderr, and the exit status says so (honest exit).
st=0; "$JOUST" run "$WORK/m.jsonl" --db "$WORK/db" --out "$WORK/out" --workers 2 --no-progress \
    > "$WORK/run.out" 2> "$WORK/run.err" || st=$?
[ $st = 1 ] || { cat "$WORK/run.err"; fail "a run with failed matches exited $st, not 1"; }
grep -q "60 of 74 matches failed" "$WORK/run.err" || fail "the failed matches are not counted on stderr"
grep -q "  image_error: 60 (e.g. " "$WORK/run.err" || fail "the failure class is not named on stderr"
grep -q "m.jsonl:10: invalid JSON" "$WORK/run.err" || fail "line 10 not reported"
grep -q "m.jsonl:11: field \"image\"" "$WORK/run.err" || fail "line 11 not reported"
grep -q "images that could not be judged" "$WORK/run.out" || fail "summary lacks the failed images"
grep -q "6 bad lines (all in $WORK/out/bad_lines.jsonl)" "$WORK/run.out" || fail "bad lines not counted"
python3 - "$WORK/out/bad_lines.jsonl" "$WORK/m.jsonl" <<'PY' || fail "bad_lines.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = {10: "invalid JSON", 11: 'field "image": required', 13: 'field "image": contains NUL',
        14: "form feed (0x0c) at byte 1", 15: 'duplicate id "single"', 17: "reserved"}
assert [r["line"] for r in rows] == sorted(want), rows
for r in rows:
    assert want[r["line"]] in r["error"], r
    assert r["manifest"] == sys.argv[2], r
PY
python3 - "$WORK/out/scores.jsonl" <<'PY' || fail "scores.jsonl"
import json, sys
rows = {r["id"]: r for r in map(json.loads, open(sys.argv[1]))}
bad = ["corrupt.jpg", "truncated.jpg", "zero.png", "text.webp", "missing.jpg"]
good = [k for k in rows if k.startswith("p0_v")]
assert len(good) == 4, rows.keys()
for k in bad:
    r = rows[k]
    assert r["score"] is None and r["rank"] is None, r
    assert k in r["error"], r   # the reason names the file
assert sorted(rows[k]["rank"] for k in good) == [1, 2, 3, 4]
for k in good:
    assert rows[k]["comparisons"] == 6, rows[k]   # 3 good partners x 2 orders
ids = [r["id"] for r in map(json.loads, open(sys.argv[1]))]
assert len(ids) == len(set(ids)), ids          # never two rows with one id
gen = [k for k in rows if k.startswith("#")]
assert len(gen) == 1 and gen[0][1:].isdigit(), gen   # line 16, under its generated id
assert rows["single"]["comparisons"] == 2 and rows[gen[0]]["comparisons"] == 2
print("errors:", {k: rows[k]["error"] for k in bad})
PY
# An empty manifest (or one with only bad lines) is an error that says so.
: > "$WORK/empty.jsonl"
if "$JOUST" run "$WORK/empty.jsonl" --db "$WORK/db-empty" --out "$WORK/out-empty" --no-progress \
    > /dev/null 2> "$WORK/empty.err"; then fail "an empty manifest should fail"; fi
grep -q "has no valid images" "$WORK/empty.err" || fail "empty manifest: no clear error"
echo '{"prompt": "x"}' > "$WORK/allbad.jsonl"
if "$JOUST" run "$WORK/allbad.jsonl" --db "$WORK/db-bad" --out "$WORK/out-bad" --no-progress \
    > /dev/null 2> "$WORK/allbad.err"; then fail "a manifest of bad lines should fail"; fi
grep -q "allbad.jsonl:1: field \"image\"" "$WORK/allbad.err" || fail "bad line not named"
echo "1 passed, 0 failed"
