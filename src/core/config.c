/* config.c: the one configuration table and its values; CLI flags and config
 * files are parsed against it. Add an option by adding one row. */
#include "shelf/config.h"
#include "core/assert_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ALL "*"
static const shelf_cfg_def table[] = {
    /* name, type, default, min, max, choices, scope, help */
    {"store", SHELF_CFG_STRING, "shelf.db", 0, 0, NULL,
     "init import gen stats export snapshot eval train predict keys serve", "path of the SQLite store"},
    {"quiet", SHELF_CFG_BOOL, "false", 0, 0, NULL, ALL, "no progress bars"},
    {"log-level", SHELF_CFG_ENUM, "info", 0, 0, "debug|info|warn|error|off", ALL,
     "least severe log level printed to stderr"},
    {"log-json", SHELF_CFG_BOOL, "false", 0, 0, NULL, ALL, "log as JSON lines"},

    {"format", SHELF_CFG_ENUM, NULL, 0, 0, "s3rec|pairs|csv|jsonl|ml100k|taobao", "import export eval train",
     "file format (import, eval/train --data: all; export: csv, jsonl, s3rec)"},
    {"what", SHELF_CFG_ENUM, "events", 0, 0, "events|items|users", "import export",
     "which rows a csv/jsonl file holds"},
    {"attributes", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import eval train",
     "s3rec: the *_item2attributes.json file"},
    {"item-file", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import",
     "ml100k: the u.item file (default: beside u.data)"},
    {"map", SHELF_CFG_STRING, NULL, 0, 0, NULL, "import eval train",
     "csv/jsonl column mapping field=column,... (e.g. user=visitorid,ts=timestamp)"},
    {"type", SHELF_CFG_STRING, "purchase", 0, 0, NULL, "import eval train",
     "event type of records that name none (s3rec, pairs; csv/jsonl without a type column)"},
    {"delimiter", SHELF_CFG_STRING, ",", 0, 0, NULL, "import", "csv field delimiter (one character; \\t for tab)"},

    {"seed", SHELF_CFG_INT, "42", 0, 9.0e18, NULL, "gen eval train", "random seed"},
    {"users", SHELF_CFG_INT, "1000", 1, 4.0e9, NULL, "gen", "number of users"},
    {"items", SHELF_CFG_INT, "500", 1, 4.0e9, NULL, "gen", "number of items"},
    {"events", SHELF_CFG_INT, "20000", 1, 1.0e11, NULL, "gen", "number of events"},
    {"categories", SHELF_CFG_INT, "8", 1, 10000, NULL, "gen", "top-level categories"},
    {"brands", SHELF_CFG_INT, "20", 1, 1000000, NULL, "gen", "brands"},
    {"factors", SHELF_CFG_INT, "16", 1, 256, NULL, "gen", "latent taste dimensions"},
    {"zipf", SHELF_CFG_DOUBLE, "1.0", 0, 4, NULL, "gen", "popularity skew exponent"},
    {"days", SHELF_CFG_INT, "30", 1, 3650, NULL, "gen", "time span in days"},
    {"start", SHELF_CFG_INT, "1767225600", 0, 4.0e9, NULL, "gen",
     "unix time of the first day (default 2026-01-01)"},
    {"late-items", SHELF_CFG_DOUBLE, "0.2", 0, 0.95, NULL, "gen", "share of items added over time"},
    {"csv-events", SHELF_CFG_STRING, NULL, 0, 0, NULL, "gen",
     "write events to this CSV file instead of the store"},
    {"csv-items", SHELF_CFG_STRING, NULL, 0, 0, NULL, "gen", "with --csv-events: also write items here"},

    {"json", SHELF_CFG_BOOL, "false", 0, 0, NULL, "stats keys", "print JSON instead of a table"},
    {"out", SHELF_CFG_STRING, "-", 0, 0, NULL, "export snapshot", "output file ('-': standard output)"},

    /* API keys (shelf keys) */
    {"scope", SHELF_CFG_ENUM, NULL, 0, 0, "read|write|admin", "keys",
     "keys create: what the key may do (admin > write > read)"},
    {"name", SHELF_CFG_STRING, NULL, 0, 0, NULL, "keys", "keys create: a name to tell the key apart (at most 63 bytes)"},

    /* evaluation and training */
    {"data", SHELF_CFG_STRING, NULL, 0, 0, NULL, "eval train",
     "data: a file to import into a temporary in-memory store (with --format), or a shelf store"},
    {"models", SHELF_CFG_STRING, "pop,itemknn,ease,als,bpr", 0, 0, NULL, "eval", "comma-separated models to evaluate"},
    {"model", SHELF_CFG_STRING, NULL, 0, 0, NULL, "train", "model to train"},
    {"protocol", SHELF_CFG_ENUM, "loo-full", 0, 0, "loo-full|loo-s100|temporal|cold-item|ml100k-5fold|ratings-80-20",
     "eval train",
     "evaluation protocol (BENCHMARKS.md); ml100k-5fold: --data is the MovieLens-100k folder (u1..u5 base/test, "
     "plain or .xz); ratings-80-20: a seeded random 20% of the user-item pairs with ratings is test"},
    {"k", SHELF_CFG_STRING, "5,10,20", 0, 0, NULL, "eval", "cut-offs K, comma-separated (at most 20)"},
    {"valid", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval", "report on validation targets instead of test"},
    {"tune", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval",
     "grid-search each model's main hyperparameters on validation NDCG@10, then test the best"},
    {"json", SHELF_CFG_STRING, NULL, 0, 0, NULL, "eval", "write the results as JSON to this file"},
    {"topk-out", SHELF_CFG_STRING, NULL, 0, 0, NULL, "eval",
     "write each user's top-20 list here (FILE.<model> when several models)"},
    {"cold-share", SHELF_CFG_DOUBLE, "0.1", 0.001, 0.9, NULL, "eval train", "cold-item protocol: share of items held out"},
    {"cold-fill", SHELF_CFG_INT, "0", 0, 64, NULL, "eval",
     "items without training events score by their N content neighbours (category, brand, attributes, title "
     "words; 0: by the model)"},
    {"temporal-test-days", SHELF_CFG_DOUBLE, "7", 0, 3650, NULL, "eval train",
     "temporal protocol: the last N days are test (the N days before them validation)"},
    {"pop-leak-targets", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval",
     "protocol check only: count popularity over ALL interactions, test targets included "
     "(what the published PopRec row does); never use for real results"},
    {"threads", SHELF_CFG_INT, "0", 0, 256, NULL, "eval train", "threads (0: all cores)"},
    {"bundle", SHELF_CFG_STRING, NULL, 0, 0, NULL, "train predict serve",
     "model bundle directory (train: written; predict: read; serve: a bundle or a directory of bundles, the newest "
     "is served)"},
    /* serve */
    {"port", SHELF_CFG_INT, "8080", 0, 65535, NULL, "serve", "TCP port to listen on (0: any free port)"},
    {"bind", SHELF_CFG_STRING, "127.0.0.1", 0, 0, NULL, "serve", "IPv4 address to listen on (0.0.0.0: all)"},
    {"http-threads", SHELF_CFG_INT, "0", 0, 1024, NULL, "serve", "HTTP worker threads (0: 2 x cores, at least 4)"},
    {"auth", SHELF_CFG_BOOL, "true", 0, 0, NULL, "serve",
     "ask for API keys (Authorization: Bearer KEY; create keys with shelf keys create)"},
    {"max-body", SHELF_CFG_INT, "16777216", 1024, 1.0e10, NULL, "serve", "largest request body in bytes (413 above)"},
    {"max-batch", SHELF_CFG_INT, "10000", 1, 1.0e7, NULL, "serve", "most events, items or users in one request"},
    {"max-n", SHELF_CFG_INT, "1000", 1, 1.0e6, NULL, "serve", "largest n of a slate"},
    {"timeout", SHELF_CFG_INT, "30", 1, 86400, NULL, "serve", "idle connection timeout in seconds"},
    {"pop-half-life", SHELF_CFG_DOUBLE, "604800", 1, 1.0e10, NULL, "serve",
     "half-life of the popularity counters in seconds (604800: 7 days)"},
    {"session-memory", SHELF_CFG_INT, "1024", 1, 1.0e6, NULL, "serve",
     "MiB of the model's per-shopper sessions kept in memory (a transformer's profiles and key/value caches; the oldest go first)"},
    {"served-log", SHELF_CFG_BOOL, "true", 0, 0, NULL, "serve", "write every slate to the served log"},
    {"exclude-seen", SHELF_CFG_STRING, "purchase", 0, 0, NULL, "serve",
     "past events that hide an item from slates: TYPE[:DURATION],... (purchase,view:7d; units s m h d; none)"},
    {"fallback", SHELF_CFG_STRING, "trending,popular", 0, 0, NULL, "serve",
     "what a shopper without usable history gets, in order: trending (decayed popularity), popular (all time)"},
    {"cold-neighbours", SHELF_CFG_INT, "1", 1, 64, NULL, "serve",
     "items the model did not learn (added after training) score by this many content neighbours"},
    {"user", SHELF_CFG_STRING, NULL, 0, 0, NULL, "predict", "external user id"},
    {"item", SHELF_CFG_STRING, NULL, 0, 0, NULL, "predict", "external item id"},

    /* model hyperparameters (defaults chosen on Beauty validation) */
    {"pop-halflife", SHELF_CFG_DOUBLE, "0", 0, 36500, NULL, "eval train",
     "pop: half-life in days of the time decay (0: plain counts)"},
    {"pop-count", SHELF_CFG_ENUM, "pairs", 0, 0, "pairs|weights", "eval train",
     "pop: count distinct user-item pairs, or sum the event-type weights of all events"},
    {"knn-neighbours", SHELF_CFG_INT, "0", 0, 1.0e7, NULL, "eval train", "itemknn: neighbours kept per item (0: all)"},
    {"knn-shrink", SHELF_CFG_DOUBLE, "2000", 0, 1.0e6, NULL, "eval train", "itemknn: shrinkage of the cosine"},
    {"knn-weight", SHELF_CFG_ENUM, "tfidf", 0, 0, "none|tfidf|bm25", "eval train",
     "itemknn: weighting of the user-item matrix"},
    {"knn-bm25-k1", SHELF_CFG_DOUBLE, "1.2", 0, 100, NULL, "eval train", "itemknn: BM25 k1"},
    {"knn-bm25-b", SHELF_CFG_DOUBLE, "0.75", 0, 1, NULL, "eval train", "itemknn: BM25 b"},
    {"knn-recency", SHELF_CFG_DOUBLE, "0.4", 0, 1, NULL, "eval train",
     "itemknn: history weight decay per step back from the newest item (0: all equal)"},
    {"ease-lambda", SHELF_CFG_DOUBLE, "100", 0, 1.0e9, NULL, "eval train", "ease: L2 regularisation"},
    {"ease-recency", SHELF_CFG_DOUBLE, "0.4", 0, 1, NULL, "eval train",
     "ease: history weight decay per step back from the newest item (0: all equal)"},
    {"ease-max-mb", SHELF_CFG_INT, "8192", 1, 1.0e7, NULL, "eval train",
     "ease: refuse catalogues whose Gram matrix needs more memory than this (MiB)"},
    {"als-factors", SHELF_CFG_INT, "64", 1, 4096, NULL, "eval train", "als: latent factors"},
    {"als-iters", SHELF_CFG_INT, "30", 1, 1000, NULL, "eval train", "als: iterations"},
    {"als-alpha", SHELF_CFG_DOUBLE, "20", 0, 1.0e6, NULL, "eval train", "als: confidence scale (c = 1 + alpha r)"},
    {"als-reg", SHELF_CFG_DOUBLE, "10", 0, 1.0e6, NULL, "eval train", "als: L2 regularisation"},
    {"als-cg-steps", SHELF_CFG_INT, "3", 1, 100, NULL, "eval train", "als: conjugate-gradient steps per solve"},
    {"als-conf", SHELF_CFG_ENUM, "binary", 0, 0, "binary|weights", "eval train",
     "als: r of a user-item pair in c = 1 + alpha r: binary (1 per pair) or weights (summed event-type weights)"},
    {"als-fold-new", SHELF_CFG_BOOL, "true", 0, 0, NULL, "eval train",
     "als: a known user's query history items the fit did not see are folded in (the user's row re-solved "
     "with them) instead of ignored"},
    {"bpr-factors", SHELF_CFG_INT, "64", 1, 4096, NULL, "eval train", "bpr: latent factors"},
    {"bpr-epochs", SHELF_CFG_INT, "400", 1, 100000, NULL, "eval train", "bpr: epochs"},
    {"bpr-lr", SHELF_CFG_DOUBLE, "0.1", 0, 10, NULL, "eval train", "bpr: learning rate"},
    {"bpr-reg", SHELF_CFG_DOUBLE, "0.025", 0, 100, NULL, "eval train", "bpr: L2 regularisation"},
    {"bpr-neg", SHELF_CFG_ENUM, "uniform", 0, 0, "uniform|pop", "eval train", "bpr: negative sampling"},
    {"bpr-bias", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval train", "bpr: learn item biases"},
    {"bpr-fold-new", SHELF_CFG_BOOL, "true", 0, 0, NULL, "eval train",
     "bpr: a known user's query history items beyond their training positives are folded in (a user vector "
     "learned by SGD from the training positives and the history) instead of ignored"},
    {"mf-factors", SHELF_CFG_INT, "200", 1, 4096, NULL, "eval train", "rating-mf: latent factors"},
    {"mf-epochs", SHELF_CFG_INT, "60", 1, 100000, NULL, "eval train", "rating-mf: SGD epochs"},
    {"mf-lr", SHELF_CFG_DOUBLE, "0.02", 0, 10, NULL, "eval train", "rating-mf: learning rate of the factors"},
    {"mf-lr-bias", SHELF_CFG_DOUBLE, "0.02", 0, 10, NULL, "eval train", "rating-mf: learning rate of the biases"},
    {"mf-lr-decay", SHELF_CFG_DOUBLE, "0.95", 0, 1, NULL, "eval train",
     "rating-mf: learning rates are multiplied by this after every epoch"},
    {"mf-reg", SHELF_CFG_DOUBLE, "0.07", 0, 100, NULL, "eval train", "rating-mf: L2 regularisation of the factors"},
    {"mf-reg-bias", SHELF_CFG_DOUBLE, "0.05", 0, 100, NULL, "eval train", "rating-mf: L2 regularisation of the biases"},
    {"mf-init-std", SHELF_CFG_DOUBLE, "0.01", 0, 10, NULL, "eval train",
     "rating-mf: standard deviation of the normal initial factors"},
    {"svdpp-factors", SHELF_CFG_INT, "100", 1, 4096, NULL, "eval train", "svdpp: latent factors"},
    {"svdpp-epochs", SHELF_CFG_INT, "60", 1, 100000, NULL, "eval train", "svdpp: SGD epochs"},
    {"svdpp-lr", SHELF_CFG_DOUBLE, "0.02", 0, 10, NULL, "eval train", "svdpp: learning rate of p and q"},
    {"svdpp-lr-bias", SHELF_CFG_DOUBLE, "0.02", 0, 10, NULL, "eval train", "svdpp: learning rate of the biases"},
    {"svdpp-lr-y", SHELF_CFG_DOUBLE, "0.004", 0, 10, NULL, "eval train",
     "svdpp: learning rate of the implicit factors y"},
    {"svdpp-lr-decay", SHELF_CFG_DOUBLE, "0.95", 0, 1, NULL, "eval train",
     "svdpp: learning rates are multiplied by this after every epoch"},
    {"svdpp-reg", SHELF_CFG_DOUBLE, "0.08", 0, 100, NULL, "eval train", "svdpp: L2 regularisation of p and q"},
    {"svdpp-reg-bias", SHELF_CFG_DOUBLE, "0.05", 0, 100, NULL, "eval train", "svdpp: L2 regularisation of the biases"},
    {"svdpp-reg-y", SHELF_CFG_DOUBLE, "0.3", 0, 100, NULL, "eval train",
     "svdpp: L2 regularisation of y (applied once per user pass)"},
    {"svdpp-init-std", SHELF_CFG_DOUBLE, "0.01", 0, 10, NULL, "eval train",
     "svdpp: standard deviation of the normal initial factors"},
    {"rtext-factors", SHELF_CFG_INT, "200", 1, 4096, NULL, "eval train", "rating-text: latent factors"},
    {"rtext-epochs", SHELF_CFG_INT, "60", 1, 100000, NULL, "eval train", "rating-text: SGD epochs"},
    {"rtext-lr", SHELF_CFG_DOUBLE, "0.02", 0, 10, NULL, "eval train", "rating-text: learning rate of p and q"},
    {"rtext-lr-bias", SHELF_CFG_DOUBLE, "0.02", 0, 10, NULL, "eval train", "rating-text: learning rate of the biases"},
    {"rtext-lr-text", SHELF_CFG_DOUBLE, "0.01", 0, 10, NULL, "eval train",
     "rating-text: learning rate of the token factors and token biases"},
    {"rtext-lr-decay", SHELF_CFG_DOUBLE, "0.95", 0, 1, NULL, "eval train",
     "rating-text: learning rates are multiplied by this after every epoch"},
    {"rtext-reg", SHELF_CFG_DOUBLE, "0.12", 0, 100, NULL, "eval train",
     "rating-text: L2 regularisation of the user factors"},
    {"rtext-reg-bias", SHELF_CFG_DOUBLE, "0.05", 0, 100, NULL, "eval train",
     "rating-text: L2 regularisation of the user biases"},
    {"rtext-reg-item", SHELF_CFG_DOUBLE, "0.1", 0, 100, NULL, "eval train",
     "rating-text: L2 regularisation of the item's own factors and bias (its deviation from its text part)"},
    {"rtext-reg-text", SHELF_CFG_DOUBLE, "0.01", 0, 100, NULL, "eval train",
     "rating-text: L2 regularisation of the token factors and token biases"},
    {"rtext-init-std", SHELF_CFG_DOUBLE, "0.01", 0, 10, NULL, "eval train",
     "rating-text: standard deviation of the normal initial p and q (token factors start at 0)"},
    {"rtext-buckets", SHELF_CFG_INT, "65536", 1, 16777216, NULL, "eval train",
     "rating-text: hash buckets of the item text's words"},
    {"rtext-max-tokens", SHELF_CFG_INT, "64", 1, 65536, NULL, "eval train",
     "rating-text: at most this many distinct tokens per item (attributes first, then words in text order)"},
    {"rtext-attrs", SHELF_CFG_BOOL, "true", 0, 0, NULL, "eval train",
     "rating-text: the item's attributes are tokens too (one row each)"},
    {"hyb-factors", SHELF_CFG_INT, "64", 1, 4096, NULL, "eval train", "hybrid: latent factors"},
    {"hyb-epochs", SHELF_CFG_INT, "30", 1, 100000, NULL, "eval train", "hybrid: epochs"},
    {"hyb-lr", SHELF_CFG_DOUBLE, "0.2", 0, 10, NULL, "eval train",
     "hybrid: Adagrad learning rate (per-parameter rate lr / sqrt(1 + sum of squared gradients))"},
    {"hyb-reg", SHELF_CFG_DOUBLE, "1e-5", 0, 100, NULL, "eval train",
     "hybrid: L2 regularisation, added to the gradient of every parameter a step touches"},
    {"hyb-loss", SHELF_CFG_ENUM, "warp", 0, 0, "warp|bpr", "eval train",
     "hybrid: warp = sample negatives until one violates the margin, weight by the estimated rank (LightFM); "
     "bpr = one uniform negative, -ln sigmoid"},
    {"hyb-max-sampled", SHELF_CFG_INT, "30", 1, 1000000, NULL, "eval train",
     "hybrid: warp: at most this many negatives drawn per positive"},
    {"hyb-text-buckets", SHELF_CFG_INT, "16384", 0, 16777216, NULL, "eval train",
     "hybrid: hash buckets of the item text's words (features of the item; 0: words off)"},
    {"hyb-text-max", SHELF_CFG_INT, "32", 1, 65536, NULL, "eval train",
     "hybrid: at most this many distinct words per item (in text order)"},
    {"hyb-ctx-buckets", SHELF_CFG_INT, "1024", 1, 16777216, NULL, "eval train",
     "hybrid: rows of the request-context embedding table; query context ids >= this are ignored (serving hashes "
     "\"key=value\" strings into it)"},
    {"hyb-id-dropout", SHELF_CFG_DOUBLE, "0.3", 0, 0.95, NULL, "eval train",
     "hybrid: probability that an item drops its id part in a training step (features only), so that the "
     "features learn to stand in for the id"},
    {"hyb-freeze-cold", SHELF_CFG_BOOL, "true", 0, 0, NULL, "eval train",
     "hybrid: items without training positives keep a zero id embedding and bias (scored by their features)"},
    {"hyb-cold-neg", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval train",
     "hybrid: items without training positives are drawn as negatives too (false: only items with positives)"},
    {"tf-layers", SHELF_CFG_INT, "2", 1, 64, NULL, "eval train", "transformer: causal blocks"},
    {"tf-heads", SHELF_CFG_INT, "1", 1, 64, NULL, "eval train", "transformer: attention heads (divide tf-dim)"},
    {"tf-dim", SHELF_CFG_INT, "64", 1, 4096, NULL, "eval train", "transformer: width (embedding size)"},
    {"tf-ffn", SHELF_CFG_INT, "0", 0, 65536, NULL, "eval train", "transformer: feed-forward width (0: 4 x tf-dim)"},
    {"tf-maxlen", SHELF_CFG_INT, "50", 1, 4096, NULL, "eval train",
     "transformer: the last this many items of a sequence are its input"},
    {"tf-dropout", SHELF_CFG_DOUBLE, "0.5", 0, 0.95, NULL, "eval train",
     "transformer: dropout after the embeddings and on both residual branches"},
    {"tf-epochs", SHELF_CFG_INT, "40", 1, 100000, NULL, "eval train",
     "transformer: epochs (the most, with tf-patience)"},
    {"tf-batch", SHELF_CFG_INT, "128", 1, 65536, NULL, "eval train", "transformer: user sequences per batch"},
    {"tf-lr", SHELF_CFG_DOUBLE, "0.001", 0, 10, NULL, "eval train",
     "transformer: peak AdamW learning rate (linear warm-up, cosine decay to 0 over tf-epochs)"},
    {"tf-wd", SHELF_CFG_DOUBLE, "0.1", 0, 10, NULL, "eval train",
     "transformer: AdamW weight decay of the matrices (embeddings included; not biases or LayerNorm)"},
    {"tf-warmup", SHELF_CFG_INT, "100", 0, 1.0e9, NULL, "eval train", "transformer: warm-up steps"},
    {"tf-clip", SHELF_CFG_DOUBLE, "1", 0, 1.0e9, NULL, "eval train",
     "transformer: global gradient-norm clipping (0: none)"},
    {"tf-bucket", SHELF_CFG_BOOL, "true", 0, 0, NULL, "eval train",
     "transformer: batches of users of similar sequence length (batch order shuffled), so that a batch costs its "
     "own longest sequence instead of tf-maxlen positions; false: plain shuffled batches"},
    {"tf-patience", SHELF_CFG_INT, "10", 0, 100000, NULL, "eval train",
     "transformer: with validation targets (shelf eval) or tf-holdout, stop after this many epochs without a better "
     "validation NDCG@10 (0: run all tf-epochs); the best epoch is kept either way"},
    {"tf-holdout", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval train",
     "transformer: without validation targets, hold out each training sequence's last item to validate on (it is "
     "then never trained on)"},
    {"tf-loss", SHELF_CFG_ENUM, "ce", 0, 0, "ce|sampled|bce", "eval train",
     "transformer: ce = softmax over the whole catalogue; sampled = softmax over tf-negatives popularity-drawn "
     "negatives shared by the batch, log-Q corrected; bce = binary cross-entropy, tf-negatives uniform negatives "
     "per position"},
    {"tf-negatives", SHELF_CFG_INT, "0", 0, 1000000, NULL, "eval train",
     "transformer: negatives of the sampled losses (0: 256 for sampled, 1 for bce)"},
    {"tf-precision", SHELF_CFG_ENUM, "bf16", 0, 0, "f32|bf16", "eval train",
     "transformer: products of the ce output layer in float32, or bfloat16 inputs with float32 sums (AVX-512 BF16)"},
    {"tf-features", SHELF_CFG_BOOL, "true", 0, 0, NULL, "eval train",
     "transformer: an item is its id embedding plus the mean of its attribute, category, brand and price-bucket "
     "embeddings"},
    {"tf-text-buckets", SHELF_CFG_INT, "1048576", 0, 1073741824, NULL, "eval train",
     "transformer: with tf-features, hash the words of each item's text (title, text, category path, brand) into "
     "this many buckets as more features (0: no text); only the words in use get a table row"},
    {"tf-text-max", SHELF_CFG_INT, "32", 0, 4096, NULL, "eval train",
     "transformer: at most this many words of an item's text become features"},
    {"tf-text-model", SHELF_CFG_STRING, NULL, 0, 0, NULL, "eval train",
     "transformer: a directory with a pretrained BERT-style text encoder (vocab.txt, model.safetensors with Hugging "
     "Face key names, config.json): each item's text is encoded once, kept in the bundle, and projected into the "
     "item representation"},
    {"tf-id-dropout", SHELF_CFG_DOUBLE, "0", 0, 0.95, NULL, "eval train",
     "transformer: in training, leave an item's id embedding out of its representation with this probability per "
     "step (items with features only), so features learn to stand for new items (cold start)"},
    {"tf-exclude-cold", SHELF_CFG_BOOL, "false", 0, 0, NULL, "eval train",
     "transformer (ce): items without training events stay out of the training softmax and keep a zero id "
     "embedding, so their features alone represent them (cold start) instead of being pushed down as negatives"},
    {"tf-types", SHELF_CFG_BOOL, "true", 0, 0, NULL, "eval train",
     "transformer: add an event-type (behaviour) embedding at every position"},
    {"tf-gaps", SHELF_CFG_BOOL, "true", 0, 0, NULL, "eval train",
     "transformer: add an embedding of the log2-bucketed time since the previous event at every position"},
    {"tf-log", SHELF_CFG_STRING, NULL, 0, 0, NULL, "eval train",
     "transformer: JSON Lines training log, one line per epoch (loss, seconds, throughput, validation NDCG/HR@10)"},
};
#define N_TABLE (sizeof table / sizeof table[0])

typedef struct value {
    int set;      /* explicitly set */
    int has;      /* has a value (default or set) */
    int64_t i;    /* INT, BOOL */
    double d;     /* DOUBLE */
    char *s;      /* STRING, ENUM (owned) */
} value;

struct shelf_config {
    value v[N_TABLE];
    char command[32]; /* set by parse_args: a name used by several commands
                       * (--json) means the row of this command */
};

const shelf_cfg_def *shelf_config_table(size_t *n)
{
    if (n) *n = N_TABLE;
    return table;
}

static int in_scope(const shelf_cfg_def *d, const char *command);

/* Row of name; with a command, the row whose scope includes it is preferred
 * (a name may have one row per command, never two rows in one scope). */
static int find_row(const char *name, const char *command)
{
    int first = -1;
    for (size_t i = 0; i < N_TABLE; i++) {
        if (strcmp(table[i].name, name) != 0) continue;
        if (!command || !command[0] || in_scope(&table[i], command)) return (int)i;
        if (first < 0) first = (int)i;
    }
    return first;
}

static int find_idx(const char *name) { return find_row(name, NULL); }

const shelf_cfg_def *shelf_config_find(const char *name)
{
    int i = find_idx(name);
    return i < 0 ? NULL : &table[i];
}

static int parse_bool(const char *s, int64_t *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (int k = 0; k < 4; k++) {
        if (strcasecmp(s, yes[k]) == 0) return *out = 1, 0;
        if (strcasecmp(s, no[k]) == 0) return *out = 0, 0;
    }
    return SHELF_EINVAL;
}

static int choice_ok(const char *choices, const char *s)
{
    size_t n = strlen(s);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, s, n) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

/* Parses text into slot i; on error fills err (prefixed with origin). */
static int set_value(shelf_config *c, int i, const char *text, const char *origin, shelf_err *err)
{
    const shelf_cfg_def *d = &table[i];
    value *v = &c->v[i];
    const char *pre = origin ? origin : d->name;
    switch (d->type) {
    case SHELF_CFG_BOOL:
        if (parse_bool(text, &v->i))
            return shelf_err_set(err, SHELF_EINVAL, "%s: option '%s' wants true or false, not '%s'", pre,
                                 d->name, text);
        break;
    case SHELF_CFG_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(text, &end, 10);
        if (errno || end == text || *end)
            return shelf_err_set(err, SHELF_EINVAL, "%s: option '%s' wants an integer, not '%s'", pre,
                                 d->name, text);
        if ((double)x < d->min || (double)x > d->max)
            return shelf_err_set(err, SHELF_ERANGE, "%s: option '%s' must be in [%.0f, %.0f], not %lld",
                                 pre, d->name, d->min, d->max, x);
        v->i = x;
        break;
    }
    case SHELF_CFG_DOUBLE: {
        char *end;
        errno = 0;
        double x = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(x))
            return shelf_err_set(err, SHELF_EINVAL, "%s: option '%s' wants a number, not '%s'", pre,
                                 d->name, text);
        if (x < d->min || x > d->max)
            return shelf_err_set(err, SHELF_ERANGE, "%s: option '%s' must be in [%g, %g], not %g", pre,
                                 d->name, d->min, d->max, x);
        v->d = x;
        break;
    }
    case SHELF_CFG_ENUM:
        if (!choice_ok(d->choices, text))
            return shelf_err_set(err, SHELF_EINVAL, "%s: option '%s' must be one of %s, not '%s'", pre,
                                 d->name, d->choices, text);
        /* fall through */
    case SHELF_CFG_STRING: {
        char *s = strdup(text);
        if (!s) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        free(v->s);
        v->s = s;
        break;
    }
    }
    v->has = 1;
    return 0;
}

