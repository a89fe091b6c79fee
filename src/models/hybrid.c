/* hybrid.c: a LightFM-style hybrid factorisation model ("hybrid", Kula 2015)
 * for implicit feedback: items are the sum of their id and their features,
 * so that an item without events still has a vector. Models room.
 *
 * Features. F(i) = the item's attribute ids, its category, its brand, its
 * price bucket (shelf_snapshot) and the distinct hashed words of its text
 * (shelf_text_words on item_text into hyb-text-buckets buckets, 0 = no
 * words; at most hyb-text-max distinct words per item, in text order).
 * Rows of the feature table: [0, A) attributes, then C categories, N
 * brands, P price buckets, B word buckets (F = A + C + N + P + B rows).
 *
 * Model (K factors):
 *   q_i = e_i + |F(i)|^-1 sum_{f in F(i)} w_f      (the mean; 0 if F(i) empty)
 *   b_i = c_i + |F(i)|^-1 sum_{f in F(i)} d_f
 *   p_u = x_u + |G(u)|^-1 sum_{g in G(u)} z_g      (0 if G(u) empty)
 *   s(u, i) = p_u . q_i + b_i
 * e_i, c_i: the item's id embedding and id bias; w_f, d_f: feature
 * embeddings and biases; x_u: the user's id embedding; G(u): the user's
 * features (the snapshot's "key=value" user attributes: segment, region,
 * device...), each hashed (shelf_ctx_hash) into one of hyb-ctx-buckets
 * context rows z. At the end of the fit each known user's feature part is
 * folded into its x_u, so scoring a known user reads one row.
 *
 * Training: one epoch draws as many (u, i) pairs as there are positive
 * user->item pairs (r > 0), uniformly with replacement. Loss hyb-loss:
 *  - warp (default; Weston et al. 2011, as LightFM): negatives j are drawn
 *    uniformly from the J candidate items (all, or see hyb-cold-neg),
 *    skipping the user's positives, until one violates the margin,
 *    s(u, j) > s(u, i) - 1, at most hyb-max-sampled tries; at try t the rank
 *    of i is estimated as floor((J - 1) / t) and the step minimises
 *    log(max(1, rank)) (1 - s(u, i) + s(u, j)). No violation: no step.
 *  - bpr (Rendle et al. 2009): one uniform negative, -ln sigmoid(s_ui - s_uj).
 * Optimizer: Adagrad (per-parameter rates lr / sqrt(G), G the running sum
 * of squared gradients, starting at 1 as in LightFM), with L2 weight hyb-reg
 * added to the gradient of every parameter a step touches. Hogwild-parallel
 * over threads with OpenMP (Recht et al. 2011); thread t draws from its own
 * stream of the seed, so with threads = 1 a fit is reproducible bit for bit.
 *
 * Initialisation: user and feature embeddings N(0, 0.1^2 / K); item id
 * embeddings 100x smaller, biases 0, so an item starts as its features.
 *
 * Cold items. An item with no positive in the training snapshot keeps e_i =
 * 0 and c_i = 0 (hyb-freeze-cold, default): as a sampled negative only its
 * features move, so its id cannot learn "nobody bought me" and it is scored
 * by its features alone. hyb-id-dropout p: each item occurrence in a step
 * drops its id part (features only, id not updated) with probability p, so
 * the features learn to stand in for the id (items with no features never
 * drop). hyb-cold-neg false (default): negatives are drawn only from the
 * items with training positives, so that items nobody could have bought yet
 * do not push their (shared) features down.
 *
 * Scoring (thread safe, reads only):
 *  - known user (q->user < U): p_u (the query's history and context are not
 *    used);
 *  - unknown user (SHELF_NONE): the mean of q_i over the history items plus
 *    the mean of the context rows of q->ctx (shelf_ctx_hash values of
 *    "key=value" strings, taken modulo hyb-ctx-buckets): a new shopper with a
 *    segment, region or device is scored like the known users who share
 *    them;
 *  - neither history nor (valid) context: scores = b_i, the items' learned
 *    popularity.
 *
 * Defaults (config.c, hyb-* rows) were chosen on the validation targets of
 * Beauty's cold-item protocol (`shelf eval --valid --protocol cold-item`,
 * 10% of the items cold; HR@20 / NDCG@20 there): lr 0.2 (0.0795 / 0.0269;
 * 0.05: far lower, 0.5: 0.0714 / 0.0243), id dropout 0.3 (0.0826 / 0.0277;
 * 0.5: 0.0795 / 0.0269, 0.8: 0.0504 / 0.0167), cold items not drawn as
 * negatives (drawn: 0.0590 / 0.0196), reg 1e-5 (1e-4: 0.0742 / 0.0247), 30
 * epochs, 30 WARP tries (100 tries: 0.0849 / 0.0311 but 2.5x the fit
 * time). Without freeze-cold the cold targets score ~0 (their ids learn to
 * be negatives).
 *
 * Dimension letters: U users, I items, K factors, F feature rows, X context
 * rows. */
#include "models/models_int.h"
#include "shelf/text.h"
#include "core/mem_int.h"

#include <cblas.h>
#undef I /* <complex.h>, pulled in by cblas.h, defines I; here I is the item count */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* hybrid's rows of the configuration table: its hyperparameters (config.c
 * joins every model's rows to the common ones) */
