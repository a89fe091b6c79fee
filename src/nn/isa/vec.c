/* vec.c: the element- and row-wise kernels of the nn layer, one copy per
 * instruction-set level (isa_int.h): exp/softmax sums for the losses and
 * attention, LayerNorm rows, GELU, AdamW; and this level's kernel table
 * (kern_int.h). The generic copy is the plain loop of each kernel, the
 * naive twin the tests hold the vector copies to. All serial: the callers
 * in kernels.c, loss.c, attention.c and optim.c own the OpenMP loops. */
#include <math.h>
#include <string.h>

#include "../kern_int.h"
#include "vmath_int.h"

/* ========================================================================
 * exp and softmax
 * ======================================================================== */

static float exp_sub_sum(float *out, const float *x, float sub, size_t n)
{
    return shelf__vexp_sub_sum(out, x, sub, n);
}

static float max_of(const float *x, size_t n)
{
    return shelf__vmax(x, n);
}

/* sum_v exp(x[v] - mx), the exps summed in double lanes (a float sum over
 * ~1e4 terms would lose ~1e-5 relative); the order depends only on V, so a
 * row gives the same bits in any batch */
static double sum_exp(const float *x, float mx, size_t V)
{
#ifdef ISA_VEC
    vd s0 = vdzero(), s1 = s0;
    vf vm = vset1(mx);
    size_t v = 0;
    for (; v + VW <= V; v += VW) vadd_to_pd(&s0, &s1, shelf__vexpv(vsub(vload(x + v), vm)));
    double s = vdhsum(s0, s1);
    for (; v < V; v++) s += shelf__vexpf(x[v] - mx);
    return s;
#else
    double s = 0.0;
    for (size_t v = 0; v < V; v++) s += shelf__vexpf(x[v] - mx);
    return s;
#endif
}

/* d[v] = (inplace) or += g exp(x[v] - l); d may alias x when inplace */
static void scaled_exp(float *d, const float *x, float l, float g, int inplace, size_t V)
{
    size_t v = 0;
#ifdef ISA_VEC
    vf vl = vset1(l), vg = vset1(g);
    for (; v + VW <= V; v += VW) {
        vf e = vmul(vg, shelf__vexpv(vsub(vload(x + v), vl)));
        if (!inplace) e = vadd(e, vload(d + v));
        vstore(d + v, e);
    }
#endif
    for (; v < V; v++) d[v] = g * shelf__vexpf(x[v] - l) + (inplace ? 0.0f : d[v]);
}

/* a[0..n) = softmax(a) in place */
static void softmax(float *a, size_t n)
{
    float mx = shelf__vmax(a, n);
    float inv = 1.0f / shelf__vexp_sub_sum(a, a, mx, n);
    size_t i = 0;
#ifdef ISA_VEC
    vf vi = vset1(inv);
    for (; i + VW <= n; i += VW) vstore(a + i, vmul(vload(a + i), vi));
#endif
    for (; i < n; i++) a[i] *= inv;
}

/* sum_i a[i] b[i] in float lanes */
static float dot(const float *a, const float *b, size_t n)
{
    size_t i = 0;
    float s = 0.0f;
#ifdef ISA_VEC
    vf acc = vzero();
    for (; i + VW <= n; i += VW) acc = vfmadd(vload(a + i), vload(b + i), acc);
    s = vhsum(acc);
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* d[s] = scale a[s] (d[s] - sum_u a[u] d[u]) */
static void softmax_bwd(float *d, const float *a, float scale, size_t n)
{
    float dsum = dot(a, d, n);
    size_t i = 0;
#ifdef ISA_VEC
    vf vs = vset1(scale), vd_ = vset1(dsum);
    for (; i + VW <= n; i += VW) vstore(d + i, vmul(vmul(vs, vload(a + i)), vsub(vload(d + i), vd_)));
#endif
    for (; i < n; i++) d[i] = scale * a[i] * (d[i] - dsum);
}

/* ========================================================================
 * LayerNorm rows
 * ======================================================================== */

static float sum_of(const float *x, size_t n)
{
    size_t i = 0;
    float s = 0.0f;
#ifdef ISA_VEC
    vf acc = vzero();
    for (; i + VW <= n; i += VW) acc = vadd(acc, vload(x + i));
    s = vhsum(acc);
#endif
    for (; i < n; i++) s += x[i];
    return s;
}

/* out[C], *mean, *rstd <- x[C], weight[C], bias[C] */
static void layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *weight,
                          const float *bias, size_t C)
{
    float m = sum_of(x, C) / (float)C;
    float v = 0.0f; /* two passes: numerically safer than E[x^2]-m^2 */
    size_t c = 0;
#ifdef ISA_VEC
    vf vm = vset1(m), acc = vzero();
    for (; c + VW <= C; c += VW) {
        vf dx = vsub(vload(x + c), vm);
        acc = vfmadd(dx, dx, acc);
    }
    v = vhsum(acc);
#endif
    for (; c < C; c++) {
        float d = x[c] - m;
        v += d * d;
    }
    v /= (float)C;
    float s = 1.0f / sqrtf(v + SHELF_NN_LN_EPS);
    c = 0;
#ifdef ISA_VEC
    vf vsd = vset1(s);
    for (; c + VW <= C; c += VW)
        vstore(out + c, vadd(vmul(vmul(vsub(vload(x + c), vm), vsd), vload(weight + c)), vload(bias + c)));
#endif
    for (; c < C; c++) out[c] = (x[c] - m) * s * weight[c] + bias[c];
    *mean = m;
    *rstd = s;
}

