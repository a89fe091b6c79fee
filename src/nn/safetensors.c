/* safetensors.c: the safetensors file format, written and memory-mapped. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [SHELF_DT_F32] = {"F32", 4}, [SHELF_DT_I32] = {"I32", 4}, [SHELF_DT_U32] = {"U32", 4},
    [SHELF_DT_I64] = {"I64", 8}, [SHELF_DT_U64] = {"U64", 8}, [SHELF_DT_U8] = {"U8", 1},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

size_t shelf__dtype_size(shelf_dtype dt) { return (unsigned)dt < N_DTYPES ? dtypes[dt].size : 0; }
const char *shelf__dtype_name(shelf_dtype dt) { return (unsigned)dt < N_DTYPES ? dtypes[dt].name : "?"; }

uint64_t shelf__st_numel(const shelf__st_tensor *t)
{
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int shelf__st_write(const char *path, const shelf__st_tensor *t, size_t n, const char *const *meta_keys,
                    const char *const *meta_vals, size_t n_meta, shelf_err *err)
{
    cJSON *h = cJSON_CreateObject();
    if (!h) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    int rc = 0;
    if (n_meta) {
        cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
        for (size_t i = 0; m && i < n_meta; i++) cJSON_AddStringToObject(m, meta_keys[i], meta_vals[i]);
    }
    /* data in order of element size, largest first: with the 8-aligned
     * start every tensor is then aligned to its own element size, so a
     * mapped file can be read in place */
    size_t *order = malloc((n ? n : 1) * sizeof *order), k = 0;
    if (!order) {
        cJSON_Delete(h);
        return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    }
    for (size_t sz = 8; sz >= 1; sz /= 2)
        for (size_t i = 0; i < n; i++)
            if (shelf__dtype_size(t[i].dt) == sz) order[k++] = i;
    for (size_t i = 0; i < n; i++)
        if (!shelf__dtype_size(t[i].dt)) order[k++] = i; /* rejected below */
    uint64_t off = 0;
    for (size_t j = 0; j < n; j++) {
        size_t i = order[j];
        if (t[i].ndim < 0 || t[i].ndim > 4 || !shelf__dtype_size(t[i].dt)) {
            rc = shelf_err_set(err, SHELF_EINVAL, "%s: tensor '%s': bad dtype or rank", path, t[i].name);
            goto out;
        }
        if (cJSON_GetObjectItemCaseSensitive(h, t[i].name)) {
            rc = shelf_err_set(err, SHELF_EINVAL, "%s: tensor '%s' named twice", path, t[i].name);
            goto out;
        }
        uint64_t bytes = shelf__st_numel(&t[i]) * shelf__dtype_size(t[i].dt);
        cJSON *o = cJSON_AddObjectToObject(h, t[i].name);
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t[i].ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
        cJSON_AddStringToObject(o, "dtype", shelf__dtype_name(t[i].dt));
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    char *text = cJSON_PrintUnformatted(h);
    if (!text) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        goto out;
    }
    size_t len = strlen(text), padded = (len + 7) & ~(size_t)7; /* data starts 8-aligned */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(text);
        rc = shelf_err_set(err, SHELF_EIO, "%s: cannot create: %s", path, strerror(errno));
        goto out;
    }
    unsigned char hl[8];
    for (int b = 0; b < 8; b++) hl[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    int bad = write_all(fd, hl, 8) || write_all(fd, text, len) || write_all(fd, "       ", padded - len);
    for (size_t j = 0; !bad && j < n; j++)
        bad = write_all(fd, t[order[j]].data, shelf__st_numel(&t[order[j]]) * shelf__dtype_size(t[order[j]].dt));
    if (!bad) bad = fsync(fd) != 0;
    if (close(fd) != 0) bad = 1;
    free(text);
    if (bad) rc = shelf_err_set(err, SHELF_EIO, "%s: write failed: %s", path, strerror(errno));
out:
    free(order);
    cJSON_Delete(h);
    return rc;
}

static int parse_dtype(const char *s)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(s, dtypes[i].name) == 0) return (int)i;
    return -1;
}

static size_t other_dtype_size(const char *s)
{
    if (!strcmp(s, "F16") || !strcmp(s, "BF16") || !strcmp(s, "I16") || !strcmp(s, "U16")) return 2;
    if (!strcmp(s, "F64")) return 8;
    if (!strcmp(s, "I8") || !strcmp(s, "BOOL") || !strcmp(s, "F8_E4M3") || !strcmp(s, "F8_E5M2")) return 1;
    return 0;
}

typedef struct range {
    uint64_t a, b;
} range;
static int cmp_range(const void *x, const void *y)
{
    const range *p = x, *q = y;
    return p->a < q->a ? -1 : p->a > q->a;
}

