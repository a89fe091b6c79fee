/* assert_int.h: SHELF_ASSERT, the library's check of broken invariants (a
 * bug, never bad input: those get a status code). Internal: not part of the
 * public headers or the ABI. */
#ifndef SHELF_CORE_ASSERT_INT_H
#define SHELF_CORE_ASSERT_INT_H

/* prints "file:line: assertion failed: expr" and aborts */
void shelf__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#define SHELF_ASSERT(c)                                                                                            \
    do {                                                                                                           \
        if (!(c)) shelf__assert_fail(#c, __FILE__, __LINE__);                                                    \
    } while (0)

#endif
