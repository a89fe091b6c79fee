/* ease.c: EASE (Steck, "Embarrassingly Shallow Autoencoders", WWW 2019).
 * Models room. A dense item-item weight matrix B with zero diagonal, in
 * closed form: P = (X^T X + lambda I)^-1, B = -P / diag(P) column-wise, X
 * the binary training user-item matrix. A query scores the sum of its
 * history items' rows of B. Memory and time grow as I^2 and I^3: the
 * catalogue size is checked against ease-max-mb before anything is built.
 * Defaults (Beauty validation NDCG@10): lambda 100, history recency 0.4
 * (0.0598; 0.0513 with equal history weights). Fit at I = 12,101 on 2
 * cores: about 10 s, nearly all of it the I^3 flops of spotrf + spotri.
 *
 * Dimension letters: U users, I items. */
#include "models/history_int.h"
#include "models/models_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ease's rows of the configuration table: its hyperparameters (config.c
 * joins every model's rows to the common ones) */
static const shelf_cfg_def opts[] = {
#include "models/opts/ease.def"
};

/* LAPACK (in OpenBLAS; Fortran calling convention, column-major). */
void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info);
void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info);

typedef struct ease_model {
    shelf_model base;
    float *B;      /* [I, I] row-major: B[h*I + j] = weight of history item h for item j */
    double recency; /* history weight (1-r)^j for the j-th newest item */
    double lambda;  /* fit setting, kept for the manifest */
} ease_model;

static void ease_free(shelf_model *m)
{
    ease_model *e = (ease_model *)m;
    if (!e) return;
    free(e->B);
    free(e);
}

/* ---- fit ------------------------------------------------------------------------ */

#define TILE 64

/* Copies the lower triangle of the row-major square a[n, n] onto the upper
 * one, tile by tile (a plain transpose walk misses the cache every read). */
static void mirror_lower(float *a, size_t n, int n_threads)
{
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
    for (size_t bi = 0; bi < n; bi += TILE) {
        for (size_t bj = 0; bj <= bi; bj += TILE) {
            size_t ie = bi + TILE < n ? bi + TILE : n, je = bj + TILE < n ? bj + TILE : n;
            for (size_t i = bi; i < ie; i++)
                for (size_t j = bj; j < je && j < i; j++) a[j * n + i] = a[i * n + j];
        }
    }
}

static int ease_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    ease_model *e = (ease_model *)m;
    const uint32_t U = s->n_users, I = s->n_items;
    const double lambda = shelf_config_double(o, "ease-lambda");
    const int64_t max_mb = shelf_config_int(o, "ease-max-mb");
    const int n_threads = shelf__model_threads(o);

    /* The Gram matrix and the weights (one buffer here, two while a bundle
     * loads), 4 bytes each: refuse before allocating anything. */
    const double need_mb = (double)I * I * 4.0 * 2.0 / (1024.0 * 1024.0);
    if (need_mb > (double)max_mb)
        return shelf__model_fail(m, SHELF_ERANGE,
                                 "a catalogue of %u items needs %.1f MiB (2 x I^2 x 4 bytes), more than "
                                 "ease-max-mb = %lld MiB: raise --ease-max-mb or use itemknn",
                                 I, need_mb, (long long)max_mb);
    if (I > 46340) /* I^2 must fit LAPACK's int */
        return shelf__model_fail(m, SHELF_ERANGE, "a catalogue of %u items is beyond LAPACK's int sizes", I);
    if (I == 0) return shelf__model_fail(m, SHELF_EINVAL, "no items to fit");

    const size_t n = I;
    double t0 = shelf_now();
    float *G = calloc(n * n, sizeof *G);
    if (!G)
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory: %u x %u Gram matrix (%.0f MiB)", I, I,
                                 need_mb / 2);

    /* G = X^T X + lambda I by sparse accumulation: row i gains 1 at every
     * item j of every user of i. Each thread owns whole rows. */
