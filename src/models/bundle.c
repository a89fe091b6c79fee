/* bundle.c: model bundles: a directory with manifest.json (kind, version,
 * sizes, hyperparameters) and tensors.safetensors, written to a temporary
 * directory and renamed into place, so a bundle is either whole or absent. */
#include "models_int.h"
#include "core/assert_int.h"
#include "nn/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUNDLE_FORMAT "shelf-bundle"
#define BUNDLE_VERSION 1

struct shelf_bundle_writer {
    shelf__st_tensor *t;
    size_t n, cap;
    cJSON *params;
    int failed; /* ENOMEM or a bad tensor: reported at the end */
    char why[200];
};

struct shelf_bundle {
    shelf__st_file st;
    cJSON *manifest, *params;
    shelf_err *err;
};

int shelf_bundle_put(shelf_bundle_writer *w, const char *name, shelf_dtype dt, int ndim, const int64_t *shape,
                     const void *data)
{
    if (ndim < 1 || ndim > 4 || !shelf__dtype_size(dt)) {
        w->failed = SHELF_EINVAL;
        snprintf(w->why, sizeof w->why, "tensor '%s': bad rank or dtype", name);
        return SHELF_EINVAL;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 8;
        shelf__st_tensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return w->failed = SHELF_ENOMEM;
        w->t = t;
        w->cap = cap;
    }
    shelf__st_tensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dt = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->data = data;
    return 0;
}

int shelf_bundle_set_num(shelf_bundle_writer *w, const char *key, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(w->params, key);
    if (!cJSON_AddNumberToObject(w->params, key, v)) return w->failed = SHELF_ENOMEM;
    return 0;
}

int shelf_bundle_set_str(shelf_bundle_writer *w, const char *key, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(w->params, key);
    if (!cJSON_AddStringToObject(w->params, key, v)) return w->failed = SHELF_ENOMEM;
    return 0;
}

static int write_text(const char *path, const char *text, shelf_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f) return shelf_err_set(err, SHELF_EIO, "%s: cannot create: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0 || fputc('\n', f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0) bad = 1;
    return bad ? shelf_err_set(err, SHELF_EIO, "%s: write failed", path) : 0;
}

static void remove_tree(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/tensors.safetensors", dir);
    remove(p);
    rmdir(dir);
}

