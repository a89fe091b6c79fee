/* auth.c: API keys: the hashes of the valid keys (read again whenever the
 * store changed), the scope of a request's bearer key, and key creation. */
#include "serve_int.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ---- freshness --------------------------------------------------------------------------------------------
 * A revoked key must fail on the next request, and a query of the store on
 * every request would cost each recommendation a trip through SQLite. The
 * store is in WAL mode: every commit, by any connection or process, rewrites
 * the wal-index header at the start of the -shm file (its change counter,
 * last frame and salts; sqlite.org/walformat.html). One pread of that header
 * tells whether the store changed since the keys were read; only then are
 * they read again, on a read-only connection of their own (a WAL reader
 * never waits for the writer). The header is read before the keys, so a
 * commit during the read shows as a change next time. */

/* the header now; a short read leaves zeros (seen as a change at most once) */
static void wal_header(const shelf_server *s, unsigned char *h)
{
    memset(h, 0, SRV_WAL_HDR);
    if (s->shm_fd >= 0 && pread(s->shm_fd, h, SRV_WAL_HDR, 0) != SRV_WAL_HDR) memset(h, 0, SRV_WAL_HDR);
}

int srv_keys_open(shelf_server *s, shelf_err *err)
{
    char shm[4096];
    s->shm_fd = -1;
    int rc = shelf_store_open(s->store_path, SHELF_STORE_READONLY, &s->keys_st, err);
    if (rc) return rc;
    if ((size_t)snprintf(shm, sizeof shm, "%s-shm", s->store_path) < sizeof shm)
        s->shm_fd = open(shm, O_RDONLY | O_CLOEXEC);
    if (s->shm_fd < 0)
        shelf_warn("serve: %s: cannot read the store's wal-index; API keys revoked with `shelf keys` count only "
                   "after up to %d s", shm, SRV_KEYS_REFRESH_S);
    return 0;
}

void srv_keys_close(shelf_server *s)
{
    if (s->shm_fd >= 0) close(s->shm_fd);
    s->shm_fd = -1;
    shelf_store_close(s->keys_st);
    s->keys_st = NULL;
}

/* reads the keys and the scenarios (keys_mu held); seen: the wal-index
 * header read before */
static int load_keys_locked(shelf_server *s, const unsigned char *seen, shelf_err *err)
{
    key_list l = {0};
    int rc = shelf_store_foreach_key(s->keys_st, collect_key, &l);
    if (rc) {
        shelf_err_set(err, rc, "%s", rc == SHELF_ENOMEM ? "out of memory" : shelf_store_errmsg(s->keys_st));
        free(l.k);
        return rc;
    }
    atomic_fetch_add(&s->m.key_reads, 1);
    pthread_rwlock_wrlock(&s->keys_rw);
    free(s->keys);
    s->keys = l.k;
    s->n_keys = l.n;
    memcpy(s->keys_hdr, seen, SRV_WAL_HDR);
    pthread_rwlock_unlock(&s->keys_rw);
    /* the scenarios are the store's other admin rows: a change by another
     * process (`shelf scenario put`) counts from the same look */
    shelf_err e = {0};
    if (srv_scenarios_load(s, s->keys_st, &e)) shelf_warn("serve: reading the scenarios failed: %s", e.msg);
    return 0;
}

int srv_load_keys(shelf_server *s, shelf_err *err)
{
    unsigned char h[SRV_WAL_HDR];
    pthread_mutex_lock(&s->keys_mu);
    wal_header(s, h);
    int rc = load_keys_locked(s, h, err);
    pthread_mutex_unlock(&s->keys_mu);
    return rc;
}

void srv_keys_header(shelf_server *s, unsigned char *h) { wal_header(s, h); }

/* The writer's own commit changes no key. When the keys were read at
 * `before` (taken inside the writer's transaction) and the header's change
 * counter (bytes 8..11, native order) moved by exactly one commit since, no
 * other writer came between, so the header after it counts as read too:
 * the server's own ingestion does not send every request to read the keys
 * again. Any other count (another process's commit, a WAL restart) leaves
 * the next request to read them. */
void srv_keys_own_commit(shelf_server *s, const unsigned char *before)
{
    if (s->shm_fd < 0) return;
    unsigned char after[SRV_WAL_HDR];
    wal_header(s, after);
    uint32_t c0, c1;
    memcpy(&c0, before + 8, sizeof c0);
    memcpy(&c1, after + 8, sizeof c1);
    if (c1 != c0 + 1u) return;
    pthread_rwlock_wrlock(&s->keys_rw);
    if (!memcmp(s->keys_hdr, before, SRV_WAL_HDR)) memcpy(s->keys_hdr, after, SRV_WAL_HDR);
    pthread_rwlock_unlock(&s->keys_rw);
}

/* the keys again when the store changed since they were read (seen: the
 * header this request read); a failed read keeps the old ones, logged */
static void refresh_keys(shelf_server *s, const unsigned char *seen)
{
    pthread_mutex_lock(&s->keys_mu);
    unsigned char h[SRV_WAL_HDR];
    pthread_rwlock_rdlock(&s->keys_rw);
    int stale = memcmp(s->keys_hdr, seen, SRV_WAL_HDR) != 0; /* another request may have just read them */
    pthread_rwlock_unlock(&s->keys_rw);
    if (stale) {
        shelf_err e = {0};
        wal_header(s, h);
        if (load_keys_locked(s, h, &e)) shelf_warn("serve: reading the API keys failed: %s", e.msg);
    }
    pthread_mutex_unlock(&s->keys_mu);
}

/* the scope of the request's bearer key: 0 none or unknown */
int srv_request_scope(srv_req *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    const char *key = h + 7;
    while (*key == ' ') key++;
    size_t len = strlen(key);
    while (len && key[len - 1] == ' ') len--;
    unsigned char hash[32], wal[SRV_WAL_HDR];
    shelf_key_hash(key, len, hash);
    shelf_server *s = r->srv;
    wal_header(s, wal);
    pthread_rwlock_rdlock(&s->keys_rw);
    int fresh = s->shm_fd < 0 || memcmp(wal, s->keys_hdr, SRV_WAL_HDR) == 0;
    if (!fresh) {
        pthread_rwlock_unlock(&s->keys_rw);
        refresh_keys(s, wal);
        pthread_rwlock_rdlock(&s->keys_rw);
    }
    int scope = 0;
    for (size_t i = 0; i < s->n_keys; i++)
        if (CRYPTO_memcmp(hash, s->keys[i].hash, 32) == 0) {
            scope = (int)s->keys[i].scope;
            r->key_id = s->keys[i].id;
        }
    pthread_rwlock_unlock(&s->keys_rw);
    return scope;
}

int srv_route_keys(srv_req *r, char *const *arg)
{
    (void)arg;
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
    char why[SRV_WHY];
    snprintf(why, sizeof why, "%s", shelf_store_errmsg(r->srv->st));
    pthread_mutex_unlock(&r->srv->store_mu);
    cJSON_Delete(j);
    if (rc == SHELF_EINVAL) return srv_error(r, 400, "bad_request", -1, "%s", why); /* a name over 63 bytes */
    if (rc) return srv_error(r, 500, "internal", -1, "%s", why);
    srv_load_keys(r->srv, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "scope", shelf_scope_name(scope));
    OPENSSL_cleanse(key, sizeof key);
    return srv_json(r, 200, o);
}
