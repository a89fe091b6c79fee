/* rank_int.h: the ranking room (DESIGN.md): one call, shelf__rank, turns a
 * request into a slate through its stages, each its own file:
 *   candidates.c  the model's scores (its session of the shopper, or its
 *                 score of the history), the context's, the fallback's
 *   filter.c      catalogue (kind, category subtree, availability, the
 *                 items the model did not learn scored by their content
 *                 neighbours), explicit candidates, exclusions; seen.c
 *   blend.c       the model's scores mixed with the trending popularity
 *                 (a weight; 0 leaves them as they are)
 *   rank.c        the rerank hooks (none yet), then the top n, topped up
 *                 from the fallback when the filters leave too few
 *   explain.c     each item's reason
 *   expr.c        the expression language of scenario filters and
 *                 boosters (expr_int.h, docs/expressions.md)
 * The engine that owns the data (the server's live state) hands the room a
 * shelf__rank_env: the model generation and callbacks for what it keeps. */
#ifndef SHELF_RANK_INT_H
#define SHELF_RANK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "shelf/core.h"
#include "shelf/model.h"
#include "shelf/slate.h"
#include "shelf/coldfill.h"

/* ---- exclude-seen ---------------------------------------------------------------
 * Which past events hide an item: per event type, a window (0: ever). Spec:
 * a comma list "TYPE[:DURATION]", DURATION an integer with unit s, m, h or
 * d ("purchase" = purchased ever; "purchase,view:7d" also what was viewed in
 * the last 7 days); "" or "none": nothing is hidden. */
#define SHELF_RANK_SEEN_MAX 16

/* SHELF__SIMD(omp simd ...): a loop over every item written without
 * branches, vectorised (files built with -fno-trapping-math, CMakeLists) */
#ifdef _OPENMP
#define SHELF__SIMD(x) _Pragma(#x)
#else
#define SHELF__SIMD(x)
#endif
typedef struct shelf__seen {
    uint32_t n;
    uint32_t type[SHELF_RANK_SEEN_MAX];
    int64_t window_s[SHELF_RANK_SEEN_MAX]; /* 0: ever */
} shelf__seen;

/* "30d" -> seconds: a positive integer with unit s, m, h or d (len bytes
 * of s); 0, or -1 when it is not one. */
int shelf__parse_duration(const char *s, size_t len, int64_t *out);

/* 1 when category path cat is c (cl bytes) itself or one of its sub-paths:
 * c followed by a separator ('>', '/', '|', spaces allowed before it). */
int shelf__cat_under(const char *cat, const char *c, size_t cl);

/* Parses spec against the store's event type names; err names the bad
 * part. 0 or SHELF_EINVAL. */
int shelf__seen_parse(shelf__seen *out, const char *spec, char *const *type_names, uint32_t n_types, shelf_err *err);

/* scores[item] = -inf for each history event (items[k], types[k], ts[k])
 * that a rule covers at time now (an event with ts 0, time unknown, counts
 * as inside every window). Items >= n are ignored. */
void shelf__seen_filter(float *scores, uint32_t n, const shelf__seen *seen, const uint32_t *items,
                        const uint16_t *types, const int64_t *ts, size_t n_hist, int64_t now);

/* ---- fallback ---------------------------------------------------------------------
 * Sources, in order of precedence: "trending" (popularity with the time
 * decay) and "popular" (all-time popularity). Spec: a comma list of them,
 * default "trending,popular". */
typedef enum { SHELF__FB_TRENDING = 0, SHELF__FB_POPULAR = 1, SHELF__FB_N } shelf__fb_source;
typedef struct shelf__fallback {
    uint32_t n;
    shelf__fb_source src[SHELF__FB_N];
} shelf__fallback;

int shelf__fallback_parse(shelf__fallback *out, const char *spec, shelf_err *err);

/* scores[i] for i < n from the sources' values vals[source][i] (>= 0): each
 * source's share of its total, the first source weighted 1, the next 1e-3,
 * then 1e-6, plus a floor of 1e-9 (so every score is > 0 and an item with
 * no event anywhere still ranks after every item with one). */
void shelf__fallback_scores(float *scores, uint32_t n, const shelf__fallback *fb, const double *const vals[SHELF__FB_N]);

struct shelf__rank_env;
struct shelf__rank_req;
/* The fallback's scores of items 0..N for a request: its scenario's own
 * order when it names one, else the engine's chain. 0 or SHELF_ENOMEM. */
int shelf__rank_fallback(const struct shelf__rank_env *env, const struct shelf__rank_req *rq, float *scores, uint32_t N);

/* ---- the engine's side ---------------------------------------------------------------
 * A view of the catalogue, valid between catalogue_read and catalogue_done
 * (the engine holds its items lock in between). */
