/* state.c: the server's live state: users (id map, histories since the
 * start-up snapshot, the model's sessions), items (id map and the fields that
 * filters read) and the time-decayed popularity counters. */
#include "serve_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LN2 0.69314718055994530942

/* ---- users ------------------------------------------------------------------------- */

srv_user *srv_user_at(shelf_server *s, uint32_t idx)
{
    uint32_t p = idx >> SRV_PAGE_BITS;
    if (p >= SRV_PAGES) return NULL;
    _Atomic(srv_user *) *page = atomic_load_explicit(&s->pages[p], memory_order_acquire);
    if (!page) {
        pthread_mutex_lock(&s->pages_mu);
        if (!(page = atomic_load_explicit(&s->pages[p], memory_order_relaxed))) {
            page = calloc(SRV_PAGE, sizeof *page);
            atomic_store_explicit(&s->pages[p], page, memory_order_release);
        }
        pthread_mutex_unlock(&s->pages_mu);
        if (!page) return NULL;
    }
    _Atomic(srv_user *) *slot = &page[idx & (SRV_PAGE - 1)];
    srv_user *u = atomic_load(slot);
    if (u) return u;
    srv_user *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    pthread_mutex_init(&n->mu, NULL);
    srv_user *expect = NULL;
    if (!atomic_compare_exchange_strong(slot, &expect, n)) { /* another thread won */
        pthread_mutex_destroy(&n->mu);
        free(n);
        return expect;
    }
    return n;
}

static void user_free(srv_user *u)
{
    if (!u) return;
    pthread_mutex_destroy(&u->mu);
    free(u->item);
    free(u->type);
    free(u->ts);
    shelf_session_free(u->slot.sess);
    free(u);
}

uint32_t srv_user_find(shelf_server *s, const char *ext)
{
    uint32_t idx;
    pthread_rwlock_rdlock(&s->users_rw);
    int found = shelf_strmap_get(s->user_map, ext, strlen(ext), &idx);
    pthread_rwlock_unlock(&s->users_rw);
    if (!found || idx == SHELF_NONE) return SHELF_NONE;
    return idx;
}

void srv_user_add(shelf_server *s, const char *ext, uint32_t idx)
{
    pthread_rwlock_wrlock(&s->users_rw);
    if (shelf_strmap_put(s->user_map, ext, strlen(ext), idx) == 0 && idx != SHELF_NONE && idx >= s->n_users)
        s->n_users = idx + 1;
    pthread_rwlock_unlock(&s->users_rw);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *n = realloc(*p, c * size);
    if (!n) return -1;
    *p = n;
    *cap = c;
    return 0;
}

size_t srv_user_history(shelf_server *s, uint32_t idx, srv_user *u, uint32_t **item, uint16_t **type,
                        int64_t **ts, size_t *cap)
{
    const shelf_snapshot *sn = s->snap;
    uint64_t lo = 0, hi = 0;
    if (!u->forgotten && idx < sn->n_users) {
        lo = sn->seq_off[idx];
        hi = sn->seq_off[idx + 1];
    }
    size_t n = (size_t)(hi - lo) + u->n, c0 = *cap, c1 = *cap, c2 = *cap;
    if (grow((void **)item, &c0, n, sizeof **item) || grow((void **)type, &c1, n, sizeof **type) ||
        grow((void **)ts, &c2, n, sizeof **ts)) {
        /* keep *cap the smallest of the three so that the next call regrows */
        *cap = c0 < c1 ? (c0 < c2 ? c0 : c2) : (c1 < c2 ? c1 : c2);
        return (size_t)-1;
    }
    *cap = c0;
    size_t k = 0;
    for (uint64_t e = lo; e < hi; e++, k++) {
        (*item)[k] = sn->seq_item[e];
        (*type)[k] = sn->seq_type[e];
        (*ts)[k] = sn->seq_ts[e];
    }
    if (u->n) {
        memcpy(*item + k, u->item, u->n * sizeof **item);
        memcpy(*type + k, u->type, u->n * sizeof **type);
        memcpy(*ts + k, u->ts, u->n * sizeof **ts);
    }
    return n;
}

int srv_user_append(srv_user *u, uint32_t item, uint16_t type, int64_t ts)
{
    if (u->n == u->cap) {
        uint32_t c = u->cap ? u->cap * 2 : 8;
        uint32_t *ni = realloc(u->item, c * sizeof *ni);
        if (!ni) return SHELF_ENOMEM;
        u->item = ni;
        uint16_t *nt = realloc(u->type, c * sizeof *nt);
        if (!nt) return SHELF_ENOMEM;
        u->type = nt;
        int64_t *ns = realloc(u->ts, c * sizeof *ns);
        if (!ns) return SHELF_ENOMEM;
        u->ts = ns;
        u->cap = c;
    }
    /* live events stay in time order (late arrivals move back; equal times
     * keep arrival order); a session past that point is stale */
    uint32_t k = u->n;
    while (k > 0 && u->ts[k - 1] > ts) k--;
    if (k < u->n) {
        memmove(u->item + k + 1, u->item + k, (u->n - k) * sizeof *u->item);
        memmove(u->type + k + 1, u->type + k, (u->n - k) * sizeof *u->type);
        memmove(u->ts + k + 1, u->ts + k, (u->n - k) * sizeof *u->ts);
        u->slot.stale = 1;
    }
    u->item[k] = item;
    u->type[k] = type;
    u->ts[k] = ts;
    u->n++;
    return 0;
}

