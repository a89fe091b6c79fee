/* bundle.c: model bundles: a directory with manifest.json (kind, version,
 * sizes, hyperparameters, the tensor file's checksum) and
 * tensors.safetensors, written to a temporary directory and renamed into
 * place, so a bundle is either whole or absent. Load verifies the checksum
 * and refuses non-finite weights; a bundle written before checksums loads
 * with a warning. */
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
#include <xxhash.h>

#define BUNDLE_FORMAT "shelf-bundle"
#define BUNDLE_VERSION 1
#define BUNDLE_TENSORS "tensors.safetensors"
/* manifest "checksums": {"tensors.safetensors": "xxh3-128:<32 hex digits>"};
 * it finds damage (disk, copies, truncation), it is no signature */
#define BUNDLE_SUM_ALGO "xxh3-128"
#define BUNDLE_SUM_LEN 64

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
    snprintf(p, sizeof p, "%s/" BUNDLE_TENSORS, dir);
    remove(p);
    rmdir(dir);
}

/* ---- checks shared by save and load ------------------------------------------------ */

/* The checksum of a mapped tensor file (all its bytes) into sum:
 * "xxh3-128:" and 32 hex digits. */
static void tensors_checksum(const shelf__st_file *f, char sum[BUNDLE_SUM_LEN])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(f->map, f->map_len));
    int k = snprintf(sum, BUNDLE_SUM_LEN, "%s:", BUNDLE_SUM_ALGO);
    for (size_t i = 0; i < sizeof c.digest; i++) k += snprintf(sum + k, (size_t)(BUNDLE_SUM_LEN - k), "%02x", c.digest[i]);
}

/* The first of the n tensors t (F32 ones: the others cannot hold one)
 * with a NaN or an infinity, the element's index in *at; NULL when all are
 * finite. Tests the exponent bits (all ones), which no -ffast-math can
 * fold away, a block at a time so that the common pass vectorises. */
static const shelf__st_tensor *first_nonfinite(const shelf__st_tensor *t, size_t n, uint64_t *at)
{
    enum { BLOCK = 4096 };
    for (size_t k = 0; k < n; k++) {
        if (t[k].dt != SHELF_DT_F32 || !t[k].data) continue;
        const unsigned char *p = t[k].data;
        const uint64_t ne = shelf__st_numel(&t[k]);
        for (uint64_t i0 = 0; i0 < ne; i0 += BLOCK) {
            const uint64_t i1 = ne - i0 < BLOCK ? ne : i0 + BLOCK;
            unsigned bad = 0;
            for (uint64_t i = i0; i < i1; i++) {
                uint32_t bits;
                memcpy(&bits, p + 4 * i, 4);
                bad |= (bits & 0x7f800000u) == 0x7f800000u;
            }
            for (uint64_t i = i0; bad && i < i1; i++) {
                uint32_t bits;
                memcpy(&bits, p + 4 * i, 4);
                if ((bits & 0x7f800000u) != 0x7f800000u) continue;
                *at = i;
                return &t[k];
            }
        }
    }
    return NULL;
}

/* "NaN" or "an infinity": what the float at p is */
static const char *nonfinite_name(const shelf__st_tensor *t, uint64_t at)
{
    uint32_t bits;
    memcpy(&bits, (const unsigned char *)t->data + 4 * at, 4);
    return bits & 0x007fffffu ? "NaN" : "an infinity";
}

/* ---- save -------------------------------------------------------------------------- */

/* The manifest of m (kind, sizes, created time to the microsecond, so that
 * bundles written in the same second still order) with the writer's
 * params (taken: w->params is NULL after) and tensor names and the tensor
 * file's checksum sum. malloc'd text (free), NULL when out of memory. */
static char *manifest_text(const shelf_model *m, shelf_bundle_writer *w, const char *sum)
{
    cJSON *man = cJSON_CreateObject();
    if (!man) return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cJSON_AddStringToObject(man, "format", BUNDLE_FORMAT);
    cJSON_AddNumberToObject(man, "version", BUNDLE_VERSION);
    cJSON_AddStringToObject(man, "model", m->vt->name);
    cJSON_AddStringToObject(man, "shelf_version", SHELF_VERSION);
    cJSON_AddNumberToObject(man, "created", (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) * 1e-6);
    cJSON_AddNumberToObject(man, "n_users", m->n_users);
    cJSON_AddNumberToObject(man, "n_items", m->n_items);
    cJSON_AddItemToObject(man, "params", w->params);
    w->params = NULL; /* owned by man now */
    cJSON *tl = cJSON_AddArrayToObject(man, "tensors");
    for (size_t i = 0; i < w->n; i++) cJSON_AddItemToArray(tl, cJSON_CreateString(w->t[i].name));
    cJSON *sums = cJSON_AddObjectToObject(man, "checksums");
    cJSON_AddStringToObject(sums, BUNDLE_TENSORS, sum);
    char *text = cJSON_Print(man);
    cJSON_Delete(man);
    return text;
}

/* Writes the tensors of w, then the manifest with their file's checksum
 * (read back from the file written), into the new directory tmp. */
