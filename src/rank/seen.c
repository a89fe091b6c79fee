/* seen.c: the exclude-seen filter of the ranking room (rank_int.h): which
 * past events hide an item from a slate, per event type and time window. */
#include "rank_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int shelf__parse_duration(const char *s, size_t len, int64_t *out)
{
    if (len < 2) return -1;
    int64_t mul;
    switch (s[len - 1]) {
    case 's': mul = 1; break;
    case 'm': mul = 60; break;
    case 'h': mul = 3600; break;
    case 'd': mul = 86400; break;
    default: return -1;
    }
    int64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX / 86400 - 9) / 10) return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0) return -1;
    *out = v * mul;
    return 0;
}

int shelf__seen_parse(shelf__seen *out, const char *spec, char *const *type_names, uint32_t n_types, shelf_err *err)
{
    shelf__seen r = {0};
    if (spec && *spec && strcmp(spec, "none") != 0) {
        const char *p = spec;
        for (;;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            const char *colon = memchr(p, ':', len);
            size_t nlen = colon ? (size_t)(colon - p) : len;
            uint32_t t = UINT32_MAX;
            for (uint32_t k = 0; k < n_types; k++)
                if (strlen(type_names[k]) == nlen && !memcmp(type_names[k], p, nlen)) t = k;
            if (t == UINT32_MAX)
                return shelf_err_set(err, SHELF_EINVAL, "exclude-seen: unknown event type '%.*s' in '%s'", (int)nlen, p,
                                     spec);
            int64_t w = 0;
            if (colon && shelf__parse_duration(colon + 1, len - nlen - 1, &w))
                return shelf_err_set(err, SHELF_EINVAL,
                                     "exclude-seen: '%.*s': expected a duration like 30d, 12h, 15m or 90s after ':'",
                                     (int)len, p);
            if (r.n == SHELF_RANK_SEEN_MAX)
                return shelf_err_set(err, SHELF_EINVAL, "exclude-seen: more than %d rules", SHELF_RANK_SEEN_MAX);
            r.type[r.n] = t;
            r.window_s[r.n++] = w;
            if (!end) break;
            p = end + 1;
        }
    }
    *out = r;
    return 0;
}

void shelf__seen_filter(float *scores, uint32_t n, const shelf__seen *seen, const uint32_t *items,
                        const uint16_t *types, const int64_t *ts, size_t n_hist, int64_t now)
{
    if (!seen->n || !types) return; /* without types no rule applies */
    for (size_t k = 0; k < n_hist; k++) {
        if (items[k] >= n) continue;
        for (uint32_t r = 0; r < seen->n; r++) {
            if (types[k] != seen->type[r]) continue;
            int64_t w = seen->window_s[r];
            if (w == 0 || !ts || ts[k] <= 0 || now - ts[k] <= w) {
                scores[items[k]] = -INFINITY;
                break;
            }
        }
    }
}
