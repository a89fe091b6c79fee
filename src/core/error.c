/* error.c: status code texts, the error slot, and the invariant assert. */
#include "shelf/core.h"
#include "core/assert_int.h"
#include "core/error_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *shelf_strerror(int code)
{
    switch (code) {
    case SHELF_OK: return "ok";
    case SHELF_ENOMEM: return "out of memory";
    case SHELF_EIO: return "I/O error";
    case SHELF_EINVAL: return "invalid argument";
    case SHELF_ECORRUPT: return "corrupt file";
    case SHELF_ESTORE: return "store error";
    case SHELF_ENOTFOUND: return "not found";
    case SHELF_EFORMAT: return "malformed input";
    case SHELF_ERANGE: return "value out of range";
    case SHELF_EEXIST: return "already exists";
    case SHELF_EVERSION: return "unsupported version";
    default: return "unknown error";
    }
}

int shelf__err_vset(shelf_err *err, int code, const char *fmt, va_list ap)
{
    if (!err) return code;
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return code;
}

int shelf_err_set(shelf_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    shelf__err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

const char *shelf_errmsg(const shelf_err *err)
{
    return err ? err->msg : "";
}

void shelf_err_clear(shelf_err *err)
{
    if (!err) return;
    err->code = 0;
    err->msg[0] = '\0';
}

void shelf__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}
