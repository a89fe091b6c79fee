/* routes.c: the write and record routes: events (validated, then group
 * committed), items and users (put, get, delete). */
#include "serve_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_MAX 512

static const char *jtype(const cJSON *j)
{
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "invalid";
}

/* the records of a body that is one object, an array, or {"<key>": [...]} */
static const cJSON *records(const cJSON *j, const char *key, int *single)
{
    *single = 0;
    if (cJSON_IsArray(j)) return j;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsObject(j) && cJSON_IsArray(a)) return a;
    *single = 1;
    return j;
}

static int is_int(const cJSON *v) { return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9.0e15; }

/* ---- events ---------------------------------------------------------------------------------- */

static void batch_free(srv_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->ev[i].user);
        free(b->ev[i].rec_id);
        free(b->ev[i].context);
    }
    free(b->ev);
}

/* one event record into e; on error answers 400 and returns non-zero */
static int parse_event(srv_req *r, const cJSON *o, long i, srv_event *e, const char *where)
{
    shelf_server *s = r->srv;
    char id[ID_MAX];
    if (!cJSON_IsObject(o)) return srv_error(r, 400, "bad_event", i, "%s: expected an object, got %s", where, jtype(o)), 1;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "user");
    int rc = srv_json_id(f, id, sizeof id);
    if (rc) return srv_error(r, 400, "bad_event", i, "%s.user: %s", where, !f ? "missing" : rc == SHELF_ERANGE ? "longer than 511 bytes" : "expected a non-empty string"), 1;
    if ((unsigned char)id[0] == 1) return srv_error(r, 400, "bad_event", i, "%s.user: invalid id", where), 1;
    if (!(e->user = strdup(id))) return srv_error(r, 500, "internal", i, "out of memory"), 1;
    f = cJSON_GetObjectItemCaseSensitive(o, "item");
    if ((rc = srv_json_id(f, id, sizeof id)))
        return srv_error(r, 400, "bad_event", i, "%s.item: %s", where, !f ? "missing" : "expected a non-empty string"), 1;
    if ((e->item = srv_item_find(s, id)) == SHELF_NONE)
        return srv_error(r, 400, "bad_event", i, "%s.item: unknown item '%s' (PUT /v1/items/%s first)", where, id, id), 1;
    f = cJSON_GetObjectItemCaseSensitive(o, "type");
    e->type = SHELF_NONE;
    const char *tn = "view";
    if (f) {
        if (!cJSON_IsString(f)) return srv_error(r, 400, "bad_event", i, "%s.type: expected a string, got %s", where, jtype(f)), 1;
        tn = f->valuestring;
    }
    for (uint32_t t = 0; t < s->n_types; t++)
        if (!strcmp(s->type_name[t], tn)) e->type = t;
    if (e->type == SHELF_NONE) return srv_error(r, 400, "bad_event", i, "%s.type: unknown event type '%s'", where, tn), 1;
    f = cJSON_GetObjectItemCaseSensitive(o, "value");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble))
            return srv_error(r, 400, "bad_event", i, "%s.value: expected a number, got %s", where, jtype(f)), 1;
        e->value = (float)f->valuedouble;
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "ts");
    e->ts = (int64_t)time(NULL);
    if (f && !cJSON_IsNull(f)) {
        if (!is_int(f) || f->valuedouble < 0)
            return srv_error(r, 400, "bad_event", i, "%s.ts: expected unix seconds (a non-negative integer), got %s", where, jtype(f)), 1;
        e->ts = (int64_t)f->valuedouble;
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "rec_id");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsString(f)) return srv_error(r, 400, "bad_event", i, "%s.rec_id: expected a string, got %s", where, jtype(f)), 1;
        if (!(e->rec_id = strdup(f->valuestring))) return srv_error(r, 500, "internal", i, "out of memory"), 1;
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "context");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsObject(f)) return srv_error(r, 400, "bad_event", i, "%s.context: expected an object, got %s", where, jtype(f)), 1;
        if (!(e->context = cJSON_PrintUnformatted(f))) return srv_error(r, 500, "internal", i, "out of memory"), 1;
    }
    return 0;
}

