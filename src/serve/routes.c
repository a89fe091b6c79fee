/* routes.c: the write and record routes: events (validated, then group
 * committed), items and users (put, get, delete). */
#include "serve_int.h"

#include "core/check_int.h"

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

/* The body as JSON. Each \u0000 escape is first rewritten into a mark that
 * check_texts refuses with its place (cJSON would end the string there:
 * "ab\u0000cd" read as "ab"); a raw NUL byte is never valid JSON. On error
 * answers 400 itself and returns NULL. */
static cJSON *body_json(srv_req *r)
{
    const char *nul = r->len ? memchr(r->body, '\0', r->len) : NULL;
    if (nul) return srv_error(r, 400, "bad_json", -1, "the body holds a NUL byte at byte offset %zu", (size_t)(nul - r->body)), NULL;
    if (r->len) shelf__json_mark_nul(r->body, &r->len);
    return srv_body_json(r);
}

/* Every string and member name of record o (events[i], items[i], ...) is
 * valid UTF-8 without NUL; else answers 400 naming the JSON path and returns 1. */
static int check_texts(srv_req *r, const cJSON *o, long i, const char *where, const char *code)
{
    char path[160], why[120];
    if (!shelf__check_json(o, path, sizeof path, why, sizeof why)) return 0;
    return srv_error(r, 400, code, i, "%s%s: %s", where, path, why), 1;
}

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
    if (check_texts(r, o, i, where, "bad_event")) return 1;
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
        char why[96];
        if (!cJSON_IsNumber(f))
            return srv_error(r, 400, "bad_event", i, "%s.value: expected a number, got %s", where, jtype(f)), 1;
        if (shelf__check_float(f->valuedouble, &e->value, why, sizeof why))
            return srv_error(r, 400, "bad_event", i, "%s.value: %s", where, why), 1;
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

int srv_route_events(srv_req *r, char *const *arg)
{
    (void)arg;
    shelf_server *s = r->srv;
    cJSON *j = body_json(r);
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

/* ---- items and users: PUT of one record or a batch ------------------------------------------------ */

/* one item or user of a PUT */
typedef struct rec_in {
    char id[ID_MAX];
    shelf_item it;      /* items */
    shelf_user u;       /* users */
    const cJSON *attrs; /* items: the attributes to link */
    char *attr_text;    /* the attributes as JSON text (owned) */
    uint32_t idx;
    int created;
} rec_in;

typedef struct rec_kind {
    const char *one, *many, *bad; /* "item", "items", "bad_item" */
    /* the record's fields (its id is set); answers 400 and returns 1 on error */
    int (*fields)(srv_req *r, const cJSON *o, long i, const char *where, rec_in *in);
    /* writes it: store_mu held, inside the transaction */
    int (*store)(shelf_server *s, rec_in *in);
    /* after the commit: the server's own state */
    void (*apply)(shelf_server *s, rec_in *in);
} rec_kind;

static int item_fields(srv_req *r, const cJSON *o, long i, const char *where, rec_in *in)
{
    in->it.id = in->id;
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

static int item_store(shelf_server *s, rec_in *in)
{
    int rc = shelf_store_item_idx(s->st, in->id, strlen(in->id), 0, &in->idx, NULL);
    in->created = rc == SHELF_ENOTFOUND;
    if (!in->created && rc) return rc;
    if ((rc = shelf_store_put_item(s->st, &in->it, &in->idx))) return rc;
    if (!in->created && (rc = shelf_store_item_clear_attrs(s->st, in->idx))) return rc;
    for (const cJSON *a = in->attrs ? in->attrs->child : NULL; a; a = a->next) {
        char v[600];
        int n = shelf__json_kv(a, v, sizeof v);
        if (n <= 0) continue; /* over-long attributes stay in the JSON only */
        if ((rc = shelf_store_item_add_attr(s->st, in->idx, v, (size_t)n))) return rc;
    }
    return 0;
}

static void item_apply(shelf_server *s, rec_in *in)
{
    if (srv_item_set(s, in->idx, &in->it)) shelf_error("serve: out of memory updating item %s", in->id);
}

static int user_fields(srv_req *r, const cJSON *o, long i, const char *where, rec_in *in)
{
    in->u.id = in->id;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "attributes");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsObject(f)) return srv_error(r, 400, "bad_user", i, "%s.attributes: expected an object, got %s", where, jtype(f)), 1;
        if (!(in->attr_text = cJSON_PrintUnformatted(f))) return srv_error(r, 500, "internal", i, "out of memory"), 1;
        in->u.attributes = in->attr_text;
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "created");
    if (f && !cJSON_IsNull(f)) {
        if (!is_int(f)) return srv_error(r, 400, "bad_user", i, "%s.created: expected unix seconds, got %s", where, jtype(f)), 1;
        in->u.created = (int64_t)f->valuedouble;
    }
    return 0;
}

