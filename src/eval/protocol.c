/* protocol.c: the evaluation protocols of BENCHMARKS.md (LOO-FULL, LOO-S100)
 * plus temporal and cold-item runs: scores every user with a target in
 * parallel, ranks pessimistically, keeps per-user metrics and top lists,
 * then the beyond-accuracy metrics; and the top-list export. Eval room. */
#include "eval/eval_int.h"
#include "shelf/coldfill.h"
#include "core/mem_int.h"
#include "rank/scenario_int.h"
#include "shelf/store.h" /* SHELF_NONE */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#define OMP(x) _Pragma(#x)
#else
#define OMP(x)
#endif

/* Dimension letters: U users, I items, K cut-offs, M metrics, T = SHELF_EVAL_TOPK. */
#define M SHELF_M_COUNT
#define T SHELF_EVAL_TOPK

static const char *const proto_names[] = {"loo-full", "loo-s100", "temporal", "cold-item"};

int shelf_protocol_parse(const char *s, shelf_protocol *out)
{
    for (int p = 0; p < 4; p++)
        if (s && strcmp(s, proto_names[p]) == 0) {
            *out = (shelf_protocol)p;
            return 0;
        }
    return SHELF_EINVAL;
}

const char *shelf_protocol_name(shelf_protocol p)
{
    return (int)p >= 0 && (int)p < 4 ? proto_names[p] : "?";
}

void shelf_eval_opts_init(shelf_eval_opts *o)
{
    memset(o, 0, sizeof *o);
    o->protocol = SHELF_PROTO_LOO_FULL;
    o->ks[0] = 5;
    o->ks[1] = 10;
    o->ks[2] = 20;
    o->n_ks = 3;
    o->seed = 42;
}

void shelf_eval_result_free(shelf_eval_result *r)
{
    if (!r) return;
    free(r->users);
    free(r->rank);
    free(r->topk);
    free(r->per_user[0][0]); /* the one block behind every per_user array */
    free(r);
}

/* ---- per-thread state -------------------------------------------------------- */

typedef struct ev_buf {
    float *scores;       /* [I] */
    uint8_t *mask;       /* [I] SHELF__EV_* flags, all zero between users */
    uint32_t *hist;      /* [max history] */
    uint16_t *htype;     /* [max history] the history's event types */
    int64_t *hts;        /* [max history] and times */
    uint32_t *tg;        /* [max targets] */
    uint32_t *cand;      /* [1 + S100_NEG] LOO-S100 candidates */
    uint32_t *free_item; /* [I] LOO-S100: items not yet seen (dense sampling) */
    float *pop;          /* [I] a scenario's popularity (its own copy per thread) */
} ev_buf;

static void buf_free(ev_buf *b)
{
    SHELF__FREE_ALL(b->scores, b->mask, b->hist, b->htype, b->hts, b->tg, b->cand, b->free_item, b->pop);
}

