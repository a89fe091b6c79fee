/* test_text_wordpiece.c: the WordPiece and n-gram tokenizers
 * (src/text/wordpiece.c). Parity: every line of tests/ref/wordpiece/corpus.txt
 * (English, Chinese, Japanese, Korean, Greek, Turkish, accents, emoji,
 * full-width forms, odd spaces and control characters) in three
 * configurations (lower: lowercase + strip accents; cased: neither;
 * lower_accents: lowercase only) must give exactly the ids
 * of Hugging Face's JavaScript BertTokenizer, written to expected.jsonl by
 * tests/ref/wordpiece/make_fixture.mjs (committed; no node needed here). Then
 * unit cases: [UNK] paths, empty text, invalid UTF-8, cap < count, vocabulary
 * file errors, and the hashed character n-grams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "shelf/core.h"
#include "shelf/text.h"

#include "test_util.h"

#ifndef SHELF_REF_DIR
#error "SHELF_REF_DIR (the tests/ref folder) must be defined by CMake"
#endif

#define WP_DIR SHELF_REF_DIR "/wordpiece"
#define VOCAB WP_DIR "/vocab.txt"
#define CORPUS WP_DIR "/corpus.txt"
#define EXPECTED WP_DIR "/expected.jsonl"

/* ---- helpers ------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* Splits buf in place on '\n' (the empty piece after a final '\n' dropped);
 * *n lines, their starts and lengths. */
static char **split_lines(char *buf, size_t len, size_t **lens, size_t *n)
{
    size_t cap = 16, k = 0;
    char **v = malloc(cap * sizeof *v);
    size_t *l = malloc(cap * sizeof *l);
    size_t at = 0;
    while (at < len) {
        char *nl = memchr(buf + at, '\n', len - at);
        size_t e = nl ? (size_t)(nl - buf) : len;
        if (k == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
            l = realloc(l, cap * sizeof *l);
        }
        v[k] = buf + at;
        l[k] = e - at;
        buf[e < len ? e : len] = '\0';
        k++;
        at = e + 1;
    }
    *lens = l;
    *n = k;
    return v;
}

static shelf_wordpiece *load_opts(int lowercase, int strip_accents, int max_chars)
{
    shelf_wordpiece_opts o = SHELF_WORDPIECE_DEFAULTS;
    o.lowercase = lowercase;
    o.strip_accents = strip_accents;
    if (max_chars) o.max_chars_per_word = max_chars;
    shelf_wordpiece *wp = NULL;
    shelf_err err = {0};
    int rc = shelf_wordpiece_load(VOCAB, &o, &wp, &err);
    if (rc) fail_msg("load %s: %s", VOCAB, err.msg);
    return wp;
}

static shelf_wordpiece *load(int lowercase, int max_chars)
{
    return load_opts(lowercase, -1, max_chars);
}

static size_t enc(const shelf_wordpiece *wp, const char *s, uint32_t *ids, size_t cap)
{
    return shelf_wordpiece_encode(wp, s, strlen(s), ids, cap);
}

static uint32_t id_of(const shelf_wordpiece *wp, const char *tok)
{
    uint32_t id = shelf_wordpiece_special(wp, tok);
    if (id == UINT32_MAX) fail_msg("token %s not in the test vocabulary", tok);
    return id;
}

static void print_ids(const char *label, const uint32_t *ids, size_t n, char **vocab, size_t n_vocab)
{
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %u:%s", ids[i], ids[i] < n_vocab ? vocab[ids[i]] : "?");
    fprintf(stderr, "\n");
}

/* ---- parity with the JavaScript reference ---------------------------------- */

