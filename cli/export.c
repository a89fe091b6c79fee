/* export.c: `shelf export`: events, items or users as CSV or JSON Lines with
 * external ids, or per-user sequences in the s3rec form; with --users, a
 * slate for each shopper (e-mail, push) through the ranking room. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <csv.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct ids {
    shelf_arena *arena;
    char **ext;
    uint32_t n, cap;
} ids;

static int ids_add(ids *t, uint32_t idx, const char *id)
{
    if (idx != t->n) return SHELF_ECORRUPT;
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 1024;
        char **e = realloc(t->ext, cap * sizeof *e);
        if (!e) return SHELF_ENOMEM;
        t->ext = e;
        t->cap = cap;
    }
    if (!(t->ext[t->n++] = shelf_arena_strdup(t->arena, id ? id : ""))) return SHELF_ENOMEM;
    return 0;
}
static int user_id_cb(void *ctx, uint32_t idx, const shelf_user *u) { return ids_add(ctx, idx, u->id); }
static int item_id_cb(void *ctx, uint32_t idx, const shelf_item *it) { return ids_add(ctx, idx, it->id); }

typedef struct export_ctx {
    FILE *f;
    int jsonl;
    shelf_store *st;
    ids users, items;
} export_ctx;

/* CSV field, quoted (by libcsv) when it holds a delimiter, quote or line break. */
static void csv_field(FILE *f, const char *s, int last)
{
    if (s && strpbrk(s, ",\"\r\n")) {
        csv_fwrite(f, s, strlen(s));
    } else if (s) {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static void json_line(FILE *f, cJSON *o)
{
    char *t = cJSON_PrintUnformatted(o);
    if (t) fprintf(f, "%s\n", t);
    free(t);
    cJSON_Delete(o);
}

static int event_cb(void *ctx, uint64_t id, const shelf_event *e)
{
    export_ctx *x = ctx;
    const char *type = shelf_store_event_type_name(x->st, e->type);
    if (e->user >= x->users.n || e->item >= x->items.n || !type) return SHELF_ECORRUPT;
    if (x->jsonl) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "user", x->users.ext[e->user]);
        cJSON_AddStringToObject(o, "item", x->items.ext[e->item]);
        cJSON_AddStringToObject(o, "type", type);
        cJSON_AddNumberToObject(o, "value", e->value);
        cJSON_AddNumberToObject(o, "ts", (double)e->ts);
        if (e->rec_id) cJSON_AddStringToObject(o, "rec_id", e->rec_id);
        if (e->context) {
            cJSON *c = cJSON_Parse(e->context);
            if (c) cJSON_AddItemToObject(o, "context", c);
        }
        json_line(x->f, o);
    } else {
        char num[64];
        csv_field(x->f, x->users.ext[e->user], 0);
        csv_field(x->f, x->items.ext[e->item], 0);
        csv_field(x->f, type, 0);
        snprintf(num, sizeof num, "%.9g", (double)e->value);
        csv_field(x->f, num, 0);
        snprintf(num, sizeof num, "%lld", (long long)e->ts);
        csv_field(x->f, num, 0);
        csv_field(x->f, e->rec_id, 0);
        csv_field(x->f, e->context, 1);
    }
    return 0;
}

static int item_cb(void *ctx, uint32_t idx, const shelf_item *it)
{
    export_ctx *x = ctx;
    if ((unsigned char)it->id[0] == 1) return 0; /* retired (shelf_store_delete_item) */
    char price[64] = "", avail[8], created[32];
    if (it->has_price) snprintf(price, sizeof price, "%.10g", it->price);
    snprintf(avail, sizeof avail, "%d", it->available);
    snprintf(created, sizeof created, "%lld", (long long)it->created);
    if (x->jsonl) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", it->id);
        cJSON_AddStringToObject(o, "kind", it->kind);
        if (it->title) cJSON_AddStringToObject(o, "title", it->title);
        if (it->text) cJSON_AddStringToObject(o, "text", it->text);
        if (it->category) cJSON_AddStringToObject(o, "category", it->category);
        if (it->brand) cJSON_AddStringToObject(o, "brand", it->brand);
        if (it->has_price) cJSON_AddNumberToObject(o, "price", it->price);
        cJSON_AddBoolToObject(o, "available", it->available);
        if (it->attributes) {
            cJSON *a = cJSON_Parse(it->attributes);
            if (a) cJSON_AddItemToObject(o, "attributes", a);
        }
        cJSON_AddNumberToObject(o, "created", (double)it->created);
        json_line(x->f, o);
    } else {
        const char *row[] = {it->id, it->kind, it->title, it->text, it->category, it->brand, price, avail,
                             it->attributes, created};
        for (int i = 0; i < 10; i++) csv_field(x->f, row[i], i == 9);
    }
    return 0;
}

