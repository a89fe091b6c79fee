/* recs.c: the slate routes: personal recommendations, anonymous sessions,
 * similar items, popularity and predicted ratings. Each reads its request,
 * asks the ranking room (src/rank/) for the slate, answers it as JSON and
 * queues it for the served log. */
#include "serve_int.h"
#include "core/sbuf_int.h"

#include <math.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SRV_REQ_KV 16          /* context texts a request keeps for ctx.NAME */
#define SRV_REQ_KV_BYTES 1024

/* ---- request arguments ----------------------------------------------------------------------- */

typedef struct slate_args {
    uint32_t n;
    const char *kind, *category;
    int explain;
    uint32_t *exclude; /* item indices */
    size_t n_exclude;
    uint16_t ctx[SRV_USER_CTX]; /* context values of the request (segment=b, ...) */
    uint32_t n_ctx;
    shelf__seen seen;  /* this request's exclude-seen rules (has_seen), else the deployment's */
    int has_seen;
    uint32_t n_skipped; /* session items unknown to the catalogue, skipped */
    const char *scenario, *variant; /* the placement and experiment arm, for the served log */
    double blend;      /* this request's blend weight (has_blend), else the deployment's */
    int has_blend;
    unsigned fields;   /* item fields in each slate entry (FIELD_* bits) */
    /* the context as "key=value" texts, for a scenario's ctx.NAME */
    const char *kv[SRV_REQ_KV];
    size_t n_kv, kv_used;
    char kv_buf[SRV_REQ_KV_BYTES];
} slate_args;

/* keeps "key=value" for a scenario's expressions (what does not fit is left out) */
static void keep_kv(slate_args *a, const char *kv, size_t len)
{
    if (a->n_kv == SRV_REQ_KV || a->kv_used + len + 1 > sizeof a->kv_buf) return;
    char *p = a->kv_buf + a->kv_used;
    memcpy(p, kv, len);
    p[len] = '\0';
    a->kv[a->n_kv++] = p;
    a->kv_used += len + 1;
}

/* fields=title,price,...: what each slate entry carries besides id and score */
enum { FIELD_TITLE = 1, FIELD_PRICE = 2, FIELD_IMAGE = 4, FIELD_CATEGORY = 8, FIELD_BRAND = 16, FIELD_CREATED = 32 };
static const char *const field_names[] = {"title", "price", "image", "category", "brand", "created"};
#define N_FIELDS (sizeof field_names / sizeof field_names[0])

/* a comma list of field names into bits; the bad name into bad (0 when all are known) */
static int parse_fields(const char *v, unsigned *out, char *bad, size_t cap)
{
    *out = 0;
    while (v && *v) {
        size_t len = strcspn(v, ","), k = 0;
        while (k < N_FIELDS && (strlen(field_names[k]) != len || strncmp(field_names[k], v, len))) k++;
        if (k == N_FIELDS && len) return snprintf(bad, cap, "%.*s", (int)(len < 64 ? len : 64), v), -1;
        if (k < N_FIELDS) *out |= 1u << k;
        v += len + (v[len] == ',');
    }
    return 0;
}

static int is_slate_arg(const char *k)
{
    static const char *const own[] = {"n",       "kind",         "category", "exclude",          "explain",
                                      "exclude_seen", "scenario", "variant", "blend_popularity", "fields"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(k, own[i])) return 1;
    return 0;
}

typedef struct {
    shelf_server *s;
    slate_args *a;
} ctx_walk;

/* every other query argument is context: ?segment=b&device=mobile */
static enum MHD_Result ctx_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    ctx_walk *w = cls;
    (void)kind;
    if (!key || !value || is_slate_arg(key)) return MHD_YES;
    char kv[200];
    int n = snprintf(kv, sizeof kv, "%s=%s", key, value);
    if (n > 0 && (size_t)n < sizeof kv) keep_kv(w->a, kv, (size_t)n);
    if (w->a->n_ctx == SRV_USER_CTX) return MHD_YES;
    int v = n > 0 && (size_t)n < sizeof kv ? srv_ctx_find(w->s, kv) : -1;
    if (v >= 0) w->a->ctx[w->a->n_ctx++] = (uint16_t)v;
    return MHD_YES;
}

static int parse_bool(const char *v, int *out)
{
    if (!v || !*v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) return *out = 1, 0;
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) return *out = 0, 0;
    return -1;
}

