/* search.c: customer-service answers (search_int.h, docs/search.md): the
 * store's text matches of a query, re-ranked by the shopper's profile (the
 * model's scores of the shopper over those matches only, from the ranking
 * room), and the POST /v1/search route that answers them with snippets. */
#include "serve_int.h"
#include "serve/search_int.h"
#include "core/check_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the profile ---------------------------------------------------------------------- */

/* The model's scores of known user idx over the matches t (prof[k] for
 * t->hit[k], has[k] set where the model gave one): the ranking room with
 * the matches as its only candidates, nothing hidden as seen, no popularity
 * blended. *profiled = 0 when the room answered from anything but the model
 * (no history, a user and history the model does not know, no model). */
static int profile_scores(shelf_server *s, uint32_t idx, const shelf__search_res *t, float *prof, uint8_t *has,
                          int *profiled, shelf_err *err)
{
    *profiled = 0;
    srv_user *u = srv_user_at(s, idx);
    uint32_t *cand = malloc(t->n * sizeof *cand), *it = NULL;
    uint16_t *ty = NULL;
    int64_t *ts = NULL;
    size_t cap = 0, n = (size_t)-1;
    if (u && cand) {
        pthread_mutex_lock(&u->mu); /* a copy of the history: the shopper's session is not touched */
        n = srv_user_history(s, idx, u, &it, &ty, &ts, &cap);
        pthread_mutex_unlock(&u->mu);
    }
    int rc = n == (size_t)-1 ? shelf_err_set(err, SHELF_ENOMEM, "search: out of memory (history)") : 0;
    if (!rc && n > 0) {
        for (size_t k = 0; k < t->n; k++) cand[k] = t->hit[k].item;
        srv_engine *e = srv_engine_get(s);
        shelf__rank_env env;
        srv_rank_env(s, e, &env);
        shelf__seen none = {0};
        shelf__rank_req rq = {.mode = SHELF__RANK_SHOPPER, .user = idx, .items = it, .types = ty, .ts = ts,
                              .n_hist = n, .anchor = SHELF_NONE, .n = (uint32_t)t->n, .candidates = cand,
                              .n_candidates = t->n, .seen = &none, .blend_popularity = 0,
                              .now = (int64_t)time(NULL)};
        shelf_slate sl = {0};
        int online = (e->caps & SHELF_CAP_ONLINE) != 0;
        if (online) pthread_rwlock_rdlock(&e->model_rw);
        rc = shelf__rank(&env, &rq, &sl, err);
        if (online) pthread_rwlock_unlock(&e->model_rw);
        *profiled = !rc && !strcmp(sl.source, "model");
        for (uint32_t j = 0; *profiled && j < sl.n; j++) {
            if (strcmp(sl.items[j].source, "model")) continue; /* topped up from popularity */
            for (size_t k = 0; k < t->n; k++)
                if (cand[k] == sl.items[j].item) prof[k] = sl.items[j].score, has[k] = 1;
        }
        shelf_slate_free(&sl);
        srv_engine_put(e);
    }
    free(cand);
    free(it);
    free(ty);
    free(ts);
    return rc;
}

/* ---- the final order -------------------------------------------------------------------- */

/* x min-max scaled over [lo, hi]; 1 when they are one value */
static float scaled(float x, float lo, float hi) { return hi > lo ? (x - lo) / (hi - lo) : 1.0f; }

static int by_score(const void *a, const void *b)
{
    const shelf__search_item *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    if (x->text_score != y->text_score) return x->text_score < y->text_score ? 1 : -1;
    return x->hit < y->hit ? -1 : x->hit > y->hit; /* the store's order */
}

/* score = (1 - w) * scaled text + w * scaled profile (0 for a match the
 * model gave none); without a profile the text alone, so the text order */
static void blend(shelf__search_answer *a, const float *prof, const uint8_t *has, double w)
{
    const shelf__search_res *t = &a->text;
    float tlo = INFINITY, thi = -INFINITY, plo = INFINITY, phi = -INFINITY;
    for (size_t k = 0; k < t->n; k++) {
        tlo = fminf(tlo, t->hit[k].score), thi = fmaxf(thi, t->hit[k].score);
        if (has[k]) plo = fminf(plo, prof[k]), phi = fmaxf(phi, prof[k]);
    }
    for (size_t k = 0; k < t->n; k++) {
        shelf__search_item *it = &a->item[k];
        *it = (shelf__search_item){.hit = &t->hit[k], .text_score = t->hit[k].score, .profile_score = prof[k],
                                   .has_profile = has[k]};
        float ts = scaled(t->hit[k].score, tlo, thi);
        it->score = a->profiled ? (float)((1 - w) * ts + w * (has[k] ? scaled(prof[k], plo, phi) : 0)) : ts;
    }
    if (t->n) qsort(a->item, t->n, sizeof *a->item, by_score);
}

