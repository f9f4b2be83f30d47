#!/usr/bin/env bash
# Outcome reuse night to night, as the report tells it (issue 11.4): two
# nightly runs of the openai judge (the stand-in server counts the calls)
# over real image files in one store. The baseline model's images are the
# same files both nights, the checkpoint's are new; the second night copies
# exactly the baseline-vs-baseline outcomes instead of judging them, and
# report.json, report.md and report.html say how many. --no-reuse judges
# everything again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openai_lib.sh"
P=3
python3 "$FIXTURES/openai_images.py" "$WORK/a" $P 4 1 200704
python3 "$FIXTURES/openai_images.py" "$WORK/b" $P 4 2 200704
# Per prompt: base = a's images 0 and 1 both nights; ckpt = a's 2 and 3 on
# night 1, b's 2 and 3 (other contents) on night 2.
python3 - "$WORK" $P <<'PY'
import json, sys
work, P = sys.argv[1], int(sys.argv[2])
for night, ckpt in ((1, "a"), (2, "b")):
    with open(f"{work}/n{night}.jsonl", "w") as f:
        for p in range(P):
            for k in range(4):
                d = "a" if k < 2 else ckpt
                f.write(json.dumps({"image": f"{work}/{d}/img/p{p}_{k}.png", "prompt": f"scene {p}",
                                    "prompt_id": f"P{p}", "id": f"n{night}_p{p}_{k}",
                                    "model": "base" if k < 2 else "ckpt"}) + "\n")
PY
standin_start a --max-pixels 200704 --model alexgambashidze/qwen2.5vl_image_preference_reasoner
night() { # night N RUN [options]
    local n=$1 run=$2
    shift 2
    "$JOUST" run "$WORK/n$n.jsonl" --db "$WORK/db" --out "$WORK/out-$run" --run "$run" --judge openai \
        --endpoint "$SRV_URL_a" --max-pixels 200704 --workers 1 --allow-root "$WORK" --no-progress "$@" \
        > "$WORK/$run.log" 2>&1 || { cat "$WORK/$run.log"; fail "run $run"; }
}
# 4 images per prompt, round-robin in both orders: 12 matches per prompt,
# 2 of them base vs base.
all=$((12 * P)) base=$((2 * P))
night 1 nightly-01
r1=$(standin_get "$SRV_PORT_a" requests)
[ "$r1" = "$all" ] || fail "night 1 made $r1 judge calls, not $all"
night 2 nightly-02
r2=$(( $(standin_get "$SRV_PORT_a" requests) - r1 ))
[ "$r2" = $((all - base)) ] || fail "night 2 made $r2 judge calls, not $((all - base))"
grep -q "^  $base more answered by earlier outcomes .*reused, not judged" "$WORK/nightly-02.log" || { cat "$WORK/nightly-02.log"; fail "run summary"; }
night 2 nightly-03 --no-reuse
r3=$(( $(standin_get "$SRV_PORT_a" requests) - r1 - r2 ))
[ "$r3" = "$all" ] || fail "--no-reuse made $r3 judge calls, not $all"

report() { # report RUN
    "$JOUST" report --db "$WORK/db" --run "$1" --out "$WORK/rep-$1" --baseline-model base --rounds 20 \
        > "$WORK/rep-$1.log" 2>&1 || { cat "$WORK/rep-$1.log"; fail "report $1"; }
}
for run in nightly-01 nightly-02 nightly-03; do report $run; done
python3 - "$WORK" "$base" "$all" <<'PY' || fail "report.json"
import json, sys
work, base, allm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def health(run):
    return json.load(open(f"{work}/rep-{run}/report.json"))["judge_health"]
for run, reused in (("nightly-01", 0), ("nightly-02", base), ("nightly-03", 0)):
    h = health(run)
    assert h["outcomes_reused"] == reused, (run, h)
    assert h["ok"] == allm and h["failed"] == 0, (run, h)
PY
grep -q "^$base outcomes reused from earlier runs" "$WORK/rep-nightly-02/report.md" \
    || { cat "$WORK/rep-nightly-02/report.md"; fail "report.md does not say how many were reused"; }
grep -q "<tr><th>reused outcomes</th><td>$base of the OK outcomes copied" "$WORK/rep-nightly-02/report.html" \
    || fail "report.html does not say how many were reused"
grep -q "<tr><th>reused outcomes</th><td>0 of the OK outcomes" "$WORK/rep-nightly-03/report.html" \
    || fail "report.html of the --no-reuse run"
echo "1 passed, 0 failed"
