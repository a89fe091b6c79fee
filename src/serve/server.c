/* server.c: the server's life: start (store, live state, model, writer,
 * the libmicrohttpd daemon: epoll, internal thread pool), drain and stop;
 * the health and API-description routes. The rest lives by concern:
 * http.c (routes, responses), auth.c, metrics.c, engine.c (the model
 * generation), live.c (users, items, popularity), ingest.c (the writer),
 * routes.c and recs.c (the handlers). */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "serve_int.h"

#include "rank/pacing_int.h"
#include "store/meta_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void srv_rwlock_init(pthread_rwlock_t *l)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(l, &a);
    pthread_rwlockattr_destroy(&a);
}

extern const char shelf__openapi_yaml[];
extern const size_t shelf__openapi_yaml_len;

/* ---- health and the API description ------------------------------------------------------------------------ */

/* Shoppers or items deleted after e's bundle was written: its tensors still
 * hold their data (issue 15). Adds "retrain" to the health's model object
 * (how many, since when, by when, the command) and returns 1 once the time
 * to retrain (--retrain-within) has passed. */
static int retrain_due(shelf_server *s, const srv_engine *e, cJSON *m)
{
    uint64_t n = 0;
    double first = 0;
    pthread_mutex_lock(&s->keys_mu); /* the read-only connection (auth.c) */
    int rc = s->keys_st && e->created > 0 ? shelf__store_deletions_since(s->keys_st, e->created, &n, &first) : 0;
    pthread_mutex_unlock(&s->keys_mu);
    if (rc || !n) return 0;
    cJSON *r = cJSON_AddObjectToObject(m, "retrain");
    double by = first + s->o.retrain_within_s;
    cJSON_AddNumberToObject(r, "deletions", (double)n);
    cJSON_AddNumberToObject(r, "since", first);
    cJSON_AddNumberToObject(r, "by", by);
    char cmd[1400];
    /* --bundle DIR/ writes the next bundle of a directory of bundles, which a reload takes */
    int one = !s->bundle_path || !strcmp(e->path, s->bundle_path);
    snprintf(cmd, sizeof cmd, "shelf train --store %s --model %s --bundle %s%s, then POST /v1/admin/reload",
             s->store_path, e->kind, one ? "NEW_DIR" : s->bundle_path, one ? " (and serve it)" : "/");
    cJSON_AddStringToObject(r, "command", cmd);
    return srv_now() >= by;
}

void srv_write_outcome(shelf_server *s, int rc, const char *what, const char *msg)
{
    if (!rc && !atomic_load(&s->write_failing)) return; /* the common case: no lock */
    pthread_mutex_lock(&s->health_mu);
    if (rc) {
        if (!atomic_load(&s->write_failing)) s->write_error_since = srv_now();
        snprintf(s->write_error, sizeof s->write_error, "%s: %s", what, msg);
        atomic_store(&s->write_failing, 1);
    } else {
        atomic_store(&s->write_failing, 0);
    }
    pthread_mutex_unlock(&s->health_mu);
}