int srv_route_events(srv_req *r)
{
    shelf_server *s = r->srv;
    cJSON *j = srv_body_json(r);
    if (!j) return 0;
    int single;
    const cJSON *recs = records(j, "events", &single);
    size_t n = single ? 1 : (size_t)cJSON_GetArraySize(recs);
    if (n > s->o.max_batch) {
        cJSON_Delete(j);
        return srv_error(r, 413, "too_large", -1, "%zu events in one request; at most %u", n, s->o.max_batch);
    }
    if (n == 0) {
        cJSON_Delete(j);
        return srv_error(r, 400, "bad_request", -1, "no events in the body");
    }
    srv_batch b = {0};
    if (!(b.ev = calloc(n, sizeof *b.ev))) {
        cJSON_Delete(j);
        return srv_error(r, 500, "internal", -1, "out of memory");
    }
    b.n = n;
    size_t i = 0;
    int bad = 0;
    char where[48];
    if (single) {
        bad = parse_event(r, recs, -1, &b.ev[0], "event");
    } else {
        for (const cJSON *o = recs->child; o && !bad; o = o->next, i++) {
            snprintf(where, sizeof where, "events[%zu]", i);
            bad = parse_event(r, o, (long)i, &b.ev[i], where);
        }
    }
    cJSON_Delete(j);
    if (bad) { /* nothing of the batch is stored */
        batch_free(&b);
        return 0;
    }
    int rc = srv_ingest_wait(s, &b);
    batch_free(&b);
    if (rc) return srv_error(r, rc == SHELF_EIO && atomic_load(&s->draining) ? 503 : 500, rc == SHELF_EIO && atomic_load(&s->draining) ? "unavailable" : "internal", -1, "events not stored: %s", b.msg);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "accepted", (double)n);
    return srv_json(r, 200, o);
}

/* ---- items ---------------------------------------------------------------------------------------------- */

typedef struct {
    shelf_item it;
    const cJSON *attrs;
    char *attr_text;
} item_in;

/* validates an item object; id given (path) or read from the record */
static int parse_item(srv_req *r, const cJSON *o, const char *path_id, long i, item_in *in, char *idbuf)
{
    const char *w = i >= 0 ? "items[" : "item";
    char where[48];
    if (i >= 0) snprintf(where, sizeof where, "%s%ld]", w, i);
    else snprintf(where, sizeof where, "item");
    memset(in, 0, sizeof *in);
    if (!cJSON_IsObject(o)) return srv_error(r, 400, "bad_item", i, "%s: expected an object, got %s", where, jtype(o)), 1;
    if (path_id) {
        snprintf(idbuf, ID_MAX, "%s", path_id);
    } else {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (srv_json_id(f, idbuf, ID_MAX)) return srv_error(r, 400, "bad_item", i, "%s.id: %s", where, f ? "expected a non-empty string" : "missing"), 1;
    }
    if (!idbuf[0] || (unsigned char)idbuf[0] == 1) return srv_error(r, 400, "bad_item", i, "%s.id: invalid id", where), 1;
    in->it.id = idbuf;
    in->it.available = 1;
    static const char *const tf[] = {"kind", "title", "text", "category", "brand"};
    const char **dst[] = {&in->it.kind, &in->it.title, &in->it.text, &in->it.category, &in->it.brand};
    for (int k = 0; k < 5; k++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, tf[k]);
        if (!f || cJSON_IsNull(f)) continue;
        if (!cJSON_IsString(f)) return srv_error(r, 400, "bad_item", i, "%s.%s: expected a string, got %s", where, tf[k], jtype(f)), 1;
        *dst[k] = f->valuestring[0] ? f->valuestring : NULL;
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "price");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble) || f->valuedouble < 0)
            return srv_error(r, 400, "bad_item", i, "%s.price: expected a non-negative number, got %s", where, jtype(f)), 1;
        in->it.price = f->valuedouble;
        in->it.has_price = 1;
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "available");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsBool(f)) return srv_error(r, 400, "bad_item", i, "%s.available: expected a boolean, got %s", where, jtype(f)), 1;
        in->it.available = cJSON_IsTrue(f);
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "created");
    if (f && !cJSON_IsNull(f)) {
        if (!is_int(f)) return srv_error(r, 400, "bad_item", i, "%s.created: expected unix seconds, got %s", where, jtype(f)), 1;
        in->it.created = (int64_t)f->valuedouble;
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "attributes");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsObject(f)) return srv_error(r, 400, "bad_item", i, "%s.attributes: expected an object, got %s", where, jtype(f)), 1;
        for (const cJSON *a = f->child; a; a = a->next)
            if (!cJSON_IsString(a) && !cJSON_IsNumber(a) && !cJSON_IsBool(a))
                return srv_error(r, 400, "bad_item", i, "%s.attributes.%s: expected a string, number or boolean, got %s", where, a->string, jtype(a)), 1;
        in->attrs = f;
        if (!(in->attr_text = cJSON_PrintUnformatted(f))) return srv_error(r, 500, "internal", i, "out of memory"), 1;
        in->it.attributes = in->attr_text;
    }
    return 0;
}

