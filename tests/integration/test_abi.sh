#!/usr/bin/env bash
# test_abi.sh: the public ABI. libshelf.so exports only shelf_* functions
# (no shelf__ internals, no other global), at most 200, exactly the ones the
# installed headers declare SHELF_API; every public header compiles on its
# own; and examples/ builds against the installed library through
# pkg-config alone and runs. Usage: test_abi.sh SHELF_BINARY TMPDIR
set -uo pipefail
build=$(dirname "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$2
rm -rf "$dir" && mkdir -p "$dir" || exit 1
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi; }

prefix="$dir/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null || { echo "FAIL: cmake --install"; exit 1; }
libdir=$(dirname "$(ls -d "$prefix"/lib*/pkgconfig | head -1)")
so="$libdir/libshelf.so"

# ---- exported symbols
nm -D --defined-only "$so" | awk '{print $3}' | sort > "$dir/exported.txt"
n=$(wc -l < "$dir/exported.txt")
echo "libshelf.so exports $n symbols"
check "exports something" test "$n" -gt 100
check "at most 200 exported" test "$n" -le 200
check "only shelf_ names" eval '! grep -qv "^shelf_" "$dir/exported.txt"'
check "no shelf__ internals" eval '! grep -q "^shelf__" "$dir/exported.txt"'
grep -ho 'SHELF_API [^(]*(' "$prefix"/include/shelf/*.h | grep -o 'shelf_[a-z0-9_]*($' | tr -d '(' | sort -u \
    > "$dir/declared.txt"
comm -3 "$dir/declared.txt" "$dir/exported.txt" > "$dir/diff.txt"
check "exported = declared SHELF_API in the installed headers" test ! -s "$dir/diff.txt"
[ -s "$dir/diff.txt" ] && sed 's/^/  declared or exported only: /' "$dir/diff.txt" | head -20 >&2

# ---- each public header on its own
for h in "$prefix"/include/shelf/*.h; do
    name=$(basename "$h")
    printf '#include <shelf/%s>\nint shelf_abi_test_unit;\n' "$name" > "$dir/h_$name.c"
    check "shelf/$name compiles alone" cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
        -I"$prefix/include" "$dir/h_$name.c"
done

# ---- examples/, built with pkg-config only, against the shared library
cp -r "$root/examples" "$dir/examples"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
check "examples build through pkg-config" make -s -C "$dir/examples" \
    CFLAGS="-O1 -Wall -Wextra -Wpedantic -Werror ${SHELF_TEST_CFLAGS:-}" LDFLAGS="${SHELF_TEST_CFLAGS:-}"
LD_LIBRARY_PATH="$libdir" "$dir/examples/recommend" > "$dir/recommend.out" 2>&1
check "recommend runs" test $? -eq 0
check "recommend prints three shoppers' slates" test "$(grep -c '^shopper u[0-9]* ([0-9]* events): i[0-9]* i[0-9]*' "$dir/recommend.out")" -eq 3
LD_LIBRARY_PATH="$libdir" ldd "$dir/examples/recommend" > "$dir/ldd.txt" 2>&1 # not piped into grep -q: pipefail
check "recommend is linked to the installed libshelf.so" grep -q "$libdir/libshelf.so" "$dir/ldd.txt"
echo "$pass passed, $fail failed"
test "$fail" -eq 0
