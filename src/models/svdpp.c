/* svdpp.c: SVD++ (Koren 2008, "Factorization meets the neighborhood"), an
 * explicit-rating model ("svdpp") that adds the implicit feedback of which
 * items a user rated to biased matrix factorisation. Models room.
 *
 * Model: r^_ui = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)
 * with N(u) the distinct items u rated in training, clipped at prediction
 * time to the rating scale [min, max] observed in training. Objective:
 *   sum (r_ui - r^_ui)^2 + reg (|p_u|^2 + |q_i|^2) + reg_y |y_j|^2
 *                        + reg_bias (b_u^2 + b_i^2)
 * SGD, one epoch = the users in a shuffled order, each user's ratings in a
 * shuffled order. The efficient per-user form of the common implementations
 * (LibRec, MyMediaLite): the implicit sum z_u = |N(u)|^-1/2 sum y_j is
 * computed once at the start of the user's pass; b, p and q are updated
 * rating by rating; the y gradient is accumulated over the user's ratings,
 * acc = sum_i e_ui q_i, and applied once, y_j += lr_y (|N(u)|^-1/2 acc -
 * reg_y y_j) for every j in N(u). So an epoch costs O(n K) instead of
 * O(sum_u n_u^2 K). Learning rates decay by lr-decay per epoch, per group
 * (factors lr, biases lr-bias, implicit lr-y). Factors start normal(0,
 * init_std) from the seed. Single-threaded: reproducible bit for bit.
 *
 * Only events of type "rating" are learned from (value = the rating).
 * Users and items without ratings keep zero parameters.
 *
 * Scoring: a known user's own z_u (the training N(u); a query history is
 * not added). An anonymous query (user SHELF_NONE) with a history uses the
 * history's distinct items as N(u) with p_u = 0 and b_u = 0; without one it
 * is mu + b_i.
 *
 * Defaults (config.c) were chosen on validation splits carved from the
 * ML100K-5FOLD training data only (a seeded random 10% of each u1..u5.base):
 * 100 factors, reg 0.08, reg-y 0.3, reg-bias 0.05, lr 0.02 (p, q, biases),
 * lr-y 0.004, 60 epochs, decay 0.95, init std 0.01 (mean validation RMSE
 * 0.8974). y wants a much stronger reg and a smaller lr than p and q
 * (reg-y 0.01..0.05 or lr-y 0.02 cost 0.01..0.04 RMSE). On the official
 * u1..u5 test files: mean RMSE 0.8979, MAE 0.7047, about 1.6 s per fold on
 * one core.
 *
 * Dimension letters: U users, I items, K factors, n ratings. */
#include "models/rating_int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* svdpp's rows of the configuration table: its hyperparameters (config.c
 * joins every model's rows to the common ones) */
static const shelf_cfg_def opts[] = {
#include "models/opts/svdpp.def"
};

typedef struct svdpp_model {
    shelf_model base;
    uint32_t K;
    float *P;      /* [U,K] user factors */
    float *Q;      /* [I,K] item factors */
    float *Y;      /* [I,K] implicit item factors */
    float *Z;      /* [U,K] |N(u)|^-1/2 sum_{j in N(u)} y_j of the final Y */
    float *bu;     /* [U] */
    float *bi;     /* [I] */
    float glob[3]; /* mu, rating min, rating max */
    int epochs;
    double lr, lr_bias, lr_y, lr_decay, reg, reg_bias, reg_y, init_std;
    uint64_t seed;
} svdpp_model;

/* the hyperparameters: read by fit from the options, kept in the manifest */
#define NUM(key, field, type) {key, offsetof(svdpp_model, field), type, 0}
static const shelf__bundle_num svdpp_nums[] = {
    NUM("svdpp-factors", K, 'u'),       NUM("svdpp-epochs", epochs, 'i'),
    NUM("svdpp-lr", lr, 'd'),           NUM("svdpp-lr-bias", lr_bias, 'd'),
    NUM("svdpp-lr-y", lr_y, 'd'),       {"svdpp-lr-decay", offsetof(svdpp_model, lr_decay), 'd', 1},
    NUM("svdpp-reg", reg, 'd'),         NUM("svdpp-reg-bias", reg_bias, 'd'),
    NUM("svdpp-reg-y", reg_y, 'd'),     NUM("svdpp-init-std", init_std, 'd'),
    NUM("seed", seed, 'U'),
};
#undef NUM

