/* rating_mf.c: biased matrix factorisation for explicit ratings ("rating-mf",
 * the "SVD" of Funk 2006 and Koren, Bell & Volinsky 2009), and the rating
 * helpers it shares with svdpp.c. Models room.
 *
 * Model: r^_ui = mu + b_u + b_i + p_u . q_i, clipped at prediction time to
 * the rating scale [min, max] observed in training. Trained by SGD on
 *   sum_{(u,i) rated} (r_ui - r^_ui)^2 + reg (|p_u|^2 + |q_i|^2)
 *                                     + reg_bias (b_u^2 + b_i^2)
 * (the unclipped r^ inside), one pass over the ratings per epoch in an
 * order shuffled by a seeded RNG, with learning rate lr * decay^epoch
 * (lr-bias for the biases). Factors start normal(0, init_std); mu is the
 * mean training rating and stays fixed. Single-threaded: a fit is
 * reproducible bit for bit for a seed (ML-100k's 80k ratings take
 * milliseconds per epoch).
 *
 * Only events of type "rating" are learned from, value = the rating; users
 * and items without ratings keep zero biases and factors, so they predict
 * mu + b_i (an unknown user) or mu + b_u (an unrated item).
 *
 * Defaults (config.c) were chosen on validation splits carved from the
 * ML100K-5FOLD training data only (a seeded random 10% of each u1..u5.base,
 * fit on the other 90%; grids over factors 50..400, reg 0.03..0.12, lr
 * 0.005..0.03 with matching epochs/decay, init std 0.1/0.03/0.01, reg-bias
 * 0.005..0.05): 200 factors, reg 0.07, reg-bias 0.05, lr 0.02 (both), 60
 * epochs, decay 0.95, init std 0.01 (mean validation RMSE 0.9046). A small
 * init and a stronger reg than the usual 0.1 / 0.02 matter most. On the
 * official u1..u5 test files: mean RMSE 0.9046, MAE 0.7116, about 2 s per
 * fold on one core.
 *
 * Dimension letters: U users, I items, K factors, n ratings. */
#include "models/rating_int.h"
#include "core/assert_int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* rating-mf's rows of the configuration table: its hyperparameters (config.c
 * joins every model's rows to the common ones) */
static const shelf_cfg_def opts[] = {
#include "models/opts/rating_mf.def"
};

/* ---- shared with svdpp.c --------------------------------------------------------- */

void shelf__ratings_free(shelf__ratings *r)
{
    free(r->off);
    free(r->user);
    free(r->item);
    free(r->value);
    memset(r, 0, sizeof *r);
}

int shelf__ratings_collect(const shelf_model *m, const shelf_snapshot *s, shelf__ratings *r)
{
    memset(r, 0, sizeof *r);
    uint32_t t_rating = SHELF_NONE;
    for (uint32_t t = 0; t < s->n_types; t++)
        if (strcmp(s->type_name + s->type_name_off[t], "rating") == 0) t_rating = t;
    if (t_rating == SHELF_NONE)
        return shelf__model_fail(m, SHELF_EINVAL, "the snapshot has no event type \"rating\" "
                                 "(a rating model learns from explicit ratings only)");
    const uint32_t U = s->n_users;
    uint64_t n = 0;
    for (uint64_t e = 0; e < s->n_events; e++) n += s->seq_type[e] == t_rating;
    if (n == 0)
        return shelf__model_fail(m, SHELF_EINVAL, "the snapshot has no events of type \"rating\" "
                                 "(%llu events of other types; a rating model learns from ratings only)",
                                 (unsigned long long)s->n_events);
    if (n > UINT32_MAX)
        return shelf__model_fail(m, SHELF_EINVAL, "too many ratings (%llu)", (unsigned long long)n);
    r->off = malloc(((size_t)U + 1) * sizeof *r->off);
    r->user = malloc(n * sizeof *r->user);
    r->item = malloc(n * sizeof *r->item);
    r->value = malloc(n * sizeof *r->value);
    if (!r->off || !r->user || !r->item || !r->value) {
        shelf__ratings_free(r);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%llu ratings)", (unsigned long long)n);
    }
    uint64_t k = 0;
    double sum = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (uint32_t u = 0; u < U; u++) {
        r->off[u] = k;
        for (uint64_t e = s->seq_off[u]; e < s->seq_off[u + 1]; e++) {
            if (s->seq_type[e] != t_rating) continue;
            float v = s->seq_value[e];
            if (!isfinite(v)) {
                uint32_t i = s->seq_item[e];
                shelf__model_fail(m, SHELF_EINVAL, "rating of user '%s' on item '%s' is not a number",
                                  s->user_ext + s->user_ext_off[u], s->item_ext + s->item_ext_off[i]);
                shelf__ratings_free(r);
                return SHELF_EINVAL;
            }
            r->user[k] = u;
            r->item[k] = s->seq_item[e];
            r->value[k++] = v;
            sum += v;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    }
    r->off[U] = k;
    SHELF_ASSERT(k == n);
    r->n_users = U;
    r->n = n;
    r->mu = sum / (double)n;
    r->rmin = lo;
    r->rmax = hi;
    return 0;
}

