/* import_ml100k.c: MovieLens-100k: u.data ("user item rating timestamp",
 * tab separated) as "rating" events, and u.item (latin-1, '|' separated:
 * id|title|release date|video date|url|19 genre flags) as items whose
 * category is the first genre and whose genres are "genre=<name>" attributes. */
#include "import_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define N_GENRES 19
#define ITEM_FIELDS (5 + N_GENRES)

/* u.genre order */
static const char *const genres[N_GENRES] = {
    "unknown", "Action",    "Adventure", "Animation", "Children's", "Comedy",   "Crime",
    "Documentary", "Drama", "Fantasy",   "Film-Noir", "Horror",     "Musical",  "Mystery",
    "Romance", "Sci-Fi",    "Thriller",  "War",       "Western",
};

static const char *const data_names[] = {"user", "item", "rating", "timestamp"};

static int is_ws(char c) { return c == ' ' || c == '\t'; }

/* Field (1-based) holding byte off of a u.data line. */
static int data_field_of(const void *ctx, const char *rec, size_t off, const char **name)
{
    (void)ctx;
    int f = 0, in = 0;
    for (size_t i = 0; i <= off; i++) {
        if (is_ws(rec[i])) in = 0;
        else if (!in) in = 1, f++;
    }
    if (f < 1) f = 1;
    *name = f <= 4 ? data_names[f - 1] : NULL;
    return f;
}

static int import_data(shelf__imp *imp, const char *path)
{
    uint32_t rating;
    int rc;
    shelf__lines r;
    if ((rc = shelf__imp_open(imp, &r, path))) goto out;
    if (shelf_store_event_type(imp->st, "rating", &rating, NULL) != 0) {
        rc = shelf__imp_fail(imp, SHELF_ENOTFOUND, 0, NULL, "event type 'rating' is not in the store");
        goto out;
    }
    uint64_t n_rec = 0;
    char *line;
    size_t len;
    while ((rc = shelf__lines_next(&r, &line, &len)) == 1) {
        imp->line = r.rec_line;
        const char *f[4], *p = line, *e = line + len;
        size_t fl[4];
        int n = 0;
        for (;;) {
            while (p < e && is_ws(*p)) p++;
            if (p == e) break;
            const char *s = p;
            while (p < e && !is_ws(*p)) p++;
            if (n < 4) f[n] = s, fl[n] = (size_t)(p - s);
            n++;
        }
        if (n == 0) continue; /* blank line */
        n_rec++;
        shelf__imp_tick(imp);
        if ((rc = shelf__imp_utf8(imp, line, len, data_field_of, NULL))) break;
        if (n < 4) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, n + 1, data_names[n],
                                 "truncated line: %d of 4 fields (user item rating timestamp)", n);
            break;
        }
        if (n > 4) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, 5, NULL, "too many fields: %d (user item rating timestamp)", n);
            break;
        }
        const char *id;
        size_t idn;
        shelf_event ev = {.type = rating};
        if (shelf__parse_id(f[0], fl[0], &id, &idn)) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 1, "user", "not an integer", f[0], fl[0]);
            break;
        }
        if ((rc = shelf__imp_user(imp, id, idn, &ev.user))) break;
        if (shelf__parse_id(f[1], fl[1], &id, &idn)) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 2, "item", "not an integer", f[1], fl[1]);
            break;
        }
        if ((rc = shelf__imp_item(imp, id, idn, &ev.item, NULL))) break;
        double v;
        if (shelf__parse_f64(f[2], fl[2], &v)) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 3, "rating", "not a number", f[2], fl[2]);
            break;
        }
        if (v < 1 || v > 5) {
            rc = shelf__imp_bad(imp, SHELF_ERANGE, 3, "rating", "out of range 1..5", f[2], fl[2]);
            break;
        }
        ev.value = (float)v;
        if (shelf__parse_i64(f[3], fl[3], &ev.ts)) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 4, "timestamp", "not an integer", f[3], fl[3]);
            break;
        }
        if ((rc = shelf__imp_event(imp, &ev))) break;
    }
    rc = shelf__imp_nonempty(imp, rc, n_rec);
out:
    shelf__imp_close(imp, &r);
    return rc;
}

static const char *item_name(int f)
{
    static const char *const names[5] = {"id", "title", "release date", "video release date", "IMDb URL"};
    return f < 5 ? names[f] : genres[f - 5];
}

static int item_field_of(const void *ctx, const char *rec, size_t off, const char **name)
{
    (void)ctx;
    int f = 1;
    for (size_t i = 0; i < off; i++) f += rec[i] == '|';
    *name = f <= ITEM_FIELDS ? item_name(f - 1) : NULL;
    return f;
}