size_t srv_sess_drop(shelf_server *s, srv_user *u)
{
    if (u->slot.sess) atomic_fetch_sub(&s->live_sessions, 1);
    return shelf__sess_drop(&u->slot);
}

void srv_user_forget(shelf_server *s, uint32_t idx)
{
    srv_user *u = srv_user_at(s, idx);
    if (!u) return;
    pthread_mutex_lock(&u->mu);
    u->forgotten = 1;
    u->n = 0;
    size_t freed = srv_sess_drop(s, u);
    pthread_mutex_unlock(&u->mu);
    atomic_fetch_sub(&s->sess_bytes, freed);
}

/* the oldest user of the ring, or SHELF_NONE; sess_mu held */
static uint32_t ring_pop(shelf_server *s)
{
    if (!s->sess_count) return SHELF_NONE;
    uint32_t idx = s->sess_ring[s->sess_head];
    s->sess_head = (s->sess_head + 1) % s->sess_cap;
    s->sess_count--;
    return idx;
}

/* appends idx to the ring (grown when full); sess_mu held */
static int ring_push(shelf_server *s, uint32_t idx)
{
    if (s->sess_count == s->sess_cap) {
        size_t cap = s->sess_cap ? 2 * s->sess_cap : 1024;
        uint32_t *r = malloc(cap * sizeof *r);
        if (!r) return SHELF_ENOMEM;
        for (size_t k = 0; k < s->sess_count; k++) r[k] = s->sess_ring[(s->sess_head + k) % s->sess_cap];
        free(s->sess_ring);
        s->sess_ring = r;
        s->sess_head = 0;
        s->sess_cap = cap;
    }
    s->sess_ring[(s->sess_head + s->sess_count) % s->sess_cap] = idx;
    s->sess_count++;
    return 0;
}

void srv_sess_account(shelf_server *s, uint32_t idx, long long delta, int is_new)
{
    if (delta >= 0) atomic_fetch_add(&s->sess_bytes, (size_t)delta);
    else atomic_fetch_sub(&s->sess_bytes, (size_t)-delta);
    if (!is_new && atomic_load(&s->sess_bytes) <= s->o.session_memory) return; /* the common case: no lock */
    pthread_mutex_lock(&s->sess_mu);
    if (is_new) {
        srv_user *u = srv_user_at(s, idx);
        if (u && !u->in_ring && ring_push(s, idx) == 0) u->in_ring = 1; /* in_ring: under sess_mu */
    }
    /* past the budget, the oldest sessions go; one in use stays (and goes
     * to the back of the ring) */
    for (size_t tries = s->sess_count; tries > 0 && atomic_load(&s->sess_bytes) > s->o.session_memory; tries--) {
        uint32_t victim = ring_pop(s);
        srv_user *u = srv_user_at(s, victim);
        if (!u) continue;
        if (victim == idx || pthread_mutex_trylock(&u->mu) != 0) {
            ring_push(s, victim); /* the slot it left is free: cannot fail */
            continue;
        }
        u->in_ring = 0;
        atomic_fetch_sub(&s->sess_bytes, srv_sess_drop(s, u));
        pthread_mutex_unlock(&u->mu);
    }
    pthread_mutex_unlock(&s->sess_mu);
}

/* ---- items --------------------------------------------------------------------------- */

static uint32_t intern(char ***tab, uint32_t *n, const char *v)
{
    for (uint32_t i = 0; i < *n; i++)
        if (!strcmp((*tab)[i], v)) return i;
    char **nt = realloc(*tab, (*n + 1) * sizeof *nt);
    if (!nt) return SHELF_NONE;
    *tab = nt;
    if (!(nt[*n] = strdup(v))) return SHELF_NONE;
    return (*n)++;
}

