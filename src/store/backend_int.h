/* backend_int.h: the store's backend interface. The public shelf_store_*
 * functions (store.h) dispatch through it (api.c), so another database can
 * stand behind the same calls: SQLite implements it now (store.c, read.c,
 * rows.c, keys.c, served.c, search.c); a PostgreSQL backend will (the scale-out
 * issue). Every backend's handle begins with shelf__store_head. */
#ifndef SHELF_STORE_BACKEND_INT_H
#define SHELF_STORE_BACKEND_INT_H

#include "shelf/store.h"
#include "store/meta_int.h"
#include "store/search_int.h"

/* The operations, one row each: X(return type, name, (parameters),
 * (arguments)); shelf_store_<name> calls the backend's <name>. Besides
 * them a backend has open and close. */
#define SHELF__STORE_OPS(X) \
    X(int, schema_version, (shelf_store *st), (st)) \
    X(int, begin, (shelf_store *st), (st)) \
    X(int, commit, (shelf_store *st), (st)) \
    X(int, rollback, (shelf_store *st), (st)) \
    X(int, begin_read, (shelf_store *st), (st)) \
    X(int, begin_lazy, (shelf_store *st), (st)) \
    X(int, user_idx, (shelf_store *st, const char *ext, size_t len, int create, uint32_t *idx, int *created), (st, ext, len, create, idx, created)) \
    X(int, item_idx, (shelf_store *st, const char *ext, size_t len, int create, uint32_t *idx, int *created), (st, ext, len, create, idx, created)) \
    X(uint32_t, n_users, (shelf_store *st), (st)) \
    X(uint32_t, n_items, (shelf_store *st), (st)) \
    X(int, event_type, (shelf_store *st, const char *name, uint32_t *type, float *weight), (st, name, type, weight)) \
    X(int, add_event_type, (shelf_store *st, const char *name, float weight, uint32_t *type), (st, name, weight, type)) \
    X(const char *, event_type_name, (shelf_store *st, uint32_t type), (st, type)) \
    X(uint32_t, n_event_types, (shelf_store *st), (st)) \
    X(int, add_events, (shelf_store *st, const shelf_event *ev, size_t n), (st, ev, n)) \
    X(int, put_item, (shelf_store *st, const shelf_item *it, uint32_t *idx), (st, it, idx)) \
    X(int, item_add_attr, (shelf_store *st, uint32_t item, const char *name, size_t len), (st, item, name, len)) \
    X(int, put_user, (shelf_store *st, const shelf_user *u, uint32_t *idx), (st, u, idx)) \
    X(int, foreach_event, (shelf_store *st, uint64_t after_id, shelf_event_cb cb, void *ctx), (st, after_id, cb, ctx)) \
    X(uint64_t, last_event_id, (const shelf_store *st), (st)) \
    X(int, foreach_item, (shelf_store *st, shelf_item_cb cb, void *ctx), (st, cb, ctx)) \
    X(int, foreach_user, (shelf_store *st, shelf_user_cb cb, void *ctx), (st, cb, ctx)) \
    X(int, foreach_item_attr, (shelf_store *st, shelf_attr_cb cb, void *ctx, uint32_t *n_attrs), (st, cb, ctx, n_attrs)) \
    X(int, attr_name, (shelf_store *st, uint32_t attr, char *buf, size_t cap), (st, attr, buf, cap)) \
    X(int, user_ext, (shelf_store *st, uint32_t idx, char *buf, size_t cap), (st, idx, buf, cap)) \
    X(int, item_ext, (shelf_store *st, uint32_t idx, char *buf, size_t cap), (st, idx, buf, cap)) \
    X(int, get_item, (shelf_store *st, uint32_t idx, shelf_item_cb cb, void *ctx), (st, idx, cb, ctx)) \
    X(int, get_user, (shelf_store *st, uint32_t idx, shelf_user_cb cb, void *ctx), (st, idx, cb, ctx)) \
    X(int, item_clear_attrs, (shelf_store *st, uint32_t item), (st, item)) \
    X(int, delete_user, (shelf_store *st, const char *ext, size_t len, uint32_t *idx), (st, ext, len, idx)) \
    X(int, delete_item, (shelf_store *st, const char *ext, size_t len, uint32_t *idx), (st, ext, len, idx)) \
    X(int, user_deleted, (shelf_store *st, uint32_t idx), (st, idx)) \
    X(int, key_create, (shelf_store *st, shelf_scope scope, const char *name, char *key_out, int64_t *id), (st, scope, name, key_out, id)) \
    X(int, key_revoke, (shelf_store *st, int64_t id), (st, id)) \
    X(int, foreach_key, (shelf_store *st, shelf_key_cb cb, void *ctx), (st, cb, ctx)) \
    X(int, log_slate, (shelf_store *st, const shelf_slate *s), (st, s)) \
    X(int, served_foreach, (shelf_store *st, int64_t since_ts, shelf_slate_cb cb, void *ctx), (st, since_ts, cb, ctx)) \
    X(int, stats_get, (shelf_store *st, shelf_store_stats *out), (st, out))

