/* served.c: `shelf served export`: the served log (every slate shown, with its
 * items; shelf/slate.h) as JSON Lines with external ids, from a time on. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* k decimal digits at p into *v; -1 at anything else (the end included). */
static int digits(const char *p, int k, int *v)
{
    *v = 0;
    for (int i = 0; i < k; i++) {
        if (!isdigit((unsigned char)p[i])) return -1;
        *v = *v * 10 + (p[i] - '0');
    }
    return 0;
}

/* t: unix seconds, or ISO-8601 UTC: YYYY-MM-DD, or that with THH:MM[:SS]Z.
 * -1 for anything else, an impossible date (02-30) included. */
static int parse_time(const char *t, int64_t *out)
{
    char *end;
    errno = 0;
    long long secs = strtoll(t, &end, 10);
    if ((isdigit((unsigned char)t[0]) || t[0] == '-') && end != t && !*end && !errno) {
        *out = secs;
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, s = 0;
    if (digits(t, 4, &y) || t[4] != '-' || digits(t + 5, 2, &mo) || t[7] != '-' || digits(t + 8, 2, &d)) return -1;
    const char *p = t + 10;
    if (*p == 'T') {
        if (digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi)) return -1;
        p += 6;
        if (*p == ':') {
            if (digits(p + 1, 2, &s)) return -1;
            p += 3;
        }
        if (*p++ != 'Z') return -1;
    }
    if (*p) return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    time_t v = timegm(&tm);
    struct tm back;
    /* timegm carries 02-30 over to 03-02: such a date does not come back */
    if (!gmtime_r(&v, &back) || back.tm_year != y - 1900 || back.tm_mon != mo - 1 || back.tm_mday != d ||
        back.tm_hour != h || back.tm_min != mi || back.tm_sec != s)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* The shortest decimal that reads back as x, so 0.3f prints as 0.3. */
static double short_float(float x)
{
    char b[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, (double)x);
        if ((float)strtod(b, NULL) == x) break;
    }
    return strtod(b, NULL);
}

/* o[key] = the external id of user or item idx; null for SHELF_NONE or a
 * deleted row (its id is a tombstone). */
static int add_ext(cJSON *o, const char *key, shelf_store *st, int user, uint32_t idx)
{
    char buf[4096];
    int rc = 0;
    if (idx != SHELF_NONE)
        rc = user ? shelf_store_user_ext(st, idx, buf, sizeof buf) : shelf_store_item_ext(st, idx, buf, sizeof buf);
    if (rc) return rc;
    if (idx == SHELF_NONE || buf[0] == '\x01') cJSON_AddNullToObject(o, key);
    else cJSON_AddStringToObject(o, key, buf);
    return 0;
}

static int add_item(cJSON *arr, shelf_store *st, const shelf_slate_item *it)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, o);
    int rc = add_ext(o, "id", st, 0, it->item);
    cJSON_AddNumberToObject(o, "position", it->position);
    cJSON_AddNumberToObject(o, "score", short_float(it->score));
    cJSON_AddNumberToObject(o, "propensity", short_float(it->propensity));
    cJSON_AddStringToObject(o, "source", it->source);
    if (it->reason_item == SHELF_NONE && !it->reason[0]) {
        cJSON_AddNullToObject(o, "reason");
        return rc;
    }
    cJSON *why = cJSON_AddObjectToObject(o, "reason");
    if (!rc) rc = add_ext(why, "item", st, 0, it->reason_item);
    cJSON_AddNumberToObject(why, "weight", short_float(it->reason_weight));
    cJSON_AddStringToObject(why, "text", it->reason);
    return rc;
}

typedef struct served_out {
    FILE *f;
    shelf_store *st;
    uint64_t n;
} served_out;

/* One slate, one line. SHELF_EIO when the line cannot be written. */
static int slate_line(void *ctx, const shelf_slate *sl)
{
    served_out *x = ctx;
    time_t tt = (time_t)sl->ts;
    struct tm tm;
    char when[32] = "";
    if (gmtime_r(&tt, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rec_id", sl->rec_id);
    cJSON_AddNumberToObject(o, "ts", (double)sl->ts);
    cJSON_AddStringToObject(o, "time", when);
    int rc = add_ext(o, "user", x->st, 1, sl->user);
    cJSON_AddStringToObject(o, "scenario", sl->scenario);
    cJSON_AddStringToObject(o, "variant", sl->variant);
    cJSON_AddStringToObject(o, "model", sl->model);
    cJSON_AddStringToObject(o, "model_version", sl->model_version);
    cJSON_AddStringToObject(o, "source", sl->source);
    cJSON_AddNumberToObject(o, "skipped_items", sl->n_skipped);
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    for (uint32_t k = 0; !rc && k < sl->n; k++) rc = add_item(items, x->st, &sl->items[k]);
    char *line = rc ? NULL : cJSON_PrintUnformatted(o);
    if (!rc && (!line || fputs(line, x->f) == EOF || fputc('\n', x->f) == EOF)) rc = line ? SHELF_EIO : SHELF_ENOMEM;
    free(line);
    cJSON_Delete(o);
    if (!rc) x->n++;
    return rc;
}

static int served_export(cli_ctx *c)
{
    if (c->n_pos > 1) return cli_fail(c, "export: unexpected argument '%s'", c->pos[1]), 2;
    const char *since_text = shelf_config_str(c->cfg, "since");
    int64_t since;
    if (parse_time(since_text, &since))
        return cli_fail(c, "--since '%s': not a time (unix seconds or ISO-8601 UTC such as 2026-12-04T07:00:00Z)",
                        since_text), 2;
    const char *out = shelf_config_str(c->cfg, "out");
    shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
    if (!st) return 1;
    FILE *f = cli_out(c, out, st);
    if (!f) return 1;
    served_out x = {.f = f, .st = st};
    int rc = shelf_store_served_foreach(st, since, slate_line, &x);
    if (rc == SHELF_EIO) cli_fail(c, "%s: write failed", out);
    else if (rc) cli_fail(c, "%s", rc == SHELF_ENOMEM ? "out of memory" : shelf_store_errmsg(st));
    if (f != stdout ? fclose(f) != 0 : fflush(f) != 0) {
        if (!rc) cli_fail(c, "%s: write failed", out);
        rc = rc ? rc : SHELF_EIO;
    }
    shelf_store_close(st);
    if (!rc) fprintf(stderr, "shelf served: exported %llu slates\n", (unsigned long long)x.n);
    return rc ? 1 : 0;
}

int cmd_served(cli_ctx *c)
{
    if (c->n_pos == 0) return cli_fail(c, "which action? export (see shelf served --help)"), 2;
    if (strcmp(c->pos[0], "export") == 0) return served_export(c);
    return cli_fail(c, "unknown action '%s' (the action is export)", c->pos[0]), 2;
}
