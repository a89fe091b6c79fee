/* import_jsonl.c: JSON Lines of events, items or users (one object per
 * line, keys named by the "field=key,..." mapping), parsed with cJSON. Keys
 * of items and users that are not fields become their attributes. */
#include "import_int.h"

#include "core/check_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *type_name(const cJSON *j)
{
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "null";
}

static const cJSON *get(const cJSON *obj, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(j) ? NULL : j;
}

/* An integral number as decimal text into buf; 0 or -1. */
static int int_text(double v, char *buf, size_t cap, size_t *len)
{
    if (!(fabs(v) <= 9007199254740992.0) || v != floor(v)) return -1;
    *len = (size_t)snprintf(buf, cap, "%.0f", v);
    return 0;
}

/* Text of an id or a short text field: a string, or an integral number
 * (written into buf). Absent: *s NULL. */
static int text_of(shelf__imp *imp, const cJSON *j, const char *key, int integer_only, char *buf, size_t cap,
                   const char **s, size_t *len)
{
    *s = NULL;
    *len = 0;
    if (!j) return 0;
    if (cJSON_IsString(j)) {
        *s = j->valuestring;
        *len = strlen(j->valuestring);
        return 0;
    }
    if (cJSON_IsNumber(j)) {
        if (int_text(j->valuedouble, buf, cap, len) == 0) {
            *s = buf;
            return 0;
        }
        if (!integer_only) {
            *len = (size_t)snprintf(buf, cap, "%.17g", j->valuedouble);
            *s = buf;
            return 0;
        }
        return shelf__imp_fail(imp, SHELF_EFORMAT, 0, key, "expected a string or an integer, got %g", j->valuedouble);
    }
    return shelf__imp_fail(imp, SHELF_EFORMAT, 0, key, "expected a string%s, got %s",
                           integer_only ? " or an integer" : " or a number", type_name(j));
}

static int number_of(shelf__imp *imp, const cJSON *j, const char *key, double *out)
{
    if (cJSON_IsNumber(j)) { /* cJSON reads 1e400 as Inf */
        if (!isfinite(j->valuedouble)) return shelf__imp_fail(imp, SHELF_ERANGE, 0, key, "not a finite number");
        return *out = j->valuedouble, 0;
    }
    if (cJSON_IsString(j)) {
        if (shelf__parse_f64(j->valuestring, strlen(j->valuestring), out) == 0) return 0;
        return shelf__imp_bad(imp, SHELF_EFORMAT, 0, key, "not a number", j->valuestring, strlen(j->valuestring));
    }
    return shelf__imp_fail(imp, SHELF_EFORMAT, 0, key, "expected a number, got %s", type_name(j));
}

static int ts_of(shelf__imp *imp, const cJSON *j, const char *key, int64_t *out)
{
    *out = 0;
    if (!j) return 0;
    if (cJSON_IsNumber(j)) {
        double v = j->valuedouble;
        if (!(fabs(v) < 9.2e18)) return shelf__imp_fail(imp, SHELF_ERANGE, 0, key, "timestamp out of range");
        *out = (int64_t)v;
        return 0;
    }
    if (cJSON_IsString(j)) {
        size_t n = strlen(j->valuestring);
        if (n == 0 || shelf__parse_ts(j->valuestring, n, out) == 0) return 0;
        return shelf__imp_bad(imp, SHELF_EFORMAT, 0, key, "not a timestamp (unix seconds or ISO 8601)",
                              j->valuestring, n);
    }
    return shelf__imp_fail(imp, SHELF_EFORMAT, 0, key, "expected a timestamp (number or string), got %s",
                           type_name(j));
}