static const shelf_cfg_def opts[] = {
#include "models/opts/hybrid.def"
};

#define INIT_STD 0.1      /* user and feature embeddings N(0, INIT_STD^2 / K) */
#define ID_INIT_SCALE 0.01 /* item id embeddings start this much smaller */
#define MARGIN 1.0f        /* WARP margin */
#define NEG_TRIES 16       /* bpr: redraws of a negative that is a positive */

typedef enum { LOSS_WARP = 0, LOSS_BPR = 1 } loss_kind;

typedef struct hyb_model {
    shelf_model base;
    uint32_t K;
    uint32_t A, NC, NB, NP, TB; /* feature rows: attributes, categories, brands, price buckets, word buckets */
    uint32_t F, X;              /* feature rows (>= 1 allocated), context rows */
    uint32_t text_max;
    float *P;   /* [U,K] user embeddings */
    float *E;   /* [I,K] item id embeddings */
    float *W;   /* [F,K] feature embeddings */
    float *c;   /* [I] item id biases */
    float *d;   /* [F] feature biases */
    float *Xc;  /* [X,K] context embeddings z */
    uint64_t *uf_off; /* [U+1] during the fit: user u's context rows are uf[uf_off[u] .. uf_off[u+1]) */
    uint32_t *uf;
    uint64_t *feat_off; /* [I+1] item i's feature rows are feat[feat_off[i] .. feat_off[i+1]) */
    uint32_t *feat;     /* feature rows < F */
    float *Q;   /* [I,K] q_i of the final parameters (derived) */
    float *b;   /* [I] b_i (derived) */
    int epochs, max_sampled, freeze_cold, cold_neg;
    double lr, reg, id_dropout;
    loss_kind loss;
    uint64_t seed;
} hyb_model;

static void free_arrays(hyb_model *a)
{
    SHELF__FREE_ALL(a->P, a->E, a->W, a->c, a->d, a->Xc, a->uf_off, a->uf, a->feat_off, a->feat, a->Q, a->b);
    a->P = a->E = a->W = a->c = a->d = a->Xc = a->Q = a->b = NULL;
    a->uf_off = NULL;
    a->uf = NULL;
    a->feat_off = NULL;
    a->feat = NULL;
}

static void hyb_free(shelf_model *m)
{
    if (!m) return;
    free_arrays((hyb_model *)m);
    free(m);
}

static inline float dot(const float *x, const float *y, uint32_t K)
{
    float s = 0.0f;
    for (uint32_t k = 0; k < K; k++) s += x[k] * y[k];
    return s;
}

/* 1 if item is in the sorted list cols[0..n). */
static int contains(const uint32_t *cols, uint64_t n, uint32_t item)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (cols[mid] < item) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && cols[lo] == item;
}

/* ============================================================================
 * Features
 * ========================================================================== */

/* Appends row to out[0..*n) unless present. */
static inline void add_row(uint32_t *out, uint32_t *n, uint32_t row)
{
    for (uint32_t k = 0; k < *n; k++)
        if (out[k] == row) return;
    out[(*n)++] = row;
}

/* Builds a->feat_off/feat from the snapshot (sizes A..TB set). */
static int build_features(hyb_model *a, const shelf_snapshot *s)
{
    const uint32_t I = s->n_items;
    const uint32_t base_c = a->A, base_b = base_c + a->NC, base_p = base_b + a->NB, base_t = base_p + a->NP;
    const size_t wcap = a->TB ? (size_t)a->text_max * 8 + 64 : 1;
    uint32_t *words = malloc(wcap * sizeof *words);
    uint64_t cap = (uint64_t)I * 4 + 16, n = 0;
    uint32_t *one = NULL;
    size_t one_cap = 0;
    a->feat_off = malloc(((size_t)I + 1) * sizeof *a->feat_off);
    a->feat = malloc((size_t)cap * sizeof *a->feat);
    if (!words || !a->feat_off || !a->feat) goto nomem;
    a->feat_off[0] = 0;
    for (uint32_t i = 0; i < I; i++) {
        const uint64_t na = s->attr_off ? s->attr_off[i + 1] - s->attr_off[i] : 0;
        const size_t need = (size_t)na + 3 + a->text_max;
        if (need > one_cap) {
            uint32_t *t = realloc(one, need * sizeof *t);
            if (!t) goto nomem;
            one = t;
            one_cap = need;
        }
        uint32_t k = 0;
        for (uint64_t e = 0; e < na; e++)
            if (s->attr_col[s->attr_off[i] + e] < a->A) one[k++] = s->attr_col[s->attr_off[i] + e];
        if (s->item_category && s->item_category[i] < a->NC) one[k++] = base_c + s->item_category[i];
        if (s->item_brand && s->item_brand[i] < a->NB) one[k++] = base_b + s->item_brand[i];
        if (s->item_price_bucket && s->item_price_bucket[i] >= 1 && s->item_price_bucket[i] <= a->NP)
            one[k++] = base_p + s->item_price_bucket[i] - 1u;
        if (a->TB && s->item_text) {
            const char *text = s->item_text + s->item_text_off[i];
            size_t nw = shelf_text_words(text, strlen(text), a->TB, words, wcap);
            if (nw > wcap) nw = wcap;
            uint32_t nt = 0; /* distinct words so far, in one[k ..) */
            for (size_t w = 0; w < nw && nt < a->text_max; w++) add_row(one + k, &nt, base_t + words[w]);
            k += nt;
        }
        if (n + k > cap) {
            while (n + k > cap) cap *= 2;
            uint32_t *t = realloc(a->feat, (size_t)cap * sizeof *t);
            if (!t) goto nomem;
            a->feat = t;
        }
        memcpy(a->feat + n, one, (size_t)k * sizeof *one);
        n += k;
        a->feat_off[i + 1] = n;
    }
    free(words);
    free(one);
    return 0;
nomem:
    free(words);
    free(one);
    return SHELF_ENOMEM;
}

