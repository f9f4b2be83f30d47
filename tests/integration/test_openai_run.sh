#!/usr/bin/env bash
# `joust run --judge openai` against the stand-in OpenAI-compatible server:
# a round-robin tournament (both orders) with soft outcomes whose p_first
# equals the server's, the reasoning stored and shown by `joust show`, the
# fitted order agreeing with the server's preferences, position bias and
# judge statistics in the run summary; then one worker holding >= 64
# requests in flight against a slow server, and heartbeats that go on while
# requests are in flight.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openai_lib.sh"
CHECK=${CHECK:?path to check_run}
python3 "$FIXTURES/openai_images.py" "$WORK/set" 2 6 7 200704
standin_start a --max-pixels 200704 --expect "Text prompt:" --expect "<answer>" --bias 0.4 \
    --model alexgambashidze/qwen2.5vl_image_preference_reasoner
"$JOUST" run "$WORK/set/manifest.jsonl" --db "$WORK/db" --out "$WORK/out" --judge openai \
    --endpoint "$SRV_URL_a" --max-pixels 200704 --workers 2 --no-progress \
    --judge-stats "$WORK/stats.json" > "$WORK/run.out" 2> "$WORK/run.err" \
    || { cat "$WORK/run.err"; fail "run failed"; }
cat "$WORK/run.out"
grep -q "judged 60 matches .*: 60 ok, 0 failed" "$WORK/run.out" || fail "not all 60 matches ok"
grep -q "openai judge (2 workers): 60 requests for 60 matches" "$WORK/run.out" || fail "judge summary"
grep -q "image cache hit rate" "$WORK/run.out" || fail "no cache hit rate in the summary"
grep -q "had just seen them" "$WORK/run.out" || fail "no endpoint affinity share in the summary"
bias=$(sed -n 's/^position bias (judge openai): mean p_first - 0.5 = \([-+0-9.]*\);.*/\1/p' "$WORK/run.out")
python3 -c "import sys; b = float(sys.argv[1]); assert 0.02 < b < 0.2, b" "$bias" \
    || fail "position bias $bias, expected the server's first-position preference"
"$CHECK" "$WORK/db" default 0.75 60 || fail "store check"
[ "$(standin_get "$SRV_PORT_a" invalid)" = 0 ] || fail "the server saw invalid requests: $(standin_get "$SRV_PORT_a" last_invalid)"
[ "$(json_get "$WORK/stats.json" ok)" = 60 ] || fail "judge statistics"
[ "$(json_get "$WORK/stats.json" cache_misses)" = 12 ] || fail "each image should be prepared once per worker or less"
# Every match: soft p in (0,1) equal to the p_first the server states in the
# reasoning that the store kept.
"$JOUST" show $(seq 1 60) --db "$WORK/db" > "$WORK/show.txt" || fail "joust show"
python3 - "$WORK/show.txt" <<'PY' || fail "stored outcomes and reasoning"
import re, sys
blocks = open(sys.argv[1]).read().split("\nmatch ")
assert len(blocks) == 60, len(blocks)
for b in blocks:
    p = float(re.search(r"p_first: ([0-9.]+)", b).group(1))
    said = float(re.search(r"p_first=([0-9.]+)", b.split("reasoning:")[1]).group(1))
    assert 0 < p < 1 and abs(p - said) < 1e-6, (p, said, b)
    assert "status: OK" in b and "first:  image" in b and "answer: " in b, b
print("60 matches: soft p matches the server's, reasoning stored")
PY
"$JOUST" show 61 --db "$WORK/db" > /dev/null 2>&1 && fail "show of a match that does not exist"

# One worker, 64 requests in flight: a server that takes 1.5 s per reply
# (long enough for 64 requests to be prepared and sent on a loaded machine;
# with 500 ms the count fell short twice at a load average of 10).
python3 "$FIXTURES/openai_images.py" "$WORK/big" 1 12 9 200704
standin_start slow --max-pixels 200704 --always-delay-ms 1500
"$JOUST" run "$WORK/big/manifest.jsonl" --db "$WORK/db2" --out "$WORK/out2" --judge openai \
    --endpoint "$SRV_URL_slow" --max-pixels 200704 --workers 1 --inflight 64 --no-progress \
    --judge-stats "$WORK/stats2.json" > "$WORK/run2.out" 2> "$WORK/run2.err" \
    || { cat "$WORK/run2.err"; fail "slow run failed"; }
grep -q "judged 132 matches .*: 132 ok, 0 failed" "$WORK/run2.out" || fail "slow run: not all ok"
inflight=$(json_get "$WORK/stats2.json" max_inflight)
concurrent=$(standin_get "$SRV_PORT_slow" max_concurrent)
echo "one worker: $inflight requests in flight at most; the server saw $concurrent at once"
[ "$inflight" -ge 64 ] && [ "$concurrent" -ge 64 ] || fail "fewer than 64 requests in flight"

# Heartbeats go on while requests are in flight: replies that take 7 s,
# longer than the 5 s after which the coordinator drops a silent worker.
python3 "$FIXTURES/openai_images.py" "$WORK/few" 1 2 11 200704
standin_start late --max-pixels 200704 --always-delay-ms 7000
JOUST_LOG=info "$JOUST" run "$WORK/few/manifest.jsonl" --db "$WORK/db3" --out "$WORK/out3" \
    --judge openai --endpoint "$SRV_URL_late" --max-pixels 200704 --workers 1 --no-progress \
    > "$WORK/run3.out" 2> "$WORK/run3.err" || { cat "$WORK/run3.err"; fail "late run failed"; }
grep -q "judged 2 matches .*: 2 ok, 0 failed, 0 retried, 0 leases expired" "$WORK/run3.out" \
    || { cat "$WORK/run3.out" "$WORK/run3.err"; fail "late run"; }
! grep -Eq "silent too long|reconnecting" "$WORK/run3.err" || { cat "$WORK/run3.err"; fail "heartbeats stopped while requests were in flight"; }
echo "1 passed, 0 failed"
