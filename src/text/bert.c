/* bert.c: a BERT encoder for item text (inference only, float32): loads
 * Hugging Face BertModel weights from safetensors and mean-pools the last
 * layer into one vector per text. Text room; uses the safetensors reader. */
#include "shelf/text.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/safetensors.h"
#include "core/assert_int.h"

/* Dimensions, once for the file: V vocabulary, P max positions, NT token
 * types, H hidden, NH heads, HS = H / NH head size, FF intermediate, L
 * layers, T tokens of one input. */

typedef struct bert_layer {
    const float *wq, *bq, *wk, *bk, *wv, *bv; /* [H,H], [H] (torch layout [out,in]) */
    const float *wo, *bo;                     /* attention.output.dense [H,H], [H] */
    const float *ln1w, *ln1b;                 /* attention.output.LayerNorm [H] */
    const float *wi, *bi;                     /* intermediate.dense [FF,H], [FF] */
    const float *wo2, *bo2;                   /* output.dense [H,FF], [H] */
    const float *ln2w, *ln2b;                 /* output.LayerNorm [H] */
} bert_layer;

struct shelf_bert {
    int V, P, NT, H, NH, FF, L;
    float eps;
    float *params; /* every weight, one buffer (copied out of the mapping) */
    const float *wte, *wpe, *wtt; /* [V,H], [P,H], [NT,H] */
    const float *lnw, *lnb;       /* embeddings.LayerNorm [H] */
    bert_layer *layer;            /* [L] */
};

size_t shelf_bert_dim(const shelf_bert *b) { return (size_t)b->H; }
size_t shelf_bert_max_len(const shelf_bert *b) { return (size_t)b->P; }

void shelf_bert_free(shelf_bert *b)
{
    if (!b) return;
    free(b->params);
    free(b->layer);
    free(b);
}

/* ==== loading ============================================================== */

/* The weights the model needs, in the order they are copied into params. */
typedef struct want {
    char name[96];  /* without the prefix */
    int ndim;
    int64_t shape[2];
    const float **dst;
} want;

static void want_set(want *w, const char *name, int ndim, int64_t d0, int64_t d1, const float **dst)
{
    snprintf(w->name, sizeof w->name, "%s", name);
    w->ndim = ndim;
    w->shape[0] = d0;
    w->shape[1] = d1;
    w->dst = dst;
}

static const shelf__st_tensor *find(const shelf__st_file *f, const char *prefix, const char *name)
{
    char key[160];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    return shelf__st_find(f, key);
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? "," : "", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* A tensor that must be there, F32, 1-D or 2-D; its shape into shape[2]. */
static int need(const shelf__st_file *f, const char *path, const char *prefix, const char *name, int ndim,
                int64_t *shape, shelf_err *err)
{
    const shelf__st_tensor *t = find(f, prefix, name);
    if (!t) return shelf_err_set(err, SHELF_ENOTFOUND, "%s: no tensor '%s%s'", path, prefix, name);
    if ((int)t->dt != (int)SHELF_DT_F32)
        return shelf_err_set(err, SHELF_EVERSION, "%s: tensor '%s%s' is %s, only F32 is supported", path, prefix,
                             name, (int)t->dt < 0 ? "F16/BF16/F64 or another unsupported dtype"
                                                  : shelf__dtype_name(t->dt));
    if (t->ndim != ndim) {
        char s[64];
        shape_str(s, sizeof s, t->ndim, t->shape);
        return shelf_err_set(err, SHELF_EFORMAT, "%s: tensor '%s%s' has shape %s, expected rank %d", path, prefix,
                             name, s, ndim);
    }
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] < 1 || t->shape[d] > (1 << 24))
            return shelf_err_set(err, SHELF_EFORMAT, "%s: tensor '%s%s': dimension %lld out of range", path,
                                 prefix, name, (long long)t->shape[d]);
    for (int d = 0; d < ndim; d++) shape[d] = t->shape[d];
    return 0;
}

/* Heads (and eps, hidden_act, when the config gives them) from config.json
 * in the folder of path. */
