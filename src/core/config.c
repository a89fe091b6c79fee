/* config.c: the one configuration table and its values; CLI flags and config
 * files are parsed against it. Add an option by adding one row: here for a
 * common option, beside the model's code for a model's hyperparameter. */
#include "shelf/config.h"
#include "shelf/model.h"
#include "core/assert_int.h"
#include "core/config_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ALL "*"
#define DAY 86400.0
static const shelf_cfg_def common[] = {
    /* name, type, default, min, max, choices, scope, help, unit */
    {"store", SHELF_CFG_STRING, "shelf.db", 0, 0, NULL,
     "init import gen stats export snapshot eval train predict keys serve recommend scenario audit search",
     "path of the SQLite store", ""},
    {"quiet", SHELF_CFG_BOOL, "false", 0, 0, NULL, ALL, "no progress bars", ""},
    {"log-level", SHELF_CFG_ENUM, "info", 0, 0, "debug|info|warn|error|off", ALL,
     "least severe log level printed to stderr", ""},
    {"log-json", SHELF_CFG_BOOL, "false", 0, 0, NULL, ALL, "log as JSON lines", ""},

    {"format", SHELF_CFG_ENUM, NULL, 0, 0, "s3rec|pairs|csv|jsonl|ml100k|taobao", "import export eval train",
     "file format (import, eval/train --data: all; export: csv, jsonl, s3rec)", ""},
    {"what", SHELF_CFG_ENUM, "events", 0, 0, "events|items|users", "import export",
     "which rows a csv/jsonl file holds", ""},
    {"attributes", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import eval train",
     "s3rec: the *_item2attributes.json file", ""},
    {"item-file", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import",
     "ml100k: the u.item file (default: beside u.data)", ""},
    {"map", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import eval train",
     "csv/jsonl column mapping field=column,... (e.g. user=visitorid,ts=timestamp)", ""},
    {"type", SHELF_CFG_STRING, "view", 0, 0, NULL, "import eval train",
     "event type of records that name none (s3rec, pairs; csv/jsonl rows without a type), as the HTTP API's "
     "default; the import summary counts them", ""},
    {"event-types", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import eval train",
     "event types to add with their weights, as NAME=WEIGHT,... (wishlist=2,compare=0.5; view is 1, purchase 5), "
     "for --type-map to map onto", ""},
    {"allow-duplicates", SHELF_CFG_BOOL, "false", 0, 0, NULL, "import eval train",
     "store events again that the store already has (the same user, item, type and time), and files imported "
     "before", ""},
    {"category-separator", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import",
     "items: the character between a category path's levels in the file (. for electronics.audio); stored as "
     "electronics > audio, so filters on electronics find the subtree", ""},
    {"columns", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import eval train",
     "csv without a header line: its columns in order, as a header would name them (user,item,ts)", ""},
    {"type-map", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import eval train",
     "csv/jsonl: the file's event types as the store's: pv=view,fav=like,remove_from_cart=- (- drops those rows, "
     "counted in the summary)", ""},
    {"delimiter", SHELF_CFG_STRING, ",", 0, 0, NULL, "import", "csv field delimiter (one character; \\t for tab)", ""},

    {"seed", SHELF_CFG_INT, "42", 0, 9.0e18, NULL, "gen eval train", "random seed", ""},
    {"users", SHELF_CFG_INT, "1000", 1, 4.0e9, NULL, "gen", "number of users", ""},
    {"items", SHELF_CFG_INT, "500", 1, 4.0e9, NULL, "gen", "number of items", ""},
    {"events", SHELF_CFG_INT, "20000", 1, 1.0e11, NULL, "gen", "number of events", ""},
    {"categories", SHELF_CFG_INT, "8", 1, 10000, NULL, "gen", "top-level categories", ""},
    {"brands", SHELF_CFG_INT, "20", 1, 1000000, NULL, "gen", "brands", ""},
    {"factors", SHELF_CFG_INT, "16", 1, 256, NULL, "gen", "latent taste dimensions", ""},
    {"zipf", SHELF_CFG_DOUBLE, "1.0", 0, 4, NULL, "gen", "popularity skew exponent", ""},
    {"days", SHELF_CFG_INT, "30", 1, 3650, NULL, "gen", "time span in days", "days"},
    {"start", SHELF_CFG_INT, "1767225600", 0, 4.0e9, NULL, "gen",
     "unix time of the first day (1767225600: 2026-01-01)", "unix seconds"},
    {"late-items", SHELF_CFG_DOUBLE, "0.2", 0, 0.95, NULL, "gen", "share of items added over time", ""},
    {"csv-events", SHELF_CFG_STRING, NULL, 0, 0, NULL, "gen",
     "write events to this CSV file instead of the store", ""},
    {"csv-items", SHELF_CFG_STRING, NULL, 0, 0, NULL, "gen", "with --csv-events: also write items here", ""},

    {"json", SHELF_CFG_BOOL, "false", 0, 0, NULL, "stats keys recommend search", "print JSON instead of a table", ""},
    {"out", SHELF_CFG_STRING, "-", 0, 0, NULL, "export snapshot", "output file ('-': standard output)", ""},

    /* API keys (shelf keys) */
    {"scope", SHELF_CFG_ENUM, NULL, 0, 0, "read|write|admin", "keys",
     "keys create: what the key may do (admin > write > read)", ""},
    {"name", SHELF_CFG_STRING, NULL, 0, 0, NULL, "keys", "keys create: a name to tell the key apart (at most 63 bytes)", ""},

    /* the served log (shelf served export) */
    {"store", SHELF_CFG_STRING, "shelf.db", 0, 0, NULL, "served", "path of the SQLite store", ""},
    {"since", SHELF_CFG_STRING, "0", 0, 0, NULL, "served",
     "export the slates served at or after this time: unix seconds or ISO-8601 UTC (2026-12-04T07:00:00Z); 0: all",
     ""},
    {"format", SHELF_CFG_ENUM, "jsonl", 0, 0, "jsonl", "served", "output format: JSON Lines, one slate per line", ""},
    {"out", SHELF_CFG_STRING, "-", 0, 0, NULL, "served", "output file ('-': standard output)", ""},

    /* evaluation and training */
    {"data", SHELF_CFG_STRING, NULL, 0, 0, NULL, "eval train",
     "data: a file to import into a temporary in-memory store (with --format), or a shelf store", ""},
    {"models", SHELF_CFG_STRING, "pop,itemknn,ease,als,bpr", 0, 0, NULL, "eval", "comma-separated models to evaluate", ""},
    {"model", SHELF_CFG_STRING, NULL, 0, 0, NULL, "train", "model to train", ""},
    {"protocol", SHELF_CFG_ENUM, "loo-full", 0, 0, "loo-full|loo-s100|temporal|cold-item|ml100k-5fold|ratings-80-20",
     "eval",
     "evaluation protocol (BENCHMARKS.md); ml100k-5fold: --data is the MovieLens-100k folder (u1..u5 base/test, "
     "plain or .xz); ratings-80-20: a seeded random 20% of the user-item pairs with ratings is test", ""},
    {"k", SHELF_CFG_STRING, "5,10,20", 0, 0, NULL, "eval", "cut-offs K, comma-separated (at most 20)", ""},
    {"valid", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval", "report on validation targets instead of test", ""},
    {"tune", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval",
     "grid-search each model's main hyperparameters on validation NDCG@10, then test the best", ""},
    {"json", SHELF_CFG_STRING, NULL, 0, 0, NULL, "eval", "write the results as JSON to this file", ""},
    {"topk-out", SHELF_CFG_STRING, NULL, 0, 0, NULL, "eval",
     "write each user's top-20 list here (FILE.<model> when several models)", ""},
    {"cold-share", SHELF_CFG_DOUBLE, "0.1", 0.001, 0.9, NULL, "eval", "cold-item protocol: share of items held out", ""},
    {"scenario", SHELF_CFG_STRING, NULL, 0, 0, NULL, "eval",
     "a scenario document (JSON file, docs/scenarios.md) whose stages choose every list from the model's scores "
     "(loo-full, temporal)", ""},
    {"cold-fill", SHELF_CFG_INT, "0", 0, 64, NULL, "eval",
     "items without training events score by their N content neighbours (category, brand, attributes, title "
     "words; 0: by the model)", ""},
    {"temporal-test", SHELF_CFG_DURATION, "7d", 0, 3650 * DAY, NULL, "eval",
     "temporal protocol: the last this long of the data is test (the same span before it validation)", ""},
    {"pop-leak-targets", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval",
     "protocol check only: count popularity over ALL interactions, test targets included "
     "(what the published PopRec row does); never use for real results", ""},
    {"threads", SHELF_CFG_INT, "0", 0, 256, NULL, "eval train export", "threads (0: all cores)", ""},
    {"bundle", SHELF_CFG_STRING, NULL, 0, 0, NULL, "train predict serve recommend export audit search",
     "model bundle directory (train: written, missing parents made; a directory of bundles, or DIR/, gets a new "
     "MODEL-TIME one; predict: read; serve, recommend, search: a bundle or a directory of bundles, the newest that "
     "loads is used)", ""},
    /* serve */
    {"port", SHELF_CFG_INT, "8080", 0, 65535, NULL, "serve", "TCP port to listen on (0: any free port)", ""},
    {"bind", SHELF_CFG_STRING, "127.0.0.1", 0, 0, NULL, "serve", "IPv4 address to listen on (0.0.0.0: all)", ""},
    {"http-threads", SHELF_CFG_INT, "0", 0, 1024, NULL, "serve", "HTTP worker threads (0: 2 x cores, at least 4)", ""},
    {"rank-workers", SHELF_CFG_INT, "0", 0, 1024, NULL, "serve",
     "threads that rank (recommendations, similar, popular, search), fed first come, first served from every "
     "connection (0: one per core)", ""},
    {"auth", SHELF_CFG_BOOL, "true", 0, 0, NULL, "serve",
     "ask for API keys (Authorization: Bearer KEY; create keys with shelf keys create)", ""},
    {"max-body", SHELF_CFG_INT, "16777216", 1024, 1.0e10, NULL, "serve", "largest request body (413 above)", "bytes"},
    {"max-batch", SHELF_CFG_INT, "10000", 1, 1.0e7, NULL, "serve", "most events, items or users in one request", ""},
    {"max-n", SHELF_CFG_INT, "1000", 1, 1.0e6, NULL, "serve", "largest n of a slate", ""},
    {"timeout", SHELF_CFG_INT, "30", 1, 86400, NULL, "serve",
     "idle connection timeout, once a request head came (keep-alive waits, slow bodies)", "seconds"},
    {"retrain-within", SHELF_CFG_DURATION, "1d", 1, 365 * DAY, NULL, "serve",
     "after a shopper or item is deleted, the bundle in service still holds its data: /v1/health asks for a "
     "retrain (with the command) and says degraded once this long has passed", ""},
    {"header-timeout", SHELF_CFG_INT, "10", 1, 86400, NULL, "serve",
     "a new connection silent this long before its request head is complete is closed", "seconds"},
    {"max-conns-per-ip", SHELF_CFG_INT, "64", 1, 100000, NULL, "serve",
     "connections one client address may hold open (more are closed at once)", ""},
    {"cors-origins", SHELF_CFG_STRING, NULL, 0, 0, NULL, "serve",
     "origins a browser may call from: https://shop.example,https://m.shop.example (* any); answers OPTIONS "
     "preflights and adds Access-Control-Allow-Origin for them (default: none)", ""},
    {"access-log", SHELF_CFG_STRING, NULL, 0, 0, NULL, "serve",
     "append one JSON line per request to this file: time, method, route, status, ms, key (the API key's id, "
     "never the key)", ""},
    {"body-memory", SHELF_CFG_INT, "64", 1, 1.0e6, NULL, "serve",
     "request bodies held in memory at once, all connections together (503 past it; never below --max-body)",
     "MiB"},
    {"pop-half-life", SHELF_CFG_DURATION, "7d", 1, 36500 * DAY, NULL, "serve recommend export",
     "half-life of the popularity counters (trending, /v1/popular)", ""},
    {"session-memory", SHELF_CFG_INT, "1024", 1, 1.0e6, NULL, "serve recommend export",
     "memory for the model's per-shopper sessions (a transformer's profiles and key/value caches; the oldest go "
     "first)", "MiB"},
    {"served-log", SHELF_CFG_BOOL, "true", 0, 0, NULL, "serve", "write every slate to the served log", ""},
    {"exclude-seen", SHELF_CFG_STRING, "purchase", 0, 0, NULL, "serve recommend export",
     "past events that hide an item from slates: TYPE[:WINDOW],... (purchase,view:7d; a window is a whole number "
     "with unit s, m, h or d; none)", ""},
    {"source-models", SHELF_CFG_STRING, "", 0, 0, NULL, "serve",
     "model kinds the scenarios' sources may name, loaded beside the served model: the newest bundle of each in the "
     "--bundle directory (ease,itemknn; at most 4)", ""},
    {"fallback", SHELF_CFG_STRING, "trending,popular", 0, 0, NULL, "serve recommend export",
     "what a shopper without usable history gets, in order: trending (decayed popularity), popular (all time)", ""},
    {"blend-popularity", SHELF_CFG_DOUBLE, "0", -10, 10, NULL, "serve recommend export",
     "mix the model's scores with the trending popularity, both standardised: z(score) + W z(log(1 + popularity)); "
     "0: the model alone, > 0 towards what sells now, < 0 towards the long tail", ""},
    {"cold-neighbours", SHELF_CFG_INT, "1", 1, 64, NULL, "serve recommend export search",
     "items the model did not learn (added after training) score by this many content neighbours", ""},
    {"user", SHELF_CFG_STRING, NULL, 0, 0, NULL, "predict recommend", "external user id", ""},
    {"items", SHELF_CFG_STRING, NULL, 0, 0, NULL, "recommend",
     "an anonymous session: item ids, oldest first, comma-separated", ""},
    {"similar", SHELF_CFG_STRING, NULL, 0, 0, NULL, "recommend", "the items that go with this item id", ""},
    {"popular", SHELF_CFG_BOOL, "false", 0, 0, NULL, "recommend", "what is popular now", ""},
    {"n", SHELF_CFG_INT, "10", 1, 1000, NULL, "recommend export", "items on the slate", ""},
    {"kind", SHELF_CFG_STRING, NULL, 0, 0, NULL, "recommend export", "only items of this kind (product, content, ...)", ""},
    {"category", SHELF_CFG_STRING, NULL, 0, 0, NULL, "recommend export", "only items in this category or below it", ""},
    {"context", SHELF_CFG_STRING, NULL, 0, 0, NULL, "recommend",
     "the shopper's context: key=value,... (segment=b,device=mobile)", ""},
    {"what", SHELF_CFG_ENUM, NULL, 0, 0, "user|item", "audit", "the kind of the deleted id (default: a user, then an item)",
     ""},
    {"users", SHELF_CFG_STRING, NULL, 0, 0, NULL, "export",
     "write slates instead of rows: for every shopper (all) or the ids of a file (one a line), through the ranking "
     "room as shelf serve ranks them (--bundle, --scenario, --n)", ""},
    {"scenario", SHELF_CFG_STRING, NULL, 0, 0, NULL, "recommend export",
     "a stored scenario (shelf scenario put) whose stages make the slates", ""},
    {"score-batch", SHELF_CFG_INT, "256", 0, 65536, NULL, "export",
     "with --users: shoppers the model scores together (the transformer: one matrix product of their profiles "
     "with the items; at most 64 MiB of scores); 0: each alone, as shelf serve does", ""},
    {"explain", SHELF_CFG_BOOL, "false", 0, 0, NULL, "recommend export", "a reason for every item", ""},
    {"item", SHELF_CFG_STRING, NULL, 0, 0, NULL, "predict", "external item id", ""},
    /* shelf search (docs/search.md) */
    {"query", SHELF_CFG_STRING, NULL, 0, 0, NULL, "search",
     "the question or words to find in the items' title and text (words ORed; when every word is under 3 "
     "characters, a substring scan)", ""},
    {"user", SHELF_CFG_STRING, NULL, 0, 0, NULL, "search",
     "the shopper whose profile (the model's scores of the matches) re-ranks them; unknown or none: the text order",
     ""},
    {"kind", SHELF_CFG_STRING, NULL, 0, 0, NULL, "search", "only items of this kind (faq, product, ...)", ""},
    {"n", SHELF_CFG_INT, "10", 1, 100, NULL, "search", "answers", ""},
    {"profile-weight", SHELF_CFG_DOUBLE, "0.5", 0, 1, NULL, "search",
     "the profile's share of the score: (1 - W) text + W profile, each min-max scaled over the matches", ""},
    /* each model's hyperparameters follow: the rows beside its code (shelf__model_rows) */
};

/* ---- the table: the common rows, then each model's ---------------------- */

#define MAX_ROWS 512  /* room for every row of every model */
#define MAX_MODELS 32

/* Joined once, at the first use; read-only after that. */
static struct {
    shelf_cfg_def row[MAX_ROWS];
    size_t n;
    struct {
        const char *model;
        size_t lo, hi; /* its rows: row[lo..hi) */
    } model[MAX_MODELS];
    size_t n_models;
} tab;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void join_rows(void)
{
    tab.n = sizeof common / sizeof common[0];
    memcpy(tab.row, common, sizeof common);
    const shelf_cfg_def *rows;
    const char *name;
    size_t n;
    for (size_t k = 0; (rows = shelf__model_rows(k, &name, &n)); k++) {
        /* more rows than room is a build mistake, not a runtime condition */
        SHELF_ASSERT(k < MAX_MODELS && tab.n + n <= MAX_ROWS);
        tab.model[k].model = name;
        tab.model[k].lo = tab.n;
        memcpy(tab.row + tab.n, rows, n * sizeof *rows);
        tab.n += n;
        tab.model[k].hi = tab.n;
        tab.n_models = k + 1;
    }
}

static void need_table(void) { pthread_once(&tab_once, join_rows); }

/* rows before the first model's */
static size_t n_common(void) { return tab.n_models ? tab.model[0].lo : tab.n; }

typedef struct value {
    int set;      /* explicitly set */
    int has;      /* has a value (default or set) */
    int64_t i;    /* INT, BOOL */
    double d;     /* DOUBLE, DURATION (seconds) */
    char *s;      /* STRING, ENUM (owned) */
} value;

struct shelf_config {
    value *v;         /* one per row of the table */
    char command[32]; /* set by parse_args: a name used by several commands
                       * (--json) means the row of this command */
};

const shelf_cfg_def *shelf_config_table(size_t *n)
{
    need_table();
    if (n) *n = tab.n;
    return tab.row;
}

const shelf_cfg_def *shelf_model_options(const char *name, size_t *n)
{
    need_table();
    for (size_t k = 0; k < tab.n_models; k++) {
        if (strcmp(tab.model[k].model, name) != 0) continue;
        *n = tab.model[k].hi - tab.model[k].lo;
        return &tab.row[tab.model[k].lo];
    }
    *n = 0;
    return NULL;
}

static int in_scope(const shelf_cfg_def *d, const char *command);

/* Row of name; with a command, the row whose scope includes it is preferred
 * (a name may have one row per command, never two rows in one scope).
 * Without one (options set in code, as a library caller fitting a model
 * does), a model's row comes before a common row of the same name (the pop
 * model's pop-half-life before the server's). */
static int find_row(const char *name, const char *command)
{
    int first = -1;
    for (size_t k = 0; k < tab.n; k++) {
        size_t i = (k + n_common()) % tab.n; /* the model rows first */
        if (strcmp(tab.row[i].name, name) != 0) continue;
        if (!command || !command[0] || in_scope(&tab.row[i], command)) return (int)i;
        if (first < 0) first = (int)i;
    }
    return first;
}

static int find_idx(const char *name) { return find_row(name, NULL); }

const shelf_cfg_def *shelf_config_find(const char *name)
{
    need_table();
    int i = find_idx(name);
    return i < 0 ? NULL : &tab.row[i];
}

static int parse_bool(const char *s, int64_t *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (int k = 0; k < 4; k++) {
        if (strcasecmp(s, yes[k]) == 0) return *out = 1, 0;
        if (strcasecmp(s, no[k]) == 0) return *out = 0, 0;
    }
    return SHELF_EINVAL;
}

/* 1 if s is one of the sep-separated parts of list */
static int part_of(const char *list, char sep, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

static int choice_ok(const char *choices, const char *s) { return part_of(choices, '|', s); }

/* ---- durations: one type for every time span --------------------------- */

int shelf__duration_parse(const char *text, double *seconds)
{
    char *end;
    if (!(*text >= '0' && *text <= '9') && *text != '.') return SHELF_EINVAL; /* no sign, space, inf, nan */
    errno = 0;
    double x = strtod(text, &end), mul = 1;
    if (errno || end == text || !isfinite(x)) return SHELF_EINVAL;
    switch (*end) {
    case '\0': break;
    case 's': mul = 1, end++; break;
    case 'm': mul = 60, end++; break;
    case 'h': mul = 3600, end++; break;
    case 'd': mul = DAY, end++; break;
    default: return SHELF_EINVAL;
    }
    if (*end) return SHELF_EINVAL;
    *seconds = x * mul;
    return 0;
}

/* seconds as text in the largest unit that holds it whole ("7d", "90s") */
static const char *duration_text(double seconds, char *buf, size_t cap)
{
    static const struct {
        double s;
        char unit;
    } units[] = {{DAY, 'd'}, {3600, 'h'}, {60, 'm'}};
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
        if (seconds != 0 && fmod(seconds, units[k].s) == 0) {
            snprintf(buf, cap, "%.15g%c", seconds / units[k].s, units[k].unit);
            return buf;
        }
    }
    snprintf(buf, cap, "%.15gs", seconds);
    return buf;
}

static int set_duration(const shelf_cfg_def *d, value *v, const char *text, const char *pre, shelf_err *err)
{
    double x;
    if (shelf__duration_parse(text, &x))
        return shelf_err_set(err, SHELF_EINVAL,
                             "%s: option '%s' wants a duration (a number with unit s, m, h or d: 90s, 1.5h, 7d; "
                             "bare: seconds), not '%s'",
                             pre, d->name, text);
    if (x < d->min || x > d->max) {
        char lo[32], hi[32];
        return shelf_err_set(err, SHELF_ERANGE, "%s: option '%s' must be in [%s, %s], not '%s'", pre, d->name,
                             duration_text(d->min, lo, sizeof lo), duration_text(d->max, hi, sizeof hi), text);
    }
    v->d = x;
    return 0;
}

/* Parses text into slot i; on error fills err (prefixed with origin). */
static int set_value(shelf_config *c, int i, const char *text, const char *origin, shelf_err *err)
{
    const shelf_cfg_def *d = &tab.row[i];
    value *v = &c->v[i];
    const char *pre = origin ? origin : d->name;
    switch (d->type) {
    case SHELF_CFG_BOOL:
        if (parse_bool(text, &v->i))
            return shelf_err_set(err, SHELF_EINVAL, "%s: option '%s' wants true or false, not '%s'", pre,
                                 d->name, text);
        break;
    case SHELF_CFG_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(text, &end, 10);
        if (errno || end == text || *end)
            return shelf_err_set(err, SHELF_EINVAL, "%s: option '%s' wants an integer, not '%s'", pre,
                                 d->name, text);
        if ((double)x < d->min || (double)x > d->max)
            return shelf_err_set(err, SHELF_ERANGE, "%s: option '%s' must be in [%.0f, %.0f], not %lld",
                                 pre, d->name, d->min, d->max, x);
        v->i = x;
        break;
    }
    case SHELF_CFG_DOUBLE: {
        char *end;
        errno = 0;
        double x = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(x))
            return shelf_err_set(err, SHELF_EINVAL, "%s: option '%s' wants a number, not '%s'", pre,
                                 d->name, text);
        if (x < d->min || x > d->max)
            return shelf_err_set(err, SHELF_ERANGE, "%s: option '%s' must be in [%g, %g], not %g", pre,
                                 d->name, d->min, d->max, x);
        v->d = x;
        break;
    }
    case SHELF_CFG_DURATION: {
        int rc = set_duration(d, v, text, pre, err);
        if (rc) return rc;
        break;
    }
    case SHELF_CFG_ENUM:
        if (!choice_ok(d->choices, text))
            return shelf_err_set(err, SHELF_EINVAL, "%s: option '%s' must be one of %s, not '%s'", pre,
                                 d->name, d->choices, text);
        /* fall through */
    case SHELF_CFG_STRING: {
        char *s = strdup(text);
        if (!s) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        free(v->s);
        v->s = s;
        break;
    }
    }
    v->has = 1;
    return 0;
}

