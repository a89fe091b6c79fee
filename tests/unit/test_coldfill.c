/* test_coldfill.c: content neighbours of cold items (shelf/coldfill.h):
 * neighbours and cosines checked against values computed here by hand from
 * the IDF definition, the weighted mean, items added after the build, and
 * the eval option that applies it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shelf/coldfill.h"
#include "models/coldfill_int.h"

/* features: small integers as hashes */
static void set(shelf_coldfill *cf, uint32_t item, const uint64_t *f, size_t n)
{
    assert_int_equal(shelf_coldfill_set_item(cf, item, f, n), 0);
}

/* Warm items 0..3 with features {1,2}, {1,3}, {2,3,4}, {5}; cold item 4 with
 * {1,2,9} (9: no warm item has it) and cold item 5 with {7} (nothing shared).
 * W = 4 warm items with features; df: 1->2, 2->2, 3->2, 4->1, 5->1.
 * idf = ln(1 + W/df). */
static void test_neighbours_by_hand(void **state)
{
    (void)state;
    shelf_coldfill *cf = shelf_coldfill_new(3);
    assert_non_null(cf);
    const uint64_t f0[] = {1, 2}, f1[] = {3, 1, 1}, f2[] = {2, 3, 4}, f3[] = {5}, f4[] = {9, 2, 1}, f5[] = {7};
    set(cf, 0, f0, 2);
    set(cf, 1, f1, 3); /* order and duplicates do not matter */
    set(cf, 2, f2, 3);
    set(cf, 3, f3, 1);
    set(cf, 4, f4, 3);
    set(cf, 5, f5, 1);
    const uint8_t warm[6] = {1, 1, 1, 1, 0, 0};
    assert_int_equal(shelf_coldfill_build(cf, warm, 6), 0);

    const double a = log(1.0 + 4.0 / 2.0), b = log(1.0 + 4.0 / 1.0); /* idf of df 2 and df 1 */
    const double n0 = sqrt(2 * a * a), n1 = n0, n2 = sqrt(2 * a * a + b * b);
    const double n4 = sqrt(2 * a * a); /* feature 9 is unknown: it does not count */
    const double c0 = 2 * a * a / (n4 * n0), c1 = a * a / (n4 * n1), c2 = a * a / (n4 * n2);
    uint32_t nb[3];
    float w[3];
    uint32_t n = shelf_coldfill_neighbours(cf, 4, nb, w);
    assert_int_equal(n, 3);
    assert_int_equal(nb[0], 0); /* {1,2}: both shared */
    assert_int_equal(nb[1], 1); /* {1,3} and {2,3,4} share one feature each; item 1 is smaller */
    assert_int_equal(nb[2], 2);
    assert_true(fabs(w[0] - c0) < 1e-6 && fabs(w[1] - c1) < 1e-6 && fabs(w[2] - c2) < 1e-6);
    assert_true(fabs(w[0] - 1.0) < 1e-6); /* the same known features: cosine 1 */
    assert_int_equal(shelf_coldfill_neighbours(cf, 5, nb, w), 0); /* nothing shared */
    assert_int_equal(shelf_coldfill_neighbours(cf, 0, nb, w), 0); /* warm items keep their scores */
    assert_int_equal(shelf_coldfill_count(cf), 1);

    /* the weighted mean of the neighbours' scores; -inf neighbours are skipped */
    float sc[6] = {1.0f, 2.0f, 4.0f, 8.0f, -5.0f, -7.0f};
    shelf_coldfill_apply(cf, sc, 6);
    double want = (c0 * 1.0 + c1 * 2.0 + c2 * 4.0) / (c0 + c1 + c2);
    assert_true(fabs(sc[4] - want) < 1e-5);
    assert_true(sc[5] == -7.0f && sc[0] == 1.0f && sc[3] == 8.0f);
    float sc2[6] = {-INFINITY, 2.0f, 4.0f, 8.0f, -5.0f, -7.0f};
    shelf_coldfill_apply(cf, sc2, 6);
    want = (c1 * 2.0 + c2 * 4.0) / (c1 + c2);
    assert_true(fabs(sc2[4] - want) < 1e-5);

    /* an item added after the build: cold, neighbours found by update */
    const uint64_t f6[] = {5, 8};
    set(cf, 6, f6, 2);
    assert_int_equal(shelf_coldfill_update(cf, 6), 0);
    n = shelf_coldfill_neighbours(cf, 6, nb, w);
    assert_int_equal(n, 1);
    assert_int_equal(nb[0], 3);
    float sc3[7] = {1, 2, 4, 8, 0, 0, -INFINITY};
    shelf_coldfill_apply(cf, sc3, 7);
    assert_true(sc3[6] == 8.0f); /* one neighbour: its score */
    assert_int_equal(shelf_coldfill_update(cf, 99), SHELF_EINVAL);
    shelf_coldfill_free(cf);
}