typedef struct shelf__catalogue {
    uint32_t n_items;       /* items 0..n_items have the fields below */
    const uint8_t *ok;      /* available and not retired */
    const uint16_t *kind;   /* index into kinds */
    const uint32_t *cat;    /* index into cats, or SHELF_NONE */
    const uint32_t *brand;  /* a brand's number, or SHELF_NONE; NULL: no brands */
    char *const *brands;    /* brand names by number (NULL: none known) */
    uint32_t n_brands;
    const float *price;     /* NaN: none; NULL: no prices */
    const int64_t *created; /* unix seconds, 0 unknown; NULL: none */
    char *const *title;     /* NULL entries: none; NULL: no titles */
    const float *vecs;      /* the model's item vectors (n_vecs rows of dim), or NULL (diversity by embedding) */
    uint32_t n_vecs, dim;
    char *const *ext;       /* external ids (NULL: retired) */
    char *const *kinds;
    uint32_t n_kinds;
    char *const *cats;
    uint32_t n_cats;
    const shelf_coldfill *cf; /* content neighbours of the items the model did not learn, or NULL */
} shelf__catalogue;

#define SHELF__RANK_CTX 8 /* context values a request carries at most */

typedef struct shelf__rank_env {
    void *ctx;                  /* the engine's, passed to every callback */
    const shelf_model *model;   /* NULL: popularity only */
    unsigned caps;              /* the model's SHELF_CAP_* */
    uint64_t gen;               /* the model generation (sessions of another are begun anew) */
    char *const *type_names;    /* event types, for explanations */
    uint32_t n_types;
    const shelf__seen *seen;    /* the deployment's exclude-seen rules */
    float blend_popularity;     /* the deployment's blend weight (blend.c) */
    void (*catalogue_read)(void *ctx, shelf__catalogue *view);
    void (*catalogue_done)(void *ctx);
    /* decayed popularity of items 0..n (no event: 0) */
    void (*pop_scores)(void *ctx, float *scores, uint32_t n);
    /* the fallback chain's scores of items 0..n, all > 0 (fallback.c) */
    void (*fallback_scores)(void *ctx, float *scores, uint32_t n);
    /* popularity among shoppers with these context values; 0 when none has
     * an event yet (scores untouched) */
    int (*context_scores)(void *ctx, const uint16_t *vals, uint32_t n_vals, float *scores, uint32_t n);
    /* shelf_ctx_hash of each context value (for models with SHELF_CAP_CONTEXT) */
    void (*context_hashes)(void *ctx, const uint16_t *vals, uint32_t n_vals, uint32_t *out);
    /* scenario sources (sources.c); NULL when the engine has none of them:
     * all-time popularity of items 0..n (else the trending one is used) */
    void (*popular_scores)(void *ctx, float *scores, uint32_t n);
    /* models loaded beside the deployment's, which model sources name by kind */
    const shelf_model *const *peers;
    uint32_t n_peers;
    /* the promotions' budgets and pacing (pacing_int.h); NULL: unlimited */
    struct shelf__ledger *ledger;
    /* the item with this external id, or SHELF_NONE (called outside catalogue_read) */
    uint32_t (*item_index)(void *ctx, const char *ext);
} shelf__rank_env;

/* A shopper's session of the model (SHELF_CAP_SESSION), kept by the engine
 * beside the shopper and handed to the room under the shopper's lock. */
typedef struct shelf__sess_slot {
    shelf_session *sess;
    uint64_t gen;     /* model generation it belongs to */
    size_t n;         /* events of the history (those the model knows) it covers */
    size_t bytes;     /* what it holds */
    int stale;        /* an event arrived out of time order: begin anew */
} shelf__sess_slot;

/* Frees the slot's session; returns the bytes it held. */
size_t shelf__sess_drop(shelf__sess_slot *slot);

typedef enum {
    SHELF__RANK_SHOPPER, /* a known user's or an anonymous session's slate */
    SHELF__RANK_SIMILAR, /* the items that go with one item */
    SHELF__RANK_POPULAR  /* what is popular now (items with recent events only) */
} shelf__rank_mode;

typedef struct shelf__rank_req {
    shelf__rank_mode mode;
    uint32_t user;                /* dense user index or SHELF_NONE */
    const uint32_t *items;        /* the history, oldest first (catalogue items) */
    const uint16_t *types;        /* or NULL */
    const int64_t *ts;            /* or NULL */
    size_t n_hist;
    shelf__sess_slot *slot;       /* the user's session slot, or NULL */
    const float *given;           /* the model's scores of this history, made already (shelf_rank_many:
                                   * env->model->n_items of them), or NULL: the model is asked */
    uint32_t anchor;              /* SIMILAR: the item */
    uint16_t ctx[SHELF__RANK_CTX]; /* context values (the engine's numbering) */
    uint32_t n_ctx;
    uint32_t n;                   /* slate size */
    const char *kind, *category;  /* filters; NULL or "": any */
    int explain;
    const uint32_t *exclude;      /* items never shown */
    size_t n_exclude;
    const uint32_t *candidates;   /* only these may be shown (NULL: all) */
    size_t n_candidates;
    const shelf__seen *seen;      /* NULL: the deployment's */
    const struct shelf__scenario *scenario; /* its stages (rerank.c), or NULL */
    const char *const *ctx_kv;    /* the request's context as "key=value" (ctx.NAME in expressions) */
    size_t n_ctx_kv;
    const char *const *user_kv;   /* the shopper's attributes as "key=value" (user.NAME) */
    size_t n_user_kv;
    const uint32_t *shown;        /* items shown to the shopper lately, and when (a scenario's rotation) */
    const int64_t *shown_ts;
    size_t n_shown;
    float blend_popularity;       /* NaN: the deployment's */
    int sources_skip_history;     /* every source leaves the history out before fusion (eval) */
    int64_t now;                  /* unix seconds */
    /* out: the change of the slot's session memory, and whether it is new */
    long long sess_delta;
    int sess_new;
} shelf__rank_req;

