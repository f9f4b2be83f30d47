#!/usr/bin/env bash
# A real full disk: the store on a 1 MiB tmpfs. `joust run` stops with a
# clear message and exit status 1 (never a RocksDB assertion), `joust
# status` still reads the store, a rerun on the full disk says the disk is
# full, and once the filesystem grows the rerun completes the run exactly
# once. Needs `mount -t tmpfs` (root); exits 77 (skipped) otherwise.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
mkdir -p "$WORK/mnt"
mount -t tmpfs -o size=1m tmpfs "$WORK/mnt" 2>/dev/null || { echo "cannot mount a tmpfs: skipped"; exit 77; }
trap 'umount "$WORK/mnt" 2>/dev/null; cleanup' EXIT
sim_manifest "$WORK/m.jsonl" 150 10 3
run() { "$JOUST" run "$WORK/m.jsonl" --judge sim --db "$WORK/mnt/db" --out "$WORK/out" --no-progress; }
set +e; run > "$WORK/r1.log" 2>&1; rc=$?; set -e
[ "$rc" -eq 1 ] || { tail -20 "$WORK/r1.log"; fail "first run: exit status $rc, expected 1"; }
grep -q "no space left on the store's disk" "$WORK/r1.log" || { tail "$WORK/r1.log"; fail "no clear message"; }
grep -q "Assertion" "$WORK/r1.log" && fail "RocksDB assertion"
st=$("$JOUST" status --db "$WORK/mnt/db") || fail "status on the full disk"
echo "$st" | grep -q judging || { echo "$st"; fail "status does not show the stopped run"; }
set +e; run > "$WORK/r2.log" 2>&1; rc=$?; set -e
[ "$rc" -eq 1 ] || { tail "$WORK/r2.log"; fail "rerun on the full disk: exit status $rc"; }
grep -q "is full" "$WORK/r2.log" || { tail "$WORK/r2.log"; fail "rerun on the full disk: no clear message"; }
mount -o remount,size=32m "$WORK/mnt" || fail "remount"
run > "$WORK/r3.log" 2>&1 || { tail -20 "$WORK/r3.log"; fail "rerun after the disk grew"; }
"$CHECK" "$WORK/mnt/db" default 0.5 13500 || fail "store check"
echo "1 passed, 0 failed"
