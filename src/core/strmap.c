/* strmap.c: string -> uint32 hash map with open addressing (linear probing),
 * xxh3 hashes, keys copied into an arena. Used for the id maps. */
#include "shelf/core.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define INLINE_KEY 16 /* keys this short live in the slot: one cache miss a look-up */

typedef struct slot {
    uint64_t hash; /* 0 = empty (real hashes are forced non-zero) */
    uint32_t len;
    uint32_t val;
    union {
        char inline_key[INLINE_KEY];
        const char *ptr; /* longer keys, in the arena */
    } k;
} slot;

static inline const char *slot_key(const slot *s)
{
    return s->len <= INLINE_KEY ? s->k.inline_key : s->k.ptr;
}

struct shelf_strmap {
    slot *slots;
    size_t cap; /* power of two */
    size_t count;
    shelf_arena *keys;
};

static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = XXH3_64bits(key, len);
    return h ? h : 1;
}

shelf_strmap *shelf_strmap_new(size_t capacity_hint)
{
    shelf_strmap *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    size_t cap = 16;
    while (cap < capacity_hint * 2) cap <<= 1;
    m->slots = calloc(cap, sizeof *m->slots);
    m->keys = shelf_arena_new(0);
    if (!m->slots || !m->keys) {
        shelf_strmap_free(m);
        return NULL;
    }
    m->cap = cap;
    return m;
}

void shelf_strmap_free(shelf_strmap *m)
{
    if (!m) return;
    free(m->slots);
    shelf_arena_free(m->keys);
    free(m);
}

static slot *find(const shelf_strmap *m, uint64_t h, const char *key, size_t len)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot *s = &m->slots[i];
        if (s->hash == 0) return s;
        if (s->hash == h && s->len == len && memcmp(slot_key(s), key, len) == 0) return s;
    }
}

int shelf_strmap_get(const shelf_strmap *m, const char *key, size_t len, uint32_t *val)
{
    slot *s = find(m, key_hash(key, len), key, len);
    if (s->hash == 0) return 0;
    *val = s->val;
    return 1;
}

static int grow(shelf_strmap *m)
{
    size_t ncap = m->cap * 2;
    slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return SHELF_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->slots[i];
        if (!s->hash) continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].hash) j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int shelf_strmap_put(shelf_strmap *m, const char *key, size_t len, uint32_t val)
{
    if (len > UINT32_MAX) return SHELF_EINVAL;
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = grow(m);
        if (rc) return rc;
    }
    uint64_t h = key_hash(key, len);
    slot *s = find(m, h, key, len);
    if (s->hash) {
        s->val = val;
        return 0;
    }
    if (len <= INLINE_KEY) {
        memcpy(s->k.inline_key, key, len);
    } else {
        char *k = shelf_arena_strndup(m->keys, key, len);
        if (!k) return SHELF_ENOMEM;
        s->k.ptr = k;
    }
    s->hash = h;
    s->len = (uint32_t)len;
    s->val = val;
    m->count++;
    return 0;
}

size_t shelf_strmap_count(const shelf_strmap *m) { return m->count; }
