#!/usr/bin/env bash
# joust eval: (1) over the stand-in OpenAI server, whose answers agree with
# the labels on a known fraction (about 75 %: the server prefers the
# larger image; every fourth label says the smaller one), gives that fraction
# within its bootstrap interval, with every call counted; a second command
# re-uses the stored outcomes (no new request); a malformed label line is
# reported by number and the rest is kept; two configurations side by side
# with their paired difference; a calibration file. (2) The quality judge
# on demo images with a known degradation order (ImageReward format) is
# right on most pairs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/openai_lib.sh"

jq_py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# ---- (1) a known fraction over the stand-in server -----------------------
python3 "$FIXTURES/openai_images.py" "$WORK/set" 8 5 3 200704 > /dev/null
python3 - "$WORK/set" <<'PY'
import itertools, json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/manifest.jsonl")]
groups = {}
for r in rows:
    groups.setdefault(r["prompt"], []).append(r)
n = 0
with open(d + "/labels.jsonl", "w") as f:
    for p, imgs in groups.items():
        for a, b in itertools.combinations(imgs, 2):
            if a["latent"] == b["latent"]:
                continue
            better = "a" if a["latent"] > b["latent"] else "b"
            if n % 4 == 3:
                better = "b" if better == "a" else "a"
            f.write(json.dumps({"prompt": p, "image_a": a["image"], "image_b": b["image"],
                                "preferred": better, "category": "even" if n % 2 else "odd"}) + "\n")
            n += 1
    f.write('{"prompt": "broken", "image_a": "img/x.png"}\n')
with open(d + "/expected", "w") as f:
    f.write("%.12f\n" % ((n - len(range(3, n, 4))) / n))
PY
EXPECT=$(cat "$WORK/set/expected")
PAIRS=$(($(wc -l < "$WORK/set/labels.jsonl") - 1))
[ "$PAIRS" -ge 60 ] || fail "only $PAIRS labelled pairs"
standin_start a
"$JOUST" eval "$WORK/set/labels.jsonl" --judge openai --endpoint "$SRV_URL_a" --max-pixels 200704 \
    --workers 1 --no-progress --out "$WORK/e1" --calibration-out "$WORK/e1/cal.json" \
    > "$WORK/e1.out" 2> "$WORK/e1.err" || { cat "$WORK/e1.err"; fail "eval failed"; }
grep -q "line $((PAIRS + 1)): \"image_b\" is missing" "$WORK/e1.err" \
    || { cat "$WORK/e1.err"; fail "the malformed label line is not reported by number"; }
E="$WORK/e1/eval.json"
[ "$(jq_py "$E" "d['pairs']")" = "$PAIRS" ] || fail "pairs kept: $(jq_py "$E" "d['pairs']")"
[ "$(jq_py "$E" "len(d['label_errors'])")" = 1 ] || fail "label errors not in eval.json"
ACC=$(jq_py "$E" "d['judges'][0]['accuracy']['value']")
jq_py "$E" "1 if (d['judges'][0]['accuracy']['lo'] <= $EXPECT <= d['judges'][0]['accuracy']['hi'] and abs(d['judges'][0]['accuracy']['value'] - $EXPECT) < 1e-9) else 0" \
    | grep -qx 1 || fail "accuracy $ACC: not $EXPECT within its interval ($(jq_py "$E" "d['judges'][0]['accuracy']"))"
[ "$(jq_py "$E" "d['judges'][0]['counts']['calls']")" = $((2 * PAIRS)) ] \
    || fail "calls: $(jq_py "$E" "d['judges'][0]['counts']")"
