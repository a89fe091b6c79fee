/* scenarios.c: scenarios in the SQLite store (meta_int.h): the table of
 * migration 4, one row per name with its JSON document as given. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

int shelf__sqlite_scenario_put(shelf_store *st, const char *name, const char *doc, int64_t updated)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO scenarios(name, doc, updated) VALUES(?1, ?2, ?3)"
                           " ON CONFLICT(name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated",
                           -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "storing a scenario");
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, doc, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, updated);
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    return r == SQLITE_DONE ? 0 : shelf__store_sqlfail(st, "storing a scenario");
}

int shelf__sqlite_scenario_get(shelf_store *st, const char *name, char **doc, int64_t *updated)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT doc, updated FROM scenarios WHERE name = ?1", -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "reading a scenario");
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(s), rc = 0;
    if (r == SQLITE_ROW) {
        char *d = strdup((const char *)sqlite3_column_text(s, 0));
        if (!d) rc = shelf_store_fail(st, SHELF_ENOMEM, "store: out of memory");
        else {
            *doc = d;
            if (updated) *updated = sqlite3_column_int64(s, 1);
        }
    } else if (r == SQLITE_DONE) {
        rc = shelf_store_fail(st, SHELF_ENOTFOUND, "store: no scenario named '%s'", name);
    } else {
        rc = shelf__store_sqlfail(st, "reading a scenario");
    }
    sqlite3_finalize(s);
    return rc;
}

int shelf__sqlite_scenario_delete(shelf_store *st, const char *name)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "DELETE FROM scenarios WHERE name = ?1", -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "deleting a scenario");
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    if (r != SQLITE_DONE) return shelf__store_sqlfail(st, "deleting a scenario");
    return sqlite3_changes(st->db) ? 0 : shelf_store_fail(st, SHELF_ENOTFOUND, "store: no scenario named '%s'", name);
}

int shelf__sqlite_scenario_foreach(shelf_store *st, shelf__scenario_cb cb, void *ctx)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT name, doc, updated FROM scenarios ORDER BY name", -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "reading the scenarios");
    int r, rc = 0;
    while (!rc && (r = sqlite3_step(s)) == SQLITE_ROW)
        rc = cb(ctx, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
                sqlite3_column_int64(s, 2));
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "reading the scenarios");
    sqlite3_finalize(s);
    return rc;
}
