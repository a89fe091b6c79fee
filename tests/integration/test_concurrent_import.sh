#!/usr/bin/env bash
# test_concurrent_import.sh: `shelf import` into the store that `shelf serve`
# is writing: while two loaders post events of new shoppers over HTTP (the
# server allocates their indices) and a reader asks for slates, three imports
# add other new shoppers and items. Every import succeeds (no UNIQUE
# collision of indices), every batch and slate request is answered 200 (the
# slates at over 1,000 requests/s, by wrk), every event is stored once,
# indices stay dense and distinct, the store is intact; after a reload every
# imported shopper is served from its imported history and the imported
# items are known, without a restart; and after a restart too.
# Uses bash, curl, wrk and sqlite3. Usage: test_concurrent_import.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(cd "$(dirname "$0")" && pwd)/lib_serve.sh" || exit 1
need_tools curl sqlite3 wrk
wrk_dir="$(cd "$(dirname "$0")/../../bench/wrk" && pwd)"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi; }

spid="" port="" pids=()
cleanup() {
    touch stop.flag 2>/dev/null
    for p in "${pids[@]}" $spid; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

start_server() {
    : > out.txt
    "$shelf" serve --store s.db --port 0 --log-level warn > out.txt 2> err.txt &
    spid=$!
    port=""
    for ((i = 0; i < 300; i++)); do
        port=$(listening_port out.txt)
        [ -n "$port" ] && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ]
}

"$shelf" gen --store s.db --users 200 --items 100 --events 5000 --seed 3 --quiet >/dev/null 2>&1
check "a shop to start from" test $? -eq 0
key=$("$shelf" keys create --store s.db --scope write 2>/dev/null)
check "a write key" test -n "$key"
admin=$("$shelf" keys create --store s.db --scope admin 2>/dev/null)
for ((u = 0; u < 200; u++)); do echo "u$u"; done > known_users.txt
check "serve starts" start_server

# CSVs of new shoppers imp<k>-<n> on the shop's items and new items x<k>-<n>
for k in 1 2 3; do
    { echo "user,item,type,value,ts"
      for ((n = 0; n < 400; n++)); do
          echo "imp$k-$((n % 150)),i$((n % 100)),view,0,$((1767225600 + n))"
          echo "imp$k-$((n % 150)),x$k-$((n % 30)),purchase,0,$((1767225600 + n))"
      done; } > "imp$k.csv"
done

# loader P: batches of 20 events of 4 new shoppers http<P>-<batch>-<k> until stop.flag
batch_of_new_shoppers() { # P B: 20 events, 4 shoppers never seen before
    local i sep=''
    printf '['
    for ((i = 0; i < 20; i++)); do
        printf '%s{"user":"http%s-%s-%s","item":"i%s","type":"view","rec_id":"%s-%s-%s"}' \
            "$sep" "$1" "$2" $((i % 4)) $((RANDOM % 100)) "$1" "$2" "$i"
        sep=,
    done
    printf ']'
}
loader() {
    local p=$1 b=0 code
    : > "ack.$p"; : > "nak.$p"
    until [ -e stop.flag ]; do
        b=$((b + 1))
        code=$(post_events "$(batch_of_new_shoppers "$p" "$b")")
        [ "$code" = 200 ] && echo "$b" >> "ack.$p" || echo "$b $code" >> "nak.$p"
    done
}
reader() { # slates of the shop's shoppers, as fast as 4 connections go, through the imports
    WRK_DIR=$wrk_dir USERS=known_users.txt KEY=$key wrk -t 1 -c 4 -d 5s -s "$wrk_dir/recs.lua" \
        "http://127.0.0.1:$port" > reads.txt 2>&1
}
loader a & pids+=($!)
loader b & pids+=($!)
reader & pids+=($!)
sleep 0.5
for k in 1 2 3; do
    "$shelf" import --store s.db --format csv "imp$k.csv" --quiet > "imp$k.out" 2>&1
    st=$? # before any expansion below: a command substitution sets $? again
    check "import $k while serving (exit 0, no UNIQUE error): $(tail -1 "imp$k.out")" test "$st" -eq 0
    sleep 0.3
