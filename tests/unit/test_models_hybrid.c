/* test_models_hybrid.c: the LightFM-style hybrid model "hybrid" on planted
 * two-group data: items of a group share an attribute (and/or title words),
 * users buy within one group, and some items of each group have no events.
 * After a fit the cold items of a user's own group rank above the other
 * group's (by attributes, by words alone, with both losses), an anonymous
 * session of one group ranks that group first, context-only and empty
 * queries give finite, not-all-equal scores, save -> load scores bit for bit
 * the same, threads = 1 fits are reproducible, and bad options are
 * rejected with a message naming them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shelf/model.h"
#include "shelf/snapshot.h"
#include "test_util.h"

/* ---- planted data ------------------------------------------------------------
 * Items 0..N_HALF-1 are group A, N_HALF..2 N_HALF-1 group B. The last
 * N_COLD of each group have no events. Users 0..N_USERS/2-1 buy PER_USER
 * distinct warm items of group A, the others of group B. */
#define N_HALF 40
#define N_ITEMS (2 * N_HALF)
#define N_COLD 10
#define N_USERS 60
#define PER_USER 8

static int is_cold(uint32_t i) { return i % N_HALF >= N_HALF - N_COLD; }
static int group_of_item(uint32_t i) { return i >= N_HALF; }
static int group_of_user(uint32_t u) { return u >= N_USERS / 2; }

enum { FEAT_ATTRS = 1, FEAT_WORDS = 2, FEAT_USERS = 4 };

/* feats: FEAT_ATTRS gives each item the attribute "group=a|b" (and one of
 * its own), FEAT_WORDS a title with its group's words ("Alpha lotion" /
 * "bravo SHAMPOO") and a word of its own. */
static shelf_snapshot *generate(int feats, uint64_t seed)
{
    shelf_store *st = store_new();
    assert_int_equal(shelf_store_begin(st), 0);
    char id[32], title[96], attr[32];
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        const int g = group_of_item(i);
        snprintf(id, sizeof id, "i%u", i);
        snprintf(title, sizeof title, "%s own%u", g ? "bravo SHAMPOO," : "Alpha lotion:", i);
        shelf_item it = {.id = id, .title = feats & FEAT_WORDS ? title : NULL, .available = 1};
        uint32_t idx;
        assert_int_equal(shelf_store_put_item(st, &it, &idx), 0);
        assert_int_equal(idx, i);
        if (feats & FEAT_ATTRS) {
            const char *ga = g ? "group=b" : "group=a";
            assert_int_equal(shelf_store_item_add_attr(st, idx, ga, strlen(ga)), 0);
            snprintf(attr, sizeof attr, "sku=%u", i);
            assert_int_equal(shelf_store_item_add_attr(st, idx, attr, strlen(attr)), 0);
        }
    }
    const uint32_t buy = type_of(st, "purchase");
    shelf_rng r;
    shelf_rng_seed(&r, seed);
    int64_t ts = 1;
    for (uint32_t u = 0; u < N_USERS; u++) {
        snprintf(id, sizeof id, "u%u", u);
        uint32_t idx;
        assert_int_equal(shelf_store_user_idx(st, id, strlen(id), 1, &idx, NULL), 0);
        assert_int_equal(idx, u);
        if (feats & FEAT_USERS) { /* the segment tells the group; the device tells nothing */
            char at[96];
            snprintf(at, sizeof at, "{\"segment\":\"%s\",\"device\":\"%s\"}", group_of_user(u) ? "b" : "a",
                     u % 2 ? "mobile" : "desktop");
            shelf_user su = {.id = id, .attributes = at};
            assert_int_equal(shelf_store_put_user(st, &su, NULL), 0);
        }
        uint8_t used[N_HALF] = {0};
        for (int k = 0; k < PER_USER; k++) {
            uint32_t x;
            do x = shelf_rng_below(&r, N_HALF - N_COLD);
            while (used[x]);
            used[x] = 1;
            add_event(st, u, (uint32_t)group_of_user(u) * N_HALF + x, buy, ts++);
        }
    }
    assert_int_equal(shelf_store_commit(st), 0);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    return s;
}

static shelf_config *small_opts(const char *extra)
{
    return opts("hyb-factors=8", "hyb-epochs=40", "hyb-lr=0.05", "threads=1",
                extra ? extra : "hyb-reg=1e-5", (char *)NULL);
}

static shelf_model *fit(const shelf_snapshot *s, const shelf_config *c)
{
    shelf_model *m = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_model_new("hybrid", &m, &err), 0);
    int rc = shelf_model_fit(m, s, c, NULL);
    if (rc) fprintf(stderr, "fit: %s\n", shelf_model_errmsg(m));
    assert_int_equal(rc, 0);
    return m;
}

