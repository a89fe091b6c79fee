/* pool.c: the compute workers. The ranking routes (srv_routes[].pooled)
 * run here, not on the HTTP thread that read the request. An HTTP thread
 * owns its connections for their whole life, and which thread accepts a
 * connection is a race the first awake one wins: a burst of connections
 * can all land on one thread, which then ranks for all of them on one core
 * while the others idle. The pool takes requests first come, first served,
 * one worker per core, whichever connection they came on. A connection
 * waits suspended (MHD_suspend_connection) while its request is queued or
 * ranked; the worker keeps the answer in the request (srv_text) and
 * resumes the connection, and its HTTP thread sends it (srv_on_request). */
#define _GNU_SOURCE /* pthread_setname_np */
#include "serve/serve_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *pool_main(void *arg)
{
    srv_worker *me = arg;
    shelf_server *s = me->srv;
    pthread_setname_np(pthread_self(), "shelf-rank");
    srv_thread_setup();
    pthread_mutex_lock(&s->pool_mu);
    for (;;) {
        while (!s->pool_head && !s->pool_stop) pthread_cond_wait(&s->pool_cv, &s->pool_mu);
        srv_req *r = s->pool_head;
        if (!r) break; /* stopping, and nothing is left */
        s->pool_head = r->job_next;
        if (!s->pool_head) s->pool_tail = NULL;
        s->pool_queued--;
        pthread_mutex_unlock(&s->pool_mu);
        atomic_fetch_add(&me->done, 1);
        r->job_rc = srv_dispatch(r);
        atomic_store_explicit(&r->job_done, 1, memory_order_release);
        /* r is the HTTP thread's again from here (it may be freed at once) */
        MHD_resume_connection(r->conn);
        atomic_fetch_sub(&s->busy, 1);
        pthread_mutex_lock(&s->pool_mu);
    }
    pthread_mutex_unlock(&s->pool_mu);
    return NULL;
}

int srv_pool_start(shelf_server *s, shelf_err *err)
{
    unsigned n = s->o.workers;
    if (!n) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        n = nc > 0 ? (unsigned)nc : 1;
    }
    if (!(s->pool = calloc(n, sizeof *s->pool))) return shelf_err_set(err, SHELF_ENOMEM, "out of memory");
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    s->pool_init = 1;
    for (; s->n_pool < n; s->n_pool++) {
        s->pool[s->n_pool].srv = s;
        if (pthread_create(&s->pool[s->n_pool].t, NULL, pool_main, &s->pool[s->n_pool])) {
            srv_pool_stop(s);
            return shelf_err_set(err, SHELF_EIO, "serve: cannot start the ranking workers");
        }
    }
    return 0;
}

void srv_pool_submit(shelf_server *s, srv_req *r)
{
    r->job_next = NULL;
    pthread_mutex_lock(&s->pool_mu);
    if (s->pool_tail) s->pool_tail->job_next = r;
    else s->pool_head = r;
    s->pool_tail = r;
    s->pool_queued++;
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}

unsigned srv_pool_queued(shelf_server *s)
{
    pthread_mutex_lock(&s->pool_mu);
    unsigned n = s->pool_queued;
    pthread_mutex_unlock(&s->pool_mu);
    return n;
}

void srv_pool_stop(shelf_server *s)
{
    if (!s->pool_init) return;
    pthread_mutex_lock(&s->pool_mu);
    s->pool_stop = 1;
    pthread_cond_broadcast(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
    for (unsigned k = 0; k < s->n_pool; k++) pthread_join(s->pool[k].t, NULL);
    free(s->pool);
    s->pool = NULL;
    s->n_pool = 0;
    pthread_cond_destroy(&s->pool_cv);
    pthread_mutex_destroy(&s->pool_mu);
    s->pool_init = 0;
}
