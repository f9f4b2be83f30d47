#!/usr/bin/env bash
# A store whose writes fail mid-run (the store's fault seam,
# JOUST_TEST_STORE_FAULT, as a full disk does): the coordinator stops with a
# clear message and a non-zero exit status (never a RocksDB assertion),
# `joust status` works while the coordinator holds the store and after the
# failure, and a restart on the healthy store completes the run exactly once
# with the same worker, which kept its unacknowledged results.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
sim_manifest "$WORK/m.jsonl" 30 8 5
"$JOUST" ingest "$WORK/m.jsonl" --db "$WORK/db" > /dev/null 2>&1 || fail "ingest"
port=$(free_port)
ep="tcp://127.0.0.1:$port"
coord() { # coord LOG [FAULT]
    JOUST_TEST_STORE_FAULT=${2:-} "$JOUST" coordinator "$WORK/m.jsonl" --judge sim --db "$WORK/db" \
        --bind "$ep" --out "$WORK/out" --no-progress >> "$WORK/$1" 2>&1 &
    PIDS+=($!)
}
# The store fails at its 41st write from now: about two seconds of group
# commits with this slow worker.
coord c1.log write:40
c1=${PIDS[-1]}
"$JOUST" worker --connect "$ep" --judge sim --slots 2 --sim-latency-ms 5 --name w1 > "$WORK/w1.log" 2>&1 &
PIDS+=($!)
w1=${PIDS[-1]}
# joust status beside the running coordinator (read-only open).
seen=""
for _ in $(seq 40); do
    sleep 0.1
    kill -0 "$c1" 2>/dev/null || break
    st=$("$JOUST" status --db "$WORK/db" 2>&1) || fail "status while the coordinator runs: $st"
    ok=$(echo "$st" | awk '$1 == "default" {print $7}')
    if echo "$st" | grep -q judging && [ "${ok:-0}" -gt 0 ]; then seen=1; break; fi
done
[ -n "$seen" ] || { echo "$st"; cat "$WORK/c1.log"; fail "status never showed the running coordinator's progress"; }
set +e; wait_for "$c1" 60; rc=$?; set -e
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || { cat "$WORK/c1.log"; fail "coordinator exit status $rc after a failed write"; }
grep -q "no space left on the store's disk; stopping without acknowledging" "$WORK/c1.log" ||
    { cat "$WORK/c1.log"; fail "no clear message"; }
grep -q "Assertion" "$WORK/c1.log" && fail "RocksDB assertion"
st=$("$JOUST" status --db "$WORK/db") || fail "status after the failure"
echo "$st" | grep -q judging || { echo "$st"; fail "the run looks finished"; }
# Written but not synced: the failed batch may survive; still exactly once.
coord c2.log sync:3
set +e; wait_for "${PIDS[-1]}" 60; rc=$?; set -e
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || { cat "$WORK/c2.log"; fail "coordinator exit status $rc after a failed sync"; }
# Healthy again: the same worker finishes the run.
coord c3.log
wait_for "${PIDS[-1]}" 120 || { cat "$WORK/c3.log"; fail "the restarted coordinator failed"; }
"$CHECK" "$WORK/db" default 0.5 1680 || fail "store check"
[ -s "$WORK/out/scores.jsonl" ] || fail "no scores"
echo "1 passed, 0 failed"
