/* test_rank.c: the ranking room (src/rank/) on its own, over a small
 * catalogue and a fake model: the fallback for a shopper without history,
 * the filters (kind, category subtree, candidates, exclusions, seen), the
 * fill of a short slate, explanations, and the session operations it asks
 * of a model with sessions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rank/rank_int.h"
#include "rank/scenario_int.h"
#include "shelf/store.h"

/* ---- a catalogue of 8 items: kinds product (0..5) and article (6, 7);
 * categories "shoes" (0, 1), "shoes > boots" (2), "bags" (3..5); item 5
 * unavailable ---------------------------------------------------------------- */
#define N_ITEMS 8
static uint8_t ok[N_ITEMS] = {1, 1, 1, 1, 1, 0, 1, 1};
static uint16_t kind[N_ITEMS] = {0, 0, 0, 0, 0, 0, 1, 1};
static uint32_t cat[N_ITEMS] = {0, 0, 1, 2, 2, 2, SHELF_NONE, SHELF_NONE};
static char *ext[N_ITEMS] = {"i0", "i1", "i2", "i3", "i4", "i5", "a6", "a7"};
static char *kinds[] = {"product", "article"};
static char *cats[] = {"shoes", "shoes > boots", "bags"};
static char *types[] = {"view", "purchase"};
static const float pop[N_ITEMS] = {5, 1, 4, 3, 0, 9, 2, 0}; /* trending */
/* when each came (item 1 100 s before the rest, item 4 unknown; requests come at 1000) */
static const int64_t created[N_ITEMS] = {900, 800, 900, 900, 0, 900, 900, 900};

static void cat_read(void *ctx, shelf__catalogue *v)
{
    (void)ctx;
    *v = (shelf__catalogue){.n_items = N_ITEMS, .ok = ok, .kind = kind, .cat = cat, .ext = ext, .kinds = kinds,
                            .n_kinds = 2, .cats = cats, .n_cats = 3, .created = created};
}
static void cat_done(void *ctx) { (void)ctx; }
static void pop_scores(void *ctx, float *sc, uint32_t n)
{
    (void)ctx;
    for (uint32_t i = 0; i < n; i++) sc[i] = i < N_ITEMS ? pop[i] : 0;
}
static void fb_scores(void *ctx, float *sc, uint32_t n)
{
    (void)ctx;
    for (uint32_t i = 0; i < n; i++) sc[i] = (i < N_ITEMS ? pop[i] : 0) + 1e-3f; /* all > 0 */
}
static int ctx_scores(void *ctx, const uint16_t *v, uint32_t nv, float *sc, uint32_t n)
{
    (void)ctx;
    (void)v;
    (void)nv;
    for (uint32_t i = 0; i < n; i++) sc[i] = (float)i + 1; /* the newest items for "shoppers like you" */
    return 1;
}
static void hashes(void *ctx, const uint16_t *v, uint32_t nv, uint32_t *out)
{
    (void)ctx;
    for (uint32_t k = 0; k < nv; k++) out[k] = v[k];
}

/* ---- a fake model of the first 6 items: scores 10 - item, except that
 * items 3.. score -inf when `narrow`; sessions counted ----------------------- */
typedef struct fake {
    shelf_model base;
    int narrow;
    int begins, appends;
} fake;

