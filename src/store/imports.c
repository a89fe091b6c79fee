/* imports.c: the record of files imported into the SQLite store (migration
 * 7; meta_int.h): the SHA-256 of the file's bytes, its path, size, the
 * events it stored and when, so that the importer can refuse to read the
 * same file twice. */
#include "store_int.h"

#include <time.h>

int shelf__sqlite_import_find(shelf_store *st, const unsigned char sha[32], double *ts, uint64_t *events)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT ts, events FROM imports WHERE sha256 = ?1", -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "reading the imports");
    sqlite3_bind_blob(s, 1, sha, 32, SQLITE_STATIC);
    int r = sqlite3_step(s), rc = 0;
    if (r == SQLITE_ROW) {
        *ts = sqlite3_column_double(s, 0);
        *events = (uint64_t)sqlite3_column_int64(s, 1);
    } else if (r == SQLITE_DONE) {
        rc = SHELF_ENOTFOUND;
    } else {
        rc = shelf__store_sqlfail(st, "reading the imports");
    }
    sqlite3_finalize(s);
    return rc;
}

int shelf__sqlite_import_record(shelf_store *st, const unsigned char sha[32], const char *path, uint64_t bytes,
                                uint64_t events)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO imports(sha256, path, bytes, events, ts) VALUES(?1, ?2, ?3, ?4, ?5)",
                           -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "recording an import");
    sqlite3_bind_blob(s, 1, sha, 32, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)bytes);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)events);
    sqlite3_bind_double(s, 5, (double)t.tv_sec + (double)(t.tv_nsec / 1000) * 1e-6);
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    return r == SQLITE_DONE ? 0 : shelf__store_sqlfail(st, "recording an import");
}
