/* rank_int.h: the first stages of the ranking room (DESIGN.md): the
 * exclude-seen filter and the fallback scores for a shopper without usable
 * history. The server calls them today; shelf_rank will own them. */
#ifndef SHELF_RANK_INT_H
#define SHELF_RANK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "shelf/core.h"

/* ---- exclude-seen ---------------------------------------------------------------
 * Which past events hide an item: per event type, a window (0: ever). Spec:
 * a comma list "TYPE[:DURATION]", DURATION an integer with unit s, m, h or
 * d ("purchase" = purchased ever; "purchase,view:7d" also what was viewed in
 * the last 7 days); "" or "none": nothing is hidden. */
#define SHELF_RANK_SEEN_MAX 16
typedef struct shelf__seen {
    uint32_t n;
    uint32_t type[SHELF_RANK_SEEN_MAX];
    int64_t window_s[SHELF_RANK_SEEN_MAX]; /* 0: ever */
} shelf__seen;

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

#endif