shelf_config *shelf_config_new(void)
{
    need_table();
    shelf_config *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (!(c->v = calloc(tab.n, sizeof *c->v))) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < tab.n; i++) {
        if (!tab.row[i].def) continue;
        /* defaults are part of the program: a bad one is a bug */
        SHELF_ASSERT(set_value(c, (int)i, tab.row[i].def, "default", NULL) == 0);
    }
    return c;
}

void shelf_config_free(shelf_config *c)
{
    if (!c) return;
    for (size_t i = 0; i < tab.n; i++) free(c->v[i].s);
    free(c->v);
    free(c);
}

int shelf_config_set(shelf_config *c, const char *name, const char *text, const char *origin,
                     shelf_err *err)
{
    int i = find_row(name, c->command);
    if (i < 0)
        return shelf_err_set(err, SHELF_ENOTFOUND, "%s: unknown option '%s'", origin ? origin : "config",
                             name);
    int rc = set_value(c, i, text, origin, err);
    if (rc == 0) c->v[i].set = 1;
    return rc;
}

int shelf_config_is_set(const shelf_config *c, const char *name)
{
    int i = find_row(name, c->command);
    return i >= 0 && c->v[i].set;
}

static const value *get(const shelf_config *c, const char *name, shelf_cfg_type t)
{
    int i = find_row(name, c->command);
    SHELF_ASSERT(i >= 0);
    shelf_cfg_type rt = tab.row[i].type;
    SHELF_ASSERT(rt == t || (t == SHELF_CFG_STRING && rt == SHELF_CFG_ENUM) ||
                 (t == SHELF_CFG_DOUBLE && rt == SHELF_CFG_DURATION));
    return &c->v[i];
}

