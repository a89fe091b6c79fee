/* server.c: the HTTP server: libmicrohttpd daemon (epoll, internal thread
 * pool), routing, API-key checks, responses, metrics, the model generation
 * swapped on reload, start-up and drain. */
#include "serve_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

const double srv_buckets[SRV_N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,    0.25,  0.5,    1.0,   2.5,  5.0};

static const char *const route_names[N_ROUTES] = {
    "events", "item_put", "items_put", "item_get", "item_delete", "user_put", "users_put",
    "user_get", "user_delete", "recommendations", "recommendations_anonymous", "similar",
    "popular", "rating", "health", "metrics", "reload", "keys", "openapi", "other"};

extern const char shelf__openapi_yaml[];
extern const size_t shelf__openapi_yaml_len;

double srv_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double mono_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- responses ---------------------------------------------------------------------- */

int srv_text(srv_req *r, int status, const char *ctype, char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (status == 405) MHD_add_response_header(resp, "Allow", "GET, PUT, POST, DELETE");
    if (atomic_load(&r->srv->draining)) MHD_add_response_header(resp, "Connection", "close");
    r->status = status;
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok == MHD_YES ? 0 : -1;
}

int srv_json(srv_req *r, int status, cJSON *body)
{
    char *t = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!t) {
        static const char oom[] = "{\"error\":{\"status\":500,\"code\":\"internal\",\"message\":\"out of memory\"}}";
        t = strdup(oom);
        status = 500;
        if (!t) return -1;
    }
    return srv_text(r, status, "application/json", t, strlen(t));
}

int srv_error(srv_req *r, int status, const char *code, long index, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    if (e) {
        cJSON_AddNumberToObject(e, "status", status);
        cJSON_AddStringToObject(e, "code", code);
        cJSON_AddStringToObject(e, "message", msg);
        if (index >= 0) cJSON_AddNumberToObject(e, "index", (double)index);
    }
    return srv_json(r, status, root);
}

const char *srv_arg(srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

cJSON *srv_body_json(srv_req *r)
{
    if (!r->len) {
        srv_error(r, 400, "bad_json", -1, "the request needs a JSON body");
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(r->body, r->len, &end, 0);
    if (!j) {
        size_t at = end && end >= r->body ? (size_t)(end - r->body) : 0;
        srv_error(r, 400, "bad_json", -1, "the body is not valid JSON (near byte %zu)", at);
        return NULL;
    }
    return j;
}

int srv_json_id(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsString(v) && v->valuestring[0]) {
        size_t n = strlen(v->valuestring);
        if (n >= cap) return SHELF_ERANGE;
        memcpy(buf, v->valuestring, n + 1);
        return 0;
    }
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble && v->valuedouble >= 0 &&
        v->valuedouble < 9.0e15) {
        snprintf(buf, cap, "%lld", (long long)v->valuedouble);
        return 0;
    }
    return SHELF_EINVAL;
}

/* ---- engine (model generation) ---------------------------------------------------------------- */

srv_engine *srv_engine_get(shelf_server *s)
{
    pthread_mutex_lock(&s->engine_mu);
    srv_engine *e = s->engine;
    atomic_fetch_add(&e->refs, 1);
    pthread_mutex_unlock(&s->engine_mu);
    return e;
}

void srv_engine_put(srv_engine *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1) return;
    shelf_model_free(e->model);
    free(e);
}

static int has_manifest(const char *dir)
{
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static double manifest_created(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "created");
    double t = cJSON_IsNumber(c) ? c->valuedouble : 0;
    cJSON_Delete(j);
    return t;
}

/* the bundle directory itself, or its newest sub-bundle (by manifest time,
 * then name) into out */
