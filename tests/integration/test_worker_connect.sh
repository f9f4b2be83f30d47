#!/usr/bin/env bash
# A worker that cannot reach its coordinator says why (issue 10.7, 9.10),
# from ZeroMQ's monitor events, instead of reconnecting silently: nothing
# listening on the port; a plain worker against a CURVE coordinator; a
# key the coordinator does not allow; a wrong --server-key.
. "$(dirname "$0")/lib.sh"
K="$WORK/keys"
mkdir -p "$K"
"$JOUST" keygen coord --out "$K" > /dev/null 2>&1 || fail "keygen coord"
"$JOUST" keygen other --out "$K" > /dev/null 2>&1 || fail "keygen other"
"$JOUST" keygen node --out "$K" > "$WORK/allow.txt" 2> /dev/null || fail "keygen node"
"$JOUST" keygen stranger --out "$K" > /dev/null 2>&1 || fail "keygen stranger"

# try NAME EXPECTED-TEXT worker-options...: runs a worker for 4 s and looks
# for the explanation in its log.
try() {
    local name=$1 want=$2
    shift 2
    "$JOUST" worker --judge sim --name "$name" "$@" > "$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    sleep 4
    kill -TERM $pid
    wait_for $pid 10 || true
    grep -q -- "$want" "$WORK/$name.log" || { cat "$WORK/$name.log"; fail "$name: no '$want' in the log"; }
    echo "$name: $(grep -m1 -- "cannot talk to the coordinator" "$WORK/$name.log" | sed 's/.*: cannot/cannot/')"
}

try noport "nothing accepts connections there" --connect "tcp://127.0.0.1:$(free_port)"

sim_manifest "$WORK/m.jsonl" 2 3
port=$(free_port)
ep="tcp://127.0.0.1:$port"
"$JOUST" coordinator "$WORK/m.jsonl" --db "$WORK/db" --bind "$ep" --judge sim --out "$WORK/out" \
    --no-progress --curve-secret "$K/coord.key" --allow "$WORK/allow.txt" > "$WORK/coord.log" 2>&1 &
PIDS+=($!)
sleep 1
try plain "the coordinator uses CURVE and this worker does not" --connect "$ep"
try stranger "refused this worker's CURVE key" --connect "$ep" --curve-secret "$K/stranger.key" \
    --server-key "$K/coord.pub"
try wrongkey "wrong --server-key" --connect "$ep" --curve-secret "$K/node.key" --server-key "$K/other.pub"
for n in plain stranger wrongkey; do
    grep -q "0 judged" "$WORK/$n.log" || fail "$n got work through"
done
echo "1 passed, 0 failed"
