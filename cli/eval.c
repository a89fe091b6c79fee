/* eval.c: `shelf eval`: fit each model on the training part of a split,
 * measure it on the validation or test targets, print a table, and write
 * JSON and top-k lists; `--tune` picks hyperparameters on validation. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the --tune grids: a few values of each model's main knobs ------------ */
typedef struct grid_axis {
    const char *option;
    const char *values[6];
} grid_axis;
typedef struct grid {
    const char *model;
    grid_axis axis[2];
} grid;
static const grid grids[] = {
    {"pop", {{"pop-half-life", {"0", "30d", "180d", "720d"}}, {NULL, {NULL}}}},
    {"itemknn", {{"knn-shrink", {"20", "500", "2000"}}, {"knn-recency", {"0", "0.2", "0.4", "0.6"}}}},
    {"ease", {{"ease-lambda", {"50", "100", "300", "1000"}}, {"ease-recency", {"0", "0.4"}}}},
    {"als", {{"als-alpha", {"10", "20", "40"}}, {"als-reg", {"1", "10", "30"}}}},
    {"bpr", {{"bpr-lr", {"0.05", "0.1", "0.2"}}, {"bpr-reg", {"0.01", "0.025", "0.05"}}}},
};

/* the model's hyperparameters (its rows of the table) as a JSON object;
 * durations in seconds */
static cJSON *params_json(const shelf_config *cfg, const char *model)
{
    cJSON *o = cJSON_CreateObject();
    size_t n;
    const shelf_cfg_def *t = shelf_model_options(model, &n);
    for (size_t i = 0; i < n; i++) {
        switch (t[i].type) {
        case SHELF_CFG_INT: cJSON_AddNumberToObject(o, t[i].name, (double)shelf_config_int(cfg, t[i].name)); break;
        case SHELF_CFG_DOUBLE:
        case SHELF_CFG_DURATION:
            cJSON_AddNumberToObject(o, t[i].name, shelf_config_double(cfg, t[i].name));
            break;
        case SHELF_CFG_BOOL: cJSON_AddBoolToObject(o, t[i].name, shelf_config_bool(cfg, t[i].name)); break;
        default: {
            const char *v = shelf_config_str(cfg, t[i].name);
            if (v) cJSON_AddStringToObject(o, t[i].name, v);
        }
        }
    }
    return o;
}

static int parse_ks(cli_ctx *c, shelf_eval_opts *o)
{
    const char *s = shelf_config_str(c->cfg, "k");
    o->n_ks = 0;
    while (*s) {
        char *end;
        long k = strtol(s, &end, 10);
        if (end == s || k < 1 || k > SHELF_EVAL_TOPK || o->n_ks == SHELF_EVAL_MAX_K ||
            (o->n_ks && k <= (long)o->ks[o->n_ks - 1]))
            return cli_fail(c, "--k wants ascending cut-offs in 1..%d, at most %d of them, not '%s'", SHELF_EVAL_TOPK,
                            SHELF_EVAL_MAX_K, shelf_config_str(c->cfg, "k"));
        o->ks[o->n_ks++] = (uint32_t)k;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return cli_fail(c, "--k: unexpected '%s'", end);
    }
    return o->n_ks ? 0 : cli_fail(c, "--k is empty");
}

/* index of K in the result, or -1 */
static int k_index(const shelf_eval_result *r, uint32_t k)
{
    for (int i = 0; i < r->n_ks; i++)
        if (r->ks[i] == k) return i;
    return -1;
}

typedef struct run {
    char label[48];
    shelf_eval_result *res;
    double fit_s;
    cJSON *params;
} run;

/* Fits model on train and evaluates; fills *r. The model is freed unless
 * keep is given. */
static int fit_and_eval(cli_ctx *c, const char *name, const shelf_snapshot *fit_on, const shelf_split *sp,
                        const shelf_eval_opts *eo, run *r)
{
    shelf_model *m = NULL;
    shelf_err err = {0};
    if (shelf_model_new(name, &m, &err)) return cli_fail(c, "%s", err.msg);
    shelf_progress *p = shelf_progress_new(name, 0, c->progress);
    /* cold-item validation targets are items no model learned: with
     * --cold-fill the model cannot see them scored during its fit, so it
     * trains its whole schedule instead of stopping on them */
    int cold_fill = eo->protocol == SHELF_PROTO_COLD_ITEM && eo->cold_fill;
    if (fit_on == sp->train && sp->n_valid && !cold_fill) shelf_model_set_valid(m, sp->valid_off, sp->valid_item);
    double t0 = shelf_now();
    int rc = shelf_model_fit(m, fit_on, c->cfg, p);
    r->fit_s = shelf_now() - t0;
    shelf_progress_finish(p);
    if (rc) {
        cli_fail(c, "%s", shelf_model_errmsg(m));
        shelf_model_free(m);
        return 1;
    }
    rc = shelf_eval_run(m, sp, eo, NULL, 0, &r->res, &err);
    shelf_model_free(m);
    if (rc) return cli_fail(c, "%s: %s", name, err.msg);
    r->params = params_json(c->cfg, name);
    return 0;
}

