/* test_nn_kernels.c: the nn.h kernels: every backward against central finite
 * differences, the sgemm linear against its naive loop, the losses against
 * hand-computed values, padding, sampled softmax vs full softmax, dropout.
 *
 * Finite differences. Each layer's scalar test loss is L = sum_i w_i out_i
 * with fixed random w (so the analytic gradient is the backward run with
 * dout = w), summed in double from the float outputs. Parameters are
 * perturbed in float by eps = 1e-2 and the step actually taken,
 * (float)(x+eps) - (float)(x-eps), is the divisor. Error budget: truncation
 * is O(eps^2 f''') ~ 1e-5 for these smooth kernels of O(1) inputs; float
 * rounding of the few outputs one input touches (<= ~40 outputs of size
 * ~3, 6e-8 relative each) is ~1e-6 in L, i.e. ~5e-5 after dividing by 2 eps.
 * So we require |numeric - analytic| <= ATOL + RTOL |analytic| with
 * ATOL = 1e-3 and RTOL = 1e-2: ten times the budget, and still far below
 * the size of any real bug (a wrong term is O(0.1..1)).
 *
 * Dimension letters: N rows, C channels, OC output channels, V classes,
 * S sampled negatives, K binary negatives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn_test_util.h"

/* ---- helpers ------------------------------------------------------------ */

static double dot_d(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Checks analytic[n] against central differences of loss(ctx) over param[n]. */
static void fd_check(const char *what, float *param, const float *analytic, size_t n, double (*loss)(void *),
                     void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        float x0 = param[i];
        float xp = x0 + FD_EPS, xm = x0 - FD_EPS;
        param[i] = xp;
        double lp = loss(ctx);
        param[i] = xm;
        double lm = loss(ctx);
        param[i] = x0;
        double num = (lp - lm) / ((double)xp - (double)xm);
        double ana = analytic[i];
        if (fabs(num - ana) > FD_ATOL + FD_RTOL * fabs(ana)) {
            fprintf(stderr, "%s[%zu]: numeric %.6g analytic %.6g\n", what, i, num, ana);
            fail();
        }
    }
}

/* ---- embedding ------------------------------------------------------------ */

typedef struct {
    float *out, *w, *table;
    const uint32_t *idx;
    size_t N, C;
} emb_ctx;

static double emb_loss(void *p)
{
    emb_ctx *c = p;
    shelf_nn_embedding_forward(c->out, c->idx, c->table, c->N, c->C);
    return dot_d(c->out, c->w, c->N * c->C);
}

static void test_embedding(void **state)
{
    (void)state;
    enum { R = 6, N = 7, C = 5 };
    const uint32_t idx[N] = {3, 0, 3, SHELF_NN_PAD, 5, 3, 1}; /* repeats and a pad */
    float *table = fnew(R * C), *out = fnew(N * C), *w = fnew(N * C), *dtable = fnew(R * C);
    fill_normal(table, R * C, 1.0f);
    fill_normal(w, N * C, 1.0f);
    shelf_nn_embedding_forward(out, idx, table, N, C);
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++)
            assert_true(out[n * C + c] == (idx[n] == SHELF_NN_PAD ? 0.0f : table[idx[n] * C + c]));
    /* accumulation: start dtable at 1, expect 1 + scatter */
    for (size_t i = 0; i < R * C; i++) dtable[i] = 1.0f;
    shelf_nn_embedding_backward(dtable, w, idx, N, C);
    for (size_t c = 0; c < C; c++) {
        float want3 = 1.0f + w[0 * C + c] + w[2 * C + c] + w[5 * C + c];
        assert_true(fabsf(dtable[3 * C + c] - want3) < 1e-6f);
        assert_true(dtable[2 * C + c] == 1.0f); /* untouched row */
        assert_true(dtable[4 * C + c] == 1.0f);
    }
    for (size_t i = 0; i < R * C; i++) dtable[i] -= 1.0f;
    emb_ctx ctx = {out, w, table, idx, N, C};
    fd_check("embedding dtable", table, dtable, R * C, emb_loss, &ctx);
    free(table), free(out), free(w), free(dtable);
}

/* ---- LayerNorm ------------------------------------------------------------ */

typedef struct {
    float *out, *mean, *rstd, *inp, *weight, *bias, *w;
    size_t N, C;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *c = p;
    shelf_nn_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->weight, c->bias, c->N, c->C);
    return dot_d(c->out, c->w, c->N * c->C);
}

