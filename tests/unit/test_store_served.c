/* test_store_served.c: the served log of the store: whole slates written in
 * the caller's transaction and read back by time (shelf_store_log_slate,
 * shelf_store_served_foreach), the move of version-2 rows by migration 3, and
 * forgetting a user's slates with their items. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <sqlite3.h>

#include "shelf/shelf.h"
#include "test_util.h"

const char *shelf__store_migration(int version); /* internal: the SQL of migration N */

/* ---- helpers ---------------------------------------------------------------------- */

/* A store with users u0..u2 and items i0..i5. */
static shelf_store *shop(const char *path)
{
    shelf_store *st = NULL;
    shelf_err e = {0};
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &st, &e), 0);
    char id[8];
    uint32_t idx;
    for (int u = 0; u < 3; u++) {
        snprintf(id, sizeof id, "u%d", u);
        assert_int_equal(shelf_store_user_idx(st, id, strlen(id), 1, &idx, NULL), 0);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof id, "i%d", i);
        assert_int_equal(shelf_store_item_idx(st, id, strlen(id), 1, &idx, NULL), 0);
    }
    return st;
}

/* Fills sl with n items: item first + k at position k, score 1/(k+1),
 * propensity 1, no reason. */
static void make_slate(shelf_slate *sl, const char *rec, int64_t ts, uint32_t user, uint32_t n, uint32_t first)
{
    assert_int_equal(shelf_slate_reserve(sl, n ? n : 1), 0);
    snprintf(sl->rec_id, sizeof sl->rec_id, "%s", rec);
    sl->ts = ts;
    sl->user = user;
    snprintf(sl->source, sizeof sl->source, "popular");
    for (uint32_t k = 0; k < n; k++)
        sl->items[k] = (shelf_slate_item){.item = first + k, .position = k, .score = 1.0f / (float)(k + 1),
                                          .propensity = 1, .source = "popular", .reason_item = SHELF_NONE};
    sl->n = n;
}

