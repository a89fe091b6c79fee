/* transformer.c: the transformer profile model, first slice: an id-only
 * SASRec-style model (DESIGN.md "The transformer profile model"). Models room;
 * built from the nn/ kernels (nn.h, attention.h, optim.h).
 *
 * Each position of a user's (left-padded) sequence is the item's id embedding
 * plus a learned position embedding (position t of the window of tf-maxlen,
 * so the newest item is always at T-1); then embedding dropout, tf-layers
 * pre-LayerNorm causal blocks
 *   x += drop(proj(MHA(qkv(LN1(x)))));  x += drop(fc2(GELU(fc1(LN2(x)))))
 * and a final LayerNorm. Scores are dot products of the last position's
 * hidden state with the item embeddings (tied weights). Training: every
 * position of every training sequence predicts the next item with full
 * softmax cross-entropy over the catalogue (logits through one cblas_sgemm),
 * AdamW with linear warm-up then cosine decay, global gradient clipping,
 * batches of users shuffled with the seed.
 *
 * Epochs: tf-patience 0 (default) trains exactly tf-epochs epochs on the whole
 * training sequences. tf-patience P > 0 holds out each training sequence's
 * last item as an internal validation target (trains on the rest), measures
 * NDCG@10 of it after every epoch (history filtered, like LOO-FULL) and stops
 * after P epochs without improvement, keeping the best epoch's parameters.
 * The model then never trains on those last items (no refit): a known,
 * simple limitation of this slice.
 *
 * Not yet here (issue 4): item features, behaviour-type and time-gap
 * embeddings, sampled softmax / BCE losses, KV-cache serving, progress bar.
 *
 * Cost. A batch is cut to its longest row's length (exact: the newest item
 * keeps position id T-1 and padding never reaches a real row); with tf-bucket
 * (default) batches hold users of similar length, so short-history data does
 * not pay for maxlen positions (Beauty: ~7 instead of ~44 positions per
 * batch, 2.1x faster per epoch). Only rows with a target enter the
 * catalogue product and the softmax.
 *
 * Reproducible for a seed and thread count: the shuffle and dropout masks are
 * drawn serially from one RNG and the kernels do not depend on scheduling.
 * Dimension letters: B batch (users), T positions, N = B*T rows, C width,
 * F feed-forward width, NH heads, L layers, I items. */
#include "models/models_int.h"
#include "models/transformer_int.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "shelf/attention.h"
#include "shelf/nn.h"
#include "shelf/optim.h"

#undef I /* <complex.h>, pulled in by cblas.h, defines I */

/* per-layer tensors, in the order they are declared */
enum { P_LN1W, P_LN1B, P_QKVW, P_QKVB, P_PROJW, P_PROJB, P_LN2W, P_LN2B, P_FC1W, P_FC1B, P_FC2W, P_FC2B, P_PER_LAYER };
static const char *const layer_names[P_PER_LAYER] = {"ln1.w", "ln1.b", "qkv.w", "qkv.b", "proj.w", "proj.b",
                                                     "ln2.w", "ln2.b", "fc1.w", "fc1.b", "fc2.w", "fc2.b"};

typedef struct tf_model {
    shelf_model base;
    int L, NH, C, F, T;
    uint32_t I;
    float dropout;
    shelf_params *p;
    size_t i_wte, i_wpe, i_lnfw, i_lnfb;
    size_t *li; /* [L * P_PER_LAYER] tensor rows */
} tf_model;

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
    int64_t sh[2];
    sh[0] = t->I, sh[1] = C;
    rc = shelf_params_add(t->p, "wte", 2, sh, 0, &t->i_wte, err);
    sh[0] = t->T;
    if (!rc) rc = shelf_params_add(t->p, "wpe", 2, sh, 0, &t->i_wpe, err);
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
    return rc;
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
    float *emb;      /* [N,C] wte + wpe, before dropout */
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

/* ---- forward / backward --------------------------------------------------------- */

/* A batch: idx[N] item ids (PAD on the left), pos[N] position ids (PAD where
 * idx is; the newest item of a row is always at position id T_model-1, so a
 * batch cut to fewer positions computes exactly what the full window would:
 * padding never reaches a real row), pad_len[B]. */
typedef struct tf_batch {
    int B;
    int T; /* positions in this batch: the longest row's (<= the model's T);
              rows are [B,T], so a batch of short sequences costs less */
    uint32_t *idx, *pos, *tgt;
    int *pad_len;
    uint32_t *row, *tc; /* [N] the rows with a target and their targets */
} tf_batch;

