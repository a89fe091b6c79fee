/* test_models_rating_text.c: the text-aware rating model "rating-text" on
 * generated ratings that depend on the items' words: it recovers the planted
 * text-driven structure (beats rating-mf on sparse items), predicts items
 * whose ratings were all held out better than the global mean, words are
 * matched regardless of case and punctuation and attributes count as
 * tokens, predictions are clipped to the training scale, a fit is
 * reproducible for a seed, save -> load gives bitwise identical
 * predictions, and a snapshot without rating events is a clear error. */
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

/* ---- helpers ---------------------------------------------------------------- */

/* Small and quick: the generated data has 3 latent dimensions. Both models
 * start their factors at normal(0, 0.1): with 8 ratings per user the
 * defaults' 0.01 (chosen on ML-100k) barely leave zero in 60 epochs. */
static shelf_config *small_opts(void)
{
    return opts("rtext-factors=8", "rtext-epochs=60", "rtext-init-std=0.1", "rtext-lr=0.02", "rtext-lr-bias=0.02",
                "rtext-lr-text=0.02", "mf-factors=8", "mf-epochs=60", "mf-init-std=0.1", "mf-lr=0.02",
                "mf-lr-bias=0.02", "threads=1", (char *)NULL);
}

static shelf_model *fit(const char *name, const shelf_snapshot *s, const shelf_config *c)
{
    shelf_model *m = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_model_new(name, &m, &err), 0);
    int rc = shelf_model_fit(m, s, c, NULL);
    if (rc) fprintf(stderr, "fit: %s\n", shelf_model_errmsg(m));
    assert_int_equal(rc, 0);
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

/* ---- generated data: ratings driven by the items' words ------------------------
 *
 * N_TOPIC topic words, each with a latent vector v_t [D] and a bias c_t.
 * Item i carries two topic words (in its title, mixed case and punctuation)
 * and a word of its own; its true vector and bias are the means over its
 * topics. r_ui = 3 + b_u + c_i + x_u . v_i + noise, clipped to [1, 5].
 * Items 0..I_WARM-1 have training ratings (few each); the others are cold:
 * all their ratings are held out. */
#define N_USERS 300
#define N_ITEMS 200
#define I_WARM 160
#define N_TOPIC 10
#define D 3
#define TRAIN_PER_USER 8
#define TEST_WARM_PER_USER 4
#define TEST_COLD_PER_USER 3

static const char *const topic_word[N_TOPIC] = {"Alpha", "bravo", "CHARLIE", "delta", "echo",
                                                "foxtrot", "golf", "hotel", "india", "juliet"};

typedef struct gen {
    shelf_snapshot *s; /* training ratings only */
    uint32_t n_test;
    uint32_t test_user[N_USERS * (TEST_WARM_PER_USER + TEST_COLD_PER_USER)];
    uint32_t test_item[N_USERS * (TEST_WARM_PER_USER + TEST_COLD_PER_USER)];
    float test_r[N_USERS * (TEST_WARM_PER_USER + TEST_COLD_PER_USER)];
    double train_mean;
} gen;