static int newest_bundle(const char *path, char *out, size_t cap, shelf_err *err)
{
    if (has_manifest(path)) {
        snprintf(out, cap, "%s", path);
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) return shelf_err_set(err, SHELF_ENOTFOUND, "%s: no bundle (%s)", path, strerror(errno));
    double best = -2;
    char best_name[256] = "";
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        if (!has_manifest(p)) continue;
        double t = manifest_created(p);
        if (t > best || (t == best && strcmp(de->d_name, best_name) > 0)) {
            best = t;
            snprintf(best_name, sizeof best_name, "%s", de->d_name);
        }
    }
    closedir(d);
    if (!best_name[0])
        return shelf_err_set(err, SHELF_ENOTFOUND, "%s: no bundle (no manifest.json in it or its sub-directories)",
                             path);
    snprintf(out, cap, "%s/%s", path, best_name);
    return 0;
}

static int engine_load(shelf_server *s, srv_engine **out, shelf_err *err)
{
    srv_engine *e = calloc(1, sizeof *e);
    if (!e) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    atomic_init(&e->refs, 1);
    if (!s->bundle_path) {
        snprintf(e->kind, sizeof e->kind, "popularity");
        snprintf(e->version, sizeof e->version, "none");
        *out = e;
        return 0;
    }
    char dir[4096];
    int rc = newest_bundle(s->bundle_path, dir, sizeof dir, err);
    if (!rc) rc = shelf_model_load(dir, &e->model, err);
    if (rc) {
        free(e);
        return rc;
    }
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    if (!base[0]) base = dir;
    e->created = manifest_created(dir);
    snprintf(e->kind, sizeof e->kind, "%s", shelf_model_name(e->model));
    snprintf(e->version, sizeof e->version, "%.120s@%.0f", base, e->created > 0 ? e->created : 0.0);
    e->caps = shelf_model_caps(e->model);
    *out = e;
    return 0;
}

int shelf_server_reload(shelf_server *s, shelf_err *err)
{
    shelf_err kerr = {0};
    if (srv_load_keys(s, &kerr)) shelf_warn("serve: reading the API keys failed: %s", kerr.msg);
    pthread_mutex_lock(&s->reload_mu);
    srv_engine *e = NULL;
    int rc = engine_load(s, &e, err);
    if (!rc) {
        pthread_mutex_lock(&s->engine_mu);
        e->gen = ++s->next_gen;
        srv_engine *old = s->engine;
        s->engine = e;
        pthread_mutex_unlock(&s->engine_mu);
        srv_engine_put(old);
        if (srv_coldfill_build(s, e)) shelf_error("serve: out of memory: content neighbours not rebuilt");
        atomic_fetch_add(&s->m.reload_ok, 1);
        shelf_info("serve: model %s %s loaded", e->kind, e->version);
    } else {
        atomic_fetch_add(&s->m.reload_fail, 1);
        shelf_error("serve: reload failed, the current model stays: %s", err ? err->msg : "");
    }
    pthread_mutex_unlock(&s->reload_mu);
    return rc;
}

/* ---- API keys ------------------------------------------------------------------------------------ */

typedef struct {
    shelf_api_key *k;
    size_t n, cap;
} key_list;

static int collect_key(void *ctx, const shelf_api_key *k)
{
    key_list *l = ctx;
    if (k->revoked) return 0;
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 16;
        shelf_api_key *n = realloc(l->k, c * sizeof *n);
        if (!n) return SHELF_ENOMEM;
        l->k = n;
        l->cap = c;
    }
    l->k[l->n++] = *k;
    return 0;
}

int srv_load_keys(shelf_server *s, shelf_err *err)
{
    key_list l = {0};
    pthread_mutex_lock(&s->store_mu);
    int rc = shelf_store_foreach_key(s->st, collect_key, &l);
    if (rc) shelf_err_set(err, rc, "%s", rc == SHELF_ENOMEM ? "out of memory" : shelf_store_errmsg(s->st));
    pthread_mutex_unlock(&s->store_mu);
    if (rc) {
        free(l.k);
        return rc;
    }
    pthread_rwlock_wrlock(&s->keys_rw);
    free(s->keys);
    s->keys = l.k;
    s->n_keys = l.n;
    pthread_rwlock_unlock(&s->keys_rw);
    return 0;
}

