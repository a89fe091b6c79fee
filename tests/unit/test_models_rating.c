/* test_models_rating.c: the explicit-rating models rating-mf and svdpp:
 * planted low-rank structure is recovered (held-out RMSE far below the
 * global-mean baseline, other event types ignored), biases are recovered in
 * a bias-only case, predictions stay on the training scale, SVD++'s
 * implicit term carries an anonymous history, fits are reproducible bit for
 * bit for a seed, score agrees with predict, save -> load gives identical
 * predictions, and a snapshot without ratings is a clear error. */
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
#include "shelf/store.h"
#include "test_util.h"

/* ---- helpers ---------------------------------------------------------------- */

static shelf_model *fit(const char *name, const shelf_snapshot *s, const shelf_config *c)
{
    shelf_model *m = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_model_new(name, &m, &err), 0);
    int rc = shelf_model_fit(m, s, c, NULL);
    if (rc) fprintf(stderr, "fit: %s\n", shelf_model_errmsg(m));
    assert_int_equal(rc, 0);
    assert_int_equal(m->n_users, s->n_users);
    assert_int_equal(m->n_items, s->n_items);
    return m;
}

static float predict(const shelf_model *m, uint32_t u, uint32_t i)
{
    float r = NAN;
    int rc = shelf_model_predict(m, u, i, &r, NULL);
    if (rc) fprintf(stderr, "predict: %s\n", shelf_model_errmsg(m));
    assert_int_equal(rc, 0);
    return r;
}

/* Small, fast options for both models (explicit, so that the tests do not
 * follow the tuned defaults). */
static shelf_config *small_opts(const char *model, uint32_t K, const char *seed)
{
    char k[48], sd[48];
    snprintf(sd, sizeof sd, "seed=%s", seed);
    if (strcmp(model, "svdpp") == 0) {
        snprintf(k, sizeof k, "svdpp-factors=%u", K);
        return opts(k, sd, "svdpp-epochs=80", "svdpp-lr=0.02", "svdpp-lr-bias=0.02", "svdpp-lr-y=0.01",
                    "svdpp-lr-decay=0.97", "svdpp-reg=0.02", "svdpp-reg-y=0.02", "svdpp-reg-bias=0.01",
                    "svdpp-init-std=0.1", NULL);
    }
    snprintf(k, sizeof k, "mf-factors=%u", K);
    return opts(k, sd, "mf-epochs=80", "mf-lr=0.02", "mf-lr-bias=0.02", "mf-lr-decay=0.97", "mf-reg=0.02",
                "mf-reg-bias=0.01", "mf-init-std=0.1", NULL);
}

/* Planted data: r = 3 + b_u + b_i + p_u . q_i (rank 3) + N(0, 0.1^2), on a
 * random ~60% of the U x I pairs; a fifth of those held out. Every user
 * also has a few "view" events (value 0) that a rating model must ignore. */
#define PU 60
#define PI 50
#define PK 3
typedef struct planted {
    shelf_snapshot *s;
    uint32_t n_test;
    uint32_t tu[PU * PI], ti[PU * PI];
    float tr[PU * PI];
    double train_mean;
} planted;

static void make_planted(planted *d, uint64_t seed)
{
    shelf_rng r;
    shelf_rng_seed(&r, seed);
    float bu[PU], bi[PI], P[PU][PK], Q[PI][PK];
    for (uint32_t u = 0; u < PU; u++) {
        bu[u] = (float)(0.4 * shelf_rng_normal(&r));
        for (int k = 0; k < PK; k++) P[u][k] = (float)(0.6 * shelf_rng_normal(&r));
    }
    for (uint32_t i = 0; i < PI; i++) {
        bi[i] = (float)(0.4 * shelf_rng_normal(&r));
        for (int k = 0; k < PK; k++) Q[i][k] = (float)(0.6 * shelf_rng_normal(&r));
    }
    shelf_store *st = store_new();
    make_ids(st, PU, PI);
    uint32_t rating = type_of(st, "rating"), view = type_of(st, "view");
    assert_int_equal(shelf_store_begin(st), 0);
    int64_t ts = 1;
    double sum = 0;
    uint32_t n_train = 0;
    d->n_test = 0;
    for (uint32_t u = 0; u < PU; u++) {
        for (uint32_t i = 0; i < PI; i++) {
            if (shelf_rng_uniform(&r) >= 0.6) continue;
            float v = 3.0f + bu[u] + bi[i] + (float)(0.1 * shelf_rng_normal(&r));
            for (int k = 0; k < PK; k++) v += P[u][k] * Q[i][k];
            if (shelf_rng_uniform(&r) < 0.2) {
                d->tu[d->n_test] = u;
                d->ti[d->n_test] = i;
                d->tr[d->n_test++] = v;
            } else {
                add_event_value(st, u, i, rating, v, ts++);
                sum += v;
                n_train++;
            }
        }
        for (int j = 0; j < 3; j++) add_event_value(st, u, shelf_rng_below(&r, PI), view, 0, ts++);
    }
    assert_int_equal(shelf_store_commit(st), 0);
    d->s = build(st);
    shelf_store_close(st);
    d->train_mean = sum / n_train;
}

