/* serve_int.h: internals of the HTTP server shared by its files: the model
 * generation (engine) swapped on reload, the live state (users' histories,
 * the model's sessions, items, popularity), the group-commit writer, the
 * request context and the response helpers. */
#ifndef SHELF_SERVE_INT_H
#define SHELF_SERVE_INT_H

#include "shelf/serve.h"
#include "shelf/rank.h"
#include "shelf/store.h"
#include "shelf/snapshot.h"
#include "shelf/eval.h"
#include "shelf/coldfill.h"
#include "data/json_int.h"
#include "rank/rank_int.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

/* ---- routes and metrics ---------------------------------------------------- */
struct srv_req;
/* A route's handler: arg[k] is the k-th {parameter} of its path. */
typedef int (*srv_handler)(struct srv_req *r, char *const *arg);
typedef struct srv_route_def {
    const char *method; /* GET (HEAD too), PUT, PATCH, POST, DELETE */
    const char *path;   /* "/v1/users/{id}/recommendations" */
    int scope;          /* shelf_scope the key needs; 0: open */
    const char *name;   /* metric label */
    srv_handler fn;
    int pooled;         /* ranks: runs on the compute workers (pool.c) */
} srv_route_def;
#define SRV_N_ROUTES 26                  /* the table in http.c */
#define SRV_ROUTE_OTHER SRV_N_ROUTES     /* no route: 404, 405 (metrics label "other") */
#define N_ROUTES (SRV_N_ROUTES + 1)
extern const srv_route_def srv_routes[SRV_N_ROUTES];
#define SRV_N_BUCKETS 13
extern const double srv_buckets[SRV_N_BUCKETS]; /* seconds, upper bounds */

typedef struct srv_metrics {
    atomic_uint_fast64_t req[N_ROUTES][6];               /* by status class 0..5 (1xx..5xx, [0] unused) */
    atomic_uint_fast64_t hist[N_ROUTES][SRV_N_BUCKETS + 1]; /* last: +Inf */
    atomic_uint_fast64_t aborted[N_ROUTES];              /* the client left before an answer (status 0) */
    _Atomic double sum[N_ROUTES];
    atomic_uint_fast64_t events, served, served_dropped, reload_ok, reload_fail;
    atomic_uint_fast64_t key_reads; /* times the API keys were read from the store */
} srv_metrics;

/* ---- engine: one loaded model generation ------------------------------------------ */
#define SRV_MAX_SKIPPED 4
#define SRV_MAX_PEERS 4
typedef struct srv_engine {
    shelf_model *model; /* NULL: popularity only */
    char kind[32];
    char version[160];  /* bundle directory name + created time */
    double created;     /* manifest time (unix seconds), 0 unknown */
    char path[512];     /* the bundle's directory ("" without one) */
    int unverified;     /* its manifest has no checksums (an older shelf's) */
    /* the newer bundles of the --bundle directory refused when this one was
     * chosen (engine.c): n_skipped in all, the first SRV_MAX_SKIPPED kept */
    int n_skipped;
    struct { char name[128], why[384]; } skipped[SRV_MAX_SKIPPED];
    uint64_t gen;
    unsigned caps;      /* the model's SHELF_CAP_* (0 without one) */
    /* --source-models: the newest bundle of each of these kinds, beside
     * the served one, for the scenarios' model sources (engine.c) */
    shelf_model *peer[SRV_MAX_PEERS];
    uint32_t n_peers;
    /* models with online updates (SHELF_CAP_ONLINE): the writer's observe
     * takes it for writing, ranking for reading */
    pthread_rwlock_t model_rw;
    atomic_int refs;
} srv_engine;

