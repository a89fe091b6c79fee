/* test_gen.c: the synthetic shop (src/data/gen.c): determinism, exact
 * counts, the view -> cart -> purchase funnel, popularity skew, items added
 * over time, taste structure, and the CSV sink against the store sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shelf/gen.h"

/* ---- helpers ----------------------------------------------------------------- */

typedef struct evlist {
    shelf_event *ev;
    size_t n, cap;
} evlist;

static int collect_cb(void *ctx, uint64_t id, const shelf_event *ev)
{
    evlist *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->ev = realloc(l->ev, l->cap * sizeof *l->ev);
        assert_non_null(l->ev);
    }
    l->ev[l->n] = *ev;
    l->ev[l->n].rec_id = NULL;
    l->ev[l->n].context = NULL;
    l->n++;
    return 0;
}

static evlist collect(shelf_store *st)
{
    evlist l = {0};
    assert_int_equal(shelf_store_foreach_event(st, 0, collect_cb, &l), 0);
    return l;
}

static shelf_store *open_mem(void)
{
    shelf_store *st = NULL;
    shelf_err err;
    shelf_err_clear(&err);
    int rc = shelf_store_open(":memory:", SHELF_STORE_CREATE, &st, &err);
    if (rc) fprintf(stderr, "open: %s\n", shelf_errmsg(&err));
    assert_int_equal(rc, 0);
    return st;
}

