/* What two records of one person share, whatever the typing, for the node's search and its
 * check for persons registered twice (lookup.h): keys made from a name, a phone or a
 * citizenship number, in C and as the SQL function person_key(which, text) on the node's
 * store connections, so that a query's words and the stored values are made alike.
 *
 *   PERSONKEY_NAME         the name without dots ("K.C." is "KC"), without zero-width joiners
 *                          and non-joiners (some Nepali keyboards put them in conjuncts), each
 *                          Devanagari letter with a nukta as the letter and the nukta (U+095C
 *                          is U+0921 U+093C; keyboards type either), ASCII letters in lower
 *                          case, runs of blanks as one space, none at the ends;
 *   PERSONKEY_PHONE        the digits (Devanagari digits as ASCII), without a leading 977
 *                          (Nepal's country code) when more than 10 remain;
 *   PERSONKEY_CITIZENSHIP  the letters and digits (Devanagari digits as ASCII), upper case.
 *
 * Text is UTF-8 (the node checked it at intake); bytes of other characters are kept. */
#ifndef MUNICIPAL_NODE_PERSONKEY_H
#define MUNICIPAL_NODE_PERSONKEY_H

#include <sqlite3.h>
#include <stddef.h>

enum { PERSONKEY_NAME = 1, PERSONKEY_PHONE = 2, PERSONKEY_CITIZENSHIP = 3 };

/* The key of which (PERSONKEY_*) of the n bytes at s into out (NUL-terminated, cut at a
 * character's boundary when outlen is too small). Returns its length. */
size_t personkey(int which, const char *s, size_t n, char *out, size_t outlen);

/* Registers person_key(which, text) on db: the key as text (NULL for a NULL text). Returns
 * 0 or REINT_EDB. */
int personkey_register(sqlite3 *db);

#endif