/* ============================================================================
 * Forward pieces
 * ========================================================================== */

/* q [K] = (use_id ? e_i : 0) + mean_f w_f; returns b_i likewise. */
static float item_vec(const hyb_model *a, uint32_t i, int use_id, float *q)
{
    const uint32_t K = a->K;
    const uint64_t f0 = a->feat_off[i], nf = a->feat_off[i + 1] - f0;
    float bias = 0.0f;
    memset(q, 0, (size_t)K * sizeof *q);
    if (nf) {
        for (uint64_t e = f0; e < f0 + nf; e++) {
            const float *w = a->W + (size_t)a->feat[e] * K;
            for (uint32_t k = 0; k < K; k++) q[k] += w[k];
            bias += a->d[a->feat[e]];
        }
        const float inv = 1.0f / (float)nf;
        for (uint32_t k = 0; k < K; k++) q[k] *= inv;
        bias *= inv;
    }
    if (use_id) {
        const float *e = a->E + (size_t)i * K;
        for (uint32_t k = 0; k < K; k++) q[k] += e[k];
        bias += a->c[i];
    }
    return bias;
}

/* Q and b of every item from the current parameters. */
static void derive(hyb_model *a)
{
    for (uint32_t i = 0; i < a->base.n_items; i++) a->b[i] = item_vec(a, i, 1, a->Q + (size_t)i * a->K);
}

/* ============================================================================
 * Adagrad steps
 * ========================================================================== */

/* Adagrad accumulators of the fit, one per parameter. */
typedef struct accum {
    float *P, *E, *W, *c, *d, *X;
} accum;

/* w [K] -= lr g / sqrt(G) with g = scale * dir + reg w, G += g^2 first. */
static inline void ada_vec(float *w, float *G, const float *dir, float scale, float reg, float lr, uint32_t K)
{
    for (uint32_t k = 0; k < K; k++) {
        const float g = scale * dir[k] + reg * w[k];
        G[k] += g * g;
        w[k] -= lr * g / sqrtf(G[k]);
    }
}

static inline void ada_one(float *w, float *G, float g, float reg, float lr)
{
    g += reg * *w;
    *G += g * g;
    *w -= lr * g / sqrtf(*G);
}

/* The item side of a step: dL/dq_i = coef * p, dL/db_i = coef, spread over
 * the id part (use_id) and the features (each 1/|F(i)|). */
static void item_update(hyb_model *a, const accum *G, uint32_t i, int use_id, const float *p, float coef, float lr,
                        float reg)
{
    const uint32_t K = a->K;
    const uint64_t f0 = a->feat_off[i], nf = a->feat_off[i + 1] - f0;
    if (use_id) {
        ada_vec(a->E + (size_t)i * K, G->E + (size_t)i * K, p, coef, reg, lr, K);
        ada_one(a->c + i, G->c + i, coef, reg, lr);
    }
    if (nf) {
        const float cf = coef / (float)nf;
        for (uint64_t e = f0; e < f0 + nf; e++) {
            const uint32_t f = a->feat[e];
            ada_vec(a->W + (size_t)f * K, G->W + (size_t)f * K, p, cf, reg, lr, K);
            ada_one(a->d + f, G->d + f, cf, reg, lr);
        }
    }
}

/* One step on the local loss coef * (s_uj - s_ui) (+ L2): p [K] is P's row
 * u, pold [K] scratch, qi, qj [K] the items' vectors as scored. */
/* p_u (id + mean of its context rows) into buf, or the id row itself when
 * the user has no features */
static const float *user_vec(const hyb_model *a, uint32_t u, float *buf)
{
    const uint32_t K = a->K;
    const float *x = a->P + (size_t)u * K;
    if (!a->uf_off || a->uf_off[u + 1] == a->uf_off[u]) return x;
    const uint64_t lo = a->uf_off[u], hi = a->uf_off[u + 1];
    const float inv = 1.0f / (float)(hi - lo);
    memcpy(buf, x, (size_t)K * sizeof *buf);
    for (uint64_t g = lo; g < hi; g++) {
        const float *z = a->Xc + (size_t)a->uf[g] * K;
        for (uint32_t k = 0; k < K; k++) buf[k] += inv * z[k];
    }
    return buf;
}

