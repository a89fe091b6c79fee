/* als.c: implicit-feedback ALS (Hu, Koren & Volinsky 2008) solved row by row
 * with a few conjugate-gradient steps warm-started from the current factors
 * (Takács, Pilászy & Tikk 2011; the CPU solver of the `implicit` library).
 * Models room.
 *
 * Objective, over ALL user-item pairs:
 *   L = sum_{u,i} c_ui (p_ui - x_u.y_i)^2 + reg (|X|^2 + |Y|^2)
 * with r_ui the training snapshot's user->item value (the summed event-type
 * weights; als-conf binary uses sign(r) instead), p_ui = [r_ui > 0] and
 * c_ui = 1 + alpha |r_ui| (pairs without events: r = 0, c = 1, p = 0;
 * negative r, a dislike, is a confident 0). A half-iteration solves every
 * user row (then every item row) of
 *   (Y^T Y + reg I + Y_u^T (C_u - I) Y_u) x_u = Y_u^T C_u p_u
 * where Y^T Y is computed once (cblas_ssyrk) and only the row's nonzeros
 * enter the correction, so a CG step costs O(K^2 + n_u K).
 *
 * Monotonicity: each row's system is the exact minimiser of L over that row
 * with everything else fixed, L restricted to the row is the quadratic
 * x^T A x - 2 b^T x (+ const), and every CG step from the warm start lowers
 * that quadratic (CG minimises it over a growing Krylov space). So L never
 * increases across half-iterations, with exact solves and with any number of
 * warm-started CG steps alike (up to float rounding; the unit test checks it).
 *
 * Determinism: the factors start from one seeded stream and every row's
 * solve reads only the other side's factors, so a fit is reproducible for a
 * seed (and does not depend on the number of threads unless OpenBLAS's
 * ssyrk does).
 *
 * Defaults (config.c) were chosen on Beauty LOO-FULL validation: 64
 * factors, alpha 20, reg 10, 30 iterations, 3 CG steps, binary r (the same
 * model as weights on single-type data such as Beauty, up to alpha's scale;
 * binary does not depend on how event types are weighted).
 *
 * Scoring: a known user's learned x_u, or for an anonymous query a vector
 * folded in from the history. A known user's query history may hold items
 * the fit never saw for them (the validation item at test time under
 * LOO-FULL, a session's fresh clicks): with als-fold-new (default) the
 * user's row is re-solved with them for that query, which on a nested LOO
 * validation of Beauty lifts NDCG@10 from 0.0260 to 0.0345.
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

/* als's rows of the configuration table: its hyperparameters (config.c
 * joins every model's rows to the common ones) */
static const shelf_cfg_def opts[] = {
#include "models/opts/als.def"
};

typedef enum { CONF_BINARY = 0, CONF_WEIGHTS = 1 } conf_mode;

/* Events observed after fit for one user: items (distinct) and summed r. */
typedef struct als_extra {
    uint32_t n, cap;
    uint32_t *item;
    float *r;
} als_extra;

typedef struct als_model {
    shelf_model base;
    uint32_t K;
    float *X; /* [U,K] user factors */
    float *Y; /* [I,K] item factors */
    float *G; /* [K,K] Y^T Y + reg I of the final Y (fold-in, observe) */
    /* training interactions, kept for observe (a user's refold needs them) */
    uint64_t *ui_off; /* [U+1] */
    uint32_t *ui_col; /* [nnz] */
    float *ui_r;      /* [nnz] raw r (summed type weights) */
    als_extra *extra; /* [U] or NULL: observed since fit/load */
    float *tw;        /* [n_tw] event-type weights */
    uint32_t n_tw;
    double alpha, reg;
    int iters, cg_steps;
    conf_mode conf;
    int fold_new; /* fold a known user's unseen history items in at score time */
    uint64_t seed;
    shelf__als_hook hook;
    void *hook_ctx;
} als_model;

/* ---- small vector kernels (length K, contiguous) ---------------------------------
 * On the vector registers of the build's level (nn/isa/vmath_int.h: AVX2 by
 * default, AVX-512 in a native build on such a CPU) with fused multiply-adds
 * (-std=c11 turns off the compiler's own contraction), the K % VW tail in
 * plain loops; without vectors the plain loops, which are also the reference
 * the unit tests compare against (through the exact solve). */
#include "nn/isa/vmath_int.h"
#ifdef ISA_VEC
#define HAVE_VEC(K) (((K) % VW) == 0)
#else
#define HAVE_VEC(K) 0
#endif

static inline float vdot(const float *a, const float *b, uint32_t K)
{
    uint32_t k = 0;
    float s = 0.0f;
#ifdef ISA_VEC
    vf s0 = vzero(), s1 = vzero();
    for (; k + 2 * VW <= K; k += 2 * VW) {
        s0 = vfmadd(vload(a + k), vload(b + k), s0);
        s1 = vfmadd(vload(a + k + VW), vload(b + k + VW), s1);
    }
    if (k + VW <= K) s0 = vfmadd(vload(a + k), vload(b + k), s0), k += VW;
    s = vhsum(vadd(s0, s1));
#endif
    for (; k < K; k++) s += a[k] * b[k];
    return s;
}

/* y += a x */
static inline void vaxpy(float *y, float a, const float *x, uint32_t K)
{
    uint32_t k = 0;
#ifdef ISA_VEC
    vf va = vset1(a);
    for (; k + VW <= K; k += VW) vstore(y + k, vfmadd(va, vload(x + k), vload(y + k)));
#endif
    for (; k < K; k++) y[k] += a * x[k];
}