static int write_files(const shelf_model *m, shelf_bundle_writer *w, const char *tmp, shelf_err *err)
{
    char path[4200], sum[BUNDLE_SUM_LEN];
    snprintf(path, sizeof path, "%s/" BUNDLE_TENSORS, tmp);
    const char *mk[] = {"format", "model"}, *mv[] = {"pt", m->vt->name};
    int rc = shelf__st_write(path, w->t, w->n, mk, mv, 2, err);
    shelf__st_file f = {0};
    if (!rc) rc = shelf__st_open(path, &f, err);
    if (rc) return rc;
    tensors_checksum(&f, sum);
    shelf__st_close(&f);
    char *text = manifest_text(m, w, sum);
    if (!text) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/manifest.json", tmp);
    rc = write_text(path, text, err);
    free(text);
    return rc;
}

int shelf_model_save(const shelf_model *m, const char *dir, shelf_err *err)
{
    if (!m->fitted) return shelf_err_set(err, SHELF_EINVAL, "%s: save before fit", m->vt->name);
    if (access(dir, F_OK) == 0)
        return shelf_err_set(err, SHELF_EEXIST, "%s: exists (bundles are immutable: choose a new directory)", dir);
    shelf_bundle_writer w = {0};
    w.params = cJSON_CreateObject();
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", dir, (int)getpid());
    int rc = 0;
    uint64_t at = 0;
    const shelf__st_tensor *bad = NULL;
    if (!w.params) {
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
    if ((bad = first_nonfinite(w.t, w.n, &at))) {
        rc = shelf_err_set(err, SHELF_ERANGE, "%s: tensor '%s' holds %s at element %llu (the fit diverged?): not saved",
                           m->vt->name, bad->name, nonfinite_name(bad, at), (unsigned long long)at);
        goto out;
    }
    if (mkdir(tmp, 0755) != 0) {
        rc = shelf_err_set(err, SHELF_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    rc = write_files(m, &w, tmp, err);
    if (!rc && rename(tmp, dir) != 0) {
        int e = errno; /* a bundle another writer put there meanwhile */
        rc = e == ENOTEMPTY || e == EEXIST
                 ? shelf_err_set(err, SHELF_EEXIST, "%s: written meanwhile by another process", dir)
                 : shelf_err_set(err, SHELF_EIO, "%s: cannot rename into place: %s", dir, strerror(e));
    }
    if (rc) remove_tree(tmp);
out:
    free(w.t);
    cJSON_Delete(w.params);
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

/* Checks the tensor file of the bundle in dir (mapped in st) against the
 * checksum in its manifest and refuses non-finite weights. A manifest
 * without checksums (a bundle written by a shelf before them) passes with
 * a warning, so that existing bundles keep working; a checksum present and
 * wrong, or of an unknown kind, refuses the bundle. */
static int verify_tensors(const char *dir, const cJSON *manifest, const shelf__st_file *st, shelf_err *err)
{
    const cJSON *sums = cJSON_GetObjectItemCaseSensitive(manifest, "checksums");
    if (!sums) {
        shelf_warn("%s: no checksums (written by an older shelf): loaded unverified", dir);
    } else {
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(sums, BUNDLE_TENSORS);
        if (!cJSON_IsString(want))
            return shelf_err_set(err, SHELF_ECORRUPT, "%s/manifest.json: checksums lacks '" BUNDLE_TENSORS "'", dir);
        if (strncmp(want->valuestring, BUNDLE_SUM_ALGO ":", strlen(BUNDLE_SUM_ALGO ":")) != 0)
            return shelf_err_set(err, SHELF_EVERSION,
                                 "%s/manifest.json: checksum '%.40s' is of a kind this build does not know "
                                 "(" BUNDLE_SUM_ALGO ")", dir, want->valuestring);
        char got[BUNDLE_SUM_LEN];
        tensors_checksum(st, got);
        if (strcmp(got, want->valuestring) != 0)
            return shelf_err_set(err, SHELF_ECORRUPT,
                                 "%s/" BUNDLE_TENSORS ": checksum mismatch (the manifest says %.60s, the file is %s): "
                                 "the file is damaged", dir, want->valuestring, got);
    }
    uint64_t at = 0;
    const shelf__st_tensor *bad = first_nonfinite(st->t, st->n, &at);
    if (bad)
        return shelf_err_set(err, SHELF_ECORRUPT, "%s/" BUNDLE_TENSORS ": tensor '%s' holds %s at element %llu", dir,
                             bad->name, nonfinite_name(bad, at), (unsigned long long)at);
    return 0;
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
    /* counts the uint32_t fields can hold (SHELF_NONE excluded), whole */
    if (!(nu->valuedouble >= 0 && nu->valuedouble < UINT32_MAX && nu->valuedouble == (double)(uint32_t)nu->valuedouble) ||
        !(ni->valuedouble >= 0 && ni->valuedouble < UINT32_MAX && ni->valuedouble == (double)(uint32_t)ni->valuedouble)) {
        rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: n_users %g, n_items %g: not counts", path, nu->valuedouble,
                           ni->valuedouble);
        goto out;
    }
    if ((rc = shelf_model_new(kind->valuestring, &m, err))) goto out;
    snprintf(path, sizeof path, "%s/" BUNDLE_TENSORS, dir);
    if ((rc = shelf__st_open(path, &b.st, err))) goto out;
    if ((rc = verify_tensors(dir, b.manifest, &b.st, err))) goto out;
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