/* n, kind, category, explain, exclude from the query string; answers 400 on error */
static int query_args(srv_req *r, slate_args *a, int with_exclude)
{
    memset(a, 0, sizeof *a);
    a->n = 10;
    const char *v = srv_arg(r, "n");
    if (v) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > (long)r->srv->o.max_n)
            return srv_error(r, 400, "bad_request", -1, "n: expected an integer from 1 to %u, got '%s'", r->srv->o.max_n, v), 1;
        a->n = (uint32_t)n;
    }
    a->kind = srv_arg(r, "kind");
    a->category = srv_arg(r, "category");
    a->scenario = srv_arg(r, "scenario");
    a->variant = srv_arg(r, "variant");
    if ((v = srv_arg(r, "explain")) && parse_bool(v, &a->explain))
        return srv_error(r, 400, "bad_request", -1, "explain: expected true or false, got '%s'", v), 1;
    char bad[80];
    if ((v = srv_arg(r, "fields")) && parse_fields(v, &a->fields, bad, sizeof bad))
        return srv_error(r, 400, "bad_request", -1, "fields: unknown field '%s' (title, price, image, category, brand, created)", bad), 1;
    if ((v = srv_arg(r, "blend_popularity"))) {
        char *end;
        a->blend = strtod(v, &end);
        if (!*v || *end || !isfinite(a->blend) || fabs(a->blend) > 10)
            return srv_error(r, 400, "bad_request", -1, "blend_popularity: expected a number from -10 to 10, got '%s'", v), 1;
        a->has_blend = 1;
    }
    if ((v = srv_arg(r, "exclude_seen"))) {
        shelf_err err = {0};
        if (shelf__seen_parse(&a->seen, v, r->srv->type_name, r->srv->n_types, &err))
            return srv_error(r, 400, "bad_request", -1, "%s", err.msg), 1;
        a->has_seen = 1;
    }
    ctx_walk cw = {r->srv, a};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, ctx_arg, &cw);
    if (with_exclude && (v = srv_arg(r, "exclude")) && *v) {
        size_t cnt = 1;
        for (const char *p = v; *p; p++) cnt += *p == ',';
        if (!(a->exclude = malloc(cnt * sizeof *a->exclude))) return srv_error(r, 500, "internal", -1, "out of memory"), 1;
        const char *p = v;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char id[512];
            if (len && len < sizeof id) {
                memcpy(id, p, len);
                id[len] = '\0';
                uint32_t idx = srv_item_find(r->srv, id);
                if (idx != SHELF_NONE) a->exclude[a->n_exclude++] = idx; /* unknown ids cannot be shown anyway */
            }
            p += len + (e ? 1 : 0);
        }
    }
    return 0;
}

/* the slate's model, placement and experiment arm */
static void slate_finish(shelf_slate *sl, const srv_engine *e, const slate_args *a)
{
    snprintf(sl->model, sizeof sl->model, "%s", e->kind);
    snprintf(sl->model_version, sizeof sl->model_version, "%s", e->version);
    snprintf(sl->scenario, sizeof sl->scenario, "%s", a->scenario ? a->scenario : "");
    snprintf(sl->variant, sizeof sl->variant, "%s", a->variant ? a->variant : "");
    sl->n_skipped = a->n_skipped;
}

/* ---- answers ---------------------------------------------------------------------------------------- */

/* the asked fields of item i (items_rw held): those it has, null for the others */
static void put_fields(shelf__sbuf *b, const shelf_server *s, uint32_t i, unsigned f)
{
    const char *txt[N_FIELDS] = {s->item_title[i], NULL, s->item_image[i],
                                 s->item_cat[i] != SHELF_NONE ? s->cats[s->item_cat[i]] : NULL,
                                 s->item_brand[i] != SHELF_NONE ? s->brands[s->item_brand[i]] : NULL, NULL};
    for (unsigned k = 0; k < N_FIELDS; k++) {
        if (!(f & (1u << k))) continue;
        shelf__sbuf_printf(b, ",\"%s\":", field_names[k]);
        if (k == 1 && !isnan(s->item_price[i])) shelf__sbuf_float(b, s->item_price[i]);
        else if (k == 5 && s->item_created[i] > 0) shelf__sbuf_printf(b, "%lld", (long long)s->item_created[i]);
        else if (txt[k]) shelf__sbuf_cstr(b, txt[k]);
        else SBUF_LIT(b, "null");
    }
}

/* the slate as JSON (ids, scores, kinds, reasons) and into the served log;
 * written straight into one buffer (the busiest answer: a cJSON tree cost
 * two small allocations a field) */
