/* The directive store of a SQLite tier (the hub and the node): signed directives as received,
 * verified with the federal keyring before they are stored, so that a relaying hub can neither
 * forge nor alter one. One table, directives(serial, key_id, body, signature, received_ms),
 * in the tier's own database and transactions. */
#ifndef COMMON_DIRSTORE_H
#define COMMON_DIRSTORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "directive.h"
#include "error.h"
#include "reintegration.pb-c.h"

/* Creates the table when missing. Returns 0 or REINT_EDB. */
int dirstore_open(sqlite3 *db);

/* The highest serial held (0 when none). Returns 0 or REINT_EDB. */
int dirstore_last_serial(sqlite3 *db, uint64_t *serial);

/* Verifies sd (a known key, the signature over the exact body bytes, a serial above the last
 * held, or one recorded missing) and stores it durably; a serial beyond the next records the
 * ones between as missing (dirstore_gaps). A directive already held with the same serial and bytes
 * is accepted again without change (a relay after a lost ack): *fresh is then 0 (else 1; fresh may
 * be NULL). Returns 0 with *serial set, or REINT_EKEY / REINT_ESIGNATURE / REINT_EREPLAY /
 * REINT_EMALFORMED / REINT_EDB with a message in err; nothing is stored then. */
int dirstore_receive(sqlite3 *db, const directive_keyring *keys,
                     const Reint__V1__SignedDirective *sd, uint64_t *serial, int *fresh, char *err,
                     size_t errlen);

/* The serials a gap left missing (a directive arrived with a serial above the newest held +
 * 1; the issuer's serials are consecutive), lowest first, at most max, into out (*n set). A
 * missing serial is accepted by dirstore_receive when it comes, and is then no longer one.
 * Returns 0 or REINT_EDB. */
int dirstore_gaps(sqlite3 *db, uint64_t *out, size_t max, size_t *n);
int dirstore_gap_count(sqlite3 *db, int64_t *n);

/* Decodes a stored directive's body, the blob at column col of the row st stands on
 * (free with reint__v1__directive__free_unpacked). NULL when it does not decode, or when
 * directive_body_check refuses its text: a directive stored before the tiers checked it
 * where it arrives is left out, with a warning, wherever directives are shown, rather than
 * failing the page or report that shows them (the warning is given once per directive in ten
 * minutes). */
Reint__V1__Directive *dirstore_decode(sqlite3_stmt *st, int col);

/* Loads the directives with serial above after, oldest first, at most max, as malloc'd
 * SignedDirectives into *out (*n set; free with dirstore_free_list). Returns 0, REINT_EDB or
 * REINT_ENOMEM. */
int dirstore_load_after(sqlite3 *db, uint64_t after, size_t max, Reint__V1__SignedDirective ***out,
                        size_t *n);
void dirstore_free_list(Reint__V1__SignedDirective **list, size_t n);

#endif
