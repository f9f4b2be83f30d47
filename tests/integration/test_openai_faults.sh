#!/usr/bin/env bash
# Every fault mode of the stand-in server, through `joust run --judge
# openai`: HTTP 500, 429 with Retry-After, slow replies past the request
# timeout, truncated JSON, missing logprobs, answers without tags,
# reasoning in reasoning_content, connections closed without a reply.
# Faults that pass (the first try of each pair) end with every match OK;
# a server that always fails leaves the matches queued, never failed; a
# reply that never parses ends every match UNPARSEABLE and the run exits 1.
# Either way no match is lost: each planned match has exactly one committed
# outcome.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openai_lib.sh"
CHECK=${CHECK:?path to check_run}
python3 "$FIXTURES/openai_images.py" "$WORK/set" 1 4 5 200704
standin_start f --max-pixels 200704 --expect "Text prompt:"
"$JOUST" ingest "$WORK/set/manifest.jsonl" --db "$WORK/db" > /dev/null
run() { # run NAME [options]: a tournament of 12 matches (4 images, both orders)
    local name=$1 st=0
    shift
    "$JOUST" run "$WORK/set/manifest.jsonl" --no-reuse --db "$WORK/db" --run "$name" --out "$WORK/out-$name" \
        --judge openai --endpoint "$SRV_URL_f" --max-pixels 200704 --workers 1 --no-progress "$@" \
        > "$WORK/$name.out" 2> "$WORK/$name.err" || st=$?
    "$CHECK" "$WORK/db" "$name" -1 12 > "$WORK/$name.check" || { cat "$WORK/$name.check"; fail "$name: a match was lost"; }
    return $st
}
for mode in none http500 http429 slow truncated nologprobs notags split reset; do
    standin_fault "$SRV_PORT_f" "$mode" 1 1500
    t0=$(date +%s.%N)
    run "$mode" --request-timeout-ms 700 || { cat "$WORK/$mode.err"; fail "run $mode failed"; }
    printf '%-10s %5.1f s  %s\n' "$mode" "$(echo "$(date +%s.%N) - $t0" | bc)" \
        "$(grep -o 'judged 12 matches.*' "$WORK/$mode.out")"
    grep -q "judged 12 matches .*: 12 ok, 0 failed" "$WORK/$mode.out" || { cat "$WORK/$mode.out"; fail "$mode: not all ok"; }
done
grep -q "429: 12," "$WORK/http429.out" || fail "http429: the summary should count 12 throttled requests"
gap=$(standin_get "$SRV_PORT_f" min_retry_gap_ms)
python3 -c "import sys; assert float(sys.argv[1]) >= 1000" "$gap" || fail "Retry-After not honoured (gap $gap ms)"
grep -q "12 ok (12 hard answers without logprobs" "$WORK/nologprobs.out" || fail "nologprobs: hard fallback"
"$JOUST" show 1 --db "$WORK/db" --run split | grep -q "p_first=" || fail "split: reasoning_content not stored"

# A server that answers 500 to everything: infrastructure failures are never
# final (docs/protocol.md 6.1), so nothing is recorded as failed; the matches
# wait in the queue. Interrupted, then resumed once the server is back, the
# run completes with every match ok.
standin_fault "$SRV_PORT_f" http500 -1
st=0; timeout --preserve-status -s INT 8 "$JOUST" run "$WORK/set/manifest.jsonl" --no-reuse --db "$WORK/db" --run always500 \
    --out "$WORK/out-always500" --judge openai --endpoint "$SRV_URL_f" --max-pixels 200704 \
    --workers 1 --no-progress --max-retries 1 --max-attempts 2 > /dev/null 2> "$WORK/always500.err" || st=$?
[ $st = 130 ] || { tail "$WORK/always500.err"; fail "always500: exit $st, not 130 (interrupted)"; }
"$JOUST" status --db "$WORK/db" | grep -E "^always500 .* 12 +0 +0  judging" > /dev/null \
    || { "$JOUST" status --db "$WORK/db"; fail "always500: an infrastructure failure was recorded"; }
standin_fault "$SRV_PORT_f" none 0
run always500 --max-retries 1 --max-attempts 2 || { cat "$WORK/always500.err"; fail "always500 resumed"; }
grep -q "judged 12 matches .*: 12 ok, 0 failed" "$WORK/always500.out" || fail "always500: not all ok once the server is back"
# A reply that never has an answer: a match-level failure, final after
# --max-attempts; the run exits 1 and names the class (honest exit).
standin_fault "$SRV_PORT_f" notags -1
st=0; run alwaysnotags --unparseable-retries 1 --max-attempts 2 || st=$?
[ $st = 1 ] || fail "alwaysnotags: exit $st, not 1"
grep -q "judged 12 matches .*: 0 ok, 12 failed" "$WORK/alwaysnotags.out" || fail "alwaysnotags"
grep -q "  unparseable: 12 (e.g. " "$WORK/alwaysnotags.err" || fail "alwaysnotags: the failure class is not named"
"$JOUST" show $(seq 1 12) --db "$WORK/db" --run alwaysnotags > "$WORK/notags.show"
[ "$(grep -c "status: UNPARSEABLE" "$WORK/notags.show")" = 12 ] || fail "alwaysnotags: every match should end UNPARSEABLE"
grep -q "The first image looks better" "$WORK/notags.show" || fail "the unparseable reply should be kept"
[ "$(standin_get "$SRV_PORT_f" invalid)" = 0 ] || fail "the server saw invalid requests: $(standin_get "$SRV_PORT_f" last_invalid)"
echo "1 passed, 0 failed"