static int user_store(shelf_server *s, rec_in *in)
{
    uint32_t k;
    in->created = shelf_store_user_idx(s->st, in->id, strlen(in->id), 0, &k, NULL) == SHELF_ENOTFOUND;
    return shelf_store_put_user(s->st, &in->u, &in->idx);
}

static void user_apply(shelf_server *s, rec_in *in)
{
    if (in->created) srv_user_add(s, in->id, in->idx);
    srv_user_set_ctx(s, in->idx, in->u.attributes);
}

static const rec_kind ITEMS = {"item", "items", "bad_item", item_fields, item_store, item_apply};
static const rec_kind USERS = {"user", "users", "bad_user", user_fields, user_store, user_apply};

/* a record: its id (from the path, or its "id" field) and fields */
static int parse_rec(srv_req *r, const rec_kind *k, const cJSON *o, const char *path_id, long i, rec_in *in)
{
    char where[48];
    if (i >= 0) snprintf(where, sizeof where, "%s[%ld]", k->many, i);
    else snprintf(where, sizeof where, "%s", k->one);
    memset(in, 0, sizeof *in);
    if (!cJSON_IsObject(o)) return srv_error(r, 400, k->bad, i, "%s: expected an object, got %s", where, jtype(o)), 1;
    if (check_texts(r, o, i, where, k->bad)) return 1;
    if (path_id) {
        snprintf(in->id, sizeof in->id, "%s", path_id);
    } else {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (srv_json_id(f, in->id, sizeof in->id))
            return srv_error(r, 400, k->bad, i, "%s.id: %s", where, f ? "expected a non-empty string" : "missing"), 1;
    }
    if (!in->id[0] || (unsigned char)in->id[0] == 1) return srv_error(r, 400, k->bad, i, "%s.id: invalid id", where), 1;
    return k->fields(r, o, i, where, in);
}

/* all the records in one transaction, then the server's state */
static int put_recs(srv_req *r, const rec_kind *k, rec_in *in, size_t n)
{
    shelf_server *s = r->srv;
    char why[SRV_WHY] = "";
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf_store_begin(s->st);
    for (size_t i = 0; !rc && i < n; i++) rc = k->store(s, &in[i]);
    if (!rc) rc = shelf_store_commit(s->st);
    if (rc) {
        snprintf(why, sizeof why, "%s", shelf_store_errmsg(s->st));
        shelf_store_rollback(s->st);
    }
    pthread_mutex_unlock(&s->store_mu);
    srv_write_outcome(s, rc, k->many, why);
    if (rc) return srv_error(r, 500, "internal", -1, "%s not stored: %s", k->many, why), 1;
    for (size_t i = 0; i < n; i++) k->apply(s, &in[i]);
    return 0;
}

