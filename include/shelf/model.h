/* model.h: the one interface every model implements (DESIGN.md), the model
 * registry, and bundles (a directory with manifest.json and
 * tensors.safetensors) to save and load fitted models. */
#ifndef SHELF_MODEL_H
#define SHELF_MODEL_H

#include "shelf/config.h"
#include "shelf/snapshot.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hyperparameters are rows of the one configuration table (config.h), named
 * by model: "als-factors", "knn-shrink", ... so flags, config files and
 * --tune all reach them the same way. */
typedef struct shelf_config shelf_opts;

/* What a model is asked to score: a known user (index in the training
 * snapshot) and/or a history of items, oldest first. Models use what they
 * can: ALS and BPR the user's learned factors (falling back to the history
 * when user is SHELF_NONE), item-kNN and EASE the history. */
typedef struct shelf_query {
    uint32_t user;          /* dense user index or SHELF_NONE (anonymous) */
    const uint32_t *items;  /* [n] history, oldest first */
    const uint16_t *types;  /* [n] event types, or NULL */
    const int64_t *ts;      /* [n] timestamps, or NULL */
    uint32_t n;
    int64_t now;            /* request time (0: unknown) */
    /* Context of the request: shelf_ctx_hash of "key=value" strings of the
     * shopper's attributes ("segment=b", "region=north", "device=mobile"),
     * the same strings as the snapshot's user features, for models that use
     * them with an unknown or new user; NULL/0: none. */
    const uint32_t *ctx;
    uint32_t n_ctx;
} shelf_query;

/* The hash of a context string "key=value" (xxh3, low 32 bits): what
 * shelf_query.ctx holds; models reduce it to their own table. */
SHELF_API uint32_t shelf_ctx_hash(const char *kv, size_t len);

/* One reason for recommending an item: "because you bought <item>". */
typedef struct shelf_reason {
    uint32_t item;  /* the history item behind it, or SHELF_NONE */
    float weight;   /* its share of the score */
    char text[120];
} shelf_reason;

typedef struct shelf_model shelf_model;
typedef struct shelf_bundle_writer shelf_bundle_writer;
typedef struct shelf_bundle shelf_bundle;

/* What a model can do (shelf_model_vt.caps), so that the ranking room and
 * the server use any model without knowing which one runs. */
enum {
    /* an empty history of an unknown user scores nothing useful (item-kNN,
     * EASE): such a shopper gets the fallback chain instead */
    SHELF_CAP_NEEDS_HISTORY = 1u << 0,
    SHELF_CAP_ONLINE = 1u << 1,  /* observe: learns from each ingested event */
    SHELF_CAP_SIMILAR = 1u << 2, /* a one-item history scores the items that go with it */
    SHELF_CAP_EXPLAIN = 1u << 3, /* explain */
    SHELF_CAP_RATE = 1u << 4,    /* predict: a rating on the data's scale */
    SHELF_CAP_CONTEXT = 1u << 5, /* scores an unknown shopper from shelf_query.ctx alone */
    SHELF_CAP_SESSION = 1u << 6, /* session_*: a per-shopper cache that each event extends */
    SHELF_CAP_ITEM_VECTORS = 1u << 7, /* item_vectors: a learned vector per item (diversity by embedding) */
};

/* The vtable. Operations on a const model are thread safe and report a
 * failure through err (the caller's, may be NULL), never into the model. */
