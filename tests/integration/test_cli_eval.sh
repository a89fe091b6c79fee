#!/usr/bin/env bash
# test_eval.sh: `shelf eval` and `shelf train` end to end on a generated shop:
# every classic model is evaluated under LOO-FULL, its exported top-20 lists
# are re-scored by the independent ../shared/tools/score_topk.py (HR and NDCG
# must agree within 1e-4), models beat popularity on the shop's planted
# tastes, and trained bundles exist; the header says who was left out and
# why, and a protocol that leaves nothing to score is refused.
# Usage: test_eval.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1
dir=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
scorer=$root/../shared/tools/score_topk.py
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
[ -f "$scorer" ] || { echo "FAIL: the independent scorer $scorer is missing (shared/ must sit beside the repository)"; exit 1; }
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi; }

check "eval --help lists the registered models" grep -q "^models: pop itemknn ease als bpr" <<<"$("$shelf" eval --help)"
# --help fits a screen: the common options and the model names; a model's
# options with --model NAME (train) or --models A,B (eval); all with --help-all
out=$("$shelf" train --help)
check "train --help fits a screen" test "$(wc -l <<<"$out")" -le 40
check "train --help shows no model's options" bash -c '! grep -q -- "--als-factors\|--tf-dim" <<<"$1"' _ "$out"
check "train --help says how to see a model's options" grep -q -- "--model NAME --help" <<<"$out"
out=$("$shelf" train --model als --help)
check "train --model als --help shows als's options" grep -q -- "--als-factors N .*(default 64; 1..4096)" <<<"$out"
check "train --model als --help shows no other model's" bash -c '! grep -q -- "--bpr-\|--tf-\|--pop-half-life" <<<"$1"' _ "$out"
out=$("$shelf" eval --models pop,ease --help)
check "eval --models pop,ease --help shows both" bash -c 'grep -q -- "--pop-half-life DURATION" <<<"$1" && grep -q -- "--ease-max-mb N .*(MiB" <<<"$1"' _ "$out"
out=$("$shelf" train --help-all)
check "train --help-all shows every model's options" bash -c 'grep -q -- "--tf-dim N" <<<"$1" && grep -q -- "--hyb-loss" <<<"$1"' _ "$out"
"$shelf" train --model nope --help >/dev/null 2>&1; check "--model nope --help is a usage error" test $? -eq 2
check "shelf --help mentions --help-all" grep -q -- "--help-all" <<<"$("$shelf" --help)"
err=$("$shelf" eval --pop-half-life 7days --quiet 2>&1); rc=$?
check "a bad duration is a usage error naming flag and value" bash -c '[ "$2" -eq 2 ] && grep -q -- "--pop-half-life.*7days" <<<"$1"' _ "$err" "$rc"
"$shelf" gen --store shop.db --users 600 --items 300 --events 30000 --seed 5 --quiet >/dev/null
# the s3rec form wants integer ids: the generator's u17 / i42 become 17 / 42
"$shelf" export --store shop.db --format s3rec --out - | sed 's/[ui]//g' > seq.txt
models=pop,itemknn,ease,als,bpr
"$shelf" eval --data seq.txt --format s3rec --models $models --k 5,10,20 --json ev.json --topk-out top \
    --bpr-epochs 20 --quiet > table.txt 2>err.txt