/* one step on a pair: p is u's vector as scored (user_vec) */
static void pair_update(hyb_model *a, const accum *G, uint32_t u, const float *p, uint32_t i, int id_i, uint32_t j,
                        int id_j, const float *qi, const float *qj, float *pold, float coef, float lr, float reg)
{
    const uint32_t K = a->K;
    memcpy(pold, p, (size_t)K * sizeof *p);
    float *x = a->P + (size_t)u * K, *gp = G->P + (size_t)u * K;
    for (uint32_t k = 0; k < K; k++) {
        const float g = coef * (qj[k] - qi[k]) + reg * x[k];
        gp[k] += g * g;
        x[k] -= lr * g / sqrtf(gp[k]);
    }
    if (a->uf_off && a->uf_off[u + 1] > a->uf_off[u]) { /* d p_u / d z_g = 1 / |G(u)| */
        const float inv = 1.0f / (float)(a->uf_off[u + 1] - a->uf_off[u]);
        for (uint64_t h = a->uf_off[u]; h < a->uf_off[u + 1]; h++) {
            float *z = a->Xc + (size_t)a->uf[h] * K, *gz = G->X + (size_t)a->uf[h] * K;
            for (uint32_t k = 0; k < K; k++) {
                const float g = inv * coef * (qj[k] - qi[k]) + reg * z[k];
                gz[k] += g * g;
                z[k] -= lr * g / sqrtf(gz[k]);
            }
        }
    }
    item_update(a, G, i, id_i, pold, -coef, lr, reg);
    item_update(a, G, j, id_j, pold, coef, lr, reg);
}

/* u's context rows from the snapshot's user features, deduplicated */
static int user_features(hyb_model *a, const shelf_snapshot *s)
{
    const uint32_t U = s->n_users;
    if (!s->n_user_feats || !s->ufeat_off || a->X == 0) return 0;
    uint32_t *row = malloc((size_t)s->n_user_feats * sizeof *row);
    a->uf_off = malloc(((size_t)U + 1) * sizeof *a->uf_off);
    a->uf = malloc((s->ufeat_off[U] ? s->ufeat_off[U] : 1) * sizeof *a->uf);
    if (!row || !a->uf_off || !a->uf) {
        free(row);
        return SHELF_ENOMEM;
    }
    for (uint32_t f = 0; f < s->n_user_feats; f++) {
        const char *name = s->ufeat_name + s->ufeat_name_off[f];
        row[f] = shelf_ctx_hash(name, strlen(name)) % a->X;
    }
    uint64_t k = 0;
    for (uint32_t u = 0; u < U; u++) {
        a->uf_off[u] = k;
        for (uint64_t e = s->ufeat_off[u]; e < s->ufeat_off[u + 1]; e++) {
            uint32_t r = row[s->ufeat_col[e]];
            int seen = 0;
            for (uint64_t h = a->uf_off[u]; h < k && !seen; h++) seen = a->uf[h] == r;
            if (!seen) a->uf[k++] = r;
        }
    }
    a->uf_off[U] = k;
    free(row);
    return 0;
}

/* ============================================================================
 * Fit
 * ========================================================================== */

/* the hyperparameters into a (checked); fails with the model's message */
static int hyb_configure(hyb_model *a, const shelf_snapshot *s, const shelf_opts *o)
{
    shelf_model *m = &a->base;
    const uint32_t U = s->n_users, I = s->n_items;
    const char *loss = shelf_config_str(o, "hyb-loss");
    const uint64_t n_pos = shelf__positives_count(s);
    if (U == 0 || I < 2 || n_pos == 0)
        return shelf__model_fail(m, SHELF_EINVAL, "nothing to learn (%u users, %u items, %llu positive pairs)", U,
                                 I, (unsigned long long)n_pos);
    if (loss && strcmp(loss, "warp") != 0 && strcmp(loss, "bpr") != 0)
        return shelf__model_fail(m, SHELF_EINVAL, "hyb-loss '%s' is not one of warp, bpr", loss);
    const double idd = shelf_config_double(o, "hyb-id-dropout");
    if (!(idd >= 0 && idd < 1))
        return shelf__model_fail(m, SHELF_EINVAL, "hyb-id-dropout %g is not in [0, 1)", idd);

    free_arrays(a);
    m->fitted = 0;
    m->n_users = U;
    m->n_items = I;
    a->K = (uint32_t)shelf_config_int(o, "hyb-factors");
    a->A = s->n_attrs;
    a->NC = s->item_category ? s->n_categories : 0;
    a->NB = s->item_brand ? s->n_brands : 0;
    a->NP = s->item_price_bucket ? s->n_price_buckets : 0;
    a->TB = (uint32_t)shelf_config_int(o, "hyb-text-buckets");
    a->text_max = (uint32_t)shelf_config_int(o, "hyb-text-max");
    a->X = (uint32_t)shelf_config_int(o, "hyb-ctx-buckets");
    const uint64_t F64 = (uint64_t)a->A + a->NC + a->NB + a->NP + a->TB;
    if (F64 >= UINT32_MAX)
        return shelf__model_fail(m, SHELF_EINVAL, "too many feature rows (%llu)", (unsigned long long)F64);
    a->F = F64 ? (uint32_t)F64 : 1;
    a->epochs = (int)shelf_config_int(o, "hyb-epochs");
    a->max_sampled = (int)shelf_config_int(o, "hyb-max-sampled");
    a->lr = shelf_config_double(o, "hyb-lr");
    a->reg = shelf_config_double(o, "hyb-reg");
    a->id_dropout = idd;
    a->freeze_cold = shelf_config_bool(o, "hyb-freeze-cold");
    a->cold_neg = shelf_config_bool(o, "hyb-cold-neg");
    a->loss = loss && strcmp(loss, "bpr") == 0 ? LOSS_BPR : LOSS_WARP;
    a->seed = (uint64_t)shelf_config_int(o, "seed");
    return 0;
}

