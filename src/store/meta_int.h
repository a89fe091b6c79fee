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

#endif
