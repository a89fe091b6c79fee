/* rating_int.h: what the explicit-rating models (rating_mf.c, svdpp.c,
 * rating_text.c) share: the training ratings pulled out of a snapshot,
 * grouped by user, the start and end of a fit, the bundle layout and the
 * clip to the rating scale. */
#ifndef SHELF_MODELS_RATING_INT_H
#define SHELF_MODELS_RATING_INT_H

#include "models/models_int.h"

/* The events of type "rating" of a snapshot, in sequence order (so grouped
 * by user, oldest first): user u's ratings are [off[u], off[u+1]). */
typedef struct shelf__ratings {
    uint32_t n_users;
    uint64_t n;      /* ratings */
    uint64_t *off;   /* [U+1] */
    uint32_t *user;  /* [n] */
    uint32_t *item;  /* [n] */
    float *value;    /* [n] the rating (seq_value) */
    double mu;       /* mean rating */
    float rmin, rmax; /* the scale observed */
} shelf__ratings;

/* Fills r from s: the type named "rating" (SHELF_EINVAL with a message on m
 * when the snapshot has no such type or no events of it; a non-finite value
 * is SHELF_EINVAL too). Free with shelf__ratings_free. */
int shelf__ratings_collect(const shelf_model *m, const shelf_snapshot *s, shelf__ratings *r);
void shelf__ratings_free(shelf__ratings *r); /* accepts a zeroed r */

/* The start of a fit: collects s's ratings into r (0, or the error of
 * shelf__ratings_collect, set on m; free r with shelf__ratings_free), then
 * releases the model's old tensors (release), clears fitted, reads the
 * options of nums into the model's fields (shelf__opts_nums_get) and sets
 * glob[3], the model's globals, to r's mean rating, rating min and max. */
int shelf__rating_fit_begin(shelf_model *m, const shelf_snapshot *s, const shelf_opts *o, const shelf__bundle_num *nums,
                            size_t n_nums, void (*release)(shelf_model *m), float glob[3], shelf__ratings *r);
/* After training: marks item_seen[i] (zeroed, [I]) for every rated item and
 * zeroes the rows of P [U,K] of users and of Q [I,K] of items without
 * ratings: their random start was never trained and would only add noise,
 * so they stay non-personal. */
void shelf__ratings_zero_unrated(const shelf__ratings *r, uint8_t *item_seen, float *P, float *Q, uint32_t U,
                                 uint32_t I, uint32_t K);
/* The end of a fit: on an error rc releases the model's tensors (release)
 * and returns rc; else marks m fitted with U users and I items, 0. */
int shelf__rating_fit_end(shelf_model *m, int rc, uint32_t U, uint32_t I, void (*release)(shelf_model *m));

/* Fisher-Yates shuffle of idx[0..n) with rng. */
void shelf__shuffle_u32(uint32_t *idx, uint32_t n, shelf_rng *rng);

/* A malloc'ed copy of the bundle's f32 tensor `name` of shape [d0] (ndim 1)
 * or [d0, d1], all values finite; NULL after setting m's error
 * (SHELF_ECORRUPT, SHELF_ENOMEM). The caller frees it. */
void *shelf__rating_take(shelf_model *m, const shelf_bundle *b, const char *name, int ndim, int64_t d0,
                         int64_t d1);

/* A float tensor a rating model keeps in its bundle: the name, the pointer
 * field of the model's struct (offsetof), its rows ('u' users, 'i' items)
 * and whether it has K columns ([rows, K]) or none ([rows]). */
typedef struct shelf__rating_tensor {
    const char *name;
    size_t at;
    char rows;
    int by_k;
} shelf__rating_tensor;
/* What a factor model's bundle holds (rating-mf, svdpp): its tensors, then
 * the globals [3] (mu, rating min, rating max), then the numbers of the
 * manifest, the first of which is the factor count K (1..4096). Fields are
 * found by offset in the model's struct, shelf_model first. */
typedef struct shelf__rating_layout {
    const shelf__rating_tensor *tensors;
    size_t n_tensors;
    const shelf__bundle_num *nums; /* nums[0]: K, a uint32_t */
    size_t n_nums;
    size_t at_glob; /* offsetof the float[3] globals */
    void (*release)(shelf_model *m); /* frees (and clears) the tensors */
} shelf__rating_layout;
int shelf__rating_save(const shelf_model *m, shelf_bundle_writer *w, const shelf__rating_layout *l);
/* Checks the sizes (SHELF_ECORRUPT, the model unchanged), releases the old
 * tensors, reads the numbers, globals and tensors; on an error releases what
 * it read. 0 marks m fitted. */
int shelf__rating_load(shelf_model *m, const shelf_bundle *b, const shelf__rating_layout *l);

/* Loads the bundle's "globals" [3] (mu, rating min, rating max) into glob:
 * 0, or the error set on m (missing, non-finite, an empty scale). */
int shelf__rating_take_globals(shelf_model *m, const shelf_bundle *b, float glob[3]);

/* scores[i] = m's predicted rating of item i for q->user, for every item
 * (the history is not used): the score of a model whose rating needs no
 * history. Reads only: safe from many threads. */
int shelf__rating_score_all(const shelf_model *m, const shelf_query *q, float *scores, shelf_err *err);

static inline float shelf__clip(float x, float lo, float hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

#endif