static gen *generate(uint64_t seed)
{
    gen *g = calloc(1, sizeof *g);
    shelf_rng r;
    shelf_rng_seed(&r, seed);
    double v[N_TOPIC][D], c[N_TOPIC], x[N_USERS][D], bu[N_USERS];
    for (int t = 0; t < N_TOPIC; t++) {
        for (int d = 0; d < D; d++) v[t][d] = shelf_rng_normal(&r);
        c[t] = 0.8 * shelf_rng_normal(&r);
    }
    for (int u = 0; u < N_USERS; u++) {
        for (int d = 0; d < D; d++) x[u][d] = 0.6 * shelf_rng_normal(&r);
        bu[u] = 0.2 * shelf_rng_normal(&r);
    }
    shelf_store *st = store_new();
    assert_int_equal(shelf_store_begin(st), 0);
    char id[32], title[128];
    double iv[N_ITEMS][D], ic[N_ITEMS];
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        int t1 = (int)shelf_rng_below(&r, N_TOPIC), t2 = (int)shelf_rng_below(&r, N_TOPIC - 1);
        if (t2 >= t1) t2++;
        for (int d = 0; d < D; d++) iv[i][d] = 0.5 * (v[t1][d] + v[t2][d]);
        ic[i] = 0.5 * (c[t1] + c[t2]);
        snprintf(id, sizeof id, "i%u", i);
        snprintf(title, sizeof title, "The %s-%s: own%u (19%02u)", topic_word[t1], topic_word[t2], i, i % 100);
        shelf_item it = {.id = id, .title = title, .available = 1};
        uint32_t idx;
        assert_int_equal(shelf_store_put_item(st, &it, &idx), 0);
        assert_int_equal(idx, i);
    }
    const uint32_t rating = type_of(st, "rating");
    double sum = 0;
    int64_t ts = 1;
    for (uint32_t u = 0; u < N_USERS; u++) {
        snprintf(id, sizeof id, "u%u", u);
        uint32_t idx;
        assert_int_equal(shelf_store_user_idx(st, id, strlen(id), 1, &idx, NULL), 0);
        assert_int_equal(idx, u);
        uint8_t used[N_ITEMS] = {0};
        const int n = TRAIN_PER_USER + TEST_WARM_PER_USER + TEST_COLD_PER_USER;
        for (int k = 0; k < n; k++) {
            const int cold = k >= TRAIN_PER_USER + TEST_WARM_PER_USER;
            uint32_t i;
            do i = cold ? I_WARM + shelf_rng_below(&r, N_ITEMS - I_WARM) : shelf_rng_below(&r, I_WARM);
            while (used[i]);
            used[i] = 1;
            double y = 3 + bu[u] + ic[i] + 0.2 * shelf_rng_normal(&r);
            for (int d = 0; d < D; d++) y += x[u][d] * iv[i][d];
            y = y < 1 ? 1 : y > 5 ? 5 : y;
            if (k < TRAIN_PER_USER) {
                add_event_value(st, u, i, rating, (float)y, ts++);
                sum += y;
            } else {
                g->test_user[g->n_test] = u;
                g->test_item[g->n_test] = i;
                g->test_r[g->n_test++] = (float)y;
            }
        }
    }
    assert_int_equal(shelf_store_commit(st), 0);
    g->s = build(st);
    g->train_mean = sum / (N_USERS * TRAIN_PER_USER);
    shelf_store_close(st);
    return g;
}

static void gen_free(gen *g)
{
    shelf_snapshot_free(g->s);
    free(g);
}

/* RMSE of m on the test ratings of warm (cold = 0) or cold (1) items. With
 * m NULL: of the training mean. */
static double test_rmse(const gen *g, const shelf_model *m, int cold)
{
    double se = 0;
    uint32_t n = 0;
    for (uint32_t k = 0; k < g->n_test; k++) {
        if ((g->test_item[k] >= I_WARM) != cold) continue;
        double p = m ? predict(m, g->test_user[k], g->test_item[k]) : g->train_mean;
        se += (p - g->test_r[k]) * (p - g->test_r[k]);
        n++;
    }
    assert_true(n > 0);
    return sqrt(se / n);
}

/* ---- tests ------------------------------------------------------------------ */

/* Items with about 15 ratings each: sharing words with other items makes
 * rating-text clearly better than rating-mf, and both beat the mean. */