static int user_cb(void *ctx, uint32_t idx, const shelf_user *u)
{
    export_ctx *x = ctx;
    if ((unsigned char)u->id[0] == 1) return 0; /* forgotten (shelf_store_delete_user) */
    if (x->jsonl) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", u->id);
        if (u->attributes) {
            cJSON *a = cJSON_Parse(u->attributes);
            if (a) cJSON_AddItemToObject(o, "attributes", a);
        }
        cJSON_AddNumberToObject(o, "created", (double)u->created);
        json_line(x->f, o);
    } else {
        char created[32];
        snprintf(created, sizeof created, "%lld", (long long)u->created);
        csv_field(x->f, u->id, 0);
        csv_field(x->f, u->attributes, 0);
        csv_field(x->f, created, 1);
    }
    return 0;
}

/* s3rec: one line per user with events: "user item_1 ... item_n", in order */
static int export_s3rec(cli_ctx *c, shelf_store *st, FILE *f)
{
    shelf_snapshot *s = NULL;
    if (shelf_snapshot_from_store(st, c->progress, &s)) return cli_fail(c, "%s", shelf_store_errmsg(st));
    for (uint32_t u = 0; u < s->n_users; u++) {
        if (shelf_snapshot_seq_len(s, u) == 0) continue;
        fputs(s->user_ext + s->user_ext_off[u], f);
        for (uint64_t p = s->seq_off[u]; p < s->seq_off[u + 1]; p++) {
            fputc(' ', f);
            fputs(s->item_ext + s->item_ext_off[s->seq_item[p]], f);
        }
        fputc('\n', f);
    }
    shelf_snapshot_free(s);
    return 0;
}

/* ---- slates: --users all|FILE --------------------------------------------------------- */

#define SLATE_BLOCK 256 /* shoppers ranked together, then written in order */

typedef struct {
    char **id;
    size_t n, cap;
    shelf_arena *arena;
} user_list;

static int user_list_add(user_list *l, const char *id, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        char **v = realloc(l->id, cap * sizeof *v);
        if (!v) return SHELF_ENOMEM;
        l->id = v, l->cap = cap;
    }
    char *d = shelf_arena_alloc(l->arena, len + 1, 1);
    if (!d) return SHELF_ENOMEM;
    memcpy(d, id, len);
    d[len] = '\0';
    l->id[l->n++] = d;
    return 0;
}

static int every_user(void *ctx, uint32_t idx, const shelf_user *u)
{
    (void)idx;
    if (!u->id || !u->id[0] || u->id[0] == '\x01') return 0; /* a deleted shopper */
    return user_list_add(ctx, u->id, strlen(u->id));
}

/* the shoppers of --users: every one of the store, or a file's lines */
static int read_users(cli_ctx *c, const char *spec, user_list *l)
{
    if (!strcmp(spec, "all")) {
        shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
        if (!st) return 1;
        int rc = shelf_store_foreach_user(st, every_user, l);
        if (rc) cli_fail(c, "%s", rc == SHELF_ENOMEM ? "out of memory" : shelf_store_errmsg(st));
        shelf_store_close(st);
        return rc ? 1 : 0;
    }
    char *text = cli_read_text(c, spec, (size_t)1 << 30);
    if (!text) return 1;
    int rc = 0;
    for (char *p = text; *p && !rc;) {
        size_t len = strcspn(p, "\n");
        size_t k = len;
        while (k && (p[k - 1] == '\r' || p[k - 1] == ' ' || p[k - 1] == '\t')) k--;
        if (k) rc = user_list_add(l, p, k);
        p += len + (p[len] == '\n');
    }
    free(text);
    return rc ? cli_fail(c, "out of memory") : 0;
}

