/* bench_served.c: what the served log costs per slate. Logs N slates of 10
 * items (a known user, time-ordered rec_ids as the ranking room makes them)
 * into a fresh file store, 200 to a transaction as the server's writer
 * does, ordinary (FULL) or --lazy transactions, and prints one JSON line:
 *   {"bench":"served_log","slates":N,"seconds":..,"us_per_slate":..,
 *    "slates_per_s":..,"lazy":..,"machine":{..}}
 * usage: bench_served [N [DIR]] [--lazy]   (N default 50000; DIR default
 * $SHELF_BENCH_DIR or bench-data). Dies on error (bench/). */
#include "shelf/shelf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_served: %s: %s\n", what, msg);
    exit(1);
}

/* a store with 1000 users and 1000 items */
static shelf_store *fresh_store(const char *dir, char *path, size_t cap)
{
    snprintf(path, cap, "%s/served.db", dir);
    char side[1100];
    remove(path);
    snprintf(side, sizeof side, "%s-wal", path);
    remove(side);
    shelf_store *st;
    shelf_err err = {0};
    if (shelf_store_open(path, SHELF_STORE_CREATE, &st, &err)) die(path, err.msg);
    char id[32];
    uint32_t idx;
    if (shelf_store_begin(st)) die("begin", shelf_store_errmsg(st));
    for (int k = 0; k < 1000; k++) {
        snprintf(id, sizeof id, "i%d", k);
        shelf_store_item_idx(st, id, strlen(id), 1, &idx, NULL);
        snprintf(id, sizeof id, "u%d", k);
        shelf_store_user_idx(st, id, strlen(id), 1, &idx, NULL);
    }
    if (shelf_store_commit(st)) die("commit", shelf_store_errmsg(st));
    return st;
}

static void fill(shelf_slate *sl, int k)
{
    if (shelf_slate_reserve(sl, 10)) die("slate", "out of memory");
    snprintf(sl->rec_id, sizeof sl->rec_id, "%012x%04x%016llx", 0x18000000u + (unsigned)k, (unsigned)(k * 7919) & 0xffffu,
             (unsigned long long)k * 0x9e3779b97f4a7c15ull);
    sl->user = (uint32_t)(k % 1000);
    sl->ts = 1800000000 + k / 100;
    strcpy(sl->model, "transformer");
    strcpy(sl->model_version, "bench@1");
    strcpy(sl->source, "model");
    for (uint32_t j = 0; j < 10; j++) {
        shelf_slate_item *it = &sl->items[j];
        memset(it, 0, sizeof *it);
        it->item = (uint32_t)(k * 7 + (int)j) % 1000u;
        it->position = j;
        it->score = 1.0f / (float)(j + 1);
        it->propensity = 1;
        strcpy(it->source, "model");
        it->reason_item = SHELF_NONE;
    }
    sl->n = 10;
}

int main(int argc, char **argv)
{
    int n = 50000, lazy = 0;
    const char *dir = getenv("SHELF_BENCH_DIR") ? getenv("SHELF_BENCH_DIR") : "bench-data";
    int pos = 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--lazy")) lazy = 1;
        else if (pos++ == 0) n = atoi(argv[a]);
        else dir = argv[a];
    }
    if (n < 200) n = 200;
    char path[1024];
    shelf_store *st = fresh_store(dir, path, sizeof path);
    shelf_slate sl = {0};
    double t0 = now();
    for (int b = 0; b < n; b += 200) {
        if (lazy ? shelf_store_begin_lazy(st) : shelf_store_begin(st)) die("begin", shelf_store_errmsg(st));
        for (int k = b; k < b + 200 && k < n; k++) {
            fill(&sl, k);
            if (shelf_store_log_slate(st, &sl)) die("log", shelf_store_errmsg(st));
        }
        if (shelf_store_commit(st)) die("commit", shelf_store_errmsg(st));
    }
    double t = now() - t0;
    shelf_slate_free(&sl);
    shelf_store_close(st);
    char machine[1024]; /* CPU model and kernel levels (shelf version --cpu) */
    shelf_cpu_describe_json(machine, sizeof machine);
    printf("{\"bench\":\"served_log\",\"slates\":%d,\"seconds\":%.3f,\"us_per_slate\":%.2f,\"slates_per_s\":%.0f,"
           "\"lazy\":%s,\"machine\":%s}\n",
           n, t, 1e6 * t / n, n / t, lazy ? "true" : "false", machine);
    return 0;
}