static void test_layernorm(void **state)
{
    (void)state;
    enum { N = 5, C = 9 };
    ln_ctx c = {fnew(N * C), fnew(N), fnew(N), fnew(N * C), fnew(C), fnew(C), fnew(N * C), N, C};
    fill_normal(c.inp, N * C, 1.0f);
    for (size_t i = 0; i < N * C; i++) c.inp[i] += 0.5f; /* nonzero mean */
    /* unit weight, zero bias: rows of mean 0 and variance 1 (up to eps) */
    for (size_t i = 0; i < C; i++) c.weight[i] = 1.0f, c.bias[i] = 0.0f;
    ln_loss(&c);
    for (size_t n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < C; i++) m += c.out[n * C + i];
        m /= C;
        for (size_t i = 0; i < C; i++) v += (c.out[n * C + i] - m) * (c.out[n * C + i] - m);
        v /= C;
        assert_true(fabs(m) < 1e-5);
        assert_true(fabs(v - 1.0) < 1e-3); /* eps 1e-5 against variances ~1 */
    }
    fill_normal(c.weight, C, 1.0f);
    fill_normal(c.bias, C, 1.0f);
    fill_normal(c.w, N * C, 1.0f);
    float *dinp = fnew(N * C), *dw = fnew(C), *db = fnew(C);
    ln_loss(&c);
    shelf_nn_layernorm_backward(dinp, dw, db, c.w, c.inp, c.weight, c.mean, c.rstd, N, C);
    fd_check("layernorm dinp", c.inp, dinp, N * C, ln_loss, &c);
    fd_check("layernorm dweight", c.weight, dw, C, ln_loss, &c);
    fd_check("layernorm dbias", c.bias, db, C, ln_loss, &c);
    /* accumulation: a second backward doubles the gradients */
    float d0 = dinp[3], w0 = dw[2];
    ln_loss(&c);
    shelf_nn_layernorm_backward(dinp, dw, db, c.w, c.inp, c.weight, c.mean, c.rstd, N, C);
    assert_true(fabsf(dinp[3] - 2 * d0) <= 1e-5f * (1 + fabsf(d0)));
    assert_true(fabsf(dw[2] - 2 * w0) <= 1e-5f * (1 + fabsf(w0)));
    free(c.out), free(c.mean), free(c.rstd), free(c.inp), free(c.weight), free(c.bias), free(c.w);
    free(dinp), free(dw), free(db);
}

/* ---- linear --------------------------------------------------------------- */

/* sgemm against the naive loop: |fast - ref| <= 1e-4 max(1, |ref|). Both sum
 * C (or N) float products in different orders; with C, N <= 300 and O(1)
 * inputs the difference is ~1e-6 relative, so 1e-4 has ample margin. */
static void close_rel(const char *what, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float tol = 1e-4f * fmaxf(1.0f, fabsf(b[i]));
        if (!(fabsf(a[i] - b[i]) <= tol)) {
            fprintf(stderr, "%s[%zu]: %.8g vs ref %.8g\n", what, i, a[i], b[i]);
            fail();
        }
    }
}

static void test_linear_vs_ref(void **state)
{
    (void)state;
    static const size_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 64, 64}, {67, 45, 33}, {256, 64, 256}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        float *inp = fnew(N * C), *W = fnew(C * OC), *b = fnew(OC), *dout = fnew(N * OC);
        float *o1 = fnew(N * OC), *o2 = fnew(N * OC);
        float *di1 = fnew(N * C), *di2 = fnew(N * C), *dw1 = fnew(C * OC), *dw2 = fnew(C * OC);
        float *db1 = fnew(OC), *db2 = fnew(OC);
        fill_normal(inp, N * C, 1.0f);
        fill_normal(W, C * OC, 0.2f);
        fill_normal(b, OC, 1.0f);
        fill_normal(dout, N * OC, 1.0f);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            const float *bb = with_bias ? b : NULL;
            shelf_nn_linear_forward(o1, inp, W, bb, N, C, OC);
            shelf_nn_linear_forward_ref(o2, inp, W, bb, N, C, OC);
            close_rel("linear out", o1, o2, N * OC);
        }
        /* backward accumulates: start both from the same nonzero values */
        fill_normal(di1, N * C, 1.0f), memcpy(di2, di1, N * C * sizeof(float));
        fill_normal(dw1, C * OC, 1.0f), memcpy(dw2, dw1, C * OC * sizeof(float));
        fill_normal(db1, OC, 1.0f), memcpy(db2, db1, OC * sizeof(float));
        shelf_nn_linear_backward(di1, dw1, db1, dout, inp, W, N, C, OC);
        shelf_nn_linear_backward_ref(di2, dw2, db2, dout, inp, W, N, C, OC);
        close_rel("linear dinp", di1, di2, N * C);
        close_rel("linear dweight", dw1, dw2, C * OC);
        close_rel("linear dbias", db1, db2, OC);
        /* NULL gradients are skipped */
        shelf_nn_linear_backward(NULL, dw1, NULL, dout, inp, W, N, C, OC);
        shelf_nn_linear_backward_ref(NULL, dw2, NULL, dout, inp, W, N, C, OC);
        close_rel("linear dweight (2)", dw1, dw2, C * OC);
        free(inp), free(W), free(b), free(dout), free(o1), free(o2), free(di1), free(di2);
        free(dw1), free(dw2), free(db1), free(db2);
    }
}

