#!/usr/bin/env bash
# A coordinator and two workers as separate processes over tcp on 127.0.0.1
# with the sim judge: every planned match gets exactly one committed outcome,
# the fitted order matches the latent utilities, `joust scores` reproduces
# scores.jsonl from the store alone, and `joust export dpo` writes one pair
# per prompt.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
sim_manifest "$WORK/m.jsonl" 30 6
port=$(free_port)
ep="tcp://127.0.0.1:$port"
"$JOUST" coordinator "$WORK/m.jsonl" --db "$WORK/db" --bind "$ep" --judge sim --out "$WORK/out" \
    --no-progress --lease-ms 5000 > "$WORK/coord.log" 2>&1 &
coord=$!; PIDS+=($coord)
for i in 1 2; do
    "$JOUST" worker --connect "$ep" --judge sim --slots 16 --name "w$i" > "$WORK/w$i.log" 2>&1 &
    PIDS+=($!)
done
wait_for "$coord" 120 || { cat "$WORK/coord.log"; fail "coordinator failed"; }
for p in "${PIDS[@]:1}"; do wait_for "$p" 20 || fail "worker exited with an error"; done
grep -q "worker w1 ready" "$WORK/coord.log" || fail "worker w1 never registered"
grep -q "worker w2 ready" "$WORK/coord.log" || fail "worker w2 never registered"
# 30 prompts x C(6,2) pairs x 2 orders
"$CHECK" "$WORK/db" default 0.9 900 || fail "store check"
[ "$(wc -l < "$WORK/out/scores.jsonl")" -eq 180 ] || fail "scores.jsonl should have 180 lines"
"$JOUST" scores --db "$WORK/db" --out "$WORK/again" > /dev/null
cmp "$WORK/out/scores.jsonl" "$WORK/again/scores.jsonl" || fail "joust scores differs from the run's scores.jsonl"
cmp "$WORK/out/scores.csv" "$WORK/again/scores.csv" || fail "joust scores differs from the run's scores.csv"
"$JOUST" export dpo --db "$WORK/db" --out "$WORK/dpo.jsonl" > /dev/null
[ "$(wc -l < "$WORK/dpo.jsonl")" -eq 30 ] || fail "dpo export should have one pair per prompt"
python3 - "$WORK/dpo.jsonl" <<'PY' || fail "dpo pairs are not best vs worst by latent"
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert d["margin"] > 0 and d["chosen_score"] > d["rejected_score"], d
    assert d["chosen_id"].endswith(tuple("012345")) and d["chosen_id"] != d["rejected_id"]
PY
echo "1 passed, 0 failed"
