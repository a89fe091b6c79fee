/* gen.h: a synthetic shop, deterministic by seed: latent user tastes,
 * categories, brands and prices, a Zipf-like popularity skew, sessions in
 * time, a view -> cart -> purchase funnel, and items added over time. */
#ifndef SHELF_GEN_H
#define SHELF_GEN_H

#include "shelf/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shelf_gen_opts {
    uint64_t seed;
    uint32_t n_users, n_items;
    uint64_t n_events;      /* total events (all types), exactly; 0 allowed */
    uint32_t n_categories;  /* top-level categories (each has 2..4 sub-categories) */
    uint32_t n_brands;
    uint32_t n_factors;     /* latent taste dimensions */
    double zipf;            /* popularity skew exponent (0: uniform) */
    int64_t start_ts;       /* unix seconds of the first day */
    uint32_t days;          /* time span */
    double late_items;      /* share of items added after the start, over time */
    int progress;           /* progress bar on a terminal */
} shelf_gen_opts;

/* Small defaults (tests): seed 42, 200 users, 100 items, 5,000 events, 8
 * categories, 20 brands, 16 factors, zipf 1.0, start 2026-01-01, 30 days,
 * late_items 0.2, no progress bar. */
SHELF_API void shelf_gen_opts_init(shelf_gen_opts *o);

/* What both writers produce, byte for byte the same for the same options
 * and build, whatever the thread count (one RNG stream, single-threaded):
 * - items "i0".."i<n_items-1>": kind product (about 95%), content or
 *   campaign; title "Brand7 Skin Care item 123"; category "Beauty/Skin Care";
 *   brand "Brand<k>" (none for content); price for products (log-normal per
 *   category); created before start_ts, or for the last late_items share
 *   (increasing with the index) spread over the span. No event touches an
 *   item before its created time.
 * - users "u0".."u<n_users-1>" with attributes
 *   {"segment":"a|b|c","region":"north|...","device":"mobile|desktop|tablet"}.
 * - events of the built-in types view, click, cart, purchase, rating, in
 *   non-decreasing ts order overall (ties: lower user first). Each cart
 *   follows a view of the same item by the same user in the same session,
 *   each purchase a cart; click follows a view of a content/campaign item;
 *   rating (value 1..5) follows a purchase or, rarely, a view. Values: cart
 *   1, purchase quantity 1..3, view and click 0. Heavy users may run a little
 *   past the span when their sessions cannot fit in it.
 * Cost: O((n_users + n_items) * n_factors) memory, never O(events); about
 * 0.7 us per event (10M events to CSV: 7 s on one core with 200k users and
 * 50k items, 13 s with 1M users and 200k items, where cache misses rule).
 * Errors: SHELF_EINVAL for bad options (the message names the option),
 * SHELF_ENOMEM, SHELF_EIO. Thread safety: none shared; each call is
 * independent. */

/* Writes the shop (items, users, events) into st in one transaction (st must
 * not be inside one); items and users get store indices in the order above
 * (after any rows already there). On error the store is as before and the
 * message is on st's handle. */
SHELF_API int shelf_gen_store(shelf_store *st, const shelf_gen_opts *o);

/* Writes the same shop as CSV files with headers: events
 * (user,item,type,value,ts) and, if items_path is not NULL, the items
 * (id,kind,title,category,brand,price,created; empty brand/price when none).
 * Ids are the external ids the store writer uses. On error err (may be NULL)
 * names the file, and partial files are removed. */
SHELF_API int shelf_gen_csv(const char *events_path, const char *items_path, const shelf_gen_opts *o,
                  shelf_err *err);

#ifdef __cplusplus
}
#endif
#endif
