/* import_csv.c: header-driven CSV (RFC 4180 quoting; the first line is the
 * header) of events, items or users, with the "field=column,..." mapping.
 * The event path is the hot one: fields are cut in place without copies, ids
 * go through the store's in-memory maps, events are added in batches. */
#include "import_int.h"

#include "core/check_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct csv {
    char delim;
    size_t n_cols;
    char **col_name;            /* [n_cols] header names */
    int col[SHELF__MAXF];       /* column of each field, -1 absent */
    int *col_field;             /* [n_cols] field of each column, -1: an extra */
    char **fp;                  /* [n_cols] fields of the current record */
    size_t *fl;
} csv;

/* ---- splitting ---------------------------------------------------------------- */

/* Quote state of a record scanned so far (records grow line by line). */
typedef struct qstate {
    size_t done; /* bytes scanned */
    int inq, at_start;
} qstate;

/* 1 if rec[0..len) ends inside a quoted field (the record goes on on the
 * next line). Scans only what q has not seen. */
static int open_quote(qstate *q, const char *rec, size_t len, char delim)
{
    int inq = q->inq, at_start = q->at_start;
    for (size_t i = q->done; i < len; i++) {
        char c = rec[i];
        if (inq) {
            if (c == '"') {
                if (i + 1 < len && rec[i + 1] == '"') i++;
                else inq = 0;
            }
        } else if (c == '"' && at_start) {
            inq = 1;
            at_start = 0;
        } else {
            at_start = c == delim;
        }
    }
    q->done = len;
    q->inq = inq;
    q->at_start = at_start;
    return inq;
}

/* Field (1-based) holding byte off of rec. */
static int field_at(const void *ctx, const char *rec, size_t off, const char **name)
{
    const csv *c = ctx;
    int inq = 0, at_start = 1, f = 1;
    for (size_t i = 0; i < off; i++) {
        char ch = rec[i];
        if (inq) {
            if (ch == '"') {
                if (i + 1 < off && rec[i + 1] == '"') i++;
                else inq = 0;
            }
        } else if (ch == '"' && at_start) {
            inq = 1;
            at_start = 0;
        } else {
            at_start = ch == c->delim;
            f += at_start;
        }
    }
    *name = (size_t)f <= c->n_cols ? c->col_name[f - 1] : NULL;
    return f;
}

/* Cuts the complete record rec[0..len) into fields in place: each is
 * NUL-terminated, quoted ones unescaped. The first `max` go to fp/fl; the
 * count of all is returned. -1 - k: text after the closing quote of field k. */
