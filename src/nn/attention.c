/* attention.c: causal multi-head self-attention, forward and backward, a fast
 * path (cblas_sgemm per batch row and head, OpenMP over them) beside the naive
 * reference loops, and the one-position incremental forward used by serving.
 * Shapes and masking rules are in include/shelf/attention.h. */
#include "nn/attention.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "shelf/core.h"
#include "kern_int.h"
#include "vexp_int.h"
#include "core/assert_int.h"

/* B batch, T sequence length, C channels, NH heads, HS head size = C/NH. */

static int pad_of(const int *pad_len, int b, int T)
{
    int p = pad_len ? pad_len[b] : 0;
    SHELF_ASSERT(p >= 0 && p <= T);
    return p;
}

/* ---- forward ------------------------------------------------------------- */

/* What both passes derive from C and NH: the head size HS, the row length
 * 3C of qkv and the score scale 1/sqrt(HS). */
typedef struct head_dims {
    int HS, C3;
    float scale;
} head_dims;

static head_dims head_dims_of(int C, int NH)
{
    SHELF_ASSERT(NH > 0 && C % NH == 0);
    head_dims d = {.HS = C / NH, .C3 = 3 * C};
    d.scale = 1.0f / sqrtf((float)d.HS);
    return d;
}

/* qkv [B,T,3C] -> out [B,T,C], att [B,NH,T,T]. */
void shelf_attention_forward_ref(float *out, float *att, const float *qkv, const int *pad_len, int B,
                                 int T, int C, int NH)
{
    SHELF_ASSERT(NH > 0 && C % NH == 0);
    const int HS = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++) {
        const int p = pad_of(pad_len, b, T);
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + ((size_t)b * T + t) * C3 + (size_t)h * HS;
                float *o = out + ((size_t)b * T + t) * C + (size_t)h * HS;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                for (int s = 0; s < T; s++) a[s] = 0.0f;
                for (int i = 0; i < HS; i++) o[i] = 0.0f;
                if (t < p) continue; /* padded query: zeros */
                float maxv = -INFINITY;
                for (int s = p; s <= t; s++) {
                    const float *k = qkv + ((size_t)b * T + s) * C3 + C + (size_t)h * HS;
                    float dot = 0.0f;
                    for (int i = 0; i < HS; i++) dot += q[i] * k[i];
                    a[s] = dot * scale;
                    if (a[s] > maxv) maxv = a[s];
                }
                float sum = 0.0f;
                for (int s = p; s <= t; s++) {
                    a[s] = expf(a[s] - maxv);
                    sum += a[s];
                }
                const float inv = 1.0f / sum;
                for (int s = p; s <= t; s++) {
                    a[s] *= inv;
                    const float *v = qkv + ((size_t)b * T + s) * C3 + 2 * (size_t)C + (size_t)h * HS;
                    for (int i = 0; i < HS; i++) o[i] += a[s] * v[i];
                }
            }
        }
    }
}

/* qkv [B,T,3C] -> out [B,T,C], att [B,NH,T,T]. Per (b,h): A = scale Q K^T
 * ([T,HS] x [HS,T], Q and K read in place with leading dimension 3C), masked
 * softmax row by row, then O = A V ([T,T] x [T,HS]) written in place with
 * leading dimension C. The product also fills the masked upper triangle,
 * which the softmax overwrites with zeros: simpler than per-row products and
 * still one BLAS call. */
void shelf_attention_forward(float *out, float *att, const float *qkv, const int *pad_len, int B, int T,
                             int C, int NH)
{
    const head_dims hd = head_dims_of(C, NH);
    const int HS = hd.HS, C3 = hd.C3, n = B * NH;
    const float scale = hd.scale;
    const shelf__kern *k = shelf__kern_get(); /* the row softmax of this CPU's level */
#pragma omp parallel for schedule(static) if (n > 1 && (long)T * T * HS > 4096)
    for (int bh = 0; bh < n; bh++) {
        const int b = bh / NH, h = bh % NH;
        const int p = pad_of(pad_len, b, T);
        const float *Q = qkv + (size_t)b * T * C3 + (size_t)h * HS;
        const float *K = Q + C;
        const float *V = Q + 2 * (size_t)C;
        float *A = att + (size_t)bh * T * T;
        float *O = out + (size_t)b * T * C + (size_t)h * HS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, Q, C3, K, C3, 0.0f, A, T);
        for (int t = 0; t < T; t++) {
            float *a = A + (size_t)t * T;
            if (t < p) {
                memset(a, 0, sizeof(float) * (size_t)T);
                continue;
            }
            k->softmax(a + p, (size_t)(t - p + 1));
            for (int s = 0; s < p; s++) a[s] = 0.0f;
            for (int s = t + 1; s < T; s++) a[s] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, A, T, V, C3, 0.0f, O, C);
    }
}

/* ---- backward ------------------------------------------------------------ */

/* dout [B,T,C], qkv [B,T,3C], att [B,NH,T,T] -> dqkv [B,T,3C] (+=).
 * With A = att row t and D[s] = dout_t . v_s, the softmax backward is
 * dpre[s] = A[s] (D[s] - sum_u A[u] D[u]); then dq_t += scale dpre[s] k_s,
 * dk_s += scale dpre[s] q_t, dv_s += A[s] dout_t. */
