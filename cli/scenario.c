/* scenario.c: `shelf scenario put|get|list|delete|check`: the store's
 * scenarios (placements, docs/scenarios.md), each checked by the ranking
 * room before it is stored, so a stored scenario always compiles. */
#include "cli.h"
#include "rank/scenario_int.h"
#include "store/meta_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACTIONS "put, get, list, delete or check"
#define DOC_MAX (1u << 20) /* bytes of a scenario document */

/* checks doc as scenario name against the store's event types; 0 or 1 after saying why */
static int check(cli_ctx *c, shelf_store *st, const char *name, const char *doc)
{
    uint32_t n = shelf_store_n_event_types(st);
    char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) return cli_fail(c, "out of memory");
    for (uint32_t k = 0; k < n; k++) names[k] = (char *)shelf_store_event_type_name(st, k);
    shelf_err err = {0};
    int rc = shelf__scenario_check(name, doc, names, n, &err);
    free(names);
    return rc ? cli_fail(c, "%s", err.msg) : 0;
}

static int put_or_check(cli_ctx *c, int store)
{
    if (c->n_pos != 3) return cli_fail(c, "%s needs a name and a file (- for standard input)", c->pos[0]), 2;
    char *doc = cli_read_text(c, c->pos[2], DOC_MAX);
    if (!doc) return 1;
    shelf_store *st = cli_open_store(c, store ? 0 : SHELF_STORE_READONLY);
    int rc = !st || check(c, st, c->pos[1], doc);
    if (!rc && store && shelf__store_scenario_put(st, c->pos[1], doc, (int64_t)time(NULL)))
        rc = cli_fail(c, "%s", shelf_store_errmsg(st));
    if (!rc) fprintf(stderr, "shelf scenario: '%s' %s\n", c->pos[1], store ? "stored" : "is valid");
    shelf_store_close(st);
    free(doc);
    return rc;
}

static int get(cli_ctx *c)
{
    if (c->n_pos != 2) return cli_fail(c, "get needs a scenario name"), 2;
    shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
    if (!st) return 1;
    char *doc = NULL;
    int rc = shelf__store_scenario_get(st, c->pos[1], &doc, NULL);
    if (rc) cli_fail(c, "%s", shelf_store_errmsg(st));
    else {
        size_t n = strlen(doc);
        fputs(doc, stdout); /* as stored; a final newline if it has none */
        if (!n || doc[n - 1] != '\n') putchar('\n');
    }
    free(doc);
    shelf_store_close(st);
    return rc ? 1 : 0;
}

static int print_row(void *ctx, const char *name, const char *doc, int64_t updated)
{
    (void)ctx;
    char when[32];
    time_t t = (time_t)updated;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(when, sizeof when, "%lld", (long long)updated);
    cJSON *j = cJSON_Parse(doc);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "description");
    printf("%-24s %-21s %s\n", name, when, cJSON_IsString(d) ? d->valuestring : "");
    cJSON_Delete(j);
    return 0;
}

static int list(cli_ctx *c)
{
    if (c->n_pos != 1) return cli_fail(c, "list: unexpected argument '%s'", c->pos[1]), 2;
    shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
    if (!st) return 1;
    printf("%-24s %-21s %s\n", "name", "updated", "description");
    int rc = shelf__store_scenario_foreach(st, print_row, NULL);
    if (rc) cli_fail(c, "%s", shelf_store_errmsg(st));
    shelf_store_close(st);
    return rc ? 1 : 0;
}

static int delete(cli_ctx *c)
{
    if (c->n_pos != 2) return cli_fail(c, "delete needs a scenario name"), 2;
    shelf_store *st = cli_open_store(c, 0);
    if (!st) return 1;
    int rc = shelf__store_scenario_delete(st, c->pos[1]);
    if (rc) cli_fail(c, "%s", shelf_store_errmsg(st));
    else fprintf(stderr, "shelf scenario: '%s' deleted\n", c->pos[1]);
    shelf_store_close(st);
    return rc ? 1 : 0;
}

int cmd_scenario(cli_ctx *c)
{
    if (c->n_pos < 1) return cli_fail(c, "needs an action: " ACTIONS), 2;
    const char *a = c->pos[0];
    if (!strcmp(a, "put")) return put_or_check(c, 1);
    if (!strcmp(a, "check")) return put_or_check(c, 0);
    if (!strcmp(a, "get")) return get(c);
    if (!strcmp(a, "list")) return list(c);
    if (!strcmp(a, "delete")) return delete(c);
    return cli_fail(c, "unknown action '%s' (valid: " ACTIONS ")", a), 2;
}
