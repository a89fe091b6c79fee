/* import_csv.c: header-driven CSV (RFC 4180 quoting; the first line is the
 * header) of events, items or users, with the "field=column,..." mapping.
 * The event path is the hot one: fields are cut in place without copies, ids
 * go through the store's in-memory maps, events are added in batches. */
#include "import_int.h"

#include "core/check_int.h"

#include <cjson/cJSON.h>
#include <csv.h>
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
    /* libcsv (Debian libcsv) cuts the records; its field callback copies each
     * field of the record being read here, NUL-terminated */
    struct csv_parser p;
    int p_live;                 /* p initialised */
    char *rb;                   /* the record's fields, one after another */
    size_t rb_len, rb_cap;
    size_t *foff, *flen;        /* [fcap] where each field starts, its length */
    size_t fcap, n_fields;      /* fields of the record so far */
    int row_done, oom;
} csv;

/* ---- records through libcsv -------------------------------------------------------- */

static void on_field(void *s, size_t len, void *ctx)
{
    csv *c = ctx;
    if (c->oom) return;
    if (c->n_fields == c->fcap) {
        size_t cap = c->fcap ? 2 * c->fcap : 16;
        size_t *o = realloc(c->foff, cap * sizeof *o), *l = o ? realloc(c->flen, cap * sizeof *l) : NULL;
        if (o) c->foff = o;
        if (!l) {
            c->oom = 1;
            return;
        }
        c->flen = l;
        c->fcap = cap;
    }
    if (c->rb_len + len + 1 > c->rb_cap) {
        size_t cap = c->rb_cap ? c->rb_cap : 256;
        while (cap < c->rb_len + len + 1) cap *= 2;
        char *b = realloc(c->rb, cap);
        if (!b) {
            c->oom = 1;
            return;
        }
        c->rb = b;
        c->rb_cap = cap;
    }
    if (len) memcpy(c->rb + c->rb_len, s, len);
    c->rb[c->rb_len + len] = '\0';
    c->foff[c->n_fields] = c->rb_len;
    c->flen[c->n_fields++] = len;
    c->rb_len += len + 1;
}

static int no_space(unsigned char ch)
{
    (void)ch;
    return 0;
}

static void on_row(int term, void *ctx)
{
    (void)term;
    ((csv *)ctx)->row_done = 1;
}

/* Where a byte of a line lies: the field (1-based) holding byte off, for a
 * line that starts field `first` of its record, inside quotes or not. */
typedef struct line_pos {
    const csv *c;
    int first, inq;
} line_pos;

static int field_at(const void *ctx, const char *rec, size_t off, const char **name)
{
    const line_pos *lp = ctx;
    int inq = lp->inq, at_start = !lp->inq, f = lp->first;
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
            at_start = ch == lp->c->delim;
            f += at_start;
        }
    }
    *name = lp->c->col_name && (size_t)f <= lp->c->n_cols ? lp->c->col_name[f - 1] : NULL;
    return f;
}

static int fail_quote(shelf__imp *imp, const char *line, size_t at, const line_pos *lp)
{
    const char *name;
    int f = field_at(lp, line, at, &name);
    /* libcsv stops at the byte after a closing quote, or at a quote in a field
     * that did not start with one */
    int after = at > 0 && line[at - 1] == '"' && line[at] != '"';
    return shelf__imp_fail(imp, SHELF_EFORMAT, f, name, "%s",
                           after ? "text after the closing quote"
                                 : "a quote inside an unquoted field (quote the whole field, doubling its quotes)");
}

/* Next record (blank lines skipped): libcsv is fed line by line (a quoted
 * field may hold line breaks) until it ends a row; its fields are then in
 * c->foff/flen. 1, 0 at end of file, or an error naming the place. */
