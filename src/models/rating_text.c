/* rating_text.c: a text-aware explicit-rating model ("rating-text"): biased
 * matrix factorisation whose item side also hears the item's words and
 * attributes, so that items with few (or no) ratings borrow strength from
 * items with similar text. Models room.
 *
 * Tokens. T(i) = the item's attribute ids (snapshot attr_off/attr_col, one
 * row each) followed by the distinct words of its text (snapshot item_text:
 * runs of ASCII letters and digits, lower-cased, and bytes >= 0x80 so that
 * UTF-8 words stay whole; everything else separates), each hashed with
 * shelf_hash64 into one of B = rtext-buckets rows. At most rtext-max-tokens
 * tokens per item (attributes first, then words in text order). Rows of the
 * token tables: [0, B) words, [B, B + n_attrs) attributes.
 *
 * Model:
 *   z_i    = q_i + n_i sum_{t in T(i)} w_t           n_i = |T(i)|^-1/2 (0 if empty)
 *   beta_i = b_i + n_i sum_{t in T(i)} c_t
 *   r^_ui  = mu + b_u + beta_i + p_u . z_i
 * clipped at prediction time to the rating scale [min, max] seen in
 * training. Objective, SGD on squared error with one L2 weight per group:
 *   sum (r_ui - r^_ui)^2 + reg |p_u|^2 + reg_bias b_u^2
 *                       + reg_item (|q_i|^2 + b_i^2) + reg_text (|w_t|^2 + |c_t|^2)
 * (each term applied at every step that touches the parameter, as in
 * rating-mf). reg_item is the weight of the item's own part, its deviation
 * from what its tokens say: the larger, the more an item leans on its text.
 * One pass over the ratings per epoch in a seeded shuffled order; learning
 * rates lr (p, q), lr-bias (b), lr-text (w, c) decay by
 * lr-decay per epoch. Single-threaded: reproducible bit for bit.
 *
 * Cold items: an item with text but no ratings keeps b_i = 0 and q_i = 0,
 * so it predicts mu + b_u + n_i sum c_t + p_u . n_i sum w_t: the text part
 * learned from the rated items that share its tokens. An unknown user
 * (SHELF_NONE) gets mu + beta_i (no b_u, no p_u). A query history is not
 * used.
 *
 * Defaults (config.c, rtext-* rows) were chosen on validation splits carved
 * from ML100K training data only (a seeded random 20% of u1.base and of
 * u3.base, `shelf eval --protocol ratings-80-20 --data u1.base.xz --format
 * ml100k`), never on the u*.test folds: a grid over reg-text {0.001, 0.003,
 * 0.01, 0.02}, reg-item {0.05, 0.07, 0.1, 0.2}, reg {0.05 .. 0.2}, lr-text
 * {0.003, 0.01, 0.02}, factors {50, 100, 200}; the SGD schedule (200 factors,
 * 60 epochs, lr 0.02, reg-bias 0.05, init-std 0.01) is rating-mf's. The
 * per-step L2 of the token rows must be small (0.01): a frequent token is
 * touched by thousands of steps per epoch. Validation RMSE (u1 / u3 80-20):
 * 0.9093 / 0.9119, rating-mf 0.9162 / 0.9189.
 *
 * Cost: O(|T(i)| K) per step against rating-mf's O(K), about 5x its fit time
 * on ML-100k (~7 tokens per movie: title words, year, genres).
 *
 * Dimension letters: U users, I items, K factors, B word buckets, A
 * attributes, R = B + A token rows, n ratings. */
#include "models/rating_int.h"
#include "core/mem_int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* rating-text's rows of the configuration table: its hyperparameters (config.c
 * joins every model's rows to the common ones) */
static const shelf_cfg_def opts[] = {
#include "models/opts/rating_text.def"
};

#define RTEXT_HASH_SEED 0x7274657874ull /* "rtext": fixed, part of the model */