static shelf_store *gen_mem(const shelf_gen_opts *o)
{
    shelf_store *st = open_mem();
    int rc = shelf_gen_store(st, o);
    if (rc) fprintf(stderr, "gen: %s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    return st;
}

static uint32_t type_of(shelf_store *st, const char *name)
{
    uint32_t t;
    assert_int_equal(shelf_store_event_type(st, name, &t, NULL), 0);
    return t;
}

static const char *tmpdir(void)
{
    const char *d = getenv("SHELF_TEST_TMP");
    if (!d || !d[0]) d = "/tmp";
    if (mkdir(d, 0777) != 0 && errno != EEXIST) fail_msg("cannot create %s", d);
    return d;
}

typedef struct item_info {
    int64_t created;
    int cat; /* index of the top-level category name */
} item_info;

typedef struct items_ctx {
    item_info *it;
    uint32_t n;
    char names[64][64];
    int n_names;
} items_ctx;

static int items_cb(void *ctx, uint32_t idx, const shelf_item *it)
{
    items_ctx *c = ctx;
    assert_true(idx < c->n);
    c->it[idx].created = it->created;
    assert_non_null(it->category);
    const char *slash = strchr(it->category, '/');
    assert_non_null(slash);
    size_t len = (size_t)(slash - it->category);
    int k;
    for (k = 0; k < c->n_names; k++)
        if (strlen(c->names[k]) == len && memcmp(c->names[k], it->category, len) == 0) break;
    if (k == c->n_names) {
        assert_true(c->n_names < 64);
        snprintf(c->names[k], sizeof c->names[k], "%.*s", (int)len, it->category);
        c->n_names++;
    }
    c->it[idx].cat = k;
    return 0;
}

static items_ctx load_items(shelf_store *st)
{
    items_ctx c;
    memset(&c, 0, sizeof c);
    c.n = shelf_store_n_items(st);
    c.it = calloc(c.n, sizeof *c.it);
    assert_non_null(c.it);
    assert_int_equal(shelf_store_foreach_item(st, items_cb, &c), 0);
    return c;
}

/* ---- options ------------------------------------------------------------------- */

static void test_opts_validation(void **state)
{
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    assert_int_equal(o.seed, 42);
    assert_true(o.n_users > 0 && o.n_items > 0 && o.n_events > 0);

    shelf_err err;
    const char *dir = tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/gen_bad.csv", dir);
    remove(path);

    shelf_gen_opts b = o;
    b.n_users = 0;
    shelf_err_clear(&err);
    assert_int_equal(shelf_gen_csv(path, NULL, &b, &err), SHELF_EINVAL);
    assert_non_null(strstr(shelf_errmsg(&err), "users"));
    b = o;
    b.n_items = 0;
    assert_int_equal(shelf_gen_csv(path, NULL, &b, &err), SHELF_EINVAL);
    assert_non_null(strstr(shelf_errmsg(&err), "items"));
    b = o;
    b.late_items = 1.0;
    assert_int_equal(shelf_gen_csv(path, NULL, &b, &err), SHELF_EINVAL);
    assert_non_null(strstr(shelf_errmsg(&err), "late_items"));
    b = o;
    b.zipf = NAN;
    assert_int_equal(shelf_gen_csv(path, NULL, &b, &err), SHELF_EINVAL);
    b = o;
    b.days = 0;
    assert_int_equal(shelf_gen_csv(path, NULL, &b, &err), SHELF_EINVAL);
    b = o;
    b.n_factors = 0;
    assert_int_equal(shelf_gen_csv(path, NULL, &b, &err), SHELF_EINVAL);
    b = o;
    b.n_categories = 0;
    assert_int_equal(shelf_gen_csv(path, NULL, &b, &err), SHELF_EINVAL);
    assert_int_equal(shelf_gen_csv(path, NULL, NULL, &err), SHELF_EINVAL);
    FILE *f = fopen(path, "r");
    assert_null(f); /* nothing written on bad options */

    /* the store sink: error on the handle, no transaction left open */
    shelf_store *st = open_mem();
    b = o;
    b.n_users = 0;
    assert_int_equal(shelf_gen_store(st, &b), SHELF_EINVAL);
    assert_non_null(strstr(shelf_store_errmsg(st), "users"));
    assert_int_equal(shelf_store_begin(st), 0);
    assert_int_equal(shelf_store_commit(st), 0);

    /* inside an open transaction the generator refuses and stores nothing */
    assert_int_equal(shelf_store_begin(st), 0);
    assert_true(shelf_gen_store(st, &o) < 0);
    assert_int_equal(shelf_store_rollback(st), 0);
    assert_int_equal(shelf_store_n_users(st), 0);
    shelf_store_close(st);

    /* an unwritable CSV path names the file */
    snprintf(path, sizeof path, "%s/no/such/dir/ev.csv", dir);
    shelf_err_clear(&err);
    assert_int_equal(shelf_gen_csv(path, NULL, &o, &err), SHELF_EIO);
    assert_non_null(strstr(shelf_errmsg(&err), path));
}

/* ---- counts ------------------------------------------------------------------- */

static void check_counts(const shelf_gen_opts *o)
{
    shelf_store *st = gen_mem(o);
    shelf_store_stats s;
    assert_int_equal(shelf_store_stats_get(st, &s), 0);
    assert_int_equal(s.n_users, o->n_users);
    assert_int_equal(s.n_items, o->n_items);
    assert_int_equal(s.n_events, o->n_events);
    if (o->n_events) {
        assert_true(s.ts_min >= o->start_ts);
        /* heavy users may spill a little past the span, never far */
        assert_true(s.ts_max < o->start_ts + (int64_t)o->days * 86400 * 3 / 2);
    }
    shelf_store_close(st);
}

static void test_exact_counts(void **state)
{
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    check_counts(&o);

    o.n_users = 1;
    o.n_items = 1;
    o.n_events = 10;
    o.late_items = 0.0;
    check_counts(&o);

    shelf_gen_opts_init(&o);
    o.n_events = 50; /* fewer events than users */
    check_counts(&o);

    o.n_events = 0;
    check_counts(&o);

    shelf_gen_opts_init(&o);
    o.n_categories = 40; /* more categories than named ones, some empty */
    o.n_brands = 3;
    o.n_items = 30;
    o.n_factors = 3;
    o.zipf = 2.5;
    o.late_items = 0.9;
    o.days = 1;
    o.n_events = 777;
    check_counts(&o);
}

/* ---- determinism -------------------------------------------------------------- */

static int same_events(const evlist *a, const evlist *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++) {
        const shelf_event *x = &a->ev[i], *y = &b->ev[i];
        if (x->user != y->user || x->item != y->item || x->type != y->type ||
            x->value != y->value || x->ts != y->ts)
            return 0;
    }
    return 1;
}

static void test_determinism(void **state)
{
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    shelf_store *a = gen_mem(&o), *b = gen_mem(&o);
    o.seed = 43;
    shelf_store *c = gen_mem(&o);
    evlist ea = collect(a), eb = collect(b), ec = collect(c);
    assert_int_equal(ea.n, 5000);
    assert_true(same_events(&ea, &eb));
    assert_false(same_events(&ea, &ec));
    /* the catalogue too */
    items_ctx ia = load_items(a), ib = load_items(b);
    for (uint32_t i = 0; i < ia.n; i++) assert_int_equal(ia.it[i].created, ib.it[i].created);
    free(ia.it);
    free(ib.it);
    free(ea.ev);
    free(eb.ev);
    free(ec.ev);
    shelf_store_close(a);
    shelf_store_close(b);
    shelf_store_close(c);
}

