/* test_fault_ingest.c: the server's group commit (src/serve/ingest.c) on a
 * store whose SQLite I/O fails at the Nth write-side call (fault_vfs.h), for
 * every N of one event batch, as a full disk and as a one-off device error.
 * The failing batch is answered 500 with a JSON error naming what failed,
 * the server keeps answering reads, stores batches again once the disk is
 * back, and after it stops every batch answered 200 is in the store, which
 * passes PRAGMA integrity_check. The server runs in this process on an
 * ephemeral loopback port; the client is a small HTTP/1.0 one. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "shelf/gen.h"
#include "shelf/serve.h"
#include "shelf/store.h"

#include "fault_vfs.h"
#include "test_util.h"

/* ---- a minimal HTTP client ------------------------------------------------------------------ */

static unsigned g_port;

typedef struct answer {
    int status;      /* 0: no answer */
    cJSON *json;     /* the body, parsed; NULL if it is not JSON */
    char body[1024]; /* its start, for messages */
} answer;

/* One request on its own connection; the server closes it after answering. */
static answer ask(const char *method, const char *path, const char *body)
{
    answer a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    size_t blen = body ? strlen(body) : 0;
    char *req = NULL;
    int n = asprintf(&req, "%s %s HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, blen, body ? body : "");
    assert_true(n > 0);
    for (int off = 0; off < n;) {
        ssize_t k = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        assert_true(k > 0);
        off += (int)k;
    }
    free(req);
    /* the whole answer: head and body */
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    ssize_t k;
    while ((k = recv(fd, buf + len, cap - len, 0)) > 0)
        if ((len += (size_t)k) == cap) assert_non_null(buf = realloc(buf, (cap *= 2) + 1));
    close(fd);
    buf[len] = '\0';
    const char *b = strstr(buf, "\r\n\r\n");
    if (len > 12 && !strncmp(buf, "HTTP/1.", 7) && b) {
        a.status = atoi(buf + 9);
        a.json = cJSON_Parse(b + 4);
        snprintf(a.body, sizeof a.body, "%s", b + 4);
    }
    free(buf);
    return a;
}

static void answer_free(answer *a)
{
    cJSON_Delete(a->json);
    a->json = NULL;
}

/* a request that must be answered `status` */
static void expect_status(const char *method, const char *path, const char *body, int status)
{
    answer a = ask(method, path, body);
    if (a.status != status) fprintf(stderr, "%s %s: expected %d, got %d: %s\n", method, path, status, a.status, a.body);
    assert_int_equal(a.status, status);
    answer_free(&a);
}

/* ---- fixtures --------------------------------------------------------------------------------- */

static char p_store[768];

/* a store with the generated shop (60 users u0.., 40 items i0.., 600 events) */
static void make_store(void)
{
    fault_rm_store(p_store);
    shelf_store *st = fault_store_open(p_store, SHELF_STORE_CREATE);
    shelf_gen_opts o;
    shelf_gen_opts_init(&o);
    o.n_users = 60, o.n_items = 40, o.n_events = 600;
    int rc = shelf_gen_store(st, &o);
    if (rc) fprintf(stderr, "gen: %s\n", shelf_store_errmsg(st));
    assert_int_equal(rc, 0);
    shelf_store_close(st);
}

static shelf_server *start(void)
{
    shelf_server_opts o = {0};
    o.store = p_store;
    o.bind = "127.0.0.1";
    o.threads = 2;
    o.no_auth = 1;
    o.no_served_log = 1; /* the writes counted are the batches' alone */
    shelf_server *s = NULL;
    shelf_err err = {0};
    int rc = shelf_server_start(&o, &s, &err);
    if (rc) fprintf(stderr, "server start: %s\n", err.msg);
    assert_int_equal(rc, 0);
    g_port = shelf_server_port(s);
    return s;
}

static int group_setup(void **state)
{
    (void)state;
    fault_install();
    tmp_init("fault_ingest");
    snprintf(p_store, sizeof p_store, "%s", tmp_path("ingest.db"));
    return 0;
}

/* ---- batches ---------------------------------------------------------------------------------- */

/* A kind of write the server stores in one transaction: a batch k of it,
 * how the store shows it, and the route that answers 404 until it is in. */
typedef struct write_kind {
    const char *name, *method, *path;
    const char *ok_key;                 /* the answer's count: {"accepted": n} */
    int rows;                           /* records per batch */
    char *(*body)(int k);               /* caller frees */
    const char *count_fmt;              /* SQL, %d: k; the batch's rows in the store */
    const char *probe_fmt;              /* GET path, %d: k */
} write_kind;

/* {"<key>": arr} as text (caller frees); takes arr */
static char *body_of(const char *key, cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, key, arr);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    assert_non_null(s);
    return s;
}