static int next_record(shelf__imp *imp, shelf__lines *r, csv *c)
{
    char *line;
    size_t len;
    int rc;
    do {
        if ((rc = shelf__lines_next(r, &line, &len)) <= 0) return rc;
    } while (len == 0);
    imp->line = r->rec_line;
    c->n_fields = c->rb_len = 0;
    c->row_done = 0;
    line_pos lp = {c, 1, 0};
    for (;;) {
        if ((rc = shelf__imp_utf8(imp, line, len, field_at, &lp))) return rc;
        size_t done = csv_parse(&c->p, line, len, on_field, on_row, c);
        if (done < len) return fail_quote(imp, line, done, &lp);
        /* the line break as it was: inside quotes it belongs to the field */
        static const char *const brk[3] = {"", "\n", "\r\n"};
        size_t bl = r->term == 2 ? 2 : (size_t)r->term;
        if (bl && csv_parse(&c->p, brk[r->term], bl, on_field, on_row, c) < bl)
            return fail_quote(imp, line, len, &lp);
        if (!bl && csv_fini(&c->p, on_field, on_row, c) != 0) break; /* end of file inside quotes */
        if (c->oom) return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
        if (c->row_done) return 1;
        /* a quoted field goes on on the next line */
        lp.first = (int)c->n_fields + 1;
        lp.inq = 1;
        if ((rc = shelf__lines_next(r, &line, &len)) < 0) return rc;
        if (rc == 0) {
            csv_fini(&c->p, on_field, on_row, c);
            break;
        }
    }
    const char *name = c->col_name && c->n_fields < c->n_cols ? c->col_name[c->n_fields] : NULL;
    return shelf__imp_fail(imp, SHELF_EFORMAT, (int)c->n_fields + 1, name,
                           "quoted field not closed before end of file");
}

/* The record's fields into c->fp/fl; checks their count. */
static int cut(shelf__imp *imp, csv *c)
{
    size_t n = c->n_fields;
    if (n < c->n_cols)
        return shelf__imp_fail(imp, SHELF_EFORMAT, (int)n + 1, c->col_name[n], "truncated line: %zu of %zu fields", n,
                               c->n_cols);
    if (n > c->n_cols)
        return shelf__imp_fail(imp, SHELF_EFORMAT, (int)c->n_cols + 1, NULL,
                               "too many fields: %zu (the header has %zu)", n, c->n_cols);
    for (size_t i = 0; i < n; i++) {
        c->fp[i] = c->rb + c->foff[i];
        c->fl[i] = c->flen[i];
    }
    return 0;
}

/* ---- header -------------------------------------------------------------------- */

static void csv_release(csv *c)
{
    for (size_t i = 0; i < c->n_cols && c->col_name; i++) free(c->col_name[i]);
    free(c->col_name);
    free(c->col_field);
    free(c->fp);
    free(c->fl);
    free(c->rb);
    free(c->foff);
    free(c->flen);
    if (c->p_live) csv_free(&c->p);
}

/* The header's names: the first record, or opts->columns ("user,item,ts") for
 * a file without one. */
static int read_header(shelf__imp *imp, shelf__lines *r, csv *c, const shelf__fieldmap *m)
{
    int rc;
    if (imp->o->columns) {
        const char *s = imp->o->columns;
        if (!s[0]) return shelf__imp_fail(imp, SHELF_EINVAL, 0, NULL, "--columns: no column named");
        c->n_fields = c->rb_len = 0;
        for (;;) { /* as if libcsv had read them */
            const char *e = strchr(s, ',');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            on_field((void *)s, n, c);
            if (!e) break;
            s = e + 1;
        }
        if (c->oom) return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
    } else if ((rc = next_record(imp, r, c)) <= 0) {
        return rc < 0 ? rc : shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "empty file: no header");
    }
    size_t n = c->n_fields;
    c->n_cols = n;
    c->col_name = calloc(n, sizeof *c->col_name);
    c->col_field = malloc(n * sizeof *c->col_field);
    c->fp = malloc(n * sizeof *c->fp);
    c->fl = malloc(n * sizeof *c->fl);
    if (!c->col_name || !c->col_field || !c->fp || !c->fl)
        return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = c->rb + c->foff[i];
        size_t sl = c->flen[i];
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
    /* RFC 4180: a quote only around a whole field, the end of file not inside
     * one; spaces are data, not trimmed */
    if (csv_init(&c.p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        rc = shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
        goto out;
    }
    c.p_live = 1;
    csv_set_delim(&c.p, (unsigned char)c.delim);
    csv_set_space_func(&c.p, no_space);
    /* libcsv grows its field buffer by this much at a time (128 bytes by
     * default: a 10 MB field would be copied 80,000 times) */
    csv_set_blk_size(&c.p, 1u << 16);
    if ((rc = shelf__imp_open(imp, &r, path)) || (rc = read_header(imp, &r, &c, &m))) goto out;
    uint32_t default_type = 0;
    if (imp->o->what == SHELF_IMPORT_EVENTS && c.col[SHELF__EV_TYPE] < 0 &&
        (rc = shelf__imp_default_type(imp, &default_type)))
        goto out;
    while ((rc = next_record(imp, &r, &c)) == 1) {
        shelf__imp_tick(imp);
        if ((rc = cut(imp, &c))) break;
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
    csv_release(&c);
    return rc;
}
