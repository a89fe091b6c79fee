/* bpr.c: BPR-MF (Rendle et al. 2009), matrix factorisation trained for the
 * pairwise ranking criterion by stochastic gradient ascent, Hogwild-parallel
 * (Recht et al. 2011) with OpenMP. Models room.
 *
 * Score s_ui = p_u . q_i + b_i (item biases optional: bpr-bias). One epoch
 * draws as many triples as there are positive training pairs: a pair (u, i)
 * uniformly among the user->item nonzeros with r > 0 (Rendle's bootstrap
 * sampling) and a negative j the user has no positive on, uniform over the
 * catalogue or (bpr-neg pop) proportional to max(count_j, 1)^0.75 (counts of
 * positive pairs; Walker's alias table). Each triple takes one step on
 *   ln sigmoid(s_ui - s_uj) - reg (|p_u|^2 + |q_i|^2 + |q_j|^2 + b_i^2 + b_j^2) / 2
 * with learning rate bpr-lr.
 *
 * Reproducibility: factors start from the seed; thread t draws from its own
 * stream of the seed. With threads = 1 a fit is reproducible bit for bit.
 * With more threads the updates race on shared rows (Hogwild: lost or
 * interleaved updates are part of the method), so results differ from run to
 * run; accuracy does not.
 *
 * Defaults (config.c) were chosen on Beauty LOO-FULL validation: 64
 * factors, 400 epochs, lr 0.1, reg 0.025, uniform negatives, no biases
 * (biases and popularity negatives both scored lower there).
 *
 * Anonymous queries fold the history in: SGD on a fresh user vector against
 * the fixed items (100 steps per history item, seeded by the history, so the
 * same query always scores the same). On Beauty validation the folded-in
 * vectors rank as well as the learned ones. A known user's query whose
 * history holds items beyond their training positives is folded in the same
 * way from the union (bpr-fold-new, default; see refold_user).
 *
 * Dimension letters: U users, I items, K factors. */
#include "models/mf_int.h"

#include <cblas.h>
#undef I /* <complex.h>, pulled in by cblas.h, defines I; here I is the item count */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "nn/isa/vmath_int.h" /* the build's vector registers (see als.c) */

/* bpr's rows of the configuration table: its hyperparameters (config.c
 * joins every model's rows to the common ones) */
static const shelf_cfg_def opts[] = {
#include "models/opts/bpr.def"
};

typedef enum { NEG_UNIFORM = 0, NEG_POP = 1 } neg_mode;

#define INIT_STD 0.1     /* factors start N(0, INIT_STD^2 / K) per coordinate */
#define NEG_TRIES 16     /* redraws of a negative that is a positive */
#define FOLD_EPOCHS 100  /* fold-in: SGD steps per distinct history item */
#define FOLD_MAX 20000   /* ... at most */
#define OBSERVE_STEPS 20 /* observe: steps on the user vector per event */

typedef struct bpr_model {
    shelf_model base;
    uint32_t K;
    float *P; /* [U,K] user factors */
    float *Q; /* [I,K] item factors */
    float *b; /* [I] item biases (zeros without bpr-bias) */
    uint64_t *pos_off; /* [U+1] training positives, CSR (fold-new) */
    uint32_t *pos_col; /* [n_pos] ascending per user */
    double lr, reg;
    int epochs, bias, fold_new;
    neg_mode neg;
    uint64_t seed;
    shelf_rng orng; /* observe's negatives */
} bpr_model;

static void free_arrays(bpr_model *m)
{
    free(m->P);
    free(m->Q);
    free(m->b);
    free(m->pos_off);
    free(m->pos_col);
    m->P = m->Q = m->b = NULL;
    m->pos_off = NULL;
    m->pos_col = NULL;
}

static void bpr_free(shelf_model *m)
{
    if (!m) return;
    free_arrays((bpr_model *)m);
    free(m);
}

/* ---- sampling ------------------------------------------------------------------------ */

/* Walker's alias table over n outcomes with weights w (Vose's construction):
 * draw k uniform, keep it with probability prob[k], else take alias[k]. */
typedef struct alias_table {
    float *prob;
    uint32_t *alias;
    uint32_t n;
} alias_table;

