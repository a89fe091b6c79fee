/* api.c: the store's public calls (store.h), each handed to the backend
 * behind the handle (backend_int.h); the error slot is common to all. */
#include "store/backend_int.h"
#include "core/error_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BE(st) (((const shelf__store_head *)(st))->be)

int shelf_store_open(const char *path, unsigned flags, shelf_store **out, shelf_err *err)
{
    if (!path) return shelf_err_set(err, SHELF_EINVAL, "store: no path");
    if (!strncmp(path, "postgres://", 11) || !strncmp(path, "postgresql://", 13))
        return shelf_err_set(err, SHELF_EINVAL, "%s: this build has no PostgreSQL store backend", path);
    return shelf__sqlite_backend.open(path, flags, out, err);
}

int shelf_store_fail(shelf_store *st, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    shelf__err_vset(&((shelf__store_head *)st)->err, code, fmt, ap);
    va_end(ap);
    return code;
}

const shelf_err *shelf_store_err(const shelf_store *st) { return &((const shelf__store_head *)st)->err; }
const char *shelf_store_errmsg(const shelf_store *st) { return ((const shelf__store_head *)st)->err.msg; }

void shelf_store_close(shelf_store *st)
{
    if (st) BE(st)->close(st);
}

/* every other call: straight to the backend */
#define DISPATCH(ret, name, params, args) \
    ret shelf_store_##name params { return BE(st)->name args; }
SHELF__STORE_OPS(DISPATCH)
#define DISPATCH_INT(ret, name, params, args) \
    ret shelf__store_##name params { return BE(st)->name args; }
SHELF__STORE_INT_OPS(DISPATCH_INT)
