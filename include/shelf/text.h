/* text.h: item text for the models: a WordPiece tokenizer that reads a BERT
 * vocab.txt and gives the ids Hugging Face's BertTokenizer gives, a hashed
 * character n-gram tokenizer for when there is no vocabulary, and a
 * BERT-style encoder (inference only) that loads safetensors weights with
 * Hugging Face's key names and mean-pools its last layer into one vector per
 * text. Text room (src/text/); uses core and nn. */
#ifndef SHELF_TEXT_H
#define SHELF_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "shelf/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- WordPiece ---------------------------------------------------------------
 * Basic tokenisation as BertTokenizer's BasicTokenizer: clean the text
 * (drop NUL, U+FFFD and control characters, whitespace to ' '), put spaces
 * around every CJK ideograph (tokenize_chinese_chars), optionally lower-case
 * and strip accents (NFD, drop Mn marks; utf8proc), split on whitespace and
 * on every punctuation character. Then each word by greedy longest match
 * against the vocabulary, continuation pieces prefixed "##"; a word with no
 * match (or longer than max_chars_per_word characters) becomes [UNK]. */
typedef struct shelf_wordpiece_opts {
    int lowercase;          /* 1 (bert-base-uncased) */
    int strip_accents;      /* -1: follow lowercase (as BertTokenizer), 0 off, 1 on */
    int chinese_chars;      /* 1: every CJK ideograph its own word */
    int max_chars_per_word; /* 100 */
} shelf_wordpiece_opts;
#define SHELF_WORDPIECE_DEFAULTS {1, -1, 1, 100}

typedef struct shelf_wordpiece shelf_wordpiece;
/* Reads vocab.txt (one token per line, id = line number from 0; UTF-8).
 * Errors name the file and line (SHELF_EIO, SHELF_EFORMAT, SHELF_ENOMEM).
 * The vocabulary must hold [UNK]; [CLS], [SEP], [PAD] are looked up if there. */
SHELF_API int shelf_wordpiece_load(const char *vocab_path, const shelf_wordpiece_opts *o, shelf_wordpiece **out,
                         shelf_err *err);
SHELF_API void shelf_wordpiece_free(shelf_wordpiece *wp); /* accepts NULL */
SHELF_API size_t shelf_wordpiece_vocab_size(const shelf_wordpiece *wp);
/* Special token ids, or UINT32_MAX when the vocabulary has none. */
SHELF_API uint32_t shelf_wordpiece_special(const shelf_wordpiece *wp, const char *token);
/* Token ids of text[0..len) (UTF-8; invalid bytes are dropped), without
 * special tokens, into ids[0..cap); returns the number of tokens the text has
 * (which may exceed cap: then only the first cap were written). Thread safe. */
SHELF_API size_t shelf_wordpiece_encode(const shelf_wordpiece *wp, const char *text, size_t len, uint32_t *ids, size_t cap);

/* ---- hashed character n-grams -------------------------------------------------
 * For shops without a vocabulary: each word (lower-cased, split as above,
 * bounded by '<' and '>') gives its character n-grams for n in
 * [n_min, n_max] (characters, not bytes), each hashed (xxh3) into
 * [0, buckets). Returns the count (may exceed cap, as above). */
SHELF_API size_t shelf_text_ngrams(const char *text, size_t len, int n_min, int n_max, uint32_t buckets, uint32_t *ids,
                         size_t cap);

/* ---- hashed words ---------------------------------------------------------------
 * Each word (lower-cased, accents stripped, split as WordPiece's basic
 * tokenisation: whitespace, punctuation, every CJK ideograph; punctuation
 * itself dropped) hashed (xxh3 of its UTF-8) into [0, buckets), in text
 * order, repeats kept. Returns the count
 * (may exceed cap, as above; 0 on bad arguments or out of memory). */
SHELF_API size_t shelf_text_words(const char *text, size_t len, uint32_t buckets, uint32_t *ids, size_t cap);

/* ---- BERT encoder (inference) ------------------------------------------------
 * Weights from a safetensors file with Hugging Face BertModel key names
 * (an optional "bert." prefix is accepted):
 *   embeddings.word_embeddings.weight [V,H], embeddings.position_embeddings.weight
 *   [P,H], embeddings.token_type_embeddings.weight [2,H],
 *   embeddings.LayerNorm.{weight,bias};
 *   encoder.layer.N.attention.self.{query,key,value}.{weight,bias},
 *   encoder.layer.N.attention.output.dense.{weight,bias},
 *   encoder.layer.N.attention.output.LayerNorm.{weight,bias},
 *   encoder.layer.N.intermediate.dense.{weight,bias},
 *   encoder.layer.N.output.dense.{weight,bias}, encoder.layer.N.output.LayerNorm.{weight,bias}
 * (torch Linear layout [out,in]); the number of layers from the keys, heads
 * from the config (HF config.json "num_attention_heads" next to the file, or
 * given), GELU exact (erf) as BERT's "gelu", LayerNorm eps 1e-12.
 * encode: [CLS] ids [SEP] (truncated to fit P), token type 0, bidirectional
 * self-attention; the output is the mean of the last layer over the tokens
 * (special tokens included, as sentence-transformers' mean pooling with an
 * all-ones mask). */
typedef struct shelf_bert shelf_bert;
/* n_heads 0: read config.json beside the weights. */
SHELF_API int shelf_bert_load(const char *safetensors_path, int n_heads, shelf_bert **out, shelf_err *err);
SHELF_API void shelf_bert_free(shelf_bert *b); /* accepts NULL */
SHELF_API size_t shelf_bert_dim(const shelf_bert *b);     /* H */
SHELF_API size_t shelf_bert_max_len(const shelf_bert *b); /* P */
/* out[H] = mean-pooled last layer of [CLS] ids[0..n) [SEP]; cls/sep ids
 * from the caller's vocabulary. Thread safe (allocates its own work space). */
SHELF_API int shelf_bert_encode(const shelf_bert *b, const uint32_t *ids, size_t n, uint32_t cls, uint32_t sep, float *out);

#ifdef __cplusplus
}
#endif
#endif
