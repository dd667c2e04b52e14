/* Directives at the node: verified with the federal keyring before they are stored (a hub
 * relays them but cannot forge or alter them), listed with each participant's eligibility. */
#ifndef MUNICIPAL_NODE_DIRECTIVES_H
#define MUNICIPAL_NODE_DIRECTIVES_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "directive.h"

/* Creates the directives table in db when missing. Returns 0 or a negative code. */
int directives_open(sqlite3 *db);

/* Highest serial held (0 when none). */
uint64_t directives_last_serial(sqlite3 *db);

/* Verifies sd (known key, signature over the exact bytes, serial above the last held) and
 * stores it durably. A directive already held with the same serial and bytes is accepted
 * again without change (a relay after a lost ack). Returns 0 with *serial set, or a
 * DIRECTIVE_E* code with a message in err; nothing is stored then. */
int directives_receive(sqlite3 *db, const directive_keyring *keys,
                       const Reint__V1__SignedDirective *sd, uint64_t *serial, char *err,
                       size_t errlen);

/* Prints the directives in force on day today, each with the number of live participants
 * eligible under it and their local ids and names (local data). Returns 0 or < 0. */
int directives_print(sqlite3 *db, int32_t today, FILE *f);

#endif
