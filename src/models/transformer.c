/* transformer.c: the transformer profile model (DESIGN.md "The transformer
 * profile model"), a SASRec-style causal transformer over each shopper's
 * behaviour sequence. Models room; built from the nn/ kernels (nn.h,
 * attention.h, optim.h).
 *
 * Item representation. e(i) = wte[i] + mean of wfe[f] over the item's
 * features f (attribute ids, then its category, brand and price bucket, each
 * range offset after the previous), or wte[i] alone for an item without
 * features or with tf-features off. The table E[I,C] of all e(i) is built
 * once per training step (and once after fit/load) and serves both as the
 * input embedding and as the tied output layer: score(i) = h . e(i).
 *
 * Input at each position: e(item) + wpe[position] + wtyp[event type]
 * (tf-types) + wgap[time-gap bucket] (tf-gaps); the gap bucket of an event is
 * 1 + min(30, floor(log2(1 + seconds since the user's previous event))), 0
 * for the first event or unknown times. Positions count from the oldest item
 * in view (0, 1, ...), so appending an event leaves earlier positions
 * unchanged and the keys/values of every layer can be cached (serving, see
 * shelf/transformer.h). Then embedding dropout, tf-layers pre-LayerNorm
 * causal blocks
 *   x += drop(proj(MHA(qkv(LN1(x)))));  x += drop(fc2(GELU(fc1(LN2(x)))))
 * and a final LayerNorm; the user's profile is the last position's state h.
 *
 * Window. A history of n items is read through the window [start, n) with
 * start = 0 for n <= T, else the smallest multiple of T/2 with n - start <= T
 * (T = tf-maxlen): the window slides by T/2 at a time, so an incremental
 * update recomputes the window once per T/2 events and equals the full
 * computation. Training rows take the last T inputs of each sequence.
 *
 * Training: every position of every training sequence predicts the next
 * item. Losses (tf-loss): "ce" full softmax cross-entropy over the catalogue
 * (the fused head shelf_nn_cehead, float32 or bfloat16 products by
 * tf-precision), "sampled" softmax over tf-negatives negatives shared by the
 * batch, drawn by popularity^0.75 with log-Q correction, "bce" binary
 * cross-entropy with tf-negatives uniform negatives per position. AdamW with
 * linear warm-up then cosine decay, global gradient clipping, batches of
 * users shuffled with the seed (tf-bucket: of similar lengths, so a batch
 * costs its own longest row rather than T positions; batch order shuffled).
 *
 * Validation and stopping. With validation targets (shelf_model_set_valid:
 * `shelf eval` passes the protocol's), NDCG@10 and HR@10 of them are measured
 * after every epoch (full ranking, training items of the user excluded), the
 * best epoch's parameters are kept, and tf-patience > 0 stops after that many
 * epochs without improvement. Without them, tf-holdout holds out each
 * sequence's last item for the same purpose (and never trains on it);
 * otherwise all tf-epochs epochs run on everything.
 *
 * Reproducible for a seed and thread count: shuffles, negatives and dropout
 * masks are drawn serially from one RNG and the kernels do not depend on
 * scheduling. Dimension letters: B batch (users), T positions, N = B*T rows,
 * C width, F feed-forward width, NH heads, L layers, I items, NF features. */
#include "models/models_int.h"
#include "models/transformer_int.h"
#include "core/mem_int.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn/attention.h"
#include "nn/nn.h"
#include "nn/optim.h"
#include "shelf/text.h"
#include "core/assert_int.h"

/* transformer's rows of the configuration table: its hyperparameters (config.c
 * joins every model's rows to the common ones) */
static const shelf_cfg_def opts[] = {
#include "models/opts/transformer.def"
};

#undef I /* <complex.h>, pulled in by cblas.h, defines I */

#define NGAP 32 /* gap buckets: 0 unknown, 1..31 */

enum { LOSS_CE, LOSS_SAMPLED, LOSS_BCE };
enum { PROF_ITEMS, PROF_FORWARD, PROF_HEAD, PROF_BACKWARD, PROF_OPTIM, PROF_N };
static const char *const prof_names[PROF_N] = {"items", "forward", "head", "backward", "optimizer"};

/* per-layer tensors, in the order they are declared */
enum { P_LN1W, P_LN1B, P_QKVW, P_QKVB, P_PROJW, P_PROJB, P_LN2W, P_LN2B, P_FC1W, P_FC1B, P_FC2W, P_FC2B, P_PER_LAYER };
static const char *const layer_names[P_PER_LAYER] = {"ln1.w", "ln1.b", "qkv.w", "qkv.b", "proj.w", "proj.b",
                                                     "ln2.w", "ln2.b", "fc1.w", "fc1.b", "fc2.w", "fc2.b"};

typedef struct tf_model {
    shelf_model base;
    int L, NH, C, F, T;
    uint32_t I, n_types, n_feats;
    int use_types, use_gaps;
    int loss, n_neg;
    shelf_nn_precision prec;
    float dropout;
    shelf_params *p;
    size_t i_wte, i_wfe, i_wpe, i_wtyp, i_wgap, i_lnfw, i_lnfb;
    size_t *li; /* [L * P_PER_LAYER] tensor rows */
    /* item features (owned): item i's are feat_col[feat_off[i] .. feat_off[i+1]) */
    uint64_t *feat_off;
    uint32_t *feat_col;
    uint32_t *feat_raw; /* [n_feats] raw id of each feature row (take_features) */
    /* text vectors of a pretrained encoder (tf-text-model): [I,H], owned,
     * projected into the item representation by the parameter wtxt [H,C] */
    float *tvec;
    uint32_t H;
    size_t i_wtxt;
    /* id dropout (tf-id-dropout, training only): idrop[i] = 1 leaves item i's
     * id embedding out of E for this step, so its features learn to stand
     * for it (what a new item has) */
    float id_dropout;
    uint8_t *idrop; /* [I] or NULL (off) */
    uint64_t *ft_off; /* the transpose, for the backward: feature f's items */
    uint32_t *ft_item;
    /* E[I,C]: item representations: wte itself without features, else an
     * owned buffer; dE, their gradient, is always wte's gradient. */
    float *E, *dE;
    int own_E;
    /* seconds per training phase in the current epoch (the training log) */
    double prof[PROF_N];
} tf_model;

/* ---- small helpers --------------------------------------------------------------- */

static uint32_t gap_bucket(int64_t d)
{
    if (d < 0) d = 0;
    int b = 63 - __builtin_clzll((unsigned long long)d + 1ull); /* floor(log2(1 + d)) */
    return 1u + (uint32_t)(b < NGAP - 2 ? b : NGAP - 2);
}

/* The bucket of event j of a sequence with timestamps ts (NULL: unknown). */
static uint32_t gap_at(const int64_t *ts, size_t j) { return ts && j > 0 ? gap_bucket(ts[j] - ts[j - 1]) : 0; }

static size_t window_start(size_t n, int T)
{
    if (n <= (size_t)T) return 0;
    size_t H = T / 2 > 0 ? (size_t)T / 2 : 1;
    return (n - (size_t)T + H - 1) / H * H;
}

/* ---- parameters ------------------------------------------------------------ */

static int build_params(tf_model *t, shelf_err *err)
{
    shelf_params_free(t->p);
    free(t->li);
    t->li = malloc((size_t)t->L * P_PER_LAYER * sizeof *t->li);
    t->p = shelf_params_new();
    if (!t->li || !t->p) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    const int64_t C = t->C, F = t->F;
    int rc = 0;
    int64_t sh[2] = {t->I, C};
    rc = shelf_params_add(t->p, "wte", 2, sh, 0, &t->i_wte, err);
    if (!rc && t->n_feats) {
        sh[0] = t->n_feats;
        rc = shelf_params_add(t->p, "wfe", 2, sh, 0, &t->i_wfe, err);
    }
    if (!rc && t->tvec) {
        sh[0] = t->H;
        rc = shelf_params_add(t->p, "wtxt", 2, sh, 0, &t->i_wtxt, err);
    }
    sh[0] = t->T;
    if (!rc) rc = shelf_params_add(t->p, "wpe", 2, sh, 0, &t->i_wpe, err);
    if (!rc && t->use_types) {
        sh[0] = t->n_types;
        rc = shelf_params_add(t->p, "wtyp", 2, sh, 0, &t->i_wtyp, err);
    }
    if (!rc && t->use_gaps) {
        sh[0] = NGAP;
        rc = shelf_params_add(t->p, "wgap", 2, sh, 0, &t->i_wgap, err);
    }
    for (int l = 0; l < t->L && !rc; l++) {
        const int64_t shapes[P_PER_LAYER][2] = {{C, 0}, {C, 0},     {C, 3 * C}, {3 * C, 0}, {C, C}, {C, 0},
                                                {C, 0}, {C, 0},     {C, F},     {F, 0},     {F, C}, {C, 0}};
        for (int k = 0; k < P_PER_LAYER && !rc; k++) {
            char name[SHELF_PARAM_NAME_MAX];
            snprintf(name, sizeof name, "h%d.%s", l, layer_names[k]);
            int nd = shapes[k][1] ? 2 : 1;
            rc = shelf_params_add(t->p, name, nd, shapes[k], nd == 1 ? SHELF_PARAM_NO_DECAY : 0,
                                  &t->li[l * P_PER_LAYER + k], err);
        }
    }
    sh[0] = C;
    if (!rc) rc = shelf_params_add(t->p, "lnf.w", 1, sh, SHELF_PARAM_NO_DECAY, &t->i_lnfw, err);
    if (!rc) rc = shelf_params_add(t->p, "lnf.b", 1, sh, SHELF_PARAM_NO_DECAY, &t->i_lnfb, err);
    if (!rc) rc = shelf_params_alloc(t->p, err);
    if (rc) return rc;
    if (t->own_E) free(t->E);
    t->own_E = t->n_feats > 0 || t->tvec != NULL;
    /* E = wte + features, so dL/dwte is dL/dE itself: the gradient of E is
     * accumulated straight into wte's (items_backward adds the features') */
    t->dE = shelf_params_grad(t->p, t->i_wte);
    if (t->own_E) {
        t->E = malloc((size_t)t->I * C * sizeof *t->E);
        if (!t->E) return shelf_err_set(err, SHELF_ENOMEM, "out of memory (item table)");
    } else {
        t->E = shelf_params_data(t->p, t->i_wte);
    }
    return 0;
}

static float *P(const tf_model *t, int l, int k) { return shelf_params_data(t->p, t->li[l * P_PER_LAYER + k]); }
static float *G(const tf_model *t, int l, int k) { return shelf_params_grad(t->p, t->li[l * P_PER_LAYER + k]); }

/* GPT-2 initialisation: normal(0, 0.02), the residual projections scaled by
 * 1/sqrt(2L), LayerNorm gains 1, biases 0. */
static void init_params(tf_model *t, shelf_rng *rng)
{
    for (size_t i = 0; i < t->p->n_tensors; i++) {
        const shelf_param_info *in = &t->p->info[i];
        float *d = shelf_params_data(t->p, i);
        const char *dot = strrchr(in->name, '.');
        if (in->ndim == 1) {
            float v = dot && strcmp(dot, ".w") == 0 ? 1.0f : 0.0f;
            for (size_t j = 0; j < in->numel; j++) d[j] = v;
            continue;
        }
        double std = 0.02;
        if (strstr(in->name, ".proj.w") || strstr(in->name, ".fc2.w")) std /= sqrt(2.0 * t->L);
        for (size_t j = 0; j < in->numel; j++) d[j] = (float)(std * shelf_rng_normal(rng));
    }
}

/* E = wte + mean of each item's feature rows + tvec . wtxt (a no-op with
 * neither features nor text vectors: E is wte). */
static void items_forward(tf_model *t)
{
    if (!t->own_E) return;
    const size_t C = t->C;
    const float *wte = shelf_params_data(t->p, t->i_wte);
    const float *wfe = t->n_feats ? shelf_params_data(t->p, t->i_wfe) : NULL;
#pragma omp parallel for schedule(static) if (t->I > 4096)
    for (uint32_t i = 0; i < t->I; i++) {
        float *e = t->E + (size_t)i * C;
        if (t->idrop && t->idrop[i]) memset(e, 0, C * sizeof *e);
        else memcpy(e, wte + (size_t)i * C, C * sizeof *e);
        if (!wfe) continue;
        uint64_t a = t->feat_off[i], b = t->feat_off[i + 1];
        if (a == b) continue;
        const float w = 1.0f / (float)(b - a);
        for (uint64_t k = a; k < b; k++) {
            const float *f = wfe + (size_t)t->feat_col[k] * C;
            for (size_t c = 0; c < C; c++) e[c] += w * f[c];
        }
    }
    if (t->tvec)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)t->I, (int)C, (int)t->H, 1.0f, t->tvec,
                    (int)t->H, shelf_params_data(t->p, t->i_wtxt), (int)C, 1.0f, t->E, (int)C);
}

