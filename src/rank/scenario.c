/* scenario.c: a scenario's JSON document parsed and checked into
 * shelf__scenario (scenario_int.h). Unknown fields are errors, so a typo
 * never silently turns a control off; every message names the JSON path. */
#include "rank/scenario_int.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_int.h"

typedef struct pctx {
    shelf_err *err;
    int rc;
    const shelf__expr_schema *schema;
} pctx;

static int bad(pctx *p, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(pctx *p, const char *path, const char *fmt, ...)
{
    if (p->rc) return p->rc;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    p->rc = shelf_err_set(p->err, SHELF_EINVAL, "%s: %s", path, what);
    return p->rc;
}

static int oom(pctx *p)
{
    if (!p->rc) p->rc = shelf_err_set(p->err, SHELF_ENOMEM, "out of memory");
    return p->rc;
}

/* path + "." + key, or path + "[i]" (key NULL) */
static const char *sub(char *buf, size_t cap, const char *path, const char *key, int i)
{
    int n = key ? snprintf(buf, cap, "%s.%s", path, key) : snprintf(buf, cap, "%s[%d]", path, i);
    if (n < 0 || (size_t)n >= cap) snprintf(buf + cap - 4, 4, "..."); /* a path this deep is cut, marked */
    return buf;
}

/* o must be an object whose keys are all in known ("a|b|c") */
static int only_keys(pctx *p, const cJSON *o, const char *path, const char *known)
{
    if (!cJSON_IsObject(o)) return bad(p, path, "must be an object");
    const cJSON *k;
    cJSON_ArrayForEach(k, o)
    {
        size_t n = strlen(k->string);
        const char *at = known;
        int found = 0;
        while (*at && !found) {
            const char *end = strchr(at, '|');
            size_t len = end ? (size_t)(end - at) : strlen(at);
            found = len == n && !strncmp(at, k->string, n);
            at = end ? end + 1 : at + len;
        }
        if (!found) {
            char b[200];
            return bad(p, sub(b, sizeof b, path, k->string, 0), "unknown field (known: %s)", known);
        }
    }
    return 0;
}

/* a number within [lo, hi]; absent: *out keeps its default */
static int num(pctx *p, const cJSON *o, const char *key, const char *path, double lo, double hi, float *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    char b[200];
    sub(b, sizeof b, path, key, 0);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return bad(p, b, "must be a number");
    if (v->valuedouble < lo || v->valuedouble > hi) return bad(p, b, "must be between %g and %g", lo, hi);
    *out = (float)v->valuedouble;
    return 0;
}

/* a duration: seconds (a number >= 0) or text such as "30d" */
static int duration(pctx *p, const cJSON *o, const char *key, const char *path, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    char b[200];
    sub(b, sizeof b, path, key, 0);
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 3.2e9 && v->valuedouble == floor(v->valuedouble)) {
        *out = (int64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v) && !shelf__parse_duration(v->valuestring, strlen(v->valuestring), out)) return 0;
    return bad(p, b, "must be a duration: seconds, or a whole number with s, m, h or d (\"30d\")");
}

/* one of the names choices[0..n) */
static int pick(pctx *p, const cJSON *v, const char *path, const char *const *choices, int n, int *out)
{
    for (int k = 0; k < n && cJSON_IsString(v); k++)
        if (choices[k] && !strcmp(v->valuestring, choices[k])) {
            *out = k;
            return 0;
        }
    char list[200] = "";
    for (int k = 0; k < n; k++)
        if (choices[k]) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", choices[k]);
    return bad(p, path, "must be one of %s", list);
}

/* an array of 1..max non-empty strings, copied into *out */
static int strings(pctx *p, const cJSON *v, const char *path, size_t max, char ***out, size_t *n)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1) return bad(p, path, "must be a non-empty array of strings");
    size_t m = (size_t)cJSON_GetArraySize(v);
    if (m > max) return bad(p, path, "holds %zu strings, at most %zu", m, max);
    if (!(*out = calloc(m, sizeof **out))) return oom(p);
    *n = m;
    const cJSON *it;
    size_t k = 0;
    cJSON_ArrayForEach(it, v)
    {
        char b[200];
        if (!cJSON_IsString(it) || !it->valuestring[0]) return bad(p, sub(b, sizeof b, path, NULL, (int)k), "must be a non-empty string");
        if (!((*out)[k++] = strdup(it->valuestring))) return oom(p);
    }
    return 0;
}

