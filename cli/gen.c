/* gen.c: `shelf gen`: a synthetic shop into the store, or into CSV files. */
#include "cli.h"

int cmd_gen(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    o.seed = (uint64_t)shelf_config_int(c->cfg, "seed");
    o.n_users = (uint32_t)shelf_config_int(c->cfg, "users");
    o.n_items = (uint32_t)shelf_config_int(c->cfg, "items");
    o.n_events = (uint64_t)shelf_config_int(c->cfg, "events");
    o.n_categories = (uint32_t)shelf_config_int(c->cfg, "categories");
    o.n_brands = (uint32_t)shelf_config_int(c->cfg, "brands");
    o.n_factors = (uint32_t)shelf_config_int(c->cfg, "factors");
    o.zipf = shelf_config_double(c->cfg, "zipf");
    o.days = (uint32_t)shelf_config_int(c->cfg, "days");
    o.start_ts = shelf_config_int(c->cfg, "start");
    o.late_items = shelf_config_double(c->cfg, "late-items");
    o.progress = c->progress;

    const char *csv = shelf_config_str(c->cfg, "csv-events");
    double t0 = shelf_now();
    if (csv) {
        shelf_err err = {0};
        if (shelf_gen_csv(csv, shelf_config_str(c->cfg, "csv-items"), &o, &err)) return cli_fail(c, "%s", err.msg);
        printf("%s: %llu events in %.2f s\n", csv, (unsigned long long)o.n_events, shelf_now() - t0);
        return 0;
    }
    if (shelf_config_is_set(c->cfg, "csv-items")) return cli_fail(c, "--csv-items needs --csv-events"), 2;
    shelf_store *st = cli_open_store(c, SHELF_STORE_CREATE);
    if (!st) return 1;
    int rc = shelf_gen_store(st, &o);
    if (rc) cli_fail(c, "%s", shelf_store_errmsg(st));
    else
        printf("%s: generated %u users, %u items, %llu events (seed %llu) in %.2f s\n",
               shelf_config_str(c->cfg, "store"), o.n_users, o.n_items, (unsigned long long)o.n_events,
               (unsigned long long)o.seed, shelf_now() - t0);
    shelf_store_close(st);
    return rc ? 1 : 0;
}
