/* store.c: opening the SQLite store (WAL, migrations), transactions, the id
 * maps with their in-memory caches, event types, and writing rows. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int sync_foreign(shelf_store *st);
static int query_i64(shelf_store *st, const char *sql, int64_t *out);

/* events are inserted EVENTS_PER_INS rows to a statement (one step and
 * reset for many rows: the import's hot path), the rest one by one */
#define EV_ROW1 "(?, ?, ?, ?, ?, ?, ?)"
#define EV_ROW4 EV_ROW1 ", " EV_ROW1 ", " EV_ROW1 ", " EV_ROW1
#define EV_ROW16 EV_ROW4 ", " EV_ROW4 ", " EV_ROW4 ", " EV_ROW4
#define EVENTS_PER_INS 32

static const char *const stmt_sql[N_STMT] = {
    [STMT_USER_INS] = "INSERT INTO users(idx, ext_id) VALUES(?1, ?2)",
    [STMT_ITEM_INS] = "INSERT INTO items(idx, ext_id) VALUES(?1, ?2)",
    [STMT_EVENT_INS] = "INSERT INTO events(user, item, type, value, ts, rec_id, context) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [STMT_EVENTS32_INS] = "INSERT INTO events(user, item, type, value, ts, rec_id, context) VALUES" EV_ROW16
                          ", " EV_ROW16,
    [STMT_ITEM_UPD] = "UPDATE items SET kind=?2, title=?3, text=?4, category=?5, brand=?6, price=?7, "
                      "available=?8, attributes=?9, created=?10 WHERE idx=?1",
    [STMT_USER_UPD] = "UPDATE users SET attributes=?2, created=?3 WHERE idx=?1",
    [STMT_ATTR_INS] = "INSERT INTO attrs(id, name) VALUES(?1, ?2)",
    [STMT_ITEM_ATTR_INS] = "INSERT OR IGNORE INTO item_attrs(item, attr) VALUES(?1, ?2)",
    [STMT_TYPE_INS] = "INSERT INTO event_types(id, name, weight) VALUES(?1, ?2, ?3)",
    [STMT_SERVED_INS] = "INSERT INTO served(rec_id, user, ts, scenario, variant, model, model_version, source, "
                        "n_skipped) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [STMT_SERVED_ITEM_INS] = "INSERT INTO served_items(slate, position, item, score, propensity, source, "
                             "reason_item, reason_weight, reason) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [STMT_SERVED_ITEMS8_INS] = "INSERT INTO served_items(slate, position, item, score, propensity, source, "
                               "reason_item, reason_weight, reason) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?), "
                               "(?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?), "
                               "(?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?), "
                               "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [STMT_USER_EXT] = "SELECT ext_id FROM users WHERE idx=?1",
    [STMT_ITEM_EXT] = "SELECT ext_id FROM items WHERE idx=?1",
    [STMT_ATTR_NAME] = "SELECT name FROM attrs WHERE id=?1",
    [STMT_SAVEPOINT] = "SAVEPOINT shelf_step",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO shelf_step",
    [STMT_RELEASE] = "RELEASE shelf_step",
};

int shelf__store_sqlfail(shelf_store *st, const char *what)
{
    return shelf_err_set(&st->head.err, SHELF_ESTORE, "store: %s: %s", what, sqlite3_errmsg(st->db));
}

/* Waiting for a lock another connection holds (shelf import beside shelf
 * serve: each needs the write lock). SQLite's own busy timeout sleeps up to
 * 100 ms between tries, and a writer that commits back to back (the
 * server's under load, its fsync inside the lock) is free only between its
 * transactions: a 100 ms poller can miss every gap for seconds (an import
 * beside a busy server failed so after 5 s). A try every millisecond finds
 * a gap; the wait gives up after SHELF__BUSY_WAIT_S. */
#define SHELF__BUSY_WAIT_S 60.0

/* SHELF_BUSY_WAIT_S (seconds, > 0) changes it: an operator's knob, and how
 * tests make a locked store fail fast */
static double busy_wait_limit(void)
{
    const char *v = getenv("SHELF_BUSY_WAIT_S");
    char *end;
    double s = v ? strtod(v, &end) : 0;
    return v && *v && !*end && s > 0 && s <= 86400 ? s : SHELF__BUSY_WAIT_S;
}

static int busy_wait(void *arg, int n)
{
    shelf_store *st = arg;
    double now = shelf_now();
    if (n == 0) st->busy_since = now;
    if (now - st->busy_since >= st->busy_limit_s) return 0;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    return 1;
}

static int exec(shelf_store *st, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        if ((sqlite3_extended_errcode(st->db) & 0xff) == SQLITE_BUSY) {
            shelf_err_set(&st->head.err, SHELF_ESTORE,
                          "store: %s: another process held the store's lock for %g s "
                          "(a long import, or shelf serve writing; SHELF_BUSY_WAIT_S sets the wait)",
                          what, st->busy_limit_s);
            sqlite3_free(msg);
            return SHELF_ESTORE;
        }
        shelf_err_set(&st->head.err, SHELF_ESTORE, "store: %s: %s", what, msg ? msg : "?");
        sqlite3_free(msg);
        return SHELF_ESTORE;
    }
    return 0;
}

static int user_version(shelf_store *st, int *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "reading schema version");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : shelf__store_sqlfail(st, "reading schema version");
}