static int buf_alloc(ev_buf *b, uint32_t I, uint64_t max_hist, uint64_t max_tg, int s100)
{
    memset(b, 0, sizeof *b);
    b->scores = malloc((size_t)(I ? I : 1) * sizeof *b->scores);
    b->mask = calloc((size_t)(I ? I : 1), 1);
    b->hist = malloc((size_t)(max_hist ? max_hist : 1) * sizeof *b->hist);
    b->htype = malloc((size_t)(max_hist ? max_hist : 1) * sizeof *b->htype);
    b->hts = malloc((size_t)(max_hist ? max_hist : 1) * sizeof *b->hts);
    b->tg = malloc((size_t)(max_tg ? max_tg : 1) * sizeof *b->tg);
    b->cand = malloc((1 + SHELF_EVAL_S100_NEG) * sizeof *b->cand);
    if (s100) b->free_item = malloc((size_t)(I ? I : 1) * sizeof *b->free_item);
    b->pop = malloc((size_t)(I ? I : 1) * sizeof *b->pop);
    if (!b->scores || !b->mask || !b->hist || !b->htype || !b->hts || !b->tg || !b->cand || (s100 && !b->free_item) ||
        !b->pop) {
        buf_free(b);
        return SHELF_ENOMEM;
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------------- */

typedef struct ev_run {
    const shelf_model *m;
    shelf_coldfill *cf; /* cold-item neighbours, or NULL */
    const shelf_split *sp;
    const shelf_eval_opts *o;
    const float *vecs;
    uint32_t dim;
    uint32_t I;
    const uint64_t *t_off; /* targets: test or validation CSR */
    const uint32_t *t_item;
    int single; /* one target per user, metrics from the rank */
    /* outputs, indexed by candidate user j (compacted afterwards) */
    uint32_t *users;
    uint8_t *keep;
    uint64_t *rank;
    uint32_t *topk;  /* [n * T] */
    double *pm;      /* [n * K * M] */
    double *ild_cat; /* [n * K] */
    double *ild_emb; /* [n * K] */
    /* o->scenario: its stages choose the lists (the snapshot as the ranking
     * room's catalogue: categories by id; no kinds or category names) */
    shelf__scenario *scn;
    int multi; /* its sources are more than the evaluated model (sources.c) */
    shelf__catalogue cat;
    shelf__rank_env env;
    float *item_pop;   /* [I] training events per item */
    uint8_t *all_ok;   /* [I] 1 */
    uint16_t *kind0;   /* [I] 0 (no kind) */
    char **type_names; /* the snapshot's event types */
    /* first failure (lowest user) */
    int fail_rc;
    uint32_t fail_u;
    char fail_msg[sizeof((shelf_err *)0)->msg];
} ev_run;

/* LOO-S100 candidates of user u into b->cand: the target, then n_neg items
 * the user never touched (SEEN flags set on everything touched and drawn;
 * the caller clears them). Dense catalogues of unseen items are sampled by
 * rejection, sparse ones by a partial shuffle of the unseen list; both are a
 * function of (seed, u) only. Returns the candidate count. */
static uint32_t s100_candidates(const ev_run *R, ev_buf *b, uint32_t u, uint32_t target, uint64_t n_train)
{
    const shelf_split *sp = R->sp;
    uint8_t *mask = b->mask;
    uint32_t seen = 0;
#define SEE(it)                                                                       \
    do {                                                                              \
        uint32_t it_ = (it);                                                          \
        if (!(mask[it_] & SHELF__EV_SEEN)) {                                          \
            mask[it_] |= SHELF__EV_SEEN;                                              \
            seen++;                                                                   \
        }                                                                             \
    } while (0)
    for (uint64_t h = 0; h < n_train; h++) SEE(b->hist[h]);
    for (uint64_t p = sp->valid_off[u]; p < sp->valid_off[u + 1]; p++) SEE(sp->valid_item[p]);
    for (uint64_t p = sp->test_off[u]; p < sp->test_off[u + 1]; p++) SEE(sp->test_item[p]);
#undef SEE
    const uint32_t I = R->I;
    uint32_t n_free = I - seen;
    uint32_t n_neg = n_free < SHELF_EVAL_S100_NEG ? n_free : SHELF_EVAL_S100_NEG;
    shelf_rng rng;
    shelf_rng_split(&rng, R->o->seed, u);
    b->cand[0] = target;
    if (n_free >= I / 2) {
        for (uint32_t j = 0; j < n_neg;) {
            uint32_t x = shelf_rng_below(&rng, I);
            if (mask[x] & SHELF__EV_SEEN) continue;
            mask[x] |= SHELF__EV_SEEN;
            b->cand[1 + j++] = x;
        }
    } else {
        uint32_t n = 0;
        for (uint32_t i = 0; i < I; i++)
            if (!(mask[i] & SHELF__EV_SEEN)) b->free_item[n++] = i;
        for (uint32_t j = 0; j < n_neg; j++) {
            uint32_t r = j + shelf_rng_below(&rng, n - j);
            uint32_t x = b->free_item[r];
            b->free_item[r] = b->free_item[j];
            b->free_item[j] = x;
            mask[x] |= SHELF__EV_SEEN;
            b->cand[1 + j] = x;
        }
    }
    return 1 + n_neg;
}

static void metrics_from_rank(uint64_t rank, uint32_t K, double *v)
{
    int hit = rank <= K;
    v[SHELF_M_HR] = hit;
    v[SHELF_M_NDCG] = hit ? 1.0 / log2((double)rank + 1) : 0;
    v[SHELF_M_MRR] = hit ? 1.0 / (double)rank : 0;
    v[SHELF_M_PRECISION] = hit ? 1.0 / K : 0;
    v[SHELF_M_MAP] = v[SHELF_M_MRR];
    v[SHELF_M_RECALL] = hit;
}

/* Intra-list diversity of list[0..n) at every cut-off: pair distances once,
 * then sums over the pairs inside each K. */
static void diversity(const ev_run *R, const uint32_t *list, uint32_t n, double *cat_out, double *emb_out)
{
    const uint32_t *cat = R->sp->train->item_category;
    double dc[T][T], de[T][T], norm[T];
    if (R->vecs)
        for (uint32_t a = 0; a < n; a++) {
            const float *va = R->vecs + (size_t)list[a] * R->dim;
            double s = 0;
            for (uint32_t d = 0; d < R->dim; d++) s += (double)va[d] * va[d];
            norm[a] = sqrt(s);
        }
    for (uint32_t b = 1; b < n; b++)
        for (uint32_t a = 0; a < b; a++) {
            uint32_t ca = cat[list[a]], cb = cat[list[b]];
            dc[a][b] = ca == SHELF_NONE || cb == SHELF_NONE || ca != cb;
            if (R->vecs) {
                const float *va = R->vecs + (size_t)list[a] * R->dim, *vb = R->vecs + (size_t)list[b] * R->dim;
                double dot = 0;
                for (uint32_t d = 0; d < R->dim; d++) dot += (double)va[d] * vb[d];
                double nn = norm[a] * norm[b];
                de[a][b] = 1.0 - (nn > 0 ? dot / nn : 0);
            }
        }
    for (int ki = 0; ki < R->o->n_ks; ki++) {
        uint32_t L = R->o->ks[ki] < n ? R->o->ks[ki] : n;
        if (L < 2) {
            cat_out[ki] = emb_out[ki] = NAN;
            continue;
        }
        double sc = 0, se = 0;
        for (uint32_t b = 1; b < L; b++)
            for (uint32_t a = 0; a < b; a++) {
                sc += dc[a][b];
                if (R->vecs) se += de[a][b];
            }
        double pairs = (double)L * (L - 1) / 2;
        cat_out[ki] = sc / pairs;
        emb_out[ki] = R->vecs ? se / pairs : NAN;
    }
}

/* The scenario's list of user u into top (T at most, history excluded):
 * its stages over the model's scores, then its choice from the best 512. */
static uint32_t scenario_list(const ev_run *R, ev_buf *b, uint32_t u, uint32_t n_h, uint32_t *top)
{
    int64_t now = 0;
    for (uint32_t h = 0; h < n_h; h++) {
        b->scores[b->hist[h]] = -INFINITY;
        if (b->hts[h] > now) now = b->hts[h];
    }
    shelf__rank_req rq = {.mode = SHELF__RANK_SHOPPER, .user = u, .items = b->hist, .types = b->htype, .ts = b->hts,
                          .n_hist = n_h, .n = T, .now = now, .scenario = R->scn, .sources_skip_history = 1};
    if (R->multi) { /* the sources fused, the history out again */
        shelf__rank_work *w = shelf__rank_work_get(R->I, T);
        if (!w || shelf__rank_sources(&R->env, &rq, w, b->scores, R->I, NULL)) return 0;
        for (uint32_t h = 0; h < n_h; h++) b->scores[b->hist[h]] = -INFINITY;
    }
    if (shelf__rank_scenario_cut(R->scn, b->scores, R->I, NULL, 0) ||
        shelf__rank_scenario_scores(&R->env, &rq, &R->cat, b->scores, b->pop, R->I))
        return 0;
    uint32_t pool[512];
    uint32_t m = shelf_topk(b->scores, R->I, NULL, 512, pool);
    return shelf__rank_scenario_select(&rq, &R->cat, b->scores, pool, m, 0, T, top);
}

/* Evaluates candidate user j (user u). Leaves b->mask all zero. */
static void eval_user(ev_run *R, ev_buf *b, uint32_t j)
{
    const shelf_split *sp = R->sp;
    const shelf_snapshot *tr = sp->train;
    const shelf_eval_opts *o = R->o;
    const uint32_t u = R->users[j];
    const int s100 = o->protocol == SHELF_PROTO_LOO_S100;
    uint8_t *mask = b->mask;

    /* history: training sequence, then (test) the validation items */
    uint32_t n_h = 0;
    for (uint64_t p = tr->seq_off[u]; p < tr->seq_off[u + 1]; p++) {
        b->htype[n_h] = tr->seq_type[p];
        b->hts[n_h] = tr->seq_ts[p];
        b->hist[n_h++] = tr->seq_item[p];
    }
    const uint64_t n_train = n_h;
    if (!o->valid)
        for (uint64_t p = sp->valid_off[u]; p < sp->valid_off[u + 1]; p++) {
            b->htype[n_h] = sp->valid_type ? sp->valid_type[p] : 0;
            b->hts[n_h] = sp->valid_ts ? sp->valid_ts[p] : 0;
            b->hist[n_h++] = sp->valid_item[p];
        }
    for (uint32_t h = 0; h < n_h; h++) mask[b->hist[h]] |= SHELF__EV_EXCL;

    /* targets */
    uint32_t n_t = 0;
    if (R->single) {
        b->tg[n_t++] = R->t_item[R->t_off[u]];
    } else {
        for (uint64_t p = R->t_off[u]; p < R->t_off[u + 1]; p++) {
            uint32_t it = R->t_item[p];
            if (mask[it] & (SHELF__EV_EXCL | SHELF__EV_TGT)) continue; /* in the history, or repeated */
            mask[it] |= SHELF__EV_TGT;
            b->tg[n_t++] = it;
        }
    }
    for (uint32_t t = 0; t < n_t; t++) mask[b->tg[t]] |= SHELF__EV_TGT;
    uint32_t n_cand = 0;
    uint32_t *top = R->topk + (size_t)j * T;
    if (n_t == 0) goto done;

    shelf_query q = {.user = u < R->m->n_users ? u : SHELF_NONE, .items = b->hist, .types = b->htype,
                     .ts = b->hts, .n = n_h, .now = 0};
    /* the checked wrapper: a model that is not fitted, or a history out of
     * its range, fails with the model's message rather than reading wild */
    shelf_err serr = {0};
    int rc = shelf_model_score(R->m, &q, b->scores, &serr);
    if (!rc && R->cf) shelf_coldfill_apply(R->cf, b->scores, R->I);
    if (rc) {
        OMP(omp critical(shelf_eval_fail))
        {
            if (!R->fail_rc || u < R->fail_u) {
                OMP(omp atomic write)
                R->fail_rc = rc;
                R->fail_u = u;
                snprintf(R->fail_msg, sizeof R->fail_msg, "%s", serr.msg);
            }
        }
        goto done;
    }

    uint32_t n_top;
    if (R->scn) {
        n_top = scenario_list(R, b, u, n_h, top);
        /* off the list: its rank by the scenario's scores, past the list
         * (diversity and caps reorder only what the list holds) */
        uint64_t rk = shelf__ev_rank(b->scores, R->I, mask, SHELF__EV_EXCL, SHELF__EV_TGT, NULL, 0, b->tg, n_t);
        R->rank[j] = rk != SHELF_RANK_NONE && rk <= T ? T + 1 : rk;
        for (uint32_t p = 0; p < n_top; p++)
            if (mask[top[p]] & SHELF__EV_TGT) {
                R->rank[j] = p + 1;
                break;
            }
    } else if (s100) {
        n_cand = s100_candidates(R, b, u, b->tg[0], n_train);
        R->rank[j] = shelf__ev_rank(b->scores, R->I, mask, 0, SHELF__EV_TGT, b->cand, n_cand, b->tg, 1);
        n_top = shelf__ev_topk(b->scores, R->I, mask, 0, SHELF__EV_TGT, b->cand, n_cand, T, top);
    } else {
        R->rank[j] = shelf__ev_rank(b->scores, R->I, mask, SHELF__EV_EXCL, SHELF__EV_TGT, NULL, 0, b->tg, n_t);
        n_top = shelf__ev_topk(b->scores, R->I, mask, SHELF__EV_EXCL, SHELF__EV_TGT, NULL, 0, T, top);
    }
    for (uint32_t p = n_top; p < T; p++) top[p] = SHELF_NONE;

    for (int ki = 0; ki < o->n_ks; ki++) {
        double *v = R->pm + ((size_t)j * (size_t)o->n_ks + (size_t)ki) * M;
        uint32_t K = o->ks[ki];
        if (R->single) {
            metrics_from_rank(R->rank[j], K, v);
        } else {
            shelf_list_metrics lm;
            shelf_metrics_list(top, K, b->tg, n_t, &lm);
            v[SHELF_M_HR] = lm.hr;
            v[SHELF_M_NDCG] = lm.ndcg;
            v[SHELF_M_MRR] = lm.mrr;
            v[SHELF_M_PRECISION] = lm.precision;
            v[SHELF_M_MAP] = lm.map;
            v[SHELF_M_RECALL] = lm.recall;
        }
    }
    diversity(R, top, n_top, R->ild_cat + (size_t)j * (size_t)o->n_ks, R->ild_emb + (size_t)j * (size_t)o->n_ks);
    R->keep[j] = 1;

done:
    /* every flag set above sits on one of these items */
    for (uint32_t h = 0; h < n_h; h++) mask[b->hist[h]] = 0;
    for (uint32_t t = 0; t < n_t; t++) mask[b->tg[t]] = 0;
    for (uint32_t c = 0; c < n_cand; c++) mask[b->cand[c]] = 0;
    if (s100 && n_cand) {
        for (uint64_t p = sp->valid_off[u]; p < sp->valid_off[u + 1]; p++) mask[sp->valid_item[p]] = 0;
        for (uint64_t p = sp->test_off[u]; p < sp->test_off[u + 1]; p++) mask[sp->test_item[p]] = 0;
    }
}

/* ---- beyond accuracy ------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* tail[i] = 1 for the items outside the head: the ceil(20 %) most trained
 * (ties at the border go to the head by ascending id). 0 or SHELF_ENOMEM. */
static int long_tail_items(const uint32_t *pop, uint32_t I, uint8_t *tail)
{
    uint32_t *sorted = malloc((size_t)(I ? I : 1) * sizeof *sorted);
    if (!sorted) return SHELF_ENOMEM;
    memcpy(sorted, pop, (size_t)I * sizeof *sorted);
    qsort(sorted, I, sizeof *sorted, cmp_u32);
    uint32_t head = (uint32_t)ceil(0.2 * I), border = head ? sorted[I - head] : UINT32_MAX, above = 0;
    free(sorted);
    for (uint32_t i = 0; i < I; i++) above += pop[i] > border;
    uint32_t at_border = head - above; /* items with count == border that are head */
    for (uint32_t i = 0; i < I; i++) {
        tail[i] = pop[i] < border || (pop[i] == border && !at_border);
        if (pop[i] == border && at_border) at_border--;
    }
    return 0;
}

static int beyond_accuracy(shelf_eval_result *r, const ev_run *R)
{
    const shelf_snapshot *tr = R->sp->train;
    const uint32_t I = R->I;
    uint32_t *pop = calloc((size_t)(I ? I : 1), sizeof *pop);
    uint32_t *expo = calloc((size_t)(I ? I : 1), sizeof *expo);
    uint8_t *tail = malloc((size_t)(I ? I : 1));
    if (!pop || !expo || !tail) {
        SHELF__FREE_ALL(pop, expo, tail);
        return SHELF_ENOMEM;
    }
    for (uint64_t e = 0; e < tr->n_events; e++) pop[tr->seq_item[e]]++;
    if (long_tail_items(pop, I, tail)) {
        SHELF__FREE_ALL(pop, expo, tail);
        return SHELF_ENOMEM;
    }
    const double denom = (double)tr->n_events + I;
    for (int ki = 0; ki < r->n_ks; ki++) {
        const uint32_t K = r->ks[ki];
        memset(expo, 0, (size_t)I * sizeof *expo);
        uint64_t total = 0, distinct = 0, in_tail = 0;
        double nov = 0, popsum = 0, sc = 0, se = 0;
        uint32_t nc = 0, ne = 0;
        for (uint32_t j = 0; j < r->n_eval; j++) {
            const uint32_t *top = r->topk + (size_t)j * T;
            for (uint32_t p = 0; p < K && top[p] != SHELF_NONE; p++) {
                uint32_t it = top[p];
                distinct += expo[it]++ == 0;
                total++;
                in_tail += tail[it];
                nov += -log2(((double)pop[it] + 1) / denom);
                popsum += pop[it];
            }
            double c = R->ild_cat[(size_t)j * (size_t)r->n_ks + (size_t)ki];
            double v = R->ild_emb[(size_t)j * (size_t)r->n_ks + (size_t)ki];
            if (!isnan(c)) sc += c, nc++;
            if (!isnan(v)) se += v, ne++;
        }
        r->coverage[ki] = I ? (double)distinct / I : NAN;
        r->novelty[ki] = total ? nov / (double)total : NAN;
        r->avg_pop[ki] = total ? popsum / (double)total : NAN;
        r->long_tail[ki] = total ? (double)in_tail / (double)total : NAN;
        r->ild_category[ki] = nc && tr->n_categories ? sc / nc : NAN;
        r->ild_embedding[ki] = ne ? se / ne : NAN;
        if (total) {
            /* sorted ascending x_1..x_n: G = 2 sum(i x_i) / (n sum x) - (n + 1) / n */
            qsort(expo, I, sizeof *expo, cmp_u32);
            double wsum = 0;
            for (uint32_t i = 0; i < I; i++) wsum += (double)(i + 1) * expo[i];
            r->gini[ki] = 2 * wsum / ((double)I * (double)total) - ((double)I + 1) / I;
        } else {
            r->gini[ki] = NAN;
        }
    }
    SHELF__FREE_ALL(pop, expo, tail);
    return 0;
}

/* ---- shelf_eval_run --------------------------------------------------------------- */

static int check_opts(const shelf_model *m, const shelf_split *sp, const shelf_eval_opts *o,
                      const float *item_vecs, uint32_t dim, shelf_err *err)
{
    if (!m || !sp || !sp->train || !o) return shelf_err_set(err, SHELF_EINVAL, "eval: NULL argument");
    if ((int)o->protocol < 0 || (int)o->protocol > SHELF_PROTO_COLD_ITEM)
        return shelf_err_set(err, SHELF_EINVAL, "eval: unknown protocol %d", (int)o->protocol);
    if (o->n_ks < 1 || o->n_ks > SHELF_EVAL_MAX_K)
        return shelf_err_set(err, SHELF_EINVAL, "eval: %d cut-offs (1..%d)", o->n_ks, SHELF_EVAL_MAX_K);
    for (int k = 0; k < o->n_ks; k++) {
        if (o->ks[k] < 1 || o->ks[k] > T)
            return shelf_err_set(err, SHELF_EINVAL, "eval: cut-off K = %u is out of range (1..%d)", o->ks[k], T);
        if (k && o->ks[k] <= o->ks[k - 1])
            return shelf_err_set(err, SHELF_EINVAL, "eval: cut-offs must ascend (%u after %u)", o->ks[k],
                                 o->ks[k - 1]);
    }
    if (o->threads < 0) return shelf_err_set(err, SHELF_EINVAL, "eval: %d threads", o->threads);
    if (!m->fitted) return shelf_err_set(err, SHELF_EINVAL, "eval: model %s is not fitted", m->vt->name);
    if (m->n_items != sp->train->n_items)
        return shelf_err_set(err, SHELF_EINVAL, "eval: model %s has %u items, the split %u", m->vt->name,
                             m->n_items, sp->train->n_items);
    if (item_vecs && dim == 0) return shelf_err_set(err, SHELF_EINVAL, "eval: item vectors of dimension 0");
    return 0;
}

/* content neighbours for the items without training events */
static int cold_fill_setup(ev_run *R, const shelf_snapshot *tr, uint32_t k, shelf_err *err)
{
    const uint32_t I = tr->n_items;
    if (k > 64) return shelf_err_set(err, SHELF_EINVAL, "eval: cold-fill %u neighbours (at most 64)", k);
    uint8_t *warm = malloc(I ? I : 1);
    uint64_t feats[256];
    int rc = (R->cf = shelf_coldfill_new(k)) && warm ? 0 : SHELF_ENOMEM;
    for (uint32_t i = 0; !rc && i < I; i++) {
        warm[i] = tr->iu_off[i + 1] > tr->iu_off[i];
        size_t n = shelf_coldfill_snapshot_features(tr, i, feats, 256);
        rc = shelf_coldfill_set_item(R->cf, i, feats, n < 256 ? n : 256);
    }
    if (!rc) rc = shelf_coldfill_build(R->cf, warm, I);
    free(warm);
    if (rc) {
        shelf_coldfill_free(R->cf);
        R->cf = NULL;
        return shelf_err_set(err, rc, "eval: out of memory (cold-item neighbours)");
    }
    return 0;
}

static void pop_copy(void *ctx, float *scores, uint32_t n)
{
    const ev_run *R = ctx;
    memcpy(scores, R->item_pop, (size_t)(n < R->I ? n : R->I) * sizeof *scores);
    for (uint32_t i = R->I; i < n; i++) scores[i] = 0;
}

/* o->scenario parsed against the snapshot, and the catalogue it sees */
static int scenario_setup(ev_run *R, const shelf_snapshot *tr, const char *doc, shelf_err *err)
{
    const uint32_t I = tr->n_items;
    if (R->o->protocol == SHELF_PROTO_LOO_S100)
        return shelf_err_set(err, SHELF_EINVAL, "eval: a scenario chooses from the whole catalogue: use loo-full or temporal");
    R->item_pop = calloc(I ? I : 1, sizeof *R->item_pop);
    R->all_ok = malloc(I ? I : 1);
    R->kind0 = calloc(I ? I : 1, sizeof *R->kind0);
    R->type_names = calloc(tr->n_types ? tr->n_types : 1, sizeof *R->type_names);
    if (!R->item_pop || !R->all_ok || !R->kind0 || !R->type_names)
        return shelf_err_set(err, SHELF_ENOMEM, "eval: out of memory (scenario)");
    for (uint64_t e = 0; e < tr->n_events; e++) R->item_pop[tr->seq_item[e]] += 1;
    memset(R->all_ok, 1, I);
    for (uint32_t k = 0; k < tr->n_types; k++) R->type_names[k] = (char *)(tr->type_name + tr->type_name_off[k]);
    R->cat = (shelf__catalogue){.n_items = I, .ok = R->all_ok, .kind = R->kind0, .cat = tr->item_category,
                                .brand = tr->item_brand};
    if (R->m->vt->item_vectors) { /* diversity by embedding */
        R->cat.vecs = R->m->vt->item_vectors(R->m, &R->cat.dim);
        R->cat.n_vecs = R->cat.vecs ? R->m->n_items : 0;
    }
    /* all-time popularity is the training counts; lists of external ids
     * propose nothing here (no id lookup) */
    R->env = (shelf__rank_env){.ctx = R, .type_names = R->type_names, .n_types = tr->n_types, .pop_scores = pop_copy,
                               .model = R->m, .peers = R->o->peers, .n_peers = R->o->n_peers};
    shelf__expr_schema schema = shelf__rank_schema(&R->env);
    shelf_err e = {0};
    int rc = shelf__scenario_parse("eval", doc, &schema, &R->scn, &e);
    if (rc) return shelf_err_set(err, rc, "eval: %s", e.msg);
    R->multi = shelf__scenario_multi(R->scn, shelf_model_name(R->m));
    /* a control with nothing to work on is said, not silently off */
    int by_cat = R->scn->diversity_by == SHELF__BY_CATEGORY, by_brand = R->scn->diversity_by == SHELF__BY_BRAND;
    for (uint32_t k = 0; k < R->scn->n_caps; k++)
        by_cat |= R->scn->caps[k].by == SHELF__BY_CATEGORY, by_brand |= R->scn->caps[k].by == SHELF__BY_BRAND;
    int has_cat = 0, has_brand = 0;
    for (uint32_t i = 0; i < I && (!has_cat || !has_brand); i++) {
        has_cat |= tr->item_category && tr->item_category[i] != SHELF_NONE;
        has_brand |= tr->item_brand && tr->item_brand[i] != SHELF_NONE;
    }
    if ((by_cat && !has_cat) || (by_brand && !has_brand))
        shelf_warn("eval: the scenario diversifies or caps by %s, but no item has one (an s3rec file's attributes are "
                   "not categories: import into a store with the items' categories): that stage changes nothing",
                   by_cat && !has_cat ? "category" : "brand");
    if (R->scn->diversity_by == SHELF__BY_EMBEDDING && !R->cat.vecs)
        shelf_warn("eval: the scenario diversifies by embedding, but model %s has no item vectors: that stage changes "
                   "nothing", shelf_model_name(R->m));
    for (uint32_t k = 0; k < R->scn->n_src; k++) {
        const shelf__scn_source *src = &R->scn->src[k];
        int found = src->type != SHELF__SRC_MODEL || !src->model[0] || !strcmp(src->model, shelf_model_name(R->m));
        for (uint32_t j = 0; j < R->o->n_peers && !found; j++) found = !strcmp(shelf_model_name(R->o->peers[j]), src->model);
        if (!found)
            return shelf_err_set(err, SHELF_EINVAL, "eval: scenario.sources[%u].model: %s is not among the models evaluated (--models)",
                                 k, src->model);
    }
    return 0;
}

static void scenario_free(ev_run *R)
{
    shelf__scenario_free(R->scn);
    SHELF__FREE_ALL(R->item_pop, R->all_ok, R->kind0, R->type_names);
}

/* The evaluated users' ranks, top-k lists and metrics (per user, in user
 * order; means per k and metric) into r, which takes block and R's arrays. */
static void keep_evaluated(ev_run *R, shelf_eval_result *r, double *block, size_t nn, uint32_t n)
{
    const int nk = R->o->n_ks;
    uint32_t ne = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (!R->keep[j]) continue;
        R->users[ne] = R->users[j];
        R->rank[ne] = R->rank[j];
        memmove(R->topk + (size_t)ne * T, R->topk + (size_t)j * T, T * sizeof *R->topk);
        for (int ki = 0; ki < nk; ki++) {
            for (int mi = 0; mi < M; mi++)
                block[((size_t)ki * M + (size_t)mi) * nn + ne] = R->pm[((size_t)j * (size_t)nk + (size_t)ki) * M + (size_t)mi];
            R->ild_cat[(size_t)ne * (size_t)nk + (size_t)ki] = R->ild_cat[(size_t)j * (size_t)nk + (size_t)ki];
            R->ild_emb[(size_t)ne * (size_t)nk + (size_t)ki] = R->ild_emb[(size_t)j * (size_t)nk + (size_t)ki];
        }
        ne++;
    }
    r->n_eval = ne;
    r->n_ks = nk;
    memcpy(r->ks, R->o->ks, sizeof r->ks);
    r->users = R->users;
    r->rank = R->rank;
    r->topk = R->topk;
    R->users = NULL;
    R->rank = NULL;
    R->topk = NULL;
    for (int ki = 0; ki < nk; ki++)
        for (int mi = 0; mi < M; mi++) {
            double *v = block + ((size_t)ki * M + (size_t)mi) * nn;
            r->per_user[ki][mi] = v;
            double sum = 0;
            for (uint32_t j = 0; j < ne; j++) sum += v[j];
            r->mean[ki][mi] = ne ? sum / ne : NAN;
        }
}

int shelf_eval_run(const shelf_model *m, const shelf_split *sp, const shelf_eval_opts *o,
                   const float *item_vecs, uint32_t dim, shelf_eval_result **out, shelf_err *err)
{
    int rc = check_opts(m, sp, o, item_vecs, dim, err);
    if (rc) return rc;
    if (!out) return shelf_err_set(err, SHELF_EINVAL, "eval: NULL argument");
    const shelf_snapshot *tr = sp->train;
    const uint32_t U = tr->n_users, I = tr->n_items;
    const int nk = o->n_ks;

    ev_run R = {.m = m, .sp = sp, .o = o, .vecs = item_vecs, .dim = dim, .I = I};
    R.t_off = o->valid ? sp->valid_off : sp->test_off;
    R.t_item = o->valid ? sp->valid_item : sp->test_item;
    R.single = o->protocol != SHELF_PROTO_TEMPORAL;

    /* users with targets, and the buffer sizes they need */
    uint32_t n = 0;
    uint64_t max_hist = 0, max_tg = 0;
    for (uint32_t u = 0; u < U; u++) {
        uint64_t nt = R.t_off[u + 1] - R.t_off[u];
        if (!nt) continue;
        if (R.single && nt > 1)
            return shelf_err_set(err, SHELF_EINVAL,
                                 "eval: protocol %s takes one target per user, but user %u has %llu "
                                 "(a temporal split? use protocol temporal)",
                                 shelf_protocol_name(o->protocol), u, (unsigned long long)nt);
        uint64_t nh = shelf_snapshot_seq_len(tr, u) + (o->valid ? 0 : sp->valid_off[u + 1] - sp->valid_off[u]);
        if (nh > max_hist) max_hist = nh;
        if (nt > max_tg) max_tg = nt;
        n++;
    }
    if (max_hist > UINT32_MAX)
        return shelf_err_set(err, SHELF_EINVAL, "eval: a history of %llu items is too long",
                             (unsigned long long)max_hist);

    shelf_eval_result *r = calloc(1, sizeof *r);
    size_t nn = n ? n : 1;
    double *block = malloc(nn * (size_t)nk * M * sizeof *block);
    R.users = malloc(nn * sizeof *R.users);
    R.keep = calloc(nn, 1);
    R.rank = malloc(nn * sizeof *R.rank);
    R.topk = malloc(nn * T * sizeof *R.topk);
    R.pm = malloc(nn * (size_t)nk * M * sizeof *R.pm);
    R.ild_cat = malloc(nn * (size_t)nk * sizeof *R.ild_cat);
    R.ild_emb = malloc(nn * (size_t)nk * sizeof *R.ild_emb);
    int nt = 1;
#ifdef _OPENMP
    nt = o->threads > 0 ? o->threads : omp_get_max_threads();
#endif
    if ((uint32_t)nt > n && n > 0) nt = (int)n;
    ev_buf *bufs = calloc((size_t)nt, sizeof *bufs);
    rc = 0;
    if (!r || !block || !R.users || !R.keep || !R.rank || !R.topk || !R.pm || !R.ild_cat || !R.ild_emb || !bufs)
        rc = SHELF_ENOMEM;
    int n_bufs = 0;
    for (; !rc && n_bufs < nt; n_bufs++)
        rc = buf_alloc(&bufs[n_bufs], I, max_hist, max_tg, o->protocol == SHELF_PROTO_LOO_S100);
    if (rc) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "eval: out of memory (%u users, %u items, %d threads)", n, I, nt);
        goto out;
    }
    if (o->cold_fill && (rc = cold_fill_setup(&R, tr, o->cold_fill, err))) goto out;
    if (o->scenario && (rc = scenario_setup(&R, tr, o->scenario, err))) goto out;
    n = 0;
    for (uint32_t u = 0; u < U; u++)
        if (R.t_off[u + 1] > R.t_off[u]) R.users[n++] = u;

    shelf_progress *bar = o->progress ? shelf_progress_new("eval", n, 1) : NULL;
    uint64_t done = 0;
    const double t0 = shelf_now();
    OMP(omp parallel num_threads(nt))
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        ev_buf *b = &bufs[tid];
        OMP(omp for schedule(dynamic, 16))
        for (uint32_t j = 0; j < n; j++) {
            int failed;
            OMP(omp atomic read)
            failed = R.fail_rc;
            if (failed) continue;
            eval_user(&R, b, j);
            OMP(omp atomic update)
            done++;
            if (tid == 0 && bar) {
                uint64_t d;
                OMP(omp atomic read)
                d = done;
                shelf_progress_update(bar, d, NULL);
            }
        }
    }
    r->score_seconds = shelf_now() - t0;
    shelf_progress_update(bar, done, NULL);
    shelf_progress_finish(bar);
    if (R.fail_rc) {
        rc = shelf_err_set(err, R.fail_rc, "eval: model %s failed to score user %u: %s", m->vt->name, R.fail_u,
                           R.fail_msg[0] ? R.fail_msg : shelf_strerror(R.fail_rc));
        goto out;
    }

    keep_evaluated(&R, r, block, nn, n);
    block = NULL;
    rc = beyond_accuracy(r, &R);
    if (rc) rc = shelf_err_set(err, rc, "eval: out of memory (%u items)", I);

