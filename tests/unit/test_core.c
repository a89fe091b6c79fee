/* test_core.c: status codes, arena, rng, strmap, utf-8 check, config table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shelf/shelf.h"
#include "core/sbuf_int.h"

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(shelf_strerror(SHELF_OK), "ok");
    assert_string_equal(shelf_strerror(SHELF_ENOMEM), "out of memory");
    assert_string_equal(shelf_strerror(SHELF_ECORRUPT), "corrupt file");
    assert_string_equal(shelf_strerror(-999), "unknown error");
    shelf_err e = {0};
    assert_int_equal(shelf_err_set(&e, SHELF_EINVAL, "x.csv:%d: bad", 3), SHELF_EINVAL);
    assert_string_equal(shelf_errmsg(&e), "x.csv:3: bad");
    assert_int_equal(e.code, SHELF_EINVAL);
    assert_int_equal(shelf_err_set(NULL, SHELF_EIO, "ignored"), SHELF_EIO);
    assert_string_equal(shelf_errmsg(NULL), "");
}

static void test_arena(void **state)
{
    (void)state;
    shelf_arena *a = shelf_arena_new(256);
    assert_non_null(a);
    for (int i = 0; i < 1000; i++) {
        size_t align = (size_t)1 << (i % 7);
        char *p = shelf_arena_alloc(a, (size_t)(i % 50) + 1, align);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % align, 0);
        memset(p, 0xab, (size_t)(i % 50) + 1);
    }
    char *big = shelf_arena_alloc(a, 10000, 64); /* larger than a block */
    assert_non_null(big);
    memset(big, 1, 10000);
    assert_string_equal(shelf_arena_strdup(a, "hello"), "hello");
    assert_string_equal(shelf_arena_strndup(a, "hello", 3), "hel");
    assert_true(shelf_arena_used(a) > 10000);
    shelf_arena_reset(a);
    assert_int_equal(shelf_arena_used(a), 0);
    assert_non_null(shelf_arena_alloc(a, 100, 8));
    shelf_arena_free(a);
    shelf_arena_free(NULL);
}

static void test_rng(void **state)
{
    (void)state;
    shelf_rng a, b;
    shelf_rng_seed(&a, 7);
    shelf_rng_seed(&b, 7);
    for (int i = 0; i < 100; i++) assert_true(shelf_rng_u64(&a) == shelf_rng_u64(&b));
    shelf_rng_seed(&b, 8);
    assert_true(shelf_rng_u64(&a) != shelf_rng_u64(&b));
    /* bounded: uniform within a loose chi-square bound, never out of range */
    enum { N = 10, DRAWS = 100000 };
    int hist[N] = {0};
    for (int i = 0; i < DRAWS; i++) {
        uint32_t x = shelf_rng_below(&a, N);
        assert_true(x < N);
        hist[x]++;
    }
    double chi = 0;
    for (int i = 0; i < N; i++) chi += (hist[i] - DRAWS / N) * (double)(hist[i] - DRAWS / N) / (DRAWS / N);
    assert_true(chi < 30.0); /* 9 dof: p < 1e-3 */
    double sum = 0, sq = 0;
    for (int i = 0; i < DRAWS; i++) {
        double u = shelf_rng_uniform(&a);
        assert_true(u >= 0 && u < 1);
        double z = shelf_rng_normal(&a);
        sum += z;
        sq += z * z;
    }
    assert_true(fabs(sum / DRAWS) < 0.02);
    assert_true(fabs(sq / DRAWS - 1.0) < 0.03);
    shelf_rng s1, s2;
    shelf_rng_split(&s1, 1, 0);
    shelf_rng_split(&s2, 1, 1);
    assert_true(shelf_rng_u64(&s1) != shelf_rng_u64(&s2));
}