static void score(const shelf_model *m, const shelf_query *q, float *out)
{
    int rc = shelf_model_score(m, q, out, NULL);
    if (rc) fprintf(stderr, "score: %s\n", shelf_model_errmsg(m));
    assert_int_equal(rc, 0);
}

/* Share of (x in own, y in other) pairs with sc[x] > sc[y] (ties: half),
 * over the items that pass keep. */
static double auc(const float *sc, int own_group, int cold_only)
{
    double win = 0;
    long n = 0;
    for (uint32_t x = 0; x < N_ITEMS; x++) {
        if (group_of_item(x) != own_group || (cold_only && !is_cold(x))) continue;
        for (uint32_t y = 0; y < N_ITEMS; y++) {
            if (group_of_item(y) == own_group || (cold_only && !is_cold(y))) continue;
            win += sc[x] > sc[y] ? 1.0 : sc[x] == sc[y] ? 0.5 : 0.0;
            n++;
        }
    }
    return win / (double)n;
}

/* Mean over users of the cold-item AUC (own group's cold items against the
 * other group's). */
static double cold_auc(const shelf_model *m)
{
    float sc[N_ITEMS];
    double sum = 0;
    for (uint32_t u = 0; u < N_USERS; u++) {
        shelf_query q = {.user = u};
        score(m, &q, sc);
        sum += auc(sc, group_of_user(u), 1);
    }
    return sum / N_USERS;
}

/* ---- tests ------------------------------------------------------------------------ */

/* (1) cold items of the user's group above the other group's, by
 * attributes, by title words alone, and with the bpr loss */
static void test_cold_start(void **state)
{
    (void)state;
    static const struct {
        int feats;
        const char *extra;
    } cases[] = {
        {FEAT_ATTRS, NULL},
        {FEAT_WORDS, NULL},
        {FEAT_ATTRS | FEAT_WORDS, "hyb-loss=bpr"},
        {FEAT_ATTRS, "hyb-id-dropout=0"},
        {FEAT_ATTRS, "hyb-cold-neg=true"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        shelf_snapshot *s = generate(cases[c].feats, 7 + c);
        shelf_config *o = small_opts(cases[c].extra);
        shelf_model *m = fit(s, o);
        const double a = cold_auc(m);
        printf("cold AUC (features %d, %s): %.3f\n", cases[c].feats, cases[c].extra ? cases[c].extra : "warp", a);
        assert_true(a > 0.9);
        shelf_model_free(m);
        shelf_config_free(o);
        shelf_snapshot_free(s);
    }
}

/* Without any features the cold items have nothing to go by: the test above
 * is not passed by accident (their scores are all equal). */
static void test_no_features_no_signal(void **state)
{
    (void)state;
    shelf_snapshot *s = generate(0, 3);
    shelf_config *o = small_opts(NULL);
    shelf_model *m = fit(s, o);
    float sc[N_ITEMS];
    shelf_query q = {.user = 0};
    score(m, &q, sc);
    for (uint32_t i = 0; i < N_ITEMS; i++)
        if (is_cold(i)) assert_true(sc[i] == sc[N_HALF - 1]);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(s);
}

/* (2) an anonymous session of group-B items ranks group B first (warm and
 * cold alike) */
static void test_anonymous_session(void **state)
{
    (void)state;
    shelf_snapshot *s = generate(FEAT_ATTRS | FEAT_WORDS, 11);
    shelf_config *o = small_opts(NULL);
    shelf_model *m = fit(s, o);
    const uint32_t hist[3] = {N_HALF + 1, N_HALF + 5, N_HALF + 9};
    shelf_query q = {.user = SHELF_NONE, .items = hist, .n = 3};
    float sc[N_ITEMS];
    score(m, &q, sc);
    const double all = auc(sc, 1, 0), cold = auc(sc, 1, 1);
    printf("anonymous B session: AUC all %.3f, cold %.3f\n", all, cold);
    assert_true(all > 0.95);
    assert_true(cold > 0.9);
    /* the top 10 are all B items */
    for (int t = 0; t < 10; t++) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < N_ITEMS; i++)
            if (sc[i] > sc[best]) best = i;
        assert_true(group_of_item(best));
        sc[best] = -INFINITY;
    }
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(s);
}

static void check_finite_not_flat(const float *sc)
{
    int differ = 0;
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        assert_true(isfinite(sc[i]));
        differ |= sc[i] != sc[0];
    }
    assert_true(differ);
}