/* ---- live users --------------------------------------------------------------------- */
#define SRV_USER_CTX 8   /* context values kept per user */
#define SRV_SHOWN 64     /* items last shown kept per user (rotation) */
#define SRV_MAX_CTX 64   /* distinct context values with popularity counters */
typedef struct srv_user {
    pthread_mutex_t mu;
    int forgotten;      /* deleted: the snapshot history no longer counts */
    uint32_t n, cap;    /* events since the snapshot */
    uint32_t *item;
    uint16_t *type;
    int64_t *ts;
    shelf__sess_slot slot; /* the model's session of the history (rank_int.h) */
    int in_ring;        /* listed in the server's session ring */
    uint16_t ctx[SRV_USER_CTX]; /* context values of the user's attributes (segment=..., region=...) */
    uint8_t n_ctx;
    /* the items last shown to the user (a ring of SRV_SHOWN), for a
     * scenario's rotation */
    uint32_t shown_item[SRV_SHOWN];
    int64_t shown_ts[SRV_SHOWN];
    uint32_t n_shown, shown_at;
} srv_user;

#define SRV_PAGE_BITS 12
#define SRV_PAGE (1u << SRV_PAGE_BITS)
#define SRV_PAGES 65536u /* up to 2^28 users */

/* ---- one request ---------------------------------------------------------------------- */
typedef struct srv_req {
    struct shelf_server *srv;
    struct MHD_Connection *conn;
    const char *method, *url;
    char *body;
    size_t len, cap;
    int too_large;
    double t0;
    int route;          /* index in srv_routes, or SRV_ROUTE_OTHER */
    int status;
    /* admission (http.c): checked on the request head, before any body byte */
    int answered;       /* an answer was queued on the head (401, 413, 503...): the body is dropped */
    int has_body;       /* the head announced a body (Content-Length > 0 or chunks) */
    int too_busy;       /* the body did not fit in --body-memory: 503 */
    int body_mapped;    /* body is an mmap of cap bytes (large bodies go back to the system at once) */
    size_t reserved;    /* bytes of s->body_bytes this request holds */
    int64_t key_id;     /* the id of the API key it came with (srv_request_scope; 0: none) */
    int preflight;      /* an OPTIONS preflight (--cors-origins): srv_text adds the Access-Control-Allow-* */
    /* a pooled route (pool.c): queued while its connection is suspended */
    int job_queued;                /* handed to the pool; its answer is sent on the next call */
    atomic_int job_done;           /* the worker is done with it (release: job_* are set) */
    int job_rc;                    /* dispatch's result */
    struct MHD_Response *job_resp; /* the answer the worker made (srv_text), sent by the HTTP thread */
    struct srv_req *job_next;      /* the pool's queue */
} srv_req;

#define SRV_KEYS_REFRESH_S 2 /* the writer re-reads the API keys this often when idle */
#define SRV_WAL_HDR 96       /* bytes of the wal-index header compared (auth.c) */

/* room for an error's text: the store's whole message (shelf_err), paths in it never cut */
#define SRV_WHY ((int)sizeof(((shelf_err *)0)->msg))

/* ---- group commit ---------------------------------------------------------------------------- */
typedef struct srv_event {
    char *user;          /* external id */
    uint32_t item, type;
    float value;
    int64_t ts;
    char *rec_id, *context;
} srv_event;

typedef struct srv_batch {
    srv_event *ev;
    size_t n;
    int done, rc;           /* rc: 0 committed, else failed (msg) */
    char msg[SRV_WHY];
    struct srv_batch *next;
} srv_batch;

typedef struct srv_served {
    shelf_slate slate;
    struct srv_served *next;
} srv_served;

typedef struct srv_worker { /* one compute worker (pool.c) */
    pthread_t t;
    struct shelf_server *srv;
    atomic_ullong done; /* requests it took */
} srv_worker;

struct shelf_server {
    shelf_server_opts o;
    char *store_path, *bundle_path, *bind;
    char *source_models; /* --source-models: "ease,itemknn" ("" none) */
    struct shelf__ledger *ledger; /* the promotions' spend and pacing (rank/pacing_int.h) */
    struct MHD_Daemon *d;
    /* the compute workers (pool.c) and their queue, under pool_mu */
    struct srv_worker *pool;
    unsigned n_pool, pool_queued;
    int pool_init, pool_stop;
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    struct srv_req *pool_head, *pool_tail;
    /* --access-log (http.c): the file, its lines written whole under log_mu */
    FILE *access_log;
    pthread_mutex_t log_mu;
    pthread_mutex_t patch_mu; /* PATCHes one at a time: read, merge, write (routes.c) */
    unsigned port;
    double started;
    atomic_int draining;
    atomic_int active; /* requests in flight */
    atomic_int busy;   /* handlers running */

