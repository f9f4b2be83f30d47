#!/usr/bin/env bash
# CURVE + ZAP over tcp on 127.0.0.1, with real processes:
# - `joust keygen` writes NAME.key with mode 0600 and prints allow-list lines;
# - a coordinator with --curve-secret and --allow, and three workers: one
#   whose key is allowed (it claims another --name), one with an unknown key
#   and one without CURVE. The allowed worker completes the run, exactly
#   once per match, and every outcome records its key's allow-list name;
#   the other two get nothing through (never registered, never given a JOB,
#   never told goodbye) and the coordinator logs the unknown key's denial;
# - a secret key file readable by others is refused;
# - no secret key appears in any log or in the store.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
CHECK_WORKERS=${CHECK_WORKERS:?path to check_workers}
K="$WORK/keys"
mkdir -p "$K"
"$JOUST" keygen coord --out "$K" > /dev/null 2>&1 || fail "keygen coord"
"$JOUST" keygen gpu-node-1 --out "$K" > "$WORK/allow.txt" 2> /dev/null || fail "keygen gpu-node-1"
"$JOUST" keygen intruder --out "$K" > /dev/null 2>&1 || fail "keygen intruder"
[ "$(stat -c %a "$K/gpu-node-1.key")" = 600 ] || fail "secret key file mode is not 0600"
# (Z85 keys are full of regex metacharacters: compare strings, never grep.)
[ "$(cat "$WORK/allow.txt")" = "gpu-node-1 $(tail -1 "$K/gpu-node-1.pub")" ] || fail "keygen's allow-list line"
"$JOUST" keygen coord --out "$K" > /dev/null 2>&1 && fail "keygen overwrote an existing key"

sim_manifest "$WORK/m.jsonl" 20 5
port=$(free_port)
ep="tcp://127.0.0.1:$port"
"$JOUST" coordinator "$WORK/m.jsonl" --db "$WORK/db" --bind "$ep" --judge sim --out "$WORK/out" \
    --no-progress --lease-ms 5000 --curve-secret "$K/coord.key" --allow "$WORK/allow.txt" \
    > "$WORK/coord.log" 2>&1 &
coord=$!; PIDS+=($coord)
# The two that must get nothing start first and keep trying all along.
"$JOUST" worker --connect "$ep" --judge sim --name intruder --curve-secret "$K/intruder.key" \
    --server-key "$K/coord.pub" > "$WORK/intruder.log" 2>&1 &
intruder=$!; PIDS+=($intruder)
"$JOUST" worker --connect "$ep" --judge sim --name plain > "$WORK/plain.log" 2>&1 &
plain=$!; PIDS+=($plain)
sleep 1.5
"$JOUST" worker --connect "$ep" --judge sim --slots 16 --name claimed-name \
    --curve-secret "$K/gpu-node-1.key" --server-key "$(tail -1 "$K/coord.pub")" > "$WORK/good.log" 2>&1 &
good=$!; PIDS+=($good)
wait_for "$coord" 60 || { cat "$WORK/coord.log"; fail "coordinator failed"; }
wait_for "$good" 20 || { cat "$WORK/good.log"; fail "allowed worker failed"; }
kill -TERM "$intruder" "$plain"
wait_for "$intruder" 10 || true
wait_for "$plain" 10 || true

grep -q "CURVE on: server public key" "$WORK/coord.log" || fail "coordinator did not turn CURVE on"
grep -q "worker gpu-node-1 ready" "$WORK/coord.log" || { cat "$WORK/coord.log"; fail "allowed worker not registered under its key's name"; }
grep -Eq "worker (intruder|plain|claimed-name) ready" "$WORK/coord.log" && fail "a worker registered under a name not from its key"
grep -q "CURVE: denied a client" "$WORK/coord.log" || fail "the unknown key's denial is not logged"
for w in intruder plain; do
    grep -q "0 judged, 0 acknowledged" "$WORK/$w.log" || { cat "$WORK/$w.log"; fail "$w got work through"; }
    grep -q "coordinator says" "$WORK/$w.log" && fail "$w heard from the coordinator"
done
# 20 prompts x C(5,2) pairs x 2 orders, each committed exactly once
"$CHECK" "$WORK/db" default 0.9 400 || fail "store check"
"$CHECK_WORKERS" "$WORK/db" default gpu-node-1 || fail "outcomes do not name the authenticated worker"

# A secret key that others may read is refused.
cp "$K/gpu-node-1.key" "$WORK/loose.key"; chmod 644 "$WORK/loose.key"
"$JOUST" worker --connect "$ep" --judge sim --curve-secret "$WORK/loose.key" --server-key "$K/coord.pub" \
    > "$WORK/loose.log" 2>&1 && fail "worker accepted a group/world-readable secret key"
grep -q "chmod 600" "$WORK/loose.log" || { cat "$WORK/loose.log"; fail "no reason for refusing the key"; }

# Secrets never reach logs or the store.
for key in "$K"/*.key; do
    secret=$(grep -v '^#' "$key" | head -1)
    [ ${#secret} -eq 40 ] || fail "cannot read $key"
    if grep -rqF -- "$secret" "$WORK"/*.log "$WORK/db" "$WORK/out"; then
        fail "the secret key of $(basename "$key") leaked into a log or the store"
    fi
done
echo "1 passed, 0 failed"
