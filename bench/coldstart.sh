#!/usr/bin/env bash
# coldstart.sh: cold start on Beauty with item titles and attributes
# (../shared/data/amazon-s3rec Beauty + amazon-beauty-titles).
#  - COLD-ITEM (10% of the items leave training with all their events; the
#    test targets that are cold items are ranked against all items): pop, the
#    id-only transformer, the feature-aware transformer (attributes + title
#    words; also with --tf-exclude-cold --tf-id-dropout 0.8), and the hybrid
#    model when it is registered;
#  - LOO-FULL: the feature-aware transformer beside the id-only one (the
#    features must not cost accuracy on warm items).
# Prints one JSON line per (protocol, model); results in OUT/.
#
# usage: bench/coldstart.sh BUILD_DIR
# env:   SHELF_DATA (default ../shared/data), OUT (default BUILD_DIR/bench-cold), THREADS (default 2)
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
DATA=${SHELF_DATA:-$root/../shared/data}
OUT=${OUT:-$BUILD/bench-cold}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
cmake --build "$BUILD" -j "$(nproc)" --target shelf >&2
shelf="$BUILD/shelf"
seq="$DATA/amazon-s3rec/Beauty.txt"
attrs="$DATA/amazon-s3rec/Beauty_item2attributes.json"
titles="$DATA/amazon-beauty-titles/Beauty_s3rec_item_text.tsv"
for f in "$seq" "$attrs" "$titles"; do [ -f "$f" ] || { echo "$0: $f missing" >&2; exit 1; }; done

# the store: sequences and attributes, then the titles as item rows (JSON Lines)
store="$OUT/beauty.db"
rm -f "$store" "$store-wal" "$store-shm"
/usr/bin/python3 - "$titles" "$OUT/titles.jsonl" <<'PY'
import csv, json, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f, open(sys.argv[2], "w", encoding="utf-8") as out:
    for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
        out.write(json.dumps({"id": row["s3rec_item_id"], "title": row["title"]}, ensure_ascii=False) + "\n")
PY
"$shelf" init --store "$store" >&2
"$shelf" import --store "$store" --format s3rec "$seq" --attributes "$attrs" --quiet >&2
"$shelf" import --store "$store" --format jsonl --what items "$OUT/titles.jsonl" --quiet >&2

has_hybrid=0
"$shelf" eval --help 2>&1 | grep -q -- '--hyb-' && has_hybrid=1
ev() { # name protocol models extra...
    local name=$1 proto=$2 models=$3
    shift 3
    echo "== $name: $proto, $models $*" >&2
    "$shelf" eval --store "$store" --protocol "$proto" --models "$models" --k 10,20 --threads "$THREADS" \
        --json "$OUT/$name.json" --tf-log "$OUT/$name.tf.jsonl" --quiet "$@" >&2
}
cold_models=pop,transformer
[ $has_hybrid = 1 ] && cold_models=pop,hybrid,transformer
ev cold_features cold-item "$cold_models"
ev cold_idonly cold-item transformer --no-tf-features
ev cold_excl cold-item transformer --tf-exclude-cold --tf-id-dropout 0.8
ev loo_features loo-full transformer
ev loo_idonly loo-full transformer --no-tf-features

/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
labels = {"cold_features": "features", "cold_idonly": "id-only",
          "cold_excl": "features, cold items out of the training softmax, id dropout 0.8",
          "loo_features": "features", "loo_idonly": "id-only"}
for name in ("cold_features", "cold_idonly", "cold_excl", "loo_features", "loo_idonly"):
    res = json.load(open(f"{out}/{name}.json"))
    for r in res["models"]:
        m = r["model"]
        label = m + (f" ({labels[name]})" if m == "transformer" else "")
        line = {"bench": "coldstart", "dataset": "Beauty+titles+attributes",
                "protocol": "cold-item" if name.startswith("cold") else "loo-full", "model": label,
                "users_evaluated": r["users"], "fit_seconds": round(r["fit_seconds"], 1)}
        for k in (10, 20):
            line[f"hr@{k}"] = round(r["metrics"][f"hr@{k}"], 5)
            line[f"ndcg@{k}"] = round(r["metrics"][f"ndcg@{k}"], 5)
        print(json.dumps(line))
PY
