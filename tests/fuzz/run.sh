#!/usr/bin/env bash
# Runs the libFuzzer targets of a SHELF_FUZZ build (make fuzz, .ci/run), each
# for SECONDS, one after the other, from its committed corpus
# (tests/fuzz/corpus/NAME, read only: what it finds goes to
# BUILD/fuzz-work/NAME) with its dictionary (tests/fuzz/NAME.dict) if any.
# A crash, sanitizer report, leak, timeout (a single input over 30 s) or
# out-of-memory fails the run; its input is left as
# BUILD/fuzz-artifacts/NAME-crash-* (or leak-, timeout-, oom-) and its log
# is printed. To keep a crash as a regression input, copy that file into
# tests/fuzz/corpus/NAME/ once the bug is fixed.
# Usage: tests/fuzz/run.sh BUILD SECONDS [NAME...]   (names: import, http, ...;
#        none: every fuzz_* target of BUILD)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 2 ] || { echo "usage: tests/fuzz/run.sh BUILD SECONDS [NAME...]" >&2; exit 2; }
build="$(cd "$1" && pwd)" secs="$2"
shift 2
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$build"/fuzz_*; do [ -x "$f" ] && [ -f "$f" ] && names+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi
[ ${#names[@]} -gt 0 ] || { echo "fuzz: no fuzz_* targets in $build (configure with -DSHELF_FUZZ=ON)" >&2; exit 2; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:quarantine_size_mb=64}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
failed=()
for n in "${names[@]}"; do
  bin="$build/fuzz_$n"
  [ -x "$bin" ] || { echo "fuzz: $bin missing" >&2; failed+=("$n"); continue; }
  mkdir -p "$build/fuzz-work/$n"
  dict=()
  [ -f "$here/$n.dict" ] && dict=(-dict="$here/$n.dict")
  log="$build/fuzz-logs/$n.log"
  start=$(date +%s)
  "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/$n-" "${dict[@]}" \
    "$build/fuzz-work/$n" "$here/corpus/$n" > "$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    failed+=("$n")
    echo "fuzz: $n FAILED (exit $rc) after $(( $(date +%s) - start )) s; log $log:" >&2
    tail -60 "$log" >&2
  else
    echo "fuzz: $n ok: ${runs:-?} inputs in $(( $(date +%s) - start )) s, $cov, corpus $(ls "$build/fuzz-work/$n" | wc -l) new"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (inputs in $build/fuzz-artifacts/)" >&2
  exit 1
fi
