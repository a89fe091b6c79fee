/* expr.c: the expression language of scenarios (expr_int.h,
 * docs/expressions.md): a recursive-descent compiler straight to postfix
 * code for a small stack machine, types checked where they are known, and
 * the evaluator that runs per candidate item. */
#include "rank/expr_int.h"
#include "rank/rank_int.h" /* shelf__cat_under, shelf__parse_duration */

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64  /* value stack of the machine */
#define MAX_NEST 48   /* parentheses and unary chains while parsing */
#define MAX_CODE 4096 /* instructions */

typedef enum {
    X_NUM, X_STR, X_BOOL, X_NULL, X_FIELD, X_SLOT, X_SEEN,
    X_EQ, X_NE, X_LT, X_LE, X_GT, X_GE, X_UNDER, X_IN,
    X_ADD, X_SUB, X_MUL, X_DIV, X_NEG, X_NOT,
    X_AND, X_OR, X_TRUTH, X_LOG, X_MIN, X_MAX, X_EXISTS
} xop;

typedef struct xins {
    uint8_t op;
    uint32_t a;  /* constant, string, field, slot, list start, jump target, event type */
    uint32_t n;  /* X_IN: list length */
    double d;    /* X_NUM: the number; X_SEEN: the window in seconds */
} xins;

typedef struct xslot {
    int ns; /* 0 ctx, 1 user */
    char *name;
} xslot;

struct shelf__expr {
    shelf__expr_kind kind;
    xins *code;
    uint32_t n_code, cap_code;
    char **strs; /* string constants */
    uint32_t n_strs, cap_strs;
    shelf__xval *list; /* the constants of every `in [...]` list */
    uint32_t n_list, cap_list;
    xslot *slots;
    uint32_t n_slots, cap_slots;
    uint32_t depth;   /* the deepest the value stack goes */
    uint32_t n_logic; /* and/or instructions */
};

/* ---- lexer ---------------------------------------------------------------------------- */

typedef enum {
    T_END, T_NUM, T_STR, T_IDENT, T_LP, T_RP, T_COMMA, T_LB, T_RB,
    T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_BAD
} tok_t;

typedef struct tok {
    tok_t t;
    size_t at, len; /* where in the text */
    double num;
} tok;

typedef struct comp {
    const char *s;
    size_t pos;
    tok cur;
    shelf__expr *e;
    const shelf__expr_schema *schema;
    int depth, max_depth, nest;
    shelf_err *err;
    int rc;
} comp;

static int fail(comp *c, size_t at, const char *fmt, const char *arg)
{
    if (c->rc) return c->rc;
    char what[200];
    snprintf(what, sizeof what, fmt, arg ? arg : "");
    c->rc = shelf_err_set(c->err, SHELF_EINVAL, "column %zu: %s", at + 1, what);
    return c->rc;
}

static int ident_char(int ch) { return isalnum(ch) || ch == '_'; }

/* the current token's text, quoted for a message */
static const char *tok_text(const comp *c, char *buf, size_t cap)
{
    if (c->cur.t == T_END) return "the end";
    size_t n = c->cur.len < cap - 3 ? c->cur.len : cap - 3;
    snprintf(buf, cap, "'%.*s'", (int)n, c->s + c->cur.at);
    return buf;
}

static void lex_number(comp *c)
{
    const char *s = c->s;
    size_t p = c->pos;
    char *end;
    if (s[p] == '0' && (s[p + 1] == 'x' || s[p + 1] == 'X')) { /* strtod would read hex */
        c->cur.t = T_BAD;
        c->cur.len = 2;
        return;
    }
    c->cur.num = strtod(s + p, &end);
    size_t q = (size_t)(end - s);
    if (q < c->pos + 1 || !isfinite(c->cur.num)) {
        c->cur.t = T_BAD;
        c->cur.len = 1;
        return;
    }
    if (ident_char((unsigned char)s[q])) { /* a unit: 30d, 12h, 15m, 45s */
        size_t u = q;
        while (ident_char((unsigned char)s[u])) u++;
        int64_t secs;
        if (memchr(s + p, '.', q - p) || memchr(s + p, 'e', q - p) ||
            shelf__parse_duration(s + p, u - p, &secs)) {
            c->cur.t = T_BAD;
            c->cur.len = u - p;
            return;
        }
        c->cur.num = (double)secs;
        q = u;
    }
    c->cur.t = T_NUM;
    c->cur.len = q - p;
}

static void lex_string(comp *c)
{
    char quote = c->s[c->pos];
    size_t q = c->pos + 1;
    while (c->s[q] && c->s[q] != quote) q += (c->s[q] == '\\' && c->s[q + 1]) ? 2 : 1;
    c->cur.t = c->s[q] == quote ? T_STR : T_BAD;
    c->cur.len = q - c->pos + (c->s[q] == quote);
}