static int fake_score(const shelf_model *m, const shelf_query *q, float *sc, shelf_err *err)
{
    (void)q;
    (void)err;
    const fake *f = (const fake *)m;
    for (uint32_t i = 0; i < m->n_items; i++) sc[i] = f->narrow && i >= 3 ? -INFINITY : 10.0f - (float)i;
    return 0;
}
static int fake_explain(const shelf_model *m, const shelf_query *q, uint32_t item, shelf_reason *r, shelf_err *err)
{
    (void)m;
    (void)err;
    (void)item;
    r->item = q->n ? q->items[q->n - 1] : SHELF_NONE; /* the newest event */
    r->weight = 0.5f;
    return 0;
}
typedef struct { uint32_t n; } fake_sess;
static int fake_begin(const shelf_model *m, const shelf_query *h, void **out, shelf_err *err)
{
    (void)err;
    ((fake *)(uintptr_t)m)->begins++;
    fake_sess *s = malloc(sizeof *s);
    s->n = h->n;
    *out = s;
    return 0;
}
static int fake_append(const shelf_model *m, void *sess, const shelf_query *h, shelf_err *err)
{
    (void)err;
    ((fake *)(uintptr_t)m)->appends++;
    ((fake_sess *)sess)->n = h->n;
    return 0;
}
static int fake_sscore(const shelf_model *m, const void *sess, float *sc, shelf_err *err)
{
    (void)sess;
    return fake_score(m, NULL, sc, err);
}
static void fake_sfree(void *sess) { free(sess); }
static size_t fake_sbytes(const void *sess) { return 100 + ((const fake_sess *)sess)->n; }
static void fake_free(shelf_model *m) { (void)m; }
/* item vectors: 0 and 1 alike, 2 and 4 alike, 3 between */
static const float fake_vecs[6 * 2] = {1, 0, 1, 0, 0, 1, 0.7071f, 0.7071f, 0, 1, 1, 1};
static const float *fake_vectors(const shelf_model *m, uint32_t *dim)
{
    (void)m;
    *dim = 2;
    return fake_vecs;
}

static const shelf_model_vt fake_vt = {.name = "fake",
                                       .caps = SHELF_CAP_EXPLAIN | SHELF_CAP_SESSION | SHELF_CAP_NEEDS_HISTORY | SHELF_CAP_ITEM_VECTORS,
                                       .score = fake_score, .explain = fake_explain, .free = fake_free,
                                       .session_begin = fake_begin, .session_append = fake_append,
                                       .session_score = fake_sscore, .session_free = fake_sfree,
                                       .session_bytes = fake_sbytes, .item_vectors = fake_vectors};

static uint32_t find_ext(void *ctx, const char *id)
{
    (void)ctx;
    for (uint32_t i = 0; i < N_ITEMS; i++)
        if (!strcmp(ext[i], id)) return i;
    return SHELF_NONE;
}

static void popular_all(void *ctx, float *sc, uint32_t n) /* all-time: the later items sold more */
{
    (void)ctx;
    for (uint32_t i = 0; i < n; i++) sc[i] = (float)i;
}

static fake model;
static shelf__seen seen;

static shelf__rank_env env_of(int with_model)
{
    model.base = (shelf_model){.vt = &fake_vt, .n_users = 4, .n_items = 6, .fitted = 1};
    return (shelf__rank_env){.model = with_model ? &model.base : NULL, .caps = with_model ? fake_vt.caps : 0,
                             .gen = 1, .type_names = types, .n_types = 2, .seen = &seen,
                             .catalogue_read = cat_read, .catalogue_done = cat_done, .pop_scores = pop_scores,
                             .fallback_scores = fb_scores, .context_scores = ctx_scores, .context_hashes = hashes,
                             .item_index = find_ext, .popular_scores = popular_all};
}

static shelf__rank_req req(uint32_t n)
{
    return (shelf__rank_req){.mode = SHELF__RANK_SHOPPER, .user = SHELF_NONE, .anchor = SHELF_NONE, .n = n, .now = 1000};
}

static int has(const shelf_slate *s, uint32_t item)
{
    for (uint32_t k = 0; k < s->n; k++)
        if (s->items[k].item == item) return 1;
    return 0;
}

/* a shopper without history gets the fallback: full, non-zero, "popular",
 * never an unavailable item; positions, propensities and the rec_id */
static void test_fallback(void **state)
{
    (void)state;
    shelf__rank_env env = env_of(1);
    shelf__rank_req rq = req(5);
    shelf_slate s = {0};
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(s.n, 5);
    assert_string_equal(s.source, "popular");
    assert_int_equal(s.items[0].item, 0); /* pop 5 (item 5, pop 9, is unavailable) */
    assert_int_equal(s.items[1].item, 2);
    assert_false(has(&s, 5));
    for (uint32_t k = 0; k < s.n; k++) {
        assert_true(s.items[k].score > 0);
        assert_int_equal(s.items[k].position, k);
        assert_true(s.items[k].propensity == 1.0f);
        assert_string_equal(s.items[k].source, "popular");
    }
    assert_int_equal(strlen(s.rec_id), SHELF_REC_ID_LEN);
    assert_true(strspn(s.rec_id, "0123456789abcdef") == SHELF_REC_ID_LEN);
    /* with context values: the context's scores */
    rq = req(2);
    rq.ctx[0] = 3;
    rq.n_ctx = 1;
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_string_equal(s.source, "context");
    assert_int_equal(s.items[0].item, 7);
    shelf_slate_free(&s);
}

