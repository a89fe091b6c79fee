/* search.c: text search over the items' title and text in the SQLite store
 * (search_int.h): the FTS5 trigram index of migration 6 ranked by bm25, or
 * for a query of words shorter than the trigram a substring scan; each
 * match with a snippet. */
#include "store_int.h"
#include "store/search_int.h"
#include "core/sbuf_int.h"

#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 64       /* words of a query; the rest are not searched */
#define SCAN_BEFORE 12     /* the scan's snippet: characters kept before the first match */
#define SCAN_CHARS 64      /* and its length in characters */
#define MARK_OPEN '\x02'   /* where snippet() marks a match; made into <mark> or [ ] */
#define MARK_CLOSE '\x03'

typedef struct word {
    const char *p;
    size_t len;
} word;

/* ---- words ------------------------------------------------------------------------------ */

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

/* bytes of white space at s: ASCII blanks, or U+3000 (the ideographic space of CJK input) */
static size_t space_at(const char *s)
{
    if (*s == ' ' || (*s >= '\t' && *s <= '\r')) return 1;
    return !strncmp(s, "\xe3\x80\x80", 3) ? 3 : 0;
}

static size_t split_words(const char *q, word *w, size_t max)
{
    size_t n = 0;
    while (*q && n < max) {
        size_t sp = space_at(q);
        if (sp) {
            q += sp;
            continue;
        }
        const char *start = q;
        while (*q && !space_at(q)) q++;
        w[n++] = (word){start, (size_t)(q - start)};
    }
    return n;
}

/* The FTS5 expression of the words the trigram can match: each one an FTS5
 * string ("..." with " doubled, so that no character of the query is
 * syntax), joined by OR. Returns how many words it holds. */
static size_t fts_expr(shelf__sbuf *b, const word *w, size_t n)
{
    size_t used = 0;
    for (size_t k = 0; k < n; k++) {
        if (utf8_chars(w[k].p, w[k].len) < SHELF__SEARCH_MIN_CHARS) continue;
        if (used++) SBUF_LIT(b, " OR ");
        SBUF_LIT(b, "\"");
        for (const char *p = w[k].p; p < w[k].p + w[k].len; p++) {
            if (*p == '"') SBUF_LIT(b, "\"");
            shelf__sbuf_put(b, p, 1);
        }
        SBUF_LIT(b, "\"");
    }
    return used;
}

/* ---- snippets ------------------------------------------------------------------------- */

static void put_str(shelf__sbuf *b, const char *s) { shelf__sbuf_put(b, s, strlen(s)); }

/* s[0..n) as snippet text: HTML-escaped when html, the marks made tags */
static void put_snippet(shelf__sbuf *b, const char *s, size_t n, int html)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == MARK_OPEN) put_str(b, html ? "<mark>" : "[");
        else if (c == MARK_CLOSE) put_str(b, html ? "</mark>" : "]");
        else if (html && c == '&') SBUF_LIT(b, "&amp;");
        else if (html && c == '<') SBUF_LIT(b, "&lt;");
        else if (html && c == '>') SBUF_LIT(b, "&gt;");
        else if (html && c == '"') SBUF_LIT(b, "&quot;");
        else if (html && c == '\'') SBUF_LIT(b, "&#39;");
        else shelf__sbuf_put(b, &c, 1);
    }
}

static char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* 1 when w occurs at s (s holds at least w.len bytes), ASCII letters in any case */
static int word_at(const char *s, word w)
{
    for (size_t i = 0; i < w.len; i++)
        if (ascii_lower(s[i]) != ascii_lower(w.p[i])) return 0;
    return 1;
}

/* the byte offset of the first occurrence of any word in t (len bytes), or len */
static size_t first_match(const char *t, size_t len, const word *w, size_t n, size_t *wlen)
{
    for (size_t i = 0; i < len; i++)
        for (size_t k = 0; k < n; k++)
            if (w[k].len <= len - i && word_at(t + i, w[k])) return *wlen = w[k].len, i;
    return len;
}

/* The scan's snippet of text t: SCAN_CHARS characters from a little before
 * the first match, every match in it marked, "…" where it was cut. */
static void scan_snippet(shelf__sbuf *b, const char *t, const word *w, size_t n, int html)
{
    size_t len = strlen(t), wl = 0, at = first_match(t, len, w, n, &wl), start = at == len ? 0 : at, end;
    for (int c = 0; start > 0 && c < SCAN_BEFORE;) /* back SCAN_BEFORE characters */
        c += ((unsigned char)t[--start] & 0xc0) != 0x80;
    int chars = 0;
    for (end = start; end < len && chars < SCAN_CHARS; chars++) {
        end++;
        while (end < len && ((unsigned char)t[end] & 0xc0) == 0x80) end++;
    }
    if (start > 0) put_str(b, "…");
    for (size_t i = start; i < end;) {
        size_t k = 0;
        while (k < n && !(w[k].len <= len - i && word_at(t + i, w[k]))) k++;
        size_t m = k < n ? w[k].len : 1;
        if (k < n) put_str(b, html ? "<mark>" : "[");
        put_snippet(b, t + i, m, html);
        if (k < n) put_str(b, html ? "</mark>" : "]");
        i += m;
    }
    if (end < len) put_str(b, "…");
}