/* The internal operations (store/meta_int.h): not in the public ABI, the
 * same dispatch as shelf__store_<name>. */
#define SHELF__STORE_INT_OPS(X) \
    X(int, scenario_put, (shelf_store *st, const char *name, const char *doc, int64_t updated), (st, name, doc, updated)) \
    X(int, scenario_get, (shelf_store *st, const char *name, char **doc, int64_t *updated), (st, name, doc, updated)) \
    X(int, scenario_delete, (shelf_store *st, const char *name), (st, name)) \
    X(int, scenario_foreach, (shelf_store *st, shelf__scenario_cb cb, void *ctx), (st, cb, ctx)) \
    X(int, deletion_find, (shelf_store *st, int is_user, const char *ext, size_t len, uint32_t *idx, double *ts), \
      (st, is_user, ext, len, idx, ts)) \
    X(int, deletions_since, (shelf_store *st, double t, uint64_t *n, double *first), (st, t, n, first)) \
    X(int, deletion_refs, (shelf_store *st, int is_user, uint32_t idx, uint64_t *events, uint64_t *served), \
      (st, is_user, idx, events, served)) \
    X(int, promo_spent, (shelf_store *st, const char *scenario, const char *source, int64_t since, int64_t *out), \
      (st, scenario, source, since, out)) \
    X(int, served_hourly, (shelf_store *st, const char *scenario, int64_t since, int64_t until, double *out), \
      (st, scenario, since, until, out)) \
    X(int, search, (shelf_store *st, const shelf__search_q *q, shelf__search_res *out), (st, q, out)) \
    X(int, import_find, (shelf_store *st, const unsigned char sha[32], double *ts, uint64_t *events), \
      (st, sha, ts, events)) \
    X(int, import_record, (shelf_store *st, const unsigned char sha[32], const char *path, uint64_t bytes, \
                           uint64_t events), (st, sha, path, bytes, events))

#define SHELF__STORE_OP_FIELD(ret, name, params, args) ret(*name) params;
typedef struct shelf__store_backend {
    const char *name;
    int (*open)(const char *path, unsigned flags, shelf_store **out, shelf_err *err);
    void (*close)(shelf_store *st);
    SHELF__STORE_OPS(SHELF__STORE_OP_FIELD)
    SHELF__STORE_INT_OPS(SHELF__STORE_OP_FIELD)
} shelf__store_backend;

/* The head of every backend's handle: its backend and its error slot. */
typedef struct shelf__store_head {
    const shelf__store_backend *be;
    shelf_err err;
} shelf__store_head;

/* The SQLite backend and its operations (shelf__sqlite_<name>). */
extern const shelf__store_backend shelf__sqlite_backend;
int shelf__sqlite_open(const char *path, unsigned flags, shelf_store **out, shelf_err *err);
void shelf__sqlite_close(shelf_store *st);
#define SHELF__STORE_OP_DECL(ret, name, params, args) ret shelf__sqlite_##name params;
SHELF__STORE_OPS(SHELF__STORE_OP_DECL)
SHELF__STORE_INT_OPS(SHELF__STORE_OP_DECL)

#endif