/* items_rw held for writing */
static int items_reserve(shelf_server *s, uint32_t n)
{
    if (n <= s->items_cap) return 0;
    uint32_t c = s->items_cap ? s->items_cap : 1024;
    while (c < n) c *= 2;
    /* each per-item array to c entries (what is there is kept on failure) */
#define GROW(arr)                                                                                                  \
    do {                                                                                                           \
        void *n_ = realloc((arr), (size_t)c * sizeof *(arr));                                                      \
        if (!n_) return SHELF_ENOMEM;                                                                              \
        (arr) = n_;                                                                                                \
    } while (0)
    GROW(s->item_ext);
    GROW(s->item_kind);
    GROW(s->item_cat);
    GROW(s->item_brand);
    GROW(s->item_ok);
    GROW(s->item_price);
    GROW(s->item_created);
    GROW(s->item_title);
    GROW(s->item_image);
#undef GROW
    pthread_mutex_lock(&s->pop_mu);
    double *p = realloc(s->pop, c * sizeof *p);
    if (p) {
        for (uint32_t i = s->items_cap; i < c; i++) p[i] = 0;
        s->pop = p;
        p = realloc(s->pop_all, c * sizeof *p);
    }
    if (p) {
        for (uint32_t i = s->items_cap; i < c; i++) p[i] = 0;
        s->pop_all = p;
    }
    for (uint32_t v = 0; p && v < s->n_ctx; v++) {
        double *q = realloc(s->ctx_pop[v], c * sizeof *q);
        if (!q) {
            p = NULL;
            break;
        }
        for (uint32_t i = s->items_cap; i < c; i++) q[i] = 0;
        s->ctx_pop[v] = q;
    }
    pthread_mutex_unlock(&s->pop_mu);
    if (!p) return SHELF_ENOMEM;
    for (uint32_t i = s->items_cap; i < c; i++) {
        s->item_ext[i] = NULL;
        s->item_kind[i] = 0;
        s->item_cat[i] = SHELF_NONE;
        s->item_brand[i] = SHELF_NONE;
        s->item_ok[i] = 0;
        s->item_price[i] = NAN;
        s->item_created[i] = 0;
        s->item_title[i] = s->item_image[i] = NULL;
    }
    s->items_cap = c;
    return 0;
}

/* what an item row gives the live state besides its fields, made before
 * the items' lock is taken: its content features (coldfill.h: category,
 * brand, title and text words, attributes as "key=value") and copies of its
 * title and image (the attributes' "image", else "image_url") */
typedef struct item_extra {
    uint64_t f[256];
    size_t nf;
    char *title, *image; /* NULL: none; handed to the live state, its old ones come back to be freed */
    int oom;
} item_extra;

static char *dup_or_null(const char *t, int *oom)
{
    char *d = t && t[0] ? strdup(t) : NULL;
    if (t && t[0] && !d) *oom = 1;
    return d;
}

static void item_extra_of(const shelf_item *it, item_extra *x)
{
    enum { MAX_ATTRS = 64 };
    char buf[MAX_ATTRS][160];
    const char *av[MAX_ATTRS];
    size_t na = 0;
    x->oom = 0;
    cJSON *j = it->attributes ? cJSON_Parse(it->attributes) : NULL;
    for (const cJSON *a = cJSON_IsObject(j) ? j->child : NULL; a && na < MAX_ATTRS; a = a->next)
        if (shelf__json_kv(a, buf[na], sizeof buf[na]) > 0) {
            av[na] = buf[na];
            na++;
        }
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(j, "image");
    if (!cJSON_IsString(img)) img = cJSON_GetObjectItemCaseSensitive(j, "image_url");
    x->image = dup_or_null(cJSON_IsString(img) ? img->valuestring : NULL, &x->oom);
    x->title = dup_or_null(it->title, &x->oom);
    cJSON_Delete(j);
    size_t k = shelf_coldfill_item_features(it->category, it->brand, it->title, it->text, av, na, x->f, 256);
    x->nf = k < 256 ? k : 256;
}

static int item_set_locked(shelf_server *s, uint32_t idx, const shelf_item *it, item_extra *x)
{
    const char *ext = it->id, *kind = it->kind, *cat = it->category, *brand = it->brand;
    int available = it->available;
    if (items_reserve(s, idx + 1)) return SHELF_ENOMEM;
    if (!s->item_ext[idx] || strcmp(s->item_ext[idx], ext)) {
        char *d = strdup(ext);
        if (!d) return SHELF_ENOMEM;
        free(s->item_ext[idx]);
        s->item_ext[idx] = d;
        if (shelf_strmap_put(s->item_map, ext, strlen(ext), idx)) return SHELF_ENOMEM;
    }
    uint32_t k = intern(&s->kinds, &s->n_kinds, kind && kind[0] ? kind : "product");
    if (k == SHELF_NONE || k > UINT16_MAX) return SHELF_ENOMEM;
    s->item_kind[idx] = (uint16_t)k;
    s->item_cat[idx] = SHELF_NONE;
    if (cat && cat[0] && (s->item_cat[idx] = intern(&s->cats, &s->n_cats, cat)) == SHELF_NONE) return SHELF_ENOMEM;
    s->item_brand[idx] = SHELF_NONE;
    if (brand && brand[0] && (s->item_brand[idx] = intern(&s->brands, &s->n_brands, brand)) == SHELF_NONE)
        return SHELF_ENOMEM;
    s->item_ok[idx] = available ? 1 : 0;
    s->item_price[idx] = it->has_price ? (float)it->price : NAN;
    s->item_created[idx] = it->created;
    char *t = s->item_title[idx], *i = s->item_image[idx]; /* swapped: the caller frees the old ones */
    s->item_title[idx] = x->title, x->title = t;
    s->item_image[idx] = x->image, x->image = i;
    if (idx >= s->n_items) s->n_items = idx + 1;
    return 0;
}

