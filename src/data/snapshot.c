/* snapshot.c: builds the in-memory training view (sequences, user->item and
 * item->user CSR, item and user features, names) from a store, or from a
 * subset of another snapshot's events. Data room, above store. Save/load:
 * snapshot_file.c. */
#include "data/json_int.h"
#include "data/snapshot_int.h"
#include "core/assert_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Dimension letters: U users, I items, E events, T event types. */

/* ============================================================================
 * Backing memory and the section table
 * ========================================================================== */

typedef struct snap_holder {
    shelf_snapshot s; /* first: a snapshot pointer is the holder pointer */
    struct shelf_snapshot_mem m;
} snap_holder;

shelf_snapshot *shelf__snap_new(void)
{
    snap_holder *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->s.mem = &h->m;
    return &h->s;
}

void shelf_snapshot_free(shelf_snapshot *s)
{
    if (!s) return;
    struct shelf_snapshot_mem *m = s->mem;
    if (m) {
        for (int b = 0; b < m->n_block; b++) free(m->block[b]);
        if (m->map) munmap(m->map, m->map_len);
    }
    free((snap_holder *)s);
}

static const uint8_t sec_elem[SHELF__SEC_COUNT] = {
    [SHELF__SEC_SEQ_OFF] = 8,           [SHELF__SEC_SEQ_ITEM] = 4,
    [SHELF__SEC_SEQ_TYPE] = 2,          [SHELF__SEC_SEQ_WEIGHT] = 4,
    [SHELF__SEC_SEQ_VALUE] = 4,         [SHELF__SEC_SEQ_TS] = 8,
    [SHELF__SEC_UI_OFF] = 8,            [SHELF__SEC_UI_COL] = 4,
    [SHELF__SEC_UI_VAL] = 4,            [SHELF__SEC_IU_OFF] = 8,
    [SHELF__SEC_IU_COL] = 4,            [SHELF__SEC_IU_VAL] = 4,
    [SHELF__SEC_ITEM_CATEGORY] = 4,     [SHELF__SEC_ITEM_BRAND] = 4,
    [SHELF__SEC_ITEM_PRICE_BUCKET] = 1, [SHELF__SEC_ATTR_OFF] = 8,
    [SHELF__SEC_ATTR_COL] = 4,          [SHELF__SEC_TYPE_WEIGHT] = 4,
    [SHELF__SEC_USER_EXT_OFF] = 8,      [SHELF__SEC_USER_EXT] = 1,
    [SHELF__SEC_ITEM_EXT_OFF] = 8,      [SHELF__SEC_ITEM_EXT] = 1,
    [SHELF__SEC_TYPE_NAME_OFF] = 8,     [SHELF__SEC_TYPE_NAME] = 1,
    [SHELF__SEC_ITEM_TEXT_OFF] = 8,     [SHELF__SEC_ITEM_TEXT] = 1,
    [SHELF__SEC_UFEAT_OFF] = 8,         [SHELF__SEC_UFEAT_COL] = 4,
    [SHELF__SEC_UFEAT_NAME_OFF] = 8,    [SHELF__SEC_UFEAT_NAME] = 1,
};

uint64_t shelf__snap_sec_elem(int id)
{
    SHELF_ASSERT(id >= 0 && id < SHELF__SEC_COUNT);
    return sec_elem[id];
}

uint64_t shelf__snap_sec_count(const shelf_snapshot *s, int id)
{
    const struct shelf_snapshot_mem *m = s->mem;
    uint64_t U = s->n_users, I = s->n_items;
    switch (id) {
    case SHELF__SEC_SEQ_OFF:
    case SHELF__SEC_UI_OFF:
    case SHELF__SEC_UFEAT_OFF: return U + 1;
    case SHELF__SEC_IU_OFF:
    case SHELF__SEC_ATTR_OFF: return I + 1;
    case SHELF__SEC_SEQ_ITEM:
    case SHELF__SEC_SEQ_TYPE:
    case SHELF__SEC_SEQ_WEIGHT:
    case SHELF__SEC_SEQ_VALUE:
    case SHELF__SEC_SEQ_TS: return s->n_events;
    case SHELF__SEC_UI_COL:
    case SHELF__SEC_UI_VAL:
    case SHELF__SEC_IU_COL:
    case SHELF__SEC_IU_VAL: return s->n_nnz;
    case SHELF__SEC_ITEM_CATEGORY:
    case SHELF__SEC_ITEM_BRAND:
    case SHELF__SEC_ITEM_PRICE_BUCKET:
    case SHELF__SEC_ITEM_EXT_OFF:
    case SHELF__SEC_ITEM_TEXT_OFF: return I;
    case SHELF__SEC_ATTR_COL: return m->n_attr_links;
    case SHELF__SEC_TYPE_WEIGHT:
    case SHELF__SEC_TYPE_NAME_OFF: return s->n_types;
    case SHELF__SEC_USER_EXT_OFF: return U;
    case SHELF__SEC_USER_EXT: return m->user_ext_bytes;
    case SHELF__SEC_ITEM_EXT: return m->item_ext_bytes;
    case SHELF__SEC_TYPE_NAME: return m->type_name_bytes;
    case SHELF__SEC_ITEM_TEXT: return m->item_text_bytes;
    case SHELF__SEC_UFEAT_COL: return m->n_ufeat_links;
    case SHELF__SEC_UFEAT_NAME_OFF: return s->n_user_feats;
    case SHELF__SEC_UFEAT_NAME: return m->ufeat_name_bytes;
    }
    SHELF_ASSERT(!"unknown snapshot section");
    return 0;
}

const void *shelf__snap_sec_get(const shelf_snapshot *s, int id)
{
    switch (id) {
    case SHELF__SEC_SEQ_OFF: return s->seq_off;
    case SHELF__SEC_SEQ_ITEM: return s->seq_item;
    case SHELF__SEC_SEQ_TYPE: return s->seq_type;
    case SHELF__SEC_SEQ_WEIGHT: return s->seq_weight;
    case SHELF__SEC_SEQ_VALUE: return s->seq_value;
    case SHELF__SEC_SEQ_TS: return s->seq_ts;
    case SHELF__SEC_UI_OFF: return s->ui_off;
    case SHELF__SEC_UI_COL: return s->ui_col;
    case SHELF__SEC_UI_VAL: return s->ui_val;
    case SHELF__SEC_IU_OFF: return s->iu_off;
    case SHELF__SEC_IU_COL: return s->iu_col;
    case SHELF__SEC_IU_VAL: return s->iu_val;
    case SHELF__SEC_ITEM_CATEGORY: return s->item_category;
    case SHELF__SEC_ITEM_BRAND: return s->item_brand;
    case SHELF__SEC_ITEM_PRICE_BUCKET: return s->item_price_bucket;
    case SHELF__SEC_ATTR_OFF: return s->attr_off;
    case SHELF__SEC_ATTR_COL: return s->attr_col;
    case SHELF__SEC_TYPE_WEIGHT: return s->type_weight;
    case SHELF__SEC_USER_EXT_OFF: return s->user_ext_off;
    case SHELF__SEC_USER_EXT: return s->user_ext;
    case SHELF__SEC_ITEM_EXT_OFF: return s->item_ext_off;
    case SHELF__SEC_ITEM_EXT: return s->item_ext;
    case SHELF__SEC_TYPE_NAME_OFF: return s->type_name_off;
    case SHELF__SEC_TYPE_NAME: return s->type_name;
    case SHELF__SEC_ITEM_TEXT_OFF: return s->item_text_off;
    case SHELF__SEC_ITEM_TEXT: return s->item_text;
    case SHELF__SEC_UFEAT_OFF: return s->ufeat_off;
    case SHELF__SEC_UFEAT_COL: return s->ufeat_col;
    case SHELF__SEC_UFEAT_NAME_OFF: return s->ufeat_name_off;
    case SHELF__SEC_UFEAT_NAME: return s->ufeat_name;
    }
    SHELF_ASSERT(!"unknown snapshot section");
    return NULL;
}