int shelf_config_bool(const shelf_config *c, const char *name) { return get(c, name, SHELF_CFG_BOOL)->i != 0; }
int64_t shelf_config_int(const shelf_config *c, const char *name) { return get(c, name, SHELF_CFG_INT)->i; }
double shelf_config_double(const shelf_config *c, const char *name) { return get(c, name, SHELF_CFG_DOUBLE)->d; }
const char *shelf_config_str(const shelf_config *c, const char *name)
{
    const value *v = get(c, name, SHELF_CFG_STRING);
    return v->has ? v->s : NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = '\0';
    return s;
}

int shelf_config_load_file(shelf_config *c, const char *path, shelf_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return shelf_err_set(err, SHELF_ENOTFOUND, "%s: cannot open config file", path);
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char origin[512];
        snprintf(origin, sizeof origin, "%s:%ld", path, lineno);
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = shelf_err_set(err, SHELF_EINVAL, "%s: expected 'name = value'", origin);
            break;
        }
        *eq = '\0';
        char *name = trim(s), *val = trim(eq + 1);
        if ((rc = shelf_config_set(c, name, val, origin, err))) break;
    }
    if (rc == 0 && ferror(f)) rc = shelf_err_set(err, SHELF_EIO, "%s: read error", path);
    free(line);
    fclose(f);
    return rc;
}