static void strings_free(char **s, size_t n)
{
    for (size_t k = 0; s && k < n; k++) free(s[k]);
    free(s);
}

static int expr(pctx *p, const cJSON *v, const char *path, shelf__expr_kind kind, shelf__expr **out)
{
    if (!cJSON_IsString(v)) return bad(p, path, "must be an expression (a string)");
    shelf_err e = {0};
    int rc = shelf__expr_compile(v->valuestring, kind, p->schema, out, &e);
    if (rc == SHELF_ENOMEM) return oom(p);
    if (rc) return bad(p, path, "%s", e.msg);
    return 0;
}

/* ---- the parts ------------------------------------------------------------------------- */

static int parse_source(pctx *p, const cJSON *o, const char *path, shelf__scn_source *s)
{
    static const char *const types[SHELF__SRC_N] = {"model", "similar",  "trending", "popular",
                                                    "list",  "campaign", "content"};
    char b[200];
    if (only_keys(p, o, path, "type|model|weight|items")) return p->rc;
    int t;
    if (pick(p, cJSON_GetObjectItemCaseSensitive(o, "type"), sub(b, sizeof b, path, "type", 0), types, SHELF__SRC_N, &t))
        return p->rc;
    s->type = (shelf__src_type)t;
    s->weight = 1;
    if (num(p, o, "weight", path, 1e-6, 1e6, &s->weight)) return p->rc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model"), *items = cJSON_GetObjectItemCaseSensitive(o, "items");
    if (m && s->type != SHELF__SRC_MODEL) return bad(p, sub(b, sizeof b, path, "model", 0), "only a source of type model names a model");
    if (m && (!cJSON_IsString(m) || strlen(m->valuestring) >= sizeof s->model))
        return bad(p, sub(b, sizeof b, path, "model", 0), "must be a model kind (a short string)");
    if (m) snprintf(s->model, sizeof s->model, "%s", m->valuestring);
    if ((items != NULL) != (s->type == SHELF__SRC_LIST))
        return bad(p, sub(b, sizeof b, path, "items", 0), s->type == SHELF__SRC_LIST ? "a list source needs its items"
                                                                                     : "only a source of type list has items");
    if (items) strings(p, items, sub(b, sizeof b, path, "items", 0), SHELF__SCN_LIST_MAX, &s->items, &s->n_items);
    return p->rc;
}

static int parse_promo(pctx *p, const cJSON *o, const char *path, shelf__scn_promo *pr)
{
    char b[200];
    if (only_keys(p, o, path, "name|items|segment|categories|boost|share|budget_per_day")) return p->rc;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0] || strlen(name->valuestring) >= sizeof pr->name)
        return bad(p, sub(b, sizeof b, path, "name", 0), "must be a name of 1 to %zu bytes", sizeof pr->name - 1);
    snprintf(pr->name, sizeof pr->name, "%s", name->valuestring);
    if (strings(p, cJSON_GetObjectItemCaseSensitive(o, "items"), sub(b, sizeof b, path, "items", 0), SHELF__SCN_LIST_MAX,
                &pr->items, &pr->n_items))
        return p->rc;
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(o, "segment"), *cats = cJSON_GetObjectItemCaseSensitive(o, "categories");
    if (seg) { /* who the shopper is, not which item: user. and ctx. only */
        pctx ps = {.err = p->err, .schema = &(shelf__expr_schema){p->schema ? p->schema->ctx : NULL, NULL, NULL}};
        p->rc = expr(&ps, seg, sub(b, sizeof b, path, "segment", 0), SHELF__EXPR_CONDITION, &pr->segment);
        if (p->rc) return p->rc;
    }
    if (cats && strings(p, cats, sub(b, sizeof b, path, "categories", 0), 1000, &pr->categories, &pr->n_categories))
        return p->rc;
    int has_boost = cJSON_GetObjectItemCaseSensitive(o, "boost") != NULL;
    if (has_boost == (cJSON_GetObjectItemCaseSensitive(o, "share") != NULL))
        return bad(p, path, "needs exactly one of boost (a score multiplier) and share (a fraction of the slots)");
    if (num(p, o, "boost", path, 1, 1e6, &pr->boost) || num(p, o, "share", path, 1e-6, 1, &pr->share)) return p->rc;
    const cJSON *bud = cJSON_GetObjectItemCaseSensitive(o, "budget_per_day");
    sub(b, sizeof b, path, "budget_per_day", 0);
    if (!cJSON_IsNumber(bud)) return bad(p, b, "must be a number of impressions a day");
    if (bud->valuedouble < 1 || bud->valuedouble > 1e12 || bud->valuedouble != floor(bud->valuedouble))
        return bad(p, b, "must be a whole number of impressions from 1 to 1e12, not %g", bud->valuedouble);
    pr->budget_per_day = (int64_t)bud->valuedouble;
    return 0;
}