/* kind, category subtree, explicit candidates and exclusions */
static void test_filters(void **state)
{
    (void)state;
    shelf__rank_env env = env_of(0); /* popularity */
    uint32_t hist[1] = {1};
    shelf__rank_req rq = req(8);
    rq.items = hist;
    rq.n_hist = 1;
    rq.category = "shoes";
    shelf_slate s = {0};
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(s.n, 3); /* shoes and shoes > boots: 0, 1, 2 */
    assert_true(has(&s, 0) && has(&s, 1) && has(&s, 2));
    rq.category = "shoes > boots";
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.items[0].item, 2);
    rq.category = NULL;
    rq.kind = "article";
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(s.n, 2);
    assert_true(has(&s, 6) && has(&s, 7));
    rq.kind = NULL;
    uint32_t cand[3] = {3, 5, 6}, excl[1] = {6};
    rq.candidates = cand;
    rq.n_candidates = 3;
    rq.exclude = excl;
    rq.n_exclude = 1;
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(s.n, 1); /* 5 unavailable, 6 excluded */
    assert_int_equal(s.items[0].item, 3);
    shelf_slate_free(&s);
}

/* purchased items are hidden by the deployment's rule, viewed ones not;
 * a request's own rule replaces it */
static void test_seen(void **state)
{
    (void)state;
    shelf_err err = {0};
    assert_int_equal(shelf__seen_parse(&seen, "purchase", types, 2, &err), 0);
    shelf__rank_env env = env_of(1);
    uint32_t hist[2] = {0, 1};
    uint16_t ty[2] = {1, 0}; /* bought 0, viewed 1 */
    int64_t ts[2] = {900, 990};
    shelf__rank_req rq = req(6);
    rq.items = hist;
    rq.types = ty;
    rq.ts = ts;
    rq.n_hist = 2;
    shelf_slate s = {0};
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_false(has(&s, 0));
    assert_true(has(&s, 1));
    shelf__seen views;
    assert_int_equal(shelf__seen_parse(&views, "view:1m", types, 2, &err), 0);
    rq.seen = &views;
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_true(has(&s, 0));
    assert_false(has(&s, 1)); /* viewed 10 s ago */
    seen.n = 0;
    shelf_slate_free(&s);
}

/* a model that scores only 3 items: the slate is topped up from the
 * fallback, those items marked "popular"; explanations name the history */
static void test_fill_and_explain(void **state)
{
    (void)state;
    shelf__rank_env env = env_of(1);
    model.narrow = 1;
    uint32_t hist[1] = {4};
    uint16_t ty[1] = {1};
    shelf__rank_req rq = req(5);
    rq.items = hist;
    rq.types = ty;
    rq.n_hist = 1;
    rq.explain = 1;
    shelf_slate s = {0};
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    model.narrow = 0;
    assert_int_equal(s.n, 5);
    assert_string_equal(s.source, "model");
    for (uint32_t k = 0; k < 3; k++) {
        assert_int_equal(s.items[k].item, k);
        assert_string_equal(s.items[k].source, "model");
        assert_int_equal(s.items[k].reason_item, 4);
        assert_string_equal(s.items[k].reason, "because you bought i4");
    }
    for (uint32_t k = 3; k < 5; k++) {
        assert_string_equal(s.items[k].source, "popular");
        assert_true(s.items[k].score > 0);
        assert_int_equal(s.items[k].reason_item, SHELF_NONE);
        assert_string_equal(s.items[k].reason, "popular with shoppers");
    }
    assert_int_equal(s.items[3].item, 3); /* pop 3, then 6 (pop 2); 4 scores only the floor */
    assert_int_equal(s.items[4].item, 6);
    shelf_slate_free(&s);
}

/* sessions: begun once, appended when the history grows, begun anew for a
 * new model generation or a late event; memory reported */