static void print_header(const shelf_eval_opts *eo)
{
    printf("%-14s %8s %8s", "model", "fit s", "score s");
    for (int i = 0; i < eo->n_ks; i++) printf("   HR@%-3u NDCG@%-3u", eo->ks[i], eo->ks[i]);
    printf("  cov@%-3u\n", eo->ks[eo->n_ks - 1]);
}

static void print_row(const run *r)
{
    const shelf_eval_result *e = r->res;
    printf("%-14s %8.2f %8.2f", r->label, r->fit_s, e->score_seconds);
    for (int i = 0; i < e->n_ks; i++) printf("  %7.4f  %7.4f", e->mean[i][SHELF_M_HR], e->mean[i][SHELF_M_NDCG]);
    printf("  %6.4f\n", e->coverage[e->n_ks - 1]);
}

static cJSON *run_json(const run *r)
{
    const shelf_eval_result *e = r->res;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", r->label);
    cJSON_AddNumberToObject(o, "fit_seconds", r->fit_s);
    cJSON_AddNumberToObject(o, "score_seconds", e->score_seconds);
    cJSON_AddNumberToObject(o, "users", e->n_eval);
    cJSON *m = cJSON_AddObjectToObject(o, "metrics");
    char key[32];
    for (int i = 0; i < e->n_ks; i++) {
        for (int k = 0; k < SHELF_M_COUNT; k++) {
            snprintf(key, sizeof key, "%s@%u", shelf_metric_name(k), e->ks[i]);
            cJSON_AddNumberToObject(m, key, e->mean[i][k]);
        }
        snprintf(key, sizeof key, "coverage@%u", e->ks[i]);
        cJSON_AddNumberToObject(m, key, e->coverage[i]);
        snprintf(key, sizeof key, "gini@%u", e->ks[i]);
        cJSON_AddNumberToObject(m, key, e->gini[i]);
        snprintf(key, sizeof key, "novelty@%u", e->ks[i]);
        cJSON_AddNumberToObject(m, key, e->novelty[i]);
        snprintf(key, sizeof key, "ild_category@%u", e->ks[i]);
        cJSON_AddNumberToObject(m, key, e->ild_category[i]);
        snprintf(key, sizeof key, "avg_popularity@%u", e->ks[i]);
        cJSON_AddNumberToObject(m, key, e->avg_pop[i]);
        snprintf(key, sizeof key, "long_tail@%u", e->ks[i]);
        cJSON_AddNumberToObject(m, key, e->long_tail[i]);
    }
    cJSON_AddItemToObject(o, "params", cJSON_Duplicate(r->params, 1));
    return o;
}

/* --tune: every grid point on validation, the best NDCG@10 (or the largest
 * K's) set into the configuration. */