static int answer_slate(srv_req *r, const srv_engine *e, shelf_slate *sl, const slate_args *a, const char *user_ext)
{
    shelf_server *s = r->srv;
    slate_finish(sl, e, a);
    shelf__sbuf b = {0};
    SBUF_LIT(&b, "{\"rec_id\":");
    shelf__sbuf_cstr(&b, sl->rec_id);
    SBUF_LIT(&b, ",\"user\":");
    if (user_ext) shelf__sbuf_cstr(&b, user_ext);
    else SBUF_LIT(&b, "null");
    shelf__sbuf_printf(&b, ",\"known_user\":%s,\"model\":", sl->user != SHELF_NONE ? "true" : "false");
    shelf__sbuf_cstr(&b, e->kind);
    SBUF_LIT(&b, ",\"model_version\":");
    shelf__sbuf_cstr(&b, e->version);
    SBUF_LIT(&b, ",\"source\":");
    shelf__sbuf_cstr(&b, sl->source);
    if (a->n_skipped) shelf__sbuf_printf(&b, ",\"skipped_items\":%u", (unsigned)a->n_skipped);
    SBUF_LIT(&b, ",\"items\":[");
    pthread_rwlock_rdlock(&s->items_rw);
    for (uint32_t k = 0; k < sl->n; k++) {
        const shelf_slate_item *si = &sl->items[k];
        if (k) SBUF_LIT(&b, ",");
        SBUF_LIT(&b, "{\"id\":");
        shelf__sbuf_cstr(&b, si->item < s->n_items && s->item_ext[si->item] ? s->item_ext[si->item] : "");
        SBUF_LIT(&b, ",\"score\":");
        shelf__sbuf_float(&b, si->score);
        SBUF_LIT(&b, ",\"kind\":");
        shelf__sbuf_cstr(&b, si->item < s->n_items ? s->kinds[s->item_kind[si->item]] : "");
        if (strcmp(si->source, sl->source)) {
            SBUF_LIT(&b, ",\"source\":");
            shelf__sbuf_cstr(&b, si->source);
        }
        if (a->fields && si->item < s->n_items) put_fields(&b, s, si->item, a->fields);
        if (a->explain) {
            SBUF_LIT(&b, ",\"reasons\":[{\"item\":");
            int named = si->reason_item != SHELF_NONE && si->reason_item < s->n_items && s->item_ext[si->reason_item];
            if (named) shelf__sbuf_cstr(&b, s->item_ext[si->reason_item]);
            else SBUF_LIT(&b, "null");
            SBUF_LIT(&b, ",\"text\":");
            shelf__sbuf_cstr(&b, si->reason);
            if (named) {
                SBUF_LIT(&b, ",\"weight\":");
                shelf__sbuf_float(&b, si->reason_weight);
            }
            SBUF_LIT(&b, "}]");
        }
        SBUF_LIT(&b, "}");
    }
    pthread_rwlock_unlock(&s->items_rw);
    SBUF_LIT(&b, "]}");
    if (b.oom) {
        shelf__sbuf_free(&b);
        return srv_error(r, 500, "internal", -1, "out of memory");
    }
    if (!s->o.no_served_log) srv_served_push(s, sl);
    return srv_text(r, 200, "application/json", b.p, b.len);
}

/* a similar or popular list as JSON */
static int answer_list(srv_req *r, const shelf_slate *sl, const char *item_ext)
{
    shelf_server *s = r->srv;
    cJSON *o = cJSON_CreateObject();
    if (item_ext) cJSON_AddStringToObject(o, "item", item_ext);
    cJSON *arr = cJSON_AddArrayToObject(o, "items");
    pthread_rwlock_rdlock(&s->items_rw);
    for (uint32_t k = 0; k < sl->n; k++) {
        uint32_t i = sl->items[k].item;
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "id", i < s->n_items && s->item_ext[i] ? s->item_ext[i] : "");
        cJSON_AddNumberToObject(it, "score", (double)sl->items[k].score);
        cJSON_AddItemToArray(arr, it);
    }
    pthread_rwlock_unlock(&s->items_rw);
    return srv_json(r, 200, o);
}

/* the request of slate_args a in the room's terms */
static void rank_req(const slate_args *a, shelf__rank_mode mode, shelf__rank_req *rq)
{
    *rq = (shelf__rank_req){.mode = mode, .user = SHELF_NONE, .anchor = SHELF_NONE, .n = a->n, .kind = a->kind,
                            .category = a->category, .explain = a->explain, .exclude = a->exclude,
                            .n_exclude = a->n_exclude, .seen = a->has_seen ? &a->seen : NULL,
                            .blend_popularity = a->has_blend ? (float)a->blend : NAN,
                            .now = (int64_t)time(NULL), .n_ctx = a->n_ctx, .ctx_kv = a->kv,
                            .n_ctx_kv = a->n_kv};
    memcpy(rq->ctx, a->ctx, a->n_ctx * sizeof *a->ctx);
}

/* a->scenario's stages into rq, held in *hold until the slate is ranked
 * (a PUT meanwhile swaps the set, not what this request reads); answers
 * 404 for a name the store does not have, 409 for a document that does not
 * compile here, and returns 1 then */
static int use_scenario(srv_req *r, const slate_args *a, shelf__rank_req *rq, srv_scn_set **hold)
{
    *hold = NULL;
    if (!a->scenario) return 0;
    const char *why;
    rq->scenario = srv_scenario_get(r->srv, a->scenario, hold, &why);
    if (rq->scenario) return 0;
    int ret = why ? srv_error(r, 409, "scenario_invalid", -1, "scenario '%s' does not compile here: %s", a->scenario, why)
                  : srv_error(r, 404, "unknown_scenario", -1, "no scenario '%s' (PUT /v1/scenarios/%s stores one)",
                              a->scenario, a->scenario);
    srv_scenarios_put(*hold);
    *hold = NULL;
    return ret || 1;
}

/* the ranking room, with a model that learns online held for reading */
static int rank_locked(srv_engine *e, const shelf__rank_env *env, shelf__rank_req *rq, shelf_slate *sl,
                       shelf_err *err)
{
    int online = (e->caps & SHELF_CAP_ONLINE) != 0;
    if (online) pthread_rwlock_rdlock(&e->model_rw);
    int rc = shelf__rank(env, rq, sl, err);
    if (online) pthread_rwlock_unlock(&e->model_rw);
    return rc;
}

