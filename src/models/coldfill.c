/* coldfill.c: content-neighbour scores for cold items (coldfill.h). An
 * inverted index from feature to warm items; each cold item's neighbours are
 * the warm items with the largest cosine between IDF-weighted binary feature
 * vectors: dot = sum over shared features of idf^2, idf = ln(1 + W / df)
 * with W warm items and df the feature's warm items. */
#include "shelf/coldfill.h"
#include "models/coldfill_int.h"
#include "shelf/text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define WORDS_MAX 64 /* words of an item's text that count */

typedef struct {
    uint64_t *f; /* sorted, unique */
    uint32_t n;
} feats;

struct shelf_coldfill {
    uint32_t k;
    uint32_t n_items, cap; /* items with a slot; slots allocated */
    feats *ft;             /* [cap] */
    uint8_t *warm;         /* [cap] */
    float *norm;           /* [cap] IDF norm of warm items */
    uint32_t *nb;          /* [cap * k] neighbours, best first */
    float *nw;             /* [cap * k] their cosines */
    uint8_t *n_nb;         /* [cap] */
    uint32_t n_built;      /* items at the last build */
    /* index: unique features of warm items, their postings */
    uint64_t *key;
    uint64_t *off; /* [n_keys + 1] */
    uint32_t *post;
    size_t n_keys;
    double W; /* warm items */
};

shelf_coldfill *shelf_coldfill_new(uint32_t k)
{
    if (k < 1 || k > 64) return NULL;
    shelf_coldfill *cf = calloc(1, sizeof *cf);
    if (cf) cf->k = k;
    return cf;
}

static void index_free(shelf_coldfill *cf)
{
    free(cf->key);
    free(cf->off);
    free(cf->post);
    cf->key = NULL;
    cf->off = NULL;
    cf->post = NULL;
    cf->n_keys = 0;
}

void shelf_coldfill_free(shelf_coldfill *cf)
{
    if (!cf) return;
    for (uint32_t i = 0; i < cf->cap; i++) free(cf->ft[i].f);
    free(cf->ft);
    free(cf->warm);
    free(cf->norm);
    free(cf->nb);
    free(cf->nw);
    free(cf->n_nb);
    index_free(cf);
    free(cf);
}

