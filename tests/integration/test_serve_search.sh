#!/usr/bin/env bash
# test_serve_search.sh: POST /v1/search and `shelf search` (docs/search.md).
# FAQ and product items with Chinese and English text and events of two
# shoppers with different histories (A viewed shoes, B kitchenware; other
# shoppers viewed each category's FAQ with its products) are put over HTTP;
# an itemknn bundle is trained; then: a Chinese query finds the FAQ items
# (snippet marked), the same query answers A and B in different orders (each
# its own category's FAQ first) while no user or an unknown one gets the
# text order; the kind filter, a short query (the scan), an English query,
# FTS syntax in a query; bad bodies get 400 naming the field; a key is
# needed; the CLI answers as the server does.
# Uses bash, curl and python3 (JSON). Usage: test_serve_search.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib_serve.sh" || exit 1
. "$here/lib_check.sh" || exit 1
need_tools curl python3
in_fresh_dir "$dir"

"$shelf" init --store s.db > /dev/null 2>&1
key=$("$shelf" keys create --store s.db --scope read 2>/dev/null)
wkey=$("$shelf" keys create --store s.db --scope write 2>/dev/null)
check "a store and keys" eval '[ -n "$key" ] && [ -n "$wkey" ]'
serve_free_port "$shelf" out.txt err.txt --store s.db --log-level warn
check "serve started ($(tail -2 err.txt 2>/dev/null | tr '\n' ' '))" test -n "$port"
url="http://127.0.0.1:$port"

# search BODY: POST /v1/search with the read key; prints the status
search() { printf '%s' "$1" > body.json; call POST /v1/search "$key" body.json; }
ids() { js "' '.join(i['id'] for i in j['items'])"; }

# the catalogue: two categories, each with products and a Chinese FAQ whose
# text differs only in the category's name (the same bm25 for both)
python3 - <<'PY' > items.json
import json
items = []
for k in range(6):
    items.append({"id": f"shoe-{k}", "kind": "product", "category": "Shoes", "title": f"Running shoe {k}",
                  "text": "Light shoes for running on roads."})
    items.append({"id": f"pan-{k}", "kind": "product", "category": "Kitchen", "title": f"Frying pan {k}",
                  "text": "A steel pan for the kitchen."})
items.append({"id": "faq-shoe-zh", "kind": "faq", "category": "Shoes", "title": "鞋子如何退货",
              "text": "退货政策：鞋子30天内可以退货并全额退款"})
items.append({"id": "faq-pan-zh", "kind": "faq", "category": "Kitchen", "title": "厨具如何退货",
              "text": "退货政策：厨具30天内可以退货并全额退款"})
items.append({"id": "faq-ship-en", "kind": "faq", "category": "Help", "title": "Shipping times",
              "text": "Parcels arrive within 3 days; express shipping the next day."})
print(json.dumps({"items": items}))
PY
code=$(call PUT /v1/items "$wkey" items.json)
check "items stored ($code $(cat ans.json))" test "$code" = 200

# events: shoppers of each category viewed its products and its FAQ; A only shoes, B only pans
python3 - <<'PY' > events.json
import json
ev = []
for u in range(12):
    for cat, faq in (("shoe", "faq-shoe-zh"), ("pan", "faq-pan-zh")):
        user = f"{cat}-fan-{u}"
        for k in range(6):
            if (k + u) % 3 != 0:
                ev.append({"user": user, "item": f"{cat}-{k}", "type": "view", "ts": 1767225600 + 60 * len(ev)})
        ev.append({"user": user, "item": faq, "type": "view", "ts": 1767225600 + 60 * len(ev)})
for k in (0, 1, 2):
    ev.append({"user": "A", "item": f"shoe-{k}", "type": "view", "ts": 1767300000 + k})
    ev.append({"user": "B", "item": f"pan-{k}", "type": "view", "ts": 1767300000 + k})
print(json.dumps(ev))
PY
code=$(call POST /v1/events "$wkey" events.json)
check "events stored ($code $(cat ans.json))" test "$code" = 200
kill -TERM "$spid"; wait "$spid"; spid=""

"$shelf" train --model itemknn --bundle B --store s.db --quiet > train.txt 2>&1
check "an itemknn bundle ($(tail -2 train.txt | tr '\n' ' '))" test -s B/manifest.json
serve_free_port "$shelf" out.txt err.txt --store s.db --bundle B --log-level warn
check "serve started with the bundle ($(tail -2 err.txt 2>/dev/null | tr '\n' ' '))" test -n "$port"
url="http://127.0.0.1:$port"

# ---- a Chinese query: the FAQ items, in the text order without a user ----
code=$(search '{"query": "退货政策"}')
check "a Chinese query: 200 ($code $(cat ans.json))" test "$code" = 200
check "it finds both FAQ items and nothing else ($(ids))" test "$(ids | tr ' ' '\n' | sort | tr '\n' ' ')" = "faq-pan-zh faq-shoe-zh "
check "by the index, in the text order, no profile" test "$(js "(j['method'], j['profiled'], j['known_user'])")" = "('fts', False, False)"
check "the snippet marks the match" eval 'js "j[\"items\"][0][\"snippet\"]" | grep -qF "<mark>退货政策</mark>"'
check "kind and title are answered" test "$(js "sorted((i['kind'], i['title']) for i in j['items'])[0]")" = "('faq', '厨具如何退货')"
text_order=$(ids)

