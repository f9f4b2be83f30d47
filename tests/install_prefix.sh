#!/usr/bin/env bash
# `cmake --install BUILD --prefix P` puts joust in P/bin and the docs in
# P/share/doc/joust, and that copy runs on its own: --help exits 0 and
# prints the command list, and `joust keygen` works from there (the path the
# systemd units and the container use).
set -euo pipefail
build=${1:?build directory}
P=$(mktemp -d /tmp/joust-install.XXXXXX)
trap 'rm -rf "$P"' EXIT
cmake --install "$build" --prefix "$P" > "$P.log" 2>&1 || { cat "$P.log"; rm -f "$P.log"; exit 1; }
rm -f "$P.log"
[ -x "$P/bin/joust" ] || { echo "FAIL: no executable $P/bin/joust"; ls -R "$P"; exit 1; }
out=$("$P/bin/joust" --help) || { echo "FAIL: $P/bin/joust --help exited $?"; exit 1; }
grep -q "usage: joust" <<< "$out" || { echo "FAIL: --help printed no usage:"; echo "$out"; exit 1; }
grep -q "coordinator" <<< "$out" || { echo "FAIL: --help lacks the commands:"; echo "$out"; exit 1; }
[ -s "$P/share/doc/joust/operations.md" ] && [ -s "$P/share/doc/joust/README.md" ] ||
    { echo "FAIL: documentation not in $P/share/doc/joust"; ls -R "$P"; exit 1; }
"$P/bin/joust" keygen w1 --out "$P/keys" > /dev/null || { echo "FAIL: installed keygen"; exit 1; }
[ -s "$P/keys/w1.pub" ] || { echo "FAIL: keygen wrote no $P/keys/w1.pub"; ls -la "$P/keys"; exit 1; }
echo "1 passed, 0 failed"
