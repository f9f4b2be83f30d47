#!/usr/bin/env bash
# Outputs on a full disk: scores.jsonl / scores.csv / models.jsonl and the
# DPO export are written to a temporary file and renamed, so when the disk
# fills up the command fails (non-zero, naming the file and the reason) and
# the previous files stay byte for byte. The disk is a small tmpfs mounted
# in a user + mount namespace; where those are not permitted: skipped (77).
. "$(dirname "$0")/lib.sh"
unshare -rm true 2>/dev/null || { echo "user/mount namespaces not permitted: skipped"; exit 77; }
sim_manifest "$WORK/m.jsonl" 40 8
"$JOUST" run "$WORK/m.jsonl" --judge sim --db "$WORK/db" --out "$WORK/out" --no-progress \
    > "$WORK/run.out" 2>&1 || { cat "$WORK/run.out"; fail "run"; }
mkdir "$WORK/small"
export WORK JOUST
set +e
unshare -rm bash -c '
    set -u
    mount -t tmpfs -o size=256k tmpfs "$WORK/small" || exit 77
    "$JOUST" scores --db "$WORK/db" --out "$WORK/small" > /dev/null 2>&1 || exit 10
    "$JOUST" export dpo --db "$WORK/db" --out "$WORK/small/dpo.jsonl" > /dev/null 2>&1 || exit 11
    for f in scores.jsonl scores.csv models.jsonl dpo.jsonl; do cp "$WORK/small/$f" "$WORK/keep.$f"; done
    dd if=/dev/zero of="$WORK/small/filler" bs=4k 2>/dev/null   # fills the disk
    "$JOUST" scores --db "$WORK/db" --out "$WORK/small" > "$WORK/full.out" 2> "$WORK/full.err"
    echo $? > "$WORK/full.rc"
    "$JOUST" export dpo --db "$WORK/db" --out "$WORK/small/dpo.jsonl" > "$WORK/dpo.out" 2> "$WORK/dpo.err"
    echo $? > "$WORK/dpo.rc"
    for f in scores.jsonl scores.csv models.jsonl dpo.jsonl; do
        cmp -s "$WORK/small/$f" "$WORK/keep.$f" || echo "$f changed" >> "$WORK/changed"
    done
    ls -a "$WORK/small" > "$WORK/listing"
'
rc=$?
set -e
[ "$rc" = 77 ] && { echo "mounting a tmpfs is not permitted: skipped"; exit 77; }
[ "$rc" = 0 ] || fail "setting up the small disk failed ($rc)"
[ "$(cat "$WORK/full.rc")" != 0 ] || fail "joust scores on a full disk exited 0"
grep -q "writing $WORK/small/scores.jsonl failed: No space left on device" "$WORK/full.err" ||
    { cat "$WORK/full.err"; fail "the error does not name the file and the reason"; }
[ "$(cat "$WORK/dpo.rc")" != 0 ] || fail "joust export dpo on a full disk exited 0"
grep -q "writing $WORK/small/dpo.jsonl failed: No space left on device" "$WORK/dpo.err" ||
    { cat "$WORK/dpo.err"; fail "the dpo error does not name the file and the reason"; }
[ ! -e "$WORK/changed" ] || fail "$(cat "$WORK/changed")"
! grep -q "\.tmp-" "$WORK/listing" || fail "a temporary file was left behind: $(cat "$WORK/listing")"
echo "1 passed, 0 failed"
