/* snapshot.h: the in-memory training view of a store: per-user chronological
 * sequences, user->item and item->user CSR matrices, item feature lists, and
 * the splits (leave-one-out, temporal, random) built on it. Saved as one
 * binary file (magic, version, checksum) that loads by memory mapping. */
#ifndef SHELF_SNAPSHOT_H
#define SHELF_SNAPSHOT_H

#include "shelf/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Dimension letters: U users, I items, E events, A attributes. */
typedef struct shelf_snapshot {
    uint32_t n_users, n_items, n_types;
    uint32_t n_attrs, n_categories, n_brands, n_price_buckets;
    uint64_t n_events; /* events in the sequences */
    uint64_t n_nnz;    /* distinct (user, item) pairs */

    /* Sequences: user u's events, oldest first (by timestamp, then insertion
     * order), are positions [seq_off[u], seq_off[u+1]). */
    const uint64_t *seq_off;  /* [U+1] */
    const uint32_t *seq_item; /* [E] */
    const uint16_t *seq_type; /* [E] event type id */
    const float *seq_weight;  /* [E] weight of the event's type */
    const float *seq_value;   /* [E] rating/quantity/dwell, 0 if none */
    const int64_t *seq_ts;    /* [E] unix seconds */

    /* User->item CSR: row u holds each distinct item once, columns ascending,
     * value = sum of the weights of u's events on it. */
    const uint64_t *ui_off; /* [U+1] */
    const uint32_t *ui_col; /* [nnz] */
    const float *ui_val;    /* [nnz] */
    /* Item->user CSR: the transpose. */
    const uint64_t *iu_off; /* [I+1] */
    const uint32_t *iu_col; /* [nnz] */
    const float *iu_val;    /* [nnz] */

    /* Item features. */
    const uint32_t *item_category;    /* [I] category id or SHELF_NONE */
    const uint32_t *item_brand;       /* [I] brand id or SHELF_NONE */
    const uint8_t *item_price_bucket; /* [I] 0 unknown, else 1..n_price_buckets */
    const uint64_t *attr_off;         /* [I+1] item i's attribute ids: */
    const uint32_t *attr_col;         /* [attr_off[I]] ascending */
    const float *type_weight;         /* [n_types] */

    /* External ids, NUL-terminated strings: user u's is
     * user_ext + user_ext_off[u]; the same for items and type names. */
    const uint64_t *user_ext_off; /* [U] */
    const char *user_ext;
    const uint64_t *item_ext_off; /* [I] */
    const char *item_ext;
    /* Item text for text-aware models: item i's is item_text +
     * item_text_off[i], NUL-terminated: the non-empty ones of its title,
     * text, category path and brand, in that order, joined by one space
     * ("" when it has none). Bytes as stored (UTF-8 passes through). */
    const uint64_t *item_text_off; /* [I] */
    const char *item_text;
    const uint64_t *type_name_off; /* [n_types] */
    const char *type_name;
    /* User features: each user's scalar attributes as "key=value" strings
     * (strings as they are, numbers as integers or %.15g, booleans
     * true/false; each element of an array of scalars; nested objects
     * skipped), ids dense 0..n_user_feats-1 in order of first appearance
     * (users by index, keys in JSON order). User u's ids are
     * ufeat_col[ufeat_off[u] .. ufeat_off[u+1]), ascending, distinct.
     * Feature f's name is ufeat_name + ufeat_name_off[f], NUL-terminated. */
    uint32_t n_user_feats;
    const uint64_t *ufeat_off;      /* [U+1] */
    const uint32_t *ufeat_col;      /* [ufeat_off[U]] */
    const uint64_t *ufeat_name_off; /* [n_user_feats] */
    const char *ufeat_name;

    /* The newest event id read from the store (its events cursor: what
     * came later has an id above it); 0 for a snapshot from a file. */
    uint64_t last_event_id;

    struct shelf_snapshot_mem *mem; /* backing memory (heap or mapping) */
} shelf_snapshot;

#define SHELF_PRICE_BUCKETS 10 /* deciles of the catalogue's log price */

/* Builds a snapshot of everything in the store. Errors go to the store's
 * handle. Free with shelf_snapshot_free. `progress`: bar on a terminal. */
SHELF_API int shelf_snapshot_from_store(shelf_store *st, int progress, shelf_snapshot **out);
SHELF_API void shelf_snapshot_free(shelf_snapshot *s); /* accepts NULL */

/* A new snapshot with the same users, items and features but only the events
 * e with keep[e] != 0 (sequences and both CSR matrices rebuilt). */
SHELF_API int shelf_snapshot_subset(const shelf_snapshot *s, const uint8_t *keep, shelf_snapshot **out,
                          shelf_err *err);

/* Sequence length of user u. */
static inline uint64_t shelf_snapshot_seq_len(const shelf_snapshot *s, uint32_t u)
{
    return s->seq_off[u + 1] - s->seq_off[u];
}

/* Writes s to path (atomically: a temporary file renamed into place). File:
 * header (magic "SHELFSNP", version, counts, section table, xxh3-64 checksum
 * of everything after the header), then 64-byte-aligned arrays. */
SHELF_API int shelf_snapshot_save(const shelf_snapshot *s, const char *path, shelf_err *err);
/* Maps path read-only; the arrays point into the mapping. Checks magic,
 * version, sizes and (unless no_verify) the checksum: SHELF_ECORRUPT or
 * SHELF_EVERSION with a message naming the file and the fault. */
SHELF_API int shelf_snapshot_load(const char *path, int no_verify, shelf_snapshot **out, shelf_err *err);

/* ---- splits ------------------------------------------------------------------ */
typedef enum { SHELF_SPLIT_LOO, SHELF_SPLIT_TEMPORAL, SHELF_SPLIT_RANDOM } shelf_split_kind;

typedef struct shelf_split {
    shelf_split_kind kind;
    shelf_snapshot *train; /* owned: training events only */
    /* Held-out events per user (CSR over users, in sequence order). */
    uint64_t *valid_off; /* [U+1] */
    uint32_t *valid_item;
    uint16_t *valid_type; /* [n_valid] the validation events' types and times */
    int64_t *valid_ts;
    uint64_t *test_off; /* [U+1] */
    uint32_t *test_item;
    uint64_t n_valid, n_test;
} shelf_split;

/* LOO-FULL (BENCHMARKS.md): per user with n >= 3 events, the last event's
 * item is the test target, the second-to-last the validation target, and
 * events 1..n-2 are training. Users with n == 2: last = test, no validation;
 * n <= 1: training only. (For the test, the eval room adds the validation
 * item to the history.) */
SHELF_API int shelf_split_loo(const shelf_snapshot *s, shelf_split **out, shelf_err *err);
/* Global temporal cut-off: events with ts >= test_from are test, those with
 * valid_from <= ts < test_from validation, the rest training. */
SHELF_API int shelf_split_temporal(const shelf_snapshot *s, int64_t valid_from, int64_t test_from,
                         shelf_split **out, shelf_err *err);
/* Random hold-out: each event independently to test with probability
 * test_frac, else to validation with valid_frac, else training; seeded. */
SHELF_API int shelf_split_random(const shelf_snapshot *s, double valid_frac, double test_frac,
                       uint64_t seed, shelf_split **out, shelf_err *err);
SHELF_API void shelf_split_free(shelf_split *sp); /* accepts NULL */

#ifdef __cplusplus
}
#endif
#endif
