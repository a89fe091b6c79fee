/* safetensors.h: reading and writing the safetensors format (8-byte little-
 * endian header length, a JSON header naming each tensor's dtype, shape and
 * byte range, then the data), for model bundles and pretrained weights. */
#ifndef SHELF_NN_SAFETENSORS_H
#define SHELF_NN_SAFETENSORS_H

#include "shelf/model.h"

typedef struct shelf__st_tensor {
    const char *name;
    shelf_dtype dt;
    int ndim;
    int64_t shape[4];
    const void *data; /* writer: the bytes; reader: pointer into the mapping */
} shelf__st_tensor;

/* Bytes of one element of dt; "F32", "I32", ... as safetensors names it. */
size_t shelf__dtype_size(shelf_dtype dt);
const char *shelf__dtype_name(shelf_dtype dt);
/* Elements of a tensor (product of its shape). */
uint64_t shelf__st_numel(const shelf__st_tensor *t);

/* Writes n tensors to path (data contiguous, no gaps, ordered by element
 * size so that each is aligned to it: readers may use the mapping in place), with an
 * optional "__metadata__" of string pairs (meta_keys/meta_vals, n_meta). */
int shelf__st_write(const char *path, const shelf__st_tensor *t, size_t n, const char *const *meta_keys,
                    const char *const *meta_vals, size_t n_meta, shelf_err *err);

/* A mapped file: tensors point into it until shelf__st_close. Validates the
 * header (size, JSON, dtypes, shapes against byte ranges, ranges inside the
 * file, the ranges covering the data without overlap). Unknown dtypes
 * (F16, BF16...) are kept with dt = -1 and data NULL unless asked for. */
typedef struct shelf__st_file {
    void *map;
    size_t map_len;
    shelf__st_tensor *t;
    size_t n;
    char **names; /* owned copies */
} shelf__st_file;
int shelf__st_open(const char *path, shelf__st_file *f, shelf_err *err);
void shelf__st_close(shelf__st_file *f);
const shelf__st_tensor *shelf__st_find(const shelf__st_file *f, const char *name);

#endif
