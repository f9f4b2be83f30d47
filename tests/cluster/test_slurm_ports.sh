#!/usr/bin/env bash
# cluster/slurm/joust-worker.sbatch without Slurm: two array tasks on one
# node at once (both SLURM_LOCALID=0, as array tasks are), with stand-ins
# for vllm (an HTTP server on the port it is given that says which task
# started it), srun (runs its command) and joust (asks its --endpoint who
# it is). Each task must get a vLLM on a port of its own, wait for its
# health, point its worker at its own vLLM, retry on another port when vLLM
# dies at start (as when another process took the port), and leave no vLLM
# running when it ends.
set -euo pipefail
SRC=${1:?source dir}
W=$(mktemp -d /tmp/joust-slurm.XXXXXX)
trap 'for f in "$W"/vllm-*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$W"/task-*.log; do echo "== $f"; cat "$f"; done >&2; exit 1; }
mkdir "$W/bin"

cat > "$W/bin/vllm" <<'PY'
#!/usr/bin/env python3
# stand-in: vllm serve MODEL --port P ...; dies at once on the first start
# of a task whose DIE_FIRST is set (a port taken between choice and bind)
import http.server, os, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
task = os.environ["SLURM_ARRAY_TASK_ID"]
marker = os.path.join(os.environ["W"], f"died-{task}")
if os.environ.get("DIE_FIRST") and not os.path.exists(marker):
    open(marker, "w").close()
    sys.exit(1)
with open(os.path.join(os.environ["W"], f"vllm-{task}-{port}.pid"), "w") as f:
    f.write(str(os.getpid()))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (task if self.path == "/whoami" else "ok").encode()
        self.send_response(200 if self.path in ("/health", "/whoami") else 404)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
cat > "$W/bin/srun" <<'SH'
#!/usr/bin/env bash
while [ "${1:-}" != joust ]; do shift; done
exec "$@"
SH
cat > "$W/bin/joust" <<'SH'
#!/usr/bin/env bash
# stand-in worker: records its arguments and asks its endpoint who it is
printf '%s\n' "$@" > "$W/joust-$SLURM_ARRAY_TASK_ID.args"
while [ $# -gt 0 ] && [ "$1" != --endpoint ]; do shift; done
curl -fsS "${2%/v1}/whoami" > "$W/whoami-$SLURM_ARRAY_TASK_ID"
SH
chmod +x "$W/bin/"*

run_task() { # run_task ID [DIE_FIRST]
    env PATH="$W/bin:$PATH" W="$W" SLURM_ARRAY_TASK_ID="$1" SLURM_ARRAY_JOB_ID=77 SLURM_JOB_ID=$((77 + $1)) \
        SLURM_LOCALID=0 COORD=tcp://127.0.0.1:1 DIE_FIRST="${2:-}" HOME="$W" \
        bash "$SRC/cluster/slurm/joust-worker.sbatch" > "$W/task-$1.log" 2>&1
}
run_task 0 & t0=$!
run_task 1 die & t1=$!
wait "$t0" || fail "task 0 failed"
wait "$t1" || fail "task 1 failed"

for t in 0 1; do
    [ "$(cat "$W/whoami-$t" 2>/dev/null)" = "$t" ] || fail "task $t's worker did not reach its own vLLM"
    grep -qx -- "--endpoint" "$W/joust-$t.args" || fail "task $t: no --endpoint"
done
p0=$(grep -A1 -x -- --endpoint "$W/joust-0.args" | tail -1)
p1=$(grep -A1 -x -- --endpoint "$W/joust-1.args" | tail -1)
[ "$p0" != "$p1" ] || fail "both tasks use $p0"
grep -q "vLLM exited while loading on port" "$W/task-1.log" || fail "task 1 did not see its first vLLM die"
grep -q "(try 2)" "$W/task-1.log" || fail "task 1 did not try another port"
for f in "$W"/vllm-*.pid; do
    ! kill -0 "$(cat "$f")" 2>/dev/null || fail "a vLLM ($f) still runs after its task ended"
done
echo "endpoints: $p0 $p1"
echo "1 passed, 0 failed"
