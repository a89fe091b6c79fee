#!/usr/bin/env bash
# test_serve_refuse.sh: `shelf serve` refuses values and texts it must not
# store (issue 15): an event value a float cannot hold, \u0000 (which cJSON
# would cut the string at), a raw NUL byte or invalid UTF-8 in any string,
# member name or path id of events, items and users. Each is a 400 naming the
# JSON path, and nothing of its batch is stored. Uses bash and curl only.
# Usage: test_serve_refuse.sh SHELF_BINARY TMPDIR
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib_serve.sh" || exit 1
shelf=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
pass=0 fail=0
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
need_tools curl python3

spid=""
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null' EXIT
"$shelf" init --store s.db >/dev/null 2>&1 || { echo "FAIL: shelf init" >&2; exit 1; }
serve_free_port "$shelf" out err --store s.db --no-auth --no-served-log --log-level warn ||
    { echo "FAIL: serve did not start: $(cat err)" >&2; exit 1; }

# req METHOD PATH BODYFILE: the answer's status, then its body, in $status and $answer
req() {
    answer=$(curl -sS --max-time 30 -X "$1" -H 'Content-Type: application/json' -w '\n%{http_code}' \
        --data-binary @"$3" "http://127.0.0.1:$port$2" 2>&1)
    status=${answer##*$'\n'}
    answer=${answer%$'\n'*}
}

# expect WHAT METHOD PATH BODY STATUS [TEXT]: BODY is printf's format (so \xff
# and \x00 are raw bytes; \\u0000 is the JSON escape)
expect() {
    local what=$1 m=$2 p=$3 body=$4 want=$5 text=${6:-}
    printf "$body" > body.json
    req "$m" "$p" body.json
    if [ "$status" != "$want" ]; then
        bad "$what: status $status, expected $want: $answer"
    elif [ -n "$text" ] && [[ "$answer" != *"$text"* ]]; then
        bad "$what: the answer lacks '$text': $answer"
    else
        pass=$((pass + 1))
    fi
}

# events USER: the count of the user's events (-1: unknown user)
events() {
    : > empty.json
    req GET "/v1/users/$1" empty.json
    if [ "$status" = 404 ]; then echo -1; return; fi
    sed -n 's/.*"events":\([0-9]*\).*/\1/p' <<<"$answer"
}

expect "an item" PUT /v1/items/i1 '{"title":"one"}' 200
expect "an event" POST /v1/events '{"user":"u1","item":"i1","value":2.5}' 200
expect "the float's largest" POST /v1/events '{"user":"u1","item":"i1","value":3.4e38}' 200
[ "$(events u1)" = 2 ] || bad "u1 has $(events u1) events, expected 2"

# ---- values a float cannot hold
expect "1e308 in a batch" POST /v1/events \
    '[{"user":"u1","item":"i1"},{"user":"u_new","item":"i1"},{"user":"u1","item":"i1","value":1e308}]' \
    400 '"message":"events[2].value: 1e+308 is beyond the range of a float'
expect "-1e39 wrapped" POST /v1/events '{"events":[{"user":"u1","item":"i1","value":-1e39}]}' 400 \
    'events[0].value: -1e+39 is beyond the range of a float'
expect "one event, 1e300" POST /v1/events '{"user":"u1","item":"i1","value":1e300}' 400 'event.value: '

# ---- \u0000 escapes, raw NUL bytes, invalid UTF-8
expect "NUL escape in a user" POST /v1/events '[{"user":"u1","item":"i1"},{"user":"ab\\u0000cd","item":"i1"}]' 400 \
    'events[1].user: NUL character (\\u0000) at byte offset 2'
expect "NUL escape in a type" POST /v1/events '{"user":"u1","item":"i1","type":"view\\u0000x"}' 400 \
    'event.type: NUL character'
expect "NUL escape in an item id" POST /v1/events '{"user":"u1","item":"i1\\u0000x"}' 400 'event.item: NUL character'
expect "NUL escape in a context" POST /v1/events '{"user":"u1","item":"i1","context":{"a":["\\u0000"]}}' 400 \
    'event.context.a[0]: NUL character'
expect "NUL escape in a rec_id" POST /v1/events '{"user":"u1","item":"i1","rec_id":"r\\u0000"}' 400 'event.rec_id: '
expect "invalid UTF-8 in a user" POST /v1/events '{"user":"u\xff","item":"i1"}' 400 \
    'event.user: invalid UTF-8 at byte offset 1 (0xff)'
expect "a raw NUL byte" POST /v1/events '{"user":"u\x001","item":"i1"}' 400 '"code":"bad_json"'
[ "$(events u1)" = 2 ] || bad "refused batches stored events: u1 has $(events u1), expected 2"
[ "$(events u_new)" = -1 ] || bad "a refused batch created its user u_new"
[ "$(events ab)" = -1 ] || bad "\\u0000 cut a user id to 'ab'"

expect "NUL escape in a title" PUT /v1/items/i2 '{"title":"a\\u0000b"}' 400 'item.title: NUL character'
expect "NUL escape in an attribute name" PUT /v1/items \
    '[{"id":"i3"},{"id":"i4","attributes":{"c\\u0000d":"e"}}]' 400 \
    'items[1].attributes: member name: NUL character (\\u0000) at byte offset 1'
expect "invalid UTF-8 in an attribute" PUT /v1/items '{"items":[{"id":"i5","attributes":{"c":"\xc0\xaf"}}]}' 400 \
    'items[0].attributes.c: invalid UTF-8 at byte offset 0 (0xc0)'
expect "NUL escape in an item id" PUT /v1/items '[{"id":"i6\\u0000"}]' 400 'items[0].id: NUL character'
expect "invalid UTF-8 in a path id" PUT /v1/items/i7%FF '{"title":"x"}' 400 \
    'the item id in the path: invalid UTF-8 at byte offset 2 (0xff)'
expect "NUL escape in a user attribute" PUT /v1/users/u2 '{"attributes":{"seg":"x\\u0000"}}' 400 \
    'user.attributes.seg: NUL character'
expect "invalid UTF-8 in a user path id" PUT /v1/users/u%E2%82 '{}' 400 'the user id in the path: invalid UTF-8'
# %00 in a path id: refused, not cut to "ab" (nor when written %2500: paths are decoded twice)
expect "%00 in a user path id" PUT /v1/users/ab%00cd '{}' 400 'the user id in the path: NUL character (%00) at byte offset 2'
expect "%2500 in an item path id" PUT /v1/items/ab%2500 '{"title":"x"}' 400 \
    'the item id in the path: NUL character (%00) at byte offset 2'
[ "$(events ab)" = -1 ] || bad "%00 cut a user id to 'ab'"
: > empty.json
req GET /v1/users/ab%00cd empty.json
[ "$status" = 400 ] && [[ "$answer" == *'the user id in the path: NUL character (%00) at byte offset 2'* ]] ||
    bad "GET of an id with %00: status $status, expected 400: $answer"
# no answer echoes bytes that are not text (a JSON reader refuses them)
: > empty.json
expect "GET of a path id with 0xff" GET '/v1/users/u%FF/recommendations' '' 400 \
    'the user id in the path: invalid UTF-8 at byte offset 1 (0xff)'
expect "DELETE of a path id with 0xff" DELETE '/v1/items/i%FF' '' 400 'the item id in the path: invalid UTF-8'
expect "a rating's item with 0xc0" GET '/v1/users/u1/ratings/i%C0' '' 400 'the item in the path: invalid UTF-8'
expect "an unknown path with 0xff" GET '/v1/nothing%FF' '' 404 'for a path that is not text: invalid UTF-8'
python3 -c "import sys; sys.stdin.buffer.read().decode('utf-8')" <<< "$answer" || bad "the 404 is not UTF-8"
for id in i2 i3 i4 i5 i6; do
    : > empty.json
    req GET "/v1/items/$id" empty.json
    [ "$status" = 404 ] || bad "refused item $id was stored (GET: $status)"
done
[ "$(events u2)" = -1 ] || bad "refused user u2 was stored"

# an escaped backslash before u0000 is text, not a NUL
expect "the text \\u0000" PUT /v1/items/i8 '{"title":"\\\\u0000 is text"}' 200
req GET /v1/items/i8 empty.json
[[ "$answer" == *'"title":"\\u0000 is text"'* ]] || bad "title of i8: $answer"

kill -0 "$spid" 2>/dev/null || bad "the server died"
echo "test_serve_refuse: $pass passed, $fail failed"
[ "$fail" = 0 ]
