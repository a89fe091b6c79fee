/* slate.h: what one ranking call returns and what the served log keeps of
 * it: the items shown, each with its score, position, the model or rule that
 * put it there, the probability it had of being shown there, and why; and of
 * the slate, its rec_id, time, shopper, placement (scenario), experiment arm
 * (variant) and model. Attribution, A/B tests and off-policy evaluation read
 * these rows back (shelf_store_served_foreach in store.h). */
#ifndef SHELF_SLATE_H
#define SHELF_SLATE_H

#include "shelf/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHELF_REC_ID_LEN 32 /* hex characters of a rec_id */

/* One shown item. */
typedef struct shelf_slate_item {
    uint32_t item;        /* dense item index */
    uint32_t position;    /* 0: first */
    float score;          /* the score it was ranked by (> 0 from the fallback) */
    float propensity;     /* probability of this item at this position: 1 for a deterministic slate */
    char source[64];      /* who put it here: "model", "context", "popular", "popularity", a scenario source ("model:ease", "trending", "list"), "promotion:NAME" */
    uint32_t reason_item; /* the history item behind it ("because you bought X"), or SHELF_NONE */
    float reason_weight;  /* that item's share of the score (0 when none) */
    char reason[160];     /* the explanation's text; "" when none was asked for */
} shelf_slate_item;

/* One slate. Fixed-size strings are NUL-terminated ("" when unset). */
typedef struct shelf_slate {
    char rec_id[SHELF_REC_ID_LEN + 1];
    int64_t ts;              /* unix seconds when it was served */
    uint32_t user;           /* dense user index, SHELF_NONE for an anonymous session or unknown id */
    char scenario[48];       /* placement ("home", "cart", ...); "" the default */
    char variant[48];        /* experiment arm; "" when none */
    char model[32];          /* model kind that scored it; "" popularity only */
    char model_version[160]; /* bundle version */
    char source[24];         /* where its scores came from: "model", "context", "popular", "popularity" */
    uint32_t n_skipped;      /* request items unknown to the catalogue, skipped */
    uint32_t n, cap;         /* items[0..n) */
    shelf_slate_item *items;
} shelf_slate;

/* Empties s and makes room for cap items (an existing array is reused when
 * large enough). SHELF_ENOMEM. */
SHELF_API int shelf_slate_reserve(shelf_slate *s, uint32_t cap);
/* Frees the items (s itself is the caller's); accepts NULL. */
SHELF_API void shelf_slate_free(shelf_slate *s);

#ifdef __cplusplus
}
#endif
#endif