static int read_config(const char *path, int *n_heads, float *eps, shelf_err *err)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0;
    char *cpath = malloc(dl + sizeof "config.json");
    if (!cpath) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    memcpy(cpath, path, dl);
    memcpy(cpath + dl, "config.json", sizeof "config.json");

    int rc = 0;
    char *text = NULL;
    cJSON *j = NULL;
    FILE *fp = fopen(cpath, "rb");
    if (!fp) {
        rc = shelf_err_set(err, SHELF_ENOTFOUND, "%s: cannot open (needed for the head count; or pass n_heads)",
                           cpath);
        goto done;
    }
    long len = -1;
    if (fseek(fp, 0, SEEK_END) == 0) len = ftell(fp);
    if (len < 0 || len > (1L << 24) || fseek(fp, 0, SEEK_SET) != 0) {
        rc = shelf_err_set(err, SHELF_EIO, "%s: cannot read", cpath);
        goto done;
    }
    if (!(text = malloc((size_t)len + 1))) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        goto done;
    }
    if (fread(text, 1, (size_t)len, fp) != (size_t)len) {
        rc = shelf_err_set(err, SHELF_EIO, "%s: cannot read", cpath);
        goto done;
    }
    text[len] = '\0';
    if (!(j = cJSON_Parse(text)) || !cJSON_IsObject(j)) {
        rc = shelf_err_set(err, SHELF_EFORMAT, "%s: not a JSON object", cpath);
        goto done;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "num_attention_heads");
    if (!cJSON_IsNumber(h) || h->valuedouble < 1 || h->valuedouble > 4096 || h->valuedouble != (int)h->valuedouble) {
        rc = shelf_err_set(err, SHELF_EFORMAT, "%s: needs a positive integer \"num_attention_heads\"", cpath);
        goto done;
    }
    *n_heads = (int)h->valuedouble;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_eps");
    if (e) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble > 0) || e->valuedouble > 1e-2) {
            rc = shelf_err_set(err, SHELF_EFORMAT, "%s: bad \"layer_norm_eps\"", cpath);
            goto done;
        }
        *eps = (float)e->valuedouble;
    }
    /* what this encoder computes: the erf GELU, absolute positions */
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu") != 0)) {
        rc = shelf_err_set(err, SHELF_EVERSION, "%s: hidden_act \"%s\" is not supported (only \"gelu\", erf)", cpath,
                           cJSON_IsString(act) ? act->valuestring : "?");
        goto done;
    }
    const cJSON *pe = cJSON_GetObjectItemCaseSensitive(j, "position_embedding_type");
    if (pe && (!cJSON_IsString(pe) || strcmp(pe->valuestring, "absolute") != 0)) {
        rc = shelf_err_set(err, SHELF_EVERSION, "%s: position_embedding_type \"%s\" is not supported (only absolute)",
                           cpath, cJSON_IsString(pe) ? pe->valuestring : "?");
        goto done;
    }
done:
    cJSON_Delete(j);
    free(text);
    if (fp) fclose(fp);
    free(cpath);
    return rc;
}

/* Number of layers: one more than the largest N of "<prefix>encoder.layer.N.". */
static int count_layers(const shelf__st_file *f, const char *prefix)
{
    char head[64];
    snprintf(head, sizeof head, "%sencoder.layer.", prefix);
    size_t hl = strlen(head);
    long L = 0;
    for (size_t i = 0; i < f->n; i++) {
        const char *s = f->t[i].name;
        if (strncmp(s, head, hl) != 0) continue;
        char *end;
        long n = strtol(s + hl, &end, 10);
        if (end != s + hl && *end == '.' && n >= 0 && n < 100000 && n + 1 > L) L = n + 1;
    }
    return (int)L;
}

