/* served.c: the served log: whole slates (shelf/slate.h) written as one unit
 * inside the caller's transaction, and read back in time order. Tables
 * served (one row per slate) and served_items (one per shown item), schema
 * migration 3. */
#include "store_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---------------------------------------------------------------------- */

/* Binds a fixed-size string field (NUL-terminated, or cut at its size). */
static void bind_field(sqlite3_stmt *s, int i, const char *f, size_t size)
{
    sqlite3_bind_text(s, i, f, (int)strnlen(f, size), SQLITE_STATIC);
}
#define BIND_FIELD(s, i, f) bind_field(s, i, f, sizeof(f))

/* A dense index, or NULL for SHELF_NONE. */
static void bind_index(sqlite3_stmt *s, int i, uint32_t v)
{
    if (v == SHELF_NONE) sqlite3_bind_null(s, i);
    else sqlite3_bind_int64(s, i, v);
}

static int step_done(shelf_store *st, sqlite3_stmt *s, const char *what)
{
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return r == SQLITE_DONE ? 0 : shelf__store_sqlfail(st, what);
}

/* Refuses what the tables could not keep or would keep wrongly: unknown
 * indices, NaN (SQLite stores it as NULL). */
static int check_slate(shelf_store *st, const shelf_slate *sl)
{
    const char *rec = sl->rec_id;
    int rl = (int)strnlen(rec, sizeof sl->rec_id);
    if (rl == 0) return shelf_store_fail(st, SHELF_EINVAL, "store: served slate without rec_id");
    if (sl->n && !sl->items)
        return shelf_store_fail(st, SHELF_EINVAL, "store: slate %.*s: %u items but no array", rl, rec, sl->n);
    if (sl->user != SHELF_NONE && sl->user >= shelf_store_n_users(st))
        return shelf_store_fail(st, SHELF_EINVAL, "store: slate %.*s: unknown user %u", rl, rec, sl->user);
    uint32_t n_items = shelf_store_n_items(st);
    for (uint32_t k = 0; k < sl->n; k++) {
        const shelf_slate_item *it = &sl->items[k];
        if (it->item >= n_items || (it->reason_item != SHELF_NONE && it->reason_item >= n_items))
            return shelf_store_fail(st, SHELF_EINVAL, "store: slate %.*s: items[%u] refers to unknown item %u", rl,
                                    rec, k, it->item >= n_items ? it->item : it->reason_item);
        if (isnan(it->score) || isnan(it->propensity) || isnan(it->reason_weight))
            return shelf_store_fail(st, SHELF_EINVAL, "store: slate %.*s: items[%u] has a NaN score, propensity or "
                                    "reason weight", rl, rec, k);
    }
    return 0;
}

/* One item's row into parameters base+1 .. base+9 of s. */
static void bind_item(sqlite3_stmt *s, int base, sqlite3_int64 slate, const shelf_slate_item *it)
{
    sqlite3_bind_int64(s, base + 1, slate);
    sqlite3_bind_int64(s, base + 2, it->position);
    sqlite3_bind_int64(s, base + 3, it->item);
    sqlite3_bind_double(s, base + 4, it->score);
    sqlite3_bind_double(s, base + 5, it->propensity);
    BIND_FIELD(s, base + 6, it->source);
    bind_index(s, base + 7, it->reason_item);
    sqlite3_bind_double(s, base + 8, it->reason_weight);
    BIND_FIELD(s, base + 9, it->reason);
}

/* The slate's rows; run by shelf__store_atomic. */
static int write_slate(shelf_store *st, const void *arg)
{
    const shelf_slate *sl = arg;
    sqlite3_stmt *s = st->stmt[STMT_SERVED_INS];
    BIND_FIELD(s, 1, sl->rec_id);
    bind_index(s, 2, sl->user);
    sqlite3_bind_int64(s, 3, sl->ts);
    BIND_FIELD(s, 4, sl->scenario);
    BIND_FIELD(s, 5, sl->variant);
    BIND_FIELD(s, 6, sl->model);
    BIND_FIELD(s, 7, sl->model_version);
    BIND_FIELD(s, 8, sl->source);
    sqlite3_bind_int64(s, 9, sl->n_skipped);
    int rc = step_done(st, s, "logging a served slate");
    sqlite3_int64 slate = sqlite3_last_insert_rowid(st->db);
    /* eight rows a statement while there are eight, then one by one */
    uint32_t k = 0;
    for (; !rc && k + 8 <= sl->n; k += 8) {
        s = st->stmt[STMT_SERVED_ITEMS8_INS];
        for (int j = 0; j < 8; j++) bind_item(s, 9 * j, slate, &sl->items[k + (uint32_t)j]);
        rc = step_done(st, s, "logging served items");
    }
    for (; !rc && k < sl->n; k++) {
        s = st->stmt[STMT_SERVED_ITEM_INS];
        bind_item(s, 0, slate, &sl->items[k]);
        rc = step_done(st, s, "logging a served item");
    }
    return rc;
}

