#!/usr/bin/env bash
# Every fault mode of the stand-in server, through `joust run --judge
# openai`: HTTP 500, 429 with Retry-After, slow replies past the request
# timeout, truncated JSON, missing logprobs, answers without tags,
# reasoning in reasoning_content, connections closed without a reply.
# Faults that pass (the first try of each pair) end with every match OK;
# faults that never pass end with every match recorded as failed with the
# right status. Either way no match is lost: each planned match has exactly
# one committed outcome.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openai_lib.sh"
CHECK=${CHECK:?path to check_run}
python3 "$FIXTURES/openai_images.py" "$WORK/set" 1 4 5 200704
standin_start f --max-pixels 200704 --expect "Text prompt:"
"$JOUST" ingest "$WORK/set/manifest.jsonl" --db "$WORK/db" > /dev/null
run() { # run NAME [options]: a tournament of 12 matches (4 images, both orders)
    local name=$1
    shift
    "$JOUST" run "$WORK/set/manifest.jsonl" --db "$WORK/db" --run "$name" --out "$WORK/out-$name" \
        --judge openai --endpoint "$SRV_URL_f" --max-pixels 200704 --workers 1 --no-progress "$@" \
        > "$WORK/$name.out" 2> "$WORK/$name.err" || { cat "$WORK/$name.err"; fail "run $name failed"; }
    "$CHECK" "$WORK/db" "$name" -1 12 > "$WORK/$name.check" || { cat "$WORK/$name.check"; fail "$name: a match was lost"; }
}
for mode in none http500 http429 slow truncated nologprobs notags split reset; do
    standin_fault "$SRV_PORT_f" "$mode" 1 1500
    t0=$(date +%s.%N)
    run "$mode" --request-timeout-ms 700
    printf '%-10s %5.1f s  %s\n' "$mode" "$(echo "$(date +%s.%N) - $t0" | bc)" \
        "$(grep -o 'judged 12 matches.*' "$WORK/$mode.out")"
    grep -q "judged 12 matches .*: 12 ok, 0 failed" "$WORK/$mode.out" || { cat "$WORK/$mode.out"; fail "$mode: not all ok"; }
done
grep -q "429: 12," "$WORK/http429.out" || fail "http429: the summary should count 12 throttled requests"
gap=$(standin_get "$SRV_PORT_f" min_retry_gap_ms)
python3 -c "import sys; assert float(sys.argv[1]) >= 1000" "$gap" || fail "Retry-After not honoured (gap $gap ms)"
grep -q "12 ok (12 hard answers without logprobs" "$WORK/nologprobs.out" || fail "nologprobs: hard fallback"
"$JOUST" show 1 --db "$WORK/db" --run split | grep -q "p_first=" || fail "split: reasoning_content not stored"

# Faults that never pass: recorded as failed, nothing lost. (A server that
# always answers 500 is an infrastructure failure, never final: the judge's
# side is tested in tests/worker/test_openai_judge.c, the coordinator's
# requeueing with the coordinator.) Two attempts per match at the
# coordinator: the retried attempt's result replaces the first in the
# worker's outbox and is the one recorded.
standin_fault "$SRV_PORT_f" notags -1
run alwaysnotags --unparseable-retries 1 --max-attempts 2
grep -q "judged 12 matches .*: 0 ok, 12 failed" "$WORK/alwaysnotags.out" || fail "alwaysnotags"
"$JOUST" show $(seq 1 12) --db "$WORK/db" --run alwaysnotags > "$WORK/notags.show"
[ "$(grep -c "status: UNPARSEABLE" "$WORK/notags.show")" = 12 ] || fail "alwaysnotags: every match should end UNPARSEABLE"
grep -q "The first image looks better" "$WORK/notags.show" || fail "the unparseable reply should be kept"
[ "$(standin_get "$SRV_PORT_f" invalid)" = 0 ] || fail "the server saw invalid requests: $(standin_get "$SRV_PORT_f" last_invalid)"
echo "1 passed, 0 failed"