static long split(char *rec, size_t len, char delim, char **fp, size_t *fl, size_t max)
{
    char *p = rec, *e = rec + len;
    size_t n = 0;
    for (;;) {
        char *start = p, *fend;
        if (p < e && *p == '"') {
            char *w = p++;
            while (p < e) {
                if (*p == '"') {
                    if (p + 1 < e && p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    break;
                }
                *w++ = *p++;
            }
            p++; /* the closing quote (open_quote made sure there is one) */
            if (p < e && *p != delim) return -1 - (long)n;
            fend = w;
        } else {
            char *d = memchr(p, delim, (size_t)(e - p));
            fend = p = d ? d : e;
        }
        int more = p < e;
        *fend = '\0';
        if (n < max) {
            fp[n] = start;
            fl[n] = (size_t)(fend - start);
        }
        n++;
        if (!more) return (long)n;
        p++;
    }
}

/* Next record (blank lines skipped), joined across lines while a quoted field
 * is open: 1 and the record, 0 at end of file, or an error. */
static int next_record(shelf__imp *imp, shelf__lines *r, const csv *c, char **rec, size_t *len)
{
    int rc;
    do {
        if ((rc = shelf__lines_next(r, rec, len)) <= 0) return rc;
    } while (*len == 0);
    imp->line = r->rec_line;
    if (memchr(*rec, '"', *len)) {
        qstate q = {0, 0, 1};
        while (open_quote(&q, *rec, *len, c->delim)) {
            if ((rc = shelf__lines_extend(r, rec, len)) < 0) return rc;
            if (rc == 0) {
                const char *name;
                int f = field_at(c, *rec, *len, &name);
                return shelf__imp_fail(imp, SHELF_EFORMAT, f, name, "quoted field not closed before end of file");
            }
        }
    }
    return 1;
}

/* Splits the current record into c->fp/fl; checks the count and UTF-8. */
static int cut(shelf__imp *imp, csv *c, char *rec, size_t len)
{
    int rc = shelf__imp_utf8(imp, rec, len, field_at, c);
    if (rc) return rc;
    long n = split(rec, len, c->delim, c->fp, c->fl, c->n_cols);
    if (n < 0) {
        size_t f = (size_t)(-1 - n);
        return shelf__imp_fail(imp, SHELF_EFORMAT, (int)f + 1, f < c->n_cols ? c->col_name[f] : NULL,
                               "text after the closing quote");
    }
    if ((size_t)n < c->n_cols)
        return shelf__imp_fail(imp, SHELF_EFORMAT, (int)n + 1, c->col_name[n],
                               "truncated line: %ld of %zu fields", n, c->n_cols);
    if ((size_t)n > c->n_cols)
        return shelf__imp_fail(imp, SHELF_EFORMAT, (int)c->n_cols + 1, NULL,
                               "too many fields: %ld (the header has %zu)", n, c->n_cols);
    return 0;
}

/* ---- header -------------------------------------------------------------------- */

static void csv_free(csv *c)
{
    for (size_t i = 0; i < c->n_cols && c->col_name; i++) free(c->col_name[i]);
    free(c->col_name);
    free(c->col_field);
    free(c->fp);
    free(c->fl);
}

static int read_header(shelf__imp *imp, shelf__lines *r, csv *c, const shelf__fieldmap *m)
{
    char *rec;
    size_t len;
    int rc;
    if (imp->o->columns) { /* a file without a header line: the columns named for it (its delimiter put in) */
        if (!imp->o->columns[0]) return shelf__imp_fail(imp, SHELF_EINVAL, 0, NULL, "--columns: no column named");
        if (!(rec = shelf__imp_scratch(imp, strlen(imp->o->columns) + 1)))
            return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
        len = strlen(imp->o->columns);
        for (size_t i = 0; i <= len; i++) rec[i] = imp->o->columns[i] == ',' ? c->delim : imp->o->columns[i];
        rc = 1;
    } else {
        rc = next_record(imp, r, c, &rec, &len);
    }
    if (rc < 0) return rc;
    if (rc == 0) return shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "empty file: no header");
    if ((rc = shelf__imp_utf8(imp, rec, len, NULL, NULL))) return rc;
    /* count the fields (the last one starts after the last delimiter) */
    const char *name;
    size_t n = (size_t)field_at(&(csv){.delim = c->delim}, rec, len, &name);
    c->n_cols = n;
    c->col_name = calloc(n, sizeof *c->col_name);
    c->col_field = malloc(n * sizeof *c->col_field);
    c->fp = malloc(n * sizeof *c->fp);
    c->fl = malloc(n * sizeof *c->fl);
    if (!c->col_name || !c->col_field || !c->fp || !c->fl)
        return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
    long got = split(rec, len, c->delim, c->fp, c->fl, n);
    if (got < 0 || (size_t)got != n)
        return shelf__imp_fail(imp, SHELF_EFORMAT, got < 0 ? (int)(-got) : 0, NULL,
                               "header: text after a closing quote");
    for (size_t i = 0; i < n; i++) {
        const char *s = c->fp[i];
        size_t sl = c->fl[i];
        while (sl && (*s == ' ' || *s == '\t')) s++, sl--;
        while (sl && (s[sl - 1] == ' ' || s[sl - 1] == '\t')) sl--;
        if (!(c->col_name[i] = malloc(sl + 1))) return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
        memcpy(c->col_name[i], s, sl);
        c->col_name[i][sl] = '\0';
        c->col_field[i] = -1;
    }
    for (size_t f = 0; f < m->n; f++) {
        c->col[f] = -1;
        for (size_t i = 0; i < c->n_cols; i++) {
            if (strcmp(c->col_name[i], m->key[f]) == 0) {
                c->col[f] = (int)i;
                c->col_field[i] = (int)f;
                break;
            }
        }
        if (c->col[f] < 0 && m->mapped[f])
            return shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "mapping %s=%s: no column '%s' in the header",
                                   m->names[f], m->key[f], m->key[f]);
        if (c->col[f] < 0 && f == 0)
            return shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL,
                                   "no column '%s' in the header (name one with the mapping %s=<column>)",
                                   m->key[f], m->names[f]);
        if (c->col[f] < 0 && imp->o->what == SHELF_IMPORT_EVENTS && f == SHELF__EV_ITEM)
            return shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL,
                                   "no column '%s' in the header (name one with the mapping item=<column>)",
                                   m->key[f]);
    }
    return 0;
}

/* ---- records -------------------------------------------------------------------- */