/* PUT /v1/{items,users}/{id} */
static int put_one(srv_req *r, const rec_kind *k, const char *id)
{
    cJSON *j = body_json(r);
    if (!j) return 0;
    char why[96] = "";
    if (strlen(id) >= ID_MAX) snprintf(why, sizeof why, "longer than %d bytes", ID_MAX - 1);
    else shelf__check_url_text_why(id, strlen(id), why, sizeof why);
    if (why[0]) {
        cJSON_Delete(j);
        return srv_error(r, 400, k->bad, -1, "the %s id in the path: %s", k->one, why);
    }
    rec_in in;
    int bad = parse_rec(r, k, j, id, -1, &in) || put_recs(r, k, &in, 1);
    free(in.attr_text);
    cJSON_Delete(j);
    if (bad) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddBoolToObject(o, "created", in.created);
    return srv_json(r, 200, o);
}

/* PUT /v1/{items,users}: an array, {"<many>": [...]} or one record; all or nothing */
static int put_batch(srv_req *r, const rec_kind *k)
{
    shelf_server *s = r->srv;
    cJSON *j = body_json(r);
    if (!j) return 0;
    int single;
    const cJSON *recs = records(j, k->many, &single);
    size_t n = single ? 1 : (size_t)cJSON_GetArraySize(recs);
    if (n > s->o.max_batch) {
        cJSON_Delete(j);
        return srv_error(r, 413, "too_large", -1, "%zu %s in one request; at most %u", n, k->many, s->o.max_batch);
    }
    rec_in *in = calloc(n ? n : 1, sizeof *in);
    int bad = in ? 0 : (srv_error(r, 500, "internal", -1, "out of memory"), 1);
    if (!bad && single) {
        bad = parse_rec(r, k, recs, NULL, -1, &in[0]);
    } else if (!bad) {
        size_t i = 0;
        for (const cJSON *o = recs->child; o && !bad; o = o->next, i++) bad = parse_rec(r, k, o, NULL, (long)i, &in[i]);
    }
    if (!bad) bad = put_recs(r, k, in, n);
    for (size_t q = 0; in && q < n; q++) free(in[q].attr_text);
    free(in);
    cJSON_Delete(j);
    if (bad) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "stored", (double)n);
    return srv_json(r, 200, o);
}

static cJSON *stored_row(srv_req *r, int user, const char *id, uint32_t idx);

/* RFC 7386 JSON merge patch of patch into target (objects): a member set
 * to null is removed, an object merges into an object, anything else
 * replaces. 0, or -1 out of memory. */
static int merge_patch(cJSON *target, const cJSON *patch)
{
    for (const cJSON *p = patch->child; p; p = p->next) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(target, p->string);
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
        } else if (cJSON_IsObject(p) && cJSON_IsObject(t)) {
            if (merge_patch(t, p)) return -1;
        } else {
            cJSON *c = cJSON_Duplicate(p, 1);
            if (!c) return -1;
            if (t) cJSON_ReplaceItemInObjectCaseSensitive(target, p->string, c);
            else cJSON_AddItemToObject(target, p->string, c);
        }
    }
    return 0;
}

/* PATCH /v1/{items,users}/{id}: the stored record with the body merged in
 * (JSON merge patch: a field set to null is cleared, attributes merge key
 * by key), checked and stored as a PUT of the whole would be; answers the
 * record as GET shows it. PATCHes run one at a time, so none is lost. */
static int patch_one(srv_req *r, const rec_kind *k, int user, const char *id)
{
    shelf_server *s = r->srv;
    cJSON *j = body_json(r);
    if (!j) return 0;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return srv_error(r, 400, k->bad, -1, "a merge patch is a JSON object (RFC 7386)");
    }
    if (cJSON_GetObjectItemCaseSensitive(j, "id")) {
        cJSON_Delete(j);
        return srv_error(r, 400, k->bad, -1, "id: the %s id is the path's and cannot be patched", k->one);
    }
    pthread_mutex_lock(&s->patch_mu);
    cJSON *o = stored_row(r, user, id, user ? srv_user_find(s, id) : srv_item_find(s, id));
    int bad = !o;
    if (!bad && merge_patch(o, j)) bad = (srv_error(r, 500, "internal", -1, "out of memory"), 1);
    rec_in in = {0};
    if (!bad) bad = parse_rec(r, k, o, id, -1, &in) || put_recs(r, k, &in, 1);
    free(in.attr_text);
    cJSON_Delete(o);
    o = bad ? NULL : stored_row(r, user, id, user ? srv_user_find(s, id) : srv_item_find(s, id));
    pthread_mutex_unlock(&s->patch_mu);
    cJSON_Delete(j);
    return o ? srv_json(r, 200, o) : 0;
}

