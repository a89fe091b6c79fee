/* import.c: `shelf import`: files into the store, one transaction each. */
#include "cli.h"

#include <string.h>
#include <time.h>

void cli_import_notes(FILE *f, const char *path, const shelf_import_opts *o, const shelf_import_result *r)
{
    if (r->n_new_types)
        fprintf(f, "%s: %llu event types added (--event-types)\n", path, (unsigned long long)r->n_new_types);
    if (r->n_default_type)
        fprintf(f, "%s: %llu rows named no event type: read as %s (--type sets it)\n", path,
                (unsigned long long)r->n_default_type, o->event_type ? o->event_type : "view");
    if (r->n_dropped) fprintf(f, "%s: %llu rows dropped by --type-map\n", path, (unsigned long long)r->n_dropped);
    static const char *const why[SHELF_SKIP_N] = {"an empty user id", "a null-like user id (NA, null, ...)",
                                                  "an empty item id", "a null-like item id (NA, null, ...)"};
    for (int k = 0; k < SHELF_SKIP_N; k++)
        if (r->n_skipped[k])
            fprintf(f, "%s: %llu rows skipped with %s (the first at line %llu)\n", path,
                    (unsigned long long)r->n_skipped[k], why[k], (unsigned long long)r->first_skipped[k]);
    if (r->n_duplicates)
        fprintf(f,
                "%s: %llu duplicate events not stored: the same user, item, type and time is stored already or "
                "came earlier in the file (the first at line %llu; --allow-duplicates stores them)\n",
                path, (unsigned long long)r->n_duplicates, (unsigned long long)r->first_duplicate);
}

int cmd_import(cli_ctx *c)
{
    const char *fmt = shelf_config_str(c->cfg, "format");
    if (!fmt) return cli_fail(c, "--format is required (s3rec|pairs|csv|jsonl|ml100k|taobao)"), 2;
    if (c->n_pos == 0) return cli_fail(c, "no file given (see shelf import --help)"), 2;
    shelf_import_format f;
    shelf_import_format_parse(fmt, &f); /* checked by the table's choices */
    shelf_import_opts o;
    shelf_import_opts_init(&o, f);
    const char *what = shelf_config_str(c->cfg, "what");
    o.what = strcmp(what, "items") == 0 ? SHELF_IMPORT_ITEMS
             : strcmp(what, "users") == 0 ? SHELF_IMPORT_USERS
                                          : SHELF_IMPORT_EVENTS;
    o.attributes_path = shelf_config_str(c->cfg, "attributes");
    o.items_path = shelf_config_str(c->cfg, "item-file");
    o.mapping = shelf_config_str(c->cfg, "map");
    o.event_type = shelf_config_str(c->cfg, "type");
    o.type_map = shelf_config_str(c->cfg, "type-map");
    o.columns = shelf_config_str(c->cfg, "columns");
    o.allow_duplicates = shelf_config_bool(c->cfg, "allow-duplicates");
    o.event_types = shelf_config_str(c->cfg, "event-types");
    const char *cs = shelf_config_str(c->cfg, "category-separator");
    if (cs && strlen(cs) != 1) return cli_fail(c, "--category-separator must be one character, not '%s'", cs), 2;
    o.category_separator = cs ? cs[0] : 0;
    const char *d = shelf_config_str(c->cfg, "delimiter");
    if (strcmp(d, "\\t") == 0 || strcmp(d, "tab") == 0) o.delimiter = '\t';
    else if (strlen(d) == 1) o.delimiter = d[0];
    else return cli_fail(c, "--delimiter must be one character or \\t, not '%s'", d), 2;
    o.progress = c->progress;

    shelf_store *st = cli_open_store(c, SHELF_STORE_CREATE);
    if (!st) return 1;
    int status = 0;
    for (int i = 0; i < c->n_pos; i++) {
        shelf_import_result r;
        if (shelf_import_file(st, c->pos[i], &o, &r)) {
            cli_fail(c, "%s", shelf_store_errmsg(st));
            fprintf(stderr, "shelf import: nothing of %s was stored\n", c->pos[i]);
            status = 1;
            break;
        }
        if (r.already_imported) {
            char when[32];
            time_t t = (time_t)r.imported_at;
            struct tm tm;
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
            printf("%s: already imported on %s (%llu events); nothing stored (--allow-duplicates imports it "
                   "again)\n",
                   c->pos[i], when, (unsigned long long)r.imported_events);
            continue;
        }
        printf("%s: %llu records, %llu events, %llu new users, %llu new items, %llu item rows, "
               "%llu user rows in %.2f s (%.0f records/s)\n",
               c->pos[i], (unsigned long long)r.n_lines, (unsigned long long)r.n_events,
               (unsigned long long)r.n_new_users, (unsigned long long)r.n_new_items,
               (unsigned long long)r.n_items, (unsigned long long)r.n_users, r.seconds,
               r.seconds > 0 ? (double)r.n_lines / r.seconds : 0.0);
        cli_import_notes(stdout, c->pos[i], &o, &r);
    }
    shelf_store_close(st);
    return status;
}