static int in_scope(const shelf_cfg_def *d, const char *command)
{
    if (strcmp(d->scope, ALL) == 0) return 1;
    size_t n = strlen(command);
    for (const char *p = d->scope; (p = strstr(p, command)); p += n) {
        int start = p == d->scope || p[-1] == ' ';
        int end = p[n] == '\0' || p[n] == ' ';
        if (start && end) return 1;
    }
    return 0;
}

int shelf_config_parse_args(shelf_config *c, const char *command, int argc, char **argv,
                            char ***positional, int *n_positional, int *help, shelf_err *err)
{
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    snprintf(c->command, sizeof c->command, "%s", command);
    int np = 0, rc = 0, only_pos = 0;
    *help = 0;
    for (int a = 0; a < argc; a++) {
        char *arg = argv[a];
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            pos[np++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0 || strcmp(arg, "--help-all") == 0) {
            if (*help < 2) *help = strcmp(arg, "--help-all") == 0 ? 2 : 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            rc = shelf_err_set(err, SHELF_EINVAL, "unknown flag '%s' (see shelf %s --help)", arg, command);
            break;
        }
        char name[128];
        const char *val = NULL;
        const char *eq = strchr(arg + 2, '=');
        size_t nl = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nl >= sizeof name) nl = sizeof name - 1;
        memcpy(name, arg + 2, nl);
        name[nl] = '\0';
        if (eq) val = eq + 1;

        if (strcmp(name, "config") == 0) {
            if (!val) {
                if (a + 1 >= argc) {
                    rc = shelf_err_set(err, SHELF_EINVAL, "--config needs a file");
                    break;
                }
                val = argv[++a];
            }
            if ((rc = shelf_config_load_file(c, val, err))) break;
            continue;
        }
        int i = find_row(name, command);
        int negated = 0;
        if (i < 0 && strncmp(name, "no-", 3) == 0) {
            i = find_row(name + 3, command);
            negated = i >= 0 && tab.row[i].type == SHELF_CFG_BOOL;
            if (!negated) i = -1;
        }
        if (i < 0 || !in_scope(&tab.row[i], command)) {
            rc = shelf_err_set(err, SHELF_EINVAL, "unknown option '--%s' for 'shelf %s' (see --help)", name,
                               command);
            break;
        }
        char origin[160];
        snprintf(origin, sizeof origin, "--%s", tab.row[i].name);
        if (tab.row[i].type == SHELF_CFG_BOOL && !val) {
            val = negated ? "false" : "true";
        } else if (negated) {
            rc = shelf_err_set(err, SHELF_EINVAL, "--no-%s takes no value", tab.row[i].name);
            break;
        } else if (!val) {
            if (a + 1 >= argc) {
                rc = shelf_err_set(err, SHELF_EINVAL, "option '--%s' needs a value", name);
                break;
            }
            val = argv[++a];
        }
        if ((rc = shelf_config_set(c, tab.row[i].name, val, origin, err))) break;
    }
    if (rc) {
        free(pos);
        return rc;
    }
    *positional = pos;
    *n_positional = np;
    return 0;
}

