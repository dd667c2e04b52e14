/* Streaming CSV reader (RFC 4180 plus what spreadsheets write): a UTF-8 BOM is skipped,
 * CRLF and LF both end records, quoted fields may hold commas, doubled quotes and
 * newlines. Memory is bounded by the longest record, which is itself capped. */
#ifndef COMMON_CSV_H
#define COMMON_CSV_H

#include "error.h"

#include <stddef.h>
#include <stdio.h>

#define CSV_MAX_FIELDS 64
#define CSV_MAX_RECORD (64 * 1024) /* bytes in one record, quotes included */

typedef struct csv_reader csv_reader;

/* Reads from f (not closed by the reader). Returns NULL when out of memory. */
csv_reader *csv_open(FILE *f);
void csv_close(csv_reader *r);

/* Reads the next record. Returns 1 with *nfields set and fields[i] pointing into the
 * reader's buffer (valid until the next call; NUL-terminated, unquoted), 0 at end of input,
 * or a negative code: REINT_ETOOLONG (record over CSV_MAX_RECORD or over CSV_MAX_FIELDS
 * fields; the reader skips to the next line and can go on), REINT_EQUOTE (unterminated quote
 * at end of input), REINT_EIO (read error) or REINT_ENOMEM (the record buffer could not grow;
 * the input then ends as after a read error). csv_line() names the line where the record began.
 * Blank lines are skipped. */
int csv_next(csv_reader *r, char ***fields, size_t *nfields);

/* The 0-based index of the first field of the last returned record that holds a NUL byte,
 * or -1. Its field is cut there (fields are C strings): the caller refuses the record. */
long csv_nul_field(const csv_reader *r);

/* 1-based physical line number at which the last returned record began. */
long csv_line(const csv_reader *r);

/* Bytes consumed from the input so far (for progress bars). */
long long csv_offset(const csv_reader *r);

/* Text a spreadsheet would run as a formula (it starts with = + - @, a tab or a CR, or
 * the full-width = + - @, after spaces and characters that show nothing or not) is
 * written after an apostrophe, which spreadsheets take as "text follows" and do not show; so
 * is text that starts with apostrophes before such a character, so that the reading is
 * exact both ways. csv_formula_guarded(s) says whether s needs one; csv_formula_unguard(s)
 * is s without the one a writer put there (s itself when there is none). */
int csv_formula_guarded(const char *s);
const char *csv_formula_unguard(const char *s);

/* Writes one field to f: after an apostrophe when csv_formula_guarded, and quoted when it
 * holds a comma, quote, CR or LF. */
void csv_write_field(FILE *f, const char *s);

#endif
