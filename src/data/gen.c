/* gen.c: the synthetic shop behind gen.h. One core (gen_run) builds the
 * catalogue and the users' tastes, then simulates sessions in global time
 * order and hands every item, user and event to a sink; two sinks share it:
 * the store (shelf_gen_store) and CSV files (shelf_gen_csv).
 *
 * How it stays deterministic and small:
 * - one shelf_rng stream, consumed in a fixed order (single-threaded), so the
 *   same seed and options give the same shop on any thread count;
 * - each user's event count is fixed up front (heavy-tailed weights, split by
 *   cumulative rounding so the counts sum to n_events exactly), and so is the
 *   number of sessions; session start times are drawn one by one as sorted
 *   uniform order statistics over the span, so a user needs O(1) state;
 * - a 4-ary min-heap of users keyed by (time of next event, user) emits the
 *   events in global time order; memory is O(users + items), never
 *   O(events).
 *
 * Dimension letters: U users, I items, C top-level categories, B brands,
 * K latent factors. */
#include "shelf/gen.h"
#include "core/assert_int.h"
#include "core/mem_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ======================================================================== */
/* ===== tunables ========================================================= */

#define GEN_MAX_SUB 4          /* sub-categories per top-level category (2..4) */
#define GEN_NCAND_FOCUS 8      /* candidates per view from the session's category */
#define GEN_NCAND_GLOBAL 4     /* ... and from overall popularity */
#define GEN_NCAND (GEN_NCAND_FOCUS + GEN_NCAND_GLOBAL)
#define GEN_BETA 2.5f          /* softmax sharpness on taste affinity */
#define GEN_P_FAV_FOCUS 0.75   /* a session focuses on a favourite category */
#define GEN_P_FOCUS_SWITCH 0.1 /* per view: the session drifts to another category */
#define GEN_BATCH 4096         /* events per shelf_store_add_events call */
#define GEN_DAY 86400

/* ======================================================================== */
/* ===== options ========================================================== */

void shelf_gen_opts_init(shelf_gen_opts *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->seed = 42;
    o->n_users = 200;
    o->n_items = 100;
    o->n_events = 5000;
    o->n_categories = 8;
    o->n_brands = 20;
    o->n_factors = 16;
    o->zipf = 1.0;
    o->start_ts = 1767225600; /* 2026-01-01T00:00:00Z */
    o->days = 30;
    o->late_items = 0.2;
    o->progress = 0;
}

static int gen_validate(const shelf_gen_opts *o, shelf_err *err)
{
    if (!o) return shelf_err_set(err, SHELF_EINVAL, "gen: options are NULL");
    if (o->n_users == 0) return shelf_err_set(err, SHELF_EINVAL, "gen: users must be at least 1");
    if (o->n_items == 0) return shelf_err_set(err, SHELF_EINVAL, "gen: items must be at least 1");
    if (o->n_events > (UINT64_C(1) << 40))
        return shelf_err_set(err, SHELF_EINVAL, "gen: events must be at most 2^40 (got %llu)",
                             (unsigned long long)o->n_events);
    if (o->n_categories == 0 || o->n_categories > 10000)
        return shelf_err_set(err, SHELF_EINVAL, "gen: categories must be in 1..10000 (got %u)",
                             o->n_categories);
    if (o->n_brands == 0 || o->n_brands > 10000000)
        return shelf_err_set(err, SHELF_EINVAL, "gen: brands must be in 1..10000000 (got %u)",
                             o->n_brands);
    if (o->n_factors == 0 || o->n_factors > 256)
        return shelf_err_set(err, SHELF_EINVAL, "gen: factors must be in 1..256 (got %u)",
                             o->n_factors);
    if (!(o->zipf >= 0.0 && o->zipf <= 8.0))
        return shelf_err_set(err, SHELF_EINVAL, "gen: zipf must be in [0, 8] (got %g)", o->zipf);
    if (o->days == 0 || o->days > 36500)
        return shelf_err_set(err, SHELF_EINVAL, "gen: days must be in 1..36500 (got %u)", o->days);
    if (o->start_ts < 0 || o->start_ts > INT64_C(253402300799))
        return shelf_err_set(err, SHELF_EINVAL,
                             "gen: start must be in 1970..9999 (unix seconds, got %lld)",
                             (long long)o->start_ts);
    if (!(o->late_items >= 0.0 && o->late_items < 1.0))
        return shelf_err_set(err, SHELF_EINVAL, "gen: late_items must be in [0, 1) (got %g)",
                             o->late_items);
    return 0;
}

/* ======================================================================== */
/* ===== names ============================================================ */

static const struct {
    const char *name;
    const char *subs[GEN_MAX_SUB];
} CATS[] = {
    {"Beauty", {"Skin Care", "Makeup", "Hair Care", "Fragrance"}},
    {"Electronics", {"Phones", "Laptops", "Audio", "Cameras"}},
    {"Home & Kitchen", {"Cookware", "Furniture", "Bedding", "Storage"}},
    {"Fashion", {"Women", "Men", "Shoes", "Accessories"}},
    {"Sports", {"Fitness", "Cycling", "Running", "Camping"}},
    {"Books", {"Fiction", "Science", "Children", "Cooking"}},
    {"Toys", {"Puzzles", "Board Games", "Dolls", "Building Sets"}},
    {"Grocery", {"Snacks", "Beverages", "Pantry", "Organic"}},
    {"Garden", {"Plants", "Tools", "Outdoor Furniture", "Lighting"}},
    {"Health", {"Vitamins", "Personal Care", "Medical Supplies", "Wellness"}},
    {"Automotive", {"Parts", "Car Care", "Interior", "Tires"}},
    {"Pet Supplies", {"Dogs", "Cats", "Fish", "Birds"}},
    {"Music", {"Instruments", "Vinyl", "Headphones", "Studio"}},
    {"Office", {"Paper", "Writing", "Desks", "Printers"}},
    {"Baby", {"Diapers", "Feeding", "Nursery", "Strollers"}},
    {"Jewelry", {"Rings", "Necklaces", "Watches", "Earrings"}},
};
#define N_NAMED_CATS (sizeof CATS / sizeof CATS[0])

