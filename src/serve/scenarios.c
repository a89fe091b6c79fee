/* scenarios.c: the ranking room's scenarios (placements, docs/scenarios.md)
 * in the server. The admin routes keep them in the store
 * (PUT/GET/DELETE /v1/scenarios/{name}, GET /v1/scenarios), each checked by
 * the room before it is stored; the slate routes read ?scenario=NAME from a
 * parsed set, swapped whole when the store's scenarios change: after a PUT
 * or DELETE here, and when auth.c's freshness check finds the store changed
 * by another process (`shelf scenario put` beside the server). */
#include "serve_int.h"

#include "rank/pacing_int.h"
#include "store/meta_int.h"
#include "rank/scenario_int.h"
#include "store/meta_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DOC_MAX (1u << 20) /* bytes of a scenario document (as `shelf scenario put`) */

typedef struct srv_scn {
    char *name;
    shelf__scenario *sc; /* NULL: the stored document does not compile here (error says why) */
    char *error;
} srv_scn;

struct srv_scn_set {
    atomic_int refs;
    size_t n, cap;
    srv_scn *v; /* by name (the store's order) */
};

static void set_free(srv_scn_set *set)
{
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->v[i].name);
        shelf__scenario_free(set->v[i].sc);
        free(set->v[i].error);
    }
    free(set->v);
    free(set);
}

void srv_scenarios_put(srv_scn_set *set)
{
    if (set && atomic_fetch_sub(&set->refs, 1) == 1) set_free(set);
}

/* the event types' names the expressions' seen() may name */
static shelf__rank_env types_env(shelf_server *s)
{
    return (shelf__rank_env){.type_names = s->type_name, .n_types = s->n_types};
}

typedef struct {
    shelf_server *s;
    srv_scn_set *set;
    int oom;
} load_walk;

static int add_row(void *ctx, const char *name, const char *doc, int64_t updated)
{
    (void)updated;
    load_walk *w = ctx;
    srv_scn_set *set = w->set;
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 8;
        srv_scn *v = realloc(set->v, cap * sizeof *v);
        if (!v) return w->oom = 1;
        set->v = v, set->cap = cap;
    }
    srv_scn *e = &set->v[set->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name))) return w->oom = 1;
    set->n++;
    shelf__rank_env env = types_env(w->s);
    shelf__expr_schema schema = shelf__rank_schema(&env);
    shelf_err err = {0};
    int rc = shelf__scenario_parse(name, doc, &schema, &e->sc, &err);
    if (rc == SHELF_ENOMEM) return w->oom = 1;
    if (rc) {
        /* stored by an older shelf, or naming an event type this store lost:
         * a request for it is told why (409), the others go on */
        shelf_warn("serve: scenario '%s' does not compile here: %s", name, err.msg);
        if (!(e->error = strdup(err.msg))) return w->oom = 1;
    }
    return 0;
}

/* The promotions' pacing from the served log, once a day for each: the
 * scenario's slates per hour over the 7 days before today, and each
 * promotion's spend today (the ledger counts from there). */
static void seed_ledger(shelf_server *s, shelf_store *st, const srv_scn_set *set)
{
    int64_t now = (int64_t)time(NULL), day0 = now - now % SHELF__DAY;
    for (size_t i = 0; s->ledger && i < set->n; i++) {
        const shelf__scenario *sc = set->v[i].sc;
        if (!sc || !sc->n_promo) continue;
        double hourly[24];
        int64_t day = day0 / SHELF__DAY;
        if (!shelf__ledger_has(s->ledger, sc->name, NULL, day) &&
            !shelf__store_served_hourly(st, sc->name, day0 - 7 * SHELF__DAY, day0, hourly))
            shelf__ledger_curve(s->ledger, sc->name, hourly, day);
        for (uint32_t p = 0; p < sc->n_promo; p++) {
            char src[64];
            if (shelf__ledger_has(s->ledger, sc->name, sc->promo[p].name, day)) continue; /* counted here since */
            int64_t spent = 0;
            snprintf(src, sizeof src, "promotion:%s", sc->promo[p].name);
            if (!shelf__store_promo_spent(st, sc->name, src, day0, &spent))
                shelf__ledger_seed(s->ledger, sc->name, sc->promo[p].name, day0 / SHELF__DAY, spent);
            else shelf_warn("serve: scenario %s: the spend of promotion %s today could not be read: %s", sc->name,
                            sc->promo[p].name, shelf_store_errmsg(st));
        }
    }
}

