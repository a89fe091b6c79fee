/* history_int.h: a query's history as distinct items with recency weights,
 * shared by the models that score by summing item rows (itemknn, ease). */
#ifndef SHELF_MODELS_HISTORY_INT_H
#define SHELF_MODELS_HISTORY_INT_H

#include "shelf/model.h"

typedef struct shelf__hist {
    uint32_t item;
    float w;
} shelf__hist;

/* The distinct items of q->items that are < n_items (others, such as items
 * added after the fit, are skipped), each with weight (1 - recency)^j where
 * j counts steps back from the newest position of the query (j = 0: the
 * newest); an item seen several times keeps its newest (largest) weight.
 * recency 0 gives every item weight 1. Sorted by item ascending. Returns
 * the count, or -1 on out of memory; *out is malloc'ed (NULL when the count
 * is 0), the caller frees it. Thread safe. */
long shelf__history_weighted(const shelf_query *q, uint32_t n_items, double recency, shelf__hist **out);

/* An explanation for a neighbourhood model: the history item (weighted by
 * recency as in scoring) that gives item the largest contribution w *
 * link(m, from, item), or none when no contribution is positive; its share
 * of the total (of the positive contributions only when positive_only: a
 * model with negative links); text "<relation> item N in your history", or
 * none_text. */
typedef double (*shelf__link_fn)(const shelf_model *m, uint32_t from, uint32_t item);
int shelf__history_explain(const shelf_model *m, const shelf_query *q, uint32_t item, double recency,
                           shelf__link_fn link, int positive_only, const char *relation, const char *none_text,
                           shelf_reason *r, shelf_err *err);

#endif