void shelf__snap_sec_set(shelf_snapshot *s, int id, const void *p)
{
    switch (id) {
    case SHELF__SEC_SEQ_OFF: s->seq_off = p; return;
    case SHELF__SEC_SEQ_ITEM: s->seq_item = p; return;
    case SHELF__SEC_SEQ_TYPE: s->seq_type = p; return;
    case SHELF__SEC_SEQ_WEIGHT: s->seq_weight = p; return;
    case SHELF__SEC_SEQ_VALUE: s->seq_value = p; return;
    case SHELF__SEC_SEQ_TS: s->seq_ts = p; return;
    case SHELF__SEC_UI_OFF: s->ui_off = p; return;
    case SHELF__SEC_UI_COL: s->ui_col = p; return;
    case SHELF__SEC_UI_VAL: s->ui_val = p; return;
    case SHELF__SEC_IU_OFF: s->iu_off = p; return;
    case SHELF__SEC_IU_COL: s->iu_col = p; return;
    case SHELF__SEC_IU_VAL: s->iu_val = p; return;
    case SHELF__SEC_ITEM_CATEGORY: s->item_category = p; return;
    case SHELF__SEC_ITEM_BRAND: s->item_brand = p; return;
    case SHELF__SEC_ITEM_PRICE_BUCKET: s->item_price_bucket = p; return;
    case SHELF__SEC_ATTR_OFF: s->attr_off = p; return;
    case SHELF__SEC_ATTR_COL: s->attr_col = p; return;
    case SHELF__SEC_TYPE_WEIGHT: s->type_weight = p; return;
    case SHELF__SEC_USER_EXT_OFF: s->user_ext_off = p; return;
    case SHELF__SEC_USER_EXT: s->user_ext = p; return;
    case SHELF__SEC_ITEM_EXT_OFF: s->item_ext_off = p; return;
    case SHELF__SEC_ITEM_EXT: s->item_ext = p; return;
    case SHELF__SEC_TYPE_NAME_OFF: s->type_name_off = p; return;
    case SHELF__SEC_TYPE_NAME: s->type_name = p; return;
    case SHELF__SEC_ITEM_TEXT_OFF: s->item_text_off = p; return;
    case SHELF__SEC_ITEM_TEXT: s->item_text = p; return;
    case SHELF__SEC_UFEAT_OFF: s->ufeat_off = p; return;
    case SHELF__SEC_UFEAT_COL: s->ufeat_col = p; return;
    case SHELF__SEC_UFEAT_NAME_OFF: s->ufeat_name_off = p; return;
    case SHELF__SEC_UFEAT_NAME: s->ufeat_name = p; return;
    }
    SHELF_ASSERT(!"unknown snapshot section");
}

static uint64_t align_up(uint64_t n)
{
    return (n + SHELF__SNAP_ALIGN - 1) & ~(uint64_t)(SHELF__SNAP_ALIGN - 1);
}

int shelf__snap_alloc(shelf_snapshot *s, const int *ids, int n)
{
    struct shelf_snapshot_mem *m = s->mem;
    SHELF_ASSERT(n >= 0 && n <= SHELF__SEC_COUNT);
    SHELF_ASSERT(m->n_block < SHELF__SNAP_MAX_BLOCKS);
    uint64_t off[SHELF__SEC_COUNT];
    uint64_t total = 0;
    for (int k = 0; k < n; k++) {
        uint64_t cnt = shelf__snap_sec_count(s, ids[k]), el = sec_elem[ids[k]];
        if (cnt > ((uint64_t)1 << 56) / el) return SHELF_ENOMEM;
        off[k] = total;
        total += align_up(cnt * el);
        if (total > (uint64_t)SIZE_MAX / 2) return SHELF_ENOMEM;
    }
    void *b = NULL;
    if (posix_memalign(&b, SHELF__SNAP_ALIGN, (size_t)(total ? total : SHELF__SNAP_ALIGN)) != 0)
        return SHELF_ENOMEM;
    m->block[m->n_block++] = b;
    for (int k = 0; k < n; k++) shelf__snap_sec_set(s, ids[k], (char *)b + off[k]);
    return 0;
}

/* Sections that do not depend on nnz: allocated together before the CSR. */
static const int block_main[] = {
    SHELF__SEC_SEQ_OFF,        SHELF__SEC_SEQ_ITEM,      SHELF__SEC_SEQ_TYPE,
    SHELF__SEC_SEQ_WEIGHT,     SHELF__SEC_SEQ_VALUE,     SHELF__SEC_SEQ_TS,
    SHELF__SEC_UI_OFF,         SHELF__SEC_IU_OFF,        SHELF__SEC_ITEM_CATEGORY,
    SHELF__SEC_ITEM_BRAND,     SHELF__SEC_ITEM_PRICE_BUCKET, SHELF__SEC_ATTR_OFF,
    SHELF__SEC_ATTR_COL,       SHELF__SEC_TYPE_WEIGHT,   SHELF__SEC_USER_EXT_OFF,
    SHELF__SEC_USER_EXT,       SHELF__SEC_ITEM_EXT_OFF,  SHELF__SEC_ITEM_EXT,
    SHELF__SEC_TYPE_NAME_OFF,  SHELF__SEC_TYPE_NAME,      SHELF__SEC_ITEM_TEXT_OFF,
    SHELF__SEC_ITEM_TEXT,      SHELF__SEC_UFEAT_OFF,     SHELF__SEC_UFEAT_COL,
    SHELF__SEC_UFEAT_NAME_OFF, SHELF__SEC_UFEAT_NAME,
};
#define N_BLOCK_MAIN ((int)(sizeof block_main / sizeof block_main[0]))
static const int block_csr[] = {SHELF__SEC_UI_COL, SHELF__SEC_UI_VAL, SHELF__SEC_IU_COL,
                                SHELF__SEC_IU_VAL};

/* ============================================================================
 * CSR from sequences
 * ========================================================================== */