/* 12 events: 4 new shoppers "b<k>_<j>" with 2 each, 4 known ones */
static char *events_body(int k)
{
    static const char *const types[] = {"view", "click", "cart", "purchase"};
    cJSON *evs = cJSON_CreateArray();
    for (int i = 0; i < 12; i++) {
        char user[32], item[16];
        if (i < 8) snprintf(user, sizeof user, "b%d_%d", k, i / 2);
        else snprintf(user, sizeof user, "u%d", (k * 7 + i) % 60);
        snprintf(item, sizeof item, "i%d", (k * 3 + i * 5) % 40);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "user", user);
        cJSON_AddStringToObject(e, "item", item);
        cJSON_AddStringToObject(e, "type", types[(k + i) % 4]);
        cJSON_AddNumberToObject(e, "ts", 1800000000 + k * 100 + i);
        cJSON_AddItemToArray(evs, e);
    }
    return body_of("events", evs);
}

/* 8 new items "n<k>_<j>" with attributes */
static char *items_body(int k)
{
    cJSON *its = cJSON_CreateArray();
    for (int j = 0; j < 8; j++) {
        char id[32], title[64], color[16];
        snprintf(id, sizeof id, "n%d_%d", k, j);
        snprintf(title, sizeof title, "Item %d of batch %d", j, k);
        snprintf(color, sizeof color, "c%d", (k + j) % 13);
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "id", id);
        cJSON_AddStringToObject(it, "title", title);
        cJSON_AddNumberToObject(it, "price", 1 + j);
        cJSON *attrs = cJSON_AddObjectToObject(it, "attributes");
        cJSON_AddStringToObject(attrs, "color", color);
        cJSON_AddItemToArray(its, it);
    }
    return body_of("items", its);
}

static const write_kind k_events = {
    "events", "POST", "/v1/events", "accepted", 12, events_body,
    /* the batch's events, its new shoppers' and its known ones' */
    "SELECT count(*) FROM events WHERE ts / 100 = 18000000 + %d", "/v1/users/b%d_0"};
static const write_kind k_items = {
    "items", "PUT", "/v1/items", "stored", 8, items_body,
    "SELECT count(*) FROM items WHERE ext_id GLOB 'n%d_*'", "/v1/items/n%d_0"};

/* sends batch k; the status answered */
static int send_batch(const write_kind *w, int k, answer *out)
{
    char *body = w->body(k);
    *out = ask(w->method, w->path, body);
    free(body);
    return out->status;
}

static void send_batch_ok(const write_kind *w, int k)
{
    answer a;
    if (send_batch(w, k, &a) != 200) fprintf(stderr, "%s batch %d: expected 200, got %d: %s\n", w->name, k, a.status, a.body);
    assert_int_equal(a.status, 200);
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(a.json, w->ok_key);
    assert_true(cJSON_IsNumber(acc) && acc->valueint == w->rows);
    answer_free(&a);
}