static void next(comp *c)
{
    const char *s = c->s;
    c->pos += c->cur.len;
    while (s[c->pos] == ' ' || s[c->pos] == '\t' || s[c->pos] == '\n' || s[c->pos] == '\r') c->pos++;
    c->cur = (tok){.t = T_END, .at = c->pos, .len = 0};
    char ch = s[c->pos], nx = ch ? s[c->pos + 1] : 0;
    if (!ch) return;
    if (isdigit((unsigned char)ch) || (ch == '.' && isdigit((unsigned char)nx))) {
        lex_number(c);
        return;
    }
    if (ch == '"' || ch == '\'') {
        lex_string(c);
        return;
    }
    if (isalpha((unsigned char)ch) || ch == '_') {
        size_t q = c->pos;
        while (ident_char((unsigned char)s[q]) || (s[q] == '.' && ident_char((unsigned char)s[q + 1]))) q++;
        c->cur.t = T_IDENT;
        c->cur.len = q - c->pos;
        return;
    }
    static const struct { const char *text; tok_t t; } ops[] = {
        {"==", T_EQ}, {"!=", T_NE}, {"<=", T_LE}, {">=", T_GE}, {"<", T_LT}, {">", T_GT},
        {"(", T_LP}, {")", T_RP}, {",", T_COMMA}, {"[", T_LB}, {"]", T_RB},
        {"+", T_PLUS}, {"-", T_MINUS}, {"*", T_STAR}, {"/", T_SLASH},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t n = strlen(ops[k].text);
        if (!strncmp(s + c->pos, ops[k].text, n)) {
            c->cur.t = ops[k].t;
            c->cur.len = n;
            return;
        }
    }
    c->cur.t = T_BAD;
    c->cur.len = 1;
}

static int is_word(const comp *c, const char *w)
{
    return c->cur.t == T_IDENT && c->cur.len == strlen(w) && !strncmp(c->s + c->cur.at, w, c->cur.len);
}

/* ---- code ---------------------------------------------------------------------------- */

#define GROW(arr, n, cap)                                                                                \
    ((n) < (cap) ? 0                                                                                     \
                 : grow((void **)&(arr), &(cap), sizeof *(arr)))

static int grow(void **arr, uint32_t *cap, size_t size)
{
    uint32_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)nc * size);
    if (!p) return SHELF_ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

/* emits op; delta is its effect on the stack depth */
static uint32_t emit(comp *c, xop op, uint32_t a, double d, int delta)
{
    shelf__expr *e = c->e;
    if (c->rc) return 0;
    if (e->n_code >= MAX_CODE) return fail(c, c->cur.at, "expression too long", NULL), 0;
    if (GROW(e->code, e->n_code, e->cap_code)) return c->rc = SHELF_ENOMEM, 0;
    e->code[e->n_code] = (xins){.op = (uint8_t)op, .a = a, .d = d};
    c->depth += delta;
    if (c->depth > c->max_depth) c->max_depth = c->depth;
    if (c->depth > MAX_DEPTH) fail(c, c->cur.at, "expression too deep", NULL);
    return e->n_code++;
}

/* the current string token's text, unescaped, as a new constant */
static int str_const(comp *c, uint32_t *idx)
{
    shelf__expr *e = c->e;
    if (GROW(e->strs, e->n_strs, e->cap_strs)) return c->rc = SHELF_ENOMEM;
    const char *p = c->s + c->cur.at + 1, *end = c->s + c->cur.at + c->cur.len - 1;
    char *out = malloc((size_t)(end - p) + 1), *o = out;
    if (!out) return c->rc = SHELF_ENOMEM;
    for (; p < end; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        p++;
        *o++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
    }
    *o = '\0';
    e->strs[e->n_strs] = out;
    *idx = e->n_strs++;
    return 0;
}

/* ---- parser: each level returns the static type of what it compiled ------------------- */

static shelf__xv_type p_or(comp *c);

static const char *type_name(shelf__xv_type t)
{
    static const char *names[] = {"null", "a condition", "a number", "a string", "a value"};
    return names[t];
}

static int known(shelf__xv_type t) { return t != SHELF__XV_ANY && t != SHELF__XV_NULL; }

static void expect(comp *c, tok_t t, const char *what)
{
    char buf[48];
    if (c->cur.t != t) fail(c, c->cur.at, what, tok_text(c, buf, sizeof buf));
    else next(c);
}

/* a literal of an `in` list */
static int list_literal(comp *c, shelf__xval *v)
{
    int neg = c->cur.t == T_MINUS;
    if (neg) next(c);
    if (c->cur.t == T_NUM) *v = (shelf__xval){.t = SHELF__XV_NUM, .num = neg ? -c->cur.num : c->cur.num};
    else if (c->cur.t == T_STR && !neg) {
        uint32_t k;
        if (str_const(c, &k)) return c->rc;
        *v = (shelf__xval){.t = SHELF__XV_STR, .num = k}; /* the string's index until compiled */
    } else if (!neg && (is_word(c, "true") || is_word(c, "false")))
        *v = (shelf__xval){.t = SHELF__XV_BOOL, .num = is_word(c, "true")};
    else {
        char buf[48];
        return fail(c, c->cur.at, "a list holds numbers, strings or booleans, not %s", tok_text(c, buf, sizeof buf));
    }
    next(c);
    return 0;
}