[ "$(jq_py "$E" "d['judges'][0]['counts']['failed']")" = 0 ] || fail "failed calls"
[ "$(jq_py "$E" "d['judges'][0]['counts']['tokens'] > 0")" = True ] || fail "no tokens counted"
[ "$(jq_py "$E" "d['judges'][0]['order']['pairs_both_orders']")" = "$PAIRS" ] || fail "orders"
[ "$(jq_py "$E" "sorted(d['judges'][0]['categories'])")" = "['even', 'odd']" ] || fail "categories"
[ "$(jq_py "$E" "d['judges'][0]['calibration']['calls']")" = $((2 * PAIRS)) ] || fail "calibration calls"
[ "$(jq_py "$WORK/e1/cal.json" "d['temperature'] > 0")" = True ] || fail "no calibration file"
grep -q "accuracy $(python3 -c "print('%.1f' % (100 * $EXPECT))")%" "$WORK/e1.out" || { cat "$WORK/e1.out"; fail "summary"; }
REQ=$(standin_get "$SRV_PORT_a" requests)
[ "$REQ" = $((2 * PAIRS)) ] || fail "server saw $REQ requests for $((2 * PAIRS)) calls"

# joust scores --calibration: the fitted temperature (> 1 for this
# over-confident stand-in) shrinks the score spread of the same run; a
# file that is not a calibration is refused with exit 2.
RUN1=$(jq_py "$E" "d['judges'][0]['run']")
"$JOUST" scores --db "$WORK/e1/eval.db" --run "$RUN1" --out "$WORK/s0" > /dev/null 2>&1 || fail "scores"
"$JOUST" scores --db "$WORK/e1/eval.db" --run "$RUN1" --out "$WORK/s1" \
    --calibration "$WORK/e1/cal.json" > /dev/null 2>&1 || fail "scores --calibration"
