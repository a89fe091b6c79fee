#!/usr/bin/env bash
# test_cli_scenario.sh: `shelf scenario put|get|list|delete|check` on a
# store: a valid document is stored and comes back as given, replaced,
# listed with its description, deleted; an invalid one is refused with its
# JSON path (and an expression's column), exit 1, and the stored one stays;
# usage errors exit 2.
# Usage: test_cli_scenario.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1
dir=$2
. "$(dirname "$0")/lib_check.sh"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
# refused WHAT STATUS WANT -- ARGS: `shelf scenario ARGS` exits STATUS and says WANT on stderr
refused() {
    local what=$1 status=$2 want=$3; shift 4
    "$shelf" scenario "$@" --store s.db > out.txt 2> err.txt
    local rc=$?
    if [ "$rc" -ne "$status" ] || ! grep -qF -- "$want" err.txt; then
        bad "$what: exit $rc, stderr: $(cat err.txt)"
    else ok; fi
}

"$shelf" init --store s.db --quiet > /dev/null 2>&1
[ -f s.db ] || { echo "FAIL: no store" >&2; exit 1; }

cat > home.json <<'JSON'
{"description": "home page", "kinds": ["product"],
 "filter": "price_ok == 1",
 "diversity": {"by": "category", "lambda": 0.7}}
JSON
# price_ok is no field: refused at column 1 of the filter, nothing stored
refused "unknown field" 1 "scenario.filter: column 1: unknown field 'price_ok'" -- put home home.json
check "nothing stored" test "$("$shelf" scenario list --store s.db | wc -l)" -eq 1

cat > home.json <<'JSON'
{"description": "home page", "kinds": ["product"],
 "filter": "category under 'shoes' and not seen(purchase, 30d)",
 "diversity": {"by": "category", "lambda": 0.7}}
JSON
check "check valid" "$shelf" scenario check home home.json --store s.db
check "put" "$shelf" scenario put home home.json --store s.db
"$shelf" scenario get home --store s.db > got.json
check "get gives the document back" cmp -s got.json home.json
echo '{"fusion": "rrf", "sources": [{"type": "model"}, {"type": "trending", "weight": 0.3}]}' |
    "$shelf" scenario put cart - --store s.db
check "put from stdin" test $? -eq 0
"$shelf" scenario list --store s.db > list.txt
check "list: two rows after the header" test "$(wc -l < list.txt)" -eq 3
check "list: in name order" test "$(awk 'NR > 1 {print $1}' list.txt | tr '\n' ' ')" = "cart home "
check "list: description" grep -q "home page" list.txt

# a bad replacement leaves the stored one
echo '{"promotions": [{"name": "p", "items": ["a"], "boost": 2, "budget_per_day": -5}]}' > bad.json
refused "negative budget" 1 "scenario.promotions[0].budget_per_day: must be a whole number" -- put home bad.json
"$shelf" scenario get home --store s.db > got2.json
check "still the old document" cmp -s got2.json home.json
echo '{"sources": [{"type": "magic"}]}' > bad2.json
refused "unknown source" 1 "scenario.sources[0].type: must be one of model" -- check home bad2.json
echo '{"filter": "seen(bought)"}' > bad3.json
refused "unknown event type" 1 "column 6: unknown event type 'bought'" -- put home bad3.json
echo '{"sources": [' > bad4.json
refused "not JSON" 1 "scenario: not JSON" -- put home bad4.json
refused "bad name" 1 "scenario name 'a b'" -- put "a b" home.json

check "delete" "$shelf" scenario delete cart --store s.db
refused "delete again" 1 "no scenario named 'cart'" -- delete cart
refused "get missing" 1 "no scenario named 'cart'" -- get cart
refused "no action" 2 "needs an action" --
refused "unknown action" 2 "unknown action 'frob'" -- frob
refused "put without a file" 2 "put needs a name and a file" -- put home
refused "missing file" 1 "nope.json: cannot open" -- put home nope.json

# shelf eval under several scenarios: one row each, named by file (dots kept);
# a stage with nothing to work on is said
printf '1 1 2 3 4\n2 2 3 4 5\n3 1 3 5 6\n4 2 4 6 1\n5 3 5 1 2\n' > tiny.txt
echo '{"diversity": {"by": "category", "lambda": 0.5}}' > div_0.5.json
echo '{}' > plain.json
"$shelf" eval --data tiny.txt --format s3rec --models itemknn --scenario div_0.5.json,plain.json --quiet > ev.txt 2> ev.err
st=$?
check "eval: two scenarios, two rows (exit $st: $(cat ev.txt))" eval '[ "$st" = 0 ] && grep -q "^itemknn@div_0.5 " ev.txt && grep -q "^itemknn@plain " ev.txt'
check "eval: diversity by category without categories is said ($(cat ev.err))" grep -q "diversifies or caps by category, but no item has one" ev.err

echo "test_cli_scenario: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
