/* read.c: scanning the store (events, items, users, attributes), external id
 * look-ups and the statistics behind `shelf stats`. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

static const char *col_text(sqlite3_stmt *s, int i) { return (const char *)sqlite3_column_text(s, i); }

int shelf__sqlite_foreach_event(shelf_store *st, uint64_t after_id, shelf_event_cb cb, void *ctx)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, user, item, type, value, ts, rec_id, context FROM events WHERE id > ?1 "
                           "ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "scanning events");
    sqlite3_bind_int64(s, 1, (sqlite3_int64)after_id);
    int r, rc = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        shelf_event e = {
            .user = (uint32_t)sqlite3_column_int64(s, 1),
            .item = (uint32_t)sqlite3_column_int64(s, 2),
            .type = (uint32_t)sqlite3_column_int64(s, 3),
            .value = (float)sqlite3_column_double(s, 4),
            .ts = sqlite3_column_int64(s, 5),
            .rec_id = col_text(s, 6),
            .context = col_text(s, 7),
        };
        if ((rc = cb(ctx, (uint64_t)sqlite3_column_int64(s, 0), &e))) break;
    }
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "scanning events");
    sqlite3_finalize(s);
    return rc;
}

void shelf__store_item_of_row(sqlite3_stmt *s, int c, shelf_item *it)
{
    *it = (shelf_item){
        .id = col_text(s, c),
        .kind = col_text(s, c + 1),
        .title = col_text(s, c + 2),
        .text = col_text(s, c + 3),
        .category = col_text(s, c + 4),
        .brand = col_text(s, c + 5),
        .has_price = sqlite3_column_type(s, c + 6) != SQLITE_NULL,
        .price = sqlite3_column_double(s, c + 6),
        .available = sqlite3_column_int(s, c + 7),
        .attributes = col_text(s, c + 8),
        .created = sqlite3_column_int64(s, c + 9),
    };
}

int shelf__sqlite_foreach_item(shelf_store *st, shelf_item_cb cb, void *ctx)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT idx, ext_id, kind, title, text, category, brand, price, available, "
                           "attributes, created FROM items ORDER BY idx",
                           -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "scanning items");
    int r, rc = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        shelf_item it;
        shelf__store_item_of_row(s, 1, &it);
        if ((rc = cb(ctx, (uint32_t)sqlite3_column_int64(s, 0), &it))) break;
    }
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "scanning items");
    sqlite3_finalize(s);
    return rc;
}

int shelf__sqlite_foreach_user(shelf_store *st, shelf_user_cb cb, void *ctx)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT idx, ext_id, attributes, created FROM users ORDER BY idx", -1, &s,
                           NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "scanning users");
    int r, rc = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        shelf_user u = {.id = col_text(s, 1), .attributes = col_text(s, 2), .created = sqlite3_column_int64(s, 3)};
        if ((rc = cb(ctx, (uint32_t)sqlite3_column_int64(s, 0), &u))) break;
    }
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "scanning users");
    sqlite3_finalize(s);
    return rc;
}

static int count(shelf_store *st, const char *sql, uint64_t *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) return shelf__store_sqlfail(st, "counting");
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) *out = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return r == SQLITE_ROW ? 0 : shelf__store_sqlfail(st, "counting");
}

int shelf__sqlite_foreach_item_attr(shelf_store *st, shelf_attr_cb cb, void *ctx, uint32_t *n_attrs)
{
    uint64_t n = 0;
    int rc = count(st, "SELECT count(*) FROM attrs", &n);
    if (rc) return rc;
    if (n_attrs) *n_attrs = (uint32_t)n;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT item, attr FROM item_attrs ORDER BY item, attr", -1, &s, NULL) !=
        SQLITE_OK)
        return shelf__store_sqlfail(st, "scanning attributes");
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        if ((rc = cb(ctx, (uint32_t)sqlite3_column_int64(s, 0), (uint32_t)sqlite3_column_int64(s, 1)))) break;
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "scanning attributes");
    sqlite3_finalize(s);
    return rc;
}

static int lookup_text(shelf_store *st, int which, uint32_t key, const char *what, char *buf, size_t cap)
{
    sqlite3_stmt *s = st->stmt[which];
    sqlite3_bind_int64(s, 1, key);
    int r = sqlite3_step(s), rc = 0;
    if (r == SQLITE_ROW) {
        const char *t = col_text(s, 0);
        snprintf(buf, cap, "%s", t ? t : "");
    } else if (r == SQLITE_DONE) {
        rc = shelf_store_fail(st, SHELF_ENOTFOUND, "store: no %s with index %u", what, key);
    } else {
        rc = shelf__store_sqlfail(st, what);
    }
    sqlite3_reset(s);
    return rc;
}

int shelf__sqlite_attr_name(shelf_store *st, uint32_t attr, char *buf, size_t cap)
{
    return lookup_text(st, STMT_ATTR_NAME, attr, "attribute", buf, cap);
}
int shelf__sqlite_user_ext(shelf_store *st, uint32_t idx, char *buf, size_t cap)
{
    return lookup_text(st, STMT_USER_EXT, idx, "user", buf, cap);
}
int shelf__sqlite_item_ext(shelf_store *st, uint32_t idx, char *buf, size_t cap)
{
    return lookup_text(st, STMT_ITEM_EXT, idx, "item", buf, cap);
}

/* ---- statistics ------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* In-place LSD radix sort of 64-bit keys (8 passes of 8 bits); tmp is n long. */
static void radix_sort_u64(uint64_t *a, uint64_t *tmp, size_t n)
{
    for (int shift = 0; shift < 64; shift += 8) {
        size_t cnt[257] = {0};
        for (size_t i = 0; i < n; i++) cnt[((a[i] >> shift) & 0xff) + 1]++;
        if (cnt[1] == n) continue; /* this byte is 0 everywhere */
        for (int b = 0; b < 256; b++) cnt[b + 1] += cnt[b];
        for (size_t i = 0; i < n; i++) tmp[cnt[(a[i] >> shift) & 0xff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

int shelf__sqlite_stats_get(shelf_store *st, shelf_store_stats *o)
{
    memset(o, 0, sizeof *o);
    int rc;
    if ((rc = count(st, "SELECT count(*) FROM users", &o->n_users)) ||
        (rc = count(st, "SELECT count(*) FROM items", &o->n_items)) ||
        (rc = count(st, "SELECT count(*) FROM events", &o->n_events)) ||
        (rc = count(st, "SELECT count(*) FROM attrs", &o->n_attrs)) ||
        (rc = count(st, "SELECT count(*) FROM served", &o->n_served)))
        return rc;
    o->n_types = st->n_types < SHELF_STATS_MAX_TYPES ? st->n_types : SHELF_STATS_MAX_TYPES;
    for (uint32_t t = 0; t < o->n_types; t++) snprintf(o->type_name[t], sizeof o->type_name[t], "%s", st->types[t].name);

    /* one scan: (user, item) keys for the pair count, per-user lengths */
    uint64_t *keys = malloc((o->n_events ? o->n_events : 1) * sizeof *keys);
    uint64_t *per_user = calloc(o->n_users ? o->n_users : 1, sizeof *per_user);
    unsigned char *item_seen = calloc(o->n_items ? o->n_items : 1, 1);
    if (!keys || !per_user || !item_seen) {
        rc = shelf_store_fail(st, SHELF_ENOMEM, "out of memory (statistics of %llu events)",
                              (unsigned long long)o->n_events);
        goto out;
    }
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT user, item, type, ts FROM events", -1, &s, NULL) != SQLITE_OK) {
        rc = shelf__store_sqlfail(st, "statistics");
        goto out;
    }
    uint64_t n = 0;
    int r;
    o->ts_min = INT64_MAX;
    o->ts_max = INT64_MIN;
    while ((r = sqlite3_step(s)) == SQLITE_ROW && n < o->n_events) {
        uint64_t u = (uint64_t)sqlite3_column_int64(s, 0), i = (uint64_t)sqlite3_column_int64(s, 1);
        uint64_t t = (uint64_t)sqlite3_column_int64(s, 2);
        int64_t ts = sqlite3_column_int64(s, 3);
        keys[n++] = u << 32 | i;
        if (u < o->n_users) per_user[u]++;
        if (i < o->n_items) item_seen[i] = 1;
        if (t < o->n_types) o->type_count[t]++;
        if (ts < o->ts_min) o->ts_min = ts;
        if (ts > o->ts_max) o->ts_max = ts;
    }
    if (r != SQLITE_DONE && r != SQLITE_ROW) rc = shelf__store_sqlfail(st, "statistics");
    sqlite3_finalize(s);
    if (rc) goto out;
    if (n == 0) o->ts_min = o->ts_max = 0;

    uint64_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) {
        rc = shelf_store_fail(st, SHELF_ENOMEM, "out of memory");
        goto out;
    }
    radix_sort_u64(keys, tmp, n);
    for (uint64_t k = 0; k < n; k++) o->n_pairs += k == 0 || keys[k] != keys[k - 1];
    /* sequence lengths of active users */
    uint64_t m = 0;
    for (uint64_t u = 0; u < o->n_users; u++)
        if (per_user[u]) tmp[m++] = per_user[u];
    o->n_active_users = m;
    for (uint64_t i = 0; i < o->n_items; i++) o->n_active_items += item_seen[i];
    if (m) {
        qsort(tmp, m, sizeof *tmp, cmp_u64);
        o->seq_min = tmp[0];
        o->seq_max = tmp[m - 1];
        o->seq_p50 = tmp[(m - 1) / 2];
        o->seq_p90 = tmp[(uint64_t)((double)(m - 1) * 0.9)];
        o->seq_p99 = tmp[(uint64_t)((double)(m - 1) * 0.99)];
        o->seq_mean = (double)n / (double)m;
    }
    if (o->n_users && o->n_items) o->density = (double)o->n_pairs / ((double)o->n_users * (double)o->n_items);
    free(tmp);
out:
    free(keys);
    free(per_user);
    free(item_seen);
    return rc;
}
