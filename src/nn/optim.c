/* optim.c: the parameter store (one contiguous buffer each for parameters,
 * gradients and AdamW moments, named views by offset), global gradient-norm
 * clipping, AdamW and the warm-up + decay learning-rate schedule. */
#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern_int.h"
#include "core/assert_int.h"

#define ALIGN_FLOATS 16 /* 64 bytes: each view starts on a cache line */
#define NORM_CHUNKS 64  /* fixed partition of the norm sum: thread-count independent */
#define PAR_MIN 32768   /* below this many floats, stay on one thread */

shelf_params *shelf_params_new(void)
{
    return calloc(1, sizeof(shelf_params));
}

void shelf_params_free(shelf_params *p)
{
    if (!p) return;
    free(p->params); /* the one block holding all four buffers */
    free(p->info);
    free(p);
}

int shelf_params_add(shelf_params *p, const char *name, int ndim, const int64_t *shape, int flags,
                     size_t *index, shelf_err *err)
{
    if (p->params) return shelf_err_set(err, SHELF_EINVAL, "params: add '%s' after alloc", name ? name : "");
    if (!name || !*name || strlen(name) >= SHELF_PARAM_NAME_MAX)
        return shelf_err_set(err, SHELF_EINVAL, "params: bad tensor name");
    if (ndim < 1 || ndim > SHELF_PARAM_MAX_DIM || !shape)
        return shelf_err_set(err, SHELF_EINVAL, "params: '%s': ndim %d not in 1..%d", name, ndim,
                             SHELF_PARAM_MAX_DIM);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0 || (uint64_t)shape[d] > ((size_t)1 << 40) / numel)
            return shelf_err_set(err, SHELF_EINVAL, "params: '%s': bad dimension %d (%lld)", name, d,
                                 (long long)shape[d]);
        numel *= (size_t)shape[d];
    }
    if (shelf_params_find(p, name) >= 0)
        return shelf_err_set(err, SHELF_EINVAL, "params: duplicate tensor name '%s'", name);
    if (p->n_tensors == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        shelf_param_info *ni = realloc(p->info, cap * sizeof(*ni));
        if (!ni) return shelf_err_set(err, SHELF_ENOMEM, "params: out of memory");
        p->info = ni;
        p->cap = cap;
    }
    shelf_param_info *r = &p->info[p->n_tensors];
    memset(r, 0, sizeof(*r));
    strcpy(r->name, name);
    r->ndim = ndim;
    for (int d = 0; d < ndim; d++) r->shape[d] = shape[d];
    r->numel = numel;
    r->offset = p->n_floats;
    r->flags = flags;
    p->n_floats += (numel + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    if (index) *index = p->n_tensors;
    p->n_tensors++;
    return 0;
}

int shelf_params_alloc(shelf_params *p, shelf_err *err)
{
    if (p->params) return shelf_err_set(err, SHELF_EINVAL, "params: already allocated");
    if (p->n_tensors == 0) return shelf_err_set(err, SHELF_EINVAL, "params: no tensors");
    void *block = NULL;
    const size_t n = p->n_floats;
    if (n > SIZE_MAX / (4 * sizeof(float)) || posix_memalign(&block, 64, 4 * n * sizeof(float)) != 0)
        return shelf_err_set(err, SHELF_ENOMEM, "params: out of memory for %zu floats", 4 * n);
    memset(block, 0, 4 * n * sizeof(float));
    p->params = block;
    p->grads = p->params + n;
    p->m = p->grads + n;
    p->v = p->m + n;
    return 0;
}

long shelf_params_find(const shelf_params *p, const char *name)
{
    for (size_t i = 0; i < p->n_tensors; i++)
        if (strcmp(p->info[i].name, name) == 0) return (long)i;
    return -1;
}

float *shelf_params_data(const shelf_params *p, size_t i)
{
    SHELF_ASSERT(p->params && i < p->n_tensors);
    return p->params + p->info[i].offset;
}