int shelf__st_open(const char *path, shelf__st_file *f, shelf_err *err)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return shelf_err_set(err, errno == ENOENT ? SHELF_ENOTFOUND : SHELF_EIO, "%s: cannot open: %s", path,
                             strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return shelf_err_set(err, SHELF_EIO, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    if (len < 8) {
        close(fd);
        return shelf_err_set(err, SHELF_ECORRUPT, "%s: too short for a safetensors file", path);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return shelf_err_set(err, SHELF_EIO, "%s: mmap failed: %s", path, strerror(errno));
    f->map = map;
    f->map_len = len;
    const unsigned char *p = map;
    uint64_t hl = 0;
    for (int b = 0; b < 8; b++) hl |= (uint64_t)p[b] << (8 * b);
    int rc = 0;
    cJSON *h = NULL;
    range *rg = NULL;
    if (hl > len - 8 || hl > (uint64_t)100 << 20) {
        rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: header length %llu exceeds the file", path, (unsigned long long)hl);
        goto fail;
    }
    h = cJSON_ParseWithLength((const char *)p + 8, (size_t)hl);
    if (!h || !cJSON_IsObject(h)) {
        rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: header is not a JSON object", path);
        goto fail;
    }
    size_t cap = (size_t)cJSON_GetArraySize(h);
    f->t = calloc(cap ? cap : 1, sizeof *f->t);
    f->names = calloc(cap ? cap : 1, sizeof *f->names);
    rg = calloc(cap ? cap : 1, sizeof *rg);
    if (!f->t || !f->names || !rg) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        goto fail;
    }
    const unsigned char *data = p + 8 + hl;
    uint64_t data_len = len - 8 - hl;
    cJSON *e;
    cJSON_ArrayForEach(e, h)
    {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
            cJSON_GetArraySize(shape) > 4) {
            rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: tensor '%s': needs dtype, shape (rank <= 4), data_offsets",
                               path, e->string);
            goto fail;
        }
        shelf__st_tensor *t = &f->t[f->n];
        int k = parse_dtype(dt->valuestring);
        size_t esize = k >= 0 ? dtypes[k].size : other_dtype_size(dt->valuestring);
        if (!esize) {
            rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: tensor '%s': unknown dtype '%s'", path, e->string,
                               dt->valuestring);
            goto fail;
        }
        t->dt = (shelf_dtype)k;
        t->ndim = cJSON_GetArraySize(shape);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            cJSON *s = cJSON_GetArrayItem(shape, d);
            if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > 9.0e15) {
                rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: tensor '%s': bad shape", path, e->string);
                goto fail;
            }
            t->shape[d] = (int64_t)s->valuedouble;
            numel *= (uint64_t)t->shape[d];
        }
        cJSON *a = cJSON_GetArrayItem(offs, 0), *b = cJSON_GetArrayItem(offs, 1);
        if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble < 0 || b->valuedouble < a->valuedouble ||
            b->valuedouble > (double)data_len || (uint64_t)(b->valuedouble - a->valuedouble) != numel * esize) {
            rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: tensor '%s': byte range does not match its shape or the file",
                               path, e->string);
            goto fail;
        }
        rg[f->n] = (range){(uint64_t)a->valuedouble, (uint64_t)b->valuedouble};
        t->data = data + rg[f->n].a;
        if (!(f->names[f->n] = strdup(e->string))) {
            rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
            goto fail;
        }
        t->name = f->names[f->n];
        f->n++;
    }
    /* the ranges tile the data exactly */
    qsort(rg, f->n, sizeof *rg, cmp_range);
    uint64_t end = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (rg[i].a != end) {
            rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: tensor data overlaps or leaves a gap at byte %llu", path,
                               (unsigned long long)end);
            goto fail;
        }
        end = rg[i].b;
    }
    if (end != data_len) {
        rc = shelf_err_set(err, SHELF_ECORRUPT, "%s: %llu bytes of data, tensors cover %llu", path,
                           (unsigned long long)data_len, (unsigned long long)end);
        goto fail;
    }
    cJSON_Delete(h);
    free(rg);
    return 0;
fail:
    cJSON_Delete(h);
    free(rg);
    shelf__st_close(f);
    return rc;
}

void shelf__st_close(shelf__st_file *f)
{
    if (f->map) munmap(f->map, f->map_len);
    for (size_t i = 0; i < f->n; i++) free(f->names[i]);
    free(f->names);
    free(f->t);
    memset(f, 0, sizeof *f);
}

const shelf__st_tensor *shelf__st_find(const shelf__st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}