static shelf__xv_type p_list(comp *c, shelf__xv_type left)
{
    shelf__expr *e = c->e;
    uint32_t start = e->n_list;
    expect(c, T_LB, "expected '[' after 'in', found %s");
    while (!c->rc) {
        if (GROW(e->list, e->n_list, e->cap_list)) return c->rc = SHELF_ENOMEM, SHELF__XV_BOOL;
        size_t lat = c->cur.at;
        if (list_literal(c, &e->list[e->n_list])) break;
        if (known(left) && e->list[e->n_list].t != left)
            fail(c, lat, "this list item is not %s like the left side", type_name(left));
        e->n_list++;
        if (c->cur.t != T_COMMA) break;
        next(c);
    }
    expect(c, T_RB, "expected ',' or ']' in the list, found %s");
    uint32_t ins = emit(c, X_IN, start, 0, 0);
    if (!c->rc) e->code[ins].n = e->n_list - start;
    return SHELF__XV_BOOL;
}

/* seen(TYPE[, WINDOW]) */
static shelf__xv_type p_seen(comp *c)
{
    char buf[48];
    uint32_t type = 0;
    double window = 0;
    size_t at = c->cur.at;
    if (c->cur.t != T_IDENT && c->cur.t != T_STR) {
        fail(c, at, "seen() wants an event type first, found %s", tok_text(c, buf, sizeof buf));
        return SHELF__XV_BOOL;
    }
    size_t off = c->cur.t == T_STR, len = c->cur.len - 2 * off;
    if (!c->schema->event_type || c->schema->event_type(c->schema->ctx, c->s + at + off, len, &type)) {
        snprintf(buf, sizeof buf, "%.*s", (int)(len < 40 ? len : 40), c->s + at + off);
        fail(c, at, "unknown event type '%s'", buf);
        return SHELF__XV_BOOL;
    }
    next(c);
    if (c->cur.t == T_COMMA) {
        next(c);
        if (c->cur.t != T_NUM || c->cur.num < 0)
            fail(c, c->cur.at, "seen()'s window is a duration such as 30d or 12h, not %s", tok_text(c, buf, sizeof buf));
        window = c->cur.num;
        next(c);
    }
    expect(c, T_RP, "expected ')' after seen()'s arguments, found %s");
    emit(c, X_SEEN, type, window, 1);
    return SHELF__XV_BOOL;
}

/* log(x), min(a, b), max(a, b), exists(x), seen(...) */
static shelf__xv_type p_call(comp *c, const char *name, size_t nlen, size_t at)
{
    static const struct { const char *name; int args; xop op; } fns[] = {
        {"log", 1, X_LOG}, {"min", 2, X_MIN}, {"max", 2, X_MAX}, {"exists", 1, X_EXISTS},
    };
    next(c); /* '(' */
    if (nlen == 4 && !strncmp(name, "seen", 4)) return p_seen(c);
    for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++) {
        if (strlen(fns[k].name) != nlen || strncmp(fns[k].name, name, nlen)) continue;
        for (int a = 0; a < fns[k].args && !c->rc; a++) {
            if (a) expect(c, T_COMMA, "expected ',' between arguments, found %s");
            size_t aat = c->cur.at;
            shelf__xv_type t = p_or(c);
            if (fns[k].op != X_EXISTS && known(t) && t != SHELF__XV_NUM)
                fail(c, aat, "%s() wants a number here", fns[k].name);
        }
        expect(c, T_RP, "expected ')' after the arguments, found %s");
        emit(c, fns[k].op, 0, 0, 1 - fns[k].args);
        return fns[k].op == X_EXISTS ? SHELF__XV_BOOL : SHELF__XV_NUM;
    }
    char buf[48];
    snprintf(buf, sizeof buf, "%.*s", (int)(nlen < 40 ? nlen : 40), name);
    fail(c, at, "unknown function '%s' (log, min, max, exists, seen)", buf);
    return SHELF__XV_ANY;
}

