/* expr_int.h: the ranking room's small expression language (docs/expressions.md),
 * the filters and boosters of scenarios: compiled once, with errors that
 * name the column, then evaluated per candidate item.
 *
 *   kind == "product" and price <= ctx.max_price and category under "shoes"
 *     and not seen(purchase, 30d) and available
 *
 * Values are numbers (doubles; 30d is 2592000 seconds), strings, booleans
 * and null (a field the item lacks, a context value the request lacks).
 * Only true is true: a condition that meets null is false. Item fields and
 * event types are resolved when compiling (the schema); ctx.NAME and
 * user.NAME are the request's, looked up once per request (bind). */
#ifndef SHELF_RANK_EXPR_INT_H
#define SHELF_RANK_EXPR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "shelf/core.h"

typedef enum { SHELF__XV_NULL = 0, SHELF__XV_BOOL, SHELF__XV_NUM, SHELF__XV_STR, SHELF__XV_ANY } shelf__xv_type;

typedef struct shelf__xval {
    shelf__xv_type t; /* NULL, BOOL, NUM or STR (never ANY) */
    double num;       /* BOOL: 0 or 1; NUM: the number */
    const char *str;  /* STR: NUL-terminated, owned by whoever produced it */
} shelf__xval;

/* What an expression may name, asked while compiling. */
typedef struct shelf__expr_schema {
    void *ctx;
    /* An item field by name: its id and type (SHELF__XV_ANY when it varies);
     * 0, or SHELF_ENOTFOUND. */
    int (*item_field)(void *ctx, const char *name, size_t len, uint32_t *id, shelf__xv_type *type);
    /* An event type by name (for seen()): 0, or SHELF_ENOTFOUND. */
    int (*event_type)(void *ctx, const char *name, size_t len, uint32_t *id);
} shelf__expr_schema;

/* What evaluating needs, given per request. */
typedef struct shelf__expr_env {
    void *ctx;
    /* field id's value for the item (SHELF__XV_NULL when it has none) */
    void (*item_value)(void *ctx, uint32_t item, uint32_t field, shelf__xval *out);
    /* 1 when the shopper has an event of this type on the item within the
     * last window_s seconds (0: ever) */
    int (*seen)(void *ctx, uint32_t item, uint32_t type, int64_t window_s);
    /* the request's value of ctx.NAME (ns 0) or user.NAME (ns 1); NULL when
     * it has none; strings stay valid for the request */
    void (*lookup)(void *ctx, int ns, const char *name, shelf__xval *out);
    /* optional, for shelf__expr_eval_many: field id's values for items[0..n)
     * at once into out (preset to null); NULL: item_value item by item */
    void (*item_values)(void *ctx, const uint32_t *items, uint32_t n, uint32_t field, shelf__xval *out);
} shelf__expr_env;

typedef struct shelf__expr shelf__expr;

typedef enum { SHELF__EXPR_CONDITION, SHELF__EXPR_NUMBER } shelf__expr_kind;

/* Compiles text as a condition (filters) or a number (boosters). On error
 * SHELF_EINVAL with err "column C: what was wrong" (C counts bytes from 1)
 * and *out untouched; SHELF_ENOMEM. Free with shelf__expr_free. */
int shelf__expr_compile(const char *text, shelf__expr_kind kind, const shelf__expr_schema *schema,
                        shelf__expr **out, shelf_err *err);
void shelf__expr_free(shelf__expr *e);

/* The request's constants (ctx.NAME, user.NAME) looked up once: slots has
 * room for shelf__expr_slots(e) values. */
size_t shelf__expr_slots(const shelf__expr *e);
/* 1 when e reads item field id (so a caller can skip gathering it). */
int shelf__expr_uses_field(const shelf__expr *e, uint32_t field);
void shelf__expr_bind(const shelf__expr *e, const shelf__expr_env *env, shelf__xval *slots);

/* Evaluates e for one item with the bound slots. A condition gives 1 when
 * true, else 0; a number expression writes *num (NAN when null) and gives 1
 * when it is a number. Thread-safe: e is only read. */
int shelf__expr_eval(const shelf__expr *e, const shelf__expr_env *env, const shelf__xval *slots, uint32_t item,
                     double *num);
/* The same for items[0..n) at once (the per-candidate loops of a slate:
 * an instruction is decoded once per 64 items): pass[k] is what
 * shelf__expr_eval gives for items[k], and for a number expression num[k]
 * (when num is not NULL) its *num. 0, or SHELF_ENOMEM (nothing written). */
int shelf__expr_eval_many(const shelf__expr *e, const shelf__expr_env *env, const shelf__xval *slots,
                          const uint32_t *items, size_t n, uint8_t *pass, double *num);

#endif
