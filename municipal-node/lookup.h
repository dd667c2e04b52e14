/* What the workspace reads back from the node's store (web.h, through the JSON API): a
 * search over persons by name, phone, citizenship number or local id; a person with their
 * services and enterprises; one row of any kind; the availability table; the dead letters.
 * All of it is local data (personal data included), read by the node's own clerks; none of
 * it is sent anywhere.
 *
 * Rows are JSON objects keyed by the CSV column names with the clerk's values as text (null
 * when unknown), plus "_updated_ms" and "_clerk" (the last change). Every function returns
 * 0 with *out (owned by the caller, json_decref), REINT_ENOTFOUND where said, REINT_EDB
 * (logged) or REINT_ENOMEM; never a partial answer. */
#ifndef MUNICIPAL_NODE_LOOKUP_H
#define MUNICIPAL_NODE_LOOKUP_H

#include "error.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "intake.h"

/* Most rows a search returns. */
#define LOOKUP_SEARCH_MAX 200

/* Live persons whose local_id, phone (its digits too) or citizenship_no contain q, or whose
 * full_name contains each word of q in any order (case-insensitive for Latin letters), the most
 * recently changed first, at most limit (1..LOOKUP_SEARCH_MAX): {"persons": [row, ...], "more":
 * bool}. An empty q lists the most recently changed. */
int lookup_search(intake *in, const char *q, size_t limit, json_t **out);

/* The other live persons who look like the live person local_id: the same citizenship
 * number (its letters and digits) or the same name and phone (its digits, Nepal's 977 aside),
 * as [{"local_id", "same": "citizenship_no" | "name_phone"}] (at most 20) into *out (the
 * caller's). Returns 0, REINT_ENOMEM or REINT_EDB. */
int lookup_duplicates(intake *in, const char *local_id, json_t **out);

/* The persons an import stored (live, changed at or after since_ms by clerk) that look like
 * another live person, as lookup_duplicates compares them: [{"local_id", "like", "same"}]
 * (a pair of two rows of the import once), ordered by local_id, at most LOOKUP_IMPORT_DUPS
 * into *out (the caller's); *more is set when there were more. Each person's keys are
 * computed once, into an indexed table of the connection's own (TEMP), dropped after.
 * Returns 0, REINT_ENOMEM or REINT_EDB. */
#define LOOKUP_IMPORT_DUPS 50
int lookup_import_duplicates(intake *in, int64_t since_ms, const char *clerk, json_t **out,
                             int *more);

/* {"person": row, "services": [row, ...], "enterprises": [row, ...]}, services and
 * enterprises by date, the newest first. REINT_ENOTFOUND when the person is not live. */
int lookup_person(intake *in, const char *local_id, json_t **out);

/* {"row": row} of a live record of kind (persons, services, enterprises). REINT_ENOTFOUND
 * when it is not live. */
int lookup_row(intake *in, int kind, const char *local_id, json_t **out);

/* {"availability": [row, ...]} by service and provider. */
int lookup_availability(intake *in, json_t **out);

/* {"dead_letters": [{"kind", "local_id", "field", "reason", "at_ms"}, ...]}, the newest
 * first, at most limit. */
int lookup_dead_letters(intake *in, size_t limit, json_t **out);

#endif
