#!/usr/bin/env bash
# joust bench neardup / signature / dedup-quality as a user runs them, on
# small inputs: planted near-duplicates all clustered, the signature rates
# printed beside TurboJPEG's bare limit, and the precision / recall table on
# a small set of PNGs (edited copies found, distinct images kept apart);
# bad input to dedup-quality fails with a message that names it; every
# benchmark answers --help.
set -euo pipefail
: "${JOUST:?}"
tmp=$(mktemp -d /tmp/joust-bench-dedup.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# every benchmark explains itself; the list names them all
"$JOUST" bench >"$tmp/list.txt" 2>&1 && { echo "joust bench without a name succeeded"; exit 1; }
for b in scale coordinator report ingest bt bt-global groups ranking signature neardup dedup-quality; do
    "$JOUST" bench "$b" --help >"$tmp/help.txt" || { echo "bench $b --help failed"; exit 1; }
    grep -q "^usage: joust bench $b" "$tmp/help.txt" || { echo "bench $b --help: no usage"; exit 1; }
    grep -qw -- "$b" "$tmp/list.txt" || { echo "joust bench does not list $b"; exit 1; }
done

"$JOUST" bench neardup --n 30000 --radius 8 >"$tmp/nd.txt"
grep -q 'planted pairs not clustered: 0' "$tmp/nd.txt"
grep -q 'signatures: [0-9]* pairs, brute force [0-9]* (the same pairs)' "$tmp/nd.txt"
"$JOUST" bench neardup --n 20000 --radius 6 --scopes 500 >/dev/null

"$JOUST" bench signature --count 20 --distinct 2 --side 256 >"$tmp/sig.txt"
grep -q 'bare limit, TurboJPEG 1/8 to luma' "$tmp/sig.txt"

# A set of smooth 96 x 96 scenes (different waves), each with two edited
# copies: brightness + 12 and a 2-pixel crop.
python3 - "$tmp/set" <<'PY'
import math, os, struct, sys, zlib
out = sys.argv[1]
os.makedirs(out)
def png(path, w, h, px):
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    raw = b"".join(b"\0" + bytes(px[y * w * 3:(y + 1) * w * 3]) for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
def scene(k, n, dx=0, bright=0):
    fx, fy, ph = 1 + k % 3, 1 + (k * 7) % 4, k * 1.3
    px = bytearray()
    for y in range(n):
        for x in range(n):
            v = 128 + 100 * math.sin(fx * (x + dx) / 40 + ph) * math.cos(fy * (y + dx) / 45 + k)
            v = max(0, min(255, int(v) + bright))
            px += bytes((v, v, v))
    return px
rows = []
for k in range(6):
    base, prompt = f"b{k}", f"p{k // 2}"
    for kind, n, dx, br in (("orig", 96, 0, 0), ("bright12", 96, 0, 12), ("crop2px", 94, 1, 0)):
        name = f"{base}-{kind}.png"
        png(os.path.join(out, name), n, n, scene(k, n, dx, br))
        rows.append("\t".join((name, prompt, base, kind)))
open(os.path.join(out, "manifest.tsv"), "w").write("\n".join(rows) + "\n")
PY
"$JOUST" bench dedup-quality --set "$tmp/set" --radii 8 >"$tmp/q.txt"
cat "$tmp/q.txt"
grep -Eq '^\| joust \| 8 \| 100 % \| [5-9][0-9] % \| [0-9.]+ % \| 100.0 % \| 0.0 % \|' "$tmp/q.txt"
# no peer.tsv: joust's rows only
! grep -q imagededup "$tmp/q.txt"

# bad input: no set, a manifest line without its fields, a peer file short
# of hashes
rc=0; "$JOUST" bench dedup-quality 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--set DIR is required' "$tmp/err"
printf 'b0-orig.png\tp0\n' >>"$tmp/set/manifest.tsv"
rc=0; "$JOUST" bench dedup-quality --set "$tmp/set" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'manifest.tsv line 19: want file, prompt, base, kind' "$tmp/err"
sed -i '$d' "$tmp/set/manifest.tsv"
printf 'b0-orig.png\t0123456789abcdef\n' >"$tmp/set/peer.tsv"
rc=0; "$JOUST" bench dedup-quality --set "$tmp/set" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'peer.tsv: 1 of 18 hashes read' "$tmp/err"
echo "test_bench_dedup: ok"