/* dwfe[f] += dE[i] / n_i over the items i with feature f (dE is wte's
 * gradient, already complete): parallel over features through the transposed
 * lists, each row summed in a fixed order, so the result does not depend on
 * the threads. */
static void items_backward(tf_model *t)
{
    if (!t->own_E) return;
    const size_t C = t->C;
    if (t->tvec) /* dwtxt += tvec^T . dE */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)t->H, (int)C, (int)t->I, 1.0f, t->tvec, (int)t->H,
                    t->dE, (int)C, 1.0f, shelf_params_grad(t->p, t->i_wtxt), (int)C);
    float *dwfe = t->n_feats ? shelf_params_grad(t->p, t->i_wfe) : NULL;
#pragma omp parallel for schedule(dynamic, 16) if (t->n_feats > 64)
    for (uint32_t f = 0; f < (dwfe ? t->n_feats : 0); f++) {
        float *g = dwfe + (size_t)f * C;
        for (uint64_t k = t->ft_off[f]; k < t->ft_off[f + 1]; k++) {
            const uint32_t i = t->ft_item[k];
            const float w = 1.0f / (float)(t->feat_off[i + 1] - t->feat_off[i]);
            const float *d = t->dE + (size_t)i * C;
            for (size_t c = 0; c < C; c++) g[c] += w * d[c];
        }
    }
    if (t->idrop) /* a left-out id embedding takes no gradient */
        for (uint32_t i = 0; i < t->I; i++)
            if (t->idrop[i]) memset(t->dE + (size_t)i * C, 0, C * sizeof *t->dE);
}

/* ft_off/ft_item from feat_off/feat_col (items ascending per feature). */
static int transpose_features(tf_model *t)
{
    const uint64_t nnz = t->feat_off[t->I];
    t->ft_off = calloc((size_t)t->n_feats + 1, sizeof *t->ft_off);
    t->ft_item = malloc((nnz ? nnz : 1) * sizeof *t->ft_item);
    if (!t->ft_off || !t->ft_item) return SHELF_ENOMEM;
    for (uint64_t k = 0; k < nnz; k++) t->ft_off[t->feat_col[k] + 1]++;
    for (uint32_t f = 0; f < t->n_feats; f++) t->ft_off[f + 1] += t->ft_off[f];
    uint64_t *fill = malloc(((size_t)t->n_feats + 1) * sizeof *fill);
    if (!fill) return SHELF_ENOMEM;
    memcpy(fill, t->ft_off, ((size_t)t->n_feats + 1) * sizeof *fill);
    for (uint32_t i = 0; i < t->I; i++)
        for (uint64_t k = t->feat_off[i]; k < t->feat_off[i + 1]; k++) t->ft_item[fill[t->feat_col[k]]++] = i;
    free(fill);
    return 0;
}

/* ---- activations ------------------------------------------------------------- */

typedef struct tf_layer_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* [N,C], [N], [N] */
    float *qkv;                       /* [N,3C] */
    float *atty;                      /* [N,C] */
    float *att;                       /* [B,NH,T,T] */
    float *proj;                      /* [N,C] after dropout */
    uint8_t *mask1;                   /* [N*C] */
    float *res2;                      /* [N,C] x + attention branch */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc1, *gelu; /* [N,F] */
    float *fc2;        /* [N,C] after dropout */
    uint8_t *mask2;
} tf_layer_acts;

typedef struct tf_acts {
    int B; /* capacity */
    float *emb;      /* [N,C] input embeddings, before dropout */
    uint8_t *mask0;  /* [N*C] */
    float **x;       /* [L+1] residual streams [N,C]; x[0] = dropped emb */
    tf_layer_acts *la;
    float *lnf, *lnf_mean, *lnf_rstd; /* [N,C], [N], [N] */
    /* backward work space */
    float *dx, *dc1, *dc2, *dqkv, *df1, *df2, *scratch;
    float *hc; /* [N,C] gathered hidden states of the rows with a target */
    float *block; /* the one allocation all of the above point into */
    uint8_t *bytes;
} tf_acts;

static void acts_free(tf_acts *a)
{
    if (!a) return;
    free(a->block);
    free(a->bytes);
    free(a->x);
    free(a->la);
    free(a);
}

/* Activations for B sequences; backward work space only when train. */
static tf_acts *acts_new(const tf_model *t, int B, int train)
{
    const size_t N = (size_t)B * t->T, C = t->C, F = t->F, L = t->L;
    const size_t ATT = (size_t)B * t->NH * t->T * t->T;
    size_t per_layer = 3 * N * C + 2 * N + 3 * N * C + ATT + 2 * N * C + 2 * N + 2 * N * F + N * C;
    size_t total = N * C + (L + 1) * N * C + L * per_layer + N * C + 2 * N;
    if (train) total += 4 * N * C + 3 * N * C + 2 * N * F + ATT;
    size_t nbytes = N * C * (1 + 2 * L);
    tf_acts *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->B = B;
    a->block = malloc(total * sizeof(float));
    a->bytes = malloc(nbytes);
    a->x = malloc((L + 1) * sizeof *a->x);
    a->la = calloc(L, sizeof *a->la);
    if (!a->block || !a->bytes || !a->x || !a->la) {
        acts_free(a);
        return NULL;
    }
    float *q = a->block;
    uint8_t *bq = a->bytes;
#define TAKE(n) (q += (n), q - (n))
#define TAKEB(n) (bq += (n), bq - (n))
    a->emb = TAKE(N * C);
    a->mask0 = TAKEB(N * C);
    for (size_t l = 0; l <= L; l++) a->x[l] = TAKE(N * C);
    for (size_t l = 0; l < L; l++) {
        tf_layer_acts *la = &a->la[l];
        la->ln1 = TAKE(N * C);
        la->ln1_mean = TAKE(N);
        la->ln1_rstd = TAKE(N);
        la->qkv = TAKE(3 * N * C);
        la->atty = TAKE(N * C);
        la->att = TAKE(ATT);
        la->proj = TAKE(N * C);
        la->mask1 = TAKEB(N * C);
        la->res2 = TAKE(N * C);
        la->ln2 = TAKE(N * C);
        la->ln2_mean = TAKE(N);
        la->ln2_rstd = TAKE(N);
        la->fc1 = TAKE(N * F);
        la->gelu = TAKE(N * F);
        la->fc2 = TAKE(N * C);
        la->mask2 = TAKEB(N * C);
    }
    a->lnf = TAKE(N * C);
    a->lnf_mean = TAKE(N);
    a->lnf_rstd = TAKE(N);
    if (train) {
        a->dx = TAKE(N * C);
        a->dc1 = TAKE(N * C);
        a->dc2 = TAKE(N * C);
        a->dqkv = TAKE(3 * N * C);
        a->df1 = TAKE(N * F);
        a->df2 = TAKE(N * F);
        a->scratch = TAKE(ATT);
        a->hc = TAKE(N * C);
    }
#undef TAKE
#undef TAKEB
    SHELF_ASSERT((size_t)(q - a->block) <= total);
    return a;
}

/* ---- batches ---------------------------------------------------------------------- */

/* A batch of B rows of T positions (T: the longest row's, <= the model's).
 * Rows are LEFT padded: pad_len[r] padding positions, then the window's
 * items oldest first, so the newest item is always in column T-1. Per
 * position: item idx, type typ, gap bucket gap, position pos (0 at the
 * oldest item in view) and target tgt; all SHELF_NN_PAD at padding (typ also
 * where the type is unknown or types are off). */
typedef struct tf_batch {
    int B, T;
    uint32_t *idx, *typ, *gap, *pos, *tgt;
    int *pad_len;
    uint32_t *row, *tc; /* [N] the rows with a target and their targets */
} tf_batch;

/* Row r from events [lo, hi) of a sequence (items, types or NULL, ts or
 * NULL); targets items[lo+1 .. hi] when with_tgt (then hi < its length).
 * Set b->T >= hi - lo first. */
static void batch_row(const tf_model *t, tf_batch *b, int r, const uint32_t *items, const uint16_t *types,
                      const int64_t *ts, size_t lo, size_t hi, int with_tgt)
{
    const int T = b->T, n = (int)(hi - lo), pad = T - n;
    SHELF_ASSERT(n >= 0 && n <= T);
    b->pad_len[r] = pad;
    for (int k = 0; k < T; k++) {
        size_t o = (size_t)r * T + k;
        if (k < pad) {
            b->idx[o] = b->typ[o] = b->gap[o] = b->pos[o] = b->tgt[o] = SHELF_NN_PAD;
            continue;
        }
        size_t j = lo + (size_t)(k - pad);
        b->idx[o] = items[j];
        b->typ[o] = t->use_types && types && types[j] < t->n_types ? types[j] : SHELF_NN_PAD;
        b->gap[o] = t->use_gaps ? gap_at(ts, j) : SHELF_NN_PAD;
        b->pos[o] = (uint32_t)(k - pad);
        b->tgt[o] = with_tgt ? items[j + 1] : SHELF_NN_PAD;
    }
}

static int batch_alloc(tf_batch *b, int B, int T)
{
    size_t N = (size_t)B * T;
    memset(b, 0, sizeof *b);
    b->B = B;
    b->T = T;
    b->idx = malloc(N * sizeof *b->idx);
    b->typ = malloc(N * sizeof *b->typ);
    b->gap = malloc(N * sizeof *b->gap);
    b->pos = malloc(N * sizeof *b->pos);
    b->tgt = malloc(N * sizeof *b->tgt);
    b->pad_len = malloc((size_t)B * sizeof *b->pad_len);
    b->row = malloc(N * sizeof *b->row);
    b->tc = malloc(N * sizeof *b->tc);
    return b->idx && b->typ && b->gap && b->pos && b->tgt && b->pad_len && b->row && b->tc ? 0 : SHELF_ENOMEM;
}

static void batch_free(tf_batch *b)
{
    free(b->idx);
    free(b->typ);
    free(b->gap);
    free(b->pos);
    free(b->tgt);
    free(b->pad_len);
    free(b->row);
    free(b->tc);
}

/* ---- forward / backward --------------------------------------------------------- */

/* out[n] = E[idx] + wpe[pos] + wtyp[typ] + wgap[gap] (zeros at padding) */
static void embed_forward(const tf_model *t, float *out, const tf_batch *b, size_t N)
{
    const size_t C = t->C;
    const float *wpe = shelf_params_data(t->p, t->i_wpe);
    const float *wtyp = t->use_types ? shelf_params_data(t->p, t->i_wtyp) : NULL;
    const float *wgap = t->use_gaps ? shelf_params_data(t->p, t->i_wgap) : NULL;
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (size_t n = 0; n < N; n++) {
        float *o = out + n * C;
        if (b->idx[n] == SHELF_NN_PAD) {
            memset(o, 0, C * sizeof *o);
            continue;
        }
        const float *e = t->E + (size_t)b->idx[n] * C, *p = wpe + (size_t)b->pos[n] * C;
        for (size_t c = 0; c < C; c++) o[c] = e[c] + p[c];
        if (wtyp && b->typ[n] != SHELF_NN_PAD)
            for (size_t c = 0; c < C; c++) o[c] += wtyp[(size_t)b->typ[n] * C + c];
        if (wgap && b->gap[n] != SHELF_NN_PAD)
            for (size_t c = 0; c < C; c++) o[c] += wgap[(size_t)b->gap[n] * C + c];
    }
}

static void embed_backward(tf_model *t, const float *dout, const tf_batch *b, size_t N)
{
    shelf_nn_embedding_backward(t->dE, dout, b->idx, N, t->C);
    shelf_nn_embedding_backward(shelf_params_grad(t->p, t->i_wpe), dout, b->pos, N, t->C);
    if (t->use_types) shelf_nn_embedding_backward(shelf_params_grad(t->p, t->i_wtyp), dout, b->typ, N, t->C);
    if (t->use_gaps) shelf_nn_embedding_backward(shelf_params_grad(t->p, t->i_wgap), dout, b->gap, N, t->C);
}

/* Runs the blocks and the final LayerNorm over a batch: a->lnf [N,C]. With
 * rng == NULL dropout is off (inference). Needs E (items_forward). */