int srv_item_set(shelf_server *s, uint32_t idx, const shelf_item *it)
{
    item_extra x;
    item_extra_of(it, &x);
    int rc = x.oom ? SHELF_ENOMEM : 0;
    pthread_rwlock_wrlock(&s->items_rw);
    if (!rc) rc = item_set_locked(s, idx, it, &x);
    if (!rc && s->cf && !(rc = shelf_coldfill_set_item(s->cf, idx, x.f, x.nf))) rc = shelf_coldfill_update(s->cf, idx);
    pthread_rwlock_unlock(&s->items_rw);
    free(x.title);
    free(x.image);
    return rc == SHELF_EINVAL ? 0 : rc;
}

int srv_coldfill_build(shelf_server *s, const srv_engine *e)
{
    if (!e->model) return 0;
    uint32_t I = e->model->n_items;
    const shelf_snapshot *sn = s->snap;
    uint8_t *warm = calloc(I ? I : 1, 1);
    if (!warm) return SHELF_ENOMEM;
    /* warm: items the model scores that had events when the server started */
    for (uint32_t i = 0; i < I && i < sn->n_items; i++) warm[i] = sn->iu_off[i + 1] > sn->iu_off[i];
    pthread_rwlock_wrlock(&s->items_rw);
    int rc = s->cf ? shelf_coldfill_build(s->cf, warm, I) : 0;
    uint32_t n = s->cf ? shelf_coldfill_count(s->cf) : 0;
    pthread_rwlock_unlock(&s->items_rw);
    free(warm);
    if (!rc) shelf_info("serve: %u items the model did not learn score by their content neighbours", n);
    return rc;
}

void srv_item_retire(shelf_server *s, uint32_t idx)
{
    pthread_rwlock_wrlock(&s->items_rw);
    if (idx < s->n_items) {
        s->item_ok[idx] = 0;
        if (s->item_ext[idx]) shelf_strmap_put(s->item_map, s->item_ext[idx], strlen(s->item_ext[idx]), SHELF_NONE);
        free(s->item_ext[idx]);
        s->item_ext[idx] = NULL;
    }
    pthread_rwlock_unlock(&s->items_rw);
}

uint32_t srv_item_find(shelf_server *s, const char *ext)
{
    uint32_t idx;
    pthread_rwlock_rdlock(&s->items_rw);
    int found = shelf_strmap_get(s->item_map, ext, strlen(ext), &idx);
    pthread_rwlock_unlock(&s->items_rw);
    return found ? idx : SHELF_NONE;
}

uint32_t srv_n_items(shelf_server *s)
{
    pthread_rwlock_rdlock(&s->items_rw);
    uint32_t n = s->n_items;
    pthread_rwlock_unlock(&s->items_rw);
    return n;
}

/* ---- the ranking room's view (rank_int.h) ----------------------------------------------- */

static void env_catalogue_read(void *ctx, shelf__catalogue *v)
{
    shelf_server *s = ctx;
    pthread_rwlock_rdlock(&s->items_rw);
    *v = (shelf__catalogue){.n_items = s->n_items, .ok = s->item_ok, .kind = s->item_kind, .cat = s->item_cat, .brand = s->item_brand,
                            .price = s->item_price, .created = s->item_created, .brands = s->brands,
                            .n_brands = s->n_brands, .title = s->item_title,
                            .ext = s->item_ext, .kinds = s->kinds, .n_kinds = s->n_kinds, .cats = s->cats,
                            .n_cats = s->n_cats, .cf = s->cf};
}

static void env_catalogue_done(void *ctx) { pthread_rwlock_unlock(&((shelf_server *)ctx)->items_rw); }
static void env_pop(void *ctx, float *sc, uint32_t n) { srv_pop_scores(ctx, sc, n); }
static void env_fallback(void *ctx, float *sc, uint32_t n) { srv_fallback_scores(ctx, sc, n); }

static int env_context(void *ctx, const uint16_t *v, uint32_t nv, float *sc, uint32_t n)
{
    return srv_ctx_scores(ctx, v, nv, sc, n);
}

static void env_hashes(void *ctx, const uint16_t *v, uint32_t nv, uint32_t *out) { srv_ctx_hashes(ctx, v, nv, out); }
static uint32_t env_item_index(void *ctx, const char *ext) { return srv_item_find(ctx, ext); }

