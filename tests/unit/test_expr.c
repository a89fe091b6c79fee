/* test_expr.c: the scenario expression language (src/rank/expr.c) over a
 * small catalogue: values and operators, null handling, the request's
 * constants, seen(), the in-list and category subtrees, short-circuits,
 * boosters, and the errors (with their columns) that compiling reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rank/expr_int.h"

/* ---- four items: fields kind, category, brand, price (item 3 has none),
 * available; event types view, purchase -------------------------------------------- */
enum { F_KIND, F_CATEGORY, F_BRAND, F_PRICE, F_AVAILABLE, F_ANY };
static const char *const field_names[] = {"kind", "category", "brand", "price", "available", "attr.size"};
static const shelf__xv_type field_types[] = {SHELF__XV_STR, SHELF__XV_STR, SHELF__XV_STR,
                                             SHELF__XV_NUM, SHELF__XV_BOOL, SHELF__XV_ANY};
static const char *const kinds[] = {"product", "product", "article", "product"};
static const char *const cats[] = {"shoes", "shoes > running", "guides", "shoes-care"};
static const char *const brands[] = {"acme", "zoom", "acme", "acme"};
static const double prices[] = {50, 120, 0, NAN};
static const int avail[] = {1, 1, 1, 0};

static int schema_field(void *ctx, const char *name, size_t len, uint32_t *id, shelf__xv_type *type)
{
    (void)ctx;
    for (uint32_t k = 0; k < sizeof field_names / sizeof field_names[0]; k++)
        if (strlen(field_names[k]) == len && !strncmp(field_names[k], name, len)) {
            *id = k;
            *type = field_types[k];
            return 0;
        }
    return SHELF_ENOTFOUND;
}

static int schema_type(void *ctx, const char *name, size_t len, uint32_t *id)
{
    (void)ctx;
    if (len == 4 && !strncmp(name, "view", 4)) return *id = 0, 0;
    if (len == 8 && !strncmp(name, "purchase", 8)) return *id = 1, 0;
    return SHELF_ENOTFOUND;
}

static const shelf__expr_schema schema = {NULL, schema_field, schema_type};

static void item_value(void *ctx, uint32_t item, uint32_t field, shelf__xval *out)
{
    (void)ctx;
    switch (field) {
    case F_KIND: *out = (shelf__xval){.t = SHELF__XV_STR, .str = kinds[item]}; break;
    case F_CATEGORY: *out = (shelf__xval){.t = SHELF__XV_STR, .str = cats[item]}; break;
    case F_BRAND: *out = (shelf__xval){.t = SHELF__XV_STR, .str = brands[item]}; break;
    case F_PRICE:
        if (!isnan(prices[item])) *out = (shelf__xval){.t = SHELF__XV_NUM, .num = prices[item]};
        break;
    case F_AVAILABLE: *out = (shelf__xval){.t = SHELF__XV_BOOL, .num = avail[item]}; break;
    case F_ANY: /* item 1 has size "xl", item 2 has size 42 */
        if (item == 1) *out = (shelf__xval){.t = SHELF__XV_STR, .str = "xl"};
        if (item == 2) *out = (shelf__xval){.t = SHELF__XV_NUM, .num = 42};
        break;
    }
}

/* the shopper viewed item 0 an hour ago and bought item 1 40 days ago */
static int seen_count;
static int seen(void *ctx, uint32_t item, uint32_t type, int64_t window_s)
{
    (void)ctx;
    seen_count++;
    if (item == 0 && type == 0) return window_s == 0 || window_s >= 3600;
    if (item == 1 && type == 1) return window_s == 0 || window_s >= 40 * 86400;
    return 0;
}

/* ctx.max_price = 100, ctx.lang = "en", user.segment = "vip"; nothing else */
static int lookups;
static void lookup(void *ctx, int ns, const char *name, shelf__xval *out)
{
    (void)ctx;
    lookups++;
    if (ns == 0 && !strcmp(name, "max_price")) *out = (shelf__xval){.t = SHELF__XV_NUM, .num = 100};
    if (ns == 0 && !strcmp(name, "lang")) *out = (shelf__xval){.t = SHELF__XV_STR, .str = "en"};
    if (ns == 1 && !strcmp(name, "segment")) *out = (shelf__xval){.t = SHELF__XV_STR, .str = "vip"};
}

/* a gather of many items at once, as the ranking room gives shelf__expr_eval_many */
static void item_values(void *ctx, const uint32_t *items, uint32_t n, uint32_t field, shelf__xval *out)
{
    for (uint32_t k = 0; k < n; k++) item_value(ctx, items[k], field, &out[k]);
}

static const shelf__expr_env env = {NULL, item_value, seen, lookup, NULL};
static const shelf__expr_env env_gather = {NULL, item_value, seen, lookup, item_values};

/* shelf__expr_eval_many over 203 items (0..3 in a shuffled cycle: three
 * full runs of 64 lanes and a short one), with and without the gather,
 * gives what shelf__expr_eval gives item by item (numbers to the bit) */
