/* test_store.c: the SQLite store: migrations, id maps, transactions, rows,
 * scans, the served log and statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shelf/shelf.h"

static shelf_store *mem_store(void)
{
    shelf_store *st = NULL;
    shelf_err e = {0};
    assert_int_equal(shelf_store_open(":memory:", SHELF_STORE_CREATE, &st, &e), 0);
    return st;
}

static void tmp_path(char *buf, size_t cap, const char *name)
{
    const char *dir = getenv("SHELF_TEST_TMP");
    if (!dir) dir = "/tmp";
    mkdir(dir, 0755);
    snprintf(buf, cap, "%s/store_%s", dir, name);
    remove(buf);
    char side[600];
    snprintf(side, sizeof side, "%s-wal", buf);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", buf);
    remove(side);
}

static void test_open_and_schema(void **state)
{
    (void)state;
    shelf_store *st = mem_store();
    assert_int_equal(shelf_store_schema_version(st), shelf_store_schema_latest());
    assert_true(shelf_store_schema_latest() >= 1);
    assert_int_equal(shelf_store_n_users(st), 0);
    assert_int_equal(shelf_store_n_items(st), 0);
    shelf_store_close(st);
    shelf_store_close(NULL);

    shelf_err e = {0};
    char path[512];
    tmp_path(path, sizeof path, "missing.db");
    assert_int_not_equal(shelf_store_open(path, 0, &st, &e), 0); /* no CREATE: refused */
    assert_non_null(strstr(e.msg, "store_missing.db"));

    /* a file that is not a store is refused and left alone */
    tmp_path(path, sizeof path, "notastore.db");
    FILE *f = fopen(path, "w");
    fputs("hello, I am a text file\n", f);
    fclose(f);
    st = NULL;
    assert_int_not_equal(shelf_store_open(path, SHELF_STORE_CREATE, &st, &e), 0);
    assert_null(st);
    assert_non_null(strstr(e.msg, "notastore.db"));
}