/* a name: ctx.NAME / user.NAME (the request's), else an item field */
static shelf__xv_type p_name(comp *c)
{
    shelf__expr *e = c->e;
    const char *name = c->s + c->cur.at;
    size_t len = c->cur.len, at = c->cur.at;
    int ns = len > 4 && !strncmp(name, "ctx.", 4) ? 0 : len > 5 && !strncmp(name, "user.", 5) ? 1 : -1;
    next(c);
    if (c->cur.t == T_LP) return p_call(c, name, len, at);
    if (ns >= 0) {
        size_t skip = ns ? 5 : 4;
        uint32_t k = 0;
        while (k < e->n_slots && (e->slots[k].ns != ns || strlen(e->slots[k].name) != len - skip ||
                                  strncmp(e->slots[k].name, name + skip, len - skip)))
            k++;
        if (k == e->n_slots) {
            if (GROW(e->slots, e->n_slots, e->cap_slots)) return c->rc = SHELF_ENOMEM, SHELF__XV_ANY;
            if (!(e->slots[k].name = strndup(name + skip, len - skip))) return c->rc = SHELF_ENOMEM, SHELF__XV_ANY;
            e->slots[k].ns = ns;
            e->n_slots++;
        }
        emit(c, X_SLOT, k, 0, 1);
        return SHELF__XV_ANY;
    }
    uint32_t id;
    shelf__xv_type t;
    if (!c->schema->item_field || c->schema->item_field(c->schema->ctx, name, len, &id, &t)) {
        char buf[48];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < 40 ? len : 40), name);
        fail(c, at, "unknown field '%s' (an item field, ctx.NAME or user.NAME)", buf);
        return SHELF__XV_ANY;
    }
    emit(c, X_FIELD, id, 0, 1);
    return t;
}

static shelf__xv_type p_primary(comp *c)
{
    char buf[48];
    if (c->cur.t == T_NUM) {
        emit(c, X_NUM, 0, c->cur.num, 1);
        next(c);
        return SHELF__XV_NUM;
    }
    if (c->cur.t == T_STR) {
        uint32_t k;
        if (!str_const(c, &k)) emit(c, X_STR, k, 0, 1);
        next(c);
        return SHELF__XV_STR;
    }
    if (c->cur.t == T_LP) {
        size_t at = c->cur.at;
        if (++c->nest > MAX_NEST) return fail(c, at, "nested too deep", NULL), SHELF__XV_ANY;
        next(c);
        shelf__xv_type t = p_or(c);
        expect(c, T_RP, "expected ')' here, found %s");
        c->nest--;
        return t;
    }
    if (is_word(c, "true") || is_word(c, "false")) {
        emit(c, X_BOOL, is_word(c, "true"), 0, 1);
        next(c);
        return SHELF__XV_BOOL;
    }
    if (is_word(c, "null")) {
        emit(c, X_NULL, 0, 0, 1);
        next(c);
        return SHELF__XV_NULL;
    }
    static const char *const reserved[] = {"and", "or", "not", "in", "under"};
    for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++)
        if (is_word(c, reserved[k])) return fail(c, c->cur.at, "expected a value, found '%s'", reserved[k]), SHELF__XV_ANY;
    if (c->cur.t == T_IDENT) return p_name(c);
    if (c->cur.t == T_BAD) return fail(c, c->cur.at, "cannot read %s", tok_text(c, buf, sizeof buf)), SHELF__XV_ANY;
    fail(c, c->cur.at, "expected a value, found %s", tok_text(c, buf, sizeof buf));
    return SHELF__XV_ANY;
}

static shelf__xv_type p_unary(comp *c)
{
    if (c->cur.t != T_MINUS) return p_primary(c);
    size_t at = c->cur.at;
    if (++c->nest > MAX_NEST) return fail(c, at, "nested too deep", NULL), SHELF__XV_ANY;
    next(c);
    shelf__xv_type t = p_unary(c);
    c->nest--;
    if (known(t) && t != SHELF__XV_NUM) fail(c, at, "'-' wants a number", NULL);
    emit(c, X_NEG, 0, 0, 0);
    return SHELF__XV_NUM;
}

/* one binary level of arithmetic: mul (* /) when mul, else add (+ -) */
static shelf__xv_type p_arith(comp *c, int mul)
{
    shelf__xv_type t = mul ? p_unary(c) : p_arith(c, 1);
    for (;;) {
        tok_t op = c->cur.t;
        if (mul ? (op != T_STAR && op != T_SLASH) : (op != T_PLUS && op != T_MINUS)) return t;
        size_t at = c->cur.at;
        next(c);
        shelf__xv_type r = mul ? p_unary(c) : p_arith(c, 1);
        if ((known(t) && t != SHELF__XV_NUM) || (known(r) && r != SHELF__XV_NUM))
            fail(c, at, "arithmetic wants numbers on both sides", NULL);
        emit(c, op == T_STAR ? X_MUL : op == T_SLASH ? X_DIV : op == T_PLUS ? X_ADD : X_SUB, 0, 0, -1);
        t = SHELF__XV_NUM;
    }
}

