/* test_transformer_ref.c: the transformer model (src/models/transformer.c)
 * against an independent PyTorch reference built from torch's own layers
 * (nn.Embedding/EmbeddingBag, LayerNorm, MultiheadAttention, Linear, GELU,
 * cross_entropy, AdamW, clip_grad_norm_): tests/ref/make_transformer_fixture.py
 * wrote tests/ref/transformer_fixture.safetensors (committed; no torch needed
 * here). One tiny model (12 items, 3 types, 7 features, 2 layers, 2 heads,
 * width 8, ffn 16, maxlen 5), one batch of 3 rows of 6 events (row 0 left
 * padded by 2), random parameters (std 0.3, LayerNorm off 1/0):
 *   - logits of every real position, the mean loss and every gradient;
 *   - 5 AdamW steps (wd on the 2-D tensors only, global clipping that
 *     triggers in steps 1 and 2 only): each step's loss and gradient norm,
 *     then every parameter.
 * Tolerances. The reference is computed in float64 from the same float32
 * parameters; our model runs in float32 with other summation orders, so
 * relative errors of ~1e-6 are expected:
 *   logits, loss, gradient norms: |d| <= 1e-5 (1 + |ref|);
 *   gradients:                    |d| <= 1e-5 + 1e-4 |ref|;
 *   the 5 step losses:            |d| <= 1e-5 (1 + |ref|);
 *   parameters after 5 steps:     |d| <= 1e-4 (+ 1e-4 |ref|): Adam divides
 *     by sqrt(v), so an element's update (<= lr = 0.01 per step) carries the
 *     gradient's relative error, amplified where the gradient is small.
 * Exception: the key bias (columns C..2C of each qkv.b) has an analytically
 * zero gradient (softmax is invariant to adding q.b_k to all scores of a
 * query), so its gradient is float rounding noise on both sides: the test
 * checks it is ~0 (<= 1e-5) on both, and its Adam update (noise / (|noise| +
 * eps)) is arbitrary: after 5 steps only |d| <= 5 lr is required of it (it
 * has no effect on the output). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shelf/config.h"
#include "shelf/model.h"
#include "nn/nn.h"
#include "nn/optim.h"

#include "test_util.h"

/* (test_util.h's scratch files are not needed here) */
__attribute__((unused)) static void unused_helpers(void)
{
    (void)tmp_init;
    (void)tmp_path;
}

#include "models/transformer_int.h"
#include "nn/safetensors.h"

#ifndef SHELF_REF_DIR
#error "SHELF_REF_DIR (the tests/ref folder) must be defined by CMake"
#endif

#define FIXTURE SHELF_REF_DIR "/transformer_fixture.safetensors"

static shelf__st_file fx;

static const shelf__st_tensor *get(const char *name, shelf_dtype dt, uint64_t numel)
{
    const shelf__st_tensor *t = shelf__st_find(&fx, name);
    if (!t) fprintf(stderr, "fixture: no tensor '%s'\n", name);
    assert_non_null(t);
    if (t->dt != dt || shelf__st_numel(t) != numel)
        fprintf(stderr, "fixture: '%s' has dtype %d and %llu elements, expected %d and %llu\n", name, (int)t->dt,
                (unsigned long long)shelf__st_numel(t), (int)dt, (unsigned long long)numel);
    assert_int_equal(t->dt, dt);
    assert_int_equal(shelf__st_numel(t), numel);
    return t;
}

static int64_t cfg(const char *key)
{
    char name[64];
    snprintf(name, sizeof name, "config.%s", key);
    int64_t v;
    memcpy(&v, get(name, SHELF_DT_I64, 1)->data, sizeof v);
    return v;
}

static float scalar(const char *name)
{
    float v;
    memcpy(&v, get(name, SHELF_DT_F32, 1)->data, sizeof v);
    return v;
}

/* A copy of a float tensor of the fixture (the mapping need not be aligned
 * for floats in general; copies keep it simple). */
static float *floats(const char *name, uint64_t numel)
{
    const shelf__st_tensor *t = get(name, SHELF_DT_F32, numel);
    float *v = malloc(numel * sizeof *v);
    assert_non_null(v);
    memcpy(v, t->data, numel * sizeof *v);
    return v;
}