/* a known user's slate: its history and session under its lock */
static int rank_user(shelf_server *s, srv_engine *e, const shelf__rank_env *env, shelf__rank_req *rq, uint32_t idx, shelf_slate *sl,
                     shelf_err *err)
{
    srv_user *u = srv_user_at(s, idx);
    if (!u) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    shelf__rank_work *hb = shelf__rank_work_get(1, 1); /* the thread's history buffers */
    if (!hb) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    pthread_mutex_lock(&u->mu);
    size_t n = srv_user_history(s, idx, u, &hb->hitem, &hb->htype, &hb->hts, &hb->hcap);
    const uint32_t *item = hb->hitem;
    const uint16_t *type = hb->htype;
    const int64_t *ts = hb->hts;
    int rc = n == (size_t)-1 ? shelf_err_set(err, SHELF_ENOMEM, "out of memory") : 0;
    if (!rc && n == 0 && !rq->n_ctx) { /* no history: the user's own attributes (segment, region...) */
        rq->n_ctx = u->n_ctx;
        memcpy(rq->ctx, u->ctx, u->n_ctx * sizeof *u->ctx);
    }
    const char *ukv[SRV_USER_CTX]; /* user.NAME in scenario expressions: the user's attributes */
    for (uint32_t k = 0; k < u->n_ctx && k < SRV_USER_CTX; k++) ukv[k] = s->ctx_name[u->ctx[k]];
    rq->user_kv = ukv;
    rq->n_user_kv = u->n_ctx < SRV_USER_CTX ? u->n_ctx : SRV_USER_CTX;
    uint32_t shown[SRV_SHOWN]; /* what this shopper was shown lately (a scenario's rotation) */
    int64_t shown_ts[SRV_SHOWN];
    memcpy(shown, u->shown_item, u->n_shown * sizeof *shown);
    memcpy(shown_ts, u->shown_ts, u->n_shown * sizeof *shown_ts);
    rq->shown = shown;
    rq->shown_ts = shown_ts;
    rq->n_shown = u->n_shown;
    int had = u->slot.sess != NULL;
    rq->user = idx;
    rq->items = item;
    rq->types = type;
    rq->ts = ts;
    rq->n_hist = rc ? 0 : n;
    rq->slot = &u->slot;
    if (!rc) rc = rank_locked(e, env, rq, sl, err);
    for (uint32_t k = 0; !rc && k < sl->n; k++) { /* the ring of what was shown */
        u->shown_item[u->shown_at] = sl->items[k].item;
        u->shown_ts[u->shown_at] = rq->now;
        u->shown_at = (u->shown_at + 1) % SRV_SHOWN;
        if (u->n_shown < SRV_SHOWN) u->n_shown++;
    }
    int has = u->slot.sess != NULL;
    pthread_mutex_unlock(&u->mu);
    if (has > had) atomic_fetch_add(&s->live_sessions, 1);
    else if (has < had) atomic_fetch_sub(&s->live_sessions, 1);
    srv_sess_account(s, idx, rq->sess_delta, rq->sess_new);
    return rc;
}

int srv_route_recs(srv_req *r, char *const *arg)
{
    const char *user = arg[0];
    shelf_server *s = r->srv;
    slate_args a;
    if (query_args(r, &a, 1)) return 0;
    srv_engine *e = srv_engine_get(s);
    shelf__rank_env env;
    srv_rank_env(s, e, &env);
    shelf__rank_req rq;
    rank_req(&a, SHELF__RANK_SHOPPER, &rq);
    shelf_slate sl = {0};
    shelf_err err = {0};
    srv_scn_set *hold;
    int ret = 0;
    if (!use_scenario(r, &a, &rq, &hold)) {
        uint32_t idx = srv_user_find(s, user);
        int rc = idx != SHELF_NONE ? rank_user(s, e, &env, &rq, idx, &sl, &err) : rank_locked(e, &env, &rq, &sl, &err);
        ret = rc ? srv_error(r, 500, "internal", -1, "ranking failed: %s", err.msg) : answer_slate(r, e, &sl, &a, user);
    }
    srv_scenarios_put(hold);
    srv_engine_put(e);
    shelf_slate_free(&sl);
    free(a.exclude);
    return ret;
}

