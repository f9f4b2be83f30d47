#!/usr/bin/env bash
# --metrics: a coordinator and a worker each serve Prometheus text at
# /metrics on their own port. Scraped (curl) every 0.2 s during a run with
# the sim judge and parsed by prom_check.py: the format is valid (HELP/TYPE,
# histograms with cumulative buckets, +Inf, _sum, _count), counters never
# fall between scrapes and rise during the run, and the last scrape's done
# count equals the run's matches. A bad --metrics address is an error that
# names the option. Every metric cluster/grafana-dashboard.json queries
# is served.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
sim_manifest "$WORK/m.jsonl" 10 4
port=$(free_port); cport=$(free_port); wport=$(free_port)
ep="tcp://127.0.0.1:$port"
out=$("$JOUST" worker --connect "$ep" --judge sim --metrics 127.0.0.1:99999 2>&1) && fail "a bad port was accepted"
echo "$out" | grep -q -- "--metrics" || { echo "$out"; fail "the error does not name --metrics"; }
"$JOUST" coordinator "$WORK/m.jsonl" --db "$WORK/db" --bind "$ep" --judge sim --out "$WORK/out" \
    --no-progress --metrics "$cport" > "$WORK/coord.log" 2>&1 &
coord=$!; PIDS+=($coord)
"$JOUST" worker --connect "$ep" --judge sim --slots 4 --sim-latency-ms 100 --name w1 \
    --metrics "127.0.0.1:$wport" > "$WORK/w1.log" 2>&1 &
worker=$!; PIDS+=($worker)
mkdir -p "$WORK/scrapes"
i=0
while kill -0 "$coord" 2>/dev/null; do
    i=$((i + 1))
    curl -sf "http://127.0.0.1:$cport/metrics" > "$WORK/scrapes/c$(printf %04d $i)" 2>/dev/null ||
        rm -f "$WORK/scrapes/c$(printf %04d $i)"
    curl -sf "http://127.0.0.1:$wport/metrics" > "$WORK/scrapes/w$(printf %04d $i)" 2>/dev/null ||
        rm -f "$WORK/scrapes/w$(printf %04d $i)"
    if [ $i = 3 ]; then
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$cport/nope") || true
        [ "$code" = 404 ] || fail "an unknown path answered $code, not 404"
    fi
    sleep 0.2
    [ $i -lt 600 ] || fail "the run took too long"
done
wait_for "$coord" 5 || { cat "$WORK/coord.log"; fail "coordinator failed"; }
wait_for "$worker" 20 || { cat "$WORK/w1.log"; fail "worker failed"; }
grep -q "metrics: serving /metrics on port $cport" "$WORK/coord.log" || fail "coordinator log"
# 10 prompts x C(4,2) pairs x 2 orders
PYTHONPATH="$HERE" python3 - "$WORK/scrapes" 120 "$HERE/../../cluster/grafana-dashboard.json" <<'PY' || fail "metrics check"
import glob, json, os, re, sys
from prom_check import parse, value
d, total = sys.argv[1], int(sys.argv[2])
# Every metric the Grafana dashboard queries is served.
served = set()
for p in glob.glob(os.path.join(d, "*")):
    for name, fam in parse(open(p).read()).items():
        served |= {s for (s, _) in fam["samples"]}
for panel in json.load(open(sys.argv[3]))["panels"]:
    for t in panel["targets"]:
        for name in re.findall(r"joust_[a-z_]+", t["expr"]):
            assert name in served, f"dashboard panel {panel['title']!r} queries {name}, not served"
def done(f, prefix):
    fam = f.get(prefix + "_results_total", {"samples": {}})
    return sum(v for (s, lab), v in fam["samples"].items())
for who, prefix in (("c", "joust_coord"), ("w", "joust_worker")):
    files = sorted(glob.glob(os.path.join(d, who + "*")))
    assert len(files) >= 5, f"{who}: only {len(files)} scrapes"
    snaps = [parse(open(p).read()) for p in files]
    for a, b in zip(snaps, snaps[1:]):
        for name, fam in a.items():
            if fam["type"] in ("counter", "histogram"):
                for key, v in fam["samples"].items():
                    if not key[0].endswith("_sum"):
                        assert b[name]["samples"][key] >= v, (name, key, v)
    counts = [done(s, prefix) for s in snaps]
    assert counts[0] < counts[-1], f"{who}: done never rose: {counts}"
    assert len(set(counts)) >= 3, f"{who}: too few distinct counts during the run: {counts}"
    last = snaps[-1]
    lat = value(last, prefix + "_judge_latency_seconds_count")
    assert lat == done(last, prefix), (lat, done(last, prefix))
    # the sim judge answers after 100 ms
    assert value(last, prefix + "_judge_latency_seconds_bucket", le="0.05") == 0
    assert value(last, prefix + "_judge_latency_seconds_bucket", le="0.25") == lat
    print(who, "scrapes", len(snaps), "done", counts[0], "->", counts[-1])
    if who == "c":
        assert counts[-1] == total, f"final done {counts[-1]} != {total}"
        assert value(last, "joust_coord_results_total", status="ok") == total
        assert value(last, "joust_coord_matches_planned_total") == total
        assert max(value(s, "joust_coord_workers_connected") for s in snaps) == 1
        assert max(value(s, "joust_coord_matches_in_flight") for s in snaps) >= 1
        assert max(value(s, "joust_coord_queue_depth") for s in snaps) >= 1
        assert value(last, "joust_coord_store_commit_seconds_count") >= 1
        assert value(last, "joust_coord_queue_depth") == 0
    else:
        # the worker exits right after the run completes: its last scrape
        # may miss the final results
        assert 0 < counts[-1] <= total, counts[-1]
        assert max(value(s, "joust_worker_matches_in_judge") for s in snaps) >= 1
        assert value(last, "joust_worker_judge_available") == 1
PY
grep -q "metrics: serving /metrics on port $wport" "$WORK/w1.log" || fail "worker log"
echo "1 passed, 0 failed"