static void many_matches_one(const shelf__expr *e, const shelf__xval *slots)
{
    enum { M = 203 };
    uint32_t items[M];
    uint8_t pass[M];
    double num[M];
    for (uint32_t k = 0; k < M; k++) items[k] = (k * 7 + k / 5) % 4;
    int saved = seen_count;
    for (int g = 0; g < 2; g++) {
        memset(num, 0, sizeof num); /* a condition writes no number */
        assert_int_equal(shelf__expr_eval_many(e, g ? &env_gather : &env, slots, items, M, pass, num), 0);
        for (uint32_t k = 0; k < M; k++) {
            double one = 0;
            int r = shelf__expr_eval(e, &env, slots, items[k], &one);
            assert_int_equal(pass[k], r);
            if (r && !isnan(one)) assert_memory_equal(&num[k], &one, sizeof one);
        }
    }
    seen_count = saved;
}

/* the items (bits 0..3) for which the condition holds */
static unsigned which(const char *text)
{
    shelf__expr *e = NULL;
    shelf_err err = {0};
    int rc = shelf__expr_compile(text, SHELF__EXPR_CONDITION, &schema, &e, &err);
    if (rc) fail_msg("%s: %s", text, err.msg);
    shelf__xval slots[8];
    assert_true(shelf__expr_slots(e) <= 8);
    shelf__expr_bind(e, &env, slots);
    unsigned bits = 0;
    for (uint32_t i = 0; i < 4; i++) bits |= (unsigned)shelf__expr_eval(e, &env, slots, i, NULL) << i;
    many_matches_one(e, slots);
    shelf__expr_free(e);
    return bits;
}

static void test_fields_and_comparisons(void **state)
{
    (void)state;
    assert_int_equal(which("kind == \"product\""), 0xb);
    assert_int_equal(which("kind != 'product'"), 0x4);
    assert_int_equal(which("price <= 100"), 0x5);   /* item 3 has no price: not <= anything */
    assert_int_equal(which("price > 40 and price < 130"), 0x3);
    assert_int_equal(which("available"), 0x7);
    assert_int_equal(which("not available"), 0x8);
    assert_int_equal(which("brand < \"b\""), 0xd); /* strings order bytewise */
    assert_int_equal(which("price * 2 + 10 >= 110"), 0x3);
    assert_int_equal(which("-price < -100"), 0x2);
    assert_int_equal(which("price / 0 > 0"), 0x0);  /* no value, not infinity */
    assert_int_equal(which("true"), 0xf);
    assert_int_equal(which("(kind == 'article' or price > 100) and available"), 0x6);
}

static void test_nulls(void **state)
{
    (void)state;
    assert_int_equal(which("price == null"), 0x8);
    assert_int_equal(which("price != null"), 0x7);
    assert_int_equal(which("exists(price)"), 0x7);
    assert_int_equal(which("not (price > 10)"), 0xc); /* only true is true: item 3's null is not > 10 */
    assert_int_equal(which("attr.size == 'xl'"), 0x2);
    assert_int_equal(which("attr.size == 42"), 0x4);  /* a field of varying type, checked when run */
    assert_int_equal(which("attr.size > 40"), 0x4);   /* a string is not ordered against a number */
    assert_int_equal(which("ctx.missing == null and user.none == null"), 0xf);
    assert_int_equal(which("ctx.missing > 1"), 0x0);
}

static void test_request_constants(void **state)
{
    (void)state;
    lookups = 0;
    assert_int_equal(which("price <= ctx.max_price"), 0x5);
    assert_int_equal(lookups, 1); /* once per request, not per item */
    lookups = 0;
    assert_int_equal(which("user.segment == 'vip' and ctx.lang == 'en' and price <= ctx.max_price"), 0x5);
    assert_int_equal(lookups, 3); /* one per name */
    lookups = 0;
    assert_int_equal(which("price <= ctx.max_price or price >= ctx.max_price"), 0x7);
    assert_int_equal(lookups, 1);
    assert_int_equal(which("user.segment == 'new'"), 0x0);
}

static void test_seen_lists_categories(void **state)
{
    (void)state;
    assert_int_equal(which("seen(view)"), 0x1);
    assert_int_equal(which("not seen(purchase, 30d)"), 0xf);   /* bought 40 days ago: outside 30 days */
    assert_int_equal(which("not seen(\"purchase\", 60d)"), 0xd);
    assert_int_equal(which("seen(view, 30m)"), 0x0);           /* an hour ago */
    assert_int_equal(which("seen(view, 7200)"), 0x1);          /* seconds */
    assert_int_equal(which("brand in ['zoom', 'other']"), 0x2);
    assert_int_equal(which("brand not in ['zoom']"), 0xd);
    assert_int_equal(which("price in [50, -3, 120]"), 0x3);
    assert_int_equal(which("category under 'shoes'"), 0x3);   /* not "shoes-care" */
    assert_int_equal(which("category under \"shoes > running\""), 0x2);
    assert_int_equal(which("kind == 'product' and price <= ctx.max_price and category under 'shoes' and "
                           "not seen(purchase, 30d) and available"),
                     0x1);
}

