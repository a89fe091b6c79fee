/* stats.c: `shelf stats`: users, items, events per type, sequence lengths and
 * density of a store, as a table or JSON. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static cJSON *stats_json(const shelf_store_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "users", (double)s->n_users);
    cJSON_AddNumberToObject(o, "items", (double)s->n_items);
    cJSON_AddNumberToObject(o, "events", (double)s->n_events);
    cJSON *types = cJSON_AddObjectToObject(o, "events_per_type");
    for (uint32_t t = 0; t < s->n_types; t++)
        if (s->type_count[t]) cJSON_AddNumberToObject(types, s->type_name[t], (double)s->type_count[t]);
    cJSON_AddNumberToObject(o, "active_users", (double)s->n_active_users);
    cJSON_AddNumberToObject(o, "active_items", (double)s->n_active_items);
    cJSON_AddNumberToObject(o, "user_item_pairs", (double)s->n_pairs);
    cJSON_AddNumberToObject(o, "density", s->density);
    cJSON *q = cJSON_AddObjectToObject(o, "events_per_user");
    cJSON_AddNumberToObject(q, "min", (double)s->seq_min);
    cJSON_AddNumberToObject(q, "p50", (double)s->seq_p50);
    cJSON_AddNumberToObject(q, "mean", s->seq_mean);
    cJSON_AddNumberToObject(q, "p90", (double)s->seq_p90);
    cJSON_AddNumberToObject(q, "p99", (double)s->seq_p99);
    cJSON_AddNumberToObject(q, "max", (double)s->seq_max);
    cJSON_AddNumberToObject(o, "attributes", (double)s->n_attrs);
    cJSON_AddNumberToObject(o, "served_slates", (double)s->n_served);
    cJSON_AddNumberToObject(o, "ts_min", (double)s->ts_min);
    cJSON_AddNumberToObject(o, "ts_max", (double)s->ts_max);
    return o;
}

int cmd_stats(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
    if (!st) return 1;
    shelf_store_stats s;
    int rc = shelf_store_stats_get(st, &s);
    if (rc) {
        cli_fail(c, "%s", shelf_store_errmsg(st));
        shelf_store_close(st);
        return 1;
    }
    shelf_store_close(st);
    if (shelf_config_bool(c->cfg, "json")) {
        cJSON *o = stats_json(&s);
        char *text = o ? cJSON_PrintUnformatted(o) : NULL;
        if (!text) return cli_fail(c, "out of memory");
        puts(text);
        free(text);
        cJSON_Delete(o);
        return 0;
    }
    printf("store            %s\n", shelf_config_str(c->cfg, "store"));
    printf("users            %llu (%llu with events)\n", (unsigned long long)s.n_users,
           (unsigned long long)s.n_active_users);
    printf("items            %llu (%llu with events)\n", (unsigned long long)s.n_items,
           (unsigned long long)s.n_active_items);
    printf("events           %llu\n", (unsigned long long)s.n_events);
    for (uint32_t t = 0; t < s.n_types; t++)
        if (s.type_count[t]) printf("  %-14s %llu\n", s.type_name[t], (unsigned long long)s.type_count[t]);
    printf("user-item pairs  %llu (density %.6f)\n", (unsigned long long)s.n_pairs, s.density);
    printf("events per user  min %llu, median %llu, mean %.2f, p90 %llu, p99 %llu, max %llu\n",
           (unsigned long long)s.seq_min, (unsigned long long)s.seq_p50, s.seq_mean, (unsigned long long)s.seq_p90,
           (unsigned long long)s.seq_p99, (unsigned long long)s.seq_max);
    printf("attributes       %llu\n", (unsigned long long)s.n_attrs);
    printf("served slates    %llu\n", (unsigned long long)s.n_served);
    return 0;
}
