/* recs.c: the slate routes: personal recommendations (the model's
 * session of the live history, or its score of it), anonymous sessions,
 * similar items, popularity and predicted ratings. Model scores, then
 * business filters (kind, category, availability, exclusions, purchases),
 * then the top n, logged to the served log with a rec_id. */
#include "serve_int.h"

#include <math.h>
#include <microhttpd.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- per-thread work space ------------------------------------------------------------ */

typedef struct work {
    float *scores;
    size_t scap;
    uint32_t *item;
    uint16_t *type;
    int64_t *ts;
    size_t hcap;
    uint32_t *kitem; /* the events the model knows (known_history) */
    uint16_t *ktype;
    int64_t *kts;
    size_t kcap;
    uint32_t *top;
    size_t tcap;
    uint64_t rng[2];
} work;

static pthread_key_t work_key;
static pthread_once_t work_once = PTHREAD_ONCE_INIT;

static void work_free(void *p)
{
    work *w = p;
    if (!w) return;
    free(w->scores);
    free(w->item);
    free(w->type);
    free(w->ts);
    free(w->kitem);
    free(w->ktype);
    free(w->kts);
    free(w->top);
    free(w);
}

static void work_key_make(void) { pthread_key_create(&work_key, work_free); }

static work *work_get(size_t n_scores, size_t k)
{
    pthread_once(&work_once, work_key_make);
    work *w = pthread_getspecific(work_key);
    if (!w) {
        if (!(w = calloc(1, sizeof *w))) return NULL;
        if (RAND_bytes((unsigned char *)w->rng, sizeof w->rng) != 1) {
            w->rng[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)w;
            w->rng[1] = 0x9e3779b97f4a7c15ull;
        }
        pthread_setspecific(work_key, w);
    }
    if (n_scores > w->scap) {
        float *s = realloc(w->scores, n_scores * sizeof *s);
        if (!s) return NULL;
        w->scores = s;
        w->scap = n_scores;
    }
    if (k > w->tcap) {
        uint32_t *t = realloc(w->top, k * sizeof *t);
        if (!t) return NULL;
        w->top = t;
        w->tcap = k;
    }
    return w;
}

/* xorshift128+ for rec ids (seeded from RAND_bytes per thread) */
static uint64_t rnd(work *w)
{
    uint64_t a = w->rng[0], b = w->rng[1];
    w->rng[0] = b;
    a ^= a << 23;
    w->rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return w->rng[1] + b;
}

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
} slate_args;

