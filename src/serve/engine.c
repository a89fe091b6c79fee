/* engine.c: the model generation the server serves: the newest bundle of
 * --bundle that loads (checksum and weights verified; newer ones refused
 * are skipped, logged and shown by /v1/health) loaded into an engine,
 * swapped on reload while requests hold the one they started with
 * (reference counts). */
#include "serve_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- engine (model generation) ---------------------------------------------------------------- */

srv_engine *srv_engine_get(shelf_server *s)
{
    pthread_mutex_lock(&s->engine_mu);
    srv_engine *e = s->engine;
    atomic_fetch_add(&e->refs, 1);
    pthread_mutex_unlock(&s->engine_mu);
    return e;
}

void srv_engine_put(srv_engine *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1) return;
    shelf_model_free(e->model);
    for (uint32_t k = 0; k < e->n_peers; k++) shelf_model_free(e->peer[k]);
    pthread_rwlock_destroy(&e->model_rw);
    free(e);
}

static int has_manifest(const char *dir)
{
    char p[4500];
    struct stat sb;
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The manifest's "created" time of the bundle in dir (-1 when it cannot be
 * read or parsed), in *checked whether it carries checksums, and its model
 * kind into kind (32 bytes; "" unknown) when kind is not NULL. */
static double manifest_read(const char *dir, int *checked, char *kind)
{
    char p[4500];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    *checked = 0;
    FILE *f = fopen(p, "rb");
    if (kind) kind[0] = '\0';
    if (!f) return -1;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "created");
    double t = cJSON_IsNumber(c) ? c->valuedouble : -1;
    *checked = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "checksums"));
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (kind) snprintf(kind, 32, "%s", cJSON_IsString(m) ? m->valuestring : "");
    cJSON_Delete(j);
    return t;
}

/* ---- choosing the bundle: the newest that loads --------------------------------------------------- */

typedef struct bundle_cand {
    char name[256];
    double created; /* the manifest's; its file's time when unreadable, so a damaged newest one is still tried */
} bundle_cand;

static int newer_first(const void *a, const void *b)
{
    const bundle_cand *x = a, *y = b;
    if (x->created != y->created) return x->created < y->created ? 1 : -1;
    return -strcmp(x->name, y->name);
}

/* The sub-bundles of the directory path (sub-directories holding
 * manifest.json; hidden ones and the temporary directories of a bundle
 * being written are left out), newest first: by manifest "created", then
 * name. *out (malloc, the caller frees) and their number *n. */
static int list_bundles(const char *path, bundle_cand **out, size_t *n, shelf_err *err)
{
    DIR *d = opendir(path);
    if (!d) return shelf_err_set(err, SHELF_ENOTFOUND, "%s: no bundle (%s)", path, strerror(errno));
    bundle_cand *c = NULL;
    size_t k = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp-") || strlen(de->d_name) >= sizeof c->name ||
            !has_manifest(p))
            continue;
        if (k == cap) {
            bundle_cand *nc = realloc(c, (cap = cap ? 2 * cap : 16) * sizeof *c);
            if (!nc) {
                free(c);
                closedir(d);
                return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
            }
            c = nc;
        }
        int checked;
        snprintf(c[k].name, sizeof c[k].name, "%s", de->d_name);
        c[k].created = manifest_read(p, &checked, NULL);
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s/manifest.json", path, de->d_name);
        if (c[k].created < 0) c[k].created = stat(p, &sb) == 0 ? (double)sb.st_mtime : 0;
        k++;
    }
    closedir(d);
    if (!k) {
        free(c);
        return shelf_err_set(err, SHELF_ENOTFOUND,
                             "%s: no bundle (no manifest.json in it or its sub-directories)", path);
    }
    qsort(c, k, sizeof *c, newer_first);
    *out = c;
    *n = k;
    return 0;
}

/* Loads the bundle in dir into e: the model, its kind, version and path. */
static int engine_take(srv_engine *e, const char *dir, shelf_err *err)
{
    int rc = shelf_model_load(dir, &e->model, err);
    if (rc) return rc;
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    int checked;
    e->created = manifest_read(dir, &checked, NULL);
    if (e->created < 0) e->created = 0;
    e->unverified = !checked;
    snprintf(e->kind, sizeof e->kind, "%s", shelf_model_name(e->model));
    snprintf(e->version, sizeof e->version, "%.120s@%lld", base, (long long)e->created);
    snprintf(e->path, sizeof e->path, "%s", dir);
    e->caps = shelf_model_caps(e->model);
    return 0;
}

