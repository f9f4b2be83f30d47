#!/usr/bin/env bash
# A hung worker (SIGSTOP) stops heartbeating: the coordinator drops it and
# its leased matches go to the other worker; the run completes exactly once.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
sim_manifest "$WORK/m.jsonl" 40 8 13          # 40 x C(8,2) x 2 = 2,240 matches
ep="tcp://127.0.0.1:$(free_port)"
"$JOUST" coordinator "$WORK/m.jsonl" --judge sim --db "$WORK/db" --bind "$ep" --out "$WORK/out" \
    --no-progress --lease-ms 60000 > "$WORK/coord.log" 2>&1 &
coord=$!; PIDS+=($coord)
for i in 1 2; do
    "$JOUST" worker --connect "$ep" --judge sim --slots 8 --sim-latency-ms 20 --name "w$i" \
        > "$WORK/w$i.log" 2>&1 &
    PIDS+=($!)
done
hung=${PIDS[1]}
# Freeze w1 once it holds work: polled (its "ready" in the log, then
# committed outcomes), not a fixed sleep, which on a loaded machine could
# freeze it before it ever connected.
for ((i = 0; i < 600; i++)); do
    grep -q "worker w1 ready" "$WORK/coord.log" \
        && "$JOUST" status --db "$WORK/db" 2> /dev/null | awk '$NF == "judging" && $7 > 0 { f = 1 } END { exit !f }' \
        && break
    sleep 0.1
done
kill -STOP "$hung"
wait_for "$coord" 120 || { tail "$WORK/coord.log"; fail "the run did not finish without the hung worker"; }
grep -q "worker w1: silent too long; re-dispatching its matches" "$WORK/coord.log" \
    || fail "the hung worker was not dropped"
kill -CONT "$hung"   # so that the cleanup can end it
"$CHECK" "$WORK/db" default 0.9 2240 || fail "store check"
echo "1 passed, 0 failed"