int shelf__sqlite_log_slate(shelf_store *st, const shelf_slate *sl)
{
    int rc = check_slate(st, sl);
    return rc ? rc : shelf__store_atomic(st, write_slate, sl);
}

/* ---- reading ---------------------------------------------------------------------- */

/* The slates by the index on (ts, rec_id), each one's items by the primary
 * key (slate, position): neither needs a sort. */
#define SLATES_SINCE                                                                                       \
    "SELECT rec_id, ts, user, scenario, variant, model, model_version, source, n_skipped, id FROM served " \
    "WHERE ts >= ?1 ORDER BY ts, rec_id"
#define SLATE_ITEMS                                                                                   \
    "SELECT position, item, score, propensity, source, reason_item, reason_weight, reason "           \
    "FROM served_items WHERE slate = ?1 ORDER BY position"

/* Column i as text into a fixed-size field ("" for NULL, cut to fit). */
static void copy_col(sqlite3_stmt *s, int i, char *dst, size_t cap)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, t, n);
    dst[n] = '\0';
}
#define COPY_COL(s, i, f) copy_col(s, i, f, sizeof(f))

static uint32_t col_index(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? SHELF_NONE : (uint32_t)sqlite3_column_int64(s, i);
}

/* Starts sl anew from the slate row (items kept allocated). */
static void read_header(sqlite3_stmt *s, shelf_slate *sl)
{
    shelf_slate_item *items = sl->items;
    uint32_t cap = sl->cap;
    memset(sl, 0, sizeof *sl);
    sl->items = items;
    sl->cap = cap;
    COPY_COL(s, 0, sl->rec_id);
    sl->ts = sqlite3_column_int64(s, 1);
    sl->user = col_index(s, 2);
    COPY_COL(s, 3, sl->scenario);
    COPY_COL(s, 4, sl->variant);
    COPY_COL(s, 5, sl->model);
    COPY_COL(s, 6, sl->model_version);
    COPY_COL(s, 7, sl->source);
    sl->n_skipped = (uint32_t)sqlite3_column_int64(s, 8);
}

/* Appends the item row to sl. */
static int read_item(shelf_store *st, sqlite3_stmt *s, shelf_slate *sl)
{
    if (sl->n == sl->cap) {
        uint32_t cap = sl->cap ? sl->cap * 2 : 16;
        shelf_slate_item *g = realloc(sl->items, (size_t)cap * sizeof *g);
        if (!g) return shelf_store_fail(st, SHELF_ENOMEM, "out of memory (slate %s)", sl->rec_id);
        sl->items = g;
        sl->cap = cap;
    }
    shelf_slate_item *it = &sl->items[sl->n++];
    memset(it, 0, sizeof *it);
    it->position = (uint32_t)sqlite3_column_int64(s, 0);
    it->item = (uint32_t)sqlite3_column_int64(s, 1);
    it->score = (float)sqlite3_column_double(s, 2);
    it->propensity = (float)sqlite3_column_double(s, 3);
    COPY_COL(s, 4, it->source);
    it->reason_item = col_index(s, 5);
    it->reason_weight = (float)sqlite3_column_double(s, 6);
    COPY_COL(s, 7, it->reason);
    return 0;
}

/* The items of the slate in row s (by its row id) into sl. */
static int read_items(shelf_store *st, sqlite3_stmt *s, sqlite3_stmt *items, shelf_slate *sl)
{
    sqlite3_bind_int64(items, 1, sqlite3_column_int64(s, 9));
    int r, rc = 0;
    while ((r = sqlite3_step(items)) == SQLITE_ROW && !(rc = read_item(st, items, sl))) continue;
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "reading the served log");
    sqlite3_reset(items);
    return rc;
}

int shelf__sqlite_served_foreach(shelf_store *st, int64_t since_ts, shelf_slate_cb cb, void *ctx)
{
    sqlite3_stmt *s = NULL, *items = NULL;
    if (sqlite3_prepare_v2(st->db, SLATES_SINCE, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db, SLATE_ITEMS, -1, &items, NULL) != SQLITE_OK) {
        int rc = shelf__store_sqlfail(st, "reading the served log");
        sqlite3_finalize(s);
        return rc;
    }
    sqlite3_bind_int64(s, 1, since_ts);
    shelf_slate sl = {.user = SHELF_NONE};
    int r, rc = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        read_header(s, &sl);
        if ((rc = read_items(st, s, items, &sl)) || (rc = cb(ctx, &sl))) break;
    }
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "reading the served log");
    sqlite3_finalize(s);
    sqlite3_finalize(items);
    shelf_slate_free(&sl);
    return rc;
}
