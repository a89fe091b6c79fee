/* recommend.c: `shelf recommend`: one slate from the store and the newest
 * bundle, through the same ranking room as `shelf serve` (rank.h): for a
 * shopper (--user), an anonymous session (--items), the items that go with
 * one (--similar) or what is popular (--popular). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* "a,b,c" into pointers to its parts (buf is cut up); returns the count */
static size_t split_list(char *buf, const char **out, size_t max)
{
    size_t n = 0;
    for (char *p = buf; p && *p && n < max;) {
        char *e = strchr(p, ',');
        if (e) *e = '\0';
        if (*p) out[n++] = p;
        p = e ? e + 1 : NULL;
    }
    return n;
}

static void print_text(shelf_engine *g, const shelf_slate *sl, int explain)
{
    printf("slate %s  model %s%s%s  source %s", sl->rec_id, sl->model[0] ? sl->model : "popularity",
           sl->model_version[0] ? " " : "", sl->model_version, sl->source);
    if (sl->n_skipped) printf("  (%u unknown items skipped)", sl->n_skipped);
    printf("\n");
    for (uint32_t k = 0; k < sl->n; k++) {
        const shelf_slate_item *it = &sl->items[k];
        char id[512];
        printf("%3u  %-24s %12.6g  %s", k + 1, shelf_engine_item_id(g, it->item, id, sizeof id), (double)it->score,
               it->source);
        if (explain) printf("  %s", it->reason);
        printf("\n");
    }
}

static void print_json(shelf_engine *g, const shelf_slate *sl, const char *user, int explain)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rec_id", sl->rec_id);
    if (user) cJSON_AddStringToObject(o, "user", user);
    else cJSON_AddNullToObject(o, "user");
    cJSON_AddStringToObject(o, "model", sl->model);
    cJSON_AddStringToObject(o, "model_version", sl->model_version);
    cJSON_AddStringToObject(o, "source", sl->source);
    cJSON_AddNumberToObject(o, "skipped_items", sl->n_skipped);
    cJSON *arr = cJSON_AddArrayToObject(o, "items");
    for (uint32_t k = 0; k < sl->n; k++) {
        const shelf_slate_item *it = &sl->items[k];
        char id[512];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", shelf_engine_item_id(g, it->item, id, sizeof id));
        cJSON_AddNumberToObject(j, "score", (double)it->score);
        cJSON_AddStringToObject(j, "source", it->source);
        if (explain) {
            cJSON *r = cJSON_AddObjectToObject(j, "reason");
            if (it->reason_item != SHELF_NONE)
                cJSON_AddStringToObject(r, "item", shelf_engine_item_id(g, it->reason_item, id, sizeof id));
            else cJSON_AddNullToObject(r, "item");
            cJSON_AddStringToObject(r, "text", it->reason);
        }
        cJSON_AddItemToArray(arr, j);
    }
    char *t = cJSON_PrintUnformatted(o);
    if (t) printf("%s\n", t);
    free(t);
    cJSON_Delete(o);
}

int cmd_recommend(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    const char *user = shelf_config_str(c->cfg, "user"), *items = shelf_config_str(c->cfg, "items");
    const char *similar = shelf_config_str(c->cfg, "similar"), *context = shelf_config_str(c->cfg, "context");
    int popular = shelf_config_bool(c->cfg, "popular");
    if ((user != NULL) + (items != NULL) + (similar != NULL) + popular != 1)
        return cli_fail(c, "give one of --user, --items, --similar or --popular"), 2;
    enum { MAX = 1024 };
    const char *list[MAX], *ctx[16];
    char *ibuf = items ? strdup(items) : NULL, *cbuf = context ? strdup(context) : NULL;
    shelf_rank_request rq = cli_rank_request(c);
    rq.user = user;
    rq.similar_to = similar;
    rq.popular = popular;
    if (ibuf) {
        rq.items = list;
        rq.n_items = split_list(ibuf, list, MAX);
    }
    if (cbuf) {
        rq.context = ctx;
        rq.n_context = split_list(cbuf, ctx, 16);
    }
    shelf_server_opts o = cli_engine_opts(c);
    shelf_engine *g = NULL;
    shelf_slate sl = {0};
    shelf_err err = {0};
    int rc = shelf_engine_open(&o, &g, &err);
    if (!rc) rc = shelf_rank(g, &rq, &sl, &err);
    if (rc) cli_fail(c, "%s", err.msg);
    else if (shelf_config_bool(c->cfg, "json")) print_json(g, &sl, user, rq.explain);
    else print_text(g, &sl, rq.explain);
    shelf_slate_free(&sl);
    shelf_engine_close(g);
    free(ibuf);
    free(cbuf);
    return rc ? 1 : 0;
}
