/* search.c: `shelf search`: customer-service answers from the command line,
 * the same call as the server's POST /v1/search (serve/search_int.h): the
 * store's text matches of --query, re-ranked by --user's profile when the
 * newest bundle of --bundle knows the shopper. A table, or with --json one
 * JSON line per answer. */
#include "cli.h"
#include "serve/search_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static void print_table(const shelf__search_answer *a)
{
    printf("%s search, %s\n", a->text.method == SHELF__SEARCH_SCAN ? "scan" : "fts",
           a->profiled ? "re-ranked by the user's profile" : "text order");
    for (size_t k = 0; k < a->n; k++) {
        const shelf__search_item *it = &a->item[k];
        printf("%3zu  %-24s %-8s %8.4f  text %-10.4g profile ", k + 1, it->hit->id, it->hit->kind, (double)it->score,
               (double)it->text_score);
        if (it->has_profile) printf("%-10.4g", (double)it->profile_score);
        else printf("%-10s", "-");
        printf("  %s | %s\n", it->hit->title, it->hit->snippet);
    }
}

/* one line per answer, best first: the objects of the HTTP answer's items */
static void print_json(const shelf__search_answer *a)
{
    for (size_t k = 0; k < a->n; k++) {
        cJSON *o = shelf__search_item_json(&a->item[k]);
        char *t = o ? cJSON_PrintUnformatted(o) : NULL;
        if (t) printf("%s\n", t);
        free(t);
        cJSON_Delete(o);
    }
}

int cmd_search(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    const char *query = shelf_config_str(c->cfg, "query");
    if (!query || !query[0]) return cli_fail(c, "give the words to find with --query"), 2;
    int json = shelf_config_bool(c->cfg, "json");
    shelf__search_req q = {.user = shelf_config_str(c->cfg, "user"), .query = query,
                           .kind = shelf_config_str(c->cfg, "kind"), .n = (uint32_t)shelf_config_int(c->cfg, "n"),
                           .profile_weight = shelf_config_double(c->cfg, "profile-weight"), .html = json};
    shelf_server_opts o = {.store = shelf_config_str(c->cfg, "store"), .bundle = shelf_config_str(c->cfg, "bundle"),
                           .cold_neighbours = (unsigned)shelf_config_int(c->cfg, "cold-neighbours")};
    shelf_engine *g = NULL;
    shelf_err err = {0};
    shelf__search_answer a = {0};
    int rc = shelf_engine_open(&o, &g, &err);
    if (!rc) rc = shelf__search(g, &q, &a, &err);
    if (rc) cli_fail(c, "%s", err.msg);
    else if (json) print_json(&a);
    else print_table(&a);
    shelf__search_answer_free(&a);
    shelf_engine_close(g);
    return rc == SHELF_EINVAL ? 2 : rc ? 1 : 0;
}
