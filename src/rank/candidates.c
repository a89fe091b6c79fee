/* candidates.c: the ranking room's first stage: every item's score from the
 * model (the shopper's session, or the model's score of the history), the
 * shopper's context, or the fallback chain; which one is the slate's source. */
#include "rank/rank_int.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

size_t shelf__rank_known_only(uint32_t I, uint32_t *items, uint16_t *types, int64_t *ts, size_t n)
{
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        if (items[k] < I) {
            items[m] = items[k];
            if (types) types[m] = types[k];
            if (ts) ts[m] = ts[k];
            m++;
        }
    return m;
}

/* The events of a history whose items the model knows (< I; items added
 * after training are skipped) into w->k*; returns their count, or
 * (uint32_t)-1 when out of memory. */
static uint32_t known_history(shelf__rank_work *w, uint32_t I, const uint32_t *items, const uint16_t *types,
                              const int64_t *ts, size_t n)
{
    if (n > w->kcap) {
        uint32_t *it = realloc(w->kitem, n * sizeof *it);
        if (it) w->kitem = it;
        uint16_t *ty = realloc(w->ktype, n * sizeof *ty);
        if (ty) w->ktype = ty;
        int64_t *t2 = realloc(w->kts, n * sizeof *t2);
        if (t2) w->kts = t2;
        if (!it || !ty || !t2) return (uint32_t)-1;
        w->kcap = n;
    }
    if (!n) return 0;
    memcpy(w->kitem, items, n * sizeof *items);
    if (types) memcpy(w->ktype, types, n * sizeof *types);
    else memset(w->ktype, 0, n * sizeof *w->ktype);
    if (ts) memcpy(w->kts, ts, n * sizeof *ts);
    else memset(w->kts, 0, n * sizeof *w->kts);
    return (uint32_t)shelf__rank_known_only(I, w->kitem, w->ktype, w->kts, n);
}

static void minus_inf(float *sc, uint32_t from, uint32_t N)
{
    for (uint32_t i = from; i < N; i++) sc[i] = -INFINITY;
}

int shelf__rank_model_scores(const shelf__rank_env *env, const shelf_model *m, shelf__rank_work *w, float *out,
                             uint32_t N, uint32_t user, const uint32_t *items, const uint16_t *types,
                             const int64_t *ts, size_t n, int64_t now, shelf_err *err)
{
    if (!m) {
        env->pop_scores(env->ctx, out, N);
        return 0;
    }
    uint32_t I = m->n_items;
    uint32_t k = known_history(w, I, items, types, ts, n);
    if (k == (uint32_t)-1) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    if (k == 0 && (user == SHELF_NONE || user >= m->n_users)) return 1; /* nothing the model knows */
    shelf_query q = {.user = user != SHELF_NONE && user < m->n_users ? user : SHELF_NONE, .items = w->kitem,
                     .types = types ? w->ktype : NULL, .ts = ts ? w->kts : NULL, .n = k, .now = now};
    int rc = shelf_model_score(m, &q, out, err);
    if (rc) return rc;
    minus_inf(out, I, N);
    return 0;
}

static int model_scores(const shelf__rank_env *env, shelf__rank_work *w, uint32_t N, uint32_t user,
                        const uint32_t *items, const uint16_t *types, const int64_t *ts, size_t n, int64_t now,
                        shelf_err *err)
{
    return shelf__rank_model_scores(env, env->model, w, w->scores, N, user, items, types, ts, n, now, err);
}

size_t shelf__sess_drop(shelf__sess_slot *slot)
{
    size_t bytes = slot->bytes;
    shelf_session_free(slot->sess);
    slot->sess = NULL;
    slot->bytes = 0;
    slot->n = 0;
    slot->stale = 0;
    return bytes;
}

/* A known user's scores through its session: kept while the history only
 * grows, extended by the events since, begun anew for a new model
 * generation or a late event. 1: no item of the history is known to the
 * model (scores untouched). */