typedef struct {
    float *out, *inp, *W, *b, *w;
    size_t N, C, OC;
} lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *c = p;
    shelf_nn_linear_forward(c->out, c->inp, c->W, c->b, c->N, c->C, c->OC);
    return dot_d(c->out, c->w, c->N * c->OC);
}

static void test_linear_fd(void **state)
{
    (void)state;
    enum { N = 4, C = 6, OC = 5 };
    lin_ctx c = {fnew(N * OC), fnew(N * C), fnew(C * OC), fnew(OC), fnew(N * OC), N, C, OC};
    fill_normal(c.inp, N * C, 1.0f);
    fill_normal(c.W, C * OC, 0.5f);
    fill_normal(c.b, OC, 1.0f);
    fill_normal(c.w, N * OC, 1.0f);
    float *di = fnew(N * C), *dw = fnew(C * OC), *db = fnew(OC);
    shelf_nn_linear_backward(di, dw, db, c.w, c.inp, c.W, N, C, OC);
    fd_check("linear dinp", c.inp, di, N * C, lin_loss, &c);
    fd_check("linear dweight", c.W, dw, C * OC, lin_loss, &c);
    fd_check("linear dbias", c.b, db, OC, lin_loss, &c);
    free(c.out), free(c.inp), free(c.W), free(c.b), free(c.w), free(di), free(dw), free(db);
}

/* ---- GELU, residual ------------------------------------------------------- */

typedef struct {
    float *out, *inp, *w;
    size_t n;
} ew_ctx;

static double gelu_loss(void *p)
{
    ew_ctx *c = p;
    shelf_nn_gelu_forward(c->out, c->inp, c->n);
    return dot_d(c->out, c->w, c->n);
}

static void test_gelu(void **state)
{
    (void)state;
    /* values of torch.nn.functional.gelu(x, approximate='tanh') */
    const float x[4] = {0.0f, 1.0f, -1.0f, 3.0f};
    const float want[4] = {0.0f, 0.8411920f, -0.1588080f, 2.9963627f};
    float y[4];
    shelf_nn_gelu_forward(y, x, 4);
    for (int i = 0; i < 4; i++) assert_true(fabsf(y[i] - want[i]) < 1e-6f);
    enum { n = 40 };
    ew_ctx c = {fnew(n), fnew(n), fnew(n), n};
    fill_normal(c.inp, n, 2.0f);
    fill_normal(c.w, n, 1.0f);
    float *d = fnew(n);
    shelf_nn_gelu_backward(d, c.inp, c.w, n);
    fd_check("gelu dinp", c.inp, d, n, gelu_loss, &c);
    free(c.out), free(c.inp), free(c.w), free(d);
}

static void test_residual(void **state)
{
    (void)state;
    float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, o[3], da[3] = {1, 1, 1}, db[3] = {0, 0, 0};
    const float g[3] = {0.5f, -1.0f, 2.0f};
    shelf_nn_residual_forward(o, a, b, 3);
    for (int i = 0; i < 3; i++) assert_true(o[i] == a[i] + b[i]);
    shelf_nn_residual_backward(da, db, g, 3);
    for (int i = 0; i < 3; i++) assert_true(da[i] == 1 + g[i] && db[i] == g[i]);
}

/* ---- dropout -------------------------------------------------------------- */

typedef struct {
    float *out, *inp, *w;
    uint8_t *mask;
    float p;
    size_t n;
} drop_ctx;

static double drop_loss(void *p)
{
    drop_ctx *c = p;
    shelf_rng r;
    shelf_rng_seed(&r, 99); /* same mask on every call */
    shelf_nn_dropout_forward(c->out, c->mask, c->inp, c->p, &r, c->n);
    return dot_d(c->out, c->w, c->n);
}