out:
    for (int t = 0; t < n_bufs; t++) buf_free(&bufs[t]);
    free(bufs);
    shelf_coldfill_free(R.cf);
    scenario_free(&R);
    free(block);
    free(R.users);
    free(R.keep);
    free(R.rank);
    free(R.topk);
    free(R.pm);
    free(R.ild_cat);
    free(R.ild_emb);
    if (rc) {
        shelf_eval_result_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- export ------------------------------------------------------------------------- */

int shelf_eval_write_topk(const shelf_eval_result *r, const shelf_snapshot *s, uint32_t k, const char *path,
                          shelf_err *err)
{
    if (!r || !s || !path) return shelf_err_set(err, SHELF_EINVAL, "write top lists: NULL argument");
    if (k < 1 || k > T)
        return shelf_err_set(err, SHELF_EINVAL, "write top lists: k = %u is out of range (1..%d)", k, T);
    for (uint32_t j = 0; j < r->n_eval; j++) {
        if (r->users[j] >= s->n_users)
            return shelf_err_set(err, SHELF_EINVAL, "write top lists: user %u is not in the snapshot (%u users)",
                                 r->users[j], s->n_users);
        for (uint32_t p = 0; p < k; p++) {
            uint32_t it = r->topk[(size_t)j * T + p];
            if (it != SHELF_NONE && it >= s->n_items)
                return shelf_err_set(err, SHELF_EINVAL,
                                     "write top lists: item %u is not in the snapshot (%u items)", it, s->n_items);
        }
    }
    size_t len = strlen(path);
    char *tmp = malloc(len + 5);
    if (!tmp) return shelf_err_set(err, SHELF_ENOMEM, "write top lists: out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int rc = shelf_err_set(err, SHELF_EIO, "%s: cannot create", tmp);
        free(tmp);
        return rc;
    }
    for (uint32_t j = 0; j < r->n_eval; j++) {
        fputs(s->user_ext + s->user_ext_off[r->users[j]], f);
        for (uint32_t p = 0; p < k; p++) {
            uint32_t it = r->topk[(size_t)j * T + p];
            if (it == SHELF_NONE) break;
            fputc(' ', f);
            fputs(s->item_ext + s->item_ext_off[it], f);
        }
        fputc('\n', f);
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        free(tmp);
        return shelf_err_set(err, SHELF_EIO, "%s: write failed", path);
    }
    free(tmp);
    return 0;
}
