/* config.h: the one configuration table. Every option is one row (name,
 * type, default, bounds, help, the commands that take it); CLI flags, config
 * files and (later) the server's admin endpoint all read and write it. */
#ifndef SHELF_CONFIG_H
#define SHELF_CONFIG_H

#include "shelf/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SHELF_CFG_BOOL,
    SHELF_CFG_INT,
    SHELF_CFG_DOUBLE,
    SHELF_CFG_STRING,
    SHELF_CFG_ENUM, /* string restricted to `choices` ("a|b|c") */
    SHELF_CFG_DURATION /* a time span: a number with unit s, m, h or d ("90s",
                        * "1.5h", "7d"; a bare number is seconds), kept in
                        * seconds; read with shelf_config_double */
} shelf_cfg_type;

typedef struct shelf_cfg_def {
    const char *name;    /* "store", "seed", ... (flag --name) */
    shelf_cfg_type type;
    const char *def;     /* default as text; NULL: unset */
    double min, max;     /* bounds for INT, DOUBLE and DURATION (seconds), inclusive */
    const char *choices; /* ENUM: "a|b|c" */
    const char *scope;   /* space-separated command names, "*" for all */
    const char *help;
    const char *unit;    /* of the value: "days", "seconds", "MiB", ...; "" for none */
} shelf_cfg_def;

/* The table: the common rows, then each model's rows (shelf_model_options)
 * in the order of shelf_model_names; *n receives its length. Static
 * storage, built at the first call of any shelf_config_* function. */
SHELF_API const shelf_cfg_def *shelf_config_table(size_t *n);
/* Row by name or NULL (the first, where rows of other commands share it). */
SHELF_API const shelf_cfg_def *shelf_config_find(const char *name);

/* A set of values, one per table row, starting at the defaults. */
typedef struct shelf_config shelf_config;
SHELF_API shelf_config *shelf_config_new(void); /* NULL on ENOMEM */
SHELF_API void shelf_config_free(shelf_config *c); /* accepts NULL */

/* Sets name from text, checking type, bounds and choices. Errors
 * (SHELF_ENOTFOUND unknown name, SHELF_EINVAL bad value, SHELF_ERANGE out of
 * bounds) name the option and the value in err. `origin` ("--seed",
 * "shelf.conf:3") prefixes the message; may be NULL. */
SHELF_API int shelf_config_set(shelf_config *c, const char *name, const char *value, const char *origin,
                     shelf_err *err);
/* Reads "name = value" lines ('#' comments, blank lines ok). Errors name
 * file and line. */
SHELF_API int shelf_config_load_file(shelf_config *c, const char *path, shelf_err *err);
/* 1 if the option was set explicitly (not left at its default). */
SHELF_API int shelf_config_is_set(const shelf_config *c, const char *name);

/* Getters: the option must exist with the matching type (else assert);
 * shelf_config_double also reads a DURATION, in seconds. A string that is
 * unset returns NULL. */
SHELF_API int shelf_config_bool(const shelf_config *c, const char *name);
SHELF_API int64_t shelf_config_int(const shelf_config *c, const char *name);
SHELF_API double shelf_config_double(const shelf_config *c, const char *name);
SHELF_API const char *shelf_config_str(const shelf_config *c, const char *name);

/* Parses `--name value`, `--name=value`, `--flag` / `--no-flag` for BOOL
 * options whose scope includes `command`; `--config FILE` loads a file first
 * in order of appearance; `--` ends options. Non-option arguments are
 * returned in order through positional[0..*n_positional) (pointers into
 * argv; the array is malloc'ed, caller frees). `--help`/`-h` sets *help to
 * 1, `--help-all` to 2 (else 0). */
SHELF_API int shelf_config_parse_args(shelf_config *c, const char *command, int argc, char **argv,
                            char ***positional, int *n_positional, int *help, shelf_err *err);
/* Prints the options of `command` (flag, type, help, unit, default, bounds):
 * the common rows, and of the model rows those of `models` (a
 * comma-separated list of model names; "*": every model's; NULL or "": none).
 * Unknown names print nothing more. */
SHELF_API void shelf_config_print_help(FILE *f, const char *command, const char *models);

#ifdef __cplusplus
}
#endif
#endif
