/* test_store.c: the SQLite store: migrations, id maps, transactions, rows,
 * scans, deletion, API keys, the served log and statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>

#include <sqlite3.h>

#include "shelf/shelf.h"
#include "store/meta_int.h"

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

/* a lazy transaction commits like any other (what it wrote is there for
 * another connection and after a reopen); it does not nest */
static void test_begin_lazy(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "lazy.db");
    remove(path);
    shelf_store *a, *b;
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &a, NULL), 0);
    uint32_t u, i;
    assert_int_equal(shelf_store_begin_lazy(a), 0);
    assert_int_equal(shelf_store_begin_lazy(a), SHELF_EINVAL);
    assert_int_equal(shelf_store_begin(a), SHELF_EINVAL);
    assert_int_equal(shelf_store_user_idx(a, "u", 1, 1, &u, NULL), 0);
    assert_int_equal(shelf_store_item_idx(a, "i", 1, 1, &i, NULL), 0);
    shelf_event ev = {u, i, 0, 0, 1, NULL, NULL};
    assert_int_equal(shelf_store_add_events(a, &ev, 1), 0);
    assert_int_equal(shelf_store_commit(a), 0);
    assert_int_equal(shelf_store_open(path, 0, &b, NULL), 0);
    collected c = {0};
    assert_int_equal(shelf_store_foreach_event(b, 0, collect, &c), 0);
    assert_int_equal(c.n, 1);
    shelf_store_close(b);
    /* and a rolled-back one leaves nothing */
    assert_int_equal(shelf_store_begin_lazy(a), 0);
    assert_int_equal(shelf_store_add_events(a, &ev, 1), 0);
    assert_int_equal(shelf_store_rollback(a), 0);
    shelf_store_close(a);
    assert_int_equal(shelf_store_open(path, 0, &b, NULL), 0);
    collected d = {0};
    assert_int_equal(shelf_store_foreach_event(b, 0, collect, &d), 0);
    assert_int_equal(d.n, 1);
    shelf_store_close(b);
}

/* scenarios: stored, replaced, listed in name order, deleted, kept across
 * a reopen; a missing one is SHELF_ENOTFOUND */
typedef struct scn_list {
    char names[4][16];
    int n;
} scn_list;

static int collect_scn(void *ctx, const char *name, const char *doc, int64_t updated)
{
    scn_list *l = ctx;
    (void)doc;
    (void)updated;
    if (l->n < 4) snprintf(l->names[l->n++], sizeof l->names[0], "%s", name);
    return 0;
}

static void test_scenarios(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "scenarios.db");
    remove(path);
    shelf_store *st;
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &st, NULL), 0);
    char *doc = NULL;
    int64_t when = 0;
    assert_int_equal(shelf__store_scenario_get(st, "home", &doc, &when), SHELF_ENOTFOUND);
    assert_non_null(strstr(shelf_store_errmsg(st), "no scenario named 'home'"));
    assert_int_equal(shelf__store_scenario_put(st, "home", "{}", 10), 0);
    assert_int_equal(shelf__store_scenario_put(st, "cart", "{\"kinds\": [\"product\"]}", 11), 0);
    assert_int_equal(shelf__store_scenario_put(st, "home", "{\"fusion\": \"rrf\"}", 12), 0); /* replaced */
    assert_int_equal(shelf__store_scenario_get(st, "home", &doc, &when), 0);
    assert_string_equal(doc, "{\"fusion\": \"rrf\"}");
    assert_int_equal(when, 12);
    free(doc);
    scn_list l = {0};
    assert_int_equal(shelf__store_scenario_foreach(st, collect_scn, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.names[0], "cart");
    assert_string_equal(l.names[1], "home");
    assert_int_equal(shelf__store_scenario_delete(st, "cart"), 0);
    assert_int_equal(shelf__store_scenario_delete(st, "cart"), SHELF_ENOTFOUND);
    shelf_store_close(st);
    assert_int_equal(shelf_store_open(path, 0, &st, NULL), 0);
    l = (scn_list){0};
    assert_int_equal(shelf__store_scenario_foreach(st, collect_scn, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.names[0], "home");
    shelf_store_close(st);
}

/* a PostgreSQL address is refused by name: this build has only SQLite */
static void test_backend_choice(void **state)
{
    (void)state;
    shelf_store *st = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_store_open("postgres://db/shop", 0, &st, &err), SHELF_EINVAL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "PostgreSQL"));
    assert_int_equal(shelf_store_open("postgresql://db/shop", 0, &st, &err), SHELF_EINVAL);
}

