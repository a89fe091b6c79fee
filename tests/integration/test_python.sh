#!/usr/bin/env bash
# test_python.sh: the Python package (python/): its pytest suite against this
# build's libshelf.so (with Debian's /usr/bin/python3: python3-cffi,
# python3-numpy, python3-scipy, python3-pytest), then `pip install
# --no-build-isolation --no-index` of the package into a fresh venv, offline,
# and the suite and the quickstart example again from the installed copy.
# Usage: test_python.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
build=$(cd "$(dirname "$1")" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$2
py=/usr/bin/python3
rm -rf "$dir" && mkdir -p "$dir" || exit 1
dir=$(cd "$dir" && pwd)
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi; }

[ -f "$build/libshelf.so" ] || { echo "FAIL: $build/libshelf.so is missing (the shared library target)"; exit 1; }
if ! "$py" -c 'import cffi, numpy, scipy, pytest, venv, setuptools' 2>"$dir/deps.txt"; then
    echo "FAIL: $py lacks a module: $(tail -1 "$dir/deps.txt")"
    echo "      apt-get install python3-cffi python3-numpy python3-scipy python3-pytest python3-setuptools python3-venv"
    exit 1
fi
export SHELF_LIB=$build/libshelf.so SHELF_BIN=$shelf PYTHONDONTWRITEBYTECODE=1
# a library built with AddressSanitizer needs its runtime loaded first
# into a Python that was not; Python's own allocations are not ours to check
case "${SHELF_TEST_CFLAGS:-}" in
*sanitize=address*)
    LD_PRELOAD=$(cc -print-file-name=libasan.so) && export LD_PRELOAD
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 # the last one counts
    ;;
esac
pytest_args=(-q -p no:cacheprovider "$root/python/tests")

# ---- the suite from the source tree
check "pytest from the source tree" env PYTHONPATH="$root/python" "$py" -m pytest "${pytest_args[@]}" \
    --basetemp="$dir/pytest-src"

# ---- offline install into a venv (a copy of the sources: the build leaves files behind)
mkdir -p "$dir/src" && cp -r "$root/python/shelf" "$root/python/pyproject.toml" "$root/python/README.md" "$dir/src/"
check "venv" "$py" -m venv --system-site-packages "$dir/venv"
check "pip install --no-build-isolation --no-index" \
    "$dir/venv/bin/python" -m pip install -q --no-build-isolation --no-index "$dir/src"
where=$(cd "$dir" && "$dir/venv/bin/python" -c 'import shelf; print(shelf.__file__)')
check "the venv imports the installed copy ($where)" test "${where#"$dir"/venv/}" != "$where"
check "pytest against the installed copy" bash -c 'cd "$1" && shift && "$@"' _ "$dir" \
    "$dir/venv/bin/python" -m pytest "${pytest_args[@]}" --basetemp="$dir/pytest-venv"
out=$(cd "$dir" && "$dir/venv/bin/python" "$root/python/examples/quickstart.py" 2>&1)
check "the quickstart runs from the installed copy" grep -q "^ease *NDCG@10" <<<"$out"
# without SHELF_LIB the installed copy finds no library next to it (unless one is installed)
out=$(cd "$dir" && env -u SHELF_LIB "$dir/venv/bin/python" -c 'import shelf' 2>&1)
check "without a library the error says what was tried" \
    bash -c '[ -z "$1" ] || grep -q "find_library(\"shelf\")" <<<"$1"' _ "$out"

echo "$pass passed, $fail failed"
test "$fail" -eq 0
