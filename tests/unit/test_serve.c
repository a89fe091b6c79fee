/* test_serve.c: the HTTP server (src/serve) driven over real HTTP on an
 * ephemeral loopback port, against the contract of the v1 API: every route,
 * errors and limits, all-or-nothing batches, real-time updates of slates,
 * API keys, hot model swap under load and drain. The client is a small
 * HTTP/1.1 one on POSIX sockets (one request per connection). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "shelf/shelf.h"
#include "shelf/config.h"
#include "shelf/gen.h"
#include "shelf/serve.h"

#include "test_util.h"

/* ---- HTTP client ---------------------------------------------------------------------- */

typedef struct resp {
    int status;
    char *raw;     /* whole response, NUL-terminated */
    size_t len;
    const char *body;
    cJSON *json;   /* parsed body or NULL */
} resp;

static void resp_free(resp *r)
{
    free(r->raw);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

/* why this thread's last request got no answer (for the failure message) */
static _Thread_local char why_none[96];

static int connect_to(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        snprintf(why_none, sizeof why_none, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One request (Connection: close); the whole response into *out. Returns 0,
 * or -1 when no HTTP response came back (out->status 0). Thread safe. */
static int http_try(unsigned port, const char *method, const char *path, const char *key, const char *body,
                    size_t blen, resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = connect_to(port);
    if (fd < 0) return -1;
    char head[1024];
    char auth[160] = "";
    if (key) snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", key);
    if (body && blen == 0) blen = strlen(body);
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n%sConnection: close\r\n%s"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, port, auth, body ? "Content-Type: application/json\r\n" : "", body ? blen : 0);
    /* a server that answers early (413) may close before all is sent: read anyway */
    if (send_all(fd, head, (size_t)hl) == 0 && body) send_all(fd, body, blen);
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 + 1 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) snprintf(why_none, sizeof why_none, "recv after %zu bytes: %s", len, strerror(errno));
        if (k == 0 && len == 0) snprintf(why_none, sizeof why_none, "closed without an answer");
        if (k <= 0) break;
        len += (size_t)k;
    }
    close(fd);
    buf[len] = '\0';
    out->raw = buf;
    out->len = len;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7)) return -1;
    out->status = atoi(buf + 9);
    char *sep = strstr(buf, "\r\n\r\n");
    out->body = sep ? sep + 4 : buf + len;
    out->json = cJSON_Parse(out->body);
    return 0;
}

/* the server of the current test and the key it sends (NULL: none) */
static unsigned g_port;
static const char *g_key;

static resp http(const char *method, const char *path, const char *body)
{
    resp r;
    int rc = http_try(g_port, method, path, g_key, body, 0, &r);
    if (rc) fprintf(stderr, "%s %s: no HTTP response (%zu bytes; %s)\n", method, path, r.len, why_none);
    assert_int_equal(rc, 0);
    return r;
}

/* a request that must answer `status` with a JSON body; the caller deletes it */
static cJSON *call(const char *method, const char *path, const char *body, int status)
{
    resp r = http(method, path, body);
    if (r.status != status)
        fprintf(stderr, "%s %s%s%s: expected %d, got %d: %s\n", method, path, body ? " body " : "", body ? body : "",
                status, r.status, r.body);
    assert_int_equal(r.status, status);
    if (!r.json) fprintf(stderr, "%s %s: body is not JSON: %s\n", method, path, r.body);
    assert_non_null(r.json);
    cJSON *j = r.json;
    r.json = NULL;
    resp_free(&r);
    return j;
}

/* checks an error answer {"error": {"status", "code", "message", ["index"]}} */
static void expect_error(const char *method, const char *path, const char *body, int status, const char *code,
                         long index)
{
    cJSON *j = call(method, path, body, status);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_true(cJSON_IsObject(e));
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status"), *c = cJSON_GetObjectItemCaseSensitive(e, "code"),
                *m = cJSON_GetObjectItemCaseSensitive(e, "message"), *ix = cJSON_GetObjectItemCaseSensitive(e, "index");
    assert_true(cJSON_IsNumber(st));
    assert_int_equal(st->valueint, status);
    assert_true(cJSON_IsString(c));
    if (strcmp(c->valuestring, code))
        fprintf(stderr, "%s %s: expected code %s, got %s (%s)\n", method, path, code, c->valuestring,
                cJSON_IsString(m) ? m->valuestring : "");
    assert_string_equal(c->valuestring, code);
    assert_true(cJSON_IsString(m) && m->valuestring[0]);
    if (index >= 0) {
        if (!cJSON_IsNumber(ix) || ix->valueint != index)
            fprintf(stderr, "%s %s: expected index %ld: %s\n", method, path, index, cJSON_IsString(m) ? m->valuestring : "");
        assert_true(cJSON_IsNumber(ix));
        assert_int_equal(ix->valueint, index);
    } else {
        assert_null(ix);
    }
    cJSON_Delete(j);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const cJSON *jarr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsArray(v));
    return v;
}

/* does a list [{"id": ...}] hold id */
static int has_id(const cJSON *items, const char *id)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, items) if (jstr(it, "id") && !strcmp(jstr(it, "id"), id)) return 1;
    return 0;
}

/* GET /v1/users/{u}/recommendations?{q}: the answer (caller deletes) */
static cJSON *recs(const char *user, const char *q)
{
    char path[512];
    snprintf(path, sizeof path, "/v1/users/%s/recommendations%s%s", user, q && *q ? "?" : "", q ? q : "");
    cJSON *j = call("GET", path, NULL, 200);
    jarr(j, "items");
    return j;
}

/* the "events" count of a user, -1 when 404 */
static int user_events(const char *user)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s", user);
    resp r = http("GET", path, NULL);
    int n = -1;
    if (r.status == 200) {
        assert_non_null(r.json);
        n = (int)jnum(r.json, "events");
    } else {
        assert_int_equal(r.status, 404);
    }
    resp_free(&r);
    return n;
}

static void post_events(const char *body, int accepted)
{
    cJSON *j = call("POST", "/v1/events", body, 200);
    assert_int_equal((int)jnum(j, "accepted"), accepted);
    cJSON_Delete(j);
}

/* ---- fixtures: stores, bundles, servers ----------------------------------------------------- */

static char p_main[768], p_auth[768], p_drain[768], p_bundles[768], p_stage[768];
static shelf_server *g_srv; /* the no-auth server most tests use */

static void rm_rf(const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void rm_store(const char *path)
{
    char p[800];
    remove(path);
    snprintf(p, sizeof p, "%s-wal", path);
    remove(p);
    snprintf(p, sizeof p, "%s-shm", path);
    remove(p);
}

/* a store with the generated shop (200 users, 100 items, 3000 events) */
static shelf_store *make_store(const char *path)
{
    rm_store(path);
    shelf_store *st = NULL;
    shelf_err err = {0};
    int rc = shelf_store_open(path, SHELF_STORE_CREATE, &st, &err);
    if (rc) fprintf(stderr, "store open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    o.n_users = 200;
    o.n_items = 100;
    o.n_events = 3000;
    rc = shelf_gen_store(st, &o);
    if (rc) fprintf(stderr, "gen: %s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    return st;
}

static shelf_server *start(const char *store, const char *bundle, int no_auth, unsigned timeout_s)
{
    shelf_server_opts o = {0};
    o.store = store;
    o.bundle = bundle;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.threads = 4;
    o.no_auth = no_auth;
    o.max_body = 4096;
    o.max_batch = 50;
    o.timeout_s = timeout_s;
    shelf_server *s = NULL;
    shelf_err err = {0};
    int rc = shelf_server_start(&o, &s, &err);
    if (rc) fprintf(stderr, "server start: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    assert_true(shelf_server_port(s) > 0);
    return s;
}

static int group_setup(void **state)
{
    (void)state;
    tmp_init("serve");
    snprintf(p_main, sizeof p_main, "%s", tmp_path("main.db"));
    snprintf(p_auth, sizeof p_auth, "%s", tmp_path("auth.db"));
    snprintf(p_drain, sizeof p_drain, "%s", tmp_path("drain.db"));
    snprintf(p_bundles, sizeof p_bundles, "%s", tmp_path("bundles"));
    snprintf(p_stage, sizeof p_stage, "%s", tmp_path("stage"));
    rm_rf(p_bundles);
    rm_rf(p_stage);
    mkdir_p(p_bundles);
    mkdir_p(p_stage);

    shelf_store *st = make_store(p_main);
    shelf_snapshot *sn = build(st);
    shelf_store_close(st);
    shelf_config *o = opts("tf-epochs=2", "tf-dim=16", "tf-heads=1", "tf-layers=1", "tf-maxlen=20",
                           "tf-text-buckets=1024", "tf-batch=64", "tf-warmup=0", "tf-lr=0.01", "tf-precision=f32",
                           "threads=1", NULL);
    shelf_model *m = NULL;
    assert_int_equal(shelf_model_new("transformer", &m, NULL), 0);
    int rc = shelf_model_fit(m, sn, o, NULL);
    if (rc) fprintf(stderr, "fit: %s\n", shelf_model_errmsg(m));
    assert_int_equal(rc, 0);
    char dir[800];
    shelf_err err = {0};
    snprintf(dir, sizeof dir, "%s/v1", p_bundles);
    rc = shelf_model_save(m, dir, &err);
    if (rc) fprintf(stderr, "save: %s\n", err.msg);
    assert_int_equal(rc, 0);
    /* the second version waits outside; the hot-swap test moves it in */
    snprintf(dir, sizeof dir, "%s/v2", p_stage);
    assert_int_equal(shelf_model_save(m, dir, &err), 0);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(sn);

    g_srv = start(p_main, p_bundles, 1, 10);
    g_port = shelf_server_port(g_srv);
    g_key = NULL;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    shelf_server_stop(g_srv);
    g_srv = NULL;
    return 0;
}

/* ---- open routes ---------------------------------------------------------------------------- */

static void test_health(void **state)
{
    (void)state;
    resp r = http("GET", "/v1/health", NULL);
    assert_int_equal(r.status, 200);
    char *ct = strcasestr(r.raw, "\r\nContent-Type:");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "application/json"));
    resp_free(&r);
    cJSON *j = call("GET", "/v1/health", NULL, 200);
    assert_string_equal(jstr(j, "status"), "ok");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    assert_true(cJSON_IsObject(m));
    assert_string_equal(jstr(m, "kind"), "transformer");
    assert_non_null(jstr(m, "version"));
    assert_true(strncmp(jstr(m, "version"), "v1", 2) == 0);
    assert_true(jnum(m, "age_s") >= 0);
    assert_true(jnum(j, "users") >= 200);
    assert_true(jnum(j, "items") >= 100);
    assert_true(jnum(j, "events_ingested") >= 0);
    assert_true(jnum(j, "uptime_s") >= 0);
    cJSON_Delete(j);
}

static void test_metrics(void **state)
{
    (void)state;
    cJSON_Delete(call("GET", "/v1/health", NULL, 200)); /* at least one counted request */
    resp r = http("GET", "/metrics", NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.raw, "text/plain"));
    assert_non_null(strstr(r.body, "shelf_http_requests_total{"));
    assert_non_null(strstr(r.body, "route=\"health\""));
    assert_non_null(strstr(r.body, "shelf_http_request_duration_seconds_bucket{"));
    assert_non_null(strstr(r.body, "shelf_model_info{kind=\"transformer\",version=\""));
    assert_non_null(strstr(r.body, "shelf_events_ingested_total"));
    assert_non_null(strstr(r.body, "shelf_reloads_total{result=\"ok\"}"));
    resp_free(&r);
}

static void test_openapi(void **state)
{
    (void)state;
    resp r = http("GET", "/v1/openapi.yaml", NULL);
    assert_int_equal(r.status, 200);
    assert_true(strncmp(r.body, "openapi:", 8) == 0);
    assert_non_null(strstr(r.body, "/v1/events"));
    resp_free(&r);
}

/* ---- items ---------------------------------------------------------------------------------- */

static void test_items_put_get(void **state)
{
    (void)state;
    const char *body = "{\"title\":\"Red mug\",\"text\":\"a mug\",\"category\":\"Kitchen > Mugs\",\"brand\":\"Acme\","
                       "\"price\":9.5,\"created\":1767225600,"
                       "\"attributes\":{\"color\":\"red\",\"size\":3,\"eco\":true}}";
    cJSON *j = call("PUT", "/v1/items/t_mug", body, 200);
    assert_string_equal(jstr(j, "id"), "t_mug");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "created")));
    cJSON_Delete(j);
    j = call("PUT", "/v1/items/t_mug", body, 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "created")));
    cJSON_Delete(j);

    j = call("GET", "/v1/items/t_mug", NULL, 200);
    assert_string_equal(jstr(j, "id"), "t_mug");
    assert_string_equal(jstr(j, "kind"), "product"); /* the default */
    assert_string_equal(jstr(j, "title"), "Red mug");
    assert_string_equal(jstr(j, "text"), "a mug");
    assert_string_equal(jstr(j, "category"), "Kitchen > Mugs");
    assert_string_equal(jstr(j, "brand"), "Acme");
    assert_true(jnum(j, "price") == 9.5);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "available")));
    assert_true(jnum(j, "created") == 1767225600.0);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "attributes");
    assert_true(cJSON_IsObject(a));
    assert_string_equal(jstr(a, "color"), "red");
    assert_true(jnum(a, "size") == 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "eco")));
    cJSON_Delete(j);

    /* absent fields are null */
    cJSON_Delete(call("PUT", "/v1/items/t_bare", "{}", 200));
    j = call("GET", "/v1/items/t_bare", NULL, 200);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "title")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "price")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "brand")));
    cJSON_Delete(j);

    expect_error("GET", "/v1/items/t_never_put", NULL, 404, "not_found", -1);
    expect_error("PUT", "/v1/items/t_bad", "{\"price\":\"x\"}", 400, "bad_item", -1);
    expect_error("PUT", "/v1/items/t_bad", "{\"available\":\"yes\"}", 400, "bad_item", -1);
    expect_error("PUT", "/v1/items/t_bad", "{\"attributes\":{\"a\":[1]}}", 400, "bad_item", -1);
    expect_error("GET", "/v1/items/t_bad", NULL, 404, "not_found", -1);
}

