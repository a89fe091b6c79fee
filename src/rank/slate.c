/* slate.c: the slate's storage (slate.h). */
#include "shelf/slate.h"
#include "shelf/store.h" /* SHELF_NONE */

#include <stdlib.h>
#include <string.h>

int shelf_slate_reserve(shelf_slate *s, uint32_t cap)
{
    shelf_slate_item *it = s->items;
    uint32_t have = s->cap;
    if (cap > have) {
        shelf_slate_item *n = realloc(it, (size_t)cap * sizeof *n);
        if (!n) return SHELF_ENOMEM;
        it = n;
        have = cap;
    }
    memset(s, 0, sizeof *s);
    s->items = it;
    s->cap = have;
    s->user = SHELF_NONE;
    return 0;
}

void shelf_slate_free(shelf_slate *s)
{
    if (!s) return;
    free(s->items);
    s->items = NULL;
    s->n = s->cap = 0;
}
