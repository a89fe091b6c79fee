/* test_eval.c: the eval room: list metrics, pessimistic ranks and top-k
 * (hand-computed cases and a naive sort on random ties), rating errors, the
 * paired bootstrap, and shelf_eval_run end to end with a fake model on small
 * stores built in memory: per-user ranks against a naive recomputation,
 * history exclusion, thread-count independence, LOO-S100, temporal and
 * cold-item runs, beyond-accuracy metrics, and the exported top lists scored
 * by a C copy of tools/score_topk.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_int.h"
#include "shelf/eval.h"
#include "shelf/snapshot.h"

#include "test_util.h"

#define T SHELF_EVAL_TOPK

static void assert_near(double a, double b, double tol)
{
    if (!(fabs(a - b) <= tol)) fail_msg("%.12g != %.12g (tolerance %g)", a, b, tol);
}

/* ---- metric functions ------------------------------------------------------------ */

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(shelf_metric_name(SHELF_M_HR), "hr");
    assert_string_equal(shelf_metric_name(SHELF_M_NDCG), "ndcg");
    assert_string_equal(shelf_metric_name(SHELF_M_MRR), "mrr");
    assert_string_equal(shelf_metric_name(SHELF_M_PRECISION), "precision");
    assert_string_equal(shelf_metric_name(SHELF_M_MAP), "map");
    assert_string_equal(shelf_metric_name(SHELF_M_RECALL), "recall");
    assert_string_equal(shelf_metric_name(SHELF_M_COUNT), "?");
    static const char *const words[] = {"loo-full", "loo-s100", "temporal", "cold-item"};
    for (int p = 0; p < 4; p++) {
        shelf_protocol got = SHELF_PROTO_LOO_FULL;
        assert_int_equal(shelf_protocol_parse(words[p], &got), 0);
        assert_int_equal((int)got, p);
        assert_string_equal(shelf_protocol_name(got), words[p]);
    }
    shelf_protocol got;
    assert_int_equal(shelf_protocol_parse("loo", &got), SHELF_EINVAL);
    assert_int_equal(shelf_protocol_parse(NULL, &got), SHELF_EINVAL);
    shelf_eval_opts o;
    memset(&o, 0xab, sizeof o);
    shelf_eval_opts_init(&o);
    assert_int_equal(o.protocol, SHELF_PROTO_LOO_FULL);
    assert_int_equal(o.n_ks, 3);
    assert_int_equal(o.ks[0], 5);
    assert_int_equal(o.ks[1], 10);
    assert_int_equal(o.ks[2], 20);
    assert_int_equal(o.valid, 0);
    assert_int_equal(o.threads, 0);
    assert_int_equal(o.progress, 0);
}

static void test_metrics_list(void **state)
{
    (void)state;
    shelf_list_metrics r;
    /* two targets, hits at positions 2 and 4 of 4 */
    const uint32_t top[] = {5, 3, 9, 1};
    const uint32_t tg[] = {1, 3};
    shelf_metrics_list(top, 4, tg, 2, &r);
    assert_near(r.hr, 1, 0);
    assert_near(r.recall, 1, 0);
    assert_near(r.precision, 0.5, 1e-15);
    assert_near(r.mrr, 0.5, 1e-15);
    assert_near(r.ndcg, (1 / log2(3) + 1 / log2(5)) / (1 + 1 / log2(3)), 1e-12);
    assert_near(r.map, (1.0 / 2 + 2.0 / 4) / 2, 1e-15);
    /* cut at 2: one of two targets; ideal DCG of 2 hits */
    shelf_metrics_list(top, 2, tg, 2, &r);
    assert_near(r.recall, 0.5, 0);
    assert_near(r.precision, 0.5, 0);
    assert_near(r.ndcg, (1 / log2(3)) / (1 + 1 / log2(3)), 1e-12);
    assert_near(r.map, 0.5 / 2, 1e-15);
    /* one target at position 3 of 5 */
    const uint32_t top5[] = {7, 8, 4, 2, 6};
    const uint32_t t4 = 4;
    shelf_metrics_list(top5, 5, &t4, 1, &r);
    assert_near(r.hr, 1, 0);
    assert_near(r.recall, 1, 0);
    assert_near(r.ndcg, 0.5, 1e-15); /* 1/log2(4) */
    assert_near(r.mrr, 1.0 / 3, 1e-15);
    assert_near(r.map, 1.0 / 3, 1e-15);
    assert_near(r.precision, 0.2, 1e-15);
    /* miss; padding never hits; empty inputs */
    const uint32_t padded[] = {7, SHELF_NONE, SHELF_NONE};
    const uint32_t none = SHELF_NONE;
    shelf_metrics_list(padded, 3, &none, 1, &r);
    assert_near(r.hr + r.ndcg + r.mrr + r.map + r.precision + r.recall, 0, 0);
    shelf_metrics_list(padded, 3, &t4, 1, &r);
    assert_near(r.hr + r.ndcg + r.mrr + r.map + r.precision + r.recall, 0, 0);
    shelf_metrics_list(top5, 0, &t4, 1, &r);
    assert_near(r.hr + r.ndcg, 0, 0);
    shelf_metrics_list(top5, 5, &t4, 0, &r);
    assert_near(r.hr + r.ndcg + r.recall, 0, 0);
    /* all targets first: perfect */
    const uint32_t tg3[] = {8, 7};
    shelf_metrics_list(top5, 5, tg3, 2, &r);
    assert_near(r.ndcg, 1, 1e-15);
    assert_near(r.map, 1, 1e-15);
}

static void test_rank(void **state)
{
    (void)state;
    const float s[] = {0.5f, 0.9f, 0.5f, 0.1f, 0.5f};
    assert_int_equal(shelf_metrics_rank(s, 5, NULL, 0), 4); /* 0.9 and two ties ahead */
    assert_int_equal(shelf_metrics_rank(s, 5, NULL, 2), 4);
    assert_int_equal(shelf_metrics_rank(s, 5, NULL, 1), 1);
    assert_int_equal(shelf_metrics_rank(s, 5, NULL, 3), 5);
    const uint8_t ex[] = {0, 1, 0, 0, 1};
    assert_int_equal(shelf_metrics_rank(s, 5, ex, 0), 2);
    assert_int_equal(shelf_metrics_rank(s, 5, ex, 3), 3);
    assert_int_equal(shelf_metrics_rank(s, 5, ex, 1), SHELF_RANK_NONE); /* excluded target */
    assert_int_equal(shelf_metrics_rank(s, 5, NULL, 5), SHELF_RANK_NONE); /* out of range */
    /* a target tied with one other item has rank 2, and so has the other */
    const float two[] = {1, 1, 0};
    assert_int_equal(shelf_metrics_rank(two, 3, NULL, 0), 2);
    assert_int_equal(shelf_metrics_rank(two, 3, NULL, 1), 2);
    /* everything alike: last, so no hit at 20 in a catalogue of 30 */
    float flat[30];
    for (int i = 0; i < 30; i++) flat[i] = 0.25f;
    for (uint32_t t = 0; t < 30; t += 7) {
        uint64_t r = shelf_metrics_rank(flat, 30, NULL, t);
        assert_int_equal(r, 30);
        assert_false(r <= 20);
    }
    /* -inf never ranks and is not counted; NaN ranks below every number */
    const float odd[] = {-INFINITY, 0.3f, NAN, 0.3f, 0.7f};
    assert_int_equal(shelf_metrics_rank(odd, 5, NULL, 0), SHELF_RANK_NONE);
    assert_int_equal(shelf_metrics_rank(odd, 5, NULL, 1), 3);
    assert_int_equal(shelf_metrics_rank(odd, 5, NULL, 4), 1);
    assert_int_equal(shelf_metrics_rank(odd, 5, NULL, 2), 4); /* NaN target: last of 4 candidates */
}

static void test_topk(void **state)
{
    (void)state;
    const float s[] = {0.5f, 0.9f, 0.5f, 0.1f, 0.5f, -INFINITY, NAN, 0.95f};
    uint32_t out[10];
    assert_int_equal(shelf_topk(s, 8, NULL, 4, out), 4);
    const uint32_t want4[] = {7, 1, 0, 2};
    assert_memory_equal(out, want4, sizeof want4);
    /* all candidates: -inf left out, NaN last */
    assert_int_equal(shelf_topk(s, 8, NULL, 10, out), 7);
    const uint32_t want_all[] = {7, 1, 0, 2, 4, 3, 6};
    assert_memory_equal(out, want_all, sizeof want_all);
    const uint8_t ex[] = {0, 1, 1, 0, 0, 0, 0, 1};
    assert_int_equal(shelf_topk(s, 8, ex, 3, out), 3);
    const uint32_t want_ex[] = {0, 4, 3};
    assert_memory_equal(out, want_ex, sizeof want_ex);
    assert_int_equal(shelf_topk(s, 8, NULL, 0, out), 0);
    assert_int_equal(shelf_topk(s, 1, NULL, 5, out), 1);
    assert_int_equal(out[0], 0);
}

