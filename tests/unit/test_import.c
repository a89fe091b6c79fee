/* test_import.c: the importers (s3rec + attributes, pairs, csv, jsonl,
 * ml100k, taobao): happy paths on small real-like samples written here,
 * every kind of bad record (error code, file:line and field in the message,
 * store unchanged), a 10 MB line, and a failed import leaving an on-disk
 * store byte-for-byte identical. Never reads ../shared/data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/import_int.h"
#include "shelf/import.h"

/* ---- helpers ------------------------------------------------------------------ */

#include "test_util.h"

static const char *write_bytes(const char *name, const char *data, size_t len)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *write_file(const char *name, const char *text)
{
    return write_bytes(name, text, strlen(text));
}

static int import_as(shelf_store *st, const char *path, shelf_import_format f, shelf_import_what what,
                     const char *mapping, shelf_import_result *res)
{
    shelf_import_opts o;
    shelf_import_opts_init(&o, f);
    o.what = what;
    o.mapping = mapping;
    return shelf_import_file(st, path, &o, res);
}

static int import(shelf_store *st, const char *path, shelf_import_format f)
{
    return import_as(st, path, f, SHELF_IMPORT_EVENTS, NULL, NULL);
}

static void import_ok(shelf_store *st, const char *path, shelf_import_format f)
{
    int rc = import(st, path, f);
    if (rc) fprintf(stderr, "import %s: %s\n", path, shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
}

/* A growing text of the whole store: events (ext ids, type name, value, ts,
 * rec_id, context), items, users and attribute links, for "unchanged"
 * comparisons and content checks. */
typedef struct dump {
    char *p;
    size_t len, cap;
    shelf_store *st;
    uint64_t n;
} dump;

static void dput(dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dput(dump *d, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int w = vsnprintf(d->p ? d->p + d->len : NULL, d->p ? d->cap - d->len : 0, fmt, ap);
        va_end(ap);
        assert_true(w >= 0);
        if (d->p && (size_t)w < d->cap - d->len) {
            d->len += (size_t)w;
            return;
        }
        d->cap = (d->cap + (size_t)w + 1) * 2;
        d->p = realloc(d->p, d->cap);
        assert_non_null(d->p);
    }
}

static int dump_event(void *ctx, uint64_t id, const shelf_event *e)
{
    dump *d = ctx;
    char u[256], i[256];
    assert_int_equal(shelf_store_user_ext(d->st, e->user, u, sizeof u), 0);
    assert_int_equal(shelf_store_item_ext(d->st, e->item, i, sizeof i), 0);
    dput(d, "E %s %s %s %g %lld %s %s\n", u, i, shelf_store_event_type_name(d->st, e->type), (double)e->value,
         (long long)e->ts, e->rec_id ? e->rec_id : "-", e->context ? e->context : "-");
    d->n++;
    (void)id;
    return 0;
}

static int dump_item(void *ctx, uint32_t idx, const shelf_item *it)
{
    dump *d = ctx;
    dput(d, "I %u %s kind=%s title=%s cat=%s brand=%s price=%s%g avail=%d created=%lld attrs=%s\n", idx, it->id,
         it->kind ? it->kind : "-", it->title ? it->title : "-", it->category ? it->category : "-",
         it->brand ? it->brand : "-", it->has_price ? "" : "none:", it->price, it->available,
         (long long)it->created, it->attributes ? it->attributes : "-");
    return 0;
}

static int dump_user(void *ctx, uint32_t idx, const shelf_user *u)
{
    dump *d = ctx;
    dput(d, "U %u %s created=%lld attrs=%s\n", idx, u->id, (long long)u->created, u->attributes ? u->attributes : "-");
    return 0;
}

static int dump_attr(void *ctx, uint32_t item, uint32_t attr)
{
    dump *d = ctx;
    char i[256], a[256];
    assert_int_equal(shelf_store_item_ext(d->st, item, i, sizeof i), 0);
    assert_int_equal(shelf_store_attr_name(d->st, attr, a, sizeof a), 0);
    dput(d, "A %s %s\n", i, a);
    return 0;
}

/* malloc'ed dump of st; *n_events (may be NULL) gets the event count. */
static char *store_dump(shelf_store *st, uint64_t *n_events)
{
    dump d = {.st = st};
    dput(&d, "users=%u items=%u\n", shelf_store_n_users(st), shelf_store_n_items(st));
    assert_int_equal(shelf_store_foreach_event(st, 0, dump_event, &d), 0);
    assert_int_equal(shelf_store_foreach_item(st, dump_item, &d), 0);
    assert_int_equal(shelf_store_foreach_user(st, dump_user, &d), 0);
    assert_int_equal(shelf_store_foreach_item_attr(st, dump_attr, &d, NULL), 0);
    if (n_events) *n_events = d.n;
    return d.p;
}

static uint64_t n_events(shelf_store *st)
{
    uint64_t n;
    free(store_dump(st, &n));
    return n;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        fprintf(stderr, "expected to find\n  [%s]\nin\n  [%s]\n", needle, hay);
        fail();
    }
}

/* Imports path and expects it to fail with code, a message holding every
 * one of the NULL-terminated pieces, and the store exactly as before. */
static void expect_fail_as(shelf_store *st, const char *path, shelf_import_format f, shelf_import_what what,
                           const char *mapping, int code, ...)
{
    char *before = store_dump(st, NULL);
    shelf_import_result res = {.n_events = 12345};
    int rc = import_as(st, path, f, what, mapping, &res);
    if (rc != code) fprintf(stderr, "import %s: rc %d (%s)\n", path, rc, shelf_store_errmsg(st));
    assert_int_equal(rc, code);
    assert_int_equal(shelf_store_err(st)->code, code);
    assert_int_equal(res.n_events, 12345); /* not written on failure */
    const char *msg = shelf_store_errmsg(st);
    va_list ap;
    va_start(ap, code);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) assert_contains(msg, s);
    va_end(ap);
    char *after = store_dump(st, NULL);
    if (strcmp(before, after) != 0) fprintf(stderr, "store changed:\n%s\n---\n%s\n", before, after);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

#define expect_fail(st, path, f, code, ...) \
    expect_fail_as(st, path, f, SHELF_IMPORT_EVENTS, NULL, code, __VA_ARGS__, (const char *)NULL)

/* A store holding a small s3rec import, the "previous data" that failed
 * imports must leave intact. */
static shelf_store *store_with_data(void)
{
    shelf_store *st = store_new();
    import_ok(st, write_file("prev.txt", "1 1 2 3\n2 2 3 4\n"), SHELF_FMT_S3REC);
    assert_int_equal(n_events(st), 6);
    return st;
}

/* ---- parsers ---------------------------------------------------------------------- */