/* Runs the blocks and the final LayerNorm over a batch: a->lnf [N,C]. With
 * rng == NULL dropout is off (inference). */
static void tf_forward(const tf_model *t, tf_acts *a, const tf_batch *b, shelf_rng *rng)
{
    const int B = b->B, T = b->T, C = t->C, F = t->F, NH = t->NH;
    const size_t N = (size_t)B * T;
    const float p = rng ? t->dropout : 0.0f;
    shelf_nn_embedding_forward(a->emb, b->idx, shelf_params_data(t->p, t->i_wte), N, C);
    shelf_nn_embedding_forward(a->x[0], b->pos, shelf_params_data(t->p, t->i_wpe), N, C);
    shelf_nn_residual_forward(a->emb, a->emb, a->x[0], N * C);
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

/* Loss of a batch after tf_forward. Only the rows with a target take part:
 * their final hidden states are gathered into hc[Nv,C] (on short-history
 * data such as Beauty most rows of a maxlen-50 window are padding, and the
 * catalogue product dominates the step), logits[Nv,I] = hc . wte^T, mean
 * softmax cross-entropy over those rows. With backward, the parameter
 * gradients ACCUMULATE (zero them first) and logits is overwritten by its
 * gradient. losses[N], lse[N] work space. */
static float tf_loss_backward(const tf_model *t, tf_acts *a, const tf_batch *b, float *logits, float *losses,
                              float *lse, int backward)
{
    const int B = b->B, T = b->T, C = t->C, F = t->F, NH = t->NH;
    const size_t N = (size_t)B * T, I = t->I;
    const float p = t->dropout;
    const float *wte = shelf_params_data(t->p, t->i_wte);
    size_t Nv = 0;
    for (size_t n = 0; n < N; n++) {
        if (b->tgt[n] == SHELF_NN_PAD) continue;
        memcpy(a->hc + Nv * C, a->lnf + n * C, (size_t)C * sizeof(float));
        b->row[Nv] = (uint32_t)n;
        b->tc[Nv++] = b->tgt[n];
    }
    if (Nv == 0) return 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Nv, (int)I, C, 1.0f, a->hc, C, wte, C, 0.0f, logits,
                (int)I);
    float loss = shelf_nn_softmax_ce_forward(losses, lse, logits, b->tc, Nv, I);
    if (!backward) return loss;
    shelf_nn_softmax_ce_backward(logits, logits, lse, b->tc, 1.0f, Nv, I);
    /* dhc = dlogits . wte, scattered back to the rows; dwte += dlogits^T . hc */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Nv, C, (int)I, 1.0f, logits, (int)I, wte, C, 0.0f,
                a->dc2, C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)I, C, (int)Nv, 1.0f, logits, (int)I, a->hc, C, 1.0f,
                shelf_params_grad(t->p, t->i_wte), C);
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
    shelf_nn_embedding_backward(shelf_params_grad(t->p, t->i_wte), a->dc1, b->idx, N, C);
    shelf_nn_embedding_backward(shelf_params_grad(t->p, t->i_wpe), a->dc1, b->pos, N, C);
    return loss;
}

/* Fills row r of the batch from items[0..n) (the last b->T of them), left
 * padded; targets from tgt[0..n) when tgt is not NULL. Set b->T first. */
static void batch_row(const tf_model *t, tf_batch *b, int r, const uint32_t *items, const uint32_t *tgt, size_t n)
{
    const int T = b->T, shift = t->T - b->T;
    if (n > (size_t)T) {
        items += n - T;
        if (tgt) tgt += n - T;
        n = T;
    }
    const int pad = T - (int)n;
    b->pad_len[r] = pad;
    for (int k = 0; k < T; k++) {
        size_t o = (size_t)r * T + k;
        if (k < pad) {
            b->idx[o] = b->pos[o] = b->tgt[o] = SHELF_NN_PAD;
        } else {
            b->idx[o] = items[k - pad];
            b->pos[o] = (uint32_t)(k + shift);
            b->tgt[o] = tgt ? tgt[k - pad] : SHELF_NN_PAD;
        }
    }
}