done
sleep 0.5
touch stop.flag
for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
pids=()
acked=$(( $(wc -l < ack.a) + $(wc -l < ack.b) ))
check "event batches were posted during the imports ($acked)" test "$acked" -gt 5
check "every event batch answered 200 ($(cat nak.a nak.b | head -3 | tr '\n' ' '))" test ! -s nak.a -a ! -s nak.b
reads=$(grep '^{' reads.txt | tail -1)
json_num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<< "$reads"; }
min_rate=${SHELF_TEST_MIN_RATE:-1000} # the ThreadSanitizer leg of .ci/run runs ~10x slower: it lowers this
check "slates were asked during the imports at over $min_rate/s ($reads)" \
    awk -v r="$(json_num req_per_s)" -v m="$min_rate" 'BEGIN { exit !(r > m) }'
check "every slate answered 200 ($reads)" test "$(json_num non_2xx)" = 0 -a "$(json_num socket_errors)" = 0

# a reload brings what the imports added into the live state; an imported
# shopper who also sent events over HTTP since has each event once
code=$(post_events '[{"user":"imp1-0","item":"i1","type":"view"},{"user":"imp1-0","item":"i2","type":"cart"}]')
check "events of an imported shopper over HTTP (200: $code)" test "$code" = 200
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" \
    "http://127.0.0.1:$port/v1/items/x2-3/similar?n=3")
check "before the reload the imported item is unknown to the server (404: $code)" test "$code" = 404
code=$(curl -sS --max-time 30 -o reload.json -w '%{http_code}' -X POST -H "Authorization: Bearer $admin" \
    "http://127.0.0.1:$port/v1/admin/reload")
check "reload answers 200 ($code)" test "$code" = 200
for k in 1 2 3; do for ((n = 0; n < 150; n++)); do
    echo "url = \"http://127.0.0.1:$port/v1/users/imp$k-$n/recommendations?n=5\""
done; done > imported.cfg
curl -sS --max-time 60 -H "Authorization: Bearer $key" -K imported.cfg > imported.json 2>&1
check "after the reload all 450 imported shoppers are known ($(grep -o '"known_user":true' imported.json | wc -l))" \
    test "$(grep -o '"known_user":true' imported.json | wc -l)" = 450
check "and served from their imported history, not the fallback" \
    test "$(grep -o '"source":"popular"' imported.json | wc -l)" = 0
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" \
    "http://127.0.0.1:$port/v1/items/x2-3/similar?n=3")
check "the imported item is known after the reload (200: $code)" test "$code" = 200
curl -sS --max-time 10 -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/users/imp1-0" > imp1-0.json
stored=$(sqlite3 s.db "SELECT count(*) FROM events e JOIN users u ON u.idx = e.user WHERE u.ext_id = 'imp1-0'")
check "the live history holds each of its $stored stored events once ($(grep -o '"events":[0-9]*' imp1-0.json))" \
    grep -q "\"events\":$stored[,}]" imp1-0.json
kill -TERM "$spid"; wait "$spid"; spid=""

q() { sqlite3 s.db "$1"; }
check "store intact" test "$(q 'PRAGMA integrity_check')" = ok
check "user indices dense" test "$(q 'SELECT count(*) = max(idx) + 1 FROM users')" = 1
check "item indices dense" test "$(q 'SELECT count(*) = max(idx) + 1 FROM items')" = 1
check "imported shoppers all stored" test "$(q "SELECT count(*) FROM users WHERE ext_id LIKE 'imp%'")" = 450
check "imported items all stored" test "$(q "SELECT count(*) FROM items WHERE ext_id LIKE 'x%'")" = 90
check "imported events all stored (and the 2 posted for imp1-0)" \
    test "$(q "SELECT count(*) FROM events e JOIN users u ON u.idx = e.user WHERE u.ext_id LIKE 'imp%'")" = 2402
want=$(( acked * 20 ))
check "every acknowledged HTTP event stored once" test "$(q "SELECT count(*) FROM events WHERE rec_id GLOB '[ab]-*'")" = "$want"
check "no two users share an index or an id" test "$(q 'SELECT count(DISTINCT ext_id) = count(*) FROM users')" = 1

# a restart serves the imported shoppers from their own history
check "serve starts again" start_server
code=$(curl -sS --max-time 10 -o resp.json -w '%{http_code}' -H "Authorization: Bearer $key" \
    "http://127.0.0.1:$port/v1/users/imp2-7/recommendations?n=5")
check "an imported shopper is served (200, known user)" eval '[ "$code" = 200 ] && grep -q "\"known_user\":true" resp.json'
kill -TERM "$spid"; wait "$spid"; spid=""
echo "$pass passed, $fail failed"
test "$fail" -eq 0