int srv_scenarios_load(shelf_server *s, shelf_store *st, shelf_err *err)
{
    srv_scn_set *set = calloc(1, sizeof *set);
    if (!set) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    atomic_init(&set->refs, 1);
    load_walk w = {s, set, 0};
    int rc = shelf__store_scenario_foreach(st, add_row, &w);
    if (rc || w.oom) {
        if (w.oom) shelf_err_set(err, SHELF_ENOMEM, "reading the scenarios: out of memory");
        else shelf_err_set(err, rc, "%s", shelf_store_errmsg(st));
        set_free(set);
        return w.oom ? SHELF_ENOMEM : rc;
    }
    seed_ledger(s, st, set);
    pthread_mutex_lock(&s->scn_mu);
    srv_scn_set *old = s->scns;
    s->scns = set;
    pthread_mutex_unlock(&s->scn_mu);
    srv_scenarios_put(old);
    return 0;
}

void srv_scenarios_free(shelf_server *s)
{
    srv_scenarios_put(s->scns);
    s->scns = NULL;
}

const shelf__scenario *srv_scenario_get(shelf_server *s, const char *name, srv_scn_set **hold, const char **why)
{
    pthread_mutex_lock(&s->scn_mu);
    srv_scn_set *set = s->scns;
    if (set) atomic_fetch_add(&set->refs, 1);
    pthread_mutex_unlock(&s->scn_mu);
    *hold = set;
    *why = NULL;
    for (size_t i = 0; set && i < set->n; i++)
        if (!strcmp(set->v[i].name, name)) {
            *why = set->v[i].error;
            return set->v[i].sc;
        }
    return NULL;
}

/* ---- the routes ----------------------------------------------------------------------------- */

/* PUT /v1/scenarios/{name}: the body is the document, checked, then stored
 * as given (GET answers it back byte for byte) */
int srv_route_scenario_put(srv_req *r, char *const *arg)
{
    shelf_server *s = r->srv;
    const char *name = arg[0];
    if (r->len > DOC_MAX) return srv_error(r, 413, "too_large", -1, "a scenario document is at most %u bytes", DOC_MAX);
    char *doc = malloc(r->len + 1);
    if (!doc) return srv_error(r, 500, "internal", -1, "out of memory");
    memcpy(doc, r->body ? r->body : "", r->len);
    doc[r->len] = '\0';
    shelf__rank_env env = types_env(s);
    shelf__expr_schema schema = shelf__rank_schema(&env);
    shelf__scenario *sc = NULL;
    shelf_err err = {0};
    int rc = shelf__scenario_parse(name, doc, &schema, &sc, &err);
    if (rc) {
        free(doc);
        return rc == SHELF_ENOMEM ? srv_error(r, 500, "internal", -1, "out of memory")
                                  : srv_error(r, 400, "bad_scenario", -1, "%s", err.msg);
    }
    char tail[512], unapplied[sizeof tail + 24];
    shelf__scenario_unapplied(sc, tail, sizeof tail);
    srv_engine *e = srv_engine_get(s); /* model sources naming a model the server has not loaded */
    size_t ul = 0;
    unapplied[0] = '\0';
    for (uint32_t k = 0; k < sc->n_src; k++)
        if (sc->src[k].type == SHELF__SRC_MODEL && sc->src[k].model[0] && strcmp(sc->src[k].model, e->kind) &&
            !srv_engine_model(e, sc->src[k].model) && ul + 24 < sizeof unapplied)
            ul += (size_t)snprintf(unapplied + ul, sizeof unapplied - ul, "%ssources[%u].model", ul ? "," : "", k);
    if (sc->diversity_by == SHELF__BY_EMBEDDING && !(e->model && e->model->vt->item_vectors) && ul + 24 < sizeof unapplied)
        ul += (size_t)snprintf(unapplied + ul, sizeof unapplied - ul, "%sdiversity.by", ul ? "," : ""); /* no vectors */
    srv_engine_put(e);
    snprintf(unapplied + ul, sizeof unapplied - ul, "%s%s", ul && tail[0] ? "," : "", tail);
    shelf__scenario_free(sc);
    int64_t now = (int64_t)time(NULL);
    char why[SRV_WHY + 64] = "";
    int existed;
    pthread_mutex_lock(&s->store_mu);
    char *prev = NULL;
    existed = shelf__store_scenario_get(s->st, name, &prev, NULL) == 0;
    free(prev);
    if (shelf__store_scenario_put(s->st, name, doc, now)) snprintf(why, sizeof why, "%s", shelf_store_errmsg(s->st));
    else if (srv_scenarios_load(s, s->st, &err)) snprintf(why, sizeof why, "stored, but not read back: %s", err.msg);
    pthread_mutex_unlock(&s->store_mu);
    free(doc);
    if (why[0]) return srv_error(r, 500, "internal", -1, "scenario '%s': %s", name, why);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddBoolToObject(o, "created", !existed);
    cJSON_AddNumberToObject(o, "updated", (double)now);
    cJSON *na = cJSON_AddArrayToObject(o, "not_applied_yet");
    for (const char *p = unapplied; *p;) { /* "freshness,promotions" */
        size_t len = strcspn(p, ",");
        char part[128];
        snprintf(part, sizeof part, "%.*s", (int)len, p);
        cJSON_AddItemToArray(na, cJSON_CreateString(part));
        p += len + (p[len] == ',');
    }
    return srv_json(r, existed ? 200 : 201, o);
}