static int alias_build(alias_table *t, const double *w, uint32_t n)
{
    t->n = n;
    t->prob = malloc((size_t)n * sizeof *t->prob);
    t->alias = malloc((size_t)n * sizeof *t->alias);
    uint32_t *small = malloc((size_t)n * sizeof *small), *large = malloc((size_t)n * sizeof *large);
    double *q = malloc((size_t)n * sizeof *q);
    if (!t->prob || !t->alias || !small || !large || !q) {
        free(small);
        free(large);
        free(q);
        return SHELF_ENOMEM;
    }
    double sum = 0;
    for (uint32_t k = 0; k < n; k++) sum += w[k];
    uint32_t ns = 0, nl = 0;
    for (uint32_t k = 0; k < n; k++) {
        q[k] = w[k] * n / sum;
        if (q[k] < 1.0) small[ns++] = k;
        else large[nl++] = k;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[--nl];
        t->prob[s] = (float)q[s];
        t->alias[s] = l;
        q[l] -= 1.0 - q[s];
        if (q[l] < 1.0) small[ns++] = l;
        else large[nl++] = l;
    }
    while (nl) {
        uint32_t l = large[--nl];
        t->prob[l] = 1.0f;
        t->alias[l] = l;
    }
    while (ns) { /* rounding leftovers */
        uint32_t s = small[--ns];
        t->prob[s] = 1.0f;
        t->alias[s] = s;
    }
    free(small);
    free(large);
    free(q);
    return 0;
}