enum { KIND_PRODUCT, KIND_CONTENT, KIND_CAMPAIGN };
static const char *const KIND_NAME[] = {"product", "content", "campaign"};

/* Event kinds of the generator; the sinks map them to store type ids. */
enum { EV_VIEW, EV_CLICK, EV_CART, EV_PURCHASE, EV_RATING, EV_N };
static const char *const EV_NAME[EV_N] = {"view", "click", "cart", "purchase", "rating"};

static const char *const SEGMENTS[] = {"a", "b", "c"};
static const char *const REGIONS[] = {"north", "south", "east", "west"};
static const char *const DEVICES[] = {"mobile", "desktop", "tablet"};

/* ======================================================================== */
/* ===== sink interface ===================================================== */

typedef struct gen_event {
    uint32_t user, item; /* generator indices: "u<user>", "i<item>" */
    int type;            /* EV_* */
    float value;         /* quantity, rating; 0 if none */
    int64_t ts;
} gen_event;

/* Called with every item (index order), then every user, then every event
 * (non-decreasing ts). A non-zero return stops the run and is returned; the
 * sink records its own message. */
typedef struct gen_sink {
    void *ctx;
    int (*item)(void *ctx, uint32_t i, const shelf_item *it);
    int (*user)(void *ctx, uint32_t u, const shelf_user *us);
    int (*event)(void *ctx, const gen_event *ev);
} gen_sink;

/* ======================================================================== */
/* ===== the generator's state ============================================== */

enum { ST_VIEW, ST_CLICK, ST_CART, ST_PURCHASE, ST_RATING }; /* what comes next */

typedef struct ustate {
    uint64_t left;      /* events still to emit */
    uint64_t sess_left; /* events left in the current session (incl. the next) */
    int64_t ts;         /* time of the next event */
    double pos;         /* current session start as a fraction of the span */
    uint32_t sessions;  /* sessions still to start after the current one */
    uint32_t cur;       /* item of the funnel in progress (UINT32_MAX: none) */
    uint32_t focus;     /* category of the session */
    uint32_t fav[2];
    float aff;          /* affinity to cur */
    uint8_t n_fav;
    uint8_t next;       /* ST_* */
} ustate;

typedef struct hnode {
    int64_t ts;
    uint32_t u;
} hnode;

/* One column of an alias table: with probability prob the item `self`, else
 * `alias` (item indices, so that a draw touches one cache line). */
typedef struct alias_ent {
    float prob;
    uint32_t self, alias;
} alias_ent;

typedef struct gen {
    const shelf_gen_opts *o;
    shelf_rng rng;
    uint32_t U, I, C, B, K;
    int64_t t0, span;

    /* categories [C] */
    uint32_t *n_sub;
    double *cat_cum;    /* cumulative weights: how many items each category gets */
    double *cat_mu;     /* log price median */
    float *cat_vec;     /* [C][K] */
    float *sub_vec;     /* [C][GEN_MAX_SUB][K] */
    char (*cat_name)[32];
    char (*sub_name)[48]; /* [C][GEN_MAX_SUB] */
    char (*path)[96];     /* [C][GEN_MAX_SUB] "Top/Sub" */
    /* brands [B] */
    float *brand_prem;
    uint32_t *cb_off, *cb_list; /* brands whose home is category c: cb_list[cb_off[c]..cb_off[c+1]) */

    /* items [I] */
    uint32_t *item_cat;
    uint8_t *item_sub, *item_kind;
    uint32_t *item_brand;
    float *price;
    int64_t *created;
    float *item_vec;    /* [I][K] */
    uint32_t n_early;   /* items 0..n_early-1 exist before t0; the rest arrive later */
    alias_ent *g_tab;   /* [I] popularity over all items */
    uint32_t *c_off;    /* [C+1]: category c's table is c_tab[c_off[c]..c_off[c+1]) */
    alias_ent *c_tab;   /* [I] popularity within each category */

    /* users [U] */
    float *user_vec;    /* [U][K] */
    ustate *us;
    hnode *heap;
    size_t n_heap;
} gen;

static void gen_free(gen *g)
{
    SHELF__FREE_ALL(g->n_sub, g->cat_cum, g->cat_mu, g->cat_vec, g->sub_vec, g->cat_name, g->sub_name, g->path,
                    g->brand_prem, g->cb_off, g->cb_list, g->item_cat, g->item_sub, g->item_kind,
                    g->item_brand, g->price, g->created, g->item_vec, g->g_tab, g->c_off, g->c_tab,
                    g->user_vec, g->us, g->heap);
}

/* ======================================================================== */
/* ===== small random helpers =============================================== */

static inline double urand(gen *g) { return shelf_rng_uniform(&g->rng); }
static inline uint32_t below(gen *g, uint32_t n) { return shelf_rng_below(&g->rng, n); }
static inline double nrand(gen *g) { return shelf_rng_normal(&g->rng); }

/* Seconds: lo + lognormal(median, sigma), capped at hi. */
static int64_t gap(gen *g, double lo, double median, double sigma, double hi)
{
    double s = lo + median * exp(sigma * nrand(g));
    if (s > hi) s = hi;
    return (int64_t)s;
}

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Eight independent partial sums so that the compiler can vectorize (a single
 * serial sum is bound by add latency). Fixed order: same result every run. */
