#!/usr/bin/env bash
# python_recommend.sh: what the Python package (python/) costs over the C
# ABI when recommending. EASE is fitted on a generated shop; then the first
# U users get their top N (seen items excluded) three ways: in C
# (bench_recommend: shelf_model_score + shelf_topk per user), from Python one
# call per user (model.recommend(user)), and from Python in one batch call
# (model.recommend(users): shelf_model_score_many). All three must give the
# same lists (checksums). Prints one JSON line each, then the ratios
# (Python / C; the goal is <= 2).
#
# usage: bench/python_recommend.sh BUILD_DIR [USERS ITEMS EVENTS U]
#   defaults: 5000 users, 3000 items, 300000 events (seed 42), U = 1000
# env: SHELF_BENCH_DIR overrides BUILD/bench-data (the generated store is kept)
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
    echo "usage: $0 BUILD_DIR [USERS ITEMS EVENTS U]  (BUILD_DIR: a configured CMake build directory)" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
USERS=${2:-5000} ITEMS=${3:-3000} EVENTS=${4:-300000} U=${5:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${SHELF_BENCH_DIR:-$BUILD/bench-data}
mkdir -p "$DATA"
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target shelf shelf_shared bench_recommend >&2

STORE="$DATA/recommend_u${USERS}_i${ITEMS}_e${EVENTS}_s42.db"
[ -s "$STORE" ] || "$BUILD/shelf" gen --store "$STORE" --users "$USERS" --items "$ITEMS" --events "$EVENTS" \
    --seed 42 --quiet >&2
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores" >&2

c_line=$("$BUILD/bench_recommend" "$STORE" "$U" 10 3 100)
echo "$c_line"
SHELF_LIB="$BUILD/libshelf.so" PYTHONPATH="$ROOT/python" PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 - "$STORE" "$U" "$c_line" <<'PY'
import json
import sys
import time

import numpy as np

import shelf

store, U, c = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
st = shelf.Store(store, readonly=True)
t0 = time.perf_counter()
m = shelf.models.EASE(l2=100).fit(st)
fit_s = time.perf_counter() - t0
users = list(m.user_ids[:U])
index = {k: i for i, k in enumerate(m.item_ids.tolist())}


def checksum(rows):
    s = 0
    for row in rows:
        for j in range(10):
            it = index[row[j]] if j < len(row) and row[j] is not None else 0xFFFFFFFF
            s = (s * 1000003 + it) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % s


def per_user():
    return [m.recommend(u, n=10)[0] for u in users]


def batch():
    return m.recommend(np.array(users, dtype=object), n=10)[0]


out = {}
for name, fn in (("python_per_user", per_user), ("python_batch", batch)):
    rows = fn()  # warm-up, and the check
    ok = checksum(rows) == c["checksum"]
    if not ok:
        print("python_recommend: %s lists differ from C's" % name, file=sys.stderr)
    best = float("inf")
    for _ in range(3):  # best of 3, as the C side
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    out[name] = best
    print(json.dumps({"bench": "recommend", "impl": name, "model": "ease", "users": len(users), "n": 10,
                      "fit_seconds": round(fit_s, 3), "seconds": round(best, 6),
                      "us_per_user": round(1e6 * best / len(users), 2), "same_lists_as_c": ok}))
print(json.dumps({"bench": "recommend", "ratio_per_user_over_c": round(out["python_per_user"] / c["seconds"], 3),
                  "ratio_batch_over_c": round(out["python_batch"] / c["seconds"], 3), "goal": "<= 2"}))
PY