/* Fills out (rec_id, ts, user, model, source, items with score, position,
 * source, propensity 1, reasons when asked) for rq. scenario and variant
 * are the caller's to set. Safe from many threads at once. */
int shelf__rank(const shelf__rank_env *env, shelf__rank_req *rq, shelf_slate *out, shelf_err *err);

/* ---- stages (each file's contract) ------------------------------------------------------ */
/* Per-thread work space of the room. */
typedef struct shelf__rank_work {
    float *scores;
    size_t scap;
    uint32_t *kitem; /* the history events the model knows */
    uint16_t *ktype;
    int64_t *kts;
    size_t kcap;
    uint32_t *top;
    int16_t *tpromo; /* [tcap] the promotion that placed top[k], or -1 */
    size_t tcap;
    uint64_t rng[2];
    float *pop;      /* [scap] a scenario's popularity */
    float *src;      /* a scenario's sources' scores, src_n x src_N (sources.c) */
    size_t src_cap;
    uint32_t src_n, src_N;
    float src_lo[8], src_inv[8]; /* each source's min and 1 / span (shelf__rank_fuse) */
    uint32_t *rtop;  /* [SHELF__RRF_DEPTH] */
    uint32_t *cand;  /* a scenario's candidates (rerank.c) */
    size_t ccap;
    uint32_t n_cand; /* left after shelf__rank_scenario_scores */
    int64_t fresh_ref; /* the newest candidate's time there (freshness; 0: none) */
    uint64_t *skey;  /* seen(): the history's (item, type) table (rerank.c) */
    int64_t *sts;
    size_t scap_seen;
    uint32_t *pitem; /* the promotions' items (promo.c): promotion p's are pitem[poff[p]..poff[p+1]) */
    size_t pcap;
    uint32_t n_pitem, poff[9];
    uint32_t *hitem; /* the engine's copy of a shopper's history (its to grow) */
    uint16_t *htype;
    int64_t *hts;
    size_t hcap;
} shelf__rank_work;

/* This thread's work space with room for n_scores scores and k top items
 * (grown, never shrunk; freed when the thread ends); NULL: out of memory. */
shelf__rank_work *shelf__rank_work_get(size_t n_scores, size_t k);

/* Room for n source scores (and the RRF top list) in w: 0 or SHELF_ENOMEM. */
int shelf__rank_work_sources(shelf__rank_work *w, size_t n);
/* Room for n promotion items in w->pitem: 0 or SHELF_ENOMEM. */
int shelf__rank_work_pitems(shelf__rank_work *w, size_t n);

/* candidates.c: model m's scores of a history into out[0..N) (items m did
 * not learn: -inf); popularity without a model. 1: neither the user nor any
 * item of the history is known to m (out untouched). */
/* Keeps, in place and in order, the events of items[0..n) (with types and
 * ts, either may be NULL) whose item the model knows (< I); their count. */
size_t shelf__rank_known_only(uint32_t I, uint32_t *items, uint16_t *types, int64_t *ts, size_t n);
int shelf__rank_model_scores(const shelf__rank_env *env, const shelf_model *m, shelf__rank_work *w, float *out,
                             uint32_t N, uint32_t user, const uint32_t *items, const uint16_t *types,
                             const int64_t *ts, size_t n, int64_t now, shelf_err *err);
/* candidates.c: scores[0..N) and the slate's source ("model", "context",
 * "popular", "popularity"). */
int shelf__rank_candidates(const shelf__rank_env *env, shelf__rank_req *rq, shelf__rank_work *w, uint32_t N,
                           const char **source, shelf_err *err);
/* filter.c: -inf for what may not be shown. cold: the items the model did
 * not learn first get their content neighbours' scores. */
void shelf__rank_filter(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                        float *scores, uint32_t N, int cold);
/* blend.c: scores[i] (finite ones) = z(score) + weight * z(log(1 +
 * trending popularity)); weight 0 leaves them. 0 or SHELF_ENOMEM. */
int shelf__rank_blend(const shelf__rank_env *env, float weight, float *scores, uint32_t N);
/* explain.c: reason of slate item it (reason_item, reason_weight, reason). */
void shelf__rank_explain(const shelf__rank_env *env, const shelf__rank_req *rq, const shelf__catalogue *cat,
                         const char *source, shelf_slate_item *it);

#endif