/* ---- hits ----------------------------------------------------------------------------- */

static int add_hit(shelf__search_res *r, size_t *cap, uint32_t item, float score, const char *id, const char *kind,
                   const char *title, const shelf__sbuf *snip)
{
    if (r->n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        shelf__search_hit *h = realloc(r->hit, c * sizeof *h);
        if (!h) return SHELF_ENOMEM;
        r->hit = h;
        *cap = c;
    }
    const char *s[4] = {id ? id : "", kind ? kind : "", title ? title : "", snip->p ? snip->p : ""};
    size_t l[4], total = 0;
    for (int k = 0; k < 4; k++) total += (l[k] = strlen(s[k])) + 1;
    char *buf = malloc(total), *p = buf;
    if (!buf) return SHELF_ENOMEM;
    const char **dst[4];
    shelf__search_hit *h = &r->hit[r->n++];
    *h = (shelf__search_hit){.item = item, .score = score, .buf = buf};
    dst[0] = &h->id, dst[1] = &h->kind, dst[2] = &h->title, dst[3] = &h->snippet;
    for (int k = 0; k < 4; k++) {
        memcpy(p, s[k], l[k] + 1);
        *dst[k] = p;
        p += l[k] + 1;
    }
    return 0;
}

void shelf__search_res_free(shelf__search_res *r)
{
    if (!r) return;
    for (size_t k = 0; k < r->n; k++) free(r->hit[k].buf);
    free(r->hit);
    *r = (shelf__search_res){0};
}

static const char *col_text(sqlite3_stmt *s, int i) { return (const char *)sqlite3_column_text(s, i); }

/* ---- the FTS5 index ------------------------------------------------------------------- */

/* bm25 with the title weighted twice the text; ties by index */
static int fts_search(shelf_store *st, const shelf__search_q *q, const char *expr, shelf__search_res *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT items.idx, -bm25(items_fts, 2.0, 1.0), "
                           "  snippet(items_fts, -1, char(2), char(3), '…', 32), " /* 32 trigrams: about 32 characters */
                           "  items.ext_id, items.kind, items.title "
                           "FROM items_fts JOIN items ON items.idx = items_fts.rowid "
                           "WHERE items_fts MATCH ?1 AND items.available = 1 AND (?2 IS NULL OR items.kind = ?2) "
                           "ORDER BY bm25(items_fts, 2.0, 1.0), items.idx LIMIT ?3",
                           -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "search");
    sqlite3_bind_text(s, 1, expr, -1, SQLITE_STATIC);
    if (q->kind) sqlite3_bind_text(s, 2, q->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, q->limit);
    int r = SQLITE_DONE, rc = 0;
    size_t cap = 0;
    shelf__sbuf snip = {0};
    while (!rc && (r = sqlite3_step(s)) == SQLITE_ROW) {
        const char *raw = col_text(s, 2);
        snip.len = 0;
        if (raw) put_snippet(&snip, raw, strlen(raw), q->html);
        rc = snip.oom ? SHELF_ENOMEM
                      : add_hit(out, &cap, (uint32_t)sqlite3_column_int64(s, 0), (float)sqlite3_column_double(s, 1),
                                col_text(s, 3), col_text(s, 4), col_text(s, 5), &snip);
    }
    if (rc) rc = shelf_store_fail(st, rc, "search: out of memory");
    else if (r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "search");
    shelf__sbuf_free(&snip);
    sqlite3_finalize(s);
    return rc;
}

/* ---- the scan of short words ------------------------------------------------------------ */

typedef struct scan_hit {
    uint32_t item;
    float score;
} scan_hit;

