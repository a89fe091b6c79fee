/* auth.c: API keys: the hashes of the valid keys (re-read by the writer
 * when idle), the scope of a request's bearer key, and key creation. */
#include "serve_int.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

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
int srv_request_scope(srv_req *r)
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
