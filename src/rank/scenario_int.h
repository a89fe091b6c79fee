/* scenario_int.h: a scenario (placement) of the ranking room: the JSON
 * document a shop stores for "home", "cart", "email" ..., parsed and
 * checked into the form the stages read (DESIGN.md, "From scores to a
 * slate"). Every error names its JSON path ("scenario.sources[1].weight:
 * ..."); an expression's error adds its column. */
#ifndef SHELF_RANK_SCENARIO_INT_H
#define SHELF_RANK_SCENARIO_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rank/expr_int.h"
#include "rank/rank_int.h"

#define SHELF__SCN_NAME_MAX 48 /* bytes of a name, with the NUL */
#define SHELF__SCN_SOURCES 8
#define SHELF__SCN_BOOSTERS 8
#define SHELF__SCN_CAPS 4
#define SHELF__SCN_PROMOS 8
#define SHELF__SCN_KINDS 8
#define SHELF__SCN_LIST_MAX 10000 /* ids in one list */
#define SHELF__SCN_CANDIDATES 1000 /* the default of "candidates" */

typedef enum {
    SHELF__SRC_MODEL,    /* a trained model's scores ("model": its kind, "" the deployment's) */
    SHELF__SRC_SIMILAR,  /* items that go with the request's context items */
    SHELF__SRC_TRENDING, /* popularity with the time decay */
    SHELF__SRC_POPULAR,  /* all-time popularity */
    SHELF__SRC_LIST,     /* a fixed list of items, in its order */
    SHELF__SRC_CAMPAIGN, /* the items of the scenario's promotions */
    SHELF__SRC_CONTENT,  /* the items whose content is like that of the shopper's history */
    SHELF__SRC_N
} shelf__src_type;

typedef struct shelf__scn_source {
    shelf__src_type type;
    char model[SHELF__SCN_NAME_MAX]; /* MODEL: the model kind; "": the deployment's */
    float weight;                     /* > 0 */
    char **items;                     /* LIST: external item ids */
    size_t n_items;
} shelf__scn_source;

typedef enum { SHELF__FUSE_WEIGHTED, SHELF__FUSE_RRF } shelf__fusion;
typedef enum { SHELF__BY_NONE, SHELF__BY_CATEGORY, SHELF__BY_BRAND, SHELF__BY_EMBEDDING } shelf__by;

typedef struct shelf__scn_cap {
    shelf__by by; /* CATEGORY or BRAND */
    uint32_t max; /* items per value at most, >= 1 */
} shelf__scn_cap;

typedef struct shelf__scn_promo {
    char name[SHELF__SCN_NAME_MAX];
    char **items;           /* external item ids, >= 1 */
    size_t n_items;
    shelf__expr *segment;   /* who sees it: a condition over user./ctx. (NULL: everyone) */
    char **categories;      /* shown only where the slate's request asks one of these (NULL: anywhere) */
    size_t n_categories;
    float boost;            /* score multiplier (>= 1), or 0 when share is set */
    float share;            /* fraction of the slate's slots (0..1], or 0 when boost is set */
    int64_t budget_per_day; /* impressions a day, >= 1 */
} shelf__scn_promo;

typedef struct shelf__scenario {
    char name[SHELF__SCN_NAME_MAX];
    char *kinds[SHELF__SCN_KINDS]; /* item kinds it shows (none: every kind) */
    uint32_t n_kinds;
    shelf__scn_source src[SHELF__SCN_SOURCES];
    uint32_t n_src;
    shelf__fusion fusion;
    float rrf_k;                   /* reciprocal-rank fusion's constant (60) */
    uint32_t candidates;           /* the stages judge the best this many of the fused scores (0: all) */
    shelf__expr *filter;           /* NULL: none */
    shelf__expr *boost[SHELF__SCN_BOOSTERS];
    uint32_t n_boost;
    float min_relevance;           /* fused scores below it are dropped (-inf: none) */
    shelf__by diversity_by;        /* NONE: no diversity stage */
    float diversity_lambda;        /* MMR: 1 relevance only .. 0 diversity only */
    shelf__scn_cap caps[SHELF__SCN_CAPS];
    uint32_t n_caps;
    float long_tail_beta;          /* score x popularity^-beta; 0: off */
    int long_tail_on;              /* 0: relevance x (1 + pop)^-beta; 1: the score (a logit) - beta log(1 + pop) */
    int64_t freshness_half_life_s; /* 0: off */
    int64_t rotation_window_s;     /* 0: off */
    float rotation_penalty;        /* score multiplier of items shown in the window, (0, 1] */
    shelf__scn_promo promo[SHELF__SCN_PROMOS];
    uint32_t n_promo;
    shelf__fallback fallback;
    int has_fallback;              /* the document names its fallback (else the default) */
} shelf__scenario;

