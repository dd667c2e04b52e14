/* Lowercase hexadecimal text of bytes, and back: the one codec for tokens, keys, ids in
 * logs, percent-escapes and PostgreSQL bytea values. */
#ifndef COMMON_HEX_H
#define COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Writes 2 * n hex digits and a NUL into out (2 * n + 1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int hex_digit(int c);
/* Decodes exactly len digits (len even) into out (len / 2 bytes). Returns 0 or
 * REINT_EMALFORMED (odd length or a non-hex character). */
int hex_decode(const char *in, size_t len, uint8_t *out);
/* The same into a malloc'd buffer the caller frees (*n set). Returns 0, REINT_EMALFORMED or
 * REINT_ENOMEM. */
int hex_decode_alloc(const char *in, size_t len, uint8_t **out, size_t *n);

#endif