typedef struct shelf_model_vt {
    const char *name;
    unsigned caps; /* SHELF_CAP_*: must match the optional operations present */
    /* Learns from the training snapshot. The snapshot must outlive the call
     * only (models copy what they keep). progress may be NULL. Errors go to
     * the model's own slot (shelf_model_errmsg). */
    int (*fit)(shelf_model *, const shelf_snapshot *, const shelf_opts *, shelf_progress *);
    /* Fills scores[0..n_items) (higher is better). */
    int (*score)(const shelf_model *, const shelf_query *, float *scores, shelf_err *err);
    /* Optional (NULL): cheap online update with one event (SHELF_CAP_ONLINE).
     * Not thread safe with scoring: the caller serialises. */
    int (*observe)(shelf_model *, const shelf_event *);
    /* Optional (NULL): why item scores high for the query. */
    int (*explain)(const shelf_model *, const shelf_query *, uint32_t item, shelf_reason *, shelf_err *err);
    /* Writes tensors and hyperparameters into the bundle writer. */
    int (*save)(const shelf_model *, shelf_bundle_writer *);
    /* Reads them back (copies what it keeps: the bundle closes after). */
    int (*load)(shelf_model *, const shelf_bundle *);
    void (*free)(shelf_model *);
    /* Optional (NULL): the predicted rating of item by user, clipped to the
     * rating scale; user SHELF_NONE (unknown) gets a non-personal estimate.
     * Rating models also fill score with the predicted rating of every
     * item, so they rank like any model. */
    int (*predict)(const shelf_model *, uint32_t user, uint32_t item, float *out, shelf_err *err);
    /* Optional (all NULL or none; SHELF_CAP_SESSION): a shopper's session,
     * a cache that extends with each event instead of reading the whole
     * history again (the transformer keeps every layer's keys and values).
     * session_begin makes one for a history (a query with user SHELF_NONE);
     * session_append brings it up to hist, which must be the history it was
     * made for plus newer events at the end (SHELF_EINVAL otherwise: begin
     * anew); session_score scores like score on that history. A session is
     * used by one thread at a time; different sessions run in parallel. */
    int (*session_begin)(const shelf_model *, const shelf_query *hist, void **out, shelf_err *err);
    int (*session_append)(const shelf_model *, void *sess, const shelf_query *hist, shelf_err *err);
    int (*session_score)(const shelf_model *, const void *sess, float *scores, shelf_err *err);
    void (*session_free)(void *sess);
    size_t (*session_bytes)(const void *sess); /* memory it holds */
    /* Optional (NULL; SHELF_CAP_ITEM_VECTORS): the model's item vectors,
     * n_items rows of *dim floats, owned by the model (valid while it is,
     * and read under the same lock as scoring for a model that learns
     * online); items close in it are alike to the model. */
    const float *(*item_vectors)(const shelf_model *, uint32_t *dim);
    /* Optional (NULL): n queries at once into scores[k * n_items ..], as
     * score gives each (to rounding: a model may batch the item side into
     * one matrix product). The caller runs it outside parallel regions. */
    int (*score_many)(const shelf_model *, const shelf_query *qs, size_t n, float *scores, shelf_err *err);
} shelf_model_vt;

/* The common head of every model; implementations embed it first. */
struct shelf_model {
    const shelf_model_vt *vt;
    uint32_t n_users, n_items; /* set by fit/load */
    int fitted;
    shelf_err err;
    /* Validation targets for the next fit (shelf_model_set_valid), or NULL. */
    const uint64_t *valid_off;
    const uint32_t *valid_item;
};

/* Names of the registered models ("pop", "itemknn", "ease", "als", "bpr",
 * ...); *n receives the count. */
SHELF_API const char *const *shelf_model_names(size_t *n);
/* The hyperparameters of model `name`: its rows of the configuration table
 * (pointers into shelf_config_table, static storage); *n receives the count.
 * NULL (and *n = 0) for an unknown name. */
SHELF_API const shelf_cfg_def *shelf_model_options(const char *name, size_t *n);
/* A new, unfitted model by name: SHELF_ENOTFOUND (listing the names) if
 * unknown. Free with shelf_model_free. */
SHELF_API int shelf_model_new(const char *name, shelf_model **out, shelf_err *err);
SHELF_API void shelf_model_free(shelf_model *m); /* accepts NULL */
SHELF_API const char *shelf_model_name(const shelf_model *m);
SHELF_API const char *shelf_model_errmsg(const shelf_model *m);

/* Wrappers of the vtable that check state (fit before score, sizes). fit
 * and observe keep their message in the model (shelf_model_errmsg); the
 * const operations put theirs in err (may be NULL). observe, explain,
 * predict and sessions return SHELF_EINVAL when the model has none. */
SHELF_API int shelf_model_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *p);
/* Validation targets that a model trained in epochs may watch during the
 * next fit (early stopping, best checkpoint): user u of the training
 * snapshot has the held-out items item[off[u] .. off[u+1]), the events right
 * after its training sequence (shelf_split's valid_off/valid_item). The model
 * never trains on them; the arrays must live until fit returns, and fit
 * forgets them. NULL, NULL clears. Models without epochs ignore them. */