static inline uint32_t alias_draw(const alias_table *t, shelf_rng *r)
{
    uint64_t x = shelf_rng_u64(r);
    uint32_t k = (uint32_t)(((x >> 32) * (uint64_t)t->n) >> 32);
    float u = (float)(x & 0xffffffu) * 0x1.0p-24f;
    return u < t->prob[k] ? k : t->alias[k];
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

/* The training triples: positives in CSR (off, col) with each pair's user
 * (pu), and the negative distribution. */
typedef struct sampler {
    const uint64_t *off;
    const uint32_t *col, *pu;
    uint64_t n_pos;
    uint32_t I;
    neg_mode neg;
    const alias_table *at;
} sampler;

typedef struct triple {
    uint32_t u, i, j; /* j SHELF_NONE: no negative found, skip */
} triple;

#define RING 8 /* triples drawn ahead of their update */

static inline triple draw(const sampler *s, shelf_rng *r)
{
    uint64_t e = shelf_rng_u64(r) % s->n_pos; /* bias < 2^-40 for any real n_pos */
    triple t = {s->pu[e], s->col[e], SHELF_NONE};
    const uint32_t *row = s->col + s->off[t.u];
    const uint64_t len = s->off[t.u + 1] - s->off[t.u];
    for (int k = 0; k < NEG_TRIES; k++) {
        uint32_t j = s->neg == NEG_POP ? alias_draw(s->at, r) : shelf_rng_below(r, s->I);
        if (!contains(row, len, j)) {
            t.j = j;
            break;
        }
    }
    return t;
}

/* Prefetches the first four cache lines of a row (all of it up to 64
 * factors; the hardware prefetcher follows longer rows). Macros, not
 * functions: GCC finds a function that only prefetches "const" and drops
 * the calls. */
#define PREFETCH_ROW(p, K)                                                \
    do {                                                                  \
        const char *c_ = (const char *)(p);                               \
        __builtin_prefetch(c_, 0, 3);                                     \
        if ((K) > 16) __builtin_prefetch(c_ + 64, 0, 3);                  \
        if ((K) > 32) __builtin_prefetch(c_ + 128, 0, 3);                 \
        if ((K) > 48) __builtin_prefetch(c_ + 192, 0, 3);                 \
    } while (0)
#define PREFETCH_TRIPLE(P, Q, t, K)                                       \
    do {                                                                  \
        if ((t).j != SHELF_NONE) {                                        \
            PREFETCH_ROW((P) + (size_t)(t).u * (K), K);                   \
            PREFETCH_ROW((Q) + (size_t)(t).i * (K), K);                   \
            PREFETCH_ROW((Q) + (size_t)(t).j * (K), K);                   \
        }                                                                 \
    } while (0)

/* ---- the SGD step --------------------------------------------------------------------- */

/* One ascent step on triple (u, i, j): p [K] the user's row, qi and qj the
 * items' rows, bi and bj their biases (NULL without biases). update_items 0:
 * only p moves (fold-in, observe). */
static inline void bpr_step(float *p, float *qi, float *qj, float *bi, float *bj, uint32_t K, float lr, float reg,
                            int update_items)
{
    float x = 0.0f;
    uint32_t k0 = 0;
#ifdef ISA_VEC
    /* vector registers with fused multiply-adds (see als.c); the tail of
     * K % VW runs in the plain loops below */
    const uint32_t kv = K - K % VW;
    vf acc = vzero();
    for (uint32_t k = 0; k < kv; k += VW) acc = vfmadd(vload(p + k), vsub(vload(qi + k), vload(qj + k)), acc);
    x = vhsum(acc);
    k0 = kv;
#endif
    for (uint32_t k = k0; k < K; k++) x += p[k] * (qi[k] - qj[k]);
    if (bi) x += *bi - *bj;
    const float z = 1.0f / (1.0f + expf(x)); /* d/dx ln sigmoid(x) = sigmoid(-x) */
    const float lz = lr * z, keep = 1.0f - lr * reg;
    /* u' = keep u + lz (a - c), a' = keep a + lz u, c' = keep c - lz u */
#ifdef ISA_VEC
    const vf vlz = vset1(lz), vkeep = vset1(keep);
    for (uint32_t k = 0; k < kv; k += VW) {
        vf u = vload(p + k), a = vload(qi + k), c = vload(qj + k);
        vstore(p + k, vfmadd(vlz, vsub(a, c), vmul(vkeep, u)));
        if (update_items) {
            vstore(qi + k, vfmadd(vlz, u, vmul(vkeep, a)));
            vstore(qj + k, vfnmadd(vlz, u, vmul(vkeep, c)));
        }
    }
#endif
    for (uint32_t k = k0; k < K; k++) {
        float u = p[k], a = qi[k], c = qj[k];
        p[k] = keep * u + lz * (a - c);
        if (update_items) {
            qi[k] = keep * a + lz * u;
            qj[k] = keep * c - lz * u;
        }
    }
    if (bi && update_items) {
        *bi = keep * *bi + lz;
        *bj = keep * *bj - lz;
    }
}

/* ---- fit ------------------------------------------------------------------------------- */

static int bpr_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    bpr_model *a = (bpr_model *)m;
    const uint32_t U = s->n_users, I = s->n_items;
    const uint32_t K = (uint32_t)shelf_config_int(o, "bpr-factors");
    const char *neg = shelf_config_str(o, "bpr-neg");
    const int T = shelf__model_threads(o);

    /* positives: the nonzeros with r > 0 (a dislike is no positive) */
    const uint64_t n_pos = shelf__positives_count(s);
    if (U == 0 || I < 2 || n_pos == 0)
        return shelf__model_fail(m, SHELF_EINVAL, "nothing to learn (%u users, %u items, %llu positive pairs)", U,
                                 I, (unsigned long long)n_pos);
    free_arrays(a);
    m->fitted = 0;
    a->K = K;
    a->lr = shelf_config_double(o, "bpr-lr");
    a->reg = shelf_config_double(o, "bpr-reg");
    a->epochs = (int)shelf_config_int(o, "bpr-epochs");
    a->bias = shelf_config_bool(o, "bpr-bias");
    a->neg = neg && strcmp(neg, "pop") == 0 ? NEG_POP : NEG_UNIFORM;
    a->fold_new = shelf_config_bool(o, "bpr-fold-new");
    a->seed = (uint64_t)shelf_config_int(o, "seed");

    uint64_t *off = malloc(((size_t)U + 1) * sizeof *off);
    uint32_t *col = malloc(n_pos * sizeof *col);
    uint32_t *pu = malloc(n_pos * sizeof *pu);
    double *w = a->neg == NEG_POP ? calloc(I, sizeof *w) : NULL;
    alias_table at = {0};
    a->P = malloc((size_t)U * K * sizeof *a->P);
    a->Q = malloc((size_t)I * K * sizeof *a->Q);
    a->b = calloc(I, sizeof *a->b);
    int rc = (!off || !col || !pu || (a->neg == NEG_POP && !w) || !a->P || !a->Q || !a->b) ? SHELF_ENOMEM : 0;
    if (!rc) {
        shelf__positives_fill(s, off, col, pu);
        if (w) {
            for (uint64_t k = 0; k < n_pos; k++) w[col[k]] += 1.0;
            for (uint32_t i = 0; i < I; i++) w[i] = pow(w[i] > 1.0 ? w[i] : 1.0, 0.75);
            rc = alias_build(&at, w, I);
        }
    }
    free(w);
    if (rc) {
        free(off);
        free(col);
        free(pu);
        free(at.prob);
        free(at.alias);
        free_arrays(a);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u users, %u items, %u factors)", U, I, K);
    }

    shelf_rng rng;
    shelf_rng_seed(&rng, a->seed);
    const double sd = INIT_STD / sqrt((double)K);
    for (size_t k = 0; k < (size_t)U * K; k++) a->P[k] = (float)(shelf_rng_normal(&rng) * sd);
    for (size_t k = 0; k < (size_t)I * K; k++) a->Q[k] = (float)(shelf_rng_normal(&rng) * sd);

    float *P = a->P, *Q = a->Q, *B = a->bias ? a->b : NULL;
    const float lr = (float)a->lr, reg = (float)a->reg;
    const int epochs = a->epochs;
    const uint64_t seed = a->seed;
    const sampler smp = {off, col, pu, n_pos, I, a->neg, &at};
