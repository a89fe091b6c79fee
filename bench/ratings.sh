#!/usr/bin/env bash
# ratings.sh: rating prediction. ML100K-5FOLD (BENCHMARKS.md: the official
# u1..u5 folds, RMSE/MAE per fold and mean) on ../shared/data/movielens-100k,
# and a seeded random 80/20 split of the Amazon All_Beauty 2018 5-core reviews.
# Prints one JSON line per model and data set; full JSON in OUT/.
#
# usage: bench/ratings.sh BUILD_DIR [MODELS]   (default: rating-mf,svdpp)
# env:   SHELF_DATA (default ../shared/data), OUT (default BUILD_DIR/bench-ratings)
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
    echo "usage: $0 BUILD_DIR [MODELS]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
MODELS=${2:-rating-mf,svdpp}
DATA=${SHELF_DATA:-$root/../shared/data}
OUT=${OUT:-$BUILD/bench-ratings}
mkdir -p "$OUT"
cmake --build "$BUILD" -j "$(nproc)" --target shelf >&2
shelf=$BUILD/shelf

echo "== MovieLens-100k, ML100K-5FOLD ($(nproc) cores)" >&2
"$shelf" eval --protocol ml100k-5fold --data "$DATA/movielens-100k" --models "$MODELS" \
    --json "$OUT/ml100k.json" --quiet >&2
echo "== Amazon All_Beauty 2018 5-core, random 80/20 of the ratings" >&2
"$shelf" eval --protocol ratings-80-20 --data "$DATA/amazon-all-beauty-2018-5core/All_Beauty_5.json.gz" \
    --format jsonl --map user=reviewerID,item=asin,value=overall,ts=unixReviewTime --type rating \
    --models "$MODELS" --json "$OUT/all_beauty.json" --quiet >&2
SHELF_MACHINE=$("$BUILD/shelf" version --cpu) \
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
import os as _os
machine = json.loads(_os.environ["SHELF_MACHINE"])  # CPU model and kernel levels (shelf version --cpu)
emit = lambda d: print(json.dumps({**d, "machine": machine}))
out = sys.argv[1]
for name in ("ml100k", "all_beauty"):
    d = json.load(open(f"{out}/{name}.json"))
    for m in d["models"]:
        emit({"bench": "ratings", "data": name, "protocol": d["protocol"], "model": m["model"],
                          "rmse": round(m["rmse"], 5), "mae": round(m["mae"], 5),
                          "fit_seconds": round(m["fit_seconds"], 3),
                          "fold_rmse": [round(f["rmse"], 5) for f in m["folds"]]})
PY
