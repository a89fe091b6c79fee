#!/usr/bin/env bash
# soak.sh: `shelf serve` under mixed traffic for a long while, to see that its
# resident memory stays flat and that nothing fails (issue 15). All at once,
# server and clients on this machine:
#  - reads (wrk, bench/wrk/soak_recs.lua): personal slates, anonymous
#    sessions, similar items, popular lists, as fast as they are answered;
#  - event batches (wrk, bench/wrk/soak_events.lua): BATCH events a batch,
#    a pause of DELAY_MS between batches on each connection;
#  - a low-rate loop (python3, one keep-alive connection): an item update
#    (PUT /v1/items/{id}) a second, a batch of new items (PUT /v1/items)
#    every 5 s, a user and an item deleted every 3 s, a deleted item put back
#    every 10 s, a DELETE of an id already deleted (404 expected) every 15 s,
#    and POST /v1/admin/reload every RELOAD_EVERY s.
# Users and items that get deleted are kept out of the event batches (an event
# naming a retired item is a 400 by design), but the reads ask for them.
# The server's VmRSS (/proc/PID/status) is sampled every 10 s into
# OUT/rss.jsonl (with a few gauges of /metrics); rss_start is the sample after
# WARMUP seconds of traffic, rss_end the one after DURATION more, both under
# load; growth_second_half_pct is the growth from the middle of the run to
# its end (a cache that fills stops growing, a leak does not). Errors: any
# answer other than 200 (404 where expected), socket errors and timeouts, a
# server exit other than 0. Afterwards the store must pass PRAGMA
# integrity_check. Prints one JSON line; exit 1 unless
# growth_pct <= 5, errors == 0 and the store is intact.
#
# The store: the S3-Rec Beauty store (22,363 users, 12,101 items, 198,502
# events) when SHELF_DATA holds it, else `shelf gen` (20,000 users, 10,000
# items, 300,000 events); MODEL (default als) is trained on it into a bundle
# directory that the reloads read again.
#
# usage: bench/soak.sh BUILD_DIR
# env:   DURATION seconds measured (600), WARMUP seconds before rss_start (30),
#        SHELF_DATA (../shared/data), STORE=gen to use the generated shop,
#        OUT (BUILD_DIR/bench-soak), MODEL (als), CONNS read connections (8),
#        EVENT_CONNS (1), BATCH (20), DELAY_MS (20), RELOAD_EVERY (30),
#        SERVE_ARGS more `shelf serve` options
set -euo pipefail
[ $# -ge 1 ] && [ -f "$1/CMakeCache.txt" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
DATA=${SHELF_DATA:-$root/../shared/data}
OUT=${OUT:-$BUILD/bench-soak}
DURATION=${DURATION:-600}
WARMUP=${WARMUP:-30}
MODEL=${MODEL:-als}
CONNS=${CONNS:-8}
EVENT_CONNS=${EVENT_CONNS:-1}
BATCH=${BATCH:-20}
DELAY_MS=${DELAY_MS:-20}
RELOAD_EVERY=${RELOAD_EVERY:-30}
for t in wrk sqlite3 curl lscpu; do
    command -v "$t" >/dev/null || { echo "$0: $t missing" >&2; exit 1; }
done
cmake --build "$BUILD" -j "$(nproc)" --target shelf >&2
shelf="$BUILD/shelf"
rm -rf "$OUT"
mkdir -p "$OUT/bundles"
db="$OUT/soak.db"

f="$DATA/amazon-s3rec/Beauty.txt"
a="$DATA/amazon-s3rec/Beauty_item2attributes.json"
if [ "${STORE:-}" != gen ] && [ -f "$f" ] && [ -f "$a" ]; then
    dataset=Beauty
    "$shelf" import --store "$db" --format s3rec "$f" --attributes "$a" --quiet >&2
else
    dataset=gen
    "$shelf" gen --store "$db" --users 20000 --items 10000 --events 300000 --quiet >&2
fi
echo "== training $MODEL on $dataset" >&2
"$shelf" train --store "$db" --model "$MODEL" --bundle "$OUT/bundles/$MODEL" --quiet >&2
read_key=$("$shelf" keys create --store "$db" --scope read --name soak 2>/dev/null)
write_key=$("$shelf" keys create --store "$db" --scope write --name soak 2>/dev/null)
admin_key=$("$shelf" keys create --store "$db" --scope admin --name soak 2>/dev/null)
# ids: 1,000 users and 500 items to delete, the rest stable (events, updates)
sqlite3 "$db" "SELECT ext_id FROM users ORDER BY ext_id" > "$OUT/users.txt"
sqlite3 "$db" "SELECT ext_id FROM items ORDER BY ext_id" > "$OUT/items.txt"
shuf --random-source=<(yes) "$OUT/users.txt" > "$OUT/users.shuf"
shuf --random-source=<(yes) "$OUT/items.txt" > "$OUT/items.shuf"
head -n 1000 "$OUT/users.shuf" > "$OUT/doomed_users.txt"
tail -n +1001 "$OUT/users.shuf" > "$OUT/stable_users.txt"
head -n 500 "$OUT/items.shuf" > "$OUT/doomed_items.txt"
tail -n +501 "$OUT/items.shuf" > "$OUT/stable_items.txt"

server_pid=
pids=()
cleanup() {
    for p in "${pids[@]}" $server_pid; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
# serve_free_port: the servers' tests' own start on a free port (spid, port)
. "$root/tests/integration/lib_serve.sh"
started=0
serve_free_port "$shelf" "$OUT/serve.out" "$OUT/serve.log" --store "$db" --bundle "$OUT/bundles" ${SERVE_ARGS:-} &&
    started=1
server_pid=$spid
[ "$started" = 1 ] || { cat "$OUT/serve.log" >&2; echo "$0: the server did not start" >&2; exit 1; }
url="http://127.0.0.1:$port"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# wrk runs a little past the loop, so that the last sample is under load too
export WRK_DIR="$root/bench/wrk"
span=$((WARMUP + DURATION + 5))
echo "== soak: ${WARMUP}s warm-up, then ${DURATION}s; $CONNS read and $EVENT_CONNS event connections" >&2
KEY=$read_key USERS="$OUT/users.txt" ITEMS="$OUT/items.txt" SIMILAR="$OUT/stable_items.txt" SEED=1 \
    wrk -t 1 -c "$CONNS" -d "${span}s" --timeout 10s -s "$WRK_DIR/soak_recs.lua" "$url" > "$OUT/wrk_recs.txt" &
pids+=($!)
KEY=$write_key USERS="$OUT/stable_users.txt" ITEMS="$OUT/stable_items.txt" BATCH=$BATCH DELAY_MS=$DELAY_MS SEED=3 \
    wrk -t 1 -c "$EVENT_CONNS" -d "${span}s" --timeout 10s -s "$WRK_DIR/soak_events.lua" "$url" \
    > "$OUT/wrk_events.txt" &
pids+=($!)

/usr/bin/python3 - "$OUT" "$port" "$server_pid" "$admin_key" "$WARMUP" "$DURATION" "$RELOAD_EVERY" \
    > "$OUT/loop.json" <<'EOF'
# the low-rate writer and the sampler: prints one JSON object of counts
import http.client, json, random, sys, threading, time
out, port, pid, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
warmup, duration, reload_every = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
rng = random.Random(5)
ids = lambda name: [l.strip() for l in open(f"{out}/{name}") if l.strip()]
stable, doomed_users, doomed_items = ids("stable_items.txt"), ids("doomed_users.txt"), ids("doomed_items.txt")
t0 = time.monotonic()

def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")

def gauges():
    """a few lines of /metrics that say what the server holds"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    want = ("shelf_users ", "shelf_items ", "shelf_live_profiles", "shelf_sessions", "shelf_request_body_bytes")
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if l.startswith(want)}

samples, stop = {}, threading.Event()
def sampler(log):
    k = 0
    while True:
        t = time.monotonic() - t0
        phase = "warmup" if t < warmup else "soak"
        s = {"t_s": round(t, 1), "phase": phase, "rss_kb": rss_kb()}
        try:
            s["metrics"] = gauges()
        except OSError as e:
            s["metrics_error"] = str(e)
        log.write(json.dumps(s) + "\n")
        log.flush()
        k += 1
        if stop.wait(max(0.0, t0 + 10 * k - time.monotonic())):
            return

counts = {"item_updates": 0, "item_batches": 0, "user_deletes": 0, "item_deletes": 0,
          "items_put_back": 0, "expected_404": 0, "reloads": 0, "errors": 0, "socket_errors": 0}
conn = None
def call(kind, method, path, body=None, want=200):
    global conn
    counts[kind] += 1
    for attempt in (0, 1):  # a keep-alive connection the server closed (idle timeout) is reopened once
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            hdr = {"Authorization": "Bearer " + key}
            if body is not None:
                hdr["Content-Type"] = "application/json"
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=hdr)
            r = conn.getresponse()
            text = r.read()
            break
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            conn = None
            if attempt == 1:
                counts["socket_errors"] += 1
                with open(f"{out}/errors.jsonl", "a") as f:
                    f.write(json.dumps({"kind": kind, "path": path, "error": repr(e)}) + "\n")
                return False
    if r.status != want:
        counts["errors"] += 1
        with open(f"{out}/errors.jsonl", "a") as f:
            f.write(json.dumps({"kind": kind, "path": path, "status": r.status, "body": text[:300].decode(errors="replace")}) + "\n")
        return False
    return True

log = open(f"{out}/rss.jsonl", "w")
th = threading.Thread(target=sampler, args=(log,))
th.start()
deleted_users, deleted_items, tick, n_new = [], [], 0, 0
while time.monotonic() - t0 < warmup + duration:
    tick += 1
    it = rng.choice(stable)
    call("item_updates", "PUT", f"/v1/items/{it}",
         {"title": f"soak {tick}", "price": round(rng.uniform(1, 100), 2), "category": "Soak > Updated",
          "attributes": {"tick": tick}})
    if tick % 5 == 0:
        batch = [{"id": f"soak-new-{n_new + i}", "title": "new", "price": 9.5} for i in range(10)]
        n_new += 10
        call("item_batches", "PUT", "/v1/items", batch)
    if tick % 3 == 0 and doomed_users:
        u = doomed_users.pop()
        if call("user_deletes", "DELETE", f"/v1/users/{u}"):
            deleted_users.append(u)
    if tick % 3 == 1 and doomed_items:
        i = doomed_items.pop()
        if call("item_deletes", "DELETE", f"/v1/items/{i}"):
            deleted_items.append(i)
    if tick % 10 == 0 and len(deleted_items) > 1:
        i = deleted_items.pop(0)  # a retired id may be PUT again as a new item
        call("items_put_back", "PUT", f"/v1/items/{i}", {"title": "back", "price": 1.0})
    if tick % 15 == 0 and deleted_users:
        call("expected_404", "DELETE", f"/v1/users/{rng.choice(deleted_users)}", want=404)
    if tick % 15 == 7 and deleted_items:
        call("expected_404", "DELETE", f"/v1/items/{rng.choice(deleted_items)}", want=404)
    if tick % int(reload_every) == 0:
        call("reloads", "POST", "/v1/admin/reload")
    time.sleep(max(0.0, t0 + tick - time.monotonic()))
stop.set()
th.join()
s = {"t_s": round(time.monotonic() - t0, 1), "phase": "end", "rss_kb": rss_kb(), "metrics": gauges()}
log.write(json.dumps(s) + "\n")
log.close()
print(json.dumps(counts))
EOF
for p in "${pids[@]}"; do wait "$p"; done
pids=()
sleep 2
echo '{"t_s":null,"phase":"idle","rss_kb":'"$(awk '/^VmRSS:/{print $2}' /proc/$server_pid/status)"'}' >> "$OUT/rss.jsonl"
curl -sS --max-time 10 "$url/metrics" > "$OUT/metrics.txt"
curl -sS --max-time 10 "$url/v1/health" > "$OUT/health.json"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM "$server_pid"
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=
integrity=$(sqlite3 "$db" "PRAGMA integrity_check" 2>&1 | head -5 | tr '\n' ' ')
log_errors=$(grep -c ' error ' "$OUT/serve.log" || true)

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
/usr/bin/python3 - "$OUT" "$WARMUP" "$DURATION" "$dataset" "$MODEL" "$server_rc" "$integrity" "$log_errors" \
    "$cpu" "$(nproc)" "$load_start" "$load_end" <<'EOF'
import json, sys
out, warmup, duration, dataset, model, server_rc, integ, log_errors, cpu, cores, load0, load1 = sys.argv[1:]
warmup, duration = float(warmup), float(duration)
samples = [json.loads(l) for l in open(out + "/rss.jsonl")]
soak = [s for s in samples if s["phase"] in ("soak", "end")]
start = soak[0]   # the first sample past the warm-up
end = [s for s in samples if s["phase"] == "end"][-1]
last_json = lambda p: [json.loads(l) for l in open(p) if l.startswith("{")][-1]
recs, ev, loop = last_json(out + "/wrk_recs.txt"), last_json(out + "/wrk_events.txt"), last_json(out + "/loop.json")
errors = {"recs_non_2xx": recs["non_2xx"], "recs_socket": recs["socket_errors"],
          "events_non_2xx": ev["non_2xx"], "events_socket": ev["socket_errors"],
          "loop_unexpected_status": loop["errors"], "loop_socket": loop["socket_errors"],
          "server_exit": int(server_rc != "0")}
n_err = sum(errors.values())
mb = lambda kb: round(kb / 1024, 1)
pct = lambda a, b: round(100.0 * (b["rss_kb"] - a["rss_kb"]) / a["rss_kb"], 2)
growth = pct(start, end)
# a cache filling up stops; a leak goes on: the second half tells them apart
half = min(soak, key=lambda s: abs(s["t_s"] - (warmup + duration / 2)))
peak = max(s["rss_kb"] for s in samples)
intact = integ.strip() == "ok"
print(json.dumps({
    "bench": "serve_soak", "dataset": dataset, "model": model, "duration_s": duration, "warmup_s": warmup,
    "rss_start_mb": mb(start["rss_kb"]), "rss_start_t_s": start["t_s"],
    "rss_end_mb": mb(end["rss_kb"]), "rss_end_t_s": end["t_s"], "rss_peak_mb": mb(peak),
    "growth_pct": growth, "rss_half_mb": mb(half["rss_kb"]), "rss_half_t_s": half["t_s"],
    "growth_second_half_pct": pct(half, end),
    "requests": {"reads": recs["requests"], "reads_per_s": recs["req_per_s"], "reads_p99_ms": recs["p99_ms"],
                 "event_batches": ev["requests"], "events": ev["requests"] * ev["batch"],
                 **{k: v for k, v in loop.items() if k not in ("errors", "socket_errors")}},
    "errors": n_err, "error_kinds": errors, "server_log_errors": int(log_errors),
    "integrity": integ.strip(),
    "machine": {"cpu": cpu, "nproc": int(cores), "loadavg_start": load0, "loadavg_end": load1},
    "ok": growth <= 5 and n_err == 0 and intact}))
sys.exit(0 if growth <= 5 and n_err == 0 and intact else 1)
EOF
