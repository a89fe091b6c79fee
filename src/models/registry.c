/* registry.c: the model registry and the checked wrappers of the vtable. */
#include "models_int.h"
#include "core/assert_int.h"
#include "core/config_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const struct {
    const char *name;
    const shelf__model_kind *kind;
} registry[] = {
    {"pop", &shelf__pop_kind},
    {"itemknn", &shelf__itemknn_kind},
    {"ease", &shelf__ease_kind},
    {"als", &shelf__als_kind},
    {"bpr", &shelf__bpr_kind},
    {"rating-mf", &shelf__rating_mf_kind},
    {"svdpp", &shelf__svdpp_kind},
    {"rating-text", &shelf__rating_text_kind},
    {"transformer", &shelf__transformer_kind},
    {"hybrid", &shelf__hybrid_kind},
};
#define N_MODELS (sizeof registry / sizeof registry[0])

const shelf_cfg_def *shelf__model_rows(size_t k, const char **name, size_t *n)
{
    if (k >= N_MODELS) return NULL;
    *name = registry[k].name;
    *n = registry[k].kind->n_opts;
    return registry[k].kind->opts;
}

const char *const *shelf_model_names(size_t *n)
{
    static const char *names[N_MODELS + 1];
    for (size_t i = 0; i < N_MODELS; i++) names[i] = registry[i].name;
    if (n) *n = N_MODELS;
    return names;
}

int shelf_model_new(const char *name, shelf_model **out, shelf_err *err)
{
    for (size_t i = 0; i < N_MODELS; i++) {
        if (strcmp(name, registry[i].name) != 0) continue;
        const shelf__model_kind *kind = registry[i].kind;
        SHELF_ASSERT(kind->size >= sizeof(shelf_model));
        shelf_model *m = calloc(1, kind->size);
        if (!m) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        m->vt = kind->vt;
        const shelf_model_vt *vt = m->vt;
        unsigned caps = vt->caps;
        /* the flags say what the table holds */
        SHELF_ASSERT(!(caps & SHELF_CAP_ONLINE) == !vt->observe);
        SHELF_ASSERT(!(caps & SHELF_CAP_EXPLAIN) == !vt->explain);
        SHELF_ASSERT(!(caps & SHELF_CAP_RATE) == !vt->predict);
        SHELF_ASSERT(!(caps & SHELF_CAP_SESSION) == !vt->session_begin);
        SHELF_ASSERT(!(caps & SHELF_CAP_ITEM_VECTORS) == !vt->item_vectors);
        SHELF_ASSERT(!vt->session_begin == !vt->session_append && !vt->session_begin == !vt->session_score &&
                     !vt->session_begin == !vt->session_free && !vt->session_begin == !vt->session_bytes);
        *out = m;
        return 0;
    }
    char list[256] = "";
    for (size_t i = 0; i < N_MODELS; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, registry[i].name, sizeof list - strlen(list) - 1);
    }
    return shelf_err_set(err, SHELF_ENOTFOUND, "unknown model '%s' (known: %s)", name, list);
}

void shelf_model_free(shelf_model *m)
{
    if (m) m->vt->free(m);
}

const char *shelf_model_name(const shelf_model *m) { return m->vt->name; }
const char *shelf_model_errmsg(const shelf_model *m) { return m->err.msg; }

static int put_err(const shelf_model *m, shelf_err *e, int code, const char *fmt, va_list ap)
{
    if (!e) return code;
    e->code = code;
    int n = snprintf(e->msg, sizeof e->msg, "%s: ", m->vt->name);
    if (n < 0 || (size_t)n >= sizeof e->msg) n = 0;
    vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, ap);
    return code;
}

int shelf__model_fail(const shelf_model *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_err(m, (shelf_err *)&m->err, code, fmt, ap);
    va_end(ap);
    return code;
}

int shelf__model_err(const shelf_model *m, shelf_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_err(m, err, code, fmt, ap);
    va_end(ap);
    return code;
}

int shelf__model_threads(const shelf_opts *o)
{
    int t = o ? (int)shelf_config_int(o, "threads") : 0;
#ifdef _OPENMP
    if (t <= 0) t = omp_get_max_threads();
#else
    if (t <= 0) t = 1;
#endif
    return t;
}

int shelf_model_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *p)
{
    if (!s || !o) return shelf__model_fail(m, SHELF_EINVAL, "fit needs a snapshot and options");
    int rc = m->vt->fit(m, s, o, p);
    m->valid_off = NULL;
    m->valid_item = NULL;
    if (rc == 0) {
        m->n_users = s->n_users;
        m->n_items = s->n_items;
        m->fitted = 1;
    }
    return rc;
}

void shelf_model_set_valid(shelf_model *m, const uint64_t *off, const uint32_t *item)
{
    m->valid_off = off && item ? off : NULL;
    m->valid_item = off && item ? item : NULL;
}

