/* http.c: the HTTP side of the server: the route table that drives
 * dispatch, key checks and metric labels; admission of a request on its
 * head (route, key, size, memory) before any body byte is read; request
 * bodies from libmicrohttpd; JSON and error responses. */
#define _GNU_SOURCE /* mremap */
#include "serve_int.h"
#include "core/check_int.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
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

/* ---- CORS (--cors-origins) ---------------------------------------------------------------- */

/* the request's Origin when --cors-origins lets it call ("*": any), else NULL */
static const char *cors_origin(srv_req *r)
{
    const char *list = r->srv->o.cors_origins;
    if (!list || !*list) return NULL;
    const char *o = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (!o || !*o) return NULL;
    size_t n = strlen(o);
    for (const char *p = list;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        while (len && p[len - 1] == ' ') len--;
        if ((len == 1 && *p == '*') || (len == n && !strncmp(p, o, n))) return o;
        if (!e) return NULL;
        p = e + 1;
    }
}

static void cors_headers(srv_req *r, struct MHD_Response *resp)
{
    const char *origin = cors_origin(r);
    if (r->srv->o.cors_origins && *r->srv->o.cors_origins) MHD_add_response_header(resp, "Vary", "Origin");
    if (!origin) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    if (!r->preflight) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, HEAD, PUT, PATCH, POST, DELETE");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
}

