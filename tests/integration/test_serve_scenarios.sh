#!/usr/bin/env bash
# test_serve_scenarios.sh: scenarios (placements) over HTTP. Under the admin
# scope only, a scenario is stored (201, then 200 when replaced), read back
# byte for byte, listed, deleted; invalid documents (a bad expression, an
# unknown source, a negative budget) are refused with their JSON path and
# nothing changes. ?scenario=NAME applies the stored stages to personal,
# anonymous and similar-item slates (kinds, filter with ctx.NAME from the
# request, caps), a replaced or deleted one from the next request on, one
# stored by `shelf scenario put` beside the server too; unknown names get
# 404; the parts not applied yet are named; scenarios outlive a restart.
# Sources (a list, trending, the model) name themselves on each item;
# promotions take their share of the slots while their budget lasts, and
# their spend shows in GET /v1/scenarios and survives a restart. fields=
# puts item fields in slate entries; price and brand work in filters;
# freshness puts new items first; rotation moves down what was just shown.
# Uses bash, curl, sqlite3 and python3 (JSON). Usage: test_serve_scenarios.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib_serve.sh" || exit 1
. "$here/lib_check.sh" || exit 1
need_tools curl sqlite3 python3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
spid=""
trap '[ -n "$spid" ] && kill -9 $spid 2>/dev/null' EXIT

serve_shop "$shelf" 11
check "a shop, its bundle, keys, and serve started ($(tail -2 err.txt 2>/dev/null | tr '\n' ' '))" test -n "$port"
url="http://127.0.0.1:$port"

# refused WHAT FILE WANT: PUT home with FILE answers 400 bad_scenario naming WANT, and home stays as it was
refused() {
    local code before after
    r_want=$3 # read by the eval inside check
    before=$(call GET /v1/scenarios/home "$admin"; cat ans.json)
    code=$(call PUT /v1/scenarios/home "$admin" "$2")
    check "$1: 400 ($code)" test "$code" = 400
    check "$1: code bad_scenario, names $3 ($(cat ans.json))" \
        eval '[ "$(js "j[\"error\"][\"code\"]")" = bad_scenario ] && grep -qF -- "$r_want" ans.json'
    after=$(call GET /v1/scenarios/home "$admin"; cat ans.json)
    check "$1: nothing changed" test "$before" = "$after"
}

# applied NAME FILE WHAT: PUT NAME with FILE stores a new scenario (201) with nothing under not_applied_yet
applied() {
    local code
    code=$(call PUT "/v1/scenarios/$1" "$admin" "$2")
    check "$3 (201, nothing unapplied: $code $(cat ans.json))" \
        eval '[ "$code" = 201 ] && [ "$(js "j[\"not_applied_yet\"]")" = "[]" ]'
}

# the items' kinds and categories, from the store
sqlite3 -separator '|' s.db "SELECT ext_id, kind, coalesce(category, ''), coalesce(brand, '') FROM items" > items.txt
cat=$(awk -F'|' '$2 == "product" && $3 != "" { print $3 }' items.txt | sort | uniq -c | sort -rn | sed -n '1s/^ *[0-9]* //p')
check "a category with products ($cat)" test -n "$cat"
# kinds_of / cats_of: what the slate in ans.json shows
ids_of() { js "'\n'.join(i['id'] for i in j['items'])"; }
kinds_of() { ids_of | awk -F'|' 'NR == FNR { k[$1] = $2; next } { print k[$1] }' items.txt - | sort -u | tr '\n' ' '; }
cats_of() { ids_of | awk -F'|' 'NR == FNR { c[$1] = $3; next } { print c[$1] }' items.txt -; }
brands_of() { ids_of | awk -F'|' 'NR == FNR { c[$1] = $4; next } { print c[$1] }' items.txt -; }

code=$(call GET /v1/scenarios/home "$admin")
check "no scenario yet: GET 404 ($code)" test "$code" = 404
cat > home.json <<JSON
{"description": "home page", "kinds": ["product"], "filter": "category under '$cat'"}
JSON
code=$(call PUT /v1/scenarios/home "$key" home.json)
check "a read key may not store a scenario (403: $code)" test "$code" = 403
code=$(call PUT /v1/scenarios/home "$admin" home.json)
check "PUT stores a new scenario (201: $code $(cat ans.json))" test "$code" = 201
check "created, nothing left unapplied" test "$(js "(j['created'], j['not_applied_yet'])")" = "(True, [])"
code=$(call GET /v1/scenarios/home "$admin")
check "GET answers the document byte for byte ($code)" cmp -s ans.json home.json
code=$(call GET /v1/scenarios/home "$key")
check "a read key may not read one (403: $code)" test "$code" = 403