static int reserve(shelf_coldfill *cf, uint32_t n)
{
    if (n <= cf->cap) return 0;
    uint32_t c = cf->cap ? cf->cap : 256;
    while (c < n) c *= 2;
    feats *ft = realloc(cf->ft, c * sizeof *ft);
    if (!ft) return SHELF_ENOMEM;
    cf->ft = ft;
    uint8_t *w = realloc(cf->warm, c);
    if (!w) return SHELF_ENOMEM;
    cf->warm = w;
    float *no = realloc(cf->norm, c * sizeof *no);
    if (!no) return SHELF_ENOMEM;
    cf->norm = no;
    uint32_t *nb = realloc(cf->nb, (size_t)c * cf->k * sizeof *nb);
    if (!nb) return SHELF_ENOMEM;
    cf->nb = nb;
    float *nw = realloc(cf->nw, (size_t)c * cf->k * sizeof *nw);
    if (!nw) return SHELF_ENOMEM;
    cf->nw = nw;
    uint8_t *nn = realloc(cf->n_nb, c);
    if (!nn) return SHELF_ENOMEM;
    cf->n_nb = nn;
    for (uint32_t i = cf->cap; i < c; i++) {
        cf->ft[i] = (feats){0};
        cf->warm[i] = 0;
        cf->norm[i] = 0;
        cf->n_nb[i] = 0;
    }
    cf->cap = c;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int shelf_coldfill_set_item(shelf_coldfill *cf, uint32_t item, const uint64_t *f, size_t n)
{
    if (item == UINT32_MAX || reserve(cf, item + 1)) return SHELF_ENOMEM;
    uint64_t *c = malloc((n ? n : 1) * sizeof *c);
    if (!c) return SHELF_ENOMEM;
    if (n) memcpy(c, f, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_u64);
    size_t u = 0;
    for (size_t j = 0; j < n; j++)
        if (!u || c[j] != c[u - 1]) c[u++] = c[j];
    free(cf->ft[item].f);
    cf->ft[item] = (feats){c, (uint32_t)u};
    if (item >= cf->n_items) cf->n_items = item + 1;
    return 0;
}

uint64_t shelf_coldfill_hash(char kind, const char *s, size_t len)
{
    return XXH3_64bits_withSeed(s, len, (uint64_t)(unsigned char)kind);
}

static size_t add_words(const char *text, uint64_t *out, size_t k, size_t cap)
{
    if (!text || !*text) return k;
    uint32_t ids[WORDS_MAX];
    size_t n = shelf_text_words(text, strlen(text), 1u << 30, ids, WORDS_MAX);
    if (n > WORDS_MAX) n = WORDS_MAX;
    for (size_t j = 0; j < n; j++, k++)
        if (k < cap) out[k] = shelf_coldfill_hash('w', (const char *)&ids[j], sizeof ids[j]);
    return k;
}

size_t shelf_coldfill_snapshot_features(const shelf_snapshot *s, uint32_t i, uint64_t *out, size_t cap)
{
    size_t k = 0;
    uint32_t v;
    if ((v = s->item_category[i]) != SHELF_NONE && k++ < cap) out[k - 1] = shelf_coldfill_hash('c', (const char *)&v, 4);
    if ((v = s->item_brand[i]) != SHELF_NONE && k++ < cap) out[k - 1] = shelf_coldfill_hash('b', (const char *)&v, 4);
    if ((v = s->item_price_bucket[i]) != 0 && k++ < cap) out[k - 1] = shelf_coldfill_hash('p', (const char *)&v, 4);
    for (uint64_t a = s->attr_off[i]; a < s->attr_off[i + 1]; a++) {
        v = s->attr_col[a];
        if (k++ < cap) out[k - 1] = shelf_coldfill_hash('a', (const char *)&v, 4);
    }
    if (s->item_text) k = add_words(s->item_text + s->item_text_off[i], out, k, cap);
    return k;
}

size_t shelf_coldfill_item_features(const char *category, const char *brand, const char *title, const char *text,
                                    const char *const *attrs, size_t n_attrs, uint64_t *out, size_t cap)
{
    size_t k = 0;
    if (category && *category && k++ < cap) out[k - 1] = shelf_coldfill_hash('c', category, strlen(category));
    if (brand && *brand && k++ < cap) out[k - 1] = shelf_coldfill_hash('b', brand, strlen(brand));
    for (size_t a = 0; a < n_attrs; a++)
        if (k++ < cap) out[k - 1] = shelf_coldfill_hash('a', attrs[a], strlen(attrs[a]));
    k = add_words(title, out, k, cap);
    return add_words(text, out, k, cap);
}

/* ---- index and neighbours -------------------------------------------------------------- */

static const uint64_t *find_key(const shelf_coldfill *cf, uint64_t f, size_t *at)
{
    size_t lo = 0, hi = cf->n_keys;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cf->key[mid] < f) lo = mid + 1;
        else hi = mid;
    }
    if (lo < cf->n_keys && cf->key[lo] == f) {
        *at = lo;
        return &cf->key[lo];
    }
    return NULL;
}

static double idf(const shelf_coldfill *cf, size_t at)
{
    return log(1.0 + cf->W / (double)(cf->off[at + 1] - cf->off[at]));
}

typedef struct {
    uint64_t f;
    uint32_t item;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->f != y->f) return (x->f > y->f) - (x->f < y->f);
    return (x->item > y->item) - (x->item < y->item);
}

