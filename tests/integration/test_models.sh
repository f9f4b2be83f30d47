#!/usr/bin/env bash
# Model-level scores: images of a better generator model (latent +0.8) and a
# worse one (-0.8) on the same prompts; models.jsonl ranks them with
# non-overlapping bootstrap intervals, and a third model with no cross-model
# comparisons sits in a component of its own.
. "$(dirname "$0")/lib.sh"
python3 - "$WORK/m.jsonl" <<'PY'
import json, random, sys
rng = random.Random(3)
with open(sys.argv[1], "w") as f:
    for p in range(40):
        for k in range(6):
            good = k % 2 == 0
            f.write(json.dumps({"image": f"i{p}_{k}.png", "prompt": f"prompt {p}",
                                "model": "good" if good else "bad",
                                "latent": (0.8 if good else -0.8) + rng.gauss(0, 1)}) + "\n")
    for k in range(3):   # a prompt with a single model: compared with nobody else
        f.write(json.dumps({"image": f"lone{k}.png", "prompt": "lonely", "model": "lone",
                            "latent": rng.gauss(0, 1)}) + "\n")
PY
"$JOUST" run "$WORK/m.jsonl" --judge sim --sim-noise 1 --db "$WORK/db" --out "$WORK/out" --no-progress \
    > "$WORK/run.out" 2>&1 || { cat "$WORK/run.out"; fail "run"; }
grep -q "^models (Bradley-Terry" "$WORK/run.out" || fail "no model table in the summary"
python3 - "$WORK/out/models.jsonl" <<'PY' || fail "models.jsonl"
import json, sys
m = {r["model"]: r for r in map(json.loads, open(sys.argv[1]))}
assert m["good"]["score"] > m["bad"]["score"], m
assert m["good"]["lo"] > m["bad"]["hi"], m          # intervals do not overlap
assert m["good"]["component"] == m["bad"]["component"] != m["lone"]["component"], m
assert m["lone"]["comparisons"] == 0 and m["lone"]["lo"] is None, m
PY
echo "1 passed, 0 failed"
