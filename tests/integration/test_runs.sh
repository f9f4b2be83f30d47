#!/usr/bin/env bash
# What a run covers (README "Runs and manifests"): a run is its manifests.
# - a second manifest given to a finished run extends it: exactly the pairs
#   the new images bring are planned and judged (round-robin, order both:
#   n old + m new images in a prompt give (n+m)(n+m-1) - n(n-1) new
#   matches), nothing twice; k-regular gives each new image exactly k
#   opponents; swiss re-opens its planner;
# - the same command again judges nothing;
# - --run day2 over the same store judges only day2's manifest;
# - an image without a comparison is listed as unjudged, with no rank;
# - a planned, unfinished run, extended and killed -9 twice, completes
#   exactly once.
. "$(dirname "$0")/lib.sh"
CHECK=${CHECK:?path to check_run}
man() { # FILE PREFIX PROMPTS PER [FIRST_PROMPT]
    python3 - "$@" <<'PY'
import json, random, sys
out, pre, prompts, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
first = int(sys.argv[5]) if len(sys.argv) > 5 else 0
rng = random.Random(pre)
with open(out, "w") as f:
    for p in range(first, first + prompts):
        for k in range(per):
            f.write(json.dumps({"image": f"img/{pre}{p}_{k}.png", "prompt": f"prompt number {p}",
                                "model": f"model-{k % 2}", "id": f"{pre}{p}_{k}",
                                "latent": round(rng.gauss(0, 2), 4)}) + "\n")
PY
}
man "$WORK/a.jsonl" a 2 3      # 2 prompts x 3 images
man "$WORK/b.jsonl" b 2 2      # the same 2 prompts, 2 new images each
man "$WORK/d2.jsonl" d 1 3     # day 2: prompt 0 again, 3 images of its own
run() { "$JOUST" run "$1" --judge sim --sim-noise 1 --db "$WORK/db" --out "$WORK/out" --workers 2 \
        --no-progress "${@:2}"; }
judged() { sed -n 's/^judged \([0-9]*\) matches.*/\1/p' "$1"; }
check() { "$CHECK" "$WORK/db" "$1" 0 "$2" > "$WORK/check.out" || { cat "$WORK/check.out"; fail "$3"; }; }

run "$WORK/a.jsonl" > "$WORK/1.out" 2> "$WORK/1.err" || { cat "$WORK/1.err"; fail "first run"; }
[ "$(judged "$WORK/1.out")" = 12 ] || { cat "$WORK/1.out"; fail "2 prompts x 3 images, both orders: 12"; }
# extension: per prompt (5*4) - (3*2) = 14 new ordered pairs
run "$WORK/b.jsonl" > "$WORK/2.out" 2> "$WORK/2.err" || { cat "$WORK/2.err"; fail "extension"; }
grep -q "run 'default' extended with .*b.jsonl: 4 images" "$WORK/2.out" || { cat "$WORK/2.out"; fail "the extension is not announced"; }
[ "$(judged "$WORK/2.out")" = 28 ] || { cat "$WORK/2.out"; fail "extension: not exactly the 28 new pairs"; }
check default 40 "extension: every match exactly once, no pair twice"
python3 - "$WORK/out/scores.jsonl" <<'PY' || fail "extended scores"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 10, len(rows)
assert all(r["status"] == "ranked" and r["rank"] and r["comparisons"] == 8 for r in rows), rows
PY
# the same command again, and the first manifest again: nothing to judge
for m in b a; do
    run "$WORK/$m.jsonl" > "$WORK/3$m.out" 2> "$WORK/3$m.err" || { cat "$WORK/3$m.err"; fail "rerun $m"; }
    grep -q "is already part of run 'default'" "$WORK/3$m.out" || { cat "$WORK/3$m.out"; fail "rerun $m: not said"; }
    [ "$(judged "$WORK/3$m.out")" = 0 ] || { cat "$WORK/3$m.out"; fail "rerun $m judged something"; }
