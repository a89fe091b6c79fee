/* fallback.c: the scores a shopper without usable history gets (an unknown
 * id, an anonymous session of unknown items, a forgotten history): the
 * configured chain of popularity sources (rank_int.h), never zeros. */
#include "rank_int.h"
#include "rank/scenario_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[SHELF__FB_N] = {"trending", "popular"};

int shelf__fallback_parse(shelf__fallback *out, const char *spec, shelf_err *err)
{
    shelf__fallback r = {0};
    const char *p = spec && *spec ? spec : "trending,popular";
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int found = -1;
        for (int k = 0; k < SHELF__FB_N; k++)
            if (strlen(names[k]) == len && !memcmp(names[k], p, len)) found = k;
        if (found < 0)
            return shelf_err_set(err, SHELF_EINVAL, "fallback: unknown source '%.*s' (trending or popular)", (int)len, p);
        for (uint32_t k = 0; k < r.n; k++)
            if (r.src[k] == (shelf__fb_source)found)
                return shelf_err_set(err, SHELF_EINVAL, "fallback: '%.*s' named twice", (int)len, p);
        r.src[r.n++] = (shelf__fb_source)found;
        if (!end) break;
        p = end + 1;
    }
    *out = r;
    return 0;
}

void shelf__fallback_scores(float *scores, uint32_t n, const shelf__fallback *fb, const double *const vals[SHELF__FB_N])
{
    static const double weight[SHELF__FB_N] = {1.0, 1e-3};
    double tot[SHELF__FB_N] = {0};
    for (uint32_t k = 0; k < fb->n; k++)
        for (uint32_t i = 0; i < n; i++) tot[k] += vals[fb->src[k]][i] > 0 ? vals[fb->src[k]][i] : 0;
    for (uint32_t i = 0; i < n; i++) {
        double v = 1e-9;
        for (uint32_t k = 0; k < fb->n; k++) {
            double x = vals[fb->src[k]][i];
            if (tot[k] > 0 && x > 0) v += weight[k] * x / tot[k];
        }
        scores[i] = (float)v;
    }
}

int shelf__rank_fallback(const shelf__rank_env *env, const shelf__rank_req *rq, float *scores, uint32_t N)
{
    const shelf__scenario *s = rq->scenario;
    if (!s || !s->has_fallback || !env->popular_scores) {
        env->fallback_scores(env->ctx, scores, N);
        return 0;
    }
    double *v = malloc((size_t)(N ? N : 1) * 2 * sizeof *v);
    if (!v) return SHELF_ENOMEM;
    env->pop_scores(env->ctx, scores, N);
    for (uint32_t i = 0; i < N; i++) v[i] = scores[i];
    env->popular_scores(env->ctx, scores, N);
    for (uint32_t i = 0; i < N; i++) v[N + i] = scores[i];
    const double *vals[SHELF__FB_N] = {[SHELF__FB_TRENDING] = v, [SHELF__FB_POPULAR] = v + N};
    shelf__fallback_scores(scores, N, &s->fallback, vals);
    free(v);
    return 0;
}
