#!/usr/bin/env bash
# The main job end to end on the embedded default: generate a synthetic shop,
# import it into a fresh SQLite store, print its statistics, build a snapshot,
# evaluate the classic models, train two into bundles, and end by starting the
# HTTP server on the store with sample requests (it keeps serving until
# Ctrl-C when the demo runs on a terminal; otherwise it is stopped).
# Usage: scripts/demo.sh SHELF_BINARY OUT_DIR
set -euo pipefail
shelf=${1:?usage: demo.sh SHELF_BINARY OUT_DIR}
out=${2:?usage: demo.sh SHELF_BINARY OUT_DIR}
mkdir -p "$out"
store="$out/demo.db"
rm -f "$store" "$store-wal" "$store-shm"

step() { printf '\n== %s\n' "$*"; }

step "generate a shop: 2,000 users, 800 items, 100,000 events (seed 7)"
"$shelf" gen --seed 7 --users 2000 --items 800 --events 100000 \
  --csv-events "$out/events.csv" --csv-items "$out/items.csv"
head -3 "$out/events.csv"

step "create the store $store"
"$shelf" init --store "$store"

step "import items, then events (each file one transaction)"
"$shelf" import --store "$store" --format csv --what items "$out/items.csv"
"$shelf" import --store "$store" --format csv "$out/events.csv"

step "statistics"
"$shelf" stats --store "$store"
"$shelf" stats --store "$store" --json > "$out/stats.json"
echo "(also written as JSON to $out/stats.json)"

step "training snapshot"
"$shelf" snapshot --store "$store" --out "$out/demo.snap"

step "evaluate the classic models and the transformer (LOO-FULL: last event of each shopper is the test target)"
"$shelf" eval --store "$store" --models pop,itemknn,ease,als,bpr,transformer --tf-epochs 10 --k 5,10,20 \
  --json "$out/eval.json" --tf-log "$out/transformer-eval.jsonl" --quiet

step "train ALS on everything and write its bundle"
rm -rf "$out/bundles/als"
mkdir -p "$out/bundles"
"$shelf" train --store "$store" --model als --bundle "$out/bundles/als" --quiet
ls -l "$out/bundles/als"

step "train the transformer on everything (10 epochs) and write its bundle"
rm -rf "$out/bundles/transformer"
"$shelf" train --store "$store" --model transformer --tf-epochs 10 --bundle "$out/bundles/transformer" --quiet
ls -l "$out/bundles/transformer"

step "a malformed file is refused and the store is unchanged"
printf 'user,item,type,value,ts\nu1,i1,view,0,1767225600\nu2,i2,teleport,0,1767225601\n' > "$out/bad.csv"
if "$shelf" import --store "$store" --format csv "$out/bad.csv"; then
  echo "demo: the malformed file was accepted" >&2; exit 1
fi
"$shelf" stats --store "$store" --json | cmp -s - "$out/stats.json" && echo "store unchanged"

step "serve: API keys (stored as SHA-256 only) and the HTTP server on the store and the transformer bundle"
read_key=$("$shelf" keys create --store "$store" --scope read --name demo 2>/dev/null)
write_key=$("$shelf" keys create --store "$store" --scope write --name demo 2>/dev/null)
"$shelf" keys list --store "$store"
"$shelf" serve --store "$store" --bundle "$out/bundles/transformer" --port "${DEMO_PORT:-0}" > "$out/serve.out" 2> "$out/serve.log" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
url=
for _ in $(seq 1 100); do
  url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$out/serve.out")
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$out/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "demo: the server did not start" >&2; exit 1; }
cat "$out/serve.out"
user=$(head -2 "$out/events.csv" | tail -1 | cut -d, -f1)
show() { printf '\n$'; printf ' %q' "$@"; echo; "$@"; echo; }
show curl -sS "$url/v1/health"
show curl -sS -H "Authorization: Bearer $read_key" "$url/v1/users/$user/recommendations?n=5&explain=true"
top=$(curl -sS -H "Authorization: Bearer $read_key" "$url/v1/users/$user/recommendations?n=1" | sed -n 's/.*"items":\[{"id":"\([^"]*\)".*/\1/p')
show curl -sS -H "Authorization: Bearer $write_key" -X POST "$url/v1/events" \
  -d "{\"user\":\"$user\",\"item\":\"$top\",\"type\":\"purchase\"}"
echo "(the purchase of $top is committed; the next slate reflects it at once)"
show curl -sS -H "Authorization: Bearer $read_key" "$url/v1/users/$user/recommendations?n=5"
show curl -sS -H "Authorization: Bearer $read_key" -X POST "$url/v1/recommendations" \
  -d "{\"items\":[\"$top\"],\"types\":[\"view\"],\"n\":3}"
show curl -sS "$url/v1/users/$user/recommendations"
printf '\ndemo done: store %s, snapshot %s, evaluation %s, bundles %s\n' "$store" "$out/demo.snap" \
  "$out/eval.json" "$out/bundles"
if [ -t 0 ] && [ -t 1 ]; then
  printf 'the server keeps running at %s (read key %s): press Ctrl-C to stop it\n' "$url" "$read_key"
  wait "$server" || true
else
  kill -TERM "$server"
  wait "$server"
  trap - EXIT
  printf 'server stopped; run it again with:\n  %s serve --store %s --bundle %s --port 8080\n' "$shelf" "$store" \
    "$out/bundles/transformer"
fi
