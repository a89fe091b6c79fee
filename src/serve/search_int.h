/* search_int.h: customer-service answers (serve/search.c, docs/search.md):
 * the catalogue's text matches of a query (store/search_int.h), re-ranked
 * by the shopper's profile through the ranking room. One call for the
 * server's POST /v1/search and for `shelf search` (an engine, rank.h). */
#ifndef SHELF_SERVE_SEARCH_INT_H
#define SHELF_SERVE_SEARCH_INT_H

#include "shelf/rank.h"
#include "store/search_int.h"

#include <cjson/cJSON.h>

#define SHELF__SEARCH_POOL 200          /* the best text matches that the profile re-ranks */
#define SHELF__SEARCH_MAX_N 100         /* answers of one search */
#define SHELF__SEARCH_MAX_QUERY 1000    /* bytes of a query */
#define SHELF__SEARCH_PROFILE_WEIGHT 0.5 /* the profile's share of the final score by default */

typedef struct shelf__search_req {
    const char *user;     /* external id; NULL, unknown or without a model profile: the text order */
    const char *query;    /* UTF-8 */
    const char *kind;     /* NULL: any */
    uint32_t n;           /* 1..SHELF__SEARCH_MAX_N */
    double profile_weight; /* 0..1 */
    int html;             /* snippets as HTML with <mark> (else plain with [ ]) */
} shelf__search_req;

typedef struct shelf__search_item {
    const shelf__search_hit *hit; /* id, kind, title, snippet (in the answer's text) */
    float score;         /* the final score: (1 - w) text + w profile, each min-max scaled over the matches */
    float text_score;    /* the store's relevance (-bm25, or the scan's count) */
    float profile_score; /* the model's score of the shopper for it (has_profile) */
    int has_profile;
} shelf__search_item;

typedef struct shelf__search_answer {
    shelf__search_res text;    /* the store's matches, text order */
    shelf__search_item *item;  /* the answer, best first */
    size_t n;
    int known_user;            /* the user is one the engine knows */
    int profiled;              /* the model scored the user over the matches */
} shelf__search_answer;

/* The answer to q into out (free it with shelf__search_answer_free, also
 * after a failure). SHELF_EINVAL (a query without a word, n or weight out
 * of range), SHELF_ENOMEM, SHELF_ESTORE; err says which. Thread-safe: the
 * store's search runs under the engine's store lock. */
int shelf__search(shelf_engine *g, const shelf__search_req *q, shelf__search_answer *out, shelf_err *err);
void shelf__search_answer_free(shelf__search_answer *a); /* accepts NULL */
/* One answer as the JSON object of the HTTP answer's items (id, score,
 * text_score, profile_score or null, kind, title, snippet); the caller
 * owns it (cJSON_Delete), NULL when out of memory. */
cJSON *shelf__search_item_json(const shelf__search_item *it);

#endif