/* a read transaction keeps one view while another connection writes */
static void test_read_view(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "view.db");
    remove(path);
    shelf_store *a, *b;
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &a, NULL), 0);
    assert_int_equal(shelf_store_open(path, 0, &b, NULL), 0);
    uint32_t u, i;
    assert_int_equal(shelf_store_user_idx(b, "u", 1, 1, &u, NULL), 0);
    assert_int_equal(shelf_store_item_idx(b, "i", 1, 1, &i, NULL), 0);
    shelf_event ev = {u, i, 0, 0, 1, NULL, NULL};
    assert_int_equal(shelf_store_add_events(b, &ev, 1), 0);
    assert_int_equal(shelf_store_begin_read(a), 0);
    assert_int_equal(shelf_store_begin_read(a), SHELF_EINVAL); /* not nested */
    collected c1 = {0};
    assert_int_equal(shelf_store_foreach_event(a, 0, collect, &c1), 0);
    assert_int_equal(shelf_store_add_events(b, &ev, 1), 0); /* not blocked by the reader */
    assert_int_equal(shelf_store_user_idx(b, "v", 1, 1, &u, NULL), 0);
    collected c2 = {0};
    assert_int_equal(shelf_store_foreach_event(a, 0, collect, &c2), 0);
    assert_int_equal(c1.n, 1);
    assert_int_equal(c2.n, 1); /* the same view */
    assert_int_equal(shelf_store_n_users(a), 1);
    assert_int_equal(shelf_store_commit(a), 0);
    collected c3 = {0};
    assert_int_equal(shelf_store_foreach_event(a, 0, collect, &c3), 0);
    assert_int_equal(c3.n, 2);
    assert_int_equal(shelf_store_n_users(a), 2);
    shelf_store_close(a);
    shelf_store_close(b);
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
    assert_int_equal(shelf_store_foreach_event(st, 0, collect, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ev[1].item, i1);
    assert_int_equal(c.ev[1].type, buy);
    assert_true(c.ev[1].value == 2.0f);
    assert_int_equal(c.ev[1].ts, 90);
    assert_string_equal(c.rec[1], "r1");
    assert_true(c.id[0] < c.id[1] && c.id[1] < c.id[2]); /* insertion order */
    int calls = 0;
    assert_int_equal(shelf_store_foreach_event(st, 0, stop_after_one, &calls), 42);
    assert_int_equal(calls, 1);
    /* the cursor: what came after an id, and the id of this handle's last event */
    assert_int_equal(shelf_store_last_event_id(st), c.id[2]);
    collected after = {0};
    assert_int_equal(shelf_store_foreach_event(st, c.id[0], collect, &after), 0);
    assert_int_equal(after.n, 2);
    assert_true(after.id[0] == c.id[1] && after.id[1] == c.id[2]);
    collected none = {0};
    assert_int_equal(shelf_store_foreach_event(st, c.id[2], collect, &none), 0);
    assert_int_equal(none.n, 0);

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

    shelf_slate sv = {0};
    assert_int_equal(shelf_slate_reserve(&sv, 1), 0);
    snprintf(sv.rec_id, sizeof sv.rec_id, "rec-1");
    sv.user = 0;
    sv.ts = 5;
    sv.items[0] = (shelf_slate_item){.item = 0, .score = 0.5f, .propensity = 1, .reason_item = SHELF_NONE};
    sv.n = 1;
    assert_int_equal(shelf_store_log_slate(st, &sv), 0);
    assert_int_equal(shelf_store_log_slate(st, &sv), SHELF_ESTORE); /* rec_id is unique */
    shelf_slate_free(&sv);
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

/* ---- single rows, deletion ---------------------------------------------------- */

typedef struct got_row {
    int calls;
    uint32_t idx;
    char id[32], title[32], attrs[64];
    int available, has_price;
    double price;
} got_row;

static int got_item(void *ctx, uint32_t idx, const shelf_item *it)
{
    got_row *g = ctx;
    g->calls++;
    g->idx = idx;
    snprintf(g->id, sizeof g->id, "%s", it->id);
    snprintf(g->title, sizeof g->title, "%s", it->title ? it->title : "");
    snprintf(g->attrs, sizeof g->attrs, "%s", it->attributes ? it->attributes : "");
    g->available = it->available;
    g->has_price = it->has_price;
    g->price = it->price;
    return 0;
}

static int got_user(void *ctx, uint32_t idx, const shelf_user *u)
{
    got_row *g = ctx;
    g->calls++;
    g->idx = idx;
    snprintf(g->id, sizeof g->id, "%s", u->id);
    snprintf(g->attrs, sizeof g->attrs, "%s", u->attributes ? u->attributes : "");
    return 0;
}

static int stop_item(void *ctx, uint32_t idx, const shelf_item *it) { return 7; }

static void test_get_rows(void **state)
{
    (void)state;
    shelf_store *st = mem_store();
    shelf_item it = {.id = "sku1", .title = "Lamp", .price = 12.5, .has_price = 1, .available = 1,
                     .attributes = "{\"color\":\"red\"}"};
    shelf_item it2 = {.id = "sku2", .title = "Desk", .available = 1};
    uint32_t idx;
    assert_int_equal(shelf_store_put_item(st, &it, &idx), 0);
    assert_int_equal(shelf_store_put_item(st, &it2, &idx), 0);
    got_row g = {0};
    assert_int_equal(shelf_store_get_item(st, 1, got_item, &g), 0);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.idx, 1);
    assert_string_equal(g.id, "sku2");
    assert_string_equal(g.title, "Desk");
    assert_false(g.has_price);
    memset(&g, 0, sizeof g);
    assert_int_equal(shelf_store_get_item(st, 0, got_item, &g), 0);
    assert_string_equal(g.id, "sku1");
    assert_true(g.has_price && g.price == 12.5);
    assert_string_equal(g.attrs, "{\"color\":\"red\"}");
    assert_int_equal(shelf_store_get_item(st, 0, stop_item, NULL), 7); /* cb's value comes back */
    memset(&g, 0, sizeof g);
    assert_int_equal(shelf_store_get_item(st, 2, got_item, &g), SHELF_ENOTFOUND);
    assert_int_equal(g.calls, 0);

    shelf_user u = {.id = "alice", .attributes = "{\"vip\":true}", .created = 5};
    assert_int_equal(shelf_store_put_user(st, &u, &idx), 0);
    assert_int_equal(shelf_store_get_user(st, 0, got_user, &g), 0);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.id, "alice");
    assert_string_equal(g.attrs, "{\"vip\":true}");
    assert_int_equal(shelf_store_get_user(st, 1, got_user, &g), SHELF_ENOTFOUND);
    assert_int_equal(shelf_store_get_user(st, UINT32_MAX, got_user, &g), SHELF_ENOTFOUND);
    assert_int_equal(g.calls, 1);
    assert_int_equal(shelf_store_user_deleted(st, 0), 0);
    assert_int_equal(shelf_store_user_deleted(st, 1), SHELF_ENOTFOUND);

    /* clearing attribute links touches only that item */
    assert_int_equal(shelf_store_item_add_attr(st, 0, "color=red", 9), 0);
    assert_int_equal(shelf_store_item_add_attr(st, 0, "size=m", 6), 0);
    assert_int_equal(shelf_store_item_add_attr(st, 1, "size=m", 6), 0);
    assert_int_equal(shelf_store_item_clear_attrs(st, 0), 0);
    int links = 0;
    assert_int_equal(shelf_store_foreach_item_attr(st, attr_links, &links, NULL), 0);
    assert_int_equal(links, 1);
    assert_int_equal(shelf_store_item_clear_attrs(st, 9), SHELF_ENOTFOUND);
    shelf_store_close(st);
}

