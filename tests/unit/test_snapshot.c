/* test_snapshot.c: snapshot building (sequences, CSR, item and user
 * features, names), subset, save/load (round trip, truncated and bit-flipped files) and the
 * LOO, temporal and random splits, against hand-computed expectations and a
 * naive recomputation on random data. */
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

#include "data/snapshot_int.h"
#include "shelf/import.h"
#include "shelf/snapshot.h"

/* ---- helpers ---------------------------------------------------------------- */

#include "test_util.h"

static uint32_t user(shelf_store *st, const char *id)
{
    uint32_t idx;
    assert_int_equal(shelf_store_user_idx(st, id, strlen(id), 1, &idx, NULL), 0);
    return idx;
}

static uint32_t item(shelf_store *st, const char *id, const char *cat, const char *brand,
                     double price, int has_price)
{
    shelf_item it = {.id = id, .category = cat, .brand = brand, .price = price,
                     .has_price = has_price, .available = 1};
    uint32_t idx;
    assert_int_equal(shelf_store_put_item(st, &it, &idx), 0);
    return idx;
}

static void check_deep(const shelf_snapshot *s)
{
    char why[512] = "";
    int rc = shelf__snap_check(s, 1, why, sizeof why);
    if (rc) fprintf(stderr, "check: %s\n", why);
    assert_int_equal(rc, 0);
}

static void assert_u64s(const uint64_t *a, const uint64_t *b, size_t n)
{
    for (size_t k = 0; k < n; k++) assert_int_equal(a[k], b[k]);
}
static void assert_u32s(const uint32_t *a, const uint32_t *b, size_t n)
{
    for (size_t k = 0; k < n; k++) assert_int_equal(a[k], b[k]);
}
static void assert_floats(const float *a, const float *b, size_t n)
{
    for (size_t k = 0; k < n; k++) assert_true(a[k] == b[k]);
}

/* Every (u, i, v) of the user->item matrix is in the item->user one and the
 * two hold the same number of entries. */
static void check_transpose(const shelf_snapshot *s)
{
    uint64_t n = 0;
    assert_int_equal(s->ui_off[s->n_users], s->n_nnz);
    assert_int_equal(s->iu_off[s->n_items], s->n_nnz);
    for (uint32_t u = 0; u < s->n_users; u++)
        for (uint64_t k = s->ui_off[u]; k < s->ui_off[u + 1]; k++) {
            uint32_t i = s->ui_col[k];
            int found = 0;
            for (uint64_t q = s->iu_off[i]; q < s->iu_off[i + 1]; q++)
                if (s->iu_col[q] == u) {
                    assert_true(s->iu_val[q] == s->ui_val[k]);
                    found++;
                }
            assert_int_equal(found, 1);
            n++;
        }
    assert_int_equal(n, s->n_nnz);
}

/* Every array of a and b is byte-identical. */
static void assert_same_snapshot(const shelf_snapshot *a, const shelf_snapshot *b)
{
    assert_int_equal(a->n_users, b->n_users);
    assert_int_equal(a->n_items, b->n_items);
    assert_int_equal(a->n_types, b->n_types);
    assert_int_equal(a->n_attrs, b->n_attrs);
    assert_int_equal(a->n_categories, b->n_categories);
    assert_int_equal(a->n_brands, b->n_brands);
    assert_int_equal(a->n_price_buckets, b->n_price_buckets);
    assert_int_equal(a->n_events, b->n_events);
    assert_int_equal(a->n_nnz, b->n_nnz);
    assert_int_equal(a->n_user_feats, b->n_user_feats);
    for (int id = 0; id < SHELF__SEC_COUNT; id++) {
        uint64_t na = shelf__snap_sec_count(a, id), nb = shelf__snap_sec_count(b, id);
        assert_int_equal(na, nb);
        size_t bytes = (size_t)(na * shelf__snap_sec_elem(id));
        if (bytes) assert_memory_equal(shelf__snap_sec_get(a, id), shelf__snap_sec_get(b, id), bytes);
    }
}

static int read_file(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n + 1);
    *len = fread(*buf, 1, (size_t)n, f);
    fclose(f);
    return *len == (size_t)n ? 0 : -1;
}

static void write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ---- the small hand-checked store -------------------------------------------
 * users u0..u3 (u3 without events), items i0..i5 (i5 only an id), a custom
 * type "wish" of weight 0.5, events with out-of-order timestamps and ties. */

static shelf_store *small_store(void)
{
    shelf_store *st = store_new();
    uint32_t u0 = user(st, "u0"), u1 = user(st, "u1"), u2 = user(st, "u2");
    user(st, "u3");
    assert_int_equal(u0, 0);
    shelf_user a1 = {.id = "u1", .attributes = "{\"segment\":\"b\",\"tags\":[\"x\",\"y\"]}"};
    assert_int_equal(shelf_store_put_user(st, &a1, NULL), 0);
    uint32_t i0 = item(st, "i0", "shoes", "acme", 10, 1);
    uint32_t i1 = item(st, "i1", "hats", NULL, 20, 1);
    uint32_t i2 = item(st, "i2", "shoes", "zeta", 30, 1);
    uint32_t i3 = item(st, "i3", NULL, NULL, 0, 0);
    uint32_t i4 = item(st, "i4", "bags", "acme", 40, 1);
    /* titles and texts: i1 title only, i2 text only, i4 both (put again:
     * the row is replaced, the index kept) */
    shelf_item t1 = {.id = "i1", .title = "Red Hat", .category = "hats", .price = 20,
                     .has_price = 1, .available = 1};
    shelf_item t2 = {.id = "i2", .text = "light  running shoe", .category = "shoes",
                     .brand = "zeta", .price = 30, .has_price = 1, .available = 1};
    shelf_item t4 = {.id = "i4", .title = "Tote (2020)", .text = "canvas, large",
                     .category = "bags", .brand = "acme", .price = 40, .has_price = 1,
                     .available = 1};
    assert_int_equal(shelf_store_put_item(st, &t1, NULL), 0);
    assert_int_equal(shelf_store_put_item(st, &t2, NULL), 0);
    assert_int_equal(shelf_store_put_item(st, &t4, NULL), 0);
    uint32_t i5;
    assert_int_equal(shelf_store_item_idx(st, "i5", 2, 1, &i5, NULL), 0);
    assert_int_equal(i0, 0);
    assert_int_equal(i3, 3);
    assert_int_equal(i5, 5);
    assert_int_equal(shelf_store_item_add_attr(st, i0, "color=red", 9), 0);   /* attr 0 */
    assert_int_equal(shelf_store_item_add_attr(st, i0, "size=9", 6), 0);      /* attr 1 */
    assert_int_equal(shelf_store_item_add_attr(st, i2, "color=red", 9), 0);
    assert_int_equal(shelf_store_item_add_attr(st, i4, "color=blue", 10), 0); /* attr 2 */
    assert_int_equal(shelf_store_item_add_attr(st, i4, "size=9", 6), 0);
    assert_int_equal(shelf_store_item_add_attr(st, i0, "color=red", 9), 0); /* duplicate */
    uint32_t wish;
    assert_int_equal(shelf_store_add_event_type(st, "wish", 0.5f, &wish), 0);
    assert_int_equal(wish, 10);
    uint32_t view = type_of(st, "view"), cart = type_of(st, "cart"),
             purchase = type_of(st, "purchase"), dislike = type_of(st, "dislike");
    assert_int_equal(shelf_store_begin(st), 0);
    add_event_value(st, u1, i2, view, 0, 100);    /* e0 */
    add_event_value(st, u0, i0, view, 0, 50);     /* e1 */
    add_event_value(st, u1, i0, cart, 0, 90);     /* e2: before e0 in time */
    add_event_value(st, u0, i1, view, 0, 50);     /* e3: tie with e1, after it */
    add_event_value(st, u1, i2, purchase, 2, 100); /* e4: tie with e0, after it */
    add_event_value(st, u0, i0, purchase, 0, 60); /* e5 */
    add_event_value(st, u2, i4, wish, 0, 10);     /* e6 */
    add_event_value(st, u1, i1, view, 0, 80);     /* e7: first of u1 */
    add_event_value(st, u0, i4, dislike, 0, 40);  /* e8: first of u0 */
    add_event_value(st, u2, i4, view, 0, 5);      /* e9: first of u2 */
    assert_int_equal(shelf_store_commit(st), 0);
    (void)i1;
    return st;
}

