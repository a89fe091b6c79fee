/* keys.c: API keys in the store: random "shelf_<64 hex>" texts of which only
 * the SHA-256 (libcrypto), a 12-character prefix, a scope and a name are kept. */
#include "store_int.h"
#include "core/assert_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define KEY_PREFIX "shelf_"
#define KEY_RANDOM 32  /* random bytes, 64 hex digits */
#define KEY_SHOWN 12   /* characters kept in the clear */

static const char *const scope_names[] = {
    [SHELF_SCOPE_READ] = "read", [SHELF_SCOPE_WRITE] = "write", [SHELF_SCOPE_ADMIN] = "admin"};

static int scope_ok(shelf_scope s) { return s >= SHELF_SCOPE_READ && s <= SHELF_SCOPE_ADMIN; }

int shelf_scope_parse(const char *s, shelf_scope *out)
{
    for (int k = SHELF_SCOPE_READ; k <= SHELF_SCOPE_ADMIN; k++) {
        if (s && strcmp(s, scope_names[k]) == 0) {
            *out = (shelf_scope)k;
            return 0;
        }
    }
    return SHELF_EINVAL;
}

const char *shelf_scope_name(shelf_scope s) { return scope_ok(s) ? scope_names[s] : "?"; }

/* SHA-256 of len bytes; 0, or -1 if libcrypto failed. */
static int sha256(const char *key, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(key, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) return -1;
    return 0;
}

void shelf_key_hash(const char *key, size_t len, unsigned char out[32])
{
    /* a failed digest gives all zeros, which no stored hash equals */
    if (sha256(key, len, out)) memset(out, 0, 32);
}

int shelf__sqlite_key_create(shelf_store *st, shelf_scope scope, const char *name, char *key_out, int64_t *id)
{
    if (!scope_ok(scope)) return shelf_store_fail(st, SHELF_EINVAL, "store: invalid key scope %d", (int)scope);
    if (name && strlen(name) >= sizeof ((shelf_api_key *)0)->name)
        return shelf_store_fail(st, SHELF_EINVAL, "store: key name longer than %zu bytes",
                                sizeof ((shelf_api_key *)0)->name - 1);
    unsigned char rnd[KEY_RANDOM], hash[32];
    char key[SHELF_API_KEY_LEN + 1];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return shelf_store_fail(st, SHELF_EIO, "store: no random bytes for a key (RAND_bytes failed)");
    static const char hex[] = "0123456789abcdef";
    size_t p = strlen(KEY_PREFIX);
    memcpy(key, KEY_PREFIX, p);
    for (size_t i = 0; i < sizeof rnd; i++) {
        key[p++] = hex[rnd[i] >> 4];
        key[p++] = hex[rnd[i] & 15];
    }
    key[p] = '\0';
    SHELF_ASSERT(p == SHELF_API_KEY_LEN);
    int rc = 0;
    if (sha256(key, p, hash)) {
        rc = shelf_store_fail(st, SHELF_EIO, "store: SHA-256 of a key failed (libcrypto)");
        goto out;
    }
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO api_keys(prefix, hash, scope, name, created) VALUES(?1, ?2, ?3, ?4, ?5)",
                           -1, &s, NULL) != SQLITE_OK) {
        rc = shelf__store_sqlfail(st, "creating a key");
        goto out;
    }
    sqlite3_bind_text(s, 1, key, KEY_SHOWN, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, scope_names[scope], -1, SQLITE_STATIC);
    if (name) sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
    else sqlite3_bind_null(s, 4);
    sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
    if (sqlite3_step(s) != SQLITE_DONE) rc = shelf__store_sqlfail(st, "creating a key");
    sqlite3_finalize(s);
    if (!rc) {
        memcpy(key_out, key, sizeof key);
        if (id) *id = sqlite3_last_insert_rowid(st->db);
    }
out:
    OPENSSL_cleanse(rnd, sizeof rnd);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int shelf__sqlite_key_revoke(shelf_store *st, int64_t id)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "UPDATE api_keys SET revoked=1 WHERE id=?1", -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "revoking a key");
    sqlite3_bind_int64(s, 1, id);
    int rc = 0;
    if (sqlite3_step(s) != SQLITE_DONE) rc = shelf__store_sqlfail(st, "revoking a key");
    else if (sqlite3_changes(st->db) == 0)
        rc = shelf_store_fail(st, SHELF_ENOTFOUND, "store: no key %lld", (long long)id);
    sqlite3_finalize(s);
    return rc;
}

int shelf__sqlite_foreach_key(shelf_store *st, shelf_key_cb cb, void *ctx)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, prefix, hash, scope, name, created, revoked FROM api_keys ORDER BY id", -1,
                           &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "listing keys");
    int r, rc = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        shelf_api_key k = {.id = sqlite3_column_int64(s, 0),
                           .created = sqlite3_column_int64(s, 5),
                           .revoked = sqlite3_column_int(s, 6) != 0};
        const char *prefix = (const char *)sqlite3_column_text(s, 1);
        const char *scope = (const char *)sqlite3_column_text(s, 3);
        const char *name = (const char *)sqlite3_column_text(s, 4);
        const void *hash = sqlite3_column_blob(s, 2);
        if (sqlite3_column_bytes(s, 2) != (int)sizeof k.hash || !hash) {
            rc = shelf_store_fail(st, SHELF_ECORRUPT, "store: key %lld: hash is not 32 bytes", (long long)k.id);
            break;
        }
        if (shelf_scope_parse(scope, &k.scope)) {
            rc = shelf_store_fail(st, SHELF_ECORRUPT, "store: key %lld: unknown scope '%s'", (long long)k.id,
                                  scope ? scope : "");
            break;
        }
        memcpy(k.hash, hash, sizeof k.hash);
        snprintf(k.prefix, sizeof k.prefix, "%s", prefix ? prefix : "");
        snprintf(k.name, sizeof k.name, "%s", name ? name : "");
        if ((rc = cb(ctx, &k))) break;
    }
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "listing keys");
    sqlite3_finalize(s);
    return rc;
}