static void test_items_batch(void **state)
{
    (void)state;
    cJSON *j = call("PUT", "/v1/items", "[{\"id\":\"t_b1\",\"title\":\"one\"},{\"id\":\"t_b2\",\"price\":2}]", 200);
    assert_int_equal((int)jnum(j, "stored"), 2);
    cJSON_Delete(j);
    j = call("PUT", "/v1/items", "{\"items\":[{\"id\":\"t_b3\"},{\"id\":\"t_b1\",\"title\":\"uno\"}]}", 200);
    assert_int_equal((int)jnum(j, "stored"), 2);
    cJSON_Delete(j);
    j = call("GET", "/v1/items/t_b1", NULL, 200);
    assert_string_equal(jstr(j, "title"), "uno");
    cJSON_Delete(j);
    cJSON_Delete(call("GET", "/v1/items/t_b2", NULL, 200));
    cJSON_Delete(call("GET", "/v1/items/t_b3", NULL, 200));

    /* one bad record: 400 with its index, nothing of the batch stored */
    expect_error("PUT", "/v1/items", "[{\"id\":\"t_good1\",\"title\":\"g\"},{\"id\":\"t_good2\"},{\"id\":\"t_bad\",\"price\":\"x\"}]",
                 400, "bad_item", 2);
    expect_error("GET", "/v1/items/t_good1", NULL, 404, "not_found", -1);
    expect_error("GET", "/v1/items/t_good2", NULL, 404, "not_found", -1);
    expect_error("PUT", "/v1/items", "{\"items\":[{\"id\":\"t_good3\"},{\"title\":\"no id\"}]}", 400, "bad_item", 1);
    expect_error("GET", "/v1/items/t_good3", NULL, 404, "not_found", -1);
    /* an existing item in a failed batch keeps its old fields */
    expect_error("PUT", "/v1/items", "[{\"id\":\"t_b1\",\"title\":\"changed\"},{\"id\":\"t_b4\",\"price\":-1}]", 400,
                 "bad_item", 1);
    j = call("GET", "/v1/items/t_b1", NULL, 200);
    assert_string_equal(jstr(j, "title"), "uno");
    cJSON_Delete(j);
}

/* every slate route: the item is in none of them */
static void expect_never_shown(const char *id)
{
    static const char *const users[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u8", "u9", "u10", "nobody_at_all"};
    for (size_t k = 0; k < sizeof users / sizeof users[0]; k++) {
        cJSON *j = recs(users[k], "n=1000");
        if (has_id(jarr(j, "items"), id)) fprintf(stderr, "retired %s recommended to %s\n", id, users[k]);
        assert_false(has_id(jarr(j, "items"), id));
        cJSON_Delete(j);
    }
    cJSON *j = call("GET", "/v1/popular?n=1000", NULL, 200);
    assert_false(has_id(jarr(j, "items"), id));
    cJSON_Delete(j);
    j = call("GET", "/v1/items/i1/similar?n=1000", NULL, 200);
    assert_false(has_id(jarr(j, "items"), id));
    cJSON_Delete(j);
    j = call("POST", "/v1/recommendations", "{\"items\":[\"i2\",\"i3\"],\"n\":1000}", 200);
    assert_false(has_id(jarr(j, "items"), id));
    cJSON_Delete(j);
}

static void test_item_delete(void **state)
{
    (void)state;
    /* the first item u5 would get among those no other test uses */
    cJSON *j = recs("u5", "n=100");
    const cJSON *items = jarr(j, "items"), *it;
    char x[64] = "";
    cJSON_ArrayForEach(it, items)
    {
        int i = atoi(jstr(it, "id") + 1);
        if (!x[0] && ((i >= 13 && i < 20) || (i >= 26 && i < 50 && i != 42) || i >= 90)) snprintf(x, sizeof x, "%s", jstr(it, "id"));
    }
    assert_true(x[0] != '\0');
    cJSON_Delete(j);
    char path[128], body[256];
    snprintf(path, sizeof path, "/v1/items/%s", x);
    j = call("DELETE", path, NULL, 200);
    assert_string_equal(jstr(j, "deleted"), x);
    cJSON_Delete(j);
    expect_error("GET", path, NULL, 404, "not_found", -1);
    expect_error("DELETE", path, NULL, 404, "not_found", -1);
    /* events for it are refused now */
    snprintf(body, sizeof body, "{\"user\":\"u5\",\"item\":\"%s\"}", x);
    expect_error("POST", "/v1/events", body, 400, "bad_event", -1);
    expect_never_shown(x);
    /* its id may be put again, as a new item */
    j = call("PUT", path, "{\"title\":\"again\"}", 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "created")));
    cJSON_Delete(j);
    j = call("GET", path, NULL, 200);
    assert_string_equal(jstr(j, "title"), "again");
    cJSON_Delete(j);
    expect_error("DELETE", "/v1/items/t_never_put", NULL, 404, "not_found", -1);
}

/* ---- users ---------------------------------------------------------------------------------- */

static void test_users(void **state)
{
    (void)state;
    cJSON *j = call("PUT", "/v1/users/t_alice", "{\"attributes\":{\"segment\":\"z\",\"age\":40},\"created\":1767225600}", 200);
    assert_string_equal(jstr(j, "id"), "t_alice");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "created")));
    cJSON_Delete(j);
    j = call("PUT", "/v1/users/t_alice", "{\"attributes\":{\"segment\":\"y\"}}", 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "created")));
    cJSON_Delete(j);
    j = call("GET", "/v1/users/t_alice", NULL, 200);
    assert_string_equal(jstr(j, "id"), "t_alice");
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(j, "attributes"), "segment"), "y");
    assert_int_equal((int)jnum(j, "events"), 0);
    assert_int_equal(cJSON_GetArraySize(jarr(j, "recent")), 0);
    cJSON_Delete(j);
    j = call("PUT", "/v1/users", "[{\"id\":\"t_bob\"},{\"id\":\"t_carol\",\"attributes\":{\"a\":1}}]", 200);
    assert_int_equal((int)jnum(j, "stored"), 2);
    cJSON_Delete(j);
    assert_int_equal(user_events("t_bob"), 0);
    assert_int_equal(user_events("t_carol"), 0);
    expect_error("PUT", "/v1/users", "[{\"id\":\"t_dave\"},{\"attributes\":{}}]", 400, "bad_user", 1);
    assert_int_equal(user_events("t_dave"), -1);
    expect_error("PUT", "/v1/users/t_eve", "{\"attributes\":\"x\"}", 400, "bad_user", -1);
    assert_int_equal(user_events("t_eve"), -1);

    /* a generated user: events and the newest 20, newest last */
    j = call("GET", "/v1/users/u3", NULL, 200);
    int n = (int)jnum(j, "events");
    assert_true(n > 0);
    const cJSON *rec = jarr(j, "recent");
    assert_int_equal(cJSON_GetArraySize(rec), n < 20 ? n : 20);
    double last = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, rec)
    {
        const cJSON *ei = cJSON_GetObjectItemCaseSensitive(e, "item");
        assert_true(cJSON_IsString(ei) || cJSON_IsNull(ei)); /* null: an item retired since */
        assert_non_null(jstr(e, "type"));
        assert_true(jnum(e, "ts") >= last);
        last = jnum(e, "ts");
    }
    cJSON_Delete(j);
    /* a new event is the last of recent */
    char body[160];
    const long long now = (long long)time(NULL);
    snprintf(body, sizeof body, "{\"user\":\"u3\",\"item\":\"i42\",\"type\":\"cart\",\"value\":1,\"ts\":%lld}", now);
    post_events(body, 1);
    j = call("GET", "/v1/users/u3", NULL, 200);
    assert_int_equal((int)jnum(j, "events"), n + 1);
    rec = jarr(j, "recent");
    e = cJSON_GetArrayItem(rec, cJSON_GetArraySize(rec) - 1);
    assert_string_equal(jstr(e, "item"), "i42");
    assert_string_equal(jstr(e, "type"), "cart");
    assert_true(jnum(e, "ts") == (double)now);
    cJSON_Delete(j);
    expect_error("GET", "/v1/users/t_nobody", NULL, 404, "not_found", -1);
}

