/* vmath_int.h: the vector vocabulary of the per-level kernels (isa_int.h):
 * one register type vf of VW floats with the few operations the kernels use,
 * partial loads and stores of the first n < VW lanes, horizontal sums, and
 * the vectorised exp of vexp_int.h (same operations, lane by lane).
 *   AVX-512: VW 16, masks;  AVX2: VW 8, maskload/maskstore;  generic: none
 * (the generic copy uses the scalar loops).
 * Inside src/nn/isa/ the copy's level decides (SHELF_ISA_*); elsewhere (the
 * ALS and BPR inner loops) the build's own -march does: AVX2 with the
 * default x86-64-v3, AVX-512 with an opt-in native build on such a CPU. */
#ifndef SHELF_NN_ISA_VMATH_INT_H
#define SHELF_NN_ISA_VMATH_INT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../vexp_int.h"

#ifdef SHELF_ISA_SUFFIX
#include "isa_int.h"
#elif defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define SHELF_ISA_AVX512 1
#include <immintrin.h>
#elif defined(__AVX2__) && defined(__FMA__)
#define SHELF_ISA_AVX2 1
#include <immintrin.h>
#endif

#if defined(SHELF_ISA_AVX512)
#define ISA_VEC 1
#define VW 16
typedef __m512 vf;
#define vzero() _mm512_setzero_ps()
#define vset1(x) _mm512_set1_ps(x)
#define vload(p) _mm512_loadu_ps(p)
#define vstore(p, v) _mm512_storeu_ps((p), (v))
#define vadd(a, b) _mm512_add_ps((a), (b))
#define vsub(a, b) _mm512_sub_ps((a), (b))
#define vmul(a, b) _mm512_mul_ps((a), (b))
#define vdiv(a, b) _mm512_div_ps((a), (b))
#define vmax(a, b) _mm512_max_ps((a), (b))
#define vmin(a, b) _mm512_min_ps((a), (b))
#define vsqrt(a) _mm512_sqrt_ps(a)
#define vfmadd(a, b, c) _mm512_fmadd_ps((a), (b), (c))  /* a b + c */
#define vfnmadd(a, b, c) _mm512_fnmadd_ps((a), (b), (c)) /* c - a b */

/* mask of the first n (< 16) lanes */
static inline __mmask16 shelf__tailmask(size_t n)
{
    return (__mmask16)((1u << n) - 1u);
}
/* first n < VW lanes of p, zeros above; stores write only those lanes */
static inline vf vloadn(const float *p, size_t n)
{
    return _mm512_maskz_loadu_ps(shelf__tailmask(n), p);
}
static inline void vstoren(float *p, vf v, size_t n)
{
    _mm512_mask_storeu_ps(p, shelf__tailmask(n), v);
}
static inline float vhsum(vf v)
{
    return _mm512_reduce_add_ps(v);
}
static inline float vhmax(vf v)
{
    return _mm512_reduce_max_ps(v);
}

/* 2^k p for integral float k in [-150, 128]: scalef rounds once, as the
 * two-step product of vexp_int.h */
