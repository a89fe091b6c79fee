/* nn_test_util.h: what the nn kernel tests share (test_nn_kernels.c,
 * test_nn_cehead.c): the finite-difference step and tolerances (the reasons
 * are in test_nn_kernels.c's header), one RNG per test executable, normal
 * fills and zeroed buffers. Include after <cmocka.h>. */
#ifndef SHELF_NN_TEST_UTIL_H
#define SHELF_NN_TEST_UTIL_H

#include <stdlib.h>

#include "shelf/core.h"

#define FD_EPS 1e-2f
#define FD_ATOL 1e-3
#define FD_RTOL 1e-2

static shelf_rng g_rng;

static void fill_normal(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)shelf_rng_normal(&g_rng) * scale;
}

static float *fnew(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

#endif