int srv_route_recs_anon(srv_req *r, char *const *arg)
{
    (void)arg;
    shelf_server *s = r->srv;
    cJSON *j = srv_body_json(r);
    if (!j) return 0;
    slate_args a = {.n = 10};
    const cJSON *f;
    int bad = 0;
    if (!cJSON_IsObject(j)) bad = srv_error(r, 400, "bad_request", -1, "expected a JSON object") || 1;
    if (!bad && (f = cJSON_GetObjectItemCaseSensitive(j, "n")) && !cJSON_IsNull(f)) {
        if (!cJSON_IsNumber(f) || f->valuedouble != floor(f->valuedouble) || f->valuedouble < 1 || f->valuedouble > s->o.max_n)
            bad = srv_error(r, 400, "bad_request", -1, "n: expected an integer from 1 to %u", s->o.max_n) || 1;
        else a.n = (uint32_t)f->valuedouble;
    }
    static const char *const sf[] = {"kind", "category", "scenario", "variant"};
    const char **sd[] = {&a.kind, &a.category, &a.scenario, &a.variant};
    for (int k = 0; !bad && k < 4; k++)
        if ((f = cJSON_GetObjectItemCaseSensitive(j, sf[k])) && !cJSON_IsNull(f)) {
            if (!cJSON_IsString(f)) bad = srv_error(r, 400, "bad_request", -1, "%s: expected a string", sf[k]) || 1;
            else *sd[k] = f->valuestring;
        }
    if (!bad && (f = cJSON_GetObjectItemCaseSensitive(j, "context")) && !cJSON_IsNull(f)) {
        if (!cJSON_IsObject(f)) bad = srv_error(r, 400, "bad_request", -1, "context: expected an object") || 1;
        for (const cJSON *c = bad ? NULL : f->child; c; c = c->next) {
            char kv[200];
            int len = shelf__json_kv(c, kv, sizeof kv);
            if (len > 0) keep_kv(&a, kv, (size_t)len);
            int v = len > 0 && a.n_ctx < SRV_USER_CTX ? srv_ctx_find(s, kv) : -1;
            if (v >= 0) a.ctx[a.n_ctx++] = (uint16_t)v;
        }
    }
    if (!bad && (f = cJSON_GetObjectItemCaseSensitive(j, "blend_popularity")) && !cJSON_IsNull(f)) {
        if (!cJSON_IsNumber(f) || fabs(f->valuedouble) > 10)
            bad = srv_error(r, 400, "bad_request", -1, "blend_popularity: expected a number from -10 to 10") || 1;
        else a.blend = f->valuedouble, a.has_blend = 1;
    }
    if (!bad && (f = cJSON_GetObjectItemCaseSensitive(j, "fields")) && !cJSON_IsNull(f)) {
        char why[80];
        if (!cJSON_IsString(f)) bad = srv_error(r, 400, "bad_request", -1, "fields: expected a string (title,price,...)") || 1;
        else if (parse_fields(f->valuestring, &a.fields, why, sizeof why))
            bad = srv_error(r, 400, "bad_request", -1, "fields: unknown field '%s' (title, price, image, category, brand, created)", why) || 1;
    }
    if (!bad && (f = cJSON_GetObjectItemCaseSensitive(j, "explain")) && !cJSON_IsNull(f)) {
        if (!cJSON_IsBool(f)) bad = srv_error(r, 400, "bad_request", -1, "explain: expected a boolean") || 1;
        else a.explain = cJSON_IsTrue(f);
    }
    const cJSON *items = bad ? NULL : cJSON_GetObjectItemCaseSensitive(j, "items");
    const cJSON *types = bad ? NULL : cJSON_GetObjectItemCaseSensitive(j, "types");
    const cJSON *excl = bad ? NULL : cJSON_GetObjectItemCaseSensitive(j, "exclude");
    if (!bad && items && !cJSON_IsNull(items) && !cJSON_IsArray(items))
        bad = srv_error(r, 400, "bad_request", -1, "items: expected an array of item ids") || 1;
    if (!bad && types && !cJSON_IsNull(types) && (!cJSON_IsArray(types) || cJSON_GetArraySize(types) != cJSON_GetArraySize(items)))
        bad = srv_error(r, 400, "bad_request", -1, "types: expected an array as long as items") || 1;
    if (!bad && excl && !cJSON_IsNull(excl) && !cJSON_IsArray(excl))
        bad = srv_error(r, 400, "bad_request", -1, "exclude: expected an array of item ids") || 1;
    size_t n = cJSON_IsArray(items) ? (size_t)cJSON_GetArraySize(items) : 0;
    if (!bad && n > s->o.max_batch) bad = srv_error(r, 413, "too_large", -1, "%zu session items; at most %u", n, s->o.max_batch) || 1;
    uint32_t *hist = calloc(n ? n : 1, sizeof *hist);
    uint16_t *ht = calloc(n ? n : 1, sizeof *ht);
    if (!bad && (!hist || !ht)) bad = srv_error(r, 500, "internal", -1, "out of memory") || 1;
    size_t k = 0;
    for (const cJSON *it = n ? items->child : NULL; !bad && it; it = it->next, k++) {
        char id[512];
        if (srv_json_id(it, id, sizeof id)) bad = srv_error(r, 400, "bad_request", (long)k, "items[%zu]: expected an item id", k) || 1;
        else hist[k] = srv_item_find(s, id); /* SHELF_NONE: unknown or retired, skipped below */
    }
    k = 0;
    for (const cJSON *t = cJSON_IsArray(types) ? types->child : NULL; !bad && t; t = t->next, k++) {
        uint32_t ty = SHELF_NONE;
        for (uint32_t q = 0; cJSON_IsString(t) && q < s->n_types; q++)
            if (!strcmp(s->type_name[q], t->valuestring)) ty = q;
        if (ty == SHELF_NONE) bad = srv_error(r, 400, "bad_request", (long)k, "types[%zu]: unknown event type", k) || 1;
        else ht[k] = (uint16_t)ty;
    }
    /* items the catalogue does not know (or no longer has) are skipped, and counted */
    size_t known = 0;
    for (size_t q = 0; !bad && q < n; q++)
        if (hist[q] != SHELF_NONE) hist[known] = hist[q], ht[known++] = ht[q];
    a.n_skipped = (uint32_t)(n - known);
    if (!bad) n = known;
    if (!bad && (f = cJSON_GetObjectItemCaseSensitive(j, "exclude_seen")) && !cJSON_IsNull(f)) {
        shelf_err err = {0};
        if (!cJSON_IsString(f)) bad = srv_error(r, 400, "bad_request", -1, "exclude_seen: expected a string") || 1;
        else if (shelf__seen_parse(&a.seen, f->valuestring, s->type_name, s->n_types, &err))
            bad = srv_error(r, 400, "bad_request", -1, "%s", err.msg) || 1;
        else a.has_seen = 1;
    }
    size_t ne = cJSON_IsArray(excl) ? (size_t)cJSON_GetArraySize(excl) : 0;
    /* the session's own items are not recommended back: they join the exclusions */
    if (!bad && !(a.exclude = malloc((ne + n + 1) * sizeof *a.exclude))) bad = srv_error(r, 500, "internal", -1, "out of memory") || 1;
    for (size_t q = 0; !bad && q < n; q++) a.exclude[a.n_exclude++] = hist[q];
    for (const cJSON *x = ne ? excl->child : NULL; !bad && x; x = x->next) {
        char id[512];
        uint32_t idx;
        if (!srv_json_id(x, id, sizeof id) && (idx = srv_item_find(s, id)) != SHELF_NONE) a.exclude[a.n_exclude++] = idx;
    }
    if (!bad) {
        srv_engine *e = srv_engine_get(s);
        shelf__rank_env env;
        srv_rank_env(s, e, &env);
        shelf__rank_req rq;
        rank_req(&a, SHELF__RANK_SHOPPER, &rq);
        rq.items = hist;
        rq.types = ht; /* views when the request names no types */
        rq.n_hist = n;
        shelf_slate sl = {0};
        shelf_err err = {0};
        srv_scn_set *hold;
        if (use_scenario(r, &a, &rq, &hold)) {
        } else if (rank_locked(e, &env, &rq, &sl, &err)) {
            srv_error(r, 500, "internal", -1, "ranking failed: %s", err.msg);
        } else {
            answer_slate(r, e, &sl, &a, NULL);
        }
        srv_scenarios_put(hold);
        shelf_slate_free(&sl);
        srv_engine_put(e);
    }
    free(hist);
    free(ht);
    free(a.exclude);
    cJSON_Delete(j);
    return 0;
}

