/* The CSV import (`municipal-node import --kind KIND FILE.csv`): a header row naming the
 * columns (any order, any case), then rows, read in two threads. A reader thread parses the
 * CSV and checks each field on its own (field.h: the half of the work that needs no store)
 * into a ring of chunks of rows; the caller's thread takes the chunks in file order for the
 * checks against the store and the writes (intake_apply_checked), in transactions of
 * IMPORT_BATCH rows. Memory stays bounded by the ring, whatever the file's size. */
#ifndef MUNICIPAL_NODE_IMPORT_H
#define MUNICIPAL_NODE_IMPORT_H

#include "error.h"

#include <stdio.h>

#include "intake.h"

#define IMPORT_BATCH 10000

typedef struct import_stats {
    long long rows; /* data rows read (the header excluded) */
    long long inserted, updated, unchanged, refused;
} import_stats;

/* Imports the CSV file at path, of one kind, through in (owned by the caller; nothing else
 * may use it or its outbox until this returns). Each refused row is reported to errors_out
 * (may be NULL) as "persons.csv line 17: sex \"F?\" is not one of FEMALE, MALE, OTHER", one
 * line per field error; good rows are committed. With progress set, a progress bar is drawn
 * on stderr. The change is recorded under the clerk "import:<file name>" plus ":$USER" when
 * set. Must be called outside a transaction. st (may be NULL) gets the counts, also when the
 * import stops early. Returns 0 when the file was read to its end (refused rows included:
 * see st->refused), REINT_EINVAL for a bad header or kind (nothing imported), REINT_EIO when
 * the file cannot be read (rows committed before that stay), REINT_ENOMEM, or a store code
 * (rows committed before the failing batch stay); every failure is also reported to
 * errors_out. */
int import_csv(intake *in, int kind, const char *path, FILE *errors_out, int progress,
               import_stats *st);

#endif