/* One row of --help: flag, help, then (unit; default; bounds). Returns 1
 * for a DURATION row (the caller explains the type once). */
static int print_row(FILE *f, const shelf_cfg_def *d)
{
    char flag[96], lo[32], hi[32];
    switch (d->type) {
    case SHELF_CFG_BOOL: snprintf(flag, sizeof flag, "--%s", d->name); break;
    case SHELF_CFG_INT: snprintf(flag, sizeof flag, "--%s N", d->name); break;
    case SHELF_CFG_DOUBLE: snprintf(flag, sizeof flag, "--%s X", d->name); break;
    case SHELF_CFG_DURATION: snprintf(flag, sizeof flag, "--%s DURATION", d->name); break;
    case SHELF_CFG_ENUM: snprintf(flag, sizeof flag, "--%s %s", d->name, d->choices); break;
    default: snprintf(flag, sizeof flag, "--%s VALUE", d->name); break;
    }
    fprintf(f, "  %-34s %s", flag, d->help);
    if (d->type == SHELF_CFG_BOOL) {
        if (d->def && strcmp(d->def, "true") == 0) fprintf(f, " (on by default; --no-%s turns it off)", d->name);
        fputc('\n', f);
        return 0;
    }
    const char *sep = " (";
    if (d->unit && d->unit[0]) fprintf(f, "%s%s", sep, d->unit), sep = "; ";
    if (d->def) fprintf(f, "%sdefault %s", sep, d->def), sep = "; ";
    if (d->type == SHELF_CFG_INT) fprintf(f, "%s%.0f..%.0f", sep, d->min, d->max), sep = "; ";
    if (d->type == SHELF_CFG_DOUBLE) fprintf(f, "%s%.15g..%.15g", sep, d->min, d->max), sep = "; ";
    if (d->type == SHELF_CFG_DURATION)
        fprintf(f, "%s%s..%s", sep, duration_text(d->min, lo, sizeof lo), duration_text(d->max, hi, sizeof hi)),
            sep = "; ";
    fputs(sep[0] == ';' ? ")\n" : "\n", f);
    return d->type == SHELF_CFG_DURATION;
}

