/* test_bundle.c: bundles are checked: the manifest's checksum of the tensor
 * file is written and verified, a damaged byte or a non-finite weight
 * refuses the bundle, a bundle without checksums (an older shelf's) loads
 * with a warning, and a model holding a NaN is not saved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "shelf/model.h"
#include "shelf/snapshot.h"
#include "shelf/store.h"
#include "shelf/config.h"
#include "nn/safetensors.h"
#include "test_util.h"

/* ---- helpers ---------------------------------------------------------------------- */

/* 20 users, 10 items, a few views and purchases (of a type weighing weight) */
static shelf_snapshot *small_shop(float weight)
{
    shelf_store *st = store_new();
    make_ids(st, 20, 10);
    uint32_t view = type_of(st, "view"), buy = 0;
    assert_int_equal(shelf_store_add_event_type(st, "bought", weight, &buy), 0);
    for (uint32_t u = 0; u < 20; u++)
        for (uint32_t k = 0; k < 3; k++) add_event(st, u, (u * 3 + k * 7) % 10, k == 2 ? buy : view, 1000 + k);
    shelf_snapshot *s = build(st);
    shelf_store_close(st);
    return s;
}

/* a fitted pop model (counting event-type weights) saved into tmp/name,
 * which is removed first; the bundle's path */
static const char *saved_pop(const char *name)
{
    shelf_snapshot *s = small_shop(2.0f);
    shelf_config *o = opts("pop-count=weights", NULL);
    shelf_model *m = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_model_new("pop", &m, &err), 0);
    assert_int_equal(shelf_model_fit(m, s, o, NULL), 0);
    const char *dir = tmp_path(name);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    int rc = shelf_model_save(m, dir, &err);
    if (rc) fprintf(stderr, "save: %s\n", err.msg);
    assert_int_equal(rc, 0);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(s);
    return dir;
}

static cJSON *read_manifest(const char *dir)
{
    char p[1024], buf[65536];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

static void write_manifest(const char *dir, const cJSON *j)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    char *text = cJSON_Print(j);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
}

/* "xxh3-128:" and the hex digits of the file's XXH3-128, computed here */
static void file_sum(const char *dir, char out[64])
{
    char p[1024];
    snprintf(p, sizeof p, "%s/tensors.safetensors", dir);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    XXH128_hash_t h = XXH3_128bits(buf, n);
    snprintf(out, 64, "xxh3-128:%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

/* the byte offset in the tensor file of element k of tensor name */
static long tensor_offset(const char *dir, const char *name, long k)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/tensors.safetensors", dir);
    shelf__st_file f = {0};
    assert_int_equal(shelf__st_open(p, &f, NULL), 0);
    const shelf__st_tensor *t = shelf__st_find(&f, name);
    assert_non_null(t);
    long off = (long)((const char *)t->data - (const char *)f.map) + 4 * k;
    shelf__st_close(&f);
    return off;
}

static void poke(const char *dir, long off, const void *bytes, size_t n)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/tensors.safetensors", dir);
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

/* loads dir with stderr going to a file and checks that the code is want:
 * the message in err and what was logged in logged[cap] */
static void load_logged(const char *dir, int want, shelf_err *err, char *logged, size_t cap)
{
    const char *log = tmp_path("stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    shelf_model *m = NULL;
    int rc = shelf_model_load(dir, &m, err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    shelf_model_free(m);
    FILE *f = fopen(log, "rb");
    assert_non_null(f);
    size_t n = fread(logged, 1, cap - 1, f);
    logged[n] = '\0';
    fclose(f);
    if (rc != want) fprintf(stderr, "load %s: %d (%s), not %d\n", dir, rc, err->msg, want);
    assert_int_equal(rc, want);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_checksum_written_and_verified(void **state)
{
    (void)state;
    const char *dir = saved_pop("sum.bundle");
    cJSON *j = read_manifest(dir);
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "checksums"),
                                                        "tensors.safetensors");
    assert_true(cJSON_IsString(sum));
    char want[64];
    file_sum(dir, want);
    assert_string_equal(sum->valuestring, want);
    cJSON_Delete(j);
    shelf_err err = {0};
    char logged[4096];
    load_logged(dir, 0, &err, logged, sizeof logged);
    assert_null(strstr(logged, "no checksums"));
}

static void test_damaged_byte_refused(void **state)
{
    (void)state;
    const char *dir = saved_pop("damaged.bundle");
    long off = tensor_offset(dir, "count", 3) + 1; /* one byte inside a finite count */
    unsigned char b = 0x11;
    poke(dir, off, &b, 1);
    shelf_err err = {0};
    char logged[4096];
    load_logged(dir, SHELF_ECORRUPT, &err, logged, sizeof logged);
    assert_non_null(strstr(err.msg, "tensors.safetensors"));
    assert_non_null(strstr(err.msg, "checksum mismatch"));
    assert_non_null(strstr(err.msg, dir));
}

static void test_nan_refused(void **state)
{
    (void)state;
    const char *dir = saved_pop("nan.bundle");
    const float nan = NAN;
    poke(dir, tensor_offset(dir, "count", 4), &nan, sizeof nan);
    /* the checksum made right again: the weights alone are wrong */
    char sum[64];
    file_sum(dir, sum);
    cJSON *j = read_manifest(dir);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "checksums"), "tensors.safetensors",
                                           cJSON_CreateString(sum));
    write_manifest(dir, j);
    cJSON_Delete(j);
    shelf_err err = {0};
    char logged[4096];
    load_logged(dir, SHELF_ECORRUPT, &err, logged, sizeof logged);
    assert_non_null(strstr(err.msg, "tensor 'count' holds NaN at element 4"));
}

