/* test_fault_import.c: an import into an on-disk store whose SQLite I/O fails
 * at the Nth write-side call (fault_vfs.h), for every N of the import and of
 * the store's close, as a full disk (that call and all after it) and as a
 * one-off device error: the import ends with an error naming what failed,
 * the store passes PRAGMA integrity_check, what was committed before is
 * intact, the import left nothing or everything, and the same handle imports
 * the file once the disk is back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shelf/import.h"
#include "shelf/store.h"

#include "fault_vfs.h"
#include "test_util.h"

/* the store as committed before any import under test; its copy per run */
static char p_base[768], p_work[768];
/* the files imported under faults */
static char p_events[768], p_items[768];

/* the tables a digest covers: all the import writes, ordered */
static const char *const tables[] = {
    "SELECT * FROM users ORDER BY idx",   "SELECT * FROM items ORDER BY idx",
    "SELECT * FROM events ORDER BY id",   "SELECT * FROM attrs ORDER BY id",
    "SELECT * FROM item_attrs ORDER BY item, attr", "SELECT * FROM event_types ORDER BY id",
};
#define N_TABLES (sizeof tables / sizeof tables[0])

typedef struct digest {
    uint64_t t[N_TABLES];
} digest;

static digest digest_of(sqlite3 *db)
{
    digest d;
    for (size_t i = 0; i < N_TABLES; i++) d.t[i] = fault_db_digest(db, tables[i]);
    return d;
}

static int digest_eq(const digest *a, const digest *b) { return memcmp(a, b, sizeof *a) == 0; }

/* n events of users PREFIX0.. and items IPREFIX0.. as a CSV file */
static void write_events(const char *path, int n, const char *user, int n_users, const char *item, int n_items,
                         int64_t ts0)
{
    static const char *const types[] = {"view", "click", "cart", "purchase"};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "user,item,type,value,ts\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%d,%s%d,%s,%d,%lld\n", user, (i * 7) % n_users, item, (i * 13) % n_items, types[i % 4],
                i % 5, (long long)(ts0 + i));
    assert_int_equal(fclose(f), 0);
}

/* n items from number first: new ones and, below the base's count, updates */
static void write_items(const char *path, int first, int n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "id,title,category,price,created,color,size\n");
    for (int i = first; i < first + n; i++)
        fprintf(f, "i%d,Item %d with a longer title,Home > Set %d,%d.5,%d,c%d,%d\n", i, i, i % 9, i, 1700000000 + i,
                i % 11, i % 4);
    assert_int_equal(fclose(f), 0);
}

static int import_csv(shelf_store *st, const char *path, shelf_import_what what)
{
    shelf_import_opts o;
    shelf_import_opts_init(&o, SHELF_FMT_CSV);
    o.what = what;
    return shelf_import_file(st, path, &o, NULL);
}

