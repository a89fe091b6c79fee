/* explain.c: why an item is on the slate. The model's own reason when it
 * has one ("because you bought X": the history item behind the score),
 * else the slate's source ("popular with shoppers like you"). */
#include "rank/rank_int.h"
#include "shelf/store.h" /* SHELF_NONE */

#include <stdio.h>
#include <string.h>

static const char *verb(const char *type)
{
    static const char *const v[][2] = {{"view", "viewed"},     {"click", "clicked"},      {"cart", "put in your cart"},
                                       {"purchase", "bought"}, {"rating", "rated"},       {"like", "liked"},
                                       {"share", "shared"},    {"impression", "saw"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!strcmp(v[i][0], type)) return v[i][1];
    return "looked at";
}

/* the model's reason (history item, weight) for item, or SHELF_NONE */
static uint32_t model_reason(const shelf__rank_env *env, const shelf__rank_req *rq, uint32_t item, float *weight)
{
    const shelf_model *m = env->model;
    if (!m || !(env->caps & SHELF_CAP_EXPLAIN) || item >= m->n_items) return SHELF_NONE;
    /* the model explains with the history items it knows: up to its last 1024 */
    uint32_t hist[1024];
    uint16_t ty[1024];
    uint32_t n = 0;
    for (size_t k = rq->n_hist; k-- > 0 && n < 1024;)
        if (rq->items[k] < m->n_items) n++;
    uint32_t j = n;
    for (size_t k = rq->n_hist; k-- > 0 && j > 0;)
        if (rq->items[k] < m->n_items) {
            j--;
            hist[j] = rq->items[k];
            ty[j] = rq->types ? rq->types[k] : 0;
        }
    shelf_query q = {.user = rq->user != SHELF_NONE && rq->user < m->n_users ? rq->user : SHELF_NONE,
                     .items = hist, .types = ty, .n = n};
    shelf_reason why = {.item = SHELF_NONE};
    if (shelf_model_explain(m, &q, item, &why, NULL)) return SHELF_NONE;
    *weight = why.weight;
    return why.item;
}

void shelf__rank_explain(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                         const char *source, shelf_slate_item *it)
{
    float weight = 0;
    (void)source;
    uint32_t why = !strcmp(it->source, "model") ? model_reason(env, rq, it->item, &weight) : SHELF_NONE;
    if (why != SHELF_NONE && why < cat->n_items && cat->ext[why]) {
        const char *tn = "view";
        for (size_t h = rq->n_hist; h-- > 0;)
            if (rq->items[h] == why) {
                if (rq->types && rq->types[h] < env->n_types) tn = env->type_names[rq->types[h]];
                break;
            }
        it->reason_item = why;
        it->reason_weight = weight;
        snprintf(it->reason, sizeof it->reason, "because you %s %s", verb(tn), cat->ext[why]);
        return;
    }
    it->reason_item = SHELF_NONE;
    it->reason_weight = 0;
    snprintf(it->reason, sizeof it->reason, "%s",
             !strcmp(it->source, "context")   ? "popular with shoppers like you"
             : !strcmp(it->source, "popular") ? "popular with shoppers"
             : !env->model                    ? "popular now"
             : rq->n_hist                     ? "recommended by the model for your history"
                                              : "popular with shoppers");
}
