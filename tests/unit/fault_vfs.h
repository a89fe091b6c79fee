/* fault_vfs.h: fault injection for the store tests (test_fault_*.c). An SQLite
 * VFS registered as the default one in front of the real (unix) VFS: it
 * counts the write-side calls of every file SQLite opens (xWrite, xTruncate,
 * xSync) and makes the Nth fail, as a full disk or a failing device would.
 * Beside it, checks made through the real VFS: integrity, digests of tables.
 * Include after <cmocka.h>. FAULT_TRACE=1 in the environment prints every
 * counted call. */
#ifndef SHELF_FAULT_VFS_H
#define SHELF_FAULT_VFS_H

#include <sqlite3.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shelf/store.h"

/* How the Nth call fails. FAULT_FULL: a full disk, every write-side call
 * from the Nth on fails until disarmed, and the Nth write leaves half its
 * bytes behind (a torn write). FAULT_IOERR: a device error on the Nth call
 * only; the ones after it succeed. */
typedef enum { FAULT_FULL, FAULT_IOERR } fault_mode;

/* which call failed first since arming */
enum { FAULT_OP_WRITE, FAULT_OP_SYNC, FAULT_OP_TRUNCATE, FAULT_N_OPS };
/* in which file */
enum { FAULT_FILE_DB, FAULT_FILE_WAL, FAULT_FILE_JOURNAL, FAULT_FILE_OTHER, FAULT_N_FILES };

static struct {
    sqlite3_vfs vfs;          /* the shim */
    sqlite3_vfs *real;        /* the VFS that was the default */
    sqlite3_io_methods io;    /* the shim's file methods */
    atomic_long ops;          /* write-side calls since arming */
    atomic_long fail_at;      /* 0: disarmed */
    atomic_int mode;
    atomic_long injected;     /* failures returned since arming */
    atomic_int first_op, first_file; /* of the first injected failure */
} fault;

typedef struct fault_file {
    sqlite3_file base;
    int kind;                 /* FAULT_FILE_* */
    sqlite3_file *real;       /* right after this struct, szOsFile of the real VFS */
} fault_file;

static const char *fault_op_name(int op)
{
    static const char *const names[] = {"write", "sync", "truncate"};
    return op >= 0 && op < FAULT_N_OPS ? names[op] : "-";
}

static const char *fault_file_name(int kind)
{
    static const char *const names[] = {"db", "wal", "journal", "other"};
    return kind >= 0 && kind < FAULT_N_FILES ? names[kind] : "-";
}

/* 0: go on with the call; else the SQLite code it returns */
static int fault_check(fault_file *f, int op)
{
    long at = atomic_load(&fault.fail_at);
    if (at <= 0) return 0;
    long k = atomic_fetch_add(&fault.ops, 1) + 1;
    if (getenv("FAULT_TRACE"))
        fprintf(stderr, "  call %ld: %s of %s\n", k, fault_op_name(op), fault_file_name(f->kind));
    int mode = atomic_load(&fault.mode);
    if (k < at || (mode == FAULT_IOERR && k > at)) return 0;
    if (atomic_fetch_add(&fault.injected, 1) == 0) {
        atomic_store(&fault.first_op, op);
        atomic_store(&fault.first_file, f->kind);
    }
    if (op == FAULT_OP_SYNC) return SQLITE_IOERR_FSYNC;
    if (op == FAULT_OP_TRUNCATE) return SQLITE_IOERR_TRUNCATE;
    return mode == FAULT_FULL ? SQLITE_FULL : SQLITE_IOERR_WRITE;
}

static int fault_write(sqlite3_file *file, const void *buf, int n, sqlite3_int64 off)
{
    fault_file *f = (fault_file *)file;
    int rc = fault_check(f, FAULT_OP_WRITE);
    if (!rc) return f->real->pMethods->xWrite(f->real, buf, n, off);
    /* a disk that fills up mid-write keeps what fitted */
    if (rc == SQLITE_FULL && n > 1) f->real->pMethods->xWrite(f->real, buf, n / 2, off);
    return rc;
}