/* Into e the newest bundle of the directory path that loads; the newer
 * ones refused are logged (a warning naming each and why) and kept in
 * e->skipped. When none loads: the reasons, newest first, in err. */
static int engine_newest_valid(srv_engine *e, const char *path, shelf_err *err)
{
    bundle_cand *c = NULL;
    size_t n = 0;
    int rc = list_bundles(path, &c, &n, err), first = 0;
    if (rc) return rc;
    char why[900] = "";
    size_t wl = 0;
    for (size_t i = 0; i < n; i++) {
        char dir[4400];
        shelf_err lerr = {0};
        snprintf(dir, sizeof dir, "%s/%s", path, c[i].name);
        if (!(rc = engine_take(e, dir, &lerr))) break;
        if (!first) first = rc;
        shelf_warn("serve: bundle %s skipped: %s", dir, lerr.msg);
        if (e->n_skipped < SRV_MAX_SKIPPED) {
            snprintf(e->skipped[e->n_skipped].name, sizeof e->skipped[0].name, "%s", c[i].name);
            snprintf(e->skipped[e->n_skipped].why, sizeof e->skipped[0].why, "%.383s", lerr.msg);
        }
        e->n_skipped++;
        if (wl < sizeof why)
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "%s%s: %s", wl ? "; " : "", c[i].name, lerr.msg);
    }
    if (!rc && e->n_skipped)
        shelf_warn("serve: serving bundle %s (model %s), the newest that loads; %d newer skipped", e->path, e->kind,
                   e->n_skipped);
    if (rc) rc = shelf_err_set(err, first, "%s: no bundle loads (%zu tried): %s", path, n, why);
    free(c);
    return rc;
}

const shelf_model *srv_engine_model(const srv_engine *e, const char *kind)
{
    if (e->model && !strcmp(e->kind, kind)) return e->model;
    for (uint32_t k = 0; k < e->n_peers; k++)
        if (!strcmp(shelf_model_name(e->peer[k]), kind)) return e->peer[k];
    return NULL;
}

/* --source-models: the newest bundle of each kind listed (other than the
 * served one) that loads, from the --bundle directory; a kind without one
 * is logged and left out (its scenario sources propose nothing). */
static void engine_peers(shelf_server *s, srv_engine *e)
{
    if (!s->source_models || !s->source_models[0] || has_manifest(s->bundle_path)) return;
    bundle_cand *c = NULL;
    size_t n = 0;
    shelf_err lerr = {0};
    if (list_bundles(s->bundle_path, &c, &n, &lerr)) return;
    char list[256];
    snprintf(list, sizeof list, "%s", s->source_models);
    for (char *save = NULL, *kind = strtok_r(list, ",", &save); kind; kind = strtok_r(NULL, ",", &save)) {
        if (srv_engine_model(e, kind)) continue;
        if (e->n_peers == SRV_MAX_PEERS) {
            shelf_warn("serve: --source-models: at most %d models beside the served one; %s left out", SRV_MAX_PEERS, kind);
            continue;
        }
        size_t i = 0;
        for (; i < n; i++) {
            char dir[4400], mk[32];
            int checked;
            snprintf(dir, sizeof dir, "%s/%s", s->bundle_path, c[i].name);
            if (manifest_read(dir, &checked, mk) < 0 || strcmp(mk, kind)) continue;
            if (!shelf_model_load(dir, &e->peer[e->n_peers], &lerr)) {
                e->n_peers++;
                shelf_info("serve: source model %s from %s", kind, dir);
                break;
            }
            shelf_warn("serve: source model bundle %s skipped: %s", dir, lerr.msg);
        }
        if (i == n) shelf_warn("serve: --source-models: no bundle of model %s loads in %s", kind, s->bundle_path);
    }
    free(c);
}

