/* import_seq.c: the order-only sequence formats: S3-Rec lines "user item_1
 * ... item_n" (with the optional item2attributes JSON) and SASRec "user item"
 * pairs. They carry no timestamps: events get ts 0 and keep file order. */
#include "import_int.h"

#include "core/check_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; }

/* Field (1-based, whitespace separated) that holds byte off of rec. */
static int ws_field_of(const void *ctx, const char *rec, size_t off, const char **name)
{
    (void)ctx;
    int f = 0, in = 0;
    for (size_t i = 0; i <= off; i++) {
        if (is_ws(rec[i])) in = 0;
        else if (!in) in = 1, f++;
    }
    *name = f <= 1 ? "user" : "item";
    return f < 1 ? 1 : f;
}

/* Next whitespace-separated token of [*p, e): 1 and [*tok, *tok + *n), or 0. */
static int token(const char **p, const char *e, const char **tok, size_t *n)
{
    const char *s = *p;
    while (s < e && is_ws(*s)) s++;
    if (s == e) return *p = s, 0;
    const char *t = s;
    while (t < e && !is_ws(*t)) t++;
    *tok = s;
    *n = (size_t)(t - s);
    *p = t;
    return 1;
}

/* One file of sequences; pairs: exactly "user item" per line. */
static int import_lines(shelf__imp *imp, const char *path, int pairs)
{
    uint32_t type;
    int rc = shelf__imp_default_type(imp, &type);
    if (rc) return rc;
    shelf__lines r;
    if ((rc = shelf__imp_open(imp, &r, path))) goto out;
    uint64_t n_rec = 0;
    char *line;
    size_t len;
    while ((rc = shelf__lines_next(&r, &line, &len)) == 1) {
        imp->line = r.rec_line;
        const char *p = line, *e = line + len, *tok, *id;
        size_t n, idn;
        if (!token(&p, e, &tok, &n)) continue; /* blank line */
        n_rec++;
        shelf__imp_tick(imp);
        if ((rc = shelf__imp_utf8(imp, line, len, ws_field_of, NULL))) break;
        if (shelf__parse_id(tok, n, &id, &idn)) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 1, "user", "not an integer", tok, n);
            break;
        }
        shelf_event ev = {.type = type};
        if ((rc = shelf__imp_user(imp, id, idn, &ev.user))) break;
        int field = 1;
        while (token(&p, e, &tok, &n)) {
            field++;
            if (pairs && field > 2) {
                rc = shelf__imp_bad(imp, SHELF_EFORMAT, field, NULL, "too many fields (expected 'user item')",
                                    tok, n);
                break;
            }
            if (shelf__parse_id(tok, n, &id, &idn)) {
                rc = shelf__imp_bad(imp, SHELF_EFORMAT, field, "item", "not an integer", tok, n);
                break;
            }
            if ((rc = shelf__imp_item(imp, id, idn, &ev.item, NULL)) || (rc = shelf__imp_event(imp, &ev)))
                break;
            imp->res.n_default_type++;
        }
        if (rc) break;
        if (field == 1) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, 2, "item", "truncated line: user '%.*s' has no item%s",
                                 (int)(idn > 40 ? 40 : idn), id, pairs ? " (expected 'user item')" : "s");
            break;
        }
    }
    rc = shelf__imp_nonempty(imp, rc, n_rec);
out:
    shelf__imp_close(imp, &r);
    return rc;
}

/* Line (1-based) of byte off in text. */
static uint64_t line_of(const char *text, size_t off)
{
    uint64_t l = 1;
    for (const char *p = text; (p = memchr(p, '\n', (size_t)(text + off - p))) != NULL; p++) l++;
    return l;
}

/* Decimal text of an attribute id (a non-negative integral number or a
 * string of digits) into buf; 0 or -1. */
static int attr_text(const cJSON *a, char *buf, size_t cap, const char **name, size_t *len)
{
    if (cJSON_IsNumber(a)) {
        double v = a->valuedouble;
        if (!(v >= 0 && v <= 9007199254740992.0) || v != floor(v)) return -1;
        *len = (size_t)snprintf(buf, cap, "%.0f", v);
        *name = buf;
        return 0;
    }
    if (cJSON_IsString(a)) return shelf__parse_id(a->valuestring, strlen(a->valuestring), name, len);
    return -1;
}

/* The S3-Rec item2attributes file: {"<item id>": [attr id, ...], ...}. */
static int import_attrs(shelf__imp *imp, const char *path)
{
    imp->path = path;
    imp->line = 0;
    char *text;
    size_t len;
    int rc = shelf__read_file(imp->st, path, &text, &len);
    if (rc) return rc;
    cJSON *root = NULL;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) i++;
    if (i == len) {
        rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "empty file");
        goto out;
    }
    if (memchr(text, '\0', len)) {
        size_t at = (size_t)((char *)memchr(text, '\0', len) - text);
        imp->line = line_of(text, at);
        rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "NUL byte in JSON text");
        goto out;
    }
    size_t marks = shelf__json_mark_nul(text, &len); /* a \u0000 escape: refused below, with its key */
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        imp->line = line_of(text, at);
        rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "invalid JSON at byte %zu", at + 1);
        goto out;
    }
    for (const char *q = end; q < text + len; q++) {
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            imp->line = line_of(text, (size_t)(q - text));
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "trailing data after the JSON object");
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "not a JSON object {\"<item id>\": [attribute ids]}");
        goto out;
    }
    if (marks && (rc = shelf__imp_json_texts(imp, root, 0, NULL))) goto out;
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *key = it->string ? it->string : "", *id;
        size_t klen = strlen(key), idn;
        if ((rc = shelf__imp_utf8(imp, key, klen, NULL, NULL))) goto out;
        if (shelf__parse_id(key, klen, &id, &idn)) {
            rc = shelf__imp_bad(imp, SHELF_EFORMAT, 0, NULL, "item id is not an integer", key, klen);
            goto out;
        }
        if (!cJSON_IsArray(it)) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, key, "expected an array of attribute ids");
            goto out;
        }
        uint32_t item;
        if ((rc = shelf__imp_item(imp, id, idn, &item, NULL))) goto out;
        int k = 0;
        for (const cJSON *a = it->child; a; a = a->next) {
            char buf[32];
            const char *name;
            size_t nlen;
            k++;
            if (attr_text(a, buf, sizeof buf, &name, &nlen)) {
                rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, key, "attribute %d: not a non-negative integer", k);
                goto out;
            }
            if ((rc = shelf_store_item_add_attr(imp->st, item, name, nlen))) {
                rc = shelf__imp_store_fail(imp, rc);
                goto out;
            }
        }
    }
out:
    cJSON_Delete(root);
    free(text);
    return rc;
}

int shelf__import_s3rec(shelf__imp *imp, const char *path)
{
    int rc = import_lines(imp, path, 0);
    if (!rc && imp->o->attributes_path) rc = shelf__imp_flush(imp);
    if (!rc && imp->o->attributes_path) rc = import_attrs(imp, imp->o->attributes_path);
    return rc;
}

int shelf__import_pairs(shelf__imp *imp, const char *path) { return import_lines(imp, path, 1); }