static const char *const by_names[] = {NULL, "category", "brand", "embedding"};

static int parse_rerank(pctx *p, const cJSON *root, shelf__scenario *s)
{
    char b[200];
    const cJSON *div = cJSON_GetObjectItemCaseSensitive(root, "diversity");
    if (div) {
        if (only_keys(p, div, "scenario.diversity", "by|lambda")) return p->rc;
        int by;
        if (pick(p, cJSON_GetObjectItemCaseSensitive(div, "by"), "scenario.diversity.by", by_names, 4, &by)) return p->rc;
        s->diversity_by = (shelf__by)by;
        s->diversity_lambda = 0.7f;
        if (num(p, div, "lambda", "scenario.diversity", 0, 1, &s->diversity_lambda)) return p->rc;
    }
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(root, "caps"), *c;
    if (caps && (!cJSON_IsArray(caps) || cJSON_GetArraySize(caps) > SHELF__SCN_CAPS))
        return bad(p, "scenario.caps", "must be an array of at most %d caps", SHELF__SCN_CAPS);
    cJSON_ArrayForEach(c, caps)
    {
        sub(b, sizeof b, "scenario.caps", NULL, (int)s->n_caps);
        shelf__scn_cap *cap = &s->caps[s->n_caps++];
        char bb[220];
        int by;
        if (only_keys(p, c, b, "by|max") ||
            pick(p, cJSON_GetObjectItemCaseSensitive(c, "by"), sub(bb, sizeof bb, b, "by", 0), by_names, 3, &by))
            return p->rc;
        cap->by = (shelf__by)by;
        float max = 0;
        if (num(p, c, "max", b, 1, 1e6, &max)) return p->rc;
        if (max < 1 || max != floorf(max)) return bad(p, sub(bb, sizeof bb, b, "max", 0), "must be a whole number >= 1");
        cap->max = (uint32_t)max;
    }
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "long_tail");
    if (lt && (only_keys(p, lt, "scenario.long_tail", "beta|on") || num(p, lt, "beta", "scenario.long_tail", 0, 4, &s->long_tail_beta)))
        return p->rc;
    const cJSON *lt_on = lt ? cJSON_GetObjectItemCaseSensitive(lt, "on") : NULL;
    static const char *const lt_ons[] = {"relevance", "score"};
    if (lt_on && pick(p, lt_on, "scenario.long_tail.on", lt_ons, 2, &s->long_tail_on)) return p->rc;
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(root, "freshness");
    if (fr && (only_keys(p, fr, "scenario.freshness", "half_life") ||
               duration(p, fr, "half_life", "scenario.freshness", &s->freshness_half_life_s)))
        return p->rc;
    const cJSON *rot = cJSON_GetObjectItemCaseSensitive(root, "rotation");
    if (rot) {
        s->rotation_penalty = 0.5f;
        if (only_keys(p, rot, "scenario.rotation", "window|penalty") ||
            duration(p, rot, "window", "scenario.rotation", &s->rotation_window_s) ||
            num(p, rot, "penalty", "scenario.rotation", 1e-6, 1, &s->rotation_penalty))
            return p->rc;
        if (s->rotation_window_s <= 0) return bad(p, "scenario.rotation.window", "is required and must be > 0");
    }
    return 0;
}

