/* kernels.c: the layer kernels of nn.h (embedding, LayerNorm, linear, GELU,
 * dropout, residual), forward and backward, float32 row-major. The losses
 * are in loss.c. Backward passes accumulate into their gradient buffers.
 *
 * Dimension letters: N rows, C channels, OC output channels. */
#include "nn/nn.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include <cblas.h>
#undef I /* <complex.h>, pulled in by cblas.h, defines I */

#include "kern_int.h"
#include "core/assert_int.h"

/* Parallelize a row loop only when it has at least this many floats of work:
 * below it the fork/join costs more than the loop. */
#define PAR_MIN_WORK 32768

/* ========================================================================
 * embedding
 * ======================================================================== */

/* out[N,C] = table[idx[n], C] */
void shelf_nn_embedding_forward(float *out, const uint32_t *idx, const float *table, size_t N, size_t C)
{
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN_WORK)
    for (size_t n = 0; n < N; n++) {
        float *o = out + n * C;
        if (idx[n] == SHELF_NN_PAD)
            memset(o, 0, C * sizeof *o);
        else
            memcpy(o, table + (size_t)idx[n] * C, C * sizeof *o);
    }
}

/* dtable[idx[n], C] += dout[N,C]; serial: repeated indices would race */
void shelf_nn_embedding_backward(float *dtable, const float *dout, const uint32_t *idx, size_t N, size_t C)
{
    for (size_t n = 0; n < N; n++) {
        if (idx[n] == SHELF_NN_PAD) continue;
        float *d = dtable + (size_t)idx[n] * C;
        const float *g = dout + n * C;
        for (size_t c = 0; c < C; c++) d[c] += g[c];
    }
}

/* ========================================================================
 * LayerNorm
 * ======================================================================== */

/* out[N,C], mean[N], rstd[N] <- inp[N,C], weight[C], bias[C]; the row work
 * is the level's kernel (kern_int.h) */
void shelf_nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                const float *bias, size_t N, size_t C)
{
    const shelf__kern *k = shelf__kern_get();
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN_WORK)
    for (size_t n = 0; n < N; n++) k->layernorm_fwd(out + n * C, mean + n, rstd + n, inp + n * C, weight, bias, C);
}

/* dinp[N,C], dweight[C], dbias[C] += from dout[N,C], inp[N,C], weight[C],
 * mean[N], rstd[N]. With xhat = (x - mean) rstd and dnorm = dout * weight:
 *   dinp = rstd (dnorm - mean_c(dnorm) - xhat mean_c(dnorm xhat)) */
void shelf_nn_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                 const float *weight, const float *mean, const float *rstd, size_t N, size_t C)
{
    const shelf__kern *k = shelf__kern_get();
    if (dinp) {
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN_WORK)
        for (size_t n = 0; n < N; n++)
            k->layernorm_bwd(dinp + n * C, dout + n * C, inp + n * C, weight, mean[n], rstd[n], C);
    }
    /* parameter gradients: a reduction over rows, kept serial (contiguous
     * inner loop, deterministic) */
    if (dweight || dbias)
        for (size_t n = 0; n < N; n++) k->layernorm_params(dweight, dbias, dout + n * C, inp + n * C, mean[n], rstd[n], C);
}

/* ========================================================================
 * linear (weight [C,OC], see nn.h for why)
 * ======================================================================== */

static void check_blas_dims(size_t N, size_t C, size_t OC)
{
    SHELF_ASSERT(N <= INT_MAX && C <= INT_MAX && OC <= INT_MAX);
}

/* out[N,OC] = inp[N,C] . weight[C,OC] + bias[OC] */
void shelf_nn_linear_forward(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                             size_t C, size_t OC)
{
    check_blas_dims(N, C, OC);
    if (N == 0 || OC == 0) return;
    float beta = 0.0f;
    if (bias) { /* start from the bias and let sgemm add the product */
        for (size_t n = 0; n < N; n++) memcpy(out + n * OC, bias, OC * sizeof *out);
        beta = 1.0f;
    }
    if (C == 0) {
        if (!bias) memset(out, 0, N * OC * sizeof *out);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)OC, (int)C, 1.0f, inp, (int)C, weight,
                (int)OC, beta, out, (int)OC);
}

/* dinp[N,C] += dout[N,OC] . weight^T; dweight[C,OC] += inp^T . dout;
 * dbias[OC] += column sums of dout */
void shelf_nn_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, size_t N, size_t C, size_t OC)
{
    check_blas_dims(N, C, OC);
    if (N == 0 || C == 0 || OC == 0) {
        if (dbias && C == 0)
            for (size_t n = 0; n < N; n++)
                for (size_t o = 0; o < OC; o++) dbias[o] += dout[n * OC + o];
        return;
    }
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)C, (int)OC, 1.0f, dout, (int)OC, weight,
                    (int)OC, 1.0f, dinp, (int)C);
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)C, (int)OC, (int)N, 1.0f, inp, (int)C, dout,
                    (int)OC, 1.0f, dweight, (int)OC);
    if (dbias)
        for (size_t n = 0; n < N; n++) {
            const float *g = dout + n * OC;
            for (size_t o = 0; o < OC; o++) dbias[o] += g[o];
        }
}

