#!/usr/bin/env bash
# Near-duplicates (docs/dedup.md), with real coordinator and worker
# processes over the signature jobs of docs/protocol.md §11:
# - every kind of near-duplicate (exact copy, JPEG re-encodes at q85/70/50,
#   2-pixel resize, 2 % crop, colour shift, small overlay) lands in its
#   base's cluster at the default radius, and the look-alike distinct scenes
#   of the same prompt are in no cluster; clusters.jsonl's format;
# - signatures are computed once: a second dedup signs nothing, and an
#   exact copy is signed once (copied by content); an unreadable image is
#   named, in no cluster, and exits 1;
# - --scope prompt | model | global decides which images are compared;
# - remote workers (`joust worker --connect`) sign for `joust dedup
#   --workers 0`;
# - `joust run --dedup` judges exactly the matches of the representatives
#   (the calls of the collapsed images are saved), and scores.jsonl/.csv
#   mark each duplicate with duplicate_of and its representative's score;
# - with a scored run, the representative is the best-scored member.
. "$(dirname "$0")/lib.sh"
MAKE_DEDUP_SET=${MAKE_DEDUP_SET:?path to make_dedup_set}
P=3 # prompts: each a base, 8 near-duplicates and 3 distinct look-alikes
mkdir -p "$WORK/set"
"$MAKE_DEDUP_SET" "$WORK/set" $P || fail "fixture"
M="$WORK/set/manifest.jsonl"
judged() { sed -n 's/^judged \([0-9]*\) matches.*/\1/p' "$1"; }

# ---- clusters against the truth, and their format
"$JOUST" dedup "$M" --db "$WORK/db1" --out "$WORK/o1" --workers 2 > "$WORK/d1.out" 2> "$WORK/d1.err" \
    || { cat "$WORK/d1.err" "$WORK/d1.out"; fail "joust dedup"; }
check_clusters() { # DIR [scores.jsonl]
    python3 - "$M" "$1" "${2:-}" <<'PY' || fail "clusters of $1"
import json, sys
man = [json.loads(l) for l in open(sys.argv[1])]
truth = {r["id"]: r["truth"] for r in man}
kind = {r["id"]: r["kind"] for r in man}
clusters = [json.loads(l) for l in open(sys.argv[2] + "/clusters.jsonl")]
scores = {}
if sys.argv[3]:
    scores = {r["id"]: r for r in map(json.loads, open(sys.argv[3]))}
want = {}
for i, t in truth.items():
    want.setdefault(t, set()).add(i)
want = {t: s for t, s in want.items() if len(s) > 1}
assert len(clusters) == len(want), (len(clusters), len(want))
for n, c in enumerate(clusters, 1):
    assert c["cluster"] == n and c["size"] == len(c["members"]) == len(c["distances"]) \
        == len(c["images"]) >= 2, c
    assert c["representative"] == c["members"][0] and c["distances"][0] == 0, c
    assert all(0 <= d <= 8 for d in c["distances"]), c
    assert c["images"][0].endswith("/" + c["representative"] + ".jpg"), c
    base = truth[c["members"][0]]
    got = set(c["members"])
    missing = sorted(kind[i] for i in want[base] - got)
    extra = sorted(i for i in got - want[base])
    assert not missing, f"cluster of {base} misses near-duplicates of kind {missing}"
    assert not extra, f"cluster of {base} holds distinct images {extra}"
    if scores:  # the best-scored member represents it
        best = max(c["members"], key=lambda i: scores[i]["score"])
        assert c["representative"] == best and c["chosen_by"] == "score", (c, best)
    else:       # the largest (all the same size but crop and resize), then the first
        assert c["representative"] == base and c["chosen_by"] == "size", c
print("clusters ok:", len(clusters))
PY
}
check_clusters "$WORK/o1"
summary() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
[ "$(summary "$WORK/o1/dedup_summary.json" 'd["clusters"], d["images_in_clusters"], d["signed"]')" \
    = "($P, $((P * 9)), $((P * 12)))" ] || { cat "$WORK/o1/dedup_summary.json"; fail "summary counts"; }
