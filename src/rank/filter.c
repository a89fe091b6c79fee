/* filter.c: what may not be shown scores -inf: items outside the requested
 * kind or category subtree, unavailable or retired ones, items outside an
 * explicit candidate list, the request's exclusions, and what the shopper
 * has seen by the exclude-seen rules (seen.c). The items the model did not
 * learn first take their content neighbours' scores (coldfill.h). */
#include "rank/rank_int.h"
#include "shelf/store.h" /* SHELF_NONE */

#include <math.h>
#include <stdlib.h>
#include <string.h>

int shelf__cat_under(const char *cat, const char *c, size_t cl)
{
    if (strncmp(cat, c, cl)) return 0;
    const char *r = cat + cl;
    while (*r == ' ') r++;
    return cat[cl] == '\0' || *r == '>' || *r == '/' || *r == '|';
}

static void catalogue_filter(const shelf__catalogue *c, float *scores, uint32_t N, const char *kind,
                             const char *category)
{
    uint32_t kid = SHELF_NONE;
    int want_kind = kind && kind[0];
    if (want_kind)
        for (uint32_t k = 0; k < c->n_kinds; k++)
            if (!strcmp(c->kinds[k], kind)) kid = k;
    uint8_t *cat_ok = NULL;
    int want_cat = category && category[0];
    if (want_cat && (cat_ok = calloc(c->n_cats + 1, 1))) {
        size_t cl = strlen(category);
        for (uint32_t k = 0; k < c->n_cats; k++) cat_ok[k] = (uint8_t)shelf__cat_under(c->cats[k], category, cl);
    }
    uint32_t m = N < c->n_items ? N : c->n_items, from = 0;
    if (!want_kind && !want_cat) { /* availability alone (the common case): vectorised */
        float *restrict sc = scores;
        const uint8_t *restrict ok = c->ok;
        SHELF__SIMD(omp simd)
        for (uint32_t i = 0; i < m; i++) sc[i] = ok[i] ? sc[i] : -INFINITY;
        from = m;
    }
    for (uint32_t i = from; i < m; i++) {
        int ok = c->ok[i];
        if (ok && want_kind) ok = c->kind[i] == kid;
        if (ok && want_cat) ok = cat_ok && c->cat[i] != SHELF_NONE && cat_ok[c->cat[i]];
        if (!ok) scores[i] = -INFINITY;
    }
    for (uint32_t i = m; i < N; i++) scores[i] = -INFINITY;
    free(cat_ok);
}

/* only the listed items keep their scores */
static void only_candidates(float *scores, uint32_t N, const uint32_t *cand, size_t n)
{
    float *keep = malloc((n ? n : 1) * sizeof *keep);
    if (!keep) { /* cannot tell them apart: show nothing rather than anything */
        for (uint32_t i = 0; i < N; i++) scores[i] = -INFINITY;
        return;
    }
    for (size_t k = 0; k < n; k++) keep[k] = cand[k] < N ? scores[cand[k]] : -INFINITY;
    for (uint32_t i = 0; i < N; i++) scores[i] = -INFINITY;
    for (size_t k = 0; k < n; k++)
        if (cand[k] < N) scores[cand[k]] = keep[k];
    free(keep);
}

void shelf__rank_filter(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                        float *scores, uint32_t N, int cold)
{
    if (cold && cat->cf) shelf_coldfill_apply(cat->cf, scores, N);
    catalogue_filter(cat, scores, N, rq->kind, rq->category);
    if (rq->candidates) only_candidates(scores, N, rq->candidates, rq->n_candidates);
    for (size_t k = 0; k < rq->n_exclude; k++)
        if (rq->exclude[k] < N) scores[rq->exclude[k]] = -INFINITY;
    if (rq->mode == SHELF__RANK_SHOPPER)
        shelf__seen_filter(scores, N, rq->seen ? rq->seen : env->seen, rq->items, rq->types, rq->ts, rq->n_hist,
                           rq->now);
}