void shelf__shuffle_u32(uint32_t *idx, uint32_t n, shelf_rng *rng)
{
    for (uint32_t j = n; j > 1; j--) {
        uint32_t k = shelf_rng_below(rng, j);
        uint32_t t = idx[j - 1];
        idx[j - 1] = idx[k];
        idx[k] = t;
    }
}

void *shelf__rating_take(shelf_model *m, const shelf_bundle *b, const char *name, int ndim, int64_t d0,
                         int64_t d1)
{
    int nd = 0;
    int64_t sh[4] = {0};
    const void *p = shelf_bundle_get(b, name, SHELF_DT_F32, &nd, sh);
    if (!p || nd != ndim || sh[0] != d0 || (ndim == 2 && sh[1] != d1)) {
        if (ndim == 2)
            shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks f32 tensor '%s' [%lld, %lld]", name,
                              (long long)d0, (long long)d1);
        else
            shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks f32 tensor '%s' [%lld]", name, (long long)d0);
        return NULL;
    }
    size_t n = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    float *q = malloc(n ? n * sizeof *q : 1);
    if (!q) {
        shelf__model_fail(m, SHELF_ENOMEM, "out of memory (tensor '%s')", name);
        return NULL;
    }
    if (n) memcpy(q, p, n * sizeof *q);
    for (size_t j = 0; j < n; j++)
        if (!isfinite(q[j])) {
            free(q);
            shelf__model_fail(m, SHELF_ECORRUPT, "bundle tensor '%s' holds a non-finite value at %zu", name, j);
            return NULL;
        }
    return q;
}

int shelf__rating_save(const shelf_model *m, shelf_bundle_writer *w, const shelf__rating_layout *l)
{
    const char *a = (const char *)m;
    const uint32_t K = *(const uint32_t *)(a + l->nums[0].at);
    int rc = 0;
    for (size_t k = 0; k < l->n_tensors && !rc; k++) {
        const shelf__rating_tensor *t = &l->tensors[k];
        const int64_t shape[2] = {t->rows == 'u' ? m->n_users : m->n_items, K};
        rc = shelf_bundle_put(w, t->name, SHELF_DT_F32, t->by_k ? 2 : 1, shape, *(float *const *)(a + t->at));
    }
    const int64_t sg[1] = {3};
    if (!rc) rc = shelf_bundle_put(w, "globals", SHELF_DT_F32, 1, sg, (const float *)(a + l->at_glob));
    if (!rc) rc = shelf__bundle_nums_put(w, m, l->nums, l->n_nums);
    return rc;
}

int shelf__rating_load(shelf_model *m, const shelf_bundle *b, const shelf__rating_layout *l)
{
    char *a = (char *)m;
    const uint32_t U = m->n_users, I = m->n_items;
    double Kd = shelf_bundle_num(b, l->nums[0].key, 0);
    if (!(Kd >= 1 && Kd <= 4096) || I == 0)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: bad sizes (factors %g, %u users, %u items)", Kd, U, I);
    l->release(m);
    shelf__bundle_nums_get(b, m, l->nums, l->n_nums);
    const uint32_t K = *(const uint32_t *)(a + l->nums[0].at);
    int rc = shelf__rating_take_globals(m, b, (float *)(a + l->at_glob));
    for (size_t k = 0; k < l->n_tensors && !rc; k++) {
        const shelf__rating_tensor *t = &l->tensors[k];
        float *x = shelf__rating_take(m, b, t->name, t->by_k ? 2 : 1, t->rows == 'u' ? U : I, t->by_k ? K : 0);
        if (!x) rc = m->err.code;
        else *(float **)(a + t->at) = x;
    }
    if (rc) {
        l->release(m);
        return rc;
    }
    m->fitted = 1;
    return 0;
}

int shelf__rating_take_globals(shelf_model *m, const shelf_bundle *b, float glob[3])
{
    float *g = shelf__rating_take(m, b, "globals", 1, 3, 0);
    if (!g) return m->err.code;
    memcpy(glob, g, 3 * sizeof *g);
    free(g);
    if (!(glob[1] <= glob[2]))
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: rating scale [%g, %g] is empty", glob[1], glob[2]);
    return 0;
}

