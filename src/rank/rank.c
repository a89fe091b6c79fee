/* rank.c: shelf__rank, the ranking room's one call: candidates, filters,
 * the rerank hooks, the top n (topped up from the fallback chain when the
 * filters leave fewer), explanations; and the room's per-thread work space. */
#include "rank/pacing_int.h"
#include "rank/rank_int.h"
#include "rank/scenario_int.h"
#include "shelf/eval.h"  /* shelf_topk */
#include "shelf/store.h" /* SHELF_NONE */

#include <math.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- per-thread work space ------------------------------------------------------------ */

static pthread_key_t work_key;
static pthread_once_t work_once = PTHREAD_ONCE_INIT;

static void work_free(void *p)
{
    shelf__rank_work *w = p;
    if (!w) return;
    free(w->scores);
    free(w->pop);
    free(w->kitem);
    free(w->ktype);
    free(w->kts);
    free(w->top);
    free(w->src);
    free(w->rtop);
    free(w->pitem);
    free(w->cand);
    free(w->skey);
    free(w->sts);
    free(w->tpromo);
    free(w->hitem);
    free(w->htype);
    free(w->hts);
    free(w);
}

static void work_key_make(void) { pthread_key_create(&work_key, work_free); }

shelf__rank_work *shelf__rank_work_get(size_t n_scores, size_t k)
{
    pthread_once(&work_once, work_key_make);
    shelf__rank_work *w = pthread_getspecific(work_key);
    if (!w) {
        if (!(w = calloc(1, sizeof *w))) return NULL;
        if (RAND_bytes((unsigned char *)w->rng, sizeof w->rng) != 1) {
            w->rng[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)w;
            w->rng[1] = 0x9e3779b97f4a7c15ull;
        }
        pthread_setspecific(work_key, w);
    }
    if (n_scores > w->scap) {
        float *s = realloc(w->scores, n_scores * sizeof *s), *p = s ? realloc(w->pop, n_scores * sizeof *p) : NULL;
        if (s) w->scores = s;
        if (!p) return NULL;
        w->pop = p;
        w->scap = n_scores;
    }
    if (k > w->tcap) {
        uint32_t *t = realloc(w->top, k * sizeof *t);
        if (t) w->top = t;
        int16_t *tp = realloc(w->tpromo, k * sizeof *tp);
        if (tp) w->tpromo = tp;
        if (!t || !tp) return NULL;
        w->tcap = k;
    }
    return w;
}

int shelf__rank_work_sources(shelf__rank_work *w, size_t n)
{
    if (!w->rtop && !(w->rtop = malloc(SHELF__RRF_DEPTH * sizeof *w->rtop))) return SHELF_ENOMEM;
    if (n <= w->src_cap) return 0;
    float *p = realloc(w->src, n * sizeof *p);
    if (!p) return SHELF_ENOMEM;
    w->src = p;
    w->src_cap = n;
    return 0;
}

int shelf__rank_work_pitems(shelf__rank_work *w, size_t n)
{
    if (n <= w->pcap) return 0;
    size_t cap = n < 64 ? 64 : 2 * n;
    uint32_t *p = realloc(w->pitem, cap * sizeof *p);
    if (!p) return SHELF_ENOMEM;
    w->pitem = p;
    w->pcap = cap;
    return 0;
}

/* xorshift128+ for rec ids (seeded from RAND_bytes per thread) */
static uint64_t rnd(shelf__rank_work *w)
{
    uint64_t a = w->rng[0], b = w->rng[1];
    w->rng[0] = b;
    a ^= a << 23;
    w->rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return w->rng[1] + b;
}

/* ---- a scenario's slate ------------------------------------------------------------------ */


/* the scenario's stages over w->scores, then its choice of rq->n into w->top
 * (with its promotions when some apply: active) */
static uint32_t scenario_slate(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                               shelf__rank_work *w, uint32_t N, const uint8_t *active, uint32_t n_active, int *rc)
{
    uint32_t pool[SHELF__SCN_POOL];
    *rc = shelf__rank_scenario_cut(rq->scenario, w->scores, N, w->pitem, n_active ? w->n_pitem : 0);
    if (!*rc) *rc = shelf__rank_scenario_scores(env, rq, cat, w->scores, w->pop, N);
    if (*rc) return 0;
    if (n_active) return shelf__rank_promo_slate(env, rq, cat, w, w->scores, N, active);
    uint32_t m = shelf__rank_scenario_pool(w->scores, rq->n, pool);
    return shelf__rank_scenario_select(rq, cat, w->scores, pool, m, 0, rq->n, w->top);
}

/* ---- top n and the fallback fill --------------------------------------------------------- */

