/* eval.h: offline evaluation: accuracy and beyond-accuracy metrics kept per
 * user, the protocols of BENCHMARKS.md (LOO-FULL, LOO-S100), temporal and
 * cold-item splits, paired bootstrap comparisons, and top-k list export. */
#ifndef SHELF_EVAL_H
#define SHELF_EVAL_H

#include "shelf/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- metrics of one ranked list (pure functions) -------------------------------
 * topk[0..k): ranked item ids, best first; targets[0..n_t): the held-out
 * items. With one target HR@K = Recall@K. NDCG uses 1/log2(rank+1) gains
 * and the ideal DCG of min(n_t, K) hits. */
typedef struct shelf_list_metrics {
    double hr, recall, ndcg, mrr, precision, map;
} shelf_list_metrics;
void shelf_metrics_list(const uint32_t *topk, uint32_t k, const uint32_t *targets, uint32_t n_t,
                        shelf_list_metrics *out);

/* Rank (1-based) of target among candidates, ties broken pessimistically
 * (BENCHMARKS.md): 1 + the number of other candidate items whose score is
 * >= the target's. Candidates are items with exclude[i] == 0 (exclude may
 * be NULL). Scores that are -inf never rank; a NaN target ranks last. */
uint64_t shelf_metrics_rank(const float *scores, uint32_t n_items, const uint8_t *exclude,
                            uint32_t target);

/* Top k of scores among non-excluded items, best first; ties by lower item
 * id. Writes min(k, candidates) ids and returns that count. */
uint32_t shelf_topk(const float *scores, uint32_t n_items, const uint8_t *exclude, uint32_t k,
                    uint32_t *out);

/* RMSE and MAE of predictions against truth. */
void shelf_metrics_rating(const float *pred, const float *truth, size_t n, double *rmse, double *mae);

/* ---- protocols ------------------------------------------------------------------ */
typedef enum {
    SHELF_PROTO_LOO_FULL, /* rank against all items, history removed */
    SHELF_PROTO_LOO_S100, /* rank against 100 sampled non-interacted items */
    SHELF_PROTO_TEMPORAL, /* split.h temporal cut-off, all held-out items are targets */
    SHELF_PROTO_COLD_ITEM /* targets that are cold (held-out) items, ranked against all */
} shelf_protocol;
int shelf_protocol_parse(const char *s, shelf_protocol *out); /* "loo-full|loo-s100|temporal|cold-item" */

/* Cold-item split: a share frac of items (seeded) is held out with all its
 * events from training; each user's last event on a cold item is the test
 * target (and the one before it, if also cold, the validation target);
 * history = the user's full sequence before the target. */
int shelf_split_cold_items(const shelf_snapshot *s, double frac, uint64_t seed, shelf_split **out,
                           shelf_err *err);

#define SHELF_EVAL_MAX_K 8
#define SHELF_EVAL_TOPK 20 /* length of the kept top lists */

typedef struct shelf_eval_opts {
    shelf_protocol protocol;
    uint32_t ks[SHELF_EVAL_MAX_K]; /* cut-offs, ascending, each <= SHELF_EVAL_TOPK */
    int n_ks;
    int valid;        /* evaluate validation targets (history excludes them) */
    uint64_t seed;    /* LOO-S100 negatives */
    int threads;      /* 0: OpenMP default */
    int progress;
} shelf_eval_opts;
void shelf_eval_opts_init(shelf_eval_opts *o); /* LOO-FULL, K = 5,10,20, test */

/* Per-metric index into shelf_eval_result arrays. */
enum { SHELF_M_HR, SHELF_M_NDCG, SHELF_M_MRR, SHELF_M_PRECISION, SHELF_M_MAP, SHELF_M_RECALL, SHELF_M_COUNT };
const char *shelf_metric_name(int m); /* "hr", "ndcg", ... */

typedef struct shelf_eval_result {
    uint32_t n_eval;       /* users evaluated (those with targets) */
    uint32_t *users;       /* [n_eval] user indices */
    uint64_t *rank;        /* [n_eval] rank of the (first) target */
    uint32_t *topk;        /* [n_eval * SHELF_EVAL_TOPK] top lists (history removed), SHELF_NONE padded */
    int n_ks;
    uint32_t ks[SHELF_EVAL_MAX_K];
    double *per_user[SHELF_EVAL_MAX_K][SHELF_M_COUNT]; /* [n_eval] values */
    double mean[SHELF_EVAL_MAX_K][SHELF_M_COUNT];
    /* beyond accuracy, per K (over the top-K lists of all evaluated users) */
    double coverage[SHELF_EVAL_MAX_K];     /* share of the catalogue recommended at least once */
    double gini[SHELF_EVAL_MAX_K];         /* Gini of exposure over items */
    double novelty[SHELF_EVAL_MAX_K];      /* mean -log2(train popularity share) */
    double ild_category[SHELF_EVAL_MAX_K]; /* mean share of pairs in different categories */
    double ild_embedding[SHELF_EVAL_MAX_K];/* mean cosine distance of item vectors (NaN: none) */
    double avg_pop[SHELF_EVAL_MAX_K];      /* mean training count of recommended items */
    double score_seconds;
} shelf_eval_result;

/* Evaluates a fitted model on a split. For LOO: test history = training
 * sequence + validation item; validation history = training sequence.
 * Users without a target are skipped. item_vecs (may be NULL) [n_items *
 * dim] gives the embedding for intra-list diversity. Free with
 * shelf_eval_result_free. */
int shelf_eval_run(const shelf_model *m, const shelf_split *sp, const shelf_eval_opts *o,
                   const float *item_vecs, uint32_t dim, shelf_eval_result **out, shelf_err *err);
void shelf_eval_result_free(shelf_eval_result *r);

/* Paired bootstrap of mean(a - b) over n users (a, b per-user values of two
 * models on the same users): 95% interval and the share of resamples where
 * a <= b. */
void shelf_eval_bootstrap(const double *a, const double *b, uint32_t n, uint32_t n_boot, uint64_t seed,
                          double *mean_diff, double *lo, double *hi, double *p_not_better);

/* Writes "user item_1 ... item_k" lines (external ids) of r's top lists. */
int shelf_eval_write_topk(const shelf_eval_result *r, const shelf_snapshot *s, uint32_t k, const char *path,
                          shelf_err *err);

#ifdef __cplusplus
}
#endif
#endif