static int migrate(shelf_store *st)
{
    int v;
    int rc = user_version(st, &v);
    if (rc) return rc;
    int latest = shelf__store_latest();
    if (v > latest)
        return shelf_err_set(&st->head.err, SHELF_EVERSION,
                             "store: schema version %d is newer than this build's %d", v, latest);
    if (v == latest) return 0;
    if (st->flags & SHELF_STORE_READONLY)
        return shelf_err_set(&st->head.err, SHELF_EVERSION,
                             "store: schema version %d needs migrating to %d; open read-write once", v, latest);
    for (int n = v + 1; n <= latest; n++) {
        if ((rc = exec(st, "BEGIN IMMEDIATE", "begin migration"))) return rc;
        char what[64], pragma[64];
        snprintf(what, sizeof what, "migration %d", n);
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", n);
        if ((rc = exec(st, shelf__store_migration(n), what)) || (rc = exec(st, pragma, what)) ||
            (rc = exec(st, "COMMIT", what))) {
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    return 0;
}

static int load_types(shelf_store *st)
{
    for (uint32_t i = 0; i < st->n_types; i++) free(st->types[i].name);
    free(st->types);
    st->types = NULL;
    st->n_types = 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT id, name, weight FROM event_types ORDER BY id", -1, &s, NULL) !=
        SQLITE_OK)
        return shelf__store_sqlfail(st, "reading event types");
    int rc = 0, r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0);
        if (id != st->n_types) {
            rc = shelf_err_set(&st->head.err, SHELF_ECORRUPT, "store: event type ids are not dense (id %lld)",
                               (long long)id);
            break;
        }
        event_type *nt = realloc(st->types, (st->n_types + 1) * sizeof *nt);
        if (!nt) {
            rc = shelf_err_set(&st->head.err, SHELF_ENOMEM, "out of memory");
            break;
        }
        st->types = nt;
        const char *name = (const char *)sqlite3_column_text(s, 1);
        nt[st->n_types].name = strdup(name ? name : "");
        nt[st->n_types].weight = (float)sqlite3_column_double(s, 2);
        if (!nt[st->n_types].name) {
            rc = shelf_err_set(&st->head.err, SHELF_ENOMEM, "out of memory");
            break;
        }
        st->n_types++;
    }
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "reading event types");
    sqlite3_finalize(s);
    return rc;
}

