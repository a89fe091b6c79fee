/* metrics.c: accuracy metrics of one ranked list, the pessimistic rank of a
 * target, top-k selection and rating errors. Eval room; pure functions, safe
 * to call from many threads. */
#include "eval/eval_int.h"

#include <math.h>
#include <stdlib.h>

const char *shelf_metric_name(int m)
{
    static const char *const names[SHELF_M_COUNT] = {"hr", "ndcg", "mrr", "precision", "map", "recall"};
    return m >= 0 && m < SHELF_M_COUNT ? names[m] : "?";
}

/* ---- one ranked list ------------------------------------------------------------ */

static int is_target(uint32_t it, const uint32_t *targets, uint32_t n_t)
{
    for (uint32_t j = 0; j < n_t; j++)
        if (targets[j] == it) return 1;
    return 0;
}

void shelf_metrics_list(const uint32_t *topk, uint32_t k, const uint32_t *targets, uint32_t n_t,
                        shelf_list_metrics *out)
{
    shelf_list_metrics r = {0};
    if (k == 0 || n_t == 0) {
        *out = r;
        return;
    }
    uint32_t hits = 0;
    double dcg = 0, ap = 0;
    for (uint32_t p = 0; p < k; p++) {
        if (topk[p] == SHELF_NONE || !is_target(topk[p], targets, n_t)) continue;
        hits++;
        if (hits == 1) r.mrr = 1.0 / (p + 1);
        dcg += 1.0 / log2((double)p + 2);
        ap += (double)hits / (p + 1); /* precision at this hit */
    }
    uint32_t ideal = n_t < k ? n_t : k;
    double idcg = 0;
    for (uint32_t j = 0; j < ideal; j++) idcg += 1.0 / log2((double)j + 2);
    r.hr = hits > 0;
    r.recall = (double)hits / n_t;
    r.precision = (double)hits / k;
    r.ndcg = dcg / idcg;
    r.map = ap / ideal;
    *out = r;
}

/* ---- rank ------------------------------------------------------------------------ */

uint64_t shelf_metrics_rank(const float *scores, uint32_t n_items, const uint8_t *exclude, uint32_t target)
{
    if (target >= n_items || (exclude && exclude[target])) return SHELF_RANK_NONE;
    const float st = scores[target];
    if (st == -INFINITY) return SHELF_RANK_NONE;
    const int nan_t = isnan(st);
    uint64_t above = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        if (i == target || (exclude && exclude[i])) continue;
        float v = scores[i];
        if (v == -INFINITY) continue;
        above += nan_t || v >= st; /* a NaN v compares false: it ranks below */
    }
    return above + 1;
}

uint64_t shelf__ev_rank(const float *s, uint32_t n_items, const uint8_t *mask, unsigned excl_bits,
                        unsigned tgt_bits, const uint32_t *cand, uint32_t n_cand, const uint32_t *targets,
                        uint32_t n_t)
{
    /* the best-placed target that is a candidate */
    uint32_t best = SHELF_NONE;
    for (uint32_t j = 0; j < n_t; j++) {
        uint32_t t = targets[j];
        if (t >= n_items || s[t] == -INFINITY) continue;
        if (cand) {
            int found = 0;
            for (uint32_t c = 0; c < n_cand && !found; c++) found = cand[c] == t;
            if (!found) continue;
        } else if (mask && (mask[t] & excl_bits)) {
            continue;
        }
        if (best == SHELF_NONE || shelf__ev_better(s, mask, tgt_bits, t, best)) best = t;
    }
    if (best == SHELF_NONE) return SHELF_RANK_NONE;
    /* A non-target candidate i is placed before best iff s[i] >= s[best]
     * (best is flagged, so it loses every tie; a NaN s[i] compares false),
     * or, when s[best] is NaN, always. s[i] = -inf is never >= s[best]. */
    const float st = s[best];
    const int nan_t = isnan(st);
    uint64_t above = 0;
    if (cand) {
        for (uint32_t c = 0; c < n_cand; c++) {
            uint32_t i = cand[c];
            if (s[i] == -INFINITY || (mask && (mask[i] & tgt_bits))) continue;
            above += nan_t || s[i] >= st;
        }
    } else if (nan_t) {
        for (uint32_t i = 0; i < n_items; i++)
            above += s[i] != -INFINITY && !(mask && (mask[i] & (excl_bits | tgt_bits)));
    } else if (mask) {
        const uint8_t skip = (uint8_t)(excl_bits | tgt_bits);
        uint32_t n = 0; /* per-item 0/1 sums: a loop the compiler can vectorize */
        for (uint32_t i = 0; i < n_items; i++) n += (uint32_t)(s[i] >= st) & (uint32_t)((mask[i] & skip) == 0);
        above = n;
    } else {
        uint32_t n = 0;
        for (uint32_t i = 0; i < n_items; i++) n += s[i] >= st;
        above = n - 1; /* best itself */
    }
    return above + 1;
}