done
check default 40 "rerun: the run changed"
# another run name over the same store: only its own manifest
run "$WORK/d2.jsonl" --run day2 --out "$WORK/out2" > "$WORK/4.out" 2> "$WORK/4.err" || { cat "$WORK/4.err"; fail "day2"; }
[ "$(judged "$WORK/4.out")" = 6 ] || { cat "$WORK/4.out"; fail "day2 judged more than its 3 images"; }
check day2 6 "day2"
python3 - "$WORK/out2/scores.jsonl" <<'PY' || fail "day2 scores"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(r["id"] for r in rows) == ["d0_0", "d0_1", "d0_2"], rows
PY
# day2's manifest given to run 'default' extends it: prompt 0 gets 3 more
# images (5 old), 8*7 - 5*4 = 36 new pairs; prompt 1 none
run "$WORK/d2.jsonl" > "$WORK/5.out" 2> "$WORK/5.err" || { cat "$WORK/5.err"; fail "default + d2"; }
[ "$(judged "$WORK/5.out")" = 36 ] || { cat "$WORK/5.out"; fail "default + d2: not exactly 36"; }
check default 76 "default + d2"
# a prompt with a single image: unjudged, no rank, said so
printf '{"image":"img/solo.png","prompt":"alone","id":"solo"}\n' > "$WORK/solo.jsonl"
run "$WORK/solo.jsonl" --run solo --out "$WORK/out3" > "$WORK/6.out" 2> "$WORK/6.err" || { cat "$WORK/6.err"; fail "solo"; }
python3 - "$WORK/out3/scores.jsonl" "$WORK/out3/scores.csv" <<'PY' || fail "an unjudged image is not marked"
import csv, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 1 and rows[0]["status"] == "unjudged" and rows[0]["rank"] is None, rows
assert rows[0]["comparisons"] == 0 and rows[0]["score"] is None, rows
c = list(csv.DictReader(open(sys.argv[2])))
assert c[0]["status"] == "unjudged" and c[0]["rank"] == "", c
PY
# k-regular: every new image gets exactly k opponents (2 calls each, both
# orders), old-old pairs are not planned again
run "$WORK/a.jsonl" --run kr --strategy k-regular --k 2 --out "$WORK/kr" > /dev/null 2> "$WORK/7.err" || { cat "$WORK/7.err"; fail "kr"; }
run "$WORK/b.jsonl" --run kr --strategy k-regular --k 2 --out "$WORK/kr" > "$WORK/7.out" 2> "$WORK/7.err" || { cat "$WORK/7.err"; fail "kr extension"; }
"$CHECK" "$WORK/db" kr 0 > "$WORK/check.out" || { cat "$WORK/check.out"; fail "kr: exactly once"; }
python3 - "$WORK/kr/scores.jsonl" <<'PY' || fail "k-regular extension"
import json, sys
rows = {r["id"]: r for r in map(json.loads, open(sys.argv[1]))}
assert len(rows) == 10, rows
for i, r in rows.items():
    if i.startswith("b"):
        assert r["comparisons"] == 4, (i, r)   # k = 2 opponents, both orders
    else:
        assert r["comparisons"] >= 4, (i, r)   # its own 2 and any new image's
PY
# swiss re-opens its planner with the new images
run "$WORK/a.jsonl" --run sw --strategy swiss --out "$WORK/sw" > /dev/null 2> "$WORK/8.err" || { cat "$WORK/8.err"; fail "swiss"; }
run "$WORK/b.jsonl" --run sw --strategy swiss --out "$WORK/sw" > "$WORK/8.out" 2> "$WORK/8.err" || { cat "$WORK/8.err"; fail "swiss extension"; }
"$CHECK" "$WORK/db" sw 0 > "$WORK/check.out" || { cat "$WORK/check.out"; fail "swiss: exactly once"; }
python3 - "$WORK/sw/scores.jsonl" <<'PY' || fail "swiss extension"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 10 and all(r["comparisons"] > 0 for r in rows), rows
PY
# cross-model: the cross-model pairs with a new image. Per prompt models
# are a: 0 1 0, b: 0 1; 6 cross pairs of 5 images, 2 of them old: 4 new,
# both orders: 8 per prompt
run "$WORK/a.jsonl" --run cm --strategy cross-model --out "$WORK/cm" > "$WORK/10a.out" 2> "$WORK/10.err" || { cat "$WORK/10.err"; fail "cross-model"; }
[ "$(judged "$WORK/10a.out")" = 8 ] || { cat "$WORK/10a.out"; fail "cross-model: 2 prompts x 2 pairs x 2 orders"; }
run "$WORK/b.jsonl" --run cm --strategy cross-model --out "$WORK/cm" > "$WORK/10.out" 2> "$WORK/10.err" || { cat "$WORK/10.err"; fail "cross-model extension"; }
[ "$(judged "$WORK/10.out")" = 16 ] || { cat "$WORK/10.out"; fail "cross-model extension: not exactly 16"; }
check cm 24 "cross-model extension"
# adaptive re-opens its planner too; order random: no unordered pair twice
# either (check_run counts ordered pairs; random issues one order per pair)
run "$WORK/a.jsonl" --run ad --strategy adaptive --budget 4 --confidence 1 --out "$WORK/ad" > /dev/null 2> "$WORK/11.err" || { cat "$WORK/11.err"; fail "adaptive"; }
run "$WORK/b.jsonl" --run ad --strategy adaptive --budget 4 --confidence 1 --out "$WORK/ad" > "$WORK/11.out" 2> "$WORK/11.err" || { cat "$WORK/11.err"; fail "adaptive extension"; }
"$CHECK" "$WORK/db" ad 0 > "$WORK/check.out" || { cat "$WORK/check.out"; fail "adaptive: exactly once"; }
python3 - "$WORK/ad/scores.jsonl" <<'PY' || fail "adaptive extension"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 10 and all(r["comparisons"] > 0 for r in rows if r["id"].startswith("b")), rows
PY
run "$WORK/a.jsonl" --run rnd --order random --out "$WORK/rnd" > /dev/null 2> "$WORK/12.err" || { cat "$WORK/12.err"; fail "random"; }
run "$WORK/b.jsonl" --run rnd --order random --out "$WORK/rnd" > "$WORK/12.out" 2> "$WORK/12.err" || { cat "$WORK/12.err"; fail "random extension"; }
[ "$(judged "$WORK/12.out")" = 14 ] || { cat "$WORK/12.out"; fail "order random: (10 - 3) pairs per prompt, once each"; }
check rnd 20 "order random extension"
# outcome reuse: night 2 repeats two of night 1's images (same contents,
# other files and ids) in the same prompt: their 2 ordered pairs are copied,
# not judged; --no-reuse judges them
python3 - "$WORK" <<'PY'
import json, os, sys
w = sys.argv[1]
os.makedirs(f"{w}/r", exist_ok=True)
def img(name, content):
    with open(f"{w}/r/{name}", "w") as f:
        f.write(content)
    return f"r/{name}"
