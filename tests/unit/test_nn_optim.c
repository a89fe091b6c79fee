/* test_nn_optim.c: the parameter store (contiguous, non-overlapping views),
 * AdamW against hand-computed steps, the no-decay flag, global gradient-norm
 * clipping and the learning-rate schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shelf/core.h"
#include "nn/optim.h"

static void test_views(void **state)
{
    (void)state;
    shelf_params *p = shelf_params_new();
    assert_non_null(p);
    const int64_t s1[2] = {7, 3}, s2[1] = {1}, s3[3] = {4, 5, 6}, s4[1] = {16}, s5[2] = {100, 33};
    const int64_t *shapes[5] = {s1, s2, s3, s4, s5};
    const int ndims[5] = {2, 1, 3, 1, 2};
    const char *names[5] = {"a.w", "a.b", "emb", "ln.g", "out.w"};
    for (size_t i = 0; i < 5; i++) {
        size_t idx = 99;
        assert_int_equal(shelf_params_add(p, names[i], ndims[i], shapes[i], i == 1 ? SHELF_PARAM_NO_DECAY : 0, &idx,
                                          NULL),
                         0);
        assert_int_equal(idx, i);
    }
    shelf_err err = {0};
    const int64_t bad[2] = {3, 0};
    assert_int_equal(shelf_params_add(p, "a.w", 1, s2, 0, NULL, &err), SHELF_EINVAL); /* duplicate */
    assert_int_equal(shelf_params_add(p, "z", 2, bad, 0, NULL, &err), SHELF_EINVAL);
    assert_int_equal(shelf_params_add(p, "z", 0, s2, 0, NULL, &err), SHELF_EINVAL);
    assert_int_equal(shelf_params_alloc(p, &err), 0);
    assert_int_equal(shelf_params_alloc(p, &err), SHELF_EINVAL);
    assert_int_equal(shelf_params_add(p, "late", 1, s2, 0, NULL, &err), SHELF_EINVAL);
    assert_int_equal(p->n_tensors, 5);
    assert_int_equal(p->info[2].numel, 120);
    assert_int_equal(shelf_params_find(p, "emb"), 2);
    assert_int_equal(shelf_params_find(p, "nope"), -1);
    /* increasing, aligned, non-overlapping offsets inside the buffer */
    for (size_t i = 0; i < 5; i++) {
        const shelf_param_info *r = &p->info[i];
        assert_int_equal(r->offset % 16, 0);
        if (i + 1 < 5) assert_true(r->offset + r->numel <= p->info[i + 1].offset);
        if (i + 1 < 5) assert_true(p->info[i + 1].offset - (r->offset + r->numel) < 16); /* gap only for alignment */
        assert_true(r->offset + r->numel <= p->n_floats);
    }
    assert_int_equal(p->info[0].offset, 0);
    /* the four buffers: one contiguous region each, 64-byte aligned */
    assert_true(p->grads == p->params + p->n_floats);
    assert_true(p->m == p->grads + p->n_floats);
    assert_true(p->v == p->m + p->n_floats);
    assert_int_equal((uintptr_t)p->params % 64, 0);
    for (size_t j = 0; j < p->n_floats; j++)
        assert_true(p->params[j] == 0.0f && p->grads[j] == 0.0f && p->m[j] == 0.0f && p->v[j] == 0.0f);
    /* each view written with its own index: none overwrites another */
    for (size_t i = 0; i < 5; i++) {
        float *w = shelf_params_data(p, i), *g = shelf_params_grad(p, i);
        assert_true(w == p->params + p->info[i].offset);
        assert_true(g == p->grads + p->info[i].offset);
        for (size_t j = 0; j < p->info[i].numel; j++) w[j] = (float)(i + 1), g[j] = -(float)(i + 1);
    }
    size_t covered = 0;
    for (size_t i = 0; i < 5; i++) {
        const float *w = shelf_params_data(p, i), *g = shelf_params_grad(p, i);
        for (size_t j = 0; j < p->info[i].numel; j++) {
            assert_true(w[j] == (float)(i + 1));
            assert_true(g[j] == -(float)(i + 1));
        }
        covered += p->info[i].numel;
    }
    size_t nonzero = 0;
    for (size_t j = 0; j < p->n_floats; j++) nonzero += p->params[j] != 0.0f;
    assert_int_equal(nonzero, covered); /* gaps untouched */
    shelf_params_zero_grad(p);
    for (size_t j = 0; j < p->n_floats; j++) assert_true(p->grads[j] == 0.0f);
    shelf_params_free(p);
    shelf_params_free(NULL);
}

