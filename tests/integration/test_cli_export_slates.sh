#!/usr/bin/env bash
# test_cli_export_slates.sh: `shelf export --users all|FILE` writes a slate
# for each shopper (e-mail, push) through the ranking room: every shopper of
# the store once, in the store's order, each slate the one `shelf recommend`
# gives (same items, same order), a stored scenario's stages applied, CSV
# with one row per item; an unknown shopper gets the fallback; usage errors
# exit 2, an unknown scenario exits 1 naming it; a transformer's shoppers
# scored together (--score-batch) get the slates they get alone.
# Uses bash, sqlite3 and python3 (JSON). Usage: test_cli_export_slates.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_check.sh" || exit 1
need_tools sqlite3 python3
in_fresh_dir "$dir"
shop_with_bundle "$shelf" 9
check "a shop and its bundle" test $? -eq 0
x() { "$shelf" export --store s.db --bundle B --quiet "$@"; }

x --users all --format jsonl --n 5 --out all.jsonl 2> err.txt
check "export of every shopper exits 0 ($(cat err.txt))" test $? -eq 0
sqlite3 s.db "SELECT ext_id FROM users ORDER BY idx" > users.txt
check "one slate per shopper, in the store's order" \
    test "$(python3 -c "import json; print('\n'.join(json.loads(l)['user'] for l in open('all.jsonl')))")" = "$(cat users.txt)"
check "five items each" python3 -c "
import json, sys
sys.exit(any(len(json.loads(l)['items']) != 5 for l in open('all.jsonl')))"
same=1
for u in u0 u17 u123 u299; do
    want=$("$shelf" recommend --store s.db --bundle B --user "$u" --n 5 --json --quiet 2>/dev/null |
        python3 -c "import json,sys; print([i['id'] for i in json.load(sys.stdin)['items']])")
    got=$(python3 -c "
import json
for l in open('all.jsonl'):
    j = json.loads(l)
    if j['user'] == '$u': print([i['id'] for i in j['items']])")
    [ -n "$want" ] && [ "$want" = "$got" ] || { same=0; echo "$u: recommend $want, export $got" >&2; }
done
check "each slate is the one shelf recommend gives" test "$same" = 1

printf 'u5\r\n\nnobody\nu6\n' > some.txt
x --users some.txt --format csv --n 3 > some.csv 2> err.txt
check "export of a file's shoppers as CSV ($(cat err.txt))" test $? -eq 0
check "a header and 3 rows for each of the 3 shoppers" test "$(wc -l < some.csv)" = 10
check "the header" test "$(head -1 some.csv)" = "user,position,item,score,source"
check "an unknown shopper gets the fallback" test "$(grep -c '^nobody,[123],i[0-9]*,[0-9.e-]*,popular$' some.csv)" = 3

kind=$(sqlite3 s.db "SELECT kind FROM items GROUP BY kind ORDER BY count(*) LIMIT 1")
printf '{"kinds": ["%s"]}' "$kind" > k.json
"$shelf" scenario put only k.json --store s.db 2> /dev/null
x --users some.txt --scenario only --format jsonl --n 2 > only.jsonl 2> err.txt
check "with a stored scenario ($(cat err.txt))" test $? -eq 0
check "its stages applied: only $kind items" python3 -c "
import json, sqlite3, sys
kind = dict(sqlite3.connect('s.db').execute('SELECT ext_id, kind FROM items'))
sl = [json.loads(l) for l in open('only.jsonl')]
sys.exit(not (len(sl) == 3 and all(s['scenario'] == 'only' and s['items'] and
                                   all(kind[i['id']] == '$kind' for i in s['items']) for s in sl)))"
x --users some.txt --scenario nope --format jsonl > /dev/null 2> err.txt
st=$?
check "an unknown scenario exits 1 naming it ($st: $(cat err.txt))" eval '[ "$st" = 1 ] && grep -q "no scenario '"'"'nope'"'"'" err.txt'
x --users all --format s3rec > /dev/null 2> err.txt
check "slates are jsonl or csv (exit 2)" test $? -eq 2
x --users all --what items --format csv > /dev/null 2> err.txt
check "--what does not go with --users (exit 2)" test $? -eq 2

# a transformer scores the shoppers of a block together (--score-batch: one
# matrix product): the slates of each alone (0), of blocks of 7 and of the
# default are the same, their scores within 1e-5 (1 + |s|)
"$shelf" train --store s.db --model transformer --bundle T --tf-epochs 2 --tf-dim 16 --tf-maxlen 8 --quiet \
    > /dev/null 2> err.txt
check "a small transformer ($(tail -1 err.txt))" test -s T/manifest.json
for b in 0 7 256; do
    "$shelf" export --store s.db --bundle T --quiet --users all --format jsonl --n 5 --score-batch "$b" \
        --out "tf$b.jsonl" 2> err.txt
    st=$?
    check "export --score-batch $b exits 0 ($st: $(cat err.txt))" test "$st" -eq 0
done
check "the same slates, each alone or scored together" python3 -c "
import json, sys
def load(f): return [json.loads(l) for l in open(f)]
a = load('tf0.jsonl')
bad = 0
for other in ('tf7.jsonl', 'tf256.jsonl'):
    b = load(other)
    if len(a) != 300 or len(b) != 300: bad += 1
    for x, y in zip(a, b):
        if x['user'] != y['user'] or [i['id'] for i in x['items']] != [i['id'] for i in y['items']]: bad += 1
        elif any(abs(i['score'] - j['score']) > 1e-5 * (1 + abs(i['score'])) for i, j in zip(x['items'], y['items'])):
            bad += 1
print(bad, 'slates differ', file=sys.stderr)
sys.exit(bad != 0)"
x --users all --score-batch -1 > /dev/null 2> err.txt
st=$?
check "a negative --score-batch is refused (exit 2: $st, $(cat err.txt))" test "$st" -eq 2
echo "$pass passed, $fail failed"
test "$fail" -eq 0
