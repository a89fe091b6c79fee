/* test_nn_levels.c: every instruction-set level of the nn kernels (cpu.h)
 * that this machine runs, held to the plain-C generic level (the naive twin)
 * and to the _ref loops: the cross-entropy head (F32 and BF16), the softmax
 * CE loss, LayerNorm, GELU, attention and AdamW; and the level choice itself
 * (SHELF_CPU parsing, clamping, the JSON description).
 *
 * Tolerances, as |fast - reference| <= tol * max(1, max |reference|) per
 * output, with why:
 *  - head F32 1e-5, loss 1e-5 relative: same sums in the same order at every
 *    level except the exp (FMA or not, ~2 ulp) and lane-wise partial sums
 *    of the block exps (~sqrt(256) ulp of the block sum);
 *  - head BF16 vs F32 3e-2 (8-bit mantissas, see test_nn_cehead.c);
 *  - softmax CE 1e-5 relative (lane sums of exps);
 *  - LayerNorm 1e-5 (lane sums of C values, FMA in the variance);
 *  - GELU 2e-6 (1 + |ref|) (the exp's ulps inside tanh);
 *  - attention 1e-5 (the row softmax's exp and lane sums);
 *  - AdamW: bit for bit (no FMA, correctly rounded / and sqrt at every
 *    level). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/attention.h"
#include "shelf/cpu.h"
#include "nn/nn.h"
#include "nn/optim.h"

#include "nn_test_util.h"

/* max |a - b| / max(1, max |b|) */
static double rel_err(const float *a, const float *b, size_t n)
{
    double e = 0.0, m = 1.0;
    for (size_t i = 0; i < n; i++) {
        assert_true(isfinite(a[i]));
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return e / m;
}

static float *fdup(const float *x, size_t n)
{
    float *p = fnew(n);
    memcpy(p, x, n * sizeof *p);
    return p;
}

/* each level this CPU runs, lowest first; restores the level on exit */
#define FOR_LEVELS(l)                                                                                             \
    for (shelf_cpu_level l = SHELF_CPU_GENERIC; l <= shelf_cpu_detected(); l = (shelf_cpu_level)(l + 1))

static shelf_cpu_level g_saved;

static int setup(void **state)
{
    (void)state;
    g_saved = shelf_cpu_level_get();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    shelf_cpu_force(g_saved);
    return 0;
}

/* ---- the head --------------------------------------------------------------- */

typedef struct {
    float L, *losses, *dh, *dw;
} head_out;

static head_out head_run(const float *h, const float *w, const uint32_t *tgt, size_t N, size_t V, size_t C,
                         shelf_nn_precision prec)
{
    head_out o = {0, fnew(N), fnew(N * C), fnew(V * C)};
    shelf_nn_cehead_ws *ws = shelf_nn_cehead_ws_new(N, V, C);
    assert_non_null(ws);
    o.L = shelf_nn_cehead(o.losses, o.dh, o.dw, h, w, tgt, 1.0f, N, V, C, prec, ws);
    shelf_nn_cehead_ws_free(ws);
    return o;
}

static void head_free(head_out *o)
{
    free(o->losses), free(o->dh), free(o->dw);
}

static void test_cehead_levels(void **state)
{
    (void)state;
    /* odd shapes: partial row chunk, partial item block, C not a multiple of 8 or 16 */
    static const size_t shapes[][3] = {{75, 1000, 64}, {130, 777, 50}, {9, 300, 13}, {64, 257, 8}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        size_t N = shapes[si][0], V = shapes[si][1], C = shapes[si][2];
        float *h = fnew(N * C), *w = fnew(V * C);
        uint32_t *tgt = calloc(N, sizeof *tgt);
        assert_non_null(tgt);
        fill_normal(h, N * C, 2.0f);
        fill_normal(w, V * C, 1.0f / sqrtf((float)C));
        for (size_t n = 0; n < N; n++) tgt[n] = shelf_rng_below(&g_rng, (uint32_t)V);
        /* the naive loop, then the generic level */
        head_out ref = {0, fnew(N), fnew(N * C), fnew(V * C)};
        ref.L = shelf_nn_cehead_ref(ref.losses, ref.dh, ref.dw, h, w, tgt, 1.0f, N, V, C);
        shelf_cpu_force(SHELF_CPU_GENERIC);
        head_out gen = head_run(h, w, tgt, N, V, C, SHELF_NN_F32);
        assert_true(fabs(gen.L - ref.L) <= 1e-5 * fabs(ref.L));
        assert_true(rel_err(gen.dh, ref.dh, N * C) <= 1e-4 && rel_err(gen.dw, ref.dw, V * C) <= 1e-4);
        FOR_LEVELS(l)
        {
            shelf_cpu_force(l);
            for (int prec = 0; prec < 2; prec++) {
                head_out o = head_run(h, w, tgt, N, V, C, (shelf_nn_precision)prec);
                int bf = prec == SHELF_NN_BF16 && l == SHELF_CPU_AVX512_BF16;
                double tol = bf ? 3e-2 : 1e-5;
                double el = fabs(o.L - gen.L) / fabs(gen.L), edh = rel_err(o.dh, gen.dh, N * C),
                       edw = rel_err(o.dw, gen.dw, V * C), elr = rel_err(o.losses, gen.losses, N);
                fprintf(stderr, "head %s %s N%zu V%zu C%zu vs generic: loss %.2g losses %.2g dh %.2g dw %.2g\n",
                        shelf_cpu_level_name(l), prec ? "bf16" : "f32", N, V, C, el, elr, edh, edw);
                assert_true(el <= tol && elr <= tol * 10 && edh <= tol && edw <= tol);
                head_free(&o);
            }
        }
        head_free(&ref), head_free(&gen);
        free(h), free(w), free(tgt);
    }
}

/* ---- losses, LayerNorm, GELU ----------------------------------------------- */

static void test_softmax_ce_levels(void **state)
{
    (void)state;
    enum { N = 7, V = 1003 };
    float *x = fnew(N * V), *lg = fnew(N), *lsg = fnew(N), *dg = fnew(N * V);
    uint32_t t[N];
    fill_normal(x, N * V, 3.0f);
    for (int n = 0; n < N; n++) t[n] = n == 3 ? SHELF_NN_PAD : shelf_rng_below(&g_rng, V);
    shelf_cpu_force(SHELF_CPU_GENERIC);
    float Lg = shelf_nn_softmax_ce_forward(lg, lsg, x, t, N, V);
    shelf_nn_softmax_ce_backward(dg, x, lsg, t, 1.0f, N, V);
    FOR_LEVELS(l)
    {
        shelf_cpu_force(l);
        float *lo = fnew(N), *ls = fnew(N), *d = fnew(N * V);
        float L = shelf_nn_softmax_ce_forward(lo, ls, x, t, N, V);
        shelf_nn_softmax_ce_backward(d, x, ls, t, 1.0f, N, V);
        double e = fmax(rel_err(lo, lg, N), rel_err(d, dg, N * V));
        fprintf(stderr, "softmax ce %s vs generic: %.2g\n", shelf_cpu_level_name(l), e);
        assert_true(fabs(L - Lg) <= 1e-5 * fabs(Lg) && e <= 1e-5);
        free(lo), free(ls), free(d);
    }
    free(x), free(lg), free(lsg), free(dg);
}

static void test_layernorm_levels(void **state)
{
    (void)state;
    static const size_t Cs[] = {64, 50, 7, 130};
    for (size_t ci = 0; ci < 4; ci++) {
        size_t N = 33, C = Cs[ci];
        float *x = fnew(N * C), *wt = fnew(C), *b = fnew(C), *dout = fnew(N * C);
        fill_normal(x, N * C, 2.0f), fill_normal(wt, C, 1.0f), fill_normal(b, C, 1.0f), fill_normal(dout, N * C, 1.0f);
        float *og = fnew(N * C), *mg = fnew(N), *rg = fnew(N), *dig = fnew(N * C), *dwg = fnew(C), *dbg = fnew(C);
        shelf_cpu_force(SHELF_CPU_GENERIC);
        shelf_nn_layernorm_forward(og, mg, rg, x, wt, b, N, C);
        shelf_nn_layernorm_backward(dig, dwg, dbg, dout, x, wt, mg, rg, N, C);
        FOR_LEVELS(l)
        {
            shelf_cpu_force(l);
            float *o = fnew(N * C), *m = fnew(N), *r = fnew(N), *di = fnew(N * C), *dw = fnew(C), *db = fnew(C);
            shelf_nn_layernorm_forward(o, m, r, x, wt, b, N, C);
            shelf_nn_layernorm_backward(di, dw, db, dout, x, wt, m, r, N, C);
            double e = fmax(fmax(rel_err(o, og, N * C), rel_err(m, mg, N)), rel_err(r, rg, N));
            e = fmax(e, fmax(rel_err(di, dig, N * C), fmax(rel_err(dw, dwg, C), rel_err(db, dbg, C))));
            fprintf(stderr, "layernorm %s C%zu vs generic: %.2g\n", shelf_cpu_level_name(l), C, e);
            assert_true(e <= 1e-5);
            free(o), free(m), free(r), free(di), free(dw), free(db);
        }
        free(x), free(wt), free(b), free(dout), free(og), free(mg), free(rg), free(dig), free(dwg), free(dbg);
    }
}

static void test_gelu_levels(void **state)
{
    (void)state;
    enum { M = 40013 }; /* > one chunk, odd tail */
    float *x = fnew(M), *yg = fnew(M), *dg = fnew(M), *dout = fnew(M);
    fill_normal(x, M, 4.0f), fill_normal(dout, M, 1.0f);
    shelf_cpu_force(SHELF_CPU_GENERIC);
    shelf_nn_gelu_forward(yg, x, M);
    shelf_nn_gelu_backward(dg, x, dout, M);
    FOR_LEVELS(l)
    {
        shelf_cpu_force(l);
        float *y = fnew(M), *d = fnew(M);
        shelf_nn_gelu_forward(y, x, M);
        shelf_nn_gelu_backward(d, x, dout, M);
        double e = 0.0;
        for (size_t i = 0; i < M; i++) {
            e = fmax(e, fabs(y[i] - yg[i]) / (1.0 + fabs(yg[i])));
            e = fmax(e, fabs(d[i] - dg[i]) / (1.0 + fabs(dg[i])));
        }
        fprintf(stderr, "gelu %s vs generic: %.2g\n", shelf_cpu_level_name(l), e);
        assert_true(e <= 2e-6);
        free(y), free(d);
    }
    free(x), free(yg), free(dg), free(dout);
}

/* ---- attention --------------------------------------------------------------- */

static void test_attention_levels(void **state)
{
    (void)state;
    enum { B = 3, T = 21, C = 32, NH = 2 };
    int pad[B] = {0, 5, 20};
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *qkv = fnew(nq), *dout = fnew(no);
    fill_normal(qkv, nq, 1.0f), fill_normal(dout, no, 1.0f);
    float *oref = fnew(no), *aref = fnew(na), *dref = fnew(nq);
    shelf_attention_forward_ref(oref, aref, qkv, pad, B, T, C, NH);
    shelf_attention_backward_ref(dref, dout, qkv, aref, pad, B, T, C, NH);
    FOR_LEVELS(l)
    {
        shelf_cpu_force(l);
        float *o = fnew(no), *a = fnew(na), *d = fnew(nq), *scratch = fnew(na);
        shelf_attention_forward(o, a, qkv, pad, B, T, C, NH);
        shelf_attention_backward(d, scratch, dout, qkv, a, pad, B, T, C, NH);
        double e = fmax(fmax(rel_err(o, oref, no), rel_err(a, aref, na)), rel_err(d, dref, nq));
        fprintf(stderr, "attention %s vs ref: %.2g\n", shelf_cpu_level_name(l), e);
        assert_true(e <= 1e-5);
        free(o), free(a), free(d), free(scratch);
    }
    free(qkv), free(dout), free(oref), free(aref), free(dref);
}

/* ---- AdamW: the same bits at every level -------------------------------------- */

static shelf_params *adam_params(void)
{
    shelf_params *p = shelf_params_new();
    assert_non_null(p);
    int64_t s1[] = {1001}, s2[] = {37, 5};
    assert_int_equal(shelf_params_add(p, "a", 1, s1, 0, NULL, NULL), 0);
    assert_int_equal(shelf_params_add(p, "b", 2, s2, SHELF_PARAM_NO_DECAY, NULL, NULL), 0);
    assert_int_equal(shelf_params_alloc(p, NULL), 0);
    return p;
}

static void test_adamw_levels(void **state)
{
    (void)state;
    shelf_adamw cfg = {0.9f, 0.999f, 1e-8f, 0.01f};
    shelf_params *g = adam_params();
    fill_normal(g->params, g->n_floats, 1.0f);
    float *p0 = fdup(g->params, g->n_floats);
    float *grads = fnew(3 * g->n_floats);
    fill_normal(grads, 3 * g->n_floats, 0.1f);
    shelf_cpu_force(SHELF_CPU_GENERIC);
    for (int s = 1; s <= 3; s++) {
        memcpy(g->grads, grads + (s - 1) * g->n_floats, g->n_floats * sizeof(float));
        shelf_adamw_step(g, &cfg, 1e-3f, s);
    }
    FOR_LEVELS(l)
    {
        shelf_cpu_force(l);
        shelf_params *p = adam_params();
        memcpy(p->params, p0, p->n_floats * sizeof(float));
        for (int s = 1; s <= 3; s++) {
            memcpy(p->grads, grads + (s - 1) * p->n_floats, p->n_floats * sizeof(float));
            shelf_adamw_step(p, &cfg, 1e-3f, s);
        }
        assert_memory_equal(p->params, g->params, p->n_floats * sizeof(float));
        assert_memory_equal(p->m, g->m, p->n_floats * sizeof(float));
        assert_memory_equal(p->v, g->v, p->n_floats * sizeof(float));
        shelf_params_free(p);
    }
    shelf_params_free(g);
    free(p0), free(grads);
}

/* ---- the level choice ------------------------------------------------------------ */

static void test_level_choice(void **state)
{
    (void)state;
    shelf_cpu_level l;
    assert_int_equal(shelf_cpu_level_parse("avx2", &l), 0);
    assert_int_equal(l, SHELF_CPU_AVX2);
    assert_int_equal(shelf_cpu_level_parse("avx512bf16", &l), 0);
    assert_int_equal(l, SHELF_CPU_AVX512_BF16);
    assert_int_equal(shelf_cpu_level_parse("sse9", &l), SHELF_EINVAL);
    assert_int_equal(l, SHELF_CPU_AVX512_BF16); /* untouched */
    assert_string_equal(shelf_cpu_level_name((shelf_cpu_level)9), "?");
    /* never above the CPU */
    assert_int_equal(shelf_cpu_force(SHELF_CPU_AVX512_BF16), shelf_cpu_detected());
    assert_int_equal(shelf_cpu_force(SHELF_CPU_GENERIC), SHELF_CPU_GENERIC);
    assert_int_equal(shelf_cpu_level_get(), SHELF_CPU_GENERIC);
    char buf[1024];
    int n = shelf_cpu_describe_json(buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_non_null(strstr(buf, "\"level\":\"generic\""));
    assert_non_null(strstr(buf, "\"cehead_f32\":\"generic\""));
    assert_non_null(strstr(buf, "\"cpu\":\""));
    assert_true(strlen(shelf_cpu_model()) > 0);
    int family, model;
    shelf_cpu_signature(&family, &model);
    assert_true(family > 0 && model >= 0); /* every x86-64 CPU answers cpuid leaf 1 */
    char want[64];
    snprintf(want, sizeof want, "\"family\":%d,\"model\":%d,", family, model);
    assert_non_null(strstr(buf, want));
    fprintf(stderr, "%s\n", buf);
}

int main(void)
{
    shelf_rng_seed(&g_rng, 20261204);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cehead_levels),    cmocka_unit_test(test_softmax_ce_levels),
        cmocka_unit_test(test_layernorm_levels), cmocka_unit_test(test_gelu_levels),
        cmocka_unit_test(test_attention_levels), cmocka_unit_test(test_adamw_levels),
        cmocka_unit_test(test_level_choice),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