static void test_reference_parity(void **state)
{
    (void)state;
    size_t vlen, clen, elen, n_vocab, n_lines, n_rows;
    size_t *vlens, *clens, *elens;
    char *vbuf = slurp(VOCAB, &vlen), *cbuf = slurp(CORPUS, &clen), *ebuf = slurp(EXPECTED, &elen);
    char **vocab = split_lines(vbuf, vlen, &vlens, &n_vocab);
    char **lines = split_lines(cbuf, clen, &clens, &n_lines);
    char **rows = split_lines(ebuf, elen, &elens, &n_rows);

    enum { NC = 3 };
    const char *names[NC] = {"lower", "cased", "lower_accents"};
    shelf_wordpiece *wp[NC] = {load(1, 0), load(0, 0), load_opts(1, 0, 0)};
    assert_int_equal(shelf_wordpiece_vocab_size(wp[0]), n_vocab);

    assert_true(n_rows >= 1);
    cJSON *head = cJSON_Parse(rows[0]);
    assert_non_null(head);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(head, "magic")), "shelf-wordpiece-ref");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(head, "version")), 1);
    assert_int_equal((size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(head, "lines")), n_lines);
    const char *pkg = cJSON_GetStringValue(cJSON_GetObjectItem(head, "package"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(head, "configs")), NC);
    assert_int_equal(n_rows, 1 + NC * n_lines);

    size_t checked[NC] = {0}, equal[NC] = {0}, n_tokens = 0;
    int shown = 0;
    uint32_t got[4096];
    for (size_t r = 1; r < n_rows; r++) {
        cJSON *row = cJSON_Parse(rows[r]);
        assert_non_null(row);
        const char *cfg = cJSON_GetStringValue(cJSON_GetObjectItem(row, "config"));
        int c = -1;
        for (int k = 0; k < NC; k++)
            if (strcmp(cfg, names[k]) == 0) c = k;
        assert_true(c >= 0);
        size_t line = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(row, "line"));
        assert_true(line >= 1 && line <= n_lines);
        cJSON *jids = cJSON_GetObjectItem(row, "ids");
        size_t n_exp = (size_t)cJSON_GetArraySize(jids);
        uint32_t *exp = malloc((n_exp + 1) * sizeof *exp);
        for (size_t i = 0; i < n_exp; i++) exp[i] = (uint32_t)cJSON_GetNumberValue(cJSON_GetArrayItem(jids, (int)i));
        size_t n = shelf_wordpiece_encode(wp[c], lines[line - 1], clens[line - 1], got, 4096);
        assert_true(n <= 4096);
        checked[c]++;
        n_tokens += n_exp;
        if (n == n_exp && memcmp(got, exp, n * sizeof *got) == 0) {
            equal[c]++;
        } else if (!shown) {
            shown = 1;
            size_t at = 0;
            while (at < n && at < n_exp && got[at] == exp[at]) at++;
            fprintf(stderr, "first mismatch: config %s, corpus line %zu, token %zu:\n  text: %s\n", cfg, line, at,
                    lines[line - 1]);
            print_ids("expected", exp, n_exp, vocab, n_vocab);
            print_ids("got     ", got, n, vocab, n_vocab);
        }
        free(exp);
        cJSON_Delete(row);
    }
    fprintf(stderr, "wordpiece parity with %s (%zu reference tokens):", pkg ? pkg : "?", n_tokens);
    for (int k = 0; k < NC; k++) fprintf(stderr, " %s %zu/%zu", names[k], equal[k], checked[k]);
    fprintf(stderr, " lines equal\n");
    for (int k = 0; k < NC; k++) {
        assert_int_equal(checked[k], n_lines);
        assert_int_equal(equal[k], n_lines);
    }

    cJSON_Delete(head);
    for (int k = 0; k < NC; k++) shelf_wordpiece_free(wp[k]);
    free(vocab);
    free(vlens);
    free(lines);
    free(clens);
    free(rows);
    free(elens);
    free(vbuf);
    free(cbuf);
    free(ebuf);
}

/* ---- unit cases ---------------------------------------------------------------- */

static void test_specials(void **state)
{
    (void)state;
    shelf_wordpiece *wp = load(1, 0);
    assert_int_equal(shelf_wordpiece_special(wp, "[PAD]"), 0);
    assert_int_equal(shelf_wordpiece_special(wp, "[UNK]"), 1);
    assert_int_equal(shelf_wordpiece_special(wp, "[CLS]"), 2);
    assert_int_equal(shelf_wordpiece_special(wp, "[SEP]"), 3);
    assert_int_equal(shelf_wordpiece_special(wp, "[MASK]"), 4);
    assert_int_equal(shelf_wordpiece_special(wp, "[NOPE]"), UINT32_MAX);
    shelf_wordpiece_free(wp);
    shelf_wordpiece_free(NULL);
}