static void test_user_delete(void **state)
{
    (void)state;
    assert_true(user_events("u7") > 0);
    cJSON *j = recs("u7", "n=5");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "known_user")));
    cJSON_Delete(j);
    post_events("{\"user\":\"u7\",\"item\":\"i9\"}", 1); /* a live event too */
    j = call("DELETE", "/v1/users/u7", NULL, 200);
    assert_string_equal(jstr(j, "deleted"), "u7");
    cJSON_Delete(j);
    expect_error("GET", "/v1/users/u7", NULL, 404, "not_found", -1);
    expect_error("DELETE", "/v1/users/u7", NULL, 404, "not_found", -1);
    j = recs("u7", "n=5");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "known_user")));
    cJSON_Delete(j);
    /* the same id starts fresh */
    post_events("{\"user\":\"u7\",\"item\":\"i1\",\"type\":\"view\"}", 1);
    j = call("GET", "/v1/users/u7", NULL, 200);
    assert_int_equal((int)jnum(j, "events"), 1);
    const cJSON *rec = jarr(j, "recent");
    assert_int_equal(cJSON_GetArraySize(rec), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(rec, 0), "item"), "i1");
    cJSON_Delete(j);
    j = recs("u7", "n=5");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "known_user")));
    cJSON_Delete(j);
    expect_error("DELETE", "/v1/users/t_nobody", NULL, 404, "not_found", -1);
}

/* ---- events --------------------------------------------------------------------------------- */

static void test_events_forms(void **state)
{
    (void)state;
    post_events("{\"user\":\"t_ev\",\"item\":\"i1\"}", 1);
    assert_int_equal(user_events("t_ev"), 1);
    post_events("[{\"user\":\"t_ev\",\"item\":\"i2\",\"type\":\"click\"},{\"user\":\"t_ev\",\"item\":\"i3\",\"type\":"
                "\"cart\",\"value\":1,\"ts\":1767225600}]",
                2);
    assert_int_equal(user_events("t_ev"), 3);
    post_events("{\"events\":[{\"user\":\"t_ev\",\"item\":\"i4\",\"rec_id\":\"abc\",\"context\":{\"page\":\"home\"}},"
                "{\"user\":\"t_ev\",\"item\":\"i5\",\"type\":\"purchase\",\"value\":2},"
                "{\"user\":\"t_ev2\",\"item\":\"i5\",\"type\":\"rating\",\"value\":4}]}",
                3);
    assert_int_equal(user_events("t_ev"), 5);
    assert_int_equal(user_events("t_ev2"), 1);
    /* 200 means committed: another handle on the store sees the new user */
    shelf_store *st = NULL;
    assert_int_equal(shelf_store_open(p_main, 0, &st, NULL), 0);
    uint32_t idx;
    assert_int_equal(shelf_store_user_idx(st, "t_ev2", 5, 0, &idx, NULL), 0);
    shelf_store_close(st);
    /* every built-in type of the contract */
    post_events("[{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"view\"},{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"click\"},"
                "{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"cart\"},{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"purchase\"},"
                "{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"rating\",\"value\":5},{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"like\"},"
                "{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"dislike\"},{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"share\"},"
                "{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"impression\"},{\"user\":\"t_ty\",\"item\":\"i1\",\"type\":\"return\"},"
                "{\"user\":\"t_ty\",\"item\":\"i1\",\"value\":null,\"ts\":null,\"rec_id\":null,\"context\":null}]",
                11);
    assert_int_equal(user_events("t_ty"), 11);
    /* ids as integers: their decimal text */
    post_events("{\"user\":123456,\"item\":\"i6\"}", 1);
    assert_int_equal(user_events("123456"), 1);
    cJSON *j = call("GET", "/v1/users/t_ev", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(jarr(j, "recent")), 5);
    cJSON_Delete(j);
    j = call("GET", "/v1/health", NULL, 200);
    assert_true(jnum(j, "events_ingested") >= 7);
    cJSON_Delete(j);
}

/* "recent": newest last, by the events' times, whatever order they came in */
static void test_user_recent_order(void **state)
{
    (void)state;
    post_events("{\"user\":\"t_ord\",\"item\":\"i1\",\"ts\":1790000000}", 1);
    post_events("{\"user\":\"t_ord\",\"item\":\"i2\",\"ts\":1780000000}", 1); /* older, sent later */
    cJSON *j = call("GET", "/v1/users/t_ord", NULL, 200);
    const cJSON *rec = jarr(j, "recent");
    assert_int_equal(cJSON_GetArraySize(rec), 2);
    char first[32], last[32];
    snprintf(first, sizeof first, "%s", jstr(cJSON_GetArrayItem(rec, 0), "item"));
    snprintf(last, sizeof last, "%s", jstr(cJSON_GetArrayItem(rec, 1), "item"));
    double t0 = jnum(cJSON_GetArrayItem(rec, 0), "ts"), t1 = jnum(cJSON_GetArrayItem(rec, 1), "ts");
    cJSON_Delete(j);
    if (t0 > t1) fprintf(stderr, "recent is not newest last: [%s ts %.0f, %s ts %.0f]\n", first, t0, last, t1);
    assert_true(t0 <= t1);
    assert_string_equal(last, "i1");
}

static void test_events_bad_batch(void **state)
{
    (void)state;
    post_events("{\"user\":\"t_atom\",\"item\":\"i1\"}", 1);
    const int before = user_events("t_atom");
    assert_int_equal(before, 1);
    static const char *const good = "{\"user\":\"t_atom\",\"item\":\"i2\"}";
    static const char *const newu = "{\"user\":\"t_atom_new\",\"item\":\"i2\"}";
    static const struct {
        const char *bad;
        int at;
    } cases[] = {
        {"{\"user\":\"t_atom\",\"item\":\"no_such_item\"}", 2},
        {"{\"user\":\"t_atom\",\"item\":\"i3\",\"type\":\"teleport\"}", 1},
        {"{\"user\":\"t_atom\",\"item\":\"i3\",\"ts\":\"x\"}", 3},
        {"{\"item\":\"i3\"}", 1},
        {"{\"user\":\"\",\"item\":\"i3\"}", 0},
        {"{\"user\":\"t_atom\",\"item\":\"i3\",\"value\":\"abc\"}", 2},
        {"{\"user\":\"t_atom\",\"item\":\"i3\",\"type\":7}", 1},
        {"{\"user\":\"t_atom\",\"item\":\"i3\",\"ts\":-5}", 3},
        {"{\"user\":\"t_atom\",\"item\":\"i3\",\"context\":\"x\"}", 2},
        {"{\"user\":\"t_atom\"}", 1},
        {"\"just a string\"", 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char body[1024];
        size_t k = 0;
        k += (size_t)snprintf(body + k, sizeof body - k, "[");
        for (int i = 0; i < 4; i++) {
            const char *rec = i == cases[c].at ? cases[c].bad : (i == 0 ? newu : good);
            k += (size_t)snprintf(body + k, sizeof body - k, "%s%s", i ? "," : "", rec);
        }
        snprintf(body + k, sizeof body - k, "]");
        expect_error("POST", "/v1/events", body, 400, "bad_event", cases[c].at);
        if (user_events("t_atom") != before) fprintf(stderr, "batch %s stored part of itself\n", body);
        assert_int_equal(user_events("t_atom"), before);
        if (cases[c].at != 0) assert_int_equal(user_events("t_atom_new"), -1);
        /* the same through {"events": [...]} */
        char wrapped[1100];
        snprintf(wrapped, sizeof wrapped, "{\"events\":%s}", body);
        expect_error("POST", "/v1/events", wrapped, 400, "bad_event", cases[c].at);
        assert_int_equal(user_events("t_atom"), before);
    }
    /* a single bad object: no index */
    expect_error("POST", "/v1/events", "{\"user\":\"t_atom\",\"item\":\"no_such_item\"}", 400, "bad_event", -1);
    assert_int_equal(user_events("t_atom"), before);
    cJSON *j = call("GET", "/v1/health", NULL, 200); /* still healthy */
    cJSON_Delete(j);
}

static void test_events_limits(void **state)
{
    (void)state;
    char *body = malloc(8192);
    size_t k = 0;
    /* 51 events: over --max-batch 50 */
    k += (size_t)snprintf(body + k, 8192 - k, "[");
    for (int i = 0; i < 51; i++)
        k += (size_t)snprintf(body + k, 8192 - k, "%s{\"user\":\"t_lim\",\"item\":\"i%d\"}", i ? "," : "", 50 + i % 40);
    snprintf(body + k, 8192 - k, "]");
    assert_true(strlen(body) < 4096);
    expect_error("POST", "/v1/events", body, 413, "too_large", -1);
    assert_int_equal(user_events("t_lim"), -1);
    /* 50: accepted */
    char *end = strrchr(body, '{');
    end[-1] = ']';
    end[0] = '\0';
    post_events(body, 50);
    assert_int_equal(user_events("t_lim"), 50);
    /* a body over --max-body 4096 */
    k = (size_t)snprintf(body, 8192, "{\"user\":\"t_lim2\",\"item\":\"i1\",\"context\":{\"pad\":\"");
    while (k < 5000) body[k++] = 'x';
    k += (size_t)snprintf(body + k, 8192 - k, "\"}}");
    expect_error("POST", "/v1/events", body, 413, "too_large", -1);
    assert_int_equal(user_events("t_lim2"), -1);
    /* items too */
    expect_error("PUT", "/v1/items/t_bigitem", body, 413, "too_large", -1);
    expect_error("GET", "/v1/items/t_bigitem", NULL, 404, "not_found", -1);
    free(body);
    /* the server still answers */
    cJSON_Delete(call("GET", "/v1/health", NULL, 200));
}

static void test_events_malformed(void **state)
{
    (void)state;
    expect_error("POST", "/v1/events", "{not json", 400, "bad_json", -1);
    expect_error("POST", "/v1/events", "[{\"user\":\"t_mal\",\"item\":\"i1\"},", 400, "bad_json", -1);
    expect_error("POST", "/v1/events", NULL, 400, "bad_json", -1);
    expect_error("PUT", "/v1/items/t_mal", "{\"title\":", 400, "bad_json", -1);
    expect_error("POST", "/v1/recommendations", "nope", 400, "bad_json", -1);
    /* wrong types */
    expect_error("POST", "/v1/events", "{\"user\":true,\"item\":\"i1\"}", 400, "bad_event", -1);
    expect_error("POST", "/v1/events", "{\"user\":\"t_mal\",\"item\":[1]}", 400, "bad_event", -1);
    expect_error("POST", "/v1/events", "{\"user\":\"t_mal\",\"item\":\"i1\",\"value\":\"1\"}", 400, "bad_event", -1);
    expect_error("POST", "/v1/events", "{\"user\":\"t_mal\",\"item\":\"i1\",\"ts\":1.5}", 400, "bad_event", -1);
    expect_error("POST", "/v1/events", "42", 400, "bad_event", -1);
    expect_error("POST", "/v1/events", "[]", 400, "bad_request", -1);
    expect_error("POST", "/v1/events", "{\"events\":[]}", 400, "bad_request", -1);
    assert_int_equal(user_events("t_mal"), -1);
}

/* ---- recommendations ------------------------------------------------------------------------- */

static void test_realtime(void **state)
{
    (void)state;
    cJSON *a = recs("u11", "n=10");
    assert_string_equal(jstr(a, "user"), "u11");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "known_user")));
    assert_string_equal(jstr(a, "model"), "transformer");
    assert_non_null(jstr(a, "model_version"));
    assert_true(jstr(a, "rec_id") && strlen(jstr(a, "rec_id")) > 0);
    const cJSON *items = jarr(a, "items");
    assert_int_equal(cJSON_GetArraySize(items), 10);
    double prev = INFINITY;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        assert_non_null(jstr(it, "id"));
        assert_non_null(jstr(it, "kind"));
        assert_true(jnum(it, "score") <= prev); /* best first */
        prev = jnum(it, "score");
        assert_null(cJSON_GetObjectItemCaseSensitive(it, "reasons"));
    }
    char x[64], body[256];
    snprintf(x, sizeof x, "%s", jstr(cJSON_GetArrayItem(items, 0), "id"));
    snprintf(body, sizeof body, "{\"user\":\"u11\",\"item\":\"%s\",\"type\":\"purchase\",\"value\":1,\"rec_id\":\"%s\"}", x,
             jstr(a, "rec_id"));
    post_events(body, 1);
    cJSON *b = recs("u11", "n=10");
    assert_false(has_id(jarr(b, "items"), x));
    int same = cJSON_GetArraySize(jarr(a, "items")) == cJSON_GetArraySize(jarr(b, "items"));
    for (int k = 0; same && k < cJSON_GetArraySize(jarr(a, "items")); k++)
        same = !strcmp(jstr(cJSON_GetArrayItem(jarr(a, "items"), k), "id"), jstr(cJSON_GetArrayItem(jarr(b, "items"), k), "id"));
    assert_false(same);
    assert_string_not_equal(jstr(a, "rec_id"), jstr(b, "rec_id"));
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* Cold start: an item PUT after training, with the content of the user's
 * top item (its category, brand, title and attributes), is recommended at
 * once, right after its twin (content neighbours, coldfill.h); an item with
 * no content in common with any learned item is not pushed up. */
