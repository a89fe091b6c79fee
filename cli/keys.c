/* keys.c: `shelf keys create|list|revoke`: the store's API keys. A key's text
 * is printed once, at creation; the store keeps only its SHA-256. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACTIONS "create, list or revoke"

static int keys_create(cli_ctx *c)
{
    if (c->n_pos > 1) return cli_fail(c, "create: unexpected argument '%s'", c->pos[1]), 2;
    const char *scope_text = shelf_config_str(c->cfg, "scope");
    shelf_scope scope;
    if (!scope_text) return cli_fail(c, "create needs --scope read|write|admin"), 2;
    if (shelf_scope_parse(scope_text, &scope)) /* the table checked it already */
        return cli_fail(c, "--scope must be read, write or admin, not '%s'", scope_text), 2;
    shelf_store *st = cli_open_store(c, 0);
    if (!st) return 1;
    char key[SHELF_API_KEY_LEN + 1];
    int64_t id = 0;
    if (shelf_store_key_create(st, scope, shelf_config_str(c->cfg, "name"), key, &id)) {
        cli_fail(c, "%s", shelf_store_errmsg(st));
        shelf_store_close(st);
        return 1;
    }
    shelf_store_close(st);
    printf("%s\n", key);
    fflush(stdout);
    fprintf(stderr, "shelf keys: created key %lld (%s); this is the only time its text is shown: "
                    "the store keeps only its hash\n",
            (long long)id, shelf_scope_name(scope));
    memset(key, 0, sizeof key);
    return 0;
}

static void utc_time(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "%lld", (long long)t);
}

static int print_row(void *ctx, const shelf_api_key *k)
{
    (void)ctx;
    char when[32];
    utc_time(k->created, when, sizeof when);
    printf("%-5lld %-13s %-6s %-20s %-21s %s\n", (long long)k->id, k->prefix, shelf_scope_name(k->scope),
           k->name[0] ? k->name : "-", when, k->revoked ? "revoked" : "active");
    return 0;
}

static int add_json(void *ctx, const shelf_api_key *k)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(ctx, o)) {
        cJSON_Delete(o);
        return SHELF_ENOMEM;
    }
    cJSON_AddNumberToObject(o, "id", (double)k->id);
    cJSON_AddStringToObject(o, "prefix", k->prefix);
    cJSON_AddStringToObject(o, "scope", shelf_scope_name(k->scope));
    if (k->name[0]) cJSON_AddStringToObject(o, "name", k->name);
    else cJSON_AddNullToObject(o, "name");
    cJSON_AddNumberToObject(o, "created", (double)k->created);
    cJSON_AddBoolToObject(o, "revoked", k->revoked);
    return 0;
}

static int keys_list(cli_ctx *c)
{
    if (c->n_pos > 1) return cli_fail(c, "list: unexpected argument '%s'", c->pos[1]), 2;
    shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
    if (!st) return 1;
    int json = shelf_config_bool(c->cfg, "json"), rc;
    cJSON *arr = NULL;
    if (json) {
        if (!(arr = cJSON_CreateArray())) {
            shelf_store_close(st);
            return cli_fail(c, "out of memory");
        }
        rc = shelf_store_foreach_key(st, add_json, arr);
    } else {
        printf("%-5s %-13s %-6s %-20s %-21s %s\n", "id", "prefix", "scope", "name", "created", "state");
        rc = shelf_store_foreach_key(st, print_row, NULL);
    }
    if (rc) {
        cli_fail(c, "%s", rc == SHELF_ENOMEM ? "out of memory" : shelf_store_errmsg(st));
        cJSON_Delete(arr);
        shelf_store_close(st);
        return 1;
    }
    shelf_store_close(st);
    if (json) {
        char *text = cJSON_PrintUnformatted(arr);
        cJSON_Delete(arr);
        if (!text) return cli_fail(c, "out of memory");
        puts(text);
        free(text);
    }
    return 0;
}

static int keys_revoke(cli_ctx *c)
{
    if (c->n_pos != 2) return cli_fail(c, "revoke needs one key id (see shelf keys list)"), 2;
    char *end;
    errno = 0;
    long long id = strtoll(c->pos[1], &end, 10);
    if (errno || end == c->pos[1] || *end || id < 1)
        return cli_fail(c, "revoke: '%s' is not a key id (see shelf keys list)", c->pos[1]), 2;
    shelf_store *st = cli_open_store(c, 0);
    if (!st) return 1;
    int rc = shelf_store_key_revoke(st, id);
    if (rc) cli_fail(c, "%s", shelf_store_errmsg(st));
    else fprintf(stderr, "shelf keys: key %lld revoked\n", id);
    shelf_store_close(st);
    return rc ? 1 : 0;
}

int cmd_keys(cli_ctx *c)
{
    if (c->n_pos < 1) return cli_fail(c, "needs an action: " ACTIONS), 2;
    const char *a = c->pos[0];
    if (strcmp(a, "create") == 0) return keys_create(c);
    if (strcmp(a, "list") == 0) return keys_list(c);
    if (strcmp(a, "revoke") == 0) return keys_revoke(c);
    return cli_fail(c, "unknown action '%s' (valid: " ACTIONS ")", a), 2;
}
