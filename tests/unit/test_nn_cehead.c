/* test_nn_cehead.c: the fused softmax cross-entropy head of nn.h: the naive
 * reference against finite differences, the F32 and BF16 paths against the
 * reference, thread-count independence, accumulation and NULL outputs; and
 * the vectorised exp and GELU of vmath_int.h / kernels.c against libm.
 *
 * Finite differences as in test_nn_kernels.c: L = sum_n losses[n] (a plain
 * sum of the head's per-row losses, so the analytic gradient is the backward
 * with dloss = N), eps = 1e-2, |numeric - analytic| <= 1e-3 + 1e-2 |ana|.
 *
 * Dimension letters: N rows, V items, C channels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn/nn.h"

#include "nn_test_util.h"

/* one head problem with its inputs */
typedef struct {
    size_t N, V, C;
    float *h, *w;
    uint32_t *tgt;
} prob;

static prob prob_new(size_t N, size_t V, size_t C, float hscale)
{
    prob p = {N, V, C, fnew(N * C), fnew(V * C), calloc(N ? N : 1, sizeof(uint32_t))};
    assert_non_null(p.tgt);
    fill_normal(p.h, N * C, hscale);
    fill_normal(p.w, V * C, 1.0f / sqrtf((float)C));
    for (size_t n = 0; n < N; n++) p.tgt[n] = shelf_rng_below(&g_rng, (uint32_t)V);
    return p;
}

static void prob_free(prob *p)
{
    free(p->h), free(p->w), free(p->tgt);
}

/* ---- (a) the reference against finite differences ------------------------- */

typedef struct {
    prob *p;
    float *losses;
} fd_ctx;

static double fd_loss(fd_ctx *c)
{
    prob *p = c->p;
    shelf_nn_cehead_ref(c->losses, NULL, NULL, p->h, p->w, p->tgt, 1.0f, p->N, p->V, p->C);
    double s = 0.0;
    for (size_t n = 0; n < p->N; n++) s += c->losses[n];
    return s;
}

static void fd_check(const char *what, float *param, const float *analytic, size_t n, fd_ctx *ctx)
{
    for (size_t i = 0; i < n; i++) {
        float x0 = param[i], xp = x0 + FD_EPS, xm = x0 - FD_EPS;
        param[i] = xp;
        double lp = fd_loss(ctx);
        param[i] = xm;
        double lm = fd_loss(ctx);
        param[i] = x0;
        double num = (lp - lm) / ((double)xp - (double)xm), ana = analytic[i];
        if (fabs(num - ana) > FD_ATOL + FD_RTOL * fabs(ana)) {
            fprintf(stderr, "%s[%zu]: numeric %.6g analytic %.6g\n", what, i, num, ana);
            fail();
        }
    }
}

static void test_ref_fd(void **state)
{
    (void)state;
    enum { N = 4, V = 7, C = 5 };
    prob p = prob_new(N, V, C, 1.0f);
    p.tgt[2] = p.tgt[1]; /* two rows with one target */
    float *losses = fnew(N), *dh = fnew(N * C), *dw = fnew(V * C);
    float L = shelf_nn_cehead_ref(losses, dh, dw, p.h, p.w, p.tgt, (float)N, N, V, C);
    double s = 0.0;
    for (size_t n = 0; n < N; n++) s += losses[n];
    assert_true(fabs(L - s / N) < 1e-6);
    fd_ctx ctx = {&p, fnew(N)};
    fd_check("ref dh", p.h, dh, N * C, &ctx);
    fd_check("ref dw", p.w, dw, V * C, &ctx);
    free(ctx.losses), free(losses), free(dh), free(dw);
    prob_free(&p);
}

/* ---- (b, c) fast paths against the reference ------------------------------ */

typedef struct {
    double loss_rel, dh_abs, dh_rel, dw_abs, dw_rel;
} errs;

/* max |a - b| and max |a - b| / (|b| + floor) over n; floor keeps the
 * relative error of near-zero gradient entries meaningful */
static void err_of(double *mabs, double *mrel, const float *a, const float *b, size_t n, double floor)
{
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > *mabs) *mabs = e;
        double r = e / (fabs(b[i]) + floor);
        if (r > *mrel) *mrel = r;
    }
}