static void probe(const write_kind *w, int k, int status)
{
    char path[64];
    snprintf(path, sizeof path, w->probe_fmt, k);
    expect_status("GET", path, NULL, status);
}

/* batch k's rows in the store */
static int64_t stored_of_batch(const write_kind *w, sqlite3 *db, int k)
{
    char sql[256];
    snprintf(sql, sizeof sql, w->count_fmt, k);
    return fault_db_i64(db, sql);
}

/* a read the server must keep answering: health, a shopper's slate */
static void reads_answered(void)
{
    expect_status("GET", "/v1/health", NULL, 200);
    expect_status("GET", "/v1/users/u3/recommendations?n=5", NULL, 200);
    expect_status("GET", "/v1/popular?n=5", NULL, 200);
}

/* /v1/health answers 200 with this status */
static void health_is(const char *status)
{
    answer a = ask("GET", "/v1/health", NULL);
    assert_int_equal(a.status, 200);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(a.json, "status");
    if (!cJSON_IsString(st) || strcmp(st->valuestring, status))
        fprintf(stderr, "health: expected status %s: %s\n", status, a.body);
    assert_true(cJSON_IsString(st) && !strcmp(st->valuestring, status));
    answer_free(&a);
}

/* ---- the tests ---------------------------------------------------------------------------------- */

enum { ACKED = 1, FAILED = 2 };

/* Batches of w with the Nth write-side call failing, N = 1, 2, ... up to
 * twice the calls of the batch counted; each failure is followed by reads and a
 * batch that must be stored. Then the server stops with its checkpoint
 * failing, and the store is checked. */
