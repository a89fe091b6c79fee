/* cli.h: shared pieces of the `shelf` subcommands. */
#ifndef SHELF_CLI_H
#define SHELF_CLI_H

#include "shelf/shelf.h"

typedef struct cli_ctx {
    const char *command;
    shelf_config *cfg;
    char **pos; /* positional arguments */
    int n_pos;
    int progress; /* progress bars wanted (not --quiet) */
} cli_ctx;

typedef struct cli_command {
    const char *name, *help;
    const char *usage; /* argument synopsis after the command name */
    int (*run)(cli_ctx *);
} cli_command;

/* Parses options, handles --help, sets logging, calls the command. Returns
 * the process exit status: 0 ok, 1 failure, 2 usage error. */
int cli_run(const cli_command *cmd, int argc, char **argv);

/* Opens the --store with flags; on failure prints the error, returns NULL. */
shelf_store *cli_open_store(cli_ctx *c, unsigned flags);
/* --out as a stream (standard output for "-"); when it cannot be opened,
 * prints why and closes st (may be NULL): NULL. */
FILE *cli_out(cli_ctx *c, const char *out, shelf_store *st);
/* The whole of path ("-": standard input) as a NUL-terminated string of at
 * most max bytes (the caller frees it); NULL after printing why. */
char *cli_read_text(cli_ctx *c, const char *path, size_t max);
/* Prints "shelf CMD: <message>" to stderr and returns 1. */
int cli_fail(cli_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The training data: --data FILE (--format, --attributes) imported into an
 * in-memory store, else --store. Prints the error and returns 1 on failure. */
int cli_load_snapshot(cli_ctx *c, shelf_snapshot **out);
/* The lines an import's summary has beyond its counts (rows dropped,
 * skipped, typed by default, duplicates not stored), "path: ..." each, to f. */
void cli_import_notes(FILE *f, const char *path, const shelf_import_opts *o, const shelf_import_result *r);
/* The split of the protocol (temporal and cold-item options from --...). */
int cli_make_split(cli_ctx *c, const shelf_snapshot *s, shelf_protocol proto, shelf_split **out);
/* users with at least one test (valid: validation) target in the split */
uint32_t cli_split_users(const shelf_split *sp, int valid);

/* The engine (shelf_engine_open) of --store and --bundle with the ranking
 * options of serve and recommend (--pop-half-life, --session-memory,
 * --cold-neighbours, --exclude-seen, --fallback, --blend-popularity). */
shelf_server_opts cli_engine_opts(cli_ctx *c);
/* The slate request options shared by recommend and export (--n, --kind,
 * --category, --explain, --exclude-seen when given, --scenario). */
shelf_rank_request cli_rank_request(cli_ctx *c);
/* `shelf export --users all|FILE`: slates (export_slates.c). */
int cli_export_slates(cli_ctx *c);

/* Applies --threads to OpenMP (0: all cores); returns the count in use. */
int cli_threads(cli_ctx *c);

/* The rating protocols of `shelf eval` (ml100k: the official 5 folds, else
 * a random 80/20 split of the rating events). */
int cli_eval_ratings(cli_ctx *c, char **names, int n_models, int ml100k);

int cmd_init(cli_ctx *c);
int cmd_import(cli_ctx *c);
int cmd_gen(cli_ctx *c);
int cmd_stats(cli_ctx *c);
int cmd_export(cli_ctx *c);
int cmd_snapshot(cli_ctx *c);
int cmd_eval(cli_ctx *c);
int cmd_train(cli_ctx *c);
int cmd_predict(cli_ctx *c);
int cmd_serve(cli_ctx *c);
int cmd_keys(cli_ctx *c);

#endif
