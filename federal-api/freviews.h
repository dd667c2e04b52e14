/* The monthly review at the federal tier, the hubs' side (issue 14): the changes of state of a
 * province's municipality-months that its hub sends (Reviews, each acknowledged by ReviewAck
 * once committed), and the same changes read back for a hub rebuilt from nothing
 * (ReviewRequest). Kept in PostgreSQL (migrations/0008_approvals.sql): approval_log, every
 * change once by (province, clock); approvals, each month's newest change. fingest.c calls
 * these from its sessions; the reads for people are fapprovals.h's. */
#ifndef FEDERAL_API_FREVIEWS_H
#define FEDERAL_API_FREVIEWS_H

#include "error.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "reintegration.pb-c.h"

/* Checks every change of r (common/review.h, and that each is of a municipality of province),
 * then queues their storage in one statement (fed_apply_reviews); cb gets its result (one row:
 * the number of changes that were new) and ud. *through is r's highest clock. Returns 0,
 * REINT_EFORBIDDEN (a municipality of another province: a security event for the caller),
 * REINT_EINVAL (a change that does not check), both with why set and nothing queued, or
 * db_query's code. */
int freviews_apply(db_pool *db, int province, const Reint__V1__Reviews *r, uint64_t *through,
                   db_cb cb, void *ud, char *why, size_t whylen);

/* Queues the read of province's changes above after, oldest first, REVIEW_PAGE at most;
 * freviews_decode turns the rows into a Reviews message. Returns 0 or db_query's code. */
int freviews_load(db_pool *db, int province, uint64_t after, db_cb cb, void *ud);
/* The rows of freviews_load as a Reviews message; free it with freviews_free. Returns 0,
 * REINT_ENOMEM or REINT_EMALFORMED (a row not of the statement's shape). */
int freviews_decode(const PGresult *res, Reint__V1__Reviews **out);
void freviews_free(Reint__V1__Reviews *r);

/* The SQL of the highest clock held for province $1 (a column of the Hello's statement). */
#define FREVIEWS_THROUGH_SQL                                                                       \
    "(SELECT coalesce(max(clock), 0) FROM approval_log WHERE province = $1::smallint)"

#endif
