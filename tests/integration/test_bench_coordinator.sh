#!/usr/bin/env bash
# `joust bench coordinator` at a small size: joust, the bare limit of the
# same transport and store and the Python + SQLite peer each record every
# match (each checks its own store: a lost or doubled match fails the
# command), and the table carries every figure and ratio, plain and CURVE.
. "$(dirname "$0")/lib.sh"
"$JOUST" bench coordinator --images 4000 --out "$WORK/bc" > "$WORK/out.txt" 2> "$WORK/err.txt" ||
    { tail -20 "$WORK/err.txt"; fail "bench coordinator failed"; }
cat "$WORK/out.txt"
for t in 'tcp' 'tcp + CURVE'; do
    line=$(grep "^| $t | 4 | 30000 |" "$WORK/out.txt") || fail "no row for $t with 30000 matches"
    # every figure is a positive number
    echo "$line" | awk -F'|' '{for (i = 5; i <= 9; i++) if (!($i + 0 > 0)) exit 1}' ||
        fail "a figure is missing in: $line"
done
[ -f "$WORK/bc/peer.sqlite" ] || fail "the peer did not run"
# Stores left by that bench are refused, not "judged" again in no time.
if "$JOUST" bench coordinator --images 4000 --out "$WORK/bc" > /dev/null 2> "$WORK/err2.txt"; then
    fail "a second bench into the same directory was accepted"
fi
grep -q "store-plain exists" "$WORK/err2.txt" || fail "no message naming the old store"
# A peer that loses a match makes the command fail.
cat > "$WORK/badpeer.py" <<'PY'
print("peer matches 5 seconds 1.0 rate 5")
PY
if "$JOUST" bench coordinator --images 400 --out "$WORK/bc2" --peer "$WORK/badpeer.py" \
    > /dev/null 2>&1; then
    fail "a peer that recorded the wrong number of matches was accepted"
fi
echo "bench coordinator OK"
