#!/usr/bin/env python3
"""Near-duplicate benchmark set and imagededup peer (issue 12.6); a fixture
and a peer script, never part of the product. Run through
tools/bench_dedup_peer.sh, which makes the venv.

  bench_dedup_peer.py gen DIR [--prompts P] [--distinct K] [--side S] [--seed N]
      writes DIR/*.jpg and DIR/manifest.tsv (file, prompt, base, kind):
      per prompt K distinct images that look alike (one palette, one layout,
      the same big shapes moved a little, different details: what a
      generator gives for one prompt), and per distinct image ("orig", JPEG
      q95) its edited copies: re-encodes (q90/q75/q50), resizes (-2 px,
      50 %), crops (2 %, 5 %), colour shifts (brightness +20, a warm tint,
      saturation -40 %), overlays (a caption band, a corner logo).
  bench_dedup_peer.py peer DIR
      imagededup's PHash of every file of the manifest into DIR/peer.tsv
      (file, 16 hex digits), with its speed on stderr.
"""
import argparse
import os
import random
import sys
import time
import types
import importlib.util

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

KINDS = ["jpeg90", "jpeg75", "jpeg50", "resize-2px", "resize50", "crop2", "crop5",
         "bright20", "tint", "desat40", "caption", "logo"]


def palette(rng):
    base = rng.random() * 360
    cols = []
    for k in range(5):
        h = (base + k * rng.uniform(20, 70)) % 360
        s, v = rng.uniform(0.3, 0.9), rng.uniform(0.3, 1.0)
        cols.append(hsv(h, s, v))
    return cols


def hsv(h, s, v):
    c = v * s
    x = c * (1 - abs((h / 60) % 2 - 1))
    m = v - c
    r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h // 60) % 6]
    return tuple(int(255 * (q + m)) for q in (r, g, b))


def layout(rng):
    """The composition a prompt fixes: horizon, big shapes and their places."""
    shapes = []
    for _ in range(rng.randint(3, 5)):
        shapes.append((rng.choice(["ellipse", "rect", "tri"]), rng.uniform(0.1, 0.9),
                       rng.uniform(0.15, 0.9), rng.uniform(0.12, 0.35), rng.randrange(5)))
    return {"horizon": rng.uniform(0.35, 0.7), "shapes": shapes}


