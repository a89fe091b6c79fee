/* arena.c: bump allocator with a chain of blocks, freed or reset in one call. */
#include "shelf/core.h"
#include "core/assert_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct block {
    struct block *next;
    size_t cap, used;
    unsigned char data[];
} block;

struct shelf_arena {
    block *head;  /* current block (newest) */
    size_t block_size;
    size_t total; /* bytes handed out since last reset */
};

static block *block_new(size_t cap)
{
    block *b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

shelf_arena *shelf_arena_new(size_t block_size)
{
    shelf_arena *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->block_size = block_size ? block_size : (size_t)1 << 20;
    a->head = block_new(a->block_size);
    if (!a->head) {
        free(a);
        return NULL;
    }
    return a;
}

void *shelf_arena_alloc(shelf_arena *a, size_t size, size_t align)
{
    if (align == 0) align = 1;
    SHELF_ASSERT((align & (align - 1)) == 0 && align <= 4096);
    block *b = a->head;
    uintptr_t base = (uintptr_t)b->data;
    size_t off = ((base + b->used + align - 1) & ~(uintptr_t)(align - 1)) - base;
    if (off > b->cap || size > b->cap - off) {
        if (size > SIZE_MAX - align) return NULL;
        size_t cap = a->block_size;
        if (size + align > cap) cap = size + align;
        block *nb = block_new(cap);
        if (!nb) return NULL;
        nb->next = b;
        a->head = b = nb;
        base = (uintptr_t)b->data;
        off = ((base + align - 1) & ~(uintptr_t)(align - 1)) - base;
    }
    b->used = off + size;
    a->total += size;
    return b->data + off;
}

char *shelf_arena_strndup(shelf_arena *a, const char *s, size_t n)
{
    char *p = shelf_arena_alloc(a, n + 1, 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *shelf_arena_strdup(shelf_arena *a, const char *s)
{
    return shelf_arena_strndup(a, s, strlen(s));
}

void shelf_arena_reset(shelf_arena *a)
{
    /* keep the oldest block (the first one allocated), free the rest */
    block *b = a->head;
    while (b->next) {
        block *next = b->next;
        free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
    a->total = 0;
}

size_t shelf_arena_used(const shelf_arena *a) { return a->total; }

void shelf_arena_free(shelf_arena *a)
{
    if (!a) return;
    block *b = a->head;
    while (b) {
        block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}