static int count_events(void *ctx, uint64_t id, const shelf_event *e)
{
    uint32_t *counts = ctx; /* [0] all, [1 + user] per user (users 0..3) */
    counts[0]++;
    if (e->user < 4) counts[1 + e->user]++;
    return 0;
}

static void add_served(shelf_store *st, const char *rec, uint32_t user)
{
    shelf_slate_item it = {.item = 0, .propensity = 1, .reason_item = SHELF_NONE};
    shelf_slate sv = {.user = user, .ts = 1, .n = 1, .cap = 1, .items = &it};
    snprintf(sv.rec_id, sizeof sv.rec_id, "%s", rec);
    assert_int_equal(shelf_store_log_slate(st, &sv), 0);
}

static void test_delete_user(void **state)
{
    (void)state;
    shelf_store *st = mem_store();
    uint32_t u0, u1, i0, view, idx;
    shelf_user a = {.id = "alice", .attributes = "{\"email\":\"a@example.com\"}"};
    shelf_store_put_user(st, &a, &u0);
    shelf_store_user_idx(st, "bob", 3, 1, &u1, NULL);
    shelf_store_item_idx(st, "i0", 2, 1, &i0, NULL);
    shelf_store_event_type(st, "view", &view, NULL);
    shelf_event ev[] = {{u0, i0, view, 0, 1, "r0", NULL}, {u1, i0, view, 0, 2, NULL, NULL},
                        {u0, i0, view, 0, 3, NULL, NULL}};
    assert_int_equal(shelf_store_add_events(st, ev, 3), 0);
    add_served(st, "r0", u0);
    add_served(st, "r1", u1);
    add_served(st, "r2", SHELF_NONE);

    assert_int_equal(shelf_store_delete_user(st, "alice", 5, &idx), 0);
    assert_int_equal(idx, u0);
    uint32_t n[5] = {0};
    assert_int_equal(shelf_store_foreach_event(st, 0, count_events, n), 0);
    assert_int_equal(n[0], 1); /* only bob's event is left */
    assert_int_equal(n[1 + u1], 1);
    shelf_store_stats s;
    assert_int_equal(shelf_store_stats_get(st, &s), 0);
    assert_int_equal(s.n_served, 2); /* bob's and the anonymous slate */
    assert_int_equal(s.n_users, 2);  /* the row stays, a tombstone */
    assert_int_equal(shelf_store_user_deleted(st, u0), 1);
    assert_int_equal(shelf_store_user_deleted(st, u1), 0);
    got_row g = {0};
    assert_int_equal(shelf_store_get_user(st, u0, got_user, &g), SHELF_ENOTFOUND);
    assert_int_equal(g.calls, 0);
    char buf[64];
    assert_int_equal(shelf_store_user_ext(st, u0, buf, sizeof buf), 0);
    assert_int_equal(buf[0], 0x01);
    assert_null(strstr(buf, "alice"));
    assert_null(strstr(buf, "example.com"));

    /* the id is gone: unknown without create, a new index with it */
    assert_int_equal(shelf_store_user_idx(st, "alice", 5, 0, &idx, NULL), SHELF_ENOTFOUND);
    assert_int_equal(shelf_store_delete_user(st, "alice", 5, NULL), SHELF_ENOTFOUND);
    assert_non_null(strstr(shelf_store_errmsg(st), "alice"));
    int created = 0;
    assert_int_equal(shelf_store_user_idx(st, "alice", 5, 1, &idx, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(idx, 2);
    assert_int_equal(shelf_store_n_users(st), 3);
    memset(n, 0, sizeof n);
    assert_int_equal(shelf_store_foreach_event(st, 0, count_events, n), 0);
    assert_int_equal(n[1 + 2], 0); /* the new alice has no trace of the old one */
    /* the tombstone id is no shop id */
    char tomb[32];
    snprintf(tomb, sizeof tomb, "\x01" "deleted:%u", u0);
    assert_int_equal(shelf_store_user_idx(st, tomb, strlen(tomb), 0, &idx, NULL), SHELF_ENOTFOUND);
    assert_int_equal(shelf_store_user_idx(st, "\x01x", 2, 1, &idx, NULL), SHELF_EINVAL);

    /* unknown ids name themselves */
    assert_int_equal(shelf_store_delete_user(st, "u7", 2, &idx), SHELF_ENOTFOUND);
    assert_non_null(strstr(shelf_store_errmsg(st), "'u7'"));

    /* inside a transaction, undone by its rollback */
    assert_int_equal(shelf_store_begin(st), 0);
    assert_int_equal(shelf_store_delete_user(st, "bob", 3, &idx), 0);
    assert_int_equal(shelf_store_user_idx(st, "bob", 3, 0, &idx, NULL), SHELF_ENOTFOUND);
    assert_int_equal(shelf_store_rollback(st), 0);
    assert_int_equal(shelf_store_user_idx(st, "bob", 3, 0, &idx, NULL), 0);
    assert_int_equal(idx, u1);
    assert_int_equal(shelf_store_user_deleted(st, u1), 0);
    memset(n, 0, sizeof n);
    assert_int_equal(shelf_store_foreach_event(st, 0, count_events, n), 0);
    assert_int_equal(n[1 + u1], 1);
    /* ... and kept by its commit */
    assert_int_equal(shelf_store_begin(st), 0);
    assert_int_equal(shelf_store_delete_user(st, "bob", 3, &idx), 0);
    assert_int_equal(shelf_store_commit(st), 0);
    assert_int_equal(shelf_store_user_deleted(st, u1), 1);
    assert_int_equal(shelf_store_stats_get(st, &s), 0);
    assert_int_equal(s.n_events, 0);
    assert_int_equal(s.n_served, 1);
    shelf_store_close(st);
}

static void test_delete_user_on_disk(void **state)
{
    (void)state;
    /* the id map is rebuilt from the file: the tombstone stays a tombstone */
    char path[512];
    tmp_path(path, sizeof path, "delete.db");
    shelf_store *st = NULL;
    shelf_err e = {0};
    uint32_t idx;
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &st, &e), 0);
    shelf_store_user_idx(st, "carol", 5, 1, &idx, NULL);
    shelf_store_user_idx(st, "dan", 3, 1, &idx, NULL);
    shelf_store_close(st);
    assert_int_equal(shelf_store_open(path, 0, &st, &e), 0);
    assert_int_equal(shelf_store_delete_user(st, "carol", 5, &idx), 0); /* cache not loaded yet */
    assert_int_equal(idx, 0);
    assert_int_equal(shelf_store_user_idx(st, "carol", 5, 0, &idx, NULL), SHELF_ENOTFOUND);
    shelf_store_close(st);
    assert_int_equal(shelf_store_open(path, 0, &st, &e), 0);
    assert_int_equal(shelf_store_n_users(st), 2);
    assert_int_equal(shelf_store_user_deleted(st, 0), 1);
    assert_int_equal(shelf_store_user_idx(st, "carol", 5, 0, &idx, NULL), SHELF_ENOTFOUND);
    assert_int_equal(shelf_store_user_idx(st, "carol", 5, 1, &idx, NULL), 0);
    assert_int_equal(idx, 2);
    assert_int_equal(shelf_store_user_idx(st, "dan", 3, 0, &idx, NULL), 0);
    assert_int_equal(idx, 1);
    shelf_store_close(st);
}