static void tf_forward(const tf_model *t, tf_acts *a, const tf_batch *b, shelf_rng *rng)
{
    const int B = b->B, T = b->T, C = t->C, F = t->F, NH = t->NH;
    const size_t N = (size_t)B * T;
    const float p = rng ? t->dropout : 0.0f;
    embed_forward(t, a->emb, b, N);
    shelf_nn_dropout_forward(a->x[0], a->mask0, a->emb, p, rng, N * C);
    for (int l = 0; l < t->L; l++) {
        tf_layer_acts *la = &a->la[l];
        const float *x = a->x[l];
        shelf_nn_layernorm_forward(la->ln1, la->ln1_mean, la->ln1_rstd, x, P(t, l, P_LN1W), P(t, l, P_LN1B), N, C);
        shelf_nn_linear_forward(la->qkv, la->ln1, P(t, l, P_QKVW), P(t, l, P_QKVB), N, C, 3 * (size_t)C);
        shelf_attention_forward(la->atty, la->att, la->qkv, b->pad_len, B, T, C, NH);
        shelf_nn_linear_forward(la->proj, la->atty, P(t, l, P_PROJW), P(t, l, P_PROJB), N, C, C);
        shelf_nn_dropout_forward(la->proj, la->mask1, la->proj, p, rng, N * C);
        shelf_nn_residual_forward(la->res2, x, la->proj, N * C);
        shelf_nn_layernorm_forward(la->ln2, la->ln2_mean, la->ln2_rstd, la->res2, P(t, l, P_LN2W),
                                   P(t, l, P_LN2B), N, C);
        shelf_nn_linear_forward(la->fc1, la->ln2, P(t, l, P_FC1W), P(t, l, P_FC1B), N, C, F);
        shelf_nn_gelu_forward(la->gelu, la->fc1, N * F);
        shelf_nn_linear_forward(la->fc2, la->gelu, P(t, l, P_FC2W), P(t, l, P_FC2B), N, F, C);
        shelf_nn_dropout_forward(la->fc2, la->mask2, la->fc2, p, rng, N * C);
        shelf_nn_residual_forward(a->x[l + 1], la->res2, la->fc2, N * C);
    }
    shelf_nn_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, a->x[t->L], shelf_params_data(t->p, t->i_lnfw),
                               shelf_params_data(t->p, t->i_lnfb), N, C);
}

/* Work space of the losses, sized for a batch of N rows. */
typedef struct tf_loss_ws {
    shelf_nn_cehead_ws *head; /* ce */
    /* tf-exclude-cold (ce): the training softmax runs over the items with
     * training events only: warm[Iw] their ids, wmap[I] item -> warm index,
     * Ew/dEw [Iw,C] their rows and gradient, tw [N] remapped targets */
    uint32_t *warm, *wmap, *tw, Iw;
    float *Ew, *dEw;
    float *logits;            /* sampled/bce: [N, 1+S] */
    float *dlg;               /* bce: [N, 1+S] their gradient */
    float *losses, *lse;      /* [N] */
    uint32_t *neg;            /* sampled: [S] shared; bce: [N*K] */
    float *neg_q, *pos_q;     /* sampled: [S], [N] */
    float *eneg, *deneg;      /* sampled: [S,C] gathered negatives and their gradient */
    double *cdf;              /* sampled: [I] cumulative popularity^0.75 */
    float *q;                 /* sampled: [I] sampling probabilities */
} tf_loss_ws;

static void loss_ws_free(tf_loss_ws *w)
{
    shelf_nn_cehead_ws_free(w->head);
    SHELF__FREE_ALL(w->warm, w->wmap, w->tw, w->Ew, w->dEw, w->logits, w->dlg, w->losses, w->lse, w->neg,
                    w->neg_q, w->pos_q, w->eneg, w->deneg, w->cdf, w->q);
    memset(w, 0, sizeof *w);
}

/* counts[I] (training events per item) give the sampled loss its
 * distribution; NULL: uniform. */
static int loss_ws_init(tf_loss_ws *w, const tf_model *t, size_t N, const float *counts, int exclude_cold)
{
    memset(w, 0, sizeof *w);
    const size_t S = t->n_neg, C = t->C, I = t->I;
    w->losses = malloc(N * sizeof *w->losses);
    w->lse = malloc(N * sizeof *w->lse);
    int ok = w->losses && w->lse;
    if (t->loss == LOSS_CE) {
        uint32_t Iw = I;
        if (ok && exclude_cold && counts) {
            w->warm = malloc(I * sizeof *w->warm);
            w->wmap = malloc(I * sizeof *w->wmap);
            ok = w->warm && w->wmap;
            Iw = 0;
            for (size_t i = 0; ok && i < I; i++) {
                w->wmap[i] = counts[i] > 0 ? Iw : UINT32_MAX;
                if (counts[i] > 0) w->warm[Iw++] = (uint32_t)i;
            }
            w->Iw = Iw;
            w->tw = malloc(N * sizeof *w->tw);
            w->Ew = malloc(((size_t)Iw ? Iw : 1) * C * sizeof *w->Ew);
            w->dEw = malloc(((size_t)Iw ? Iw : 1) * C * sizeof *w->dEw);
            ok = ok && w->tw && w->Ew && w->dEw && Iw > 0;
        }
        ok = ok && (w->head = shelf_nn_cehead_ws_new(N, Iw, C)) != NULL;
    } else if (t->loss == LOSS_SAMPLED) {
        w->logits = malloc(N * (1 + S) * sizeof *w->logits);
        w->neg = malloc(S * sizeof *w->neg);
        w->neg_q = malloc(S * sizeof *w->neg_q);
        w->pos_q = malloc(N * sizeof *w->pos_q);
        w->eneg = malloc(S * C * sizeof *w->eneg);
        w->deneg = malloc(S * C * sizeof *w->deneg);
        w->cdf = malloc(I * sizeof *w->cdf);
        w->q = malloc(I * sizeof *w->q);
        ok = ok && w->logits && w->neg && w->neg_q && w->pos_q && w->eneg && w->deneg && w->cdf && w->q;
        if (ok) {
            double z = 0;
            for (size_t i = 0; i < I; i++) z += w->cdf[i] = counts ? pow((double)counts[i] + 1.0, 0.75) : 1.0;
            double acc = 0;
            for (size_t i = 0; i < I; i++) {
                w->q[i] = (float)(w->cdf[i] / z);
                acc += w->cdf[i] / z;
                w->cdf[i] = acc;
            }
            w->cdf[I - 1] = 1.0;
        }
    } else {
        w->logits = malloc(N * (1 + S) * sizeof *w->logits);
        w->dlg = malloc(N * (1 + S) * sizeof *w->dlg);
        w->neg = malloc(N * S * sizeof *w->neg);
        ok = ok && w->logits && w->dlg && w->neg;
    }
    if (!ok) loss_ws_free(w);
    return ok ? 0 : SHELF_ENOMEM;
}

static uint32_t draw_cdf(const double *cdf, uint32_t I, shelf_rng *rng)
{
    double u = shelf_rng_uniform(rng);
    uint32_t lo = 0, hi = I - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* The loss of hc[Nv,C] against targets tc[Nv] (the rows with a target).
 * With backward: dh[Nv,C] OVERWRITTEN with the gradient of the mean loss, dE
 * accumulated. rng draws the negatives of the sampled losses. */
static float head_loss(tf_model *t, tf_loss_ws *w, const float *hc, const uint32_t *tc, size_t Nv, float *dh,
                       shelf_rng *rng)
{
    const size_t C = t->C, S = t->n_neg;
    const uint32_t I = t->I;
    if (t->loss == LOSS_CE && w->warm) { /* over the warm items only: gather, score, scatter back */
#pragma omp parallel for schedule(static) if (w->Iw > 4096)
        for (uint32_t j = 0; j < w->Iw; j++) memcpy(w->Ew + (size_t)j * C, t->E + (size_t)w->warm[j] * C, C * sizeof(float));
        for (size_t v = 0; v < Nv; v++) w->tw[v] = w->wmap[tc[v]]; /* targets are warm by definition */
        if (dh) memset(w->dEw, 0, (size_t)w->Iw * C * sizeof *w->dEw);
        float loss = shelf_nn_cehead(w->losses, dh, dh ? w->dEw : NULL, hc, w->Ew, w->tw, 1.0f, Nv, w->Iw, C, t->prec,
                                     w->head);
        if (dh)
#pragma omp parallel for schedule(static) if (w->Iw > 4096)
            for (uint32_t j = 0; j < w->Iw; j++) {
                float *d = t->dE + (size_t)w->warm[j] * C;
                const float *g = w->dEw + (size_t)j * C;
                for (size_t c = 0; c < C; c++) d[c] += g[c];
            }
        return loss;
    }
    if (t->loss == LOSS_CE)
        return shelf_nn_cehead(w->losses, dh, dh ? t->dE : NULL, hc, t->E, tc, 1.0f, Nv, I, C, t->prec, w->head);
    const size_t W = 1 + S;
    float *lg = w->logits;
    if (t->loss == LOSS_SAMPLED) {
        for (size_t j = 0; j < S; j++) {
            w->neg[j] = draw_cdf(w->cdf, I, rng);
            w->neg_q[j] = w->q[w->neg[j]];
            memcpy(w->eneg + j * C, t->E + (size_t)w->neg[j] * C, C * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Nv, (int)S, (int)C, 1.0f, hc, (int)C, w->eneg,
                    (int)C, 0.0f, lg + 1, (int)W);
        for (size_t v = 0; v < Nv; v++) w->pos_q[v] = w->q[tc[v]];
    } else {
        for (size_t k = 0; k < Nv * S; k++) w->neg[k] = shelf_rng_below(rng, I);
        for (size_t v = 0; v < Nv; v++)
            for (size_t k = 0; k < S; k++)
                lg[v * W + 1 + k] = cblas_sdot((int)C, hc + v * C, 1, t->E + (size_t)w->neg[v * S + k] * C, 1);
    }
    for (size_t v = 0; v < Nv; v++) lg[v * W] = cblas_sdot((int)C, hc + v * C, 1, t->E + (size_t)tc[v] * C, 1);
    float loss;
    if (t->loss == LOSS_SAMPLED) {
        loss = shelf_nn_sampled_softmax_forward(w->losses, w->lse, lg, tc, w->neg, w->neg_q, 0, w->pos_q, Nv, S);
        if (!dh) return loss;
        shelf_nn_sampled_softmax_backward(lg, lg, w->lse, tc, w->neg, w->neg_q, 0, w->pos_q, 1.0f, Nv, S);
        /* dh = dl[:,1:] . Eneg + dl[:,0] e(t);  dEneg = dl[:,1:]^T . hc, scattered */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Nv, (int)C, (int)S, 1.0f, lg + 1, (int)W,
                    w->eneg, (int)C, 0.0f, dh, (int)C);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)S, (int)C, (int)Nv, 1.0f, lg + 1, (int)W, hc,
                    (int)C, 0.0f, w->deneg, (int)C);
        for (size_t j = 0; j < S; j++)
            cblas_saxpy((int)C, 1.0f, w->deneg + j * C, 1, t->dE + (size_t)w->neg[j] * C, 1);
    } else {
        loss = shelf_nn_bce_forward(w->losses, lg, tc, w->neg, S, Nv, S);
        if (!dh) return loss;
        memset(dh, 0, Nv * C * sizeof *dh);
        memset(w->dlg, 0, Nv * W * sizeof *w->dlg);
        shelf_nn_bce_backward(w->dlg, lg, tc, w->neg, S, 1.0f, Nv, S);
        lg = w->dlg;
        for (size_t v = 0; v < Nv; v++)
            for (size_t k = 0; k < S; k++) {
                float g = lg[v * W + 1 + k];
                if (g == 0.0f) continue;
                size_t e = (size_t)w->neg[v * S + k] * C;
                cblas_saxpy((int)C, g, t->E + e, 1, dh + v * C, 1);
                cblas_saxpy((int)C, g, hc + v * C, 1, t->dE + e, 1);
            }
    }
    for (size_t v = 0; v < Nv; v++) {
        float g = lg[v * W];
        cblas_saxpy((int)C, g, t->E + (size_t)tc[v] * C, 1, dh + v * C, 1);
        cblas_saxpy((int)C, g, hc + v * C, 1, t->dE + (size_t)tc[v] * C, 1);
    }
    return loss;
}

/* Loss of a batch after tf_forward: the rows with a target are gathered into
 * hc[Nv,C] (most positions of short-history data are padding) and scored by
 * the head. With backward, the parameter gradients ACCUMULATE (zero them
 * first); the features' share of dE is added by the caller (items_backward). */