static void check_small(const shelf_snapshot *s)
{
    assert_int_equal(s->n_users, 4);
    assert_int_equal(s->n_items, 6);
    assert_int_equal(s->n_types, 11);
    assert_int_equal(s->n_events, 10);
    assert_int_equal(s->n_nnz, 7);
    assert_int_equal(s->n_attrs, 3);
    assert_int_equal(s->n_categories, 3);
    assert_int_equal(s->n_brands, 2);
    assert_int_equal(s->n_price_buckets, SHELF_PRICE_BUCKETS);

    static const uint64_t seq_off[] = {0, 4, 8, 10, 10};
    static const uint32_t seq_item[] = {4, 0, 1, 0, 1, 0, 2, 2, 4, 4};
    static const uint16_t seq_type[] = {6, 0, 0, 3, 0, 2, 0, 3, 0, 10};
    static const float seq_weight[] = {-2, 1, 1, 5, 1, 3, 1, 5, 1, 0.5f};
    static const float seq_value[] = {0, 0, 0, 0, 0, 0, 0, 2, 0, 0};
    static const int64_t seq_ts[] = {40, 50, 50, 60, 80, 90, 100, 100, 5, 10};
    assert_u64s(s->seq_off, seq_off, 5);
    assert_u32s(s->seq_item, seq_item, 10);
    for (int e = 0; e < 10; e++) {
        assert_int_equal(s->seq_type[e], seq_type[e]);
        assert_int_equal(s->seq_ts[e], seq_ts[e]);
    }
    assert_floats(s->seq_weight, seq_weight, 10);
    assert_floats(s->seq_value, seq_value, 10);
    assert_int_equal(shelf_snapshot_seq_len(s, 0), 4);
    assert_int_equal(shelf_snapshot_seq_len(s, 3), 0);

    static const uint64_t ui_off[] = {0, 3, 6, 7, 7};
    static const uint32_t ui_col[] = {0, 1, 4, 0, 1, 2, 4};
    static const float ui_val[] = {6, 1, -2, 3, 1, 6, 1.5f};
    assert_u64s(s->ui_off, ui_off, 5);
    assert_u32s(s->ui_col, ui_col, 7);
    assert_floats(s->ui_val, ui_val, 7);
    static const uint64_t iu_off[] = {0, 2, 4, 5, 5, 7, 7};
    static const uint32_t iu_col[] = {0, 1, 0, 1, 1, 0, 2};
    static const float iu_val[] = {6, 3, 1, 1, 6, -2, 1.5f};
    assert_u64s(s->iu_off, iu_off, 7);
    assert_u32s(s->iu_col, iu_col, 7);
    assert_floats(s->iu_val, iu_val, 7);
    check_transpose(s);

    static const uint32_t cat[] = {0, 1, 0, SHELF_NONE, 2, SHELF_NONE};
    static const uint32_t brand[] = {0, SHELF_NONE, 1, SHELF_NONE, 0, SHELF_NONE};
    /* 4 prices 10 20 30 40: thresholds p[ceil(4k/10)] = 20 20 30 30 30 40 40 inf inf */
    static const uint8_t bucket[] = {1, 3, 6, 0, 8, 0};
    assert_u32s(s->item_category, cat, 6);
    assert_u32s(s->item_brand, brand, 6);
    assert_memory_equal(s->item_price_bucket, bucket, 6);
    static const uint64_t attr_off[] = {0, 2, 2, 3, 3, 5, 5};
    static const uint32_t attr_col[] = {0, 1, 0, 1, 2};
    assert_u64s(s->attr_off, attr_off, 7);
    assert_u32s(s->attr_col, attr_col, 5);

    static const char *const users[] = {"u0", "u1", "u2", "u3"};
    static const char *const items[] = {"i0", "i1", "i2", "i3", "i4", "i5"};
    for (int u = 0; u < 4; u++) assert_string_equal(s->user_ext + s->user_ext_off[u], users[u]);
    for (int i = 0; i < 6; i++) assert_string_equal(s->item_ext + s->item_ext_off[i], items[i]);
    /* item text: title, text, category, brand, non-empty ones joined by a
     * space; i3 has none, i5 has no item row at all */
    static const char *const texts[] = {"shoes acme", "Red Hat hats", "light  running shoe shoes zeta",
                                        "", "Tote (2020) canvas, large bags acme", ""};
    for (int i = 0; i < 6; i++) assert_string_equal(s->item_text + s->item_text_off[i], texts[i]);
    assert_string_equal(s->type_name + s->type_name_off[0], "view");
    assert_string_equal(s->type_name + s->type_name_off[3], "purchase");
    assert_string_equal(s->type_name + s->type_name_off[10], "wish");
    assert_true(s->type_weight[3] == 5.0f);
    assert_true(s->type_weight[6] == -2.0f);
    assert_true(s->type_weight[10] == 0.5f);
    /* user features: only u1 has attributes */
    assert_int_equal(s->n_user_feats, 3);
    static const uint64_t ufeat_off[] = {0, 0, 3, 3, 3};
    static const uint32_t ufeat_col[] = {0, 1, 2};
    assert_u64s(s->ufeat_off, ufeat_off, 5);
    assert_u32s(s->ufeat_col, ufeat_col, 3);
    static const char *const ufeats[] = {"segment=b", "tags=x", "tags=y"};
    for (int f = 0; f < 3; f++)
        assert_string_equal(s->ufeat_name + s->ufeat_name_off[f], ufeats[f]);
    check_deep(s);
}

static void test_build_small(void **state)
{
    (void)state;
    shelf_store *st = small_store();
    shelf_snapshot *s = build(st);
    check_small(s);
    /* arrays are 64-byte aligned */
    for (int id = 0; id < SHELF__SEC_COUNT; id++)
        assert_int_equal((uintptr_t)shelf__snap_sec_get(s, id) % 64, 0);
    shelf_snapshot_free(s);
    shelf_snapshot_free(NULL);
    shelf_store_close(st);
}

