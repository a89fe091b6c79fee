#!/usr/bin/env bash
# coldstart.sh: cold start with item text, on Beauty (../shared/data/amazon-s3rec
# Beauty + the titles of amazon-beauty-titles + S3-Rec attributes) and on
# Scientific (amazon-scientific-unisrec: title + category path + brand per item).
#  - COLD-ITEM (10% of the items leave training with all their events; the
#    test targets that are cold items are ranked against all items): pop, the
#    hybrid model, the id-only transformer, the feature-aware transformer
#    (attributes + title words; also with --tf-exclude-cold --tf-id-dropout
#    0.8), and item-kNN, ALS, the hybrid and the transformer with --cold-fill 1 (items
#    without training events take their nearest content neighbour's score;
#    k = 1 was chosen on the cold-item validation targets with item-kNN and ALS);
#  - LOO-FULL: the feature-aware transformer beside the id-only one (the
#    features must not cost accuracy on warm items).
# Prints one JSON line per (dataset, protocol, model); results in OUT/.
#
# usage: bench/coldstart.sh BUILD_DIR [Beauty] [Scientific]   (default: both)
# env:   SHELF_DATA (default ../shared/data), OUT (default BUILD_DIR/bench-cold), THREADS (default 2)
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
    echo "usage: $0 BUILD_DIR [Beauty] [Scientific]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
shift
sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(Beauty Scientific)
DATA=${SHELF_DATA:-$root/../shared/data}
OUT=${OUT:-$BUILD/bench-cold}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
cmake --build "$BUILD" -j "$(nproc)" --target shelf >&2
shelf="$BUILD/shelf"

# Beauty: sequences and attributes, then the titles as item rows (JSON Lines)
make_beauty() {
    local seq="$DATA/amazon-s3rec/Beauty.txt" attrs="$DATA/amazon-s3rec/Beauty_item2attributes.json"
    local titles="$DATA/amazon-beauty-titles/Beauty_s3rec_item_text.tsv" store="$OUT/beauty.db"
    for f in "$seq" "$attrs" "$titles"; do [ -f "$f" ] || { echo "$0: $f missing" >&2; exit 1; }; done
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
}

# Scientific: each user's full sequence is its test row's history + target
# (RecBole files, 0-based indices; ids here are index + 1, as the s3rec format
# wants integers); each item's text (title, category path, brand) is its title
make_scientific() {
    local d="$DATA/amazon-scientific-unisrec" store="$OUT/scientific.db"
    for f in "$d/Scientific.test.inter" "$d/Scientific.text" "$d/Scientific.item2index"; do
        [ -f "$f" ] || { echo "$0: $f missing" >&2; exit 1; }
    done
    rm -f "$store" "$store-wal" "$store-shm"
    /usr/bin/python3 - "$d" "$OUT/scientific_seq.txt" "$OUT/scientific_items.jsonl" <<'PY'
import json, sys
d, seq_out, items_out = sys.argv[1:4]
index = {}
for line in open(f"{d}/Scientific.item2index", encoding="utf-8"):
    a, i = line.rstrip("\n").split("\t")
    index[a] = int(i)
with open(seq_out, "w") as out:
    for n, line in enumerate(open(f"{d}/Scientific.test.inter", encoding="utf-8")):
        if n == 0:
            continue
        u, hist, target = line.rstrip("\n").split("\t")
        items = [int(x) + 1 for x in hist.split()] + [int(target) + 1]
        out.write(str(int(u) + 1) + " " + " ".join(map(str, items)) + "\n")
with open(items_out, "w", encoding="utf-8") as out:
    for n, line in enumerate(open(f"{d}/Scientific.text", encoding="utf-8")):
        if n == 0:
            continue
        a, text = line.rstrip("\n").split("\t", 1)
        out.write(json.dumps({"id": str(index[a] + 1), "title": text.strip()}, ensure_ascii=False) + "\n")
PY
    "$shelf" init --store "$store" >&2
    "$shelf" import --store "$store" --format s3rec "$OUT/scientific_seq.txt" --quiet >&2
    "$shelf" import --store "$store" --format jsonl --what items "$OUT/scientific_items.jsonl" --quiet >&2
}

ev() { # store name protocol models extra...
    local store=$1 name=$2 proto=$3 models=$4
    shift 4
    echo "== $name: $proto, $models $*" >&2
    "$shelf" eval --store "$store" --protocol "$proto" --models "$models" --k 10,20 --threads "$THREADS" \
        --json "$OUT/$name.json" --tf-log "$OUT/$name.tf.jsonl" --quiet "$@" >&2
}
for ds in "${sets[@]}"; do
    case $ds in
    Beauty) make_beauty; store="$OUT/beauty.db"; p=beauty ;;
    Scientific) make_scientific; store="$OUT/scientific.db"; p=scientific ;;
    *) echo "$0: unknown dataset $ds (Beauty, Scientific)" >&2; exit 2 ;;
    esac
    ev "$store" "${p}_cold_features" cold-item pop,hybrid,transformer
    ev "$store" "${p}_cold_idonly" cold-item transformer --no-tf-features
    ev "$store" "${p}_cold_excl" cold-item transformer --tf-exclude-cold --tf-id-dropout 0.8
    ev "$store" "${p}_cold_fill" cold-item itemknn,als,hybrid,transformer --cold-fill 1
    ev "$store" "${p}_loo_features" loo-full transformer
    ev "$store" "${p}_loo_idonly" loo-full transformer --no-tf-features
done

SHELF_MACHINE=$("$BUILD/shelf" version --cpu) \
/usr/bin/python3 - "$OUT" "${sets[@]}" <<'PY'
import json, sys
import os as _os
machine = json.loads(_os.environ["SHELF_MACHINE"])  # CPU model and kernel levels (shelf version --cpu)
emit = lambda d: print(json.dumps({**d, "machine": machine}))
out, sets = sys.argv[1], sys.argv[2:]
labels = {"cold_features": "features", "cold_idonly": "id-only",
          "cold_excl": "features, cold items out of the training softmax, id dropout 0.8",
          "cold_fill": "cold items: nearest content neighbour's score (--cold-fill 1)",
          "loo_features": "features", "loo_idonly": "id-only"}
for ds in sets:
    p = ds.lower()
    for name in ("cold_features", "cold_idonly", "cold_excl", "cold_fill", "loo_features", "loo_idonly"):
        res = json.load(open(f"{out}/{p}_{name}.json"))
        for r in res["models"]:
            m = r["model"]
            label = m + (f" ({labels[name]})" if m == "transformer" or name == "cold_fill" else "")
            line = {"bench": "coldstart", "dataset": ds + ("+titles+attributes" if ds == "Beauty" else "+text"),
                    "protocol": "cold-item" if name.startswith("cold") else "loo-full", "model": label,
                    "users_evaluated": r["users"], "fit_seconds": round(r["fit_seconds"], 1)}
            for k in (10, 20):
                line[f"hr@{k}"] = round(r["metrics"][f"hr@{k}"], 5)
                line[f"ndcg@{k}"] = round(r["metrics"][f"ndcg@{k}"], 5)
            emit(line)
PY