float *shelf_params_grad(const shelf_params *p, size_t i)
{
    SHELF_ASSERT(p->grads && i < p->n_tensors);
    return p->grads + p->info[i].offset;
}

void shelf_params_set_flags(shelf_params *p, size_t i, int flags)
{
    SHELF_ASSERT(i < p->n_tensors);
    p->info[i].flags = flags;
}

void shelf_params_zero_grad(shelf_params *p)
{
    SHELF_ASSERT(p->grads);
    memset(p->grads, 0, p->n_floats * sizeof(float));
}

/* grads [n_floats] -> ||grads||_2; then grads *= max_norm / norm if over. */
double shelf_params_clip_grad_norm(shelf_params *p, double max_norm)
{
    SHELF_ASSERT(p->grads);
    const size_t n = p->n_floats;
    float *g = p->grads;
    double part[NORM_CHUNKS];
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int c = 0; c < NORM_CHUNKS; c++) {
        const size_t lo = n * (size_t)c / NORM_CHUNKS, hi = n * (size_t)(c + 1) / NORM_CHUNKS;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double ss = 0.0;
    for (int c = 0; c < NORM_CHUNKS; c++) ss += part[c];
    const double norm = sqrt(ss);
    if (max_norm > 0.0 && isfinite(norm) && norm > max_norm) {
        const float k = (float)(max_norm / norm);
        const long nl = (long)n;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (long i = 0; i < nl; i++) g[i] *= k;
    }
    return norm;
}

/* params, m, v [numel] updated in place from grads [numel], per tensor, in
 * chunks of the level's kernel (kern_int.h: the same bits at every level) */
void shelf_adamw_step(shelf_params *p, const shelf_adamw *cfg, float lr, int64_t step)
{
    SHELF_ASSERT(p->params && step >= 1);
    const shelf__kern *kern = shelf__kern_get();
    shelf__adamw_k k = {.lr = lr, .b1 = cfg->beta1, .b2 = cfg->beta2, .eps = cfg->eps};
    k.c1 = (float)(1.0 - pow((double)k.b1, (double)step)); /* bias corrections */
    k.c2 = (float)(1.0 - pow((double)k.b2, (double)step));
#pragma omp parallel if (p->n_floats >= PAR_MIN)
    for (size_t ti = 0; ti < p->n_tensors; ti++) {
        const shelf_param_info *r = &p->info[ti];
        shelf__adamw_k kt = k;
        kt.decay = (r->flags & SHELF_PARAM_NO_DECAY) ? 0.0f : cfg->weight_decay;
        float *w = p->params + r->offset, *g = p->grads + r->offset;
        float *m = p->m + r->offset, *v = p->v + r->offset;
        const size_t n = r->numel, nc = (n + SHELF__KERN_CHUNK - 1) / SHELF__KERN_CHUNK;
        /* tensors are disjoint: no barrier between them */
#pragma omp for schedule(static) nowait
        for (size_t c = 0; c < nc; c++) {
            const size_t lo = c * SHELF__KERN_CHUNK, len = n - lo < SHELF__KERN_CHUNK ? n - lo : SHELF__KERN_CHUNK;
            kern->adamw(w + lo, m + lo, v + lo, g + lo, len, &kt);
        }
    }
}

float shelf_lr_at(const shelf_lr_schedule *s, int64_t step)
{
    if (step < 0) step = 0;
    if (step < s->warmup) return s->lr_max * (float)(step + 1) / (float)s->warmup;
    if (s->decay == SHELF_LR_CONSTANT) return s->lr_max;
    if (step >= s->total) return s->lr_min;
    const double x = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    double lr;
    if (s->decay == SHELF_LR_LINEAR)
        lr = s->lr_max - (s->lr_max - s->lr_min) * x;
    else
        lr = s->lr_min + (s->lr_max - s->lr_min) * 0.5 * (1.0 + cos(M_PI * x));
    return (float)lr;
}
