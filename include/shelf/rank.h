/* rank.h: one call turns a request into a slate. An engine is what the
 * server ranks with, without HTTP: a store's users, items and popularity
 * and the newest model bundle; shelf_rank asks the ranking room (the model
 * or the fallback chain, the business filters, the top n, reasons) for one
 * slate. `shelf recommend` is this call; `shelf serve` answers its slate
 * routes through the same room. */
#ifndef SHELF_RANK_H
#define SHELF_RANK_H

#include "shelf/serve.h"
#include "shelf/slate.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shelf_engine shelf_engine;

/* Opens an engine on o->store with the newest bundle of o->bundle (NULL:
 * popularity only). Of the options only store, bundle, pop_half_life_s,
 * session_memory, cold_neighbours, exclude_seen and fallback count. The
 * engine reads the store at open (what comes later is not seen). */
SHELF_API int shelf_engine_open(const shelf_server_opts *o, shelf_engine **out, shelf_err *err);
SHELF_API void shelf_engine_close(shelf_engine *g); /* accepts NULL */

/* What to rank. Ids are external ids. Exactly one of: user (a known or
 * unknown shopper), items (an anonymous session; user NULL), similar_to (the
 * items that go with one), popular (what is popular now). */
typedef struct shelf_rank_request {
    const char *user;
    const char *const *items; /* the session, oldest first */
    const char *const *types; /* their event types; NULL: views */
    size_t n_items;
    const char *similar_to;
    int popular;
    uint32_t n;                       /* slate size; 0: 10 */
    const char *kind, *category;      /* filters; NULL: any */
    const char *const *exclude;       /* never shown */
    size_t n_exclude;
    const char *exclude_seen;         /* "TYPE[:DURATION],..."; NULL: the engine's */
    const char *const *context;       /* "key=value" of the shopper (segment=b) */
    size_t n_context;
    int explain;                      /* reasons on every item */
    const char *scenario, *variant;   /* copied to the slate; scenario: a stored one's stages apply
                                       * (docs/scenarios.md; SHELF_ENOTFOUND when the store has none) */
    double blend_popularity;          /* 0: the engine's blend weight (serve.h) */
} shelf_rank_request;

/* The slate for rq into out (items as dense indices; shelf_engine_item_id
 * names them). SHELF_ENOTFOUND: similar_to is unknown; SHELF_EINVAL: a bad
 * exclude_seen or a request with none of the four. Unknown session and
 * exclude ids are skipped (out->n_skipped counts the session's). */
SHELF_API int shelf_rank(shelf_engine *g, const shelf_rank_request *rq, shelf_slate *out, shelf_err *err);
/* Slates for the n requests qs (out[k], rc[k] and err[k] as shelf_rank
 * gives for qs[k]), ranked in parallel (OpenMP). Known shoppers' histories
 * are scored together, batch at a time, where the model can (the
 * transformer: one matrix product of their profiles with the items): the
 * scores agree with shelf_rank's to rounding; batch 0 scores each alone, as
 * shelf_rank does. Returns 0 when every rc[k] is 0. Bulk work (shelf export
 * --users): a model reload meanwhile makes the batch's scores unused. */
SHELF_API int shelf_rank_many(shelf_engine *g, const shelf_rank_request *qs, size_t n, size_t batch,
                              shelf_slate *out, int *rc, shelf_err *err);
/* The external id of item into buf ("" if retired); returns buf. */
SHELF_API const char *shelf_engine_item_id(shelf_engine *g, uint32_t item, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
