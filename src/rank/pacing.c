/* pacing.c: the ledger of the promotions' budgets and their pacing over
 * the day (pacing_int.h). */
#include "rank/pacing_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double shelf__pace_plan(const double hourly[24], int64_t t)
{
    if (t <= 0) return 0;
    if (t >= SHELF__DAY) return 1;
    double tot = 0;
    for (int h = 0; h < 24; h++) tot += hourly && hourly[h] > 0 ? hourly[h] : 0;
    if (tot < SHELF__PACE_MIN_SLATES) return (double)t / SHELF__DAY;
    int h = (int)(t / 3600);
    double done = 0;
    for (int k = 0; k < h; k++) done += hourly[k] > 0 ? hourly[k] : 0;
    done += (hourly[h] > 0 ? hourly[h] : 0) * (double)(t - (int64_t)h * 3600) / 3600.0;
    return done / tot;
}

typedef struct entry {
    char scenario[48], promo[48];
    int64_t day, spent;
} entry;

typedef struct curve {
    char scenario[48];
    double hourly[24];
    int64_t day; /* read on */
} curve;

struct shelf__ledger {
    pthread_mutex_t mu;
    entry *e;
    size_t n, cap;
    curve *c;
    size_t nc, ccap;
};

shelf__ledger *shelf__ledger_new(void)
{
    shelf__ledger *l = calloc(1, sizeof *l);
    if (l) pthread_mutex_init(&l->mu, NULL);
    return l;
}

void shelf__ledger_free(shelf__ledger *l)
{
    if (!l) return;
    pthread_mutex_destroy(&l->mu);
    free(l->e);
    free(l->c);
    free(l);
}

/* the entry of (scenario, promo), made when missing (NULL: out of memory); under mu */
static entry *find(shelf__ledger *l, const char *scenario, const char *promo)
{
    for (size_t k = 0; k < l->n; k++)
        if (!strcmp(l->e[k].scenario, scenario) && !strcmp(l->e[k].promo, promo)) return &l->e[k];
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        entry *e = realloc(l->e, cap * sizeof *e);
        if (!e) return NULL;
        l->e = e;
        l->cap = cap;
    }
    entry *e = &l->e[l->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->scenario, sizeof e->scenario, "%s", scenario);
    snprintf(e->promo, sizeof e->promo, "%s", promo);
    return e;
}

static const double *curve_of(shelf__ledger *l, const char *scenario)
{
    for (size_t k = 0; k < l->nc; k++)
        if (!strcmp(l->c[k].scenario, scenario)) return l->c[k].hourly;
    return NULL;
}

void shelf__ledger_curve(shelf__ledger *l, const char *scenario, const double hourly[24], int64_t day)
{
    pthread_mutex_lock(&l->mu);
    curve *c = NULL;
    for (size_t k = 0; k < l->nc && !c; k++)
        if (!strcmp(l->c[k].scenario, scenario)) c = &l->c[k];
    if (!c && l->nc == l->ccap) {
        size_t cap = l->ccap ? 2 * l->ccap : 8;
        curve *n = realloc(l->c, cap * sizeof *n);
        if (n) l->c = n, l->ccap = cap;
    }
    if (!c && l->nc < l->ccap) {
        c = &l->c[l->nc++];
        snprintf(c->scenario, sizeof c->scenario, "%s", scenario);
    }
    if (c) {
        memcpy(c->hourly, hourly, sizeof c->hourly);
        c->day = day;
    }
    pthread_mutex_unlock(&l->mu);
}

int shelf__ledger_has(shelf__ledger *l, const char *scenario, const char *promo, int64_t day)
{
    int has = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t k = 0; k < l->nc && !has; k++) has = !strcmp(l->c[k].scenario, scenario) && l->c[k].day == day;
    if (has && promo) {
        has = 0;
        for (size_t k = 0; k < l->n && !has; k++)
            has = !strcmp(l->e[k].scenario, scenario) && !strcmp(l->e[k].promo, promo) && l->e[k].day == day;
    }
    pthread_mutex_unlock(&l->mu);
    return has;
}

/* the entry's spend as of now's day (a new day starts from 0); under mu */
static entry *today(shelf__ledger *l, const char *scenario, const char *promo, int64_t now)
{
    entry *e = find(l, scenario, promo);
    int64_t day = now / SHELF__DAY;
    if (e && e->day != day) e->day = day, e->spent = 0;
    return e;
}

void shelf__ledger_seed(shelf__ledger *l, const char *scenario, const char *promo, int64_t day, int64_t spent)
{
    pthread_mutex_lock(&l->mu);
    entry *e = today(l, scenario, promo, day * SHELF__DAY);
    if (e && spent > e->spent) e->spent = spent;
    pthread_mutex_unlock(&l->mu);
}

uint32_t shelf__ledger_take(shelf__ledger *l, const char *scenario, const char *promo, int64_t budget, uint32_t want,
                            int64_t now)
{
    pthread_mutex_lock(&l->mu);
    entry *e = today(l, scenario, promo, now);
    uint32_t got = 0;
    if (e) {
        double plan = (double)budget * shelf__pace_plan(curve_of(l, scenario), now % SHELF__DAY);
        if ((double)e->spent < plan && e->spent < budget) {
            int64_t room = budget - e->spent;
            got = (int64_t)want < room ? want : (uint32_t)room;
            e->spent += got;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return got;
}

void shelf__ledger_refund(shelf__ledger *l, const char *scenario, const char *promo, uint32_t n, int64_t now)
{
    if (!n) return;
    pthread_mutex_lock(&l->mu);
    entry *e = today(l, scenario, promo, now);
    if (e) e->spent = e->spent > (int64_t)n ? e->spent - n : 0;
    pthread_mutex_unlock(&l->mu);
}

void shelf__ledger_state(shelf__ledger *l, const char *scenario, const char *promo, int64_t budget, int64_t now,
                         int64_t *spent, double *planned)
{
    pthread_mutex_lock(&l->mu);
    entry *e = today(l, scenario, promo, now);
    *spent = e ? e->spent : 0;
    *planned = (double)budget * shelf__pace_plan(curve_of(l, scenario), now % SHELF__DAY);
    pthread_mutex_unlock(&l->mu);
}
