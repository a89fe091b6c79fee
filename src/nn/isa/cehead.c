/* cehead.c: the fused full-catalogue softmax cross-entropy head of nn.h
 * (logits = h w^T, softmax, G, dh = G w, dw += G^T h) working in cache-sized
 * tiles, float32 or bfloat16 products.
 *
 * Dimension letters: N rows, V items (classes), C channels. Inside: RB rows
 * per chunk, VB items per block, Cp = C rounded up to 16 (one zmm).
 * Compiled once per instruction-set level (isa_int.h); cehead.c one folder
 * up holds the work space, the reference and the call into the right copy.
 *
 * Schedule. Rows go in chunks of RB; for each chunk all threads share the
 * item blocks of VB (a fixed decomposition, static schedule):
 *   pass 1, per block b: X_b = h_c w_b^T, per-row block max m[r,b] and
 *           E_b = exp(X_b - m) in place, s[r,b] = sum E_b;
 *   combine, per row: lse from (m, s) over the blocks in block order;
 *           scale[r,b] = g exp(m[r,b] - lse);
 *   pass 2, per block b: G_b = scale E_b - g [v == tgt], dhp[b] = G_b w_b,
 *           dw_b += G_b^T h_c;
 *   per row: dh = sum_b dhp[b] in block order.
 * Every sum has an order fixed by (N, V, C) alone, so the thread count does
 * not change a bit of the result; dw_b is owned by one block, i.e. one thread
 * per pass. With the static schedule a thread gets the same blocks in every
 * chunk, so its dw and w blocks stay in its L2/L3 share. The per-block working
 * set (w_b packed, X_b, dw_b: VB Cp 4 + RB VB 4 + VB C 4 bytes = 192 KB at
 * C = 64) sits in the 1 MB L2.
 *
 * Micro-kernels: one tile helper per level, 8 rows x 16 columns of output:
 * AVX-512 one zmm of 16 columns by 8 accumulators (Zen 4 issues one 512-bit
 * FMA per cycle and two loads, so 8 broadcasts + 1 load per 8 FMAs keep the
 * FMA busy); AVX2 two halves of 4 rows x 2 ymm (8 accumulators of 16
 * registers, 2 loads + 4 broadcasts per 8 FMAs for two FMA ports); plain
 * loops in the generic copy, the naive twin:
 *   K1 logits  X[r, v]  : 8 rows x 16 items, k = c   (w packed in panels)
 *   K2 dhp     [r, c]   : 8 rows x 16 c,     k = v   (w row-major, padded)
 *   K3 dw      [v, c]   : 8 items x 16 c,    k = r   (h row-major, padded)
 * Every level sums each output over k in the same order, so F32 results
 * differ between levels only through the exp (FMA or not).
 * BF16: the same tiles with vdpbf16ps, k taken in pairs, operands packed so a
 * pair is adjacent: w panels [Cp/2][16][2], w by item pairs [V/2][Cp][2],
 * h by row pairs [RB/2][Cp][2], G row-major and G by row pairs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kern_int.h"
#include "vmath_int.h"
#include "core/assert_int.h"

#ifdef SHELF_ISA_AVX512
#define CEHEAD_BF16 1 /* compiled in; run only when the caller asks (kern_int.h .bf16) */
#endif

#define RB SHELF_CEHEAD_RB
#define VB SHELF_CEHEAD_VB
#define TILE 8
#define SHELF_CEHEAD_MAXC_STACK 512 /* dh rows up to this width summed on the stack */

static size_t round_up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

/* ========================================================================
 * packing
 * ======================================================================== */

/* float -> bfloat16, round to nearest even (what vcvtne2ps2bf16 does for
 * normal numbers) */
static inline uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* w[V,C] -> wp, wr (float) or wpb, wqb (bf16), each only in the mode that
 * reads it: this runs on every call, ~3 MB in and out */