int shelf__sqlite_open(const char *path, unsigned flags, shelf_store **out, shelf_err *err)
{
    shelf_store *st = calloc(1, sizeof *st);
    if (!st) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    st->head.be = &shelf__sqlite_backend;
    st->flags = flags;
    int oflags = (flags & SHELF_STORE_READONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if ((flags & SHELF_STORE_CREATE) && !(flags & SHELF_STORE_READONLY)) oflags |= SQLITE_OPEN_CREATE;
    oflags |= SQLITE_OPEN_NOMUTEX;
    int rc;
    if (sqlite3_open_v2(path, &st->db, oflags, NULL) != SQLITE_OK) {
        rc = shelf_err_set(err, (flags & SHELF_STORE_CREATE) ? SHELF_ESTORE : SHELF_ENOTFOUND,
                           "%s: cannot open store: %s", path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    st->busy_limit_s = busy_wait_limit();
    sqlite3_busy_handler(st->db, busy_wait, st);
    /* a store is recognised by its schema; any other SQLite or non-SQLite
     * file fails here rather than being written to */
    if ((rc = exec(st, "PRAGMA foreign_keys=OFF", "configure"))) goto fail_msg;
    if (!(flags & SHELF_STORE_READONLY)) {
        if ((rc = exec(st, "PRAGMA journal_mode=WAL", "enable WAL"))) goto fail_msg;
        if ((rc = exec(st, (flags & SHELF_STORE_BULK) ? "PRAGMA synchronous=OFF" : "PRAGMA synchronous=FULL",
                       "configure")))
            goto fail_msg;
    }
    if ((rc = exec(st, "PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY", "configure"))) goto fail_msg;
    {
        /* a non-empty database without our schema is refused */
        int v = 0;
        if ((rc = user_version(st, &v))) goto fail_msg;
        if (v == 0) {
            sqlite3_stmt *s;
            int n = 0;
            if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM sqlite_master", -1, &s, NULL) == SQLITE_OK) {
                if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int(s, 0);
                sqlite3_finalize(s);
            }
            if (n > 0) {
                rc = shelf_err_set(&st->head.err, SHELF_EINVAL, "not a shelf store (a SQLite file with other tables)");
                goto fail_msg;
            }
        }
    }
    if ((rc = migrate(st))) goto fail_msg;
    for (int i = 0; i < N_STMT; i++) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) !=
            SQLITE_OK) {
            rc = shelf__store_sqlfail(st, "prepare");
            goto fail_msg;
        }
    }
    if ((rc = load_types(st))) goto fail_msg;
    if ((rc = query_i64(st, "PRAGMA data_version", &st->data_version))) goto fail_msg;
    *out = st;
    return 0;
fail_msg:
    shelf_err_set(err, rc, "%s: %s", path, st->head.err.msg);
fail:
    shelf_store_close(st);
    return rc;
}

static void drop_caches(shelf_store *st)
{
    shelf_strmap_free(st->users);
    shelf_strmap_free(st->items);
    shelf_strmap_free(st->attrs);
    st->users = st->items = st->attrs = NULL;
    st->counts_valid = 0;
}

void shelf__sqlite_close(shelf_store *st)
{
    if (!st) return;
    if (st->in_tx) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < N_STMT; i++) sqlite3_finalize(st->stmt[i]);
    drop_caches(st);
    for (uint32_t i = 0; i < st->n_types; i++) free(st->types[i].name);
    free(st->types);
    sqlite3_close(st->db);
    free(st);
}

int shelf__sqlite_schema_version(shelf_store *st)
{
    int v = -1;
    return user_version(st, &v) ? -1 : v;
}

int shelf_store_schema_latest(void) { return shelf__store_latest(); }

/* ---- transactions ------------------------------------------------------------ */

/* BEGIN IMMEDIATE (a writer) or DEFERRED (a reader: the first read fixes
 * the view; other connections' writers go on under WAL, their rows stay out
 * of the view until it ends) */
static int begin_tx(shelf_store *st, const char *sql)
{
    if (st->in_tx) return shelf_store_fail(st, SHELF_EINVAL, "store: a transaction is already open");
    int rc = exec(st, sql, "begin");
    if (rc) return rc;
    st->in_tx = 1;
    st->tx_event_mark = st->last_event_id;
    if ((rc = sync_foreign(st))) { /* the caches cannot be trusted: end the transaction */
        shelf_store_rollback(st);
        return rc;
    }
    return 0;
}