static inline float dot(const float *a, const float *b, uint32_t K)
{
    float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    uint32_t k = 0;
    for (; k + 8 <= K; k += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[k + j] * b[k + j];
    for (; k < K; k++) acc[k & 7] += a[k] * b[k];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* Index in [0, n) by cumulative weights cum[0..n) (last = total). */
static uint32_t pick_cum(gen *g, const double *cum, uint32_t n)
{
    double r = urand(g) * cum[n - 1];
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cum[mid] > r) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* Vose's alias table over w[0..n) (n >= 1, weights > 0), with local indices
 * 0..n-1 in self/alias. p, work: [n] scratch. */
static void alias_build(const double *w, uint32_t n, alias_ent *t, double *p, uint32_t *work)
{
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) sum += w[i];
    size_t n_small = 0, n_large = 0; /* small grows from the front, large from the back */
    for (uint32_t i = 0; i < n; i++) {
        p[i] = w[i] * (double)n / sum;
        if (p[i] < 1.0) work[n_small++] = i;
        else work[n - 1 - n_large++] = i;
    }
    while (n_small > 0 && n_large > 0) {
        uint32_t s = work[--n_small];
        uint32_t l = work[n - n_large]; /* top of the large stack */
        t[s].prob = (float)p[s];
        t[s].self = s;
        t[s].alias = l;
        p[l] = (p[l] + p[s]) - 1.0;
        if (p[l] < 1.0) { /* l moves from large to small */
            n_large--;
            work[n_small++] = l;
        }
    }
    while (n_small > 0) {
        uint32_t s = work[--n_small];
        t[s].prob = 1.0f;
        t[s].self = t[s].alias = s;
    }
    while (n_large > 0) {
        uint32_t l = work[n - n_large--];
        t[l].prob = 1.0f;
        t[l].self = t[l].alias = l;
    }
}

/* One 64-bit draw: the high half picks the column (multiply-shift; the bias
 * of at most n/2^32 is irrelevant here), the low half decides the coin. */
static inline uint32_t alias_draw(gen *g, const alias_ent *t, uint32_t n)
{
    uint64_t x = shelf_rng_u64(&g->rng);
    const alias_ent *e = &t[((x >> 32) * (uint64_t)n) >> 32];
    float coin = (float)(uint32_t)x * 0x1.0p-32f;
    return coin < e->prob ? e->self : e->alias;
}

static inline uint32_t draw_global(gen *g) { return alias_draw(g, g->g_tab, g->I); }

static inline uint32_t draw_in_cat(gen *g, uint32_t c)
{
    uint32_t off = g->c_off[c];
    return alias_draw(g, g->c_tab + off, g->c_off[c + 1] - off);
}

/* ======================================================================== */
/* ===== heap of users by (ts of next event, user) ============================ */

static inline int hless(hnode a, hnode b) { return a.ts < b.ts || (a.ts == b.ts && a.u < b.u); }

static void sift_down(hnode *h, size_t n, size_t i)
{
    hnode x = h[i];
    for (;;) {
        size_t c = 4 * i + 1;
        if (c >= n) break;
        size_t end = c + 4 < n ? c + 4 : n, best = c;
        for (size_t j = c + 1; j < end; j++)
            if (hless(h[j], h[best])) best = j;
        if (!hless(h[best], x)) break;
        h[i] = h[best];
        i = best;
    }
    h[i] = x;
}

/* ======================================================================== */
/* ===== building the shop ==================================================== */

#define ALLOC(p, n)                                                               \
    do {                                                                          \
        size_t n_ = (size_t)(n);                                                  \
        (p) = calloc(n_ > 0 ? n_ : 1, sizeof *(p));                               \
        if (!(p)) return shelf_err_set(err, SHELF_ENOMEM, "gen: out of memory");  \
    } while (0)

/* Unit-ish random vector: N(0, 1/K) per component. */
static void rand_vec(gen *g, float *v, uint32_t K, double scale)
{
    double s = scale / sqrt((double)K);
    for (uint32_t k = 0; k < K; k++) v[k] = (float)(s * nrand(g));
}

/* categories and their sub-categories: weights, price medians, taste
 * vectors, names and paths */
static int build_categories(gen *g, shelf_err *err)
{
    uint32_t C = g->C, K = g->K;
    ALLOC(g->n_sub, C);
    ALLOC(g->cat_cum, C);
    ALLOC(g->cat_mu, C);
    ALLOC(g->cat_vec, (size_t)C * K);
    ALLOC(g->sub_vec, (size_t)C * GEN_MAX_SUB * K);
    ALLOC(g->cat_name, C);
    ALLOC(g->sub_name, (size_t)C * GEN_MAX_SUB);
    ALLOC(g->path, (size_t)C * GEN_MAX_SUB);
    double cum = 0.0;
    for (uint32_t c = 0; c < C; c++) {
        g->n_sub[c] = 2 + below(g, GEN_MAX_SUB - 1);
        cum += 0.5 + urand(g);
        g->cat_cum[c] = cum;
        g->cat_mu[c] = log(5.0) + urand(g) * log(60.0); /* medians 5..300 */
        rand_vec(g, g->cat_vec + (size_t)c * K, K, 1.0);
        if (c < N_NAMED_CATS) snprintf(g->cat_name[c], sizeof g->cat_name[c], "%s", CATS[c].name);
        else snprintf(g->cat_name[c], sizeof g->cat_name[c], "Category%u", c);
        for (uint32_t s = 0; s < GEN_MAX_SUB; s++) {
            size_t cs = (size_t)c * GEN_MAX_SUB + s;
            rand_vec(g, g->sub_vec + cs * K, K, 1.0);
            if (c < N_NAMED_CATS) snprintf(g->sub_name[cs], sizeof g->sub_name[cs], "%s", CATS[c].subs[s]);
            else snprintf(g->sub_name[cs], sizeof g->sub_name[cs], "Sub%u", s + 1);
            snprintf(g->path[cs], sizeof g->path[cs], "%s/%s", g->cat_name[c], g->sub_name[cs]);
        }
    }
    return 0;
}

/* brands: each lives mostly in two home categories (cb_off/cb_list: the
 * brands of each category) */
static int build_brands(gen *g, shelf_err *err)
{
    uint32_t C = g->C, B = g->B;
    ALLOC(g->brand_prem, B);
    ALLOC(g->cb_off, C + 1);
    ALLOC(g->cb_list, 2 * (size_t)B);
    uint32_t *home = NULL;
    ALLOC(home, 2 * (size_t)B);
    for (uint32_t b = 0; b < B; b++) {
        g->brand_prem[b] = (float)(0.3 * nrand(g));
        home[2 * b] = b % C;
        home[2 * b + 1] = below(g, C);
        g->cb_off[home[2 * b] + 1]++;
        if (home[2 * b + 1] != home[2 * b]) g->cb_off[home[2 * b + 1] + 1]++;
    }
    for (uint32_t c = 0; c < C; c++) g->cb_off[c + 1] += g->cb_off[c];
    {
        uint32_t *fill = calloc(C, sizeof *fill);
        if (!fill) {
            free(home);
            return shelf_err_set(err, SHELF_ENOMEM, "gen: out of memory");
        }
        for (uint32_t b = 0; b < B; b++) {
            uint32_t c0 = home[2 * b], c1 = home[2 * b + 1];
            g->cb_list[g->cb_off[c0] + fill[c0]++] = b;
            if (c1 != c0) g->cb_list[g->cb_off[c1] + fill[c1]++] = b;
        }
        free(fill);
    }
    free(home);
    return 0;
}

/* items: category, sub-category, brand, kind, price, creation time and
 * taste vector, drawn in index order */
static int build_items(gen *g, shelf_err *err)
{
    uint32_t C = g->C, B = g->B, I = g->I, K = g->K;
    ALLOC(g->item_cat, I);
    ALLOC(g->item_sub, I);
    ALLOC(g->item_kind, I);
    ALLOC(g->item_brand, I);
    ALLOC(g->price, I);
    ALLOC(g->created, I);
    ALLOC(g->item_vec, (size_t)I * K);
    uint32_t n_late = (uint32_t)floor(g->o->late_items * (double)I);
    if (n_late >= I) n_late = I - 1;
    g->n_early = I - n_late;
    for (uint32_t i = 0; i < I; i++) {
        uint32_t c = pick_cum(g, g->cat_cum, C);
        uint32_t s = below(g, g->n_sub[c]);
        uint32_t nb = g->cb_off[c + 1] - g->cb_off[c];
        uint32_t b = (nb > 0 && urand(g) < 0.85) ? g->cb_list[g->cb_off[c] + below(g, nb)]
                                                 : below(g, B);
        double u = urand(g);
        uint8_t kind = u < 0.03 ? KIND_CONTENT : u < 0.05 ? KIND_CAMPAIGN : KIND_PRODUCT;
        double p = exp(g->cat_mu[c] + g->brand_prem[b] + 0.45 * nrand(g));
        p = floor(p * 100.0 + 0.5) / 100.0;
        if (p < 0.99) p = 0.99;
        int64_t created;
        if (i < g->n_early) /* in the shop up to a year before the span */
            created = g->t0 - 1 - (int64_t)below(g, 365 * GEN_DAY);
        else /* spread over the span, increasing with the index */
            created = g->t0 + (int64_t)(((double)(i - g->n_early) + urand(g)) / (double)n_late *
                                        (double)g->span);
        g->item_cat[i] = c;
        g->item_sub[i] = (uint8_t)s;
        g->item_brand[i] = b;
        g->item_kind[i] = kind;
        g->price[i] = (float)p;
        g->created[i] = created;
        /* taste: category + sub-category + own noise */
        float *v = g->item_vec + (size_t)i * K;
        const float *cv = g->cat_vec + (size_t)c * K;
        const float *sv = g->sub_vec + ((size_t)c * GEN_MAX_SUB + s) * K;
        double ns = 0.5 / sqrt((double)K);
        for (uint32_t k = 0; k < K; k++) v[k] = cv[k] + 0.5f * sv[k] + (float)(ns * nrand(g));
    }
    return 0;
}

/* popularity: Zipf over a random ranking; alias tables overall and per
 * category */
static int build_popularity(gen *g, shelf_err *err)
{
    uint32_t C = g->C, I = g->I;
    double *w = NULL, *pw = NULL;
    uint32_t *rank = NULL, *work = NULL, *c_items = NULL;
    w = calloc((size_t)I, sizeof *w);
    pw = malloc((size_t)I * sizeof *pw);
    rank = malloc((size_t)I * sizeof *rank);
    work = malloc((size_t)I * sizeof *work);
    g->g_tab = malloc((size_t)I * sizeof *g->g_tab);
    g->c_off = calloc((size_t)C + 1, sizeof *g->c_off);
    c_items = malloc((size_t)I * sizeof *c_items);
    g->c_tab = malloc((size_t)I * sizeof *g->c_tab);
    int rc = 0;
    if (!w || !pw || !rank || !work || !c_items || !g->g_tab || !g->c_off || !g->c_tab) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "gen: out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < I; i++) rank[i] = i;
    for (uint32_t i = I - 1; i > 0; i--) { /* Fisher-Yates */
        uint32_t j = below(g, i + 1), t = rank[i];
        rank[i] = rank[j];
        rank[j] = t;
    }
    for (uint32_t i = 0; i < I; i++) w[i] = pow((double)rank[i] + 1.0, -g->o->zipf);
    alias_build(w, I, g->g_tab, pw, work);
    for (uint32_t i = 0; i < I; i++) g->c_off[g->item_cat[i] + 1]++;
    for (uint32_t c = 0; c < C; c++) g->c_off[c + 1] += g->c_off[c];
    if (C > I) { /* work (the fill cursors) is only [I]: fill category by category */
        uint32_t pos = 0;
        for (uint32_t c = 0; c < C; c++)
            for (uint32_t i = 0; i < I; i++)
                if (g->item_cat[i] == c) c_items[pos++] = i;
    } else {
        memcpy(work, g->c_off, (size_t)C * sizeof *work);
        for (uint32_t i = 0; i < I; i++) c_items[work[g->item_cat[i]]++] = i;
    }
    for (uint32_t c = 0; c < C; c++) {
        uint32_t off = g->c_off[c], n = g->c_off[c + 1] - off;
        if (n == 0) continue;
        for (uint32_t j = 0; j < n; j++) w[j] = pow((double)rank[c_items[off + j]] + 1.0, -g->o->zipf);
        alias_ent *t = g->c_tab + off;
        alias_build(w, n, t, pw, work);
        for (uint32_t j = 0; j < n; j++) { /* local indices -> items */
            t[j].self = c_items[off + t[j].self];
            t[j].alias = c_items[off + t[j].alias];
        }
    }
done:
    free(w);
    free(pw);
    free(rank);
    free(work);
    free(c_items);
    return rc;
}

static int build_catalogue(gen *g, shelf_err *err)
{
    int rc = build_categories(g, err);
    if (!rc) rc = build_brands(g, err);
    if (!rc) rc = build_items(g, err);
    if (!rc) rc = build_popularity(g, err);
    return rc;
}

/* Starts the next session of s, which has s->sessions sessions left
 * (including this one) and s->left events. prev_end: ts of the user's last
 * event, or INT64_MIN for the first session. */
static void start_session(gen *g, ustate *s, int64_t prev_end)
{
    uint32_t m = s->sessions;
    SHELF_ASSERT(m >= 1 && s->left >= m);
    /* next of m sorted uniforms on (pos, 1) */
    double v = 1.0 - urand(g); /* (0, 1] */
    s->pos = 1.0 - (1.0 - s->pos) * pow(v, 1.0 / (double)m);
    int64_t t = g->t0 + (int64_t)(s->pos * (double)g->span);
    if (prev_end != INT64_MIN && t < prev_end + 1800) /* sessions are hours apart at least */
        t = prev_end + 1800 + (int64_t)below(g, 3 * 3600);
    uint64_t len;
    if (m == 1) {
        len = s->left;
    } else {
        double mean = (double)s->left / (double)m; /* >= 1 */
        uint64_t max = s->left - (m - 1);
        double x = 1.0 - log(1.0 - urand(g)) * (mean - 1.0);
        len = x >= (double)max ? max : (uint64_t)x;
        if (len < 1) len = 1;
    }
    s->sess_left = len;
    s->sessions = m - 1;
    s->ts = t;
    s->next = ST_VIEW;
    s->cur = UINT32_MAX;
    s->focus = urand(g) < GEN_P_FAV_FOCUS ? s->fav[s->n_fav > 1 ? below(g, s->n_fav) : 0]
                                          : g->item_cat[draw_global(g)];
}

static int build_users(gen *g, shelf_err *err)
{
    uint32_t U = g->U, K = g->K;
    uint64_t N = g->o->n_events;
    ALLOC(g->user_vec, (size_t)U * K);
    ALLOC(g->us, U);
    ALLOC(g->heap, U);
    double W = 0.0;
    for (uint32_t u = 0; u < U; u++) {
        ustate *s = &g->us[u];
        s->n_fav = (uint8_t)(1 + (urand(g) < 0.5));
        s->fav[0] = pick_cum(g, g->cat_cum, g->C);
        s->fav[1] = s->fav[0];
        if (s->n_fav == 2 && g->C > 1)
            while (s->fav[1] == s->fav[0]) s->fav[1] = pick_cum(g, g->cat_cum, g->C);
        else
            s->n_fav = 1;
        float *v = g->user_vec + (size_t)u * K;
        rand_vec(g, v, K, 0.6);
        float f = s->n_fav == 2 ? 0.5f : 1.0f;
        for (uint8_t j = 0; j < s->n_fav; j++) {
            const float *cv = g->cat_vec + (size_t)s->fav[j] * K;
            for (uint32_t k = 0; k < K; k++) v[k] += 0.9f * f * cv[k];
        }
        /* activity: heavy-tailed weight, kept in pos until the counts are split */
        s->pos = exp(1.1 * nrand(g));
        W += s->pos;
    }
    /* exact split of N by cumulative rounding */
    double acc = 0.0;
    uint64_t prev = 0;
    for (uint32_t u = 0; u < U; u++) {
        ustate *s = &g->us[u];
        acc += s->pos;
        uint64_t cur = u == U - 1 ? N : (uint64_t)floor((double)N * (acc / W));
        if (cur < prev) cur = prev;
        if (cur > N) cur = N;
        s->left = cur - prev;
        prev = cur;
        s->pos = 0.0;
    }
    /* sessions, first session, heap */
    uint64_t max_sessions = (uint64_t)g->o->days * 12;
    for (uint32_t u = 0; u < U; u++) {
        ustate *s = &g->us[u];
        if (s->left == 0) continue;
        double mean_len = 3.0 + 10.0 * urand(g);
        uint64_t m = (uint64_t)floor((double)s->left / mean_len + 0.5);
        if (m < 1) m = 1;
        if (m > max_sessions) m = max_sessions;
        if (m > s->left) m = s->left;
        s->sessions = (uint32_t)m;
        start_session(g, s, INT64_MIN);
        g->heap[g->n_heap].ts = s->ts;
        g->heap[g->n_heap].u = u;
        g->n_heap++;
    }
    if (g->n_heap > 1)
        for (size_t i = (g->n_heap - 2) / 4 + 1; i-- > 0;) sift_down(g->heap, g->n_heap, i);
    return 0;
}

#undef ALLOC

/* ======================================================================== */
/* ===== emitting =========================================================== */

static int emit_items(gen *g, const gen_sink *sink)
{
    char id[32], title[256], brand[32];
    for (uint32_t i = 0; i < g->I; i++) {
        uint32_t c = g->item_cat[i], b = g->item_brand[i];
        size_t cs = (size_t)c * GEN_MAX_SUB + g->item_sub[i];
        uint8_t kind = g->item_kind[i];
        snprintf(id, sizeof id, "i%u", i);
        snprintf(brand, sizeof brand, "Brand%u", b);
        if (kind == KIND_CONTENT)
            snprintf(title, sizeof title, "%s guide %u", g->sub_name[cs], i);
        else if (kind == KIND_CAMPAIGN)
            snprintf(title, sizeof title, "%s %s sale %u", brand, g->sub_name[cs], i);
        else
            snprintf(title, sizeof title, "%s %s item %u", brand, g->sub_name[cs], i);
        shelf_item it;
        memset(&it, 0, sizeof it);
        it.id = id;
        it.kind = KIND_NAME[kind];
        it.title = title;
        it.category = g->path[cs];
        it.brand = kind == KIND_CONTENT ? NULL : brand;
        it.has_price = kind == KIND_PRODUCT;
        it.price = it.has_price ? (double)g->price[i] : 0.0;
        it.available = 1;
        it.created = g->created[i];
        int rc = sink->item(sink->ctx, i, &it);
        if (rc) return rc;
    }
    return 0;
}

static int emit_users(gen *g, const gen_sink *sink)
{
    char id[32], attrs[128];
    for (uint32_t u = 0; u < g->U; u++) {
        ustate *s = &g->us[u];
        double r = urand(g);
        const char *seg = SEGMENTS[r < 0.2 ? 0 : r < 0.5 ? 1 : 2];
        const char *reg = REGIONS[below(g, 4)];
        r = urand(g);
        const char *dev = DEVICES[r < 0.6 ? 0 : r < 0.9 ? 1 : 2];
        snprintf(id, sizeof id, "u%u", u);
        snprintf(attrs, sizeof attrs, "{\"segment\":\"%s\",\"region\":\"%s\",\"device\":\"%s\"}",
                 seg, reg, dev);
        shelf_user us;
        us.id = id;
        us.attributes = attrs;
        /* signed up some time before the first visit (or some time in the span) */
        us.created = s->left > 0 ? s->ts - (int64_t)below(g, 60 * GEN_DAY)
                                 : g->t0 + (int64_t)below(g, (uint32_t)g->span); /* span < 2^32 */
        int rc = sink->user(sink->ctx, u, &us);
        if (rc) return rc;
    }
    return 0;
}

/* A viewed item: candidates by popularity (from the session's category and
 * overall) that exist at ts, sampled by exp(beta * taste affinity). */
static uint32_t pick_item(gen *g, ustate *s, const float *uv, int64_t ts, float *aff)
{
    uint32_t cand[GEN_NCAND];
    float a[GEN_NCAND], w[GEN_NCAND];
    float tot = 0.0f;
    int n = 0;
    int focus_ok = g->c_off[s->focus + 1] > g->c_off[s->focus];
    uint32_t K = g->K;
    /* draw first, then prefetch: the item rows are the cache misses here */
    for (int j = 0; j < GEN_NCAND; j++) {
        cand[j] = (j < GEN_NCAND_FOCUS && focus_ok) ? draw_in_cat(g, s->focus) : draw_global(g);
        __builtin_prefetch(g->item_vec + (size_t)cand[j] * K);
        __builtin_prefetch(g->created + cand[j]);
    }
    for (int j = 0; j < GEN_NCAND; j++) {
        uint32_t it = cand[j];
        if (g->created[it] > ts || it == s->cur) continue;
        cand[n] = it;
        a[n] = dot(uv, g->item_vec + (size_t)it * K, K);
        w[n] = expf(GEN_BETA * a[n]);
        tot += w[n];
        n++;
    }
    if (n == 0) { /* every draw was not yet in the shop: an old item */
        uint32_t it = below(g, g->n_early);
        *aff = dot(uv, g->item_vec + (size_t)it * K, K);
        return it;
    }
    float r = (float)urand(g) * tot;
    int k = 0;
    while (k < n - 1 && r >= w[k]) r -= w[k++];
    *aff = a[k];
    return cand[k];
}

/* After an event of type `last` (not the session's last event): what comes
 * next and when. */
static void plan_next(gen *g, ustate *s, int last)
{
    double r = urand(g);
    int64_t dt;
    int next = ST_VIEW;
    float a = s->aff;
    switch (last) {
    case EV_VIEW:
        if (g->item_kind[s->cur] != KIND_PRODUCT) {
            if (r < 0.25) next = ST_CLICK;
        } else {
            double p_cart = 0.04 + 0.16 * sigmoidf(3.0f * (a - 0.3f));
            if (r < p_cart) next = ST_CART;
            else if (r < p_cart + 0.01) next = ST_RATING;
        }
        break;
    case EV_CART:
        if (r < 0.25 + 0.4 * sigmoidf(3.0f * (a - 0.3f))) next = ST_PURCHASE;
        break;
    case EV_PURCHASE:
        if (r < 0.3) next = ST_RATING;
        break;
    default:
        break;
    }
    switch (next) {
    case ST_CLICK: dt = gap(g, 2, 8, 0.7, 600); break;
    case ST_CART: dt = gap(g, 3, 20, 0.8, 1800); break;
    case ST_PURCHASE: dt = gap(g, 20, 90, 0.9, 3600); break;
    case ST_RATING: dt = gap(g, 10, 40, 0.8, 3600); break;
    default: dt = gap(g, 3, 30, 0.9, 1800); break;
    }
    s->next = (uint8_t)next;
    s->ts += dt;
}

static int gen_events(gen *g, const gen_sink *sink, shelf_progress *prog)
{
    uint64_t emitted = 0;
    while (g->n_heap > 0) {
        uint32_t u = g->heap[0].u;
        ustate *s = &g->us[u];
        const float *uv = g->user_vec + (size_t)u * g->K;
        gen_event ev;
        ev.user = u;
        ev.ts = s->ts;
        ev.value = 0.0f;
        switch (s->next) {
        case ST_CLICK: ev.type = EV_CLICK; break;
        case ST_CART:
            ev.type = EV_CART;
            ev.value = 1.0f;
            break;
        case ST_PURCHASE: {
            double r = urand(g);
            ev.type = EV_PURCHASE;
            ev.value = r < 0.8 ? 1.0f : r < 0.95 ? 2.0f : 3.0f;
            break;
        }
        case ST_RATING: {
            double x = floor(3.0 + 2.0 * s->aff + 0.8 * nrand(g) + 0.5);
            ev.type = EV_RATING;
            ev.value = (float)(x < 1.0 ? 1.0 : x > 5.0 ? 5.0 : x);
            break;
        }
        default:
            ev.type = EV_VIEW;
            if (s->cur != UINT32_MAX && urand(g) < GEN_P_FOCUS_SWITCH)
                s->focus = urand(g) < 0.5 ? s->fav[below(g, s->n_fav)] : g->item_cat[draw_global(g)];
            s->cur = pick_item(g, s, uv, s->ts, &s->aff);
            break;
        }
        ev.item = s->cur;
        int rc = sink->event(sink->ctx, &ev);
        if (rc) return rc;
        emitted++;
        if ((emitted & 0xFFFF) == 0) shelf_progress_update(prog, emitted, NULL);

        s->left--;
        s->sess_left--;
        if (s->left == 0) {
            g->heap[0] = g->heap[--g->n_heap];
        } else {
            if (s->sess_left == 0) start_session(g, s, s->ts);
            else plan_next(g, s, ev.type);
            g->heap[0].ts = s->ts;
        }
        if (g->n_heap > 0) sift_down(g->heap, g->n_heap, 0);
    }
    SHELF_ASSERT(emitted == g->o->n_events);
    shelf_progress_update(prog, emitted, NULL);
    return 0;
}

/* The core: validates o, builds the shop and feeds sink. Its own errors
 * (options, memory) go to err; the sink's to wherever the sink keeps them. */
static int gen_run(const shelf_gen_opts *o, const gen_sink *sink, shelf_err *err)
{
    int rc = gen_validate(o, err);
    if (rc) return rc;
    gen g;
    memset(&g, 0, sizeof g);
    g.o = o;
    shelf_rng_seed(&g.rng, o->seed);
    g.U = o->n_users;
    g.I = o->n_items;
    g.C = o->n_categories;
    g.B = o->n_brands;
    g.K = o->n_factors;
    g.t0 = o->start_ts;
    g.span = (int64_t)o->days * GEN_DAY;
    shelf_progress *prog = NULL;
    rc = build_catalogue(&g, err);
    if (!rc) rc = build_users(&g, err);
    if (!rc) rc = emit_items(&g, sink);
    if (!rc) rc = emit_users(&g, sink);
    if (!rc) {
        prog = shelf_progress_new("gen", o->n_events, o->progress);
        rc = gen_events(&g, sink, prog);
        shelf_progress_finish(prog);
    }
    gen_free(&g);
    return rc;
}

/* ======================================================================== */
/* ===== store sink ========================================================= */

typedef struct store_sink {
    shelf_store *st;
    uint32_t *uidx, *iidx; /* generator index -> store index */
    uint32_t type[EV_N];
    shelf_event *batch;
    size_t n;
} store_sink;

static int ss_item(void *ctx, uint32_t i, const shelf_item *it)
{
    store_sink *k = ctx;
    return shelf_store_put_item(k->st, it, &k->iidx[i]);
}

static int ss_user(void *ctx, uint32_t u, const shelf_user *us)
{
    store_sink *k = ctx;
    return shelf_store_put_user(k->st, us, &k->uidx[u]);
}

static int ss_flush(store_sink *k)
{
    if (k->n == 0) return 0;
    int rc = shelf_store_add_events(k->st, k->batch, k->n);
    k->n = 0;
    return rc;
}

static int ss_event(void *ctx, const gen_event *ev)
{
    store_sink *k = ctx;
    shelf_event *e = &k->batch[k->n++];
    e->user = k->uidx[ev->user];
    e->item = k->iidx[ev->item];
    e->type = k->type[ev->type];
    e->value = ev->value;
    e->ts = ev->ts;
    e->rec_id = NULL;
    e->context = NULL;
    return k->n == GEN_BATCH ? ss_flush(k) : 0;
}

int shelf_gen_store(shelf_store *st, const shelf_gen_opts *o)
{
    if (!st) return SHELF_EINVAL;
    shelf_err e;
    shelf_err_clear(&e);
    int rc = gen_validate(o, &e);
    if (rc) return shelf_store_fail(st, rc, "%s", e.msg);
    store_sink k;
    memset(&k, 0, sizeof k);
    k.st = st;
    k.uidx = malloc((size_t)o->n_users * sizeof *k.uidx);
    k.iidx = malloc((size_t)o->n_items * sizeof *k.iidx);
    k.batch = malloc(GEN_BATCH * sizeof *k.batch);
    if (!k.uidx || !k.iidx || !k.batch) {
        rc = shelf_store_fail(st, SHELF_ENOMEM, "gen: out of memory");
        goto out;
    }
    rc = shelf_store_begin(st);
    if (rc) goto out;
    for (int t = 0; t < EV_N && !rc; t++) {
        float w;
        rc = shelf_store_event_type(st, EV_NAME[t], &k.type[t], &w);
    }
    if (!rc) {
        gen_sink sink = {&k, ss_item, ss_user, ss_event};
        rc = gen_run(o, &sink, &e);
        if (rc && e.code) shelf_store_fail(st, rc, "%s", e.msg);
    }
    if (!rc) rc = ss_flush(&k);
    if (!rc) rc = shelf_store_commit(st);
    if (rc) {
        /* keep the first message: rollback may touch the handle's error */
        char msg[sizeof e.msg];
        snprintf(msg, sizeof msg, "%s", shelf_store_errmsg(st));
        shelf_store_rollback(st);
        shelf_store_fail(st, rc, "%s", msg);
    }
out:
    free(k.uidx);
    free(k.iidx);
    free(k.batch);
    return rc;
}

/* ======================================================================== */
/* ===== CSV sink =========================================================== */

typedef struct csvw {
    FILE *f;
    const char *path;
    char *buf;
    size_t n, cap;
} csvw;

static int csvw_open(csvw *w, const char *path, shelf_err *err)
{
    memset(w, 0, sizeof *w);
    w->path = path;
    w->cap = 1 << 20;
    w->buf = malloc(w->cap);
    if (!w->buf) return shelf_err_set(err, SHELF_ENOMEM, "gen: out of memory");
    w->f = fopen(path, "wb");
    if (!w->f) {
        free(w->buf);
        w->buf = NULL;
        return shelf_err_set(err, SHELF_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    return 0;
}

static int csvw_flush(csvw *w, shelf_err *err)
{
    if (w->n && fwrite(w->buf, 1, w->n, w->f) != w->n)
        return shelf_err_set(err, SHELF_EIO, "%s: write failed: %s", w->path, strerror(errno));
    w->n = 0;
    return 0;
}

/* Closes; with ok == 0 (an earlier failure) removes the partial file. */
static int csvw_close(csvw *w, int ok, shelf_err *err)
{
    int rc = 0;
    if (w->f) {
        if (ok) rc = csvw_flush(w, err);
        if (fclose(w->f) != 0 && ok && !rc)
            rc = shelf_err_set(err, SHELF_EIO, "%s: close failed: %s", w->path, strerror(errno));
        if (!ok || rc) unlink(w->path);
    }
    free(w->buf);
    memset(w, 0, sizeof *w);
    return rc;
}

static inline char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static inline char *put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

static inline char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* A CSV field, quoted when it holds a comma, quote or line break. Room: 2n+2. */
static char *put_field(char *p, const char *s)
{
    if (!s) return p;
    if (!strpbrk(s, ",\"\r\n")) return put_str(p, s);
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"') *p++ = '"';
        *p++ = *s;
    }
    *p++ = '"';
    return p;
}

typedef struct csv_sink {
    csvw ev, items;
    int has_items;
    shelf_err *err;
} csv_sink;

static int cs_item(void *ctx, uint32_t i, const shelf_item *it)
{
    csv_sink *k = ctx;
    if (!k->has_items) return 0;
    csvw *w = &k->items;
    size_t need = 64 + 2 * (strlen(it->id) + strlen(it->kind) + strlen(it->title) +
                            strlen(it->category) + (it->brand ? strlen(it->brand) : 0));
    if (w->cap - w->n < need) {
        int rc = csvw_flush(w, k->err);
        if (rc) return rc;
        if (need > w->cap) return shelf_err_set(k->err, SHELF_EINVAL, "gen: item %u too long", i);
    }
    char *p = w->buf + w->n;
    p = put_field(p, it->id);
    *p++ = ',';
    p = put_field(p, it->kind);
    *p++ = ',';
    p = put_field(p, it->title);
    *p++ = ',';
    p = put_field(p, it->category);
    *p++ = ',';
    p = put_field(p, it->brand);
    *p++ = ',';
    if (it->has_price) p += snprintf(p, 32, "%.2f", it->price);
    *p++ = ',';
    p = put_i64(p, it->created);
    *p++ = '\n';
    w->n = (size_t)(p - w->buf);
    return 0;
}

static int cs_user(void *ctx, uint32_t u, const shelf_user *us) { return 0; }

static int cs_event(void *ctx, const gen_event *ev)
{
    csv_sink *k = ctx;
    csvw *w = &k->ev;
    if (w->cap - w->n < 128) {
        int rc = csvw_flush(w, k->err);
        if (rc) return rc;
    }
    char *p = w->buf + w->n;
    *p++ = 'u';
    p = put_u64(p, ev->user);
    *p++ = ',';
    *p++ = 'i';
    p = put_u64(p, ev->item);
    *p++ = ',';
    p = put_str(p, EV_NAME[ev->type]);
    *p++ = ',';
    if (ev->value == (float)(int)ev->value) p = put_i64(p, (int)ev->value);
    else p += snprintf(p, 32, "%.9g", (double)ev->value);
    *p++ = ',';
    p = put_i64(p, ev->ts);
    *p++ = '\n';
    w->n = (size_t)(p - w->buf);
    return 0;
}

int shelf_gen_csv(const char *events_path, const char *items_path, const shelf_gen_opts *o,
                  shelf_err *err)
{
    if (!events_path) return shelf_err_set(err, SHELF_EINVAL, "gen: events path is NULL");
    int rc = gen_validate(o, err);
    if (rc) return rc;
    csv_sink k;
    memset(&k, 0, sizeof k);
    k.err = err;
    k.has_items = items_path != NULL;
    rc = csvw_open(&k.ev, events_path, err);
    if (rc) return rc;
    if (k.has_items) {
        rc = csvw_open(&k.items, items_path, err);
        if (rc) {
            csvw_close(&k.ev, 0, err);
            return rc;
        }
        const char *h = "id,kind,title,category,brand,price,created\n";
        k.items.n = strlen(h);
        memcpy(k.items.buf, h, k.items.n);
    }
    const char *h = "user,item,type,value,ts\n";
    k.ev.n = strlen(h);
    memcpy(k.ev.buf, h, k.ev.n);
    gen_sink sink = {&k, cs_item, cs_user, cs_event};
    rc = gen_run(o, &sink, err);
    if (k.has_items) {
        int rc2 = csvw_close(&k.items, rc == 0, err);
        if (!rc) rc = rc2;
    }
    int rc2 = csvw_close(&k.ev, rc == 0, err);
    if (!rc) rc = rc2;
    if (rc && k.has_items) unlink(items_path);
    return rc;
}
