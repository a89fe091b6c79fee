# lib_check.sh: the tally every integration script keeps (sourced, not run):
# ok and bad count, check runs a command and counts its outcome.
pass=0 fail=0
ok()   { pass=$((pass + 1)); }
bad()  { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
