/* test_pacing.c: a promotion's budget paced over a simulated day. The
 * ranking room (shelf__rank with a scenario whose promotion takes 10 % of
 * the slots, a budget of 10,000 impressions a day) serves a day of
 * traffic shaped like a shop's (quiet nights, a lunch bump, an evening
 * peak; each hour's volume off the day before's by up to +-15 %), every
 * slate written to the served log of a store. The plan comes from the
 * day before's slates in the log; at 13:00 the ledger is thrown away and
 * rebuilt from the log, as a restarted server does. Checked: the day ends
 * with 95..100 % of the budget spent, each hour's spend is within 20 % of
 * its plan, and the restart kept the spend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rank/pacing_int.h"
#include "rank/rank_int.h"
#include "rank/scenario_int.h"
#include "shelf/store.h"
#include "store/meta_int.h"

#define N_ITEMS 20
#define BUDGET 10000
static uint8_t ok[N_ITEMS];
static uint16_t kind[N_ITEMS];
static uint32_t cat[N_ITEMS];
static char ids[N_ITEMS][8];
static char *ext[N_ITEMS];
static char *kinds[] = {"product"};

static void cat_read(void *ctx, shelf__catalogue *v)
{
    (void)ctx;
    *v = (shelf__catalogue){.n_items = N_ITEMS, .ok = ok, .kind = kind, .cat = cat, .ext = ext, .kinds = kinds, .n_kinds = 1};
}
static void cat_done(void *ctx) { (void)ctx; }
static void pop_scores(void *ctx, float *sc, uint32_t n)
{
    (void)ctx;
    for (uint32_t i = 0; i < n; i++) sc[i] = (float)(N_ITEMS - i);
}
static void fb_scores(void *ctx, float *sc, uint32_t n) { pop_scores(ctx, sc, n); }
static uint32_t find(void *ctx, const char *id)
{
    (void)ctx;
    for (uint32_t i = 0; i < N_ITEMS; i++)
        if (!strcmp(ext[i], id)) return i;
    return SHELF_NONE;
}

/* a shop's day: requests per hour (relative) */
static double traffic(int h)
{
    return 0.15 + 1.2 * exp(-(h - 12.5) * (h - 12.5) / 4.0) + 2.5 * exp(-(h - 20.0) * (h - 20.0) / 6.0) +
           (h >= 7 && h <= 22 ? 0.5 : 0.0);
}

/* the day's requests in hour h: total x the hour's share, off by up to +-15 % (a fixed pattern) */
static uint32_t requests(int h, double total, int noisy)
{
    double sum = 0;
    for (int k = 0; k < 24; k++) sum += traffic(k);
    double off = noisy ? 0.15 * sin(1.7 * h + 0.3) : 0;
    return (uint32_t)(total * traffic(h) / sum * (1 + off));
}

static shelf_store *st;
static shelf__scenario *scn;
static shelf__seen seen; /* nothing hidden */

static void log_slate(const shelf_slate *sl) { assert_int_equal(shelf_store_log_slate(st, sl), 0); }

/* a fresh ledger as a server builds it at start: yesterday's curve, today's spend from the log */
static shelf__ledger *ledger_from_log(int64_t day0)
{
    shelf__ledger *l = shelf__ledger_new();
    double hourly[24];
    assert_int_equal(shelf__store_served_hourly(st, "home", day0 - SHELF__DAY, day0, hourly), 0);
    shelf__ledger_curve(l, "home", hourly, day0 / SHELF__DAY);
    int64_t spent = 0;
    assert_int_equal(shelf__store_promo_spent(st, "home", "promotion:spring", day0, &spent), 0);
    shelf__ledger_seed(l, "home", "spring", day0 / SHELF__DAY, spent);
    return l;
}

static void test_plan(void **state)
{
    (void)state;
    double flat[24] = {0}, shaped[24];
    assert_true(fabs(shelf__pace_plan(flat, 43200) - 0.5) < 1e-12); /* no history: even */
    for (int h = 0; h < 24; h++) shaped[h] = h < 12 ? 10 : 30;   /* 120 + 360 slates */
    assert_true(fabs(shelf__pace_plan(shaped, 12 * 3600) - 0.25) < 1e-12);
    assert_true(fabs(shelf__pace_plan(shaped, 12 * 3600 + 1800) - (120 + 15) / 480.0) < 1e-12);
    assert_true(shelf__pace_plan(shaped, 0) == 0 && shelf__pace_plan(shaped, SHELF__DAY) == 1);
}

