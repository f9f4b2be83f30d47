#!/usr/bin/env bash
# The report as a person sees it: joust demo images as four "checkpoints"
# (clean and three degraded levels), judged by the quality judge on two
# nights, reported with a baseline, categories, a comparison and a trend,
# then opened in headless Chromium (check_report.py): every plot and
# thumbnail rendered, no console error, no network request, a screenshot
# that is not blank. A copy of the report with one external image must
# fail the same check (the check can fail). Exits 77 without chromium or
# Debian's python3-websocket (scripts/install-deps.sh installs both).
# JOUST_SCREENSHOT=PATH keeps the screenshot (docs/report-example.png).
. "$(dirname "$0")/../integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "chromium is not installed: skipped"; exit 77; }
/usr/bin/python3 -c 'import websocket' 2>/dev/null || { echo "python3-websocket is missing: skipped"; exit 77; }

"$JOUST" demo --out "$WORK/demo" --prompts 12 --per-prompt 4 --workers 1 > "$WORK/demo.log" 2>&1 \
    || { cat "$WORK/demo.log"; fail "demo"; }
# The demo's levels as checkpoints; night 2 swaps the two middle levels'
# names, so "ckpt-b" gets better and "ckpt-a" worse. Both nights in one
# store, the series of the trend (docs/report.md's nightly recipe).
for n in 1 2; do
    python3 - "$WORK/demo/manifest.jsonl" "$WORK/n$n.jsonl" "$n" <<'PY'
import json, re, sys
src, dst, night = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = ["clean", "ckpt-a", "ckpt-b", "ckpt-c"] if night == 1 else ["clean", "ckpt-b", "ckpt-a", "ckpt-c"]
with open(dst, "w") as f:
    for line in open(src):
        r = json.loads(line)
        p, k = map(int, re.match(r"p(\d+)_v(\d+)", r["id"]).groups())
        r["model"] = names[k]
        r["scene"] = ["indoor", "outdoor", "abstract"][p % 3]
        r["id"] = f"n{night}_{r['id']}"
        r["prompt_id"] = f"P{p}"
        f.write(json.dumps(r) + "\n")
PY
    "$JOUST" run "$WORK/n$n.jsonl" --db "$WORK/db" --out "$WORK/out$n" --run "nightly-0$n" \
        --workers 1 --no-progress > "$WORK/run$n.log" 2>&1 || { cat "$WORK/run$n.log"; fail "run $n"; }
done
"$JOUST" report --db "$WORK/db" --run nightly-02 --out "$WORK/rep" --baseline-model clean --by scene \
    --compare nightly-01 --series nightly- --gallery 1 --gallery-prompts 2 \
    > "$WORK/rep.log" 2>&1 || { cat "$WORK/rep.log"; fail "report"; }
shot=${JOUST_SCREENSHOT:-$WORK/shot.png}
# plots: scores, change, trend, heatmap, distributions; thumbnails: 6 pairs x
# 2 matches x 2 images + 2 prompts x 4 images
/usr/bin/python3 "$HERE/check_report.py" "$CHROMIUM" "$WORK/rep/report.html" "$shot" 5 32 \
    || fail "the report did not render cleanly"
sed 's|</body>|<img src="http://127.0.0.1:9/x.png" alt="external"></body>|' "$WORK/rep/report.html" \
    > "$WORK/rep/bad.html"
if /usr/bin/python3 "$HERE/check_report.py" "$CHROMIUM" "$WORK/rep/bad.html" "$WORK/bad.png" 5 32 \
    > "$WORK/bad.log" 2>&1; then
    cat "$WORK/bad.log"; fail "an external image passed the check"
fi
grep -q "network request: http://127.0.0.1:9/x.png" "$WORK/bad.log" || fail "the request was not seen"
# A gallery chosen by model pair and prompt renders too: 1 pair x 2 kinds x
# 2 matches x 2 images + prompt P5's 4 images.
"$JOUST" report --db "$WORK/db" --run nightly-02 --out "$WORK/rep2" --baseline-model clean \
    --gallery 2 --gallery-pair ckpt-c,clean --gallery-prompt P5 > "$WORK/rep2.log" 2>&1 \
    || { cat "$WORK/rep2.log"; fail "report with a chosen gallery"; }
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert [(g["model_a"], g["model_b"]) for g in r["gallery"]] in ([("clean", "ckpt-c")], [("ckpt-c", "clean")]) and [g["prompt_id"] for g in r["gallery_prompts"]] == ["P5"], (r["gallery"], r["gallery_prompts"])' \
    "$WORK/rep2/report.json" || fail "the chosen gallery in report.json"
/usr/bin/python3 "$HERE/check_report.py" "$CHROMIUM" "$WORK/rep2/report.html" "$WORK/shot2.png" 3 12 \
    || fail "the report with a chosen gallery did not render cleanly"
echo "1 passed, 0 failed"
