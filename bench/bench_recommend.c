/* bench_recommend.c: the C side of bench/python_recommend.sh. Fits EASE on
 * a store's snapshot, then recommends for the first U users one at a time as
 * a caller of the ABI does: shelf_model_score on the user's whole history
 * (items, types, times), its seen items excluded, shelf_topk of N. Checks
 * the lists first (N distinct unseen items each), then prints one JSON line
 * with the best of REPS timed passes and a checksum of the lists that the
 * Python side must reproduce.
 *
 *   cmake --build build --target bench_recommend
 *   build/bench_recommend STORE [U N REPS EASE_LAMBDA]
 *
 * Dimension letters: U users timed, I items, N list length. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shelf/shelf.h"

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_recommend: %s: %s\n", what, msg);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) die("calloc", "out of memory");
    return p;
}

/* One pass: the lists of users 0..U-1 into top[U * N] (SHELF_NONE padded). */
static void recommend_all(const shelf_model *m, const shelf_snapshot *s, uint32_t U, uint32_t N, float *scores,
                          uint8_t *seen, uint32_t *top)
{
    const uint32_t I = s->n_items;
    shelf_err err = {0};
    for (uint32_t u = 0; u < U; u++) {
        uint64_t a = s->seq_off[u], b = s->seq_off[u + 1];
        shelf_query q = {.user = u, .items = s->seq_item + a, .types = s->seq_type + a, .ts = s->seq_ts + a,
                         .n = (uint32_t)(b - a)};
        if (shelf_model_score(m, &q, scores, &err)) die("shelf_model_score", err.msg);
        for (uint64_t e = s->ui_off[u]; e < s->ui_off[u + 1]; e++) seen[s->ui_col[e]] = 1;
        uint32_t k = shelf_topk(scores, I, seen, N, top + (size_t)u * N);
        for (uint32_t j = k; j < N; j++) top[(size_t)u * N + j] = SHELF_NONE;
        for (uint64_t e = s->ui_off[u]; e < s->ui_off[u + 1]; e++) seen[s->ui_col[e]] = 0;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s STORE [U N REPS EASE_LAMBDA]\n", argv[0]);
        return 2;
    }
    uint32_t U = argc > 2 ? (uint32_t)atoi(argv[2]) : 1000, N = argc > 3 ? (uint32_t)atoi(argv[3]) : 10;
    int reps = argc > 4 ? atoi(argv[4]) : 3;
    const char *lambda = argc > 5 ? argv[5] : "100";
    shelf_log_set_level(SHELF_LOG_WARN);

    shelf_err err = {0};
    shelf_store *st;
    shelf_snapshot *s;
    if (shelf_store_open(argv[1], SHELF_STORE_READONLY, &st, &err)) die(argv[1], err.msg);
    if (shelf_snapshot_from_store(st, 0, &s)) die(argv[1], shelf_store_errmsg(st));
    shelf_store_close(st);
    if (U > s->n_users) U = s->n_users;

    shelf_config *cfg = shelf_config_new();
    shelf_model *m;
    if (!cfg || shelf_config_set(cfg, "ease-lambda", lambda, "ease-lambda", &err)) die("config", err.msg);
    if (shelf_model_new("ease", &m, &err)) die("ease", err.msg);
    double t0 = shelf_now();
    if (shelf_model_fit(m, s, cfg, NULL)) die("fit", shelf_model_errmsg(m));
    double fit_s = shelf_now() - t0;

    const uint32_t I = s->n_items;
    float *scores = xcalloc(I, sizeof *scores);
    uint8_t *seen = xcalloc(I, 1);
    uint32_t *top = xcalloc((size_t)U * N, sizeof *top);

    /* check before timing: each list N distinct items, none seen */
    recommend_all(m, s, U, N, scores, seen, top);
    for (uint32_t u = 0; u < U; u++)
        for (uint32_t j = 0; j < N; j++) {
            uint32_t it = top[(size_t)u * N + j];
            if (it == SHELF_NONE) continue;
            for (uint64_t e = s->ui_off[u]; e < s->ui_off[u + 1]; e++)
                if (s->ui_col[e] == it) die("check", "a seen item was recommended");
            for (uint32_t k = 0; k < j; k++)
                if (top[(size_t)u * N + k] == it) die("check", "an item twice in a list");
        }
    uint64_t sum = 0;
    for (size_t k = 0; k < (size_t)U * N; k++) sum = sum * 1000003u + top[k];

    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        t0 = shelf_now();
        recommend_all(m, s, U, N, scores, seen, top);
        double t = shelf_now() - t0;
        if (t < best) best = t;
    }
    uint64_t hist = s->seq_off[U];
    printf("{\"bench\": \"recommend\", \"impl\": \"c\", \"model\": \"ease\", \"users\": %u, \"n\": %u, \"items\": %u, "
           "\"events_per_user\": %.1f, \"fit_seconds\": %.3f, \"seconds\": %.6f, \"us_per_user\": %.2f, "
           "\"checksum\": \"%016llx\"}\n",
           U, N, I, U ? (double)hist / U : 0.0, fit_s, best, 1e6 * best / (U ? U : 1), (unsigned long long)sum);
    free(top);
    free(seen);
    free(scores);
    shelf_model_free(m);
    shelf_config_free(cfg);
    shelf_snapshot_free(s);
    return 0;
}
