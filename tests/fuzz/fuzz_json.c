/* fuzz_json.c: the JSON request bodies of the server's routes (events,
 * items, users, anonymous slates, scenarios). The first byte picks the
 * route (the table below); the rest is the body, sent with a correct
 * Content-Length to the real server running in this process (server.h), so
 * that every input reaches the body parsers instead of HTTP framing. After
 * each input the server must still answer GET /v1/health. */
#include "server.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char key; /* the input's first byte */
    const char *method, *path;
} route;

static const route routes[] = {
    {'e', "POST", "/v1/events"},
    {'i', "PUT", "/v1/items/fz_item"},
    {'I', "PUT", "/v1/items"},
    {'u', "PUT", "/v1/users/fz_user"},
    {'U', "PUT", "/v1/users"},
    {'r', "POST", "/v1/recommendations"},
    {'s', "PUT", "/v1/scenarios/fz"},
    {'k', "POST", "/v1/admin/keys"},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const route *r = &routes[data[0] % N_ROUTES];
    for (size_t k = 0; k < N_ROUTES; k++)
        if (routes[k].key == (char)data[0]) r = &routes[k];
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      r->method, r->path, size - 1);
    char *req = malloc((size_t)hn + size);
    if (!req) fuzz_die("out of memory");
    memcpy(req, head, (size_t)hn);
    memcpy(req + hn, data + 1, size - 1);
    char resp[512];
    fuzz_server_exchange(req, (size_t)hn + size - 1, resp, sizeof resp);
    free(req);
    /* a body within the limits always gets an answer, and never a 5xx */
    if (size - 1 <= (64u << 10) && (strncmp(resp, "HTTP/1.1 ", 9) != 0 || resp[9] == '5'))
        fuzz_die("%s %s: answered '%.12s' %s", r->method, r->path, resp,
                 strstr(resp, "\r\n\r\n") ? strstr(resp, "\r\n\r\n") + 4 : "");
    fuzz_server_check();
    return 0;
}