/* max error bookkeeping of one quantity */
typedef struct err_acc {
    double max_abs, max_ratio; /* ratio: |d| / tolerance, must stay <= 1 */
    char where[96];
    long bad;
} err_acc;

static void acc(err_acc *e, double got, double ref, double atol, double rtol, const char *what, size_t k)
{
    double d = fabs(got - ref), tol = atol + rtol * fabs(ref);
    if (!(d <= tol)) { /* NaN fails too */
        if (e->bad < 10)
            fprintf(stderr, "  MISMATCH %s[%zu]: ours %.8g torch %.8g (|d| %.3g > tol %.3g)\n", what, k, got, ref, d,
                    tol);
        e->bad++;
    }
    if (isnan(d)) d = INFINITY;
    if (d > e->max_abs) e->max_abs = d;
    if (d / tol > e->max_ratio) {
        e->max_ratio = d / tol;
        snprintf(e->where, sizeof e->where, "%s[%zu]", what, k);
    }
}

static void report(const char *q, const err_acc *e)
{
    printf("  %-28s max |d| %.3e  max |d|/tol %.3f  (at %s)%s\n", q, e->max_abs, e->max_ratio, e->where,
           e->bad ? "  FAILED" : "");
}

/* is element k of the parameter tensor named name a key-bias element? */
static int key_bias(const char *name, size_t k, size_t C)
{
    const char *dot = strchr(name, '.');
    return name[0] == 'h' && dot && strcmp(dot, ".qkv.b") == 0 && k >= C && k < 2 * C;
}

static int is_param_name(const char *n)
{
    static const char *const other[] = {"items", "types", "ts", "feat_off", "feat_col", "logits", "loss",
                                        "adamw_losses", "adamw_gnorm", NULL};
    if (!strncmp(n, "config.", 7) || !strncmp(n, "grad.", 5) || !strncmp(n, "after.", 6) || !strncmp(n, "adamw.", 6))
        return 0;
    for (int i = 0; other[i]; i++)
        if (!strcmp(n, other[i])) return 0;
    return 1;
}

