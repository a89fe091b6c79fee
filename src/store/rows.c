/* rows.c: single item and user rows of the store, and deletion: forgetting a
 * user, retiring an item (rows become tombstones; dense indices never move). */
#include "store_int.h"

#include <stdio.h>
#include <string.h>

static const char *col_text(sqlite3_stmt *s, int i) { return (const char *)sqlite3_column_text(s, i); }

/* Prepares sql with ?1 = idx (and ?2 = text when text is not NULL). */
static int prepare_idx(shelf_store *st, const char *sql, uint32_t idx, const char *text, const char *what,
                       sqlite3_stmt **out)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, out, NULL) != SQLITE_OK) return shelf__store_sqlfail(st, what);
    sqlite3_bind_int64(*out, 1, idx);
    if (text) sqlite3_bind_text(*out, 2, text, -1, SQLITE_STATIC);
    return 0;
}

/* Runs a statement that returns no rows. */
static int run_idx(shelf_store *st, const char *sql, uint32_t idx, const char *text, const char *what)
{
    sqlite3_stmt *s;
    int rc = prepare_idx(st, sql, idx, text, what, &s);
    if (rc) return rc;
    if (sqlite3_step(s) != SQLITE_DONE) rc = shelf__store_sqlfail(st, what);
    sqlite3_finalize(s);
    return rc;
}

static int is_tombstone(const char *ext) { return ext && ext[0] == SHELF__TOMBSTONE_BYTE; }

/* ---- single rows ------------------------------------------------------------------ */

int shelf__sqlite_get_item(shelf_store *st, uint32_t idx, shelf_item_cb cb, void *ctx)
{
    sqlite3_stmt *s;
    int rc = prepare_idx(st,
                         "SELECT ext_id, kind, title, text, category, brand, price, available, attributes, "
                         "created FROM items WHERE idx=?1",
                         idx, NULL, "reading an item", &s);
    if (rc) return rc;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW && !is_tombstone(col_text(s, 0))) {
        shelf_item it;
        shelf__store_item_of_row(s, 0, &it);
        rc = cb(ctx, idx, &it);
    } else if (r == SQLITE_ROW) {
        rc = shelf_store_fail(st, SHELF_ENOTFOUND, "store: item %u was deleted", idx);
    } else if (r == SQLITE_DONE) {
        rc = shelf_store_fail(st, SHELF_ENOTFOUND, "store: no item with index %u", idx);
    } else {
        rc = shelf__store_sqlfail(st, "reading an item");
    }
    sqlite3_finalize(s);
    return rc;
}

int shelf__sqlite_get_user(shelf_store *st, uint32_t idx, shelf_user_cb cb, void *ctx)
{
    sqlite3_stmt *s;
    int rc = prepare_idx(st, "SELECT ext_id, attributes, created FROM users WHERE idx=?1", idx, NULL,
                         "reading a user", &s);
    if (rc) return rc;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW && !is_tombstone(col_text(s, 0))) {
        shelf_user u = {.id = col_text(s, 0), .attributes = col_text(s, 1), .created = sqlite3_column_int64(s, 2)};
        rc = cb(ctx, idx, &u);
    } else if (r == SQLITE_ROW) {
        rc = shelf_store_fail(st, SHELF_ENOTFOUND, "store: user %u was deleted", idx);
    } else if (r == SQLITE_DONE) {
        rc = shelf_store_fail(st, SHELF_ENOTFOUND, "store: no user with index %u", idx);
    } else {
        rc = shelf__store_sqlfail(st, "reading a user");
    }
    sqlite3_finalize(s);
    return rc;
}

int shelf__sqlite_user_deleted(shelf_store *st, uint32_t idx)
{
    sqlite3_stmt *s;
    int rc = prepare_idx(st, "SELECT ext_id FROM users WHERE idx=?1", idx, NULL, "reading a user", &s);
    if (rc) return rc;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) rc = is_tombstone(col_text(s, 0));
    else if (r == SQLITE_DONE) rc = shelf_store_fail(st, SHELF_ENOTFOUND, "store: no user with index %u", idx);
    else rc = shelf__store_sqlfail(st, "reading a user");
    sqlite3_finalize(s);
    return rc;
}

