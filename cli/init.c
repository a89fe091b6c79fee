/* init.c: `shelf init`: create a store, or bring an existing one to the
 * latest schema. */
#include "cli.h"

int cmd_init(cli_ctx *c)
{
    if (c->n_pos > 1) return cli_fail(c, "takes at most one store path (got %d arguments)", c->n_pos), 2;
    if (c->n_pos == 1) shelf_config_set(c->cfg, "store", c->pos[0], NULL, NULL);
    shelf_store *st = cli_open_store(c, SHELF_STORE_CREATE);
    if (!st) return 1;
    printf("%s: schema version %d\n", shelf_config_str(c->cfg, "store"), shelf_store_schema_version(st));
    shelf_store_close(st);
    return 0;
}
