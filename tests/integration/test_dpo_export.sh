#!/usr/bin/env bash
# joust export dpo on a small run with the sim judge (noise-free, so the
# scores follow the latents): each pair policy gives the hand-checked pairs
# below, a tie (margin ~0) is never a pair by default and no pair with
# margin 0 is ever written, the trl and pickapic layouts have their fields,
# and --format wds writes a tar that Python's tarfile opens, with per pair
# KEY.json and the two images' exact bytes.
. "$(dirname "$0")/lib.sh"
mkdir -p "$WORK/img"
python3 - "$WORK" <<'PY'
import json, os, sys
w = sys.argv[1]
rows = [("A", "a", 3.0), ("A", "b", 1.5), ("A", "c", 0.0), ("A", "d", -1.5),
        ("B", "e", 1.0), ("B", "f", 1.0),            # a tie: never a pair by default
        ("C", "g", 2.0), ("C", "h", 0.0)]
with open(os.path.join(w, "m.jsonl"), "w") as f:
    for p, i, lat in rows:
        with open(os.path.join(w, "img", i + ".png"), "wb") as img:
            img.write(b"\x89PNG fake bytes of " + i.encode() * 50)
        f.write(json.dumps({"image": f"img/{i}.png", "prompt": f"prompt {p}", "prompt_id": p,
                            "id": i, "latent": lat}) + "\n")
PY
"$JOUST" run "$WORK/m.jsonl" --judge sim --workers 1 --db "$WORK/db" --out "$WORK/out" \
    --no-progress > "$WORK/run.log" 2>&1 || { cat "$WORK/run.log"; fail "run"; }
ex() { "$JOUST" export dpo --db "$WORK/db" "$@" >> "$WORK/export.log" 2>&1 || { cat "$WORK/export.log"; fail "export $*"; }; }
ex --out "$WORK/bw.jsonl"
ex --out "$WORK/be.jsonl" --pairs best-each
ex --out "$WORK/all.jsonl" --pairs all
ex --out "$WORK/all0.jsonl" --pairs all --min-margin 0
ex --out "$WORK/all15.jsonl" --pairs all --min-margin 1.5
ex --out "$WORK/topk.jsonl" --pairs top-k
ex --out "$WORK/top1.jsonl" --pairs top-k --k 1
ex --out "$WORK/pap.jsonl" --pairs all --layout pickapic
ex --out "$WORK/trl.tar" --pairs best-each --format wds
ex --out "$WORK/pap.tar" --layout pickapic --format wds
grep -q "wrote 2 pairs from 2 prompts" "$WORK/export.log" || fail "summary line"
python3 - "$WORK" <<'PY' || fail "pairs"
import json, os, sys, tarfile
w = sys.argv[1]
def load(name):
    return [json.loads(l) for l in open(os.path.join(w, name))]
def pairs(name):
    out = set()
    for d in load(name):
        assert d["margin"] > 0, d
        assert abs(d["margin"] - (d["chosen_score"] - d["rejected_score"])) < 1e-6, d
        assert set(d) >= {"prompt", "chosen", "rejected", "prompt_id", "p_chosen"}, d
        assert d["chosen"].endswith(d["chosen_id"] + ".png"), d
        assert d["prompt"] == "prompt " + d["prompt_id"]
        out.add(d["chosen_id"] + d["rejected_id"])
    return out
expect = {
    "bw.jsonl": {"ad", "gh"},
    "be.jsonl": {"ab", "ac", "ad", "gh"},
    "all.jsonl": {"ab", "ac", "ad", "bc", "bd", "cd", "gh"},
    "all15.jsonl": {"ac", "ad", "bd"},  # margins about 2.1, 3.2, 2.1; the others 1.0-1.4
    "topk.jsonl": {"ac", "ad", "bc", "bd", "gh"},
    "top1.jsonl": {"ad", "gh"},
}
for name, want in expect.items():
    got = pairs(name)
    assert got == want, (name, sorted(got), sorted(want))
# --min-margin 0: the tie (e, f) is a pair only if the fit separates them.
got = pairs("all0.jsonl")
assert got - {"ef", "fe"} == expect["all.jsonl"], sorted(got)
for d in load("all.jsonl"):
    assert d["margin"] >= 0.1
# pickapic: the same pairs, the chosen side on either position, labels agree
rows = load("pap.jsonl")
assert len(rows) == 7
sides = set()
for d in rows:
    assert set(d) >= {"caption", "jpg_0", "jpg_1", "label_0", "label_1"}, d
    assert d["label_0"] + d["label_1"] == 1
    chosen = d["image_0_uid"] if d["label_0"] == 1 else d["image_1_uid"]
    other = d["image_1_uid"] if d["label_0"] == 1 else d["image_0_uid"]
    assert chosen < other, d  # latents fall with the letter here
    assert d["jpg_0"].endswith(d["image_0_uid"] + ".png")
    sides.add(d["label_0"])
assert sides == {0, 1}, "the chosen image always sits on one side"
# the tars
def image(i):
    return open(os.path.join(w, "img", i + ".png"), "rb").read()
with tarfile.open(os.path.join(w, "trl.tar")) as t:
    names = t.getnames()
    assert len(names) == 12, names
    keys = sorted({n.split(".")[0] for n in names})
    for k in keys:
        meta = json.loads(t.extractfile(k + ".json").read())
        assert meta["chosen"] == k + ".chosen.png" and meta["rejected"] == k + ".rejected.png"
        assert t.extractfile(meta["chosen"]).read() == image(meta["chosen_id"])
        assert t.extractfile(meta["rejected"]).read() == image(meta["rejected_id"])
    got = {json.loads(t.extractfile(k + ".json").read())["chosen_id"] +
           json.loads(t.extractfile(k + ".json").read())["rejected_id"] for k in keys}
    assert got == expect["be.jsonl"], got
with tarfile.open(os.path.join(w, "pap.tar")) as t:
    names = t.getnames()
    assert len(names) == 6, names
    for k in sorted({n.split(".")[0] for n in names}):
        meta = json.loads(t.extractfile(k + ".json").read())
        assert t.extractfile(meta["jpg_0"]).read() == image(meta["image_0_uid"])
        assert t.extractfile(meta["jpg_1"]).read() == image(meta["image_1_uid"])
PY
# An image that cannot be read: its pair is left out, named, and the exit is 1.
rm "$WORK/img/h.png"
if "$JOUST" export dpo --db "$WORK/db" --out "$WORK/miss.tar" --format wds > "$WORK/miss.log" 2>&1; then
    fail "a missing image exited 0"
fi
grep -q "h.png" "$WORK/miss.log" || { cat "$WORK/miss.log"; fail "the missing image is not named"; }
grep -q "1 pairs left out" "$WORK/miss.log" || fail "the left-out count"
python3 -c "import tarfile,sys; assert len(tarfile.open(sys.argv[1]).getnames()) == 3" "$WORK/miss.tar" ||
    fail "the other pair is not in the tar"
echo "1 passed, 0 failed"
