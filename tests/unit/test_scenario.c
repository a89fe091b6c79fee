/* test_scenario.c: scenario documents (src/rank/scenario.c): a full one
 * parsed into every control, the defaults of an empty one, and invalid
 * ones refused with the JSON path (and column) of what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rank/scenario_int.h"

static int field(void *ctx, const char *name, size_t len, uint32_t *id, shelf__xv_type *type)
{
    (void)ctx;
    static const char *const names[] = {"kind", "category", "brand", "price", "available"};
    static const shelf__xv_type types[] = {SHELF__XV_STR, SHELF__XV_STR, SHELF__XV_STR, SHELF__XV_NUM, SHELF__XV_BOOL};
    for (uint32_t k = 0; k < 5; k++)
        if (strlen(names[k]) == len && !strncmp(names[k], name, len)) return *id = k, *type = types[k], 0;
    return SHELF_ENOTFOUND;
}

static int etype(void *ctx, const char *name, size_t len, uint32_t *id)
{
    (void)ctx;
    *id = 1;
    return len == 8 && !strncmp(name, "purchase", 8) ? 0 : SHELF_ENOTFOUND;
}

static const shelf__expr_schema schema = {NULL, field, etype};

static const char full[] =
    "{\"description\": \"home page\", \"kinds\": [\"product\", \"content\"],"
    " \"sources\": [{\"type\": \"model\", \"model\": \"transformer\", \"weight\": 1},"
    "   {\"type\": \"model\", \"model\": \"ease\", \"weight\": 0.5}, {\"type\": \"trending\", \"weight\": 0.2},"
    "   {\"type\": \"list\", \"items\": [\"a\", \"b\"]}],"
    " \"fusion\": \"rrf\", \"rrf_k\": 30,"
    " \"filter\": \"kind == 'product' and price <= ctx.max_price and not seen(purchase, 30d)\","
    " \"boosters\": [\"max(1, 2 - price / 100)\"], \"min_relevance\": 0.01,"
    " \"diversity\": {\"by\": \"category\", \"lambda\": 0.6}, \"caps\": [{\"by\": \"brand\", \"max\": 2}],"
    " \"long_tail\": {\"beta\": 0.3}, \"freshness\": {\"half_life\": \"14d\"},"
    " \"rotation\": {\"window\": 3600, \"penalty\": 0.8},"
    " \"promotions\": [{\"name\": \"spring\", \"items\": [\"p1\", \"p2\"], \"segment\": \"user.segment == 'vip'\","
    "   \"share\": 0.2, \"budget_per_day\": 10000}, {\"name\": \"shoes\", \"items\": [\"p3\"], \"categories\": [\"shoes\"],"
    "   \"boost\": 1.5, \"budget_per_day\": 500}],"
    " \"fallback\": [\"popular\", \"trending\"]}";

static void test_full(void **state)
{
    (void)state;
    shelf__scenario *s = NULL;
    shelf_err err = {0};
    int rc = shelf__scenario_parse("home", full, &schema, &s, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_string_equal(s->name, "home");
    assert_int_equal(s->n_kinds, 2);
    assert_string_equal(s->kinds[1], "content");
    assert_int_equal(s->n_src, 4);
    assert_int_equal(s->src[0].type, SHELF__SRC_MODEL);
    assert_string_equal(s->src[1].model, "ease");
    assert_float_equal(s->src[1].weight, 0.5, 1e-7);
    assert_int_equal(s->src[2].type, SHELF__SRC_TRENDING);
    assert_float_equal(s->src[3].weight, 1, 0);
    assert_int_equal(s->src[3].n_items, 2);
    assert_string_equal(s->src[3].items[1], "b");
    assert_int_equal(s->fusion, SHELF__FUSE_RRF);
    assert_float_equal(s->rrf_k, 30, 0);
    assert_non_null(s->filter);
    assert_int_equal(s->n_boost, 1);
    assert_float_equal(s->min_relevance, 0.01, 1e-7);
    assert_int_equal(s->diversity_by, SHELF__BY_CATEGORY);
    assert_float_equal(s->diversity_lambda, 0.6, 1e-7);
    assert_int_equal(s->n_caps, 1);
    assert_int_equal(s->caps[0].by, SHELF__BY_BRAND);
    assert_int_equal(s->caps[0].max, 2);
    assert_float_equal(s->long_tail_beta, 0.3, 1e-7);
    assert_int_equal(s->freshness_half_life_s, 14 * 86400);
    assert_int_equal(s->rotation_window_s, 3600);
    assert_float_equal(s->rotation_penalty, 0.8, 1e-7);
    assert_int_equal(s->n_promo, 2);
    assert_non_null(s->promo[0].segment);
    assert_float_equal(s->promo[0].share, 0.2, 1e-7);
    assert_float_equal(s->promo[0].boost, 0, 0);
    assert_int_equal(s->promo[0].budget_per_day, 10000);
    assert_null(s->promo[1].segment);
    assert_string_equal(s->promo[1].categories[0], "shoes");
    assert_float_equal(s->promo[1].boost, 1.5, 1e-7);
    assert_int_equal(s->fallback.n, 2);
    assert_int_equal(s->fallback.src[0], SHELF__FB_POPULAR);
    shelf__scenario_free(s);
}

static void test_defaults(void **state)
{
    (void)state;
    shelf__scenario *s = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf__scenario_parse("cart_2", "{}", &schema, &s, &err), 0);
    assert_int_equal(s->n_src, 1); /* the deployment's model */
    assert_int_equal(s->src[0].type, SHELF__SRC_MODEL);
    assert_string_equal(s->src[0].model, "");
    assert_int_equal(s->fusion, SHELF__FUSE_WEIGHTED);
    assert_null(s->filter);
    assert_true(isinf(s->min_relevance) && s->min_relevance < 0);
    assert_int_equal(s->diversity_by, SHELF__BY_NONE);
    assert_float_equal(s->long_tail_beta, 0, 0);
    assert_int_equal(s->n_promo, 0);
    assert_int_equal(s->fallback.n, 2);
    assert_int_equal(s->fallback.src[0], SHELF__FB_TRENDING);
    shelf__scenario_free(s);
}

