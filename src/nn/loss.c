/* loss.c: the training losses of nn.h: softmax cross-entropy over the whole
 * catalogue, sampled softmax with log-Q correction, and binary cross-entropy
 * with sampled negatives. Per-row losses are written, then summed serially in
 * double, so results do not depend on the thread count.
 *
 * Dimension letters: N rows, V catalogue size, S sampled negatives per row,
 * K binary negatives per row. */
#include "nn/nn.h"

#include <math.h>
#include <string.h>

#include "kern_int.h"
#include "vexp_int.h" /* the scalar exp: no libm call per element */
#include "core/assert_int.h"

#define PAR_MIN_WORK 32768 /* floats of work below which a loop stays serial */

static size_t count_valid(const uint32_t *targets, size_t N)
{
    if (!targets) return N;
    size_t k = 0;
    for (size_t n = 0; n < N; n++) k += targets[n] != SHELF_NN_PAD;
    return k;
}

static float mean_valid(const float *losses, const uint32_t *targets, size_t N)
{
    double s = 0.0;
    size_t k = 0;
    for (size_t n = 0; n < N; n++) {
        if (targets && targets[n] == SHELF_NN_PAD) continue;
        s += losses[n];
        k++;
    }
    return k ? (float)(s / (double)k) : 0.0f;
}

/* softplus(x) = log(1 + e^x), stable for any x */
static inline float softplus(float x)
{
    return fmaxf(x, 0.0f) + log1pf(shelf__vexpf(-fabsf(x)));
}

static inline float sigmoid(float x)
{
    if (x >= 0.0f) return 1.0f / (1.0f + shelf__vexpf(-x));
    float e = shelf__vexpf(x);
    return e / (1.0f + e);
}

/* ========================================================================
 * full softmax cross-entropy
 * ======================================================================== */

/* losses[N], lse[N] <- logits[N,V], targets[N]; returns the mean loss */
float shelf_nn_softmax_ce_forward(float *losses, float *lse, const float *logits, const uint32_t *targets, size_t N,
                                  size_t V)
{
    const shelf__kern *k = shelf__kern_get(); /* max, sum_exp: vectorised, order fixed by V */
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN_WORK)
    for (size_t n = 0; n < N; n++) {
        if (targets[n] == SHELF_NN_PAD) {
            losses[n] = 0.0f;
            lse[n] = 0.0f;
            continue;
        }
        SHELF_ASSERT(targets[n] < V);
        const float *x = logits + n * V;
        float mx = k->max(x, V);
        float l = mx + (float)log(k->sum_exp(x, mx, V));
        lse[n] = l;
        losses[n] = l - x[targets[n]];
    }
    return mean_valid(losses, targets, N);
}

/* dlogits[N,V] += (or = when dlogits == logits) dloss/n_valid (softmax - 1hot) */
void shelf_nn_softmax_ce_backward(float *dlogits, const float *logits, const float *lse, const uint32_t *targets,
                                  float dloss, size_t N, size_t V)
{
    size_t nv = count_valid(targets, N);
    int inplace = dlogits == logits;
    float g = nv ? dloss / (float)nv : 0.0f;
    const shelf__kern *k = shelf__kern_get();
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN_WORK)
    for (size_t n = 0; n < N; n++) {
        float *d = dlogits + n * V;
        if (targets[n] == SHELF_NN_PAD) {
            if (inplace) memset(d, 0, V * sizeof *d);
            continue;
        }
        k->scaled_exp(d, logits + n * V, lse[n], g, inplace, V);
        d[targets[n]] -= g;
    }
}

/* ========================================================================
 * sampled softmax with log-Q correction
 * ======================================================================== */

/* corrected logit of column j (0 = target) of row n, or -INFINITY if masked */
static inline float sampled_z(const float *x, size_t n, size_t j, uint32_t t, const uint32_t *neg_ids,
                              const float *neg_q, size_t neg_stride, const float *pos_q, size_t S)
{
    if (j == 0) return pos_q ? x[0] - logf((float)S * pos_q[n]) : x[0];
    size_t k = n * neg_stride + (j - 1);
    if (neg_ids[k] == t) return -INFINITY; /* accidental hit */
    return x[j] - logf((float)S * neg_q[k]);
}

