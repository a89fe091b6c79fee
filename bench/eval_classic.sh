#!/usr/bin/env bash
# eval_classic.sh: the five classic models (pop, itemknn, ease, als, bpr) under
# LOO-FULL on the S3-Rec Beauty and Toys_and_Games files, with the default
# hyperparameters, then an independent re-scoring of shelf's exported top-20
# lists by ../shared/tools/score_topk.py (must agree within 1e-4).
# Prints one JSON line per model and dataset; full results in OUT/.
#
# usage: bench/eval_classic.sh BUILD_DIR [DATASET ...]   (default: Beauty Toys_and_Games)
# env:   SHELF_DATA (default ../shared/data), OUT (default BUILD_DIR/bench-eval)
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
    echo "usage: $0 BUILD_DIR [DATASET ...]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
shift
DATA=${SHELF_DATA:-$root/../shared/data}
OUT=${OUT:-$BUILD/bench-eval}
mkdir -p "$OUT"
sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(Beauty Toys_and_Games)
cmake --build "$BUILD" -j "$(nproc)" --target shelf >&2
models=pop,itemknn,ease,als,bpr

for ds in "${sets[@]}"; do
    f="$DATA/amazon-s3rec/$ds.txt"
    [ -f "$f" ] || { echo "$0: $f missing" >&2; exit 1; }
    echo "== $ds ($(nproc) cores)" >&2
    "$BUILD/shelf" eval --data "$f" --format s3rec --protocol loo-full --models "$models" --k 5,10,20 \
        --json "$OUT/eval_$ds.json" --topk-out "$OUT/topk_$ds" --quiet >&2
    for m in ${models//,/ }; do
        /usr/bin/python3 "$root/../shared/tools/score_topk.py" "$f" "$OUT/topk_$ds.$m" --k 5,10,20 \
            > "$OUT/rescore_$ds.$m.json"
    done
    SHELF_MACHINE=$("$BUILD/shelf" version --cpu) \
    /usr/bin/python3 - "$OUT" "$ds" "$models" <<'PY'
import json, sys
import os as _os
machine = json.loads(_os.environ["SHELF_MACHINE"])  # CPU model and kernel levels (shelf version --cpu)
emit = lambda d: print(json.dumps({**d, "machine": machine}))
out, ds, models = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
res = json.load(open(f"{out}/eval_{ds}.json"))
bad = 0
for r in res["models"]:
    m = r["model"]
    ext = json.loads(open(f"{out}/rescore_{ds}.{m}.json").read())
    line = {"bench": "eval_classic", "dataset": ds, "model": m, "fit_seconds": round(r["fit_seconds"], 3),
            "threads": res["threads"]}
    for k in (5, 10, 20):
        hr, nd = r["metrics"][f"hr@{k}"], r["metrics"][f"ndcg@{k}"]
        line[f"hr@{k}"], line[f"ndcg@{k}"] = round(hr, 5), round(nd, 5)
        eh = ext.get(f"HR@{k}", ext.get(f"hr@{k}"))
        en = ext.get(f"NDCG@{k}", ext.get(f"ndcg@{k}"))
        if eh is None or en is None or abs(eh - hr) > 1e-4 or abs(en - nd) > 1e-4:
            bad += 1
            line[f"rescore_mismatch@{k}"] = [eh, en]
    line["rescored_within_1e-4"] = all(not k.startswith("rescore_mismatch") for k in line)
    emit(line)
sys.exit(1 if bad else 0)
PY
done