int shelf__snap_build_csr(shelf_snapshot *s)
{
    const uint32_t U = s->n_users, I = s->n_items;
    const uint64_t *seq_off = s->seq_off;
    const uint32_t *seq_item = s->seq_item;
    const float *seq_weight = s->seq_weight;
    /* We built these arrays ourselves (heap), so writing them is fine. */
    uint64_t *ui_off = (uint64_t *)s->ui_off;
    uint64_t *iu_off = (uint64_t *)s->iu_off;

    uint32_t *last = malloc(((size_t)I + 1) * sizeof *last); /* last user seen per item */
    uint64_t *cur = malloc(((size_t)(I > U ? I : U) + 1) * sizeof *cur);
    if (!last || !cur) {
        free(last);
        free(cur);
        return SHELF_ENOMEM;
    }

    /* Pass 1: distinct (u, i) pairs, counted per row and per column. Because
     * users are visited in order, "item i was last touched by u" marks
     * whether the pair is new. */
    for (uint32_t i = 0; i < I; i++) last[i] = SHELF_NONE;
    memset(iu_off, 0, ((size_t)I + 1) * sizeof *iu_off);
    ui_off[0] = 0;
    uint64_t nnz = 0;
    for (uint32_t u = 0; u < U; u++) {
        for (uint64_t e = seq_off[u]; e < seq_off[u + 1]; e++) {
            uint32_t i = seq_item[e];
            if (last[i] != u) {
                last[i] = u;
                iu_off[i + 1]++;
                nnz++;
            }
        }
        ui_off[u + 1] = nnz;
    }
    for (uint32_t i = 0; i < I; i++) iu_off[i + 1] += iu_off[i];
    s->n_nnz = nnz;
    int rc = shelf__snap_alloc(s, block_csr, 4);
    if (rc) {
        free(last);
        free(cur);
        return rc;
    }
    uint32_t *ui_col = (uint32_t *)s->ui_col, *iu_col = (uint32_t *)s->iu_col;
    float *ui_val = (float *)s->ui_val, *iu_val = (float *)s->iu_val;

    /* Pass 2: item->user, users ascending per column; repeated pairs add
     * their weights in sequence order. */
    for (uint32_t i = 0; i < I; i++) {
        last[i] = SHELF_NONE;
        cur[i] = iu_off[i];
    }
    for (uint32_t u = 0; u < U; u++) {
        for (uint64_t e = seq_off[u]; e < seq_off[u + 1]; e++) {
            uint32_t i = seq_item[e];
            if (last[i] != u) {
                last[i] = u;
                uint64_t k = cur[i]++;
                iu_col[k] = u;
                iu_val[k] = seq_weight[e];
            } else {
                iu_val[cur[i] - 1] += seq_weight[e];
            }
        }
    }

    /* Pass 3: transpose back; visiting items in order leaves every user row
     * with its columns ascending. */
    for (uint32_t u = 0; u < U; u++) cur[u] = ui_off[u];
    for (uint32_t i = 0; i < I; i++) {
        for (uint64_t k = iu_off[i]; k < iu_off[i + 1]; k++) {
            uint64_t p = cur[iu_col[k]]++;
            ui_col[p] = i;
            ui_val[p] = iu_val[k];
        }
    }
    free(last);
    free(cur);
    return 0;
}

/* ============================================================================
 * Consistency check (loaded files, tests)
 * ========================================================================== */

static int check_off(const uint64_t *off, uint64_t n, uint64_t total, const char *name, char *why,
                     size_t cap)
{
    if (off[0] != 0) {
        snprintf(why, cap, "%s[0] is %llu, not 0", name, (unsigned long long)off[0]);
        return SHELF_ECORRUPT;
    }
    for (uint64_t k = 0; k < n; k++)
        if (off[k + 1] < off[k]) {
            snprintf(why, cap, "%s decreases at %llu", name, (unsigned long long)k + 1);
            return SHELF_ECORRUPT;
        }
    if (off[n] != total) {
        snprintf(why, cap, "%s ends at %llu, not %llu", name, (unsigned long long)off[n],
                 (unsigned long long)total);
        return SHELF_ECORRUPT;
    }
    return 0;
}

static int check_strs(const uint64_t *off, uint64_t n, const char *str, uint64_t bytes,
                      const char *name, char *why, size_t cap)
{
    if (n > 0 && (bytes == 0 || str[bytes - 1] != '\0')) {
        snprintf(why, cap, "%s does not end with NUL", name);
        return SHELF_ECORRUPT;
    }
    for (uint64_t k = 0; k < n; k++)
        if (off[k] >= bytes) {
            snprintf(why, cap, "%s offset %llu out of range", name, (unsigned long long)k);
            return SHELF_ECORRUPT;
        }
    return 0;
}

/* Columns of a CSR: each < limit, strictly ascending per row. */
static int check_cols(const uint64_t *off, uint64_t n_rows, const uint32_t *col, uint64_t limit,
                      const char *name, char *why, size_t cap)
{
    for (uint64_t r = 0; r < n_rows; r++)
        for (uint64_t k = off[r]; k < off[r + 1]; k++) {
            if (col[k] >= limit || (k > off[r] && col[k] <= col[k - 1])) {
                snprintf(why, cap, "%s row %llu: bad column %u at %llu", name,
                         (unsigned long long)r, col[k], (unsigned long long)k);
                return SHELF_ECORRUPT;
            }
        }
    return 0;
}

int shelf__snap_check(const shelf_snapshot *s, int deep, char *why, size_t cap)
{
    const struct shelf_snapshot_mem *m = s->mem;
    const uint64_t U = s->n_users, I = s->n_items, T = s->n_types;
    int rc;
    if (T > 65536) {
        snprintf(why, cap, "%llu event types (at most 65536)", (unsigned long long)T);
        return SHELF_ECORRUPT;
    }
    if (s->n_price_buckets > 255) {
        snprintf(why, cap, "%u price buckets (at most 255)", s->n_price_buckets);
        return SHELF_ECORRUPT;
    }
    if ((rc = check_off(s->seq_off, U, s->n_events, "seq_off", why, cap))) return rc;
    if ((rc = check_off(s->ui_off, U, s->n_nnz, "ui_off", why, cap))) return rc;
    if ((rc = check_off(s->iu_off, I, s->n_nnz, "iu_off", why, cap))) return rc;
    if ((rc = check_off(s->attr_off, I, m->n_attr_links, "attr_off", why, cap))) return rc;
    if ((rc = check_strs(s->user_ext_off, U, s->user_ext, m->user_ext_bytes, "user_ext", why, cap)))
        return rc;
    if ((rc = check_strs(s->item_ext_off, I, s->item_ext, m->item_ext_bytes, "item_ext", why, cap)))
        return rc;
    if ((rc = check_strs(s->type_name_off, T, s->type_name, m->type_name_bytes, "type_name", why,
                         cap)))
        return rc;
    if ((rc = check_strs(s->item_text_off, I, s->item_text, m->item_text_bytes, "item_text", why,
                         cap)))
        return rc;
    if ((rc = check_off(s->ufeat_off, U, m->n_ufeat_links, "ufeat_off", why, cap))) return rc;
    if ((rc = check_strs(s->ufeat_name_off, s->n_user_feats, s->ufeat_name, m->ufeat_name_bytes,
                         "ufeat_name", why, cap)))
        return rc;
    if (!deep) return 0;

    for (uint64_t e = 0; e < s->n_events; e++)
        if (s->seq_item[e] >= I || s->seq_type[e] >= T) {
            snprintf(why, cap, "event %llu: item %u or type %u out of range",
                     (unsigned long long)e, s->seq_item[e], s->seq_type[e]);
            return SHELF_ECORRUPT;
        }
    if ((rc = check_cols(s->ui_off, U, s->ui_col, I, "ui", why, cap))) return rc;
    if ((rc = check_cols(s->iu_off, I, s->iu_col, U, "iu", why, cap))) return rc;
    if ((rc = check_cols(s->attr_off, I, s->attr_col, s->n_attrs, "attr", why, cap))) return rc;
    if ((rc = check_cols(s->ufeat_off, U, s->ufeat_col, s->n_user_feats, "ufeat", why, cap)))
        return rc;
    for (uint64_t i = 0; i < I; i++) {
        uint32_t c = s->item_category[i], b = s->item_brand[i];
        if ((c != SHELF_NONE && c >= s->n_categories) || (b != SHELF_NONE && b >= s->n_brands) ||
            s->item_price_bucket[i] > s->n_price_buckets) {
            snprintf(why, cap, "item %llu: category, brand or price bucket out of range",
                     (unsigned long long)i);
            return SHELF_ECORRUPT;
        }
    }
    return 0;
}