static int tune(cli_ctx *c, const char *name, const shelf_split *sp, const shelf_eval_opts *eo, cJSON *trace)
{
    const grid *g = NULL;
    for (size_t i = 0; i < sizeof grids / sizeof grids[0]; i++)
        if (strcmp(grids[i].model, name) == 0) g = &grids[i];
    if (!g) return 0;
    shelf_eval_opts vo = *eo;
    vo.valid = 1;
    vo.protocol = eo->protocol == SHELF_PROTO_LOO_S100 ? SHELF_PROTO_LOO_S100 : eo->protocol;
    double best = -1;
    const char *best_v[2] = {NULL, NULL};
    for (int a = 0; g->axis[0].values[a]; a++) {
        for (int b = 0; b == 0 || (g->axis[1].option && g->axis[1].values[b]); b++) {
            shelf_config_set(c->cfg, g->axis[0].option, g->axis[0].values[a], NULL, NULL);
            if (g->axis[1].option) shelf_config_set(c->cfg, g->axis[1].option, g->axis[1].values[b], NULL, NULL);
            run r = {0};
            if (fit_and_eval(c, name, sp->train, sp, &vo, &r)) return 1;
            int ki = k_index(r.res, 10);
            if (ki < 0) ki = r.res->n_ks - 1;
            double v = r.res->mean[ki][SHELF_M_NDCG];
            char point[160];
            snprintf(point, sizeof point, "%s=%s%s%s%s%s", g->axis[0].option, g->axis[0].values[a],
                     g->axis[1].option ? " " : "", g->axis[1].option ? g->axis[1].option : "",
                     g->axis[1].option ? "=" : "", g->axis[1].option ? g->axis[1].values[b] : "");
            fprintf(stderr, "tune %s: %s -> valid NDCG@%u %.4f\n", name, point, r.res->ks[ki], v);
            cJSON *pt = run_json(&r);
            cJSON_AddItemToArray(trace, pt);
            cJSON_Delete(r.params);
            shelf_eval_result_free(r.res);
            if (v > best) {
                best = v;
                best_v[0] = g->axis[0].values[a];
                best_v[1] = g->axis[1].option ? g->axis[1].values[b] : NULL;
            }
        }
    }
    shelf_config_set(c->cfg, g->axis[0].option, best_v[0], NULL, NULL);
    if (best_v[1]) shelf_config_set(c->cfg, g->axis[1].option, best_v[1], NULL, NULL);
    fprintf(stderr, "tune %s: chose %s=%s%s%s%s%s (valid NDCG %.4f)\n", name, g->axis[0].option, best_v[0],
            best_v[1] ? " " : "", best_v[1] ? g->axis[1].option : "", best_v[1] ? "=" : "", best_v[1] ? best_v[1] : "",
            best);
    return 0;
}

