#!/usr/bin/env bash
# Bad input fails only what needs it: corrupt, truncated, zero-byte, non-image
# and missing images fail the matches that use them (reason stored and shown
# in the summary and in scores.jsonl), malformed manifest lines are reported
# with their line numbers, and every other image is still scored. An empty
# manifest, or one with only bad lines, fails with a clear error.
. "$(dirname "$0")/lib.sh"
"$JOUST" demo --out "$WORK/demo" --prompts 1 --per-prompt 4 --workers 1 --no-progress > /dev/null 2>&1 \
    || fail "demo data"
img=$(ls "$WORK"/demo/p0_v*.jpg | head -1)
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
} > "$WORK/m.jsonl"
"$JOUST" run "$WORK/m.jsonl" --db "$WORK/db" --out "$WORK/out" --workers 2 --no-progress \
    > "$WORK/run.out" 2> "$WORK/run.err" || { cat "$WORK/run.err"; fail "run failed"; }
grep -q "m.jsonl:10: invalid JSON" "$WORK/run.err" || fail "line 10 not reported"
grep -q "m.jsonl:11: field \"image\"" "$WORK/run.err" || fail "line 11 not reported"
grep -q "images that could not be judged" "$WORK/run.out" || fail "summary lacks the failed images"
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
assert rows["single"]["rank"] == 1 and rows["single"]["comparisons"] == 0
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