static int event_record(shelf__imp *imp, const csv *c, uint32_t default_type)
{
    char *const *fp = c->fp;
    const size_t *fl = c->fl;
    shelf_event ev = {.type = default_type};
    int k, rc;
    /* the type first: a row the type map drops makes no user or item */
    if ((k = c->col[SHELF__EV_TYPE]) >= 0 &&
        (rc = shelf__imp_type(imp, fp[k], fl[k], k + 1, c->col_name[k], &ev.type)))
        return rc;
    if (ev.type == SHELF__IMP_DROP) {
        imp->res.n_dropped++;
        return 0;
    }
    /* rows whose user or item id names no one are skipped, counted by reason */
    int ku = c->col[SHELF__EV_USER], ki = c->col[SHELF__EV_ITEM];
    if (shelf__imp_skip_id(imp, fp[ku], fl[ku], 1) || shelf__imp_skip_id(imp, fp[ki], fl[ki], 0)) return 0;
    if ((rc = shelf__imp_user(imp, fp[ku], fl[ku], &ev.user))) return rc;
    if ((rc = shelf__imp_item(imp, fp[ki], fl[ki], &ev.item, NULL))) return rc;
    if ((k = c->col[SHELF__EV_VALUE]) >= 0 && fl[k]) {
        double v;
        if (shelf__parse_f64(fp[k], fl[k], &v))
            return shelf__imp_bad(imp, SHELF_EFORMAT, k + 1, c->col_name[k], "not a number", fp[k], fl[k]);
        if ((rc = shelf__imp_value(imp, v, k + 1, c->col_name[k], &ev.value))) return rc;
    }
    if ((k = c->col[SHELF__EV_TS]) >= 0 && fl[k] && shelf__parse_ts(fp[k], fl[k], &ev.ts))
        return shelf__imp_bad(imp, SHELF_EFORMAT, k + 1, c->col_name[k],
                              "not a timestamp (unix seconds or ISO 8601)", fp[k], fl[k]);
    if ((k = c->col[SHELF__EV_REC_ID]) >= 0 && fl[k] && !(ev.rec_id = shelf__imp_keep(imp, fp[k], fl[k])))
        return shelf__imp_fail(imp, SHELF_ENOMEM, k + 1, c->col_name[k], "out of memory");
    if ((k = c->col[SHELF__EV_CONTEXT]) >= 0 && fl[k]) {
        size_t n = fl[k];
        size_t marks = shelf__json_mark_nul(fp[k], &n); /* refused below: the text is not stored then */
        cJSON *j = cJSON_ParseWithLength(fp[k], n);
        int ok = cJSON_IsObject(j);
        rc = ok && marks ? shelf__imp_json_texts(imp, j, k + 1, c->col_name[k]) : 0;
        cJSON_Delete(j);
        if (rc) return rc;
        if (!ok) return shelf__imp_bad(imp, SHELF_EFORMAT, k + 1, c->col_name[k], "not a JSON object", fp[k], n);
        if (!(ev.context = shelf__imp_keep(imp, fp[k], fl[k])))
            return shelf__imp_fail(imp, SHELF_ENOMEM, k + 1, c->col_name[k], "out of memory");
    }
    if (c->col[SHELF__EV_TYPE] < 0) imp->res.n_default_type++;
    return shelf__imp_event(imp, &ev);
}

/* The extra columns (not mapped to a field) as a JSON object, or NULL when
 * all are empty. */
static int extras_json(shelf__imp *imp, const csv *c, shelf__sbuf *b, const char **out)
{
    b->len = 0;
    *out = NULL;
    for (size_t i = 0; i < c->n_cols; i++) {
        if (c->col_field[i] >= 0 || c->fl[i] == 0 || !c->col_name[i][0]) continue;
        shelf__sbuf_put(b, b->len ? "," : "{", 1);
        shelf__sbuf_json_str(b, c->col_name[i], strlen(c->col_name[i]));
        shelf__sbuf_put(b, ":", 1);
        shelf__sbuf_json_str(b, c->fp[i], c->fl[i]);
    }
    if (b->len) shelf__sbuf_put(b, "}", 1);
    if (b->oom) return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
    if (b->len) *out = b->p;
    return 0;
}

static const char *opt_text(const csv *c, int field)
{
    int k = c->col[field];
    return k >= 0 && c->fl[k] ? c->fp[k] : NULL;
}

static int created_of(shelf__imp *imp, const csv *c, int field, int64_t *out)
{
    int k = c->col[field];
    *out = 0;
    if (k >= 0 && c->fl[k] && shelf__parse_ts(c->fp[k], c->fl[k], out))
        return shelf__imp_bad(imp, SHELF_EFORMAT, k + 1, c->col_name[k], "not a timestamp (unix seconds or ISO 8601)",
                              c->fp[k], c->fl[k]);
    return 0;
}