int shelf__sqlite_begin(shelf_store *st) { return begin_tx(st, "BEGIN IMMEDIATE"); }
int shelf__sqlite_begin_read(shelf_store *st) { return begin_tx(st, "BEGIN DEFERRED"); }

/* synchronous=NORMAL for one transaction (WAL: the commit is appended, the
 * sync comes with the next FULL commit or checkpoint); a bulk store never
 * syncs anyway */
int shelf__sqlite_begin_lazy(shelf_store *st)
{
    if (st->in_tx) return shelf_store_fail(st, SHELF_EINVAL, "store: a transaction is already open");
    int lazy = !(st->flags & (SHELF_STORE_BULK | SHELF_STORE_READONLY));
    if (lazy && exec(st, "PRAGMA synchronous=NORMAL", "configure")) return SHELF_ESTORE;
    int rc = begin_tx(st, "BEGIN IMMEDIATE");
    if (rc && lazy) exec(st, "PRAGMA synchronous=FULL", "configure");
    st->lazy = !rc && lazy;
    return rc;
}

/* after a lazy transaction, commits sync again */
static void end_lazy(shelf_store *st)
{
    if (st->lazy) exec(st, "PRAGMA synchronous=FULL", "configure");
    st->lazy = 0;
}

uint64_t shelf__sqlite_last_event_id(const shelf_store *st) { return st->last_event_id; }

int shelf__sqlite_commit(shelf_store *st)
{
    if (!st->in_tx) return shelf_store_fail(st, SHELF_EINVAL, "store: commit without a transaction");
    int rc = exec(st, "COMMIT", "commit");
    if (rc) {
        /* a failed COMMIT may leave the transaction open: end it */
        if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        drop_caches(st);
        load_types(st);
        st->last_event_id = st->tx_event_mark;
    }
    st->in_tx = 0;
    end_lazy(st);
    return rc;
}

int shelf__sqlite_rollback(shelf_store *st)
{
    int rc = 0;
    if (!sqlite3_get_autocommit(st->db)) {
        char *msg = NULL;
        if (sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, &msg) != SQLITE_OK) rc = SHELF_ESTORE;
        sqlite3_free(msg);
    }
    if (st->in_tx) st->last_event_id = st->tx_event_mark; /* its events are gone */
    st->in_tx = 0;
    end_lazy(st);
    /* ids created in the transaction are gone: rebuild caches from the file */
    drop_caches(st);
    int trc = load_types(st);
    return rc ? rc : trc;
}

/* steps a prepared statement without a row to its end: 0 or SQLITE_* */
static int run_stmt(sqlite3_stmt *s)
{
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    return r == SQLITE_DONE ? 0 : r;
}

int shelf__store_atomic(shelf_store *st, int (*step)(shelf_store *st, const void *arg), const void *arg)
{
    int rc;
    if (!st->in_tx) {
        if ((rc = shelf_store_begin(st))) return rc;
        if ((rc = step(st, arg))) shelf_store_rollback(st); /* also drops the caches */
        else rc = shelf_store_commit(st);
        return rc;
    }
    if (run_stmt(st->stmt[STMT_SAVEPOINT])) return shelf__store_sqlfail(st, "savepoint");
    if ((rc = step(st, arg))) run_stmt(st->stmt[STMT_ROLLBACK_TO]);
    run_stmt(st->stmt[STMT_RELEASE]);
    return rc;
}

/* ---- id maps ------------------------------------------------------------------ */

/* Rows (ext, idx) with idx >= *n, in idx order, into *out (a new map when
 * *out is NULL, which needs *n == 0): the indices must continue 0..n-1.
 * *tombs (may be NULL) counts the tombstones read. */
