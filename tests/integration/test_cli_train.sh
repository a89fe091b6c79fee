#!/usr/bin/env bash
# test_cli_train.sh: where `shelf train` writes its bundle: missing parents
# are created; a place it cannot write (or an existing bundle) fails before
# the fit; a directory of bundles gets a new MODEL-<time> bundle, and two
# trainings in the same second get distinct ones.
# Usage: test_cli_train.sh SHELF_BINARY TMPDIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_check.sh" && . "$here/lib_serve.sh" || exit 1
shelf=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1

check "a shop" "$shelf" gen --store s.db --users 300 --items 200 --events 6000 --seed 5 --quiet
# train BUNDLE [ARG...]: an itemknn training of s.db into BUNDLE, quiet
train() { local b=$1; shift; "$shelf" train --model itemknn --store s.db --bundle "$b" --quiet "$@"; }
# fits_logged FILE: the fit ran (the transformer logs each epoch at info)
fits_logged() { grep -q "transformer: epoch 1 " "$1"; }

# --- missing parents
check "train into a/b/c/model (missing parents)" train a/b/c/model > out.1 2> err.1
check "a/b/c/model is a bundle ($(cat err.1))" test -s a/b/c/model/manifest.json -a -s a/b/c/model/tensors.safetensors

# --- a place that cannot be written: fails before the fit
touch f
"$shelf" train --model transformer --tf-epochs 2 --store s.db --bundle f/x --log-level info > out.2 2> err.2
rc=$?
check "under a plain file: exit status 1 (got $rc)" test "$rc" -eq 1
check "under a plain file: says where and why ($(cat err.2))" grep -q "^shelf train: f: cannot create .*Not a directory" err.2
check "under a plain file: nothing was fitted" bash -c "! grep -q 'transformer: epoch' err.2"
"$shelf" train --model transformer --tf-epochs 2 --store s.db --bundle a/b/c/model --log-level info > out.3 2> err.3
rc=$?
check "onto a bundle: exit status 1 (got $rc)" test "$rc" -eq 1
check "onto a bundle: says so ($(cat err.3))" grep -q "a/b/c/model: a bundle is there" err.3
check "onto a bundle: nothing was fitted" bash -c "! grep -q 'transformer: epoch' err.3"
check "the training itself logs its epochs (so the checks above mean something)" \
  "$shelf" train --model transformer --tf-epochs 1 --store s.db --bundle T --log-level info > out.4 2> err.4
check "the epoch line ($(cat err.4))" fits_logged err.4

# --- a directory of bundles: two trainings at once get two bundles
mkdir D
train D > out.5 2> err.5 & p1=$!
train D/ > out.6 2> err.6 & p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
check "two trainings into D at once: both exit 0 ($r1, $r2: $(cat err.5 err.6))" test "$r1" -eq 0 -a "$r2" -eq 0
n=$(ls D | wc -l)
check "D holds two bundles (got: $(ls D | tr '\n' ' '))" test "$n" -eq 2
for b in D/*; do check "$b is whole" test -s "$b/manifest.json" -a -s "$b/tensors.safetensors"; done
check "each is named itemknn-<UTC time>" test "$(ls D | grep -Ec '^itemknn-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$')" -eq 2

# --- the name of this second taken (for the next few seconds): -2
mkdir P
now=$(date -u +%s)
for ((k = 0; k < 5; k++)); do cp -r a/b/c/model "P/itemknn-$(date -u -d "@$((now + k))" +%Y%m%dT%H%M%SZ)"; done
check "train into P/ while its name is taken" train P/ > out.7 2> err.7
check "P gains a -2 bundle (got: $(ls P | tr '\n' ' '))" test "$(ls P | grep -c -- '-2$')" -eq 1
check "P holds six bundles" test "$(ls P | wc -l)" -eq 6

echo "test_cli_train: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