static float tf_loss_backward(tf_model *t, tf_acts *a, const tf_batch *b, tf_loss_ws *w, shelf_rng *rng,
                              int backward)
{
    const int B = b->B, T = b->T, C = t->C, F = t->F, NH = t->NH;
    const size_t N = (size_t)B * T;
    const float p = t->dropout;
    size_t Nv = 0;
    for (size_t n = 0; n < N; n++) {
        if (b->tgt[n] == SHELF_NN_PAD) continue;
        memcpy(a->hc + Nv * C, a->lnf + n * C, (size_t)C * sizeof(float));
        b->row[Nv] = (uint32_t)n;
        b->tc[Nv++] = b->tgt[n];
    }
    if (Nv == 0) return 0.0f;
    double h0 = shelf_now();
    float loss = head_loss(t, w, a->hc, b->tc, Nv, backward ? a->dc2 : NULL, rng);
    const double dh0 = shelf_now() - h0;
    t->prof[PROF_HEAD] += dh0;
    t->prof[PROF_BACKWARD] -= dh0;
    if (!backward) return loss;
    memset(a->dc1, 0, N * C * sizeof(float));
    for (size_t v = 0; v < Nv; v++) memcpy(a->dc1 + (size_t)b->row[v] * C, a->dc2 + v * C, (size_t)C * sizeof(float));
    memset(a->dx, 0, N * C * sizeof(float));
    shelf_nn_layernorm_backward(a->dx, shelf_params_grad(t->p, t->i_lnfw), shelf_params_grad(t->p, t->i_lnfb),
                                a->dc1, a->x[t->L], shelf_params_data(t->p, t->i_lnfw), a->lnf_mean, a->lnf_rstd, N,
                                C);
    for (int l = t->L - 1; l >= 0; l--) {
        tf_layer_acts *la = &a->la[l];
        /* feed-forward branch: dx is the gradient of x[l+1] = res2 + fc2 */
        memset(a->dc1, 0, N * C * sizeof(float));
        shelf_nn_dropout_backward(a->dc1, a->dx, la->mask2, p, N * C);
        memset(a->df2, 0, N * F * sizeof(float));
        shelf_nn_linear_backward(a->df2, G(t, l, P_FC2W), G(t, l, P_FC2B), a->dc1, la->gelu, P(t, l, P_FC2W), N, F,
                                 C);
        memset(a->df1, 0, N * F * sizeof(float));
        shelf_nn_gelu_backward(a->df1, la->fc1, a->df2, N * F);
        memset(a->dc2, 0, N * C * sizeof(float));
        shelf_nn_linear_backward(a->dc2, G(t, l, P_FC1W), G(t, l, P_FC1B), a->df1, la->ln2, P(t, l, P_FC1W), N, C,
                                 F);
        shelf_nn_layernorm_backward(a->dx, G(t, l, P_LN2W), G(t, l, P_LN2B), a->dc2, la->res2, P(t, l, P_LN2W),
                                    la->ln2_mean, la->ln2_rstd, N, C);
        /* attention branch: dx is now the gradient of res2 = x[l] + proj */
        memset(a->dc1, 0, N * C * sizeof(float));
        shelf_nn_dropout_backward(a->dc1, a->dx, la->mask1, p, N * C);
        memset(a->dc2, 0, N * C * sizeof(float));
        shelf_nn_linear_backward(a->dc2, G(t, l, P_PROJW), G(t, l, P_PROJB), a->dc1, la->atty, P(t, l, P_PROJW), N,
                                 C, C);
        memset(a->dqkv, 0, 3 * N * C * sizeof(float));
        shelf_attention_backward(a->dqkv, a->scratch, a->dc2, la->qkv, la->att, b->pad_len, B, T, C, NH);
        memset(a->dc1, 0, N * C * sizeof(float));
        shelf_nn_linear_backward(a->dc1, G(t, l, P_QKVW), G(t, l, P_QKVB), a->dqkv, la->ln1, P(t, l, P_QKVW), N, C,
                                 3 * (size_t)C);
        shelf_nn_layernorm_backward(a->dx, G(t, l, P_LN1W), G(t, l, P_LN1B), a->dc1, a->x[l], P(t, l, P_LN1W),
                                    la->ln1_mean, la->ln1_rstd, N, C);
    }
    memset(a->dc1, 0, N * C * sizeof(float));
    shelf_nn_dropout_backward(a->dc1, a->dx, a->mask0, p, N * C);
    embed_backward(t, a->dc1, b, N);
    return loss;
}

/* One training step's gradient: zero, E, forward, loss, backward, features. */
static float tf_step_grad(tf_model *t, tf_acts *a, const tf_batch *b, tf_loss_ws *w, shelf_rng *drop,
                          shelf_rng *neg, int backward)
{
    double t0 = shelf_now();
    if (backward) shelf_params_zero_grad(t->p);
    if (t->idrop) /* drawn serially: the same for any thread count */
        for (uint32_t i = 0; i < t->I; i++)
            t->idrop[i] = backward && t->feat_off && t->feat_off[i + 1] > t->feat_off[i] &&
                          shelf_rng_uniform(neg) < t->id_dropout;
    items_forward(t);
    double t1 = shelf_now();
    tf_forward(t, a, b, drop);
    double t2 = shelf_now();
    float loss = tf_loss_backward(t, a, b, w, neg, backward);
    double t3 = shelf_now();
    if (backward) items_backward(t);
    double t4 = shelf_now();
    t->prof[PROF_ITEMS] += (t1 - t0) + (t4 - t3);
    t->prof[PROF_FORWARD] += t2 - t1;
    t->prof[PROF_BACKWARD] += t3 - t2; /* less the head, which tf_loss_backward books apart */
    return loss;
}

/* ---- options -------------------------------------------------------------------- */

static void tf_free_arrays(tf_model *t)
{
    shelf_params_free(t->p);
    t->p = NULL;
    free(t->li);
    t->li = NULL;
    if (t->own_E) free(t->E);
    t->E = t->dE = NULL;
    t->own_E = 0;
    free(t->feat_off);
    free(t->feat_col);
    free(t->ft_off);
    free(t->ft_item);
    free(t->feat_raw);
    t->feat_raw = NULL;
    free(t->tvec);
    t->tvec = NULL;
    t->H = 0;
    t->feat_off = NULL;
    t->feat_col = NULL;
    t->ft_off = NULL;
    t->ft_item = NULL;
    t->n_feats = 0;
}