static void put_item(shelf_slate *out, uint32_t item, float score, const char *source)
{
    shelf_slate_item *it = &out->items[out->n];
    memset(it, 0, sizeof *it);
    it->item = item;
    it->position = out->n;
    it->score = isfinite(score) ? score : 0.0f;
    it->propensity = 1.0f; /* deterministic */
    it->reason_item = SHELF_NONE;
    snprintf(it->source, sizeof it->source, "%s", source);
    out->n++;
}

/* the source that put slate item k on a scenario's slate ("promotion:spring", "model:ease", "trending"), else source */
static const char *item_source(const shelf__rank_req *rq, shelf__rank_work *w, uint32_t k, const char *source)
{
    static _Thread_local char label[64];
    uint32_t item = w->top[k];
    if (w->tpromo[k] >= 0) {
        snprintf(label, sizeof label, "promotion:%s", rq->scenario->promo[w->tpromo[k]].name);
        return label;
    }
    if (!w->src_n) return source;
    uint32_t src = shelf__rank_item_source(rq->scenario, w->src, w->src_N, w->src_lo, w->src_inv, item);
    return src == SHELF_NONE ? source : shelf__source_label(&rq->scenario->src[src], label, sizeof label);
}

/* A scenario's stages in each reason: the sources that proposed the item
 * and at which rank, the promotion that placed it, the multipliers of its
 * boosters, long tail and rotation, and a move by diversity or caps (its
 * place against its rank by score among the slate's first n). */
static void explain_stages(const shelf__rank_req *rq, const shelf__catalogue *cat, const shelf__rank_work *w, uint32_t n,
                           shelf_slate *out)
{
    const shelf__scenario *s = rq->scenario;
    for (uint32_t k = 0; k < out->n; k++) {
        shelf_slate_item *it = &out->items[k];
        size_t len = strlen(it->reason), cap = sizeof it->reason;
#define ADD(...) (len += len < cap ? (size_t)snprintf(it->reason + len, cap - len, __VA_ARGS__) : 0)
        for (uint32_t j = 0; j < w->src_n; j++) {
            char label[64];
            uint32_t r = shelf__rank_source_rank(w->src + (size_t)j * w->src_N, w->src_N, it->item);
            if (r) ADD("%s%s #%u", j && strstr(it->reason, "; proposed by ") ? ", " : "; proposed by ",
                       shelf__source_label(&s->src[j], label, sizeof label), r);
        }
        if (k < n && w->tpromo[k] >= 0) ADD("; promoted (%s)", s->promo[w->tpromo[k]].name);
        float boost, tail, rot, fresh; /* the multipliers of the rules */
        int uses_pop = s->long_tail_beta > 0;
        shelf__rank_scenario_factors(rq, cat, uses_pop ? w->pop : NULL, it->item, &boost, &tail, &rot, &fresh);
        if (boost != 1) ADD("; boosters x%.3g", boost);
        if (s->long_tail_on && tail != 0) ADD("; long tail %+.3g on the score", tail);
        else if (!s->long_tail_on && tail != 1) ADD("; long tail x%.3g", tail);
        if (fresh != 1) ADD("; freshness x%.3g", fresh);
        if (rot != 1) ADD("; shown lately x%.3g", rot);
        uint32_t by_score = 1, shown = 1; /* among the items the promotions did not place */
        for (uint32_t j = 0; j < n && k < n && w->tpromo[k] < 0; j++) {
            by_score += w->tpromo[j] < 0 && out->items[j].score > it->score;
            shown += w->tpromo[j] < 0 && j < k;
        }
        if (k < n && w->tpromo[k] < 0 && (s->diversity_by != SHELF__BY_NONE || s->n_caps) && by_score != shown)
            ADD("; %s #%u by score, #%u shown", s->diversity_by != SHELF__BY_NONE ? "diversity moved it:" : "caps moved it:",
                by_score, shown);
#undef ADD
        if (len >= cap) it->reason[cap - 1] = '\0';
    }
}

/* A slate the filters left short is topped up from the fallback chain,
 * under the same filters, after the items already on it (marked
 * "popular"). Similar and popular lists are not: they mean what they say. */
