/* models_int.h: what model implementations share: their constructors (one
 * per model file, listed in registry.c) and small helpers. */
#ifndef SHELF_MODELS_INT_H
#define SHELF_MODELS_INT_H

#include "shelf/model.h"

/* Constructors: a zeroed model with its vtable set; SHELF_ENOMEM. */
int shelf__model_pop_new(shelf_model **out);
int shelf__model_itemknn_new(shelf_model **out);
int shelf__model_ease_new(shelf_model **out);
int shelf__model_als_new(shelf_model **out);
int shelf__model_bpr_new(shelf_model **out);
int shelf__model_rating_mf_new(shelf_model **out);
int shelf__model_svdpp_new(shelf_model **out);
int shelf__model_rating_text_new(shelf_model **out);
int shelf__model_hybrid_new(shelf_model **out);
int shelf__model_transformer_new(shelf_model **out);

/* A model's rows of the configuration table (its hyperparameters), kept
 * beside its code; registry.c hands them to config.c, which joins them to
 * the common rows. SHELF__FIT is their scope. */
typedef struct shelf__opt_rows {
    const shelf_cfg_def *row;
    size_t n;
} shelf__opt_rows;
#define SHELF__OPT_ROWS(rows) {(rows), sizeof(rows) / sizeof((rows)[0])}
#define SHELF__FIT "eval train"
extern const shelf__opt_rows shelf__pop_opts, shelf__itemknn_opts, shelf__ease_opts, shelf__als_opts,
    shelf__bpr_opts, shelf__rating_mf_opts, shelf__svdpp_opts, shelf__rating_text_opts, shelf__hybrid_opts,
    shelf__transformer_opts;

/* Sets the model's own error slot and returns code (printf-style): for fit,
 * load, save and observe, which no other thread runs beside (the const
 * operations use shelf__model_err). */
int shelf__model_fail(const shelf_model *m, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same into a caller's err (may be NULL), for the const operations:
 * "<model>: <message>". */
int shelf__model_err(const shelf_model *m, shelf_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A copy (malloc) of the float tensor name of shape [d0] (d1 == 0) or
 * [d0, d1] from bundle b; NULL after setting m's error (missing, other
 * shape, out of memory). */
float *shelf__bundle_take_f32(shelf_model *m, const shelf_bundle *b, const char *name, int64_t d0, int64_t d1);

/* Positive pairs of a snapshot (positives.c): the user->item nonzeros with a
 * value > 0. count gives their number n; fill writes the CSR over users
 * off[U+1] / col[n] (items ascending per user) and each pair's user pu[n]. */
uint64_t shelf__positives_count(const shelf_snapshot *s);
void shelf__positives_fill(const shelf_snapshot *s, uint64_t *off, uint32_t *col, uint32_t *pu);

/* Number of threads to use for option "threads" (0: omp_get_max_threads()). */
int shelf__model_threads(const shelf_opts *o);

#endif