/* y = x + a y */
static inline void vxpay(float *y, const float *x, float a, uint32_t K)
{
    uint32_t k = 0;
#ifdef ISA_VEC
    vf va = vset1(a);
    for (; k + VW <= K; k += VW) vstore(y + k, vfmadd(va, vload(y + k), vload(x + k)));
#endif
    for (; k < K; k++) y[k] = x[k] + a * y[k];
}

/* out[K] = G[K,K] p[K], G symmetric: out = sum_j p_j G[j,:], so the inner
 * loop runs along contiguous rows without horizontal sums. The vector path
 * keeps a block of 4 VW columns of out in registers over all j, in two
 * chains (even and odd j) to cover the FMA latency. */
static void symv(float *out, const float *G, const float *p, uint32_t K)
{
#ifdef ISA_VEC
    if (HAVE_VEC(K)) {
        uint32_t c = 0;
        for (; c + 4 * VW <= K; c += 4 * VW) {
            vf a0 = vzero(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            uint32_t j = 0;
            for (; j + 2 <= K; j += 2) {
                const float *g0 = G + (size_t)j * K + c, *g1 = g0 + K;
                vf p0 = vset1(p[j]), p1 = vset1(p[j + 1]);
                a0 = vfmadd(p0, vload(g0), a0);
                a1 = vfmadd(p0, vload(g0 + VW), a1);
                a2 = vfmadd(p0, vload(g0 + 2 * VW), a2);
                a3 = vfmadd(p0, vload(g0 + 3 * VW), a3);
                b0 = vfmadd(p1, vload(g1), b0);
                b1 = vfmadd(p1, vload(g1 + VW), b1);
                b2 = vfmadd(p1, vload(g1 + 2 * VW), b2);
                b3 = vfmadd(p1, vload(g1 + 3 * VW), b3);
            }
            if (j < K) {
                const float *g0 = G + (size_t)j * K + c;
                vf p0 = vset1(p[j]);
                a0 = vfmadd(p0, vload(g0), a0);
                a1 = vfmadd(p0, vload(g0 + VW), a1);
                a2 = vfmadd(p0, vload(g0 + 2 * VW), a2);
                a3 = vfmadd(p0, vload(g0 + 3 * VW), a3);
            }
            vstore(out + c, vadd(a0, b0));
            vstore(out + c + VW, vadd(a1, b1));
            vstore(out + c + 2 * VW, vadd(a2, b2));
            vstore(out + c + 3 * VW, vadd(a3, b3));
        }
        for (; c < K; c += VW) {
            vf a0 = vzero(), b0 = a0;
            uint32_t j = 0;
            for (; j + 2 <= K; j += 2) {
                a0 = vfmadd(vset1(p[j]), vload(G + (size_t)j * K + c), a0);
                b0 = vfmadd(vset1(p[j + 1]), vload(G + (size_t)(j + 1) * K + c), b0);
            }
            if (j < K) a0 = vfmadd(vset1(p[j]), vload(G + (size_t)j * K + c), a0);
            vstore(out + c, vadd(a0, b0));
        }
        return;
    }
#endif
    memset(out, 0, (size_t)K * sizeof *out);
    for (uint32_t j = 0; j < K; j++) vaxpy(out, p[j], G + (size_t)j * K, K);
}

/* ---- the row solver ----------------------------------------------------------------- */

/* Signed weight v of a raw r (see shelf__als_cg): 0 (skip) when r == 0. The
 * sign bit carries the preference so that alpha = 0 still works (+0 / -0). */
static inline float signed_weight(double alpha, conf_mode conf, float r)
{
    double a = conf == CONF_BINARY ? alpha : alpha * fabs((double)r);
    return r > 0 ? (float)a : -(float)a;
}

/* The row's correction, sum over its nonzeros j of a coefficient times y_j:
 *   rhs = 0: out += sum_j w_j (y_j.q) y_j                 (A q minus G q)
 *   rhs = 1: out += sum_j (pref_j - w_j (y_j.q)) y_j      (b - A q minus -G q)
 * with w_j = |v_j|, pref_j = 1 + w_j or 0 (see shelf__als_cg). The vector
 * path takes four rows at a time: four independent dot chains hide the
 * latency of the horizontal sums, and out is read and written once per four
 * rows. */
static inline float coef_of(float v, float d, int rhs)
{
    float w = fabsf(v);
    return rhs ? (signbit(v) ? 0.0f : 1.0f + w) - w * d : w * d;
}

static void rank_update(float *out, const float *Y, const uint32_t *cols, const float *v, uint32_t n,
                        const float *q, uint32_t K, int rhs)
{
    uint32_t j = 0;
#ifdef ISA_VEC
    if (HAVE_VEC(K)) {
        for (; j + 4 <= n; j += 4) {
            const float *y0 = Y + (size_t)cols[j] * K, *y1 = Y + (size_t)cols[j + 1] * K;
            const float *y2 = Y + (size_t)cols[j + 2] * K, *y3 = Y + (size_t)cols[j + 3] * K;
            vf s0 = vzero(), s1 = s0, s2 = s0, s3 = s0;
            for (uint32_t c = 0; c < K; c += VW) {
                vf qc = vload(q + c);
                s0 = vfmadd(vload(y0 + c), qc, s0);
                s1 = vfmadd(vload(y1 + c), qc, s1);
                s2 = vfmadd(vload(y2 + c), qc, s2);
                s3 = vfmadd(vload(y3 + c), qc, s3);
            }
            vf c0 = vset1(coef_of(v[j], vhsum(s0), rhs));
            vf c1 = vset1(coef_of(v[j + 1], vhsum(s1), rhs));
            vf c2 = vset1(coef_of(v[j + 2], vhsum(s2), rhs));
            vf c3 = vset1(coef_of(v[j + 3], vhsum(s3), rhs));
            for (uint32_t c = 0; c < K; c += VW) {
                vf o = vload(out + c);
                o = vfmadd(c0, vload(y0 + c), o);
                o = vfmadd(c1, vload(y1 + c), o);
                o = vfmadd(c2, vload(y2 + c), o);
                o = vfmadd(c3, vload(y3 + c), o);
                vstore(out + c, o);
            }
        }
    }
#endif
    for (; j < n; j++) {
        const float *y = Y + (size_t)cols[j] * K;
        vaxpy(out, coef_of(v[j], vdot(y, q, K), rhs), y, K);
    }
}

static void cg_solve(float *x, const float *G, const float *Y, const uint32_t *cols, const float *v,
                     uint32_t n, uint32_t K, int steps, float rtol, float *scratch)
{
    float *r = scratch, *p = scratch + K, *Ap = scratch + 2 * (size_t)K;
    /* the other side's rows are scattered over megabytes: ask for all of
     * them at once, before the first pass needs them one by one */
    for (uint32_t j = 0; j < n; j++) {
        const char *y = (const char *)(Y + (size_t)cols[j] * K);
        for (size_t b = 0; b < (size_t)K * sizeof(float); b += 64) __builtin_prefetch(y + b);
    }
    /* r = b - A x */
    symv(r, G, x, K);
    for (uint32_t k = 0; k < K; k++) r[k] = -r[k];
    rank_update(r, Y, cols, v, n, x, K, 1);
    float rs = vdot(r, r, K);
    const float stop = fmaxf(1e-20f, rtol * rtol * rs);
    if (rs < stop) return;
    memcpy(p, r, (size_t)K * sizeof *p);
    for (int it = 0; it < steps; it++) {
        symv(Ap, G, p, K);
        rank_update(Ap, Y, cols, v, n, p, K, 0);
        float pAp = vdot(p, Ap, K);
        if (!(pAp > 0.0f)) break; /* p == 0 numerically */
        float a = rs / pAp;
        vaxpy(x, a, p, K);
        vaxpy(r, -a, Ap, K);
        float rs_new = vdot(r, r, K);
        if (rs_new < stop) break;
        vxpay(p, r, rs_new / rs, K);
        rs = rs_new;
    }
}

void shelf__als_cg(float *x, const float *G, const float *Y, const uint32_t *cols, const float *v,
                   uint32_t n, uint32_t K, int steps, float *scratch)
{
    cg_solve(x, G, Y, cols, v, n, K, steps, 0.0f, scratch);
}

/* G[K,K] = A^T A + reg I for A [N,K] (full symmetric). */
static void gram(float *G, const float *A, uint32_t N, uint32_t K, double reg)
{
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)K, (int)N, 1.0f, A, (int)K, 0.0f, G, (int)K);
    for (uint32_t i = 0; i < K; i++) {
        for (uint32_t j = 0; j < i; j++) G[(size_t)i * K + j] = G[(size_t)j * K + i];
        G[(size_t)i * K + i] += (float)reg;
    }
}