static void fill_short(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                       shelf__rank_work *w, uint32_t N, shelf_slate *out)
{
    if (out->n >= rq->n || rq->mode != SHELF__RANK_SHOPPER || !strcmp(out->source, "popular")) return;
    if (shelf__rank_fallback(env, rq, w->scores, N)) return;
    shelf__rank_filter(env, rq, cat, w->scores, N, 0);
    for (uint32_t k = 0; k < out->n; k++) w->scores[out->items[k].item] = -INFINITY;
    if (rq->scenario) { /* its rules and caps hold for the fallback too */
        uint32_t pool[SHELF__SCN_POOL], have = out->n;
        if (shelf__rank_scenario_filter(env, rq, cat, w->scores, w->pop, N)) return;
        uint32_t m = shelf_topk(w->scores, N, NULL, SHELF__SCN_POOL, pool);
        for (uint32_t k = 0; k < have; k++) w->top[k] = out->items[k].item;
        uint32_t n = shelf__rank_scenario_select(rq, cat, w->scores, pool, m, have, rq->n, w->top);
        for (uint32_t k = have; k < n; k++) put_item(out, w->top[k], w->scores[w->top[k]], "popular");
        return;
    }
    uint32_t n = shelf_topk(w->scores, N, NULL, rq->n - out->n, w->top);
    for (uint32_t k = 0; k < n; k++) put_item(out, w->top[k], w->scores[w->top[k]], "popular");
}

int shelf__rank(const shelf__rank_env *env, shelf__rank_req *rq, shelf_slate *out, shelf_err *err)
{
    shelf__catalogue cat;
    env->catalogue_read(env->ctx, &cat);
    uint32_t N = cat.n_items;
    env->catalogue_done(env->ctx);
    if (env->model && env->model->n_items > N) N = env->model->n_items;
    shelf__rank_work *w = shelf__rank_work_get(N ? N : 1, rq->n);
    if (!w || shelf_slate_reserve(out, rq->n)) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    if (!rq->now) rq->now = (int64_t)time(NULL);
    const char *source;
    int rc = shelf__rank_candidates(env, rq, w, N, &source, err);
    if (rc) return rc;
    w->src_n = 0;
    int multi = rq->scenario && rq->mode != SHELF__RANK_POPULAR &&
                shelf__scenario_multi(rq->scenario, env->model ? shelf_model_name(env->model) : NULL);
    if (multi) {
        if ((rc = shelf__rank_sources(env, rq, w, w->scores, N, err))) return rc;
        source = "scenario";
    }
    /* the promotions that apply (their items resolved outside the catalogue's lock) */
    uint8_t active[SHELF__SCN_PROMOS] = {0};
    uint32_t n_active = rq->scenario && rq->scenario->n_promo
                            ? shelf__rank_promo_prepare(env, rq, w, w->scores, N, active) : 0;
    for (uint32_t k = 0; k < rq->n; k++) w->tpromo[k] = -1;

    env->catalogue_read(env->ctx, &cat);
    if (env->model && env->model->vt->item_vectors) { /* diversity by embedding */
        cat.vecs = env->model->vt->item_vectors(env->model, &cat.dim);
        cat.n_vecs = cat.vecs ? env->model->n_items : 0;
    }
    shelf__rank_filter(env, rq, &cat, w->scores, N, rq->mode != SHELF__RANK_POPULAR);
    float blend = isnan(rq->blend_popularity) ? env->blend_popularity : rq->blend_popularity;
    if (rq->mode == SHELF__RANK_SHOPPER && !multi && !strcmp(source, "model") &&
        (rc = shelf__rank_blend(env, blend, w->scores, N))) {
        env->catalogue_done(env->ctx);
        return shelf_err_set(err, rc, "out of memory (blend)");
    }
    uint32_t n = rq->scenario ? scenario_slate(env, rq, &cat, w, N, active, n_active, &rc)
                              : shelf_topk(w->scores, N, NULL, rq->n, w->top);
    if (rc) {
        env->catalogue_done(env->ctx);
        return shelf_err_set(err, rc, rc == SHELF_ENOMEM ? "out of memory (scenario)"
                                                         : "scenario %s: its expressions name too many request values",
                             rq->scenario->name);
    }
    snprintf(out->source, sizeof out->source, "%s", source);
    for (uint32_t k = 0; k < n; k++) put_item(out, w->top[k], w->scores[w->top[k]], item_source(rq, w, k, source));
    fill_short(env, rq, &cat, w, N, out);
    if (rq->explain)
        for (uint32_t k = 0; k < out->n; k++) shelf__rank_explain(env, rq, &cat, source, &out->items[k]);
    if (rq->explain && rq->scenario) explain_stages(rq, &cat, w, n, out);
    env->catalogue_done(env->ctx);

    /* time first (milliseconds, 12 hex digits), then 80 random bits: ids
     * sort by time, so the served log's index on them grows at its end */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    snprintf(out->rec_id, sizeof out->rec_id, "%012llx%04llx%016llx", (unsigned long long)(ms & 0xffffffffffffull),
             (unsigned long long)(rnd(w) & 0xffff), (unsigned long long)rnd(w));
    out->ts = rq->now;
    out->user = rq->user;
    if (env->model) snprintf(out->model, sizeof out->model, "%s", shelf_model_name(env->model));
    return 0;
}
