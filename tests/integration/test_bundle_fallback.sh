#!/usr/bin/env bash
# test_bundle_fallback.sh: `shelf serve --bundle DIR` serves the newest bundle
# of DIR that loads: a damaged newer one is skipped (a warning naming it and
# why, and /v1/health lists it), a reload that finds a new damaged one keeps
# the one in service, a directory where none loads refuses to start with the
# reasons, and a failed reload of a single bundle shows in /v1/health.
# Uses bash and curl. Usage: test_bundle_fallback.sh SHELF_BINARY TMPDIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_check.sh" && . "$here/lib_serve.sh" || exit 1
shelf=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
need_tools curl od dd

spid="" port=""
cleanup() { [ -n "$spid" ] && { kill -9 "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }; }
trap cleanup EXIT

# flip_byte FILE FROM_END: inverts the byte FROM_END bytes before the end of FILE
flip_byte() {
  local f=$1 off b
  off=$(($(stat -c %s "$f") - $2))
  b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
  printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}
health() { curl -sS --max-time 10 "http://127.0.0.1:$port/v1/health" 2>/dev/null; }
# stop: SIGTERM and wait for the exit
stop() { kill -TERM "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; spid=""; }

# --- set-up: a shop, two itemknn bundles in B, the newer one damaged
check "a shop and a bundle B/v1" shop_with_bundle "$shelf" 11
mkdir -p B && mv B/manifest.json B/tensors.safetensors . && mkdir B/v1 && mv manifest.json tensors.safetensors B/v1/
check "train B/v2" "$shelf" train --model itemknn --bundle B/v2 --store s.db --quiet >/dev/null
flip_byte B/v2/tensors.safetensors 3

# --- start: the damaged newest is skipped, v1 serves, health says so
check "serve starts on B with v2 damaged ($(tail -3 err.a 2>/dev/null | tr '\n' '|'))" \
  serve_free_port "$shelf" out.a err.a --store s.db --bundle B --log-level warn --no-auth
check "the ready line names v1 ($(cat out.a))" grep -q "(model itemknn v1@" out.a
check "a warning names B/v2 and why" grep -q "bundle B/v2 skipped: .*checksum mismatch" err.a
check "a warning names the bundle served" grep -q "serving bundle B/v1 (model itemknn)" err.a
h=$(health)
check "health: the bundle in service is v1 ($h)" grep -Eq '"bundle" *: *"v1"' <<<"$h"
check "health: version v1" grep -Eq '"version" *: *"v1@' <<<"$h"
check "health: verified" grep -Eq '"verified" *: *true' <<<"$h"
check "health: v2 skipped for its checksum" \
  grep -Eq '"skipped" *: *\[ *\{ *"bundle" *: *"v2" *, *"reason" *: *"[^"]*checksum mismatch' <<<"$h"

# --- a damaged v3 appears (truncated): the reload keeps v1, health lists v3
check "train B/v3" "$shelf" train --model itemknn --bundle B/v3 --store s.db --quiet >/dev/null
truncate -s -16 B/v3/tensors.safetensors
kill -HUP "$spid"
for ((i = 0; i < 200; i++)); do
  h=$(health)
  grep -q '"v3"' <<<"$h" && break
  sleep 0.1
done
check "reload: health lists v3 as skipped within 20 s ($h)" grep -Eq '"skipped" *: *\[ *\{ *"bundle" *: *"v3"' <<<"$h"
check "reload: v1 still serves" grep -Eq '"bundle" *: *"v1"' <<<"$h"
check "reload: a warning names B/v3" grep -q "bundle B/v3 skipped: " err.a
check "reload: still up" kill -0 "$spid"
stop

# --- a directory where no bundle loads: no start, the reasons said
mkdir -p C && cp -r B/v2 C/only
serve_free_port "$shelf" out.c err.c --store s.db --bundle C --log-level warn --no-auth
check "no valid bundle: the server does not start" test -z "$port"
[ -n "$port" ] && kill -9 "$spid" 2>/dev/null
wait "$spid" 2>/dev/null; rc=$?; spid=""
check "no valid bundle: exit status 1 (got $rc)" test "$rc" -eq 1
check "no valid bundle: the reason names C/only ($(cat err.c))" grep -q "C: no bundle loads (1 tried): only: .*checksum mismatch" err.c

# --- one bundle (not a directory) damaged after the start: the reload fails,
# the model in service stays, health shows why
cp -r B/v1 D
check "serve starts on the single bundle D" \
  serve_free_port "$shelf" out.d err.d --store s.db --bundle D --log-level warn --no-auth
flip_byte D/tensors.safetensors 1
kill -HUP "$spid"
for ((i = 0; i < 200; i++)); do
  h=$(health)
  grep -q reload_error <<<"$h" && break
  sleep 0.1
done
check "single bundle: health shows the reload error ($h)" grep -Eq '"reload_error" *: *"[^"]*checksum mismatch' <<<"$h"
check "single bundle: D still serves" grep -Eq '"bundle" *: *"D"' <<<"$h"
check "single bundle: the error is logged" grep -q "reload failed, the current model (D@[0-9]*) stays" err.d
stop

echo "test_bundle_fallback: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
