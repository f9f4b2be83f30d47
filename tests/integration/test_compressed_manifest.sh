#!/usr/bin/env bash
# Compressed and piped manifests through the CLI: `gzip -c m | joust run -`
# and `joust ingest m.zst` (named .jsonl: told by magic bytes) rank the
# same images, and a bad line inside each is reported with its line number.
. "$(dirname "$0")/lib.sh"
"$JOUST" demo --out "$WORK/demo" --prompts 2 --per-prompt 3 --workers 1 --no-progress \
    > /dev/null 2>&1 || fail "demo data"
cd "$WORK/demo"
{ head -2 manifest.jsonl; echo '{"image": "broken.jpg", "prompt": '; tail -n +3 manifest.jsonl; } > m.jsonl
gzip -c m.jsonl | "$JOUST" run - --db "$WORK/db1" --out "$WORK/out1" --workers 1 --no-progress \
    --judge quality > "$WORK/run1.out" 2> "$WORK/run1.err" || { cat "$WORK/run1.err"; fail "gzip on stdin"; }
grep -q "ingested -: 6 images in 2 new prompts; 1 bad lines" "$WORK/run1.out" || { cat "$WORK/run1.out"; fail "stdin counts"; }
grep -q '"line":3' "$WORK/out1/bad_lines.jsonl" || { cat "$WORK/out1/bad_lines.jsonl"; fail "gzip: bad line number"; }
[ "$(wc -l < "$WORK/out1/scores.jsonl")" = 6 ] || fail "gzip on stdin: not 6 scores"
zstd -q -c m.jsonl > mz.jsonl
"$JOUST" ingest mz.jsonl --db "$WORK/db2" --out "$WORK/out2" > "$WORK/ingest.out" 2>&1 || { cat "$WORK/ingest.out"; fail "zstd ingest"; }
grep -q "6 images in 2 new prompts; 1 bad lines" "$WORK/ingest.out" || { cat "$WORK/ingest.out"; fail "zstd counts"; }
grep -q '"line":3' "$WORK/out2/bad_lines.jsonl" || fail "zstd: bad line number"
# a truncated one is an error naming the file, nothing ingested
gzip -c m.jsonl | head -c 100 > cut.gz
st=0; "$JOUST" ingest cut.gz --db "$WORK/db3" --out "$WORK/out3" > "$WORK/cut.out" 2>&1 || st=$?
[ $st != 0 ] && grep -q "cut.gz: ends in the middle of a gzip stream" "$WORK/cut.out" \
    || { cat "$WORK/cut.out"; fail "a truncated gzip manifest was not refused"; }
echo "1 passed, 0 failed"
