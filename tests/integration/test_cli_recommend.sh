#!/usr/bin/env bash
# test_cli_recommend.sh: `shelf recommend` and `shelf serve` rank through the
# same room: for a known shopper (with reasons), an unknown one (the
# fallback), an anonymous session with an unknown item, an item's
# neighbours and what is popular, the CLI's slate has the same items in the
# same order with the same scores and sources as the server's answer; and
# the CLI's usage errors. Uses bash, curl and python3.
# Usage: test_cli_recommend.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(cd "$(dirname "$0")" && pwd)/lib_serve.sh" || exit 1
need_tools curl /usr/bin/python3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi; }
spid=""
trap '[ -n "$spid" ] && kill -9 "$spid" 2>/dev/null' EXIT

check "a shop and a bundle" shop_with_bundle "$shelf" 5
check "serve starts" serve_free_port "$shelf" out.txt err.txt --store s.db --bundle B --no-auth --no-served-log
url="http://127.0.0.1:$port"

# same_slate NAME CLI_JSON HTTP_JSON: ids, order, scores (1e-5), sources
same_slate() {
    /usr/bin/python3 - "$2" "$3" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ia, ib = a["items"], b["items"]
assert len(ia) == len(ib) > 0, (len(ia), len(ib))
for x, y in zip(ia, ib):
    assert x["id"] == y["id"], (x, y)
    assert abs(x["score"] - y["score"]) <= 1e-5 * max(1.0, abs(y["score"])), (x, y)
    if "source" in b:  # slates (lists name no source)
        assert x.get("source", a.get("source")) == y.get("source", b.get("source")), (x, y)
if "source" in b:
    assert a["source"] == b["source"], (a["source"], b["source"])
if "reasons" in ib[0]:
    for x, y in zip(ia, ib):
        assert x["reason"]["text"] == y["reasons"][0]["text"], (x, y)
PY
}
cli() { "$shelf" recommend --store s.db --bundle B --json --log-level warn "$@"; }

cli --user u7 --n 8 --explain > c1.json
curl -sS "$url/v1/users/u7/recommendations?n=8&explain=true" > h1.json
check "a known shopper: the same slate, the same reasons" same_slate known c1.json h1.json
check "  from the model" grep -q '"source":"model"' c1.json

cli --user u7 --n 8 --blend-popularity -3 > c1b.json
curl -sS "$url/v1/users/u7/recommendations?n=8&blend_popularity=-3" > h1b.json
check "a blended slate: the same from both" same_slate blend c1b.json h1b.json
check "  and not the model's alone" eval '! cmp -s <(grep -o "\"id\":\"[^\"]*\"" c1.json) <(grep -o "\"id\":\"[^\"]*\"" c1b.json)'
code=$(curl -sS -o /dev/null -w '%{http_code}' "$url/v1/users/u7/recommendations?blend_popularity=lots")
check "a bad blend_popularity: 400 ($code)" test "$code" = 400

cli --user nobody-at-all --n 6 > c2.json
curl -sS "$url/v1/users/nobody-at-all/recommendations?n=6" > h2.json
check "an unknown shopper: the same fallback slate" same_slate unknown c2.json h2.json
check "  marked popular" grep -q '"source":"popular"' c2.json

cli --items i3,no-such-item,i9 --n 5 > c3.json
curl -sS -X POST -H 'Content-Type: application/json' -d '{"items":["i3","no-such-item","i9"],"n":5}' \
    "$url/v1/recommendations" > h3.json
check "a session: the same slate" same_slate session c3.json h3.json
check "  the unknown item counted" grep -q '"skipped_items":1' c3.json

cli --similar i12 --n 5 > c4.json
curl -sS "$url/v1/items/i12/similar?n=5" > h4.json
check "an item's neighbours: the same list" same_slate similar c4.json h4.json

cli --popular --n 5 --kind product > c5.json
curl -sS "$url/v1/popular?n=5&kind=product" > h5.json
check "popular: the same list" same_slate popular c5.json h5.json

"$shelf" recommend --store s.db --bundle B --user u7 --log-level warn > t1.txt
check "a table by default, ten rows" test "$(grep -c '^ *[0-9]* *i[0-9]' t1.txt)" = 10
"$shelf" recommend --store s.db --user u7 --items i1 > e1.txt 2>&1
check "two subjects: usage error 2" test $? -eq 2
check "  saying which" grep -q "one of --user, --items, --similar or --popular" e1.txt
"$shelf" recommend --store s.db --similar no-such-item --log-level warn > e2.txt 2>&1
rc=$?
check "an unknown item: error 1 naming it ($rc)" eval '[ $rc -eq 1 ] && grep -q "no-such-item" e2.txt'
"$shelf" recommend --store s.db --user u7 --exclude-seen bogus --log-level warn > e3.txt 2>&1
rc=$?
check "a bad --exclude-seen: error 1 naming it ($rc)" eval '[ $rc -eq 1 ] && grep -q "bogus" e3.txt'
"$shelf" recommend --store missing.db --user u7 > e4.txt 2>&1
rc=$?
check "a missing store: error 1 ($rc)" eval '[ $rc -eq 1 ] && grep -q "missing.db" e4.txt'

kill -TERM "$spid"; wait "$spid"; spid=""
echo "$pass passed, $fail failed"
test "$fail" -eq 0
