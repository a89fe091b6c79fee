/* models_int.h: what model implementations share: their kinds (one per
 * model file, listed in registry.c) and small helpers. */
#ifndef SHELF_MODELS_INT_H
#define SHELF_MODELS_INT_H

#include "shelf/model.h"

/* A kind of model, defined at the end of its file: shelf_model_new makes
 * one as a zeroed block of `size` bytes (the model's struct, shelf_model
 * first) with its vtable set. `opts` are its rows of the configuration
 * table (its hyperparameters, kept beside its code; config.c joins them to
 * the common rows); SHELF__FIT is their scope. */
typedef struct shelf__model_kind {
    const shelf_model_vt *vt;
    size_t size;
    const shelf_cfg_def *opts;
    size_t n_opts;
} shelf__model_kind;
#define SHELF__OPT_ROWS(rows) (rows), sizeof(rows) / sizeof((rows)[0])
#define SHELF__FIT "eval train"
extern const shelf__model_kind shelf__pop_kind, shelf__itemknn_kind, shelf__ease_kind, shelf__als_kind,
    shelf__bpr_kind, shelf__rating_mf_kind, shelf__svdpp_kind, shelf__rating_text_kind, shelf__hybrid_kind,
    shelf__transformer_kind;

/* Defines, at the end of a model's file, its vtable p_vt and its kind
 * shelf__<kind>_kind by the naming convention: the struct p_model, the
 * option rows `opts` and the operations p_fit, p_score, p_save, p_load and
 * p_free. The optional operations are named each time, a function or NULL
 * (they must agree with caps: registry.c checks); then
 * SHELF__SESSION_OPS(p) or SHELF__NO_SESSION, and optionally
 * `.item_vectors = p_item_vectors`. */
#define SHELF__MODEL_KIND(kind, p, name_, caps_, observe_, explain_, predict_, ...)                              \
    static const shelf_model_vt p##_vt = {                                                                      \
        .name = (name_), .caps = (caps_), .fit = p##_fit, .score = p##_score, .observe = (observe_),           \
        .explain = (explain_), .save = p##_save, .load = p##_load, .free = p##_free, .predict = (predict_),      \
        __VA_ARGS__};                                                                                            \
    const shelf__model_kind shelf__##kind##_kind = {&p##_vt, sizeof(p##_model), SHELF__OPT_ROWS(opts)}
/* The session operations p_session_begin, _append, _score, _free, _bytes. */
#define SHELF__SESSION_OPS(p)                                                                                    \
    .session_begin = p##_session_begin, .session_append = p##_session_append,                                 \
    .session_score = p##_session_score, .session_free = p##_session_free, .session_bytes = p##_session_bytes
#define SHELF__NO_SESSION                                                                                        \
    .session_begin = NULL, .session_append = NULL, .session_score = NULL, .session_free = NULL,                \
    .session_bytes = NULL

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

/* A number a model keeps in its bundle's manifest: the key and the field of
 * the model's struct it is saved from and loaded into ('d' double, 'i' int,
 * 'b' int flag (loaded as value != 0), 'u' uint32_t, 'U' uint64_t). One
 * table serves save and load, so the two cannot drift apart. */
typedef struct shelf__bundle_num {
    const char *key;
    size_t at;  /* offsetof(the model's struct, the field) */
    char type;
    double def; /* loaded when the manifest lacks the key */
} shelf__bundle_num;
/* Saves the numbers of model (its struct) in table order: 0 or the first
 * error of shelf_bundle_set_num. */
int shelf__bundle_nums_put(shelf_bundle_writer *w, const void *model, const shelf__bundle_num *t, size_t n);
/* Loads them into model's fields (the key's value, else def). */
void shelf__bundle_nums_get(const shelf_bundle *b, void *model, const shelf__bundle_num *t, size_t n);
/* The same table for fit: reads each number that is an option of the
 * configuration table from o into model's field (the numbers that are no
 * option, sizes the fit derives, are skipped). */
void shelf__opts_nums_get(const shelf_opts *o, void *model, const shelf__bundle_num *t, size_t n);

/* Positive pairs of a snapshot (positives.c): the user->item nonzeros with a
 * value > 0. count gives their number n; fill writes the CSR over users
 * off[U+1] / col[n] (items ascending per user) and each pair's user pu[n]. */
uint64_t shelf__positives_count(const shelf_snapshot *s);
void shelf__positives_fill(const shelf_snapshot *s, uint64_t *off, uint32_t *col, uint32_t *pu);

/* Number of threads to use for option "threads" (0: omp_get_max_threads()). */
int shelf__model_threads(const shelf_opts *o);

#endif