static void env_popular(void *ctx, float *scores, uint32_t n)
{
    shelf_server *s = ctx;
    pthread_mutex_lock(&s->pop_mu);
    for (uint32_t i = 0; i < n; i++) scores[i] = i < s->items_cap ? (float)s->pop_all[i] : 0.0f;
    pthread_mutex_unlock(&s->pop_mu);
}

void srv_rank_env(shelf_server *s, const srv_engine *e, shelf__rank_env *env)
{
    *env = (shelf__rank_env){.ctx = s, .model = e->model, .caps = e->caps, .gen = e->gen,
                             .type_names = s->type_name, .n_types = s->n_types, .seen = &s->seen,
                             .blend_popularity = (float)s->o.blend_popularity,
                             .catalogue_read = env_catalogue_read, .catalogue_done = env_catalogue_done,
                             .pop_scores = env_pop, .fallback_scores = env_fallback,
                             .context_scores = env_context, .context_hashes = env_hashes,
                             .popular_scores = env_popular, .item_index = env_item_index,
                             .peers = (const shelf_model *const *)e->peer, .n_peers = e->n_peers,
                             .ledger = s->ledger};
}

/* ---- popularity ----------------------------------------------------------------------------
 * pop[i] = sum over i's events of weight * 2^((ts - pop_ref) / half_life):
 * the decayed count as of time pop_ref, a common factor of every item, so
 * ranking needs no exp at read time. When a new event's time runs far
 * ahead of pop_ref, everything is rescaled to the new reference. */

static double event_weight(shelf_server *s, uint32_t type)
{
    float w = type < s->n_types ? s->type_weight[type] : 1.0f;
    return w > 0 ? w : 0;
}

void srv_pop_add(shelf_server *s, uint32_t item, uint32_t type, int64_t ts, const uint16_t *ctx, uint32_t n_ctx)
{
    double w = event_weight(s, type);
    if (w == 0) return;
    int64_t now = (int64_t)time(NULL);
    if (ts > now) ts = now; /* a clock ahead (or a typo) must not wipe the counters out */
    double h = s->o.pop_half_life_s;
    pthread_mutex_lock(&s->pop_mu);
    double d = ((double)ts - s->pop_ref) / h;
    if (d > 32) { /* rescale to a new reference */
        double f = exp2(-d);
        for (uint32_t i = 0; i < s->items_cap; i++) s->pop[i] *= f;
        for (uint32_t v = 0; v < s->n_ctx; v++)
            for (uint32_t i = 0; i < s->items_cap; i++) s->ctx_pop[v][i] *= f;
        s->pop_ref = (double)ts;
        d = 0;
    }
    if (item < s->items_cap) {
        double add = w * exp2(d);
        s->pop[item] += add;
        s->pop_all[item] += w;
        for (uint32_t k = 0; k < n_ctx; k++)
            if (ctx[k] < s->n_ctx) s->ctx_pop[ctx[k]][item] += add;
    }
    pthread_mutex_unlock(&s->pop_mu);
}

int srv_ctx_find(shelf_server *s, const char *kv)
{
    pthread_mutex_lock(&s->pop_mu);
    int found = -1;
    for (uint32_t v = 0; v < s->n_ctx && found < 0; v++)
        if (!strcmp(s->ctx_name[v], kv)) found = (int)v;
    pthread_mutex_unlock(&s->pop_mu);
    return found;
}

/* pop_mu held: the counter of kv, made when there is room */
static int ctx_intern(shelf_server *s, const char *kv)
{
    for (uint32_t v = 0; v < s->n_ctx; v++)
        if (!strcmp(s->ctx_name[v], kv)) return (int)v;
    if (s->n_ctx == SRV_MAX_CTX) return -1;
    double *q = calloc(s->items_cap ? s->items_cap : 1, sizeof *q);
    char *name = strdup(kv);
    if (!q || !name) {
        free(q);
        free(name);
        return -1;
    }
    s->ctx_pop[s->n_ctx] = q;
    s->ctx_name[s->n_ctx] = name;
    return (int)s->n_ctx++;
}

uint32_t srv_ctx_of_attributes(shelf_server *s, const char *attributes, uint16_t *ctx)
{
    uint32_t n = 0;
    cJSON *j = attributes ? cJSON_Parse(attributes) : NULL;
    pthread_mutex_lock(&s->pop_mu);
    for (const cJSON *a = cJSON_IsObject(j) ? j->child : NULL; a && n < SRV_USER_CTX; a = a->next) {
        char kv[200];
        if (shelf__json_kv(a, kv, sizeof kv) <= 0) continue;
        int v = ctx_intern(s, kv);
        if (v >= 0) ctx[n++] = (uint16_t)v;
    }
    pthread_mutex_unlock(&s->pop_mu);
    cJSON_Delete(j);
    return n;
}

