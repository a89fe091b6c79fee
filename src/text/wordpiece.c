/* wordpiece.c: BERT's WordPiece tokenizer (BasicTokenizer + greedy longest
 * match, as Hugging Face's BertTokenizer) and the hashed character n-gram
 * tokenizer that shares its basic tokenisation. Text room; utf8proc, xxh3. */
#include "shelf/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

struct shelf_wordpiece {
    shelf_strmap *vocab; /* token -> id (last line wins on duplicates, as BERT's load_vocab) */
    size_t n_vocab;      /* lines of vocab.txt */
    uint32_t unk;
    int lowercase, strip_accents, chinese_chars, max_chars;
};

/* ---- character classes (as BERT's tokenization.py) ---------------------- */

/* _is_chinese_char: the CJK Unified Ideographs blocks only (not kana, hangul). */
static int is_cjk(int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* _is_whitespace: ' ', \t, \n, \r, category Zs; also Zl/Zp, which Python's
 * str.split() (whitespace_tokenize) splits on after the cleaning kept them. */
static int is_space(int32_t c)
{
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return 1;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

/* _is_control: any category C* (Cc, Cf, Cs, Co, Cn) except \t \n \r. */
static int is_control(int32_t c)
{
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        return 1;
    default:
        return 0;
    }
}

/* _is_punctuation: every non-alphanumeric ASCII symbol ($, +, ^, ` ...) and
 * Unicode P*. */
static int is_punct(int32_t c)
{
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return 1;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return 1;
    default:
        return 0;
    }
}

/* For the final-sigma rule of Python's str.lower() (SpecialCasing.txt). */
static int is_cased(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return 1;
    return utf8proc_tolower(c) != c || utf8proc_toupper(c) != c;
}

static int is_case_ignorable(int32_t c)
{
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
        return 1;
    default:
        break;
    }
    /* Word_Break MidLetter / MidNumLet / Single_Quote */
    switch (c) {
    case '\'': case '.': case ':': case 0x00B7: case 0x0387: case 0x055F: case 0x05F4: case 0x2018: case 0x2019:
    case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    default:
        return 0;
    }
}

/* ---- growable code point buffer ------------------------------------------ */

typedef struct cpbuf {
    int32_t *v;
    size_t n, cap;
} cpbuf;

static int cp_push(cpbuf *b, int32_t c)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        int32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v) return -1;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = c;
    return 0;
}

/* ---- basic tokenisation ---------------------------------------------------
 * clean -> CJK split -> per whitespace token: lower-case, strip accents ->
 * split on punctuation. Each resulting word goes to emit(ctx, cps, n). */

typedef struct basic_opts {
    int lowercase, strip_accents, chinese_chars;
} basic_opts;

typedef void (*word_fn)(void *ctx, const int32_t *cps, size_t n);

typedef struct basic_state {
    basic_opts o;
    cpbuf raw;  /* the current whitespace token, cleaned */
    cpbuf low;  /* raw lower-cased */
    cpbuf norm; /* then without accents */
    word_fn emit;
    void *ctx;
} basic_state;

/* Python's str.lower() of raw[i] (full mapping: U+0130 and final sigma). */
static int lower_push(cpbuf *out, const cpbuf *raw, size_t i)
{
    int32_t c = raw->v[i];
    if (c == 0x0130) return cp_push(out, 'i') || cp_push(out, 0x0307);
    if (c == 0x03A3) {
        size_t j = i;
        while (j > 0 && is_case_ignorable(raw->v[j - 1])) j--;
        int final = j > 0 && is_cased(raw->v[j - 1]);
        if (final) {
            j = i + 1;
            while (j < raw->n && is_case_ignorable(raw->v[j])) j++;
            final = j == raw->n || !is_cased(raw->v[j]);
        }
        return cp_push(out, final ? 0x03C2 : 0x03C3);
    }
    return cp_push(out, utf8proc_tolower(c));
}

/* NFD of c without its Mn marks (BERT's _run_strip_accents). Per character:
 * canonical reordering only moves combining marks, and the Mn ones go. */
static int strip_push(cpbuf *out, int32_t c)
{
    int32_t d[32];
    utf8proc_ssize_t n = utf8proc_decompose_char(c, d, 32, UTF8PROC_DECOMPOSE, NULL);
    if (n < 0 || n > 32) return cp_push(out, c);
    for (utf8proc_ssize_t k = 0; k < n; k++)
        if (utf8proc_category(d[k]) != UTF8PROC_CATEGORY_MN && cp_push(out, d[k])) return -1;
    return 0;
}

