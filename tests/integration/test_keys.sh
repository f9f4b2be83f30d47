#!/usr/bin/env bash
# Key options are what they say, and keygen makes its directory:
# - `joust keygen --out DIR` creates a missing DIR with mode 0700;
# - --server-key PATH is read as a file whenever PATH exists, also when the
#   path is 40 Z85 characters (keys-for-the-nightly-run/coordinator.pub):
#   the run completes over CURVE;
# - the Z85 key itself still works when no file has that name;
# - a --server-key that is neither an existing file nor a Z85 key, a missing
#   --curve-secret and a missing --allow are errors naming the option, at
#   once (exit 2), never a worker that reconnects forever.
. "$(dirname "$0")/lib.sh"
cd "$WORK"
K=keys-for-the-nightly-run
"$JOUST" keygen coordinator --out "$K" > /dev/null 2> keygen.err || { cat keygen.err; fail "keygen into a missing dir"; }
[ "$(stat -c %a "$K")" = 700 ] || fail "keygen --out did not create $K with mode 0700"
"$JOUST" keygen w1 --out "$K" > allow.txt 2> /dev/null || fail "keygen w1"
pub="$K/coordinator.pub"
[ ${#pub} -eq 40 ] || fail "the test path must be 40 characters"
"$JOUST" keygen nested --out "deep/er/keys" > /dev/null 2>&1 || fail "keygen with missing parents"
[ "$(stat -c %a deep/er/keys)" = 700 ] || fail "nested key dir is not 0700"
# the docs' spelling, with a trailing slash: the same directory, the same mode
"$JOUST" keygen slash --out "slashed/keys/" > /dev/null 2>&1 || fail "keygen --out DIR/"
[ "$(stat -c %a slashed/keys)" = 700 ] || fail "keygen --out DIR/ made DIR $(stat -c %a slashed/keys), not 0700"

sim_manifest m.jsonl 4 4
run_with_key() { # $1: tag, $2: --server-key value
    local port ep coord worker
    port=$(free_port); ep="tcp://127.0.0.1:$port"
    "$JOUST" coordinator m.jsonl --db "db-$1" --bind "$ep" --judge sim --out "out-$1" --no-progress \
        --curve-secret "$K/coordinator.key" --allow allow.txt > "coord-$1.log" 2>&1 &
    coord=$!; PIDS+=($coord)
    "$JOUST" worker --connect "$ep" --judge sim --curve-secret "$K/w1.key" --server-key "$2" \
        > "worker-$1.log" 2>&1 &
    worker=$!; PIDS+=($worker)
    wait_for "$coord" 60 || { cat "coord-$1.log" "worker-$1.log"; fail "$1: coordinator failed"; }
    wait_for "$worker" 20 || { cat "worker-$1.log"; fail "$1: worker failed"; }
    grep -q "worker w1 ready" "coord-$1.log" || { cat "coord-$1.log"; fail "$1: worker not admitted"; }
}
run_with_key path "$pub"
run_with_key literal "$(tail -1 "$pub")"

# Neither a file nor a key: an error naming the option, at once.
expect_error() { # $1: option named in the error, rest: the command
    local opt=$1; shift
    local rc=0
    timeout 10 "$@" > bad.log 2>&1 || rc=$?
    [ $rc -eq 2 ] || { cat bad.log; fail "$opt: exit $rc, expected 2"; }
    grep -q -- "$opt" bad.log || { cat bad.log; fail "the error does not name $opt"; }
}
missing="keys-for-the-nightly-run/coordinator_pub" # 40 characters, "_" is not Z85
expect_error --server-key "$JOUST" worker --connect tcp://127.0.0.1:1 --judge sim \
    --curve-secret "$K/w1.key" --server-key "$missing"
grep -q "neither an existing file nor a Z85" bad.log || { cat bad.log; fail "no reason"; }
expect_error --server-key "$JOUST" worker --connect tcp://127.0.0.1:1 --judge sim \
    --curve-secret "$K/w1.key" --server-key "no-such-file.pub"
expect_error --curve-secret "$JOUST" worker --connect tcp://127.0.0.1:1 --judge sim \
    --curve-secret "$K/none.key" --server-key "$pub"
expect_error --curve-secret "$JOUST" coordinator m.jsonl --db db-x --judge sim \
    --curve-secret "$K/none.key" --allow allow.txt
expect_error --allow "$JOUST" coordinator m.jsonl --db db-x --judge sim \
    --curve-secret "$K/coordinator.key" --allow no-allow.txt
[ -e db-x ] && fail "a bad key option created the store"
echo "1 passed, 0 failed"