# invalid documents: the path (and the column), and home unchanged
echo '{"filter": "category under"}' > bad1.json
refused "a bad expression" bad1.json "scenario.filter: column"
echo '{"sources": [{"type": "oracle", "weight": 1}]}' > bad2.json
refused "an unknown source" bad2.json "scenario.sources[0].type"
echo '{"promotions": [{"name": "p", "items": ["i1"], "boost": 2, "budget_per_day": -5}]}' > bad3.json
refused "a negative budget" bad3.json "scenario.promotions[0].budget_per_day"
echo '{"kinds": ["product"],' > bad4.json
refused "broken JSON" bad4.json "scenario"

# the scenario makes the slate: products of the category only
users=$(sqlite3 s.db "SELECT ext_id FROM users ORDER BY idx LIMIT 5")
all_ok=1 any_other=0
for u in $users; do
    code=$(call GET "/v1/users/$u/recommendations?n=10" "$key")
    [ "$(cats_of | grep -cvxF "$cat")" -gt 0 ] && any_other=1
    code=$(call GET "/v1/users/$u/recommendations?n=10&scenario=home" "$key")
    n=$(js "len(j['items'])")
    [ "$code" = 200 ] && [ "$n" = 10 ] && [ "$(kinds_of)" = "product " ] && [ "$(cats_of | grep -cvxF "$cat")" = 0 ] || {
        all_ok=0
        echo "user $u: $code $(cat ans.json)" >&2
    }
done
check "without the scenario slates show other categories too" test "$any_other" = 1
check "with ?scenario=home every slate has 10 products of '$cat'" test "$all_ok" = 1
code=$(call GET "/v1/users/u1/recommendations?scenario=nope" "$key")
check "an unknown scenario: 404 unknown_scenario ($code)" \
    eval '[ "$code" = 404 ] && [ "$(js "j[\"error\"][\"code\"]")" = unknown_scenario ]'
item=$(awk -F'|' '$2 == "product" && $3 == "'"$cat"'" { print $1; exit }' items.txt)
code=$(call GET "/v1/items/$item/similar?n=5&scenario=home" "$key")
check "similar items under the scenario: products of '$cat' ($code)" \
    eval '[ "$code" = 200 ] && [ "$(cats_of | grep -cvxF "$cat")" = 0 ] && [ "$(js "len(j[\"items\"])")" -ge 1 ]'

# replaced: caps by category and a filter on the request's context, from the next request on
cat > home2.json <<'JSON'
{"description": "home page, one per category", "filter": "kind == ctx.want",
 "caps": [{"by": "category", "max": 1}]}
JSON
code=$(call PUT /v1/scenarios/home "$admin" home2.json)
check "PUT replaces it (200, created false: $code $(cat ans.json))" \
    eval '[ "$code" = 200 ] && [ "$(js "j[\"created\"]")" = False ]'
code=$(call GET "/v1/users/u2/recommendations?n=8&scenario=home&want=product" "$key")
check "the new stages at once: 8 products, 8 categories ($code)" \
    eval '[ "$code" = 200 ] && [ "$(kinds_of)" = "product " ] && [ "$(cats_of | sort -u | wc -l)" = 8 ]'
cat > brands.json <<'JSON'
{"diversity": {"by": "brand", "lambda": 0.5}, "caps": [{"by": "brand", "max": 1}]}
JSON
applied brands brands.json "diversity and caps by brand are applied"
code=$(call GET "/v1/users/u4/recommendations?n=10" "$key")
check "without the scenario a brand comes twice" test -n "$(brands_of | grep . | sort | uniq -d)"
code=$(call GET "/v1/users/u4/recommendations?n=10&scenario=brands" "$key")
check "with it 10 items, no brand twice (items without a brand are not capped)" \
    eval '[ "$code" = 200 ] && [ "$(js "len(j[\"items\"])")" = 10 ] && [ -z "$(brands_of | grep . | sort | uniq -d)" ]'
printf '{"items": ["%s"], "scenario": "home", "context": {"want": "content"}, "n": 3}' "$item" > anon.json
code=$(call POST /v1/recommendations "$key" anon.json)
check "anonymous slate: the context from the body reaches ctx.want (content only: $code $(kinds_of))" \
    eval '[ "$code" = 200 ] && [ "$(kinds_of)" = "content " ]'

