/* vexp_int.h: the exponential of the nn kernels, scalar form, with no libm
 * call (the vector forms in isa/vmath_int.h do the same operations lane by
 * lane, so every path gives the same values up to FMA contraction).
 *
 * exp(x) = 2^k e^r with k = round(x log2 e), r = x - k ln2 (ln2 split in a
 * hi part exact in float and a lo part, so r is exact to ~1 ulp), |r| <=
 * ln2/2, and e^r by its degree-7 Taylor polynomial in Horner form.
 * Truncation r^8/8! <= 5.7e-9 relative (< 0.1 ulp); the Horner rounding
 * adds ~1 ulp, so the result is within ~2 ulp of exp over [-87, 88]
 * (measured by test_nn_cehead against libm). x is clamped to [-104, 88.7]:
 * below, the result is 0 or a denormal as in libm; above, +inf would follow,
 * the clamp gives ~FLT_MAX instead. NaN inputs are not supported (the
 * softmax never sees them in a healthy run).
 *
 * 2^k: k is in [-150, 128], so k = k1 + k2 with k1 = k >> 1 and k2 = k - k1
 * both in [-75, 64], where 2^k1 and 2^k2 are normal floats built from their
 * exponent bits; p 2^k1 is exact and the second product rounds once, as
 * ldexpf (and AVX-512's scalef) would. Rounding to an integer uses the
 * 1.5 2^23 trick (round to nearest even for |t| < 2^22). */
#ifndef SHELF_NN_VEXP_INT_H
#define SHELF_NN_VEXP_INT_H

#include <stdint.h>
#include <string.h>

#define VEXP_LO (-104.0f)
#define VEXP_HI 88.7f
#define VEXP_LOG2E 1.44269504088896341f
#define VEXP_LN2_HI 0.693145751953125f /* 11 significant bits: k ln2_hi exact */
#define VEXP_LN2_LO 1.42860682030941723e-6f
#define VEXP_ROUND 12582912.0f /* 1.5 * 2^23 */
/* 1/k!, k = 7..1; the constant term is 1 */
#define VEXP_C7 1.98412698412698413e-4f
#define VEXP_C6 1.38888888888888889e-3f
#define VEXP_C5 8.33333333333333333e-3f
#define VEXP_C4 4.16666666666666667e-2f
#define VEXP_C3 1.66666666666666667e-1f
#define VEXP_C2 0.5f

/* a b + c: fused where the target has FMA (as the vector paths), else a
 * multiply and an add (fmaf would be a slow libm call there) */
static inline float shelf__fmaf(float a, float b, float c)
{
#ifdef __FMA__
    return __builtin_fmaf(a, b, c);
#else
    return a * b + c;
#endif
}

/* 2^k for integer k in [-126, 127] */
static inline float shelf__pow2i(int32_t k)
{
    uint32_t u = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float shelf__vexpf(float x)
{
    x = x < VEXP_LO ? VEXP_LO : x > VEXP_HI ? VEXP_HI : x;
    float k = (x * VEXP_LOG2E + VEXP_ROUND) - VEXP_ROUND; /* ISO C: not folded away */
    float r = shelf__fmaf(-k, VEXP_LN2_HI, x);
    r = shelf__fmaf(-k, VEXP_LN2_LO, r);
    float p = VEXP_C7;
    p = shelf__fmaf(p, r, VEXP_C6);
    p = shelf__fmaf(p, r, VEXP_C5);
    p = shelf__fmaf(p, r, VEXP_C4);
    p = shelf__fmaf(p, r, VEXP_C3);
    p = shelf__fmaf(p, r, VEXP_C2);
    p = shelf__fmaf(p, r, 1.0f);
    p = shelf__fmaf(p, r, 1.0f);
    int32_t ki = (int32_t)k, k1 = ki >> 1;
    return p * shelf__pow2i(k1) * shelf__pow2i(ki - k1);
}

#endif