static void test_sessions(void **state)
{
    (void)state;
    shelf__rank_env env = env_of(1);
    model.begins = model.appends = 0;
    uint32_t hist[3] = {0, 1, 2};
    uint16_t ty[3] = {0, 0, 0};
    shelf__sess_slot slot = {0};
    shelf__rank_req rq = req(3);
    rq.items = hist;
    rq.types = ty;
    rq.n_hist = 2;
    rq.slot = &slot;
    shelf_slate s = {0};
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(model.begins, 1);
    assert_true(rq.sess_new);
    assert_true(rq.sess_delta > 0);
    assert_int_equal(slot.n, 2);
    rq = (shelf__rank_req){.mode = SHELF__RANK_SHOPPER, .user = SHELF_NONE, .n = 3, .items = hist, .types = ty,
                           .n_hist = 2, .slot = &slot};
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0); /* unchanged: neither */
    assert_int_equal(model.begins + model.appends, 1);
    rq.n_hist = 3;
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(model.appends, 1);
    assert_int_equal(slot.n, 3);
    slot.stale = 1;
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(model.begins, 2);
    env.gen = 2;
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(model.begins, 3);
    assert_int_equal(slot.gen, 2);
    assert_true(shelf__sess_drop(&slot) > 0);
    assert_null(slot.sess);
    shelf_slate_free(&s);
}

/* blend: weight 0 keeps the model's order; a large positive weight orders
 * by popularity, a large negative one against it; only model slates */
static void test_blend(void **state)
{
    (void)state;
    shelf__rank_env env = env_of(1);
    uint32_t hist[1] = {1};
    shelf__rank_req rq = req(4);
    rq.items = hist;
    rq.n_hist = 1;
    shelf_slate s = {0};
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0); /* model: 10 - i over 0..5 */
    assert_int_equal(s.items[0].item, 0);
    assert_int_equal(s.items[1].item, 1);
    assert_true(s.items[0].score == 10.0f); /* untouched */
    rq.blend_popularity = 10; /* popularity rules: 0 (5), 2 (4), 3 (3), 1 (1) */
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(s.items[0].item, 0);
    assert_int_equal(s.items[1].item, 2);
    assert_int_equal(s.items[2].item, 3);
    assert_int_equal(s.items[3].item, 1);
    rq.blend_popularity = -10; /* the long tail first: 4 (no event), then 1 */
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(s.items[0].item, 4);
    assert_int_equal(s.items[1].item, 1);
    env.blend_popularity = 10; /* the deployment's weight when the request has none */
    rq.blend_popularity = NAN;
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(s.items[1].item, 2);
    rq = req(3); /* the fallback is not blended */
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_string_equal(s.source, "popular");
    assert_true(s.items[0].score > 5.0f);
    shelf_slate_free(&s);
}

/* similar: the anchor never on its list; popular: only items with events */
static void test_lists(void **state)
{
    (void)state;
    shelf__rank_env env = env_of(1);
    shelf__rank_req rq = req(8);
    rq.mode = SHELF__RANK_SIMILAR;
    rq.anchor = 0;
    shelf_slate s = {0};
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_false(has(&s, 0));
    assert_int_equal(s.items[0].item, 1);
    rq = req(8);
    rq.mode = SHELF__RANK_POPULAR;
    assert_int_equal(shelf__rank(&env, &rq, &s, NULL), 0);
    assert_int_equal(s.n, 5); /* 0, 2, 3, 6, 1 (4 and 7 have no events, 5 is unavailable) */
    assert_int_equal(s.items[0].item, 0);
    assert_int_equal(s.items[4].item, 1);
    shelf_slate_free(&s);
}

/* ---- scenarios: the model scores items 0..4 10, 9, 8, 7, 6 (relevance 1,
 * .75, .5, .25, .001); categories 0 0 1 2 2; trending 5 1 4 3 0 ---------------- */

/* rq's slate under scenario json (parsed against env_of(1)'s fields) into s */
static void scn_rank(const char *json, shelf__rank_req rq, shelf_slate *s)
{
    shelf__rank_env env = env_of(1);
    shelf__expr_schema schema = shelf__rank_schema(&env);
    shelf__scenario *scn = NULL;
    shelf_err err = {0};
    if (shelf__scenario_parse("t", json, &schema, &scn, &err)) fail_msg("%s: %s", json, err.msg);
    rq.scenario = scn;
    if (shelf__rank(&env, &rq, s, &err)) fail_msg("%s: %s", json, err.msg);
    shelf__scenario_free(scn);
}