def render(side, pal, lay, rng):
    """One image of a prompt: the prompt's palette and layout, the big shapes
    jittered, its own details and texture."""
    img = Image.new("RGB", (side, side))
    top, bottom = np.array(pal[0], float), np.array(pal[1], float)
    t = np.linspace(0, 1, side)[:, None, None]
    grad = top * (1 - t) + bottom * t
    arr = np.broadcast_to(grad, (side, side, 3)).copy()
    hz = int(side * (lay["horizon"] + rng.uniform(-0.04, 0.04)))
    arr[hz:] = arr[hz:] * 0.55 + np.array(pal[2], float) * 0.45
    img = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(img)
    for kind, x, y, r, c in lay["shapes"]:
        x = (x + rng.uniform(-0.06, 0.06)) * side
        y = (y + rng.uniform(-0.06, 0.06)) * side
        r = r * rng.uniform(0.85, 1.15) * side
        col = tuple(min(255, max(0, v + rng.randint(-25, 25))) for v in pal[c])
        box = [x - r, y - r, x + r, y + r]
        if kind == "ellipse":
            d.ellipse(box, fill=col)
        elif kind == "rect":
            d.rectangle(box, fill=col)
        else:
            d.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=col)
    for _ in range(rng.randint(15, 40)):  # details: what differs between images
        x, y, r = rng.uniform(0, side), rng.uniform(0, side), rng.uniform(0.01, 0.06) * side
        col = rng.choice(pal)
        col = tuple(min(255, max(0, v + rng.randint(-60, 60))) for v in col)
        if rng.random() < 0.5:
            d.ellipse([x - r, y - r, x + r, y + r], fill=col)
        else:
            d.line([x, y, x + rng.uniform(-3, 3) * r, y + rng.uniform(-3, 3) * r], fill=col,
                   width=max(2, int(r / 4)))
    img = img.filter(ImageFilter.GaussianBlur(side / 600))
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 3, (side, side, 3))
    arr = np.clip(np.asarray(img, float) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def edit(img, kind, rng):
    """An edited copy and the JPEG quality to save it at."""
    w, h = img.size
    if kind.startswith("jpeg"):
        return img, int(kind[4:])
    if kind == "resize-2px":
        return img.resize((w - 2, h - 2), Image.LANCZOS), 90
    if kind == "resize50":
        return img.resize((w // 2, h // 2), Image.LANCZOS), 90
    if kind in ("crop2", "crop5"):
        f = 0.02 if kind == "crop2" else 0.05
        dx, dy = int(w * f * rng.random()), int(h * f * rng.random())
        return img.crop((dx, dy, dx + int(w * (1 - f)), dy + int(h * (1 - f)))), 90
    if kind == "bright20":
        a = np.asarray(img, int) + 20
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), 90
    if kind == "tint":
        a = np.asarray(img, float) * np.array([1.08, 1.0, 0.88])
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), 90
    if kind == "desat40":
        return ImageEnhance.Color(img).enhance(0.6), 90
    out = img.copy()
    d = ImageDraw.Draw(out)
    if kind == "caption":  # a white band with a line of black text, 4 % high
        bh = int(h * 0.04)
        y0 = h - bh - int(h * 0.03)
        d.rectangle([int(w * 0.1), y0, int(w * 0.9), y0 + bh], fill=(255, 255, 255))
        x = int(w * 0.12)
        for word in range(8):  # glyph-like strokes (no font files needed)
            for ch in range(rng.randint(3, 7)):
                d.rectangle([x, y0 + bh // 4, x + bh // 5, y0 + 3 * bh // 4], fill=(0, 0, 0))
                x += bh // 3
            x += bh // 2
        return out, 90
    if kind == "logo":  # a 10 % logo in the bottom-right corner
        s = int(w * 0.10)
        x0, y0 = w - s - int(w * 0.02), h - s - int(h * 0.02)
        d.ellipse([x0, y0, x0 + s, y0 + s], fill=(240, 240, 240))
        d.rectangle([x0 + s // 4, y0 + s // 4, x0 + 3 * s // 4, y0 + 3 * s // 4], fill=(200, 30, 30))
        return out, 90
    raise ValueError(kind)


def gen(a):
    os.makedirs(a.dir, exist_ok=True)
    rng = random.Random(a.seed)
    rows = []
    for p in range(a.prompts):
        pal, lay = palette(rng), layout(rng)
        for k in range(a.distinct):
            base = f"p{p:03d}i{k}"
            img = render(a.side, pal, lay, rng)
            name = base + "-orig.jpg"
            img.save(os.path.join(a.dir, name), quality=95)
            rows.append((name, f"p{p:03d}", base, "orig"))
            for kind in KINDS:
                out, q = edit(img, kind, rng)
                name = f"{base}-{kind}.jpg"
                out.save(os.path.join(a.dir, name), quality=q)
                rows.append((name, f"p{p:03d}", base, kind))
    with open(os.path.join(a.dir, "manifest.tsv"), "w") as f:
        for r in rows:
            f.write("\t".join(r) + "\n")
    print(f"{len(rows)} images ({a.prompts} prompts x {a.distinct} distinct x "
          f"{len(KINDS) + 1} versions) in {a.dir}", file=sys.stderr)


def load_phash():
    """imagededup's PHash from its own hashing module. The packages
    imagededup.methods and imagededup.utils import torch (for the CNN method)
    in their __init__; they are registered here as bare packages over the
    installed folders so that the hash modules load without it."""
    spec = importlib.util.find_spec("imagededup")
    root = os.path.dirname(spec.origin)
    for sub in ("utils", "methods"):
        m = types.ModuleType("imagededup." + sub)
        m.__path__ = [os.path.join(root, sub)]
        sys.modules["imagededup." + sub] = m
    from imagededup.methods.hashing import PHash
    return PHash()


def peer(a):
    ph = load_phash()
    files = [line.split("\t")[0] for line in open(os.path.join(a.dir, "manifest.tsv"))]
    t0, c0 = time.time(), time.process_time()
    hashes = [ph.encode_image(image_file=os.path.join(a.dir, f)) for f in files]
    wall, cpu = time.time() - t0, time.process_time() - c0
    with open(os.path.join(a.dir, "peer.tsv"), "w") as f:
        for name, h in zip(files, hashes):
            f.write(f"{name}\t{h}\n")
    print(f"imagededup PHash: {len(files)} images, {len(files) / cpu:.0f} per CPU second "
          f"(wall {wall:.1f} s, 1 process)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    g = sp.add_parser("gen")
    g.add_argument("dir")
    g.add_argument("--prompts", type=int, default=24)
    g.add_argument("--distinct", type=int, default=3)
    g.add_argument("--side", type=int, default=1024)
    g.add_argument("--seed", type=int, default=1)
    q = sp.add_parser("peer")
    q.add_argument("dir")
    a = ap.parse_args()
    gen(a) if a.cmd == "gen" else peer(a)


if __name__ == "__main__":
    main()
