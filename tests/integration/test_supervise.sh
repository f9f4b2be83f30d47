#!/usr/bin/env bash
# The local driver: options checked before anything is created, runs that
# can be removed, supervised local workers, and process hygiene.
# - a typo in --judge or --strategy, an unknown --order and --budget -1 are
#   errors (exit 2) naming the option before anything is ingested or
#   created: no store, and in an existing store no run (joust status);
# - a run that clashes with an existing one says how to remove it, and
#   `joust runs rm` removes it so that the name can be used again;
# - local workers killed with kill -9 again and again: the run completes,
#   every match committed exactly once;
# - local workers that exit at start (here: an openai template that does not
#   exist, which only the worker reads) stop the run within seconds with the
#   worker's error and a non-zero status, never a hang;
# - the local workers die with a `joust run` that is killed with kill -9;
# - SIGTERM and SIGINT stop `joust run`, `joust coordinator` and
#   `joust worker` cleanly with 143 and 130, and the run resumes.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
cd "$WORK"
sim_manifest m.jsonl 6 5
expect_usage_error() { # $1: what the error must name, rest: the command
    local what=$1; shift
    local rc=0
    timeout 20 "$@" > err.out 2> err.log || rc=$?
    [ $rc -eq 2 ] || { cat err.log; fail "$*: exit $rc, expected 2"; }
    grep -q -- "$what" err.log || { cat err.log; fail "the error does not name $what"; }
}
expect_usage_error "--judge: 'qualty' is not a judge" "$JOUST" run m.jsonl --db fresh --judge qualty --no-progress
[ -e fresh ] && fail "a typo in --judge created the store"
expect_usage_error "--strategy: 'swis'" "$JOUST" run m.jsonl --db fresh --strategy swis --no-progress
expect_usage_error "--order" "$JOUST" run m.jsonl --db fresh --order bith --no-progress
expect_usage_error "--budget" "$JOUST" run m.jsonl --db fresh --budget -1 --no-progress
expect_usage_error "needs --endpoint" "$JOUST" run m.jsonl --db fresh --judge openai --no-progress
expect_usage_error "--judge" "$JOUST" coordinator m.jsonl --db fresh --judge simm --no-progress
expect_usage_error "--judge" "$JOUST" worker --connect tcp://127.0.0.1:1 --judge simm
[ -e fresh ] && fail "a bad option created the store"

# An existing store: a bad option creates no run.
"$JOUST" run m.jsonl --db db --judge sim --workers 2 --no-progress > run1.out 2> run1.err \
    || { cat run1.err; fail "first run"; }
expect_usage_error "--strategy" "$JOUST" run m.jsonl --db db --run typo --judge sim --strategy swis --no-progress
"$JOUST" status --db db > status.out || fail "status"
grep -q "^typo " status.out && { cat status.out; fail "a bad --strategy created run 'typo'"; }

# A clash names the way out; runs rm takes it.
rc=0; "$JOUST" run m.jsonl --db db --judge sim --strategy swiss --no-progress > clash.out 2> clash.err || rc=$?
[ $rc -ne 0 ] || fail "a clash with the existing run did not fail"
grep -q "joust runs rm default --db db" clash.err || { cat clash.err; fail "the clash does not say how to remove the run"; }
"$JOUST" runs rm default --db db > rm.out 2> rm.err || { cat rm.err; fail "runs rm"; }
grep -q "removed run 'default'" rm.out || fail "runs rm said nothing"
"$JOUST" runs ls --db db | grep -q "^default " && fail "the run is still listed"
"$JOUST" runs rm default --db db > /dev/null 2>&1 && fail "removing a missing run succeeded"
"$JOUST" run m.jsonl --db db --judge sim --strategy swiss --no-progress > swiss.out 2> swiss.err \
    || { cat swiss.err; fail "the name could not be used again after runs rm"; }
"$CHECK" db default 0.5 > check.out || { cat check.out; fail "the new run's store check"; }

# Workers killed again and again: the run completes, exactly once.
sim_manifest big.jsonl 30 6                    # 30 x C(6,2) x 2 = 900 matches
"$JOUST" run big.jsonl --db db-kill --judge sim --workers 2 --slots 4 --sim-latency-ms 20 \
    --lease-ms 1000 --no-progress > kill.out 2> kill.err &