static void test_delete_item(void **state)
{
    (void)state;
    shelf_store *st = mem_store();
    shelf_item it = {.id = "sku1", .title = "Lamp", .category = "Home", .brand = "Acme", .price = 9,
                     .has_price = 1, .available = 1, .attributes = "{\"c\":1}"};
    uint32_t i0, i1, u, view, idx;
    shelf_store_put_item(st, &it, &i0);
    it.id = "sku2";
    shelf_store_put_item(st, &it, &i1);
    shelf_store_item_add_attr(st, i0, "color=red", 9);
    shelf_store_item_add_attr(st, i1, "color=red", 9);
    shelf_store_user_idx(st, "u", 1, 1, &u, NULL);
    shelf_store_event_type(st, "view", &view, NULL);
    shelf_event ev[] = {{u, i0, view, 0, 1, NULL, NULL}, {u, i1, view, 0, 2, NULL, NULL}};
    assert_int_equal(shelf_store_add_events(st, ev, 2), 0);

    assert_int_equal(shelf_store_delete_item(st, "sku1", 4, &idx), 0);
    assert_int_equal(idx, i0);
    got_row g = {0};
    assert_int_equal(shelf_store_get_item(st, i0, got_item, &g), SHELF_ENOTFOUND);
    assert_int_equal(g.calls, 0);
    assert_int_equal(shelf_store_get_item(st, i1, got_item, &g), 0);
    int links = 0;
    assert_int_equal(shelf_store_foreach_item_attr(st, attr_links, &links, NULL), 0);
    assert_int_equal(links, 1); /* sku2's link only */
    uint32_t n[5] = {0};
    assert_int_equal(shelf_store_foreach_event(st, 0, count_events, n), 0);
    assert_int_equal(n[0], 2); /* events stay in the histories */
    /* the row is cleared: scan it */
    shelf_item row = {0};
    assert_int_equal(shelf_store_foreach_item(st, item_rows, &row), 0);
    assert_int_equal(row.available, 0);
    assert_false(row.has_price);
    assert_null(row.category);
    free((char *)row.kind);
    char buf[64];
    assert_int_equal(shelf_store_item_ext(st, i0, buf, sizeof buf), 0);
    assert_int_equal(buf[0], 0x01);

    assert_int_equal(shelf_store_item_idx(st, "sku1", 4, 0, &idx, NULL), SHELF_ENOTFOUND);
    assert_int_equal(shelf_store_delete_item(st, "sku1", 4, &idx), SHELF_ENOTFOUND);
    assert_non_null(strstr(shelf_store_errmsg(st), "sku1"));
    it.id = "sku1";
    assert_int_equal(shelf_store_put_item(st, &it, &idx), 0); /* put again: a new item */
    assert_int_equal(idx, 2);
    assert_int_equal(shelf_store_get_item(st, 2, got_item, &g), 0);
    assert_string_equal(g.id, "sku1");
    assert_int_equal(shelf_store_n_items(st), 3);
    shelf_store_close(st);
}

