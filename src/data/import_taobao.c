/* import_taobao.c: Taobao UserBehavior CSV (no header:
 * user,item,category,behavior,timestamp); behaviours pv|cart|fav|buy become
 * the event types view|cart|like|purchase, and the category becomes the
 * item's category when the item is first seen. */
#include "import_int.h"

#include <stdio.h>

static const char *const names[5] = {"user", "item", "category", "behavior", "timestamp"};

static int field_of(const void *ctx, const char *rec, size_t off, const char **name)
{
    (void)ctx;
    int f = 1;
    for (size_t i = 0; i < off; i++) f += rec[i] == ',';
    *name = f <= 5 ? names[f - 1] : NULL;
    return f;
}

int shelf__import_taobao(shelf__imp *imp, const char *path)
{
    static const char *const behavior[4] = {"pv", "cart", "fav", "buy"};
    static const char *const type_of[4] = {"view", "cart", "like", "purchase"};
    uint32_t type[4];
    int rc;
    shelf__lines r;
    if ((rc = shelf__imp_open(imp, &r, path))) goto out;
    for (int b = 0; b < 4; b++) {
        if (shelf_store_event_type(imp->st, type_of[b], &type[b], NULL) != 0) {
            rc = shelf__imp_fail(imp, SHELF_ENOTFOUND, 0, NULL, "event type '%s' is not in the store", type_of[b]);
            goto out;
        }
    }
    uint64_t n_rec = 0;
    char *line;
    size_t len;
    while ((rc = shelf__lines_next(&r, &line, &len)) == 1) {
        imp->line = r.rec_line;
        if (len == 0) continue;
        n_rec++;
        shelf__imp_tick(imp);
        if ((rc = shelf__imp_utf8(imp, line, len, field_of, NULL))) break;
        char *f[5];
        size_t fl[5];
        int n = 0;
        for (char *p = line, *e = line + len;;) {
            char *d = memchr(p, ',', (size_t)(e - p));
            char *fe = d ? d : e;
            if (n < 5) f[n] = p, fl[n] = (size_t)(fe - p);
            n++;
            *fe = '\0';
            if (!d) break;
            p = d + 1;
        }
        if (n < 5) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, n + 1, names[n],
                                 "truncated line: %d of 5 fields (user,item,category,behavior,timestamp)", n);
            break;
        }
        if (n > 5) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, 6, NULL,
                                 "too many fields: %d (user,item,category,behavior,timestamp)", n);
            break;
        }
        const char *id[3];
        size_t idn[3];
        int k;
        for (k = 0; k < 3; k++)
            if (shelf__parse_id(f[k], fl[k], &id[k], &idn[k])) break;
        if (k < 3) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, k + 1, names[k], "not an integer", f[k], fl[k]);
            break;
        }
        int b = 0;
        while (b < 4 && !(strlen(behavior[b]) == fl[3] && memcmp(behavior[b], f[3], fl[3]) == 0)) b++;
        if (b == 4) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 4, "behavior", "unknown behavior (expected pv|cart|fav|buy)", f[3],
                                fl[3]);
            break;
        }
        shelf_event ev = {.type = type[b]};
        if (shelf__parse_i64(f[4], fl[4], &ev.ts)) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 5, "timestamp", "not an integer", f[4], fl[4]);
            break;
        }
        if ((rc = shelf__imp_user(imp, id[0], idn[0], &ev.user))) break;
        int created = 0;
        if ((rc = shelf__imp_item(imp, id[1], idn[1], &ev.item, &created))) break;
        if (created) {
            /* id[1] and id[2] are NUL-terminated where they lie */
            shelf_item it = {.id = id[1], .category = id[2], .available = 1};
            if ((rc = shelf_store_put_item(imp->st, &it, NULL))) {
                rc = shelf__imp_store_fail(imp, rc);
                break;
            }
        }
        if ((rc = shelf__imp_event(imp, &ev))) break;
    }
    rc = shelf__imp_nonempty(imp, rc, n_rec);
out:
    shelf__imp_close(imp, &r);
    return rc;
}
