# lib_serve.sh: helpers the server's process tests share (sourced, not run).
# They read $port and $key from the test.

# in_fresh_dir DIR: DIR emptied and entered; the server of spid (and the
# pids in $more_pids) killed when the test exits
in_fresh_dir() {
    rm -rf "$1" && mkdir -p "$1" && cd "$1" || exit 1
    spid="" more_pids=""
    trap 'for p in $spid $more_pids; do kill -9 "$p" 2>/dev/null; done' EXIT
}

# small_shop SHELF: a generated shop in s.db (50 users, 40 items, 500 events)
small_shop() { "$1" gen --store s.db --users 50 --items 40 --events 500 --seed 5 --quiet > /dev/null 2>&1; }

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

# shop_with_bundle SHELF SEED: a generated shop in s.db (300 users, 200
# items, 6000 events) and an itemknn bundle of it in B; fails when either fails
shop_with_bundle() {
    "$1" gen --store s.db --users 300 --items 200 --events 6000 --seed "$2" --quiet >/dev/null 2>&1 &&
        "$1" train --model itemknn --bundle B --store s.db --quiet >/dev/null 2>&1 && test -s B/manifest.json
}

# serve_shop SHELF SEED: shop_with_bundle, a read key in $key and an admin
# key in $admin, and `SHELF serve` of them (spid, port; stdout in out.txt,
# stderr in err.txt); fails at the first step that fails
serve_shop() {
    shop_with_bundle "$1" "$2" || return 1
    key=$("$1" keys create --store s.db --scope read 2>/dev/null)
    admin=$("$1" keys create --store s.db --scope admin 2>/dev/null)
    [ -n "$key" ] && [ -n "$admin" ] || return 1
    serve_free_port "$1" out.txt err.txt --store s.db --bundle B --log-level warn
}

# serve_free_port SHELF OUT ERR ARG...: starts `SHELF serve ARG... --port 0`
# in the background with stdout in OUT and stderr in ERR; sets spid and port
# (empty, and fails, when no 'listening on' line came within 30 s)
serve_free_port() {
    local bin=$1 out=$2 err=$3 i
    shift 3
    : > "$out"
    "$bin" serve "$@" --port 0 > "$out" 2> "$err" &
    spid=$! port=""
    for ((i = 0; i < 300; i++)); do
        port=$(listening_port "$out")
        [ -n "$port" ] && return 0
        kill -0 "$spid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# call METHOD PATH KEY [BODYFILE]: $url PATH with the bearer KEY (and
# BODYFILE as a JSON body); the answer in ans.json, prints the status
call() {
    local body=()
    [ $# -ge 4 ] && body=(--data-binary "@$4" -H 'Content-Type: application/json')
    curl -sS --max-time 30 -o ans.json -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" "${body[@]}" "$url$2"
}
# js EXPR: a Python expression over the answer j (ans.json), printed
js() { python3 -c "import json,sys; j=json.load(open('ans.json')); print($1)"; }