SHELF_API void shelf_model_set_valid(shelf_model *m, const uint64_t *off, const uint32_t *item);
SHELF_API int shelf_model_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err);
/* n queries into scores[k * n_items ..]: the model's score_many (the
 * transformer: every profile, then one matrix product with the items), else
 * score one by one. Each query is checked first; none is scored when one
 * fails. */
SHELF_API int shelf_model_score_many(const shelf_model *m, const shelf_query *qs, size_t n, float *scores,
                                     shelf_err *err);
SHELF_API int shelf_model_observe(shelf_model *m, const shelf_event *e);
SHELF_API int shelf_model_explain(const shelf_model *m, const shelf_query *q, uint32_t item, shelf_reason *r,
                                  shelf_err *err);
/* Predicted rating (models with predict: rating-mf, svdpp, rating-text);
 * SHELF_EINVAL for models without one or an item out of range. */
SHELF_API int shelf_model_predict(const shelf_model *m, uint32_t user, uint32_t item, float *out, shelf_err *err);
/* The model's SHELF_CAP_* flags. */
SHELF_API unsigned shelf_model_caps(const shelf_model *m);

/* Sessions (models with SHELF_CAP_SESSION; see the vtable): begin makes
 * *out for the history hist (its items must be < n_items), append brings it
 * up to a longer hist, score fills scores[0..n_items). append and score
 * need the model alive; free and bytes work after the model is freed. */
typedef struct shelf_session shelf_session;
SHELF_API int shelf_session_begin(const shelf_model *m, const shelf_query *hist, shelf_session **out, shelf_err *err);
SHELF_API int shelf_session_append(shelf_session *s, const shelf_query *hist, shelf_err *err);
SHELF_API int shelf_session_score(const shelf_session *s, float *scores, shelf_err *err);
SHELF_API void shelf_session_free(shelf_session *s); /* accepts NULL */
SHELF_API size_t shelf_session_bytes(const shelf_session *s); /* memory it holds */

/* Bundles: save writes dir/manifest.json (model kind, format version,
 * hyperparameters, sizes, created time, the xxh3-128 checksum of the tensor
 * file) and dir/tensors.safetensors, into a temporary directory renamed
 * into place (bundles are immutable). save: SHELF_EEXIST when dir exists
 * (also when another process renamed a bundle there meanwhile),
 * SHELF_ERANGE when a float tensor holds a NaN or an infinity (nothing is
 * written). load reads the manifest, verifies the checksum and that every
 * float tensor is finite (SHELF_ECORRUPT naming the file and tensor
 * otherwise), makes the model of that kind and loads it; a bundle without
 * checksums (written by an older shelf) loads with a warning. */
SHELF_API int shelf_model_save(const shelf_model *m, const char *dir, shelf_err *err);
SHELF_API int shelf_model_load(const char *dir, shelf_model **out, shelf_err *err);

/* ---- bundle contents (for model implementations) ---------------------------- */
typedef enum { SHELF_DT_F32, SHELF_DT_I32, SHELF_DT_U32, SHELF_DT_I64, SHELF_DT_U64, SHELF_DT_U8 } shelf_dtype;

/* Adds a tensor: data must stay valid until the save ends (not copied).
 * name unique; ndim 1..4. */
SHELF_API int shelf_bundle_put(shelf_bundle_writer *w, const char *name, shelf_dtype dt, int ndim,
                     const int64_t *shape, const void *data);
/* Hyperparameters and other facts, written to the manifest. */
SHELF_API int shelf_bundle_set_num(shelf_bundle_writer *w, const char *key, double v);
SHELF_API int shelf_bundle_set_str(shelf_bundle_writer *w, const char *key, const char *v);

/* A tensor by name with its dtype checked: pointer into the bundle's
 * mapping (valid until the bundle closes), shape in shape[0..*ndim). NULL
 * if missing or of another dtype (the bundle's error says which). */
SHELF_API const void *shelf_bundle_get(const shelf_bundle *b, const char *name, shelf_dtype dt, int *ndim,
                             int64_t shape[4]);
/* A manifest number or string (def / NULL when missing). */
SHELF_API double shelf_bundle_num(const shelf_bundle *b, const char *key, double def);
SHELF_API const char *shelf_bundle_str(const shelf_bundle *b, const char *key);

#ifdef __cplusplus
}
#endif
#endif