/* default_type/has_default: opts->event_type, looked up on first need. */
static int event_record(shelf__imp *imp, const cJSON *o, const shelf__fieldmap *m, uint32_t *default_type,
                        int *has_default)
{
    char buf[40];
    const char *s;
    size_t n;
    int rc;
    shelf_event ev = {0};
    /* the type first: a row the type map drops makes no user or item */
    const char *k = m->key[SHELF__EV_TYPE];
    const cJSON *j = get(o, k);
    if (j) {
        if (!cJSON_IsString(j))
            return shelf__imp_fail(imp, SHELF_EFORMAT, 0, k, "expected an event type name, got %s", type_name(j));
        if ((rc = shelf__imp_type(imp, j->valuestring, strlen(j->valuestring), 0, k, &ev.type))) return rc;
        if (ev.type == SHELF__IMP_DROP) {
            imp->res.n_dropped++;
            return 0;
        }
    } else {
        if (!*has_default && (rc = shelf__imp_default_type(imp, default_type))) return rc;
        *has_default = 1;
        ev.type = *default_type;
    }
    /* rows whose user or item id names no one (empty, null-like, JSON null) are skipped, counted by reason */
    const char *ku = m->key[SHELF__EV_USER], *ki = m->key[SHELF__EV_ITEM], *us, *is;
    char ubuf[40];
    size_t un, in;
    const cJSON *uj = cJSON_GetObjectItemCaseSensitive(o, ku), *ij = cJSON_GetObjectItemCaseSensitive(o, ki);
    if (!uj) return shelf__imp_fail(imp, SHELF_EFORMAT, 0, ku, "missing");
    if (!ij) return shelf__imp_fail(imp, SHELF_EFORMAT, 0, ki, "missing");
    if ((!cJSON_IsNull(uj) && (rc = text_of(imp, uj, ku, 1, ubuf, sizeof ubuf, &us, &un))) ||
        (!cJSON_IsNull(ij) && (rc = text_of(imp, ij, ki, 1, buf, sizeof buf, &is, &in))))
        return rc;
    if (cJSON_IsNull(uj)) us = "null", un = 4; /* counted as null-like */
    if (cJSON_IsNull(ij)) is = "null", in = 4;
    if (shelf__imp_skip_id(imp, us, un, 1) || shelf__imp_skip_id(imp, is, in, 0)) return 0;
    if ((rc = shelf__imp_user(imp, us, un, &ev.user)) || (rc = shelf__imp_item(imp, is, in, &ev.item, NULL))) return rc;
    k = m->key[SHELF__EV_VALUE];
    if ((j = get(o, k))) {
        double v;
        if ((rc = number_of(imp, j, k, &v)) || (rc = shelf__imp_value(imp, v, 0, k, &ev.value))) return rc;
    }
    k = m->key[SHELF__EV_TS];
    if ((rc = ts_of(imp, get(o, k), k, &ev.ts))) return rc;
    k = m->key[SHELF__EV_REC_ID];
    if ((rc = text_of(imp, get(o, k), k, 0, buf, sizeof buf, &s, &n))) return rc;
    if (s && n && !(ev.rec_id = shelf__imp_keep(imp, s, n)))
        return shelf__imp_fail(imp, SHELF_ENOMEM, 0, k, "out of memory");
    k = m->key[SHELF__EV_CONTEXT];
    if ((j = get(o, k))) {
        if (!cJSON_IsObject(j)) return shelf__imp_fail(imp, SHELF_EFORMAT, 0, k, "expected an object, got %s", type_name(j));
        char *t = cJSON_PrintUnformatted(j);
        if (!t || !(ev.context = shelf__imp_keep(imp, t, strlen(t)))) {
            free(t);
            return shelf__imp_fail(imp, SHELF_ENOMEM, 0, k, "out of memory");
        }
        free(t);
    }
    if (!get(o, m->key[SHELF__EV_TYPE])) imp->res.n_default_type++;
    return shelf__imp_event(imp, &ev);
}

static int is_field_key(const shelf__fieldmap *m, const char *key)
{
    for (size_t f = 0; f < m->n; f++)
        if (strcmp(m->key[f], key) == 0) return 1;
    return 0;
}

/* Appends "key":value of each extra member of o (those named by no field;
 * the members of an "attributes" object count as extras) to b. */
static void extras_json(const cJSON *o, const shelf__fieldmap *m, shelf__sbuf *b, int nested)
{
    for (const cJSON *c = o->child; c; c = c->next) {
        if (!c->string || (!nested && is_field_key(m, c->string))) continue;
        if (!nested && strcmp(c->string, "attributes") == 0 && cJSON_IsObject(c)) {
            extras_json(c, m, b, 1);
            continue;
        }
        char *v = cJSON_PrintUnformatted(c);
        if (!v) {
            b->oom = 1;
            return;
        }
        shelf__sbuf_put(b, b->len ? "," : "{", 1);
        shelf__sbuf_json_str(b, c->string, strlen(c->string));
        shelf__sbuf_put(b, ":", 1);
        shelf__sbuf_put(b, v, strlen(v));
        free(v);
    }
}