static int session_scores(const shelf__rank_env *env, shelf__rank_req *rq, shelf__rank_work *w, uint32_t N,
                          shelf_err *err)
{
    shelf__sess_slot *slot = rq->slot;
    uint32_t I = env->model->n_items;
    uint32_t m = known_history(w, I, rq->items, rq->types, rq->ts, rq->n_hist);
    if (m == (uint32_t)-1) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    if (m == 0) return 1; /* nothing the model knows */
    shelf_query q = {.user = SHELF_NONE, .items = w->kitem, .types = rq->types ? w->ktype : NULL,
                     .ts = rq->ts ? w->kts : NULL, .n = m};
    if (slot->sess && (slot->gen != env->gen || slot->stale || slot->n > m))
        rq->sess_delta -= (long long)shelf__sess_drop(slot);
    int rc = 0;
    if (!slot->sess) {
        if (!(rc = shelf_session_begin(env->model, &q, &slot->sess, err))) {
            slot->gen = env->gen;
            rq->sess_new = 1;
        }
    } else if (slot->n < m) {
        rc = shelf_session_append(slot->sess, &q, err);
    }
    if (rc) {
        rq->sess_delta -= (long long)shelf__sess_drop(slot);
        return rc;
    }
    slot->n = m;
    size_t bytes = shelf_session_bytes(slot->sess);
    rq->sess_delta += (long long)bytes - (long long)slot->bytes;
    slot->bytes = bytes;
    rc = shelf_session_score(slot->sess, w->scores, err);
    if (!rc) minus_inf(w->scores, I, N);
    return rc;
}

/* a shopper without history from its context values: a model that scores
 * context itself, else the popularity among shoppers with the same values.
 * 1 when the context gave scores (*source set), 0 when not. */
static int context_scores(const shelf__rank_env *env, const shelf__rank_req *rq, shelf__rank_work *w, uint32_t N,
                          const char **source)
{
    if (!rq->n_ctx) return 0;
    if (env->caps & SHELF_CAP_CONTEXT) {
        uint32_t h[SHELF__RANK_CTX];
        env->context_hashes(env->ctx, rq->ctx, rq->n_ctx, h);
        shelf_query q = {.user = SHELF_NONE, .ctx = h, .n_ctx = rq->n_ctx};
        if (shelf_model_score(env->model, &q, w->scores, NULL) == 0) {
            minus_inf(w->scores, env->model->n_items, N);
            *source = "model";
            return 1;
        }
    }
    if (env->context_scores(env->ctx, rq->ctx, rq->n_ctx, w->scores, N)) {
        *source = "context";
        return 1;
    }
    return 0;
}

/* the items that go with one item: the model on a one-item session; an
 * item the model did not learn stands in for its content neighbours */
static int similar_scores(const shelf__rank_env *env, const shelf__rank_req *rq, shelf__rank_work *w, uint32_t N,
                          shelf_err *err)
{
    uint32_t sess[64];
    uint16_t view[64] = {0};
    float nw[64];
    uint32_t ns = 0;
    if (env->model && rq->anchor >= env->model->n_items) {
        shelf__catalogue cat;
        env->catalogue_read(env->ctx, &cat);
        ns = cat.cf ? shelf_coldfill_neighbours(cat.cf, rq->anchor, sess, nw) : 0;
        env->catalogue_done(env->ctx);
    }
    if (!ns) sess[ns++] = rq->anchor;
    int rc = model_scores(env, w, N, SHELF_NONE, sess, view, NULL, ns, rq->now, err);
    if (rc == 1) { /* an item the model cannot place: what is popular */
        env->fallback_scores(env->ctx, w->scores, N);
        rc = 0;
    }
    if (!rc && rq->anchor < N) w->scores[rq->anchor] = -INFINITY;
    return rc;
}

int shelf__rank_candidates(const shelf__rank_env *env, shelf__rank_req *rq, shelf__rank_work *w, uint32_t N,
                           const char **source, shelf_err *err)
{
    *source = env->model ? "model" : "popularity";
    if (rq->mode == SHELF__RANK_POPULAR) {
        env->pop_scores(env->ctx, w->scores, N);
        for (uint32_t i = 0; i < N; i++)
            if (w->scores[i] <= 0) w->scores[i] = -INFINITY; /* no recent events: not popular */
        *source = "popularity";
        return 0;
    }
    if (rq->mode == SHELF__RANK_SIMILAR) return similar_scores(env, rq, w, N, err);
    /* a shopper without usable history (unknown id, forgotten history, a
     * session of unknown items): its context, else the fallback chain;
     * never a model's scores of an empty history */
    int rc = 1;
    if (rq->n_hist && env->model && rq->given) { /* scored with others (shelf_rank_many) */
        memcpy(w->scores, rq->given, (size_t)env->model->n_items * sizeof *w->scores);
        minus_inf(w->scores, env->model->n_items, N);
        rc = 0;
    } else if (rq->n_hist && env->model && (env->caps & SHELF_CAP_SESSION) && rq->slot)
        rc = session_scores(env, rq, w, N, err);
    else if (rq->n_hist)
        rc = model_scores(env, w, N, rq->user, rq->items, rq->types, rq->ts, rq->n_hist, rq->now, err);
    if (rc != 1) return rc;
    if (!context_scores(env, rq, w, N, source)) {
        *source = "popular";
        if (shelf__rank_fallback(env, rq, w->scores, N)) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    }
    return 0;
}
