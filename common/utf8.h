/* UTF-8 as RFC 3629 defines it (no overlong forms, no surrogates, nothing above U+10FFFF):
 * the one validator for HTTP requests, CSV fields and JSON bodies. */
#ifndef COMMON_UTF8_H
#define COMMON_UTF8_H

#include <stddef.h>

/* Length of the well-formed sequence at s (at most n bytes, n >= 1), or 0 when there is
 * none. */
size_t utf8_len(const unsigned char *s, size_t n);
/* 1 when the n bytes at s are well-formed UTF-8, else 0. */
int utf8_valid(const char *s, size_t n);

#endif