/* (3) context-only and empty queries: finite, not all equal (the item
 * biases). With cold items drawn as negatives (hyb-cold-neg) the biases
 * put the bought items above the never-bought ones on average; by default
 * (cold items never negatives) nothing pushes a cold item's bias down, so
 * that order is not promised. */
static void test_context_and_empty(void **state)
{
    (void)state;
    shelf_snapshot *s = generate(FEAT_ATTRS, 5);
    shelf_config *o = small_opts("hyb-cold-neg=true");
    shelf_model *m = fit(s, o);
    float sc[N_ITEMS], sc2[N_ITEMS];
    shelf_query q = {.user = SHELF_NONE};
    score(m, &q, sc);
    check_finite_not_flat(sc);
    double warm = 0, cold = 0;
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        if (is_cold(i)) cold += sc[i];
        else warm += sc[i];
    }
    assert_true(warm / (N_ITEMS - 2 * N_COLD) > cold / (2 * N_COLD));
    /* context hashes; these users have no features, so the context rows
     * never trained (zero): a context-only query scores like the empty one */
    const uint32_t ctx[2] = {3, 5000};
    shelf_query qc = {.user = SHELF_NONE, .ctx = ctx, .n_ctx = 2};
    score(m, &qc, sc2);
    check_finite_not_flat(sc2);
    const uint32_t far[1] = {1u << 30};
    shelf_query qf = {.user = SHELF_NONE, .ctx = far, .n_ctx = 1};
    score(m, &qf, sc2);
    assert_memory_equal(sc, sc2, sizeof sc); /* an untrained context row: the empty query */
    shelf_model_free(m);
    shelf_config_free(o);
    /* the defaults: still finite and not flat */
    o = small_opts(NULL);
    m = fit(s, o);
    score(m, &q, sc);
    check_finite_not_flat(sc);
    score(m, &qc, sc2);
    check_finite_not_flat(sc2);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(s);
}

/* User features: users carry "segment=a|b" (their group) and a device
 * that says nothing. A new shopper known only by segment=a scores the warm
 * items of group a above those of group b, segment=b the reverse; the
 * device alone (or a context no user had) does not pick a group. */
static void test_user_features(void **state)
{
    (void)state;
    shelf_snapshot *s = generate(FEAT_ATTRS | FEAT_USERS, 8);
    assert_int_equal(s->n_user_feats, 4);
    shelf_config *o = small_opts(NULL);
    shelf_model *m = fit(s, o);
    float sc[N_ITEMS];
    const char *segs[2] = {"segment=a", "segment=b"};
    double gap[2];
    for (int g = 0; g < 2; g++) {
        uint32_t h = shelf_ctx_hash(segs[g], strlen(segs[g]));
        shelf_query q = {.user = SHELF_NONE, .ctx = &h, .n_ctx = 1};
        score(m, &q, sc);
        check_finite_not_flat(sc);
        double ma = 0, mb = 0;
        for (uint32_t i = 0; i < N_ITEMS; i++) {
            if (is_cold(i)) continue;
            if (group_of_item(i)) mb += sc[i];
            else ma += sc[i];
        }
        gap[g] = (ma - mb) / (N_HALF - N_COLD);
    }
    fprintf(stderr, "user features: mean score gap (group a - group b) for segment=a %.3f, segment=b %.3f\n", gap[0],
            gap[1]);
    assert_true(gap[0] > 0.1 && gap[1] < -0.1);
    /* the device splits both groups evenly: a much smaller gap */
    uint32_t h = shelf_ctx_hash("device=mobile", 13);
    shelf_query qd = {.user = SHELF_NONE, .ctx = &h, .n_ctx = 1};
    score(m, &qd, sc);
    double ma = 0, mb = 0;
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        if (is_cold(i)) continue;
        if (group_of_item(i)) mb += sc[i];
        else ma += sc[i];
    }
    double gd = fabs(ma - mb) / (N_HALF - N_COLD);
    assert_true(gd < 0.5 * fabs(gap[0]) && gd < 0.5 * fabs(gap[1]));
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(s);
}

static void remove_bundle(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tensors.safetensors", dir);
    unlink(p);
    rmdir(dir);
}

/* Known users, an anonymous session, context and empty queries score the
 * same, bit for bit, on a and b. */