void srv_user_set_ctx(shelf_server *s, uint32_t idx, const char *attributes)
{
    uint16_t ctx[SRV_USER_CTX];
    uint32_t n = srv_ctx_of_attributes(s, attributes, ctx);
    srv_user *u = srv_user_at(s, idx);
    if (!u) return;
    pthread_mutex_lock(&u->mu);
    memcpy(u->ctx, ctx, n * sizeof *ctx);
    u->n_ctx = (uint8_t)n;
    pthread_mutex_unlock(&u->mu);
}

void srv_ctx_hashes(shelf_server *s, const uint16_t *ctx, uint32_t n_ctx, uint32_t *out)
{
    pthread_mutex_lock(&s->pop_mu);
    for (uint32_t k = 0; k < n_ctx; k++) {
        const char *name = ctx[k] < s->n_ctx ? s->ctx_name[ctx[k]] : "";
        out[k] = shelf_ctx_hash(name, strlen(name));
    }
    pthread_mutex_unlock(&s->pop_mu);
}

int srv_ctx_scores(shelf_server *s, const uint16_t *ctx, uint32_t n_ctx, float *scores, uint32_t n)
{
    pthread_mutex_lock(&s->pop_mu);
    uint32_t m = n < s->items_cap ? n : s->items_cap;
    double tot = 0, tv[SRV_USER_CTX] = {0};
    int any = 0;
    for (uint32_t i = 0; i < m; i++) tot += s->pop[i];
    for (uint32_t k = 0; k < n_ctx && k < SRV_USER_CTX; k++) {
        if (ctx[k] >= s->n_ctx) continue;
        for (uint32_t i = 0; i < m; i++) tv[k] += s->ctx_pop[ctx[k]][i];
        any |= tv[k] > 0;
    }
    if (any) {
        for (uint32_t i = 0; i < m; i++) {
            double v = tot > 0 ? 0.1 * s->pop[i] / tot : 0;
            for (uint32_t k = 0; k < n_ctx && k < SRV_USER_CTX; k++)
                if (tv[k] > 0) v += s->ctx_pop[ctx[k]][i] / tv[k];
            scores[i] = (float)v;
        }
        for (uint32_t i = m; i < n; i++) scores[i] = 0;
    }
    pthread_mutex_unlock(&s->pop_mu);
    return any;
}

void srv_fallback_scores(shelf_server *s, float *scores, uint32_t n)
{
    pthread_mutex_lock(&s->pop_mu);
    uint32_t m = n < s->items_cap ? n : s->items_cap;
    const double *vals[SHELF__FB_N] = {[SHELF__FB_TRENDING] = s->pop, [SHELF__FB_POPULAR] = s->pop_all};
    shelf__fallback_scores(scores, m, &s->fb, vals);
    pthread_mutex_unlock(&s->pop_mu);
    for (uint32_t i = m; i < n; i++) scores[i] = 1e-9f; /* items not in the live state yet */
}

void srv_pop_scores(shelf_server *s, float *scores, uint32_t n)
{
    pthread_mutex_lock(&s->pop_mu);
    for (uint32_t i = 0; i < n; i++) scores[i] = i < s->items_cap ? (float)s->pop[i] : 0.0f;
    pthread_mutex_unlock(&s->pop_mu);
}

/* ---- events and the store's cursor ----------------------------------------------------------- */

void srv_live_event(shelf_server *s, uint32_t user, uint32_t item, uint32_t type, int64_t ts)
{
    srv_user *lu = srv_user_at(s, user);
    uint16_t ctx[SRV_USER_CTX];
    uint32_t n_ctx = 0;
    if (lu) {
        pthread_mutex_lock(&lu->mu);
        if (!lu->forgotten && srv_user_append(lu, item, (uint16_t)type, ts))
            shelf_error("serve: out of memory for user %u's live history", user);
        n_ctx = lu->n_ctx;
        memcpy(ctx, lu->ctx, n_ctx * sizeof *ctx);
        pthread_mutex_unlock(&lu->mu);
    }
    srv_pop_add(s, item, type, ts, ctx, n_ctx);
}

void srv_live_own_events(shelf_server *s, uint64_t first, uint64_t last)
{
    if (!s->n_own && first == s->ev_cursor + 1) { /* nothing else came between */
        s->ev_cursor = last;
        return;
    }
    if (s->n_own && s->own[s->n_own - 1][1] + 1 == first) { /* one run with the last */
        s->own[s->n_own - 1][1] = last;
        return;
    }
    if (s->n_own == s->own_cap) {
        size_t cap = s->own_cap ? 2 * s->own_cap : 64;
        uint64_t(*o)[2] = realloc(s->own, cap * sizeof *o);
        if (!o) { /* cannot remember them: catch-up would apply them twice */
            shelf_error("serve: out of memory for the events cursor; imports are read at restart only");
            return;
        }
        s->own = o;
        s->own_cap = cap;
    }
    s->own[s->n_own][0] = first;
    s->own[s->n_own][1] = last;
    s->n_own++;
}

