#!/usr/bin/env bash
# kill -9 of the coordinator mid-run: restarted on the same store it resumes,
# every match ends with exactly one committed outcome, and the scores equal
# those of an uninterrupted run with the same seed.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
sim_manifest "$WORK/m.jsonl" 150 10 11
"$JOUST" run "$WORK/m.jsonl" --judge sim --sim-noise 1 --db "$WORK/clean" --out "$WORK/clean-out" \
    --no-progress > /dev/null 2>&1 || fail "clean run"
port=$(free_port)
ep="tcp://127.0.0.1:$port"
coord() {
    "$JOUST" coordinator "$WORK/m.jsonl" --judge sim --db "$WORK/db" --bind "$ep" --out "$WORK/out" \
        --no-progress --lease-ms 3000 >> "$WORK/coord.log" 2>&1 &
    PIDS+=($!)
}
coord
c1=${PIDS[-1]}
for i in 1 2; do
    "$JOUST" worker --connect "$ep" --judge sim --sim-noise 1 --slots 4 --sim-latency-ms 2 --name "w$i" > "$WORK/w$i.log" 2>&1 &
    PIDS+=($!)
done
# Kill once outcomes are being committed (polled, not a fixed sleep: on a
# loaded machine the coordinator may still be creating the store after 1 s).
for ((i = 0; i < 600; i++)); do
    "$JOUST" status --db "$WORK/db" 2> /dev/null | awk '$NF == "judging" && $7 > 0 { f = 1 } END { exit !f }' \
        && break
    sleep 0.1
done
kill -9 "$c1"
wait "$c1" 2>/dev/null || true
st=$("$JOUST" status --db "$WORK/db"); echo "$st" | grep -q judging || { echo "$st"; cat "$WORK/coord.log"; fail "the coordinator finished before it was killed"; }
coord
wait_for "${PIDS[-1]}" 120 || { cat "$WORK/coord.log"; fail "restarted coordinator failed"; }
grep -q "resuming run 'default'" "$WORK/coord.log" || fail "no resume"
"$CHECK" "$WORK/db" default 0.5 13500 || fail "store check"
cmp "$WORK/clean-out/scores.jsonl" "$WORK/out/scores.jsonl" || fail "scores differ from the uninterrupted run"
echo "1 passed, 0 failed"
