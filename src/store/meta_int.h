/* meta_int.h: the store's internal calls, outside the public ABI (they go
 * through the same backend interface as store.h's, backend_int.h):
 * scenarios, the named JSON documents of the ranking room's placements. */
#ifndef SHELF_STORE_META_INT_H
#define SHELF_STORE_META_INT_H

#include <stdint.h>

#include "shelf/store.h"

/* Called per scenario in name order; non-zero stops the walk and is returned. */
typedef int (*shelf__scenario_cb)(void *ctx, const char *name, const char *doc, int64_t updated);

/* Stores (or replaces) scenario name's document doc, checked by the caller;
 * inside the caller's transaction if one is open. 0 or SHELF_ESTORE. */
int shelf__store_scenario_put(shelf_store *st, const char *name, const char *doc, int64_t updated);
/* *doc: a copy the caller frees with free(). 0, SHELF_ENOTFOUND, SHELF_ENOMEM or SHELF_ESTORE. */
int shelf__store_scenario_get(shelf_store *st, const char *name, char **doc, int64_t *updated);
/* 0, SHELF_ENOTFOUND when there is none, or SHELF_ESTORE. */
int shelf__store_scenario_delete(shelf_store *st, const char *name);
int shelf__store_scenario_foreach(shelf_store *st, shelf__scenario_cb cb, void *ctx);

/* Deletions (migration 5; store/deletions.c). The deletion of user
 * (is_user) or item ext: its index and time (unix seconds); 0,
 * SHELF_ENOTFOUND when none is recorded, or SHELF_ESTORE. The latest when
 * the id was deleted more than once. */
int shelf__store_deletion_find(shelf_store *st, int is_user, const char *ext, size_t len, uint32_t *idx, double *ts);
/* Deletions after unix time t: how many, and the time of the first (0: none). */
int shelf__store_deletions_since(shelf_store *st, double t, uint64_t *n, double *first);
/* What the store still holds of deleted user (is_user) or item idx: events
 * that refer to it and served slates (user) or slate rows showing it (item). */
int shelf__store_deletion_refs(shelf_store *st, int is_user, uint32_t idx, uint64_t *events, uint64_t *served);

/* Pacing (store/pacing.c). Impressions of items with this source
 * ("promotion:NAME") on scenario's slates served since unix time since. */
int shelf__store_promo_spent(shelf_store *st, const char *scenario, const char *source, int64_t since, int64_t *out);
/* Scenario's slates served in [since, until) by hour of the day (UTC) into out[24]. */
int shelf__store_served_hourly(shelf_store *st, const char *scenario, int64_t since, int64_t until, double *out);

/* Imports (migration 7; store/imports.c). The import of a file whose bytes
 * have SHA-256 sha: when (unix seconds) and how many events it stored; 0,
 * SHELF_ENOTFOUND when none is recorded, or SHELF_ESTORE. */
int shelf__store_import_find(shelf_store *st, const unsigned char sha[32], double *ts, uint64_t *events);
/* Records one (inside the importer's transaction); a second import of the
 * same bytes (allow_duplicates) replaces the row. 0 or SHELF_ESTORE. */
int shelf__store_import_record(shelf_store *st, const unsigned char sha[32], const char *path, uint64_t bytes,
                               uint64_t events);

#endif