static int build_index(shelf_coldfill *cf)
{
    index_free(cf);
    size_t np = 0;
    cf->W = 0;
    for (uint32_t i = 0; i < cf->n_items; i++)
        if (cf->warm[i] && cf->ft[i].n) {
            np += cf->ft[i].n;
            cf->W++;
        }
    pair *p = malloc((np ? np : 1) * sizeof *p);
    if (!p) return SHELF_ENOMEM;
    size_t k = 0;
    for (uint32_t i = 0; i < cf->n_items; i++)
        if (cf->warm[i])
            for (uint32_t j = 0; j < cf->ft[i].n; j++) p[k++] = (pair){cf->ft[i].f[j], i};
    qsort(p, np, sizeof *p, cmp_pair);
    size_t nk = 0;
    for (size_t j = 0; j < np; j++) nk += !j || p[j].f != p[j - 1].f;
    cf->key = malloc((nk ? nk : 1) * sizeof *cf->key);
    cf->off = malloc((nk + 1) * sizeof *cf->off);
    cf->post = malloc((np ? np : 1) * sizeof *cf->post);
    if (!cf->key || !cf->off || !cf->post) {
        free(p);
        index_free(cf);
        return SHELF_ENOMEM;
    }
    size_t kk = 0;
    for (size_t j = 0; j < np; j++) {
        if (!j || p[j].f != p[j - 1].f) {
            cf->key[kk] = p[j].f;
            cf->off[kk++] = j;
        }
        cf->post[j] = p[j].item;
    }
    cf->off[kk] = np;
    cf->n_keys = nk;
    free(p);
    /* norms of the warm items */
    for (uint32_t i = 0; i < cf->n_items; i++) {
        cf->norm[i] = 0;
        if (!cf->warm[i]) continue;
        double s = 0;
        size_t at;
        for (uint32_t j = 0; j < cf->ft[i].n; j++)
            if (find_key(cf, cf->ft[i].f[j], &at)) {
                double w = idf(cf, at);
                s += w * w;
            }
        cf->norm[i] = (float)sqrt(s);
    }
    return 0;
}

/* neighbours of item c; acc: [n_items] zeroed work space, left zeroed */
static void neighbours(shelf_coldfill *cf, uint32_t c, float *acc, uint32_t *touched)
{
    const uint32_t K = cf->k;
    cf->n_nb[c] = 0;
    if (cf->warm[c] && c < cf->n_built) return;
    const feats *fc = &cf->ft[c];
    double nc = 0;
    uint32_t nt = 0;
    size_t at;
    for (uint32_t j = 0; j < fc->n; j++) {
        if (!find_key(cf, fc->f[j], &at)) continue;
        double w = idf(cf, at), w2 = w * w;
        nc += w2;
        for (uint64_t p = cf->off[at]; p < cf->off[at + 1]; p++) {
            uint32_t i = cf->post[p];
            if (acc[i] == 0) touched[nt++] = i;
            acc[i] += (float)w2;
        }
    }
    nc = sqrt(nc);
    uint32_t *nb = cf->nb + (size_t)c * K;
    float *nw = cf->nw + (size_t)c * K;
    uint32_t n = 0;
    for (uint32_t t = 0; t < nt; t++) {
        uint32_t i = touched[t];
        float cs = nc > 0 && cf->norm[i] > 0 ? (float)(acc[i] / (nc * cf->norm[i])) : 0.0f;
        acc[i] = 0;
        if (cs <= 0 || i == c) continue;
        if (n < K || cs > nw[n - 1] || (cs == nw[n - 1] && i < nb[n - 1])) { /* insert, best first */
            uint32_t p = n < K ? n++ : K - 1;
            while (p > 0 && (cs > nw[p - 1] || (cs == nw[p - 1] && i < nb[p - 1]))) {
                nb[p] = nb[p - 1];
                nw[p] = nw[p - 1];
                p--;
            }
            nb[p] = i;
            nw[p] = cs;
        }
    }
    cf->n_nb[c] = (uint8_t)n;
}

int shelf_coldfill_build(shelf_coldfill *cf, const uint8_t *warm, uint32_t n_items)
{
    if (reserve(cf, n_items > cf->n_items ? n_items : cf->n_items)) return SHELF_ENOMEM;
    if (n_items > cf->n_items) cf->n_items = n_items;
    for (uint32_t i = 0; i < cf->n_items; i++) cf->warm[i] = i < n_items && warm[i];
    cf->n_built = n_items;
    int rc = build_index(cf);
    if (rc) return rc;
    float *acc = calloc(cf->n_items ? cf->n_items : 1, sizeof *acc);
    uint32_t *touched = malloc((cf->n_items ? cf->n_items : 1) * sizeof *touched);
    if (!acc || !touched) {
        free(acc);
        free(touched);
        return SHELF_ENOMEM;
    }
    for (uint32_t c = 0; c < cf->n_items; c++) neighbours(cf, c, acc, touched);
    free(acc);
    free(touched);
    return 0;
}

int shelf_coldfill_update(shelf_coldfill *cf, uint32_t item)
{
    if (item >= cf->n_items) return SHELF_EINVAL;
    if (!cf->key) { /* not built yet: the build finds every item's neighbours */
        cf->n_nb[item] = 0;
        return 0;
    }
    float *acc = calloc(cf->n_items, sizeof *acc);
    uint32_t *touched = malloc(cf->n_items * sizeof *touched);
    int rc = 0;
    if (!acc || !touched) rc = SHELF_ENOMEM;
    else neighbours(cf, item, acc, touched);
    free(acc);
    free(touched);
    return rc;
}

