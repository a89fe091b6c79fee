/* bench_cehead.c: the softmax cross-entropy output layer, forward + backward,
 * old path (3 sgemm over the full [N,V] logits + the scalar softmax it used,
 * copied here from loss.c before vectorisation), the same with the
 * vectorised softmax of loss.c, and the fused head in F32 and BF16.
 * Prints one JSON line per case: median of REPS timed runs after a warm-up,
 * GFLOP/s counting 3 * 2 N V C flops, and the speed-up over the old path.
 * Also the plain sgemm rate of a 2048^3 product for reference.
 *
 *   cmake --build build --target bench_cehead && build/bench_cehead [N V reps]
 *   build/bench_cehead --sgemm-only     {"sgemm_gflop_per_s": ...} only
 *
 * Dimension letters: N rows, V items, C channels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#undef I

#include "shelf/cpu.h"
#include "nn/nn.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- the old path ------------------------------------------------------- */

typedef struct {
    size_t N, V, C;
    const float *h, *w;
    const uint32_t *tgt;
    float *logits, *losses, *lse, *dh, *dw;
    int scalar; /* 1: the pre-vectorisation softmax; 0: loss.c's */
} old_ctx;

/* loss.c's softmax CE as it was: libm expf, fmaxf, double row sum */
static float old_softmax_fwd_bwd(old_ctx *o)
{
    size_t N = o->N, V = o->V;
    float g = 1.0f / (float)N;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) {
        float *x = o->logits + n * V;
        float mx = -INFINITY;
        for (size_t v = 0; v < V; v++) mx = fmaxf(mx, x[v]);
        double s = 0.0;
        for (size_t v = 0; v < V; v++) s += expf(x[v] - mx);
        float l = mx + (float)log(s);
        o->lse[n] = l;
        o->losses[n] = l - x[o->tgt[n]];
        for (size_t v = 0; v < V; v++) x[v] = g * expf(x[v] - l);
        x[o->tgt[n]] -= g;
    }
    double s = 0.0;
    for (size_t n = 0; n < N; n++) s += o->losses[n];
    return (float)(s / (double)N);
}

static float old_path(old_ctx *o)
{
    int N = (int)o->N, V = (int)o->V, C = (int)o->C;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, V, C, 1.0f, o->h, C, o->w, C, 0.0f, o->logits, V);
    float L;
    if (o->scalar) {
        L = old_softmax_fwd_bwd(o);
    } else {
        L = shelf_nn_softmax_ce_forward(o->losses, o->lse, o->logits, o->tgt, o->N, o->V);
        shelf_nn_softmax_ce_backward(o->logits, o->logits, o->lse, o->tgt, 1.0f, o->N, o->V);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, V, 1.0f, o->logits, V, o->w, C, 0.0f, o->dh, C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, N, 1.0f, o->logits, V, o->h, C, 1.0f, o->dw, C);
    return L;
}

/* ---- timing ----------------------------------------------------------------- */

typedef struct {
    old_ctx *o;
    shelf_nn_cehead_ws *ws;
    shelf_nn_precision prec;
} run_arg;

static float run_case(run_arg *a)
{
    old_ctx *o = a->o;
    if (!a->ws) return old_path(o);
    return shelf_nn_cehead(o->losses, o->dh, o->dw, o->h, o->w, o->tgt, 1.0f, o->N, o->V, o->C, a->prec, a->ws);
}

static double median_time(run_arg *a, int reps, float *L)
{
    double t[64];
    *L = run_case(a); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        run_case(a);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    return t[reps / 2];
}

static double sgemm_rate(int reps)
{
    int M = 2048;
    float *a = xmalloc((size_t)M * M * sizeof *a), *b = xmalloc((size_t)M * M * sizeof *b),
          *c = xmalloc((size_t)M * M * sizeof *c);
    for (size_t i = 0; i < (size_t)M * M; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    double t[64];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, M, M, 1.0f, a, M, b, M, 0.0f, c, M);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, M, M, 1.0f, a, M, b, M, 0.0f, c, M);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    free(a), free(b), free(c);
    return 2.0 * M * M * (double)M / t[reps / 2] * 1e-9;
}