static void write_under_faults(const write_kind *w, fault_mode mode)
{
    const char *mname = mode == FAULT_FULL ? "disk full" : "I/O error";
    make_store();
    shelf_server *s = start();
    int fate[256] = {0}; /* per batch: ACKED, FAILED */
    int k = 0;
    send_batch_ok(w, k); /* the first commit of the server */
    fate[k++] = ACKED;
    fault_arm(0, mode); /* counts */
    send_batch_ok(w, k);
    fate[k++] = ACKED;
    long counted = fault_disarm();
    assert_true(counted > 0);

    int n_failed = 0, hit[FAULT_N_OPS][FAULT_N_FILES] = {{0}};
    long n, most = 0;
    /* an item batch also writes the search index (migration 6), whose pages
     * differ from commit to commit: the scan goes on past a batch that made
     * fewer calls than N, to twice the batch counted */
    for (n = 1; n <= 2 * counted; n++) {
        assert_true(k + 2 < (int)(sizeof fate / sizeof fate[0]));
        fault_arm(n, mode);
        answer a;
        int status = send_batch(w, k, &a);
        fault_disarm();
        if (fault_injected() == 0) {
            /* past the batch's last call: stored as usual */
            if (status != 200) fprintf(stderr, "N=%ld without a fault: %d %s\n", n, status, a.body);
            assert_int_equal(status, 200);
            answer_free(&a);
            fate[k++] = ACKED;
            continue;
        }
        most = n;
        /* the failing batch: 500 {"error": {"code": "internal", "message": "events not stored: store: ..."}} */
        int op = atomic_load(&fault.first_op), file = atomic_load(&fault.first_file);
        hit[op][file]++;
        if (status != 500)
            fprintf(stderr, "N=%ld (a %s of the %s failed): expected 500, got %d: %s\n", n, fault_op_name(op),
                    fault_file_name(file), status, a.body);
        assert_int_equal(status, 500);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(a.json, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        assert_true(cJSON_IsString(code) && cJSON_IsString(msg));
        assert_string_equal(code->valuestring, "internal");
        if (n_failed++ < 2)
            fprintf(stderr, "    N=%ld (%s %s): %s\n", n, fault_op_name(op), fault_file_name(file), msg->valuestring);
        char what[64];
        snprintf(what, sizeof what, "%s not stored", w->name);
        assert_non_null(strstr(msg->valuestring, what));
        assert_non_null(strstr(msg->valuestring, "store"));
        assert_true(strstr(msg->valuestring, "disk is full") || strstr(msg->valuestring, "I/O error"));
        answer_free(&a);
        fate[k++] = FAILED;
        /* the server did not take in what it did not store */
        probe(w, k - 1, 404);
        /* the disk is back: reads go on, health says degraded until the
         * next batch is stored */
        reads_answered();
        health_is("degraded");
        send_batch_ok(w, k);
        fate[k++] = ACKED;
        probe(w, k - 1, 200);
        health_is("ok");
    }
    fprintf(stderr, "%s, %s: batches of up to %ld write-side calls (the second batch %ld)\n", w->name, mname, most,
            counted);
    for (int op = 0; op < FAULT_N_OPS; op++)
        for (int f = 0; f < FAULT_N_FILES; f++)
            if (hit[op][f]) fprintf(stderr, "    failure at a %s of the %s: %d batches\n", fault_op_name(op),
                                    fault_file_name(f), hit[op][f]);
    /* the runs reached the batch's WAL writes and the commit's sync */
    assert_true(hit[FAULT_OP_WRITE][FAULT_FILE_WAL] > 0);
    assert_true(hit[FAULT_OP_SYNC][FAULT_FILE_WAL] > 0);
    reads_answered();
    /* the stop's checkpoint fails at its first call: the WAL keeps the batches */
    fault_arm(1, mode);
    shelf_server_stop(s);
    fault_disarm();
    assert_true(fault_injected() > 0);

    /* what was acknowledged is stored, what failed is not there in part */
    sqlite3 *db = fault_db_open(p_store);
    fault_db_check_integrity(db, "after the server stopped");
    int n_failed_stored = 0;
    for (int b = 0; b < k; b++) {
        int64_t got = stored_of_batch(w, db, b);
        if (fate[b] == ACKED && got != w->rows)
            fprintf(stderr, "%s batch %d was acknowledged; the store holds %lld of its %d\n", w->name, b,
                    (long long)got, w->rows);
        if (fate[b] == ACKED) assert_int_equal(got, w->rows);
        else assert_true(got == 0 || got == w->rows);
        n_failed_stored += fate[b] == FAILED && got == w->rows;
    }
    sqlite3_close(db);
    fprintf(stderr, "%s, %s: %d batches failed (%d of them stored whole anyway), %d acknowledged\n", w->name,
            mname, n_failed, n_failed_stored, k - n_failed);
}

static void test_events_disk_full(void **state) { (void)state; write_under_faults(&k_events, FAULT_FULL); }
static void test_events_io_error(void **state) { (void)state; write_under_faults(&k_events, FAULT_IOERR); }
static void test_items_disk_full(void **state) { (void)state; write_under_faults(&k_items, FAULT_FULL); }
static void test_items_io_error(void **state) { (void)state; write_under_faults(&k_items, FAULT_IOERR); }

/* A server stopped without faults leaves the store whole in its file: the
 * writer's connection closes last and checkpoints (the read-only one it
 * keeps for the API keys closed last once, and the WAL stayed). */
static void test_stop_checkpoints(void **state)
{
    (void)state;
    make_store();
    shelf_server *s = start();
    send_batch_ok(&k_events, 0);
    shelf_server_stop(s);
    char wal[800];
    snprintf(wal, sizeof wal, "%s-wal", p_store);
    struct stat sb;
    if (stat(wal, &sb) == 0) fprintf(stderr, "%s: %lld bytes left\n", wal, (long long)sb.st_size);
    assert_true(stat(wal, &sb) != 0 || sb.st_size == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_disk_full), cmocka_unit_test(test_events_io_error),
        cmocka_unit_test(test_items_disk_full),  cmocka_unit_test(test_items_io_error),
        cmocka_unit_test(test_stop_checkpoints),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
