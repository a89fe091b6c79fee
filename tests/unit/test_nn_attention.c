/* test_nn_attention.c: causal multi-head self-attention: fast path against
 * the naive reference (forward and backward), backward against central finite
 * differences, causality, key padding, and the incremental (KV-cache) forward
 * against the full forward. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/attention.h"
#include "shelf/core.h"

static float *randv(shelf_rng *r, size_t n, float sd)
{
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * shelf_rng_normal(r));
    return x;
}

static float *zerov(size_t n)
{
    float *x = calloc(n, sizeof(float));
    assert_non_null(x);
    return x;
}

/* max |a-b| / max(1, |b|) over n: the "1e-4 relative" measure (relative to
 * the value, absolute for values below 1). */
static double max_rel(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (d > m) m = d;
    }
    return m;
}

/* Fast vs naive, forward and backward, on several shapes, with and without
 * padding. Tolerance 1e-4 relative: the two sum in different orders in
 * float32. */
static void check_fast_vs_ref(int B, int T, int C, int NH, const int *pad, uint64_t seed)
{
    shelf_rng r;
    shelf_rng_seed(&r, seed);
    const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = randv(&r, nqkv, 1.0f), *dout = randv(&r, nout, 1.0f);
    float *out1 = zerov(nout), *out2 = zerov(nout), *att1 = zerov(natt), *att2 = zerov(natt);
    float *d1 = zerov(nqkv), *d2 = zerov(nqkv), *scratch = zerov(natt);
    /* garbage in outputs must not leak through */
    for (size_t i = 0; i < natt; i++) att1[i] = att2[i] = 7.0f;
    shelf_attention_forward(out1, att1, qkv, pad, B, T, C, NH);
    shelf_attention_forward_ref(out2, att2, qkv, pad, B, T, C, NH);
    assert_true(max_rel(out1, out2, nout) < 1e-4);
    assert_true(max_rel(att1, att2, natt) < 1e-4);
    shelf_attention_backward(d1, scratch, dout, qkv, att1, pad, B, T, C, NH);
    shelf_attention_backward_ref(d2, dout, qkv, att2, pad, B, T, C, NH);
    assert_true(max_rel(d1, d2, nqkv) < 1e-4);
    /* backward accumulates: a second call doubles */
    shelf_attention_backward(d1, scratch, dout, qkv, att1, pad, B, T, C, NH);
    for (size_t i = 0; i < nqkv; i++) d2[i] *= 2.0f;
    assert_true(max_rel(d1, d2, nqkv) < 1e-4);
    free(qkv), free(dout), free(out1), free(out2), free(att1), free(att2), free(d1), free(d2), free(scratch);
}

static void test_fast_vs_ref(void **state)
{
    (void)state;
    check_fast_vs_ref(2, 5, 8, 2, NULL, 1);
    int pad2[2] = {2, 0};
    check_fast_vs_ref(2, 5, 8, 2, pad2, 2);
    int pad3[3] = {0, 7, 50}; /* whole sequence padded in the last one */
    check_fast_vs_ref(3, 50, 64, 4, pad3, 3);
    int pad4[4] = {10, 0, 3, 31};
    check_fast_vs_ref(4, 32, 48, 1, pad4, 4);
}

/* loss = sum(out * w), in double */
static double loss_of(const float *qkv, const float *w, float *out, float *att, const int *pad, int B, int T,
                      int C, int NH)
{
    shelf_attention_forward_ref(out, att, qkv, pad, B, T, C, NH);
    double L = 0.0;
    for (size_t i = 0; i < (size_t)B * T * C; i++) L += (double)out[i] * w[i];
    return L;
}

/* Central differences with step h = 1e-2 on loss = sum(out*w), |w|~1, on
 * B=2, T=5, C=8, NH=2 (the first sequence left-padded by 1). The loss sums
 * 80 float32 outputs of size ~1 (accumulated in double): its rounding error
 * is ~1e-6, divided by 2h gives ~5e-5; the truncation error h^2/6 f''' is
 * ~1e-5 for these O(1) inputs. Tolerance: |analytic - numeric| <= 2e-4 +
 * 1e-3 |numeric|, checked for both the fast and the naive backward, over
 * every element of qkv (measured worst: ~2e-5). */