static void slate_out(FILE *f, shelf_engine *g, const char *user, const shelf_slate *sl, int jsonl)
{
    char id[512];
    if (!jsonl) {
        for (uint32_t k = 0; k < sl->n; k++) {
            char pos[16], score[32];
            snprintf(pos, sizeof pos, "%u", k + 1);
            snprintf(score, sizeof score, "%.9g", (double)sl->items[k].score);
            csv_field(f, user, 0);
            csv_field(f, pos, 0);
            csv_field(f, shelf_engine_item_id(g, sl->items[k].item, id, sizeof id), 0);
            csv_field(f, score, 0);
            csv_field(f, sl->items[k].source, 1);
        }
        return;
    }
    cJSON *o = cJSON_CreateObject(), *arr;
    cJSON_AddStringToObject(o, "user", user);
    cJSON_AddStringToObject(o, "rec_id", sl->rec_id);
    cJSON_AddStringToObject(o, "model", sl->model);
    cJSON_AddStringToObject(o, "source", sl->source);
    if (sl->scenario[0]) cJSON_AddStringToObject(o, "scenario", sl->scenario);
    arr = cJSON_AddArrayToObject(o, "items");
    for (uint32_t k = 0; k < sl->n; k++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", shelf_engine_item_id(g, sl->items[k].item, id, sizeof id));
        cJSON_AddNumberToObject(j, "score", (double)sl->items[k].score);
        cJSON_AddStringToObject(j, "source", sl->items[k].source);
        if (sl->items[k].reason[0]) cJSON_AddStringToObject(j, "reason", sl->items[k].reason);
        cJSON_AddItemToArray(arr, j);
    }
    json_line(f, o);
}

/* ranks block after block of shoppers (shelf_rank_many: in parallel, the
 * model scoring --score-batch of them together), writes them in order; the
 * first failure stops it, naming the shopper */
static int rank_all(cli_ctx *c, shelf_engine *g, const user_list *l, FILE *f, int jsonl)
{
    shelf_rank_request base = cli_rank_request(c), *rq = calloc(SLATE_BLOCK, sizeof *rq);
    size_t batch = (size_t)shelf_config_int(c->cfg, "score-batch");
    shelf_slate *sl = calloc(SLATE_BLOCK, sizeof *sl);
    int *rc = calloc(SLATE_BLOCK, sizeof *rc);
    shelf_err *err = calloc(SLATE_BLOCK, sizeof *err);
    if (!sl || !rc || !err || !rq) {
        free(sl), free(rc), free(err), free(rq);
        return cli_fail(c, "out of memory");
    }
    shelf_progress *pr = shelf_progress_new("slates", l->n, c->progress);
    shelf_progress_set_unit(pr, "slates");
    int bad = 0;
    if (!jsonl) fputs("user,position,item,score,source\n", f);
    for (size_t b = 0; b < l->n && !bad; b += SLATE_BLOCK) {
        int m = (int)(l->n - b < SLATE_BLOCK ? l->n - b : SLATE_BLOCK);
        for (int i = 0; i < m; i++) {
            rq[i] = base;
            rq[i].user = l->id[b + (size_t)i];
        }
        (void)shelf_rank_many(g, rq, (size_t)m, batch, sl, rc, err); /* each rc[i] is looked at below */
        for (int i = 0; i < m; i++) {
            if (!bad && rc[i]) bad = cli_fail(c, "shopper '%s': %s", l->id[b + (size_t)i], err[i].msg);
            if (!bad) slate_out(f, g, l->id[b + (size_t)i], &sl[i], jsonl);
            shelf_slate_free(&sl[i]);
        }
        shelf_progress_update(pr, b + (size_t)m, NULL);
    }
    shelf_progress_finish(pr);
    free(sl), free(rc), free(err), free(rq);
    return bad;
}