/* CG steps for fold-in and observe: from zero (or a stale start) a solve
 * needs more than the fit's warm-started few; stop at a relative residual. */
static int fold_steps(const als_model *a)
{
    int s = (int)(a->K < 64 ? a->K : 64);
    return s > a->cg_steps ? s : a->cg_steps;
}
#define FOLD_RTOL 1e-4f

/* ---- lifecycle ---------------------------------------------------------------------- */

static void free_extra(als_model *a)
{
    if (!a->extra) return;
    for (uint32_t u = 0; u < a->base.n_users; u++) {
        free(a->extra[u].item);
        free(a->extra[u].r);
    }
    free(a->extra);
    a->extra = NULL;
}

static void free_arrays(als_model *a)
{
    free_extra(a);
    free(a->X);
    free(a->Y);
    free(a->G);
    free(a->ui_off);
    free(a->ui_col);
    free(a->ui_r);
    free(a->tw);
    a->X = a->Y = a->G = a->ui_r = a->tw = NULL;
    a->ui_off = NULL;
    a->ui_col = NULL;
    a->n_tw = 0;
}

static void als_free(shelf_model *m)
{
    if (!m) return;
    free_arrays((als_model *)m);
    free(m);
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Solves every row of one side: F [N,K] against the other side's O with
 * gram G, CSR (off, col) and signed weights v. */
static void solve_side(float *F, const float *O, const float *G, uint32_t N, uint32_t K,
                       const uint64_t *off, const uint32_t *col, const float *v, int steps, int T,
                       float *scratch)
{
#pragma omp parallel num_threads(T)
    {
        float *sc = scratch + (size_t)thread_id() * 3 * K;
#pragma omp for schedule(dynamic, 64)
        for (int64_t r = 0; r < (int64_t)N; r++) {
            uint64_t b = off[r], e = off[r + 1];
            cg_solve(F + (size_t)r * K, G, O, col + b, v + b, (uint32_t)(e - b), K, steps, 0.0f, sc);
        }
    }
}

static int als_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    als_model *a = (als_model *)m;
    const uint32_t U = s->n_users, I = s->n_items;
    const uint64_t nnz = s->n_nnz;
    const int64_t Kopt = shelf_config_int(o, "als-factors");
    const uint32_t K = (uint32_t)Kopt;
    const char *conf = shelf_config_str(o, "als-conf");
    const int T = shelf__model_threads(o);
    if (U == 0 || I == 0 || nnz == 0)
        return shelf__model_fail(m, SHELF_EINVAL, "nothing to learn (%u users, %u items, %llu pairs)", U, I,
                                 (unsigned long long)nnz);

    free_arrays(a); /* (uses the old n_users) */
    m->fitted = 0;
    m->n_users = U; /* now: the iteration hook may compute the loss */
    m->n_items = I;
    a->K = K;
    a->alpha = shelf_config_double(o, "als-alpha");
    a->reg = shelf_config_double(o, "als-reg");
    a->iters = (int)shelf_config_int(o, "als-iters");
    a->cg_steps = (int)shelf_config_int(o, "als-cg-steps");
    a->conf = conf && strcmp(conf, "weights") == 0 ? CONF_WEIGHTS : CONF_BINARY;
    a->fold_new = shelf_config_bool(o, "als-fold-new");
    a->seed = (uint64_t)shelf_config_int(o, "seed");

    a->X = malloc((size_t)U * K * sizeof *a->X);
    a->Y = malloc((size_t)I * K * sizeof *a->Y);
    a->G = malloc((size_t)K * K * sizeof *a->G);
    a->ui_off = malloc(((size_t)U + 1) * sizeof *a->ui_off);
    a->ui_col = malloc(nnz * sizeof *a->ui_col);
    a->ui_r = malloc(nnz * sizeof *a->ui_r);
    a->tw = malloc((s->n_types ? s->n_types : 1) * sizeof *a->tw);
    float *vu = malloc(nnz * sizeof *vu);
    float *vi = malloc(nnz * sizeof *vi);
    float *scratch = malloc((size_t)T * 3 * K * sizeof *scratch);
    if (!a->X || !a->Y || !a->G || !a->ui_off || !a->ui_col || !a->ui_r || !a->tw || !vu || !vi || !scratch) {
        free(vu);
        free(vi);
        free(scratch);
        free_arrays(a);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u users, %u items, %u factors)", U, I, K);
    }
    memcpy(a->ui_off, s->ui_off, ((size_t)U + 1) * sizeof *a->ui_off);
    memcpy(a->ui_col, s->ui_col, nnz * sizeof *a->ui_col);
    memcpy(a->ui_r, s->ui_val, nnz * sizeof *a->ui_r);
    if (s->n_types) memcpy(a->tw, s->type_weight, s->n_types * sizeof *a->tw);
    a->n_tw = s->n_types;
    for (uint64_t e = 0; e < nnz; e++) {
        vu[e] = signed_weight(a->alpha, a->conf, s->ui_val[e]);
        vi[e] = signed_weight(a->alpha, a->conf, s->iu_val[e]);
    }

    /* uniform [0, 0.01) as `implicit` does, users then items from one stream */
    shelf_rng rng;
    shelf_rng_seed(&rng, a->seed);
    for (size_t k = 0; k < (size_t)U * K; k++) a->X[k] = (float)(shelf_rng_uniform(&rng) * 0.01);
    for (size_t k = 0; k < (size_t)I * K; k++) a->Y[k] = (float)(shelf_rng_uniform(&rng) * 0.01);

    char note[64];
    for (int it = 0; it < a->iters; it++) {
        gram(a->G, a->Y, I, K, a->reg);
        solve_side(a->X, a->Y, a->G, U, K, s->ui_off, s->ui_col, vu, a->cg_steps, T, scratch);
        if (a->hook) a->hook(a->hook_ctx, m, it, 0);
        gram(a->G, a->X, U, K, a->reg);
        solve_side(a->Y, a->X, a->G, I, K, s->iu_off, s->iu_col, vi, a->cg_steps, T, scratch);
        if (a->hook) a->hook(a->hook_ctx, m, it, 1);
        snprintf(note, sizeof note, "iteration %d/%d", it + 1, a->iters);
        shelf_progress_update(pr, (uint64_t)it + 1, note);
    }
    gram(a->G, a->Y, I, K, a->reg); /* for fold-in */
    free(vu);
    free(vi);
    free(scratch);
    m->n_users = U;
    m->n_items = I;
    m->fitted = 1;
    return 0;
}