int cmd_eval(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s' (the data file goes after --data)", c->pos[0]), 2;
    shelf_eval_opts eo;
    shelf_eval_opts_init(&eo);
    if (parse_ks(c, &eo)) return 2;
    const char *proto = shelf_config_str(c->cfg, "protocol");
    int rating_proto = strcmp(proto, "ml100k-5fold") == 0 || strcmp(proto, "ratings-80-20") == 0;
    if (!rating_proto) shelf_protocol_parse(proto, &eo.protocol);
    eo.valid = shelf_config_bool(c->cfg, "valid");
    eo.seed = (uint64_t)shelf_config_int(c->cfg, "seed");
    eo.threads = cli_threads(c);
    eo.progress = c->progress;
    eo.cold_fill = (uint32_t)shelf_config_int(c->cfg, "cold-fill");

    /* the model list, checked before any work */
    char models[512];
    snprintf(models, sizeof models, "%s", shelf_config_str(c->cfg, "models"));
    char *names[16];
    int n_models = 0;
    for (char *save = NULL, *t = strtok_r(models, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n_models == 16) return cli_fail(c, "at most 16 models"), 2;
        shelf_model *m;
        shelf_err err = {0};
        if (shelf_model_new(t, &m, &err)) return cli_fail(c, "%s", err.msg), 2;
        shelf_model_free(m);
        names[n_models++] = t;
    }
    if (!n_models) return cli_fail(c, "--models is empty"), 2;
    if (rating_proto) return cli_eval_ratings(c, names, n_models, strcmp(proto, "ml100k-5fold") == 0);

    shelf_snapshot *s = NULL;
    shelf_split *sp = NULL;
    if (cli_load_snapshot(c, &s)) return 1;
    const char *scn = shelf_config_str(c->cfg, "scenario");
    char *scn_doc = NULL; /* --scenario: its stages choose the lists */
    if ((scn && !(scn_doc = cli_read_text(c, scn, 1u << 20))) || cli_make_split(c, s, eo.protocol, &sp)) {
        shelf_snapshot_free(s);
        free(scn_doc);
        return 1;
    }
    eo.scenario = scn_doc;
    int leak = shelf_config_bool(c->cfg, "pop-leak-targets");
    if (leak)
        fprintf(stderr, "shelf eval: --pop-leak-targets: popularity is counted over ALL interactions, test targets "
                        "included (a protocol check that reproduces published PopRec rows; not a valid result)\n");

    run runs[16];
    memset(runs, 0, sizeof runs);
    cJSON *out = cJSON_CreateObject();
    const char *data = shelf_config_str(c->cfg, "data");
    cJSON_AddStringToObject(out, "data", data ? data : shelf_config_str(c->cfg, "store"));
    cJSON_AddStringToObject(out, "protocol", shelf_config_str(c->cfg, "protocol"));
    cJSON_AddStringToObject(out, "targets", eo.valid ? "valid" : "test");
    cJSON_AddNumberToObject(out, "users", s->n_users);
    cJSON_AddNumberToObject(out, "items", s->n_items);
    cJSON_AddNumberToObject(out, "events", (double)s->n_events);
    cJSON_AddNumberToObject(out, "threads", cli_threads(c));
    cJSON *arr = cJSON_AddArrayToObject(out, "models");
    cJSON *tuning = shelf_config_bool(c->cfg, "tune") ? cJSON_AddArrayToObject(out, "tuning") : NULL;
    int status = 0, header = 0;
    for (int i = 0; i < n_models && !status; i++) {
        if (tuning && tune(c, names[i], sp, &eo, tuning)) {
            status = 1;
            break;
        }
        int leaky = leak && strcmp(names[i], "pop") == 0;
        snprintf(runs[i].label, sizeof runs[i].label, "%s%s", names[i], leaky ? "(leak)" : "");
        if (fit_and_eval(c, names[i], leaky ? s : sp->train, sp, &eo, &runs[i])) {
            status = 1;
            break;
        }
        if (!header++) {
            printf("%s, %s, %s targets, %u users evaluated\n", data ? data : shelf_config_str(c->cfg, "store"),
                   shelf_config_str(c->cfg, "protocol"), eo.valid ? "validation" : "test", runs[i].res->n_eval);
            print_header(&eo);
        }
        print_row(&runs[i]);
        fflush(stdout);
        cJSON_AddItemToArray(arr, run_json(&runs[i]));
    }
    /* paired bootstrap of NDCG@10 (or the largest K) against the best model */
    int done = 0;
    while (done < n_models && runs[done].res) done++;
    if (!status && done > 1) {
        int ki = k_index(runs[0].res, 10);
        if (ki < 0) ki = runs[0].res->n_ks - 1;
        int best = 0;
        for (int i = 1; i < done; i++)
            if (runs[i].res->mean[ki][SHELF_M_NDCG] > runs[best].res->mean[ki][SHELF_M_NDCG]) best = i;
        printf("paired bootstrap (1000 resamples) of NDCG@%u against %s:\n", runs[0].res->ks[ki], runs[best].label);
        cJSON *bs = cJSON_AddArrayToObject(out, "bootstrap");
        for (int i = 0; i < done; i++) {
            if (i == best) continue;
            double d, lo, hi, p;
            shelf_eval_bootstrap(runs[best].res->per_user[ki][SHELF_M_NDCG], runs[i].res->per_user[ki][SHELF_M_NDCG],
                                 runs[best].res->n_eval, 1000, eo.seed, &d, &lo, &hi, &p);
            printf("  %-14s %+.4f [%+.4f, %+.4f]\n", runs[i].label, -d, -hi, -lo);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "model", runs[i].label);
            cJSON_AddStringToObject(o, "against", runs[best].label);
            cJSON_AddNumberToObject(o, "ndcg_diff", -d);
            cJSON_AddNumberToObject(o, "ci95_lo", -hi);
            cJSON_AddNumberToObject(o, "ci95_hi", -lo);
            cJSON_AddItemToArray(bs, o);
        }
    }
    /* top-k lists for the independent scorer */
    const char *topk = shelf_config_str(c->cfg, "topk-out");
    for (int i = 0; !status && topk && i < done; i++) {
        char path[4096];
        if (done == 1) snprintf(path, sizeof path, "%s", topk);
        else snprintf(path, sizeof path, "%s.%s", topk, names[i]);
        shelf_err err = {0};
        if (shelf_eval_write_topk(runs[i].res, sp->train, SHELF_EVAL_TOPK, path, &err))
            status = cli_fail(c, "%s", err.msg);
    }
    const char *jpath = shelf_config_str(c->cfg, "json");
    if (!status && jpath) {
        char *text = cJSON_Print(out);
        FILE *f = fopen(jpath, "w");
        if (!text || !f || fputs(text, f) < 0 || fputc('\n', f) == EOF) status = cli_fail(c, "%s: cannot write", jpath);
        if (f && fclose(f) != 0 && !status) status = cli_fail(c, "%s: cannot write", jpath);
        free(text);
    }
    for (int i = 0; i < n_models; i++) {
        shelf_eval_result_free(runs[i].res);
        cJSON_Delete(runs[i].params);
    }
    cJSON_Delete(out);
    shelf_split_free(sp);
    shelf_snapshot_free(s);
    free(scn_doc);
    return status;
}
