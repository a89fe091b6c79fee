#!/usr/bin/env bash
# test_serve_degraded.sh: when writes fail, /v1/health says so while reads go
# on (issue 15, finding 9). Another process holds the store's write lock
# past the server's lock wait (SHELF_BUSY_WAIT_S=0.3): an event batch is
# answered 500 with a message that says why, /v1/health answers 200 with
# status "degraded" and the error, slates are still served; once the lock
# is free, batches are stored again and health is "ok".
# Uses bash, curl and python3 (sqlite3 module). Usage: test_serve_degraded.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_check.sh" || exit 1
need_tools curl python3
in_fresh_dir "$dir"
small_shop "$shelf"
SHELF_BUSY_WAIT_S=0.3 serve_free_port "$shelf" out.txt err.txt --store s.db --no-auth --log-level error
check "serve starts ($(tail -2 err.txt | tr '\n' ' '))" test -n "$port"
key=none
health() { curl -sS --max-time 10 "http://127.0.0.1:$port/v1/health"; }
js() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
check "health ok at first" test "$(health | js "j['status']")" = ok
check "an event batch (200)" test "$(post_events '[{"user":"u1","item":"i1","type":"view"}]')" = 200

# another process takes the write lock and keeps it until told
/usr/bin/python3 - <<'PY' &
import sqlite3, os, time
c = sqlite3.connect("s.db", isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open("locked", "w").close()
while not os.path.exists("release"):
    time.sleep(0.02)
c.execute("ROLLBACK")
PY
more_pids=$!
for ((i = 0; i < 100; i++)); do [ -e locked ] && break; sleep 0.05; done
check "the lock is held" test -e locked
code=$(curl -sS --max-time 30 -o ans.json -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '[{"user":"u2","item":"i2","type":"view"}]' "http://127.0.0.1:$port/v1/events")
check "a batch the store cannot take: 500 ($code)" test "$code" = 500
check "its message says the store was locked ($(cat ans.json))" grep -q "held the store's lock" ans.json
health > h.json
check "health answers 200 and degraded ($(cat h.json))" test "$(js "j['status']" < h.json)" = degraded
check "with the write error named" grep -q '"message":"events: store: begin: another process held' h.json
code=$(curl -sS --max-time 10 -o recs.json -w '%{http_code}' "http://127.0.0.1:$port/v1/users/u3/recommendations?n=5")
check "reads go on (200: $code)" test "$code" = 200 -a "$(js "len(j['items'])" < recs.json)" = 5

touch release
wait "$more_pids"; more_pids=""
check "a batch once the lock is free (200)" test "$(post_events '[{"user":"u2","item":"i2","type":"view"}]')" = 200
check "health ok again ($(health))" test "$(health | js "j['status']")" = ok
kill -TERM "$spid"; wait "$spid"; spid=""
echo "$pass passed, $fail failed"
test "$fail" -eq 0