/* Hyperparameters -> t (without allocating). */
static int read_opts(tf_model *t, const shelf_opts *o, uint32_t I, uint32_t n_types)
{
    t->L = (int)shelf_config_int(o, "tf-layers");
    t->NH = (int)shelf_config_int(o, "tf-heads");
    t->C = (int)shelf_config_int(o, "tf-dim");
    t->F = (int)shelf_config_int(o, "tf-ffn");
    if (t->F == 0) t->F = 4 * t->C;
    t->T = (int)shelf_config_int(o, "tf-maxlen");
    t->dropout = (float)shelf_config_double(o, "tf-dropout");
    t->I = I;
    t->n_types = n_types;
    t->use_types = shelf_config_bool(o, "tf-types") && n_types > 0;
    t->use_gaps = shelf_config_bool(o, "tf-gaps");
    const char *loss = shelf_config_str(o, "tf-loss");
    t->loss = strcmp(loss, "sampled") == 0 ? LOSS_SAMPLED : strcmp(loss, "bce") == 0 ? LOSS_BCE : LOSS_CE;
    t->n_neg = (int)shelf_config_int(o, "tf-negatives");
    if (t->n_neg == 0) t->n_neg = t->loss == LOSS_BCE ? 1 : 256;
    t->prec = strcmp(shelf_config_str(o, "tf-precision"), "bf16") == 0 ? SHELF_NN_BF16 : SHELF_NN_F32;
    if (t->C % t->NH)
        return shelf__model_fail(&t->base, SHELF_EINVAL, "tf-dim %d is not a multiple of tf-heads %d", t->C, t->NH);
    return 0;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

/* Item feature lists from the snapshot: attribute ids, category, brand, price
 * bucket and (text_buckets > 0) hashed words of the item's text, each range
 * offset after the previous ("raw" ids); each item's list sorted and
 * deduplicated, then the raw ids in use renumbered densely 0..n_feats-1, so
 * the feature table has a row per feature some item has (a million text
 * buckets cost nothing when the text has a few thousand words). feat_raw
 * keeps the raw id of each row (saved in the bundle). */
static int take_features(tf_model *t, const shelf_snapshot *s, uint32_t text_buckets, uint32_t text_max)
{
    const uint32_t I = s->n_items, A = s->n_attrs, NC = s->n_categories, NB = s->n_brands;
    const uint32_t base_text = A + NC + NB + s->n_price_buckets;
    if (text_buckets && (uint64_t)base_text + text_buckets > UINT32_MAX) text_buckets = UINT32_MAX - base_text;
    t->feat_off = malloc(((size_t)I + 1) * sizeof *t->feat_off);
    size_t cap = s->attr_off[I] + (3 + (size_t)(text_buckets ? text_max : 0)) * (size_t)I;
    t->feat_col = malloc((cap ? cap : 1) * sizeof *t->feat_col);
    uint32_t *words = text_max ? malloc((size_t)text_max * sizeof *words) : NULL;
    if (!t->feat_off || !t->feat_col || (text_max && !words)) {
        free(words);
        return SHELF_ENOMEM;
    }
    uint64_t k = 0;
    for (uint32_t i = 0; i < I; i++) {
        const uint64_t k0 = k;
        t->feat_off[i] = k;
        for (uint64_t a = s->attr_off[i]; a < s->attr_off[i + 1]; a++) t->feat_col[k++] = s->attr_col[a];
        if (s->item_category[i] != SHELF_NONE) t->feat_col[k++] = A + s->item_category[i];
        if (s->item_brand[i] != SHELF_NONE) t->feat_col[k++] = A + NC + s->item_brand[i];
        if (s->item_price_bucket[i]) t->feat_col[k++] = A + NC + NB + s->item_price_bucket[i] - 1u;
        if (text_buckets && text_max) {
            const char *txt = s->item_text + s->item_text_off[i];
            size_t n = shelf_text_words(txt, strlen(txt), text_buckets, words, text_max);
            if (n > text_max) n = text_max;
            for (size_t w = 0; w < n; w++) t->feat_col[k++] = base_text + words[w];
        }
        qsort(t->feat_col + k0, k - k0, sizeof *t->feat_col, cmp_u32);
        uint64_t u = k0;
        for (uint64_t r = k0; r < k; r++)
            if (r == k0 || t->feat_col[r] != t->feat_col[u - 1]) t->feat_col[u++] = t->feat_col[r];
        k = u;
    }
    t->feat_off[I] = k;
    free(words);
    /* renumber the raw ids in use */
    uint32_t *raw = malloc((k ? k : 1) * sizeof *raw);
    if (!raw) return SHELF_ENOMEM;
    memcpy(raw, t->feat_col, k * sizeof *raw);
    qsort(raw, k, sizeof *raw, cmp_u32);
    size_t nf = 0;
    for (uint64_t r = 0; r < k; r++)
        if (r == 0 || raw[r] != raw[nf - 1]) raw[nf++] = raw[r];
    for (uint64_t r = 0; r < k; r++) {
        const uint32_t *hit = bsearch(&t->feat_col[r], raw, nf, sizeof *raw, cmp_u32);
        t->feat_col[r] = (uint32_t)(hit - raw);
    }
    t->feat_raw = raw;
    t->n_feats = (uint32_t)nf;
    return t->n_feats ? transpose_features(t) : 0;
}

/* tvec[I,H]: each item's text through a pretrained BERT-style encoder in
 * directory dir (vocab.txt, model.safetensors, config.json; shelf/text.h),
 * mean-pooled; items without text get zeros. */
static int take_text_vectors(tf_model *t, const shelf_snapshot *s, const char *dir)
{
    char path[4096];
    shelf_err err = {0};
    shelf_wordpiece *wp = NULL;
    shelf_bert *bert = NULL;
    const shelf_wordpiece_opts wo = SHELF_WORDPIECE_DEFAULTS;
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    int rc = shelf_wordpiece_load(path, &wo, &wp, &err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = shelf_bert_load(path, 0, &bert, &err);
    }
    const uint32_t cls = wp ? shelf_wordpiece_special(wp, "[CLS]") : UINT32_MAX;
    const uint32_t sep = wp ? shelf_wordpiece_special(wp, "[SEP]") : UINT32_MAX;
    if (!rc && (cls == UINT32_MAX || sep == UINT32_MAX))
        rc = shelf_err_set(&err, SHELF_EFORMAT, "%s/vocab.txt has no [CLS] or [SEP]", dir);
    const size_t P = bert ? shelf_bert_max_len(bert) : 0;
    if (!rc && P < 3) rc = shelf_err_set(&err, SHELF_EFORMAT, "%s: the encoder takes fewer than 3 positions", dir);
    if (!rc) {
        t->H = (uint32_t)shelf_bert_dim(bert);
        t->tvec = calloc((size_t)t->I * t->H, sizeof *t->tvec);
        if (!t->tvec) rc = shelf_err_set(&err, SHELF_ENOMEM, "out of memory (%u text vectors)", t->I);
    }
    int bad = 0;
    if (!rc) {
#pragma omp parallel
        {
            uint32_t *ids = malloc((P - 2) * sizeof *ids);
#pragma omp for schedule(dynamic, 16)
            for (uint32_t i = 0; i < t->I; i++) {
                const char *txt = s->item_text + s->item_text_off[i];
                if (!*txt) continue;
                size_t n = ids ? shelf_wordpiece_encode(wp, txt, strlen(txt), ids, P - 2) : 0;
                if (n > P - 2) n = P - 2;
                if (!ids || shelf_bert_encode(bert, ids, n, cls, sep, t->tvec + (size_t)i * t->H)) {
#pragma omp atomic write
                    bad = 1;
                }
            }
            free(ids);
        }
        if (bad) rc = shelf_err_set(&err, SHELF_EINVAL, "%s: the encoder failed on an item's text", dir);
    }
    shelf_wordpiece_free(wp);
    shelf_bert_free(bert);
    if (rc) {
        free(t->tvec);
        t->tvec = NULL;
        t->H = 0;
        return shelf__model_fail(&t->base, rc, "tf-text-model: %s", err.msg);
    }
    return 0;
}

/* ---- validation ----------------------------------------------------------------- */

/* Mean NDCG@10 and HR@10 of the target tgt[k] of user users[k], given the
 * first hist_len[k] items of its training sequence (full ranking, the user's
 * other history items excluded, ties pessimistic). */
static void validate(tf_model *t, const shelf_snapshot *s, const uint32_t *users, const uint32_t *tgt,
                     const uint32_t *hist_len, size_t n, int Bmax, tf_acts *a, tf_batch *b, float *scores,
                     double *ndcg, double *hr)
{
    const int T = t->T, C = t->C;
    const uint32_t I = t->I;
    double sum_n = 0, sum_h = 0;
    if (t->idrop) memset(t->idrop, 0, t->I); /* no id dropout outside training steps */
    items_forward(t);
    for (size_t s0 = 0; s0 < n; s0 += Bmax) {
        int B = (int)(n - s0 < (size_t)Bmax ? n - s0 : (size_t)Bmax);
        b->B = B;
        b->T = 1;
        for (int r = 0; r < B; r++) {
            size_t len = hist_len[s0 + r], lo = window_start(len, T);
            if ((int)(len - lo) > b->T) b->T = (int)(len - lo);
        }
        for (int r = 0; r < B; r++) {
            uint32_t u = users[s0 + r];
            size_t len = hist_len[s0 + r], off = s->seq_off[u];
            batch_row(t, b, r, s->seq_item + off, s->seq_type + off, s->seq_ts + off, window_start(len, T), len, 0);
        }
        tf_forward(t, a, b, NULL);
        /* scores[B,I] = lnf[last rows] . E^T, the last rows strided by T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, (int)I, C, 1.0f, a->lnf + (size_t)(b->T - 1) * C,
                    b->T * C, t->E, C, 0.0f, scores, (int)I);
        double rn = 0, rh = 0;
#pragma omp parallel for schedule(static) reduction(+ : rn, rh)
        for (int r = 0; r < B; r++) {
            uint32_t u = users[s0 + r];
            const uint32_t *seq = s->seq_item + s->seq_off[u];
            float *sc = scores + (size_t)r * I;
            uint32_t target = tgt[s0 + r];
            float ts = sc[target];
            for (uint32_t k = 0; k < hist_len[s0 + r]; k++)
                if (seq[k] != target) sc[seq[k]] = -INFINITY;
            size_t rank = 1;
            for (uint32_t i = 0; i < I && rank <= 10; i++)
                if (i != target && sc[i] >= ts) rank++;
            if (rank <= 10) {
                rn += 1.0 / log2((double)rank + 1.0);
                rh += 1.0;
            }
        }
        sum_n += rn;
        sum_h += rh;
    }
    *ndcg = n ? sum_n / (double)n : 0.0;
    *hr = n ? sum_h / (double)n : 0.0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Orders (users, tgt, len) triples by window length (stable), so that
 * validation batches cost their own longest window, not T. keys[n] work. */
static void sort_by_len(uint32_t *users, uint32_t *tgt, uint32_t *len, size_t n, int T, uint64_t *keys)
{
    uint32_t *tmp = malloc(3 * n * sizeof *tmp);
    if (!tmp) return; /* out of memory: unsorted is only slower */
    for (size_t k = 0; k < n; k++) {
        uint64_t l = len[k] - window_start(len[k], T);
        keys[k] = l << 40 | (uint64_t)k;
    }
    qsort(keys, n, sizeof *keys, cmp_u64);
    for (size_t k = 0; k < n; k++) {
        size_t j = keys[k] & ((1ull << 40) - 1);
        tmp[k] = users[j];
        tmp[n + k] = tgt[j];
        tmp[2 * n + k] = len[j];
    }
    memcpy(users, tmp, n * sizeof *tmp);
    memcpy(tgt, tmp + n, n * sizeof *tmp);
    memcpy(len, tmp + 2 * n, n * sizeof *tmp);
    free(tmp);
}

/* Length bucketing (tf-bucket): users (already shuffled) are ordered by their
 * input length len[k] (ties keep the shuffled order), cut into batches of
 * Bmax, and the batches are shuffled. */
static void bucket_users(uint32_t *users, uint32_t *len, size_t n, int T, int Bmax, shelf_rng *rng, uint64_t *keys)
{
    for (size_t k = 0; k < n; k++) {
        uint64_t l = len[k] > (uint32_t)T ? (uint64_t)T : len[k];
        keys[k] = l << 40 | (uint64_t)k; /* k < 2^32 users: the sort is stable */
    }
    qsort(keys, n, sizeof *keys, cmp_u64);
    const size_t n_b = (n + Bmax - 1) / Bmax;
    uint32_t *sorted = malloc(2 * n * sizeof *sorted);
    uint32_t *perm = malloc(n_b * sizeof *perm);
    if (!sorted || !perm) { /* out of memory: keep the plain shuffle */
        free(sorted);
        free(perm);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        size_t j = keys[k] & ((1ull << 40) - 1);
        sorted[k] = users[j];
        sorted[n + k] = len[j];
    }
    for (size_t k = 0; k < n_b; k++) perm[k] = (uint32_t)k;
    for (size_t k = n_b; k > 1; k--) {
        size_t j = shelf_rng_below(rng, (uint32_t)k);
        uint32_t tmp = perm[k - 1];
        perm[k - 1] = perm[j];
        perm[j] = tmp;
    }
    size_t o = 0;
    for (size_t k = 0; k < n_b; k++) {
        size_t b0 = (size_t)perm[k] * Bmax, b1 = b0 + Bmax < n ? b0 + Bmax : n;
        for (size_t j = b0; j < b1; j++, o++) {
            users[o] = sorted[j];
            len[o] = sorted[n + j];
        }
    }
    free(sorted);
    free(perm);
}

/* ---- fit ---------------------------------------------------------------------- */


/* Floating-point operations of one training step (forward + backward) of a
 * batch of B rows of T positions with Nv targets, counting the matrix
 * products only (2 per multiply-add; backward = 2x forward): what the
 * training log reports as GFLOP and GFLOP/s, to compare with sgemm's rate. */
static double step_flops(const tf_model *t, int B, int T, size_t Nv)
{
    const double N = (double)B * T, C = t->C, F = t->F;
    double per_layer = 2.0 * N * (3 * C * C + C * C + 2 * C * F) + 4.0 * B * (double)T * T * C;
    double head = t->loss == LOSS_CE ? 2.0 * (double)Nv * t->I * C : 2.0 * (double)Nv * (1 + t->n_neg) * C;
    return 3.0 * (t->L * per_layer + head);
}

/* one fit's settings, users and work space (tf_fit and its steps) */
typedef struct tf_train {
    int epochs, Bmax, patience, watch, bucket, exclude_cold;
    double clip;
    shelf_adamw adam;
    shelf_lr_schedule sched;
    /* training users (a next-item pair to learn) and validation users */
    uint32_t *users, *ulen, *vusers, *vtgt, *vlen;
    uint64_t *keys;
    float *counts; /* [I] training events per item */
    size_t n_users, n_vusers;
    /* work */
    tf_batch b;
    tf_acts *a;
    tf_loss_ws lw;
    float *best, *scores;
    FILE *log;
    shelf_rng rng;
    int64_t step;
    /* the epochs so far */
    double best_ndcg, best_hr, train_s;
    int best_epoch, since_best;
    char note[96];
} tf_train;

/* what one epoch measured */
typedef struct epoch_stats {
    double secs, mean_loss, flops, ndcg, hr, vsecs;
    int64_t n_steps, n_skipped;
} epoch_stats;

static void tf_train_free(tf_train *tr)
{
    if (tr->log) fclose(tr->log);
    free(tr->best), free(tr->scores);
    free(tr->users), free(tr->ulen), free(tr->vusers), free(tr->vtgt), free(tr->vlen), free(tr->keys);
    free(tr->counts);
    loss_ws_free(&tr->lw);
    batch_free(&tr->b);
    acts_free(tr->a);
}

/* training users (hold: each sequence's last item is kept for validation)
 * and validation users (given targets, or the held-out last items), item
 * counts of the training events */
static int collect_users(tf_model *t, const shelf_snapshot *s, tf_train *tr, int given, int hold)
{
    shelf_model *m = &t->base;
    const uint32_t U = s->n_users;
    tr->users = malloc((size_t)U * sizeof *tr->users), tr->ulen = malloc((size_t)U * sizeof *tr->ulen);
    tr->vusers = malloc((size_t)U * sizeof *tr->vusers), tr->vtgt = malloc((size_t)U * sizeof *tr->vtgt);
    tr->vlen = malloc((size_t)U * sizeof *tr->vlen);
    tr->keys = malloc((size_t)U * sizeof *tr->keys);
    tr->counts = calloc(s->n_items, sizeof *tr->counts);
    if (!tr->users || !tr->ulen || !tr->vusers || !tr->vtgt || !tr->vlen || !tr->keys || !tr->counts)
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    for (uint32_t u = 0; u < U; u++) {
        uint64_t len = shelf_snapshot_seq_len(s, u);
        const uint32_t *seq = s->seq_item + s->seq_off[u];
        uint64_t tl = hold && len >= 2 ? len - 1 : len;
        if (tl >= 2) {
            tr->users[tr->n_users] = u;
            tr->ulen[tr->n_users++] = (uint32_t)tl;
            for (uint64_t k = 0; k < tl; k++) tr->counts[seq[k]] += 1.0f;
        }
        if (given && m->valid_off[u + 1] > m->valid_off[u] && len >= 1) {
            tr->vusers[tr->n_vusers] = u;
            tr->vtgt[tr->n_vusers] = m->valid_item[m->valid_off[u]];
            tr->vlen[tr->n_vusers++] = (uint32_t)len;
        } else if (hold && len >= 2) {
            tr->vusers[tr->n_vusers] = u;
            tr->vtgt[tr->n_vusers] = seq[len - 1];
            tr->vlen[tr->n_vusers++] = (uint32_t)(len - 1);
        }
    }
    if (tr->n_users == 0) return shelf__model_fail(m, SHELF_EINVAL, "no training sequence has two items");
    sort_by_len(tr->vusers, tr->vtgt, tr->vlen, tr->n_vusers, t->T, tr->keys); /* batches of similar lengths */
    return 0;
}

/* parameters (initialised from tr->rng), activations, batch, loss and
 * validation buffers, the training log */
static int setup_training(tf_model *t, tf_train *tr, const shelf_opts *o)
{
    shelf_model *m = &t->base;
    shelf_err err = {0};
    int rc = build_params(t, &err);
    if (rc) return shelf__model_fail(m, rc, "%s", err.msg);
    init_params(t, &tr->rng);
    const int ce_cold = tr->exclude_cold && t->loss == LOSS_CE;
    if (ce_cold) { /* no events: no id (it could only learn to be a negative) */
        float *wte = shelf_params_data(t->p, t->i_wte);
        for (uint32_t i = 0; i < t->I; i++)
            if (tr->counts[i] == 0.0f) memset(wte + (size_t)i * t->C, 0, (size_t)t->C * sizeof *wte);
    }
    t->id_dropout = (float)shelf_config_double(o, "tf-id-dropout");
    if (t->id_dropout > 0 && t->n_feats && !(t->idrop = calloc(t->I, 1)))
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    const int Bmax = tr->Bmax;
    tr->a = acts_new(t, Bmax, 1);
    tr->best = tr->watch ? malloc(t->p->n_floats * sizeof *tr->best) : NULL;
    tr->scores = tr->watch ? malloc((size_t)Bmax * t->I * sizeof *tr->scores) : NULL;
    if (batch_alloc(&tr->b, Bmax, t->T) || !tr->a || (tr->watch && (!tr->best || !tr->scores)) ||
        loss_ws_init(&tr->lw, t, (size_t)Bmax * t->T, tr->counts, ce_cold))
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (batch %d x %d, %u items)", Bmax, t->T, t->I);
    const char *log_path = shelf_config_str(o, "tf-log");
    if (log_path && *log_path && !(tr->log = fopen(log_path, "w")))
        return shelf__model_fail(m, SHELF_EIO, "cannot write the training log '%s'", log_path);
    const int64_t steps_per_epoch = (int64_t)((tr->n_users + Bmax - 1) / Bmax);
    tr->sched = (shelf_lr_schedule){.lr_max = (float)shelf_config_double(o, "tf-lr"),
                                    .lr_min = 0.0f,
                                    .warmup = shelf_config_int(o, "tf-warmup"),
                                    .total = steps_per_epoch * tr->epochs,
                                    .decay = SHELF_LR_COSINE};
    return 0;
}

/* one epoch: the users shuffled (and bucketed by length), a step per batch
 * (a non-finite loss or gradient norm skips the update) */
static void train_epoch(tf_model *t, const shelf_snapshot *s, tf_train *tr, int ep, shelf_progress *pr,
                        epoch_stats *es)
{
    const int T = t->T, Bmax = tr->Bmax;
    const size_t n_users = tr->n_users;
    uint32_t *users = tr->users, *ulen = tr->ulen;
    tf_batch *b = &tr->b;
    double t0 = shelf_now();
    for (size_t k = n_users; k > 1; k--) { /* Fisher-Yates */
        size_t j = shelf_rng_below(&tr->rng, (uint32_t)k);
        uint32_t tu = users[k - 1], tl = ulen[k - 1];
        users[k - 1] = users[j];
        ulen[k - 1] = ulen[j];
        users[j] = tu;
        ulen[j] = tl;
    }
    if (tr->bucket) bucket_users(users, ulen, n_users, T, Bmax, &tr->rng, tr->keys);
    memset(t->prof, 0, sizeof t->prof);
    double loss_sum = 0;
    for (size_t s0 = 0; s0 < n_users; s0 += Bmax) {
        int B = (int)(n_users - s0 < (size_t)Bmax ? n_users - s0 : (size_t)Bmax);
        b->B = B;
        b->T = 1;
        for (int r = 0; r < B; r++) {
            int n_in = (int)ulen[s0 + r] - 1;
            if (n_in > b->T) b->T = n_in < T ? n_in : T;
        }
        size_t Nv = 0;
        for (int r = 0; r < B; r++) {
            size_t off = s->seq_off[users[s0 + r]], hi = ulen[s0 + r] - 1, lo = hi > (size_t)T ? hi - T : 0;
            batch_row(t, b, r, s->seq_item + off, s->seq_type + off, s->seq_ts + off, lo, hi, 1);
            Nv += hi - lo;
        }
        es->flops += step_flops(t, B, b->T, Nv);
        float loss = tf_step_grad(t, tr->a, b, &tr->lw, &tr->rng, &tr->rng, 1);
        double norm = shelf_params_clip_grad_norm(t->p, tr->clip);
        if (!isfinite(norm) || !isfinite(loss)) {
            es->n_skipped++;
        } else {
            double a0 = shelf_now();
            shelf_adamw_step(t->p, &tr->adam, shelf_lr_at(&tr->sched, tr->step), tr->step + 1);
            t->prof[PROF_OPTIM] += shelf_now() - a0;
            loss_sum += loss;
            es->n_steps++;
        }
        tr->step++;
        shelf_progress_update(pr, (uint64_t)(ep - 1) * n_users + s0 + B, tr->note);
    }
    es->secs = shelf_now() - t0;
    tr->train_s += es->secs;
    es->mean_loss = es->n_steps ? loss_sum / (double)es->n_steps : 0.0;
}

/* validation after an epoch: the best parameters so far are kept in tr->best */
static void watch_epoch(tf_model *t, const shelf_snapshot *s, tf_train *tr, int ep, epoch_stats *es)
{
    double v0 = shelf_now();
    validate(t, s, tr->vusers, tr->vtgt, tr->vlen, tr->n_vusers, tr->Bmax, tr->a, &tr->b, tr->scores, &es->ndcg,
             &es->hr);
    es->vsecs = shelf_now() - v0;
    if (es->ndcg > tr->best_ndcg) {
        tr->best_ndcg = es->ndcg;
        tr->best_hr = es->hr;
        tr->best_epoch = ep;
        tr->since_best = 0;
        memcpy(tr->best, t->p->params, t->p->n_floats * sizeof *tr->best);
    } else {
        tr->since_best++;
    }
}

/* one JSON line of the training log (--tf-log) */
static void log_epoch(const tf_model *t, tf_train *tr, int ep, const epoch_stats *es)
{
    FILE *log = tr->log;
    double secs = es->secs;
    fprintf(log,
            "{\"epoch\":%d,\"loss\":%.6f,\"seconds\":%.3f,\"train_seconds\":%.3f,\"sequences_per_s\":%.1f,"
            "\"gflop\":%.1f,\"gflop_per_s\":%.1f,\"steps\":%lld,\"skipped\":%lld,\"lr\":%.6g",
            ep, es->mean_loss, secs, tr->train_s, secs > 0 ? (double)tr->n_users / secs : 0.0, es->flops * 1e-9,
            secs > 0 ? es->flops * 1e-9 / secs : 0.0, (long long)es->n_steps, (long long)es->n_skipped,
            (double)shelf_lr_at(&tr->sched, tr->step - 1));
    fprintf(log, ",\"phase_seconds\":{");
    for (int k = 0; k < PROF_N; k++) fprintf(log, "%s\"%s\":%.3f", k ? "," : "", prof_names[k], t->prof[k]);
    fprintf(log, "}");
    if (tr->watch)
        fprintf(log, ",\"valid_ndcg10\":%.6f,\"valid_hr10\":%.6f,\"valid_seconds\":%.3f,\"best_epoch\":%d", es->ndcg,
                es->hr, es->vsecs, tr->best_epoch);
    fprintf(log, "}\n");
    fflush(log);
}

static int tf_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    tf_model *t = (tf_model *)m;
    const uint32_t U = s->n_users;
    if (s->n_items == 0 || s->n_events == 0)
        return shelf__model_fail(m, SHELF_EINVAL, "nothing to learn (%u users, %u items)", U, s->n_items);
    tf_free_arrays(t);
    m->fitted = 0;
    int rc = read_opts(t, o, s->n_items, s->n_types);
    if (rc) return rc;
    tf_train tr = {.epochs = (int)shelf_config_int(o, "tf-epochs"),
                   .Bmax = (int)shelf_config_int(o, "tf-batch"),
                   .patience = (int)shelf_config_int(o, "tf-patience"),
                   .clip = shelf_config_double(o, "tf-clip"),
                   .adam = {0.9f, 0.999f, 1e-8f, (float)shelf_config_double(o, "tf-wd")},
                   .bucket = shelf_config_bool(o, "tf-bucket"),
                   .exclude_cold = shelf_config_bool(o, "tf-exclude-cold"),
                   .best_ndcg = -1.0};
    const int given = m->valid_off != NULL;
    const int hold = !given && shelf_config_bool(o, "tf-holdout");
    tr.watch = given || hold;
    if (shelf_config_bool(o, "tf-features") &&
        (rc = take_features(t, s, (uint32_t)shelf_config_int(o, "tf-text-buckets"),
                            (uint32_t)shelf_config_int(o, "tf-text-max"))))
        return shelf__model_fail(m, rc, "out of memory (item features)");
    const char *text_model = shelf_config_str(o, "tf-text-model");
    if (text_model && *text_model && shelf_config_bool(o, "tf-features") && (rc = take_text_vectors(t, s, text_model))) {
        tf_free_arrays(t);
        return rc;
    }
#ifdef _OPENMP
    const int old_threads = omp_get_max_threads();
    omp_set_num_threads(shelf__model_threads(o));
#endif
    shelf_rng_seed(&tr.rng, (uint64_t)shelf_config_int(o, "seed"));
    rc = collect_users(t, s, &tr, given, hold);
    if (!rc) rc = setup_training(t, &tr, o);
    if (!rc) shelf_progress_set_total(pr, (uint64_t)tr.epochs * tr.n_users);
    for (int ep = 1; !rc && ep <= tr.epochs; ep++) {
        epoch_stats es = {.ndcg = -1.0};
        train_epoch(t, s, &tr, ep, pr, &es);
        const char *skipped = es.n_skipped ? " (non-finite steps skipped)" : "";
        if (tr.watch) {
            watch_epoch(t, s, &tr, ep, &es);
            snprintf(tr.note, sizeof tr.note, "ep %d loss %.3f valid %.4f", ep, es.mean_loss, es.ndcg);
            shelf_info("transformer: epoch %d loss %.4f valid ndcg@10 %.4f hr@10 %.4f (%.1f s + %.1f s)%s", ep,
                       es.mean_loss, es.ndcg, es.hr, es.secs, es.vsecs, skipped);
        } else {
            snprintf(tr.note, sizeof tr.note, "ep %d loss %.3f", ep, es.mean_loss);
            shelf_info("transformer: epoch %d loss %.4f (%.1f s)%s", ep, es.mean_loss, es.secs, skipped);
        }
        if (tr.log) log_epoch(t, &tr, ep, &es);
        if (tr.watch && tr.patience > 0 && tr.since_best >= tr.patience) break;
    }
    if (!rc) {
        if (tr.watch && tr.best_epoch > 0) {
            memcpy(t->p->params, tr.best, t->p->n_floats * sizeof *tr.best);
            shelf_info("transformer: kept epoch %d (valid ndcg@10 %.4f hr@10 %.4f)", tr.best_epoch, tr.best_ndcg,
                       tr.best_hr);
        }
        free(t->idrop);
        t->idrop = NULL;
        items_forward(t);
        m->n_users = U;
        m->n_items = t->I;
    }
#ifdef _OPENMP
    omp_set_num_threads(old_threads);
#endif
    tf_train_free(&tr);
    free(t->idrop); /* training only */
    t->idrop = NULL;
    if (rc) tf_free_arrays(t);
    return rc;
}

/* ---- score -------------------------------------------------------------------- */

/* scores = E . h, h the final state of the newest position of the query's
 * window (an empty history: h = the final LayerNorm's bias, the state of an
 * all-zero input, as shelf__tf_state). Allocates its own activations: safe
 * from many threads at once. */
uint32_t shelf__tf_dim(const shelf_model *m)
{
    if (!m || !m->fitted || strcmp(m->vt->name, "transformer") != 0) return 0;
    return (uint32_t)((const tf_model *)m)->C;
}

int shelf__tf_profile(const shelf_model *m, const shelf_query *q, float *h, shelf_err *err)
{
    const tf_model *t = (const tf_model *)m;
    if (!shelf__tf_dim(m)) return SHELF_EINVAL;
    if (q->n == 0) {
        memcpy(h, shelf_params_data(t->p, t->i_lnfb), (size_t)t->C * sizeof *h);
        return 0;
    }
    for (uint32_t k = 0; k < q->n; k++)
        if (q->items[k] >= t->I) return shelf__model_err(m, err, SHELF_EINVAL, "history item %u out of range", q->items[k]);
    tf_batch b;
    tf_acts *a = acts_new(t, 1, 0);
    int rc = batch_alloc(&b, 1, t->T);
    if (rc || !a) {
        batch_free(&b);
        acts_free(a);
        return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory");
    }
    size_t lo = window_start(q->n, t->T);
    b.T = (int)(q->n - lo);
    batch_row(t, &b, 0, q->items, q->types, q->ts, lo, q->n, 0);
    tf_forward(t, a, &b, NULL);
    memcpy(h, a->lnf + (size_t)(b.T - 1) * t->C, (size_t)t->C * sizeof *h);
    batch_free(&b);
    acts_free(a);
    return 0;
}

int shelf__tf_profile_scores(const shelf_model *m, const float *h, float *scores)
{
    const tf_model *t = (const tf_model *)m;
    if (!shelf__tf_dim(m)) return SHELF_EINVAL;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)t->I, t->C, 1.0f, t->E, t->C, h, 1, 0.0f, scores, 1);
    return 0;
}

