/* rerank.c: a scenario's stages in the ranking room (scenario_int.h): its
 * kinds and filter expression, then relevance in (0, 1] changed by the
 * boosters, the long-tail term and the minimum relevance, then the slate
 * chosen greedily under diversity (maximal marginal relevance) and caps.
 * The expressions see the catalogue's fields (shelf__rank_schema). */
#include "rank/rank_int.h"
#include "rank/scenario_int.h"
#include "shelf/eval.h"  /* shelf_topk */
#include "shelf/store.h" /* SHELF_NONE */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fields an expression may name ------------------------------------------------ */

enum { F_KIND, F_CATEGORY, F_AVAILABLE, F_POPULARITY, F_PRICE, F_BRAND, F_CREATED, F_TITLE, F_N };
static const char *const field_names[F_N] = {"kind", "category", "available", "popularity",
                                             "price", "brand", "created", "title"};
static const shelf__xv_type field_types[F_N] = {SHELF__XV_STR, SHELF__XV_STR, SHELF__XV_BOOL, SHELF__XV_NUM,
                                                SHELF__XV_NUM, SHELF__XV_STR, SHELF__XV_NUM, SHELF__XV_STR};

static int schema_field(void *ctx, const char *name, size_t len, uint32_t *id, shelf__xv_type *type)
{
    (void)ctx;
    for (uint32_t k = 0; k < F_N; k++)
        if (strlen(field_names[k]) == len && !strncmp(field_names[k], name, len)) {
            *id = k;
            *type = field_types[k];
            return 0;
        }
    return SHELF_ENOTFOUND;
}

static int schema_type(void *ctx, const char *name, size_t len, uint32_t *id)
{
    const shelf__rank_env *env = ctx;
    for (uint32_t k = 0; env && k < env->n_types; k++)
        if (strlen(env->type_names[k]) == len && !strncmp(env->type_names[k], name, len)) {
            *id = k;
            return 0;
        }
    return SHELF_ENOTFOUND;
}

shelf__expr_schema shelf__rank_schema(const shelf__rank_env *env)
{
    return (shelf__expr_schema){(void *)env, schema_field, schema_type};
}

/* what item_value and seen read, for one request */
typedef struct scn_view {
    const shelf__catalogue *cat;
    const shelf__rank_req *rq;
    const float *pop; /* trending popularity, or NULL */
    int seen_built;   /* the history's (item, type) table below is made (on the first seen()) */
    uint64_t *skey;   /* open addressing: (item << 16 | type) + 1, 0 empty */
    int64_t *sts;     /* the latest time of such an event (INT64_MAX: one without a time) */
    uint32_t smask;
} scn_view;

static void item_value(void *ctx, uint32_t item, uint32_t field, shelf__xval *out)
{
    const scn_view *v = ctx;
    const shelf__catalogue *c = v->cat;
    if (item >= c->n_items) return;
    switch (field) {
    case F_KIND:
        if (c->kind[item] < c->n_kinds) *out = (shelf__xval){.t = SHELF__XV_STR, .str = c->kinds[c->kind[item]]};
        break;
    case F_CATEGORY:
        if (c->cat[item] != SHELF_NONE && c->cat[item] < c->n_cats)
            *out = (shelf__xval){.t = SHELF__XV_STR, .str = c->cats[c->cat[item]]};
        break;
    case F_AVAILABLE: *out = (shelf__xval){.t = SHELF__XV_BOOL, .num = c->ok[item] != 0}; break;
    case F_POPULARITY:
        if (v->pop) *out = (shelf__xval){.t = SHELF__XV_NUM, .num = v->pop[item]};
        break;
    case F_PRICE:
        if (c->price && !isnan(c->price[item])) *out = (shelf__xval){.t = SHELF__XV_NUM, .num = c->price[item]};
        break;
    case F_BRAND:
        if (c->brand && c->brands && c->brand[item] < c->n_brands)
            *out = (shelf__xval){.t = SHELF__XV_STR, .str = c->brands[c->brand[item]]};
        break;
    case F_CREATED:
        if (c->created && c->created[item] > 0) *out = (shelf__xval){.t = SHELF__XV_NUM, .num = (double)c->created[item]};
        break;
    case F_TITLE:
        if (c->title && c->title[item]) *out = (shelf__xval){.t = SHELF__XV_STR, .str = c->title[item]};
        break;
    }
}

