/* test_check.c: the checks of values and texts on their way in
 * (src/core/check.c): a float field from a double, a text from bytes (NUL,
 * strict UTF-8, the offset of the first fault past the ASCII fast path), the
 * \u0000 escapes of JSON text and the JSON path of a bad string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/check_int.h"
#include "shelf/core.h"

static void test_float(void **state)
{
    (void)state;
    char why[96];
    float f = -1;
    assert_int_equal(shelf__check_float(2.5, &f, why, sizeof why), 0);
    assert_true(f == 2.5f);
    assert_int_equal(shelf__check_float(FLT_MAX, &f, why, sizeof why), 0);
    assert_true(f == FLT_MAX);
    assert_int_equal(shelf__check_float(-FLT_MAX, &f, why, sizeof why), 0);
    assert_int_equal(shelf__check_float(1e-50, &f, why, sizeof why), 0); /* underflow: 0, not refused */
    f = 7;
    assert_int_equal(shelf__check_float(1e308, &f, why, sizeof why), SHELF_ERANGE);
    assert_non_null(strstr(why, "1e+308 is beyond the range of a float"));
    assert_true(f == 7); /* written only on success */
    assert_int_equal(shelf__check_float(-3.5e38, &f, why, sizeof why), SHELF_ERANGE);
    assert_int_equal(shelf__check_float((double)FLT_MAX * 1.0000001, &f, why, sizeof why), SHELF_ERANGE);
    assert_int_equal(shelf__check_float(INFINITY, &f, why, sizeof why), SHELF_ERANGE);
    assert_string_equal(why, "not a finite number");
    assert_int_equal(shelf__check_float(-INFINITY, &f, why, sizeof why), SHELF_ERANGE);
    assert_int_equal(shelf__check_float(NAN, &f, why, sizeof why), SHELF_ERANGE);
}

static void expect_text(const char *s, size_t len, int fault, size_t at)
{
    size_t bad = 9999;
    int got = shelf__check_text(s, len, &bad);
    if (got != fault || (fault && bad != at))
        fprintf(stderr, "text of %zu bytes: fault %d at %zu, expected %d at %zu\n", len, got, bad, fault, at);
    assert_int_equal(got, fault);
    if (fault) assert_int_equal(bad, at);
}

static void test_text(void **state)
{
    (void)state;
    expect_text("", 0, SHELF__TEXT_OK, 0);
    expect_text("plain ascii id 12345", 20, SHELF__TEXT_OK, 0);
    expect_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ok", 17, SHELF__TEXT_OK, 0);
    expect_text("ab\0cd", 5, SHELF__TEXT_NUL, 2);
    expect_text("\0", 1, SHELF__TEXT_NUL, 0);
    expect_text("ab\xff", 3, SHELF__TEXT_UTF8, 2);
    expect_text("ab\xc0\x80", 4, SHELF__TEXT_UTF8, 2);         /* overlong NUL */
    expect_text("x\xe0\x80\xaf", 4, SHELF__TEXT_UTF8, 1);      /* overlong '/' */
    expect_text("x\xed\xa0\x80", 4, SHELF__TEXT_UTF8, 1);      /* a surrogate, U+D800 */
    expect_text("x\xf4\x90\x80\x80", 5, SHELF__TEXT_UTF8, 1);  /* past U+10FFFF */
    expect_text("x\xe2\x82", 3, SHELF__TEXT_UTF8, 1);          /* truncated at the end */
    expect_text("x\xe2\x82y", 4, SHELF__TEXT_UTF8, 1);         /* truncated before more */
    expect_text("x\x80", 2, SHELF__TEXT_UTF8, 1);              /* a lone continuation */
    /* past the 8-byte ASCII steps, and after a valid non-ASCII character */
    expect_text("0123456789abcdef0123\xff", 21, SHELF__TEXT_UTF8, 20);
    expect_text("0123456789\xc3\xa9" "0123456789abcdefgh\xfe", 31, SHELF__TEXT_UTF8, 30);
    expect_text("0123456789abcdef0123\0", 21, SHELF__TEXT_NUL, 20);
    /* the first fault wins: invalid UTF-8 before a NUL, a NUL before it */
    expect_text("a\xff" "b\0", 4, SHELF__TEXT_UTF8, 1);
    expect_text("a\0b\xff", 4, SHELF__TEXT_NUL, 1);
    char why[96];
    assert_int_equal(shelf__check_text_why("ok", 2, why, sizeof why), 0);
    assert_int_equal(shelf__check_text_why("ab\0cd", 5, why, sizeof why), SHELF_EFORMAT);
    assert_string_equal(why, "NUL byte at byte offset 2");
    assert_int_equal(shelf__check_text_why("abc\xff", 4, why, sizeof why), SHELF_EFORMAT);
    assert_string_equal(why, "invalid UTF-8 at byte offset 3 (0xff)");
}

