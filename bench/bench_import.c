/* bench_import.c: CSV import throughput through the library. Generates a
 * synthetic events CSV (shelf_gen_csv; kept between runs, its name encodes
 * size and seed), imports it into a fresh store (shelf_import_file, csv),
 * checks the event count, and prints one JSON line on stdout:
 *   {"bench":"import_csv","events":N,"seconds":..,"events_per_s":..,
 *    "store_bytes":..,"bytes_per_event":..,"threads":..,"import_call_s":..}
 * seconds: shelf_import_file plus closing the store (the WAL checkpoint);
 * import_call_s: the import call alone, as it reports itself.
 *
 * usage: bench_import [N_EVENTS [DIR]] [--bulk]
 *   N_EVENTS  default 10000000; users N/50, items N/200 (at least 100/50)
 *   DIR       where the CSV and the store go (default $SHELF_BENCH_DIR or
 *             bench-data)
 *   --bulk    open the store with SHELF_STORE_BULK as well (synchronous off)
 * Progress and the generation time go to stderr. Dies on error (bench/). */
#include "shelf/shelf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_import: %s: %s\n", what, msg);
    exit(1);
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

int main(int argc, char **argv)
{
    uint64_t n = 10000000;
    const char *dir = getenv("SHELF_BENCH_DIR");
    int bulk = 0, n_pos = 0;
    if (!dir || !dir[0]) dir = "bench-data";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bulk") == 0) {
            bulk = 1;
        } else if (n_pos == 0) {
            char *end;
            n = strtoull(argv[i], &end, 10);
            if (*end || n == 0) die(argv[i], "not a positive event count");
            n_pos++;
        } else if (n_pos == 1) {
            dir = argv[i];
            n_pos++;
        } else {
            die(argv[i], "unexpected argument (usage: bench_import [N_EVENTS [DIR]] [--bulk])");
        }
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) die(dir, strerror(errno));

    shelf_gen_opts g;
    shelf_gen_opts_init(&g);
    g.n_events = n;
    g.n_users = (uint32_t)(n / 50 > 100 ? n / 50 : 100);
    g.n_items = (uint32_t)(n / 200 > 50 ? n / 200 : 50);
    g.days = 90;
    g.progress = 1;

    /* the input: generated once per (size, seed) */
    char csv[1024], tmp[1100], db[1024], wal[1100];
    snprintf(csv, sizeof csv, "%s/events_%llu_u%u_i%u_s%llu.csv", dir, (unsigned long long)n, g.n_users,
             g.n_items, (unsigned long long)g.seed);
    if (file_size(csv) > 0) {
        fprintf(stderr, "bench_import: reusing %s\n", csv);
    } else {
        snprintf(tmp, sizeof tmp, "%s.tmp", csv);
        shelf_err err;
        shelf_err_clear(&err);
        double t0 = shelf_now();
        if (shelf_gen_csv(tmp, NULL, &g, &err)) die("gen", shelf_errmsg(&err));
        double dt = shelf_now() - t0;
        if (rename(tmp, csv) != 0) die(csv, strerror(errno));
        fprintf(stderr, "{\"bench\":\"gen_csv\",\"events\":%llu,\"seconds\":%.3f,\"events_per_s\":%.0f,"
                        "\"csv_bytes\":%lld}\n",
                (unsigned long long)n, dt, (double)n / dt, file_size(csv));
    }

    /* a fresh store */
    snprintf(db, sizeof db, "%s/import_bench.db", dir);
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(wal, sizeof wal, "%s%s", db, suffix[i]);
        if (unlink(wal) != 0 && errno != ENOENT) die(wal, strerror(errno));
    }
    shelf_store *st = NULL;
    shelf_err err;
    shelf_err_clear(&err);
    if (shelf_store_open(db, SHELF_STORE_CREATE | (bulk ? SHELF_STORE_BULK : 0), &st, &err))
        die(db, shelf_errmsg(&err));

    shelf_import_opts io;
    shelf_import_opts_init(&io, SHELF_FMT_CSV);
    io.what = SHELF_IMPORT_EVENTS;
    io.progress = 1;
    shelf_import_result res;
    memset(&res, 0, sizeof res);
    double t0 = shelf_now();
    if (shelf_import_file(st, csv, &io, &res)) die("import", shelf_store_errmsg(st));
    shelf_store_close(st); /* checkpoints the WAL: part of the cost of a durable import */
    double dt = shelf_now() - t0;

    /* check: the store holds every event, once */
    if (res.n_events != n) {
        fprintf(stderr, "bench_import: import reported %llu events, expected %llu\n",
                (unsigned long long)res.n_events, (unsigned long long)n);
        return 1;
    }
    long long bytes = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(wal, sizeof wal, "%s%s", db, suffix[i]);
        long long s = file_size(wal);
        if (s > 0) bytes += s;
    }
    if (shelf_store_open(db, SHELF_STORE_READONLY, &st, &err)) die(db, shelf_errmsg(&err));
    shelf_store_stats s;
    if (shelf_store_stats_get(st, &s)) die("stats", shelf_store_errmsg(st));
    shelf_store_close(st);
    if (s.n_events != n || s.n_users == 0 || s.n_items == 0) {
        fprintf(stderr, "bench_import: store holds %llu events, expected %llu\n",
                (unsigned long long)s.n_events, (unsigned long long)n);
        return 1;
    }

    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    char machine[1024]; /* CPU model and kernel levels (shelf version --cpu) */
    shelf_cpu_describe_json(machine, sizeof machine);
    printf("{\"bench\":\"import_csv\",\"events\":%llu,\"seconds\":%.3f,\"events_per_s\":%.0f,"
           "\"store_bytes\":%lld,\"bytes_per_event\":%.1f,\"threads\":%d,\"import_call_s\":%.3f%s,\"machine\":%s}\n",
           (unsigned long long)n, dt, (double)n / dt, bytes, (double)bytes / (double)n, threads,
           res.seconds, bulk ? ",\"bulk\":true" : "", machine);
    return 0;
}
