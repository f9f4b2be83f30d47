# Helpers for the openai judge's integration tests (source after lib.sh):
# the stand-in OpenAI-compatible server of tests/fixtures.
FIXTURES="$(cd "$(dirname "${BASH_SOURCE[0]}")/../fixtures" && pwd)"

# standin_start NAME [server options...]: starts a server; sets
# SRV_URL_<NAME> (base URL, .../v1) and SRV_PORT_<NAME>.
standin_start() {
    local name=$1 i port
    shift
    rm -f "$WORK/port.$name"
    python3 "$FIXTURES/openai_server.py" --port-file "$WORK/port.$name" "$@" \
        > "$WORK/standin-$name.log" 2>&1 &
    PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        [ -s "$WORK/port.$name" ] && break
        sleep 0.05
    done
    [ -s "$WORK/port.$name" ] || { cat "$WORK/standin-$name.log"; fail "stand-in server $name did not start"; }
    port=$(cat "$WORK/port.$name")
    printf -v "SRV_PORT_$name" '%s' "$port"
    printf -v "SRV_URL_$name" 'http://127.0.0.1:%s/v1' "$port"
}

# standin_get PORT FIELD: one field of the server's /_stats.
standin_get() {
    python3 -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen("http://127.0.0.1:%s/_stats" % sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# standin_fault PORT FAULT TIMES [DELAY_MS]: switches the fault mode (and
# forgets which image pairs it has seen).
standin_fault() {
    python3 -c 'import json, sys, urllib.request
body = json.dumps({"fault": sys.argv[2], "times": int(sys.argv[3]), "delay_ms": int(sys.argv[4]),
                   "retry_after": 1}).encode()
urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%s/_control" % sys.argv[1], body))' \
        "$1" "$2" "$3" "${4:-0}" > /dev/null
}

# json_get FILE FIELD: one field of a JSON object in a file.
json_get() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