static void test_recovers_text_structure(void **state)
{
    (void)state;
    gen *g = generate(7);
    shelf_config *c = small_opts();
    shelf_model *rt = fit("rating-text", g->s, c), *mf = fit("rating-mf", g->s, c);
    double e_mean = test_rmse(g, NULL, 0), e_rt = test_rmse(g, rt, 0), e_mf = test_rmse(g, mf, 0);
    fprintf(stderr, "warm items: mean %.4f rating-mf %.4f rating-text %.4f\n", e_mean, e_mf, e_rt);
    assert_true(e_rt < 0.9 * e_mf);
    assert_true(e_rt < 0.7 * e_mean);
    shelf_model_free(rt);
    shelf_model_free(mf);
    shelf_config_free(c);
    gen_free(g);
}

/* Items whose ratings were all held out: rating-text predicts them from their
 * words, far better than the global mean (mu + 0) and than rating-mf (which
 * has nothing but mu + b_u for them). */
static void test_cold_items(void **state)
{
    (void)state;
    gen *g = generate(11);
    shelf_config *c = small_opts();
    shelf_model *rt = fit("rating-text", g->s, c), *mf = fit("rating-mf", g->s, c);
    double e_mean = test_rmse(g, NULL, 1), e_rt = test_rmse(g, rt, 1), e_mf = test_rmse(g, mf, 1);
    fprintf(stderr, "cold items: mean %.4f rating-mf %.4f rating-text %.4f\n", e_mean, e_mf, e_rt);
    assert_true(e_rt < 0.8 * e_mean);
    assert_true(e_rt < 0.8 * e_mf);
    /* an unknown user on a cold item: mu plus the item's text bias only */
    float anon = predict(rt, SHELF_NONE, I_WARM);
    float scores[N_ITEMS];
    shelf_query q = {.user = SHELF_NONE};
    assert_int_equal(shelf_model_score(rt, &q, scores, NULL), 0);
    assert_true(scores[I_WARM] == anon);
    assert_true(fabsf(anon - (float)g->train_mean) < 1.5f);
    shelf_model_free(rt);
    shelf_model_free(mf);
    shelf_config_free(c);
    gen_free(g);
}

/* Cold items: the same words in another case and punctuation give the same
 * prediction; an item without text or attributes gets mu (+ b_u + nothing);
 * an attribute alone moves the prediction. */
static void test_tokens(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const uint32_t rating = type_of(st, "rating");
    char id[32], title[64];
    assert_int_equal(shelf_store_begin(st), 0);
    /* warm items: "red" ones are loved, "blue" ones hated; even ones also
     * carry attribute "kind=x" */
    for (uint32_t i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "w%u", i);
        snprintf(title, sizeof title, "%s thing %u", i % 2 ? "Blue" : "RED", i);
        shelf_item it = {.id = id, .title = title, .available = 1};
        uint32_t idx;
        assert_int_equal(shelf_store_put_item(st, &it, &idx), 0);
        if (i % 4 == 0) assert_int_equal(shelf_store_item_add_attr(st, idx, "kind=x", 6), 0);
    }
    static const char *const cold[] = {"red-Thing?", "  THING, red ", "", NULL};
    uint32_t cold_idx[4];
    for (int k = 0; k < 4; k++) {
        snprintf(id, sizeof id, "c%d", k);
        shelf_item it = {.id = id, .title = cold[k], .available = 1};
        assert_int_equal(shelf_store_put_item(st, &it, &cold_idx[k]), 0);
    }
    assert_int_equal(shelf_store_item_add_attr(st, cold_idx[3], "kind=x", 6), 0);
    for (uint32_t u = 0; u < 50; u++) {
        snprintf(id, sizeof id, "u%u", u);
        uint32_t uidx;
        assert_int_equal(shelf_store_user_idx(st, id, strlen(id), 1, &uidx, NULL), 0);
        for (uint32_t k = 0; k < 6; k++) {
            uint32_t i = (u * 7 + k * 13) % 40;
            float y = i % 2 ? 1.5f : 4.5f;
            if (i % 4 == 0) y = 5.0f;
            add_event_value(st, uidx, i, rating, y, (int64_t)(u * 10 + k));
        }
    }
    assert_int_equal(shelf_store_commit(st), 0);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    assert_string_equal(s->item_text + s->item_text_off[cold_idx[0]], "red-Thing?");
    shelf_config *c = small_opts();
    shelf_model *m = fit("rating-text", s, c);
    for (uint32_t u = 0; u < 50; u++)
        assert_true(predict(m, u, cold_idx[0]) == predict(m, u, cold_idx[1]));
    assert_true(predict(m, SHELF_NONE, cold_idx[0]) == predict(m, SHELF_NONE, cold_idx[1]));
    float mu = predict(m, SHELF_NONE, cold_idx[2]); /* no text at all: mu */
    assert_true(predict(m, SHELF_NONE, cold_idx[0]) > mu + 0.3f); /* "red" is loved */
    assert_true(predict(m, SHELF_NONE, cold_idx[3]) > mu + 0.3f); /* kind=x items got 5 */
    /* without attributes as tokens the attribute-only item is plain mu */
    shelf_config *c2 = small_opts();
    shelf_err err = {0};
    assert_int_equal(shelf_config_set(c2, "rtext-attrs", "false", "test", &err), 0);
    shelf_model *m2 = fit("rating-text", s, c2);
    assert_true(predict(m2, SHELF_NONE, cold_idx[3]) == predict(m2, SHELF_NONE, cold_idx[2]));
    shelf_model_free(m2);
    shelf_config_free(c2);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

