#!/usr/bin/env bash
# serve.sh: `shelf serve` under load from wrk on loopback, server and load
# generator on this machine:
#  - personalised recommendations (GET /v1/users/{id}/recommendations?n=10,
#    random Beauty users, read key) from the transformer trained on the
#    S3-Rec Beauty store: requests/s and latency percentiles;
#  - the same under a scenario (PUT /v1/scenarios/bench: three sources (the
#    model, trending, all-time popular) fused, a filter expression, MMR by
#    category, one promotion with a share of the slots; explain off);
#  - event ingestion (POST /v1/events, batches of 100 random events, write
#    key): events/s, each batch acknowledged only after its commit
#    (WAL, synchronous=FULL); afterwards the store must hold at least every
#    acknowledged event.
# Prints one JSON line per load and a summary line; logs in OUT/.
#
# usage: bench/serve.sh BUILD_DIR
# env:   SHELF_DATA (default ../shared/data), OUT (default BUILD_DIR/bench-serve),
#        DURATION seconds per load (20), CONNS (16), WRK_THREADS (1),
#        EPOCHS (training epochs of the bundle; default 40 = the model's default),
#        REUSE=1 keeps an existing bundle in OUT,
#        SERVE_ARGS more `shelf serve` options (--no-served-log: the cost of the served log)
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
DATA=${SHELF_DATA:-$root/../shared/data}
OUT=${OUT:-$BUILD/bench-serve}
DURATION=${DURATION:-20}
CONNS=${CONNS:-16}
WRK_THREADS=${WRK_THREADS:-1}
EPOCHS=${EPOCHS:-40}
command -v wrk >/dev/null || { echo "$0: wrk missing (apt-get install wrk)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "$0: sqlite3 missing" >&2; exit 1; }
f="$DATA/amazon-s3rec/Beauty.txt"
a="$DATA/amazon-s3rec/Beauty_item2attributes.json"
[ -f "$f" ] && [ -f "$a" ] || { echo "$0: $f or $a missing" >&2; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" --target shelf >&2
shelf="$BUILD/shelf"
mkdir -p "$OUT"
db="$OUT/beauty.db"
bundle="$OUT/bundles/transformer"

rm -f "$db" "$db-wal" "$db-shm"
"$shelf" import --store "$db" --format s3rec "$f" --attributes "$a" --quiet >&2
if [ "${REUSE:-0}" != 1 ] || [ ! -f "$bundle/manifest.json" ]; then
    rm -rf "$OUT/bundles"
    mkdir -p "$OUT/bundles"
    echo "== training the transformer on Beauty ($EPOCHS epochs)" >&2
    "$shelf" train --store "$db" --model transformer --bundle "$bundle" --tf-epochs "$EPOCHS" --quiet >&2
fi
read_key=$("$shelf" keys create --store "$db" --scope read --name bench 2>/dev/null)
write_key=$("$shelf" keys create --store "$db" --scope write --name bench 2>/dev/null)
admin_key=$("$shelf" keys create --store "$db" --scope admin --name bench 2>/dev/null)
sqlite3 "$db" "SELECT ext_id FROM users WHERE substr(ext_id,1,1) <> char(1)" > "$OUT/users.txt"
sqlite3 "$db" "SELECT ext_id FROM items WHERE substr(ext_id,1,1) <> char(1)" > "$OUT/items.txt"
events_before=$(sqlite3 "$db" "SELECT count(*) FROM events")

server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT
"$shelf" serve --store "$db" --bundle "$OUT/bundles" --port 0 ${SERVE_ARGS:-} > "$OUT/serve.out" 2> "$OUT/serve.log" &
server_pid=$!
port=
for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$OUT/serve.out")
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$OUT/serve.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "$0: the server did not start" >&2; exit 1; }
url="http://127.0.0.1:$port"
curl -sS --max-time 10 "$url/v1/health" > "$OUT/health.json"

export WRK_DIR="$root/bench/wrk" USERS="$OUT/users.txt" ITEMS="$OUT/items.txt"
echo "== recommendations: $CONNS connections, $WRK_THREADS wrk thread(s), ${DURATION}s (after a 5 s warm-up)" >&2
KEY=$read_key SEED=7 wrk -t "$WRK_THREADS" -c "$CONNS" -d 5s -s "$WRK_DIR/recs.lua" "$url" > /dev/null
KEY=$read_key SEED=1 wrk -t "$WRK_THREADS" -c "$CONNS" -d "${DURATION}s" -s "$WRK_DIR/recs.lua" "$url" \
    > "$OUT/wrk_recs.txt"
recs=$(grep '^{' "$OUT/wrk_recs.txt" | tail -1)
promo=$(sed -n '101p;202p;303p' "$OUT/items.txt" | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin]))')
cat > "$OUT/scenario.json" <<JSON
{"description": "bench: three sources, a filter, MMR, one promotion",
 "sources": [{"type": "model"}, {"type": "trending", "weight": 0.3}, {"type": "popular", "weight": 0.2}],
 "fusion": "weighted",
 "filter": "available and kind == 'product' and not seen(purchase, 30d)",
 "diversity": {"by": "category", "lambda": 0.8},
 "promotions": [{"name": "bench", "items": $promo, "share": 0.1, "budget_per_day": 1000000000}]}
