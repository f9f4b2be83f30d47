#!/usr/bin/env bash
# `joust bench scale` small: every phase is timed, the peak RSS after each
# phase, the coordinator's own state against RocksDB's memory, and the
# store's bytes per image and per match after compaction are all printed.
. "$(dirname "$0")/lib.sh"
"$JOUST" bench scale --images 3000 --order fixed --out "$WORK/bs" > "$WORK/out.txt" 2> "$WORK/err.txt" ||
    { tail -20 "$WORK/err.txt"; fail "bench scale failed"; }
cat "$WORK/out.txt"
# phases: 3000 images in prompts of 16, one order: 187 x 120 + 1 x 28 matches
line=$(grep "^| 3000 | 16 | fixed | 22468 |" "$WORK/out.txt") || fail "no phase row for 3000 images"
# every phase has a time (a small ingest may take under 0.01 s), judging more
echo "$line" | awk -F'|' '{for (i = 6; i <= 11; i++) if ($i !~ /^ [0-9]+\.[0-9][0-9] $/ && i != 8) exit 1;
                           if (!($7 + 0 > 0) || !($8 + 0 > 0) || !($11 + 0 > 0)) exit 1}' ||
    fail "a phase time is missing: $line"
echo "$line" | grep -Eq '\| [0-9]+ / [0-9]+ / [0-9]+ / [0-9]+ \|$' || fail "no peak RSS per phase: $line"
mem=$(grep -E "^\| 3000 \| [0-9.]+ MiB \|" "$WORK/out.txt") || fail "no memory row for 3000 images"
echo "$mem" | awk -F'|' '{if (!($5 + 0 > 0) || !($6 + 0 > 0) || !($7 + 0 > 0) || !($8 + 0 > 0)) exit 1}' ||
    fail "RocksDB memory or store sizes missing: $mem"
grep -q "^recording rate at 3000 images / at 300: " "$WORK/out.txt" || fail "no rate ratio"
echo "bench scale OK"