spread() { python3 -c "import json,sys
v=[json.loads(l).get('score') for l in open(sys.argv[1])]
v=[x for x in v if x is not None]; print(sum(abs(x) for x in v) / len(v))" "$1/scores.jsonl"; }
python3 -c "import sys; sys.exit(0 if 0 < float(sys.argv[2]) < 0.9 * float(sys.argv[1]) else 1)" \
    "$(spread "$WORK/s0")" "$(spread "$WORK/s1")" \
    || fail "calibration did not shrink the scores: $(spread "$WORK/s0") -> $(spread "$WORK/s1")"
echo '{"temperature": -1}' > "$WORK/badcal.json"
set +e
"$JOUST" scores --db "$WORK/e1/eval.db" --run "$RUN1" --out "$WORK/s2" \
    --calibration "$WORK/badcal.json" > /dev/null 2> "$WORK/badcal.err"
[ $? = 2 ] && grep -q "not a calibration file" "$WORK/badcal.err" || fail "bad calibration file accepted"
set -e

# The same command again: the run resumes, its outcomes are re-used.
"$JOUST" eval "$WORK/set/labels.jsonl" --judge openai --endpoint "$SRV_URL_a" --max-pixels 200704 \
    --workers 1 --no-progress --out "$WORK/e1" > "$WORK/e1b.out" 2> "$WORK/e1b.err" \
    || { cat "$WORK/e1b.err"; fail "second eval failed"; }
[ "$(standin_get "$SRV_PORT_a" requests)" = "$REQ" ] || fail "the second eval judged again"
[ "$(jq_py "$E" "d['judges'][0]['accuracy']['value']")" = "$ACC" ] || fail "re-used accuracy differs"

# Side by side: the same server and one with a strong first-position bias.
standin_start b --bias 3
"$JOUST" eval "$WORK/set/labels.jsonl" --max-pixels 200704 --workers 1 --no-progress \
    --out "$WORK/e2" --judge-config "openai --endpoint $SRV_URL_a" \
    --judge-config "openai --mode direct --endpoint $SRV_URL_b" --fit-bias \
    > "$WORK/e2.out" 2> "$WORK/e2.err" || { cat "$WORK/e2.err"; fail "side-by-side eval failed"; }
E="$WORK/e2/eval.json"
[ "$(jq_py "$E" "len(d['judges'])")" = 2 ] || fail "two judges expected"
[ "$(jq_py "$E" "d['judges'][1]['difference_to_first']['lo'] <= d['judges'][1]['difference_to_first']['value'] <= d['judges'][1]['difference_to_first']['hi']")" = True ] \
    || fail "difference interval: $(jq_py "$E" "d['judges'][1]['difference_to_first']")"
[ "$(jq_py "$E" "d['judges'][1]['order']['mean_delta'] > 0.2")" = True ] \
    || fail "first-position bias not seen: $(jq_py "$E" "d['judges'][1]['order']")"
[ "$(jq_py "$E" "d['judges'][1]['temperature']['first_bias'] > 0.5")" = True ] \
    || fail "fitted bias: $(jq_py "$E" "d['judges'][1]['temperature']")"
grep -q "vs \[1\]" "$WORK/e2.out" || fail "no paired difference in the summary"

# ---- (2) the quality judge on demo images with a known order -------------
"$JOUST" demo --out "$WORK/demo" --prompts 3 --per-prompt 5 --workers 1 --no-progress \
    > /dev/null 2>&1 || fail "demo failed"
python3 - "$WORK/demo" <<'PY'
import json, sys
d = sys.argv[1]
groups = {}
for line in open(d + "/manifest.jsonl"):
    r = json.loads(line)
    groups.setdefault(r["prompt"], []).append(r)
out = [{"id": i, "prompt": p, "generations": [r["image"] for r in imgs],
        "ranking": [max(x["truth"] for x in imgs) - r["truth"] + 1 for r in imgs]}
       for i, (p, imgs) in enumerate(groups.items())]
json.dump(out, open(d + "/labels.json", "w"))
PY
"$JOUST" eval "$WORK/demo/labels.json" --judge quality --workers 1 --no-progress \
    --out "$WORK/e3" > "$WORK/e3.out" 2> "$WORK/e3.err" || { cat "$WORK/e3.err"; fail "quality eval failed"; }
E="$WORK/e3/eval.json"
[ "$(jq_py "$E" "d['format']")" = imagereward ] || fail "format"
[ "$(jq_py "$E" "d['pairs_judged']")" = 30 ] || fail "pairs judged: $(jq_py "$E" "d['pairs_judged']")"
[ "$(jq_py "$E" "d['judges'][0]['accuracy']['value'] >= 0.8")" = True ] \
    || fail "quality judge accuracy $(jq_py "$E" "d['judges'][0]['accuracy']")"

# ---- (3) the report embeds an evaluation (--eval), refuses a file that is not one
RUN3=$(jq_py "$E" "d['judges'][0]['run']")
"$JOUST" report --db "$WORK/e3/eval.db" --run "$RUN3" --out "$WORK/rep" --eval "$WORK/e2/eval.json" \
    > /dev/null 2> "$WORK/rep.err" || { cat "$WORK/rep.err"; fail "report --eval failed"; }
jq_py "$WORK/rep/report.json" "d['eval']['judges'][1]['accuracy'] == json.load(open('$WORK/e2/eval.json'))['judges'][1]['accuracy']" \
    | grep -qx True || fail "report.json does not embed eval.json"
grep -q 'id="eval"' "$WORK/rep/report.html" || fail "no evaluation section in report.html"
grep -q "openai --mode direct" "$WORK/rep/report.html" || fail "judge configuration missing in report.html"
[ "$(grep -c "agreement with the humans" "$WORK/rep/report.md")" = 2 ] || fail "report.md: $(cat "$WORK/rep/report.md")"
set +e
"$JOUST" report --db "$WORK/e3/eval.db" --run "$RUN3" --out "$WORK/rep-bad" \
    --eval "$WORK/demo/labels.json" > /dev/null 2> "$WORK/rep-bad.err"
[ $? = 1 ] && grep -q "labels.json: no \"judges\" list" "$WORK/rep-bad.err" || { cat "$WORK/rep-bad.err"; fail "a labels file accepted as --eval"; }
"$JOUST" report --db "$WORK/e3/eval.db" --run "$RUN3" --out "$WORK/rep-bad" --eval /dev/zero \
    > /dev/null 2> "$WORK/rep-bad.err"
[ $? = 1 ] && grep -q "/dev/zero" "$WORK/rep-bad.err" || { cat "$WORK/rep-bad.err"; fail "--eval /dev/zero"; }
set -e
[ ! -e "$WORK/rep-bad/report.html" ] || fail "a report written despite a bad --eval"
echo "test_eval: ok ($PAIRS pairs, stand-in accuracy $ACC)"
