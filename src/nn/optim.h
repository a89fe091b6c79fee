/* optim.h (internal, not installed): the parameter store (named tensors as
 * views into one contiguous buffer each for parameters, gradients and
 * AdamW's two moments), gradient clipping, AdamW and the learning-rate
 * schedule, for the nn/ models. */
#ifndef SHELF_OPTIM_H
#define SHELF_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "shelf/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHELF_PARAM_NAME_MAX 64
#define SHELF_PARAM_MAX_DIM 4

/* flags of shelf_params_add */
enum {
    SHELF_PARAM_NO_DECAY = 1, /* AdamW applies no weight decay to this tensor
                                 (biases, LayerNorm gains, embeddings: as the
                                 model configures) */
};

/* One row of the table: tensor i lives at params[offset .. offset+numel) and
 * at the same offset in grads, m and v. */
typedef struct shelf_param_info {
    char name[SHELF_PARAM_NAME_MAX];
    int ndim;
    int64_t shape[SHELF_PARAM_MAX_DIM];
    size_t numel;
    size_t offset; /* in floats; a multiple of 16 (64-byte aligned views) */
    int flags;     /* SHELF_PARAM_* */
} shelf_param_info;

/* The store. Fields are read-only for users; the buffers exist (non-NULL,
 * n_floats long, 64-byte aligned) only after shelf_params_alloc. Offsets are
 * increasing in the order tensors were added; the gaps between tensors (at
 * most 15 floats, to align the next view) are zero in all four buffers and
 * stay zero, so they change neither the gradient norm nor anything else. */
typedef struct shelf_params {
    shelf_param_info *info;
    size_t n_tensors;
    size_t cap;
    size_t n_floats; /* length of each buffer, gaps included */
    float *params;   /* parameters */
    float *grads;    /* gradients */
    float *m;        /* AdamW first moment */
    float *v;        /* AdamW second moment */
} shelf_params;

/* Empty store, or NULL on out of memory. Free with shelf_params_free. Not
 * thread safe (one owner). */
shelf_params *shelf_params_new(void);
void shelf_params_free(shelf_params *p); /* accepts NULL */

/* Declares a tensor: name (unique, shorter than SHELF_PARAM_NAME_MAX), ndim
 * 1..4 dimensions each > 0, flags (SHELF_PARAM_*). Only before
 * shelf_params_alloc. *index (if not NULL) receives its row in the table.
 * 0, SHELF_EINVAL (bad name or shape, duplicate name, store already
 * allocated), SHELF_ENOMEM; details in err (may be NULL). */
int shelf_params_add(shelf_params *p, const char *name, int ndim, const int64_t *shape, int flags,
                     size_t *index, shelf_err *err);

/* Allocates the four buffers, all zeros. 0, SHELF_EINVAL (already allocated
 * or no tensors), SHELF_ENOMEM. */
int shelf_params_alloc(shelf_params *p, shelf_err *err);

/* Row of the tensor named name, or -1. */
long shelf_params_find(const shelf_params *p, const char *name);
/* Views of tensor i (after alloc). */
float *shelf_params_data(const shelf_params *p, size_t i);
float *shelf_params_grad(const shelf_params *p, size_t i);
/* Changes tensor i's flags (e.g. to configure weight decay after building). */
void shelf_params_set_flags(shelf_params *p, size_t i, int flags);

/* grads <- 0. */
void shelf_params_zero_grad(shelf_params *p);

/* Global gradient-norm clipping: computes norm = ||grads||_2 over all
 * tensors (in double, in fixed chunks summed in a fixed order, so the result
 * does not depend on the thread count) and, when norm > max_norm > 0,
 * multiplies every gradient by max_norm / norm so that the new norm is
 * max_norm. Returns the norm before clipping. A non-finite norm leaves the
 * gradients unchanged (the caller should skip the step). max_norm <= 0:
 * only measures. */
double shelf_params_clip_grad_norm(shelf_params *p, double max_norm);

/* AdamW hyper-parameters (the learning rate comes per step, from the
 * schedule). */
typedef struct shelf_adamw {
    float beta1;        /* 0.9 */
    float beta2;        /* 0.999 */
    float eps;          /* 1e-8 */
    float weight_decay; /* decoupled, e.g. 0.01 */
} shelf_adamw;

/* One AdamW step at learning rate lr; step is 1 for the first step (it sets
 * the bias correction). For every element (decay = weight_decay, or 0 for a
 * tensor flagged SHELF_PARAM_NO_DECAY):
 *   m = beta1 m + (1-beta1) g          v = beta2 v + (1-beta2) g^2
 *   mhat = m / (1 - beta1^step)        vhat = v / (1 - beta2^step)
 *   param -= lr * (mhat / (sqrt(vhat) + eps) + decay * param)
 * i.e. PyTorch's AdamW (param *= 1 - lr*decay, then the Adam update).
 * Elementwise, so the same for any thread count. */
void shelf_adamw_step(shelf_params *p, const shelf_adamw *cfg, float lr, int64_t step);

/* Learning-rate schedule. step counts from 0 (the first optimiser step).
 *   warm-up, 0 <= step < warmup:  lr_max * (step + 1) / warmup
 *     (never 0, reaches lr_max at step warmup-1)
 *   decay, warmup <= step < total, with x = (step - warmup) / (total - warmup)
 *     in [0, 1):
 *       COSINE: lr_min + (lr_max - lr_min) * (1 + cos(pi x)) / 2
 *       LINEAR: lr_max - (lr_max - lr_min) * x
 *       CONSTANT: lr_max
 *   after, step >= total: lr_min (the floor; CONSTANT: lr_max)
 * warmup 0 skips the warm-up; total <= warmup means no decay phase. */
typedef enum { SHELF_LR_COSINE = 0, SHELF_LR_LINEAR = 1, SHELF_LR_CONSTANT = 2 } shelf_lr_decay;

typedef struct shelf_lr_schedule {
    float lr_max;
    float lr_min; /* the floor */
    int64_t warmup;
    int64_t total;
    shelf_lr_decay decay;
} shelf_lr_schedule;

float shelf_lr_at(const shelf_lr_schedule *s, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