/* 1 if name is one of the comma-separated list ("*": every name) */
static int listed(const char *list, const char *name)
{
    if (!list) return 0;
    return strcmp(list, "*") == 0 || part_of(list, ',', name);
}

void shelf_config_print_help(FILE *f, const char *command, const char *models)
{
    need_table();
    int durations = 0;
    for (size_t i = 0; i < n_common(); i++)
        if (in_scope(&tab.row[i], command)) durations |= print_row(f, &tab.row[i]);
    fprintf(f, "  %-34s %s\n", "--config FILE", "read options from FILE (name = value lines)");
    fprintf(f, "  %-34s %s\n", "-h, --help", "this help (--help-all: every model's options too)");
    for (size_t k = 0; k < tab.n_models; k++) {
        if (!listed(models, tab.model[k].model)) continue;
        int any = 0;
        for (size_t i = tab.model[k].lo; i < tab.model[k].hi; i++) {
            if (!in_scope(&tab.row[i], command)) continue;
            if (!any++) fprintf(f, "\n%s options:\n", tab.model[k].model);
            durations |= print_row(f, &tab.row[i]);
        }
    }
    if (durations)
        fprintf(f, "\nDURATION: a number with unit s, m, h or d (90s, 15m, 1.5h, 7d); a bare number is seconds\n");
}
