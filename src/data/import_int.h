/* import_int.h: internals shared by the importers (src/data/import*.c): the
 * growing line reader, the per-import context (event batch, type cache,
 * progress), field parsers and the helpers that name file:line:field. */
#ifndef SHELF_IMPORT_INT_H
#define SHELF_IMPORT_INT_H

#include "core/sbuf_int.h"
#include "shelf/import.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

/* ---- line reader -------------------------------------------------------------
 * Reads a file in large blocks into one growing buffer and hands out lines in
 * place (no copy, no fixed limit): the terminator ("\n" or "\r\n") is replaced
 * by NUL, so a line may be cut into NUL-terminated fields where it lies. A
 * line stays valid until the next call on the reader. */
typedef struct shelf__lines {
    shelf_store *st;  /* errors go to its handle */
    const char *path;
    int fd;
    int eof;
    char *buf;
    size_t cap;       /* allocated; always > end (room for a NUL) */
    size_t beg;       /* first byte not yet handed out */
    size_t end;       /* end of the bytes read */
    size_t rec;       /* start of the current record */
    size_t rec_len;   /* its length, terminator excluded */
    int term;         /* terminator cut after it: 0 none (end of file), 1 "\n", 2 "\r\n" */
    uint64_t line;    /* physical line number of the last line read (1-based) */
    uint64_t rec_line;/* line on which the current record starts */
    uint64_t offset;  /* offset of buf[0] in the (decompressed) text */
    uint64_t size;    /* file size (0 when unknown) */
    struct shelf__unpack *unpack; /* gzip or xz decoder, NULL for plain files */
} shelf__lines;

/* Opens path for reading; gzip and xz files (recognised by their magic
 * bytes, whatever the name) are decompressed on the fly. Errors (on the store's handle): SHELF_ENOTFOUND
 * naming the path when it does not exist, SHELF_EIO when it cannot be read or
 * is a directory, SHELF_ENOMEM. Close with shelf__lines_close (even on
 * failure: it is then a no-op). */
int shelf__lines_open(shelf__lines *r, shelf_store *st, const char *path);
void shelf__lines_close(shelf__lines *r);
/* Next line: 1 and (*line, *len) (NUL-terminated, writable, a UTF-8 BOM at
 * the start of the file skipped), 0 at end of file, or a negative code. */
int shelf__lines_next(shelf__lines *r, char **line, size_t *len);
/* Extends the current record by the next physical line (for quoted CSV
 * fields holding newlines): the terminator between them is put back. 1 and
 * the whole record (pointer may move), 0 at end of file, or a negative code. */
int shelf__lines_extend(shelf__lines *r, char **line, size_t *len);
/* Bytes of the file consumed so far (compressed bytes for packed files, so
 * that progress compares with the file size). */
uint64_t shelf__lines_done(const shelf__lines *r);

/* Reads a whole file into a NUL-terminated malloc'ed buffer (caller frees). */
int shelf__read_file(shelf_store *st, const char *path, char **out, size_t *len);

/* ---- import context ------------------------------------------------------------ */
#define SHELF__BATCH 4096 /* events per shelf_store_add_events call */
#define SHELF__TCACHE 8   /* remembered event type names */

#define SHELF__TMAP 32          /* entries of a type map */
#define SHELF__IMP_DROP 0xffffffffu /* a type the map drops (shelf__imp_type's *id; it returns 0) */

typedef struct shelf__imp {
    shelf_store *st;
    const shelf_import_opts *o;
    shelf_import_result res;
    const char *path;   /* file being read, for messages */
    uint64_t line;      /* line of the record being read (0: none) */
    shelf__lines *rd;   /* reader of path (progress), or NULL */
    shelf_progress *prog;
    shelf_event *batch; /* [SHELF__BATCH] */
    uint64_t *batch_line; /* [SHELF__BATCH] the line each came from */
    size_t n_batch;
    /* events already stored or read (opts->allow_duplicates 0): the keys
     * (user, item, type, ts) of the events with a timestamp, open addressing */
    struct shelf__evkey *seen; /* [seen_cap + SHELF__BATCH]: the table, then a batch's keys */
    size_t *seen_home;         /* [SHELF__BATCH] their home slots */
    size_t seen_cap, n_seen; /* cap: a power of two, or 0 before the first flush */
    shelf_arena *arena; /* rec_id/context text of the batched events */
    struct {
        char name[32];
        size_t len;
        uint32_t id;
    } tcache[SHELF__TCACHE];
    unsigned n_tcache, tcache_next;
    /* the last user id looked up (events often come in runs of one user) */
    char *last_user;
    size_t last_user_len, last_user_cap;
    uint32_t last_user_idx;
    int has_last_user;
    char *scratch; /* per-record scratch (latin-1 conversion, JSON text) */
    size_t scratch_cap;
    /* opts->type_map parsed: a file's type name -> the store's type (SHELF__IMP_DROP: dropped) */
    struct {
        char name[32];
        size_t len;
        uint32_t id;
    } tmap[SHELF__TMAP];
    unsigned n_tmap;
    shelf__sbuf cat; /* a category path rewritten (opts->category_separator) */
} shelf__imp;

