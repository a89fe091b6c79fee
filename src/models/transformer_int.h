/* transformer_int.h: test hooks of the transformer model (transformer.c),
 * for tests/unit/test_transformer.c and the torch reference fixture test.
 *
 * Parameter tensors (shelf__transformer_params, by name; row-major float32):
 *   wte [I,C] item ids; wfe [NF,C] item features (with features); wpe [T,C]
 *   positions (0 = the oldest item in view); wtyp [n_types,C] (tf-types);
 *   wgap [32,C] time-gap buckets (tf-gaps); per layer l "h<l>.":
 *   ln1.w ln1.b [C], qkv.w [C,3C] (q, k, v column blocks), qkv.b [3C],
 *   proj.w [C,C], proj.b, ln2.w, ln2.b, fc1.w [C,F], fc1.b [F], fc2.w [F,C],
 *   fc2.b [C]; lnf.w, lnf.b [C]. Linear weights are [in,out] (torch's
 *   nn.Linear stores [out,in]). */
#ifndef SHELF_TRANSFORMER_INT_H
#define SHELF_TRANSFORMER_INT_H

#include "shelf/model.h"
#include "nn/optim.h"

/* The model's parameter store (params, grads, moments). */
shelf_params *shelf__transformer_params(shelf_model *m);

/* Makes m a model of the options' shape for n_items items and n_types event
 * types, with item features feat_off[n_items+1] / feat_col (ids < n_feats;
 * NULL/0: none, or tf-features off), initialised from the "seed" option, as
 * if fitted (so it scores). */
int shelf__transformer_setup(shelf_model *m, const shelf_opts *o, uint32_t n_items, uint32_t n_types,
                             const uint64_t *feat_off, const uint32_t *feat_col, uint32_t n_feats);

/* The mean loss of one batch: B rows of len events, items[r*len + j] (rows
 * may start with SHELF_NN_PAD padding), types and ts the same shape or NULL.
 * Every non-padding position j < len-1 predicts item j+1 (len - 1 <= T);
 * positions count from the row's first item, and the time gap of a row's
 * first item is bucket 0. With backward, the gradient accumulates into the
 * store's grads (zeroed first). rng NULL: dropout off; the negatives of the
 * sampled losses come from a fixed seed. logits (or NULL) receives [B*(len-1),
 * I] logits of every input position (zeros at padding). NAN on bad sizes or
 * out of memory. */
float shelf__transformer_batch_loss(shelf_model *m, const uint32_t *items, const uint16_t *types, const int64_t *ts,
                                    int B, int len, int backward, shelf_rng *rng, float *logits);

#endif
