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
/* The characters (code points) in the n bytes of well-formed UTF-8 at s: what a length limit
 * given to people counts, so that a name in Devanagari (three bytes a letter) gets as many
 * letters as one in Latin script. */
size_t utf8_chars(const char *s, size_t n);
/* Copies the string src into dst (dstlen >= 1 bytes, always terminated) as one line of
 * well-formed UTF-8: each byte that starts no well-formed sequence, and each control
 * character, becomes '?', and a sequence that does not fit whole is left out. For text
 * built from a peer's bytes that goes into a protobuf string, a log line or a JSON answer.
 * Returns the bytes written (without the terminator). */
size_t utf8_scrub(char *dst, size_t dstlen, const char *src);

#endif
