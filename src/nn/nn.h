/* nn.h (internal, not installed): the neural-network kernels of the
 * transformer profile model, each a forward/backward pair in float32,
 * row-major (llm.c style). Attention lives in attention.h and the
 * optimizer in optim.h; this header holds the rest.
 *
 * Conventions for every kernel here:
 *  - arguments are ordered outputs, inputs/weights, sizes;
 *  - backward passes ACCUMULATE (+=) into gradient buffers, so a buffer used
 *    twice (tied weights, residual streams) gets both contributions; zero the
 *    gradients once per step. The loss backwards are the one exception noted
 *    where they may run in place;
 *  - kernels never allocate, never fail and never print: shapes and pointers
 *    are the caller's invariants (SHELF_ASSERT on the few that are checked);
 *  - row loops run under OpenMP when the work is large enough to pay; results
 *    do not depend on the thread count (no parallel reductions into shared
 *    sums: per-row values are written and then summed serially);
 *  - a target or index equal to SHELF_NN_PAD marks a padding row: it produces
 *    zeros, contributes no loss and receives no gradient.
 *
 * Dimension letters: N rows (batch x positions, flattened), C input
 * channels, OC output channels, V vocabulary (catalogue) size, S sampled
 * negatives per row, K negatives per row for binary cross-entropy. */
#ifndef SHELF_NN_H
#define SHELF_NN_H

#include <stddef.h>
#include <stdint.h>

#include "shelf/core.h"
#include "core/assert_int.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Padding index / target: ignored everywhere it is accepted. */
#define SHELF_NN_PAD UINT32_MAX

/* ---- embedding lookup ----------------------------------------------------
 * out[N,C] = table[idx[n], :]   (table[n_rows,C]; idx[N] < n_rows or PAD)
 * A PAD index gives a zero row. Backward scatter-adds: dtable[idx[n]] +=
 * dout[n] (PAD rows skipped). Repeated indices accumulate; the backward is
 * serial (parallel rows with repeated indices would race), hence
 * deterministic. */
void shelf_nn_embedding_forward(float *out, const uint32_t *idx, const float *table, size_t N, size_t C);
void shelf_nn_embedding_backward(float *dtable, const float *dout, const uint32_t *idx, size_t N, size_t C);

/* ---- LayerNorm -----------------------------------------------------------
 * out[N,C] = (inp - mean) * rstd * weight[C] + bias[C], rstd = 1/sqrt(var +
 * 1e-5) with the biased variance (as torch.nn.LayerNorm). mean[N] and rstd[N]
 * are saved for the backward. dinp[N,C], dweight[C], dbias[C] accumulate;
 * any of them may be NULL to skip it. */
#define SHELF_NN_LN_EPS 1e-5f
void shelf_nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                const float *bias, size_t N, size_t C);
void shelf_nn_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                 const float *weight, const float *mean, const float *rstd, size_t N, size_t C);

/* ---- linear --------------------------------------------------------------
 * out[N,OC] = inp[N,C] . weight[C,OC] + bias[OC]   (bias may be NULL)
 *
 * Weight layout: weight is [C,OC] row-major (input channels major), i.e. the
 * B operand of the forward product is used untransposed (CblasNoTrans,
 * CblasNoTrans). The forward is the product that also runs at serving time,
 * and DESIGN.md measured a transposed B about 2.5x slower at small sizes. The
 * backward needs dinp = dout . weight^T (transposed B, unavoidable with one
 * stored layout) and dweight = inp^T . dout (transposed A, cheap).
 * NOTE: torch.nn.Linear stores [OC,C]; transpose when importing/exporting.
 *
 * Backward: dinp[N,C] += dout . W^T, dweight[C,OC] += inp^T . dout,
 * dbias[OC] += sum_n dout[n]. Any of dinp, dweight, dbias may be NULL.
 * The _ref versions are the naive loops the tests compare against. */
void shelf_nn_linear_forward(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                             size_t C, size_t OC);
void shelf_nn_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, size_t N, size_t C, size_t OC);
void shelf_nn_linear_forward_ref(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                                 size_t C, size_t OC);
void shelf_nn_linear_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                  const float *weight, size_t N, size_t C, size_t OC);

/* ---- GELU ----------------------------------------------------------------
 * Tanh approximation, as GPT-2 / llm.c / torch GELU(approximate='tanh'):
 *   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 * Elementwise over n values; dinp[n] += gelu'(inp) * dout. */