static int search_srv(shelf_server *s, const shelf__search_req *q, shelf__search_answer *out, shelf_err *err)
{
    *out = (shelf__search_answer){0};
    if (q->n < 1 || q->n > SHELF__SEARCH_MAX_N)
        return shelf_err_set(err, SHELF_EINVAL, "search: n %u out of 1..%d", q->n, SHELF__SEARCH_MAX_N);
    if (!(q->profile_weight >= 0 && q->profile_weight <= 1))
        return shelf_err_set(err, SHELF_EINVAL, "search: profile weight %g out of 0..1", q->profile_weight);
    uint32_t idx = q->user ? srv_user_find(s, q->user) : SHELF_NONE;
    out->known_user = idx != SHELF_NONE;
    /* a known shopper's profile re-ranks a pool of matches; else the best n are the answer */
    shelf__search_q sq = {.query = q->query, .kind = q->kind, .limit = out->known_user ? SHELF__SEARCH_POOL : q->n,
                          .html = q->html};
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf__store_search(s->st, &sq, &out->text);
    if (rc) shelf_err_set(err, rc, "%s", shelf_store_errmsg(s->st));
    pthread_mutex_unlock(&s->store_mu);
    if (rc || !out->text.n) return rc;
    size_t m = out->text.n;
    float *prof = calloc(m, sizeof *prof);
    uint8_t *has = calloc(m, 1);
    out->item = calloc(m, sizeof *out->item);
    if (!prof || !has || !out->item) rc = shelf_err_set(err, SHELF_ENOMEM, "search: out of memory");
    if (!rc && out->known_user) rc = profile_scores(s, idx, &out->text, prof, has, &out->profiled, err);
    if (!rc) {
        blend(out, prof, has, q->profile_weight);
        out->n = m < q->n ? m : q->n;
    }
    free(prof);
    free(has);
    return rc;
}

int shelf__search(shelf_engine *g, const shelf__search_req *q, shelf__search_answer *out, shelf_err *err)
{
    return search_srv(&g->srv, q, out, err);
}

cJSON *shelf__search_item_json(const shelf__search_item *it)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", it->hit->id);
    cJSON_AddNumberToObject(o, "score", (double)it->score);
    cJSON_AddNumberToObject(o, "text_score", (double)it->text_score);
    if (it->has_profile) cJSON_AddNumberToObject(o, "profile_score", (double)it->profile_score);
    else cJSON_AddNullToObject(o, "profile_score");
    cJSON_AddStringToObject(o, "kind", it->hit->kind);
    cJSON_AddStringToObject(o, "title", it->hit->title);
    cJSON_AddStringToObject(o, "snippet", it->hit->snippet);
    return o;
}

void shelf__search_answer_free(shelf__search_answer *a)
{
    if (!a) return;
    shelf__search_res_free(&a->text);
    free(a->item);
    *a = (shelf__search_answer){0};
}

/* ---- POST /v1/search ---------------------------------------------------------------------- */

/* 1 when s holds a character other than white space (ASCII blanks, U+3000) */
static int has_word(const char *s)
{
    while (*s) {
        if (strchr(" \t\n\v\f\r", *s)) s++;
        else if (!strncmp(s, "\xe3\x80\x80", 3)) s += 3;
        else return 1;
    }
    return 0;
}