/* AdamW on a 3-element tensor, against steps computed by hand. Step 1: with
 * m, v = 0, mhat = g and vhat = g^2 exactly, so the Adam part is g/(|g|+eps)
 * ~ sign(g) and w1 = w0 - lr*sign(g) - lr*wd*w0:
 *   w0 = (1, -2, 0.5), g = (0.1, -0.2, 0.3), lr = 0.01, wd = 0.1:
 *   decayed: (0.989, -1.988, 0.4895); no decay: (0.99, -1.99, 0.49).
 * Step 2 (g = (0.2, 0.1, -0.3)) is computed here in double from the
 * formulas: m = 0.9*0.1*g1 + 0.1*g2, v = 0.999*0.001*g1^2 + 0.001*g2^2,
 * bias corrections 1-0.9^2 = 0.19 and 1-0.999^2 = 0.001999.
 * Tolerance 1e-6 absolute (float32 values of size ~1; eps contributes ~1e-9). */
static void test_adamw(void **state)
{
    (void)state;
    shelf_params *p = shelf_params_new();
    assert_non_null(p);
    const int64_t s3[1] = {3};
    size_t id, inod;
    assert_int_equal(shelf_params_add(p, "w", 1, s3, 0, &id, NULL), 0);
    assert_int_equal(shelf_params_add(p, "bias", 1, s3, SHELF_PARAM_NO_DECAY, &inod, NULL), 0);
    assert_int_equal(shelf_params_alloc(p, NULL), 0);
    const double w0[3] = {1.0, -2.0, 0.5}, g1[3] = {0.1, -0.2, 0.3}, g2[3] = {0.2, 0.1, -0.3};
    float *w = shelf_params_data(p, id), *wn = shelf_params_data(p, inod);
    float *g = shelf_params_grad(p, id), *gn = shelf_params_grad(p, inod);
    for (int i = 0; i < 3; i++) w[i] = wn[i] = (float)w0[i], g[i] = gn[i] = (float)g1[i];
    const shelf_adamw cfg = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};
    const double lr = 0.01, wd = 0.1;
    shelf_adamw_step(p, &cfg, (float)lr, 1);
    const double want1[3] = {0.989, -1.988, 0.4895}, want1n[3] = {0.99, -1.99, 0.49};
    for (int i = 0; i < 3; i++) {
        assert_true(fabs(w[i] - want1[i]) < 1e-6);
        assert_true(fabs(wn[i] - want1n[i]) < 1e-6);
        /* 1e-4 relative: 1 - 0.999f is 0.0010000467 in float32 */
        assert_true(fabs(p->m[p->info[id].offset + i] - 0.1 * g1[i]) < 1e-4 * 0.1 * fabs(g1[i]));
        assert_true(fabs(p->v[p->info[id].offset + i] - 0.001 * g1[i] * g1[i]) < 1e-4 * 0.001 * g1[i] * g1[i]);
    }
    for (int i = 0; i < 3; i++) g[i] = gn[i] = (float)g2[i];
    shelf_adamw_step(p, &cfg, (float)lr, 2);
    for (int i = 0; i < 3; i++) {
        const double m = 0.9 * 0.1 * g1[i] + 0.1 * g2[i];
        const double v = 0.999 * 0.001 * g1[i] * g1[i] + 0.001 * g2[i] * g2[i];
        const double adam = (m / 0.19) / (sqrt(v / 0.001999) + 1e-8);
        const double want = want1[i] - lr * (adam + wd * want1[i]);
        const double wantn = want1n[i] - lr * adam;
        assert_true(fabs(w[i] - want) < 1e-6);
        assert_true(fabs(wn[i] - wantn) < 1e-6);
    }
    /* weight decay alone (zero gradient, zero moments): w *= 1 - lr*wd exactly as decoupled decay */
    memset(p->m, 0, p->n_floats * sizeof(float));
    memset(p->v, 0, p->n_floats * sizeof(float));
    shelf_params_zero_grad(p);
    for (int i = 0; i < 3; i++) w[i] = wn[i] = (float)w0[i];
    shelf_adamw_step(p, &cfg, (float)lr, 1);
    for (int i = 0; i < 3; i++) {
        assert_true(fabs(w[i] - w0[i] * (1.0 - lr * wd)) < 1e-7);
        assert_true(wn[i] == (float)w0[i]);
    }
    /* the flag can be changed after building */
    shelf_params_set_flags(p, id, SHELF_PARAM_NO_DECAY);
    for (int i = 0; i < 3; i++) w[i] = (float)w0[i];
    shelf_adamw_step(p, &cfg, (float)lr, 1);
    for (int i = 0; i < 3; i++) assert_true(w[i] == (float)w0[i]);
    shelf_params_free(p);
}

