/* test_routes.c: the server's route table (src/serve/http.c) against the
 * API description it serves (src/serve/openapi.yaml): every route is
 * described under its path and method, every described operation has a
 * route, metric names are distinct, scopes are valid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "serve/serve_int.h"

extern const char shelf__openapi_yaml[];
extern const size_t shelf__openapi_yaml_len;

#define MAX_OPS 64
typedef struct {
    char path[128];
    char method[8]; /* upper case */
} op;

/* the operations of the YAML: "  /path:" lines, then "    get:" lines */
static int described(op *ops)
{
    int n = 0;
    char path[128] = "";
    const char *p = shelf__openapi_yaml, *end = p + shelf__openapi_yaml_len;
    int in_paths = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(len < 255 ? len : 255), p);
        if (!strcmp(line, "paths:")) in_paths = 1;
        else if (line[0] && line[0] != ' ' && line[0] != '#') in_paths = 0;
        if (in_paths && !strncmp(line, "  /", 3) && line[strlen(line) - 1] == ':') {
            snprintf(path, sizeof path, "%.*s", (int)(strlen(line) - 3), line + 2);
        } else if (in_paths && path[0] && !strncmp(line, "    ", 4) && line[4] != ' ') {
            static const char *const m[] = {"get:", "put:", "patch:", "post:", "delete:"};
            for (int k = 0; k < 5; k++)
                if (!strcmp(line + 4, m[k]) && n < MAX_OPS) {
                    snprintf(ops[n].path, sizeof ops[n].path, "%s", path);
                    for (size_t c = 0; c + 1 < strlen(m[k]); c++) ops[n].method[c] = (char)toupper(m[k][c]);
                    ops[n].method[strlen(m[k]) - 1] = '\0';
                    n++;
                }
        }
        p += len + 1;
    }
    return n;
}

static void test_table_is_the_description(void **state)
{
    (void)state;
    op ops[MAX_OPS];
    int n = described(ops);
    assert_int_equal(n, SRV_N_ROUTES); /* no operation without a route */
    for (int i = 0; i < SRV_N_ROUTES; i++) {
        int found = 0;
        for (int k = 0; k < n; k++)
            found |= !strcmp(ops[k].path, srv_routes[i].path) && !strcmp(ops[k].method, srv_routes[i].method);
        if (!found) fprintf(stderr, "route %s %s is not in openapi.yaml\n", srv_routes[i].method, srv_routes[i].path);
        assert_true(found);
    }
}

static void test_table_is_sound(void **state)
{
    (void)state;
    for (int i = 0; i < SRV_N_ROUTES; i++) {
        assert_non_null(srv_routes[i].fn);
        assert_true(srv_routes[i].scope >= 0 && srv_routes[i].scope <= SHELF_SCOPE_ADMIN);
        assert_true(srv_routes[i].path[0] == '/');
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(srv_routes[i].name, srv_routes[j].name);
            assert_false(!strcmp(srv_routes[i].path, srv_routes[j].path) &&
                         !strcmp(srv_routes[i].method, srv_routes[j].method));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table_is_the_description),
                                       cmocka_unit_test(test_table_is_sound)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
