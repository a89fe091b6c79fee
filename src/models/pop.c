/* pop.c: popularity, the floor every model must beat. Models room. Counts
 * training interactions per item (distinct user-item pairs, or the sum of
 * event-type weights), optionally time-decayed: with pop-half-life h > 0 an
 * event of age a (before the newest timestamp) weighs 0.5^(a/h).
 * Scores ignore the user; ties are left as they are (the evaluator breaks
 * them pessimistically).
 * Default pop-count = pairs: on Beauty validation (LOO-FULL) pairs and
 * weights tie (HR@10 0.0157, NDCG@10 0.0078: no repeated items, one event
 * type); pairs is the reference row of BENCHMARKS.md and does not let one
 * user's repeated views inflate an item. The s3rec files carry no times, so
 * pop-half-life could not be tuned there and stays 0. */
#include "models/models_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400.0

/* pop's rows of the configuration table: its hyperparameters (config.c
 * joins every model's rows to the common ones) */
static const shelf_cfg_def opts[] = {
#include "models/opts/pop.def"
};

/* Decayed counts are kept relative to a reference time ref: an event at ts
 * adds w * 2^((ts - ref) / h). Scores are count * 2^((ref - newest) / h), so
 * that observe() is O(1) while time moves on; when the exponent of a new
 * event grows past RENORM_LOG2 the counts are rescaled to ref = newest. */
#define RENORM_LOG2 48.0

typedef enum { COUNT_PAIRS = 0, COUNT_WEIGHTS = 1 } count_mode;

typedef struct pop_model {
    shelf_model base;
    float *count;     /* [I] (decayed) counts relative to ref */
    double halflife;  /* days (the bundle's unit; the option is in seconds); 0: no decay */
    count_mode mode;
    /* times[0]: ref, the reference time of count[]; times[1]: the newest
     * event time seen (unix seconds). An array, saved as one tensor. */
    int64_t times[2];
    float *tw;        /* [n_tw] event-type weights (for observe) */
    uint32_t n_tw;
} pop_model;

#define REF(p) ((p)->times[0])
#define NEWEST(p) ((p)->times[1])

/* Weight factor 2^((ts - ref) / h) of an event at ts; 1 without decay. */
static double decay_factor(const pop_model *p, int64_t ts)
{
    if (p->halflife <= 0) return 1.0;
    return exp2((double)(ts - REF(p)) / (p->halflife * DAY));
}

/* Scale from count[] to the decayed count as of the newest event. */
static float scale_now(const pop_model *p)
{
    if (p->halflife <= 0) return 1.0f;
    return (float)exp2((double)(REF(p) - NEWEST(p)) / (p->halflife * DAY));
}

static void pop_free(shelf_model *m)
{
    pop_model *p = (pop_model *)m;
    if (!p) return;
    free(p->count);
    free(p->tw);
    free(p);
}

static int pop_fit(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, shelf_progress *pr)
{
    pop_model *p = (pop_model *)m;
    const uint32_t U = s->n_users, I = s->n_items;
    double hl = shelf_config_double(o, "pop-half-life") / DAY;
    const char *mode = shelf_config_str(o, "pop-count");
    count_mode cm = mode && strcmp(mode, "weights") == 0 ? COUNT_WEIGHTS : COUNT_PAIRS;

    float *count = calloc(I ? I : 1, sizeof *count);
    double *acc = calloc(I ? I : 1, sizeof *acc);
    float *tw = malloc((s->n_types ? s->n_types : 1) * sizeof *tw);
    if (!count || !acc || !tw) {
        free(count);
        free(acc);
        free(tw);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u items)", I);
    }
    for (uint32_t t = 0; t < s->n_types; t++) tw[t] = s->type_weight[t];

    int64_t newest = 0;
    for (uint64_t e = 0; e < s->n_events; e++)
        if (e == 0 || s->seq_ts[e] > newest) newest = s->seq_ts[e];
    p->halflife = hl;
    p->mode = cm;
    REF(p) = NEWEST(p) = newest;

    if (cm == COUNT_WEIGHTS) {
        /* every event: its type's weight, decayed by its age */
        for (uint64_t e = 0; e < s->n_events; e++) {
            uint32_t i = s->seq_item[e];
            if (i < I) acc[i] += s->seq_weight[e] * decay_factor(p, s->seq_ts[e]);
        }
    } else if (hl <= 0) {
        /* distinct pairs: the item->user CSR row lengths */
        for (uint32_t i = 0; i < I; i++) acc[i] = (double)(s->iu_off[i + 1] - s->iu_off[i]);
    } else {
        /* distinct pairs, each at the time of its user's latest event on it:
         * walk each user's sequence newest first and count an item once */
        uint32_t *seen = malloc((I ? I : 1) * sizeof *seen);
        if (!seen) {
            free(count);
            free(acc);
            free(tw);
            return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u items)", I);
        }
        for (uint32_t i = 0; i < I; i++) seen[i] = SHELF_NONE;
        for (uint32_t u = 0; u < U; u++) {
            for (uint64_t e = s->seq_off[u + 1]; e-- > s->seq_off[u];) {
                uint32_t i = s->seq_item[e];
                if (i >= I || seen[i] == u) continue;
                seen[i] = u;
                acc[i] += decay_factor(p, s->seq_ts[e]);
            }
        }
        free(seen);
    }
    for (uint32_t i = 0; i < I; i++) count[i] = (float)acc[i];
    free(acc);
    shelf_progress_update(pr, 1, NULL);

    free(p->count);
    free(p->tw);
    p->count = count;
    p->tw = tw;
    p->n_tw = s->n_types;
    m->n_users = U;
    m->n_items = I;
    m->fitted = 1;
    return 0;
}

