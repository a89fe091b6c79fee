#!/usr/bin/env bash
# test_install.sh: installs the build into a scratch prefix and compiles a
# program against it with pkg-config, linked both to the shared and to the
# static library. Usage: test_install.sh SHELF_BINARY TMPDIR
set -uo pipefail
build=$(dirname "$1")
dir=$2
rm -rf "$dir" && mkdir -p "$dir" || exit 1
prefix="$dir/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null || { echo "FAIL: cmake --install"; exit 1; }
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -1)
export PKG_CONFIG_PATH="$libdir"
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi; }

check "pkg-config knows shelf" pkg-config --exists shelf
check "version" test "$(pkg-config --modversion shelf)" = "$("$1" --version | cut -d' ' -f2)"
check "headers installed" test -f "$prefix/include/shelf/shelf.h"
cat > "$dir/use.c" <<'C'
#include <shelf/shelf.h>
#include <stdio.h>
int main(void)
{
    shelf_store *st;
    shelf_err err = {0};
    if (shelf_store_open(":memory:", SHELF_STORE_CREATE, &st, &err)) { puts(err.msg); return 1; }
    uint32_t u;
    if (shelf_store_user_idx(st, "alice", 5, 1, &u, NULL)) return 1;
    printf("%s %u %d\n", shelf_strerror(SHELF_ENOTFOUND), shelf_store_n_users(st),
           shelf_store_schema_version(st) == shelf_store_schema_latest());
    shelf_store_close(st);
    return 0;
}
C
check "compile against the shared library" cc -std=c11 ${SHELF_TEST_CFLAGS:-} "$dir/use.c" -o "$dir/use_shared" $(pkg-config --cflags --libs shelf)
check "run with the shared library" test "$(LD_LIBRARY_PATH="$(dirname "$libdir")" "$dir/use_shared")" = "not found 1 1"
check "compile against the static library" cc -std=c11 ${SHELF_TEST_CFLAGS:-} "$dir/use.c" -o "$dir/use_static" $(pkg-config --cflags shelf) \
    "$(dirname "$libdir")/libshelf.a" $(pkg-config --libs --static shelf | sed 's/-lshelf//')
check "run with the static library" test "$("$dir/use_static")" = "not found 1 1"
echo "$pass passed, $fail failed"
test "$fail" -eq 0