static inline vf vscale2k(vf p, vf k)
{
    return _mm512_scalef_ps(p, k);
}
static inline vf vround(vf x)
{
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* widen the lanes to double and add them into two accumulators */
static inline void vadd_to_pd(__m512d *s0, __m512d *s1, vf e)
{
    *s0 = _mm512_add_pd(*s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    *s1 = _mm512_add_pd(*s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
}
typedef __m512d vd;
#define vdzero() _mm512_setzero_pd()
static inline double vdhsum(vd a, vd b)
{
    return _mm512_reduce_add_pd(_mm512_add_pd(a, b));
}

#elif defined(SHELF_ISA_AVX2)
#define ISA_VEC 1
#define VW 8
typedef __m256 vf;
#define vzero() _mm256_setzero_ps()
#define vset1(x) _mm256_set1_ps(x)
#define vload(p) _mm256_loadu_ps(p)
#define vstore(p, v) _mm256_storeu_ps((p), (v))
#define vadd(a, b) _mm256_add_ps((a), (b))
#define vsub(a, b) _mm256_sub_ps((a), (b))
#define vmul(a, b) _mm256_mul_ps((a), (b))
#define vdiv(a, b) _mm256_div_ps((a), (b))
#define vmax(a, b) _mm256_max_ps((a), (b))
#define vmin(a, b) _mm256_min_ps((a), (b))
#define vsqrt(a) _mm256_sqrt_ps(a)
#define vfmadd(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define vfnmadd(a, b, c) _mm256_fnmadd_ps((a), (b), (c))

/* lane mask of the first n (< 8) lanes: 8 - n ones... read at an offset */
static inline __m256i shelf__tailmask8(size_t n)
{
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}
static inline vf vloadn(const float *p, size_t n)
{
    return _mm256_maskload_ps(p, shelf__tailmask8(n));
}
static inline void vstoren(float *p, vf v, size_t n)
{
    _mm256_maskstore_ps(p, shelf__tailmask8(n), v);
}
static inline float vhsum(vf v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float vhmax(vf v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
/* 2^k p, k integral in [-150, 128]: two exact powers of two (vexp_int.h) */
static inline vf vscale2k(vf p, vf k)
{
    __m256i ki = _mm256_cvtps_epi32(k);
    __m256i k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
    __m256i b = _mm256_set1_epi32(127);
    vf s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, b), 23));
    vf s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, b), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
static inline vf vround(vf x)
{
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
typedef __m256d vd;
#define vdzero() _mm256_setzero_pd()
static inline void vadd_to_pd(vd *s0, vd *s1, vf e)
{
    *s0 = _mm256_add_pd(*s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    *s1 = _mm256_add_pd(*s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}
static inline double vdhsum(vd a, vd b)
{
    __m256d s = _mm256_add_pd(a, b);
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}
#endif

#ifdef ISA_VEC
/* VW lanes of exp (vexp_int.h) */
static inline vf shelf__vexpv(vf x)
{
    x = vmin(vmax(x, vset1(VEXP_LO)), vset1(VEXP_HI));
    vf k = vround(vmul(x, vset1(VEXP_LOG2E)));
    vf r = vfnmadd(k, vset1(VEXP_LN2_HI), x);
    r = vfnmadd(k, vset1(VEXP_LN2_LO), r);
    vf p = vset1(VEXP_C7);
    p = vfmadd(p, r, vset1(VEXP_C6));
    p = vfmadd(p, r, vset1(VEXP_C5));
    p = vfmadd(p, r, vset1(VEXP_C4));
    p = vfmadd(p, r, vset1(VEXP_C3));
    p = vfmadd(p, r, vset1(VEXP_C2));
    p = vfmadd(p, r, vset1(1.0f));
    p = vfmadd(p, r, vset1(1.0f));
    return vscale2k(p, k);
}
#endif

/* out[i] = exp(x[i] - sub) for i < n (out may equal x); returns sum_i
 * out[i] (float lanes, summed in a fixed order that depends only on n) */
static inline float shelf__vexp_sub_sum(float *out, const float *x, float sub, size_t n)
{
#ifdef ISA_VEC
    vf s = vzero(), vs = vset1(sub);
    size_t i = 0;
    for (; i + VW <= n; i += VW) {
        vf e = shelf__vexpv(vsub(vload(x + i), vs));
        vstore(out + i, e);
        s = vadd(s, e);
    }
    if (i < n) {
        vf e = shelf__vexpv(vsub(vloadn(x + i, n - i), vs));
        vstoren(out + i, e, n - i);
        /* lanes past n hold exp(-sub): keep them out of the sum */
        s = vadd(s, vloadn(out + i, n - i));
    }
    return vhsum(s);
#else
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += out[i] = shelf__vexpf(x[i] - sub);
    return s;
#endif
}

/* max of x[0..n) (n >= 1) */
static inline float shelf__vmax(const float *x, size_t n)
{
#ifdef ISA_VEC
    vf m = vset1(-INFINITY);
    size_t i = 0;
    for (; i + VW <= n; i += VW) m = vmax(m, vload(x + i));
    float r = vhmax(m);
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
#else
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
#endif
}

#endif
