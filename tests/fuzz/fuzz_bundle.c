/* fuzz_bundle.c: the model bundle loader (src/models/bundle.c, the
 * safetensors reader of src/nn/safetensors.c and each model's load). An
 * input is manifest.json, a NUL byte, then tensors.safetensors. A manifest
 * checksum of the known kind ("xxh3-128:...") is replaced by the checksum
 * of the input's tensor bytes, so that mutated tensors reach the parsing
 * behind the check (a checksum of another kind, or none, is left as it
 * is). A bundle that loads is asked for scores (a known user, a history of
 * its first and last items), a rating and an explanation, which must stay
 * inside what it declared.
 *
 * Seeds: `fuzz_bundle -seeds=DIR` (an option of this harness, not of
 * libFuzzer) trains each model kind on a tiny generated shop and writes
 * one input per kind into DIR (tests/fuzz/corpus/bundle). */
#include "util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "shelf/model.h"
#include "shelf/snapshot.h"
#include "shelf/store.h"

#define SUM_PREFIX "xxh3-128:"
#define MAX_ITEMS (1u << 20) /* larger bundles are not scored (the scores array) */

/* manifest with its tensor checksum made right for tensors[0..n); malloc'd */
static char *fix_checksum(const char *manifest, const uint8_t *tensors, size_t n)
{
    cJSON *root = cJSON_Parse(manifest);
    cJSON *sums = cJSON_GetObjectItemCaseSensitive(root, "checksums");
    cJSON *want = cJSON_GetObjectItemCaseSensitive(sums, "tensors.safetensors");
    if (!cJSON_IsString(want) || strncmp(want->valuestring, SUM_PREFIX, strlen(SUM_PREFIX)) != 0) {
        cJSON_Delete(root);
        return fuzz_strndup((const uint8_t *)manifest, strlen(manifest));
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(tensors, n));
    char sum[64];
    int k = snprintf(sum, sizeof sum, SUM_PREFIX);
    for (size_t i = 0; i < sizeof c.digest; i++) k += snprintf(sum + k, sizeof sum - (size_t)k, "%02x", c.digest[i]);
    cJSON_ReplaceItemInObjectCaseSensitive(sums, "tensors.safetensors", cJSON_CreateString(sum));
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) fuzz_die("out of memory");
    return text;
}

/* what a loaded model must answer without reading outside itself */
static void exercise(shelf_model *m)
{
    if (m->n_items == 0 || m->n_items > MAX_ITEMS) return;
    float *scores = malloc(m->n_items * sizeof *scores);
    if (!scores) fuzz_die("out of memory");
    uint32_t hist[2] = {0, m->n_items - 1};
    shelf_query q = {.user = m->n_users ? 0 : SHELF_NONE, .items = hist, .n = 2};
    shelf_err err = {0};
    (void)shelf_model_score(m, &q, scores, &err);
    q.user = SHELF_NONE;
    (void)shelf_model_score(m, &q, scores, &err);
    float r;
    if (m->n_users) (void)shelf_model_predict(m, 0, m->n_items - 1, &r, &err);
    shelf_reason why;
    (void)shelf_model_explain(m, &q, m->n_items - 1, &why, &err);
    free(scores);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *man, *ten;
    size_t n_man, n_ten;
    fuzz_split(data, size, &man, &n_man, &ten, &n_ten);
    char *text = fuzz_strndup(man, n_man);
    char *fixed = fix_checksum(text, ten, n_ten);
    const char *dir = fuzz_path("bundle");
    mkdir(dir, 0700);
    char path[1200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    fuzz_write(path, fixed, strlen(fixed));
    snprintf(path, sizeof path, "%s/tensors.safetensors", dir);
    fuzz_write(path, ten, n_ten);
    shelf_model *m = NULL;
    shelf_err err = {0};
    if (shelf_model_load(dir, &m, &err) == 0) {
        exercise(m);
        shelf_model_free(m);
    } else if (m || !err.msg[0]) {
        fuzz_die("load failed without a message or left *out set");
    }
    free(fixed);
    free(text);
    return 0;
}

/* ---- seeds ----------------------------------------------------------------------- */

static void *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) fuzz_die("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) fuzz_die("cannot read %s", path);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* the options that keep each kind's bundle small */
static const char *const small[][2] = {
    {"tf-dim", "8"},         {"tf-heads", "1"},         {"tf-layers", "1"},       {"tf-maxlen", "8"},
    {"tf-epochs", "1"},      {"tf-text-buckets", "64"}, {"tf-precision", "f32"},  {"als-factors", "4"},
    {"bpr-factors", "4"},    {"mf-factors", "4"},       {"hyb-factors", "4"},     {"hyb-epochs", "1"},
    {"svdpp-factors", "4"},  {"svdpp-epochs", "1"},     {"rtext-factors", "4"},   {"rtext-epochs", "1"},
    {"rtext-buckets", "16"}, {"hyb-text-buckets", "32"}, {"hyb-ctx-buckets", "8"}, {"threads", "1"},
};

static void write_seeds(const char *out)
{
    shelf_snapshot *sn = fuzz_shop(":memory:", 12, 10, 300);
    shelf_err err = {0};
    shelf_opts *o = shelf_config_new();
    for (size_t k = 0; k < sizeof small / sizeof small[0]; k++)
        if (shelf_config_find(small[k][0]) && shelf_config_set(o, small[k][0], small[k][1], "fuzz", &err))
            fuzz_die("option %s: %s", small[k][0], err.msg);
    size_t n_kinds;
    const char *const *kinds = shelf_model_names(&n_kinds);
    for (size_t k = 0; k < n_kinds; k++) {
        shelf_model *m = NULL;
        if (shelf_model_new(kinds[k], &m, &err)) fuzz_die("%s: %s", kinds[k], err.msg);
        char dir[1200];
        snprintf(dir, sizeof dir, "%s", fuzz_path(kinds[k]));
        if (shelf_model_fit(m, sn, o, NULL) || shelf_model_save(m, dir, &err)) {
            fprintf(stderr, "fuzz_bundle: no seed for %s: %s%s\n", kinds[k], shelf_model_errmsg(m), err.msg);
            shelf_model_free(m);
            continue;
        }
        shelf_model_free(m);
        char path[1300];
        size_t n_man, n_ten;
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        char *man = slurp(path, &n_man);
        snprintf(path, sizeof path, "%s/tensors.safetensors", dir);
        char *ten = slurp(path, &n_ten);
        snprintf(path, sizeof path, "%s/%s", out, kinds[k]);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(man, 1, n_man, f) != n_man || fputc(0, f) == EOF || fwrite(ten, 1, n_ten, f) != n_ten ||
            fclose(f) != 0)
            fuzz_die("cannot write %s", path);
        fprintf(stderr, "fuzz_bundle: %s: %zu + %zu bytes\n", path, n_man, n_ten);
        free(man);
        free(ten);
    }
    shelf_config_free(o);
    shelf_snapshot_free(sn);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    shelf_log_set_level(SHELF_LOG_OFF);
    fuzz_dir();
    for (int k = 1; k < *argc; k++)
        if (!strncmp((*argv)[k], "-seeds=", 7)) {
            write_seeds((*argv)[k] + 7);
            exit(0);
        }
    return 0;
}
