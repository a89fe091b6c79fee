/* config_int.h: the configuration table's internals shared with other
 * rooms: the model registry supplies each model's rows (registry.c), and
 * durations are parsed one way everywhere. */
#ifndef SHELF_CONFIG_INT_H
#define SHELF_CONFIG_INT_H

#include "shelf/config.h"

/* The k-th registered model: its name (*name) and its rows of the table
 * (*n of them, static storage); NULL when k is past the last model. */
const shelf_cfg_def *shelf__model_rows(size_t k, const char **name, size_t *n);

/* Parses a duration: a number >= 0 with an optional unit s, m, h or d
 * ("90s", "1.5h", "7d"; a bare number is seconds) into *seconds. 0 or
 * SHELF_EINVAL (and *seconds untouched). */
int shelf__duration_parse(const char *text, double *seconds);

#endif
