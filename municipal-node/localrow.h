/* The local row: the clerk's values of one record (personal data included), as the node
 * keeps them for export and follow-ups. Compact: the values in the kind's column order, each
 * a varint of its length plus one (0 = absent) and its bytes. Column names are not repeated
 * per row (a JSON object repeated them and was 2.5 times larger). */
#ifndef MUNICIPAL_NODE_LOCALROW_H
#define MUNICIPAL_NODE_LOCALROW_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

/* Most bytes one value can add: its length varint (3 bytes covers 2^21) and its bytes. */
#define LOCALROW_OVERHEAD 3

/* A row being encoded: an sbuf (p, len; failed once an append could not be made). */
typedef sbuf localrow_buf;

#define LOCALROW_MAX (1u << 20)

void localrow_init(localrow_buf *b);
void localrow_reset(localrow_buf *b);
void localrow_free(localrow_buf *b);
/* Appends one value (s NULL = absent). */
void localrow_put(localrow_buf *b, const char *s, size_t n);

/* Value i of an encoded row: 1 with *s, *n set (not NUL-terminated), 0 when absent or the
 * row is shorter or malformed. */
int localrow_get(const uint8_t *row, size_t len, size_t i, const char **s, size_t *n);

/* Registers local_field(row, i) on db: value i of an encoded row as text, or NULL. Returns 0
 * or REINT_EDB. */
int localrow_register(sqlite3 *db);

#endif