/* naive ordering for the random checks: score desc, NaN last, flagged
 * (target) after unflagged on ties, lower id */
static const float *g_s;
static const uint8_t *g_flag;
static int naive_cmp(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    float x = g_s[a], y = g_s[b];
    int nx = isnan(x), ny = isnan(y);
    if (nx != ny) return nx - ny;
    if (!nx && x != y) return x > y ? -1 : 1;
    int fa = g_flag ? g_flag[a] : 0, fb = g_flag ? g_flag[b] : 0;
    if (fa != fb) return fa - fb;
    return (a > b) - (a < b);
}

/* Random scores with heavy ties, NaN and -inf; random exclusions: shelf_topk
 * equals a full sort; with the target flagged last, its place in the full
 * list is its pessimistic rank - 1 (rank and list agree). */
static void test_topk_random(void **state)
{
    (void)state;
    enum { N = 97 };
    float s[N];
    uint8_t ex[N], mask[N];
    uint32_t order[N], out[N];
    shelf_rng rng;
    shelf_rng_seed(&rng, 7);
    for (int round = 0; round < 300; round++) {
        uint32_t n = 1 + shelf_rng_below(&rng, N);
        uint32_t levels = 1 + shelf_rng_below(&rng, 5);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t r = shelf_rng_below(&rng, 40);
            s[i] = r == 0 ? NAN : r == 1 ? -INFINITY : (float)shelf_rng_below(&rng, levels);
            ex[i] = shelf_rng_below(&rng, 5) == 0;
        }
        uint32_t target = shelf_rng_below(&rng, n);
        /* plain top-k against the sort */
        uint32_t nc = 0;
        for (uint32_t i = 0; i < n; i++)
            if (!ex[i] && s[i] != -INFINITY) order[nc++] = i;
        g_s = s;
        g_flag = NULL;
        qsort(order, nc, sizeof *order, naive_cmp);
        uint32_t k = shelf_rng_below(&rng, n + 2);
        uint32_t got = shelf_topk(s, n, ex, k, out);
        assert_int_equal(got, k < nc ? k : nc);
        for (uint32_t p = 0; p < got; p++) assert_int_equal(out[p], order[p]);
        /* target last among its ties */
        for (uint32_t i = 0; i < n; i++) mask[i] = (uint8_t)((ex[i] ? SHELF__EV_EXCL : 0) | (i == target ? SHELF__EV_TGT : 0));
        uint8_t flag[N];
        for (uint32_t i = 0; i < n; i++) flag[i] = i == target;
        g_flag = flag;
        qsort(order, nc, sizeof *order, naive_cmp);
        got = shelf__ev_topk(s, n, mask, SHELF__EV_EXCL, SHELF__EV_TGT, NULL, 0, n, out);
        assert_int_equal(got, nc);
        uint64_t pos = SHELF_RANK_NONE;
        for (uint32_t p = 0; p < got; p++) {
            assert_int_equal(out[p], order[p]);
            if (out[p] == target) pos = p + 1;
        }
        uint64_t r1 = shelf_metrics_rank(s, n, ex, target);
        uint64_t r2 = shelf__ev_rank(s, n, mask, SHELF__EV_EXCL, SHELF__EV_TGT, NULL, 0, &target, 1);
        assert_int_equal(r1, pos);
        assert_int_equal(r2, pos);
    }
}

static void test_rating(void **state)
{
    (void)state;
    const float p[] = {1, 2, 3}, t[] = {1, 3, 5};
    double rmse, mae;
    shelf_metrics_rating(p, t, 3, &rmse, &mae);
    assert_near(rmse, sqrt(5.0 / 3), 1e-12);
    assert_near(mae, 1, 1e-12);
    shelf_metrics_rating(p, p, 3, &rmse, &mae);
    assert_near(rmse + mae, 0, 0);
    shelf_metrics_rating(p, t, 0, &rmse, &mae);
    assert_true(isnan(rmse) && isnan(mae));
}

static void test_bootstrap(void **state)
{
    (void)state;
    enum { N = 500 };
    double a[N], b[N];
    shelf_rng rng;
    shelf_rng_seed(&rng, 3);
    for (int j = 0; j < N; j++) {
        b[j] = shelf_rng_uniform(&rng) < 0.3;
        a[j] = b[j];
    }
    double md, lo, hi, p;
    shelf_eval_bootstrap(a, b, N, 1000, 1, &md, &lo, &hi, &p);
    assert_near(md, 0, 0);
    assert_near(lo, 0, 0);
    assert_near(hi, 0, 0);
    assert_near(p, 1, 0);
    /* a clearly better: +0.2 on average with noise */
    for (int j = 0; j < N; j++) a[j] = b[j] + 0.2 + 0.3 * (shelf_rng_uniform(&rng) - 0.5);
    shelf_eval_bootstrap(a, b, N, 1000, 1, &md, &lo, &hi, &p);
    assert_true(md > 0.15 && md < 0.25);
    assert_true(lo > 0 && lo < md && md < hi);
    assert_near(p, 0, 0);
    double md2, lo2, hi2, p2;
    shelf_eval_bootstrap(a, b, N, 1000, 1, &md2, &lo2, &hi2, &p2); /* seeded: the same */
    assert_true(md == md2 && lo == lo2 && hi == hi2 && p == p2);
    shelf_eval_bootstrap(b, a, N, 1000, 1, &md2, &lo2, &hi2, &p2); /* reversed */
    assert_near(md2, -md, 1e-12);
    assert_true(hi2 < 0);
    assert_near(p2, 1, 0);
    shelf_eval_bootstrap(a, b, 0, 1000, 1, &md, &lo, &hi, &p);
    assert_true(isnan(md) && isnan(lo) && isnan(hi) && isnan(p));
}

/* ---- a small shop in memory -------------------------------------------------------- */

typedef struct shop {
    shelf_store *st;
    shelf_snapshot *full;
} shop;

/* U users, I items (categories c0..c2 by i % 4, none when i % 4 == 3; none
 * at all with no_cat), user u with 1..max_len events at increasing times
 * from a per-user start; with distinct, no item twice in a user's sequence.
 * With heavy, user 0 has I * 2 / 3 distinct items. */