static int load_map(shelf_store *st, const char *sql, shelf_strmap **out, uint32_t *n, uint32_t *tombs)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "loading id map");
    sqlite3_bind_int64(s, 1, *out ? *n : 0);
    shelf_strmap *m = *out ? *out : shelf_strmap_new(1024);
    if (!m) {
        sqlite3_finalize(s);
        return shelf_store_fail(st, SHELF_ENOMEM, "out of memory");
    }
    int r, rc = 0;
    uint32_t count = *out ? *n : 0, nt = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        int len = sqlite3_column_bytes(s, 0);
        int64_t idx = sqlite3_column_int64(s, 1);
        if (idx != count) {
            rc = shelf_store_fail(st, SHELF_ECORRUPT, "store: dense indices are not 0..n-1 (found %lld at %u)",
                                  (long long)idx, count);
            break;
        }
        if (shelf_strmap_put(m, k ? k : "", (size_t)len, (uint32_t)idx)) {
            rc = shelf_store_fail(st, SHELF_ENOMEM, "out of memory");
            break;
        }
        nt += len > 0 && k[0] == SHELF__TOMBSTONE_BYTE;
        count++;
    }
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "loading id map");
    sqlite3_finalize(s);
    if (rc) {
        shelf_strmap_free(m); /* a partly extended map is dropped too: reloaded on next use */
        *out = NULL;
        *n = 0;
        return rc;
    }
    *out = m;
    *n = count;
    if (tombs) *tombs += nt;
    return 0;
}

#define USERS_FROM "SELECT ext_id, idx FROM users WHERE idx >= ?1 ORDER BY idx"
#define ITEMS_FROM "SELECT ext_id, idx FROM items WHERE idx >= ?1 ORDER BY idx"
#define ATTRS_FROM "SELECT name, id FROM attrs WHERE id >= ?1 ORDER BY id"

static int ensure_users(shelf_store *st)
{
    if (st->users) return 0;
    st->user_tombs = 0;
    return load_map(st, USERS_FROM, &st->users, &st->n_users, &st->user_tombs);
}
static int ensure_items(shelf_store *st)
{
    if (st->items) return 0;
    st->item_tombs = 0;
    return load_map(st, ITEMS_FROM, &st->items, &st->n_items, &st->item_tombs);
}
static int ensure_attrs(shelf_store *st)
{
    return st->attrs ? 0 : load_map(st, ATTRS_FROM, &st->attrs, &st->n_attrs, NULL);
}

/* ---- other connections' commits ----------------------------------------------
 * Another process may write the same store (shelf import beside shelf serve):
 * add users, items, attributes and event types, or delete (tombstone) rows.
 * PRAGMA data_version changes when another connection commits; the caches
 * then catch up: new rows (index >= n) join each loaded id map, a map whose
 * table gained tombstones elsewhere is dropped (reloaded on next use, so a
 * forgotten id never resolves), the event types are read again. This runs
 * when a write transaction starts (BEGIN IMMEDIATE holds the write lock, so
 * the caches stay true until COMMIT and new indices cannot collide) and on
 * a lookup miss outside a transaction. */

static int query_i64(shelf_store *st, const char *sql, int64_t *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) return shelf__store_sqlfail(st, "reading");
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return r == SQLITE_ROW ? 0 : shelf__store_sqlfail(st, "reading");
}

/* one id map: drop it if the table's tombstones changed, else extend it */
static int sync_map(shelf_store *st, shelf_strmap **m, uint32_t *n, uint32_t *tombs, const char *table,
                    const char *from)
{
    if (!*m) return 0;
    if (tombs) {
        char sql[128];
        int64_t t;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE ext_id >= char(1) AND ext_id < char(2)", table);
        int rc = query_i64(st, sql, &t);
        if (rc) return rc;
        if ((uint64_t)t != *tombs) {
            shelf_strmap_free(*m);
            *m = NULL;
            *n = 0;
            return 0;
        }
    }
    return load_map(st, from, m, n, NULL);
}

static int sync_foreign(shelf_store *st)
{
    int64_t dv;
    int rc = query_i64(st, "PRAGMA data_version", &dv);
    if (rc || dv == st->data_version) return rc;
    st->data_version = dv;
    st->counts_valid = 0;
    if ((rc = load_types(st))) return rc;
    if ((rc = sync_map(st, &st->users, &st->n_users, &st->user_tombs, "users", USERS_FROM))) return rc;
    if ((rc = sync_map(st, &st->items, &st->n_items, &st->item_tombs, "items", ITEMS_FROM))) return rc;
    return sync_map(st, &st->attrs, &st->n_attrs, NULL, "attrs", ATTRS_FROM);
}