/* similar (item set) and popular (item NULL) lists */
static int route_list(srv_req *r, const char *item)
{
    shelf_server *s = r->srv;
    slate_args a;
    if (query_args(r, &a, 0)) return 0;
    uint32_t idx = item ? srv_item_find(s, item) : SHELF_NONE;
    if (item && idx == SHELF_NONE) return srv_error(r, 404, "not_found", -1, "no item '%s'", item);
    srv_engine *e = srv_engine_get(s);
    shelf__rank_env env;
    srv_rank_env(s, e, &env);
    shelf__rank_req rq;
    rank_req(&a, item ? SHELF__RANK_SIMILAR : SHELF__RANK_POPULAR, &rq);
    rq.anchor = idx;
    shelf_slate sl = {0};
    shelf_err err = {0};
    srv_scn_set *hold;
    int ret = 0;
    if (!use_scenario(r, &a, &rq, &hold))
        ret = rank_locked(e, &env, &rq, &sl, &err) ? srv_error(r, 500, "internal", -1, "ranking failed: %s", err.msg)
                                                   : answer_list(r, &sl, item);
    srv_scenarios_put(hold);
    shelf_slate_free(&sl);
    srv_engine_put(e);
    return ret;
}

int srv_route_similar(srv_req *r, char *const *arg) { return route_list(r, arg[0]); }
int srv_route_popular(srv_req *r, char *const *arg)
{
    (void)arg;
    return route_list(r, NULL);
}

/* ---- shelf_rank (rank.h): the same room for a library caller ----------------------------------- */

/* the request's ids as indices: exclusions (the session's own items too),
 * context values, the session (unknown items skipped and counted) */
