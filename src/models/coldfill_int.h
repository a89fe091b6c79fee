/* coldfill_int.h: the content side of the cold-item neighbours (coldfill.h)
 * for the ranking room: a shopper's content profile. */
#ifndef SHELF_MODELS_COLDFILL_INT_H
#define SHELF_MODELS_COLDFILL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "shelf/coldfill.h"

/* out[c] for each candidate cand[c]: the cosine between its content
 * features and the profile of the items hist[0..n_hist) (the features of
 * all of them, each weighted by its IDF times how many of them have it;
 * IDF from the items the model learned, a feature none of them has counts
 * as the rarest), 0 without common features. 0 or SHELF_ENOMEM. */
int shelf__coldfill_profile_scores(const shelf_coldfill *cf, const uint32_t *hist, size_t n_hist, const uint32_t *cand,
                                   size_t n_cand, float *out);

#endif