static double max_abs(const float *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* runs fast and ref on p; every check is |fast - ref| <= atol_s + rtol |ref|
 * with atol_s = atol * max|ref| (the scale of the gradient: its entries
 * differ by orders of magnitude, and a sum of terms of mixed sign can only
 * be asked for accuracy relative to its terms). Returns the measured errors. */
static errs compare(prob *p, shelf_nn_precision prec, double loss_rtol, double atol, double rtol)
{
    size_t N = p->N, V = p->V, C = p->C;
    float *l0 = fnew(N), *l1 = fnew(N), *dh0 = fnew(N * C), *dh1 = fnew(N * C), *dw0 = fnew(V * C),
          *dw1 = fnew(V * C);
    float L0 = shelf_nn_cehead_ref(l0, dh0, dw0, p->h, p->w, p->tgt, 1.0f, N, V, C);
    shelf_nn_cehead_ws *ws = shelf_nn_cehead_ws_new(N, V, C);
    assert_non_null(ws);
    float L1 = shelf_nn_cehead(l1, dh1, dw1, p->h, p->w, p->tgt, 1.0f, N, V, C, prec, ws);
    shelf_nn_cehead_ws_free(ws);
    errs e = {0};
    e.loss_rel = fabs((double)L1 - L0) / fabs(L0);
    double sdh = max_abs(dh0, N * C), sdw = max_abs(dw0, V * C);
    err_of(&e.dh_abs, &e.dh_rel, dh1, dh0, N * C, atol / rtol * sdh);
    err_of(&e.dw_abs, &e.dw_rel, dw1, dw0, V * C, atol / rtol * sdw);
    double lrel = 0.0, labs = 0.0;
    err_of(&labs, &lrel, l1, l0, N, 1.0);
    int bad = e.loss_rel > loss_rtol || lrel > loss_rtol * 10 || e.dh_rel > rtol || e.dw_rel > rtol;
    if (bad)
        fprintf(stderr, "N=%zu V=%zu C=%zu prec=%d: loss rel %.3g (rows %.3g), dh abs %.3g rel %.3g, dw abs %.3g rel %.3g\n",
                N, V, C, (int)prec, e.loss_rel, lrel, e.dh_abs, e.dh_rel, e.dw_abs, e.dw_rel);
    assert_false(bad);
    free(l0), free(l1), free(dh0), free(dh1), free(dw0), free(dw1);
    return e;
}

static const size_t shapes[][3] = {
    {1, 1, 8},  {1, 17, 8},   {37, 17, 50}, {37, 300, 64}, {5, 12101, 64},
    {70, 513, 50}, {64, 256, 16}, {2, 1000, 33}, {130, 777, 64}, {3, 40, 530},
};

/* F32: the fast path sums in a different order (tiles, 256-item blocks,
 * float lanes) than the reference's sequential float loop, and uses the
 * polynomial exp (~2 ulp). Over V <= 12101 terms the float rounding of
 * either order is ~sqrt(V) 6e-8 ~ 1e-5 relative of the magnitudes summed,
 * hence loss within 1e-5 relative and dh/dw within 1e-4 (abs, of the
 * gradient's scale) + 1e-4 (rel). */
static void test_f32_vs_ref(void **state)
{
    (void)state;
    errs worst = {0};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        prob p = prob_new(shapes[i][0], shapes[i][1], shapes[i][2], 2.0f);
        errs e = compare(&p, SHELF_NN_F32, 1e-5, 1e-4, 1e-4);
        worst.loss_rel = fmax(worst.loss_rel, e.loss_rel);
        worst.dh_abs = fmax(worst.dh_abs, e.dh_abs), worst.dh_rel = fmax(worst.dh_rel, e.dh_rel);
        worst.dw_abs = fmax(worst.dw_abs, e.dw_abs), worst.dw_rel = fmax(worst.dw_rel, e.dw_rel);
        prob_free(&p);
    }
    fprintf(stderr, "F32 vs ref: loss rel %.3g, dh abs %.3g rel %.3g, dw abs %.3g rel %.3g\n", worst.loss_rel,
            worst.dh_abs, worst.dh_rel, worst.dw_abs, worst.dw_rel);
}

/* BF16: h, w and G carry 8 significant bits, 2^-9 = 2e-3 relative rounding
 * each (so ~4e-3 per product of two). A logit is a sum of C such products of
 * mixed sign: its error is ~4e-3 |h||w| / sqrt-ish cancellation, up to
 * ~1e-2 absolute at our scales (|logit| ~ a few); the loss is smooth in the
 * logits (dloss/dlogit in [-1, 1] per row), so the mean loss moves by about
 * that much: 2e-2 relative allowed. dh and dw are sums of many G w / G h
 * terms, each off by ~4e-3 relative plus the logit error's effect on the
 * softmax (e^{1e-2} - 1 ~ 1e-2); allowed 3e-2 of the gradient's scale plus
 * 5e-2 relative: an error of the kind a wrong layout or pairing gives is O(1). */
