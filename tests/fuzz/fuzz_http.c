/* fuzz_http.c: the server's request path (src/serve/http.c and the routes
 * behind it): each input is sent as it is, as raw bytes over TCP, to the
 * real server running in this process (server.h): request line (method,
 * path, query), headers, body, pipelined requests, broken framing. After
 * each input the server must still answer GET /v1/health. */
#include "server.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char resp[512];
    fuzz_server_exchange(data, size, resp, sizeof resp);
    fuzz_server_check();
    return 0;
}