static void item_values(void *ctx, const uint32_t *items, uint32_t n, uint32_t field, shelf__xval *out)
{
    for (uint32_t k = 0; k < n; k++) item_value(ctx, items[k], field, &out[k]);
}

static uint32_t seen_slot(uint64_t key, uint32_t mask) { return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 40) & mask; }

/* the table of the history's (item, type) pairs and their latest times, in
 * the thread's work space; 0, or -1 when out of memory (seen() then scans) */
static int seen_build(scn_view *v)
{
    const shelf__rank_req *rq = v->rq;
    uint32_t cap = 64;
    while (cap < 2 * rq->n_hist) cap *= 2;
    shelf__rank_work *w = shelf__rank_work_get(1, 1);
    if (!w) return -1;
    if (cap > w->scap_seen) {
        uint64_t *k = realloc(w->skey, cap * sizeof *k);
        if (k) w->skey = k;
        int64_t *t = realloc(w->sts, cap * sizeof *t);
        if (t) w->sts = t;
        if (!k || !t) return -1;
        w->scap_seen = cap;
    }
    memset(w->skey, 0, cap * sizeof *w->skey);
    for (size_t h = 0; h < rq->n_hist; h++) {
        uint64_t key = ((uint64_t)rq->items[h] << 16 | (rq->types ? rq->types[h] : 0)) + 1;
        int64_t t = rq->ts && rq->ts[h] ? rq->ts[h] : INT64_MAX;
        uint32_t at = seen_slot(key, cap - 1);
        while (w->skey[at] && w->skey[at] != key) at = (at + 1) & (cap - 1);
        if (!w->skey[at] || t > w->sts[at]) w->sts[at] = t;
        w->skey[at] = key;
    }
    v->skey = w->skey, v->sts = w->sts, v->smask = cap - 1;
    return 0;
}

static int seen(void *ctx, uint32_t item, uint32_t type, int64_t window_s)
{
    scn_view *v = ctx;
    const shelf__rank_req *rq = v->rq;
    if (!v->seen_built && rq->n_hist > 8) v->seen_built = seen_build(v) ? -1 : 1;
    if (v->seen_built == 1) { /* the table: the latest such event, within the window? */
        uint64_t key = ((uint64_t)item << 16 | type) + 1;
        for (uint32_t at = seen_slot(key, v->smask); v->skey[at]; at = (at + 1) & v->smask)
            if (v->skey[at] == key)
                return !window_s || v->sts[at] == INT64_MAX || rq->now - v->sts[at] <= window_s;
        return 0;
    }
    for (size_t k = 0; k < rq->n_hist; k++) {
        if (rq->items[k] != item || (rq->types ? rq->types[k] : 0) != type) continue;
        int64_t t = rq->ts ? rq->ts[k] : 0;
        if (!window_s || !t || rq->now - t <= window_s) return 1;
    }
    return 0;
}

static void lookup(void *ctx, int ns, const char *name, shelf__xval *out)
{
    /* ctx.NAME: the request's "key=value" context strings (rq->ctx_kv);
     * user.NAME: the shopper's attributes (rq->user_kv) */
    const shelf__rank_req *rq = ((const scn_view *)ctx)->rq;
    size_t n = strlen(name);
    const char *const *kvs = ns == 0 ? rq->ctx_kv : rq->user_kv;
    size_t n_kv = ns == 0 ? rq->n_ctx_kv : rq->n_user_kv;
    for (size_t k = 0; k < n_kv; k++) {
        const char *kv = kvs[k];
        if (strncmp(kv, name, n) || kv[n] != '=') continue;
        char *end;
        double d = strtod(kv + n + 1, &end);
        if (kv[n + 1] && !*end && isfinite(d)) *out = (shelf__xval){.t = SHELF__XV_NUM, .num = d};
        else *out = (shelf__xval){.t = SHELF__XV_STR, .str = kv + n + 1};
        return;
    }
}