static void test_dropout(void **state)
{
    (void)state;
    enum { n = 100000 };
    float *inp = fnew(n), *o1 = fnew(n), *o2 = fnew(n);
    uint8_t *m1 = malloc(n), *m2 = malloc(n);
    assert_non_null(m1), assert_non_null(m2);
    fill_normal(inp, n, 1.0f);
    shelf_rng r1, r2;

    /* p = 0: identity, mask all ones, rng untouched */
    shelf_rng_seed(&r1, 5);
    shelf_nn_dropout_forward(o1, m1, inp, 0.0f, &r1, n);
    assert_memory_equal(o1, inp, n * sizeof(float));
    for (size_t i = 0; i < n; i++) assert_int_equal(m1[i], 1);
    shelf_rng_seed(&r2, 5);
    assert_memory_equal(&r1, &r2, sizeof r1);

    /* same seed, same mask and output; another seed, another mask */
    const float p = 0.3f;
    shelf_rng_seed(&r1, 7);
    shelf_rng_seed(&r2, 7);
    shelf_nn_dropout_forward(o1, m1, inp, p, &r1, n);
    shelf_nn_dropout_forward(o2, m2, inp, p, &r2, n);
    assert_memory_equal(m1, m2, n);
    assert_memory_equal(o1, o2, n * sizeof(float));
    shelf_rng_seed(&r2, 8);
    shelf_nn_dropout_forward(o2, m2, inp, p, &r2, n);
    assert_true(memcmp(m1, m2, n) != 0);

    /* keep rate 1 - p: binomial sd sqrt(p(1-p)/n) = 0.00145; allow 0.01 */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        kept += m1[i];
        assert_true(m1[i] ? fabsf(o1[i] - inp[i] / (1 - p)) <= 1e-6f * (1 + fabsf(o1[i])) : o1[i] == 0.0f);
    }
    assert_true(fabs((double)kept / n - (1 - p)) < 0.01);

    /* the mask does not depend on the thread count, and the caller's rng
     * advances by exactly one draw */
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    shelf_rng_seed(&r2, 7);
    shelf_nn_dropout_forward(o2, m2, inp, p, &r2, n);
    omp_set_num_threads(threads);
    assert_memory_equal(m1, m2, n);
#endif
    shelf_rng_seed(&r2, 7);
    (void)shelf_rng_u64(&r2);
    assert_memory_equal(&r1, &r2, sizeof r1);

    /* in place (out == inp) equals out of place */
    memcpy(o2, inp, n * sizeof(float));
    shelf_rng_seed(&r2, 7);
    shelf_nn_dropout_forward(o2, m2, o2, p, &r2, n);
    assert_memory_equal(o1, o2, n * sizeof(float));

    /* backward against finite differences on a small vector */
    enum { m = 30 };
    drop_ctx c = {fnew(m), fnew(m), fnew(m), malloc(m), 0.4f, m};
    assert_non_null(c.mask);
    fill_normal(c.inp, m, 1.0f);
    fill_normal(c.w, m, 1.0f);
    drop_loss(&c);
    float *d = fnew(m);
    shelf_nn_dropout_backward(d, c.w, c.mask, c.p, m);
    fd_check("dropout dinp", c.inp, d, m, drop_loss, &c);
    free(c.out), free(c.inp), free(c.w), free(c.mask), free(d);
    free(inp), free(o1), free(o2), free(m1), free(m2);
}

/* ---- full softmax cross-entropy ------------------------------------------- */

static void test_softmax_ce_hand(void **state)
{
    (void)state;
    /* row 0: log(e^1+e^2+e^3) - 3 = 0.40760596; row 1: padding; row 2:
     * uniform over 3: log 3 = 1.09861229; row 3: [1000,0,-1000] target 0:
     * 0 (no overflow). Mean over the 3 valid rows = 0.50207275. */
    const float logits[12] = {1, 2, 3, 5, 5, 5, 0, 0, 0, 1000, 0, -1000};
    const uint32_t t[4] = {2, SHELF_NN_PAD, 0, 0};
    float losses[4], lse[4];
    float L = shelf_nn_softmax_ce_forward(losses, lse, logits, t, 4, 3);
    assert_true(fabsf(losses[0] - 0.40760596f) < 1e-6f);
    assert_true(losses[1] == 0.0f);
    assert_true(fabsf(losses[2] - 1.09861229f) < 1e-6f);
    assert_true(isfinite(losses[3]) && fabsf(losses[3]) < 1e-6f);
    assert_true(fabsf(L - 0.50207275f) < 1e-6f);
    /* gradient of row 0 with dloss = 1: (softmax - onehot) / 3 */
    float d[12] = {0};
    shelf_nn_softmax_ce_backward(d, logits, lse, t, 1.0f, 4, 3);
    const double z = exp(1) + exp(2) + exp(3);
    assert_true(fabs(d[0] - exp(1) / z / 3) < 1e-6);
    assert_true(fabs(d[2] - (exp(3) / z - 1) / 3) < 1e-6);
    for (int v = 3; v < 6; v++) assert_true(d[v] == 0.0f); /* padding row */
    /* all rows padding: loss 0, no gradient */
    const uint32_t tp[4] = {SHELF_NN_PAD, SHELF_NN_PAD, SHELF_NN_PAD, SHELF_NN_PAD};
    assert_true(shelf_nn_softmax_ce_forward(losses, lse, logits, tp, 4, 3) == 0.0f);
}

