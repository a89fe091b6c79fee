/* ingest.c: durable event ingestion with group commit. Request threads queue
 * validated batches and wait; one writer thread takes everything queued,
 * writes it in one SQLite transaction, commits (WAL, synchronous=FULL: the
 * commit is on disk when it returns), then updates the live state
 * (histories, popularity) and wakes the waiters. Batches are validated
 * before they are queued, so a failure here is the store's (disk full,
 * I/O): the whole group is rolled back and every waiter gets the error. Served slates ride along in
 * the same transactions without anyone waiting for them. */
#include "serve_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SERVED_QUEUE_MAX 100000
#define SERVED_PER_TURN 1000  /* slates written per commit at most */
#define SERVED_WITH_EVENTS 200 /* ... when event batches wait too */
/* Slates alone wait for company: the writer logs them once SERVED_BATCH are
 * queued or the first has waited SERVED_DELAY_S (or events come, or the
 * server stops). Every commit costs SQLite a pass over its page cache's hash
 * table (pcache truncation at the end of the transaction: ~13% of the
 * server's CPU under a slate-only load when each slate was its own turn). */
#define SERVED_BATCH 256
#define SERVED_DELAY_S 0.05

static void served_free(srv_served *sv)
{
    while (sv) {
        srv_served *n = sv->next;
        shelf_slate_free(&sv->slate);
        free(sv);
        sv = n;
    }
}

/* writes one batch; store_mu held, inside the transaction */
static int write_batch(shelf_server *s, srv_batch *b, uint32_t *user_idx, int *created)
{
    shelf_event ev;
    for (size_t i = 0; i < b->n; i++) {
        const srv_event *e = &b->ev[i];
        int rc = shelf_store_user_idx(s->st, e->user, strlen(e->user), 1, &user_idx[i], &created[i]);
        if (rc) {
            snprintf(b->msg, sizeof b->msg, "events[%zu]: %s", i, shelf_store_errmsg(s->st));
            return rc;
        }
        ev = (shelf_event){.user = user_idx[i], .item = e->item, .type = e->type, .value = e->value, .ts = e->ts,
                           .rec_id = e->rec_id, .context = e->context};
        if ((rc = shelf_store_add_events(s->st, &ev, 1))) {
            snprintf(b->msg, sizeof b->msg, "events[%zu]: %s", i, shelf_store_errmsg(s->st));
            return rc;
        }
    }
    return 0;
}

/* A model with online updates learns from the committed events; ranking
 * holds the model for reading meanwhile (no shopper's lock is taken here:
 * ranking takes a shopper's lock before the model's). */
static void observe_batches(shelf_server *s, const srv_batch *batches, const uint32_t *uidx)
{
    srv_engine *eng = srv_engine_get(s);
    if (eng->caps & SHELF_CAP_ONLINE) {
        pthread_rwlock_wrlock(&eng->model_rw);
        size_t off = 0;
        for (const srv_batch *b = batches; b; b = b->next) {
            for (size_t i = 0; i < b->n; i++) {
                const srv_event *e = &b->ev[i];
                shelf_event ev = {.user = uidx[off + i], .item = e->item, .type = e->type, .value = e->value,
                                  .ts = e->ts};
                if (shelf_model_observe(eng->model, &ev)) /* a shopper or item it never saw */
                    shelf_debug("serve: %s", shelf_model_errmsg(eng->model));
            }
            off += b->n;
        }
        pthread_rwlock_unlock(&eng->model_rw);
    }
    srv_engine_put(eng);
}

/* Up to max queued slates off the served queue (q_mu held): bounded work
 * per turn, so a backlog of the served log never holds the store long. */
static srv_served *take_slates(shelf_server *s, size_t max)
{
    srv_served *head = s->s_head, *cut = head;
    size_t taken = head ? 1 : 0;
    while (cut && cut->next && taken < max) {
        cut = cut->next;
        taken++;
    }
    s->s_head = cut ? cut->next : NULL;
    if (!s->s_head) s->s_tail = NULL;
    if (cut) cut->next = NULL;
    s->s_pending -= taken;
    return head;
}

