#!/usr/bin/env python3
"""Parses Prometheus text exposition (format 0.0.4) strictly enough to catch
what a scraper rejects: every sample belongs to a family announced by HELP
and TYPE lines, names and labels are well-formed, values are numbers,
counters never go negative, and each histogram series has cumulative
_bucket lines ending in le="+Inf" with _count equal to that bucket and a
_sum. Usage as a module: parse(text) -> {name: {"type":..., "samples":
{(sample_name, labels_tuple): value}}}; raises ValueError naming the line."""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"'
SAMPLE = re.compile(r"^(" + NAME + r")(?:\{(.*)\})? (\S+)$")


def parse(text):
    fams, helps = {}, set()
    current = None
    for n, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            if not re.fullmatch(NAME, name) or name in helps:
                raise ValueError(f"line {n}: bad or repeated HELP: {line}")
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                raise ValueError(f"line {n}: bad TYPE: {line}")
            if parts[2] in fams:
                raise ValueError(f"line {n}: TYPE repeated for {parts[2]}")
            if parts[2] not in helps:
                raise ValueError(f"line {n}: TYPE without HELP for {parts[2]}")
            current = parts[2]
            fams[current] = {"type": parts[3], "samples": {}}
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f"line {n}: not a sample: {line}")
        sname, labels, value = m.group(1), m.group(2) or "", m.group(3)
        fam = current
        if fam is None or not (sname == fam or (fams[fam]["type"] == "histogram" and sname in (
                fam + "_bucket", fam + "_sum", fam + "_count"))):
            raise ValueError(f"line {n}: sample {sname} outside its family (after {fam})")
        pairs = re.findall(LABEL, labels)
        if labels and ",".join(f'{k}="{v}"' for k, v in pairs) != labels:
            raise ValueError(f"line {n}: bad labels: {labels}")
        v = float(value)  # accepts +Inf, NaN
        if fams[fam]["type"] == "counter" and (v < 0 or math.isnan(v)):
            raise ValueError(f"line {n}: counter below 0: {line}")
        fams[fam]["samples"][(sname, tuple(pairs))] = v
    for name, fam in fams.items():
        if fam["type"] != "histogram":
            continue
        series = {}
        for (sname, labels), v in fam["samples"].items():
            base = tuple(kv for kv in labels if kv[0] != "le")
            s = series.setdefault(base, {"buckets": []})
            if sname.endswith("_bucket"):
                le = dict(labels).get("le")
                if le is None:
                    raise ValueError(f"{name}: bucket without le")
                s["buckets"].append((float(le), v))
            else:
                s[sname[len(name):]] = v
        for base, s in series.items():
            b = sorted(s["buckets"])
            if not b or b[-1][0] != math.inf:
                raise ValueError(f"{name}{base}: no le=\"+Inf\" bucket")
            if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
                raise ValueError(f"{name}{base}: buckets not cumulative")
            if "_count" not in s or "_sum" not in s or s["_count"] != b[-1][1]:
                raise ValueError(f"{name}{base}: _count/_sum missing or _count != +Inf bucket")
    return fams


def value(fams, name, **labels):
    """The sample's value (0 when absent)."""
    fam = fams.get(name) or fams.get(re.sub(r"_(bucket|sum|count)$", "", name))
    if not fam:
        return 0.0
    want = tuple(sorted(labels.items()))
    for (sname, lab), v in fam["samples"].items():
        if sname == name and tuple(sorted(lab)) == want:
            return v
    return 0.0


if __name__ == "__main__":
    parse(open(sys.argv[1]).read())
