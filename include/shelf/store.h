/* store.h: the embedded SQLite store (WAL mode, numbered migrations): items,
 * users, events, event types, attributes, the served log (whole slates,
 * shelf/slate.h) and the id maps from external string ids to dense uint32
 * indices. */
#ifndef SHELF_STORE_H
#define SHELF_STORE_H

#include "shelf/core.h"
#include "shelf/slate.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shelf_store shelf_store;

#define SHELF_STORE_CREATE 1u   /* create the file if missing */
#define SHELF_STORE_READONLY 2u /* open read-only (no migrations) */
#define SHELF_STORE_BULK 4u     /* synchronous=OFF until close: for imports/benchmarks */

#define SHELF_NONE UINT32_MAX /* "no index" (no category, no target...) */

/* Opens (and with CREATE creates) the store at path; ":memory:" gives an
 * in-memory store for tests. Runs pending migrations. On success *out is a
 * handle to close with shelf_store_close; on failure *out is untouched and
 * err says why. One handle per thread. */
SHELF_API int shelf_store_open(const char *path, unsigned flags, shelf_store **out, shelf_err *err);
SHELF_API void shelf_store_close(shelf_store *st); /* accepts NULL */

/* Last error of this handle (code and message naming the place). */
SHELF_API const shelf_err *shelf_store_err(const shelf_store *st);
SHELF_API const char *shelf_store_errmsg(const shelf_store *st);
/* Sets the handle's error; returns code. For modules that act on a store. */
SHELF_API int shelf_store_fail(shelf_store *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Schema version now in the file, and the version this build writes. */
SHELF_API int shelf_store_schema_version(shelf_store *st);
SHELF_API int shelf_store_schema_latest(void);

/* Transactions (not nested). rollback also drops the in-memory id maps and
 * counters, which are rebuilt from the file on next use. */
SHELF_API int shelf_store_begin(shelf_store *st);
SHELF_API int shelf_store_commit(shelf_store *st);
SHELF_API int shelf_store_rollback(shelf_store *st);
/* A read transaction: every read until shelf_store_commit sees one state of
 * the store, whatever other connections write meanwhile (they are not
 * blocked). */
SHELF_API int shelf_store_begin_read(shelf_store *st);
/* A write transaction whose commit need not reach the disk at once: it
 * does with the next ordinary commit or the next checkpoint (for data a
 * crash may lose the last moments of, such as the served log; a lazy
 * commit costs no fsync). */
SHELF_API int shelf_store_begin_lazy(shelf_store *st);

/* ---- id maps ---------------------------------------------------------------
 * Dense indices are 0..n-1 in order of creation. With create=1 an unknown id
 * is added (inside the current transaction, if any) and *created is set to 1.
 * Without create, unknown ids return SHELF_ENOTFOUND. created may be NULL. */
SHELF_API int shelf_store_user_idx(shelf_store *st, const char *ext, size_t len, int create, uint32_t *idx,
                         int *created);
SHELF_API int shelf_store_item_idx(shelf_store *st, const char *ext, size_t len, int create, uint32_t *idx,
                         int *created);
SHELF_API uint32_t shelf_store_n_users(shelf_store *st);
SHELF_API uint32_t shelf_store_n_items(shelf_store *st);

/* ---- event types -----------------------------------------------------------
 * Built in: view 1, click 1, cart 3, purchase 5, rating 1, like 2, dislike -2,
 * share 2, impression 0, return -3 (weights). Others are added explicitly. */
SHELF_API int shelf_store_event_type(shelf_store *st, const char *name, uint32_t *type, float *weight);
SHELF_API int shelf_store_add_event_type(shelf_store *st, const char *name, float weight, uint32_t *type);
/* Name of a type id (pointer valid until the store closes), or NULL. */
SHELF_API const char *shelf_store_event_type_name(shelf_store *st, uint32_t type);
SHELF_API uint32_t shelf_store_n_event_types(shelf_store *st); /* type ids are 0..n-1 */

/* ---- rows ---------------------------------------------------------------- */
typedef struct shelf_event {
    uint32_t user, item; /* dense indices */
    uint32_t type;       /* event type id */
    float value;         /* rating, quantity, dwell seconds; 0 if none */
    int64_t ts;          /* unix seconds; order-only data uses 0 and insertion order */
    const char *rec_id;  /* served slate this answers, or NULL */
    const char *context; /* JSON object text, or NULL */
} shelf_event;

/* Appends n events (prepared statement, reused). Call inside a transaction
 * for speed; without one each call is its own transaction. */
SHELF_API int shelf_store_add_events(shelf_store *st, const shelf_event *ev, size_t n);

typedef struct shelf_item {
    const char *id;         /* external id (required) */
    const char *kind;       /* product|campaign|content|faq|...; NULL: product */
    const char *title, *text, *category, *brand; /* NULL: none */
    double price;           /* used when has_price */
    int has_price;
    int available;          /* 1 available, 0 not */
    const char *attributes; /* JSON object text, or NULL */
    int64_t created;        /* unix seconds, 0 unknown */
} shelf_item;

/* Inserts or replaces the item's fields (the dense index never changes).
 * *idx (may be NULL) receives the index. */
SHELF_API int shelf_store_put_item(shelf_store *st, const shelf_item *it, uint32_t *idx);
/* Links an attribute (free-form name such as "color=red" or "17") to an item;
 * attribute names get dense ids of their own. Duplicate links are ignored. */
SHELF_API int shelf_store_item_add_attr(shelf_store *st, uint32_t item, const char *name, size_t len);

typedef struct shelf_user {
    const char *id;         /* external id (required) */
    const char *attributes; /* JSON object text, or NULL */
    int64_t created;
} shelf_user;
SHELF_API int shelf_store_put_user(shelf_store *st, const shelf_user *u, uint32_t *idx);

/* ---- reading ------------------------------------------------------------- */
/* The events cursor: calls cb for every event with an id above after_id (0:
 * all), in id (insertion) order; cb returning non-zero stops the scan and
 * that value is returned. rec_id/context point into SQLite's row buffer
 * (valid during the call only). Inside shelf_store_begin_read the scan sees
 * that transaction's view. */
typedef int (*shelf_event_cb)(void *ctx, uint64_t event_id, const shelf_event *ev);
SHELF_API int shelf_store_foreach_event(shelf_store *st, uint64_t after_id, shelf_event_cb cb, void *ctx);
/* The id of the last event this handle added (0: none yet). */
SHELF_API uint64_t shelf_store_last_event_id(const shelf_store *st);
/* Every item row, in index order (idx is the dense index). */
typedef int (*shelf_item_cb)(void *ctx, uint32_t idx, const shelf_item *it);
SHELF_API int shelf_store_foreach_item(shelf_store *st, shelf_item_cb cb, void *ctx);
typedef int (*shelf_user_cb)(void *ctx, uint32_t idx, const shelf_user *u);
SHELF_API int shelf_store_foreach_user(shelf_store *st, shelf_user_cb cb, void *ctx);
/* Every (item, attribute id) link, grouped by item ascending; attribute ids
 * are dense 0..n_attrs-1; *n_attrs receives the count first (may be NULL). */
typedef int (*shelf_attr_cb)(void *ctx, uint32_t item, uint32_t attr);
SHELF_API int shelf_store_foreach_item_attr(shelf_store *st, shelf_attr_cb cb, void *ctx, uint32_t *n_attrs);
/* Name of attribute id (copied into buf, NUL-terminated, truncated). */
SHELF_API int shelf_store_attr_name(shelf_store *st, uint32_t attr, char *buf, size_t cap);
/* External id of a dense index, copied into buf (NUL-terminated). */
SHELF_API int shelf_store_user_ext(shelf_store *st, uint32_t idx, char *buf, size_t cap);
SHELF_API int shelf_store_item_ext(shelf_store *st, uint32_t idx, char *buf, size_t cap);

/* ---- single rows, deletion ------------------------------------------------ */
/* Calls cb once with the row of item (or user) idx: SHELF_ENOTFOUND when idx
 * is out of range or the row was deleted. Strings point into SQLite's row
 * buffer (valid during the call only). */
SHELF_API int shelf_store_get_item(shelf_store *st, uint32_t idx, shelf_item_cb cb, void *ctx);
SHELF_API int shelf_store_get_user(shelf_store *st, uint32_t idx, shelf_user_cb cb, void *ctx);
/* Removes every attribute link of item (before its attributes are put anew). */
SHELF_API int shelf_store_item_clear_attrs(shelf_store *st, uint32_t item);
/* Forgets a user (a shopper's right to be forgotten): deletes its events and
 * its served slates (with their items), clears its attributes and renames
 * its row to a tombstone id that no shop id can take ("\x01deleted:<idx>"),
 * so a later user with the same external id gets a new index and no trace of
 * the old one. Dense indices never move. SHELF_ENOTFOUND if ext is unknown. *idx
 * (may be NULL) receives the forgotten index. Runs in the open transaction,
 * or in its own. Deleting events scans the events table (no index on user):
 * for a rare request, not a hot path. */
SHELF_API int shelf_store_delete_user(shelf_store *st, const char *ext, size_t len, uint32_t *idx);
/* Retires an item: available = 0, fields and attribute links cleared, id
 * renamed to a tombstone like users (the id may be put again as a new item);
 * its events stay in the users' histories. SHELF_ENOTFOUND if unknown. */
SHELF_API int shelf_store_delete_item(shelf_store *st, const char *ext, size_t len, uint32_t *idx);
/* 1 if the row idx is a tombstone (deleted), 0 if live; ENOTFOUND if out of range. */
SHELF_API int shelf_store_user_deleted(shelf_store *st, uint32_t idx);
/* ---- API keys ----------------------------------------------------------------
 * Keys are "shelf_" followed by 64 hex digits (32 random bytes from
 * OpenSSL's RAND_bytes); the store keeps only their SHA-256 (libcrypto), the
 * first 12 characters (to tell keys apart in listings), a scope and a name.
 * Scopes nest: admin > write > read. */
typedef enum { SHELF_SCOPE_READ = 1, SHELF_SCOPE_WRITE = 2, SHELF_SCOPE_ADMIN = 3 } shelf_scope;
#define SHELF_API_KEY_LEN 70 /* strlen("shelf_") + 64 */
typedef struct shelf_api_key {
    int64_t id;
    char prefix[16];      /* the key's first 12 characters */
    shelf_scope scope;
    char name[64];
    int64_t created;      /* unix seconds */
    int revoked;
    unsigned char hash[32]; /* SHA-256 of the whole key text */
} shelf_api_key;
/* "read"/"write"/"admin" <-> scope; parse gives SHELF_EINVAL for anything else. */
SHELF_API int shelf_scope_parse(const char *s, shelf_scope *out);
SHELF_API const char *shelf_scope_name(shelf_scope s);
/* SHA-256 of len bytes of key. */
SHELF_API void shelf_key_hash(const char *key, size_t len, unsigned char out[32]);
/* Creates a key; its text (shown once, never stored) goes to key_out, which
 * needs SHELF_API_KEY_LEN + 1 bytes; *id (may be NULL) receives its id.
 * name may be NULL. */
SHELF_API int shelf_store_key_create(shelf_store *st, shelf_scope scope, const char *name, char *key_out,
                           int64_t *id);
/* Revokes key id: SHELF_ENOTFOUND if there is none. */
SHELF_API int shelf_store_key_revoke(shelf_store *st, int64_t id);
/* Every key (revoked ones too), by id. */
typedef int (*shelf_key_cb)(void *ctx, const shelf_api_key *k);
SHELF_API int shelf_store_foreach_key(shelf_store *st, shelf_key_cb cb, void *ctx);
/* ---- served log ------------------------------------------------------------
 * Every slate shown (shelf/slate.h): a row of table served per slate and a
 * row of served_items per shown item. Slates written by a version-2 build
 * were moved over by migration 3 (their items from the JSON arrays, score 0
 * and propensity 1 where none was kept, their strategy as source). */
/* Logs slate s: its header and s->items[0..n), each at its own position
 * (positions must differ). s->rec_id must be set and unique in the log
 * (SHELF_EINVAL when empty, SHELF_ESTORE when it is there already); user is
 * SHELF_NONE or a known user, items are known items (SHELF_EINVAL). One
 * unit: inside the caller's open transaction under a savepoint (a failure
 * leaves none of the slate's rows and the transaction usable), else in a
 * transaction of its own. Prepared statements, reused. */
SHELF_API int shelf_store_log_slate(shelf_store *st, const shelf_slate *s);
/* Calls cb for every slate with ts >= since_ts, in (ts, rec_id) order, its
 * items in position order; a non-zero return from cb stops the scan and is
 * returned. The slate and its items are the scan's (valid during the call
 * only; copy what you keep). cb may read the store (shelf_store_user_ext,
 * ...) but not write it. Reads by the index on (ts, rec_id): no full scan
 * for a recent since_ts. */
typedef int (*shelf_slate_cb)(void *ctx, const shelf_slate *s);
SHELF_API int shelf_store_served_foreach(shelf_store *st, int64_t since_ts, shelf_slate_cb cb, void *ctx);

/* ---- statistics ------------------------------------------------------------ */
#define SHELF_STATS_MAX_TYPES 64
typedef struct shelf_store_stats {
    uint64_t n_users, n_items, n_events, n_attrs, n_served;
    uint32_t n_types;
    char type_name[SHELF_STATS_MAX_TYPES][32];
    uint64_t type_count[SHELF_STATS_MAX_TYPES];
    uint64_t n_active_users;  /* users with at least one event */
    uint64_t n_active_items;  /* items with at least one event */
    uint64_t n_pairs;         /* distinct (user, item) pairs */
    double density;           /* n_pairs / (n_users * n_items) */
    /* events per active user */
    uint64_t seq_min, seq_max, seq_p50, seq_p90, seq_p99;
    double seq_mean;
    int64_t ts_min, ts_max;
} shelf_store_stats;
SHELF_API int shelf_store_stats_get(shelf_store *st, shelf_store_stats *out);

#ifdef __cplusplus
}
#endif
#endif
