#!/usr/bin/env bash
# Near-duplicate detection, joust's signature side by side with imagededup's
# PHash on one generated set, same search, same metrics, one run
# (docs/benchmarks.md). A benchmark script: the venv it makes
# (VENV, default .venv-bench in the repository) is never used by joust.
#
#   tools/bench_dedup_peer.sh [SET_DIR [gen options: --prompts P --distinct K ...]]
#
# imagededup is installed without its dependencies: its hashes need Pillow,
# NumPy, SciPy, PyWavelets, tqdm and scikit-learn, not torch (which only its
# CNN method uses; bench_dedup_peer.py loads the hash module without it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
joust=${JOUST:-$root/build/tools/joust}
venv=${VENV:-$root/.venv-bench}
set_dir=${1:-/tmp/joust-dedup-set}
[ $# -gt 0 ] && shift
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q pillow numpy scipy PyWavelets tqdm scikit-learn
"$venv/bin/pip" install -q --no-deps imagededup==0.3.3.post2
[ -f "$set_dir/manifest.tsv" ] || "$venv/bin/python" "$root/tools/bench_dedup_peer.py" gen "$set_dir" "$@"
"$venv/bin/python" "$root/tools/bench_dedup_peer.py" peer "$set_dir"
"$joust" bench dedup-quality --set "$set_dir"
