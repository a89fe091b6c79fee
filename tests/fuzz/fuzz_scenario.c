/* fuzz_scenario.c: the ranking room's scenario documents and expression
 * language (src/rank/scenario.c, src/rank/expr.c). An input that starts
 * with '{' (after blanks) is a scenario document, parsed against the
 * ranking room's schema (shelf__rank_schema) as `shelf scenario check`
 * does; anything else is an expression, compiled as a condition and as a
 * number and, when it compiles, bound and evaluated over a few items of a
 * made-up catalogue. */
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rank/scenario_int.h"

static char *const type_names[] = {"view", "click", "cart", "purchase", "rating"};
#define N_TYPES 5u
#define N_ITEMS 6u

static const char *const kinds[] = {"product", "content", "campaign"};
static const char *const categories[] = {"Beauty/Skin Care", "shoes", "shoes/running", ""};

/* fields as shelf__rank_schema numbers them: kind, category, available, popularity */
static void item_value(void *ctx, uint32_t item, uint32_t field, shelf__xval *out)
{
    (void)ctx;
    switch (field) {
    case 0: *out = (shelf__xval){.t = SHELF__XV_STR, .str = kinds[item % 3]}; break;
    case 1:
        *out = item == N_ITEMS - 1 ? (shelf__xval){.t = SHELF__XV_NULL}
                                   : (shelf__xval){.t = SHELF__XV_STR, .str = categories[item % 4]};
        break;
    case 2: *out = (shelf__xval){.t = SHELF__XV_BOOL, .num = item % 2}; break;
    case 3: *out = (shelf__xval){.t = SHELF__XV_NUM, .num = item == 2 ? NAN : 10.0 * item - 5}; break;
    default: *out = (shelf__xval){.t = SHELF__XV_NULL}; break;
    }
}

static int seen(void *ctx, uint32_t item, uint32_t type, int64_t window_s)
{
    (void)ctx;
    return (item + type) % 3 == 0 && window_s >= 0;
}

/* ctx.max_price, ctx.want and user.segment have values; the rest are null */
static void lookup(void *ctx, int ns, const char *name, shelf__xval *out)
{
    (void)ctx;
    if (ns == 0 && !strcmp(name, "max_price")) *out = (shelf__xval){.t = SHELF__XV_NUM, .num = 40};
    else if (ns == 0 && !strcmp(name, "want")) *out = (shelf__xval){.t = SHELF__XV_STR, .str = "product"};
    else if (ns == 1 && !strcmp(name, "segment")) *out = (shelf__xval){.t = SHELF__XV_STR, .str = "vip"};
    else *out = (shelf__xval){.t = SHELF__XV_NULL};
}

static void expression(const char *text, const shelf__expr_schema *schema)
{
    static const shelf__expr_env env = {NULL, item_value, seen, lookup};
    for (int kind = SHELF__EXPR_CONDITION; kind <= SHELF__EXPR_NUMBER; kind++) {
        shelf__expr *e = NULL;
        shelf_err err = {0};
        if (shelf__expr_compile(text, (shelf__expr_kind)kind, schema, &e, &err)) {
            if (e || !err.msg[0]) fuzz_die("compile failed without a message or left *out set");
            continue;
        }
        size_t n_slots = shelf__expr_slots(e);
        shelf__xval *slots = calloc(n_slots ? n_slots : 1, sizeof *slots);
        if (!slots) fuzz_die("out of memory");
        shelf__expr_bind(e, &env, slots);
        for (uint32_t f = 0; f < 4; f++) (void)shelf__expr_uses_field(e, f);
        uint32_t items[N_ITEMS];
        uint8_t pass[N_ITEMS];
        double nums[N_ITEMS];
        for (uint32_t item = 0; item < N_ITEMS; item++) items[item] = N_ITEMS - 1 - item;
        if (shelf__expr_eval_many(e, &env, slots, items, N_ITEMS, pass, nums)) fuzz_die("eval_many: out of memory");
        for (uint32_t item = 0; item < N_ITEMS; item++) {
            double num = 0;
            int r = shelf__expr_eval(e, &env, slots, item, &num);
            if (r != 0 && r != 1) fuzz_die("eval gave %d", r);
            /* many at once: the same answer (numbers to the bit) */
            uint32_t k = N_ITEMS - 1 - item;
            if (pass[k] != r || (r && kind == SHELF__EXPR_NUMBER && memcmp(&nums[k], &num, sizeof num)))
                fuzz_die("eval_many differs from eval on item %u of '%s'", item, text);
        }
        free(slots);
        shelf__expr_free(e);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    shelf_log_set_level(SHELF_LOG_OFF);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    shelf__rank_env renv = {.type_names = type_names, .n_types = N_TYPES};
    shelf__expr_schema schema = shelf__rank_schema(&renv);
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p == '{') {
        shelf__scenario *s = NULL;
        shelf_err err = {0};
        if (!shelf__scenario_parse("fuzz", text, &schema, &s, &err)) {
            char buf[512];
            shelf__scenario_unapplied(s, buf, sizeof buf);
            shelf__scenario_free(s);
        } else if (s || !err.msg[0]) {
            fuzz_die("parse failed without a message or left *out set");
        }
    } else {
        expression(text, &schema);
    }
    free(text);
    return 0;
}
