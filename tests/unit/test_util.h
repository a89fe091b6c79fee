/* test_util.h: scratch files for the unit tests, under $SHELF_TEST_TMP
 * (CTest sets it to build/testtmp), one folder per test program. */
#ifndef SHELF_TEST_UTIL_H
#define SHELF_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

static char tmp_dir[512];

static void mkdir_p(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, 0755);
}

/* Creates and remembers $SHELF_TEST_TMP/name (or /tmp/shelf-test/name). */
static void tmp_init(const char *name)
{
    const char *base = getenv("SHELF_TEST_TMP");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/%s", base && *base ? base : "/tmp/shelf-test", name);
    mkdir_p(tmp_dir);
}

/* tmp_dir/name; the last 8 results stay valid. */
static const char *tmp_path(const char *name)
{
    static char buf[8][768];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

/* ---- small stores (needs <cmocka.h> and shelf headers included first) ---- */
#ifdef SHELF_STORE_H
static inline shelf_store *store_new(void)
{
    shelf_store *st = NULL;
    shelf_err err = {0};
    int rc = shelf_store_open(":memory:", SHELF_STORE_CREATE, &st, &err);
    if (rc) fprintf(stderr, "store open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return st;
}

static inline uint32_t type_of(shelf_store *st, const char *name)
{
    uint32_t t;
    assert_int_equal(shelf_store_event_type(st, name, &t, NULL), 0);
    return t;
}

static inline void add_event_value(shelf_store *st, uint32_t u, uint32_t i, uint32_t t, float value, int64_t ts)
{
    shelf_event e = {.user = u, .item = i, .type = t, .value = value, .ts = ts};
    int rc = shelf_store_add_events(st, &e, 1);
    if (rc) fprintf(stderr, "add event: %s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
}

static inline void add_event(shelf_store *st, uint32_t u, uint32_t i, uint32_t t, int64_t ts)
{
    add_event_value(st, u, i, t, 0, ts);
}
#endif

#ifdef SHELF_SNAPSHOT_H
static inline shelf_snapshot *build(shelf_store *st)
{
    shelf_snapshot *s = NULL;
    int rc = shelf_snapshot_from_store(st, 0, &s);
    if (rc) fprintf(stderr, "snapshot: %s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}
#endif

#ifdef SHELF_STORE_H
/* Users "u0".."u<U-1>" and items "i0".."i<I-1>" (item rows), dense indices
 * 0.. in that order. */
static inline void make_ids(shelf_store *st, uint32_t U, uint32_t I)
{
    char id[32];
    for (uint32_t u = 0; u < U; u++) {
        uint32_t idx;
        snprintf(id, sizeof id, "u%u", u);
        assert_int_equal(shelf_store_user_idx(st, id, strlen(id), 1, &idx, NULL), 0);
        assert_int_equal(idx, u);
    }
    for (uint32_t i = 0; i < I; i++) {
        uint32_t idx;
        snprintf(id, sizeof id, "i%u", i);
        shelf_item it = {.id = id, .available = 1};
        assert_int_equal(shelf_store_put_item(st, &it, &idx), 0);
        assert_int_equal(idx, i);
    }
}
#endif

#ifdef SHELF_CONFIG_H
/* A configuration with "name=value" pairs set (NULL-terminated list). */
static inline shelf_config *opts(const char *first, ...)
{
    shelf_config *c = shelf_config_new();
    assert_non_null(c);
    va_list ap;
    va_start(ap, first);
    for (const char *kv = first; kv; kv = va_arg(ap, const char *)) {
        char name[64];
        const char *eq = strchr(kv, '=');
        assert_non_null(eq);
        snprintf(name, sizeof name, "%.*s", (int)(eq - kv), kv);
        shelf_err err = {0};
        int rc = shelf_config_set(c, name, eq + 1, "test", &err);
        if (rc) fprintf(stderr, "config: %s\n", err.msg);
        assert_int_equal(rc, 0);
    }
    va_end(ap);
    return c;
}
#endif

#endif