int shelf_bert_load(const char *path, int n_heads, shelf_bert **out, shelf_err *err)
{
    if (!path || !out || n_heads < 0) return shelf_err_set(err, SHELF_EINVAL, "bert: bad arguments");
    shelf__st_file f;
    memset(&f, 0, sizeof f);
    int rc = shelf__st_open(path, &f, err);
    if (rc) return rc;

    shelf_bert *b = calloc(1, sizeof *b);
    want *w = NULL;
    if (!b) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        goto fail;
    }
    b->eps = 1e-12f;
    b->NH = n_heads;
    if (n_heads == 0 && (rc = read_config(path, &b->NH, &b->eps, err))) goto fail;

    /* BertModel keys, or the same under "bert." (BertForMaskedLM & co.) */
    const char *prefix = "";
    if (!find(&f, "", "embeddings.word_embeddings.weight") && find(&f, "bert.", "embeddings.word_embeddings.weight"))
        prefix = "bert.";

    /* sizes from the embeddings and the first layer */
    int64_t s[2];
    if ((rc = need(&f, path, prefix, "embeddings.word_embeddings.weight", 2, s, err))) goto fail;
    b->V = (int)s[0];
    b->H = (int)s[1];
    if ((rc = need(&f, path, prefix, "embeddings.position_embeddings.weight", 2, s, err))) goto fail;
    b->P = (int)s[0];
    if ((rc = need(&f, path, prefix, "embeddings.token_type_embeddings.weight", 2, s, err))) goto fail;
    b->NT = (int)s[0];
    if (b->P < 2) {
        rc = shelf_err_set(err, SHELF_EFORMAT, "%s: %d positions, [CLS] and [SEP] need 2", path, b->P);
        goto fail;
    }
    if (b->H % b->NH != 0) {
        rc = shelf_err_set(err, SHELF_EINVAL, "%s: %d heads do not divide the hidden size %d", path, b->NH, b->H);
        goto fail;
    }
    b->L = count_layers(&f, prefix);
    if (b->L < 1) {
        rc = shelf_err_set(err, SHELF_ENOTFOUND, "%s: no tensor '%sencoder.layer.0.*'", path, prefix);
        goto fail;
    }
    if ((rc = need(&f, path, prefix, "encoder.layer.0.intermediate.dense.weight", 2, s, err))) goto fail;
    b->FF = (int)s[0];
    if (!(b->layer = calloc((size_t)b->L, sizeof *b->layer))) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        goto fail;
    }

    /* the list of what we need, with the shapes the sizes imply */
    const int H = b->H, FF = b->FF;
    size_t n_want = 5 + 16 * (size_t)b->L, k = 0;
    if (!(w = calloc(n_want, sizeof *w))) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        goto fail;
    }
    want_set(&w[k++], "embeddings.word_embeddings.weight", 2, b->V, H, &b->wte);
    want_set(&w[k++], "embeddings.position_embeddings.weight", 2, b->P, H, &b->wpe);
    want_set(&w[k++], "embeddings.token_type_embeddings.weight", 2, b->NT, H, &b->wtt);
    want_set(&w[k++], "embeddings.LayerNorm.weight", 1, H, 0, &b->lnw);
    want_set(&w[k++], "embeddings.LayerNorm.bias", 1, H, 0, &b->lnb);
    for (int l = 0; l < b->L; l++) {
        bert_layer *ly = &b->layer[l];
        char nm[96];
#define W(suffix, nd, d0, d1, dst)                                  \
    do {                                                            \
        snprintf(nm, sizeof nm, "encoder.layer.%d." suffix, l);     \
        want_set(&w[k++], nm, nd, d0, d1, dst);                     \
    } while (0)
        W("attention.self.query.weight", 2, H, H, &ly->wq);
        W("attention.self.query.bias", 1, H, 0, &ly->bq);
        W("attention.self.key.weight", 2, H, H, &ly->wk);
        W("attention.self.key.bias", 1, H, 0, &ly->bk);
        W("attention.self.value.weight", 2, H, H, &ly->wv);
        W("attention.self.value.bias", 1, H, 0, &ly->bv);
        W("attention.output.dense.weight", 2, H, H, &ly->wo);
        W("attention.output.dense.bias", 1, H, 0, &ly->bo);
        W("attention.output.LayerNorm.weight", 1, H, 0, &ly->ln1w);
        W("attention.output.LayerNorm.bias", 1, H, 0, &ly->ln1b);
        W("intermediate.dense.weight", 2, FF, H, &ly->wi);
        W("intermediate.dense.bias", 1, FF, 0, &ly->bi);
        W("output.dense.weight", 2, H, FF, &ly->wo2);
        W("output.dense.bias", 1, H, 0, &ly->bo2);
        W("output.LayerNorm.weight", 1, H, 0, &ly->ln2w);
        W("output.LayerNorm.bias", 1, H, 0, &ly->ln2b);
#undef W
    }
    SHELF_ASSERT(k == n_want);

    /* check every one (names the key and the shape it should have) */
    size_t total = 0;
    for (size_t i = 0; i < n_want; i++) {
        char es[64], gs[64];
        shape_str(es, sizeof es, w[i].ndim, w[i].shape);
        const shelf__st_tensor *t = find(&f, prefix, w[i].name);
        if (!t) {
            rc = shelf_err_set(err, SHELF_ENOTFOUND, "%s: no tensor '%s%s' (expected F32 %s)", path, prefix,
                               w[i].name, es);
            goto fail;
        }
        int64_t got[2];
        if ((rc = need(&f, path, prefix, w[i].name, w[i].ndim, got, err))) {
            if (rc == SHELF_EFORMAT) {
                shape_str(gs, sizeof gs, t->ndim, t->shape);
                rc = shelf_err_set(err, SHELF_EFORMAT, "%s: tensor '%s%s' has shape %s, expected %s", path, prefix,
                                   w[i].name, gs, es);
            }
            goto fail;
        }
        for (int d = 0; d < w[i].ndim; d++)
            if (got[d] != w[i].shape[d]) {
                shape_str(gs, sizeof gs, t->ndim, t->shape);
                rc = shelf_err_set(err, SHELF_EFORMAT, "%s: tensor '%s%s' has shape %s, expected %s", path, prefix,
                                   w[i].name, gs, es);
                goto fail;
            }
        total += (size_t)shelf__st_numel(t);
    }

    /* copy into one buffer: the mapping may leave F32 data unaligned, and
     * the file can be closed now */
    if (!(b->params = malloc(total * sizeof(float)))) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "out of memory (%zu weights)", total);
        goto fail;
    }
    float *p = b->params;
    for (size_t i = 0; i < n_want; i++) {
        const shelf__st_tensor *t = find(&f, prefix, w[i].name);
        size_t n = (size_t)shelf__st_numel(t);
        memcpy(p, t->data, n * sizeof(float));
        *w[i].dst = p;
        p += n;
    }
    free(w);
    shelf__st_close(&f);
    *out = b;
    return 0;