static void test_simulated_day(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        ok[i] = 1;
        cat[i] = SHELF_NONE;
        snprintf(ids[i], sizeof ids[i], "i%u", i);
        ext[i] = ids[i];
    }
    shelf_err err = {0};
    assert_int_equal(shelf_store_open(":memory:", SHELF_STORE_CREATE, &st, &err), 0);
    assert_int_equal(shelf_store_begin(st), 0);
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        uint32_t idx;
        assert_int_equal(shelf_store_item_idx(st, ids[i], strlen(ids[i]), 1, &idx, NULL), 0);
    }
    assert_int_equal(shelf_store_commit(st), 0);
    shelf__rank_env env = {.catalogue_read = cat_read, .catalogue_done = cat_done, .pop_scores = pop_scores,
                           .fallback_scores = fb_scores, .item_index = find, .seen = &seen};
    shelf__expr_schema schema = shelf__rank_schema(&env);
    const char *doc = "{\"promotions\": [{\"name\": \"spring\", \"items\": [\"i15\", \"i17\", \"i19\"], \"share\": 0.1,"
                      " \"budget_per_day\": 10000}]}";
    assert_int_equal(shelf__scenario_parse("home", doc, &schema, &scn, &err), 0);

    const int64_t day0 = 20000LL * SHELF__DAY; /* a Tuesday in 2024 */
    shelf_slate sl = {0};
    /* yesterday: 30,000 slates of the scenario, no promotion yet */
    assert_int_equal(shelf_store_begin(st), 0);
    for (int h = 0; h < 24; h++) {
        uint32_t n = requests(h, 30000, 0);
        for (uint32_t r = 0; r < n; r++) {
            shelf_slate_reserve(&sl, 1);
            snprintf(sl.rec_id, sizeof sl.rec_id, "y%02d%06u", h, r);
            snprintf(sl.scenario, sizeof sl.scenario, "home");
            sl.ts = day0 - SHELF__DAY + h * 3600 + (int64_t)r * 3600 / n;
            sl.user = SHELF_NONE;
            sl.n = 0;
            log_slate(&sl);
        }
    }
    assert_int_equal(shelf_store_commit(st), 0);

    /* today: 40,000 requests, each slate of 10 logged; the restart at 13:00 */
    env.ledger = ledger_from_log(day0);
    double spent_h[24] = {0};
    int64_t before_restart = 0;
    for (int h = 0; h < 24; h++) {
        if (h == 13) {
            double p;
            shelf__ledger_state(env.ledger, "home", "spring", BUDGET, day0 + h * 3600, &before_restart, &p);
            shelf__ledger_free(env.ledger);
            env.ledger = ledger_from_log(day0);
            int64_t after;
            shelf__ledger_state(env.ledger, "home", "spring", BUDGET, day0 + h * 3600, &after, &p);
            assert_int_equal(after, before_restart); /* the log kept it */
            assert_true(before_restart > 0);
        }
        uint32_t n = requests(h, 40000, 1);
        assert_int_equal(shelf_store_begin(st), 0);
        for (uint32_t r = 0; r < n; r++) {
            shelf__rank_req rq = {.mode = SHELF__RANK_SHOPPER, .user = SHELF_NONE, .anchor = SHELF_NONE, .n = 10,
                                  .now = day0 + h * 3600 + (int64_t)r * 3600 / n, .scenario = scn};
            assert_int_equal(shelf__rank(&env, &rq, &sl, &err), 0);
            snprintf(sl.scenario, sizeof sl.scenario, "home");
            for (uint32_t k = 0; k < sl.n; k++) spent_h[h] += !strcmp(sl.items[k].source, "promotion:spring");
            log_slate(&sl);
        }
        assert_int_equal(shelf_store_commit(st), 0);
    }
    /* the plan of each hour from yesterday's curve */
    double hourly[24], total = 0;
    assert_int_equal(shelf__store_served_hourly(st, "home", day0 - SHELF__DAY, day0, hourly), 0);
    for (int h = 0; h < 24; h++) {
        double plan = BUDGET * (shelf__pace_plan(hourly, (h + 1) * 3600) - shelf__pace_plan(hourly, h * 3600));
        total += spent_h[h];
        if (fabs(spent_h[h] - plan) > 0.2 * plan) fail_msg("hour %d: spent %.0f, plan %.1f", h, spent_h[h], plan);
    }
    print_message("spent %.0f of %d; before the restart %lld\n", total, BUDGET, (long long)before_restart);
    assert_true(total >= 0.95 * BUDGET && total <= BUDGET);
    int64_t logged = 0;
    assert_int_equal(shelf__store_promo_spent(st, "home", "promotion:spring", day0, &logged), 0);
    assert_int_equal(logged, (int64_t)total);
    shelf_slate_free(&sl);
    shelf__ledger_free(env.ledger);
    shelf__scenario_free(scn);
    shelf_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_plan), cmocka_unit_test(test_simulated_day)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
