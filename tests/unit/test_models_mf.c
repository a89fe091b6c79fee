/* test_models_mf.c: the matrix-factorisation models, implicit ALS and BPR:
 * planted two-cluster structure is recovered (known users and folded-in
 * histories), the ALS loss never increases, the ALS CG row solve matches an
 * exact dense solve, fold-in of a training user's history lands near the
 * fitted vector, ALS is bitwise the same with 1 and 2 threads, a known
 * user's history with items the fit never saw for them is folded in, BPR is reproducible with one thread, observe moves a user
 * toward the item, scores are the same from many threads, and save -> load
 * gives bitwise identical scores. */
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

#include "models/mf_int.h"
#include "shelf/model.h"
#include "shelf/snapshot.h"
#include "test_util.h"

/* ---- helpers ---------------------------------------------------------------- */

/* Two disjoint clusters: users 0..U/2-1 buy only items 0..I/2-1, the others
 * only items I/2..I-1; each user buys `per_user` distinct items of their
 * cluster at random. */
static shelf_snapshot *clusters(uint32_t U, uint32_t I, uint32_t per_user, uint64_t seed)
{
    shelf_store *st = store_new();
    make_ids(st, U, I);
    uint32_t buy = type_of(st, "purchase");
    shelf_rng r;
    shelf_rng_seed(&r, seed);
    assert_int_equal(shelf_store_begin(st), 0);
    int64_t ts = 1;
    for (uint32_t u = 0; u < U; u++) {
        uint32_t base = u < U / 2 ? 0 : I / 2, half = I / 2;
        uint8_t used[256] = {0};
        for (uint32_t k = 0; k < per_user; k++) {
            uint32_t i;
            do i = shelf_rng_below(&r, half);
            while (used[i]);
            used[i] = 1;
            add_event(st, u, base + i, buy, ts++);
        }
    }
    assert_int_equal(shelf_store_commit(st), 0);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    return s;
}

/* Random interactions: each user 2..9 events on random items, some of them
 * repeats (r > 1 in weights mode) and some dislikes (r < 0 when alone). */
static shelf_snapshot *random_store(uint32_t U, uint32_t I, uint64_t seed)
{
    shelf_store *st = store_new();
    make_ids(st, U, I);
    uint32_t buy = type_of(st, "purchase"), view = type_of(st, "view"), no = type_of(st, "dislike");
    shelf_rng r;
    shelf_rng_seed(&r, seed);
    assert_int_equal(shelf_store_begin(st), 0);
    int64_t ts = 1;
    for (uint32_t u = 0; u < U; u++) {
        uint32_t n = 2 + shelf_rng_below(&r, 8);
        for (uint32_t k = 0; k < n; k++) {
            uint32_t i = shelf_rng_below(&r, I), x = shelf_rng_below(&r, 10);
            add_event(st, u, i, x < 6 ? view : x < 9 ? buy : no, ts++);
        }
    }
    assert_int_equal(shelf_store_commit(st), 0);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    return s;
}

static shelf_model *fit(const char *name, const shelf_snapshot *s, shelf_config *c)
{
    shelf_model *m = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_model_new(name, &m, &err), 0);
    int rc = shelf_model_fit(m, s, c, NULL);
    if (rc) fprintf(stderr, "fit: %s\n", shelf_model_errmsg(m));
    assert_int_equal(rc, 0);
    assert_int_equal(m->n_users, s->n_users);
    assert_int_equal(m->n_items, s->n_items);
    assert_true(m->fitted);
    return m;
}

static void score(const shelf_model *m, uint32_t user, const uint32_t *items, uint32_t n, float *out)
{
    shelf_query q = {.user = user, .items = items, .n = n};
    int rc = shelf_model_score(m, &q, out, NULL);
    if (rc) fprintf(stderr, "score: %s\n", shelf_model_errmsg(m));
    assert_int_equal(rc, 0);
}

/* The user's own cluster ranks above the other: for 95% of the users the
 * best item they have not bought is of their cluster, and of the (own,
 * other) item pairs at least 90% are ordered right for every user, 98% on
 * average. */
