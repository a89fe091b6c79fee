/* deletions.c: the record of deleted shoppers and items in the SQLite store
 * (migration 5; meta_int.h): kind, the SHA-256 of the id (so that the id
 * itself is gone), the index it had, and when. */
#include "store_int.h"

#include <time.h>

static double wall_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)(t.tv_nsec / 1000) * 1e-6;
}

int shelf__sqlite_record_deletion(shelf_store *st, int is_user, const char *ext, size_t len, uint32_t idx)
{
    unsigned char h[32];
    shelf_key_hash(ext, len, h); /* SHA-256 */
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "INSERT INTO deletions(kind, id_hash, idx, ts) VALUES(?1, ?2, ?3, ?4)", -1, &s,
                           NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "recording a deletion");
    sqlite3_bind_text(s, 1, is_user ? "user" : "item", -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, h, sizeof h, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, idx);
    sqlite3_bind_double(s, 4, wall_now());
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    return r == SQLITE_DONE ? 0 : shelf__store_sqlfail(st, "recording a deletion");
}

int shelf__sqlite_deletion_find(shelf_store *st, int is_user, const char *ext, size_t len, uint32_t *idx, double *ts)
{
    unsigned char h[32];
    shelf_key_hash(ext, len, h);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT idx, ts FROM deletions WHERE id_hash = ?1 AND kind = ?2 ORDER BY ts DESC LIMIT 1",
                           -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "reading the deletions");
    sqlite3_bind_blob(s, 1, h, sizeof h, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, is_user ? "user" : "item", -1, SQLITE_STATIC);
    int r = sqlite3_step(s), rc = 0;
    if (r == SQLITE_ROW) {
        *idx = (uint32_t)sqlite3_column_int64(s, 0);
        *ts = sqlite3_column_double(s, 1);
    } else if (r == SQLITE_DONE) {
        rc = shelf_store_fail(st, SHELF_ENOTFOUND, "store: no deletion of %s '%.*s' is recorded",
                              is_user ? "user" : "item", (int)len, ext);
    } else {
        rc = shelf__store_sqlfail(st, "reading the deletions");
    }
    sqlite3_finalize(s);
    return rc;
}

/* one row of two numbers from sql with ?1 = a (a double when is_real, else an index) */
static int two_numbers(shelf_store *st, const char *sql, double a, int is_real, double *x, double *y)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) return shelf__store_sqlfail(st, "reading");
    if (is_real) sqlite3_bind_double(s, 1, a);
    else sqlite3_bind_int64(s, 1, (sqlite3_int64)a);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        *x = sqlite3_column_double(s, 0);
        *y = sqlite3_column_double(s, 1);
    }
    sqlite3_finalize(s);
    return r == SQLITE_ROW ? 0 : shelf__store_sqlfail(st, "reading");
}

int shelf__sqlite_deletions_since(shelf_store *st, double t, uint64_t *n, double *first)
{
    double c = 0, f = 0;
    int rc = two_numbers(st, "SELECT count(*), coalesce(min(ts), 0) FROM deletions WHERE ts > ?1", t, 1, &c, &f);
    if (!rc) *n = (uint64_t)c, *first = f;
    return rc;
}

int shelf__sqlite_deletion_refs(shelf_store *st, int is_user, uint32_t idx, uint64_t *events, uint64_t *served)
{
    double e = 0, v = 0;
    int rc = two_numbers(st,
                         is_user ? "SELECT (SELECT count(*) FROM events WHERE user = ?1),"
                                   " (SELECT count(*) FROM served WHERE user = ?1)"
                                 : "SELECT (SELECT count(*) FROM events WHERE item = ?1),"
                                   " (SELECT count(*) FROM served_items WHERE item = ?1)",
                         idx, 0, &e, &v);
    if (!rc) *events = (uint64_t)e, *served = (uint64_t)v;
    return rc;
}