/* the scope of the request's bearer key: 0 none or unknown */
static int request_scope(srv_req *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    const char *key = h + 7;
    while (*key == ' ') key++;
    size_t len = strlen(key);
    while (len && key[len - 1] == ' ') len--;
    unsigned char hash[32];
    shelf_key_hash(key, len, hash);
    int scope = 0;
    pthread_rwlock_rdlock(&r->srv->keys_rw);
    for (size_t i = 0; i < r->srv->n_keys; i++)
        if (CRYPTO_memcmp(hash, r->srv->keys[i].hash, 32) == 0) scope = (int)r->srv->keys[i].scope;
    pthread_rwlock_unlock(&r->srv->keys_rw);
    return scope;
}

static int route_keys(srv_req *r)
{
    cJSON *j = srv_body_json(r);
    if (!j) return 0;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "scope"), *nm = cJSON_GetObjectItemCaseSensitive(j, "name");
    shelf_scope scope;
    if (!cJSON_IsString(sc) || shelf_scope_parse(sc->valuestring, &scope)) {
        cJSON_Delete(j);
        return srv_error(r, 400, "bad_request", -1, "scope: must be \"read\", \"write\" or \"admin\"");
    }
    if (nm && !cJSON_IsString(nm)) {
        cJSON_Delete(j);
        return srv_error(r, 400, "bad_request", -1, "name: must be a string");
    }
    char key[SHELF_API_KEY_LEN + 1];
    int64_t id = 0;
    pthread_mutex_lock(&r->srv->store_mu);
    int rc = shelf_store_key_create(r->srv->st, scope, nm ? nm->valuestring : NULL, key, &id);
    char why[300];
    snprintf(why, sizeof why, "%s", shelf_store_errmsg(r->srv->st));
    pthread_mutex_unlock(&r->srv->store_mu);
    cJSON_Delete(j);
    if (rc) return srv_error(r, 500, "internal", -1, "%s", why);
    srv_load_keys(r->srv, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "scope", shelf_scope_name(scope));
    OPENSSL_cleanse(key, sizeof key);
    return srv_json(r, 200, o);
}

/* ---- health, metrics, reload ------------------------------------------------------------------------ */