static shelf__xv_type p_cmp(comp *c)
{
    shelf__xv_type l = p_arith(c, 0);
    size_t at = c->cur.at;
    int negate = 0;
    if (is_word(c, "not")) { /* "not in", else not ours: put the lexer back */
        size_t pos = c->pos;
        tok cur = c->cur;
        next(c);
        if (!is_word(c, "in")) {
            c->pos = pos;
            c->cur = cur;
            return l;
        }
        negate = 1;
    }
    if (is_word(c, "in")) {
        next(c);
        p_list(c, l);
        if (negate) emit(c, X_NOT, 0, 0, 0);
        return SHELF__XV_BOOL;
    }
    static const struct { tok_t t; xop op; } ops[] = {
        {T_EQ, X_EQ}, {T_NE, X_NE}, {T_LT, X_LT}, {T_LE, X_LE}, {T_GT, X_GT}, {T_GE, X_GE},
    };
    xop op = X_UNDER;
    int found = is_word(c, "under");
    for (size_t k = 0; k < sizeof ops / sizeof ops[0] && !found; k++)
        if (c->cur.t == ops[k].t) op = ops[k].op, found = 1;
    if (!found) return l;
    next(c);
    shelf__xv_type r = p_arith(c, 0);
    int eq = op == X_EQ || op == X_NE;
    if (op == X_UNDER && ((known(l) && l != SHELF__XV_STR) || (known(r) && r != SHELF__XV_STR)))
        fail(c, at, "'under' wants a category path on both sides", NULL);
    else if (known(l) && known(r) && l != r)
        fail(c, at, "compares %s with something else", type_name(l));
    else if (!eq && (l == SHELF__XV_BOOL || r == SHELF__XV_BOOL || l == SHELF__XV_NULL || r == SHELF__XV_NULL))
        fail(c, at, "only '==' and '!=' compare conditions or null", NULL);
    emit(c, op, 0, 0, -1);
    return SHELF__XV_BOOL;
}

static shelf__xv_type cond_operand(comp *c, shelf__xv_type t, size_t at, const char *op)
{
    if (known(t) && t != SHELF__XV_BOOL) fail(c, at, "'%s' wants conditions (use a comparison)", op);
    return t;
}

static shelf__xv_type p_not(comp *c)
{
    if (!is_word(c, "not")) return p_cmp(c);
    size_t at = c->cur.at;
    if (++c->nest > MAX_NEST) return fail(c, at, "nested too deep", NULL), SHELF__XV_ANY;
    next(c);
    cond_operand(c, p_not(c), at, "not");
    c->nest--;
    emit(c, X_NOT, 0, 0, 0);
    return SHELF__XV_BOOL;
}

/* and (when and) or or: short-circuit jumps past the right side */
static shelf__xv_type p_logic(comp *c, int and)
{
    size_t at = c->cur.at;
    shelf__xv_type t = and ? p_not(c) : p_logic(c, 1);
    while (is_word(c, and ? "and" : "or")) {
        cond_operand(c, t, at, and ? "and" : "or");
        next(c);
        uint32_t jump = emit(c, and ? X_AND : X_OR, 0, 0, -1);
        at = c->cur.at;
        cond_operand(c, and ? p_not(c) : p_logic(c, 1), at, and ? "and" : "or");
        emit(c, X_TRUTH, 0, 0, 0);
        if (!c->rc) c->e->code[jump].a = c->e->n_code;
        t = SHELF__XV_BOOL;
    }
    return t;
}

static shelf__xv_type p_or(comp *c) { return p_logic(c, 0); }

/* ---- compile and free ------------------------------------------------------------------ */

void shelf__expr_free(shelf__expr *e)
{
    if (!e) return;
    for (uint32_t k = 0; k < e->n_strs; k++) free(e->strs[k]);
    for (uint32_t k = 0; k < e->n_slots; k++) free(e->slots[k].name);
    free(e->strs);
    free(e->slots);
    free(e->list);
    free(e->code);
    free(e);
}

int shelf__expr_compile(const char *text, shelf__expr_kind kind, const shelf__expr_schema *schema,
                        shelf__expr **out, shelf_err *err)
{
    shelf__expr *e = calloc(1, sizeof *e);
    if (!e) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    e->kind = kind;
    static const shelf__expr_schema nothing = {0}; /* no fields, no event types */
    comp c = {.s = text ? text : "", .e = e, .schema = schema ? schema : &nothing, .err = err};
    next(&c);
    if (c.cur.t == T_END) fail(&c, 0, "the expression is empty", NULL);
    shelf__xv_type t = c.rc ? SHELF__XV_ANY : p_or(&c);
    char buf[48];
    if (!c.rc && c.cur.t != T_END)
        fail(&c, c.cur.at, c.cur.t == T_BAD ? "cannot read %s" : "expected an operator or the end, found %s",
             tok_text(&c, buf, sizeof buf));
    if (!c.rc && kind == SHELF__EXPR_CONDITION && known(t) && t != SHELF__XV_BOOL)
        fail(&c, 0, "a filter must be a condition, this is %s", type_name(t));
    if (!c.rc && kind == SHELF__EXPR_NUMBER && known(t) && t != SHELF__XV_NUM)
        fail(&c, 0, "a booster must be a number, this is %s", type_name(t));
    if (c.rc) {
        if (c.rc == SHELF_ENOMEM) shelf_err_set(err, SHELF_ENOMEM, "out of memory");
        shelf__expr_free(e);
        return c.rc;
    }
    /* list strings point at their constants now that no realloc can move them */
    for (uint32_t k = 0; k < e->n_list; k++)
        if (e->list[k].t == SHELF__XV_STR) e->list[k].str = e->strs[(uint32_t)e->list[k].num];
    e->depth = (uint32_t)(c.max_depth > 0 ? c.max_depth : 1);
    for (uint32_t pc = 0; pc < e->n_code; pc++) e->n_logic += e->code[pc].op == X_AND || e->code[pc].op == X_OR;
    *out = e;
    return 0;
}