# the parts not applied yet are named
echo '{"freshness": {"half_life": "7d"}, "sources": [{"type": "model"}, {"type": "popular"}, {"type": "model", "model": "bpr"}]}' > later.json
code=$(call PUT /v1/scenarios/later "$admin" later.json)
check "stored, with what is not applied yet named ($code $(cat ans.json))" \
    eval '[ "$code" = 201 ] && [ "$(js "j[\"not_applied_yet\"]")" = "['"'"'sources[2].model'"'"']" ]'
code=$(call GET /v1/scenarios "$admin")
check "GET /v1/scenarios lists both with descriptions ($code $(cat ans.json))" \
    test "$(js "[(s['name'], s.get('description')) for s in j['scenarios']]")" = "[('brands', None), ('home', 'home page, one per category'), ('later', None)]"

# one stored by the CLI beside the server counts from the next request
printf '{"kinds": ["content"]}' > email.json
"$shelf" scenario put email email.json --store s.db 2> cli.err
st=$?
check "shelf scenario put beside the server ($(cat cli.err))" test "$st" -eq 0
code=$(call GET "/v1/users/u3/recommendations?n=3&scenario=email" "$key")
check "the server applies it without a restart ($code $(kinds_of))" \
    eval '[ "$code" = 200 ] && [ "$(kinds_of)" = "content " ]'

code=$(call DELETE /v1/scenarios/later "$admin")
check "DELETE (200: $code)" test "$code" = 200
code=$(call DELETE /v1/scenarios/later "$admin")
check "DELETE again: 404 ($code)" test "$code" = 404
code=$(call GET "/v1/users/u1/recommendations?scenario=later" "$key")
check "a deleted scenario is unknown at once (404: $code)" test "$code" = 404

# sources: a heavy list puts its item first, each item names its source
p1=$(awk -F'|' '$2 == "product" { print $1 }' items.txt | sed -n 3p)
p2=$(awk -F'|' '$2 == "product" { print $1 }' items.txt | sed -n 5p)
printf '{"sources": [{"type": "model"}, {"type": "trending", "weight": 0.5}, {"type": "list", "items": ["%s"], "weight": 100}]}' "$p1" > mix.json
applied mix mix.json "a scenario of three sources is stored, all applied"
code=$(call GET "/v1/users/u1/recommendations?n=5&scenario=mix" "$key")
check "the list's item first, named as its source ($code $(cat ans.json))" \
    eval '[ "$code" = 200 ] && [ "$(js "(j[\"items\"][0][\"id\"], j[\"items\"][0].get(\"source\", j[\"source\"]))")" = "('"'"'$p1'"'"', '"'"'list'"'"')" ]'
check "the other items name the model or trending ($(js "[i.get('source', j['source']) for i in j['items']]"))" \
    eval '[ -z "$(js "[1 for i in j[\"items\"][1:] if i.get(\"source\", j[\"source\"]) not in (\"model\", \"trending\")] or \"\"")" ]'