static int resolve(shelf_server *s, const shelf_rank_request *q, slate_args *a, uint32_t *hist, uint16_t *ht,
                   size_t *n_hist, shelf_err *err)
{
    if (q->exclude_seen) {
        if (shelf__seen_parse(&a->seen, q->exclude_seen, s->type_name, s->n_types, err)) return SHELF_EINVAL;
        a->has_seen = 1;
    }
    for (size_t k = 0; k < q->n_context; k++) {
        if (q->context[k]) keep_kv(a, q->context[k], strlen(q->context[k]));
        if (a->n_ctx == SRV_USER_CTX) continue;
        int v = q->context[k] ? srv_ctx_find(s, q->context[k]) : -1;
        if (v >= 0) a->ctx[a->n_ctx++] = (uint16_t)v;
    }
    size_t m = 0;
    for (size_t k = 0; k < q->n_items; k++) {
        uint32_t idx = q->items[k] ? srv_item_find(s, q->items[k]) : SHELF_NONE;
        uint32_t ty = 0; /* views unless told */
        for (uint32_t t = 0; q->types && t < s->n_types; t++)
            if (q->types[k] && !strcmp(s->type_name[t], q->types[k])) ty = t + 1;
        if (q->types && !ty)
            return shelf_err_set(err, SHELF_EINVAL, "types[%zu]: unknown event type '%s'", k,
                                 q->types[k] ? q->types[k] : "(null)");
        if (idx == SHELF_NONE) continue;
        hist[m] = idx;
        ht[m++] = (uint16_t)(q->types ? ty - 1 : 0);
        a->exclude[a->n_exclude++] = idx;
    }
    a->n_skipped = (uint32_t)(q->n_items - m);
    *n_hist = m;
    for (size_t k = 0; k < q->n_exclude; k++) {
        uint32_t idx = q->exclude[k] ? srv_item_find(s, q->exclude[k]) : SHELF_NONE;
        if (idx != SHELF_NONE) a->exclude[a->n_exclude++] = idx;
    }
    return 0;
}

/* shelf_rank, with the model's scores of the shopper's history made already
 * (given, by model; NULL: none) */
static int rank_one(shelf_engine *g, const shelf_rank_request *q, const shelf_model *model, const float *given,
                    shelf_slate *out, shelf_err *err)
{
    shelf_server *s = &g->srv;
    int kinds = (q->user != NULL) + (q->n_items > 0) + (q->similar_to != NULL) + (q->popular != 0);
    if (kinds > 1 || (!kinds && !q->items))
        return shelf_err_set(err, SHELF_EINVAL, "rank: ask for one of a user, a session, similar_to or popular");
    uint32_t anchor = q->similar_to ? srv_item_find(s, q->similar_to) : SHELF_NONE;
    if (q->similar_to && anchor == SHELF_NONE)
        return shelf_err_set(err, SHELF_ENOTFOUND, "rank: no item '%s'", q->similar_to);
    slate_args a = {.n = q->n ? q->n : 10, .kind = q->kind, .category = q->category, .explain = q->explain,
                    .scenario = q->scenario, .variant = q->variant, .blend = q->blend_popularity,
                    .has_blend = q->blend_popularity != 0};
    size_t n_hist = 0, cap = q->n_items + 1;
    uint32_t *hist = malloc(cap * sizeof *hist);
    uint16_t *ht = malloc(cap * sizeof *ht);
    a.exclude = malloc((q->n_items + q->n_exclude + 1) * sizeof *a.exclude);
    int rc = !hist || !ht || !a.exclude ? shelf_err_set(err, SHELF_ENOMEM, "out of memory")
                                        : resolve(s, q, &a, hist, ht, &n_hist, err);
    if (!rc) {
        srv_engine *e = srv_engine_get(s);
        shelf__rank_env env;
        srv_rank_env(s, e, &env);
        shelf__rank_req rq;
        rank_req(&a, q->similar_to ? SHELF__RANK_SIMILAR : q->popular ? SHELF__RANK_POPULAR : SHELF__RANK_SHOPPER,
                 &rq);
        rq.anchor = anchor;
        rq.items = hist;
        rq.types = ht;
        rq.n_hist = n_hist;
        srv_scn_set *hold = NULL;
        const char *why = NULL;
        if (a.scenario && !(rq.scenario = srv_scenario_get(s, a.scenario, &hold, &why)))
            rc = why ? shelf_err_set(err, SHELF_EINVAL, "rank: scenario '%s' does not compile: %s", a.scenario, why)
                     : shelf_err_set(err, SHELF_ENOTFOUND, "rank: no scenario '%s'", a.scenario);
        uint32_t idx = q->user ? srv_user_find(s, q->user) : SHELF_NONE;
        rq.given = given && model == e->model ? given : NULL;
        if (!rc)
            rc = idx != SHELF_NONE ? rank_user(s, e, &env, &rq, idx, out, err) : rank_locked(e, &env, &rq, out, err);
        if (!rc) slate_finish(out, e, &a);
        srv_scenarios_put(hold);
        srv_engine_put(e);
    }
    free(hist);
    free(ht);
    free(a.exclude);
    return rc;
}

int shelf_rank(shelf_engine *g, const shelf_rank_request *q, shelf_slate *out, shelf_err *err)
{
    return rank_one(g, q, NULL, NULL, out, err);
}

/* A known shopper's history as the model knows it (items it learned; the
 * query the session path would make) into q, its arrays malloc'd; 0 when
 * there is none (unknown shopper, no learned item), -1 out of memory. */
