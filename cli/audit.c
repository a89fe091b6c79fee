/* audit.c: `shelf audit deletion ID`: every place where a deleted shopper's
 * or item's data still lives: rows of the store that refer to its index,
 * and the model bundles (--bundle) trained before the deletion while it
 * existed. Prints nothing when there is none (after retraining). */
#include "cli.h"
#include "store/meta_int.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    int is_user;
    uint32_t idx;
    double ts;            /* when it was deleted */
    const char *store;
    int found;            /* places printed */
} deletion;

/* one bundle directory: listed when its manifest says it was written before
 * the deletion and knew the index */
static void audit_bundle(cli_ctx *c, deletion *d, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *text = cli_read_text(c, path, 1u << 20);
    if (!text) return;
    cJSON *m = cJSON_Parse(text);
    free(text);
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(m, "created");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, d->is_user ? "n_users" : "n_items");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(m, "model");
    if (!cJSON_IsNumber(cr) || !cJSON_IsNumber(n) || !cJSON_IsString(kind)) {
        fprintf(stderr, "shelf audit: %s: not a bundle manifest (skipped)\n", path);
    } else if (cr->valuedouble <= d->ts && d->idx < (double)n->valuedouble) {
        printf("bundle %s (model %s, written before the deletion) was trained with its data: "
               "retrain (shelf train --store %s --model %s --bundle DIR/) and remove it\n",
               dir, kind->valuestring, d->store, kind->valuestring);
        d->found++;
    }
    cJSON_Delete(m);
}

/* --bundle: one bundle, or a directory of them */
static void audit_bundles(cli_ctx *c, deletion *d, const char *dir)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if (stat(path, &sb) == 0) {
        audit_bundle(c, d, dir);
        return;
    }
    DIR *dh = opendir(dir);
    if (!dh) {
        cli_fail(c, "%s: cannot read the bundle directory", dir);
        return;
    }
    for (struct dirent *e; (e = readdir(dh));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s/manifest.json", dir, e->d_name);
        if (stat(path, &sb) == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            audit_bundle(c, d, path);
        }
    }
    closedir(dh);
}

int cmd_audit(cli_ctx *c)
{
    if (c->n_pos != 2 || strcmp(c->pos[0], "deletion") != 0)
        return cli_fail(c, "usage: shelf audit deletion ID [--what user|item] [--bundle DIR] [--store PATH]"), 2;
    const char *id = c->pos[1], *what = shelf_config_str(c->cfg, "what");
    shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
    if (!st) return 1;
    deletion d = {.store = shelf_config_str(c->cfg, "store")};
    int rc = SHELF_ENOTFOUND;
    for (int u = 1; u >= 0 && rc == SHELF_ENOTFOUND; u--) { /* a user first, then an item */
        if (what && strcmp(what, u ? "user" : "item") != 0) continue;
        d.is_user = u;
        rc = shelf__store_deletion_find(st, u, id, strlen(id), &d.idx, &d.ts);
    }
    uint64_t events = 0, served = 0;
    uint32_t live;
    if (rc == SHELF_ENOTFOUND) {
        int is_user = shelf_store_user_idx(st, id, strlen(id), 0, &live, NULL) == 0;
        if (is_user || shelf_store_item_idx(st, id, strlen(id), 0, &live, NULL) == 0)
            cli_fail(c, "'%s' is a %s of the store: it was not deleted", id, is_user ? "user" : "item");
        else cli_fail(c, "no deletion of '%s' is recorded in %s", id, d.store);
        shelf_store_close(st);
        return 1;
    }
    if (!rc) rc = shelf__store_deletion_refs(st, d.is_user, d.idx, &events, &served);
    if (rc) {
        cli_fail(c, "%s", shelf_store_errmsg(st));
        shelf_store_close(st);
        return 1;
    }
    const char *kind = d.is_user ? "user" : "item";
    if (d.is_user && events) {
        printf("store %s: %llu events of the deleted user (index %u)\n", d.store, (unsigned long long)events, d.idx);
        d.found++;
    }
    if (d.is_user && served) {
        printf("store %s: %llu served slates of the deleted user (index %u)\n", d.store, (unsigned long long)served,
               d.idx);
        d.found++;
    }
    const char *bundles = shelf_config_str(c->cfg, "bundle");
    if (bundles) audit_bundles(c, &d, bundles);
    if (!d.is_user && (events || served))
        fprintf(stderr, "shelf audit: the store keeps %llu events and %llu slate rows of the deleted item (index %u) "
                        "by index only, without its id or fields: the shoppers' histories (docs/deletion.md)\n",
                (unsigned long long)events, (unsigned long long)served, d.idx);
    char when[32] = "";
    time_t t = (time_t)d.ts;
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "shelf audit: %s '%s' deleted %s (index %u): %d place%s where its data still lives%s\n", kind, id,
            when, d.idx, d.found, d.found == 1 ? "" : "s", bundles ? "" : " (no --bundle given: bundles not checked)");
    shelf_store_close(st);
    return d.found ? 3 : 0;
}