static int map_idx(shelf_store *st, shelf_strmap *m, uint32_t *n, int ins, const char *what, const char *ext,
                   size_t len, int create, uint32_t *idx, int *created)
{
    uint32_t v;
    /* tombstones (deleted rows) start with byte 0x01: no shop id may, and a
     * deleted id maps to SHELF_NONE until a new row takes it */
    int tomb = len > 0 && ext[0] == SHELF__TOMBSTONE_BYTE;
    if (!tomb && shelf_strmap_get(m, ext, len, &v) && v != SHELF_NONE) {
        *idx = v;
        if (created) *created = 0;
        return 0;
    }
    if (!create) return shelf_store_fail(st, SHELF_ENOTFOUND, "store: unknown %s id '%.*s'", what, (int)len, ext);
    if (len == 0) return shelf_store_fail(st, SHELF_EINVAL, "store: empty %s id", what);
    if (tomb) return shelf_store_fail(st, SHELF_EINVAL, "store: %s id may not start with byte 0x01", what);
    if (*n == UINT32_MAX - 1) return shelf_store_fail(st, SHELF_ERANGE, "store: too many %ss", what);
    sqlite3_stmt *s = st->stmt[ins];
    sqlite3_bind_int64(s, 1, *n);
    sqlite3_bind_text(s, 2, ext, (int)len, SQLITE_STATIC);
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (r != SQLITE_DONE) return shelf__store_sqlfail(st, "adding an id");
    if (shelf_strmap_put(m, ext, len, *n)) return shelf_store_fail(st, SHELF_ENOMEM, "out of memory");
    *idx = (*n)++;
    if (created) *created = 1;
    return 0;
}

/* A miss outside a transaction may be an id another connection added: catch
 * up (sync_foreign) before answering or creating. Inside one, begin did. */
static int sync_on_miss(shelf_store *st, shelf_strmap **m, int (*ensure)(shelf_store *), const char *ext,
                        size_t len)
{
    uint32_t v;
    if (st->in_tx || (shelf_strmap_get(*m, ext, len, &v) && v != SHELF_NONE)) return 0;
    int rc = sync_foreign(st);
    return rc ? rc : ensure(st);
}

int shelf__sqlite_user_idx(shelf_store *st, const char *ext, size_t len, int create, uint32_t *idx, int *created)
{
    int rc = ensure_users(st);
    if (!rc) rc = sync_on_miss(st, &st->users, ensure_users, ext, len);
    return rc ? rc : map_idx(st, st->users, &st->n_users, STMT_USER_INS, "user", ext, len, create, idx, created);
}

int shelf__sqlite_item_idx(shelf_store *st, const char *ext, size_t len, int create, uint32_t *idx, int *created)
{
    int rc = ensure_items(st);
    if (!rc) rc = sync_on_miss(st, &st->items, ensure_items, ext, len);
    return rc ? rc : map_idx(st, st->items, &st->n_items, STMT_ITEM_INS, "item", ext, len, create, idx, created);
}

void shelf__store_forget_ext(shelf_store *st, int user, const char *ext, size_t len)
{
    shelf_strmap **m = user ? &st->users : &st->items;
    if (!*m) return; /* not loaded: the next load reads the renamed row */
    (*(user ? &st->user_tombs : &st->item_tombs))++; /* our own tombstone: no reload at the next sync */
    if (shelf_strmap_put(*m, ext, len, SHELF_NONE)) {
        /* cannot mark it: drop the map, rebuilt from the file on next use */
        shelf_strmap_free(*m);
        *m = NULL;
    }
}

/* counts outside a transaction include what other connections committed */
uint32_t shelf__sqlite_n_users(shelf_store *st)
{
    if (!st->in_tx && sync_foreign(st)) return 0;
    return ensure_users(st) ? 0 : st->n_users;
}
uint32_t shelf__sqlite_n_items(shelf_store *st)
{
    if (!st->in_tx && sync_foreign(st)) return 0;
    return ensure_items(st) ? 0 : st->n_items;
}

