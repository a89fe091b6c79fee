#!/usr/bin/env bash
# tradeoffs.sh: accuracy against beyond-accuracy for the scenario stages of
# shelf eval (docs/scenarios.md) on an S3-Rec file under LOO-FULL (test
# targets): the transformer, EASE and ItemKNN, each alone ("plain"), under
# MMR diversity by category (a lambda sweep), under the long-tail term (a
# beta sweep), and the transformer fused with EASE or ItemKNN (weighted and
# rrf). ONE shelf eval run: every model is fitted once (the transformer with
# its default configuration, as bench/train_transformer.sh runs it), then
# measured under each scenario document.
#
# Categories: the S3-Rec files give items attributes (brand and the
# category-path entries, as ids), not a category, so `--attributes` alone
# leaves ILD by category null and MMR by category without effect. The script
# therefore imports the file into a store (OUT/DATASET.db, same events, same
# attributes) and then the items' category: the top-level department (the
# attribute that opens every category path: an id seen first or second in a
# list, never later) and its next CATEGORY_DEPTH-1 path entries, named from
# ../shared/data/amazon-s3rec-id-maps/DATASET_attribute_names.tsv where it
# exists (Beauty), else "attr<ID>". The transformer sees the category as one
# more feature (its embedding, and its words among the text features): the
# same information as the attributes it already has, but not the exact model
# bench/train_transformer.sh measures from the file.
#
# Writes OUT/tradeoffs.jsonl (one line per model and scenario; fusion rows
# only for the transformer, the other models' rows being the same list) and
# OUT/tradeoffs.svg (bench/tradeoffs_plot.py), and prints a summary that
# answers: (a) the MMR setting with the smallest NDCG@10 loss that raises ILD
# by >= 20 % (loss must be <= 5 %), (b) the long-tail setting with the
# smallest loss that at least doubles the long-tail share (loss <= 10 %),
# (c) the best fusion row against the best single source, with shelf's
# paired bootstrap of NDCG@10 where shelf made that pair (it compares every
# row with the best row) and one from the exported lists. Every row's
# exported top-20 (OUT/topk) is re-scored here without shelf (NDCG@10, HR@10,
# ILD@10 by the categories written; within 1e-4, else an ODD line). A missed
# target is said, not an error; a failed run exits non-zero.
#
# usage: bench/tradeoffs.sh BUILD_DIR [DATASET]   (default: Beauty)
# env:   SHELF_DATA (default ../shared/data), OUT (default BUILD_DIR/bench-tradeoffs),
#        THREADS (default 2), CATEGORY_DEPTH (default 2: "Skin Care > Face"),
#        LAMBDAS, BETAS (space-separated), FUSIONS (space-separated
#        fusion:model:weight, the transformer's weight being 1), TF_ARGS (extra
#        transformer options, e.g. "--tf-epochs 5" for a smoke run), REPORT_ONLY=1
#        (write the rows, plot and summary again from OUT/eval.json).
#        FUSED_BETAS (the long-tail term on the transformer fused with EASE
#        0.15: (b, fused)), SCORE_BETAS (the long-tail term on the score,
#        "on": "score": the model's logit - beta log(1 + popularity); (b, on
#        the score)). shelf eval takes at most 32 scenario files (and 128
#        rows): 1 plain + the five lists must stay within 32.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1/CMakeCache.txt" ]; then
    echo "usage: $0 BUILD_DIR [DATASET]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
