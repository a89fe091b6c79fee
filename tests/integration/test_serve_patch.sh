#!/usr/bin/env bash
# test_serve_patch.sh: PATCH /v1/items/{id} and /v1/users/{id} change some
# fields and keep the rest (issue 21, item 6): a JSON merge patch (RFC 7386)
# of the record as GET shows it. Fields sent replace theirs, null clears
# one, attributes merge key by key, `created` is kept; an unknown id is 404
# and creates nothing; a bad value is 400 naming the field and changes
# nothing; a body that is not an object, or that patches the id, is 400; a
# read key is 403.
# Uses bash, curl and python3. Usage: test_serve_patch.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_check.sh" || exit 1
need_tools curl python3
in_fresh_dir "$dir"
small_shop "$shelf"
w=$("$shelf" keys create --store s.db --scope write 2>/dev/null)
ro=$("$shelf" keys create --store s.db --scope read 2>/dev/null)
serve_free_port "$shelf" out.txt err.txt --store s.db --log-level warn
check "serve starts ($(tail -2 err.txt | tr '\n' ' '))" test -n "$port"
url="http://127.0.0.1:$port"
body() { printf '%s' "$1" > body.json; }

body '{"title": "Red shoe", "price": 30, "brand": "Acme", "category": "shoes", "attributes": {"size": "42", "colour": "red"}}'
code=$(call PUT /v1/items/p1 "$w" body.json)
check "PUT an item ($code)" test "$code" = 200
code=$(call GET /v1/items/p1 "$w")
created=$(js 'j["created"]')
body '{"price": 25, "attributes": {"colour": null, "width": "wide"}}'
code=$(call PATCH /v1/items/p1 "$w" body.json)
check "PATCH price and attributes: 200 ($code $(cat ans.json))" test "$code" = 200
check "  the price changed, title, brand and category kept, attributes merged" test "$(js 'j["price"] == 25 and j["title"] == "Red shoe" and j["brand"] == "Acme" and j["category"] == "shoes" and j["attributes"] == {"size": "42", "width": "wide"}')" = True
check "  created kept ($created)" test "$(js "j['created'] == $created")" = True
body '{"brand": null, "available": false}'
code=$(call PATCH /v1/items/p1 "$w" body.json)
code=$(call GET /v1/items/p1 "$w")
check "null clears the brand, the rest stays (GET: $(cat ans.json))" test "$(js 'j["brand"] is None and j["available"] is False and j["price"] == 25 and j["title"] == "Red shoe"')" = True
body '{"price": "cheap"}'
code=$(call PATCH /v1/items/p1 "$w" body.json)
check "a bad value: 400 naming price ($code $(cat ans.json))" eval '[ "$code" = 400 ] && grep -q price ans.json'
code=$(call GET /v1/items/p1 "$w")
check "  and nothing changed" test "$(js 'j["price"] == 25')" = True
body '{"title": "Ghost"}'
code=$(call PATCH /v1/items/nope "$w" body.json)
check "an unknown item: 404 ($code)" test "$code" = 404
code=$(call GET /v1/items/nope "$w")
check "  and none was made ($code)" test "$code" = 404
# refused WANT KEY BODY WHAT: PATCH /v1/items/p1 with BODY under KEY is answered WANT
refused() {
    body "$3"
    local code
    code=$(call PATCH /v1/items/p1 "$2" body.json)
    check "$4: $1 ($code $(cat ans.json))" test "$code" = "$1"
}
refused 400 "$w" '[{"title": "x"}]' "a patch that is not an object"
refused 400 "$w" '{"id": "p2"}' "a patch of the id"
refused 403 "$ro" '{"title": "x"}' "a read key"

body '{"attributes": {"segment": "vip", "region": "eu"}}'
code=$(call PUT /v1/users/up1 "$w" body.json)
body '{"attributes": {"region": "us"}}'
code=$(call PATCH /v1/users/up1 "$w" body.json)
check "PATCH a user's attributes: merged ($code $(cat ans.json))" \
    test "$(js 'j["attributes"] == {"segment": "vip", "region": "us"}')" = True
code=$(call GET /v1/users/up1 "$w")
check "  as GET shows ($(cat ans.json))" test "$(js 'j["attributes"] == {"segment": "vip", "region": "us"}')" = True
kill -TERM "$spid"; wait "$spid"; spid=""
echo "$pass passed, $fail failed"
test "$fail" -eq 0
