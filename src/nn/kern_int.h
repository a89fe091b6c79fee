/* kern_int.h: the table of per-level kernels (one copy of src/nn/isa/ per
 * instruction-set level) and the call that picks the table for the level of
 * shelf_cpu_level_get(). The public nn functions keep their contracts and
 * their OpenMP loops; the inner, vectorised work goes through this table.
 *
 * Every entry is serial (no OpenMP inside) except cehead, which runs its own
 * parallel region. Shapes are as in the public function each one serves. */
#ifndef SHELF_NN_KERN_INT_H
#define SHELF_NN_KERN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "shelf/cpu.h"
#include "nn/nn.h"

/* The head's work space (nn.h): packed operands and per-block partials.
 * Allocated by cehead.c for the widest layout any level reads. */
#define SHELF_CEHEAD_RB 64  /* rows per chunk: fixed, so results do not depend on N's split */
#define SHELF_CEHEAD_VB 256 /* items per block; multiple of 16 */
struct shelf_nn_cehead_ws {
    size_t max_N, V, C, Cp, Vp, nb;
    float *wp;     /* [Vp/16][Cp][16] w in 16-item panels (K1) */
    float *wr;     /* [Vp][Cp] w row-major, zero padded (K2) */
    float *hp;     /* [RB][Cp] the chunk's h, zero padded */
    float *X;      /* [nb][RB][VB] logits, then E, then G (float) */
    float *dhp;    /* [nb][RB][Cp] per-block dh */
    float *m, *s;  /* [RB][nb] block max and sum */
    float *scale;  /* [RB][nb] */
    float *xt;     /* [RB] target logit */
    uint16_t *wpb; /* [Vp/16][Cp/2][16][2] bf16 panels (K1); NULL without BF16 */
    uint16_t *wqb; /* [Vp/2][Cp][2] bf16 by item pairs (K2) */
    uint16_t *hb;  /* [RB][Cp] bf16 (K1) */
    uint16_t *hqb; /* [RB/2][Cp][2] bf16 by row pairs (K3) */
    uint16_t *Gb;  /* [nb][RB][VB] bf16 G row-major (K2) */
    uint16_t *Gtb; /* [nb][RB/2][VB][2] bf16 G by row pairs (K3) */
};

/* floats per task when an OpenMP loop hands an elementwise kernel a slice
 * (GELU, AdamW): a multiple of every vector width */
#define SHELF__KERN_CHUNK 4096

/* AdamW's per-step constants (optim.c) */
typedef struct {
    float lr, b1, b2, eps, c1, c2, decay;
} shelf__adamw_k;

typedef struct shelf__kern {
    shelf_cpu_level level; /* the level the code was compiled for (AVX512 for both AVX-512 levels) */
    int bf16;              /* 1: cehead has BF16 dot products (only the AVX512_BF16 table) */
    /* the fused head of nn.h; bf16 only where .bf16 */
    float (*cehead)(float *losses, float *dh, float *dw, const float *h, const float *w, const uint32_t *tgt,
                    float dloss, size_t N, size_t V, size_t C, int bf16, shelf_nn_cehead_ws *ws);
    /* out[i] = exp(x[i] - sub), i < n (in place allowed); returns the float sum */
    float (*exp_sub_sum)(float *out, const float *x, float sub, size_t n);
    float (*max)(const float *x, size_t n); /* n >= 1 */
    /* sum_v exp(x[v] - mx) in double lanes, order fixed by n */
    double (*sum_exp)(const float *x, float mx, size_t n);
    /* d[v] = g exp(x[v] - l) (inplace, d may be x) or d[v] += that */
    void (*scaled_exp)(float *d, const float *x, float l, float g, int inplace, size_t n);
    /* one LayerNorm row of C: out, *mean, *rstd <- x, weight, bias */
    void (*layernorm_fwd)(float *out, float *mean, float *rstd, const float *x, const float *weight,
                          const float *bias, size_t C);
    /* one row's input gradient: dinp[C] += ... (nn.h's formula) */
    void (*layernorm_bwd)(float *dinp, const float *dout, const float *x, const float *weight, float mean,
                          float rstd, size_t C);
    /* dweight[C] += xhat dout, dbias[C] += dout for one row (either may be NULL) */
    void (*layernorm_params)(float *dweight, float *dbias, const float *dout, const float *x, float mean,
                             float rstd, size_t C);
    void (*gelu_fwd)(float *out, const float *inp, size_t n);
    void (*gelu_bwd)(float *dinp, const float *inp, const float *dout, size_t n);
    /* a[0..n) = softmax(a) in place (n >= 1) */
    void (*softmax)(float *a, size_t n);
    /* softmax backward of one row: d[s] = scale a[s] (d[s] - sum_u a[u] d[u]) */
    void (*softmax_bwd)(float *d, const float *a, float scale, size_t n);
    /* AdamW on n contiguous parameters (nn optim.h's update) */
    void (*adamw)(float *w, float *m, float *v, const float *g, size_t n, const shelf__adamw_k *k);
} shelf__kern;

extern const shelf__kern shelf__kern_generic, shelf__kern_avx2, shelf__kern_avx512, shelf__kern_bf16_avx512;

/* The table for a level (the AVX512_BF16 level gets the AVX-512 code with
 * .bf16 set) and the table for the current level. Never NULL. */
const shelf__kern *shelf__kern_for(shelf_cpu_level level);
const shelf__kern *shelf__kern_get(void);

#endif