static void check_clusters(const shelf_model *m, const shelf_snapshot *s, int anonymous)
{
    const uint32_t U = s->n_users, I = s->n_items;
    float *sc = malloc(I * sizeof *sc);
    double worst = 1, sum = 0;
    uint32_t n_best = 0;
    for (uint32_t u = 0; u < U; u++) {
        const uint32_t *hist = s->ui_col + s->ui_off[u];
        uint32_t n = (uint32_t)(s->ui_off[u + 1] - s->ui_off[u]);
        score(m, anonymous ? SHELF_NONE : u, hist, n, sc);
        uint32_t lo = u < U / 2 ? 0 : I / 2, hi = lo + I / 2;
        uint32_t right = 0, pairs = 0, best = SHELF_NONE;
        for (uint32_t i = lo; i < hi; i++)
            for (uint32_t j = 0; j < I; j++)
                if (j < lo || j >= hi) {
                    right += sc[i] > sc[j];
                    pairs++;
                }
        for (uint32_t i = 0; i < I; i++) {
            int seen = 0;
            for (uint32_t k = 0; k < n; k++) seen |= hist[k] == i;
            if (!seen && (best == SHELF_NONE || sc[i] > sc[best])) best = i;
        }
        double auc = (double)right / pairs;
        if (auc < worst) worst = auc;
        sum += auc;
        n_best += best >= lo && best < hi;
    }
    if (n_best < 0.95 * U)
        fprintf(stderr, "%s%s: the best unseen item is of the own cluster for %u of %u users\n",
                shelf_model_name(m), anonymous ? " (folded in)" : "", n_best, U);
    assert_true(n_best >= 0.95 * U);
    if (worst < 0.9 || sum / U < 0.98)
        fprintf(stderr, "%s%s: pairs ordered: worst user %.3f, mean %.4f\n", shelf_model_name(m),
                anonymous ? " (folded in)" : "", worst, sum / U);
    assert_true(worst >= 0.9);
    assert_true(sum / U >= 0.98);
    free(sc);
}

/* Many threads at once score on one model (known users and folded-in
 * histories): the same scores as one by one. */
static void check_parallel_scores(const shelf_model *m, const shelf_snapshot *s)
{
    const uint32_t U = s->n_users, I = s->n_items;
    float *serial = malloc((size_t)U * I * sizeof *serial), *par = malloc((size_t)U * I * sizeof *par);
    for (uint32_t u = 0; u < U; u++)
        score(m, u % 2 ? u : SHELF_NONE, s->ui_col + s->ui_off[u], (uint32_t)(s->ui_off[u + 1] - s->ui_off[u]),
              serial + (size_t)u * I);
    int bad = 0;
#pragma omp parallel for num_threads(4) reduction(+ : bad)
    for (uint32_t u = 0; u < U; u++) {
        shelf_query q = {.user = u % 2 ? u : SHELF_NONE, .items = s->ui_col + s->ui_off[u],
                         .n = (uint32_t)(s->ui_off[u + 1] - s->ui_off[u])};
        bad += shelf_model_score(m, &q, par + (size_t)u * I, NULL) != 0;
    }
    assert_int_equal(bad, 0);
    assert_memory_equal(serial, par, (size_t)U * I * sizeof *par);
    free(serial);
    free(par);
}

/* rm -r of a bundle directory (manifest + tensors). */
static void remove_bundle(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tensors.safetensors", dir);
    unlink(p);
    rmdir(dir);
}