/* the training pairs and the sampling tables of one fit */
typedef struct sgd_data {
    uint64_t n_pos;
    uint64_t *off;  /* [U+1] each user's positives in col */
    uint32_t *col;  /* [n_pos] */
    uint32_t *pu;   /* [n_pos] the user of each positive */
    uint8_t *warm;  /* [I] items with a positive */
    uint32_t *negs; /* [I] the items negatives are drawn from */
    uint32_t n_neg;
} sgd_data;

static void sgd_data_free(sgd_data *d)
{
    free(d->off), free(d->col), free(d->pu), free(d->warm), free(d->negs);
}

static void accum_free(accum *G)
{
    free(G->P), free(G->E), free(G->W), free(G->c), free(G->d), free(G->X);
}

/* random starting factors (features, users, item ids; a cold item's id row
 * stays 0 under freeze-cold, its draws still taken so the stream does not
 * shift) and AdaGrad accumulators of 1 */
static void hyb_init(hyb_model *a, accum *G, const uint8_t *warm, uint32_t U)
{
    const uint32_t K = a->K, I = a->base.n_items, F = a->F;
    for (size_t x = 0; x < (size_t)U * K; x++) G->P[x] = 1.0f;
    for (size_t x = 0; x < (size_t)I * K; x++) G->E[x] = 1.0f;
    for (size_t x = 0; x < (size_t)F * K; x++) G->W[x] = 1.0f;
    for (uint32_t x = 0; x < I; x++) G->c[x] = 1.0f;
    for (uint32_t x = 0; x < F; x++) G->d[x] = 1.0f;
    for (size_t x = 0; x < (size_t)a->X * K; x++) G->X[x] = 1.0f;
    shelf_rng rng;
    shelf_rng_seed(&rng, a->seed);
    const double sd = INIT_STD / sqrt((double)K);
    for (size_t x = 0; x < (size_t)U * K; x++) a->P[x] = (float)(shelf_rng_normal(&rng) * sd);
    for (size_t x = 0; x < (size_t)F * K; x++) a->W[x] = (float)(shelf_rng_normal(&rng) * sd);
    for (uint32_t i = 0; i < I; i++)
        for (uint32_t x = 0; x < K; x++) {
            float v = (float)(shelf_rng_normal(&rng) * sd * ID_INIT_SCALE);
            a->E[(size_t)i * K + x] = a->freeze_cold && !warm[i] ? 0.0f : v;
        }
}

/* an item's id is used (1) or dropped (0): frozen cold items never, others
 * with probability id_dropout when they have features */
static int use_id(const hyb_model *a, const uint8_t *warm, uint32_t i, shelf_rng *r)
{
    int id = !(a->freeze_cold && !warm[i]);
    /* the draw is taken for a frozen item too: the stream must not depend on it */
    if (a->id_dropout > 0 && a->feat_off[i + 1] > a->feat_off[i] && shelf_rng_uniform(r) < a->id_dropout) id = 0;
    return id;
}

/* one thread's SGD steps of one epoch: cnt positives drawn with r, each
 * against WARP-sampled or one BPR negative; buf: 4K floats */
static void sgd_steps(hyb_model *a, accum *G, const sgd_data *d, uint64_t cnt, shelf_rng *r, float *buf)
{
    const uint32_t K = a->K;
    const float lr = (float)a->lr, reg = (float)a->reg;
    float *qi = buf, *qj = buf + K, *pold = buf + 2 * (size_t)K, *pe = buf + 3 * (size_t)K;
    for (uint64_t n = 0; n < cnt; n++) {
        const uint64_t e = shelf_rng_u64(r) % d->n_pos;
        const uint32_t u = d->pu[e], i = d->col[e];
        const uint32_t *row = d->col + d->off[u];
        const uint64_t len = d->off[u + 1] - d->off[u];
        const float *p = user_vec(a, u, pe);
        const int id_i = use_id(a, d->warm, i, r);
        const float si = item_vec(a, i, id_i, qi) + dot(p, qi, K);
        if (a->loss == LOSS_WARP) {
            for (int tr = 1; tr <= a->max_sampled; tr++) {
                const uint32_t j = d->negs[shelf_rng_below(r, d->n_neg)];
                if (contains(row, len, j)) continue;
                const int id_j = use_id(a, d->warm, j, r);
                const float sj = item_vec(a, j, id_j, qj) + dot(p, qj, K);
                if (sj > si - MARGIN) {
                    const double rank = floor((double)(d->n_neg - 1) / tr);
                    const float coef = (float)log(rank > 1.0 ? rank : 1.0);
                    if (coef > 0.0f) pair_update(a, G, u, p, i, id_i, j, id_j, qi, qj, pold, coef, lr, reg);
                    break;
                }
            }
        } else {
            uint32_t j = SHELF_NONE;
            for (int tr = 0; tr < NEG_TRIES && j == SHELF_NONE; tr++) {
                uint32_t x = d->negs[shelf_rng_below(r, d->n_neg)];
                if (!contains(row, len, x)) j = x;
            }
            if (j == SHELF_NONE) continue;
            const int id_j = use_id(a, d->warm, j, r);
            const float sj = item_vec(a, j, id_j, qj) + dot(p, qj, K);
            /* d/ds_uj of -ln sigmoid(s_ui - s_uj) = sigmoid(s_uj - s_ui) */
            const float coef = 1.0f / (1.0f + expf(si - sj));
            pair_update(a, G, u, p, i, id_i, j, id_j, qi, qj, pold, coef, lr, reg);
        }
    }
}