static void test_parsers(void **state)
{
    (void)state;
    int64_t t;
    double v;
    assert_int_equal(shelf__parse_ts("1511513157", 10, &t), 0);
    assert_int_equal(t, 1511513157);
    assert_int_equal(shelf__parse_ts("-5", 2, &t), 0);
    assert_int_equal(t, -5);
    assert_int_equal(shelf__parse_ts("1511513157.25", 13, &t), 0);
    assert_int_equal(t, 1511513157);
    const char *iso[] = {"2017-11-24T08:45:57Z", "2017-11-24 08:45:57", "2017-11-24T08:45:57",
                         "2017-11-24T09:45:57+01:00", "2017-11-24T07:45:57-0100", "2017-11-24T08:45:57.123Z",
                         "2017-11-24 08:45:57 UTC", "2017-11-24T08:45:57UTC"};
    for (size_t i = 0; i < sizeof iso / sizeof *iso; i++) {
        assert_int_equal(shelf__parse_ts(iso[i], strlen(iso[i]), &t), 0);
        assert_int_equal(t, 1511513157);
    }
    assert_int_equal(shelf__parse_ts("1970-01-01", 10, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(shelf__parse_ts("2000-02-29 00:00:00", 19, &t), 0);
    assert_int_equal(t, 951782400);
    assert_int_equal(shelf__parse_ts("1969-12-31T23:59:59Z", 20, &t), 0);
    assert_int_equal(t, -1);
    /* strptime/timegm underneath: an hour-only offset, a leap second, a date with Z */
    assert_int_equal(shelf__parse_ts("2017-11-24T09:45:57+01", 22, &t), 0);
    assert_int_equal(t, 1511513157);
    assert_int_equal(shelf__parse_ts("2016-12-31T23:59:60Z", 20, &t), 0);
    assert_int_equal(t, 1483228800);
    assert_int_equal(shelf__parse_ts("2017-11-24Z", 11, &t), 0);
    assert_int_equal(t, 1511481600);
    const char *bad_ts[] = {"", "abc", "12a", "2017-13-01", "2017-02-30", "2019-02-29", "2017-11-24T25:00:00",
                            "2017-11-24T08:45:57Zx", "2017-11-24X08:45:57", "1.", "99999999999999999999",
                            "2017-11-24 UTC", "2017-11-24 08:45:57  UTC",
                            /* what strptime alone would take */
                            "2017-1-24", "2017-11- 4", "2017-11-24T8:45:57", "2017-11-24T08:45:5", "2017-11-24T08:45:57+1",
                            "2017-11-24T08:45:57+01:0", "2017-11-24T08:45:57.", "2017-11-24T08:45:57+25:00"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof *bad_ts; i++)
        assert_int_equal(shelf__parse_ts(bad_ts[i], strlen(bad_ts[i]), &t), -1);

    const char *num[] = {"3", "-2.5", "0.1", "1e3", " 4 ", "+7", ".5", "5.", "123456789012345678901234", "1E-2"};
    const double want[] = {3, -2.5, 0.1, 1000, 4, 7, 0.5, 5, 1.2345678901234568e23, 0.01};
    for (size_t i = 0; i < sizeof num / sizeof *num; i++) {
        assert_int_equal(shelf__parse_f64(num[i], strlen(num[i]), &v), 0);
        assert_true(v == want[i]);
    }
    const char *bad_num[] = {"", "abc", "1x", "-", "1e", "nan", "inf", "1e999", "0x10", "1,5", "--1"};
    for (size_t i = 0; i < sizeof bad_num / sizeof *bad_num; i++)
        assert_int_equal(shelf__parse_f64(bad_num[i], strlen(bad_num[i]), &v), -1);

    const char *id;
    size_t n;
    assert_int_equal(shelf__parse_id("007", 3, &id, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(id, "7", 1);
    assert_int_equal(shelf__parse_id("0", 1, &id, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(shelf__parse_id("x1", 2, &id, &n), -1);
    assert_int_equal(shelf__parse_id("-1", 2, &id, &n), -1);
    assert_int_equal(shelf__parse_id("", 0, &id, &n), -1);
    assert_int_equal(shelf__parse_i64("9223372036854775807", 19, &t), 0);
    assert_int_equal(shelf__parse_i64("9223372036854775808", 19, &t), -1);
    int b;
    assert_int_equal(shelf__parse_bool("TRUE", 4, &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(shelf__parse_bool("no", 2, &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(shelf__parse_bool("2", 1, &b), -1);

    shelf_import_format f;
    assert_int_equal(shelf_import_format_parse("ml100k", &f), 0);
    assert_int_equal(f, SHELF_FMT_ML100K);
    assert_int_equal(shelf_import_format_parse("taobao", &f), 0);
    assert_int_equal(f, SHELF_FMT_TAOBAO);
    assert_int_equal(shelf_import_format_parse("xml", &f), SHELF_EINVAL);
}

/* ---- happy paths ---------------------------------------------------------------- */

static void test_s3rec(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    /* the first lines of Beauty.txt, a blank line and a tab */
    const char *txt = write_file("Beauty.txt", "1 1 2 3 4 5\n2 6 7 8 9 10 4 11\n\n3 4\t12 13 14 15 16 17 18 19\n");
    const char *js = write_file("Beauty_item2attributes.json",
                                "{\"4\": [1, 2, 3], \"12\": [4, 5, 6], \"99\": [7], \"1\": []}\n");
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_S3REC);
    o.attributes_path = js;
    o.progress = 1;
    shelf_import_result res;
    int rc = shelf_import_file(st, txt, &o, &res);
    if (rc) fprintf(stderr, "%s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_int_equal(res.n_lines, 3);
    assert_int_equal(res.n_events, 5 + 7 + 9);
    assert_int_equal(res.n_new_users, 3);
    assert_int_equal(res.n_new_items, 19 + 1); /* 99 only in the JSON */
    assert_true(res.seconds >= 0);
    assert_int_equal(shelf_store_n_users(st), 3);
    assert_int_equal(shelf_store_n_items(st), 20);
    char *d = store_dump(st, NULL);
    /* order: file order, ts 0, default type view (the HTTP API's), counted */
    assert_int_equal(res.n_default_type, 5 + 7 + 9);
    assert_contains(d, "E 1 1 view 0 0 - -\nE 1 2 view 0 0 - -\nE 1 3 view");
    assert_contains(d, "E 1 5 view 0 0 - -\nE 2 6 view");
    assert_contains(d, "E 2 11 view 0 0 - -\nE 3 4 view 0 0 - -\nE 3 12 view");
    /* item indices follow first appearance */
    assert_contains(d, "I 0 1 kind=product");
    assert_contains(d, "I 18 19 ");
    assert_contains(d, "I 19 99 ");
    assert_contains(d, "A 4 1\nA 4 2\nA 4 3\n");
    assert_contains(d, "A 12 4\nA 12 5\nA 12 6\n");
    assert_contains(d, "A 99 7\n");
    free(d);

    /* a second import appends with another type; ids are shared */
    shelf_import_opts_init(&o, SHELF_FMT_S3REC);
    o.event_type = "view";
    assert_int_equal(shelf_import_file(st, write_file("more.txt", "3 1\n007 0099\n"), &o, &res), 0);
    assert_int_equal(res.n_events, 2);
    assert_int_equal(res.n_new_users, 1);
    assert_int_equal(res.n_new_items, 0);
    d = store_dump(st, NULL);
    assert_contains(d, "E 3 1 view 0 0 - -\nE 7 99 view 0 0 - -\n");
    free(d);
    shelf_store_close(st);
}

static void test_pairs(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const char *p = write_file("pairs.txt", "1 10\n1 11\r\n\n2 10\n1 12");
    shelf_import_result res;
    assert_int_equal(import_as(st, p, SHELF_FMT_PAIRS, SHELF_IMPORT_EVENTS, NULL, &res), 0);
    assert_int_equal(res.n_events, 4);
    assert_int_equal(res.n_lines, 4);
    assert_int_equal(res.n_new_users, 2);
    assert_int_equal(res.n_new_items, 3);
    char *d = store_dump(st, NULL);
    assert_contains(d, "E 1 10 view 0 0 - -\nE 1 11 view 0 0 - -\nE 2 10 view 0 0 - -\n"
                       "E 1 12 view 0 0 - -\n");
    free(d);
    shelf_store_close(st);
}

static void test_csv_events(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    /* CRLF, a BOM, quoting with commas, escaped quotes and a newline inside a
     * quoted field, ISO and unix timestamps, empty optional fields, a blank line */
    const char *p = write_file("events.csv",
                               "\xEF\xBB\xBFuser,item,type,value,ts,rec_id,context\r\n"
                               "u1,i1,view,,1511513157,,\r\n"
                               "u1,\"i,2\",cart,2,2017-11-24T08:45:58Z,r1,\"{\"\"page\"\":\"\"home\"\"}\"\r\n"
                               "\r\n"
                               "\"u\"\"2\",i1,purchase,1.5,2017-11-24 08:46:00,\"multi\nline\",\r\n"
                               "u3,i3,rating,4,,,\n");
    shelf_import_result res;
    int rc = import_as(st, p, SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, NULL, &res);
    if (rc) fprintf(stderr, "%s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_int_equal(res.n_events, 4);
    assert_int_equal(res.n_lines, 4);
    assert_int_equal(res.n_new_users, 3);
    assert_int_equal(res.n_new_items, 3);
    char *d = store_dump(st, NULL);
    assert_contains(d, "E u1 i1 view 0 1511513157 - -\n"
                       "E u1 i,2 cart 2 1511513158 r1 {\"page\":\"home\"}\n"
                       "E u\"2 i1 purchase 1.5 1511513160 multi\nline -\n"
                       "E u3 i3 rating 4 0 - -\n");
    free(d);

    /* the mapping, no type column (opts->event_type), tab delimiter */
    p = write_file("retail.tsv", "timestamp\tvisitorid\tevent_x\titemid\n"
                                 "1433221332117\t257597\tfoo\t355908\n"
                                 "1433224214164\t992329\tbar\t248676\n");
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    o.mapping = "user = visitorid, item=itemid,ts=timestamp";
    o.delimiter = '\t';
    o.event_type = "view";
    assert_int_equal(shelf_import_file(st, p, &o, &res), 0);
    assert_int_equal(res.n_events, 2);
    d = store_dump(st, NULL);
    assert_contains(d, "E 257597 355908 view 0 1433221332117 - -\nE 992329 248676 view 0 1433224214164 - -\n");
    free(d);
    shelf_store_close(st);
}

/* text written to name, imported with o into st: 0, or the code (its message printed) */
static int import_text(shelf_store *st, const shelf_import_opts *o, const char *name, const char *text,
                       shelf_import_result *res)
{
    int rc = shelf_import_file(st, write_file(name, text), o, res);
    if (rc) fprintf(stderr, "%s: %s\n", name, shelf_store_errmsg(st));
    return rc;
}

/* res's records read, events stored, users and items made */
static void expect_counts(const shelf_import_result *res, uint64_t lines, uint64_t events, uint64_t users,
                          uint64_t items)
{
    assert_int_equal(res->n_lines, lines);
    assert_int_equal(res->n_events, events);
    assert_int_equal(res->n_new_users, users);
    assert_int_equal(res->n_new_items, items);
}

/* What a shop's export needs (issue 21). --type-map: a file's types as the
 * store's, "-" drops those rows (counted, no user or item made for them);
 * CSV and JSON Lines alike; a bad entry fails before anything is read,
 * naming it and the store's types. Then rows that name no one (below). */
static void test_shop_exports(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    shelf_import_opts o;
    shelf_import_result res;
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    o.type_map = "pv=view,fav=like,remove_from_cart=-,buy=purchase";
    assert_int_equal(import_text(st, &o, "rees.csv",
                                 "user,item,type,ts\n"
                                 "u1,i1,pv,1700000000\n"
                                 "u1,i2,fav,1700000100\n"
                                 "u9,i9,remove_from_cart,1700000200\n"
                                 "u2,i1,buy,1700000300\n"
                                 "u2,i1,view,1700000400\n",
                                 &res),
                     0);
    expect_counts(&res, 5, 4, 2, 2); /* no u9, no i9 */
    assert_int_equal(res.n_dropped, 1);
    char *d = store_dump(st, NULL);
    assert_contains(d, "E u1 i1 view 0 1700000000 - -\n"
                       "E u1 i2 like 0 1700000100 - -\n"
                       "E u2 i1 purchase 0 1700000300 - -\n"
                       "E u2 i1 view 0 1700000400 - -\n");
    free(d);
    shelf_import_opts_init(&o, SHELF_FMT_JSONL);
    o.type_map = "pv=view,remove_from_cart=-";
    assert_int_equal(import_text(st, &o, "rees.jsonl",
                                 "{\"user\": \"u3\", \"item\": \"i1\", \"type\": \"pv\"}\n"
                                 "{\"user\": \"u8\", \"item\": \"i8\", \"type\": \"remove_from_cart\"}\n",
                                 &res),
                     0);
    assert_int_equal(res.n_events, 1);
    assert_int_equal(res.n_dropped, 1);
    assert_int_equal(res.n_new_users, 1);
    /* bad entries: nothing read, the entry named */
    const char *bad[][2] = {{"pv=viw", "type map: 'pv=viw': the store has no event type 'viw' (it has view, "},
                            {"pv", "type map: 'pv': expected FILE_TYPE=STORE_TYPE"},
                            {"=view", "type map: '=view': expected"},
                            {"pv=", "type map: 'pv=': expected"}};
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        o.type_map = bad[k][0];
        const char *f = write_file("rees.csv", "user,item,type\nu7,i1,pv\n");
        assert_int_equal(shelf_import_file(st, f, &o, &res), SHELF_EINVAL);
        if (!strstr(shelf_store_errmsg(st), bad[k][1])) fail_msg("%s: %s", bad[k][0], shelf_store_errmsg(st));
    }
    d = store_dump(st, NULL);
    assert_null(strstr(d, "u7"));
    free(d);
    /* event rows whose user or item id names no one (empty; NA, N/A, NaN,
     * null, None, nil in any case; JSON null) are skipped, counted by reason
     * with the first line of each, and make no user or item; a CSV without a
     * header takes its columns from opts->columns */
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    o.columns = "user,item,type,ts";
    assert_int_equal(import_text(st, &o, "nohdr.csv",
                                 "w1,j1,view,1700000000\nNA,j2,view,1700000001\n,j3,view,1700000002\n"
                                 "w2,null,view,1700000003\nw2,,view,1700000004\nNone,j4,view,1700000005\n"
                                 "w3,j1,view,1700000006\n",
                                 &res),
                     0);
    expect_counts(&res, 7, 2, 2, 1); /* w1, w3 and j1: not NA, None, w2 (its rows were skipped), j2, j3 or j4 */
    const uint64_t n[SHELF_SKIP_N] = {1, 2, 1, 1}, first[SHELF_SKIP_N] = {3, 2, 5, 4};
    for (int k = 0; k < SHELF_SKIP_N; k++) {
        assert_int_equal(res.n_skipped[k], n[k]);
        assert_int_equal(res.first_skipped[k], first[k]);
    }
    d = store_dump(st, NULL);
    assert_contains(d, "E w1 j1 view 0 1700000000 - -\nE w3 j1 view 0 1700000006 - -\n");
    assert_null(strstr(d, "NA"));
    free(d);
    shelf_import_opts_init(&o, SHELF_FMT_JSONL);
    assert_int_equal(import_text(st, &o, "ids.jsonl",
                                 "{\"user\": null, \"item\": \"i1\"}\n{\"user\": \"u5\", \"item\": \"N/A\"}\n"
                                 "{\"user\": \"\", \"item\": \"i1\"}\n{\"user\": \"u5\", \"item\": \"i1\"}\n",
                                 &res),
                     0);
    assert_int_equal(res.n_events, 1);
    assert_int_equal(res.n_skipped[SHELF_SKIP_USER_NULL], 1);
    assert_int_equal(res.n_skipped[SHELF_SKIP_ITEM_NULL], 1);
    assert_int_equal(res.n_skipped[SHELF_SKIP_USER_EMPTY], 1);
    assert_int_equal(res.first_skipped[SHELF_SKIP_USER_EMPTY], 3);
    /* a real id that merely contains such text is kept */
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    assert_int_equal(import_text(st, &o, "na.csv", "user,item\nNAOMI,nil0\n", &res), 0);
    assert_int_equal(res.n_events, 1);
    /* category paths with another separator (REES46's electronics.audio):
     * stored as the store's paths, levels trimmed and empty ones dropped */
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    o.what = SHELF_IMPORT_ITEMS;
    o.category_separator = '.';
    assert_int_equal(import_text(st, &o, "cats.csv",
                                 "id,category\nc1,electronics.audio.headphone\nc2, kids . toys..lego \nc3,plain\n",
                                 &res),
                     0);
    o.format = SHELF_FMT_JSONL;
    assert_int_equal(import_text(st, &o, "cats.jsonl", "{\"id\": \"c4\", \"category\": \"home.garden\"}\n", &res), 0);
    d = store_dump(st, NULL);
    assert_contains(d, " c1 kind=product title=- cat=electronics > audio > headphone ");
    assert_contains(d, " c2 kind=product title=- cat=kids > toys > lego ");
    assert_contains(d, " c3 kind=product title=- cat=plain ");
    assert_contains(d, " c4 kind=product title=- cat=home > garden ");
    free(d);
    shelf_store_close(st);
}


static void test_csv_items_users(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const char *p = write_file("items.csv", "id,kind,title,category,brand,price,available,created,color,size\n"
                                            "i1,,Red shoe,Shoes > Running,Acme,59.90,1,2020-01-02,red,42\n"
                                            "i2,campaign,\"Sale, 50%\",,,,no,,,\n");
    shelf_import_result res;
    int rc = import_as(st, p, SHELF_FMT_CSV, SHELF_IMPORT_ITEMS, NULL, &res);
    if (rc) fprintf(stderr, "%s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_int_equal(res.n_items, 2);
    assert_int_equal(res.n_new_items, 2);
    assert_int_equal(res.n_events, 0);
    char *d = store_dump(st, NULL);
    assert_contains(d, "I 0 i1 kind=product title=Red shoe cat=Shoes > Running brand=Acme price=59.9 avail=1 "
                       "created=1577923200 attrs={\"color\":\"red\",\"size\":\"42\"}\n");
    assert_contains(d, "I 1 i2 kind=campaign title=Sale, 50% cat=- brand=- price=none:0 avail=0 created=0 attrs=-\n");
    assert_contains(d, "A i1 color=red\nA i1 size=42\n");
    free(d);

    p = write_file("users.csv", "id,created,segment\nu1,1600000000,vip\nu2,,\n");
    assert_int_equal(import_as(st, p, SHELF_FMT_CSV, SHELF_IMPORT_USERS, NULL, &res), 0);
    assert_int_equal(res.n_users, 2);
    d = store_dump(st, NULL);
    assert_contains(d, "U 0 u1 created=1600000000 attrs={\"segment\":\"vip\"}\nU 1 u2 created=0 attrs=-\n");
    free(d);
    shelf_store_close(st);
}

static void test_jsonl(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const char *p = write_file("events.jsonl",
                               "{\"user\": \"u1\", \"item\": 17, \"type\": \"view\", \"ts\": 1511513157}\n"
                               "\n"
                               "  {\"user\": 2, \"item\": \"i2\", \"type\": \"rating\", \"value\": 4.5, "
                               "\"ts\": \"2017-11-24T08:45:58Z\", \"rec_id\": \"r9\", \"context\": {\"page\": \"pdp\"}}\n"
                               "{\"user\": \"u1\", \"item\": \"i2\", \"value\": \"2\", \"extra\": [1]}\n");
    shelf_import_result res;
    int rc = import_as(st, p, SHELF_FMT_JSONL, SHELF_IMPORT_EVENTS, NULL, &res);
    if (rc) fprintf(stderr, "%s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_int_equal(res.n_events, 3);
    assert_int_equal(res.n_lines, 3);
    char *d = store_dump(st, NULL);
    assert_contains(d, "E u1 17 view 0 1511513157 - -\nE 2 i2 rating 4.5 1511513158 r9 {\"page\":\"pdp\"}\n"
                       "E u1 i2 view 2 0 - -\n");
    assert_int_equal(res.n_default_type, 1); /* only the last names no type */
    free(d);

    p = write_file("items.jsonl", "{\"id\": \"i2\", \"title\": \"Caf\xC3\xA9 mug\", \"price\": 9.5, "
                                  "\"available\": false, \"tags\": [\"kitchen\", \"gift\"], "
                                  "\"attributes\": {\"color\": \"blue\", \"ml\": 350}}\n"
                                  "{\"id\": 5, \"category\": 12, \"created\": \"2020-01-02T00:00:00Z\"}\n");
    rc = import_as(st, p, SHELF_FMT_JSONL, SHELF_IMPORT_ITEMS, NULL, &res);
    if (rc) fprintf(stderr, "%s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_int_equal(res.n_items, 2);
    assert_int_equal(res.n_new_items, 1);
    d = store_dump(st, NULL);
    assert_contains(d, "I 1 i2 kind=product title=Caf\xC3\xA9 mug cat=- brand=- price=9.5 avail=0 created=0 "
                       "attrs={\"tags\":[\"kitchen\",\"gift\"],\"color\":\"blue\",\"ml\":350}\n");
    assert_contains(d, "I 2 5 kind=product title=- cat=12 brand=- price=none:0 avail=1 created=1577923200 attrs=-\n");
    assert_contains(d, "A i2 tags=kitchen\nA i2 tags=gift\nA i2 color=blue\nA i2 ml=350\n");
    free(d);

    p = write_file("users.jsonl", "{\"uid\": \"u1\", \"age\": 30}\n");
    assert_int_equal(import_as(st, p, SHELF_FMT_JSONL, SHELF_IMPORT_USERS, "id=uid", &res), 0);
    assert_int_equal(res.n_users, 1);
    d = store_dump(st, NULL);
    assert_contains(d, "U 0 u1 created=0 attrs={\"age\":30}\n");
    free(d);
    shelf_store_close(st);
}

/* u.data lines and u.item lines of the real MovieLens-100k (latin-1 title) */
static const char ml_data[] = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
                              "196\t1\t5\t881251000\n";
static const char ml_item[] =
    "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)"
    "|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "302|L.A. Confidential (1997)|01-Jan-1997||x|0|0|0|0|0|0|1|0|0|0|1|0|0|1|0|0|1|0|0\n"
    "377|Heavyweights (1994)|01-Jan-1994||x|0|0|0|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "543|Mis\xe9rables, Les (1995)|01-Jan-1995||x|0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0\n";

static const char *ml_dir(const char *name, const char *data, const char *item)
{
    char sub[600];
    snprintf(sub, sizeof sub, "%s/%s", tmp_dir, name);
    mkdir_p(sub);
    char f[700];
    snprintf(f, sizeof f, "%s/u.data", name);
    write_file(f, data);
    if (item) {
        snprintf(f, sizeof f, "%s/u.item", name);
        write_file(f, item);
    }
    return tmp_path(name);
}

static void test_ml100k(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const char *dir = ml_dir("ml", ml_data, ml_item);
    shelf_import_result res;
    int rc = import_as(st, dir, SHELF_FMT_ML100K, SHELF_IMPORT_EVENTS, NULL, &res);
    if (rc) fprintf(stderr, "%s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_int_equal(res.n_events, 4);
    assert_int_equal(res.n_items, 6);
    assert_int_equal(res.n_new_items, 6);
    assert_int_equal(res.n_new_users, 3);
    assert_int_equal(res.n_lines, 10);
    char *d = store_dump(st, NULL);
    assert_contains(d, "E 196 242 rating 3 881250949 - -\nE 186 302 rating 3 891717742 - -\n"
                       "E 22 377 rating 1 878887116 - -\nE 196 1 rating 5 881251000 - -\n");
    /* items in u.item order, category = first genre, latin-1 converted */
    assert_contains(d, "I 0 1 kind=product title=Toy Story (1995) cat=Animation ");
    assert_contains(d, "attrs={\"release_date\":\"01-Jan-1995\",\"imdb_url\":\"http://us.imdb.com/M/"
                       "title-exact?Toy%20Story%20(1995)\"}\n");
    assert_contains(d, "I 2 267 kind=product title=unknown cat=unknown ");
    assert_contains(d, "I 3 302 kind=product title=L.A. Confidential (1997) cat=Crime ");
    assert_contains(d, "I 5 543 kind=product title=Mis\xC3\xA9rables, Les (1995) cat=Drama ");
    assert_contains(d, "A 1 genre=Animation\nA 1 genre=Children's\nA 1 genre=Comedy\n");
    assert_contains(d, "A 302 genre=Crime\nA 302 genre=Film-Noir\nA 302 genre=Mystery\nA 302 genre=Thriller\n");
    free(d);
    shelf_store_close(st);

    /* the u.data path itself (u.item found beside it), and u.data alone */
    st = store_new();
    char f[700];
    snprintf(f, sizeof f, "%s/u.data", dir);
    assert_int_equal(import_as(st, f, SHELF_FMT_ML100K, SHELF_IMPORT_EVENTS, NULL, &res), 0);
    assert_int_equal(res.n_items, 6);
    shelf_store_close(st);
    st = store_new();
    dir = ml_dir("ml_noitem", ml_data, NULL);
    assert_int_equal(import_as(st, dir, SHELF_FMT_ML100K, SHELF_IMPORT_EVENTS, NULL, &res), 0);
    assert_int_equal(res.n_items, 0);
    assert_int_equal(res.n_new_items, 4);
    assert_int_equal(res.n_events, 4);
    shelf_store_close(st);
}

/* rows of user_block_114 of Taobao UserBehavior */
static const char taobao[] = "999477,3197813,3607361,pv,1511680467\n"
                             "999477,1529958,2328673,cart,1511680520\n"
                             "999477,3197813,3607361,fav,1511680600\n"
                             "999478,1529958,9999999,buy,1511690000\n"
                             "999478,4000000,2328673,pv,15\n";

static void test_taobao(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    shelf_import_result res;
    int rc = import_as(st, write_file("UserBehavior.csv", taobao), SHELF_FMT_TAOBAO, SHELF_IMPORT_EVENTS, NULL, &res);
    if (rc) fprintf(stderr, "%s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_int_equal(res.n_events, 5);
    assert_int_equal(res.n_new_users, 2);
    assert_int_equal(res.n_new_items, 3);
    char *d = store_dump(st, NULL);
    assert_contains(d, "E 999477 3197813 view 0 1511680467 - -\nE 999477 1529958 cart 0 1511680520 - -\n"
                       "E 999477 3197813 like 0 1511680600 - -\nE 999478 1529958 purchase 0 1511690000 - -\n"
                       "E 999478 4000000 view 0 15 - -\n");
    /* the category of the first row that created the item */
    assert_contains(d, "I 0 3197813 kind=product title=- cat=3607361 ");
    assert_contains(d, "I 1 1529958 kind=product title=- cat=2328673 ");
    assert_contains(d, "I 2 4000000 kind=product title=- cat=2328673 ");
    free(d);
    shelf_store_close(st);
}

/* ---- a line longer than any buffer ------------------------------------------------ */

static void test_long_lines(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    /* an items CSV whose quoted text field is 10 MB (with commas, quotes and a newline) */
    size_t big = 10u << 20;
    char *buf = malloc(big + 256);
    assert_non_null(buf);
    size_t n = (size_t)sprintf(buf, "id,title,text\ni1,Short,\"");
    for (size_t i = 0; i < big; i++) buf[n + i] = "abc, \"\"\nxyz"[i % 11];
    n += big;
    n += (size_t)sprintf(buf + n, "\"\ni2,Other,small\n");
    const char *p = write_bytes("long_items.csv", buf, n);
    shelf_import_result res;
    int rc = import_as(st, p, SHELF_FMT_CSV, SHELF_IMPORT_ITEMS, NULL, &res);
    if (rc) fprintf(stderr, "%s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_int_equal(res.n_items, 2);
    free(buf);

    /* an s3rec line of 10 MB: 500k items written with leading zeros */
    size_t n_items = 500000, w = 20;
    buf = malloc(n_items * w + 16);
    assert_non_null(buf);
    n = (size_t)sprintf(buf, "42");
    for (size_t i = 0; i < n_items; i++) n += (size_t)sprintf(buf + n, " %019zu", i % 1000 + 1);
    buf[n++] = '\n';
    assert_true(n > 10000000);
    p = write_bytes("long.txt", buf, n);
    free(buf);
    rc = import_as(st, p, SHELF_FMT_S3REC, SHELF_IMPORT_EVENTS, NULL, &res);
    if (rc) fprintf(stderr, "%s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_int_equal(res.n_events, n_items);
    assert_int_equal(res.n_new_items, 1000);
    uint32_t idx;
    assert_int_equal(shelf_store_item_idx(st, "1000", 4, 0, &idx, NULL), 0);
    shelf_store_close(st);
}

/* many CRLF lines across the reader's 1 MiB blocks */
static void test_many_lines(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    size_t n_lines = 150000;
    char *buf = malloc(n_lines * 20);
    assert_non_null(buf);
    size_t n = 0;
    for (size_t i = 0; i < n_lines; i++) n += (size_t)sprintf(buf + n, "%zu %zu\r\n", 1000000 + i % 977, 7000000 + i);
    const char *p = write_bytes("many.txt", buf, n - 2); /* the last line unterminated */
    free(buf);
    shelf_import_result res;
    assert_int_equal(import_as(st, p, SHELF_FMT_PAIRS, SHELF_IMPORT_EVENTS, NULL, &res), 0);
    assert_int_equal(res.n_events, n_lines);
    assert_int_equal(res.n_new_users, 977);
    assert_int_equal(res.n_new_items, n_lines);
    char want[64];
    snprintf(want, sizeof want, "E %zu %zu view 0 0 - -\nI 0 ", 1000000 + (n_lines - 1) % 977,
             7000000 + n_lines - 1);
    char *d = store_dump(st, NULL);
    assert_contains(d, want);
    free(d);

    /* misuse: no options, inside a transaction, a bad delimiter */
    assert_int_equal(shelf_import_file(st, p, NULL, NULL), SHELF_EINVAL);
    assert_int_equal(shelf_store_begin(st), 0);
    assert_int_equal(import(st, p, SHELF_FMT_PAIRS), SHELF_EINVAL);
    assert_int_equal(shelf_store_rollback(st), 0);
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    o.delimiter = '"';
    assert_int_equal(shelf_import_file(st, p, &o, NULL), SHELF_EINVAL);
    assert_int_equal(n_events(st), n_lines);
    shelf_store_close(st);
}

/* ---- failures ------------------------------------------------------------------------ */

static void test_fail_seq(void **state)
{
    (void)state;
    shelf_store *st = store_with_data();
    expect_fail(st, write_file("Beauty.txt", "1 1 2\n2 3 4\n\n3 5 x1 6\n"), SHELF_FMT_S3REC, SHELF_EFORMAT,
                "Beauty.txt:4: field 3 (item): not an integer: 'x1'");
    expect_fail(st, write_file("bad_user.txt", "1 1 2\nu2 3 4\n"), SHELF_FMT_S3REC, SHELF_EFORMAT,
                "bad_user.txt:2: field 1 (user): not an integer: 'u2'");
    expect_fail(st, write_file("trunc.txt", "1 1 2\n2\n"), SHELF_FMT_S3REC, SHELF_EFORMAT,
                "trunc.txt:2: field 2 (item): truncated line");
    expect_fail(st, write_file("empty.txt", ""), SHELF_FMT_S3REC, SHELF_EFORMAT, "empty.txt: empty file");
    expect_fail(st, write_file("blank.txt", "\n  \n\n"), SHELF_FMT_S3REC, SHELF_EFORMAT, "blank.txt: empty file");
    expect_fail(st, write_file("utf8.txt", "1 1 2\n2 3 \xff\xfe 4\n"), SHELF_FMT_S3REC, SHELF_EFORMAT,
                "utf8.txt:2: field 3 (item): invalid UTF-8 at byte column 5 (0xff)");
    expect_fail(st, write_bytes("nul.txt", "1 1 2\n2 3\0 4\n", 12), SHELF_FMT_S3REC, SHELF_EFORMAT,
                "nul.txt:2: field 2 (item): NUL byte at byte column 4");
    expect_fail(st, tmp_path("no_such_file.txt"), SHELF_FMT_S3REC, SHELF_ENOTFOUND, "no_such_file.txt", "no such file");
    expect_fail(st, tmp_dir, SHELF_FMT_S3REC, SHELF_EIO, "is a directory");

    expect_fail(st, write_file("pairs1.txt", "1 2\n1\n"), SHELF_FMT_PAIRS, SHELF_EFORMAT,
                "pairs1.txt:2: field 2 (item): truncated line");
    expect_fail(st, write_file("pairs3.txt", "1 2\n\n1 2 3\n"), SHELF_FMT_PAIRS, SHELF_EFORMAT,
                "pairs3.txt:3: field 3: too many fields");
    expect_fail(st, write_file("pairsx.txt", "1 2\n1 2.5\n"), SHELF_FMT_PAIRS, SHELF_EFORMAT,
                "pairsx.txt:2: field 2 (item): not an integer: '2.5'");

    /* a bad attributes file rolls the sequences back too */
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_S3REC);
    char txt[800];
    snprintf(txt, sizeof txt, "%s", write_file("good.txt", "5 1 2 3\n"));
    const char *bad_json[] = {"{\"1\": [1, 2], \"2\": [3,]}", "[1, 2]", "{\"x\": [1]}", "{\"1\": 5}",
                              "{\"1\": [1, \"a\"]}", "{\"1\": [-1]}", "", "{\"1\": [1]} x",
                              "{\"1\": [1], \"2\\u0000x\": [1]}", "{\"1\": [\"7\\u0000\"]}"};
    const char *want[] = {"attrs.json:1: invalid JSON", "not a JSON object", "item id is not an integer: 'x'",
                          "field '1': expected an array", "field '1': attribute 2", "field '1': attribute 1",
                          "attrs.json: empty file", "trailing data", "attrs.json: member name: NUL character (\\u0000)",
                          "attrs.json: field '1[0]': NUL character (\\u0000) at byte offset 1"};
    for (size_t i = 0; i < sizeof bad_json / sizeof *bad_json; i++) {
        char *before = store_dump(st, NULL);
        o.attributes_path = write_file("attrs.json", bad_json[i]);
        assert_int_equal(shelf_import_file(st, txt, &o, NULL), SHELF_EFORMAT);
        assert_contains(shelf_store_errmsg(st), want[i]);
        char *after = store_dump(st, NULL);
        assert_string_equal(before, after);
        free(before);
        free(after);
    }
    o.attributes_path = tmp_path("missing_attrs.json");
    assert_int_equal(shelf_import_file(st, txt, &o, NULL), SHELF_ENOTFOUND);
    assert_contains(shelf_store_errmsg(st), "missing_attrs.json");
    o.attributes_path = NULL;
    o.event_type = "no_such_type";
    assert_int_equal(shelf_import_file(st, txt, &o, NULL), SHELF_ENOTFOUND);
    assert_contains(shelf_store_errmsg(st), "no_such_type");
    assert_int_equal(n_events(st), 6);

    /* still usable: a good import after all the failures */
    import_ok(st, txt, SHELF_FMT_S3REC);
    assert_int_equal(n_events(st), 9);
    shelf_store_close(st);
}

static void test_fail_csv(void **state)
{
    (void)state;
    shelf_store *st = store_with_data();
    const char *h = "user,item,type,value,ts\n";
    char text[512];
#define CSV(name, body) (snprintf(text, sizeof text, "%s%s", h, body), write_file(name, text))
    expect_fail(st, CSV("few.csv", "u1,i1,view,1,5\nu1,i2,view\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "few.csv:3: field 4 (value): truncated line: 3 of 5 fields");
    expect_fail(st, CSV("many.csv", "u1,i1,view,1,5,6\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "many.csv:2: field 6: too many fields: 6");
    expect_fail(st, CSV("value.csv", "u1,i1,view,1,5\n\nu1,i1,view,abc,5\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "value.csv:4: field 4 (value): not a number: 'abc'");
    expect_fail(st, CSV("ts.csv", "u1,i1,view,1,2017-13-01\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "ts.csv:2: field 5 (ts): not a timestamp", "'2017-13-01'");
    expect_fail(st, CSV("type.csv", "u1,i1,view,1,5\nu1,i1,zap,1,5\n"), SHELF_FMT_CSV, SHELF_ENOTFOUND,
                "type.csv:3: field 3 (type): unknown event type (map it: --type-map NAME=TYPE, or NAME=- to drop such rows): 'zap'");
    expect_fail(st, CSV("emptytype.csv", "u1,i1,,1,5\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "emptytype.csv:2: field 3 (type): empty event type");
    expect_fail(st, CSV("utf8.csv", "u1,i1,view,1,5\nu1,\"i\xc3\x28\",view,1,5\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "utf8.csv:3: field 2 (item): invalid UTF-8 at byte column 6 (0xc3)");
    /* a value a float cannot hold (a cast would store Inf), issue 15 */
    expect_fail(st, CSV("huge.csv", "u1,i1,view,1,5\nu1,i1,view,1e308,5\n"), SHELF_FMT_CSV, SHELF_ERANGE,
                "huge.csv:3: field 4 (value): 1e+308 is beyond the range of a float");
    expect_fail(st, CSV("huge2.csv", "u1,i1,view,-3.5e38,5\n"), SHELF_FMT_CSV, SHELF_ERANGE,
                "huge2.csv:2: field 4 (value): -3.5e+38 is beyond the range of a float");
    expect_fail(st, CSV("quote.csv", "u1,i1,view,1,5\nu1,\"i1,view,1,5\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "quote.csv:3: field 2 (item): quoted field not closed");
    expect_fail(st, CSV("after.csv", "u1,\"i1\"x,view,1,5\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "after.csv:2: field 2 (item): text after the closing quote");
    import_ok(st, CSV("good.csv", "u1,i1,view,1,5\n"), SHELF_FMT_CSV);
    assert_int_equal(n_events(st), 7);
    expect_fail(st, write_file("empty.csv", ""), SHELF_FMT_CSV, SHELF_EFORMAT, "empty.csv: empty file: no header");
    expect_fail(st, write_file("nouser.csv", "visitor,item\nu1,i1\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "nouser.csv:1: no column 'user' in the header");
    expect_fail(st, write_file("ctxbad.csv", "user,item,context\nu1,i1,\"[1]\"\n"), SHELF_FMT_CSV, SHELF_EFORMAT,
                "ctxbad.csv:2: field 3 (context): not a JSON object: '[1]'");
    expect_fail(st, write_file("ctxnul.csv", "user,item,context\nu1,i1,\"{\"\"a\"\":[\"\"x\\u0000\"\"]}\"\n"), SHELF_FMT_CSV,
                SHELF_EFORMAT, "ctxnul.csv:2: field 3 (context): .a[0]: NUL character (\\u0000) at byte offset 1");
    expect_fail_as(st, write_file("map.csv", "a,b\n1,2\n"), SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, "user=a,item=c",
                   SHELF_EFORMAT, "map.csv:1: mapping item=c: no column 'c'", (const char *)NULL);
    expect_fail_as(st, write_file("map2.csv", "a,b\n1,2\n"), SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, "usr=a",
                   SHELF_EINVAL, "unknown field 'usr'", (const char *)NULL);
    expect_fail_as(st, write_file("map3.csv", "a,b\n1,2\n"), SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, "user",
                   SHELF_EINVAL, "expected field=column", (const char *)NULL);
    expect_fail_as(st, write_file("items_bad.csv", "id,price\ni1,3\ni2,cheap\n"), SHELF_FMT_CSV, SHELF_IMPORT_ITEMS,
                   NULL, SHELF_EFORMAT, "items_bad.csv:3: field 2 (price): not a number: 'cheap'", (const char *)NULL);
    expect_fail_as(st, write_file("items_avail.csv", "id,available\ni1,maybe\n"), SHELF_FMT_CSV, SHELF_IMPORT_ITEMS,
                   NULL, SHELF_EFORMAT, "items_avail.csv:2: field 2 (available): not a boolean", (const char *)NULL);
    expect_fail_as(st, write_file("users_bad.csv", "id,created\nu9,yesterday\n"), SHELF_FMT_CSV, SHELF_IMPORT_USERS,
                   NULL, SHELF_EFORMAT, "users_bad.csv:2: field 2 (created): not a timestamp", (const char *)NULL);
#undef CSV
    assert_int_equal(n_events(st), 7);
    shelf_store_close(st);
}

static void test_fail_jsonl(void **state)
{
    (void)state;
    shelf_store *st = store_with_data();
    const char *ok = "{\"user\": \"u1\", \"item\": \"i1\"}\n";
    struct {
        const char *line;
        int code;
        const char *msg;
    } cases[] = {
        {"[1, 2]", SHELF_EFORMAT, "bad.jsonl:3: not a JSON object (an array)"},
        {"{\"user\": \"u1\", \"item\": }", SHELF_EFORMAT, "bad.jsonl:3: invalid JSON at byte column"},
        {"{\"user\": \"u1\", \"item\": \"i1\"} {}", SHELF_EFORMAT, "bad.jsonl:3: text after the JSON value"},
        {"{\"user\": {\"a\": 1}, \"item\": \"i1\"}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'user': expected a string or an integer, got an object"},
        {"{\"user\": 1.5, \"item\": \"i1\"}", SHELF_EFORMAT, "bad.jsonl:3: field 'user': expected a string or an integer"},
        {"{\"item\": \"i1\"}", SHELF_EFORMAT, "bad.jsonl:3: field 'user': missing"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"value\": \"abc\"}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'value': not a number: 'abc'"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"value\": [1]}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'value': expected a number, got an array"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"type\": \"zap\"}", SHELF_ENOTFOUND,
         "bad.jsonl:3: field 'type': unknown event type (map it: --type-map NAME=TYPE, or NAME=- to drop such rows): 'zap'"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"type\": 3}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'type': expected an event type name, got a number"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"ts\": \"yesterday\"}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'ts': not a timestamp"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"ts\": true}", SHELF_EFORMAT, "bad.jsonl:3: field 'ts': expected a timestamp"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"context\": \"x\"}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'context': expected an object, got a string"},
        {"{\"user\": \"u\xe9\", \"item\": \"i1\"}", SHELF_EFORMAT, "bad.jsonl:3: invalid UTF-8 at byte column 12 (0xe9)"},
        /* issue 15: values a float cannot hold, \u0000 in any string (cJSON would cut it there) */
        {"{\"user\": \"u1\", \"item\": \"i1\", \"value\": 1e308}", SHELF_ERANGE,
         "bad.jsonl:3: field 'value': 1e+308 is beyond the range of a float"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"value\": \"-1e39\"}", SHELF_ERANGE,
         "bad.jsonl:3: field 'value': -1e+39 is beyond the range of a float"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"value\": 1e400}", SHELF_ERANGE,
         "bad.jsonl:3: field 'value': not a finite number"},
        {"{\"user\": \"u1\\u0000x\", \"item\": \"i1\"}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'user': NUL character (\\u0000) at byte offset 2"},
        {"{\"user\": \"u1\", \"item\": \"i1\\u0000\"}", SHELF_EFORMAT, "bad.jsonl:3: field 'item': NUL character"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"type\": \"view\\u0000x\"}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'type': NUL character (\\u0000) at byte offset 4"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"rec_id\": \"\\u0000\"}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'rec_id': NUL character"},
        {"{\"user\": \"u1\", \"item\": \"i1\", \"context\": {\"a\": {\"b\\u0000\": 1}}}", SHELF_EFORMAT,
         "bad.jsonl:3: field 'context.a': member name: NUL character (\\u0000) at byte offset 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s\n%s\n", ok, cases[i].line);
        expect_fail(st, write_file("bad.jsonl", text), SHELF_FMT_JSONL, cases[i].code, cases[i].msg);
    }
    expect_fail(st, write_file("empty.jsonl", "\n\n"), SHELF_FMT_JSONL, SHELF_EFORMAT, "empty.jsonl: empty file");
    expect_fail_as(st, write_file("items.jsonl", "{\"id\": \"i1\", \"available\": \"perhaps\"}\n"), SHELF_FMT_JSONL,
                   SHELF_IMPORT_ITEMS, NULL, SHELF_EFORMAT, "items.jsonl:1: field 'available': expected a boolean",
                   (const char *)NULL);
    expect_fail_as(st, write_file("items2.jsonl", "{\"id\": \"i1\", \"title\": [\"x\"]}\n"), SHELF_FMT_JSONL,
                   SHELF_IMPORT_ITEMS, NULL, SHELF_EFORMAT, "items2.jsonl:1: field 'title': expected a string",
                   (const char *)NULL);
    expect_fail_as(st, write_file("items3.jsonl", "{\"id\": \"i7\"}\n{\"id\": \"i8\", \"color\": \"r\\u0000d\"}\n"),
                   SHELF_FMT_JSONL, SHELF_IMPORT_ITEMS, NULL, SHELF_EFORMAT,
                   "items3.jsonl:2: field 'color': NUL character (\\u0000) at byte offset 1", (const char *)NULL);
    expect_fail_as(st, write_file("items4.jsonl", "{\"id\": \"i8\", \"price\": 1e999}\n"), SHELF_FMT_JSONL,
                   SHELF_IMPORT_ITEMS, NULL, SHELF_ERANGE, "items4.jsonl:1: field 'price': not a finite number",
                   (const char *)NULL);
    expect_fail_as(st, write_file("users3.jsonl", "{\"id\": \"u\\u0000\", \"created\": 5}\n"), SHELF_FMT_JSONL,
                   SHELF_IMPORT_USERS, NULL, SHELF_EFORMAT, "users3.jsonl:1: field 'id': NUL character",
                   (const char *)NULL);
    shelf_store_close(st);
}

static void test_fail_ml_taobao(void **state)
{
    (void)state;
    shelf_store *st = store_with_data();
    const char *d = ml_dir("ml_bad1", "196\t242\t3\t881250949\n186\t302\t7\t891717742\n", NULL);
    expect_fail(st, d, SHELF_FMT_ML100K, SHELF_ERANGE, "u.data:2: field 3 (rating): out of range 1..5: '7'");
    d = ml_dir("ml_bad2", "196\t242\t3\n", NULL);
    expect_fail(st, d, SHELF_FMT_ML100K, SHELF_EFORMAT, "u.data:1: field 4 (timestamp): truncated line");
    d = ml_dir("ml_bad3", "196\t242\tx\t881250949\n", NULL);
    expect_fail(st, d, SHELF_FMT_ML100K, SHELF_EFORMAT, "u.data:1: field 3 (rating): not a number: 'x'");
    d = ml_dir("ml_bad4", "196\t242\t3\t8812509a\n", NULL);
    expect_fail(st, d, SHELF_FMT_ML100K, SHELF_EFORMAT, "u.data:1: field 4 (timestamp): not an integer");
    /* a bad u.item fails the whole import, u.data included */
    d = ml_dir("ml_bad5", ml_data, "1|Toy Story (1995)|01-Jan-1995||x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|2\n");
    expect_fail(st, d, SHELF_FMT_ML100K, SHELF_EFORMAT, "u.item:1: field 24 (Western): genre flag is not 0 or 1: '2'");
    d = ml_dir("ml_bad6", ml_data, "1|Toy Story (1995)|01-Jan-1995||x|0|0\n");
    expect_fail(st, d, SHELF_FMT_ML100K, SHELF_EFORMAT, "u.item:1: field 8 (Adventure): truncated line");
    d = ml_dir("ml_bad7", "", NULL);
    expect_fail(st, d, SHELF_FMT_ML100K, SHELF_EFORMAT, "u.data: empty file");
    expect_fail(st, tmp_path("ml_none"), SHELF_FMT_ML100K, SHELF_ENOTFOUND, "ml_none");
    char sub[600];
    snprintf(sub, sizeof sub, "%s/ml_empty_dir", tmp_dir);
    mkdir_p(sub);
    expect_fail(st, sub, SHELF_FMT_ML100K, SHELF_ENOTFOUND, "ml_empty_dir/u.data");

    expect_fail(st, write_file("tb1.csv", "1,2,3,pv,100\n1,2,3,zap,101\n"), SHELF_FMT_TAOBAO, SHELF_EFORMAT,
                "tb1.csv:2: field 4 (behavior): unknown behavior (expected pv|cart|fav|buy): 'zap'");
    expect_fail(st, write_file("tb2.csv", "1,2,3,pv,100\n1,2,3,pv\n"), SHELF_FMT_TAOBAO, SHELF_EFORMAT,
                "tb2.csv:2: field 5 (timestamp): truncated line");
    expect_fail(st, write_file("tb3.csv", "user_id,item_id,category_id,behavior_type,timestamp\n"), SHELF_FMT_TAOBAO,
                SHELF_EFORMAT, "tb3.csv:1: field 1 (user): not an integer: 'user_id'");
    expect_fail(st, write_file("tb4.csv", "1,2,3,pv,100,7\n"), SHELF_FMT_TAOBAO, SHELF_EFORMAT,
                "tb4.csv:1: field 6: too many fields");
    expect_fail(st, write_file("tb5.csv", "1,2,3,pv,1e5\n"), SHELF_FMT_TAOBAO, SHELF_EFORMAT,
                "tb5.csv:1: field 5 (timestamp): not an integer: '1e5'");
    expect_fail(st, write_file("tb6.csv", "1,2,\xe4\xb8,pv,100\n"), SHELF_FMT_TAOBAO, SHELF_EFORMAT,
                "tb6.csv:1: field 3 (category): invalid UTF-8 at byte column 5");
    expect_fail(st, write_file("tb7.csv", ""), SHELF_FMT_TAOBAO, SHELF_EFORMAT, "tb7.csv: empty file");
    assert_int_equal(n_events(st), 6);
    shelf_store_close(st);
}

/* A failed import leaves an on-disk store byte-for-byte as it was. */
static uint64_t file_hash(const char *path)
{
    char *buf;
    size_t len;
    shelf_store *st = store_new();
    assert_int_equal(shelf__read_file(st, path, &buf, &len), 0);
    shelf_store_close(st);
    uint64_t h = shelf_hash64(buf, len, 0);
    free(buf);
    return h;
}

/* Importing is idempotent (issue 21, item 4): a file imported before is not
 * read again, events with the user, item, type and ts of a stored one (or
 * of an earlier row) are counted, not stored; events without a timestamp
 * are kept; allow_duplicates stores everything. */
static void test_idempotent(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const char *a = write_file("dup_a.csv", "user,item,type,ts\n"
                                            "u1,i1,view,100\n"
                                            "u1,i2,view,200\n"
                                            "u1,i1,view,100\n" /* the same as line 2 */
                                            "u1,i1,cart,100\n" /* another type: kept */
                                            "u2,i1,view,\n"    /* no timestamp: kept */
                                            "u2,i1,view,\n");
    shelf_import_result r;
    assert_int_equal(import_as(st, a, SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, NULL, &r), 0);
    assert_int_equal(r.n_lines, 6);
    assert_int_equal(r.n_events, 5);
    assert_int_equal(r.n_duplicates, 1);
    assert_int_equal(r.first_duplicate, 4);
    assert_int_equal(r.already_imported, 0);
    assert_int_equal(r.n_default_type, 0);
    assert_int_equal(n_events(st), 5);

    /* the same bytes again: nothing read, the first import named */
    memset(&r, 0x55, sizeof r);
    assert_int_equal(import_as(st, a, SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, NULL, &r), 0);
    assert_int_equal(r.already_imported, 1);
    assert_int_equal(r.imported_events, 5);
    assert_true(r.imported_at > 1.7e9);
    assert_int_equal(r.n_lines, 0);
    assert_int_equal(r.n_events, 0);
    assert_int_equal(n_events(st), 5);

    /* a later export that overlaps the first: only the new events, in a
     * JSON Lines file too */
    const char *b = write_file("dup_b.jsonl", "{\"user\":\"u1\",\"item\":\"i2\",\"type\":\"view\",\"ts\":200}\n"
                                              "{\"user\":\"u3\",\"item\":\"i2\",\"type\":\"view\",\"ts\":300}\n"
                                              "{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"cart\",\"ts\":100}\n");
    assert_int_equal(import_as(st, b, SHELF_FMT_JSONL, SHELF_IMPORT_EVENTS, NULL, &r), 0);
    assert_int_equal(r.n_events, 1);
    assert_int_equal(r.n_duplicates, 2);
    assert_int_equal(r.first_duplicate, 1);
    assert_int_equal(r.n_new_users, 1);
    assert_int_equal(n_events(st), 6);

    /* a file that failed half way is not recorded: once fixed (other bytes) or
     * as it is, nothing of it was stored and it is read again */
    const char *bad = write_file("dup_bad.csv", "user,item,type,ts\nu9,i9,view,500\nu9,i9,view,soon\n");
    assert_int_equal(import(st, bad, SHELF_FMT_CSV), SHELF_EFORMAT);
    assert_int_equal(import(st, bad, SHELF_FMT_CSV), SHELF_EFORMAT);
    assert_int_equal(n_events(st), 6);

    /* allow_duplicates: the file and its rows again, all stored */
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    o.allow_duplicates = 1;
    assert_int_equal(shelf_import_file(st, a, &o, &r), 0);
    assert_int_equal(r.already_imported, 0);
    assert_int_equal(r.n_events, 6);
    assert_int_equal(r.n_duplicates, 0);
    assert_int_equal(n_events(st), 12);

    /* an items file is an upsert: read again each time */
    const char *it = write_file("dup_items.csv", "id,title\ni1,One\n");
    assert_int_equal(import_as(st, it, SHELF_FMT_CSV, SHELF_IMPORT_ITEMS, NULL, &r), 0);
    assert_int_equal(import_as(st, it, SHELF_FMT_CSV, SHELF_IMPORT_ITEMS, NULL, &r), 0);
    assert_int_equal(r.already_imported, 0);
    assert_int_equal(r.n_items, 1);
    shelf_store_close(st);
}

/* Rows without a type take the default (view, as the HTTP API), counted. */
static void test_default_type(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const char *p = write_file("deftype.csv", "user,item,ts\nu1,i1,1\nu1,i2,2\nNA,i3,3\n");
    shelf_import_result r;
    assert_int_equal(import_as(st, p, SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, NULL, &r), 0);
    assert_int_equal(r.n_default_type, 2); /* the skipped row is not counted */
    char *d = store_dump(st, NULL);
    assert_contains(d, "E u1 i1 view 0 1 - -\nE u1 i2 view 0 2 - -\n");
    free(d);
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    assert_string_equal(o.event_type, "view");
    o.event_type = "purchase";
    const char *q = write_file("deftype2.csv", "user,item,ts\nu2,i1,5\n");
    assert_int_equal(shelf_import_file(st, q, &o, &r), 0);
    assert_int_equal(r.n_default_type, 1);
    d = store_dump(st, NULL);
    assert_contains(d, "E u2 i1 purchase 0 5 - -\n");
    free(d);
    shelf_store_close(st);
}

/* Custom event types with weights (issue 21, item 1): added inside the
 * import's transaction, mapped onto by the type map; a failed import adds
 * none; a type that exists must keep its weight. */
static void test_event_types(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const char *p = write_file("etypes.csv", "user,item,type,ts\nu1,i1,add_to_wishlist,5\nu1,i2,cmp,6\n");
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    o.type_map = "add_to_wishlist=wishlist,cmp=compare";
    /* without the types, the map names none the store has */
    assert_int_equal(shelf_import_file(st, p, &o, NULL), SHELF_EINVAL);
    assert_non_null(strstr(shelf_store_errmsg(st), "no event type 'wishlist'"));
    /* a bad entry or a changed weight: nothing added */
    o.event_types = "wishlist=2,compare";
    assert_int_equal(shelf_import_file(st, p, &o, NULL), SHELF_EINVAL);
    assert_non_null(strstr(shelf_store_errmsg(st), "'compare': expected NAME=WEIGHT"));
    o.event_types = "wishlist=2,purchase=7";
    assert_int_equal(shelf_import_file(st, p, &o, NULL), SHELF_EINVAL);
    assert_non_null(strstr(shelf_store_errmsg(st), "'purchase' exists with weight 5, not 7"));
    assert_int_not_equal(shelf_store_event_type(st, "wishlist", NULL, NULL), 0);
    /* a file that fails later takes its types with it */
    const char *bad = write_file("etypes_bad.csv", "user,item,type,ts\nu1,i1,add_to_wishlist,x\n");
    o.event_types = "wishlist=2,compare=0.5";
    assert_int_equal(shelf_import_file(st, bad, &o, NULL), SHELF_EFORMAT);
    assert_int_not_equal(shelf_store_event_type(st, "wishlist", NULL, NULL), 0);
    shelf_import_result r;
    assert_int_equal(shelf_import_file(st, p, &o, &r), 0);
    assert_int_equal(r.n_new_types, 2);
    assert_int_equal(r.n_events, 2);
    float w;
    assert_int_equal(shelf_store_event_type(st, "compare", NULL, &w), 0);
    assert_true(w == 0.5f);
    char *d = store_dump(st, NULL);
    assert_contains(d, "E u1 i1 wishlist 0 5 - -\nE u1 i2 compare 0 6 - -\n");
    free(d);
    /* again with the same weights: nothing new (and the file already in) */
    assert_int_equal(shelf_import_file(st, p, &o, &r), 0);
    assert_int_equal(r.n_new_types, 0);
    assert_int_equal(r.already_imported, 1);
    shelf_store_close(st);
}

static void test_on_disk_unchanged(void **state)
{
    (void)state;
    const char *db = tmp_path("import_fail.db");
    char side[800];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", db, suffix[i]);
        unlink(side);
    }
    shelf_store *st = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_store_open(db, SHELF_STORE_CREATE, &st, &err), 0);
    import_ok(st, write_file("disk_good.csv", "user,item,type,ts\nu1,i1,view,5\nu2,i2,cart,6\n"), SHELF_FMT_CSV);
    shelf_store_close(st);
    uint64_t h0 = file_hash(db);

    assert_int_equal(shelf_store_open(db, 0, &st, &err), 0);
    /* fails on the last line, after a batch of new users, items and events */
    char *big = malloc(200000);
    assert_non_null(big);
    size_t n = (size_t)sprintf(big, "user,item,type,ts\n");
    for (int i = 0; i < 5000; i++) n += (size_t)sprintf(big + n, "nu%d,ni%d,view,%d\n", i, i, i);
    n += (size_t)sprintf(big + n, "nu1,ni1,view,later\n");
    const char *bad = write_bytes("disk_bad.csv", big, n);
    free(big);
    assert_int_equal(import(st, bad, SHELF_FMT_CSV), SHELF_EFORMAT);
    assert_contains(shelf_store_errmsg(st), "disk_bad.csv:5002: field 4 (ts)");
    shelf_store_close(st);
    assert_true(file_hash(db) == h0);

    assert_int_equal(shelf_store_open(db, 0, &st, &err), 0);
    assert_int_equal(n_events(st), 2);
    assert_int_equal(shelf_store_n_users(st), 2);
    shelf_store_close(st);
}

int main(void)
{
    tmp_init("import");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_s3rec),
        cmocka_unit_test(test_pairs),
        cmocka_unit_test(test_csv_events),
        cmocka_unit_test(test_shop_exports),
        cmocka_unit_test(test_csv_items_users),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_ml100k),
        cmocka_unit_test(test_taobao),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_many_lines),
        cmocka_unit_test(test_fail_seq),
        cmocka_unit_test(test_fail_csv),
        cmocka_unit_test(test_fail_jsonl),
        cmocka_unit_test(test_fail_ml_taobao),
        cmocka_unit_test(test_on_disk_unchanged),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_default_type),
        cmocka_unit_test(test_event_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