/* store_mu held, inside a transaction */
static int store_item(shelf_server *s, item_in *in, uint32_t *idx, int *created)
{
    int rc = shelf_store_item_idx(s->st, in->it.id, strlen(in->it.id), 0, idx, NULL);
    *created = rc == SHELF_ENOTFOUND;
    if (!*created && rc) return rc;
    if ((rc = shelf_store_put_item(s->st, &in->it, idx))) return rc;
    if (!*created && (rc = shelf_store_item_clear_attrs(s->st, *idx))) return rc;
    for (const cJSON *a = in->attrs ? in->attrs->child : NULL; a; a = a->next) {
        char v[600];
        int n = shelf__json_kv(a, v, sizeof v);
        if (n <= 0) continue; /* over-long attributes stay in the JSON only */
        if ((rc = shelf_store_item_add_attr(s->st, *idx, v, (size_t)n))) return rc;
    }
    return 0;
}

static int put_items(srv_req *r, item_in *in, size_t n, uint32_t *idx, int *created)
{
    shelf_server *s = r->srv;
    char why[400];
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf_store_begin(s->st);
    for (size_t i = 0; !rc && i < n; i++) rc = store_item(s, &in[i], &idx[i], &created[i]);
    if (!rc) rc = shelf_store_commit(s->st);
    if (rc) {
        snprintf(why, sizeof why, "%s", shelf_store_errmsg(s->st));
        shelf_store_rollback(s->st);
    }
    pthread_mutex_unlock(&s->store_mu);
    if (rc) return srv_error(r, 500, "internal", -1, "items not stored: %s", why), rc;
    for (size_t i = 0; i < n; i++)
        if (srv_item_set(s, idx[i], &in[i].it))
            shelf_error("serve: out of memory updating item %s", in[i].it.id);
    return 0;
}

int srv_route_item_put(srv_req *r, const char *id)
{
    cJSON *j = srv_body_json(r);
    if (!j) return 0;
    char idbuf[ID_MAX];
    item_in in;
    if (strlen(id) >= ID_MAX) {
        cJSON_Delete(j);
        return srv_error(r, 400, "bad_item", -1, "the item id is longer than %d bytes", ID_MAX - 1);
    }
    int bad = parse_item(r, j, id, -1, &in, idbuf);
    uint32_t idx;
    int created = 0;
    if (!bad) bad = put_items(r, &in, 1, &idx, &created) ? 1 : 0;
    free(in.attr_text);
    cJSON_Delete(j);
    if (bad) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddBoolToObject(o, "created", created);
    return srv_json(r, 200, o);
}