/* a request for n items of a shopper who viewed item 4 */
static shelf__rank_req viewed4(uint32_t n, int explain)
{
    static const uint32_t hist[1] = {4};
    shelf__rank_req rq = req(n);
    rq.items = hist;
    rq.n_hist = 1;
    rq.explain = explain;
    return rq;
}

/* the slate of a shopper who viewed item 4, under scenario json */
static uint32_t scn_slate(const char *json, uint32_t n, const char *const *kv, size_t n_kv, uint32_t *items)
{
    shelf__rank_req rq = viewed4(n, 0);
    rq.ctx_kv = kv;
    rq.n_ctx_kv = n_kv;
    shelf_slate s = {0};
    scn_rank(json, rq, &s);
    for (uint32_t k = 0; k < s.n; k++) items[k] = s.items[k].item;
    uint32_t got = s.n;
    shelf_slate_free(&s);
    return got;
}

#define SLATE(json, n, ...)                                                                                    \
    do {                                                                                                       \
        uint32_t want_[] = {__VA_ARGS__}, got_[16];                                                            \
        uint32_t n_ = scn_slate(json, n, kv, sizeof kv / sizeof kv[0], got_);                                 \
        assert_int_equal(n_, sizeof want_ / sizeof want_[0]);                                                  \
        for (uint32_t k_ = 0; k_ < n_; k_++)                                                                   \
            if (got_[k_] != want_[k_]) fail_msg("%s: position %u holds item %u, not %u", json, k_, got_[k_], want_[k_]); \
    } while (0)

static void test_scenario_stages(void **state)
{
    (void)state;
    const char *const kv[] = {"min_pop=4", "lang=en"};
    SLATE("{}", 5, 0, 1, 2, 3, 4);
    /* kinds: no article is scored by the model; the fallback's articles, which obey the kinds */
    SLATE("{\"kinds\": [\"article\"]}", 5, 6, 7);
    /* filter: the category subtree, with no fallback item outside it */
    SLATE("{\"filter\": \"category under 'shoes'\"}", 5, 0, 1, 2);
    SLATE("{\"filter\": \"not seen(view) and kind == 'product'\"}", 5, 0, 1, 2, 3);
    /* the request's values */
    SLATE("{\"filter\": \"popularity >= ctx.min_pop and ctx.lang == 'en'\"}", 5, 0, 2);
    uint32_t none[8];
    assert_int_equal(scn_slate("{\"filter\": \"ctx.lang == 'fr'\"}", 5, kv, 2, none), 0); /* nothing, not anything */
    /* booster: relevance x max(1, trending) = 5, .75, 2, .75, .001 */
    SLATE("{\"boosters\": [\"max(1, popularity)\"]}", 5, 0, 2, 3, 1, 4);
    /* long tail beta 1: relevance / (1 + trending) = .17, .38, .10, .06, .001 */
    SLATE("{\"long_tail\": {\"beta\": 1}}", 5, 1, 0, 2, 3, 4);
    /* on the score: 10 - i - log(1 + trending) = 8.21, 8.31, 6.39, 5.61, 6 */
    SLATE("{\"long_tail\": {\"beta\": 1, \"on\": \"score\"}}", 5, 1, 0, 2, 4, 3);
    /* minimum relevance: .75 and up */
    SLATE("{\"min_relevance\": 0.6}", 2, 0, 1);
    /* diversity by category, lambda .5: a second shoe (item 1) waits until boots and bags are in */
    SLATE("{\"diversity\": {\"by\": \"category\", \"lambda\": 0.5}}", 5, 0, 2, 3, 1, 4);
    SLATE("{\"diversity\": {\"by\": \"category\", \"lambda\": 1}}", 5, 0, 1, 2, 3, 4);
    /* candidates: the stages judge the best 3, the fallback fills the rest */
    SLATE("{\"candidates\": 3}", 5, 0, 1, 2, 3, 6);
    /* diversity by the model's item vectors, lambda .5: after 0, its twin 1 waits behind 2 */
    SLATE("{\"diversity\": {\"by\": \"embedding\", \"lambda\": 0.5}}", 5, 0, 2, 1, 3, 4);
    /* caps: one per category, the fallback's fill held to them too (item 6, 7: no category) */
    SLATE("{\"caps\": [{\"by\": \"category\", \"max\": 1}]}", 5, 0, 2, 3, 6, 7);
}