static void test_short_circuit(void **state)
{
    (void)state;
    seen_count = 0;
    assert_int_equal(which("kind == 'article' and seen(view)"), 0x0);
    assert_int_equal(seen_count, 1); /* only item 2 got past the left side */
    seen_count = 0;
    assert_int_equal(which("kind == 'product' or seen(view)"), 0xb);
    assert_int_equal(seen_count, 1);
}

static void test_booster(void **state)
{
    (void)state;
    shelf__expr *e = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf__expr_compile("1 + (brand == 'acme') * 0", SHELF__EXPR_NUMBER, &schema, &e, &err),
                     SHELF_EINVAL); /* a condition is not a number */
    assert_int_equal(shelf__expr_compile("max(1, log(price) - 3) * 2", SHELF__EXPR_NUMBER, &schema, &e, &err), 0);
    shelf__xval slots[1];
    shelf__expr_bind(e, &env, slots);
    double v;
    assert_int_equal(shelf__expr_eval(e, &env, slots, 1, &v), 1);
    assert_float_equal(v, 2 * (log(120.0) - 3), 1e-12);
    assert_int_equal(shelf__expr_eval(e, &env, slots, 2, &v), 0); /* log(0): no value */
    assert_true(isnan(v));
    assert_int_equal(shelf__expr_eval(e, &env, slots, 3, &v), 0); /* no price */
    many_matches_one(e, slots);
    shelf__expr_free(e);
}

/* many items at once: the right side of and/or runs only when the left
 * side leaves some lane undecided */
static void test_many_short_circuit(void **state)
{
    (void)state;
    shelf__expr *e = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf__expr_compile("kind == 'article' and seen(view)", SHELF__EXPR_CONDITION, &schema, &e, &err), 0);
    shelf__xval slots[1];
    shelf__expr_bind(e, &env, slots);
    uint32_t products[3] = {0, 1, 3}, all[4] = {0, 1, 2, 3};
    uint8_t pass[4] = {9, 9, 9, 9};
    seen_count = 0;
    assert_int_equal(shelf__expr_eval_many(e, &env_gather, slots, products, 3, pass, NULL), 0);
    assert_int_equal(seen_count, 0); /* no product is an article: seen() never asked */
    assert_true(!pass[0] && !pass[1] && !pass[2] && pass[3] == 9);
    assert_int_equal(shelf__expr_eval_many(e, &env_gather, slots, all, 4, pass, NULL), 0);
    assert_int_equal(seen_count, 4); /* item 2 is: the right side runs on every lane */
    assert_true(!pass[0] && !pass[1] && !pass[2] && !pass[3]);
    shelf__expr_free(e);
}

/* compiling text fails with a message that starts "column COL:" and holds what */
static void bad(const char *text, int col, const char *what)
{
    shelf__expr *e = (shelf__expr *)0x1;
    shelf_err err = {0};
    assert_int_equal(shelf__expr_compile(text, SHELF__EXPR_CONDITION, &schema, &e, &err), SHELF_EINVAL);
    assert_ptr_equal(e, (shelf__expr *)0x1); /* untouched */
    char head[32];
    snprintf(head, sizeof head, "column %d:", col);
    if (strncmp(err.msg, head, strlen(head)) || !strstr(err.msg, what))
        fail_msg("'%s': got \"%s\", wanted \"%s ... %s\"", text, err.msg, head, what);
}

static void test_errors(void **state)
{
    (void)state;
    bad("", 1, "empty");
    bad("kind == ", 9, "expected a value");
    bad("kind = 'x'", 6, "cannot read");
    bad("(price > 1", 11, "expected ')'");
    bad("colour == 'red'", 1, "unknown field 'colour'");
    bad("price > 1 and seen(bought)", 20, "unknown event type 'bought'");
    bad("seen(view, -1d)", 12, "window");
    bad("kind == 3", 6, "compares a string");
    bad("price + 'x' > 1", 7, "numbers on both sides");
    bad("price and available", 1, "'and' wants conditions");
    bad("price", 1, "a filter must be a condition");
    bad("price > 1 price", 11, "expected an operator or the end");
    bad("brand in ['a', 3]", 16, "not a string");
    bad("brand in [kind]", 11, "numbers, strings or booleans");
    bad("frobnicate(1)", 1, "unknown function");
    bad("price > 1.5h", 9, "cannot read");
    bad("price > 0x10", 9, "cannot read");
    bad("'open", 1, "cannot read");
    bad("available < true", 11, "only '==' and '!='");
    bad("price under 'x'", 7, "'under' wants a category path");
    /* hostile nesting is refused, not a stack overflow */
    char deep[400];
    memset(deep, '(', 200);
    snprintf(deep + 200, sizeof deep - 200, "true");
    bad(deep, 49, "nested too deep");
    memset(deep, '-', 300);
    snprintf(deep + 300, sizeof deep - 300, "1 > 0");
    bad(deep, 49, "nested too deep");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_comparisons),
        cmocka_unit_test(test_nulls),
        cmocka_unit_test(test_request_constants),
        cmocka_unit_test(test_seen_lists_categories),
        cmocka_unit_test(test_short_circuit),
        cmocka_unit_test(test_booster),
        cmocka_unit_test(test_many_short_circuit),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
