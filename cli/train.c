/* train.c: `shelf train`: fit one model on all the data and write its
 * bundle (manifest.json + tensors.safetensors). */
#include "cli.h"

int cmd_train(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    const char *name = shelf_config_str(c->cfg, "model");
    const char *dir = shelf_config_str(c->cfg, "bundle");
    if (!name || !dir) return cli_fail(c, "--model and --bundle are required"), 2;
    shelf_model *m = NULL;
    shelf_err err = {0};
    if (shelf_model_new(name, &m, &err)) return cli_fail(c, "%s", err.msg), 2;
    int threads = cli_threads(c);
    shelf_snapshot *s = NULL;
    if (cli_load_snapshot(c, &s)) {
        shelf_model_free(m);
        return 1;
    }
    shelf_progress *p = shelf_progress_new(name, 0, c->progress);
    double t0 = shelf_now();
    int rc = shelf_model_fit(m, s, c->cfg, p);
    double fit_s = shelf_now() - t0;
    shelf_progress_finish(p);
    if (rc) cli_fail(c, "%s", shelf_model_errmsg(m));
    else if ((rc = shelf_model_save(m, dir, &err))) cli_fail(c, "%s", err.msg);
    else
        printf("%s: %s fitted on %u users, %u items, %llu events in %.2f s (%d threads)\n", dir, name, s->n_users,
               s->n_items, (unsigned long long)s->n_events, fit_s, threads);
    shelf_model_free(m);
    shelf_snapshot_free(s);
    return rc ? 1 : 0;
}