/* json (as scenario "x") is refused with a message that starts with want */
static void refused(const char *json, const char *want)
{
    shelf__scenario *s = (shelf__scenario *)0x1;
    shelf_err err = {0};
    int rc = shelf__scenario_parse("x", json, &schema, &s, &err);
    if (rc != SHELF_EINVAL || strncmp(err.msg, want, strlen(want)))
        fail_msg("%s: rc %d, \"%s\", wanted \"%s...\"", json, rc, err.msg, want);
    assert_ptr_equal(s, (shelf__scenario *)0x1);
}

static void test_refused(void **state)
{
    (void)state;
    refused("{", "scenario: not JSON");
    refused("{} x", "scenario: not JSON");
    refused("[]", "scenario: must be an object");
    refused("{\"sorces\": []}", "scenario.sorces: unknown field");
    refused("{\"sources\": []}", "scenario.sources: must be an array of 1 to 8");
    refused("{\"sources\": [{\"type\": \"model\"}, {\"type\": \"magic\"}]}",
            "scenario.sources[1].type: must be one of model, similar, trending, popular, list, campaign, content");
    refused("{\"sources\": [{\"type\": \"model\", \"weight\": -1}]}", "scenario.sources[0].weight: must be between");
    refused("{\"sources\": [{\"type\": \"list\"}]}", "scenario.sources[0].items: a list source needs its items");
    refused("{\"sources\": [{\"type\": \"list\", \"items\": [\"a\", 3]}]}", "scenario.sources[0].items[1]: must be a non-empty string");
    refused("{\"sources\": [{\"type\": \"popular\", \"model\": \"ease\"}]}", "scenario.sources[0].model: only a source of type model");
    refused("{\"fusion\": \"sum\"}", "scenario.fusion: must be one of weighted, rrf");
    refused("{\"long_tail\": {\"beta\": 0.5, \"on\": \"logit\"}}", "scenario.long_tail.on: must be one of relevance, score");
    refused("{\"filter\": \"price <= 'x'\"}", "scenario.filter: column 7: compares a number");
    refused("{\"filter\": \"colour == 'red'\"}", "scenario.filter: column 1: unknown field 'colour'");
    refused("{\"boosters\": [\"2\", \"kind\"]}", "scenario.boosters[1]: column 1: a booster must be a number");
    refused("{\"diversity\": {\"by\": \"colour\"}}", "scenario.diversity.by: must be one of category, brand, embedding");
    refused("{\"diversity\": {\"by\": \"brand\", \"lambda\": 1.5}}", "scenario.diversity.lambda: must be between 0 and 1");
    refused("{\"caps\": [{\"by\": \"brand\", \"max\": 0}]}", "scenario.caps[0].max: must be between 1");
    refused("{\"caps\": [{\"by\": \"embedding\", \"max\": 2}]}", "scenario.caps[0].by: must be one of category, brand");
    refused("{\"freshness\": {\"half_life\": \"two weeks\"}}", "scenario.freshness.half_life: must be a duration");
    refused("{\"rotation\": {\"penalty\": 0.5}}", "scenario.rotation.window: is required");
    refused("{\"promotions\": [{\"name\": \"p\", \"items\": [\"a\"], \"boost\": 2, \"budget_per_day\": -5}]}",
            "scenario.promotions[0].budget_per_day: must be a whole number of impressions from 1");
    refused("{\"promotions\": [{\"name\": \"p\", \"items\": [\"a\"], \"budget_per_day\": 5}]}",
            "scenario.promotions[0]: needs exactly one of boost");
    refused("{\"promotions\": [{\"name\": \"p\", \"items\": [\"a\"], \"share\": 0.1, \"boost\": 2, \"budget_per_day\": 5}]}",
            "scenario.promotions[0]: needs exactly one of boost");
    refused("{\"promotions\": [{\"name\": \"p\", \"items\": [\"a\"], \"segment\": \"price > 3\", \"boost\": 2,"
            " \"budget_per_day\": 5}]}",
            "scenario.promotions[0].segment: column 1: unknown field 'price'");
    refused("{\"promotions\": [{\"name\": \"p\", \"items\": [\"a\"], \"boost\": 2, \"budget_per_day\": 5},"
            " {\"name\": \"p\", \"items\": [\"b\"], \"boost\": 2, \"budget_per_day\": 5}]}",
            "scenario.promotions[1]: names promotion 'p' twice");
    refused("{\"fallback\": [\"trending\", \"random\"]}", "scenario.fallback: fallback: unknown source 'random'");
    refused("{\"description\": 3}", "scenario.description: must be a string");
    shelf__scenario *s = NULL;
    shelf_err err = {0};
    assert_int_equal(shelf__scenario_parse("bad name", "{}", &schema, &s, &err), SHELF_EINVAL);
    assert_non_null(strstr(err.msg, "scenario name 'bad name'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