void shelf_nn_gelu_forward(float *out, const float *inp, size_t n);
void shelf_nn_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* ---- dropout (inverted) --------------------------------------------------
 * out[i] = inp[i] * mask[i] / (1 - p), with mask[i] = 0 with probability p,
 * else 1. The mask is SAVED as bytes (mask[n], 0 or 1) for the backward
 * rather than recomputed from the seed: it costs n bytes and keeps the
 * backward independent of RNG state. The mask takes ONE draw from rng as a
 * seed; chunk c of SHELF_NN_DROPOUT_CHUNK elements then draws from its own
 * stream shelf_rng_split(seed, c) (each 64-bit draw decides two elements:
 * kept when its 32-bit half >= p * 2^32), so chunks run in parallel and a
 * given rng state gives the same mask whatever the thread count.
 * p == 0: out = inp, mask all ones, rng not advanced. Requires 0 <= p < 1.
 * Backward: dinp[i] += dout[i] * mask[i] / (1 - p). out may equal inp. */
#define SHELF_NN_DROPOUT_CHUNK 16384
void shelf_nn_dropout_forward(float *out, uint8_t *mask, const float *inp, float p, shelf_rng *rng, size_t n);
void shelf_nn_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, float p, size_t n);

/* ---- residual add --------------------------------------------------------
 * out[n] = a[n] + b[n]; backward da += dout, db += dout. */
void shelf_nn_residual_forward(float *out, const float *a, const float *b, size_t n);
void shelf_nn_residual_backward(float *da, float *db, const float *dout, size_t n);

/* ---- softmax cross-entropy over the whole catalogue -----------------------
 * logits[N,V], targets[N] (< V, or PAD). For each valid row
 *   losses[n] = lse[n] - logits[n, targets[n]],  lse = log sum_v exp(logits)
 * computed stably (max subtracted). Padding rows get losses[n] = 0 and
 * lse[n] = 0. Returns the mean of losses over valid rows (0 if none); the sum
 * is taken serially in double, so it is independent of the thread count.
 * lse[N] is saved for the backward.
 *
 * Backward with upstream dloss (the gradient of the returned mean):
 *   dlogits[n,v] += dloss / n_valid * (softmax(logits[n])_v - [v == t_n])
 * In place is allowed: if dlogits == logits, the logits are OVERWRITTEN by
 * their gradient (padding rows become zeros) instead of accumulated into --
 * this saves an N x V buffer when V is the whole catalogue. */
float shelf_nn_softmax_ce_forward(float *losses, float *lse, const float *logits, const uint32_t *targets, size_t N,
                                  size_t V);
void shelf_nn_softmax_ce_backward(float *dlogits, const float *logits, const float *lse, const uint32_t *targets,
                                  float dloss, size_t N, size_t V);

/* ---- sampled softmax with log-Q correction -------------------------------
 * logits[N,1+S]: column 0 is the row's target logit, columns 1..S the logits
 * of S sampled negatives. Negative j of row n has item id
 * neg_ids[n*neg_stride + j] and sampling probability neg_q[n*neg_stride + j]
 * (> 0); neg_stride = 0 means the S negatives are shared by all rows (the
 * cheap case: one N x C x S product), neg_stride = S means per-row negatives.
 *
 * Correction (Yi et al., "Sampling-bias-corrected neural modeling for large
 * corpus item recommendations", RecSys 2019, eq. 3; same as TensorFlow's
 * sampled_softmax_loss with subtract_log_q): with S draws, the expected
 * count of item j among the samples is S q_j, and
 *   corrected logit of negative j  = logit_j - log(S q_j)
 *   corrected logit of the target  = logit_t - log(S pos_q[n])   if pos_q
 *                                  = logit_t                     if pos_q NULL
 *   losses[n] = -log softmax(corrected)_0
 * over column 0 and the negatives whose id != targets[n] ("accidental hits"
 * are masked out: they take no part in the softmax and get zero gradient).
 * The correction is an additive constant per column, so the gradient with
 * respect to the raw logits is that with respect to the corrected ones:
 *   dlogits[n,0] += g (p_0 - 1),  dlogits[n,j] += g p_j (0 for masked),
 * g = dloss / n_valid, p = softmax of the corrected, unmasked logits.
 * Padding rows (targets[n] == PAD): losses 0, lse 0, no gradient. lse[N]
 * (log-sum-exp of the corrected logits) is saved for the backward. Returns the
 * mean over valid rows. In-place backward (dlogits == logits) overwrites as
 * for the full softmax. */