typedef struct {
    float *logits, *losses, *lse;
    const uint32_t *t;
    size_t N, V;
} ce_ctx;

static double ce_loss(void *p)
{
    ce_ctx *c = p;
    return shelf_nn_softmax_ce_forward(c->losses, c->lse, c->logits, c->t, c->N, c->V);
}

static void test_softmax_ce_fd(void **state)
{
    (void)state;
    enum { N = 5, V = 11 };
    const uint32_t t[N] = {3, SHELF_NN_PAD, 0, 10, 3};
    ce_ctx c = {fnew(N * V), fnew(N), fnew(N), t, N, V};
    fill_normal(c.logits, N * V, 2.0f);
    float *d = fnew(N * V);
    const float dloss = 0.7f;
    ce_loss(&c);
    shelf_nn_softmax_ce_backward(d, c.logits, c.lse, t, dloss, N, V);
    /* FD of 0.7 * L: scale the analytic gradient back by 1/0.7 */
    float *d1 = fnew(N * V);
    for (size_t i = 0; i < N * V; i++) d1[i] = d[i] / dloss;
    fd_check("softmax_ce dlogits", c.logits, d1, N * V, ce_loss, &c);
    for (size_t v = 0; v < V; v++) assert_true(d[1 * V + v] == 0.0f); /* padding row */
    /* each valid row's gradient sums to 0 */
    for (size_t n = 0; n < N; n++) {
        double s = 0;
        for (size_t v = 0; v < V; v++) s += d[n * V + v];
        assert_true(fabs(s) < 1e-6);
    }
    /* in place: overwrites logits with the same gradient, padding rows zeroed
     * (fd_check left lse at a perturbed point: recompute it first) */
    ce_loss(&c);
    float *x = fnew(N * V);
    memcpy(x, c.logits, N * V * sizeof(float));
    shelf_nn_softmax_ce_backward(x, x, c.lse, t, dloss, N, V);
    for (size_t i = 0; i < N * V; i++) assert_true(fabsf(x[i] - d[i]) <= 1e-7f);
    free(c.logits), free(c.losses), free(c.lse), free(d), free(d1), free(x);
}

/* ---- sampled softmax -------------------------------------------------------- */

static void test_sampled_softmax_hand(void **state)
{
    (void)state;
    /* one row, target 4, S = 2 shared negatives {7, 9} with q {0.5, 0.25}:
     * corrected z = [1, 2 - log(2*0.5), 0 - log(2*0.25)] = [1, 2, log 2];
     * loss = log(e + e^2 + 2) - 1 = log(12.1073379) - 1 = 1.49381171.
     * Row 2 has an accidental hit (negative 9 == target 9): only
     * [1, 2] remain: loss = log(e + e^2) - 1 = 1.31326169. Row 1: padding. */
    const float logits[9] = {1, 2, 0, 8, 8, 8, 1, 2, 0};
    const uint32_t t[3] = {4, SHELF_NN_PAD, 9};
    const uint32_t ids[2] = {7, 9};
    const float q[2] = {0.5f, 0.25f};
    float losses[3], lse[3];
    float L = shelf_nn_sampled_softmax_forward(losses, lse, logits, t, ids, q, 0, NULL, 3, 2);
    assert_true(fabsf(losses[0] - 1.49381171f) < 1e-5f);
    assert_true(losses[1] == 0.0f);
    assert_true(fabsf(losses[2] - 1.31326169f) < 1e-5f);
    assert_true(fabsf(L - (1.49381171f + 1.31326169f) / 2) < 1e-5f);
    /* with pos_q = 0.25 for the target: z_0 = 1 - log(0.5) = 1.69314718;
     * loss = log(e^1.693 + e^2 + 2) - 1.693 = log(14.8256) - 1.69314718
     *      = 1.00320957 */
    const float pq[3] = {0.25f, 0.25f, 0.25f};
    shelf_nn_sampled_softmax_forward(losses, lse, logits, t, ids, q, 0, pq, 3, 2);
    assert_true(fabsf(losses[0] - 1.00320957f) < 1e-5f);
    /* gradient: masked column 0, padding row 0 */
    float d[9] = {0};
    shelf_nn_sampled_softmax_backward(d, logits, lse, t, ids, q, 0, pq, 1.0f, 3, 2);
    assert_true(d[8] == 0.0f);
    for (int j = 3; j < 6; j++) assert_true(d[j] == 0.0f);
    assert_true(d[0] < 0.0f && d[1] > 0.0f && d[2] > 0.0f);
}

