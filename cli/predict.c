/* predict.c: `shelf predict`: a user's predicted rating of an item, from a
 * bundle trained on the store (the store maps the external ids). */
#include "cli.h"

#include <string.h>

int cmd_predict(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    const char *dir = shelf_config_str(c->cfg, "bundle");
    const char *user = shelf_config_str(c->cfg, "user"), *item = shelf_config_str(c->cfg, "item");
    if (!dir || !user || !item) return cli_fail(c, "--bundle, --user and --item are required"), 2;
    shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
    if (!st) return 1;
    uint32_t u = SHELF_NONE, i;
    int known_user = shelf_store_user_idx(st, user, strlen(user), 0, &u, NULL) == 0;
    if (shelf_store_item_idx(st, item, strlen(item), 0, &i, NULL)) {
        shelf_store_close(st);
        return cli_fail(c, "unknown item '%s' in %s", item, shelf_config_str(c->cfg, "store"));
    }
    shelf_store_close(st);
    shelf_model *m = NULL;
    shelf_err err = {0};
    if (shelf_model_load(dir, &m, &err)) return cli_fail(c, "%s", err.msg);
    if (known_user && u >= m->n_users) known_user = 0; /* a user newer than the bundle */
    if (i >= m->n_items) {
        shelf_model_free(m);
        return cli_fail(c, "item '%s' is newer than the bundle %s (retrain)", item, dir);
    }
    float r;
    int rc = shelf_model_predict(m, known_user ? u : SHELF_NONE, i, &r, &err);
    if (rc) cli_fail(c, "%s", err.msg);
    else printf("%s %s %.4f%s\n", user, item, r, known_user ? "" : " (unknown user: not personalised)");
    shelf_model_free(m);
    return rc ? 1 : 0;
}
