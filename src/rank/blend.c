/* blend.c: the model's scores mixed with the trending popularity, weight w
 * (the request's or the deployment's; 0, the default, leaves the scores as
 * they are). Both are standardised over the items that can still be shown
 * (finite scores), so that a weight means the same for every model:
 * blended = z(score) + w * z(log(1 + popularity)). A positive w leans
 * towards what sells now, a negative one towards the long tail. */
#include "rank/rank_int.h"

#include <math.h>
#include <stdlib.h>

/* mean and standard deviation of v over the items with finite scores */
static void moments(const float *v, const float *scores, uint32_t N, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < N; i++)
        if (isfinite(scores[i])) {
            s += v[i];
            s2 += (double)v[i] * v[i];
            n++;
        }
    *mean = n ? s / n : 0;
    double var = n ? s2 / n - *mean * *mean : 0;
    *sd = var > 1e-24 ? sqrt(var) : 1;
}

int shelf__rank_blend(const shelf__rank_env *env, float weight, float *scores, uint32_t N)
{
    if (weight == 0 || !N) return 0;
    float *pop = malloc((size_t)N * sizeof *pop);
    if (!pop) return SHELF_ENOMEM;
    env->pop_scores(env->ctx, pop, N);
    for (uint32_t i = 0; i < N; i++) pop[i] = (float)log1p(pop[i] > 0 ? pop[i] : 0);
    double ms, ss, mp, sp;
    moments(scores, scores, N, &ms, &ss);
    moments(pop, scores, N, &mp, &sp);
    for (uint32_t i = 0; i < N; i++)
        if (isfinite(scores[i]))
            scores[i] = (float)((scores[i] - ms) / ss + weight * (pop[i] - mp) / sp);
    free(pop);
    return 0;
}