int shelf__rating_fit_begin(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, const shelf__bundle_num *nums,
                            size_t n_nums, void (*release)(shelf_model *m), float glob[3], shelf__ratings *r)
{
    int rc = shelf__ratings_collect(m, s, r);
    if (rc) return rc;
    release(m);
    m->fitted = 0;
    shelf__opts_nums_get(o, m, nums, n_nums);
    glob[0] = (float)r->mu;
    glob[1] = r->rmin;
    glob[2] = r->rmax;
    return 0;
}

void shelf__ratings_zero_unrated(const shelf__ratings *r, uint8_t *item_seen, float *P, float *Q, uint32_t U,
                                 uint32_t I, uint32_t K)
{
    for (uint64_t e = 0; e < r->n; e++) item_seen[r->item[e]] = 1;
    for (uint32_t u = 0; u < U; u++)
        if (r->off[u + 1] == r->off[u]) memset(P + (size_t)u * K, 0, (size_t)K * sizeof *P);
    for (uint32_t i = 0; i < I; i++)
        if (!item_seen[i]) memset(Q + (size_t)i * K, 0, (size_t)K * sizeof *Q);
}

int shelf__rating_fit_end(shelf_model *m, int rc, uint32_t U, uint32_t I, void (*release)(shelf_model *m))
{
    if (rc) {
        release(m);
        return rc;
    }
    m->n_users = U;
    m->n_items = I;
    m->fitted = 1;
    return 0;
}

int shelf__rating_score_all(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    for (uint32_t i = 0; i < m->n_items; i++) {
        int rc = m->vt->predict(m, q->user, i, &scores[i], err);
        if (rc) return rc;
    }
    return 0;
}

/* ---- the model ------------------------------------------------------------------- */

typedef struct rmf_model {
    shelf_model base;
    uint32_t K;
    float *P;       /* [U,K] user factors */
    float *Q;       /* [I,K] item factors */
    float *bu;      /* [U] user biases */
    float *bi;      /* [I] item biases */
    float glob[3];  /* mu, rating min, rating max */
    int epochs;
    double lr, lr_bias, lr_decay, reg, reg_bias, init_std;
    uint64_t seed;
} rmf_model;

/* the hyperparameters: read by fit from the options, kept in the manifest */
#define NUM(key, field, type) {key, offsetof(rmf_model, field), type, 0}
static const shelf__bundle_num rmf_nums[] = {
    NUM("mf-factors", K, 'u'),      NUM("mf-epochs", epochs, 'i'), NUM("mf-lr", lr, 'd'),
    NUM("mf-lr-bias", lr_bias, 'd'), {"mf-lr-decay", offsetof(rmf_model, lr_decay), 'd', 1},
    NUM("mf-reg", reg, 'd'),        NUM("mf-reg-bias", reg_bias, 'd'), NUM("mf-init-std", init_std, 'd'),
    NUM("seed", seed, 'U'),
};
#undef NUM

/* frees (and clears) the tensors: the layout's release */
static void free_arrays(shelf_model *m)
{
    rmf_model *a = (rmf_model *)m;
    free(a->P);
    free(a->Q);
    free(a->bu);
    free(a->bi);
    a->P = a->Q = a->bu = a->bi = NULL;
}

static void rmf_free(shelf_model *m)
{
    rmf_model *a = (rmf_model *)m;
    if (!a) return;
    free_arrays(m);
    free(a);
}

static inline float dot(const float *a, const float *b, uint32_t K)
{
    float s = 0.0f;
    for (uint32_t k = 0; k < K; k++) s += a[k] * b[k];
    return s;
}

/* Unclipped mu + b_i (+ b_u + p_u . q_i for a known user). */
static inline float raw_predict(const rmf_model *a, uint32_t u, uint32_t i)
{
    float s = a->glob[0] + a->bi[i];
    if (u != SHELF_NONE) s += a->bu[u] + dot(a->P + (size_t)u * a->K, a->Q + (size_t)i * a->K, a->K);
    return s;
}

/* One SGD step on rating r of (u, i); returns the error before the step.
 * Shapes: p [K], q [K]. */
static inline float sgd_step(rmf_model *a, uint32_t u, uint32_t i, float r, float lr, float lrb, float reg,
                             float regb)
{
    const uint32_t K = a->K;
    float *p = a->P + (size_t)u * K, *q = a->Q + (size_t)i * K;
    float e = r - (a->glob[0] + a->bu[u] + a->bi[i] + dot(p, q, K));
    a->bu[u] += lrb * (e - regb * a->bu[u]);
    a->bi[i] += lrb * (e - regb * a->bi[i]);
    for (uint32_t k = 0; k < K; k++) {
        float pk = p[k], qk = q[k];
        p[k] += lr * (e * qk - reg * pk);
        q[k] += lr * (e * pk - reg * qk);
    }
    return e;
}