static void test_id_maps_and_rollback(void **state)
{
    (void)state;
    shelf_store *st = mem_store();
    uint32_t idx;
    int created;
    assert_int_equal(shelf_store_user_idx(st, "alice", 5, 1, &idx, &created), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(created, 1);
    assert_int_equal(shelf_store_user_idx(st, "bob", 3, 1, &idx, &created), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(shelf_store_user_idx(st, "alice", 5, 1, &idx, &created), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(created, 0);
    assert_int_equal(shelf_store_user_idx(st, "carol", 5, 0, &idx, NULL), SHELF_ENOTFOUND);
    assert_non_null(strstr(shelf_store_errmsg(st), "carol"));
    assert_int_equal(shelf_store_user_idx(st, "", 0, 1, &idx, NULL), SHELF_EINVAL);

    /* ids created inside a rolled-back transaction vanish, indices are reused */
    assert_int_equal(shelf_store_begin(st), 0);
    assert_int_equal(shelf_store_begin(st), SHELF_EINVAL); /* not nested */
    assert_int_equal(shelf_store_user_idx(st, "dave", 4, 1, &idx, NULL), 0);
    assert_int_equal(idx, 2);
    assert_int_equal(shelf_store_item_idx(st, "i1", 2, 1, &idx, NULL), 0);
    assert_int_equal(shelf_store_rollback(st), 0);
    assert_int_equal(shelf_store_n_users(st), 2);
    assert_int_equal(shelf_store_n_items(st), 0);
    assert_int_equal(shelf_store_user_idx(st, "dave", 4, 0, &idx, NULL), SHELF_ENOTFOUND);
    assert_int_equal(shelf_store_user_idx(st, "erin", 4, 1, &idx, NULL), 0);
    assert_int_equal(idx, 2);

    assert_int_equal(shelf_store_begin(st), 0);
    assert_int_equal(shelf_store_item_idx(st, "i1", 2, 1, &idx, NULL), 0);
    assert_int_equal(shelf_store_commit(st), 0);
    assert_int_equal(shelf_store_commit(st), SHELF_EINVAL);
    assert_int_equal(shelf_store_n_items(st), 1);
    char buf[64];
    assert_int_equal(shelf_store_user_ext(st, 2, buf, sizeof buf), 0);
    assert_string_equal(buf, "erin");
    assert_int_equal(shelf_store_item_ext(st, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "i1");
    assert_int_equal(shelf_store_item_ext(st, 5, buf, sizeof buf), SHELF_ENOTFOUND);
    shelf_store_close(st);
}

static void test_event_types(void **state)
{
    (void)state;
    shelf_store *st = mem_store();
    uint32_t t;
    float w;
    assert_int_equal(shelf_store_event_type(st, "purchase", &t, &w), 0);
    assert_string_equal(shelf_store_event_type_name(st, t), "purchase");
    assert_true(w > 1.0f);
    assert_int_equal(shelf_store_event_type(st, "dislike", &t, &w), 0);
    assert_true(w < 0.0f);
    assert_int_equal(shelf_store_event_type(st, "teleport", &t, &w), SHELF_ENOTFOUND);
    assert_non_null(strstr(shelf_store_errmsg(st), "teleport"));
    uint32_t n = shelf_store_n_event_types(st);
    assert_int_equal(shelf_store_add_event_type(st, "wishlist", 1.5f, &t), 0);
    assert_int_equal(t, n);
    assert_int_equal(shelf_store_add_event_type(st, "wishlist", 1.5f, &t), SHELF_EEXIST);
    assert_int_equal(shelf_store_event_type(st, "wishlist", &t, &w), 0);
    assert_true(w == 1.5f);
    assert_null(shelf_store_event_type_name(st, 1000));
    shelf_store_close(st);
}

typedef struct collected {
    shelf_event ev[16];
    char rec[16][32];
    uint64_t id[16];
    int n;
} collected;

static int collect(void *ctx, uint64_t id, const shelf_event *e)
{
    collected *c = ctx;
    c->ev[c->n] = *e;
    snprintf(c->rec[c->n], 32, "%s", e->rec_id ? e->rec_id : "");
    c->ev[c->n].rec_id = NULL;
    c->ev[c->n].context = NULL;
    c->id[c->n] = id;
    c->n++;
    return 0;
}

static int stop_after_one(void *ctx, uint64_t id, const shelf_event *e)
{
    (*(int *)ctx)++;
    return 42;
}

static void test_events(void **state)
{
    (void)state;
    shelf_store *st = mem_store();
    uint32_t u0, u1, i0, i1, view, buy;
    shelf_store_user_idx(st, "u0", 2, 1, &u0, NULL);
    shelf_store_user_idx(st, "u1", 2, 1, &u1, NULL);
    shelf_store_item_idx(st, "a", 1, 1, &i0, NULL);
    shelf_store_item_idx(st, "b", 1, 1, &i1, NULL);
    shelf_store_event_type(st, "view", &view, NULL);
    shelf_store_event_type(st, "purchase", &buy, NULL);
    shelf_event ev[] = {
        {u0, i0, view, 0, 100, NULL, NULL},
        {u0, i1, buy, 2, 90, "r1", "{\"page\":\"home\"}"},
        {u1, i1, view, 0, 100, NULL, NULL},
    };
    assert_int_equal(shelf_store_add_events(st, ev, 3), 0);
    /* a bad event in a batch: nothing of the batch is stored */
    shelf_event bad[] = {{u0, i0, view, 0, 1, NULL, NULL}, {u0, 77, view, 0, 1, NULL, NULL}};
    assert_int_equal(shelf_store_add_events(st, bad, 2), SHELF_EINVAL);
    assert_non_null(strstr(shelf_store_errmsg(st), "item 77"));
    collected c = {0};
    assert_int_equal(shelf_store_foreach_event(st, collect, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ev[1].item, i1);
    assert_int_equal(c.ev[1].type, buy);
    assert_true(c.ev[1].value == 2.0f);
    assert_int_equal(c.ev[1].ts, 90);
    assert_string_equal(c.rec[1], "r1");
    assert_true(c.id[0] < c.id[1] && c.id[1] < c.id[2]); /* insertion order */
    int calls = 0;
    assert_int_equal(shelf_store_foreach_event(st, stop_after_one, &calls), 42);
    assert_int_equal(calls, 1);

    shelf_store_stats s;
    assert_int_equal(shelf_store_stats_get(st, &s), 0);
    assert_int_equal(s.n_users, 2);
    assert_int_equal(s.n_items, 2);
    assert_int_equal(s.n_events, 3);
    assert_int_equal(s.type_count[view], 2);
    assert_int_equal(s.type_count[buy], 1);
    assert_int_equal(s.n_pairs, 3);
    assert_true(s.density == 0.75);
    assert_int_equal(s.seq_min, 1);
    assert_int_equal(s.seq_max, 2);
    assert_true(s.seq_mean == 1.5);
    assert_int_equal(s.ts_min, 90);
    assert_int_equal(s.ts_max, 100);
    shelf_store_close(st);
}

static int item_rows(void *ctx, uint32_t idx, const shelf_item *it)
{
    shelf_item *out = ctx;
    if (idx == 0) {
        out->has_price = it->has_price;
        out->price = it->price;
        out->available = it->available;
        out->created = it->created;
        out->category = it->category ? strdup(it->category) : NULL;
        out->kind = strdup(it->kind);
    }
    return 0;
}

static int attr_links(void *ctx, uint32_t item, uint32_t attr)
{
    int *n = ctx;
    (*n)++;
    return 0;
}

static void test_items_users_attrs(void **state)
{
    (void)state;
    shelf_store *st = mem_store();
    shelf_item it = {.id = "sku1", .title = "Red shoe", .category = "Shoes/Sneakers", .brand = "Acme",
                     .price = 49.5, .has_price = 1, .available = 1, .created = 1000};
    uint32_t idx;
    assert_int_equal(shelf_store_put_item(st, &it, &idx), 0);
    assert_int_equal(idx, 0);
    it.price = 39.5;
    it.kind = "campaign";
    it.available = 0;
    assert_int_equal(shelf_store_put_item(st, &it, &idx), 0); /* update keeps the index */
    assert_int_equal(idx, 0);
    assert_int_equal(shelf_store_n_items(st), 1);
    shelf_item got = {0};
    assert_int_equal(shelf_store_foreach_item(st, item_rows, &got), 0);
    assert_true(got.has_price && got.price == 39.5);
    assert_int_equal(got.available, 0);
    assert_int_equal(got.created, 1000);
    assert_string_equal(got.category, "Shoes/Sneakers");
    assert_string_equal(got.kind, "campaign");
    free((char *)got.category);
    free((char *)got.kind);
    shelf_item noid = {0};
    assert_int_equal(shelf_store_put_item(st, &noid, NULL), SHELF_EINVAL);

    assert_int_equal(shelf_store_item_add_attr(st, 0, "color=red", 9), 0);
    assert_int_equal(shelf_store_item_add_attr(st, 0, "color=red", 9), 0); /* duplicate ignored */
    assert_int_equal(shelf_store_item_add_attr(st, 0, "size=42", 7), 0);
    assert_int_equal(shelf_store_item_add_attr(st, 5, "size=42", 7), SHELF_EINVAL);
    int links = 0;
    uint32_t n_attrs = 0;
    assert_int_equal(shelf_store_foreach_item_attr(st, attr_links, &links, &n_attrs), 0);
    assert_int_equal(links, 2);
    assert_int_equal(n_attrs, 2);
    char name[32];
    assert_int_equal(shelf_store_attr_name(st, 1, name, sizeof name), 0);
    assert_string_equal(name, "size=42");

    shelf_user u = {.id = "alice", .attributes = "{\"segment\":\"vip\"}"};
    assert_int_equal(shelf_store_put_user(st, &u, &idx), 0);
    assert_int_equal(idx, 0);

    uint32_t items[] = {0};
    float scores[] = {0.5f}, props[] = {1.0f};
    shelf_served sv = {.rec_id = "rec-1", .user = 0, .ts = 5, .strategy = "pop", .n = 1,
                       .items = items, .scores = scores, .propensities = props};
    assert_int_equal(shelf_store_log_served(st, &sv), 0);
    assert_int_equal(shelf_store_log_served(st, &sv), SHELF_ESTORE); /* rec_id is unique */
    shelf_store_stats s;
    assert_int_equal(shelf_store_stats_get(st, &s), 0);
    assert_int_equal(s.n_served, 1);
    assert_int_equal(s.n_attrs, 2);
    shelf_store_close(st);
}

static void test_on_disk_wal_and_reopen(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "disk.db");
    shelf_store *st = NULL;
    shelf_err e = {0};
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &st, &e), 0);
    uint32_t u, i, t;
    shelf_store_user_idx(st, "u", 1, 1, &u, NULL);
    shelf_store_item_idx(st, "i", 1, 1, &i, NULL);
    shelf_store_event_type(st, "cart", &t, NULL);
    shelf_event ev = {u, i, t, 1, 7, NULL, NULL};
    assert_int_equal(shelf_store_add_events(st, &ev, 1), 0);
    shelf_store_close(st);

    assert_int_equal(shelf_store_open(path, SHELF_STORE_READONLY, &st, &e), 0);
    assert_int_equal(shelf_store_n_users(st), 1);
    assert_int_equal(shelf_store_user_idx(st, "u", 1, 0, &u, NULL), 0);
    shelf_store_stats s;
    assert_int_equal(shelf_store_stats_get(st, &s), 0);
    assert_int_equal(s.n_events, 1);
    shelf_store_close(st);

    /* the journal mode is WAL: its header bytes 18-19 are 2 */
    FILE *f = fopen(path, "rb");
    unsigned char hdr[20];
    assert_int_equal(fread(hdr, 1, 20, f), 20);
    fclose(f);
    assert_int_equal(hdr[18], 2);
    assert_int_equal(hdr[19], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_schema),   cmocka_unit_test(test_id_maps_and_rollback),
        cmocka_unit_test(test_event_types),       cmocka_unit_test(test_events),
        cmocka_unit_test(test_items_users_attrs), cmocka_unit_test(test_on_disk_wal_and_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
