/* test_config.c: the configuration table joined from the common rows and
 * each model's rows, durations, and --help per model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shelf/shelf.h"
#include "core/config_int.h"

#define DAY 86400.0

static void test_duration_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double seconds;
    } good[] = {{"0", 0},       {"90", 90},     {"90s", 90},        {"15m", 900},   {"12h", 43200},
                {"7d", 7 * DAY}, {"1.5h", 5400}, {"0.5d", 0.5 * DAY}, {"36500d", 36500 * DAY}, {".5m", 30}};
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        double x = -1;
        assert_int_equal(shelf__duration_parse(good[k].text, &x), 0);
        assert_true(x == good[k].seconds);
    }
    static const char *bad[] = {"", "d", "7x", "7dd", "7 d", " 7d", "-1s", "+1s", "nan", "inf", "1e", "7D", "7w"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        double x = -1;
        assert_int_equal(shelf__duration_parse(bad[k], &x), SHELF_EINVAL);
        assert_true(x == -1); /* untouched on error */
    }
}

/* Both half-lives are one DURATION spelling: serve's and the pop model's
 * rows; errors name the flag and the value. */
static void test_duration_options(void **state)
{
    (void)state;
    shelf_config *c = shelf_config_new();
    assert_non_null(c);
    char **pos;
    int np, help;
    shelf_err e = {0};
    char *serve[] = {"--pop-half-life", "2d"};
    assert_int_equal(shelf_config_parse_args(c, "serve", 2, serve, &pos, &np, &help, &e), 0);
    free(pos);
    assert_true(shelf_config_double(c, "pop-half-life") == 2 * DAY);
    shelf_config_free(c);

    c = shelf_config_new();
    assert_true(shelf_config_double(c, "temporal-test") == 7 * DAY); /* default "7d" */
    char *train[] = {"--pop-half-life=90", "--temporal-test", "36h"};
    assert_int_equal(shelf_config_parse_args(c, "eval", 3, train, &pos, &np, &help, &e), 0);
    free(pos);
    assert_true(shelf_config_double(c, "pop-half-life") == 90); /* a bare number is seconds */
    assert_true(shelf_config_double(c, "temporal-test") == 36 * 3600);

    char *badval[] = {"--pop-half-life", "7days"};
    assert_int_equal(shelf_config_parse_args(c, "train", 2, badval, &pos, &np, &help, &e), SHELF_EINVAL);
    assert_non_null(strstr(e.msg, "--pop-half-life"));
    assert_non_null(strstr(e.msg, "'7days'"));
    char *range[] = {"--pop-half-life", "36501d"};
    assert_int_equal(shelf_config_parse_args(c, "train", 2, range, &pos, &np, &help, &e), SHELF_ERANGE);
    assert_non_null(strstr(e.msg, "--pop-half-life"));
    assert_non_null(strstr(e.msg, "36501d"));
    assert_non_null(strstr(e.msg, "36500d")); /* the bound in the same unit */
    char *old[] = {"--pop-halflife", "30"};     /* the old spelling (days) is gone */
    assert_int_equal(shelf_config_parse_args(c, "train", 2, old, &pos, &np, &help, &e), SHELF_EINVAL);
    assert_true(shelf_config_double(c, "pop-half-life") == 90); /* failed sets change nothing */
    shelf_config_free(c);

    const shelf_cfg_def *d = shelf_config_find("pop-half-life");
    assert_non_null(d);
    assert_int_equal(d->type, SHELF_CFG_DURATION);
}

/* Every model's rows are in the table, found by name, and each one is a
 * row of that model only. */
static void test_model_rows(void **state)
{
    (void)state;
    size_t n_models, n_table, total = 0;
    const char *const *names = shelf_model_names(&n_models);
    const shelf_cfg_def *t = shelf_config_table(&n_table);
    shelf_config *c = shelf_config_new();
    for (size_t m = 0; m < n_models; m++) {
        size_t n;
        const shelf_cfg_def *rows = shelf_model_options(names[m], &n);
        assert_non_null(rows);
        assert_true(n > 0);
        assert_true(rows >= t && rows + n <= t + n_table); /* views of the one table */
        total += n;
        for (size_t i = 0; i < n; i++) {
            const shelf_cfg_def *d = shelf_config_find(rows[i].name);
            assert_non_null(d);
            assert_string_equal(d->name, rows[i].name);
            assert_non_null(rows[i].unit);
            assert_non_null(strstr(rows[i].scope, "train"));
            /* settable from the command line of train */
            char flag[96];
            snprintf(flag, sizeof flag, "--%s", rows[i].name);
            char *argv[] = {flag, "1"};
            char **pos;
            int np, help;
            shelf_err e = {0};
            int rc = shelf_config_parse_args(c, "train", rows[i].type == SHELF_CFG_BOOL ? 1 : 2, argv, &pos, &np,
                                             &help, &e);
            if (rc == 0) free(pos);
            else assert_null(strstr(e.msg, "unknown option")); /* a bad value for an enum, not a missing row */
        }
    }
    assert_true(total < n_table); /* the common rows come first */
    size_t n;
    assert_null(shelf_model_options("nope", &n));
    assert_int_equal(n, 0);
    shelf_config_free(c);
}