size_t shelf__expr_slots(const shelf__expr *e) { return e->n_slots; }

int shelf__expr_uses_field(const shelf__expr *e, uint32_t field)
{
    for (uint32_t pc = 0; e && pc < e->n_code; pc++)
        if (e->code[pc].op == X_FIELD && e->code[pc].a == field) return 1;
    return 0;
}

void shelf__expr_bind(const shelf__expr *e, const shelf__expr_env *env, shelf__xval *slots)
{
    for (uint32_t k = 0; k < e->n_slots; k++) {
        slots[k] = (shelf__xval){.t = SHELF__XV_NULL};
        if (env->lookup) env->lookup(env->ctx, e->slots[k].ns, e->slots[k].name, &slots[k]);
    }
}

/* ---- the machine ---------------------------------------------------------------------- */

static int truthy(const shelf__xval *v) { return v->t == SHELF__XV_BOOL && v->num != 0; }

static int same(const shelf__xval *a, const shelf__xval *b)
{
    if (a->t != b->t) return 0;
    if (a->t == SHELF__XV_STR) return !strcmp(a->str, b->str);
    return a->t == SHELF__XV_NULL || a->num == b->num;
}

/* a < b etc.: -2 when they cannot be ordered */
static int order(const shelf__xval *a, const shelf__xval *b)
{
    if (a->t != b->t || (a->t != SHELF__XV_NUM && a->t != SHELF__XV_STR)) return -2;
    if (a->t == SHELF__XV_STR) {
        int r = strcmp(a->str, b->str);
        return (r > 0) - (r < 0);
    }
    if (isnan(a->num) || isnan(b->num)) return -2;
    return (a->num > b->num) - (a->num < b->num);
}

static void compare(xop op, shelf__xval *l, const shelf__xval *r)
{
    int v;
    if (op == X_EQ || op == X_NE) v = same(l, r) == (op == X_EQ);
    else if (op == X_UNDER)
        v = l->t == SHELF__XV_STR && r->t == SHELF__XV_STR && shelf__cat_under(l->str, r->str, strlen(r->str));
    else {
        int o = order(l, r);
        v = o != -2 && (op == X_LT ? o < 0 : op == X_LE ? o <= 0 : op == X_GT ? o > 0 : o >= 0);
    }
    *l = (shelf__xval){.t = SHELF__XV_BOOL, .num = v};
}

static void arith(xop op, shelf__xval *l, const shelf__xval *r)
{
    if (l->t != SHELF__XV_NUM || r->t != SHELF__XV_NUM) {
        *l = (shelf__xval){.t = SHELF__XV_NULL};
        return;
    }
    double a = l->num, b = r->num;
    l->num = op == X_ADD ? a + b : op == X_SUB ? a - b : op == X_MUL ? a * b : op == X_DIV ? a / b
           : op == X_MIN ? (a < b ? a : b) : (a > b ? a : b);
    if (!isfinite(l->num)) *l = (shelf__xval){.t = SHELF__XV_NULL}; /* x/0 and overflow: no value */
}

static int in_list(const shelf__expr *e, const xins *in, const shelf__xval *v)
{
    for (uint32_t k = 0; k < in->n; k++)
        if (same(v, &e->list[in->a + k])) return 1;
    return 0;
}