static int rmf_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    rmf_model *a = (rmf_model *)m;
    const uint32_t U = s->n_users, I = s->n_items;
    shelf__ratings R;
    int rc = shelf__rating_fit_begin(m, s, o, rmf_nums, sizeof rmf_nums / sizeof rmf_nums[0], free_arrays,
                                     a->glob, &R);
    if (rc) return rc;
    const uint32_t K = a->K, n = (uint32_t)R.n;

    a->P = malloc((size_t)U * K * sizeof *a->P);
    a->Q = malloc((size_t)I * K * sizeof *a->Q);
    a->bu = calloc(U ? U : 1, sizeof *a->bu);
    a->bi = calloc(I ? I : 1, sizeof *a->bi);
    uint32_t *idx = malloc((size_t)n * sizeof *idx);
    uint8_t *item_seen = calloc(I ? I : 1, 1);
    if ((!a->P && U) || (!a->Q && I) || !a->bu || !a->bi || !idx || !item_seen) {
        free(idx);
        free(item_seen);
        free_arrays(m);
        shelf__ratings_free(&R);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u users, %u items, %u factors)", U, I, K);
    }
    shelf_rng rng;
    shelf_rng_seed(&rng, a->seed);
    for (size_t k = 0; k < (size_t)U * K; k++) a->P[k] = (float)(shelf_rng_normal(&rng) * a->init_std);
    for (size_t k = 0; k < (size_t)I * K; k++) a->Q[k] = (float)(shelf_rng_normal(&rng) * a->init_std);
    for (uint32_t e = 0; e < n; e++) idx[e] = e;

    char note[96];
    for (int ep = 0; ep < a->epochs && !rc; ep++) {
        double decay = pow(a->lr_decay, ep);
        const float lr = (float)(a->lr * decay), lrb = (float)(a->lr_bias * decay);
        const float reg = (float)a->reg, regb = (float)a->reg_bias;
        shelf__shuffle_u32(idx, n, &rng);
        double se = 0;
        for (uint32_t t = 0; t < n; t++) {
            uint32_t e = idx[t];
            float err = sgd_step(a, R.user[e], R.item[e], R.value[e], lr, lrb, reg, regb);
            se += (double)err * err;
        }
        if (!isfinite(se)) {
            rc = shelf__model_fail(m, SHELF_ERANGE, "training diverged in epoch %d (lower mf-lr %g or mf-lr-bias %g)",
                                   ep + 1, a->lr, a->lr_bias);
            break;
        }
        snprintf(note, sizeof note, "epoch %d/%d train rmse %.4f", ep + 1, a->epochs, sqrt(se / n));
        shelf_progress_update(pr, (uint64_t)ep + 1, note);
    }
    shelf__ratings_zero_unrated(&R, item_seen, a->P, a->Q, U, I, K);
    free(idx);
    free(item_seen);
    shelf__ratings_free(&R);
    return shelf__rating_fit_end(m, rc, U, I, free_arrays);
}

static int rmf_predict(const shelf_model *m, uint32_t user, uint32_t item, float *out, shelf_err *err)
{
    const rmf_model *a = (const rmf_model *)m;
    *out = shelf__clip(raw_predict(a, user, item), a->glob[1], a->glob[2]);
    return 0;
}

/* scores[i] = the clipped predicted rating of every item for q->user
 * (mu + b_i for SHELF_NONE; the history is not used). Reads only: safe from
 * many threads. */
static int rmf_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    return shelf__rating_score_all(m, q, scores, err);
}

/* the tensors of the bundle, in its order */
static const shelf__rating_tensor rmf_tensors[] = {
    {"user_factors", offsetof(rmf_model, P), 'u', 1},
    {"item_factors", offsetof(rmf_model, Q), 'i', 1},
    {"user_bias", offsetof(rmf_model, bu), 'u', 0},
    {"item_bias", offsetof(rmf_model, bi), 'i', 0},
};

/* the bundle: the tensors, the globals, the numbers */
static const shelf__rating_layout layout = {
    rmf_tensors, sizeof rmf_tensors / sizeof rmf_tensors[0],
    rmf_nums, sizeof rmf_nums / sizeof rmf_nums[0],
    offsetof(rmf_model, glob), free_arrays,
};

static int rmf_save(const shelf_model *m, shelf_bundle_writer *w) { return shelf__rating_save(m, w, &layout); }

static int rmf_load(shelf_model *m, const shelf_bundle *b) { return shelf__rating_load(m, b, &layout); }

/* the vtable and what registry.c needs to make one (models_int.h) */
SHELF__MODEL_KIND(rating_mf, rmf, "rating-mf", SHELF_CAP_RATE | SHELF_CAP_NEEDS_HISTORY,
                  /* observe */ NULL, /* explain */ NULL, /* predict */ rmf_predict, SHELF__NO_SESSION);