static int is_slate_arg(const char *k)
{
    static const char *const own[] = {"n", "kind", "category", "exclude", "explain", "exclude_seen"};
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
    if (!key || !value || is_slate_arg(key) || w->a->n_ctx == SRV_USER_CTX) return MHD_YES;
    char kv[200];
    int n = snprintf(kv, sizeof kv, "%s=%s", key, value);
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
    if ((v = srv_arg(r, "explain")) && parse_bool(v, &a->explain))
        return srv_error(r, 400, "bad_request", -1, "explain: expected true or false, got '%s'", v), 1;
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

/* ---- scoring ------------------------------------------------------------------------------------- */

/* The events of a history whose items the model knows (< I; items added
 * after training are skipped) into w->k*; returns their count, or
 * (uint32_t)-1 when out of memory. */
static uint32_t known_history(work *w, uint32_t I, const uint32_t *items, const uint16_t *types, const int64_t *ts,
                              size_t n)
{
    if (n > w->kcap) {
        uint32_t *it = realloc(w->kitem, n * sizeof *it);
        if (it) w->kitem = it;
        uint16_t *ty = realloc(w->ktype, n * sizeof *ty);
        if (ty) w->ktype = ty;
        int64_t *t2 = realloc(w->kts, n * sizeof *t2);
        if (t2) w->kts = t2;
        if (!it || !ty || !t2) return (uint32_t)-1;
        w->kcap = n;
    }
    uint32_t m = 0;
    for (size_t k = 0; k < n; k++)
        if (items[k] < I) {
            w->kitem[m] = items[k];
            w->ktype[m] = types ? types[k] : 0;
            w->kts[m] = ts ? ts[k] : 0;
            m++;
        }
    return m;
}

/* the model's (or popularity's) scores into w->scores[0..N) (N >= the
 * model's items); items the model does not know score -inf. */
static int model_scores(shelf_server *s, srv_engine *e, work *w, uint32_t N, uint32_t user, const uint32_t *items,
                        const uint16_t *types, const int64_t *ts, size_t n, shelf_err *err)
{
    float *sc = w->scores;
    if (!e->model) {
        srv_pop_scores(s, sc, N);
        return 0;
    }
    uint32_t I = e->model->n_items;
    uint32_t m = known_history(w, I, items, types, ts, n);
    if (m == (uint32_t)-1) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    shelf_query q = {.user = user != SHELF_NONE && user < e->model->n_users ? user : SHELF_NONE,
                     .items = w->kitem, .types = types ? w->ktype : NULL, .ts = ts ? w->kts : NULL, .n = m,
                     .now = (int64_t)time(NULL)};
    int rc = shelf_model_score(e->model, &q, sc, err);
    if (rc && !m && q.user == SHELF_NONE) {
        srv_pop_scores(s, sc, I); /* a model that needs a history: popularity stands in */
        rc = 0;
    }
    if (rc) return rc;
    for (uint32_t i = I; i < N; i++) sc[i] = -INFINITY;
    return 0;
}

/* A known user's scores through its session (models with sessions): kept
 * while the history only grows, extended by the events since, begun anew
 * for a new model generation or a late event. u->mu held; *delta and
 * *is_new report the session memory's change for srv_sess_account. */
static int session_scores(shelf_server *s, srv_engine *e, srv_user *u, work *w, uint32_t N, size_t n,
                          long long *delta, int *is_new, shelf_err *err)
{
    uint32_t I = e->model->n_items;
    uint32_t m = known_history(w, I, w->item, w->type, w->ts, n);
    if (m == (uint32_t)-1) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    shelf_query q = {.user = SHELF_NONE, .items = w->kitem, .types = w->ktype, .ts = w->kts, .n = m};
    if (u->sess && (u->sess_gen != e->gen || u->sess_stale || u->sess_n > m))
        *delta -= (long long)srv_sess_drop(s, u);
    int rc = 0;
    if (!u->sess) {
        if (!(rc = shelf_session_begin(e->model, &q, &u->sess, err))) {
            atomic_fetch_add(&s->live_sessions, 1);
            u->sess_gen = e->gen;
            *is_new = 1;
        }
    } else if (u->sess_n < m) {
        rc = shelf_session_append(u->sess, &q, err);
    }
    if (rc) {
        *delta -= (long long)srv_sess_drop(s, u);
        return rc;
    }
    u->sess_n = m;
    size_t bytes = shelf_session_bytes(u->sess);
    *delta += (long long)bytes - (long long)u->sess_bytes;
    u->sess_bytes = bytes;
    rc = shelf_session_score(u->sess, w->scores, err);
    for (uint32_t i = I; !rc && i < N; i++) w->scores[i] = -INFINITY;
    return rc;
}

/* a slate for a shopper without history from its context values: a model
 * that scores context (SHELF_CAP_CONTEXT) scores them itself; otherwise the
 * popularity among shoppers with the same values. Returns 1 when the
 * context gave scores (*source set), 0 when it did not (scores untouched). */
static int context_scores(shelf_server *s, srv_engine *e, work *w, uint32_t N, const slate_args *a,
                          const char **source)
{
    if (!a->n_ctx) return 0;
    if (e->caps & SHELF_CAP_CONTEXT) { /* the model scores the context itself */
        uint32_t h[SRV_USER_CTX];
        srv_ctx_hashes(s, a->ctx, a->n_ctx, h);
        uint32_t I = e->model->n_items;
        float *full = N >= I ? w->scores : malloc((size_t)I * sizeof *full);
        shelf_query q = {.user = SHELF_NONE, .ctx = h, .n_ctx = a->n_ctx};
        int ok = full && shelf_model_score(e->model, &q, full, NULL) == 0;
        if (ok && full != w->scores) memcpy(w->scores, full, (size_t)N * sizeof *full);
        if (full != w->scores) free(full);
        if (ok) {
            for (uint32_t i = I; i < N; i++) w->scores[i] = -INFINITY;
            *source = "model";
            return 1;
        }
    }
    if (srv_ctx_scores(s, a->ctx, a->n_ctx, w->scores, N)) {
        *source = "context";
        return 1;
    }
    return 0;
}

/* a shopper without usable history (unknown id, forgotten history, a
 * session of unknown items): its context, else the fallback chain of the
 * deployment (trending, then all-time popularity): never the model's scores
 * of an empty history, which are zeros for the neighbourhood models */
static void no_history_scores(shelf_server *s, srv_engine *e, work *w, uint32_t N, const slate_args *a,
                              const char **source)
{
    if (context_scores(s, e, w, N, a, source)) return;
    srv_fallback_scores(s, w->scores, N);
    *source = "popular";
}

/* a known user's scores (its session, else the model's score of the live
 * history). Fills w->item/type/ts with the history; *n_hist its length;
 * with no history the scores are left untouched. */
static int user_scores(shelf_server *s, srv_engine *e, work *w, uint32_t N, uint32_t idx, size_t *n_hist,
                       shelf_err *err)
{
    srv_user *u = srv_user_at(s, idx);
    if (!u) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    pthread_mutex_lock(&u->mu);
    size_t n = srv_user_history(s, idx, u, &w->item, &w->type, &w->ts, &w->hcap);
    if (n == (size_t)-1) {
        pthread_mutex_unlock(&u->mu);
        return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    }
    *n_hist = n;
    if (n == 0) { /* nothing to score: the caller serves context or the fallback */
        pthread_mutex_unlock(&u->mu);
        return 0;
    }
    if (!(e->caps & SHELF_CAP_SESSION)) {
        pthread_mutex_unlock(&u->mu);
        return model_scores(s, e, w, N, idx, w->item, w->type, w->ts, n, err);
    }
    long long delta = 0;
    int is_new = 0, rc = session_scores(s, e, u, w, N, n, &delta, &is_new, err);
    pthread_mutex_unlock(&u->mu);
    srv_sess_account(s, idx, delta, is_new);
    return rc;
}

/* ---- slate ---------------------------------------------------------------------------------------------- */

static const char *verb(const char *type)
{
    static const char *const v[][2] = {{"view", "viewed"},     {"click", "clicked"},      {"cart", "put in your cart"},
                                       {"purchase", "bought"}, {"rating", "rated"},       {"like", "liked"},
                                       {"share", "shared"},    {"impression", "saw"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!strcmp(v[i][0], type)) return v[i][1];
    return "looked at";
}

/* filters, exclusions, top n, JSON, served log. hist: the history behind
 * the scores (explanations, purchases), user: SHELF_NONE for anonymous. */
static int answer_slate(srv_req *r, srv_engine *e, work *w, uint32_t N, const slate_args *a, const char *user_ext,
                        uint32_t user, int known, const uint32_t *hist, const uint16_t *htype, const int64_t *hts,
                        size_t n_hist, const char *source)
{
    shelf_server *s = r->srv;
    float *sc = w->scores;
    srv_filter(s, sc, N, a->kind, a->category, 1);
    for (size_t k = 0; k < a->n_exclude; k++)
        if (a->exclude[k] < N) sc[a->exclude[k]] = -INFINITY;
    shelf__seen_filter(sc, N, a->has_seen ? &a->seen : &s->seen, hist, htype, hts, n_hist, (int64_t)time(NULL));
    uint32_t n = shelf_topk(sc, N, NULL, a->n, w->top);

    char rec_id[40];
    snprintf(rec_id, sizeof rec_id, "%016llx%016llx", (unsigned long long)rnd(w), (unsigned long long)rnd(w));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rec_id", rec_id);
    if (user_ext) cJSON_AddStringToObject(o, "user", user_ext);
    else cJSON_AddNullToObject(o, "user");
    cJSON_AddBoolToObject(o, "known_user", known);
    cJSON_AddStringToObject(o, "model", e->kind);
    cJSON_AddStringToObject(o, "model_version", e->version);
    cJSON_AddStringToObject(o, "source", source);
    if (a->n_skipped) cJSON_AddNumberToObject(o, "skipped_items", a->n_skipped);
    cJSON *arr = cJSON_AddArrayToObject(o, "items");
    shelf_query q = {.user = user != SHELF_NONE && e->model && user < e->model->n_users ? user : SHELF_NONE,
                     .items = hist, .types = htype, .ts = hts, .n = (uint32_t)n_hist};
    int can_explain = a->explain && (e->caps & SHELF_CAP_EXPLAIN);
    uint32_t *hist_ok = NULL;
    if (can_explain && e->model) { /* the model explains with what it knows */
        hist_ok = malloc((n_hist ? n_hist : 1) * sizeof *hist_ok);
        uint16_t *ty_ok = malloc((n_hist ? n_hist : 1) * sizeof *ty_ok);
        if (!hist_ok || !ty_ok) can_explain = 0;
        else {
            uint32_t m = 0;
            for (size_t k = 0; k < n_hist; k++)
                if (hist[k] < e->model->n_items) {
                    hist_ok[m] = hist[k];
                    ty_ok[m++] = htype[k];
                }
            q.items = hist_ok;
            q.types = ty_ok;
            q.ts = NULL;
            q.n = m;
        }
        if (!can_explain) free(ty_ok);
    }
    srv_served *sv = s->o.no_served_log ? NULL : calloc(1, sizeof *sv);
    if (sv && (!(sv->items = malloc((n ? n : 1) * sizeof *sv->items)) || !(sv->scores = malloc((n ? n : 1) * sizeof *sv->scores)))) {
        free(sv->items);
        free(sv);
        sv = NULL;
        atomic_fetch_add(&s->m.served_dropped, 1);
    }
    pthread_rwlock_rdlock(&s->items_rw);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = w->top[k];
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "id", s->item_ext[i] ? s->item_ext[i] : "");
        cJSON_AddNumberToObject(it, "score", isfinite(sc[i]) ? (double)sc[i] : 0.0);
        cJSON_AddStringToObject(it, "kind", s->kinds[s->item_kind[i]]);
        if (a->explain) {
            cJSON *rs = cJSON_AddArrayToObject(it, "reasons");
            shelf_reason why = {.item = SHELF_NONE};
            int ok = can_explain && !strcmp(source, "model") && i < e->model->n_items &&
                     shelf_model_explain(e->model, &q, i, &why, NULL) == 0;
            cJSON *one = cJSON_CreateObject();
            if (ok && why.item != SHELF_NONE && why.item < s->n_items && s->item_ext[why.item]) {
                const char *tn = "view";
                for (size_t h = n_hist; h-- > 0;)
                    if (hist[h] == why.item) {
                        tn = htype[h] < s->n_types ? s->type_name[htype[h]] : "view";
                        break;
                    }
                char text[300];
                snprintf(text, sizeof text, "because you %s %s", verb(tn), s->item_ext[why.item]);
                cJSON_AddStringToObject(one, "item", s->item_ext[why.item]);
                cJSON_AddStringToObject(one, "text", text);
                cJSON_AddNumberToObject(one, "weight", (double)why.weight);
            } else {
                cJSON_AddNullToObject(one, "item");
                cJSON_AddStringToObject(one, "text", !strcmp(source, "context") ? "popular with shoppers like you"
                                                     : !strcmp(source, "popular") ? "popular with shoppers"
                                                     : !e->model ? "popular now"
                                                     : n_hist    ? "recommended by the model for your history"
                                                                 : "popular with shoppers");
            }
            cJSON_AddItemToArray(rs, one);
        }
        cJSON_AddItemToArray(arr, it);
        if (sv) {
            sv->items[k] = i;
            sv->scores[k] = isfinite(sc[i]) ? sc[i] : 0.0f;
        }
    }
    pthread_rwlock_unlock(&s->items_rw);
    if (hist_ok) {
        free((void *)q.types);
        free(hist_ok);
    }
    if (sv) {
        memcpy(sv->rec_id, rec_id, sizeof rec_id);
        sv->user = user;
        sv->ts = (int64_t)time(NULL);
        sv->n = n;
        srv_served_push(s, sv);
    }
    return srv_json(r, 200, o);
}