int shelf_model_save(const shelf_model *m, const char *dir, shelf_err *err)
{
    if (!m->fitted) return shelf_err_set(err, SHELF_EINVAL, "%s: save before fit", m->vt->name);
    if (access(dir, F_OK) == 0)
        return shelf_err_set(err, SHELF_EEXIST, "%s: exists (bundles are immutable: choose a new directory)", dir);
    shelf_bundle_writer w = {0};
    w.params = cJSON_CreateObject();
    cJSON *man = cJSON_CreateObject();
    char tmp[4096], path[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", dir, (int)getpid());
    int rc = 0;
    if (!w.params || !man) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = m->vt->save(m, &w))) {
        shelf_err_set(err, rc, "%s", m->err.msg[0] ? m->err.msg : shelf_strerror(rc));
        goto out;
    }
    if (w.failed) {
        rc = shelf_err_set(err, w.failed, "%s: %s", m->vt->name, w.why[0] ? w.why : "out of memory");
        goto out;
    }
    cJSON_AddStringToObject(man, "format", BUNDLE_FORMAT);
    cJSON_AddNumberToObject(man, "version", BUNDLE_VERSION);
    cJSON_AddStringToObject(man, "model", m->vt->name);
    cJSON_AddStringToObject(man, "shelf_version", SHELF_VERSION);
    cJSON_AddNumberToObject(man, "created", (double)time(NULL));
    cJSON_AddNumberToObject(man, "n_users", m->n_users);
    cJSON_AddNumberToObject(man, "n_items", m->n_items);
    cJSON_AddItemToObject(man, "params", w.params);
    w.params = NULL; /* owned by man now */
    cJSON *tl = cJSON_AddArrayToObject(man, "tensors");
    for (size_t i = 0; i < w.n; i++) cJSON_AddItemToArray(tl, cJSON_CreateString(w.t[i].name));
    char *text = cJSON_Print(man);
    if (!text) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        goto out;
    }
    if (mkdir(tmp, 0755) != 0) {
        free(text);
        rc = shelf_err_set(err, SHELF_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/manifest.json", tmp);
    rc = write_text(path, text, err);
    free(text);
    snprintf(path, sizeof path, "%s/tensors.safetensors", tmp);
    if (!rc) {
        const char *mk[] = {"format", "model"}, *mv[] = {"pt", m->vt->name};
        rc = shelf__st_write(path, w.t, w.n, mk, mv, 2, err);
    }
    if (!rc && rename(tmp, dir) != 0)
        rc = shelf_err_set(err, SHELF_EIO, "%s: cannot rename into place: %s", dir, strerror(errno));
    if (rc) remove_tree(tmp);
out:
    free(w.t);
    cJSON_Delete(w.params);
    cJSON_Delete(man);
    return rc;
}

const void *shelf_bundle_get(const shelf_bundle *b, const char *name, shelf_dtype dt, int *ndim, int64_t shape[4])
{
    const shelf__st_tensor *t = shelf__st_find(&b->st, name);
    if (!t) {
        shelf_err_set(b->err, SHELF_ECORRUPT, "bundle has no tensor '%s'", name);
        return NULL;
    }
    if (t->dt != dt) {
        shelf_err_set(b->err, SHELF_ECORRUPT, "bundle tensor '%s' is not %s", name, shelf__dtype_name(dt));
        return NULL;
    }
    if (ndim) *ndim = t->ndim;
    if (shape) memcpy(shape, t->shape, sizeof t->shape);
    return t->data;
}

double shelf_bundle_num(const shelf_bundle *b, const char *key, double def)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(b->params, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

const char *shelf_bundle_str(const shelf_bundle *b, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(b->params, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *read_text(const char *path, shelf_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        shelf_err_set(err, errno == ENOENT ? SHELF_ENOTFOUND : SHELF_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (len + 1 == cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        shelf_err_set(err, SHELF_ENOMEM, "%s: too large or out of memory", path);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

int shelf_model_load(const char *dir, shelf_model **out, shelf_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *text = read_text(path, err);
    if (!text) return err ? err->code : SHELF_EIO;
    shelf_bundle b = {.err = err};
    int rc = 0;
    shelf_model *m = NULL;
    b.manifest = cJSON_Parse(text);
    free(text);
    cJSON *fmt = cJSON_GetObjectItemCaseSensitive(b.manifest, "format");
    cJSON *ver = cJSON_GetObjectItemCaseSensitive(b.manifest, "version");
    cJSON *kind = cJSON_GetObjectItemCaseSensitive(b.manifest, "model");
    cJSON *nu = cJSON_GetObjectItemCaseSensitive(b.manifest, "n_users");
    cJSON *ni = cJSON_GetObjectItemCaseSensitive(b.manifest, "n_items");
    b.params = cJSON_GetObjectItemCaseSensitive(b.manifest, "params");
    if (!b.manifest || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, BUNDLE_FORMAT) != 0) {
        rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: not a shelf bundle manifest", path);
        goto out;
    }
    if (!cJSON_IsNumber(ver) || ver->valueint != BUNDLE_VERSION) {
        rc = shelf_err_set(err, SHELF_EVERSION, "%s: bundle version %d, this build reads %d", path,
                           cJSON_IsNumber(ver) ? ver->valueint : -1, BUNDLE_VERSION);
        goto out;
    }
    if (!cJSON_IsString(kind) || !cJSON_IsNumber(nu) || !cJSON_IsNumber(ni) || !cJSON_IsObject(b.params)) {
        rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: needs model, n_users, n_items and params", path);
        goto out;
    }
    if ((rc = shelf_model_new(kind->valuestring, &m, err))) goto out;
    snprintf(path, sizeof path, "%s/tensors.safetensors", dir);
    if ((rc = shelf__st_open(path, &b.st, err))) goto out;
    m->n_users = (uint32_t)nu->valuedouble;
    m->n_items = (uint32_t)ni->valuedouble;
    shelf_err_clear(err);
    if ((rc = m->vt->load(m, &b))) {
        char why[1024];
        snprintf(why, sizeof why, "%s", err && err->msg[0] ? err->msg : m->err.msg);
        rc = shelf_err_set(err, rc, "%s: %s", dir, why);
        goto out;
    }
    m->fitted = 1;
    *out = m;
    m = NULL;
out:
    shelf_model_free(m);
    shelf__st_close(&b.st);
    cJSON_Delete(b.manifest);
    return rc;
}

int shelf__bundle_nums_put(shelf_bundle_writer *w, const void *model, const shelf__bundle_num *t, size_t n)
{
    const char *base = model;
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        const void *f = base + t[k].at;
        double v = 0;
        switch (t[k].type) {
        case 'd': v = *(const double *)f; break;
        case 'i':
        case 'b': v = *(const int *)f; break;
        case 'u': v = *(const uint32_t *)f; break;
        case 'U': v = (double)*(const uint64_t *)f; break;
        default: SHELF_ASSERT(!"bad bundle number type");
        }
        rc = shelf_bundle_set_num(w, t[k].key, v);
    }
    return rc;
}

void shelf__bundle_nums_get(const shelf_bundle *b, void *model, const shelf__bundle_num *t, size_t n)
{
    char *base = model;
    for (size_t k = 0; k < n; k++) {
        void *f = base + t[k].at;
        double v = shelf_bundle_num(b, t[k].key, t[k].def);
        switch (t[k].type) {
        case 'd': *(double *)f = v; break;
        case 'i': *(int *)f = (int)v; break;
        case 'b': *(int *)f = v != 0; break;
        case 'u': *(uint32_t *)f = (uint32_t)v; break;
        case 'U': *(uint64_t *)f = (uint64_t)v; break;
        default: SHELF_ASSERT(!"bad bundle number type");
        }
    }
}

void shelf__opts_nums_get(const shelf_opts *o, void *model, const shelf__bundle_num *t, size_t n)
{
    char *base = model;
    for (size_t k = 0; k < n; k++) {
        if (!shelf_config_find(t[k].key)) continue;
        void *f = base + t[k].at;
        switch (t[k].type) {
        case 'd': *(double *)f = shelf_config_double(o, t[k].key); break;
        case 'i': *(int *)f = (int)shelf_config_int(o, t[k].key); break;
        case 'b': *(int *)f = shelf_config_bool(o, t[k].key); break;
        case 'u': *(uint32_t *)f = (uint32_t)shelf_config_int(o, t[k].key); break;
        case 'U': *(uint64_t *)f = (uint64_t)shelf_config_int(o, t[k].key); break;
        default: SHELF_ASSERT(!"bad bundle number type");
        }
    }
}

float *shelf__bundle_take_f32(shelf_model *m, const shelf_bundle *b, const char *name, int64_t d0, int64_t d1)
{
    int nd = 0;
    int64_t sh[4] = {0};
    const void *p = shelf_bundle_get(b, name, SHELF_DT_F32, &nd, sh);
    if (!p || nd != (d1 ? 2 : 1) || sh[0] != d0 || (d1 && sh[1] != d1)) {
        shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor '%s' [%lld%s%lld]", name, (long long)d0,
                          d1 ? ", " : "", (long long)(d1 ? d1 : 0));
        return NULL;
    }
    size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    float *q = malloc((n ? n : 1) * sizeof *q);
    if (!q) {
        shelf__model_fail(m, SHELF_ENOMEM, "out of memory (tensor '%s')", name);
        return NULL;
    }
    memcpy(q, p, n * sizeof *q);
    return q;
}