static int batch_alloc(tf_batch *b, int B, int T)
{
    size_t N = (size_t)B * T;
    b->B = B;
    b->T = T;
    b->idx = malloc(N * sizeof *b->idx);
    b->pos = malloc(N * sizeof *b->pos);
    b->tgt = malloc(N * sizeof *b->tgt);
    b->pad_len = malloc((size_t)B * sizeof *b->pad_len);
    b->row = malloc(N * sizeof *b->row);
    b->tc = malloc(N * sizeof *b->tc);
    return b->idx && b->pos && b->tgt && b->pad_len && b->row && b->tc ? 0 : SHELF_ENOMEM;
}

static void batch_free(tf_batch *b)
{
    free(b->idx);
    free(b->pos);
    free(b->tgt);
    free(b->pad_len);
    free(b->row);
    free(b->tc);
}

/* ---- test hooks ----------------------------------------------------------------- */

/* declared in transformer_int.h */
shelf_params *shelf__transformer_params(shelf_model *m) { return ((tf_model *)m)->p; }

float shelf__transformer_batch_loss(shelf_model *m, const uint32_t *seq, int B, int len, int backward,
                                    shelf_rng *rng)
{
    tf_model *t = (tf_model *)m;
    const size_t N = (size_t)B * t->T;
    tf_batch b;
    tf_acts *a = acts_new(t, B, 1);
    float *logits = malloc(N * t->I * sizeof *logits);
    float *ls = malloc(2 * N * sizeof *ls);
    float loss = NAN;
    if (!batch_alloc(&b, B, t->T) && a && logits && ls) {
        b.T = len - 1 < t->T ? len - 1 : t->T;
        for (int r = 0; r < B; r++) batch_row(t, &b, r, seq + (size_t)r * len, seq + (size_t)r * len + 1, len - 1);
        tf_forward(t, a, &b, rng);
        loss = tf_loss_backward(t, a, &b, logits, ls, ls + N, backward);
    }
    batch_free(&b);
    acts_free(a);
    free(logits);
    free(ls);
    return loss;
}

/* ---- fit ---------------------------------------------------------------------- */

static void tf_free_arrays(tf_model *t)
{
    shelf_params_free(t->p);
    t->p = NULL;
    free(t->li);
    t->li = NULL;
}

/* Hyperparameters -> t (without allocating). */
static int read_opts(tf_model *t, const shelf_opts *o, uint32_t I)
{
    t->L = (int)shelf_config_int(o, "tf-layers");
    t->NH = (int)shelf_config_int(o, "tf-heads");
    t->C = (int)shelf_config_int(o, "tf-dim");
    t->F = (int)shelf_config_int(o, "tf-ffn");
    if (t->F == 0) t->F = 4 * t->C;
    t->T = (int)shelf_config_int(o, "tf-maxlen");
    t->dropout = (float)shelf_config_double(o, "tf-dropout");
    t->I = I;
    if (t->C % t->NH)
        return shelf__model_fail(&t->base, SHELF_EINVAL, "tf-dim %d is not a multiple of tf-heads %d", t->C, t->NH);
    return 0;
}

/* NDCG@10 of each sequence's held-out last item given the items before it
 * (history items removed from the ranking, ties pessimistic), mean over the
 * users in users[0..n). */
