#!/usr/bin/env bash
# joust report: anchored model scores, win rates, categories, judge health,
# night-to-night change with the regression gate (exit 3), a trend over a
# series, a run in progress marked partial, and clear errors for bad input.
. "$(dirname "$0")/lib.sh"
# Two nights over the same 40 prompts: "base" is the anchor, "ckpt" drops
# from +0.8 to -1.2 between the nights, "steady" stays at -0.5.
night() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, random, sys
out, ckpt, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with open(out, "w") as f:
    for p in range(40):
        for m, mu in (("base", 0.0), ("ckpt", ckpt), ("steady", -0.5)):
            for k in range(2):
                f.write(json.dumps({"image": f"n{seed}/p{p}_{m}_{k}.png", "prompt": f"prompt {p}",
                                    "prompt_id": f"P{p}", "model": m, "cat": ["a", "b", "c"][p % 3],
                                    "latent": mu + rng.gauss(0, 0.5)}) + "\n")
PY
}
night "$WORK/n1.jsonl" 0.8 1
night "$WORK/n2.jsonl" -1.2 2
for n in 1 2; do
    "$JOUST" run "$WORK/n$n.jsonl" --judge sim --sim-noise 0.5 --db "$WORK/db$n" --out "$WORK/out$n" \
        --run "nightly-0$n" --no-progress > "$WORK/run$n.log" 2>&1 || { cat "$WORK/run$n.log"; fail "run $n"; }
done
# Yesterday's run also in today's store (a series of two in one store).
"$JOUST" run "$WORK/n2.jsonl" --judge sim --sim-noise 0.5 --seed 9 --db "$WORK/db2" --out "$WORK/out2b" \
    --run "nightly-02b" --no-progress > /dev/null 2>&1 || fail "run 2b"

# 1. The report of a finished run, with the gate against the other store.
set +e
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/rep" --baseline-model base --by cat \
    --compare "$WORK/db1:nightly-01" --fail-on-regression=0.2 --rounds 100 --series nightly- \
    > "$WORK/rep.log" 2>&1
st=$?
set -e
[ $st = 3 ] || { cat "$WORK/rep.log"; fail "a regressed ckpt exits $st, not 3"; }
grep -q "^REGRESSION: ckpt" "$WORK/rep.log" || fail "the regression is not named"
for f in report.html report.json report.md; do [ -s "$WORK/rep/$f" ] || fail "no $f"; done
python3 - "$WORK/rep/report.json" <<'PY' || fail "report.json"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["partial"] is False and r["baseline"] == "base", r
m = {x["model"]: x for x in r["models"]}
assert m["base"]["score"] == 0 and m["base"]["lo"] == 0, m["base"]
assert m["ckpt"]["hi"] < 0 and m["steady"]["hi"] < 0, m          # both worse than base today
w = {(x["model"], x["against"]): x for x in r["win_rates"]["rows"]}
assert w[("base", "ckpt")]["rate"] > 0.5 > w[("ckpt", "base")]["rate"], w
assert abs(w[("base", "ckpt")]["rate"] + w[("ckpt", "base")]["rate"] - 1) < 1e-9
assert w[("base", "ckpt")]["lo"] < w[("base", "ckpt")]["rate"] < w[("base", "ckpt")]["hi"]
cats = {v["value"]: v for v in r["categories"]["values"]}
assert sorted(cats) == ["a", "b", "c"], cats
c = {x["model"]: x for x in r["compare"]["models"]}
assert r["compare"]["shared_prompts"] == 40, r["compare"]
assert c["ckpt"]["delta"] < -1 and c["ckpt"]["hi"] < 0 and c["ckpt"]["significant"], c["ckpt"]
assert c["ckpt"]["regressed"] and not c["steady"]["regressed"] and not c["base"]["watched"], c
assert c["base"]["delta"] == 0, c["base"]
assert r["regression_gate"]["regressed"] == 1
h = r["judge_health"]
assert h["ok"] == h["soft"] > 0 and h["failed"] == 0, h
assert 0.4 < h["p_first_mean"] < 0.6 and h["pairs_both_orders"] > 0, h
assert [x["run"] for x in r["trend"]["runs"]] == ["nightly-02", "nightly-02b"], r["trend"]
assert len(r["gallery"]) == 3 and all(len(g["decisive"]) == 2 for g in r["gallery"]), r["gallery"]
PY
html="$WORK/rep/report.html"
grep -q "Content-Security-Policy\" content=\"default-src 'none'; img-src data:" "$html" || fail "no CSP"
[ "$(grep -o '<svg' "$html" | wc -l)" -ge 5 ] || fail "fewer than 5 plots"
grep -q 'id="partial"' "$html" && fail "a finished run is marked partial"
grep -Eq '^\| ckpt \| .* \*\*regression\*\* \|' "$WORK/rep/report.md" || { cat "$WORK/rep/report.md"; fail "report.md"; }
# images that do not exist get no thumbnail but a reason
grep -q 'class="noimg"' "$html" || fail "missing images have no placeholder"