/* Predictions never leave the training scale: a user who gives everything
 * 5 on items everyone gives 5 would be predicted above 5 unclipped. */
static void test_clipping(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const uint32_t rating = type_of(st, "rating");
    char id[32];
    for (uint32_t i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "i%u", i);
        shelf_item it = {.id = id, .title = i < 10 ? "great" : "awful", .available = 1};
        assert_int_equal(shelf_store_put_item(st, &it, NULL), 0);
    }
    assert_int_equal(shelf_store_begin(st), 0);
    for (uint32_t u = 0; u < 40; u++) {
        snprintf(id, sizeof id, "u%u", u);
        uint32_t uidx;
        assert_int_equal(shelf_store_user_idx(st, id, strlen(id), 1, &uidx, NULL), 0);
        for (uint32_t i = 0; i < 20; i++) {
            float y = u < 20 ? (i < 10 ? 5.0f : 3.0f) : (i < 10 ? 3.0f : 1.0f);
            add_event_value(st, uidx, i, rating, y, (int64_t)(u * 100 + i));
        }
    }
    assert_int_equal(shelf_store_commit(st), 0);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    shelf_config *c = opts("rtext-factors=4", "rtext-epochs=80", "rtext-init-std=0.1", "rtext-lr=0.05",
                           "rtext-lr-bias=0.05", "rtext-reg=0", "rtext-reg-bias=0", "rtext-reg-item=0",
                           "rtext-reg-text=0", (char *)NULL);
    shelf_model *m = fit("rating-text", s, c);
    float lo = 10, hi = -10;
    float scores[20];
    for (uint32_t u = 0; u <= 40; u++) {
        uint32_t uu = u == 40 ? SHELF_NONE : u;
        shelf_query q = {.user = uu};
        assert_int_equal(shelf_model_score(m, &q, scores, NULL), 0);
        for (uint32_t i = 0; i < 20; i++) {
            float p = predict(m, uu, i);
            assert_true(p == scores[i]);
            assert_true(p >= 1.0f && p <= 5.0f);
            if (p < lo) lo = p;
            if (p > hi) hi = p;
        }
    }
    /* the extremes are hit (clipped), not merely approached */
    assert_true(hi == 5.0f);
    assert_true(lo == 1.0f);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

