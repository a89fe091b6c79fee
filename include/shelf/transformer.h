/* transformer.h: incremental scoring with the transformer profile model
 * ("transformer" in the model registry): a per-shopper state that caches
 * every layer's keys and values, so that one appended event costs one
 * position's forward pass instead of the whole sequence's. Scores equal
 * shelf_model_score on the same history within float rounding (tested:
 * 1e-5). Used by serving for live profiles. */
#ifndef SHELF_TRANSFORMER_H
#define SHELF_TRANSFORMER_H

#include "shelf/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHELF_TF_NO_TIME INT64_MIN /* push: the event's time is unknown */

typedef struct shelf_tf_state shelf_tf_state;

/* A state with an empty history for the fitted or loaded model m (which must
 * outlive it). NULL: m is not a fitted transformer, or out of memory. */
SHELF_API shelf_tf_state *shelf_tf_state_new(const shelf_model *m);
SHELF_API void shelf_tf_state_free(shelf_tf_state *st); /* accepts NULL */
/* Forgets the history. */
SHELF_API void shelf_tf_state_reset(shelf_tf_state *st);
/* Appends one event: item index, event type (SHELF_NONE: unknown) and time
 * (unix seconds or SHELF_TF_NO_TIME). The model reads a history through a
 * window of at most tf-maxlen events that slides by half of that, so most
 * pushes cost one position and one push in maxlen/2 recomputes the window.
 * SHELF_EINVAL for an item out of range. */
SHELF_API int shelf_tf_state_push(shelf_tf_state *st, uint32_t item, uint32_t type, int64_t ts);
/* scores[0..n_items) for the history so far (an empty history scores the
 * items by the model's profile of "no history"). */
SHELF_API int shelf_tf_state_scores(const shelf_tf_state *st, float *scores);
/* Events pushed since the last reset. */
SHELF_API uint64_t shelf_tf_state_len(const shelf_tf_state *st);

/* ---- profiles: the model's user vector; scores = item matrix x profile ----
 * Serving caches a profile per shopper (tf-dim floats) and only recomputes
 * it when the history changes. */
#define SHELF_TF_MAX_DIM 4096 /* the largest tf-dim */
/* tf-dim of a fitted transformer; 0 for any other model. */
SHELF_API uint32_t shelf_tf_dim(const shelf_model *m);
/* The profile of a history (q->items/types/ts/n; the user index is not
 * used) into h[0..tf-dim): one forward pass over the history's window. */
SHELF_API int shelf_tf_profile(const shelf_model *m, const shelf_query *q, float *h);
/* The profile of the state's history. */
SHELF_API void shelf_tf_state_profile(const shelf_tf_state *st, float *h);
/* scores[0..n_items) of a profile (equal to shelf_model_score of the same
 * history). Thread safe. */
SHELF_API int shelf_tf_profile_scores(const shelf_model *m, const float *h, float *scores);

#ifdef __cplusplus
}
#endif
#endif
