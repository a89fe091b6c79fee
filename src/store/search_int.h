/* search_int.h: text search over the catalogue (store/search.c, migration 6):
 * the items' title and text in an FTS5 index with the trigram tokenizer,
 * kept in step with the items table by triggers. Internal (outside the
 * public ABI); it goes through the store's backend like meta_int.h's calls. */
#ifndef SHELF_STORE_SEARCH_INT_H
#define SHELF_STORE_SEARCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "shelf/store.h"

/* The trigram tokenizer matches nothing shorter than this many characters:
 * a query without such a word is answered by a scan (SHELF__SEARCH_SCAN). */
#define SHELF__SEARCH_MIN_CHARS 3
#define SHELF__SEARCH_MAX_LIMIT 1000

typedef enum {
    SHELF__SEARCH_FTS = 1, /* the FTS5 index, ranked by bm25 */
    SHELF__SEARCH_SCAN = 2 /* every query word under 3 characters: a substring scan */
} shelf__search_method;

typedef struct shelf__search_q {
    const char *query;  /* UTF-8, NUL-terminated; words split at white space */
    const char *kind;   /* only items of this kind; NULL: any */
    uint32_t limit;     /* the best this many, 1..SHELF__SEARCH_MAX_LIMIT */
    int html;           /* snippet: the text HTML-escaped (& < > " '), matches in <mark>...</mark>;
                         * else plain text with matches in [ ] */
} shelf__search_q;

/* One match. Its strings live in the hit's own allocation (buf). */
typedef struct shelf__search_hit {
    uint32_t item;      /* dense index */
    float score;        /* text relevance, higher is better: -bm25 (FTS) or the scan's hit count */
    const char *id, *kind, *title, *snippet; /* title "" when none */
    char *buf;
} shelf__search_hit;

typedef struct shelf__search_res {
    shelf__search_hit *hit; /* best first: score, then lower index */
    size_t n;
    shelf__search_method method;
} shelf__search_res;

/* The available items that match q->query, best first, at most q->limit,
 * into *out (the caller frees it with shelf__search_res_free). A query made
 * only of FTS syntax (quotes, *, :, parentheses, AND/OR/NOT, -) is text like
 * any other: it never fails to parse. SHELF_EINVAL: no word in the query,
 * or a limit out of range; SHELF_ENOMEM; SHELF_ESTORE. Inside the caller's
 * transaction if one is open; not thread-safe on one handle. */
int shelf__store_search(shelf_store *st, const shelf__search_q *q, shelf__search_res *out);
void shelf__search_res_free(shelf__search_res *r); /* accepts NULL and a zeroed result */

#endif