int shelf__sqlite_item_clear_attrs(shelf_store *st, uint32_t item)
{
    uint32_t n = shelf_store_n_items(st);
    if (item >= n) return shelf_store_fail(st, SHELF_ENOTFOUND, "store: no item with index %u", item);
    return run_idx(st, "DELETE FROM item_attrs WHERE item=?1", item, NULL, "clearing attributes");
}

/* ---- deletion ------------------------------------------------------------------------ */

typedef struct delete_args {
    int is_user;
    uint32_t idx;
    const char *tomb;
    const char *ext; /* the id, recorded only as its hash */
    size_t len;
} delete_args;

/* The steps of deleting user (is_user) or item idx, inside a transaction
 * (shelf__store_atomic). A user's slates go with their item rows. */
static int delete_steps(shelf_store *st, const void *arg)
{
    const delete_args *a = arg;
    uint32_t idx = a->idx;
    const char *tomb = a->tomb;
    int rc = shelf__sqlite_record_deletion(st, a->is_user, a->ext, a->len, idx);
    if (rc) return rc;
    if (a->is_user) {
        if ((rc = run_idx(st, "DELETE FROM events WHERE user=?1", idx, NULL, "deleting a user's events")) ||
            (rc = run_idx(st, "DELETE FROM served_items WHERE slate IN (SELECT id FROM served WHERE user=?1)",
                          idx, NULL, "deleting a user's served items")) ||
            (rc = run_idx(st, "DELETE FROM served WHERE user=?1", idx, NULL, "deleting a user's served slates")))
            return rc;
        return run_idx(st, "UPDATE users SET attributes=NULL, ext_id=?2 WHERE idx=?1", idx, tomb,
                       "deleting a user");
    }
    if ((rc = run_idx(st, "DELETE FROM item_attrs WHERE item=?1", idx, NULL, "deleting an item's attributes")))
        return rc;
    return run_idx(st,
                   "UPDATE items SET available=0, title=NULL, text=NULL, category=NULL, brand=NULL, "
                   "price=NULL, attributes=NULL, ext_id=?2 WHERE idx=?1",
                   idx, tomb, "deleting an item");
}

static int delete_row(shelf_store *st, int is_user, const char *ext, size_t len, uint32_t *idx)
{
    const char *what = is_user ? "user" : "item";
    uint32_t i;
    int rc = is_user ? shelf_store_user_idx(st, ext, len, 0, &i, NULL)
                     : shelf_store_item_idx(st, ext, len, 0, &i, NULL);
    if (rc == SHELF_ENOTFOUND) return shelf_store_fail(st, rc, "store: no %s '%.*s'", what, (int)len, ext);
    if (rc) return rc;
    char tomb[32];
    snprintf(tomb, sizeof tomb, "%cdeleted:%u", SHELF__TOMBSTONE_BYTE, i);
    /* in the caller's transaction, a savepoint keeps a failed delete from
     * leaving half its steps done */
    delete_args a = {.is_user = is_user, .idx = i, .tomb = tomb, .ext = ext, .len = len};
    if ((rc = shelf__store_atomic(st, delete_steps, &a))) return rc;
    /* the row is a tombstone now: the id is free for a new row. (Should an
     * open transaction roll back, rollback drops the caches anyway.) */
    shelf__store_forget_ext(st, is_user, ext, len);
    if (idx) *idx = i;
    return 0;
}

int shelf__sqlite_delete_user(shelf_store *st, const char *ext, size_t len, uint32_t *idx)
{
    return delete_row(st, 1, ext, len, idx);
}

int shelf__sqlite_delete_item(shelf_store *st, const char *ext, size_t len, uint32_t *idx)
{
    return delete_row(st, 0, ext, len, idx);
}
