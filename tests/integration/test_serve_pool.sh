#!/usr/bin/env bash
# test_serve_pool.sh: the ranking routes run on --rank-workers threads, fed
# first come, first served from every connection. With one HTTP thread
# (--http-threads 1), every connection of a burst lands on the same thread:
# 16 clients at once still rank on both of two workers (each takes a fair
# share, /metrics), every answer is a whole slate, and the ranking threads
# are there by name. Before the pool, such a burst ranked on one core.
# Uses bash, curl and python3. Usage: test_serve_pool.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_check.sh" || exit 1
need_tools curl python3
in_fresh_dir "$dir"
check "a shop and its bundle" shop_with_bundle "$shelf" 11
key=$("$shelf" keys create --store s.db --scope read 2>/dev/null)
serve_free_port "$shelf" out.txt err.txt --store s.db --bundle B --log-level warn --http-threads 1 --rank-workers 2
check "serve starts ($(tail -2 err.txt | tr '\n' ' '))" test -n "$port"
names=$(cat /proc/"$spid"/task/*/comm 2>/dev/null | grep -c '^shelf-rank$')
check "two ranking threads (${names:-0})" test "${names:-0}" = 2

# 16 keep-alive clients at once, 60 slates each (users u0..u299 of the shop)
python3 - "$port" "$key" > burst.txt <<'PY'
import http.client, json, sys, threading
port, key = int(sys.argv[1]), sys.argv[2]
ok, bad = [0], []
lock = threading.Lock()
def client(c):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for k in range(60):
        user = (c * 60 + k) % 300
        conn.request("GET", "/v1/users/u%d/recommendations?n=5" % user, headers={"Authorization": "Bearer " + key})
        resp = conn.getresponse()
        body = resp.read()
        with lock:
            if resp.status == 200 and len(json.loads(body)["items"]) == 5: ok[0] += 1
            else: bad.append((resp.status, body[:200]))
threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(ok[0], len(bad), bad[:2])
PY
read -r good nbad rest < burst.txt
check "960 whole slates, none bad (${good:-0} good, ${nbad:-?} bad ${rest:-})" test "${good:-0}" = 960 -a "${nbad:-1}" = 0
curl -sS --max-time 10 "http://127.0.0.1:$port/metrics" > metrics.txt
w0=$(sed -n 's/^shelf_rank_worker_requests_total{worker="0"} //p' metrics.txt)
w1=$(sed -n 's/^shelf_rank_worker_requests_total{worker="1"} //p' metrics.txt)
check "both workers ranked, each at least 10 % ($w0 and $w1 of 960)" \
    test "${w0:-0}" -ge 96 -a "${w1:-0}" -ge 96 -a $((${w0:-0} + ${w1:-0})) -eq 960
check "the queue is empty after the burst" grep -qx 'shelf_rank_queue 0' metrics.txt
kill -TERM "$spid"; wait "$spid"
check "the server stops cleanly on SIGTERM" test $? -eq 0
spid=""
echo "$pass passed, $fail failed"
test "$fail" -eq 0
