# lib_attack.sh: what the server's hardening tests share (sourced after
# lib_serve.sh, not run): the tally, the hostile clients of http_attack.py,
# a small shop with a server on it, and the closing checks.

# enter_test SHELF TMPDIR: sets shelf, and works in a fresh TMPDIR
enter_test() {
    shelf=$1
    rm -rf "$2" && mkdir -p "$2" && cd "$2" || exit 1
}

. "$(dirname "${BASH_SOURCE[0]}")/lib_check.sh"
# runs from the tests' folder; sourcing scripts cd into their TMPDIR after
attack_py=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/http_attack.py
attack() { /usr/bin/python3 "$attack_py" "$@"; }
# field JSON NAME: a top-level field of a one-line JSON object
field() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d.get(sys.argv[2], 0))' "$1" "$2"; }
# less A B: A < B for decimal numbers
less() { /usr/bin/python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))' "$1" "$2"; }

# shop_server SHELF SCOPE ARG...: a generated shop in s.db (100 users, 50
# items), a key of SCOPE in $key, and `SHELF serve --store s.db ARG...` on a
# free port ($spid, $port, killed on exit); exits the test when one fails
shop_server() {
    local bin=$1 scope=$2
    shift 2
    spid=""
    trap '[ -n "$spid" ] && kill -9 "$spid" 2>/dev/null' EXIT
    "$bin" gen --store s.db --users 100 --items 50 --events 1000 --seed 3 --quiet >/dev/null 2>&1 ||
        { echo "FAIL: shelf gen"; exit 1; }
    key=$("$bin" keys create --scope "$scope" --store s.db 2>/dev/null)
    serve_free_port "$bin" out err --store s.db --log-level warn "$@" ||
        { echo "FAIL: serve did not start: $(cat err)"; exit 1; }
}

# finish: the server is still up and said nothing of a sanitizer; the tally
# and the test's exit status
finish() {
    check "the server is still up" kill -0 "$spid"
    local r
    r=$(grep -hE 'Sanitizer|runtime error' err | head -3 | tr '\n' '|')
    check "no sanitizer report: [$r]" test -z "$r"
    echo "$pass passed, $fail failed"
    test "$fail" -eq 0
}