shelf_config *shelf_config_new(void)
{
    shelf_config *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    for (size_t i = 0; i < N_TABLE; i++) {
        if (!table[i].def) continue;
        /* defaults are part of the program: a bad one is a bug */
        SHELF_ASSERT(set_value(c, (int)i, table[i].def, "default", NULL) == 0);
    }
    return c;
}

void shelf_config_free(shelf_config *c)
{
    if (!c) return;
    for (size_t i = 0; i < N_TABLE; i++) free(c->v[i].s);
    free(c);
}

int shelf_config_set(shelf_config *c, const char *name, const char *text, const char *origin,
                     shelf_err *err)
{
    int i = find_row(name, c->command);
    if (i < 0)
        return shelf_err_set(err, SHELF_ENOTFOUND, "%s: unknown option '%s'", origin ? origin : "config",
                             name);
    int rc = set_value(c, i, text, origin, err);
    if (rc == 0) c->v[i].set = 1;
    return rc;
}

int shelf_config_is_set(const shelf_config *c, const char *name)
{
    int i = find_row(name, c->command);
    return i >= 0 && c->v[i].set;
}

static const value *get(const shelf_config *c, const char *name, shelf_cfg_type t)
{
    int i = find_row(name, c->command);
    SHELF_ASSERT(i >= 0);
    SHELF_ASSERT(table[i].type == t || (t == SHELF_CFG_STRING && table[i].type == SHELF_CFG_ENUM));
    return &c->v[i];
}