static double holdout_rmse(const shelf_model *m, const planted *d)
{
    double se = 0;
    for (uint32_t j = 0; j < d->n_test; j++) {
        double e = predict(m, d->tu[j], d->ti[j]) - d->tr[j];
        se += e * e;
    }
    return sqrt(se / d->n_test);
}

static double baseline_rmse(const planted *d)
{
    double se = 0;
    for (uint32_t j = 0; j < d->n_test; j++) se += (d->train_mean - d->tr[j]) * (d->train_mean - d->tr[j]);
    return sqrt(se / d->n_test);
}

/* ---- tests ------------------------------------------------------------------- */

static void check_planted(const char *model)
{
    static planted d;
    make_planted(&d, 7);
    shelf_config *c = small_opts(model, 8, "3");
    shelf_model *m = fit(model, d.s, c);
    double base = baseline_rmse(&d), rmse = holdout_rmse(m, &d);
    assert_true(d.n_test > 200);
    if (!(rmse < 0.5 * base) || getenv("SHELF_TEST_VERBOSE"))
        fprintf(stderr, "%s: held-out rmse %.4f, baseline %.4f\n", model, rmse, base);
    assert_true(rmse < 0.5 * base);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(d.s);
}

static void test_mf_planted(void **state)
{
    (void)state;
    check_planted("rating-mf");
}

static void test_svdpp_planted(void **state)
{
    (void)state;
    check_planted("svdpp");
}

/* r = 3 + b_u + b_i exactly, on the full matrix; with init-std 0 the factors
 * stay zero (their gradients are products of zeros), so the model is
 * biases only and must find them: b_u - b_0 and b_i - b_0 (mu is fixed, the
 * biases are determined up to a shift between users and items). */
