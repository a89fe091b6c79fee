/* split.c: training/validation/test splits of a snapshot: leave-one-out
 * (BENCHMARKS.md LOO-FULL), a global temporal cut-off and a seeded random
 * hold-out. Data room. Each split labels every event, then one common step
 * gathers the held-out items and builds the training snapshot. */
#include "data/snapshot_int.h"

#include <stdlib.h>
#include <string.h>

enum { TO_TRAIN = 0, TO_VALID = 1, TO_TEST = 2 };

void shelf_split_free(shelf_split *sp)
{
    if (!sp) return;
    shelf_snapshot_free(sp->train);
    free(sp->valid_off);
    free(sp->valid_item);
    free(sp->valid_type);
    free(sp->valid_ts);
    free(sp->test_off);
    free(sp->test_item);
    free(sp);
}

/* assign[e] (TO_*) for every event of s in sequence order; consumed (it is
 * rewritten into the keep mask). */
static int split_from_assign(const shelf_snapshot *s, shelf_split_kind kind, uint8_t *assign,
                             shelf_split **out, shelf_err *err)
{
    const uint32_t U = s->n_users;
    const uint64_t E = s->n_events;
    uint64_t n_valid = 0, n_test = 0;
    for (uint64_t e = 0; e < E; e++) {
        n_valid += assign[e] == TO_VALID;
        n_test += assign[e] == TO_TEST;
    }
    shelf_split *sp = calloc(1, sizeof *sp);
    if (!sp) return shelf_err_set(err, SHELF_ENOMEM, "split: out of memory");
    sp->kind = kind;
    sp->n_valid = n_valid;
    sp->n_test = n_test;
    sp->valid_off = malloc(((size_t)U + 1) * sizeof *sp->valid_off);
    sp->test_off = malloc(((size_t)U + 1) * sizeof *sp->test_off);
    sp->valid_item = malloc((size_t)(n_valid ? n_valid : 1) * sizeof *sp->valid_item);
    sp->valid_type = malloc((size_t)(n_valid ? n_valid : 1) * sizeof *sp->valid_type);
    sp->valid_ts = malloc((size_t)(n_valid ? n_valid : 1) * sizeof *sp->valid_ts);
    sp->test_item = malloc((size_t)(n_test ? n_test : 1) * sizeof *sp->test_item);
    if (!sp->valid_off || !sp->test_off || !sp->valid_item || !sp->valid_type || !sp->valid_ts || !sp->test_item) {
        shelf_split_free(sp);
        return shelf_err_set(err, SHELF_ENOMEM, "split: out of memory (%llu events)",
                             (unsigned long long)E);
    }
    uint64_t kv = 0, kt = 0;
    sp->valid_off[0] = sp->test_off[0] = 0;
    for (uint32_t u = 0; u < U; u++) {
        for (uint64_t e = s->seq_off[u]; e < s->seq_off[u + 1]; e++) {
            if (assign[e] == TO_VALID) {
                sp->valid_item[kv] = s->seq_item[e];
                sp->valid_type[kv] = s->seq_type[e];
                sp->valid_ts[kv++] = s->seq_ts[e];
            } else if (assign[e] == TO_TEST) sp->test_item[kt++] = s->seq_item[e];
            assign[e] = assign[e] == TO_TRAIN; /* now the keep mask */
        }
        sp->valid_off[u + 1] = kv;
        sp->test_off[u + 1] = kt;
    }
    int rc = shelf_snapshot_subset(s, assign, &sp->train, err);
    if (rc) {
        shelf_split_free(sp);
        return rc;
    }
    *out = sp;
    return 0;
}

static uint8_t *assign_new(const shelf_snapshot *s, shelf_err *err)
{
    uint8_t *a = calloc((size_t)(s->n_events ? s->n_events : 1), 1);
    if (!a) shelf_err_set(err, SHELF_ENOMEM, "split: out of memory");
    return a;
}

int shelf_split_loo(const shelf_snapshot *s, shelf_split **out, shelf_err *err)
{
    if (!s || !out) return shelf_err_set(err, SHELF_EINVAL, "split: NULL argument");
    uint8_t *assign = assign_new(s, err);
    if (!assign) return SHELF_ENOMEM;
    for (uint32_t u = 0; u < s->n_users; u++) {
        uint64_t b = s->seq_off[u], n = s->seq_off[u + 1] - b;
        if (n >= 2) assign[b + n - 1] = TO_TEST;
        if (n >= 3) assign[b + n - 2] = TO_VALID;
    }
    int rc = split_from_assign(s, SHELF_SPLIT_LOO, assign, out, err);
    free(assign);
    return rc;
}

int shelf_split_temporal(const shelf_snapshot *s, int64_t valid_from, int64_t test_from,
                         shelf_split **out, shelf_err *err)
{
    if (!s || !out) return shelf_err_set(err, SHELF_EINVAL, "split: NULL argument");
    if (valid_from > test_from)
        return shelf_err_set(err, SHELF_EINVAL,
                             "temporal split: validation start %lld is after test start %lld",
                             (long long)valid_from, (long long)test_from);
    uint8_t *assign = assign_new(s, err);
    if (!assign) return SHELF_ENOMEM;
    for (uint64_t e = 0; e < s->n_events; e++) {
        int64_t ts = s->seq_ts[e];
        assign[e] = ts >= test_from ? TO_TEST : ts >= valid_from ? TO_VALID : TO_TRAIN;
    }
    int rc = split_from_assign(s, SHELF_SPLIT_TEMPORAL, assign, out, err);
    free(assign);
    return rc;
}

/* One uniform draw per event, in sequence order (users ascending): below
 * test_frac it is test, below test_frac + valid_frac validation, else
 * training. So test_frac and valid_frac are each an event's probability. */
int shelf_split_random(const shelf_snapshot *s, double valid_frac, double test_frac,
                       uint64_t seed, shelf_split **out, shelf_err *err)
{
    if (!s || !out) return shelf_err_set(err, SHELF_EINVAL, "split: NULL argument");
    if (!(valid_frac >= 0 && valid_frac <= 1) || !(test_frac >= 0 && test_frac <= 1) ||
        valid_frac + test_frac > 1)
        return shelf_err_set(err, SHELF_EINVAL,
                             "random split: fractions %g (validation) and %g (test) must be in "
                             "[0, 1] with a sum of at most 1",
                             valid_frac, test_frac);
    uint8_t *assign = assign_new(s, err);
    if (!assign) return SHELF_ENOMEM;
    shelf_rng rng;
    shelf_rng_seed(&rng, seed);
    const double vt = test_frac + valid_frac;
    for (uint64_t e = 0; e < s->n_events; e++) {
        double r = shelf_rng_uniform(&rng);
        assign[e] = r < test_frac ? TO_TEST : r < vt ? TO_VALID : TO_TRAIN;
    }
    int rc = split_from_assign(s, SHELF_SPLIT_RANDOM, assign, out, err);
    free(assign);
    return rc;
}
