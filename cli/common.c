/* common.c: option parsing, logging set-up and store opening shared by the
 * subcommands. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

int cli_fail(cli_ctx *c, const char *fmt, ...)
{
    fprintf(stderr, "shelf %s: ", c->command);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

shelf_store *cli_open_store(cli_ctx *c, unsigned flags)
{
    const char *path = shelf_config_str(c->cfg, "store");
    shelf_store *st = NULL;
    shelf_err err = {0};
    if (!(flags & SHELF_STORE_CREATE) && access(path, F_OK) != 0) {
        cli_fail(c, "%s: no such store (create it with: shelf init --store %s)", path, path);
        return NULL;
    }
    if (shelf_store_open(path, flags, &st, &err)) {
        cli_fail(c, "%s", err.msg);
        return NULL;
    }
    return st;
}

int cli_run(const cli_command *cmd, int argc, char **argv)
{
    cli_ctx c = {.command = cmd->name};
    shelf_err err = {0};
    c.cfg = shelf_config_new();
    if (!c.cfg) {
        fprintf(stderr, "shelf: out of memory\n");
        return 1;
    }
    int help = 0, status;
    if (shelf_config_parse_args(c.cfg, cmd->name, argc, argv, &c.pos, &c.n_pos, &help, &err)) {
        fprintf(stderr, "shelf %s: %s\n", cmd->name, err.msg);
        shelf_config_free(c.cfg);
        return 2;
    }
    if (help) {
        printf("usage: shelf %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->usage, cmd->help);
        shelf_config_print_help(stdout, cmd->name);
        status = 0;
        goto out;
    }
    shelf_log_level lvl = SHELF_LOG_INFO;
    shelf_log_level_parse(shelf_config_str(c.cfg, "log-level"), &lvl); /* checked by the table */
    shelf_log_set_level(lvl);
    shelf_log_set_json(shelf_config_bool(c.cfg, "log-json"));
    c.progress = !shelf_config_bool(c.cfg, "quiet");
    status = cmd->run(&c);
out:
    free(c.pos);
    shelf_config_free(c.cfg);
    return status;
}
