/* Follow-ups: the referrals a clerk still has to chase (`municipal-node followups`, GET
 * /v1/followups). A REFERRED service is pending while its live person has no DELIVERED
 * service of the same type dated on or after the referral. The list is local data (names and
 * phone numbers), never sent upstream; it is read from the table local_services that
 * intake.c keeps, joined with the outbox's live records. */
#ifndef MUNICIPAL_NODE_FOLLOWUPS_H
#define MUNICIPAL_NODE_FOLLOWUPS_H

#include "error.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "intake.h"

/* Pending referrals on day today (0 = intake_today(in)), grouped by person, the longest-
 * waiting person first. *out (owned by the caller, json_decref) is {"today": "...",
 * "persons": [{"local_id", "full_name", "phone", "days_waiting", "referrals": [{"local_id",
 * "service", "date", "days_waiting", "provider"}]}]}, dates in the node's calendar. Returns
 * 0, REINT_EDB when the store failed or REINT_ENOMEM (logged either way; *out is then NULL:
 * never a partial list). */
int followups_json(intake *in, int32_t today, json_t **out);

/* The same as text for the CLI, on f. Returns 0, the codes of followups_json, or REINT_EIO
 * when f could not be written (logged). */
int followups_print(intake *in, int32_t today, FILE *f);

#endif
