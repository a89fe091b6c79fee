/* mf_int.h: internals of the matrix-factorisation models (als.c, bpr.c) that
 * their unit tests reach: the ALS conjugate-gradient row solver, the ALS
 * loss and an iteration hook, fold-in, and views of the fitted factors. */
#ifndef SHELF_MODELS_MF_INT_H
#define SHELF_MODELS_MF_INT_H

#include "models/models_int.h"

/* ---- ALS ------------------------------------------------------------------------ */

/* One row of implicit ALS by conjugate gradients, warm-started from x[K]:
 *   (G + sum_n w_n y_n y_n^T) x = sum_{n: v_n > 0} (1 + w_n) y_n
 * with G [K,K] = Y^T Y + reg I (full, symmetric, row-major), Y [*,K] the
 * fixed factors of the other side, the row's nonzeros cols[0..n) with signed
 * weights v[n] (v > 0: preference 1, confidence 1 + v; v < 0: preference 0,
 * confidence 1 - v; w = |v|). At most `steps` CG steps; stops early when the
 * squared residual falls below 1e-20. scratch: 3K floats. Writes x. */
void shelf__als_cg(float *x, const float *G, const float *Y, const uint32_t *cols, const float *v,
                   uint32_t n, uint32_t K, int steps, float *scratch);

/* The objective ALS minimises, for a model fitted (or being fitted) on
 * train: sum over ALL (u, i) of c_ui (p_ui - x_u.y_i)^2 + reg (|X|^2 + |Y|^2),
 * in double. SHELF_EINVAL if train's sizes differ from the model's. */
int shelf__als_loss(const shelf_model *m, const shelf_snapshot *train, double *loss);

/* Called during fit after every half-iteration (half 0: users solved, 1:
 * items solved) with the model's factors current; NULL to remove. */
typedef void (*shelf__als_hook)(void *ctx, const shelf_model *m, int iter, int half);
void shelf__als_set_hook(shelf_model *m, shelf__als_hook fn, void *ctx);

/* A user vector x[K] solved from a history (as score does for an anonymous
 * query): each distinct item's r is the sum over its events of their type's
 * weight (1 when types is NULL or a type is unknown; als-conf binary uses
 * only the sign of r), solved from zero by CG to a relative residual of
 * 1e-4 (at most max(cg_steps, min(K, 64)) steps). */
int shelf__als_fold_in(const shelf_model *m, const uint32_t *items, const uint16_t *types, uint32_t n,
                       float *x, shelf_err *err);

/* Views of the factors: X [U,K] users, Y [I,K] items. */
void shelf__als_factors(const shelf_model *m, const float **X, const float **Y, uint32_t *K);

/* ---- BPR ------------------------------------------------------------------------ */

/* Views of the factors: P [U,K] users, Q [I,K] items, b [I] item biases
 * (zeros when biases are off). */
void shelf__bpr_factors(const shelf_model *m, const float **P, const float **Q, const float **b,
                        uint32_t *K);

#endif
