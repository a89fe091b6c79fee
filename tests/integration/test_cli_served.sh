#!/usr/bin/env bash
# test_cli_served.sh: drives `shelf served export` end to end: slates logged
# through the library (a small C program built against the build's
# libshelf.so) come out as JSON Lines with external ids, in time order, from
# --since on; bad --since, --format and actions are usage errors.
# Usage: test_cli_served.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1
dir=$2
build=$(cd "$(dirname "$shelf")" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
pass=0 fail=0
ok()   { pass=$((pass + 1)); }
bad()  { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

# ---- three slates and a retired item, written through the library
cat > logslates.c <<'EOF'
#include <shelf/shelf.h>
#include <stdio.h>
#include <string.h>

static shelf_store *st;

static uint32_t item(const char *id)
{
    uint32_t i;
    return shelf_store_item_idx(st, id, strlen(id), 1, &i, NULL) ? SHELF_NONE : i;
}

/* slot k of s: item id at position k */
static void put(shelf_slate *s, uint32_t k, const char *id, float score, const char *why, float weight)
{
    shelf_slate_item *it = &s->items[k];
    *it = (shelf_slate_item){.item = item(id), .position = k, .score = score, .propensity = 1,
                             .reason_item = why ? item(why) : SHELF_NONE, .reason_weight = weight};
    snprintf(it->source, sizeof it->source, "%s", s->source);
    if (why) snprintf(it->reason, sizeof it->reason, "because you bought %s", why);
    if (k + 1 > s->n) s->n = k + 1;
}

int main(int argc, char **argv)
{
    shelf_err e = {0};
    if (argc != 2 || shelf_store_open(argv[1], SHELF_STORE_CREATE, &st, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    uint32_t alice, bob;
    shelf_slate s = {0};
    int rc = shelf_store_begin(st);
    rc = rc ? rc : shelf_store_user_idx(st, "alice", 5, 1, &alice, NULL);
    rc = rc ? rc : shelf_store_user_idx(st, "bob", 3, 1, &bob, NULL);
    for (int k = 1; !rc && k <= 5; k++) {
        char id[16];
        snprintf(id, sizeof id, "sku-%d", k);
        rc = item(id) == SHELF_NONE;
    }
    rc = rc ? rc : shelf_slate_reserve(&s, 3); /* alice, 2026-12-04T07:00:00Z */
    snprintf(s.rec_id, sizeof s.rec_id, "r1");
    s.ts = 1796367600;
    s.user = alice;
    snprintf(s.scenario, sizeof s.scenario, "home");
    snprintf(s.variant, sizeof s.variant, "B");
    snprintf(s.model, sizeof s.model, "als");
    snprintf(s.model_version, sizeof s.model_version, "als-1");
    snprintf(s.source, sizeof s.source, "model");
    s.n_skipped = 1;
    put(&s, 0, "sku-3", 0.75f, "sku-1", 0.5f);
    put(&s, 1, "sku-4", 0.3f, NULL, 0);
    rc = rc ? rc : shelf_store_log_slate(st, &s);
    rc = rc ? rc : shelf_slate_reserve(&s, 3); /* anonymous, an hour before */
    snprintf(s.rec_id, sizeof s.rec_id, "r0");
    s.ts = 1796364000;
    snprintf(s.source, sizeof s.source, "popular");
    put(&s, 0, "sku-2", 2.5f, NULL, 0);
    rc = rc ? rc : shelf_store_log_slate(st, &s);
    rc = rc ? rc : shelf_slate_reserve(&s, 3); /* bob, the next day */
    snprintf(s.rec_id, sizeof s.rec_id, "r2");
    s.ts = 1796428800;
    s.user = bob;
    snprintf(s.source, sizeof s.source, "context");
    for (uint32_t k = 0; k < 3; k++) put(&s, k, k == 0 ? "sku-5" : k == 1 ? "sku-1" : "sku-2", 1.0f - 0.25f * k, NULL, 0);
    rc = rc ? rc : shelf_store_log_slate(st, &s);
    rc = rc ? rc : shelf_store_commit(st);
    rc = rc ? rc : shelf_store_delete_item(st, "sku-4", 5, NULL); /* retired: its id exports as null */
    if (rc) fprintf(stderr, "logslates: %s\n", shelf_store_errmsg(st));
    shelf_slate_free(&s);
    shelf_store_close(st);
    return rc ? 1 : 0;
}
EOF
# shellcheck disable=SC2086 # SHELF_TEST_CFLAGS holds several flags
cc -std=c11 -Wall -Wextra ${SHELF_TEST_CFLAGS:-} -I"$root/include" logslates.c -L"$build" -lshelf \
    -Wl,-rpath,"$build" -o logslates
check "the helper builds against libshelf.so" test -x logslates
check "slates logged through the library" ./logslates s.db

# ---- help and usage errors
out=$("$shelf" served --help); check "served --help exits 0" test $? -eq 0
check "served --help shows usage" grep -q "usage: shelf served export" <<<"$out"
check "served --help says T may be ISO-8601" grep -q "ISO-8601 UTC (2026-12-04T07:00:00Z)" <<<"$out"
check "served --help lists the one format" grep -q -- "--format jsonl " <<<"$out"
check "shelf --help lists served" grep -q "served" <<<"$("$shelf" --help)"
"$shelf" served --store s.db >/dev/null 2>err.txt; check "no action exits 2" test $? -eq 2
"$shelf" served list --store s.db >/dev/null 2>err.txt; check "unknown action exits 2" test $? -eq 2
check "unknown action names the valid one" grep -q "export" err.txt
"$shelf" served export --store s.db --format csv >/dev/null 2>err.txt; check "--format csv exits 2" test $? -eq 2
check "--format names its choice" grep -q "jsonl" err.txt
for t in 2026-13-01 2026-02-30 yesterday 12x 2026-12-04T07:00:00 2026-12-04T7:00Z ""; do
    "$shelf" served export --store s.db --since "$t" >out.txt 2>err.txt
    check "--since '$t' exits 2" test $? -eq 2
    check "--since '$t': the error names the flag and the value" grep -q -- "--since '$t'" err.txt
    check "--since '$t': nothing on stdout" test ! -s out.txt
done
"$shelf" served export --store missing.db >/dev/null 2>&1; check "missing store exits 1" test $? -eq 1

# ---- export: everything, in time order
"$shelf" served export --store s.db > all.jsonl 2>err.txt; check "export exits 0" test $? -eq 0
check "three lines" test "$(wc -l < all.jsonl)" -eq 3
check "the count on stderr" grep -qx "shelf served: exported 3 slates" err.txt
cat > check.py <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
want = sys.argv[2].split(",")
assert [r["rec_id"] for r in rows] == want, [r["rec_id"] for r in rows]
keys = {"rec_id", "ts", "time", "user", "scenario", "variant", "model", "model_version", "source",
        "skipped_items", "items"}
for r in rows:
    assert set(r) == keys, sorted(r)
    for it in r["items"]:
        assert set(it) == {"id", "position", "score", "propensity", "source", "reason"}, sorted(it)
by = {r["rec_id"]: r for r in rows}
if "r0" in by:
    r = by["r0"]
    assert r["user"] is None and r["ts"] == 1796364000 and r["time"] == "2026-12-04T06:00:00Z", r
    assert r["source"] == "popular" and r["scenario"] == "" and r["skipped_items"] == 0, r
    assert r["items"] == [{"id": "sku-2", "position": 0, "score": 2.5, "propensity": 1, "source": "popular",
                           "reason": None}], r["items"]
if "r1" in by:
    r = by["r1"]
    assert r["user"] == "alice" and r["ts"] == 1796367600 and r["time"] == "2026-12-04T07:00:00Z", r
    assert (r["scenario"], r["variant"], r["model"], r["model_version"], r["source"], r["skipped_items"]) == \
        ("home", "B", "als", "als-1", "model", 1), r
    a, b = r["items"]
    assert a == {"id": "sku-3", "position": 0, "score": 0.75, "propensity": 1, "source": "model",
                 "reason": {"item": "sku-1", "weight": 0.5, "text": "because you bought sku-1"}}, a
    assert b["id"] is None and b["position"] == 1 and b["score"] == 0.3 and b["reason"] is None, b  # retired
if "r2" in by:
    r = by["r2"]
    assert r["user"] == "bob" and r["time"] == "2026-12-05T00:00:00Z" and r["source"] == "context", r
    assert [it["id"] for it in r["items"]] == ["sku-5", "sku-1", "sku-2"], r["items"]
    assert [it["position"] for it in r["items"]] == [0, 1, 2] and r["items"][2]["score"] == 0.5, r["items"]
EOF
check "all: fields of every slate" python3 check.py all.jsonl r0,r1,r2

# ---- --since: ISO-8601 or unix seconds, inclusive
"$shelf" served export --store s.db --since 2026-12-04T07:00:00Z > since.jsonl 2>err.txt
check "--since ISO exits 0" test $? -eq 0
check "--since ISO: from r1 on" python3 check.py since.jsonl r1,r2
check "--since ISO: the count" grep -qx "shelf served: exported 2 slates" err.txt
"$shelf" served export --store s.db --since 1796367601 > since2.jsonl 2>/dev/null
check "--since unix: after r1" python3 check.py since2.jsonl r2
"$shelf" served export --store s.db --since 2026-12-04 > since3.jsonl 2>/dev/null
check "--since a date: midnight UTC" python3 check.py since3.jsonl r0,r1,r2
"$shelf" served export --store s.db --since 2026-12-04T06:00Z > since4.jsonl 2>/dev/null
check "--since without seconds" python3 check.py since4.jsonl r0,r1,r2
"$shelf" served export --store s.db --since 2027-01-01T00:00:00Z > none.jsonl 2>err.txt
check "--since after the last: no lines" test ! -s none.jsonl
check "--since after the last: counted 0" grep -qx "shelf served: exported 0 slates" err.txt

# ---- --out
"$shelf" served export --store s.db --format jsonl --out out.jsonl 2>/dev/null; check "--out exits 0" test $? -eq 0
check "--out: the same lines" cmp -s out.jsonl all.jsonl

echo "$pass passed, $fail failed"
test "$fail" -eq 0