/* the request's fields into q (strings point into j); answers 400 naming the field and returns 1 when one is bad */
static int search_args(srv_req *r, const cJSON *j, shelf__search_req *q, char *user, size_t ucap)
{
    char path[160], why[120];
    if (!cJSON_IsObject(j)) return srv_error(r, 400, "bad_request", -1, "the body: expected a JSON object"), 1;
    if (shelf__check_json(j, path, sizeof path, why, sizeof why))
        return srv_error(r, 400, "bad_request", -1, "%s: %s", path[0] ? path + 1 : "the body", why), 1;
    *q = (shelf__search_req){.n = 10, .profile_weight = SHELF__SEARCH_PROFILE_WEIGHT, .html = 1};
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "query");
    if (!f || cJSON_IsNull(f)) return srv_error(r, 400, "bad_request", -1, "query: missing"), 1;
    if (!cJSON_IsString(f)) return srv_error(r, 400, "bad_request", -1, "query: expected a string"), 1;
    size_t len = strlen(f->valuestring);
    if (len > SHELF__SEARCH_MAX_QUERY)
        return srv_error(r, 400, "bad_request", -1, "query: %zu bytes; at most %d", len, SHELF__SEARCH_MAX_QUERY), 1;
    if (!has_word(f->valuestring))
        return srv_error(r, 400, "bad_request", -1, "query: no word to search for"), 1;
    q->query = f->valuestring;
    if ((f = cJSON_GetObjectItemCaseSensitive(j, "user")) && !cJSON_IsNull(f)) {
        int rc = srv_json_id(f, user, ucap);
        if (rc) return srv_error(r, 400, "bad_request", -1, "user: %s", rc == SHELF_ERANGE ? "longer than 511 bytes" : "expected a non-empty string"), 1;
        q->user = user;
    }
    if ((f = cJSON_GetObjectItemCaseSensitive(j, "kind")) && !cJSON_IsNull(f)) {
        if (!cJSON_IsString(f) || !f->valuestring[0]) return srv_error(r, 400, "bad_request", -1, "kind: expected a non-empty string"), 1;
        q->kind = f->valuestring;
    }
    if ((f = cJSON_GetObjectItemCaseSensitive(j, "n")) && !cJSON_IsNull(f)) {
        if (!cJSON_IsNumber(f) || f->valuedouble != floor(f->valuedouble) || f->valuedouble < 1 || f->valuedouble > SHELF__SEARCH_MAX_N)
            return srv_error(r, 400, "bad_request", -1, "n: expected an integer from 1 to %d", SHELF__SEARCH_MAX_N), 1;
        q->n = (uint32_t)f->valuedouble;
    }
    if ((f = cJSON_GetObjectItemCaseSensitive(j, "profile_weight")) && !cJSON_IsNull(f)) {
        if (!cJSON_IsNumber(f) || !(f->valuedouble >= 0 && f->valuedouble <= 1))
            return srv_error(r, 400, "bad_request", -1, "profile_weight: expected a number from 0 to 1"), 1;
        q->profile_weight = f->valuedouble;
    }
    return 0;
}

static int answer(srv_req *r, const shelf__search_req *q, const shelf__search_answer *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "query", q->query);
    if (q->user) cJSON_AddStringToObject(o, "user", q->user);
    else cJSON_AddNullToObject(o, "user");
    cJSON_AddBoolToObject(o, "known_user", a->known_user);
    cJSON_AddBoolToObject(o, "profiled", a->profiled);
    cJSON_AddStringToObject(o, "method", a->text.method == SHELF__SEARCH_SCAN ? "scan" : "fts");
    cJSON *arr = cJSON_AddArrayToObject(o, "items");
    for (size_t k = 0; k < a->n; k++) cJSON_AddItemToArray(arr, shelf__search_item_json(&a->item[k]));
    return srv_json(r, 200, o);
}

int srv_route_search(srv_req *r, char *const *arg)
{
    (void)arg;
    const char *nul = r->len ? memchr(r->body, '\0', r->len) : NULL;
    if (nul) return srv_error(r, 400, "bad_json", -1, "the body holds a NUL byte at byte offset %zu", (size_t)(nul - r->body));
    if (r->len) shelf__json_mark_nul(r->body, &r->len); /* a \u0000 in a string is refused by its field's path */
    cJSON *j = srv_body_json(r);
    if (!j) return 0;
    shelf__search_req q;
    char user[512];
    int ret = 0;
    if (!search_args(r, j, &q, user, sizeof user)) {
        shelf__search_answer a;
        shelf_err err = {0};
        int rc = search_srv(r->srv, &q, &a, &err);
        ret = rc == SHELF_EINVAL ? srv_error(r, 400, "bad_request", -1, "%s", err.msg)
              : rc              ? srv_error(r, 500, "internal", -1, "%s", err.msg)
                                : answer(r, &q, &a);
        shelf__search_answer_free(&a);
    }
    cJSON_Delete(j);
    return ret;
}
