/* common.c: option parsing, logging set-up and store opening shared by the
 * subcommands. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

FILE *cli_out(cli_ctx *c, const char *out, shelf_store *st)
{
    FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
    if (!f) {
        shelf_store_close(st);
        cli_fail(c, "%s: cannot open for writing", out);
    }
    return f;
}

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

/* The model options --help shows: --help-all every model's; eval and train
 * the models their --models/--model name (0 when one is unknown). */
static int help_models(cli_ctx *c, int all, const char **models)
{
    *models = all ? "*" : NULL;
    if (all) return 1;
    const char *opt = !strcmp(c->command, "eval") ? "models" : !strcmp(c->command, "train") ? "model" : NULL;
    if (!opt || !shelf_config_is_set(c->cfg, opt)) return 1;
    *models = shelf_config_str(c->cfg, opt);
    char name[64];
    for (const char *p = *models; *p;) {
        size_t len = strcspn(p, ",");
        size_t n;
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        if (!shelf_model_options(name, &n)) return cli_fail(c, "--%s: unknown model '%s'", opt, name), 0;
        p += len + (p[len] == ',');
    }
    return 1;
}

/* --help (all: --help-all): usage, the options, and for eval and train the
 * models and how to see their options. Returns the exit status. */
static int print_help(cli_ctx *c, const cli_command *cmd, int all)
{
    const char *models;
    if (!help_models(c, all, &models)) return 2;
    printf("usage: shelf %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->usage, cmd->help);
    shelf_config_print_help(stdout, cmd->name, models);
    if (strcmp(cmd->name, "eval") != 0 && strcmp(cmd->name, "train") != 0) return 0;
    size_t n;
    const char *const *names = shelf_model_names(&n);
    printf("\nmodels:");
    for (size_t i = 0; i < n; i++) printf(" %s", names[i]);
    printf("\n");
    if (!all)
        printf("shelf %s %s --help shows a model's options too; --help-all lists every option.\n", cmd->name,
               !strcmp(cmd->name, "eval") ? "--models NAME[,NAME...]" : "--model NAME");
    return 0;
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
        status = print_help(&c, cmd, help == 2);
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

/* 1 if path starts with SQLite's file header */
static int is_sqlite_file(const char *path)
{
    char head[16] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return n == sizeof head && memcmp(head, "SQLite format 3", 16) == 0;
}

int cli_load_snapshot(cli_ctx *c, shelf_snapshot **out)
{
    const char *data = shelf_config_str(c->cfg, "data");
    shelf_store *st;
    const char *fmt = shelf_config_str(c->cfg, "format");
    if (data && !fmt && is_sqlite_file(data)) {
        /* --data STORE: a shelf store instead of a file to import */
        shelf_config_set(c->cfg, "store", data, NULL, NULL);
        data = NULL;
    }
    if (data) {
        if (!fmt) return cli_fail(c, "--data %s needs --format (s3rec|pairs|csv|jsonl|ml100k|taobao), "
                                     "unless it is a shelf store", data);
        shelf_import_format f;
        shelf_import_format_parse(fmt, &f);
        shelf_import_opts o;
        shelf_import_opts_init(&o, f);
        o.attributes_path = shelf_config_str(c->cfg, "attributes");
        o.mapping = shelf_config_str(c->cfg, "map");
        o.event_type = shelf_config_str(c->cfg, "type");
        o.type_map = shelf_config_str(c->cfg, "type-map");
        o.columns = shelf_config_str(c->cfg, "columns");
        o.allow_duplicates = shelf_config_bool(c->cfg, "allow-duplicates");
        o.event_types = shelf_config_str(c->cfg, "event-types");
        o.progress = c->progress;
        shelf_err err = {0};
        if (shelf_store_open(":memory:", SHELF_STORE_CREATE, &st, &err)) return cli_fail(c, "%s", err.msg);
        shelf_import_result r;
        if (shelf_import_file(st, data, &o, &r)) {
            cli_fail(c, "%s", shelf_store_errmsg(st));
            shelf_store_close(st);
            return 1;
        }
        if (shelf_log_get_level() <= SHELF_LOG_INFO) cli_import_notes(stderr, data, &o, &r);
    } else {
        if (!(st = cli_open_store(c, SHELF_STORE_READONLY))) return 1;
    }
    int rc = shelf_snapshot_from_store(st, c->progress, out);
    if (rc) cli_fail(c, "%s", shelf_store_errmsg(st));
    shelf_store_close(st);
    return rc ? 1 : 0;
}

uint32_t cli_split_users(const shelf_split *sp, int valid)
{
    const uint64_t *off = valid ? sp->valid_off : sp->test_off;
    uint32_t n = 0;
    for (uint32_t u = 0; off && u < sp->train->n_users; u++) n += off[u + 1] > off[u];
    return n;
}

static const char *utc(int64_t t, char *buf, size_t cap)
{
    time_t x = (time_t)t;
    struct tm tm;
    gmtime_r(&x, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int cli_make_split(cli_ctx *c, const shelf_snapshot *s, shelf_protocol proto, shelf_split **out)
{
    shelf_err err = {0};
    int rc;
    int64_t ts_min = INT64_MAX, ts_max = INT64_MIN, span = 0;
    switch (proto) {
    case SHELF_PROTO_TEMPORAL: {
        for (uint64_t e = 0; e < s->n_events; e++) {
            if (s->seq_ts[e] > ts_max) ts_max = s->seq_ts[e];
            if (s->seq_ts[e] > 0 && s->seq_ts[e] < ts_min) ts_min = s->seq_ts[e];
        }
        span = (int64_t)shelf_config_double(c->cfg, "temporal-test"); /* seconds */
        if (s->n_events == 0 || ts_max <= 0)
            return cli_fail(c, "the temporal protocol needs timestamps (this data has none)");
        rc = shelf_split_temporal(s, ts_max - 2 * span + 1, ts_max - span + 1, out, &err);
        break;
    }
    case SHELF_PROTO_COLD_ITEM:
        rc = shelf_split_cold_items(s, shelf_config_double(c->cfg, "cold-share"),
                                    (uint64_t)shelf_config_int(c->cfg, "seed"), out, &err);
        break;
    default:
        rc = shelf_split_loo(s, out, &err);
        break;
    }
    if (rc) return cli_fail(c, "%s", err.msg);
    /* a protocol that leaves nothing to score is refused, saying why */
    int valid = shelf_config_bool(c->cfg, "valid");
    if (cli_split_users(*out, valid)) return 0;
    const char *what = valid ? "validation" : "test";
    char a[32], b[32], from[32];
    if (proto == SHELF_PROTO_TEMPORAL)
        cli_fail(c, "temporal: no user has a %s event: the %s window (--temporal-test %llds, from %s) holds none of "
                    "the %llu events, which span %s to %s; lengthen --temporal-test",
                 what, what, (long long)span, utc(ts_max - (valid ? 2 : 1) * span + 1, from, sizeof from),
                 (unsigned long long)s->n_events, utc(ts_min, a, sizeof a), utc(ts_max, b, sizeof b));
    else
        cli_fail(c, "%s: no user has a %s target: %u users, %llu events (leave-one-out needs users with at least %d "
                    "events)", shelf_protocol_name(proto), what, s->n_users, (unsigned long long)s->n_events,
                 valid ? 3 : 2);
    shelf_split_free(*out);
    *out = NULL;
    return 1;
}

/* --threads for OpenMP (0: all cores); returns the count in use */
int cli_threads(cli_ctx *c)
{
    int t = (int)shelf_config_int(c->cfg, "threads");
#ifdef _OPENMP
    if (t > 0) omp_set_num_threads(t);
    return omp_get_max_threads();
#else
    return t > 0 ? t : 1;
#endif
}

char *cli_read_text(cli_ctx *c, const char *path, size_t max)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return cli_fail(c, "%s: cannot open: %s", path, strerror(errno)), NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf) return cli_fail(c, "out of memory"), NULL;
    if (err || n > max) {
        free(buf);
        return cli_fail(c, "%s: %s", path, err ? "cannot read" : "too large"), NULL;
    }
    buf[n] = '\0';
    return buf;
}

shelf_server_opts cli_engine_opts(cli_ctx *c)
{
    return (shelf_server_opts){
        .store = shelf_config_str(c->cfg, "store"),
        .bundle = shelf_config_str(c->cfg, "bundle"),
        .pop_half_life_s = shelf_config_double(c->cfg, "pop-half-life"),
        .session_memory = (size_t)shelf_config_int(c->cfg, "session-memory") << 20,
        .cold_neighbours = (unsigned)shelf_config_int(c->cfg, "cold-neighbours"),
        .exclude_seen = shelf_config_str(c->cfg, "exclude-seen"),
        .fallback = shelf_config_str(c->cfg, "fallback"),
        .blend_popularity = shelf_config_double(c->cfg, "blend-popularity"),
    };
}

shelf_rank_request cli_rank_request(cli_ctx *c)
{
    return (shelf_rank_request){
        .n = (uint32_t)shelf_config_int(c->cfg, "n"),
        .kind = shelf_config_str(c->cfg, "kind"),
        .category = shelf_config_str(c->cfg, "category"),
        .explain = shelf_config_bool(c->cfg, "explain"),
        .exclude_seen = shelf_config_is_set(c->cfg, "exclude-seen") ? shelf_config_str(c->cfg, "exclude-seen") : NULL,
        .scenario = shelf_config_str(c->cfg, "scenario"),
    };
}