static shop shop_new_cat(uint32_t U, uint32_t I, uint32_t max_len, int distinct, int heavy, uint64_t seed,
                         int no_cat)
{
    shop sh = {0};
    shelf_err err = {0};
    int rc = shelf_store_open(":memory:", SHELF_STORE_CREATE, &sh.st, &err);
    if (rc) fprintf(stderr, "store open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    char id[32], cat[8];
    for (uint32_t i = 0; i < I; i++) {
        snprintf(id, sizeof id, "i%03u", i);
        snprintf(cat, sizeof cat, "c%u", i % 4);
        shelf_item it = {.id = id, .category = i % 4 == 3 || no_cat ? NULL : cat, .available = 1};
        uint32_t idx;
        assert_int_equal(shelf_store_put_item(sh.st, &it, &idx), 0);
        assert_int_equal(idx, i);
    }
    uint32_t view;
    assert_int_equal(shelf_store_event_type(sh.st, "view", &view, NULL), 0);
    shelf_rng rng;
    shelf_rng_seed(&rng, seed);
    uint8_t *used = calloc(I, 1);
    assert_int_equal(shelf_store_begin(sh.st), 0);
    for (uint32_t u = 0; u < U; u++) {
        snprintf(id, sizeof id, "u%03u", u);
        uint32_t uidx;
        assert_int_equal(shelf_store_user_idx(sh.st, id, strlen(id), 1, &uidx, NULL), 0);
        assert_int_equal(uidx, u);
        uint32_t len = heavy && u == 0 ? I * 2 / 3 : 1 + shelf_rng_below(&rng, max_len);
        int64_t t0 = shelf_rng_below(&rng, 100);
        memset(used, 0, I);
        for (uint32_t p = 0; p < len; p++) {
            uint32_t it;
            do it = shelf_rng_below(&rng, I);
            while (distinct && used[it]);
            used[it] = 1;
            shelf_event e = {.user = u, .item = it, .type = view, .ts = t0 + 10 * (int64_t)p};
            assert_int_equal(shelf_store_add_events(sh.st, &e, 1), 0);
        }
    }
    assert_int_equal(shelf_store_commit(sh.st), 0);
    free(used);
    rc = shelf_snapshot_from_store(sh.st, 0, &sh.full);
    if (rc) fprintf(stderr, "snapshot: %s\n", shelf_store_errmsg(sh.st));
    assert_int_equal(rc, 0);
    return sh;
}

static shop shop_new(uint32_t U, uint32_t I, uint32_t max_len, int distinct, int heavy, uint64_t seed)
{
    return shop_new_cat(U, I, max_len, distinct, heavy, seed, 0);
}

static void shop_free(shop *sh)
{
    shelf_snapshot_free(sh->full);
    shelf_store_close(sh->st);
}

/* ---- the fake model: scores from a fixed [U * I] table ----------------------------- */

typedef struct fake {
    shelf_model base;
    const float *table; /* [U * I] */
    int boost;          /* add 1000 per occurrence in the history (exclusion must hide them) */
    uint32_t fail_user; /* score fails for this user */
    uint32_t *seen_n;   /* [U] history length of the last query per user, or NULL */
    uint32_t *seen_last;/* [U] its last item */
} fake;

static int fake_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    const fake *f = (const fake *)m;
    if (q->user == f->fail_user) {
        return shelf_err_set(err, SHELF_ENOTFOUND, "fake: no scores for user %u", q->user);
    }
    assert_true(q->user < m->n_users);
    assert_true(q->n == 0 || (q->types && q->ts)); /* the history's types and times come along */
    memcpy(scores, f->table + (size_t)q->user * m->n_items, (size_t)m->n_items * sizeof *scores);
    if (f->boost)
        for (uint32_t j = 0; j < q->n; j++) scores[q->items[j]] += 1000;
    if (f->seen_n) {
        f->seen_n[q->user] = q->n;
        f->seen_last[q->user] = q->n ? q->items[q->n - 1] : SHELF_NONE;
    }
    return 0;
}

static void fake_free(shelf_model *m) { (void)m; }

static const shelf_model_vt fake_vt = {.name = "fake", .score = fake_score, .free = fake_free};

static fake fake_new(const shelf_snapshot *train, const float *table)
{
    fake f;
    memset(&f, 0, sizeof f);
    f.base.vt = &fake_vt;
    f.base.n_users = train->n_users;
    f.base.n_items = train->n_items;
    f.base.fitted = 1;
    f.table = table;
    f.fail_user = SHELF_NONE;
    return f;
}

/* Random table with only `levels` distinct values (heavy ties). */
static float *table_random(uint32_t U, uint32_t I, uint32_t levels, uint64_t seed)
{
    float *t = malloc((size_t)U * I * sizeof *t);
    shelf_rng rng;
    shelf_rng_seed(&rng, seed);
    for (size_t k = 0; k < (size_t)U * I; k++) t[k] = (float)shelf_rng_below(&rng, levels);
    return t;
}

static shelf_eval_result *run(const shelf_model *m, const shelf_split *sp, const shelf_eval_opts *o,
                              const float *vecs, uint32_t dim)
{
    shelf_eval_result *r = NULL;
    shelf_err err = {0};
    int rc = shelf_eval_run(m, sp, o, vecs, dim, &r, &err);
    if (rc) fprintf(stderr, "eval: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(r);
    return r;
}

/* Everything a run produces, compared bit for bit. */
static void assert_same_result(const shelf_eval_result *a, const shelf_eval_result *b)
{
    assert_int_equal(a->n_eval, b->n_eval);
    assert_int_equal(a->n_ks, b->n_ks);
    assert_memory_equal(a->users, b->users, a->n_eval * sizeof *a->users);
    assert_memory_equal(a->rank, b->rank, a->n_eval * sizeof *a->rank);
    assert_memory_equal(a->topk, b->topk, (size_t)a->n_eval * T * sizeof *a->topk);
    for (int k = 0; k < a->n_ks; k++) {
        for (int m = 0; m < SHELF_M_COUNT; m++) {
            assert_memory_equal(a->per_user[k][m], b->per_user[k][m], a->n_eval * sizeof(double));
            assert_memory_equal(&a->mean[k][m], &b->mean[k][m], sizeof(double));
        }
        assert_memory_equal(&a->coverage[k], &b->coverage[k], sizeof(double));
        assert_memory_equal(&a->gini[k], &b->gini[k], sizeof(double));
        assert_memory_equal(&a->novelty[k], &b->novelty[k], sizeof(double));
        assert_memory_equal(&a->ild_category[k], &b->ild_category[k], sizeof(double));
        assert_memory_equal(&a->ild_embedding[k], &b->ild_embedding[k], sizeof(double));
        assert_memory_equal(&a->avg_pop[k], &b->avg_pop[k], sizeof(double));
    }
}

/* ---- a C copy of tools/score_topk.py ------------------------------------------------ */

/* Reads the TOPK file of shelf_eval_write_topk and scores it against the
 * LOO targets of the full snapshot exactly as score_topk.py does: users with
 * at least 2 items; target the last (test) or second-to-last (valid) item;
 * history items skipped in the list; users without a line miss. */
static void score_topk_c(const shelf_snapshot *s, const char *path, int valid, const uint32_t *ks, int n_ks,
                         double *hr, double *nd, uint32_t *n_users)
{
    const uint32_t U = s->n_users;
    uint32_t *lists = malloc((size_t)U * 64 * sizeof *lists);
    uint32_t *len = calloc(U, sizeof *len);
    uint8_t *listed = calloc(U, 1);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *tok = strtok_r(line, " \n", &save);
        if (!tok) continue;
        unsigned u;
        assert_int_equal(sscanf(tok, "u%u", &u), 1);
        assert_true(u < U);
        assert_false(listed[u]); /* a user appears once */
        listed[u] = 1;
        while ((tok = strtok_r(NULL, " \n", &save))) {
            unsigned it;
            assert_int_equal(sscanf(tok, "i%u", &it), 1);
            assert_true(len[u] < 64);
            lists[(size_t)u * 64 + len[u]++] = it;
        }
    }
    fclose(f);
    for (int k = 0; k < n_ks; k++) hr[k] = nd[k] = 0;
    uint32_t n = 0;
    for (uint32_t u = 0; u < U; u++) {
        uint64_t b = s->seq_off[u], e = s->seq_off[u + 1];
        if (e - b < 2) continue;
        n++;
        uint64_t cut = valid ? e - 2 : e - 1; /* history [b, cut), target at cut */
        uint32_t target = s->seq_item[cut];
        uint32_t r = 0;
        int found = 0;
        for (uint32_t p = 0; p < len[u] && !found; p++) {
            uint32_t it = lists[(size_t)u * 64 + p];
            int in_hist = 0;
            for (uint64_t q = b; q < cut; q++) in_hist |= s->seq_item[q] == it;
            if (in_hist) continue;
            if (it == target) found = 1;
            else r++;
        }
        if (!found) continue;
        for (int k = 0; k < n_ks; k++)
            if (r < ks[k]) {
                hr[k] += 1;
                nd[k] += 1 / log2(r + 2.0);
            }
    }
    for (int k = 0; k < n_ks; k++) {
        hr[k] /= n;
        nd[k] /= n;
    }
    *n_users = n;
    free(lists);
    free(len);
    free(listed);
}

/* ---- LOO-FULL end to end ------------------------------------------------------------- */

static shelf_split *loo(const shelf_snapshot *s)
{
    shelf_split *sp = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_split_loo(s, &sp, &err), 0);
    return sp;
}

/* Every per-user number of a single-target run against a naive
 * recomputation from the table and the full sequences. */