/* losses[N], lse[N] <- logits[N,1+S] and the samples; returns the mean */
float shelf_nn_sampled_softmax_forward(float *losses, float *lse, const float *logits, const uint32_t *targets,
                                       const uint32_t *neg_ids, const float *neg_q, size_t neg_stride,
                                       const float *pos_q, size_t N, size_t S)
{
    size_t W = S + 1;
#pragma omp parallel for schedule(static) if (N * W >= PAR_MIN_WORK)
    for (size_t n = 0; n < N; n++) {
        uint32_t t = targets[n];
        if (t == SHELF_NN_PAD) {
            losses[n] = 0.0f;
            lse[n] = 0.0f;
            continue;
        }
        const float *x = logits + n * W;
        float mx = -INFINITY;
        for (size_t j = 0; j < W; j++) mx = fmaxf(mx, sampled_z(x, n, j, t, neg_ids, neg_q, neg_stride, pos_q, S));
        double s = 0.0;
        for (size_t j = 0; j < W; j++) {
            float z = sampled_z(x, n, j, t, neg_ids, neg_q, neg_stride, pos_q, S);
            if (z != -INFINITY) s += shelf__vexpf(z - mx);
        }
        float l = mx + (float)log(s);
        lse[n] = l;
        losses[n] = l - sampled_z(x, n, 0, t, neg_ids, neg_q, neg_stride, pos_q, S);
    }
    return mean_valid(losses, targets, N);
}

/* dlogits[N,1+S] += (or = in place) dloss/n_valid (p - onehot(0)) */
void shelf_nn_sampled_softmax_backward(float *dlogits, const float *logits, const float *lse,
                                       const uint32_t *targets, const uint32_t *neg_ids, const float *neg_q,
                                       size_t neg_stride, const float *pos_q, float dloss, size_t N, size_t S)
{
    size_t W = S + 1;
    size_t nv = count_valid(targets, N);
    int inplace = dlogits == logits;
    float g = nv ? dloss / (float)nv : 0.0f;
#pragma omp parallel for schedule(static) if (N * W >= PAR_MIN_WORK)
    for (size_t n = 0; n < N; n++) {
        uint32_t t = targets[n];
        float *d = dlogits + n * W;
        if (t == SHELF_NN_PAD) {
            if (inplace) memset(d, 0, W * sizeof *d);
            continue;
        }
        const float *x = logits + n * W;
        float l = lse[n];
        for (size_t j = 0; j < W; j++) {
            float z = sampled_z(x, n, j, t, neg_ids, neg_q, neg_stride, pos_q, S);
            float v = z == -INFINITY ? 0.0f : g * (shelf__vexpf(z - l) - (j == 0 ? 1.0f : 0.0f));
            if (inplace)
                d[j] = v; /* x[j] was read by sampled_z before this write */
            else
                d[j] += v;
        }
    }
}

/* ========================================================================
 * binary cross-entropy with sampled negatives
 * ======================================================================== */

static inline int bce_masked(const uint32_t *targets, const uint32_t *neg_ids, size_t neg_stride, size_t n,
                             size_t k)
{
    return targets && neg_ids && neg_ids[n * neg_stride + k] == targets[n];
}

/* losses[N] <- logits[N,1+K]; returns the mean over valid rows */
float shelf_nn_bce_forward(float *losses, const float *logits, const uint32_t *targets, const uint32_t *neg_ids,
                           size_t neg_stride, size_t N, size_t K)
{
    size_t W = K + 1;
#pragma omp parallel for schedule(static) if (N * W >= PAR_MIN_WORK)
    for (size_t n = 0; n < N; n++) {
        if (targets && targets[n] == SHELF_NN_PAD) {
            losses[n] = 0.0f;
            continue;
        }
        const float *x = logits + n * W;
        float l = softplus(-x[0]);
        for (size_t k = 0; k < K; k++)
            if (!bce_masked(targets, neg_ids, neg_stride, n, k)) l += softplus(x[1 + k]);
        losses[n] = l;
    }
    return mean_valid(losses, targets, N);
}

/* dlogits[N,1+K] += dloss/n_valid (sigmoid(x) - [column 0]) */
void shelf_nn_bce_backward(float *dlogits, const float *logits, const uint32_t *targets, const uint32_t *neg_ids,
                           size_t neg_stride, float dloss, size_t N, size_t K)
{
    size_t W = K + 1;
    size_t nv = count_valid(targets, N);
    float g = nv ? dloss / (float)nv : 0.0f;
#pragma omp parallel for schedule(static) if (N * W >= PAR_MIN_WORK)
    for (size_t n = 0; n < N; n++) {
        if (targets && targets[n] == SHELF_NN_PAD) continue;
        const float *x = logits + n * W;
        float *d = dlogits + n * W;
        d[0] -= g * sigmoid(-x[0]); /* sigmoid(x) - 1, without cancellation */
        for (size_t k = 0; k < K; k++)
            if (!bce_masked(targets, neg_ids, neg_stride, n, k)) d[1 + k] += g * sigmoid(x[1 + k]);
    }
}