/* ---- top k ----------------------------------------------------------------------
 * A binary heap of the k best so far with the worst at the root: a new item
 * enters only if it beats the root. The final in-place heap sort moves the
 * worst to the back, so the array ends best first. */

typedef struct heap {
    const float *s;
    const uint8_t *mask;
    unsigned last;
    uint32_t *h;
    uint32_t n;
} heap;

/* 1 if heap position a must sit above b: a is worse than b */
static inline int worse(const heap *hp, uint32_t a, uint32_t b)
{
    return shelf__ev_better(hp->s, hp->mask, hp->last, b, a);
}

static void sift_down(heap *hp, uint32_t i, uint32_t n)
{
    uint32_t *h = hp->h;
    for (;;) {
        uint32_t l = 2 * i + 1, w = i;
        if (l < n && worse(hp, h[l], h[w])) w = l;
        if (l + 1 < n && worse(hp, h[l + 1], h[w])) w = l + 1;
        if (w == i) return;
        uint32_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static inline void offer(heap *hp, uint32_t k, uint32_t x)
{
    uint32_t *h = hp->h;
    if (hp->n < k) {
        uint32_t i = hp->n++;
        h[i] = x;
        while (i > 0) {
            uint32_t p = (i - 1) / 2;
            if (!worse(hp, h[i], h[p])) break;
            uint32_t t = h[i];
            h[i] = h[p];
            h[p] = t;
            i = p;
        }
    } else if (shelf__ev_better(hp->s, hp->mask, hp->last, x, h[0])) {
        h[0] = x;
        sift_down(hp, 0, hp->n);
    }
}

uint32_t shelf__ev_topk(const float *scores, uint32_t n_items, const uint8_t *mask, unsigned excl_bits,
                        unsigned last_bits, const uint32_t *cand, uint32_t n_cand, uint32_t k, uint32_t *out)
{
    if (k == 0) return 0;
    heap hp = {scores, mask, last_bits, out, 0};
    if (cand) {
        for (uint32_t c = 0; c < n_cand; c++)
            if (scores[cand[c]] != -INFINITY) offer(&hp, k, cand[c]);
    } else {
        /* Once the heap is full, nothing below the root's score can enter,
         * nor anything tying it: items come in ascending id, so a tie
         * enters only when the root is flagged last and the item is not.
         * (Both tests are false for NaN on either side: offer decides.) */
        float thr = NAN;
        int root_last = 0;
        for (uint32_t i = 0; i < n_items; i++) {
            float v = scores[i];
            if (v < thr || v == -INFINITY) continue;
            if (mask && (mask[i] & excl_bits)) continue;
            if (v == thr && (!root_last || (mask[i] & last_bits))) continue;
            offer(&hp, k, i);
            if (hp.n == k) {
                thr = scores[out[0]];
                root_last = mask && (mask[out[0]] & last_bits);
            }
        }
    }
    for (uint32_t n = hp.n; n > 1; n--) {
        uint32_t t = out[0];
        out[0] = out[n - 1];
        out[n - 1] = t;
        sift_down(&hp, 0, n - 1);
    }
    return hp.n;
}

uint32_t shelf_topk(const float *scores, uint32_t n_items, const uint8_t *exclude, uint32_t k, uint32_t *out)
{
    return shelf__ev_topk(scores, n_items, exclude, 0xffu, 0, NULL, 0, k, out);
}

/* ---- ratings ---------------------------------------------------------------------- */

void shelf_metrics_rating(const float *pred, const float *truth, size_t n, double *rmse, double *mae)
{
    if (n == 0) {
        *rmse = *mae = NAN;
        return;
    }
    double se = 0, ae = 0;
    for (size_t j = 0; j < n; j++) {
        double d = (double)pred[j] - (double)truth[j];
        se += d * d;
        ae += fabs(d);
    }
    *rmse = sqrt(se / (double)n);
    *mae = ae / (double)n;
}