/* sources and fusion: trending 5 1 4 3 0 9 2 0 (item 5 unavailable); the
 * model 10 - i over items 0..5 */
static void test_scenario_sources(void **state)
{
    (void)state;
    const char *const kv[] = {"x=1"};
    SLATE("{\"sources\": [{\"type\": \"trending\"}]}", 4, 0, 2, 3, 6);
    SLATE("{\"sources\": [{\"type\": \"list\", \"items\": [\"a7\", \"i3\", \"nope\"]}]}", 2, 7, 3);
    /* weighted, halves: model (1 .8 .6 .4 .2 0) + trending / 9: 0 .78, 1 .46, 2 .52, 3 .37, 4 .1, 6 .11 */
    SLATE("{\"sources\": [{\"type\": \"model\"}, {\"type\": \"trending\"}]}", 5, 0, 2, 1, 3, 6);
    /* rrf (k 60): 0 1/61+1/62, 2 2/63, 1 1/62+1/66, 3 2/64, 4 1/65+1/67.5 ahead of 6 1/65 */
    SLATE("{\"sources\": [{\"type\": \"model\"}, {\"type\": \"trending\"}], \"fusion\": \"rrf\"}", 5, 0, 2, 1, 3, 4);
    /* a heavy list puts its item first */
    SLATE("{\"sources\": [{\"type\": \"model\"}, {\"type\": \"list\", \"items\": [\"a7\"], \"weight\": 10}]}", 3, 7, 0,
          1);
    /* each item names the source that gave it most */
    const char *two = "{\"sources\": [{\"type\": \"model\"}, {\"type\": \"trending\"}]}";
    shelf_slate s = {0};
    scn_rank(two, viewed4(5, 0), &s);
    assert_string_equal(s.items[0].source, "model");
    assert_string_equal(s.items[4].source, "trending");
    assert_string_equal(s.source, "scenario");
    /* explain=1: each reason names the sources that proposed the item, with their ranks */
    scn_rank(two, viewed4(5, 1), &s);
    if (!strstr(s.items[0].reason, "; proposed by model #1, trending #2")) fail_msg("reason: %s", s.items[0].reason);
    if (!strstr(s.items[4].reason, "; proposed by model #7, trending #5") && !strstr(s.items[4].reason, "trending #5"))
        fail_msg("reason: %s", s.items[4].reason);
    /* boosters and the long tail say their multipliers (item 0: trending 5) */
    scn_rank("{\"boosters\": [\"max(1, popularity)\"], \"long_tail\": {\"beta\": 1}}", viewed4(5, 1), &s);
    for (uint32_t k = 0; k < s.n; k++)
        if (s.items[k].item == 0 && !strstr(s.items[k].reason, "; boosters x5; long tail x0.167"))
            fail_msg("reason: %s", s.items[k].reason);
    /* on the score: what it took off (item 0: log 6) */
    scn_rank("{\"long_tail\": {\"beta\": 1, \"on\": \"score\"}}", viewed4(5, 1), &s);
    for (uint32_t k = 0; k < s.n; k++)
        if (s.items[k].item == 0 && !strstr(s.items[k].reason, "; long tail -1.79 on the score"))
            fail_msg("reason: %s", s.items[k].reason);
    /* freshness says its factor: item 1 came a half-life before the newest candidate */
    scn_rank("{\"freshness\": {\"half_life\": 100}}", viewed4(5, 1), &s);
    for (uint32_t k = 0; k < s.n; k++) {
        int older = s.items[k].item == 1, says = strstr(s.items[k].reason, "; freshness x0.5") != NULL;
        if (older != says || (!older && strstr(s.items[k].reason, "freshness")))
            fail_msg("item %u (%u of %u): %s", s.items[k].item, k, s.n, s.items[k].reason);
    }
    /* diversity says where it moved an item */
    scn_rank("{\"diversity\": {\"by\": \"category\", \"lambda\": 0.5}}", viewed4(5, 1), &s);
    /* 0, 2, 3, 1, 4: item 1 (second by score) shown fourth */
    assert_int_equal(s.items[3].item, 1);
    if (!strstr(s.items[3].reason, "diversity moved it: #2 by score, #4 shown")) fail_msg("reason: %s", s.items[3].reason);
    shelf_slate_free(&s);
}