static void test_bf16_vs_ref(void **state)
{
    (void)state;
    errs worst = {0};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        prob p = prob_new(shapes[i][0], shapes[i][1], shapes[i][2], 2.0f);
        errs e = compare(&p, SHELF_NN_BF16, 2e-2, 3e-2, 5e-2);
        worst.loss_rel = fmax(worst.loss_rel, e.loss_rel);
        worst.dh_abs = fmax(worst.dh_abs, e.dh_abs), worst.dh_rel = fmax(worst.dh_rel, e.dh_rel);
        worst.dw_abs = fmax(worst.dw_abs, e.dw_abs), worst.dw_rel = fmax(worst.dw_rel, e.dw_rel);
        prob_free(&p);
    }
    fprintf(stderr, "BF16 vs ref: loss rel %.3g, dh abs %.3g rel %.3g, dw abs %.3g rel %.3g\n", worst.loss_rel,
            worst.dh_abs, worst.dh_rel, worst.dw_abs, worst.dw_rel);
}

/* ---- (d) thread-count independence ---------------------------------------- */

static void run_head(prob *p, shelf_nn_precision prec, float *L, float *losses, float *dh, float *dw)
{
    shelf_nn_cehead_ws *ws = shelf_nn_cehead_ws_new(p->N, p->V, p->C);
    assert_non_null(ws);
    memset(dw, 0, p->V * p->C * sizeof *dw);
    *L = shelf_nn_cehead(losses, dh, dw, p->h, p->w, p->tgt, 1.0f, p->N, p->V, p->C, prec, ws);
    shelf_nn_cehead_ws_free(ws);
}

static void test_threads(void **state)
{
    (void)state;
#ifdef _OPENMP
    enum { N = 200, V = 3001, C = 64 };
    prob p = prob_new(N, V, C, 2.0f);
    float L1, L2, *l1 = fnew(N), *l2 = fnew(N), *dh1 = fnew(N * C), *dh2 = fnew(N * C), *dw1 = fnew(V * C),
                  *dw2 = fnew(V * C);
    int saved = omp_get_max_threads();
    for (int prec = 0; prec < 2; prec++) {
        omp_set_num_threads(1);
        run_head(&p, (shelf_nn_precision)prec, &L1, l1, dh1, dw1);
        omp_set_num_threads(saved > 2 ? saved : 2);
        run_head(&p, (shelf_nn_precision)prec, &L2, l2, dh2, dw2);
        assert_true(L1 == L2);
        assert_memory_equal(l1, l2, N * sizeof(float));
        assert_memory_equal(dh1, dh2, N * C * sizeof(float));
        assert_memory_equal(dw1, dw2, V * C * sizeof(float));
    }
    omp_set_num_threads(saved);
    free(l1), free(l2), free(dh1), free(dh2), free(dw1), free(dw2);
    prob_free(&p);
#else
    skip();
#endif
}

/* ---- (e) accumulation and NULL outputs ------------------------------------ */

static void test_accumulate_null(void **state)
{
    (void)state;
    enum { N = 37, V = 517, C = 50 };
    prob p = prob_new(N, V, C, 1.0f);
    shelf_nn_cehead_ws *ws = shelf_nn_cehead_ws_new(N + 5, V, C); /* max_N larger than N */
    assert_non_null(ws);
    for (int prec = 0; prec < 2; prec++) {
        float *l = fnew(N), *dh = fnew(N * C), *dh2 = fnew(N * C), *dw = fnew(V * C), *dw2 = fnew(V * C);
        float L = shelf_nn_cehead(l, dh, dw, p.h, p.w, p.tgt, 1.0f, N, V, C, (shelf_nn_precision)prec, ws);
        /* twice into dw2: exactly 2x (the same float sums added to 0 then to
         * themselves); dh is overwritten, not accumulated */
        for (int k = 0; k < 2; k++)
            shelf_nn_cehead(NULL, dh2, dw2, p.h, p.w, p.tgt, 1.0f, N, V, C, (shelf_nn_precision)prec, ws);
        for (size_t i = 0; i < V * C; i++) assert_true(dw2[i] == 2.0f * dw[i]);
        assert_memory_equal(dh, dh2, N * C * sizeof(float));
        /* forward only, and dw NULL: same loss, same dh */
        float L2 = shelf_nn_cehead(NULL, NULL, NULL, p.h, p.w, p.tgt, 1.0f, N, V, C, (shelf_nn_precision)prec, ws);
        assert_true(L2 == L);
        memset(dh2, 0, N * C * sizeof(float));
        shelf_nn_cehead(NULL, dh2, NULL, p.h, p.w, p.tgt, 1.0f, N, V, C, (shelf_nn_precision)prec, ws);
        assert_memory_equal(dh, dh2, N * C * sizeof(float));
        double s = 0.0;
        for (size_t n = 0; n < N; n++) s += l[n];
        assert_true(fabs(s / N - L) <= 1e-6 * fabs(L));
        free(l), free(dh), free(dh2), free(dw), free(dw2);
    }
    shelf_nn_cehead_ws_free(ws);
    prob_free(&p);
}