/* AdamW is elementwise: the multithreaded path on a large store equals a
 * serial loop of the same formula bit for bit. */
static void test_adamw_large(void **state)
{
    (void)state;
    shelf_params *p = shelf_params_new();
    const int64_t a[2] = {300, 200}, b[1] = {77}, c[2] = {64, 513};
    assert_int_equal(shelf_params_add(p, "a", 2, a, 0, NULL, NULL), 0);
    assert_int_equal(shelf_params_add(p, "b", 1, b, SHELF_PARAM_NO_DECAY, NULL, NULL), 0);
    assert_int_equal(shelf_params_add(p, "c", 2, c, 0, NULL, NULL), 0);
    assert_int_equal(shelf_params_alloc(p, NULL), 0);
    shelf_rng r;
    shelf_rng_seed(&r, 3);
    const size_t n = p->n_floats;
    float *w = malloc(n * sizeof(float)), *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
    assert_non_null(w);
    assert_non_null(m);
    assert_non_null(v);
    const shelf_adamw cfg = {.beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-8f, .weight_decay = 0.05f};
    for (size_t ti = 0; ti < p->n_tensors; ti++)
        for (size_t j = 0; j < p->info[ti].numel; j++) p->params[p->info[ti].offset + j] = (float)shelf_rng_normal(&r);
    memcpy(w, p->params, n * sizeof(float));
    for (int64_t step = 1; step <= 3; step++) {
        for (size_t ti = 0; ti < p->n_tensors; ti++)
            for (size_t j = 0; j < p->info[ti].numel; j++)
                p->grads[p->info[ti].offset + j] = (float)shelf_rng_normal(&r);
        const float c1 = (float)(1.0 - pow(0.9f, (double)step)), c2 = (float)(1.0 - pow(0.98f, (double)step));
        for (size_t ti = 0; ti < p->n_tensors; ti++) {
            const float decay = (p->info[ti].flags & SHELF_PARAM_NO_DECAY) ? 0.0f : cfg.weight_decay;
            for (size_t j = 0; j < p->info[ti].numel; j++) {
                const size_t k = p->info[ti].offset + j;
                const float gi = p->grads[k];
                m[k] = cfg.beta1 * m[k] + (1.0f - cfg.beta1) * gi;
                v[k] = cfg.beta2 * v[k] + (1.0f - cfg.beta2) * gi * gi;
                w[k] -= 0.003f * ((m[k] / c1) / (sqrtf(v[k] / c2) + cfg.eps) + decay * w[k]);
            }
        }
        shelf_adamw_step(p, &cfg, 0.003f, step);
        for (size_t k = 0; k < n; k++) assert_true(fabsf(p->params[k] - w[k]) <= 1e-6f * fmaxf(1.0f, fabsf(w[k])));
    }
    free(w), free(m), free(v);
    shelf_params_free(p);
}

static double grad_norm(const shelf_params *p)
{
    double s = 0.0;
    for (size_t j = 0; j < p->n_floats; j++) s += (double)p->grads[j] * p->grads[j];
    return sqrt(s);
}

/* Clipping returns the norm before clipping and scales to exactly max_norm
 * (within float rounding: 1e-6 relative); below the threshold, nothing
 * changes. */
