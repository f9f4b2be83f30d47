#!/usr/bin/env python3
"""Loads joust's DPO exports with Hugging Face `datasets`, as docs/export.md
says to, and checks columns, row counts and that the images decode.

Usage (the virtualenv's python, with datasets and pillow installed):
  dpo_datasets_check.py DIR N_PAIRS
DIR holds trl.jsonl, pickapic.jsonl, trl.tar and pickapic.tar, each an
export of the same N_PAIRS pairs. Prints one line per layout; exits 1 with
the reason on the first mismatch."""
import sys

from datasets import Image, load_dataset


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    # JSONL, TRL layout: DPOTrainer's prompt/chosen/rejected; paths cast to images
    ds = load_dataset("json", data_files=f"{d}/trl.jsonl", split="train")
    want = {"prompt", "chosen", "rejected", "chosen_id", "rejected_id", "margin", "p_chosen"}
    assert want <= set(ds.column_names), ds.column_names
    assert ds.num_rows == n, (ds.num_rows, n)
    img = ds.cast_column("chosen", Image()).cast_column("rejected", Image())[0]
    assert img["chosen"].size[0] > 0 and img["rejected"].size[0] > 0
    print(f"json trl: {ds.num_rows} rows, columns {sorted(ds.column_names)}; "
          f"chosen decodes to {img['chosen'].size} {img['chosen'].mode}")
    # JSONL, Pick-a-Pic layout
    ds = load_dataset("json", data_files=f"{d}/pickapic.jsonl", split="train")
    want = {"caption", "jpg_0", "jpg_1", "label_0", "label_1", "image_0_uid", "image_1_uid"}
    assert want <= set(ds.column_names), ds.column_names
    assert ds.num_rows == n, (ds.num_rows, n)
    assert all(a + b == 1 for a, b in zip(ds["label_0"], ds["label_1"]))
    img = ds.cast_column("jpg_0", Image())[0]["jpg_0"]
    print(f"json pickapic: {ds.num_rows} rows, columns {sorted(ds.column_names)}; "
          f"jpg_0 decodes to {img.size}")
    # WebDataset tars: members grouped by key, columns named by what follows it
    for layout, images in (("trl", ("chosen.png", "rejected.png")),
                           ("pickapic", ("jpg_0.png", "jpg_1.png"))):
        ds = load_dataset("webdataset", data_files={"train": f"{d}/{layout}.tar"}, split="train")
        assert {"__key__", "json", *images} <= set(ds.column_names), ds.column_names
        assert ds.num_rows == n, (layout, ds.num_rows, n)
        row = ds[0]
        assert isinstance(row["json"], dict) and ("prompt" in row["json"] or "caption" in row["json"])
        sizes = [row[c].size for c in images]  # decoded by datasets' webdataset builder
        assert all(w > 0 and h > 0 for w, h in sizes), sizes
        print(f"webdataset {layout}: {ds.num_rows} rows, columns {sorted(ds.column_names)}; "
              f"images decode to {sizes}")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAIL: {e!r}", file=sys.stderr)
        sys.exit(1)