/* frees (and clears) the tensors: the layout's release */
static void free_arrays(shelf_model *m)
{
    svdpp_model *a = (svdpp_model *)m;
    free(a->P);
    free(a->Q);
    free(a->Y);
    free(a->Z);
    free(a->bu);
    free(a->bi);
    a->P = a->Q = a->Y = a->Z = a->bu = a->bi = NULL;
}

static void svdpp_free(shelf_model *m)
{
    svdpp_model *a = (svdpp_model *)m;
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

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t x = *(const uint32_t *)pa, y = *(const uint32_t *)pb;
    return (x > y) - (x < y);
}

/* Sorts items[0..n) and drops repeats; returns the distinct count. */
static uint32_t distinct(uint32_t *items, uint32_t n)
{
    qsort(items, n, sizeof *items, cmp_u32);
    uint32_t k = 0;
    for (uint32_t j = 0; j < n; j++)
        if (k == 0 || items[k - 1] != items[j]) items[k++] = items[j];
    return k;
}

/* z[K] = |N|^-1/2 sum_{j in N} y_j for distinct items N[0..n); zeros when n
 * is 0. */
static void implicit_sum(float *z, const float *Y, const uint32_t *N, uint32_t n, uint32_t K)
{
    memset(z, 0, (size_t)K * sizeof *z);
    if (n == 0) return;
    for (uint32_t j = 0; j < n; j++) {
        const float *y = Y + (size_t)N[j] * K;
        for (uint32_t k = 0; k < K; k++) z[k] += y[k];
    }
    const float norm = (float)(1.0 / sqrt((double)n));
    for (uint32_t k = 0; k < K; k++) z[k] *= norm;
}