int shelf__expr_eval(const shelf__expr *e, const shelf__expr_env *env, const shelf__xval *slots, uint32_t item,
                     double *num)
{
    shelf__xval st[MAX_DEPTH + 1];
    int sp = -1;
    for (uint32_t pc = 0; pc < e->n_code; pc++) {
        const xins *in = &e->code[pc];
        switch ((xop)in->op) {
        case X_NUM: st[++sp] = (shelf__xval){.t = SHELF__XV_NUM, .num = in->d}; break;
        case X_STR: st[++sp] = (shelf__xval){.t = SHELF__XV_STR, .str = e->strs[in->a]}; break;
        case X_BOOL: st[++sp] = (shelf__xval){.t = SHELF__XV_BOOL, .num = in->a}; break;
        case X_NULL: st[++sp] = (shelf__xval){.t = SHELF__XV_NULL}; break;
        case X_FIELD:
            st[++sp] = (shelf__xval){.t = SHELF__XV_NULL};
            env->item_value(env->ctx, item, in->a, &st[sp]);
            break;
        case X_SLOT: st[++sp] = slots[in->a]; break;
        case X_SEEN:
            st[++sp] = (shelf__xval){.t = SHELF__XV_BOOL,
                                     .num = env->seen && env->seen(env->ctx, item, in->a, (int64_t)in->d)};
            break;
        case X_EQ: case X_NE: case X_LT: case X_LE: case X_GT: case X_GE: case X_UNDER:
            sp--;
            compare((xop)in->op, &st[sp], &st[sp + 1]);
            break;
        case X_IN: st[sp] = (shelf__xval){.t = SHELF__XV_BOOL, .num = in_list(e, in, &st[sp])}; break;
        case X_ADD: case X_SUB: case X_MUL: case X_DIV: case X_MIN: case X_MAX:
            sp--;
            arith((xop)in->op, &st[sp], &st[sp + 1]);
            break;
        case X_NEG:
            if (st[sp].t == SHELF__XV_NUM) st[sp].num = -st[sp].num;
            else st[sp] = (shelf__xval){.t = SHELF__XV_NULL};
            break;
        case X_LOG:
            if (st[sp].t == SHELF__XV_NUM && st[sp].num > 0) st[sp].num = log(st[sp].num);
            else st[sp] = (shelf__xval){.t = SHELF__XV_NULL};
            break;
        case X_NOT: st[sp] = (shelf__xval){.t = SHELF__XV_BOOL, .num = !truthy(&st[sp])}; break;
        case X_EXISTS: st[sp] = (shelf__xval){.t = SHELF__XV_BOOL, .num = st[sp].t != SHELF__XV_NULL}; break;
        case X_TRUTH: st[sp] = (shelf__xval){.t = SHELF__XV_BOOL, .num = truthy(&st[sp])}; break;
        case X_AND:
        case X_OR:
            /* the left side decides: keep it as the result (a boolean) and jump */
            if (truthy(&st[sp]) == (in->op == X_OR)) {
                st[sp] = (shelf__xval){.t = SHELF__XV_BOOL, .num = in->op == X_OR};
                pc = in->a - 1;
            } else {
                sp--;
            }
            break;
        }
    }
    if (e->kind == SHELF__EXPR_CONDITION) return sp == 0 && truthy(&st[0]);
    int ok = sp == 0 && st[0].t == SHELF__XV_NUM;
    if (num) *num = ok ? st[0].num : NAN;
    return ok;
}

/* ---- the machine over many items ----------------------------------------------------------
 * The same instructions over up to LANES items at once: a column of values
 * per stack level, so each instruction is decoded once per LANES items and
 * a field is gathered for all of them in one call. and/or evaluate their
 * right side on every lane (it has no side effects) and put the lanes the
 * left side decided back at the jump's target; when the left side decides
 * every lane, the right side is skipped as in shelf__expr_eval. */

enum { LANES = 64 };

typedef struct pending {
    uint32_t target; /* the instruction before which the decided lanes are put back */
    uint8_t val;     /* their value: 1 for or, 0 for and */
    uint8_t decided[LANES];
} pending;

/* both strings: the previous pair's answer when the pointers repeat (a
 * field such as kind or category points into one table of names) */
typedef struct str_memo {
    const char *a, *b;
    int v;
} str_memo;

static void compare_lane(xop op, shelf__xval *l, const shelf__xval *r, str_memo *m)
{
    if (l->t != SHELF__XV_STR || r->t != SHELF__XV_STR) {
        compare(op, l, r);
        return;
    }
    if (!m->a || l->str != m->a || r->str != m->b) {
        shelf__xval t = *l;
        compare(op, &t, r);
        m->a = l->str, m->b = r->str, m->v = t.num != 0;
    }
    *l = (shelf__xval){.t = SHELF__XV_BOOL, .num = m->v};
}

