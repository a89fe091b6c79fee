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
 * topk[0..k): ranked item ids, best first, distinct, SHELF_NONE entries (padding)
 * never hit; targets[0..n_t): the held-out items, distinct. The cut-off K is k
 * (a list shorter than K is passed padded). With hits at 1-based positions p:
 *   hr        1 if any target is in the list
 *   recall    hits / n_t
 *   precision hits / k
 *   ndcg      sum 1/log2(p+1) over the ideal DCG of min(n_t, k) hits
 *   mrr       1/p of the first hit (0 without one): MRR@K, cut at the list
 *   map       AP@K: sum of precision@p over hits, / min(n_t, k)
 * With one target HR@K = Recall@K and MAP@K = MRR@K. All 0 when k or n_t is 0. */
typedef struct shelf_list_metrics {
    double hr, recall, ndcg, mrr, precision, map;
} shelf_list_metrics;
SHELF_API void shelf_metrics_list(const uint32_t *topk, uint32_t k, const uint32_t *targets, uint32_t n_t,
                        shelf_list_metrics *out);

/* Rank (1-based) of target among candidates, ties broken pessimistically
 * (BENCHMARKS.md): 1 + the number of other candidate items whose score is
 * >= the target's. Candidates are items with exclude[i] == 0 (exclude may
 * be NULL) whose score is not -inf. A NaN score ranks below every number; a
 * NaN target ranks last (1 + all other candidates). A target that is not a
 * candidate (excluded, -inf, or >= n_items) never ranks: SHELF_RANK_NONE,
 * which is above every cut-off. */
#define SHELF_RANK_NONE UINT64_MAX
SHELF_API uint64_t shelf_metrics_rank(const float *scores, uint32_t n_items, const uint8_t *exclude,
                            uint32_t target);

/* Top k of scores among candidates (as for shelf_metrics_rank: not excluded,
 * not -inf), best first; NaN after every number; ties by lower item id.
 * Writes min(k, candidates) ids and returns that count. O(n_items log k). */
SHELF_API uint32_t shelf_topk(const float *scores, uint32_t n_items, const uint8_t *exclude, uint32_t k,
                    uint32_t *out);

/* RMSE and MAE of predictions against truth (NaN when n is 0). */
SHELF_API void shelf_metrics_rating(const float *pred, const float *truth, size_t n, double *rmse, double *mae);

/* Rating prediction on held-out triples: predicts each (users[j], items[j])
 * with shelf_model_predict (users[j] may be SHELF_NONE: a user the model
 * never saw) and compares with truth[j]. pred (may be NULL) receives the
 * predictions. Errors name the triple. */
SHELF_API int shelf_eval_ratings(const shelf_model *m, const uint32_t *users, const uint32_t *items, const float *truth,
                       size_t n, float *pred, double *rmse, double *mae, shelf_err *err);

/* ---- protocols ------------------------------------------------------------------ */
typedef enum {
    SHELF_PROTO_LOO_FULL, /* rank against all items, history removed */
    SHELF_PROTO_LOO_S100, /* rank against 100 sampled non-interacted items */
    SHELF_PROTO_TEMPORAL, /* split.h temporal cut-off, all held-out items are targets */
    SHELF_PROTO_COLD_ITEM /* targets that are cold (held-out) items, ranked against all */
} shelf_protocol;
SHELF_API int shelf_protocol_parse(const char *s, shelf_protocol *out); /* "loo-full|loo-s100|temporal|cold-item" */
SHELF_API const char *shelf_protocol_name(shelf_protocol p);             /* the same words; "?" if unknown */
#define SHELF_EVAL_S100_NEG 100 /* LOO-S100: sampled negatives per target */

/* Cold-item split: round(frac * n_items) items, drawn with seed, are cold:
 * all their events leave training (the items stay in the catalogue, known by
 * their features only). Per user, the item of the last event on a cold item
 * is the test target, and the item of the last earlier event on a different
 * cold item (if any) the validation target; other cold events are dropped.
 * Evaluated with the history rule of shelf_eval_run (training sequence, plus
 * the validation target for the test). frac in [0, 1], else SHELF_EINVAL.
 * kind is SHELF_SPLIT_RANDOM (the split has no kind of its own). Free with
 * shelf_split_free. */
SHELF_API int shelf_split_cold_items(const shelf_snapshot *s, double frac, uint64_t seed, shelf_split **out,
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
    /* > 0: items without training events score by their cold_fill content
     * neighbours (shelf/coldfill.h) instead of by the model */
    uint32_t cold_fill;
    /* a scenario document (docs/scenarios.md; JSON text) whose stages choose
     * each list from the model's scores (loo-full, temporal); NULL: the
     * model's top list */
    const char *scenario;
    /* models fitted on the same split that the scenario's model sources may
     * name by kind (the evaluated model is the source without a name) */
    const shelf_model *const *peers;
    uint32_t n_peers;
} shelf_eval_opts;
SHELF_API void shelf_eval_opts_init(shelf_eval_opts *o); /* LOO-FULL, K = 5,10,20, test, seed 42 */

/* Per-metric index into shelf_eval_result arrays. */
enum { SHELF_M_HR, SHELF_M_NDCG, SHELF_M_MRR, SHELF_M_PRECISION, SHELF_M_MAP, SHELF_M_RECALL, SHELF_M_COUNT };
SHELF_API const char *shelf_metric_name(int m); /* "hr", "ndcg", ... */

