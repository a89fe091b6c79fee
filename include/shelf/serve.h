/* serve.h: the HTTP server (`shelf serve`): JSON routes under /v1 on
 * libmicrohttpd's epoll thread pool, durable event ingestion with group
 * commit, live per-shopper profiles, API keys, Prometheus metrics and hot
 * model swap. The embedding program owns signals: shelf serve calls
 * shelf_server_reload on SIGHUP and shelf_server_stop on SIGTERM. */
#ifndef SHELF_SERVE_H
#define SHELF_SERVE_H
#include "shelf/model.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct shelf_server shelf_server;

typedef struct shelf_server_opts {
    const char *store;  /* store path (required); opened read-write */
    const char *bundle; /* a bundle directory, or a directory of bundles (the newest
                         * by manifest "created" is loaded); NULL: popularity only */
    const char *bind;   /* address to listen on; NULL: 127.0.0.1 */
    unsigned port;      /* 0: an ephemeral port (shelf_server_port tells which) */
    unsigned threads;   /* HTTP worker threads; 0: 2 x cores, at least 4 */
    unsigned workers;   /* threads that rank (the recommendation, similar, popular and search routes); 0: one per core */
    int no_auth;        /* 1: no API keys asked (tests, demos on loopback) */
    size_t max_body;    /* bytes; 0: 16 MiB */
    unsigned max_batch; /* events or items per request; 0: 10000 */
    unsigned max_n;     /* largest n of a slate; 0: 1000 */
    unsigned timeout_s; /* idle connection timeout once a request head came; 0: 30 */
    double pop_half_life_s; /* half-life of the popularity counters; 0: 7 days */
    size_t session_memory; /* bytes of the model's per-shopper sessions kept (the oldest go
                            * first past it); 0: 1 GiB */
    int no_served_log;  /* 1: slates are not written to the served log */
    unsigned cold_neighbours; /* items the model did not learn score by this many content
                               * neighbours (coldfill.h); 0: 1 */
    const char *exclude_seen; /* past events that hide an item: "TYPE[:DURATION],..."
                               * ("purchase,view:7d"; "none"); NULL: "purchase" (ever) */
    const char *fallback;     /* what a shopper without usable history gets: "trending"
                               * (decayed popularity), "popular" (all time), in this
                               * order of precedence; NULL: "trending,popular" */
    double blend_popularity;  /* the model's scores mixed with the trending popularity,
                               * both standardised: z(score) + w z(log(1 + popularity));
                               * 0: none; > 0 towards what sells now, < 0 the long tail */
    size_t body_memory;       /* bytes of request bodies held at once, all connections together
                               * (503 past it); 0: 64 MiB (never below max_body) */
    unsigned max_conns_per_ip; /* connections one client address may hold open; 0: 64 */
    const char *cors_origins;  /* origins a browser may call from ("https://shop.example,..."; "*": any);
                                * NULL or "": no CORS headers, OPTIONS is 405 */
    const char *access_log;    /* a file to append one JSON line per request to (time, method,
                                * route, status, ms, the API key's id, never the key); NULL: none */
    unsigned header_timeout_s; /* a new connection that sends nothing for this long before its
                                * request head is complete is closed; 0: 10 */
    double retrain_within_s;   /* a shopper or item deleted after the bundle in service was
                                * written: /v1/health asks for a retrain, and says degraded once
                                * this long has passed since the first such deletion; 0: 1 day */
    const char *source_models; /* model kinds a scenario's sources may name, loaded beside the
                                * served one: the newest bundle of each in the --bundle
                                * directory ("ease,itemknn"; NULL or "": none) */
} shelf_server_opts;

/* Opens the store, loads the users' histories and the model bundle, and
 * starts listening. *out is the running server; on failure err says why and
 * nothing keeps running. */
SHELF_API int shelf_server_start(const shelf_server_opts *o, shelf_server **out, shelf_err *err);
/* The port it listens on. */
SHELF_API unsigned shelf_server_port(const shelf_server *s);
/* "KIND VERSION" of the model being served ("popularity none" without a
 * bundle) into buf (NUL-terminated, truncated to cap). */
SHELF_API void shelf_server_model(shelf_server *s, char *buf, size_t cap);
/* Loads the newest bundle and swaps it in atomically; requests in flight
 * finish on the old model, which is freed when its last request ends. On
 * failure the current model stays and err says why. Thread safe. */
SHELF_API int shelf_server_reload(shelf_server *s, shelf_err *err);
/* Drains: stops accepting connections, finishes the requests in flight,
 * commits queued events and served slates, closes the store, frees s. */
SHELF_API void shelf_server_stop(shelf_server *s);

#ifdef __cplusplus
}
#endif
#endif
