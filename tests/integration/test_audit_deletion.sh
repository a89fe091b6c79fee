#!/usr/bin/env bash
# test_audit_deletion.sh: deletion reaches the models (issue 15, finding 8).
# After DELETE /v1/users/{id}, the bundle in service still holds the
# shopper's data: /v1/health says so under model.retrain (how many
# deletions, since, by when, the command) and turns degraded once
# --retrain-within has passed; `shelf audit deletion ID --bundle DIR` lists
# that bundle (exit 3). After the retrain the command names and a reload,
# health is ok and the audit prints nothing (exit 0). The same for an item;
# an id never deleted or unknown is an error (exit 1).
# Uses bash, curl and python3. Usage: test_audit_deletion.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_check.sh" || exit 1
need_tools curl python3
in_fresh_dir "$dir"
shop_with_bundle "$shelf" 4 && mkdir BB && mv B BB/first
check "a shop and a directory of bundles" test -s BB/first/manifest.json
admin=$("$shelf" keys create --store s.db --scope admin 2>/dev/null)
serve_free_port "$shelf" out.txt err.txt --store s.db --bundle BB --retrain-within 2 --log-level warn
check "serve starts" test -n "$port"
url="http://127.0.0.1:$port"
js() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
health() { curl -sS --max-time 10 "$url/v1/health"; }
admin_call() { curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -X "$1" -H "Authorization: Bearer $admin" "$url$2"; }
audit() { "$shelf" audit deletion "$@" --store s.db --bundle BB > audit.out 2> audit.err; }

check "health ok, nothing to retrain" test "$(health | js "(j['status'], 'retrain' in j['model'])")" = "('ok', False)"
check "DELETE a shopper (200)" test "$(admin_call DELETE /v1/users/u7)" = 200
h=$(health)
check "health names the retrain ($h)" \
    test "$(js "(j['status'], j['model']['retrain']['deletions'])" <<< "$h")" = "('ok', 1)"
check "with the command" grep -q '"command":"shelf train --store s.db --model itemknn --bundle BB/' <<< "$h"
audit u7; st=$?
check "the audit lists the bundle in service ($(cat audit.out))" grep -q "^bundle BB/first (model itemknn" audit.out
check "exit 3 while a place remains ($st)" test "$st" = 3
check "one place, stdout one line" test "$(wc -l < audit.out)" = 1
sleep 2.2
check "degraded once --retrain-within has passed" test "$(health | js "j['status']")" = degraded

"$shelf" train --store s.db --model itemknn --bundle BB/ --quiet > /dev/null 2>&1
check "the retrain" test $? -eq 0
check "a reload (200)" test "$(admin_call POST /v1/admin/reload)" = 200
check "health ok, no retrain asked" test "$(health | js "(j['status'], 'retrain' in j['model'])")" = "('ok', False)"
rm -rf BB/first
audit u7; st=$?
check "after the retrain the audit prints nothing (exit $st: $(cat audit.out))" test "$st" = 0 -a ! -s audit.out

check "DELETE an item (200)" test "$(admin_call DELETE /v1/items/i5)" = 200
audit i5; st=$?
check "the audit of the item lists the bundle (exit $st)" eval '[ "$st" = 3 ] && grep -q "^bundle BB/itemknn-" audit.out'
sleep 1.1 # bundle names are by the second
"$shelf" train --store s.db --model itemknn --bundle BB/ --quiet > /dev/null 2>&1
for b in BB/*; do # the older bundle is removed, as the audit asked
    [ "$b" = "$(ls -d BB/* | sort | tail -1)" ] || rm -rf "$b"
done
audit i5; st=$?
check "after the retrain the item's audit prints nothing (exit $st: $(cat audit.out))" test "$st" = 0 -a ! -s audit.out
audit u8; st=$?
check "an id of the store was not deleted (exit 1: $st)" eval '[ "$st" = 1 ] && grep -q "not deleted" audit.err'
audit nobody; st=$?
check "an id never seen (exit 1: $st)" eval '[ "$st" = 1 ] && grep -q "no deletion of" audit.err'
kill -TERM "$spid"; wait "$spid"; spid=""
echo "$pass passed, $fail failed"
test "$fail" -eq 0