/* Writes slates to the served log in one transaction, then frees them. */
static void log_slates(shelf_server *s, srv_served *served)
{
    size_t n = 0, logged = 0;
    for (srv_served *sv = served; sv; sv = sv->next) n++;
    pthread_mutex_lock(&s->store_mu);
    /* lazy: the log reaches the disk with the next events commit or
     * checkpoint, without an fsync of its own */
    int rc = shelf_store_begin_lazy(s->st);
    unsigned char hdr[SRV_WAL_HDR];
    srv_keys_header(s, hdr);
    for (srv_served *sv = served; !rc && sv; sv = sv->next) {
        if (shelf_store_log_slate(s->st, &sv->slate) == 0) logged++;
        else shelf_warn("serve: served log: %s", shelf_store_errmsg(s->st));
    }
    if (!rc && !(rc = shelf_store_commit(s->st))) srv_keys_own_commit(s, hdr);
    srv_write_outcome(s, rc, "served log", rc ? shelf_store_errmsg(s->st) : "");
    if (rc) {
        shelf_error("serve: served log commit failed: %s", shelf_store_errmsg(s->st));
        shelf_store_rollback(s->st);
        logged = 0;
    }
    pthread_mutex_unlock(&s->store_mu);
    atomic_fetch_add(&s->m.served, logged);
    atomic_fetch_add(&s->m.served_dropped, n - logged);
    served_free(served);
}

/* Commits the batches' events in one transaction, applies them to the live
 * state (still under store_mu, so that a user deleted meanwhile cannot come
 * back) and to a model with online updates, then wakes their senders. */
static void commit_events(shelf_server *s, srv_batch *batches)
{
    size_t n_ev = 0;
    for (srv_batch *b = batches; b; b = b->next) n_ev += b->n;
    uint32_t *uidx = malloc((n_ev ? n_ev : 1) * sizeof *uidx);
    int *created = calloc(n_ev ? n_ev : 1, sizeof *created);
    int rc = (!uidx || !created) ? SHELF_ENOMEM : 0;
    pthread_mutex_lock(&s->store_mu);
    if (!rc) rc = shelf_store_begin(s->st);
    unsigned char hdr[SRV_WAL_HDR];
    srv_keys_header(s, hdr);
    if (!rc) {
        size_t off = 0;
        for (srv_batch *b = batches; b; b = b->next) {
            /* batches were validated: a failure here is the store's (disk
             * full, I/O); the whole transaction is then rolled back */
            if ((rc = write_batch(s, b, uidx + off, created + off))) break;
            off += b->n;
        }
        if (!rc && !(rc = shelf_store_commit(s->st))) srv_keys_own_commit(s, hdr);
        if (rc) shelf_store_rollback(s->st);
        /* a commit's events have consecutive ids (the write lock is ours) */
        uint64_t last = shelf_store_last_event_id(s->st);
        if (!rc && n_ev) srv_live_own_events(s, last - n_ev + 1, last);
    }
    char why[SRV_WHY];
    snprintf(why, sizeof why, "%s", rc == SHELF_ENOMEM ? "out of memory" : shelf_store_errmsg(s->st));
    if (rc) shelf_error("serve: event commit failed: %s", why);
    srv_write_outcome(s, rc, "events", why);
    if (!rc) {
        size_t off = 0;
        for (srv_batch *b = batches; b; b = b->next) {
            for (size_t i = 0; i < b->n; i++) {
                const srv_event *e = &b->ev[i];
                if (created[off + i]) srv_user_add(s, e->user, uidx[off + i]);
                srv_live_event(s, uidx[off + i], e->item, e->type, e->ts);
            }
            off += b->n;
        }
        observe_batches(s, batches, uidx);
        atomic_fetch_add(&s->m.events, n_ev);
    }
    pthread_mutex_unlock(&s->store_mu);
    free(uidx);
    free(created);
    pthread_mutex_lock(&s->q_mu);
    for (srv_batch *b = batches; b;) {
        srv_batch *n = b->next; /* the waiter owns b: read next first */
        b->rc = rc;
        if (rc && !b->msg[0]) snprintf(b->msg, sizeof b->msg, "%s", why);
        b->done = 1;
        b = n;
    }
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->q_mu);
}

