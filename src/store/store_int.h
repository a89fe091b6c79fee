/* store_int.h: internals of the SQLite store shared by its files. */
#ifndef SHELF_STORE_INT_H
#define SHELF_STORE_INT_H

#include "shelf/store.h"
#include "store/backend_int.h"

#include <sqlite3.h>

enum {
    STMT_USER_INS, STMT_ITEM_INS, STMT_EVENT_INS, STMT_EVENTS32_INS, STMT_ITEM_UPD, STMT_USER_UPD,
    STMT_ATTR_INS, STMT_ITEM_ATTR_INS, STMT_TYPE_INS, STMT_SERVED_INS, STMT_SERVED_ITEM_INS, STMT_SERVED_ITEMS8_INS, STMT_SAVEPOINT, STMT_ROLLBACK_TO, STMT_RELEASE,
    STMT_USER_EXT, STMT_ITEM_EXT, STMT_ATTR_NAME,
    N_STMT
};

typedef struct event_type {
    char *name;
    float weight;
} event_type;

struct shelf_store {
    shelf__store_head head; /* first: the backend and the error slot (backend_int.h) */
    sqlite3 *db;
    unsigned flags;
    int in_tx;
    int lazy; /* the open transaction commits without a sync (begin_lazy) */
    uint64_t last_event_id; /* id of the last event this handle inserted (0: none) */
    uint64_t tx_event_mark; /* last_event_id when the open transaction began */
    sqlite3_stmt *stmt[N_STMT];
    /* caches of the id maps; NULL until first use, dropped on rollback */
    shelf_strmap *users, *items, *attrs;
    uint32_t n_users, n_items, n_attrs;
    /* what the caches were last synced with (store.c: other connections) */
    int64_t data_version;
    uint32_t user_tombs, item_tombs; /* tombstone rows counted in the loaded maps */
    int counts_valid;
    event_type *types;
    uint32_t n_types;
    double busy_since;   /* when the lock wait under way began (busy_wait) */
    double busy_limit_s; /* how long a lock wait goes on (SHELF_BUSY_WAIT_S) */
};

int shelf__store_latest(void);
const char *shelf__store_migration(int version);
/* First byte of a deleted row's ext_id ("\x01deleted:<idx>"). */
#define SHELF__TOMBSTONE_BYTE '\x01'
/* Marks ext as gone in the user (user=1) or item id-map cache, after its row
 * was renamed to a tombstone: lookups then miss, and create gives a new index. */
void shelf__store_forget_ext(shelf_store *st, int user, const char *ext, size_t len);
/* Notes the deletion of user (is_user) or item ext (len bytes), index idx,
 * now, in the deletions table (deletions.c): the id as its SHA-256 only. */
int shelf__sqlite_record_deletion(shelf_store *st, int is_user, const char *ext, size_t len, uint32_t idx);
/* Sets an SQLite failure on the handle: "store: <what>: <sqlite message>". */
int shelf__store_sqlfail(shelf_store *st, const char *what);
/* Runs step(st, arg) as one unit: in a transaction of its own when none is
 * open (rolled back on failure), else under a savepoint of the caller's
 * transaction, so that a failed step leaves none of its rows behind and the
 * caller's transaction goes on. Returns step's result. */
int shelf__store_atomic(shelf_store *st, int (*step)(shelf_store *st, const void *arg), const void *arg);

/* The item of row s whose columns c.. are ext_id, kind, title, text,
 * category, brand, price, available, attributes, created (read.c). */
void shelf__store_item_of_row(sqlite3_stmt *s, int c, shelf_item *it);

#endif