static int known_query(shelf_server *s, const shelf_model *m, const char *user, shelf_query *q)
{
    uint32_t idx = user ? srv_user_find(s, user) : SHELF_NONE;
    srv_user *u = idx != SHELF_NONE ? srv_user_at(s, idx) : NULL;
    if (!u) return 0;
    uint32_t *item = NULL;
    uint16_t *type = NULL;
    int64_t *ts = NULL;
    size_t cap = 0, m_known = 0;
    pthread_mutex_lock(&u->mu);
    size_t n = srv_user_history(s, idx, u, &item, &type, &ts, &cap);
    pthread_mutex_unlock(&u->mu);
    if (n == (size_t)-1) {
        free(item), free(type), free(ts);
        return -1;
    }
    m_known = shelf__rank_known_only(m->n_items, item, type, ts, n);
    if (!m_known) {
        free(item), free(type), free(ts);
        return 0;
    }
    *q = (shelf_query){.user = SHELF_NONE, .items = item, .types = type, .ts = ts, .n = m_known};
    return 1;
}

/* shelf_rank_many for at most `batch` requests: their known shoppers'
 * histories scored in one call of the model (m), then each ranked */
static void rank_block(shelf_engine *g, const shelf_model *m, const shelf_rank_request *qs, size_t n,
                       shelf_slate *out, int *rc, shelf_err *err)
{
    shelf_server *s = &g->srv;
    shelf_query *q = calloc(n, sizeof *q);
    size_t *row = malloc(n * sizeof *row), nq = 0;
    float *sc = NULL;
    if (!q || !row) m = NULL; /* out of memory: each alone */
    for (size_t k = 0; m && k < n; k++) {
        const shelf_rank_request *r = &qs[k];
        row[k] = SIZE_MAX;
        int plain = r->user && !r->n_items && !r->items && !r->similar_to && !r->popular, got = 0;
        if (plain && (got = known_query(s, m, r->user, &q[nq])) < 0) m = NULL;
        if (got > 0) row[k] = nq++;
    }
    if (m && nq && (sc = malloc(nq * (size_t)m->n_items * sizeof *sc)) && shelf_model_score_many(m, q, nq, sc, NULL)) {
        free(sc); /* the model could not: each alone */
        sc = NULL;
    }
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t k = 0; k < n; k++) {
        const float *given = sc && row[k] != SIZE_MAX ? sc + row[k] * (size_t)m->n_items : NULL;
        rc[k] = rank_one(g, &qs[k], given ? m : NULL, given, &out[k], &err[k]);
    }
    for (size_t j = 0; j < nq; j++) {
        free((void *)q[j].items);
        free((void *)q[j].types);
        free((void *)q[j].ts);
    }
    free(sc), free(q), free(row);
}

int shelf_rank_many(shelf_engine *g, const shelf_rank_request *qs, size_t n, size_t batch, shelf_slate *out, int *rc,
                    shelf_err *err)
{
    shelf_server *s = &g->srv;
    srv_engine *e = srv_engine_get(s);
    const shelf_model *m = batch && e->model && e->model->vt->score_many ? e->model : NULL;
    if (m) { /* a block's scores within 64 MiB */
        size_t fit = ((size_t)64 << 20) / ((size_t)m->n_items * sizeof(float) + 1);
        if (batch > fit) batch = fit ? fit : 1;
    } else batch = n ? n : 1;
    for (size_t b = 0; b < n; b += batch)
        rank_block(g, m, qs + b, n - b < batch ? n - b : batch, out + b, rc + b, err + b);
    srv_engine_put(e);
    int bad = 0;
    for (size_t k = 0; k < n; k++) bad |= rc[k] != 0;
    return bad ? SHELF_EINVAL : 0;
}

const char *shelf_engine_item_id(shelf_engine *g, uint32_t item, char *buf, size_t cap)
{
    shelf_server *s = &g->srv;
    pthread_rwlock_rdlock(&s->items_rw);
    snprintf(buf, cap, "%s", item < s->n_items && s->item_ext[item] ? s->item_ext[item] : "");
    pthread_rwlock_unlock(&s->items_rw);
    return buf;
}

int srv_route_rating(srv_req *r, char *const *arg)
{
    const char *user = arg[0];
    const char *item = arg[1];
    shelf_server *s = r->srv;
    uint32_t u = srv_user_find(s, user), i = srv_item_find(s, item);
    if (u == SHELF_NONE) return srv_error(r, 404, "not_found", -1, "no user '%s'", user);
    if (i == SHELF_NONE) return srv_error(r, 404, "not_found", -1, "no item '%s'", item);
    srv_engine *e = srv_engine_get(s);
    int ret;
    if (!(e->caps & SHELF_CAP_RATE)) {
        ret = srv_error(r, 422, "unprocessable", -1, "the served model (%s) does not predict ratings (serve a rating-mf, svdpp or rating-text bundle)", e->kind);
    } else if (i >= e->model->n_items) {
        ret = srv_error(r, 422, "unprocessable", -1, "item '%s' was added after the model was trained", item);
    } else {
        float v;
        shelf_err err = {0};
        int rc = shelf_model_predict(e->model, u < e->model->n_users ? u : SHELF_NONE, i, &v, &err);
        if (rc) ret = srv_error(r, 500, "internal", -1, "%s", err.msg);
        else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "user", user);
            cJSON_AddStringToObject(o, "item", item);
            cJSON_AddNumberToObject(o, "rating", (double)v);
            ret = srv_json(r, 200, o);
        }
    }
    srv_engine_put(e);
    return ret;
}
