/* pacing_int.h: the budgets of a scenario's promotions (scenario_int.h),
 * spent over the day in step with the traffic. A promotion with a budget
 * of B impressions a day may show at time t (seconds since 00:00 UTC) while
 * its spend today is below B x plan(t), plan being the share of the day's
 * traffic expected by t: the scenario's slates per hour over the past days
 * (the served log), linear within an hour, or an even spread when the log
 * holds too few. So a promotion does not spend its budget by 9 am, and it
 * stops at B. Spend is counted when the room places a promotion's item and
 * seeded from the served log at start, so a restart does not reset it. */
#ifndef SHELF_RANK_PACING_INT_H
#define SHELF_RANK_PACING_INT_H

#include <stddef.h>
#include <stdint.h>

#define SHELF__DAY 86400
#define SHELF__PACE_MIN_SLATES 240 /* fewer slates in the curve's days: an even spread */

/* The share of a day's traffic expected by t_of_day (0..86400) from the
 * slates per hour (any scale; too few: even). */
double shelf__pace_plan(const double hourly[24], int64_t t_of_day);

/* Spend and curves of every (scenario, promotion), thread-safe. */
typedef struct shelf__ledger shelf__ledger;

shelf__ledger *shelf__ledger_new(void);
void shelf__ledger_free(shelf__ledger *l); /* accepts NULL */

/* The scenario's slates per hour over the past days (its curve), as read on day. */
void shelf__ledger_curve(shelf__ledger *l, const char *scenario, const double hourly[24], int64_t day);
/* 1 when the ledger holds the scenario's curve read on day, and (promo not
 * NULL) the promotion's spend on day: nothing to read from the log again. */
int shelf__ledger_has(shelf__ledger *l, const char *scenario, const char *promo, int64_t day);
/* At least spent impressions for the promotion on day (unix day number):
 * the served log's count, kept when it is above what the ledger holds. */
void shelf__ledger_seed(shelf__ledger *l, const char *scenario, const char *promo, int64_t day, int64_t spent);

/* How many of want impressions the promotion with budget may have now
 * (0 when it is ahead of its plan or spent), taken from its budget at
 * once (shelf__ledger_refund gives back what was not placed). */
uint32_t shelf__ledger_take(shelf__ledger *l, const char *scenario, const char *promo, int64_t budget, uint32_t want,
                            int64_t now);
void shelf__ledger_refund(shelf__ledger *l, const char *scenario, const char *promo, uint32_t n, int64_t now);

/* Today's spend and the plan's impressions by now (for /v1/scenarios). */
void shelf__ledger_state(shelf__ledger *l, const char *scenario, const char *promo, int64_t budget, int64_t now,
                         int64_t *spent, double *planned);

#endif
