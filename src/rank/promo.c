/* promo.c: a scenario's promotions in the ranking room (scenario_int.h):
 * which apply to a request (the segment condition over user. and ctx., the
 * request's category), their budgets asked of the ledger (pacing_int.h),
 * and their place on the slate: a boost of their items' scores, or a share
 * of the slots at evenly spaced positions. Each item a promotion placed is
 * marked with it ("promotion:NAME" as its source). */
#include "rank/pacing_int.h"
#include "rank/rank_int.h"
#include "rank/scenario_int.h"
#include "shelf/eval.h"  /* shelf_topk */
#include "shelf/store.h" /* SHELF_NONE */

#include <math.h>
#include <stdlib.h>
#include <string.h>


static uint32_t take(const shelf__rank_env *env, const shelf__rank_req *rq, uint32_t p, uint32_t want)
{
    const shelf__scn_promo *pr = &rq->scenario->promo[p];
    if (!env->ledger || !want) return want;
    return shelf__ledger_take(env->ledger, rq->scenario->name, pr->name, pr->budget_per_day, want, rq->now);
}

static void refund(const shelf__rank_env *env, const shelf__rank_req *rq, uint32_t p, uint32_t n)
{
    if (env->ledger && n) shelf__ledger_refund(env->ledger, rq->scenario->name, rq->scenario->promo[p].name, n, rq->now);
}

/* the request's category: its category filter, else its context's category= */
static const char *request_category(const shelf__rank_req *rq)
{
    if (rq->category && rq->category[0]) return rq->category;
    for (size_t k = 0; k < rq->n_ctx_kv; k++)
        if (!strncmp(rq->ctx_kv[k], "category=", 9)) return rq->ctx_kv[k] + 9;
    return NULL;
}

static int applies(const shelf__rank_req *rq, const shelf__scn_promo *pr)
{
    if (!shelf__rank_condition(rq, pr->segment)) return 0;
    if (!pr->n_categories) return 1;
    const char *c = request_category(rq);
    for (size_t k = 0; c && k < pr->n_categories; k++)
        if (shelf__cat_under(c, pr->categories[k], strlen(pr->categories[k]))) return 1;
    return 0;
}

static float lowest(const float *scores, uint32_t N)
{
    float lo = INFINITY;
    for (uint32_t i = 0; i < N; i++)
        if (isfinite(scores[i]) && scores[i] < lo) lo = scores[i];
    return isfinite(lo) ? lo : 0;
}

uint32_t shelf__rank_promo_prepare(const shelf__rank_env *env, const shelf__rank_req *rq, shelf__rank_work *w,
                                   float *scores, uint32_t N, uint8_t *active)
{
    const shelf__scenario *s = rq->scenario;
    uint32_t n_active = 0;
    float lo = NAN; /* the lowest finite score, read once a promotion's item needs it */
    w->n_pitem = 0;
    for (uint32_t p = 0; p < s->n_promo; p++) {
        w->poff[p] = w->n_pitem;
        active[p] = rq->mode != SHELF__RANK_POPULAR && applies(rq, &s->promo[p]);
        if (!active[p] || !env->item_index) continue;
        n_active++;
        for (size_t j = 0; j < s->promo[p].n_items; j++) {
            uint32_t i = env->item_index(env->ctx, s->promo[p].items[j]);
            if (i >= N || shelf__rank_work_pitems(w, w->n_pitem + 1)) continue;
            w->pitem[w->n_pitem++] = i;
            if (isfinite(scores[i])) continue;
            if (isnan(lo)) lo = lowest(scores, N);
            scores[i] = lo; /* the filters judge it */
        }
    }
    w->poff[s->n_promo] = w->n_pitem;
    return n_active;
}

