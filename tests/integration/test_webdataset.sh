#!/usr/bin/env bash
# WebDataset shards as input (coordinator/webdataset.h): plain tar shards
# made here from demo images (a brace range and a plain list), .txt and
# .json samples, bad samples reported by shard + member, a gzip shard
# accepted (its references say compressed=1); the quality judge ranks them and scores.jsonl
# names each image by shard + member; the workers read members of plain
# shards (pread), not shards; a gzip shard's member is read by streaming.
source "$(dirname "$0")/lib.sh"

"$JOUST" demo --out "$WORK/demo" --prompts 2 --per-prompt 3 --workers 1 --no-progress \
    > /dev/null 2>&1 || fail "demo data"
mkdir -p "$WORK/shards"
python3 - "$WORK/demo/manifest.jsonl" "$WORK/shards" <<'PY'
import io, json, sys, tarfile, gzip
man, out = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(man)]
def add(t, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
# shard 00000: prompt 0 with .txt captions, plus bad samples
# shard 00001: prompt 1 with .json (prompt, model, id, extra metadata; the .txt loses)
with tarfile.open(f"{out}/00000.tar", "w", format=tarfile.GNU_FORMAT) as t:
    for i, l in enumerate(x for x in lines if x["id"].startswith("p0")):
        add(t, f"s0/{l['id']}.jpg", open(l["image"], "rb").read())
        add(t, f"s0/{l['id']}.txt", l["prompt"].encode())
    add(t, "s0/nocap.jpg", open(lines[0]["image"], "rb").read())
    add(t, "s0/weird.bmp", b"BM")
with tarfile.open(f"{out}/00001.tar", "w", format=tarfile.PAX_FORMAT) as t:
    for l in (x for x in lines if x["id"].startswith("p1")):
        key = l["id"] + "_" + "x" * 120   # a long name: a pax header before the member
        add(t, f"{key}.json",
            json.dumps({"prompt": l["prompt"], "model": l["model"], "id": l["id"],
                        "truth": l["truth"]}).encode())
        add(t, f"{key}.txt", b"the json prompt wins over this caption")
        add(t, f"{key}.jpg", open(l["image"], "rb").read())
# a gzip-compressed shard: accepted, read by streaming
with tarfile.open(f"{out}/gz.tar.gz", "w:gz") as t:
    add(t, "a.jpg", open(lines[0]["image"], "rb").read()); add(t, "a.txt", b"x")
    add(t, "b.jpg", open(lines[1]["image"], "rb").read()); add(t, "b.txt", b"x")
PY

# Every member reference reads back exactly the member's bytes.
"$JOUST" run "$WORK/shards/{00000..00001}.tar" "$WORK/shards/gz.tar.gz" --db "$WORK/db" \
    --out "$WORK/out" --workers 1 --no-progress --judge quality --fetch-cache "$WORK/cache" \
    > "$WORK/run.out" 2> "$WORK/run.err" || { cat "$WORK/run.err"; fail "run over shards"; }
grep -q "shards: 3 read, 0 refused or damaged; 8 samples" "$WORK/run.out" \
    || { cat "$WORK/run.out"; fail "shard counts"; }
grep -q "00000.tar: s0/nocap.jpg: sample has no prompt" "$WORK/run.err" \
    || { cat "$WORK/run.err"; fail "no caption reported"; }
grep -q "00000.tar: s0/weird.bmp: unknown extension" "$WORK/run.err" || fail "unknown extension reported"
[ "$(wc -l < "$WORK/out/scores.jsonl")" = 8 ] || fail "not 8 scores"
python3 - "$WORK/out/scores.jsonl" "$WORK/shards" <<'PY'
import json, sys, tarfile, urllib.parse
rows = [json.loads(l) for l in open(sys.argv[1])]
prompts = {r["prompt"] for r in rows}
assert not any("caption" in p for p in prompts), "the .json prompt must win over .txt"
assert len(prompts) == 3, prompts
gz = [r for r in rows if "gz.tar.gz#" in r["image"]]
assert len(gz) == 2 and all(r["rank"] and "#compressed=1&offset=" in r["image"] for r in gz), gz
for r in rows:
    img = r["image"]
    if r in gz:
        continue
    assert img.startswith("tar:") and "#offset=" in img and "&member=" in img, img
    shard, frag = img[4:].split("#", 1)
    q = dict(kv.split("=", 1) for kv in frag.split("&"))
    off, size = int(q["offset"]), int(q["size"])
    with open(shard, "rb") as f:
        f.seek(off); data = f.read(size)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", (img, data[:4])
    member = urllib.parse.unquote(q["member"])
    assert member.endswith(".jpg"), member
PY
[ $? = 0 ] || fail "references"

# The worker reads members with one pread each and never read()s a shard:
# traced (strace -f) over a fresh store; the worker is the process that
# exec'd "joust worker".
command -v strace > /dev/null || fail "strace is needed (scripts/install-deps.sh)"
strace -f -qq -e trace=execve,openat,read,pread64 -o "$WORK/trace" \
    "$JOUST" run "$WORK/shards/{00000..00001}.tar" --db "$WORK/db2" --out "$WORK/out2" \
    --workers 1 --no-progress --judge quality > /dev/null 2>&1 || fail "traced run"
python3 - "$WORK/trace" "$WORK/shards" <<'PY'
import os, re, sys
trace, shards = sys.argv[1], sys.argv[2]
sizes = {os.path.realpath(os.path.join(shards, f)): os.path.getsize(os.path.join(shards, f))
         for f in ("00000.tar", "00001.tar")}
workers, fds, preads, reads = set(), {}, [], 0
for line in open(trace):
    m = re.match(r"(\d+)\s+(\w+)\((.*)", line)
    if not m: continue
    pid, call, rest = int(m.group(1)), m.group(2), m.group(3)
    if call == "execve" and '"worker"' in rest: workers.add(pid)
    if pid not in workers: continue
    if call == "openat":
        o = re.match(r'[^,]+, "([^"]+)".*= (\d+)$', rest.strip())
        if o and os.path.realpath(o.group(1)) in sizes: fds[(pid, int(o.group(2)))] = o.group(1)
    elif call in ("read", "pread64"):
        fd = int(rest.split(",")[0])
        if (pid, fd) in fds:
            if call == "read": reads += 1
            else: preads.append(int(rest.rsplit("=", 1)[1]))
assert workers, "no worker process traced"
assert preads, "the worker did not pread any member"
assert reads == 0, f"the worker read() a shard {reads} times"
assert max(preads) < min(sizes.values()), (preads, sizes)
print(f"worker: {len(preads)} member preads, {sum(preads)} bytes; shards {sorted(sizes.values())} bytes")
PY
[ $? = 0 ] || fail "the worker read more than members"
echo "test_webdataset: ok"
