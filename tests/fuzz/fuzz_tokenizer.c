/* fuzz_tokenizer.c: the text room's tokenizers (src/text/wordpiece.c). The
 * first byte picks what the rest is: bit 7 clear, text to tokenise with
 * WordPiece (over the reference vocabulary of tests/ref/wordpiece, in one
 * of four configurations: bits 0-1), the hashed character n-grams (n from
 * bits 2-3) and the hashed words; bit 7 set, a vocab.txt to load, then a
 * fixed mixed-script text tokenised with it. Every id must lie inside the
 * vocabulary or the bucket range, and a count must not depend on cap. */
#include "util.h"

#include <stdlib.h>
#include <string.h>

#include "shelf/text.h"

#ifndef SHELF_REF_DIR
#error "SHELF_REF_DIR (the tests/ref folder) must be defined by CMake"
#endif

#define CAP 64
#define BUCKETS 1031u

static shelf_wordpiece *wp[4];

static void check_ids(const uint32_t *ids, size_t n, size_t cap, uint32_t bound, const char *what)
{
    for (size_t k = 0; k < n && k < cap; k++)
        if (ids[k] >= bound) fuzz_die("%s: id %u at %zu out of range %u", what, ids[k], k, bound);
}

/* text through wp: ids in range, the count the same with a small cap */
static void wordpiece(const shelf_wordpiece *w, const char *text, size_t len)
{
    uint32_t ids[CAP], few[3];
    size_t n = shelf_wordpiece_encode(w, text, len, ids, CAP);
    check_ids(ids, n, CAP, (uint32_t)shelf_wordpiece_vocab_size(w), "wordpiece");
    size_t n2 = shelf_wordpiece_encode(w, text, len, few, 3);
    if (n2 != n) fuzz_die("wordpiece: %zu tokens with cap %d, %zu with cap 3", n, CAP, n2);
    if (memcmp(ids, few, (n < 3 ? n : 3) * sizeof *ids)) fuzz_die("wordpiece: the first ids depend on cap");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    shelf_log_set_level(SHELF_LOG_OFF);
    for (int k = 0; k < 4; k++) {
        shelf_wordpiece_opts o = SHELF_WORDPIECE_DEFAULTS;
        o.lowercase = k & 1;
        o.strip_accents = k == 2 ? 1 : -1;
        o.chinese_chars = k != 3;
        o.max_chars_per_word = k == 3 ? 8 : 100;
        shelf_err err = {0};
        if (shelf_wordpiece_load(SHELF_REF_DIR "/wordpiece/vocab.txt", &o, &wp[k], &err))
            fuzz_die("vocab: %s", err.msg);
    }
    fuzz_dir();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t flags = data[0];
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    if (flags & 0x80) {
        static const char probe[] = "Hello, WORLD! caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd unaffable ##x [UNK]";
        const char *path = fuzz_path("vocab.txt");
        fuzz_write(path, text, len);
        shelf_wordpiece_opts o = SHELF_WORDPIECE_DEFAULTS;
        o.lowercase = flags & 1;
        shelf_wordpiece *w = NULL;
        shelf_err err = {0};
        if (shelf_wordpiece_load(path, &o, &w, &err) == 0) {
            (void)shelf_wordpiece_special(w, "[CLS]");
            wordpiece(w, probe, sizeof probe - 1);
            wordpiece(w, text, len); /* the vocabulary's own lines as text */
            shelf_wordpiece_free(w);
        } else if (w || !err.msg[0]) {
            fuzz_die("vocab load failed without a message or left *out set");
        }
        return 0;
    }
    wordpiece(wp[flags & 3], text, len);
    uint32_t ids[CAP], few[2];
    int n_min = 1 + ((flags >> 2) & 3), n_max = n_min + ((flags >> 4) & 1);
    size_t n = shelf_text_ngrams(text, len, n_min, n_max, BUCKETS, ids, CAP);
    check_ids(ids, n, CAP, BUCKETS, "ngrams");
    if (shelf_text_ngrams(text, len, n_min, n_max, BUCKETS, few, 2) != n) fuzz_die("ngrams: the count depends on cap");
    n = shelf_text_words(text, len, BUCKETS, ids, CAP);
    check_ids(ids, n, CAP, BUCKETS, "words");
    if (shelf_text_words(text, len, BUCKETS, few, 2) != n) fuzz_die("words: the count depends on cap");
    return 0;
}
