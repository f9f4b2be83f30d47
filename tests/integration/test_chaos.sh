#!/usr/bin/env bash
# Chaos: a 20,070-match run with 4 workers over tcp while this script kills
# the coordinator 5 times and workers 20 times (kill -9) at random moments,
# restarting each. Every match must end with exactly one committed outcome
# and the scores must equal those of an uninterrupted run with the same seed.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
RANDOM=${CHAOS_SEED:-4242}
sim_manifest "$WORK/m.jsonl" 223 10 5        # 223 x C(10,2) x 2 orders = 20,070 matches
"$JOUST" run "$WORK/m.jsonl" --judge sim --sim-noise 1 --db "$WORK/clean" --out "$WORK/clean-out" \
    --no-progress > /dev/null 2>&1 || fail "clean run"
ep="tcp://127.0.0.1:$(free_port)"
start_coord() {
    "$JOUST" coordinator "$WORK/m.jsonl" --judge sim --db "$WORK/db" --bind "$ep" --out "$WORK/out" \
        --no-progress --lease-ms 2000 >> "$WORK/coord.log" 2>&1 &
    coord=$!; PIDS+=($coord)
}
nworker=0
start_worker() {
    nworker=$((nworker + 1))
    "$JOUST" worker --connect "$ep" --judge sim --sim-noise 1 --slots 4 --sim-latency-ms 12 \
        --name "w$nworker" >> "$WORK/workers.log" 2>&1 &
    workers[$1]=$!; PIDS+=($!)
}
start_coord
workers=()
for i in 0 1 2 3; do start_worker $i; done
coord_kills=0 worker_kills=0
while [ $coord_kills -lt 5 ] || [ $worker_kills -lt 20 ]; do
    sleep "0.$((RANDOM % 3 + 1))"
    kill -0 "$coord" 2>/dev/null || fail "the run finished after only $coord_kills coordinator and $worker_kills worker kills"
    if [ $coord_kills -lt 5 ] && { [ $worker_kills -ge 20 ] || [ $((RANDOM % 5)) -eq 0 ]; }; then
        kill -9 "$coord"; wait "$coord" 2>/dev/null || true
        coord_kills=$((coord_kills + 1))
        start_coord
    else
        i=$((RANDOM % 4))
        if ! kill -0 "${workers[$i]}" 2>/dev/null; then
            st=0; wait "${workers[$i]}" || st=$?
            grep -q "run complete" "$WORK/workers.log" && fail "the run finished before all the kills"
            tail -20 "$WORK/workers.log"
            fail "worker ${workers[$i]} exited by itself (status $st)"
        fi
        kill -9 "${workers[$i]}"; wait "${workers[$i]}" 2>/dev/null || true
        worker_kills=$((worker_kills + 1))
        start_worker $i
    fi
done
echo "killed the coordinator $coord_kills times and workers $worker_kills times"
wait_for "$coord" 240 || { tail -20 "$WORK/coord.log"; fail "coordinator failed"; }
grep -q "resuming run 'default'" "$WORK/coord.log" || fail "the coordinator never resumed"
"$CHECK" "$WORK/db" default 0.5 20070 || fail "store check"
cmp "$WORK/clean-out/scores.jsonl" "$WORK/out/scores.jsonl" || fail "scores differ from the uninterrupted run"
echo "1 passed, 0 failed"
