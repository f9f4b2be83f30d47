#!/usr/bin/env bash
# Groups that are not the prompt (issue 12.5; docs/ranking.md "Groups"):
# - a caption corpus (every image its own caption) under --group all gets
#   its scores from real comparisons, and they follow the latent utilities;
# - --group-by FIELD compares images with the same value only;
# - a missing field, and both options at once, are refused clearly;
# - a group over the dense planner's limit streams its k-regular plan and is
#   fitted by the sparse solver; killed -9 mid-run and resumed, it completes
#   exactly once with scores byte-identical to an uninterrupted run;
# - an adaptive plan over a group of 1500 (over the batch planners' limit)
#   too, its rounds replayed from the store.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
captions() { # FILE N SEED: N images, each with its own caption, 3 sources
    python3 - "$@" <<'PY'
import json, random, sys
out, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with open(out, "w") as f:
    for i in range(n):
        f.write(json.dumps({"image": f"img/c{i}.png", "prompt": f"a caption of its own, number {i}",
                            "id": f"c{i}", "source": f"s{i % 3}",
                            "latent": round(rng.gauss(0, 2), 4)}) + "\n")
PY
}
# spearman SCORES MANIFEST MIN: every image scored from comparisons, rank
# correlation with the latent utilities >= MIN; prints it.
spearman() {
    python3 - "$@" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
lat = {json.loads(l)["id"]: json.loads(l)["latent"] for l in open(sys.argv[2])}
assert len(rows) == len(lat), (len(rows), len(lat))
assert all(r["status"] == "ranked" and r["comparisons"] > 0 for r in rows), "an image without comparisons"
assert all(0 < r["percentile"] < 100 for r in rows), "percentile"
def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i]); r = [0] * len(v)
    for k, i in enumerate(order): r[i] = k
    return r
x, y = ranks([r["score"] for r in rows]), ranks([lat[r["id"]] for r in rows])
n = len(x)
rho = 1 - 6 * sum((a - b) ** 2 for a, b in zip(x, y)) / (n * (n * n - 1))
print("%d images, Spearman vs latent %.3f" % (n, rho))
assert rho >= float(sys.argv[3]), rho
PY
}
run() { "$JOUST" run "$1" --judge sim --sim-noise 1 --workers 2 --no-progress "${@:2}"; }

# 1. 60 captions, one group, k-regular k = 6, both orders: 360 matches.
captions "$WORK/c60.jsonl" 60 5
run "$WORK/c60.jsonl" --db "$WORK/db1" --out "$WORK/o1" --group all --strategy k-regular --k 6 \
    > "$WORK/1.out" 2> "$WORK/1.err" || { cat "$WORK/1.err"; fail "--group all run"; }
grep -q "judged 360 matches .*: 360 ok, 0 failed" "$WORK/1.out" || { cat "$WORK/1.out"; fail "360 matches"; }
"$CHECK" "$WORK/db1" default 0 360 > "$WORK/check.out" || { cat "$WORK/check.out"; fail "exactly once"; }
spearman "$WORK/o1/scores.jsonl" "$WORK/c60.jsonl" 0.8 || fail "caption corpus scores"
python3 - "$WORK/o1/scores.jsonl" <<'PY' || fail "ranks over the whole group"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(r["rank"] for r in rows) == list(range(1, 61)), "ranks 1..60 over the one group"
PY
# The same corpus grouped by prompt (the default) has nothing to compare.
run "$WORK/c60.jsonl" --db "$WORK/db0" --out "$WORK/o0" > "$WORK/0.out" 2>&1 || fail "prompt-grouped run"
grep -q "judged 0 matches" "$WORK/0.out" || { cat "$WORK/0.out"; fail "by prompt: 0 matches"; }

# 2. --group-by source: 3 groups of 20, k = 4: 3 x 40 pairs x 2 orders.
run "$WORK/c60.jsonl" --db "$WORK/db2" --out "$WORK/o2" --group-by source --strategy k-regular \
    --k 4 > "$WORK/2.out" 2> "$WORK/2.err" || { cat "$WORK/2.err"; fail "--group-by run"; }