static double internal_ndcg(const tf_model *t, const shelf_snapshot *s, const uint32_t *users, size_t n, int Bmax,
                            tf_acts *a, tf_batch *b, float *scores)
{
    const int T = t->T, C = t->C;
    const uint32_t I = t->I;
    const float *wte = shelf_params_data(t->p, t->i_wte);
    double sum = 0;
    for (size_t s0 = 0; s0 < n; s0 += Bmax) {
        int B = (int)(n - s0 < (size_t)Bmax ? n - s0 : (size_t)Bmax);
        b->B = B;
        b->T = 1;
        for (int r = 0; r < B; r++) {
            uint64_t n_in = shelf_snapshot_seq_len(s, users[s0 + r]) - 1;
            if (n_in > (uint64_t)b->T) b->T = n_in < (uint64_t)T ? (int)n_in : T;
        }
        for (int r = 0; r < B; r++) {
            uint32_t u = users[s0 + r];
            const uint32_t *seq = s->seq_item + s->seq_off[u];
            batch_row(t, b, r, seq, NULL, shelf_snapshot_seq_len(s, u) - 1);
        }
        tf_forward(t, a, b, NULL);
        /* scores[B,I] = lnf[last rows] . wte^T, the last rows strided by T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, (int)I, C, 1.0f, a->lnf + (size_t)(b->T - 1) * C,
                    b->T * C, wte, C, 0.0f, scores, (int)I);
        for (int r = 0; r < B; r++) {
            uint32_t u = users[s0 + r];
            const uint32_t *seq = s->seq_item + s->seq_off[u];
            uint64_t len = shelf_snapshot_seq_len(s, u);
            float *sc = scores + (size_t)r * I;
            uint32_t target = seq[len - 1];
            float ts = sc[target];
            for (uint64_t k = 0; k + 1 < len; k++)
                if (seq[k] != target) sc[seq[k]] = -INFINITY;
            size_t rank = 1;
            for (uint32_t i = 0; i < I && rank <= 10; i++)
                if (i != target && sc[i] >= ts) rank++;
            if (rank <= 10) sum += 1.0 / log2((double)rank + 1.0);
        }
    }
    return n ? sum / (double)n : 0.0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Length bucketing (tf-bucket): users (already shuffled) are ordered by their
 * input length (capped at T; ties keep the shuffled order), cut into batches
 * of Bmax, and the batches are shuffled. A batch then costs its own longest
 * row rather than about T positions (Beauty: 7 instead of 44 on average). */
static void bucket_users(uint32_t *users, size_t n, const shelf_snapshot *s, int T, int Bmax, shelf_rng *rng,
                         uint64_t *keys)
{
    for (size_t k = 0; k < n; k++) {
        uint64_t len = shelf_snapshot_seq_len(s, users[k]);
        if (len > (uint64_t)T + 1) len = (uint64_t)T + 1;
        keys[k] = len << 40 | (uint64_t)k; /* k < 2^32 users: the sort is stable */
    }
    qsort(keys, n, sizeof *keys, cmp_u64);
    const size_t n_b = (n + Bmax - 1) / Bmax;
    uint32_t *sorted = malloc(n * sizeof *sorted);
    uint32_t *perm = malloc(n_b * sizeof *perm);
    if (!sorted || !perm) { /* out of memory: keep the plain shuffle */
        free(sorted);
        free(perm);
        return;
    }
    for (size_t k = 0; k < n; k++) sorted[k] = users[keys[k] & ((1ull << 40) - 1)];
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
        for (size_t j = b0; j < b1; j++) users[o++] = sorted[j];
    }
    free(sorted);
    free(perm);
}

static int tf_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    (void)pr;
    tf_model *t = (tf_model *)m;
    const uint32_t U = s->n_users;
    if (s->n_items == 0 || s->n_events == 0)
        return shelf__model_fail(m, SHELF_EINVAL, "nothing to learn (%u users, %u items)", U, s->n_items);
    tf_free_arrays(t);
    m->fitted = 0;
    int rc = read_opts(t, o, s->n_items);
    if (rc) return rc;
    const int epochs = (int)shelf_config_int(o, "tf-epochs");
    const int Bmax = (int)shelf_config_int(o, "tf-batch");
    const int patience = (int)shelf_config_int(o, "tf-patience");
    const double clip = shelf_config_double(o, "tf-clip");
    const char *log_path = shelf_config_str(o, "tf-log");
    const uint64_t seed = (uint64_t)shelf_config_int(o, "seed");
    const shelf_adamw adam = {0.9f, 0.999f, 1e-8f, (float)shelf_config_double(o, "tf-wd")};
    const int T = t->T;
    const size_t N = (size_t)Bmax * T;
    const int hold = patience > 0; /* internal validation: last item held out */
    const int bucket = shelf_config_bool(o, "tf-bucket");

    /* training users: those with at least one next-item pair to learn */
    uint32_t *users = malloc((size_t)U * sizeof *users);
    uint32_t *vusers = malloc((size_t)U * sizeof *vusers);
    uint64_t *keys = malloc((size_t)U * sizeof *keys);
    size_t n_users = 0, n_vusers = 0;
    if (!users || !vusers || !keys) {
        free(users);
        free(vusers);
        free(keys);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    }
    for (uint32_t u = 0; u < U; u++) {
        uint64_t len = shelf_snapshot_seq_len(s, u);
        if (len >= (uint64_t)(2 + hold)) users[n_users++] = u;
        if (hold && len >= 2) vusers[n_vusers++] = u;
    }
    if (n_users == 0) {
        free(users);
        free(vusers);
        free(keys);
        return shelf__model_fail(m, SHELF_EINVAL, "no training sequence has two items");
    }

    shelf_err err = {0};
    rc = build_params(t, &err);
    if (rc) {
        free(users);
        free(vusers);
        free(keys);
        return shelf__model_fail(m, rc, "%s", err.msg);
    }
    shelf_rng rng;
    shelf_rng_seed(&rng, seed);
    init_params(t, &rng);

#ifdef _OPENMP
    const int old_threads = omp_get_max_threads();
    omp_set_num_threads(shelf__model_threads(o));
#endif
    tf_batch b = {0};
    tf_acts *a = acts_new(t, Bmax, 1);
    float *logits = malloc(N * t->I * sizeof *logits);
    float *ls = malloc(2 * N * sizeof *ls);
    float *best = hold ? malloc(t->p->n_floats * sizeof *best) : NULL;
    FILE *log = NULL;
    if (batch_alloc(&b, Bmax, T) || !a || !logits || !ls || (hold && !best)) {
        rc = shelf__model_fail(m, SHELF_ENOMEM, "out of memory (batch %d x %d, %u items)", Bmax, T, t->I);
        goto done;
    }
    if (log_path && *log_path && !(log = fopen(log_path, "w"))) {
        rc = shelf__model_fail(m, SHELF_EIO, "cannot write the training log '%s'", log_path);
        goto done;
    }

    const int64_t steps_per_epoch = (int64_t)((n_users + Bmax - 1) / Bmax);
    shelf_lr_schedule sched = {.lr_max = (float)shelf_config_double(o, "tf-lr"),
                               .lr_min = 0.0f,
                               .warmup = shelf_config_int(o, "tf-warmup"),
                               .total = steps_per_epoch * epochs,
                               .decay = SHELF_LR_COSINE};
    int64_t step = 0;
    double best_ndcg = -1.0;
    int best_epoch = 0, since_best = 0;
    for (int ep = 1; ep <= epochs; ep++) {
        double t0 = shelf_now();
        for (size_t k = n_users; k > 1; k--) { /* Fisher-Yates */
            size_t j = shelf_rng_below(&rng, (uint32_t)k);
            uint32_t tmp = users[k - 1];
            users[k - 1] = users[j];
            users[j] = tmp;
        }
        if (bucket) bucket_users(users, n_users, s, T, Bmax, &rng, keys);
        double loss_sum = 0;
        int64_t n_steps = 0, n_skipped = 0;
        for (size_t s0 = 0; s0 < n_users; s0 += Bmax) {
            int B = (int)(n_users - s0 < (size_t)Bmax ? n_users - s0 : (size_t)Bmax);
            b.B = B;
            b.T = 1;
            for (int r = 0; r < B; r++) {
                uint64_t n_in = shelf_snapshot_seq_len(s, users[s0 + r]) - hold - 1;
                if (n_in > (uint64_t)b.T) b.T = n_in < (uint64_t)T ? (int)n_in : T;
            }
            for (int r = 0; r < B; r++) {
                uint32_t u = users[s0 + r];
                const uint32_t *seq = s->seq_item + s->seq_off[u];
                uint64_t len = shelf_snapshot_seq_len(s, u) - hold;
                batch_row(t, &b, r, seq, seq + 1, len - 1);
            }
            shelf_params_zero_grad(t->p);
            tf_forward(t, a, &b, &rng);
            float loss = tf_loss_backward(t, a, &b, logits, ls, ls + (size_t)B * T, 1);
            double norm = shelf_params_clip_grad_norm(t->p, clip);
            if (!isfinite(norm)) {
                n_skipped++;
            } else {
                shelf_adamw_step(t->p, &adam, shelf_lr_at(&sched, step), step + 1);
            }
            step++;
            loss_sum += loss;
            n_steps++;
        }
        double secs = shelf_now() - t0;
        double mean_loss = n_steps ? loss_sum / (double)n_steps : 0.0;
        double ndcg = -1.0;
        if (hold) {
            b.B = Bmax;
            /* logits doubles as the [B,I] score buffer */
            ndcg = internal_ndcg(t, s, vusers, n_vusers, Bmax, a, &b, logits);
            if (ndcg > best_ndcg) {
                best_ndcg = ndcg;
                best_epoch = ep;
                since_best = 0;
                memcpy(best, t->p->params, t->p->n_floats * sizeof *best);
            } else {
                since_best++;
            }
            shelf_info("transformer: epoch %d loss %.4f internal ndcg@10 %.4f (%.1f s)%s", ep, mean_loss, ndcg, secs,
                       n_skipped ? " (non-finite steps skipped)" : "");
        } else {
            shelf_info("transformer: epoch %d loss %.4f (%.1f s)%s", ep, mean_loss, secs,
                       n_skipped ? " (non-finite steps skipped)" : "");
        }
        if (log) {
            fprintf(log, "{\"epoch\":%d,\"loss\":%.6f,\"seconds\":%.3f,\"steps\":%lld,\"lr\":%.6g", ep, mean_loss,
                    secs, (long long)n_steps, (double)shelf_lr_at(&sched, step - 1));
            if (hold) fprintf(log, ",\"valid_ndcg10\":%.6f", ndcg);
            fprintf(log, "}\n");
            fflush(log);
        }
        if (hold && since_best >= patience) break;
    }
    if (hold && best_epoch > 0) {
        memcpy(t->p->params, best, t->p->n_floats * sizeof *best);
        shelf_info("transformer: kept epoch %d (internal ndcg@10 %.4f)", best_epoch, best_ndcg);
    }
    m->n_users = U;
    m->n_items = t->I;
done:
#ifdef _OPENMP
    omp_set_num_threads(old_threads);
#endif
    if (log) fclose(log);
    free(best);
    free(users);
    free(vusers);
    free(keys);
    free(logits);
    free(ls);
    batch_free(&b);
    acts_free(a);
    if (rc) tf_free_arrays(t);
    return rc;
}

