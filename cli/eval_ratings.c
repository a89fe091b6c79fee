/* eval_ratings.c: the rating-prediction protocols of `shelf eval`:
 * ML100K-5FOLD (the official u1..u5 base/test files, RMSE and MAE per fold
 * and mean) and a seeded random 80/20 split of any data's rating events. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* held-out ratings as dense indices of the training snapshot */
typedef struct triples {
    uint32_t *user, *item;
    float *truth;
    size_t n, cap;
} triples;

static int triples_add(triples *t, uint32_t u, uint32_t i, float v)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 4096;
        uint32_t *nu = realloc(t->user, cap * sizeof *nu);
        if (nu) t->user = nu;
        uint32_t *ni = realloc(t->item, cap * sizeof *ni);
        if (ni) t->item = ni;
        float *nv = realloc(t->truth, cap * sizeof *nv);
        if (nv) t->truth = nv;
        if (!nu || !ni || !nv) return SHELF_ENOMEM;
        t->cap = cap;
    }
    t->user[t->n] = u;
    t->item[t->n] = i;
    t->truth[t->n] = v;
    t->n++;
    return 0;
}

static void triples_free(triples *t)
{
    free(t->user);
    free(t->item);
    free(t->truth);
    memset(t, 0, sizeof *t);
}

/* The snapshot of one file imported as MovieLens ratings (u.item beside). */
static int load_ml(cli_ctx *c, const char *path, const char *items, shelf_snapshot **out)
{
    shelf_store *st;
    shelf_err err = {0};
    if (shelf_store_open(":memory:", SHELF_STORE_CREATE, &st, &err)) return cli_fail(c, "%s", err.msg);
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_ML100K);
    o.items_path = items;
    int rc = shelf_import_file(st, path, &o, NULL);
    if (!rc) rc = shelf_snapshot_from_store(st, 0, out);
    if (rc) cli_fail(c, "%s", shelf_store_errmsg(st));
    shelf_store_close(st);
    return rc ? 1 : 0;
}

/* test ratings of `test` mapped onto the indices of `train` (external ids) */
static int map_test(cli_ctx *c, const shelf_snapshot *train, const shelf_snapshot *test, triples *t)
{
    shelf_strmap *um = shelf_strmap_new(train->n_users), *im = shelf_strmap_new(train->n_items);
    int rc = (!um || !im) ? SHELF_ENOMEM : 0;
    for (uint32_t u = 0; !rc && u < train->n_users; u++) {
        const char *e = train->user_ext + train->user_ext_off[u];
        rc = shelf_strmap_put(um, e, strlen(e), u);
    }
    for (uint32_t i = 0; !rc && i < train->n_items; i++) {
        const char *e = train->item_ext + train->item_ext_off[i];
        rc = shelf_strmap_put(im, e, strlen(e), i);
    }
    for (uint32_t u = 0; !rc && u < test->n_users; u++) {
        const char *ue = test->user_ext + test->user_ext_off[u];
        uint32_t tu = SHELF_NONE;
        if (!shelf_strmap_get(um, ue, strlen(ue), &tu)) tu = SHELF_NONE;
        for (uint64_t p = test->seq_off[u]; !rc && p < test->seq_off[u + 1]; p++) {
            const char *ie = test->item_ext + test->item_ext_off[test->seq_item[p]];
            uint32_t ti;
            if (!shelf_strmap_get(im, ie, strlen(ie), &ti)) {
                rc = cli_fail(c, "test item '%s' is not in the training catalogue", ie) ? SHELF_EINVAL : 0;
                break;
            }
            rc = triples_add(t, tu, ti, test->seq_value[p]);
        }
    }
    shelf_strmap_free(um);
    shelf_strmap_free(im);
    if (rc == SHELF_ENOMEM) cli_fail(c, "out of memory");
    return rc ? 1 : 0;
}

static int fit_predict(cli_ctx *c, const char *name, const shelf_snapshot *train, const triples *t, double *rmse,
                       double *mae, double *fit_s)
{
    shelf_model *m = NULL;
    shelf_err err = {0};
    if (shelf_model_new(name, &m, &err)) return cli_fail(c, "%s", err.msg);
    double t0 = shelf_now();
    int rc = shelf_model_fit(m, train, c->cfg, NULL);
    *fit_s = shelf_now() - t0;
    if (rc) cli_fail(c, "%s", shelf_model_errmsg(m));
    else if ((rc = shelf_eval_ratings(m, t->user, t->item, t->truth, t->n, NULL, rmse, mae, &err)))
        cli_fail(c, "%s: %s", name, err.msg);
    shelf_model_free(m);
    return rc ? 1 : 0;
}

/* the first of dir/name and dir/name.xz that exists */
static int fold_file(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    if (access(buf, R_OK) == 0) return 0;
    snprintf(buf, cap, "%s/%s.xz", dir, name);
    return access(buf, R_OK) == 0 ? 0 : -1;
}