void shelf_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att,
                                  const int *pad_len, int B, int T, int C, int NH)
{
    SHELF_ASSERT(NH > 0 && C % NH == 0);
    const int HS = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++) {
        const int p = pad_of(pad_len, b, T);
        for (int t = p; t < T; t++) { /* padded query rows pass no gradient */
            for (int h = 0; h < NH; h++) {
                const size_t qoff = ((size_t)b * T + t) * C3 + (size_t)h * HS;
                const float *q = qkv + qoff;
                float *dq = dqkv + qoff;
                const float *dO = dout + ((size_t)b * T + t) * C + (size_t)h * HS;
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                float dsum = 0.0f;
                for (int s = p; s <= t; s++) {
                    const float *v = qkv + ((size_t)b * T + s) * C3 + 2 * (size_t)C + (size_t)h * HS;
                    float d = 0.0f;
                    for (int i = 0; i < HS; i++) d += dO[i] * v[i];
                    dsum += a[s] * d;
                }
                for (int s = p; s <= t; s++) {
                    const size_t soff = ((size_t)b * T + s) * C3 + (size_t)h * HS;
                    const float *k = qkv + soff + C;
                    const float *v = qkv + soff + 2 * (size_t)C;
                    float *dk = dqkv + soff + C;
                    float *dv = dqkv + soff + 2 * (size_t)C;
                    float d = 0.0f;
                    for (int i = 0; i < HS; i++) d += dO[i] * v[i];
                    const float dpre = a[s] * (d - dsum) * scale;
                    for (int i = 0; i < HS; i++) {
                        dq[i] += dpre * k[i];
                        dk[i] += dpre * q[i];
                        dv[i] += a[s] * dO[i];
                    }
                }
            }
        }
    }
}

/* dout [B,T,C], qkv [B,T,3C], att [B,NH,T,T] -> dqkv [B,T,3C] (+=);
 * scratch [B,NH,T,T]. Per (b,h), with dO the head's slice of dout:
 *   D  = dO V^T            [T,HS] x [HS,T]
 *   D  = scale A o (D - rowsum(A o D))   (softmax backward, in place)
 *   dQ += D K              [T,T] x [T,HS]
 *   dK += D^T Q            [T,T]^T x [T,HS]
 *   dV += A^T dO           [T,T]^T x [T,HS]
 * Each (b,h) writes its own column slices of dqkv: no races. */
void shelf_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                              const float *att, const int *pad_len, int B, int T, int C, int NH)
{
    const head_dims hd = head_dims_of(C, NH);
    const int HS = hd.HS, C3 = hd.C3, n = B * NH;
    const float scale = hd.scale;
    const shelf__kern *k = shelf__kern_get(); /* the row softmax of this CPU's level */
#pragma omp parallel for schedule(static) if (n > 1 && (long)T * T * HS > 4096)
    for (int bh = 0; bh < n; bh++) {
        const int b = bh / NH, h = bh % NH;
        const int p = pad_of(pad_len, b, T);
        const size_t base = (size_t)b * T * C3 + (size_t)h * HS;
        const float *Q = qkv + base, *K = Q + C, *V = Q + 2 * (size_t)C;
        float *dQ = dqkv + base, *dK = dQ + C, *dV = dQ + 2 * (size_t)C;
        const float *dO = dout + (size_t)b * T * C + (size_t)h * HS;
        const float *A = att + (size_t)bh * T * T;
        float *D = scratch + (size_t)bh * T * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, dO, C, V, C3, 0.0f, D, T);
        for (int t = 0; t < T; t++) {
            float *d = D + (size_t)t * T;
            const float *a = A + (size_t)t * T;
            if (t < p) {
                memset(d, 0, sizeof(float) * (size_t)T);
                continue;
            }
            k->softmax_bwd(d + p, a + p, scale, (size_t)(t - p + 1));
            for (int s = 0; s < p; s++) d[s] = 0.0f;
            for (int s = t + 1; s < T; s++) d[s] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, D, T, K, C3, 1.0f, dQ, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, D, T, Q, C3, 1.0f, dK, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, A, T, dO, C, 1.0f, dV, C3);
    }
}

/* ---- incremental forward (serving) ---------------------------------------- */

/* qkv [3C] of position t; kcache, vcache [NH,Tmax,HS] (+= slot t) -> out [C].
 * Online softmax: a running maximum m, running sum l and running weighted
 * value sum o, rescaled by exp(m_old - m_new) whenever the maximum grows. */
void shelf_attention_step_forward(float *out, float *kcache, float *vcache, const float *qkv, int t,
                                  int pad_len, int Tmax, int C, int NH)
{
    SHELF_ASSERT(NH > 0 && C % NH == 0);
    SHELF_ASSERT(t >= 0 && t < Tmax && pad_len >= 0);
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int h = 0; h < NH; h++) {
        const float *q = qkv + (size_t)h * HS;
        float *kc = kcache + (size_t)h * Tmax * HS;
        float *vc = vcache + (size_t)h * Tmax * HS;
        memcpy(kc + (size_t)t * HS, qkv + C + (size_t)h * HS, sizeof(float) * (size_t)HS);
        memcpy(vc + (size_t)t * HS, qkv + 2 * (size_t)C + (size_t)h * HS, sizeof(float) * (size_t)HS);
        float *o = out + (size_t)h * HS;
        for (int i = 0; i < HS; i++) o[i] = 0.0f;
        if (t < pad_len) continue;
        float m = -INFINITY, l = 0.0f;
        for (int s = pad_len; s <= t; s++) {
            const float *k = kc + (size_t)s * HS;
            const float *v = vc + (size_t)s * HS;
            float x = 0.0f;
            for (int i = 0; i < HS; i++) x += q[i] * k[i];
            x *= scale;
            if (x > m) {
                const float r = m == -INFINITY ? 0.0f : shelf__vexpf(m - x); /* 0 on the first key */
                l *= r;
                for (int i = 0; i < HS; i++) o[i] *= r;
                m = x;
            }
            const float e = shelf__vexpf(x - m);
            l += e;
            for (int i = 0; i < HS; i++) o[i] += e * v[i];
        }
        const float inv = 1.0f / l;
        for (int i = 0; i < HS; i++) o[i] *= inv;
    }
}
