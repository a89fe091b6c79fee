/* sbuf_int.h: a small growing text buffer (JSON building), inside libshelf */
#ifndef SHELF_CORE_SBUF_INT_H
#define SHELF_CORE_SBUF_INT_H

#include <stddef.h>

typedef struct shelf__sbuf {
    char *p; /* NUL-terminated while not oom */
    size_t len, cap;
    int oom; /* an allocation failed: the text is incomplete */
} shelf__sbuf;
void shelf__sbuf_put(shelf__sbuf *b, const char *s, size_t n);
/* Appends s[0..n) as a JSON string literal (quotes, escapes). */
void shelf__sbuf_json_str(shelf__sbuf *b, const char *s, size_t n);
/* The same for a NUL-terminated string. */
void shelf__sbuf_cstr(shelf__sbuf *b, const char *s);
void shelf__sbuf_printf(shelf__sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A float as a JSON number that reads back to the same float (%.9g); null
 * when not finite. */
void shelf__sbuf_float(shelf__sbuf *b, float x);
void shelf__sbuf_free(shelf__sbuf *b);
/* appends a string literal */
#define SBUF_LIT(b, lit) shelf__sbuf_put((b), "" lit, sizeof(lit) - 1)

#endif