int srv_route_item_patch(srv_req *r, char *const *arg) { return patch_one(r, &ITEMS, 0, arg[0]); }
int srv_route_user_patch(srv_req *r, char *const *arg) { return patch_one(r, &USERS, 1, arg[0]); }

int srv_route_item_put(srv_req *r, char *const *arg) { return put_one(r, &ITEMS, arg[0]); }
int srv_route_items_put(srv_req *r, char *const *arg) { return (void)arg, put_batch(r, &ITEMS); }
int srv_route_user_put(srv_req *r, char *const *arg) { return put_one(r, &USERS, arg[0]); }
int srv_route_users_put(srv_req *r, char *const *arg) { return (void)arg, put_batch(r, &USERS); }

/* ---- items ---------------------------------------------------------------------------------------------- */

/* stored JSON text (attributes) as a value, or null */
static void add_json_or_null(cJSON *o, const char *k, const char *text)
{
    cJSON *a = text ? cJSON_Parse(text) : NULL;
    if (a) cJSON_AddItemToObject(o, k, a);
    else cJSON_AddNullToObject(o, k);
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
    add_json_or_null(o, "attributes", it->attributes);
    cJSON_AddNumberToObject(o, "created", (double)it->created);
    return 0;
}

int srv_route_item_get(srv_req *r, char *const *arg)
{
    const char *id = arg[0];
    shelf_server *s = r->srv;
    cJSON *o = stored_row(r, 0, id, srv_item_find(s, id));
    return o ? srv_json(r, 200, o) : 0;
}

int srv_route_item_delete(srv_req *r, char *const *arg)
{
    const char *id = arg[0];
    shelf_server *s = r->srv;
    uint32_t idx;
    char why[SRV_WHY];
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

static int user_row(void *ctx, uint32_t idx, const shelf_user *u)
{
    cJSON *o = ctx;
    (void)idx;
    cJSON_AddStringToObject(o, "id", u->id);
    add_json_or_null(o, "attributes", u->attributes);
    cJSON_AddNumberToObject(o, "created", (double)u->created);
    return 0;
}

/* the stored row of an item or user (idx SHELF_NONE: unknown) as a new
 * object; on failure answers 404 or 500 itself and returns NULL */
static cJSON *stored_row(srv_req *r, int user, const char *id, uint32_t idx)
{
    const char *what = user ? "user" : "item";
    if (idx == SHELF_NONE) return srv_error(r, 404, "not_found", -1, "no %s '%s'", what, id), NULL;
    shelf_server *s = r->srv;
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&s->store_mu);
    int rc = user ? shelf_store_get_user(s->st, idx, user_row, o) : shelf_store_get_item(s->st, idx, item_row, o);
    pthread_mutex_unlock(&s->store_mu);
    if (!rc) return o;
    cJSON_Delete(o);
    if (rc == SHELF_ENOTFOUND) srv_error(r, 404, "not_found", -1, "no %s '%s'", what, id);
    else srv_error(r, 500, "internal", -1, "reading %s '%s' failed", what, id);
    return NULL;
}

int srv_route_user_get(srv_req *r, char *const *arg)
{
    const char *id = arg[0];
    shelf_server *s = r->srv;
    uint32_t idx = srv_user_find(s, id);
    cJSON *o = stored_row(r, 1, id, idx);
    if (!o) return 0;
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

int srv_route_user_delete(srv_req *r, char *const *arg)
{
    const char *id = arg[0];
    shelf_server *s = r->srv;
    uint32_t idx;
    char why[SRV_WHY];
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