static void test_new_item_cold_start(void **state)
{
    (void)state;
    cJSON *a = recs("u12", "n=5");
    const char *top = jstr(cJSON_GetArrayItem(jarr(a, "items"), 0), "id");
    char path[128], twin[64];
    snprintf(twin, sizeof twin, "%s", top);
    snprintf(path, sizeof path, "/v1/items/%s", twin);
    cJSON *it = call("GET", path, NULL, 200);
    cJSON_DeleteItemFromObjectCaseSensitive(it, "id");
    cJSON_DeleteItemFromObjectCaseSensitive(it, "created");
    char *body = cJSON_PrintUnformatted(it);
    cJSON *r = call("PUT", "/v1/items/fresh_twin", body, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "created")));
    cJSON_Delete(r);
    r = call("PUT", "/v1/items/fresh_alien", "{\"title\":\"zzqx unrelated\",\"category\":\"Nowhere\"}", 200);
    cJSON_Delete(r);
    cJSON *b = recs("u12", "n=6");
    const cJSON *items = jarr(b, "items");
    int at_twin = -1, at_new = -1;
    for (int k = 0; k < cJSON_GetArraySize(items); k++) {
        const char *id = jstr(cJSON_GetArrayItem(items, k), "id");
        if (!strcmp(id, twin)) at_twin = k;
        if (!strcmp(id, "fresh_twin")) at_new = k;
    }
    assert_true(at_twin == 0);
    assert_true(at_new == 1); /* the same score as its twin; ties go to the older item */
    assert_true(jnum(cJSON_GetArrayItem(items, 0), "score") == jnum(cJSON_GetArrayItem(items, 1), "score"));
    assert_false(has_id(items, "fresh_alien"));
    /* anonymous sessions see it too */
    char anon[160];
    snprintf(anon, sizeof anon, "{\"items\":[\"%s\"],\"n\":1000}", twin);
    cJSON *c = call("POST", "/v1/recommendations", anon, 200);
    assert_true(has_id(jarr(c, "items"), "fresh_twin"));
    cJSON_Delete(c);
    cJSON_free(body);
    cJSON_Delete(it);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* A new shopper is served from context: shoppers with attribute tier=gold
 * buy i3, tier=silver ones buy i4; a new shopper with ?tier=gold gets i3
 * first, with tier=silver i4, a new user PUT with {"tier":"gold"} and no
 * events gets i3 without any argument, an anonymous session with context
 * silver gets i4; no context: the model's non-personal slate. */
static void test_new_user_context(void **state)
{
    (void)state;
    char body[256];
    for (int k = 0; k < 6; k++) {
        snprintf(body, sizeof body, "{\"attributes\":{\"tier\":\"%s\"}}", k < 3 ? "gold" : "silver");
        char path[64];
        snprintf(path, sizeof path, "/v1/users/ctx%d", k);
        cJSON_Delete(call("PUT", path, body, 200));
        for (int e = 0; e < 5; e++) {
            snprintf(body, sizeof body, "{\"user\":\"ctx%d\",\"item\":\"%s\",\"type\":\"purchase\"}", k,
                     k < 3 ? "i3" : "i4");
            post_events(body, 1);
        }
    }
    cJSON *g = recs("stranger", "n=3&tier=gold");
    assert_string_equal(jstr(g, "source"), "context");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(g, "known_user")));
    assert_string_equal(jstr(cJSON_GetArrayItem(jarr(g, "items"), 0), "id"), "i3");
    cJSON *sv = recs("stranger", "n=3&tier=silver&explain=true");
    assert_string_equal(jstr(cJSON_GetArrayItem(jarr(sv, "items"), 0), "id"), "i4");
    const cJSON *why = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(jarr(sv, "items"), 0), "reasons"), 0);
    assert_string_equal(jstr(why, "text"), "popular with shoppers like you");
    cJSON *none = recs("stranger", "n=3&tier=platinum"); /* a value nobody has: the fallback chain */
    assert_string_equal(jstr(none, "source"), "popular");
    assert_int_equal(cJSON_GetArraySize(jarr(none, "items")), 3);
    cJSON_Delete(call("PUT", "/v1/users/newgold", "{\"attributes\":{\"tier\":\"gold\"}}", 200));
    cJSON *ng = recs("newgold", "n=3");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ng, "known_user")));
    assert_string_equal(jstr(ng, "source"), "context");
    assert_string_equal(jstr(cJSON_GetArrayItem(jarr(ng, "items"), 0), "id"), "i3");
    cJSON *an = call("POST", "/v1/recommendations", "{\"n\":3,\"context\":{\"tier\":\"silver\"}}", 200);
    assert_string_equal(jstr(an, "source"), "context");
    assert_string_equal(jstr(cJSON_GetArrayItem(jarr(an, "items"), 0), "id"), "i4");
    expect_error("POST", "/v1/recommendations", "{\"context\":[1]}", 400, "bad_request", -1);
    cJSON_Delete(g);
    cJSON_Delete(sv);
    cJSON_Delete(none);
    cJSON_Delete(ng);
    cJSON_Delete(an);
}

/* Robustness: 600 requests of random methods, paths and bodies (broken
 * JSON, deep nesting, huge numbers, NUL and invalid UTF-8 bytes, wrong
 * types) each get an answer below 500 (JSON for our routes), and 50
 * connections of random bytes never stall or crash the server: health
 * answers afterwards. Seeded: the same requests every run. */