# 2. The same comparison without the gate exits 0; a watched steady model passes it.
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/rep2" --baseline-model base \
    --compare "$WORK/db1:nightly-01" --rounds 50 > /dev/null 2>&1 || fail "report without the gate"
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/rep3" --baseline-model base \
    --compare "$WORK/db1:nightly-01" --fail-on-regression=0.5 --watch steady --rounds 50 \
    > /dev/null 2>&1 || fail "the gate fails on an unchanged watched model"
# same store, the same images judged again: no significant change for ckpt
"$JOUST" report --db "$WORK/db2" --run nightly-02b --out "$WORK/rep4" --baseline-model base \
    --compare nightly-02 --fail-on-regression=0.3 --rounds 100 > "$WORK/rep4.log" 2>&1 \
    || { cat "$WORK/rep4.log"; fail "a rerun of the same images regressed"; }
# the same comparison through a second opening of the store (its image records
# read again, not taken from today's night) gives the same numbers
"$JOUST" report --db "$WORK/db2" --run nightly-02b --out "$WORK/rep4b" --baseline-model base \
    --compare "$WORK/./db2:nightly-02" --rounds 100 > "$WORK/rep4b.log" 2>&1 \
    || { cat "$WORK/rep4b.log"; fail "compare through STORE:RUN of the same store"; }
python3 - "$WORK/rep4/report.json" "$WORK/rep4b/report.json" <<'PY' || fail "same-store compare differs"
import json, sys
a, b = (json.load(open(f))["compare"] for f in sys.argv[1:])
strip = lambda c: [{k: v for k, v in m.items() if k not in ("watched", "regressed")} for m in c["models"]]
assert a["shared_prompts"] == b["shared_prompts"] == 40 and strip(a) == strip(b), (a, b)
PY

# 2b. The gallery of chosen model pairs and prompts (by prompt_id), in rank order.
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/gal" --rounds 0 --gallery 3 \
    --gallery-pair ckpt,base --gallery-pair steady,base --gallery-prompt P7 --gallery-prompt P3 \
    --gallery-prompt P7 > "$WORK/gal.log" 2>&1 || { cat "$WORK/gal.log"; fail "gallery selection"; }
python3 - "$WORK/gal/report.json" <<'PY' || fail "gallery selection in report.json"
import json, sys
r = json.load(open(sys.argv[1]))
pairs = sorted(tuple(sorted((g["model_a"], g["model_b"]))) for g in r["gallery"])
assert pairs == [("base", "ckpt"), ("base", "steady")], pairs
assert all(len(g["decisive"]) == 3 and len(g["closest"]) == 3 for g in r["gallery"]), r["gallery"]
gp = r["gallery_prompts"]
assert [g["prompt_id"] for g in gp] == ["P7", "P3"], gp   # in the order given, each once
for g in gp:
    assert g["prompt"] == "prompt " + g["prompt_id"][1:], g
    s = [i["score"] for i in g["images"]]
    assert len(s) == 6 and s == sorted(s, reverse=True), g     # all its images, best first
    assert sorted(i["model"] for i in g["images"]) == ["base"] * 2 + ["ckpt"] * 2 + ["steady"] * 2