grep -q "judged 240 matches .*: 240 ok" "$WORK/2.out" || { cat "$WORK/2.out"; fail "240 matches"; }
"$JOUST" show $(seq 1 240) --db "$WORK/db2" > "$WORK/show.txt" || fail "joust show"
python3 - "$WORK/o2/scores.jsonl" "$WORK/c60.jsonl" "$WORK/show.txt" <<'PY' || fail "grouped by source"
import json, re, sys
src = {json.loads(l)["id"]: json.loads(l)["source"] for l in open(sys.argv[2])}
rows = [json.loads(l) for l in open(sys.argv[1])]
for s in ("s0", "s1", "s2"):
    assert sorted(r["rank"] for r in rows if src[r["id"]] == s) == list(range(1, 21)), s
# every match compares two images of the same source
text = open(sys.argv[3]).read()
pairs = re.findall(r"first:\s+image \d+ \(id (c\d+)\).*?second:\s+image \d+ \(id (c\d+)\)", text, re.S)
assert len(pairs) == 240, len(pairs)
assert all(src[a] == src[b] for a, b in pairs), "a match across groups"
assert text.count("caption: a caption of its own") == 480, "joust show: each image's caption"
PY
# The grouping is frozen with the run.
run "$WORK/c60.jsonl" --db "$WORK/db2" --out "$WORK/o2" --group all --strategy k-regular --k 4 \
    > "$WORK/3.out" 2>&1 \
    && fail "a run resumed with another grouping"
grep -q "grouping" "$WORK/3.out" || { cat "$WORK/3.out"; fail "no message about the grouping"; }

# 3. Bad input: a field some image lacks; both options.
python3 -c 'import json
for i in range(4): print(json.dumps({"image": "img/x%d.png" % i, "prompt": "c%d" % i, "id": "x%d" % i,
                                     "latent": i, **({"source": "a"} if i != 2 else {})}))' > "$WORK/x.jsonl"
run "$WORK/x.jsonl" --db "$WORK/db3" --out "$WORK/o3" --group-by source > "$WORK/4.out" 2>&1 \
    && fail "an image without the field"
grep -q 'image x2 (manifest line 3) has no field "source"' "$WORK/4.out" || { cat "$WORK/4.out"; fail "message"; }
run "$WORK/x.jsonl" --db "$WORK/db3" --out "$WORK/o3" --group all --group-by source > "$WORK/5.out" 2>&1 \
    && fail "--group all with --group-by"
grep -q "exclude each other" "$WORK/5.out" || { cat "$WORK/5.out"; fail "message"; }

# 4. 5000 captions in one group (over the dense planner's 4096): the default
#    round-robin is refused; k-regular k = 2, both orders, streamed through a
#    window of 700: 10000 matches; killed -9 mid-run and resumed.
captions "$WORK/c5k.jsonl" 5000 9
run "$WORK/c5k.jsonl" --db "$WORK/db4" --out "$WORK/o4" --group all > "$WORK/6.out" 2>&1 \
    && fail "round-robin over 5000 images"
grep -q "use --strategy k-regular" "$WORK/6.out" || { cat "$WORK/6.out"; fail "message"; }
opts=(--group all --strategy k-regular --k 2 --window 700)
"$JOUST" run "$WORK/c5k.jsonl" --judge sim --sim-noise 1 --db "$WORK/clean" --out "$WORK/clean-out" \
    --no-progress "${opts[@]}" > "$WORK/clean.out" 2>&1 || { cat "$WORK/clean.out"; fail "clean run"; }
grep -q "judged 10000 matches" "$WORK/clean.out" || { cat "$WORK/clean.out"; fail "10000 matches"; }
spearman "$WORK/clean-out/scores.jsonl" "$WORK/c5k.jsonl" 0.8 || fail "5000 captions: scores"
python3 - "$WORK/clean-out/scores.jsonl" <<'PY' || fail "sparse fit: components"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert all("component" in r for r in rows), "no component from the sparse fit"
assert all(r["comparisons"] >= 4 for r in rows), "k = 2, both orders: at least 4 comparisons each"
PY
port=$(free_port)
ep="tcp://127.0.0.1:$port"
coord() {
    "$JOUST" coordinator "$WORK/c5k.jsonl" --judge sim --db "$WORK/db5" --bind "$ep" --out "$WORK/o5" \
        --no-progress --lease-ms 3000 "${opts[@]}" >> "$WORK/coord.log" 2>&1 &
    PIDS+=($!)
}
coord
c1=${PIDS[-1]}
for i in 1 2; do
    "$JOUST" worker --connect "$ep" --judge sim --sim-noise 1 --slots 4 --sim-latency-ms 5 \
        --name "w$i" > "$WORK/w$i.log" 2>&1 &
    PIDS+=($!)