static int parse_sources(pctx *p, const cJSON *root, shelf__scenario *s)
{
    char b[200];
    const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(root, "sources"), *it;
    if (!srcs) { /* the deployment's model alone */
        s->src[0] = (shelf__scn_source){.type = SHELF__SRC_MODEL, .weight = 1};
        s->n_src = 1;
    } else if (!cJSON_IsArray(srcs) || cJSON_GetArraySize(srcs) < 1 || cJSON_GetArraySize(srcs) > SHELF__SCN_SOURCES)
        return bad(p, "scenario.sources", "must be an array of 1 to %d sources", SHELF__SCN_SOURCES);
    cJSON_ArrayForEach(it, srcs)
    {
        if (parse_source(p, it, sub(b, sizeof b, "scenario.sources", NULL, (int)s->n_src), &s->src[s->n_src])) {
            s->n_src++; /* freed with the rest */
            return p->rc;
        }
        s->n_src++;
    }
    static const char *const fusions[] = {"weighted", "rrf"};
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "fusion");
    int fu = 0;
    if (f && pick(p, f, "scenario.fusion", fusions, 2, &fu)) return p->rc;
    s->fusion = (shelf__fusion)fu;
    s->rrf_k = 60;
    if (num(p, root, "rrf_k", "scenario", 1, 1e6, &s->rrf_k)) return p->rc;
    float cand = SHELF__SCN_CANDIDATES;
    if (num(p, root, "candidates", "scenario", 0, 1e9, &cand)) return p->rc;
    if (cand != floorf(cand)) return bad(p, "scenario.candidates", "must be a whole number of items (0: all)");
    s->candidates = (uint32_t)cand;
    return 0;
}

static int parse_filters(pctx *p, const cJSON *root, shelf__scenario *s)
{
    char b[200];
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(root, "kinds"), *it;
    if (kinds) {
        char **k = NULL;
        size_t n = 0;
        int rc = strings(p, kinds, "scenario.kinds", SHELF__SCN_KINDS, &k, &n);
        for (size_t i = 0; i < n; i++) s->kinds[i] = k[i];
        s->n_kinds = (uint32_t)n;
        free(k);
        if (rc) return rc;
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "filter");
    if (f && expr(p, f, "scenario.filter", SHELF__EXPR_CONDITION, &s->filter)) return p->rc;
    const cJSON *boosts = cJSON_GetObjectItemCaseSensitive(root, "boosters");
    if (boosts && (!cJSON_IsArray(boosts) || cJSON_GetArraySize(boosts) > SHELF__SCN_BOOSTERS))
        return bad(p, "scenario.boosters", "must be an array of at most %d expressions", SHELF__SCN_BOOSTERS);
    cJSON_ArrayForEach(it, boosts)
    {
        if (expr(p, it, sub(b, sizeof b, "scenario.boosters", NULL, (int)s->n_boost), SHELF__EXPR_NUMBER, &s->boost[s->n_boost]))
            return p->rc;
        s->n_boost++;
    }
    s->min_relevance = -INFINITY;
    return num(p, root, "min_relevance", "scenario", -1e30, 1e30, &s->min_relevance);
}

static int parse_promos_fallback(pctx *p, const cJSON *root, shelf__scenario *s)
{
    char b[200];
    const cJSON *promos = cJSON_GetObjectItemCaseSensitive(root, "promotions"), *it;
    if (promos && (!cJSON_IsArray(promos) || cJSON_GetArraySize(promos) > SHELF__SCN_PROMOS))
        return bad(p, "scenario.promotions", "must be an array of at most %d promotions", SHELF__SCN_PROMOS);
    cJSON_ArrayForEach(it, promos)
    {
        shelf__scn_promo *pr = &s->promo[s->n_promo++];
        if (parse_promo(p, it, sub(b, sizeof b, "scenario.promotions", NULL, (int)s->n_promo - 1), pr)) return p->rc;
        for (uint32_t k = 0; k + 1 < s->n_promo; k++)
            if (!strcmp(s->promo[k].name, pr->name))
                return bad(p, b, "names promotion '%s' twice (names count its spend)", pr->name);
    }
    const cJSON *fb = cJSON_GetObjectItemCaseSensitive(root, "fallback");
    char spec[64] = "";
    if (fb && (!cJSON_IsArray(fb) || cJSON_GetArraySize(fb) < 1 || cJSON_GetArraySize(fb) > SHELF__FB_N))
        return bad(p, "scenario.fallback", "must be an array of 1 to %d of trending, popular", SHELF__FB_N);
    cJSON_ArrayForEach(it, fb)
    {
        if (!cJSON_IsString(it) || strlen(it->valuestring) > 16 || strchr(it->valuestring, ','))
            return bad(p, sub(b, sizeof b, "scenario.fallback", NULL, 0), "must be trending or popular");
        snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%s%s", spec[0] ? "," : "", it->valuestring);
    }
    shelf_err e = {0};
    if (shelf__fallback_parse(&s->fallback, fb ? spec : NULL, &e)) return bad(p, "scenario.fallback", "%s", e.msg);
    s->has_fallback = fb != NULL;
    return 0;
}