fail:
    free(w);
    shelf_bert_free(b);
    shelf__st_close(&f);
    return rc;
}

/* ==== forward ============================================================== */

/* y[T,N] = x[T,K] W^T + bias, W [N,K] (torch layout). */
static void linear_forward(float *y, const float *x, const float *W, const float *bias, int T, int N, int K)
{
    for (int t = 0; t < T; t++) memcpy(y + (size_t)t * N, bias, (size_t)N * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, x, K, W, K, 1.0f, y, N);
}

/* x[T,H] = LayerNorm(x + r) in place (r may be NULL), weight w, bias bb, eps;
 * statistics in double. */
static void add_layernorm_forward(float *x, const float *r, const float *w, const float *bb, int T, int H, float eps)
{
    for (int t = 0; t < T; t++) {
        float *xt = x + (size_t)t * H;
        if (r)
            for (int i = 0; i < H; i++) xt[i] += r[(size_t)t * H + i];
        double m = 0, v = 0;
        for (int i = 0; i < H; i++) m += xt[i];
        m /= H;
        for (int i = 0; i < H; i++) v += (xt[i] - m) * (xt[i] - m);
        v /= H;
        double rs = 1.0 / sqrt(v + (double)eps);
        for (int i = 0; i < H; i++) xt[i] = (float)((xt[i] - m) * rs) * w[i] + bb[i];
    }
}