/* dinp[C] += rstd (dnorm - mean_c(dnorm) - xhat mean_c(dnorm xhat)),
 * xhat = (x - mean) rstd, dnorm = dout weight */
static void layernorm_bwd(float *dinp, const float *dout, const float *x, const float *weight, float m, float s,
                          size_t C)
{
    float dn_mean = 0.0f, dnx_mean = 0.0f;
    size_t c = 0;
#ifdef ISA_VEC
    vf vm = vset1(m), vs = vset1(s), a0 = vzero(), a1 = vzero();
    for (; c + VW <= C; c += VW) {
        vf xhat = vmul(vsub(vload(x + c), vm), vs);
        vf dn = vmul(vload(weight + c), vload(dout + c));
        a0 = vadd(a0, dn);
        a1 = vfmadd(dn, xhat, a1);
    }
    dn_mean = vhsum(a0), dnx_mean = vhsum(a1);
#endif
    for (; c < C; c++) {
        float xhat = (x[c] - m) * s;
        float dn = weight[c] * dout[c];
        dn_mean += dn;
        dnx_mean += dn * xhat;
    }
    dn_mean /= (float)C;
    dnx_mean /= (float)C;
    c = 0;
#ifdef ISA_VEC
    vf vdm = vset1(dn_mean), vdx = vset1(dnx_mean);
    for (; c + VW <= C; c += VW) {
        vf xhat = vmul(vsub(vload(x + c), vm), vs);
        vf dn = vmul(vload(weight + c), vload(dout + c));
        vf t = vfnmadd(xhat, vdx, vsub(dn, vdm));
        vstore(dinp + c, vfmadd(vs, t, vload(dinp + c)));
    }
#endif
    for (; c < C; c++) {
        float xhat = (x[c] - m) * s;
        float dn = weight[c] * dout[c];
        dinp[c] += s * (dn - dn_mean - xhat * dnx_mean);
    }
}

/* dweight[C] += xhat dout, dbias[C] += dout (either may be NULL) */
static void layernorm_params(float *dweight, float *dbias, const float *dout, const float *x, float m, float s,
                             size_t C)
{
    size_t c = 0;
    if (dweight) {
#ifdef ISA_VEC
        vf vm = vset1(m), vs = vset1(s);
        for (; c + VW <= C; c += VW)
            vstore(dweight + c, vfmadd(vmul(vsub(vload(x + c), vm), vs), vload(dout + c), vload(dweight + c)));
#endif
        for (; c < C; c++) dweight[c] += (x[c] - m) * s * dout[c];
    }
    if (dbias)
        for (c = 0; c < C; c++) dbias[c] += dout[c];
}

/* ========================================================================
 * GELU (tanh approximation, nn.h)
 * ======================================================================== */

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K 0.044715f

/* tanh(u) = 1 - 2 / (e^{2u} + 1) with the exp of vexp_int.h: saturates
 * cleanly to +-1 for large |u| (the exp clamps, never inf/inf); near 0 the
 * subtraction costs relative accuracy of tanh but only ~1e-7 absolute,
 * which is what 1 + tanh in GELU sees. */
static inline float tanh_s(float u)
{
    return 1.0f - 2.0f / (shelf__vexpf(2.0f * u) + 1.0f);
}

#ifdef ISA_VEC
/* gelu and (when dlocal) its derivative on VW lanes */
static inline vf gelu_v(vf x, vf *dlocal)
{
    vf half = vset1(0.5f), one = vset1(1.0f), sc = vset1(GELU_SCALE);
    vf x2 = vmul(x, x);
    vf u = vmul(sc, vfmadd(vmul(vset1(GELU_K), x2), x, x));
    vf e = shelf__vexpv(vadd(u, u));
    vf th = vsub(one, vdiv(vset1(2.0f), vadd(e, one)));
    vf opt = vadd(one, th);
    if (dlocal) {
        vf sech2 = vfnmadd(th, th, one);
        vf du = vmul(sc, vfmadd(vset1(3.0f * GELU_K), x2, one));
        *dlocal = vfmadd(half, opt, vmul(vmul(half, x), vmul(sech2, du)));
    }
    return vmul(vmul(half, x), opt);
}
#endif