int srv_route_items_put(srv_req *r)
{
    shelf_server *s = r->srv;
    cJSON *j = srv_body_json(r);
    if (!j) return 0;
    int single;
    const cJSON *recs = records(j, "items", &single);
    size_t n = single ? 1 : (size_t)cJSON_GetArraySize(recs);
    if (n > s->o.max_batch) {
        cJSON_Delete(j);
        return srv_error(r, 413, "too_large", -1, "%zu items in one request; at most %u", n, s->o.max_batch);
    }
    item_in *in = calloc(n ? n : 1, sizeof *in);
    char(*ids)[ID_MAX] = malloc((n ? n : 1) * sizeof *ids);
    uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
    int *created = calloc(n ? n : 1, sizeof *created);
    int bad = 0;
    if (!in || !ids || !idx || !created) bad = srv_error(r, 500, "internal", -1, "out of memory") || 1;
    size_t i = 0;
    if (!bad) {
        if (single) bad = parse_item(r, recs, NULL, -1, &in[0], ids[0]);
        else
            for (const cJSON *o = recs->child; o && !bad; o = o->next, i++) bad = parse_item(r, o, NULL, (long)i, &in[i], ids[i]);
    }
    if (!bad) bad = put_items(r, in, n, idx, created) ? 1 : 0;
    for (size_t k = 0; in && k < n; k++) free(in[k].attr_text);
    free(in);
    free(ids);
    free(idx);
    free(created);
    cJSON_Delete(j);
    if (bad) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "stored", (double)n);
    return srv_json(r, 200, o);
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v) cJSON_AddStringToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static int item_row(void *ctx, uint32_t idx, const shelf_item *it)
{
    cJSON *o = ctx;
    (void)idx;
    cJSON_AddStringToObject(o, "id", it->id);
    add_str_or_null(o, "kind", it->kind);
    add_str_or_null(o, "title", it->title);
    add_str_or_null(o, "text", it->text);
    add_str_or_null(o, "category", it->category);
    add_str_or_null(o, "brand", it->brand);
    if (it->has_price) cJSON_AddNumberToObject(o, "price", it->price);
    else cJSON_AddNullToObject(o, "price");
    cJSON_AddBoolToObject(o, "available", it->available);
    cJSON *a = it->attributes ? cJSON_Parse(it->attributes) : NULL;
    if (a) cJSON_AddItemToObject(o, "attributes", a);
    else cJSON_AddNullToObject(o, "attributes");
    cJSON_AddNumberToObject(o, "created", (double)it->created);
    return 0;
}

int srv_route_item_get(srv_req *r, const char *id)
{
    shelf_server *s = r->srv;
    uint32_t idx = srv_item_find(s, id);
    if (idx == SHELF_NONE) return srv_error(r, 404, "not_found", -1, "no item '%s'", id);
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf_store_get_item(s->st, idx, item_row, o);
    pthread_mutex_unlock(&s->store_mu);
    if (rc) {
        cJSON_Delete(o);
        return rc == SHELF_ENOTFOUND ? srv_error(r, 404, "not_found", -1, "no item '%s'", id)
                                     : srv_error(r, 500, "internal", -1, "reading item '%s' failed", id);
    }
    return srv_json(r, 200, o);
}

int srv_route_item_delete(srv_req *r, const char *id)
{
    shelf_server *s = r->srv;
    uint32_t idx;
    char why[400];
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf_store_delete_item(s->st, id, strlen(id), &idx);
    snprintf(why, sizeof why, "%s", shelf_store_errmsg(s->st));
    pthread_mutex_unlock(&s->store_mu);
    if (rc == SHELF_ENOTFOUND) return srv_error(r, 404, "not_found", -1, "no item '%s'", id);
    if (rc) return srv_error(r, 500, "internal", -1, "%s", why);
    srv_item_retire(s, idx);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", id);
    return srv_json(r, 200, o);
}

/* ---- users ------------------------------------------------------------------------------------------------ */