void shelf_coldfill_apply(const shelf_coldfill *cf, float *scores, uint32_t n)
{
    const uint32_t K = cf->k, m = n < cf->n_items ? n : cf->n_items;
    for (uint32_t c = 0; c < m; c++) {
        if (!cf->n_nb[c]) continue;
        const uint32_t *nb = cf->nb + (size_t)c * K;
        const float *nw = cf->nw + (size_t)c * K;
        double num = 0, den = 0;
        for (uint32_t j = 0; j < cf->n_nb[c]; j++) {
            if (nb[j] >= n) continue;
            float s = scores[nb[j]];
            if (!isfinite(s)) continue;
            num += (double)nw[j] * s;
            den += nw[j];
        }
        if (den > 0) scores[c] = (float)(num / den);
    }
}

uint32_t shelf_coldfill_count(const shelf_coldfill *cf)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < cf->n_items; c++) n += cf->n_nb[c] > 0;
    return n;
}

uint32_t shelf_coldfill_neighbours(const shelf_coldfill *cf, uint32_t item, uint32_t *nb, float *w)
{
    if (item >= cf->n_items) return 0;
    uint32_t n = cf->n_nb[item];
    memcpy(nb, cf->nb + (size_t)item * cf->k, n * sizeof *nb);
    memcpy(w, cf->nw + (size_t)item * cf->k, n * sizeof *w);
    return n;
}

/* ---- a shopper's content profile (coldfill_int.h) ----------------------------------------- */

/* the IDF of feature f: from the warm index, else as rare as a feature can be */
static double idf_of(const shelf_coldfill *cf, uint64_t f)
{
    size_t at;
    return find_key(cf, f, &at) ? idf(cf, at) : log(1.0 + (cf->W > 0 ? cf->W : 1.0));
}

int shelf__coldfill_profile_scores(const shelf_coldfill *cf, const uint32_t *hist, size_t n_hist, const uint32_t *cand,
                                   size_t n_cand, float *out)
{
    size_t np = 0;
    for (size_t h = 0; h < n_hist; h++)
        if (hist[h] < cf->n_items) np += cf->ft[hist[h]].n;
    uint64_t *pf = malloc((np ? np : 1) * sizeof *pf);
    double *pw = malloc((np ? np : 1) * sizeof *pw);
    if (!pf || !pw) {
        free(pf);
        free(pw);
        return SHELF_ENOMEM;
    }
    /* the profile: each feature of the history's items, IDF x how many of them have it */
    size_t k = 0;
    for (size_t h = 0; h < n_hist; h++)
        if (hist[h] < cf->n_items)
            for (uint32_t j = 0; j < cf->ft[hist[h]].n; j++) pf[k++] = cf->ft[hist[h]].f[j];
    qsort(pf, k, sizeof *pf, cmp_u64);
    size_t u = 0;
    double norm_p = 0;
    for (size_t j = 0; j < k;) {
        size_t e = j;
        while (e < k && pf[e] == pf[j]) e++;
        pf[u] = pf[j];
        pw[u] = (double)(e - j) * idf_of(cf, pf[j]);
        norm_p += pw[u] * pw[u];
        u++;
        j = e;
    }
    norm_p = sqrt(norm_p);
    /* each candidate: the cosine of its IDF-weighted features with the profile (sorted merge) */
    for (size_t c = 0; c < n_cand; c++) {
        uint32_t i = cand[c];
        out[c] = 0;
        if (i >= cf->n_items || !norm_p) continue;
        const feats *fi = &cf->ft[i];
        double dot = 0, ni = 0;
        size_t a = 0;
        for (uint32_t j = 0; j < fi->n; j++) {
            double w = idf_of(cf, fi->f[j]);
            ni += w * w;
            while (a < u && pf[a] < fi->f[j]) a++;
            if (a < u && pf[a] == fi->f[j]) dot += w * pw[a];
        }
        out[c] = ni > 0 ? (float)(dot / (norm_p * sqrt(ni))) : 0.0f;
    }
    free(pf);
    free(pw);
    return 0;
}
