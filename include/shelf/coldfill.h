/* coldfill.h: scores for items a model has not learned (added after its
 * training, or without training events) from their content neighbours. Each
 * cold item gets the similarity-weighted mean of the scores of its k warm
 * items with the most content in common (cosine of IDF-weighted binary
 * feature vectors: category, brand, attributes, title words, as hashes the
 * caller chooses). It post-processes any model's scores, so every model can
 * recommend an item from the moment it is added. */
#ifndef SHELF_COLDFILL_H
#define SHELF_COLDFILL_H
#include "shelf/snapshot.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct shelf_coldfill shelf_coldfill;

/* k neighbours per cold item (1..64). NULL when out of memory. */
SHELF_API shelf_coldfill *shelf_coldfill_new(uint32_t k);
SHELF_API void shelf_coldfill_free(shelf_coldfill *cf); /* accepts NULL */

/* Item item's content features (any 64-bit hashes; order and duplicates do
 * not matter); replaces what it had. 0 or SHELF_ENOMEM. */
SHELF_API int shelf_coldfill_set_item(shelf_coldfill *cf, uint32_t item, const uint64_t *feats, size_t n);

/* Feature hash of a string feature of a kind ('c' category, 'b' brand, 'a'
 * attribute "key=value", 'w' word, 'p' price bucket...). */
SHELF_API uint64_t shelf_coldfill_hash(char kind, const char *s, size_t len);
/* The features of snapshot item i: its category, brand, price bucket and
 * attribute ids and the words of its text. Writes at most cap, returns the
 * count (may exceed cap). */
SHELF_API size_t shelf_coldfill_snapshot_features(const shelf_snapshot *s, uint32_t item, uint64_t *out, size_t cap);
/* The features of an item given as strings (category path, brand, title,
 * text; attrs: n_attrs "key=value" strings). Same contract. */
SHELF_API size_t shelf_coldfill_item_features(const char *category, const char *brand, const char *title, const char *text,
                                    const char *const *attrs, size_t n_attrs, uint64_t *out, size_t cap);

/* Sets which items are warm (warm[i] != 0 for i < n_items: the model learned
 * them; only they can be neighbours) and finds the neighbours of every
 * other item that has features. */
SHELF_API int shelf_coldfill_build(shelf_coldfill *cf, const uint8_t *warm, uint32_t n_items);
/* Finds the neighbours of one item (set or changed after the build; items at
 * or past the build's n_items are cold). */
SHELF_API int shelf_coldfill_update(shelf_coldfill *cf, uint32_t item);
/* For each cold item c < n with neighbours: scores[c] = weighted mean of its
 * neighbours' scores (neighbours at -inf are skipped). Others unchanged. */
SHELF_API void shelf_coldfill_apply(const shelf_coldfill *cf, float *scores, uint32_t n);
/* Cold items with neighbours now. */
SHELF_API uint32_t shelf_coldfill_count(const shelf_coldfill *cf);
/* Neighbours of item (up to k, best first) into nb/w; returns the count. */
SHELF_API uint32_t shelf_coldfill_neighbours(const shelf_coldfill *cf, uint32_t item, uint32_t *nb, float *w);

#ifdef __cplusplus
}
#endif
#endif
