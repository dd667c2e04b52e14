/* Directives at the node, as the clerk sees them: those in force, each with the participants
 * eligible under it. They are verified and stored by common/dirstore.h. */
#ifndef MUNICIPAL_NODE_DIRECTIVES_H
#define MUNICIPAL_NODE_DIRECTIVES_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "directive.h"
#include "dirstore.h"

/* Prints the directives in force on day today, each with the number of live participants
 * eligible under it and their local ids and names (local data). A participant's registration
 * day is read from its local row (registered_on, in the node's calendar: bs non-zero for
 * BS), since the upstream record carries only its months. Returns 0 or < 0. */
int directives_print(sqlite3 *db, int bs, int32_t today, FILE *f);

/* The same as JSON into *out (owned by the caller): {"directives": [{"serial", "key_id",
 * "title", "text", "from", "to" (null: open), "eligible_count", "eligible": [{"local_id",
 * "full_name"}, ...] (the first 50)}]}, dates in the node's calendar (bs). Returns 0, REINT_EDB
 * or REINT_ENOMEM. */
int directives_json(sqlite3 *db, int bs, int32_t today, json_t **out);

#endif
