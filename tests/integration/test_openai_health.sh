#!/usr/bin/env bash
# Endpoint health through `joust run --judge openai` (issue 9.1/9.2): two
# endpoints, one answering 401 to this worker's key and one that starts
# 20 s after the run and goes down for 10 s in the middle of it. The worker
# waits for an endpoint before asking for work (saying so in its log),
# never sends a request to the 401 endpoint, holds its matches through the
# outage, and no match fails: the run completes with exit 0. Then a run
# whose only endpoint answers 401: the worker reports CONFIG_ERROR naming
# the endpoint and the server's words for every match it is given.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openai_lib.sh"
CHECK=${CHECK:?path to check_run}
python3 "$FIXTURES/openai_images.py" "$WORK/set" 1 8 3 200704
standin_start bad --max-pixels 200704 --api-key not-the-workers-key
standin_start late --max-pixels 200704 --start-after 20 --always-delay-ms 250
export OPENAI_API_KEY=the-workers-key
t0=$(date +%s)
JOUST_LOG=info "$JOUST" run "$WORK/set/manifest.jsonl" --no-reuse --db "$WORK/db" --run health --out "$WORK/out" \
    --judge openai --endpoint "$SRV_URL_bad" --endpoint "$SRV_URL_late" --max-pixels 200704 \
    --workers 1 --inflight 4 --no-progress > "$WORK/run.out" 2> "$WORK/run.err" &
RUN=$!
PIDS+=($RUN)
# Once the late server has judged a few matches, it goes down for 10 s.
for ((i = 0; i < 600; i++)); do
    c=$(standin_get "$SRV_PORT_late" completions 2>/dev/null || echo 0)
    [ "$c" -ge 8 ] && break
    kill -0 $RUN 2>/dev/null || break
    sleep 0.1
done
[ "${c:-0}" -ge 8 ] || { cat "$WORK/run.err"; fail "the late server never judged 8 matches"; }
python3 -c 'import json, sys, urllib.request
urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%s/_control" % sys.argv[1],
                       json.dumps({"down_for": 10}).encode()))' "$SRV_PORT_late" > /dev/null
t_down=$(date +%s)
status=0
wait $RUN || status=$?
t1=$(date +%s)
cat "$WORK/run.out"
[ $status = 0 ] || { cat "$WORK/run.err"; fail "the run exited $status"; }
grep -q "judged 56 matches .*: 56 ok, 0 failed" "$WORK/run.out" || { cat "$WORK/run.err"; fail "not all 56 matches ok"; }
"$CHECK" "$WORK/db" health -1 56 > "$WORK/check.out" || { cat "$WORK/check.out"; fail "a match was lost"; }
(( t1 - t_down >= 10 )) || fail "the run ended $((t1 - t_down)) s after the outage began: it did not span it"
(( t1 - t0 >= 20 )) || fail "the run cannot have waited for the late server"
grep -q "waiting for the judge before asking for work" "$WORK/run.err" || fail "no log line while waiting for an endpoint"
grep -q "refuses this configuration: GET $SRV_URL_bad/models: HTTP 401" "$WORK/run.err" \
    || fail "the 401 endpoint was not named with the status"
grep -q "the judge cannot judge now" "$WORK/run.err" || fail "the outage was not announced"
grep -q "the judge is available again" "$WORK/run.err" || fail "the recovery was not announced"
[ "$(standin_get "$SRV_PORT_bad" completions)" = 0 ] || fail "a request went to the 401 endpoint"
[ "$(standin_get "$SRV_PORT_late" dropped)" -gt 0 ] || fail "the outage dropped nothing: the test did not test it"
[ "$(standin_get "$SRV_PORT_late" invalid)" = 0 ] || fail "invalid requests: $(standin_get "$SRV_PORT_late" last_invalid)"

# The only endpoint answers 401: the matches the worker is given come back
# CONFIG_ERROR with the endpoint and the server's words, and the run stops.
t0=$(date +%s)
status=0
timeout 60 "$JOUST" run "$WORK/set/manifest.jsonl" --no-reuse --db "$WORK/db" --run keyless --out "$WORK/out2" \
    --judge openai --endpoint "$SRV_URL_bad" --max-pixels 200704 --workers 1 --no-progress \
    > "$WORK/run2.out" 2> "$WORK/run2.err" || status=$?
t1=$(date +%s)
cat "$WORK/run2.out" "$WORK/run2.err" | tail -5
[ $status != 124 ] || fail "the run with a refused key did not stop"
(( t1 - t0 < 30 )) || fail "the run with a refused key took $((t1 - t0)) s"
grep -q "GET $SRV_URL_bad/models: HTTP 401: invalid API key" "$WORK/run2.err" \
    || fail "the refused key was not reported with the endpoint and the server's words"
[ "$(standin_get "$SRV_PORT_bad" completions)" = 0 ] || fail "a request went to the 401 endpoint"
# The coordinator stops the run at once with exit 1, naming the worker, the
# endpoint and the server's words; the match gets no outcome (it is judged
# again once the configuration is fixed).
[ $status = 1 ] || fail "the run with a refused key exited $status, not 1"
grep -q "run 'keyless' stopped: configuration error from worker local-1 (judge openai), match [0-9]*: every endpoint refuses this configuration: GET $SRV_URL_bad/models: HTTP 401: invalid API key" \
    "$WORK/run2.err" || fail "the stop does not carry the worker, the endpoint and the server's words"
"$JOUST" show 1 --db "$WORK/db" --run keyless > "$WORK/show2.txt" 2>&1 || true
grep -q "outcome: not judged yet" "$WORK/show2.txt" || { cat "$WORK/show2.txt"; fail "a CONFIG_ERROR was stored as an outcome"; }
echo "1 passed, 0 failed"