int main(int argc, char **argv)
{
    char machine[1024]; /* CPU model and kernel levels (shelf version --cpu), in every line */
    shelf_cpu_describe_json(machine, sizeof machine);
    if (argc > 1 && strcmp(argv[1], "--sgemm-only") == 0) {
        printf("{\"sgemm_gflop_per_s\":%.1f,\"machine\":%s}\n", sgemm_rate(7), machine);
        return 0;
    }
    size_t N = argc > 1 ? (size_t)atol(argv[1]) : 900, V = argc > 2 ? (size_t)atol(argv[2]) : 12101;
    int reps = argc > 3 ? atoi(argv[3]) : 7;
    if (reps < 1 || reps > 64) reps = 7;
    printf("{\"case\":\"sgemm_2048\",\"gflops\":%.1f,\"machine\":%s}\n", sgemm_rate(reps), machine);
    shelf_rng rng;
    shelf_rng_seed(&rng, 7);
    const size_t Cs[2] = {64, 50};
    for (int ci = 0; ci < 2; ci++) {
        size_t C = Cs[ci];
        float *h = xmalloc(N * C * sizeof *h), *w = xmalloc(V * C * sizeof *w);
        uint32_t *tgt = xmalloc(N * sizeof *tgt);
        for (size_t i = 0; i < N * C; i++) h[i] = (float)shelf_rng_normal(&rng) * 2.0f;
        for (size_t i = 0; i < V * C; i++) w[i] = (float)shelf_rng_normal(&rng) / sqrtf((float)C);
        for (size_t n = 0; n < N; n++) tgt[n] = shelf_rng_below(&rng, (uint32_t)V);
        old_ctx o = {N, V, C, h, w, tgt, xmalloc(N * V * sizeof(float)), xmalloc(N * sizeof(float)),
                     xmalloc(N * sizeof(float)), xmalloc(N * C * sizeof(float)), calloc(V * C, sizeof(float)), 1};
        shelf_nn_cehead_ws *ws = shelf_nn_cehead_ws_new(N, V, C);
        if (!o.dw || !ws) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        /* check first: the fused results against the old path's dh */
        float *dh_old = xmalloc(N * C * sizeof(float));
        float L_old = old_path(&o);
        memcpy(dh_old, o.dh, N * C * sizeof(float));
        const char *names[4] = {"old_sgemm_scalar_softmax", "old_sgemm_vec_softmax", "head_f32", "head_bf16"};
        double t_old = 0.0;
        for (int k = 0; k < 4; k++) {
            run_arg a = {&o, k >= 2 ? ws : NULL, k == 3 ? SHELF_NN_BF16 : SHELF_NN_F32};
            o.scalar = k == 0;
            float L = run_case(&a);
            double dmax = 0.0, smax = 0.0;
            for (size_t i = 0; i < N * C; i++) {
                dmax = fmax(dmax, fabs((double)o.dh[i] - dh_old[i]));
                smax = fmax(smax, fabs(dh_old[i]));
            }
            double lrel = fabs((double)L - L_old) / fabs(L_old), drel = dmax / smax;
            if (lrel > (k == 3 ? 2e-2 : 1e-5) || drel > (k == 3 ? 5e-2 : 1e-4)) {
                fprintf(stderr, "%s: result check failed (loss rel %.3g, dh rel %.3g)\n", names[k], lrel, drel);
                return 1;
            }
            double t = median_time(&a, reps, &L);
            if (k == 0) t_old = t;
            printf("{\"case\":\"%s\",\"N\":%zu,\"V\":%zu,\"C\":%zu,\"ms\":%.2f,\"gflops\":%.1f,\"speedup\":%.2f,"
                   "\"loss_rel_err\":%.2g,\"dh_rel_err\":%.2g,\"machine\":%s}\n",
                   names[k], N, V, C, t * 1e3, 6.0 * N * V * C / t * 1e-9, t_old / t, lrel, drel, machine);
            fflush(stdout);
        }
        free(h), free(w), free(tgt), free(o.logits), free(o.losses), free(o.lse), free(o.dh), free(o.dw);
        free(dh_old);
        shelf_nn_cehead_ws_free(ws);
    }
    return 0;
}
