/* A growable byte buffer with a hard maximum, for SQL array parameters, response bodies and
 * the node's local rows. Once an append fails (out of memory or past max) the buffer stays failed
 * and later appends do nothing, so callers check once at the end. */
#ifndef COMMON_SBUF_H
#define COMMON_SBUF_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct sbuf {
    char *p; /* NUL-terminated when len > 0 or after sbuf_init */
    size_t len, cap, max;
    int failed;
} sbuf;

void sbuf_init(sbuf *b, size_t max);
void sbuf_free(sbuf *b);
void sbuf_reset(sbuf *b);
int sbuf_add(sbuf *b, const char *s, size_t n);
/* Appends n bytes left for the caller to fill: returns where they start (valid until the next
 * append), or NULL when the buffer failed. */
void *sbuf_extend(sbuf *b, size_t n);
int sbuf_puts(sbuf *b, const char *s);
int sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends v in decimal: what sbuf_printf's %llu and %lld write, without the formatter (a
 * bulk writer appends millions of numbers). */
int sbuf_u64(sbuf *b, uint64_t v);
int sbuf_i64(sbuf *b, int64_t v);
/* Appends s as a JSON string (quotes and escapes included). */
int sbuf_json_str(sbuf *b, const char *s);
/* Appends the text s as a CSV field: after an apostrophe when a spreadsheet would run it as
 * a formula (csv_formula_guarded), and quoted when it holds a comma, quote or line break.
 * Numbers are appended as they are (a negative one is not a formula). */
int sbuf_csv_str(sbuf *b, const char *s);

/* Grows the array *p of elements of elem bytes (capacity *cap, counted in elements) to hold
 * at least need elements, doubling. Returns 0, or REINT_ENOMEM with *p unchanged. */
int sbuf_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