/* The same seed gives bitwise the same model; another seed another one. */
static void test_reproducible(void **state)
{
    (void)state;
    gen *g = generate(3);
    shelf_config *c = small_opts();
    shelf_model *a = fit("rating-text", g->s, c), *b = fit("rating-text", g->s, c);
    shelf_err err = {0};
    assert_int_equal(shelf_config_set(c, "seed", "43", "test", &err), 0);
    shelf_model *d = fit("rating-text", g->s, c);
    float x[N_ITEMS], y[N_ITEMS], z[N_ITEMS];
    int differs = 0;
    for (uint32_t u = 0; u < N_USERS; u++) {
        shelf_query q = {.user = u};
        assert_int_equal(shelf_model_score(a, &q, x, NULL), 0);
        assert_int_equal(shelf_model_score(b, &q, y, NULL), 0);
        assert_int_equal(shelf_model_score(d, &q, z, NULL), 0);
        assert_memory_equal(x, y, sizeof x);
        differs |= memcmp(x, z, sizeof x) != 0;
    }
    assert_true(differs);
    shelf_model_free(a);
    shelf_model_free(b);
    shelf_model_free(d);
    shelf_config_free(c);
    gen_free(g);
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

/* save -> load: every prediction (known users, unknown user, cold items)
 * bitwise the same; a damaged bundle is refused. */
static void test_save_load(void **state)
{
    (void)state;
    gen *g = generate(5);
    shelf_config *c = small_opts();
    shelf_model *m = fit("rating-text", g->s, c);
    const char *dir = tmp_path("rtext.bundle");
    remove_bundle(dir);
    shelf_err err = {0};
    int rc = shelf_model_save(m, dir, &err);
    if (rc) fprintf(stderr, "save: %s\n", err.msg);
    assert_int_equal(rc, 0);
    shelf_model *back = NULL;
    rc = shelf_model_load(dir, &back, &err);
    if (rc) fprintf(stderr, "load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(shelf_model_name(back), "rating-text");
    float x[N_ITEMS], y[N_ITEMS];
    for (uint32_t u = 0; u <= N_USERS; u++) {
        shelf_query q = {.user = u == N_USERS ? SHELF_NONE : u};
        assert_int_equal(shelf_model_score(m, &q, x, NULL), 0);
        assert_int_equal(shelf_model_score(back, &q, y, NULL), 0);
        assert_memory_equal(x, y, sizeof x);
        for (uint32_t i = 0; i < N_ITEMS; i += 17) assert_true(predict(back, q.user, i) == x[i]);
    }
    shelf_model_free(back);
    shelf_model_free(m);
    shelf_config_free(c);
    gen_free(g);
}

/* Without rating events (only purchases) fit fails with a message that
 * says why; predict before fit is refused. */
static void test_no_ratings(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    const uint32_t buy = type_of(st, "purchase");
    shelf_item it = {.id = "i0", .title = "a thing", .available = 1};
    assert_int_equal(shelf_store_put_item(st, &it, NULL), 0);
    uint32_t u;
    assert_int_equal(shelf_store_user_idx(st, "u0", 2, 1, &u, NULL), 0);
    add_event(st, u, 0, buy, 1);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    shelf_model *m = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_model_new("rating-text", &m, &err), 0);
    float r;
    assert_int_equal(shelf_model_predict(m, 0, 0, &r, NULL), SHELF_EINVAL);
    shelf_config *c = opts("threads=1", (char *)NULL);
    assert_int_equal(shelf_model_fit(m, s, c, NULL), SHELF_EINVAL);
    fprintf(stderr, "%s\n", shelf_model_errmsg(m));
    assert_non_null(strstr(shelf_model_errmsg(m), "rating-text"));
    assert_non_null(strstr(shelf_model_errmsg(m), "\"rating\""));
    assert_int_equal(shelf_model_predict(m, 0, 0, &r, NULL), SHELF_EINVAL);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

int main(void)
{
    tmp_init("models_rating_text");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_text_structure),
        cmocka_unit_test(test_cold_items),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_no_ratings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