/* Parses and checks json (the document's text) as scenario name, its
 * expressions compiled against schema. On success *out (free with
 * shelf__scenario_free) and 0; else SHELF_EINVAL with err naming the JSON
 * path ("scenario.diversity.lambda: ..."), or SHELF_ENOMEM; *out untouched. */
int shelf__scenario_parse(const char *name, const char *json, const shelf__expr_schema *schema,
                          shelf__scenario **out, shelf_err *err);
void shelf__scenario_free(shelf__scenario *s);

/* The parts of s the ranking room does not apply yet, as a comma-separated
 * list of JSON paths ("diversity.by,freshness"; "" when it applies all), so
 * that a shop is told rather than left guessing: caps by embedding.
 * Which models a model source may name, and whether the model has item
 * vectors for diversity by embedding, depend on the engine: the caller
 * adds those. */
void shelf__scenario_unapplied(const shelf__scenario *s, char *buf, size_t cap);

/* Whether json is a valid scenario name for the ranking room's fields
 * (shelf__rank_schema) and these event types: 0, or the error of
 * shelf__scenario_parse. */
int shelf__scenario_check(const char *name, const char *json, char *const *type_names, uint32_t n_types, shelf_err *err);

/* ---- its stages in the ranking room (rerank.c) ----------------------------------------- */

/* What a scenario's expressions may name: the catalogue's fields (kind,
 * category, available, popularity) and env's event types. */
shelf__expr_schema shelf__rank_schema(const shelf__rank_env *env);

/* The candidates of s: the finite scores below a bar set to -inf, the bar
 * set so that at least s->candidates pass (exactly the best that many, and
 * their ties, when there are at most 512 x that many; else about 1.25 x as
 * many, from a sample); the filter and what follows judge only those, and
 * a slate they leave short is filled from the fallback. The first 64 of
 * keep[0..n_keep) keep their scores. 0. */
int shelf__rank_scenario_cut(const shelf__scenario *s, float *scores, uint32_t N, const uint32_t *keep, size_t n_keep);

/* rq->scenario's kinds and filter: -inf for what fails. pop: room for N
 * (the trending popularity, read when an expression may need it). 0, or
 * SHELF_ERANGE when an expression names over 64 request values. */
int shelf__rank_scenario_filter(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                                float *scores, float *pop, uint32_t N);

/* rq->scenario's kinds and filter (-inf for what fails), then the rest as
 * relevance in (0, 1] (the finite scores min-max scaled), times each
 * booster's value (>= 0; null leaves it), times (1 + popularity)^-beta,
 * dropped below min_relevance. pop: room for N (the trending popularity is
 * read into it when a stage needs it). 0, or SHELF_ERANGE when the
 * expressions name over 64 request values. */
int shelf__rank_scenario_scores(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                                float *scores, float *pop, uint32_t N);

/* What the scenario's stages multiplied item's relevance by (explanations):
 * its boosters' product, the long-tail term (pop: the trending popularity
 * its stages read, or NULL; with long_tail_on, what it added to the score,
 * 0 where none), the rotation penalty and freshness (against
 * the newest candidate of this thread's last shelf__rank_scenario_scores);
 * 1 where none. */
void shelf__rank_scenario_factors(const shelf__rank_req *rq, const shelf__catalogue *cat, const float *pop,
                                  uint32_t item, float *boost, float *tail, float *rotation, float *fresh);