int cli_export_slates(cli_ctx *c)
{
    const char *fmt = shelf_config_str(c->cfg, "format");
    if (!fmt || (strcmp(fmt, "csv") != 0 && strcmp(fmt, "jsonl") != 0))
        return cli_fail(c, "slates (--users) are written as --format jsonl or csv"), 2;
    if (shelf_config_is_set(c->cfg, "what")) return cli_fail(c, "--users writes slates: --what does not apply"), 2;
    user_list l = {.arena = shelf_arena_new(0)};
    if (!l.arena) return cli_fail(c, "out of memory");
    int rc = read_users(c, shelf_config_str(c->cfg, "users"), &l);
    shelf_engine *g = NULL;
    shelf_err err = {0};
    shelf_server_opts o = cli_engine_opts(c);
    if (!rc && shelf_engine_open(&o, &g, &err)) rc = cli_fail(c, "%s", err.msg);
    const char *out = shelf_config_str(c->cfg, "out");
    FILE *f = rc ? NULL : cli_out(c, out, NULL);
    if (!rc && !f) rc = 1;
    if (!rc) {
        cli_threads(c);
        double t0 = shelf_now();
        rc = rank_all(c, g, &l, f, !strcmp(fmt, "jsonl"));
        if (f != stdout && fclose(f) != 0 && !rc) rc = cli_fail(c, "%s: write failed", out);
        else if (f == stdout && fflush(stdout) != 0 && !rc) rc = cli_fail(c, "write to standard output failed");
        if (!rc) fprintf(stderr, "shelf export: %zu slates in %.2f s\n", l.n, shelf_now() - t0);
    }
    shelf_engine_close(g);
    free(l.id);
    shelf_arena_free(l.arena);
    return rc ? 1 : 0;
}

int cmd_export(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    if (shelf_config_str(c->cfg, "users")) return cli_export_slates(c);
    const char *fmt = shelf_config_str(c->cfg, "format");
    if (!fmt || !(strcmp(fmt, "csv") == 0 || strcmp(fmt, "jsonl") == 0 || strcmp(fmt, "s3rec") == 0))
        return cli_fail(c, "--format must be csv, jsonl or s3rec"), 2;
    const char *what = shelf_config_str(c->cfg, "what");
    if (strcmp(fmt, "s3rec") == 0 && strcmp(what, "events") != 0)
        return cli_fail(c, "--format s3rec exports events only"), 2;
    const char *out = shelf_config_str(c->cfg, "out");
    shelf_store *st = cli_open_store(c, SHELF_STORE_READONLY);
    if (!st) return 1;
    FILE *f = cli_out(c, out, st);
    if (!f) return 1;
    export_ctx x = {.f = f, .jsonl = strcmp(fmt, "jsonl") == 0, .st = st};
    int rc = 0;
    if (strcmp(fmt, "s3rec") == 0) {
        rc = export_s3rec(c, st, f) ? SHELF_EIO : 0;
    } else if (strcmp(what, "events") == 0) {
        x.users.arena = shelf_arena_new(0);
        x.items.arena = shelf_arena_new(0);
        if (!x.users.arena || !x.items.arena) rc = SHELF_ENOMEM;
        if (!rc) rc = shelf_store_foreach_user(st, user_id_cb, &x.users);
        if (!rc) rc = shelf_store_foreach_item(st, item_id_cb, &x.items);
        if (!rc && !x.jsonl) fputs("user,item,type,value,ts,rec_id,context\n", f);
        if (!rc) rc = shelf_store_foreach_event(st, 0, event_cb, &x);
        if (rc) cli_fail(c, "%s", rc == SHELF_ECORRUPT ? "store refers to unknown ids" : shelf_store_errmsg(st));
    } else if (strcmp(what, "items") == 0) {
        if (!x.jsonl) fputs("id,kind,title,text,category,brand,price,available,attributes,created\n", f);
        if ((rc = shelf_store_foreach_item(st, item_cb, &x))) cli_fail(c, "%s", shelf_store_errmsg(st));
    } else {
        if (!x.jsonl) fputs("id,attributes,created\n", f);
        if ((rc = shelf_store_foreach_user(st, user_cb, &x))) cli_fail(c, "%s", shelf_store_errmsg(st));
    }
    shelf_arena_free(x.users.arena);
    shelf_arena_free(x.items.arena);
    free(x.users.ext);
    free(x.items.ext);
    if (f != stdout && fclose(f) != 0 && !rc) rc = cli_fail(c, "%s: write failed", out);
    else if (f == stdout && fflush(stdout) != 0 && !rc) rc = cli_fail(c, "write to standard output failed");
    shelf_store_close(st);
    return rc ? 1 : 0;
}