typedef struct rtext_model {
    shelf_model base;
    uint32_t K, B, A, R; /* factors, word buckets, attributes, token rows */
    uint32_t max_tokens;
    int use_attrs;
    float *P;         /* [U,K] user factors */
    float *Q;         /* [I,K] item factors (own part) */
    float *W;         /* [R,K] token factors */
    float *bu;        /* [U] user biases */
    float *bi;        /* [I] item biases (own part) */
    float *C;         /* [R] token biases */
    uint64_t *tok_off; /* [I+1] item i's tokens are tok[tok_off[i] .. tok_off[i+1]) */
    uint32_t *tok;     /* [tok_off[I]] token rows < R */
    float *Z;         /* [I,K] z_i of the final parameters (derived) */
    float *beta;      /* [I] beta_i of the final parameters (derived) */
    float glob[3];    /* mu, rating min, rating max */
    int epochs;
    double lr, lr_bias, lr_text, lr_decay, reg, reg_bias, reg_text, reg_item, init_std;
    uint64_t seed;
} rtext_model;

/* the hyperparameters: read by fit from the options, kept in the manifest
 * for save and load (the sizes K, B, A and max_tokens are checked by load
 * before these are read) */
#define NUM(key, field, type) {key, offsetof(rtext_model, field), type, 0}
static const shelf__bundle_num rtext_nums[] = {
    NUM("rtext-factors", K, 'u'),          NUM("rtext-buckets", B, 'u'),
    NUM("rtext-attr-rows", A, 'u'),        {"rtext-attrs", offsetof(rtext_model, use_attrs), 'b', 1},
    NUM("rtext-max-tokens", max_tokens, 'u'), NUM("rtext-epochs", epochs, 'i'),
    NUM("rtext-lr", lr, 'd'),              NUM("rtext-lr-bias", lr_bias, 'd'),
    NUM("rtext-lr-text", lr_text, 'd'),    {"rtext-lr-decay", offsetof(rtext_model, lr_decay), 'd', 1},
    NUM("rtext-reg", reg, 'd'),            NUM("rtext-reg-bias", reg_bias, 'd'),
    NUM("rtext-reg-text", reg_text, 'd'),  NUM("rtext-reg-item", reg_item, 'd'),
    NUM("rtext-init-std", init_std, 'd'),  NUM("seed", seed, 'U'),
};
#undef NUM

/* frees (and clears) the tensors (the fit's release) */
static void free_arrays(shelf_model *m)
{
    rtext_model *a = (rtext_model *)m;
    SHELF__FREE_ALL(a->P, a->Q, a->W, a->bu, a->bi, a->C, a->tok_off, a->tok, a->Z, a->beta);
    a->P = a->Q = a->W = a->bu = a->bi = a->C = a->Z = a->beta = NULL;
    a->tok_off = NULL;
    a->tok = NULL;
}

