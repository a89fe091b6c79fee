/* import.h: importers from files into the store. Each file is imported in one
 * transaction: the first bad record stops the import with an error naming
 * file, line, field and reason, and nothing of that file is stored. */
#ifndef SHELF_IMPORT_H
#define SHELF_IMPORT_H

#include "shelf/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SHELF_FMT_S3REC,  /* "user item_1 ... item_n" per line (+ *_item2attributes.json) */
    SHELF_FMT_PAIRS,  /* "user item" per line, in time order (SASRec form) */
    SHELF_FMT_CSV,    /* header-driven CSV of events, items or users */
    SHELF_FMT_JSONL,  /* JSON Lines of events, items or users */
    SHELF_FMT_ML100K, /* MovieLens-100k u.data (+ u.item), or the folder holding them */
    SHELF_FMT_TAOBAO  /* Taobao UserBehavior: user,item,category,behavior,timestamp */
} shelf_import_format;

/* Parses "s3rec|pairs|csv|jsonl|ml100k|taobao". */
SHELF_API int shelf_import_format_parse(const char *s, shelf_import_format *out);

typedef enum { SHELF_IMPORT_EVENTS, SHELF_IMPORT_ITEMS, SHELF_IMPORT_USERS } shelf_import_what;

typedef struct shelf_import_opts {
    shelf_import_format format;
    shelf_import_what what;      /* csv/jsonl only; others import events */
    const char *attributes_path; /* s3rec: item2attributes JSON; NULL none */
    const char *items_path;      /* ml100k: u.item; NULL: next to u.data if present */
    /* Column/key mapping "field=column,..." for csv/jsonl, e.g.
     * "user=visitorid,item=itemid,ts=timestamp,type=event". NULL: the
     * canonical names (user,item,type,value,ts,rec_id,context; id,kind,title,
     * text,category,brand,price,available,created; other columns become
     * attributes). */
    const char *mapping;
    /* The type of events that name none (s3rec, pairs; csv/jsonl rows without
     * a type column or key): default "view", as the HTTP API's default;
     * counted in the result's n_default_type */
    const char *event_type;
    /* csv/jsonl: event types as the file names them -> the store's,
     * "pv=view,fav=like,remove_from_cart=-" ("-": the row is dropped and
     * counted in n_dropped); a name not mapped is looked up as it is. NULL: none */
    const char *type_map;
    /* Event types to add before the file is read, with their weights:
     * "wishlist=2,compare=0.5" (weights as the built-in types', purchase 5,
     * view 1); a type the store has must have that weight. NULL: none */
    const char *event_types;
    /* csv: the file has no header line; these are its columns in order
     * ("user,item,ts", names as a header's). NULL: the first line is the header */
    const char *columns;
    /* csv/jsonl items: the character between the levels of a category path
     * in the file ('.' for "electronics.audio.headphone"); stored as the
     * store's path "electronics > audio > headphone", so a filter on
     * "electronics" finds the subtree. 0: '>', '/' and '|' only */
    char category_separator;
    char delimiter;         /* csv: 0 means ',' */
    int progress;           /* draw a progress bar on a terminal */
    /* 0 (the default): an import is idempotent. A file whose bytes were
     * imported into this store before is not read again (the result says
     * when), and an event with a timestamp whose user, item, type and ts
     * match one already stored, or one earlier in the file, is counted in
     * n_duplicates instead of stored. Events without a timestamp (ts 0:
     * s3rec, pairs) are only protected by the file check. 1: store all. */
    int allow_duplicates;
} shelf_import_opts;

/* Fills opts with defaults for format. */
SHELF_API void shelf_import_opts_init(shelf_import_opts *o, shelf_import_format format);

/* Why an event row was skipped (csv/jsonl): its user or item id empty, or
 * null-like (NA, N/A, NaN, null, None, nil, any case; JSON null) */
enum { SHELF_SKIP_USER_EMPTY, SHELF_SKIP_USER_NULL, SHELF_SKIP_ITEM_EMPTY, SHELF_SKIP_ITEM_NULL, SHELF_SKIP_N };

typedef struct shelf_import_result {
    uint64_t n_lines;      /* records read */
    uint64_t n_events;     /* events stored */
    uint64_t n_new_users;  /* ids created */
    uint64_t n_new_items;
    uint64_t n_items;      /* item rows written (items files, u.item) */
    uint64_t n_users;      /* user rows written */
    uint64_t n_dropped;    /* event rows dropped by type_map ("-") */
    uint64_t n_skipped[SHELF_SKIP_N];   /* event rows skipped, by reason (no user or item made) */
    uint64_t first_skipped[SHELF_SKIP_N]; /* the line of the first of each (0: none) */
    uint64_t n_default_type;  /* events that named no type and took opts->event_type */
    uint64_t n_new_types;     /* event types opts->event_types added */
    uint64_t n_duplicates;    /* events not stored: the same user, item, type and ts is stored already */
    uint64_t first_duplicate; /* the line of the first of them (0: none) */
    /* 1: this file's bytes (SHA-256) were imported before, at
     * imported_at (unix seconds), storing imported_events events; nothing
     * was read or stored now */
    int already_imported;
    double imported_at;
    uint64_t imported_events;
    double seconds;
} shelf_import_result;

/* Imports path into st in one transaction (st must not be inside one).
 * On error returns a negative code, the store is as before, res is not
 * written, and shelf_store_errmsg(st) names file, line, field and reason:
 * "Beauty.txt:12: field 3 (item): not an integer: 'x1'" (csv and the
 * positional formats: field number and column name), "e.jsonl:4: field
 * 'ts': not a timestamp (unix seconds or ISO 8601): 'soon'" (jsonl: key).
 * Codes: SHELF_EFORMAT bad record (truncated or extra fields, non-integer
 * ids where the format needs them, bad numbers/timestamps/JSON, invalid
 * UTF-8 or NUL bytes, an empty file or a CSV without header), SHELF_ERANGE
 * (a u.data rating outside 1..5), SHELF_ENOTFOUND (missing file, or an event
 * type the store does not know), SHELF_EIO, SHELF_EINVAL (bad options or
 * mapping), SHELF_ENOMEM, SHELF_ESTORE.
 * Input rules: lines of any length; "\n" or "\r\n"; a UTF-8 BOM skipped;
 * blank lines skipped (csv, u.item, taobao: empty ones only). ts: unix seconds or ISO 8601 "YYYY-MM-DD[(T| )HH:MM
 * [:SS[.fff]]][Z| UTC|(+|-)HH:MM]"; empty ts: 0 (insertion order). csv/jsonl
 * events without a type use o->event_type. Item columns/keys that are no
 * field go to the item's attributes JSON and are linked as attributes
 * "name=value"; users' go to their attributes JSON; events' are ignored.
 * res may be NULL. */
SHELF_API int shelf_import_file(shelf_store *st, const char *path, const shelf_import_opts *o,
                      shelf_import_result *res);

#ifdef __cplusplus
}
#endif
#endif
