#!/usr/bin/env bash
# Honest exit and --retry-failed: a run whose matches failed (an image that
# is missing) writes its scores but exits 1, naming the failure class with
# a count and an example on stderr; `joust status` shows them;
# --max-failed lets it pass. Once the image exists, --retry-failed judges
# exactly the failed matches again, once: exit 0, every match with exactly
# one outcome, and a second --retry-failed finds nothing to do.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
"$JOUST" demo --out "$WORK/demo" --prompts 1 --per-prompt 4 --workers 1 --no-progress > /dev/null 2>&1 \
    || fail "demo data"
{
    for f in "$WORK"/demo/p0_v*.jpg; do
        printf '{"image":"%s","prompt":"late image","id":"%s"}\n' "$f" "$(basename "$f" .jpg)"
    done
    printf '{"image":"%s","prompt":"late image","id":"late"}\n' "$WORK/late.jpg"
} > "$WORK/m.jsonl"
run() { "$JOUST" run "$WORK/m.jsonl" --db "$WORK/db" --out "$WORK/out" --workers 1 --no-progress "$@"; }
st=0; run > "$WORK/run1.out" 2> "$WORK/run1.err" || st=$?
[ $st = 1 ] || { cat "$WORK/run1.err"; fail "a run with failed matches exited $st, not 1"; }
# 5 images, 4 of them with the missing one, both orders: 8 of 20 fail
grep -q "run 'default': 8 of 20 matches failed" "$WORK/run1.err" || { cat "$WORK/run1.err"; fail "no failure count"; }
grep -q "  image_error: 8 (e.g. .*late.jpg" "$WORK/run1.err" || { cat "$WORK/run1.err"; fail "no failure class with an example"; }
[ -s "$WORK/out/scores.jsonl" ] || fail "no scores were written"
"$JOUST" status --db "$WORK/db" > "$WORK/status.out" 2>&1 || fail "status"
grep -q "image_error" "$WORK/status.out" || { cat "$WORK/status.out"; fail "status does not show the failures"; }
# the same run, failures allowed: exit 0
run --max-failed 40% > /dev/null 2> "$WORK/run2.err" || { cat "$WORK/run2.err"; fail "--max-failed 40% should pass"; }
st=0; run --max-failed 7 > /dev/null 2>&1 || st=$?
[ $st = 1 ] || fail "--max-failed 7 with 8 failures exited $st"
# a batch strategy (swiss plans rounds from the results so far)
st=0; run --run swiss --strategy swiss > /dev/null 2> "$WORK/swiss1.err" || st=$?
[ $st = 1 ] || { cat "$WORK/swiss1.err"; fail "swiss: a run with failed matches exited $st"; }
planned=$("$CHECK" "$WORK/db" swiss 0 | sed -n 's/^planned \([0-9]*\) matches.*/\1/p')
failed=$(sed -n "s/^joust: run 'swiss': \([0-9]*\) of .*/\1/p" "$WORK/swiss1.err")
[ -n "$failed" ] && [ "$failed" -gt 0 ] || { cat "$WORK/swiss1.err"; fail "swiss: no failures counted"; }
cp "$(ls "$WORK"/demo/p0_v*.jpg | head -1)" "$WORK/late.jpg"
run --retry-failed > "$WORK/run3.out" 2> "$WORK/run3.err" || { cat "$WORK/run3.err"; fail "--retry-failed"; }
grep -q "8 failed matches to judge again" "$WORK/run3.out" || { cat "$WORK/run3.out"; fail "retry count"; }
grep -q "judged 8 matches" "$WORK/run3.out" || { cat "$WORK/run3.out"; fail "not exactly the failed matches were judged"; }
"$CHECK" "$WORK/db" default 0 20 || fail "store check"
run --run swiss --strategy swiss --retry-failed > "$WORK/swiss2.out" 2> "$WORK/swiss2.err" \
    || { cat "$WORK/swiss2.err"; fail "swiss --retry-failed"; }
grep -q "judged $failed matches" "$WORK/swiss2.out" || { cat "$WORK/swiss2.out"; fail "swiss: not exactly the failed matches"; }
"$CHECK" "$WORK/db" swiss 0 "$planned" || fail "swiss: store check (nothing new planned, exactly once)"
run --retry-failed > "$WORK/run4.out" 2>&1 || fail "a second --retry-failed"
grep -q "0 failed matches to judge again" "$WORK/run4.out" || fail "the second --retry-failed found work"
echo "1 passed, 0 failed"