/* ---- fold-in ------------------------------------------------------------------------ */

typedef struct item_r {
    uint32_t item;
    float r;
} item_r;

static int cmp_item_r(const void *pa, const void *pb)
{
    const item_r *x = pa, *y = pb;
    return (x->item > y->item) - (x->item < y->item);
}

/* Sorts buf[0..n) by item and merges duplicates (r summed); returns the new
 * count. */
static uint32_t merge_sorted(item_r *buf, uint32_t n)
{
    qsort(buf, n, sizeof *buf, cmp_item_r);
    uint32_t k = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (k && buf[k - 1].item == buf[j].item) buf[k - 1].r += buf[j].r;
        else buf[k++] = buf[j];
    }
    return k;
}

/* x[K] (warm start in, solution out) for the rows (item, r) in buf[0..n),
 * distinct items; work: n + n floats + 3K floats, u32 n. */
static void solve_rows(const als_model *a, const item_r *buf, uint32_t n, float *x, uint32_t *cols, float *v,
                       float *scratch)
{
    uint32_t k = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (buf[j].r == 0.0f) continue;
        cols[k] = buf[j].item;
        v[k++] = signed_weight(a->alpha, a->conf, buf[j].r);
    }
    cg_solve(x, a->G, a->Y, cols, v, k, a->K, fold_steps(a), FOLD_RTOL, scratch);
}

