#!/usr/bin/env bash
# Every pairing strategy end to end with a budget of 4 calls per image (and
# --confidence 1, so adaptive and top-k spend it rather than stop early): the
# run judges exactly the budget (20 prompts x 16 images x 4 = 1,280 matches),
# each match once, and recovers the latent order. Then an adaptive run is
# killed (-9) mid-run and resumed: still exactly once and exactly the budget.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
sim_manifest "$WORK/m.jsonl" 20 16 9
for st in round-robin k-regular swiss adaptive top-k cross-model; do
    "$JOUST" run "$WORK/m.jsonl" --judge sim --sim-noise 1 --strategy "$st" --budget 4 --confidence 1 \
        --db "$WORK/db" --run "$st" --out "$WORK/$st" --no-progress > "$WORK/$st.log" 2>&1 \
        || { cat "$WORK/$st.log"; fail "$st run"; }
    "$CHECK" "$WORK/db" "$st" 0.5 1280 || fail "$st: store check"
done
ep="tcp://127.0.0.1:$(free_port)"
coord() {
    "$JOUST" coordinator "$WORK/m.jsonl" --judge sim --strategy adaptive --budget 4 --confidence 1 --db "$WORK/db2" \
        --bind "$ep" --out "$WORK/out2" --no-progress --lease-ms 3000 >> "$WORK/coord.log" 2>&1 &
    PIDS+=($!)
}
coord
c1=${PIDS[-1]}
"$JOUST" worker --connect "$ep" --judge sim --sim-noise 1 --slots 4 --sim-latency-ms 5 > "$WORK/w.log" 2>&1 &
PIDS+=($!)
# Killed once its first outcomes are committed (read-only status beside it),
# not after a fixed sleep: under load the run may not have started by then.
for _ in $(seq 600); do
    ok=$("$JOUST" status --db "$WORK/db2" 2>/dev/null | awk '$1 == "default" {print $6}' || true)
    [ "${ok:-0}" -gt 0 ] && break
    sleep 0.1
done
[ "${ok:-0}" -gt 0 ] || { tail "$WORK/coord.log"; fail "the adaptive run committed nothing in 60 s"; }
kill -9 "$c1"; wait "$c1" 2>/dev/null || true
coord
wait_for "${PIDS[-1]}" 120 || { tail "$WORK/coord.log"; fail "restarted coordinator"; }
grep -q "resuming run 'default'" "$WORK/coord.log" || fail "the adaptive run was not interrupted"
"$CHECK" "$WORK/db2" default 0.5 1280 || fail "adaptive after a restart: store check"
echo "1 passed, 0 failed"