/* promotion p's items with finite scores, the best first, at most cap, into out */
static uint32_t best_items(const shelf__rank_work *w, uint32_t p, const float *scores, uint32_t cap, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t j = w->poff[p]; j < w->poff[p + 1]; j++) {
        uint32_t i = w->pitem[j], dup = 0;
        for (uint32_t k = 0; k < n; k++) dup |= out[k] == i;
        if (!isfinite(scores[i]) || dup) continue;
        uint32_t at = n < cap ? n++ : cap; /* insertion, the best first */
        while (at > 0 && scores[out[at - 1]] < scores[i]) {
            if (at < cap) out[at] = out[at - 1];
            at--;
        }
        if (at < cap) out[at] = i;
    }
    return n;
}

uint32_t shelf__rank_promo_slate(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                                 shelf__rank_work *w, float *scores, uint32_t N, const uint8_t *active)
{
    const shelf__scenario *s = rq->scenario;
    const uint32_t n = rq->n;
    uint32_t *tmp = malloc((size_t)(n ? n : 1) * 3 * sizeof *tmp), *shared = tmp + n, *boosted = tmp + 2 * n;
    int16_t *sp = malloc((size_t)(n ? n : 1) * 2 * sizeof *sp), *bp = sp + n;
    float *shared_score = malloc((size_t)(n ? n : 1) * sizeof *shared_score);
    uint32_t granted[SHELF__SCN_PROMOS] = {0}, n_sh = 0, n_bo = 0;
    if (!tmp || !sp || !shared_score) {
        free(tmp);
        free(sp);
        free(shared_score);
        return 0;
    }
    for (uint32_t p = 0; p < s->n_promo; p++) {
        if (!active[p]) continue;
        const shelf__scn_promo *pr = &s->promo[p];
        uint32_t slots = pr->share > 0 ? (uint32_t)lroundf(pr->share * (float)n) : n;
        if (pr->share > 0 && slots < 1) slots = 1;
        if (pr->share > 0 && n_sh + slots > n) slots = n - n_sh;
        uint32_t m = best_items(w, p, scores, slots, tmp);
        uint32_t g = granted[p] = take(env, rq, p, m);
        for (uint32_t k = 0; k < g; k++) {
            if (pr->boost > 0 && n_bo < n) { /* boosted, then chosen with the rest */
                scores[tmp[k]] *= pr->boost;
                boosted[n_bo] = tmp[k], bp[n_bo++] = (int16_t)p;
            } else if (pr->share > 0) { /* its slots, out of the others' reach */
                shared_score[n_sh] = scores[tmp[k]];
                shared[n_sh] = tmp[k], sp[n_sh++] = (int16_t)p;
                scores[tmp[k]] = -INFINITY;
            }
        }
    }
    /* the other slots, then the shared ones at evenly spaced positions */
    uint32_t pool[SHELF__SCN_POOL], org[1024];
    uint32_t m = shelf__rank_scenario_pool(scores, n, pool); /* as a slate without promotions chooses */
    uint32_t want = n - n_sh < 1024 ? n - n_sh : 1024;
    uint32_t n_org = shelf__rank_scenario_select(rq, cat, scores, pool, m, 0, want, org);
    uint32_t len = n_org + n_sh, a = 0, b = 0;
    for (uint32_t k = 0; k < len; k++) {
        int promo_here = b < n_sh && (a == n_org || k >= (uint32_t)(((double)b + 0.5) * len / n_sh));
        if (promo_here) {
            w->top[k] = shared[b];
            w->tpromo[k] = sp[b];
            scores[shared[b]] = shared_score[b];
            b++;
        } else {
            w->top[k] = org[a++];
            w->tpromo[k] = -1;
            for (uint32_t j = 0; j < n_bo; j++)
                if (boosted[j] == w->top[k]) w->tpromo[k] = bp[j];
        }
    }
    /* what was granted and not placed goes back to the budget */
    uint32_t placed[SHELF__SCN_PROMOS] = {0};
    for (uint32_t k = 0; k < len; k++)
        if (w->tpromo[k] >= 0) placed[w->tpromo[k]]++;
    for (uint32_t p = 0; p < s->n_promo; p++)
        if (granted[p] > placed[p]) refund(env, rq, p, granted[p] - placed[p]);
    free(tmp);
    free(sp);
    free(shared_score);
    return len;
}