static void test_garbage(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD"};
    /* ids no other test uses: a random DELETE or PUT may well succeed */
    static const char *const paths[] = {"/v1/events", "/v1/items", "/v1/items/g1", "/v1/items/%00x", "/v1/users",
                                        "/v1/users/g1", "/v1/users/g2/recommendations?n=3&kind=%ff",
                                        "/v1/recommendations", "/v1/items/g1/similar?n=-1", "/v1/popular?n=1e9",
                                        "/v1/users/g1/ratings/g1", "/v1/admin/keys", "/v1//items", "/v1/items/a/b/c/d/e/f",
                                        "/v1/users/%2e%2e/recommendations", "/x"};
    static const char *const bodies[] = {"{", "[", "{\"user\":", "{\"events\":[1,2,3]}", "[{\"user\":null}]",
                                         "{\"user\":\"u1\",\"item\":\"i1\",\"ts\":1e999}",
                                         "{\"user\":\"u1\",\"item\":\"i1\",\"value\":\"NaN\"}",
                                         "{\"items\":{\"a\":1}}", "{\"n\":1e300}", "{\"id\":[]}", "null", "true",
                                         "\"str\"", "{\"title\":\"\\u0000\"}", "{\"attributes\":{\"a\":{\"b\":1}}}"};
    shelf_rng r;
    shelf_rng_seed(&r, 99);
    char body[8192], deep[4100];
    for (int k = 0; k < 4096; k++) deep[k] = '[';
    deep[4096] = '\0';
    for (int t = 0; t < 600; t++) {
        const char *m = methods[shelf_rng_below(&r, 7)], *p = paths[shelf_rng_below(&r, 16)];
        const char *b = NULL;
        size_t blen = 0;
        switch (shelf_rng_below(&r, 5)) {
        case 0: break;
        case 1: b = bodies[shelf_rng_below(&r, 15)]; break;
        case 2: b = deep; break;
        default: /* random bytes, NULs and invalid UTF-8 among them */
            blen = 1 + shelf_rng_below(&r, sizeof body - 1);
            for (size_t k = 0; k < blen; k++) body[k] = (char)shelf_rng_below(&r, 256);
            b = body;
        }
        resp q;
        int rc = http_try(g_port, m, p, NULL, b, b ? (blen ? blen : strlen(b)) : 0, &q);
        if (!strcmp(m, "HEAD")) { /* no body */
            resp_free(&q);
            continue;
        }
        if (rc || q.status >= 500 || q.status < 200)
            fprintf(stderr, "request %d: %s %s -> %d\n%.300s\n", t, m, p, q.status, q.raw ? q.raw : "");
        assert_int_equal(rc, 0);
        assert_true(q.status >= 200 && q.status < 500);
        if (strncmp(p, "/v1/", 4) == 0) assert_non_null(q.json);
        resp_free(&q);
    }
    for (int t = 0; t < 50; t++) {
        int fd = connect_to(g_port);
        assert_true(fd >= 0);
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        size_t n = 1 + shelf_rng_below(&r, 4000);
        for (size_t k = 0; k < n; k++) body[k] = (char)shelf_rng_below(&r, 256);
        if (t % 5 == 0) memcpy(body, "GET /v1/health HTTP/1.1\r\nX: ", 29 < n ? 29 : n);
        send_all(fd, body, n);
        shutdown(fd, SHUT_WR);
        char junk[4096];
        while (recv(fd, junk, sizeof junk, 0) > 0) {
        }
        close(fd);
    }
    cJSON *h = call("GET", "/v1/health", NULL, 200);
    assert_string_equal(jstr(h, "status"), "ok");
    cJSON_Delete(h);
}

/* With a hybrid bundle, a shopper without history is scored by the model
 * from its context (the hybrid learned the users' segment/region/device
 * rows): source "model", and the context changes the slate. */
static void test_hybrid_context(void **state)
{
    (void)state;
    char store[800], bundle[800];
    snprintf(store, sizeof store, "%s", tmp_path("hyb.db"));
    snprintf(bundle, sizeof bundle, "%s", tmp_path("hyb_bundle"));
    rm_rf(bundle);
    shelf_store *st = make_store(store);
    shelf_snapshot *sn = build(st);
    shelf_store_close(st);
    assert_true(sn->n_user_feats > 0);
    shelf_config *o = opts("hyb-epochs=5", "hyb-factors=8", "threads=1", NULL);
    shelf_model *m = NULL;
    assert_int_equal(shelf_model_new("hybrid", &m, NULL), 0);
    assert_int_equal(shelf_model_fit(m, sn, o, NULL), 0);
    shelf_err err = {0};
    assert_int_equal(shelf_model_save(m, bundle, &err), 0);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(sn);
    shelf_server *s = start(store, bundle, 1, 10);
    const unsigned main_port = g_port;
    g_port = shelf_server_port(s);
    cJSON *a = recs("nobody", "n=10&segment=a&region=north");
    assert_string_equal(jstr(a, "model"), "hybrid");
    assert_string_equal(jstr(a, "source"), "model");
    assert_int_equal(cJSON_GetArraySize(jarr(a, "items")), 10);
    cJSON *b = recs("nobody", "n=10&segment=c&region=south&device=tablet");
    cJSON *c = recs("nobody", "n=10");
    int same_ab = 1, same_bc = 1;
    for (int k = 0; k < 10; k++) {
        const char *x = jstr(cJSON_GetArrayItem(jarr(a, "items"), k), "id"), *y = jstr(cJSON_GetArrayItem(jarr(b, "items"), k), "id"),
                   *z = jstr(cJSON_GetArrayItem(jarr(c, "items"), k), "id");
        same_ab &= !strcmp(x, y);
        same_bc &= !strcmp(y, z);
    }
    assert_false(same_ab); /* another context, another slate */
    assert_false(same_bc);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    g_port = main_port;
    shelf_server_stop(s);
}

static void test_recs_n(void **state)
{
    (void)state;
    expect_error("GET", "/v1/users/u1/recommendations?n=0", NULL, 400, "bad_request", -1);
    expect_error("GET", "/v1/users/u1/recommendations?n=100000", NULL, 400, "bad_request", -1);
    expect_error("GET", "/v1/users/u1/recommendations?n=abc", NULL, 400, "bad_request", -1);
    expect_error("GET", "/v1/users/u1/recommendations?n=-3", NULL, 400, "bad_request", -1);
    expect_error("GET", "/v1/users/u1/recommendations?n=1001", NULL, 400, "bad_request", -1);
    expect_error("GET", "/v1/users/u1/recommendations?explain=maybe", NULL, 400, "bad_request", -1);
    cJSON *j = recs("u1", "n=1");
    assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 1);
    cJSON_Delete(j);
    j = recs("u1", NULL);
    assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 10); /* the default */
    cJSON_Delete(j);
    j = recs("u1", "n=1000");
    int n = cJSON_GetArraySize(jarr(j, "items"));
    assert_true(n > 10 && n <= 1000);
    cJSON_Delete(j);
}

static void test_recs_filters(void **state)
{
    (void)state;
    /* kind: the generated content items */
    cJSON *j = recs("u12", "n=1000&kind=content");
    const cJSON *it;
    assert_true(cJSON_GetArraySize(jarr(j, "items")) > 0);
    cJSON_ArrayForEach(it, jarr(j, "items")) assert_string_equal(jstr(it, "kind"), "content");
    cJSON_Delete(j);
    j = recs("u12", "n=1000&kind=no_such_kind");
    assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 0);
    cJSON_Delete(j);
    /* items moved to a new kind and category */
    for (int i = 20; i < 25; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/items/i%d", i);
        cJSON *r = call("PUT", path, "{\"kind\":\"gadget\",\"category\":\"Gadgets > Small\",\"title\":\"g\"}", 200);
        assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r, "created")));
        cJSON_Delete(r);
    }
    static const char *const qs[] = {"n=1000&kind=gadget", "n=1000&category=Gadgets",
                                     "n=1000&category=Gadgets%20%3E%20Small", "n=1000&kind=gadget&category=Gadgets"};
    for (size_t q = 0; q < sizeof qs / sizeof qs[0]; q++) {
        j = recs("u12", qs[q]);
        int n = cJSON_GetArraySize(jarr(j, "items"));
        if (n == 0) fprintf(stderr, "%s: empty slate\n", qs[q]);
        assert_true(n > 0 && n <= 5);
        cJSON_ArrayForEach(it, jarr(j, "items"))
        {
            int idx = atoi(jstr(it, "id") + 1);
            assert_true(jstr(it, "id")[0] == 'i' && idx >= 20 && idx < 25);
            if (strstr(qs[q], "kind")) assert_string_equal(jstr(it, "kind"), "gadget");
        }
        cJSON_Delete(j);
    }
    j = recs("u12", "n=1000&category=Gadgets%20%3E%20Big");
    assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 0);
    cJSON_Delete(j);
    j = recs("u12", "n=1000&category=Gadg"); /* a prefix that is not a path */
    assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 0);
    cJSON_Delete(j);
    /* unavailable items are never shown */
    cJSON_Delete(call("PUT", "/v1/items/i22", "{\"kind\":\"gadget\",\"category\":\"Gadgets > Small\",\"available\":false}", 200));
    j = recs("u12", "n=1000");
    assert_false(has_id(jarr(j, "items"), "i22"));
    cJSON_Delete(j);
    j = call("GET", "/v1/items/i22", NULL, 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "available")));
    cJSON_Delete(j);

    /* exclude */
    j = recs("u12", "n=3");
    char a[64], b[64], q[256];
    snprintf(a, sizeof a, "%s", jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "id"));
    snprintf(b, sizeof b, "%s", jstr(cJSON_GetArrayItem(jarr(j, "items"), 2), "id"));
    cJSON_Delete(j);
    snprintf(q, sizeof q, "n=1000&exclude=%s,no_such_item,%s", a, b);
    j = recs("u12", q);
    assert_false(has_id(jarr(j, "items"), a));
    assert_false(has_id(jarr(j, "items"), b));
    assert_true(cJSON_GetArraySize(jarr(j, "items")) > 0);
    cJSON_Delete(j);

    /* purchased items are excluded */
    j = call("GET", "/v1/users/u12", NULL, 200);
    cJSON *s = recs("u12", "n=1000");
    const cJSON *e;
    cJSON_ArrayForEach(e, jarr(j, "recent")) if (!strcmp(jstr(e, "type"), "purchase"))
        assert_false(has_id(jarr(s, "items"), jstr(e, "item")));
    cJSON_Delete(s);
    cJSON_Delete(j);

    /* explain */
    j = recs("u12", "n=5&explain=true");
    assert_true(cJSON_GetArraySize(jarr(j, "items")) > 0);
    cJSON_ArrayForEach(it, jarr(j, "items"))
    {
        const cJSON *rs = jarr(it, "reasons");
        assert_true(cJSON_GetArraySize(rs) > 0);
        const cJSON *r0 = cJSON_GetArrayItem(rs, 0);
        assert_true(jstr(r0, "text") && strlen(jstr(r0, "text")) > 0);
        const cJSON *ri = cJSON_GetObjectItemCaseSensitive(r0, "item");
        assert_true(cJSON_IsString(ri) || cJSON_IsNull(ri));
        if (cJSON_IsString(ri)) assert_non_null(strstr(jstr(r0, "text"), ri->valuestring));
    }
    cJSON_Delete(j);

    /* an unknown user: a non-personal slate */
    j = recs("t_stranger", "n=10");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "known_user")));
    assert_string_equal(jstr(j, "user"), "t_stranger");
    assert_true(cJSON_GetArraySize(jarr(j, "items")) > 0);
    cJSON_Delete(j);
    expect_error("GET", "/v1/users/t_stranger", NULL, 404, "not_found", -1); /* not created by asking */
}