static char *help_text(const char *command, const char *models)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    shelf_config_print_help(f, command, models);
    fclose(f);
    return buf;
}

/* --help: the common options; with a model, its rows and no other model's;
 * "*" every row. Units, defaults and bounds are printed. */
static void test_help_per_model(void **state)
{
    (void)state;
    char *plain = help_text("train", NULL);
    assert_non_null(strstr(plain, "--store VALUE"));
    assert_null(strstr(plain, "--als-factors"));
    assert_null(strstr(plain, "--bpr-lr"));
    assert_null(strstr(plain, "--port")); /* serve's */

    char *als = help_text("train", "als");
    assert_non_null(strstr(als, "--store VALUE"));
    assert_non_null(strstr(als, "--als-factors N"));
    assert_non_null(strstr(als, "(default 64; 1..4096)"));
    assert_non_null(strstr(als, "--als-fold-new"));
    assert_null(strstr(als, "--bpr-"));
    assert_null(strstr(als, "--tf-"));
    assert_null(strstr(als, "--pop-half-life"));

    char *two = help_text("eval", "pop,ease");
    assert_non_null(strstr(two, "--pop-half-life DURATION"));
    assert_non_null(strstr(two, "(default 0; 0s..36500d)"));
    assert_non_null(strstr(two, "--ease-max-mb N"));
    assert_non_null(strstr(two, "(MiB; default 8192;"));
    assert_non_null(strstr(two, "DURATION: a number with unit s, m, h or d"));
    assert_null(strstr(two, "--als-"));

    char *all = help_text("train", "*");
    size_t n_models;
    const char *const *names = shelf_model_names(&n_models);
    for (size_t m = 0; m < n_models; m++) {
        size_t n;
        const shelf_cfg_def *rows = shelf_model_options(names[m], &n);
        for (size_t i = 0; i < n; i++) {
            char flag[96];
            snprintf(flag, sizeof flag, "--%s ", rows[i].name);
            assert_non_null(strstr(all, flag));
        }
    }
    char *serve = help_text("serve", NULL);
    assert_non_null(strstr(serve, "--pop-half-life DURATION"));
    assert_non_null(strstr(serve, "(default 7d; 1s..36500d)"));
    assert_non_null(strstr(serve, "--session-memory N"));
    assert_non_null(strstr(serve, "(MiB; default 1024;"));
    assert_non_null(strstr(serve, "(seconds; default 30; 1..86400)"));
    free(plain);
    free(als);
    free(two);
    free(all);
    free(serve);
}

static void test_help_all_flag(void **state)
{
    (void)state;
    shelf_config *c = shelf_config_new();
    char **pos;
    int np, help;
    shelf_err e = {0};
    char *a[] = {"--help"}, *b[] = {"--help-all"}, *both[] = {"--help-all", "-h"}, *none[] = {"x"};
    assert_int_equal(shelf_config_parse_args(c, "train", 1, a, &pos, &np, &help, &e), 0);
    assert_int_equal(help, 1);
    free(pos);
    assert_int_equal(shelf_config_parse_args(c, "train", 1, b, &pos, &np, &help, &e), 0);
    assert_int_equal(help, 2);
    free(pos);
    assert_int_equal(shelf_config_parse_args(c, "train", 2, both, &pos, &np, &help, &e), 0);
    assert_int_equal(help, 2);
    free(pos);
    assert_int_equal(shelf_config_parse_args(c, "train", 1, none, &pos, &np, &help, &e), 0);
    assert_int_equal(help, 0);
    free(pos);
    shelf_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse), cmocka_unit_test(test_duration_options),
        cmocka_unit_test(test_model_rows),     cmocka_unit_test(test_help_per_model),
        cmocka_unit_test(test_help_all_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