static void test_unk(void **state)
{
    (void)state;
    shelf_wordpiece *wp = load(1, 0);
    uint32_t unk = id_of(wp, "[UNK]"), ids[64];
    /* 'q' is in the vocabulary but '##q' is not: the whole word is one [UNK] */
    assert_int_equal(enc(wp, "qqqq", ids, 64), 1);
    assert_int_equal(ids[0], unk);
    /* an emoji outside the vocabulary, between known words */
    size_t n = enc(wp, "a \xf0\x9f\x99\x82 b", ids, 64);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], id_of(wp, "a"));
    assert_int_equal(ids[1], unk);
    assert_int_equal(ids[2], id_of(wp, "b"));
    /* ## continuation: single letters and ## letters always match */
    n = enc(wp, "abc", ids, 64);
    assert_true(n >= 1 && n <= 3);
    assert_int_not_equal(ids[0], unk);
    shelf_wordpiece_free(wp);

    /* max_chars_per_word: 6 characters (not bytes) pass at 6, fail at 5 */
    shelf_wordpiece *w6 = load(1, 6), *w5 = load(1, 5);
    const char *word = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"; /* éééééé, stripped: eeeeee */
    assert_int_equal(enc(w6, "abcabc", ids, 64) >= 1, 1);
    assert_int_not_equal(ids[0], unk);
    assert_int_equal(enc(w5, "abcabc", ids, 64), 1);
    assert_int_equal(ids[0], unk);
    assert_true(enc(w6, word, ids, 64) >= 1);
    assert_int_not_equal(ids[0], unk);
    assert_int_equal(enc(w5, word, ids, 64), 1);
    assert_int_equal(ids[0], unk);
    shelf_wordpiece_free(w6);
    shelf_wordpiece_free(w5);
}

static void test_empty(void **state)
{
    (void)state;
    shelf_wordpiece *wp = load(1, 0);
    uint32_t ids[8] = {7, 7, 7, 7, 7, 7, 7, 7};
    assert_int_equal(shelf_wordpiece_encode(wp, "", 0, ids, 8), 0);
    assert_int_equal(shelf_wordpiece_encode(wp, NULL, 0, ids, 8), 0);
    assert_int_equal(enc(wp, " \t\r\n \xe3\x80\x80 ", ids, 8), 0);  /* only whitespace */
    assert_int_equal(enc(wp, "\x07\xe2\x80\x8b\xef\xbf\xbd", ids, 8), 0); /* control, ZWSP, U+FFFD */
    assert_int_equal(ids[0], 7);
    shelf_wordpiece_free(wp);
}

static void same_ids(const shelf_wordpiece *wp, const char *a, size_t alen, const char *b)
{
    uint32_t x[64], y[64];
    size_t nx = shelf_wordpiece_encode(wp, a, alen, x, 64), ny = enc(wp, b, y, 64);
    assert_int_equal(nx, ny);
    assert_true(nx > 0);
    assert_memory_equal(x, y, nx * sizeof *x);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    shelf_wordpiece *wp = load(1, 0);
    /* stray continuation bytes, 0xFF/0xFE, an overlong '/', a lone surrogate,
     * a truncated sequence at the end: all dropped byte by byte */
    static const char bad[] = "li\x80p \xff\xfegl\xc0\xafoss \xed\xa0\x80" "cream\xe4\xb8";
    same_ids(wp, bad, sizeof bad - 1, "lip gloss cream");
    /* NUL inside the text is dropped too (BERT's cleaning) */
    static const char nul[] = "cre\0am";
    same_ids(wp, nul, sizeof nul - 1, "cream");
    shelf_wordpiece_free(wp);
}

