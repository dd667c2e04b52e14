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
 * eligible under it and their local ids and names (local data). Returns 0 or < 0. */
int directives_print(sqlite3 *db, int32_t today, FILE *f);

#endif