int srv_route_recs(srv_req *r, const char *user)
{
    shelf_server *s = r->srv;
    slate_args a;
    if (query_args(r, &a, 1)) return 0;
    srv_engine *e = srv_engine_get(s);
    uint32_t N = srv_n_items(s);
    if (e->model && e->model->n_items > N) N = e->model->n_items;
    work *w = work_get(N ? N : 1, a.n);
    shelf_err err = {0};
    int rc = w ? 0 : shelf_err_set(&err, SHELF_ENOMEM, "out of memory");
    uint32_t idx = srv_user_find(s, user);
    size_t nh = 0;
    if (!rc && idx != SHELF_NONE) rc = user_scores(s, e, w, N, idx, &nh, &err);
    const char *source = e->model ? "model" : "popularity";
    if (!rc && nh == 0) {
        /* no history: the context of the request, else the user's own
         * attributes (segment, region, device...): popular with shoppers like them */
        if (!a.n_ctx && idx != SHELF_NONE) {
            srv_user *u = srv_user_at(s, idx);
            if (u) {
                pthread_mutex_lock(&u->mu);
                a.n_ctx = u->n_ctx;
                memcpy(a.ctx, u->ctx, u->n_ctx * sizeof *a.ctx);
                pthread_mutex_unlock(&u->mu);
            }
        }
        no_history_scores(s, e, w, N, &a, &source);
    }
    int ret;
    if (rc) ret = srv_error(r, 500, "internal", -1, "scoring failed: %s", err.msg);
    else ret = answer_slate(r, e, w, N, &a, user, idx, idx != SHELF_NONE, w->item, w->type, w->ts, idx == SHELF_NONE ? 0 : nh, source);
    srv_engine_put(e);
    free(a.exclude);
    return ret;
}