static void check_biases(const char *model)
{
    enum { U = 30, I = 25 };
    float bu[U], bi[I];
    shelf_rng r;
    shelf_rng_seed(&r, 11);
    for (uint32_t u = 0; u < U; u++) bu[u] = (float)(0.5 * shelf_rng_normal(&r));
    for (uint32_t i = 0; i < I; i++) bi[i] = (float)(0.5 * shelf_rng_normal(&r));
    shelf_store *st = store_new();
    make_ids(st, U, I);
    uint32_t rating = type_of(st, "rating");
    assert_int_equal(shelf_store_begin(st), 0);
    int64_t ts = 1;
    for (uint32_t u = 0; u < U; u++)
        for (uint32_t i = 0; i < I; i++) add_event_value(st, u, i, rating, 3.0f + bu[u] + bi[i], ts++);
    assert_int_equal(shelf_store_commit(st), 0);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    shelf_config *c = strcmp(model, "svdpp") == 0
                          ? opts("svdpp-factors=2", "svdpp-init-std=0", "svdpp-reg-bias=0", "svdpp-epochs=200",
                                 "svdpp-lr-bias=0.01", "svdpp-lr-decay=1", NULL)
                          : opts("mf-factors=2", "mf-init-std=0", "mf-reg-bias=0", "mf-epochs=200", "mf-lr-bias=0.01",
                                 "mf-lr-decay=1", NULL);
    shelf_model *m = fit(model, s, c);
    /* mu + b_i from an unknown user; b_u from a known one on item 0 */
    float mi[I], ub[U];
    for (uint32_t i = 0; i < I; i++) mi[i] = predict(m, SHELF_NONE, i);
    for (uint32_t u = 0; u < U; u++) ub[u] = predict(m, u, 0) - mi[0];
    for (uint32_t i = 1; i < I; i++) assert_float_equal(mi[i] - mi[0], bi[i] - bi[0], 0.02);
    for (uint32_t u = 1; u < U; u++) assert_float_equal(ub[u] - ub[0], bu[u] - bu[0], 0.02);
    /* and the full matrix is reproduced (where no clip applies) */
    double se = 0;
    for (uint32_t u = 0; u < U; u++)
        for (uint32_t i = 0; i < I; i++) {
            double t = 3.0 + bu[u] + bi[i], p = predict(m, u, i);
            se += (p - t) * (p - t);
        }
    assert_true(sqrt(se / (U * I)) < 0.01);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

static void test_biases(void **state)
{
    (void)state;
    check_biases("rating-mf");
    check_biases("svdpp");
}

/* Ratings only in 2..4: every prediction (known users, unknown user, every
 * item, predict and score alike) lies in [2, 4], and pairs of a user who
 * rates everything 4 with items everyone rates 4 hit the top of the scale
 * (their unclipped prediction is above it). */
static void test_clip(void **state)
{
    (void)state;
    enum { U = 20, I = 15 };
    shelf_store *st = store_new();
    make_ids(st, U, I);
    uint32_t rating = type_of(st, "rating");
    shelf_rng r;
    shelf_rng_seed(&r, 5);
    assert_int_equal(shelf_store_begin(st), 0);
    int64_t ts = 1;
    for (uint32_t u = 0; u < U; u++)
        for (uint32_t i = 0; i < I; i++) {
            if (u > 0 && i > 2 && shelf_rng_uniform(&r) < 0.3) continue;
            float v = u == 0 || i < 3 ? 4.0f : (float)(2 + shelf_rng_below(&r, 3));
            add_event_value(st, u, i, rating, v, ts++);
        }
    assert_int_equal(shelf_store_commit(st), 0);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    const char *models[2] = {"rating-mf", "svdpp"};
    float scores[I];
    for (int k = 0; k < 2; k++) {
        shelf_config *c = small_opts(models[k], 4, "1");
        shelf_model *m = fit(models[k], s, c);
        int top = 0;
        for (uint32_t u = 0; u <= U; u++) {
            uint32_t user = u == U ? SHELF_NONE : u;
            shelf_query q = {.user = user};
            assert_int_equal(shelf_model_score(m, &q, scores, NULL), 0);
            for (uint32_t i = 0; i < I; i++) {
                float p = predict(m, user, i);
                assert_true(p >= 2.0f && p <= 4.0f);
                assert_true(scores[i] >= 2.0f && scores[i] <= 4.0f);
                top += p == 4.0f;
            }
        }
        assert_true(predict(m, 0, 0) == 4.0f);
        assert_true(top > 0);
        shelf_model_free(m);
        shelf_config_free(c);
    }
    shelf_snapshot_free(s);
}

/* Two tastes: users of kind A rate mostly items of group A (high) and a
 * few of group B (low); kind B the other way round. Item biases are alike
 * by symmetry. SVD++ scores an anonymous history of A items with group A
 * well above group B (the y vectors carry the taste) and the reverse for a
 * B history; rating-mf, whose anonymous estimate is mu + b_i, cannot. */
static void test_svdpp_implicit(void **state)
{
    (void)state;
    enum { U = 80, I = 40 };
    shelf_store *st = store_new();
    make_ids(st, U, I);
    uint32_t rating = type_of(st, "rating");
    shelf_rng r;
    shelf_rng_seed(&r, 9);
    assert_int_equal(shelf_store_begin(st), 0);
    int64_t ts = 1;
    for (uint32_t u = 0; u < U; u++) {
        int kind = u & 1;
        for (uint32_t i = 0; i < I; i++) {
            int group = i < I / 2 ? 0 : 1;
            double p = group == kind ? 0.6 : 0.15;
            if (shelf_rng_uniform(&r) >= p) continue;
            float v = group == kind ? 4.0f + (float)shelf_rng_below(&r, 2) : 1.0f + (float)shelf_rng_below(&r, 2);
            add_event_value(st, u, i, rating, v, ts++);
        }
    }
    assert_int_equal(shelf_store_commit(st), 0);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);

    uint32_t hist_a[6] = {0, 2, 4, 6, 8, 10}, hist_b[6] = {20, 22, 24, 26, 28, 30};
    float sc[I];
    double gap[2];
    const char *models[2] = {"svdpp", "rating-mf"};
    for (int k = 0; k < 2; k++) {
        shelf_config *c = small_opts(models[k], 8, "4");
        shelf_model *m = fit(models[k], s, c);
        for (int h = 0; h < 2; h++) {
            shelf_query q = {.user = SHELF_NONE, .items = h ? hist_b : hist_a, .n = 6};
            assert_int_equal(shelf_model_score(m, &q, sc, NULL), 0);
            double ma = 0, mb = 0;
            for (uint32_t i = 0; i < I; i++) {
                if (i < I / 2) ma += sc[i] / (I / 2);
                else mb += sc[i] / (I / 2);
            }
            if (h == 0) gap[k] = ma - mb;
            else gap[k] += mb - ma; /* both directions: the sum of the two gaps */
        }
        shelf_model_free(m);
        shelf_config_free(c);
    }
    if (!(gap[0] > 2.0) || getenv("SHELF_TEST_VERBOSE"))
        fprintf(stderr, "svdpp taste gap %.3f, rating-mf %.3f\n", gap[0], gap[1]);
    assert_true(gap[0] > 2.0);             /* two directions, about 1+ star each */
    assert_true(fabs(gap[1]) < 1e-6);      /* mu + b_i: the same for both histories */
    shelf_snapshot_free(s);
}