    /* the store: one handle, used under store_mu */
    shelf_store *st;
    pthread_mutex_t store_mu;
    uint32_t n_types;
    char **type_name; /* [n_types] */
    float *type_weight;

    /* the model generation; engine_mu guards the pointer swap */
    pthread_mutex_t engine_mu, reload_mu;
    srv_engine *engine;
    uint64_t next_gen;
    char reload_error[512]; /* why the last reload failed ("" after one that worked); engine_mu */

    /* histories at start */
    shelf_snapshot *snap;

    /* the events cursor (under store_mu): every event with an id up to
     * ev_cursor is in the live state, and so are the writer's own above it
     * (own[k] = first, last id of a commit); catch-up on reload reads the
     * others (imports) and moves the cursor */
    uint64_t ev_cursor;
    uint64_t (*own)[2];
    size_t n_own, own_cap;
    uint32_t users_synced, items_synced; /* indices below are in the live state */

    /* users: ext id -> idx, live state pages */
    pthread_rwlock_t users_rw;
    shelf_strmap *user_map;
    uint32_t n_users;
    /* page pointers: read without a lock (acquire), set once under pages_mu (release) */
    _Atomic(_Atomic(srv_user *) *) pages[SRV_PAGES];
    pthread_mutex_t pages_mu;
    /* users with a session, oldest first (dropped first past --session-memory) */
    pthread_mutex_t sess_mu;
    uint32_t *sess_ring;
    size_t sess_head, sess_count, sess_cap;
    atomic_size_t live_sessions, sess_bytes;

    /* items: ext id -> idx and what filters need; items_rw guards all */
    pthread_rwlock_t items_rw;
    shelf_strmap *item_map;
    uint32_t n_items, items_cap;
    char **item_ext;     /* [n_items] (NULL: retired) */
    uint16_t *item_kind; /* index into kinds */
    uint32_t *item_cat;  /* index into cats or SHELF_NONE */
    uint32_t *item_brand; /* index into brands or SHELF_NONE */
    uint8_t *item_ok;    /* available and not retired */
    float *item_price;   /* NaN: none */
    int64_t *item_created; /* unix seconds, 0 unknown */
    char **item_title;   /* NULL: none (what fields=title answers) */
    char **item_image;   /* the attributes' "image" (or "image_url"); NULL: none */
    char **kinds;
    uint32_t n_kinds;
    char **cats;
    uint32_t n_cats;
    char **brands;
    uint32_t n_brands;
    shelf_coldfill *cf; /* content neighbours of cold items (NULL: no model) */

    /* the deployment's exclude-seen rules and fallback chain (rank_int.h) */
    shelf__seen seen;
    shelf__fallback fb;

    /* popularity: decayed weights as of pop_ref (see state.c), and all-time */
    pthread_mutex_t pop_mu;
    double *pop;
    double *pop_all;
    double pop_ref;
    /* popularity per context value ("segment=b"): shoppers like you */
    char *ctx_name[SRV_MAX_CTX];
    double *ctx_pop[SRV_MAX_CTX];
    uint32_t n_ctx;

    /* auth: hashes of the valid keys */
    pthread_rwlock_t keys_rw;
    shelf_api_key *keys;
    size_t n_keys;
    /* freshness of the keys (auth.c): the store's wal-index header when they
     * were read (keys_rw), the -shm file it is read from (-1: none), and the
     * connection they are read on (keys_mu) */
    unsigned char keys_hdr[SRV_WAL_HDR];
    int shm_fd;
    pthread_mutex_t keys_mu;
    shelf_store *keys_st;