static void rtext_free(shelf_model *m)
{
    rtext_model *a = (rtext_model *)m;
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

static inline float inv_sqrt_count(uint64_t n)
{
    return n ? (float)(1.0 / sqrt((double)n)) : 0.0f;
}

/* ============================================================================
 * Tokens
 * ========================================================================== */

static inline int word_byte(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch >= 0x80;
}

/* Appends row to out[0..*n) unless present or full (cap). Linear scan: cap
 * is small. */
static inline void add_token(uint32_t *out, uint32_t *n, uint32_t cap, uint32_t row)
{
    if (*n >= cap) return;
    for (uint32_t k = 0; k < *n; k++)
        if (out[k] == row) return;
    out[(*n)++] = row;
}

/* T(i) of one item into out[0..cap): its attribute rows (B + attr), then the
 * word buckets of text in order, distinct. Returns the count. */
static uint32_t item_tokens(const char *text, const uint32_t *attrs, uint64_t n_attrs, uint32_t B, uint32_t cap,
                            uint32_t *out)
{
    uint32_t n = 0;
    for (uint64_t k = 0; k < n_attrs; k++) add_token(out, &n, cap, B + attrs[k]);
    char word[64];
    const unsigned char *p = (const unsigned char *)text;
    while (*p && n < cap) {
        while (*p && !word_byte(*p)) p++;
        size_t len = 0;
        while (*p && word_byte(*p)) {
            /* words past 64 bytes are cut there (junk, URLs) */
            if (len < sizeof word) word[len++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
            p++;
        }
        if (len == 0) break;
        uint64_t h = shelf_hash64(word, len, RTEXT_HASH_SEED);
        add_token(out, &n, cap, (uint32_t)(h % B));
    }
    return n;
}

/* Builds a->tok_off/tok from the snapshot: O(text bytes + attribute links). */
static int build_tokens(rtext_model *a, const shelf_snapshot *s)
{
    const uint32_t I = s->n_items, cap = a->max_tokens;
    uint32_t *buf = malloc((size_t)cap * sizeof *buf);
    a->tok_off = malloc(((size_t)I + 1) * sizeof *a->tok_off);
    uint64_t tok_cap = (uint64_t)I * 4 + 16, n = 0;
    a->tok = malloc((size_t)tok_cap * sizeof *a->tok);
    if (!buf || !a->tok_off || !a->tok) {
        free(buf);
        return SHELF_ENOMEM;
    }
    a->tok_off[0] = 0;
    for (uint32_t i = 0; i < I; i++) {
        const char *text = s->item_text ? s->item_text + s->item_text_off[i] : "";
        const uint32_t *attrs = a->use_attrs ? s->attr_col + s->attr_off[i] : NULL;
        uint64_t na = a->use_attrs ? s->attr_off[i + 1] - s->attr_off[i] : 0;
        uint32_t c = item_tokens(text, attrs, na, a->B, cap, buf);
        if (n + c > tok_cap) {
            while (n + c > tok_cap) tok_cap *= 2;
            uint32_t *t = realloc(a->tok, (size_t)tok_cap * sizeof *t);
            if (!t) {
                free(buf);
                return SHELF_ENOMEM;
            }
            a->tok = t;
        }
        memcpy(a->tok + n, buf, (size_t)c * sizeof *buf);
        n += c;
        a->tok_off[i + 1] = n;
    }
    free(buf);
    return 0;
}

/* ============================================================================
 * Forward pieces
 * ========================================================================== */

/* z [K] = q_i + n_i sum_t w_t and returns beta_i = b_i + n_i sum_t c_t. */
static float item_side(const rtext_model *a, uint32_t i, float *z)
{
    const uint32_t K = a->K;
    const uint64_t t0 = a->tok_off[i], t1 = a->tok_off[i + 1];
    const float ni = inv_sqrt_count(t1 - t0);
    const float *q = a->Q + (size_t)i * K;
    for (uint32_t k = 0; k < K; k++) z[k] = 0.0f;
    float cb = 0.0f;
    for (uint64_t t = t0; t < t1; t++) {
        const float *w = a->W + (size_t)a->tok[t] * K;
        for (uint32_t k = 0; k < K; k++) z[k] += w[k];
        cb += a->C[a->tok[t]];
    }
    for (uint32_t k = 0; k < K; k++) z[k] = q[k] + ni * z[k];
    return a->bi[i] + ni * cb;
}

/* Z and beta of every item from the parameters (end of fit, load). */
static void derive(rtext_model *a, uint32_t I)
{
    for (uint32_t i = 0; i < I; i++) a->beta[i] = item_side(a, i, a->Z + (size_t)i * a->K);
}

/* Unclipped mu + beta_i (+ b_u + p_u . z_i for a known user). */
static inline float raw_predict(const rtext_model *a, uint32_t u, uint32_t i)
{
    float s = a->glob[0] + a->beta[i];
    if (u != SHELF_NONE) s += a->bu[u] + dot(a->P + (size_t)u * a->K, a->Z + (size_t)i * a->K, a->K);
    return s;
}

/* ============================================================================
 * Fit
 * ========================================================================== */

typedef struct rtext_rates {
    float lr, lrb, lrt, reg, regb, regt, regi;
} rtext_rates;

/* One SGD step on rating r of (u, i); returns the error before the step.
 * Shapes: p, q, z, dp scratch [K]; w rows [K]. */
static float sgd_step(rtext_model *a, uint32_t u, uint32_t i, float r, const rtext_rates *h, float *z)
{
    const uint32_t K = a->K;
    const uint64_t t0 = a->tok_off[i], t1 = a->tok_off[i + 1];
    const float ni = inv_sqrt_count(t1 - t0);
    float *p = a->P + (size_t)u * K, *q = a->Q + (size_t)i * K;
    const float beta = item_side(a, i, z);
    const float e = r - (a->glob[0] + a->bu[u] + beta + dot(p, z, K));
    a->bu[u] += h->lrb * (e - h->regb * a->bu[u]);
    a->bi[i] += h->lrb * (e - h->regi * a->bi[i]);
    const float gt = e * ni; /* d r^ / d c_t = n_i; d r^ / d w_t = n_i p_u */
    for (uint64_t t = t0; t < t1; t++) {
        const uint32_t row = a->tok[t];
        float *w = a->W + (size_t)row * K;
        a->C[row] += h->lrt * (gt - h->regt * a->C[row]);
        for (uint32_t k = 0; k < K; k++) w[k] += h->lrt * (gt * p[k] - h->regt * w[k]);
    }
    for (uint32_t k = 0; k < K; k++) {
        float pk = p[k], qk = q[k];
        p[k] += h->lr * (e * z[k] - h->reg * pk);
        q[k] += h->lr * (e * pk - h->regi * qk);
    }
    return e;
}

static int rtext_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    rtext_model *a = (rtext_model *)m;
    const uint32_t U = s->n_users, I = s->n_items;
    shelf__ratings Rt;
    int rc = shelf__rating_fit_begin(m, s, o, rtext_nums, sizeof rtext_nums / sizeof rtext_nums[0], free_arrays,
                                     a->glob, &Rt);
    if (rc) return rc;
    a->A = a->use_attrs ? s->n_attrs : 0; /* "rtext-attr-rows" is no option */
    if ((uint64_t)a->B + a->A > UINT32_MAX / 2) {
        shelf__ratings_free(&Rt);
        return shelf__model_fail(m, SHELF_EINVAL, "too many token rows (%u buckets + %u attributes)", a->B, a->A);
    }
    a->R = a->B + a->A;
    const uint32_t K = a->K, R = a->R;
    const uint32_t n = (uint32_t)Rt.n;

    a->P = malloc((size_t)U * K * sizeof *a->P + 1);
    a->Q = malloc((size_t)I * K * sizeof *a->Q + 1);
    a->W = calloc((size_t)R * K + 1, sizeof *a->W);
    a->bu = calloc((size_t)U + 1, sizeof *a->bu);
    a->bi = calloc((size_t)I + 1, sizeof *a->bi);
    a->C = calloc((size_t)R + 1, sizeof *a->C);
    a->Z = malloc((size_t)I * K * sizeof *a->Z + 1);
    a->beta = malloc(((size_t)I + 1) * sizeof *a->beta);
    uint32_t *idx = malloc((size_t)n * sizeof *idx);
    uint8_t *item_seen = calloc((size_t)I + 1, 1);
    float *z = malloc((size_t)K * sizeof *z);
    if (!a->P || !a->Q || !a->W || !a->bu || !a->bi || !a->C || !a->Z || !a->beta || !idx || !item_seen || !z ||
        build_tokens(a, s)) {
        free(idx);
        free(item_seen);
        free(z);
        free_arrays(m);
        shelf__ratings_free(&Rt);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u users, %u items, %u token rows, %u factors)", U,
                                 I, R, K);
    }
    /* p and q start normal(0, init_std); the token factors start at zero, so
     * the text part grows only as far as the ratings pull it. */
    shelf_rng rng;
    shelf_rng_seed(&rng, a->seed);
    for (size_t k = 0; k < (size_t)U * K; k++) a->P[k] = (float)(shelf_rng_normal(&rng) * a->init_std);
    for (size_t k = 0; k < (size_t)I * K; k++) a->Q[k] = (float)(shelf_rng_normal(&rng) * a->init_std);
    for (uint32_t e = 0; e < n; e++) idx[e] = e;

    char note[96];
    for (int ep = 0; ep < a->epochs && !rc; ep++) {
        const double decay = pow(a->lr_decay, ep);
        const rtext_rates h = {.lr = (float)(a->lr * decay),
                               .lrb = (float)(a->lr_bias * decay),
                               .lrt = (float)(a->lr_text * decay),
                               .reg = (float)a->reg,
                               .regb = (float)a->reg_bias,
                               .regt = (float)a->reg_text,
                               .regi = (float)a->reg_item};
        shelf__shuffle_u32(idx, n, &rng);
        double se = 0;
        for (uint32_t t = 0; t < n; t++) {
            const uint32_t e = idx[t];
            const float err = sgd_step(a, Rt.user[e], Rt.item[e], Rt.value[e], &h, z);
            se += (double)err * err;
        }
        if (!isfinite(se)) {
            rc = shelf__model_fail(m, SHELF_ERANGE,
                                   "training diverged in epoch %d (lower rtext-lr %g, rtext-lr-bias %g or "
                                   "rtext-lr-text %g)",
                                   ep + 1, a->lr, a->lr_bias, a->lr_text);
            break;
        }
        snprintf(note, sizeof note, "epoch %d/%d train rmse %.4f", ep + 1, a->epochs, sqrt(se / n));
        shelf_progress_update(pr, (uint64_t)ep + 1, note);
    }
    /* users and items without ratings are non-personal (items keep the
     * text part) */
    shelf__ratings_zero_unrated(&Rt, item_seen, a->P, a->Q, U, I, K);
    free(idx);
    free(item_seen);
    free(z);
    shelf__ratings_free(&Rt);
    if (!rc) derive(a, I);
    return shelf__rating_fit_end(m, rc, U, I, free_arrays);
}