/* ---- the funnel and time order ------------------------------------------------ */

static void test_funnel(void **state)
{
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    o.n_events = 20000;
    shelf_store *st = gen_mem(&o);
    uint32_t view = type_of(st, "view"), click = type_of(st, "click"), cart = type_of(st, "cart"),
             purchase = type_of(st, "purchase"), rating = type_of(st, "rating");
    evlist l = collect(st);
    uint32_t U = o.n_users, I = o.n_items;
    unsigned char *viewed = calloc((size_t)U * I, 1), *carted = calloc((size_t)U * I, 1);
    int64_t *last = calloc(U, sizeof *last);
    assert_non_null(viewed);
    assert_non_null(carted);
    assert_non_null(last);
    size_t n_view = 0, n_click = 0, n_cart = 0, n_purchase = 0, n_rating = 0;
    for (size_t k = 0; k < l.n; k++) {
        const shelf_event *e = &l.ev[k];
        size_t ui = (size_t)e->user * I + e->item;
        assert_true(e->ts >= (k ? l.ev[k - 1].ts : o.start_ts)); /* global time order */
        assert_true(e->ts >= last[e->user]);
        last[e->user] = e->ts;
        if (e->type == view) {
            n_view++;
            viewed[ui] = 1;
            assert_true(e->value == 0.0f);
        } else if (e->type == click) {
            n_click++;
            assert_true(viewed[ui]);
        } else if (e->type == cart) {
            n_cart++;
            assert_true(viewed[ui]);
            carted[ui] = 1;
        } else if (e->type == purchase) {
            n_purchase++;
            assert_true(viewed[ui] && carted[ui]);
            assert_true(e->value >= 1.0f && e->value <= 3.0f);
        } else if (e->type == rating) {
            n_rating++;
            assert_true(viewed[ui]);
            assert_true(e->value >= 1.0f && e->value <= 5.0f && e->value == (float)(int)e->value);
        } else {
            fail_msg("unexpected event type %u", e->type);
        }
    }
    assert_true(n_view > n_cart && n_cart > n_purchase && n_purchase > 0);
    assert_true(n_view > l.n / 2);
    assert_true(n_click > 0 && n_rating > 0);
    free(viewed);
    free(carted);
    free(last);
    free(l.ev);
    shelf_store_close(st);
}

/* ---- popularity skew ---------------------------------------------------------- */

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static double top_share(double zipf)
{
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    o.zipf = zipf;
    o.n_items = 200;
    o.n_events = 10000;
    shelf_store *st = gen_mem(&o);
    evlist l = collect(st);
    uint64_t *cnt = calloc(o.n_items, sizeof *cnt);
    assert_non_null(cnt);
    for (size_t k = 0; k < l.n; k++) cnt[l.ev[k].item]++;
    qsort(cnt, o.n_items, sizeof *cnt, cmp_desc);
    uint64_t top = 0;
    for (uint32_t i = 0; i < o.n_items / 10; i++) top += cnt[i];
    double share = (double)top / (double)l.n;
    free(cnt);
    free(l.ev);
    shelf_store_close(st);
    return share;
}

static void test_popularity_skew(void **state)
{
    double s0 = top_share(0.0), s1 = top_share(1.0), s2 = top_share(1.5);
    fprintf(stderr, "top 10%% share: zipf 0 %.3f, 1.0 %.3f, 1.5 %.3f\n", s0, s1, s2);
    assert_true(s1 > 0.35);
    assert_true(s2 > s1 && s1 > s0);
}

/* ---- items added over time ------------------------------------------------------ */

static void test_late_items(void **state)
{
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    o.late_items = 0.5;
    o.n_events = 20000;
    shelf_store *st = gen_mem(&o);
    items_ctx ic = load_items(st);
    uint32_t n_late = 0;
    for (uint32_t i = 0; i < ic.n; i++) {
        if (ic.it[i].created >= o.start_ts) {
            n_late++;
            assert_true(ic.it[i].created < o.start_ts + (int64_t)o.days * 86400);
        }
    }
    assert_int_equal(n_late, 50);
    evlist l = collect(st);
    unsigned char *seen = calloc(ic.n, 1);
    uint32_t late_seen = 0;
    for (size_t k = 0; k < l.n; k++) {
        uint32_t i = l.ev[k].item;
        assert_true(l.ev[k].ts >= ic.it[i].created);
        if (ic.it[i].created >= o.start_ts && !seen[i]) late_seen++;
        seen[i] = 1;
    }
    assert_true(late_seen > n_late / 2); /* late items do get traffic */
    free(seen);
    free(l.ev);
    free(ic.it);
    shelf_store_close(st);
}

