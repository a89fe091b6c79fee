#!/usr/bin/env bash
# test_serve_aborts.sh: a client that leaves before its answer (it closes
# the connection halfway through a body) is not the server's error: /metrics
# counts it in shelf_http_aborted_total, not as a 5xx (issue 15, finding 9),
# and the server goes on answering.
# Uses bash, curl and python3. Usage: test_serve_aborts.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_check.sh" || exit 1
need_tools curl python3
in_fresh_dir "$dir"
small_shop "$shelf"
serve_free_port "$shelf" out.txt err.txt --store s.db --no-auth --log-level warn
check "serve starts ($(tail -2 err.txt | tr '\n' ' '))" test -n "$port"
key=none
code=$(post_events '[{"user":"u1","item":"i1","type":"view"}]')
check "an event batch (200: $code)" test "$code" = 200

# 20 clients send half a body, then close
python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
for k in range(20):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n[{\"user\":\"u1\",")
    time.sleep(0.01)
    s.close()
PY
check "the clients ran" test $? -eq 0
metrics() { curl -sS --max-time 10 "http://127.0.0.1:$port/metrics"; }
for ((i = 0; i < 50; i++)); do # the server notices each close in its own time
    [ "$(metrics | sed -n 's/^shelf_http_aborted_total{route="events"} //p')" = 20 ] && break
    sleep 0.1
done
metrics > metrics.txt
# a client that closes before the server has read its head is never a
# request; under load a few may: from 1 to 20, never a 5xx
aborted=$(sed -n 's/^shelf_http_aborted_total{route="events"} //p' metrics.txt)
check "aborted requests counted (${aborted:-none} of 20)" test "${aborted:-0}" -ge 1 -a "${aborted:-0}" -le 20
check "no 5xx counted ($(grep -c 5xx metrics.txt))" test "$(grep -c 'code="5xx"' metrics.txt)" = 0
check "the batch before counted as 2xx" grep -qx 'shelf_http_requests_total{route="events",code="2xx"} 1' metrics.txt
code=$(post_events '[{"user":"u2","item":"i2","type":"view"}]')
check "the server goes on (200: $code)" test "$code" = 200
kill -TERM "$spid"; wait "$spid"; spid=""
echo "$pass passed, $fail failed"
test "$fail" -eq 0
