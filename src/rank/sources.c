/* sources.c: a scenario's candidate sources (scenario_int.h) and their
 * fusion into one score per item. Each source scores the items it proposes
 * (-inf: not proposed): a trained model over the shopper's history, the
 * items that go with the request's items, trending or all-time popularity,
 * a fixed list, the promotions' items, the items whose content is like
 * the shopper's history. Fusion:
 *   weighted  sum over sources of weight x (score - min) / (max - min),
 *             each source min-max scaled over the items it proposes (so a
 *             weight means the same for logits, counts and ranks)
 *   rrf       sum of weight / (rrf_k + rank) over the sources' best
 *             SHELF__RRF_DEPTH items, plus 1e-6 x the weighted sum so that
 *             items past every source's depth keep an order. */
#include "models/coldfill_int.h"
#include "rank/rank_int.h"
#include "rank/scenario_int.h"
#include "shelf/eval.h"  /* shelf_topk */
#include "shelf/store.h" /* SHELF_NONE */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int shelf__scenario_multi(const shelf__scenario *s, const char *deployed)
{
    if (!s || s->n_src == 0) return 0;
    if (s->n_src > 1 || s->src[0].type != SHELF__SRC_MODEL) return 1;
    return s->src[0].model[0] && (!deployed || strcmp(s->src[0].model, deployed));
}

static void fill(float *v, uint32_t N, float x)
{
    for (uint32_t i = 0; i < N; i++) v[i] = x;
}

/* items of ids (external, in order) scored n, n-1, ... 1; the rest -inf */
static void ids_scores(const shelf__rank_env *env, char *const *ids, size_t n, float *out, uint32_t N)
{
    fill(out, N, -INFINITY);
    for (size_t r = 0; r < n && env->item_index; r++) {
        uint32_t i = env->item_index(env->ctx, ids[r]);
        if (i < N && !isfinite(out[i])) out[i] = (float)(n - r);
    }
}

/* the items that go with the request's items: the anchor (similar mode) or
 * the last three items of the history, as a session of views */
static int similar_source(const shelf__rank_env *env, const shelf__rank_req *rq, shelf__rank_work *w, float *out,
                          uint32_t N, shelf_err *err)
{
    uint32_t set[3];
    uint16_t view[3] = {0};
    uint32_t n = 0;
    if (rq->mode == SHELF__RANK_SIMILAR) set[n++] = rq->anchor;
    for (size_t k = rq->n_hist; k > 0 && n < 3 && rq->mode != SHELF__RANK_SIMILAR; k--) set[n++] = rq->items[k - 1];
    fill(out, N, -INFINITY);
    if (!n || !env->model) return 0;
    int rc = shelf__rank_model_scores(env, env->model, w, out, N, SHELF_NONE, set, view, NULL, n, rq->now, err);
    if (rc == 1) fill(out, N, -INFINITY), rc = 0; /* the model knows none of them */
    for (uint32_t k = 0; k < n && !rc; k++)
        if (set[k] < N) out[set[k]] = -INFINITY;
    return rc;
}

/* the items of the scenario's kinds (all without kinds) by the cosine of
 * their content with the profile of the shopper's last 100 items
 * (coldfill_int.h: category, brand, attributes, title and text words) */
static int content_source(const shelf__rank_env *env, const shelf__rank_req *rq, float *out, uint32_t N, shelf_err *err)
{
    fill(out, N, -INFINITY);
    if (!rq->n_hist || !env->catalogue_read) return 0; /* shelf eval: no content at hand */
    size_t nh = rq->n_hist < 100 ? rq->n_hist : 100;
    const uint32_t *hist = rq->items + (rq->n_hist - nh);
    shelf__catalogue cat;
    env->catalogue_read(env->ctx, &cat);
    uint32_t n = cat.n_items < N ? cat.n_items : N, m = 0;
    uint32_t *cand = cat.cf ? malloc((size_t)(n ? n : 1) * sizeof *cand) : NULL;
    float *sim = cand ? malloc((size_t)(n ? n : 1) * sizeof *sim) : NULL;
    int rc = cat.cf && !sim ? SHELF_ENOMEM : 0;
    for (uint32_t i = 0; sim && i < n; i++)
        if (cat.ok[i] && shelf__scenario_kind_ok(rq->scenario, &cat, i)) cand[m++] = i;
    if (sim) rc = shelf__coldfill_profile_scores(cat.cf, hist, nh, cand, m, sim);
    env->catalogue_done(env->ctx);
    for (uint32_t k = 0; !rc && sim && k < m; k++)
        if (sim[k] > 0) out[cand[k]] = sim[k];
    for (size_t h = 0; h < nh; h++)
        if (hist[h] < N) out[hist[h]] = -INFINITY; /* what the shopper has seen is not news */
    free(cand);
    free(sim);
    return rc ? shelf_err_set(err, rc, "out of memory (content)") : 0;
}