int srv_engine_load(shelf_server *s, srv_engine **out, shelf_err *err)
{
    srv_engine *e = calloc(1, sizeof *e);
    if (!e) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    atomic_init(&e->refs, 1);
    srv_rwlock_init(&e->model_rw);
    if (!s->bundle_path) {
        snprintf(e->kind, sizeof e->kind, "popularity");
        snprintf(e->version, sizeof e->version, "none");
        *out = e;
        return 0;
    }
    /* one bundle: that one or nothing; a directory of them: the newest that loads */
    int rc = has_manifest(s->bundle_path) ? engine_take(e, s->bundle_path, err)
                                          : engine_newest_valid(e, s->bundle_path, err);
    if (rc) {
        pthread_rwlock_destroy(&e->model_rw);
        free(e);
        return rc;
    }
    engine_peers(s, e);
    *out = e;
    return 0;
}

void srv_engine_describe(shelf_server *s, const srv_engine *e, cJSON *model)
{
    const char *base = strrchr(e->path, '/');
    cJSON_AddStringToObject(model, "bundle", base && base[1] ? base + 1 : e->path);
    cJSON_AddStringToObject(model, "path", e->path);
    cJSON_AddBoolToObject(model, "verified", !e->unverified);
    cJSON *sk = cJSON_AddArrayToObject(model, "skipped");
    for (int k = 0; k < e->n_skipped && k < SRV_MAX_SKIPPED; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "bundle", e->skipped[k].name);
        cJSON_AddStringToObject(o, "reason", e->skipped[k].why);
        cJSON_AddItemToArray(sk, o);
    }
    if (e->n_skipped > SRV_MAX_SKIPPED) cJSON_AddNumberToObject(model, "skipped_more", e->n_skipped - SRV_MAX_SKIPPED);
    pthread_mutex_lock(&s->engine_mu);
    if (s->reload_error[0]) cJSON_AddStringToObject(model, "reload_error", s->reload_error);
    pthread_mutex_unlock(&s->engine_mu);
}

int shelf_server_reload(shelf_server *s, shelf_err *err)
{
    shelf_err kerr = {0};
    if (srv_load_keys(s, &kerr)) shelf_warn("serve: reading the API keys failed: %s", kerr.msg);
    pthread_mutex_lock(&s->reload_mu);
    /* what other connections (shelf import) added joins the live state
     * first, so the new model serves it */
    pthread_mutex_lock(&s->store_mu);
    shelf_err cerr = {0};
    if (srv_live_catch_up(s, &cerr)) shelf_error("serve: catching up with the store failed: %s", cerr.msg);
    pthread_mutex_unlock(&s->store_mu);
    srv_engine *e = NULL;
    shelf_err lerr = {0};
    int rc = srv_engine_load(s, &e, &lerr);
    if (!rc) {
        pthread_mutex_lock(&s->engine_mu);
        e->gen = ++s->next_gen;
        srv_engine *old = s->engine;
        s->engine = e;
        s->reload_error[0] = '\0';
        pthread_mutex_unlock(&s->engine_mu);
        srv_engine_put(old);
        if (srv_coldfill_build(s, e)) shelf_error("serve: out of memory: content neighbours not rebuilt");
        atomic_fetch_add(&s->m.reload_ok, 1);
        shelf_info("serve: model %s %s loaded", e->kind, e->version);
    } else {
        atomic_fetch_add(&s->m.reload_fail, 1);
        pthread_mutex_lock(&s->engine_mu); /* shown by /v1/health until a reload works */
        snprintf(s->reload_error, sizeof s->reload_error, "%.511s", lerr.msg);
        pthread_mutex_unlock(&s->engine_mu);
        shelf_error("serve: reload failed, the current model (%s) stays: %s", s->engine->version, lerr.msg);
        shelf_err_set(err, rc, "%s", lerr.msg);
    }
    pthread_mutex_unlock(&s->reload_mu);
    return rc;
}

int srv_route_reload(srv_req *r, char *const *arg)
{
    (void)arg;
    shelf_err err = {0};
    if (shelf_server_reload(r->srv, &err)) return srv_error(r, 500, "internal", -1, "reload failed: %s", err.msg);
    srv_engine *e = srv_engine_get(r->srv);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddTrueToObject(o, "reloaded");
    cJSON_AddStringToObject(o, "model", e->kind);
    cJSON_AddStringToObject(o, "version", e->version);
    if (e->model) srv_engine_describe(r->srv, e, o);
    srv_engine_put(e);
    return srv_json(r, 200, o);
}
