/* engine.c: the model generation the server serves: the newest bundle of
 * --bundle loaded into an engine, swapped on reload while requests hold
 * the one they started with (reference counts). */
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
    pthread_rwlock_destroy(&e->model_rw);
    free(e);
}

static int has_manifest(const char *dir)
{
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static double manifest_created(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "created");
    double t = cJSON_IsNumber(c) ? c->valuedouble : 0;
    cJSON_Delete(j);
    return t;
}

/* the bundle directory itself, or its newest sub-bundle (by manifest time,
 * then name) into out */
static int newest_bundle(const char *path, char *out, size_t cap, shelf_err *err)
{
    if (has_manifest(path)) {
        snprintf(out, cap, "%s", path);
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) return shelf_err_set(err, SHELF_ENOTFOUND, "%s: no bundle (%s)", path, strerror(errno));
    double best = -2;
    char best_name[256] = "";
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        if (!has_manifest(p)) continue;
        double t = manifest_created(p);
        if (t > best || (t == best && strcmp(de->d_name, best_name) > 0)) {
            best = t;
            snprintf(best_name, sizeof best_name, "%s", de->d_name);
        }
    }
    closedir(d);
    if (!best_name[0])
        return shelf_err_set(err, SHELF_ENOTFOUND, "%s: no bundle (no manifest.json in it or its sub-directories)",
                             path);
    snprintf(out, cap, "%s/%s", path, best_name);
    return 0;
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
    char dir[4096];
    int rc = newest_bundle(s->bundle_path, dir, sizeof dir, err);
    if (!rc) rc = shelf_model_load(dir, &e->model, err);
    if (rc) {
        pthread_rwlock_destroy(&e->model_rw);
        free(e);
        return rc;
    }
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    if (!base[0]) base = dir;
    e->created = manifest_created(dir);
    snprintf(e->kind, sizeof e->kind, "%s", shelf_model_name(e->model));
    snprintf(e->version, sizeof e->version, "%.120s@%.0f", base, e->created > 0 ? e->created : 0.0);
    e->caps = shelf_model_caps(e->model);
    *out = e;
    return 0;
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
    int rc = srv_engine_load(s, &e, err);
    if (!rc) {
        pthread_mutex_lock(&s->engine_mu);
        e->gen = ++s->next_gen;
        srv_engine *old = s->engine;
        s->engine = e;
        pthread_mutex_unlock(&s->engine_mu);
        srv_engine_put(old);
        if (srv_coldfill_build(s, e)) shelf_error("serve: out of memory: content neighbours not rebuilt");
        atomic_fetch_add(&s->m.reload_ok, 1);
        shelf_info("serve: model %s %s loaded", e->kind, e->version);
    } else {
        atomic_fetch_add(&s->m.reload_fail, 1);
        shelf_error("serve: reload failed, the current model stays: %s", err ? err->msg : "");
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
    srv_engine_put(e);
    return srv_json(r, 200, o);
}