    /* the store's scenarios, parsed (scenarios.c): scn_mu guards the pointer */
    pthread_mutex_t scn_mu;
    struct srv_scn_set *scns;

    /* the last write's failure, until a write succeeds again (health: degraded) */
    pthread_mutex_t health_mu;
    atomic_int write_failing;
    char write_error[SRV_WHY];
    double write_error_since;

    /* request bodies held in memory, all connections (http.c; --body-memory) */
    atomic_size_t body_bytes;

    /* group commit */
    pthread_t writer;
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv, done_cv;
    srv_batch *q_head, *q_tail;
    srv_served *s_head, *s_tail;
    size_t s_pending;
    double s_first; /* srv_now() when the oldest queued slate came */
    int q_stop;

    srv_metrics m;
};

/* an engine (rank.h) is a server that never starts HTTP or its writer */
struct shelf_engine {
    struct shelf_server srv;
};

/* ---- http.c ---------------------------------------------------------------------- */
double srv_now(void);
/* Responses: body is a cJSON object (consumed). */
int srv_json(srv_req *r, int status, cJSON *body);
int srv_error(srv_req *r, int status, const char *code, long index, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int srv_text(srv_req *r, int status, const char *ctype, char *text, size_t len); /* takes text (malloc'd) */
const char *srv_arg(srv_req *r, const char *name); /* query argument or NULL */
enum MHD_Result srv_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls);
void srv_on_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe);
size_t srv_unescape(void *cls, struct MHD_Connection *conn, char *s);

/* ---- server.c ------------------------------------------------------------------------ */
/* A read/write lock that lets a waiting writer in before new readers (the
 * default lets a stream of readers, slates under load, starve a writer: a
 * reload, a new item, the writer's online update). Readers must not take
 * it twice. */
void srv_rwlock_init(pthread_rwlock_t *l);

/* Records the outcome of a write to the store (what: "events", "served
 * log", "items" ...; msg its error when rc != 0): a failure makes
 * /v1/health say "degraded" with it, the next write that succeeds clears it. */
void srv_write_outcome(shelf_server *s, int rc, const char *what, const char *msg);

/* ---- engine.c: the model generation -------------------------------------------------- */
srv_engine *srv_engine_get(shelf_server *s);
void srv_engine_put(srv_engine *e);
/* The newest bundle of --bundle (or popularity only without one). */
int srv_engine_load(shelf_server *s, srv_engine **out, shelf_err *err);
/* Adds to the health answer's model object the bundle in service (name,
 * path, verified), the newer ones skipped with reasons, and the last
 * reload's failure if it failed. Takes engine_mu. */
void srv_engine_describe(shelf_server *s, const srv_engine *e, cJSON *model);
/* e's model of this kind (the served one or a --source-models one), or NULL. */
const shelf_model *srv_engine_model(const srv_engine *e, const char *kind);

/* ---- auth.c, metrics.c --------------------------------------------------------------- */
/* the store's wal-index header now (zeros when it cannot be read), and the
 * writer's own commit marked as changing no key (auth.c) */
void srv_keys_header(shelf_server *s, unsigned char *h);
void srv_keys_own_commit(shelf_server *s, const unsigned char *before);
int srv_load_keys(shelf_server *s, shelf_err *err);
/* Opens what srv_load_keys and the freshness check read: the store's -shm
 * file and a read-only connection of their own (a WAL reader never waits for
 * the writer). Without them keys are re-read only by the writer. */
int srv_keys_open(shelf_server *s, shelf_err *err);
void srv_keys_close(shelf_server *s);
int srv_request_scope(srv_req *r); /* the scope of the request's bearer key: 0 none or unknown */
void srv_metrics_observe(shelf_server *s, int route, int status, double seconds);

/* ---- the handlers (routes.c, recs.c, server.c, auth.c, metrics.c, engine.c) ---------- */
int srv_route_health(srv_req *r, char *const *arg);
int srv_route_openapi(srv_req *r, char *const *arg);
int srv_route_metrics(srv_req *r, char *const *arg);
int srv_route_reload(srv_req *r, char *const *arg);
int srv_route_keys(srv_req *r, char *const *arg);

