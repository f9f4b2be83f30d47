#!/usr/bin/env bash
# Multi-host run in network namespaces created by this test, CURVE on:
#
#   netns jc-PID  (coordinator, service address 10.231.0.1/32 on lo)
#     ├─ veth jc1 10.231.1.1/30 ── jw1 10.231.1.2/30  netns jw1-PID (worker w1)
#     └─ veth jc2 10.231.2.1/30 ── jw2 10.231.2.2/30  netns jw2-PID (worker w2)
#
# Mid-run, w1's link is cut (its coordinator-side veth goes down, a pulled
# cable: no RST, the TCP connection just goes silent). The coordinator
# re-dispatches w1's leases to w2, the run completes, and every planned
# match has exactly one committed outcome; outcomes name w1 and w2 by their
# keys. Needs root and iproute2: when `ip netns add` is not permitted the
# test exits 77 (ctest: skipped). Only private 10.231.x.y addresses are used,
# inside namespaces this test creates and always deletes (trap on exit).
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
CHECK_WORKERS=${CHECK_WORKERS:?path to check_workers}
skip() { echo "SKIPPED: $*"; exit 77; }
command -v ip > /dev/null || skip "iproute2 (ip) is not installed"
[ "$(id -u)" -eq 0 ] || skip "needs root for ip netns"

NS_C="jc-$$" NS_1="jw1-$$" NS_2="jw2-$$"
netns_cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    # Deleting a namespace deletes its veth ends (and their peers) with it.
    for ns in "$NS_C" "$NS_1" "$NS_2"; do ip netns del "$ns" 2>/dev/null || true; done
}
if [ -n "${KEEP:-}" ]; then trap netns_cleanup EXIT; else trap 'netns_cleanup; cleanup' EXIT; fi

ip netns add "$NS_C" 2>/dev/null || skip "ip netns add is not permitted here"
ip netns add "$NS_1" && ip netns add "$NS_2" || fail "ip netns add"
inc() { ip netns exec "$NS_C" "$@"; }
inc ip link set lo up || skip "ip netns exec is not permitted here"
inc ip addr add 10.231.0.1/32 dev lo
for i in 1 2; do
    ns="jw$i-$$"
    ip link add "jc$i" netns "$NS_C" type veth peer name "jw$i" netns "$ns" \
        || skip "cannot create veth pairs here"
    inc ip addr add "10.231.$i.1/30" dev "jc$i"
    inc ip link set "jc$i" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip addr add "10.231.$i.2/30" dev "jw$i"
    ip netns exec "$ns" ip link set "jw$i" up
    ip netns exec "$ns" ip route add 10.231.0.1/32 via "10.231.$i.1"
done

K="$WORK/keys"
mkdir -p "$K"
"$JOUST" keygen coord --out "$K" > /dev/null 2>&1 || fail "keygen"
{ "$JOUST" keygen w1 --out "$K"; "$JOUST" keygen w2 --out "$K"; } > "$WORK/allow.txt" 2> /dev/null || fail "keygen"

# 50 prompts x C(6,2) pairs x 2 orders = 1500 matches at ~200/s per worker.
sim_manifest "$WORK/m.jsonl" 50 6
ep=tcp://10.231.0.1:5555
ip netns exec "$NS_C" "$JOUST" coordinator "$WORK/m.jsonl" --db "$WORK/db" --bind "$ep" --judge sim \
    --out "$WORK/out" --no-progress --lease-ms 3000 --curve-secret "$K/coord.key" --allow "$WORK/allow.txt" \
    > "$WORK/coord.log" 2>&1 &
coord=$!; PIDS+=($coord)
for i in 1 2; do
    ip netns exec "jw$i-$$" "$JOUST" worker --connect "$ep" --judge sim --slots 4 --sim-latency-ms 20 \
        --name "w$i" --curve-secret "$K/w$i.key" --server-key "$K/coord.pub" > "$WORK/w$i.log" 2>&1 &
    PIDS+=($!)
done
w1=${PIDS[1]} w2=${PIDS[2]}
sleep 1.5
kill -0 "$coord" 2>/dev/null || { cat "$WORK/coord.log"; fail "the run ended before the cut"; }
grep -q "worker w1 ready" "$WORK/coord.log" || {
    cat "$WORK/coord.log" "$WORK/w1.log"; ip -n "$NS_1" addr; ip -n "$NS_1" route; fail "w1 never registered"; }
inc ip link set jc1 down   # the cut
echo "cut w1's link at $(date +%T.%N)"
wait_for "$coord" 90 || { cat "$WORK/coord.log"; fail "coordinator failed"; }
wait_for "$w2" 20 || { cat "$WORK/w2.log"; fail "w2 failed"; }
kill -TERM "$w1" 2>/dev/null || true
wait_for "$w1" 10 || true

grep -Eq "lease on w1 expired|worker w1: silent too long" "$WORK/coord.log" \
    || { cat "$WORK/coord.log"; fail "the coordinator never noticed the cut"; }
grep -q "coordinator silent" "$WORK/w1.log" || { cat "$WORK/w1.log"; fail "w1 never noticed the cut"; }
"$CHECK" "$WORK/db" default 0.8 1500 || fail "store check: not exactly once"
"$CHECK_WORKERS" "$WORK/db" default | tee "$WORK/workers.txt"
grep -Eq "^worker 'w1': [1-9]" "$WORK/workers.txt" || fail "w1 committed nothing before the cut"
grep -Eq "^worker 'w2': [1-9]" "$WORK/workers.txt" || fail "w2 committed nothing"
[ "$(grep -c "^worker '" "$WORK/workers.txt")" -eq 2 ] || fail "outcomes name workers other than w1 and w2"
echo "1 passed, 0 failed"
