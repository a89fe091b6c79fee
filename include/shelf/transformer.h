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
shelf_tf_state *shelf_tf_state_new(const shelf_model *m);
void shelf_tf_state_free(shelf_tf_state *st); /* accepts NULL */
/* Forgets the history. */
void shelf_tf_state_reset(shelf_tf_state *st);
/* Appends one event: item index, event type (SHELF_NONE: unknown) and time
 * (unix seconds or SHELF_TF_NO_TIME). The model reads a history through a
 * window of at most tf-maxlen events that slides by half of that, so most
 * pushes cost one position and one push in maxlen/2 recomputes the window.
 * SHELF_EINVAL for an item out of range. */
int shelf_tf_state_push(shelf_tf_state *st, uint32_t item, uint32_t type, int64_t ts);
/* scores[0..n_items) for the history so far (an empty history scores the
 * items by the model's profile of "no history"). */
int shelf_tf_state_scores(const shelf_tf_state *st, float *scores);
/* Events pushed since the last reset. */
uint64_t shelf_tf_state_len(const shelf_tf_state *st);

#ifdef __cplusplus
}
#endif
#endif