/* With every class sampled once (S = V, shared ids 0..V-1) and every q equal
 * to some constant c (target included, pos_q = c): each corrected logit is
 * logit - log(V c), one constant shift; the target's own copy among the
 * negatives is an accidental hit and is masked, so the softmax runs over
 * exactly the V classes, and softmax is shift invariant. Hence the sampled
 * loss and gradients equal the full CE ones (any c). With pos_q = NULL the
 * target is not shifted and equality holds only when V c = 1 (q uniform =
 * 1/V, log(S q) = 0); otherwise the loss differs, checked against the
 * closed form  log(e^{x_t} + e^{-a} sum_{j != t} e^{x_j}) - x_t, a = log(Vc). */
static void test_sampled_equals_full(void **state)
{
    (void)state;
    enum { N = 6, V = 9 };
    const uint32_t t[N] = {0, 8, 4, SHELF_NN_PAD, 4, 2};
    float *x = fnew(N * V), *xs = fnew(N * (V + 1));
    fill_normal(x, N * V, 2.0f);
    uint32_t ids[V];
    float q[V], pq[N];
    for (size_t v = 0; v < V; v++) ids[v] = (uint32_t)v;
    for (size_t n = 0; n < N; n++) {
        xs[n * (V + 1)] = t[n] == SHELF_NN_PAD ? 0.0f : x[n * V + t[n]];
        memcpy(xs + n * (V + 1) + 1, x + n * V, V * sizeof(float));
    }
    float lf[N], lsef[N], ls[N], lses[N];
    float Lf = shelf_nn_softmax_ce_forward(lf, lsef, x, t, N, V);
    float *df = fnew(N * V), *ds = fnew(N * (V + 1));
    shelf_nn_softmax_ce_backward(df, x, lsef, t, 1.0f, N, V);

    const float cs[3] = {1.0f / V, 0.37f, 0.01f};
    for (int k = 0; k < 3; k++) {
        for (size_t v = 0; v < V; v++) q[v] = cs[k];
        for (size_t n = 0; n < N; n++) pq[n] = cs[k];
        float Ls = shelf_nn_sampled_softmax_forward(ls, lses, xs, t, ids, q, 0, pq, N, V);
        assert_true(fabsf(Ls - Lf) < 1e-5f);
        memset(ds, 0, N * (V + 1) * sizeof(float));
        shelf_nn_sampled_softmax_backward(ds, xs, lses, t, ids, q, 0, pq, 1.0f, N, V);
        for (size_t n = 0; n < N; n++) {
            if (t[n] == SHELF_NN_PAD) continue;
            for (size_t v = 0; v < V; v++) {
                float s = v == t[n] ? ds[n * (V + 1)] : ds[n * (V + 1) + 1 + v];
                assert_true(fabsf(s - df[n * V + v]) < 1e-6f);
            }
            assert_true(ds[n * (V + 1) + 1 + t[n]] == 0.0f); /* masked copy */
        }
        /* pos_q NULL: equal to full CE when V c = 1, else the closed form */
        shelf_nn_sampled_softmax_forward(ls, lses, xs, t, ids, q, 0, NULL, N, V);
        for (size_t n = 0; n < N; n++) {
            if (t[n] == SHELF_NN_PAD) continue;
            double a = log((double)V * cs[k]), s = 0;
            for (size_t v = 0; v < V; v++)
                if (v != t[n]) s += exp((double)x[n * V + v] - a);
            double want = log(exp((double)x[n * V + t[n]]) + s) - x[n * V + t[n]];
            if (k == 0) assert_true(fabs(want - lf[n]) < 1e-5);
            assert_true(fabs(ls[n] - want) < 1e-5);
        }
    }
    free(x), free(xs), free(df), free(ds);
}

typedef struct {
    float *logits, *losses, *lse;
    const uint32_t *t, *ids;
    const float *q, *pq;
    size_t stride, N, S;
} ss_ctx;

static double ss_loss(void *p)
{
    ss_ctx *c = p;
    return shelf_nn_sampled_softmax_forward(c->losses, c->lse, c->logits, c->t, c->ids, c->q, c->stride, c->pq,
                                            c->N, c->S);
}