static void check_loo_run(const shelf_eval_result *r, const shelf_snapshot *full, const shelf_split *sp,
                          const float *table, int boost, int valid)
{
    const uint32_t I = full->n_items;
    float *sc = malloc(I * sizeof *sc);
    uint8_t *ex = calloc(I, 1);
    uint32_t j = 0;
    for (uint32_t u = 0; u < full->n_users; u++) {
        uint64_t b = full->seq_off[u], e = full->seq_off[u + 1];
        if (e - b < (valid ? 3u : 2u)) continue;
        uint64_t cut = valid ? e - 2 : e - 1;
        uint32_t target = full->seq_item[cut];
        assert_true(j < r->n_eval);
        assert_int_equal(r->users[j], u);
        assert_int_equal((valid ? sp->valid_item[sp->valid_off[u]] : sp->test_item[sp->test_off[u]]), target);
        memcpy(sc, table + (size_t)u * I, I * sizeof *sc);
        memset(ex, 0, I);
        for (uint64_t q = b; q < cut; q++) {
            ex[full->seq_item[q]] = 1;
            if (boost) sc[full->seq_item[q]] += 1000;
        }
        uint64_t rank = shelf_metrics_rank(sc, I, ex, target);
        assert_int_equal(r->rank[j], rank);
        const uint32_t *top = r->topk + (size_t)j * T;
        uint32_t want[T];
        uint32_t n = shelf_topk(sc, I, ex, T, want);
        for (uint32_t p = 0; p < T; p++) {
            if (p >= n) {
                assert_int_equal(top[p], SHELF_NONE);
                continue;
            }
            assert_int_not_equal(top[p], SHELF_NONE);
            assert_false(ex[top[p]]); /* history removed */
            /* same scores in the same order; the target after its ties */
            assert_true(sc[top[p]] == sc[want[p]]);
            if (top[p] == target) assert_int_equal(p + 1, rank);
        }
        for (int k = 0; k < r->n_ks; k++) {
            uint32_t K = r->ks[k];
            int hit = rank <= K;
            assert_near(r->per_user[k][SHELF_M_HR][j], hit, 0);
            assert_near(r->per_user[k][SHELF_M_RECALL][j], hit, 0);
            assert_near(r->per_user[k][SHELF_M_NDCG][j], hit ? 1 / log2(rank + 1.0) : 0, 1e-15);
            assert_near(r->per_user[k][SHELF_M_MRR][j], hit ? 1.0 / rank : 0, 1e-15);
            assert_near(r->per_user[k][SHELF_M_MAP][j], hit ? 1.0 / rank : 0, 1e-15);
            assert_near(r->per_user[k][SHELF_M_PRECISION][j], hit ? 1.0 / K : 0, 1e-15);
            /* the list says the same as the rank */
            shelf_list_metrics lm;
            shelf_metrics_list(top, K, &target, 1, &lm);
            assert_near(lm.hr, r->per_user[k][SHELF_M_HR][j], 0);
            assert_near(lm.ndcg, r->per_user[k][SHELF_M_NDCG][j], 1e-12);
            assert_near(lm.mrr, r->per_user[k][SHELF_M_MRR][j], 1e-12);
            assert_near(lm.map, r->per_user[k][SHELF_M_MAP][j], 1e-12);
            assert_near(lm.precision, r->per_user[k][SHELF_M_PRECISION][j], 1e-12);
        }
        j++;
    }
    assert_int_equal(j, r->n_eval);
    for (int k = 0; k < r->n_ks; k++)
        for (int m = 0; m < SHELF_M_COUNT; m++) {
            double s = 0;
            for (uint32_t q = 0; q < r->n_eval; q++) s += r->per_user[k][m][q];
            assert_near(r->mean[k][m], s / r->n_eval, 1e-12);
        }
    free(sc);
    free(ex);
}

static void test_loo_full(void **state)
{
    (void)state;
    shop sh = shop_new(60, 80, 14, 0, 0, 11);
    shelf_split *sp = loo(sh.full);
    const uint32_t U = sh.full->n_users, I = sh.full->n_items;
    float *table = table_random(U, I, 4, 5); /* 4 levels: many ties with the target */
    fake f = fake_new(sp->train, table);
    f.boost = 1;
    f.seen_n = calloc(U, sizeof *f.seen_n);
    f.seen_last = calloc(U, sizeof *f.seen_last);
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    o.threads = 1;
    for (int valid = 0; valid <= 1; valid++) {
        o.valid = valid;
        shelf_eval_result *r = run(&f.base, sp, &o, NULL, 0);
        assert_true(r->n_eval > 30);
        check_loo_run(r, sh.full, sp, table, 1, valid);
        /* the query held the history: training sequence (+ validation item) */
        for (uint32_t j = 0; j < r->n_eval; j++) {
            uint32_t u = r->users[j];
            uint64_t b = sh.full->seq_off[u], e = sh.full->seq_off[u + 1];
            uint64_t cut = valid ? e - 2 : e - 1;
            assert_int_equal(f.seen_n[u], cut - b);
            assert_int_equal(f.seen_last[u], cut > b ? sh.full->seq_item[cut - 1] : SHELF_NONE);
        }
        int hits = 0;
        for (uint32_t j = 0; j < r->n_eval; j++) hits += r->rank[j] <= 20;
        assert_true(hits > 0 && hits < (int)r->n_eval); /* a real mix */
        for (int k = 0; k < 3; k++) {
            assert_true(isnan(r->ild_embedding[k]));
            assert_false(isnan(r->ild_category[k]));
        }
        /* the same with 2 and 3 threads */
        for (int th = 2; th <= 3; th++) {
            o.threads = th;
            shelf_eval_result *r2 = run(&f.base, sp, &o, NULL, 0);
            assert_same_result(r, r2);
            shelf_eval_result_free(r2);
        }
        o.threads = 1;
        /* exported lists scored independently */
        const char *path = tmp_path(valid ? "topk_valid.txt" : "topk_test.txt");
        shelf_err err = {0};
        assert_int_equal(shelf_eval_write_topk(r, sh.full, T, path, &err), 0);
        double hr[3], nd[3];
        uint32_t n_users;
        score_topk_c(sh.full, path, valid, r->ks, 3, hr, nd, &n_users);
        if (!valid) {
            assert_int_equal(n_users, r->n_eval);
            for (int k = 0; k < 3; k++) {
                assert_near(hr[k], r->mean[k][SHELF_M_HR], 1e-4);
                assert_near(nd[k], r->mean[k][SHELF_M_NDCG], 1e-4);
            }
        } else {
            /* score_topk.py --split valid also counts 2-item users (target
             * = first item, in training for LOO): rescale to the same sums */
            for (int k = 0; k < 3; k++) {
                assert_near(hr[k] * n_users, r->mean[k][SHELF_M_HR] * r->n_eval, 1e-6);
                assert_near(nd[k] * n_users, r->mean[k][SHELF_M_NDCG] * r->n_eval, 1e-6);
            }
        }
        shelf_eval_result_free(r);
    }
    free(f.seen_n);
    free(f.seen_last);
    free(table);
    shelf_split_free(sp);
    shop_free(&sh);
}

/* A model that puts the target first scores 1; one that scores everything
 * alike scores 0 (its rank is the candidate count, above 20). */
static void test_loo_extremes(void **state)
{
    (void)state;
    shop sh = shop_new(40, 60, 10, 1, 0, 12);
    shelf_split *sp = loo(sh.full);
    const uint32_t U = sh.full->n_users, I = sh.full->n_items;
    float *table = calloc((size_t)U * I, sizeof *table);
    fake f = fake_new(sp->train, table);
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    shelf_eval_result *r = run(&f.base, sp, &o, NULL, 0);
    assert_true(r->n_eval > 20);
    for (int k = 0; k < 3; k++)
        for (int m = 0; m < SHELF_M_COUNT; m++) assert_near(r->mean[k][m], 0, 0);
    for (uint32_t j = 0; j < r->n_eval; j++) {
        uint32_t u = r->users[j];
        uint64_t hist = shelf_snapshot_seq_len(sh.full, u) - 1; /* distinct items */
        assert_int_equal(r->rank[j], I - hist);
    }
    shelf_eval_result_free(r);
    for (uint32_t u = 0; u < U; u++)
        if (sp->test_off[u + 1] > sp->test_off[u]) table[(size_t)u * I + sp->test_item[sp->test_off[u]]] = 1;
    r = run(&f.base, sp, &o, NULL, 0);
    for (int k = 0; k < 3; k++) {
        assert_near(r->mean[k][SHELF_M_HR], 1, 0);
        assert_near(r->mean[k][SHELF_M_NDCG], 1, 0);
        assert_near(r->mean[k][SHELF_M_MRR], 1, 0);
        assert_near(r->mean[k][SHELF_M_RECALL], 1, 0);
        assert_near(r->mean[k][SHELF_M_PRECISION], 1.0 / r->ks[k], 1e-15);
    }
    for (uint32_t j = 0; j < r->n_eval; j++) assert_int_equal(r->rank[j], 1);
    shelf_eval_result_free(r);
    free(table);
    shelf_split_free(sp);
    shop_free(&sh);
}

