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
    char label[72];
    shelf_eval_result *res;
    double fit_s;
    cJSON *params;
} run;

/* Fits model name on fit_on into *out (the caller frees it); r->fit_s. */
static int fit_model(cli_ctx *c, const char *name, const shelf_snapshot *fit_on, const shelf_split *sp, int cold_fill,
                     shelf_model **out, run *r)
{
    shelf_model *m = NULL;
    shelf_err err = {0};
    if (shelf_model_new(name, &m, &err)) return cli_fail(c, "%s", err.msg);
    shelf_progress *p = shelf_progress_new(name, 0, c->progress);
    /* cold-item validation targets are items no model learned: with
     * --cold-fill the model cannot see them scored during its fit, so it
     * trains its whole schedule instead of stopping on them */
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
    *out = m;
    return 0;
}

/* Evaluates the fitted model m; fills r->res and r->params. */
static int eval_model(cli_ctx *c, const shelf_model *m, const char *name, const shelf_split *sp,
                      const shelf_eval_opts *eo, run *r)
{
    shelf_err err = {0};
    uint32_t dim = 0; /* intra-list diversity by the model's own item vectors, when it has them */
    const float *vecs = m->vt->item_vectors ? m->vt->item_vectors(m, &dim) : NULL;
    if (shelf_eval_run(m, sp, eo, vecs, vecs ? dim : 0, &r->res, &err)) return cli_fail(c, "%s: %s", name, err.msg);
    r->params = params_json(c->cfg, name);
    return 0;
}

/* Fits model on train and evaluates; fills *r. */
static int fit_and_eval(cli_ctx *c, const char *name, const shelf_snapshot *fit_on, const shelf_split *sp,
                        const shelf_eval_opts *eo, run *r)
{
    shelf_model *m = NULL;
    if (fit_model(c, name, fit_on, sp, eo->protocol == SHELF_PROTO_COLD_ITEM && eo->cold_fill, &m, r)) return 1;
    int rc = eval_model(c, m, name, sp, eo, r);
    shelf_model_free(m);
    return rc;
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

/* ---- --scenario: several documents, every model fitted once ------------------------- */

#define MAX_RUNS 128
#define MAX_SCN 32

typedef struct scn_set {
    int n;
    char *doc[MAX_SCN];
    char name[MAX_SCN][48]; /* the file's name without directory and .json */
} scn_set;

static void scn_set_free(scn_set *t)
{
    for (int k = 0; k < t->n; k++) free(t->doc[k]);
    t->n = 0;
}

static int read_scenarios(cli_ctx *c, const char *list, scn_set *t)
{
    if (!list) return 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        if (t->n == MAX_SCN) return cli_fail(c, "--scenario: at most %d files", MAX_SCN);
        if (!(t->doc[t->n] = cli_read_text(c, f, 1u << 20))) return 1;
        const char *base = strrchr(f, '/');
        base = base ? base + 1 : f;
        size_t len = strlen(base); /* the name without its .json: lt_0.5.json is lt_0.5 */
        if (len > 5 && !strcmp(base + len - 5, ".json")) len -= 5;
        if (len >= sizeof t->name[0]) return cli_fail(c, "--scenario: %s: a file name of at most %zu characters, please", f,
                                                      sizeof t->name[0] - 6);
        snprintf(t->name[t->n], sizeof t->name[0], "%.*s", (int)len, base);
        t->n++;
    }
    return 0;
}

/* where the rows go: the table on stdout (its header before the first) and the JSON */
typedef struct row_out {
    const char *data;
    cJSON *arr;
    const shelf_eval_opts *eo;
    const shelf_split *sp;
    int header;
} row_out;

