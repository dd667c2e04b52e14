/* The monthly review at the hub (issue 14; DESIGN.md, Approval): the state of every
 * municipality-month of the province, the reviewers' decisions, and the ordered log of every
 * change of state that travels down to the nodes and up to the federal tier.
 *
 * A municipality-month (in the calendar the municipality closes months in) is
 *   open      until its clerk closes it (its node's MonthClose record),
 *   closed    then, until a reviewer decides,
 *   approved  or returned by a reviewer of the province, who saw the month at `version`,
 *   returned  stays so until the clerk closes it again (a close newer than the decision),
 *   changed   when a record that affects an approved month arrives: its version passed the
 *             approved one; a new approval (of the new version) makes it approved again.
 * A month's version is the highest version of the node's records that affect its figures:
 * every record the rollup engine notes leaves the months whose snapshots it marks dirty
 * (rollup_track_months), each raised to that record's version. Versions are the nodes' hybrid
 * logical clocks, so they only grow, and a record that moves out of a month raises it too.
 *
 * Every change of state is a row of the log, numbered by the hub's own hybrid logical clock
 * (meta review_hlc, persisted with each change and kept above every clock the hub has seen in
 * the log, from the federal tier or from a node), so clocks are unique and increasing for the
 * province: a node receives its municipality's changes and the federal tier the province's,
 * in clock order, each acknowledging what it stored (ReviewAck); a receiver keeps a change
 * once (by clock), and a month's state is that of its change with the highest clock. A hub
 * rebuilt from nothing asks the federal tier for the province's log and merges the decisions
 * it recovers (reviews_recover); the states follow from them and the records the nodes send.
 *
 * A month a reviewer returned counts as not closed for reporting completeness and timeliness
 * until it is closed again (rollup_set_returned).
 *
 * Tables (in the hub store):
 *   review_months(municipality, bs, ym, version, state, clock, decision, seen_version,
 *                 decided_by, decided_at, comment, decision_clock): one row per month a
 *                 record touched or a decision named; decision 0 none, 3 approved, 4 returned.
 *   review_log(clock, municipality, bs, ym, state, version, decision, decided_by, decided_at,
 *              comment): every change, as sent.
 *   review_nodes(municipality, acked): the highest clock each node acknowledged.
 *
 * One reviews per hub store connection, used on the ingest's loop (reviews_report and
 * reviews_month_json excepted, which work on any connection). */
#ifndef PROVINCIAL_HUB_REVIEWS_H
#define PROVINCIAL_HUB_REVIEWS_H

#include "error.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "reintegration.pb-c.h"
#include "review.h"
#include "rollup.h"

typedef struct reviews reviews;

/* A month's review as the hub holds it. */
typedef struct reviews_month {
    uint32_t municipality;
    int bs;     /* 1: a BS month; 0: a Gregorian one */
    int32_t ym; /* YYYYMM */
    int state;  /* MonthState */
    uint64_t version, clock;
    int closed; /* a close of the month is live */
    int32_t closed_day;
    uint64_t close_version;
    int decision; /* 0, or MONTH_STATE_APPROVED / _RETURNED */
    uint64_t seen_version, decided_at, decision_clock;
    char decided_by[REVIEW_WHO_MAX + 1];
    char comment[REVIEW_COMMENT_MAX + 1];
} reviews_month;

/* Creates the tables when absent and loads the clock. roll is the engine whose touched months
 * feed the versions and which counts returned months; both stay the caller's. Returns 0 or
 * REINT_EDB with err set. */
int reviews_open(reviews **out, sqlite3 *db, rollup *roll, char *err, size_t errlen);
void reviews_close(reviews *rv);

/* In the transaction that noted records (after the notes): raises the versions of the months
 * the engine kept (rollup_touched_months) and logs the changes of state that follow (a close,
 * a change since approval, a close after a return). Returns 0 or REINT_E* (roll back). */
int reviews_note(reviews *rv);

/* The number of changes logged since the last call (so that the caller pushes them). */
uint64_t reviews_take_changes(reviews *rv);

/* What the reviewer saw of a month: its version, and its clock (0: not given). */
typedef struct reviews_seen {
    uint64_t version;
    uint64_t clock;
} reviews_seen;

/* A reviewer's decision, in the caller's transaction: approve (or return) the month (bs, ym)
 * of municipality, as the reviewer saw it, by who (a token name) with comment (checked by the
 * caller: review_comment_ok). Returns 0 with *out the month after it, or with *out the month
 * as it is: REINT_ESTALE (its version is no longer the one seen, or its clock, when given,
 * moved: decided since), REINT_EEXIST (approved at that version: approved again never, and
 * returned only by a reviewer who gives the clock of that approval), REINT_EINVAL (open or
 * returned: nothing to decide); or REINT_EDB. */
int reviews_decide(reviews *rv, uint32_t municipality, int bs, int32_t ym, int approve,
                   const reviews_seen *seen, const char *who, const char *comment,
                   reviews_month *out);

/* The month as held (an untouched month is open, version 0). Works on any connection to the
 * store. Returns 0 or REINT_EDB. */
int reviews_get(sqlite3 *db, uint32_t municipality, int bs, int32_t ym, reviews_month *out);

/* Changes from the federal tier (a rebuilt hub recovering its province's log), in the
 * caller's transaction: each kept in the log once (by clock), each decision newer than the
 * month's merged into it, the states recomputed (a change logged when one moves). Every
 * change must be of a municipality of province (else REINT_EFORBIDDEN, nothing applied).
 * Returns 0, REINT_EFORBIDDEN, REINT_EINVAL (a change that does not check) or REINT_EDB. */
int reviews_recover(reviews *rv, const Reint__V1__Reviews *r, unsigned province, char *why,
                    size_t whylen);

/* Moves the clock past a clock seen elsewhere (a node's Hello holds changes up to it). */
void reviews_observe(reviews *rv, uint64_t clock);

/* The highest clock of the log (of one municipality; 0: of all). Returns 0 or REINT_EDB. */
int reviews_last_clock(sqlite3 *db, uint32_t municipality, uint64_t *out);

/* A node acknowledged its changes through clock. Returns 0 or REINT_EDB. */
int reviews_node_acked(reviews *rv, uint32_t municipality, uint64_t through);

/* Up to REVIEW_PAGE changes of municipality (0: of every one) above after, oldest first, as a
 * Reviews message whose packed size stays below max_bytes (at least one change when there is
 * any). *out is the caller's: free it with reviews_free. Returns 0, REINT_ENOMEM or REINT_EDB. */
int reviews_load(sqlite3 *db, uint32_t municipality, uint64_t after, size_t max_bytes,
                 Reint__V1__Reviews **out);
void reviews_free(Reint__V1__Reviews *r);

/* The month as JSON: municipality, period, calendar, state, version, closed_day, closed_on
 * (ISO), decision fields (decided_by, decided_at, comment; null when none). A new reference
 * or NULL. */
json_t *reviews_month_json(const reviews_month *m);

/* GET /v1/reviews: every municipality of province with its review of period (a BS month or
 * a Gregorian month) when it closes months in that calendar, and the gap figures an officer
 * decides on: records this month and the month before, their change, referrals pending and
 * services unavailable. Runs on a reader (gaps_reader_open). *out is the caller's. Returns 0,
 * REINT_EINVAL (err set), REINT_ENOMEM or REINT_EDB. */
int reviews_report(sqlite3 *db, unsigned province, const char *period, json_t **out, char *err,
                   size_t errlen);

#endif