/* A repeated target sits in the history: removed, it never ranks (a miss),
 * as score_topk.py counts it. */
static void test_loo_repeat_target(void **state)
{
    (void)state;
    shop sh = shop_new_cat(50, 12, 12, 0, 0, 13, 1); /* no categories */
    assert_int_equal(sh.full->n_categories, 0);
    shelf_split *sp = loo(sh.full);
    const uint32_t U = sh.full->n_users, I = sh.full->n_items;
    float *table = calloc((size_t)U * I, sizeof *table);
    for (uint32_t u = 0; u < U; u++)
        if (sp->test_off[u + 1] > sp->test_off[u]) table[(size_t)u * I + sp->test_item[sp->test_off[u]]] = 1;
    fake f = fake_new(sp->train, table);
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    o.ks[0] = 1;
    o.ks[1] = 5;
    o.n_ks = 2;
    shelf_eval_result *r = run(&f.base, sp, &o, NULL, 0);
    int repeats = 0;
    for (uint32_t j = 0; j < r->n_eval; j++) {
        uint32_t u = r->users[j];
        uint64_t b = sh.full->seq_off[u], e = sh.full->seq_off[u + 1];
        int rep = 0;
        for (uint64_t q = b; q + 1 < e; q++) rep |= sh.full->seq_item[q] == sh.full->seq_item[e - 1];
        repeats += rep;
        assert_int_equal(r->rank[j], rep ? SHELF_RANK_NONE : 1);
        assert_near(r->per_user[0][SHELF_M_HR][j], !rep, 0);
        assert_near(r->per_user[0][SHELF_M_MRR][j], !rep, 0);
    }
    assert_true(repeats > 5);
    assert_true(isnan(r->ild_category[1])); /* no categories, no such diversity */
    assert_false(isnan(r->coverage[1]));
    shelf_err err = {0};
    const char *path = tmp_path("topk_repeat.txt");
    assert_int_equal(shelf_eval_write_topk(r, sh.full, 5, path, &err), 0);
    double hr[2], nd[2];
    uint32_t n;
    score_topk_c(sh.full, path, 0, r->ks, 2, hr, nd, &n);
    for (int k = 0; k < 2; k++) {
        assert_near(hr[k], r->mean[k][SHELF_M_HR], 1e-12);
        assert_near(nd[k], r->mean[k][SHELF_M_NDCG], 1e-12);
    }
    shelf_eval_result_free(r);
    free(table);
    shelf_split_free(sp);
    shop_free(&sh);
}

/* ---- LOO-S100 ------------------------------------------------------------------------ */

static void test_loo_s100(void **state)
{
    (void)state;
    /* user 0 touches 2/3 of the catalogue: fewer than half unseen, so the
     * other way of sampling (shuffle of the unseen list) runs too */
    shop sh = shop_new(40, 300, 15, 1, 1, 14);
    shelf_split *sp = loo(sh.full);
    const uint32_t U = sh.full->n_users, I = sh.full->n_items;
    float *table = calloc((size_t)U * I, sizeof *table);
    fake f = fake_new(sp->train, table);
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    o.protocol = SHELF_PROTO_LOO_S100;
    o.threads = 1;
    /* everything alike: last of the candidates */
    shelf_eval_result *r = run(&f.base, sp, &o, NULL, 0);
    assert_int_equal(r->users[0], 0);
    for (uint32_t j = 0; j < r->n_eval; j++) {
        uint32_t u = r->users[j];
        uint32_t touched = (uint32_t)shelf_snapshot_seq_len(sh.full, u); /* distinct */
        uint32_t n_neg = I - touched < 100 ? I - touched : 100;
        assert_int_equal(r->rank[j], 1 + n_neg);
        /* the lists hold the candidates: the target and untouched items */
        const uint32_t *top = r->topk + (size_t)j * T;
        uint32_t target = sp->test_item[sp->test_off[u]];
        for (uint32_t p = 0; p < T; p++) {
            assert_int_not_equal(top[p], SHELF_NONE);
            if (top[p] == target) continue;
            for (uint64_t q = sh.full->seq_off[u]; q < sh.full->seq_off[u + 1]; q++)
                assert_int_not_equal(top[p], sh.full->seq_item[q]);
        }
    }
    assert_int_equal(r->rank[0], 101); /* user 0: 100 of 100 unseen */
    for (int k = 0; k < 3; k++) assert_near(r->mean[k][SHELF_M_HR], 0, 0);
    shelf_eval_result_free(r);

    /* random tied scores: the same for any thread count; another seed draws
     * other negatives */
    free(table);
    table = table_random(U, I, 3, 9);
    f.table = table;
    r = run(&f.base, sp, &o, NULL, 0);
    for (uint32_t j = 0; j < r->n_eval; j++) assert_true(r->rank[j] >= 1 && r->rank[j] <= 101);
    for (int th = 2; th <= 3; th++) {
        o.threads = th;
        shelf_eval_result *r2 = run(&f.base, sp, &o, NULL, 0);
        assert_same_result(r, r2);
        shelf_eval_result_free(r2);
    }
    o.seed = 43;
    shelf_eval_result *r3 = run(&f.base, sp, &o, NULL, 0);
    assert_true(memcmp(r->topk, r3->topk, (size_t)r->n_eval * T * sizeof *r->topk) != 0);
    shelf_eval_result_free(r3);
    /* the rank against the dense scores of the candidates in the list: the
     * target ranks after every listed item that ties with it */
    for (uint32_t j = 0; j < r->n_eval; j++) {
        uint32_t u = r->users[j], target = sp->test_item[sp->test_off[u]];
        const float *s = table + (size_t)u * I;
        const uint32_t *top = r->topk + (size_t)j * T;
        for (uint32_t p = 0; p < T; p++) {
            if (p + 1 < r->rank[j]) assert_true(s[top[p]] >= s[target] && top[p] != target);
            if (p + 1 == r->rank[j]) assert_int_equal(top[p], target);
            if (p + 1 > r->rank[j]) assert_true(s[top[p]] < s[target]);
        }
    }
    shelf_eval_result_free(r);
    /* the target first: rank 1 */
    for (uint32_t u = 0; u < U; u++)
        if (sp->test_off[u + 1] > sp->test_off[u]) table[(size_t)u * I + sp->test_item[sp->test_off[u]]] = 99;
    o.threads = 0;
    r = run(&f.base, sp, &o, NULL, 0);
    for (uint32_t j = 0; j < r->n_eval; j++) assert_int_equal(r->rank[j], 1);
    for (int k = 0; k < 3; k++) assert_near(r->mean[k][SHELF_M_NDCG], 1, 0);
    shelf_eval_result_free(r);
    free(table);
    shelf_split_free(sp);
    shop_free(&sh);
}

/* ---- temporal: several targets ----------------------------------------------------------- */