/* ---- API keys ----------------------------------------------------------------- */

typedef struct keys_seen {
    int n;
    shelf_api_key k[8];
} keys_seen;

static int collect_key(void *ctx, const shelf_api_key *k)
{
    keys_seen *ks = ctx;
    if (ks->n < 8) ks->k[ks->n] = *k;
    ks->n++;
    return 0;
}

static void test_keys(void **state)
{
    (void)state;
    shelf_scope sc;
    assert_int_equal(shelf_scope_parse("read", &sc), 0);
    assert_int_equal(sc, SHELF_SCOPE_READ);
    assert_int_equal(shelf_scope_parse("admin", &sc), 0);
    assert_int_equal(sc, SHELF_SCOPE_ADMIN);
    assert_int_equal(shelf_scope_parse("root", &sc), SHELF_EINVAL);
    assert_int_equal(shelf_scope_parse("", &sc), SHELF_EINVAL);
    assert_int_equal(shelf_scope_parse("Admin", &sc), SHELF_EINVAL);
    assert_int_equal(sc, SHELF_SCOPE_ADMIN); /* untouched on failure */
    assert_string_equal(shelf_scope_name(SHELF_SCOPE_WRITE), "write");
    assert_true(SHELF_SCOPE_ADMIN > SHELF_SCOPE_WRITE && SHELF_SCOPE_WRITE > SHELF_SCOPE_READ);

    /* SHA-256 of "abc" (FIPS 180-2 example) */
    static const unsigned char abc[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char h[32];
    shelf_key_hash("abc", 3, h);
    assert_memory_equal(h, abc, 32);

    shelf_store *st = mem_store();
    char k1[SHELF_API_KEY_LEN + 1], k2[SHELF_API_KEY_LEN + 1];
    int64_t id1 = 0, id2 = 0;
    assert_int_equal(shelf_store_key_create(st, SHELF_SCOPE_WRITE, "ci", k1, &id1), 0);
    assert_int_equal(shelf_store_key_create(st, SHELF_SCOPE_READ, NULL, k2, &id2), 0);
    assert_int_equal(strlen(k1), 70);
    assert_int_equal(strlen(k1), SHELF_API_KEY_LEN);
    assert_int_equal(strncmp(k1, "shelf_", 6), 0);
    for (int i = 6; i < 70; i++) assert_non_null(strchr("0123456789abcdef", k1[i]));
    assert_string_not_equal(k1, k2);
    assert_true(id2 > id1);
    char long_name[80];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    char k3[SHELF_API_KEY_LEN + 1] = "untouched";
    assert_int_equal(shelf_store_key_create(st, SHELF_SCOPE_READ, long_name, k3, NULL), SHELF_EINVAL);
    assert_int_equal(shelf_store_key_create(st, (shelf_scope)9, NULL, k3, NULL), SHELF_EINVAL);
    assert_string_equal(k3, "untouched");

    keys_seen ks = {0};
    assert_int_equal(shelf_store_foreach_key(st, collect_key, &ks), 0);
    assert_int_equal(ks.n, 2);
    assert_int_equal(ks.k[0].id, id1);
    assert_int_equal(ks.k[0].scope, SHELF_SCOPE_WRITE);
    assert_string_equal(ks.k[0].name, "ci");
    assert_int_equal(strlen(ks.k[0].prefix), 12);
    assert_int_equal(strncmp(ks.k[0].prefix, k1, 12), 0);
    assert_true(ks.k[0].created > 1600000000);
    assert_int_equal(ks.k[0].revoked, 0);
    shelf_key_hash(k1, strlen(k1), h);
    assert_memory_equal(ks.k[0].hash, h, 32);
    shelf_key_hash(k2, strlen(k2), h);
    assert_memory_equal(ks.k[1].hash, h, 32);
    assert_int_equal(ks.k[1].scope, SHELF_SCOPE_READ);
    assert_string_equal(ks.k[1].name, "");

    assert_int_equal(shelf_store_key_revoke(st, id1), 0);
    assert_int_equal(shelf_store_key_revoke(st, id1), 0); /* again: still revoked */
    assert_int_equal(shelf_store_key_revoke(st, 999), SHELF_ENOTFOUND);
    assert_non_null(strstr(shelf_store_errmsg(st), "999"));
    memset(&ks, 0, sizeof ks);
    assert_int_equal(shelf_store_foreach_key(st, collect_key, &ks), 0);
    assert_int_equal(ks.n, 2);
    assert_int_equal(ks.k[0].revoked, 1);
    assert_int_equal(ks.k[1].revoked, 0);
    shelf_store_close(st);
}

/* ---- migrations ----------------------------------------------------------------- */

const char *shelf__store_migration(int version); /* internal: the SQL of migration N */

/* Two connections on one file, as shelf import beside shelf serve: each
 * caches its id maps, and sees what the other committed before it writes
 * (no duplicate index, no UNIQUE error), resolves the other's new ids, and
 * stops resolving an id the other deleted. */
static void test_two_writers(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "two.db");
    shelf_store *a = NULL, *b = NULL;
    shelf_err e = {0};
    uint32_t idx, t;
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &a, &e), 0);
    assert_int_equal(shelf_store_open(path, 0, &b, &e), 0);
    /* a caches its maps with u0, u1, i0 */
    assert_int_equal(shelf_store_begin(a), 0);
    assert_int_equal(shelf_store_user_idx(a, "u0", 2, 1, &idx, NULL), 0);
    assert_int_equal(shelf_store_user_idx(a, "u1", 2, 1, &idx, NULL), 0);
    assert_int_equal(shelf_store_item_idx(a, "i0", 2, 1, &idx, NULL), 0);
    assert_int_equal(shelf_store_commit(a), 0);
    assert_int_equal(shelf_store_n_users(a), 2);
    /* b adds users, an item, an attribute and an event type in its own transaction */
    assert_int_equal(shelf_store_begin(b), 0);
    assert_int_equal(shelf_store_user_idx(b, "u2", 2, 1, &idx, NULL), 0);
    assert_int_equal(idx, 2);
    assert_int_equal(shelf_store_user_idx(b, "u3", 2, 1, &idx, NULL), 0);
    assert_int_equal(shelf_store_item_idx(b, "i1", 2, 1, &idx, NULL), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(shelf_store_item_add_attr(b, 1, "color=red", 9), 0);
    assert_int_equal(shelf_store_add_event_type(b, "wish", 2.0f, &t), 0);
    assert_int_equal(shelf_store_commit(b), 0);
    /* a writes next: its new user takes index 4, not 2 */
    assert_int_equal(shelf_store_begin(a), 0);
    int created = 0;
    assert_int_equal(shelf_store_user_idx(a, "u4", 2, 1, &idx, &created), 0);
    assert_int_equal(idx, 4);
    assert_true(created);
    assert_int_equal(shelf_store_user_idx(a, "u3", 2, 0, &idx, NULL), 0);
    assert_int_equal(idx, 3);
    assert_int_equal(shelf_store_item_add_attr(a, 1, "color=blue", 10), 0);
    uint32_t ta;
    float wt;
    assert_int_equal(shelf_store_event_type(a, "wish", &ta, &wt), 0);
    assert_int_equal(ta, t);
    shelf_event ev = {.user = 3, .item = 1, .type = ta, .ts = 1};
    assert_int_equal(shelf_store_add_events(a, &ev, 1), 0);
    assert_int_equal(shelf_store_commit(a), 0);
    /* outside a transaction, a lookup miss catches up too */
    assert_int_equal(shelf_store_user_idx(b, "u4", 2, 0, &idx, NULL), 0);
    assert_int_equal(idx, 4);
    /* b forgets u1; a no longer resolves it, and a new u1 is a new index */
    assert_int_equal(shelf_store_delete_user(b, "u1", 2, &idx), 0);
    assert_int_equal(shelf_store_begin(a), 0);
    assert_int_equal(shelf_store_user_idx(a, "u1", 2, 0, &idx, NULL), SHELF_ENOTFOUND);
    assert_int_equal(shelf_store_user_idx(a, "u1", 2, 1, &idx, NULL), 0);
    assert_int_equal(idx, 5);
    assert_int_equal(shelf_store_commit(a), 0);
    assert_int_equal(shelf_store_n_users(b), 6);
    shelf_store_close(a);
    shelf_store_close(b);
}