/* k bounds the list; the best survive */
static void test_k_limit(void **state)
{
    (void)state;
    assert_null(shelf_coldfill_new(0));
    assert_null(shelf_coldfill_new(65));
    shelf_coldfill *cf = shelf_coldfill_new(2);
    uint8_t warm[10] = {0};
    /* warm item i (1..8) shares i of the cold item's 8 features */
    const uint64_t cold[8] = {10, 11, 12, 13, 14, 15, 16, 17};
    set(cf, 0, cold, 8);
    for (uint32_t i = 1; i <= 8; i++) {
        uint64_t f[9];
        for (uint32_t j = 0; j < i; j++) f[j] = 10 + j;
        f[i] = 100 + i; /* one private feature each */
        set(cf, i, f, i + 1);
        warm[i] = 1;
    }
    assert_int_equal(shelf_coldfill_build(cf, warm, 9), 0);
    uint32_t nb[2];
    float w[2];
    assert_int_equal(shelf_coldfill_neighbours(cf, 0, nb, w), 2);
    assert_true(w[0] >= w[1] && w[1] > 0);
    assert_true(nb[0] == 8 || nb[0] == 7);
    shelf_coldfill_free(cf);
}

/* Same hashes from strings whatever their source; words are case-folded */
static void test_item_features(void **state)
{
    (void)state;
    const char *attrs[] = {"color=red", "size=M"};
    uint64_t a[32], b[32];
    size_t na = shelf_coldfill_item_features("Beauty > Skin", "Acme", "Red Lipstick", NULL, attrs, 2, a, 32);
    size_t nb = shelf_coldfill_item_features("Beauty > Skin", "Acme", "red LIPSTICK", NULL, attrs, 2, b, 32);
    assert_int_equal(na, 6);
    assert_int_equal(nb, 6);
    assert_memory_equal(a, b, na * sizeof *a);
    assert_true(shelf_coldfill_hash('c', "x", 1) != shelf_coldfill_hash('b', "x", 1)); /* kinds apart */
    /* a cap smaller than the features: the count says how many there were */
    assert_int_equal(shelf_coldfill_item_features("c", "b", "one two three", NULL, NULL, 0, a, 2), 5);
}

/* a shopper's content profile, by hand: the items of test_neighbours_by_hand,
 * history {0, 1} -> profile 2 x idf(1) on 1, idf(2) on 2, idf(3) on 3 */
static void test_profile_by_hand(void **state)
{
    (void)state;
    shelf_coldfill *cf = shelf_coldfill_new(3);
    const uint64_t f0[] = {1, 2}, f1[] = {1, 3}, f2[] = {2, 3, 4}, f3[] = {5}, f4[] = {9, 2, 1};
    set(cf, 0, f0, 2);
    set(cf, 1, f1, 2);
    set(cf, 2, f2, 3);
    set(cf, 3, f3, 1);
    set(cf, 4, f4, 3);
    const uint8_t warm[5] = {1, 1, 1, 1, 0};
    assert_int_equal(shelf_coldfill_build(cf, warm, 5), 0);
    const double a = log(1.0 + 4.0 / 2.0), b = log(1.0 + 4.0 / 1.0), r = log(1.0 + 4.0); /* r: unknown feature 9 */
    const double np = sqrt(6 * a * a); /* (2a, a, a) */
    const uint32_t hist[2] = {0, 1}, cand[3] = {2, 3, 4};
    float out[3];
    assert_int_equal(shelf__coldfill_profile_scores(cf, hist, 2, cand, 3, out), 0);
    const double want2 = (a * a + a * a) / (np * sqrt(2 * a * a + b * b)); /* shares 2 and 3 */
    const double want4 = (2 * a * a + a * a) / (np * sqrt(2 * a * a + r * r)); /* shares 1 and 2 */
    assert_true(fabs(out[0] - want2) < 1e-6);
    assert_true(out[1] == 0); /* {5}: nothing in common */
    assert_true(fabs(out[2] - want4) < 1e-6);
    shelf_coldfill_free(cf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_neighbours_by_hand),
        cmocka_unit_test(test_k_limit),
        cmocka_unit_test(test_item_features),
        cmocka_unit_test(test_profile_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