typedef struct {
    shelf_server *s;
    size_t k;        /* the first own run not below the event */
    uint64_t newest; /* the newest event id seen */
    uint64_t n_ev;   /* events applied */
    uint32_t n_users, n_items; /* added */
} catch_up;

static int on_foreign_event(void *ctx, uint64_t id, const shelf_event *ev)
{
    catch_up *c = ctx;
    shelf_server *s = c->s;
    if (id > c->newest) c->newest = id;
    while (c->k < s->n_own && s->own[c->k][1] < id) c->k++;
    if (c->k < s->n_own && s->own[c->k][0] <= id) return 0; /* the writer's own: applied at its commit */
    srv_live_event(s, ev->user, ev->item, ev->type, ev->ts);
    c->n_ev++;
    return 0;
}

static int on_new_user(void *ctx, uint32_t idx, const shelf_user *u)
{
    catch_up *c = ctx;
    shelf_server *s = c->s;
    if ((unsigned char)u->id[0] == 1 || srv_user_find(s, u->id) != SHELF_NONE) return 0; /* gone, or known */
    srv_user_add(s, u->id, idx);
    c->n_users++;
    if (u->attributes) srv_user_set_ctx(s, idx, u->attributes);
    return 0;
}

static int on_new_item(void *ctx, uint32_t idx, const shelf_item *it)
{
    catch_up *c = ctx;
    shelf_server *s = c->s;
    if ((unsigned char)it->id[0] == 1 || srv_item_find(s, it->id) != SHELF_NONE) return 0;
    c->n_items++;
    return srv_item_set(s, idx, it);
}

int srv_live_catch_up(shelf_server *s, shelf_err *err)
{
    int rc = shelf_store_begin_read(s->st);
    if (rc) return shelf_err_set(err, rc, "%s", shelf_store_errmsg(s->st));
    uint32_t U = shelf_store_n_users(s->st), I = shelf_store_n_items(s->st);
    catch_up c = {.s = s, .newest = s->ev_cursor};
    for (uint32_t i = s->items_synced; !rc && i < I; i++) {
        rc = shelf_store_get_item(s->st, i, on_new_item, &c);
        if (rc == SHELF_ENOTFOUND) rc = 0; /* deleted */
    }
    for (uint32_t u = s->users_synced; !rc && u < U; u++) {
        rc = shelf_store_get_user(s->st, u, on_new_user, &c);
        if (rc == SHELF_ENOTFOUND) rc = 0;
    }
    if (!rc) rc = shelf_store_foreach_event(s->st, s->ev_cursor, on_foreign_event, &c);
    if (!rc) { /* everything up to the newest event is in: the cursor moves past the own runs too */
        s->ev_cursor = c.newest;
        s->n_own = 0;
        s->users_synced = U;
        s->items_synced = I;
    }
    if (rc) shelf_err_set(err, rc, "%s", shelf_store_errmsg(s->st));
    shelf_store_commit(s->st);
    if (!rc)
        shelf_info("serve: caught up with the store: %u users, %u items and %llu events from other writers",
                   c.n_users, c.n_items, (unsigned long long)c.n_ev);
    return rc;
}

/* ---- start-up ---------------------------------------------------------------------------- */

typedef struct {
    shelf_server *s;
    int rc;
} item_load;

static int load_item(void *ctx, uint32_t idx, const shelf_item *it)
{
    item_load *l = ctx;
    if ((unsigned char)it->id[0] == 1) { /* tombstone: reserve the index only */
        pthread_rwlock_wrlock(&l->s->items_rw);
        int rc = items_reserve(l->s, idx + 1);
        if (!rc && idx >= l->s->n_items) l->s->n_items = idx + 1;
        pthread_rwlock_unlock(&l->s->items_rw);
        return rc;
    }
    return srv_item_set(l->s, idx, it);
}

static int load_user(void *ctx, uint32_t idx, const shelf_user *u)
{
    shelf_server *s = ctx;
    if (!u->attributes || (unsigned char)u->id[0] == 1) return 0;
    srv_user_set_ctx(s, idx, u->attributes);
    return 0;
}