static void test_recs_anonymous(void **state)
{
    (void)state;
    cJSON *j = call("POST", "/v1/recommendations",
                    "{\"items\":[\"i1\",\"i2\",\"i3\"],\"types\":[\"view\",\"view\",\"cart\"],\"n\":20,\"explain\":true}", 200);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "user")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "known_user")));
    assert_string_equal(jstr(j, "model"), "transformer");
    const cJSON *items = jarr(j, "items");
    assert_true(cJSON_GetArraySize(items) > 0 && cJSON_GetArraySize(items) <= 20);
    assert_false(has_id(items, "i1"));
    assert_false(has_id(items, "i2"));
    assert_false(has_id(items, "i3"));
    const cJSON *it;
    cJSON_ArrayForEach(it, items) assert_true(cJSON_GetArraySize(jarr(it, "reasons")) > 0);
    cJSON_Delete(j);
    /* no items: still a slate; exclude, kind */
    j = call("POST", "/v1/recommendations", "{\"n\":5,\"exclude\":[\"i0\"],\"kind\":\"content\"}", 200);
    cJSON_ArrayForEach(it, jarr(j, "items")) assert_string_equal(jstr(it, "kind"), "content");
    assert_false(has_id(jarr(j, "items"), "i0"));
    cJSON_Delete(j);
    /* unknown items are skipped and counted */
    j = call("POST", "/v1/recommendations", "{\"items\":[\"i1\",\"no_such_item\",\"i2\"],\"n\":5}", 200);
    assert_int_equal((int)jnum(j, "skipped_items"), 1);
    assert_string_equal(jstr(j, "source"), "model");
    assert_false(has_id(jarr(j, "items"), "i1"));
    cJSON_Delete(j);
    expect_error("POST", "/v1/recommendations", "{\"items\":[\"i1\",\"i2\"],\"types\":[\"view\"]}", 400, "bad_request", -1);
    expect_error("POST", "/v1/recommendations", "{\"items\":[\"i1\",\"i2\"],\"types\":[\"view\",\"teleport\"]}", 400,
                 "bad_request", 1);
    expect_error("POST", "/v1/recommendations", "{\"items\":\"i1\"}", 400, "bad_request", -1);
    expect_error("POST", "/v1/recommendations", "{\"n\":0}", 400, "bad_request", -1);
    expect_error("POST", "/v1/recommendations", "{\"n\":\"5\"}", 400, "bad_request", -1);
    expect_error("POST", "/v1/recommendations", "[1]", 400, "bad_request", -1);
}

/* a full slate with non-zero scores from the fallback chain */
static void expect_fallback_slate(cJSON *j, int n)
{
    assert_string_equal(jstr(j, "source"), "popular");
    const cJSON *items = jarr(j, "items"), *it;
    assert_int_equal(cJSON_GetArraySize(items), n);
    double prev = INFINITY;
    cJSON_ArrayForEach(it, items) {
        double sc = jnum(it, "score");
        assert_true(sc > 0 && sc <= prev);
        prev = sc;
    }
}

/* Shoppers without usable history: an unknown id, a session whose items the
 * catalogue does not know, a shopper whose history was deleted: each gets a
 * full slate of popular items, never the catalogue in order with score 0. */
static void test_fallback(void **state)
{
    (void)state;
    cJSON *j = recs("fb_never_seen", "n=10&explain=true");
    expect_fallback_slate(j, 10);
    const cJSON *why = cJSON_GetArrayItem(jarr(cJSON_GetArrayItem(jarr(j, "items"), 0), "reasons"), 0);
    assert_string_equal(jstr(why, "text"), "popular with shoppers");
    /* the most popular item comes first: not catalogue order */
    cJSON *pop = call("GET", "/v1/popular?n=1", NULL, 200);
    assert_string_equal(jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "id"),
                        jstr(cJSON_GetArrayItem(jarr(pop, "items"), 0), "id"));
    cJSON_Delete(pop);
    cJSON_Delete(j);
    j = call("POST", "/v1/recommendations", "{\"items\":[\"fb_no_item\",\"fb_no_item2\"],\"n\":7}", 200);
    expect_fallback_slate(j, 7);
    assert_int_equal((int)jnum(j, "skipped_items"), 2);
    cJSON_Delete(j);
    post_events("[{\"user\":\"fb_gone\",\"item\":\"i5\",\"type\":\"purchase\"},"
                "{\"user\":\"fb_gone\",\"item\":\"i6\",\"type\":\"view\"}]", 2);
    cJSON_Delete(call("DELETE", "/v1/users/fb_gone", NULL, 200));
    j = recs("fb_gone", "n=8");
    expect_fallback_slate(j, 8);
    cJSON_Delete(j);
    /* within a kind: still full where the kind has enough items */
    j = recs("fb_never_seen", "n=3&kind=content");
    expect_fallback_slate(j, 3);
    const cJSON *it;
    cJSON_ArrayForEach(it, jarr(j, "items")) assert_string_equal(jstr(it, "kind"), "content");
    cJSON_Delete(j);
}

/* Exclude-seen: purchases are hidden by default, views come back; per
 * request, types and windows */
static void test_exclude_seen(void **state)
{
    (void)state;
    char body[512];
    long now = (long)time(NULL);
    /* the shopper's top items first, to make sure they would be shown */
    cJSON *j = recs("u7", "n=2");
    char top0[64], top1[64];
    snprintf(top0, sizeof top0, "%s", jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "id"));
    snprintf(top1, sizeof top1, "%s", jstr(cJSON_GetArrayItem(jarr(j, "items"), 1), "id"));
    cJSON_Delete(j);
    snprintf(body, sizeof body,
             "[{\"user\":\"u7\",\"item\":\"%s\",\"type\":\"view\",\"ts\":%ld},"
             "{\"user\":\"u7\",\"item\":\"%s\",\"type\":\"view\",\"ts\":%ld}]",
             top0, now - 7200, top1, now - 60);
    post_events(body, 2);
    j = recs("u7", "n=1000"); /* views come back by default */
    assert_true(has_id(jarr(j, "items"), top0) || has_id(jarr(j, "items"), top1));
    cJSON_Delete(j);
    j = recs("u7", "n=1000&exclude_seen=view"); /* every view, ever */
    assert_false(has_id(jarr(j, "items"), top0));
    assert_false(has_id(jarr(j, "items"), top1));
    cJSON_Delete(j);
    j = recs("u7", "n=1000&exclude_seen=view:1h"); /* the view of a minute ago only */
    assert_false(has_id(jarr(j, "items"), top1));
    cJSON_Delete(j);
    j = recs("u7", "n=1000&exclude_seen=none"); /* even purchases may come back */
    assert_true(cJSON_GetArraySize(jarr(j, "items")) > 0);
    cJSON_Delete(j);
    expect_error("GET", "/v1/users/u7/recommendations?exclude_seen=teleport", NULL, 400, "bad_request", -1);
    expect_error("GET", "/v1/users/u7/recommendations?exclude_seen=view:7x", NULL, 400, "bad_request", -1);
    snprintf(body, sizeof body, "{\"items\":[\"%s\"],\"types\":[\"purchase\"],\"exclude_seen\":\"none\",\"n\":1000}", top1);
    j = call("POST", "/v1/recommendations", body, 200);
    cJSON_Delete(j);
    expect_error("POST", "/v1/recommendations", "{\"exclude_seen\":5}", 400, "bad_request", -1);
}

static void test_similar(void **state)
{
    (void)state;
    cJSON *j = call("GET", "/v1/items/i1/similar?n=50", NULL, 200);
    assert_string_equal(jstr(j, "item"), "i1");
    const cJSON *items = jarr(j, "items");
    assert_true(cJSON_GetArraySize(items) > 0 && cJSON_GetArraySize(items) <= 50);
    assert_false(has_id(items, "i1"));
    const cJSON *it;
    cJSON_ArrayForEach(it, items) jnum(it, "score");
    cJSON_Delete(j);
    for (int i = 0; i < 100; i += 7) {
        char path[96], id[16];
        snprintf(id, sizeof id, "i%d", i);
        snprintf(path, sizeof path, "/v1/items/%s/similar?n=1000", id);
        resp r = http("GET", path, NULL);
        if (r.status == 200) assert_false(has_id(jarr(r.json, "items"), id));
        else assert_int_equal(r.status, 404); /* retired by an earlier test */
        resp_free(&r);
    }
    j = call("GET", "/v1/items/i1/similar?n=3", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(jarr(j, "items")), 3);
    cJSON_Delete(j);
    expect_error("GET", "/v1/items/no_such_item/similar", NULL, 404, "not_found", -1);
    expect_error("GET", "/v1/items/i1/similar?n=0", NULL, 400, "bad_request", -1);
}

static void test_popular(void **state)
{
    (void)state;
    char body[4096];
    for (int rep = 0; rep < 2; rep++) {
        size_t k = (size_t)snprintf(body, sizeof body, "[");
        for (int i = 0; i < 45; i++)
            k += (size_t)snprintf(body + k, sizeof body - k, "%s{\"user\":\"t_pop%d\",\"item\":\"i77\"}", i ? "," : "", i);
        snprintf(body + k, sizeof body - k, "]");
        post_events(body, 45);
    }
    cJSON *j = call("GET", "/v1/popular?n=5", NULL, 200);
    const cJSON *items = jarr(j, "items");
    assert_true(cJSON_GetArraySize(items) > 0 && cJSON_GetArraySize(items) <= 5);
    char first[32];
    snprintf(first, sizeof first, "%s", jstr(cJSON_GetArrayItem(items, 0), "id"));
    if (strcmp(first, "i77")) cJSON_Delete(j);
    assert_string_equal(first, "i77");
    double prev = INFINITY;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        assert_true(jnum(it, "score") <= prev);
        prev = jnum(it, "score");
    }
    cJSON_Delete(j);
    /* filters apply */
    j = call("GET", "/v1/popular?n=1000&kind=gadget", NULL, 200);
    cJSON_ArrayForEach(it, jarr(j, "items"))
    {
        int idx = atoi(jstr(it, "id") + 1);
        assert_true(idx >= 20 && idx < 25);
    }
    assert_false(has_id(jarr(j, "items"), "i77"));
    cJSON_Delete(j);
    expect_error("GET", "/v1/popular?n=abc", NULL, 400, "bad_request", -1);
}

/* one event stamped in the future does not outweigh the counts of now */
static void test_popular_future_ts(void **state)
{
    (void)state;
    char body[160];
    snprintf(body, sizeof body, "{\"user\":\"t_future\",\"item\":\"i88\",\"ts\":%lld}",
             (long long)time(NULL) + 10LL * 365 * 86400);
    post_events(body, 1);
    cJSON *j = call("GET", "/v1/popular?n=5", NULL, 200);
    char first[32];
    snprintf(first, sizeof first, "%s", jstr(cJSON_GetArrayItem(jarr(j, "items"), 0), "id"));
    cJSON_Delete(j);
    if (strcmp(first, "i77"))
        fprintf(stderr, "popular: one event at now + 10 years for %s outranks 90 events of now for i77\n", first);
    assert_string_equal(first, "i77");
}