static int svdpp_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    svdpp_model *a = (svdpp_model *)m;
    const uint32_t U = s->n_users, I = s->n_items;
    shelf__ratings R;
    int rc = shelf__rating_fit_begin(m, s, o, svdpp_nums, sizeof svdpp_nums / sizeof svdpp_nums[0], free_arrays,
                                     a->glob, &R);
    if (rc) return rc;
    const uint32_t K = a->K, n = (uint32_t)R.n;

    const size_t nUK = (size_t)U * K > 0 ? (size_t)U * K : 1, nIK = (size_t)I * K > 0 ? (size_t)I * K : 1;
    a->P = malloc(nUK * sizeof *a->P);
    a->Q = malloc(nIK * sizeof *a->Q);
    a->Y = malloc(nIK * sizeof *a->Y);
    a->Z = calloc(nUK, sizeof *a->Z);
    a->bu = calloc(U ? U : 1, sizeof *a->bu);
    a->bi = calloc(I ? I : 1, sizeof *a->bi);
    uint32_t *pos = malloc((size_t)n * sizeof *pos);     /* rating positions, shuffled per user */
    uint32_t *N = malloc((size_t)n * sizeof *N);         /* N(u): distinct items, per user */
    uint64_t *N_off = malloc(((size_t)U + 1) * sizeof *N_off);
    uint32_t *uord = malloc((U ? U : 1) * sizeof *uord); /* users with ratings, shuffled */
    uint8_t *item_seen = calloc(I ? I : 1, 1);
    float *work = malloc(3 * (size_t)K * sizeof *work);
    if (!a->P || !a->Q || !a->Y || !a->Z || !a->bu || !a->bi || !pos || !N || !N_off || !uord || !item_seen ||
        !work) {
        free(pos);
        free(N);
        free(N_off);
        free(uord);
        free(item_seen);
        free(work);
        free_arrays(m);
        shelf__ratings_free(&R);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u users, %u items, %u factors)", U, I, K);
    }
    float *z = work, *pz = work + K, *acc = work + 2 * (size_t)K;
    uint32_t n_active = 0;
    uint64_t kN = 0;
    for (uint32_t u = 0; u < U; u++) {
        uint32_t b = (uint32_t)R.off[u], c = (uint32_t)(R.off[u + 1] - R.off[u]);
        N_off[u] = kN;
        if (c) uord[n_active++] = u;
        memcpy(N + kN, R.item + b, (size_t)c * sizeof *N);
        kN += distinct(N + kN, c);
    }
    N_off[U] = kN;
    for (uint32_t e = 0; e < n; e++) {
        pos[e] = e;
        item_seen[R.item[e]] = 1;
    }

    shelf_rng rng;
    shelf_rng_seed(&rng, a->seed);
    for (size_t k = 0; k < (size_t)U * K; k++) a->P[k] = (float)(shelf_rng_normal(&rng) * a->init_std);
    for (size_t k = 0; k < (size_t)I * K; k++) a->Q[k] = (float)(shelf_rng_normal(&rng) * a->init_std);
    for (size_t k = 0; k < (size_t)I * K; k++) a->Y[k] = (float)(shelf_rng_normal(&rng) * a->init_std);

    const float mu = a->glob[0];
    char note[96];
    for (int ep = 0; ep < a->epochs && !rc; ep++) {
        double decay = pow(a->lr_decay, ep);
        const float lr = (float)(a->lr * decay), lrb = (float)(a->lr_bias * decay), lry = (float)(a->lr_y * decay);
        const float reg = (float)a->reg, regb = (float)a->reg_bias, regy = (float)a->reg_y;
        shelf__shuffle_u32(uord, n_active, &rng);
        double se = 0;
        for (uint32_t t = 0; t < n_active; t++) {
            const uint32_t u = uord[t];
            const uint32_t b = (uint32_t)R.off[u], c = (uint32_t)(R.off[u + 1] - R.off[u]);
            const uint32_t *Nu = N + N_off[u];
            const uint32_t nN = (uint32_t)(N_off[u + 1] - N_off[u]);
            float *p = a->P + (size_t)u * K;
            shelf__shuffle_u32(pos + b, c, &rng);
            implicit_sum(z, a->Y, Nu, nN, K);
            memset(acc, 0, (size_t)K * sizeof *acc);
            for (uint32_t j = 0; j < c; j++) {
                const uint32_t e = pos[b + j], i = R.item[e];
                float *q = a->Q + (size_t)i * K;
                for (uint32_t k = 0; k < K; k++) pz[k] = p[k] + z[k];
                const float err = R.value[e] - (mu + a->bu[u] + a->bi[i] + dot(q, pz, K));
                se += (double)err * err;
                a->bu[u] += lrb * (err - regb * a->bu[u]);
                a->bi[i] += lrb * (err - regb * a->bi[i]);
                for (uint32_t k = 0; k < K; k++) {
                    const float qk = q[k];
                    acc[k] += err * qk;
                    q[k] += lr * (err * pz[k] - reg * qk);
                    p[k] += lr * (err * qk - reg * p[k]);
                }
            }
            const float norm = (float)(1.0 / sqrt((double)nN));
            for (uint32_t k = 0; k < K; k++) acc[k] *= norm;
            for (uint32_t j = 0; j < nN; j++) {
                float *y = a->Y + (size_t)Nu[j] * K;
                for (uint32_t k = 0; k < K; k++) y[k] += lry * (acc[k] - regy * y[k]);
            }
        }
        if (!isfinite(se)) {
            rc = shelf__model_fail(m, SHELF_ERANGE,
                                   "training diverged in epoch %d (lower svdpp-lr %g, svdpp-lr-bias %g or "
                                   "svdpp-lr-y %g)", ep + 1, a->lr, a->lr_bias, a->lr_y);
            break;
        }
        snprintf(note, sizeof note, "epoch %d/%d train rmse %.4f", ep + 1, a->epochs, sqrt(se / n));
        shelf_progress_update(pr, (uint64_t)ep + 1, note);
    }
    if (!rc) {
        /* untrained rows back to zero: non-personal predictions for them */
        for (uint32_t u = 0; u < U; u++)
            if (R.off[u + 1] == R.off[u]) memset(a->P + (size_t)u * K, 0, (size_t)K * sizeof *a->P);
        for (uint32_t i = 0; i < I; i++)
            if (!item_seen[i]) {
                memset(a->Q + (size_t)i * K, 0, (size_t)K * sizeof *a->Q);
                memset(a->Y + (size_t)i * K, 0, (size_t)K * sizeof *a->Y);
            }
        for (uint32_t u = 0; u < U; u++)
            implicit_sum(a->Z + (size_t)u * K, a->Y, N + N_off[u], (uint32_t)(N_off[u + 1] - N_off[u]), K);
    }
    free(pos);
    free(N);
    free(N_off);
    free(uord);
    free(item_seen);
    free(work);
    shelf__ratings_free(&R);
    return shelf__rating_fit_end(m, rc, U, I, free_arrays);
}