/* ---- exp, softmax CE and GELU against libm ----------------------------------- */

/* exp through the softmax CE backward (g = 1, lse = 0, in place: d = exp(x)),
 * which is the public entry to the vectorised exp. Bound: 4 ulp-ish
 * (2^-21 relative) over [-87, 88]; below, the result is a denormal or 0 like
 * libm's (compared in absolute terms); never NaN or inf for finite x. */
static void test_exp_vs_libm(void **state)
{
    (void)state;
    enum { M = 200001 };
    float *x = fnew(M), *d = fnew(M), lse = 0.0f;
    double worst = 0.0;
    for (size_t i = 0; i < M; i++) x[i] = -120.0f + 208.5f * (float)i / (M - 1); /* [-120, 88.5] */
    uint32_t t = 0;
    memcpy(d, x, M * sizeof(float));
    shelf_nn_softmax_ce_backward(d, d, &lse, &t, 1.0f, 1, M);
    d[0] += 1.0f; /* undo the target's -g */
    for (size_t i = 0; i < M; i++) {
        double want = exp((double)x[i]);
        assert_true(isfinite(d[i]));
        if (x[i] < -87.0f) {
            assert_true(fabs(d[i] - want) < 2e-38);
            continue;
        }
        double rel = fabs(d[i] - want) / want;
        worst = rel > worst ? rel : worst;
    }
    fprintf(stderr, "exp vs libm on [-87, 88.5]: max rel %.3g (%.2f ulp of 2^-24)\n", worst, worst * 16777216.0);
    assert_true(worst < 2.4e-7); /* 4 ulp at 2^-24 per ulp */
    free(x), free(d);
}

static double gelu_d(double x, double *dl)
{
    double k = 0.7978845608028654, u = k * (x + 0.044715 * x * x * x), th = tanh(u);
    *dl = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * k * (1 + 3 * 0.044715 * x * x);
    return 0.5 * x * (1 + th);
}

/* GELU forward/backward against double libm over [-60, 60] (saturation of
 * the tanh on both sides): |err| <= 2e-6 (1 + |ref|) for the value and 5e-6
 * (1 + |ref|) for the derivative; float evaluation of the cubic and the
 * 1 - 2/(e+1) form cost a few ulp of O(1) quantities. */
static void test_gelu_vs_libm(void **state)
{
    (void)state;
    enum { M = 120001 };
    float *x = fnew(M), *y = fnew(M), *ones = fnew(M), *dl = fnew(M);
    for (size_t i = 0; i < M; i++) x[i] = -60.0f + 120.0f * (float)i / (M - 1), ones[i] = 1.0f;
    shelf_nn_gelu_forward(y, x, M);
    shelf_nn_gelu_backward(dl, x, ones, M);
    double wy = 0.0, wd = 0.0;
    for (size_t i = 0; i < M; i++) {
        double dref, yref = gelu_d(x[i], &dref);
        assert_true(isfinite(y[i]) && isfinite(dl[i]));
        double ey = fabs(y[i] - yref) / (1 + fabs(yref)), ed = fabs(dl[i] - dref) / (1 + fabs(dref));
        wy = ey > wy ? ey : wy, wd = ed > wd ? ed : wd;
    }
    fprintf(stderr, "gelu vs libm: value %.3g, derivative %.3g (relative to 1 + |ref|)\n", wy, wd);
    assert_true(wy <= 2e-6 && wd <= 5e-6);
    free(x), free(y), free(ones), free(dl);
}

int main(void)
{
    shelf_rng_seed(&g_rng, 20261128);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_fd),      cmocka_unit_test(test_f32_vs_ref),
        cmocka_unit_test(test_bf16_vs_ref), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_accumulate_null), cmocka_unit_test(test_exp_vs_libm),
        cmocka_unit_test(test_gelu_vs_libm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
