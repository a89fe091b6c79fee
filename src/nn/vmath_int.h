/* vmath_int.h: private vectorised exp shared by loss.c, kernels.c and
 * cehead.c, so the softmax of the fused head and of the plain loss agree.
 *
 * exp(x) = 2^k e^r with k = round(x log2 e), r = x - k ln2 (ln2 split in a
 * hi part exact in float and a lo part, so r is exact to ~1 ulp), |r| <=
 * ln2/2, and e^r by its degree-7 Taylor polynomial in Horner form (FMA).
 * Truncation r^8/8! <= 5.7e-9 relative (< 0.1 ulp); the Horner rounding
 * adds ~1 ulp, so the result is within ~2 ulp of exp over [-87, 88]
 * (measured by test_nn_cehead against libm). x is clamped to [-104, 88.7]:
 * below, the result is 0 or a denormal as in libm; above, +inf would follow,
 * the clamp gives ~FLT_MAX instead. NaN inputs are not supported (the
 * softmax never sees them in a healthy run). */
#ifndef SHELF_NN_VMATH_INT_H
#define SHELF_NN_VMATH_INT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define VEXP_LO (-104.0f)
#define VEXP_HI 88.7f
#define VEXP_LOG2E 1.44269504088896341f
#define VEXP_LN2_HI 0.693145751953125f /* 11 significant bits: k ln2_hi exact */
#define VEXP_LN2_LO 1.42860682030941723e-6f
/* 1/k!, k = 7..1; the constant term is 1 */
#define VEXP_C7 1.98412698412698413e-4f
#define VEXP_C6 1.38888888888888889e-3f
#define VEXP_C5 8.33333333333333333e-3f
#define VEXP_C4 4.16666666666666667e-2f
#define VEXP_C3 1.66666666666666667e-1f
#define VEXP_C2 0.5f

/* scalar twin of shelf__vexp16: the same operations in the same order, so the
 * plain-C paths give the same values up to FMA contraction */
static inline float shelf__vexpf(float x)
{
    x = x < VEXP_LO ? VEXP_LO : x > VEXP_HI ? VEXP_HI : x;
    float k = nearbyintf(x * VEXP_LOG2E);
    float r = fmaf(-k, VEXP_LN2_HI, x);
    r = fmaf(-k, VEXP_LN2_LO, r);
    float p = VEXP_C7;
    p = fmaf(p, r, VEXP_C6);
    p = fmaf(p, r, VEXP_C5);
    p = fmaf(p, r, VEXP_C4);
    p = fmaf(p, r, VEXP_C3);
    p = fmaf(p, r, VEXP_C2);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    return ldexpf(p, (int)k);
}

#ifdef __AVX512F__
/* 16 lanes of exp; scalef does the 2^k scaling including the denormal
 * range, so no exponent-field arithmetic can overflow */
static inline __m512 shelf__vexp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(VEXP_LO)), _mm512_set1_ps(VEXP_HI));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(VEXP_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(VEXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(VEXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(VEXP_C7);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_C6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(VEXP_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

/* mask of the first n (< 16) lanes */
static inline __mmask16 shelf__tailmask(size_t n)
{
    return (__mmask16)((1u << n) - 1u);
}
#endif

/* out[i] = exp(x[i] - sub) for i < n; returns sum_i out[i] (float lanes,
 * summed in a fixed order that depends only on n) */
static inline float shelf__vexp_sub_sum(float *out, const float *x, float sub, size_t n)
{
#ifdef __AVX512F__
    __m512 s = _mm512_setzero_ps(), vs = _mm512_set1_ps(sub);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = shelf__vexp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs));
        _mm512_storeu_ps(out + i, e);
        s = _mm512_add_ps(s, e);
    }
    if (i < n) {
        __mmask16 m = shelf__tailmask(n - i);
        __m512 e = shelf__vexp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
        _mm512_mask_storeu_ps(out + i, m, e);
        s = _mm512_mask_add_ps(s, m, s, e);
    }
    return _mm512_reduce_add_ps(s);
#else
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += out[i] = shelf__vexpf(x[i] - sub);
    return s;
#endif
}

/* max of x[0..n) (n >= 1) */
static inline float shelf__vmax(const float *x, size_t n)
{
#ifdef __AVX512F__
    __m512 m = _mm512_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n) m = _mm512_mask_max_ps(m, shelf__tailmask(n - i), m, _mm512_maskz_loadu_ps(shelf__tailmask(n - i), x + i));
    return _mm512_reduce_max_ps(m);
#else
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
#endif
}

#endif