/* Unclipped prediction with user vector pz = p_u + z_u (NULL: none) and
 * user bias bu. */
static inline float raw_predict(const svdpp_model *a, const float *pz, float bu, uint32_t i)
{
    float s = a->glob[0] + bu + a->bi[i];
    if (pz) s += dot(a->Q + (size_t)i * a->K, pz, a->K);
    return s;
}

static int svdpp_predict(const shelf_model *m, uint32_t user, uint32_t item, float *out, shelf_err *err)
{
    const svdpp_model *a = (const svdpp_model *)m;
    const uint32_t K = a->K;
    float s = a->glob[0] + a->bi[item];
    if (user != SHELF_NONE) {
        const float *p = a->P + (size_t)user * K, *z = a->Z + (size_t)user * K, *q = a->Q + (size_t)item * K;
        /* the same sums, in the same order, as score's pz path */
        float d = 0.0f;
        for (uint32_t k = 0; k < K; k++) d += q[k] * (p[k] + z[k]);
        s = a->glob[0] + a->bu[user] + a->bi[item] + d;
    }
    *out = shelf__clip(s, a->glob[1], a->glob[2]);
    return 0;
}

/* scores[i] = the clipped predicted rating of every item: a known user's
 * own p_u + z_u; an anonymous history's distinct items as N(u) (p_u = 0,
 * b_u = 0); neither: mu + b_i. Reads only: safe from many threads. */
static int svdpp_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    const svdpp_model *a = (const svdpp_model *)m;
    const uint32_t K = a->K, I = m->n_items;
    float *pz = NULL, bu = 0.0f;
    if (q->user != SHELF_NONE || q->n) {
        pz = malloc((size_t)K * sizeof *pz + (size_t)q->n * sizeof(uint32_t));
        if (!pz) return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory");
        if (q->user != SHELF_NONE) {
            const float *p = a->P + (size_t)q->user * K, *z = a->Z + (size_t)q->user * K;
            for (uint32_t k = 0; k < K; k++) pz[k] = p[k] + z[k];
            bu = a->bu[q->user];
        } else {
            uint32_t *items = (uint32_t *)(pz + K);
            memcpy(items, q->items, (size_t)q->n * sizeof *items);
            implicit_sum(pz, a->Y, items, distinct(items, q->n), K);
        }
    }
    for (uint32_t i = 0; i < I; i++) scores[i] = shelf__clip(raw_predict(a, pz, bu, i), a->glob[1], a->glob[2]);
    free(pz);
    return 0;
}

/* the tensors of the bundle, in its order */
static const shelf__rating_tensor svdpp_tensors[] = {
    {"user_factors", offsetof(svdpp_model, P), 'u', 1},  {"user_implicit", offsetof(svdpp_model, Z), 'u', 1},
    {"item_factors", offsetof(svdpp_model, Q), 'i', 1},  {"item_implicit", offsetof(svdpp_model, Y), 'i', 1},
    {"user_bias", offsetof(svdpp_model, bu), 'u', 0},    {"item_bias", offsetof(svdpp_model, bi), 'i', 0},
};

/* the bundle: the tensors, the globals, the numbers */
static const shelf__rating_layout layout = {
    svdpp_tensors, sizeof svdpp_tensors / sizeof svdpp_tensors[0],
    svdpp_nums, sizeof svdpp_nums / sizeof svdpp_nums[0],
    offsetof(svdpp_model, glob), free_arrays,
};

static int svdpp_save(const shelf_model *m, shelf_bundle_writer *w) { return shelf__rating_save(m, w, &layout); }

static int svdpp_load(shelf_model *m, const shelf_bundle *b) { return shelf__rating_load(m, b, &layout); }

/* the vtable and what registry.c needs to make one (models_int.h) */
SHELF__MODEL_KIND(svdpp, svdpp, "svdpp", SHELF_CAP_RATE | SHELF_CAP_NEEDS_HISTORY,
                  /* observe */ NULL, /* explain */ NULL, /* predict */ svdpp_predict, SHELF__NO_SESSION);