static void pack_w(shelf_nn_cehead_ws *ws, const float *w, int bf16)
{
    size_t V = ws->V, C = ws->C, Cp = ws->Cp, Vp = ws->Vp;
#pragma omp for schedule(static)
    for (size_t p = 0; p < Vp / 16; p++) {
        float row[2][SHELF_CEHEAD_MAXC_STACK];
        for (size_t j = 0; j < 16; j += 2) {
            /* items v, v+1 as two zero-padded float rows */
            for (int k = 0; k < 2; k++) {
                size_t v = p * 16 + j + (size_t)k;
                float *dst = Cp <= SHELF_CEHEAD_MAXC_STACK ? row[k] : ws->wr + v * Cp;
                if (v < V) memcpy(dst, w + v * C, C * sizeof *dst);
                else memset(dst, 0, C * sizeof *dst);
                memset(dst + C, 0, (Cp - C) * sizeof *dst);
                if (!bf16) {
                    if (dst != ws->wr + v * Cp) memcpy(ws->wr + v * Cp, dst, Cp * sizeof *dst);
                    for (size_t c = 0; c < Cp; c++) ws->wp[p * Cp * 16 + c * 16 + j + (size_t)k] = dst[c];
                }
            }
#ifdef CEHEAD_BF16
            if (bf16) {
                size_t v = p * 16 + j;
                const float *r0 = Cp <= SHELF_CEHEAD_MAXC_STACK ? row[0] : ws->wr + v * Cp;
                const float *r1 = Cp <= SHELF_CEHEAD_MAXC_STACK ? row[1] : ws->wr + (v + 1) * Cp;
                uint32_t b0[SHELF_CEHEAD_MAXC_STACK / 2], b1[SHELF_CEHEAD_MAXC_STACK / 2];
                uint16_t *pan = ws->wpb + p * Cp * 16;
                for (size_t c = 0; c < Cp; c += 16) {
                    __m512 x0 = _mm512_loadu_ps(r0 + c), x1 = _mm512_loadu_ps(r1 + c);
                    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
                    /* K2: item pairs interleaved per channel */
                    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                                           24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                                           16, 0);
                    _mm512_storeu_si512(ws->wqb + (v / 2) * Cp * 2 + c * 2, _mm512_permutexvar_epi16(inter, both));
                    if (Cp <= SHELF_CEHEAD_MAXC_STACK) {
                        _mm256_storeu_si256((__m256i *)(b0 + c / 2), _mm512_castsi512_si256(both));
                        _mm256_storeu_si256((__m256i *)(b1 + c / 2), _mm512_extracti64x4_epi64(both, 1));
                    }
                }
                /* K1: a channel pair of one item is one 32-bit word; panels
                 * are [Cp/2][16] of them */
                if (Cp <= SHELF_CEHEAD_MAXC_STACK) {
                    for (size_t c2 = 0; c2 < Cp / 2; c2++) {
                        memcpy(pan + (c2 * 16 + j) * 2, &b0[c2], 4);
                        memcpy(pan + (c2 * 16 + j + 1) * 2, &b1[c2], 4);
                    }
                } else {
                    for (size_t c = 0; c < Cp; c++) {
                        ws->wpb[p * Cp * 16 + (c / 2) * 32 + j * 2 + (c & 1)] = to_bf16(r0[c]);
                        ws->wpb[p * Cp * 16 + (c / 2) * 32 + (j + 1) * 2 + (c & 1)] = to_bf16(r1[c]);
                    }
                }
            }
#endif
        }
    }
}

/* rows [n0, n0+nr) of h -> hp (and hb, hqb), zero rows up to RB */
static void pack_h(shelf_nn_cehead_ws *ws, const float *h, size_t n0, size_t nr, int bf16)
{
    size_t C = ws->C, Cp = ws->Cp;
    for (size_t r = 0; r < RB; r++)
        for (size_t c = 0; c < Cp; c++) {
            float x = r < nr && c < C ? h[(n0 + r) * C + c] : 0.0f;
            ws->hp[r * Cp + c] = x;
#ifdef CEHEAD_BF16
            if (bf16) {
                uint16_t b = to_bf16(x);
                ws->hb[r * Cp + c] = b;
                ws->hqb[(r / 2) * Cp * 2 + c * 2 + (r & 1)] = b;
            }
#endif
        }
}

/* ========================================================================
 * micro-kernels
 * ======================================================================== */

#if defined(SHELF_ISA_AVX512)
/* The AVX-512 tile: 8 rows x 16 columns in 8 zmm accumulators, per k one
 * load and 8 broadcasts for 8 FMAs (Zen 4 issues one 512-bit FMA and two
 * loads a cycle, so the FMA stays busy).
 *   acc[i][0..16) = sum_{k < nk} A[i sa + k sk] B[k sb + 0..16),  i < 8 */
