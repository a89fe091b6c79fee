/* cold.c: the cold-item split (eval.h): a seeded share of items leaves
 * training with all its events, and each user's last events on those items
 * become the targets. Eval room (the data room cannot know this protocol). */
#include "shelf/eval.h"

#include <math.h>
#include <stdlib.h>

/* Per user, the sequence positions of the test event (last on a cold item)
 * and the validation event (last earlier one on another cold item), or
 * UINT64_MAX. */
static void pick(const shelf_snapshot *s, const uint8_t *cold, uint32_t u, uint64_t *test, uint64_t *valid)
{
    *test = *valid = UINT64_MAX;
    for (uint64_t e = s->seq_off[u + 1]; e-- > s->seq_off[u];) {
        uint32_t it = s->seq_item[e];
        if (!cold[it]) continue;
        if (*test == UINT64_MAX) {
            *test = e;
        } else if (it != s->seq_item[*test]) {
            *valid = e;
            return;
        }
    }
}

int shelf_split_cold_items(const shelf_snapshot *s, double frac, uint64_t seed, shelf_split **out,
                           shelf_err *err)
{
    if (!s || !out) return shelf_err_set(err, SHELF_EINVAL, "cold-item split: NULL argument");
    if (!(frac >= 0 && frac <= 1))
        return shelf_err_set(err, SHELF_EINVAL, "cold-item split: share %g is not in [0, 1]", frac);
    const uint32_t U = s->n_users, I = s->n_items;
    const uint32_t n_cold = (uint32_t)llround(frac * I);
    uint32_t *perm = malloc((size_t)(I ? I : 1) * sizeof *perm);
    uint8_t *cold = calloc((size_t)(I ? I : 1), 1);
    uint8_t *keep = malloc((size_t)(s->n_events ? s->n_events : 1));
    shelf_split *sp = calloc(1, sizeof *sp);
    int rc = 0;
    if (!perm || !cold || !keep || !sp) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "cold-item split: out of memory");
        goto out;
    }
    /* partial Fisher-Yates: the first n_cold of a seeded shuffle */
    shelf_rng rng;
    shelf_rng_seed(&rng, seed);
    for (uint32_t i = 0; i < I; i++) perm[i] = i;
    for (uint32_t j = 0; j < n_cold; j++) {
        uint32_t r = j + shelf_rng_below(&rng, I - j);
        uint32_t t = perm[r];
        perm[r] = perm[j];
        perm[j] = t;
        cold[t] = 1;
    }
    for (uint64_t e = 0; e < s->n_events; e++) keep[e] = !cold[s->seq_item[e]];

    sp->kind = SHELF_SPLIT_RANDOM;
    uint64_t n_test = 0, n_valid = 0;
    for (uint32_t u = 0; u < U; u++) {
        uint64_t t, v;
        pick(s, cold, u, &t, &v);
        n_test += t != UINT64_MAX;
        n_valid += v != UINT64_MAX;
    }
    sp->valid_off = malloc(((size_t)U + 1) * sizeof *sp->valid_off);
    sp->test_off = malloc(((size_t)U + 1) * sizeof *sp->test_off);
    sp->valid_item = malloc((size_t)(n_valid ? n_valid : 1) * sizeof *sp->valid_item);
    sp->valid_type = malloc((size_t)(n_valid ? n_valid : 1) * sizeof *sp->valid_type);
    sp->valid_ts = malloc((size_t)(n_valid ? n_valid : 1) * sizeof *sp->valid_ts);
    sp->test_item = malloc((size_t)(n_test ? n_test : 1) * sizeof *sp->test_item);
    if (!sp->valid_off || !sp->test_off || !sp->valid_item || !sp->valid_type || !sp->valid_ts || !sp->test_item) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "cold-item split: out of memory (%u users)", U);
        goto out;
    }
    sp->n_test = n_test;
    sp->n_valid = n_valid;
    uint64_t kt = 0, kv = 0;
    sp->valid_off[0] = sp->test_off[0] = 0;
    for (uint32_t u = 0; u < U; u++) {
        uint64_t t, v;
        pick(s, cold, u, &t, &v);
        if (v != UINT64_MAX) {
            sp->valid_item[kv] = s->seq_item[v];
            sp->valid_type[kv] = s->seq_type[v];
            sp->valid_ts[kv++] = s->seq_ts[v];
        }
        if (t != UINT64_MAX) sp->test_item[kt++] = s->seq_item[t];
        sp->valid_off[u + 1] = kv;
        sp->test_off[u + 1] = kt;
    }
    rc = shelf_snapshot_subset(s, keep, &sp->train, err);

out:
    free(perm);
    free(cold);
    free(keep);
    if (rc) {
        shelf_split_free(sp);
        return rc;
    }
    *out = sp;
    return 0;
}