/* seen() over a long history (its table, not a scan): windows, times unknown, types */
static void test_scenario_seen_long(void **state)
{
    (void)state;
    uint32_t items[12] = {1, 2, 3};
    uint16_t htypes[12] = {0, 1, 0};
    int64_t ts[12] = {100, 900, 0};
    for (int k = 3; k < 12; k++) items[k] = 7, htypes[k] = 0, ts[k] = 990 + k; /* an article, lately */
    shelf__rank_req rq = req(3);
    rq.items = items;
    rq.types = htypes;
    rq.ts = ts;
    rq.n_hist = 12;
    shelf_slate s = {0};
    scn_rank("{\"filter\": \"not seen(purchase) and not seen(view, 50s)\"}", rq, &s);
    /* 2: purchased; 3: viewed at a time unknown (inside every window); 1: viewed 900 s ago */
    assert_int_equal(s.n, 3);
    assert_int_equal(s.items[0].item, 0);
    assert_int_equal(s.items[1].item, 1);
    assert_int_equal(s.items[2].item, 4);
    shelf_slate_free(&s);
}

/* the cut (few scores: exactly the k best and their ties) against a sort,
 * with ties and -inf; a kept item keeps its score */
static void test_scenario_cut(void **state)
{
    (void)state;
    shelf__scenario scn = {0};
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 300; round++) {
        float sc[300], orig[300], sorted[300];
        uint32_t n = 1 + (uint32_t)(round % 300), m = 0;
        for (uint32_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            orig[i] = sc[i] = (x % 7 == 0) ? -INFINITY : (float)(x % 23); /* many ties */
            if (isfinite(sc[i])) sorted[m++] = sc[i];
        }
        for (uint32_t a = 1; a < m; a++) /* descending */
            for (uint32_t b = a; b > 0 && sorted[b - 1] < sorted[b]; b--) {
                float t = sorted[b];
                sorted[b] = sorted[b - 1];
                sorted[b - 1] = t;
            }
        scn.candidates = 1 + (uint32_t)(round * 7 % 50);
        uint32_t keep[1] = {0};
        assert_int_equal(shelf__rank_scenario_cut(&scn, sc, n, keep, 1), 0);
        int cut = n > scn.candidates && m > scn.candidates;
        float bar = cut ? sorted[scn.candidates - 1] : -INFINITY;
        for (uint32_t i = 1; i < n; i++) {
            float want = isfinite(orig[i]) && orig[i] >= bar ? orig[i] : -INFINITY;
            if (!(sc[i] == want)) fail_msg("round %d item %u: %g, want %g (bar %g)", round, i, sc[i], want, bar);
        }
        assert_true(sc[0] == orig[0]);
    }
    /* many scores: a sampled bar lets between k and 2k through, and only the best */
    enum { BIG = 20000 };
    float *big = malloc(BIG * sizeof *big);
    for (uint32_t i = 0; i < BIG; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        big[i] = (float)(x % 1000003) / 1000.0f;
    }
    scn.candidates = 1000;
    float *before = malloc(BIG * sizeof *before);
    memcpy(before, big, BIG * sizeof *big);
    assert_int_equal(shelf__rank_scenario_cut(&scn, big, BIG, NULL, 0), 0);
    uint32_t left = 0;
    float lo_in = INFINITY, hi_out = -INFINITY;
    for (uint32_t i = 0; i < BIG; i++)
        if (isfinite(big[i])) left++, lo_in = before[i] < lo_in ? before[i] : lo_in;
        else hi_out = before[i] > hi_out ? before[i] : hi_out;
    if (left < 1000 || left > 2000 || !(hi_out < lo_in)) fail_msg("%u left; kept from %g, cut up to %g", left, lo_in, hi_out);
    free(big);
    free(before);
}

