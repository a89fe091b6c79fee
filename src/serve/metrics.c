/* metrics.c: the server's Prometheus metrics: requests by route and
 * status class, latency histograms, events, served slates, reloads,
 * sessions, users and items. */
#include "serve_int.h"

#include "core/sbuf_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const double srv_buckets[SRV_N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,    0.25,  0.5,    1.0,   2.5,  5.0};

void srv_metrics_observe(shelf_server *s, int route, int status, double dt)
{
    if (status == 0) { /* the client went away before an answer: not the server's error */
        atomic_fetch_add(&s->m.aborted[route], 1);
        return;
    }
    int cls_i = status >= 100 && status < 600 ? status / 100 : 5;
    atomic_fetch_add(&s->m.req[route][cls_i], 1);
    int k = 0;
    while (k < SRV_N_BUCKETS && dt > srv_buckets[k]) k++;
    atomic_fetch_add(&s->m.hist[route][k], 1);
    double old = atomic_load(&s->m.sum[route]);
    while (!atomic_compare_exchange_weak(&s->m.sum[route], &old, old + dt)) {
    }
}

static const char *route_name(int rt) { return rt < SRV_N_ROUTES ? srv_routes[rt].name : "other"; }

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

int srv_route_metrics(srv_req *r, char *const *arg)
{
    (void)arg;
        shelf_server *s = r->srv;
    srv_metrics *m = &s->m;
    shelf__sbuf b = {0};
    shelf__sbuf_printf(&b, "# HELP shelf_http_requests_total HTTP requests by route and status class.\n"
                  "# TYPE shelf_http_requests_total counter\n");
    for (int rt = 0; rt <= SRV_N_ROUTES; rt++)
        for (int c = 1; c <= 5; c++) {
            uint64_t v = atomic_load(&m->req[rt][c]);
            if (v) shelf__sbuf_printf(&b, "shelf_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n", route_name(rt), c,
                             (unsigned long long)v);
        }
    shelf__sbuf_printf(&b, "# HELP shelf_http_aborted_total Requests the client gave up (closed, reset, timed out) before "
                  "an answer: not counted in shelf_http_requests_total.\n"
                  "# TYPE shelf_http_aborted_total counter\n");
    for (int rt = 0; rt <= SRV_N_ROUTES; rt++) {
        uint64_t v = atomic_load(&m->aborted[rt]);
        if (v) shelf__sbuf_printf(&b, "shelf_http_aborted_total{route=\"%s\"} %llu\n", route_name(rt), (unsigned long long)v);
    }
    shelf__sbuf_printf(&b, "# HELP shelf_http_request_duration_seconds Time from a request's first byte to its answer.\n"
                  "# TYPE shelf_http_request_duration_seconds histogram\n");
    for (int rt = 0; rt <= SRV_N_ROUTES; rt++) {
        uint64_t cum = 0, tot = 0;
        for (int k = 0; k <= SRV_N_BUCKETS; k++) tot += atomic_load(&m->hist[rt][k]);
        if (!tot) continue;
        for (int k = 0; k < SRV_N_BUCKETS; k++) {
            cum += atomic_load(&m->hist[rt][k]);
            shelf__sbuf_printf(&b, "shelf_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", route_name(rt),
                      srv_buckets[k], (unsigned long long)cum);
        }
        shelf__sbuf_printf(&b, "shelf_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", route_name(rt),
                  (unsigned long long)tot);
        shelf__sbuf_printf(&b, "shelf_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_name(rt),
                  atomic_load(&m->sum[rt]));
        shelf__sbuf_printf(&b, "shelf_http_request_duration_seconds_count{route=\"%s\"} %llu\n", route_name(rt),
                  (unsigned long long)tot);
    }
    shelf__sbuf_printf(&b,
              "# HELP shelf_events_ingested_total Events committed to the store through the API.\n"
              "# TYPE shelf_events_ingested_total counter\nshelf_events_ingested_total %llu\n"
              "# HELP shelf_served_logged_total Slates written to the served log.\n"
              "# TYPE shelf_served_logged_total counter\nshelf_served_logged_total %llu\n"
              "# HELP shelf_served_dropped_total Slates not logged (queue full or a failed commit).\n"
              "# TYPE shelf_served_dropped_total counter\nshelf_served_dropped_total %llu\n"
              "# HELP shelf_reloads_total Model reloads by result.\n# TYPE shelf_reloads_total counter\n"
              "shelf_reloads_total{result=\"ok\"} %llu\nshelf_reloads_total{result=\"error\"} %llu\n"
              "# HELP shelf_api_key_reads_total Times the API keys were read from the store (when it changed).\n"
              "# TYPE shelf_api_key_reads_total counter\nshelf_api_key_reads_total %llu\n"
              "# HELP shelf_request_body_bytes Bytes of --body-memory held by request bodies now.\n"
              "# TYPE shelf_request_body_bytes gauge\nshelf_request_body_bytes %zu\n",
              (unsigned long long)atomic_load(&m->events), (unsigned long long)atomic_load(&m->served),
              (unsigned long long)atomic_load(&m->served_dropped), (unsigned long long)atomic_load(&m->reload_ok),
              (unsigned long long)atomic_load(&m->reload_fail), (unsigned long long)atomic_load(&m->key_reads),
              atomic_load(&s->body_bytes));
    shelf__sbuf_printf(&b, "# HELP shelf_rank_worker_requests_total Requests each ranking worker took (--rank-workers).\n"
                  "# TYPE shelf_rank_worker_requests_total counter\n");
    for (unsigned k = 0; k < s->n_pool; k++)
        shelf__sbuf_printf(&b, "shelf_rank_worker_requests_total{worker=\"%u\"} %llu\n", k,
                  (unsigned long long)atomic_load(&s->pool[k].done));
    shelf__sbuf_printf(&b, "# HELP shelf_rank_queue Ranking requests waiting for a worker now.\n"
                  "# TYPE shelf_rank_queue gauge\nshelf_rank_queue %u\n", s->n_pool ? srv_pool_queued(s) : 0);
    srv_engine *e = srv_engine_get(s);
    char kind[80], ver[400];
    label_esc(kind, sizeof kind, e->kind);
    label_esc(ver, sizeof ver, e->version);
    shelf__sbuf_printf(&b,
              "# HELP shelf_model_info The model being served.\n# TYPE shelf_model_info gauge\n"
              "shelf_model_info{kind=\"%s\",version=\"%s\"} 1\n"
              "# HELP shelf_model_age_seconds Seconds since the served bundle was written.\n"
              "# TYPE shelf_model_age_seconds gauge\nshelf_model_age_seconds %.0f\n",
              kind, ver, e->created > 0 ? srv_now() - e->created : 0.0);
    srv_engine_put(e);
    pthread_rwlock_rdlock(&s->users_rw);
    uint32_t nu = s->n_users;
    pthread_rwlock_unlock(&s->users_rw);
    shelf__sbuf_printf(&b,
              "# HELP shelf_sessions Shoppers' model sessions held in memory.\n# TYPE shelf_sessions gauge\n"
              "shelf_sessions %zu\n# HELP shelf_session_bytes Memory of those sessions.\n"
              "# TYPE shelf_session_bytes gauge\nshelf_session_bytes %zu\n"
              "# HELP shelf_users Users known.\n# TYPE shelf_users gauge\nshelf_users %u\n"
              "# HELP shelf_items Item indices in use.\n# TYPE shelf_items gauge\nshelf_items %u\n",
              atomic_load(&s->live_sessions), atomic_load(&s->sess_bytes), nu, srv_n_items(s));
    if (b.oom || !b.p) {
        shelf__sbuf_free(&b);
        return srv_error(r, 500, "internal", -1, "out of memory");
    }
    return srv_text(r, 200, "text/plain; version=0.0.4", b.p, b.len); /* srv_text frees it */
}
