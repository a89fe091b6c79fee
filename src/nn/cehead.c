/* cehead.c: the fused full-catalogue softmax cross-entropy head of nn.h: its
 * work space, its naive reference, and the call that hands the work to the
 * copy of isa/cehead.c for the CPU's level (kern_int.h). The schedule and
 * the micro-kernels are described in isa/cehead.c. */
#include "nn/nn.h"

#include <math.h>
#include <stdlib.h>

#include "kern_int.h"
#include "core/assert_int.h"

static size_t round_up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

static void *alloc64(size_t bytes)
{
    return aligned_alloc(64, round_up(bytes ? bytes : 1, 64));
}

shelf_nn_cehead_ws *shelf_nn_cehead_ws_new(size_t max_N, size_t V, size_t C)
{
    shelf_nn_cehead_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    const size_t RB = SHELF_CEHEAD_RB, VB = SHELF_CEHEAD_VB;
    ws->max_N = max_N, ws->V = V, ws->C = C;
    ws->Cp = round_up(C ? C : 1, 16);
    ws->Vp = round_up(V ? V : 1, VB);
    ws->nb = ws->Vp / VB;
    size_t Cp = ws->Cp, Vp = ws->Vp, nb = ws->nb;
    ws->wp = alloc64(Vp * Cp * sizeof(float));
    ws->wr = alloc64(Vp * Cp * sizeof(float));
    ws->hp = alloc64(RB * Cp * sizeof(float));
    ws->X = alloc64(nb * RB * VB * sizeof(float));
    ws->dhp = alloc64(nb * RB * Cp * sizeof(float));
    ws->m = alloc64(RB * nb * sizeof(float));
    ws->s = alloc64(RB * nb * sizeof(float));
    ws->scale = alloc64(RB * nb * sizeof(float));
    ws->xt = alloc64(RB * sizeof(float));
    int ok = ws->wp && ws->wr && ws->hp && ws->X && ws->dhp && ws->m && ws->s && ws->scale && ws->xt;
    /* the bf16 layouts only where some level could read them: the level can
     * be lowered later, never raised above the detected one */
    if (shelf__kern_for(shelf_cpu_detected())->bf16) {
        ws->wpb = alloc64(Vp * Cp * sizeof(uint16_t));
        ws->wqb = alloc64(Vp * Cp * sizeof(uint16_t));
        ws->hb = alloc64(RB * Cp * sizeof(uint16_t));
        ws->hqb = alloc64(RB * Cp * sizeof(uint16_t));
        ws->Gb = alloc64(nb * RB * VB * sizeof(uint16_t));
        ws->Gtb = alloc64(nb * RB * VB * sizeof(uint16_t));
        ok = ok && ws->wpb && ws->wqb && ws->hb && ws->hqb && ws->Gb && ws->Gtb;
    }
    if (!ok) {
        shelf_nn_cehead_ws_free(ws);
        return NULL;
    }
    return ws;
}

void shelf_nn_cehead_ws_free(shelf_nn_cehead_ws *ws)
{
    if (!ws) return;
    free(ws->wp), free(ws->wr), free(ws->hp), free(ws->X), free(ws->dhp);
    free(ws->m), free(ws->s), free(ws->scale), free(ws->xt);
    free(ws->wpb), free(ws->wqb), free(ws->hb), free(ws->hqb), free(ws->Gb), free(ws->Gtb);
    free(ws);
}

float shelf_nn_cehead(float *losses, float *dh, float *dw, const float *h, const float *w, const uint32_t *tgt,
                      float dloss, size_t N, size_t V, size_t C, shelf_nn_precision prec, shelf_nn_cehead_ws *ws)
{
    const shelf__kern *k = shelf__kern_get();
    int bf16 = prec == SHELF_NN_BF16 && k->bf16 && ws && ws->wpb; /* else computed as F32 (nn.h) */
    return k->cehead(losses, dh, dw, h, w, tgt, dloss, N, V, C, bf16, ws);
}

/* the contract of nn.h, one row at a time, double sums */
float shelf_nn_cehead_ref(float *losses, float *dh, float *dw, const float *h, const float *w, const uint32_t *tgt,
                          float dloss, size_t N, size_t V, size_t C)
{
    float *x = malloc((V ? V : 1) * sizeof *x);
    SHELF_ASSERT(x);
    double total = 0.0;
    float g = N ? dloss / (float)N : 0.0f;
    for (size_t n = 0; n < N; n++) {
        SHELF_ASSERT(tgt[n] < V);
        const float *hn = h + n * C;
        float mx = -INFINITY;
        for (size_t v = 0; v < V; v++) {
            float a = 0.0f;
            for (size_t c = 0; c < C; c++) a += hn[c] * w[v * C + c];
            x[v] = a;
            mx = a > mx ? a : mx;
        }
        double s = 0.0;
        for (size_t v = 0; v < V; v++) s += exp((double)x[v] - mx);
        double lse = mx + log(s);
        float l = (float)(lse - x[tgt[n]]);
        if (losses) losses[n] = l;
        total += l;
        if (!dh) continue;
        for (size_t c = 0; c < C; c++) dh[n * C + c] = 0.0f;
        for (size_t v = 0; v < V; v++) {
            float G = g * ((float)exp((double)x[v] - lse) - (v == tgt[n] ? 1.0f : 0.0f));
            for (size_t c = 0; c < C; c++) dh[n * C + c] += G * w[v * C + c];
            if (dw)
                for (size_t c = 0; c < C; c++) dw[v * C + c] += G * hn[c];
        }
    }
    free(x);
    return N ? (float)(total / (double)N) : 0.0f;
}
