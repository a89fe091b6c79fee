/* fuzz_import.c: the importers (src/data/import*.c) on one input each, into
 * a fresh in-memory store. The first byte picks the format and record kind
 * (the table below); the rest is the file, written to the scratch folder.
 * Formats with a second file (s3rec's item attributes, ml100k's u.item) or
 * a field mapping take it after the first NUL byte or before it. A
 * successful import is read back as a snapshot, the models' view of it. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shelf/import.h"
#include "shelf/snapshot.h"

typedef enum { SIDE_NONE, SIDE_AFTER_NUL, MAP_BEFORE_NUL } side_kind;

typedef struct {
    char key; /* the input's first byte */
    shelf_import_format format;
    shelf_import_what what;
    side_kind side;
    char delimiter;
} mode;

static const mode modes[] = {
    {'c', SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, SIDE_NONE, 0},
    {'i', SHELF_FMT_CSV, SHELF_IMPORT_ITEMS, SIDE_NONE, 0},
    {'u', SHELF_FMT_CSV, SHELF_IMPORT_USERS, SIDE_NONE, 0},
    {'j', SHELF_FMT_JSONL, SHELF_IMPORT_EVENTS, SIDE_NONE, 0},
    {'k', SHELF_FMT_JSONL, SHELF_IMPORT_ITEMS, SIDE_NONE, 0},
    {'v', SHELF_FMT_JSONL, SHELF_IMPORT_USERS, SIDE_NONE, 0},
    {'s', SHELF_FMT_S3REC, SHELF_IMPORT_EVENTS, SIDE_AFTER_NUL, 0},
    {'p', SHELF_FMT_PAIRS, SHELF_IMPORT_EVENTS, SIDE_NONE, 0},
    {'m', SHELF_FMT_ML100K, SHELF_IMPORT_EVENTS, SIDE_AFTER_NUL, 0},
    {'t', SHELF_FMT_TAOBAO, SHELF_IMPORT_EVENTS, SIDE_NONE, 0},
    {'D', SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, SIDE_NONE, '\t'},
    {'M', SHELF_FMT_CSV, SHELF_IMPORT_EVENTS, MAP_BEFORE_NUL, 0},
    {'N', SHELF_FMT_JSONL, SHELF_IMPORT_EVENTS, MAP_BEFORE_NUL, 0},
    {'O', SHELF_FMT_CSV, SHELF_IMPORT_ITEMS, MAP_BEFORE_NUL, ';'},
    {'P', SHELF_FMT_JSONL, SHELF_IMPORT_USERS, MAP_BEFORE_NUL, 0},
};
#define N_MODES (sizeof modes / sizeof modes[0])

static shelf_store *st; /* an empty store */
static int verbose; /* $SHELF_FUZZ_VERBOSE: say what each input did (corpus work) */

static const mode *mode_of(uint8_t b)
{
    for (size_t k = 0; k < N_MODES; k++)
        if (modes[k].key == (char)b) return &modes[k];
    return &modes[b % N_MODES];
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    shelf_log_set_level(SHELF_LOG_OFF);
    fuzz_dir();
    verbose = getenv("SHELF_FUZZ_VERBOSE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const mode *md = mode_of(data[0]);
    const uint8_t *main_part = data + 1, *side = NULL;
    size_t n_main = size - 1, n_side = 0;
    if (md->side == SIDE_AFTER_NUL) fuzz_split(data + 1, size - 1, &main_part, &n_main, &side, &n_side);
    char *mapping = NULL;
    if (md->side == MAP_BEFORE_NUL) {
        const uint8_t *m;
        size_t n_m;
        fuzz_split(data + 1, size - 1, &m, &n_m, &main_part, &n_main);
        mapping = fuzz_strndup(m, n_m);
    }

    /* ml100k finds u.item beside u.data by itself: only this input's may be there */
    const char *path = fuzz_path(md->format == SHELF_FMT_ML100K ? "u.data" : "input");
    const char *side_path = fuzz_path(md->format == SHELF_FMT_ML100K ? "u.item" : "attributes.json");
    unlink(side_path);
    fuzz_write(path, main_part, n_main);
    shelf_import_opts o;
    shelf_import_opts_init(&o, md->format);
    o.what = md->what;
    o.delimiter = md->delimiter;
    o.mapping = mapping;
    if (side && n_side) {
        fuzz_write(side_path, side, n_side);
        if (md->format == SHELF_FMT_S3REC) o.attributes_path = side_path;
        else o.items_path = side_path;
    }

    /* the store is reused while imports fail (the contract: a failed import
     * leaves it as before, checked here) and opened afresh after one that
     * wrote, so each input meets an empty store */
    if (!st) {
        shelf_err err = {0};
        if (shelf_store_open(":memory:", SHELF_STORE_CREATE, &st, &err)) fuzz_die("store: %s", err.msg);
    }
    const uint32_t n_users = shelf_store_n_users(st), n_items = shelf_store_n_items(st);
    const uint64_t last_event = shelf_store_last_event_id(st);
    shelf_import_result res;
    int rc = shelf_import_file(st, path, &o, &res);
    if (verbose) fprintf(stderr, "fuzz_import: mode '%c': %s\n", md->key, rc ? shelf_store_errmsg(st) : "imported");
    if (rc == 0) {
        shelf_snapshot *sn = NULL;
        if (shelf_snapshot_from_store(st, 0, &sn)) fuzz_die("snapshot after import: %s", shelf_store_errmsg(st));
        shelf_snapshot_free(sn);
        shelf_store_close(st);
        st = NULL;
    } else {
        if (!shelf_store_errmsg(st)[0]) fuzz_die("import failed (%d) without a message", rc);
        if (shelf_store_n_users(st) != n_users || shelf_store_n_items(st) != n_items ||
            shelf_store_last_event_id(st) != last_event)
            fuzz_die("a failed import (%d: %s) changed the store", rc, shelf_store_errmsg(st));
    }
    free(mapping);
    return 0;
}
