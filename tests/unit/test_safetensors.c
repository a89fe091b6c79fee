/* test_safetensors.c: the safetensors writer and reader: round trip, the
 * format's byte layout, and rejection of damaged files. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "nn/safetensors.h"
#include "test_util.h"

static void write_sample(const char *path)
{
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint32_t b[3] = {7, 8, 9};
    int64_t c[1] = {-5};
    shelf__st_tensor t[] = {
        {.name = "a", .dt = SHELF_DT_F32, .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "b.idx", .dt = SHELF_DT_U32, .ndim = 1, .shape = {3}, .data = b},
        {.name = "c", .dt = SHELF_DT_I64, .ndim = 1, .shape = {1}, .data = c},
    };
    const char *k[] = {"format"}, *v[] = {"pt"};
    shelf_err e = {0};
    assert_int_equal(shelf__st_write(path, t, 3, k, v, 1, &e), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *path = tmp_path("rt.safetensors");
    write_sample(path);
    shelf__st_file f;
    shelf_err e = {0};
    assert_int_equal(shelf__st_open(path, &f, &e), 0);
    assert_int_equal(f.n, 3);
    const shelf__st_tensor *a = shelf__st_find(&f, "a");
    assert_non_null(a);
    assert_int_equal(a->dt, SHELF_DT_F32);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_true(((const float *)a->data)[5] == 6.0f);
    const shelf__st_tensor *b = shelf__st_find(&f, "b.idx");
    assert_int_equal(((const uint32_t *)b->data)[2], 9);
    assert_int_equal(((const int64_t *)shelf__st_find(&f, "c")->data)[0], -5);
    assert_null(shelf__st_find(&f, "nope"));
    shelf__st_close(&f);
}

static void test_layout(void **state)
{
    /* 8-byte little-endian header length, JSON header padded with spaces to
     * a multiple of 8, then the data in order */
    (void)state;
    const char *path = tmp_path("layout.safetensors");
    write_sample(path);
    FILE *fp = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)buf[i] << (8 * i);
    assert_int_equal(hl % 8, 0);
    assert_int_equal(n, 8 + hl + 6 * 4 + 3 * 4 + 8);
    assert_int_equal(buf[8], '{');
    /* the 8-byte tensor first, then the 4-byte ones in the order given */
    assert_non_null(memmem(buf + 8, hl, "\"data_offsets\":[0,8]", 20));
    assert_non_null(memmem(buf + 8, hl, "\"data_offsets\":[8,32]", 21));
    assert_non_null(memmem(buf + 8, hl, "\"data_offsets\":[32,44]", 22));
    assert_non_null(memmem(buf + 8, hl, "\"__metadata__\":{\"format\":\"pt\"}", 30));
    int64_t first;
    memcpy(&first, buf + 8 + hl, 8);
    assert_true(first == -5);
}

static void write_raw(const char *path, const char *header, size_t data_bytes)
{
    FILE *fp = fopen(path, "wb");
    uint64_t hl = strlen(header);
    for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), fp);
    fputs(header, fp);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, fp);
    fclose(fp);
}

static void expect_bad(const char *header, size_t data_bytes, const char *why)
{
    const char *path = tmp_path("bad.safetensors");
    write_raw(path, header, data_bytes);
    shelf__st_file f;
    shelf_err e = {0};
    assert_int_equal(shelf__st_open(path, &f, &e), SHELF_ECORRUPT);
    if (!strstr(e.msg, why)) fail_msg("'%s' lacks '%s'", e.msg, why);
    assert_non_null(strstr(e.msg, "bad.safetensors"));
}

static void test_damaged(void **state)
{
    (void)state;
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "byte range");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "byte range");
    expect_bad("{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlaps");
    expect_bad("[1,2]", 0, "not a JSON object");
    expect_bad("{\"a\":{\"shape\":[1]}}", 0, "needs dtype");
    /* header length beyond the file */
    const char *path = tmp_path("short.safetensors");
    FILE *fp = fopen(path, "wb");
    unsigned char hl[8] = {0xff, 0xff, 0, 0, 0, 0, 0, 0};
    fwrite(hl, 1, 8, fp);
    fclose(fp);
    shelf__st_file f;
    shelf_err e = {0};
    assert_int_equal(shelf__st_open(path, &f, &e), SHELF_ECORRUPT);
    assert_int_equal(shelf__st_open(tmp_path("missing.safetensors"), &f, &e), SHELF_ENOTFOUND);
    /* F16 is a known safetensors dtype: the file opens, the tensor is kept */
    write_raw(path, "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    assert_int_equal(shelf__st_open(path, &f, &e), 0);
    assert_int_equal(f.n, 1);
    shelf__st_close(&f);
}

int main(void)
{
    tmp_init("safetensors");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