typedef struct {
    __m512 a[TILE];
} tile8;

static inline tile8 tile8x16(const float *A, size_t sa, size_t sk, const float *B, size_t sb, size_t nk)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t k = 0; k < nk; k++) {
        const float *x = A + k * sk;
        __m512 b = _mm512_loadu_ps(B + k * sb);
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(x[0 * sa]), b, a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(x[1 * sa]), b, a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(x[2 * sa]), b, a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(x[3 * sa]), b, a3);
        a4 = _mm512_fmadd_ps(_mm512_set1_ps(x[4 * sa]), b, a4);
        a5 = _mm512_fmadd_ps(_mm512_set1_ps(x[5 * sa]), b, a5);
        a6 = _mm512_fmadd_ps(_mm512_set1_ps(x[6 * sa]), b, a6);
        a7 = _mm512_fmadd_ps(_mm512_set1_ps(x[7 * sa]), b, a7);
    }
    tile8 t = {{a0, a1, a2, a3, a4, a5, a6, a7}};
    return t;
}

/* out rows i < 8 (stride so) = the tile */
static inline void tile8_store(float *out, size_t so, const tile8 *t)
{
    for (int i = 0; i < TILE; i++) _mm512_storeu_ps(out + i * so, t->a[i]);
}

/* dw[j, 0..min(nc,16)) += acc[j] for j < nj (the K3 epilogue); dw row stride C */
static inline void k3_store(float *dw, const __m512 *acc, size_t nj, size_t nc, size_t C)
{
    __mmask16 m = nc >= 16 ? (__mmask16)0xffff : shelf__tailmask(nc);
    for (size_t j = 0; j < nj; j++) {
        __m512 d = _mm512_maskz_loadu_ps(m, dw + j * C);
        _mm512_mask_storeu_ps(dw + j * C, m, _mm512_add_ps(d, acc[j]));
    }
}
#endif

#if defined(SHELF_ISA_AVX2)
/* The AVX2 tile: 4 rows x 16 columns in 8 ymm accumulators, per k 2 loads
 * and 4 broadcasts for 8 FMAs (16 registers: 8 accumulators, 2 B vectors,
 * the broadcast; two FMA ports need ~8 chains in flight).
 *   acc[i][0..16) = sum_{k < nk} A[i sa + k sk] B[k sb + 0..16),  i < 4 */
typedef struct {
    __m256 a[4][2];
} tile4;

static inline tile4 tile4x16(const float *A, size_t sa, size_t sk, const float *B, size_t sb, size_t nk)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    for (size_t k = 0; k < nk; k++) {
        const float *b = B + k * sb, *x = A + k * sk;
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), t;
        t = _mm256_broadcast_ss(x);
        a00 = _mm256_fmadd_ps(t, b0, a00), a01 = _mm256_fmadd_ps(t, b1, a01);
        t = _mm256_broadcast_ss(x + sa);
        a10 = _mm256_fmadd_ps(t, b0, a10), a11 = _mm256_fmadd_ps(t, b1, a11);
        t = _mm256_broadcast_ss(x + 2 * sa);
        a20 = _mm256_fmadd_ps(t, b0, a20), a21 = _mm256_fmadd_ps(t, b1, a21);
        t = _mm256_broadcast_ss(x + 3 * sa);
        a30 = _mm256_fmadd_ps(t, b0, a30), a31 = _mm256_fmadd_ps(t, b1, a31);
    }
    tile4 r = {{{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}}};
    return r;
}

/* out rows i < 4 (stride so) = the tile */
static inline void tile4_store(float *out, size_t so, const tile4 *t)
{
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(out + i * so, t->a[i][0]);
        _mm256_storeu_ps(out + i * so + 8, t->a[i][1]);
    }
}

/* dw rows i < ni (stride C), columns < min(nc, 16): += the tile */
static inline void tile4_add(float *dw, size_t C, const tile4 *t, size_t ni, size_t nc)
{
    for (size_t i = 0; i < ni; i++) {
        float *d = dw + i * C;
        if (nc >= 16) {
            _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), t->a[i][0]));
            _mm256_storeu_ps(d + 8, _mm256_add_ps(_mm256_loadu_ps(d + 8), t->a[i][1]));
        } else if (nc >= 8) {
            _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), t->a[i][0]));
            if (nc > 8) vstoren(d + 8, _mm256_add_ps(vloadn(d + 8, nc - 8), t->a[i][1]), nc - 8);
        } else {
            vstoren(d, _mm256_add_ps(vloadn(d, nc), t->a[i][0]), nc);
        }
    }
}
#endif