static int fault_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    fault_file *f = (fault_file *)file;
    int rc = fault_check(f, FAULT_OP_TRUNCATE);
    return rc ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int fault_sync(sqlite3_file *file, int flags)
{
    fault_file *f = (fault_file *)file;
    int rc = fault_check(f, FAULT_OP_SYNC);
    return rc ? rc : f->real->pMethods->xSync(f->real, flags);
}

/* the other methods pass through */
#define FAULT_REAL(file) (((fault_file *)(file))->real)
#define FAULT_PASS(name, params, args)                                                                             \
    static int fault_##name params { return FAULT_REAL(file)->pMethods->name args; }
FAULT_PASS(xClose, (sqlite3_file *file), (FAULT_REAL(file)))
FAULT_PASS(xRead, (sqlite3_file *file, void *buf, int n, sqlite3_int64 off), (FAULT_REAL(file), buf, n, off))
FAULT_PASS(xFileSize, (sqlite3_file *file, sqlite3_int64 *size), (FAULT_REAL(file), size))
FAULT_PASS(xLock, (sqlite3_file *file, int lock), (FAULT_REAL(file), lock))
FAULT_PASS(xUnlock, (sqlite3_file *file, int lock), (FAULT_REAL(file), lock))
FAULT_PASS(xCheckReservedLock, (sqlite3_file *file, int *out), (FAULT_REAL(file), out))
FAULT_PASS(xFileControl, (sqlite3_file *file, int op, void *arg), (FAULT_REAL(file), op, arg))
FAULT_PASS(xSectorSize, (sqlite3_file *file), (FAULT_REAL(file)))
FAULT_PASS(xDeviceCharacteristics, (sqlite3_file *file), (FAULT_REAL(file)))
FAULT_PASS(xShmMap, (sqlite3_file *file, int pg, int sz, int extend, void volatile **p),
           (FAULT_REAL(file), pg, sz, extend, p))
FAULT_PASS(xShmLock, (sqlite3_file *file, int off, int n, int flags), (FAULT_REAL(file), off, n, flags))
FAULT_PASS(xShmUnmap, (sqlite3_file *file, int del), (FAULT_REAL(file), del))
FAULT_PASS(xFetch, (sqlite3_file *file, sqlite3_int64 off, int n, void **p), (FAULT_REAL(file), off, n, p))
FAULT_PASS(xUnfetch, (sqlite3_file *file, sqlite3_int64 off, void *p), (FAULT_REAL(file), off, p))
static void fault_xShmBarrier(sqlite3_file *file) { FAULT_REAL(file)->pMethods->xShmBarrier(FAULT_REAL(file)); }

static int fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    fault_file *f = (fault_file *)file;
    f->real = (sqlite3_file *)(f + 1);
    f->kind = (flags & SQLITE_OPEN_MAIN_DB)        ? FAULT_FILE_DB
              : (flags & SQLITE_OPEN_WAL)          ? FAULT_FILE_WAL
              : (flags & SQLITE_OPEN_MAIN_JOURNAL) ? FAULT_FILE_JOURNAL
                                                   : FAULT_FILE_OTHER;
    int rc = fault.real->xOpen(fault.real, name, f->real, flags, out_flags);
    /* without methods SQLite never calls xClose on it */
    f->base.pMethods = f->real->pMethods ? &fault.io : NULL;
    return rc;
}

/* the VFS calls that take the VFS itself get the real one */
static int fault_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    return fault.real->xDelete(fault.real, name, sync_dir);
}
static int fault_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    return fault.real->xAccess(fault.real, name, flags, out);
}
static int fault_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    return fault.real->xFullPathname(fault.real, name, n, out);
}

/* Registers the shim as the default VFS, disarmed (then it only passes calls
 * through). Call before any store is opened; once per process. */