int shelf__als_fold_in(const shelf_model *m, const uint32_t *items, const uint16_t *types, uint32_t n, float *x,
                       shelf_err *err)
{
    const als_model *a = (const als_model *)m;
    const uint32_t K = a->K;
    size_t bytes = (size_t)n * (sizeof(item_r) + sizeof(uint32_t) + sizeof(float)) + 3 * (size_t)K * sizeof(float);
    char *work = malloc(bytes ? bytes : 1);
    if (!work) return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory (fold-in of %u items)", n);
    item_r *buf = (item_r *)work;
    float *scratch = (float *)(buf + n);
    float *v = scratch + 3 * (size_t)K;
    uint32_t *cols = (uint32_t *)(v + n);
    for (uint32_t j = 0; j < n; j++) {
        buf[j].item = items[j];
        buf[j].r = types && types[j] < a->n_tw ? a->tw[types[j]] : 1.0f;
    }
    n = merge_sorted(buf, n);
    memset(x, 0, (size_t)K * sizeof *x);
    solve_rows(a, buf, n, x, cols, v, scratch);
    free(work);
    return 0;
}

/* ---- score, observe ----------------------------------------------------------------- */

/* 1 if item is among user u's interactions known to the model (training
 * or observed). */
static int user_has(const als_model *a, uint32_t u, uint32_t item)
{
    uint64_t lo = a->ui_off[u], hi = a->ui_off[u + 1];
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (a->ui_col[mid] < item) lo = mid + 1;
        else hi = mid;
    }
    if (lo < a->ui_off[u + 1] && a->ui_col[lo] == item) return 1;
    if (a->extra)
        for (uint32_t j = 0; j < a->extra[u].n; j++)
            if (a->extra[u].item[j] == item) return 1;
    return 0;
}

/* Known user u whose query history holds items the model has not seen for
 * them (als-fold-new): x[K] = u's row re-solved with those items added (r
 * from their types, as in fold-in), warm-started from x_u; the model does
 * not change. Returns 1 when it wrote x, 0 when the history holds nothing
 * new, or SHELF_ENOMEM. */
static int refold_user(const als_model *a, uint32_t u, const shelf_query *q, float *x)
{
    const uint32_t K = a->K;
    uint32_t n_new = 0;
    for (uint32_t j = 0; j < q->n; j++) n_new += !user_has(a, u, q->items[j]);
    if (n_new == 0) return 0;
    const uint64_t b = a->ui_off[u], n0 = a->ui_off[u + 1] - b;
    const uint32_t n_ex = a->extra ? a->extra[u].n : 0;
    const uint32_t n = (uint32_t)n0 + n_ex + n_new;
    size_t bytes = (size_t)n * (sizeof(item_r) + sizeof(uint32_t) + sizeof(float)) + 3 * (size_t)K * sizeof(float);
    char *work = malloc(bytes);
    if (!work) return SHELF_ENOMEM;
    item_r *buf = (item_r *)work;
    float *scratch = (float *)(buf + n);
    float *v = scratch + 3 * (size_t)K;
    uint32_t *cols = (uint32_t *)(v + n);
    uint32_t k = 0;
    for (uint64_t j = 0; j < n0; j++) buf[k++] = (item_r){a->ui_col[b + j], a->ui_r[b + j]};
    for (uint32_t j = 0; j < n_ex; j++) buf[k++] = (item_r){a->extra[u].item[j], a->extra[u].r[j]};
    for (uint32_t j = 0; j < q->n; j++) {
        if (user_has(a, u, q->items[j])) continue;
        float r = q->types && q->types[j] < a->n_tw ? a->tw[q->types[j]] : 1.0f;
        buf[k++] = (item_r){q->items[j], r};
    }
    k = merge_sorted(buf, k);
    memcpy(x, a->X + (size_t)u * K, (size_t)K * sizeof *x);
    solve_rows(a, buf, k, x, cols, v, scratch);
    free(work);
    return 1;
}

/* Known user: scores = Y x_u (sgemv), where x_u is the learned vector or,
 * with als-fold-new and history items the model has not seen for the user,
 * the re-solved one (refold_user). Anonymous (user SHELF_NONE): x folded in
 * from the history, then the same product. Reads only: safe from many
 * threads at once (not while observe runs). */
static int als_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    const als_model *a = (const als_model *)m;
    const uint32_t K = a->K;
    float *x = NULL;
    const float *xu = NULL;
    int rc = 0;
    if (q->user != SHELF_NONE && !(a->fold_new && q->n)) {
        xu = a->X + (size_t)q->user * K;
    } else {
        x = malloc((size_t)K * sizeof *x);
        if (!x) return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory");
        if (q->user == SHELF_NONE) {
            rc = shelf__als_fold_in(m, q->items, q->types, q->n, x, err);
        } else {
            rc = refold_user(a, q->user, q, x);
            if (rc == 0) memcpy(x, a->X + (size_t)q->user * K, (size_t)K * sizeof *x);
            if (rc == 1) rc = 0;
            if (rc) shelf__model_err(m, err, rc, "out of memory (history of %u items)", q->n);
        }
        xu = x;
    }
    if (!rc)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m->n_items, (int)K, 1.0f, a->Y, (int)K, xu, 1, 0.0f, scores,
                    1);
    free(x);
    return rc;
}