static int flush_token(basic_state *s)
{
    if (s->raw.n == 0) return 0;
    const cpbuf *w = &s->raw;
    if (s->o.lowercase) {
        s->low.n = 0;
        for (size_t i = 0; i < w->n; i++)
            if (lower_push(&s->low, w, i)) return -1;
        w = &s->low;
    }
    if (s->o.strip_accents) {
        s->norm.n = 0;
        for (size_t i = 0; i < w->n; i++)
            if (strip_push(&s->norm, w->v[i])) return -1;
        w = &s->norm;
    }
    size_t start = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (!is_punct(w->v[i])) continue;
        if (i > start) s->emit(s->ctx, w->v + start, i - start);
        s->emit(s->ctx, w->v + i, 1);
        start = i + 1;
    }
    if (w->n > start) s->emit(s->ctx, w->v + start, w->n - start);
    s->raw.n = 0;
    return 0;
}

/* Runs the basic tokenizer over text[0..len); invalid UTF-8 bytes are
 * skipped one at a time. 0 or -1 (out of memory). */
static int basic_words(const char *text, size_t len, basic_opts o, word_fn emit, void *ctx)
{
    basic_state s = {.o = o, .emit = emit, .ctx = ctx};
    const uint8_t *p = (const uint8_t *)text;
    size_t i = 0;
    int rc = 0;
    while (i < len) {
        int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0) {
            i++;
            continue;
        }
        i += (size_t)k;
        if (c == 0 || c == 0xFFFD || is_control(c)) continue;
        if (is_space(c)) {
            if (flush_token(&s)) goto oom;
        } else if (o.chinese_chars && is_cjk(c)) {
            if (flush_token(&s) || cp_push(&s.raw, c) || flush_token(&s)) goto oom;
        } else if (cp_push(&s.raw, c)) {
            goto oom;
        }
    }
    if (flush_token(&s)) goto oom;
    goto done;
oom:
    rc = -1;
done:
    free(s.raw.v);
    free(s.low.v);
    free(s.norm.v);
    return rc;
}

/* ---- vocabulary ----------------------------------------------------------- */

