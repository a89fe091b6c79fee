/* test_import_packed.c: gzip and xz files import as if they were plain,
 * recognised by their bytes; damaged ones, or ones with a bad record deep
 * inside, fail naming the file and store nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lzma.h>
#include <string.h>
#include <zlib.h>

#include "shelf/import.h"
#include "test_util.h"

static char *g_text; /* freed at exit */

static const char *csv_text(void)
{
    /* enough rows to cross several decompression buffers */
    if (!g_text) {
        size_t cap = 4 << 20, n = 0;
        g_text = malloc(cap);
        n += (size_t)snprintf(g_text + n, cap - n, "user,item,type,value,ts\n");
        for (int i = 0; i < 60000; i++)
            n += (size_t)snprintf(g_text + n, cap - n, "u%d,i%d,%s,0,%d\n", i % 997, i % 313, i % 3 ? "view" : "cart",
                                  1767225600 + i);
    }
    return g_text;
}

static void write_gzip(const char *path, const char *text, size_t len, int members)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t part = len / (size_t)members;
    for (int m = 0; m < members; m++) {
        /* one gzip member per part: concatenated members are one stream */
        size_t from = part * (size_t)m, to = m == members - 1 ? len : part * (size_t)(m + 1);
        z_stream z = {0};
        assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
        uLong bound = deflateBound(&z, (uLong)(to - from));
        unsigned char *out = malloc(bound);
        z.next_in = (unsigned char *)text + from;
        z.avail_in = (uInt)(to - from);
        z.next_out = out;
        z.avail_out = (uInt)bound;
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        fwrite(out, 1, bound - z.avail_out, f);
        deflateEnd(&z);
        free(out);
    }
    fclose(f);
}

static size_t write_xz(const char *path, const char *text, size_t len)
{
    size_t cap = lzma_stream_buffer_bound(len), pos = 0;
    uint8_t *out = malloc(cap);
    assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, (const uint8_t *)text, len, out, &pos, cap),
                     LZMA_OK);
    FILE *f = fopen(path, "wb");
    fwrite(out, 1, pos, f);
    fclose(f);
    free(out);
    return pos;
}

static void import_ok(const char *path, uint64_t want)
{
    shelf_store *st = store_new();
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    shelf_import_result r;
    int rc = shelf_import_file(st, path, &o, &r);
    if (rc) fail_msg("%s", shelf_store_errmsg(st));
    assert_int_equal(r.n_events, want);
    assert_int_equal(shelf_store_n_users(st), 997);
    shelf_store_close(st);
}

static void test_gzip(void **state)
{
    (void)state;
    const char *t = csv_text();
    write_gzip(tmp_path("ev.csv.gz"), t, strlen(t), 1);
    import_ok(tmp_path("ev.csv.gz"), 60000);
    write_gzip(tmp_path("multi.gz"), t, strlen(t), 3); /* name says nothing; members concatenated */
    import_ok(tmp_path("multi.gz"), 60000);
}

static void test_xz(void **state)
{
    (void)state;
    const char *t = csv_text();
    write_xz(tmp_path("ev.csv.xz"), t, strlen(t));
    import_ok(tmp_path("ev.csv.xz"), 60000);
}

static void expect_damaged(const char *path, const char *why)
{
    shelf_store *st = store_new();
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    int rc = shelf_import_file(st, path, &o, NULL);
    assert_int_not_equal(rc, 0);
    if (!strstr(shelf_store_errmsg(st), why)) fail_msg("'%s' lacks '%s'", shelf_store_errmsg(st), why);
    assert_non_null(strstr(shelf_store_errmsg(st), path));
    assert_int_equal(shelf_store_n_users(st), 0); /* nothing stored */
    shelf_store_close(st);
}

static void truncate_file(const char *path, long keep)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc((size_t)keep);
    assert_int_equal(fread(buf, 1, (size_t)keep, f), (size_t)keep);
    fclose(f);
    f = fopen(path, "wb");
    fwrite(buf, 1, (size_t)keep, f);
    fclose(f);
    free(buf);
}

static void test_damaged(void **state)
{
    (void)state;
    const char *t = csv_text();
    const char *gz = tmp_path("cut.gz");
    write_gzip(gz, t, strlen(t), 1);
    truncate_file(gz, 5000);
    expect_damaged(gz, "truncated gzip");

    const char *xz = tmp_path("cut.xz");
    size_t n = write_xz(xz, t, strlen(t));
    truncate_file(xz, (long)n / 2);
    expect_damaged(xz, "xz");

    /* a flipped byte inside the compressed data */
    const char *bad = tmp_path("flip.gz");
    write_gzip(bad, t, strlen(t), 1);
    FILE *f = fopen(bad, "r+b");
    fseek(f, 200, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 200, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
    expect_damaged(bad, "gzip");
}

/* a value a float cannot hold, after 60000 good rows: refused with its
 * line, packed or not, and nothing of the file stored (issue 15) */
static void test_refused_value(void **state)
{
    (void)state;
    const char *t = csv_text();
    size_t n = strlen(t);
    char *bad = malloc(n + 64);
    memcpy(bad, t, n);
    n += (size_t)snprintf(bad + n, 64, "u1,i1,view,1e308,1767225600\n");
    write_gzip(tmp_path("huge.csv.gz"), bad, n, 2);
    expect_damaged(tmp_path("huge.csv.gz"), ":60002: field 4 (value): 1e+308 is beyond the range of a float");
    write_xz(tmp_path("huge.csv.xz"), bad, n);
    expect_damaged(tmp_path("huge.csv.xz"), ":60002: field 4 (value): 1e+308 is beyond the range of a float");
    free(bad);
}

int main(void)
{
    tmp_init("import_packed");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_xz),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_refused_value),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_text);
    return failed;
}