static void expect_marked(const char *in, const char *out, size_t marks)
{
    char buf[128];
    size_t len = strlen(in);
    memcpy(buf, in, len + 1);
    assert_int_equal(shelf__json_mark_nul(buf, &len), marks);
    assert_int_equal(len, strlen(out));
    assert_memory_equal(buf, out, len);
}

static void test_mark_nul(void **state)
{
    (void)state;
    expect_marked("{\"a\":\"b\"}", "{\"a\":\"b\"}", 0);
    expect_marked("{\"a\":\"x\\u0000y\"}", "{\"a\":\"x\xc0\x80y\"}", 1);
    expect_marked("\"\\u0000\\u0000\"", "\"\xc0\x80\xc0\x80\"", 2);
    expect_marked("\"\\n\\u0000\"", "\"\\n\xc0\x80\"", 1);
    /* an escaped backslash, then the text u0000: no NUL */
    expect_marked("\"\\\\u0000\"", "\"\\\\u0000\"", 0);
    /* an escaped backslash, then a real escape */
    expect_marked("\"\\\\\\u0000\"", "\"\\\\\xc0\x80\"", 1);
    expect_marked("\"\\u0001\\u00001\"", "\"\\u0001\xc0\x80" "1\"", 1);
    expect_marked("\"\\u000\"", "\"\\u000\"", 0); /* cut short: cJSON refuses it */
    expect_marked("\"abc\\", "\"abc\\", 0);
}

/* parses text (after marking), then expects the check's path and why */
static void expect_json(const char *text, const char *path, const char *why_part)
{
    char buf[256], p[160], w[120];
    size_t len = strlen(text);
    memcpy(buf, text, len + 1);
    shelf__json_mark_nul(buf, &len);
    cJSON *j = cJSON_ParseWithLength(buf, len);
    assert_non_null(j);
    int rc = shelf__check_json(j, p, sizeof p, w, sizeof w);
    cJSON_Delete(j);
    if (!path) {
        if (rc) fprintf(stderr, "%s: refused at '%s': %s\n", text, p, w);
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, SHELF_EFORMAT);
    assert_string_equal(p, path);
    if (!strstr(w, why_part)) fprintf(stderr, "%s: why '%s' lacks '%s'\n", text, w, why_part);
    assert_non_null(strstr(w, why_part));
}

/* URL decoding: %XX in place, %00 as the mark C0 80 (named "%00"), the
 * rest as it was */
static void test_url_unescape(void **state)
{
    (void)state;
    char a[] = "ab%00cd", b[] = "%41%2f%2Fx%zz%4", c[] = "%e2%82%ac", d[] = "%C0%80";
    assert_int_equal(shelf__url_unescape(a), 6);
    assert_memory_equal(a, "ab\xC0\x80" "cd", 7);
    char why[96] = "";
    assert_int_equal(shelf__check_url_text_why(a, 6, why, sizeof why), SHELF_EFORMAT);
    assert_string_equal(why, "NUL character (%00) at byte offset 2");
    assert_int_equal(shelf__url_unescape(b), 9);
    assert_string_equal(b, "A//x%zz%4"); /* not hex: kept */
    assert_int_equal(shelf__url_unescape(c), 3);
    assert_string_equal(c, "\xE2\x82\xAC");
    assert_int_equal(shelf__check_url_text_why(c, 3, why, sizeof why), 0);
    assert_int_equal(shelf__url_unescape(d), 2); /* an overlong NUL sent as such reads the same */
    assert_int_equal(shelf__check_url_text_why(d, 2, why, sizeof why), SHELF_EFORMAT);
}

static void test_json(void **state)
{
    (void)state;
    expect_json("{\"user\":\"u1\",\"n\":[1,true,null,{\"k\":\"caf\\u00e9\"}]}", NULL, NULL);
    expect_json("{\"t\":\"\\\\u0000 is text\"}", NULL, NULL);
    expect_json("{\"user\":\"ab\\u0000cd\"}", ".user", "NUL character (\\u0000) at byte offset 2");
    expect_json("{\"a\":{\"b\":[\"ok\",\"\\u0000\"]}}", ".a.b[1]", "at byte offset 0");
    expect_json("[\"x\",{\"k\\u0000\":1}]", "[1]", "member name: NUL character (\\u0000) at byte offset 1");
    expect_json("\"\\u0000\"", "", "NUL character");
    expect_json("{\"a\":\"ok\",\"b\":\"\xff\"}", ".b", "invalid UTF-8 at byte offset 0 (0xff)");
    expect_json("{\"a\":\"\xc3\xa9\xed\xa0\x80\"}", ".a", "invalid UTF-8 at byte offset 2 (0xed)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_mark_nul),
        cmocka_unit_test(test_url_unescape),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
