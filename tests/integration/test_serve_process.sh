#!/usr/bin/env bash
# test_serve_process.sh: drives `shelf serve` as a process: start on a free port
# (--port 0), health and auth, SIGHUP reload of a newer bundle, SIGTERM drain
# under load (exit 0, every acknowledged batch stored), and a kill -9 in the
# middle of a stream of event batches (every acknowledged batch durable, each
# batch all or nothing, no duplicates, the store intact and servable again).
# Uses bash, curl and sqlite3 only. Usage: test_serve_process.sh SHELF_BINARY TMPDIR
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib_serve.sh" || exit 1
shelf=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
pass=0 fail=0
ok()   { pass=$((pass + 1)); }
bad()  { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
need_tools curl sqlite3

spid="" stag="" port="" key="" loaders=()
cleanup() {
  touch stop.flag 2>/dev/null
  for p in "${loaders[@]}" $spid; do kill -9 "$p" 2>/dev/null; done
  for p in "${loaders[@]}" $spid; do wait "$p" 2>/dev/null; done
}
trap cleanup EXIT

# start_server TAG: serve s.db + the bundles in B on a free port; sets spid, port
start_server() {
  local tag=$1 i
  stag=$tag
  : > "out.$tag"
  "$shelf" serve --store s.db --bundle B --port 0 --log-level warn > "out.$tag" 2> "err.$tag" &
  spid=$!
  port=""
  for ((i = 0; i < 300; i++)); do       # up to 30 s (ASan builds load slowly)
    port=$(listening_port "out.$tag")
    [ -n "$port" ] && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    bad "serve ($tag) printed no 'listening on' line within 30 s"
    cat "out.$tag" "err.$tag" >&2
    return 1
  fi
  ok
}

alive() { [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; }
# still_up WHAT TAG: fails if the server died (and shows why), then starts a
# fresh one on the same store so that the next steps still run
still_up() {
  alive && { ok; return 0; }
  local rc
  wait "$spid" 2>/dev/null; rc=$?
  bad "the server died $1 (exit status $rc); its stderr ends: $(tail -3 "err.$stag" | tr '\n' '|')"
  spid=""
  start_server "$2-again"
}

# terminate: SIGTERM, wait up to 30 s for the exit; returns the exit status
terminate() {
  local i rc
  kill -TERM "$spid"
  for ((i = 0; i < 300; i++)); do alive || break; sleep 0.1; done
  if alive; then
    bad "SIGTERM: the server did not exit within 30 s"
    kill -9 "$spid" 2>/dev/null
  fi
  wait "$spid"; rc=$?
  spid=""
  return $rc
}

# api METHOD PATH [BODY] [KEY]: the HTTP status on stdout, the body in resp.json
api() {
  local k=${4-$key}
  local auth=()
  [ -n "$k" ] && auth=(-H "Authorization: Bearer $k")
  if [ -n "${3-}" ]; then
    curl -sS --max-time 10 -o resp.json -w '%{http_code}' -X "$1" "${auth[@]}" \
      -H 'Content-Type: application/json' --data-binary "$3" "http://127.0.0.1:$port$2"
  else
    curl -sS --max-time 10 -o resp.json -w '%{http_code}' -X "$1" "${auth[@]}" "http://127.0.0.1:$port$2"
  fi
}
health_version() {
  curl -sS --max-time 10 "http://127.0.0.1:$port/v1/health" 2>/dev/null |
    grep -Eo '"version" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
}

# loader PREFIX: POSTs batches of 100 events with rec_ids PREFIX<batch>-<i>
# until stop.flag exists; the batch numbers answered 200 go to ack.PREFIX,
# the others ("batch code", code 000: no answer) to nak.PREFIX
loader() {
  local p=$1 b=0 i body code
  : > "ack.$p"; : > "nak.$p"
  while [ ! -e stop.flag ]; do
    b=$((b + 1))
    body='['
    for ((i = 0; i < 100; i++)); do
      body+="{\"user\":\"u$((RANDOM % 200))\",\"item\":\"i$((RANDOM % 100))\",\"type\":\"view\",\"rec_id\":\"$p$b-$i\"},"
    done
    body="${body%,}]"
    code=$(post_events "$body")
    if [ "$code" = 200 ]; then echo "$b" >> "ack.$p"; else echo "$b $code" >> "nak.$p"; sleep 0.05; fi
  done
}
start_loaders() {
  local p
  rm -f stop.flag
  loaders=()
  for p in "$@"; do loader "$p" & loaders+=($!); done
}
stop_loaders() {
  local p
  touch stop.flag
  for p in "${loaders[@]}"; do wait "$p" 2>/dev/null; done
  loaders=()
}

# sql_batches PREFIX...: SQL that loads the acknowledged batches into table ack
sql_batches() {
  local p b
  echo "CREATE TEMP TABLE ack(b TEXT PRIMARY KEY);"
  for p in "$@"; do
    while read -r b; do echo "INSERT INTO ack VALUES('$p$b');"; done < "ack.$p"
  done
}
# acked_missing PREFIX...: acknowledged batches that do not have all 100 events
acked_missing() {
  { sql_batches "$@"
    echo "SELECT b FROM ack WHERE (SELECT count(*) FROM events WHERE rec_id >= ack.b || '-' AND rec_id < ack.b || '.') != 100;"
  } | sqlite3 s.db
}
# partial_batches GLOB: stored batches of this test with other than 100 events
partial_batches() {
  sqlite3 s.db "SELECT substr(rec_id, 1, instr(rec_id, '-') - 1) AS b, count(*) AS n FROM events
                WHERE rec_id GLOB '$1' GROUP BY b HAVING n != 100;"
}

# --- set-up: store, a transformer bundle, an admin key
check "init" "$shelf" init --store s.db --quiet >>setup.log 2>&1
check "gen" "$shelf" gen --store s.db --users 200 --items 100 --events 3000 --quiet >>setup.log 2>&1
mkdir -p B
check "train v1" "$shelf" train --store s.db --model transformer --bundle B/v1 --tf-epochs 1 --quiet >>setup.log 2>&1
key=$("$shelf" keys create --store s.db --scope admin 2>/dev/null); check "admin key" test $? -eq 0
check "key looks like a key" grep -Eqx 'shelf_[0-9a-f]{64}' <<<"$key"

# --- start on a free port; health, auth
start_server a || exit 1
check "ready line names the address" grep -q "^shelf serve: listening on http://127.0.0.1:$port " out.a
check "ready line names the model: '(model transformer v1...)' (got: $(cat out.a))" grep -Eq "listening on http://[0-9.]+:$port \(model transformer v1" out.a
check "health 200 (open route, no key)" test "$(api GET /v1/health "" "")" = 200
check "health status ok" grep -Eq '"status" *: *"ok"' resp.json
check "health: 200 users" grep -Eq '"users" *: *200[,}]' resp.json
check "health: model v1" grep -Eq '"version" *: *"v1' resp.json
check "no key: 401" test "$(api GET /v1/users/u1 "" "")" = 401
check "no key: error code unauthorized" grep -Eq '"code" *: *"unauthorized"' resp.json
check "unknown key: 401" test "$(api GET /v1/users/u1 "" shelf_0000000000000000000000000000000000000000000000000000000000000000)" = 401
check "admin key: 200" test "$(api GET /v1/users/u1)" = 200
check "user u1 answered" grep -Eq '"id" *: *"u1"' resp.json
check "one event: 200" test "$(api POST /v1/events '{"user":"u1","item":"i3","type":"click","rec_id":"one-0"}')" = 200
check "one event accepted" grep -Eq '"accepted" *: *1[,}]' resp.json
check "the event is in the store" test "$(sqlite3 s.db "SELECT count(*) FROM events WHERE rec_id = 'one-0'")" = 1
still_up "during the API requests" a || exit 1

# --- SIGHUP: reload the newest bundle
sleep 1   # B/v2's manifest "created" second must be newer than v1's
check "train v2" "$shelf" train --store s.db --model transformer --bundle B/v2 --tf-epochs 1 --quiet >>setup.log 2>&1
kill -HUP "$spid"
v=""
for ((i = 0; i < 200; i++)); do
  v=$(health_version)
  [[ $v == v2* ]] && break
  alive || break
  sleep 0.1
done
check "SIGHUP: health names v2 within 20 s (got '$v')" test "${v:0:2}" = v2
check "still serving after the reload" test "$(api GET /v1/health)" = 200
still_up "during the reload" a || exit 1

# --- SIGTERM: drain under load, exit 0, every acknowledged batch stored
start_loaders d
sleep 1.5
t0=$SECONDS
terminate; rc=$?
stop_loaders
check "SIGTERM: exit status 0 (got $rc)" test "$rc" -eq 0
echo "drain: exited $((SECONDS - t0)) s after SIGTERM, $(wc -l < ack.d) batches acknowledged"
check "drain: some batches were acknowledged" test "$(wc -l < ack.d)" -ge 1
m=$(acked_missing d); check "drain: every acknowledged batch is stored: missing [$m]" test -z "$m"
m=$(partial_batches 'd*-*'); check "drain: no partial batch: [$m]" test -z "$m"
c=$(awk '$2 != "000" && $2 != "503"' nak.d | head -5 | tr '\n' ' ')
check "drain: batches not taken got 503 or no answer: [$c]" test -z "$c"

# --- crash: kill -9 while two loaders are mid-flight
start_server b || exit 1
check "restarted: health 200" test "$(api GET /v1/health)" = 200
still_up "after the restart" b || exit 1
start_loaders b c
sleep 3
kill -9 "$spid"
wait "$spid" 2>/dev/null
spid=""
stop_loaders
nack=$(cat ack.b ack.c | wc -l)
nstored=$(sqlite3 s.db "SELECT count(DISTINCT substr(rec_id, 1, instr(rec_id, '-') - 1)) FROM events WHERE rec_id GLOB '[bc]*-*'")
ncut=$(cat nak.b nak.c | grep -c " 000$")
echo "crash: $nack batches acknowledged, $nstored stored, $ncut requests got no answer"
check "crash: the loaders got batches acknowledged" test "$nack" -ge 2
m=$(acked_missing b c); check "crash: every acknowledged batch is stored: missing [$m]" test -z "$m"
m=$(partial_batches '[bc]*-*'); check "crash: each batch all or nothing: [$m]" test -z "$m"
c=$(cat nak.b nak.c | awk '$2 != "000"' | head -5 | tr '\n' ' ')
check "crash: before the kill no batch was refused: [$c]" test -z "$c"
d=$(sqlite3 s.db "SELECT rec_id, count(*) FROM events WHERE rec_id IS NOT NULL GROUP BY rec_id HAVING count(*) > 1 LIMIT 5")
check "crash: no rec_id stored twice: [$d]" test -z "$d"
ic=$(sqlite3 s.db "PRAGMA integrity_check"); check "crash: integrity_check ok (got '$ic')" test "$ic" = ok

# --- the crashed store serves again
start_server c || exit 1
check "after the crash: health 200" test "$(api GET /v1/health)" = 200
check "after the crash: model v2" grep -Eq '"version" *: *"v2' resp.json
check "after the crash: GET /v1/users/u1 200" test "$(api GET /v1/users/u1)" = 200
check "after the crash: user u1 answered" grep -Eq '"id" *: *"u1"' resp.json
still_up "after the crash" c || exit 1
check "after the crash: events accepted" test "$(api POST /v1/events '[{"user":"u1","item":"i5","rec_id":"after-0"}]')" = 200
u7=$(sqlite3 s.db "SELECT idx FROM users WHERE ext_id = 'u7'")
check "u7 has events before" test "$(sqlite3 s.db "SELECT count(*) FROM events WHERE user = $u7")" -gt 0
check "forget u7 (admin)" test "$(api DELETE /v1/users/u7)" = 200
check "forgotten u7: no events left" test "$(sqlite3 s.db "SELECT count(*) FROM events WHERE user = $u7")" = 0
check "export lists no forgotten user" test "$("$shelf" export --store s.db --format csv --what users | grep -c -e u7, -e "$(printf '\001')")" = 0
terminate; rc=$?
check "final SIGTERM: exit 0 (got $rc)" test "$rc" -eq 0
check "after-crash event stored" test "$(sqlite3 s.db "SELECT count(*) FROM events WHERE rec_id = 'after-0'")" = 1

r=$(grep -hE 'Sanitizer|runtime error' err.* | head -3 | tr '\n' '|')
check "no sanitizer report from any server: [$r]" test -z "$r"

echo "$pass passed, $fail failed"
test "$fail" -eq 0