static void test_ratings(void **state)
{
    (void)state;
    expect_error("GET", "/v1/users/u1/ratings/i1", NULL, 422, "unprocessable", -1);
    expect_error("GET", "/v1/users/t_nobody/ratings/i1", NULL, 404, "not_found", -1);
    expect_error("GET", "/v1/users/u1/ratings/no_such_item", NULL, 404, "not_found", -1);
}

static void test_routes_404_405(void **state)
{
    (void)state;
    expect_error("GET", "/v1/nothing", NULL, 404, "not_found", -1);
    expect_error("GET", "/nothing", NULL, 404, "not_found", -1);
    expect_error("GET", "/v2/health", NULL, 404, "not_found", -1);
    expect_error("GET", "/v1/users/u1/recommendations/extra/more", NULL, 404, "not_found", -1);
    expect_error("GET", "/v1/events", NULL, 405, "method_not_allowed", -1);
    expect_error("DELETE", "/v1/health", NULL, 405, "method_not_allowed", -1);
    expect_error("POST", "/v1/items/i1", "{}", 405, "method_not_allowed", -1);
    expect_error("POST", "/metrics", "{}", 405, "method_not_allowed", -1);
    expect_error("GET", "/v1/admin/reload", NULL, 405, "method_not_allowed", -1);
    resp r = http("PUT", "/v1/events", "{}");
    assert_int_equal(r.status, 405);
    assert_non_null(strcasestr(r.raw, "\r\nAllow:"));
    char *ct = strcasestr(r.raw, "\r\nContent-Type:");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "application/json"));
    resp_free(&r);
}

/* ---- auth ----------------------------------------------------------------------------------- */

static int find_key_id(void *ctx, const shelf_api_key *k)
{
    if (!strcmp(k->name, "r")) *(int64_t *)ctx = k->id;
    return 0;
}

static void test_auth(void **state)
{
    (void)state;
    shelf_store *st = make_store(p_auth);
    char k_read[SHELF_API_KEY_LEN + 1], k_write[SHELF_API_KEY_LEN + 1], k_admin[SHELF_API_KEY_LEN + 1],
        k_revoked[SHELF_API_KEY_LEN + 1];
    int64_t rid;
    assert_int_equal(shelf_store_key_create(st, SHELF_SCOPE_READ, "r", k_read, NULL), 0);
    assert_int_equal(shelf_store_key_create(st, SHELF_SCOPE_WRITE, "w", k_write, NULL), 0);
    assert_int_equal(shelf_store_key_create(st, SHELF_SCOPE_ADMIN, "a", k_admin, NULL), 0);
    assert_int_equal(shelf_store_key_create(st, SHELF_SCOPE_ADMIN, "gone", k_revoked, &rid), 0);
    assert_int_equal(shelf_store_key_revoke(st, rid), 0);
    shelf_store_close(st);
    shelf_server *s = start(p_auth, p_bundles, 0, 10);
    const unsigned main_port = g_port;
    g_port = shelf_server_port(s);

    /* open routes */
    g_key = NULL;
    cJSON_Delete(call("GET", "/v1/health", NULL, 200));
    resp r = http("GET", "/metrics", NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = http("GET", "/v1/openapi.yaml", NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* no key, unknown key, revoked key: 401 JSON */
    expect_error("GET", "/v1/items/i1", NULL, 401, "unauthorized", -1);
    expect_error("POST", "/v1/events", "{\"user\":\"t_a\",\"item\":\"i1\"}", 401, "unauthorized", -1);
    expect_error("GET", "/v1/users/u1/recommendations", NULL, 401, "unauthorized", -1);
    g_key = "shelf_0000000000000000000000000000000000000000000000000000000000000000";
    expect_error("GET", "/v1/items/i1", NULL, 401, "unauthorized", -1);
    g_key = k_revoked;
    expect_error("GET", "/v1/items/i1", NULL, 401, "unauthorized", -1);
    expect_error("POST", "/v1/admin/reload", NULL, 401, "unauthorized", -1);
    /* read */
    g_key = k_read;
    cJSON_Delete(call("GET", "/v1/items/i1", NULL, 200));
    cJSON_Delete(recs("u1", "n=3"));
    cJSON_Delete(call("POST", "/v1/recommendations", "{\"items\":[\"i1\"]}", 200));
    cJSON_Delete(call("GET", "/v1/popular", NULL, 200));
    expect_error("POST", "/v1/events", "{\"user\":\"t_a\",\"item\":\"i1\"}", 403, "forbidden", -1);
    expect_error("PUT", "/v1/items/t_ai", "{}", 403, "forbidden", -1);
    expect_error("DELETE", "/v1/items/i2", NULL, 403, "forbidden", -1);
    /* write */
    g_key = k_write;
    post_events("{\"user\":\"t_a\",\"item\":\"i1\"}", 1);
    cJSON_Delete(call("PUT", "/v1/items/t_ai", "{}", 200));
    cJSON_Delete(call("GET", "/v1/users/t_a", NULL, 200)); /* read nests in write */
    expect_error("DELETE", "/v1/items/i2", NULL, 403, "forbidden", -1);
    expect_error("DELETE", "/v1/users/t_a", NULL, 403, "forbidden", -1);
    expect_error("POST", "/v1/admin/reload", NULL, 403, "forbidden", -1);
    expect_error("POST", "/v1/admin/keys", "{\"scope\":\"admin\"}", 403, "forbidden", -1);
    /* admin */
    g_key = k_admin;
    cJSON *j = call("DELETE", "/v1/items/t_ai", NULL, 200);
    cJSON_Delete(j);
    j = call("POST", "/v1/admin/reload", NULL, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "reloaded")));
    cJSON_Delete(j);
    j = call("POST", "/v1/admin/keys", "{\"scope\":\"write\",\"name\":\"made over http\"}", 200);
    assert_string_equal(jstr(j, "scope"), "write");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "id"));
    char k_new[128];
    assert_non_null(jstr(j, "key"));
    snprintf(k_new, sizeof k_new, "%s", jstr(j, "key"));
    cJSON_Delete(j);
    expect_error("POST", "/v1/admin/keys", "{\"scope\":\"root\"}", 400, "bad_request", -1);
    g_key = k_new;
    post_events("{\"user\":\"t_a\",\"item\":\"i2\"}", 1);
    j = call("GET", "/v1/users/t_a", NULL, 200);
    assert_int_equal((int)jnum(j, "events"), 2);
    cJSON_Delete(j);
    expect_error("DELETE", "/v1/users/t_a", NULL, 403, "forbidden", -1);
    /* revoked in the store (another handle, as `shelf keys revoke` does)
     * while the server runs: refused within a few seconds, no restart */
    g_key = k_read;
    cJSON_Delete(call("GET", "/v1/items/i1", NULL, 200));
    st = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_store_open(p_auth, 0, &st, &err), 0);
    int64_t read_id = -1;
    assert_int_equal(shelf_store_foreach_key(st, find_key_id, &read_id), 0);
    assert_true(read_id >= 0);
    assert_int_equal(shelf_store_key_revoke(st, read_id), 0);
    shelf_store_close(st);
    int status = 200;
    for (int k = 0; k < 100 && status == 200; k++) {
        resp q = http("GET", "/v1/items/i1", NULL);
        status = q.status;
        resp_free(&q);
        if (status == 200) usleep(100000);
    }
    assert_int_equal(status, 401);
    g_key = NULL;
    g_port = main_port;
    shelf_server_stop(s);
}

/* ---- drain ---------------------------------------------------------------------------------- */

typedef struct loader {
    unsigned port;
    atomic_int stop;
    atomic_long ok, bad, refused;
    int id;
    pthread_t t;
} loader;