static int parse_user(srv_req *r, const cJSON *o, const char *path_id, long i, shelf_user *u, char *idbuf,
                      char **attr_text)
{
    char where[48];
    if (i >= 0) snprintf(where, sizeof where, "users[%ld]", i);
    else snprintf(where, sizeof where, "user");
    memset(u, 0, sizeof *u);
    *attr_text = NULL;
    if (!cJSON_IsObject(o)) return srv_error(r, 400, "bad_user", i, "%s: expected an object, got %s", where, jtype(o)), 1;
    if (path_id) snprintf(idbuf, ID_MAX, "%s", path_id);
    else {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (srv_json_id(f, idbuf, ID_MAX)) return srv_error(r, 400, "bad_user", i, "%s.id: %s", where, f ? "expected a non-empty string" : "missing"), 1;
    }
    if (!idbuf[0] || (unsigned char)idbuf[0] == 1) return srv_error(r, 400, "bad_user", i, "%s.id: invalid id", where), 1;
    u->id = idbuf;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "attributes");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsObject(f)) return srv_error(r, 400, "bad_user", i, "%s.attributes: expected an object, got %s", where, jtype(f)), 1;
        if (!(*attr_text = cJSON_PrintUnformatted(f))) return srv_error(r, 500, "internal", i, "out of memory"), 1;
        u->attributes = *attr_text;
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "created");
    if (f && !cJSON_IsNull(f)) {
        if (!is_int(f)) return srv_error(r, 400, "bad_user", i, "%s.created: expected unix seconds, got %s", where, jtype(f)), 1;
        u->created = (int64_t)f->valuedouble;
    }
    return 0;
}

static int put_users(srv_req *r, shelf_user *u, size_t n, int *created)
{
    shelf_server *s = r->srv;
    uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) return srv_error(r, 500, "internal", -1, "out of memory"), 1;
    char why[400];
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf_store_begin(s->st);
    for (size_t i = 0; !rc && i < n; i++) {
        uint32_t k;
        created[i] = shelf_store_user_idx(s->st, u[i].id, strlen(u[i].id), 0, &k, NULL) == SHELF_ENOTFOUND;
        rc = shelf_store_put_user(s->st, &u[i], &idx[i]);
    }
    if (!rc) rc = shelf_store_commit(s->st);
    if (rc) {
        snprintf(why, sizeof why, "%s", shelf_store_errmsg(s->st));
        shelf_store_rollback(s->st);
    }
    pthread_mutex_unlock(&s->store_mu);
    if (!rc)
        for (size_t i = 0; i < n; i++) {
            if (created[i]) srv_user_add(s, u[i].id, idx[i]);
            srv_user_set_ctx(s, idx[i], u[i].attributes);
        }
    free(idx);
    if (rc) return srv_error(r, 500, "internal", -1, "users not stored: %s", why), 1;
    return 0;
}

int srv_route_user_put(srv_req *r, const char *id)
{
    cJSON *j = srv_body_json(r);
    if (!j) return 0;
    if (strlen(id) >= ID_MAX) {
        cJSON_Delete(j);
        return srv_error(r, 400, "bad_user", -1, "the user id is longer than %d bytes", ID_MAX - 1);
    }
    char idbuf[ID_MAX], *at = NULL;
    shelf_user u;
    int created = 0;
    int bad = parse_user(r, j, id, -1, &u, idbuf, &at);
    if (!bad) bad = put_users(r, &u, 1, &created);
    free(at);
    cJSON_Delete(j);
    if (bad) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddBoolToObject(o, "created", created);
    return srv_json(r, 200, o);
}

int srv_route_users_put(srv_req *r)
{
    shelf_server *s = r->srv;
    cJSON *j = srv_body_json(r);
    if (!j) return 0;
    int single;
    const cJSON *recs = records(j, "users", &single);
    size_t n = single ? 1 : (size_t)cJSON_GetArraySize(recs);
    if (n > s->o.max_batch) {
        cJSON_Delete(j);
        return srv_error(r, 413, "too_large", -1, "%zu users in one request; at most %u", n, s->o.max_batch);
    }
    shelf_user *u = calloc(n ? n : 1, sizeof *u);
    char(*ids)[ID_MAX] = malloc((n ? n : 1) * sizeof *ids);
    char **at = calloc(n ? n : 1, sizeof *at);
    int *created = calloc(n ? n : 1, sizeof *created);
    int bad = 0;
    if (!u || !ids || !at || !created) bad = srv_error(r, 500, "internal", -1, "out of memory") || 1;
    size_t i = 0;
    if (!bad) {
        if (single) bad = parse_user(r, recs, NULL, -1, &u[0], ids[0], &at[0]);
        else
            for (const cJSON *o = recs->child; o && !bad; o = o->next, i++) bad = parse_user(r, o, NULL, (long)i, &u[i], ids[i], &at[i]);
    }
    if (!bad) bad = put_users(r, u, n, created);
    for (size_t k = 0; at && k < n; k++) free(at[k]);
    free(at);
    free(u);
    free(ids);
    free(created);
    cJSON_Delete(j);
    if (bad) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "stored", (double)n);
    return srv_json(r, 200, o);
}

