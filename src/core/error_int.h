/* error_int.h: shelf_err_set with a va_list, for the library's own
 * printf-style error functions (error.c). */
#ifndef SHELF_ERROR_INT_H
#define SHELF_ERROR_INT_H

#include <stdarg.h>

#include "shelf/core.h"

/* Records code and the message in err (may be NULL); returns code. */
int shelf__err_vset(shelf_err *err, int code, const char *fmt, va_list ap);

#endif