static void test_backward_fd(void **state)
{
    (void)state;
    const int B = 2, T = 5, C = 8, NH = 2;
    const int pad[2] = {1, 0};
    shelf_rng r;
    shelf_rng_seed(&r, 42);
    const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = randv(&r, nqkv, 1.0f), *w = randv(&r, nout, 1.0f);
    float *out = zerov(nout), *att = zerov(natt), *scratch = zerov(natt);
    float *dfast = zerov(nqkv), *dref = zerov(nqkv);
    shelf_attention_forward(out, att, qkv, pad, B, T, C, NH);
    shelf_attention_backward(dfast, scratch, w, qkv, att, pad, B, T, C, NH);
    shelf_attention_backward_ref(dref, w, qkv, att, pad, B, T, C, NH);
    const float h = 1e-2f;
    double worst = 0.0;
    for (size_t i = 0; i < nqkv; i++) {
        const float x0 = qkv[i];
        qkv[i] = x0 + h;
        double lp = loss_of(qkv, w, out, att, pad, B, T, C, NH);
        qkv[i] = x0 - h;
        double lm = loss_of(qkv, w, out, att, pad, B, T, C, NH);
        qkv[i] = x0;
        double num = (lp - lm) / (2.0 * (double)h);
        double tol = 2e-4 + 1e-3 * fabs(num);
        double e1 = fabs(dfast[i] - num), e2 = fabs(dref[i] - num);
        if (e1 > worst) worst = e1;
        if (e1 > tol || e2 > tol) print_error("qkv[%zu]: fast %g ref %g numeric %g\n", i, dfast[i], dref[i], num);
        assert_true(e1 <= tol);
        assert_true(e2 <= tol);
    }
    print_message("attention backward vs finite differences: max abs error %.3g\n", worst);
    /* padded position 0 of sequence 0 passes no gradient at all */
    for (int j = 0; j < 3 * C; j++) assert_true(dfast[j] == 0.0f && dref[j] == 0.0f);
    free(qkv), free(w), free(out), free(att), free(scratch), free(dfast), free(dref);
}

/* Changing position t0's input (q, k and v) leaves every output and att row
 * before t0 bit-for-bit unchanged (exact: masked weights are exact zeros). */
static void test_causality(void **state)
{
    (void)state;
    const int B = 2, T = 9, C = 16, NH = 4;
    const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    shelf_rng r;
    shelf_rng_seed(&r, 5);
    float *qkv = randv(&r, nqkv, 1.0f);
    float *o1 = zerov(nout), *o2 = zerov(nout), *a1 = zerov(natt), *a2 = zerov(natt);
    for (int fast = 0; fast < 2; fast++) {
        for (int t0 = 0; t0 < T; t0++) {
            float *q2 = malloc(nqkv * sizeof(float));
            assert_non_null(q2);
            memcpy(q2, qkv, nqkv * sizeof(float));
            for (int b = 0; b < B; b++)
                for (int j = 0; j < 3 * C; j++) q2[((size_t)b * T + t0) * 3 * C + j] += 3.0f;
            if (fast) {
                shelf_attention_forward(o1, a1, qkv, NULL, B, T, C, NH);
                shelf_attention_forward(o2, a2, q2, NULL, B, T, C, NH);
            } else {
                shelf_attention_forward_ref(o1, a1, qkv, NULL, B, T, C, NH);
                shelf_attention_forward_ref(o2, a2, q2, NULL, B, T, C, NH);
            }
            for (int b = 0; b < B; b++) {
                for (int t = 0; t < t0; t++) {
                    const size_t o = ((size_t)b * T + t) * C;
                    assert_memory_equal(o1 + o, o2 + o, C * sizeof(float));
                    for (int h = 0; h < NH; h++) {
                        const size_t a = (((size_t)b * NH + h) * T + t) * T;
                        assert_memory_equal(a1 + a, a2 + a, T * sizeof(float));
                        for (int s = t + 1; s < T; s++) assert_true(a1[a + s] == 0.0f);
                    }
                }
                /* position t0 itself does change (the test can fail) */
                const size_t o = ((size_t)b * T + t0) * C;
                assert_true(memcmp(o1 + o, o2 + o, C * sizeof(float)) != 0);
            }
            free(q2);
        }
    }
    free(qkv), free(o1), free(o2), free(a1), free(a2);
}