JSON
code=$(curl -sS --max-time 10 -o "$OUT/scenario_put.json" -w '%{http_code}' -X PUT -H "Authorization: Bearer $admin_key" \
    -H 'Content-Type: application/json' --data-binary "@$OUT/scenario.json" "$url/v1/scenarios/bench")
[ "$code" = 201 ] || { echo "$0: PUT /v1/scenarios/bench answered $code: $(cat "$OUT/scenario_put.json")" >&2; exit 1; }
echo "== recommendations under the scenario: $CONNS connections, ${DURATION}s (after a 5 s warm-up)" >&2
QUERY="&scenario=bench" KEY=$read_key SEED=9 wrk -t "$WRK_THREADS" -c "$CONNS" -d 5s -s "$WRK_DIR/recs.lua" "$url" > /dev/null
QUERY="&scenario=bench" KEY=$read_key SEED=2 wrk -t "$WRK_THREADS" -c "$CONNS" -d "${DURATION}s" -s "$WRK_DIR/recs.lua" \
    "$url" > "$OUT/wrk_scenario.txt"
scenario=$(grep '^{' "$OUT/wrk_scenario.txt" | tail -1)
curl -sS --max-time 10 -H "Authorization: Bearer $read_key" "$url/v1/users/$(head -1 "$OUT/users.txt")/recommendations?n=10&scenario=bench" \
    > "$OUT/scenario_slate.json"
echo "== events: batches of 100, $CONNS connections, ${DURATION}s" >&2
KEY=$write_key BATCH=100 SEED=3 wrk -t "$WRK_THREADS" -c "$CONNS" -d "${DURATION}s" -s "$WRK_DIR/events.lua" \
    "$url" > "$OUT/wrk_events.txt"
events=$(grep '^{' "$OUT/wrk_events.txt" | tail -1)
curl -sS --max-time 10 "$url/metrics" > "$OUT/metrics.txt"
kill -TERM "$server_pid"
wait "$server_pid" || { echo "$0: the server exited with an error" >&2; exit 1; }
server_pid=
events_after=$(sqlite3 "$db" "SELECT count(*) FROM events")
integrity=$(sqlite3 "$db" "PRAGMA integrity_check")

machine=$("$shelf" version --cpu) # CPU model and kernel levels, in every line
echo "{\"bench\":\"serve_recommendations\",\"model\":\"transformer\",\"dataset\":\"Beauty\",\"conns\":$CONNS,\"machine\":$machine,${recs#\{}"
echo "{\"bench\":\"serve_scenario\",\"model\":\"transformer\",\"dataset\":\"Beauty\",\"conns\":$CONNS,\"machine\":$machine,${scenario#\{}"
echo "{\"bench\":\"serve_events\",\"conns\":$CONNS,\"machine\":$machine,${events#\{}"
SHELF_MACHINE=$machine \
/usr/bin/python3 - "$OUT" "$events_before" "$events_after" "$integrity" "$(nproc)" <<'EOF'
import json, sys
import os as _os
machine = json.loads(_os.environ["SHELF_MACHINE"])  # CPU model and kernel levels (shelf version --cpu)
emit = lambda d: print(json.dumps({**d, "machine": machine}))
out, before, after, integ, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
def last_json(p):
    return [json.loads(l) for l in open(p) if l.startswith("{")][-1]
r, e, sc = last_json(out + "/wrk_recs.txt"), last_json(out + "/wrk_events.txt"), last_json(out + "/wrk_scenario.txt")
slate = json.load(open(out + "/scenario_slate.json"))
promoted = sum(1 for i in slate["items"] if i.get("source", "").startswith("promotion:"))
acked = (e["requests"] - e["non_2xx"]) * e["batch"]
emit({
    "bench": "serve_summary", "cores": cores,
    "recs_req_per_s": r["req_per_s"], "recs_p99_ms": r["p99_ms"], "recs_non_2xx": r["non_2xx"],
    "recs_ok": r["req_per_s"] >= 5000 and r["p99_ms"] <= 10 and r["non_2xx"] == 0,
    "scenario_req_per_s": sc["req_per_s"], "scenario_p99_ms": sc["p99_ms"], "scenario_non_2xx": sc["non_2xx"],
    "scenario_ok": sc["req_per_s"] >= 5000 and sc["p99_ms"] <= 10 and sc["non_2xx"] == 0,
    "scenario_slate_promoted_items": promoted,
    "events_per_s": e["events_per_s"], "events_p99_ms": e["p99_ms"], "events_non_2xx": e["non_2xx"],
    "events_ok": e["events_per_s"] >= 20000 and e["non_2xx"] == 0,
    "events_acknowledged": acked, "events_stored": after - before,
    "stored_covers_acknowledged": after - before >= acked, "integrity": integ})
EOF