PY
# by default every pair and the first --gallery-prompts prompts
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert [g["prompt_id"] for g in r["gallery_prompts"]] == ["P0", "P1", "P2"], r["gallery_prompts"]' \
    "$WORK/rep/report.json" || fail "default prompt gallery"
set +e
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/badg" --gallery-pair base,nope > "$WORK/bad.log" 2>&1
st=$?
set -e
[ $st = 1 ] && grep -q "gallery-pair 'base,nope': run 'nightly-02' has no model named 'nope' (its models: " "$WORK/bad.log" \
    || { cat "$WORK/bad.log"; fail "unknown gallery model"; }
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/badg" --gallery-pair nope,base > "$WORK/bad.log" 2>&1 \
    && fail "unknown first gallery model"
grep -q "no model named 'nope'" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "unknown first gallery model message"; }
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/badg" --gallery-pair base,base > "$WORK/bad.log" 2>&1 \
    && fail "a pair of one model"
grep -q "names model 'base' twice" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "pair of one model message"; }
set +e
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/badg" --gallery-pair base > "$WORK/bad.log" 2>&1
st=$?
set -e
[ $st = 2 ] && grep -q "gallery-pair 'base' is not two models A,B" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "gallery pair usage"; }
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/badg" --gallery-prompt P40 > "$WORK/bad.log" 2>&1 \
    && fail "unknown gallery prompt"
grep -q "gallery-prompt 'P40': run 'nightly-02' has no prompt with that prompt_id" "$WORK/bad.log" \
    || { cat "$WORK/bad.log"; fail "unknown gallery prompt message"; }
[ ! -e "$WORK/badg/report.html" ] || fail "a failed gallery selection wrote files"

# 3. Bad input: clear errors, exit 1 or 2, no files.
set +e
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/bad" --baseline-model nope > "$WORK/bad.log" 2>&1
st=$?
set -e
[ $st = 1 ] && grep -q "no model named 'nope'" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "unknown baseline"; }
[ ! -e "$WORK/bad/report.html" ] || fail "a failed report wrote files"
"$JOUST" report --db "$WORK/db2" --run nosuch --out "$WORK/bad" > "$WORK/bad.log" 2>&1 && fail "unknown run"
grep -q "no run named 'nosuch'" "$WORK/bad.log" || fail "unknown run message"
"$JOUST" report --db "$WORK/db2" > /dev/null 2>&1 && fail "no --out accepted"
"$JOUST" report --db "$WORK/db2" --run nightly-02 --out "$WORK/bad" --compare "$WORK/nostore:nightly-01" \
    > "$WORK/bad.log" 2>&1 && fail "--compare with a missing store"
grep -q "no joust store at $WORK/nostore" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "missing compare store message"; }
"$JOUST" report --db "$WORK/db2" --out "$WORK/bad" --fail-on-regression > /dev/null 2>&1 && fail "gate without --compare"

# 4. A run in progress: a coordinator with a slow worker, reported beside it.
ep="tcp://127.0.0.1:$(free_port)"
"$JOUST" coordinator "$WORK/n1.jsonl" --judge sim --db "$WORK/db3" --bind "$ep" --out "$WORK/out3" \
    --no-progress > "$WORK/coord.log" 2>&1 &
PIDS+=($!)
"$JOUST" worker --connect "$ep" --judge sim --slots 1 --sim-latency-ms 20 --name slow > "$WORK/w.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 300; i++)); do
    ok=$("$JOUST" status --db "$WORK/db3" 2>/dev/null | awk '$1 == "default" {print $7}' || true)
    [ -n "$ok" ] && [ "$ok" -ge 40 ] && break
    sleep 0.1
done
"$JOUST" report --db "$WORK/db3" --out "$WORK/rep5" --rounds 20 > "$WORK/rep5.log" 2>&1 \
    || { cat "$WORK/rep5.log"; fail "report of a run in progress"; }
grep -q "(partial)" "$WORK/rep5.log" || fail "the run in progress is not marked partial"
grep -q 'id="partial"' "$WORK/rep5/report.html" || fail "no partial banner"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["partial"] and r["judge_health"]["ok"] >= 40, r["judge_health"]' \
    "$WORK/rep5/report.json" || fail "partial report.json"
echo "1 passed, 0 failed"