# the exact copy has the same bytes: signed once, copied by content
[ "$(summary "$WORK/o1/dedup_summary.json" 'd["signing"]["signed_now"], d["signing"]["copied_by_content"]')" \
    = "($((P * 11)), $P)" ] || { cat "$WORK/o1/dedup_summary.json"; fail "exact copies signed once"; }

# ---- computed once: a second dedup signs nothing and finds the same clusters
"$JOUST" dedup "$M" --db "$WORK/db1" --out "$WORK/o2" --workers 2 > "$WORK/d2.out" 2> "$WORK/d2.err" \
    || { cat "$WORK/d2.err"; fail "second dedup"; }
[ "$(summary "$WORK/o2/dedup_summary.json" 'd["signing"]["signed_now"], d["signing"]["signed_before"]')" \
    = "(0, $((P * 12)))" ] || { cat "$WORK/o2/dedup_summary.json"; fail "second dedup signed again"; }
cmp -s "$WORK/o1/clusters.jsonl" "$WORK/o2/clusters.jsonl" || fail "the same store gives other clusters"

# ---- an image that cannot be read: named, stored as such (not signed again),
# in no cluster, exit 1; the others are still clustered
head -c 3000 "$WORK/set/p0_orig.jpg" > "$WORK/set/broken.jpg"
{ echo '{"image":"'"$WORK"'/set/broken.jpg","id":"broken","prompt":"scene 0"}'
  grep '"p0_' "$M"; } > "$WORK/set/bad.jsonl"
for k in 1 2; do
    if "$JOUST" dedup "$WORK/set/bad.jsonl" --db "$WORK/dbb" --out "$WORK/ob$k" --workers 2 \
        > "$WORK/b$k.out" 2> "$WORK/b$k.err"; then fail "an unreadable image exits 0"; fi
    grep -q "broken.jpg: corrupt or truncated JPEG" "$WORK/b$k.err" || { cat "$WORK/b$k.err"; fail "reason $k"; }
    [ "$(summary "$WORK/ob$k/dedup_summary.json" 'd["unsigned"], d["clusters"], d["images_in_clusters"]')" \
        = "(1, 1, 9)" ] || { cat "$WORK/ob$k/dedup_summary.json"; fail "dedup with a broken image $k"; }
done
[ "$(summary "$WORK/ob2/dedup_summary.json" 'd["signing"]["signed_now"] + d["signing"]["failed"]')" = 0 ] \
    || { cat "$WORK/ob2/dedup_summary.json"; fail "the broken image was signed again"; }

# ---- scopes: a re-encode under another prompt is a near-duplicate only
# globally, or within a model when both have the same model
{ echo '{"image":"'"$WORK"'/set/p0_orig.jpg","id":"a","prompt":"one","model":"m1"}'
  echo '{"image":"'"$WORK"'/set/p0_q85.jpg","id":"b","prompt":"two","model":"m1"}'
  echo '{"image":"'"$WORK"'/set/p0_q70.jpg","id":"c","prompt":"three","model":"m2"}'; } > "$WORK/set/scopes.jsonl"
for sc in "prompt 0" "model 1" "global 1"; do
    set -- $sc
    "$JOUST" dedup "$WORK/set/scopes.jsonl" --db "$WORK/dbs" --out "$WORK/os" --workers 1 --scope "$1" \
        > "$WORK/s.out" 2> "$WORK/s.err" || { cat "$WORK/s.err"; fail "--scope $1"; }
    [ "$(summary "$WORK/os/dedup_summary.json" 'd["scope"], d["clusters"]')" = "('$1', $2)" ] \
        || { cat "$WORK/os/dedup_summary.json"; fail "--scope $1: $2 clusters"; }
done
[ "$(summary "$WORK/os/dedup_summary.json" 'd["images_in_clusters"]')" = 3 ] || fail "global: one cluster of 3"

# ---- remote workers sign for a coordinator without local ones
PORT=$(free_port)
"$JOUST" dedup "$M" --db "$WORK/db2" --out "$WORK/o3" --workers 0 --bind "tcp://127.0.0.1:$PORT" \
    > "$WORK/d3.out" 2> "$WORK/d3.err" &