#pragma omp parallel num_threads(T)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        int t = 0, nt = 1;
#endif
        shelf_rng r;
        shelf_rng_split(&r, seed, (uint64_t)t + 1);
        /* thread t's share of each epoch's draws; the triples are drawn RING
         * steps ahead of their update so that their rows can be prefetched
         * (the draw order, hence the result with one thread, is unchanged) */
        const uint64_t cnt = n_pos * (uint64_t)(t + 1) / (uint64_t)nt - n_pos * (uint64_t)t / (uint64_t)nt;
        triple ring[RING];
        for (int ep = 0; ep < epochs; ep++) {
            for (uint64_t n = 0; n < cnt && n < RING; n++) {
                ring[n] = draw(&smp, &r);
                PREFETCH_TRIPLE(P, Q, ring[n], K);
            }
            for (uint64_t n = 0; n < cnt; n++) {
                triple tr = ring[n % RING];
                if (n + RING < cnt) {
                    ring[n % RING] = draw(&smp, &r);
                    PREFETCH_TRIPLE(P, Q, ring[n % RING], K);
                }
                if (tr.j == SHELF_NONE) continue; /* the user has (nearly) everything */
                bpr_step(P + (size_t)tr.u * K, Q + (size_t)tr.i * K, Q + (size_t)tr.j * K, B ? B + tr.i : NULL,
                         B ? B + tr.j : NULL, K, lr, reg, 1);
            }
#pragma omp barrier
#pragma omp master
            {
                char note[64];
                snprintf(note, sizeof note, "epoch %d/%d", ep + 1, epochs);
                shelf_progress_update(pr, (uint64_t)ep + 1, note);
            }
        }
    }
    a->pos_off = off; /* kept: fold-new asks what a user's positives were */
    a->pos_col = col;
    free(pu);
    free(at.prob);
    free(at.alias);
    shelf_rng_split(&a->orng, a->seed, 0);
    m->n_users = U;
    m->n_items = I;
    m->fitted = 1;
    return 0;
}

/* ---- score, observe -------------------------------------------------------------------- */

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

/* SGD on the user vector x[K] alone (items fixed) with positives drawn
 * uniformly from h[0..d) (sorted, distinct) and uniform negatives outside
 * it, `steps` steps from the stream r. */
static void sgd_user(const bpr_model *a, float *x, const uint32_t *h, uint32_t d, uint64_t steps, shelf_rng *r)
{
    const uint32_t K = a->K, I = a->base.n_items;
    float *B = a->bias ? a->b : NULL;
    for (uint64_t t = 0; t < steps && d > 0 && d < I; t++) {
        uint32_t i = h[shelf_rng_below(r, d)], j;
        do j = shelf_rng_below(r, I);
        while (contains(h, d, j));
        bpr_step(x, a->Q + (size_t)i * K, a->Q + (size_t)j * K, B ? B + i : NULL, B ? B + j : NULL, K,
                 (float)a->lr, (float)a->reg, 0);
    }
}