static int user_row(void *ctx, uint32_t idx, const shelf_user *u)
{
    cJSON *o = ctx;
    (void)idx;
    cJSON_AddStringToObject(o, "id", u->id);
    cJSON *a = u->attributes ? cJSON_Parse(u->attributes) : NULL;
    if (a) cJSON_AddItemToObject(o, "attributes", a);
    else cJSON_AddNullToObject(o, "attributes");
    cJSON_AddNumberToObject(o, "created", (double)u->created);
    return 0;
}

int srv_route_user_get(srv_req *r, const char *id)
{
    shelf_server *s = r->srv;
    uint32_t idx = srv_user_find(s, id);
    if (idx == SHELF_NONE) return srv_error(r, 404, "not_found", -1, "no user '%s'", id);
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf_store_get_user(s->st, idx, user_row, o);
    pthread_mutex_unlock(&s->store_mu);
    if (rc) {
        cJSON_Delete(o);
        return rc == SHELF_ENOTFOUND ? srv_error(r, 404, "not_found", -1, "no user '%s'", id)
                                     : srv_error(r, 500, "internal", -1, "reading user '%s' failed", id);
    }
    srv_user *u = srv_user_at(s, idx);
    uint32_t *it = NULL;
    uint16_t *ty = NULL;
    int64_t *ts = NULL;
    size_t cap = 0, n = 0;
    if (u) {
        pthread_mutex_lock(&u->mu);
        n = srv_user_history(s, idx, u, &it, &ty, &ts, &cap);
        pthread_mutex_unlock(&u->mu);
    }
    if (n == (size_t)-1) n = 0;
    cJSON_AddNumberToObject(o, "events", (double)n);
    cJSON *rec = cJSON_AddArrayToObject(o, "recent");
    pthread_rwlock_rdlock(&s->items_rw);
    for (size_t k = n > 20 ? n - 20 : 0; k < n; k++) {
        cJSON *e = cJSON_CreateObject();
        const char *ext = it[k] < s->n_items ? s->item_ext[it[k]] : NULL;
        if (ext) cJSON_AddStringToObject(e, "item", ext);
        else cJSON_AddNullToObject(e, "item"); /* retired since */
        cJSON_AddStringToObject(e, "type", ty[k] < s->n_types ? s->type_name[ty[k]] : "?");
        cJSON_AddNumberToObject(e, "ts", (double)ts[k]);
        cJSON_AddItemToArray(rec, e);
    }
    pthread_rwlock_unlock(&s->items_rw);
    free(it);
    free(ty);
    free(ts);
    return srv_json(r, 200, o);
}

int srv_route_user_delete(srv_req *r, const char *id)
{
    shelf_server *s = r->srv;
    uint32_t idx;
    char why[400];
    /* events being committed for this user finish first: the writer holds
     * store_mu for its whole transaction */
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf_store_delete_user(s->st, id, strlen(id), &idx);
    snprintf(why, sizeof why, "%s", shelf_store_errmsg(s->st));
    if (!rc) {
        /* under store_mu, so no commit for this user slips in between */
        srv_user_add(s, id, SHELF_NONE);
        srv_user_forget(s, idx);
    }
    pthread_mutex_unlock(&s->store_mu);
    if (rc == SHELF_ENOTFOUND) return srv_error(r, 404, "not_found", -1, "no user '%s'", id);
    if (rc) return srv_error(r, 500, "internal", -1, "%s", why);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", id);
    return srv_json(r, 200, o);
}
