#!/usr/bin/env bash
# Opt-in (77 = skipped without the virtualenv): the DPO exports load with
# Hugging Face `datasets` exactly as docs/export.md says: the TRL and
# Pick-a-Pic JSONL through load_dataset("json") with the paths cast to
# images, and both WebDataset tars through load_dataset("webdataset"); the
# columns, the row counts (= the pairs written) and image decoding are
# checked by dpo_datasets_check.py. The virtualenv (about 300 MB, from
# PyPI) is made once with
#   python3 -m venv .venv-datasets && .venv-datasets/bin/pip install datasets pillow
# or named by JOUST_DATASETS_VENV.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${JOUST_DATASETS_VENV:-$HERE/../../.venv-datasets}/bin/python
if ! "$PY" -c 'import datasets, PIL' 2>/dev/null; then
    echo "SKIP: no datasets+pillow in ${PY%/bin/python} (see the comment at the top)" >&2
    exit 77
fi
mkdir -p "$WORK/img"
python3 "$HERE/../fixtures/make_pngs.py" "$WORK/img" 8 48
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
with open(f"{w}/m.jsonl", "w") as f:
    for k in range(8):
        f.write(json.dumps({"image": f"img/a{k}.png", "prompt": f"prompt {k // 4}",
                            "id": f"i{k}", "latent": float(k % 4)}) + "\n")
PY
"$JOUST" run "$WORK/m.jsonl" --judge sim --workers 1 --db "$WORK/db" --out "$WORK/out" \
    --no-progress > "$WORK/run.log" 2>&1 || { cat "$WORK/run.log"; fail "run"; }
for f in trl.jsonl pickapic.jsonl trl.tar pickapic.tar; do
    layout=${f%.*}
    fmt=jsonl
    [ "${f##*.}" = tar ] && fmt=wds
    "$JOUST" export dpo --db "$WORK/db" --pairs all --layout "$layout" --format "$fmt" \
        --out "$WORK/$f" > "$WORK/export-$f.log" 2>&1 || { cat "$WORK/export-$f.log"; fail "export $f"; }
done
n=$(wc -l < "$WORK/trl.jsonl")
[ "$n" -gt 0 ] || fail "no pairs exported"
HF_HOME="$WORK/hf" HF_DATASETS_OFFLINE=1 "$PY" "$HERE/dpo_datasets_check.py" "$WORK" "$n" \
    || fail "datasets could not load the exports as documented"
echo "test_dpo_datasets: ok"