check "eval exits 0" test $? -eq 0
cat err.txt >&2
check "table has every model" test "$(grep -cE '^(pop|itemknn|ease|als|bpr) ' table.txt)" -eq 5
check "table shows the bootstrap" grep -q "paired bootstrap" table.txt
for m in ${models//,/ }; do
    check "top lists of $m" test -s "top.$m"
    /usr/bin/python3 "$scorer" seq.txt "top.$m" --k 5,10,20 > "re.$m.json"
    check "score_topk.py reproduces $m within 1e-4" /usr/bin/python3 - "$m" <<'PY'
import json, sys
m = sys.argv[1]
ours = next(r for r in json.load(open("ev.json"))["models"] if r["model"] == m)["metrics"]
ext = json.load(open(f"re.{m}.json"))
bad = [k for k in ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20") if abs(ours[k] - ext[k]) > 1e-4]
if bad:
    print(m, {k: (ours[k], ext[k]) for k in bad}, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
done
check "personalised models beat popularity on planted tastes" /usr/bin/python3 - <<'PY'
import json, sys
r = {x["model"]: x["metrics"]["ndcg@10"] for x in json.load(open("ev.json"))["models"]}
print(r, file=sys.stderr)
sys.exit(0 if max(r["itemknn"], r["ease"], r["als"]) > r["pop"] else 1)
PY
"$shelf" eval --data shop.db --models pop --quiet > fromstore.txt
check "--data accepts a store" grep -q "^pop " fromstore.txt
"$shelf" eval --data seq.txt --models pop --quiet 2>/dev/null
check "--data FILE without --format is refused" test $? -eq 1
"$shelf" eval --data seq.txt --format s3rec --models pop --valid --quiet > valid.txt
check "--valid reports validation" grep -q "validation targets" valid.txt
"$shelf" eval --data seq.txt --format s3rec --models itemknn --tune --json tune.json --quiet >/dev/null 2>tune.txt
check "--tune tries the grid on validation" test "$(grep -c -- '-> valid NDCG' tune.txt)" -eq 12
check "--tune reports its choice" grep -q "tune itemknn: chose knn-shrink=" tune.txt
check "--tune keeps the trace" /usr/bin/python3 -c "import json,sys; d=json.load(open('tune.json')); sys.exit(0 if len(d['tuning']) == 12 else 1)"
"$shelf" eval --data seq.txt --format s3rec --models nosuch --quiet 2>/dev/null
check "unknown model exits 2" test $? -eq 2
"$shelf" eval --data seq.txt --format s3rec --models pop --k 5,50 --quiet 2>/dev/null
check "K above 20 is refused" test $? -eq 2

for m in ${models//,/ }; do
    check "train $m" "$shelf" train --store shop.db --model "$m" --bundle "b_$m" --bpr-epochs 5 --quiet
    check "bundle $m has a manifest" grep -Eq "\"model\":[[:space:]]*\"$m\"" "b_$m/manifest.json"
    check "bundle $m has tensors" test -s "b_$m/tensors.safetensors"
done
"$shelf" train --store shop.db --model pop --bundle b_pop --quiet 2>/dev/null
check "bundles are immutable" test $? -eq 1

# rating models: the 80/20 protocol on the shop's rating events, then predict
"$shelf" eval --store shop.db --protocol ratings-80-20 --models rating-mf,svdpp,rating-text --json ratings.json \
    --mf-epochs 10 --svdpp-epochs 10 --quiet > ratings.txt
check "ratings-80-20 runs" test $? -eq 0
check "ratings-80-20 reports RMSE below the 1-5 scale's range" /usr/bin/python3 - <<'PY'
import json, sys
d = json.load(open("ratings.json"))
ok = len(d["models"]) == 3 and all(0 < m["rmse"] < 2 and 0 < m["mae"] <= m["rmse"] for m in d["models"])
print([(m["model"], m["rmse"]) for m in d["models"]], file=sys.stderr)
sys.exit(0 if ok else 1)
PY
check "train rating-mf" "$shelf" train --store shop.db --model rating-mf --bundle b_rmf --mf-epochs 5 --quiet
out=$("$shelf" predict --store shop.db --bundle b_rmf --user u1 --item i1)
check "predict prints a rating in 1..5" /usr/bin/python3 -c "import sys; v=float('$out'.split()[2]); sys.exit(0 if 1 <= v <= 5 else 1)"
out=$("$shelf" predict --store shop.db --bundle b_rmf --user nobody --item i1)
check "predict for an unknown user says so" grep -q "unknown user" <<<"$out"
"$shelf" predict --store shop.db --bundle b_rmf --user u1 --item nothing 2>/dev/null
check "predict for an unknown item fails" test $? -eq 1
"$shelf" predict --store shop.db --bundle b_als --user u1 --item i1 2>/dev/null
check "predict with a ranking-only model fails" test $? -eq 1

# nothing silent (issue 21, item 7): the header says who was not evaluated
# and why; a protocol that leaves nothing to score is refused, saying why
"$shelf" gen --store t.db --users 30 --items 20 --events 200 --seed 3 --quiet 2>/dev/null
out=$("$shelf" eval --data t.db --protocol temporal --temporal-test 10d --models pop 2>&1 | head -1)
check "the header counts the users left out, by reason ($out)" \
    grep -qE '^t\.db, temporal, test targets, [0-9]+ users evaluated \(of 30: [0-9]+ without a test target, [0-9]+ whose targets were all in their history\)$' <<<"$out"
n=$(sed -n 's/.*targets, \([0-9]*\) users evaluated (of 30: \([0-9]*\) without.* \([0-9]*\) whose.*/\1 \2 \3/p' <<<"$out")
read -r ev wo seen <<<"$n"
check "  and they add up to 30 ($n)" test $((ev + wo + seen)) -eq 30
"$shelf" eval --data t.db --protocol temporal --temporal-test 0s --models pop > out0.txt 2> err0.txt
st=$?
check "a test window with no event is refused (exit 1: $st, $(cat err0.txt))" \
    eval '[ "$st" = 1 ] && grep -q "no user has a test event" err0.txt && grep -q "lengthen --temporal-test" err0.txt && ! grep -q nan out0.txt'
printf 'user,item\nu1,i1\nu2,i2\nu3,i1\n' > one.csv
"$shelf" import --store one.db --format csv one.csv --quiet 2>/dev/null
"$shelf" eval --data one.db --models pop > /dev/null 2> err1.txt
st=$?
check "leave-one-out with one event a user is refused (exit 1: $st, $(cat err1.txt))" \
    eval '[ "$st" = 1 ] && grep -q "no user has a test target" err1.txt'
echo "$pass passed, $fail failed"
test "$fail" -eq 0