/* Links "key=value" attributes for the scalar extras (and the scalar
 * elements of array extras) of item idx. */
static int extras_link(shelf__imp *imp, const cJSON *o, const shelf__fieldmap *m, uint32_t idx, shelf__sbuf *b,
                       int nested)
{
    for (const cJSON *c = o->child; c; c = c->next) {
        if (!c->string || (!nested && is_field_key(m, c->string))) continue;
        if (!nested && strcmp(c->string, "attributes") == 0 && cJSON_IsObject(c)) {
            int rc = extras_link(imp, c, m, idx, b, 1);
            if (rc) return rc;
            continue;
        }
        const cJSON *v = cJSON_IsArray(c) ? c->child : c;
        for (; v; v = cJSON_IsArray(c) ? v->next : NULL) {
            char num[40];
            const char *t = NULL;
            size_t n = 0;
            if (cJSON_IsString(v)) t = v->valuestring, n = strlen(t);
            else if (cJSON_IsBool(v)) t = cJSON_IsTrue(v) ? "true" : "false", n = strlen(t);
            else if (cJSON_IsNumber(v)) {
                if (int_text(v->valuedouble, num, sizeof num, &n))
                    n = (size_t)snprintf(num, sizeof num, "%.15g", v->valuedouble);
                t = num;
            }
            if (!t || !n) continue;
            b->len = 0;
            shelf__sbuf_put(b, c->string, strlen(c->string));
            shelf__sbuf_put(b, "=", 1);
            shelf__sbuf_put(b, t, n);
            if (b->oom) return shelf__imp_fail(imp, SHELF_ENOMEM, 0, c->string, "out of memory");
            int rc = shelf_store_item_add_attr(imp->st, idx, b->p, b->len);
            if (rc) return shelf__imp_store_fail(imp, rc);
        }
    }
    return 0;
}

static int attributes_of(shelf__imp *imp, const cJSON *o, const shelf__fieldmap *m, shelf__sbuf *b,
                         const char **out)
{
    b->len = 0;
    *out = NULL;
    extras_json(o, m, b, 0);
    if (b->len) shelf__sbuf_put(b, "}", 1);
    if (b->oom) return shelf__imp_fail(imp, SHELF_ENOMEM, 0, NULL, "out of memory");
    if (b->len) *out = b->p;
    return 0;
}

static int item_record(shelf__imp *imp, const cJSON *o, const shelf__fieldmap *m, shelf__sbuf *b)
{
    /* id and the five text fields, each with room for a number's text */
    static const int text_fields[] = {SHELF__IT_KIND, SHELF__IT_TITLE, SHELF__IT_TEXT, SHELF__IT_CATEGORY,
                                      SHELF__IT_BRAND};
    char buf[6][40];
    const char *txt[6];
    size_t n;
    int rc;
    const char *k = m->key[SHELF__IT_ID];
    if ((rc = text_of(imp, get(o, k), k, 1, buf[0], sizeof buf[0], &txt[0], &n))) return rc;
    if (!txt[0] || !n) return shelf__imp_fail(imp, SHELF_EFORMAT, 0, k, txt[0] ? "empty item id" : "missing");
    for (int i = 0; i < 5; i++) {
        k = m->key[text_fields[i]];
        if ((rc = text_of(imp, get(o, k), k, 0, buf[i + 1], sizeof buf[i + 1], &txt[i + 1], &n))) return rc;
        if (txt[i + 1] && !n) txt[i + 1] = NULL;
    }
    shelf_item it = {.id = txt[0], .kind = txt[1], .title = txt[2], .text = txt[3],
                     .category = shelf__imp_category(imp, txt[4]),
                     .brand = txt[5], .available = 1};
    const cJSON *j;
    k = m->key[SHELF__IT_PRICE];
    if ((j = get(o, k))) {
        if ((rc = number_of(imp, j, k, &it.price))) return rc;
        it.has_price = 1;
    }
    k = m->key[SHELF__IT_AVAILABLE];
    if ((j = get(o, k))) {
        if (cJSON_IsBool(j)) it.available = cJSON_IsTrue(j);
        else if (cJSON_IsNumber(j) && (j->valuedouble == 0 || j->valuedouble == 1)) it.available = j->valuedouble == 1;
        else if (!cJSON_IsString(j) || shelf__parse_bool(j->valuestring, strlen(j->valuestring), &it.available))
            return shelf__imp_fail(imp, SHELF_EFORMAT, 0, k, "expected a boolean, got %s", type_name(j));
    }
    k = m->key[SHELF__IT_CREATED];
    if ((rc = ts_of(imp, get(o, k), k, &it.created))) return rc;
    if ((rc = attributes_of(imp, o, m, b, &it.attributes))) return rc;
    uint32_t idx;
    if ((rc = shelf_store_put_item(imp->st, &it, &idx))) return shelf__imp_store_fail(imp, rc);
    imp->res.n_items++;
    return extras_link(imp, o, m, idx, b, 0);
}