/* Sorts h[0..n) and drops repeats; returns the distinct count. */
static uint32_t sort_distinct(uint32_t *h, uint32_t n)
{
    qsort(h, n, sizeof *h, cmp_u32);
    uint32_t d = 0;
    for (uint32_t k = 0; k < n; k++)
        if (!d || h[d - 1] != h[k]) h[d++] = h[k];
    return d;
}

/* x[K] from a history h[0..n) (reordered): SGD on a fresh user vector from
 * zero, FOLD_EPOCHS steps per distinct item (at most FOLD_MAX). The stream
 * is seeded by the model's seed and the distinct items, so a query always
 * gets the same answer. */
static void fold_from(const bpr_model *a, uint32_t *h, uint32_t n, float *x)
{
    memset(x, 0, (size_t)a->K * sizeof *x);
    if (n == 0) return;
    uint32_t d = sort_distinct(h, n);
    shelf_rng r;
    shelf_rng_split(&r, a->seed, shelf_hash64(h, (size_t)d * sizeof *h, 0x62707266u));
    uint64_t steps = (uint64_t)FOLD_EPOCHS * d;
    sgd_user(a, x, h, d, steps < FOLD_MAX ? steps : FOLD_MAX, &r);
}

/* x[K] for an anonymous history (fold_from). */
static int fold_in(const bpr_model *a, const uint32_t *items, uint32_t n, float *x)
{
    uint32_t *h = malloc((n ? n : 1) * sizeof *h);
    if (!h) return SHELF_ENOMEM;
    if (n) memcpy(h, items, (size_t)n * sizeof *h);
    fold_from(a, h, n, x);
    free(h);
    return 0;
}

/* Known user u whose query history holds items that were not among their
 * training positives (bpr-fold-new): x[K] folded in (fold_from) from the
 * union of the training positives and the history; the model does not
 * change. A fresh fold-in beat refining p_u on a nested LOO validation
 * (Beauty: NDCG@10 0.0341 against 0.0310-0.0332; 0.0267 ignoring the new
 * items). Returns 1 when it wrote x, 0 when the history holds nothing new,
 * or SHELF_ENOMEM. */
static int refold_user(const bpr_model *a, uint32_t u, const uint32_t *items, uint32_t n, float *x)
{
    const uint32_t *row = a->pos_col + a->pos_off[u];
    const uint64_t len = a->pos_off[u + 1] - a->pos_off[u];
    uint32_t n_new = 0;
    for (uint32_t k = 0; k < n; k++) n_new += !contains(row, len, items[k]);
    if (n_new == 0) return 0;
    uint32_t *h = malloc(((size_t)len + n) * sizeof *h);
    if (!h) return SHELF_ENOMEM;
    memcpy(h, row, (size_t)len * sizeof *h);
    memcpy(h + len, items, (size_t)n * sizeof *h);
    fold_from(a, h, (uint32_t)len + n, x);
    free(h);
    return 1;
}

/* Known user: scores = Q p + b (sgemv) with p the learned p_u or, with
 * bpr-fold-new and history items beyond the user's training positives, the
 * refined one (refold_user). Anonymous (user SHELF_NONE): p folded in from
 * the history (fold_in). Reads only: safe from many threads at once (not
 * while observe runs). */
static int bpr_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    const bpr_model *a = (const bpr_model *)m;
    const uint32_t K = a->K, I = m->n_items;
    const float *p = NULL;
    float *x = NULL;
    if (q->user != SHELF_NONE && !(a->fold_new && q->n)) {
        p = a->P + (size_t)q->user * K;
    } else {
        x = malloc((size_t)K * sizeof *x);
        int rc = !x ? SHELF_ENOMEM
                    : q->user == SHELF_NONE ? fold_in(a, q->items, q->n, x) : refold_user(a, q->user, q->items, q->n, x);
        if (rc < 0) {
            free(x);
            return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory (fold-in of %u items)", q->n);
        }
        p = q->user != SHELF_NONE && rc == 0 ? a->P + (size_t)q->user * K : x;
    }
    if (a->bias) memcpy(scores, a->b, (size_t)I * sizeof *scores);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)I, (int)K, 1.0f, a->Q, (int)K, p, 1, a->bias ? 1.0f : 0.0f,
                scores, 1);
    free(x);
    return 0;
}