static int tf_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    const tf_model *t = (const tf_model *)m;
    float h[SHELF__TF_MAX_DIM];
    if (t->C > SHELF__TF_MAX_DIM) return shelf__model_err(m, err, SHELF_EINVAL, "tf-dim %d over %d", t->C, SHELF__TF_MAX_DIM);
    int rc = shelf__tf_profile(m, q, h, err);
    return rc ? rc : shelf__tf_profile_scores(m, h, scores);
}

/* n histories at once: ordered by window length, SCORE_B at a time through
 * one forward pass (left-padded to the batch's longest window, as
 * validation does; the batches in parallel, one thread each), then every
 * profile against E in one matrix product instead of n matrix-vector ones
 * (E is read once, not n times) */
#define SCORE_B 16

/* the profiles of the histories qs[key[k] & 2^40 - 1] for k in [0, m) (key: window length << 40 | index) */
static int profile_batch(const tf_model *t, const shelf_query *qs, const uint64_t *key, size_t m, float *h)
{
    tf_batch b;
    tf_acts *a = acts_new(t, SCORE_B, 0);
    int rc = batch_alloc(&b, SCORE_B, t->T);
    if (!rc && a) {
        b.B = (int)m;
        b.T = (int)(key[m - 1] >> 40); /* the longest window of the batch */
        for (size_t r = 0; r < m; r++) {
            const shelf_query *q = &qs[key[r] & ((1ull << 40) - 1)];
            batch_row(t, &b, (int)r, q->items, q->types, q->ts, window_start(q->n, t->T), q->n, 0);
        }
        tf_forward(t, a, &b, NULL);
        for (size_t r = 0; r < m; r++)
            memcpy(h + (key[r] & ((1ull << 40) - 1)) * (size_t)t->C, a->lnf + (r * b.T + (size_t)b.T - 1) * t->C,
                   (size_t)t->C * sizeof *h);
    }
    batch_free(&b);
    acts_free(a);
    return rc || !a ? SHELF_ENOMEM : 0;
}