static void report_row(row_out *ro, const run *r)
{
    if (!ro->header++) {
        /* who was not, and why */
        uint32_t U = ro->sp->train->n_users, with = cli_split_users(ro->sp, ro->eo->valid);
        printf("%s, %s, %s targets, %u users evaluated (of %u: %u without a %s target, %u whose targets were all "
               "in their history)\n",
               ro->data, shelf_protocol_name(ro->eo->protocol), ro->eo->valid ? "validation" : "test", r->res->n_eval,
               U, U - with, ro->eo->valid ? "validation" : "test", with > r->res->n_eval ? with - r->res->n_eval : 0);
        print_header(ro->eo);
    }
    print_row(r);
    fflush(stdout);
    cJSON_AddItemToArray(ro->arr, run_json(r));
}

/* Every model fitted first (a scenario's model sources name the others),
 * then each measured under each scenario: rows "MODEL@SCENARIO" (just
 * "MODEL" when there is one scenario). */
static int scenario_rows(cli_ctx *c, char **names, int n_models, const shelf_split *sp, const shelf_eval_opts *eo,
                         const scn_set *scn, run *runs, int *n_runs, row_out *ro)
{
    if (n_models * scn->n > MAX_RUNS) return cli_fail(c, "--scenario: at most %d models x scenarios", MAX_RUNS);
    shelf_model *fit[16] = {0};
    double fit_s[16] = {0};
    int status = 0;
    for (int i = 0; i < n_models && !status; i++) {
        run tmp = {0};
        status = fit_model(c, names[i], sp->train, sp, 0, &fit[i], &tmp);
        fit_s[i] = tmp.fit_s;
    }
    for (int i = 0; i < n_models && !status; i++)
        for (int k = 0; k < scn->n && !status; k++) {
            const shelf_model *peers[16];
            uint32_t np = 0;
            for (int j = 0; j < n_models; j++)
                if (j != i) peers[np++] = fit[j];
            shelf_eval_opts o = *eo;
            o.scenario = scn->doc[k];
            o.peers = peers;
            o.n_peers = np;
            run *r = &runs[*n_runs];
            if (scn->n == 1) snprintf(r->label, sizeof r->label, "%s", names[i]);
            else snprintf(r->label, sizeof r->label, "%s@%s", names[i], scn->name[k]);
            r->fit_s = fit_s[i];
            if ((status = eval_model(c, fit[i], names[i], sp, &o, r))) break;
            (*n_runs)++;
            report_row(ro, r);
        }
    for (int i = 0; i < n_models; i++) shelf_model_free(fit[i]);
    return status;
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
    scn_set scn = {0}; /* --scenario FILE[,FILE...]: their stages choose the lists */
    if (read_scenarios(c, shelf_config_str(c->cfg, "scenario"), &scn) || cli_make_split(c, s, eo.protocol, &sp)) {
        shelf_snapshot_free(s);
        scn_set_free(&scn);
        return 1;
    }
    int leak = shelf_config_bool(c->cfg, "pop-leak-targets");
    if (leak)
        fprintf(stderr, "shelf eval: --pop-leak-targets: popularity is counted over ALL interactions, test targets "
                        "included (a protocol check that reproduces published PopRec rows; not a valid result)\n");

    run runs[MAX_RUNS];
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
    row_out ro = {.data = data ? data : shelf_config_str(c->cfg, "store"), .arr = arr, .eo = &eo, .sp = sp};
    int status = 0, n_runs = 0;
    if (scn.n) {
        status = scenario_rows(c, names, n_models, sp, &eo, &scn, runs, &n_runs, &ro);
    } else {
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
            n_runs++;
            report_row(&ro, &runs[i]);
        }
    }
    /* paired bootstrap of NDCG@10 (or the largest K) against the best model */
    int done = 0;
    while (done < n_runs && runs[done].res) done++;
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
        char path[8800];
        if (done == 1) snprintf(path, sizeof path, "%s", topk);
        else snprintf(path, sizeof path, "%.4000s.%.100s", topk, runs[i].label);
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
    for (int i = 0; i < MAX_RUNS; i++) {
        shelf_eval_result_free(runs[i].res);
        cJSON_Delete(runs[i].params);
    }
    cJSON_Delete(out);
    shelf_split_free(sp);
    shelf_snapshot_free(s);
    scn_set_free(&scn);
    return status;
}