/* naive reference of shelf_nn_linear_forward; same shapes */
void shelf_nn_linear_forward_ref(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                                 size_t C, size_t OC)
{
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OC; o++) {
            float v = bias ? bias[o] : 0.0f;
            for (size_t c = 0; c < C; c++) v += inp[n * C + c] * weight[c * OC + o];
            out[n * OC + o] = v;
        }
}

/* naive reference of shelf_nn_linear_backward; same shapes */
void shelf_nn_linear_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                  const float *weight, size_t N, size_t C, size_t OC)
{
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OC; o++) {
            float g = dout[n * OC + o];
            if (dbias) dbias[o] += g;
            for (size_t c = 0; c < C; c++) {
                if (dinp) dinp[n * C + c] += g * weight[c * OC + o];
                if (dweight) dweight[c * OC + o] += g * inp[n * C + c];
            }
        }
}

/* ========================================================================
 * GELU (tanh approximation)
 * ======================================================================== */

/* out[n] = gelu(inp[n]), in chunks of the level's kernel */
void shelf_nn_gelu_forward(float *out, const float *inp, size_t n)
{
    const shelf__kern *k = shelf__kern_get();
    size_t nc = (n + SHELF__KERN_CHUNK - 1) / SHELF__KERN_CHUNK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t c = 0; c < nc; c++) {
        size_t lo = c * SHELF__KERN_CHUNK;
        k->gelu_fwd(out + lo, inp + lo, n - lo < SHELF__KERN_CHUNK ? n - lo : SHELF__KERN_CHUNK);
    }
}

/* dinp[n] += gelu'(inp[n]) * dout[n] */
void shelf_nn_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
    const shelf__kern *k = shelf__kern_get();
    size_t nc = (n + SHELF__KERN_CHUNK - 1) / SHELF__KERN_CHUNK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t c = 0; c < nc; c++) {
        size_t lo = c * SHELF__KERN_CHUNK;
        k->gelu_bwd(dinp + lo, inp + lo, dout + lo, n - lo < SHELF__KERN_CHUNK ? n - lo : SHELF__KERN_CHUNK);
    }
}

/* ========================================================================
 * dropout (inverted, mask saved as bytes)
 * ======================================================================== */

/* out[n], mask[n] <- inp[n]; serial draw so the mask depends only on rng */
void shelf_nn_dropout_forward(float *out, uint8_t *mask, const float *inp, float p, shelf_rng *rng, size_t n)
{
    SHELF_ASSERT(p >= 0.0f && p < 1.0f);
    if (p == 0.0f) {
        if (out != inp) memcpy(out, inp, n * sizeof *out);
        memset(mask, 1, n);
        return;
    }
    /* keep when a 32-bit half of a draw is >= p 2^32: P(keep) = 1 - p to
     * within 2^-32. Chunk c draws from its own stream split off one draw of
     * rng, so the mask depends on rng and n only, not on the threads. */
    const uint64_t thr = (uint64_t)((double)p * 4294967296.0), base = shelf_rng_u64(rng);
    const float scale = 1.0f / (1.0f - p);
    const size_t n_chunks = (n + SHELF_NN_DROPOUT_CHUNK - 1) / SHELF_NN_DROPOUT_CHUNK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t c = 0; c < n_chunks; c++) {
        shelf_rng r;
        shelf_rng_split(&r, base, c);
        const size_t lo = c * SHELF_NN_DROPOUT_CHUNK, hi = lo + SHELF_NN_DROPOUT_CHUNK < n ? lo + SHELF_NN_DROPOUT_CHUNK : n;
        for (size_t i = lo; i < hi; i += 2) {
            uint64_t x = shelf_rng_u64(&r);
            uint8_t k0 = (x >> 32) >= thr, k1 = (x & 0xffffffffu) >= thr;
            mask[i] = k0;
            out[i] = k0 ? inp[i] * scale : 0.0f;
            if (i + 1 < hi) {
                mask[i + 1] = k1;
                out[i + 1] = k1 ? inp[i + 1] * scale : 0.0f;
            }
        }
    }
}

/* dinp[n] += dout[n] * mask[n] / (1 - p) */
void shelf_nn_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, float p, size_t n)
{
    SHELF_ASSERT(p >= 0.0f && p < 1.0f);
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        if (mask[i]) dinp[i] += dout[i] * scale;
}

/* ========================================================================
 * residual add
 * ======================================================================== */

/* out[n] = a[n] + b[n] */
void shelf_nn_residual_forward(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* da[n] += dout[n]; db[n] += dout[n] */
void shelf_nn_residual_backward(float *da, float *db, const float *dout, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}
