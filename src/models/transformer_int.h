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


/* ---- incremental scoring (serving's sessions: the model's session_* ops) ----
 * A per-shopper state caches every layer's keys and values, so that one
 * appended event costs one position's forward pass instead of the whole
 * sequence's. Scores equal shelf_model_score on the same history within
 * float rounding (tested: 1e-5). */
#define SHELF__TF_NO_TIME INT64_MIN /* push: the event's time is unknown */

typedef struct shelf__tf_state shelf__tf_state;

/* A state with an empty history for the fitted or loaded model m (which must
 * outlive it). NULL: m is not a fitted transformer, or out of memory. */
shelf__tf_state *shelf__tf_state_new(const shelf_model *m);
void shelf__tf_state_free(shelf__tf_state *st); /* accepts NULL */
/* Forgets the history. */
void shelf__tf_state_reset(shelf__tf_state *st);
/* Appends one event: item index, event type (SHELF_NONE: unknown) and time
 * (unix seconds or SHELF__TF_NO_TIME). The model reads a history through a
 * window of at most tf-maxlen events that slides by half of that, so most
 * pushes cost one position and one push in maxlen/2 recomputes the window.
 * SHELF_EINVAL for an item out of range. */
int shelf__tf_state_push(shelf__tf_state *st, uint32_t item, uint32_t type, int64_t ts);
/* scores[0..n_items) for the history so far (an empty history scores the
 * items by the model's profile of "no history"). */
int shelf__tf_state_scores(const shelf__tf_state *st, float *scores);
/* Events pushed since the last reset. */
uint64_t shelf__tf_state_len(const shelf__tf_state *st);

/* ---- profiles: the model's user vector; scores = item matrix x profile ----
 * Serving caches a profile per shopper (tf-dim floats) and only recomputes
 * it when the history changes. */
#define SHELF__TF_MAX_DIM 4096 /* the largest tf-dim */
/* tf-dim of a fitted transformer; 0 for any other model. */
uint32_t shelf__tf_dim(const shelf_model *m);
/* The profile of a history (q->items/types/ts/n; the user index is not
 * used) into h[0..tf-dim): one forward pass over the history's window. */
int shelf__tf_profile(const shelf_model *m, const shelf_query *q, float *h, shelf_err *err);
/* The profile of the state's history. */
void shelf__tf_state_profile(const shelf__tf_state *st, float *h);
/* scores[0..n_items) of a profile (equal to shelf_model_score of the same
 * history). Thread safe. */
int shelf__tf_profile_scores(const shelf_model *m, const float *h, float *scores);


#endif
