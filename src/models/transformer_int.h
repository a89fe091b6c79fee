/* transformer_int.h: test hooks of the transformer model (transformer.c),
 * for tests/unit/test_transformer.c. */
#ifndef SHELF_TRANSFORMER_INT_H
#define SHELF_TRANSFORMER_INT_H

#include "shelf/model.h"
#include "shelf/optim.h"

/* The model's parameter store (params, grads, moments). */
shelf_params *shelf__transformer_params(shelf_model *m);
/* The mean loss of one batch of sequences (each predicting its next item at
 * every position; rows seq[r*len .. (r+1)*len), len <= T+1), with the
 * gradient accumulated into the store's grads when backward. rng NULL:
 * dropout off. Returns NAN on out of memory. */
float shelf__transformer_batch_loss(shelf_model *m, const uint32_t *seq, int B, int len, int backward,
                                    shelf_rng *rng);

#endif
