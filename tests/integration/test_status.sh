#!/usr/bin/env bash
# joust status: per run the planned matches, the ok and failed outcomes
# from the counts in the run record, and each failure class with its count
# and one example reason; a store without runs lists none.
. "$(dirname "$0")/lib.sh"
python3 - "$WORK/m.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for p in range(3):
        for k in range(4):
            rec = {"image": f"img/p{p}_{k}.png", "prompt": f"prompt {p}", "id": f"p{p}_{k}"}
            if p != 1 or k != 0:  # the sim judge fails matches of an image without a latent
                rec["latent"] = k
            f.write(json.dumps(rec) + "\n")
PY
"$JOUST" ingest "$WORK/m.jsonl" --db "$WORK/db" > /dev/null 2>&1 || fail "ingest"
st=$("$JOUST" status --db "$WORK/db") || fail "status without runs"
echo "$st" | grep -q "12 images in 3 prompts" || { echo "$st"; fail "status header"; }
[ "$(echo "$st" | wc -l)" -eq 2 ] || { echo "$st"; fail "a store without runs lists a run"; }
"$JOUST" run "$WORK/m.jsonl" --judge sim --db "$WORK/db" --out "$WORK/out" --no-progress \
    > "$WORK/run.log" 2>&1 || true
st=$("$JOUST" status --db "$WORK/db") || fail "status"
echo "$st"
# 3 prompts x 4 images, both orders: 36 matches; image p1_0 is in 6 of them.
echo "$st" | awk '$1 == "default" && $6 == 36 && $7 == 30 && $8 == 6 && $9 == "complete" {ok = 1}
    END {exit !ok}' || fail "the run's row"
echo "$st" | grep -Eq '^  image_error: 6 \(e\.g\. .*latent' || fail "the failure class with an example"
echo "1 passed, 0 failed"