/* the epochs, T threads each on its share of the positives (Hogwild);
 * 0 or SHELF_ENOMEM */
static int hyb_sgd(hyb_model *a, accum *G, const sgd_data *d, int T, shelf_progress *pr)
{
    const int epochs = a->epochs;
    const uint64_t n_pos = d->n_pos, seed = a->seed;
    int fail = 0;
#pragma omp parallel num_threads(T)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        int t = 0, nt = 1;
#endif
        shelf_rng r;
        shelf_rng_split(&r, seed, (uint64_t)t + 1);
        float *buf = malloc((size_t)4 * a->K * sizeof *buf);
        if (!buf) {
#pragma omp atomic write
            fail = 1;
        }
        const uint64_t cnt = n_pos * (uint64_t)(t + 1) / (uint64_t)nt - n_pos * (uint64_t)t / (uint64_t)nt;
        for (int ep = 0; ep < epochs; ep++) {
            if (buf) sgd_steps(a, G, d, cnt, &r, buf);
#pragma omp barrier
#pragma omp master
            {
                char note[64];
                snprintf(note, sizeof note, "epoch %d/%d", ep + 1, epochs);
                shelf_progress_update(pr, (uint64_t)ep + 1, note);
            }
        }
        free(buf);
    }
    return fail ? SHELF_ENOMEM : 0;
}

/* fold each user's feature part into its row (scoring reads P alone), then
 * drop the user features; 0 or SHELF_ENOMEM */
static int fold_user_features(hyb_model *a, uint32_t U)
{
    int rc = 0;
    if (a->uf_off) {
        const uint32_t K = a->K;
        float *tmp = malloc((size_t)K * sizeof *tmp);
        for (uint32_t u = 0; tmp && u < U; u++) {
            const float *p = user_vec(a, u, tmp);
            if (p == tmp) memcpy(a->P + (size_t)u * K, tmp, (size_t)K * sizeof *tmp);
        }
        if (!tmp) rc = SHELF_ENOMEM;
        free(tmp);
    }
    free(a->uf_off);
    free(a->uf);
    a->uf_off = NULL;
    a->uf = NULL;
    return rc;
}

static int hyb_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    hyb_model *a = (hyb_model *)m;
    int rc = hyb_configure(a, s, o);
    if (rc) return rc;
    const uint32_t U = s->n_users, I = s->n_items, K = a->K, F = a->F;
    sgd_data d = {.n_pos = shelf__positives_count(s)};
    d.off = malloc(((size_t)U + 1) * sizeof *d.off);
    d.col = malloc(d.n_pos * sizeof *d.col);
    d.pu = malloc(d.n_pos * sizeof *d.pu);
    d.warm = calloc(I, 1);
    d.negs = malloc((size_t)I * sizeof *d.negs);
    accum G = {0};
    G.P = malloc((size_t)U * K * sizeof *G.P);
    G.E = malloc((size_t)I * K * sizeof *G.E);
    G.W = malloc((size_t)F * K * sizeof *G.W);
    G.c = malloc((size_t)I * sizeof *G.c);
    G.d = malloc((size_t)F * sizeof *G.d);
    G.X = malloc(((size_t)a->X * K > 0 ? (size_t)a->X * K : 1) * sizeof *G.X);
    a->P = malloc((size_t)U * K * sizeof *a->P);
    a->E = calloc((size_t)I * K, sizeof *a->E);
    a->W = malloc((size_t)F * K * sizeof *a->W);
    a->c = calloc(I, sizeof *a->c);
    a->d = calloc(F, sizeof *a->d);
    a->Xc = calloc((size_t)a->X * K, sizeof *a->Xc);
    a->Q = malloc((size_t)I * K * sizeof *a->Q);
    a->b = malloc((size_t)I * sizeof *a->b);
    rc = (!d.off || !d.col || !d.pu || !d.warm || !d.negs || !G.P || !G.E || !G.W || !G.c || !G.d || !G.X || !a->P ||
          !a->E || !a->W || !a->c || !a->d || !a->Xc || !a->Q || !a->b)
             ? SHELF_ENOMEM
             : build_features(a, s);
    if (!rc) rc = user_features(a, s);
    if (rc) {
        sgd_data_free(&d);
        accum_free(&G);
        free_arrays(a);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u users, %u items, %u feature rows, %u factors)",
                                 U, I, F, K);
    }
    shelf__positives_fill(s, d.off, d.col, d.pu);
    for (uint64_t k = 0; k < d.n_pos; k++) d.warm[d.col[k]] = 1;
    for (uint32_t i = 0; i < I; i++)
        if (a->cold_neg || d.warm[i]) d.negs[d.n_neg++] = i;
    hyb_init(a, &G, d.warm, U);
    rc = hyb_sgd(a, &G, &d, shelf__model_threads(o), pr);
    sgd_data_free(&d);
    accum_free(&G);
    int frc = fold_user_features(a, U); /* frees the user features in any case */
    if (!rc) rc = frc;
    if (rc) {
        free_arrays(a);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (thread buffers)");
    }
    derive(a);
    m->fitted = 1;
    return 0;
}