static void test_against_torch(void **state)
{
    (void)state;
    shelf_err err = {0};
    int rc = shelf__st_open(FIXTURE, &fx, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);

    const uint32_t I = (uint32_t)cfg("n_items"), NT = (uint32_t)cfg("n_types"), NF = (uint32_t)cfg("n_feats");
    const int B = (int)cfg("B"), len = (int)cfg("len"), C = (int)cfg("dim");
    assert_int_equal(I, 12);
    assert_int_equal(NT, 3);
    assert_int_equal(NF, 7);
    assert_int_equal(cfg("layers"), 2);
    assert_int_equal(cfg("heads"), 2);
    assert_int_equal(C, 8);
    assert_int_equal(cfg("ffn"), 16);
    assert_int_equal(cfg("maxlen"), 5);
    assert_int_equal(B, 3);
    assert_int_equal(len, 6);
    const size_t BL = (size_t)B * len, N = (size_t)B * (len - 1);

    /* inputs */
    uint32_t *items = malloc(BL * sizeof *items);
    uint16_t *types = malloc(BL * sizeof *types);
    int64_t *ts = malloc(BL * sizeof *ts);
    uint64_t *feat_off = malloc((I + 1) * sizeof *feat_off);
    assert_true(items && types && ts && feat_off);
    memcpy(items, get("items", SHELF_DT_U32, BL)->data, BL * sizeof *items);
    memcpy(ts, get("ts", SHELF_DT_I64, BL)->data, BL * sizeof *ts);
    const shelf__st_tensor *tt = get("types", SHELF_DT_I32, BL);
    for (size_t k = 0; k < BL; k++) {
        int32_t v;
        memcpy(&v, (const char *)tt->data + 4 * k, 4);
        assert_true(v >= 0 && (uint32_t)v < NT);
        types[k] = (uint16_t)v;
    }
    memcpy(feat_off, get("feat_off", SHELF_DT_U64, I + 1)->data, (I + 1) * sizeof *feat_off);
    const uint64_t nnz = feat_off[I];
    uint32_t *feat_col = malloc((nnz ? nnz : 1) * sizeof *feat_col);
    assert_non_null(feat_col);
    memcpy(feat_col, get("feat_col", SHELF_DT_U32, nnz)->data, nnz * sizeof *feat_col);

    /* the model, then the fixture's parameters by name, checked both ways */
    shelf_config *o = opts("tf-layers=2", "tf-heads=2", "tf-dim=8", "tf-ffn=16", "tf-maxlen=5", "tf-dropout=0",
                           "tf-precision=f32", "tf-loss=ce", "tf-features=true", "tf-types=true", "tf-gaps=true",
                           "threads=1", NULL);
    shelf_model *m = NULL;
    assert_int_equal(shelf_model_new("transformer", &m, NULL), 0);
    assert_int_equal(shelf__transformer_setup(m, o, I, NT, feat_off, feat_col, NF), 0);
    shelf_params *p = shelf__transformer_params(m);
    assert_non_null(p);
    for (size_t i = 0; i < p->n_tensors; i++) {
        const shelf_param_info *in = &p->info[i];
        const shelf__st_tensor *t = shelf__st_find(&fx, in->name);
        if (!t) fprintf(stderr, "parameter '%s' is missing from the fixture\n", in->name);
        assert_non_null(t);
        assert_int_equal(t->dt, SHELF_DT_F32);
        if (t->ndim != in->ndim) fprintf(stderr, "'%s': rank %d in the fixture, %d here\n", in->name, t->ndim, in->ndim);
        assert_int_equal(t->ndim, in->ndim);
        for (int d = 0; d < in->ndim; d++) {
            if (t->shape[d] != in->shape[d])
                fprintf(stderr, "'%s': dim %d is %lld in the fixture, %lld here\n", in->name, d,
                        (long long)t->shape[d], (long long)in->shape[d]);
            assert_int_equal(t->shape[d], in->shape[d]);
        }
        memcpy(shelf_params_data(p, i), t->data, in->numel * sizeof(float));
        char name[96];
        snprintf(name, sizeof name, "grad.%s", in->name);
        (void)get(name, SHELF_DT_F32, in->numel);
        snprintf(name, sizeof name, "after.%s", in->name);
        (void)get(name, SHELF_DT_F32, in->numel);
    }
    size_t n_fx_params = 0;
    for (size_t j = 0; j < fx.n; j++) {
        const char *n = fx.t[j].name;
        const char *base = !strncmp(n, "grad.", 5) ? n + 5 : !strncmp(n, "after.", 6) ? n + 6 : NULL;
        if (base || is_param_name(n)) {
            const char *pn = base ? base : n;
            if (shelf_params_find(p, pn) < 0) fprintf(stderr, "fixture tensor '%s': no parameter '%s' here\n", n, pn);
            assert_true(shelf_params_find(p, pn) >= 0);
            n_fx_params += !base;
        }
    }
    assert_int_equal(n_fx_params, p->n_tensors);
    printf("  %zu parameter tensors matched by name and shape\n", p->n_tensors);

    /* forward + backward (the hook rebuilds E from the new wte/wfe and zeroes
     * the gradients first) */
    float *logits = malloc(N * I * sizeof *logits);
    assert_non_null(logits);
    float loss = shelf__transformer_batch_loss(m, items, types, ts, B, len, 1, NULL, logits);
    float *ref_logits = floats("logits", N * I);
    err_acc e_log = {0}, e_loss = {0}, e_grad = {0}, e_kb = {0};
    size_t n_real = 0;
    for (int r = 0; r < B; r++)
        for (int k = 0; k < len - 1; k++) {
            const size_t n = (size_t)r * (len - 1) + k;
            const int real = items[(size_t)r * len + k] != SHELF_NN_PAD;
            n_real += real;
            for (uint32_t v = 0; v < I; v++) {
                if (real) acc(&e_log, logits[n * I + v], ref_logits[n * I + v], 1e-5, 1e-5, "logits", n * I + v);
                else {
                    assert_true(logits[n * I + v] == 0.0f);
                    assert_true(ref_logits[n * I + v] == 0.0f);
                }
            }
        }
    assert_int_equal(n_real, N - 2);
    const float ref_loss = scalar("loss");
    acc(&e_loss, loss, ref_loss, 1e-5, 1e-5, "loss", 0);
    printf("  loss: ours %.7f torch %.7f\n", loss, ref_loss);

    double gnorm2 = 0;
    for (size_t i = 0; i < p->n_tensors; i++) {
        const shelf_param_info *in = &p->info[i];
        char name[96];
        snprintf(name, sizeof name, "grad.%s", in->name);
        float *ref = floats(name, in->numel);
        const float *g = shelf_params_grad(p, i);
        double tmax = 0;
        for (size_t k = 0; k < in->numel; k++) {
            if (key_bias(in->name, k, (size_t)C)) {
                acc(&e_kb, g[k], 0.0, 1e-5, 0, name, k);
                acc(&e_kb, ref[k], 0.0, 1e-5, 0, name, k);
                continue;
            }
            acc(&e_grad, g[k], ref[k], 1e-5, 1e-4, name, k);
            gnorm2 += (double)g[k] * g[k];
            if (fabs(ref[k]) > tmax) tmax = fabs(ref[k]);
        }
        /* not vacuous: every tensor has a gradient well above the tolerance */
        if (tmax < 1e-2) fprintf(stderr, "  %s: max |grad| only %.3g\n", name, tmax);
        assert_true(tmax >= 1e-2);
        free(ref);
    }
    printf("  gradient norm (ours, key biases excluded) %.4f\n", sqrt(gnorm2));
    assert_true(sqrt(gnorm2) > 0.5);

    /* 5 AdamW steps at a constant lr */
    const float lr = scalar("adamw.lr"), wd = scalar("adamw.wd"), clip = scalar("adamw.clip");
    float *ref_losses = floats("adamw_losses", 5), *ref_norms = floats("adamw_gnorm", 5);
    const shelf_adamw cfgw = {0.9f, 0.999f, 1e-8f, wd};
    err_acc e_sl = {0}, e_norm = {0}, e_after = {0}, e_after_kb = {0};
    int clipped = 0;
    for (int s = 0; s < 5; s++) {
        float l = shelf__transformer_batch_loss(m, items, types, ts, B, len, 1, NULL, NULL);
        double norm = shelf_params_clip_grad_norm(p, clip);
        clipped += norm > clip;
        shelf_adamw_step(p, &cfgw, lr, s + 1);
        printf("  step %d: loss ours %.7f torch %.7f; grad norm ours %.5f torch %.5f%s\n", s + 1, l, ref_losses[s],
               norm, ref_norms[s], norm > clip ? " (clipped)" : "");
        acc(&e_sl, l, ref_losses[s], 1e-5, 1e-5, "adamw_losses", (size_t)s);
        acc(&e_norm, norm, ref_norms[s], 1e-5, 1e-5, "adamw_gnorm", (size_t)s);
    }
    assert_true(clipped >= 1 && clipped < 5); /* both branches of the clipping */
    assert_true(ref_losses[4] < ref_losses[0]);
    for (size_t i = 0; i < p->n_tensors; i++) {
        const shelf_param_info *in = &p->info[i];
        char name[96];
        snprintf(name, sizeof name, "after.%s", in->name);
        float *ref = floats(name, in->numel);
        const float *v = shelf_params_data(p, i);
        for (size_t k = 0; k < in->numel; k++) {
            if (key_bias(in->name, k, (size_t)C)) acc(&e_after_kb, v[k], ref[k], 5 * lr, 0, name, k);
            else acc(&e_after, v[k], ref[k], 1e-4, 1e-4, name, k);
        }
        free(ref);
    }

    printf("  max errors (ours float32 vs torch float64):\n");
    report("logits", &e_log);
    report("loss", &e_loss);
    report("gradients", &e_grad);
    report("key-bias gradients (~0)", &e_kb);
    report("AdamW step losses", &e_sl);
    report("AdamW gradient norms", &e_norm);
    report("params after 5 steps", &e_after);
    report("key biases after 5 steps", &e_after_kb);
    const long bad = e_log.bad + e_loss.bad + e_grad.bad + e_kb.bad + e_sl.bad + e_norm.bad + e_after.bad +
                     e_after_kb.bad;
    assert_int_equal(bad, 0);

    free(ref_losses);
    free(ref_norms);
    free(ref_logits);
    free(logits);
    free(items);
    free(types);
    free(ts);
    free(feat_off);
    free(feat_col);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf__st_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