static void test_strmap(void **state)
{
    (void)state;
    shelf_strmap *m = shelf_strmap_new(0);
    assert_non_null(m);
    char key[32];
    for (uint32_t i = 0; i < 50000; i++) {
        int n = snprintf(key, sizeof key, "k%u", i);
        assert_int_equal(shelf_strmap_put(m, key, (size_t)n, i), 0);
    }
    assert_int_equal(shelf_strmap_count(m), 50000);
    for (uint32_t i = 0; i < 50000; i++) {
        int n = snprintf(key, sizeof key, "k%u", i);
        uint32_t v = 0;
        assert_int_equal(shelf_strmap_get(m, key, (size_t)n, &v), 1);
        assert_int_equal(v, i);
    }
    uint32_t v;
    assert_int_equal(shelf_strmap_get(m, "nope", 4, &v), 0);
    assert_int_equal(shelf_strmap_get(m, "k1", 1, &v), 0); /* "k" is not a key */
    assert_int_equal(shelf_strmap_put(m, "k1", 2, 99), 0);  /* overwrite */
    assert_int_equal(shelf_strmap_get(m, "k1", 2, &v), 1);
    assert_int_equal(v, 99);
    assert_int_equal(shelf_strmap_count(m), 50000);
    /* keys with NUL bytes and empty keys are distinct */
    assert_int_equal(shelf_strmap_put(m, "a\0b", 3, 5), 0);
    assert_int_equal(shelf_strmap_get(m, "a", 1, &v), 0);
    assert_int_equal(shelf_strmap_put(m, "", 0, 6), 0);
    assert_int_equal(shelf_strmap_get(m, "", 0, &v), 1);
    assert_int_equal(v, 6);
    shelf_strmap_free(m);
}

static void test_utf8(void **state)
{
    (void)state;
    size_t off = 99;
    assert_true(shelf_utf8_valid("plain", 5, &off));
    assert_true(shelf_utf8_valid("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", 14, &off));
    assert_false(shelf_utf8_valid("ab\xff", 3, &off));
    assert_int_equal(off, 2);
    assert_false(shelf_utf8_valid("ab\xc3", 3, &off)); /* truncated */
    assert_int_equal(off, 2);
    assert_false(shelf_utf8_valid("\xc0\xaf", 2, &off)); /* overlong */
    assert_int_equal(off, 0);
    assert_false(shelf_utf8_valid("x\xed\xa0\x80", 4, &off)); /* surrogate */
    assert_int_equal(off, 1);
    assert_false(shelf_utf8_valid("\xf4\x90\x80\x80", 4, &off)); /* > U+10FFFF */
    assert_false(shelf_utf8_valid("\xe4\xb8", 2, &off));
}

static void test_config(void **state)
{
    (void)state;
    size_t n;
    const shelf_cfg_def *t = shelf_config_table(&n);
    assert_true(n > 10);
    /* a name has at most one row per command (stats' --json is a switch,
     * eval's --json a file) */
    const char *cmds[] = {"init", "import", "gen", "stats", "export", "snapshot", "eval", "train", "predict"};
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            if (strcmp(t[i].name, t[j].name) != 0) continue;
            for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++)
                assert_false(strstr(t[i].scope, cmds[k]) && strstr(t[j].scope, cmds[k]));
        }
    shelf_config *c = shelf_config_new();
    assert_non_null(c);
    assert_string_equal(shelf_config_str(c, "store"), "shelf.db");
    assert_int_equal(shelf_config_int(c, "seed"), 42);
    assert_false(shelf_config_is_set(c, "seed"));
    shelf_err e = {0};
    assert_int_equal(shelf_config_set(c, "seed", "7", NULL, &e), 0);
    assert_true(shelf_config_is_set(c, "seed"));
    assert_int_equal(shelf_config_set(c, "seed", "7x", "--seed", &e), SHELF_EINVAL);
    assert_non_null(strstr(e.msg, "--seed"));
    assert_int_equal(shelf_config_set(c, "users", "0", NULL, &e), SHELF_ERANGE);
    assert_int_equal(shelf_config_set(c, "zipf", "9", NULL, &e), SHELF_ERANGE);
    assert_int_equal(shelf_config_set(c, "format", "xml", NULL, &e), SHELF_EINVAL);
    assert_int_equal(shelf_config_set(c, "nope", "1", NULL, &e), SHELF_ENOTFOUND);
    assert_int_equal(shelf_config_int(c, "seed"), 7); /* failed sets change nothing */

    char *argv[] = {"--store", "a.db", "--quiet", "file1", "--zipf=1.5", "--", "--file2"};
    char **pos;
    int np, help;
    assert_int_equal(shelf_config_parse_args(c, "gen", 7, argv, &pos, &np, &help, &e), 0);
    assert_string_equal(shelf_config_str(c, "store"), "a.db");
    assert_true(shelf_config_bool(c, "quiet"));
    assert_true(shelf_config_double(c, "zipf") == 1.5);
    assert_int_equal(np, 2);
    assert_string_equal(pos[0], "file1");
    assert_string_equal(pos[1], "--file2");
    assert_false(help);
    free(pos);
    shelf_config *ev = shelf_config_new();
    char *evargs[] = {"--json", "out.json"};
    assert_int_equal(shelf_config_parse_args(ev, "eval", 2, evargs, &pos, &np, &help, &e), 0);
    assert_string_equal(shelf_config_str(ev, "json"), "out.json");
    free(pos);
    shelf_config_free(ev);
    shelf_config *st = shelf_config_new();
    char *stargs[] = {"--json"};
    assert_int_equal(shelf_config_parse_args(st, "stats", 1, stargs, &pos, &np, &help, &e), 0);
    assert_true(shelf_config_bool(st, "json"));
    free(pos);
    shelf_config_free(st);
    char *bad[] = {"--json"}; /* stats/eval option given to gen */
    assert_int_equal(shelf_config_parse_args(c, "gen", 1, bad, &pos, &np, &help, &e), SHELF_EINVAL);
    assert_non_null(strstr(e.msg, "--json"));
    char *missing[] = {"--seed"};
    assert_int_equal(shelf_config_parse_args(c, "gen", 1, missing, &pos, &np, &help, &e), SHELF_EINVAL);

    /* config file: values, comments, and an error naming file:line */
    const char *dir = getenv("SHELF_TEST_TMP");
    char path[512];
    snprintf(path, sizeof path, "%s/core.conf", dir ? dir : "/tmp");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# comment\n\nseed = 11\nzipf=0.5\nusers = many\n");
    fclose(f);
    assert_int_equal(shelf_config_load_file(c, path, &e), SHELF_EINVAL);
    assert_non_null(strstr(e.msg, "core.conf:5"));
    assert_int_equal(shelf_config_int(c, "seed"), 11);
    assert_true(shelf_config_double(c, "zipf") == 0.5);
    assert_int_equal(shelf_config_load_file(c, "/nonexistent/x.conf", &e), SHELF_ENOTFOUND);
    remove(path);
    shelf_config_free(c);
}