# ---- the same query for two shoppers with different histories ----
code=$(search '{"query": "退货政策", "user": "A"}')
order_a=$(ids)
check "user A: 200, re-ranked by the profile ($code $(cat ans.json))" \
    eval '[ "$code" = 200 ] && [ "$(js "(j[\"known_user\"], j[\"profiled\"])")" = "(True, True)" ]'
check "user A (shoes) gets the shoe FAQ first ($order_a)" test "${order_a%% *}" = faq-shoe-zh
check "profile scores are answered" test "$(js "all(i['profile_score'] is not None for i in j['items'])")" = True
code=$(search '{"query": "退货政策", "user": "B"}')
order_b=$(ids)
check "user B (kitchen) gets the kitchen FAQ first ($code $order_b)" test "${order_b%% *}" = faq-pan-zh
check "the same query, a different order for A and B ($order_a | $order_b)" test "$order_a" != "$order_b"
code=$(search '{"query": "退货政策", "user": "nobody-knows-me"}')
check "an unknown user: 200, the text order ($code $(ids))" \
    eval '[ "$code" = 200 ] && [ "$(ids)" = "$text_order" ] && [ "$(js "j[\"known_user\"]")" = False ]'
code=$(search '{"query": "退货政策", "user": "A", "profile_weight": 0}')
check "profile_weight 0: the text order for A too ($(ids))" test "$(ids)" = "$text_order"

# ---- filters, short and English queries, FTS syntax ----
code=$(search '{"query": "退货政策", "kind": "product"}')
check "kind product: no FAQ ($code $(ids))" eval '[ "$code" = 200 ] && [ -z "$(ids)" ]'
code=$(search '{"query": "退货", "n": 1}')
check "a 2-character query: the scan finds an FAQ ($code $(cat ans.json))" \
    eval '[ "$code" = 200 ] && [ "$(js "j[\"method\"]")" = scan ] && ids | grep -q "^faq-.*-zh$"'
code=$(search '{"query": "when does my parcel arrive"}')
check "an English query finds the shipping FAQ first ($code $(ids))" eval '[ "$code" = 200 ] && [ "$(ids | cut -d" " -f1)" = faq-ship-en ]'
code=$(search '{"query": "running", "kind": "product", "n": 3}')
check "n and kind: 3 shoes ($code $(ids))" test "$(ids | tr ' ' '\n' | grep -c '^shoe-')" = 3
for q in '\"' '*' 'title:退货' '(退货 AND' 'NEAR(a b' '-pan' '\"\"\" OR' "'; DROP TABLE items; --"; do
    code=$(search "{\"query\": \"$q\"}")
    check "FTS syntax is text: $q ($code $(cat ans.json))" test "$code" = 200
done

# ---- bad bodies: 400 naming the field ----
# bad BODY WANT: 400 bad_request whose message starts with WANT
bad_body() {
    local code
    code=$(search "$1")
    b_want=$2
    check "400 for $1 ($code $(cat ans.json))" \
        eval '[ "$code" = 400 ] && [ "$(js "j[\"error\"][\"code\"]")" = bad_request ] && js "j[\"error\"][\"message\"]" | grep -q "^$b_want"'
}
bad_body '{}' 'query: missing'
bad_body '{"query": 5}' 'query: expected a string'
bad_body '{"query": "   "}' 'query: no word'
bad_body "{\"query\": \"$(printf 'x%.0s' $(seq 1001))\"}" 'query: 1001 bytes'
bad_body '{"query": "ab\u0000c"}' 'query: '
bad_body "$(printf '{"query": "ab\xffc"}')" 'query: invalid UTF-8'
bad_body '{"query": "退货", "n": 0}' 'n: expected an integer from 1 to 100'
bad_body '{"query": "退货", "n": 101}' 'n: expected an integer'
bad_body '{"query": "退货", "n": 2.5}' 'n: expected an integer'
bad_body '{"query": "退货", "user": {}}' 'user: expected'
bad_body '{"query": "退货", "kind": 3}' 'kind: expected'
bad_body '{"query": "退货", "profile_weight": 2}' 'profile_weight: expected'
bad_body '["退货"]' 'the body: expected a JSON object'
code=$(search '{"query": ')
check "broken JSON: 400 bad_json ($code)" test "$code" = 400
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary '{"query": "退货"}' "$url/v1/search")
check "no key: 401 ($code)" test "$code" = 401
code=$(call GET /v1/search "$key")
check "GET: 405 ($code)" test "$code" = 405
kill -TERM "$spid"; wait "$spid"; spid=""

# ---- the CLI: the same answers ----
first() { "$shelf" search --store s.db --bundle B --json "$@" 2>cli_err.txt | head -1 | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['id'])"; }
check "shelf search --user A: the shoe FAQ first" test "$(first --query 退货政策 --user A)" = faq-shoe-zh
check "shelf search --user B: the kitchen FAQ first" test "$(first --query 退货政策 --user B)" = faq-pan-zh
"$shelf" search --store s.db --query 退货政策 > table.txt 2>&1
check "the table names the FAQ and marks the match ($(head -2 table.txt | tr '\n' ' '))" \
    eval 'grep -q "faq-shoe-zh" table.txt && grep -qF "[退货政策]" table.txt'
"$shelf" search --store s.db --query 退货 --n 0 > /dev/null 2>&1
check "shelf search --n 0: a usage error (exit 2)" test $? = 2
"$shelf" search --store s.db > /dev/null 2>&1
check "shelf search without --query: exit 2" test $? = 2

echo "$pass passed, $fail failed"
test "$fail" -eq 0