static void test_sampled_softmax_fd(void **state)
{
    (void)state;
    enum { N = 4, S = 5 };
    const uint32_t t[N] = {2, 7, SHELF_NN_PAD, 11};
    /* per-row negatives (stride S), with accidental hits in rows 0 and 3 */
    const uint32_t ids[N * S] = {1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 1, 1, 1, 1, 1, 11, 0, 11, 6, 5};
    float q[N * S], pq[N];
    for (size_t i = 0; i < N * S; i++) q[i] = 0.02f + 0.2f * (float)shelf_rng_uniform(&g_rng);
    for (size_t i = 0; i < N; i++) pq[i] = 0.05f;
    for (int with_pq = 0; with_pq < 2; with_pq++) {
        ss_ctx c = {fnew(N * (S + 1)), fnew(N), fnew(N), t, ids, q, with_pq ? pq : NULL, S, N, S};
        fill_normal(c.logits, N * (S + 1), 2.0f);
        float *d = fnew(N * (S + 1));
        ss_loss(&c);
        shelf_nn_sampled_softmax_backward(d, c.logits, c.lse, t, ids, q, S, c.pq, 1.0f, N, S);
        fd_check("sampled_softmax dlogits", c.logits, d, N * (S + 1), ss_loss, &c);
        assert_true(d[0 * (S + 1) + 2] == 0.0f);                          /* row 0: id 2 == target */
        assert_true(d[3 * (S + 1) + 1] == 0.0f && d[3 * (S + 1) + 3] == 0.0f); /* row 3: id 11 twice */
        for (size_t j = 0; j <= S; j++) assert_true(d[2 * (S + 1) + j] == 0.0f); /* padding */
        /* in place gives the same (lse recomputed after fd_check) */
        ss_loss(&c);
        float *x = fnew(N * (S + 1));
        memcpy(x, c.logits, N * (S + 1) * sizeof(float));
        shelf_nn_sampled_softmax_backward(x, x, c.lse, t, ids, q, S, c.pq, 1.0f, N, S);
        for (size_t i = 0; i < N * (S + 1); i++) assert_true(fabsf(x[i] - d[i]) <= 1e-7f);
        free(c.logits), free(c.losses), free(c.lse), free(d), free(x);
    }
}

/* ---- binary cross-entropy ------------------------------------------------- */

static void test_bce_hand(void **state)
{
    (void)state;
    /* row 0: x = [0 | 0]: 2 log 2 = 1.38629436. row 1: [100 | -100]: ~2e-44,
     * i.e. 0 in float, finite. row 2: [-100 | 100]: 200 (stable, no inf).
     * row 3: padding. Mean over 3 valid rows: (1.38629436 + 0 + 200) / 3. */
    const float x[8] = {0, 0, 100, -100, -100, 100, 5, 5};
    const uint32_t t[4] = {1, 2, 3, SHELF_NN_PAD};
    float losses[4];
    float L = shelf_nn_bce_forward(losses, x, t, NULL, 0, 4, 1);
    assert_true(fabsf(losses[0] - 1.38629436f) < 1e-6f);
    assert_true(isfinite(losses[1]) && losses[1] < 1e-6f);
    assert_true(fabsf(losses[2] - 200.0f) < 1e-4f);
    assert_true(losses[3] == 0.0f);
    assert_true(fabsf(L - (1.38629436f + 200.0f) / 3) < 1e-4f);
    float d[8] = {0};
    shelf_nn_bce_backward(d, x, t, NULL, 0, 3.0f, 4, 1); /* dloss 3: g = 1 */
    assert_true(fabsf(d[0] + 0.5f) < 1e-6f && fabsf(d[1] - 0.5f) < 1e-6f);
    assert_true(fabsf(d[4] + 1.0f) < 1e-6f && fabsf(d[5] - 1.0f) < 1e-6f);
    assert_true(d[6] == 0.0f && d[7] == 0.0f);
    /* targets NULL: every row valid */
    L = shelf_nn_bce_forward(losses, x, NULL, NULL, 0, 1, 1);
    assert_true(fabsf(L - 1.38629436f) < 1e-6f);
}

typedef struct {
    float *logits, *losses;
    const uint32_t *t, *ids;
    size_t N, K;
} bce_ctx;

static double bce_loss(void *p)
{
    bce_ctx *c = p;
    return shelf_nn_bce_forward(c->losses, c->logits, c->t, c->ids, c->K, c->N, c->K);
}