int srv_text(srv_req *r, int status, const char *ctype, char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (status == 405) MHD_add_response_header(resp, "Allow", "GET, PUT, PATCH, POST, DELETE");
    if (r->preflight) MHD_add_response_header(resp, "Allow", "GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS");
    cors_headers(r, resp);
    if (status == 503) MHD_add_response_header(resp, "Retry-After", "1");
    /* an answer on the head leaves the body unread: the connection cannot go on
     * (its bytes must never be read as the next request) */
    if (atomic_load(&r->srv->draining) || (r->answered && r->has_body))
        MHD_add_response_header(resp, "Connection", "close");
    r->status = status;
    if (r->job_queued) { /* on a compute worker: the HTTP thread sends it (pool.c) */
        if (r->job_resp) {
            MHD_destroy_response(resp);
            return -1; /* one answer a request */
        }
        r->job_resp = resp;
        return 0;
    }
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
    /* the whole message, however long (a path in it is never cut) */
    char small[512], *msg = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof small && (msg = malloc((size_t)n + 1))) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    if (!msg) msg = small; /* out of memory: the cut one */
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    if (e) {
        cJSON_AddNumberToObject(e, "status", status);
        cJSON_AddStringToObject(e, "code", code);
        cJSON_AddStringToObject(e, "message", msg);
        if (index >= 0) cJSON_AddNumberToObject(e, "index", (double)index);
    }
    if (msg != small) free(msg);
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
    /* the body is one JSON value and nothing else: a second value or bytes
     * after it (a NUL included) would be read differently by a proxy */
    size_t at = (size_t)(end - r->body);
    while (at < r->len && strchr(" \t\r\n", r->body[at]) && r->body[at]) at++;
    if (at < r->len) {
        cJSON_Delete(j);
        srv_error(r, 400, "bad_json", -1, "the body has bytes after its JSON value (at byte %zu)", at);
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
 * name in the metrics, its handler, and whether it ranks on the compute
 * workers (pool.c). Dispatch, the 404/405 answers, the
 * key check and the metric labels read it; test_serve checks it against
 * openapi.yaml. */
const srv_route_def srv_routes[SRV_N_ROUTES] = {
    {"POST", "/v1/events", SHELF_SCOPE_WRITE, "events", srv_route_events, 0},
    {"PUT", "/v1/items/{id}", SHELF_SCOPE_WRITE, "item_put", srv_route_item_put, 0},
    {"PUT", "/v1/items", SHELF_SCOPE_WRITE, "items_put", srv_route_items_put, 0},
    {"GET", "/v1/items/{id}", SHELF_SCOPE_READ, "item_get", srv_route_item_get, 0},
    {"PATCH", "/v1/items/{id}", SHELF_SCOPE_WRITE, "item_patch", srv_route_item_patch, 0},
    {"DELETE", "/v1/items/{id}", SHELF_SCOPE_ADMIN, "item_delete", srv_route_item_delete, 0},
    {"PUT", "/v1/users/{id}", SHELF_SCOPE_WRITE, "user_put", srv_route_user_put, 0},
    {"PUT", "/v1/users", SHELF_SCOPE_WRITE, "users_put", srv_route_users_put, 0},
    {"GET", "/v1/users/{id}", SHELF_SCOPE_READ, "user_get", srv_route_user_get, 0},
    {"PATCH", "/v1/users/{id}", SHELF_SCOPE_WRITE, "user_patch", srv_route_user_patch, 0},
    {"DELETE", "/v1/users/{id}", SHELF_SCOPE_ADMIN, "user_delete", srv_route_user_delete, 0},
    {"GET", "/v1/users/{id}/recommendations", SHELF_SCOPE_READ, "recommendations", srv_route_recs, 1},
    {"POST", "/v1/recommendations", SHELF_SCOPE_READ, "recommendations_anonymous", srv_route_recs_anon, 1},
    {"GET", "/v1/items/{id}/similar", SHELF_SCOPE_READ, "similar", srv_route_similar, 1},
    {"GET", "/v1/popular", SHELF_SCOPE_READ, "popular", srv_route_popular, 1},
    {"POST", "/v1/search", SHELF_SCOPE_READ, "search", srv_route_search, 1},
    {"GET", "/v1/users/{id}/ratings/{item}", SHELF_SCOPE_READ, "rating", srv_route_rating, 0},
    {"PUT", "/v1/scenarios/{name}", SHELF_SCOPE_ADMIN, "scenario_put", srv_route_scenario_put, 0},
    {"GET", "/v1/scenarios/{name}", SHELF_SCOPE_ADMIN, "scenario_get", srv_route_scenario_get, 0},
    {"DELETE", "/v1/scenarios/{name}", SHELF_SCOPE_ADMIN, "scenario_delete", srv_route_scenario_delete, 0},
    {"GET", "/v1/scenarios", SHELF_SCOPE_ADMIN, "scenarios", srv_route_scenarios, 0},
    {"GET", "/v1/health", 0, "health", srv_route_health, 0},
    {"GET", "/metrics", 0, "metrics", srv_route_metrics, 0},
    {"POST", "/v1/admin/reload", SHELF_SCOPE_ADMIN, "reload", srv_route_reload, 0},
    {"POST", "/v1/admin/keys", SHELF_SCOPE_ADMIN, "keys", srv_route_keys, 0},
    {"GET", "/v1/openapi.yaml", 0, "openapi", srv_route_openapi, 0},
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
    for (int i = 0; i < n; i++) shelf__url_unescape(seg[i]); /* %00 marked, never a NUL */
    return n;
}

/* MHD_OPTION_UNESCAPE_CALLBACK: the path and each query argument, with
 * %00 marked (check_int.h) instead of cutting the text at a NUL */
size_t srv_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    return shelf__url_unescape(s);
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

/* A request's route, resolved from its method and URL. */
typedef struct route_match {
    char path[2048];  /* cut into the segments */
    char shown[2048]; /* the path as sent, for messages */
    char *seg[MAX_SEG], *arg[MAX_SEG];
    int rt;           /* index in srv_routes; SRV_ROUTE_OTHER: answered 404, 405 or 414 */
} route_match;

/* resolves r's route into m (r->route too); answers 404, 405 or 414 itself
 * (m->rt is then SRV_ROUTE_OTHER; returns the answer's result), else 0 */
/* what the k-th {parameter} of a route's path names: "item id" for the
 * {id} after items, else the parameter's own name ("item", "name") */
static void arg_name(const char *pattern, int k, char *buf, size_t cap)
{
    const char *prev = "", *p = pattern;
    size_t prev_len = 0;
    snprintf(buf, cap, "id");
    for (int a = 0; (p = strchr(p, '/'));) {
        const char *seg = ++p, *e = strchr(seg, '/');
        size_t len = e ? (size_t)(e - seg) : strlen(seg);
        if (seg[0] == '{' && a++ == k) {
            if (len == 4 && !strncmp(seg, "{id}", 4) && prev_len > 1)
                snprintf(buf, cap, "%.*s id", (int)(prev_len - (prev[prev_len - 1] == 's')), prev);
            else snprintf(buf, cap, "%.*s", (int)(len - 2), seg + 1);
            return;
        }
        prev = seg, prev_len = len;
    }
}

/* the route's path parameters: valid UTF-8 without NUL (%00), else 400
 * naming which, so that no answer echoes bytes a JSON reader refuses */
static int check_args(srv_req *r, route_match *m)
{
    for (int k = 0; k < MAX_SEG && m->arg[k]; k++) {
        char why[96], name[64];
        if (!shelf__check_url_text_why(m->arg[k], strlen(m->arg[k]), why, sizeof why)) continue;
        arg_name(srv_routes[m->rt].path, k, name, sizeof name);
        m->rt = SRV_ROUTE_OTHER; /* answered (r->route keeps the route for the metrics) */
        return srv_error(r, 400, "bad_request", -1, "the %s in the path: %s", name, why);
    }
    return 0;
}

static int resolve(srv_req *r, const char *method, const char *url, route_match *m)
{
    const char *q = strchr(url, '?');
    size_t pl = q ? (size_t)(q - url) : strlen(url);
    m->rt = SRV_ROUTE_OTHER;
    r->route = SRV_ROUTE_OTHER;
    if (pl >= sizeof m->path) return srv_error(r, 414, "too_large", -1, "the URL is too long");
    memcpy(m->path, url, pl);
    m->path[pl] = '\0';
    memcpy(m->shown, m->path, pl + 1); /* split_path cuts path up */
    memset(m->arg, 0, sizeof m->arg);
    int n = split_path(m->path, m->seg, MAX_SEG), known = 0;
    m->rt = n > MAX_SEG ? SRV_ROUTE_OTHER : route_of(method, n, m->seg, m->arg, &known);
    r->route = m->rt;
    if (m->rt != SRV_ROUTE_OTHER) return check_args(r, m);
    char why[96];
    if (shelf__check_url_text_why(m->shown, strlen(m->shown), why, sizeof why))
        return srv_error(r, 404, "not_found", -1, "no route %s for a path that is not text: %s", method, why);
    if (known) return srv_error(r, 405, "method_not_allowed", -1, "%s is not allowed on %s", method, m->shown);
    return srv_error(r, 404, "not_found", -1, "no route %s %s (see GET /v1/openapi.yaml)", method, m->shown);
}

int srv_dispatch(srv_req *r)
{
    shelf_server *s = r->srv;
    if (atomic_load(&s->draining)) return srv_error(r, 503, "unavailable", -1, "the server is shutting down");
    route_match m;
    int rc = resolve(r, r->method, r->url, &m);
    if (m.rt == SRV_ROUTE_OTHER) return rc; /* admission answers these on the head; kept for safety */
    if (r->too_large)
        return srv_error(r, 413, "too_large", -1, "the body is over the limit of %zu bytes", s->o.max_body);
    if (r->too_busy)
        return srv_error(r, 503, "busy", -1, "request bodies use all of --body-memory (%zu MiB); retry shortly",
                         s->o.body_memory >> 20);
    return srv_routes[m.rt].fn(r, m.arg);
}

/* ---- admission and bodies -------------------------------------------------------------------------------
 * A request is judged on its head, before libmicrohttpd reads a byte of its
 * body: the route, the API key, the declared length and the memory left for
 * bodies. A request refused there is answered at once and its body is never
 * read (the connection then closes), so clients without a key cannot make
 * the server buffer anything. Bodies accepted hold their bytes of
 * --body-memory, all connections together, until the request ends: a body
 * with a Content-Length holds all of it from the head, a chunked one as it
 * grows; past the budget the answer is 503. */

typedef struct head_count {
    int content_length, transfer_encoding;
} head_count;

static enum MHD_Result count_head(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    head_count *c = cls;
    (void)kind;
    (void)value;
    if (!strcasecmp(key, "Content-Length")) c->content_length++;
    else if (!strcasecmp(key, "Transfer-Encoding")) c->transfer_encoding++;
    return MHD_YES;
}

/* takes n bytes of --body-memory for r; 0 when they are not there */
static int reserve(shelf_server *s, srv_req *r, size_t n)
{
    size_t cur = atomic_load(&s->body_bytes);
    do {
        if (n > s->o.body_memory || cur > s->o.body_memory - n) return 0;
    } while (!atomic_compare_exchange_weak(&s->body_bytes, &cur, cur + n));
    r->reserved += n;
    return 1;
}

/* answers a request on its head (the body is then dropped) */
#define REFUSE(...) (r->answered = 1, srv_error(r, __VA_ARGS__))

/* Judges r on its head: 0 admitted (the body may come), else r is
 * answered (the answer's result: 0 queued, -1 not). */
static int admit(srv_req *r, const char *method, const char *url)
{
    shelf_server *s = r->srv;
    head_count c = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_head, &c);
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    r->has_body = c.transfer_encoding || (cl && strcmp(cl, "0"));
    /* two lengths, or a length beside chunks: a proxy in front may take
     * the other one, and the rest of the body for a second request */
    if (c.content_length > 1 || (c.content_length && c.transfer_encoding) || c.transfer_encoding > 1)
        return REFUSE(400, "bad_request", -1, "the request has %s",
                      c.content_length > 1 ? "more than one Content-Length"
                      : c.transfer_encoding > 1 ? "more than one Transfer-Encoding"
                                                : "both Content-Length and Transfer-Encoding");
    if (!strcmp(method, "OPTIONS") && s->o.cors_origins && *s->o.cors_origins) {
        /* a browser's preflight (no key): what it may send, when its origin may call */
        r->answered = 1;
        r->preflight = 1;
        char *none = strdup("");
        return none ? srv_text(r, 204, "text/plain", none, 0) : -1;
    }
    route_match m;
    r->answered = 1; /* resolve's own answers (404, 405, 414) are on the head too */
    int rc = resolve(r, method, url, &m);
    if (m.rt == SRV_ROUTE_OTHER) return rc;
    r->answered = 0;
    int need = srv_routes[m.rt].scope;
    if (need && !s->o.no_auth) {
        int have = srv_request_scope(r);
        if (!have)
            return REFUSE(401, "unauthorized", -1,
                          "a valid API key is needed: send 'Authorization: Bearer KEY' (shelf keys create)");
        if (have < need)
            return REFUSE(403, "forbidden", -1, "this key's scope is %s; %s %s needs %s",
                          shelf_scope_name((shelf_scope)have), method, m.shown, shelf_scope_name((shelf_scope)need));
    }
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (n > s->o.max_body)
            return REFUSE(413, "too_large", -1, "the body is over the limit of %zu bytes", s->o.max_body);
        if (n && !reserve(s, r, (size_t)n + 1))
            return REFUSE(503, "busy", -1, "request bodies use all of --body-memory (%zu MiB); retry shortly",
                          s->o.body_memory >> 20);
    }
    /* the head is in: from now on the connection may idle for --timeout */
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)s->o.timeout_s);
    return 0;
}