done
for ((i = 0; i < 200; i++)); do # until some outcomes are committed
    ok=$("$JOUST" status --db "$WORK/db5" 2>/dev/null | awk '$1 == "default" {print $7}') || true
    [ "${ok:-0}" -gt 500 ] && break
    sleep 0.1
done
kill -9 "$c1"
wait "$c1" 2>/dev/null || true
st=$("$JOUST" status --db "$WORK/db5"); echo "$st" | grep -Eq "planning|judging" || { echo "$st"; fail "the coordinator finished before it was killed"; }
coord
wait_for "${PIDS[-1]}" 120 || { cat "$WORK/coord.log"; fail "restarted coordinator failed"; }
grep -q "resuming run 'default'" "$WORK/coord.log" || fail "no resume"
"$CHECK" "$WORK/db5" default 0 10000 > "$WORK/check.out" || { cat "$WORK/check.out"; fail "store check"; }
cmp "$WORK/clean-out/scores.jsonl" "$WORK/o5/scores.jsonl" || fail "scores differ from the uninterrupted run"
# 5. Adaptive over a group of 1500 (over the batch planners' 512): rounds
#    planned from the results so far; killed -9 mid-run and resumed (the
#    plan replayed from the store), exactly once, same scores.
captions "$WORK/c1500.jsonl" 1500 3
opts=(--group all --strategy adaptive --k 4 --window 400)
"$JOUST" run "$WORK/c1500.jsonl" --judge sim --sim-noise 1 --db "$WORK/aclean" --out "$WORK/aclean-out" \
    --no-progress "${opts[@]}" > "$WORK/aclean.out" 2>&1 || { cat "$WORK/aclean.out"; fail "adaptive run"; }
grep -q "judged 6000 matches .*: 6000 ok" "$WORK/aclean.out" || { cat "$WORK/aclean.out"; fail "6000 matches"; }
spearman "$WORK/aclean-out/scores.jsonl" "$WORK/c1500.jsonl" 0.8 || fail "adaptive: scores"
rm -f "$WORK/coord.log"
coord() {
    "$JOUST" coordinator "$WORK/c1500.jsonl" --judge sim --db "$WORK/db6" --bind "$ep" --out "$WORK/o6" \
        --no-progress --lease-ms 3000 "${opts[@]}" >> "$WORK/coord.log" 2>&1 &
    PIDS+=($!)
}
coord
c1=${PIDS[-1]}
for i in 1 2; do
    "$JOUST" worker --connect "$ep" --judge sim --sim-noise 1 --slots 4 --sim-latency-ms 10 \
        --name "a$i" > "$WORK/a$i.log" 2>&1 &
    PIDS+=($!)
done
for ((i = 0; i < 200; i++)); do
    ok=$("$JOUST" status --db "$WORK/db6" 2>/dev/null | awk '$1 == "default" {print $7}') || true
    [ "${ok:-0}" -gt 1500 ] && break
    sleep 0.1
done
kill -9 "$c1"
wait "$c1" 2>/dev/null || true
st=$("$JOUST" status --db "$WORK/db6"); echo "$st" | grep -Eq "planning|judging" || { echo "$st"; fail "adaptive: the coordinator finished before it was killed"; }
coord
wait_for "${PIDS[-1]}" 120 || { cat "$WORK/coord.log"; fail "adaptive: restarted coordinator failed"; }
grep -q "resuming run 'default'" "$WORK/coord.log" || fail "adaptive: no resume"
"$CHECK" "$WORK/db6" default 0 6000 > "$WORK/check.out" || { cat "$WORK/check.out"; fail "adaptive: store check"; }
cmp "$WORK/aclean-out/scores.jsonl" "$WORK/o6/scores.jsonl" || fail "adaptive: scores differ from the uninterrupted run"
echo "1 passed, 0 failed"
