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
/* The code point of the well-formed sequence of l bytes at s (l from utf8_len). */
unsigned long utf8_decode(const unsigned char *s, size_t l);
/* Whether no text shown to people should carry cp: a control character (C0, DEL, C1: ESC [
 * and U+009B start a terminal's escape sequences), a mark that reorders the text around it
 * (bidirectional embeddings, overrides and isolates, U+202A-202E and U+2066-2069), or a
 * line or paragraph separator (U+2028, U+2029). */
int utf8_unsafe(unsigned long cp);
/* Whether cp shows nothing: a space other than U+0020, a zero-width or joining character, a
 * directional or invisible mark, a filler, a variation selector or a tag character. Two ids
 * that differ by one look the same; a text of such characters and spaces says nothing. */
int utf8_invisible(unsigned long cp);
/* The byte offset in the n bytes at s of the first byte that starts no well-formed sequence
 * or of the first character utf8_unsafe names, but for the C0 characters listed in allowed
 * (such as "\n\t"); -1 when there is none. */
long utf8_unsafe_at(const char *s, size_t n, const char *allowed);
/* 1 when the n bytes of well-formed UTF-8 at s show nothing: only spaces, ASCII white space
 * and characters utf8_invisible names (an empty text too). */
int utf8_blank(const char *s, size_t n);
/* Copies the string src into dst (dstlen >= 1 bytes, always terminated) as one line of
 * well-formed UTF-8: each byte that starts no well-formed sequence, and each character
 * utf8_unsafe names, becomes '?', and a sequence that does not fit whole is left out. For
 * text built from a peer's bytes that goes into a protobuf string, a log line or a JSON
 * answer. Returns the bytes written (without the terminator). */
size_t utf8_scrub(char *dst, size_t dstlen, const char *src);

#endif
