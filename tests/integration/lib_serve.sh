# lib_serve.sh: helpers the server's process tests share (sourced, not run).
# They read $port and $key from the test.

# post_events BODY: POSTs a JSON array of events to /v1/events; prints the
# HTTP status (000: no answer)
post_events() {
    curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$port/v1/events" <<<"$1" 2>/dev/null
}

# listening_port OUTFILE: the port of the 'listening on' line, if printed yet
listening_port() {
    sed -n 's|^shelf serve: listening on http://[0-9.]*:\([0-9][0-9]*\) .*|\1|p' "$1"
}

# need_tools TOOL...: fails the test at once when one is not installed
need_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "FAIL: $t is not installed (scripts/deps.sh)" >&2; exit 1; }
    done
}
