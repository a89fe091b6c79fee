/* server.h: the real HTTP server (src/serve/) run inside a fuzz target: a
 * small generated shop with an item-kNN bundle, started once on an
 * ephemeral loopback port without API keys, and one request exchange over
 * TCP per input. */
#ifndef SHELF_FUZZ_SERVER_H
#define SHELF_FUZZ_SERVER_H

#include <stddef.h>

/* The first call generates the shop (shelf_gen_store: 120 users, 80 items,
 * 2,000 events) in the scratch folder, trains and saves the bundle and
 * starts the server (2 threads, 64 KiB bodies, 50 records a batch, 1 s
 * header and 2 s idle timeouts); aborts when any step fails. Then it (and
 * every later call) connects to it, sends req[0..n) as it is, closes the sending
 * side, and reads the answers until the server closes or is done (server.c
 * says when); their first cap - 1 bytes into resp (NUL-terminated). Returns
 * the bytes read; aborts when it cannot connect (the server is gone). */
size_t fuzz_server_exchange(const void *req, size_t n, char *resp, size_t cap);
/* GET /v1/health must answer 200: else the input just sent broke the server. */
void fuzz_server_check(void);

#endif