ds=${2:-Beauty}
DATA=${SHELF_DATA:-$root/../shared/data}
OUT=${OUT:-$BUILD/bench-tradeoffs}
THREADS=${THREADS:-2}
CATEGORY_DEPTH=${CATEGORY_DEPTH:-2}
# the grids: sweeps wide enough for the curves, finer where Beauty's targets
# fall (ILD +20 % near lambda 0.9, long-tail share x2 near beta 0.125), and
# the best fusions of wider grids (EASE 0.1..0.5, ItemKNN 0.25..0.5, both fusions)
LAMBDAS=${LAMBDAS:-0.95 0.925 0.91 0.9 0.85 0.7}
BETAS=${BETAS:-0.05 0.1 0.12 0.13 0.2 0.3}
FUSIONS=${FUSIONS:-weighted:ease:0.15 rrf:ease:0.25 weighted:itemknn:0.25}
FUSED_BETAS=${FUSED_BETAS:-0.16 0.2}
SCORE_BETAS=${SCORE_BETAS:-0.3 0.5 0.6 0.75 1}
REPORT_ONLY=${REPORT_ONLY:-0}
TF_ARGS=${TF_ARGS:-}
SHELF=$BUILD/shelf
f="$DATA/amazon-s3rec/$ds.txt"
a="$DATA/amazon-s3rec/${ds}_item2attributes.json"
names="$DATA/amazon-s3rec-id-maps/${ds}_attribute_names.tsv"
if [ ! -f "$f" ] || [ ! -f "$a" ]; then echo "$0: $f or $a missing" >&2; exit 1; fi
[ -x "$SHELF" ] || { echo "$0: $SHELF missing (build the shelf target)" >&2; exit 1; }
mkdir -p "$OUT/scenarios"
if [ "$REPORT_ONLY" != 1 ]; then
rm -rf "$OUT"/scenarios/*.json "$OUT/eval.json" "$OUT/tf_log.jsonl" "$OUT/topk"
mkdir -p "$OUT/topk"

# ---- the store: events and attributes from the S3-Rec files, then each item's category
echo "== $ds: store with categories (depth $CATEGORY_DEPTH)" >&2
/usr/bin/python3 - "$a" "$names" "$CATEGORY_DEPTH" "$OUT/items.csv" <<'PY'
import collections, csv, html, json, os, sys
attrs_path, names_path, depth, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
attrs = json.load(open(attrs_path))
names = {}
if os.path.exists(names_path):
    rows = list(csv.reader(open(names_path, newline=""), delimiter="\t"))
    col = rows[0].index("name")
    names = {int(r[0]): html.unescape(r[col]) for r in rows[1:]}
pos = collections.defaultdict(set)
for v in attrs.values():
    for i, x in enumerate(v):
        pos[x].add(i)
# a department opens every category path: after the brand (when the brand
# survived S3-Rec's filter) or first; never deeper
top = {x for x, p in pos.items() if p <= {0, 1} and 0 in p and 1 in p}
cats, none = collections.Counter(), 0
with open(out, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["id", "category"])
    for item, v in attrs.items():
        i = next((j for j, x in enumerate(v[:2]) if x in top), None)
        if i is None:
            none += 1
            continue
        c = " > ".join(names.get(x, f"attr{x}") for x in v[i:i + depth])
        cats[c] += 1
        w.writerow([item, c])
print(f"{sum(cats.values())} items in {len(cats)} categories ({len(top)} departments), {none} without one; "
      f"largest: {cats.most_common(3)}", file=sys.stderr)
PY
store="$OUT/$ds.db"
rm -f "$store" "$store-wal" "$store-shm"
"$SHELF" import --store "$store" --format s3rec --attributes "$a" "$f" --quiet >&2
"$SHELF" import --store "$store" --format csv --what items "$OUT/items.csv" --quiet >&2

# ---- the scenario documents (named without dots, as older shelf labelled rows by the name up to its first dot)
tag() { echo "${1//./p}"; }
scn=()
put() { # name json
    echo "$2" > "$OUT/scenarios/$1.json"
    scn+=("$OUT/scenarios/$1.json")
}
put plain '{}'
for l in $LAMBDAS; do put "mmr_l$(tag "$l")" "{\"diversity\": {\"by\": \"category\", \"lambda\": $l}}"; done
for b in $BETAS; do put "lt_b$(tag "$b")" "{\"long_tail\": {\"beta\": $b}}"; done
for b in $SCORE_BETAS; do put "lts_b$(tag "$b")" "{\"long_tail\": {\"beta\": $b, \"on\": \"score\"}}"; done
for b in $FUSED_BETAS; do # the long-tail term on the transformer fused with EASE 0.15
    put "fwlt_b$(tag "$b")" "{\"sources\": [{\"type\": \"model\", \"model\": \"transformer\"}, {\"type\": \"model\", \"model\": \"ease\", \"weight\": 0.15}], \"fusion\": \"weighted\", \"long_tail\": {\"beta\": $b}}"
done
for spec in $FUSIONS; do
    IFS=: read -r fu m w <<< "$spec"
    put "f${fu:0:1}_${m}_w$(tag "$w")" \
        "{\"sources\": [{\"type\": \"model\", \"model\": \"transformer\"}, {\"type\": \"model\", \"model\": \"$m\", \"weight\": $w}], \"fusion\": \"$fu\"}"
done
if [ ${#scn[@]} -gt 32 ]; then
    echo "$0: ${#scn[@]} scenarios; shelf eval takes at most 32 (shorten LAMBDAS, BETAS or FUSIONS)" >&2
    exit 2
fi
list=$(IFS=,; echo "${scn[*]}")

# ---- one eval: every model fitted once, then measured under each scenario
models=transformer,ease,itemknn
echo "== $ds: shelf eval, $models x ${#scn[@]} scenarios, LOO-FULL test, $THREADS threads" >&2
t0=$(date +%s)
# shellcheck disable=SC2086
"$SHELF" eval --data "$store" --protocol loo-full --models "$models" --k 10,20 --threads "$THREADS" \
    --scenario "$list" --json "$OUT/eval.json" --tf-log "$OUT/tf_log.jsonl" --topk-out "$OUT/topk/lists" --quiet $TF_ARGS \
    > "$OUT/eval.txt"
echo "== eval took $(($(date +%s) - t0)) s; table in $OUT/eval.txt" >&2
fi

SHELF_MACHINE=$("$SHELF" version --cpu) \
/usr/bin/python3 - "$OUT" "$ds" "$CATEGORY_DEPTH" "$TF_ARGS" "$f" <<'PY'
import csv, json, math, os, sys
import numpy as np
machine = json.loads(os.environ["SHELF_MACHINE"])  # CPU model and kernel levels (shelf version --cpu)
out, ds, depth, tf_args, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
res = json.load(open(f"{out}/eval.json"))
rows = {r["model"]: r for r in res["models"]}

# ---- every row's exported top-20 re-scored here, without shelf: NDCG@10,
# HR@10 (test target = the last item, history skipped) and ILD@10 by the
# categories written to items.csv; per-user NDCG@10 for the bootstrap of (c)
seqs = {}
for line in open(data):
    p = line.split()
    if len(p) >= 3:
        seqs[p[0]] = (p[-1], set(p[1:-1]))
users = sorted(seqs)
cats, cat_ids = {}, {}
with open(f"{out}/items.csv", newline="") as fh:
    for r in csv.DictReader(fh):
        cats[r["id"]] = cat_ids.setdefault(r["category"], len(cat_ids))
per_user, rescore = {}, {}
for label in rows:
    path = f"{out}/topk/lists.{label}"
    if not os.path.exists(path):
        continue
    lists = {}
    for line in open(path):
        p = line.split()
        if p:
            lists[p[0]] = p[1:]
    nd = np.zeros(len(users))
    C = np.full((len(users), 10), -1)
    for j, u in enumerate(users):
        t, h = seqs[u]
        ranked = [i for i in lists.get(u, []) if i not in h][:10]
        if t in ranked:
            nd[j] = 1 / math.log2(ranked.index(t) + 2)
        C[j, :len(ranked)] = [cats.get(i, -1) for i in ranked]
    n = (C >= 0).sum(1)
    diff = (C[:, :, None] != C[:, None, :]) | (C[:, :, None] < 0) | (C[:, None, :] < 0)
    iu = np.triu_indices(10, 1)
    pairs = n * (n - 1) / 2
    d = diff[:, iu[0], iu[1]] & (iu[1][None, :] < n[:, None])
    ok = pairs > 0
    ild = float((d.sum(1)[ok] / pairs[ok]).mean()) if ok.any() else None
    per_user[label] = nd
    rescore[label] = {"ndcg@10": float(nd.mean()), "hr@10": float((nd > 0).mean()), "ild_category@10": ild}
log = [json.loads(l) for l in open(f"{out}/tf_log.jsonl")] if os.path.exists(f"{out}/tf_log.jsonl") else []

def control(name):
    doc = json.load(open(f"{out}/scenarios/{name}.json"))
    if "diversity" in doc:
        return "mmr", {"lambda": doc["diversity"]["lambda"]}
    if "long_tail" in doc and doc["long_tail"].get("on") == "score":
        return "long_tail_score", {"beta": doc["long_tail"]["beta"]}
    if "long_tail" in doc:
        fused = {x["model"]: x.get("weight", 1) for x in doc.get("sources", [])}
        return "long_tail", {"beta": doc["long_tail"]["beta"], **({"fused": fused} if fused else {})}
    if "sources" in doc:
        s = doc["sources"]
        return "fusion", {"fusion": doc.get("fusion", "weighted"),
                          "weights": {x["model"]: x.get("weight", 1) for x in s}}
    return "plain", {}

M = ("ndcg@10", "hr@10", "ild_category@10", "long_tail@10", "coverage@10", "novelty@10", "gini@10",
     "ndcg@20", "hr@20")
lines, bad = [], []
for label, r in rows.items():
    model, _, scn = label.partition("@")
    kind, value = control(scn)
    m = r["metrics"]
    if kind == "fusion" and model != "transformer":
        t = rows[f"transformer@{scn}"]["metrics"]
        if abs(t["ndcg@10"] - m["ndcg@10"]) > 1e-9 or abs(t["hr@10"] - m["hr@10"]) > 1e-9:
            bad.append(f"{label} differs from transformer@{scn} (fully named sources: same list expected)")
        continue
    base = rows[f"{model}@plain"]["metrics"]
    line = {"bench": "tradeoffs", "dataset": ds, "protocol": "loo-full test", "model": model, "scenario": scn,
            "control": kind, **value}
    for k in M:
        v = m.get(k)
        line[k] = None if v is None else round(v, 5)
    for k in ("ndcg@10", "hr@10", "ild_category@10", "long_tail@10", "coverage@10", "novelty@10", "gini@10"):
        v, b = m.get(k), base.get(k)
        line[f"rel_{k}"] = None if v is None or not b else round(v / b - 1, 4)
    rs = rescore.get(label)
    if rs:
        line["rescored_within_1e-4"] = all(
            rs[k] is not None and m.get(k) is not None and abs(rs[k] - m[k]) <= 1e-4 for k in rs)
        if not line["rescored_within_1e-4"]:
            bad.append(f"{label}: the exported lists re-score to {rs}, shelf says "
                       f"{ {k: m.get(k) for k in rs} }")
    line["category_depth"] = depth
    line["score_seconds"] = round(r["score_seconds"], 1)
    if model == "transformer":
        line["fit_seconds"] = round(r["fit_seconds"], 1)
    line["machine"] = machine
    lines.append(line)
with open(f"{out}/tradeoffs.jsonl", "w") as fh:
    for l in lines:
        fh.write(json.dumps(l) + "\n")

# ---- the summary
pct = lambda x: f"{100 * x:+.1f} %"
T = [l for l in lines if l["model"] == "transformer"]
plain = {l["model"]: l for l in lines if l["control"] == "plain"}
tp = plain["transformer"]
ep = [e for e in log]
print(f"== {ds}, LOO-FULL test, {res['users']} users, {res['items']} items; categories: depth {depth}")
print(f"transformer: default configuration{(' + ' + tf_args) if tf_args else ''}, "
      f"{len(ep)} epochs run, best epoch {ep[-1].get('best_epoch') if ep else '?'}, fit {tp['fit_seconds']} s; "
      f"plain NDCG@10 {tp['ndcg@10']:.5f} HR@10 {tp['hr@10']:.5f} ILD {tp['ild_category@10']} "
      f"long-tail {tp['long_tail@10']}")
for mname in ("ease", "itemknn"):
    if mname not in plain:
        continue
    p = plain[mname]
    print(f"{mname}: plain NDCG@10 {p['ndcg@10']:.5f} HR@10 {p['hr@10']:.5f} ILD {p['ild_category@10']} "
          f"long-tail {p['long_tail@10']}")
if tp["ild_category@10"] is None:
    print("(a) MISSED: ILD by category is null (the items have no category)")
else:
    mmr = sorted((l for l in T if l["control"] == "mmr"), key=lambda l: -l["lambda"])
    for l in mmr:
        print(f"    mmr lambda {l['lambda']}: NDCG@10 {l['ndcg@10']:.5f} ({pct(l['rel_ndcg@10'])}), "
              f"ILD {l['ild_category@10']:.4f} ({pct(l['rel_ild_category@10'])})")
    ok = [l for l in mmr if l["rel_ild_category@10"] >= 0.20]
    if ok:
        b = max(ok, key=lambda l: l["rel_ndcg@10"])
        verdict = "MET" if -b["rel_ndcg@10"] <= 0.05 else f"MISSED by {100 * (-b['rel_ndcg@10'] - 0.05):.1f} points"
        print(f"(a) {verdict}: transformer, MMR by category lambda {b['lambda']}: ILD {tp['ild_category@10']:.4f} -> "
              f"{b['ild_category@10']:.4f} ({pct(b['rel_ild_category@10'])}), NDCG@10 {tp['ndcg@10']:.5f} -> "
              f"{b['ndcg@10']:.5f} ({pct(b['rel_ndcg@10'])}; target: loss <= 5 %)")
    else:
        best = max(mmr, key=lambda l: l["rel_ild_category@10"])
        print(f"(a) MISSED: no lambda raises ILD by 20 %; the most is lambda {best['lambda']}: "
              f"{pct(best['rel_ild_category@10'])} at NDCG@10 {pct(best['rel_ndcg@10'])}")
def long_tail_line(lt, tag, what):
    for l in lt:
        print(f"    {what} beta {l['beta']}: NDCG@10 {l['ndcg@10']:.5f} ({pct(l['rel_ndcg@10'])}), "
              f"long-tail share {l['long_tail@10']:.4f} (x{l['long_tail@10'] / tp['long_tail@10']:.2f})")
    ok = [l for l in lt if l["long_tail@10"] >= 2 * tp["long_tail@10"]]
    if ok:
        b = max(ok, key=lambda l: l["rel_ndcg@10"])
        verdict = "MET" if -b["rel_ndcg@10"] <= 0.10 else f"MISSED by {100 * (-b['rel_ndcg@10'] - 0.10):.1f} points"
        below = [l for l in lt if l["long_tail@10"] < 2 * tp["long_tail@10"]]
        if below and verdict != "MET":
            n = max(below, key=lambda l: l["long_tail@10"])
            verdict += (f" (the setting just short of doubling, beta {n['beta']}: x{n['long_tail@10'] / tp['long_tail@10']:.2f}"
                        f" at NDCG@10 {pct(n['rel_ndcg@10'])})")
        print(f"({tag}) {verdict}: transformer, {what} beta {b['beta']}: long-tail share {tp['long_tail@10']:.4f} -> "
              f"{b['long_tail@10']:.4f} (x{b['long_tail@10'] / tp['long_tail@10']:.2f}), NDCG@10 {tp['ndcg@10']:.5f} -> "
              f"{b['ndcg@10']:.5f} ({pct(b['rel_ndcg@10'])} against the transformer alone; target: loss <= 10 %)")
    elif lt:
        best = max(lt, key=lambda l: l["long_tail@10"])
        print(f"({tag}) MISSED: no beta doubles the long-tail share; the most is beta {best['beta']}: "
              f"x{best['long_tail@10'] / tp['long_tail@10']:.2f} at NDCG@10 {pct(best['rel_ndcg@10'])}")

lt = sorted((l for l in T if l["control"] == "long_tail"), key=lambda l: l["beta"])
long_tail_line([l for l in lt if "fused" not in l], "b", "long tail")
lts = sorted((l for l in T if l["control"] == "long_tail_score"), key=lambda l: l["beta"])
if lts:
    long_tail_line(lts, "b, on the score", "long tail on the score")
fused = [l for l in lt if "fused" in l]
if fused:
    long_tail_line(fused, "b, fused", "fused " + ", ".join(f"{m} {w}" for m, w in fused[0]["fused"].items()) + ", long tail")
fu = [l for l in T if l["control"] == "fusion"]
for l in fu:
    print(f"    fusion {l['fusion']} {l['weights']}: NDCG@10 {l['ndcg@10']:.5f} HR@10 {l['hr@10']:.5f}")
if fu:
    bf = max(fu, key=lambda l: l["ndcg@10"])
    bs = max(plain.values(), key=lambda l: l["ndcg@10"])
    fl, sl = f"transformer@{bf['scenario']}", f"{bs['model']}@plain"
    boot = None
    for e in res.get("bootstrap", []):
        if e["model"] == sl and e["against"] == fl:
            boot = (-e["ndcg_diff"], -e["ci95_hi"], -e["ci95_lo"])
        elif e["model"] == fl and e["against"] == sl:
            boot = (e["ndcg_diff"], e["ci95_lo"], e["ci95_hi"])
    ref = next((e["against"] for e in res.get("bootstrap", [])), None)
    if fl in per_user and sl in per_user:  # the same test here, from the exported lists (seeded)
        dlt = per_user[fl] - per_user[sl]
        rng = np.random.default_rng(42)
        bs_means = np.array([dlt[rng.integers(0, len(dlt), len(dlt))].mean() for _ in range(1000)])
        own = (float(dlt.mean()), float(np.percentile(bs_means, 2.5)), float(np.percentile(bs_means, 97.5)))
        if not boot:
            boot = own
        print(f"    paired bootstrap from the exported lists (numpy, seed 42): {own[0]:+.5f} "
              f"[{own[1]:+.5f}, {own[2]:+.5f}]")
    if boot:
        sig = "significant" if boot[1] > 0 or boot[2] < 0 else "not significant"
        bt = f"paired bootstrap (1000 resamples): {boot[0]:+.5f} [{boot[1]:+.5f}, {boot[2]:+.5f}], {sig} at 95 %"
    else:
        bt = f"no paired bootstrap for this pair (shelf compares every row against the best row, {ref})"
    print(f"(c) best fusion {bf['fusion']} {bf['weights']}: NDCG@10 {bf['ndcg@10']:.5f} HR@10 {bf['hr@10']:.5f} vs "
          f"best single source {bs['model']} plain {bs['ndcg@10']:.5f} HR@10 {bs['hr@10']:.5f} "
          f"({pct(bf['ndcg@10'] / bs['ndcg@10'] - 1)}); {bt}")
for b in bad:
    print("ODD:", b)
print(f"rows: {out}/tradeoffs.jsonl; plot: {out}/tradeoffs.svg")
sys.exit(0)
PY
/usr/bin/python3 "$root/bench/tradeoffs_plot.py" "$OUT/tradeoffs.jsonl" "$OUT/tradeoffs.svg"