/* ---- event types ---------------------------------------------------------------- */

int shelf__sqlite_event_type(shelf_store *st, const char *name, uint32_t *type, float *weight)
{
    for (uint32_t i = 0; i < st->n_types; i++) {
        if (strcmp(st->types[i].name, name) == 0) {
            if (type) *type = i;
            if (weight) *weight = st->types[i].weight;
            return 0;
        }
    }
    return shelf_store_fail(st, SHELF_ENOTFOUND, "unknown event type '%s'", name);
}

int shelf__sqlite_add_event_type(shelf_store *st, const char *name, float weight, uint32_t *type)
{
    if (!name[0]) return shelf_store_fail(st, SHELF_EINVAL, "store: empty event type name");
    if (shelf_store_event_type(st, name, NULL, NULL) == 0)
        return shelf_store_fail(st, SHELF_EEXIST, "store: event type '%s' exists", name);
    event_type *nt = realloc(st->types, (st->n_types + 1) * sizeof *nt);
    if (!nt) return shelf_store_fail(st, SHELF_ENOMEM, "out of memory");
    st->types = nt;
    char *copy = strdup(name);
    if (!copy) return shelf_store_fail(st, SHELF_ENOMEM, "out of memory");
    sqlite3_stmt *s = st->stmt[STMT_TYPE_INS];
    sqlite3_bind_int64(s, 1, st->n_types);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 3, weight);
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    if (r != SQLITE_DONE) {
        free(copy);
        return shelf__store_sqlfail(st, "adding an event type");
    }
    nt[st->n_types].name = copy;
    nt[st->n_types].weight = weight;
    if (type) *type = st->n_types;
    st->n_types++;
    return 0;
}

const char *shelf__sqlite_event_type_name(shelf_store *st, uint32_t type)
{
    return type < st->n_types ? st->types[type].name : NULL;
}

uint32_t shelf__sqlite_n_event_types(shelf_store *st) { return st->n_types; }

/* ---- rows ------------------------------------------------------------------------- */

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *t)
{
    if (t) sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC);
    else sqlite3_bind_null(s, i);
}

int shelf__sqlite_add_events(shelf_store *st, const shelf_event *ev, size_t n)
{
    int rc = ensure_users(st);
    if (!rc) rc = ensure_items(st);
    if (rc) return rc;
    int own_tx = !st->in_tx;
    if (own_tx && (rc = shelf_store_begin(st))) return rc;
    size_t ok = 0; /* the events before the first bad one are stored */
    for (; ok < n; ok++) {
        const shelf_event *e = &ev[ok];
        if (e->user >= st->n_users || e->item >= st->n_items || e->type >= st->n_types) {
            rc = shelf_store_fail(st, SHELF_EINVAL, "store: event %zu refers to unknown %s %u", ok,
                                  e->user >= st->n_users ? "user" : e->item >= st->n_items ? "item" : "type",
                                  e->user >= st->n_users ? e->user : e->item >= st->n_items ? e->item : e->type);
            break;
        }
    }
    for (size_t i = 0; i < ok;) {
        size_t k = ok - i >= EVENTS_PER_INS ? EVENTS_PER_INS : 1;
        sqlite3_stmt *s = st->stmt[k > 1 ? STMT_EVENTS32_INS : STMT_EVENT_INS];
        for (size_t j = 0; j < k; j++) {
            const shelf_event *e = &ev[i + j];
            int b = (int)(7 * j);
            sqlite3_bind_int64(s, b + 1, e->user);
            sqlite3_bind_int64(s, b + 2, e->item);
            sqlite3_bind_int64(s, b + 3, e->type);
            sqlite3_bind_double(s, b + 4, e->value);
            sqlite3_bind_int64(s, b + 5, e->ts);
            bind_text_or_null(s, b + 6, e->rec_id);
            bind_text_or_null(s, b + 7, e->context);
        }
        int r = sqlite3_step(s);
        sqlite3_reset(s);
        if (r != SQLITE_DONE) {
            int rc2 = shelf__store_sqlfail(st, "adding an event");
            sqlite3_clear_bindings(s);
            rc = rc2;
            break;
        }
        st->last_event_id = (uint64_t)sqlite3_last_insert_rowid(st->db);
        i += k;
    }
    sqlite3_clear_bindings(st->stmt[STMT_EVENT_INS]);
    sqlite3_clear_bindings(st->stmt[STMT_EVENTS32_INS]);
    if (own_tx) {
        if (rc) shelf_store_rollback(st);
        else rc = shelf_store_commit(st);
    }
    return rc;
}