/* the query's user and history items are in range */
static int check_query(const shelf_model *m, const shelf_query *q, shelf_err *err)
{
    if (!m->fitted) return shelf__model_err(m, err, SHELF_EINVAL, "used before fit or load");
    if (q->user != SHELF_NONE && q->user >= m->n_users)
        return shelf__model_err(m, err, SHELF_EINVAL, "unknown user index %u (model has %u users)", q->user, m->n_users);
    for (uint32_t j = 0; j < q->n; j++)
        if (q->items[j] >= m->n_items)
            return shelf__model_err(m, err, SHELF_EINVAL, "history item %u at position %u is out of range (%u items)",
                                    q->items[j], j, m->n_items);
    return 0;
}

int shelf_model_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    int rc = check_query(m, q, err);
    return rc ? rc : m->vt->score(m, q, scores, err);
}

int shelf_model_score_many(const shelf_model *m, const shelf_query *qs, size_t n, float *scores, shelf_err *err)
{
    for (size_t k = 0; k < n; k++) {
        int rc = check_query(m, &qs[k], err);
        if (rc) return rc;
    }
    if (m->vt->score_many) return m->vt->score_many(m, qs, n, scores, err);
    for (size_t k = 0; k < n; k++) {
        int rc = m->vt->score(m, &qs[k], scores + k * m->n_items, err);
        if (rc) return rc;
    }
    return 0;
}

int shelf_model_observe(shelf_model *m, const shelf_event *e)
{
    if (!m->vt->observe) return shelf__model_fail(m, SHELF_EINVAL, "has no online update");
    if (!m->fitted) return shelf__model_fail(m, SHELF_EINVAL, "observe before fit or load");
    return m->vt->observe(m, e);
}

int shelf_model_explain(const shelf_model *m, const shelf_query *q, uint32_t item, shelf_reason *r, shelf_err *err)
{
    if (!m->vt->explain) return shelf__model_err(m, err, SHELF_EINVAL, "has no explanations");
    if (!m->fitted) return shelf__model_err(m, err, SHELF_EINVAL, "explain before fit or load");
    if (item >= m->n_items) return shelf__model_err(m, err, SHELF_EINVAL, "item %u out of range", item);
    return m->vt->explain(m, q, item, r, err);
}

int shelf_model_predict(const shelf_model *m, uint32_t user, uint32_t item, float *out, shelf_err *err)
{
    if (!m->vt->predict) return shelf__model_err(m, err, SHELF_EINVAL, "does not predict ratings");
    if (!m->fitted) return shelf__model_err(m, err, SHELF_EINVAL, "predict before fit or load");
    if (item >= m->n_items)
        return shelf__model_err(m, err, SHELF_EINVAL, "item %u out of range (%u items)", item, m->n_items);
    if (user != SHELF_NONE && user >= m->n_users)
        return shelf__model_err(m, err, SHELF_EINVAL, "unknown user index %u (model has %u users)", user, m->n_users);
    return m->vt->predict(m, user, item, out, err);
}

unsigned shelf_model_caps(const shelf_model *m) { return m->vt->caps; }

/* ---- sessions ---------------------------------------------------------------------------- */

struct shelf_session {
    const shelf_model *m;
    const shelf_model_vt *vt; /* static: free and bytes work after the model is gone */
    void *impl;
};

int shelf_session_begin(const shelf_model *m, const shelf_query *hist, shelf_session **out, shelf_err *err)
{
    if (!(m->vt->caps & SHELF_CAP_SESSION)) return shelf__model_err(m, err, SHELF_EINVAL, "has no sessions");
    shelf_query h = *hist;
    h.user = SHELF_NONE;
    int rc = check_query(m, &h, err);
    if (rc) return rc;
    shelf_session *s = malloc(sizeof *s);
    if (!s) return shelf__model_err(m, err, SHELF_ENOMEM, "out of memory");
    s->m = m;
    s->vt = m->vt;
    if ((rc = m->vt->session_begin(m, &h, &s->impl, err))) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int shelf_session_append(shelf_session *s, const shelf_query *hist, shelf_err *err)
{
    shelf_query h = *hist;
    h.user = SHELF_NONE;
    int rc = check_query(s->m, &h, err);
    return rc ? rc : s->m->vt->session_append(s->m, s->impl, &h, err);
}

int shelf_session_score(const shelf_session *s, float *scores, shelf_err *err)
{
    return s->m->vt->session_score(s->m, s->impl, scores, err);
}

size_t shelf_session_bytes(const shelf_session *s) { return sizeof *s + s->vt->session_bytes(s->impl); }

void shelf_session_free(shelf_session *s)
{
    if (!s) return;
    s->vt->session_free(s->impl);
    free(s);
}

uint32_t shelf_ctx_hash(const char *kv, size_t len) { return (uint32_t)XXH3_64bits(kv, len); }
