/* check.c: the checks of values and texts on their way in (check_int.h),
 * shared by the server's request bodies and every importer. */
#include "core/check_int.h"

#include "shelf/core.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

int shelf__check_float(double v, float *out, char *why, size_t cap)
{
    if (!isfinite(v)) {
        snprintf(why, cap, "not a finite number");
        return SHELF_ERANGE;
    }
    if (fabs(v) > FLT_MAX) {
        snprintf(why, cap, "%g is beyond the range of a float (+-%g)", v, (double)FLT_MAX);
        return SHELF_ERANGE;
    }
    *out = (float)v;
    return 0;
}

int shelf__check_text(const char *s, size_t len, size_t *bad)
{
    const char *nul = memchr(s, '\0', len);
    size_t end = nul ? (size_t)(nul - s) : len; /* a fault before the NUL comes first */
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < end) {
        /* ASCII: 8 bytes at a time, then byte by byte up to the next other */
        for (; i + 8 <= end; i += 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
        }
        while (i < end && u[i] < 0x80) i++;
        if (i == end) break;
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(u + i, (utf8proc_ssize_t)(end - i), &c);
        if (k <= 0) {
            *bad = i;
            return SHELF__TEXT_UTF8;
        }
        i += (size_t)k;
    }
    if (!nul) return SHELF__TEXT_OK;
    *bad = end;
    return SHELF__TEXT_NUL;
}

/* the fault as text; mark: C0 80 is the mark of a NUL written so ("\\u0000"
 * in JSON, "%00" in a URL), NULL: none */
static void text_why(const char *s, size_t len, int fault, size_t at, const char *mark, char *why, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    if (fault == SHELF__TEXT_NUL)
        snprintf(why, cap, "NUL byte at byte offset %zu", at);
    else if (mark && u[at] == 0xC0 && at + 1 < len && u[at + 1] == 0x80)
        snprintf(why, cap, "NUL character (%s) at byte offset %zu", mark, at);
    else
        snprintf(why, cap, "invalid UTF-8 at byte offset %zu (0x%02x)", at, (unsigned)u[at]);
}

int shelf__check_text_why(const char *s, size_t len, char *why, size_t cap)
{
    size_t at;
    int fault = shelf__check_text(s, len, &at);
    if (fault == SHELF__TEXT_OK) return 0;
    text_why(s, len, fault, at, NULL, why, cap);
    return SHELF_EFORMAT;
}

int shelf__check_url_text_why(const char *s, size_t len, char *why, size_t cap)
{
    size_t at;
    int fault = shelf__check_text(s, len, &at);
    if (fault == SHELF__TEXT_OK) return 0;
    text_why(s, len, fault, at, "%00", why, cap);
    return SHELF_EFORMAT;
}

size_t shelf__url_unescape(char *s)
{
    static const char hex[] = "0123456789abcdef";
    char *r = s, *w = s;
    while (*r) {
        const char *hi, *lo;
        if (r[0] == '%' && r[1] && r[2] && (hi = strchr(hex, r[1] | 0x20)) && (lo = strchr(hex, r[2] | 0x20))) {
            unsigned char c = (unsigned char)((hi - hex) << 4 | (lo - hex));
            if (c) {
                *w++ = (char)c;
            } else { /* the mark of a NUL: C0 80 fits where %00 was */
                *w++ = (char)0xC0;
                *w++ = (char)0x80;
            }
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* 1 when t[at..n) starts with the escape \u0000 */
static int nul_escape(const char *t, size_t at, size_t n)
{
    return at + 6 <= n && t[at + 1] == 'u' && memcmp(t + at + 2, "0000", 4) == 0;
}

size_t shelf__json_mark_nul(char *t, size_t *len)
{
    size_t n = *len, r = 0;
    /* find the first one without writing: most texts have none */
    for (;;) {
        const char *b = memchr(t + r, '\\', n - r);
        if (!b) return 0;
        r = (size_t)(b - t);
        if (nul_escape(t, r, n)) break;
        r += 2; /* past the escaped character: the text \\u0000 is a backslash, then "u0000" */
        if (r >= n) return 0;
    }
    size_t w = r, marks = 0;
    while (r < n) {
        if (t[r] != '\\') {
            t[w++] = t[r++];
        } else if (nul_escape(t, r, n)) {
            t[w++] = (char)0xC0;
            t[w++] = (char)0x80;
            r += 6;
            marks++;
        } else {
            t[w++] = t[r++];
            if (r < n) t[w++] = t[r++];
        }
    }
    t[w] = '\0';
    *len = w;
    return marks;
}

/* path + appended step, cut to cap */
static void path_step(char *path, size_t cap, size_t at, const cJSON *c, int index)
{
    if (at >= cap) return;
    if (c->string) snprintf(path + at, cap - at, ".%s", c->string);
    else snprintf(path + at, cap - at, "[%d]", index);
}

static int check_node(const cJSON *j, char *path, size_t pcap, char *why, size_t wcap)
{
    size_t at = strlen(path), bad;
    if (cJSON_IsString(j) && j->valuestring) {
        const char *s = j->valuestring;
        size_t n = strlen(s);
        int fault = shelf__check_text(s, n, &bad);
        if (fault) text_why(s, n, fault, bad, "\\u0000", why, wcap);
        return fault ? SHELF_EFORMAT : 0;
    }
    int index = 0;
    for (const cJSON *c = (cJSON_IsArray(j) || cJSON_IsObject(j)) ? j->child : NULL; c; c = c->next, index++) {
        if (c->string) {
            size_t n = strlen(c->string);
            int fault = shelf__check_text(c->string, n, &bad);
            if (fault) {
                size_t k = (size_t)snprintf(why, wcap, "member name: ");
                if (k < wcap) text_why(c->string, n, fault, bad, "\\u0000", why + k, wcap - k);
                return SHELF_EFORMAT;
            }
        }
        path_step(path, pcap, at, c, index);
        int rc = check_node(c, path, pcap, why, wcap);
        if (rc) return rc;
        if (at < pcap) path[at] = '\0';
    }
    return 0;
}

int shelf__check_json(const cJSON *j, char *path, size_t pcap, char *why, size_t wcap)
{
    if (pcap) path[0] = '\0';
    if (wcap) why[0] = '\0';
    return check_node(j, path, pcap, why, wcap);
}