/* Adds (item, r) to a user's observed list (r summed on a repeat). */
static int extra_add(als_extra *x, uint32_t item, float r)
{
    for (uint32_t j = 0; j < x->n; j++)
        if (x->item[j] == item) {
            x->r[j] += r;
            return 0;
        }
    if (x->n == x->cap) {
        uint32_t cap = x->cap ? 2 * x->cap : 4;
        uint32_t *ni = realloc(x->item, cap * sizeof *ni);
        if (!ni) return SHELF_ENOMEM;
        x->item = ni;
        float *nr = realloc(x->r, cap * sizeof *nr);
        if (!nr) return SHELF_ENOMEM;
        x->r = nr;
        x->cap = cap;
    }
    x->item[x->n] = item;
    x->r[x->n++] = r;
    return 0;
}

/* User fold-in: the event joins the user's interactions (training ones and
 * those observed before, r summed per item) and the user's row is re-solved
 * against the fixed item factors, warm-started from the current x_u. Item
 * factors do not move. Cost O(n_u K + steps (K^2 + n_u K)). Not thread safe;
 * must not run while score does. Unknown users or items: SHELF_ENOTFOUND
 * (anonymous histories are folded in by score). */
static int als_observe(shelf_model *m, const shelf_event *e)
{
    als_model *a = (als_model *)m;
    const uint32_t K = a->K;
    if (e->user >= m->n_users)
        return shelf__model_fail(m, SHELF_ENOTFOUND, "observe: user %u is not in the model (%u users); "
                                 "score folds anonymous histories in", e->user, m->n_users);
    if (e->item >= m->n_items)
        return shelf__model_fail(m, SHELF_ENOTFOUND, "observe: item %u is not in the model (%u items)", e->item,
                                 m->n_items);
    if (!a->extra) {
        a->extra = calloc(m->n_users, sizeof *a->extra);
        if (!a->extra) return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    }
    als_extra *ex = &a->extra[e->user];
    float r = e->type < a->n_tw ? a->tw[e->type] : 1.0f;
    if (extra_add(ex, e->item, r)) return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");

    uint64_t b = a->ui_off[e->user], n0 = a->ui_off[e->user + 1] - b;
    uint32_t n = (uint32_t)n0 + ex->n;
    size_t bytes = (size_t)n * (sizeof(item_r) + sizeof(uint32_t) + sizeof(float)) + 3 * (size_t)K * sizeof(float);
    char *work = malloc(bytes);
    if (!work) return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    item_r *buf = (item_r *)work;
    float *scratch = (float *)(buf + n);
    float *v = scratch + 3 * (size_t)K;
    uint32_t *cols = (uint32_t *)(v + n);
    for (uint64_t j = 0; j < n0; j++) buf[j] = (item_r){a->ui_col[b + j], a->ui_r[b + j]};
    for (uint32_t j = 0; j < ex->n; j++) buf[n0 + j] = (item_r){ex->item[j], ex->r[j]};
    n = merge_sorted(buf, n);
    solve_rows(a, buf, n, a->X + (size_t)e->user * K, cols, v, scratch);
    free(work);
    return 0;
}

/* ---- save, load --------------------------------------------------------------------- */

/* Folds the observed lists into the CSR (the model's content is unchanged,
 * only its layout), so that a bundle carries them. */
static int compact_extra(als_model *a)
{
    if (!a->extra) return 0;
    const uint32_t U = a->base.n_users;
    uint64_t cap = a->ui_off[U];
    for (uint32_t u = 0; u < U; u++) cap += a->extra[u].n;
    uint64_t *off = malloc(((size_t)U + 1) * sizeof *off);
    uint32_t *col = malloc((cap ? cap : 1) * sizeof *col);
    float *rv = malloc((cap ? cap : 1) * sizeof *rv);
    item_r *buf = NULL;
    size_t buf_cap = 0;
    int rc = 0;
    if (!off || !col || !rv) rc = SHELF_ENOMEM;
    uint64_t k = 0;
    for (uint32_t u = 0; u < U && !rc; u++) {
        off[u] = k;
        uint64_t b = a->ui_off[u], n0 = a->ui_off[u + 1] - b;
        size_t n = (size_t)n0 + a->extra[u].n;
        if (n > buf_cap) {
            item_r *nb = realloc(buf, n * sizeof *nb);
            if (!nb) {
                rc = SHELF_ENOMEM;
                break;
            }
            buf = nb;
            buf_cap = n;
        }
        for (uint64_t j = 0; j < n0; j++) buf[j] = (item_r){a->ui_col[b + j], a->ui_r[b + j]};
        for (uint32_t j = 0; j < a->extra[u].n; j++) buf[n0 + j] = (item_r){a->extra[u].item[j], a->extra[u].r[j]};
        uint32_t m = merge_sorted(buf, (uint32_t)n);
        for (uint32_t j = 0; j < m; j++) {
            col[k] = buf[j].item;
            rv[k++] = buf[j].r;
        }
    }
    free(buf);
    if (rc) {
        free(off);
        free(col);
        free(rv);
        return rc;
    }
    off[U] = k;
    free(a->ui_off);
    free(a->ui_col);
    free(a->ui_r);
    a->ui_off = off;
    a->ui_col = col;
    a->ui_r = rv;
    free_extra(a);
    return 0;
}