static void score_all(const shelf_model *m, uint32_t U, uint32_t I, float *out)
{
    for (uint32_t u = 0; u <= U; u++) {
        shelf_query q = {.user = u == U ? SHELF_NONE : u};
        assert_int_equal(shelf_model_score(m, &q, out + (size_t)u * I, NULL), 0);
    }
}

/* Same seed: bitwise the same predictions; another seed: different ones.
 * score and predict agree bit for bit. */
static void test_reproducible(void **state)
{
    (void)state;
    static planted d;
    make_planted(&d, 21);
    const uint32_t U = d.s->n_users, I = d.s->n_items;
    float *a = malloc((size_t)(U + 1) * I * sizeof *a), *b = malloc((size_t)(U + 1) * I * sizeof *b);
    const char *models[2] = {"rating-mf", "svdpp"};
    for (int k = 0; k < 2; k++) {
        shelf_config *c1 = small_opts(models[k], 6, "17"), *c2 = small_opts(models[k], 6, "18");
        shelf_model *m1 = fit(models[k], d.s, c1), *m2 = fit(models[k], d.s, c1);
        score_all(m1, U, I, a);
        score_all(m2, U, I, b);
        assert_memory_equal(a, b, (size_t)(U + 1) * I * sizeof *a);
        for (uint32_t u = 0; u <= U; u++)
            for (uint32_t i = 0; i < I; i++) {
                float p = predict(m1, u == U ? SHELF_NONE : u, i);
                assert_memory_equal(&p, &a[(size_t)u * I + i], sizeof p);
            }
        shelf_model *m3 = fit(models[k], d.s, c2);
        score_all(m3, U, I, b);
        assert_true(memcmp(a, b, (size_t)U * I * sizeof *a) != 0);
        shelf_model_free(m1);
        shelf_model_free(m2);
        shelf_model_free(m3);
        shelf_config_free(c1);
        shelf_config_free(c2);
    }
    free(a);
    free(b);
    shelf_snapshot_free(d.s);
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

/* save -> load: the same kind, sizes and bitwise the same predictions and
 * scores (known users, unknown user, anonymous history). */
static void test_save_load(void **state)
{
    (void)state;
    static planted d;
    make_planted(&d, 33);
    const uint32_t U = d.s->n_users, I = d.s->n_items;
    float *a = malloc((size_t)(U + 1) * I * sizeof *a), *b = malloc((size_t)(U + 1) * I * sizeof *b);
    const char *models[2] = {"rating-mf", "svdpp"};
    for (int k = 0; k < 2; k++) {
        shelf_config *c = small_opts(models[k], 5, "2");
        shelf_model *m = fit(models[k], d.s, c);
        const char *dir = tmp_path(models[k]);
        remove_bundle(dir);
        shelf_err err = {0};
        int rc = shelf_model_save(m, dir, &err);
        if (rc) fprintf(stderr, "save: %s\n", err.msg);
        assert_int_equal(rc, 0);
        shelf_model *back = NULL;
        rc = shelf_model_load(dir, &back, &err);
        if (rc) fprintf(stderr, "load: %s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_string_equal(shelf_model_name(back), models[k]);
        assert_int_equal(back->n_users, U);
        assert_int_equal(back->n_items, I);
        score_all(m, U, I, a);
        score_all(back, U, I, b);
        assert_memory_equal(a, b, (size_t)(U + 1) * I * sizeof *a);
        for (uint32_t u = 0; u < U; u += 7)
            for (uint32_t i = 0; i < I; i++) {
                float x = predict(m, u, i), y = predict(back, u, i);
                assert_memory_equal(&x, &y, sizeof x);
            }
        uint32_t hist[3] = {1, 4, 4};
        shelf_query q = {.user = SHELF_NONE, .items = hist, .n = 3};
        assert_int_equal(shelf_model_score(m, &q, a, NULL), 0);
        assert_int_equal(shelf_model_score(back, &q, b, NULL), 0);
        assert_memory_equal(a, b, I * sizeof *a);
        shelf_model_free(back);
        shelf_model_free(m);
        shelf_config_free(c);
        remove_bundle(dir);
    }
    free(a);
    free(b);
    shelf_snapshot_free(d.s);
}

/* No rating events: a clear error naming the missing type; predict on an
 * unfitted model and out-of-range items are refused. */
static void test_errors(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    make_ids(st, 3, 3);
    uint32_t view = type_of(st, "view");
    add_event(st, 0, 1, view, 1);
    add_event(st, 1, 2, view, 2);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    const char *models[2] = {"rating-mf", "svdpp"};
    for (int k = 0; k < 2; k++) {
        shelf_model *m = NULL;
        shelf_err err = {0};
        assert_int_equal(shelf_model_new(models[k], &m, &err), 0);
        float p;
        assert_int_equal(shelf_model_predict(m, 0, 0, &p, NULL), SHELF_EINVAL);
        shelf_config *c = opts("seed=1", NULL);
        assert_int_equal(shelf_model_fit(m, s, c, NULL), SHELF_EINVAL);
        assert_non_null(strstr(shelf_model_errmsg(m), "\"rating\""));
        assert_int_equal(m->fitted, 0);
        shelf_config_free(c);
        shelf_model_free(m);
    }
    shelf_snapshot_free(s);

    /* out of range after a fit */
    st = store_new();
    make_ids(st, 2, 2);
    uint32_t rating = type_of(st, "rating");
    add_event_value(st, 0, 0, rating, 5, 1);
    add_event_value(st, 1, 1, rating, 1, 2);
    s = build(st);
    shelf_store_close(st);
    for (int k = 0; k < 2; k++) {
        shelf_config *c = small_opts(models[k], 2, "1");
        shelf_model *m = fit(models[k], s, c);
        float p;
        assert_int_equal(shelf_model_predict(m, 0, 2, &p, NULL), SHELF_EINVAL);
        assert_int_equal(shelf_model_predict(m, 5, 0, &p, NULL), SHELF_EINVAL);
        p = predict(m, SHELF_NONE, 0);
        assert_true(p >= 1.0f && p <= 5.0f);
        shelf_model_free(m);
        shelf_config_free(c);
    }
    shelf_snapshot_free(s);
}

int main(void)
{
    tmp_init("models_rating");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mf_planted),
        cmocka_unit_test(test_svdpp_planted),
        cmocka_unit_test(test_biases),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_svdpp_implicit),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
