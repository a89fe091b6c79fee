/* json_int.h: how a JSON attribute value becomes text, shared by the
 * snapshot's user features and the server's attributes and context, so that
 * "key=value" strings agree wherever they are made. */
#ifndef SHELF_DATA_JSON_INT_H
#define SHELF_DATA_JSON_INT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The text of a scalar JSON value: a string as it is, a number as an integer
 * when integral and |v| < 1e15 else %.15g (into buf, cap >= 32), a boolean
 * as true/false. *val points at the text. 0 if j is not a scalar. */
int shelf__json_scalar_text(const cJSON *j, char *buf, size_t cap, const char **val);
/* "key=value" of an object member (key: its name) into buf; returns the
 * length, or -1 when the value is not a scalar or it does not fit. */
int shelf__json_kv(const cJSON *member, char *buf, size_t cap);

#endif