static int source_scores(const shelf__rank_env *env, const shelf__rank_req *rq, shelf__rank_work *w, uint32_t k,
                         const float *primary, float *out, uint32_t N, shelf_err *err)
{
    const shelf__scenario *s = rq->scenario;
    const shelf__scn_source *src = &s->src[k];
    switch (src->type) {
    case SHELF__SRC_MODEL: {
        const shelf_model *m = NULL;
        if (!src->model[0] || (env->model && !strcmp(src->model, shelf_model_name(env->model)))) {
            memcpy(out, primary, (size_t)N * sizeof *out);
            return 0;
        }
        for (uint32_t j = 0; j < env->n_peers && !m; j++)
            if (!strcmp(shelf_model_name(env->peers[j]), src->model)) m = env->peers[j];
        fill(out, N, -INFINITY); /* a model the engine has not loaded proposes nothing */
        if (!m || (rq->mode == SHELF__RANK_SIMILAR)) {
            if (m) { /* the items that go with the anchor, by this model */
                uint16_t view = 0;
                int rc = shelf__rank_model_scores(env, m, w, out, N, SHELF_NONE, &rq->anchor, &view, NULL, 1, rq->now, err);
                if (rc == 1) fill(out, N, -INFINITY), rc = 0;
                if (rq->anchor < N) out[rq->anchor] = -INFINITY;
                return rc;
            }
            return 0;
        }
        int rc = shelf__rank_model_scores(env, m, w, out, N, rq->user, rq->items, rq->types, rq->ts, rq->n_hist, rq->now, err);
        if (rc == 1) fill(out, N, -INFINITY), rc = 0;
        return rc;
    }
    case SHELF__SRC_SIMILAR: return similar_source(env, rq, w, out, N, err);
    case SHELF__SRC_TRENDING: env->pop_scores(env->ctx, out, N); return 0;
    case SHELF__SRC_POPULAR:
        if (env->popular_scores) env->popular_scores(env->ctx, out, N);
        else env->pop_scores(env->ctx, out, N);
        return 0;
    case SHELF__SRC_LIST: ids_scores(env, src->items, src->n_items, out, N); return 0;
    case SHELF__SRC_CONTENT: return content_source(env, rq, out, N, err);
    case SHELF__SRC_CAMPAIGN: { /* the promotions' items, the first promotion's first */
        size_t total = 0, r = 0;
        for (uint32_t p = 0; p < s->n_promo; p++) total += s->promo[p].n_items;
        fill(out, N, -INFINITY);
        for (uint32_t p = 0; p < s->n_promo && env->item_index; p++)
            for (size_t j = 0; j < s->promo[p].n_items; j++, r++) {
                uint32_t i = env->item_index(env->ctx, s->promo[p].items[j]);
                if (i < N && !isfinite(out[i])) out[i] = (float)(total - r);
            }
        return 0;
    }
    default: fill(out, N, -INFINITY); return 0;
    }
}

/* min and 1 / (max - min) of v's finite values (-inf: not proposed); 0 when it has none */
static int span_of(const float *v, uint32_t N, float *lo, float *inv)
{
    float a = INFINITY, b = -INFINITY;
    SHELF__SIMD(omp simd reduction(min : a) reduction(max : b))
    for (uint32_t i = 0; i < N; i++) {
        float x = v[i], y = isgreater(x, -INFINITY) ? x : INFINITY;
        a = y < a ? y : a;
        b = x > b ? x : b;
    }
    if (!isfinite(a)) return 0;
    *lo = a;
    *inv = b > a ? 1.0f / (b - a) : 0.0f;
    return 1;
}

