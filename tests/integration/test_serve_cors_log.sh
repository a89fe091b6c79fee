#!/usr/bin/env bash
# test_serve_cors_log.sh: a shop's web page calls shelf from the browser
# (issue 21, item 8). With --cors-origins, an allowed origin gets
# Access-Control-Allow-Origin on every answer (ranked ones too, which the
# compute workers make) and its OPTIONS preflight is answered 204 without a
# key, naming the methods and headers it may send; another origin gets no
# such header. Without the option nothing changes (OPTIONS is 405). With
# --access-log, every request is one JSON line (time, method, route, status,
# ms, the key's id), and the key itself is never written.
# Uses bash, curl, sqlite3 and python3. Usage: test_serve_cors_log.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_check.sh" || exit 1
need_tools curl python3 sqlite3
in_fresh_dir "$dir"
check "a shop and its bundle" shop_with_bundle "$shelf" 13
key=$("$shelf" keys create --store s.db --scope read --name web 2>/dev/null)
key_id=$(sqlite3 s.db "SELECT id FROM api_keys WHERE name = 'web'" 2>/dev/null)
serve_free_port "$shelf" out.txt err.txt --store s.db --bundle B --log-level warn \
    --cors-origins 'https://shop.example, https://m.shop.example' --access-log access.jsonl
check "serve starts ($(tail -2 err.txt | tr '\n' ' '))" test -n "$port"
url="http://127.0.0.1:$port"
# head NAME FILE: the value of header NAME in a curl -D dump
head_of() { sed -n "s/^$1: *\([^\r]*\).*/\1/Ip" "$2" | head -1; }

code=$(curl -sS -o /dev/null -D h1.txt -w '%{http_code}' -H 'Origin: https://shop.example' "$url/v1/health")
check "an allowed origin: Access-Control-Allow-Origin on health ($code)" \
    test "$code" = 200 -a "$(head_of Access-Control-Allow-Origin h1.txt)" = https://shop.example
check "  and Vary: Origin" test "$(head_of Vary h1.txt)" = Origin
code=$(curl -sS -o /dev/null -D h2.txt -w '%{http_code}' -H 'Origin: https://m.shop.example' \
    -H "Authorization: Bearer $key" "$url/v1/users/u1/recommendations?n=3")
check "the second origin, on a ranked answer ($code)" \
    test "$code" = 200 -a "$(head_of Access-Control-Allow-Origin h2.txt)" = https://m.shop.example
code=$(curl -sS -o /dev/null -D h3.txt -w '%{http_code}' -H 'Origin: https://evil.example' "$url/v1/health")
check "another origin: no Access-Control-Allow-Origin ($code)" \
    eval '[ "$code" = 200 ] && ! grep -qi "^Access-Control-Allow-Origin" h3.txt'
code=$(curl -sS -o /dev/null -D h4.txt -w '%{http_code}' -X OPTIONS -H 'Origin: https://shop.example' \
    -H 'Access-Control-Request-Method: GET' -H 'Access-Control-Request-Headers: authorization' \
    "$url/v1/users/u1/recommendations")
check "a preflight without a key: 204 ($code)" test "$code" = 204
check "  naming the origin, GET and Authorization" eval \
    '[ "$(head_of Access-Control-Allow-Origin h4.txt)" = https://shop.example ] &&
     head_of Access-Control-Allow-Methods h4.txt | grep -q GET &&
     head_of Access-Control-Allow-Headers h4.txt | grep -qi authorization'
code=$(curl -sS -o /dev/null -D h5.txt -w '%{http_code}' -X OPTIONS -H 'Origin: https://evil.example' \
    -H 'Access-Control-Request-Method: GET' "$url/v1/users/u1/recommendations")
check "another origin's preflight: no Access-Control-Allow-Origin ($code)" \
    eval '[ "$code" = 204 ] && ! grep -qi "^Access-Control-Allow-Origin" h5.txt'
code=$(curl -sS -o /dev/null -w '%{http_code}' "$url/v1/users/u1/recommendations?n=3")
check "CORS is no key: without one, 401 ($code)" test "$code" = 401
kill -TERM "$spid"; wait "$spid"; spid=""

check "the access log: one line per request (6: $(wc -l < access.jsonl))" test "$(wc -l < access.jsonl)" = 6
check "each line JSON with time, method, route, status, ms and the key's id" python3 - "$key_id" <<'PY'
import json, sys
key_id = int(sys.argv[1])
rows = [json.loads(l) for l in open("access.jsonl")]
want = [("GET", "health", 200, None), ("GET", "recommendations", 200, key_id), ("GET", "health", 200, None),
        ("OPTIONS", "other", 204, None), ("OPTIONS", "other", 204, None), ("GET", "recommendations", 401, None)]
got = [(r["method"], r["route"], r["status"], r["key"]) for r in rows]
ok = got == want and all(set(r) >= {"time", "method", "route", "status", "ms", "key"} and r["time"].endswith("Z")
                         and r["ms"] >= 0 for r in rows)
if not ok: print(got, file=sys.stderr)
sys.exit(not ok)
PY
check "the key itself is never written" eval '! grep -qF "$key" access.jsonl'

# without --cors-origins: nothing changes
serve_free_port "$shelf" out2.txt err2.txt --store s.db --bundle B --log-level warn
url2="http://127.0.0.1:$port"
code=$(curl -sS -o /dev/null -D h6.txt -w '%{http_code}' -H 'Origin: https://shop.example' "$url2/v1/health")
check "no CORS option: no Access-Control-Allow-Origin ($code)" \
    eval '[ "$code" = 200 ] && ! grep -qi "^Access-Control-Allow-Origin" h6.txt'
code=$(curl -sS -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: https://shop.example' "$url2/v1/health")
check "  and OPTIONS stays 405 ($code)" test "$code" = 405
kill -TERM "$spid"; wait "$spid"; spid=""
echo "$pass passed, $fail failed"
test "$fail" -eq 0