/* ============================================================================
 * Predict, score
 * ========================================================================== */

static int rtext_predict(const shelf_model *m, uint32_t user, uint32_t item, float *out, shelf_err *err)
{
    const rtext_model *a = (const rtext_model *)m;
    *out = shelf__clip(raw_predict(a, user, item), a->glob[1], a->glob[2]);
    return 0;
}

/* scores[i] = the clipped predicted rating of every item for q->user
 * (mu + beta_i for SHELF_NONE; the history is not used). Reads only: safe
 * from many threads. */
static int rtext_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    return shelf__rating_score_all(m, q, scores, err);
}

/* ============================================================================
 * Save, load
 * ========================================================================== */

/* The bundle keeps the parameters and the items' token lists (not Z and
 * beta, which load derives exactly as fit did). */
static int rtext_save(const shelf_model *m, shelf_bundle_writer *w)
{
    const rtext_model *a = (const rtext_model *)m;
    const uint32_t I = m->n_items;
    const int64_t sp[2] = {m->n_users, a->K}, sq[2] = {I, a->K}, sw[2] = {a->R, a->K};
    const int64_t su[1] = {m->n_users}, si[1] = {I}, sc[1] = {a->R}, sg[1] = {3};
    const int64_t so[1] = {(int64_t)I + 1}, st[1] = {(int64_t)a->tok_off[I]};
    int rc = shelf_bundle_put(w, "user_factors", SHELF_DT_F32, 2, sp, a->P);
    if (!rc) rc = shelf_bundle_put(w, "item_factors", SHELF_DT_F32, 2, sq, a->Q);
    if (!rc) rc = shelf_bundle_put(w, "token_factors", SHELF_DT_F32, 2, sw, a->W);
    if (!rc) rc = shelf_bundle_put(w, "user_bias", SHELF_DT_F32, 1, su, a->bu);
    if (!rc) rc = shelf_bundle_put(w, "item_bias", SHELF_DT_F32, 1, si, a->bi);
    if (!rc) rc = shelf_bundle_put(w, "token_bias", SHELF_DT_F32, 1, sc, a->C);
    if (!rc) rc = shelf_bundle_put(w, "globals", SHELF_DT_F32, 1, sg, a->glob);
    if (!rc) rc = shelf_bundle_put(w, "tok_off", SHELF_DT_U64, 1, so, a->tok_off);
    if (!rc && st[0]) rc = shelf_bundle_put(w, "tok", SHELF_DT_U32, 1, st, a->tok);
    if (!rc) rc = shelf__bundle_nums_put(w, a, rtext_nums, sizeof rtext_nums / sizeof rtext_nums[0]);
    return rc;
}