static int als_save(const shelf_model *m, shelf_bundle_writer *w)
{
    /* a bundle must carry the observed events: fold them into the CSR first
     * (a layout change of our own heap object, invisible to readers) */
    als_model *a = (als_model *)(uintptr_t)m;
    if (compact_extra(a)) return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    const int64_t sx[2] = {m->n_users, a->K}, sy[2] = {m->n_items, a->K};
    const int64_t so[1] = {(int64_t)m->n_users + 1}, sn[1] = {(int64_t)a->ui_off[m->n_users]};
    const int64_t st[1] = {a->n_tw};
    /* 8-byte tensors first: the data section stays aligned */
    int rc = shelf_bundle_put(w, "ui_off", SHELF_DT_U64, 1, so, a->ui_off);
    if (!rc) rc = shelf_bundle_put(w, "user_factors", SHELF_DT_F32, 2, sx, a->X);
    if (!rc) rc = shelf_bundle_put(w, "item_factors", SHELF_DT_F32, 2, sy, a->Y);
    if (!rc && sn[0]) rc = shelf_bundle_put(w, "ui_col", SHELF_DT_U32, 1, sn, a->ui_col);
    if (!rc && sn[0]) rc = shelf_bundle_put(w, "ui_r", SHELF_DT_F32, 1, sn, a->ui_r);
    if (!rc && a->n_tw) rc = shelf_bundle_put(w, "type_weight", SHELF_DT_F32, 1, st, a->tw);
    if (!rc) rc = shelf_bundle_set_num(w, "als-factors", a->K);
    if (!rc) rc = shelf_bundle_set_num(w, "als-iters", a->iters);
    if (!rc) rc = shelf_bundle_set_num(w, "als-alpha", a->alpha);
    if (!rc) rc = shelf_bundle_set_num(w, "als-reg", a->reg);
    if (!rc) rc = shelf_bundle_set_num(w, "als-cg-steps", a->cg_steps);
    if (!rc) rc = shelf_bundle_set_str(w, "als-conf", a->conf == CONF_WEIGHTS ? "weights" : "binary");
    if (!rc) rc = shelf_bundle_set_num(w, "als-fold-new", a->fold_new);
    if (!rc) rc = shelf_bundle_set_num(w, "seed", (double)a->seed);
    return rc;
}

/* Copy of a bundle tensor of dt with the expected shape ([d0] or [d0,d1]),
 * or NULL after setting the model's error. */
static void *take(shelf_model *m, const shelf_bundle *b, const char *name, shelf_dtype dt, int ndim, int64_t d0,
                  int64_t d1, size_t elem)
{
    int nd = 0;
    int64_t sh[4] = {0};
    const void *p = shelf_bundle_get(b, name, dt, &nd, sh);
    if (!p || nd != ndim || sh[0] != d0 || (ndim == 2 && sh[1] != d1)) {
        if (ndim == 2)
            shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor '%s' [%lld, %lld]", name, (long long)d0,
                              (long long)d1);
        else
            shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor '%s' [%lld]", name, (long long)d0);
        return NULL;
    }
    size_t n = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    void *q = malloc(n ? n * elem : 1);
    if (!q) {
        shelf__model_fail(m, SHELF_ENOMEM, "out of memory (tensor '%s')", name);
        return NULL;
    }
    if (n) memcpy(q, p, n * elem);
    return q;
}

static int als_load(shelf_model *m, const shelf_bundle *b)
{
    als_model *a = (als_model *)m;
    const uint32_t U = m->n_users, I = m->n_items;
    double Kd = shelf_bundle_num(b, "als-factors", 0);
    if (!(Kd >= 1 && Kd <= 4096) || U == 0 || I == 0)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: bad sizes (factors %g, %u users, %u items)", Kd, U, I);
    const uint32_t K = (uint32_t)Kd;
    free_arrays(a);
    a->K = K;
    a->iters = (int)shelf_bundle_num(b, "als-iters", 0);
    a->alpha = shelf_bundle_num(b, "als-alpha", 0);
    a->reg = shelf_bundle_num(b, "als-reg", 0);
    a->cg_steps = (int)shelf_bundle_num(b, "als-cg-steps", 3);
    if (a->cg_steps < 1) a->cg_steps = 1;
    const char *conf = shelf_bundle_str(b, "als-conf");
    a->conf = conf && strcmp(conf, "weights") == 0 ? CONF_WEIGHTS : CONF_BINARY;
    a->fold_new = shelf_bundle_num(b, "als-fold-new", 0) != 0;
    a->seed = (uint64_t)shelf_bundle_num(b, "seed", 0);
    if (!(a->alpha >= 0) || !(a->reg >= 0))
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle: bad alpha %g or reg %g", a->alpha, a->reg);

    a->X = take(m, b, "user_factors", SHELF_DT_F32, 2, U, K, sizeof(float));
    if (a->X) a->Y = take(m, b, "item_factors", SHELF_DT_F32, 2, I, K, sizeof(float));
    if (a->Y) a->ui_off = take(m, b, "ui_off", SHELF_DT_U64, 1, (int64_t)U + 1, 0, sizeof(uint64_t));
    int rc = a->ui_off ? 0 : m->err.code;
    uint64_t nnz = a->ui_off ? a->ui_off[U] : 0;
    if (!rc) {
        int bad = a->ui_off[0] != 0;
        for (uint32_t u = 0; u < U && !bad; u++) bad = a->ui_off[u + 1] < a->ui_off[u];
        if (bad || nnz > (uint64_t)U * I)
            rc = shelf__model_fail(m, SHELF_ECORRUPT, "bundle: tensor 'ui_off' is not a CSR offset array");
    }
    if (!rc && nnz) {
        a->ui_col = take(m, b, "ui_col", SHELF_DT_U32, 1, (int64_t)nnz, 0, sizeof(uint32_t));
        if (a->ui_col) a->ui_r = take(m, b, "ui_r", SHELF_DT_F32, 1, (int64_t)nnz, 0, sizeof(float));
        if (!a->ui_r) rc = m->err.code;
        for (uint64_t e = 0; !rc && e < nnz; e++)
            if (a->ui_col[e] >= I)
                rc = shelf__model_fail(m, SHELF_ECORRUPT, "bundle: tensor 'ui_col' holds item %u >= %u",
                                       a->ui_col[e], I);
    } else if (!rc) {
        a->ui_col = malloc(sizeof *a->ui_col);
        a->ui_r = malloc(sizeof *a->ui_r);
        if (!a->ui_col || !a->ui_r) rc = shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    }
    if (!rc) {
        int nd = 0;
        int64_t sh[4] = {0};
        const float *tw = shelf_bundle_get(b, "type_weight", SHELF_DT_F32, &nd, sh);
        a->n_tw = tw && nd == 1 && sh[0] > 0 && sh[0] < 65536 ? (uint32_t)sh[0] : 0;
        a->tw = malloc((a->n_tw ? a->n_tw : 1) * sizeof *a->tw);
        a->G = malloc((size_t)K * K * sizeof *a->G);
        if (!a->tw || !a->G) rc = shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
        else if (a->n_tw) memcpy(a->tw, tw, a->n_tw * sizeof *a->tw);
    }
    if (rc) {
        free_arrays(a);
        return rc;
    }
    gram(a->G, a->Y, I, K, a->reg);
    m->fitted = 1;
    return 0;
}

