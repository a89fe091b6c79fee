/* sbuf.c: a small growing text buffer for building JSON and other text
 * without a tree of allocations: the importers' attribute objects, the
 * server's slate answers. A failed allocation sets oom and makes every later
 * call a no-op, so callers check once at the end. */
#include "core/sbuf_int.h"

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
    if (sbuf_room(b, n + 2)) return;
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *put = NULL;
        size_t k = 0;
        switch (c) {
        case '"': put = "\\\""; k = 2; break;
        case '\\': put = "\\\\"; k = 2; break;
        case '\n': put = "\\n"; k = 2; break;
        case '\r': put = "\\r"; k = 2; break;
        case '\t': put = "\\t"; k = 2; break;
        default:
            if (c < 0x20) {
                k = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
                put = esc;
            }
        }
        if (put) {
            if (sbuf_room(b, k + (n - i) + 1)) return;
            memcpy(b->p + b->len, put, k);
            b->len += k;
        } else {
            b->p[b->len++] = (char)c;
        }
    }
    if (sbuf_room(b, 1)) return;
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
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