int srv_state_init(shelf_server *s, shelf_err *err)
{
    if (!(s->user_map = shelf_strmap_new(1024)) || !(s->item_map = shelf_strmap_new(1024)) ||
        !(s->cf = shelf_coldfill_new(s->o.cold_neighbours)))
        return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    /* event types */
    s->n_types = shelf_store_n_event_types(s->st);
    s->type_name = calloc(s->n_types ? s->n_types : 1, sizeof *s->type_name);
    s->type_weight = calloc(s->n_types ? s->n_types : 1, sizeof *s->type_weight);
    if (!s->type_name || !s->type_weight) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    for (uint32_t t = 0; t < s->n_types; t++) {
        const char *name = shelf_store_event_type_name(s->st, t);
        float w = 1;
        uint32_t id;
        shelf_store_event_type(s->st, name, &id, &w);
        if (!(s->type_name[t] = strdup(name ? name : "?"))) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        s->type_weight[t] = w;
    }
    /* the deployment's ranking rules, checked before anything is loaded */
    int prc = shelf__seen_parse(&s->seen, s->o.exclude_seen ? s->o.exclude_seen : "purchase", s->type_name,
                                s->n_types, err);
    if (!prc) prc = shelf__fallback_parse(&s->fb, s->o.fallback, err);
    if (prc) return prc;
    /* histories */
    int rc = shelf_snapshot_from_store(s->st, 0, &s->snap);
    if (rc) return shelf_err_set(err, rc, "%s", shelf_store_errmsg(s->st));
    const shelf_snapshot *sn = s->snap;
    for (uint32_t u = 0; u < sn->n_users; u++) {
        const char *ext = sn->user_ext + sn->user_ext_off[u];
        if ((unsigned char)ext[0] == 1) continue; /* forgotten */
        if (shelf_strmap_put(s->user_map, ext, strlen(ext), u)) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    }
    s->n_users = sn->n_users;
    s->users_synced = sn->n_users;
    s->items_synced = sn->n_items;
    s->ev_cursor = sn->last_event_id;
    /* items */
    item_load l = {s, 0};
    if ((rc = shelf_store_foreach_item(s->st, load_item, &l)))
        return shelf_err_set(err, rc, "%s", rc == SHELF_ENOMEM ? "out of memory" : shelf_store_errmsg(s->st));
    /* users' context values (their attributes) */
    if ((rc = shelf_store_foreach_user(s->st, load_user, s)))
        return shelf_err_set(err, rc, "%s", rc == SHELF_ENOMEM ? "out of memory" : shelf_store_errmsg(s->st));
    /* popularity from the histories, as of the newest event (or now) */
    int64_t newest = 0;
    for (uint64_t e = 0; e < sn->n_events; e++)
        if (sn->seq_ts[e] > newest) newest = sn->seq_ts[e];
    s->pop_ref = newest > 0 ? (double)newest : (double)time(NULL);
    for (uint64_t e = 0; e < sn->n_events; e++) {
        int64_t t = sn->seq_ts[e] > 0 ? sn->seq_ts[e] : (int64_t)s->pop_ref;
        srv_pop_add(s, sn->seq_item[e], sn->seq_type[e], t, NULL, 0);
    }
    for (uint32_t u = 0; u < sn->n_users && s->n_ctx; u++) { /* and per context value */
        srv_user *lu = srv_user_at(s, u);
        if (!lu || !lu->n_ctx) continue;
        for (uint64_t e = sn->seq_off[u]; e < sn->seq_off[u + 1]; e++) {
            int64_t t = sn->seq_ts[e] > 0 ? sn->seq_ts[e] : (int64_t)s->pop_ref;
            double w = event_weight(s, sn->seq_type[e]);
            if (t > (int64_t)s->pop_ref) t = (int64_t)s->pop_ref;
            for (uint32_t k = 0; k < lu->n_ctx; k++)
                s->ctx_pop[lu->ctx[k]][sn->seq_item[e]] += w * exp2(((double)t - s->pop_ref) / s->o.pop_half_life_s);
        }
    }
    return 0;
}

void srv_state_free(shelf_server *s)
{
    for (uint32_t p = 0; p < SRV_PAGES; p++) {
        _Atomic(srv_user *) *page = atomic_load(&s->pages[p]);
        if (!page) continue;
        for (uint32_t i = 0; i < SRV_PAGE; i++) user_free(atomic_load(&page[i]));
        free(page);
    }
    shelf_strmap_free(s->user_map);
    shelf_strmap_free(s->item_map);
    for (uint32_t i = 0; i < s->n_items; i++) {
        free(s->item_ext[i]);
        free(s->item_title[i]);
        free(s->item_image[i]);
    }
    free(s->item_ext);
    free(s->item_title);
    free(s->item_image);
    free(s->item_price);
    free(s->item_created);
    free(s->item_kind);
    free(s->item_cat);
    free(s->item_brand);
    free(s->item_ok);
    for (uint32_t i = 0; i < s->n_kinds; i++) free(s->kinds[i]);
    free(s->kinds);
    for (uint32_t i = 0; i < s->n_cats; i++) free(s->cats[i]);
    free(s->cats);
    for (uint32_t i = 0; i < s->n_brands; i++) free(s->brands[i]);
    free(s->brands);
    free(s->pop);
    free(s->pop_all);
    for (uint32_t v = 0; v < s->n_ctx; v++) {
        free(s->ctx_pop[v]);
        free(s->ctx_name[v]);
    }
    free(s->sess_ring);
    free(s->own);
    shelf_coldfill_free(s->cf);
    for (uint32_t t = 0; t < s->n_types; t++) free(s->type_name ? s->type_name[t] : NULL);
    free(s->type_name);
    free(s->type_weight);
    shelf_snapshot_free(s->snap);
}
