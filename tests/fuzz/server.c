/* server.c: the in-process server of the HTTP fuzz targets (server.h). */
#define _GNU_SOURCE /* memmem */
#include "server.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "shelf/model.h"
#include "shelf/serve.h"
#include "shelf/snapshot.h"

static shelf_server *srv; /* runs until the process ends */

/* the generated shop and its item-kNN bundle at store, bundles/v1 */
static void make_shop(const char *store, const char *bundles)
{
    shelf_snapshot *sn = fuzz_shop(store, 120, 80, 2000);
    shelf_err err = {0};
    shelf_model *m = NULL;
    shelf_opts *o = shelf_config_new();
    if (!o || shelf_model_new("itemknn", &m, &err)) fuzz_die("model: %s", err.msg);
    if (shelf_model_fit(m, sn, o, NULL)) fuzz_die("fit: %s", shelf_model_errmsg(m));
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/v1", bundles);
    if (mkdir(bundles, 0700) != 0 || shelf_model_save(m, dir, &err)) fuzz_die("bundle: %s", err.msg);
    shelf_model_free(m);
    shelf_config_free(o);
    shelf_snapshot_free(sn);
}

static unsigned start(void)
{
    signal(SIGPIPE, SIG_IGN);
    shelf_log_set_level(SHELF_LOG_OFF);
    char store[1100], bundles[1100];
    snprintf(store, sizeof store, "%s", fuzz_path("shop.db"));
    snprintf(bundles, sizeof bundles, "%s", fuzz_path("bundles"));
    make_shop(store, bundles);
    shelf_server_opts o = {0};
    o.store = store;
    o.bundle = bundles;
    o.bind = "127.0.0.1";
    o.threads = 2;
    o.no_auth = 1;
    o.max_body = 64 << 10;
    o.max_batch = 50;
    o.timeout_s = 2;
    o.header_timeout_s = 1;
    shelf_err err = {0};
    if (shelf_server_start(&o, &srv, &err)) fuzz_die("server: %s", err.msg);
    return shelf_server_port(srv);
}

/* 1 when buf[0..n) is whole responses: a head, then the body its
 * Content-Length says or chunks up to the last one (1xx and 204/304: none) */
static int whole_responses(const char *buf, size_t n)
{
    size_t at = 0;
    while (at < n) {
        const char *end = memmem(buf + at, n - at, "\r\n\r\n", 4);
        if (!end) return 0;
        const size_t head_end = (size_t)(end - buf) + 4;
        long long len = -1;
        int chunked = 0, no_body = n - at > 12 && (buf[at + 9] == '1' || !strncmp(buf + at + 9, "204", 3) ||
                                                   !strncmp(buf + at + 9, "304", 3));
        for (const char *l = buf + at; l < end;) {
            const char *nl = memmem(l, (size_t)(end - l), "\r\n", 2);
            size_t ln = nl ? (size_t)(nl - l) : (size_t)(end - l);
            if (ln > 15 && !strncasecmp(l, "Content-Length:", 15)) len = strtoll(l + 15, NULL, 10);
            if (ln > 18 && !strncasecmp(l, "Transfer-Encoding:", 18) && memmem(l, ln, "chunked", 7)) chunked = 1;
            l += ln + 2;
        }
        at = head_end;
        if (no_body || at == n) continue; /* no body, or none yet (HEAD: none comes) */
        if (chunked) {
            const char *last = memmem(buf + at, n - at, "\r\n0\r\n\r\n", 7);
            if (!last && !(n - at >= 5 && !memcmp(buf + at, "0\r\n\r\n", 5))) return 0;
            at = last ? (size_t)(last - buf) + 7 : at + 5;
        } else if (len >= 0) {
            if ((unsigned long long)len > n - at) return 0;
            at += (size_t)len;
        } else {
            return 0; /* a body to the end of the connection */
        }
    }
    return 1;
}

size_t fuzz_server_exchange(const void *req, size_t n, char *resp, size_t cap)
{
    static unsigned port;
    if (!port) port = start();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) fuzz_die("socket: %s", strerror(errno));
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* libFuzzer's SIGALRM (its -timeout watch) may interrupt any call here:
     * an interrupted connect goes on by itself; the others are tried again */
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        struct pollfd w = {.fd = fd, .events = POLLOUT};
        socklen_t len = sizeof e;
        if (e == EINTR) {
            while (poll(&w, 1, 3000) < 0 && errno == EINTR) {}
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) e = errno;
        }
        if (e) fuzz_die("connect to the server: %s", strerror(e));
    }
    /* the server may answer (and close) before it has read everything: stop sending then */
    for (size_t at = 0; at < n;) {
        ssize_t w = send(fd, (const char *)req + at, n - at, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        at += (size_t)w;
    }
    /* A connection kept alive stays open after the answers (until the
     * server's idle timeout): the exchange ends when the server closes, or
     * 2 ms after the bytes so far make whole responses (a pipelined
     * request's answer follows at once), or after 300 ms of silence inside
     * a response. The sending side is closed when 10 ms pass without a
     * byte, not at once: the server's edge-triggered epoll may take the
     * request and the end of the stream in one wake-up, read the bytes and
     * never see the end, so an incomplete request would wait for its
     * timeout; closed later, the end wakes it on its own. After that the
     * first byte may take 3 s. */
    static char *all;
    static size_t all_cap;
    size_t got = 0;
    int open_w = 1;
    for (;;) {
        if (got == all_cap) {
            size_t nc = all_cap ? 2 * all_cap : 1 << 16;
            if (nc > (16u << 20)) break; /* enough of one answer */
            if (!(all = realloc(all, nc))) fuzz_die("out of memory");
            all_cap = nc;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int wait_ms = got ? (whole_responses(all, got) ? 2 : 300) : open_w ? 10 : 3000;
        int ready = poll(&p, 1, wait_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            if (got || !open_w) break;
            shutdown(fd, SHUT_WR);
            open_w = 0;
            continue;
        }
        ssize_t r = recv(fd, all + got, all_cap - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* closed or reset */
        got += (size_t)r;
    }
    close(fd);
    if (cap) {
        size_t k = got < cap - 1 ? got : cap - 1;
        memcpy(resp, all, k);
        resp[k] = '\0';
    }
    return got;
}

void fuzz_server_check(void)
{
    static const char req[] = "GET /v1/health HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
    char resp[256];
    fuzz_server_exchange(req, sizeof req - 1, resp, sizeof resp);
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0)
        fuzz_die("the server no longer answers GET /v1/health after this input: '%.80s'", resp);
}
