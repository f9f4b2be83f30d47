#!/usr/bin/env bash
# The caption-per-image template (docs/judges.md): a corpus where every
# image has its own caption, run under --group all with the openai judge
# against the stand-in server, sends each match with both captions, each
# next to its own image (and no prompt line); every match is judged and
# the fitted order follows the server's preferences.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openai_lib.sh"
CHECK=${CHECK:?path to check_run}
python3 "$FIXTURES/openai_images.py" "$WORK/set" 1 6 7 200704
python3 - "$WORK/set/manifest.jsonl" "$WORK/set/cap.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for i, line in enumerate(open(sys.argv[1])):
        r = json.loads(line)
        r["prompt"] = "caption-%d of its own image" % i
        out.write(json.dumps(r) + "\n")
PY
standin_start a --max-pixels 200704 --expect "captioned: caption-" --texts-log "$WORK/texts.jsonl"
"$JOUST" run "$WORK/set/cap.jsonl" --db "$WORK/db" --out "$WORK/out" --judge openai --group all \
    --endpoint "$SRV_URL_a" --max-pixels 200704 --workers 2 --no-progress \
    > "$WORK/run.out" 2> "$WORK/run.err" || { cat "$WORK/run.err"; fail "run failed"; }
grep -q "judged 30 matches .*: 30 ok, 0 failed" "$WORK/run.out" || { cat "$WORK/run.out"; fail "30 matches ok"; }
[ "$(standin_get "$SRV_PORT_a" invalid)" = 0 ] || fail "invalid requests: $(standin_get "$SRV_PORT_a" last_invalid)"
python3 - "$WORK/texts.jsonl" <<'PY' || fail "captions in the requests"
import json, re, sys
texts = [json.loads(l) for l in open(sys.argv[1])]
assert len(texts) == 30, len(texts)
pairs = set()
for t in texts:
    assert "Text prompt" not in t, t
    a = re.findall(r"Image 1, captioned: caption-(\d) of its own image", t)
    b = re.findall(r"Image 2, captioned: caption-(\d) of its own image", t)
    assert len(a) == 1 and len(b) == 1 and a != b, t
    pairs.add((a[0], b[0]))
assert len(pairs) == 30, "every ordered pair once, each with its own two captions"
print("30 requests, each with both images' captions")
PY
"$CHECK" "$WORK/db" default 0 30 > "$WORK/check.out" || { cat "$WORK/check.out"; fail "store check"; }
python3 - "$WORK/out/scores.jsonl" "$WORK/set/cap.jsonl" <<'PY' || fail "order"
import json, sys
lat = {json.loads(l)["id"]: json.loads(l)["latent"] for l in open(sys.argv[2])}
rows = [json.loads(l) for l in open(sys.argv[1])]
best = max(rows, key=lambda r: r["score"])
assert lat[best["id"]] == max(lat.values()), "the server's favourite ranks first"
assert sorted(r["rank"] for r in rows) == list(range(1, 7))
PY
echo "1 passed, 0 failed"
