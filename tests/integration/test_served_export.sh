#!/usr/bin/env bash
# test_served_export.sh: `shelf served export` returns, for a generated shop
# served over HTTP, every slate served with its items, positions, sources,
# propensities and variant. Known shoppers (plain, explain=true, kind and
# category filters), unknown ids (the fallback: source "popular") and
# anonymous sessions (some of their items unknown) ask for slates; similar
# and popular lists and a refused request (400) ask for lists that are not
# slates. After a SIGTERM (the background writer commits what is queued) the
# export has one line per slate answered 200, each rec_id once, and each line
# says what the HTTP answer said: items in order, positions 0..n-1,
# propensity 1, per-item and slate sources, user, reasons, model; --since
# splits the log at a time between two phases of requests.
# Uses bash, curl, sqlite3 and python3 (JSON). Usage: test_served_export.sh SHELF_BINARY TMPDIR
set -uo pipefail
shelf=$1 dir=$2
. "$(cd "$(dirname "$0")" && pwd)/lib_serve.sh" || exit 1
need_tools curl sqlite3 python3
rm -rf "$dir" && mkdir -p "$dir/resp" && cd "$dir" || exit 1
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what" >&2; fi; }

spid="" port=""
cleanup() { [ -n "$spid" ] && kill -9 "$spid" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

shop_with_bundle "$shelf" 5
check "a shop and an itemknn bundle of it" test $? -eq 0
key=$("$shelf" keys create --store s.db --scope write 2>/dev/null)
check "a write key (reads slates, puts items)" test -n "$key"

serve_free_port "$shelf" out.txt err.txt --store s.db --bundle B --log-level warn
check "serve starts ($(tail -2 err.txt | tr '\n' ' '))" test -n "$port"
[ -n "$port" ] || { echo "$pass passed, $fail failed"; exit 1; }
t_start=$(date +%s)

# the requests of a phase are listed by ask, then made in order by drive.py
# on one keep-alive connection (one process, not one curl per request: fast
# on a busy machine); manifest.txt gets one line per request:
# number|what|phase|HTTP status|user asked|path, resp/NUMBER.json its body
# (what: known, explain, filter, unknown, anon, anon_explain: slates;
# similar, popular, bad: not slates)
cat > drive.py <<'EOF'
import http.client, sys

port, key, phase, reqs = sys.argv[1:5]
n = sum(1 for _ in open("manifest.txt"))
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
with open("manifest.txt", "a") as man:
    for line in open(reqs):
        what, user, path, body = line.rstrip("\n").split("|", 3)
        n += 1
        hdr = {"Authorization": "Bearer " + key}
        if body:
            hdr["Content-Type"] = "application/json"
        try:
            conn.request("POST" if body else "GET", path, body=body or None, headers=hdr)
            r = conn.getresponse()
            status, text = r.status, r.read()
        except (http.client.HTTPException, OSError) as e:
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
            status, text = "000", str(e).encode()
        open(f"resp/{n}.json", "wb").write(text)
        man.write(f"{n}|{what}|{phase}|{status}|{user}|{path}\n")
EOF
phase=1
ask() { echo "$1|$2|$3|${4:-}" >> "reqs.$phase"; } # WHAT USER PATH [BODY]
drive() { python3 drive.py "$port" "$key" "$phase" "reqs.$phase"; check "phase $phase: the requests made" test $? -eq 0; }
: > manifest.txt
mapfile -t users < <(sqlite3 s.db 'SELECT ext_id FROM users ORDER BY idx LIMIT 64')
mapfile -t items < <(sqlite3 s.db 'SELECT ext_id FROM items ORDER BY idx LIMIT 40')
mapfile -t cats < <(sqlite3 s.db "SELECT DISTINCT substr(category, 1, instr(category, '/') - 1) AS c FROM items
                                   WHERE c NOT GLOB '*[^A-Za-z]*' ORDER BY 1") # no URL escapes
check "users, items and categories to ask about (${#users[@]} ${#items[@]} ${#cats[@]})" \
    test "${#users[@]}" -eq 64 -a "${#items[@]}" -eq 40 -a "${#cats[@]}" -ge 3

# phase 1
for ((k = 0; k < 20; k++)); do ask known "${users[k]}" "/v1/users/${users[k]}/recommendations?n=$((3 + k % 6))"; done
for ((k = 20; k < 30; k++)); do ask explain "${users[k]}" "/v1/users/${users[k]}/recommendations?n=4&explain=true"; done
for ((k = 0; k < 8; k++)); do ask unknown "ghost-$k" "/v1/users/ghost-$k/recommendations?n=$((2 + k))"; done
for ((k = 0; k < 10; k++)); do ask similar - "/v1/items/${items[k]}/similar?n=5"; done
ask popular - "/v1/popular?n=7"
ask popular - "/v1/popular?n=3&kind=product"
ask bad "${users[0]}" "/v1/users/${users[0]}/recommendations?n=0"
ask bad - "/v1/recommendations" '{"items": "i1"}'
for ((k = 0; k < 6; k++)); do
    ask anon - /v1/recommendations "{\"items\": [\"${items[k]}\", \"${items[k + 10]}\", \"nope-$k\"], \"n\": $((4 + k))}"
done
drive
# --since T splits the log here: phase 1 was served before T, phase 2 at or after
cut=$(( $(date +%s) + 1 ))
while [ "$(date +%s)" -lt "$cut" ]; do sleep 0.05; done
phase=2
# two items put after training in a category of their own, with no content
# neighbours: the model cannot score them, the fallback tops their slates up
for k in 1 2; do
    code=$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $key" \
        --data-binary "{\"title\": \"qqq$k\", \"category\": \"Zzz/Yyy\"}" "http://127.0.0.1:$port/v1/items/late-$k")
    check "PUT a late item late-$k (got $code)" test "$code" = 200
done
# filters: a top-level category, a kind, a kind with fewer items than n, and
# Zzz, where the model scores nothing: the fallback tops those slates up
# (slate source "model", items "popular")
for ((k = 30; k < 40; k++)); do
    c=${cats[k % ${#cats[@]}]}
    ask filter "${users[k]}" "/v1/users/${users[k]}/recommendations?n=8&category=$c"
done
for ((k = 40; k < 45; k++)); do ask filter "${users[k]}" "/v1/users/${users[k]}/recommendations?n=4&kind=content"; done
for ((k = 45; k < 50; k++)); do ask filter "${users[k]}" "/v1/users/${users[k]}/recommendations?n=30&kind=campaign&explain=true"; done
for ((k = 60; k < 64; k++)); do ask filter "${users[k]}" "/v1/users/${users[k]}/recommendations?n=5&category=Zzz"; done
for ((k = 50; k < 60; k++)); do ask explain "${users[k]}" "/v1/users/${users[k]}/recommendations?n=6&explain=1&category=${cats[0]}"; done
for ((k = 8; k < 12; k++)); do ask unknown "ghost-$k" "/v1/users/ghost-$k/recommendations?n=5&explain=true"; done
for ((k = 0; k < 4; k++)); do
    ask anon_explain - /v1/recommendations "{\"items\": [\"${items[k + 20]}\"], \"n\": 5, \"explain\": true}"
done
ask anon - /v1/recommendations '{"items": ["nope-a", "nope-b"], "n": 5}'
ask anon - /v1/recommendations '{"n": 3}'
for ((k = 10; k < 20; k++)); do ask similar - "/v1/items/${items[k]}/similar?n=8"; done
ask popular - "/v1/popular?n=20"
drive
t_end=$(date +%s)
check "the server is up after the requests" kill -0 "$spid"

# a SIGTERM drains: queued slates are committed, exit 0
kill -TERM "$spid"; wait "$spid"; rc=$?; spid=""
check "serve exits 0 on SIGTERM (got $rc)" test "$rc" -eq 0

"$shelf" served export --store s.db --out all.jsonl 2> all.err
st=$? # a command substitution in the message would set $? again
check "served export exits 0 ($(cat all.err))" test "$st" -eq 0
"$shelf" served export --store s.db --since "$cut" > late.jsonl 2> late.err
st=$? # a command substitution in the message would set $? again
check "served export --since T exits 0 ($(cat late.err))" test "$st" -eq 0
after=$(date -u -d "@$((t_end + 2))" +%Y-%m-%dT%H:%M:%SZ)
"$shelf" served export --store s.db --since "$after" > none.jsonl 2> none.err
st=$? # a command substitution in the message would set $? again
check "served export --since after everything exits 0 ($(cat none.err))" test "$st" -eq 0
check "--since $after: no line" test "$(wc -l < none.jsonl)" -eq 0 -a ! -s none.jsonl
check "--since $after: 'exported 0 slates' ($(cat none.err))" grep -q 'exported 0 slates' none.err
slates=$(awk -F'|' '$2 !~ /^(similar|popular|bad)$/ && $4 == 200' manifest.txt | wc -l)
check "export: $slates newline-terminated lines (got $(wc -l < all.jsonl))" test "$(wc -l < all.jsonl)" -eq "$slates"
check "'exported $slates slates' on stderr ($(cat all.err))" grep -q "exported $slates slates" all.err
check "the served table has $slates rows" test "$(sqlite3 s.db 'SELECT count(*) FROM served')" = "$slates"

# the line by line comparison: python3 prints 1|what or 0|what per check
cat > compare.py <<'EOF'
import json, sys

manifest, export, late, t0, t1, cut = sys.argv[1:7]
t0, t1, cut = int(t0), int(t1), int(cut)
out = []
def check(what, ok):
    out.append(("1" if ok else "0") + "|" + what.replace("\n", " "))

reqs = []
for line in open(manifest):
    n, what, phase, code, user, path = line.rstrip("\n").split("|", 5)
    body = open(f"resp/{n}.json").read()
    explain = what == "anon_explain" or "explain=true" in path or "explain=1" in path
    reqs.append(dict(n=int(n), what=what, phase=int(phase), code=code, user=user, path=path, body=body,
                     explain=explain))
slate_kinds = {"known", "explain", "filter", "unknown", "anon", "anon_explain"}
slate_reqs = [r for r in reqs if r["what"] in slate_kinds]
bad = [f'{r["n"]}:{r["code"]}' for r in slate_reqs if r["code"] != "200"]
check(f"every slate request answered 200 (not: {bad[:5]})", not bad)
nonslate = [r for r in reqs if r["what"] in ("similar", "popular")]
bad = [f'{r["n"]}:{r["code"]}' for r in nonslate if r["code"] != "200"]
check(f"every similar and popular request answered 200 (not: {bad[:5]})", not bad)
bad = [f'{r["n"]}:{r["code"]}' for r in reqs if r["what"] == "bad" and r["code"] != "400"]
check(f"the bad requests answered 400 (not: {bad})", not bad)

http = {}
for r in slate_reqs:
    if r["code"] != "200":
        continue
    j = json.loads(r["body"])
    r["json"] = j
    check(f'request {r["n"]}: a 32-hex rec_id ({j.get("rec_id")!r})',
          isinstance(j.get("rec_id"), str) and len(j["rec_id"]) == 32)
    check(f'request {r["n"]}: rec_id not seen before over HTTP', j.get("rec_id") not in http)
    http[j.get("rec_id")] = r
for r in nonslate:
    if r["code"] == "200":
        check(f'request {r["n"]} ({r["what"]}): a list without rec_id', "rec_id" not in json.loads(r["body"]))

lines = [l for l in open(export).read().split("\n") if l.strip()]
rows = []
for k, l in enumerate(lines):
    try:
        rows.append(json.loads(l))
    except ValueError as e:
        check(f"export line {k + 1} is JSON ({e}): {l[:80]}", False)
check(f"export: {len(rows)} lines for {len(http)} slates answered 200", len(rows) == len(http))
ids = [x.get("rec_id") for x in rows]
dup = sorted({i for i in ids if ids.count(i) > 1})
check(f"export: each rec_id once (twice or more: {dup[:3]})", not dup)
missing = sorted(set(http) - set(ids))
check(f"export: every rec_id answered over HTTP is there (missing: {len(missing)}, {missing[:3]})", not missing)
extra = sorted(set(ids) - set(http))
check(f"export: no rec_id that HTTP did not answer (extra: {extra[:3]})", not extra)
order = [(x.get("ts"), x.get("rec_id")) for x in rows]
check("export: in (ts, rec_id) order", order == sorted(order, key=lambda p: (p[0] or 0, p[1] or "")))

counted = {w: 0 for w in slate_kinds}
mixed = 0
for x in rows:
    r = http.get(x.get("rec_id"))
    if r is None:
        continue
    j, rid, what = r["json"], x["rec_id"][:8], r["what"]
    counted[what] += 1
    tag = f'slate {rid} (request {r["n"]}, {what})'
    for f in ("rec_id", "ts", "time", "user", "scenario", "variant", "model", "model_version", "source",
              "skipped_items", "items"):
        check(f"{tag}: field {f} present", f in x)
    # the server sets no placement and no experiment arm: both are "" (null would do too)
    check(f'{tag}: scenario empty ({x.get("scenario")!r})', x.get("scenario") in ("", None))
    check(f'{tag}: variant empty ({x.get("variant")!r})', x.get("variant") in ("", None))
    check(f'{tag}: ts within the test ({x.get("ts")} in {t0}..{t1})', isinstance(x.get("ts"), int) and t0 <= x["ts"] <= t1)
    check(f'{tag}: served in its phase (ts {x.get("ts")}, T {cut}, phase {r["phase"]})',
          isinstance(x.get("ts"), int) and (x["ts"] < cut) == (r["phase"] == 1))
    # user: the shop's id for a known shopper; null for an anonymous session and for an id the
    # store does not know (the log keeps users by their index, an unknown id has none)
    want_user = r["user"] if what in ("known", "explain", "filter") else None
    check(f'{tag}: user {x.get("user")!r}, want {want_user!r}', x.get("user") == want_user)
    if what in ("known", "explain", "filter"):
        check(f"{tag}: HTTP said known_user", j.get("known_user") is True)
    if what == "unknown":
        check(f'{tag}: an unknown id gets the fallback (HTTP source {j.get("source")!r})', j.get("source") == "popular")
        check(f"{tag}: HTTP said the unknown id is not known", j.get("known_user") is False)
    for f in ("model", "model_version", "source"):
        check(f"{tag}: {f} {x.get(f)!r} as HTTP said {j.get(f)!r}", x.get(f) == j.get(f))
    check(f'{tag}: model itemknn ({x.get("model")!r})', x.get("model") == "itemknn")
    check(f'{tag}: skipped_items {x.get("skipped_items")!r} as HTTP said {j.get("skipped_items", 0)!r}',
          x.get("skipped_items") == j.get("skipped_items", 0))
    hi, xi = j.get("items", []), x.get("items", [])
    check(f"{tag}: a non-empty slate", len(hi) > 0)
    check(f"{tag}: items {[i.get('id') for i in xi]} as HTTP said {[i.get('id') for i in hi]}",
          [i.get("id") for i in xi] == [i.get("id") for i in hi])
    check(f"{tag}: positions 0..n-1 ({[i.get('position') for i in xi]})",
          [i.get("position") for i in xi] == list(range(len(xi))))
    check(f"{tag}: propensity 1 ({[i.get('propensity') for i in xi]})", all(i.get("propensity") == 1 for i in xi))
    # HTTP names an item's source only where it differs from the slate's
    want_src = [h.get("source", j.get("source")) for h in hi]
    got_src = [i.get("source") for i in xi]
    check(f"{tag}: per-item sources {got_src} as HTTP said {want_src}", got_src == want_src)
    if any(s != j.get("source") for s in want_src):
        mixed += 1
    for h, i in zip(hi, xi):
        a, b = h.get("score"), i.get("score")
        check(f'{tag} item {h.get("id")}: score {b} as HTTP said {a}',
              isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-5 * max(1.0, abs(a)))
        if "reasons" in h:
            hr = h["reasons"][0] if h["reasons"] else {}
            xr = i.get("reason")
            check(f'{tag} item {h.get("id")}: a reason with text {hr.get("text")!r} (got {xr!r})',
                  isinstance(xr, dict) and isinstance(xr.get("text"), str) and xr.get("text") == hr.get("text")
                  and xr.get("item") == hr.get("item"))
        else:
            check(f'{tag} item {h.get("id")}: no reason without explain (got {i.get("reason")!r})', i.get("reason") is None)
    if r["explain"]:
        check(f"{tag}: explain asked, HTTP gave reasons", all("reasons" in h for h in hi))
        check(f"{tag}: explain asked, every item has a reason with text ({[i.get('reason') for i in xi][:2]})",
              all(isinstance(i.get("reason"), dict) and i["reason"].get("text") for i in xi))

want = {w: sum(1 for r in slate_reqs if r["what"] == w and r["code"] == "200") for w in slate_kinds}
check(f"export: slates of each kind as asked (got {counted}, asked {want})", counted == want)
check(f"some slate was topped up from the fallback (per-item source popular), {mixed} were", mixed > 0)

late_rows = [json.loads(l) for l in open(late).read().split("\n") if l.strip()]
want_late = sorted(k for k, r in http.items() if r["phase"] == 2)
got_late = sorted(x.get("rec_id") for x in late_rows)
check(f"--since T: the {len(want_late)} slates of phase 2 only (got {len(got_late)})", got_late == want_late)
check("--since T: lines as the full export's", all(x in rows for x in late_rows))
print("\n".join(out))
EOF
while IFS='|' read -r okv what; do
    check "$what" test "$okv" = 1
done < <(python3 compare.py manifest.txt all.jsonl late.jsonl "$t_start" "$t_end" "$cut" 2>&1 || echo "0|compare.py failed")
echo "$pass passed, $fail failed"
test "$fail" -eq 0