static shelf_model *save_load(const shelf_model *m, const char *name)
{
    const char *dir = tmp_path(name);
    remove_bundle(dir);
    shelf_err err = {0};
    int rc = shelf_model_save(m, dir, &err);
    if (rc) fprintf(stderr, "save: %s\n", err.msg);
    assert_int_equal(rc, 0);
    shelf_model *back = NULL;
    rc = shelf_model_load(dir, &back, &err);
    if (rc) fprintf(stderr, "load: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(shelf_model_name(back), shelf_model_name(m));
    assert_int_equal(back->n_users, m->n_users);
    assert_int_equal(back->n_items, m->n_items);
    return back;
}

/* Known users and anonymous histories score bit for bit the same on a and b. */
static void check_same_scores(const shelf_model *a, const shelf_model *b, const shelf_snapshot *s)
{
    const uint32_t I = s->n_items;
    float *x = malloc(I * sizeof *x), *y = malloc(I * sizeof *y);
    for (uint32_t u = 0; u < s->n_users; u++) {
        const uint32_t *hist = s->ui_col + s->ui_off[u];
        uint32_t n = (uint32_t)(s->ui_off[u + 1] - s->ui_off[u]);
        score(a, u, hist, n, x);
        score(b, u, hist, n, y);
        assert_memory_equal(x, y, I * sizeof *x);
        score(a, SHELF_NONE, hist, n, x);
        score(b, SHELF_NONE, hist, n, y);
        assert_memory_equal(x, y, I * sizeof *x);
        /* the history plus an item (likely new to the user: fold-new) */
        uint32_t more[64];
        assert_true(n < 64);
        memcpy(more, hist, n * sizeof *more);
        more[n] = (u * 7 + 3) % I;
        score(a, u, more, n + 1, x);
        score(b, u, more, n + 1, y);
        assert_memory_equal(x, y, I * sizeof *x);
    }
    free(x);
    free(y);
}

/* ---- ALS ------------------------------------------------------------------------ */

static void test_als_clusters(void **state)
{
    (void)state;
    shelf_snapshot *s = clusters(80, 30, 8, 1);
    shelf_config *c = opts("als-factors=4", "als-iters=10", "als-alpha=10", "als-reg=1", "threads=2", NULL);
    shelf_model *m = fit("als", s, c);
    check_clusters(m, s, 0);
    check_clusters(m, s, 1);
    check_parallel_scores(m, s);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

/* The same seed gives the same factors, bit for bit, with 1 and 2 threads. */
static void test_als_deterministic(void **state)
{
    (void)state;
    shelf_snapshot *s = random_store(70, 45, 17);
    shelf_config *c1 = opts("als-factors=16", "als-iters=5", "threads=1", "seed=5", NULL);
    shelf_config *c2 = opts("als-factors=16", "als-iters=5", "threads=2", "seed=5", NULL);
    shelf_model *a = fit("als", s, c1), *b = fit("als", s, c2);
    const float *Xa, *Ya, *Xb, *Yb;
    uint32_t K;
    shelf__als_factors(a, &Xa, &Ya, &K);
    shelf__als_factors(b, &Xb, &Yb, NULL);
    assert_memory_equal(Xa, Xb, (size_t)s->n_users * K * sizeof *Xa);
    assert_memory_equal(Ya, Yb, (size_t)s->n_items * K * sizeof *Ya);
    shelf_model_free(a);
    shelf_model_free(b);
    shelf_config_free(c1);
    shelf_config_free(c2);
    shelf_snapshot_free(s);
}

typedef struct loss_log {
    const shelf_snapshot *s;
    double loss[256];
    int n;
} loss_log;

static void record_loss(void *ctx, const shelf_model *m, int iter, int half)
{
    (void)iter;
    (void)half;
    loss_log *l = ctx;
    assert_true(l->n < 256);
    assert_int_equal(shelf__als_loss(m, l->s, &l->loss[l->n]), 0);
    l->n++;
}

/* The loss after every half-iteration never exceeds the one before (up to
 * float rounding), with the default 3 warm-started CG steps and with more,
 * in both confidence modes (weights mode has dislikes: r < 0). */
static void test_als_loss_monotone(void **state)
{
    (void)state;
    shelf_snapshot *s = random_store(80, 50, 7);
    const char *confs[] = {"als-conf=binary", "als-conf=weights"};
    const char *steps[] = {"als-cg-steps=3", "als-cg-steps=20"};
    for (int ci = 0; ci < 2; ci++) {
        for (int si = 0; si < 2; si++) {
            shelf_config *c = opts("als-factors=16", "als-iters=12", "als-alpha=5", "als-reg=0.05", confs[ci],
                                   steps[si], "threads=2", NULL);
            shelf_model *m = NULL;
            assert_int_equal(shelf_model_new("als", &m, NULL), 0);
            loss_log log = {.s = s};
            shelf__als_set_hook(m, record_loss, &log);
            assert_int_equal(shelf_model_fit(m, s, c, NULL), 0);
            assert_int_equal(log.n, 24);
            for (int k = 1; k < log.n; k++) {
                if (!(log.loss[k] <= log.loss[k - 1] * (1 + 1e-6)))
                    fprintf(stderr, "%s %s: loss rose at half-iteration %d: %.9g -> %.9g\n", confs[ci], steps[si], k,
                            log.loss[k - 1], log.loss[k]);
                assert_true(log.loss[k] <= log.loss[k - 1] * (1 + 1e-6));
            }
            assert_true(log.loss[log.n - 1] < 0.9 * log.loss[0]);
            shelf_model_free(m);
            shelf_config_free(c);
        }
    }
    shelf_snapshot_free(s);
}

/* x for (G + sum w y y^T) x = sum_{v>0} (1+w) y by Cholesky in double. */
static void exact_solve(double *x, const float *G, const float *Y, const uint32_t *cols, const float *v, uint32_t n,
                        uint32_t K)
{
    double *A = calloc((size_t)K * K, sizeof *A), *b = calloc(K, sizeof *b);
    for (uint32_t k = 0; k < K * K; k++) A[k] = G[k];
    for (uint32_t j = 0; j < n; j++) {
        const float *y = Y + (size_t)cols[j] * K;
        double w = fabs(v[j]);
        for (uint32_t k = 0; k < K; k++) {
            if (!signbit(v[j])) b[k] += (1 + w) * y[k];
            for (uint32_t l = 0; l < K; l++) A[k * K + l] += w * y[k] * y[l];
        }
    }
    /* A = L L^T in place (lower), then two triangular solves */
    for (uint32_t j = 0; j < K; j++) {
        double d = A[j * K + j];
        for (uint32_t k = 0; k < j; k++) d -= A[j * K + k] * A[j * K + k];
        assert_true(d > 0);
        A[j * K + j] = sqrt(d);
        for (uint32_t i = j + 1; i < K; i++) {
            double t = A[i * K + j];
            for (uint32_t k = 0; k < j; k++) t -= A[i * K + k] * A[j * K + k];
            A[i * K + j] = t / A[j * K + j];
        }
    }
    for (uint32_t i = 0; i < K; i++) {
        double t = b[i];
        for (uint32_t k = 0; k < i; k++) t -= A[i * K + k] * b[k];
        b[i] = t / A[i * K + i];
    }
    for (uint32_t i = K; i-- > 0;) {
        double t = b[i];
        for (uint32_t k = i + 1; k < K; k++) t -= A[k * K + i] * x[k];
        x[i] = t / A[i * K + i];
    }
    free(A);
    free(b);
}

/* The CG row solve against the exact solution, for K = 8 (plain loops) and
 * K = 32, 48 (vector kernels where the CPU has them), with a dislike among
 * the nonzeros; from zero and from a random warm start. */
static void test_als_cg_exact(void **state)
{
    (void)state;
    const uint32_t Ks[] = {8, 32, 48}, NY = 40;
    shelf_rng r;
    shelf_rng_seed(&r, 3);
    for (int t = 0; t < 3; t++) {
        const uint32_t K = Ks[t];
        float *Y = malloc((size_t)NY * K * sizeof *Y), *G = calloc((size_t)K * K, sizeof *G);
        for (uint32_t k = 0; k < NY * K; k++) Y[k] = (float)(shelf_rng_normal(&r) * 0.3);
        for (uint32_t i = 0; i < NY; i++)
            for (uint32_t k = 0; k < K; k++)
                for (uint32_t l = 0; l < K; l++) G[k * K + l] += Y[i * K + k] * Y[i * K + l];
        for (uint32_t k = 0; k < K; k++) G[k * K + k] += 0.1f;
        uint32_t cols[7] = {1, 4, 9, 16, 25, 36, 39};
        float v[7] = {10, 20, 5, -10, 40, 1, 10};
        double xe[48];
        exact_solve(xe, G, Y, cols, v, 7, K);
        double norm = 0;
        for (uint32_t k = 0; k < K; k++) norm = fmax(norm, fabs(xe[k]));
        for (int warm = 0; warm < 2; warm++) {
            float x[48], scratch[3 * 48];
            for (uint32_t k = 0; k < K; k++) x[k] = warm ? (float)shelf_rng_normal(&r) : 0.0f;
            shelf__als_cg(x, G, Y, cols, v, 7, K, (int)(3 * K), scratch);
            for (uint32_t k = 0; k < K; k++) {
                if (fabs(x[k] - xe[k]) > 1e-3 * fmax(1.0, norm))
                    fprintf(stderr, "K %u warm %d: x[%u] = %g, exact %g\n", K, warm, k, x[k], xe[k]);
                assert_true(fabs(x[k] - xe[k]) <= 1e-3 * fmax(1.0, norm));
            }
        }
        free(Y);
        free(G);
    }
}

/* Fitted to convergence, a training user's folded-in history gives nearly
 * the fitted vector (it solves the same system against the final items). */
static void test_als_fold_in(void **state)
{
    (void)state;
    shelf_snapshot *s = random_store(60, 40, 11);
    shelf_config *c = opts("als-factors=16", "als-iters=40", "als-cg-steps=16", "als-alpha=5", "als-reg=0.1",
                           "threads=2", NULL);
    shelf_model *m = fit("als", s, c);
    const float *X;
    uint32_t K;
    shelf__als_factors(m, &X, NULL, &K);
    assert_int_equal(K, 16);
    float x[16];
    double worst = 1;
    for (uint32_t u = 0; u < s->n_users; u++) {
        /* the user's events in sequence order, with their types: the same
         * r per item as the CSR's (repeats summed, dislikes included) */
        const uint64_t b = s->seq_off[u], n = s->seq_off[u + 1] - b;
        assert_int_equal(shelf__als_fold_in(m, s->seq_item + b, s->seq_type + b, (uint32_t)n, x, NULL), 0);
        double dot = 0, nx = 0, nf = 0;
        for (uint32_t k = 0; k < K; k++) {
            dot += (double)x[k] * X[u * K + k];
            nx += (double)x[k] * x[k];
            nf += (double)X[u * K + k] * X[u * K + k];
        }
        double cosine = dot / sqrt(nx * nf + 1e-30);
        if (cosine < worst) worst = cosine;
        assert_true(fabs(sqrt(nx) - sqrt(nf)) <= 0.05 * sqrt(nf) + 1e-6);
    }
    assert_true(worst > 0.99);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

/* observe: the user's row is re-solved with the new item, whose score rises
 * to the top of the unseen items; unknown users and items are refused;
 * after observe, save -> load still scores identically (the observed events
 * travel in the bundle). */
static void test_als_observe_save_load(void **state)
{
    (void)state;
    shelf_snapshot *s = clusters(40, 30, 6, 5);
    shelf_config *c = opts("als-factors=8", "als-iters=10", "als-alpha=10", "als-reg=0.1", "als-conf=weights",
                           "threads=2", NULL);
    shelf_model *m = fit("als", s, c);
    shelf_model *back = save_load(m, "als.bundle");
    check_same_scores(m, back, s);
    shelf_model_free(back);

    /* user 0 (cluster A) buys item 20 (cluster B), three times */
    const uint32_t I = s->n_items;
    float before[30], after[30];
    score(m, 0, NULL, 0, before);
    shelf_event e = {.user = 0, .item = 20, .type = 0};
    for (int k = 0; k < 3; k++) assert_int_equal(shelf_model_observe(m, &e), 0);
    score(m, 0, NULL, 0, after);
    assert_true(after[20] > before[20] + 0.3f);
    uint32_t rank_before = 0, rank_after = 0;
    for (uint32_t i = 0; i < I; i++) {
        rank_before += before[i] > before[20];
        rank_after += after[i] > after[20];
    }
    assert_true(rank_after < rank_before);
    shelf_event bad_user = {.user = 40, .item = 1}, bad_item = {.user = 1, .item = 30};
    assert_int_equal(shelf_model_observe(m, &bad_user), SHELF_ENOTFOUND);
    assert_int_equal(shelf_model_observe(m, &bad_item), SHELF_ENOTFOUND);

    back = save_load(m, "als-observed.bundle");
    check_same_scores(m, back, s);
    /* the reloaded model holds the observed events: one more observe moves
     * both alike */
    shelf_event e2 = {.user = 0, .item = 21, .type = 0};
    assert_int_equal(shelf_model_observe(m, &e2), 0);
    assert_int_equal(shelf_model_observe(back, &e2), 0);
    check_same_scores(m, back, s);
    shelf_model_free(back);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

/* A known user's history with an item the fit never saw for them: with
 * als-fold-new the row is re-solved (close to the anonymous fold-in of the
 * same history), without it the learned vector scores; a history of
 * training items only scores exactly as the learned vector. */
static void test_als_fold_new(void **state)
{
    (void)state;
    shelf_snapshot *s = clusters(40, 30, 6, 6);
    shelf_config *c = opts("als-factors=8", "als-iters=15", "als-cg-steps=8", "als-alpha=10", "als-reg=0.1",
                           "threads=2", NULL);
    shelf_config *off = opts("als-factors=8", "als-iters=15", "als-cg-steps=8", "als-alpha=10", "als-reg=0.1",
                             "als-fold-new=false", "threads=2", NULL);
    shelf_model *m = fit("als", s, c), *m0 = fit("als", s, off);
    const uint32_t I = s->n_items, u = 3;
    const uint32_t *row = s->ui_col + s->ui_off[u];
    const uint32_t n0 = (uint32_t)(s->ui_off[u + 1] - s->ui_off[u]);
    uint32_t hist[16];
    memcpy(hist, row, n0 * sizeof *hist);
    hist[n0] = 25; /* cluster B: new for user 3 */
    float learned[30], known[30], with_new[30], anon[30], ignored[30];
    score(m, u, NULL, 0, learned);
    score(m, u, hist, n0, known);
    assert_memory_equal(learned, known, I * sizeof *known);
    score(m, u, hist, n0 + 1, with_new);
    score(m, SHELF_NONE, hist, n0 + 1, anon);
    assert_true(with_new[25] > learned[25] + 0.1f);
    for (uint32_t i = 0; i < I; i++) assert_true(fabsf(with_new[i] - anon[i]) <= 2e-3f);
    score(m0, u, NULL, 0, learned);
    score(m0, u, hist, n0 + 1, ignored);
    assert_memory_equal(learned, ignored, I * sizeof *ignored);
    shelf_model_free(m);
    shelf_model_free(m0);
    shelf_config_free(c);
    shelf_config_free(off);
    shelf_snapshot_free(s);
}

/* ---- BPR ------------------------------------------------------------------------ */

/* bpr-fold-new: a known user's history with a new item scores as the
 * anonymous fold-in of that history (bit for bit: the same items, the same
 * stream); training items only: the learned vector. */
static void test_bpr_fold_new(void **state)
{
    (void)state;
    shelf_snapshot *s = clusters(40, 30, 6, 8);
    shelf_config *c = opts("bpr-factors=8", "bpr-epochs=50", "threads=1", NULL);
    shelf_model *m = fit("bpr", s, c);
    const uint32_t I = s->n_items, u = 30;
    const uint32_t *row = s->ui_col + s->ui_off[u];
    const uint32_t n0 = (uint32_t)(s->ui_off[u + 1] - s->ui_off[u]);
    uint32_t hist[16];
    memcpy(hist, row, n0 * sizeof *hist);
    hist[n0] = 2; /* cluster A: new for user 30 */
    float learned[30], known[30], with_new[30], anon[30];
    score(m, u, NULL, 0, learned);
    score(m, u, hist, n0, known);
    assert_memory_equal(learned, known, I * sizeof *known);
    score(m, u, hist, n0 + 1, with_new);
    score(m, SHELF_NONE, hist, n0 + 1, anon);
    assert_memory_equal(with_new, anon, I * sizeof *anon);
    assert_true(memcmp(with_new, learned, I * sizeof *learned) != 0);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

static void test_bpr_clusters(void **state)
{
    (void)state;
    shelf_snapshot *s = clusters(80, 30, 8, 2);
    const char *negs[] = {"bpr-neg=uniform", "bpr-neg=pop"};
    for (int k = 0; k < 2; k++) {
        shelf_config *c = opts("bpr-factors=4", "bpr-epochs=200", "bpr-lr=0.1", "bpr-reg=0.01", negs[k],
                               "bpr-bias=false", "threads=1", NULL);
        shelf_model *m = fit("bpr", s, c);
        check_clusters(m, s, 0);
        check_clusters(m, s, 1);
        shelf_model_free(m);
        shelf_config_free(c);
    }
    shelf_snapshot_free(s);
}

static void test_bpr_reproducible(void **state)
{
    (void)state;
    shelf_snapshot *s = random_store(60, 40, 13);
    shelf_config *c1 = opts("bpr-factors=16", "bpr-epochs=30", "bpr-bias=true", "threads=1", "seed=9", NULL);
    shelf_config *c2 = opts("bpr-factors=16", "bpr-epochs=30", "bpr-bias=true", "threads=1", "seed=10", NULL);
    shelf_model *a = fit("bpr", s, c1), *b = fit("bpr", s, c1), *d = fit("bpr", s, c2);
    const float *Pa, *Qa, *ba, *Pb, *Qb, *bb, *Pd;
    uint32_t K;
    shelf__bpr_factors(a, &Pa, &Qa, &ba, &K);
    shelf__bpr_factors(b, &Pb, &Qb, &bb, NULL);
    shelf__bpr_factors(d, &Pd, NULL, NULL, NULL);
    assert_memory_equal(Pa, Pb, (size_t)s->n_users * K * sizeof *Pa);
    assert_memory_equal(Qa, Qb, (size_t)s->n_items * K * sizeof *Qa);
    assert_memory_equal(ba, bb, (size_t)s->n_items * sizeof *ba);
    assert_true(memcmp(Pa, Pd, (size_t)s->n_users * K * sizeof *Pa) != 0);
    shelf_model_free(a);
    shelf_model_free(b);
    shelf_model_free(d);
    shelf_config_free(c1);
    shelf_config_free(c2);
    shelf_snapshot_free(s);
}

static void test_bpr_observe_save_load(void **state)
{
    (void)state;
    shelf_snapshot *s = clusters(40, 30, 6, 4);
    shelf_config *c = opts("bpr-factors=8", "bpr-epochs=100", "bpr-lr=0.1", "bpr-bias=true", "threads=2", NULL);
    shelf_model *m = fit("bpr", s, c);
    check_parallel_scores(m, s);
    shelf_model *back = save_load(m, "bpr.bundle");
    check_same_scores(m, back, s);
    shelf_model_free(back);

    float before[30], after[30];
    score(m, 0, NULL, 0, before);
    shelf_event e = {.user = 0, .item = 20, .type = 0};
    for (int k = 0; k < 5; k++) assert_int_equal(shelf_model_observe(m, &e), 0);
    score(m, 0, NULL, 0, after);
    assert_true(after[20] > before[20]);
    shelf_event bad_user = {.user = 40, .item = 1};
    assert_int_equal(shelf_model_observe(m, &bad_user), SHELF_ENOTFOUND);
    back = save_load(m, "bpr-observed.bundle");
    check_same_scores(m, back, s);
    shelf_model_free(back);
    shelf_model_free(m);
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

/* Fit refuses a snapshot without interactions; score before fit refuses. */
static void test_mf_errors(void **state)
{
    (void)state;
    shelf_store *st = store_new();
    make_ids(st, 3, 3);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    shelf_config *c = opts("threads=1", NULL);
    const char *names[] = {"als", "bpr"};
    for (int k = 0; k < 2; k++) {
        shelf_model *m = NULL;
        assert_int_equal(shelf_model_new(names[k], &m, NULL), 0);
        float sc[3];
        shelf_query q = {.user = 0};
        assert_int_equal(shelf_model_score(m, &q, sc, NULL), SHELF_EINVAL);
        assert_int_equal(shelf_model_fit(m, s, c, NULL), SHELF_EINVAL);
        assert_non_null(strstr(shelf_model_errmsg(m), "nothing to learn"));
        shelf_model_free(m);
    }
    shelf_config_free(c);
    shelf_snapshot_free(s);
}

int main(void)
{
    tmp_init("models_mf");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_als_clusters),
        cmocka_unit_test(test_als_deterministic),
        cmocka_unit_test(test_als_loss_monotone),
        cmocka_unit_test(test_als_cg_exact),
        cmocka_unit_test(test_als_fold_in),
        cmocka_unit_test(test_als_observe_save_load),
        cmocka_unit_test(test_als_fold_new),
        cmocka_unit_test(test_bpr_clusters),
        cmocka_unit_test(test_bpr_reproducible),
        cmocka_unit_test(test_bpr_fold_new),
        cmocka_unit_test(test_bpr_observe_save_load),
        cmocka_unit_test(test_mf_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
