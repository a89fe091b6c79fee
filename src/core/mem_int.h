/* mem_int.h: the teardown of a struct that owns many arrays, in one call
 * instead of a free() a line. */
#ifndef SHELF_MEM_INT_H
#define SHELF_MEM_INT_H

#include <stdlib.h>

/* free(p[i]) for i in [0, n); NULLs are fine */
static inline void shelf__free_each(void *const *p, size_t n)
{
    for (size_t i = 0; i < n; i++) free(p[i]);
}

/* SHELF__FREE_ALL(a->x, a->y, ...): frees every pointer named */
#define SHELF__FREE_ALL(...) \
    shelf__free_each((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

#endif