/* ---- test hooks ----------------------------------------------------------------------- */

int shelf__als_loss(const shelf_model *m, const shelf_snapshot *s, double *loss)
{
    const als_model *a = (const als_model *)m;
    const uint32_t U = s->n_users, I = s->n_items, K = a->K;
    if (!a->X || !a->Y || U != m->n_users || I != m->n_items)
        return shelf__model_fail(m, SHELF_EINVAL, "loss: snapshot of %u x %u, model of %u x %u", U, I,
                                 m->n_users, m->n_items);
    double *xx = calloc((size_t)K * K, sizeof *xx), *yy = calloc((size_t)K * K, sizeof *yy);
    if (!xx || !yy) {
        free(xx);
        free(yy);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    }
    /* sum over all pairs of s_ui^2 = <X^T X, Y^T Y> (the c = 1, p = 0 part) */
    double reg = 0;
    for (uint32_t u = 0; u < U; u++) {
        const float *x = a->X + (size_t)u * K;
        for (uint32_t k = 0; k < K; k++) {
            reg += (double)x[k] * x[k];
            for (uint32_t l = 0; l < K; l++) xx[k * K + l] += (double)x[k] * x[l];
        }
    }
    for (uint32_t i = 0; i < I; i++) {
        const float *y = a->Y + (size_t)i * K;
        for (uint32_t k = 0; k < K; k++) {
            reg += (double)y[k] * y[k];
            for (uint32_t l = 0; l < K; l++) yy[k * K + l] += (double)y[k] * y[l];
        }
    }
    double L = 0;
    for (size_t k = 0; k < (size_t)K * K; k++) L += xx[k] * yy[k];
    /* the nonzeros: c (p - s)^2 replaces the s^2 counted above */
    for (uint32_t u = 0; u < U; u++) {
        for (uint64_t e = s->ui_off[u]; e < s->ui_off[u + 1]; e++) {
            if (s->ui_val[e] == 0.0f) continue;
            float v = signed_weight(a->alpha, a->conf, s->ui_val[e]);
            double sc = 0;
            const float *x = a->X + (size_t)u * K, *y = a->Y + (size_t)s->ui_col[e] * K;
            for (uint32_t k = 0; k < K; k++) sc += (double)x[k] * y[k];
            double c = 1.0 + fabs((double)v), p = signbit(v) ? 0.0 : 1.0;
            L += c * (p - sc) * (p - sc) - sc * sc;
        }
    }
    free(xx);
    free(yy);
    *loss = L + a->reg * reg;
    return 0;
}

void shelf__als_set_hook(shelf_model *m, shelf__als_hook fn, void *ctx)
{
    als_model *a = (als_model *)m;
    a->hook = fn;
    a->hook_ctx = ctx;
}

void shelf__als_factors(const shelf_model *m, const float **X, const float **Y, uint32_t *K)
{
    const als_model *a = (const als_model *)m;
    if (X) *X = a->X;
    if (Y) *Y = a->Y;
    if (K) *K = a->K;
}

/* the item factors Y as the item vectors */
static const float *als_item_vectors(const shelf_model *m, uint32_t *dim)
{
    const als_model *a = (const als_model *)m;
    *dim = a->K;
    return a->Y;
}

/* the vtable and what registry.c needs to make one (models_int.h) */
SHELF__MODEL_KIND(als, als, "als",
                  SHELF_CAP_ONLINE | SHELF_CAP_SIMILAR | SHELF_CAP_NEEDS_HISTORY | SHELF_CAP_ITEM_VECTORS,
                  /* observe */ als_observe, /* explain */ NULL, /* predict */ NULL, SHELF__NO_SESSION,
                  .item_vectors = als_item_vectors);