#define BODY_MMAP ((size_t)256 << 10) /* bodies this large live in their own mapping */

static void body_free(srv_req *r)
{
    if (r->body_mapped) munmap(r->body, r->cap);
    else free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    r->body_mapped = 0;
}

/* room for need bytes in r's body (within its reservation, taking more of
 * --body-memory when chunks outgrow it): 0, SHELF_ENOMEM, or SHELF_ERANGE
 * (the budget is spent) */
static int body_grow(srv_req *r, size_t need)
{
    if (need <= r->cap) return 0;
    size_t c = r->cap ? 2 * r->cap : 4096;
    if (c < need) c = need;
    if (r->reserved >= need && c > r->reserved) c = r->reserved; /* a declared length: exactly that */
    if (c > r->reserved && !reserve(r->srv, r, c - r->reserved)) return SHELF_ERANGE;
    char *b;
    if (c < BODY_MMAP) {
        if (!(b = realloc(r->body, c))) return SHELF_ENOMEM;
    } else if (r->body_mapped) {
        if ((b = mremap(r->body, r->cap, c, MREMAP_MAYMOVE)) == MAP_FAILED) return SHELF_ENOMEM;
    } else {
        /* large bodies are mapped, not malloc'd: freed, their pages go back
         * to the system at once instead of staying in a thread's arena */
        if ((b = mmap(NULL, c, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
            return SHELF_ENOMEM;
        if (r->len) memcpy(b, r->body, r->len);
        free(r->body);
        r->body_mapped = 1;
    }
    r->body = b;
    r->cap = c;
    return 0;
}

void srv_thread_setup(void)
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
        srv_thread_setup();
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->t0 = mono_now();
        r->route = SRV_ROUTE_OTHER;
        r->method = method; /* MHD's, valid until the request ends (the access log reads it) */
        atomic_fetch_add(&s->active, 1);
        *con_cls = r;
        return admit(r, method, url) < 0 ? MHD_NO : MHD_YES;
    }
    if (r->answered) { /* answered on the head: whatever body comes is dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large || r->too_busy) return MHD_YES;
        if (r->len + n > s->o.max_body) {
            r->too_large = 1;
            body_free(r);
            return MHD_YES;
        }
        int rc = body_grow(r, r->len + n + 1);
        if (rc == SHELF_ERANGE) {
            r->too_busy = 1;
            body_free(r);
            return MHD_YES;
        }
        if (rc) return MHD_NO;
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    (void)version;
    if (r->job_queued) { /* resumed: the compute worker's answer */
        if (!atomic_load_explicit(&r->job_done, memory_order_acquire)) return MHD_YES;
        enum MHD_Result ok = MHD_YES;
        if (r->job_resp) {
            ok = MHD_queue_response(conn, (unsigned)r->status, r->job_resp);
            MHD_destroy_response(r->job_resp);
            r->job_resp = NULL;
        }
        return r->job_rc < 0 || ok != MHD_YES ? MHD_NO : MHD_YES;
    }
    r->method = method;
    r->url = url;
    atomic_fetch_add(&s->busy, 1);
    /* draining is read after busy is raised (both sequentially consistent),
     * and shelf_server_stop raises draining before it waits for busy to fall:
     * a request it did not wait for sees draining, and is answered here
     * (503) instead of waiting suspended, which MHD_stop_daemon forbids */
    if (s->n_pool && r->route < SRV_N_ROUTES && srv_routes[r->route].pooled && !atomic_load(&s->draining)) {
        r->job_queued = 1;
        MHD_suspend_connection(conn);
        srv_pool_submit(s, r); /* busy is the worker's to give back */
        return MHD_YES;
    }
    int rc = srv_dispatch(r);
    atomic_fetch_sub(&s->busy, 1);
    return rc < 0 ? MHD_NO : MHD_YES;
}

/* ---- the access log (--access-log) --------------------------------------------------------
 * One JSON line per request when it ends: its time (UTC, ms), method,
 * route (the metrics' name: "other" for no route), status (null when the
 * client left first, "aborted": true), milliseconds, and the id of its API
 * key (null without one; the key itself never). Lines are written whole. */
static void access_line(shelf_server *s, const srv_req *r, double took)
{
    double now = srv_now();
    time_t sec = (time_t)now;
    struct tm tm;
    gmtime_r(&sec, &tm);
    char when[40], key[24] = "null", status[16] = "null";
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    if (r->key_id) snprintf(key, sizeof key, "%lld", (long long)r->key_id);
    if (r->status) snprintf(status, sizeof status, "%d", r->status);
    const char *method = r->method && !strpbrk(r->method, "\"\\") ? r->method : "?";
    pthread_mutex_lock(&s->log_mu);
    fprintf(s->access_log,
            "{\"time\":\"%s.%03dZ\",\"method\":\"%s\",\"route\":\"%s\",\"status\":%s,%s\"ms\":%.3f,\"key\":%s}\n",
            when, (int)((now - (double)sec) * 1000), method,
            r->route < SRV_N_ROUTES ? srv_routes[r->route].name : "other", status,
            r->status ? "" : "\"aborted\":true,", took * 1000, key);
    fflush(s->access_log);
    pthread_mutex_unlock(&s->log_mu);
}

void srv_on_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    shelf_server *s = cls;
    srv_req *r = *con_cls;
    (void)conn;
    (void)toe;
    if (!r) return;
    /* status 0: no answer was queued, the client left first (counted as
     * aborted, not as a server error) */
    double took = mono_now() - r->t0;
    srv_metrics_observe(s, r->route, r->status, took);
    if (s->access_log) access_line(s, r, took);
    body_free(r);
    atomic_fetch_sub(&s->body_bytes, r->reserved);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->active, 1);
}