#define SHELF__SCN_POOL 512 /* what diversity and caps choose from, at most */

/* What a slate of n chooses from: the best max(10 n, 100) (at most
 * SHELF__SCN_POOL) by scores of what the last shelf__rank_scenario_scores of
 * this thread left, the best first, into pool; returns how many. */
uint32_t shelf__rank_scenario_pool(const float *scores, uint32_t n, uint32_t *pool);

/* 1 when item i is of one of s's kinds (or s names none). */
int shelf__scenario_kind_ok(const shelf__scenario *s, const shelf__catalogue *c, uint32_t i);

/* Adds items of pool[0..n_pool) (the best by score, in order) to the n_have
 * already in out until it holds n, greedily: the highest lambda * score -
 * (1 - lambda) * sim (sim 1 when an item in out shares its diversity
 * value), skipping items a cap has filled. Returns how many out holds. */
uint32_t shelf__rank_scenario_select(const shelf__rank_req *rq, const shelf__catalogue *cat, const float *scores,
                                     const uint32_t *pool, uint32_t n_pool, uint32_t n_have, uint32_t n, uint32_t *out);

/* 1 when condition e (over user. and ctx. only) holds for rq; NULL holds. */
int shelf__rank_condition(const shelf__rank_req *rq, const shelf__expr *e);

/* ---- promotions (promo.c) ------------------------------------------------------------------ */

/* Which of rq->scenario's promotions apply to this request (segment,
 * categories) into active[SHELF__SCN_PROMOS], and their items' indices
 * resolved (env->item_index) into w; items the sources did not score get
 * the lowest score so that the filters judge them. Returns how many apply. */
uint32_t shelf__rank_promo_prepare(const shelf__rank_env *env, const shelf__rank_req *rq, shelf__rank_work *w,
                                   float *scores, uint32_t N, uint8_t *active);
/* The slate of rq->n into w->top (w->tpromo marks the promotions' items)
 * from the scenario's scores: boosted promotions multiply the scores of as
 * many of their items as their budgets grant now; share promotions take
 * their slots at evenly spaced positions; the rest is chosen by
 * shelf__rank_scenario_select from pool. What a budget granted but the
 * slate did not use is given back. Returns the slate's length. */
uint32_t shelf__rank_promo_slate(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                                 shelf__rank_work *w, float *scores, uint32_t N, const uint8_t *active);

/* ---- its sources and their fusion (sources.c) --------------------------------------------- */

#define SHELF__RRF_DEPTH 1000 /* rrf: ranks past this count nothing */

/* 1 when s takes candidates from more than the deployed model (kind
 * deployed; NULL: none), so the sources stage runs. */
int shelf__scenario_multi(const shelf__scenario *s, const char *deployed);

/* Each source's scores of items 0..N into w->src (src_n x src_N; a model
 * source without a name takes scores, the deployment's), fused into scores
 * (w->src_lo / src_inv keep each source's scaling). 0, or the error of a
 * model that failed to score. */
int shelf__rank_sources(const shelf__rank_env *env, shelf__rank_req *rq, shelf__rank_work *w, float *scores,
                        uint32_t N, shelf_err *err);
/* The fusion of s->n_src score rows src (each N long) into out: weighted or
 * rrf (top lists in topbuf, SHELF__RRF_DEPTH long); each row's min into lo
 * (INFINITY when it proposes nothing) and 1 / span into inv. */
void shelf__rank_fuse(const shelf__scenario *s, const float *src, uint32_t N, float *out, uint32_t *topbuf,
                      float *lo, float *inv);
/* The source that gave item the largest weighted share (SHELF_NONE: none). */
uint32_t shelf__rank_item_source(const shelf__scenario *s, const float *src, uint32_t N, const float *lo,
                                 const float *inv, uint32_t item);
/* item's rank (1: first) among the items row v proposes; 0 when it does not. */
uint32_t shelf__rank_source_rank(const float *v, uint32_t N, uint32_t item);
/* "model:ease", "trending", ... into buf. */
const char *shelf__source_label(const shelf__scn_source *src, char *buf, size_t cap);

#endif