int shelf_config_bool(const shelf_config *c, const char *name) { return get(c, name, SHELF_CFG_BOOL)->i != 0; }
int64_t shelf_config_int(const shelf_config *c, const char *name) { return get(c, name, SHELF_CFG_INT)->i; }
double shelf_config_double(const shelf_config *c, const char *name) { return get(c, name, SHELF_CFG_DOUBLE)->d; }
const char *shelf_config_str(const shelf_config *c, const char *name)
{
    const value *v = get(c, name, SHELF_CFG_STRING);
    return v->has ? v->s : NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = '\0';
    return s;
}

int shelf_config_load_file(shelf_config *c, const char *path, shelf_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return shelf_err_set(err, SHELF_ENOTFOUND, "%s: cannot open config file", path);
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char origin[512];
        snprintf(origin, sizeof origin, "%s:%ld", path, lineno);
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = shelf_err_set(err, SHELF_EINVAL, "%s: expected 'name = value'", origin);
            break;
        }
        *eq = '\0';
        char *name = trim(s), *val = trim(eq + 1);
        if ((rc = shelf_config_set(c, name, val, origin, err))) break;
    }
    if (rc == 0 && ferror(f)) rc = shelf_err_set(err, SHELF_EIO, "%s: read error", path);
    free(line);
    fclose(f);
    return rc;
}

