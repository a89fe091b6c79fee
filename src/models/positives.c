/* positives.c: the positive (user, item) pairs of a training snapshot, the
 * nonzeros of its user->item matrix with a value > 0 (a dislike is no
 * positive), for the pairwise models (bpr, hybrid). Models room. */
#include "models/models_int.h"

uint64_t shelf__positives_count(const shelf_snapshot *s)
{
    uint64_t n = 0;
    for (uint64_t e = 0; e < s->n_nnz; e++) n += s->ui_val[e] > 0;
    return n;
}

void shelf__positives_fill(const shelf_snapshot *s, uint64_t *off, uint32_t *col, uint32_t *pu)
{
    uint64_t k = 0;
    for (uint32_t u = 0; u < s->n_users; u++) {
        off[u] = k;
        for (uint64_t e = s->ui_off[u]; e < s->ui_off[u + 1]; e++) {
            if (!(s->ui_val[e] > 0)) continue;
            col[k] = s->ui_col[e];
            pu[k++] = u;
        }
    }
    off[s->n_users] = k;
}