int srv_route_recs_anon(srv_req *r)
{
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
    static const char *const sf[] = {"kind", "category"};
    const char **sd[] = {&a.kind, &a.category};
    for (int k = 0; !bad && k < 2; k++)
        if ((f = cJSON_GetObjectItemCaseSensitive(j, sf[k])) && !cJSON_IsNull(f)) {
            if (!cJSON_IsString(f)) bad = srv_error(r, 400, "bad_request", -1, "%s: expected a string", sf[k]) || 1;
            else *sd[k] = f->valuestring;
        }
    if (!bad && (f = cJSON_GetObjectItemCaseSensitive(j, "context")) && !cJSON_IsNull(f)) {
        if (!cJSON_IsObject(f)) bad = srv_error(r, 400, "bad_request", -1, "context: expected an object") || 1;
        for (const cJSON *c = bad ? NULL : f->child; c && a.n_ctx < SRV_USER_CTX; c = c->next) {
            char kv[200];
            int v = shelf__json_kv(c, kv, sizeof kv) > 0 ? srv_ctx_find(s, kv) : -1;
            if (v >= 0) a.ctx[a.n_ctx++] = (uint16_t)v;
        }
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
        uint32_t N = srv_n_items(s);
        if (e->model && e->model->n_items > N) N = e->model->n_items;
        work *w = work_get(N ? N : 1, a.n);
        int rc = !w ? SHELF_ENOMEM : n ? model_scores(s, e, w, N, SHELF_NONE, hist, cJSON_IsArray(types) ? ht : NULL, NULL, n, NULL) : 0;
        const char *source = e->model ? "model" : "popularity";
        if (!rc && n == 0) no_history_scores(s, e, w, N, &a, &source);
        if (rc) srv_error(r, 500, "internal", -1, "scoring failed");
        else answer_slate(r, e, w, N, &a, NULL, SHELF_NONE, 0, hist, ht, NULL, n, source);
        srv_engine_put(e);
    }
    free(hist);
    free(ht);
    free(a.exclude);
    cJSON_Delete(j);
    return 0;
}

