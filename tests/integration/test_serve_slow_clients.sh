#!/usr/bin/env bash
# test_serve_slow_clients.sh: one address cannot lock everyone out of `shelf
# serve` (issue 15, finding 2): with 4,200 idle connections from 127.0.0.1,
# at most --max-conns-per-ip of them stay open and a client from 127.0.0.2
# gets its answers with p99 under 50 ms; a connection that sends nothing is
# closed after --header-timeout. Uses bash, curl and python3.
# Usage: test_serve_slow_clients.sh SHELF_BINARY TMPDIR
set -uo pipefail
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_attack.sh" || exit 1
enter_test "$@"
need_tools curl /usr/bin/python3

# 4,200 connections take as many descriptors on each side (the server
# inherits this limit)
n=4200
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((n + 200)) ]; then
    n=$(($(ulimit -n) - 200))
    echo "note: the descriptor limit is $(ulimit -n): $n idle connections instead of 4200"
fi
out=$("$shelf" serve --help 2>&1)
check "serve --help tells of --max-conns-per-ip" grep -q -- "--max-conns-per-ip" <<<"$out"
check "serve --help tells of --header-timeout" grep -q -- "--header-timeout" <<<"$out"
shop_server "$shelf" read --header-timeout 2

r=$(attack idle "$port" "$n" 200 "$key")
echo "$n idle connections from 127.0.0.1, 200 requests from 127.0.0.2: $r"
check "the other address: every request answered ($r)" test "$(field "$r" failed)" -eq 0
p99=$(field "$r" p99_ms)
check "the other address: p99 under 50 ms ($p99 ms)" less "$p99" 50
check "at most 64 of the idle connections stay open ($(field "$r" open))" test "$(field "$r" open)" -le 64

r=$(attack silent "$port" 8)
echo "a silent connection: $r"
after=$(field "$r" after_s)
check "a silent connection is closed ($r)" test "$(field "$r" closed)" = True
check "... after about --header-timeout 2 s ($after s)" eval 'less 1.5 "$after" && less "$after" 6'
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/popular")
check "after all that, 127.0.0.1 is answered again ($st)" test "$st" = 200
finish