/* ---- score -------------------------------------------------------------------- */

/* scores = wte . h, h the final hidden state of the last position over the
 * query's last T history items. Allocates its own activations: safe from
 * many threads at once. */
static int tf_score(const shelf_model *m, const shelf_query *q, float *scores)
{
    const tf_model *t = (const tf_model *)m;
    tf_batch b;
    tf_acts *a = acts_new(t, 1, 0);
    int rc = batch_alloc(&b, 1, t->T);
    if (rc || !a) {
        batch_free(&b);
        acts_free(a);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory");
    }
    b.T = q->n == 0 ? 1 : q->n < (uint32_t)t->T ? (int)q->n : t->T;
    batch_row(t, &b, 0, q->items, NULL, q->n);
    tf_forward(t, a, &b, NULL);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)t->I, t->C, 1.0f, shelf_params_data(t->p, t->i_wte), t->C,
                a->lnf + (size_t)(b.T - 1) * t->C, 1, 0.0f, scores, 1);
    batch_free(&b);
    acts_free(a);
    return 0;
}

/* ---- save / load -------------------------------------------------------------- */

static int tf_save(const shelf_model *m, shelf_bundle_writer *w)
{
    const tf_model *t = (const tf_model *)m;
    int rc = 0;
    for (size_t i = 0; i < t->p->n_tensors && !rc; i++) {
        const shelf_param_info *in = &t->p->info[i];
        rc = shelf_bundle_put(w, in->name, SHELF_DT_F32, in->ndim, in->shape, shelf_params_data(t->p, i));
    }
    if (!rc) rc = shelf_bundle_set_num(w, "tf-layers", t->L);
    if (!rc) rc = shelf_bundle_set_num(w, "tf-heads", t->NH);
    if (!rc) rc = shelf_bundle_set_num(w, "tf-dim", t->C);
    if (!rc) rc = shelf_bundle_set_num(w, "tf-ffn", t->F);
    if (!rc) rc = shelf_bundle_set_num(w, "tf-maxlen", t->T);
    if (!rc) rc = shelf_bundle_set_num(w, "tf-dropout", t->dropout);
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
    t->I = m->n_items;
    if (t->L < 1 || t->L > 64 || t->NH < 1 || t->C < 1 || t->C % t->NH || t->F < 1 || t->T < 1 || t->I == 0)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bad hyperparameters in the manifest");
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
        if (!ok) {
            tf_free_arrays(t);
            return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor '%s' of the expected shape", in->name);
        }
        memcpy(shelf_params_data(t->p, i), d, in->numel * sizeof *d);
    }
    return 0;
}

static void tf_free(shelf_model *m)
{
    tf_model *t = (tf_model *)m;
    tf_free_arrays(t);
    free(t);
}

static const shelf_model_vt tf_vt = {
    .name = "transformer",
    .fit = tf_fit,
    .score = tf_score,
    .save = tf_save,
    .load = tf_load,
    .free = tf_free,
};

int shelf__model_transformer_new(shelf_model **out)
{
    tf_model *t = calloc(1, sizeof *t);
    if (!t) return SHELF_ENOMEM;
    t->base.vt = &tf_vt;
    *out = &t->base;
    return 0;
}