/* a writer that commits back to back (shelf serve under load) leaves the
 * lock free for 2 ms between its 200 ms transactions: a second writer
 * (shelf import) gets in at the first gap, not after seconds of polls that
 * miss every gap (SQLite's own busy timeout sleeps up to 100 ms a try) */
typedef struct {
    shelf_store *st;
    int stop, began; /* __atomic: the test and the writer thread */
} busy_writer;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *busy_writer_run(void *arg)
{
    busy_writer *w = arg;
    for (int i = 0; i < 40 && !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); i++) {
        if (shelf_store_begin(w->st)) break;
        __atomic_store_n(&w->began, 1, __ATOMIC_RELEASE);
        sleep_ms(200);
        if (shelf_store_commit(w->st)) break;
        sleep_ms(2);
    }
    return NULL;
}

static void test_busy_writer(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "busy.db");
    shelf_store *a = NULL, *b = NULL;
    shelf_err e = {0};
    assert_int_equal(shelf_store_open(path, SHELF_STORE_CREATE, &a, &e), 0);
    assert_int_equal(shelf_store_open(path, 0, &b, &e), 0);
    busy_writer w = {.st = a};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, busy_writer_run, &w), 0);
    while (!__atomic_load_n(&w.began, __ATOMIC_ACQUIRE)) sleep_ms(1);
    double t0 = shelf_now();
    assert_int_equal(shelf_store_begin(b), 0);
    double waited = shelf_now() - t0;
    uint32_t idx;
    assert_int_equal(shelf_store_user_idx(b, "u0", 2, 1, &idx, NULL), 0);
    assert_int_equal(shelf_store_commit(b), 0);
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    if (waited > 1.0) fail_msg("the second writer waited %.2f s for the lock (one gap comes every 0.2 s)", waited);
    shelf_store_close(a);
    shelf_store_close(b);
}