static void import_ok(shelf_store *st, const char *path, shelf_import_what what)
{
    int rc = import_csv(st, path, what);
    if (rc) fprintf(stderr, "import %s: %s\n", path, shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
}

/* the base store's bytes, closed (no -wal): each run starts from a copy */
static char *base_bytes;
static size_t base_len;

static void copy_base(void)
{
    fault_rm_store(p_work);
    FILE *f = fopen(p_work, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(base_bytes, 1, base_len, f), base_len);
    assert_int_equal(fclose(f), 0);
}

static int group_setup(void **state)
{
    (void)state;
    fault_install();
    tmp_init("fault_import");
    snprintf(p_base, sizeof p_base, "%s", tmp_path("base.db"));
    snprintf(p_work, sizeof p_work, "%s", tmp_path("work.db"));
    snprintf(p_events, sizeof p_events, "%s", tmp_path("events.csv"));
    snprintf(p_items, sizeof p_items, "%s", tmp_path("items.csv"));
    /* earlier data: 60 items with attributes, 400 events of 50 users */
    fault_rm_store(p_base);
    const char *base_items = tmp_path("base_items.csv"), *base_events = tmp_path("base_events.csv");
    write_items(base_items, 0, 60);
    write_events(base_events, 400, "u", 50, "i", 60, 1700000000);
    shelf_store *st = fault_store_open(p_base, SHELF_STORE_CREATE);
    import_ok(st, base_items, SHELF_IMPORT_ITEMS);
    import_ok(st, base_events, SHELF_IMPORT_EVENTS);
    shelf_store_close(st);
    FILE *f = fopen(p_base, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    base_len = (size_t)ftell(f);
    rewind(f);
    assert_non_null(base_bytes = malloc(base_len));
    assert_int_equal(fread(base_bytes, 1, base_len, f), base_len);
    fclose(f);
    /* under test: 300 events, a third of them by 40 new users; 80 items,
     * the first 40 updates of earlier ones */
    write_events(p_events, 300, "u", 90, "i", 60, 1710000000);
    write_items(p_items, 20, 80);
    return 0;
}

/* the two states a store may be in: before the import of path, after it */
static void outcomes(const char *path, shelf_import_what what, digest *before, digest *after)
{
    copy_base();
    sqlite3 *db = fault_db_open(p_work);
    *before = digest_of(db);
    sqlite3_close(db);
    shelf_store *st = fault_store_open(p_work, 0);
    import_ok(st, path, what);
    shelf_store_close(st);
    db = fault_db_open(p_work);
    *after = digest_of(db);
    sqlite3_close(db);
    assert_false(digest_eq(before, after));
}

static int group_teardown(void **state)
{
    (void)state;
    free(base_bytes);
    return 0;
}

/* Runs the import of path into a copy of the base store with the Nth
 * write-side call failing, for N = 1, 2, ... until a run's import and close
 * make fewer calls than N; checks each run. */
static void import_under_faults(const char *path, shelf_import_what what, fault_mode mode)
{
    digest before, after;
    outcomes(path, what, &before, &after);
    sqlite3 *db;
    shelf_store *st;

    int hit[FAULT_N_OPS][FAULT_N_FILES] = {{0}};
    int n_failed = 0, n_left_all = 0, n_close = 0;
    long n;
    for (n = 1;; n++) {
        copy_base();
        st = fault_store_open(p_work, 0);
        fault_arm(n, mode);
        int rc = import_csv(st, path, what);
        int injected_in_import = fault_injected() > 0;
        if (injected_in_import) {
            hit[atomic_load(&fault.first_op)][atomic_load(&fault.first_file)]++;
            /* a failure says it failed, and what */
            const char *msg = shelf_store_errmsg(st);
            if (!rc) fprintf(stderr, "N=%ld: %s call failed, import answered 0\n", n, fault_op_name(fault.first_op));
            assert_true(rc < 0);
            if (n_failed++ < 3) fprintf(stderr, "    N=%ld (%s %s): %s\n", n, fault_op_name(fault.first_op),
                                        fault_file_name(fault.first_file), msg);
            assert_non_null(strstr(msg, "store"));
            assert_true(strstr(msg, "disk is full") || strstr(msg, "I/O error"));
            /* the disk is back: the store as committed is nothing or all of the import */
            fault_disarm();
            db = fault_db_open(p_work);
            fault_db_check_integrity(db, "after a failed import");
            digest now = digest_of(db);
            sqlite3_close(db);
            if (!digest_eq(&now, &before)) {
                assert_true(digest_eq(&now, &after));
                n_left_all++;
            } else {
                /* the same handle imports the file now */
                import_ok(st, path, what);
            }
        } else if (rc) {
            fprintf(stderr, "N=%ld: no fault, import failed: %s\n", n, shelf_store_errmsg(st));
            fail();
        }
        shelf_store_close(st); /* still armed when the import went through: the checkpoint */
        long ops = fault_disarm();
        int injected = fault_injected() > 0;
        if (injected && !injected_in_import) {
            hit[atomic_load(&fault.first_op)][atomic_load(&fault.first_file)]++;
            n_close++;
        }
        db = fault_db_open(p_work);
        fault_db_check_integrity(db, "after the store was closed");
        digest end = digest_of(db);
        if (!digest_eq(&end, &after)) fprintf(stderr, "N=%ld: the store lost or doubled rows\n", n);
        assert_true(digest_eq(&end, &after));
        sqlite3_close(db);
        if (!injected) {
            assert_true(ops < n); /* the run made fewer calls than N */
            break;
        }
    }
    fprintf(stderr, "%s import, %s: %ld write-side calls in import and close; %d imports failed "
                    "(%d left the whole file committed), %d faults in the close\n",
            what == SHELF_IMPORT_ITEMS ? "items" : "events", mode == FAULT_FULL ? "disk full" : "I/O error", n - 1,
            n_failed, n_left_all, n_close);
    for (int op = 0; op < FAULT_N_OPS; op++)
        for (int f = 0; f < FAULT_N_FILES; f++)
            if (hit[op][f]) fprintf(stderr, "    first failure at a %s of the %s: %d runs\n", fault_op_name(op),
                                    fault_file_name(f), hit[op][f]);
    /* the runs reached the commit's WAL writes and sync and the checkpoint */
    assert_true(n_failed > 0);
    assert_true(hit[FAULT_OP_WRITE][FAULT_FILE_WAL] > 0);
    assert_true(hit[FAULT_OP_SYNC][FAULT_FILE_WAL] > 0);
    assert_true(hit[FAULT_OP_WRITE][FAULT_FILE_DB] > 0);
}

/* The same, with the process dying right after the failed call (before the
 * store is closed or written again): a child process imports and exits,
 * the store is then opened afresh and recovers from what is on disk. The
 * store passes the integrity check and holds the earlier rows and nothing
 * or all of the file; an import that answered 0 is there. One case is
 * ambiguous: when the commit's sync fails the WAL already holds the whole
 * transaction, and recovery after a crash finds it although the import
 * answered an error (without a crash the next write overwrites it). */
static void import_then_crash(const char *path, shelf_import_what what, fault_mode mode)
{
    digest before, after;
    outcomes(path, what, &before, &after);
    sqlite3 *db;
    shelf_store *st;
    int n_failed_there = 0, n_failed = 0;
    long n;
    for (n = 1;; n++) {
        copy_base();
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            st = fault_store_open(p_work, 0);
            fault_arm(n, mode);
            int rc = import_csv(st, path, what);
            /* 1: failed at a write, 5: at a sync, 2: ran past N */
            int at_sync = atomic_load(&fault.first_op) == FAULT_OP_SYNC;
            _exit(fault_injected() ? (rc ? (at_sync ? 5 : 1) : 3) : rc ? 4 : 2);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        int code = WEXITSTATUS(status);
        if (code != 1 && code != 2 && code != 5) fprintf(stderr, "N=%ld: the child exited %d\n", n, code);
        assert_true(code == 1 || code == 2 || code == 5);
        db = fault_db_open(p_work);
        fault_db_check_integrity(db, "after a crash");
        digest now = digest_of(db);
        sqlite3_close(db);
        int none = digest_eq(&now, &before), all = digest_eq(&now, &after);
        if (!none && !all) fprintf(stderr, "N=%ld: after the crash the store holds part of the import\n", n);
        assert_true(none || all);
        if (code == 2) {
            assert_true(all);
            break;
        }
        n_failed++;
        n_failed_there += all;
        /* only a failed sync leaves a whole transaction behind */
        if (all && code != 5) fprintf(stderr, "N=%ld: a failed write, yet the import is in the store\n", n);
        assert_true(!all || code == 5);
    }
    fprintf(stderr, "%s import, %s, then a crash: %d runs failed, %d of them found whole after recovery\n",
            what == SHELF_IMPORT_ITEMS ? "items" : "events", mode == FAULT_FULL ? "disk full" : "I/O error",
            n_failed, n_failed_there);
    assert_true(n_failed > 0);
}

static void test_events_crash_full(void **state) { (void)state; import_then_crash(p_events, SHELF_IMPORT_EVENTS, FAULT_FULL); }
static void test_events_crash_io(void **state) { (void)state; import_then_crash(p_events, SHELF_IMPORT_EVENTS, FAULT_IOERR); }

static void test_events_disk_full(void **state) { (void)state; import_under_faults(p_events, SHELF_IMPORT_EVENTS, FAULT_FULL); }
static void test_events_io_error(void **state) { (void)state; import_under_faults(p_events, SHELF_IMPORT_EVENTS, FAULT_IOERR); }
static void test_items_disk_full(void **state) { (void)state; import_under_faults(p_items, SHELF_IMPORT_ITEMS, FAULT_FULL); }
static void test_items_io_error(void **state) { (void)state; import_under_faults(p_items, SHELF_IMPORT_ITEMS, FAULT_IOERR); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_disk_full),
        cmocka_unit_test(test_events_io_error),
        cmocka_unit_test(test_items_disk_full),
        cmocka_unit_test(test_items_io_error),
        cmocka_unit_test(test_events_crash_full),
        cmocka_unit_test(test_events_crash_io),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
