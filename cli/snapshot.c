/* snapshot.c: `shelf snapshot`: the store's training view to a binary file. */
#include "cli.h"

#include <string.h>

int cmd_snapshot(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    const char *out = shelf_config_str(c->cfg, "out");
    if (strcmp(out, "-") == 0) return cli_fail(c, "--out FILE is required"), 2;
    shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
    if (!st) return 1;
    shelf_snapshot *s = NULL;
    double t0 = shelf_now();
    if (shelf_snapshot_from_store(st, c->progress, &s)) {
        cli_fail(c, "%s", shelf_store_errmsg(st));
        shelf_store_close(st);
        return 1;
    }
    shelf_store_close(st);
    shelf_err err = {0};
    int rc = shelf_snapshot_save(s, out, &err);
    if (rc) cli_fail(c, "%s", err.msg);
    else
        printf("%s: %u users, %u items, %llu events, %llu pairs in %.2f s\n", out, s->n_users, s->n_items,
               (unsigned long long)s->n_events, (unsigned long long)s->n_nnz, shelf_now() - t0);
    shelf_snapshot_free(s);
    return rc ? 1 : 0;
}