/* OBSERVE_STEPS ascent steps on the user's vector for (user, item, random
 * negative): the user moves toward the item; item factors stay. Not thread
 * safe; must not run while score does. Unknown user or item:
 * SHELF_ENOTFOUND. Events of negative weight are not positives: ignored
 * here (a dislike does not move BPR's user). */
static int bpr_observe(shelf_model *m, const shelf_event *e)
{
    bpr_model *a = (bpr_model *)m;
    const uint32_t K = a->K, I = m->n_items;
    if (e->user >= m->n_users)
        return shelf__model_fail(m, SHELF_ENOTFOUND, "observe: user %u is not in the model (%u users); "
                                 "score folds anonymous histories in", e->user, m->n_users);
    if (e->item >= I)
        return shelf__model_fail(m, SHELF_ENOTFOUND, "observe: item %u is not in the model (%u items)", e->item, I);
    float *B = a->bias ? a->b : NULL;
    float *p = a->P + (size_t)e->user * K;
    for (int t = 0; t < OBSERVE_STEPS; t++) {
        uint32_t j = shelf_rng_below(&a->orng, I);
        if (j == e->item) continue;
        bpr_step(p, a->Q + (size_t)e->item * K, a->Q + (size_t)j * K, B ? B + e->item : NULL, B ? B + j : NULL, K,
                 (float)a->lr, (float)a->reg, 0);
    }
    return 0;
}

/* ---- save, load ------------------------------------------------------------------------- */

static int bpr_save(const shelf_model *m, shelf_bundle_writer *w)
{
    const bpr_model *a = (const bpr_model *)m;
    const int64_t sp[2] = {m->n_users, a->K}, sq[2] = {m->n_items, a->K}, sb[1] = {m->n_items};
    const int64_t so[1] = {(int64_t)m->n_users + 1}, sn[1] = {(int64_t)a->pos_off[m->n_users]};
    /* 8-byte tensors first: the data section stays aligned */
    int rc = shelf_bundle_put(w, "pos_off", SHELF_DT_U64, 1, so, a->pos_off);
    if (!rc) rc = shelf_bundle_put(w, "pos_col", SHELF_DT_U32, 1, sn, a->pos_col);
    if (!rc) rc = shelf_bundle_put(w, "user_factors", SHELF_DT_F32, 2, sp, a->P);
    if (!rc) rc = shelf_bundle_put(w, "item_factors", SHELF_DT_F32, 2, sq, a->Q);
    if (!rc) rc = shelf_bundle_put(w, "item_bias", SHELF_DT_F32, 1, sb, a->b);
    if (!rc) rc = shelf_bundle_set_num(w, "bpr-factors", a->K);
    if (!rc) rc = shelf_bundle_set_num(w, "bpr-epochs", a->epochs);
    if (!rc) rc = shelf_bundle_set_num(w, "bpr-lr", a->lr);
    if (!rc) rc = shelf_bundle_set_num(w, "bpr-reg", a->reg);
    if (!rc) rc = shelf_bundle_set_num(w, "bpr-bias", a->bias);
    if (!rc) rc = shelf_bundle_set_str(w, "bpr-neg", a->neg == NEG_POP ? "pop" : "uniform");
    if (!rc) rc = shelf_bundle_set_num(w, "bpr-fold-new", a->fold_new);
    if (!rc) rc = shelf_bundle_set_num(w, "seed", (double)a->seed);
    return rc;
}

/* The positives' CSR from the bundle, checked (offsets monotone, items in
 * range and ascending per user). */
