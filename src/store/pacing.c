/* pacing.c: what the pacing of a scenario's promotions reads back from the
 * served log in the SQLite store (meta_int.h): the impressions a promotion
 * had since a time (its items' rows with source "promotion:NAME" on the
 * scenario's slates), and the scenario's slates per hour of the day. */
#include "store_int.h"

int shelf__sqlite_promo_spent(shelf_store *st, const char *scenario, const char *source, int64_t since, int64_t *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT count(*) FROM served v JOIN served_items i ON i.slate = v.id"
                           " WHERE v.ts >= ?1 AND v.scenario = ?2 AND i.source = ?3",
                           -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "counting a promotion's impressions");
    sqlite3_bind_int64(s, 1, since);
    sqlite3_bind_text(s, 2, scenario, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, source, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return r == SQLITE_ROW ? 0 : shelf__store_sqlfail(st, "counting a promotion's impressions");
}

int shelf__sqlite_served_hourly(shelf_store *st, const char *scenario, int64_t since, int64_t until, double *out)
{
    for (int h = 0; h < 24; h++) out[h] = 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT (ts % 86400) / 3600, count(*) FROM served"
                           " WHERE ts >= ?1 AND ts < ?2 AND scenario = ?3 GROUP BY 1",
                           -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "counting a scenario's slates by hour");
    sqlite3_bind_int64(s, 1, since);
    sqlite3_bind_int64(s, 2, until);
    sqlite3_bind_text(s, 3, scenario, -1, SQLITE_STATIC);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t h = sqlite3_column_int64(s, 0);
        if (h >= 0 && h < 24) out[h] = (double)sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    return r == SQLITE_DONE ? 0 : shelf__store_sqlfail(st, "counting a scenario's slates by hour");
}