static void run_lanes(const shelf__expr *e, const shelf__expr_env *env, const shelf__xval *slots,
                      const uint32_t *items, uint32_t n, shelf__xval *col, pending *pend)
{
#define COL(k) (col + (size_t)(k) * LANES)
    int sp = -1;
    uint32_t np = 0;
    for (uint32_t pc = 0;; pc++) {
        for (; np && pend[np - 1].target == pc; np--) /* lanes the left side of and/or decided */
            for (uint32_t l = 0; l < n; l++)
                if (pend[np - 1].decided[l]) COL(sp)[l] = (shelf__xval){.t = SHELF__XV_BOOL, .num = pend[np - 1].val};
        if (pc >= e->n_code) break;
        const xins *in = &e->code[pc];
        shelf__xval *s = sp >= 0 ? COL(sp) : NULL, *t = COL(sp + 1);
        switch ((xop)in->op) {
        case X_NUM:
        case X_STR:
        case X_BOOL:
        case X_NULL:
        case X_SLOT: {
            shelf__xval v = in->op == X_NUM    ? (shelf__xval){.t = SHELF__XV_NUM, .num = in->d}
                            : in->op == X_STR  ? (shelf__xval){.t = SHELF__XV_STR, .str = e->strs[in->a]}
                            : in->op == X_BOOL ? (shelf__xval){.t = SHELF__XV_BOOL, .num = in->a}
                            : in->op == X_SLOT ? slots[in->a]
                                               : (shelf__xval){.t = SHELF__XV_NULL};
            for (uint32_t l = 0; l < n; l++) t[l] = v;
            sp++;
            break;
        }
        case X_FIELD:
            for (uint32_t l = 0; l < n; l++) t[l] = (shelf__xval){.t = SHELF__XV_NULL};
            if (env->item_values) env->item_values(env->ctx, items, n, in->a, t);
            else
                for (uint32_t l = 0; l < n; l++) env->item_value(env->ctx, items[l], in->a, &t[l]);
            sp++;
            break;
        case X_SEEN:
            for (uint32_t l = 0; l < n; l++)
                t[l] = (shelf__xval){.t = SHELF__XV_BOOL,
                                     .num = env->seen && env->seen(env->ctx, items[l], in->a, (int64_t)in->d)};
            sp++;
            break;
        case X_EQ: case X_NE: case X_LT: case X_LE: case X_GT: case X_GE: case X_UNDER: {
            str_memo m = {NULL, NULL, 0};
            shelf__xval *a = COL(sp - 1);
            for (uint32_t l = 0; l < n; l++) compare_lane((xop)in->op, &a[l], &s[l], &m);
            sp--;
            break;
        }
        case X_IN:
            for (uint32_t l = 0; l < n; l++) s[l] = (shelf__xval){.t = SHELF__XV_BOOL, .num = in_list(e, in, &s[l])};
            break;
        case X_ADD: case X_SUB: case X_MUL: case X_DIV: case X_MIN: case X_MAX: {
            shelf__xval *a = COL(sp - 1);
            for (uint32_t l = 0; l < n; l++) arith((xop)in->op, &a[l], &s[l]);
            sp--;
            break;
        }
        case X_NEG:
            for (uint32_t l = 0; l < n; l++)
                if (s[l].t == SHELF__XV_NUM) s[l].num = -s[l].num;
                else s[l] = (shelf__xval){.t = SHELF__XV_NULL};
            break;
        case X_LOG:
            for (uint32_t l = 0; l < n; l++)
                if (s[l].t == SHELF__XV_NUM && s[l].num > 0) s[l].num = log(s[l].num);
                else s[l] = (shelf__xval){.t = SHELF__XV_NULL};
            break;
        case X_NOT:
            for (uint32_t l = 0; l < n; l++) s[l] = (shelf__xval){.t = SHELF__XV_BOOL, .num = !truthy(&s[l])};
            break;
        case X_EXISTS:
            for (uint32_t l = 0; l < n; l++) s[l] = (shelf__xval){.t = SHELF__XV_BOOL, .num = s[l].t != SHELF__XV_NULL};
            break;
        case X_TRUTH:
            for (uint32_t l = 0; l < n; l++) s[l] = (shelf__xval){.t = SHELF__XV_BOOL, .num = truthy(&s[l])};
            break;
        case X_AND:
        case X_OR: {
            pending *p = &pend[np];
            uint8_t want = in->op == X_OR;
            uint32_t nd = 0;
            for (uint32_t l = 0; l < n; l++) nd += p->decided[l] = (uint8_t)(truthy(&s[l]) == want);
            if (nd == n) { /* the left side decides every lane: past the right side */
                for (uint32_t l = 0; l < n; l++) s[l] = (shelf__xval){.t = SHELF__XV_BOOL, .num = want};
                pc = in->a - 1;
                break;
            }
            if (nd) p->target = in->a, p->val = want, np++;
            sp--;
            break;
        }
        }
    }
#undef COL
}

int shelf__expr_eval_many(const shelf__expr *e, const shelf__expr_env *env, const shelf__xval *slots,
                          const uint32_t *items, size_t n, uint8_t *pass, double *num)
{
    shelf__xval *col = malloc((size_t)(e->depth + 1) * LANES * sizeof *col);
    pending *pend = malloc((e->n_logic ? e->n_logic : 1) * sizeof *pend);
    if (!col || !pend) {
        free(col);
        free(pend);
        return SHELF_ENOMEM;
    }
    for (size_t at = 0; at < n; at += LANES) {
        uint32_t m = n - at < LANES ? (uint32_t)(n - at) : LANES;
        run_lanes(e, env, slots, items + at, m, col, pend);
        for (uint32_t l = 0; l < m; l++) {
            const shelf__xval *v = &col[l];
            if (e->kind == SHELF__EXPR_CONDITION) {
                pass[at + l] = (uint8_t)truthy(v);
                continue;
            }
            pass[at + l] = v->t == SHELF__XV_NUM;
            if (num) num[at + l] = pass[at + l] ? v->num : NAN;
        }
    }
    free(col);
    free(pend);
    return 0;
}
