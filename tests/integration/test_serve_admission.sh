#!/usr/bin/env bash
# test_serve_admission.sh: `shelf serve` judges a request on its head before
# reading its body (issue 15, findings 1 and 5): 60 parallel 15 MiB uploads
# without a key are refused at once and the server's resident memory stays
# small; with a key, bodies held at once stay within --body-memory (503 past
# it); two Content-Length headers, or a length beside chunks, are 400; a JSON
# body with anything after its value is 400. Uses bash, curl and python3.
# Usage: test_serve_admission.sh SHELF_BINARY TMPDIR
set -uo pipefail
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_attack.sh" || exit 1
enter_test "$@"
need_tools curl /usr/bin/python3
shop_server "$shelf" write --body-memory 64
statuses() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["statuses"].get(sys.argv[2], 0))' "$1" "$2"; }
# sanitizer builds carry shadow memory and quarantines: only the growth is bounded there
sanitized=${SHELF_TEST_CFLAGS:+1}

# ---- finding 1: bodies are not buffered before auth
# flood_rss WHAT RESULT GROWTH_KB: resident memory grew by under GROWTH_KB, and stayed under 200 MB
flood_rss() {
    local base peak
    base=$(field "$2" base_rss_kb) peak=$(field "$2" peak_rss_kb)
    check "$1: resident memory grew by under $3 kB (from $base to $peak kB)" test $((peak - base)) -lt "$3"
    [ -n "$sanitized" ] || check "$1: resident memory under 200 MB ($peak kB)" test "$peak" -lt 204800
}
r=$(attack flood "$port" "$spid" 60 $((15 << 20)))
echo "without a key: $r"
check "60 uploads without a key: all 401 ($r)" test "$(statuses "$r" 401)" -eq 60
flood_rss "without a key" "$r" 40000

r=$(attack flood "$port" "$spid" 60 $((15 << 20)) "$key")
echo "with a key: $r"
busy=$(statuses "$r" 503) bad_json=$(statuses "$r" 400)
check "with a key: every upload answered, 400 (read, not JSON) or 503 (no room) ($r)" \
    test $((busy + bad_json)) -eq 60
check "with a key: at most 4 bodies of 15 MiB in 64 MiB at once, so some 503 ($busy)" test "$busy" -ge 56
flood_rss "with a key" "$r" 122880
held=$(curl -s "http://127.0.0.1:$port/metrics" | sed -n 's/^shelf_request_body_bytes //p')
check "no body bytes held after the uploads ($held)" test "$held" = 0
big=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -H 'Content-Length: 17000000' -X POST --data-binary '[]' "http://127.0.0.1:$port/v1/events" 2>/dev/null)
check "a declared length over --max-body is 413 on the head ($big)" test "$big" = 413

# ---- finding 5: request smuggling shapes
# raw_events HEADERS BODY: POST /v1/events with the key, HEADERS and BODY as
# given (printf %b: \r\n, \0); the answer's status
raw_events() {
    printf 'POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n%b\r\n%b' \
        "$key" "$1" "$2" | attack raw "$port" | sed 's/[^0-9]//g'
}
body='[{"user":"u1","item":"i1","type":"view"}]'
n=${#body}
chunked=$(printf '%x\\r\\n%s\\r\\n0\\r\\n\\r\\n' "$n" "$body")
# what|headers|body|status
while IFS='|' read -r what hdr b want; do
    st=$(raw_events "$hdr" "$b")
    check "$what: $want ($st)" test "$st" = "$want"
done <<EOF
two equal Content-Length headers|Content-Length: $n\r\nContent-Length: $n\r\n|$body|400
two different Content-Length headers|Content-Length: $n\r\nContent-Length: 2\r\n|$body|400
Content-Length beside Transfer-Encoding|Content-Length: $n\r\nTransfer-Encoding: chunked\r\n|$chunked|400
one Content-Length|Content-Length: $n\r\n|$body|200
a chunked body|Transfer-Encoding: chunked\r\n|$chunked|200
a NUL and bytes after the JSON value|Content-Length: $((n + 2))\r\n|$body\0x|400
EOF

post() {
    curl -sS -o resp.json -w '%{http_code}' -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        --data-binary "$2" "http://127.0.0.1:$port$1" 2>/dev/null
}
st=$(post /v1/events "$body x")
check "events: bytes after the JSON value: 400 ($st)" test "$st" = 400
check "events: the message says so" grep -q "after its JSON value" resp.json
st=$(post /v1/events "$body$body")
check "events: two JSON values: 400 ($st)" test "$st" = 400
st=$(post /v1/recommendations '{"user":"u1"} {"user":"u2"}')
check "recommendations: two JSON values: 400 ($st)" test "$st" = 400
st=$(post /v1/events "$(printf '%s\n\t ' "$body")")
check "events: white space after the value is fine: 200 ($st)" test "$st" = 200
finish