static void test_temporal(void **state)
{
    (void)state;
    shop sh = shop_new(60, 40, 14, 0, 0, 15);
    shelf_split *sp = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_split_temporal(sh.full, 90, 120, &sp, &err), 0);
    const uint32_t U = sh.full->n_users, I = sh.full->n_items;
    float *table = table_random(U, I, 3, 21);
    fake f = fake_new(sp->train, table);
    f.boost = 1;
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    o.ks[0] = 1;
    o.ks[1] = 5;
    o.ks[2] = 10;
    o.n_ks = 3;
    /* LOO-FULL refuses several targets */
    shelf_eval_result *r = NULL;
    assert_int_equal(shelf_eval_run(&f.base, sp, &o, NULL, 0, &r, &err), SHELF_EINVAL);
    assert_non_null(strstr(err.msg, "temporal"));
    assert_null(r);
    o.protocol = SHELF_PROTO_TEMPORAL;
    o.threads = 1;
    r = run(&f.base, sp, &o, NULL, 0);
    /* naive: history = training + validation; targets = distinct test items
     * not in it; list by full sort with the targets after their ties */
    float *sc = malloc(I * sizeof *sc);
    uint8_t *ex = calloc(I, 1), *flag = calloc(I, 1);
    uint32_t *order = malloc(I * sizeof *order), tg[64];
    uint32_t j = 0, multi = 0;
    for (uint32_t u = 0; u < U; u++) {
        memcpy(sc, table + (size_t)u * I, I * sizeof *sc);
        memset(ex, 0, I);
        memset(flag, 0, I);
        const shelf_snapshot *tr = sp->train;
        for (uint64_t q = tr->seq_off[u]; q < tr->seq_off[u + 1]; q++) ex[tr->seq_item[q]] = 1;
        for (uint64_t q = sp->valid_off[u]; q < sp->valid_off[u + 1]; q++) ex[sp->valid_item[q]] = 1;
        uint32_t n_t = 0;
        for (uint64_t q = sp->test_off[u]; q < sp->test_off[u + 1]; q++) {
            uint32_t it = sp->test_item[q];
            if (ex[it] || flag[it]) continue;
            flag[it] = 1;
            tg[n_t++] = it;
        }
        for (uint32_t i = 0; i < I; i++)
            if (ex[i]) sc[i] += 1000;
        if (!n_t) continue;
        multi += n_t > 1;
        assert_true(j < r->n_eval);
        assert_int_equal(r->users[j], u);
        uint32_t nc = 0;
        for (uint32_t i = 0; i < I; i++)
            if (!ex[i]) order[nc++] = i;
        g_s = sc;
        g_flag = flag;
        qsort(order, nc, sizeof *order, naive_cmp);
        const uint32_t *top = r->topk + (size_t)j * T;
        uint64_t first = SHELF_RANK_NONE;
        for (uint32_t p = 0; p < nc; p++)
            if (flag[order[p]]) {
                first = p + 1;
                break;
            }
        assert_int_equal(r->rank[j], first);
        for (uint32_t p = 0; p < T; p++) assert_int_equal(top[p], p < nc ? order[p] : SHELF_NONE);
        for (int k = 0; k < 3; k++) {
            shelf_list_metrics lm;
            shelf_metrics_list(order, r->ks[k], tg, n_t, &lm);
            assert_near(r->per_user[k][SHELF_M_HR][j], lm.hr, 0);
            assert_near(r->per_user[k][SHELF_M_NDCG][j], lm.ndcg, 1e-15);
            assert_near(r->per_user[k][SHELF_M_RECALL][j], lm.recall, 1e-15);
            assert_near(r->per_user[k][SHELF_M_PRECISION][j], lm.precision, 1e-15);
            assert_near(r->per_user[k][SHELF_M_MAP][j], lm.map, 1e-15);
            assert_near(r->per_user[k][SHELF_M_MRR][j], first <= r->ks[k] ? 1.0 / first : 0, 1e-15);
        }
        j++;
    }
    assert_int_equal(j, r->n_eval);
    assert_true(multi > 3);
    shelf_eval_result *r2;
    o.threads = 2;
    r2 = run(&f.base, sp, &o, NULL, 0);
    assert_same_result(r, r2);
    shelf_eval_result_free(r2);
    shelf_eval_result_free(r);
    free(sc);
    free(ex);
    free(flag);
    free(order);
    free(table);
    shelf_split_free(sp);
    shop_free(&sh);
}

/* ---- cold items ------------------------------------------------------------------------- */

static void test_cold_split(void **state)
{
    (void)state;
    shop sh = shop_new(60, 50, 14, 0, 0, 16);
    const shelf_snapshot *s = sh.full;
    const uint32_t U = s->n_users, I = s->n_items;
    shelf_split *sp = NULL, *sp2 = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_split_cold_items(s, 0.2, 5, &sp, &err), 0);
    const shelf_snapshot *tr = sp->train;
    assert_int_equal(tr->n_users, U);
    assert_int_equal(tr->n_items, I);
    /* an item keeps all its events or none; at most 10 lose them */
    uint32_t *full_n = calloc(I, sizeof *full_n), *train_n = calloc(I, sizeof *train_n);
    for (uint64_t e = 0; e < s->n_events; e++) full_n[s->seq_item[e]]++;
    for (uint64_t e = 0; e < tr->n_events; e++) train_n[tr->seq_item[e]]++;
    uint32_t gone = 0;
    for (uint32_t i = 0; i < I; i++) {
        assert_true(train_n[i] == 0 || train_n[i] == full_n[i]);
        gone += full_n[i] && !train_n[i];
    }
    assert_true(gone > 0 && gone <= 10);
    /* per user: test = last event on a gone item, valid = last earlier one on another */
    uint32_t n_valid = 0;
    for (uint32_t u = 0; u < U; u++) {
        uint32_t t = SHELF_NONE, v = SHELF_NONE;
        for (uint64_t e = s->seq_off[u + 1]; e-- > s->seq_off[u];) {
            uint32_t it = s->seq_item[e];
            if (train_n[it]) continue;
            if (t == SHELF_NONE) t = it;
            else if (it != t) {
                v = it;
                break;
            }
        }
        assert_int_equal(sp->test_off[u + 1] - sp->test_off[u], t != SHELF_NONE);
        assert_int_equal(sp->valid_off[u + 1] - sp->valid_off[u], v != SHELF_NONE);
        if (t != SHELF_NONE) assert_int_equal(sp->test_item[sp->test_off[u]], t);
        if (v != SHELF_NONE) assert_int_equal(sp->valid_item[sp->valid_off[u]], v);
        n_valid += v != SHELF_NONE;
        /* training keeps the warm events, in order */
        uint64_t q = tr->seq_off[u];
        for (uint64_t e = s->seq_off[u]; e < s->seq_off[u + 1]; e++)
            if (train_n[s->seq_item[e]]) assert_int_equal(tr->seq_item[q++], s->seq_item[e]);
        assert_int_equal(q, tr->seq_off[u + 1]);
    }
    assert_int_equal(sp->n_valid, n_valid);
    assert_true(sp->n_test > 10 && n_valid > 0);
    /* seeded */
    assert_int_equal(shelf_split_cold_items(s, 0.2, 5, &sp2, &err), 0);
    assert_int_equal(sp2->n_test, sp->n_test);
    assert_memory_equal(sp2->test_item, sp->test_item, sp->n_test * sizeof *sp->test_item);
    assert_memory_equal(sp2->train->seq_item, tr->seq_item, tr->n_events * sizeof *tr->seq_item);
    shelf_split_free(sp2);
    assert_int_equal(shelf_split_cold_items(s, 0.2, 6, &sp2, &err), 0);
    assert_true(sp2->n_test != sp->n_test ||
                memcmp(sp2->test_item, sp->test_item, sp->n_test * sizeof *sp->test_item) != 0);
    shelf_split_free(sp2);
    /* the ends */
    assert_int_equal(shelf_split_cold_items(s, 0, 5, &sp2, &err), 0);
    assert_int_equal(sp2->n_test, 0);
    assert_int_equal(sp2->train->n_events, s->n_events);
    {
        /* nobody to evaluate: an empty result, means NaN, an empty file */
        float *zeros = calloc((size_t)U * I, sizeof *zeros);
        fake fz = fake_new(sp2->train, zeros);
        shelf_eval_opts oz;
        shelf_eval_opts_init(&oz);
        oz.protocol = SHELF_PROTO_COLD_ITEM;
        shelf_eval_result *rz = run(&fz.base, sp2, &oz, NULL, 0);
        assert_int_equal(rz->n_eval, 0);
        assert_true(isnan(rz->mean[0][SHELF_M_HR]) && isnan(rz->gini[0]) && isnan(rz->novelty[0]));
        assert_near(rz->coverage[0], 0, 0);
        const char *path = tmp_path("topk_empty.txt");
        assert_int_equal(shelf_eval_write_topk(rz, s, T, path, &err), 0);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        assert_int_equal(fgetc(fp), EOF);
        fclose(fp);
        shelf_eval_result_free(rz);
        free(zeros);
    }
    shelf_split_free(sp2);
    assert_int_equal(shelf_split_cold_items(s, 1, 5, &sp2, &err), 0);
    assert_int_equal(sp2->train->n_events, 0);
    for (uint32_t u = 0; u < U; u++)
        assert_int_equal(sp2->test_off[u + 1] - sp2->test_off[u], shelf_snapshot_seq_len(s, u) > 0);
    shelf_split_free(sp2);
    sp2 = NULL;
    assert_int_equal(shelf_split_cold_items(s, 1.5, 5, &sp2, &err), SHELF_EINVAL);
    assert_int_equal(shelf_split_cold_items(s, NAN, 5, &sp2, &err), SHELF_EINVAL);
    assert_null(sp2);

    /* evaluated: the target first scores 1; test history = training + validation item */
    float *table = calloc((size_t)U * I, sizeof *table);
    for (uint32_t u = 0; u < U; u++)
        if (sp->test_off[u + 1] > sp->test_off[u]) table[(size_t)u * I + sp->test_item[sp->test_off[u]]] = 1;
    fake f = fake_new(tr, table);
    f.seen_n = calloc(U, sizeof *f.seen_n);
    f.seen_last = calloc(U, sizeof *f.seen_last);
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    o.protocol = SHELF_PROTO_COLD_ITEM;
    shelf_eval_result *r = run(&f.base, sp, &o, NULL, 0);
    assert_int_equal(r->n_eval, sp->n_test);
    for (int k = 0; k < 3; k++) assert_near(r->mean[k][SHELF_M_NDCG], 1, 0);
    for (uint32_t j = 0; j < r->n_eval; j++) {
        uint32_t u = r->users[j];
        int has_v = sp->valid_off[u + 1] > sp->valid_off[u];
        assert_int_equal(f.seen_n[u], shelf_snapshot_seq_len(tr, u) + has_v);
        if (has_v) assert_int_equal(f.seen_last[u], sp->valid_item[sp->valid_off[u]]);
    }
    shelf_eval_result_free(r);
    free(f.seen_n);
    free(f.seen_last);
    free(table);
    free(full_n);
    free(train_n);
    shelf_split_free(sp);
    shop_free(&sh);
}