static int answer_list(srv_req *r, work *w, uint32_t N, uint32_t n_want, const char *item_ext)
{
    shelf_server *s = r->srv;
    uint32_t n = shelf_topk(w->scores, N, NULL, n_want, w->top);
    cJSON *o = cJSON_CreateObject();
    if (item_ext) cJSON_AddStringToObject(o, "item", item_ext);
    cJSON *arr = cJSON_AddArrayToObject(o, "items");
    pthread_rwlock_rdlock(&s->items_rw);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = w->top[k];
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "id", s->item_ext[i] ? s->item_ext[i] : "");
        cJSON_AddNumberToObject(it, "score", isfinite(w->scores[i]) ? (double)w->scores[i] : 0.0);
        cJSON_AddItemToArray(arr, it);
    }
    pthread_rwlock_unlock(&s->items_rw);
    return srv_json(r, 200, o);
}

int srv_route_similar(srv_req *r, const char *item)
{
    shelf_server *s = r->srv;
    slate_args a;
    if (query_args(r, &a, 0)) return 0;
    uint32_t idx = srv_item_find(s, item);
    if (idx == SHELF_NONE) return srv_error(r, 404, "not_found", -1, "no item '%s'", item);
    srv_engine *e = srv_engine_get(s);
    uint32_t N = srv_n_items(s);
    if (e->model && e->model->n_items > N) N = e->model->n_items;
    work *w = work_get(N ? N : 1, a.n);
    int rc = SHELF_ENOMEM;
    if (w) {
        /* what shoppers go to next after this one item: the model on a
         * one-item session; an item the model did not learn stands in for
         * its content neighbours */
        uint32_t sess[64];
        uint16_t view[64] = {0};
        float nw[64];
        uint32_t ns = 0;
        if (e->model && idx >= e->model->n_items) {
            pthread_rwlock_rdlock(&s->items_rw);
            ns = s->cf ? shelf_coldfill_neighbours(s->cf, idx, sess, nw) : 0;
            pthread_rwlock_unlock(&s->items_rw);
        }
        if (!ns) sess[ns++] = idx;
        rc = model_scores(s, e, w, N, SHELF_NONE, sess, view, NULL, ns, NULL);
    }
    int ret;
    if (rc) ret = srv_error(r, 500, "internal", -1, "scoring failed");
    else {
        w->scores[idx] = -INFINITY;
        srv_filter(s, w->scores, N, a.kind, a.category, 1);
        ret = answer_list(r, w, N, a.n, item);
    }
    srv_engine_put(e);
    return ret;
}

int srv_route_popular(srv_req *r)
{
    shelf_server *s = r->srv;
    slate_args a;
    if (query_args(r, &a, 0)) return 0;
    uint32_t N = srv_n_items(s);
    work *w = work_get(N ? N : 1, a.n);
    if (!w) return srv_error(r, 500, "internal", -1, "out of memory");
    srv_pop_scores(s, w->scores, N);
    for (uint32_t i = 0; i < N; i++)
        if (w->scores[i] <= 0) w->scores[i] = -INFINITY; /* no recent events: not popular */
    srv_filter(s, w->scores, N, a.kind, a.category, 0);
    return answer_list(r, w, N, a.n, NULL);
}

int srv_route_rating(srv_req *r, const char *user, const char *item)
{
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