/* Padded keys get exactly zero weight; the other weights of a row sum to 1;
 * padded query rows and their outputs are zeros; changing the padded
 * positions' inputs changes no output. */
static void test_padding(void **state)
{
    (void)state;
    const int B = 3, T = 8, C = 12, NH = 3;
    const int pad[3] = {3, 0, 8};
    const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    shelf_rng r;
    shelf_rng_seed(&r, 9);
    float *qkv = randv(&r, nqkv, 2.0f);
    float *o1 = zerov(nout), *o2 = zerov(nout), *a1 = zerov(natt), *a2 = zerov(natt);
    for (int fast = 0; fast < 2; fast++) {
        (fast ? shelf_attention_forward : shelf_attention_forward_ref)(o1, a1, qkv, pad, B, T, C, NH);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    const float *a = a1 + (((size_t)b * NH + h) * T + t) * T;
                    double sum = 0.0;
                    for (int s = 0; s < T; s++) {
                        if (s < pad[b] || s > t) assert_true(a[s] == 0.0f);
                        sum += a[s];
                    }
                    if (t < pad[b]) {
                        assert_true(sum == 0.0);
                        for (int j = 0; j < C; j++) assert_true(o1[((size_t)b * T + t) * C + j] == 0.0f);
                    } else {
                        assert_true(fabs(sum - 1.0) < 1e-5);
                    }
                }
        float *q2 = malloc(nqkv * sizeof(float));
        assert_non_null(q2);
        memcpy(q2, qkv, nqkv * sizeof(float));
        for (int b = 0; b < B; b++)
            for (int t = 0; t < pad[b]; t++)
                for (int j = 0; j < 3 * C; j++) q2[((size_t)b * T + t) * 3 * C + j] = 100.0f;
        (fast ? shelf_attention_forward : shelf_attention_forward_ref)(o2, a2, q2, pad, B, T, C, NH);
        assert_memory_equal(o1, o2, nout * sizeof(float));
        free(q2);
    }
    free(qkv), free(o1), free(o2), free(a1), free(a2);
}

/* Feeding positions one at a time through the KV cache reproduces every row
 * of the full forward within 1e-5 (absolute, outputs of size ~1), padded or
 * not; the cache holds exactly the k and v of each position. */
static void test_incremental(void **state)
{
    (void)state;
    const int B = 2, T = 20, C = 32, NH = 4, HS = C / NH;
    const int pad[2] = {0, 6};
    const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    shelf_rng r;
    shelf_rng_seed(&r, 77);
    float *qkv = randv(&r, nqkv, 1.5f);
    float *out = zerov(nout), *att = zerov(natt), *step = zerov(C);
    float *kc = zerov((size_t)NH * T * HS), *vc = zerov((size_t)NH * T * HS);
    shelf_attention_forward(out, att, qkv, pad, B, T, C, NH);
    double worst = 0.0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *x = qkv + ((size_t)b * T + t) * 3 * C;
            shelf_attention_step_forward(step, kc, vc, x, t, pad[b], T, C, NH);
            for (int j = 0; j < C; j++) {
                double d = fabs((double)step[j] - out[((size_t)b * T + t) * C + j]);
                if (d > worst) worst = d;
            }
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < HS; i++) {
                    assert_true(kc[((size_t)h * T + t) * HS + i] == x[C + h * HS + i]);
                    assert_true(vc[((size_t)h * T + t) * HS + i] == x[2 * C + h * HS + i]);
                }
        }
    }
    print_message("incremental vs full forward: max abs difference %.3g\n", worst);
    assert_true(worst < 1e-5);
    free(qkv), free(out), free(att), free(step), free(kc), free(vc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_vs_ref), cmocka_unit_test(test_backward_fd),
        cmocka_unit_test(test_causality),   cmocka_unit_test(test_padding),
        cmocka_unit_test(test_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