/* GET /v1/scenarios/{name}: the document as stored */
int srv_route_scenario_get(srv_req *r, char *const *arg)
{
    shelf_server *s = r->srv;
    char *doc = NULL;
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf__store_scenario_get(s->st, arg[0], &doc, NULL);
    char why[SRV_WHY];
    snprintf(why, sizeof why, "%s", rc ? shelf_store_errmsg(s->st) : "");
    pthread_mutex_unlock(&s->store_mu);
    if (rc == SHELF_ENOTFOUND) return srv_error(r, 404, "not_found", -1, "no scenario '%s'", arg[0]);
    if (rc) return srv_error(r, 500, "internal", -1, "%s", why);
    return srv_text(r, 200, "application/json", doc, strlen(doc));
}

/* DELETE /v1/scenarios/{name} */
int srv_route_scenario_delete(srv_req *r, char *const *arg)
{
    shelf_server *s = r->srv;
    shelf_err err = {0};
    char why[SRV_WHY + 64] = "";
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf__store_scenario_delete(s->st, arg[0]);
    if (rc) snprintf(why, sizeof why, "%s", shelf_store_errmsg(s->st));
    else if (srv_scenarios_load(s, s->st, &err)) snprintf(why, sizeof why, "deleted, but not read back: %s", err.msg);
    pthread_mutex_unlock(&s->store_mu);
    if (rc == SHELF_ENOTFOUND) return srv_error(r, 404, "not_found", -1, "no scenario '%s'", arg[0]);
    if (why[0]) return srv_error(r, 500, "internal", -1, "scenario '%s': %s", arg[0], why);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", arg[0]);
    return srv_json(r, 200, o);
}

static int list_row(void *ctx, const char *name, const char *doc, int64_t updated)
{
    cJSON *arr = ctx, *o = cJSON_CreateObject(), *j = cJSON_Parse(doc);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "description");
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "updated", (double)updated);
    if (cJSON_IsString(d)) cJSON_AddStringToObject(o, "description", d->valuestring);
    cJSON_Delete(j);
    cJSON_AddItemToArray(arr, o);
    return 0;
}

/* each promotion's budget, spend today and the impressions planned by now */
static void add_promotions(shelf_server *s, const shelf__scenario *sc, cJSON *e)
{
    cJSON *arr = cJSON_AddArrayToObject(e, "promotions");
    int64_t now = (int64_t)time(NULL);
    for (uint32_t p = 0; p < sc->n_promo; p++) {
        int64_t spent;
        double planned;
        shelf__ledger_state(s->ledger, sc->name, sc->promo[p].name, sc->promo[p].budget_per_day, now, &spent, &planned);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", sc->promo[p].name);
        cJSON_AddNumberToObject(o, "budget_per_day", (double)sc->promo[p].budget_per_day);
        cJSON_AddNumberToObject(o, "spent_today", (double)spent);
        cJSON_AddNumberToObject(o, "planned_by_now", floor(planned));
        cJSON_AddItemToArray(arr, o);
    }
}

/* GET /v1/scenarios: names, when each was last written, descriptions,
 * whether each compiles here, and its promotions' spend today */
int srv_route_scenarios(srv_req *r, char *const *arg)
{
    (void)arg;
    shelf_server *s = r->srv;
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "scenarios");
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf__store_scenario_foreach(s->st, list_row, arr);
    char why[SRV_WHY];
    snprintf(why, sizeof why, "%s", rc ? shelf_store_errmsg(s->st) : "");
    pthread_mutex_unlock(&s->store_mu);
    if (rc) {
        cJSON_Delete(o);
        return srv_error(r, 500, "internal", -1, "%s", why);
    }
    srv_scn_set *hold;
    const char *bad;
    for (cJSON *e = arr->child; e; e = e->next) {
        const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
        const shelf__scenario *sc = srv_scenario_get(s, name, &hold, &bad);
        if (!sc && bad) cJSON_AddStringToObject(e, "error", bad);
        if (sc && sc->n_promo) add_promotions(s, sc, e);
        srv_scenarios_put(hold);
    }
    return srv_json(r, 200, o);
}
