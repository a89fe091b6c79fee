#!/usr/bin/env bash
# test_cli.sh: drives the `shelf` command end to end on generated data:
# --help of every command, init, gen, import (good and malformed files),
# stats, export round trip, snapshot. Usage: test_cli.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
pass=0 fail=0
ok()   { pass=$((pass + 1)); }
bad()  { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$1')); print(d$2)"; }

# every command answers --help truthfully and exits 0
for c in init import gen stats export snapshot; do
  out=$("$shelf" "$c" --help) ; check "$c --help exits 0" test $? -eq 0
  check "$c --help shows usage" grep -q "usage: shelf $c" <<<"$out"
done
check "import --help lists the formats" grep -q "s3rec|pairs|csv|jsonl|ml100k|taobao" <<<"$("$shelf" import --help)"
"$shelf" nosuch >/dev/null 2>&1; check "unknown command exits 2" test $? -eq 2
"$shelf" stats --bogus >/dev/null 2>&1; check "unknown flag exits 2" test $? -eq 2
"$shelf" stats --store missing.db >/dev/null 2>err.txt; check "missing store exits 1" test $? -eq 1
check "missing store is named" grep -q "missing.db" err.txt
check "no store file was created" test ! -e missing.db

# init + gen into the store
check "init" "$shelf" init --store g.db
check "gen into store" "$shelf" gen --store g.db --users 300 --items 120 --events 5000 --seed 3 --quiet
"$shelf" stats --store g.db --json > g.json
check "gen: 5000 events" test "$(json g.json "['events']")" = 5000
check "gen: 300 users" test "$(json g.json "['users']")" = 300
check "gen: 120 items" test "$(json g.json "['items']")" = 120
check "stats table" grep -q "events per user" <<<"$("$shelf" stats --store g.db)"

# gen is deterministic by seed
"$shelf" gen --csv-events a.csv --users 100 --items 50 --events 2000 --seed 9 --quiet >/dev/null
"$shelf" gen --csv-events b.csv --users 100 --items 50 --events 2000 --seed 9 --quiet >/dev/null
"$shelf" gen --csv-events c.csv --users 100 --items 50 --events 2000 --seed 10 --quiet >/dev/null
check "same seed, same shop" cmp -s a.csv b.csv
check "other seed, other shop" bash -c "! cmp -s a.csv c.csv"

# s3rec import
printf '1 1 2 3 4 5\n2 3 4 6\n3 7 1 2\n' > seq.txt
printf '{"1": [1, 2], "2": [2], "7": [3]}\n' > attrs.json
check "s3rec import" "$shelf" import --store s.db --format s3rec seq.txt --attributes attrs.json --quiet
"$shelf" stats --store s.db --json > s.json
check "s3rec users" test "$(json s.json "['users']")" = 3
check "s3rec items" test "$(json s.json "['items']")" = 7
check "s3rec events" test "$(json s.json "['events']")" = 11
check "s3rec attributes" test "$(json s.json "['attributes']")" = 3
"$shelf" export --store s.db --format s3rec --out seq.out --quiet
check "s3rec export reproduces the file" cmp -s seq.txt seq.out

# a malformed file leaves the store byte-for-byte as it was
"$shelf" stats --store s.db >/dev/null   # the store is closed and checkpointed
sha_before=$(sha256sum s.db | cut -d' ' -f1)
printf '4 8 9\n5 x1 2\n' > badseq.txt
"$shelf" import --store s.db --format s3rec badseq.txt --quiet 2>err.txt
check "malformed import exits 1" test $? -eq 1
check "error names file and line" grep -q "badseq.txt:2" err.txt
check "store unchanged, byte for byte" test "$(sha256sum s.db | cut -d' ' -f1)" = "$sha_before"
check "no WAL left behind" test ! -s s.db-wal

# export CSV -> import into a new store -> the same statistics
"$shelf" export --store g.db --format csv --out ev.csv
"$shelf" export --store g.db --format csv --what items --out it.csv
"$shelf" export --store g.db --format jsonl --what users --out us.jsonl
check "import exported users" "$shelf" import --store g2.db --format jsonl --what users us.jsonl --quiet
check "import exported items" "$shelf" import --store g2.db --format csv --what items it.csv --quiet
check "import exported events" "$shelf" import --store g2.db --format csv ev.csv --quiet
"$shelf" stats --store g2.db --json > g2.json
check "round trip keeps the statistics" cmp -s g.json g2.json
"$shelf" export --store g2.db --format csv --out ev2.csv
check "round trip keeps the events" cmp -s ev.csv ev2.csv
"$shelf" export --store g.db --format jsonl --out ev.jsonl
check "import exported users" "$shelf" import --store g3.db --format jsonl --what users us.jsonl --quiet
check "import exported jsonl" "$shelf" import --store g3.db --format jsonl ev.jsonl --quiet
"$shelf" export --store g3.db --format csv --out ev3.csv
check "jsonl round trip keeps the events" cmp -s ev.csv ev3.csv
"$shelf" export --store g2.db --format jsonl --what users --out us2.jsonl
check "round trip keeps the users" cmp -s us.jsonl us2.jsonl
"$shelf" export --store g2.db --format csv --what items --out it2.csv
check "round trip keeps the items" cmp -s it.csv it2.csv

# snapshot
# import is idempotent: the same file again stores nothing and says when it
# came; an overlapping export stores only its new events; rows without a
# type are views, counted in the summary (issue 21, items 2 and 4)
printf 'user,item,ts\nu1,i1,100\nu1,i2,200\nu2,i1,300\n' > day1.csv
printf 'user,item,ts\nu2,i1,300\nu3,i2,400\n' > day2.csv
out=$("$shelf" import --store d.db --format csv day1.csv --quiet)
check "first import: 3 events" grep -q "day1.csv: 3 records, 3 events" <<<"$out"
check "rows without a type are read as view, counted" grep -q "3 rows named no event type: read as view" <<<"$out"
out=$("$shelf" import --store d.db --format csv day1.csv --quiet); st=$?
check "re-import exits 0" test "$st" -eq 0
check "re-import is reported" grep -q "day1.csv: already imported on 20.* (3 events); nothing stored" <<<"$out"
out=$("$shelf" import --store d.db --format csv day2.csv --quiet)
check "overlap: 1 new event" grep -q "day2.csv: 2 records, 1 events" <<<"$out"
check "overlap: the duplicate is reported with its line" grep -q "1 duplicate events not stored.*line 2" <<<"$out"
"$shelf" stats --store d.db --json > d.json
check "4 events stored, all views" test "$(json d.json "['events']")" = 4
"$shelf" import --store d.db --format csv day1.csv --allow-duplicates --quiet >/dev/null
"$shelf" stats --store d.db --json > d.json
check "--allow-duplicates stores them again" test "$(json d.json "['events']")" = 7
# a shop's own event types, with weights, from a config file (issue 21, item 1)
printf 'user,item,event,ts\nu1,i1,add_to_wishlist,5\nu1,i2,pv,6\n' > wish.csv
printf 'event-types = wishlist=2\nmap = type=event\ntype-map = pv=view,add_to_wishlist=wishlist\n' > shop.conf
out=$("$shelf" import --store w.db --format csv --config shop.conf wish.csv --quiet); st=$?
check "custom event type from the config: import exits 0" test "$st" -eq 0
check "the added type is reported" grep -q "1 event types added" <<<"$out"
check "the custom type is stored with its weight" test "$(sqlite3 w.db "select weight from event_types where name='wishlist'")" = 2.0

check "snapshot" "$shelf" snapshot --store g.db --out g.snap --quiet
check "snapshot file starts with its magic" test "$(head -c 8 g.snap)" = "SHELFSNP"

echo "$pass passed, $fail failed"
test "$fail" -eq 0