static void test_old_bundle_warns(void **state)
{
    (void)state;
    const char *dir = saved_pop("old.bundle");
    cJSON *j = read_manifest(dir);
    cJSON_DeleteItemFromObjectCaseSensitive(j, "checksums");
    write_manifest(dir, j);
    cJSON_Delete(j);
    shelf_err err = {0};
    char logged[4096];
    load_logged(dir, 0, &err, logged, sizeof logged);
    assert_non_null(strstr(logged, "no checksums (written by an older shelf)"));
    assert_non_null(strstr(logged, dir));
    /* a damaged old bundle still loads (nothing to check it against) but a
     * non-finite weight in it is refused */
    const float inf = INFINITY;
    poke(dir, tensor_offset(dir, "count", 0), &inf, sizeof inf);
    load_logged(dir, SHELF_ECORRUPT, &err, logged, sizeof logged);
    assert_non_null(strstr(err.msg, "tensor 'count' holds an infinity at element 0"));
}

static void test_nan_not_saved(void **state)
{
    (void)state;
    shelf_snapshot *s = small_shop(2.0f);
    /* the store refuses a NaN weight: the snapshot's copy is poisoned
     * instead, as a diverged fit would poison a model's weights */
    for (uint32_t t = 0; t < s->n_types; t++) ((float *)s->type_weight)[t] = NAN;
    shelf_config *o = opts("pop-count=weights", NULL);
    shelf_model *m = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf_model_new("pop", &m, &err), 0);
    assert_int_equal(shelf_model_fit(m, s, o, NULL), 0);
    const char *dir = tmp_path("nan-saved.bundle");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(shelf_model_save(m, dir, &err), SHELF_ERANGE);
    assert_non_null(strstr(err.msg, "holds NaN"));
    assert_int_equal(access(dir, F_OK), -1);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(s);
}

int main(void)
{
    tmp_init("bundle");
    shelf_log_set_level(SHELF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_written_and_verified),
        cmocka_unit_test(test_damaged_byte_refused),
        cmocka_unit_test(test_nan_refused),
        cmocka_unit_test(test_old_bundle_warns),
        cmocka_unit_test(test_nan_not_saved),
    };
    return cmocka_run_group_tests_name("bundle", tests, NULL, NULL);
}