/* scores[i] = count[i] * 2^((ref - newest) / h): the decayed count as of
 * the newest event seen. Reads only; safe from many threads (not while
 * observe runs). */
static int pop_score(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err)
{
    const pop_model *p = (const pop_model *)m;
    const uint32_t I = m->n_items;
    float scale = scale_now(p);
    if (scale == 1.0f) {
        memcpy(scores, p->count, (size_t)I * sizeof *scores);
    } else {
        for (uint32_t i = 0; i < I; i++) scores[i] = p->count[i] * scale;
    }
    return 0;
}

/* Adds one event: +1 (pairs: an approximation, since whether the user saw
 * the item before is not kept) or its type's weight, decayed by its time.
 * Items beyond the fitted catalogue are ignored. Not thread safe. */
static int pop_observe(shelf_model *m, const shelf_event *e)
{
    pop_model *p = (pop_model *)m;
    if (e->item >= m->n_items) return 0;
    double w = 1.0;
    if (p->mode == COUNT_WEIGHTS) w = e->type < p->n_tw ? p->tw[e->type] : 1.0;
    if (p->halflife > 0) {
        if (e->ts > NEWEST(p)) NEWEST(p) = e->ts;
        double lg = (double)(e->ts - REF(p)) / (p->halflife * DAY);
        if (lg > RENORM_LOG2) {
            /* move ref to the newest time: rescale everything once */
            float f = scale_now(p);
            for (uint32_t i = 0; i < m->n_items; i++) p->count[i] *= f;
            REF(p) = NEWEST(p);
        }
        w *= decay_factor(p, e->ts);
    }
    p->count[e->item] += (float)w;
    return 0;
}

static int pop_explain(const shelf_model *m, const shelf_query *q, uint32_t item, shelf_reason *r, shelf_err *err)
{
    const pop_model *p = (const pop_model *)m;
    if (item >= m->n_items) return shelf__model_err(m, err, SHELF_EINVAL, "item %u out of range", item);
    r->item = SHELF_NONE;
    r->weight = 1.0f;
    float scale = scale_now(p);
    snprintf(r->text, sizeof r->text, "popular: %s %.4g", p->halflife > 0 ? "recent weight" : "count",
             (double)(p->count[item] * scale));
    return 0;
}

static int pop_save(const shelf_model *m, shelf_bundle_writer *w)
{
    const pop_model *p = (const pop_model *)m;
    /* times as an exact integer tensor (the score scale must reload
     * bitwise), first: 8-byte tensors before 4-byte ones keep alignment */
    static const int64_t two[1] = {2};
    int64_t shape[1] = {m->n_items};
    int rc = shelf_bundle_put(w, "times", SHELF_DT_I64, 1, two, p->times);
    if (!rc) rc = shelf_bundle_put(w, "count", SHELF_DT_F32, 1, shape, p->count);
    if (!rc) rc = shelf_bundle_set_num(w, "pop-halflife", p->halflife);
    if (!rc) rc = shelf_bundle_set_str(w, "pop-count", p->mode == COUNT_WEIGHTS ? "weights" : "pairs");
    if (!rc && p->n_tw) {
        int64_t st[1] = {p->n_tw};
        rc = shelf_bundle_put(w, "type_weight", SHELF_DT_F32, 1, st, p->tw);
    }
    return rc;
}

static int pop_load(shelf_model *m, const shelf_bundle *b)
{
    pop_model *p = (pop_model *)m;
    int nd;
    int64_t sh[4], st[4];
    const float *count = shelf_bundle_get(b, "count", SHELF_DT_F32, &nd, sh);
    if (!count || nd != 1 || sh[0] != (int64_t)m->n_items)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor 'count' [%u]", m->n_items);
    const int64_t *ts = shelf_bundle_get(b, "times", SHELF_DT_I64, &nd, st);
    if (!ts || nd != 1 || st[0] != 2)
        return shelf__model_fail(m, SHELF_ECORRUPT, "bundle lacks tensor 'times' [2]");
    int64_t stw[4] = {0};
    const float *tw = shelf_bundle_get(b, "type_weight", SHELF_DT_F32, &nd, stw);
    uint32_t n_tw = tw ? (uint32_t)stw[0] : 0;
    const char *mode = shelf_bundle_str(b, "pop-count");

    uint32_t I = m->n_items;
    float *c = malloc((I ? I : 1) * sizeof *c);
    float *t = malloc((n_tw ? n_tw : 1) * sizeof *t);
    if (!c || !t) {
        free(c);
        free(t);
        return shelf__model_fail(m, SHELF_ENOMEM, "out of memory (%u items)", I);
    }
    memcpy(c, count, (size_t)I * sizeof *c);
    if (n_tw) memcpy(t, tw, (size_t)n_tw * sizeof *t);
    free(p->count);
    free(p->tw);
    p->count = c;
    p->tw = t;
    p->n_tw = n_tw;
    REF(p) = ts[0];
    NEWEST(p) = ts[1];

    p->halflife = shelf_bundle_num(b, "pop-halflife", 0);
    p->mode = mode && strcmp(mode, "weights") == 0 ? COUNT_WEIGHTS : COUNT_PAIRS;
    m->fitted = 1;
    return 0;
}

/* the vtable and what registry.c needs to make one (models_int.h) */
SHELF__MODEL_KIND(pop, pop, "pop", SHELF_CAP_ONLINE | SHELF_CAP_EXPLAIN,
                  /* observe */ pop_observe, /* explain */ pop_explain, /* predict */ NULL, SHELF__NO_SESSION);