void shelf__rank_fuse(const shelf__scenario *s, const float *src, uint32_t N, float *out, uint32_t *topbuf,
                      float *lo, float *inv)
{
    fill(out, N, -INFINITY);
    float wsum = 0;
    for (uint32_t k = 0; k < s->n_src; k++) wsum += s->src[k].weight;
    for (uint32_t k = 0; k < s->n_src; k++) {
        const float *v = src + (size_t)k * N;
        float wt = s->src[k].weight / (wsum > 0 ? wsum : 1);
        if (!span_of(v, N, &lo[k], &inv[k])) {
            lo[k] = INFINITY;
            continue;
        }
        /* x = wt (v - lo) / span as mul = wt / span, add = -lo mul (all equal: wt) */
        const float mul = inv[k] > 0 ? wt * inv[k] : 0.0f, add = inv[k] > 0 ? -lo[k] * mul : wt;
        float *restrict o = out;
        const float *restrict in = v;
        SHELF__SIMD(omp simd)
        for (uint32_t i = 0; i < N; i++) {
            float x = in[i], cur = o[i]; /* isgreater: a quiet compare, which may run on every lane */
            int has = isgreater(x, -INFINITY), had = isgreater(cur, -INFINITY);
            float part = (has ? x : 0.0f) * mul + (has ? add : 0.0f);
            float sum = (had ? cur : 0.0f) + part;
            o[i] = has | had ? sum : -INFINITY;
        }
    }
    if (s->fusion != SHELF__FUSE_RRF) return;
    for (uint32_t i = 0; i < N; i++)
        if (isfinite(out[i])) out[i] *= 1e-6f;
    for (uint32_t k = 0; k < s->n_src; k++) {
        uint32_t m = shelf_topk(src + (size_t)k * N, N, NULL, SHELF__RRF_DEPTH, topbuf);
        for (uint32_t r = 0; r < m; r++)
            if (isfinite(src[(size_t)k * N + topbuf[r]])) out[topbuf[r]] += s->src[k].weight / (s->rrf_k + (float)(r + 1));
    }
}

int shelf__rank_sources(const shelf__rank_env *env, shelf__rank_req *rq, shelf__rank_work *w, float *scores,
                        uint32_t N, shelf_err *err)
{
    const shelf__scenario *s = rq->scenario;
    if (shelf__rank_work_sources(w, (size_t)s->n_src * N)) return shelf_err_set(err, SHELF_ENOMEM, "out of memory (sources)");
    for (uint32_t k = 0; k < s->n_src; k++) {
        float *row = w->src + (size_t)k * N;
        int rc = source_scores(env, rq, w, k, scores, row, N, err);
        if (rc) return rc;
        for (size_t h = 0; h < rq->n_hist && rq->sources_skip_history; h++)
            if (rq->items[h] < N) row[rq->items[h]] = -INFINITY;
    }
    w->src_n = s->n_src;
    w->src_N = N;
    shelf__rank_fuse(s, w->src, N, scores, w->rtop, w->src_lo, w->src_inv);
    return 0;
}

/* ---- what each source says of one item (explanations) ------------------------------------ */

uint32_t shelf__rank_source_rank(const float *v, uint32_t N, uint32_t item)
{
    if (item >= N || !isfinite(v[item])) return 0;
    uint32_t r = 1;
    for (uint32_t i = 0; i < N; i++) r += v[i] > v[item];
    return r;
}

static const char *const type_names[SHELF__SRC_N] = {"model", "similar",  "trending", "popular",
                                                      "list",  "campaign", "content"};

const char *shelf__source_label(const shelf__scn_source *src, char *buf, size_t cap)
{
    if (src->type == SHELF__SRC_MODEL && src->model[0]) snprintf(buf, cap, "model:%s", src->model);
    else snprintf(buf, cap, "%s", type_names[src->type]);
    return buf;
}

uint32_t shelf__rank_item_source(const shelf__scenario *s, const float *src, uint32_t N, const float *lo,
                                 const float *inv, uint32_t item)
{
    uint32_t best = SHELF_NONE;
    float best_v = -INFINITY, wsum = 0;
    for (uint32_t k = 0; k < s->n_src; k++) wsum += s->src[k].weight;
    for (uint32_t k = 0; k < s->n_src && item < N; k++) {
        const float *v = src + (size_t)k * N;
        if (!isfinite(v[item]) || !isfinite(lo[k])) continue;
        float x = s->src[k].weight / (wsum > 0 ? wsum : 1) * (inv[k] > 0 ? (v[item] - lo[k]) * inv[k] : 1.0f);
        if (x > best_v) best_v = x, best = k;
    }
    return best;
}