static void test_log_level(void **state)
{
    (void)state;
    shelf_log_level l;
    assert_int_equal(shelf_log_level_parse("warn", &l), 0);
    assert_int_equal(l, SHELF_LOG_WARN);
    assert_int_equal(shelf_log_level_parse("loud", &l), SHELF_EINVAL);
    shelf_log_set_level(SHELF_LOG_OFF);
    shelf_info("not printed");
    shelf_log_set_level(SHELF_LOG_INFO);
}

/* The one text builder: JSON string literals (cJSON prints them), numbers,
 * printf, and a text longer than the stack copy. */
static void test_sbuf(void **state)
{
    (void)state;
    shelf__sbuf b = {0};
    shelf__sbuf_json_str(&b, "a\"b\\c\n\r\t\x01\x1f/\xc3\xa9", 13);
    SBUF_LIT(&b, ",");
    shelf__sbuf_cstr(&b, "");
    SBUF_LIT(&b, ",");
    shelf__sbuf_float(&b, 0.1f);
    SBUF_LIT(&b, ",");
    shelf__sbuf_float(&b, NAN);
    shelf__sbuf_printf(&b, ",%d", 42);
    assert_false(b.oom);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f/\xc3\xa9\",\"\",0.100000001,null,42");
    assert_int_equal(b.len, strlen(b.p));
    /* the literal of only a part of a text: n bytes, not up to its NUL */
    b.len = 0;
    shelf__sbuf_json_str(&b, "abcdef", 3);
    assert_string_equal(b.p, "\"abc\"");
    /* 1000 control bytes: 6000 bytes of escapes, past the stack copy */
    char big[1000];
    memset(big, '\x02', sizeof big);
    b.len = 0;
    shelf__sbuf_json_str(&b, big, sizeof big);
    assert_false(b.oom);
    assert_int_equal(b.len, 2 + 6 * sizeof big);
    assert_int_equal(memcmp(b.p, "\"\\u0002\\u0002", 13), 0);
    shelf__sbuf_free(&b);
    assert_null(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror), cmocka_unit_test(test_arena), cmocka_unit_test(test_rng),
        cmocka_unit_test(test_strmap),   cmocka_unit_test(test_utf8),  cmocka_unit_test(test_config),
        cmocka_unit_test(test_log_level), cmocka_unit_test(test_sbuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