#pragma omp parallel for schedule(dynamic, 32) num_threads(n_threads)
    for (uint32_t i = 0; i < I; i++) {
        float *g = G + (size_t)i * n;
        for (uint64_t a = s->iu_off[i]; a < s->iu_off[i + 1]; a++) {
            uint32_t u = s->iu_col[a];
            for (uint64_t b = s->ui_off[u]; b < s->ui_off[u + 1]; b++) g[s->ui_col[b]] += 1.0f;
        }
        g[i] += (float)lambda;
    }
    shelf_progress_update(pr, 1, "cholesky");
    double t1 = shelf_now();

    /* P = G^-1: Cholesky factor, then the inverse from it. G is symmetric, so
     * row- and column-major agree; LAPACK's upper triangle (column-major) is
     * our lower one, mirrored afterwards. ("U" because OpenBLAS's spotrf is
     * faster on it: 3.9 s against 5.4 s at I = 12,101 on 2 cores.) */
    int ni = (int)I, info = 0;
    spotrf_("U", &ni, G, &ni, &info);
    if (info == 0) spotri_("U", &ni, G, &ni, &info);
    if (info != 0) {
        free(G);
        return shelf__model_fail(m, SHELF_ERANGE,
                                 "X^T X + lambda I is singular (LAPACK info %d at lambda %g): raise ease-lambda",
                                 info, lambda);
    }
    double t2 = shelf_now();
    mirror_lower(G, n, n_threads);
    shelf_progress_update(pr, 2, "weights");

    /* B = -P / diag(P) column-wise, zero diagonal, in place. */
    float *dinv = malloc(n * sizeof *dinv);
    if (!dinv) {
        free(G);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < n; j++) dinv[j] = -1.0f / G[j * n + j];
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (size_t i = 0; i < n; i++) {
        float *row = G + i * n;
        for (size_t j = 0; j < n; j++) row[j] *= dinv[j];
        row[i] = 0.0f;
    }
    free(dinv);
    shelf_progress_update(pr, 3, NULL);
    shelf_debug("ease: %u items: Gram %.2f s, Cholesky + inverse %.2f s, weights %.2f s", I, t1 - t0, t2 - t1,
                shelf_now() - t2);

    free(e->B);
    e->B = G;
    e->lambda = lambda;
    e->recency = shelf_config_double(o, "ease-recency");
    m->n_users = U;
    m->n_items = I;
    m->fitted = 1;
    return 0;
}

/* ---- score / explain ----------------------------------------------------------- */

/* scores[j] = sum over distinct history items h of w_h B[h, j], w_h =
 * (1 - ease-recency)^(steps back from the newest). Reads only the model;
 * safe from many threads. */
static int ease_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    const ease_model *e = (const ease_model *)m;
    const size_t I = m->n_items;
    memset(scores, 0, I * sizeof *scores);
    shelf__hist *h;
    long n = shelf__history_weighted(q, m->n_items, e->recency, &h);
    if (n < 0) return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory (history of %u)", q->n);
    for (long t = 0; t < n; t++) {
        const float *row = e->B + (size_t)h[t].item * I;
        const float w = h[t].w;
        if (w == 1.0f)
            for (size_t j = 0; j < I; j++) scores[j] += row[j];
        else if (w != 0.0f)
            for (size_t j = 0; j < I; j++) scores[j] += w * row[j];
    }
    free(h);
    return 0;
}

/* The history item with the largest weight towards item, and its share of
 * the positive part of the score. */
/* the link of a history item to the explained item: B[from, item] */
static double link_to(const shelf_model *m, uint32_t from, uint32_t item)
{
    return ((const ease_model *)m)->B[(size_t)from * m->n_items + item];
}

static int ease_explain(const shelf_model *m, const shelf_query *q, uint32_t item, shelf_reason *r, shelf_err *err)
{
    /* EASE's weights can be negative: the share is of the positive part */
    return shelf__history_explain(m, q, item, ((const ease_model *)m)->recency, link_to, 1, "goes with",
                                  "no history item points to it", r, err);
}

/* ---- save / load --------------------------------------------------------------- */

static int ease_save(const shelf_model *m, shelf_bundle_writer *w)
{
    const ease_model *e = (const ease_model *)m;
    int64_t shape[2] = {m->n_items, m->n_items};
    int rc = shelf_bundle_put(w, "B", SHELF_DT_F32, 2, shape, e->B);
    if (!rc) rc = shelf_bundle_set_num(w, "ease-lambda", e->lambda);
    if (!rc) rc = shelf_bundle_set_num(w, "ease-recency", e->recency);
    return rc;
}

static int ease_load(shelf_model *m, const shelf_bundle *b)
{
    ease_model *e = (ease_model *)m;
    const size_t I = m->n_items;
    int nd;
    int64_t sh[4];
    const float *B = shelf_bundle_get(b, "B", SHELF_DT_F32, &nd, sh);
    if (!B) return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor 'B'");
    if (nd != 2 || sh[0] != (int64_t)I || sh[1] != (int64_t)I)
        return shelf__model_fail(m, SHELF_ECORRUPT, "tensor 'B' is not [%zu, %zu]", I, I);
    float *c = malloc((I ? I * I : 1) * sizeof *c);
    if (!c)
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory: %zu x %zu weights (%.0f MiB)", I, I,
                                 (double)I * I * 4 / (1024.0 * 1024.0));
    double r = shelf_bundle_num(b, "ease-recency", 0);
    if (!(r >= 0 && r <= 1)) {
        free(c);
        return shelf__model_fail(m, SHELF_ECORRUPT, "ease-recency %g out of [0, 1]", r);
    }
    memcpy(c, B, I * I * sizeof *c);
    e->recency = r;
    free(e->B);
    e->B = c;
    e->lambda = shelf_bundle_num(b, "ease-lambda", 0);
    m->fitted = 1;
    return 0;
}

/* the vtable and what registry.c needs to make one (models_int.h) */
SHELF__MODEL_KIND(ease, ease, "ease", SHELF_CAP_EXPLAIN | SHELF_CAP_SIMILAR | SHELF_CAP_NEEDS_HISTORY,
                  /* observe */ NULL, /* explain */ ease_explain, /* predict */ NULL, SHELF__NO_SESSION);
