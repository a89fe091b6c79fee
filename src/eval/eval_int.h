/* eval_int.h: private side of eval.h, shared by metrics.c and protocol.c: the
 * one ordering of scored items that every ranked list and every rank of the
 * eval room follows, and top-k / rank over a byte mask of item flags. */
#ifndef SHELF_EVAL_INT_H
#define SHELF_EVAL_INT_H

#include "shelf/eval.h"

#include <math.h>

/* Bits of the per-thread item mask of an evaluation. */
#define SHELF__EV_EXCL 1u /* in the history: not a candidate */
#define SHELF__EV_TGT 2u  /* a target: ranks after the items it ties with */
#define SHELF__EV_SEEN 4u /* LOO-S100: interacted with, or already sampled */

/* The order of a ranked list: 1 if item a ranks before item b. Higher score
 * first; NaN after every number; on a tie the item flagged in mask (mask[x] &
 * last_bits) after the unflagged one (the pessimistic rule of BENCHMARKS.md
 * applied to the list), then the lower id. A strict total order over
 * distinct items. mask may be NULL (nothing flagged). */
static inline int shelf__ev_better(const float *s, const uint8_t *mask, unsigned last_bits, uint32_t a,
                                   uint32_t b)
{
    float sa = s[a], sb = s[b];
    int na = isnan(sa), nb = isnan(sb);
    if (na != nb) return nb;
    if (!na && sa != sb) return sa > sb;
    if (mask && last_bits) {
        int la = (mask[a] & last_bits) != 0, lb = (mask[b] & last_bits) != 0;
        if (la != lb) return lb;
    }
    return a < b;
}

/* Top k candidates by shelf__ev_better, best first, into out[0..k); returns
 * how many were written (min(k, candidates)). Candidates: the items of
 * cand[0..n_cand) when cand is not NULL (mask then only orders ties), else
 * every item i < n_items with !(mask[i] & excl_bits) (mask may be NULL);
 * in both cases items scoring -inf are never candidates. O(n log k). */
uint32_t shelf__ev_topk(const float *scores, uint32_t n_items, const uint8_t *mask, unsigned excl_bits,
                        unsigned last_bits, const uint32_t *cand, uint32_t n_cand, uint32_t k, uint32_t *out);

/* Pessimistic rank (1-based) of the best-placed target in the order of
 * shelf__ev_better with last_bits = tgt_bits: 1 + the number of non-target
 * candidates placed before it. Candidates as for shelf__ev_topk; targets
 * (flagged in mask with tgt_bits) that are not candidates never rank. The
 * position of the first target in the full shelf__ev_topk list, so rank and
 * list always agree. SHELF_RANK_NONE when no target is a candidate. */
uint64_t shelf__ev_rank(const float *scores, uint32_t n_items, const uint8_t *mask, unsigned excl_bits,
                        unsigned tgt_bits, const uint32_t *cand, uint32_t n_cand, const uint32_t *targets,
                        uint32_t n_t);

#endif