static void test_bce_fd(void **state)
{
    (void)state;
    enum { N = 4, K = 3 };
    const uint32_t t[N] = {5, SHELF_NN_PAD, 2, 9};
    const uint32_t ids[N * K] = {1, 5, 3, 4, 4, 4, 7, 8, 9, 9, 0, 1}; /* hits: row 0 col 1, row 3 col 0 */
    bce_ctx c = {fnew(N * (K + 1)), fnew(N), t, ids, N, K};
    fill_normal(c.logits, N * (K + 1), 2.0f);
    float *d = fnew(N * (K + 1));
    bce_loss(&c);
    shelf_nn_bce_backward(d, c.logits, t, ids, K, 1.0f, N, K);
    fd_check("bce dlogits", c.logits, d, N * (K + 1), bce_loss, &c);
    assert_true(d[0 * (K + 1) + 2] == 0.0f && d[3 * (K + 1) + 1] == 0.0f);
    for (size_t j = 0; j <= K; j++) assert_true(d[1 * (K + 1) + j] == 0.0f);
    free(c.logits), free(c.losses), free(d);
}

/* ---- large shapes: the OpenMP row loops ------------------------------------ */

/* Shapes above the kernels' parallel threshold give the same results as the
 * same kernels run one row at a time (always serial): bit-identical, since
 * rows are independent and no reduction crosses threads. */
static void test_parallel_rows(void **state)
{
    (void)state;
    enum { N = 600, C = 64, V = 1000, NV = 40 };
    float *inp = fnew(N * C), *w = fnew(C), *b = fnew(C), *o1 = fnew(N * C), *o2 = fnew(N * C);
    float *m1 = fnew(N), *r1 = fnew(N), *m2 = fnew(N), *r2 = fnew(N);
    fill_normal(inp, N * C, 1.0f), fill_normal(w, C, 1.0f), fill_normal(b, C, 1.0f);
    shelf_nn_layernorm_forward(o1, m1, r1, inp, w, b, N, C);
    for (size_t n = 0; n < N; n++)
        shelf_nn_layernorm_forward(o2 + n * C, m2 + n, r2 + n, inp + n * C, w, b, 1, C);
    assert_memory_equal(o1, o2, N * C * sizeof(float));
    float *x = fnew(NV * V), *l1 = fnew(NV), *s1 = fnew(NV), *l2 = fnew(NV), *s2 = fnew(NV);
    float *d1 = fnew(NV * V), *d2 = fnew(NV * V);
    uint32_t t[NV];
    for (size_t n = 0; n < NV; n++) t[n] = n % 7 == 3 ? SHELF_NN_PAD : shelf_rng_below(&g_rng, V);
    fill_normal(x, NV * V, 3.0f);
    float L = shelf_nn_softmax_ce_forward(l1, s1, x, t, NV, V);
    shelf_nn_softmax_ce_backward(d1, x, s1, t, 1.0f, NV, V);
    double sum = 0;
    size_t nv = 0;
    for (size_t n = 0; n < NV; n++) {
        shelf_nn_softmax_ce_forward(l2 + n, s2 + n, x + n * V, t + n, 1, V);
        if (t[n] != SHELF_NN_PAD) sum += l2[n], nv++;
    }
    assert_memory_equal(l1, l2, NV * sizeof(float));
    assert_true(fabs(L - sum / nv) < 1e-6 * (1 + fabs(L)));
    /* the backward scales by 1/n_valid of the whole batch */
    for (size_t n = 0; n < NV; n++)
        shelf_nn_softmax_ce_backward(d2 + n * V, x + n * V, s2 + n, t + n, 1.0f / (float)nv, 1, V);
    for (size_t i = 0; i < NV * V; i++) assert_true(fabsf(d1[i] - d2[i]) <= 1e-9f);
    free(inp), free(w), free(b), free(o1), free(o2), free(m1), free(r1), free(m2), free(r2);
    free(x), free(l1), free(s1), free(l2), free(s2), free(d1), free(d2);
}

int main(void)
{
    shelf_rng_seed(&g_rng, 20240611);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding),          cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_linear_vs_ref),      cmocka_unit_test(test_linear_fd),
        cmocka_unit_test(test_gelu),               cmocka_unit_test(test_residual),
        cmocka_unit_test(test_dropout),            cmocka_unit_test(test_softmax_ce_hand),
        cmocka_unit_test(test_softmax_ce_fd),      cmocka_unit_test(test_sampled_softmax_hand),
        cmocka_unit_test(test_sampled_equals_full), cmocka_unit_test(test_sampled_softmax_fd),
        cmocka_unit_test(test_bce_hand),           cmocka_unit_test(test_bce_fd),
        cmocka_unit_test(test_parallel_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