/* The token lists: offsets that start at 0 and never decrease, rows < R. */
static int load_tokens(rtext_model *a, const shelf_bundle *b, uint32_t I)
{
    shelf_model *m = &a->base;
    int nd = 0;
    int64_t sh[4] = {0};
    const uint64_t *off = shelf_bundle_get(b, "tok_off", SHELF_DT_U64, &nd, sh);
    if (!off || nd != 1 || sh[0] != (int64_t)I + 1)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks u64 tensor 'tok_off' [%lld]", (long long)I + 1);
    if (off[0] != 0)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: tok_off[0] is %llu", (unsigned long long)off[0]);
    for (uint32_t i = 0; i < I; i++)
        if (off[i + 1] < off[i] || off[i + 1] - off[i] > a->max_tokens)
            return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: tok_off bad at item %u", i);
    const uint64_t n = off[I];
    const uint32_t *tok = NULL;
    if (n) {
        tok = shelf_bundle_get(b, "tok", SHELF_DT_U32, &nd, sh);
        if (!tok || nd != 1 || sh[0] != (int64_t)n)
            return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks u32 tensor 'tok' [%llu]",
                                     (unsigned long long)n);
        for (uint64_t k = 0; k < n; k++)
            if (tok[k] >= a->R)
                return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: token row %u at %llu out of range (%u rows)",
                                         tok[k], (unsigned long long)k, a->R);
    }
    a->tok_off = malloc(((size_t)I + 1) * sizeof *a->tok_off);
    a->tok = malloc((size_t)n * sizeof *a->tok + 1);
    if (!a->tok_off || !a->tok) return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%llu tokens)",
                                                         (unsigned long long)n);
    memcpy(a->tok_off, off, ((size_t)I + 1) * sizeof *off);
    if (n) memcpy(a->tok, tok, (size_t)n * sizeof *tok);
    return 0;
}

