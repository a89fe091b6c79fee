/* serve.c: `shelf serve`: runs the HTTP server until SIGTERM or SIGINT
 * (drains, then exits 0); SIGHUP loads the newest bundle. */
#include "cli.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

int cmd_serve(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    shelf_server_opts o = {
        .store = shelf_config_str(c->cfg, "store"),
        .bundle = shelf_config_str(c->cfg, "bundle"),
        .bind = shelf_config_str(c->cfg, "bind"),
        .port = (unsigned)shelf_config_int(c->cfg, "port"),
        .threads = (unsigned)shelf_config_int(c->cfg, "http-threads"),
        .workers = (unsigned)shelf_config_int(c->cfg, "rank-workers"),
        .no_auth = !shelf_config_bool(c->cfg, "auth"),
        .max_body = (size_t)shelf_config_int(c->cfg, "max-body"),
        .max_batch = (unsigned)shelf_config_int(c->cfg, "max-batch"),
        .max_n = (unsigned)shelf_config_int(c->cfg, "max-n"),
        .timeout_s = (unsigned)shelf_config_int(c->cfg, "timeout"),
        .pop_half_life_s = shelf_config_double(c->cfg, "pop-half-life"),
        .session_memory = (size_t)shelf_config_int(c->cfg, "session-memory") << 20,
        .no_served_log = !shelf_config_bool(c->cfg, "served-log"),
        .cold_neighbours = (unsigned)shelf_config_int(c->cfg, "cold-neighbours"),
        .exclude_seen = shelf_config_str(c->cfg, "exclude-seen"),
        .fallback = shelf_config_str(c->cfg, "fallback"),
        .blend_popularity = shelf_config_double(c->cfg, "blend-popularity"),
        .body_memory = (size_t)shelf_config_int(c->cfg, "body-memory") << 20,
        .max_conns_per_ip = (unsigned)shelf_config_int(c->cfg, "max-conns-per-ip"),
        .cors_origins = shelf_config_str(c->cfg, "cors-origins"),
        .access_log = shelf_config_str(c->cfg, "access-log"),
        .header_timeout_s = (unsigned)shelf_config_int(c->cfg, "header-timeout"),
        .retrain_within_s = shelf_config_double(c->cfg, "retrain-within"),
        .source_models = shelf_config_str(c->cfg, "source-models"),
    };
    /* the signals are taken by this thread only (sigwait): block them
     * before any server thread starts, so every thread inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    shelf_server *s = NULL;
    shelf_err err = {0};
    if (shelf_server_start(&o, &s, &err)) return cli_fail(c, "%s", err.msg);
    char model[256];
    shelf_server_model(s, model, sizeof model);
    printf("shelf serve: listening on http://%s:%u (model %s)\n", o.bind, shelf_server_port(s), model);
    fflush(stdout);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig)) continue;
        if (sig == SIGHUP) {
            shelf_err e2 = {0};
            shelf_server_reload(s, &e2); /* logged by the server; the old model stays on failure */
            continue;
        }
        shelf_info("serve: signal %d: draining", sig);
        break;
    }
    shelf_server_stop(s);
    return 0;
}