/* K1, float: X[r0+i, 16p+j] = sum_c hp[r0+i, c] wp[p][c][j], i < 8, j < 16;
 * X row stride VB, panel p of the block */
static void k1_f32(float *X, const float *hp, const float *wpanel, size_t Cp)
{
#if defined(SHELF_ISA_AVX512)
    tile8 t = tile8x16(hp, Cp, 1, wpanel, 16, Cp);
    tile8_store(X, VB, &t);
#elif defined(SHELF_ISA_AVX2)
    for (size_t i = 0; i < TILE; i += 4) {
        tile4 t = tile4x16(hp + i * Cp, Cp, 1, wpanel, 16, Cp);
        tile4_store(X + i * VB, VB, &t);
    }
#else
    for (size_t i = 0; i < TILE; i++)
        for (size_t j = 0; j < 16; j++) {
            float a = 0.0f;
            for (size_t c = 0; c < Cp; c++) a += hp[i * Cp + c] * wpanel[c * 16 + j];
            X[i * VB + j] = a;
        }
#endif
}

/* K2, float: out[i, c0..c0+16) = sum_{v < nv} G[i, v] wr[v, c0..], i < 8;
 * G row stride VB, out row stride Cp */
static void k2_f32(float *out, const float *G, const float *wr, size_t nv, size_t Cp)
{
#if defined(SHELF_ISA_AVX512)
    tile8 t = tile8x16(G, VB, 1, wr, Cp, nv);
    tile8_store(out, Cp, &t);
#elif defined(SHELF_ISA_AVX2)
    for (size_t i = 0; i < TILE; i += 4) {
        tile4 t = tile4x16(G + i * VB, VB, 1, wr, Cp, nv);
        tile4_store(out + i * Cp, Cp, &t);
    }
#else
    for (size_t i = 0; i < TILE; i++)
        for (size_t c = 0; c < 16; c++) {
            float a = 0.0f;
            for (size_t v = 0; v < nv; v++) a += G[i * VB + v] * wr[v * Cp + c];
            out[i * Cp + c] = a;
        }
#endif
}

/* K3, float: dw[j, c0..c0+min(nc,16)) += sum_{r < nr} G[r, j] hp[r, c0..],
 * j < nj <= 8;
 * G row stride VB (G columns up to 8 readable), hp row stride Cp */
static void k3_f32(float *dw, const float *G, const float *hp, size_t nr, size_t nj, size_t nc, size_t Cp,
                   size_t C)
{
#if defined(SHELF_ISA_AVX512)
    tile8 t = tile8x16(G, 1, VB, hp, Cp, nr); /* items as the tile's rows; k = r */
    k3_store(dw, t.a, nj, nc, C);
#elif defined(SHELF_ISA_AVX2)
    for (size_t j = 0; j < nj; j += 4) { /* items j..j+3 as the tile's rows; k = r */
        tile4 t = tile4x16(G + j, 1, VB, hp, Cp, nr);
        tile4_add(dw + j * C, C, &t, nj - j < 4 ? nj - j : 4, nc);
    }
#else
    if (nc > 16) nc = 16; /* one zmm's worth, as the vector path */
    for (size_t j = 0; j < nj; j++)
        for (size_t c = 0; c < nc; c++) {
            float a = 0.0f;
            for (size_t r = 0; r < nr; r++) a += G[r * VB + j] * hp[r * Cp + c];
            dw[j * C + c] += a;
        }
#endif
}

#ifdef CEHEAD_BF16
/* 32-bit broadcast of a bf16 pair */
static inline __m512bh bcast_pair(const uint16_t *p)
{
    uint32_t u;
    memcpy(&u, p, sizeof u);
    return (__m512bh)_mm512_set1_epi32((int)u);
}

static inline __m512bh load_bh(const uint16_t *p)
{
    return (__m512bh)_mm512_loadu_si512(p);
}