/* Sets the store's error to "path:line: field N (name): <fmt...>" and
 * returns code. field 0 with a name gives "field 'name'"; field 0 and no
 * name: no field part; imp->line 0: no line part. */
int shelf__imp_fail(shelf__imp *imp, int code, int field, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same with the offending value quoted at the end: "...: what: 'x1'"
 * (at most 40 bytes of it, non-printable bytes escaped). */
int shelf__imp_bad(shelf__imp *imp, int code, int field, const char *name, const char *what,
                   const char *val, size_t len);
/* Prefixes the store's current message (left by a failed store call) with
 * "path:line: " and returns rc. */
int shelf__imp_store_fail(shelf__imp *imp, int rc);

/* An event row's user or item id (user: which) that cannot name anyone:
 * empty or null-like (NA, N/A, NaN, null, None, nil in any case; null:
 * a JSON null). Counts the row as skipped and returns 1; 0 for a real id. */
int shelf__imp_skip_id(shelf__imp *imp, const char *id, size_t len, int user);

/* An item's category as the store keeps paths: with opts->category_separator,
 * "a.b.c" becomes "a > b > c" (levels trimmed, empty ones dropped), in a
 * buffer valid until the next call; else (or NULL) cat itself. NULL when out
 * of memory with cat non-NULL is not possible: the text then stays as it is. */
const char *shelf__imp_category(shelf__imp *imp, const char *cat);

/* Queues one event (rec_id/context must stay valid until the batch is
 * flushed: copy them with shelf__imp_keep). */
int shelf__imp_flush(shelf__imp *imp);
static inline int shelf__imp_event(shelf__imp *imp, const shelf_event *ev)
{
    imp->batch_line[imp->n_batch] = imp->line;
    imp->batch[imp->n_batch++] = *ev;
    return imp->n_batch == SHELF__BATCH ? shelf__imp_flush(imp) : 0;
}
/* Copy of s[0..len) that lives until the next flush, or NULL (ENOMEM). */
const char *shelf__imp_keep(shelf__imp *imp, const char *s, size_t len);
/* Counts one record and now and then moves the progress bar. */
void shelf__imp_tick(shelf__imp *imp);

/* Event type id of name[0..len) (cached). Unknown: SHELF_ENOTFOUND naming
 * the field. */
int shelf__imp_type(shelf__imp *imp, const char *name, size_t len, int field, const char *fname,
                    uint32_t *id);
/* Type of opts->event_type (default "view"). */
int shelf__imp_default_type(shelf__imp *imp, uint32_t *id);
/* User index of ext[0..len), created if new (the last one is remembered). */
int shelf__imp_user(shelf__imp *imp, const char *ext, size_t len, uint32_t *idx);
static inline int shelf__imp_item(shelf__imp *imp, const char *ext, size_t len, uint32_t *idx,
                                  int *created)
{
    int rc = shelf_store_item_idx(imp->st, ext, len, 1, idx, created);
    return rc ? shelf__imp_store_fail(imp, rc) : 0;
}
/* Scratch buffer of at least n bytes (kept across records), or NULL. */
char *shelf__imp_scratch(shelf__imp *imp, size_t n);

/* Checks that rec[0..len) is valid UTF-8 without NUL bytes. On a bad byte calls
 * field_of(ctx, rec, offset) (may be NULL) to name the field and fails with
 * SHELF_EFORMAT: "field N (name): invalid UTF-8 at byte column C (0xNN)". */
typedef int (*shelf__field_of_fn)(const void *ctx, const char *rec, size_t off, const char **name);
int shelf__imp_utf8(shelf__imp *imp, const char *rec, size_t len, shelf__field_of_fn field_of,
                    const void *ctx);

/* An event's value (a float) from a parsed number: SHELF_ERANGE naming the
 * field when it is not finite or beyond the range of a float (a cast would
 * store Inf). */
int shelf__imp_value(shelf__imp *imp, double v, int field, const char *name, float *out);
/* Checks every string and member name of j, parsed from JSON text that went
 * through shelf__json_mark_nul (core/check_int.h): valid UTF-8 without NUL
 * (an escaped \u0000 included). Else SHELF_EFORMAT naming the place: field
 * N (name) and the JSON path below it when the field holds the JSON, the
 * path as the field's name ("field 'attributes.color'") when j is the record. */
int shelf__imp_json_texts(shelf__imp *imp, const cJSON *j, int field, const char *name);

/* ---- csv/jsonl record fields and the mapping option ---------------------------- */
enum {
    SHELF__EV_USER, SHELF__EV_ITEM, SHELF__EV_TYPE, SHELF__EV_VALUE, SHELF__EV_TS,
    SHELF__EV_REC_ID, SHELF__EV_CONTEXT, SHELF__EV_N
};
enum {
    SHELF__IT_ID, SHELF__IT_KIND, SHELF__IT_TITLE, SHELF__IT_TEXT, SHELF__IT_CATEGORY,
    SHELF__IT_BRAND, SHELF__IT_PRICE, SHELF__IT_AVAILABLE, SHELF__IT_CREATED, SHELF__IT_N
};
enum { SHELF__US_ID, SHELF__US_CREATED, SHELF__US_N };
#define SHELF__MAXF 9

/* The fields of opts->what and the column (csv) or key (jsonl) each is read
 * from: the canonical name, or the one opts->mapping gives. */
typedef struct shelf__fieldmap {
    size_t n;                 /* fields of the record kind */
    const char *const *names; /* their canonical names */
    const char *key[SHELF__MAXF];
    int mapped[SHELF__MAXF];  /* 1 when the mapping named it */
    char *text;               /* copy of the mapping the keys point into */
} shelf__fieldmap;
/* SHELF_EINVAL naming the bad entry of the mapping. Free with
 * shelf__fieldmap_free (also after failure). */
int shelf__fieldmap_init(shelf__imp *imp, shelf__fieldmap *m);
void shelf__fieldmap_free(shelf__fieldmap *m);

/* ---- the importers (one per format; inside the driver's transaction) ------------- */
int shelf__import_s3rec(shelf__imp *imp, const char *path);
int shelf__import_pairs(shelf__imp *imp, const char *path);
int shelf__import_csv(shelf__imp *imp, const char *path);
int shelf__import_jsonl(shelf__imp *imp, const char *path);
int shelf__import_ml100k(shelf__imp *imp, const char *path);
int shelf__import_taobao(shelf__imp *imp, const char *path);
/* Opens path for an importer: sets imp->path/rd/line and starts progress. */
int shelf__imp_open(shelf__imp *imp, shelf__lines *r, const char *path);
/* Ends the progress of the file and closes the reader. */
void shelf__imp_close(shelf__imp *imp, shelf__lines *r);
/* The end of a file that was read without error (rc == 0): a file without a
 * single record is an error ("empty file"). Returns rc or that error. */
int shelf__imp_nonempty(shelf__imp *imp, int rc, uint64_t n_records);

/* ---- field parsers: 0 on success, -1 on a malformed value ------------------------- */
/* Decimal integer: optional sign, digits; surrounding spaces allowed. */
int shelf__parse_i64(const char *s, size_t n, int64_t *out);
/* Finite decimal number ([-+]digits[.digits][e[-+]digits]); spaces allowed
 * around. Locale independent. */
int shelf__parse_f64(const char *s, size_t n, double *out);
/* Timestamp: unix seconds (integer, an optional fraction ignored) or ISO 8601
 * "YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|[ ]UTC|(+|-)HH[:]MM]" (UTC unless an
 * offset). */
int shelf__parse_ts(const char *s, size_t n, int64_t *out);
/* Non-negative integer id: digits only. canon, clen: the id without leading
 * zeros ("007" -> "7"), a suffix of s. */
int shelf__parse_id(const char *s, size_t n, const char **canon, size_t *clen);
/* Boolean: 1/0, true/false, yes/no (any case). */
int shelf__parse_bool(const char *s, size_t n, int *out);


#endif
