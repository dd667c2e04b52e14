/* The node's months as the clerk sees them (issue 14; DESIGN.md, Approval): each month of the
 * node's calendar that it closed or that its hub reviewed, in one of the states
 *   open      not closed, or closed and then deleted;
 *   closed    closed by a clerk, waiting for the province's reviewer (or closed again after a
 *             return, until the hub has seen the new close);
 *   approved  approved by the reviewer: the official figure;
 *   returned  sent back by the reviewer with a comment: open again, to be corrected and
 *             closed again (`close-month` then makes a new close);
 *   changed   approved, then changed here: waits for a new approval.
 *
 * The hub sends its changes of the municipality's months (common/review.h) in clock order; the
 * node stores each once, durably, before it acknowledges them (months_receive), and tells the
 * hub in each Hello how far it holds them (months_position). Tables, in the node's store:
 *   month_reviews(bs, ym, state, clock, version, decision, decided_by, decided_at, comment):
 *                 the newest change of each month;
 *   month_review_log(clock, ...): every change received, once. */
#ifndef MUNICIPAL_NODE_MONTHS_H
#define MUNICIPAL_NODE_MONTHS_H

#include "error.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "reintegration.pb-c.h"

/* Creates the tables when absent. Returns 0 or REINT_EDB. */
int months_init(sqlite3 *db);

/* The highest clock of the changes held (0: none). Returns 0 or REINT_EDB. */
int months_position(sqlite3 *db, uint64_t *through);

/* Stores the hub's changes r in one transaction of its own (durable when it returns 0): each
 * one once, a month's newest one as its state; *through is the highest clock of r. Every change
 * must be of municipality (else REINT_EFORBIDDEN), check (review_check; else REINT_EINVAL)
 * and have a clock at most REVIEW_AHEAD_MS ahead of this node's (else REINT_ERANGE), why says
 * which; nothing is stored then. Returns 0, those, or REINT_EDB. */
int months_receive(sqlite3 *db, uint32_t municipality, const Reint__V1__Reviews *r,
                   uint64_t *through, char *why, size_t whylen);

/* The clock of the newest decision that returned month ym (YYYYMM) of calendar bs (0: never
 * returned): a close after it is a new close. Returns 0 or REINT_EDB. */
int months_return_clock(sqlite3 *db, int bs, int32_t ym, uint64_t *clock);

/* Every month's state at one time, as the clerk sees it (as months_json gives it: a
 * MonthState, MONTH_STATE_OPEN for a month never closed): what an import's rows find
 * (an approved month turns "changed" once the hub has them, which may be before the import
 * ends: its results then said "changed" where the rows had changed an approved month). */
typedef struct months_states months_states;
/* Into *out (free with months_states_free). Returns 0, REINT_ENOMEM or REINT_EDB. */
int months_states_load(sqlite3 *db, int bs, months_states **out);
/* Month ym's state in s (MONTH_STATE_OPEN for a month it has no row for, or s NULL). */
int months_states_of(const months_states *s, int32_t ym);
void months_states_free(months_states *s);

/* The months of calendar bs (the node's) as {"months": [{period, state, closed, hub_state,
 * version, decided_by, decided_at, comment, clock}]}, returned months first, then newest
 * first; returned_only keeps the returned ones. *out is the caller's. Returns 0, REINT_ENOMEM
 * or REINT_EDB. */
int months_json(sqlite3 *db, int bs, int returned_only, json_t **out);

/* The same as text for `municipal-node months`, one line a month (and the comment of each
 * returned one). Returns 0, REINT_EDB or REINT_EIO. */
int months_print(sqlite3 *db, int bs, FILE *f);

#endif