static void fault_install(void)
{
    fault.real = sqlite3_vfs_find(NULL);
    assert_non_null(fault.real);
    assert_true(fault.real->iVersion >= 2);
    fault.vfs = *fault.real;
    fault.vfs.zName = "shelf-fault";
    fault.vfs.szOsFile = (int)sizeof(fault_file) + fault.real->szOsFile;
    fault.vfs.pNext = NULL;
    fault.vfs.xOpen = fault_open;
    fault.vfs.xDelete = fault_delete;
    fault.vfs.xAccess = fault_access;
    fault.vfs.xFullPathname = fault_full_pathname;
    fault.io = (sqlite3_io_methods){
        .iVersion = 3, .xClose = fault_xClose, .xRead = fault_xRead, .xWrite = fault_write,
        .xTruncate = fault_truncate, .xSync = fault_sync, .xFileSize = fault_xFileSize, .xLock = fault_xLock,
        .xUnlock = fault_xUnlock, .xCheckReservedLock = fault_xCheckReservedLock,
        .xFileControl = fault_xFileControl, .xSectorSize = fault_xSectorSize,
        .xDeviceCharacteristics = fault_xDeviceCharacteristics, .xShmMap = fault_xShmMap,
        .xShmLock = fault_xShmLock, .xShmBarrier = fault_xShmBarrier, .xShmUnmap = fault_xShmUnmap,
        .xFetch = fault_xFetch, .xUnfetch = fault_xUnfetch};
    assert_int_equal(sqlite3_vfs_register(&fault.vfs, 1), SQLITE_OK);
}

/* Arms the fault: the nth write-side call from now (1-based) fails. n == 0
 * only counts (nothing fails). */
static void fault_arm(long n, fault_mode mode)
{
    atomic_store(&fault.fail_at, 0);
    atomic_store(&fault.ops, 0);
    atomic_store(&fault.injected, 0);
    atomic_store(&fault.first_op, -1);
    atomic_store(&fault.first_file, -1);
    atomic_store(&fault.mode, (int)mode);
    atomic_store(&fault.fail_at, n > 0 ? n : LONG_MAX);
}

/* Stops failing and counting; returns the write-side calls counted. */
static long fault_disarm(void)
{
    atomic_store(&fault.fail_at, 0);
    return atomic_load(&fault.ops);
}

static long fault_injected(void) { return atomic_load(&fault.injected); }

/* ---- checks through the real VFS ------------------------------------------------------------ */

/* Opens path read-write on the real VFS, past the shim. */
static sqlite3 *fault_db_open(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, fault.real->zName);
    if (rc != SQLITE_OK) fprintf(stderr, "%s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* the first column of the first row of sql, as an integer */
static inline int64_t fault_db_i64(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* PRAGMA integrity_check must answer one row "ok" */
static void fault_db_check_integrity(sqlite3 *db, const char *when)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
    int ok = 1;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        if (!t || strcmp(t, "ok")) {
            fprintf(stderr, "%s: integrity_check: %s\n", when, t ? t : "(null)");
            ok = 0;
        }
    }
    sqlite3_finalize(s);
    assert_true(ok);
}

/* FNV-1a over every column of every row of sql (columns as text, a NULL
 * apart from an empty text): equal digests, equal rows */
static inline uint64_t fault_db_digest(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    assert_int_equal(rc, SQLITE_OK);
    uint64_t h = 1469598103934665603ULL;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(s); c++) {
            const unsigned char *t = sqlite3_column_text(s, c);
            int n = sqlite3_column_bytes(s, c);
            h = (h ^ (t ? 0x1fu : 0x2fu)) * 1099511628211ULL;
            for (int i = 0; t && i < n; i++) h = (h ^ t[i]) * 1099511628211ULL;
        }
        h = (h ^ 0x0au) * 1099511628211ULL;
    }
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(s);
    return h;
}

/* removes a store and its -wal and -shm */
static void fault_rm_store(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    char p[1024];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++)
        if (snprintf(p, sizeof p, "%s%s", path, suffix[i]) < (int)sizeof p) remove(p);
}

/* a store opened through the default VFS (the shim); fails the test if it cannot */
static shelf_store *fault_store_open(const char *path, unsigned flags)
{
    shelf_store *st = NULL;
    shelf_err err = {0};
    int rc = shelf_store_open(path, flags, &st, &err);
    if (rc) fprintf(stderr, "open %s: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
    return st;
}

#endif