# fields in slates; item fields in expressions; freshness; rotation
code=$(call GET "/v1/users/u1/recommendations?n=4&fields=title,price,category,brand,created" "$key")
ids_of | awk -F'|' 'NR == FNR { t[$1] = $2; next } { print t[$1] }' <(sqlite3 -separator '|' s.db "SELECT ext_id, coalesce(title, '') FROM items") - > want_titles.txt
check "fields=title,price,...: each entry carries them, as stored ($code)" \
    eval '[ "$code" = 200 ] && [ "$(js "chr(10).join(i[\"title\"] for i in j[\"items\"])")" = "$(cat want_titles.txt)" ] &&
          [ "$(js "all(set(i) >= {\"price\", \"category\", \"brand\", \"created\"} for i in j[\"items\"])")" = True ]'
code=$(call GET "/v1/users/u1/recommendations?fields=title,colour" "$key")
check "an unknown field: 400 naming it ($code $(cat ans.json))" eval '[ "$code" = 400 ] && grep -q colour ans.json'
echo '{"kinds": ["product"], "filter": "price <= ctx.max_price and brand != '"'"'Brand3'"'"'"}' > cheap.json
code=$(call PUT /v1/scenarios/cheap "$admin" cheap.json)
code=$(call GET "/v1/users/u1/recommendations?n=6&scenario=cheap&max_price=10&fields=price,brand" "$key")
check "price and brand in a filter: every price <= 10, no Brand3 ($code $(cat ans.json))" \
    eval '[ "$code" = 200 ] && [ "$(js "len(j[\"items\"]) == 6 and all(i[\"price\"] <= 10 and i[\"brand\"] != \"Brand3\" for i in j[\"items\"])")" = True ]'
echo '{"kinds": ["product"], "freshness": {"half_life": "1h"}}' > fresh.json
code=$(call PUT /v1/scenarios/fresh "$admin" fresh.json)
code=$(call GET "/v1/users/u1/recommendations?n=3&scenario=fresh&fields=created" "$key")
newest=$(sqlite3 s.db "SELECT created FROM items WHERE kind = 'product' ORDER BY created DESC LIMIT 1 OFFSET 19")
check "freshness with a half-life of an hour: the newest products first (all among the 20 newest: $(cat ans.json))" \
    eval '[ "$code" = 200 ] && [ "$(js "all(i[\"created\"] >= $newest for i in j[\"items\"])")" = True ]'
echo '{"rotation": {"window": "1h", "penalty": 0.001}}' > rot.json
code=$(call PUT /v1/scenarios/rot "$admin" rot.json)
code=$(call GET "/v1/users/u1/recommendations?n=5&scenario=rot" "$key")
first=$(ids_of | sort)
code=$(call GET "/v1/users/u1/recommendations?n=5&scenario=rot" "$key")
second=$(ids_of | sort)
check "rotation: what the shopper was just shown moves down (no item twice: $(echo $first) / $(echo $second))" \
    test -z "$(comm -12 <(echo "$first") <(echo "$second"))"

# boosters, minimum relevance, long tail, a fallback order of its own
echo '{"kinds": ["product"], "boosters": ["max(1, (price - 19) * 1000)"]}' > boost.json
code=$(call PUT /v1/scenarios/boost "$admin" boost.json)
code=$(call GET "/v1/users/u1/recommendations?n=5&scenario=boost&fields=price" "$key")
check "a booster x1000 for prices over 19: every price on the slate is ($(js "[i['price'] for i in j['items']]"))" \
    eval '[ "$code" = 200 ] && [ "$(js "all(i[\"price\"] >= 19 for i in j[\"items\"])")" = True ]'
echo '{"kinds": ["product"], "min_relevance": 0.999}' > minrel.json
code=$(call PUT /v1/scenarios/minrel "$admin" minrel.json)
code=$(call GET "/v1/users/u1/recommendations?n=4&scenario=minrel" "$key")
check "min_relevance 0.999: the model's best only, the rest from the fallback ($(js "[i.get('source', j['source']) for i in j['items']]"))" \
    eval '[ "$code" = 200 ] && [ "$(js "[i.get(\"source\", j[\"source\"]) for i in j[\"items\"]]")" = "['"'"'model'"'"', '"'"'popular'"'"', '"'"'popular'"'"', '"'"'popular'"'"']" ]'
events_of() { ids_of | while read -r id; do sqlite3 s.db "SELECT count(*) FROM events e JOIN items i ON i.idx = e.item WHERE i.ext_id = '$id'"; done | awk '{ s += $1 } END { print s / NR }'; }
code=$(call GET "/v1/users/u1/recommendations?n=8&kind=product" "$key")
plain_events=$(events_of)
echo '{"kinds": ["product"], "long_tail": {"beta": 3}}' > tail.json
code=$(call PUT /v1/scenarios/tail "$admin" tail.json)
code=$(call GET "/v1/users/u1/recommendations?n=8&scenario=tail" "$key")
tail_events=$(events_of)
check "long tail beta 3: less popular items (events per item $tail_events against $plain_events)" \
    awk -v a="$tail_events" -v b="$plain_events" 'BEGIN { exit !(a < b) }'
top_all=$(sqlite3 s.db "SELECT i.ext_id FROM events e JOIN items i ON i.idx = e.item JOIN event_types t ON t.id = e.type
  WHERE i.kind = 'product' AND i.available = 1 GROUP BY i.idx ORDER BY sum(t.weight) DESC, i.idx LIMIT 1")
echo '{"kinds": ["product"], "fallback": ["popular"]}' > fb.json
code=$(call PUT /v1/scenarios/fb "$admin" fb.json)
code=$(call GET "/v1/users/nobody-at-all/recommendations?n=3&scenario=fb" "$key")
check "a fallback of all-time popularity for an unknown shopper: the top product first ($top_all: $(js "[i['id'] for i in j['items']]"))" \
    eval '[ "$code" = 200 ] && [ "$(js "j[\"items\"][0][\"id\"]")" = "$top_all" ]'

# content by the shopper's profile: u1's guide is the one of the category u1 shops most
want_cat=$(sqlite3 s.db "SELECT i.category FROM events e JOIN items i ON i.idx = e.item JOIN users u ON u.idx = e.user
  WHERE u.ext_id = 'u1' AND i.category IN (SELECT category FROM items WHERE kind = 'content')
  GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
echo '{"kinds": ["content"], "sources": [{"type": "content"}]}' > guides.json
code=$(call PUT /v1/scenarios/guides "$admin" guides.json)
code=$(call GET "/v1/users/u1/recommendations?n=3&scenario=guides&fields=category" "$key")
check "a content source: the guide of the category u1 shops most first ($want_cat: $(cat ans.json))" \
    eval '[ "$code" = 200 ] && [ "$(js "(j[\"items\"][0][\"category\"], j[\"items\"][0].get(\"source\"))")" = "('"'"'$want_cat'"'"', '"'"'content'"'"')" ]'

code=$(call GET "/v1/users/u1/recommendations?n=5&scenario=mix&explain=1" "$key")
check "explain=1 names the sources of each item with their ranks ($(js "j['items'][0]['reasons'][0]['text']"))" \
    eval '[ "$code" = 200 ] && [ "$(js "all(\"; proposed by \" in i[\"reasons\"][0][\"text\"] for i in j[\"items\"])")" = True ]'

# promotions: a share of the slots while the budget lasts, spend shown and kept
printf '{"promotions": [{"name": "spring", "items": ["%s", "%s"], "share": 0.2, "budget_per_day": 1000000000}]}' "$p1" "$p2" > promo.json
applied promo promo.json "a scenario with a promotion is stored, applied"
code=$(call GET "/v1/users/stranger/recommendations?n=5&scenario=promo" "$key")
check "one slot of five is the promotion's, at position 2 ($code $(cat ans.json))" \
    eval '[ "$code" = 200 ] && [ "$(js "[k for k, i in enumerate(j[\"items\"]) if i.get(\"source\") == \"promotion:spring\"]")" = "[2]" ]'
code=$(call GET "/v1/users/stranger/recommendations?n=5&scenario=promo" "$key")
code=$(call GET /v1/scenarios "$admin")
check "GET /v1/scenarios shows its spend today (2: $(cat ans.json))" \
    test "$(js "[p['spent_today'] for s in j['scenarios'] for p in s.get('promotions', [])]")" = "[2]"
printf '{"promotions": [{"name": "once", "items": ["%s"], "boost": 1000, "budget_per_day": 1}]}' "$p2" > tight.json
code=$(call PUT /v1/scenarios/tight "$admin" tight.json)
code=$(call GET "/v1/users/stranger/recommendations?n=5&scenario=tight" "$key")
first=$(js "[i['id'] for i in j['items'] if i.get('source') == 'promotion:once']")
code=$(call GET "/v1/users/stranger/recommendations?n=5&scenario=tight" "$key")
second=$(js "[i['id'] for i in j['items'] if i.get('source') == 'promotion:once']")
check "a budget of one impression: boosted once, then no more ($first then $second)" \
    test "$first $second" = "['$p2'] []"

kill -TERM "$spid"; wait "$spid"; spid=""
# again, from a directory of bundles: itemknn served (the newest), pop loaded beside it for sources
"$shelf" train --model pop --bundle BB/pop --store s.db --quiet > /dev/null 2>&1 && sleep 1 &&
    "$shelf" train --model itemknn --bundle BB/knn --store s.db --quiet > /dev/null 2>&1
serve_free_port "$shelf" out.txt err.txt --store s.db --bundle BB --source-models pop --log-level warn
check "serve starts again" test -n "$port"
url="http://127.0.0.1:$port"
code=$(call GET "/v1/users/u2/recommendations?n=8&scenario=home&want=product" "$key")
check "after a restart the scenario still applies ($code)" \
    eval '[ "$code" = 200 ] && [ "$(cats_of | sort -u | wc -l)" = 8 ]'
echo '{"sources": [{"type": "model"}, {"type": "model", "model": "pop", "weight": 2}]}' > peer.json
applied peer peer.json "--source-models pop: a source naming pop is applied"
code=$(call GET "/v1/users/u1/recommendations?n=6&scenario=peer" "$key")
check "the slate mixes the served model and pop, each item naming it ($(js "[i.get('source', j['source']) for i in j['items']]"))" \
    eval '[ "$code" = 200 ] && [ "$(js "j[\"model\"]")" = itemknn ] &&
          [ "$(js "sorted(set(i.get(\"source\", j[\"source\"]) for i in j[\"items\"]) - {\"model\"})")" = "['"'"'model:pop'"'"']" ]'
code=$(call GET /v1/scenarios "$admin")
check "a restart keeps the promotions' spend (from the served log: $(cat ans.json))" \
    test "$(js "[p['spent_today'] for s in j['scenarios'] for p in s.get('promotions', [])]")" = "[2, 1]"
kill -TERM "$spid"; wait "$spid"; spid=""
echo "$pass passed, $fail failed"
test "$fail" -eq 0