static int by_score(const void *a, const void *b)
{
    const scan_hit *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* The hit count of the words in title and text: 2 per word in the title, 1
 * per word in the text; 0 unless every word is in one of them. */
static float scan_score(const char *title, const char *text, const word *w, size_t n)
{
    float sc = 0;
    size_t tl = title ? strlen(title) : 0, xl = text ? strlen(text) : 0, wl;
    for (size_t k = 0; k < n; k++) {
        int in_title = title && first_match(title, tl, &w[k], 1, &wl) < tl;
        int in_text = text && first_match(text, xl, &w[k], 1, &wl) < xl;
        if (!in_title && !in_text) return 0;
        sc += 2.0f * (float)in_title + (float)in_text;
    }
    return sc;
}

/* Every available item (of the kind) holding each word, in any case of
 * ASCII letters; SQLite narrows them by the first word, which it lowers as
 * the words are (ASCII only). */
static int scan_matches(shelf_store *st, const shelf__search_q *q, const word *w, size_t n, scan_hit **out,
                        size_t *n_out)
{
    char first[4 * SHELF__SEARCH_MIN_CHARS + 1];
    size_t fl = w[0].len < sizeof first - 1 ? w[0].len : sizeof first - 1;
    for (size_t i = 0; i < fl; i++) first[i] = ascii_lower(w[0].p[i]);
    first[fl] = '\0';
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT idx, title, text FROM items WHERE available = 1 AND (?1 IS NULL OR kind = ?1) "
                           "AND (instr(lower(title), ?2) > 0 OR instr(lower(text), ?2) > 0)",
                           -1, &s, NULL) != SQLITE_OK)
        return shelf__store_sqlfail(st, "search");
    if (q->kind) sqlite3_bind_text(s, 1, q->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, first, -1, SQLITE_STATIC);
    scan_hit *h = NULL;
    size_t m = 0, cap = 0;
    int r = SQLITE_DONE, rc = 0;
    while (!rc && (r = sqlite3_step(s)) == SQLITE_ROW) {
        float sc = scan_score(col_text(s, 1), col_text(s, 2), w, n);
        if (sc <= 0) continue;
        if (m == cap) {
            scan_hit *g = realloc(h, (cap = cap ? cap * 2 : 64) * sizeof *g);
            if (!g) {
                rc = shelf_store_fail(st, SHELF_ENOMEM, "search: out of memory");
                break;
            }
            h = g;
        }
        h[m++] = (scan_hit){(uint32_t)sqlite3_column_int64(s, 0), sc};
    }
    if (!rc && r != SQLITE_DONE) rc = shelf__store_sqlfail(st, "search");
    sqlite3_finalize(s);
    if (rc) free(h);
    else *out = h, *n_out = m;
    return rc;
}

static int scan_search(shelf_store *st, const shelf__search_q *q, const word *w, size_t n, shelf__search_res *out)
{
    scan_hit *h = NULL;
    size_t m = 0, cap = 0;
    int rc = scan_matches(st, q, w, n, &h, &m);
    if (rc) return rc;
    if (m) qsort(h, m, sizeof *h, by_score);
    if (m > q->limit) m = q->limit;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT ext_id, kind, title, text FROM items WHERE idx = ?1", -1, &s, NULL) !=
        SQLITE_OK) {
        free(h);
        return shelf__store_sqlfail(st, "search");
    }
    shelf__sbuf snip = {0};
    for (size_t k = 0; !rc && k < m; k++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, h[k].item);
        if (sqlite3_step(s) != SQLITE_ROW) {
            rc = shelf__store_sqlfail(st, "search");
            break;
        }
        const char *title = col_text(s, 2), *text = col_text(s, 3), *in = text;
        size_t wl, tl = text ? strlen(text) : 0;
        if (!text || first_match(text, tl, w, n, &wl) == tl) in = title; /* the text has none: the title */
        snip.len = 0;
        scan_snippet(&snip, in ? in : "", w, n, q->html);
        rc = snip.oom ? SHELF_ENOMEM
                      : add_hit(out, &cap, h[k].item, h[k].score, col_text(s, 0), col_text(s, 1), title, &snip);
        if (rc) rc = shelf_store_fail(st, rc, "search: out of memory");
    }
    shelf__sbuf_free(&snip);
    sqlite3_finalize(s);
    free(h);
    return rc;
}

/* ---- the call ------------------------------------------------------------------------- */

int shelf__sqlite_search(shelf_store *st, const shelf__search_q *q, shelf__search_res *out)
{
    *out = (shelf__search_res){0};
    if (!q->query) return shelf_store_fail(st, SHELF_EINVAL, "search: no query");
    if (q->limit < 1 || q->limit > SHELF__SEARCH_MAX_LIMIT)
        return shelf_store_fail(st, SHELF_EINVAL, "search: limit %u out of 1..%d", q->limit, SHELF__SEARCH_MAX_LIMIT);
    word w[MAX_WORDS];
    size_t n = split_words(q->query, w, MAX_WORDS);
    if (!n) return shelf_store_fail(st, SHELF_EINVAL, "search: the query has no word");
    shelf__sbuf expr = {0};
    int rc;
    if (fts_expr(&expr, w, n)) {
        out->method = SHELF__SEARCH_FTS;
        rc = expr.oom ? shelf_store_fail(st, SHELF_ENOMEM, "search: out of memory") : fts_search(st, q, expr.p, out);
    } else {
        out->method = SHELF__SEARCH_SCAN;
        rc = scan_search(st, q, w, n, out);
    }
    shelf__sbuf_free(&expr);
    if (rc) shelf__search_res_free(out);
    return rc;
}
