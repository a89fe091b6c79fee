/* util.c: the scratch folder and input helpers of the fuzz targets (util.h). */
#include "util.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shelf/gen.h"
#include "shelf/snapshot.h"

static char dir[512];

_Noreturn void fuzz_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* removes path and, for a folder, what it holds (two levels: bundles) */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            remove_tree(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static pid_t owner;

static void cleanup(void)
{
    if (dir[0] && getpid() == owner) remove_tree(dir);
}

const char *fuzz_dir(void)
{
    if (dir[0]) return dir;
    struct stat sb;
    const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : getenv("TMPDIR");
    owner = getpid();
    snprintf(dir, sizeof dir, "%s/shelf-fuzz-%d", base && *base ? base : "/tmp", (int)owner);
    remove_tree(dir);
    if (mkdir(dir, 0700) != 0) fuzz_die("cannot create %s", dir);
    atexit(cleanup);
    return dir;
}

const char *fuzz_path(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fuzz_dir(), name);
    return buf[k];
}

void fuzz_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) fuzz_die("cannot create %s", path);
    int bad = n && fwrite(data, 1, n, f) != n;
    if (fclose(f) != 0 || bad) fuzz_die("cannot write %s", path);
}

char *fuzz_strndup(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) fuzz_die("out of memory");
    if (n) memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

void fuzz_split(const uint8_t *data, size_t n, const uint8_t **a, size_t *na, const uint8_t **b, size_t *nb)
{
    const uint8_t *z = n ? memchr(data, 0, n) : NULL;
    *a = data;
    *na = z ? (size_t)(z - data) : n;
    *b = z ? z + 1 : data + n;
    *nb = z ? n - *na - 1 : 0;
}

struct shelf_snapshot *fuzz_shop(const char *path, uint32_t n_users, uint32_t n_items, uint64_t n_events)
{
    shelf_store *st = NULL;
    shelf_err err = {0};
    if (shelf_store_open(path, SHELF_STORE_CREATE, &st, &err)) fuzz_die("store %s: %s", path, err.msg);
    shelf_gen_opts g;
    shelf_gen_opts_init(&g);
    g.n_users = n_users;
    g.n_items = n_items;
    g.n_events = n_events;
    if (shelf_gen_store(st, &g)) fuzz_die("gen: %s", shelf_store_errmsg(st));
    shelf_snapshot *sn = NULL;
    if (shelf_snapshot_from_store(st, 0, &sn)) fuzz_die("snapshot: %s", shelf_store_errmsg(st));
    shelf_store_close(st);
    return sn;
}
