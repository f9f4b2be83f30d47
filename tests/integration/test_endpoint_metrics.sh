#!/usr/bin/env bash
# Per-endpoint health in the workers' /metrics, scraped during a run:
# `joust run --judge openai --metrics PORT --workers 2` gives its local
# workers PORT+1 and PORT+2 and says so; three endpoints: one that answers,
# one whose first reply to each pair is a 500, and one where nothing
# listens. Every scrape parses (prom_check.py); in the last one each worker
# has, per endpoint label: the dead one down with no request, the others up
# with good answers, requests by result whose failures never exceed the 500s
# the flaky server sent (and some were seen), latency counted per request,
# and a last-success time inside the run. A bad --worker-metrics list is an
# error naming the option.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openai_lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
python3 "$FIXTURES/openai_images.py" "$WORK/set" 1 8 3 200704
standin_start good --max-pixels 200704 --always-delay-ms 40
standin_start flaky --max-pixels 200704 --always-delay-ms 40 --fault http500 --fault-times 1
dead=$(free_port)
cport=$(free_port_run 3)
export OPENAI_API_KEY=k
args=(--judge openai --endpoint "$SRV_URL_good" --endpoint "$SRV_URL_flaky"
      --endpoint "http://127.0.0.1:$dead/v1" --max-pixels 200704 --inflight 4 --no-progress)
out=$("$JOUST" run "$WORK/set/manifest.jsonl" --db "$WORK/db0" "${args[@]}" --workers 2 \
      --worker-metrics "127.0.0.1:1" 2>&1) && fail "a one-address list for 2 workers was accepted"
echo "$out" | grep -q -- "--worker-metrics lists 1 addresses for 2 local workers" \
    || { echo "$out"; fail "the error does not name --worker-metrics"; }
t0=$(date +%s)
"$JOUST" run "$WORK/set/manifest.jsonl" --db "$WORK/db" --out "$WORK/out" "${args[@]}" \
    --workers 2 --metrics "127.0.0.1:$cport" > "$WORK/run.out" 2> "$WORK/run.err" &
RUN=$!
PIDS+=($RUN)
mkdir -p "$WORK/scrapes"
i=0
while kill -0 $RUN 2>/dev/null; do
    i=$((i + 1))
    for w in 1 2; do
        f="$WORK/scrapes/w$w-$(printf %04d $i)"
        curl -sf "http://127.0.0.1:$((cport + w))/metrics" > "$f" 2>/dev/null || rm -f "$f"
    done
    sleep 0.1
    [ $i -lt 1500 ] || fail "the run took too long"
done
st=0
wait $RUN || st=$?
t1=$(date +%s)
[ $st = 0 ] || { cat "$WORK/run.err"; fail "the run exited $st"; }
for w in 1 2; do
    grep -q "metrics: local worker local-$w serves http://127.0.0.1:$((cport + w))/metrics" \
        "$WORK/run.out" || { cat "$WORK/run.out"; fail "where worker $w serves is not said"; }
done
faults=$(standin_get "$SRV_PORT_flaky" faults)
PYTHONPATH="$HERE" python3 - "$WORK/scrapes" "$SRV_URL_good" "$SRV_URL_flaky" \
    "http://127.0.0.1:$dead/v1" "$faults" "$t0" "$t1" <<'PY' || fail "endpoint metrics"
import glob, os, sys
from prom_check import parse, value
d, good, flaky, dead = sys.argv[1:5]
faults, t0, t1 = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
failed_total = 0
for w in (1, 2):
    files = sorted(glob.glob(os.path.join(d, f"w{w}-*")))
    assert len(files) >= 3, f"worker {w}: only {len(files)} scrapes"
    snaps = [parse(open(p).read()) for p in files]  # each one parses
    last = snaps[-1]
    V = lambda name, ep, **kw: value(last, name, endpoint=ep, **kw)
    assert V("joust_worker_endpoint_up", dead) == 0, "the dead endpoint is not down"
    assert V("joust_worker_endpoint_requests_total", dead, result="ok") == 0
    assert V("joust_worker_endpoint_requests_total", dead, result="failed") == 0
    assert V("joust_worker_endpoint_last_success_timestamp_seconds", dead) == 0
    for ep in (good, flaky):
        ok = V("joust_worker_endpoint_requests_total", ep, result="ok")
        bad = V("joust_worker_endpoint_requests_total", ep, result="failed")
        assert ok > 0, (w, ep, "no good answer")
        assert V("joust_worker_endpoint_up", ep) == 1, (w, ep, "not up")
        assert V("joust_worker_endpoint_request_seconds_count", ep) == ok + bad, (w, ep)
        # the stand-ins answer after 40 ms: no request is faster
        assert V("joust_worker_endpoint_request_seconds_bucket", ep, le="0.025") == 0, (w, ep)
        ts = V("joust_worker_endpoint_last_success_timestamp_seconds", ep)
        assert t0 <= ts <= t1, (w, ep, ts, t0, t1)
        if ep == good:
            assert bad == 0, (w, "the good endpoint failed", bad)
        else:
            failed_total += bad
    print(f"worker {w}: {len(snaps)} scrapes")
assert 0 < failed_total <= faults, (failed_total, faults)
print(f"flaky endpoint: {failed_total} failures seen of the {faults} 500s it sent")
PY
echo "test_endpoint_metrics: ok"