static int user_record(shelf__imp *imp, const cJSON *o, const shelf__fieldmap *m, shelf__sbuf *b)
{
    char buf[40];
    size_t n;
    int rc;
    shelf_user u = {0};
    const char *k = m->key[SHELF__US_ID];
    if ((rc = text_of(imp, get(o, k), k, 1, buf, sizeof buf, &u.id, &n))) return rc;
    if (!u.id || !n) return shelf__imp_fail(imp, SHELF_EFORMAT, 0, k, u.id ? "empty user id" : "missing");
    k = m->key[SHELF__US_CREATED];
    if ((rc = ts_of(imp, get(o, k), k, &u.created))) return rc;
    if ((rc = attributes_of(imp, o, m, b, &u.attributes))) return rc;
    if ((rc = shelf_store_put_user(imp->st, &u, NULL))) return shelf__imp_store_fail(imp, rc);
    imp->res.n_users++;
    return 0;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

int shelf__import_jsonl(shelf__imp *imp, const char *path)
{
    shelf__fieldmap m;
    shelf__sbuf b = {0};
    shelf__lines r;
    memset(&r, 0, sizeof r);
    r.fd = -1;
    int rc = shelf__fieldmap_init(imp, &m);
    if (rc || (rc = shelf__imp_open(imp, &r, path))) goto out;
    uint32_t default_type = 0;
    int has_default = 0;
    uint64_t n_rec = 0;
    char *line;
    size_t len;
    while ((rc = shelf__lines_next(&r, &line, &len)) == 1) {
        imp->line = r.rec_line;
        if (blank(line, len)) continue;
        n_rec++;
        shelf__imp_tick(imp);
        if ((rc = shelf__imp_utf8(imp, line, len, NULL, NULL))) break;
        size_t marks = shelf__json_mark_nul(line, &len); /* a \u0000 escape: refused below, with its key */
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, 0);
        if (!o) {
            size_t at = end && end >= line && end <= line + len ? (size_t)(end - line) : 0;
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "invalid JSON at byte column %zu", at + 1);
            break;
        }
        if (!blank(end, (size_t)(line + len - end))) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "text after the JSON value at byte column %zu",
                                 (size_t)(end - line) + 1);
        } else if (!cJSON_IsObject(o)) {
            rc = shelf__imp_fail(imp, SHELF_EFORMAT, 0, NULL, "not a JSON object (%s)", type_name(o));
        } else {
            /* the raw line was sound UTF-8: only a \u0000 escape makes a bad string */
            if (marks) rc = shelf__imp_json_texts(imp, o, 0, NULL);
            if (!rc) switch (imp->o->what) {
            case SHELF_IMPORT_ITEMS: rc = item_record(imp, o, &m, &b); break;
            case SHELF_IMPORT_USERS: rc = user_record(imp, o, &m, &b); break;
            default: rc = event_record(imp, o, &m, &default_type, &has_default); break;
            }
        }
        cJSON_Delete(o);
        if (rc) break;
    }
    rc = shelf__imp_nonempty(imp, rc, n_rec);
out:
    shelf__imp_close(imp, &r);
    shelf__fieldmap_free(&m);
    shelf__sbuf_free(&b);
    return rc;
}