static int item_record(shelf__imp *imp, const csv *c, shelf__sbuf *json, shelf__sbuf *name)
{
    int k = c->col[SHELF__IT_ID], rc;
    if (c->fl[k] == 0) return shelf__imp_fail(imp, SHELF_EFORMAT, k + 1, c->col_name[k], "empty item id");
    shelf_item it = {
        .id = c->fp[k],
        .kind = opt_text(c, SHELF__IT_KIND),
        .title = opt_text(c, SHELF__IT_TITLE),
        .text = opt_text(c, SHELF__IT_TEXT),
        .category = shelf__imp_category(imp, opt_text(c, SHELF__IT_CATEGORY)),
        .brand = opt_text(c, SHELF__IT_BRAND),
        .available = 1,
    };
    if ((k = c->col[SHELF__IT_PRICE]) >= 0 && c->fl[k]) {
        if (shelf__parse_f64(c->fp[k], c->fl[k], &it.price))
            return shelf__imp_bad(imp, SHELF_EFORMAT, k + 1, c->col_name[k], "not a number", c->fp[k], c->fl[k]);
        it.has_price = 1;
    }
    if ((k = c->col[SHELF__IT_AVAILABLE]) >= 0 && c->fl[k] && shelf__parse_bool(c->fp[k], c->fl[k], &it.available))
        return shelf__imp_bad(imp, SHELF_EFORMAT, k + 1, c->col_name[k], "not a boolean (1/0, true/false, yes/no)",
                              c->fp[k], c->fl[k]);
    if ((rc = created_of(imp, c, SHELF__IT_CREATED, &it.created))) return rc;
    if ((rc = extras_json(imp, c, json, &it.attributes))) return rc;
    uint32_t idx;
    if ((rc = shelf_store_put_item(imp->st, &it, &idx))) return shelf__imp_store_fail(imp, rc);
    imp->res.n_items++;
    /* each extra value is also a categorical attribute "column=value" */
    for (size_t i = 0; i < c->n_cols; i++) {
        if (c->col_field[i] >= 0 || c->fl[i] == 0 || !c->col_name[i][0]) continue;
        name->len = 0;
        shelf__sbuf_put(name, c->col_name[i], strlen(c->col_name[i]));
        shelf__sbuf_put(name, "=", 1);
        shelf__sbuf_put(name, c->fp[i], c->fl[i]);
        if (name->oom) return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
        if ((rc = shelf_store_item_add_attr(imp->st, idx, name->p, name->len))) return shelf__imp_store_fail(imp, rc);
    }
    return 0;
}

static int user_record(shelf__imp *imp, const csv *c, shelf__sbuf *json)
{
    int k = c->col[SHELF__US_ID], rc;
    if (c->fl[k] == 0) return shelf__imp_fail(imp, SHELF_EFORMAT, k + 1, c->col_name[k], "empty user id");
    shelf_user u = {.id = c->fp[k]};
    if ((rc = created_of(imp, c, SHELF__US_CREATED, &u.created))) return rc;
    if ((rc = extras_json(imp, c, json, &u.attributes))) return rc;
    if ((rc = shelf_store_put_user(imp->st, &u, NULL))) return shelf__imp_store_fail(imp, rc);
    imp->res.n_users++;
    return 0;
}

int shelf__import_csv(shelf__imp *imp, const char *path)
{
    csv c;
    memset(&c, 0, sizeof c);
    c.delim = imp->o->delimiter ? imp->o->delimiter : ',';
    shelf__fieldmap m;
    memset(&m, 0, sizeof m);
    shelf__sbuf json = {0}, name = {0};
    shelf__lines r;
    memset(&r, 0, sizeof r);
    r.fd = -1;
    int rc;
    if (c.delim == '"' || c.delim == '\n' || c.delim == '\r' || c.delim == '\0') {
        rc = shelf_store_fail(imp->st, SHELF_EINVAL, "%s: invalid CSV delimiter", path);
        goto out;
    }
    if ((rc = shelf__fieldmap_init(imp, &m))) goto out;
    if ((rc = shelf__imp_open(imp, &r, path)) || (rc = read_header(imp, &r, &c, &m))) goto out;
    uint32_t default_type = 0;
    if (imp->o->what == SHELF_IMPORT_EVENTS && c.col[SHELF__EV_TYPE] < 0 &&
        (rc = shelf__imp_default_type(imp, &default_type)))
        goto out;
    char *rec;
    size_t len;
    while ((rc = next_record(imp, &r, &c, &rec, &len)) == 1) {
        shelf__imp_tick(imp);
        if ((rc = cut(imp, &c, rec, len))) break;
        switch (imp->o->what) {
        case SHELF_IMPORT_ITEMS: rc = item_record(imp, &c, &json, &name); break;
        case SHELF_IMPORT_USERS: rc = user_record(imp, &c, &json); break;
        default: rc = event_record(imp, &c, default_type); break;
        }
        if (rc) break;
    }
out:
    shelf__imp_close(imp, &r);
    shelf__fieldmap_free(&m);
    shelf__sbuf_free(&json);
    shelf__sbuf_free(&name);
    csv_free(&c);
    return rc;
}
