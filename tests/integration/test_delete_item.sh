#!/usr/bin/env bash
# test_delete_item.sh: after DELETE /v1/items/X, 10,000 following requests
# (personal slates with n=50, some explained, some for unknown ids; similar
# lists of every other item; popular lists; anonymous sessions that include
# X) never return X: every one is answered 200, no body names X as an item
# (nor shows an item without an id), lists are as long as asked, sessions
# count X as skipped, and GET /v1/items/X is 404. The same workload shows X
# before the deletion (so the check can see it). Then the most popular item
# is deleted too and 2,000 more requests, popular lists and the fallback
# first, never return either.
# Uses bash, curl, sqlite3 and python3 (a keep-alive HTTP client).
# Usage: test_delete_item.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(cd "$(dirname "$0")" && pwd)/lib_serve.sh" || exit 1
need_tools curl sqlite3 python3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi; }

spid="" port=""
cleanup() { [ -n "$spid" ] && kill -9 "$spid" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

serve_shop "$shelf" 7
check "a shop, an itemknn bundle of it, a read and an admin key, and serve started ($(tail -2 err.txt | tr '\n' ' '))" \
    test -n "$port"
[ -n "$port" ] || { echo "$pass passed, $fail failed"; exit 1; }

# get PATH [KEY]: the body to resp.json, prints the status
get() { curl -sS --max-time 30 -o resp.json -w '%{http_code}' -H "Authorization: Bearer ${2:-$key}" "http://127.0.0.1:$port$1" 2>/dev/null; }
delete() { curl -sS --max-time 30 -o resp.json -w '%{http_code}' -X DELETE -H "Authorization: Bearer $2" "http://127.0.0.1:$port$1" 2>/dev/null; }
ids() { python3 -c 'import json, sys; print(" ".join(i["id"] for i in json.load(open("resp.json"))["items"]))'; }

sqlite3 s.db 'SELECT ext_id FROM users ORDER BY idx' > users.txt
sqlite3 s.db 'SELECT ext_id FROM items ORDER BY idx' > items.txt
code=$(get "/v1/popular?n=1")
top=$(ids)
check "the most popular item ($code: $top)" test "$code" = 200 -a -n "$top"
# X: the first item of the first slate that shows one other than the most popular
x="" xuser=""
while read -r u; do
    code=$(get "/v1/users/$u/recommendations?n=10")
    [ "$code" = 200 ] || continue
    for i in $(ids); do [ "$i" != "$top" ] && { x=$i xuser=$u; break; }; done
    [ -n "$x" ] && break
done < <(head -20 users.txt)
check "an item X on a shopper's slate (X=$x, shopper $xuser)" test -n "$x" -a -n "$xuser"
code=$(get "/v1/items/$x")
check "GET /v1/items/$x before: 200 (got $code)" test "$code" = 200
x_idx=$(sqlite3 s.db "SELECT idx FROM items WHERE ext_id = '$x'")
top_idx=$(sqlite3 s.db "SELECT idx FROM items WHERE ext_id = '$top'")
check "the store's indices of $x and $top ($x_idx, $top_idx)" test -n "$x_idx" -a -n "$top_idx"
# shoppers whose history has X come first in the workload
sqlite3 s.db "SELECT DISTINCT u.ext_id FROM events e JOIN users u ON u.idx = e.user JOIN items i ON i.idx = e.item
              WHERE i.ext_id = '$x'" > xusers.txt
check "shoppers who had X ($(wc -l < xusers.txt))" test -s xusers.txt

# load.py MODE COUNT GONE...: COUNT requests on one keep-alive connection,
# round robin over personal slates (n=50; every 7th explained, every 10th an
# unknown id), similar lists (n=50) of every item not gone, popular lists
# (n=100; every 5th of kind product) and anonymous sessions [GONE..., a, b]
# (n=50). MODE before: X must show up somewhere; after: no item named GONE,
# sessions skip the GONE items. Prints 1|what or 0|what per check.
cat > load.py <<'EOF'
import http.client, json, sys, time

port, key, mode, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
gone = sys.argv[5:]
users = [l.strip() for l in open("xusers.txt") if l.strip()]
users += [l.strip() for l in open("users.txt") if l.strip() and l.strip() not in users]
items = [l.strip() for l in open("items.txt") if l.strip() and l.strip() not in gone]
out = []
def check(what, ok):
    out.append(("1" if ok else "0") + "|" + what)

conn = None
def ask(method, path, body=None):
    global conn
    for attempt in (0, 1):
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
            hdr = {"Authorization": "Bearer " + key}
            if body is not None:
                hdr["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=hdr)
            r = conn.getresponse()
            return r.status, r.read().decode()
        except (http.client.HTTPException, OSError):
            conn = None
            if attempt:
                raise
bad_status, bad_json, named, noid, short, skipped, reason_named = [], [], [], [], [], [], []
seen = {g: 0 for g in gone}
kinds = [0, 0, 0, 0]
t0 = time.time()
for k in range(count):
    kind = k % 4
    kinds[kind] += 1
    j = k // 4
    body, n, anon = None, 50, False
    if kind == 0:
        u = users[j % len(users)] if j % 10 != 9 else f"ghost-{j}"
        path = f"/v1/users/{u}/recommendations?n=50" + ("&explain=true" if j % 7 == 0 else "")
    elif kind == 1:
        path = f"/v1/items/{items[j % len(items)]}/similar?n=50"
    elif kind == 2:
        path, n = "/v1/popular?n=100" + ("&kind=product" if j % 5 == 4 else ""), 100
        if j % 5 == 4:
            n = None  # fewer products than 100 may be left
    else:
        path, anon = "/v1/recommendations", True
        sess = gone + [items[j % len(items)], items[(7 * j + 3) % len(items)]]
        body = json.dumps({"items": sess, "n": 50, "explain": j % 3 == 0})
    status, text = ask("POST" if body else "GET", path, body)
    what = f"{'POST' if body else 'GET'} {path}" + (f" {body}" if body else "")
    if status != 200:
        bad_status.append(f"{what}: {status} {text[:120]}")
        continue
    for g in gone:
        if f'"id":"{g}"' in text:
            seen[g] += 1
            named.append(f"{what}: {g}")
        if f'"item":"{g}"' in text or f' {g}"' in text:  # a reason's item or its text
            reason_named.append(f"{what}: {g}")
    if '"id":""' in text:
        noid.append(what)
    try:
        doc = json.loads(text)
    except ValueError:
        bad_json.append(what)
        continue
    if n is not None and len(doc.get("items", [])) != n:
        short.append(f"{what}: {len(doc.get('items', []))} items")
    if anon and mode == "after" and doc.get("skipped_items") != len(gone):
        skipped.append(f"{what}: skipped_items {doc.get('skipped_items')}")
if conn:
    conn.close()
dt = time.time() - t0
check(f"{mode}: {count} requests ({kinds[0]} slates, {kinds[1]} similar, {kinds[2]} popular, {kinds[3]} sessions) "
      f"in {dt:.1f} s", sum(kinds) == count)
check(f"{mode}: every request answered 200 ({len(bad_status)} not: {bad_status[:3]})", not bad_status)
check(f"{mode}: every body is JSON ({len(bad_json)} not: {bad_json[:3]})", not bad_json)
check(f"{mode}: no item without an id ({len(noid)}: {noid[:3]})", not noid)
check(f"{mode}: every list as long as asked ({len(short)} not: {short[:3]})", not short)
if mode == "before":
    for g in gone:
        check(f"before: the workload shows {g} ({seen[g]} bodies)", seen[g] > 0)
else:
    check(f"after: no body names {' or '.join(gone)} as an item ({len(named)} do: {named[:3]})", not named)
    check(f"after: no reason names {' or '.join(gone)} ({len(reason_named)} do: {reason_named[:3]})", not reason_named)
    check(f"after: sessions skip {' and '.join(gone)} ({len(skipped)} not: {skipped[:3]})", not skipped)
print("\n".join(out))
EOF
load() { # MODE COUNT GONE...
    while IFS='|' read -r okv what; do
        check "$what" test "$okv" = 1
    done < <(python3 load.py "$port" "$key" "$@" 2>&1 || echo "0|load.py $1 failed")
}

load before 400 "$x"
code=$(delete "/v1/items/$x" "$key")
check "DELETE /v1/items/$x with a read key: 403 (got $code)" test "$code" = 403
code=$(get "/v1/items/$x")
check "GET /v1/items/$x after the refused DELETE: 200 (got $code)" test "$code" = 200
code=$(delete "/v1/items/$x" "$admin")
check "DELETE /v1/items/$x with an admin key: 200 (got $code: $(cat resp.json))" \
    eval '[ "$code" = 200 ] && grep -q "\"deleted\":\"$x\"" resp.json'
t_del=$(date +%s)
# every slate from here on is served in a later second than the DELETE
while [ "$(date +%s)" -le "$t_del" ]; do sleep 0.05; done
code=$(get "/v1/items/$x")
check "GET /v1/items/$x after the DELETE: 404 (got $code)" test "$code" = 404
code=$(get "/v1/items/$x/similar?n=5")
check "GET /v1/items/$x/similar after the DELETE: 404 (got $code)" test "$code" = 404
code=$(delete "/v1/items/$x" "$admin")
check "DELETE /v1/items/$x again: 404 (got $code)" test "$code" = 404
load after 10000 "$x"
code=$(get "/v1/items/$x")
check "GET /v1/items/$x after the 10,000 requests: 404 (got $code)" test "$code" = 404

# the most popular item goes too: popular lists and the fallback never show it
code=$(delete "/v1/items/$top" "$admin")
check "DELETE /v1/items/$top (the most popular) with an admin key: 200 (got $code)" test "$code" = 200
t_del2=$(date +%s)
while [ "$(date +%s)" -le "$t_del2" ]; do sleep 0.05; done
code=$(get "/v1/items/$top")
check "GET /v1/items/$top after the DELETE: 404 (got $code)" test "$code" = 404
code=$(get "/v1/popular?n=1")
new_top=$(ids)
check "a new most popular item ($new_top, not $top or $x)" test -n "$new_top" -a "$new_top" != "$top" -a "$new_top" != "$x"
load after 2000 "$x" "$top"
for ((k = 0; k < 50; k++)); do
    code=$(get "/v1/users/ghost-$k/recommendations?n=100")
    [ "$code" = 200 ] && ! grep -q -e "\"id\":\"$top\"" -e "\"id\":\"$x\"" resp.json || break
done
check "the fallback of 50 unknown ids never shows $top or $x (stopped at $k, $code)" test "$k" -eq 50

check "the server is up after it all" kill -0 "$spid"
kill -TERM "$spid"; wait "$spid"; rc=$?; spid=""
check "serve exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0
# the served log agrees: from the second after each DELETE on, the slates
# logged are exactly the personal slates and sessions asked (the 10,000
# requests: 5,000; the 2,000 and 50 unknown ids: 1,050) and none has a
# deleted item
q() { sqlite3 s.db "$1"; }
in_window() { # FROM TO ITEM...: slates served in [FROM, TO] that show one of ITEM
    q "SELECT count(DISTINCT s.rec_id) FROM served s JOIN served_items i ON i.slate = s.id
       WHERE s.ts BETWEEN $1 AND $2 AND i.item IN ($3)"
}
n1=$(q "SELECT count(*) FROM served WHERE ts BETWEEN $((t_del + 1)) AND $t_del2")
n2=$(q "SELECT count(*) FROM served WHERE ts > $t_del2")
check "the served log has the 5000 slates of the 10,000 requests (got $n1)" test "$n1" -eq 5000
check "the served log has the 1050 slates asked after the second DELETE (got $n2)" test "$n2" -eq 1050
got=$(in_window $((t_del + 1)) $t_del2 "$x_idx")
check "no slate logged after the DELETE shows $x (got $got)" test "$got" -eq 0
got=$(in_window $((t_del2 + 1)) 9000000000 "$x_idx, $top_idx")
check "no slate logged after the second DELETE shows $x or $top (got $got)" test "$got" -eq 0
"$shelf" served export --store s.db --since "$((t_del2 + 1))" --out late.jsonl 2> late.err
st=$? # a command substitution in the message would set $? again
check "served export --since $((t_del2 + 1)) exits 0 ($(cat late.err))" test "$st" -eq 0
check "it exports the 1050 slates ($(wc -l < late.jsonl))" test "$(wc -l < late.jsonl)" -eq 1050
check "none has a retired item, id null ($(grep -c '"id":null' late.jsonl))" test "$(grep -c '"id":null' late.jsonl)" -eq 0
echo "$pass passed, $fail failed"
test "$fail" -eq 0
