/* attention.h (internal, not installed): causal multi-head self-attention
 * for the transformer profile model (llm.c style forward/backward pairs over a fused QKV input), with a
 * naive reference beside each fast kernel and a one-position incremental
 * forward over a key/value cache for serving. */
#ifndef SHELF_ATTENTION_H
#define SHELF_ATTENTION_H

#ifdef __cplusplus
extern "C" {
#endif

/* Shapes (B batch, T sequence length, C channels, NH heads, HS = C/NH):
 *   qkv  [B,T,3C]   per position: q (C floats), then k (C), then v (C); head h
 *                   of each is the slice [h*HS, (h+1)*HS)
 *   out  [B,T,C]    head h writes out[b,t,h*HS .. (h+1)*HS)
 *   att  [B,NH,T,T] softmax weights att[b,h,t,s] (query t, key s), saved for
 *                   backward
 *   pad_len [B]     or NULL (no padding): sequence b is LEFT-padded, positions
 *                   0 .. pad_len[b]-1 are padding (0 <= pad_len[b] <= T)
 *
 * Masks. Query t of sequence b attends to keys s with pad_len[b] <= s <= t
 * (causal, and padded keys get exactly zero weight). A padded query row
 * (t < pad_len[b]) has no key to attend to: its att row is all zeros and its
 * output is zeros (so it passes no gradient back either). Every other entry of
 * att is exactly zero outside the allowed keys. Scores are scaled by
 * 1/sqrt(HS).
 *
 * C must be a multiple of NH. None of these functions allocate; they are
 * thread safe on disjoint outputs. The fast paths run OpenMP over (b, head)
 * and call cblas_sgemm inside (the OpenMP build of OpenBLAS then runs each
 * product on the calling thread). */

/* out, att <- attention(qkv). Fast path: per (b, head), Q.K^T and att.V as
 * sgemm products straight on the strided qkv/out layout. */
void shelf_attention_forward(float *out, float *att, const float *qkv, const int *pad_len, int B, int T,
                             int C, int NH);
/* The naive loop reference of shelf_attention_forward (same outputs). */
void shelf_attention_forward_ref(float *out, float *att, const float *qkv, const int *pad_len, int B,
                                 int T, int C, int NH);

/* dqkv += d(loss)/d(qkv), given dout [B,T,C] and the qkv and att of the
 * forward pass. ACCUMULATES into dqkv [B,T,3C] (zero it first for a plain
 * gradient). scratch: B*NH*T*T floats of work space (contents on return
 * unspecified); may alias nothing else. */
void shelf_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                              const float *att, const int *pad_len, int B, int T, int C, int NH);
/* The naive loop reference of shelf_attention_backward (accumulates too; needs
 * no scratch). */
void shelf_attention_backward_ref(float *dqkv, const float *dout, const float *qkv, const float *att,
                                  const int *pad_len, int B, int T, int C, int NH);

/* Incremental forward of one position for inference, for one sequence and
 * one layer.
 *   out    [C]          output of position t (equals row t of the full
 *                       forward's out within float rounding)
 *   kcache [NH,Tmax,HS] keys of positions 0..t-1 on entry; position t's key
 *   vcache [NH,Tmax,HS] and value are appended (written at [h,t,:])
 *   qkv    [3C]         the fused QKV projection of position t
 * t: 0 <= t < Tmax; pad_len: the sequence's left padding (0: none); a padded
 * position (t < pad_len) outputs zeros but still fills its cache slot. Uses an
 * online (running-maximum) softmax, so it needs no work space. */
void shelf_attention_step_forward(float *out, float *kcache, float *vcache, const float *qkv, int t,
                                  int pad_len, int Tmax, int C, int NH);

#ifdef __cplusplus
}
#endif
#endif
