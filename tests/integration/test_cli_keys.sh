#!/usr/bin/env bash
# test_cli_keys.sh: drives `shelf keys` end to end: create (key on stdout,
# note on stderr), list (table and JSON), revoke, usage errors, and that the
# key text never reaches the store file. Usage: test_cli_keys.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
pass=0 fail=0
ok()   { pass=$((pass + 1)); }
bad()  { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$1')); print(d$2)"; }

out=$("$shelf" keys --help); check "keys --help exits 0" test $? -eq 0
check "keys --help shows usage" grep -q "usage: shelf keys" <<<"$out"
check "keys --help lists the scopes" grep -q "read|write|admin" <<<"$out"

check "init" "$shelf" init --store k.db
"$shelf" keys create --scope read --store missing.db >/dev/null 2>&1
check "create on a missing store exits 1" test $? -eq 1
check "no store file was created" test ! -e missing.db

# create: the key alone on stdout, a note on stderr
k1=$("$shelf" keys create --scope write --name ci-bot --store k.db 2>err1.txt); check "create exits 0" test $? -eq 0
check "key is one line" test "$(printf '%s\n' "$k1" | wc -l)" -eq 1
check "key is shelf_ + 64 hex" grep -Eqx 'shelf_[0-9a-f]{64}' <<<"$k1"
check "stderr says it is shown once" grep -qi "only time" err1.txt
check "stderr does not repeat the key" test "$(grep -c "$k1" err1.txt)" -eq 0
k2=$("$shelf" keys create --scope admin --store k.db 2>/dev/null); check "second create exits 0" test $? -eq 0
k3=$("$shelf" keys create --scope read --name reader --store k.db 2>/dev/null)
check "keys differ" test "$k1" != "$k2"

# usage errors exit 2
"$shelf" keys create --scope root --store k.db >/dev/null 2>err.txt; check "bad scope exits 2" test $? -eq 2
check "bad scope names the choices" grep -q "read|write|admin" err.txt
"$shelf" keys create --store k.db >/dev/null 2>&1; check "create without scope exits 2" test $? -eq 2
"$shelf" keys frobnicate --store k.db >/dev/null 2>err.txt; check "unknown action exits 2" test $? -eq 2
check "unknown action names the valid ones" grep -q "create, list or revoke" err.txt
"$shelf" keys --store k.db >/dev/null 2>&1; check "no action exits 2" test $? -eq 2
"$shelf" keys revoke --store k.db >/dev/null 2>&1; check "revoke without id exits 2" test $? -eq 2
"$shelf" keys revoke abc --store k.db >/dev/null 2>&1; check "revoke of a non-number exits 2" test $? -eq 2
"$shelf" keys list --name x --bogus --store k.db >/dev/null 2>&1; check "unknown flag exits 2" test $? -eq 2

# list
"$shelf" keys list --store k.db > list.txt; check "list exits 0" test $? -eq 0
check "list has a header and three keys" test "$(wc -l < list.txt)" -eq 4
check "list shows the prefix" grep -q "${k1:0:12}" list.txt
check "list shows the name" grep -q "ci-bot" list.txt
check "list never shows a whole key" test "$(grep -c -e "$k1" -e "$k2" -e "$k3" list.txt)" -eq 0
"$shelf" keys list --json --store k.db > list.json; check "list --json exits 0" test $? -eq 0
check "json: three keys" test "$(json list.json ".__len__()")" = 3
check "json: scope" test "$(json list.json "[0]['scope']")" = write
check "json: name" test "$(json list.json "[0]['name']")" = ci-bot
check "json: prefix" test "$(json list.json "[1]['prefix']")" = "${k2:0:12}"
check "json: not revoked" test "$(json list.json "[0]['revoked']")" = False
check "json: no hash field" test "$(json list.json "[0].get('hash', 'none')")" = none
id1=$(json list.json "[0]['id']")

# revoke
check "revoke exits 0" "$shelf" keys revoke "$id1" --store k.db
"$shelf" keys revoke 999 --store k.db >/dev/null 2>err.txt; check "revoke unknown exits 1" test $? -eq 1
check "revoke unknown names the id" grep -q 999 err.txt
"$shelf" keys list --json --store k.db > list2.json
check "json: revoked" test "$(json list2.json "[0]['revoked']")" = True
check "json: others still active" test "$(json list2.json "[1]['revoked']")" = False
check "table: revoked" grep -q "revoked" <<<"$("$shelf" keys list --store k.db | grep ci-bot)"

# the key texts are nowhere in the store (neither file nor WAL)
for f in k.db k.db-wal; do
  [ -e "$f" ] || continue
  for k in "$k1" "$k2" "$k3"; do
    check "key not in $f" test "$(grep -c -a "$k" "$f")" -eq 0
  done
done
check "the prefix is in the store (the test can see the file)" test "$(cat k.db k.db-wal 2>/dev/null | grep -c -a "${k1:0:12}")" -gt 0

echo "$pass passed, $fail failed"
test "$fail" -eq 0