int cli_eval_ratings(cli_ctx *c, char **names, int n_models, int ml100k)
{
    cJSON *out = cJSON_CreateObject();
    const char *data = shelf_config_str(c->cfg, "data");
    cJSON_AddStringToObject(out, "data", data ? data : shelf_config_str(c->cfg, "store"));
    cJSON_AddStringToObject(out, "protocol", ml100k ? "ml100k-5fold" : "ratings-80-20");
    cJSON *arr = cJSON_AddArrayToObject(out, "models");
    int n_folds = ml100k ? 5 : 1, status = 0;
    double rmse[16][5] = {{0}}, mae[16][5] = {{0}}, fit[16][5] = {{0}};
    size_t n_test[5] = {0};

    for (int k = 0; k < n_folds && !status; k++) {
        shelf_snapshot *train = NULL, *test = NULL;
        triples t = {0};
        if (ml100k) {
            if (!data) return cli_fail(c, "--protocol ml100k-5fold needs --data DIR (the MovieLens-100k folder)"), 2;
            char base[4096], tst[4096], items[4096], name[32];
            snprintf(name, sizeof name, "u%d.base", k + 1);
            if (fold_file(base, sizeof base, data, name)) status = cli_fail(c, "%s/%s(.xz): missing", data, name);
            snprintf(name, sizeof name, "u%d.test", k + 1);
            if (!status && fold_file(tst, sizeof tst, data, name))
                status = cli_fail(c, "%s/%s(.xz): missing", data, name);
            if (!status && fold_file(items, sizeof items, data, "u.item"))
                status = cli_fail(c, "%s/u.item: missing", data);
            if (!status) status = load_ml(c, base, items, &train);
            if (!status) status = load_ml(c, tst, items, &test);
            if (!status) status = map_test(c, train, test, &t);
        } else {
            shelf_snapshot *all = NULL;
            if ((status = cli_load_snapshot(c, &all))) break;
            uint32_t rating = SHELF_NONE;
            for (uint32_t ty = 0; ty < all->n_types; ty++)
                if (strcmp(all->type_name + all->type_name_off[ty], "rating") == 0) rating = ty;
            uint8_t *keep = malloc(all->n_events ? all->n_events : 1);
            uint64_t seed = (uint64_t)shelf_config_int(c->cfg, "seed");
            if (!keep) status = cli_fail(c, "out of memory");
            /* held out by (user, item) pair, not by event: a review stored
             * twice (the Amazon 2018 files repeat some) never sits on both
             * sides of the split */
            for (uint32_t u = 0; !status && u < all->n_users; u++)
                for (uint64_t p = all->seq_off[u]; p < all->seq_off[u + 1]; p++) {
                    keep[p] = 1;
                    uint64_t pair = (uint64_t)u << 32 | all->seq_item[p];
                    int held_out = (double)(shelf_hash64(&pair, sizeof pair, seed) >> 11) * 0x1.0p-53 < 0.2;
                    if (all->seq_type[p] == rating && held_out) {
                        keep[p] = 0;
                        if (triples_add(&t, u, all->seq_item[p], all->seq_value[p])) status = cli_fail(c, "out of memory");
                    }
                }
            shelf_err err = {0};
            if (!status && rating == SHELF_NONE) status = cli_fail(c, "the data has no events of type 'rating'");
            if (!status && shelf_snapshot_subset(all, keep, &train, &err)) status = cli_fail(c, "%s", err.msg);
            free(keep);
            shelf_snapshot_free(all);
        }
        n_test[k] = t.n;
        for (int i = 0; !status && i < n_models; i++)
            status = fit_predict(c, names[i], train, &t, &rmse[i][k], &mae[i][k], &fit[i][k]);
        if (!status) {
            if (k == 0) printf("%-12s %6s %10s %8s %8s %8s\n", "model", "fold", "test", "fit s", "RMSE", "MAE");
            for (int i = 0; i < n_models; i++)
                printf("%-12s %6d %10zu %8.2f %8.4f %8.4f\n", names[i], k + 1, t.n, fit[i][k], rmse[i][k], mae[i][k]);
            fflush(stdout);
        }
        triples_free(&t);
        shelf_snapshot_free(train);
        shelf_snapshot_free(test);
    }
    for (int i = 0; !status && i < n_models; i++) {
        double r = 0, a = 0, f = 0;
        cJSON *o = cJSON_CreateObject(), *folds = cJSON_CreateArray();
        for (int k = 0; k < n_folds; k++) {
            r += rmse[i][k] / n_folds;
            a += mae[i][k] / n_folds;
            f += fit[i][k] / n_folds;
            cJSON *fo = cJSON_CreateObject();
            cJSON_AddNumberToObject(fo, "fold", k + 1);
            cJSON_AddNumberToObject(fo, "test_ratings", (double)n_test[k]);
            cJSON_AddNumberToObject(fo, "rmse", rmse[i][k]);
            cJSON_AddNumberToObject(fo, "mae", mae[i][k]);
            cJSON_AddNumberToObject(fo, "fit_seconds", fit[i][k]);
            cJSON_AddItemToArray(folds, fo);
        }
        printf("%-12s %6s %10s %8.2f %8.4f %8.4f\n", names[i], "mean", "", f, r, a);
        cJSON_AddStringToObject(o, "model", names[i]);
        cJSON_AddNumberToObject(o, "rmse", r);
        cJSON_AddNumberToObject(o, "mae", a);
        cJSON_AddNumberToObject(o, "fit_seconds", f);
        cJSON_AddItemToObject(o, "folds", folds);
        cJSON_AddItemToArray(arr, o);
    }
    const char *jpath = shelf_config_str(c->cfg, "json");
    if (!status && jpath) {
        char *text = cJSON_Print(out);
        FILE *f = fopen(jpath, "w");
        if (!text || !f || fputs(text, f) < 0) status = cli_fail(c, "%s: cannot write", jpath);
        if (f && fclose(f) != 0 && !status) status = cli_fail(c, "%s: cannot write", jpath);
        free(text);
    }
    cJSON_Delete(out);
    return status;
}
