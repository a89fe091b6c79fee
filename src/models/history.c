/* history.c: a query's history as distinct items with recency weights
 * (history_int.h). Models room. */
#include "models/history_int.h"
#include "models/models_int.h"

#include <stdio.h>

#include <stdlib.h>

static int by_item_heaviest(const void *a, const void *b)
{
    const shelf__hist *x = a, *y = b;
    if (x->item != y->item) return (x->item > y->item) - (x->item < y->item);
    return (x->w < y->w) - (x->w > y->w);
}

long shelf__history_weighted(const shelf_query *q, uint32_t n_items, double recency, shelf__hist **out)
{
    *out = NULL;
    if (q->n == 0) return 0;
    shelf__hist *h = malloc(q->n * sizeof *h);
    if (!h) return -1;
    size_t n = 0;
    double w = 1.0, f = 1.0 - recency;
    for (uint32_t p = q->n; p-- > 0;) {
        if (q->items[p] < n_items) h[n++] = (shelf__hist){q->items[p], (float)w};
        w *= f;
    }
    qsort(h, n, sizeof *h, by_item_heaviest);
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        if (d == 0 || h[d - 1].item != h[i].item) h[d++] = h[i];
    if (d == 0) {
        free(h);
        h = NULL;
    }
    *out = h;
    return (long)d;
}

int shelf__history_explain(const shelf_model *m, const shelf_query *q, uint32_t item, double recency,
                           shelf__link_fn link, int positive_only, const char *relation, const char *none_text,
                           shelf_reason *r, shelf_err *err)
{
    shelf__hist *h;
    long n = shelf__history_weighted(q, m->n_items, recency, &h);
    if (n < 0) return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory (history of %u)", q->n);
    uint32_t best = SHELF_NONE;
    double best_c = 0, total = 0;
    for (long t = 0; t < n; t++) {
        double v = (double)h[t].w * link(m, h[t].item, item);
        if (!positive_only || v > 0) total += v;
        if (v > best_c) {
            best_c = v;
            best = h[t].item;
        }
    }
    free(h);
    r->item = best;
    r->weight = total > 0 ? (float)(best_c / total) : 0.0f;
    if (best == SHELF_NONE) snprintf(r->text, sizeof r->text, "%s", none_text);
    else snprintf(r->text, sizeof r->text, "%s item %u in your history", relation, best);
    return 0;
}