DPID=$!
PIDS+=("$DPID")
"$JOUST" worker --connect "tcp://127.0.0.1:$PORT" --allow-root "$WORK/set" --name remote-1 \
    2> "$WORK/w.err" &
PIDS+=("$!")
wait_for "$DPID" 60 || { cat "$WORK/d3.err" "$WORK/w.err"; fail "dedup with a remote worker"; }
grep -q "signed" "$WORK/w.err" || fail "the remote worker says nothing about signing"
cmp -s "$WORK/o1/clusters.jsonl" "$WORK/o3/clusters.jsonl" || fail "remote signing gives other clusters"

# ---- joust run --dedup: only representatives are judged
run() { "$JOUST" run "$M" --db "$WORK/$1" --out "$WORK/$1.o" --workers 2 --no-reuse --no-progress \
        "${@:2}"; }
run full > "$WORK/full.out" 2> "$WORK/full.err" || { cat "$WORK/full.err"; fail "run"; }
run dd --dedup > "$WORK/dd.out" 2> "$WORK/dd.err" || { cat "$WORK/dd.err"; fail "run --dedup"; }
# round-robin, both orders: n (n - 1) calls per prompt; 12 images, of which
# 8 collapse into their base: 132 - 12 = 120 calls saved per prompt
[ "$(judged "$WORK/full.out")" = $((P * 132)) ] || { cat "$WORK/full.out"; fail "full run calls"; }
[ "$(judged "$WORK/dd.out")" = $((P * 12)) ] || { cat "$WORK/dd.out"; fail "--dedup calls"; }
grep -q "^signed $((P * 11)) images ($P copied" "$WORK/dd.out" || { cat "$WORK/dd.out"; fail "--dedup signs"; }
grep -q "^$((P * 8)) of the unjudged are near-duplicates collapsed by --dedup" "$WORK/dd.out" \
    || { cat "$WORK/dd.out"; fail "--dedup summary"; }
python3 - "$M" "$WORK/dd.o" <<'PY' || fail "duplicate_of in the scores"
import csv, json, sys
truth = {r["id"]: r["truth"] for r in map(json.loads, open(sys.argv[1]))}
rows = {r["id"]: r for r in map(json.loads, open(sys.argv[2] + "/scores.jsonl"))}
for i, r in rows.items():
    if truth[i] != i:  # a near-duplicate: collapsed into its base, which was judged
        base = rows[truth[i]]
        assert r["duplicate_of"] == truth[i] and base["duplicate_of"] is None, r
        assert r["score"] == base["score"] and r["rank"] == base["rank"], (r, base)
    else:
        assert r["duplicate_of"] is None and r["comparisons"] == 6 and r["status"] == "ranked", r
with open(sys.argv[2] + "/scores.csv") as f:
    c = {r["id"]: r for r in csv.DictReader(f)}
assert all(c[i]["duplicate_of"] == (truth[i] if truth[i] != i else "") for i in rows), c
PY
# the same command again: nothing signed, nothing judged
run dd --dedup > "$WORK/dd2.out" 2> "$WORK/dd2.err" || { cat "$WORK/dd2.err"; fail "run --dedup again"; }
[ "$(judged "$WORK/dd2.out")" = 0 ] || { cat "$WORK/dd2.out"; fail "--dedup again judged"; }
grep -q "^signed 0 images (0 copied from images with the same content, $((P * 12)) signed before)" \
    "$WORK/dd2.out" || { cat "$WORK/dd2.out"; fail "--dedup again signed"; }

# ---- a scored run: the best-scored member represents its cluster
"$JOUST" dedup --db "$WORK/full" --out "$WORK/o4" --workers 2 --allow-root "$WORK/set" \
    > "$WORK/d4.out" 2> "$WORK/d4.err" || { cat "$WORK/d4.err"; fail "dedup of a scored run"; }
grep -q "the images of run 'default'" "$WORK/d4.out" || { cat "$WORK/d4.out"; fail "run not used"; }
check_clusters "$WORK/o4" "$WORK/full.o/scores.jsonl"
echo "test_dedup: ok"
