#!/usr/bin/env bash
# test_readme_walkthrough.sh: the README's "Five minutes with your shop's
# export" block, run as it stands (issue 21, item 9): its first ```sh block
# is taken out of README.md, port 8080 becomes a free one, build/shelf is
# the binary under test, and it runs under `bash -e -o pipefail` in an
# empty directory. Every step must succeed, the import must map the
# export's columns and types, the evaluation must score users, and the last
# curl must print a slate of 5 items with reasons.
# Uses bash, curl and python3. Usage: test_readme_walkthrough.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib_serve.sh" && . "$(dirname "$0")/lib_check.sh" || exit 1
need_tools curl python3
in_fresh_dir "$dir"
python3 - "$root/README.md" > walk.sh <<'PY'
import sys
text = open(sys.argv[1]).read()
at = text.index("## Five minutes with your shop's export")
start = text.index("```sh\n", at) + len("```sh\n")
print(text[start:text.index("```", start)], end="")
PY
check "the README has the walkthrough ($(wc -l < walk.sh) lines)" test "$(wc -l < walk.sh)" -ge 10
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s/8080/$port/g" walk.sh
mkdir -p build && ln -s "$shelf" build/shelf
timeout 300 bash -e -o pipefail walk.sh > out.txt 2> err.txt
st=$?
check "the walkthrough runs to its end (exit $st; $(tail -3 err.txt | tr '\n' ' '))" test "$st" = 0
check "  its import mapped the export (40000 events, no unknown type)" grep -q "events.csv: 40000 records, 40000 events" out.txt
check "  its evaluation scored users" grep -qE "^shop.db, loo-full, test targets, [1-9][0-9]* users evaluated" out.txt
check "  its last curl printed a slate of 5 items with reasons" python3 -c "
import json, sys
j = json.loads(open('out.txt').read().splitlines()[-1])
sys.exit(not (len(j['items']) == 5 and all(i.get('reasons') for i in j['items'])))"
check "  and its server stopped" eval '! curl -s --max-time 2 "http://127.0.0.1:$port/v1/health" > /dev/null'
echo "$pass passed, $fail failed"
test "$fail" -eq 0