run=$!; PIDS+=($run)
kills=0
for i in $(seq 1 60); do
    sleep 0.3
    kill -0 "$run" 2>/dev/null || break
    for w in $(pgrep -P "$run" || true); do kill -9 "$w" 2>/dev/null && kills=$((kills + 1)); break; done
done
wait_for "$run" 120 || { tail -20 kill.err; fail "the run with killed workers failed"; }
[ $kills -ge 5 ] || fail "only $kills kills before the run ended: the test proves nothing"
grep -q "starting it again" kill.err || fail "no restart reported"
"$CHECK" db-kill default 0.5 900 > check.out || { cat check.out; fail "store check after kills"; }
echo "completed after $kills worker kills"

# Workers that exit at start stop the run with their error, within seconds.
start=$(date +%s)
rc=0
timeout 60 "$JOUST" run m.jsonl --db db-bad --judge openai --endpoint http://127.0.0.1:1/v1 \
    --template "$WORK/no-such-template.txt" --no-progress > bad.out 2> bad.err || rc=$?
took=$(( $(date +%s) - start ))
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat bad.err; fail "exit $rc: a run whose workers cannot start must fail, not hang"; }
[ $took -le 20 ] || fail "took ${took}s to give up"
grep -q "run 'default' stopped: local worker" bad.err || { cat bad.err; fail "no supervisor verdict"; }
grep -q "no-such-template.txt" bad.err || { cat bad.err; fail "the worker's error is not shown"; }

# The workers die with a joust run killed by kill -9.
"$JOUST" run big.jsonl --db db-orphan --judge sim --workers 2 --slots 1 --sim-latency-ms 200 \
    --no-progress > orphan.out 2> orphan.err &
run=$!; PIDS+=($run)
kids=""
for i in $(seq 1 50); do kids=$(pgrep -P "$run" || true); [ "$(echo $kids | wc -w)" -ge 2 ] && break; sleep 0.1; done
[ "$(echo $kids | wc -w)" -ge 2 ] || fail "the workers did not start"
kill -9 "$run"; wait "$run" 2>/dev/null || true
for i in $(seq 1 50); do
    left=0; for k in $kids; do kill -0 "$k" 2>/dev/null && left=1; done
    [ $left -eq 0 ] && break; sleep 0.1
done
[ $left -eq 0 ] || { for k in $kids; do kill -9 "$k" 2>/dev/null; done; fail "workers outlived their joust run"; }

# SIGTERM -> 143, SIGINT -> 130, after a clean stop; the run then resumes.
stop_with() { # $1: signal, $2: expected status, $3: log, rest: the command
    local sig=$1 want=$2 log=$3; shift 3
    "$@" > "$log" 2>&1 &
    local pid=$! rc=0
    PIDS+=($pid)
    sleep 1.5
    kill -"$sig" "$pid"
    wait_for "$pid" 30 || rc=$?
    [ $rc -eq "$want" ] || { tail "$log"; fail "$* after SIG$sig: exit $rc, expected $want"; }
}
slow=(--judge sim --workers 1 --slots 1 --sim-latency-ms 100 --no-progress)
stop_with TERM 143 sig1.log "$JOUST" run big.jsonl --db db-sig "${slow[@]}"
grep -q "run the same command again to resume" sig1.log || { cat sig1.log; fail "no clean stop after SIGTERM"; }
stop_with INT 130 sig2.log "$JOUST" run big.jsonl --db db-sig "${slow[@]}"
port=$(free_port)
stop_with TERM 143 sig3.log "$JOUST" coordinator big.jsonl --db db-sig --bind "tcp://127.0.0.1:$port" --judge sim --no-progress
stop_with INT 130 sig4.log "$JOUST" worker --connect "tcp://127.0.0.1:$port" --judge sim
stop_with TERM 143 sig5.log "$JOUST" worker --connect "tcp://127.0.0.1:$port" --judge sim
"$JOUST" run big.jsonl --db db-sig --judge sim --no-progress > resume.out 2>&1 || { tail resume.out; fail "resume after the signals"; }
"$CHECK" db-sig default 0.5 900 > check.out || { cat check.out; fail "store check after the signals"; }
echo "1 passed, 0 failed"
