/* bootstrap.c: paired bootstrap of the difference of two models' per-user
 * metric values, for "is a better than b" with a confidence interval. Eval
 * room. */
#include "shelf/eval.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile of sorted v[0..n) with linear interpolation between order
 * statistics (numpy's default) */
static double quantile(const double *v, uint32_t n, double q)
{
    double pos = q * (double)(n - 1);
    uint32_t lo = (uint32_t)pos;
    if (lo + 1 >= n) return v[n - 1];
    double f = pos - lo;
    return v[lo] + f * (v[lo + 1] - v[lo]);
}

void shelf_eval_bootstrap(const double *a, const double *b, uint32_t n, uint32_t n_boot, uint64_t seed,
                          double *mean_diff, double *lo, double *hi, double *p_not_better)
{
    *mean_diff = *lo = *hi = *p_not_better = NAN;
    if (n == 0 || n_boot == 0) return;
    double *d = malloc((size_t)n * sizeof *d);
    double *means = malloc((size_t)n_boot * sizeof *means);
    if (!d || !means) {
        free(d);
        free(means);
        return;
    }
    double s = 0;
    for (uint32_t j = 0; j < n; j++) {
        d[j] = a[j] - b[j];
        s += d[j];
    }
    shelf_rng rng;
    shelf_rng_seed(&rng, seed);
    uint32_t not_better = 0;
    for (uint32_t r = 0; r < n_boot; r++) {
        double t = 0;
        for (uint32_t j = 0; j < n; j++) t += d[shelf_rng_below(&rng, n)];
        means[r] = t / n;
        not_better += means[r] <= 0;
    }
    qsort(means, n_boot, sizeof *means, cmp_double);
    *mean_diff = s / n;
    *lo = quantile(means, n_boot, 0.025);
    *hi = quantile(means, n_boot, 0.975);
    *p_not_better = (double)not_better / n_boot;
    free(d);
    free(means);
}
