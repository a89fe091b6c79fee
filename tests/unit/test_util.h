/* test_util.h: scratch files for the unit tests, under $SHELF_TEST_TMP
 * (CTest sets it to build/testtmp), one folder per test program. */
#ifndef SHELF_TEST_UTIL_H
#define SHELF_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
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

#endif
