/* main.c: the `shelf` command: dispatches to one file per subcommand. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "shelf/cpu.h"

int cmd_served(cli_ctx *c); /* served.c */
int cmd_scenario(cli_ctx *c); /* scenario.c */
int cmd_recommend(cli_ctx *c); /* recommend.c */
int cmd_audit(cli_ctx *c); /* audit.c */
int cmd_search(cli_ctx *c); /* search.c */

static const cli_command commands[] = {
    {"init", "create a store (or migrate an existing one)", "[--store PATH | PATH]", cmd_init},
    {"import", "import a file of events, items or users into the store", "--format FMT [options] FILE...", cmd_import},
    {"gen", "generate a synthetic shop into the store (or CSV files)", "[options]", cmd_gen},
    {"stats", "print the store's statistics", "[--store PATH] [--json]", cmd_stats},
    {"export", "export events, items or users as CSV, JSON Lines or s3rec sequences; with --users, a slate for each shopper", "--format csv|jsonl|s3rec [--what W] [--out FILE] | --users all|FILE [--bundle DIR] [--scenario S] [--n 10]", cmd_export},
    {"eval", "fit models on a split and measure them (LOO-FULL, ...)", "[--data FILE --format F | --data STORE | --store PATH] [options]", cmd_eval},
    {"train", "fit one model on all the data and write its bundle", "--model NAME --bundle DIR [--data FILE --format F | --store PATH]", cmd_train},
    {"predict", "predict a user's rating of an item with a trained bundle", "--store PATH --bundle DIR --user U --item I", cmd_predict},
    {"recommend", "one slate for a shopper, a session, an item's neighbours or what is popular", "--store PATH [--bundle DIR] --user U | --items A,B | --similar I | --popular [options]", cmd_recommend},
    {"search", "find items by their title and text (FAQ answers, Chinese too), re-ranked by a shopper's profile", "--store PATH --query TEXT [--user U] [--kind K] [--n N] [--bundle DIR] [--json]", cmd_search},
    {"serve", "run the HTTP API (recommendations, events, items, users)", "--store PATH [--bundle DIR] [--port P] [options]", cmd_serve},
    {"snapshot", "write the store's training snapshot to a binary file", "--out FILE [--store PATH]", cmd_snapshot},
    {"keys", "create, list or revoke the store's API keys", "create --scope read|write|admin [--name NAME] | list [--json] | revoke ID [--store PATH]", cmd_keys},
    {"served", "export the served log: every slate shown, with its items", "export [--store PATH] [--since T] [--format jsonl] [--out FILE]", cmd_served},
    {"audit", "where a deleted shopper's or item's data still lives (store, bundles); nothing once retrained", "deletion ID [--what user|item] [--bundle DIR] [--store PATH]", cmd_audit},
    {"scenario", "store, show, list, delete or check scenarios (placements: docs/scenarios.md)", "put NAME FILE|- | get NAME | list | delete NAME | check NAME FILE [--store PATH]", cmd_scenario},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "shelf %s: a recommendation engine for online stores\n\n"
               "usage: shelf COMMAND [options]   (shelf COMMAND --help for its options; --help-all: every\n"
               "       model's hyperparameters too)\n\ncommands:\n",
            SHELF_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-10s %s\n", "version", "print the version; --cpu: the CPU and the kernel level chosen (JSON)");
}

/* shelf version [--cpu] */
static int cmd_version(int argc, char **argv)
{
    if (argc == 0) {
        printf("shelf %s\n", SHELF_VERSION);
        return 0;
    }
    if (argc == 1 && strcmp(argv[0], "--cpu") == 0) {
        char buf[1024];
        shelf_cpu_describe_json(buf, sizeof buf);
        printf("%s\n", buf);
        return 0;
    }
    if (argc == 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        printf("usage: shelf version [--cpu]\n\n"
               "  --cpu   one JSON line: the CPU model, the highest kernel level it supports\n"
               "          (generic|avx2|avx512|avx512bf16), the level in use and each kernel's\n"
               "          level. SHELF_CPU=LEVEL in the environment lowers the level.\n");
        return 0;
    }
    fprintf(stderr, "shelf version: unknown argument '%s' (usage: shelf version [--cpu])\n", argv[0]);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) return cmd_version(argc - 2, argv + 2);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) return cli_run(&commands[i], argc - 2, argv + 2);
    }
    fprintf(stderr, "shelf: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