int shelf__sqlite_put_item(shelf_store *st, const shelf_item *it, uint32_t *idx)
{
    if (!it->id) return shelf_store_fail(st, SHELF_EINVAL, "store: item without an id");
    uint32_t i;
    int rc = shelf_store_item_idx(st, it->id, strlen(it->id), 1, &i, NULL);
    if (rc) return rc;
    sqlite3_stmt *s = st->stmt[STMT_ITEM_UPD];
    sqlite3_bind_int64(s, 1, i);
    sqlite3_bind_text(s, 2, it->kind && it->kind[0] ? it->kind : "product", -1, SQLITE_STATIC);
    bind_text_or_null(s, 3, it->title);
    bind_text_or_null(s, 4, it->text);
    bind_text_or_null(s, 5, it->category);
    bind_text_or_null(s, 6, it->brand);
    if (it->has_price) sqlite3_bind_double(s, 7, it->price);
    else sqlite3_bind_null(s, 7);
    sqlite3_bind_int(s, 8, it->available ? 1 : 0);
    bind_text_or_null(s, 9, it->attributes);
    sqlite3_bind_int64(s, 10, it->created);
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (r != SQLITE_DONE) return shelf__store_sqlfail(st, "writing an item");
    if (idx) *idx = i;
    return 0;
}

int shelf__sqlite_put_user(shelf_store *st, const shelf_user *u, uint32_t *idx)
{
    if (!u->id) return shelf_store_fail(st, SHELF_EINVAL, "store: user without an id");
    uint32_t i;
    int rc = shelf_store_user_idx(st, u->id, strlen(u->id), 1, &i, NULL);
    if (rc) return rc;
    sqlite3_stmt *s = st->stmt[STMT_USER_UPD];
    sqlite3_bind_int64(s, 1, i);
    bind_text_or_null(s, 2, u->attributes);
    sqlite3_bind_int64(s, 3, u->created);
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (r != SQLITE_DONE) return shelf__store_sqlfail(st, "writing a user");
    if (idx) *idx = i;
    return 0;
}

int shelf__sqlite_item_add_attr(shelf_store *st, uint32_t item, const char *name, size_t len)
{
    int rc = ensure_attrs(st);
    if (!rc) rc = sync_on_miss(st, &st->attrs, ensure_attrs, name, len);
    if (!rc) rc = ensure_items(st);
    if (rc) return rc;
    if (item >= st->n_items) return shelf_store_fail(st, SHELF_EINVAL, "store: unknown item %u", item);
    uint32_t a;
    if ((rc = map_idx(st, st->attrs, &st->n_attrs, STMT_ATTR_INS, "attribute", name, len, 1, &a, NULL)))
        return rc;
    sqlite3_stmt *s = st->stmt[STMT_ITEM_ATTR_INS];
    sqlite3_bind_int64(s, 1, item);
    sqlite3_bind_int64(s, 2, a);
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    return r == SQLITE_DONE ? 0 : shelf__store_sqlfail(st, "linking an attribute");
}

/* ---- the SQLite backend (backend_int.h) ------------------------------------------------ */

#define SQLITE_OP(ret, name, params, args) .name = shelf__sqlite_##name,
const shelf__store_backend shelf__sqlite_backend = {
    .name = "sqlite",
    .open = shelf__sqlite_open,
    .close = shelf__sqlite_close,
    SHELF__STORE_OPS(SQLITE_OP)
    SHELF__STORE_INT_OPS(SQLITE_OP)
};
