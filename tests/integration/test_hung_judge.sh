#!/usr/bin/env bash
# A hung-but-alive worker: its judge never answers but the worker keeps
# heartbeating. Its expired leases go to the healthy worker, it is drained
# (no new work) and reported, and the run completes every match on the
# other worker: exit 0, nothing ABANDONED, exactly once. Before any worker
# connects, the coordinator is paused and `joust status` says why.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
sim_manifest "$WORK/m.jsonl" 30 6 3          # 30 x C(6,2) x 2 = 900 matches
ep="tcp://127.0.0.1:$(free_port)"
"$JOUST" coordinator "$WORK/m.jsonl" --judge sim --db "$WORK/db" --bind "$ep" --out "$WORK/out" \
    --no-progress --lease-ms 1000 > "$WORK/coord.log" 2>&1 &
coord=$!; PIDS+=($coord)
# No worker yet: the coordinator is paused, says why, and `joust status`
# (read-only beside the running coordinator) shows it.
for ((i = 0; i < 150; i++)); do
    "$JOUST" status --db "$WORK/db" 2>/dev/null | grep -q "paused for .* no worker is connected" && break
    sleep 0.1
done
"$JOUST" status --db "$WORK/db" | grep -q "paused for .* no worker is connected" \
    || { "$JOUST" status --db "$WORK/db"; fail "status does not show the pause"; }
grep -q "paused for .* no worker is connected" "$WORK/coord.log" || fail "the pause was not logged"
# The hung one connects first and is sent the first matches.
"$JOUST" worker --connect "$ep" --judge sim --slots 8 --sim-latency-ms 600000 --name hung \
    > "$WORK/hung.log" 2>&1 &
PIDS+=($!)
sleep 0.5
"$JOUST" worker --connect "$ep" --judge sim --slots 8 --sim-latency-ms 2 --name good \
    > "$WORK/good.log" 2>&1 &
PIDS+=($!)
st=0; wait_for "$coord" 120 || st=$?
[ $st = 0 ] || { tail -20 "$WORK/coord.log"; fail "the coordinator exited $st"; }
grep -q "lease on hung expired" "$WORK/coord.log" || fail "the hung worker was never sent work"
grep -q "worker hung drained" "$WORK/coord.log" || fail "the hung worker was not drained"
grep -q "gave up\|abandoned" "$WORK/coord.log" && fail "a match was abandoned"
grep -q "matches failed" "$WORK/coord.log" && fail "matches failed"
grep -q "progress: 900/900 matches (100.0%)" "$WORK/coord.log" || fail "no progress log line"
"$CHECK" "$WORK/db" default 0.9 900 || fail "store check"
"$JOUST" status --db "$WORK/db" | grep -q "paused" && fail "status still shows a pause after the run"
echo "1 passed, 0 failed"