/* ---- beyond accuracy ------------------------------------------------------------------------ */

/* the shop of test_beyond_hand and test_scenario: user u views items
 * 20 + (u + p) % 10 at times p = 0..2; items c0, c1, c2 by i % 4 (none when 3) */
static shop shop_hand(void)
{
    shop sh = {0};
    shelf_err e0 = {0};
    assert_int_equal(shelf_store_open(":memory:", SHELF_STORE_CREATE, &sh.st, &e0), 0);
    char id[16], cat[8];
    for (uint32_t i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "i%03u", i);
        snprintf(cat, sizeof cat, "c%u", i % 4);
        shelf_item it = {.id = id, .category = i % 4 == 3 ? NULL : cat, .available = 1};
        assert_int_equal(shelf_store_put_item(sh.st, &it, NULL), 0);
    }
    uint32_t view;
    assert_int_equal(shelf_store_event_type(sh.st, "view", &view, NULL), 0);
    for (uint32_t u = 0; u < 10; u++) {
        snprintf(id, sizeof id, "u%03u", u);
        uint32_t ui;
        assert_int_equal(shelf_store_user_idx(sh.st, id, strlen(id), 1, &ui, NULL), 0);
        for (uint32_t p = 0; p < 3; p++) {
            shelf_event e = {.user = ui, .item = 20 + (u + p) % 10, .type = view, .ts = p};
            assert_int_equal(shelf_store_add_events(sh.st, &e, 1), 0);
        }
    }
    assert_int_equal(shelf_snapshot_from_store(sh.st, 0, &sh.full), 0);
    return sh;
}

/* Hand-checked: 30 items (category i % 4, none for i % 4 == 3), users touch
 * only items 20..29, the model ranks items by id, so every list is 0..19. */
static void test_beyond_hand(void **state)
{
    (void)state;
    /* user u views items 20 + (u + p) % 10, p = 0..2 */
    shop sh = shop_hand();
    shelf_split *sp = loo(sh.full);
    float *table = malloc(10 * 30 * sizeof *table);
    for (uint32_t u = 0; u < 10; u++)
        for (uint32_t i = 0; i < 30; i++) table[u * 30 + i] = 30.0f - (float)i;
    fake f = fake_new(sp->train, table);
    float vecs[30 * 2];
    for (uint32_t i = 0; i < 30; i++) {
        vecs[2 * i] = i % 2 == 0 ? 2.0f : 0;
        vecs[2 * i + 1] = i % 2 == 1 ? 0.5f : 0;
    }
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    o.ks[0] = 5;
    o.ks[1] = 20;
    o.n_ks = 2;
    shelf_eval_result *r = run(&f.base, sp, &o, vecs, 2);
    assert_int_equal(r->n_eval, 10);
    const double E = 10.0, I = 30;  /* 10 training events: the first of each user */
    assert_int_equal(sp->train->n_events, 10);
    /* K = 5: items 0..4, categories 0 1 2 none 0 -> same-category pairs: (0,4) */
    assert_near(r->coverage[0], 5 / I, 1e-15);
    assert_near(r->gini[0], 1 - 5 / I, 1e-12);
    assert_near(r->avg_pop[0], 0, 0);
    assert_near(r->novelty[0], -log2(1 / (E + I)), 1e-12);
    assert_near(r->ild_category[0], 9.0 / 10, 1e-15);
    /* parities 0 1 0 1 0: 6 of 10 pairs differ (distance 1), the rest 0 */
    assert_near(r->ild_embedding[0], 6.0 / 10, 1e-12);
    assert_near(r->coverage[1], 20 / I, 1e-15);
    assert_near(r->gini[1], 1 - 20 / I, 1e-12);
    /* 0..19: 5 items per category c0 c1 c2 and 5 without: 3 * C(5,2) same pairs of 190 */
    assert_near(r->ild_category[1], 1 - 30.0 / 190, 1e-12);
    assert_near(r->ild_embedding[1], 100.0 / 190, 1e-12);
    for (int k = 0; k < 2; k++) assert_near(r->mean[k][SHELF_M_HR], 0, 0);
    shelf_eval_result_free(r);
    free(table);
    shelf_split_free(sp);
    shop_free(&sh);
}

/* A scenario's stages choose the lists: an empty one changes nothing; MMR
 * by category with lambda 0 spreads the categories; a long-tail term or a
 * popularity filter keeps the most trained items out (the shop of
 * test_beyond_hand: items 20..29 hold the 10 training events) */
static void test_scenario(void **state)
{
    (void)state;
    shop sh = shop_hand();
    shelf_split *sp = loo(sh.full);
    float *down = malloc(10 * 30 * sizeof *down), *up = malloc(10 * 30 * sizeof *up);
    for (uint32_t u = 0; u < 10; u++)
        for (uint32_t i = 0; i < 30; i++) {
            down[u * 30 + i] = 30.0f - (float)i; /* item 0 first */
            up[u * 30 + i] = (float)i;           /* item 29 first */
        }
    fake fd = fake_new(sp->train, down), fu = fake_new(sp->train, up);
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    o.ks[0] = 5;
    o.ks[1] = 20;
    o.n_ks = 2;
    shelf_eval_result *plain = run(&fd.base, sp, &o, NULL, 0);
    o.scenario = "{}";
    shelf_eval_result *r = run(&fd.base, sp, &o, NULL, 0);
    assert_same_result(plain, r);
    shelf_eval_result_free(r);
    /* lambda 0: 0 (c0) 1 (c1) 2 (c2) 3 (none) 7 (none): no pair shares a category */
    assert_near(plain->ild_category[0], 9.0 / 10, 1e-15);
    o.scenario = "{\"diversity\": {\"by\": \"category\", \"lambda\": 0}}";
    r = run(&fd.base, sp, &o, NULL, 0);
    assert_near(r->ild_category[0], 1, 0);
    for (uint32_t j = 0; j < r->n_eval; j++) {
        const uint32_t *top = r->topk + (size_t)j * T;
        assert_true(top[0] == 0 && top[1] == 1 && top[2] == 2 && top[3] == 3 && top[4] == 7);
    }
    shelf_eval_result_free(r);
    shelf_eval_result_free(plain);
    /* the head: 20..25 (6 = 20 % of 30 items, ties by id); item 29 first: 32 of
     * 50 slots at K = 5 are tail items (worked out per user) */
    o.scenario = NULL;
    plain = run(&fu.base, sp, &o, NULL, 0);
    assert_near(plain->long_tail[0], 32.0 / 50, 1e-15);
    o.scenario = "{\"long_tail\": {\"beta\": 3}}"; /* trained items x 1/8 */
    r = run(&fu.base, sp, &o, NULL, 0);
    assert_near(r->long_tail[0], 1, 0);
    assert_true(r->avg_pop[0] < plain->avg_pop[0]);
    shelf_eval_result_free(r);
    o.scenario = "{\"filter\": \"popularity == 0\"}";
    r = run(&fu.base, sp, &o, NULL, 0);
    assert_near(r->long_tail[1], 1, 0);
    assert_near(r->avg_pop[1], 0, 0);
    shelf_eval_result_free(r);
    shelf_eval_result_free(plain);
    /* refused: a broken document, and a protocol of sampled candidates */
    shelf_err err = {0};
    o.scenario = "{\"diversity\": {\"by\": \"colour\"}}";
    assert_int_equal(shelf_eval_run(&fd.base, sp, &o, NULL, 0, &r, &err), SHELF_EINVAL);
    assert_non_null(strstr(err.msg, "scenario.diversity.by"));
    free(down);
    free(up);
    shelf_split_free(sp);
    shop_free(&sh);
}

