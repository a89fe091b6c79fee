/* http.c: the HTTP side of the server: the route table that drives
 * dispatch, key checks and metric labels; request bodies from
 * libmicrohttpd; JSON and error responses. */
#include "serve_int.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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

/* ---- the route table ------------------------------------------------------------------------
 * Every route is declared here once: its method and path ({name}: one
 * path segment, handed to the handler), the scope of API key it needs, its
 * name in the metrics, and its handler. Dispatch, the 404/405 answers, the
 * key check and the metric labels read it; test_serve checks it against
 * openapi.yaml. */
const srv_route_def srv_routes[SRV_N_ROUTES] = {
    {"POST", "/v1/events", SHELF_SCOPE_WRITE, "events", srv_route_events},
    {"PUT", "/v1/items/{id}", SHELF_SCOPE_WRITE, "item_put", srv_route_item_put},
    {"PUT", "/v1/items", SHELF_SCOPE_WRITE, "items_put", srv_route_items_put},
    {"GET", "/v1/items/{id}", SHELF_SCOPE_READ, "item_get", srv_route_item_get},
    {"DELETE", "/v1/items/{id}", SHELF_SCOPE_ADMIN, "item_delete", srv_route_item_delete},
    {"PUT", "/v1/users/{id}", SHELF_SCOPE_WRITE, "user_put", srv_route_user_put},
    {"PUT", "/v1/users", SHELF_SCOPE_WRITE, "users_put", srv_route_users_put},
    {"GET", "/v1/users/{id}", SHELF_SCOPE_READ, "user_get", srv_route_user_get},
    {"DELETE", "/v1/users/{id}", SHELF_SCOPE_ADMIN, "user_delete", srv_route_user_delete},
    {"GET", "/v1/users/{id}/recommendations", SHELF_SCOPE_READ, "recommendations", srv_route_recs},
    {"POST", "/v1/recommendations", SHELF_SCOPE_READ, "recommendations_anonymous", srv_route_recs_anon},
    {"GET", "/v1/items/{id}/similar", SHELF_SCOPE_READ, "similar", srv_route_similar},
    {"GET", "/v1/popular", SHELF_SCOPE_READ, "popular", srv_route_popular},
    {"GET", "/v1/users/{id}/ratings/{item}", SHELF_SCOPE_READ, "rating", srv_route_rating},
    {"GET", "/v1/health", 0, "health", srv_route_health},
    {"GET", "/metrics", 0, "metrics", srv_route_metrics},
    {"POST", "/v1/admin/reload", SHELF_SCOPE_ADMIN, "reload", srv_route_reload},
    {"POST", "/v1/admin/keys", SHELF_SCOPE_ADMIN, "keys", srv_route_keys},
    {"GET", "/v1/openapi.yaml", 0, "openapi", srv_route_openapi},
};

#define MAX_SEG 6

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

/* 1 when the n segments fit the route's path; its {parameters} into arg */
static int path_fits(const char *pattern, int n, char **seg, char **arg)
{
    const char *p = pattern;
    int k = 0, a = 0;
    while (*p == '/') p++;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (k == n) return 0;
        if (p[0] == '{') arg[a++] = seg[k];
        else if (strlen(seg[k]) != len || strncmp(seg[k], p, len)) return 0;
        k++;
        p += len;
        while (*p == '/') p++;
    }
    return k == n;
}

/* the route of a method and path, SRV_ROUTE_OTHER when none; *path_known:
 * some route has this path (a wrong method is then 405) */
static int route_of(const char *method, int n, char **seg, char **arg, int *path_known)
{
    *path_known = 0;
    const char *m = strcmp(method, "HEAD") ? method : "GET";
    for (int i = 0; i < SRV_N_ROUTES; i++) {
        if (!path_fits(srv_routes[i].path, n, seg, arg)) continue;
        *path_known = 1;
        if (!strcmp(srv_routes[i].method, m)) return i;
    }
    return SRV_ROUTE_OTHER;
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
    char shown[2048];
    memcpy(shown, path, pl + 1); /* split_path cuts path up */
    char *seg[MAX_SEG], *arg[MAX_SEG] = {0};
    int n = split_path(path, seg, MAX_SEG), known = 0;
    int rt = n > MAX_SEG ? SRV_ROUTE_OTHER : route_of(r->method, n, seg, arg, &known);
    r->route = rt;
    if (rt == SRV_ROUTE_OTHER) {
        if (known) return srv_error(r, 405, "method_not_allowed", -1, "%s is not allowed on %s", r->method, shown);
        return srv_error(r, 404, "not_found", -1, "no route %s %s (see GET /v1/openapi.yaml)", r->method, shown);
    }
    if (r->too_large)
        return srv_error(r, 413, "too_large", -1, "the body is over the limit of %zu bytes", s->o.max_body);
    int need = srv_routes[rt].scope;
    if (need && !s->o.no_auth) {
        int have = srv_request_scope(r);
        if (!have)
            return srv_error(r, 401, "unauthorized", -1,
                             "a valid API key is needed: send 'Authorization: Bearer KEY' (shelf keys create)");
        if (have < need)
            return srv_error(r, 403, "forbidden", -1, "this key's scope is %s; %s %s needs %s",
                             shelf_scope_name((shelf_scope)have), r->method, shown, shelf_scope_name((shelf_scope)need));
    }
    return srv_routes[rt].fn(r, arg);
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

enum MHD_Result srv_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
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
        r->route = SRV_ROUTE_OTHER;
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

void srv_on_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    shelf_server *s = cls;
    srv_req *r = *con_cls;
    (void)conn;
    (void)toe;
    if (!r) return;
    srv_metrics_observe(s, r->route, r->status, mono_now() - r->t0);
    free(r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->active, 1);
}