#define DP8(A, B, SRC, STRIDE)                                                                                    \
    do {                                                                                                          \
        A[0] = _mm512_dpbf16_ps(A[0], bcast_pair((SRC) + 0 * (STRIDE)), B);                                    \
        A[1] = _mm512_dpbf16_ps(A[1], bcast_pair((SRC) + 1 * (STRIDE)), B);                                    \
        A[2] = _mm512_dpbf16_ps(A[2], bcast_pair((SRC) + 2 * (STRIDE)), B);                                    \
        A[3] = _mm512_dpbf16_ps(A[3], bcast_pair((SRC) + 3 * (STRIDE)), B);                                    \
        A[4] = _mm512_dpbf16_ps(A[4], bcast_pair((SRC) + 4 * (STRIDE)), B);                                    \
        A[5] = _mm512_dpbf16_ps(A[5], bcast_pair((SRC) + 5 * (STRIDE)), B);                                    \
        A[6] = _mm512_dpbf16_ps(A[6], bcast_pair((SRC) + 6 * (STRIDE)), B);                                    \
        A[7] = _mm512_dpbf16_ps(A[7], bcast_pair((SRC) + 7 * (STRIDE)), B);                                    \
    } while (0)

/* K1, bf16: as k1_f32, c in pairs; hb row stride Cp, panel [Cp/2][16][2] */
static void k1_bf16(float *X, const uint16_t *hb, const uint16_t *wpanel, size_t Cp)
{
    __m512 a[TILE];
    a[0] = _mm512_setzero_ps();
    for (int j = 1; j < TILE; j++) a[j] = a[0];
    for (size_t c = 0; c < Cp; c += 2) {
        __m512bh b = load_bh(wpanel + c * 16);
        DP8(a, b, hb + c, Cp);
    }
    for (int i = 0; i < TILE; i++) _mm512_storeu_ps(X + i * VB, a[i]);
}

/* K2, bf16: as k2_f32, v in pairs (nv rounded up to even, G zero there);
 * Gb row stride VB; wq [v/2][Cp][2] at this c group */
static void k2_bf16(float *out, const uint16_t *Gb, const uint16_t *wq, size_t nv, size_t Cp)
{
    __m512 a[TILE];
    a[0] = _mm512_setzero_ps();
    for (int j = 1; j < TILE; j++) a[j] = a[0];
    for (size_t v = 0; v < nv; v += 2) {
        __m512bh b = load_bh(wq + (v / 2) * Cp * 2);
        DP8(a, b, Gb + v, VB);
    }
    for (int i = 0; i < TILE; i++) _mm512_store_ps(out + i * Cp, a[i]);
}

/* K3, bf16: as k3_f32, r in pairs; Gt [r/2][VB][2] at this item tile, hq
 * [r/2][Cp][2] at this c group */
static void k3_bf16(float *dw, const uint16_t *Gt, const uint16_t *hq, size_t nr, size_t nj, size_t nc, size_t Cp,
                    size_t C)
{
    __m512 a[TILE];
    a[0] = _mm512_setzero_ps();
    for (int j = 1; j < TILE; j++) a[j] = a[0];
    for (size_t rp = 0; rp < (nr + 1) / 2; rp++) {
        __m512bh b = load_bh(hq + rp * Cp * 2);
        DP8(a, b, Gt + rp * VB * 2, 2);
    }
    k3_store(dw, a, nj, nc, C);
}

/* G rows r, r+1 (16 items at g0, g1) -> Gb row-major and Gt pair layout */
static inline void g_to_bf16(uint16_t *Gb0, uint16_t *Gb1, uint16_t *Gt, __m512 g0, __m512 g1)
{
    /* cvtne2ps: lanes 0..15 from the second operand, 16..31 from the first */
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(g1, g0);
    _mm256_storeu_si256((__m256i *)Gb0, _mm512_castsi512_si256(both));
    _mm256_storeu_si256((__m256i *)Gb1, _mm512_extracti64x4_epi64(both, 1));
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                           6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    _mm512_storeu_si512(Gt, _mm512_permutexvar_epi16(inter, both));
}
#endif

/* ========================================================================
 * the head
 * ======================================================================== */