/* On random data, against naive formulas (Gini by mean absolute difference). */
static void test_beyond_naive(void **state)
{
    (void)state;
    shop sh = shop_new(50, 40, 10, 0, 0, 18);
    shelf_split *sp = loo(sh.full);
    const uint32_t U = sh.full->n_users, I = sh.full->n_items;
    float *table = table_random(U, I, 1000, 19);
    for (uint32_t u = 0; u < U; u++)
        for (uint32_t i = 0; i < I; i++) table[(size_t)u * I + i] += (float)(I - i) * 20; /* skew: head items win */
    fake f = fake_new(sp->train, table);
    enum { D = 3 };
    float *vecs = malloc((size_t)I * D * sizeof *vecs);
    shelf_rng rng;
    shelf_rng_seed(&rng, 20);
    for (size_t k = 0; k < (size_t)I * D; k++) vecs[k] = (float)shelf_rng_normal(&rng);
    for (int d = 0; d < D; d++) vecs[5 * D + d] = 0; /* a zero vector */
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    shelf_eval_result *r = run(&f.base, sp, &o, vecs, D);
    const shelf_snapshot *tr = sp->train;
    double *cnt = calloc(I, sizeof *cnt), *expo = calloc(I, sizeof *expo);
    for (uint64_t e = 0; e < tr->n_events; e++) cnt[tr->seq_item[e]]++;
    for (int k = 0; k < r->n_ks; k++) {
        uint32_t K = r->ks[k];
        memset(expo, 0, I * sizeof *expo);
        double total = 0, nov = 0, pop = 0, ic = 0, ie = 0;
        uint32_t nl = 0;
        for (uint32_t j = 0; j < r->n_eval; j++) {
            const uint32_t *top = r->topk + (size_t)j * T;
            uint32_t L = 0;
            while (L < K && top[L] != SHELF_NONE) L++;
            for (uint32_t p = 0; p < L; p++) {
                expo[top[p]]++;
                total++;
                nov -= log2((cnt[top[p]] + 1) / ((double)tr->n_events + I));
                pop += cnt[top[p]];
            }
            if (L < 2) continue;
            double sc = 0, se = 0, pairs = 0;
            for (uint32_t a = 0; a < L; a++)
                for (uint32_t b = a + 1; b < L; b++) {
                    uint32_t ca = tr->item_category[top[a]], cb = tr->item_category[top[b]];
                    sc += ca == SHELF_NONE || ca != cb;
                    double dot = 0, na = 0, nb = 0;
                    for (int d = 0; d < D; d++) {
                        dot += (double)vecs[top[a] * D + d] * vecs[top[b] * D + d];
                        na += (double)vecs[top[a] * D + d] * vecs[top[a] * D + d];
                        nb += (double)vecs[top[b] * D + d] * vecs[top[b] * D + d];
                    }
                    se += na > 0 && nb > 0 ? 1 - dot / sqrt(na * nb) : 1;
                    pairs++;
                }
            ic += sc / pairs;
            ie += se / pairs;
            nl++;
        }
        double mad = 0, distinct = 0;
        for (uint32_t a = 0; a < I; a++) {
            distinct += expo[a] > 0;
            for (uint32_t b = 0; b < I; b++) mad += fabs(expo[a] - expo[b]);
        }
        assert_near(r->coverage[k], distinct / I, 1e-12);
        assert_near(r->gini[k], mad / (2.0 * I * total), 1e-9);
        assert_near(r->novelty[k], nov / total, 1e-9);
        assert_near(r->avg_pop[k], pop / total, 1e-9);
        assert_near(r->ild_category[k], ic / nl, 1e-9);
        assert_near(r->ild_embedding[k], ie / nl, 1e-6);
        assert_true(r->gini[k] > 0.2 && r->gini[k] < 1);
    }
    shelf_eval_result_free(r);
    free(cnt);
    free(expo);
    free(vecs);
    free(table);
    shelf_split_free(sp);
    shop_free(&sh);
}

/* ---- errors and export ---------------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    shop sh = shop_new(30, 40, 8, 0, 0, 22);
    shelf_split *sp = loo(sh.full);
    float *table = calloc((size_t)sh.full->n_users * sh.full->n_items, sizeof *table);
    fake f = fake_new(sp->train, table);
    shelf_eval_opts o;
    shelf_eval_opts_init(&o);
    shelf_eval_result *r = NULL;
    shelf_err err = {0};
    /* the model fails for one user: its error, naming the user */
    f.fail_user = 0;
    while (sp->test_off[f.fail_user + 1] == sp->test_off[f.fail_user] || f.fail_user < 5) f.fail_user++;
    char want[64];
    snprintf(want, sizeof want, "no scores for user %u", f.fail_user);
    for (int th = 1; th <= 2; th++) {
        o.threads = th;
        assert_int_equal(shelf_eval_run(&f.base, sp, &o, NULL, 0, &r, &err), SHELF_ENOTFOUND);
        assert_non_null(strstr(err.msg, want));
        assert_null(r);
    }
    f.fail_user = SHELF_NONE;
    o.ks[1] = 3; /* not ascending */
    assert_int_equal(shelf_eval_run(&f.base, sp, &o, NULL, 0, &r, &err), SHELF_EINVAL);
    shelf_eval_opts_init(&o);
    o.ks[2] = 21;
    assert_int_equal(shelf_eval_run(&f.base, sp, &o, NULL, 0, &r, &err), SHELF_EINVAL);
    shelf_eval_opts_init(&o);
    o.n_ks = 0;
    assert_int_equal(shelf_eval_run(&f.base, sp, &o, NULL, 0, &r, &err), SHELF_EINVAL);
    shelf_eval_opts_init(&o);
    f.base.fitted = 0;
    assert_int_equal(shelf_eval_run(&f.base, sp, &o, NULL, 0, &r, &err), SHELF_EINVAL);
    f.base.fitted = 1;
    f.base.n_items--;
    assert_int_equal(shelf_eval_run(&f.base, sp, &o, NULL, 0, &r, &err), SHELF_EINVAL);
    f.base.n_items++;
    assert_int_equal(shelf_eval_run(&f.base, sp, &o, table, 0, &r, &err), SHELF_EINVAL);
    assert_null(r);

    /* export */
    r = run(&f.base, sp, &o, NULL, 0);
    assert_int_equal(shelf_eval_write_topk(r, sh.full, 0, tmp_path("x.txt"), &err), SHELF_EINVAL);
    assert_int_equal(shelf_eval_write_topk(r, sh.full, T + 1, tmp_path("x.txt"), &err), SHELF_EINVAL);
    assert_int_equal(shelf_eval_write_topk(r, sh.full, 3, "/nonexistent-dir/x/topk.txt", &err), SHELF_EIO);
    const char *path = tmp_path("topk3.txt");
    assert_int_equal(shelf_eval_write_topk(r, sh.full, 3, path, &err), 0);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[256];
    uint32_t j = 0;
    while (fgets(line, sizeof line, fp)) {
        assert_true(j < r->n_eval);
        char expect[256];
        const uint32_t *top = r->topk + (size_t)j * T;
        snprintf(expect, sizeof expect, "u%03u i%03u i%03u i%03u\n", r->users[j], top[0], top[1], top[2]);
        assert_string_equal(line, expect);
        j++;
    }
    fclose(fp);
    assert_int_equal(j, r->n_eval);
    shelf_eval_result_free(r);
    shelf_eval_result_free(NULL);
    free(table);
    shelf_split_free(sp);
    shop_free(&sh);
}

int main(void)
{
    tmp_init("eval");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_metrics_list),
        cmocka_unit_test(test_rank),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_topk_random),
        cmocka_unit_test(test_rating),
        cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_scenario),
        cmocka_unit_test(test_loo_full),
        cmocka_unit_test(test_loo_extremes),
        cmocka_unit_test(test_loo_repeat_target),
        cmocka_unit_test(test_loo_s100),
        cmocka_unit_test(test_temporal),
        cmocka_unit_test(test_cold_split),
        cmocka_unit_test(test_beyond_hand),
        cmocka_unit_test(test_beyond_naive),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