/* ============================================================================
 * Score
 * ========================================================================== */

/* Known user: scores = Q p_u + b. Unknown: x = mean of the history's q_i +
 * mean of the valid context rows, scores = Q x + b; nothing valid: scores =
 * b. Reads only: safe from many threads at once. */
static int hyb_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    const hyb_model *a = (const hyb_model *)m;
    const uint32_t K = a->K, I = m->n_items;
    memcpy(scores, a->b, (size_t)I * sizeof *scores);
    if (q->user != SHELF_NONE) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)I, (int)K, 1.0f, a->Q, (int)K, a->P + (size_t)q->user * K, 1,
                    1.0f, scores, 1);
        return 0;
    }
    const uint32_t n_ctx = q->ctx && a->X ? q->n_ctx : 0;
    if (q->n == 0 && n_ctx == 0) return 0;
    float *x = calloc(K, sizeof *x);
    if (!x) return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory");
    if (q->n) {
        const float inv = 1.0f / (float)q->n;
        for (uint32_t h = 0; h < q->n; h++) {
            const float *qi = a->Q + (size_t)q->items[h] * K;
            for (uint32_t k = 0; k < K; k++) x[k] += inv * qi[k];
        }
    }
    if (n_ctx) {
        const float inv = 1.0f / (float)n_ctx;
        for (uint32_t h = 0; h < n_ctx; h++) {
            const float *xc = a->Xc + (size_t)(q->ctx[h] % a->X) * K;
            for (uint32_t k = 0; k < K; k++) x[k] += inv * xc[k];
        }
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)I, (int)K, 1.0f, a->Q, (int)K, x, 1, 1.0f, scores, 1);
    free(x);
    return 0;
}

/* ============================================================================
 * Save, load
 * ========================================================================== */

static int hyb_save(const shelf_model *m, shelf_bundle_writer *w)
{
    const hyb_model *a = (const hyb_model *)m;
    const uint32_t U = m->n_users, I = m->n_items, K = a->K;
    const uint64_t nfeat = a->feat_off[I];
    const int64_t so[1] = {(int64_t)I + 1}, sf[1] = {(int64_t)(nfeat ? nfeat : 1)};
    const int64_t sp[2] = {U, K}, se[2] = {I, K}, sw[2] = {a->F, K}, sx[2] = {a->X, K};
    const int64_t si[1] = {I}, sd[1] = {a->F};
    /* 8-byte tensors first: the data section stays aligned */
    int rc = shelf_bundle_put(w, "feat_off", SHELF_DT_U64, 1, so, a->feat_off);
    if (!rc) rc = shelf_bundle_put(w, "feat", SHELF_DT_U32, 1, sf, a->feat);
    if (!rc) rc = shelf_bundle_put(w, "user_emb", SHELF_DT_F32, 2, sp, a->P);
    if (!rc) rc = shelf_bundle_put(w, "item_id_emb", SHELF_DT_F32, 2, se, a->E);
    if (!rc) rc = shelf_bundle_put(w, "feature_emb", SHELF_DT_F32, 2, sw, a->W);
    if (!rc) rc = shelf_bundle_put(w, "ctx_emb", SHELF_DT_F32, 2, sx, a->Xc);
    if (!rc) rc = shelf_bundle_put(w, "item_id_bias", SHELF_DT_F32, 1, si, a->c);
    if (!rc) rc = shelf_bundle_put(w, "feature_bias", SHELF_DT_F32, 1, sd, a->d);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-factors", K);
    if (!rc) rc = shelf_bundle_set_num(w, "feature-rows", a->F);
    if (!rc) rc = shelf_bundle_set_num(w, "attr-rows", a->A);
    if (!rc) rc = shelf_bundle_set_num(w, "category-rows", a->NC);
    if (!rc) rc = shelf_bundle_set_num(w, "brand-rows", a->NB);
    if (!rc) rc = shelf_bundle_set_num(w, "price-rows", a->NP);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-text-buckets", a->TB);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-text-max", a->text_max);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-ctx-buckets", a->X);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-epochs", a->epochs);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-lr", a->lr);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-reg", a->reg);
    if (!rc) rc = shelf_bundle_set_str(w, "hyb-loss", a->loss == LOSS_BPR ? "bpr" : "warp");
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-max-sampled", a->max_sampled);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-id-dropout", a->id_dropout);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-freeze-cold", a->freeze_cold);
    if (!rc) rc = shelf_bundle_set_num(w, "hyb-cold-neg", a->cold_neg);
    if (!rc) rc = shelf_bundle_set_num(w, "seed", (double)a->seed);
    return rc;
}

/* The item features' CSR from the bundle, checked (offsets monotone, rows
 * < F). */
