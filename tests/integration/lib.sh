# Helpers for the integration tests: real joust processes on 127.0.0.1.
set -euo pipefail
JOUST=${JOUST:?path to the joust binary}
WORK=$(mktemp -d /tmp/joust-it.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# A free TCP port on 127.0.0.1 (asks the kernel, then releases it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The first of $1 consecutive free TCP ports on 127.0.0.1, for options that
# derive ports (`--metrics P` gives local worker N the port P+N). Drawn below
# the kernel's ephemeral range, where a neighbour of a kernel-chosen port can
# be taken by any outgoing connection between this check and the bind.
free_port_run() {
    python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    base = random.randrange(10000, lo - n)
    held = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in held:
            s.close()
    print(base)
    sys.exit(0)
sys.exit("no run of free ports")
PY
}

# Writes a manifest of P prompts x K images with latent utilities.
sim_manifest() {
    local out=$1 prompts=$2 per=$3 seed=${4:-7}
    python3 - "$out" "$prompts" "$per" "$seed" <<'PY'
import json, random, sys
out, prompts, per, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
with open(out, "w") as f:
    for p in range(prompts):
        for k in range(per):
            f.write(json.dumps({"image": f"img/p{p}_{k}.png", "prompt": f"prompt number {p}",
                                "model": f"model-{k % 3}", "id": f"p{p}_{k}",
                                "latent": round(rng.gauss(0, 2), 4)}) + "\n")
PY
}

# Waits up to $2 seconds for pid $1 to exit; returns its status.
wait_for() {
    local pid=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; return $?; fi
        sleep 0.1
    done
    fail "process $pid still running after ${secs}s"
}