/* pass 1 on block b: X_b, then per row block max, E in place, block sum */
static void block_pass1(shelf_nn_cehead_ws *ws, const uint32_t *tgt, size_t n0, size_t nr, size_t b, int bf16)
{
    size_t Cp = ws->Cp, nb = ws->nb, v0 = b * VB;
    size_t nv = ws->V - v0 < VB ? ws->V - v0 : VB;
    float *X = ws->X + b * RB * VB;
    size_t nrt = round_up(nr, TILE);
    for (size_t p = 0; p < (nv + 15) / 16; p++)
        for (size_t r0 = 0; r0 < nrt; r0 += TILE) {
#ifdef CEHEAD_BF16
            if (bf16) {
                k1_bf16(X + r0 * VB + p * 16, ws->hb + r0 * Cp, ws->wpb + (v0 / 16 + p) * Cp * 16, Cp);
                continue;
            }
#endif
            k1_f32(X + r0 * VB + p * 16, ws->hp + r0 * Cp, ws->wp + (v0 / 16 + p) * Cp * 16, Cp);
        }
    for (size_t r = 0; r < nr; r++) {
        float *x = X + r * VB;
        size_t t = tgt[n0 + r];
        if (t >= v0 && t < v0 + nv) ws->xt[r] = x[t - v0];
        float mx = shelf__vmax(x, nv);
        ws->m[r * nb + b] = mx;
        ws->s[r * nb + b] = shelf__vexp_sub_sum(x, x, mx, nv);
    }
}

/* per row: lse, loss, scale[r, b] */
static void combine_row(shelf_nn_cehead_ws *ws, float *loss_r, size_t r, float g)
{
    size_t nb = ws->nb;
    const float *m = ws->m + r * nb, *s = ws->s + r * nb;
    float M = -INFINITY;
    for (size_t b = 0; b < nb; b++) M = m[b] > M ? m[b] : M;
    double S = 0.0;
    for (size_t b = 0; b < nb; b++) S += (double)s[b] * exp((double)m[b] - M);
    double lse = M + log(S);
    *loss_r = (float)(lse - ws->xt[r]);
    for (size_t b = 0; b < nb; b++) ws->scale[r * nb + b] = (float)(g * exp((double)m[b] - lse));
}

/* pass 2 on block b: G, dhp[b], dw_b */
static void block_pass2(shelf_nn_cehead_ws *ws, float *dw, const uint32_t *tgt, size_t n0, size_t nr, size_t b,
                        float g, int bf16)
{
    size_t Cp = ws->Cp, C = ws->C, nb = ws->nb, v0 = b * VB;
    size_t nv = ws->V - v0 < VB ? ws->V - v0 : VB;
    size_t nrt = round_up(nr, TILE);
    size_t nvt = round_up(nv, TILE); /* K3 reads G up to a whole tile, K2 bf16 up to a pair */
    float *X = ws->X + b * RB * VB;
    /* G in place of E: scale, the target's -g, zeros past the data */
    for (size_t r = 0; r < nrt; r++) {
        float *x = X + r * VB;
        if (r >= nr) {
            memset(x, 0, nvt * sizeof *x);
            continue;
        }
        float sc = ws->scale[r * nb + b];
        size_t v = 0;
#ifdef ISA_VEC
        vf vsc = vset1(sc);
        for (; v + VW <= nv; v += VW) vstore(x + v, vmul(vsc, vload(x + v)));
#endif
        for (; v < nv; v++) x[v] *= sc;
        for (; v < nvt; v++) x[v] = 0.0f;
        size_t t = tgt[n0 + r];
        if (t >= v0 && t < v0 + nv) x[t - v0] -= g;
    }
    float *dhp = ws->dhp + b * RB * Cp;
#ifdef CEHEAD_BF16
    if (bf16) {
        uint16_t *Gb = ws->Gb + b * RB * VB, *Gt = ws->Gtb + b * RB * VB;
        for (size_t r = 0; r < nrt; r += 2)
            for (size_t v = 0; v < nvt; v += 16) {
                __mmask16 mk = nvt - v >= 16 ? (__mmask16)0xffff : shelf__tailmask(nvt - v);
                __m512 g0 = _mm512_maskz_loadu_ps(mk, X + r * VB + v);
                __m512 g1 = _mm512_maskz_loadu_ps(mk, X + (r + 1) * VB + v);
                g_to_bf16(Gb + r * VB + v, Gb + (r + 1) * VB + v, Gt + (r / 2) * VB * 2 + v * 2, g0, g1);
            }
        for (size_t r0 = 0; r0 < nrt; r0 += TILE)
            for (size_t c0 = 0; c0 < Cp; c0 += 16)
                k2_bf16(dhp + r0 * Cp + c0, Gb + r0 * VB, ws->wqb + (v0 / 2) * Cp * 2 + c0 * 2, round_up(nv, 2), Cp);
        if (dw)
            for (size_t j0 = 0; j0 < nv; j0 += TILE)
                for (size_t c0 = 0; c0 < C; c0 += 16)
                    k3_bf16(dw + (v0 + j0) * C + c0, Gt + j0 * 2, ws->hqb + c0 * 2, nr,
                            nv - j0 < TILE ? nv - j0 : TILE, C - c0, Cp, C);
        return;
    }
#endif
    for (size_t r0 = 0; r0 < nrt; r0 += TILE)
        for (size_t c0 = 0; c0 < Cp; c0 += 16)
            k2_f32(dhp + r0 * Cp + c0, X + r0 * VB, ws->wr + v0 * Cp + c0, nv, Cp);
    if (dw)
        for (size_t j0 = 0; j0 < nv; j0 += TILE)
            for (size_t c0 = 0; c0 < C; c0 += 16)
                k3_f32(dw + (v0 + j0) * C + c0, X + j0, ws->hp + c0, nr, nv - j0 < TILE ? nv - j0 : TILE, C - c0,
                       Cp, C);
}

