/* rating.c: rating-prediction evaluation on held-out (user, item, rating)
 * triples: RMSE and MAE through the model's predict. */
#include "shelf/eval.h"

#include <stdlib.h>

int shelf_eval_ratings(const shelf_model *m, const uint32_t *users, const uint32_t *items, const float *truth,
                       size_t n, float *pred, double *rmse, double *mae, shelf_err *err)
{
    float *p = pred ? pred : malloc((n ? n : 1) * sizeof *p);
    if (!p) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t j = 0; j < n && !rc; j++) {
        shelf_err perr = {0};
        if ((rc = shelf_model_predict(m, users[j], items[j], &p[j], &perr)))
            shelf_err_set(err, rc, "rating %zu (user %u, item %u): %s", j, users[j], items[j], perr.msg);
    }
    if (!rc) shelf_metrics_rating(p, truth, n, rmse, mae);
    if (!pred) free(p);
    return rc;
}