static void *load_loop(void *p)
{
    loader *l = p;
    int k = 0;
    while (!atomic_load(&l->stop)) {
        char path[128];
        resp r;
        if (k % 3 == 2)
            snprintf(path, sizeof path, "/v1/items/i%d/similar?n=10", (l->id * 13 + k) % 100);
        else
            snprintf(path, sizeof path, "/v1/users/u%d/recommendations?n=10", (l->id * 31 + k) % 200);
        int rc = k % 3 == 1 ? http_try(l->port, "POST", "/v1/recommendations", NULL, "{\"items\":[\"i3\",\"i4\"],\"n\":10}", 0, &r)
                            : http_try(l->port, "GET", path, NULL, NULL, 0, &r);
        if (rc) {
            atomic_fetch_add(&l->refused, 1);
            usleep(2000);
        }
        else if (r.status == 200 || (r.status == 404 && k % 3 == 2)) atomic_fetch_add(&l->ok, 1);
        else {
            atomic_fetch_add(&l->bad, 1);
            fprintf(stderr, "load %d: %d %s\n", l->id, r.status, r.body);
        }
        resp_free(&r);
        k++;
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void test_drain(void **state)
{
    (void)state;
    shelf_store *st = make_store(p_drain);
    shelf_store_close(st);
    shelf_server *s = start(p_drain, p_bundles, 1, 3);
    unsigned port = shelf_server_port(s);
    /* a client mid-request: headers and part of the body, then silence */
    int fd = connect_to(port);
    assert_true(fd >= 0);
    static const char head[] = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               "Content-Length: 200\r\n\r\n[{\"user\":\"t_dr\",";
    assert_int_equal(send_all(fd, head, sizeof head - 1), 0);
    /* a committed event that must survive the stop */
    resp r;
    assert_int_equal(http_try(port, "POST", "/v1/events", NULL, "{\"user\":\"t_drained\",\"item\":\"i1\"}", 0, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* and a client streaming requests */
    loader l = {.port = port, .id = 1};
    assert_int_equal(pthread_create(&l.t, NULL, load_loop, &l), 0);
    usleep(300000);
    double t0 = now_s();
    shelf_server_stop(s);
    double dt = now_s() - t0;
    atomic_store(&l.stop, 1);
    pthread_join(l.t, NULL);
    close(fd);
    fprintf(stderr, "drain: stop took %.2f s; streaming client: %ld ok, %ld failed, %ld without answer\n", dt,
            (long)l.ok, (long)l.bad, (long)l.refused);
    assert_true(l.ok > 0);
    assert_true(dt < 15.0);
    /* the server is gone */
    assert_int_not_equal(http_try(port, "GET", "/v1/health", NULL, NULL, 0, &r), 0);
    resp_free(&r);
    /* what was committed is in the store */
    assert_int_equal(shelf_store_open(p_drain, 0, &st, NULL), 0);
    uint32_t idx;
    assert_int_equal(shelf_store_user_idx(st, "t_drained", 9, 0, &idx, NULL), 0);
    shelf_store_close(st);
}

/* ---- hot swap -------------------------------------------------------------------------------- */

static void test_hot_swap(void **state)
{
    (void)state;
    cJSON *j = call("GET", "/v1/health", NULL, 200);
    assert_true(strncmp(jstr(cJSON_GetObjectItemCaseSensitive(j, "model"), "version"), "v1@", 3) == 0);
    cJSON_Delete(j);
    /* the newer bundle arrives in the directory of bundles */
    char from[800], to[800];
    snprintf(from, sizeof from, "%s/v2", p_stage);
    snprintf(to, sizeof to, "%s/v2", p_bundles);
    assert_int_equal(rename(from, to), 0);

    enum { NT = 4 };
    loader l[NT];
    for (int t = 0; t < NT; t++) {
        memset(&l[t], 0, sizeof l[t]);
        l[t].port = g_port;
        l[t].id = t;
        assert_int_equal(pthread_create(&l[t].t, NULL, load_loop, &l[t]), 0);
    }
    usleep(200000);
    for (int k = 0; k < 10; k++) {
        if (k % 2 == 0) {
            shelf_err err = {0};
            int rc = shelf_server_reload(g_srv, &err);
            if (rc) fprintf(stderr, "reload: %s\n", err.msg);
            assert_int_equal(rc, 0);
        } else {
            j = call("POST", "/v1/admin/reload", NULL, 200);
            assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "reloaded")));
            assert_string_equal(jstr(j, "model"), "transformer");
            assert_true(strncmp(jstr(j, "version"), "v2@", 3) == 0);
            cJSON_Delete(j);
        }
        usleep(100000);
    }
    for (int t = 0; t < NT; t++) atomic_store(&l[t].stop, 1);
    long ok = 0, bad = 0, refused = 0;
    for (int t = 0; t < NT; t++) {
        pthread_join(l[t].t, NULL);
        ok += l[t].ok;
        bad += l[t].bad;
        refused += l[t].refused;
    }
    fprintf(stderr, "hot swap: %ld requests answered 200, %ld otherwise, %ld without answer\n", ok, bad, refused);
    assert_true(ok > 0);
    assert_int_equal(bad, 0);
    assert_int_equal(refused, 0);
    j = call("GET", "/v1/health", NULL, 200);
    assert_true(strncmp(jstr(cJSON_GetObjectItemCaseSensitive(j, "model"), "version"), "v2@", 3) == 0);
    cJSON_Delete(j);
    j = recs("u1", "n=5");
    assert_true(strncmp(jstr(j, "model_version"), "v2@", 3) == 0);
    cJSON_Delete(j);
    resp r = http("GET", "/metrics", NULL);
    assert_non_null(strstr(r.body, "version=\"v2@"));
    const char *ro = strstr(r.body, "shelf_reloads_total{result=\"ok\"} ");
    assert_non_null(ro);
    assert_true(atoi(ro + strlen("shelf_reloads_total{result=\"ok\"} ")) >= 10);
    resp_free(&r);
}

/* ---- everything at once (the ThreadSanitizer leg of .ci/run runs this) ------------------------- */

typedef struct mixer {
    unsigned port;
    atomic_int *stop;
    int id;
    atomic_long ok, bad;
    pthread_t t;
} mixer;

static void mix_req(mixer *m, const char *method, const char *path, const char *body, int ok2)
{
    resp r;
    int rc = http_try(m->port, method, path, NULL, body, 0, &r);
    if (!rc && (r.status == 200 || r.status == ok2)) atomic_fetch_add(&m->ok, 1);
    else {
        atomic_fetch_add(&m->bad, 1);
        fprintf(stderr, "mix %d: %s %s: %d %s\n", m->id, method, path, rc ? -1 : r.status, rc ? why_none : r.body);
    }
    resp_free(&r);
}

/* writer: new items (the item arrays grow), new shoppers with attributes
 * (context values are interned) and their events, deletions of both */
static void *mix_writer(void *p)
{
    mixer *m = p;
    char path[128], body[512];
    /* first 100 x 50 new shoppers (the test server takes 50 events, 4 kB): the
     * user index crosses a page of the live state (4096) while the readers
     * look users up */
    for (int b = 0; b < 100 && m->id == 0 && !atomic_load(m->stop); b++) {
        size_t cap = 50 * 64, len = 0;
        char *big = malloc(cap);
        assert_non_null(big);
        len += (size_t)snprintf(big + len, cap - len, "[");
        for (int i = 0; i < 50; i++)
            len += (size_t)snprintf(big + len, cap - len, "%s{\"user\":\"bulk%d_%d\",\"item\":\"i%d\"}", i ? "," : "",
                                    b, i, i % 100);
        snprintf(big + len, cap - len, "]");
        mix_req(m, "POST", "/v1/events", big, 200);
        free(big);
    }
    for (int k = 0; !atomic_load(m->stop); k++) {
        snprintf(path, sizeof path, "/v1/items/mx%d_%d", m->id, k);
        snprintf(body, sizeof body, "{\"kind\":\"%s\",\"category\":\"Mix/C%d\",\"price\":%d}",
                 k % 5 ? "product" : "content", k % 7, 1 + k % 50);
        mix_req(m, "PUT", path, body, 201);
        snprintf(path, sizeof path, "/v1/users/mu%d_%d", m->id, k);
        snprintf(body, sizeof body, "{\"attributes\":{\"segment\":\"s%d\",\"region\":\"r%d_%d\"}}", k % 3, m->id, k);
        mix_req(m, "PUT", path, body, 201);
        snprintf(body, sizeof body,
                 "[{\"user\":\"mu%d_%d\",\"item\":\"mx%d_%d\",\"type\":\"purchase\"},"
                 "{\"user\":\"mu%d_%d\",\"item\":\"i%d\",\"type\":\"view\"},"
                 "{\"user\":\"u%d\",\"item\":\"mx%d_%d\",\"type\":\"view\"}]",
                 m->id, k, m->id, k, m->id, k, k % 100, k % 200, m->id, k);
        mix_req(m, "POST", "/v1/events", body, 200);
        if (k % 3 == 2) {
            snprintf(path, sizeof path, "/v1/items/mx%d_%d", m->id, k - 2);
            mix_req(m, "DELETE", path, NULL, 404);
            snprintf(path, sizeof path, "/v1/users/mu%d_%d", m->id, k - 1);
            mix_req(m, "DELETE", path, NULL, 404);
        }
    }
    return NULL;
}

/* reader: slates (known, new, bulk-created and unknown shoppers, anonymous),
 * similar, popular */
static void *mix_reader(void *p)
{
    mixer *m = p;
    char path[160];
    for (int k = 0; !atomic_load(m->stop); k++) {
        switch (k % 6) {
        case 0: snprintf(path, sizeof path, "/v1/users/u%d/recommendations?n=10&explain=true", k % 200); break;
        case 1: snprintf(path, sizeof path, "/v1/users/mu0_%d/recommendations?n=10&segment=s1", k / 6); break;
        case 2: snprintf(path, sizeof path, "/v1/items/i%d/similar?n=10&kind=product", k % 100); break;
        case 3: snprintf(path, sizeof path, "/v1/popular?n=10&category=Mix"); break;
        case 4: snprintf(path, sizeof path, "/v1/users/bulk%d_%d/recommendations?n=5&region=r0_%d", k % 100, k % 50, k / 6); break;
        default: snprintf(path, sizeof path, "/v1/users/u%d/recommendations?n=20&kind=content", k % 200); break;
        }
        if (k % 7 == 3) mix_req(m, "POST", "/v1/recommendations", "{\"items\":[\"i3\",\"i4\"],\"n\":10,\"context\":{\"segment\":\"s2\"}}", 200);
        else mix_req(m, "GET", path, NULL, 404);
    }
    return NULL;
}

static void test_concurrency_mix(void **state)
{
    (void)state;
    atomic_int stop = 0;
    enum { NW = 2, NR = 3 };
    mixer w[NW], r[NR];
    for (int t = 0; t < NW + NR; t++) {
        mixer *m = t < NW ? &w[t] : &r[t - NW];
        memset(m, 0, sizeof *m);
        m->port = g_port;
        m->stop = &stop;
        m->id = t;
        assert_int_equal(pthread_create(&m->t, NULL, t < NW ? mix_writer : mix_reader, m), 0);
    }
    for (int k = 0; k < 4; k++) { /* reloads while all that runs */
        usleep(250000);
        shelf_err err = {0};
        assert_int_equal(shelf_server_reload(g_srv, &err), 0);
    }
    usleep(250000);
    atomic_store(&stop, 1);
    long ok = 0, bad = 0;
    for (int t = 0; t < NW + NR; t++) {
        mixer *m = t < NW ? &w[t] : &r[t - NW];
        pthread_join(m->t, NULL);
        ok += m->ok;
        bad += m->bad;
    }
    fprintf(stderr, "concurrency mix: %ld requests answered as expected, %ld not\n", ok, bad);
    assert_true(ok > 50);
    assert_int_equal(bad, 0);
    /* what was deleted is never shown afterwards */
    expect_never_shown("mx0_0");
    cJSON *j = call("GET", "/v1/health", NULL, 200);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health),          cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_openapi),         cmocka_unit_test(test_items_put_get),
        cmocka_unit_test(test_items_batch),     cmocka_unit_test(test_item_delete),
        cmocka_unit_test(test_users),           cmocka_unit_test(test_user_delete),
        cmocka_unit_test(test_events_forms),    cmocka_unit_test(test_user_recent_order),
        cmocka_unit_test(test_events_bad_batch),
        cmocka_unit_test(test_events_limits),   cmocka_unit_test(test_events_malformed),
        cmocka_unit_test(test_realtime),        cmocka_unit_test(test_recs_n),
        cmocka_unit_test(test_new_item_cold_start),
        cmocka_unit_test(test_new_user_context),
        cmocka_unit_test(test_hybrid_context),
        cmocka_unit_test(test_recs_filters),    cmocka_unit_test(test_recs_anonymous),
        cmocka_unit_test(test_fallback),        cmocka_unit_test(test_exclude_seen),
        cmocka_unit_test(test_similar),         cmocka_unit_test(test_popular),
        cmocka_unit_test(test_popular_future_ts),
        cmocka_unit_test(test_ratings),         cmocka_unit_test(test_routes_404_405),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_auth),            cmocka_unit_test(test_drain),
        cmocka_unit_test(test_hot_swap),        cmocka_unit_test(test_concurrency_mix),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