static void gelu_fwd(float *out, const float *inp, size_t n)
{
    size_t i = 0;
#ifdef ISA_VEC
    for (; i + VW <= n; i += VW) vstore(out + i, gelu_v(vload(inp + i), NULL));
    if (i < n) {
        vstoren(out + i, gelu_v(vloadn(inp + i, n - i), NULL), n - i);
        return;
    }
#endif
    for (; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + GELU_K * x * x * x);
        out[i] = 0.5f * x * (1.0f + tanh_s(u));
    }
}

static void gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n)
{
    size_t i = 0;
#ifdef ISA_VEC
    vf local;
    for (; i + VW <= n; i += VW) {
        gelu_v(vload(inp + i), &local);
        vstore(dinp + i, vfmadd(local, vload(dout + i), vload(dinp + i)));
    }
    if (i < n) {
        size_t r = n - i;
        gelu_v(vloadn(inp + i, r), &local);
        vstoren(dinp + i, vfmadd(local, vloadn(dout + i, r), vloadn(dinp + i, r)), r);
        return;
    }
#endif
    for (; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + GELU_K * x * x * x);
        float th = tanh_s(u);
        float sech2 = 1.0f - th * th;
        float dl = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * GELU_K * x * x);
        dinp[i] += dl * dout[i];
    }
}

/* ========================================================================
 * AdamW
 * ======================================================================== */

/* w, m, v [n] updated from g [n]. The vector lanes do the scalar loop's
 * operations in its order with no fused multiply-add, and division and
 * square root are correctly rounded everywhere: every level gives the same
 * bits. */
static void adamw(float *w, float *m, float *v, const float *g, size_t n, const shelf__adamw_k *k)
{
    const float b1 = k->b1, b2 = k->b2, c1 = k->c1, c2 = k->c2, eps = k->eps, lr = k->lr, decay = k->decay;
    size_t i = 0;
#ifdef ISA_VEC
    vf vb1 = vset1(b1), vb2 = vset1(b2), v1b1 = vset1(1.0f - b1), v1b2 = vset1(1.0f - b2);
    vf vc1 = vset1(c1), vc2 = vset1(c2), veps = vset1(eps), vlr = vset1(lr), vdecay = vset1(decay);
    for (; i + VW <= n; i += VW) {
        vf gi = vload(g + i), wi = vload(w + i);
        vf mi = vadd(vmul(vb1, vload(m + i)), vmul(v1b1, gi));
        vf vi = vadd(vmul(vb2, vload(v + i)), vmul(vmul(v1b2, gi), gi));
        vstore(m + i, mi);
        vstore(v + i, vi);
        vf mhat = vdiv(mi, vc1), vhat = vdiv(vi, vc2);
        vf upd = vadd(vdiv(mhat, vadd(vsqrt(vhat), veps)), vmul(vdecay, wi));
        vstore(w + i, vsub(wi, vmul(vlr, upd)));
    }
#endif
    for (; i < n; i++) {
        const float gi = g[i];
        const float mi = b1 * m[i] + (1.0f - b1) * gi;
        const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float mhat = mi / c1, vhat = vi / c2;
        w[i] -= lr * (mhat / (sqrtf(vhat) + eps) + decay * w[i]);
    }
}

/* ========================================================================
 * this level's table
 * ======================================================================== */

float ISA_FN(shelf__cehead_run)(float *losses, float *dh, float *dw, const float *h, const float *w,
                                const uint32_t *tgt, float dloss, size_t N, size_t V, size_t C, int bf16,
                                shelf_nn_cehead_ws *ws);

#if defined(SHELF_ISA_AVX512)
#define LEVEL SHELF_CPU_AVX512
#elif defined(SHELF_ISA_AVX2)
#define LEVEL SHELF_CPU_AVX2
#else
#define LEVEL SHELF_CPU_GENERIC
#endif

#define KERN_TABLE(BF16)                                                                                          \
    {                                                                                                             \
        .level = LEVEL, .bf16 = (BF16), .cehead = ISA_FN(shelf__cehead_run), .exp_sub_sum = exp_sub_sum,       \
        .max = max_of, .sum_exp = sum_exp, .scaled_exp = scaled_exp, .layernorm_fwd = layernorm_fwd,            \
        .layernorm_bwd = layernorm_bwd, .layernorm_params = layernorm_params, .gelu_fwd = gelu_fwd,             \
        .gelu_bwd = gelu_bwd, .softmax = softmax, .softmax_bwd = softmax_bwd, .adamw = adamw,                   \
    }

const shelf__kern ISA_FN(shelf__kern) = KERN_TABLE(0);
#if defined(SHELF_ISA_AVX512)
/* the same code with the head's BF16 dot products switched on */
const shelf__kern ISA_FN(shelf__kern_bf16) = KERN_TABLE(1);
#endif