with open(f"{w}/n1.jsonl", "w") as f:
    for k in range(4):
        f.write(json.dumps({"image": img(f"n1_{k}.png", f"content {k}"), "prompt": "night",
                            "id": f"n1_{k}", "latent": k}) + "\n")
with open(f"{w}/n2.jsonl", "w") as f:
    for k in range(4):  # contents 0 and 1 again, 7 and 8 new
        c = k if k < 2 else k + 5
        f.write(json.dumps({"image": img(f"n2_{k}.png", f"content {c}"), "prompt": "night",
                            "id": f"n2_{k}", "latent": c}) + "\n")
PY
run "$WORK/n1.jsonl" --run night1 --out "$WORK/n1" > "$WORK/13.out" 2> "$WORK/13.err" || { cat "$WORK/13.err"; fail "night1"; }
[ "$(judged "$WORK/13.out")" = 12 ] || { cat "$WORK/13.out"; fail "night1: 12"; }
run "$WORK/n2.jsonl" --run night2 --out "$WORK/n2" > "$WORK/14.out" 2> "$WORK/14.err" || { cat "$WORK/14.err"; fail "night2"; }
[ "$(judged "$WORK/14.out")" = 10 ] || { cat "$WORK/14.out"; fail "night2: 12 pairs, 2 of them reused: 10 judged"; }
grep -q "2 more answered by earlier outcomes" "$WORK/14.out" || { cat "$WORK/14.out"; fail "night2: reuse not reported"; }
check night2 12 "night2: every match exactly one outcome, reused ones included"
run "$WORK/n2.jsonl" --run night2b --no-reuse --out "$WORK/n2b" > "$WORK/15.out" 2> "$WORK/15.err" || { cat "$WORK/15.err"; fail "night2b"; }
[ "$(judged "$WORK/15.out")" = 12 ] || { cat "$WORK/15.out"; fail "--no-reuse judged fewer than 12"; }
# planned, not finished, extended, killed -9 twice, resumed: exactly once
coord() { # MANIFEST: a coordinator with no worker, killed once it planned
    local ep="tcp://127.0.0.1:$(free_port)"
    "$JOUST" coordinator "$1" --judge sim --db "$WORK/db" --run kill --bind "$ep" --out "$WORK/ko" \
        --no-progress > "$WORK/k.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do grep -q "bound\|listening\|waiting" "$WORK/k.log" 2>/dev/null && break; sleep 0.1; done
    sleep 1
    kill -9 $pid; wait $pid 2>/dev/null || true
}
coord "$WORK/a.jsonl"
coord "$WORK/b.jsonl"
grep -q "extended with" "$WORK/k.log" || { cat "$WORK/k.log"; fail "kill: the extension was not taken"; }
run "$WORK/b.jsonl" --run kill --out "$WORK/ko" > "$WORK/9.out" 2> "$WORK/9.err" || { cat "$WORK/9.err"; fail "kill: resume"; }
check kill 40 "killed and resumed: not exactly once"
echo "1 passed, 0 failed"