/* ============================================================================
 * From a store
 * ========================================================================== */

/* Growable byte buffer of NUL-terminated strings. */
typedef struct strbuf {
    char *p;
    uint64_t len, cap;
} strbuf;

static int strbuf_add(strbuf *b, const char *s, uint64_t *off)
{
    size_t n = strlen(s) + 1;
    if (b->len + n > b->cap) {
        uint64_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *p = realloc(b->p, (size_t)cap);
        if (!p) return SHELF_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    *off = b->len;
    b->len += n;
    return 0;
}

/* Adds the non-empty ones of parts[0..n) (NULL counts as empty) joined by
 * one space, NUL-terminated; *off receives where it starts. */
static int strbuf_add_joined(strbuf *b, const char *const *parts, int n, uint64_t *off)
{
    size_t len = 0;
    for (int k = 0; k < n; k++)
        if (parts[k] && *parts[k]) len += strlen(parts[k]) + 1;
    if (len == 0) len = 1; /* "" */
    if (b->len + len > b->cap) {
        uint64_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) cap *= 2;
        char *p = realloc(b->p, (size_t)cap);
        if (!p) return SHELF_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    char *w = b->p + b->len;
    for (int k = 0; k < n; k++) {
        if (!parts[k] || !*parts[k]) continue;
        if (w > b->p + b->len) *w++ = ' ';
        size_t l = strlen(parts[k]);
        memcpy(w, parts[k], l);
        w += l;
    }
    *w = '\0';
    *off = b->len;
    b->len += len;
    return 0;
}

/* One event while building. Array of structs on purpose: the counting sort
 * by user scatters whole events, one cache miss per event rather than one
 * per field. */
typedef struct raw_event {
    uint32_t user, item;
    int64_t ts;
    float value;
    uint16_t type;
} raw_event;

typedef struct build_ctx {
    shelf_store *st;
    uint32_t U, I, T;
    int err; /* first failure in a callback, with msg */
    char msg[512];
    shelf_progress *prog;

    /* events, insertion order */
    uint64_t n_ev, cap_ev;
    raw_event *ev;

    /* users and items */
    strbuf user_str, item_str, text_str;
    uint64_t *user_off, *item_off; /* UINT64_MAX: not seen by foreach */
    uint64_t *text_off;            /* [I] item text, UINT64_MAX as item_off */
    uint32_t *item_cat, *item_brand;
    double *item_price; /* NAN: no usable price */
    shelf_strmap *cats, *brands;
    uint32_t n_cat, n_brand;

    /* user features: attribute text of each live user (UINT64_MAX: none),
     * kept until every row is read so ids follow user index order */
    strbuf uattr_str;
    uint64_t *uattr_off;  /* [U] */
    uint64_t *ufeat_off;  /* [U+1] */
    uint32_t *ufeat_col;  /* [n_ufeat_links] */
    uint64_t n_ufeat_links, cap_ufeat_links;
    strbuf ufeat_str;     /* names */
    uint64_t *ufeat_name_off;
    uint32_t n_ufeat, cap_ufeat;
    uint32_t n_bad_uattr; /* attribute texts that are not JSON objects */

    /* (item << 32 | attr) links */
    uint64_t n_links, cap_links;
    uint64_t *links;
    uint32_t n_attrs;

    double t_sort, t_csr; /* seconds per phase, for the debug log */
    uint64_t last_id; /* the newest event id read */
} build_ctx;

static int ctx_fail(build_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ctx_fail(build_ctx *c, int code, const char *fmt, ...)
{
    if (!c->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, sizeof c->msg, fmt, ap);
        va_end(ap);
        c->err = code;
    }
    return code;
}

static int grow_events(build_ctx *c)
{
    uint64_t cap = c->cap_ev ? c->cap_ev * 2 : (uint64_t)1 << 16;
    if (cap > (uint64_t)SIZE_MAX / sizeof *c->ev) return SHELF_ENOMEM;
    raw_event *p = realloc(c->ev, (size_t)cap * sizeof *p);
    if (!p) return SHELF_ENOMEM;
    c->ev = p;
    c->cap_ev = cap;
    return 0;
}

static int on_event(void *vc, uint64_t event_id, const shelf_event *ev)
{
    build_ctx *c = vc;
    if (ev->user >= c->U || ev->item >= c->I || ev->type >= c->T)
        return ctx_fail(c, SHELF_ECORRUPT,
                        "event %llu: user %u, item %u or type %u out of range (%u users, %u "
                        "items, %u types)",
                        (unsigned long long)event_id, ev->user, ev->item, ev->type, c->U, c->I,
                        c->T);
    if (c->n_ev == c->cap_ev && grow_events(c))
        return ctx_fail(c, SHELF_ENOMEM, "out of memory after %llu events",
                        (unsigned long long)c->n_ev);
    if (event_id > c->last_id) c->last_id = event_id;
    c->ev[c->n_ev++] = (raw_event){.user = ev->user, .item = ev->item, .ts = ev->ts,
                                   .value = ev->value, .type = (uint16_t)ev->type};
    if ((c->n_ev & 0xffff) == 0) shelf_progress_update(c->prog, c->n_ev, "events read");
    return 0;
}

static int on_user(void *vc, uint32_t idx, const shelf_user *u)
{
    build_ctx *c = vc;
    if (idx >= c->U) return ctx_fail(c, SHELF_ECORRUPT, "user index %u out of range", idx);
    if (c->user_off[idx] != UINT64_MAX) return 0;
    if (strbuf_add(&c->user_str, u->id ? u->id : "", &c->user_off[idx]))
        return ctx_fail(c, SHELF_ENOMEM, "out of memory at user %u", idx);
    /* a deleted user's row ("\x01deleted:<idx>") has no features */
    if (u->attributes && *u->attributes && !(u->id && u->id[0] == '\x01') &&
        strbuf_add(&c->uattr_str, u->attributes, &c->uattr_off[idx]))
        return ctx_fail(c, SHELF_ENOMEM, "out of memory at user %u", idx);
    return 0;
}

/* Dense id of a category/brand string, in order of first appearance. */
static int dict_id(build_ctx *c, shelf_strmap *m, uint32_t *n, const char *s, uint32_t *id)
{
    if (!s || !*s) {
        *id = SHELF_NONE;
        return 0;
    }
    size_t len = strlen(s);
    if (shelf_strmap_get(m, s, len, id)) return 0;
    if (shelf_strmap_put(m, s, len, *n)) return SHELF_ENOMEM;
    *id = (*n)++;
    return 0;
}

static int on_item(void *vc, uint32_t idx, const shelf_item *it)
{
    build_ctx *c = vc;
    if (idx >= c->I) return ctx_fail(c, SHELF_ECORRUPT, "item index %u out of range", idx);
    if (c->item_off[idx] != UINT64_MAX) return 0;
    const char *const text[4] = {it->title, it->text, it->category, it->brand};
    if (strbuf_add(&c->item_str, it->id ? it->id : "", &c->item_off[idx]) ||
        strbuf_add_joined(&c->text_str, text, 4, &c->text_off[idx]) ||
        dict_id(c, c->cats, &c->n_cat, it->category, &c->item_cat[idx]) ||
        dict_id(c, c->brands, &c->n_brand, it->brand, &c->item_brand[idx]))
        return ctx_fail(c, SHELF_ENOMEM, "out of memory at item %u", idx);
    /* log(price) needs price > 0; a free item (0) sorts below all others as
     * log(0) = -inf would. Negative or non-finite prices count as unknown. */
    if (it->has_price && isfinite(it->price) && it->price >= 0) c->item_price[idx] = it->price;
    return 0;
}

static int on_attr(void *vc, uint32_t item, uint32_t attr)
{
    build_ctx *c = vc;
    if (item >= c->I)
        return ctx_fail(c, SHELF_ECORRUPT, "attribute link (item %u, attribute %u) out of range",
                        item, attr);
    if (c->n_links == c->cap_links) {
        uint64_t cap = c->cap_links ? c->cap_links * 2 : 4096;
        uint64_t *p = realloc(c->links, cap * sizeof *p);
        if (!p) return ctx_fail(c, SHELF_ENOMEM, "out of memory at attribute links");
        c->links = p;
        c->cap_links = cap;
    }
    c->links[c->n_links++] = (uint64_t)item << 32 | attr;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Price bucket thresholds: t[k-1] = the ceil(k*m/10)-th smallest price,
 * k = 1..9 (+inf past the end); bucket = 1 + #thresholds <= price. Quantiles
 * are invariant under the monotone log, so these are the deciles of log
 * price; ties share a bucket. */
static int price_buckets(const build_ctx *c, uint8_t *bucket)
{
    const uint32_t I = c->I;
    uint64_t m = 0;
    for (uint32_t i = 0; i < I; i++)
        if (!isnan(c->item_price[i])) m++;
    double *p = malloc((size_t)(m ? m : 1) * sizeof *p);
    if (!p) return SHELF_ENOMEM;
    m = 0;
    for (uint32_t i = 0; i < I; i++)
        if (!isnan(c->item_price[i])) p[m++] = c->item_price[i];
    qsort(p, (size_t)m, sizeof *p, cmp_double);
    double t[SHELF_PRICE_BUCKETS - 1];
    for (int k = 1; k < SHELF_PRICE_BUCKETS; k++) {
        uint64_t q = ((uint64_t)k * m + SHELF_PRICE_BUCKETS - 1) / SHELF_PRICE_BUCKETS;
        t[k - 1] = q < m ? p[q] : INFINITY;
    }
    free(p);
    for (uint32_t i = 0; i < I; i++) {
        double x = c->item_price[i];
        if (isnan(x)) {
            bucket[i] = 0;
            continue;
        }
        int b = 1;
        for (int k = 0; k < SHELF_PRICE_BUCKETS - 1; k++) b += x >= t[k];
        bucket[i] = (uint8_t)b;
    }
    return 0;
}

/* ---- user features ---------------------------------------------------------- */

/* Growable scratch: the "key=value" name being formed, a user's ids. */
typedef struct ufeat_scratch {
    char *name;
    size_t name_cap;
    uint32_t *ids;
    uint32_t n_ids, cap_ids;
} ufeat_scratch;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Interns "key=val" (a new id in order of first appearance) and adds its id
 * to the user's list in sc. 0 or SHELF_ENOMEM. */
static int ufeat_add(build_ctx *c, ufeat_scratch *sc, shelf_strmap *names, const char *key,
                     const char *val)
{
    size_t lk = strlen(key), lv = strlen(val), len = lk + 1 + lv;
    if (len + 1 > sc->name_cap) {
        size_t cap = sc->name_cap ? sc->name_cap : 256;
        while (cap < len + 1) cap *= 2;
        char *p = realloc(sc->name, cap);
        if (!p) return SHELF_ENOMEM;
        sc->name = p;
        sc->name_cap = cap;
    }
    memcpy(sc->name, key, lk);
    sc->name[lk] = '=';
    memcpy(sc->name + lk + 1, val, lv + 1);
    uint32_t id;
    if (!shelf_strmap_get(names, sc->name, len, &id)) {
        if (c->n_ufeat == UINT32_MAX - 1) return SHELF_ENOMEM;
        if (c->n_ufeat == c->cap_ufeat) {
            uint32_t cap = c->cap_ufeat ? c->cap_ufeat * 2 : 256;
            uint64_t *p = realloc(c->ufeat_name_off, (size_t)cap * sizeof *p);
            if (!p) return SHELF_ENOMEM;
            c->ufeat_name_off = p;
            c->cap_ufeat = cap;
        }
        id = c->n_ufeat;
        if (strbuf_add(&c->ufeat_str, sc->name, &c->ufeat_name_off[id]) ||
            shelf_strmap_put(names, sc->name, len, id))
            return SHELF_ENOMEM;
        c->n_ufeat++;
    }
    if (sc->n_ids == sc->cap_ids) {
        uint32_t cap = sc->cap_ids ? sc->cap_ids * 2 : 64;
        uint32_t *p = realloc(sc->ids, (size_t)cap * sizeof *p);
        if (!p) return SHELF_ENOMEM;
        sc->ids = p;
        sc->cap_ids = cap;
    }
    sc->ids[sc->n_ids++] = id;
    return 0;
}

/* Features of one user from its attribute object o into sc->ids. */
static int ufeat_user(build_ctx *c, ufeat_scratch *sc, shelf_strmap *names, const cJSON *o)
{
    char num[64];
    const char *val;
    for (const cJSON *j = o->child; j; j = j->next) {
        if (!j->string) continue;
        if (cJSON_IsArray(j)) {
            for (const cJSON *e = j->child; e; e = e->next)
                if (shelf__json_scalar_text(e, num, sizeof num, &val) &&
                    ufeat_add(c, sc, names, j->string, val))
                    return SHELF_ENOMEM;
        } else if (shelf__json_scalar_text(j, num, sizeof num, &val) &&
                   ufeat_add(c, sc, names, j->string, val)) {
            return SHELF_ENOMEM;
        }
    }
    return 0;
}

/* Every user's feature ids (sorted, distinct) and the names, from the
 * attribute texts kept by on_user, users by index. O(total attribute text +
 * links log links). 0 or SHELF_ENOMEM. */
static int build_user_feats(build_ctx *c)
{
    const uint32_t U = c->U;
    int rc = 0;
    ufeat_scratch sc = {0};
    shelf_strmap *names = shelf_strmap_new(256);
    c->ufeat_off = malloc(((size_t)U + 1) * sizeof *c->ufeat_off);
    if (!names || !c->ufeat_off) {
        rc = SHELF_ENOMEM;
        goto out;
    }
    c->ufeat_off[0] = 0;
    for (uint32_t u = 0; u < U; u++) {
        sc.n_ids = 0;
        if (c->uattr_off[u] != UINT64_MAX) {
            const char *text = c->uattr_str.p + c->uattr_off[u];
            cJSON *o = cJSON_Parse(text);
            if (cJSON_IsObject(o)) {
                rc = ufeat_user(c, &sc, names, o);
            } else {
                c->n_bad_uattr++;
            }
            cJSON_Delete(o);
            if (rc) goto out;
        }
        if (sc.n_ids > 1) qsort(sc.ids, sc.n_ids, sizeof *sc.ids, cmp_u32);
        uint32_t n = 0;
        for (uint32_t k = 0; k < sc.n_ids; k++)
            if (k == 0 || sc.ids[k] != sc.ids[k - 1]) sc.ids[n++] = sc.ids[k];
        if (c->n_ufeat_links + n > c->cap_ufeat_links) {
            uint64_t cap = c->cap_ufeat_links ? c->cap_ufeat_links * 2 : 4096;
            while (cap < c->n_ufeat_links + n) cap *= 2;
            uint32_t *p = realloc(c->ufeat_col, (size_t)cap * sizeof *p);
            if (!p) {
                rc = SHELF_ENOMEM;
                goto out;
            }
            c->ufeat_col = p;
            c->cap_ufeat_links = cap;
        }
        if (n) memcpy(c->ufeat_col + c->n_ufeat_links, sc.ids, (size_t)n * sizeof *sc.ids);
        c->n_ufeat_links += n;
        c->ufeat_off[u + 1] = c->n_ufeat_links;
    }
out:
    free(sc.name);
    free(sc.ids);
    shelf_strmap_free(names);
    return rc;
}

static void ctx_free(build_ctx *c)
{
    free(c->uattr_str.p);
    free(c->uattr_off);
    free(c->ufeat_off);
    free(c->ufeat_col);
    free(c->ufeat_str.p);
    free(c->ufeat_name_off);
    free(c->ev);
    free(c->user_str.p);
    free(c->item_str.p);
    free(c->text_str.p);
    free(c->user_off);
    free(c->item_off);
    free(c->text_off);
    free(c->item_cat);
    free(c->item_brand);
    free(c->item_price);
    shelf_strmap_free(c->cats);
    shelf_strmap_free(c->brands);
    free(c->links);
}

/* External ids that foreach_user/foreach_item did not give: ask the id map. */
static int fill_missing_ext(build_ctx *c, int users)
{
    uint32_t n = users ? c->U : c->I;
    uint64_t *off = users ? c->user_off : c->item_off;
    strbuf *b = users ? &c->user_str : &c->item_str;
    char buf[4096];
    for (uint32_t k = 0; k < n; k++) {
        if (off[k] != UINT64_MAX) continue;
        int rc = users ? shelf_store_user_ext(c->st, k, buf, sizeof buf)
                       : shelf_store_item_ext(c->st, k, buf, sizeof buf);
        if (rc) buf[0] = '\0';
        if (strbuf_add(b, buf, &off[k])) return SHELF_ENOMEM;
    }
    /* items without a row have no text either */
    if (!users)
        for (uint32_t k = 0; k < n; k++)
            if (c->text_off[k] == UINT64_MAX && strbuf_add(&c->text_str, "", &c->text_off[k]))
                return SHELF_ENOMEM;
    return 0;
}

/* Stable sort of a[0..n) by ts; tmp holds n entries. Insertion sort for
 * short runs (most users), merge sort above. */
static void sort_by_ts(raw_event *a, raw_event *tmp, uint64_t n)
{
    if (n <= 32) {
        for (uint64_t k = 1; k < n; k++) {
            raw_event x = a[k];
            uint64_t j = k;
            for (; j > 0 && a[j - 1].ts > x.ts; j--) a[j] = a[j - 1];
            a[j] = x;
        }
        return;
    }
    uint64_t h = n / 2;
    sort_by_ts(a, tmp, h);
    sort_by_ts(a + h, tmp, n - h);
    if (a[h - 1].ts <= a[h].ts) return;
    memcpy(tmp, a, (size_t)h * sizeof *a);
    uint64_t i = 0, j = h, k = 0;
    while (i < h && j < n) a[k++] = a[j].ts < tmp[i].ts ? a[j++] : tmp[i++];
    while (i < h) a[k++] = tmp[i++];
}

/* the event types' names and weights, checked dense */
typedef struct type_tab {
    strbuf str;
    uint64_t *off; /* [T] */
    float *w;      /* [T] */
} type_tab;

static void type_tab_free(type_tab *t)
{
    free(t->off), free(t->w), free(t->str.p);
}

static int read_types(build_ctx *c, type_tab *tt)
{
    shelf_store *st = c->st;
    const uint32_t T = c->T;
    if (T > 65536) return shelf_store_fail(st, SHELF_ERANGE, "snapshot: %u event types (at most 65536)", T);
    tt->off = malloc(((size_t)T + 1) * sizeof *tt->off);
    tt->w = malloc(((size_t)T + 1) * sizeof *tt->w);
    if (!tt->off || !tt->w) return shelf_store_fail(st, SHELF_ENOMEM, "snapshot: out of memory");
    int rc = 0;
    for (uint32_t t = 0; t < T && !rc; t++) {
        const char *name = shelf_store_event_type_name(st, t);
        uint32_t id = SHELF_NONE;
        float w = 0;
        if (!name) {
            rc = shelf_store_fail(st, SHELF_ECORRUPT, "snapshot: event type %u has no name", t);
        } else if ((rc = shelf_store_event_type(st, name, &id, &w)) == 0 && id != t) {
            rc = shelf_store_fail(st, SHELF_ECORRUPT,
                                  "snapshot: event type '%s' is %u, expected %u", name, id, t);
        } else if (!rc && strbuf_add(&tt->str, name, &tt->off[t])) {
            rc = shelf_store_fail(st, SHELF_ENOMEM, "snapshot: out of memory");
        }
        tt->w[t] = w;
    }
    return rc;
}

/* users, items, attributes and events of the store into the context; the
 * attribute links sorted and deduplicated (*n_links) */
static int read_store(build_ctx *c, uint64_t *n_links_out)
{
    shelf_store *st = c->st;
    const uint32_t U = c->U, I = c->I;
    int rc;
    c->user_off = malloc(((size_t)U + 1) * sizeof *c->user_off);
    c->item_off = malloc(((size_t)I + 1) * sizeof *c->item_off);
    c->text_off = malloc(((size_t)I + 1) * sizeof *c->text_off);
    c->item_cat = malloc(((size_t)I + 1) * sizeof *c->item_cat);
    c->item_brand = malloc(((size_t)I + 1) * sizeof *c->item_brand);
    c->item_price = malloc(((size_t)I + 1) * sizeof *c->item_price);
    c->uattr_off = malloc(((size_t)U + 1) * sizeof *c->uattr_off);
    c->cats = shelf_strmap_new(64);
    c->brands = shelf_strmap_new(64);
    if (!c->user_off || !c->uattr_off || !c->item_off || !c->text_off || !c->item_cat ||
        !c->item_brand || !c->item_price || !c->cats || !c->brands) {
        rc = shelf_store_fail(st, SHELF_ENOMEM, "snapshot: out of memory");
        return rc;
    }
    for (uint32_t u = 0; u < U; u++) c->user_off[u] = c->uattr_off[u] = UINT64_MAX;
    for (uint32_t i = 0; i < I; i++) {
        c->item_off[i] = c->text_off[i] = UINT64_MAX;
        c->item_cat[i] = c->item_brand[i] = SHELF_NONE;
        c->item_price[i] = NAN;
    }

#define SCAN(call)                                                                               \
    do {                                                                                         \
        rc = (call);                                                                             \
        if (c->err) {                                                                            \
            rc = shelf_store_fail(st, c->err, "snapshot: %s", c->msg);                           \
            return rc;                                                                      \
        }                                                                                        \
        if (rc) return rc;                                                                  \
    } while (0)

    SCAN(shelf_store_foreach_user(st, on_user, c));
    SCAN(shelf_store_foreach_item(st, on_item, c));
    {
        /* The count arrives through the out-parameter, so links are checked
         * against it after the scan. */
        uint32_t n_attrs = 0;
        SCAN(shelf_store_foreach_item_attr(st, on_attr, c, &n_attrs));
        c->n_attrs = n_attrs;
        for (uint64_t k = 0; k < c->n_links; k++)
            if ((uint32_t)c->links[k] >= n_attrs) {
                rc = shelf_store_fail(st, SHELF_ECORRUPT,
                                      "snapshot: attribute %u of item %u out of range (%u)",
                                      (uint32_t)c->links[k], (uint32_t)(c->links[k] >> 32),
                                      n_attrs);
                return rc;
            }
    }
    SCAN(shelf_store_foreach_event(st, 0, on_event, c));
#undef SCAN
    shelf_progress_update(c->prog, c->n_ev, "events read; building");
    if ((rc = fill_missing_ext(c, 1)) || (rc = fill_missing_ext(c, 0))) {
        rc = shelf_store_fail(st, rc, "snapshot: out of memory");
        return rc;
    }
    if (build_user_feats(c)) {
        rc = shelf_store_fail(st, SHELF_ENOMEM, "snapshot: out of memory at user features");
        return rc;
    }
    if (c->n_bad_uattr)
        shelf_debug("snapshot: %u users' attributes are not a JSON object (no features)",
                    c->n_bad_uattr);
    if (c->n_links) qsort(c->links, (size_t)c->n_links, sizeof *c->links, cmp_u64);
    uint64_t n_links = 0;
    for (uint64_t k = 0; k < c->n_links; k++)
        if (k == 0 || c->links[k] != c->links[k - 1]) c->links[n_links++] = c->links[k];
    *n_links_out = n_links;
    return 0;
}

/* Events: counting sort by user (stable: insertion order kept), then per
 * user a stable sort by ts where the row is out of order. Done before the
 * snapshot's block exists so that at most two event arrays live at once.
 * *user_off [U+1] and *by_user [E] are the caller's to free. */
static int group_events(build_ctx *c, uint64_t **user_off_out, raw_event **by_user_out)
{
    const uint32_t U = c->U;
    uint64_t *user_off = NULL;
    raw_event *by_user = NULL;
    {
        const uint64_t E = c->n_ev;
        user_off = calloc((size_t)U + 1, sizeof *user_off);
        uint64_t *cur = malloc(((size_t)U + 1) * sizeof *cur);
        by_user = malloc((size_t)(E ? E : 1) * sizeof *by_user);
        if (!user_off || !cur || !by_user) {
            free(cur);
            { free(user_off); free(by_user); return SHELF_ENOMEM; }
        }
        for (uint64_t e = 0; e < E; e++) user_off[c->ev[e].user + 1]++;
        uint64_t max_len = 0;
        for (uint32_t u = 0; u < U; u++) {
            if (user_off[u + 1] > max_len) max_len = user_off[u + 1];
            user_off[u + 1] += user_off[u];
        }
        memcpy(cur, user_off, (size_t)U * 8);
        for (uint64_t e = 0; e < E; e++) by_user[cur[c->ev[e].user]++] = c->ev[e];
        free(cur);
        free(c->ev);
        c->ev = NULL;
        raw_event *tmp = malloc((size_t)(max_len / 2 + 1) * sizeof *tmp);
        if (!tmp) { free(user_off); free(by_user); return SHELF_ENOMEM; }
        for (uint32_t u = 0; u < U; u++) {
            raw_event *r = by_user + user_off[u];
            uint64_t n = user_off[u + 1] - user_off[u], k = 1;
            while (k < n && r[k].ts >= r[k - 1].ts) k++;
            if (k < n) sort_by_ts(r, tmp, n);
        }
        free(tmp);
    }
    *user_off_out = user_off;
    *by_user_out = by_user;
    return 0;
}

/* the snapshot's block: sizes, names, features, attribute links and the
 * sequences unpacked from the grouped events */
static int fill_snapshot(build_ctx *c, shelf_snapshot *s, const type_tab *tt, uint64_t n_links,
                         const uint64_t *user_off, const raw_event *by_user)
{
    const uint32_t U = c->U, I = c->I, T = c->T;
    const strbuf type_str = tt->str;
    const uint64_t *type_off = tt->off;
    const float *type_w = tt->w;
    int rc;
    s->n_users = U;
    s->n_items = I;
    s->n_types = T;
    s->n_attrs = c->n_attrs;
    s->n_categories = c->n_cat;
    s->n_brands = c->n_brand;
    s->n_price_buckets = SHELF_PRICE_BUCKETS;
    s->n_events = c->n_ev;
    s->mem->n_attr_links = n_links;
    s->mem->user_ext_bytes = c->user_str.len;
    s->mem->item_ext_bytes = c->item_str.len;
    s->mem->type_name_bytes = type_str.len;
    s->mem->item_text_bytes = c->text_str.len;
    s->n_user_feats = c->n_ufeat;
    s->mem->n_ufeat_links = c->n_ufeat_links;
    s->mem->ufeat_name_bytes = c->ufeat_str.len;
    if ((rc = shelf__snap_alloc(s, block_main, N_BLOCK_MAIN))) return rc;

    /* names and features */
    memcpy((uint64_t *)s->user_ext_off, c->user_off, (size_t)U * 8);
    if (c->user_str.len) memcpy((char *)s->user_ext, c->user_str.p, (size_t)c->user_str.len);
    memcpy((uint64_t *)s->item_ext_off, c->item_off, (size_t)I * 8);
    if (c->item_str.len) memcpy((char *)s->item_ext, c->item_str.p, (size_t)c->item_str.len);
    memcpy((uint64_t *)s->item_text_off, c->text_off, (size_t)I * 8);
    if (c->text_str.len) memcpy((char *)s->item_text, c->text_str.p, (size_t)c->text_str.len);
    memcpy((uint64_t *)s->type_name_off, type_off, (size_t)T * 8);
    if (type_str.len) memcpy((char *)s->type_name, type_str.p, (size_t)type_str.len);
    memcpy((float *)s->type_weight, type_w, (size_t)T * sizeof(float));
    memcpy((uint64_t *)s->ufeat_off, c->ufeat_off, ((size_t)U + 1) * 8);
    if (c->n_ufeat_links)
        memcpy((uint32_t *)s->ufeat_col, c->ufeat_col, (size_t)c->n_ufeat_links * 4);
    if (c->n_ufeat)
        memcpy((uint64_t *)s->ufeat_name_off, c->ufeat_name_off, (size_t)c->n_ufeat * 8);
    if (c->ufeat_str.len) memcpy((char *)s->ufeat_name, c->ufeat_str.p, (size_t)c->ufeat_str.len);
    memcpy((uint32_t *)s->item_category, c->item_cat, (size_t)I * 4);
    memcpy((uint32_t *)s->item_brand, c->item_brand, (size_t)I * 4);
    if ((rc = price_buckets(c, (uint8_t *)s->item_price_bucket))) return rc;
    {
        uint64_t *attr_off = (uint64_t *)s->attr_off;
        uint32_t *attr_col = (uint32_t *)s->attr_col;
        uint64_t k = 0;
        attr_off[0] = 0;
        for (uint32_t i = 0; i < I; i++) {
            for (; k < n_links && (uint32_t)(c->links[k] >> 32) == i; k++)
                attr_col[k] = (uint32_t)c->links[k];
            attr_off[i + 1] = k;
        }
    }

    /* Sequences, unpacked from the sorted events into the arrays. */
    {
        uint32_t *seq_item = (uint32_t *)s->seq_item;
        uint16_t *seq_type = (uint16_t *)s->seq_type;
        float *seq_value = (float *)s->seq_value, *seq_weight = (float *)s->seq_weight;
        int64_t *seq_ts = (int64_t *)s->seq_ts;
        memcpy((uint64_t *)s->seq_off, user_off, ((size_t)U + 1) * 8);
        for (uint64_t e = 0; e < c->n_ev; e++) {
            const raw_event *r = &by_user[e];
            seq_item[e] = r->item;
            seq_type[e] = r->type;
            seq_value[e] = r->value;
            seq_ts[e] = r->ts;
            seq_weight[e] = type_w[r->type];
        }
    }
    return 0;
}

static int snapshot_build(build_ctx *c, shelf_snapshot **out)
{
    shelf_store *st = c->st;
    type_tab tt = {0};
    uint64_t *user_off = NULL, n_links = 0; /* [U+1] sequence offsets until the block exists */
    raw_event *by_user = NULL;             /* [E] events grouped by user */
    shelf_snapshot *s = NULL;
    int rc = read_types(c, &tt);
    if (!rc) rc = read_store(c, &n_links);
    if (rc) goto out;
    double t0 = shelf_now();
    if (group_events(c, &user_off, &by_user) || !(s = shelf__snap_new())) goto out_nomem;
    if (fill_snapshot(c, s, &tt, n_links, user_off, by_user)) goto out_nomem;
    free(by_user);
    by_user = NULL;
    free(user_off);
    user_off = NULL;
    double t1 = shelf_now();
    if (shelf__snap_build_csr(s)) goto out_nomem;
    c->t_sort = t1 - t0;
    c->t_csr = shelf_now() - t1;
    type_tab_free(&tt);
    *out = s;
    return 0;

out_nomem:
    shelf_snapshot_free(s);
    rc = shelf_store_fail(st, SHELF_ENOMEM, "snapshot: out of memory (%llu events)", (unsigned long long)c->n_ev);
out:
    free(by_user);
    free(user_off);
    type_tab_free(&tt);
    return rc;
}

int shelf_snapshot_from_store(shelf_store *st, int progress, shelf_snapshot **out)
{
    if (!st || !out) return SHELF_EINVAL;
    build_ctx c;
    memset(&c, 0, sizeof c);
    c.st = st;
    /* one view of the store while other connections write (an import, the
     * server): no event of a user or item the scans before it did not see;
     * a caller inside its own transaction has its view already */
    int own_read = shelf_store_begin_read(st) == 0;
    c.U = shelf_store_n_users(st);
    c.I = shelf_store_n_items(st);
    c.T = shelf_store_n_event_types(st);
    c.prog = shelf_progress_new("snapshot", 0, progress);
    double t0 = shelf_now();
    int rc = snapshot_build(&c, out);
    if (own_read) shelf_store_commit(st);
    shelf_progress_finish(c.prog);
    if (!rc) (*out)->last_event_id = c.last_id;
    if (!rc) {
        double t = shelf_now() - t0;
        shelf_debug("snapshot: %u users, %u items, %llu events, %llu pairs in %.2f s (read %.2f, "
                    "sort %.2f, csr %.2f)",
                    c.U, c.I, (unsigned long long)(*out)->n_events,
                    (unsigned long long)(*out)->n_nnz, t, t - c.t_sort - c.t_csr, c.t_sort,
                    c.t_csr);
    }
    ctx_free(&c);
    return rc;
}

/* ============================================================================
 * Subset
 * ========================================================================== */

int shelf_snapshot_subset(const shelf_snapshot *s, const uint8_t *keep, shelf_snapshot **out,
                          shelf_err *err)
{
    if (!s || !out || (!keep && s->n_events))
        return shelf_err_set(err, SHELF_EINVAL, "snapshot subset: NULL argument");
    if (!s->mem)
        return shelf_err_set(err, SHELF_EINVAL,
                             "snapshot subset: not a snapshot from from_store, subset or load");
    const uint32_t U = s->n_users;
    uint64_t E = 0;
    for (uint64_t e = 0; e < s->n_events; e++) E += keep[e] != 0;

    shelf_snapshot *t = shelf__snap_new();
    if (!t) return shelf_err_set(err, SHELF_ENOMEM, "snapshot subset: out of memory");
    t->n_users = s->n_users;
    t->n_items = s->n_items;
    t->n_types = s->n_types;
    t->n_attrs = s->n_attrs;
    t->n_categories = s->n_categories;
    t->n_brands = s->n_brands;
    t->n_price_buckets = s->n_price_buckets;
    t->n_events = E;
    t->mem->n_attr_links = s->mem->n_attr_links;
    t->mem->user_ext_bytes = s->mem->user_ext_bytes;
    t->mem->item_ext_bytes = s->mem->item_ext_bytes;
    t->mem->type_name_bytes = s->mem->type_name_bytes;
    t->mem->item_text_bytes = s->mem->item_text_bytes;
    t->n_user_feats = s->n_user_feats;
    t->mem->n_ufeat_links = s->mem->n_ufeat_links;
    t->mem->ufeat_name_bytes = s->mem->ufeat_name_bytes;
    if (shelf__snap_alloc(t, block_main, N_BLOCK_MAIN)) goto nomem;

    /* Features, names, item text and user features: copied unchanged (every
     * section from ITEM_CATEGORY on, appended ones included, is per
     * item/type/user). */
    for (int id = SHELF__SEC_ITEM_CATEGORY; id < SHELF__SEC_COUNT; id++) {
        uint64_t bytes = shelf__snap_sec_count(s, id) * sec_elem[id];
        if (bytes) memcpy((void *)shelf__snap_sec_get(t, id), shelf__snap_sec_get(s, id), bytes);
    }

    /* Kept events, order unchanged (already sorted per user). */
    uint64_t *seq_off = (uint64_t *)t->seq_off;
    uint32_t *seq_item = (uint32_t *)t->seq_item;
    uint16_t *seq_type = (uint16_t *)t->seq_type;
    float *seq_weight = (float *)t->seq_weight, *seq_value = (float *)t->seq_value;
    int64_t *seq_ts = (int64_t *)t->seq_ts;
    uint64_t k = 0;
    seq_off[0] = 0;
    for (uint32_t u = 0; u < U; u++) {
        for (uint64_t e = s->seq_off[u]; e < s->seq_off[u + 1]; e++) {
            if (!keep[e]) continue;
            seq_item[k] = s->seq_item[e];
            seq_type[k] = s->seq_type[e];
            seq_weight[k] = s->seq_weight[e];
            seq_value[k] = s->seq_value[e];
            seq_ts[k] = s->seq_ts[e];
            k++;
        }
        seq_off[u + 1] = k;
    }
    if (shelf__snap_build_csr(t)) goto nomem;
    *out = t;
    return 0;
nomem:
    shelf_snapshot_free(t);
    return shelf_err_set(err, SHELF_ENOMEM, "snapshot subset: out of memory (%llu events)",
                         (unsigned long long)E);
}