static void test_empty_store(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    shelf_snapshot *s = build(st);
    assert_int_equal(s->n_users, 0);
    assert_int_equal(s->n_items, 0);
    assert_int_equal(s->n_events, 0);
    assert_int_equal(s->n_nnz, 0);
    assert_int_equal(s->n_user_feats, 0);
    assert_int_equal(s->seq_off[0], 0);
    assert_int_equal(s->ufeat_off[0], 0);
    check_deep(s);
    const char *path = tmp_path("empty.snap");
    shelf_err err = {0};
    assert_int_equal(shelf_snapshot_save(s, path, &err), 0);
    shelf_snapshot *l = NULL;
    assert_int_equal(shelf_snapshot_load(path, 0, &l, &err), 0);
    assert_same_snapshot(s, l);
    shelf_snapshot_free(l);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

/* 20 prices 1..20 in scrambled order: decile buckets are ceil(p/2). */
static void test_price_deciles(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    char id[16];
    for (int k = 0; k < 20; k++) {
        int p = (k * 7) % 20 + 1;
        snprintf(id, sizeof id, "p%d", p);
        item(st, id, NULL, NULL, p, 1);
    }
    item(st, "neg", NULL, NULL, -5, 1); /* unusable price: unknown */
    shelf_snapshot *s = build(st);
    assert_int_equal(s->n_items, 21);
    for (int k = 0; k < 20; k++) {
        int p = (k * 7) % 20 + 1;
        assert_int_equal(s->item_price_bucket[k], (p + 1) / 2);
    }
    assert_int_equal(s->item_price_bucket[20], 0);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

/* ---- save / load ------------------------------------------------------------ */

static void test_save_load(void **state)
{
    (void)state;
    shelf_store *st = small_store();
    shelf_snapshot *s = build(st);
    const char *path = tmp_path("small.snap");
    shelf_err err = {0};
    assert_int_equal(shelf_snapshot_save(s, path, &err), 0);
    char tmp[800];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1); /* renamed away */

    for (int nv = 0; nv < 2; nv++) {
        shelf_snapshot *l = NULL;
        int rc = shelf_snapshot_load(path, nv, &l, &err);
        if (rc) fprintf(stderr, "load: %s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_same_snapshot(s, l);
        check_small(l);
        for (int id = 0; id < SHELF__SEC_COUNT; id++)
            assert_int_equal((uintptr_t)shelf__snap_sec_get(l, id) % 64, 0);
        /* a loaded snapshot saves and splits like a built one */
        const char *path2 = tmp_path("small2.snap");
        assert_int_equal(shelf_snapshot_save(l, path2, &err), 0);
        unsigned char *a, *b;
        size_t la, lb;
        assert_int_equal(read_file(path, &a, &la), 0);
        assert_int_equal(read_file(path2, &b, &lb), 0);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        free(a);
        free(b);
        shelf_split *sp = NULL;
        assert_int_equal(shelf_split_loo(l, &sp, &err), 0);
        shelf_split_free(sp);
        shelf_snapshot_free(l);
    }

    /* overwrite in place */
    assert_int_equal(shelf_snapshot_save(s, path, &err), 0);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

static void test_load_errors(void **state)
{
    (void)state;
    shelf_err err = {0};
    shelf_snapshot *l = NULL;
    const char *missing = tmp_path("does-not-exist.snap");
    assert_int_equal(shelf_snapshot_load(missing, 0, &l, &err), SHELF_ENOTFOUND);
    assert_non_null(strstr(err.msg, "does-not-exist.snap"));
    assert_null(l);

    const char *text = tmp_path("text.snap");
    const char *junk = "user item_1 item_2\nthis is not a snapshot at all, just text\n";
    write_file(text, (const unsigned char *)junk, strlen(junk));
    assert_int_equal(shelf_snapshot_load(text, 0, &l, &err), SHELF_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a snapshot file"));
    assert_non_null(strstr(err.msg, "text.snap"));

    write_file(text, NULL, 0);
    assert_int_equal(shelf_snapshot_load(text, 0, &l, &err), SHELF_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a snapshot file"));

    assert_int_equal(shelf_snapshot_load(tmp_dir, 0, &l, &err), SHELF_EIO);

    /* a directory that does not exist: save fails with EIO naming the path */
    shelf_store *st = small_store();
    shelf_snapshot *s = build(st);
    const char *bad = tmp_path("no/such/dir/x.snap");
    assert_int_equal(shelf_snapshot_save(s, bad, &err), SHELF_EIO);
    assert_non_null(strstr(err.msg, "x.snap"));

    /* another format version */
    const char *path = tmp_path("version.snap");
    assert_int_equal(shelf_snapshot_save(s, path, &err), 0);
    unsigned char *buf;
    size_t len;
    assert_int_equal(read_file(path, &buf, &len), 0);
    assert_int_equal(buf[8], 3);
    /* version 1 (before item text), 2 (before user features) and a future
     * one are all refused, with the way out in the message */
    static const int versions[] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        buf[8] = (unsigned char)versions[k];
        buf[9] = buf[10] = buf[11] = 0;
        write_file(path, buf, len);
        for (int nv = 0; nv < 2; nv++) {
            assert_int_equal(shelf_snapshot_load(path, nv, &l, &err), SHELF_EVERSION);
            assert_non_null(strstr(err.msg, "version.snap"));
            assert_non_null(strstr(err.msg, "shelf snapshot"));
            assert_null(l);
        }
    }
    free(buf);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

/* Truncations at many lengths and a flipped bit at every offset are all
 * rejected (and never crash: the sanitizer build checks the reads). */
static void test_corrupt_files(void **state)
{
    (void)state;
    shelf_store *st = small_store();
    shelf_snapshot *s = build(st);
    const char *good = tmp_path("good.snap");
    const char *bad = tmp_path("bad.snap");
    shelf_err err = {0};
    assert_int_equal(shelf_snapshot_save(s, good, &err), 0);
    unsigned char *buf;
    size_t len;
    assert_int_equal(read_file(good, &buf, &len), 0);
    assert_true(len > 896 + 64);

    size_t cuts[] = {0, 1, 7, 8, 11, 12, 100, 700, 767, 768, 769, 800, 895, 896, 897, 1000,
                     len / 2, len - 64, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        write_file(bad, buf, cuts[k]);
        for (int nv = 0; nv < 2; nv++) {
            shelf_snapshot *l = NULL;
            int rc = shelf_snapshot_load(bad, nv, &l, &err);
            assert_int_equal(rc, SHELF_ECORRUPT);
            assert_null(l);
            assert_non_null(strstr(err.msg, "bad.snap"));
        }
    }
    /* one byte too many is also wrong */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    write_file(bad, longer, len + 1);
    shelf_snapshot *l = NULL;
    assert_int_equal(shelf_snapshot_load(bad, 0, &l, &err), SHELF_ECORRUPT);
    free(longer);

    /* every byte, one bit each (the bit varies with the offset) */
    for (size_t off = 0; off < len; off++) {
        unsigned char saved = buf[off];
        buf[off] ^= (unsigned char)(1u << (off % 8));
        write_file(bad, buf, len);
        l = NULL;
        int rc = shelf_snapshot_load(bad, 0, &l, &err);
        if (rc == 0) fprintf(stderr, "flip at %zu accepted\n", off);
        assert_true(rc == SHELF_ECORRUPT || rc == SHELF_EVERSION);
        assert_null(l);
        assert_non_null(strstr(err.msg, "bad.snap"));
        /* without verification, header damage is still caught and data
         * damage never crashes */
        rc = shelf_snapshot_load(bad, 1, &l, &err);
        if (off < 896) assert_true(rc == SHELF_ECORRUPT || rc == SHELF_EVERSION);
        if (rc == 0) {
            for (uint32_t u = 0; u < l->n_users; u++)
                (void)shelf_snapshot_seq_len(l, u);
            shelf_snapshot_free(l);
        }
        buf[off] = saved;
    }
    free(buf);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

/* ---- splits ------------------------------------------------------------------- */

/* s3rec-style: order-only sequences (ts 0), one line per user. */
static shelf_store *s3rec_store(void)
{
    shelf_store *st = store_new();
    static const char *const lines[] = {
        "a 1 2 3 4 5", "b 7 8 9", "c 3 4", "d 6", "e 5 5 1 5",
    };
    uint32_t purchase = type_of(st, "purchase");
    assert_int_equal(shelf_store_begin(st), 0);
    char item_id[16];
    for (int k = 1; k <= 9; k++) { /* items "1".."9" get indices 0..8 */
        snprintf(item_id, sizeof item_id, "%d", k);
        uint32_t idx;
        assert_int_equal(shelf_store_item_idx(st, item_id, strlen(item_id), 1, &idx, NULL), 0);
        assert_int_equal(idx, (uint32_t)k - 1);
    }
    for (size_t l = 0; l < sizeof lines / sizeof lines[0]; l++) {
        const char *p = lines[l];
        char uid[2] = {p[0], 0};
        uint32_t u = user(st, uid);
        for (p += 1; *p; p++) {
            if (*p == ' ') continue;
            add_event_value(st, u, (uint32_t)(*p - '1'), purchase, 0, 0);
        }
    }
    assert_int_equal(shelf_store_commit(st), 0);
    return st;
}

static void assert_row(const uint64_t *off, const uint32_t *col, uint32_t u, const uint32_t *want,
                       size_t n)
{
    assert_int_equal(off[u + 1] - off[u], n);
    for (size_t k = 0; k < n; k++) assert_int_equal(col[off[u] + k], want[k]);
}

static void test_split_loo(void **state)
{
    (void)state;
    shelf_store *st = s3rec_store();
    shelf_snapshot *s = build(st);
    shelf_err err = {0};
    shelf_split *sp = NULL;
    assert_int_equal(shelf_split_loo(s, &sp, &err), 0);
    assert_int_equal(sp->kind, SHELF_SPLIT_LOO);
    const shelf_snapshot *t = sp->train;
    /* item index = digit - 1 */
    /* a 1 2 3 4 5: test 5, valid 4, train 1 2 3 */
    assert_row(sp->test_off, sp->test_item, 0, (uint32_t[]){4}, 1);
    assert_row(sp->valid_off, sp->valid_item, 0, (uint32_t[]){3}, 1);
    assert_row(t->seq_off, t->seq_item, 0, (uint32_t[]){0, 1, 2}, 3);
    /* b 7 8 9: test 9, valid 8, train 7 */
    assert_row(sp->test_off, sp->test_item, 1, (uint32_t[]){8}, 1);
    assert_row(sp->valid_off, sp->valid_item, 1, (uint32_t[]){7}, 1);
    assert_row(t->seq_off, t->seq_item, 1, (uint32_t[]){6}, 1);
    /* c 3 4: test 4, no validation, train 3 */
    assert_row(sp->test_off, sp->test_item, 2, (uint32_t[]){3}, 1);
    assert_row(sp->valid_off, sp->valid_item, 2, NULL, 0);
    assert_row(t->seq_off, t->seq_item, 2, (uint32_t[]){2}, 1);
    /* d 6: training only */
    assert_row(sp->test_off, sp->test_item, 3, NULL, 0);
    assert_row(sp->valid_off, sp->valid_item, 3, NULL, 0);
    assert_row(t->seq_off, t->seq_item, 3, (uint32_t[]){5}, 1);
    /* e 5 5 1 5: test 5, valid 1, train 5 5 */
    assert_row(sp->test_off, sp->test_item, 4, (uint32_t[]){4}, 1);
    assert_row(sp->valid_off, sp->valid_item, 4, (uint32_t[]){0}, 1);
    assert_row(t->seq_off, t->seq_item, 4, (uint32_t[]){4, 4}, 2);
    assert_int_equal(sp->n_test, 4);
    assert_int_equal(sp->n_valid, 3);
    assert_int_equal(t->n_events, 8);
    /* training CSR counts only training events: e has item 5 twice (weight 5) */
    assert_row(t->ui_off, t->ui_col, 4, (uint32_t[]){4}, 1);
    assert_true(t->ui_val[t->ui_off[4]] == 10.0f);
    assert_int_equal(t->n_nnz, 7);
    check_transpose(t);
    check_deep(t);
    /* same users, items, names */
    assert_int_equal(t->n_users, s->n_users);
    assert_int_equal(t->n_items, s->n_items);
    assert_string_equal(t->user_ext + t->user_ext_off[4], "e");
    assert_string_equal(t->item_ext + t->item_ext_off[8], "9");
    shelf_split_free(sp);
    shelf_split_free(NULL);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

/* The real path: an S3-Rec file imported, then LOO-FULL. Item ids of the
 * file are integers; ranks by first appearance give dense indices. */
static void test_split_loo_s3rec_import(void **state)
{
    (void)state;
    const char *path = tmp_path("Tiny.txt");
    const char *text = "1 10 11 12 13 14\n"
                       "2 20 21 22\n"
                       "3 12 10\n"
                       "4 30\n"
                       "5 14 14 10 14\n";
    write_file(path, (const unsigned char *)text, strlen(text));
    shelf_store *st = store_new();
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_S3REC);
    int rc = shelf_import_file(st, path, &o, NULL);
    if (rc) fprintf(stderr, "import: %s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    shelf_snapshot *s = build(st);
    assert_int_equal(s->n_users, 5);
    assert_int_equal(s->n_events, 15);
    shelf_err err = {0};
    shelf_split *sp = NULL;
    assert_int_equal(shelf_split_loo(s, &sp, &err), 0);
    static const char *const want_test[] = {"14", "22", "10", NULL, "14"};
    static const char *const want_valid[] = {"13", "21", NULL, NULL, "10"};
    static const char *const want_train[][3] = {
        {"10", "11", "12"}, {"20", NULL, NULL}, {"12", NULL, NULL}, {"30", NULL, NULL},
        {"14", "14", NULL}};
    for (uint32_t u = 0; u < 5; u++) {
        const char *uid = s->user_ext + s->user_ext_off[u];
        int line = atoi(uid) - 1;
        assert_true(line >= 0 && line < 5);
        uint64_t nt = sp->test_off[u + 1] - sp->test_off[u];
        uint64_t nv = sp->valid_off[u + 1] - sp->valid_off[u];
        assert_int_equal(nt, want_test[line] ? 1 : 0);
        assert_int_equal(nv, want_valid[line] ? 1 : 0);
        if (nt)
            assert_string_equal(s->item_ext + s->item_ext_off[sp->test_item[sp->test_off[u]]],
                                want_test[line]);
        if (nv)
            assert_string_equal(s->item_ext + s->item_ext_off[sp->valid_item[sp->valid_off[u]]],
                                want_valid[line]);
        const shelf_snapshot *t = sp->train;
        uint64_t n = shelf_snapshot_seq_len(t, u), k = 0;
        for (; k < 3 && want_train[line][k]; k++) {
            assert_true(k < n);
            assert_string_equal(s->item_ext + s->item_ext_off[t->seq_item[t->seq_off[u] + k]],
                                want_train[line][k]);
        }
        assert_int_equal(n, k);
    }
    shelf_split_free(sp);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

static void test_split_temporal(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    uint32_t u0 = user(st, "u0"), u1 = user(st, "u1");
    uint32_t it[6];
    char id[8];
    for (int k = 0; k < 6; k++) {
        snprintf(id, sizeof id, "i%d", k);
        it[k] = item(st, id, NULL, NULL, 0, 0);
    }
    uint32_t view = type_of(st, "view");
    assert_int_equal(shelf_store_begin(st), 0);
    add_event_value(st, u0, it[0], view, 0, 99);
    add_event_value(st, u0, it[1], view, 0, 100); /* = valid_from: validation */
    add_event_value(st, u0, it[2], view, 0, 199);
    add_event_value(st, u0, it[3], view, 0, 200); /* = test_from: test */
    add_event_value(st, u0, it[4], view, 0, 300);
    add_event_value(st, u1, it[5], view, 0, 250);
    add_event_value(st, u1, it[0], view, 0, 1);
    assert_int_equal(shelf_store_commit(st), 0);
    shelf_snapshot *s = build(st);
    shelf_err err = {0};
    shelf_split *sp = NULL;
    assert_int_equal(shelf_split_temporal(s, 200, 100, &sp, &err), SHELF_EINVAL);
    assert_null(sp);
    assert_int_equal(shelf_split_temporal(s, 100, 200, &sp, &err), 0);
    assert_int_equal(sp->kind, SHELF_SPLIT_TEMPORAL);
    assert_row(sp->train->seq_off, sp->train->seq_item, 0, (uint32_t[]){0}, 1);
    assert_row(sp->valid_off, sp->valid_item, 0, (uint32_t[]){1, 2}, 2);
    assert_row(sp->test_off, sp->test_item, 0, (uint32_t[]){3, 4}, 2);
    assert_row(sp->train->seq_off, sp->train->seq_item, 1, (uint32_t[]){0}, 1);
    assert_row(sp->valid_off, sp->valid_item, 1, NULL, 0);
    assert_row(sp->test_off, sp->test_item, 1, (uint32_t[]){5}, 1);
    assert_int_equal(sp->n_valid, 2);
    assert_int_equal(sp->n_test, 3);
    for (uint64_t e = 0; e < sp->train->n_events; e++) assert_true(sp->train->seq_ts[e] < 100);
    check_transpose(sp->train);
    shelf_split_free(sp);
    /* everything before the cut-offs: all training */
    assert_int_equal(shelf_split_temporal(s, 1000, 1000, &sp, &err), 0);
    assert_int_equal(sp->n_valid + sp->n_test, 0);
    assert_same_snapshot(s, sp->train);
    shelf_split_free(sp);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

/* ---- random data: naive cross-checks ---------------------------------------- */

enum { RU = 500, RI = 300, RE = 50000 };

typedef struct raw_event {
    uint32_t user, item, type;
    float value;
    int64_t ts;
    uint64_t order;
} raw_event;

static int cmp_raw(const void *a, const void *b)
{
    const raw_event *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

static raw_event *g_raw;
static shelf_store *g_rst;
static shelf_snapshot *g_rsnap;

static void random_store(void)
{
    if (g_rsnap) return;
    shelf_store *st = store_new();
    shelf_rng rng;
    shelf_rng_seed(&rng, 42);
    char id[32];
    assert_int_equal(shelf_store_begin(st), 0);
    for (int u = 0; u < RU; u++) {
        snprintf(id, sizeof id, "user-%d", u);
        user(st, id);
    }
    for (int i = 0; i < RI; i++) {
        snprintf(id, sizeof id, "item-%d", i);
        char cat[16], br[16];
        snprintf(cat, sizeof cat, "c%u", shelf_rng_below(&rng, 7));
        snprintf(br, sizeof br, "b%u", shelf_rng_below(&rng, 11));
        item(st, id, i % 5 ? cat : NULL, i % 3 ? br : NULL, 1 + shelf_rng_below(&rng, 1000),
             i % 4 != 0);
        for (uint32_t a = shelf_rng_below(&rng, 4); a > 0; a--) {
            char an[16];
            snprintf(an, sizeof an, "a%u", shelf_rng_below(&rng, 20));
            assert_int_equal(shelf_store_item_add_attr(st, (uint32_t)i, an, strlen(an)), 0);
        }
    }
    uint32_t custom;
    assert_int_equal(shelf_store_add_event_type(st, "custom", 0.25f, &custom), 0);
    uint32_t n_types = shelf_store_n_event_types(st);
    g_raw = malloc(RE * sizeof *g_raw);
    shelf_event *ev = malloc(RE * sizeof *ev);
    for (int e = 0; e < RE; e++) {
        /* skewed users (rows from hundreds of events down to a few, so both
         * the short-row and the long-row sort run); the last 20 users have no
         * events; many ts ties */
        uint32_t u = shelf_rng_below(&rng, 1 + shelf_rng_below(&rng, RU - 20));
        g_raw[e] = (raw_event){
            .user = u,
            .item = shelf_rng_below(&rng, RI - 10),
            .type = shelf_rng_below(&rng, n_types),
            .value = (float)shelf_rng_below(&rng, 5),
            .ts = 1000 + (int64_t)shelf_rng_below(&rng, 200),
            .order = (uint64_t)e,
        };
        ev[e] = (shelf_event){.user = g_raw[e].user, .item = g_raw[e].item,
                              .type = g_raw[e].type, .value = g_raw[e].value, .ts = g_raw[e].ts};
    }
    assert_int_equal(shelf_store_add_events(st, ev, RE), 0);
    assert_int_equal(shelf_store_commit(st), 0);
    free(ev);
    qsort(g_raw, RE, sizeof *g_raw, cmp_raw);
    g_rst = st;
    g_rsnap = build(st);
}

static void test_random_consistency(void **state)
{
    (void)state;
    random_store();
    const shelf_snapshot *s = g_rsnap;
    assert_int_equal(s->n_users, RU);
    assert_int_equal(s->n_items, RI);
    assert_int_equal(s->n_events, RE);
    check_deep(s);

    /* sequences = the raw events sorted by (user, ts, insertion order) */
    for (uint32_t u = 0, e = 0; u < RU; u++) {
        assert_int_equal(s->seq_off[u], e);
        for (; e < RE && g_raw[e].user == u; e++) {
            assert_int_equal(s->seq_item[e], g_raw[e].item);
            assert_int_equal(s->seq_type[e], g_raw[e].type);
            assert_int_equal(s->seq_ts[e], g_raw[e].ts);
            assert_true(s->seq_value[e] == g_raw[e].value);
            assert_true(s->seq_weight[e] == s->type_weight[g_raw[e].type]);
        }
    }
    assert_int_equal(s->seq_off[RU], RE);

    /* CSR = a dense matrix summed in sequence order */
    float *dense = calloc((size_t)RU * RI, sizeof *dense);
    uint32_t *cnt = calloc((size_t)RU * RI, sizeof *cnt);
    for (int e = 0; e < RE; e++) {
        size_t k = (size_t)g_raw[e].user * RI + g_raw[e].item;
        dense[k] += s->type_weight[g_raw[e].type];
        cnt[k]++;
    }
    uint64_t nnz = 0;
    for (uint32_t u = 0; u < RU; u++) {
        uint64_t k = s->ui_off[u];
        for (uint32_t i = 0; i < RI; i++) {
            if (!cnt[(size_t)u * RI + i]) continue;
            assert_true(k < s->ui_off[u + 1]);
            assert_int_equal(s->ui_col[k], i);
            assert_true(s->ui_val[k] == dense[(size_t)u * RI + i]);
            k++;
            nnz++;
        }
        assert_int_equal(k, s->ui_off[u + 1]);
    }
    assert_int_equal(nnz, s->n_nnz);
    for (uint32_t i = 0; i < RI; i++) {
        uint64_t k = s->iu_off[i];
        for (uint32_t u = 0; u < RU; u++) {
            if (!cnt[(size_t)u * RI + i]) continue;
            assert_int_equal(s->iu_col[k], u);
            assert_true(s->iu_val[k] == dense[(size_t)u * RI + i]);
            k++;
        }
        assert_int_equal(k, s->iu_off[i + 1]);
    }
    free(dense);
    free(cnt);
    check_transpose(s);
    /* users 480.. and items 290.. have no events but exist */
    assert_int_equal(shelf_snapshot_seq_len(s, RU - 1), 0);
    assert_int_equal(s->iu_off[RI] - s->iu_off[RI - 1], 0);
    assert_string_equal(s->user_ext + s->user_ext_off[RU - 1], "user-499");
    assert_string_equal(s->item_ext + s->item_ext_off[RI - 1], "item-299");

    /* round trip */
    const char *path = tmp_path("random.snap");
    shelf_err err = {0};
    assert_int_equal(shelf_snapshot_save(s, path, &err), 0);
    shelf_snapshot *l = NULL;
    assert_int_equal(shelf_snapshot_load(path, 0, &l, &err), 0);
    assert_same_snapshot(s, l);
    shelf_snapshot_free(l);
}

/* Sorted copy of items [b, b+n). */
static uint32_t *sorted_items(const uint32_t *items, uint64_t b, uint64_t n, uint32_t *out)
{
    memcpy(out, items + b, n * sizeof *out);
    for (uint64_t x = 1; x < n; x++)
        for (uint64_t y = x; y > 0 && out[y] < out[y - 1]; y--) {
            uint32_t t = out[y];
            out[y] = out[y - 1];
            out[y - 1] = t;
        }
    return out;
}

static void test_split_random(void **state)
{
    (void)state;
    random_store();
    const shelf_snapshot *s = g_rsnap;
    shelf_err err = {0};
    shelf_split *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(shelf_split_random(s, 0.6, 0.6, 1, &a, &err), SHELF_EINVAL);
    assert_int_equal(shelf_split_random(s, -0.1, 0.2, 1, &a, &err), SHELF_EINVAL);
    assert_null(a);
    assert_int_equal(shelf_split_random(s, 0.1, 0.2, 7, &a, &err), 0);
    assert_int_equal(shelf_split_random(s, 0.1, 0.2, 7, &b, &err), 0);
    assert_int_equal(shelf_split_random(s, 0.1, 0.2, 8, &c, &err), 0);
    assert_int_equal(a->kind, SHELF_SPLIT_RANDOM);
    /* reproducible */
    assert_int_equal(a->n_valid, b->n_valid);
    assert_int_equal(a->n_test, b->n_test);
    assert_u64s(a->valid_off, b->valid_off, RU + 1);
    assert_u64s(a->test_off, b->test_off, RU + 1);
    assert_u32s(a->valid_item, b->valid_item, a->n_valid);
    assert_u32s(a->test_item, b->test_item, a->n_test);
    assert_same_snapshot(a->train, b->train);
    /* another seed, another split */
    assert_true(a->n_test != c->n_test ||
                memcmp(a->test_off, c->test_off, (RU + 1) * sizeof(uint64_t)) != 0);
    /* proportions: 5000 and 10000 expected, sd about 67 and 89 */
    assert_true(a->n_valid > 4600 && a->n_valid < 5400);
    assert_true(a->n_test > 9500 && a->n_test < 10500);
    assert_int_equal(a->n_valid + a->n_test + a->train->n_events, RE);
    /* per user, the three parts are the original sequence's items */
    uint32_t *x = malloc(RE * 4), *y = malloc(RE * 4);
    for (uint32_t u = 0; u < RU; u++) {
        uint64_t n = shelf_snapshot_seq_len(s, u), k = 0;
        sorted_items(s->seq_item, s->seq_off[u], n, x);
        uint64_t nt = shelf_snapshot_seq_len(a->train, u);
        memcpy(y, a->train->seq_item + a->train->seq_off[u], nt * 4);
        k += nt;
        memcpy(y + k, a->valid_item + a->valid_off[u], (a->valid_off[u + 1] - a->valid_off[u]) * 4);
        k += a->valid_off[u + 1] - a->valid_off[u];
        memcpy(y + k, a->test_item + a->test_off[u], (a->test_off[u + 1] - a->test_off[u]) * 4);
        k += a->test_off[u + 1] - a->test_off[u];
        assert_int_equal(k, n);
        uint32_t *z = malloc((n ? n : 1) * 4);
        sorted_items(y, 0, n, z);
        assert_memory_equal(x, z, n * 4);
        free(z);
    }
    free(x);
    free(y);
    check_deep(a->train);
    check_transpose(a->train);
    /* all to training */
    shelf_split *d = NULL;
    assert_int_equal(shelf_split_random(s, 0, 0, 3, &d, &err), 0);
    assert_same_snapshot(s, d->train);
    shelf_split_free(d);
    shelf_split_free(a);
    shelf_split_free(b);
    shelf_split_free(c);
}

static void test_subset(void **state)
{
    (void)state;
    random_store();
    const shelf_snapshot *s = g_rsnap;
    shelf_err err = {0};
    uint8_t *keep = malloc(RE);
    /* keep all: identical */
    memset(keep, 1, RE);
    shelf_snapshot *t = NULL;
    assert_int_equal(shelf_snapshot_subset(s, keep, &t, &err), 0);
    assert_same_snapshot(s, t);
    shelf_snapshot_free(t);
    /* keep none: empty rows, same names and features */
    memset(keep, 0, RE);
    assert_int_equal(shelf_snapshot_subset(s, keep, &t, &err), 0);
    assert_int_equal(t->n_events, 0);
    assert_int_equal(t->n_nnz, 0);
    for (uint32_t u = 0; u <= RU; u++) assert_int_equal(t->seq_off[u], 0);
    for (uint32_t i = 0; i <= RI; i++) assert_int_equal(t->iu_off[i], 0);
    check_deep(t);
    shelf_snapshot_free(t);
    /* keep every event whose position is not a multiple of 3 */
    for (int e = 0; e < RE; e++) keep[e] = e % 3 != 0;
    assert_int_equal(shelf_snapshot_subset(s, keep, &t, &err), 0);
    check_deep(t);
    check_transpose(t);
    for (int id = SHELF__SEC_ITEM_CATEGORY; id < SHELF__SEC_COUNT; id++) {
        uint64_t n = shelf__snap_sec_count(s, id) * shelf__snap_sec_elem(id);
        assert_int_equal(shelf__snap_sec_count(t, id) * shelf__snap_sec_elem(id), n);
        if (n) assert_memory_equal(shelf__snap_sec_get(s, id), shelf__snap_sec_get(t, id), n);
    }
    uint64_t k = 0;
    float *dense = calloc((size_t)RU * RI, sizeof *dense);
    uint32_t *cnt = calloc((size_t)RU * RI, sizeof *cnt);
    for (uint32_t u = 0; u < RU; u++) {
        assert_int_equal(t->seq_off[u], k);
        for (uint64_t e = s->seq_off[u]; e < s->seq_off[u + 1]; e++) {
            if (!keep[e]) continue;
            assert_int_equal(t->seq_item[k], s->seq_item[e]);
            assert_int_equal(t->seq_type[k], s->seq_type[e]);
            assert_int_equal(t->seq_ts[k], s->seq_ts[e]);
            assert_true(t->seq_value[k] == s->seq_value[e]);
            assert_true(t->seq_weight[k] == s->seq_weight[e]);
            dense[(size_t)u * RI + s->seq_item[e]] += s->seq_weight[e];
            cnt[(size_t)u * RI + s->seq_item[e]]++;
            k++;
        }
    }
    assert_int_equal(t->n_events, k);
    for (uint32_t u = 0; u < RU; u++) {
        uint64_t q = t->ui_off[u];
        for (uint32_t i = 0; i < RI; i++) {
            if (!cnt[(size_t)u * RI + i]) continue;
            assert_int_equal(t->ui_col[q], i);
            assert_true(t->ui_val[q] == dense[(size_t)u * RI + i]);
            q++;
        }
        assert_int_equal(q, t->ui_off[u + 1]);
    }
    free(dense);
    free(cnt);
    /* a subset saves and loads like any snapshot */
    const char *path = tmp_path("subset.snap");
    assert_int_equal(shelf_snapshot_save(t, path, &err), 0);
    shelf_snapshot *l = NULL;
    assert_int_equal(shelf_snapshot_load(path, 0, &l, &err), 0);
    assert_same_snapshot(t, l);
    shelf_snapshot_free(l);
    shelf_snapshot_free(t);
    free(keep);
}

/* Item text survives subset (any events kept) and the subset's save/load;
 * UTF-8 bytes and long texts pass through unchanged. */
static void test_item_text_subset(void **state)
{
    (void)state;
    shelf_store *st = small_store();
    char long_text[3000];
    for (size_t k = 0; k < sizeof long_text - 1; k++) long_text[k] = (char)('a' + k % 26);
    long_text[sizeof long_text - 1] = '\0';
    shelf_item t3 = {.id = "i3", .title = "Caf\xc3\xa9 cr\xc3\xa8me", .text = long_text, .available = 1};
    assert_int_equal(shelf_store_put_item(st, &t3, NULL), 0);
    shelf_snapshot *s = build(st);
    char want3[3100];
    snprintf(want3, sizeof want3, "Caf\xc3\xa9 cr\xc3\xa8me %s", long_text);
    assert_string_equal(s->item_text + s->item_text_off[3], want3);
    check_deep(s);
    shelf_err err = {0};
    uint8_t keep[10];
    for (int round = 0; round < 2; round++) {
        for (int e = 0; e < 10; e++) keep[e] = round ? 0 : (e % 2);
        shelf_snapshot *t = NULL;
        assert_int_equal(shelf_snapshot_subset(s, keep, &t, &err), 0);
        const char *path = tmp_path("text-subset.snap");
        assert_int_equal(shelf_snapshot_save(t, path, &err), 0);
        shelf_snapshot *l = NULL;
        assert_int_equal(shelf_snapshot_load(path, 0, &l, &err), 0);
        for (const shelf_snapshot *x = t; x; x = x == t ? l : NULL) {
            check_deep(x);
            for (uint32_t i = 0; i < 6; i++)
                assert_string_equal(x->item_text + x->item_text_off[i], s->item_text + s->item_text_off[i]);
            assert_string_equal(x->item_text + x->item_text_off[4], "Tote (2020) canvas, large bags acme");
            assert_string_equal(x->item_text + x->item_text_off[3], want3);
        }
        shelf_snapshot_free(l);
        shelf_snapshot_free(t);
    }
    /* a text array that does not end with NUL is caught by the check */
    char why[256];
    const char *saved = s->item_text;
    char *bad = malloc(s->mem->item_text_bytes);
    memcpy(bad, saved, s->mem->item_text_bytes);
    bad[s->mem->item_text_bytes - 1] = 'x';
    s->item_text = bad;
    assert_int_equal(shelf__snap_check(s, 0, why, sizeof why), SHELF_ECORRUPT);
    assert_non_null(strstr(why, "item_text"));
    s->item_text = saved;
    free(bad);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

/* ---- user features ----------------------------------------------------------- */

static uint32_t put_user(shelf_store *st, const char *id, const char *attrs)
{
    shelf_user u = {.id = id, .attributes = attrs};
    uint32_t idx;
    assert_int_equal(shelf_store_put_user(st, &u, &idx), 0);
    return idx;
}

static void assert_ufeats(const shelf_snapshot *s, uint32_t u, const char *const *want, int n)
{
    assert_int_equal(s->ufeat_off[u + 1] - s->ufeat_off[u], n);
    for (int k = 0; k < n; k++) {
        uint32_t f = s->ufeat_col[s->ufeat_off[u] + k];
        assert_true(f < s->n_user_feats);
        assert_string_equal(s->ufeat_name + s->ufeat_name_off[f], want[k]);
    }
}

/* Users with scalar, array, nested and null attributes, without any, with
 * text that is not an object, and a deleted one. */
static shelf_store *ufeat_store(void)
{
    shelf_store *st = store_new();
    put_user(st, "a",
             "{\"segment\":\"b\",\"region\":\"north\",\"age\":31,\"vip\":true,"
             "\"tags\":[\"x\",\"y\"],\"nested\":{\"a\":1},\"none\":null}");
    put_user(st, "b", NULL);
    put_user(st, "c",
             "{\"region\":\"south\",\"segment\":\"b\",\"score\":2.5,\"big\":1e15,\"neg\":-3,"
             "\"tags\":[\"y\",true,1.0,null,{\"q\":1},[\"z\"]],\"vip\":false,"
             "\"dup\":\"v\",\"dup\":\"v\",\"empty\":[]}");
    put_user(st, "d", "{\"segment\":\"a\",\"gone\":1}");
    put_user(st, "e", "{\"age\":31,\"segment\":\"b\",\"region\":\"west\",\"frac\":0.1}");
    put_user(st, "f", "[1,2]");
    put_user(st, "g", "{not json");
    put_user(st, "h", "{}");
    uint32_t idx;
    assert_int_equal(shelf_store_delete_user(st, "d", 1, &idx), 0);
    assert_int_equal(idx, 3);
    uint32_t i0 = item(st, "i0", NULL, NULL, 0, 0), i1 = item(st, "i1", NULL, NULL, 0, 0);
    uint32_t view = type_of(st, "view");
    for (uint32_t u = 0; u < 8; u++) {
        if (u == 3) continue; /* deleted */
        add_event(st, u, i0, view, 10 * u);
        add_event(st, u, i1, view, 10 * u + 1);
    }
    return st;
}

static const char *const ufeat_names[] = {
    "segment=b", "region=north", "age=31", "vip=true", "tags=x", "tags=y",         /* a */
    "region=south", "score=2.5", "big=1e+15", "neg=-3", "tags=true", "tags=1",       /* c */
    "vip=false", "dup=v",                                                            /* c */
    "region=west", "frac=0.1",                                                       /* e */
};
#define N_UFEAT_NAMES ((int)(sizeof ufeat_names / sizeof ufeat_names[0]))

static void check_ufeats(const shelf_snapshot *s)
{
    assert_int_equal(s->n_users, 8);
    assert_int_equal(s->n_user_feats, N_UFEAT_NAMES);
    for (int f = 0; f < N_UFEAT_NAMES; f++)
        assert_string_equal(s->ufeat_name + s->ufeat_name_off[f], ufeat_names[f]);
    static const char *const a[] = {"segment=b", "region=north", "age=31",
                                    "vip=true",  "tags=x",       "tags=y"};
    static const char *const c[] = {"segment=b",  "tags=y", "region=south", "score=2.5",
                                    "big=1e+15",  "neg=-3", "tags=true",    "tags=1",
                                    "vip=false",  "dup=v"};
    static const char *const e[] = {"segment=b", "age=31", "region=west", "frac=0.1"};
    assert_ufeats(s, 0, a, 6);
    assert_ufeats(s, 1, NULL, 0); /* no attributes */
    assert_ufeats(s, 2, c, 10);
    assert_ufeats(s, 3, NULL, 0); /* deleted */
    assert_ufeats(s, 4, e, 4);
    assert_ufeats(s, 5, NULL, 0); /* an array, not an object */
    assert_ufeats(s, 6, NULL, 0); /* not JSON */
    assert_ufeats(s, 7, NULL, 0); /* empty object */
    static const uint64_t off[] = {0, 6, 6, 16, 16, 20, 20, 20, 20};
    assert_u64s(s->ufeat_off, off, 9);
    static const uint32_t col[] = {0, 1, 2, 3, 4, 5,                    /* a */
                                   0, 5, 6, 7, 8, 9, 10, 11, 12, 13,    /* c */
                                   0, 2, 14, 15};                       /* e */
    assert_u32s(s->ufeat_col, col, 20);
    assert_int_equal(s->mem->n_ufeat_links, 20);
    check_deep(s);
}

static void test_user_feats(void **state)
{
    (void)state;
    shelf_store *st = ufeat_store();
    shelf_snapshot *s = build(st);
    check_ufeats(s);
    shelf_err err = {0};

    /* save + load (verified or not): the same arrays */
    const char *path = tmp_path("ufeat.snap");
    assert_int_equal(shelf_snapshot_save(s, path, &err), 0);
    for (int nv = 0; nv < 2; nv++) {
        shelf_snapshot *l = NULL;
        int rc = shelf_snapshot_load(path, nv, &l, &err);
        if (rc) fprintf(stderr, "load: %s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_same_snapshot(s, l);
        check_ufeats(l);
        shelf_snapshot_free(l);
    }

    /* subset (some, none of the events) and the splits keep them */
    assert_int_equal(s->n_events, 14);
    uint8_t keep[14];
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 14; k++) keep[k] = round ? 0 : k % 2;
        shelf_snapshot *t = NULL;
        assert_int_equal(shelf_snapshot_subset(s, keep, &t, &err), 0);
        assert_int_equal(t->n_events, round ? 0 : 7);
        check_ufeats(t);
        shelf_snapshot_free(t);
    }
    shelf_split *sp = NULL;
    assert_int_equal(shelf_split_loo(s, &sp, &err), 0);
    check_ufeats(sp->train);
    shelf_split_free(sp);
    assert_int_equal(shelf_split_temporal(s, 35, 45, &sp, &err), 0);
    check_ufeats(sp->train);
    shelf_split_free(sp);
    assert_int_equal(shelf_split_random(s, 0.2, 0.2, 7, &sp, &err), 0);
    check_ufeats(sp->train);
    shelf_split_free(sp);

    /* the check catches bad feature arrays */
    char why[256];
    uint32_t *col = (uint32_t *)s->ufeat_col;
    col[3] = s->n_user_feats; /* out of range */
    assert_int_equal(shelf__snap_check(s, 1, why, sizeof why), SHELF_ECORRUPT);
    assert_non_null(strstr(why, "ufeat"));
    assert_int_equal(shelf__snap_check(s, 0, why, sizeof why), 0); /* shallow: indices not read */
    /* ... and a saved file holding it is refused on load */
    const char *bad = tmp_path("ufeat-bad.snap");
    assert_int_equal(shelf_snapshot_save(s, bad, &err), 0);
    shelf_snapshot *l = NULL;
    assert_int_equal(shelf_snapshot_load(bad, 0, &l, &err), SHELF_ECORRUPT);
    assert_null(l);
    assert_non_null(strstr(err.msg, "ufeat-bad.snap"));
    assert_non_null(strstr(err.msg, "ufeat"));
    col[3] = 3;
    col[4] = 2; /* not ascending */
    assert_int_equal(shelf__snap_check(s, 1, why, sizeof why), SHELF_ECORRUPT);
    col[4] = 3; /* repeated */
    assert_int_equal(shelf__snap_check(s, 1, why, sizeof why), SHELF_ECORRUPT);
    col[4] = 4;
    check_deep(s);
    uint64_t *off = (uint64_t *)s->ufeat_off;
    off[2] = 5; /* decreases: below off[1] = 6 */
    assert_int_equal(shelf__snap_check(s, 0, why, sizeof why), SHELF_ECORRUPT);
    assert_non_null(strstr(why, "ufeat_off"));
    off[2] = 6;
    char *name = (char *)s->ufeat_name;
    name[s->mem->ufeat_name_bytes - 1] = 'x'; /* last name without its NUL */
    assert_int_equal(shelf__snap_check(s, 0, why, sizeof why), SHELF_ECORRUPT);
    assert_non_null(strstr(why, "ufeat_name"));
    name[s->mem->ufeat_name_bytes - 1] = '\0';
    uint64_t *noff = (uint64_t *)s->ufeat_name_off;
    noff[1] = s->mem->ufeat_name_bytes; /* past the end */
    assert_int_equal(shelf__snap_check(s, 0, why, sizeof why), SHELF_ECORRUPT);
    noff[1] = 10;
    check_deep(s);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

static void test_loo_random(void **state)
{
    (void)state;
    random_store();
    const shelf_snapshot *s = g_rsnap;
    shelf_err err = {0};
    shelf_split *sp = NULL;
    assert_int_equal(shelf_split_loo(s, &sp, &err), 0);
    uint64_t nv = 0, nt = 0;
    for (uint32_t u = 0; u < RU; u++) {
        uint64_t b = s->seq_off[u], n = shelf_snapshot_seq_len(s, u);
        uint64_t tn = shelf_snapshot_seq_len(sp->train, u);
        if (n >= 2) {
            assert_row(sp->test_off, sp->test_item, u, &s->seq_item[b + n - 1], 1);
            nt++;
        } else {
            assert_row(sp->test_off, sp->test_item, u, NULL, 0);
        }
        if (n >= 3) {
            assert_row(sp->valid_off, sp->valid_item, u, &s->seq_item[b + n - 2], 1);
            nv++;
            assert_int_equal(tn, n - 2);
        } else {
            assert_row(sp->valid_off, sp->valid_item, u, NULL, 0);
            assert_int_equal(tn, n >= 2 ? n - 1 : n);
        }
        assert_memory_equal(sp->train->seq_item + sp->train->seq_off[u], s->seq_item + b, tn * 4);
        assert_memory_equal(sp->train->seq_ts + sp->train->seq_off[u], s->seq_ts + b, tn * 8);
    }
    assert_int_equal(sp->n_test, nt);
    assert_int_equal(sp->n_valid, nv);
    check_transpose(sp->train);
    shelf_split_free(sp);
}

static int teardown_all(void **state)
{
    (void)state;
    shelf_snapshot_free(g_rsnap);
    shelf_store_close(g_rst);
    free(g_raw);
    return 0;
}

int main(void)
{
    tmp_init("snapshot");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_small),
        cmocka_unit_test(test_empty_store),
        cmocka_unit_test(test_price_deciles),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_split_loo),
        cmocka_unit_test(test_split_loo_s3rec_import),
        cmocka_unit_test(test_split_temporal),
        cmocka_unit_test(test_random_consistency),
        cmocka_unit_test(test_split_random),
        cmocka_unit_test(test_subset),
        cmocka_unit_test(test_item_text_subset),
        cmocka_unit_test(test_user_feats),
        cmocka_unit_test(test_loo_random),
    };
    int rc = cmocka_run_group_tests_name("snapshot", tests, NULL, teardown_all);
    /* leave nothing behind on success */
    if (rc == 0) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    }
    return rc;
}