static int route_health(srv_req *r)
{
    shelf_server *s = r->srv;
    srv_engine *e = srv_engine_get(s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", atomic_load(&s->draining) ? "draining" : "ok");
    if (e->model) {
        cJSON *m = cJSON_AddObjectToObject(o, "model");
        cJSON_AddStringToObject(m, "kind", e->kind);
        cJSON_AddStringToObject(m, "version", e->version);
        cJSON_AddNumberToObject(m, "age_s", e->created > 0 ? srv_now() - e->created : 0);
    } else {
        cJSON_AddNullToObject(o, "model");
    }
    srv_engine_put(e);
    pthread_rwlock_rdlock(&s->users_rw);
    uint32_t nu = s->n_users;
    pthread_rwlock_unlock(&s->users_rw);
    cJSON_AddNumberToObject(o, "users", nu);
    cJSON_AddNumberToObject(o, "items", srv_n_items(s));
    cJSON_AddNumberToObject(o, "events_ingested", (double)atomic_load(&s->m.events));
    cJSON_AddNumberToObject(o, "uptime_s", srv_now() - s->started);
    return srv_json(r, atomic_load(&s->draining) ? 503 : 200, o);
}

typedef struct {
    char *b;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = b->b ? vsnprintf(b->b + b->len, b->cap - b->len, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t c = b->cap ? b->cap * 2 : 16384;
        char *nb = realloc(b->b, c);
        if (!nb) return;
        b->b = nb;
        b->cap = c;
    }
}

/* label values escaped for the text format */
static void label_esc(char *out, size_t cap, const char *v)
{
    size_t k = 0;
    for (; *v && k + 3 < cap; v++) {
        if (*v == '"' || *v == '\\') out[k++] = '\\';
        if (*v == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
            continue;
        }
        out[k++] = *v;
    }
    out[k] = '\0';
}

static int route_metrics(srv_req *r)
{
    shelf_server *s = r->srv;
    srv_metrics *m = &s->m;
    sbuf b = {0};
    sb_printf(&b, "# HELP shelf_http_requests_total HTTP requests by route and status class.\n"
                  "# TYPE shelf_http_requests_total counter\n");
    for (int rt = 0; rt < N_ROUTES; rt++)
        for (int c = 1; c <= 5; c++) {
            uint64_t v = atomic_load(&m->req[rt][c]);
            if (v) sb_printf(&b, "shelf_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n", route_names[rt], c,
                             (unsigned long long)v);
        }
    sb_printf(&b, "# HELP shelf_http_request_duration_seconds Time from a request's first byte to its answer.\n"
                  "# TYPE shelf_http_request_duration_seconds histogram\n");
    for (int rt = 0; rt < N_ROUTES; rt++) {
        uint64_t cum = 0, tot = 0;
        for (int k = 0; k <= SRV_N_BUCKETS; k++) tot += atomic_load(&m->hist[rt][k]);
        if (!tot) continue;
        for (int k = 0; k < SRV_N_BUCKETS; k++) {
            cum += atomic_load(&m->hist[rt][k]);
            sb_printf(&b, "shelf_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", route_names[rt],
                      srv_buckets[k], (unsigned long long)cum);
        }
        sb_printf(&b, "shelf_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", route_names[rt],
                  (unsigned long long)tot);
        sb_printf(&b, "shelf_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_names[rt],
                  atomic_load(&m->sum[rt]));
        sb_printf(&b, "shelf_http_request_duration_seconds_count{route=\"%s\"} %llu\n", route_names[rt],
                  (unsigned long long)tot);
    }
    sb_printf(&b,
              "# HELP shelf_events_ingested_total Events committed to the store through the API.\n"
              "# TYPE shelf_events_ingested_total counter\nshelf_events_ingested_total %llu\n"
              "# HELP shelf_served_logged_total Slates written to the served log.\n"
              "# TYPE shelf_served_logged_total counter\nshelf_served_logged_total %llu\n"
              "# HELP shelf_served_dropped_total Slates not logged (queue full or a failed commit).\n"
              "# TYPE shelf_served_dropped_total counter\nshelf_served_dropped_total %llu\n"
              "# HELP shelf_reloads_total Model reloads by result.\n# TYPE shelf_reloads_total counter\n"
              "shelf_reloads_total{result=\"ok\"} %llu\nshelf_reloads_total{result=\"error\"} %llu\n",
              (unsigned long long)atomic_load(&m->events), (unsigned long long)atomic_load(&m->served),
              (unsigned long long)atomic_load(&m->served_dropped), (unsigned long long)atomic_load(&m->reload_ok),
              (unsigned long long)atomic_load(&m->reload_fail));
    srv_engine *e = srv_engine_get(s);
    char kind[80], ver[400];
    label_esc(kind, sizeof kind, e->kind);
    label_esc(ver, sizeof ver, e->version);
    sb_printf(&b,
              "# HELP shelf_model_info The model being served.\n# TYPE shelf_model_info gauge\n"
              "shelf_model_info{kind=\"%s\",version=\"%s\"} 1\n"
              "# HELP shelf_model_age_seconds Seconds since the served bundle was written.\n"
              "# TYPE shelf_model_age_seconds gauge\nshelf_model_age_seconds %.0f\n",
              kind, ver, e->created > 0 ? srv_now() - e->created : 0.0);
    srv_engine_put(e);
    pthread_rwlock_rdlock(&s->users_rw);
    uint32_t nu = s->n_users;
    pthread_rwlock_unlock(&s->users_rw);
    sb_printf(&b,
              "# HELP shelf_sessions Shoppers' model sessions held in memory.\n# TYPE shelf_sessions gauge\n"
              "shelf_sessions %zu\n# HELP shelf_session_bytes Memory of those sessions.\n"
              "# TYPE shelf_session_bytes gauge\nshelf_session_bytes %zu\n"
              "# HELP shelf_users Users known.\n# TYPE shelf_users gauge\nshelf_users %u\n"
              "# HELP shelf_items Item indices in use.\n# TYPE shelf_items gauge\nshelf_items %u\n",
              atomic_load(&s->live_sessions), atomic_load(&s->sess_bytes), nu, srv_n_items(s));
    if (!b.b) return srv_error(r, 500, "internal", -1, "out of memory");
    return srv_text(r, 200, "text/plain; version=0.0.4", b.b, b.len);
}

static int route_reload(srv_req *r)
{
    shelf_err err = {0};
    if (shelf_server_reload(r->srv, &err)) return srv_error(r, 500, "internal", -1, "reload failed: %s", err.msg);
    srv_engine *e = srv_engine_get(r->srv);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddTrueToObject(o, "reloaded");
    cJSON_AddStringToObject(o, "model", e->kind);
    cJSON_AddStringToObject(o, "version", e->version);
    srv_engine_put(e);
    return srv_json(r, 200, o);
}

static int route_openapi(srv_req *r)
{
    char *t = malloc(shelf__openapi_yaml_len + 1);
    if (!t) return srv_error(r, 500, "internal", -1, "out of memory");
    memcpy(t, shelf__openapi_yaml, shelf__openapi_yaml_len);
    return srv_text(r, 200, "application/yaml", t, shelf__openapi_yaml_len);
}

/* ---- routing ---------------------------------------------------------------------------------------------- */

/* splits "/v1/a/b/c" into at most 6 decoded segments (in place) */
static int split_path(char *p, char **seg, int max)
{
    int n = 0;
    while (*p == '/') p++;
    while (*p && n < max) {
        seg[n++] = p;
        char *e = strchr(p, '/');
        if (!e) break;
        *e = '\0';
        p = e + 1;
    }
    if (*p && n == max && strchr(p, '/')) return max + 1;
    for (int i = 0; i < n; i++) MHD_http_unescape(seg[i]);
    return n;
}

enum { M_GET = 1, M_PUT = 2, M_POST = 4, M_DELETE = 8 };

static int method_bit(const char *m)
{
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD")) return M_GET;
    if (!strcmp(m, "PUT")) return M_PUT;
    if (!strcmp(m, "POST")) return M_POST;
    if (!strcmp(m, "DELETE")) return M_DELETE;
    return 0;
}

/* picks the route; *need: the scope it needs (0: open); *allowed: methods of the path */
static srv_route match(int n, char **seg, int mb, int *need, int *allowed)
{
    *allowed = 0;
    *need = SHELF_SCOPE_READ;
#define IS(i, s) (n > (i) && !strcmp(seg[i], s))
#define TRY(bits, r, scope)              \
    do {                                 \
        *allowed |= (bits);              \
        if (mb & (bits)) {               \
            *need = (scope);             \
            return (r);                  \
        }                                \
    } while (0)
    if (n == 1 && IS(0, "metrics")) {
        TRY(M_GET, R_METRICS, 0);
        return R_OTHER;
    }
    if (!IS(0, "v1")) return R_OTHER;
    if (n == 2 && IS(1, "health")) TRY(M_GET, R_HEALTH, 0);
    else if (n == 2 && IS(1, "openapi.yaml")) TRY(M_GET, R_OPENAPI, 0);
    else if (n == 2 && IS(1, "events")) TRY(M_POST, R_EVENTS, SHELF_SCOPE_WRITE);
    else if (n == 2 && IS(1, "items")) TRY(M_PUT, R_ITEMS_PUT, SHELF_SCOPE_WRITE);
    else if (n == 2 && IS(1, "users")) TRY(M_PUT, R_USERS_PUT, SHELF_SCOPE_WRITE);
    else if (n == 2 && IS(1, "recommendations")) TRY(M_POST, R_RECS_ANON, SHELF_SCOPE_READ);
    else if (n == 2 && IS(1, "popular")) TRY(M_GET, R_POPULAR, SHELF_SCOPE_READ);
    else if (n == 3 && IS(1, "items")) {
        TRY(M_GET, R_ITEM_GET, SHELF_SCOPE_READ);
        TRY(M_PUT, R_ITEM_PUT, SHELF_SCOPE_WRITE);
        TRY(M_DELETE, R_ITEM_DELETE, SHELF_SCOPE_ADMIN);
    } else if (n == 3 && IS(1, "users")) {
        TRY(M_GET, R_USER_GET, SHELF_SCOPE_READ);
        TRY(M_PUT, R_USER_PUT, SHELF_SCOPE_WRITE);
        TRY(M_DELETE, R_USER_DELETE, SHELF_SCOPE_ADMIN);
    } else if (n == 4 && IS(1, "users") && IS(3, "recommendations")) TRY(M_GET, R_RECS, SHELF_SCOPE_READ);
    else if (n == 4 && IS(1, "items") && IS(3, "similar")) TRY(M_GET, R_SIMILAR, SHELF_SCOPE_READ);
    else if (n == 5 && IS(1, "users") && IS(3, "ratings")) TRY(M_GET, R_RATING, SHELF_SCOPE_READ);
    else if (n == 3 && IS(1, "admin") && IS(2, "reload")) TRY(M_POST, R_RELOAD, SHELF_SCOPE_ADMIN);
    else if (n == 3 && IS(1, "admin") && IS(2, "keys")) TRY(M_POST, R_KEYS, SHELF_SCOPE_ADMIN);
#undef IS
#undef TRY
    return R_OTHER;
}

static int dispatch(srv_req *r)
{
    shelf_server *s = r->srv;
    if (atomic_load(&s->draining)) return srv_error(r, 503, "unavailable", -1, "the server is shutting down");
    char path[2048];
    const char *q = strchr(r->url, '?');
    size_t pl = q ? (size_t)(q - r->url) : strlen(r->url);
    if (pl >= sizeof path) return srv_error(r, 414, "too_large", -1, "the URL is too long");
    memcpy(path, r->url, pl);
    path[pl] = '\0';
    char *seg[6];
    int n = split_path(path, seg, 6);
    int mb = method_bit(r->method), need = 0, allowed = 0;
    srv_route rt = n > 6 ? R_OTHER : match(n, seg, mb, &need, &allowed);
    r->route = rt;
    if (rt == R_OTHER) {
        if (allowed)
            return srv_error(r, 405, "method_not_allowed", -1, "%s is not allowed on %s", r->method, path);
        return srv_error(r, 404, "not_found", -1, "no route %s %s (see GET /v1/openapi.yaml)", r->method, path);
    }
    if (r->too_large)
        return srv_error(r, 413, "too_large", -1, "the body is over the limit of %zu bytes", s->o.max_body);
    if (need && !s->o.no_auth) {
        int have = request_scope(r);
        if (!have)
            return srv_error(r, 401, "unauthorized", -1,
                             "a valid API key is needed: send 'Authorization: Bearer KEY' (shelf keys create)");
        if (have < need)
            return srv_error(r, 403, "forbidden", -1, "this key's scope is %s; %s %s needs %s",
                             shelf_scope_name((shelf_scope)have), r->method, path, shelf_scope_name((shelf_scope)need));
    }
    switch (rt) {
    case R_EVENTS: return srv_route_events(r);
    case R_ITEM_PUT: return srv_route_item_put(r, seg[2]);
    case R_ITEMS_PUT: return srv_route_items_put(r);
    case R_ITEM_GET: return srv_route_item_get(r, seg[2]);
    case R_ITEM_DELETE: return srv_route_item_delete(r, seg[2]);
    case R_USER_PUT: return srv_route_user_put(r, seg[2]);
    case R_USERS_PUT: return srv_route_users_put(r);
    case R_USER_GET: return srv_route_user_get(r, seg[2]);
    case R_USER_DELETE: return srv_route_user_delete(r, seg[2]);
    case R_RECS: return srv_route_recs(r, seg[2]);
    case R_RECS_ANON: return srv_route_recs_anon(r);
    case R_SIMILAR: return srv_route_similar(r, seg[2]);
    case R_POPULAR: return srv_route_popular(r);
    case R_RATING: return srv_route_rating(r, seg[2], seg[4]);
    case R_HEALTH: return route_health(r);
    case R_METRICS: return route_metrics(r);
    case R_RELOAD: return route_reload(r);
    case R_KEYS: return route_keys(r);
    case R_OPENAPI: return route_openapi(r);
    default: return srv_error(r, 404, "not_found", -1, "no route");
    }
}

static void thread_setup(void)
{
    /* one OpenMP/BLAS thread per HTTP worker: requests run side by side,
     * never nested parallel regions */
    static _Thread_local int done;
    if (done) return;
    done = 1;
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    shelf_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) {
        thread_setup();
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->t0 = mono_now();
        r->route = R_OTHER;
        atomic_fetch_add(&s->active, 1);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large || r->len + n > s->o.max_body) {
            r->too_large = 1;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t c = r->cap ? r->cap : 4096;
            while (c < r->len + n + 1) c *= 2;
            char *b = realloc(r->body, c);
            if (!b) return MHD_NO;
            r->body = b;
            r->cap = c;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    r->method = method;
    r->url = url;
    (void)version;
    atomic_fetch_add(&s->busy, 1);
    int rc = dispatch(r);
    atomic_fetch_sub(&s->busy, 1);
    return rc < 0 ? MHD_NO : MHD_YES;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    shelf_server *s = cls;
    srv_req *r = *con_cls;
    (void)conn;
    (void)toe;
    if (!r) return;
    double dt = mono_now() - r->t0;
    int cls_i = r->status >= 100 && r->status < 600 ? r->status / 100 : 5;
    atomic_fetch_add(&s->m.req[r->route][cls_i], 1);
    int k = 0;
    while (k < SRV_N_BUCKETS && dt > srv_buckets[k]) k++;
    atomic_fetch_add(&s->m.hist[r->route][k], 1);
    double old = atomic_load(&s->m.sum[r->route]);
    while (!atomic_compare_exchange_weak(&s->m.sum[r->route], &old, old + dt)) {
    }
    free(r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->active, 1);
}

/* ---- start / stop ---------------------------------------------------------------------------------------------- */

static void free_server(shelf_server *s)
{
    srv_engine_put(s->engine);
    srv_state_free(s);
    shelf_store_close(s->st);
    free(s->keys);
    free(s->store_path);
    free(s->bundle_path);
    free(s->bind);
    pthread_mutex_destroy(&s->store_mu);
    pthread_mutex_destroy(&s->engine_mu);
    pthread_mutex_destroy(&s->reload_mu);
    pthread_mutex_destroy(&s->pages_mu);
    pthread_mutex_destroy(&s->sess_mu);
    pthread_mutex_destroy(&s->pop_mu);
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_rwlock_destroy(&s->users_rw);
    pthread_rwlock_destroy(&s->items_rw);
    pthread_rwlock_destroy(&s->keys_rw);
    free(s);
}

int shelf_server_start(const shelf_server_opts *o, shelf_server **out, shelf_err *err)
{
    if (!o->store) return shelf_err_set(err, SHELF_EINVAL, "serve: a store is required (--store)");
    shelf_server *s = calloc(1, sizeof *s);
    if (!s) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    s->o = *o;
    if (!s->o.threads) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        s->o.threads = nc > 2 ? (unsigned)(2 * nc) : 4;
    }
    if (!s->o.max_body) s->o.max_body = 16u << 20;
    if (!s->o.max_batch) s->o.max_batch = 10000;
    if (!s->o.max_n) s->o.max_n = 1000;
    if (!s->o.timeout_s) s->o.timeout_s = 30;
    if (!(s->o.pop_half_life_s > 0)) s->o.pop_half_life_s = 7 * 86400.0;
    if (!s->o.session_memory) s->o.session_memory = (size_t)1 << 30;
    if (!s->o.cold_neighbours) s->o.cold_neighbours = 1;
    if (s->o.cold_neighbours > 64) s->o.cold_neighbours = 64;
    s->store_path = strdup(o->store);
    s->bundle_path = o->bundle ? strdup(o->bundle) : NULL;
    s->bind = strdup(o->bind ? o->bind : "127.0.0.1");
    pthread_mutex_init(&s->store_mu, NULL);
    pthread_mutex_init(&s->engine_mu, NULL);
    pthread_mutex_init(&s->reload_mu, NULL);
    pthread_mutex_init(&s->pages_mu, NULL);
    pthread_mutex_init(&s->sess_mu, NULL);
    pthread_mutex_init(&s->pop_mu, NULL);
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_cond_init(&s->q_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    pthread_rwlock_init(&s->users_rw, NULL);
    pthread_rwlock_init(&s->items_rw, NULL);
    pthread_rwlock_init(&s->keys_rw, NULL);
    s->started = srv_now();
    int rc;
    if (!s->store_path || !s->bind || (o->bundle && !s->bundle_path)) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        goto fail;
    }
    if (access(o->store, F_OK) != 0) {
        rc = shelf_err_set(err, SHELF_ENOTFOUND, "%s: no such store (create it with: shelf init --store %s)", o->store,
                           o->store);
        goto fail;
    }
    if ((rc = shelf_store_open(o->store, 0, &s->st, err))) goto fail;
    if ((rc = srv_state_init(s, err))) goto fail;
    if ((rc = srv_load_keys(s, err))) goto fail;
    if ((rc = engine_load(s, &s->engine, err))) goto fail;
    s->engine->gen = ++s->next_gen;
    if ((rc = srv_coldfill_build(s, s->engine))) {
        rc = shelf_err_set(err, rc, "out of memory (content neighbours)");
        goto fail;
    }
    if (!s->o.no_auth && s->n_keys == 0)
        shelf_warn("serve: the store has no API keys: every request but health, metrics and openapi gets 401 "
                   "(create one with: shelf keys create --store %s --scope admin)", o->store);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, s->bind, &addr.sin_addr) != 1) {
        rc = shelf_err_set(err, SHELF_EINVAL, "serve: --bind %s: not an IPv4 address", s->bind);
        goto fail;
    }
    if ((rc = srv_ingest_start(s, err))) goto fail;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, 0, NULL, NULL, on_request,
                            s, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads, MHD_OPTION_SOCK_ADDR, &addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, s, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)s->o.timeout_s, MHD_OPTION_CONNECTION_LIMIT, 4096u,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!s->d) {
        srv_ingest_stop(s);
        rc = shelf_err_set(err, SHELF_EIO, "serve: cannot listen on %s:%u (%s)", s->bind, o->port, strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    *out = s;
    return 0;
fail:
    free_server(s);
    return rc;
}

unsigned shelf_server_port(const shelf_server *s) { return s->port; }

void shelf_server_model(shelf_server *s, char *buf, size_t cap)
{
    srv_engine *e = srv_engine_get(s);
    snprintf(buf, cap, "%s %s", e->kind, e->version);
    srv_engine_put(e);
}

void shelf_server_stop(shelf_server *s)
{
    if (!s) return;
    atomic_store(&s->draining, 1);
    /* no new connections: the listening socket leaves every worker's epoll set (each does
     * that itself, on its own time), so it is only shut down here (connecting clients are
     * refused at once) and closed after the workers have stopped */
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET) shutdown(ls, SHUT_RDWR);
    /* handlers running finish (events wait for their commit), at most 30 s;
     * clients still sending a body are cut off by MHD_stop_daemon */
    for (int i = 0; i < 3000 && atomic_load(&s->busy) > 0; i++) usleep(10000);
    MHD_stop_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    srv_ingest_stop(s); /* commits what is queued */
    shelf_info("serve: stopped (%llu events ingested)", (unsigned long long)atomic_load(&s->m.events));
    free_server(s);
}