static void test_migrate_from_v1(void **state)
{
    (void)state;
    /* a file as a version-1 build wrote it: migration 1 only, with rows */
    char path[512];
    tmp_path(path, sizeof path, "v1.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, shelf__store_migration(1), NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA user_version=1;"
                                  "INSERT INTO users(idx, ext_id) VALUES(0, 'old-user');"
                                  "INSERT INTO items(idx, ext_id, title) VALUES(0, 'old-item', 'Old');"
                                  "INSERT INTO events(user, item, type) VALUES(0, 0, 3);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    shelf_store *st = NULL;
    shelf_err e = {0};
    /* read-only cannot migrate */
    assert_int_equal(shelf_store_open(path, SHELF_STORE_READONLY, &st, &e), SHELF_EVERSION);
    assert_int_equal(shelf_store_open(path, 0, &st, &e), 0);
    assert_int_equal(shelf_store_schema_version(st), shelf_store_schema_latest());
    assert_true(shelf_store_schema_latest() >= 2);
    uint32_t idx;
    assert_int_equal(shelf_store_user_idx(st, "old-user", 8, 0, &idx, NULL), 0);
    got_row g = {0};
    assert_int_equal(shelf_store_get_item(st, 0, got_item, &g), 0);
    assert_string_equal(g.title, "Old");
    char key[SHELF_API_KEY_LEN + 1];
    assert_int_equal(shelf_store_key_create(st, SHELF_SCOPE_ADMIN, "first", key, NULL), 0);
    shelf_store_close(st);

    assert_int_equal(shelf_store_open(path, SHELF_STORE_READONLY, &st, &e), 0);
    keys_seen ks = {0};
    assert_int_equal(shelf_store_foreach_key(st, collect_key, &ks), 0);
    assert_int_equal(ks.n, 1);
    assert_int_equal(ks.k[0].scope, SHELF_SCOPE_ADMIN);
    shelf_store_stats s;
    assert_int_equal(shelf_store_stats_get(st, &s), 0);
    assert_int_equal(s.n_events, 1);
    shelf_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_schema),   cmocka_unit_test(test_id_maps_and_rollback),
        cmocka_unit_test(test_event_types),       cmocka_unit_test(test_events),
        cmocka_unit_test(test_read_view),         cmocka_unit_test(test_backend_choice),
        cmocka_unit_test(test_begin_lazy),
        cmocka_unit_test(test_items_users_attrs), cmocka_unit_test(test_on_disk_wal_and_reopen),
        cmocka_unit_test(test_get_rows),          cmocka_unit_test(test_delete_user),
        cmocka_unit_test(test_delete_user_on_disk), cmocka_unit_test(test_delete_item),
        cmocka_unit_test(test_keys),              cmocka_unit_test(test_migrate_from_v1),
        cmocka_unit_test(test_two_writers),       cmocka_unit_test(test_busy_writer),       cmocka_unit_test(test_scenarios),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