/* ---- taste structure --------------------------------------------------------------- */

/* Mean over users with >= 20 events of the share of their events in their own
 * most frequent top-level category. cats: category of each event, grouped by
 * user (off: [U+1]). */
static double top_cat_share(const int *cats, const size_t *off, uint32_t U, int n_cats)
{
    double sum = 0.0;
    int n = 0;
    int cnt[64];
    for (uint32_t u = 0; u < U; u++) {
        size_t len = off[u + 1] - off[u];
        if (len < 20) continue;
        memset(cnt, 0, sizeof cnt);
        int best = 0;
        for (size_t k = off[u]; k < off[u + 1]; k++)
            if (++cnt[cats[k]] > best) best = cnt[cats[k]];
        sum += (double)best / (double)len;
        n++;
    }
    assert_true(n >= 20);
    (void)n_cats;
    return sum / n;
}

static void test_taste_structure(void **state)
{
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    o.n_items = 400;
    o.n_events = 20000;
    shelf_store *st = gen_mem(&o);
    items_ctx ic = load_items(st);
    assert_int_equal(ic.n_names, 8);
    evlist l = collect(st);
    uint32_t U = o.n_users;
    size_t *off = calloc(U + 1, sizeof *off), *fill = calloc(U, sizeof *fill);
    int *cats = calloc(l.n, sizeof *cats);
    for (size_t k = 0; k < l.n; k++) off[l.ev[k].user + 1]++;
    for (uint32_t u = 0; u < U; u++) off[u + 1] += off[u];
    for (size_t k = 0; k < l.n; k++) {
        uint32_t u = l.ev[k].user;
        cats[off[u] + fill[u]++] = ic.it[l.ev[k].item].cat;
    }
    double real = top_cat_share(cats, off, U, ic.n_names);
    /* null: the same events dealt to users at random (keeps popularity) */
    shelf_rng r;
    shelf_rng_seed(&r, 7);
    for (size_t k = l.n - 1; k > 0; k--) {
        size_t j = shelf_rng_below(&r, (uint32_t)(k + 1));
        int t = cats[k];
        cats[k] = cats[j];
        cats[j] = t;
    }
    double null = top_cat_share(cats, off, U, ic.n_names);
    fprintf(stderr, "top category share: %.3f (shuffled %.3f)\n", real, null);
    assert_true(real > null + 0.15);
    free(off);
    free(fill);
    free(cats);
    free(l.ev);
    free(ic.it);
    shelf_store_close(st);
}

/* ---- CSV sink == store sink ---------------------------------------------------------- */

typedef struct cmp_ctx {
    shelf_store *st;
    FILE *f;
    size_t n;
} cmp_ctx;

static int cmp_event_cb(void *ctx, uint64_t id, const shelf_event *ev)
{
    cmp_ctx *c = ctx;
    char u[64], i[64], want[256], got[256];
    assert_int_equal(shelf_store_user_ext(c->st, ev->user, u, sizeof u), 0);
    assert_int_equal(shelf_store_item_ext(c->st, ev->item, i, sizeof i), 0);
    snprintf(want, sizeof want, "%s,%s,%s,%g,%lld\n", u, i, shelf_store_event_type_name(c->st, ev->type),
             (double)ev->value, (long long)ev->ts);
    assert_non_null(fgets(got, sizeof got, c->f));
    assert_string_equal(got, want);
    c->n++;
    return 0;
}

static int cmp_item_cb(void *ctx, uint32_t idx, const shelf_item *it)
{
    cmp_ctx *c = ctx;
    char want[512], got[512], price[32] = "";
    if (it->id[0] != 'i') return 0; /* the row that was there before */
    if (it->has_price) snprintf(price, sizeof price, "%.2f", it->price);
    snprintf(want, sizeof want, "%s,%s,%s,%s,%s,%s,%lld\n", it->id, it->kind, it->title, it->category,
             it->brand ? it->brand : "", price, (long long)it->created);
    assert_non_null(fgets(got, sizeof got, c->f));
    assert_string_equal(got, want);
    c->n++;
    return 0;
}