static void *writer_main(void *arg)
{
    shelf_server *s = arg;
    double keys_read = srv_now();
    for (;;) {
        pthread_mutex_lock(&s->q_mu);
        for (;;) {
            /* without the store's wal-index to watch (auth.c), the API keys
             * are read again every few seconds, busy or idle, so a key created
             * or revoked with `shelf keys` counts without a restart */
            if (s->shm_fd < 0 && srv_now() - keys_read >= SRV_KEYS_REFRESH_S) {
                pthread_mutex_unlock(&s->q_mu);
                shelf_err e = {0};
                if (srv_load_keys(s, &e)) shelf_warn("serve: reading the API keys failed: %s", e.msg);
                keys_read = srv_now();
                pthread_mutex_lock(&s->q_mu);
            }
            if (s->q_head || s->q_stop) break;
            double wait_s = SRV_KEYS_REFRESH_S;
            if (s->s_head) {
                double waited = srv_now() - s->s_first;
                if (s->s_pending >= SERVED_BATCH || waited >= SERVED_DELAY_S) break;
                wait_s = SERVED_DELAY_S - waited;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            long ns = until.tv_nsec + (long)(wait_s * 1e9);
            until.tv_sec += ns / 1000000000L;
            until.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&s->q_cv, &s->q_mu, &until);
        }
        if (!s->q_head && !s->s_head && s->q_stop) {
            pthread_mutex_unlock(&s->q_mu);
            break;
        }
        srv_batch *batches = s->q_head;
        s->q_head = s->q_tail = NULL;
        srv_served *served = take_slates(s, batches ? SERVED_WITH_EVENTS : SERVED_PER_TURN);
        pthread_mutex_unlock(&s->q_mu);
        /* events first: their senders wait for the commit; the served log
         * after, in a transaction of its own */
        if (batches) commit_events(s, batches);
        if (served) log_slates(s, served);
    }
    return NULL;
}

int srv_ingest_start(shelf_server *s, shelf_err *err)
{
    if (pthread_create(&s->writer, NULL, writer_main, s))
        return shelf_err_set(err, SHELF_ENOMEM, "cannot start the writer thread");
    return 0;
}

void srv_ingest_stop(shelf_server *s)
{
    pthread_mutex_lock(&s->q_mu);
    s->q_stop = 1;
    pthread_cond_broadcast(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    pthread_join(s->writer, NULL);
}

int srv_ingest_wait(shelf_server *s, srv_batch *b)
{
    b->done = 0;
    b->rc = 0;
    b->msg[0] = '\0';
    b->next = NULL;
    pthread_mutex_lock(&s->q_mu);
    if (s->q_stop) {
        pthread_mutex_unlock(&s->q_mu);
        snprintf(b->msg, sizeof b->msg, "the server is shutting down");
        return SHELF_EIO;
    }
    if (s->q_tail) s->q_tail->next = b;
    else s->q_head = b;
    s->q_tail = b;
    pthread_cond_signal(&s->q_cv);
    while (!b->done) pthread_cond_wait(&s->done_cv, &s->q_mu);
    pthread_mutex_unlock(&s->q_mu);
    return b->rc;
}

void srv_served_push(shelf_server *s, shelf_slate *sl)
{
    srv_served *sv = malloc(sizeof *sv);
    if (!sv) {
        atomic_fetch_add(&s->m.served_dropped, 1);
        return;
    }
    sv->slate = *sl;
    sv->next = NULL;
    *sl = (shelf_slate){.user = SHELF_NONE};
    pthread_mutex_lock(&s->q_mu);
    if (s->q_stop || s->s_pending >= SERVED_QUEUE_MAX) {
        pthread_mutex_unlock(&s->q_mu);
        atomic_fetch_add(&s->m.served_dropped, 1);
        served_free(sv);
        return;
    }
    if (s->s_tail) s->s_tail->next = sv;
    else s->s_head = sv;
    s->s_tail = sv;
    /* the writer is woken by the first slate (its deadline starts) and by a
     * full batch, not by every slate */
    if (++s->s_pending == 1) s->s_first = srv_now();
    if (s->s_pending == 1 || s->s_pending == SERVED_BATCH) pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
}
