#!/usr/bin/env bash
# What an ingest killed part-way (kill -9 after its first bulk load) left in
# the store is taken back by the next command that opens the store to
# write, not only by the next ingest: a coordinator started without a
# manifest (its run covers the whole store) judges and scores exactly the
# images of the finished ingest. A read-only `joust status` in between says
# the leftovers are there. The killed ingest, run again, then adds them.
. "$(dirname "$0")/lib.sh"
sim_manifest "$WORK/a.jsonl" 4 5
sim_manifest "$WORK/b.jsonl" 40 5
sed -i 's/"prompt": "/"prompt": "b /; s/"id": "/"id": "b/' "$WORK/b.jsonl"
grep -q '"id": "b' "$WORK/b.jsonl" || fail "the second manifest needs ids of its own"
"$JOUST" ingest "$WORK/a.jsonl" --db "$WORK/db" > /dev/null 2>&1 || fail "ingest a"
# killed after its second write: the unfinished-ingest mark, then the first bulk load
JOUST_TEST_STORE_FAULT=kill:1 "$JOUST" ingest "$WORK/b.jsonl" --db "$WORK/db" \
    > "$WORK/killed.log" 2>&1 && fail "the ingest with the kill fault finished"
st=$("$JOUST" status --db "$WORK/db" 2>&1) || fail "status"
echo "$st" | grep -q "unfinished ingest" || { echo "$st"; fail "status does not say an ingest stopped part-way"; }
echo "$st" | grep -q "20 images in 4 prompts" || { echo "$st"; fail "status header"; }
port=$(free_port)
ep="tcp://127.0.0.1:$port"
"$JOUST" coordinator --db "$WORK/db" --bind "$ep" --judge sim --out "$WORK/out" \
    --no-progress > "$WORK/coord.log" 2>&1 &
coord=$!; PIDS+=($coord)
"$JOUST" worker --connect "$ep" --judge sim --slots 16 > "$WORK/w.log" 2>&1 &
PIDS+=($!)
wait_for "$coord" 120 || { cat "$WORK/coord.log"; fail "coordinator failed"; }
grep -q "taking back what it wrote" "$WORK/coord.log" || { cat "$WORK/coord.log"; fail "the coordinator did not take the leftovers back"; }
[ "$(wc -l < "$WORK/out/scores.jsonl")" -eq 20 ] || fail "the run scored $(wc -l < "$WORK/out/scores.jsonl") images, not the 20 of the finished ingest"
grep -q '"b' "$WORK/out/scores.jsonl" && fail "the run scored an image of the killed ingest"
st=$("$JOUST" status --db "$WORK/db" 2>&1) || fail "status after"
echo "$st" | grep -q "unfinished ingest" && fail "status still sees leftovers"
"$JOUST" ingest "$WORK/b.jsonl" --db "$WORK/db" > "$WORK/again.log" 2>&1 || fail "ingest b again"
grep -q "200 images" "$WORK/again.log" || { cat "$WORK/again.log"; fail "the re-run did not add b's 200 images"; }
"$JOUST" status --db "$WORK/db" | grep -q "220 images in 44 prompts" || fail "store after the re-run"
echo "1 passed, 0 failed"