static void test_csv_equals_store(void **state)
{
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    o.n_events = 3000;
    o.seed = 1234;
    const char *dir = tmpdir();
    char ev_path[512], it_path[512];
    snprintf(ev_path, sizeof ev_path, "%s/gen_events.csv", dir);
    snprintf(it_path, sizeof it_path, "%s/gen_items.csv", dir);
    shelf_err err;
    shelf_err_clear(&err);
    int rc = shelf_gen_csv(ev_path, it_path, &o, &err);
    if (rc) fprintf(stderr, "gen csv: %s\n", shelf_errmsg(&err));
    assert_int_equal(rc, 0);

    /* a store that already holds rows: dense indices shift, external ids don't */
    shelf_store *st = open_mem();
    shelf_user pu = {"someone", NULL, 0};
    shelf_item pi;
    memset(&pi, 0, sizeof pi);
    pi.id = "sku-0";
    assert_int_equal(shelf_store_put_user(st, &pu, NULL), 0);
    assert_int_equal(shelf_store_put_item(st, &pi, NULL), 0);
    assert_int_equal(shelf_gen_store(st, &o), 0);

    cmp_ctx c = {st, fopen(ev_path, "r"), 0};
    char line[512];
    assert_non_null(c.f);
    assert_non_null(fgets(line, sizeof line, c.f));
    assert_string_equal(line, "user,item,type,value,ts\n");
    assert_int_equal(shelf_store_foreach_event(st, 0, cmp_event_cb, &c), 0);
    assert_int_equal(c.n, o.n_events);
    assert_null(fgets(line, sizeof line, c.f));
    fclose(c.f);

    c.f = fopen(it_path, "r");
    c.n = 0;
    assert_non_null(c.f);
    assert_non_null(fgets(line, sizeof line, c.f));
    assert_string_equal(line, "id,kind,title,category,brand,price,created\n");
    assert_int_equal(shelf_store_foreach_item(st, cmp_item_cb, &c), 0);
    assert_int_equal(c.n, o.n_items);
    assert_null(fgets(line, sizeof line, c.f));
    fclose(c.f);
    shelf_store_close(st);

    /* events-only output is the same file */
    char ev2[512];
    snprintf(ev2, sizeof ev2, "%s/gen_events2.csv", dir);
    assert_int_equal(shelf_gen_csv(ev2, NULL, &o, &err), 0);
    FILE *f1 = fopen(ev_path, "rb"), *f2 = fopen(ev2, "rb");
    int a, b;
    do {
        a = fgetc(f1);
        b = fgetc(f2);
        assert_int_equal(a, b);
    } while (a != EOF);
    fclose(f1);
    fclose(f2);
    remove(ev_path);
    remove(ev2);
    remove(it_path);
}

/* ---- catalogue and users look like a shop --------------------------------------------- */

typedef struct look_ctx {
    int n_product, n_other, n_titles_ok;
} look_ctx;

static int look_item_cb(void *ctx, uint32_t idx, const shelf_item *it)
{
    look_ctx *c = ctx;
    if (strcmp(it->kind, "product") == 0) {
        c->n_product++;
        assert_true(it->has_price && it->price > 0.0);
        assert_non_null(it->brand);
        assert_non_null(strstr(it->title, it->brand));
        assert_non_null(strstr(it->title, " item "));
    } else {
        assert_true(strcmp(it->kind, "content") == 0 || strcmp(it->kind, "campaign") == 0);
        c->n_other++;
    }
    return 0;
}

static int look_user_cb(void *ctx, uint32_t idx, const shelf_user *u)
{
    assert_non_null(u->attributes);
    assert_non_null(strstr(u->attributes, "\"segment\":"));
    assert_non_null(strstr(u->attributes, "\"region\":"));
    assert_non_null(strstr(u->attributes, "\"device\":"));
    return 0;
}

static void test_catalogue(void **state)
{
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    o.n_items = 1000;
    o.n_events = 100;
    shelf_store *st = gen_mem(&o);
    look_ctx c = {0};
    assert_int_equal(shelf_store_foreach_item(st, look_item_cb, &c), 0);
    assert_true(c.n_product > 900 && c.n_other > 10);
    assert_int_equal(shelf_store_foreach_user(st, look_user_cb, NULL), 0);
    char buf[64];
    assert_int_equal(shelf_store_user_ext(st, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "u0");
    assert_int_equal(shelf_store_item_ext(st, 999, buf, sizeof buf), 0);
    assert_string_equal(buf, "i999");
    shelf_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_validation),
        cmocka_unit_test(test_exact_counts),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_funnel),
        cmocka_unit_test(test_popularity_skew),
        cmocka_unit_test(test_late_items),
        cmocka_unit_test(test_taste_structure),
        cmocka_unit_test(test_csv_equals_store),
        cmocka_unit_test(test_catalogue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
