/* sbuf.c: the one growing text buffer of libshelf, for building JSON and
 * other text without a tree of allocations: the importers' attribute
 * objects, the server's slate answers and metrics. JSON string literals are
 * printed by cJSON. A failed allocation sets oom and makes every later call
 * a no-op, so callers check once at the end. */
#include "core/sbuf_int.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sbuf_room(shelf__sbuf *b, size_t n)
{
    if (b->oom) return -1;
    if (b->len + n + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->len + n + 1) {
        if (cap > SIZE_MAX / 2) return b->oom = 1, -1;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return b->oom = 1, -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

void shelf__sbuf_put(shelf__sbuf *b, const char *s, size_t n)
{
    if (sbuf_room(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void shelf__sbuf_json_str(shelf__sbuf *b, const char *s, size_t n)
{
    /* cJSON prints the literal, into the buffer itself: it needs the text
     * NUL-terminated, and at most 6 bytes per byte (\u00XX) and the quotes
     * (its manual asks for 5 bytes to spare) */
    if (n > (SIZE_MAX - 16) / 6 || n > (size_t)INT_MAX / 8 || sbuf_room(b, 6 * n + 8)) {
        b->oom = 1;
        return;
    }
    char small[256], *text = n < sizeof small ? small : malloc(n + 1);
    if (!text) {
        b->oom = 1;
        return;
    }
    memcpy(text, s, n);
    text[n] = '\0';
    cJSON lit = {.type = cJSON_String, .valuestring = text};
    if (cJSON_PrintPreallocated(&lit, b->p + b->len, (int)(6 * n + 8), 0)) b->len += strlen(b->p + b->len);
    else b->oom = 1;
    if (text != small) free(text);
    if (!b->oom) b->p[b->len] = '\0';
}

void shelf__sbuf_free(shelf__sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void shelf__sbuf_cstr(shelf__sbuf *b, const char *s) { shelf__sbuf_json_str(b, s, strlen(s)); }

void shelf__sbuf_printf(shelf__sbuf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        shelf__sbuf_put(b, small, (size_t)n);
        return;
    }
    if (sbuf_room(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void shelf__sbuf_float(shelf__sbuf *b, float x)
{
    if (!isfinite(x)) {
        shelf__sbuf_put(b, "null", 4);
        return;
    }
    shelf__sbuf_printf(b, "%.9g", (double)x);
}