static int import_items(shelf__imp *imp, const char *path)
{
    int rc;
    shelf__lines r;
    shelf__sbuf json = {0};
    if ((rc = shelf__imp_open(imp, &r, path))) goto out;
    uint64_t n_rec = 0;
    char *raw;
    size_t rlen;
    while ((rc = shelf__lines_next(&r, &raw, &rlen)) == 1) {
        imp->line = r.rec_line;
        if (rlen == 0) continue;
        n_rec++;
        shelf__imp_tick(imp);
        const char *nul = memchr(raw, '\0', rlen);
        if (nul) {
            const char *name;
            int f = item_field_of(NULL, raw, (size_t)(nul - raw), &name);
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, f, name, "NUL byte at byte column %zu", (size_t)(nul - raw) + 1);
            break;
        }
        /* latin-1 -> UTF-8: every byte >= 0x80 becomes two */
        char *line = shelf__imp_scratch(imp, 2 * rlen + 1);
        if (!line) {
            rc = shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
            break;
        }
        size_t len = 0;
        for (size_t i = 0; i < rlen; i++) {
            unsigned char c = (unsigned char)raw[i];
            if (c < 0x80) {
                line[len++] = (char)c;
            } else {
                line[len++] = (char)(0xC0 | (c >> 6));
                line[len++] = (char)(0x80 | (c & 0x3F));
            }
        }
        line[len] = '\0';
        char *f[ITEM_FIELDS];
        size_t fl[ITEM_FIELDS];
        int n = 0;
        for (char *p = line, *e = line + len;;) {
            char *d = memchr(p, '|', (size_t)(e - p));
            char *fe = d ? d : e;
            if (n < ITEM_FIELDS) f[n] = p, fl[n] = (size_t)(fe - p);
            n++;
            *fe = '\0';
            if (!d) break;
            p = d + 1;
        }
        if (n < ITEM_FIELDS) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, n + 1, item_name(n),
                                 "truncated line: %d of %d fields (id|title|release date|video date|url|19 genres)",
                                 n, ITEM_FIELDS);
            break;
        }
        if (n > ITEM_FIELDS) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, ITEM_FIELDS + 1, NULL, "too many fields: %d (expected %d)", n,
                                 ITEM_FIELDS);
            break;
        }
        const char *id;
        size_t idn;
        if (shelf__parse_id(f[0], fl[0], &id, &idn)) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 1, "id", "not an integer", f[0], fl[0]);
            break;
        }
        int first = -1, g;
        for (g = 0; g < N_GENRES; g++) {
            const char *s = f[5 + g];
            if (fl[5 + g] != 1 || (s[0] != '0' && s[0] != '1')) break;
            if (s[0] == '1' && first < 0) first = g;
        }
        if (g < N_GENRES) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 6 + g, genres[g], "genre flag is not 0 or 1", f[5 + g],
                                fl[5 + g]);
            break;
        }
        json.len = 0;
        static const char *const keys[3] = {"release_date", "video_release_date", "imdb_url"};
        for (int k = 0; k < 3; k++) {
            if (!fl[2 + k]) continue;
            shelf__sbuf_put(&json, json.len ? "," : "{", 1);
            shelf__sbuf_json_str(&json, keys[k], strlen(keys[k]));
            shelf__sbuf_put(&json, ":", 1);
            shelf__sbuf_json_str(&json, f[2 + k], fl[2 + k]);
        }
        if (json.len) shelf__sbuf_put(&json, "}", 1);
        if (json.oom) {
            rc = shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
            break;
        }
        shelf_item it = {
            .id = id,
            .title = fl[1] ? f[1] : NULL,
            .category = first >= 0 ? genres[first] : NULL,
            .available = 1,
            .attributes = json.len ? json.p : NULL,
        };
        uint32_t idx;
        if ((rc = shelf_store_put_item(imp->st, &it, &idx))) {
            rc = shelf__imp_store_fail(imp, rc);
            break;
        }
        imp->res.n_items++;
        for (g = 0; g < N_GENRES && !rc; g++) {
            if (f[5 + g][0] != '1') continue;
            char name[48];
            int nl = snprintf(name, sizeof name, "genre=%s", genres[g]);
            if ((rc = shelf_store_item_add_attr(imp->st, idx, name, (size_t)nl))) rc = shelf__imp_store_fail(imp, rc);
        }
        if (rc) break;
    }
    rc = shelf__imp_nonempty(imp, rc, n_rec);
out:
    shelf__imp_close(imp, &r);
    shelf__sbuf_free(&json);
    return rc;
}

/* dir + "/" + name, malloc'ed (NULL on ENOMEM). */
static char *join(const char *dir, size_t dlen, const char *name)
{
    char *p = malloc(dlen + strlen(name) + 2);
    if (!p) return NULL;
    memcpy(p, dir, dlen);
    p[dlen] = '/';
    strcpy(p + dlen + 1, name);
    return p;
}

int shelf__import_ml100k(shelf__imp *imp, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return shelf_store_fail(imp->st, SHELF_ENOTFOUND, "%s: no such file or directory", path);
    char *data = NULL, *items = NULL;
    if (S_ISDIR(sb.st_mode)) {
        size_t dl = strlen(path);
        while (dl > 1 && path[dl - 1] == '/') dl--;
        data = join(path, dl, "u.data");
        items = join(path, dl, "u.item");
    } else {
        const char *slash = strrchr(path, '/');
        data = strdup(path);
        items = slash ? join(path, (size_t)(slash - path), "u.item") : strdup("u.item");
    }
    int rc = 0;
    if (!data || !items) {
        rc = shelf_store_fail(imp->st, SHELF_ENOMEM, "out of memory");
        goto out;
    }
    /* items first: their indices then follow u.item's order */
    const char *ipath = imp->o->items_path;
    if (!ipath && stat(items, &sb) == 0) ipath = items;
    if (ipath) rc = import_items(imp, ipath);
    if (!rc) rc = import_data(imp, data);
out:
    free(data);
    free(items);
    return rc;
}