static int load_features(shelf_model *m, const shelf_bundle *b)
{
    hyb_model *a = (hyb_model *)m;
    const uint32_t I = m->n_items;
    int nd = 0;
    int64_t sh[4] = {0};
    const void *po = shelf_bundle_get(b, "feat_off", SHELF_DT_U64, &nd, sh);
    if (!po || nd != 1 || sh[0] != (int64_t)I + 1)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor 'feat_off' [%lld]", (long long)I + 1);
    a->feat_off = malloc(((size_t)I + 1) * sizeof *a->feat_off);
    if (!a->feat_off) return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    memcpy(a->feat_off, po, ((size_t)I + 1) * sizeof *a->feat_off);
    const uint64_t n = a->feat_off[I];
    int bad = a->feat_off[0] != 0 || n > (uint64_t)I * ((uint64_t)a->F + 1);
    for (uint32_t i = 0; i < I && !bad; i++) bad = a->feat_off[i + 1] < a->feat_off[i];
    if (bad) return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: tensor 'feat_off' is not a CSR offset array");
    const void *pf = shelf_bundle_get(b, "feat", SHELF_DT_U32, &nd, sh);
    if (!pf || nd != 1 || sh[0] != (int64_t)(n ? n : 1))
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor 'feat' [%llu]", (unsigned long long)n);
    a->feat = malloc((n ? n : 1) * sizeof *a->feat);
    if (!a->feat) return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    memcpy(a->feat, pf, (n ? n : 1) * sizeof *a->feat);
    for (uint64_t e = 0; e < n; e++)
        if (a->feat[e] >= a->F)
            return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: tensor 'feat' holds row %u >= %u feature rows",
                                     a->feat[e], a->F);
    return 0;
}

static int hyb_load(shelf_model *m, const shelf_bundle *b)
{
    hyb_model *a = (hyb_model *)m;
    const double Kd = shelf_bundle_num(b, "hyb-factors", 0), Fd = shelf_bundle_num(b, "feature-rows", 0),
                 Xd = shelf_bundle_num(b, "hyb-ctx-buckets", 0);
    if (!(Kd >= 1 && Kd <= 4096) || !(Fd >= 1 && Fd < 4294967295.0) || !(Xd >= 1 && Xd <= 16777216) ||
        m->n_users == 0 || m->n_items < 2)
        return shelf__model_fail(m, SHELF_ECORRUPT,
                                 "bundle: bad sizes (factors %g, feature rows %g, context rows %g, %u users, %u items)",
                                 Kd, Fd, Xd, m->n_users, m->n_items);
    free_arrays(a);
    a->K = (uint32_t)Kd;
    a->F = (uint32_t)Fd;
    a->X = (uint32_t)Xd;
    const uint32_t U = m->n_users, I = m->n_items, K = a->K;
    a->P = shelf__bundle_take_f32(m, b, "user_emb", U, K);
    if (a->P) a->E = shelf__bundle_take_f32(m, b, "item_id_emb", I, K);
    if (a->E) a->W = shelf__bundle_take_f32(m, b, "feature_emb", a->F, K);
    if (a->W) a->Xc = shelf__bundle_take_f32(m, b, "ctx_emb", a->X, K);
    if (a->Xc) a->c = shelf__bundle_take_f32(m, b, "item_id_bias", I, 0);
    if (a->c) a->d = shelf__bundle_take_f32(m, b, "feature_bias", a->F, 0);
    int rc = a->d ? 0 : m->err.code;
    if (!rc) rc = load_features(m, b);
    if (!rc) {
        a->Q = malloc((size_t)I * K * sizeof *a->Q);
        a->b = malloc((size_t)I * sizeof *a->b);
        if (!a->Q || !a->b) rc = shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    }
    if (rc) {
        free_arrays(a);
        return rc;
    }
    a->A = (uint32_t)shelf_bundle_num(b, "attr-rows", 0);
    a->NC = (uint32_t)shelf_bundle_num(b, "category-rows", 0);
    a->NB = (uint32_t)shelf_bundle_num(b, "brand-rows", 0);
    a->NP = (uint32_t)shelf_bundle_num(b, "price-rows", 0);
    a->TB = (uint32_t)shelf_bundle_num(b, "hyb-text-buckets", 0);
    a->text_max = (uint32_t)shelf_bundle_num(b, "hyb-text-max", 0);
    a->epochs = (int)shelf_bundle_num(b, "hyb-epochs", 0);
    a->lr = shelf_bundle_num(b, "hyb-lr", 0);
    a->reg = shelf_bundle_num(b, "hyb-reg", 0);
    const char *loss = shelf_bundle_str(b, "hyb-loss");
    a->loss = loss && strcmp(loss, "bpr") == 0 ? LOSS_BPR : LOSS_WARP;
    a->max_sampled = (int)shelf_bundle_num(b, "hyb-max-sampled", 0);
    a->id_dropout = shelf_bundle_num(b, "hyb-id-dropout", 0);
    a->freeze_cold = shelf_bundle_num(b, "hyb-freeze-cold", 0) != 0;
    a->cold_neg = shelf_bundle_num(b, "hyb-cold-neg", 1) != 0;
    a->seed = (uint64_t)shelf_bundle_num(b, "seed", 0);
    derive(a);
    m->fitted = 1;
    return 0;
}

/* the vtable and what registry.c needs to make one (models_int.h) */
SHELF__MODEL_KIND(hybrid, hyb, "hybrid", SHELF_CAP_SIMILAR | SHELF_CAP_CONTEXT | SHELF_CAP_NEEDS_HISTORY,
                  /* observe */ NULL, /* explain */ NULL, /* predict */ NULL, SHELF__NO_SESSION);