/* the head of nn.h with the checks done by cehead.c; bf16 only when this
 * level's table says it has the dot products */
float ISA_FN(shelf__cehead_run)(float *losses, float *dh, float *dw, const float *h, const float *w,
                                const uint32_t *tgt, float dloss, size_t N, size_t V, size_t C, int bf16,
                                shelf_nn_cehead_ws *ws)
{
    SHELF_ASSERT(ws && N <= ws->max_N && V == ws->V && C == ws->C);
    SHELF_ASSERT(V > 0 || N == 0);
    if (N == 0) return 0.0f;
    for (size_t n = 0; n < N; n++) SHELF_ASSERT(tgt[n] < V);
#ifndef CEHEAD_BF16
    bf16 = 0; /* no bf16 dot products in this copy: compute as F32 */
#endif
    float g = dloss / (float)N;
    size_t nb = ws->nb, Cp = ws->Cp;
    /* per-row losses go here when the caller passes none, RB at a time */
    float lbuf[RB];
    double total = 0.0;
#pragma omp parallel
    {
        pack_w(ws, w, bf16);
        for (size_t n0 = 0; n0 < N; n0 += RB) {
            size_t nr = N - n0 < RB ? N - n0 : RB;
#pragma omp single
            pack_h(ws, h, n0, nr, bf16);
#pragma omp for schedule(static)
            for (size_t b = 0; b < nb; b++) block_pass1(ws, tgt, n0, nr, b, bf16);
            float *lr = losses ? losses + n0 : lbuf;
#pragma omp for schedule(static)
            for (size_t r = 0; r < nr; r++) combine_row(ws, lr + r, r, g);
#pragma omp single
            for (size_t r = 0; r < nr; r++) total += lr[r];
            if (!dh) continue;
#pragma omp for schedule(static)
            for (size_t b = 0; b < nb; b++) block_pass2(ws, dw, tgt, n0, nr, b, g, bf16);
            /* dh rows: the block partials in block order */
#pragma omp for schedule(static)
            for (size_t r = 0; r < nr; r++) {
                float acc[SHELF_CEHEAD_MAXC_STACK];
                float *d = dh + (n0 + r) * C;
                if (Cp <= SHELF_CEHEAD_MAXC_STACK) { /* a local sum the compiler can vectorise */
                    for (size_t c = 0; c < Cp; c++) acc[c] = 0.0f;
                    for (size_t b = 0; b < nb; b++) {
                        const float *p = ws->dhp + (b * RB + r) * Cp;
                        for (size_t c = 0; c < Cp; c++) acc[c] += p[c];
                    }
                    memcpy(d, acc, C * sizeof *d);
                    continue;
                }
                for (size_t c = 0; c < C; c++) d[c] = 0.0f;
                for (size_t b = 0; b < nb; b++) {
                    const float *p = ws->dhp + (b * RB + r) * Cp;
                    for (size_t c = 0; c < C; c++) d[c] += p[c];
                }
            }
        }
    }
    return (float)(total / (double)N);
}