int shelf__rank_condition(const shelf__rank_req *rq, const shelf__expr *e)
{
    if (!e) return 1;
    shelf__xval slots[64];
    if (shelf__expr_slots(e) > sizeof slots / sizeof slots[0]) return 0;
    scn_view v = {NULL, rq, NULL, 0, NULL, NULL, 0};
    shelf__expr_env xenv = {&v, item_value, seen, lookup, item_values};
    shelf__expr_bind(e, &xenv, slots);
    return shelf__expr_eval(e, &xenv, slots, 0, NULL);
}

/* ---- scores ---------------------------------------------------------------------------- */

int shelf__scenario_kind_ok(const shelf__scenario *s, const shelf__catalogue *c, uint32_t i)
{
    if (!s->n_kinds) return 1;
    const char *k = i < c->n_items && c->kind[i] < c->n_kinds ? c->kinds[c->kind[i]] : "";
    for (uint32_t j = 0; j < s->n_kinds; j++)
        if (!strcmp(s->kinds[j], k)) return 1;
    return 0;
}

/* the candidates' scores mapped to (0, 1]: 1e-3 + 0.999 (s - min) / (max - min) */
static void to_relevance(float *scores, const uint32_t *c, uint32_t n)
{
    float lo = INFINITY, hi = -INFINITY;
    for (uint32_t k = 0; k < n; k++) {
        float v = scores[c[k]];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    float span = hi > lo ? hi - lo : 1.0f;
    for (uint32_t k = 0; k < n; k++) scores[c[k]] = 1e-3f + 0.999f * (scores[c[k]] - lo) / span;
}

/* the finite scores' items, in item order, into the thread's list; NULL: out of memory */
static uint32_t *candidates(const float *scores, uint32_t N, uint32_t *n)
{
    shelf__rank_work *w = shelf__rank_work_get(1, 1); /* freed when the thread ends */
    if (!w) return NULL;
    if (N > w->ccap) {
        uint32_t *b = realloc(w->cand, (size_t)N * sizeof *b);
        if (!b) return NULL;
        w->cand = b, w->ccap = N;
    }
    uint32_t *buf = w->cand, m = 0;
    for (uint32_t i = 0; i < N; i++) {
        buf[m] = i;
        m += isfinite(scores[i]) != 0;
    }
    *n = m;
    return buf;
}

/* the expressions' request values, bound once: slots for the filter, then each booster */
typedef struct scn_run {
    scn_view view;
    shelf__expr_env xenv;
    shelf__xval slots[64];
} scn_run;

static int run_begin(scn_run *r, const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                     float *pop, uint32_t N)
{
    const shelf__scenario *s = rq->scenario;
    size_t need = s->filter ? shelf__expr_slots(s->filter) : 0;
    for (uint32_t b = 0; b < s->n_boost; b++)
        if (shelf__expr_slots(s->boost[b]) > need) need = shelf__expr_slots(s->boost[b]);
    if (need > sizeof r->slots / sizeof r->slots[0]) return SHELF_ERANGE;
    /* the trending popularity, read only when a stage uses it */
    int want_pop = s->long_tail_beta > 0 || shelf__expr_uses_field(s->filter, F_POPULARITY);
    for (uint32_t b = 0; b < s->n_boost && !want_pop; b++) want_pop = shelf__expr_uses_field(s->boost[b], F_POPULARITY);
    if (want_pop) env->pop_scores(env->ctx, pop, N);
    r->view = (scn_view){cat, rq, want_pop ? pop : NULL, 0, NULL, NULL, 0};
    r->xenv = (shelf__expr_env){&r->view, item_value, seen, lookup, item_values};
    return 0;
}

/* the kinds and the filter over the candidates c[0..*n): -inf for what fails, the list kept to the rest */
static int apply_filter(scn_run *r, const shelf__rank_req *rq, const shelf__catalogue *cat, float *scores, uint32_t *c,
                        uint32_t *n)
{
    const shelf__scenario *s = rq->scenario;
    uint32_t m = 0;
    for (uint32_t k = 0; k < *n; k++) {
        uint32_t i = c[k];
        if (!shelf__scenario_kind_ok(s, cat, i)) scores[i] = -INFINITY;
        else c[m++] = i;
    }
    *n = m;
    if (!s->filter || !m) return 0;
    uint8_t *pass = malloc(m);
    if (!pass) return SHELF_ENOMEM;
    shelf__expr_bind(s->filter, &r->xenv, r->slots);
    int rc = shelf__expr_eval_many(s->filter, &r->xenv, r->slots, c, m, pass, NULL);
    m = 0;
    for (uint32_t k = 0; !rc && k < *n; k++) {
        if (pass[k]) c[m++] = c[k];
        else scores[c[k]] = -INFINITY;
    }
    free(pass);
    if (!rc) *n = m;
    return rc;
}

int shelf__rank_scenario_filter(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                                float *scores, float *pop, uint32_t N)
{
    scn_run r;
    uint32_t n, *c = candidates(scores, N, &n);
    if (!c) return SHELF_ENOMEM;
    int rc = run_begin(&r, env, rq, cat, pop, N);
    if (!rc) rc = apply_filter(&r, rq, cat, scores, c, &n);
    return rc;
}

/* x 2^(-age / half-life), age counted from the newest candidate (a common
 * factor, so nothing underflows to 0 within 30 half-lives: past them the
 * factor stays 2^-100 and the older items keep their order by relevance);
 * items of unknown age count as the newest */
static void freshness(const shelf__scenario *s, const shelf__rank_req *rq, const shelf__catalogue *cat, float *scores,
                      const uint32_t *c, uint32_t n)
{
    int64_t ref = 0;
    for (uint32_t k = 0; k < n; k++)
        if (c[k] < cat->n_items && cat->created[c[k]] > ref && cat->created[c[k]] <= rq->now) ref = cat->created[c[k]];
    shelf__rank_work_get(1, 1)->fresh_ref = ref;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = c[k];
        if (i >= cat->n_items || cat->created[i] <= 0 || cat->created[i] >= ref) continue;
        double halves = (double)(ref - cat->created[i]) / (double)s->freshness_half_life_s;
        scores[i] = (float)((double)scores[i] * exp2(-(halves < 100 ? halves : 100)));
    }
}

