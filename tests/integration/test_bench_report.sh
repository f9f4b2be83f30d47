#!/usr/bin/env bash
# `joust bench report` small: two synthetic nights in one store, the report
# timed in four variants; a second call reuses the store (no judging).
. "$(dirname "$0")/lib.sh"
"$JOUST" bench report --images 400 --per-prompt 4 --out "$WORK/b" > "$WORK/b.log" 2>&1 \
    || { cat "$WORK/b.log"; fail "bench report"; }
for v in '`--baseline-model m0` (200 rounds)' '`--by cat`' '`--compare night1`' '`--rounds 0`'; do
    grep -qF "| $v | " "$WORK/b.log" || { cat "$WORK/b.log"; fail "no row for $v"; }
done
[ "$(grep -c '^timings (s): open' "$WORK/b.log")" = 4 ] || fail "not 4 timed reports"
[ -s "$WORK/b/report/report.html" ] || fail "no report.html"
"$JOUST" bench report --images 400 --per-prompt 4 --out "$WORK/b" > "$WORK/b2.log" 2>&1 \
    || { cat "$WORK/b2.log"; fail "bench report again"; }
[ "$(grep -c 'exists, not judged again' "$WORK/b2.log")" = 2 ] || { cat "$WORK/b2.log"; fail "the store was not reused"; }
"$JOUST" bench report --per-prompt 1 --out "$WORK/c" > /dev/null 2>&1 && fail "one model accepted"
echo "1 passed, 0 failed"