static int in_scope(const shelf_cfg_def *d, const char *command)
{
    if (strcmp(d->scope, ALL) == 0) return 1;
    size_t n = strlen(command);
    for (const char *p = d->scope; (p = strstr(p, command)); p += n) {
        int start = p == d->scope || p[-1] == ' ';
        int end = p[n] == '\0' || p[n] == ' ';
        if (start && end) return 1;
    }
    return 0;
}

int shelf_config_parse_args(shelf_config *c, const char *command, int argc, char **argv,
                            char ***positional, int *n_positional, int *help, shelf_err *err)
{
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    snprintf(c->command, sizeof c->command, "%s", command);
    int np = 0, rc = 0, only_pos = 0;
    *help = 0;
    for (int a = 0; a < argc; a++) {
        char *arg = argv[a];
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            pos[np++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            *help = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            rc = shelf_err_set(err, SHELF_EINVAL, "unknown flag '%s' (see shelf %s --help)", arg, command);
            break;
        }
        char name[128];
        const char *val = NULL;
        const char *eq = strchr(arg + 2, '=');
        size_t nl = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nl >= sizeof name) nl = sizeof name - 1;
        memcpy(name, arg + 2, nl);
        name[nl] = '\0';
        if (eq) val = eq + 1;

        if (strcmp(name, "config") == 0) {
            if (!val) {
                if (a + 1 >= argc) {
                    rc = shelf_err_set(err, SHELF_EINVAL, "--config needs a file");
                    break;
                }
                val = argv[++a];
            }
            if ((rc = shelf_config_load_file(c, val, err))) break;
            continue;
        }
        int i = find_row(name, command);
        int negated = 0;
        if (i < 0 && strncmp(name, "no-", 3) == 0) {
            i = find_row(name + 3, command);
            negated = i >= 0 && table[i].type == SHELF_CFG_BOOL;
            if (!negated) i = -1;
        }
        if (i < 0 || !in_scope(&table[i], command)) {
            rc = shelf_err_set(err, SHELF_EINVAL, "unknown option '--%s' for 'shelf %s' (see --help)", name,
                               command);
            break;
        }
        char origin[160];
        snprintf(origin, sizeof origin, "--%s", table[i].name);
        if (table[i].type == SHELF_CFG_BOOL && !val) {
            val = negated ? "false" : "true";
        } else if (negated) {
            rc = shelf_err_set(err, SHELF_EINVAL, "--no-%s takes no value", table[i].name);
            break;
        } else if (!val) {
            if (a + 1 >= argc) {
                rc = shelf_err_set(err, SHELF_EINVAL, "option '--%s' needs a value", name);
                break;
            }
            val = argv[++a];
        }
        if ((rc = shelf_config_set(c, table[i].name, val, origin, err))) break;
    }
    if (rc) {
        free(pos);
        return rc;
    }
    *positional = pos;
    *n_positional = np;
    return 0;
}