static int rtext_load(shelf_model *m, const shelf_bundle *b)
{
    rtext_model *a = (rtext_model *)m;
    const uint32_t U = m->n_users, I = m->n_items;
    const double Kd = shelf_bundle_num(b, "rtext-factors", 0), Bd = shelf_bundle_num(b, "rtext-buckets", 0),
                 Ad = shelf_bundle_num(b, "rtext-attr-rows", -1), Td = shelf_bundle_num(b, "rtext-max-tokens", 0);
    if (!(Kd >= 1 && Kd <= 4096) || !(Bd >= 1 && Bd <= 1 << 24) || !(Ad >= 0 && Ad <= 1 << 30) ||
        !(Td >= 1 && Td <= 1 << 16) || I == 0)
        return shelf__model_fail(m, SHELF_ECORRUPT,
                                 "bundle: bad sizes (factors %g, buckets %g, attribute rows %g, max tokens %g, %u "
                                 "users, %u items)",
                                 Kd, Bd, Ad, Td, U, I);
    free_arrays(m);
    shelf__bundle_nums_get(b, a, rtext_nums, sizeof rtext_nums / sizeof rtext_nums[0]);
    a->R = a->B + a->A;
    if (shelf__rating_take_globals(m, b, a->glob)) return m->err.code;
    a->P = shelf__rating_take(m, b, "user_factors", 2, U, a->K);
    if (a->P) a->Q = shelf__rating_take(m, b, "item_factors", 2, I, a->K);
    if (a->Q) a->W = shelf__rating_take(m, b, "token_factors", 2, a->R, a->K);
    if (a->W) a->bu = shelf__rating_take(m, b, "user_bias", 1, U, 0);
    if (a->bu) a->bi = shelf__rating_take(m, b, "item_bias", 1, I, 0);
    if (a->bi) a->C = shelf__rating_take(m, b, "token_bias", 1, a->R, 0);
    int rc = a->C ? load_tokens(a, b, I) : m->err.code;
    if (!rc) {
        a->Z = malloc((size_t)I * a->K * sizeof *a->Z);
        a->beta = malloc((size_t)I * sizeof *a->beta);
        if (!a->Z || !a->beta) rc = shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u items)", I);
    }
    if (rc) {
        free_arrays(m);
        return rc;
    }
    derive(a, I);
    m->fitted = 1;
    return 0;
}

/* the vtable and what registry.c needs to make one (models_int.h) */
SHELF__MODEL_KIND(rating_text, rtext, "rating-text", SHELF_CAP_RATE | SHELF_CAP_NEEDS_HISTORY,
                  /* observe */ NULL, /* explain */ NULL, /* predict */ rtext_predict, SHELF__NO_SESSION);