/* ---- live.c: users, items, popularity --------------------------------------------------------------------------- */
int srv_state_init(shelf_server *s, shelf_err *err);
void srv_state_free(shelf_server *s);
/* Live user by index (created on demand); NULL only when out of memory. */
srv_user *srv_user_at(shelf_server *s, uint32_t idx);
/* idx of ext or SHELF_NONE (forgotten users are unknown). */
uint32_t srv_user_find(shelf_server *s, const char *ext);
void srv_user_add(shelf_server *s, const char *ext, uint32_t idx);
/* The user's whole history (snapshot part unless forgotten, then live
 * events) into growing buffers; u->mu must be held. Returns the length or
 * (size_t)-1 when out of memory. */
size_t srv_user_history(shelf_server *s, uint32_t idx, srv_user *u, uint32_t **item, uint16_t **type,
                        int64_t **ts, size_t *cap);
int srv_user_append(srv_user *u, uint32_t item, uint16_t type, int64_t ts);
void srv_user_forget(shelf_server *s, uint32_t idx);
/* Counts a change of user idx's session memory (delta bytes; a new session
 * joins the ring) and drops the oldest sessions past --session-memory.
 * Called without u->mu held. */
void srv_sess_account(shelf_server *s, uint32_t idx, long long delta, int is_new);
/* Frees u's session and returns its bytes (u->mu held). */
size_t srv_sess_drop(shelf_server *s, srv_user *u);
/* The ranking room's view of the server's live state with engine e. */
void srv_rank_env(shelf_server *s, const srv_engine *e, shelf__rank_env *env);
uint32_t srv_item_find(shelf_server *s, const char *ext); /* SHELF_NONE if unknown/retired */
/* Adds or updates an item's filter fields (items_rw taken inside). */
int srv_item_set(shelf_server *s, uint32_t idx, const shelf_item *it);
void srv_item_retire(shelf_server *s, uint32_t idx);
/* Content neighbours of the items engine e did not learn (called at start
 * and after each reload): items_rw taken inside. */
int srv_coldfill_build(shelf_server *s, const srv_engine *e);
/* Adds one event's weight to the decayed popularity, overall and for each
 * of the user's n_ctx context values. */
void srv_pop_add(shelf_server *s, uint32_t item, uint32_t type, int64_t ts, const uint16_t *ctx, uint32_t n_ctx);
/* The context values of a user's attributes JSON (new values get counters
 * while there is room) into ctx[SRV_USER_CTX]; returns the count. */
uint32_t srv_ctx_of_attributes(shelf_server *s, const char *attributes, uint16_t *ctx);
/* Index of a context value "key=value" or -1 (no new counter). */
int srv_ctx_find(shelf_server *s, const char *kv);
/* Scores of items 0..n for shoppers with these context values: the sum of
 * each value's popularity share, plus a tenth of the overall share. Returns
 * 0 when no value has any event yet (scores untouched). */
int srv_ctx_scores(shelf_server *s, const uint16_t *ctx, uint32_t n_ctx, float *scores, uint32_t n);
/* shelf_ctx_hash of each context value's "key=value" (for models that
 * take context: shelf_query.ctx). */
void srv_ctx_hashes(shelf_server *s, const uint16_t *ctx, uint32_t n_ctx, uint32_t *out);
/* Sets a user's context values from its attributes JSON. */
void srv_user_set_ctx(shelf_server *s, uint32_t idx, const char *attributes);
/* Popularity scores (decayed weights) of items 0..n into scores. */
void srv_pop_scores(shelf_server *s, float *scores, uint32_t n);
/* The fallback chain's scores of items 0..n (all > 0; rank_int.h). */
void srv_fallback_scores(shelf_server *s, float *scores, uint32_t n);
uint32_t srv_n_items(shelf_server *s);
/* Brings the live state up to the store: users, items and events that other
 * connections (shelf import) added since the last look. store_mu held. */
