/* snapshot_int.h: private side of snapshot.h, shared by snapshot.c (build,
 * subset, free), snapshot_file.c (save/load) and split.c: the backing memory,
 * the list of arrays ("sections") with their sizes, and the CSR builder. */
#ifndef SHELF_SNAPSHOT_INT_H
#define SHELF_SNAPSHOT_INT_H

#include "shelf/snapshot.h"

/* Every array of a snapshot, in file order. The id is stored in the file's
 * section table: append new ones at the end and never renumber. */
enum shelf__snap_sec {
    SHELF__SEC_SEQ_OFF,
    SHELF__SEC_SEQ_ITEM,
    SHELF__SEC_SEQ_TYPE,
    SHELF__SEC_SEQ_WEIGHT,
    SHELF__SEC_SEQ_VALUE,
    SHELF__SEC_SEQ_TS,
    SHELF__SEC_UI_OFF,
    SHELF__SEC_UI_COL,
    SHELF__SEC_UI_VAL,
    SHELF__SEC_IU_OFF,
    SHELF__SEC_IU_COL,
    SHELF__SEC_IU_VAL,
    SHELF__SEC_ITEM_CATEGORY,
    SHELF__SEC_ITEM_BRAND,
    SHELF__SEC_ITEM_PRICE_BUCKET,
    SHELF__SEC_ATTR_OFF,
    SHELF__SEC_ATTR_COL,
    SHELF__SEC_TYPE_WEIGHT,
    SHELF__SEC_USER_EXT_OFF,
    SHELF__SEC_USER_EXT,
    SHELF__SEC_ITEM_EXT_OFF,
    SHELF__SEC_ITEM_EXT,
    SHELF__SEC_TYPE_NAME_OFF,
    SHELF__SEC_TYPE_NAME,
    SHELF__SEC_ITEM_TEXT_OFF, /* format version 2 */
    SHELF__SEC_ITEM_TEXT,
    SHELF__SEC_UFEAT_OFF, /* format version 3 */
    SHELF__SEC_UFEAT_COL,
    SHELF__SEC_UFEAT_NAME_OFF,
    SHELF__SEC_UFEAT_NAME,
    SHELF__SEC_COUNT
};

#define SHELF__SNAP_ALIGN 64 /* every array starts on a 64-byte boundary */
#define SHELF__SNAP_MAX_BLOCKS 4

/* Who owns the arrays: up to a few heap blocks (built snapshots) or one
 * read-only mapping (loaded ones). Also the byte counts that the public
 * struct does not carry but that size the string and attribute arrays. */
struct shelf_snapshot_mem {
    uint64_t n_attr_links;    /* attr_off[I] */
    uint64_t user_ext_bytes;  /* bytes of user_ext, NULs included */
    uint64_t item_ext_bytes;  /* bytes of item_ext */
    uint64_t type_name_bytes; /* bytes of type_name */
    uint64_t item_text_bytes; /* bytes of item_text */
    uint64_t n_ufeat_links;   /* ufeat_off[U] */
    uint64_t ufeat_name_bytes; /* bytes of ufeat_name */
    void *block[SHELF__SNAP_MAX_BLOCKS];
    int n_block;
    void *map; /* mmap base, or NULL */
    size_t map_len;
};

/* A zeroed snapshot whose mem is set (one allocation for both); NULL on
 * out of memory. Free with shelf_snapshot_free. */
shelf_snapshot *shelf__snap_new(void);

/* Bytes per element of section id, and number of elements that the counts of
 * s (and s->mem) imply. */
uint64_t shelf__snap_sec_elem(int id);
uint64_t shelf__snap_sec_count(const shelf_snapshot *s, int id);
/* Pointer of section id in s / sets it. */
const void *shelf__snap_sec_get(const shelf_snapshot *s, int id);
void shelf__snap_sec_set(shelf_snapshot *s, int id, const void *p);

/* Allocates one 64-byte aligned block holding the n sections ids (sized from
 * the counts already set in s) and points them into it. The contents are
 * uninitialised. 0 or SHELF_ENOMEM. */
int shelf__snap_alloc(shelf_snapshot *s, const int *ids, int n);

/* Builds both CSR matrices from the sequences (seq_off, seq_item,
 * seq_weight must be set; ui_off and iu_off must be allocated): counts the
 * distinct pairs, allocates ui/iu col/val in one block and fills them.
 * O(E + nnz + U + I). 0 or SHELF_ENOMEM. */
int shelf__snap_build_csr(shelf_snapshot *s);

/* Checks that the arrays of s are consistent with its counts so that no
 * reader can index out of bounds: offsets start at 0, never decrease and end
 * at the count; strings are NUL-terminated inside their array. With deep,
 * also every index (items, users, types, categories, brands, buckets,
 * attributes, user features) is in range and CSR rows (user feature lists
 * included) are strictly ascending: O(E + nnz + feature links).
 * Returns 0 or SHELF_ECORRUPT with why[] (cap bytes) saying what is wrong. */
int shelf__snap_check(const shelf_snapshot *s, int deep, char *why, size_t cap);

#endif