static int tf_score_many(const shelf_model *m, const shelf_query *qs, size_t n, float *scores, shelf_err *err)
{
    const tf_model *t = (const tf_model *)m;
    if (!shelf__tf_dim(m)) return SHELF_EINVAL;
    if (!n) return 0;
    const int C = t->C;
    float *h = malloc(n * (size_t)C * sizeof *h);
    uint64_t *key = malloc(n * sizeof *key);
    int rc = h && key ? 0 : SHELF_ENOMEM;
    size_t n_key = 0;
    for (size_t k = 0; !rc && k < n; k++) {
        if (qs[k].n == 0) { /* the empty history: the final norm's bias, as shelf__tf_profile */
            memcpy(h + k * (size_t)C, shelf_params_data(t->p, t->i_lnfb), (size_t)C * sizeof *h);
            continue;
        }
        uint64_t len = qs[k].n - window_start(qs[k].n, t->T);
        key[n_key++] = len << 40 | (uint64_t)k;
    }
    if (!rc) qsort(key, n_key, sizeof *key, cmp_u64);
    long n_batch = (long)((n_key + SCORE_B - 1) / SCORE_B);
#pragma omp parallel for schedule(dynamic, 1) reduction(| : rc)
    for (long j = 0; j < n_batch; j++) {
        size_t s0 = (size_t)j * SCORE_B, m_j = n_key - s0 < SCORE_B ? n_key - s0 : SCORE_B;
        rc |= profile_batch(t, qs, key + s0, m_j, h);
    }
    if (!rc)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)t->I, C, 1.0f, h, C, t->E, C, 0.0f, scores,
                    (int)t->I);
    free(h);
    free(key);
    return rc ? shelf__model_err(m, err, SHELF_ENOMEM, "out of memory") : 0;
}

/* The item of the history (its window) whose representation is the
 * closest to item's (cosine): what the profile most likely drew it from. */
static int tf_explain(const shelf_model *m, const shelf_query *q, uint32_t item, shelf_reason *r, shelf_err *err)
{
    const tf_model *t = (const tf_model *)m;
    const float *x = t->E + (size_t)item * t->C;
    double nx = 0;
    for (int c = 0; c < t->C; c++) nx += (double)x[c] * x[c];
    uint32_t best = SHELF_NONE;
    double best_cos = -2;
    for (size_t j = window_start(q->n, t->T); j < q->n; j++) {
        uint32_t h = q->items[j];
        if (h >= t->I || h == item) continue;
        const float *y = t->E + (size_t)h * t->C;
        double d = 0, ny = 0;
        for (int c = 0; c < t->C; c++) {
            d += (double)x[c] * y[c];
            ny += (double)y[c] * y[c];
        }
        double cs = nx > 0 && ny > 0 ? d / sqrt(nx * ny) : 0;
        if (cs > best_cos) {
            best_cos = cs;
            best = h;
        }
    }
    r->item = best;
    r->weight = best == SHELF_NONE ? 0.0f : (float)best_cos;
    if (best == SHELF_NONE) snprintf(r->text, sizeof r->text, "popular with shoppers like you");
    else snprintf(r->text, sizeof r->text, "close to item %u in your recent history", best);
    return 0;
}

/* ---- incremental state (shelf/transformer.h) ------------------------------------ */

struct shelf__tf_state {
    const tf_model *t;
    uint64_t n;                /* events pushed */
    uint64_t start;            /* window start (an event index) */
    uint32_t *item, *typ, *gap; /* [T] events start .. n-1 */
    int64_t last_ts;
    int has_ts;
    float *kc, *vc; /* [L][NH*T*HS] */
    float *h;       /* [C] final state of the newest position */
    float *x, *ln, *qkv, *att, *tmp, *ff, *ff2, *mean; /* work space */
};

shelf__tf_state *shelf__tf_state_new(const shelf_model *m)
{
    if (!m || !m->fitted || strcmp(m->vt->name, "transformer") != 0) return NULL;
    const tf_model *t = (const tf_model *)m;
    shelf__tf_state *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    const size_t T = t->T, C = t->C, F = t->F, L = t->L;
    st->t = t;
    st->item = malloc(3 * T * sizeof *st->item);
    st->kc = malloc(2 * L * T * C * sizeof *st->kc);
    st->h = malloc((8 * C + 2 * F + 4) * sizeof *st->h);
    if (!st->item || !st->kc || !st->h) {
        shelf__tf_state_free(st);
        return NULL;
    }
    st->typ = st->item + T;
    st->gap = st->item + 2 * T;
    st->vc = st->kc + L * T * C;
    st->x = st->h + C;
    st->ln = st->x + C;
    st->qkv = st->ln + C;
    st->att = st->qkv + 3 * C;
    st->tmp = st->att + C;
    st->ff = st->tmp + C;
    st->ff2 = st->ff + F;
    st->mean = st->ff2 + F;
    shelf__tf_state_reset(st);
    return st;
}

void shelf__tf_state_free(shelf__tf_state *st)
{
    if (!st) return;
    free(st->item);
    free(st->kc);
    free(st->h);
    free(st);
}

void shelf__tf_state_reset(shelf__tf_state *st)
{
    st->n = st->start = 0;
    st->has_ts = 0;
    memcpy(st->h, shelf_params_data(st->t->p, st->t->i_lnfb), (size_t)st->t->C * sizeof *st->h);
}

uint64_t shelf__tf_state_len(const shelf__tf_state *st) { return st->n; }

/* The forward pass of window position k (its event in item/typ/gap[k]) over
 * the caches of positions 0..k-1: the same operations as tf_forward on one
 * row, attention by the key/value cache step. Leaves the final state in h. */
static void state_step(shelf__tf_state *st, int k)
{
    const tf_model *t = st->t;
    const size_t C = t->C, F = t->F, T = t->T;
    float *x = st->x, *mean = st->mean, *rstd = st->mean + 1;
    const float *e = t->E + (size_t)st->item[k] * C, *p = shelf_params_data(t->p, t->i_wpe) + (size_t)k * C;
    for (size_t c = 0; c < C; c++) x[c] = e[c] + p[c];
    if (t->use_types && st->typ[k] != SHELF_NN_PAD) {
        const float *w = shelf_params_data(t->p, t->i_wtyp) + (size_t)st->typ[k] * C;
        for (size_t c = 0; c < C; c++) x[c] += w[c];
    }
    if (t->use_gaps) {
        const float *w = shelf_params_data(t->p, t->i_wgap) + (size_t)st->gap[k] * C;
        for (size_t c = 0; c < C; c++) x[c] += w[c];
    }
    for (int l = 0; l < t->L; l++) {
        shelf_nn_layernorm_forward(st->ln, mean, rstd, x, P(t, l, P_LN1W), P(t, l, P_LN1B), 1, C);
        shelf_nn_linear_forward(st->qkv, st->ln, P(t, l, P_QKVW), P(t, l, P_QKVB), 1, C, 3 * C);
        shelf_attention_step_forward(st->att, st->kc + (size_t)l * T * C, st->vc + (size_t)l * T * C, st->qkv, k, 0,
                                     t->T, t->C, t->NH);
        shelf_nn_linear_forward(st->tmp, st->att, P(t, l, P_PROJW), P(t, l, P_PROJB), 1, C, C);
        shelf_nn_residual_forward(x, x, st->tmp, C);
        shelf_nn_layernorm_forward(st->ln, mean, rstd, x, P(t, l, P_LN2W), P(t, l, P_LN2B), 1, C);
        shelf_nn_linear_forward(st->ff, st->ln, P(t, l, P_FC1W), P(t, l, P_FC1B), 1, C, F);
        shelf_nn_gelu_forward(st->ff2, st->ff, F);
        shelf_nn_linear_forward(st->tmp, st->ff2, P(t, l, P_FC2W), P(t, l, P_FC2B), 1, F, C);
        shelf_nn_residual_forward(x, x, st->tmp, C);
    }
    shelf_nn_layernorm_forward(st->h, mean, rstd, x, shelf_params_data(t->p, t->i_lnfw),
                               shelf_params_data(t->p, t->i_lnfb), 1, C);
}

int shelf__tf_state_push(shelf__tf_state *st, uint32_t item, uint32_t type, int64_t ts)
{
    const tf_model *t = st->t;
    if (item >= t->I) return SHELF_EINVAL;
    uint32_t gap = 0;
    if (ts == SHELF__TF_NO_TIME) {
        st->has_ts = 0;
    } else {
        if (st->has_ts) gap = gap_bucket(ts - st->last_ts);
        st->last_ts = ts;
        st->has_ts = 1;
    }
    const uint64_t n = st->n + 1, start = window_start(n, t->T);
    const int slide = start != st->start;
    if (slide) { /* drop the oldest events; every position is recomputed */
        uint64_t drop = start - st->start, keep = st->n - start;
        memmove(st->item, st->item + drop, keep * sizeof *st->item);
        memmove(st->typ, st->typ + drop, keep * sizeof *st->typ);
        memmove(st->gap, st->gap + drop, keep * sizeof *st->gap);
        st->start = start;
    }
    const int k = (int)(n - 1 - start);
    st->item[k] = item;
    st->typ[k] = t->use_types && type < t->n_types ? type : SHELF_NN_PAD;
    st->gap[k] = gap;
    st->n = n;
    for (int j = slide ? 0 : k; j <= k; j++) state_step(st, j);
    return 0;
}

int shelf__tf_state_scores(const shelf__tf_state *st, float *scores)
{
    return shelf__tf_profile_scores(&st->t->base, st->h, scores);
}

void shelf__tf_state_profile(const shelf__tf_state *st, float *h)
{
    memcpy(h, st->h, (size_t)st->t->C * sizeof *h);
}

/* ---- sessions (model.h): a profile, and once events arrive a state ------------------------ */

/* A shopper's session: the profile of the history it was made for; the
 * first append makes a key/value state of the history's window (whose start
 * is a multiple of the slide, so the state's windows stay those of the whole
 * history), which each later event extends by one position. */
typedef struct tf_session {
    shelf__tf_state *st; /* NULL until the first append */
    uint64_t n;          /* history events covered */
    uint64_t base;       /* the state's first event is history event base */
    size_t bytes;        /* what h and st hold */
    float h[];           /* [C] profile */
} tf_session;