float shelf_nn_sampled_softmax_forward(float *losses, float *lse, const float *logits, const uint32_t *targets,
                                       const uint32_t *neg_ids, const float *neg_q, size_t neg_stride,
                                       const float *pos_q, size_t N, size_t S);
void shelf_nn_sampled_softmax_backward(float *dlogits, const float *logits, const float *lse,
                                       const uint32_t *targets, const uint32_t *neg_ids, const float *neg_q,
                                       size_t neg_stride, const float *pos_q, float dloss, size_t N, size_t S);

/* ---- binary cross-entropy with sampled negatives -------------------------
 * logits[N,1+K]: column 0 the positive's logit, columns 1..K negatives.
 *   losses[n] = -log sigmoid(x_0) - sum_k log(1 - sigmoid(x_k))
 *             = softplus(-x_0) + sum_k softplus(x_k),
 * softplus(x) = max(x,0) + log1p(exp(-|x|)) (stable for any x).
 * targets[N] may be NULL (all rows valid); a PAD target marks a padding row.
 * neg_ids (row stride neg_stride, 0 = shared) may be NULL; when given, a
 * negative whose id equals targets[n] is masked out (no loss, no gradient).
 * Returns the mean of losses over valid rows. Backward:
 *   dlogits[n,0] += g (sigmoid(x_0) - 1),  dlogits[n,k] += g sigmoid(x_k),
 * g = dloss / n_valid. */
float shelf_nn_bce_forward(float *losses, const float *logits, const uint32_t *targets, const uint32_t *neg_ids,
                           size_t neg_stride, size_t N, size_t K);
void shelf_nn_bce_backward(float *dlogits, const float *logits, const uint32_t *targets, const uint32_t *neg_ids,
                           size_t neg_stride, float dloss, size_t N, size_t K);


/* ---- fused full-catalogue softmax cross-entropy head ----------------------
 * The output layer of a tied-embedding model. Rows n < N (no padding rows
 * here: the caller gathers the rows with a target), h[N,C], w[V,C] (the item
 * table, row-major), targets tgt[N] < V:
 *   logits[n,v] = h[n,:] . w[v,:]
 *   loss        = mean_n (lse_n - logits[n, tgt[n]])           (returned)
 *   losses[n]   = lse_n - logits[n, tgt[n]]   (losses may be NULL)
 * With dh != NULL (backward, upstream gradient dloss of the mean):
 *   G[n,v]  = dloss / N * (softmax(logits[n])_v - [v == tgt[n]])
 *   dh[n,:] = sum_v G[n,v] w[v,:]      OVERWRITTEN
 *   dw[v,:] += sum_n G[n,v] h[n,:]      ACCUMULATED (dw may be NULL)
 * The [N,V] logits never need to exist all at once in memory: the head works
 * in chunks that stay in cache, with a vectorised exp.
 * Precision: SHELF_NN_F32 keeps float32 everywhere (sgemm-equivalent);
 * SHELF_NN_BF16 rounds h, w and G to bfloat16 for the three products and
 * accumulates in float32 (AVX-512 BF16 dot products when the compiler
 * targets them, else it computes exactly as F32), the softmax itself in
 * float32. Results do not depend on the thread count.
 * ws: work space from shelf_nn_cehead_ws_new(max_N, V, C) (reusable across
 * calls with N <= max_N; not shared by concurrent calls). The _ref version is
 * the naive float32 triple loop the tests compare against. */
typedef enum { SHELF_NN_F32 = 0, SHELF_NN_BF16 = 1 } shelf_nn_precision;
typedef struct shelf_nn_cehead_ws shelf_nn_cehead_ws;
shelf_nn_cehead_ws *shelf_nn_cehead_ws_new(size_t max_N, size_t V, size_t C); /* NULL: out of memory */
void shelf_nn_cehead_ws_free(shelf_nn_cehead_ws *ws);                         /* accepts NULL */
float shelf_nn_cehead(float *losses, float *dh, float *dw, const float *h, const float *w, const uint32_t *tgt,
                      float dloss, size_t N, size_t V, size_t C, shelf_nn_precision prec, shelf_nn_cehead_ws *ws);
float shelf_nn_cehead_ref(float *losses, float *dh, float *dw, const float *h, const float *w, const uint32_t *tgt,
                          float dloss, size_t N, size_t V, size_t C);

#ifdef __cplusplus
}
#endif
#endif