static int load_positives(shelf_model *m, const shelf_bundle *b)
{
    bpr_model *a = (bpr_model *)m;
    const uint32_t U = m->n_users, I = m->n_items;
    int nd = 0;
    int64_t sh[4] = {0};
    const void *po = shelf_bundle_get(b, "pos_off", SHELF_DT_U64, &nd, sh);
    if (!po || nd != 1 || sh[0] != (int64_t)U + 1)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor 'pos_off' [%lld]", (long long)U + 1);
    a->pos_off = malloc(((size_t)U + 1) * sizeof *a->pos_off);
    if (!a->pos_off) return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    memcpy(a->pos_off, po, ((size_t)U + 1) * sizeof *a->pos_off);
    const uint64_t n = a->pos_off[U];
    int bad = a->pos_off[0] != 0 || n == 0 || n > (uint64_t)U * I;
    for (uint32_t u = 0; u < U && !bad; u++) bad = a->pos_off[u + 1] < a->pos_off[u];
    if (bad) return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: tensor 'pos_off' is not a CSR offset array");
    const void *pc = shelf_bundle_get(b, "pos_col", SHELF_DT_U32, &nd, sh);
    if (!pc || nd != 1 || sh[0] != (int64_t)n)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor 'pos_col' [%llu]", (unsigned long long)n);
    a->pos_col = malloc(n * sizeof *a->pos_col);
    if (!a->pos_col) return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    memcpy(a->pos_col, pc, n * sizeof *a->pos_col);
    for (uint32_t u = 0; u < U; u++)
        for (uint64_t e = a->pos_off[u]; e < a->pos_off[u + 1]; e++)
            if (a->pos_col[e] >= I || (e > a->pos_off[u] && a->pos_col[e] <= a->pos_col[e - 1]))
                return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: tensor 'pos_col' is not sorted item ids < %u", I);
    return 0;
}

static int bpr_load(shelf_model *m, const shelf_bundle *b)
{
    bpr_model *a = (bpr_model *)m;
    double Kd = shelf_bundle_num(b, "bpr-factors", 0);
    if (!(Kd >= 1 && Kd <= 4096) || m->n_users == 0 || m->n_items < 2)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: bad sizes (factors %g, %u users, %u items)", Kd,
                                 m->n_users, m->n_items);
    free_arrays(a);
    a->K = (uint32_t)Kd;
    a->P = shelf__bundle_take_f32(m, b, "user_factors", m->n_users, a->K);
    if (a->P) a->Q = shelf__bundle_take_f32(m, b, "item_factors", m->n_items, a->K);
    if (a->Q) a->b = shelf__bundle_take_f32(m, b, "item_bias", m->n_items, 0);
    int rc = a->b ? 0 : m->err.code;
    if (!rc) rc = load_positives(m, b);
    if (rc) {
        free_arrays(a);
        return rc;
    }
    a->epochs = (int)shelf_bundle_num(b, "bpr-epochs", 0);
    a->lr = shelf_bundle_num(b, "bpr-lr", 0);
    a->reg = shelf_bundle_num(b, "bpr-reg", 0);
    a->bias = shelf_bundle_num(b, "bpr-bias", 0) != 0;
    const char *neg = shelf_bundle_str(b, "bpr-neg");
    a->neg = neg && strcmp(neg, "pop") == 0 ? NEG_POP : NEG_UNIFORM;
    a->fold_new = shelf_bundle_num(b, "bpr-fold-new", 0) != 0;
    a->seed = (uint64_t)shelf_bundle_num(b, "seed", 0);
    shelf_rng_split(&a->orng, a->seed, 0);
    m->fitted = 1;
    return 0;
}

void shelf__bpr_factors(const shelf_model *m, const float **P, const float **Q, const float **b, uint32_t *K)
{
    const bpr_model *a = (const bpr_model *)m;
    if (P) *P = a->P;
    if (Q) *Q = a->Q;
    if (b) *b = a->b;
    if (K) *K = a->K;
}

/* the item factors Q as the item vectors */
static const float *bpr_item_vectors(const shelf_model *m, uint32_t *dim)
{
    const bpr_model *a = (const bpr_model *)m;
    *dim = a->K;
    return a->Q;
}

/* the vtable and what registry.c needs to make one (models_int.h) */
SHELF__MODEL_KIND(bpr, bpr, "bpr",
                  SHELF_CAP_ONLINE | SHELF_CAP_SIMILAR | SHELF_CAP_NEEDS_HISTORY | SHELF_CAP_ITEM_VECTORS,
                  /* observe */ bpr_observe, /* explain */ NULL, /* predict */ NULL, SHELF__NO_SESSION,
                  .item_vectors = bpr_item_vectors);
