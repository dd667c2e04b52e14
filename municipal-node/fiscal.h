/* The months of a fiscal year as the node knows them, for the workspace's month close (web.h):
 * each month of the node's calendar with whether it has ended and whether it is closed (a
 * MONTH_CLOSE record, `municipal-node close-month`), and the checklist a clerk looks at
 * before closing it: the records dated in it (registrations, services, enterprises) and the
 * referrals dated in it still without a delivery. Nepal's fiscal year starts on 1 Shrawan (BS
 * month 4); a node keeping Gregorian dates counts its year from July. */
#ifndef MUNICIPAL_NODE_FISCAL_H
#define MUNICIPAL_NODE_FISCAL_H

#include "error.h"

#include <jansson.h>

#include "intake.h"

/* The fiscal year starting in year fy (in the node's calendar; 0: the one containing today)
 * into *out (owned by the caller): {"calendar": "BS"|"AD", "fiscal_year": "2083/84", "year",
 * "today", "months": [{"month": "2083-04", "first", "last", "ended", "current", "closed",
 * "closed_by", "closed_ms", "records", "referrals_pending"}, ...]} (12 months, in order).
 * Returns 0, REINT_ERANGE (fy outside the calendar table), REINT_EDB or REINT_ENOMEM
 * (logged). */
int fiscal_year_json(intake *in, int fy, json_t **out);

#endif