static void test_cap(void **state)
{
    (void)state;
    shelf_wordpiece *wp = load(1, 0);
    const char *s = "Lancôme Génifique Advanced Youth Activating Serum 30ml, 兰蔻 小黑瓶精华";
    uint32_t all[128], few[8];
    size_t n = enc(wp, s, all, 128);
    assert_true(n > 8);
    for (size_t k = 0; k < 8; k++) few[k] = 0xdeadbeef;
    assert_int_equal(enc(wp, s, few, 3), n);
    assert_memory_equal(few, all, 3 * sizeof *few);
    for (size_t k = 3; k < 8; k++) assert_int_equal(few[k], 0xdeadbeef);
    assert_int_equal(enc(wp, s, NULL, 0), n); /* count only */
    shelf_wordpiece_free(wp);
}

static const char *write_file(const char *name, const char *data, size_t len)
{
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return p;
}

static void expect_load_error(const char *path, int code, const char *needle)
{
    shelf_wordpiece *wp = (shelf_wordpiece *)(uintptr_t)1; /* must stay untouched */
    shelf_err err = {0};
    int rc = shelf_wordpiece_load(path, NULL, &wp, &err);
    assert_int_equal(rc, code);
    assert_ptr_equal(wp, (shelf_wordpiece *)(uintptr_t)1);
    if (!strstr(err.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

static void test_vocab_errors(void **state)
{
    (void)state;
    tmp_init("test_text_wordpiece");
    char want[1024];

    const char *missing = tmp_path("no-such-vocab.txt");
    remove(missing);
    expect_load_error(missing, SHELF_EIO, missing);

    const char *empty = write_file("empty.txt", "", 0);
    snprintf(want, sizeof want, "%s: empty", empty);
    expect_load_error(empty, SHELF_EFORMAT, want);

    static const char nounk[] = "[PAD]\n[CLS]\nhello\n";
    const char *p = write_file("nounk.txt", nounk, sizeof nounk - 1);
    expect_load_error(p, SHELF_EFORMAT, p);
    expect_load_error(p, SHELF_EFORMAT, "[UNK]");

    static const char badutf[] = "[PAD]\n[UNK]\nbad\xc3(\nok\n";
    p = write_file("badutf.txt", badutf, sizeof badutf - 1);
    snprintf(want, sizeof want, "%s:3:", p);
    expect_load_error(p, SHELF_EFORMAT, want);

    /* CRLF lines and no final newline are fine; ids are line numbers */
    static const char crlf[] = "[PAD]\r\n[UNK]\r\nhello\r\n##s\r\nworld";
    p = write_file("crlf.txt", crlf, sizeof crlf - 1);
    shelf_wordpiece *wp = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_wordpiece_load(p, NULL, &wp, &err), 0);
    assert_int_equal(shelf_wordpiece_vocab_size(wp), 5);
    assert_int_equal(shelf_wordpiece_special(wp, "[UNK]"), 1);
    assert_int_equal(shelf_wordpiece_special(wp, "[CLS]"), UINT32_MAX);
    uint32_t ids[8];
    assert_int_equal(enc(wp, "Hello, worlds hello!", ids, 8), 6);
    uint32_t want_ids[6] = {2, 1, 4, 3, 2, 1}; /* hello [UNK](,) world ##s hello [UNK](!) */
    assert_memory_equal(ids, want_ids, 6 * sizeof *ids);
    shelf_wordpiece_free(wp);
}

/* ---- n-grams ---------------------------------------------------------------------- */

static void test_ngrams(void **state)
{
    (void)state;
    uint32_t a[256], b[256];
    const uint32_t B = 1000;
    /* "<abc>": 5 + 4 + 3 n-grams for n = 1..3 */
    assert_int_equal(shelf_text_ngrams("abc", 3, 1, 3, B, a, 256), 12);
    assert_int_equal(shelf_text_ngrams("ABC", 3, 1, 3, B, b, 256), 12); /* lower-cased */
    assert_memory_equal(a, b, 12 * sizeof *a);
    /* the ids are xxh3 of the n-gram's UTF-8 mod buckets, in order n, position */
    assert_int_equal(a[0], (uint32_t)(XXH3_64bits("<", 1) % B));
    assert_int_equal(a[5], (uint32_t)(XXH3_64bits("<a", 2) % B));
    assert_int_equal(a[11], (uint32_t)(XXH3_64bits("bc>", 3) % B));
    /* deterministic, in range */
    const char *s = "Crème Brûlée Lip Gloss, 0.5-Fluid Ounce — 兰蔻 小黑瓶";
    size_t n = shelf_text_ngrams(s, strlen(s), 3, 5, B, a, 256);
    assert_true(n > 0 && n <= 256);
    assert_int_equal(shelf_text_ngrams(s, strlen(s), 3, 5, B, b, 256), n);
    assert_memory_equal(a, b, n * sizeof *a);
    for (size_t i = 0; i < n; i++) assert_true(a[i] < B);
    /* characters, not bytes: "<é>" is 3 characters (4 bytes) */
    assert_int_equal(shelf_text_ngrams("\xc3\xa9", 2, 1, 3, B, a, 256), 6);
    assert_int_equal(a[5], (uint32_t)(XXH3_64bits("<\xc3\xa9>", 4) % B));
    /* each CJK ideograph its own word: "<日>" "<本>" */
    assert_int_equal(shelf_text_ngrams("日本", strlen("日本"), 1, 3, B, a, 256), 12);
    /* punctuation splits words: "a-b" is "<a>" "<->" "<b>" */
    assert_int_equal(shelf_text_ngrams("a-b", 3, 3, 3, B, a, 256), 3);
    /* cap smaller than the count */
    for (size_t i = 0; i < 8; i++) b[i] = 0xdeadbeef;
    assert_int_equal(shelf_text_ngrams("abc", 3, 1, 3, B, b, 4), 12);
    assert_int_equal(b[4], 0xdeadbeef);
    /* bad arguments and empty text */
    assert_int_equal(shelf_text_ngrams("abc", 3, 0, 3, B, a, 256), 0);
    assert_int_equal(shelf_text_ngrams("abc", 3, 3, 2, B, a, 256), 0);
    assert_int_equal(shelf_text_ngrams("abc", 3, 1, 3, 0, a, 256), 0);
    assert_int_equal(shelf_text_ngrams("", 0, 1, 3, B, a, 256), 0);
    assert_int_equal(shelf_text_ngrams(" ,", 2, 2, 3, B, a, 256), 3); /* "<,>": "<," ",>" "<,>" */
}

/* Hashed words: case and accents folded, punctuation dropped, CJK split. */
static void test_words(void **state)
{
    (void)state;
    uint32_t a[16], b[16];
    const char *t1 = "Cr\xc3\xa8me, CREME!", *t2 = "creme creme";
    size_t n1 = shelf_text_words(t1, strlen(t1), 1000, a, 16), n2 = shelf_text_words(t2, strlen(t2), 1000, b, 16);
    assert_int_equal(n1, 2);
    assert_int_equal(n2, 2);
    assert_int_equal(a[0], b[0]);
    assert_int_equal(a[1], b[0]);
    const char *zh = "\xe5\x85\xb0\xe8\x94\xbb 30ml"; /* two ideographs and a word */
    assert_int_equal(shelf_text_words(zh, strlen(zh), 1000, a, 16), 3);
    for (int k = 0; k < 3; k++) assert_true(a[k] < 1000);
    assert_int_equal(shelf_text_words(zh, strlen(zh), 1000, a, 1), 3); /* count beyond cap */
    assert_int_equal(shelf_text_words("", 0, 1000, a, 16), 0);
    assert_int_equal(shelf_text_words("x", 1, 0, a, 16), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_reference_parity), cmocka_unit_test(test_specials),
        cmocka_unit_test(test_unk),              cmocka_unit_test(test_empty),
        cmocka_unit_test(test_invalid_utf8),     cmocka_unit_test(test_cap),
        cmocka_unit_test(test_vocab_errors),     cmocka_unit_test(test_ngrams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