int srv_route_health(srv_req *r, char *const *arg)
{
    (void)arg;
    shelf_server *s = r->srv;
    srv_engine *e = srv_engine_get(s);
    cJSON *o = cJSON_CreateObject();
    int failing = atomic_load(&s->write_failing);
    cJSON_AddStringToObject(o, "status", atomic_load(&s->draining) ? "draining" : failing ? "degraded" : "ok");
    if (failing) { /* reads go on; writes fail (disk full, I/O error, the store locked by another process) */
        cJSON *w = cJSON_AddObjectToObject(o, "write_error");
        pthread_mutex_lock(&s->health_mu);
        cJSON_AddStringToObject(w, "message", s->write_error);
        cJSON_AddNumberToObject(w, "since", s->write_error_since);
        pthread_mutex_unlock(&s->health_mu);
    }
    if (e->model) {
        cJSON *m = cJSON_AddObjectToObject(o, "model");
        cJSON_AddStringToObject(m, "kind", e->kind);
        cJSON_AddStringToObject(m, "version", e->version);
        cJSON_AddNumberToObject(m, "age_s", e->created > 0 ? srv_now() - e->created : 0);
        srv_engine_describe(s, e, m);
        if (retrain_due(s, e, m) && !failing) cJSON_ReplaceItemInObject(o, "status", cJSON_CreateString("degraded"));
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

int srv_route_openapi(srv_req *r, char *const *arg)
{
    (void)arg;
    char *t = malloc(shelf__openapi_yaml_len + 1);
    if (!t) return srv_error(r, 500, "internal", -1, "out of memory");
    memcpy(t, shelf__openapi_yaml, shelf__openapi_yaml_len);
    return srv_text(r, 200, "application/yaml", t, shelf__openapi_yaml_len);
}

/* ---- start / stop ---------------------------------------------------------------------------------------------- */

static void free_server(shelf_server *s)
{
    srv_engine_put(s->engine);
    srv_state_free(s);
    if (s->access_log) fclose(s->access_log);
    /* the read-only keys connection first: the writer's close, the last
     * one, then checkpoints the WAL into the store file */
    srv_keys_close(s);
    shelf_store_close(s->st);
    free(s->keys);
    free(s->store_path);
    free(s->bundle_path);
    free(s->source_models);
    free(s->bind);
    pthread_mutex_destroy(&s->store_mu);
    pthread_mutex_destroy(&s->engine_mu);
    pthread_mutex_destroy(&s->reload_mu);
    pthread_mutex_destroy(&s->pages_mu);
    pthread_mutex_destroy(&s->sess_mu);
    pthread_mutex_destroy(&s->pop_mu);
    pthread_mutex_destroy(&s->q_mu);
    pthread_mutex_destroy(&s->keys_mu);
    srv_scenarios_free(s);
    shelf__ledger_free(s->ledger);
    pthread_mutex_destroy(&s->scn_mu);
    pthread_mutex_destroy(&s->health_mu);
    pthread_mutex_destroy(&s->patch_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_rwlock_destroy(&s->users_rw);
    pthread_rwlock_destroy(&s->items_rw);
    pthread_rwlock_destroy(&s->keys_rw);
    free(s);
}

/* The engine part of a server: the options' defaults, the store, the live
 * state, the keys and the model; no writer, no HTTP. */
static int srv_open(const shelf_server_opts *o, shelf_server **out, shelf_err *err)
{
    if (!o->store) return shelf_err_set(err, SHELF_EINVAL, "serve: a store is required (--store)");
    shelf_server *s = calloc(1, sizeof *s);
    if (!s) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    s->o = *o;
    s->shm_fd = -1;
    if (!s->o.threads) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        s->o.threads = nc > 2 ? (unsigned)(2 * nc) : 4;
    }
    if (!s->o.max_body) s->o.max_body = 16u << 20;
    if (!s->o.max_batch) s->o.max_batch = 10000;
    if (!s->o.max_n) s->o.max_n = 1000;
    if (!s->o.timeout_s) s->o.timeout_s = 30;
    if (!s->o.header_timeout_s) s->o.header_timeout_s = 10;
    if (!(s->o.retrain_within_s > 0)) s->o.retrain_within_s = 86400;
    if (!s->o.max_conns_per_ip) s->o.max_conns_per_ip = 64;
    if (!s->o.body_memory) s->o.body_memory = (size_t)64 << 20;
    if (s->o.body_memory < s->o.max_body + 1) s->o.body_memory = s->o.max_body + 1; /* one whole body (+ its NUL) fits */
    if (!(s->o.pop_half_life_s > 0)) s->o.pop_half_life_s = 7 * 86400.0;
    if (!s->o.session_memory) s->o.session_memory = (size_t)1 << 30;
    if (!s->o.cold_neighbours) s->o.cold_neighbours = 1;
    if (s->o.cold_neighbours > 64) s->o.cold_neighbours = 64;
    s->store_path = strdup(o->store);
    s->bundle_path = o->bundle ? strdup(o->bundle) : NULL;
    s->source_models = strdup(o->source_models ? o->source_models : "");
    s->ledger = shelf__ledger_new();
    s->bind = strdup(o->bind ? o->bind : "127.0.0.1");
    pthread_mutex_init(&s->store_mu, NULL);
    pthread_mutex_init(&s->engine_mu, NULL);
    pthread_mutex_init(&s->reload_mu, NULL);
    pthread_mutex_init(&s->pages_mu, NULL);
    pthread_mutex_init(&s->sess_mu, NULL);
    pthread_mutex_init(&s->pop_mu, NULL);
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_mutex_init(&s->keys_mu, NULL);
    pthread_mutex_init(&s->scn_mu, NULL);
    pthread_mutex_init(&s->health_mu, NULL);
    pthread_mutex_init(&s->patch_mu, NULL);
    pthread_cond_init(&s->q_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    srv_rwlock_init(&s->users_rw);
    srv_rwlock_init(&s->items_rw);
    pthread_rwlock_init(&s->keys_rw, NULL);
    s->started = srv_now();
    int rc;
    if (!s->store_path || !s->bind || !s->source_models || !s->ledger || (o->bundle && !s->bundle_path)) {
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
    if ((rc = srv_keys_open(s, err)) || (rc = srv_load_keys(s, err))) goto fail;
    if ((rc = srv_engine_load(s, &s->engine, err))) goto fail;
    s->engine->gen = ++s->next_gen;
    if ((rc = srv_coldfill_build(s, s->engine))) {
        rc = shelf_err_set(err, rc, "out of memory (content neighbours)");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    free_server(s);
    return rc;
}

int shelf_server_start(const shelf_server_opts *o, shelf_server **out, shelf_err *err)
{
    shelf_server *s;
    int rc = srv_open(o, &s, err);
    if (rc) return rc;
    if (!s->o.no_auth && s->n_keys == 0)
        shelf_warn("serve: the store has no API keys: every request but health, metrics and openapi gets 401 "
                   "(create one with: shelf keys create --store %s --scope admin)", o->store);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, s->bind, &addr.sin_addr) != 1) {
        rc = shelf_err_set(err, SHELF_EINVAL, "serve: --bind %s: not an IPv4 address", s->bind);
        goto fail;
    }
    pthread_mutex_init(&s->log_mu, NULL);
    if (o->access_log && *o->access_log && !(s->access_log = fopen(o->access_log, "a"))) {
        rc = shelf_err_set(err, SHELF_EIO, "serve: --access-log %s: %s", o->access_log, strerror(errno));
        goto fail;
    }
    if ((rc = srv_ingest_start(s, err))) goto fail;
    if ((rc = srv_pool_start(s, err))) {
        srv_ingest_stop(s);
        goto fail;
    }
    /* slow or idle clients: a connection starts with --header-timeout (the
     * request head raises it to --timeout, http.c), and one address holds at
     * most --max-conns-per-ip of the 4096 connections (more are closed at
     * once): a single client cannot fill the table */
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, srv_on_request,
                            s, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads, MHD_OPTION_SOCK_ADDR, &addr,
                            MHD_OPTION_NOTIFY_COMPLETED, srv_on_done, s, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)s->o.header_timeout_s, MHD_OPTION_CONNECTION_LIMIT, 4096u,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->o.max_conns_per_ip,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                            MHD_OPTION_UNESCAPE_CALLBACK, srv_unescape, NULL, MHD_OPTION_END);
    if (!s->d) {
        srv_pool_stop(s);
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
    srv_pool_stop(s);
    srv_ingest_stop(s); /* commits what is queued */
    shelf_info("serve: stopped (%llu events ingested)", (unsigned long long)atomic_load(&s->m.events));
    free_server(s);
}

/* ---- the engine without HTTP (rank.h) -------------------------------------------------------------- */

int shelf_engine_open(const shelf_server_opts *o, shelf_engine **out, shelf_err *err)
{
    shelf_server *s;
    int rc = srv_open(o, &s, err);
    if (!rc) *out = (shelf_engine *)s;
    return rc;
}

void shelf_engine_close(shelf_engine *g)
{
    if (g) free_server(&g->srv);
}
