/* recommend.c: shelf as a library, from the public headers and libshelf only
 * (pkg-config shelf). Generates a small shop into a store, fits item-kNN on
 * it, and prints the top 5 items for a few shoppers with the model's
 * explanation (the first three shoppers with five events or more). Build: make -C examples (see examples/Makefile).
 *
 * usage: recommend [STORE]   (default: an in-memory store) */
#include <shelf/shelf.h>

#include <stdio.h>
#include <stdlib.h>

#define TOP 5

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "recommend: %s: %s\n", what, msg);
    return 1;
}

/* indices of the TOP highest scores, best first, skipping the history */
static void top_items(const float *scores, uint32_t n, const uint32_t *hist, uint32_t n_hist, uint32_t *out)
{
    for (int k = 0; k < TOP; k++) out[k] = SHELF_NONE;
    for (uint32_t i = 0; i < n; i++) {
        int seen = 0;
        for (uint32_t h = 0; h < n_hist; h++) seen |= hist[h] == i;
        if (seen) continue;
        for (int k = 0; k < TOP; k++) {
            if (out[k] != SHELF_NONE && scores[out[k]] >= scores[i]) continue;
            for (int j = TOP - 1; j > k; j--) out[j] = out[j - 1];
            out[k] = i;
            break;
        }
    }
}

int main(int argc, char **argv)
{
    shelf_err err = {0};
    shelf_store *st;
    if (shelf_store_open(argc > 1 ? argv[1] : ":memory:", SHELF_STORE_CREATE, &st, &err))
        return fail("open", err.msg);
    shelf_gen_opts g;
    shelf_gen_opts_init(&g); /* 200 shoppers, 100 items, 5,000 events */
    if (shelf_gen_store(st, &g)) return fail("gen", shelf_store_errmsg(st));
    shelf_snapshot *s;
    if (shelf_snapshot_from_store(st, 0, &s)) return fail("snapshot", shelf_store_errmsg(st));

    shelf_model *m;
    shelf_config *opts = shelf_config_new();
    if (!opts) return fail("config", "out of memory");
    if (shelf_model_new("itemknn", &m, &err)) return fail("model", err.msg);
    if (shelf_model_fit(m, s, opts, NULL)) return fail("fit", shelf_model_errmsg(m));

    float *scores = malloc(s->n_items * sizeof *scores);
    if (!scores) return fail("scores", "out of memory");
    printf("%u shoppers, %u items; item-kNN\n", s->n_users, s->n_items);
    for (uint32_t u = 0, shown = 0; u < s->n_users && shown < 3; u++) {
        uint64_t lo = s->seq_off[u], hi = s->seq_off[u + 1];
        if (hi - lo < 5) continue; /* shoppers with some history */
        shown++;
        shelf_query q = {.user = u, .items = s->seq_item + lo, .n = (uint32_t)(hi - lo)};
        if (shelf_model_score(m, &q, scores, NULL)) return fail("score", shelf_model_errmsg(m));
        uint32_t top[TOP];
        top_items(scores, s->n_items, q.items, q.n, top);
        printf("shopper %s (%u events):", s->user_ext + s->user_ext_off[u], q.n);
        for (int k = 0; k < TOP && top[k] != SHELF_NONE; k++) printf(" %s", s->item_ext + s->item_ext_off[top[k]]);
        shelf_reason r;
        if (top[0] != SHELF_NONE && shelf_model_explain(m, &q, top[0], &r, NULL) == 0)
            printf("  (first: %s)", r.text);
        printf("\n");
    }
    free(scores);
    shelf_model_free(m);
    shelf_config_free(opts);
    shelf_snapshot_free(s);
    shelf_store_close(st);
    return 0;
}