void shelf_config_print_help(FILE *f, const char *command)
{
    for (size_t i = 0; i < N_TABLE; i++) {
        const shelf_cfg_def *d = &table[i];
        if (!in_scope(d, command)) continue;
        char flag[96];
        switch (d->type) {
        case SHELF_CFG_BOOL: snprintf(flag, sizeof flag, "--%s", d->name); break;
        case SHELF_CFG_INT: snprintf(flag, sizeof flag, "--%s N", d->name); break;
        case SHELF_CFG_DOUBLE: snprintf(flag, sizeof flag, "--%s X", d->name); break;
        case SHELF_CFG_ENUM: snprintf(flag, sizeof flag, "--%s %s", d->name, d->choices); break;
        default: snprintf(flag, sizeof flag, "--%s VALUE", d->name); break;
        }
        fprintf(f, "  %-34s %s", flag, d->help);
        if (d->def && d->type != SHELF_CFG_BOOL) fprintf(f, " (default %s)", d->def);
        if (d->def && d->type == SHELF_CFG_BOOL && strcmp(d->def, "true") == 0)
            fprintf(f, " (on by default; --no-%s turns it off)", d->name);
        if (d->type == SHELF_CFG_INT || d->type == SHELF_CFG_DOUBLE) fprintf(f, " [%g..%g]", d->min, d->max);
        fputc('\n', f);
    }
    fprintf(f, "  %-34s %s\n", "--config FILE", "read options from FILE (name = value lines)");
    fprintf(f, "  %-34s %s\n", "-h, --help", "this help");
}