/* freshness's factor for item against the reference time ref (1: none) */
static float fresh_factor(const shelf__scenario *s, const shelf__catalogue *cat, int64_t ref, uint32_t item)
{
    if (s->freshness_half_life_s <= 0 || !cat->created || !ref || item >= cat->n_items || cat->created[item] <= 0 ||
        cat->created[item] >= ref)
        return 1.0f;
    double halves = (double)(ref - cat->created[item]) / (double)s->freshness_half_life_s;
    return (float)exp2(-(halves < 100 ? halves : 100));
}

int shelf__rank_scenario_scores(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                                float *scores, float *pop, uint32_t N)
{
    const shelf__scenario *s = rq->scenario;
    scn_run r;
    uint32_t n, *c = candidates(scores, N, &n);
    if (!c) return SHELF_ENOMEM;
    int rc = run_begin(&r, env, rq, cat, pop, N);
    if (rc) return rc;
    if ((rc = apply_filter(&r, rq, cat, scores, c, &n))) return rc;
    for (uint32_t k = 0; k < n && s->long_tail_beta > 0 && s->long_tail_on; k++) /* on the score: before relevance */
        scores[c[k]] -= s->long_tail_beta * log1pf(pop[c[k]] > 0 ? pop[c[k]] : 0);
    to_relevance(scores, c, n);
    if (s->n_boost && n) {
        uint8_t *ok = malloc(n);
        double *mul = malloc(n * sizeof *mul);
        for (uint32_t b = 0; b < s->n_boost && ok && mul; b++) {
            shelf__expr_bind(s->boost[b], &r.xenv, r.slots);
            if ((rc = shelf__expr_eval_many(s->boost[b], &r.xenv, r.slots, c, n, ok, mul))) break;
            for (uint32_t k = 0; k < n; k++)
                if (ok[k] && mul[k] >= 0) scores[c[k]] = (float)((double)scores[c[k]] * mul[k]);
        }
        if (!ok || !mul) rc = SHELF_ENOMEM;
        free(ok);
        free(mul);
        if (rc) return rc;
    }
    for (uint32_t k = 0; k < n && s->long_tail_beta > 0 && !s->long_tail_on; k++)
        scores[c[k]] *= powf(1.0f + (pop[c[k]] > 0 ? pop[c[k]] : 0), -s->long_tail_beta);
    shelf__rank_work_get(1, 1)->fresh_ref = 0;
    if (s->freshness_half_life_s > 0 && cat->created) freshness(s, rq, cat, scores, c, n);
    /* rotation: what this shopper was shown within the window, x penalty (once) */
    for (size_t k = 0; k < rq->n_shown && s->rotation_window_s > 0; k++) {
        uint32_t i = rq->shown[k];
        int dup = 0;
        for (size_t j = 0; j < k && !dup; j++) dup = rq->shown[j] == i && rq->now - rq->shown_ts[j] <= s->rotation_window_s;
        if (!dup && i < N && isfinite(scores[i]) && rq->now - rq->shown_ts[k] <= s->rotation_window_s)
            scores[i] *= s->rotation_penalty;
    }
    uint32_t m = 0; /* what is left, for shelf__rank_scenario_pool */
    for (uint32_t k = 0; k < n; k++)
        if (!(scores[c[k]] < s->min_relevance)) c[m++] = c[k];
        else scores[c[k]] = -INFINITY;
    shelf__rank_work_get(1, 1)->n_cand = m;
    return 0;
}