int srv_live_catch_up(shelf_server *s, shelf_err *err);
/* The writer committed events first..last (ids): recorded as its own, or
 * the cursor moves when nothing else came between. store_mu held. */
void srv_live_own_events(shelf_server *s, uint64_t first, uint64_t last);
/* Applies one committed event to the live state (history, popularity). */
void srv_live_event(shelf_server *s, uint32_t user, uint32_t item, uint32_t type, int64_t ts);

/* ---- ingest.c ------------------------------------------------------------------------------ */
int srv_ingest_start(shelf_server *s, shelf_err *err);
/* the compute workers (pool.c): --workers threads (0: one per core) */
int srv_pool_start(shelf_server *s, shelf_err *err);
void srv_pool_submit(shelf_server *s, struct srv_req *r); /* r's connection is suspended */
void srv_pool_stop(shelf_server *s);                      /* after the daemon: what is queued runs first */
unsigned srv_pool_queued(shelf_server *s);                /* requests waiting for a worker now */
int srv_dispatch(struct srv_req *r);                      /* r's route (http.c) */
void srv_thread_setup(void);                              /* one OpenMP/BLAS thread for this thread */
void srv_ingest_stop(shelf_server *s); /* commits what is queued, joins */
/* Queues a validated batch and waits for its commit; 0 or the batch's rc. */
int srv_ingest_wait(shelf_server *s, srv_batch *b);
/* Queues a served slate (no wait); dropped (and counted) when the queue is full. */
void srv_served_push(shelf_server *s, shelf_slate *sl); /* takes sl's items (sl is left empty) */

/* ---- scenarios.c ------------------------------------------------------------------------------ */
typedef struct srv_scn_set srv_scn_set;
/* Reads and parses every scenario of st into a new set that replaces the
 * server's (a document that does not compile is kept with its error). */
int srv_scenarios_load(shelf_server *s, shelf_store *st, shelf_err *err);
void srv_scenarios_free(shelf_server *s);
/* Scenario name of the current set, held in *hold (give it back with
 * srv_scenarios_put once the slate is ranked); NULL when unknown (*why
 * NULL) or when its document does not compile here (*why says why). */
const struct shelf__scenario *srv_scenario_get(shelf_server *s, const char *name, srv_scn_set **hold,
                                               const char **why);
void srv_scenarios_put(srv_scn_set *hold);
int srv_route_scenario_put(srv_req *r, char *const *arg);
int srv_route_scenario_get(srv_req *r, char *const *arg);
int srv_route_scenario_delete(srv_req *r, char *const *arg);
int srv_route_scenarios(srv_req *r, char *const *arg);

/* ---- routes.c / recs.c -------------------------------------------------------------------------- */
int srv_route_events(srv_req *r, char *const *arg);
int srv_route_item_put(srv_req *r, char *const *arg);
int srv_route_item_patch(srv_req *r, char *const *arg);
int srv_route_user_patch(srv_req *r, char *const *arg);
int srv_route_items_put(srv_req *r, char *const *arg);
int srv_route_item_get(srv_req *r, char *const *arg);
int srv_route_item_delete(srv_req *r, char *const *arg);
int srv_route_user_put(srv_req *r, char *const *arg);
int srv_route_users_put(srv_req *r, char *const *arg);
int srv_route_user_get(srv_req *r, char *const *arg);
int srv_route_user_delete(srv_req *r, char *const *arg);
int srv_route_recs(srv_req *r, char *const *arg);
int srv_route_recs_anon(srv_req *r, char *const *arg);
int srv_route_similar(srv_req *r, char *const *arg);
int srv_route_popular(srv_req *r, char *const *arg);
int srv_route_rating(srv_req *r, char *const *arg);
int srv_route_search(srv_req *r, char *const *arg); /* search.c */

/* Parses r's body as JSON; on failure answers 400 and returns NULL. */
cJSON *srv_body_json(srv_req *r);
/* An id field: string, or integer number as its decimal text, into buf. */
int srv_json_id(const cJSON *v, char *buf, size_t cap);

#endif
