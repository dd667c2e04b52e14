/* Directives at the node, as the clerk sees them: those in force, each with the participants
 * eligible under it. They are verified and stored by common/dirstore.h. */
#ifndef MUNICIPAL_NODE_DIRECTIVES_H
#define MUNICIPAL_NODE_DIRECTIVES_H

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

#endif