typedef struct shelf_eval_result {
    uint32_t n_eval;       /* users evaluated (those with targets) */
    uint32_t *users;       /* [n_eval] user indices */
    uint64_t *rank;        /* [n_eval] rank of the (best-placed) target, SHELF_RANK_NONE if it never ranks */
    uint32_t *topk;        /* [n_eval * SHELF_EVAL_TOPK] top lists (history removed), SHELF_NONE padded */
    int n_ks;
    uint32_t ks[SHELF_EVAL_MAX_K];
    double *per_user[SHELF_EVAL_MAX_K][SHELF_M_COUNT]; /* [n_eval] values */
    double mean[SHELF_EVAL_MAX_K][SHELF_M_COUNT]; /* over all n_eval users (NaN if none) */
    /* beyond accuracy, per K (over the top-K lists of all evaluated users) */
    double coverage[SHELF_EVAL_MAX_K];     /* share of the catalogue recommended at least once */
    double gini[SHELF_EVAL_MAX_K];         /* Gini of exposure over items */
    double novelty[SHELF_EVAL_MAX_K];      /* mean -log2(train popularity share) */
    double ild_category[SHELF_EVAL_MAX_K]; /* mean share of pairs in different categories */
    double ild_embedding[SHELF_EVAL_MAX_K];/* mean cosine distance of item vectors (NaN: none) */
    double avg_pop[SHELF_EVAL_MAX_K];      /* mean training count of recommended items */
    double long_tail[SHELF_EVAL_MAX_K];    /* share of recommended items outside the 20 % most trained */
    double score_seconds;
} shelf_eval_result;

/* Evaluates a fitted model (fitted on sp->train: same item count) on a split.
 *
 * History, in every protocol: for the test, the user's training sequence
 * followed by the user's validation items; for validation (o->valid), the
 * training sequence. The query carries user u (SHELF_NONE if the model has no
 * such user) and those items; types and ts are NULL, because the split does
 * not keep the types and times of held-out events and a query must not mix
 * known and unknown ones. History items are removed from the ranking (the
 * target too, if it is one of them: then it never ranks, as BENCHMARKS.md
 * and tools/score_topk.py count it).
 *
 * Targets: LOO-FULL, LOO-S100 and cold-item take the user's one held-out
 * item (SHELF_EINVAL if a user has several: use temporal); their metrics
 * come from the pessimistic rank r (hit iff r <= K, NDCG 1/log2(r+1), MRR@K
 * = MAP@K = 1/r within K, precision hit/K). Temporal takes the user's
 * distinct held-out items that are not in the history (users left with none
 * are skipped); its metrics come from the top-K list (shelf_metrics_list,
 * HR = any hit) and rank is that of the best-placed target.
 *
 * Top lists follow the order of the ranks: score, then on a tie the
 * target(s) after the other items, then lower id; so scoring r's lists
 * alone (tools/score_topk.py) gives the same HR and NDCG.
 *
 * LOO-S100: the target is ranked among itself and SHELF_EVAL_S100_NEG items
 * drawn uniformly without replacement from those the user never touched in
 * training, validation or test (all of them if fewer), with a stream of
 * o->seed per user; the target stays a candidate even if in the history (as
 * in SASRec's code). Its top lists are the best of those candidates.
 *
 * Beyond accuracy, per K over the top-K lists of all evaluated users:
 * coverage = distinct recommended items / n_items; gini over the exposure
 * counts of all items (0: equal); novelty = mean over recommended entries of
 * -log2((c_i + 1) / (E + n_items)) with c_i the item's events in training
 * and E all training events; avg_pop = mean c_i; ild_category = mean over
 * lists of the share of item pairs in different categories (an item without
 * category is its own category; NaN when the catalogue has no categories at
 * all); ild_embedding = mean over lists of the mean cosine distance 1 - cos
 * (a zero vector has cos 0), NaN if item_vecs is NULL. Lists with fewer than 2 items have no diversity and are left out
 * of its means; a mean over nothing is NaN.
 *
 * Users run in parallel (o->threads, 0: OpenMP default); results do not
 * depend on the thread count. score_seconds: wall time of the scoring and
 * ranking loop. item_vecs (may be NULL) [n_items * dim]. Free with
 * shelf_eval_result_free. Errors: SHELF_EINVAL (options, sizes, split),
 * SHELF_ENOMEM, or the model's score error with its message. */
SHELF_API int shelf_eval_run(const shelf_model *m, const shelf_split *sp, const shelf_eval_opts *o,
                   const float *item_vecs, uint32_t dim, shelf_eval_result **out, shelf_err *err);
SHELF_API void shelf_eval_result_free(shelf_eval_result *r);

/* Paired bootstrap of mean(a - b) over n users (a, b per-user values of two
 * models on the same users): n_boot resamples of n users with replacement
 * (shelf_rng seeded with seed); mean_diff is the plain mean of a - b, [lo,
 * hi] the 2.5% and 97.5% percentiles (linear interpolation) of the resample
 * means, and p_not_better the share of resamples whose mean is <= 0. All NaN
 * when n or n_boot is 0 or memory runs out. */
SHELF_API void shelf_eval_bootstrap(const double *a, const double *b, uint32_t n, uint32_t n_boot, uint64_t seed,
                          double *mean_diff, double *lo, double *hi, double *p_not_better);

/* Writes "user item_1 ... item_k" lines (external ids of s, the snapshot the
 * split came from, or its training part: the same ids) of r's top lists, one
 * line per evaluated user in r's order, k in 1..SHELF_EVAL_TOPK (a shorter
 * list gives a shorter line). Written to a temporary file renamed into
 * place. SHELF_EINVAL, SHELF_EIO with the path. */
SHELF_API int shelf_eval_write_topk(const shelf_eval_result *r, const shelf_snapshot *s, uint32_t k, const char *path,
                          shelf_err *err);

#ifdef __cplusplus
}
#endif
#endif