/* what diversity chooses from: the best max(10 n, 100) candidates (at most
 * SHELF__SCN_POOL), best first, ties to the lower item, as a full sort gives */
static int naive_ahead(const float *sc, uint32_t a, uint32_t b) { return sc[a] > sc[b] || (sc[a] == sc[b] && a < b); }

static void test_scenario_pool(void **state)
{
    (void)state;
    enum { NS = 3000 };
    float *sc = malloc(NS * sizeof *sc);
    uint32_t *order = malloc(NS * sizeof *order), pool[SHELF__SCN_POOL];
    shelf__rank_work *w = shelf__rank_work_get(NS, 1);
    assert_non_null(w);
    assert_non_null(w->cand = realloc(w->cand, NS * sizeof *w->cand));
    w->ccap = NS;
    uint64_t x = 0x2545f4914f6cdd1dull;
    const uint32_t sizes[] = {1, 7, 99, 100, 101, 600, NS}, ns[] = {1, 10, 60};
    for (uint32_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++)
        for (uint32_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            uint32_t nc = sizes[a];
            for (uint32_t i = 0; i < NS; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                sc[i] = (float)(x % 50) / 7.0f; /* many ties */
            }
            for (uint32_t k = 0; k < nc; k++) w->cand[k] = order[k] = (uint32_t)((k * 7919u) % NS); /* not in order */
            w->n_cand = nc;
            for (uint32_t i = 1; i < nc; i++) /* the naive order: insertion sort */
                for (uint32_t j = i; j > 0 && naive_ahead(sc, order[j], order[j - 1]); j--) {
                    uint32_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
            uint32_t want = ns[b] * 10 > 100 ? ns[b] * 10 : 100;
            if (want > SHELF__SCN_POOL) want = SHELF__SCN_POOL;
            if (want > nc) want = nc;
            assert_int_equal(shelf__rank_scenario_pool(sc, ns[b], pool), want);
            for (uint32_t k = 0; k < want; k++)
                if (pool[k] != order[k]) fail_msg("%u candidates, n %u: pool[%u] = %u, want %u", nc, ns[b], k, pool[k], order[k]);
        }
    free(sc);
    free(order);
}

/* a scenario's own fallback order; a promotion for a segment of shoppers */
static void test_scenario_fallback_promo(void **state)
{
    (void)state;
    shelf_slate s = {0};
    scn_rank("{\"fallback\": [\"popular\"]}", req(3), &s); /* no history: all-time popularity (item 5 unavailable) */
    assert_int_equal(s.n, 3);
    assert_int_equal(s.items[0].item, 7);
    assert_int_equal(s.items[1].item, 6);
    assert_int_equal(s.items[2].item, 4);
    const char *promo = "{\"promotions\": [{\"name\": \"vip\", \"items\": [\"i4\"], \"segment\": "
                        "\"user.segment == 'vip'\", \"share\": 0.34, \"budget_per_day\": 100}]}";
    static const uint32_t hist[1] = {0};
    const char *const vip[] = {"segment=vip"}, *const other[] = {"segment=basic"};
    for (int k = 0; k < 2; k++) {
        shelf__rank_req rq = req(3);
        rq.items = hist;
        rq.n_hist = 1;
        rq.user_kv = k ? other : vip;
        rq.n_user_kv = 1;
        scn_rank(promo, rq, &s);
        assert_int_equal(s.n, 3);
        if (k == 0) { /* one slot of three, in the middle */
            assert_int_equal(s.items[1].item, 4);
            assert_string_equal(s.items[1].source, "promotion:vip");
        }
        for (uint32_t j = 0; k == 1 && j < s.n; j++) assert_int_not_equal(s.items[j].item, 4);
    }
    shelf_slate_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fallback), cmocka_unit_test(test_filters),        cmocka_unit_test(test_seen),
        cmocka_unit_test(test_fill_and_explain), cmocka_unit_test(test_sessions), cmocka_unit_test(test_lists),
        cmocka_unit_test(test_blend), cmocka_unit_test(test_scenario_stages), cmocka_unit_test(test_scenario_sources),
        cmocka_unit_test(test_scenario_fallback_promo), cmocka_unit_test(test_scenario_cut),
        cmocka_unit_test(test_scenario_seen_long), cmocka_unit_test(test_scenario_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