static void log_slate(shelf_store *st, const shelf_slate *sl)
{
    int rc = shelf_store_log_slate(st, sl);
    if (rc) fprintf(stderr, "log slate: %s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
}

/* What foreach gave: deep copies of up to 16 slates. */
typedef struct seen {
    int n, stop_at; /* stop_at: return 9 from the call with this count (0: never) */
    shelf_slate s[16];
} seen;

static int collect(void *ctx, const shelf_slate *sl)
{
    seen *v = ctx;
    assert_true(v->n < 16);
    shelf_slate *c = &v->s[v->n++];
    *c = *sl;
    c->items = sl->n ? malloc(sl->n * sizeof *c->items) : NULL;
    if (sl->n) memcpy(c->items, sl->items, sl->n * sizeof *c->items);
    c->cap = sl->n;
    return v->stop_at && v->n == v->stop_at ? 9 : 0;
}

static void seen_free(seen *v)
{
    for (int i = 0; i < v->n; i++) free(v->s[i].items);
    memset(v, 0, sizeof *v);
}

/* tmp_path(name), with no store (or WAL of one) left from an earlier run. */
static const char *fresh_path(const char *name)
{
    const char *path = tmp_path(name);
    char side[800];
    remove(path);
    snprintf(side, sizeof side, "%s-wal", path);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", path);
    remove(side);
    return path;
}

static int64_t count_rows(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* ---- tests -------------------------------------------------------------------------- */

/* Slates of a known shopper (with reasons) and anonymous ones (without),
 * logged in one transaction, come back field by field in (ts, rec_id)
 * order with their items in position order. */
static void test_log_and_read(void **state)
{
    (void)state;
    shelf_store *st = shop(":memory:");
    shelf_slate a = {0}, b = {0}, c = {0}, d = {0};
    make_slate(&a, "rec-b", 100, 1, 3, 2); /* u1: i2 i3 i4 */
    snprintf(a.scenario, sizeof a.scenario, "home");
    snprintf(a.variant, sizeof a.variant, "B");
    snprintf(a.model, sizeof a.model, "als");
    snprintf(a.model_version, sizeof a.model_version, "als-2026-12-04");
    snprintf(a.source, sizeof a.source, "model");
    a.n_skipped = 2;
    a.items[0].reason_item = 0; /* "because you bought i0" */
    a.items[0].reason_weight = 0.75f;
    snprintf(a.items[0].reason, sizeof a.items[0].reason, "because you bought i0");
    snprintf(a.items[0].source, sizeof a.items[0].source, "model");
    a.items[1].propensity = 0.25f;
    snprintf(a.items[2].reason, sizeof a.items[2].reason, "popular with shoppers"); /* text, no item */
    /* positions need not follow the array: the reader sorts them */
    a.items[1].position = 2;
    a.items[2].position = 1;
    make_slate(&b, "rec-z", 50, SHELF_NONE, 2, 0); /* anonymous, earlier */
    make_slate(&c, "rec-a", 100, 0, 1, 5);         /* same time as a, smaller rec_id */
    make_slate(&d, "rec-c", 100, SHELF_NONE, 0, 0); /* an empty slate */

    assert_int_equal(shelf_store_begin(st), 0);
    log_slate(st, &a);
    log_slate(st, &b);
    log_slate(st, &c);
    log_slate(st, &d);
    assert_int_equal(shelf_store_commit(st), 0);

    seen v = {0};
    assert_int_equal(shelf_store_served_foreach(st, 0, collect, &v), 0);
    assert_int_equal(v.n, 4);
    assert_string_equal(v.s[0].rec_id, "rec-z");
    assert_string_equal(v.s[1].rec_id, "rec-a");
    assert_string_equal(v.s[2].rec_id, "rec-b");
    assert_string_equal(v.s[3].rec_id, "rec-c");

    const shelf_slate *z = &v.s[0];
    assert_int_equal(z->ts, 50);
    assert_int_equal(z->user, SHELF_NONE);
    assert_string_equal(z->scenario, "");
    assert_string_equal(z->source, "popular");
    assert_int_equal(z->n, 2);
    assert_int_equal(z->items[1].item, 1);
    assert_int_equal(z->items[1].position, 1);
    assert_true(z->items[1].score == 0.5f);
    assert_int_equal(z->items[1].reason_item, SHELF_NONE);
    assert_string_equal(z->items[1].reason, "");

    const shelf_slate *r = &v.s[2];
    assert_int_equal(r->ts, 100);
    assert_int_equal(r->user, 1);
    assert_string_equal(r->scenario, "home");
    assert_string_equal(r->variant, "B");
    assert_string_equal(r->model, "als");
    assert_string_equal(r->model_version, "als-2026-12-04");
    assert_string_equal(r->source, "model");
    assert_int_equal(r->n_skipped, 2);
    assert_int_equal(r->n, 3);
    for (uint32_t k = 0; k < 3; k++) assert_int_equal(r->items[k].position, k);
    assert_int_equal(r->items[0].item, 2);
    assert_int_equal(r->items[1].item, 4); /* position 1 was array slot 2 */
    assert_int_equal(r->items[2].item, 3);
    assert_true(r->items[0].score == 1.0f);
    assert_true(r->items[2].score == 0.5f);
    assert_true(r->items[2].propensity == 0.25f);
    assert_true(r->items[0].propensity == 1.0f);
    assert_string_equal(r->items[0].source, "model");
    assert_string_equal(r->items[1].source, "popular");
    assert_int_equal(r->items[0].reason_item, 0);
    assert_true(r->items[0].reason_weight == 0.75f);
    assert_string_equal(r->items[0].reason, "because you bought i0");
    assert_int_equal(r->items[1].reason_item, SHELF_NONE);
    assert_string_equal(r->items[1].reason, "popular with shoppers");
    assert_int_equal(v.s[1].user, 0);
    assert_int_equal(v.s[1].items[0].item, 5);
    assert_int_equal(v.s[3].n, 0);

    shelf_store_stats stats;
    assert_int_equal(shelf_store_stats_get(st, &stats), 0);
    assert_int_equal(stats.n_served, 4);
    seen_free(&v);
    shelf_slate_free(&a);
    shelf_slate_free(&b);
    shelf_slate_free(&c);
    shelf_slate_free(&d);
    shelf_store_close(st);
}

/* A slate that fails inside the caller's transaction leaves none of its rows,
 * and the transaction goes on; bad slates are refused with the reason. */
static void test_failures_in_transaction(void **state)
{
    (void)state;
    shelf_store *st = shop(":memory:");
    shelf_slate ok = {0}, bad = {0};
    make_slate(&ok, "ok", 10, 0, 2, 0);
    assert_int_equal(shelf_store_begin(st), 0);
    log_slate(st, &ok);
    assert_int_equal(shelf_store_log_slate(st, &ok), SHELF_ESTORE); /* rec_id is unique */
    make_slate(&bad, "dup-position", 11, 0, 3, 0);
    bad.items[2].position = 0; /* the header and two items are written before this fails */
    assert_int_equal(shelf_store_log_slate(st, &bad), SHELF_ESTORE);
    make_slate(&bad, "unknown-item", 11, 0, 1, 0);
    bad.items[0].item = 6;
    assert_int_equal(shelf_store_log_slate(st, &bad), SHELF_EINVAL);
    assert_non_null(strstr(shelf_store_errmsg(st), "unknown item 6"));
    make_slate(&bad, "unknown-user", 11, 3, 1, 0);
    assert_int_equal(shelf_store_log_slate(st, &bad), SHELF_EINVAL);
    assert_non_null(strstr(shelf_store_errmsg(st), "unknown user 3"));
    make_slate(&bad, "nan", 11, 0, 1, 0);
    bad.items[0].score = NAN;
    assert_int_equal(shelf_store_log_slate(st, &bad), SHELF_EINVAL);
    make_slate(&bad, "", 11, 0, 1, 0);
    assert_int_equal(shelf_store_log_slate(st, &bad), SHELF_EINVAL);
    make_slate(&bad, "late", 12, 2, 1, 3);
    log_slate(st, &bad);
    assert_int_equal(shelf_store_commit(st), 0);

    seen v = {0};
    assert_int_equal(shelf_store_served_foreach(st, 0, collect, &v), 0);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.s[0].rec_id, "ok");
    assert_int_equal(v.s[0].n, 2);
    assert_string_equal(v.s[1].rec_id, "late");
    assert_int_equal(v.s[1].n, 1);
    seen_free(&v);

    /* rolled back with the caller's transaction */
    make_slate(&bad, "gone", 13, 0, 1, 0);
    assert_int_equal(shelf_store_begin(st), 0);
    log_slate(st, &bad);
    assert_int_equal(shelf_store_rollback(st), 0);
    assert_int_equal(shelf_store_served_foreach(st, 13, collect, &v), 0);
    assert_int_equal(v.n, 0);
    /* outside a transaction: its own */
    log_slate(st, &bad);
    assert_int_equal(shelf_store_served_foreach(st, 13, collect, &v), 0);
    assert_int_equal(v.n, 1);
    seen_free(&v);
    shelf_slate_free(&ok);
    shelf_slate_free(&bad);
    shelf_store_close(st);
}

/* since is inclusive; a non-zero return from the callback stops the scan. */
static void test_since_and_stop(void **state)
{
    (void)state;
    shelf_store *st = shop(":memory:");
    shelf_slate sl = {0};
    const int64_t ts[] = {300, 100, 200, 200, 400};
    const char *rec[] = {"r300", "r100", "r200b", "r200a", "r400"};
    for (int k = 0; k < 5; k++) {
        make_slate(&sl, rec[k], ts[k], SHELF_NONE, 2, (uint32_t)k);
        log_slate(st, &sl);
    }
    seen v = {0};
    assert_int_equal(shelf_store_served_foreach(st, 200, collect, &v), 0);
    assert_int_equal(v.n, 4);
    assert_string_equal(v.s[0].rec_id, "r200a");
    assert_string_equal(v.s[1].rec_id, "r200b");
    assert_string_equal(v.s[2].rec_id, "r300");
    assert_string_equal(v.s[3].rec_id, "r400");
    assert_int_equal(v.s[3].items[1].item, 5);
    seen_free(&v);
    assert_int_equal(shelf_store_served_foreach(st, 401, collect, &v), 0);
    assert_int_equal(v.n, 0);
    assert_int_equal(shelf_store_served_foreach(st, INT64_MIN, collect, &v), 0);
    assert_int_equal(v.n, 5);
    seen_free(&v);

    v.stop_at = 2;
    assert_int_equal(shelf_store_served_foreach(st, 0, collect, &v), 9);
    assert_int_equal(v.n, 2);
    assert_int_equal(v.s[1].n, 2); /* the slate it stopped at was whole */
    seen_free(&v);
    v.stop_at = 5; /* the last slate's return counts too */
    assert_int_equal(shelf_store_served_foreach(st, 0, collect, &v), 9);
    assert_int_equal(v.n, 5);
    seen_free(&v);
    shelf_slate_free(&sl);
    shelf_store_close(st);
}

/* A store as a version-2 build left it, with served rows in the JSON
 * columns, migrates: its slates read back with their items; new ones log. */
static void test_migrate_from_v2(void **state)
{
    (void)state;
    const char *path = fresh_path("v2.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, shelf__store_migration(1), NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, shelf__store_migration(2), NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA user_version=2;"
                                  "INSERT INTO users(idx, ext_id) VALUES(0, 'u0');"
                                  "INSERT INTO items(idx, ext_id) VALUES(0, 'i0'), (1, 'i1'), (2, 'i2');"
                                  "INSERT INTO served(rec_id, user, ts, strategy, variant, items, scores,"
                                  "  propensities) VALUES('old-1', 0, 20, 'model', 'A', '[2,0,1]',"
                                  "  '[0.5,0.25,0.125]', '[1,0.5,0.25]');"
                                  "INSERT INTO served(rec_id, user, ts, items) VALUES('old-2', NULL, 10, '[1]');"
                                  "INSERT INTO served(rec_id, user, ts, items) VALUES('old-3', 0, 30, 'not json');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    shelf_store *st = NULL;
    shelf_err e = {0};
    assert_int_equal(shelf_store_open(path, 0, &st, &e), 0);
    assert_int_equal(shelf_store_schema_version(st), shelf_store_schema_latest());
    seen v = {0};
    assert_int_equal(shelf_store_served_foreach(st, 0, collect, &v), 0);
    assert_int_equal(v.n, 3);
    assert_string_equal(v.s[0].rec_id, "old-2");
    assert_int_equal(v.s[0].user, SHELF_NONE);
    assert_int_equal(v.s[0].n, 1);
    assert_int_equal(v.s[0].items[0].item, 1);
    assert_true(v.s[0].items[0].score == 0.0f);      /* none kept */
    assert_true(v.s[0].items[0].propensity == 1.0f); /* none kept */
    assert_string_equal(v.s[0].source, "");
    const shelf_slate *o = &v.s[1];
    assert_string_equal(o->rec_id, "old-1");
    assert_int_equal(o->user, 0);
    assert_int_equal(o->ts, 20);
    assert_string_equal(o->variant, "A");
    assert_string_equal(o->source, "model"); /* the strategy */
    assert_string_equal(o->scenario, "");
    assert_int_equal(o->n, 3);
    assert_int_equal(o->items[0].item, 2);
    assert_int_equal(o->items[1].item, 0);
    assert_int_equal(o->items[2].item, 1);
    assert_true(o->items[1].score == 0.25f);
    assert_true(o->items[2].propensity == 0.25f);
    assert_string_equal(o->items[2].source, "model");
    assert_int_equal(o->items[2].reason_item, SHELF_NONE);
    assert_string_equal(v.s[2].rec_id, "old-3"); /* bad JSON: the header without items */
    assert_int_equal(v.s[2].n, 0);
    seen_free(&v);

    shelf_slate sl = {0};
    make_slate(&sl, "new-1", 40, 0, 2, 1);
    log_slate(st, &sl);
    assert_int_equal(shelf_store_served_foreach(st, 25, collect, &v), 0);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.s[1].rec_id, "new-1");
    seen_free(&v);
    shelf_store_stats stats;
    assert_int_equal(shelf_store_stats_get(st, &stats), 0);
    assert_int_equal(stats.n_served, 4);
    assert_int_equal(shelf_store_delete_user(st, "u0", 2, NULL), 0);
    shelf_store_close(st);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM served"), 1); /* old-2, anonymous */
    assert_int_equal(count_rows(path, "SELECT count(*) FROM served_items"), 1);
    /* reading by time goes through the index */
    assert_int_equal(count_rows(path, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='served_ts'"),
                     1);
    shelf_slate_free(&sl);
}

/* Forgetting a user deletes its slates and their item rows, in the open
 * transaction or in its own; others' slates stay. */
static void test_delete_user_slates(void **state)
{
    (void)state;
    const char *path = fresh_path("forget.db");
    shelf_store *st = shop(path);
    shelf_slate sl = {0};
    make_slate(&sl, "u0-a", 1, 0, 3, 0);
    log_slate(st, &sl);
    make_slate(&sl, "u0-b", 2, 0, 2, 1);
    log_slate(st, &sl);
    make_slate(&sl, "u1-a", 3, 1, 2, 2);
    log_slate(st, &sl);
    make_slate(&sl, "anon", 4, SHELF_NONE, 1, 3);
    log_slate(st, &sl);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM served_items"), 8);

    assert_int_equal(shelf_store_begin(st), 0);
    assert_int_equal(shelf_store_delete_user(st, "u0", 2, NULL), 0);
    assert_int_equal(shelf_store_commit(st), 0);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM served_items"), 3);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM served_items i JOIN served s ON s.id = i.slate WHERE s.rec_id LIKE 'u0-%'"), 0);
    seen v = {0};
    assert_int_equal(shelf_store_served_foreach(st, 0, collect, &v), 0);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.s[0].rec_id, "u1-a");
    assert_string_equal(v.s[1].rec_id, "anon");
    seen_free(&v);
    /* no item row was left behind: the rec_id is free again */
    make_slate(&sl, "u0-a", 5, 2, 3, 0);
    log_slate(st, &sl);

    assert_int_equal(shelf_store_delete_user(st, "u1", 2, NULL), 0); /* its own transaction */
    assert_int_equal(count_rows(path, "SELECT count(*) FROM served_items"), 4);
    shelf_store_stats stats;
    assert_int_equal(shelf_store_stats_get(st, &stats), 0);
    assert_int_equal(stats.n_served, 2);
    shelf_slate_free(&sl);
    shelf_store_close(st);
}

int main(void)
{
    tmp_init("store_served");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_and_read),    cmocka_unit_test(test_failures_in_transaction),
        cmocka_unit_test(test_since_and_stop),  cmocka_unit_test(test_migrate_from_v2),
        cmocka_unit_test(test_delete_user_slates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