/* a before b: the higher score (NaN as -inf), on a tie the lower item */
typedef struct scored {
    float s;
    uint32_t i;
} scored;

static int ahead(scored a, scored b) { return a.s > b.s || (a.s == b.s && a.i < b.i); }

static int by_rank(const void *x, const void *y)
{
    const scored *a = x, *b = y;
    return ahead(*a, *b) ? -1 : ahead(*b, *a);
}

/* reorders v[0..n) so that its best k (0 < k <= n) come first and v[k - 1]
 * is the k-th best: quickselect (ahead is a strict order: no two entries tie) */
static void select_first(scored *v, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        scored pivot = v[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (ahead(v[i], pivot)) i++;
            while (ahead(pivot, v[j])) j--;
            if (i <= j) {
                scored t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return;
    }
}

uint32_t shelf__rank_scenario_pool(const float *scores, uint32_t n, uint32_t *pool)
{
    shelf__rank_work *w = shelf__rank_work_get(1, 1);
    uint32_t m = n * 10 > 100 ? n * 10 : 100, nc = w->n_cand;
    if (m > SHELF__SCN_POOL) m = SHELF__SCN_POOL;
    scored *v = malloc((size_t)(nc ? nc : 1) * sizeof *v);
    if (!v) return 0;
    for (uint32_t k = 0; k < nc; k++) {
        float x = scores[w->cand[k]];
        v[k] = (scored){isnan(x) ? -INFINITY : x, w->cand[k]};
    }
    if (m < nc) select_first(v, nc, m);
    else m = nc;
    qsort(v, m, sizeof *v, by_rank);
    for (uint32_t k = 0; k < m; k++) pool[k] = v[k].i;
    free(v);
    return m;
}

int shelf__rank_scenario_cut(const shelf__scenario *s, float *scores, uint32_t N, const uint32_t *keep, size_t n_keep)
{
    enum { SAMPLE = 512 };
    const uint32_t C = s->candidates;
    if (!C || N <= C) return 0;
    /* the bar: from the finite scores at every stride-th item (all of them
     * when there are few: then the exact C-th best), set so that about
     * 1.25 C pass */
    scored smp[SAMPLE], tmp[SAMPLE];
    float kept[64];
    uint32_t stride = (N + SAMPLE - 1) / SAMPLE, ns = 0;
    for (uint32_t i = 0; i < N; i += stride)
        if (isfinite(scores[i])) smp[ns++] = (scored){scores[i], i};
    /* each sample stands for stride items */
    for (uint32_t j = stride == 1 ? C - 1 : (uint32_t)ceil(1.25 * C / stride);; j = j * 2 + 1) {
        if (j >= ns) return 0; /* too few finite scores for a bar */
        memcpy(tmp, smp, ns * sizeof *tmp);
        select_first(tmp, ns, (int64_t)j + 1);
        float bar = tmp[j].s;
        uint32_t above = 0;
        float *restrict sc = scores;
        SHELF__SIMD(omp simd reduction(+ : above))
        for (uint32_t i = 0; i < N; i++) above += sc[i] >= bar;
        if (above < C) continue; /* the sample was off (ties, skew): lower the bar */
        size_t nk = n_keep < 64 ? n_keep : 64;
        for (size_t k = 0; k < nk; k++) kept[k] = keep[k] < N ? scores[keep[k]] : 0;
        SHELF__SIMD(omp simd)
        for (uint32_t i = 0; i < N; i++) sc[i] = sc[i] >= bar ? sc[i] : -INFINITY;
        for (size_t k = 0; k < nk; k++)
            if (keep[k] < N) scores[keep[k]] = kept[k];
        return 0;
    }
}

void shelf__rank_scenario_factors(const shelf__rank_req *rq, const shelf__catalogue *cat, const float *pop,
                                  uint32_t item, float *boost, float *tail, float *rotation, float *fresh)
{
    const shelf__scenario *s = rq->scenario;
    scn_run r;
    r.view = (scn_view){cat, rq, pop, 0, NULL, NULL, 0};
    r.xenv = (shelf__expr_env){&r.view, item_value, seen, lookup, item_values};
    double b = 1;
    for (uint32_t k = 0; k < s->n_boost; k++) {
        double m;
        if (shelf__expr_slots(s->boost[k]) > sizeof r.slots / sizeof r.slots[0]) continue;
        shelf__expr_bind(s->boost[k], &r.xenv, r.slots);
        if (shelf__expr_eval(s->boost[k], &r.xenv, r.slots, item, &m) && m >= 0) b *= m;
    }
    *boost = (float)b;
    float p1 = pop ? 1.0f + (pop[item] > 0 ? pop[item] : 0) : 1.0f;
    if (s->long_tail_on) *tail = s->long_tail_beta > 0 ? -s->long_tail_beta * logf(p1) : 0.0f;
    else *tail = s->long_tail_beta > 0 ? powf(p1, -s->long_tail_beta) : 1.0f;
    *fresh = fresh_factor(s, cat, shelf__rank_work_get(1, 1)->fresh_ref, item);
    *rotation = 1;
    for (size_t k = 0; k < rq->n_shown && s->rotation_window_s > 0; k++)
        if (rq->shown[k] == item && rq->now - rq->shown_ts[k] <= s->rotation_window_s) *rotation = s->rotation_penalty;
}

/* ---- the slate: diversity and caps ------------------------------------------------------ */

/* the value an item has for by (SHELF_NONE: none) */
static uint32_t by_value(const shelf__catalogue *c, shelf__by by, uint32_t i)
{
    if (by == SHELF__BY_CATEGORY && i < c->n_items) return c->cat[i];
    if (by == SHELF__BY_BRAND && c->brand && i < c->n_items) return c->brand[i];
    return SHELF_NONE; /* embedding: not in the catalogue yet */
}

static int capped(const shelf__scenario *s, const shelf__catalogue *c, const uint32_t *chosen, uint32_t n, uint32_t i)
{
    for (uint32_t k = 0; k < s->n_caps; k++) {
        uint32_t v = by_value(c, s->caps[k].by, i), same = 0;
        if (v == SHELF_NONE) continue;
        for (uint32_t j = 0; j < n; j++) same += by_value(c, s->caps[k].by, chosen[j]) == v;
        if (same >= s->caps[k].max) return 1;
    }
    return 0;
}

/* cosine of items a and b in the catalogue's vectors, at least 0 (0 for an item without one) */
static float cosine(const shelf__catalogue *c, uint32_t a, uint32_t b, const float *norm_a)
{
    if (a >= c->n_vecs || b >= c->n_vecs) return 0;
    const float *x = c->vecs + (size_t)a * c->dim, *y = c->vecs + (size_t)b * c->dim;
    float d = 0, nb = 0;
    for (uint32_t k = 0; k < c->dim; k++) d += x[k] * y[k], nb += y[k] * y[k];
    float den = (norm_a ? *norm_a : 1) * sqrtf(nb);
    return den > 0 && d > 0 ? d / den : 0;
}

uint32_t shelf__rank_scenario_select(const shelf__rank_req *rq, const shelf__catalogue *cat, const float *scores,
                                     const uint32_t *pool, uint32_t n_pool, uint32_t n_have, uint32_t n, uint32_t *out)
{
    const shelf__scenario *s = rq->scenario;
    int emb = s->diversity_by == SHELF__BY_EMBEDDING && cat->vecs && s->diversity_lambda < 1;
    uint8_t *used = calloc(n_pool ? n_pool : 1, 1);
    float *maxsim = emb ? calloc(n_pool ? n_pool : 1, 2 * sizeof *maxsim) : NULL, *norm = maxsim ? maxsim + n_pool : NULL;
    if (!used || (emb && !maxsim)) {
        free(used);
        free(maxsim);
        return n_have;
    }
    /* by embedding: each pool item's largest similarity to what the slate holds, kept up to date */
    for (uint32_t p = 0; emb && p < n_pool; p++) {
        const float *x = pool[p] < cat->n_vecs ? cat->vecs + (size_t)pool[p] * cat->dim : NULL;
        float nn = 0;
        for (uint32_t k = 0; x && k < cat->dim; k++) nn += x[k] * x[k];
        norm[p] = sqrtf(nn);
        for (uint32_t j = 0; j < n_have; j++) {
            float c = cosine(cat, pool[p], out[j], &norm[p]);
            maxsim[p] = c > maxsim[p] ? c : maxsim[p];
        }
    }
    uint32_t got = n_have;
    float lambda = s->diversity_by != SHELF__BY_NONE ? s->diversity_lambda : 1.0f;
    while (got < n) {
        uint32_t best = n_pool;
        float best_v = -INFINITY;
        for (uint32_t p = 0; p < n_pool; p++) {
            uint32_t i = pool[p];
            if (used[p] || capped(s, cat, out, got, i)) continue;
            float sim = emb ? maxsim[p] : 0;
            uint32_t v = emb ? SHELF_NONE : by_value(cat, s->diversity_by, i);
            for (uint32_t j = 0; j < got && lambda < 1 && v != SHELF_NONE && sim < 1; j++)
                sim = by_value(cat, s->diversity_by, out[j]) == v ? 1.0f : sim;
            float val = lambda * scores[i] - (1 - lambda) * sim;
            if (val > best_v) best_v = val, best = p;
        }
        if (best == n_pool) break;
        used[best] = 1;
        out[got++] = pool[best];
        for (uint32_t p = 0; emb && p < n_pool; p++)
            if (!used[p]) {
                float c = cosine(cat, pool[p], pool[best], &norm[p]);
                maxsim[p] = c > maxsim[p] ? c : maxsim[p];
            }
    }
    free(used);
    free(maxsim);
    return got;
}