static void test_clip(void **state)
{
    (void)state;
    shelf_params *p = shelf_params_new();
    const int64_t s2[1] = {2}, s1[1] = {1};
    size_t i0, i1;
    assert_int_equal(shelf_params_add(p, "x", 1, s2, 0, &i0, NULL), 0);
    assert_int_equal(shelf_params_add(p, "y", 1, s1, 0, &i1, NULL), 0);
    assert_int_equal(shelf_params_alloc(p, NULL), 0);
    float *gx = shelf_params_grad(p, i0), *gy = shelf_params_grad(p, i1);
    gx[0] = 3, gx[1] = 4, gy[0] = 12; /* norm 13 */
    assert_true(shelf_params_clip_grad_norm(p, 20.0) == 13.0);
    assert_true(gx[0] == 3 && gx[1] == 4 && gy[0] == 12);
    assert_true(shelf_params_clip_grad_norm(p, 0.0) == 13.0); /* measure only */
    assert_true(shelf_params_clip_grad_norm(p, 6.5) == 13.0);
    assert_true(gx[0] == 1.5f && gx[1] == 2.0f && gy[0] == 6.0f);
    assert_true(fabs(grad_norm(p) - 6.5) < 1e-12);
    shelf_params_free(p);

    /* a large store: the multithreaded path */
    p = shelf_params_new();
    const int64_t big[2] = {513, 129};
    assert_int_equal(shelf_params_add(p, "big", 2, big, 0, NULL, NULL), 0);
    assert_int_equal(shelf_params_add(p, "small", 1, s2, 0, NULL, NULL), 0);
    assert_int_equal(shelf_params_alloc(p, NULL), 0);
    shelf_rng r;
    shelf_rng_seed(&r, 11);
    for (size_t j = 0; j < p->info[0].numel; j++) p->grads[j] = (float)shelf_rng_normal(&r);
    const double before = grad_norm(p);
    const double got = shelf_params_clip_grad_norm(p, 1.0);
    assert_true(fabs(got - before) < 1e-9 * before);
    assert_true(fabs(grad_norm(p) - 1.0) < 1e-6);
    /* a non-finite gradient: norm reported, nothing scaled */
    p->grads[p->info[1].offset] = INFINITY;
    const float g5 = p->grads[5];
    assert_true(isinf(shelf_params_clip_grad_norm(p, 1.0)));
    assert_true(p->grads[5] == g5);
    shelf_params_free(p);
}

/* Schedule values at warm-up start and end, mid-decay and the end. */
static void test_schedule(void **state)
{
    (void)state;
    shelf_lr_schedule s = {.lr_max = 1e-3f, .lr_min = 1e-5f, .warmup = 10, .total = 110, .decay = SHELF_LR_COSINE};
    assert_true(fabsf(shelf_lr_at(&s, 0) - 1e-4f) < 1e-10f);   /* (0+1)/10 of the peak */
    assert_true(fabsf(shelf_lr_at(&s, 4) - 5e-4f) < 1e-10f);
    assert_true(fabsf(shelf_lr_at(&s, 9) - 1e-3f) < 1e-10f);   /* warm-up ends at the peak */
    assert_true(fabsf(shelf_lr_at(&s, 10) - 1e-3f) < 1e-10f);  /* decay starts at the peak */
    assert_true(fabsf(shelf_lr_at(&s, 60) - 5.05e-4f) < 1e-9f); /* half-way: mean of peak and floor */
    const float last = shelf_lr_at(&s, 109);
    assert_true(last > 1e-5f && last < 1.1e-5f);
    assert_true(shelf_lr_at(&s, 110) == 1e-5f); /* the floor */
    assert_true(shelf_lr_at(&s, 100000) == 1e-5f);
    for (int64_t t = 10; t < 110; t++) assert_true(shelf_lr_at(&s, t + 1) <= shelf_lr_at(&s, t));
    s.decay = SHELF_LR_LINEAR;
    assert_true(fabsf(shelf_lr_at(&s, 0) - 1e-4f) < 1e-10f);
    assert_true(fabsf(shelf_lr_at(&s, 10) - 1e-3f) < 1e-10f);
    assert_true(fabsf(shelf_lr_at(&s, 35) - (1e-3f - 0.25f * (1e-3f - 1e-5f))) < 1e-9f);
    assert_true(fabsf(shelf_lr_at(&s, 60) - 5.05e-4f) < 1e-9f);
    assert_true(shelf_lr_at(&s, 110) == 1e-5f);
    s.decay = SHELF_LR_CONSTANT;
    assert_true(shelf_lr_at(&s, 500) == 1e-3f);
    s.warmup = 0;
    s.decay = SHELF_LR_COSINE;
    assert_true(shelf_lr_at(&s, 0) == 1e-3f); /* no warm-up */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views), cmocka_unit_test(test_adamw),    cmocka_unit_test(test_adamw_large),
        cmocka_unit_test(test_clip),  cmocka_unit_test(test_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
