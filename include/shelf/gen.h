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
    uint64_t n_events;      /* total events (all types), approximately exact */
    uint32_t n_categories;  /* top-level categories (each has sub-categories) */
    uint32_t n_brands;
    uint32_t n_factors;     /* latent taste dimensions */
    double zipf;            /* popularity skew exponent (0: uniform) */
    int64_t start_ts;       /* unix seconds of the first day */
    uint32_t days;          /* time span */
    double late_items;      /* share of items added after the start, over time */
    int progress;           /* progress bar on a terminal */
} shelf_gen_opts;

void shelf_gen_opts_init(shelf_gen_opts *o); /* small defaults (tests) */

/* Writes the shop (items, users, events) into st in one transaction.
 * Errors go to st's handle. */
int shelf_gen_store(shelf_store *st, const shelf_gen_opts *o);

/* Writes the same shop as CSV files with headers: events
 * (user,item,type,value,ts), and if items_path is not NULL the items
 * (id,kind,title,category,brand,price,created). Errors name the file. */
int shelf_gen_csv(const char *events_path, const char *items_path, const shelf_gen_opts *o,
                  shelf_err *err);

#ifdef __cplusplus
}
#endif
#endif