static int tf_session_begin(const shelf_model *m, const shelf_query *hist, void **out, shelf_err *err)
{
    const tf_model *t = (const tf_model *)m;
    tf_session *s = malloc(sizeof *s + (size_t)t->C * sizeof *s->h);
    if (!s) return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory");
    s->st = NULL;
    s->n = hist->n;
    s->base = 0;
    s->bytes = (size_t)t->C * sizeof *s->h;
    int rc = shelf__tf_profile(m, hist, s->h, err);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int tf_session_append(const shelf_model *m, void *sess, const shelf_query *hist, shelf_err *err)
{
    const tf_model *t = (const tf_model *)m;
    tf_session *s = sess;
    if (hist->n < s->n)
        return shelf__model_err(m, err, SHELF_EINVAL, "session of %llu events appended a history of %u",
                                (unsigned long long)s->n, hist->n);
    if (hist->n == s->n) return 0;
    if (!s->st) {
        if (!(s->st = shelf__tf_state_new(m))) return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory");
        const size_t T = t->T, C = t->C, F = t->F, L = t->L;
        s->bytes += sizeof *s->st + 3 * T * sizeof(uint32_t) + (2 * L * T * C + 8 * C + 2 * F + 4) * sizeof(float);
        s->base = window_start(hist->n, t->T);
        s->n = s->base;
    }
    for (; s->n < hist->n; s->n++) {
        size_t k = s->n;
        int64_t ts = hist->ts && hist->ts[k] > 0 ? hist->ts[k] : SHELF__TF_NO_TIME;
        int rc = shelf__tf_state_push(s->st, hist->items[k], hist->types ? hist->types[k] : SHELF_NONE, ts);
        if (rc) return shelf__model_err(m, err, rc, "history item %u out of range", hist->items[k]);
    }
    shelf__tf_state_profile(s->st, s->h);
    return 0;
}

static int tf_session_score(const shelf_model *m, const void *sess, float *scores, shelf_err *err)
{
    (void)err;
    return shelf__tf_profile_scores(m, ((const tf_session *)sess)->h, scores);
}

static size_t tf_session_bytes(const void *sess)
{
    const tf_session *s = sess;
    return sizeof *s + s->bytes;
}

static void tf_session_free(void *sess)
{
    tf_session *s = sess;
    if (!s) return;
    shelf__tf_state_free(s->st);
    free(s);
}

/* ---- test hooks (transformer_int.h) ----------------------------------------------- */

shelf_params *shelf__transformer_params(shelf_model *m) { return ((tf_model *)m)->p; }

int shelf__transformer_setup(shelf_model *m, const shelf_opts *o, uint32_t n_items, uint32_t n_types,
                             const uint64_t *feat_off, const uint32_t *feat_col, uint32_t n_feats)
{
    tf_model *t = (tf_model *)m;
    tf_free_arrays(t);
    int rc = read_opts(t, o, n_items, n_types);
    if (rc) return rc;
    if (feat_off && n_feats && shelf_config_bool(o, "tf-features")) {
        t->feat_off = malloc(((size_t)n_items + 1) * sizeof *t->feat_off);
        t->feat_col = malloc((feat_off[n_items] + 1) * sizeof *t->feat_col);
        if (!t->feat_off || !t->feat_col) return SHELF_ENOMEM;
        memcpy(t->feat_off, feat_off, ((size_t)n_items + 1) * sizeof *feat_off);
        memcpy(t->feat_col, feat_col, feat_off[n_items] * sizeof *feat_col);
        t->n_feats = n_feats;
        t->I = n_items;
        if (transpose_features(t)) return SHELF_ENOMEM;
    }
    shelf_err err = {0};
    if ((rc = build_params(t, &err))) return shelf__model_fail(m, rc, "%s", err.msg);
    shelf_rng rng;
    shelf_rng_seed(&rng, (uint64_t)shelf_config_int(o, "seed"));
    init_params(t, &rng);
    items_forward(t);
    m->n_items = n_items;
    m->fitted = 1;
    return 0;
}

float shelf__transformer_batch_loss(shelf_model *m, const uint32_t *items, const uint16_t *types, const int64_t *ts,
                                    int B, int len, int backward, shelf_rng *rng, float *logits)
{
    tf_model *t = (tf_model *)m;
    if (len < 2 || len - 1 > t->T) return NAN;
    const size_t N = (size_t)B * (len - 1);
    tf_batch b;
    tf_loss_ws lw;
    tf_acts *a = acts_new(t, B, 1);
    float loss = NAN;
    if (!batch_alloc(&b, B, t->T) && a && !loss_ws_init(&lw, t, N, NULL, 0)) {
        b.T = len - 1;
        for (int r = 0; r < B; r++) {
            const size_t o = (size_t)r * len;
            int j0 = 0;
            while (j0 < len && items[o + j0] == SHELF_NN_PAD) j0++;
            if (j0 >= len - 1) j0 = len - 1; /* no input: an all-padding row */
            batch_row(t, &b, r, items + o + j0, types ? types + o + j0 : NULL, ts ? ts + o + j0 : NULL, 0,
                      (size_t)(len - 1 - j0), 1);
        }
        shelf_rng neg;
        shelf_rng_seed(&neg, 1234);
        loss = tf_step_grad(t, a, &b, &lw, rng, &neg, backward);
        if (logits) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)t->I, t->C, 1.0f, a->lnf, t->C, t->E,
                        t->C, 0.0f, logits, (int)t->I);
            for (size_t n = 0; n < N; n++)
                if (b.idx[n] == SHELF_NN_PAD) memset(logits + n * t->I, 0, t->I * sizeof *logits);
        }
        loss_ws_free(&lw);
    }
    batch_free(&b);
    acts_free(a);
    return loss;
}

/* ---- save / load -------------------------------------------------------------- */

static const char *loss_name(int loss) { return loss == LOSS_SAMPLED ? "sampled" : loss == LOSS_BCE ? "bce" : "ce"; }

static int tf_save(const shelf_model *m, shelf_bundle_writer *w)
{
    const tf_model *t = (const tf_model *)m;
    int rc = 0;
    for (size_t i = 0; i < t->p->n_tensors && !rc; i++) {
        const shelf_param_info *in = &t->p->info[i];
        rc = shelf_bundle_put(w, in->name, SHELF_DT_F32, in->ndim, in->shape, shelf_params_data(t->p, i));
    }
    if (!rc && t->n_feats) {
        int64_t sh = (int64_t)t->I + 1;
        rc = shelf_bundle_put(w, "feat_off", SHELF_DT_U64, 1, &sh, t->feat_off);
        sh = (int64_t)t->feat_off[t->I];
        if (!rc && sh) rc = shelf_bundle_put(w, "feat_col", SHELF_DT_U32, 1, &sh, t->feat_col);
        sh = (int64_t)t->n_feats;
        if (!rc && t->feat_raw) rc = shelf_bundle_put(w, "feat_raw", SHELF_DT_U32, 1, &sh, t->feat_raw);
    }
    const struct {
        const char *k;
        double v;
    } nums[] = {{"tf-layers", t->L},       {"tf-heads", t->NH},         {"tf-dim", t->C},
                {"tf-ffn", t->F},          {"tf-maxlen", t->T},         {"tf-dropout", t->dropout},
                {"n_types", t->n_types},   {"n_feats", t->n_feats},     {"tf-types", t->use_types},
                {"tf-gaps", t->use_gaps},  {"tf-negatives", t->n_neg}};
    for (size_t k = 0; k < sizeof nums / sizeof nums[0] && !rc; k++) rc = shelf_bundle_set_num(w, nums[k].k, nums[k].v);
    if (!rc && t->tvec) {
        const int64_t sh[2] = {t->I, t->H};
        rc = shelf_bundle_put(w, "text_vec", SHELF_DT_F32, 2, sh, t->tvec);
    }
    if (!rc) rc = shelf_bundle_set_num(w, "text_dim", t->H);
    if (!rc) rc = shelf_bundle_set_str(w, "tf-loss", loss_name(t->loss));
    if (!rc) rc = shelf_bundle_set_str(w, "tf-precision", t->prec == SHELF_NN_BF16 ? "bf16" : "f32");
    return rc;
}

static int tf_load(shelf_model *m, const shelf_bundle *bd)
{
    tf_model *t = (tf_model *)m;
    tf_free_arrays(t);
    t->L = (int)shelf_bundle_num(bd, "tf-layers", 0);
    t->NH = (int)shelf_bundle_num(bd, "tf-heads", 0);
    t->C = (int)shelf_bundle_num(bd, "tf-dim", 0);
    t->F = (int)shelf_bundle_num(bd, "tf-ffn", 0);
    t->T = (int)shelf_bundle_num(bd, "tf-maxlen", 0);
    t->dropout = (float)shelf_bundle_num(bd, "tf-dropout", 0);
    t->n_types = (uint32_t)shelf_bundle_num(bd, "n_types", 0);
    const double nf = shelf_bundle_num(bd, "n_feats", 0);
    t->use_types = shelf_bundle_num(bd, "tf-types", 0) != 0;
    t->use_gaps = shelf_bundle_num(bd, "tf-gaps", 0) != 0;
    t->n_neg = (int)shelf_bundle_num(bd, "tf-negatives", 1);
    const char *ls = shelf_bundle_str(bd, "tf-loss"), *pr = shelf_bundle_str(bd, "tf-precision");
    t->loss = ls && strcmp(ls, "sampled") == 0 ? LOSS_SAMPLED : ls && strcmp(ls, "bce") == 0 ? LOSS_BCE : LOSS_CE;
    t->prec = pr && strcmp(pr, "bf16") == 0 ? SHELF_NN_BF16 : SHELF_NN_F32;
    t->I = m->n_items;
    if (t->L < 1 || t->L > 64 || t->NH < 1 || t->C < 1 || t->C % t->NH || t->F < 1 || t->T < 1 || t->I == 0 ||
        nf < 0 || nf > 4e9 || (t->use_types && t->n_types == 0))
        return shelf__model_fail(m, SHELF_ECORRUPT, "bad hyperparameters in the manifest");
    if (nf > 0) {
        int nd = 0;
        int64_t sh[4];
        const uint64_t *off = shelf_bundle_get(bd, "feat_off", SHELF_DT_U64, &nd, sh);
        if (!off || nd != 1 || sh[0] != (int64_t)t->I + 1 || off[0] != 0)
            return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks the item feature lists (feat_off)");
        const uint32_t *col = NULL;
        if (off[t->I]) {
            col = shelf_bundle_get(bd, "feat_col", SHELF_DT_U32, &nd, sh);
            if (!col || nd != 1 || (uint64_t)sh[0] != off[t->I])
                return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks the item feature lists (feat_col)");
        }
        for (uint32_t i = 0; i < t->I; i++)
            if (off[i + 1] < off[i] || off[i + 1] > off[t->I])
                return shelf__model_fail(m, SHELF_ECORRUPT, "feat_off is not ascending at item %u", i);
        for (uint64_t k = 0; k < off[t->I]; k++)
            if (col[k] >= nf) return shelf__model_fail(m, SHELF_ECORRUPT, "feature id out of range in feat_col");
        t->feat_off = malloc(((size_t)t->I + 1) * sizeof *t->feat_off);
        t->feat_col = malloc((off[t->I] + 1) * sizeof *t->feat_col);
        if (!t->feat_off || !t->feat_col) {
            tf_free_arrays(t);
            return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
        }
        memcpy(t->feat_off, off, ((size_t)t->I + 1) * sizeof *off);
        if (off[t->I]) memcpy(t->feat_col, col, off[t->I] * sizeof *col);
        t->n_feats = (uint32_t)nf;
        const uint32_t *raw = shelf_bundle_get(bd, "feat_raw", SHELF_DT_U32, &nd, sh);
        if (raw && nd == 1 && sh[0] == (int64_t)nf && (t->feat_raw = malloc((size_t)nf * sizeof *raw)))
            memcpy(t->feat_raw, raw, (size_t)nf * sizeof *raw);
    }
    const double hd = shelf_bundle_num(bd, "text_dim", 0);
    if (hd > 0) {
        int nd = 0;
        int64_t sh[4];
        const float *tv = shelf_bundle_get(bd, "text_vec", SHELF_DT_F32, &nd, sh);
        if (!tv || nd != 2 || sh[0] != (int64_t)t->I || (double)sh[1] != hd) {
            tf_free_arrays(t);
            return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks the item text vectors (text_vec)");
        }
        t->H = (uint32_t)hd;
        t->tvec = malloc((size_t)t->I * t->H * sizeof *t->tvec);
        if (!t->tvec) {
            tf_free_arrays(t);
            return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
        }
        memcpy(t->tvec, tv, (size_t)t->I * t->H * sizeof *t->tvec);
    }
    shelf_err err = {0};
    int rc = build_params(t, &err);
    if (rc) {
        tf_free_arrays(t);
        return shelf__model_fail(m, rc, "%s", err.msg);
    }
    for (size_t i = 0; i < t->p->n_tensors; i++) {
        const shelf_param_info *in = &t->p->info[i];
        int nd = 0;
        int64_t sh[4];
        const float *d = shelf_bundle_get(bd, in->name, SHELF_DT_F32, &nd, sh);
        int ok = d && nd == in->ndim;
        for (int k = 0; ok && k < nd; k++) ok = sh[k] == in->shape[k];
        if (!ok) { /* the message first: in->name lives in t->p, which tf_free_arrays frees */
            rc = shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor '%s' of the expected shape", in->name);
            tf_free_arrays(t);
            return rc;
        }
        memcpy(shelf_params_data(t->p, i), d, in->numel * sizeof *d);
    }
    items_forward(t);
    return 0;
}

static void tf_free(shelf_model *m)
{
    tf_model *t = (tf_model *)m;
    tf_free_arrays(t);
    free(t);
}

/* the item representations E (ids and features) as the item vectors */
static const float *tf_item_vectors(const shelf_model *m, uint32_t *dim)
{
    const tf_model *t = (const tf_model *)m;
    *dim = (uint32_t)t->C;
    return t->E;
}

/* the vtable and what registry.c needs to make one (models_int.h) */
SHELF__MODEL_KIND(transformer, tf, "transformer",
                  SHELF_CAP_EXPLAIN | SHELF_CAP_SIMILAR | SHELF_CAP_SESSION | SHELF_CAP_NEEDS_HISTORY |
                      SHELF_CAP_ITEM_VECTORS,
                  /* observe */ NULL, /* explain */ tf_explain, /* predict */ NULL, SHELF__SESSION_OPS(tf),
                  .item_vectors = tf_item_vectors, .score_many = tf_score_many);