/* x[n] = 0.5 x (1 + erf(x / sqrt 2)) in place (BERT's "gelu"). */
static void gelu_erf_forward(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

/* out[T,H] = softmax(q_h k_h^T / sqrt(HS)) v_h for each head h (columns
 * h*HS..), all tokens see all tokens; q, k, v [T,H]; S scratch [T,T]. */
static void attention_bidir_forward(float *out, const float *q, const float *k, const float *v, float *S, int T,
                                    int H, int NH)
{
    const int HS = H / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int h = 0; h < NH; h++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, q + h * HS, H, k + h * HS, H, 0.0f,
                    S, T);
        for (int t = 0; t < T; t++) {
            float *s = S + (size_t)t * T, mx = s[0], sum = 0.0f;
            for (int u = 1; u < T; u++) mx = s[u] > mx ? s[u] : mx;
            for (int u = 0; u < T; u++) sum += (s[u] = expf(s[u] - mx));
            float inv = 1.0f / sum;
            for (int u = 0; u < T; u++) s[u] *= inv;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, S, T, v + h * HS, H, 0.0f,
                    out + h * HS, H);
    }
}

int shelf_bert_encode(const shelf_bert *b, const uint32_t *ids, size_t n, uint32_t cls, uint32_t sep, float *out)
{
    if (!b || !out || (n && !ids)) return SHELF_EINVAL;
    const int H = b->H, FF = b->FF, NH = b->NH;
    if (n > (size_t)b->P - 2) n = (size_t)b->P - 2; /* truncated: [CLS] + n + [SEP] <= P */
    const int T = (int)n + 2;
    if (cls >= (uint32_t)b->V || sep >= (uint32_t)b->V) return SHELF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= (uint32_t)b->V) return SHELF_EINVAL;

    /* work space: x, q, k, v, ctx, tmp [T,H]; inter [T,FF]; S [T,T] */
    const size_t TH = (size_t)T * H;
    float *ws = malloc((6 * TH + (size_t)T * FF + (size_t)T * T) * sizeof(float));
    if (!ws) return SHELF_ENOMEM;
    float *x = ws, *q = x + TH, *k = q + TH, *v = k + TH, *ctx = v + TH, *tmp = ctx + TH;
    float *inter = tmp + TH, *S = inter + (size_t)T * FF;

    /* embeddings: word + position + token type 0, then LayerNorm */
    for (int t = 0; t < T; t++) {
        uint32_t id = t == 0 ? cls : t == T - 1 ? sep : ids[t - 1];
        const float *we = b->wte + (size_t)id * H, *pe = b->wpe + (size_t)t * H;
        for (int i = 0; i < H; i++) x[(size_t)t * H + i] = we[i] + pe[i] + b->wtt[i];
    }
    add_layernorm_forward(x, NULL, b->lnw, b->lnb, T, H, b->eps);

    /* post-LN blocks */
    for (int l = 0; l < b->L; l++) {
        const bert_layer *ly = &b->layer[l];
        linear_forward(q, x, ly->wq, ly->bq, T, H, H);
        linear_forward(k, x, ly->wk, ly->bk, T, H, H);
        linear_forward(v, x, ly->wv, ly->bv, T, H, H);
        attention_bidir_forward(ctx, q, k, v, S, T, H, NH);
        linear_forward(tmp, ctx, ly->wo, ly->bo, T, H, H);
        add_layernorm_forward(x, tmp, ly->ln1w, ly->ln1b, T, H, b->eps);
        linear_forward(inter, x, ly->wi, ly->bi, T, FF, H);
        gelu_erf_forward(inter, (size_t)T * FF);
        linear_forward(tmp, inter, ly->wo2, ly->bo2, T, H, FF);
        add_layernorm_forward(x, tmp, ly->ln2w, ly->ln2b, T, H, b->eps);
    }

    /* mean over every token (special ones included) */
    for (int i = 0; i < H; i++) {
        double acc = 0;
        for (int t = 0; t < T; t++) acc += x[(size_t)t * H + i];
        out[i] = (float)(acc / T);
    }
    free(ws);
    return 0;
}
