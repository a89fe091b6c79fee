#!/usr/bin/env bash
# import.sh: CSV import benchmark, twice: through the library (bench_import,
# one JSON line "import_csv") and through the command line (`shelf gen
# --csv-events` then `shelf import --format csv`, one JSON line
# "import_csv_cli"). Inputs are generated once and kept in BUILD/bench-data.
#
# usage: bench/import.sh BUILD_DIR [N_EVENTS]
#   BUILD_DIR  a configured CMake build directory (builds bench_import, shelf)
#   N_EVENTS   default 10000000 (users N/50, items N/200, seed 42)
# env: SHELF_BENCH_DIR overrides BUILD/bench-data; BENCH_SKIP_CLI=1 skips the
# CLI run.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
    echo "usage: $0 BUILD_DIR [N_EVENTS]  (BUILD_DIR: a configured CMake build directory)" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
N=${2:-10000000}
case "$N" in '' | *[!0-9]*) echo "$0: N_EVENTS must be a number, not '$N'" >&2; exit 2 ;; esac
DATA=${SHELF_BENCH_DIR:-$BUILD/bench-data}
mkdir -p "$DATA"
JOBS=$(nproc 2>/dev/null || echo 2)

cmake --build "$BUILD" -j "$JOBS" --target bench_import shelf >&2

# 1. through the library
"$BUILD/bench_import" "$N" "$DATA"

# 2. through the command line: the generator options of bench_import
# (shelf_gen_opts_init defaults, 90 days), spelled out since the CLI's own
# defaults differ
[ "${BENCH_SKIP_CLI:-0}" = 1 ] && exit 0
SHELF="$BUILD/shelf"
MACHINE=$("$SHELF" version --cpu) # CPU model and kernel levels, in every line
USERS=$((N / 50 > 100 ? N / 50 : 100))
ITEMS=$((N / 200 > 50 ? N / 200 : 50))
CSV="$DATA/cli_events_${N}_u${USERS}_i${ITEMS}_s42.csv"
if [ ! -s "$CSV" ]; then
    t0=$(date +%s.%N)
    "$SHELF" gen --csv-events "$CSV.tmp" --events "$N" --users "$USERS" --items "$ITEMS" \
        --seed 42 --days 90 --categories 8 --brands 20 --factors 16 --zipf 1.0 \
        --start 1767225600 --late-items 0.2 --quiet >&2
    mv "$CSV.tmp" "$CSV"
    t1=$(date +%s.%N)
    awk -v n="$N" -v a="$t0" -v b="$t1" -v m="$MACHINE" 'BEGIN { s = b - a;
        printf "{\"bench\":\"gen_csv_cli\",\"events\":%d,\"seconds\":%.3f,\"events_per_s\":%.0f,\"machine\":%s}\n", n, s, n / s, m }' >&2
fi
# the generator is deterministic: the CLI's file equals the library's
LIBCSV="$DATA/events_${N}_u${USERS}_i${ITEMS}_s42.csv"
if [ -f "$LIBCSV" ] && ! cmp -s "$LIBCSV" "$CSV"; then
    echo "$0: $CSV differs from $LIBCSV (same generator options)" >&2
    exit 1
fi
DB="$DATA/import_bench_cli.db"
rm -f "$DB" "$DB-wal" "$DB-shm" "$DB-journal"
t0=$(date +%s.%N)
"$SHELF" import --store "$DB" --format csv "$CSV" --quiet >&2
t1=$(date +%s.%N)

# check: every event is in the store
got=$("$SHELF" stats --store "$DB" --json | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
if [ "$got" != "$N" ]; then
    echo "$0: the store holds '$got' events, expected $N" >&2
    exit 1
fi
bytes=0
for f in "$DB" "$DB-wal"; do
    [ -f "$f" ] && bytes=$((bytes + $(stat -c %s "$f")))
done
threads=${OMP_NUM_THREADS:-$(nproc 2>/dev/null || echo 1)}
awk -v n="$N" -v a="$t0" -v b="$t1" -v bytes="$bytes" -v th="$threads" -v m="$MACHINE" 'BEGIN { s = b - a;
    printf "{\"bench\":\"import_csv_cli\",\"events\":%d,\"seconds\":%.3f,\"events_per_s\":%.0f,\"store_bytes\":%d,\"bytes_per_event\":%.1f,\"threads\":%d,\"machine\":%s}\n",
        n, s, n / s, bytes, bytes / n, th, m }'