int shelf_wordpiece_load(const char *vocab_path, const shelf_wordpiece_opts *o, shelf_wordpiece **out,
                         shelf_err *err)
{
    shelf_wordpiece_opts def = SHELF_WORDPIECE_DEFAULTS;
    if (!o) o = &def;
    if (!vocab_path || !out) return shelf_err_set(err, SHELF_EINVAL, "wordpiece: no vocabulary path");
    if (o->max_chars_per_word <= 0)
        return shelf_err_set(err, SHELF_EINVAL, "wordpiece: max_chars_per_word %d must be > 0", o->max_chars_per_word);

    FILE *f = fopen(vocab_path, "rb");
    if (!f) return shelf_err_set(err, SHELF_EIO, "%s: cannot open: %s", vocab_path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t ncap = cap ? 2 * cap : 1 << 20;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return shelf_err_set(err, SHELF_ENOMEM, "%s: out of memory reading the vocabulary", vocab_path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int ioerr = ferror(f);
    fclose(f);
    if (ioerr) {
        free(buf);
        return shelf_err_set(err, SHELF_EIO, "%s: read error", vocab_path);
    }
    if (n == 0) {
        free(buf);
        return shelf_err_set(err, SHELF_EFORMAT, "%s: empty vocabulary", vocab_path);
    }

    int rc = 0;
    shelf_wordpiece *wp = calloc(1, sizeof *wp);
    if (wp) wp->vocab = shelf_strmap_new(n / 8 + 16);
    if (!wp || !wp->vocab) {
        rc = shelf_err_set(err, SHELF_ENOMEM, "%s: out of memory", vocab_path);
        goto fail;
    }
    size_t line = 0;
    for (size_t at = 0; at < n; line++) {
        const char *tok = buf + at;
        const char *nl = memchr(tok, '\n', n - at);
        size_t tl = nl ? (size_t)(nl - tok) : n - at;
        at += tl + (nl != NULL);
        if (tl > 0 && tok[tl - 1] == '\r') tl--; /* Python's universal newlines */
        size_t bad;
        if (!shelf_utf8_valid(tok, tl, &bad)) {
            rc = shelf_err_set(err, SHELF_EFORMAT, "%s:%zu: invalid UTF-8 (byte %zu of the line)", vocab_path,
                               line + 1, bad + 1);
            goto fail;
        }
        if (line >= UINT32_MAX) {
            rc = shelf_err_set(err, SHELF_EFORMAT, "%s:%zu: too many tokens", vocab_path, line + 1);
            goto fail;
        }
        if (tl > 0 && shelf_strmap_put(wp->vocab, tok, tl, (uint32_t)line)) {
            rc = shelf_err_set(err, SHELF_ENOMEM, "%s:%zu: out of memory", vocab_path, line + 1);
            goto fail;
        }
    }
    wp->n_vocab = line;
    if (!shelf_strmap_get(wp->vocab, "[UNK]", 5, &wp->unk)) {
        rc = shelf_err_set(err, SHELF_EFORMAT, "%s:%zu: the vocabulary (%zu lines) has no [UNK] token", vocab_path,
                           line, line);
        goto fail;
    }
    wp->lowercase = o->lowercase != 0;
    wp->strip_accents = o->strip_accents < 0 ? wp->lowercase : o->strip_accents != 0;
    wp->chinese_chars = o->chinese_chars != 0;
    wp->max_chars = o->max_chars_per_word;
    free(buf);
    *out = wp;
    return 0;
fail:
    free(buf);
    shelf_wordpiece_free(wp);
    return rc;
}

void shelf_wordpiece_free(shelf_wordpiece *wp)
{
    if (!wp) return;
    shelf_strmap_free(wp->vocab);
    free(wp);
}

size_t shelf_wordpiece_vocab_size(const shelf_wordpiece *wp)
{
    return wp ? wp->n_vocab : 0;
}

uint32_t shelf_wordpiece_special(const shelf_wordpiece *wp, const char *token)
{
    uint32_t id;
    if (!wp || !token || !shelf_strmap_get(wp->vocab, token, strlen(token), &id)) return UINT32_MAX;
    return id;
}

/* ---- WordPiece -------------------------------------------------------------- */

typedef struct wp_ctx {
    const shelf_wordpiece *wp;
    uint32_t *ids;
    size_t cap, n;
    char *bytes;   /* 2 spare bytes, then the word's UTF-8 */
    size_t *off;   /* off[i]: byte offset of character i in bytes + 2; off[n] = end */
    size_t n_room; /* characters bytes/off can hold */
    int oom;
} wp_ctx;

static void put_id(wp_ctx *c, uint32_t id)
{
    if (c->n < c->cap) c->ids[c->n] = id;
    c->n++;
}

/* Greedy longest-match-first over the characters of one word; the whole
 * word is [UNK] when it is too long or some remainder matches nothing. */
static void wp_word(void *ctx, const int32_t *cps, size_t n)
{
    wp_ctx *c = ctx;
    if (c->oom) return;
    if (n > (size_t)c->wp->max_chars) {
        put_id(c, c->wp->unk);
        return;
    }
    if (n > c->n_room) {
        size_t room = n * 2;
        char *b = realloc(c->bytes, 2 + 4 * room);
        if (!b) goto oom;
        c->bytes = b;
        size_t *o = realloc(c->off, (room + 1) * sizeof *o);
        if (!o) goto oom;
        c->off = o;
        c->n_room = room;
    }
    char *w = c->bytes + 2;
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        c->off[i] = nb;
        nb += (size_t)utf8proc_encode_char(cps[i], (utf8proc_uint8_t *)w + nb);
    }
    c->off[n] = nb;

    size_t first = c->n; /* rolled back to one [UNK] if the word fails */
    size_t start = 0;
    while (start < n) {
        size_t end = n;
        uint32_t id = 0;
        int found = 0;
        char save[2];
        char *key = w + c->off[start];
        if (start > 0) {
            key -= 2;
            memcpy(save, key, 2);
            memcpy(key, "##", 2);
        }
        for (; end > start; end--) {
            size_t kl = c->off[end] - c->off[start] + (start > 0 ? 2 : 0);
            if (shelf_strmap_get(c->wp->vocab, key, kl, &id)) {
                found = 1;
                break;
            }
        }
        if (start > 0) memcpy(key, save, 2);
        if (!found) {
            c->n = first;
            put_id(c, c->wp->unk);
            return;
        }
        put_id(c, id);
        start = end;
    }
    return;
oom:
    c->oom = 1;
}

size_t shelf_wordpiece_encode(const shelf_wordpiece *wp, const char *text, size_t len, uint32_t *ids, size_t cap)
{
    if (!wp || !text || len == 0) return 0;
    wp_ctx c = {.wp = wp, .ids = ids, .cap = ids ? cap : 0};
    basic_opts o = {wp->lowercase, wp->strip_accents, wp->chinese_chars};
    int rc = basic_words(text, len, o, wp_word, &c);
    free(c.bytes);
    free(c.off);
    /* out of memory (only for absurd texts): 0 tokens, the contract has no
     * error code */
    if (rc || c.oom) return 0;
    return c.n;
}

/* ---- hashed character n-grams ------------------------------------------------ */

typedef struct ng_ctx {
    int n_min, n_max;
    uint32_t buckets;
    uint32_t *ids;
    size_t cap, n;
    cpbuf w; /* '<' word '>' */
    char *bytes;
    size_t *off;
    size_t n_room;
    int oom;
} ng_ctx;

static void ng_word(void *ctx, const int32_t *cps, size_t n)
{
    ng_ctx *c = ctx;
    if (c->oom) return;
    size_t m = n + 2; /* characters with the bounds */
    if (m > c->n_room) {
        size_t room = m * 2;
        char *b = realloc(c->bytes, 4 * room);
        if (!b) goto oom;
        c->bytes = b;
        size_t *o = realloc(c->off, (room + 1) * sizeof *o);
        if (!o) goto oom;
        c->off = o;
        c->n_room = room;
    }
    size_t nb = 0;
    for (size_t i = 0; i < m; i++) {
        int32_t ch = i == 0 ? '<' : i == m - 1 ? '>' : cps[i - 1];
        c->off[i] = nb;
        nb += (size_t)utf8proc_encode_char(ch, (utf8proc_uint8_t *)c->bytes + nb);
    }
    c->off[m] = nb;
    for (size_t g = (size_t)c->n_min; g <= (size_t)c->n_max && g <= m; g++) {
        for (size_t i = 0; i + g <= m; i++) {
            uint64_t h = XXH3_64bits(c->bytes + c->off[i], c->off[i + g] - c->off[i]);
            if (c->n < c->cap) c->ids[c->n] = (uint32_t)(h % c->buckets);
            c->n++;
        }
    }
    return;
oom:
    c->oom = 1;
}

size_t shelf_text_ngrams(const char *text, size_t len, int n_min, int n_max, uint32_t buckets, uint32_t *ids,
                         size_t cap)
{
    if (!text || len == 0 || n_min < 1 || n_max < n_min || buckets == 0) return 0;
    ng_ctx c = {.n_min = n_min, .n_max = n_max, .buckets = buckets, .ids = ids, .cap = ids ? cap : 0};
    basic_opts o = {1, 0, 1};
    int rc = basic_words(text, len, o, ng_word, &c);
    free(c.bytes);
    free(c.off);
    if (rc || c.oom) return 0;
    return c.n;
}

/* ---- hashed words --------------------------------------------------------------- */

typedef struct wd_ctx {
    uint32_t buckets;
    uint32_t *ids;
    size_t cap, n;
    char *bytes;
    size_t room;
    int oom;
} wd_ctx;

static void wd_word(void *ctx, const int32_t *cps, size_t n)
{
    wd_ctx *c = ctx;
    if (c->oom || (n == 1 && is_punct(cps[0]))) return; /* punctuation carries no meaning alone */
    if (4 * n > c->room) {
        char *b = realloc(c->bytes, 8 * n);
        if (!b) {
            c->oom = 1;
            return;
        }
        c->bytes = b;
        c->room = 8 * n;
    }
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) nb += (size_t)utf8proc_encode_char(cps[i], (utf8proc_uint8_t *)c->bytes + nb);
    if (c->n < c->cap) c->ids[c->n] = (uint32_t)(XXH3_64bits(c->bytes, nb) % c->buckets);
    c->n++;
}

size_t shelf_text_words(const char *text, size_t len, uint32_t buckets, uint32_t *ids, size_t cap)
{
    if (!text || len == 0 || buckets == 0) return 0;
    wd_ctx c = {.buckets = buckets, .ids = ids, .cap = ids ? cap : 0};
    basic_opts o = {1, 1, 1};
    int rc = basic_words(text, len, o, wd_word, &c);
    free(c.bytes);
    if (rc || c.oom) return 0;
    return c.n;
}
