/* The export (`municipal-node export --kind KIND [FILE]`): the live records of one kind as
 * CSV, with every local field (personal data included), for the clerk's own spreadsheet and
 * for moving a caseload to a new store. Importing the export again changes nothing. */
#ifndef MUNICIPAL_NODE_EXPORT_H
#define MUNICIPAL_NODE_EXPORT_H

#include "error.h"

#include <stdio.h>

#include "intake.h"

/* Writes the live records of kind to out (owned by the caller, not closed): a UTF-8 BOM, a
 * header row with the columns of DESIGN.md, then one row per record in local_id order, CRLF
 * line ends, dates in the node's calendar as the clerk entered them. Returns 0, REINT_EINVAL
 * for a kind without columns, REINT_EDB when the store failed or REINT_EMALFORMED for a
 * stored row it cannot read, REINT_EIO when out could not be written. On any failure the
 * output is incomplete, and an error naming the kind and the rows written is logged. */
int export_csv(intake *in, int kind, FILE *out);

#endif