static void check_same_scores(const shelf_model *a, const shelf_model *b)
{
    float x[N_ITEMS], y[N_ITEMS];
    for (uint32_t u = 0; u < N_USERS; u += 7) {
        shelf_query q = {.user = u};
        score(a, &q, x);
        score(b, &q, y);
        assert_memory_equal(x, y, sizeof x);
    }
    const uint32_t hist[2] = {2, N_HALF + 3}, ctx[1] = {17};
    const shelf_query qs[3] = {{.user = SHELF_NONE, .items = hist, .n = 2},
                               {.user = SHELF_NONE, .ctx = ctx, .n_ctx = 1},
                               {.user = SHELF_NONE}};
    for (int k = 0; k < 3; k++) {
        score(a, &qs[k], x);
        score(b, &qs[k], y);
        assert_memory_equal(x, y, sizeof x);
    }
}

/* (4) save -> load: bitwise equal scores */
static void test_save_load(void **state)
{
    (void)state;
    shelf_snapshot *s = generate(FEAT_ATTRS | FEAT_WORDS, 13);
    shelf_config *o = small_opts("hyb-id-dropout=0.2");
    shelf_model *m = fit(s, o);
    const char *dir = tmp_path("hybrid.bundle");
    remove_bundle(dir);
    shelf_err err = {0};
    int rc = shelf_model_save(m, dir, &err);
    if (rc) fprintf(stderr, "save: %s\n", err.msg);
    assert_int_equal(rc, 0);
    shelf_model *back = NULL;
    rc = shelf_model_load(dir, &back, &err);
    if (rc) fprintf(stderr, "load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(shelf_model_name(back), "hybrid");
    assert_int_equal(back->n_users, m->n_users);
    assert_int_equal(back->n_items, m->n_items);
    check_same_scores(m, back);
    shelf_model_free(back);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(s);
}

/* (5) threads = 1: two fits with one seed are identical, another seed
 * differs; both losses */
static void test_reproducible(void **state)
{
    (void)state;
    shelf_snapshot *s = generate(FEAT_ATTRS | FEAT_WORDS, 17);
    static const char *const loss[2] = {"hyb-loss=warp", "hyb-loss=bpr"};
    for (int l = 0; l < 2; l++) {
        shelf_config *o = small_opts(loss[l]);
        shelf_model *a = fit(s, o), *b = fit(s, o);
        check_same_scores(a, b);
        shelf_err err = {0};
        assert_int_equal(shelf_config_set(o, "seed", "12345", "test", &err), 0);
        shelf_model *c = fit(s, o);
        float x[N_ITEMS], y[N_ITEMS];
        shelf_query q = {.user = 0};
        score(a, &q, x);
        score(c, &q, y);
        assert_memory_not_equal(x, y, sizeof x);
        shelf_model_free(a);
        shelf_model_free(b);
        shelf_model_free(c);
        shelf_config_free(o);
    }
    /* more threads (Hogwild) runs and still separates the groups */
    shelf_config *o = small_opts("threads=2");
    shelf_model *m = fit(s, o);
    assert_true(cold_auc(m) > 0.9);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(s);
}

/* (6) bad options: the configuration refuses them naming the option;
 * nothing to learn is a clear fit error */
static void test_bad_options(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"hyb-loss", "hinge"},     {"hyb-factors", "0"},      {"hyb-lr", "-1"},
        {"hyb-id-dropout", "1"},   {"hyb-text-buckets", "-3"}, {"hyb-ctx-buckets", "0"},
        {"hyb-freeze-cold", "maybe"}, {"hyb-epochs", "many"},
    };
    shelf_config *c = shelf_config_new();
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        shelf_err err = {0};
        int rc = shelf_config_set(c, bad[k][0], bad[k][1], "test", &err);
        assert_true(rc < 0);
        if (!strstr(err.msg, bad[k][0])) fprintf(stderr, "message without the option name: %s\n", err.msg);
        assert_non_null(strstr(err.msg, bad[k][0]));
    }
    shelf_config_free(c);

    /* a snapshot without events */
    shelf_store *st = store_new();
    make_ids(st, 3, 4);
    shelf_snapshot *s = build(st);
    shelf_config *o = small_opts(NULL);
    shelf_model *m = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_model_new("hybrid", &m, &err), 0);
    assert_int_equal(shelf_model_fit(m, s, o, NULL), SHELF_EINVAL);
    assert_non_null(strstr(shelf_model_errmsg(m), "nothing to learn"));
    float sc[4];
    shelf_query q = {.user = SHELF_NONE};
    assert_int_equal(shelf_model_score(m, &q, sc, NULL), SHELF_EINVAL); /* not fitted */
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(s);
    shelf_store_close(st);
}

int main(void)
{
    tmp_init("models_hybrid");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cold_start),         cmocka_unit_test(test_no_features_no_signal),
        cmocka_unit_test(test_anonymous_session),  cmocka_unit_test(test_context_and_empty),
        cmocka_unit_test(test_user_features),
        cmocka_unit_test(test_save_load),          cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