/* ---- the document ---------------------------------------------------------------------- */

static int valid_name(const char *n)
{
    size_t len = strlen(n);
    if (!len || len >= SHELF__SCN_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)n[i]) && n[i] != '-' && n[i] != '_') return 0;
    return 1;
}

int shelf__scenario_parse(const char *name, const char *json, const shelf__expr_schema *schema,
                          shelf__scenario **out, shelf_err *err)
{
    if (!name || !valid_name(name))
        return shelf_err_set(err, SHELF_EINVAL, "scenario name '%s': 1 to %d letters, digits, '-' or '_'",
                             name ? name : "", SHELF__SCN_NAME_MAX - 1);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json ? json : "", &end, 1);
    if (!root) {
        size_t at = end && json ? (size_t)(end - json) : 0;
        return shelf_err_set(err, SHELF_EINVAL, "scenario: not JSON (at byte %zu)", at);
    }
    shelf__scenario *s = calloc(1, sizeof *s);
    pctx p = {.err = err, .schema = schema};
    if (!s) {
        cJSON_Delete(root);
        return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    if (!only_keys(&p, root, "scenario",
                   "description|kinds|sources|fusion|rrf_k|candidates|filter|boosters|min_relevance|diversity|caps|long_tail|"
                   "freshness|rotation|promotions|fallback"))
        if (!parse_sources(&p, root, s) && !parse_filters(&p, root, s) && !parse_rerank(&p, root, s))
            parse_promos_fallback(&p, root, s);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "description");
    if (!p.rc && d && !cJSON_IsString(d)) bad(&p, "scenario.description", "must be a string");
    cJSON_Delete(root);
    if (p.rc) {
        shelf__scenario_free(s);
        return p.rc;
    }
    *out = s;
    return 0;
}

void shelf__scenario_unapplied(const shelf__scenario *s, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
#define PART(...)                                                                                   \
    do {                                                                                           \
        if (len + 1 < cap) len += (size_t)snprintf(buf + len, cap - len, "%s", len ? "," : "");   \
        if (len + 1 < cap) len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__);            \
    } while (0)
    for (uint32_t k = 0; k < s->n_caps; k++)
        if (s->caps[k].by == SHELF__BY_EMBEDDING) PART("caps[%u]", k);
#undef PART
    if (len >= cap) buf[cap - 1] = '\0';
}

void shelf__scenario_free(shelf__scenario *s)
{
    if (!s) return;
    for (uint32_t k = 0; k < s->n_kinds; k++) free(s->kinds[k]);
    for (uint32_t k = 0; k < s->n_src; k++) strings_free(s->src[k].items, s->src[k].n_items);
    shelf__expr_free(s->filter);
    for (uint32_t k = 0; k < s->n_boost; k++) shelf__expr_free(s->boost[k]);
    for (uint32_t k = 0; k < s->n_promo; k++) {
        strings_free(s->promo[k].items, s->promo[k].n_items);
        strings_free(s->promo[k].categories, s->promo[k].n_categories);
        shelf__expr_free(s->promo[k].segment);
    }
    free(s);
}

int shelf__scenario_check(const char *name, const char *json, char *const *type_names, uint32_t n_types, shelf_err *err)
{
    shelf__rank_env env = {.type_names = type_names, .n_types = n_types};
    shelf__expr_schema schema = shelf__rank_schema(&env);
    shelf__scenario *s = NULL;
    int rc = shelf__scenario_parse(name, json, &schema, &s, err);
    shelf__scenario_free(s);
    return rc;
}
